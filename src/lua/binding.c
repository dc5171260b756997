/*
 * binding.c - the Lua module `durox`: durox_luaopen builds the module table and the Store
 * metatable from the method groups of the binding's files, and holds the module's small
 * functions (JSON, times). The groups: binding_store.c (open, close, info, config),
 * binding_list.c (listing, search, iterator), binding_instance.c (one instance),
 * binding_history.c, binding_metrics.c (metrics, analytics, stuck work), binding_ops.c
 * (writes, bulk operations, jobs) and binding_query.c (durox.parse_query); options.c reads
 * every options table and convert.c converts results. When a call raises and when it
 * returns nil, message, code is written in lx.h. Used by the loadable module (module.c) and
 * by duroxlua.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "lua/lx.h"
#include "lua/lx_access.h"
#include "util/timeutil.h"

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

static const luaL_Reg module_functions[] = {
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
		/* the methods live in an __index table of their own, one group per file */
		lua_newtable(L);
		lx_open_store(L);
		lx_open_list(L);
		lx_open_instance(L);
		lx_open_history(L);
		lx_open_metrics(L);
		lx_open_ops(L);
		lx_open_access(L);
		lx_open_stream(L);
		lx_open_index(L);
		lua_setfield(L, -2, "__index");
		lx_store_metamethods(L);
	}
	lua_pop(L, 1);
	lx_preload_embedded(L);
	luaL_newlib(L, module_functions);
	lx_open_store_module(L);
	lx_open_query(L);
	lx_open_ops_module(L);
	lx_open_net(L);
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "null");
	lua_pushliteral(L, DUROX_VERSION);
	lua_setfield(L, -2, "version");
	return 1;
}
