/*
 * binding_store.c - the store handle ("durox.Store"): durox.open (options, the
 * ManagementConfig table and file), close (also __gc and __close, idempotent), info and
 * config. The handle is created closed before the store is opened into it, so a failed open
 * leaks nothing. Relies on the engine (durox.h) and options.c; the methods are added to the
 * Store's method table by lx_open_store and durox.open to the module by lx_open_store_module
 * (both called by binding.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <string.h>

#include "lua/lx.h"
#include "lua/lx_access.h"

durox *lx_checkstore(lua_State *L, int idx)
{
	lx_store *h = luaL_checkudata(L, idx, LX_STORE);
	if (h->dx == NULL)
		luaL_error(L, "attempt to use a closed store");
	return h->dx;
}

static int store_close(lua_State *L)
{
	lx_store *h = luaL_checkudata(L, 1, LX_STORE);
	durox_close(h->dx);
	h->dx = NULL;
	return 0;
}

static int store_tostring(lua_State *L)
{
	lx_store *h = luaL_checkudata(L, 1, LX_STORE);
	if (h->dx == NULL) {
		lua_pushstring(L, "durox.Store (closed)");
	} else {
		durox_store_info in;
		durox_get_store_info(h->dx, &in);
		lua_pushfstring(L, "durox.Store (%s:%s)", in.provider, in.location);
	}
	return 1;
}

/* ---- ManagementConfig -------------------------------------------------------------- */

static const char *const config_fields[] = {"enable_metrics",      "enable_streaming",        "max_list_instances",
                                            "max_bulk_operations", "metrics_retention_hours", "cache_ttl_seconds",
                                            "stall_threshold_ms",  "timer_overdue_ms",        "event_wait_threshold_ms",
                                            "max_attempts",        "near_poison_attempts",    "max_payload_bytes",
                                            "max_id_bytes",        "callback_budget_ms",      NULL};

/* Applies the ManagementConfig fields of the table at t to dx; raises on misuse. The ranges
 * are the engine's (durox_set_config), checked here so that every fault names its field. */
static void apply_config(lua_State *L, durox *dx, int t)
{
	lx_opts o = lx_opts_at(L, t, "config", config_fields, NULL);
	durox_config c;
	durox_get_config(dx, &c);
	c.enable_metrics = lx_opt_boolean(&o, "enable_metrics", c.enable_metrics);
	c.enable_streaming = lx_opt_boolean(&o, "enable_streaming", c.enable_streaming);
#define I32 0x7fffffff
	c.max_list_instances = (uint32_t)lx_opt_integer(&o, "max_list_instances", c.max_list_instances, 1, I32);
	c.max_bulk_operations = (uint32_t)lx_opt_integer(&o, "max_bulk_operations", c.max_bulk_operations, 1, I32);
	c.metrics_retention_hours =
	        (uint32_t)lx_opt_integer(&o, "metrics_retention_hours", c.metrics_retention_hours, 0, I32);
	c.cache_ttl_seconds = (uint32_t)lx_opt_integer(&o, "cache_ttl_seconds", c.cache_ttl_seconds, 0, I32);
	c.stall_threshold_ms = (uint32_t)lx_opt_duration(&o, "stall_threshold_ms", c.stall_threshold_ms, 0, I32);
	c.timer_overdue_ms = (uint32_t)lx_opt_duration(&o, "timer_overdue_ms", c.timer_overdue_ms, 0, I32);
	c.event_wait_threshold_ms =
	        (uint32_t)lx_opt_duration(&o, "event_wait_threshold_ms", c.event_wait_threshold_ms, 0, I32);
	c.max_attempts = (uint32_t)lx_opt_integer(&o, "max_attempts", c.max_attempts, 1, I32);
	c.near_poison_attempts = (uint32_t)lx_opt_integer(&o, "near_poison_attempts", c.near_poison_attempts, 1, I32);
	c.max_payload_bytes = (uint32_t)lx_opt_integer(&o, "max_payload_bytes", c.max_payload_bytes, 1, I32);
	c.max_id_bytes = (uint32_t)lx_opt_integer(&o, "max_id_bytes", c.max_id_bytes, 1, I32);
	c.callback_budget_ms = (uint32_t)lx_opt_duration(&o, "callback_budget_ms", c.callback_budget_ms, 0, I32);
#undef I32
	if (c.near_poison_attempts > c.max_attempts && lx_opt_has(&o, "near_poison_attempts"))
		lx_opt_error(&o, "near_poison_attempts", "out of range (1 to max_attempts, %d), got %d",
		             (int)c.max_attempts, (int)c.near_poison_attempts);
	if (c.near_poison_attempts > c.max_attempts)
		lx_opt_error(&o, "max_attempts", "out of range (near_poison_attempts, %d, or more), got %d",
		             (int)c.near_poison_attempts, (int)c.max_attempts);
	if (durox_set_config(dx, &c) != DUROX_OK)
		luaL_error(L, "%s", durox_errmsg(dx));
}

static int l_apply_config(lua_State *L)
{
	apply_config(L, lua_touserdata(L, 1), 2);
	return 0;
}

/* Applies the config table at t (read from path); returns 1, or 0 with the message pushed. */
static int apply_config_protected(lua_State *L, durox *dx, int t, const char *path)
{
	lua_pushcfunction(L, l_apply_config);
	lua_pushlightuserdata(L, dx);
	lua_pushvalue(L, t);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		lua_pushfstring(L, "configuration file %s: %s", path, lua_tostring(L, -1));
		lua_remove(L, -2);
		return 0;
	}
	return 1;
}

/* ---- durox.open --------------------------------------------------------------------- */

/* durox.open(url [, options]) -> handle | nil, message, code */
static int l_open(lua_State *L)
{
	static const char *const known[] = {"readonly",
	                                    "busy_timeout_ms",
	                                    "max_write_share",
	                                    "config",
	                                    "config_file",
	                                    "connect_timeout_ms",
	                                    "statement_timeout_ms",
	                                    "read_url",
	                                    "policy",
	                                    "policy_source",
	                                    "policy_limits",
	                                    "context",
	                                    "audit",
	                                    "audit_file",
	                                    "audit_key",
	                                    "index",
	                                    NULL};
	const char *url = lx_checktext(L, 1);
	lua_settop(L, 2);
	lx_opts o = lx_opts_at(L, 2, "open option", known, NULL);
	durox_open_options oo = {0};
	oo.readonly = lx_opt_boolean(&o, "readonly", 0);
	oo.busy_timeout_ms = (int)lx_opt_duration(&o, "busy_timeout_ms", 0, 0, 3600000);
	oo.max_write_share = lx_opt_number(&o, "max_write_share", 0, 0, 1);
	oo.connect_timeout_ms = (int)lx_opt_duration(&o, "connect_timeout_ms", 0, 0, 3600000);
	oo.statement_timeout_ms = (int)lx_opt_duration(&o, "statement_timeout_ms", 0, 0, 86400000);
	oo.read_url = lx_opt_text(&o, "read_url");
	/* index = true (the default path) | false | PATH (the string lives in the options table) */
	if (lx_opt_has(&o, "index")) {
		lua_getfield(L, 2, "index");
		int t = lua_type(L, -1);
		lua_pop(L, 1);
		if (t == LUA_TBOOLEAN)
			oo.index = lx_opt_boolean(&o, "index", 1) ? DUROX_INDEX_AUTO : DUROX_INDEX_OFF;
		else if (t == LUA_TSTRING)
			oo.index_path = lx_opt_text(&o, "index");
		else
			lx_opt_error(&o, "index", "expects a boolean or a path, got %s", lua_typename(L, t));
	}
	const char *config_file = lx_opt_text(&o, "config_file");
	if (o.t != 0) {
		lua_getfield(L, 2, "config");
		if (!lua_isnil(L, -1) && !lua_istable(L, -1))
			lx_opt_error(&o, "config", "expects a table, got %s", luaL_typename(L, -1));
		lua_pop(L, 1);
	}
	/* access control: the policy is loaded into its own sandbox (src/policy) and handed to
	 * the engine, which enforces it */
	lx_access acc;
	if (!lx_access_options(L, 2, &acc))
		return 3;
	lx_access_apply(&acc, &oo);
	/* create the (closed) handle first, then open into it */
	lx_store *h = lua_newuserdatauv(L, sizeof *h, 0);
	h->dx = NULL;
	luaL_setmetatable(L, LX_STORE);
	char err[512];
	int rc = durox_open(url, &oo, &h->dx, err, sizeof err);
	lx_access_taken(&acc);
	if (rc != DUROX_OK) {
		lua_pushnil(L);
		lua_pushstring(L, err);
		lua_pushstring(L, durox_code_name(rc));
		return 3;
	}
	if (config_file != NULL) {
		/* the file first, so that options.config overrides it */
		if (!lx_read_config_file(L, config_file) ||
		    !apply_config_protected(L, h->dx, lua_absindex(L, -1), config_file)) {
			/* a bad file is an expected failure: nil, message, INVALID (and no handle) */
			durox_close(h->dx);
			h->dx = NULL;
			lua_pushnil(L);
			lua_insert(L, -2);
			lua_pushstring(L, "INVALID");
			return 3;
		}
		lua_pop(L, 1);
	}
	if (o.t != 0) {
		lua_getfield(L, 2, "config");
		if (!lua_isnil(L, -1))
			apply_config(L, h->dx, lua_absindex(L, -1));
		lua_pop(L, 1);
	}
	return 1;
}

/* ---- info and config ------------------------------------------------------------------ */

/* handle:info() -> table */
static int l_info(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	durox_store_info in;
	durox_get_store_info(dx, &in);
	lua_createtable(L, 0, 10);
	lx_set_str(L, "provider", in.provider);
	lx_set_str(L, "location", in.location);
	lx_set_str(L, "schema_version", in.schema_version);
#define B(f)                                                                                                           \
	lua_pushboolean(L, in.f);                                                                                      \
	lua_setfield(L, -2, #f);
	B(readonly)
	B(has_custom_status)
	B(has_parent_instance)
	B(has_kv)
	B(has_sessions)
	B(has_attempt_count)
	B(has_worker_identity)
#undef B
	return 1;
}

/* handle:config([fields]) -> the (updated) ManagementConfig table */
static int l_config(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		apply_config(L, dx, 2);
	}
	durox_config c;
	durox_get_config(dx, &c);
	lua_createtable(L, 0, 6);
	lx_set_bool(L, "enable_metrics", c.enable_metrics);
	lx_set_bool(L, "enable_streaming", c.enable_streaming);
	lx_set_int(L, "max_list_instances", c.max_list_instances);
	lx_set_int(L, "max_bulk_operations", c.max_bulk_operations);
	lx_set_int(L, "metrics_retention_hours", c.metrics_retention_hours);
	lx_set_int(L, "cache_ttl_seconds", c.cache_ttl_seconds);
	lx_set_int(L, "stall_threshold_ms", c.stall_threshold_ms);
	lx_set_int(L, "timer_overdue_ms", c.timer_overdue_ms);
	lx_set_int(L, "event_wait_threshold_ms", c.event_wait_threshold_ms);
	lx_set_int(L, "max_attempts", c.max_attempts);
	lx_set_int(L, "near_poison_attempts", c.near_poison_attempts);
	lx_set_int(L, "max_payload_bytes", c.max_payload_bytes);
	lx_set_int(L, "max_id_bytes", c.max_id_bytes);
	lx_set_int(L, "callback_budget_ms", c.callback_budget_ms);
	return 1;
}

/* handle:interrupt(): asks the store call running on the handle to stop (it then returns
 * nil, "interrupted: ...", "ABORT"); from a callback or a coroutine, or nothing when none runs. */
static int l_interrupt(lua_State *L)
{
	durox_interrupt(lx_checkstore(L, 1));
	return 0;
}

static const luaL_Reg store_methods[] = {
        {"close", store_close}, {"interrupt", l_interrupt}, {"info", l_info}, {"config", l_config}, {NULL, NULL},
};

void lx_open_store(lua_State *L) { luaL_setfuncs(L, store_methods, 0); }

void lx_store_metamethods(lua_State *L)
{
	lua_pushcfunction(L, store_close);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, store_close);
	lua_setfield(L, -2, "__close");
	lua_pushcfunction(L, store_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushliteral(L, LX_STORE);
	lua_setfield(L, -2, "__name");
}

void lx_open_store_module(lua_State *L)
{
	lua_pushcfunction(L, l_open);
	lua_setfield(L, -2, "open");
}
