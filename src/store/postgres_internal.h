/*
 * postgres_internal.h - what the files of the PostgreSQL provider share: the connection
 * (libpq, one per handle, plus an optional read-only one for a hot standby), the per
 * connection prepared-statement cache, query parameters, the single-row-mode query runner,
 * error mapping, and the SQL fragments that express Duroxide's stored formats in PostgreSQL.
 * Private to src/store/postgres*.c.
 */
#ifndef DUROX_STORE_POSTGRES_INTERNAL_H
#define DUROX_STORE_POSTGRES_INTERNAL_H

#include <libpq-fe.h>

#include "store/provider.h"
#include "util/buf.h"

#define PG_CACHE_SIZE 64
#define PG_NAME_MAX 63 /* PostgreSQL's identifier length */

/* One prepared statement of a connection. */
typedef struct pg_stmt {
	char *sql;
	char name[16];
	int nparams;
	uint64_t used; /* LRU clock */
} pg_stmt;

/* One libpq connection with its statement cache. */
typedef struct pg_conn {
	PGconn *c;
	PGcancel *cancel; /* for pg_interrupt (PQcancel is async-signal-safe); NULL when closed */
	char *uri;        /* what libpq gets (may hold a password: never shown) */
	char *display;    /* the URL with any password masked */
	pg_stmt cache[PG_CACHE_SIZE];
	uint64_t clock;
	unsigned next_id;
	int setup_done; /* session settings applied since the last (re)connect */
	int plan_fixed; /* the session's plan_cache_mode is not "auto" (the server's or the URI's choice) */
	int generic;    /* plan_cache_mode is force_generic_plan now (PQ_GENERIC) */
} pg_conn;

typedef struct pg_store {
	store base;
	pg_conn primary;
	pg_conn *reader;                    /* read_url's connection, or NULL: reads go to primary */
	char schema[PG_NAME_MAX + 1];       /* the runtime's schema */
	char state_schema[PG_NAME_MAX + 1]; /* ours (job journal, ...) */
	char *display;                      /* masked URL (info.location) */
	char *schema_version;
	int connect_timeout_s;
	int statement_timeout_ms;
	int lock_timeout_ms; /* durox_open_options.busy_timeout_ms, else 5000 */
	int readonly;
	int byte_order; /* the database's collation is C/POSIX: text already compares byte-wise */
	int in_txn;
	int last_rc;
	int reconnects; /* how many times a dropped connection was re-established */
	/* the store's identity, taken at the first session setup: a reconnect that finds another
	 * database or schema under the same names (dropped and created again) makes the handle
	 * gone, as a replaced SQLite file does */
	char db_oid[16], schema_oid[16];
	int gone;
	/* capabilities beyond durox_store_info */
	int has_kv_delta;
	int has_enqueue;   /* enqueue_orchestrator_work(text, text, timestamptz, text, text, bigint) */
	int has_delete;    /* delete_instances_atomic(text[], boolean) */
	int has_prune;     /* prune_executions(text, integer, bigint) */
	int journal_known; /* journal existence checked ... */
	int journal_ok;    /* ... and found */
	/* writes sent in pipeline mode inside a write transaction, their results read at the next
	 * statement or the commit (pq_defer) */
	int npipe;
	struct pq_pending {
		char what[48];
		char check[112]; /* the message when the command must change exactly one row, else "" */
	} pipe[256];
	/* the queued work items of the instance the last instance_state read (postgres_ops.c),
	 * valid until the next write */
	char *qc_id;
	char **qc_items;
	size_t qc_n;
	/* statement timing (provider diagnostics) */
	uint64_t reads, writes;
	double read_ms, write_ms, max_read_ms, max_write_ms;
	struct pg_hist *hist;   /* the history digest kept between calls (postgres_metrics.c) */
	struct pg_qmemo *qmemo; /* the queue rows kept between snapshots (postgres_metrics.c) */
	struct pg_index *ix;    /* the visibility index (postgres_index.c); never NULL once open */
	char *identity;         /* store.identity: "<system identifier>/<database>/<schema>" */
	char *state_buf;        /* the strings of the last rule run read (postgres_state.c) */
	uint64_t own_deletes;   /* purges and prunes of this handle (the change feed looks for deletions) */
} pg_store;

/* ---- parameters -------------------------------------------------------------------- */

/* Parameter values, all sent as text ($1..$n). Numbers are formatted into owned storage;
 * text values are borrowed and must outlive the query. */
typedef struct pqp {
	int n, cap;
	const char **v;
	char (*num)[32];
	int oom;
} pqp;

void pqp_init(pqp *p);
void pqp_free(pqp *p);
void pqp_text(pqp *p, const char *v); /* NULL binds SQL NULL */
void pqp_int(pqp *p, int64_t v);
/* ms since the epoch as a UTC timestamptz literal ("YYYY-MM-DD HH:MM:SS.mmm+00"; years 1000-9999),
 * for a parameter the statement casts to timestamptz ($n::timestamptz: the parameter is then of
 * that type, read once, not an expression evaluated per row). */
void pqp_time_ms(pqp *p, int64_t ms);
void pqp_null(pqp *p);
void pqp_double(pqp *p, double v);

/* ---- queries ------------------------------------------------------------------------- */

/* Row callback: r is a single-row result (row 0). Return 0 to go on, 1 to stop (the rest of
 * the rows are read and dropped), <0 to fail with that code. */
typedef int (*pq_row_cb)(void *ud, const PGresult *r);

/* Query flags. */
enum {
	PQ_WRITE = 1,   /* a write (timed as one; must run on the primary) */
	PQ_PRIMARY = 2, /* a read that must see the primary (our own state, schema checks) */
	/* a statement whose best plan does not depend on its parameters' values (a listing or
	 * count over the runtime's tables, which have no index on what a filter compares): run
	 * with plan_cache_mode force_generic_plan, so it is planned once per connection whatever
	 * the planner's estimates say (under "auto" PostgreSQL sometimes re-planned the filtered
	 * listing at every call: 2.2 ms of a 7.7 ms page at 10,000 instances). Without it,
	 * statements run under the session's
	 * own mode ("auto" by default), whose custom plans the visibility index's statements need
	 * (a count of a rare status is an index scan only when the planner sees the value).
	 * Outside a transaction only (a SET inside one is undone by a rollback); a mode the
	 * server or the URI's options set other than "auto" is left alone. */
	PQ_GENERIC = 4
};

/* Runs sql (prepared once per connection, from the cache) with p (may be NULL), streaming
 * the rows to cb (may be NULL) in single-row mode, so memory stays constant whatever the
 * result size. *affected (may be NULL) gets the row count of a command. what names the
 * operation in a failure message ("<what> failed: ..."). Returns a durox code, the
 * message in st->err. A connection found dropped before any row was delivered and outside
 * a transaction is re-established and the statement retried once. */
int pq_query(pg_store *s, int flags, const char *sql, const pqp *p, pq_row_cb cb, void *ud, uint64_t *affected,
             const char *what);

/* A write inside a write transaction whose rows are not needed, sent at once in libpq's
 * pipeline mode; its result (and, when check is not NULL, that it changed exactly one row,
 * else the failure check names) is read with the next statement or the commit, which then
 * fail with its error. Outside a transaction it runs as pq_query. Returns a durox code. */
int pq_defer(pg_store *s, const char *sql, const pqp *p, const char *what, const char *check);

/* Reads the results of the deferred writes; a durox code (the first failure). */
int pq_flush(pg_store *s);

/* Forgets the cached queued items (postgres_ops.c); called on every write. */
void pq_cache_clear(pg_store *s);

/* One-row, one-column integer query; *isnull (may be NULL) is set when the value is NULL or
 * there is no row. */
int pq_one_int(pg_store *s, int flags, const char *sql, const pqp *p, int64_t *out, int *isnull, const char *what);

/* A statement without parameters and results, outside the cache (BEGIN, COMMIT, DDL). */
int pq_exec_simple(pg_store *s, const char *sql, const char *what);

/* Column readers of a single-row result. */
const char *pq_text(const PGresult *r, int col); /* NULL for SQL NULL */
int64_t pq_int(const PGresult *r, int col);      /* 0 for NULL */
int64_t pq_time(const PGresult *r, int col);     /* DUROX_NO_TIME for NULL */
int pq_bool(const PGresult *r, int col);         /* 't' -> 1 */
double pq_double(const PGresult *r, int col);
int pq_isnull(const PGresult *r, int col);

/* Builds SQL that names a schema: every "@S." in tmpl becomes our quoted state schema and a
 * dot ("durox".), every "@R." the runtime's ("dx".). Returns a malloc'd string, or NULL when
 * out of memory. */
char *pq_ours(pg_store *s, const char *tmpl);

/* Status text -> durox_status (Unknown for NULL or unrecognised). */
int pq_status_of(const char *t);

/* ---- SQL fragments for Duroxide's formats ------------------------------------------ */

/* ms since the epoch of a timestamptz expression (NULL stays NULL), truncated as Duroxide's
 * own conversion does. In double precision (date_part), 4x faster than extract()'s numeric:
 * the double's error (under 0.0003 ms at today's epoch) is absorbed by the 0.0005 added, and
 * a stored time holds whole microseconds at most, so the floor is exact. */
#define PG_MS(x) "floor(date_part('epoch'," x ")*1000+0.0005)::int8"

/* An event's own timestamp_ms, else the row's created_at. Duroxide writes the common
 * fields first and escapes every quote inside strings, so the first "timestamp_ms" member
 * is the top-level one. */
#define PG_EVENT_TS(h)                                                                                                 \
	"COALESCE(substring(" h ".event_data from '\"timestamp_ms\": ?([0-9]{1,18})')::int8," PG_MS(h ".created_at") ")"

/* The JSON "type" of an event (PostgreSQL stores event_type = 'Event'). */
#define PG_EVENT_TYPE(h) "COALESCE(substring(" h ".event_data from '\"type\": ?\"([A-Za-z]+)\"')," h ".event_type)"

/* Filters run over `instances i` joined with its current execution `e`. */
#define PG_CURRENT_EXEC "h.instance_id=i.instance_id AND h.execution_id=i.current_execution_id"

/* ---- filter compilation (postgres_filter.c) ---- */

typedef struct pgsqlgen {
	pg_store *s;
	buf sql;
	pqp *p;
	int overflow;
	int over_index; /* fields are columns of the visibility index's table `x` (postgres_index.h) */
} pgsqlgen;

/* Appends "$n" and records v as its value. */
void pg_bind_push(pgsqlgen *g, const durox_value *v);
/* The SQL expression of a field over `instances i` and current execution `e`. */
const char *pg_field_sql(pg_store *s, int field);
/* Appends the WHERE condition of f ("TRUE" when empty). */
void pg_gen_where(pgsqlgen *g, const durox_filter *f);
/* " FROM instances i [LEFT] JOIN executions e ..." for filter f. */
const char *pg_from_current(const durox_filter *f);
/* The failure kind ('cancelled', ...) of a Failed current execution, as SQL over i and e. */
extern const char pg_failure_kind_sql[];

/* An instance's duration (docs/metrics.md) as SQL over i and e: NULL unless Completed or Failed
 * (postgres_analytics.c; the visibility index keeps it per instance). */
extern const char pg_duration_sql[];

/* ---- reads (postgres_read.c) ---- */

void pg_add_summary_columns(pg_store *s, buf *b);
void pg_read_summary(const PGresult *r, durox_instance_summary *sum);
int pg_list(store *base, const store_list_query *q, store_summary_cb cb, void *ud);
int pg_count(store *base, const durox_filter *f, int64_t *out);
int pg_summaries_by_id(store *base, const char *const *ids, size_t n, store_summary_cb cb, void *ud);
int pg_executions(store *base, const char *instance_id, store_exec_cb cb, void *ud);
int pg_history(store *base, const store_history_query *q, store_event_cb cb, void *ud);
int pg_instance_exists(store *base, const char *instance_id, int *exists, uint64_t *current);
int pg_latest_execution(store *base, const char *instance_id, uint64_t *out);

/* A text[] literal of ids for one parameter ({"a","b"}); NULL elements become NULL. NULL
 * when out of memory. */
char *pg_text_array(const char *const *ids, size_t n);

/* ---- metrics, analytics, writes ---- */

extern const struct store_metrics_vtable pg_metrics_vtable;
extern const struct store_ops_vtable pg_ops_vtable;
/* The audit log in our schema (postgres_audit.c, store/audit.h). */
extern const struct store_audit_vtable pg_audit_vtable;
extern const struct store_feed_vtable pg_feed_vtable; /* postgres_feed.c */
/* Records the transaction in progress on s (its xid, assigned now if it has none) as one of our
 * own in f's position: call it inside a transaction that writes only duroxlua's tables and
 * saves f's position, so that a later process restoring that position does not take the
 * transaction's end for a change of the store (the feed's gate). DUROX_OK or the query's error. */
struct store_feed;
int pg_feed_own_xact(struct store_feed *f);
extern const struct store_state_vtable pg_state_vtable; /* postgres_state.c */
void pg_metrics_free(pg_store *s);

#endif
