/*
 * options.c - the binding's one set of option readers: the fields of every options and
 * request table (durox.open's options, ManagementConfig, list, history, metrics, bulk and
 * job requests) are read here, each kind of value by one function that checks its type and
 * its range on the full lua_Integer before anything is narrowed to a C type, and raises with
 * one message shape naming the table and the field. Unknown keys are errors, with a
 * suggestion when a known key is close. Relies on lauxlib and util/timeutil; used by every
 * binding_*.c file (the contract is in lx.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "lua/lx.h"
#include "util/timeutil.h"

/* ---- messages ------------------------------------------------------------------------ */

void lx_opt_error(const lx_opts *o, const char *k, const char *fmt, ...)
{
	lua_State *L = o->L;
	va_list ap;
	va_start(ap, fmt);
	luaL_where(L, 1);
	lua_pushfstring(L, "%s field '%s' ", o->what, k);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	lua_concat(L, 3);
	lua_error(L);
}

/* Pushes a short description of the value at idx for "got ...": numbers and booleans by
 * value, strings quoted (at most 40 bytes, non-printable bytes as '?'), others by type. */
static const char *describe(lua_State *L, int idx)
{
	switch (lua_type(L, idx)) {
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			return lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
		return lua_pushfstring(L, "%f", (LUAI_UACNUMBER)lua_tonumber(L, idx));
	case LUA_TBOOLEAN: return lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		char b[48];
		size_t m = n < 40 ? n : 40, j = 0;
		b[j++] = '\'';
		for (size_t i = 0; i < m; i++)
			b[j++] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
		if (m < n)
			b[j++] = '.', b[j++] = '.';
		b[j++] = '\'';
		lua_pushlstring(L, b, j);
		return lua_tostring(L, -1);
	}
	default: return lua_pushstring(L, luaL_typename(L, idx));
	}
}

/* Edit distance of a and b (at most 63 bytes each; more counts as far), case-insensitive, a
 * swap of two neighbours counting as one edit. */
static size_t distance(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	if (na > 63 || nb > 63)
		return 99;
	size_t d[64][64];
	for (size_t i = 0; i <= na; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= nb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= na; i++) {
		for (size_t j = 1; j <= nb; j++) {
			int same = (a[i - 1] | 0x20) == (b[j - 1] | 0x20);
			size_t v = d[i - 1][j - 1] + (same ? 0 : 1);
			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && (a[i - 1] | 0x20) == (b[j - 2] | 0x20) &&
			    (a[i - 2] | 0x20) == (b[j - 1] | 0x20) && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[na][nb];
}

const char *lx_suggest(const char *k, const char *const *known, const char *const *extra)
{
	const char *best = NULL;
	size_t klen = strlen(k), bd = klen >= 6 ? 3 : 2;
	for (int l = 0; l < 2; l++) {
		const char *const *v = l == 0 ? known : extra;
		for (int i = 0; v != NULL && v[i] != NULL; i++) {
			size_t d = distance(k, v[i]);
			/* a key that starts the known one (stall_threshold -> stall_threshold_ms) */
			if (klen >= 3 && strncasecmp(k, v[i], klen) == 0)
				d = 1;
			if (d < bd) {
				bd = d;
				best = v[i];
			}
		}
	}
	return best;
}

/* ---- tables ---------------------------------------------------------------------------- */

static int is_known(const char *k, const char *const *known, const char *const *extra)
{
	for (int i = 0; known != NULL && known[i]; i++)
		if (strcmp(k, known[i]) == 0)
			return 1;
	for (int i = 0; extra != NULL && extra[i]; i++)
		if (strcmp(k, extra[i]) == 0)
			return 1;
	return 0;
}

void lx_check_keys(lua_State *L, int t, const char *what, const char *const *known, const char *const *extra)
{
	t = lua_absindex(L, t);
	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "%s keys must be field names, got %s key %s", what, luaL_typename(L, -1),
			           describe(L, -1));
		const char *k = lua_tostring(L, -1);
		if (is_known(k, known, extra))
			continue;
		const char *s = lx_suggest(k, known, extra);
		if (s != NULL)
			luaL_error(L, "unknown %s field %s (did you mean '%s'?)", what, describe(L, -1), s);
		luaL_error(L, "unknown %s field %s", what, describe(L, -1));
	}
}

lx_opts lx_opts_at(lua_State *L, int idx, const char *what, const char *const *known, const char *const *extra)
{
	lx_opts o = {L, 0, what};
	if (lua_isnoneornil(L, idx))
		return o;
	idx = lua_absindex(L, idx);
	if (lua_type(L, idx) != LUA_TTABLE)
		luaL_error(L, "%s expects a table, got %s", what, luaL_typename(L, idx));
	lx_check_keys(L, idx, what, known, extra);
	o.t = idx;
	return o;
}

/* Pushes field k (nil when the table is absent) and says whether it is set. */
static int get(const lx_opts *o, const char *k)
{
	if (o->t == 0) {
		lua_pushnil(o->L);
		return 0;
	}
	lua_getfield(o->L, o->t, k);
	return !lua_isnil(o->L, -1);
}

int lx_opt_has(const lx_opts *o, const char *k)
{
	int set = get(o, k);
	lua_pop(o->L, 1);
	return set;
}

/* ---- readers ---------------------------------------------------------------------------- */

/* The number at idx as an integer, or raises naming field k of o. Floats with an exact
 * integer value are integers (2^10); others, and values beyond the int64 range, are not. */
static lua_Integer integer_at(const lx_opts *o, int idx, const char *k, lua_Integer lo, lua_Integer hi)
{
	lua_State *L = o->L;
	if (lua_type(L, idx) != LUA_TNUMBER)
		lx_opt_error(o, k, "expects an integer, got %s", describe(L, idx));
	int isint;
	lua_Integer v = lua_tointegerx(L, idx, &isint);
	if (!isint) {
		double d = (double)lua_tonumber(L, idx);
		if (d == floor(d) && !isinf(d))
			lx_opt_error(o, k, "out of range (%I to %I), got %s", (LUAI_UACINT)lo, (LUAI_UACINT)hi,
			             describe(L, idx));
		lx_opt_error(o, k, "expects an integer, got %s", describe(L, idx));
	}
	if (v < lo || v > hi)
		lx_opt_error(o, k, "out of range (%I to %I), got %I", (LUAI_UACINT)lo, (LUAI_UACINT)hi, (LUAI_UACINT)v);
	return v;
}

lua_Integer lx_opt_integer(const lx_opts *o, const char *k, lua_Integer def, lua_Integer lo, lua_Integer hi)
{
	lua_Integer v = def;
	if (get(o, k))
		v = integer_at(o, -1, k, lo, hi);
	lua_pop(o->L, 1);
	return v;
}

double lx_opt_number(const lx_opts *o, const char *k, double def, double lo, double hi)
{
	lua_State *L = o->L;
	double v = def;
	if (get(o, k)) {
		if (lua_type(L, -1) != LUA_TNUMBER)
			lx_opt_error(o, k, "expects a number, got %s", describe(L, -1));
		v = (double)lua_tonumber(L, -1);
		if (!(v >= lo && v <= hi))
			lx_opt_error(o, k, "out of range (%f to %f), got %s", (LUAI_UACNUMBER)lo, (LUAI_UACNUMBER)hi,
			             describe(L, -1));
	}
	lua_pop(L, 1);
	return v;
}

int lx_opt_boolean(const lx_opts *o, const char *k, int def)
{
	lua_State *L = o->L;
	int v = def;
	if (get(o, k)) {
		if (!lua_isboolean(L, -1))
			lx_opt_error(o, k, "expects a boolean, got %s", describe(L, -1));
		v = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

/* The string at idx (NUL bytes refused), or raises naming field k. */
static const char *text_at(const lx_opts *o, int idx, const char *k)
{
	lua_State *L = o->L;
	if (lua_type(L, idx) != LUA_TSTRING)
		lx_opt_error(o, k, "expects a string, got %s", describe(L, idx));
	size_t n;
	const char *s = lua_tolstring(L, idx, &n);
	if (strlen(s) != n)
		lx_opt_error(o, k, "contains a NUL byte");
	return s;
}

const char *lx_opt_text(const lx_opts *o, const char *k)
{
	const char *s = NULL;
	if (get(o, k))
		s = text_at(o, -1, k); /* anchored in the table, which the caller keeps */
	lua_pop(o->L, 1);
	return s;
}

int lx_opt_function(const lx_opts *o, const char *k)
{
	lua_State *L = o->L;
	if (!get(o, k)) {
		lua_pop(L, 1);
		return 0;
	}
	if (!lua_isfunction(L, -1))
		lx_opt_error(o, k, "expects a function, got %s", describe(L, -1));
	return lua_gettop(L); /* stays on the stack */
}

int lx_opt_enum(const lx_opts *o, const char *k, int def, int (*parse)(const char *), const char *expected)
{
	int v = def;
	if (get(o, k)) {
		const char *s = text_at(o, -1, k);
		v = parse(s);
		if (v < 0)
			lx_opt_error(o, k, "expects %s, got %s", expected, describe(o->L, -1));
	}
	lua_pop(o->L, 1);
	return v;
}

int lx_opt_enum_list(const lx_opts *o, const char *k, int (*parse)(const char *), const char *expected, int *out,
                     int max)
{
	lua_State *L = o->L;
	int n = 0;
	if (!get(o, k)) {
		lua_pop(L, 1);
		return 0;
	}
	int t = lua_gettop(L);
	if (lua_type(L, t) == LUA_TSTRING) {
		lua_createtable(L, 1, 0);
		lua_pushvalue(L, t);
		lua_rawseti(L, -2, 1);
		lua_replace(L, t);
	}
	if (lua_type(L, t) != LUA_TTABLE)
		lx_opt_error(o, k, "expects a string or a list of strings, got %s", describe(L, t));
	lua_Integer len = luaL_len(L, t);
	if (len > max)
		lx_opt_error(o, k, "has more than %d entries", max);
	for (lua_Integer i = 1; i <= len; i++) {
		lua_rawgeti(L, t, i);
		if (lua_type(L, -1) != LUA_TSTRING)
			lx_opt_error(o, k, "expects strings, got %s at [%I]", describe(L, -1), (LUAI_UACINT)i);
		int v = parse(text_at(o, -1, k));
		if (v < 0)
			lx_opt_error(o, k, "expects %s, got %s at [%I]", expected, describe(L, -1), (LUAI_UACINT)i);
		for (int j = 0; j < n; j++)
			if (out[j] == v)
				lx_opt_error(o, k, "lists %s twice", describe(L, -1));
		out[n++] = v;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return n;
}

int lx_opt_text_list(const lx_opts *o, const char *k, const char **out, int max)
{
	lua_State *L = o->L;
	int n = 0;
	if (!get(o, k)) {
		lua_pop(L, 1);
		return 0;
	}
	int t = lua_gettop(L);
	if (lua_type(L, t) == LUA_TSTRING) {
		out[n++] = text_at(o, t, k); /* anchored in the request table */
	} else if (lua_type(L, t) == LUA_TTABLE) {
		lua_Integer len = luaL_len(L, t);
		if (len > max)
			lx_opt_error(o, k, "has more than %d entries", max);
		for (lua_Integer i = 1; i <= len; i++) {
			lua_rawgeti(L, t, i);
			if (lua_type(L, -1) != LUA_TSTRING)
				lx_opt_error(o, k, "expects strings, got %s at [%I]", describe(L, -1), (LUAI_UACINT)i);
			out[n++] = text_at(o, -1, k); /* anchored in the list, anchored in the table */
			lua_pop(L, 1);
		}
	} else {
		lx_opt_error(o, k, "expects a string or a list of strings, got %s", describe(L, t));
	}
	lua_pop(L, 1);
	return n;
}

int64_t lx_opt_time(const lx_opts *o, const char *k)
{
	lua_State *L = o->L;
	int64_t v = DUROX_NO_TIME;
	if (get(o, k)) {
		if (lua_type(L, -1) == LUA_TSTRING) {
			char err[200];
			if (time_parse_user(text_at(o, -1, k), time_now_ms(), &v, err, sizeof err) != 0)
				lx_opt_error(o, k, "%s", err);
		} else if (lua_type(L, -1) == LUA_TNUMBER) {
			v = (int64_t)integer_at(o, -1, k, LX_TIME_MIN, LX_TIME_MAX);
		} else {
			lx_opt_error(o, k, "expects a time (integer ms or a string like \"-1h\"), got %s",
			             describe(L, -1));
		}
	}
	lua_pop(L, 1);
	return v;
}

/* Reads the duration at idx (integer ms or a string like "5m") into *v. Returns NULL, or
 * what is wrong with it as a format for the rest of the message ("%s" is the value). */
static const char *duration_at(lua_State *L, int idx, int64_t lo, int64_t hi, int64_t *v)
{
	if (lua_type(L, idx) == LUA_TSTRING) {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		if (strlen(s) != n)
			return "contains a NUL byte";
		if (time_parse_duration(s, n, v) != 0)
			return "expects a duration (integer ms, or like 500ms, 30s, 5m, 2h, 1d), got %s";
	} else if (lua_type(L, idx) == LUA_TNUMBER) {
		int isint;
		*v = (int64_t)lua_tointegerx(L, idx, &isint);
		if (!isint) {
			double d = (double)lua_tonumber(L, idx);
			return d == floor(d) && !isinf(d) ? "out of range, got %s"
			                                  : "expects an integer number of ms, got %s";
		}
	} else {
		return "expects a duration (integer ms or a string like \"5m\"), got %s";
	}
	return *v < lo || *v > hi ? "out of range, got %s" : NULL;
}

/* Limits of a duration for messages: "0 to 1h" style, in ms. */
static const char *range_text(lua_State *L, int64_t lo, int64_t hi)
{
	return lua_pushfstring(L, "(%I to %I ms)", (LUAI_UACINT)lo, (LUAI_UACINT)hi);
}

/* Raises what duration_at found wrong with the duration at idx (absolute), as field k of o
 * or (o NULL) as argument idx named what. */
static void duration_error(const lx_opts *o, lua_State *L, int idx, const char *what, const char *bad, int64_t lo,
                           int64_t hi)
{
	const char *msg =
	        strncmp(bad, "out of range", 12) == 0
	                ? lua_pushfstring(L, "out of range %s, got %s", range_text(L, lo, hi), describe(L, idx))
	                : lua_pushfstring(L, bad, describe(L, idx));
	if (o != NULL)
		lx_opt_error(o, what, "%s", msg);
	luaL_argerror(L, idx, lua_pushfstring(L, "%s %s", what, msg));
}

int64_t lx_opt_duration(const lx_opts *o, const char *k, int64_t def, int64_t lo, int64_t hi)
{
	lua_State *L = o->L;
	int64_t v = def;
	if (get(o, k)) {
		const char *bad = duration_at(L, -1, lo, hi, &v);
		if (bad != NULL)
			duration_error(o, L, lua_gettop(L), k, bad, lo, hi);
	}
	lua_pop(L, 1);
	return v;
}

int64_t lx_check_duration(lua_State *L, int idx, const char *what, int64_t def, int64_t lo, int64_t hi)
{
	if (lua_isnoneornil(L, idx))
		return def;
	idx = lua_absindex(L, idx);
	int64_t v;
	const char *bad = duration_at(L, idx, lo, hi, &v);
	if (bad != NULL)
		duration_error(NULL, L, idx, what, bad, lo, hi);
	return v;
}
