/*
 * binding_ops.c - the write methods of a store handle: start_orchestration, raise_event,
 * enqueue_event, cancel_instance, wait_for_orchestration, the bulk operations
 * (cancel_instances, raise_event_bulk, wait_for_instances, purge_instances,
 * prune_executions, restart_instances) and the job journal (list_jobs, get_job,
 * resume_job, stop_job); plus durox.sleep and durox.isatty for the CLI.
 *
 * Lua callbacks (predicate, authorize, progress) run through lua_pcall from the engine's
 * callbacks, never inside a store transaction; an error raised by one stops the
 * operation cleanly and is re-raised once the engine has returned. Without a progress
 * function a no-op C function is still pcalled between batches and polls, so duroxlua's
 * Ctrl-C hook can interrupt a long job. Engine results are owned by boxes while converted.
 * Relies on durox.h and convert.c; lx_open_ops is called by binding.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lua/lx.h"
#include "util/timeutil.h"

/* ---- small helpers ------------------------------------------------------------------ */

/* A payload argument: a string is raw text; nil is NULL (the operation's default); any
 * other value is encoded as JSON (the string stays on the stack in place of the value). */
static const char *check_payload(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	if (lua_isnoneornil(L, idx))
		return NULL;
	if (lua_type(L, idx) != LUA_TSTRING) {
		lx_encode_json(L, idx, 0);
		lua_replace(L, idx);
	}
	return lx_checktext(L, idx);
}

/* The longest wait (a year; nil waits forever) and the longest poll interval (an hour). */
#define MAX_WAIT 31536000000LL
#define MAX_POLL 3600000

/* ---- callbacks ---------------------------------------------------------------------- */

/* The Lua side of one engine call: the functions (absolute stack indexes, 0 = none) and
 * whether one of them raised (its error value is then on top of the stack). */
typedef struct lx_calls {
	lua_State *L;
	int predicate, authorize, progress;
	int errored;
	char reason[512];
	uint32_t budget_ms; /* the handle's callback_budget_ms */
} lx_calls;

static int call_predicate(lua_State *L)
{
	const durox_instance_summary *s = lua_touserdata(L, 2);
	lua_settop(L, 1);
	lx_push_summary(L, s);
	lua_call(L, 1, 1);
	return 1;
}

static int predicate_cb(void *ud, const durox_instance_summary *s)
{
	lx_calls *c = ud;
	if (c->errored)
		return DUROX_EABORT;
	lua_State *L = c->L;
	/* only non-allocating pushes before the protected call */
	lua_pushcfunction(L, call_predicate);
	lua_pushvalue(L, c->predicate);
	lua_pushlightuserdata(L, (void *)s);
	if (lx_pcall(L, 2, 1, c->budget_ms, "the predicate") != LUA_OK) {
		c->errored = 1;
		return DUROX_EABORT;
	}
	int keep = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return keep;
}

static int call_authorize(lua_State *L)
{
	const durox_instance_summary *s = lua_touserdata(L, 2);
	lua_settop(L, 1);
	lx_push_summary(L, s);
	lua_call(L, 1, 2);
	if (lua_type(L, -1) != LUA_TSTRING && !lua_isnil(L, -1))
		luaL_tolstring(L, -1, NULL), lua_replace(L, -2);
	return 2;
}

static int authorize_cb(void *ud, const durox_instance_summary *s, const char **reason)
{
	lx_calls *c = ud;
	if (c->errored)
		return DUROX_EABORT;
	lua_State *L = c->L;
	lua_pushcfunction(L, call_authorize);
	lua_pushvalue(L, c->authorize);
	lua_pushlightuserdata(L, (void *)s);
	if (lx_pcall(L, 2, 2, c->budget_ms, "the authorize function") != LUA_OK) {
		c->errored = 1;
		return DUROX_EABORT;
	}
	/* only true allows: 1, "yes" or a table are mistakes, and a mistake must not allow */
	int answer = lua_type(L, -2);
	int ok = answer == LUA_TBOOLEAN && lua_toboolean(L, -2);
	c->reason[0] = '\0';
	if (!ok && lua_type(L, -1) == LUA_TSTRING) {
		const char *r = lua_tostring(L, -1);
		size_t n = strlen(r);
		if (n >= sizeof c->reason)
			n = sizeof c->reason - 1;
		memcpy(c->reason, r, n);
		c->reason[n] = '\0';
	}
	lua_pop(L, 2);
	if (!ok && c->reason[0] == '\0' && answer != LUA_TBOOLEAN && answer != LUA_TNIL)
		snprintf(c->reason, sizeof c->reason, "the authorize function returned a %s (only true allows)",
		         lua_typename(L, answer));
	*reason = c->reason[0] ? c->reason : "denied by the authorize function";
	return ok;
}

static void push_progress(lua_State *L, const durox_bulk_progress *p)
{
	lua_createtable(L, 0, 9);
	if (p->job_id > 0)
		lx_set_int(L, "job_id", p->job_id);
	lx_set_str(L, "kind", p->kind);
	lx_set_str(L, "phase", p->phase);
	lx_set_int(L, "total", (int64_t)p->total);
	lx_set_int(L, "done", (int64_t)p->done);
	lx_set_int(L, "failed", (int64_t)p->failed);
	lx_set_int(L, "no_subscription", (int64_t)p->no_subscription);
	lx_set_int(L, "elapsed_ms", p->elapsed_ms);
}

/* Calls the progress function (if any; else does nothing, which still lets a pending
 * interrupt hook fire). Returns 1 when it returned false (stop). */
static int call_progress(lua_State *L)
{
	if (lua_isnil(L, 1))
		return 0;
	const durox_bulk_progress *p = lua_touserdata(L, 2);
	lua_settop(L, 1);
	push_progress(L, p);
	lua_call(L, 1, 1);
	lua_pushboolean(L, lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1));
	return 1;
}

static int progress_cb(void *ud, const durox_bulk_progress *p)
{
	lx_calls *c = ud;
	if (c->errored)
		return DUROX_EABORT;
	lua_State *L = c->L;
	lua_pushcfunction(L, call_progress);
	if (c->progress)
		lua_pushvalue(L, c->progress);
	else
		lua_pushnil(L);
	lua_pushlightuserdata(L, (void *)p);
	if (lx_pcall(L, 2, 1, c->budget_ms, "the progress function") != LUA_OK) {
		c->errored = 1;
		return DUROX_EABORT;
	}
	int stop = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return stop ? 1 : 0;
}

/* After an engine call: re-raise a callback's error (boxes below free the results). */
static void rethrow(lua_State *L, const lx_calls *c)
{
	if (c->errored)
		lua_error(L);
}

/* ---- single-instance writes ------------------------------------------------------------ */

/* handle:start_orchestration(instance_id, name [, input [, version]]) -> instance_id */
static int l_start(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *id = lx_checktext(L, 2);
	const char *name = lx_checktext(L, 3);
	lua_settop(L, 5);
	const char *input = check_payload(L, 4);
	const char *version = lua_isnil(L, 5) ? NULL : lx_checktext(L, 5);
	int rc = durox_start_orchestration(dx, id, name, input, version);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushvalue(L, 2);
	return 1;
}

/* handle:raise_event(instance_id, event_name [, data]) -> true */
static int l_raise(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *id = lx_checktext(L, 2);
	const char *name = lx_checktext(L, 3);
	lua_settop(L, 4);
	const char *data = check_payload(L, 4);
	int rc = durox_raise_event(dx, id, name, data);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushboolean(L, 1);
	return 1;
}

/* handle:enqueue_event(instance_id, queue [, data]) -> true */
static int l_enqueue(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *id = lx_checktext(L, 2);
	const char *queue = lx_checktext(L, 3);
	lua_settop(L, 4);
	const char *data = check_payload(L, 4);
	int rc = durox_enqueue_event(dx, id, queue, data);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushboolean(L, 1);
	return 1;
}

/* handle:cancel_instance(instance_id [, reason]) -> true */
static int l_cancel(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *id = lx_checktext(L, 2);
	const char *reason = luaL_opt(L, lx_checktext, 3, NULL);
	int rc = durox_cancel_instance(dx, id, reason);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushboolean(L, 1);
	return 1;
}

static void wait_free_box(void *p) { durox_bulk_wait_response_free(p); }

/* handle:wait_for_orchestration(instance_id [, timeout [, poll]]) -> status table
 * | nil, msg, "TIMEOUT" | nil, msg, "NOTFOUND". timeout: ms or a duration; nil waits forever. */
static int l_wait_one(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *id = lx_checktext(L, 2);
	int64_t timeout = lx_check_duration(L, 3, "timeout", -1, 0, MAX_WAIT);
	int64_t poll = lx_check_duration(L, 4, "poll interval", 0, 0, MAX_POLL);
	lua_settop(L, 4);
	const char *ids[1] = {id};
	lx_calls c = {L, 0, 0, 0, 0, {0}, lx_budget(dx)};
	durox_bulk_wait_request req = {0};
	req.opts.instances = ids;
	req.opts.n_instances = 1;
	req.opts.max_instances = 1;
	req.opts.progress = progress_cb;
	req.opts.progress_ud = &c;
	req.timeout_ms = timeout;
	req.poll_interval_ms = poll;
	lx_box *b = lx_newbox(L);
	luaL_checkstack(L, 10, NULL);
	durox_bulk_wait_response *r;
	int rc = durox_wait_for_instances(dx, &req, &r);
	rethrow(L, &c);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = r;
	b->fr = wait_free_box;
	const durox_wait_item *it = &r->items[0];
	if (it->status == DUROX_STATUS_NOT_FOUND) {
		durox_set_error(dx, "instance '%s' not found", id);
		return lx_fail(L, dx, DUROX_ENOTFOUND);
	}
	if (!it->finished) {
		durox_set_error(dx, "instance '%s' is still %s after waiting %lld ms", id,
		                durox_status_name(it->status), (long long)r->elapsed_ms);
		return lx_fail(L, dx, DUROX_ETIMEOUT);
	}
	lx_boxfree(b);
	/* the client status, as get_orchestration_status returns it */
	int top = lua_gettop(L);
	lua_getfield(L, 1, "get_orchestration_status");
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_call(L, 2, LUA_MULTRET);
	return lua_gettop(L) - top;
}

/* ---- bulk requests ---------------------------------------------------------------------- */

static void filter_free_box(void *p) { durox_filter_free(p); }

static const char *const bulk_common[] = {"instances", "filter",     "predicate", "authorize", "max_instances",
                                          "dry_run",   "batch_size", "rate",      "progress",  NULL};
/* wait_for_instances writes nothing: no dry run, authorize, batches or rate */
static const char *const wait_common[] = {"instances", "filter", "predicate", "progress", "max_instances", NULL};

/* The largest rate (operations per second) and the largest batch a request takes. */
#define MAX_RATE 1e9
#define MAX_BATCH 100000

/* Fills o from the request table at t, whose keys must be in common or extra (raises on
 * misuse). Pushes the boxes and functions it needs on the stack, where they stay for the
 * engine call. Returns the reader of the table for the request's own fields. */
static lx_opts check_bulk(lua_State *L, durox *dx, int t, const char *const *common, const char *const *extra,
                          durox_bulk_options *o, lx_calls *c)
{
	luaL_checktype(L, t, LUA_TTABLE);
	lx_opts q = lx_opts_at(L, t, "request", common, extra);
	memset(o, 0, sizeof *o);
	*c = (lx_calls){L, 0, 0, 0, 0, {0}, lx_budget(dx)};
	lua_getfield(L, t, "instances");
	int ids = lua_gettop(L);
	lua_getfield(L, t, "filter");
	int fidx = lua_gettop(L);
	if (!lua_isnil(L, ids) && !lua_isnil(L, fidx))
		lx_opt_error(&q, "filter", "given with instances (give either instances or a filter, not both)");
	if (lua_isnil(L, ids) && lua_isnil(L, fidx))
		luaL_error(L, "request needs instances (a list of ids) or a filter (use filter = {} to target every "
		              "instance)");
	if (!lua_isnil(L, ids)) {
		if (lua_type(L, ids) == LUA_TSTRING) { /* one id */
			lua_createtable(L, 1, 0);
			lua_pushvalue(L, ids);
			lua_rawseti(L, -2, 1);
			lua_replace(L, ids);
		}
		if (lua_type(L, ids) != LUA_TTABLE)
			lx_opt_error(&q, "instances", "expects a list of ids, got %s", luaL_typename(L, ids));
		lua_Integer n = luaL_len(L, ids);
		if (n < 0 || n > 10000000)
			lx_opt_error(&q, "instances", "has too many ids (at most 10000000)");
		lx_box *box = lx_newbox(L);
		const char **v = calloc((size_t)n + 1, sizeof *v);
		if (v == NULL)
			luaL_error(L, "out of memory");
		box->p = v;
		box->fr = free;
		for (lua_Integer k = 1; k <= n; k++) {
			lua_rawgeti(L, ids, k);
			if (lua_type(L, -1) != LUA_TSTRING)
				lx_opt_error(&q, "instances", "expects ids (strings), got %s at [%I]",
				             luaL_typename(L, -1), (LUAI_UACINT)k);
			size_t len;
			v[k - 1] = lua_tolstring(L, -1, &len); /* anchored in the list */
			if (strlen(v[k - 1]) != len)
				lx_opt_error(&q, "instances", "contains a NUL byte at [%I]", (LUAI_UACINT)k);
			lua_pop(L, 1);
		}
		o->instances = v;
		o->n_instances = (size_t)n;
	} else {
		if (lua_type(L, fidx) != LUA_TTABLE && lua_type(L, fidx) != LUA_TSTRING)
			lx_opt_error(&q, "filter", "expects a filter table or a query string, got %s",
			             luaL_typename(L, fidx));
		lx_box *box = lx_newbox(L);
		durox_filter *f = durox_filter_new();
		if (f == NULL)
			luaL_error(L, "out of memory");
		box->p = f;
		box->fr = filter_free_box;
		int pred;
		lx_check_filter(L, fidx, f, &pred); /* leaves a predicate on the stack */
		c->predicate = pred;
		o->filter = f;
	}
	int pred = lx_opt_function(&q, "predicate");
	if (pred != 0) {
		if (c->predicate != 0)
			lx_opt_error(&q, "predicate", "given twice (in the filter and in the request)");
		if (o->filter == NULL)
			lx_opt_error(&q, "predicate", "needs request.filter");
		c->predicate = pred;
	}
	if (c->predicate != 0) {
		o->predicate = predicate_cb;
		o->predicate_ud = c;
	}
	c->authorize = lx_opt_function(&q, "authorize");
	if (c->authorize != 0) {
		o->authorize = authorize_cb;
		o->authorize_ud = c;
	}
	c->progress = lx_opt_function(&q, "progress");
	o->progress = progress_cb; /* always: keeps the call interruptible */
	o->progress_ud = c;
	o->max_instances = (uint32_t)lx_opt_integer(&q, "max_instances", 0, 1, 0x7fffffff);
	o->batch_size = (uint32_t)lx_opt_integer(&q, "batch_size", 0, 1, MAX_BATCH);
	o->rate = lx_opt_number(&q, "rate", 0, 0, MAX_RATE);
	o->dry_run = lx_opt_boolean(&q, "dry_run", 0);
	luaL_checkstack(L, 20, NULL);
	return q;
}

static void push_id_list(lua_State *L, const durox_bulk_response *r, int outcome)
{
	lua_newtable(L);
	lua_Integer n = 0;
	for (size_t k = 0; k < r->count; k++)
		if (r->items[k].outcome == outcome) {
			lua_pushstring(L, r->items[k].instance_id);
			lua_rawseti(L, -2, ++n);
		}
}

/* Pushes the response table of a bulk write, with the proposal's field names for kind. */
static void push_bulk_response(lua_State *L, const durox_bulk_response *r)
{
	const char *kind = r->kind != NULL ? r->kind : "";
	lua_createtable(L, 0, 16);
	if (r->job_id > 0)
		lx_set_int(L, "job_id", r->job_id);
	lx_set_str(L, "kind", kind);
	lx_set_str(L, "state", r->state);
	lx_set_bool(L, "dry_run", r->dry_run);
	lx_set_int(L, "total_matched", (int64_t)r->total_matched);
	lx_set_int(L, "elapsed_ms", r->elapsed_ms);
	const char *done_name = strcmp(kind, "cancel") == 0    ? "cancelled_instances"
	                        : strcmp(kind, "purge") == 0   ? "purged_instances"
	                        : strcmp(kind, "prune") == 0   ? "pruned_instances"
	                        : strcmp(kind, "restart") == 0 ? NULL
	                                                       : "delivered_instances";
	if (done_name != NULL) {
		push_id_list(L, r, DUROX_OUTCOME_DONE);
		lua_setfield(L, -2, done_name);
	} else {
		lua_newtable(L);
		lua_Integer n = 0;
		for (size_t k = 0; k < r->count; k++) {
			const durox_bulk_item *it = &r->items[k];
			if (it->outcome != DUROX_OUTCOME_DONE)
				continue;
			lua_createtable(L, 0, 2);
			lx_set_str(L, "instance_id", it->instance_id);
			lx_set_str(L, "new_instance_id", it->new_instance_id);
			lua_rawseti(L, -2, ++n);
		}
		lua_setfield(L, -2, "restarted_instances");
	}
	if (strcmp(kind, "raise") == 0 || strcmp(kind, "enqueue") == 0) {
		push_id_list(L, r, DUROX_OUTCOME_NO_SUBSCRIPTION);
		lua_setfield(L, -2, "no_subscription_instances");
	}
	lua_newtable(L);
	lua_Integer n = 0;
	for (size_t k = 0; k < r->count; k++) {
		const durox_bulk_item *it = &r->items[k];
		if (it->outcome != DUROX_OUTCOME_FAILED)
			continue;
		lua_createtable(L, 0, 3);
		lx_set_str(L, "instance_id", it->instance_id);
		lx_set_str(L, "error", it->message != NULL ? it->message : durox_code_name(it->code));
		lx_set_str(L, "code", durox_code_name(it->code));
		lua_rawseti(L, -2, ++n);
	}
	lua_setfield(L, -2, "failed_instances");
	if (r->pending > 0) {
		push_id_list(L, r, DUROX_OUTCOME_PENDING);
		lua_setfield(L, -2, "pending_instances");
	}
	if (r->skipped > 0) {
		lua_createtable(L, (int)r->skipped, 0);
		lua_Integer ns = 0;
		for (size_t k = 0; k < r->count; k++) {
			const durox_bulk_item *it = &r->items[k];
			if (it->outcome != DUROX_OUTCOME_SKIPPED)
				continue;
			lua_createtable(L, 0, 2);
			lx_set_str(L, "instance_id", it->instance_id);
			lx_set_str(L, "reason", it->message);
			lua_rawseti(L, -2, ++ns);
		}
		lua_setfield(L, -2, "skipped_instances");
	}
	if (strcmp(kind, "purge") == 0 || strcmp(kind, "prune") == 0) {
		if (strcmp(kind, "purge") == 0) {
			lx_set_int(L, "instances_deleted", (int64_t)r->instances_deleted);
			lx_set_int(L, "queue_messages_deleted", (int64_t)r->queue_messages_deleted);
		} else {
			lx_set_int(L, "instances_processed", (int64_t)r->done);
		}
		lx_set_int(L, "executions_deleted", (int64_t)r->executions_deleted);
		lx_set_int(L, "events_deleted", (int64_t)r->events_deleted);
	}
}

static void bulk_free_box(void *p) { durox_bulk_response_free(p); }

/* After a bulk engine call: re-raises a callback's error, or pushes the response (owned by
 * box b while converted) or nil, msg, code. */
static int finish_bulk(lua_State *L, durox *dx, lx_calls *c, int rc, durox_bulk_response *r, lx_box *b)
{
	rethrow(L, c);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = r;
	b->fr = bulk_free_box;
	push_bulk_response(L, r);
	lx_boxfree(b);
	return 1;
}

/* handle:cancel_instances(BulkCancelRequest) -> BulkCancelResponse */
static int l_cancel_instances(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	static const char *const extra[] = {"reason", NULL};
	durox_bulk_cancel_request req = {0};
	lx_calls c;
	lx_opts q = check_bulk(L, dx, 2, bulk_common, extra, &req.opts, &c);
	req.reason = lx_opt_text(&q, "reason");
	lx_box *b = lx_newbox(L);
	durox_bulk_response *r = NULL;
	int rc = durox_cancel_instances(dx, &req, &r);
	return finish_bulk(L, dx, &c, rc, r, b);
}

/* handle:raise_event_bulk(BulkEventRequest) -> BulkEventResponse */
static int l_raise_bulk(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	static const char *const extra[] = {"event_name", "event_data", "queue", NULL};
	durox_bulk_event_request req = {0};
	lx_calls c;
	lx_opts q = check_bulk(L, dx, 2, bulk_common, extra, &req.opts, &c);
	req.event_name = lx_opt_text(&q, "event_name");
	if (req.event_name == NULL)
		lx_opt_error(&q, "event_name", "expects a string, got nil");
	lua_getfield(L, 2, "event_data");
	req.event_data = check_payload(L, -1);
	req.queue = lx_opt_boolean(&q, "queue", 0);
	lx_box *b = lx_newbox(L);
	durox_bulk_response *r = NULL;
	int rc = durox_raise_event_bulk(dx, &req, &r);
	return finish_bulk(L, dx, &c, rc, r, b);
}

/* handle:purge_instances(request) -> purge response */
static int l_purge(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	static const char *const extra[] = {"force", NULL};
	durox_purge_request req = {0};
	lx_calls c;
	lx_opts q = check_bulk(L, dx, 2, bulk_common, extra, &req.opts, &c);
	req.force = lx_opt_boolean(&q, "force", 0);
	lx_box *b = lx_newbox(L);
	durox_bulk_response *r = NULL;
	int rc = durox_purge_instances(dx, &req, &r);
	return finish_bulk(L, dx, &c, rc, r, b);
}

/* handle:prune_executions(request) -> prune response */
static int l_prune(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	static const char *const extra[] = {"keep_last", "completed_before", NULL};
	durox_prune_request req = DUROX_PRUNE_REQUEST_INIT;
	lx_calls c;
	lx_opts q = check_bulk(L, dx, 2, bulk_common, extra, &req.opts, &c);
	req.has_keep_last = lx_opt_has(&q, "keep_last");
	req.keep_last = (uint32_t)lx_opt_integer(&q, "keep_last", 0, 0, 1000000000);
	req.completed_before = lx_opt_time(&q, "completed_before");
	lx_box *b = lx_newbox(L);
	durox_bulk_response *r = NULL;
	int rc = durox_prune_executions(dx, &req, &r);
	return finish_bulk(L, dx, &c, rc, r, b);
}

/* handle:restart_instances(request) -> restart response */
static int l_restart(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	static const char *const extra[] = {"latest_version", NULL};
	durox_restart_request req = {0};
	lx_calls c;
	lx_opts q = check_bulk(L, dx, 2, bulk_common, extra, &req.opts, &c);
	req.latest_version = lx_opt_boolean(&q, "latest_version", 0);
	lx_box *b = lx_newbox(L);
	durox_bulk_response *r = NULL;
	int rc = durox_restart_instances(dx, &req, &r);
	return finish_bulk(L, dx, &c, rc, r, b);
}

/* ---- bulk wait ---------------------------------------------------------------------------- */

static void push_wait_response(lua_State *L, const durox_bulk_wait_response *r)
{
	lua_createtable(L, 0, 14);
	lx_set_int(L, "total_matched", (int64_t)r->total_matched);
	lx_set_bool(L, "satisfied", r->satisfied);
	lx_set_bool(L, "timed_out", r->timed_out);
	lx_set_int(L, "elapsed_ms", r->elapsed_ms);
	lx_set_int(L, "polls", r->polls);
	lua_createtable(L, (int)r->count, 0);
	for (size_t k = 0; k < r->count; k++) {
		const durox_wait_item *it = &r->items[k];
		lua_createtable(L, 0, 7);
		lx_set_str(L, "instance_id", it->instance_id);
		lx_set_str(L, "status", durox_status_name(it->status));
		lx_set_bool(L, "finished", it->finished && it->status != DUROX_STATUS_NOT_FOUND);
		lx_set_str(L, "output", it->output);
		lx_set_str(L, "error", it->error);
		if (it->failure_kind != DUROX_FAILURE_NONE)
			lx_set_str(L, "failure_kind", durox_failure_kind_name(it->failure_kind));
		if (it->finished_after_ms >= 0)
			lx_set_int(L, "finished_after_ms", it->finished_after_ms);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, -2, "instances");
	static const char *const lists[] = {"completed_instances", "failed_instances", "not_found_instances",
	                                    "timed_out_instances", "pending_instances"};
	for (int l = 0; l < 5; l++) {
		lua_newtable(L);
		lua_Integer n = 0;
		for (size_t k = 0; k < r->count; k++) {
			const durox_wait_item *it = &r->items[k];
			int in = l == 0   ? it->finished && it->status == DUROX_STATUS_COMPLETED
			         : l == 1 ? it->finished && it->status == DUROX_STATUS_FAILED
			         : l == 2 ? it->status == DUROX_STATUS_NOT_FOUND
			         : l == 3 ? !it->finished && r->timed_out
			                  : !it->finished && !r->timed_out;
			if (!in)
				continue;
			if (l == 1) {
				lua_createtable(L, 0, 3);
				lx_set_str(L, "instance_id", it->instance_id);
				lx_set_str(L, "error", it->error);
				if (it->failure_kind != DUROX_FAILURE_NONE)
					lx_set_str(L, "failure_kind", durox_failure_kind_name(it->failure_kind));
			} else {
				lua_pushstring(L, it->instance_id);
			}
			lua_rawseti(L, -2, ++n);
		}
		lua_setfield(L, -2, lists[l]);
	}
}

static int parse_wait_mode(const char *s)
{
	return strcmp(s, "all") == 0     ? DUROX_WAIT_ALL
	       : strcmp(s, "any") == 0   ? DUROX_WAIT_ANY
	       : strcmp(s, "first") == 0 ? DUROX_WAIT_FIRST
	                                 : -1;
}

/* handle:wait_for_instances(BulkWaitRequest) -> BulkWaitResponse */
static int l_wait_instances(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	static const char *const extra[] = {"timeout", "timeout_ms", "poll_interval_ms", "poll_interval", "mode",
	                                    "count",   NULL};
	durox_bulk_wait_request req = DUROX_BULK_WAIT_REQUEST_INIT;
	lx_calls c;
	lx_opts q = check_bulk(L, dx, 2, wait_common, extra, &req.opts, &c);
	if (lx_opt_has(&q, "timeout_ms") && lx_opt_has(&q, "timeout"))
		lx_opt_error(&q, "timeout", "given twice (as timeout and as timeout_ms)");
	if (lx_opt_has(&q, "poll_interval_ms") && lx_opt_has(&q, "poll_interval"))
		lx_opt_error(&q, "poll_interval", "given twice (as poll_interval and as poll_interval_ms)");
	req.timeout_ms = lx_opt_duration(&q, lx_opt_has(&q, "timeout") ? "timeout" : "timeout_ms", -1, 0, MAX_WAIT);
	req.poll_interval_ms = lx_opt_duration(
	        &q, lx_opt_has(&q, "poll_interval") ? "poll_interval" : "poll_interval_ms", 0, 0, MAX_POLL);
	req.mode = lx_opt_enum(&q, "mode", DUROX_WAIT_ALL, parse_wait_mode, "all, any or first");
	req.count = (uint32_t)lx_opt_integer(&q, "count", 0, 1, 0x7fffffff);
	if (req.mode == DUROX_WAIT_FIRST && req.count == 0)
		lx_opt_error(&q, "count", "is required with mode 'first'");
	lx_box *b = lx_newbox(L);
	durox_bulk_wait_response *r = NULL;
	int rc = durox_wait_for_instances(dx, &req, &r);
	rethrow(L, &c);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = r;
	b->fr = wait_free_box;
	push_wait_response(L, r);
	lx_boxfree(b);
	return 1;
}

/* ---- jobs --------------------------------------------------------------------------------- */

static void joblist_free_box(void *p) { durox_job_list_free(p); }

static void push_job(lua_State *L, const durox_job *j, arena *scratch)
{
	lua_createtable(L, 0, 22);
	lx_set_int(L, "job_id", j->job_id);
	lx_set_str(L, "kind", j->kind);
	lx_set_str(L, "state", j->state);
	lx_set_str(L, "description", j->description);
	if (j->request != NULL) {
		arena_release(scratch);
		json *v = json_parse(scratch, j->request, strlen(j->request), NULL, 0);
		if (v != NULL)
			lx_push_json(L, v);
		else
			lua_pushstring(L, j->request);
		lua_setfield(L, -2, "request");
		arena_release(scratch);
	}
	lx_set_int(L, "total", (int64_t)j->total);
	lx_set_int(L, "done", (int64_t)j->done);
	lx_set_int(L, "failed", (int64_t)j->failed);
	lx_set_int(L, "no_subscription", (int64_t)j->no_subscription);
	lx_set_int(L, "pending", (int64_t)j->pending);
	if (j->rate > 0) {
		lua_pushnumber(L, j->rate);
		lua_setfield(L, -2, "rate");
	}
	if (j->batch_size > 0)
		lx_set_int(L, "batch_size", j->batch_size);
	lx_set_str(L, "owner", j->owner);
	lx_set_bool(L, "active", j->active);
	lx_set_bool(L, "stop_requested", j->stop_requested);
	lx_push_time(L, "created_at", j->created_at);
	lx_push_time(L, "started_at", j->started_at);
	lx_push_time(L, "finished_at", j->finished_at);
	lx_push_time(L, "heartbeat_at", j->heartbeat_at);
	lx_set_str(L, "last_error", j->last_error);
}

/* handle:list_jobs([{state=, kind=, limit=}]) -> { job, ... } newest first */
static int l_list_jobs(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	static const char *const known[] = {"state", "kind", "limit", NULL};
	lx_opts o = lx_opts_at(L, 2, "list_jobs option", known, NULL);
	const char *state = lx_opt_text(&o, "state");
	const char *kind = lx_opt_text(&o, "kind");
	uint32_t limit = (uint32_t)lx_opt_integer(&o, "limit", 0, 1, LX_MAX_PAGE);
	arena *scratch = lx_newarena(L);
	lx_box *b = lx_newbox(L);
	durox_job_list *l;
	int rc = durox_job_list_jobs(dx, state, kind, limit, &l);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = l;
	b->fr = joblist_free_box;
	lua_createtable(L, (int)l->count, 0);
	for (size_t k = 0; k < l->count; k++) {
		push_job(L, &l->items[k], scratch);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lx_boxfree(b);
	return 1;
}

static int64_t check_job_id(lua_State *L, int idx)
{
	lua_Integer id = luaL_checkinteger(L, idx);
	luaL_argcheck(L, id > 0, idx, "job id must be positive");
	return (int64_t)id;
}

/* handle:get_job(job_id [, {targets = true}]) -> job with errors (and targets) */
static int l_get_job(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	int64_t id = check_job_id(L, 2);
	lua_settop(L, 3);
	static const char *const known[] = {"targets", NULL};
	lx_opts o = lx_opts_at(L, 3, "get_job option", known, NULL);
	int with_targets = lx_opt_boolean(&o, "targets", 0);
	arena *scratch = lx_newarena(L);
	lx_box *b = lx_newbox(L);
	durox_job_list *l;
	int rc = durox_job_get(dx, id, &l);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = l;
	b->fr = joblist_free_box;
	push_job(L, &l->items[0], scratch);
	lx_boxfree(b);
	lx_box *rb = lx_newbox(L);
	durox_bulk_response *r;
	rc = durox_job_report(dx, id, &r);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	rb->p = r;
	rb->fr = bulk_free_box;
	lua_pushvalue(L, -2);
	lua_newtable(L); /* errors */
	lua_Integer n = 0;
	for (size_t k = 0; k < r->count; k++) {
		const durox_bulk_item *it = &r->items[k];
		if (it->outcome != DUROX_OUTCOME_FAILED)
			continue;
		lua_createtable(L, 0, 3);
		lx_set_str(L, "instance_id", it->instance_id);
		lx_set_str(L, "error", it->message);
		lx_set_str(L, "code", durox_code_name(it->code));
		lua_rawseti(L, -2, ++n);
	}
	lua_setfield(L, -2, "errors");
	if (with_targets) {
		lua_createtable(L, (int)r->count, 0);
		for (size_t k = 0; k < r->count; k++) {
			const durox_bulk_item *it = &r->items[k];
			lua_createtable(L, 0, 6);
			lx_set_str(L, "instance_id", it->instance_id);
			lx_set_str(L, "outcome", durox_outcome_name(it->outcome));
			if (it->outcome == DUROX_OUTCOME_FAILED)
				lx_set_str(L, "code", durox_code_name(it->code));
			lx_set_str(L, "error", it->message);
			lx_set_str(L, "new_instance_id", it->new_instance_id);
			lua_rawseti(L, -2, (lua_Integer)k + 1);
		}
		lua_setfield(L, -2, "targets");
	}
	lx_boxfree(rb);
	return 1;
}

/* handle:resume_job(job_id [, {progress=, rate=, batch_size=}]) -> the bulk response */
static int l_resume_job(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	int64_t id = check_job_id(L, 2);
	lua_settop(L, 3);
	durox_bulk_options o = {0};
	lx_calls c = {L, 0, 0, 0, 0, {0}, lx_budget(dx)};
	static const char *const known[] = {"progress", "rate", "batch_size", NULL};
	lx_opts q = lx_opts_at(L, 3, "resume_job option", known, NULL);
	c.progress = lx_opt_function(&q, "progress");
	o.rate = lx_opt_number(&q, "rate", 0, 0, MAX_RATE);
	o.batch_size = (uint32_t)lx_opt_integer(&q, "batch_size", 0, 1, MAX_BATCH);
	o.progress = progress_cb;
	o.progress_ud = &c;
	luaL_checkstack(L, 20, NULL);
	lx_box *b = lx_newbox(L);
	durox_bulk_response *r = NULL;
	int rc = durox_job_resume(dx, id, &o, &r);
	return finish_bulk(L, dx, &c, rc, r, b);
}

/* handle:stop_job(job_id) -> "stopping" | "stopped" | "abandoned" */
static int l_stop_job(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	int64_t id = check_job_id(L, 2);
	const char *state;
	int rc = durox_job_stop(dx, id, &state);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushstring(L, state);
	return 1;
}

/* ---- module functions ---------------------------------------------------------------------- */

/* durox.sleep(ms): sleeps (also accepts a duration string like "250ms") */
static int l_sleep(lua_State *L)
{
	int64_t ms = lx_check_duration(L, 1, "sleep time", 0, 0, 86400000);
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
	return 0;
}

/* durox.isatty(stream): stream is "stdin", "stdout", "stderr" or a file descriptor */
static int l_isatty(lua_State *L)
{
	int fd;
	if (lua_type(L, 1) == LUA_TSTRING) {
		static const char *const names[] = {"stdin", "stdout", "stderr", NULL};
		fd = luaL_checkoption(L, 1, NULL, names);
	} else {
		fd = (int)luaL_checkinteger(L, 1);
	}
	lua_pushboolean(L, isatty(fd) == 1);
	return 1;
}

static const luaL_Reg ops_methods[] = {
        {"start_orchestration", l_start},
        {"raise_event", l_raise},
        {"enqueue_event", l_enqueue},
        {"cancel_instance", l_cancel},
        {"wait_for_orchestration", l_wait_one},
        {"cancel_instances", l_cancel_instances},
        {"raise_event_bulk", l_raise_bulk},
        {"wait_for_instances", l_wait_instances},
        {"purge_instances", l_purge},
        {"prune_executions", l_prune},
        {"restart_instances", l_restart},
        {"list_jobs", l_list_jobs},
        {"get_job", l_get_job},
        {"resume_job", l_resume_job},
        {"stop_job", l_stop_job},
        {NULL, NULL},
};

static const luaL_Reg ops_module[] = {
        {"sleep", l_sleep},
        {"isatty", l_isatty},
        {NULL, NULL},
};

void lx_open_ops(lua_State *L) { luaL_setfuncs(L, ops_methods, 0); }

void lx_open_ops_module(lua_State *L) { luaL_setfuncs(L, ops_module, 0); }
