/*
 * lx_access.h - the binding's access-control options (binding_access.c): what durox.open
 * reads from its options table to give the engine a policy, a context and an audit log, and
 * the access and audit methods of a store handle. Used by binding.c.
 */
#ifndef DUROX_LUA_LX_ACCESS_H
#define DUROX_LUA_LX_ACCESS_H

#include "lua/lx.h"

/* The access options of one durox.open call. The strings and the roles array stay owned by
 * values on the Lua stack (left there by lx_access_options) until durox_open has copied them. */
typedef struct lx_access {
	durox_access_context ctx;
	int has_ctx;
	durox_access_policy *policy; /* NULL: no policy */
	lx_box *box;                 /* owns policy until durox_open takes it */
	int audit;
	const char *audit_file, *audit_key;
} lx_access;

/* Reads policy, policy_source, policy_limits, context, audit, audit_file and audit_key from
 * the options table at t (nil: none) and loads the policy into its sandbox. Raises on misuse
 * (wrong types, unknown keys); returns 1, or 0 with nil, message, code pushed when the policy
 * cannot be loaded (a missing file, a syntax error, a bad table). Leaves values on the stack. */
int lx_access_options(lua_State *L, int t, lx_access *a);
/* Sets the access fields of the engine's open options. */
void lx_access_apply(lx_access *a, durox_open_options *o);
/* After durox_open returned (either way): the handle owns the policy now. */
void lx_access_taken(lx_access *a);

/* Adds access_info, get_audit_log and verify_audit_log to the method table at the top. */
void lx_open_access(lua_State *L);

#endif
