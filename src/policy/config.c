/*
 * config.c - ManagementConfig files (durox.open{config_file}, duroxlua --config,
 * DUROX_CONFIG) run in the same sandbox as policies (sandbox.h), never in the caller's Lua
 * state: a text chunk with an empty environment (a configuration file is data: it returns
 * a table or assigns fields) under a budget of one million instructions and 16 MB, whose
 * result is copied into the caller's state as plain values (strings, numbers, booleans).
 * Implements lx_read_config_file (lx.h) for the binding.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lx.h"
#include "policy/sandbox.h"

#define MAX_CONFIG_BYTES (1 << 20)

static void free_sandbox(void *p) { sandbox_free(p); }

/* Pushes the message, printable on one line (control bytes and bytes that are not UTF-8 text
 * become \xNN: a binary file's bytes never reach the terminal), and returns 0. */
static int fail(lua_State *L, int top, const char *msg)
{
	lua_settop(L, top);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	const unsigned char *s = (const unsigned char *)msg;
	for (size_t i = 0; s[i] != '\0'; i++) {
		unsigned char c = s[i];
		size_t len = c < 0x80             ? 1
		             : (c & 0xE0) == 0xC0 ? 2
		             : (c & 0xF0) == 0xE0 ? 3
		             : (c & 0xF8) == 0xF0 ? 4
		                                  : 0;
		int ok = len > 0 && (c >= 0x20 || len > 1) && c != 0x7F;
		for (size_t k = 1; ok && k < len; k++)
			ok = (s[i + k] & 0xC0) == 0x80;
		if (ok) {
			luaL_addlstring(&b, (const char *)s + i, len);
			i += len - 1;
		} else {
			char esc[8];
			snprintf(esc, sizeof esc, "\\x%02x", c);
			luaL_addstring(&b, esc);
		}
	}
	luaL_pushresult(&b);
	return 0;
}

int lx_read_config_file(lua_State *L, const char *path)
{
	int top = lua_gettop(L);
	char msg[1024];
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(msg, sizeof msg, "cannot read configuration file: cannot open %s: %s", path, strerror(errno));
		return fail(L, top, msg);
	}
	char *text = malloc(MAX_CONFIG_BYTES + 1);
	size_t n = text != NULL ? fread(text, 1, MAX_CONFIG_BYTES + 1, f) : 0;
	int bad = text == NULL || ferror(f);
	fclose(f);
	if (bad || n > MAX_CONFIG_BYTES || (text != NULL && memchr(text, '\0', n) != NULL)) {
		int binary = !bad && memchr(text, '\0', n) != NULL; /* a binary file, whatever its size */
		free(text);
		snprintf(msg, sizeof msg, "cannot read configuration file: %s is %s", path,
		         bad      ? "unreadable"
		         : binary ? "not a text file (it contains NUL bytes)"
		                  : "larger than 1 MB");
		return fail(L, top, msg);
	}
	if (n > 0 && text[0] == LUA_SIGNATURE[0]) { /* a precompiled chunk: mode "t" refuses it */
		free(text);
		snprintf(msg, sizeof msg,
		         "cannot read configuration file: %s is not a text file (a precompiled Lua chunk)", path);
		return fail(L, top, msg);
	}
	sandbox_limits lim = {16u << 20, 1000, 1000000};
	/* the sandbox belongs to a box on the caller's stack: an error in the caller's state
	 * cannot leak it */
	lx_box *box = lx_newbox(L);
	sandbox *sb = sandbox_new(&lim);
	if (sb == NULL) {
		free(text);
		return fail(L, top, "out of memory");
	}
	box->p = sb;
	box->fr = free_sandbox;
	lua_State *S = sandbox_state(sb);
	lua_pushfstring(S, "@%s", path);
	int st = luaL_loadbufferx(S, text, n, lua_tostring(S, -1), "t");
	free(text);
	if (st != LUA_OK) {
		snprintf(msg, sizeof msg, "cannot read configuration file: %s", lua_tostring(S, -1));
		lx_boxfree(box);
		return fail(L, top, msg);
	}
	lua_remove(S, -2);
	lua_newtable(S); /* the chunk's environment: no globals at all */
	lua_pushvalue(S, -1);
	lua_insert(S, -3); /* env, chunk, env */
	lua_setupvalue(S, -2, 1);
	sandbox_trip trip;
	st = sandbox_call(sb, 0, 1, &trip);
	if (st != LUA_OK || trip != TRIP_NONE) {
		snprintf(msg, sizeof msg, "configuration file %s: %s", path,
		         st != LUA_OK ? lua_tostring(S, -1) : "stopped: exceeded its budget");
		lx_boxfree(box);
		return fail(L, top, msg);
	}
	if (lua_isnil(S, -1)) {
		lua_pop(S, 1); /* assignments: the environment table */
	} else if (!lua_istable(S, -1)) {
		snprintf(msg, sizeof msg,
		         "configuration file %s: returns a %s (expected a table, or nothing and assignments)", path,
		         luaL_typename(S, -1));
		lx_boxfree(box);
		return fail(L, top, msg);
	}
	/* copy plain values into the caller's state */
	lua_newtable(L);
	lua_pushnil(S);
	while (lua_next(S, -2) != 0) {
		int kt = lua_type(S, -2), vt = lua_type(S, -1);
		if (kt != LUA_TSTRING) {
			snprintf(msg, sizeof msg, "configuration file %s: a %s key (expected field names)", path,
			         lua_typename(S, kt));
			lx_boxfree(box);
			return fail(L, top, msg);
		}
		size_t kl;
		const char *k = lua_tolstring(S, -2, &kl);
		if (vt == LUA_TBOOLEAN) {
			lua_pushboolean(L, lua_toboolean(S, -1));
		} else if (vt == LUA_TNUMBER) {
			if (lua_isinteger(S, -1))
				lua_pushinteger(L, lua_tointeger(S, -1));
			else
				lua_pushnumber(L, lua_tonumber(S, -1));
		} else if (vt == LUA_TSTRING) {
			size_t vl;
			const char *v = lua_tolstring(S, -1, &vl);
			lua_pushlstring(L, v, vl);
		} else {
			snprintf(msg, sizeof msg,
			         "configuration file %s: field '%.100s' is a %s (expected a boolean, number or string)",
			         path, k, lua_typename(S, vt));
			lx_boxfree(box);
			return fail(L, top, msg);
		}
		lua_pushlstring(L, k, kl);
		lua_insert(L, -2);
		lua_rawset(L, -3);
		lua_pop(S, 1);
	}
	lx_boxfree(box);
	lua_remove(L, top + 1); /* the box */
	return 1;
}
