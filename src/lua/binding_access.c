/*
 * binding_access.c - the Lua face of access control and the audit log: reading the
 * durox.open options policy, policy_source, policy_limits, context, audit, audit_file and
 * audit_key into the engine's open options (the Lua policy itself is built by
 * src/policy/lua_policy.c in its own sandbox), and the methods dx:access_info(),
 * dx:get_audit_log{...} and dx:verify_audit_log([file]). Nothing here decides access: the
 * engine's enforcement point does (src/engine/access.c). Used by binding.c (durox.open)
 * and registered through lx_open_access.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "lua/lx_access.h"
#include "policy/lua_policy.h"

/* ---- open options --------------------------------------------------------------------- */

static void policy_free_box(void *p)
{
	durox_access_policy *pol = p;
	if (pol->release != NULL)
		pol->release(pol->ud);
	free(pol);
}

/* The roles of a context, at most this many. */
#define MAX_ROLES 64

int lx_access_options(lua_State *L, int t, lx_access *a)
{
	memset(a, 0, sizeof *a);
	if (lua_isnoneornil(L, t))
		return 1;
	t = lua_absindex(L, t);
	lx_opts o = {L, t, "open option"};
	const char *path = lx_opt_text(&o, "policy");
	size_t srclen = 0;
	const char *source = lx_opt_text(&o, "policy_source");
	if (source != NULL)
		srclen = strlen(source);
	if (path != NULL && source != NULL)
		luaL_error(L, "give either option 'policy' (a file) or 'policy_source' (its text), not both");
	lua_getfield(L, t, "context");
	int ct = lua_gettop(L);
	if (!lua_isnil(L, ct)) {
		static const char *const known[] = {"user_id", "roles", "source_ip", "reason", NULL};
		lx_opts c = lx_opts_at(L, ct, "context", known, NULL);
		a->ctx.user_id = lx_opt_text(&c, "user_id");
		a->ctx.source_ip = lx_opt_text(&c, "source_ip");
		a->ctx.reason = lx_opt_text(&c, "reason");
		/* the array of role pointers lives in a userdata left on the stack; the strings in the
		 * context table */
		const char **roles = lua_newuserdatauv(L, MAX_ROLES * sizeof *roles, 0);
		a->ctx.n_roles = (size_t)lx_opt_text_list(&c, "roles", roles, MAX_ROLES);
		a->ctx.roles = roles;
		a->has_ctx = 1;
	}
	a->audit = lx_opt_boolean(&o, "audit", 0);
	a->audit_file = lx_opt_text(&o, "audit_file");
	a->audit_key = lx_opt_text(&o, "audit_key");
	lua_policy_options po = {path, source, srclen, {0, 0, 0}};
	lua_getfield(L, t, "policy_limits");
	if (!lua_isnil(L, -1)) {
		static const char *const known[] = {"memory", "time_ms", "instructions", NULL};
		lx_opts l = lx_opts_at(L, lua_gettop(L), "policy_limits", known, NULL);
		po.limits.memory = (size_t)lx_opt_integer(&l, "memory", 0, 65536, (lua_Integer)1 << 40);
		po.limits.time_ms = (uint32_t)lx_opt_integer(&l, "time_ms", 0, 1, 3600000);
		po.limits.instructions = (uint64_t)lx_opt_integer(&l, "instructions", 0, 1000, (lua_Integer)1 << 50);
	}
	lua_pop(L, 1);
	if (path == NULL && source == NULL)
		return 1;
	/* the policy, owned by a box until durox_open takes it */
	lx_box *b = lx_newbox(L);
	durox_access_policy *pol = calloc(1, sizeof *pol);
	if (pol == NULL)
		luaL_error(L, "out of memory");
	b->p = pol;
	b->fr = policy_free_box;
	char err[700];
	int rc = lua_policy_new(&po, a->has_ctx ? &a->ctx : NULL, pol, err, sizeof err);
	if (rc != DUROX_OK) {
		lua_pushnil(L);
		lua_pushstring(L, err);
		lua_pushstring(L, durox_code_name(rc));
		return 0;
	}
	a->policy = pol;
	a->box = b;
	return 1;
}

void lx_access_apply(lx_access *a, durox_open_options *o)
{
	o->policy = a->policy;
	o->context = a->has_ctx ? &a->ctx : NULL;
	o->audit = a->audit;
	o->audit_file = a->audit_file;
	o->audit_key = a->audit_key;
}

void lx_access_taken(lx_access *a)
{
	if (a->box != NULL) {
		/* durox_open owns ud now (it released it if it failed): only the struct remains */
		free(a->box->p);
		a->box->p = NULL;
		a->box = NULL;
	}
}

/* ---- methods -------------------------------------------------------------------------- */

/* handle:access_info() -> { enabled, policy, user_id, roles, source_ip, audit, audit_file, ... } */
static int l_access_info(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	durox_access_info ai;
	durox_get_access_info(dx, &ai);
	lua_createtable(L, 0, 9);
	lx_set_bool(L, "enabled", ai.enabled);
	lx_set_str(L, "policy", ai.policy);
	lx_set_str(L, "user_id", ai.user_id);
	lua_createtable(L, (int)ai.n_roles, 0);
	for (size_t k = 0; k < ai.n_roles; k++) {
		lua_pushstring(L, ai.roles[k]);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, -2, "roles");
	lx_set_str(L, "source_ip", ai.source_ip);
	lx_set_str(L, "audit", ai.audit);
	lx_set_str(L, "audit_file", ai.audit_file);
	lx_set_bool(L, "audit_keyed", ai.audit_keyed);
	if (ai.max_bulk_operations > 0)
		lx_set_int(L, "max_bulk_operations", ai.max_bulk_operations);
	return 1;
}

static void audit_free_box(void *p) { durox_audit_list_free(p); }

/* Pushes the JSON text as a Lua value (nil when it is not JSON). */
static void push_json_text(lua_State *L, arena *a, const char *text)
{
	json *v = text != NULL ? json_parse(a, text, strlen(text), NULL, 0) : NULL;
	if (v == NULL)
		lua_pushnil(L);
	else
		lx_push_json(L, v);
}

/* handle:get_audit_log{ since, user_id, operation, limit, file } -> { records } | nil, msg, code */
static int l_get_audit_log(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	static const char *const known[] = {"since", "user_id", "operation", "limit", "file", NULL};
	lx_opts o = lx_opts_at(L, 2, "get_audit_log", known, NULL);
	durox_audit_query q = {0};
	int64_t since = lx_opt_time(&o, "since");
	q.since = since != DUROX_NO_TIME ? since : 0;
	q.user_id = lx_opt_text(&o, "user_id");
	q.operation = lx_opt_text(&o, "operation");
	q.file = lx_opt_text(&o, "file");
	q.limit = (uint32_t)lx_opt_integer(&o, "limit", 0, 1, LX_MAX_PAGE);
	lx_box *b = lx_newbox(L);
	b->fr = audit_free_box;
	durox_audit_list *l = NULL;
	int rc = durox_get_audit_log(dx, &q, &l);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = l;
	arena *scratch = lx_newarena(L);
	lua_createtable(L, (int)l->count, 0);
	for (size_t k = 0; k < l->count; k++) {
		const durox_audit_record *r = &l->items[k];
		lua_createtable(L, 0, 15);
		lx_set_int(L, "seq", (int64_t)r->seq);
		lx_set_int(L, "time", r->time);
		lx_set_str(L, "user_id", r->user_id);
		push_json_text(L, scratch, r->roles);
		lua_setfield(L, -2, "roles");
		lx_set_str(L, "source_ip", r->source_ip);
		lx_set_str(L, "context_reason", r->context_reason);
		lx_set_str(L, "operation", r->operation);
		lx_set_str(L, "target", r->target);
		lx_set_str(L, "decision", r->decision);
		lx_set_str(L, "reason", r->reason);
		lx_set_str(L, "policy", r->policy);
		push_json_text(L, scratch, r->params);
		lua_setfield(L, -2, "params");
		push_json_text(L, scratch, r->result);
		lua_setfield(L, -2, "result");
		lx_set_str(L, "prev_hash", r->prev_hash);
		lx_set_str(L, "hash", r->hash);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lx_boxfree(b);
	return 1;
}

/* handle:verify_audit_log([file]) -> true, { records, head_seq, head_hash } | nil, msg, code */
static int l_verify_audit_log(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *file = NULL;
	if (!lua_isnoneornil(L, 2)) {
		if (lua_istable(L, 2)) {
			static const char *const known[] = {"file", NULL};
			lx_opts o = lx_opts_at(L, 2, "verify_audit_log", known, NULL);
			file = lx_opt_text(&o, "file");
		} else {
			file = lx_checktext(L, 2);
		}
	}
	durox_audit_verification v;
	int rc = durox_verify_audit_log(dx, file, &v);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushboolean(L, 1);
	lua_createtable(L, 0, 3);
	lx_set_int(L, "records", (int64_t)v.records);
	lx_set_int(L, "head_seq", (int64_t)v.head_seq);
	if (v.head_hash[0] != '\0')
		lx_set_str(L, "head_hash", v.head_hash);
	return 2;
}

static const luaL_Reg access_methods[] = {
        {"access_info", l_access_info},
        {"get_audit_log", l_get_audit_log},
        {"verify_audit_log", l_verify_audit_log},
        {NULL, NULL},
};

void lx_open_access(lua_State *L) { luaL_setfuncs(L, access_methods, 0); }
