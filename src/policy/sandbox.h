/*
 * sandbox.h - a Lua state of its own for untrusted-in-effect code: access-control policies
 * (lua_policy.c) and ManagementConfig files (config.c). It has
 * - a capped allocator (default 16 MB): an allocation past the cap fails as "not enough
 *   memory";
 * - a budget per call (default 50 ms of wall time and 10 million VM instructions), checked by
 *   a count hook every 256 instructions and by the pattern matcher every 1024 steps; once a
 *   call exceeds it, every further instruction raises again, so a pcall inside the sandboxed
 *   code cannot swallow the stop;
 * - only safe functions: the base library without load, loadfile, dofile, require,
 *   collectgarbage, print, getmetatable and setmetatable (no finalizers, no access to the
 *   string metatable), plus string, table, math and utf8, where string has no dump and its
 *   find, match, gmatch, gsub and rep are ours (safe_string.c): bounded by the same budget.
 * Used by src/policy only; the engine knows nothing of it.
 */
#ifndef DUROX_POLICY_SANDBOX_H
#define DUROX_POLICY_SANDBOX_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sandbox_limits {
	size_t memory;         /* bytes; 0: 16 MB */
	uint32_t time_ms;      /* wall time per call; 0: 50 */
	uint64_t instructions; /* VM instructions (and pattern steps) per call; 0: 10 million */
} sandbox_limits;

typedef struct sandbox sandbox;

/* Why the last call stopped, beyond an ordinary error. */
typedef enum sandbox_trip { TRIP_NONE = 0, TRIP_TIME, TRIP_INSTRUCTIONS, TRIP_MEMORY } sandbox_trip;

/* A new sandbox (its own lua_State with the safe libraries). NULL when out of memory. */
sandbox *sandbox_new(const sandbox_limits *lim);
/* Closes the state. Accepts NULL. */
void sandbox_free(sandbox *sb);
lua_State *sandbox_state(sandbox *sb);
const sandbox_limits *sandbox_get_limits(const sandbox *sb);

/* Calls the function below nargs arguments on the sandbox's stack (lua_pcall) under a fresh
 * budget. Returns LUA_OK with nresults values pushed, or an error status with a one-line
 * message pushed (budget trips say which budget and how much). *trip tells whether a budget
 * stopped it (also when the code caught the error and returned normally: the result must
 * then be discarded). Never raises. */
int sandbox_call(sandbox *sb, int nargs, int nresults, sandbox_trip *trip);

/* For C functions running inside a call (the pattern matcher, string.rep): counts n steps
 * against the budget and raises when it is exhausted. */
void sandbox_charge(lua_State *L, uint64_t n);
/* The sandbox of a state made by sandbox_new (NULL for any other state). */
sandbox *sandbox_of(lua_State *L);
/* Bytes in use by the state. */
size_t sandbox_memory(const sandbox *sb);

/* Registers the safe string functions (safe_string.c) into the string table at the top. */
void safe_string_open(lua_State *L);

#endif
