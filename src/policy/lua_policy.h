/*
 * lua_policy.h - an access-control policy written in Lua, as an implementation of the
 * engine's C policy interface (durox_access_policy, include/durox.h). The policy is a Lua
 * chunk returning a table of hooks (functions, or true/false as constant answers) run in its
 * own sandbox (sandbox.h); the engine never sees Lua. Built by the binding from
 * durox.open{policy = FILE | policy_source = TEXT}; docs/access-control.md is the reference.
 */
#ifndef DUROX_POLICY_LUA_POLICY_H
#define DUROX_POLICY_LUA_POLICY_H

#include <stddef.h>

#include "durox.h"
#include "policy/sandbox.h"

typedef struct lua_policy_options {
	const char *path;   /* a policy file, or NULL */
	const char *source; /* the policy's text when path is NULL */
	size_t source_len;
	sandbox_limits limits; /* zero: the defaults */
} lua_policy_options;

/*
 * Loads and checks the policy (a text chunk that returns a table whose keys are hook names,
 * max_bulk_operations and description) and fills *out: hooks for the table's functions,
 * always_allow bits for its `true` values, NULL for `false` and for what is missing (denied),
 * id "sha256:<hex of the text>", source = path or "policy_source", the cap of a
 * max_bulk_operations number (or of a function of ctx, called once now). *out owns the
 * sandbox: pass it to durox_open (which releases it) or call out->release(out->ud).
 * Returns DUROX_OK, or DUROX_EINVALID / DUROX_EIO / DUROX_ENOMEM with a one-line message in
 * err ("policy FILE: ...").
 */
int lua_policy_new(const lua_policy_options *o, const durox_access_context *ctx, durox_access_policy *out, char *err,
                   size_t errlen);

#endif
