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
} sqlgen;

/* Filters run over `instances i` joined with its current execution `e`. */
#define CURRENT_EXEC "h.instance_id=i.instance_id AND h.execution_id=i.current_execution_id"

/* Appends '?' and records v as its value. */
void sq_bind_push(sqlgen *g, const durox_value *v);
/* The SQL expression of a field over `instances i` and current execution `e`. */
const char *sq_field_sql(sqlite_store *s, int field);
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

#endif
