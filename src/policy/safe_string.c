/*
 * safe_string.c - string.find, match, gmatch, gsub and rep for the sandbox (sandbox.h),
 * written for duroxlua: the semantics of Lua 5.4's patterns (classes, sets, the four
 * quantifiers, anchors, captures and position captures, back-references, %b and %f), with
 * every step of the backtracking matcher (and of a plain find, and every byte string.rep
 * writes) charged to the sandbox's budget, so that a pattern that would backtrack for
 * seconds stops within the call's budget instead. Recursion is bounded (200 levels) like
 * Lua's own. Used by sandbox.c; tests/spec/sandbox_spec.lua compares it with the stock
 * functions.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <lauxlib.h>
#include <limits.h>
#include <string.h>

#include "policy/sandbox.h"

#define MAX_CAPTURES 32
#define MAX_DEPTH 200
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
#define ESC '%'
#define SPECIALS "^$*+?.([%-"

typedef struct mstate {
	const char *src, *src_end; /* the subject */
	const char *pat_end;
	lua_State *L;
	int depth; /* recursion left */
	int level; /* captures */
	struct {
		const char *init;
		ptrdiff_t len; /* or CAP_UNFINISHED / CAP_POSITION */
	} cap[MAX_CAPTURES];
	unsigned steps; /* charged to the sandbox in bundles */
} mstate;

static void step(mstate *ms)
{
	if (++ms->steps >= 64) {
		sandbox_charge(ms->L, ms->steps);
		ms->steps = 0;
	}
}

/* ---- classes ------------------------------------------------------------------------- */

static int class_match(int c, int cl)
{
	int r;
	switch (tolower(cl)) {
	case 'a': r = isalpha(c); break;
	case 'c': r = iscntrl(c); break;
	case 'd': r = isdigit(c); break;
	case 'g': r = isgraph(c); break;
	case 'l': r = islower(c); break;
	case 'p': r = ispunct(c); break;
	case 's': r = isspace(c); break;
	case 'u': r = isupper(c); break;
	case 'w': r = isalnum(c); break;
	case 'x': r = isxdigit(c); break;
	default: return cl == c;
	}
	r = r != 0;
	return isupper(cl) ? !r : r;
}

/* The end of the single-character class starting at p (after a set's ']'). */
static const char *class_end(mstate *ms, const char *p)
{
	char c = *p++;
	if (c == ESC) {
		if (p >= ms->pat_end)
			luaL_error(ms->L, "malformed pattern (ends with '%%')");
		return p + 1;
	}
	if (c == '[') {
		if (*p == '^')
			p++;
		do { /* the first character of a set is itself even when it is ']' */
			if (p >= ms->pat_end)
				luaL_error(ms->L, "malformed pattern (missing ']')");
			if (*p++ == ESC && p < ms->pat_end)
				p++;
		} while (*p != ']');
		return p + 1;
	}
	return p;
}

/* c against the set [p .. ec] (p at '[', ec at its ']'). */
static int set_match(int c, const char *p, const char *ec)
{
	int yes = 1;
	if (p[1] == '^') {
		yes = 0;
		p++;
	}
	while (++p < ec) {
		if (*p == ESC) {
			p++;
			if (class_match(c, (unsigned char)*p))
				return yes;
		} else if (p[1] == '-' && p + 2 < ec) {
			p += 2;
			if ((unsigned char)p[-2] <= c && c <= (unsigned char)*p)
				return yes;
		} else if ((unsigned char)*p == c) {
			return yes;
		}
	}
	return !yes;
}

static int single_match(mstate *ms, const char *s, const char *p, const char *ep)
{
	if (s >= ms->src_end)
		return 0;
	int c = (unsigned char)*s;
	switch (*p) {
	case '.': return 1;
	case ESC: return class_match(c, (unsigned char)p[1]);
	case '[': return set_match(c, p, ep - 1);
	default: return (unsigned char)*p == c;
	}
}

/* ---- the matcher ----------------------------------------------------------------------- */

static const char *match(mstate *ms, const char *s, const char *p);

static const char *balance(mstate *ms, const char *s, const char *p)
{
	if (p + 1 >= ms->pat_end)
		luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
	if (s >= ms->src_end || *s != *p)
		return NULL;
	char open = p[0], close = p[1];
	int depth = 1;
	while (++s < ms->src_end) {
		step(ms);
		if (*s == close) {
			if (--depth == 0)
				return s + 1;
		} else if (*s == open) {
			depth++;
		}
	}
	return NULL;
}

static const char *expand_max(mstate *ms, const char *s, const char *p, const char *ep)
{
	ptrdiff_t i = 0;
	while (single_match(ms, s + i, p, ep)) {
		step(ms);
		i++;
	}
	for (; i >= 0; i--) { /* the longest first, then shorter */
		const char *r = match(ms, s + i, ep + 1);
		if (r != NULL)
			return r;
	}
	return NULL;
}

static const char *expand_min(mstate *ms, const char *s, const char *p, const char *ep)
{
	for (;;) {
		const char *r = match(ms, s, ep + 1);
		if (r != NULL)
			return r;
		if (!single_match(ms, s, p, ep))
			return NULL;
		step(ms);
		s++;
	}
}

static const char *open_capture(mstate *ms, const char *s, const char *p, ptrdiff_t what)
{
	if (ms->level >= MAX_CAPTURES)
		luaL_error(ms->L, "too many captures");
	ms->cap[ms->level].init = s;
	ms->cap[ms->level].len = what;
	ms->level++;
	const char *r = match(ms, s, p);
	if (r == NULL)
		ms->level--;
	return r;
}

static const char *close_capture(mstate *ms, const char *s, const char *p)
{
	int l = ms->level - 1;
	while (l >= 0 && ms->cap[l].len != CAP_UNFINISHED)
		l--;
	if (l < 0)
		luaL_error(ms->L, "invalid pattern capture");
	ms->cap[l].len = s - ms->cap[l].init;
	const char *r = match(ms, s, p);
	if (r == NULL)
		ms->cap[l].len = CAP_UNFINISHED;
	return r;
}

static int capture_index(mstate *ms, int c)
{
	int l = c - '1';
	if (l < 0 || l >= ms->level || ms->cap[l].len == CAP_UNFINISHED)
		luaL_error(ms->L, "invalid capture index %%%d", l + 1);
	return l;
}

static const char *back_reference(mstate *ms, const char *s, int c)
{
	int l = capture_index(ms, c);
	if (ms->cap[l].len < 0) /* a position capture: as in Lua, it never matches as text */
		return NULL;
	size_t n = (size_t)ms->cap[l].len;
	sandbox_charge(ms->L, n / 16 + 1);
	if ((size_t)(ms->src_end - s) >= n && memcmp(ms->cap[l].init, s, n) == 0)
		return s + n;
	return NULL;
}

static const char *match(mstate *ms, const char *s, const char *p)
{
	if (ms->depth-- == 0)
		luaL_error(ms->L, "pattern too complex");
	for (;;) {
		step(ms);
		if (p >= ms->pat_end)
			break;
		if (*p == '(') {
			s = p[1] == ')' ? open_capture(ms, s, p + 2, CAP_POSITION)
			                : open_capture(ms, s, p + 1, CAP_UNFINISHED);
			break;
		}
		if (*p == ')') {
			s = close_capture(ms, s, p + 1);
			break;
		}
		if (*p == '$' && p + 1 == ms->pat_end) {
			if (s != ms->src_end)
				s = NULL;
			break;
		}
		if (*p == ESC && p[1] == 'b') {
			s = balance(ms, s, p + 2);
			if (s == NULL)
				break;
			p += 4;
			continue;
		}
		if (*p == ESC && p[1] == 'f') {
			p += 2;
			if (*p != '[')
				luaL_error(ms->L, "missing '[' after '%%f' in pattern");
			const char *ep = class_end(ms, p);
			int prev = s == ms->src ? '\0' : (unsigned char)s[-1];
			int cur = s < ms->src_end ? (unsigned char)*s : '\0';
			if (!set_match(prev, p, ep - 1) && set_match(cur, p, ep - 1)) {
				p = ep;
				continue;
			}
			s = NULL;
			break;
		}
		if (*p == ESC && isdigit((unsigned char)p[1])) {
			s = back_reference(ms, s, (unsigned char)p[1]);
			if (s == NULL)
				break;
			p += 2;
			continue;
		}
		/* a single-character class, perhaps with a quantifier */
		const char *ep = class_end(ms, p);
		char q = ep < ms->pat_end ? *ep : '\0';
		if (!single_match(ms, s, p, ep)) {
			if (q == '*' || q == '?' || q == '-') { /* zero repetitions are fine */
				p = ep + 1;
				continue;
			}
			s = NULL;
			break;
		}
		if (q == '?') {
			const char *r = match(ms, s + 1, ep + 1);
			if (r != NULL) {
				s = r;
				break;
			}
			p = ep + 1;
			continue;
		}
		if (q == '+') {
			s = expand_max(ms, s + 1, p, ep);
			break;
		}
		if (q == '*') {
			s = expand_max(ms, s, p, ep);
			break;
		}
		if (q == '-') {
			s = expand_min(ms, s, p, ep);
			break;
		}
		s++;
		p = ep;
	}
	ms->depth++;
	return s;
}

/* ---- captures ------------------------------------------------------------------------------ */

/* Pushes capture i (the whole match s..e when there are none and i is 0); returns its length
 * or CAP_POSITION (a position was pushed). */
static ptrdiff_t push_capture(mstate *ms, int i, const char *s, const char *e)
{
	if (i >= ms->level) {
		if (i != 0)
			luaL_error(ms->L, "invalid capture index %%%d", i + 1);
		lua_pushlstring(ms->L, s, (size_t)(e - s));
		return e - s;
	}
	ptrdiff_t l = ms->cap[i].len;
	if (l == CAP_UNFINISHED)
		luaL_error(ms->L, "unfinished capture");
	if (l == CAP_POSITION) {
		lua_pushinteger(ms->L, (ms->cap[i].init - ms->src) + 1);
		return CAP_POSITION;
	}
	lua_pushlstring(ms->L, ms->cap[i].init, (size_t)l);
	return l;
}

/* Pushes every capture (or the whole match when s is not NULL and there are none). */
static int push_captures(mstate *ms, const char *s, const char *e)
{
	int n = ms->level == 0 && s != NULL ? 1 : ms->level;
	luaL_checkstack(ms->L, n, "too many captures");
	for (int i = 0; i < n; i++)
		push_capture(ms, i, s, e);
	return n;
}

static void start(mstate *ms, lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
{
	ms->L = L;
	ms->src = s;
	ms->src_end = s + ls;
	ms->pat_end = p + lp;
	ms->steps = 0;
}

static void restart(mstate *ms)
{
	ms->level = 0;
	ms->depth = MAX_DEPTH;
}

static void settle(mstate *ms)
{
	if (ms->steps > 0)
		sandbox_charge(ms->L, ms->steps);
	ms->steps = 0;
}

/* ---- find and match ----------------------------------------------------------------------------- */

/* Lua's relative start position (1-based; negative from the end) as a 0-based offset, or
 * (size_t)-1 when past the end. */
static size_t start_offset(lua_Integer pos, size_t len)
{
	if (pos > 0) {
		if ((lua_Unsigned)pos > (lua_Unsigned)len + 1)
			return (size_t)-1;
		return (size_t)pos - 1;
	}
	if (pos == 0 || (lua_Unsigned)-pos > len)
		return 0;
	return len - (size_t)-pos;
}

static int has_specials(const char *p, size_t lp)
{
	for (size_t k = 0; k < lp; k++)
		if (p[k] != '\0' && strchr(SPECIALS, p[k]) != NULL)
			return 1;
	return 0;
}

/* The first occurrence of p in s (plain), each comparison charged. */
static const char *plain_find(lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
{
	if (lp == 0)
		return s;
	if (lp > ls)
		return NULL;
	uint64_t charged = 0;
	const char *end = s + (ls - lp) + 1;
	for (const char *c = s; c < end; c++) {
		if (*c != *p)
			continue;
		charged += lp / 8 + 1;
		if (charged >= 4096) {
			sandbox_charge(L, charged);
			charged = 0;
		}
		if (memcmp(c, p, lp) == 0) {
			sandbox_charge(L, charged);
			return c;
		}
	}
	sandbox_charge(L, charged + ls / 64);
	return NULL;
}

static int find_aux(lua_State *L, int find)
{
	size_t ls, lp;
	const char *s = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
	if (init == (size_t)-1) {
		luaL_pushfail(L);
		return 1;
	}
	if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
		const char *at = plain_find(L, s + init, ls - init, p, lp);
		if (at == NULL) {
			luaL_pushfail(L);
			return 1;
		}
		lua_pushinteger(L, (at - s) + 1);
		lua_pushinteger(L, (lua_Integer)((at - s) + lp));
		return 2;
	}
	mstate ms;
	int anchor = lp > 0 && *p == '^';
	if (anchor) {
		p++;
		lp--;
	}
	start(&ms, L, s, ls, p, lp);
	const char *s1 = s + init;
	do {
		restart(&ms);
		const char *e = match(&ms, s1, p);
		if (e != NULL) {
			settle(&ms);
			if (find) {
				lua_pushinteger(L, (s1 - s) + 1);
				lua_pushinteger(L, e - s);
				return push_captures(&ms, NULL, NULL) + 2;
			}
			return push_captures(&ms, s1, e);
		}
	} while (s1++ < ms.src_end && !anchor);
	settle(&ms);
	luaL_pushfail(L);
	return 1;
}

static int s_find(lua_State *L) { return find_aux(L, 1); }
static int s_match(lua_State *L) { return find_aux(L, 0); }

/* ---- gmatch ---------------------------------------------------------------------------------- */

typedef struct gmatch_state {
	const char *at;   /* where the next search starts */
	const char *last; /* the end of the last match (an empty match there is skipped) */
	const char *p;
	size_t lp;
	mstate ms;
} gmatch_state;

static int gmatch_next(lua_State *L)
{
	gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
	g->ms.L = L;
	for (const char *src = g->at; src <= g->ms.src_end; src++) {
		restart(&g->ms);
		const char *e = match(&g->ms, src, g->p);
		if (e != NULL && e != g->last) {
			settle(&g->ms);
			g->at = g->last = e;
			return push_captures(&g->ms, src, e);
		}
	}
	settle(&g->ms);
	return 0;
}

static int s_gmatch(lua_State *L)
{
	size_t ls, lp;
	const char *s = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
	lua_settop(L, 2); /* the subject and the pattern stay alive as upvalues */
	gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
	if (init == (size_t)-1)
		init = ls + 1; /* past the end: nothing matches */
	start(&g->ms, L, s, ls, p, lp);
	g->at = s + init;
	g->last = NULL;
	g->p = p;
	g->lp = lp;
	lua_pushcclosure(L, gmatch_next, 3);
	return 1;
}

/* ---- gsub -------------------------------------------------------------------------------------- */

/* Appends the replacement string at index 3 for the match s..e, expanding %0-%9 and %%. */
static void add_template(mstate *ms, luaL_Buffer *b, const char *s, const char *e)
{
	lua_State *L = ms->L;
	size_t l;
	const char *t = lua_tolstring(L, 3, &l);
	const char *esc;
	while ((esc = memchr(t, ESC, l)) != NULL) {
		luaL_addlstring(b, t, (size_t)(esc - t));
		char c = esc[1];
		if (c == ESC) {
			luaL_addchar(b, ESC);
		} else if (c == '0') {
			luaL_addlstring(b, s, (size_t)(e - s));
		} else if (isdigit((unsigned char)c)) {
			push_capture(ms, c - '1', s, e); /* a string or a position */
			luaL_addvalue(b);
		} else {
			luaL_error(L, "invalid use of '%c' in replacement string", ESC);
		}
		l -= (size_t)(esc + 2 - t);
		t = esc + 2;
	}
	luaL_addlstring(b, t, l);
	sandbox_charge(L, (uint64_t)(e - s) / 16 + 1);
}

/* Appends the replacement of the match s..e by the table or function at 3 (the match itself
 * when it gives false or nil). */
static void add_value(mstate *ms, luaL_Buffer *b, const char *s, const char *e, int type)
{
	lua_State *L = ms->L;
	if (type == LUA_TFUNCTION) {
		lua_pushvalue(L, 3);
		int n = push_captures(ms, s, e);
		lua_call(L, n, 1);
	} else if (type == LUA_TTABLE) {
		push_capture(ms, 0, s, e);
		lua_gettable(L, 3);
	} else {
		add_template(ms, b, s, e);
		return;
	}
	if (!lua_toboolean(L, -1)) {
		lua_pop(L, 1);
		luaL_addlstring(b, s, (size_t)(e - s));
		return;
	}
	if (!lua_isstring(L, -1))
		luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
	luaL_addvalue(b);
}

static int s_gsub(lua_State *L)
{
	size_t ls, lp;
	const char *src = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	const char *last = NULL;
	int type = lua_type(L, 3);
	lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
	luaL_argexpected(L, type == LUA_TNUMBER || type == LUA_TSTRING || type == LUA_TFUNCTION || type == LUA_TTABLE,
	                 3, "string/function/table");
	int anchor = lp > 0 && *p == '^';
	if (anchor) {
		p++;
		lp--;
	}
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	mstate ms;
	start(&ms, L, src, ls, p, lp);
	lua_Integer n = 0;
	while (n < max_n) {
		restart(&ms);
		const char *e = match(&ms, src, p);
		if (e != NULL && e != last) {
			n++;
			settle(&ms);
			add_value(&ms, &b, src, e, type);
			src = last = e;
		} else if (src < ms.src_end) {
			luaL_addchar(&b, *src++);
		} else {
			break;
		}
		if (anchor)
			break;
	}
	settle(&ms);
	luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
	luaL_pushresult(&b);
	lua_pushinteger(L, n);
	return 2;
}

/* ---- rep ---------------------------------------------------------------------------------------- */

static int s_rep(lua_State *L)
{
	size_t l, lsep;
	const char *s = luaL_checklstring(L, 1, &l);
	lua_Integer n = luaL_checkinteger(L, 2);
	const char *sep = luaL_optlstring(L, 3, "", &lsep);
	if (n <= 0 || l + lsep == 0) {
		lua_pushliteral(L, "");
		return 1;
	}
	sandbox *sb = sandbox_of(L);
	size_t cap = sb != NULL ? sandbox_get_limits(sb)->memory : (size_t)INT_MAX;
	/* the result's size, refused before anything is allocated when it cannot fit */
	if (l + lsep < l || (l + lsep > 0 && (lua_Unsigned)n > cap / (l + lsep) + 1))
		return luaL_error(L, "resulting string too large (the sandbox holds at most %I bytes)",
		                  (lua_Integer)cap);
	size_t total = (size_t)n * l + (size_t)(n - 1) * lsep;
	if (total > cap)
		return luaL_error(L, "resulting string too large (the sandbox holds at most %I bytes)",
		                  (lua_Integer)cap);
	sandbox_charge(L, total / 64 + 1);
	luaL_Buffer b;
	char *out = luaL_buffinitsize(L, &b, total);
	for (lua_Integer k = 0; k < n; k++) {
		memcpy(out, s, l);
		out += l;
		if (k + 1 < n && lsep > 0) {
			memcpy(out, sep, lsep);
			out += lsep;
		}
	}
	luaL_pushresultsize(&b, total);
	return 1;
}

void safe_string_open(lua_State *L)
{
	static const luaL_Reg fns[] = {{"find", s_find}, {"match", s_match}, {"gmatch", s_gmatch},
	                               {"gsub", s_gsub}, {"rep", s_rep},     {NULL, NULL}};
	luaL_setfuncs(L, fns, 0);
}
