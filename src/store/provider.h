/*
 * provider.h - the contract between the engine and store providers.
 *
 * A provider knows one store's SQL, schema versions and time formats and nothing about
 * management semantics or Lua. The engine (src/engine) calls providers only through the
 * vtable below and hands them filters as the expression tree defined here, which each
 * provider compiles to its own SQL with bound parameters. Implemented by sqlite*.c and postgres*.c;
 * registry.c picks a provider by URL scheme.
 *
 * Rows are delivered through callbacks with transient pointers (valid only during the
 * callback); callbacks must not call back into the provider. A provider never keeps a
 * read transaction open after a call returns.
 */
#ifndef DUROX_STORE_PROVIDER_H
#define DUROX_STORE_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "durox.h"
#include "util/arena.h"

/* ---- the filter tree (the public durox_filter / durox_expr) ---------------------- */

/* EXPR_IDSET (engine-internal, never parsed): instance_id is one of a set of ids of any size,
 * held as one JSON array text in vals[0].text (access control's exclusion of hidden rows). */
typedef enum expr_kind { EXPR_AND, EXPR_OR, EXPR_NOT, EXPR_CMP, EXPR_IN, EXPR_BETWEEN, EXPR_IDSET } expr_kind;

struct durox_expr {
	expr_kind kind;
	int field;         /* durox_field, for CMP/IN/BETWEEN */
	int op;            /* durox_op, for CMP */
	durox_value *vals; /* CMP: 1 (none for IS_NULL/NOT_NULL), IN: n, BETWEEN: 2 */
	size_t nvals;
	durox_expr *a, *b; /* AND/OR: both, NOT: a */
};

struct durox_filter {
	arena mem;
	durox_expr *root; /* NULL: matches everything */
	char err[256];
	char *desc; /* malloc'd canonical description, cached */
};

/* Field value types, for validation and SQL generation. */
typedef enum field_type { FT_TEXT, FT_INT, FT_TIME } field_type;
field_type durox_field_type(int field);

/* ---- queries ---------------------------------------------------------------------- */

/* A keyset position: rows strictly after (key, instance_id) in the requested order. */
typedef struct store_keyset {
	int active;
	int key_is_text;
	const char *key_text;
	int64_t key_int;
	const char *instance_id;
} store_keyset;

typedef struct store_list_query {
	const durox_filter *filter; /* may be NULL */
	int order_by;               /* durox_order_by */
	int descending;
	store_keyset after;
	uint32_t limit; /* 0: no limit */
} store_list_query;

/* Summary row callback: return 0 to continue, 1 to stop early (not an error), <0 to abort. */
typedef int (*store_summary_cb)(void *ud, const durox_instance_summary *s);

typedef struct store_exec_row {
	uint64_t execution_id;
	const char *status; /* as stored */
	const char *output;
	int64_t started_at;   /* DUROX_NO_TIME when NULL */
	int64_t completed_at; /* DUROX_NO_TIME when NULL */
	uint64_t event_count;
} store_exec_row;

typedef int (*store_exec_cb)(void *ud, const store_exec_row *r);

typedef struct store_history_query {
	const char *instance_id;
	uint64_t execution_id;               /* must be resolved (> 0) */
	uint64_t from_event_id, to_event_id; /* inclusive, 0: unbounded */
	const char *const *types;
	size_t ntypes;
	int64_t from_time, to_time; /* on timestamp_ms, DUROX_NO_TIME: unbounded */
	uint32_t limit;             /* 0: no limit */
	int include_payloads;       /* 0: the provider strips payload members */
} store_history_query;

typedef struct store_event_row {
	uint64_t execution_id;
	uint64_t event_id;
	const char *event_type; /* as stored (PostgreSQL stores 'Event'; use the JSON type) */
	const char *data;       /* event JSON */
	size_t data_len;
	int64_t created_at; /* store time, DUROX_NO_TIME when NULL */
} store_event_row;

typedef int (*store_event_cb)(void *ud, const store_event_row *r);

/* ---- the provider ---------------------------------------------------------------- */

typedef struct store store;

typedef struct store_vtable {
	/* Closes the connection and frees the provider. */
	void (*close)(store *st);
	/* Summaries matching q in q's order. */
	int (*list)(store *st, const store_list_query *q, store_summary_cb cb, void *ud);
	/* Number of instances matching f (NULL: all). */
	int (*count)(store *st, const durox_filter *f, int64_t *out);
	/* Summaries of the given ids that exist (any order). */
	int (*summaries_by_id)(store *st, const char *const *ids, size_t n, store_summary_cb cb, void *ud);
	/* Execution rows of an instance, ascending, with their event counts. */
	int (*executions)(store *st, const char *instance_id, store_exec_cb cb, void *ud);
	/* History events of one execution, ascending by event_id. */
	int (*history)(store *st, const store_history_query *q, store_event_cb cb, void *ud);
	/* Sets *exists to whether the instance row exists and *current to its current execution id. */
	int (*instance_exists)(store *st, const char *instance_id, int *exists, uint64_t *current);
	/* MAX(execution_id) of the instance's executions, or 0 when it has none. */
	int (*latest_execution)(store *st, const char *instance_id, uint64_t *out);
	/* Asks the statement running on st (from any thread, or a signal handler: this must be
	 * async-signal-safe) to stop; it then fails with DUROX_EABORT. Does nothing when none runs.
	 * NULL when the provider cannot. */
	void (*interrupt)(store *st);
} store_vtable;

typedef struct store_metrics_vtable store_metrics_vtable; /* provider_metrics.h */
struct store_ops_vtable;                                  /* writes and the job journal: store/ops.h */
struct store_audit_vtable;                                /* the audit log: store/audit.h */
struct store_index_vtable;                                /* the visibility index: store/provider_index.h */

struct store {
	const store_vtable *vt;
	const store_metrics_vtable *mvt;        /* metrics and analytics; NULL when the provider has none */
	const struct store_ops_vtable *ops;     /* NULL when the provider cannot write */
	const struct store_feed_vtable *fvt;    /* the change feed; NULL when the provider has none */
	const struct store_state_vtable *svt;   /* our streams' durable state; NULL when none */
	const struct store_audit_vtable *audit; /* our audit log (store/audit.h); NULL when the provider keeps none */
	const struct store_index_vtable *ivt;   /* the visibility index; NULL when the provider keeps none */
	durox_store_info info;
	/* What names this store for cursors (the canonical path of a SQLite file; host, database
	 * and schema on PostgreSQL): a cursor issued on one store is refused on another. */
	const char *identity;
	char err[512]; /* message of the last failure */
};

/* Sets st->err from a format and returns rc, so providers can `return store_fail(...)`. */
int store_fail(store *st, int rc, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;

/* A copy of url (any provider's URL, including one no provider takes) with its password
 * masked: user:***@ in the authority and password=*** among the parameters, so that no
 * message, --json output or record ever shows one. The caller frees it; NULL when out of
 * memory. */
char *store_mask_url(const char *url);

/* A provider's open function: location is what the registry hands it (registry.c: the URL
 * after its scheme prefix, or the whole URL). On success *out is the new store; on failure
 * *out is NULL, a one-line message is in err and the result is a DUROX_E* code. */
typedef int (*store_open_fn)(const char *location, const durox_open_options *opts, store **out, char *err,
                             size_t errlen);

/* Opens the store a URL names, with the provider its scheme selects (registry.c). */
int store_open(const char *url, const durox_open_options *opts, store **out, char *err, size_t errlen);

/* The providers' open functions (registered in registry.c). */
int store_sqlite_open(const char *location, const durox_open_options *opts, store **out, char *err, size_t errlen);
int store_postgres_open(const char *location, const durox_open_options *opts, store **out, char *err, size_t errlen);

/* Payload members stripped when include_payloads is 0. */
extern const char *const store_payload_members[];

#endif
