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

/* ---- option readers (options.c) ------------------------------------------------------
 *
 * When a call raises and when it returns nil, message, code (the rule of the whole binding,
 * also in docs/lua-api.md):
 * - It RAISES when the program is wrong, which the binding sees in the arguments alone: a
 *   wrong type, an unknown key, a number outside its documented range, a name outside a
 *   fixed list (order_by, direction, group_by, aggregate, series, mode...), a NUL byte, a
 *   filter, query or time string that does not parse, a closed handle; and it re-raises an
 *   error raised by the caller's own callback (predicate, authorize, progress).
 * - It RETURNS nil, message, code when the call is well formed but the store or the data
 *   says no: NOTFOUND, BUSY, GONE, DENIED, LIMIT, CONFLICT, TIMEOUT, UNSUPPORTED, CORRUPT,
 *   IO; and INVALID for values only the engine can judge: a page token (it belongs to one
 *   store, filter and order), and the content rules of what Duroxide stores (an id, name,
 *   reason or payload that is empty, not UTF-8 or over its size cap).
 * `durox.parse_query` and `durox.parse_time` check user text without raising.
 *
 * Every field of an options or request table is read by one of these readers. lx_opts_at
 * checks that the argument at idx is a table (or nil: every field is then absent) whose keys
 * are all in known or extra; each reader returns def when its field is nil, and otherwise
 * checks the value's type and range on the full lua_Integer (floats with an exact integer
 * value count as integers) before anything is narrowed. They raise with one message shape:
 *   <what> field '<k>' expects an integer, got 1.5
 *   <what> field '<k>' out of range (1 to 100000), got 4294967299
 *   <what> field '<k>' expects asc or desc, got 'up'
 *   unknown <what> field 'stall_threshold' (did you mean 'stall_threshold_ms'?)
 * where <what> names the table ("request", "config", "history request"...).
 */
typedef struct lx_opts {
	lua_State *L;
	int t;            /* absolute stack index of the table; 0: absent (every field nil) */
	const char *what; /* names the table in messages */
} lx_opts;

/* Times as integers must lie in years 0..9999 (what durox.format_time can show). */
#define LX_TIME_MIN (-62167219200000LL)
#define LX_TIME_MAX 253402300799999LL
/* The largest page, batch or list limit any request takes. */
#define LX_MAX_PAGE 1000000

/* The reader of the table argument at idx (see above); raises on a non-table or an unknown key. */
lx_opts lx_opts_at(lua_State *L, int idx, const char *what, const char *const *known, const char *const *extra);
/* Raises "unknown <what> field 'k'" (with a suggestion) unless every key of the table at t is in
 * known or extra (NULL-terminated lists; extra may be NULL). */
void lx_check_keys(lua_State *L, int t, const char *what, const char *const *known, const char *const *extra);
/* The entry of known or extra closest to k (case, a missing suffix, up to two edits), or NULL. */
const char *lx_suggest(const char *k, const char *const *known, const char *const *extra);
/* Raises "<what> field '<k>' " followed by the formatted text (lua_pushfstring formats). */
void lx_opt_error(const lx_opts *o, const char *k, const char *fmt, ...);
/* Whether field k is set (not nil). */
int lx_opt_has(const lx_opts *o, const char *k);

lua_Integer lx_opt_integer(const lx_opts *o, const char *k, lua_Integer def, lua_Integer lo, lua_Integer hi);
double lx_opt_number(const lx_opts *o, const char *k, double def, double lo, double hi);
int lx_opt_boolean(const lx_opts *o, const char *k, int def);
/* A string without NUL bytes, or NULL when absent; it stays valid while the table lives. */
const char *lx_opt_text(const lx_opts *o, const char *k);
/* A function: pushes it and returns its stack index (it must stay there), or 0 when absent. */
int lx_opt_function(const lx_opts *o, const char *k);
/* A name from a fixed list: parse returns its value or -1; expected lists the names for the
 * message ("asc or desc"). */
int lx_opt_enum(const lx_opts *o, const char *k, int def, int (*parse)(const char *), const char *expected);
/* A name or a list of names (each parsed as by lx_opt_enum, none twice) into out (at most
 * max); returns how many. */
int lx_opt_enum_list(const lx_opts *o, const char *k, int (*parse)(const char *), const char *expected, int *out,
                     int max);
/* A string or a list of strings (at most max) into out; the strings stay valid while the
 * table lives. Returns how many. */
int lx_opt_text_list(const lx_opts *o, const char *k, const char **out, int max);
/* A time: integer ms (LX_TIME_MIN..LX_TIME_MAX) or a time string (ISO-8601, relative like
 * "-1h", "now"); DUROX_NO_TIME when absent. */
int64_t lx_opt_time(const lx_opts *o, const char *k);
/* A duration in ms: an integer or a string like "5m", in lo..hi; def when absent. */
int64_t lx_opt_duration(const lx_opts *o, const char *k, int64_t def, int64_t lo, int64_t hi);
/* The same for the positional argument idx; raises "bad argument #idx to 'f' (<what> ...)". */
int64_t lx_check_duration(lua_State *L, int idx, const char *what, int64_t def, int64_t lo, int64_t hi);

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
	int fn_idx;         /* absolute stack index of the function */
	int errored;        /* the function raised: its error value is at the top of L's stack */
	uint32_t budget_ms; /* the handle's callback_budget_ms (0: none) */
} lx_pred;
int lx_predicate(void *ud, const durox_instance_summary *s);

/* lua_pcall of a callback (no message handler) that raises "<what> ran longer than its time
 * budget of N ms (callback_budget_ms)" once budget_ms has passed; 0: no limit (budget.c). */
int lx_pcall(lua_State *L, int nargs, int nresults, uint32_t budget_ms, const char *what);
/* The callback budget of dx (its callback_budget_ms). */
uint32_t lx_budget(durox *dx);

/* JSON encoding of a Lua value (sorted object keys, exact integers). Pushes the string
 * or raises on a value JSON cannot hold. pretty: indent with two spaces. */
void lx_encode_json(lua_State *L, int idx, int pretty);

/* Pushes a box owning a filter built from the filter table at idx (nil: none) and returns
 * the filter; *pred_idx is set as by lx_check_filter (binding_list.c). */
durox_filter *lx_filter_arg(lua_State *L, int idx, int *pred_idx);

/* The method groups: each adds its methods to the method table at the top of the stack. */
void lx_open_store(lua_State *L);    /* close, info, config (binding_store.c) */
void lx_open_list(lua_State *L);     /* listing, search, instances(); registers durox.Iterator */
void lx_open_instance(lua_State *L); /* status, descriptor, executions, details (binding_instance.c) */
void lx_open_history(lua_State *L);  /* history reads (binding_history.c) */
void lx_open_metrics(lua_State *L);  /* metrics, analytics and stuck work (binding_metrics.c) */
/* Pushes a RuntimeMetrics table (binding_metrics.c; also the items of metric streams). */
void lx_push_runtime_metrics(lua_State *L, const durox_runtime_metrics *m);
/* Sets __gc, __close, __tostring and __name of the Store metatable at the top (binding_store.c). */
void lx_store_metamethods(lua_State *L);
/* Adds durox.open to the module table at the top (binding_store.c). */
void lx_open_store_module(lua_State *L);

/* Runs the ManagementConfig file at path in the policy sandbox (src/policy/config.c: a text
 * chunk with an empty environment, 16 MB and one million instructions) and pushes a table of
 * its plain values (returns 1), or pushes a one-line message (returns 0). Never raises for the
 * file's faults. */
int lx_read_config_file(lua_State *L, const char *path);
/* Adds the write, bulk and job methods (binding_ops.c) to the method table at the top. */
void lx_open_ops(lua_State *L);
/* Adds the visibility index methods (binding_index.c) to the method table at the top. */
void lx_open_index(lua_State *L);
/* Adds the real-time methods (binding_stream.c: read_changes, streams, watches) to the
 * method table at the top. */
void lx_open_stream(lua_State *L);
/* Adds durox.http, durox.webhook, durox.hmac_sha256 and durox.http_server (binding_net.c) to
 * the module table at the top. */
void lx_open_net(lua_State *L);
/* Pushes the JSON body a webhook posts for the list of items at idx
 * ({"count","idempotency_key","items"}, keys sorted) and its Idempotency-Key (2 values). */
void lx_push_batch_body(lua_State *L, int idx);
/* Adds durox.sleep and durox.isatty to the module table at the top. */
void lx_open_ops_module(lua_State *L);

/* Embedded pure-Lua modules (generated at build time). */
void lx_preload_embedded(lua_State *L);

/* Opens the durox module table (pushes it). The entry point of both the loadable module
 * and duroxlua. */
int durox_luaopen(lua_State *L);

#endif
