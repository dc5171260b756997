/*
 * lx.h - helpers shared by the files of the Lua binding (src/lua): conversion of
 * engine results to Lua tables and of Lua tables to engine requests, JSON <-> Lua,
 * and "boxes" (userdata that own engine results so a Lua error never leaks them).
 */
#ifndef DUROX_LUA_LX_H
#define DUROX_LUA_LX_H

#include <lauxlib.h>
#include <lua.h>

#include "durox.h"
#include "util/json.h"

#define LX_STORE "durox.Store"
#define LX_ITER "durox.Iterator"
#define LX_BOX "durox.Box"

/* A box owns one engine object until it is freed explicitly or collected. */
typedef struct lx_box {
	void *p;
	void (*fr)(void *);
} lx_box;

/* Pushes a new empty box (its metatable frees the object on __gc/__close). */
lx_box *lx_newbox(lua_State *L);
/* Frees the boxed object now (idempotent). */
void lx_boxfree(lx_box *b);
/* Pushes a box owning a fresh arena and returns the arena. */
arena *lx_newarena(lua_State *L);

/* The handle userdata. */
typedef struct lx_store {
	durox *dx; /* NULL once closed */
} lx_store;

/* Returns the open handle at idx or raises ("attempt to use a closed store"). */
durox *lx_checkstore(lua_State *L, int idx);

/* luaL_checkstring that also rejects embedded NUL bytes (ids and URLs are C strings). */
const char *lx_checktext(lua_State *L, int idx);

/* Returns `nil, message, code` for a failed call: pushes 3 values, returns 3. */
int lx_fail(lua_State *L, durox *dx, int rc);

/* Setters of field k of the table at the top of the stack: a string (nothing when v is
 * NULL), an integer, a boolean, a number (nothing when v is NaN). */
void lx_set_str(lua_State *L, const char *k, const char *v);
void lx_set_int(lua_State *L, const char *k, int64_t v);
void lx_set_bool(lua_State *L, const char *k, int v);
void lx_set_num(lua_State *L, const char *k, double v);

/* Raises "unknown <what> field 'k'" unless every key of the table at t is in known or in
 * extra (NULL-terminated lists; extra may be NULL). */
void lx_check_keys(lua_State *L, int t, const char *what, const char *const *known, const char *const *extra);
/* Field k of the table at t as a time: integer ms or a time string (ISO, relative);
 * DUROX_NO_TIME when absent; raises on anything else. */
int64_t lx_opt_time(lua_State *L, int t, const char *k);
/* The value at idx as a duration in ms: a non-negative integer or a string like "5m";
 * def when absent; raises (naming what) on anything else. */
int64_t lx_check_duration(lua_State *L, int idx, const char *what, int64_t def);

/* Result pushers (each pushes one table). */
void lx_push_summary(lua_State *L, const durox_instance_summary *s);
void lx_push_summaries(lua_State *L, const durox_instance_list *l);
void lx_push_time(lua_State *L, const char *field, int64_t t); /* sets t[field] on the table at top, nil skipped */
void lx_push_event(lua_State *L, arena *scratch, const durox_event *e);
void lx_push_statistics(lua_State *L, const durox_instance_statistics *s);
/* Pushes a JSON value as Lua (integers stay integers, null -> durox.null). */
void lx_push_json(lua_State *L, const json *v);
/* Registers durox.null (a light userdata NULL) as the module's field at table idx. */

/* Fills f from the filter table or query string at idx (raises on misuse: unknown field,
 * wrong type, a malformed query with its "query error at position N: ..." message).
 * idx may hold nil (no filter). A table's `query` string is ANDed with its other fields. If
 * the table has a `predicate` function, its absolute index is stored in *pred_idx (else 0)
 * - the caller keeps it on the stack. */
void lx_check_filter(lua_State *L, int idx, durox_filter *f, int *pred_idx);

/* Adds durox.parse_query to the module table at the top of the stack (binding_query.c). */
void lx_open_query(lua_State *L);

/* Predicate plumbing: the engine callback runs the Lua function protected. */
typedef struct lx_pred {
	lua_State *L;
	int fn_idx;  /* absolute stack index of the function */
	int errored; /* the function raised: its error value is at the top of L's stack */
} lx_pred;
int lx_predicate(void *ud, const durox_instance_summary *s);

/* JSON encoding of a Lua value (sorted object keys, exact integers). Pushes the string
 * or raises on a value JSON cannot hold. pretty: indent with two spaces. */
void lx_encode_json(lua_State *L, int idx, int pretty);

/* Pushes a box owning a filter built from the filter table at idx (nil: none) and returns
 * the filter; *pred_idx is set as by lx_check_filter (binding.c). */
durox_filter *lx_filter_arg(lua_State *L, int idx, int *pred_idx);

/* Metrics, analytics and stuck-work methods: adds them to the method table at the top of the
 * stack (binding_metrics.c). */
void lx_open_metrics(lua_State *L);

/* Runs the ManagementConfig file at path (a Lua chunk, text only, with an empty environment,
 * returning a table or assigning fields) and pushes the table (returns 1), or pushes a
 * one-line message (returns 0). Never raises for the file's faults. */
int lx_read_config_file(lua_State *L, const char *path);
/* Adds the write, bulk and job methods (binding_ops.c) to the method table at the top. */
void lx_open_ops(lua_State *L);
/* Adds the visibility index methods (binding_index.c) to the method table at the top. */
void lx_open_index(lua_State *L);
/* Adds durox.sleep and durox.isatty to the module table at the top. */
void lx_open_ops_module(lua_State *L);

/* Embedded pure-Lua modules (generated at build time). */
void lx_preload_embedded(lua_State *L);

/* Opens the durox module table (pushes it). The entry point of both the loadable module
 * and duroxlua. */
int durox_luaopen(lua_State *L);

#endif
