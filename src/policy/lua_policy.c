/*
 * lua_policy.c - access-control policies written in Lua (contracts in lua_policy.h): loads
 * the chunk into its own sandbox, checks the table it returns, and answers the engine's
 * hooks by calling the policy's functions there with the AccessContext and the instance
 * summary as fresh tables, each call under its own budget. Fail closed: an error, a budget
 * stop, or any answer but true (or, for can_list_instances, a filter table or query string)
 * denies, with the reason the audit log records. Relies on sandbox.c, the binding's filter
 * reader (lx_check_filter) and util/sha256; built by the binding (binding_access.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lx.h"
#include "policy/lua_policy.h"
#include "util/sha256.h"

#define MAX_POLICY_BYTES (1 << 20)

typedef struct lua_policy {
	sandbox *sb;
	int fn[DUROX_HOOK__COUNT]; /* registry references of the hook functions; LUA_NOREF: none */
	int inst_mt;               /* the metatable of instance tables (inst.root) */
	int cur_inst;              /* a decision about an instance is in progress (its table: CURRENT_KEY) */
	const durox_access_instance *current;
	char id[80];  /* "sha256:<hex>" */
	char *source; /* the file name or "policy_source" */
} lua_policy;

/* ---- the instance and context tables ---------------------------------------------------- */

/* Registry key of the instance table of the decision in progress (inst.root checks it). */
static const char CURRENT_KEY = 0;

/* inst.root: resolved on first use during the decision the table was made for. */
static int inst_index(lua_State *L)
{
	lua_policy *lp = lua_touserdata(L, lua_upvalueindex(1));
	const char *k = lua_tostring(L, 2);
	if (k == NULL || strcmp(k, "root") != 0 || lp->current == NULL || lp->cur_inst == LUA_NOREF)
		return 0;
	lua_rawgetp(L, LUA_REGISTRYINDEX, &CURRENT_KEY);
	int same = lua_rawequal(L, 1, -1);
	lua_pop(L, 1);
	if (!same)
		return 0;
	const char *root = lp->current->root(lp->current);
	if (root == NULL)
		return 0;
	lua_pushstring(L, root);
	lua_pushvalue(L, -1);
	lua_setfield(L, 1, "root"); /* no metamethod: a table of ours */
	return 1;
}

static void set_str(lua_State *L, const char *k, const char *v)
{
	if (v == NULL)
		return;
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, int64_t v)
{
	lua_pushinteger(L, (lua_Integer)v);
	lua_setfield(L, -2, k);
}

static void push_inst(lua_State *L, lua_policy *lp, const durox_instance_summary *s)
{
	lua_createtable(L, 0, 18);
	set_str(L, "instance_id", s->instance_id);
	set_str(L, "id", s->instance_id);
	set_str(L, "orchestration_name", s->orchestration_name);
	set_str(L, "name", s->orchestration_name);
	set_str(L, "version", s->version);
	set_str(L, "status", durox_status_name(s->status));
	set_str(L, "parent_instance", s->parent_instance);
	set_str(L, "parent", s->parent_instance);
	set_int(L, "created_at", s->created_at);
	set_int(L, "updated_at", s->updated_at);
	if (s->completed_at != DUROX_NO_TIME)
		set_int(L, "completed_at", s->completed_at);
	set_int(L, "execution_count", (int64_t)s->execution_count);
	if (s->failure_kind != DUROX_FAILURE_NONE)
		set_str(L, "failure_kind", durox_failure_kind_name(s->failure_kind));
	set_str(L, "custom_status", s->custom_status);
	if (s->parent_instance == NULL)
		set_str(L, "root", s->instance_id); /* a root is its own tree's root */
	lua_rawgeti(L, LUA_REGISTRYINDEX, lp->inst_mt);
	lua_setmetatable(L, -2);
}

static void push_ctx(lua_State *L, const durox_access_context *c)
{
	lua_createtable(L, 0, 4);
	set_str(L, "user_id", c->user_id);
	lua_createtable(L, (int)c->n_roles, 0);
	for (size_t k = 0; k < c->n_roles; k++) {
		lua_pushstring(L, c->roles[k]);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, -2, "roles");
	set_str(L, "source_ip", c->source_ip);
	set_str(L, "reason", c->reason);
}

/* ---- decisions ------------------------------------------------------------------------------- */

static void trip_text(const sandbox *sb, sandbox_trip t, char *out, size_t n)
{
	const sandbox_limits *l = sandbox_get_limits(sb);
	if (t == TRIP_TIME)
		snprintf(out, n, "exceeded the time budget of %u ms", (unsigned)l->time_ms);
	else if (t == TRIP_INSTRUCTIONS)
		snprintf(out, n, "exceeded the budget of %llu instructions", (unsigned long long)l->instructions);
	else
		snprintf(out, n, "exceeded the memory budget of %zu bytes", l->memory);
}

/* Reads a filter table or query string (index 1) into the filter (light userdata 2). */
static int to_filter(lua_State *L)
{
	durox_filter *f = lua_touserdata(L, 2);
	int pred = 0;
	lx_check_filter(L, 1, f, &pred);
	if (pred != 0)
		return luaL_error(L, "a policy's filter cannot hold a predicate function");
	return 0;
}

static void copy_reason(lua_State *L, int idx, char *why, size_t n)
{
	if (lua_type(L, idx) == LUA_TSTRING)
		snprintf(why, n, "%s", lua_tostring(L, idx));
}

static int decide(lua_policy *lp, int hook, const durox_access_context *ctx, const durox_access_instance *inst,
                  const char *a1, const char *a2, durox_filter **filter, char *why, size_t n)
{
	lua_State *L = sandbox_state(lp->sb);
	const char *hname = durox_access_hook_name(hook);
	int top = lua_gettop(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, lp->fn[hook]);
	push_ctx(L, ctx);
	int nargs = 1;
	if (inst != NULL) {
		push_inst(L, lp, inst->summary);
		lua_pushvalue(L, -1);
		lua_rawsetp(L, LUA_REGISTRYINDEX, &CURRENT_KEY); /* the decision's instance table */
		lp->cur_inst = 1;
		lp->current = inst;
		nargs++;
	}
	if (hook == DUROX_HOOK_RAISE_EVENT) {
		lua_pushstring(L, a1 != NULL ? a1 : "");
		nargs++;
	} else if (hook == DUROX_HOOK_START_ORCHESTRATION) {
		lua_pushstring(L, a1 != NULL ? a1 : "");
		lua_pushstring(L, a2 != NULL ? a2 : "");
		nargs += 2;
	}
	sandbox_trip trip;
	int st = sandbox_call(lp->sb, nargs, 2, &trip);
	if (inst != NULL) {
		lua_pushnil(L);
		lua_rawsetp(L, LUA_REGISTRYINDEX, &CURRENT_KEY);
		lp->cur_inst = LUA_NOREF;
		lp->current = NULL;
	}
	int ans = DUROX_ACCESS_DENY;
	char t[160];
	if (trip != TRIP_NONE) {
		trip_text(lp->sb, trip, t, sizeof t);
		snprintf(why, n, "%s stopped: %s", hname, t);
	} else if (st != LUA_OK) {
		snprintf(why, n, "%s failed: %s", hname, lua_tostring(L, -1));
	} else if (lua_type(L, -2) == LUA_TBOOLEAN) {
		ans = lua_toboolean(L, -2) ? DUROX_ACCESS_ALLOW : DUROX_ACCESS_DENY;
		copy_reason(L, -1, why, n);
	} else if (hook == DUROX_HOOK_LIST_INSTANCES &&
	           (lua_type(L, -2) == LUA_TTABLE || lua_type(L, -2) == LUA_TSTRING)) {
		durox_filter *f = durox_filter_new();
		if (f == NULL) {
			snprintf(why, n, "out of memory");
		} else {
			copy_reason(L, -1, why, n);
			lua_pushcfunction(L, to_filter);
			lua_pushvalue(L, -3);
			lua_pushlightuserdata(L, f);
			st = sandbox_call(lp->sb, 2, 0, &trip);
			if (st == LUA_OK && trip == TRIP_NONE) {
				*filter = f;
				ans = DUROX_ACCESS_FILTER;
			} else {
				if (trip != TRIP_NONE)
					trip_text(lp->sb, trip, t, sizeof t);
				snprintf(why, n, "can_list_instances returned a bad filter: %s",
				         trip != TRIP_NONE ? t : lua_tostring(L, -1));
				durox_filter_free(f);
			}
		}
	} else {
		snprintf(why, n, "%s returned a %s (expected %s)", hname, luaL_typename(L, -2),
		         hook == DUROX_HOOK_LIST_INSTANCES ? "true, false, a filter table or a query string"
		                                           : "true or false");
	}
	lua_settop(L, top);
	return ans;
}

static int h_list(void *ud, const durox_access_context *c, durox_filter **f, char *why, size_t n)
{
	return decide(ud, DUROX_HOOK_LIST_INSTANCES, c, NULL, NULL, NULL, f, why, n);
}

#define INSTANCE_HOOK(fn, hook)                                                                                        \
	static int fn(void *ud, const durox_access_context *c, const durox_access_instance *i, char *why, size_t n)    \
	{                                                                                                              \
		return decide(ud, hook, c, i, NULL, NULL, NULL, why, n);                                               \
	}
INSTANCE_HOOK(h_view, DUROX_HOOK_VIEW_INSTANCE)
INSTANCE_HOOK(h_history, DUROX_HOOK_VIEW_HISTORY)
INSTANCE_HOOK(h_cancel, DUROX_HOOK_CANCEL_INSTANCE)
INSTANCE_HOOK(h_purge, DUROX_HOOK_PURGE_INSTANCE)
INSTANCE_HOOK(h_restart, DUROX_HOOK_RESTART_INSTANCE)
#undef INSTANCE_HOOK

static int h_raise(void *ud, const durox_access_context *c, const durox_access_instance *i, const char *event,
                   char *why, size_t n)
{
	return decide(ud, DUROX_HOOK_RAISE_EVENT, c, i, event, NULL, NULL, why, n);
}

static int h_start(void *ud, const durox_access_context *c, const char *name, const char *id, char *why, size_t n)
{
	return decide(ud, DUROX_HOOK_START_ORCHESTRATION, c, NULL, name, id, NULL, why, n);
}

#define GLOBAL_HOOK(fn, hook)                                                                                          \
	static int fn(void *ud, const durox_access_context *c, char *why, size_t n)                                    \
	{                                                                                                              \
		return decide(ud, hook, c, NULL, NULL, NULL, NULL, why, n);                                            \
	}
GLOBAL_HOOK(h_metrics, DUROX_HOOK_VIEW_METRICS)
GLOBAL_HOOK(h_jobs, DUROX_HOOK_MANAGE_JOBS)
GLOBAL_HOOK(h_audit, DUROX_HOOK_VIEW_AUDIT)
#undef GLOBAL_HOOK

static void release(void *ud)
{
	lua_policy *lp = ud;
	if (lp == NULL)
		return;
	sandbox_free(lp->sb);
	free(lp->source);
	free(lp);
}

/* ---- loading ------------------------------------------------------------------------------------- */

static int read_all(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "cannot read policy %s: %s", path, strerror(errno));
		return DUROX_EIO;
	}
	char *data = malloc(MAX_POLICY_BYTES + 1);
	if (data == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return DUROX_ENOMEM;
	}
	size_t n = fread(data, 1, MAX_POLICY_BYTES + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(data);
		snprintf(err, errlen, "cannot read policy %s", path);
		return DUROX_EIO;
	}
	if (n > MAX_POLICY_BYTES) {
		free(data);
		snprintf(err, errlen, "policy %s is larger than %d bytes", path, MAX_POLICY_BYTES);
		return DUROX_EINVALID;
	}
	data[n] = '\0';
	*out = data;
	*len = n;
	return DUROX_OK;
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 40 || lb > 40)
		return 99;
	size_t d[41][41];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < c)
				c = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < c)
				c = d[i][j - 1] + 1;
			d[i][j] = c;
		}
	return d[la][lb];
}

/* Checks the table at the top of the sandbox's stack and records its hooks in lp and p. */
static int take_table(lua_policy *lp, durox_access_policy *p, const durox_access_context *ctx, const char *name,
                      char *err, size_t errlen)
{
	lua_State *L = sandbox_state(lp->sb);
	int t = lua_gettop(L);
	if (!lua_istable(L, t)) {
		snprintf(err, errlen, "policy %s returns a %s (expected a table of hook functions)", name,
		         luaL_typename(L, t));
		return DUROX_EINVALID;
	}
	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			snprintf(err, errlen, "policy %s: its table has a %s key (expected hook names)", name,
			         luaL_typename(L, -2));
			return DUROX_EINVALID;
		}
		const char *k = lua_tostring(L, -2);
		int hook = durox_access_hook_parse(k);
		int vt = lua_type(L, -1);
		if (hook >= 0) {
			if (vt == LUA_TFUNCTION) {
				lua_pushvalue(L, -1);
				lp->fn[hook] = luaL_ref(L, LUA_REGISTRYINDEX);
			} else if (vt == LUA_TBOOLEAN) {
				if (lua_toboolean(L, -1))
					p->always_allow |= 1u << hook;
				else
					p->always_deny |= 1u << hook;
			} else {
				snprintf(err, errlen, "policy %s: %s is a %s (expected a function, true or false)",
				         name, k, luaL_typename(L, -1));
				return DUROX_EINVALID;
			}
		} else if (strcmp(k, "max_bulk_operations") == 0) {
			if (vt != LUA_TFUNCTION && !lua_isinteger(L, -1)) {
				snprintf(err, errlen,
				         "policy %s: max_bulk_operations is a %s (expected an integer or a function)",
				         name, luaL_typename(L, -1));
				return DUROX_EINVALID;
			}
		} else if (strcmp(k, "description") == 0) {
			if (vt != LUA_TSTRING) {
				snprintf(err, errlen, "policy %s: description is a %s (expected a string)", name,
				         luaL_typename(L, -1));
				return DUROX_EINVALID;
			}
		} else {
			const char *best = NULL;
			size_t bd = 4;
			for (int h = 0; h < DUROX_HOOK__COUNT; h++) {
				size_t d = edit_distance(k, durox_access_hook_name(h));
				if (d < bd) {
					bd = d;
					best = durox_access_hook_name(h);
				}
			}
			if (best != NULL)
				snprintf(err, errlen, "policy %s: unknown field '%s' (did you mean %s?)", name, k,
				         best);
			else
				snprintf(err, errlen,
				         "policy %s: unknown field '%s' (expected can_* hooks, max_bulk_operations or "
				         "description)",
				         name, k);
			return DUROX_EINVALID;
		}
		lua_pop(L, 1);
	}
	/* the bulk cap: a number, or a function of the context asked once now */
	lua_getfield(L, t, "max_bulk_operations");
	if (lua_isfunction(L, -1)) {
		push_ctx(L, ctx);
		sandbox_trip trip;
		int st = sandbox_call(lp->sb, 1, 1, &trip);
		if (st != LUA_OK || trip != TRIP_NONE || !lua_isinteger(L, -1)) {
			char why[200];
			if (trip != TRIP_NONE)
				trip_text(lp->sb, trip, why, sizeof why);
			else
				snprintf(why, sizeof why, "%s",
				         st != LUA_OK ? lua_tostring(L, -1) : "it did not return an integer");
			snprintf(err, errlen, "policy %s: max_bulk_operations failed: %s", name, why);
			return DUROX_EINVALID;
		}
	}
	if (lua_isinteger(L, -1)) {
		lua_Integer v = lua_tointeger(L, -1);
		if (v < 0 || v > 0x7fffffff) {
			snprintf(err, errlen, "policy %s: max_bulk_operations out of range (0 to 2147483647)", name);
			return DUROX_EINVALID;
		}
		p->max_bulk_operations = (uint32_t)v;
	}
	lua_settop(L, t - 1);
	return DUROX_OK;
}

int lua_policy_new(const lua_policy_options *o, const durox_access_context *ctx, durox_access_policy *out, char *err,
                   size_t errlen)
{
	memset(out, 0, sizeof *out);
	static const durox_access_context anonymous = {NULL, NULL, 0, NULL, NULL};
	if (ctx == NULL)
		ctx = &anonymous;
	char *owned = NULL;
	const char *text = o->source;
	size_t len = o->source_len;
	const char *name = o->path != NULL ? o->path : "policy_source";
	int rc = DUROX_OK;
	if (o->path != NULL) {
		if ((rc = read_all(o->path, &owned, &len, err, errlen)) != DUROX_OK)
			return rc;
		text = owned;
	} else if (text == NULL) {
		snprintf(err, errlen, "no policy given");
		return DUROX_EINVALID;
	}
	lua_policy *lp = calloc(1, sizeof *lp);
	if (lp == NULL || (lp->sb = sandbox_new(&o->limits)) == NULL) {
		free(lp);
		free(owned);
		snprintf(err, errlen, "out of memory");
		return DUROX_ENOMEM;
	}
	for (int h = 0; h < DUROX_HOOK__COUNT; h++)
		lp->fn[h] = LUA_NOREF;
	lp->cur_inst = LUA_NOREF;
	lua_State *L = sandbox_state(lp->sb);
	/* the id: the hash of the text, so the audit log says which policy decided */
	uint8_t d[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	sha256(text, len, d);
	hex_encode(d, SHA256_LEN, hex);
	char id[80];
	snprintf(id, sizeof id, "sha256:%s", hex);
	lua_pushfstring(L, o->path != NULL ? "@%s" : "=%s", name);
	int st = luaL_loadbufferx(L, text, len, lua_tostring(L, -1), "t");
	free(owned);
	if (st != LUA_OK) {
		snprintf(err, errlen, "policy %s: %s", name, lua_tostring(L, -1));
		release(lp);
		return DUROX_EINVALID;
	}
	lua_remove(L, -2);
	sandbox_trip trip;
	st = sandbox_call(lp->sb, 0, 1, &trip);
	if (st != LUA_OK || trip != TRIP_NONE) {
		char t[160];
		if (trip != TRIP_NONE)
			trip_text(lp->sb, trip, t, sizeof t);
		snprintf(err, errlen, "policy %s: %s", name, trip != TRIP_NONE ? t : lua_tostring(L, -1));
		release(lp);
		return DUROX_EINVALID;
	}
	if ((rc = take_table(lp, out, ctx, name, err, errlen)) != DUROX_OK) {
		release(lp);
		memset(out, 0, sizeof *out);
		return rc;
	}
	lua_settop(L, 0);
	/* the metatable of instance tables: inst.root */
	lua_createtable(L, 0, 2);
	lua_pushlightuserdata(L, lp);
	lua_pushcclosure(L, inst_index, 1);
	lua_setfield(L, -2, "__index");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lp->inst_mt = luaL_ref(L, LUA_REGISTRYINDEX);
	out->ud = lp;
#define SET(hook, field, hookfn)                                                                                       \
	if (lp->fn[hook] != LUA_NOREF)                                                                                 \
		out->field = hookfn;
	SET(DUROX_HOOK_LIST_INSTANCES, can_list_instances, h_list)
	SET(DUROX_HOOK_VIEW_INSTANCE, can_view_instance, h_view)
	SET(DUROX_HOOK_VIEW_HISTORY, can_view_history, h_history)
	SET(DUROX_HOOK_CANCEL_INSTANCE, can_cancel_instance, h_cancel)
	SET(DUROX_HOOK_RAISE_EVENT, can_raise_event, h_raise)
	SET(DUROX_HOOK_START_ORCHESTRATION, can_start_orchestration, h_start)
	SET(DUROX_HOOK_PURGE_INSTANCE, can_purge_instance, h_purge)
	SET(DUROX_HOOK_RESTART_INSTANCE, can_restart_instance, h_restart)
	SET(DUROX_HOOK_VIEW_METRICS, can_view_metrics, h_metrics)
	SET(DUROX_HOOK_MANAGE_JOBS, can_manage_jobs, h_jobs)
	SET(DUROX_HOOK_VIEW_AUDIT, can_view_audit, h_audit)
#undef SET
	snprintf(lp->id, sizeof lp->id, "%s", id);
	if ((lp->source = strdup(name)) == NULL) {
		release(lp);
		memset(out, 0, sizeof *out);
		snprintf(err, errlen, "out of memory");
		return DUROX_ENOMEM;
	}
	out->id = lp->id;
	out->source = lp->source;
	out->release = release;
	return DUROX_OK;
}
