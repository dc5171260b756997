/*
 * binding_list.c - listing instances: list_instances, list_instances_paginated,
 * search_instances and the instances() iterator ("durox.Iterator", a to-be-closed value so
 * that `break` in a for loop releases its statement), with the filter and predicate
 * arguments they share. A predicate runs through lua_pcall from the engine's callback; its
 * error is re-raised once the engine has returned, while boxes below free the results.
 * Relies on the engine (durox.h), convert.c and options.c; added to the Store's methods by
 * lx_open_list (binding.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "lua/lx.h"

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

/* The predicate of a request table: its `predicate` field, unless the filter had one. */
static void request_predicate(const lx_opts *o, int *pred_idx)
{
	int fn = lx_opt_function(o, "predicate");
	if (fn != 0 && *pred_idx != 0)
		lx_opt_error(o, "predicate", "given twice (in the filter and in the %s)", o->what);
	if (fn != 0)
		*pred_idx = fn;
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
	lx_pred p = {L, pred_idx, 0, lx_budget(dx)};
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

/* ---- order and pages ------------------------------------------------------------ */

static int parse_direction(const char *s)
{
	if (strcmp(s, "asc") == 0 || strcmp(s, "Ascending") == 0 || strcmp(s, "ascending") == 0)
		return DUROX_DIR_ASC;
	if (strcmp(s, "desc") == 0 || strcmp(s, "Descending") == 0 || strcmp(s, "descending") == 0)
		return DUROX_DIR_DESC;
	return -1;
}

#define ORDER_NAMES "CreatedAt, UpdatedAt, InstanceId or OrchestrationName"

/* Builds a list request from the table at t (filter, page_size, page_token, order_by,
 * direction, total_count, predicate). Pushes the filter box. */
static void check_list_request(lua_State *L, int t, durox_list_request *req, int *pred_idx)
{
	static const char *const known[] = {"filter",    "page_size",   "page_token", "order_by",
	                                    "direction", "total_count", "predicate",  NULL};
	lx_opts o = lx_opts_at(L, t, "request", known, NULL);
	memset(req, 0, sizeof *req);
	lua_getfield(L, t, "filter");
	int fidx = lua_absindex(L, -1);
	durox_filter *f = check_filter(L, fidx, 0, pred_idx);
	lua_remove(L, fidx); /* the box (and the predicate, if any) stay */
	if (*pred_idx > fidx)
		(*pred_idx)--;
	request_predicate(&o, pred_idx);
	req->filter = f;
	req->order_by = lx_opt_enum(&o, "order_by", DUROX_ORDER_CREATED_AT, durox_order_parse, ORDER_NAMES);
	req->direction = lx_opt_enum(&o, "direction", DUROX_DIR_DEFAULT, parse_direction, "asc or desc");
	req->page_size = (uint32_t)lx_opt_integer(&o, "page_size", 0, 0, LX_MAX_PAGE);
	req->want_total = lx_opt_boolean(&o, "total_count", 0);
	req->page_token = lx_opt_text(&o, "page_token"); /* anchored in the request table */
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
	check_list_request(L, 2, &req, &pred_idx);
	lx_box *b = lx_newbox(L);
	lx_pred p = {L, pred_idx, 0, lx_budget(dx)};
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
	if (lua_type(L, 2) == LUA_TSTRING) {
		req.text = lx_checktext(L, 2);
	} else {
		luaL_checktype(L, 2, LUA_TTABLE);
		static const char *const known[] = {"text", "filter", "limit", "predicate", NULL};
		lx_opts o = lx_opts_at(L, 2, "search", known, NULL);
		req.text = lx_opt_text(&o, "text"); /* anchored in the query table */
		if (req.text == NULL)
			lx_opt_error(&o, "text", "expects a string, got nil");
		req.limit = (uint32_t)lx_opt_integer(&o, "limit", 0, 0, LX_MAX_PAGE);
		lua_getfield(L, 2, "filter");
		req.filter = check_filter(L, -1, 0, &pred_idx);
		request_predicate(&o, &pred_idx);
	}
	lx_box *b = lx_newbox(L);
	lx_pred p = {L, pred_idx, 0, lx_budget(dx)};
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
	i->pred = (lx_pred){L, lua_isfunction(L, -1) ? lua_absindex(L, -1) : 0, 0, lx_budget(h->dx)};
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
	static const char *const known[] = {"order_by", "direction", "batch_size", NULL};
	lx_opts o = lx_opts_at(L, 3, "iterator option", known, NULL);
	req.order_by = lx_opt_enum(&o, "order_by", req.order_by, durox_order_parse, ORDER_NAMES);
	req.direction = lx_opt_enum(&o, "direction", DUROX_DIR_DEFAULT, parse_direction, "asc or desc");
	req.page_size = (uint32_t)lx_opt_integer(&o, "batch_size", 0, 0, 100000);
	lx_iter *i = lua_newuserdatauv(L, sizeof *i, 3);
	i->it = NULL;
	i->done = 0;
	i->pred = (lx_pred){NULL, 0, 0, 0};
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

static const luaL_Reg list_methods[] = {
        {"list_instances", l_list_instances},
        {"list_instances_paginated", l_list_paginated},
        {"search_instances", l_search},
        {"instances", l_instances},
        {NULL, NULL},
};

void lx_open_list(lua_State *L)
{
	luaL_setfuncs(L, list_methods, 0);
	if (luaL_newmetatable(L, LX_ITER)) {
		lua_pushcfunction(L, iter_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, iter_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, iter_next);
		lua_setfield(L, -2, "__call");
	}
	lua_pop(L, 1);
}
