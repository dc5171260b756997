/*
 * binding_instance.c - one instance at a time: get_orchestration_status,
 * get_orchestration_descriptor, list_executions, get_instances_status (many ids, one
 * status each), get_instance_details (summary, executions, pending work of the current
 * execution, statistics) and get_instance_statistics. Relies on the engine (durox.h) and
 * convert.c; added to the Store's methods by lx_open_instance (binding.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "lua/lx.h"

static void status_free_box(void *p) { durox_orchestration_status_free(p); }

/* handle:get_orchestration_status(id) -> { status, output, error, failure_kind, ... } */
static int l_get_status(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *id = lx_checktext(L, 2);
	lx_box *b = lx_newbox(L);
	durox_orchestration_status *s;
	int rc = durox_get_orchestration_status(dx, id, &s);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = s;
	b->fr = status_free_box;
	lua_createtable(L, 0, 8);
	lx_set_str(L, "status", durox_status_name(s->status));
	lx_set_str(L, "output", s->output);
	lx_set_str(L, "error", s->error);
	if (s->failure_kind)
		lx_set_str(L, "failure_kind", durox_failure_kind_name(s->failure_kind));
	lx_set_str(L, "details", s->details);
	lx_set_str(L, "custom_status", s->custom_status);
	lx_set_int(L, "custom_status_version", s->custom_status_version);
	lx_boxfree(b);
	return 1;
}

static void desc_free_box(void *p) { durox_descriptor_free(p); }

/* handle:get_orchestration_descriptor(id) -> { name, version, parent_instance, parent_id } */
static int l_get_descriptor(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *id = lx_checktext(L, 2);
	lx_box *b = lx_newbox(L);
	durox_descriptor *d;
	int rc = durox_get_orchestration_descriptor(dx, id, &d);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = d;
	b->fr = desc_free_box;
	lua_createtable(L, 0, 4);
	lx_set_str(L, "name", d->name);
	lx_set_str(L, "version", d->version);
	lx_set_str(L, "parent_instance", d->parent_instance);
	if (d->parent_id >= 0)
		lx_set_int(L, "parent_id", d->parent_id);
	lx_boxfree(b);
	return 1;
}

static void idlist_free_box(void *p) { durox_id_list_free(p); }

/* handle:list_executions(id) -> { 1, 2, ... } */
static int l_list_executions(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *id = lx_checktext(L, 2);
	lx_box *b = lx_newbox(L);
	durox_id_list *l;
	int rc = durox_list_executions(dx, id, &l);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = l;
	b->fr = idlist_free_box;
	lua_createtable(L, (int)l->count, 0);
	for (size_t k = 0; k < l->count; k++) {
		lua_pushinteger(L, (lua_Integer)l->ids[k]);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lx_boxfree(b);
	return 1;
}

static void statuslist_free_box(void *p) { durox_status_list_free(p); }

/* handle:get_instances_status({ids}) -> { {instance_id=, status=, failure_kind=}, ... } */
static int l_get_instances_status(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 2);
	if (n > 100000)
		luaL_argerror(L, 2, "more than 100000 ids");
	lx_box *idbox = lx_newbox(L);
	const char **ids = calloc((size_t)n + 1, sizeof *ids);
	if (ids == NULL)
		luaL_error(L, "out of memory");
	idbox->p = ids;
	idbox->fr = free;
	for (lua_Integer k = 1; k <= n; k++) {
		lua_rawgeti(L, 2, k);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_argerror(L, 2,
			              lua_pushfstring(L, "instance id [%I] is a %s, not a string", (LUAI_UACINT)k,
			                              luaL_typename(L, -1)));
		size_t idlen;
		ids[k - 1] = lua_tolstring(L, -1, &idlen); /* anchored in the argument table */
		if (strlen(ids[k - 1]) != idlen)
			luaL_argerror(L, 2, lua_pushfstring(L, "instance id [%I] contains a NUL byte", (LUAI_UACINT)k));
		lua_pop(L, 1);
	}
	lx_box *b = lx_newbox(L);
	durox_status_list *l;
	int rc = durox_get_instances_status(dx, ids, (size_t)n, &l);
	lx_boxfree(idbox);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = l;
	b->fr = statuslist_free_box;
	lua_createtable(L, (int)l->count, 0);
	for (size_t k = 0; k < l->count; k++) {
		lua_createtable(L, 0, 3);
		lx_set_str(L, "instance_id", l->items[k].instance_id);
		lx_set_str(L, "status", durox_status_name(l->items[k].status));
		if (l->items[k].failure_kind)
			lx_set_str(L, "failure_kind", durox_failure_kind_name(l->items[k].failure_kind));
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lx_boxfree(b);
	return 1;
}

/* ---- details --------------------------------------------------------------------- */

static void details_free_box(void *p) { durox_instance_details_free(p); }

static void push_execution_details(lua_State *L, const durox_execution_details *d)
{
	lua_createtable(L, 0, 9);
	lx_set_int(L, "execution_id", (lua_Integer)d->execution_id);
	lx_set_str(L, "status", durox_status_name(d->status));
	lua_createtable(L, (int)d->n_pending_activities, 0);
	for (size_t k = 0; k < d->n_pending_activities; k++) {
		const durox_pending_activity *a = &d->pending_activities[k];
		lua_createtable(L, 0, 6);
		lx_set_int(L, "correlation_id", (lua_Integer)a->correlation_id);
		lx_set_str(L, "name", a->name);
		lx_set_str(L, "input", a->input);
		lx_set_int(L, "scheduled_at", a->scheduled_at);
		lx_set_str(L, "tag", a->tag);
		lx_set_str(L, "session_id", a->session_id);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, -2, "pending_activities");
	lua_createtable(L, (int)d->n_pending_timers, 0);
	for (size_t k = 0; k < d->n_pending_timers; k++) {
		const durox_pending_timer *t = &d->pending_timers[k];
		lua_createtable(L, 0, 4);
		lx_set_int(L, "correlation_id", (lua_Integer)t->correlation_id);
		lx_set_int(L, "delay_ms", (lua_Integer)t->delay_ms);
		lx_set_int(L, "scheduled_at", t->scheduled_at);
		lx_set_int(L, "fire_at", t->fire_at);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, -2, "pending_timers");
	lua_createtable(L, (int)d->n_pending_events, 0);
	for (size_t k = 0; k < d->n_pending_events; k++) {
		const durox_pending_event *e = &d->pending_events[k];
		lua_createtable(L, 0, 4);
		lx_set_int(L, "correlation_id", (lua_Integer)e->correlation_id);
		lx_set_str(L, "name", e->name);
		lx_set_int(L, "subscribed_at", e->subscribed_at);
		lx_set_str(L, "kind", e->queue ? "queue" : "event");
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, -2, "pending_events");
	lua_createtable(L, (int)d->n_pending_children, 0);
	for (size_t k = 0; k < d->n_pending_children; k++) {
		const durox_pending_child *c = &d->pending_children[k];
		lua_createtable(L, 0, 4);
		lx_set_int(L, "correlation_id", (lua_Integer)c->correlation_id);
		lx_set_str(L, "name", c->name);
		lx_set_str(L, "instance_id", c->instance_id);
		lx_set_int(L, "scheduled_at", c->scheduled_at);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, -2, "pending_sub_orchestrations");
	lx_set_int(L, "completed_activities", (lua_Integer)d->completed_activities);
	lx_set_int(L, "failed_activities", (lua_Integer)d->failed_activities);
	lx_set_int(L, "buffered_queue_messages", (lua_Integer)d->buffered_queue_messages);
}

/* handle:get_instance_details(id) -> { summary, executions, current_execution, statistics, input, output } */
static int l_get_details(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *id = lx_checktext(L, 2);
	lx_box *b = lx_newbox(L);
	durox_instance_details *d;
	int rc = durox_get_instance_details(dx, id, &d);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = d;
	b->fr = details_free_box;
	lua_createtable(L, 0, 6);
	lx_push_summary(L, &d->summary);
	lua_setfield(L, -2, "summary");
	lua_createtable(L, (int)d->n_executions, 0);
	for (size_t k = 0; k < d->n_executions; k++) {
		const durox_execution_summary *e = &d->executions[k];
		lua_createtable(L, 0, 7);
		lx_set_int(L, "execution_id", (lua_Integer)e->execution_id);
		lx_set_str(L, "status", durox_status_name(e->status));
		lx_push_time(L, "started_at", e->started_at);
		lx_push_time(L, "completed_at", e->completed_at);
		lx_set_int(L, "event_count", (lua_Integer)e->event_count);
		lx_set_str(L, "continue_as_new_reason", e->continue_as_new_reason);
		lx_set_str(L, "output", e->output);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, -2, "executions");
	if (d->current_execution) {
		push_execution_details(L, d->current_execution);
		lua_setfield(L, -2, "current_execution");
	}
	lx_push_statistics(L, &d->statistics);
	lua_setfield(L, -2, "statistics");
	lx_set_str(L, "input", d->input);
	lx_set_str(L, "output", d->output);
	lx_boxfree(b);
	return 1;
}

/* handle:get_instance_statistics(id) -> InstanceStatistics table */
static int l_get_statistics(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *id = lx_checktext(L, 2);
	durox_instance_statistics s;
	int rc = durox_get_instance_statistics(dx, id, &s);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lx_push_statistics(L, &s);
	return 1;
}

static const luaL_Reg instance_methods[] = {
        {"get_orchestration_status", l_get_status},
        {"get_orchestration_descriptor", l_get_descriptor},
        {"list_executions", l_list_executions},
        {"get_instances_status", l_get_instances_status},
        {"get_instance_details", l_get_details},
        {"get_instance_statistics", l_get_statistics},
        {NULL, NULL},
};

void lx_open_instance(lua_State *L) { luaL_setfuncs(L, instance_methods, 0); }
