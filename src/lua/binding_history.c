/*
 * binding_history.c - an instance's history: read_execution_history (all events of one
 * execution) and get_execution_history_filtered (event types, id and time ranges, pages,
 * payloads on or off). Events are converted by lx_push_event with one scratch arena per
 * call. Relies on the engine (durox.h), convert.c and options.c; added to the Store's
 * methods by lx_open_history (binding.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <string.h>

#include "lua/lx.h"

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

/* handle:get_execution_history_filtered(request) -> { events, next_page_token, execution_id } */
static int l_history_filtered(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	static const char *const known[] = {"instance_id", "execution_id",     "event_types", "from_event_id",
	                                    "to_event_id", "from_time",        "to_time",     "page_size",
	                                    "page_token",  "include_payloads", NULL};
	lx_opts o = lx_opts_at(L, 2, "history request", known, NULL);
	const char *id = lx_opt_text(&o, "instance_id"); /* anchored in the request table */
	if (id == NULL)
		lx_opt_error(&o, "instance_id", "expects a string, got nil");
	durox_history_request req;
	durox_history_request_init(&req, id);
	req.execution_id = (uint64_t)lx_opt_integer(&o, "execution_id", 0, 0, INT64_MAX);
	req.from_event_id = (uint64_t)lx_opt_integer(&o, "from_event_id", 0, 0, INT64_MAX);
	req.to_event_id = (uint64_t)lx_opt_integer(&o, "to_event_id", 0, 0, INT64_MAX);
	req.from_time = lx_opt_time(&o, "from_time");
	req.to_time = lx_opt_time(&o, "to_time");
	req.page_size = (uint32_t)lx_opt_integer(&o, "page_size", 0, 0, LX_MAX_PAGE);
	req.include_payloads = lx_opt_boolean(&o, "include_payloads", 1);
	req.page_token = lx_opt_text(&o, "page_token");
	const char *types[64];
	req.n_event_types = (size_t)lx_opt_text_list(&o, "event_types", types, 64);
	req.event_types = req.n_event_types > 0 ? types : NULL;
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

static const luaL_Reg history_methods[] = {
        {"read_execution_history", l_read_history},
        {"get_execution_history_filtered", l_history_filtered},
        {NULL, NULL},
};

void lx_open_history(lua_State *L) { luaL_setfuncs(L, history_methods, 0); }
