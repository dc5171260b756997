/*
 * sandbox.c - the sandboxed Lua state of policies and configuration files (contracts in
 * sandbox.h): the capped allocator, the per-call budget (count hook and wall clock), and
 * the allow-list of library functions. Relies on liblua only; used by lua_policy.c and
 * config.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/sandbox.h"

#define HOOK_EVERY 256
#define CHECK_CLOCK_EVERY 1024 /* pattern steps between two clock reads */

struct sandbox {
	lua_State *L;
	sandbox_limits lim;
	size_t used;
	/* the current call's budget */
	int in_call;
	uint64_t spent;       /* instructions and steps */
	uint64_t since_clock; /* steps since the clock was last read */
	struct timespec deadline;
	sandbox_trip trip;
};

/* ---- memory ------------------------------------------------------------------------ */

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	sandbox *sb = ud;
	size_t old = ptr != NULL ? osize : 0;
	if (nsize == 0) {
		free(ptr);
		sb->used -= old;
		return NULL;
	}
	/* the cap binds the sandboxed code; our own bookkeeping between calls (arguments,
	 * results, messages) must not fail, so it is not capped */
	if (sb->in_call && nsize > old && sb->used + (nsize - old) > sb->lim.memory) {
		if (sb->trip == TRIP_NONE)
			sb->trip = TRIP_MEMORY;
		return NULL;
	}
	void *p = realloc(ptr, nsize);
	if (p == NULL)
		return NULL;
	sb->used = sb->used - old + nsize;
	return p;
}

size_t sandbox_memory(const sandbox *sb) { return sb->used; }

/* ---- the budget ------------------------------------------------------------------------ */

static int past_deadline(const sandbox *sb)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > sb->deadline.tv_sec ||
	       (now.tv_sec == sb->deadline.tv_sec && now.tv_nsec >= sb->deadline.tv_nsec);
}

static void hook(lua_State *L, lua_Debug *ar);

/* Raises the budget error; from now on every instruction of this call raises again. */
static int trip(lua_State *L, sandbox *sb, sandbox_trip why)
{
	if (sb->trip == TRIP_NONE || sb->trip == TRIP_MEMORY)
		sb->trip = why;
	lua_sethook(L, hook, LUA_MASKCOUNT, 1);
	if (sb->trip == TRIP_TIME)
		return luaL_error(L, "stopped: exceeded the time budget of %d ms", (int)sb->lim.time_ms);
	return luaL_error(L, "stopped: exceeded the budget of %I instructions", (lua_Integer)sb->lim.instructions);
}

static void hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	sandbox *sb = sandbox_of(L);
	if (sb == NULL || !sb->in_call)
		return;
	if (sb->trip == TRIP_TIME || sb->trip == TRIP_INSTRUCTIONS)
		trip(L, sb, sb->trip);
	sb->spent += HOOK_EVERY;
	if (sb->spent > sb->lim.instructions)
		trip(L, sb, TRIP_INSTRUCTIONS);
	if (past_deadline(sb))
		trip(L, sb, TRIP_TIME);
}

void sandbox_charge(lua_State *L, uint64_t n)
{
	sandbox *sb = sandbox_of(L);
	if (sb == NULL || !sb->in_call)
		return;
	if (sb->trip == TRIP_TIME || sb->trip == TRIP_INSTRUCTIONS)
		trip(L, sb, sb->trip);
	sb->spent += n;
	if (sb->spent > sb->lim.instructions)
		trip(L, sb, TRIP_INSTRUCTIONS);
	sb->since_clock += n;
	if (sb->since_clock >= CHECK_CLOCK_EVERY) {
		sb->since_clock = 0;
		if (past_deadline(sb))
			trip(L, sb, TRIP_TIME);
	}
}

int sandbox_call(sandbox *sb, int nargs, int nresults, sandbox_trip *why)
{
	lua_State *L = sb->L;
	clock_gettime(CLOCK_MONOTONIC, &sb->deadline);
	sb->deadline.tv_sec += sb->lim.time_ms / 1000;
	sb->deadline.tv_nsec += (long)(sb->lim.time_ms % 1000) * 1000000L;
	if (sb->deadline.tv_nsec >= 1000000000L) {
		sb->deadline.tv_sec++;
		sb->deadline.tv_nsec -= 1000000000L;
	}
	sb->spent = sb->since_clock = 0;
	sb->trip = TRIP_NONE;
	sb->in_call = 1;
	lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
	int st = lua_pcall(L, nargs, nresults, 0);
	lua_sethook(L, NULL, 0, 0);
	sb->in_call = 0;
	*why = sb->trip;
	if (st != LUA_OK) {
		/* one line: the message (or what the error value was) */
		const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
		char line[512];
		if (sb->trip == TRIP_MEMORY || st == LUA_ERRMEM)
			snprintf(line, sizeof line, "stopped: exceeded the memory budget of %zu bytes", sb->lim.memory);
		else
			snprintf(line, sizeof line, "%s", m != NULL ? m : "error object is not a string");
		for (char *c = line; *c; c++)
			if (*c == '\n' || *c == '\r')
				*c = ' ';
		lua_pop(L, 1);
		lua_pushstring(L, line);
	}
	if (sb->trip == TRIP_MEMORY || st == LUA_ERRMEM) {
		/* give the memory back before the next call */
		lua_gc(L, LUA_GCCOLLECT);
	}
	return st;
}

/* ---- the state ------------------------------------------------------------------------------ */

sandbox *sandbox_of(lua_State *L)
{
	void *ud = NULL;
	lua_Alloc f = lua_getallocf(L, &ud);
	return f == capped_alloc ? ud : NULL;
}

lua_State *sandbox_state(sandbox *sb) { return sb->L; }

const sandbox_limits *sandbox_get_limits(const sandbox *sb) { return &sb->lim; }

static int open_libs(lua_State *L)
{
	luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
	lua_pop(L, 1);
	static const char *const removed[] = {"load",  "loadfile",     "dofile",       "require",    "collectgarbage",
	                                      "print", "getmetatable", "setmetatable", "loadstring", NULL};
	for (int k = 0; removed[k] != NULL; k++) {
		lua_pushnil(L);
		lua_setglobal(L, removed[k]);
	}
	luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	safe_string_open(L); /* find, match, gmatch, gsub, rep */
	lua_pop(L, 1);
	luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
	lua_pop(L, 1);
	luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
	lua_pop(L, 1);
	luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
	lua_pop(L, 1);
	/* package.loaded stays in the registry but nothing can reach it without require */
	return 0;
}

sandbox *sandbox_new(const sandbox_limits *lim)
{
	sandbox *sb = calloc(1, sizeof *sb);
	if (sb == NULL)
		return NULL;
	sb->lim.memory = lim != NULL && lim->memory > 0 ? lim->memory : 16u << 20;
	sb->lim.time_ms = lim != NULL && lim->time_ms > 0 ? lim->time_ms : 50;
	sb->lim.instructions = lim != NULL && lim->instructions > 0 ? lim->instructions : 10000000u;
	sb->L = lua_newstate(capped_alloc, sb);
	if (sb->L == NULL) {
		free(sb);
		return NULL;
	}
	lua_pushcfunction(sb->L, open_libs);
	if (lua_pcall(sb->L, 0, 0, 0) != LUA_OK) {
		sandbox_free(sb);
		return NULL;
	}
	return sb;
}

void sandbox_free(sandbox *sb)
{
	if (sb == NULL)
		return;
	if (sb->L != NULL)
		lua_close(sb->L);
	free(sb);
}
