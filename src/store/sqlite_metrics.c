/*
 * sqlite_metrics.c - the SQLite provider's metrics vtable (provider_metrics.h) and what does
 * not belong to one of its parts: the statement timer behind the read/write latencies, the
 * store's facts and sizes (meta, diagnostics) and the registration of the SQL functions.
 * The parts: sqlite_groups.c, sqlite_instance_digest.c, sqlite_history_digest.c,
 * sqlite_queues.c and sqlite_analytics.c. Relies on sqlite_internal.h; used by the engine
 * through sq_metrics_vtable.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "store/format.h"
#include "store/sqlite_metrics_internal.h"

const char *const store_event_type_names[EV__COUNT] = {
        "OrchestrationStarted",
        "OrchestrationCompleted",
        "OrchestrationFailed",
        "OrchestrationContinuedAsNew",
        "OrchestrationCancelRequested",
        "OrchestrationChained",
        "ActivityScheduled",
        "ActivityCompleted",
        "ActivityFailed",
        "ActivityCancelRequested",
        "TimerCreated",
        "TimerFired",
        "ExternalSubscribed",
        "ExternalEvent",
        "ExternalSubscribedCancelled",
        "ExternalSubscribedPersistent",
        "ExternalEventPersistent",
        "ExternalSubscribedPersistentCancelled",
        "SubOrchestrationScheduled",
        "SubOrchestrationCompleted",
        "SubOrchestrationFailed",
        "SubOrchestrationCancelRequested",
        "CustomStatusUpdated",
        "KeyValueSet",
        "KeyValueCleared",
        "KeyValuesCleared",
};

void store_instance_digest_free(store_instance_digest *d)
{
	if (d != NULL) {
		arena_release(&d->mem);
		memset(d, 0, sizeof *d);
	}
}

void store_history_digest_free(store_history_digest *d)
{
	if (d != NULL) {
		arena_release(&d->mem);
		memset(d, 0, sizeof *d);
	}
}

/* ---- statement timing ------------------------------------------------------------ */

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whether a statement is a write. Transaction control belongs to what it controls: BEGIN
 * IMMEDIATE/EXCLUSIVE and the COMMIT/ROLLBACK/END/SAVEPOINT/RELEASE inside such a transaction
 * are writes; a plain BEGIN and its COMMIT (a read snapshot) are reads. PRAGMAs set connection
 * options (foreign_keys at open): reads. Everything else: what sqlite3_stmt_readonly says. */
static int is_write(sqlite_store *s, sqlite3_stmt *st)
{
	const char *sql = sqlite3_sql(st);
	if (sql == NULL)
		return !sqlite3_stmt_readonly(st);
	while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r')
		sql++;
	if (strncasecmp(sql, "PRAGMA", 6) == 0)
		return 0;
	if (strncasecmp(sql, "BEGIN", 5) == 0) {
		const char *p = sql + 5;
		while (*p == ' ')
			p++;
		s->in_write_txn = strncasecmp(p, "IMMEDIATE", 9) == 0 || strncasecmp(p, "EXCLUSIVE", 9) == 0;
		return s->in_write_txn;
	}
	static const char *const ends[] = {"COMMIT", "END", "ROLLBACK"};
	for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
		if (strncasecmp(sql, ends[i], strlen(ends[i])) == 0) {
			int w = s->in_write_txn;
			if (strncasecmp(sql, "ROLLBACK TO", 11) != 0)
				s->in_write_txn = 0;
			return w;
		}
	}
	if (strncasecmp(sql, "SAVEPOINT", 9) == 0 || strncasecmp(sql, "RELEASE", 7) == 0)
		return s->in_write_txn;
	return !sqlite3_stmt_readonly(st);
}

/* SQLITE_TRACE_STMT fires when a statement starts running (its first step after a prepare or
 * reset); SQLITE_TRACE_PROFILE when it finishes or is reset. The time between is the call's
 * latency as this handle saw it, measured with the monotonic clock (SQLite's own profile time
 * has only millisecond resolution). It includes the time our code spends on each row between
 * steps, which for our reads is copying the row. */
static int trace_cb(unsigned type, void *ctx, void *p, void *x)
{
	sqlite_store *s = ctx;
	if (type == SQLITE_TRACE_STMT) {
		const char *sql = x;
		if (sql != NULL && sql[0] == '-' && sql[1] == '-')
			return 0; /* a trigger program inside a statement already timed */
		for (int i = 0; i < 8; i++)
			if (s->timing[i].stmt == p)
				return 0;
		for (int i = 0; i < 8; i++) {
			if (s->timing[i].stmt == NULL) {
				s->timing[i].stmt = p;
				s->timing[i].t0_ns = mono_ns();
				return 0;
			}
		}
		return 0; /* more than 8 statements running at once: not measured */
	}
	if (type == SQLITE_TRACE_PROFILE) {
		for (int i = 0; i < 8; i++) {
			if (s->timing[i].stmt != p)
				continue;
			double ms = (double)(mono_ns() - s->timing[i].t0_ns) / 1e6;
			s->timing[i].stmt = NULL;
			if (is_write(s, p)) {
				s->writes++;
				s->write_ms += ms;
				if (ms > s->max_write_ms)
					s->max_write_ms = ms;
			} else {
				s->reads++;
				s->read_ms += ms;
				if (ms > s->max_read_ms)
					s->max_read_ms = ms;
			}
			return 0;
		}
	}
	return 0;
}

/* ---- small helpers -------------------------------------------------------------------- */

int sq_one_int(sqlite_store *s, const char *sql, const char *what, int64_t *out, int *isnull)
{
	*out = 0;
	if (isnull)
		*isnull = 1;
	sqlite3_stmt *st = sq_stmt(s, sql);
	if (st == NULL)
		return sq_stmt_err(s);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*out = sqlite3_column_int64(st, 0);
		if (isnull)
			*isnull = 0;
	}
	sq_done(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? DUROX_OK : sq_fail(s, r, what);
}

static int table_exists(sqlite_store *s, const char *table, int *found)
{
	*found = 0;
	sqlite3_stmt *st = sq_stmt(s, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	*found = r == SQLITE_ROW;
	sq_done(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? DUROX_OK : sq_fail(s, r, "reading the schema");
}

static int sq_meta(store *base, store_meta *out)
{
	sqlite_store *s = (sqlite_store *)base;
	out->created_at = out->last_history_ts = out->newest_lock_at = DUROX_NO_TIME;
	int rc, found, isnull;
	int64_t v;
	if ((rc = table_exists(s, "_sqlx_migrations", &found)) != DUROX_OK)
		return rc;
	if (found) {
		if ((rc = sq_one_int(s, "SELECT min(durox_ms(installed_on)) FROM _sqlx_migrations",
		                     "reading migrations", &v, &isnull)) != DUROX_OK)
			return rc;
		if (!isnull)
			out->created_at = v;
	}
	if (out->created_at == DUROX_NO_TIME) {
		/* a store made without migrations: its oldest instance (a full scan, rarely needed) */
		if ((rc = sq_one_int(s, "SELECT min(durox_ms(created_at)) FROM instances", "reading instances", &v,
		                     &isnull)) != DUROX_OK)
			return rc;
		if (!isnull)
			out->created_at = v;
	}
	/* rowids grow with every insert, so the largest is the latest history row written */
	if ((rc = sq_one_int(s,
	                     "SELECT durox_event_ts(event_data, created_at) FROM history ORDER BY rowid DESC LIMIT 1",
	                     "reading history", &v, &isnull)) != DUROX_OK)
		return rc;
	if (!isnull)
		out->last_history_ts = v;
	if ((rc = sq_one_int(s, "SELECT max(durox_ms(locked_at)) FROM instance_locks", "reading instance locks", &v,
	                     &isnull)) != DUROX_OK)
		return rc;
	if (!isnull)
		out->newest_lock_at = v;
	return DUROX_OK;
}

static int sq_diagnostics(store *base, durox_provider_diagnostics *out)
{
	sqlite_store *s = (sqlite_store *)base;
	out->location = s->location;
	out->schema_version = s->base.info.schema_version;
	out->journal_mode = "";
	out->health_error = "";
	out->wal_size_bytes = -1;
	out->storage_size_bytes = -1;
	int64_t v;
	int rc = sq_one_int(s, "SELECT count(*) FROM sqlite_master", "reading the schema", &v, NULL);
	out->connection_healthy = rc == DUROX_OK;
	if (rc != DUROX_OK)
		return rc;
	static const struct {
		const char *sql, *what;
		size_t off;
	} counts[] = {
	        {"SELECT count(*) FROM instances", "counting instances",
	         offsetof(durox_provider_diagnostics, total_instances_stored)},
	        {"SELECT count(*) FROM executions", "counting executions",
	         offsetof(durox_provider_diagnostics, total_executions_stored)},
	        {"SELECT count(*) FROM history", "counting history",
	         offsetof(durox_provider_diagnostics, total_history_events)},
	        {"SELECT count(*) FROM orchestrator_queue", "counting the orchestrator queue",
	         offsetof(durox_provider_diagnostics, orchestrator_queue_rows)},
	        {"SELECT count(*) FROM worker_queue", "counting the worker queue",
	         offsetof(durox_provider_diagnostics, worker_queue_rows)},
	};
	for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
		if ((rc = sq_one_int(s, counts[k].sql, counts[k].what, &v, NULL)) != DUROX_OK)
			return rc;
		*(uint64_t *)(void *)((char *)out + counts[k].off) = (uint64_t)v;
	}
	if ((rc = sq_one_int(s, "PRAGMA page_size", "reading the page size", &out->page_size, NULL)) != DUROX_OK ||
	    (rc = sq_one_int(s, "PRAGMA page_count", "reading the page count", &out->page_count, NULL)) != DUROX_OK ||
	    (rc = sq_one_int(s, "PRAGMA freelist_count", "reading the free list", &out->freelist_count, NULL)) !=
	            DUROX_OK)
		return rc;
	sqlite3_stmt *st = sq_stmt(s, "PRAGMA journal_mode");
	if (st == NULL)
		return sq_stmt_err(s);
	if (sqlite3_step(st) == SQLITE_ROW && sq_col_text(st, 0) != NULL) {
		strncpy(s->journal_mode, sq_col_text(st, 0), sizeof s->journal_mode - 1);
		s->journal_mode[sizeof s->journal_mode - 1] = '\0';
	}
	sq_done(st);
	out->journal_mode = s->journal_mode;
	if (strcmp(s->location, ":memory:") != 0) {
		out->storage_size_bytes = out->page_size * out->page_count;
		size_t n = strlen(s->location);
		char *wal = malloc(n + 5);
		if (wal != NULL) {
			memcpy(wal, s->location, n);
			memcpy(wal + n, "-wal", 5);
			struct stat sb;
			if (stat(wal, &sb) == 0) {
				out->wal_size_bytes = (int64_t)sb.st_size;
				out->storage_size_bytes += (int64_t)sb.st_size;
			}
			free(wal);
		}
	}
	out->read_calls = s->reads;
	out->write_calls = s->writes;
	out->average_read_latency_ms = s->reads ? s->read_ms / (double)s->reads : NAN;
	out->average_write_latency_ms = s->writes ? s->write_ms / (double)s->writes : NAN;
	out->max_read_latency_ms = s->max_read_ms;
	out->max_write_latency_ms = s->max_write_ms;
	return DUROX_OK;
}

/* ---- registration ------------------------------------------------------------------- */

const store_metrics_vtable sq_metrics_vtable = {
        sq_instance_digest, sq_history_digest,    sq_meta,         sq_diagnostics,     sq_queue_snapshot,
        sq_problem_items,   sq_expired_locks,     sq_idle_running, sq_query_instances, sq_time_series,
        sq_descendants,     sq_count_descendants, sq_ancestors,
};

void sq_metrics_attach(sqlite_store *s)
{
	/* the digest functions take a state pointer (sqlite3_bind_pointer): direct use only */
	sqlite3_create_function(s->db, "durox_igroup", 4, SQLITE_UTF8 | SQLITE_DIRECTONLY, NULL, sq_fn_igroup, NULL,
	                        NULL);
	sqlite3_create_function(s->db, "durox_hdigest", 6, SQLITE_UTF8 | SQLITE_DIRECTONLY, NULL, sq_fn_hdigest, NULL,
	                        NULL);
	sqlite3_trace_v2(s->db, SQLITE_TRACE_STMT | SQLITE_TRACE_PROFILE, trace_cb, s);
}

void sq_metrics_detach(sqlite_store *s)
{
	sq_inst_cache_free(s);
	sq_hist_free(s);
	sq_queue_cache_free(s);
}
