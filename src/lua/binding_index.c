/*
 * binding_index.c - the visibility index methods of a store handle: index_status,
 * index_build (with a progress function, interruptible and resumable), index_drop and
 * index_verify (docs/lua-api.md, docs/index.md). The index is chosen when the handle is
 * opened (durox.open's `index` option, binding.c); reads use it by themselves.
 * Relies on durox.h and lx.h; lx_open_index is called by binding.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "lua/lx.h"

/* handle:index_status() -> table */
static int l_index_status(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	durox_index_status st;
	int rc = durox_index_get_status(dx, &st);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_createtable(L, 0, 13);
	lx_set_bool(L, "enabled", st.enabled);
	lx_set_str(L, "state", st.state);
	lx_set_str(L, "path", st.path);
	lx_set_str(L, "reason", st.reason);
	lx_set_int(L, "instances", (int64_t)st.instances);
	lx_set_int(L, "build_done", (int64_t)st.build_done);
	lx_set_int(L, "build_total", (int64_t)st.build_total);
	if (st.size_bytes >= 0)
		lx_set_int(L, "size_bytes", st.size_bytes);
	lx_push_time(L, "built_at", st.built_at);
	lx_push_time(L, "synced_at", st.synced_at);
	lx_set_int(L, "history_rows", (int64_t)st.history_rows);
	lx_set_int(L, "sync_scans", (int64_t)st.sync_scans);
	lx_set_int(L, "digest_reads", (int64_t)st.digest_reads);
	return 1;
}

/* The progress function runs protected; its error stops the build and is re-raised. */
typedef struct progress_ctx {
	lua_State *L;
	int fn; /* absolute index, 0 = none */
	int errored;
} progress_ctx;

static int call_progress(lua_State *L)
{
	lua_Integer done = lua_tointeger(L, 2), total = lua_tointeger(L, 3);
	lua_settop(L, 1);
	if (lua_isnil(L, 1)) {
		lua_pushboolean(L, 0);
		return 1;
	}
	lua_pushinteger(L, done);
	lua_pushinteger(L, total);
	lua_call(L, 2, 1);
	lua_pushboolean(L, lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1));
	return 1;
}

static int progress_cb(void *ud, uint64_t done, uint64_t total)
{
	progress_ctx *c = ud;
	lua_State *L = c->L;
	lua_pushcfunction(L, call_progress);
	if (c->fn)
		lua_pushvalue(L, c->fn);
	else
		lua_pushnil(L); /* still a call into Lua between chunks: duroxlua's Ctrl-C hook fires here */
	lua_pushinteger(L, (lua_Integer)done);
	lua_pushinteger(L, (lua_Integer)total);
	if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
		c->errored = 1;
		return 1;
	}
	int stop = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return stop;
}

/* handle:index_build([{rebuild = bool, progress = function(done, total)}]) -> true
 * progress returning false stops the build (nil, message, "ABORT"; it resumes later). */
static int l_index_build(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	int rebuild = 0;
	progress_ctx c = {L, 0, 0};
	if (!lua_isnil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		static const char *const known[] = {"rebuild", "progress", NULL};
		lx_check_keys(L, 2, "index_build option", known, NULL);
		lua_getfield(L, 2, "rebuild");
		if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
			luaL_error(L, "option 'rebuild' expects a boolean, got %s", luaL_typename(L, -1));
		rebuild = lua_toboolean(L, -1);
		lua_pop(L, 1);
		lua_getfield(L, 2, "progress");
		if (!lua_isnil(L, -1)) {
			if (!lua_isfunction(L, -1))
				luaL_error(L, "option 'progress' expects a function, got %s", luaL_typename(L, -1));
			c.fn = lua_gettop(L);
		} else {
			lua_pop(L, 1);
		}
	}
	int rc = durox_index_build(dx, rebuild, progress_cb, &c);
	if (c.errored)
		return lua_error(L);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushboolean(L, 1);
	return 1;
}

/* handle:index_sync() -> true */
static int l_index_sync(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	int rc = durox_index_sync(dx);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushboolean(L, 1);
	return 1;
}

/* handle:index_drop() -> true */
static int l_index_drop(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	int rc = durox_index_drop(dx);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushboolean(L, 1);
	return 1;
}

/* handle:index_verify() -> {ok, instances_checked, mismatched, missing, extra, digests_mismatched, first} */
static int l_index_verify(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	durox_index_verify_result r;
	int rc = durox_index_verify(dx, &r);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_createtable(L, 0, 7);
	lx_set_bool(L, "ok", r.mismatched == 0 && r.missing == 0 && r.extra == 0 && r.digests_mismatched == 0);
	lx_set_int(L, "instances_checked", (int64_t)r.instances_checked);
	lx_set_int(L, "mismatched", (int64_t)r.mismatched);
	lx_set_int(L, "missing", (int64_t)r.missing);
	lx_set_int(L, "extra", (int64_t)r.extra);
	lx_set_int(L, "digests_mismatched", (int64_t)r.digests_mismatched);
	if (r.first[0] != '\0')
		lx_set_str(L, "first", r.first);
	return 1;
}

static const luaL_Reg index_methods[] = {
        {"index_status", l_index_status}, {"index_build", l_index_build},   {"index_sync", l_index_sync},
        {"index_drop", l_index_drop},     {"index_verify", l_index_verify}, {NULL, NULL},
};

void lx_open_index(lua_State *L) { luaL_setfuncs(L, index_methods, 0); }
