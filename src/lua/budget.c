/*
 * budget.c - the time budget of the caller's callbacks (predicate, authorize, progress):
 * lx_pcall runs one call protected, and when the handle's callback_budget_ms is set, a count
 * hook checks the monotonic clock every 1000 VM instructions and raises once the budget is
 * spent, so a predicate that never returns stops with a clear error instead of hanging the
 * call (0, the default, sets no limit: trusted scripts). The hook that was set before (a
 * debugger, duroxlua's Ctrl-C hook) is put back afterwards; nested calls keep their own
 * deadlines. Relies on util/timeutil; used by convert.c and binding_ops.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "lua/lx.h"
#include "util/timeutil.h"

/* The innermost budgeted call of this thread (nested calls save and restore it). */
static _Thread_local struct budget {
	int64_t deadline; /* time_mono_ms */
	uint32_t ms;
	const char *what;
} current;

static void budget_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	if (time_mono_ms() >= current.deadline)
		luaL_error(L, "%s ran longer than its time budget of %d ms (callback_budget_ms)", current.what,
		           (int)current.ms);
}

int lx_pcall(lua_State *L, int nargs, int nresults, uint32_t budget_ms, const char *what)
{
	if (budget_ms == 0)
		return lua_pcall(L, nargs, nresults, 0);
	struct budget saved = current;
	lua_Hook old = lua_gethook(L);
	int mask = lua_gethookmask(L), count = lua_gethookcount(L);
	current.deadline = time_mono_ms() + (int64_t)budget_ms;
	current.ms = budget_ms;
	current.what = what;
	lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1000);
	int st = lua_pcall(L, nargs, nresults, 0);
	/* a hook the callback was interrupted by (Ctrl-C) replaced ours: it has fired, keep none */
	if (lua_gethook(L) == budget_hook)
		lua_sethook(L, old, mask, count);
	current = saved;
	return st;
}

uint32_t lx_budget(durox *dx)
{
	durox_config c;
	durox_get_config(dx, &c);
	return c.callback_budget_ms;
}
