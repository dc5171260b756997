/*
 * binding_stream.c - the store handle's real-time methods: read_changes (the raw change
 * feed). Misuse raises; expected failures (streaming disabled, a bad cursor, the store
 * failing) return nil, message, code. Relies on the engine (durox.h) and lx.h; added to the
 * Store methods by lx_open_stream (binding.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "lua/lx.h"

/* ---- options ------------------------------------------------------------------------ */

static lua_Integer opt_integer(lua_State *L, int t, const char *k, lua_Integer def, lua_Integer lo, lua_Integer hi)
{
	lua_getfield(L, t, k);
	lua_Integer v = def;
	if (!lua_isnil(L, -1)) {
		if (!lua_isinteger(L, -1))
			luaL_error(L, "'%s' expects an integer, got %s", k, luaL_typename(L, -1));
		v = lua_tointeger(L, -1);
		if (v < lo || v > hi)
			luaL_error(L, "'%s' out of range (%I to %I)", k, lo, hi);
	}
	lua_pop(L, 1);
	return v;
}

static int opt_boolean(lua_State *L, int t, const char *k, int def)
{
	lua_getfield(L, t, k);
	int v = def;
	if (!lua_isnil(L, -1)) {
		if (!lua_isboolean(L, -1))
			luaL_error(L, "'%s' expects a boolean, got %s", k, luaL_typename(L, -1));
		v = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

/* Field k as a string or NULL; the string stays on the stack below the caller's values only
 * while the table holds it (tables keep their strings alive). */
static const char *opt_text(lua_State *L, int t, const char *k)
{
	lua_getfield(L, t, k);
	const char *v = NULL;
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "'%s' expects a string, got %s", k, luaL_typename(L, -1));
		size_t n;
		v = lua_tolstring(L, -1, &n);
		if (strlen(v) != n)
			luaL_error(L, "'%s' contains a NUL byte", k);
	}
	lua_pop(L, 1);
	return v;
}

/* ---- read_changes --------------------------------------------------------------------- */

static void changes_free_box(void *p) { durox_changes_free(p); }

static void push_reset(lua_State *L, int reset, const char *reason)
{
	lua_createtable(L, 0, 2);
	lx_set_str(L, "kind", durox_reset_name(reset));
	lx_set_str(L, "reason", reason);
}

/* handle:read_changes{cursor=, from="start"|"now", limit=, payloads=, verify_ms=}
 *   -> {changes = {...}, cursor=, more=, idle=, reset = nil | {kind=, reason=}} | nil, msg, code */
static int l_read_changes(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	durox_changes_request req = {0};
	if (!lua_isnil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		static const char *const known[] = {"cursor", "from", "limit", "payloads", "verify_ms", NULL};
		lx_check_keys(L, 2, "read_changes option", known, NULL);
		req.cursor = opt_text(L, 2, "cursor");
		const char *from = opt_text(L, 2, "from");
		if (from != NULL && strcmp(from, "start") != 0 && strcmp(from, "now") != 0)
			luaL_error(L, "'from' expects \"start\" or \"now\", got \"%s\"", from);
		if (from != NULL && req.cursor != NULL)
			luaL_error(L, "'from' and 'cursor' exclude each other");
		req.from_now = from != NULL && strcmp(from, "now") == 0;
		req.limit = (uint32_t)opt_integer(L, 2, "limit", 0, 1, 100000);
		req.include_payloads = opt_boolean(L, 2, "payloads", 0);
		req.verify_ms = (int64_t)opt_integer(L, 2, "verify_ms", 0, -1, 86400000);
	}
	lx_box *b = lx_newbox(L);
	durox_changes *c = NULL;
	int rc = durox_read_changes(dx, &req, &c);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = c;
	b->fr = changes_free_box;
	lua_createtable(L, 0, 6);
	lua_createtable(L, (int)c->count, 0);
	for (size_t i = 0; i < c->count; i++) {
		const durox_change *ch = &c->changes[i];
		lua_createtable(L, 0, 8);
		lx_set_str(L, "instance_id", ch->instance_id);
		lx_set_int(L, "execution_id", (int64_t)ch->execution_id);
		lx_set_int(L, "event_id", (int64_t)ch->event_id);
		lx_set_str(L, "event_type", ch->event_type);
		lx_set_int(L, "timestamp", ch->timestamp);
		if (ch->created_at != DUROX_NO_TIME)
			lx_set_int(L, "created_at", ch->created_at);
		lx_set_str(L, "data", ch->data);
		lx_set_str(L, "cursor", ch->cursor);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "changes");
	lx_set_str(L, "cursor", c->cursor);
	lx_set_bool(L, "more", c->more);
	lx_set_bool(L, "idle", c->idle);
	lx_set_bool(L, "verified", c->verified);
	if (c->reset != DUROX_RESET_NONE) {
		push_reset(L, c->reset, c->reset_reason);
		lua_setfield(L, -2, "reset");
	}
	lx_boxfree(b);
	return 1;
}

static const luaL_Reg stream_methods[] = {
        {"read_changes", l_read_changes},
        {NULL, NULL},
};

void lx_open_stream(lua_State *L) { luaL_setfuncs(L, stream_methods, 0); }
