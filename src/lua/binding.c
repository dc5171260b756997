/*
 * binding.c - the Lua module `durox`: durox.open() and the methods of a store handle
 * ("durox.Store"), which carry the proposal's method names and take and return plain
 * tables with its field names.
 *
 * Misuse (wrong argument types, unknown filter fields, a closed handle) raises; an
 * expected failure (not found, busy, invalid token, limit) returns nil, message, code.
 * Every engine result is owned by a box userdata while it is converted, so a Lua error
 * at any point frees it. Relies on the engine (durox.h) and convert.c; used by the
 * loadable module (module.c) and by duroxlua.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "lua/lx.h"
#include "util/timeutil.h"

/* ---- handle --------------------------------------------------------------------- */

durox *lx_checkstore(lua_State *L, int idx)
{
	lx_store *h = luaL_checkudata(L, idx, LX_STORE);
	if (h->dx == NULL)
		luaL_error(L, "attempt to use a closed store");
	return h->dx;
}

static int store_close(lua_State *L)
{
	lx_store *h = luaL_checkudata(L, 1, LX_STORE);
	durox_close(h->dx);
	h->dx = NULL;
	return 0;
}

static int store_tostring(lua_State *L)
{
	lx_store *h = luaL_checkudata(L, 1, LX_STORE);
	if (h->dx == NULL) {
		lua_pushstring(L, "durox.Store (closed)");
	} else {
		durox_store_info in;
		durox_get_store_info(h->dx, &in);
		lua_pushfstring(L, "durox.Store (%s:%s)", in.provider, in.location);
	}
	return 1;
}

static int opt_int_field(lua_State *L, int t, const char *k, lua_Integer def)
{
	lua_getfield(L, t, k);
	lua_Integer v = def;
	if (!lua_isnil(L, -1)) {
		if (!lua_isinteger(L, -1))
			luaL_error(L, "option '%s' expects an integer, got %s", k, luaL_typename(L, -1));
		v = lua_tointeger(L, -1);
	}
	lua_pop(L, 1);
	return (int)v;
}

static int opt_bool_field(lua_State *L, int t, const char *k, int def)
{
	lua_getfield(L, t, k);
	int v = def;
	if (!lua_isnil(L, -1)) {
		if (!lua_isboolean(L, -1))
			luaL_error(L, "option '%s' expects a boolean, got %s", k, luaL_typename(L, -1));
		v = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

/* Applies the ManagementConfig fields of table t to dx; raises on misuse. */
static void apply_config(lua_State *L, durox *dx, int t)
{
	static const char *const known[] = {"enable_metrics",      "enable_streaming",        "max_list_instances",
	                                    "max_bulk_operations", "metrics_retention_hours", "cache_ttl_seconds",
	                                    "stall_threshold_ms",  "timer_overdue_ms",        "event_wait_threshold_ms",
	                                    "max_attempts",        "near_poison_attempts",    NULL};
	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		lua_pop(L, 1);
		const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
		int ok = 0;
		for (int i = 0; known[i] && !ok; i++)
			ok = strcmp(k, known[i]) == 0;
		if (!ok)
			luaL_error(L, "unknown config field '%s'", k);
	}
	durox_config c;
	durox_get_config(dx, &c);
	c.enable_metrics = opt_bool_field(L, t, "enable_metrics", c.enable_metrics);
	c.enable_streaming = opt_bool_field(L, t, "enable_streaming", c.enable_streaming);
	lua_Integer v;
#define U32(name)                                                                                                      \
	v = opt_int_field(L, t, #name, c.name);                                                                        \
	if (v < 0 || v > 0x7fffffff)                                                                                   \
		luaL_error(L, "config field '" #name "' out of range");                                                \
	c.name = (uint32_t)v;
	U32(max_list_instances)
	U32(max_bulk_operations)
	U32(metrics_retention_hours)
	U32(cache_ttl_seconds)
	U32(stall_threshold_ms)
	U32(timer_overdue_ms)
	U32(event_wait_threshold_ms)
	U32(max_attempts)
	U32(near_poison_attempts)
#undef U32
	if (durox_set_config(dx, &c) != DUROX_OK)
		luaL_error(L, "%s", durox_errmsg(dx));
}

static int l_apply_config(lua_State *L)
{
	apply_config(L, lua_touserdata(L, 1), 2);
	return 0;
}

/* Applies the config table at t (read from path); returns 1, or 0 with the message pushed. */
static int apply_config_protected(lua_State *L, durox *dx, int t, const char *path)
{
	lua_pushcfunction(L, l_apply_config);
	lua_pushlightuserdata(L, dx);
	lua_pushvalue(L, t);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		lua_pushfstring(L, "configuration file %s: %s", path, lua_tostring(L, -1));
		lua_remove(L, -2);
		return 0;
	}
	return 1;
}

/* durox.open(url [, options]) -> handle | nil, message, code */
static int l_open(lua_State *L)
{
	const char *url = lx_checktext(L, 1);
	lua_settop(L, 2);
	durox_open_options o = {0};
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		o.readonly = opt_bool_field(L, 2, "readonly", 0);
		o.busy_timeout_ms = opt_int_field(L, 2, "busy_timeout_ms", 0);
		lua_getfield(L, 2, "max_write_share");
		if (!lua_isnil(L, -1)) {
			if (!lua_isnumber(L, -1))
				luaL_error(L, "option 'max_write_share' expects a number, got %s",
				           luaL_typename(L, -1));
			o.max_write_share = (double)lua_tonumber(L, -1);
		}
		lua_pop(L, 1);
		/* index = true (default: the default path) | false | PATH; the path string stays in
		 * the options table, which outlives durox_open (it copies it) */
		lua_getfield(L, 2, "index");
		if (lua_isboolean(L, -1))
			o.index = lua_toboolean(L, -1) ? DUROX_INDEX_AUTO : DUROX_INDEX_OFF;
		else if (lua_type(L, -1) == LUA_TSTRING)
			o.index_path = lx_checktext(L, -1);
		else if (!lua_isnil(L, -1))
			luaL_error(L, "option 'index' expects a boolean or a path, got %s", luaL_typename(L, -1));
		lua_pop(L, 1);
		lua_pushnil(L);
		while (lua_next(L, 2) != 0) {
			lua_pop(L, 1);
			const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
			if (strcmp(k, "readonly") && strcmp(k, "busy_timeout_ms") && strcmp(k, "config") &&
			    strcmp(k, "config_file") && strcmp(k, "max_write_share") && strcmp(k, "index"))
				luaL_error(L,
				           "unknown option '%s' (expected readonly, busy_timeout_ms, max_write_share, "
				           "index, config, config_file)",
				           k);
		}
	}
	/* create the (closed) handle first, then open into it */
	lx_store *h = lua_newuserdatauv(L, sizeof *h, 0);
	h->dx = NULL;
	luaL_setmetatable(L, LX_STORE);
	char err[512];
	int rc = durox_open(url, &o, &h->dx, err, sizeof err);
	if (rc != DUROX_OK) {
		lua_pushnil(L);
		lua_pushstring(L, err);
		lua_pushstring(L, durox_code_name(rc));
		return 3;
	}
	if (!lua_isnoneornil(L, 2)) {
		/* the file first, so that options.config overrides it */
		lua_getfield(L, 2, "config_file");
		if (!lua_isnil(L, -1)) {
			const char *path = lx_checktext(L, -1);
			if (!lx_read_config_file(L, path) ||
			    !apply_config_protected(L, h->dx, lua_absindex(L, -1), path)) {
				/* a bad file is an expected failure: nil, message, INVALID (and no handle) */
				lua_pushfstring(L, "%s", lua_tostring(L, -1));
				durox_close(h->dx);
				h->dx = NULL;
				lua_pushnil(L);
				lua_insert(L, -2);
				lua_pushstring(L, "INVALID");
				return 3;
			}
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
		lua_getfield(L, 2, "config");
		if (!lua_isnil(L, -1)) {
			luaL_checktype(L, -1, LUA_TTABLE);
			apply_config(L, h->dx, lua_absindex(L, -1));
		}
		lua_pop(L, 1);
	}
	return 1;
}

/* handle:info() -> table */
static int l_info(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	durox_store_info in;
	durox_get_store_info(dx, &in);
	lua_createtable(L, 0, 10);
	lx_set_str(L, "provider", in.provider);
	lx_set_str(L, "location", in.location);
	lx_set_str(L, "schema_version", in.schema_version);
#define B(f)                                                                                                           \
	lua_pushboolean(L, in.f);                                                                                      \
	lua_setfield(L, -2, #f);
	B(readonly)
	B(has_custom_status)
	B(has_parent_instance)
	B(has_kv)
	B(has_sessions)
	B(has_attempt_count)
	B(has_worker_identity)
#undef B
	return 1;
}

/* handle:config([fields]) -> the (updated) ManagementConfig table */
static int l_config(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		apply_config(L, dx, 2);
	}
	durox_config c;
	durox_get_config(dx, &c);
	lua_createtable(L, 0, 6);
	lx_set_bool(L, "enable_metrics", c.enable_metrics);
	lx_set_bool(L, "enable_streaming", c.enable_streaming);
	lx_set_int(L, "max_list_instances", c.max_list_instances);
	lx_set_int(L, "max_bulk_operations", c.max_bulk_operations);
	lx_set_int(L, "metrics_retention_hours", c.metrics_retention_hours);
	lx_set_int(L, "cache_ttl_seconds", c.cache_ttl_seconds);
	lx_set_int(L, "stall_threshold_ms", c.stall_threshold_ms);
	lx_set_int(L, "timer_overdue_ms", c.timer_overdue_ms);
	lx_set_int(L, "event_wait_threshold_ms", c.event_wait_threshold_ms);
	lx_set_int(L, "max_attempts", c.max_attempts);
	lx_set_int(L, "near_poison_attempts", c.near_poison_attempts);
	return 1;
}

/* ---- filters and predicates ----------------------------------------------------- */

static void filter_free_box(void *p) { durox_filter_free(p); }

/* Pushes a box owning a filter built from the table or query string at idx (nil: no
 * filter; a malformed query raises its "query error at position N: ..."). Returns the
 * filter and sets *pred_idx to the predicate's stack index (0 if none); pred_arg, if not
 * 0, is a stack index that may hold a predicate function given as a separate argument. */
static durox_filter *check_filter(lua_State *L, int idx, int pred_arg, int *pred_idx)
{
	idx = lua_absindex(L, idx);
	lx_box *b = lx_newbox(L);
	durox_filter *f = durox_filter_new();
	if (f == NULL)
		luaL_error(L, "out of memory");
	b->p = f;
	b->fr = filter_free_box;
	if (!lua_isnoneornil(L, idx) && lua_type(L, idx) != LUA_TTABLE && lua_type(L, idx) != LUA_TSTRING)
		luaL_typeerror(L, idx, "filter table, query string or nil");
	lx_check_filter(L, idx, f, pred_idx);
	if (pred_arg != 0 && !lua_isnoneornil(L, pred_arg)) {
		luaL_checktype(L, pred_arg, LUA_TFUNCTION);
		if (*pred_idx != 0)
			luaL_argerror(L, pred_arg, "predicate given twice (in the filter and as an argument)");
		*pred_idx = lua_absindex(L, pred_arg);
	}
	return f;
}

durox_filter *lx_filter_arg(lua_State *L, int idx, int *pred_idx) { return check_filter(L, idx, 0, pred_idx); }

/* After an engine call that ran a predicate: raise its error if it raised one. */
static void rethrow_predicate(lua_State *L, const lx_pred *p)
{
	if (p->errored)
		lua_error(L); /* the error value is on top; boxes below free the results */
}

static void list_free_box(void *p) { durox_instance_list_free(p); }

/* handle:list_instances([filter] [, predicate]) -> { summaries } | nil, msg, code */
static int l_list_instances(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 3);
	int pred_idx;
	durox_filter *f = check_filter(L, 2, 3, &pred_idx);
	lx_box *b = lx_newbox(L);
	lx_pred p = {L, pred_idx, 0};
	luaL_checkstack(L, 8, NULL);
	durox_instance_list *l;
	int rc = durox_list_instances(dx, f, pred_idx ? lx_predicate : NULL, &p, &l);
	rethrow_predicate(L, &p);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = l;
	b->fr = list_free_box;
	lx_push_summaries(L, l);
	lx_boxfree(b);
	return 1;
}

static int check_order(lua_State *L, int t)
{
	lua_getfield(L, t, "order_by");
	int order = DUROX_ORDER_CREATED_AT;
	if (!lua_isnil(L, -1)) {
		const char *s = luaL_checkstring(L, -1);
		order = durox_order_parse(s);
		if (order < 0)
			luaL_error(L,
			           "unknown order_by '%s' (expected CreatedAt, UpdatedAt, InstanceId or "
			           "OrchestrationName)",
			           s);
	}
	lua_pop(L, 1);
	return order;
}

static int check_direction(lua_State *L, int t)
{
	lua_getfield(L, t, "direction");
	int dir = DUROX_DIR_DEFAULT;
	if (!lua_isnil(L, -1)) {
		const char *s = luaL_checkstring(L, -1);
		if (strcmp(s, "asc") == 0 || strcmp(s, "Ascending") == 0 || strcmp(s, "ascending") == 0)
			dir = DUROX_DIR_ASC;
		else if (strcmp(s, "desc") == 0 || strcmp(s, "Descending") == 0 || strcmp(s, "descending") == 0)
			dir = DUROX_DIR_DESC;
		else
			luaL_error(L, "unknown direction '%s' (expected asc or desc)", s);
	}
	lua_pop(L, 1);
	return dir;
}

/* Builds a list request from the table at t (filter, page_size, page_token, order_by,
 * direction, total_count). Pushes the filter box. */
static void check_list_request(lua_State *L, int t, durox_list_request *req, int *pred_idx, int iterator)
{
	static const char *const known[] = {"filter",      "page_size", "page_token", "order_by", "direction",
	                                    "total_count", "predicate", "batch_size", NULL};
	lx_check_keys(L, t, "request", known, NULL);
	memset(req, 0, sizeof *req);
	lua_getfield(L, t, "filter");
	int fidx = lua_absindex(L, -1);
	durox_filter *f = check_filter(L, fidx, 0, pred_idx);
	lua_remove(L, fidx); /* the box (and the predicate, if any) stay */
	if (*pred_idx > fidx)
		(*pred_idx)--;
	lua_getfield(L, t, "predicate");
	if (!lua_isnil(L, -1)) {
		luaL_argexpected(L, lua_isfunction(L, -1), 2, "request.predicate to be a function");
		if (*pred_idx != 0)
			luaL_error(L, "predicate given twice (in the filter and in the request)");
		*pred_idx = lua_absindex(L, -1);
	} else {
		lua_pop(L, 1);
	}
	req->filter = f;
	req->order_by = check_order(L, t);
	req->direction = check_direction(L, t);
	lua_Integer ps = opt_int_field(L, t, iterator ? "batch_size" : "page_size", 0);
	if (ps < 0 || ps > 1000000)
		luaL_error(L, "%s out of range", iterator ? "batch_size" : "page_size");
	req->page_size = (uint32_t)ps;
	req->want_total = opt_bool_field(L, t, "total_count", 0);
	lua_getfield(L, t, "page_token");
	if (!lua_isnil(L, -1)) {
		req->page_token = luaL_checkstring(L, -1); /* anchored in the request table */
	}
	lua_pop(L, 1);
}

/* handle:list_instances_paginated(request) -> { instances, next_page_token, total_count } */
static int l_list_paginated(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	if (lua_isnoneornil(L, 2)) {
		lua_settop(L, 1);
		lua_newtable(L);
	}
	luaL_checktype(L, 2, LUA_TTABLE);
	durox_list_request req;
	int pred_idx;
	check_list_request(L, 2, &req, &pred_idx, 0);
	lx_box *b = lx_newbox(L);
	lx_pred p = {L, pred_idx, 0};
	req.predicate = pred_idx ? lx_predicate : NULL;
	req.predicate_ud = &p;
	luaL_checkstack(L, 8, NULL);
	durox_instance_list *l;
	int rc = durox_list_instances_paginated(dx, &req, &l);
	rethrow_predicate(L, &p);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = l;
	b->fr = list_free_box;
	lua_createtable(L, 0, 3);
	lx_push_summaries(L, l);
	lua_setfield(L, -2, "instances");
	if (l->next_page_token != NULL)
		lx_set_str(L, "next_page_token", l->next_page_token);
	if (l->total_count >= 0)
		lx_set_int(L, "total_count", l->total_count);
	lx_boxfree(b);
	return 1;
}

/* handle:search_instances(text | {text=, filter=, limit=, predicate=}) -> { summaries } */
static int l_search(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	durox_search_request req = {0};
	int pred_idx = 0;
	durox_filter *f = NULL;
	if (lua_type(L, 2) == LUA_TSTRING) {
		req.text = lua_tostring(L, 2);
	} else {
		luaL_checktype(L, 2, LUA_TTABLE);
		static const char *const known[] = {"text", "filter", "limit", "predicate", NULL};
		lx_check_keys(L, 2, "search", known, NULL);
		lua_getfield(L, 2, "text");
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "search field 'text' expects a string, got %s", luaL_typename(L, -1));
		req.text = lx_checktext(L, -1); /* anchored in the query table */
		lua_pop(L, 1);
		lua_Integer lim = opt_int_field(L, 2, "limit", 0);
		if (lim < 0)
			luaL_error(L, "limit must not be negative");
		req.limit = (uint32_t)lim;
		lua_getfield(L, 2, "filter");
		f = check_filter(L, -1, 0, &pred_idx);
		lua_getfield(L, 2, "predicate");
		if (!lua_isnil(L, -1)) {
			luaL_argexpected(L, lua_isfunction(L, -1), 2, "query.predicate to be a function");
			if (pred_idx != 0)
				luaL_error(L, "predicate given twice");
			pred_idx = lua_absindex(L, -1);
		}
		req.filter = f;
	}
	lx_box *b = lx_newbox(L);
	lx_pred p = {L, pred_idx, 0};
	req.predicate = pred_idx ? lx_predicate : NULL;
	req.predicate_ud = &p;
	luaL_checkstack(L, 8, NULL);
	durox_instance_list *l;
	int rc = durox_search_instances(dx, &req, &l);
	rethrow_predicate(L, &p);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = l;
	b->fr = list_free_box;
	lx_push_summaries(L, l);
	lx_boxfree(b);
	return 1;
}

/* ---- iterator --------------------------------------------------------------------- */

typedef struct lx_iter {
	durox_instance_iter *it;
	int done;
	lx_pred pred; /* the engine keeps &pred; iter_next points it at the calling state */
} lx_iter;

/* uservalues of an iterator: 1 = store handle, 2 = filter box, 3 = predicate or nil */

static int iter_close(lua_State *L)
{
	lx_iter *i = luaL_checkudata(L, 1, LX_ITER);
	durox_instance_iter_free(i->it);
	i->it = NULL;
	i->done = 1;
	return 0;
}

static int iter_next(lua_State *L)
{
	lx_iter *i = luaL_checkudata(L, 1, LX_ITER);
	if (i->done || i->it == NULL)
		return 0;
	lua_getiuservalue(L, 1, 1);
	lx_store *h = luaL_checkudata(L, -1, LX_STORE);
	if (h->dx == NULL)
		return luaL_error(L, "store was closed during iteration");
	lua_getiuservalue(L, 1, 3);
	i->pred = (lx_pred){L, lua_isfunction(L, -1) ? lua_absindex(L, -1) : 0, 0};
	luaL_checkstack(L, 8, NULL);
	const durox_instance_summary *s;
	int rc = durox_instance_iter_next(i->it, &s);
	rethrow_predicate(L, &i->pred);
	if (rc < 0) {
		i->done = 1;
		return luaL_error(L, "%s", durox_errmsg(h->dx)); /* mid-iteration failure: raise */
	}
	if (rc == 0) {
		iter_close(L);
		return 0;
	}
	lx_push_summary(L, s);
	return 1;
}

/* handle:instances([filter] [, {order_by=, direction=, batch_size=}]) -> iterator, state, nil, closer */
static int l_instances(lua_State *L)
{
	lx_checkstore(L, 1);
	lua_settop(L, 3);
	int pred_idx;
	durox_filter *f = check_filter(L, 2, 0, &pred_idx); /* pushes the filter box at 4 */
	durox_list_request req = {0};
	req.filter = f;
	req.order_by = DUROX_ORDER_INSTANCE_ID; /* the order an index serves: any number of rows streams in O(n) */
	if (!lua_isnil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		static const char *const known[] = {"order_by", "direction", "batch_size", NULL};
		lx_check_keys(L, 3, "iterator option", known, NULL);
		lua_getfield(L, 3, "order_by");
		int has_order = !lua_isnil(L, -1);
		lua_pop(L, 1);
		if (has_order)
			req.order_by = check_order(L, 3);
		req.direction = check_direction(L, 3);
		lua_Integer bs = opt_int_field(L, 3, "batch_size", 0);
		if (bs < 0 || bs > 100000)
			luaL_error(L, "batch_size out of range");
		req.page_size = (uint32_t)bs;
	}
	lx_iter *i = lua_newuserdatauv(L, sizeof *i, 3);
	i->it = NULL;
	i->done = 0;
	i->pred = (lx_pred){NULL, 0, 0};
	luaL_setmetatable(L, LX_ITER);
	int it_idx = lua_gettop(L);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, it_idx, 1);
	lua_pushvalue(L, 4);
	lua_setiuservalue(L, it_idx, 2);
	if (pred_idx) {
		lua_pushvalue(L, pred_idx);
		lua_setiuservalue(L, it_idx, 3);
	}
	durox *dx = lx_checkstore(L, 1);
	if (pred_idx) {
		/* userdata memory never moves, so the engine may keep this pointer */
		req.predicate = lx_predicate;
		req.predicate_ud = &i->pred;
	}
	int rc = durox_instance_iter_new(dx, &req, &i->it);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushcfunction(L, iter_next);
	lua_pushvalue(L, it_idx);
	lua_pushnil(L);
	lua_pushvalue(L, it_idx);
	return 4;
}

/* ---- single instance ----------------------------------------------------------- */

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
			luaL_error(L,
			           "bad argument #1 to 'get_instances_status' (instance id #%d is a %s, not a string)",
			           (int)k, luaL_typename(L, -1));
		size_t idlen;
		ids[k - 1] = lua_tolstring(L, -1, &idlen); /* anchored in the argument table */
		if (strlen(ids[k - 1]) != idlen)
			luaL_error(L, "bad argument #1 to 'get_instances_status' (instance id #%d contains a NUL byte)",
			           (int)k);
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

/* ---- history --------------------------------------------------------------------- */

static void history_free_box(void *p) { durox_history_free(p); }

static void push_events(lua_State *L, const durox_history *h)
{
	arena *scratch = lx_newarena(L);
	lua_createtable(L, (int)h->count, 0);
	for (size_t k = 0; k < h->count; k++) {
		lx_push_event(L, scratch, &h->events[k]);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_remove(L, -2); /* the scratch box */
}

static lua_Integer check_u64_field(lua_State *L, int t, const char *k)
{
	lua_Integer v = opt_int_field(L, t, k, 0);
	if (v < 0)
		luaL_error(L, "'%s' must not be negative", k);
	return v;
}

/* handle:get_execution_history_filtered(request) -> { events, next_page_token, execution_id } */
static int l_history_filtered(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	static const char *const known[] = {"instance_id", "execution_id",     "event_types", "from_event_id",
	                                    "to_event_id", "from_time",        "to_time",     "page_size",
	                                    "page_token",  "include_payloads", NULL};
	lx_check_keys(L, 2, "history request", known, NULL);
	durox_history_request req;
	lua_getfield(L, 2, "instance_id");
	if (lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "history request field 'instance_id' expects a string, got %s", luaL_typename(L, -1));
	durox_history_request_init(&req, lx_checktext(L, -1));
	lua_pop(L, 1);
	req.execution_id = (uint64_t)check_u64_field(L, 2, "execution_id");
	req.from_event_id = (uint64_t)check_u64_field(L, 2, "from_event_id");
	req.to_event_id = (uint64_t)check_u64_field(L, 2, "to_event_id");
	req.from_time = lx_opt_time(L, 2, "from_time");
	req.to_time = lx_opt_time(L, 2, "to_time");
	lua_Integer ps = check_u64_field(L, 2, "page_size");
	if (ps > 1000000)
		luaL_error(L, "page_size out of range");
	req.page_size = (uint32_t)ps;
	req.include_payloads = opt_bool_field(L, 2, "include_payloads", 1);
	lua_getfield(L, 2, "page_token");
	if (!lua_isnil(L, -1))
		req.page_token = luaL_checkstring(L, -1);
	lua_pop(L, 1);
	lx_box *tb = lx_newbox(L);
	lua_getfield(L, 2, "event_types");
	if (!lua_isnil(L, -1)) {
		int t = lua_absindex(L, -1);
		if (lua_type(L, t) == LUA_TSTRING) {
			lua_createtable(L, 1, 0);
			lua_pushvalue(L, t);
			lua_rawseti(L, -2, 1);
			lua_replace(L, t);
		}
		luaL_checktype(L, t, LUA_TTABLE);
		lua_Integer n = luaL_len(L, t);
		if (n > 64)
			luaL_error(L, "too many event_types (at most 64)");
		const char **types = calloc((size_t)n + 1, sizeof *types);
		if (types == NULL)
			luaL_error(L, "out of memory");
		tb->p = types;
		tb->fr = free;
		for (lua_Integer k = 1; k <= n; k++) {
			lua_rawgeti(L, t, k);
			if (lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "event_types[%d] is not a string", (int)k);
			types[k - 1] = lua_tostring(L, -1); /* anchored in the table */
			lua_pop(L, 1);
		}
		req.event_types = types;
		req.n_event_types = (size_t)n;
	}
	lx_box *b = lx_newbox(L);
	durox_history *h;
	int rc = durox_get_execution_history_filtered(dx, &req, &h);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = h;
	b->fr = history_free_box;
	lua_createtable(L, 0, 3);
	push_events(L, h);
	lua_setfield(L, -2, "events");
	lx_set_int(L, "execution_id", (lua_Integer)h->execution_id);
	lx_set_str(L, "next_page_token", h->next_page_token);
	lx_boxfree(b);
	return 1;
}

/* handle:read_execution_history(id [, execution_id]) -> { events } */
static int l_read_history(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *id = lx_checktext(L, 2);
	lua_Integer exec = luaL_optinteger(L, 3, 0);
	luaL_argcheck(L, exec >= 0, 3, "execution id must not be negative");
	lx_box *b = lx_newbox(L);
	durox_history *h;
	int rc = durox_read_execution_history(dx, id, (uint64_t)exec, &h);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = h;
	b->fr = history_free_box;
	push_events(L, h);
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

/* ---- module functions ------------------------------------------------------------ */

/* durox.encode_json(value [, pretty]) -> string */
static int l_encode_json(lua_State *L)
{
	luaL_checkany(L, 1);
	lx_encode_json(L, 1, lua_toboolean(L, 2));
	return 1;
}

/* durox.decode_json(text) -> value | nil, message, "INVALID" */
static int l_decode_json(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	arena *a = lx_newarena(L);
	char err[160];
	json *v = json_parse(a, s, n, err, sizeof err);
	if (v == NULL) {
		lua_pushnil(L);
		lua_pushstring(L, err);
		lua_pushstring(L, "INVALID");
		return 3;
	}
	lx_push_json(L, v);
	return 1;
}

/* durox.parse_time(text [, now_ms]) -> ms | nil, message, "INVALID" */
static int l_parse_time(lua_State *L)
{
	const char *s = luaL_checkstring(L, 1);
	int64_t now = (int64_t)luaL_optinteger(L, 2, time_now_ms());
	int64_t ms;
	char err[256];
	if (time_parse_user(s, now, &ms, err, sizeof err) != 0) {
		lua_pushnil(L);
		lua_pushstring(L, err);
		lua_pushstring(L, "INVALID");
		return 3;
	}
	lua_pushinteger(L, ms);
	return 1;
}

/* durox.format_time(ms) -> 'YYYY-MM-DDTHH:MM:SS.mmmZ' (years 0..9999) */
static int l_format_time(lua_State *L)
{
	char out[40];
	lua_Integer ms = luaL_checkinteger(L, 1);
	luaL_argcheck(L, ms >= -62167219200000LL && ms <= 253402300799999LL, 1, "time out of range (years 0 to 9999)");
	time_format_iso((int64_t)ms, out, sizeof out);
	lua_pushstring(L, out);
	return 1;
}

/* durox.now() -> current time in ms */
static int l_now(lua_State *L)
{
	lua_pushinteger(L, time_now_ms());
	return 1;
}

static const luaL_Reg store_methods[] = {
        {"close", store_close},
        {"info", l_info},
        {"config", l_config},
        {"get_orchestration_status", l_get_status},
        {"get_orchestration_descriptor", l_get_descriptor},
        {"list_executions", l_list_executions},
        {"read_execution_history", l_read_history},
        {"list_instances", l_list_instances},
        {"list_instances_paginated", l_list_paginated},
        {"search_instances", l_search},
        {"instances", l_instances},
        {"get_instance_details", l_get_details},
        {"get_instances_status", l_get_instances_status},
        {"get_execution_history_filtered", l_history_filtered},
        {"get_instance_statistics", l_get_statistics},
        {NULL, NULL},
};

static const luaL_Reg module_functions[] = {
        {"open", l_open},
        {"encode_json", l_encode_json},
        {"decode_json", l_decode_json},
        {"parse_time", l_parse_time},
        {"format_time", l_format_time},
        {"now", l_now},
        {NULL, NULL},
};

int durox_luaopen(lua_State *L)
{
	if (luaL_newmetatable(L, LX_STORE)) {
		luaL_newlib(L, store_methods);
		/* method groups defined in other files of the binding add themselves here */
		lx_open_metrics(L);
		lx_open_ops(L);
		lx_open_index(L);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, store_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, store_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, store_tostring);
		lua_setfield(L, -2, "__tostring");
		lua_pushliteral(L, LX_STORE);
		lua_setfield(L, -2, "__name");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, LX_ITER)) {
		lua_pushcfunction(L, iter_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, iter_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, iter_next);
		lua_setfield(L, -2, "__call");
	}
	lua_pop(L, 1);
	lx_preload_embedded(L);
	luaL_newlib(L, module_functions);
	lx_open_query(L);
	lx_open_ops_module(L);
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "null");
	lua_pushliteral(L, DUROX_VERSION);
	lua_setfield(L, -2, "version");
	return 1;
}
