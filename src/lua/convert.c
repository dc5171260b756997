/*
 * convert.c - conversions between engine structs and Lua values for the binding:
 * result tables (summaries, events, statistics), filter tables and query strings -> durox_filter,
 * JSON <-> Lua, and the boxes that own engine results while they are converted.
 * Relies on the engine's public API (durox.h) and util/json. Used by binding.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lx.h"
#include "util/buf.h"
#include "util/timeutil.h"

/* ---- boxes --------------------------------------------------------------------- */

void lx_boxfree(lx_box *b)
{
	if (b->p != NULL && b->fr != NULL)
		b->fr(b->p);
	b->p = NULL;
}

static int box_gc(lua_State *L)
{
	lx_boxfree(luaL_checkudata(L, 1, LX_BOX));
	return 0;
}

lx_box *lx_newbox(lua_State *L)
{
	lx_box *b = lua_newuserdatauv(L, sizeof *b, 0);
	b->p = NULL;
	b->fr = NULL;
	if (luaL_newmetatable(L, LX_BOX)) {
		lua_pushcfunction(L, box_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, box_gc);
		lua_setfield(L, -2, "__close");
	}
	lua_setmetatable(L, -2);
	return b;
}

static void arena_free_box(void *p)
{
	arena_release(p);
	free(p);
}

arena *lx_newarena(lua_State *L)
{
	lx_box *b = lx_newbox(L);
	arena *a = malloc(sizeof *a);
	if (a == NULL)
		luaL_error(L, "out of memory");
	arena_init(a);
	b->p = a;
	b->fr = arena_free_box;
	return a;
}

const char *lx_checktext(lua_State *L, int idx)
{
	size_t n;
	const char *s = luaL_checklstring(L, idx, &n);
	if (strlen(s) != n)
		luaL_argerror(L, idx, "string contains a NUL byte");
	return s;
}

int lx_fail(lua_State *L, durox *dx, int rc)
{
	lua_pushnil(L);
	const char *msg = durox_errmsg(dx);
	lua_pushstring(L, msg[0] ? msg : durox_code_name(rc));
	lua_pushstring(L, durox_code_name(rc));
	return 3;
}

/* ---- result tables -------------------------------------------------------------- */

void lx_set_str(lua_State *L, const char *k, const char *v)
{
	if (v == NULL)
		return;
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

void lx_set_int(lua_State *L, const char *k, int64_t v)
{
	lua_pushinteger(L, (lua_Integer)v);
	lua_setfield(L, -2, k);
}

void lx_set_bool(lua_State *L, const char *k, int v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, k);
}

void lx_set_num(lua_State *L, const char *k, double v)
{
	if (v != v)
		return; /* NaN: undefined, so nil */
	lua_pushnumber(L, v);
	lua_setfield(L, -2, k);
}

void lx_push_time(lua_State *L, const char *field, int64_t t)
{
	if (t == DUROX_NO_TIME)
		return;
	lx_set_int(L, field, t);
}

void lx_push_summary(lua_State *L, const durox_instance_summary *s)
{
	lua_createtable(L, 0, 16);
	lx_set_str(L, "instance_id", s->instance_id);
	lx_set_str(L, "orchestration_name", s->orchestration_name);
	lx_set_str(L, "version", s->version);
	lx_set_str(L, "status", durox_status_name(s->status));
	lx_push_time(L, "created_at", s->created_at);
	lx_push_time(L, "updated_at", s->updated_at);
	lx_set_int(L, "execution_count", (int64_t)s->execution_count);
	lx_set_str(L, "parent_instance", s->parent_instance);
	if (s->parent_id >= 0)
		lx_set_int(L, "parent_id", s->parent_id);
	lx_push_time(L, "completed_at", s->completed_at);
	if (s->failure_kind != DUROX_FAILURE_NONE)
		lx_set_str(L, "failure_kind", durox_failure_kind_name(s->failure_kind));
	lx_set_str(L, "error", s->error);
	lx_set_str(L, "custom_status", s->custom_status);
	lx_set_int(L, "custom_status_version", s->custom_status_version);
}

static int push_summaries(lua_State *L)
{
	const durox_instance_list *l = lua_touserdata(L, 1);
	lua_createtable(L, (int)(l->count > 1000000 ? 1000000 : l->count), 0);
	for (size_t k = 0; k < l->count; k++) {
		lx_push_summary(L, &l->items[k]);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	return 1;
}

void lx_push_summaries(lua_State *L, const durox_instance_list *l)
{
	/* Every table made here stays reachable from the list, so incremental collection steps
	 * while they are made only traverse them again and again (a fifth of the time of a
	 * listing of 100k): the collector is stopped while the list is made, and resumed as it
	 * was afterwards, also when making it raises (out of memory: re-raised after). */
	int running = lua_gc(L, LUA_GCISRUNNING);
	if (running)
		lua_gc(L, LUA_GCSTOP);
	lua_pushcfunction(L, push_summaries);
	lua_pushlightuserdata(L, (void *)l);
	int rc = lua_pcall(L, 1, 1, 0);
	if (running)
		lua_gc(L, LUA_GCRESTART);
	if (rc != LUA_OK)
		lua_error(L);
}

void lx_push_json(lua_State *L, const json *v)
{
	luaL_checkstack(L, 4, "JSON too deep");
	switch (v->type) {
	case JSON_NULL: lua_pushlightuserdata(L, NULL); return;
	case JSON_TRUE: lua_pushboolean(L, 1); return;
	case JSON_FALSE: lua_pushboolean(L, 0); return;
	case JSON_NUMBER:
		if (v->is_int)
			lua_pushinteger(L, (lua_Integer)v->i);
		else
			lua_pushnumber(L, (lua_Number)v->d);
		return;
	case JSON_STRING: lua_pushlstring(L, v->str, v->len); return;
	case JSON_ARRAY: {
		lua_createtable(L, (int)v->count, 0);
		lua_Integer i = 1;
		for (const json *c = v->child; c != NULL; c = c->next) {
			lx_push_json(L, c);
			lua_rawseti(L, -2, i++);
		}
		return;
	}
	case JSON_OBJECT:
		lua_createtable(L, 0, (int)v->count);
		for (const json *c = v->child; c != NULL; c = c->next) {
			lua_pushlstring(L, c->key, c->keylen);
			lx_push_json(L, c);
			lua_rawset(L, -3);
		}
		return;
	}
}

void lx_push_event(lua_State *L, arena *scratch, const durox_event *e)
{
	arena_release(scratch);
	json *root = json_parse(scratch, e->data, e->data_len, NULL, 0);
	if (root != NULL && root->type == JSON_OBJECT) {
		lx_push_json(L, root);
	} else {
		lua_createtable(L, 0, 8);
		lua_pushlstring(L, e->data, e->data_len);
		lua_setfield(L, -2, "raw"); /* not JSON: shown as stored */
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "corrupt");
	}
	lx_set_int(L, "event_id", (int64_t)e->event_id);
	lx_set_int(L, "execution_id", (int64_t)e->execution_id);
	lx_set_str(L, "event_type", e->event_type);
	lx_set_int(L, "timestamp_ms", e->timestamp_ms);
	if (e->source_event_id >= 0)
		lx_set_int(L, "source_event_id", e->source_event_id);
	else {
		lua_pushnil(L);
		lua_setfield(L, -2, "source_event_id");
	}
	lua_pushnil(L);
	lua_setfield(L, -2, "type"); /* event_type is the one name */
	arena_release(scratch);
}

void lx_push_statistics(lua_State *L, const durox_instance_statistics *s)
{
	lua_createtable(L, 0, 12);
	lx_set_int(L, "total_activities_scheduled", (int64_t)s->total_activities_scheduled);
	lx_set_int(L, "total_activities_completed", (int64_t)s->total_activities_completed);
	lx_set_int(L, "total_activities_failed", (int64_t)s->total_activities_failed);
	lx_set_int(L, "total_timers_scheduled", (int64_t)s->total_timers_scheduled);
	lx_set_int(L, "total_timers_fired", (int64_t)s->total_timers_fired);
	lx_set_int(L, "total_events_subscribed", (int64_t)s->total_events_subscribed);
	lx_set_int(L, "total_events_received", (int64_t)s->total_events_received);
	lx_set_int(L, "total_execution_time_ms", (int64_t)s->total_execution_time_ms);
	lua_pushnumber(L, s->average_turn_duration_ms);
	lua_setfield(L, -2, "average_turn_duration_ms");
	lx_set_int(L, "total_turns", (int64_t)s->total_turns);
	lx_set_int(L, "total_history_events", (int64_t)s->total_history_events);
	lx_set_int(L, "total_sub_orchestrations", (int64_t)s->total_sub_orchestrations);
}

/* ---- filters ------------------------------------------------------------------- */

/* Converts the Lua value at idx into a durox_value (text or integer) for field. */
static durox_value lua_value(lua_State *L, int idx, const char *key)
{
	durox_value v = {.type = DUROX_VAL_NULL};
	switch (lua_type(L, idx)) {
	case LUA_TSTRING: {
		size_t n;
		v.type = DUROX_VAL_TEXT;
		v.text = lua_tolstring(L, idx, &n);
		if (strlen(v.text) != n)
			luaL_error(L, "filter field '%s' contains a NUL byte", key);
		break;
	}
	case LUA_TNUMBER:
		if (!lua_isinteger(L, idx))
			luaL_error(L, "filter field '%s' expects an integer, got a float", key);
		v.type = DUROX_VAL_INT;
		v.i = (int64_t)lua_tointeger(L, idx);
		break;
	default: luaL_error(L, "filter field '%s' expects a string or an integer, got %s", key, luaL_typename(L, idx));
	}
	return v;
}

static void add_or_raise(lua_State *L, durox_filter *f, durox_expr *e)
{
	if (durox_filter_add(f, e) != DUROX_OK)
		luaL_error(L, "invalid filter: %s", durox_filter_error(f));
}

/* status / failure_kind: a string or an array of strings */
static void add_set(lua_State *L, durox_filter *f, int field, int idx, const char *key)
{
	if (lua_type(L, idx) == LUA_TTABLE) {
		lua_Integer n = luaL_len(L, idx);
		if (n < 1)
			luaL_error(L, "filter field '%s' is an empty list", key);
		if (n > 500)
			luaL_error(L, "filter field '%s' has more than 500 values", key);
		durox_value vals[500];
		for (lua_Integer k = 1; k <= n; k++) {
			lua_rawgeti(L, idx, k);
			if (lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "filter field '%s' expects strings, got %s at [%d]", key,
				           luaL_typename(L, -1), (int)k);
			size_t len;
			vals[k - 1] = (durox_value){.type = DUROX_VAL_TEXT, .text = lua_tolstring(L, -1, &len)};
			if (strlen(vals[k - 1].text) != len)
				luaL_error(L, "filter field '%s' contains a NUL byte", key);
			lua_pop(L, 1); /* the string stays alive: it is referenced by the table */
		}
		add_or_raise(L, f, durox_expr_in(f, field, vals, (size_t)n));
	} else {
		durox_value v = lua_value(L, idx, key);
		add_or_raise(L, f, durox_expr_cmp(f, field, DUROX_OP_EQ, &v));
	}
}

/* ANDs the query string at idx into f, or raises "query error at position N: ..." (the
 * message is formatted into a Lua string before the jump: nothing is leaked). */
static void add_query(lua_State *L, durox_filter *f, int idx)
{
	size_t n;
	const char *q = lua_tolstring(L, idx, &n);
	if (strlen(q) != n)
		luaL_error(L, "query contains a NUL byte");
	char err[512];
	int rc = durox_filter_add_query(f, q, err, sizeof err);
	if (rc == DUROX_ENOMEM)
		luaL_error(L, "out of memory");
	if (rc != DUROX_OK)
		luaL_error(L, "%s", err);
}

void lx_check_filter(lua_State *L, int idx, durox_filter *f, int *pred_idx)
{
	*pred_idx = 0;
	if (lua_isnoneornil(L, idx))
		return;
	idx = lua_absindex(L, idx);
	if (lua_type(L, idx) == LUA_TSTRING) {
		add_query(L, f, idx);
		return;
	}
	luaL_checktype(L, idx, LUA_TTABLE);
	static const struct {
		const char *key;
		int field;
		int op;
	} simple[] = {
	        {"orchestration_name", DUROX_FIELD_ORCHESTRATION_NAME, DUROX_OP_EQ},
	        {"name", DUROX_FIELD_ORCHESTRATION_NAME, DUROX_OP_EQ},
	        {"name_prefix", DUROX_FIELD_ORCHESTRATION_NAME, DUROX_OP_PREFIX},
	        {"version", DUROX_FIELD_VERSION, DUROX_OP_EQ},
	        {"instance_id", DUROX_FIELD_INSTANCE_ID, DUROX_OP_EQ},
	        {"instance_id_prefix", DUROX_FIELD_INSTANCE_ID, DUROX_OP_PREFIX},
	        {"id_prefix", DUROX_FIELD_INSTANCE_ID, DUROX_OP_PREFIX},
	        {"parent_instance", DUROX_FIELD_PARENT_INSTANCE, DUROX_OP_EQ},
	        {"created_after", DUROX_FIELD_CREATED_AT, DUROX_OP_GT},
	        {"created_before", DUROX_FIELD_CREATED_AT, DUROX_OP_LT},
	        {"updated_after", DUROX_FIELD_UPDATED_AT, DUROX_OP_GT},
	        {"updated_before", DUROX_FIELD_UPDATED_AT, DUROX_OP_LT},
	        {"completed_after", DUROX_FIELD_COMPLETED_AT, DUROX_OP_GT},
	        {"completed_before", DUROX_FIELD_COMPLETED_AT, DUROX_OP_LT},
	        {"custom_status", DUROX_FIELD_CUSTOM_STATUS, DUROX_OP_EQ},
	        {"custom_status_prefix", DUROX_FIELD_CUSTOM_STATUS, DUROX_OP_PREFIX},
	        {"text", DUROX_FIELD_TEXT, DUROX_OP_CONTAINS},
	        {"min_executions", DUROX_FIELD_EXECUTION_COUNT, DUROX_OP_GE},
	        {"max_executions", DUROX_FIELD_EXECUTION_COUNT, DUROX_OP_LE},
	};
	/* iterate in a fixed order so the filter's canonical text (and page tokens) are stable */
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "filter keys must be field names, got %s", luaL_typename(L, -1));
		const char *key = lua_tostring(L, -1);
		int known = strcmp(key, "status") == 0 || strcmp(key, "failure_kind") == 0 ||
		            strcmp(key, "has_parent") == 0 || strcmp(key, "predicate") == 0 ||
		            strcmp(key, "query") == 0;
		for (size_t k = 0; !known && k < sizeof simple / sizeof simple[0]; k++)
			known = strcmp(key, simple[k].key) == 0;
		if (!known)
			luaL_error(L, "unknown filter field '%s'", key);
	}
	lua_getfield(L, idx, "status");
	if (!lua_isnil(L, -1))
		add_set(L, f, DUROX_FIELD_STATUS, lua_absindex(L, -1), "status");
	lua_pop(L, 1);
	lua_getfield(L, idx, "failure_kind");
	if (!lua_isnil(L, -1))
		add_set(L, f, DUROX_FIELD_FAILURE_KIND, lua_absindex(L, -1), "failure_kind");
	lua_pop(L, 1);
	lua_getfield(L, idx, "has_parent");
	if (!lua_isnil(L, -1)) {
		if (!lua_isboolean(L, -1))
			luaL_error(L, "filter field 'has_parent' expects a boolean, got %s", luaL_typename(L, -1));
		add_or_raise(L, f,
		             durox_expr_cmp(f, DUROX_FIELD_PARENT_INSTANCE,
		                            lua_toboolean(L, -1) ? DUROX_OP_NOT_NULL : DUROX_OP_IS_NULL, NULL));
	}
	lua_pop(L, 1);
	for (size_t k = 0; k < sizeof simple / sizeof simple[0]; k++) {
		lua_getfield(L, idx, simple[k].key);
		if (!lua_isnil(L, -1)) {
			durox_value v = lua_value(L, -1, simple[k].key);
			add_or_raise(L, f, durox_expr_cmp(f, simple[k].field, simple[k].op, &v));
		}
		lua_pop(L, 1);
	}
	/* a query string in the table is ANDed after the fields above */
	lua_getfield(L, idx, "query");
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "filter field 'query' expects a string, got %s", luaL_typename(L, -1));
		add_query(L, f, -1);
	}
	lua_pop(L, 1);
	lua_getfield(L, idx, "predicate");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
	} else {
		luaL_argexpected(L, lua_isfunction(L, -1), idx, "filter.predicate to be a function");
		*pred_idx = lua_absindex(L, -1); /* left on the stack for the caller */
	}
}

/* ---- predicates ------------------------------------------------------------------ */

static int call_predicate(lua_State *L)
{
	const durox_instance_summary *s = lua_touserdata(L, 2);
	lua_settop(L, 1);
	lx_push_summary(L, s);
	lua_call(L, 1, 1);
	return 1;
}

int lx_predicate(void *ud, const durox_instance_summary *s)
{
	lx_pred *p = ud;
	lua_State *L = p->L;
	/* Only non-allocating pushes here: the table is built inside the protected call, so
	 * no Lua error can unwind through the engine's C frames. */
	lua_pushcfunction(L, call_predicate);
	lua_pushvalue(L, p->fn_idx);
	lua_pushlightuserdata(L, (void *)s);
	if (lx_pcall(L, 2, 1, p->budget_ms, "the predicate") != LUA_OK) {
		p->errored = 1;
		return DUROX_EABORT; /* the error value stays on the stack */
	}
	int keep = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return keep;
}

/* ---- JSON encoding ------------------------------------------------------------- */

static int is_array(lua_State *L, int idx, lua_Integer *n)
{
	lua_Integer count = 0, max = 0;
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
			lua_pop(L, 1);
			return 0;
		}
		lua_Integer k = lua_tointeger(L, -1);
		if (k > max)
			max = k;
		count++;
	}
	*n = max;
	return count == max;
}

typedef struct lkey {
	const char *s;
	size_t len;
} lkey;

/* byte order, shorter first on a common prefix; keys may contain NUL */
static int cmp_keys(const void *a, const void *b)
{
	const lkey *x = a, *y = b;
	int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
	return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* The output buffer is owned by a box, so a Lua error raised mid-encoding cannot leak it.
 * (A luaL_Buffer cannot be used: encoding keeps values on the stack between appends.) */
static void indent(buf *b, int pretty, int depth)
{
	if (!pretty)
		return;
	buf_addc(b, '\n');
	for (int i = 0; i < depth; i++)
		buf_add(b, "  ", 2);
}

static void encode(lua_State *L, buf *b, int idx, int pretty, int depth)
{
	if (depth > 200)
		luaL_error(L, "cannot encode JSON: nesting deeper than 200 (a cycle?)");
	if (buf_oom(b))
		luaL_error(L, "out of memory");
	luaL_checkstack(L, 6, "JSON too deep");
	switch (lua_type(L, idx)) {
	case LUA_TNIL: buf_adds(b, "null"); return;
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) == NULL) {
			buf_adds(b, "null");
			return;
		}
		break;
	case LUA_TBOOLEAN: buf_adds(b, lua_toboolean(L, idx) ? "true" : "false"); return;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			buf_addi64(b, (int64_t)lua_tointeger(L, idx));
		} else {
			double d = (double)lua_tonumber(L, idx);
			if (d != d || d > 1.7976931348623157e308 || d < -1.7976931348623157e308)
				luaL_error(L, "cannot encode %f as JSON", d);
			buf_addf(b, "%.17g", d);
		}
		return;
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		buf_add_json_string(b, s, n);
		return;
	}
	case LUA_TTABLE: {
		lua_Integer n;
		if (is_array(L, idx, &n)) {
			buf_addc(b, '[');
			for (lua_Integer k = 1; k <= n; k++) {
				if (k > 1)
					buf_addc(b, ',');
				indent(b, pretty, depth + 1);
				lua_rawgeti(L, idx, k);
				encode(L, b, lua_absindex(L, -1), pretty, depth + 1);
				lua_pop(L, 1);
			}
			if (n > 0)
				indent(b, pretty, depth);
			buf_addc(b, ']');
			return;
		}
		/* collect string keys, sort them, then emit */
		lua_newtable(L);
		int keys = lua_absindex(L, -1);
		lua_Integer nk = 0;
		lua_pushnil(L);
		while (lua_next(L, idx) != 0) {
			lua_pop(L, 1);
			if (lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "cannot encode a table with %s keys as a JSON object",
				           luaL_typename(L, -1));
			lua_pushvalue(L, -1);
			lua_rawseti(L, keys, ++nk);
		}
		lkey *sorted = lua_newuserdatauv(L, (size_t)nk * sizeof(lkey) + 1, 0);
		for (lua_Integer k = 1; k <= nk; k++) {
			lua_rawgeti(L, keys, k);
			sorted[k - 1].s = lua_tolstring(L, -1, &sorted[k - 1].len); /* anchored in the keys table */
			lua_pop(L, 1);
		}
		qsort(sorted, (size_t)nk, sizeof *sorted, cmp_keys);
		buf_addc(b, '{');
		for (lua_Integer k = 0; k < nk; k++) {
			if (k > 0)
				buf_addc(b, ',');
			indent(b, pretty, depth + 1);
			buf_add_json_string(b, sorted[k].s, sorted[k].len);
			buf_adds(b, pretty ? ": " : ":");
			lua_pushlstring(L, sorted[k].s, sorted[k].len);
			lua_rawget(L, idx);
			encode(L, b, lua_absindex(L, -1), pretty, depth + 1);
			lua_pop(L, 1);
		}
		if (nk > 0)
			indent(b, pretty, depth);
		buf_addc(b, '}');
		lua_pop(L, 2); /* sorted, keys */
		return;
	}
	default: break;
	}
	luaL_error(L, "cannot encode a %s as JSON", luaL_typename(L, idx));
}

static void buf_free_box(void *p)
{
	buf_free(p);
	free(p);
}

void lx_encode_json(lua_State *L, int idx, int pretty)
{
	idx = lua_absindex(L, idx);
	lx_box *box = lx_newbox(L);
	buf *b = malloc(sizeof *b);
	if (b == NULL)
		luaL_error(L, "out of memory");
	buf_init(b);
	box->p = b;
	box->fr = buf_free_box;
	encode(L, b, idx, pretty, 0);
	if (buf_oom(b))
		luaL_error(L, "out of memory");
	lua_pushlstring(L, b->data != NULL ? b->data : "", b->len);
	lx_boxfree(box);
	lua_remove(L, -2); /* the box */
}
