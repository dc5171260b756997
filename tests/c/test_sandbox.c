/*
 * test_sandbox.c - tests of the policy sandbox (src/policy/sandbox.c, safe_string.c), run as
 * their own CTest (c_sandbox) because they need the Lua layer:
 * - our pattern functions (find, match, gmatch, gsub) give exactly what Lua 5.4's stock ones
 *   give: one chunk generates thousands of random patterns and subjects (the same seed in both
 *   states) and the serialized results of both states must be equal;
 * - the budgets stop CPU, memory and pattern bombs, a pcall cannot swallow the stop, and the
 *   state keeps working afterwards;
 * - the allow-list: what a sandboxed chunk can and cannot reach.
 */
#define _POSIX_C_SOURCE 200809L
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/sandbox.h"

static int failures = 0;

#define CHECK(c)                                                                                                       \
	do {                                                                                                           \
		if (!(c)) {                                                                                            \
			failures++;                                                                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                          \
		}                                                                                                      \
	} while (0)

/* The differential chunk: returns one string with every case's result. */
static const char differential[] =
        "local atoms = { 'a', 'b', '.', '%a', '%d', '%s', '%w', '%p', '%A', '[ab]', '[^a]', '[a-c]', '[%d_]',\n"
        "  '%%', '%.', 'x', '1', ' ', '%b()', '%f[%w]', '%f[%W]', '[]]', '[^]]', '%u', '%l', '%x', '%c', '%g' }\n"
        "local quants = { '', '', '', '*', '+', '-', '?' }\n"
        "local chars = { 'a', 'b', 'c', 'x', '1', '2', ' ', '(', ')', '.', '%', '_', 'A', 'Z', '\\n', ']' }\n"
        "math.randomseed(20261201)\n"
        "local function pick(t) return t[math.random(#t)] end\n"
        "local function pattern()\n"
        "  local p = {}\n"
        "  if math.random(5) == 1 then p[#p + 1] = '^' end\n"
        "  for _ = 1, math.random(0, 5) do\n"
        "    local r = math.random(12)\n"
        "    if r == 1 then p[#p + 1] = '(' .. pick(atoms) .. pick(quants) .. ')'\n"
        "    elseif r == 2 then p[#p + 1] = '()'\n"
        "    elseif r == 3 then p[#p + 1] = '(' .. pick(atoms) .. ')%1'\n"
        "    else p[#p + 1] = pick(atoms) .. pick(quants) end\n"
        "  end\n"
        "  if math.random(5) == 1 then p[#p + 1] = '$' end\n"
        "  if math.random(40) == 1 then p[#p + 1] = '%' end\n"
        "  if math.random(40) == 1 then p[#p + 1] = '[a' end\n"
        "  if math.random(40) == 1 then p[#p + 1] = '(' end\n"
        "  if math.random(40) == 1 then p[#p + 1] = ')' end\n"
        "  if math.random(40) == 1 then p[#p + 1] = '%9' end\n"
        "  return table.concat(p)\n"
        "end\n"
        "local function subject()\n"
        "  local s = {}\n"
        "  for _ = 1, math.random(0, 12) do s[#s + 1] = pick(chars) end\n"
        "  return table.concat(s)\n"
        "end\n"
        "local out = {}\n"
        "local function put(ok, ...)\n"
        "  if not ok then out[#out + 1] = 'ERR'; return end\n"
        "  local n = select('#', ...)\n"
        "  local parts = { tostring(n) }\n"
        "  for i = 1, n do parts[#parts + 1] = type((select(i, ...))) .. ':' .. tostring((select(i, ...))) end\n"
        "  out[#out + 1] = table.concat(parts, '|')\n"
        "end\n"
        "for case = 1, 6000 do\n"
        "  local p, s = pattern(), subject()\n"
        "  CASE = ('%d %q %q'):format(case, p, s)\n"
        "  local init = math.random(-3, 14)\n"
        "  out[#out + 1] = ('#%d %q %q %d'):format(case, p, s, init)\n"
        "  put(pcall(string.find, s, p, init))\n"
        "  put(pcall(string.find, s, p, init, true))\n"
        "  put(pcall(string.match, s, p, init))\n"
        "  put(pcall(function()\n"
        "    local r = {}\n"
        "    for a, b in s:gmatch(p, init) do r[#r + 1] = tostring(a) .. ',' .. tostring(b) end\n"
        "    return table.concat(r, ';')\n"
        "  end))\n"
        "  put(pcall(string.gsub, s, p, '<%0>', math.random(0, 3)))\n"
        "  put(pcall(string.gsub, s, p, '%1%%'))\n"
        "  put(pcall(string.gsub, s, p, { a = 'A', b = false }))\n"
        "  put(pcall(string.gsub, s, p, function(x) return x == 'a' and 'Q' or nil end))\n"
        "end\n"
        "for _, n in ipairs { 0, 1, 3 } do put(pcall(string.rep, 'ab', n, ',')) end\n"
        "return table.concat(out, '\\n')\n";

/* Runs the chunk in L (protected, results as one string); returns a malloc'd copy. */
static char *run_in(lua_State *L, int sandboxed, sandbox *sb)
{
	if (luaL_loadbufferx(L, differential, sizeof differential - 1, "=differential", "t") != LUA_OK) {
		fprintf(stderr, "load: %s\n", lua_tostring(L, -1));
		return NULL;
	}
	int st;
	if (sandboxed) {
		sandbox_trip trip;
		st = sandbox_call(sb, 0, 1, &trip);
		CHECK(trip == TRIP_NONE);
	} else {
		st = lua_pcall(L, 0, 1, 0);
	}
	if (st != LUA_OK) {
		fprintf(stderr, "run (%s): %s\n", sandboxed ? "sandbox" : "stock", lua_tostring(L, -1));
		lua_getglobal(L, "CASE");
		fprintf(stderr, "  at case %s\n", lua_tostring(L, -1));
		return NULL;
	}
	char *r = strdup(lua_tostring(L, -1));
	lua_pop(L, 1);
	return r;
}

static void test_patterns_match_stock_lua(void)
{
	lua_State *stock = luaL_newstate();
	luaL_openlibs(stock);
	sandbox_limits big = {256u << 20, 600000, 1ull << 40};
	sandbox *sb = sandbox_new(&big);
	CHECK(sb != NULL);
	char *a = run_in(stock, 0, NULL);
	char *b = run_in(sandbox_state(sb), 1, sb);
	CHECK(a != NULL && b != NULL);
	if (a != NULL && b != NULL && strcmp(a, b) != 0) {
		/* the first differing line and its case */
		const char *x = a, *y = b, *case_line = a;
		while (*x && *x == *y) {
			if (*x == '\n' && x[1] == '#')
				case_line = x + 1;
			x++, y++;
		}
		const char *end = strchr(case_line, '\n');
		fprintf(stderr, "differs at: %.*s\n  stock:   %.80s\n  sandbox: %.80s\n",
		        end ? (int)(end - case_line) : 80, case_line, x, y);
		failures++;
	}
	size_t lines = 0;
	for (const char *c = a ? a : ""; *c; c++)
		lines += *c == '\n';
	CHECK(lines > 6000 * 9);
	free(a);
	free(b);
	sandbox_free(sb);
	lua_close(stock);
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

/* Runs code in sb; returns the status and writes the message (or the result) into out. */
static int run(sandbox *sb, const char *code, sandbox_trip *trip, char *out, size_t n, double *ms)
{
	lua_State *L = sandbox_state(sb);
	out[0] = '\0';
	if (luaL_loadbufferx(L, code, strlen(code), "=bomb", "t") != LUA_OK) {
		snprintf(out, n, "%s", lua_tostring(L, -1));
		lua_pop(L, 1);
		return LUA_ERRSYNTAX;
	}
	double t0 = now_ms();
	int st = sandbox_call(sb, 0, 1, trip);
	*ms = now_ms() - t0;
	const char *s = lua_tostring(L, -1);
	snprintf(out, n, "%s", s ? s : luaL_typename(L, -1));
	lua_pop(L, 1);
	return st;
}

static void test_bombs_are_stopped(void)
{
	sandbox_limits lim = {16u << 20, 50, 10000000};
	sandbox *sb = sandbox_new(&lim);
	static const struct {
		const char *code;
		sandbox_trip trip; /* the budget that must stop it (TRIP_NONE: an ordinary error) */
		const char *msg;   /* a part of the message */
	} bombs[] = {
	        {"while true do end", TRIP_INSTRUCTIONS, "stopped: exceeded"},
	        {"while true do pcall(function() while true do end end) end", TRIP_INSTRUCTIONS, "stopped: exceeded"},
	        {"local function f() return pcall(f) end while true do f() end", TRIP_INSTRUCTIONS, ""},
	        {"return ('a'):rep(16):find(('a-'):rep(16) .. 'b')", TRIP_INSTRUCTIONS, "stopped: exceeded"},
	        {"return ('a'):rep(5000):match(('.-'):rep(30) .. 'b')", TRIP_INSTRUCTIONS, "stopped: exceeded"},
	        {"return ('a'):rep(200000):gsub('a*b', '')", TRIP_INSTRUCTIONS, "stopped: exceeded"},
	        {"return ('a'):rep(1000000):find(('a'):rep(500000) .. 'b', 1, true)", TRIP_INSTRUCTIONS,
	         "stopped: exceeded"},
	        {"return ('x'):rep(1 << 30)", TRIP_NONE, "resulting string too large"},
	        {"local t = {} for i = 1, 1e9 do t[i] = i end", TRIP_MEMORY, "stopped: exceeded"},
	        {"local s = 'x' while true do s = s .. s end", TRIP_MEMORY, "stopped: exceeded"},
	        {"local function f() return 1 + f() end return f()", TRIP_MEMORY, "stopped: exceeded"},
	        {"local function f(s) return (s:gsub('.', f)) end return f('aaaa')", TRIP_NONE, "stack overflow"},
	        {"return string.format('%099999d', 1)", TRIP_NONE, "invalid conversion"},
	        {"return table.concat(setmetatable({}, {}))", TRIP_NONE, "setmetatable"},
	};
	for (size_t k = 0; k < sizeof bombs / sizeof bombs[0]; k++) {
		sandbox_trip trip;
		char msg[512];
		double ms;
		int st = run(sb, bombs[k].code, &trip, msg, sizeof msg, &ms);
		int ok = st != LUA_OK && (bombs[k].trip == TRIP_NONE ? trip == TRIP_NONE : trip != TRIP_NONE) &&
		         strstr(msg, bombs[k].msg) != NULL;
		/* a memory bomb may meet the time budget first (growing a table takes time): either stops it */
		if (!ok) {
			failures++;
			fprintf(stderr, "bomb %zu (%s): status %d trip %d after %.1f ms: %s\n", k, bombs[k].code, st,
			        (int)trip, ms, msg);
		}
		/* the state works on after each bomb, within its memory */
		st = run(sb, "return ('ok'):rep(2, '-')", &trip, msg, sizeof msg, &ms);
		CHECK(st == LUA_OK && trip == TRIP_NONE && strcmp(msg, "ok-ok") == 0);
		CHECK(sandbox_memory(sb) < lim.memory);
	}
	/* the wall-clock budget: a loop that costs little VM time per step. The decision and the
	 * message are asserted, never the elapsed time (a loaded machine stretches it; figures of
	 * the budgets' speed belong in bench/) */
	sandbox_limits slow = {16u << 20, 30, 1ull << 40};
	sandbox *sb2 = sandbox_new(&slow);
	sandbox_trip trip;
	char msg[512];
	double ms;
	int st = run(sb2, "while true do end", &trip, msg, sizeof msg, &ms);
	CHECK(st != LUA_OK && trip == TRIP_TIME);
	CHECK(strcmp(msg, "stopped: exceeded the time budget of 30 ms") == 0);
	sandbox_free(sb2);
	sandbox_free(sb);
}

static void test_allow_list(void)
{
	sandbox *sb = sandbox_new(NULL);
	static const char *const absent[] = {
	        "os",           "io",           "debug",     "require",        "load",
	        "loadfile",     "dofile",       "package",   "collectgarbage", "print",
	        "getmetatable", "setmetatable", "coroutine", "loadstring",     "string.dump"};
	for (size_t k = 0; k < sizeof absent / sizeof absent[0]; k++) {
		char code[128], msg[256];
		snprintf(code, sizeof code, "return tostring(%s == nil)", absent[k]);
		sandbox_trip trip;
		double ms;
		int st = run(sb, code, &trip, msg, sizeof msg, &ms);
		if (st != LUA_OK || strcmp(msg, "true") != 0) {
			failures++;
			fprintf(stderr, "%s is reachable in the sandbox (%s)\n", absent[k], msg);
		}
	}
	static const char *const present[] = {"string.find", "table.sort", "math.floor", "utf8.char", "pcall",
	                                      "pairs",       "tostring",   "select",     "error",     "rawget"};
	for (size_t k = 0; k < sizeof present / sizeof present[0]; k++) {
		char code[128], msg[256];
		snprintf(code, sizeof code, "return type(%s)", present[k]);
		sandbox_trip trip;
		double ms;
		int st = run(sb, code, &trip, msg, sizeof msg, &ms);
		CHECK(st == LUA_OK && strcmp(msg, "function") == 0);
	}
	/* binary chunks cannot be loaded (text mode), and the string metatable is out of reach */
	char msg[256];
	sandbox_trip trip;
	double ms;
	CHECK(run(sb, "\x1bLua", &trip, msg, sizeof msg, &ms) == LUA_ERRSYNTAX);
	CHECK(run(sb, "return tostring(('x').rep == string.rep)", &trip, msg, sizeof msg, &ms) == LUA_OK &&
	      strcmp(msg, "true") == 0);
	sandbox_free(sb);
}

int main(void)
{
	test_patterns_match_stock_lua();
	test_bombs_are_stopped();
	test_allow_list();
	printf("%s: %d failed checks\n", failures ? "FAIL" : "ok", failures);
	return failures ? 1 : 0;
}
