/*
 * sqlite_internal.h - what the files of the SQLite provider share: the connection struct
 * with its statement cache, error mapping, column readers, the filter-to-SQL compiler and
 * the summary query. Private to src/store/sqlite*.c.
 */
#ifndef DUROX_STORE_SQLITE_INTERNAL_H
#define DUROX_STORE_SQLITE_INTERNAL_H

#include <sqlite3.h>

#include "store/provider.h"
#include "util/buf.h"

#define CACHE_SIZE 48

typedef struct cached_stmt {
	char *sql;
	sqlite3_stmt *stmt;
	uint64_t used; /* LRU clock */
} cached_stmt;

typedef struct sqlite_store {
	store base;
	sqlite3 *db;
	char *location;
	char *identity; /* realpath of location (store.identity) */
	char *schema_version;
	/* the file was deleted or replaced (sq_check_file, which a statement outside a
	 * transaction calls first): every call fails with DUROX_EGONE until the change feed
	 * reopens the new file (sq_reopen) */
	int gone;
	int busy_timeout_ms;
	/* the busy handler (sq_busy): when the current wait for a lock began, the interrupt count
	 * it began at (sq_interrupt counts, from a signal handler too), and whether it ended
	 * because of an interrupt (sq_fail then says so instead of "busy") */
	int64_t busy_since_ms;
	unsigned busy_seen;
	int busy_interrupted;
	_Atomic unsigned interrupts;
	cached_stmt cache[CACHE_SIZE];
	uint64_t clock;
	int last_rc; /* durox code of the last sq_fail, for callers of sq_stmt */
	/* statement timing and diagnostics (sqlite_metrics.c) */
	struct sq_timing {
		const void *stmt;
		int64_t t0_ns;
	} timing[8];
	uint64_t reads, writes;
	double read_ms, write_ms, max_read_ms, max_write_ms;
	char journal_mode[16];
	struct hist_inc *hist;   /* the persistent history digest (sqlite_metrics.c) */
	struct inst_cache *inst; /* the last instance digest and the data version it was read at */
	struct queue_cache *qc;  /* the queue rows the last queue snapshot read (sqlite_queues.c) */
	int in_write_txn;        /* a BEGIN IMMEDIATE/EXCLUSIVE is open (for the write/read split) */
	/* write pacing (sqlite_ops.c): when our last write transaction began and ended (us), and
	 * how many times as long as it held the lock the next one waits */
	int64_t w_begin_us, w_end_us;
	double w_gap_factor;
	/* the file the connection has open (0, 0 for :memory:), to notice when it is deleted or
	 * replaced (sq_check_file; the change feed, sqlite_feed.c, reopens a replaced one); how
	 * often it was reopened; deletes this connection made (purge, prune) */
	int memory;
	uint64_t file_dev, file_ino;
	uint64_t reopens;
	uint64_t own_deletes;
	char *state_buf; /* the strings of the last run_get (sqlite_state.c) */
	/* the visibility index (sqlite_index.c): how it was asked for, and its state */
	int index_mode;   /* DUROX_INDEX_AUTO / DUROX_INDEX_OFF */
	char *index_path; /* index = PATH, else NULL (the default path) */
	struct sq_index *ix;
} sqlite_store;

/* Maps a SQLite result code to a durox code, sets the message ("<what> failed: ...") and
 * returns the code. */
int sq_fail(sqlite_store *s, int src, const char *what);
/* DUROX_OK while the store's path still names the file opened, else DUROX_EGONE (message set;
 * the handle stays gone). Costs one stat(2). */
int sq_check_file(sqlite_store *s);
/* The durox code for a NULL from sq_stmt. */
int sq_stmt_err(sqlite_store *s);
/* A cached prepared statement for sql, reset and unbound; NULL on error (message set). The
 * caller must call sq_done on it before returning, on every path. */
sqlite3_stmt *sq_stmt(sqlite_store *s, const char *sql);
/* Resets st (ending its read transaction) and clears its bindings. */
void sq_done(sqlite3_stmt *st);
/* Column i as ms, DUROX_NO_TIME when NULL (the column must hold durox_ms(...) output). */
int64_t sq_col_time(sqlite3_stmt *st, int i);
const char *sq_col_text(sqlite3_stmt *st, int i);

/* Registers durox_ms, durox_event_ts and durox_failure_kind on a connection (sqlite.c): the
 * store's and the visibility index's, so that both compute every field with the same code. */
void sq_register_functions(sqlite3 *db);

/* The timestamp of an instance's first start: the OrchestrationStarted of its first stored
 * execution (the primary key index serves the ORDER BY); X is the instances alias. */
#define FIRST_START(X)                                                                                                 \
	"(SELECT durox_event_ts(f.event_data, f.created_at) FROM history f WHERE f.instance_id=" X ".instance_id"      \
	" AND f.event_type='OrchestrationStarted' ORDER BY f.execution_id, f.event_id LIMIT 1)"

/* An instance's duration (docs/metrics.md): terminal event of the current execution minus
 * its first start, for Completed and Failed instances (over `instances i` and `executions e`). */
#define DURATION_SQL                                                                                                   \
	"CASE WHEN e.status IN ('Completed','Failed') THEN (SELECT durox_event_ts(t.event_data, t.created_at)"         \
	" FROM history t WHERE t.instance_id=i.instance_id AND t.execution_id=i.current_execution_id AND"              \
	" t.event_type IN ('OrchestrationCompleted','OrchestrationFailed') ORDER BY t.event_id DESC LIMIT 1) "         \
	"- " FIRST_START("i") " END"

/* ---- filter compilation (sqlite_filter.c) ---- */

typedef struct binds {
	durox_value v[512];
	size_t n;
	int overflow;
} binds;

typedef struct sqlgen {
	sqlite_store *s;
	buf sql;
	binds *b;
	int over_index; /* nonzero: fields are columns of the visibility index's `dx_inst x` (sqlite_index.c) */
} sqlgen;

/* Filters run over `instances i` joined with its current execution `e`. */
#define CURRENT_EXEC "h.instance_id=i.instance_id AND h.execution_id=i.current_execution_id"

/* updated_at (durox.h) is the latest of these three times of the instance and execution rows
 * and the store time of the current execution's last event: the row parts, which the
 * visibility index's build completes with the event it reads (sqlite_index.c). */
#define UPDATED_AT_ROW_PARTS                                                                                           \
	"COALESCE(durox_ms(i.updated_at),0),COALESCE(durox_ms(e.started_at),0),COALESCE(durox_ms(e.completed_at),0)"

/* Appends '?' and records v as its value. */
void sq_bind_push(sqlgen *g, const durox_value *v);
/* The SQL expression of a field over `instances i` and current execution `e`. */
const char *sq_field_sql(sqlite_store *s, int field);
/* The same field as a column of the visibility index's `dx_inst x` (sqlite_index_read.c). */
const char *sqi_field_sql(int field);
/* Appends the WHERE condition of f ("1" when empty). */
void sq_gen_where(sqlgen *g, const durox_filter *f);
/* " FROM instances i [LEFT] JOIN executions e ..." for filter f (inner join when f needs e). */
const char *sq_from_current(const durox_filter *f);
/* Binds every recorded value from parameter index first on. */
int sq_bind_all(sqlite_store *s, sqlite3_stmt *st, const binds *b, int first);

/* ---- summaries (sqlite_read.c) ---- */

/* Appends "SELECT <summary columns>" (see sq_read_summary for their order). */
void sq_add_summary_columns(sqlite_store *s, buf *b);
/* Reads the summary columns of the current row (pointers valid until the next step). */
void sq_read_summary(sqlite3_stmt *st, durox_instance_summary *s);
/* Steps st, handing each summary to cb; resets st. */
int sq_run_summaries(sqlite_store *s, sqlite3_stmt *st, store_summary_cb cb, void *ud);

/* ---- the read queries behind the vtable (sqlite_read.c) ---- */

int sq_list(store *base, const store_list_query *q, store_summary_cb cb, void *ud);
int sq_count(store *base, const durox_filter *f, int64_t *out);
int sq_summaries_by_id(store *base, const char *const *ids, size_t n, store_summary_cb cb, void *ud);
int sq_executions(store *base, const char *instance_id, store_exec_cb cb, void *ud);
int sq_history(store *base, const store_history_query *q, store_event_cb cb, void *ud);
int sq_instance_exists(store *base, const char *instance_id, int *exists, uint64_t *current);
int sq_latest_execution(store *base, const char *instance_id, uint64_t *out);

/* ---- metrics and analytics (sqlite_metrics.c, sqlite_analytics.c) ---- */

typedef struct hist_inc hist_inc;

/* The counted-type lookup table by name length, and the counted type (store_event_type,
 * provider_metrics.h) of an event_type value, or -1 (sqlite_history_digest.c). */
void sq_types_by_length(signed char by_len[40][4]);
int sq_event_type(signed char by_len[40][4], const char *type, size_t len);

/* What the history digests read from one event's JSON (sq_event_facts_read). The cold digest
 * (sqlite_history_digest.c) and the visibility index (sqlite_index_build.c) read events with
 * this one function, so both count exactly the same things. */
typedef struct sq_event_facts {
	int type;         /* store_event_type */
	int failure_kind; /* OrchestrationFailed: the kind of its details, 0 when unreadable */
	int has_ts;       /* timestamp_ms was found (nothing below is read without it) */
	int64_t ts;
	int has_src; /* ActivityCompleted/Failed: source_event_id */
	int64_t src;
	int has_name;               /* OrchestrationStarted: the started execution's name and version */
	const char *name, *version; /* not NUL-terminated; version NULL for JSON null */
	size_t nlen, vlen;
} sq_event_facts;

/* Reads the facts of an event of counted type t (data: its JSON, ilen: the length of its
 * instance id, which tells where timestamp_ms can start). Strings point into data, or into a
 * when the event had to be parsed. */
void sq_event_facts_read(int t, const char *data, size_t dlen, size_t ilen, arena *a, sq_event_facts *f);

/* Registers the metrics SQL functions and the statement timer on a new connection. */
void sq_metrics_attach(sqlite_store *s);
/* Frees what sq_metrics_attach and the metrics reads keep on the connection. */
void sq_metrics_detach(sqlite_store *s);
/* The provider's metrics vtable (provider_metrics.h). */
extern const struct store_metrics_vtable sq_metrics_vtable;
/* ---- writes and the job journal (sqlite_ops.c, sqlite_jobs.c) ---- */

extern const struct store_ops_vtable sq_ops_vtable;
/* The audit log (sqlite_audit.c, store/audit.h). */
extern const struct store_audit_vtable sq_audit_vtable;

/* ---- the change feed (sqlite_feed.c) and reopening (sqlite.c) ---- */

extern const struct store_feed_vtable sq_feed_vtable;
extern const struct store_state_vtable sq_state_vtable;
/* Sets the (device, inode) of the file at s->location now; -1 (and zeros) when it cannot be
 * read or the store is in memory. */
int sq_file_identity(sqlite_store *s, uint64_t *dev, uint64_t *ino);
/* Closes the connection and opens s->location again (the file was replaced): the statement
 * cache and the metrics state start afresh. On failure s->db is NULL, every later call
 * fails, and the message is set. */
int sq_reopen(sqlite_store *s);

/* ---- the visibility index (sqlite_index.c, sqlite_index_read.c) ---- */

extern const struct store_index_vtable sq_index_vtable;
/* Whether reads should go to the index now: opens it, builds it when it was never built
 * (reporting progress), syncs it. 0 means "read the store" (never an error: an index that
 * fails is set aside, and the store answers). */
int sqi_usable(sqlite_store *s);
/* A cached statement on the index connection (sq_stmt's contract), and its failures. */
sqlite3_stmt *sqi_stmt(sqlite_store *s, const char *sql);
int sqi_fail(sqlite_store *s, int src, const char *what);
/* For a usable index: a value that changes whenever instances may have left the index since
 * it last had the same value (removed by this handle, or the file written by another one). */
int sqi_existence_gen(sqlite_store *s, int64_t gen[2]);
/* For a usable index: exists[i] = whether the index, or else the store, has instance ids[i]
 * (lens[i] bytes), for i < n, in one read snapshot. */
int sqi_instances_exist(sqlite_store *s, size_t n, const char *const *ids, const size_t *lens, unsigned char *exists);
/* Frees the index state (close). */
void sqi_close(sqlite_store *s);

#endif
