/*
 * postgres_metrics.c - the PostgreSQL provider's metrics reads (provider_metrics.h): the
 * instance digest (grouped by the server), the history digest (history streamed in
 * single-row mode, in (instance, execution, event) order, into the provider-neutral
 * accumulator of digest.c, the same rules as the SQLite provider), the store's facts, sizes
 * from PostgreSQL's own relation sizes and our statement latencies, and the queue snapshot
 * and problem rows in our terms over PG's queue columns (timestamptz visible_at, bigint ms
 * locks, jsonb-formatted work items written by the runtime's acks). Analytics are in
 * postgres_analytics.c. Used through pg_metrics_vtable.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/digest.h"
#include "store/postgres_index.h"
#include "store/postgres_internal.h"
#include "store/provider_metrics.h"

struct pg_qmemo;
static void qm_free(struct pg_qmemo *m);

void pg_metrics_free(pg_store *s)
{
	qm_free(s->qmemo);
	s->qmemo = NULL;
}

/* Work item kinds, for Duroxide's compact text and the jsonb text of the runtime's acks. */
/* (two anchored LIKEs, not the regular expression '^\{ ?"Kind"': the same rows, a quarter of
 * the CPU: 1.3 against 6.2 ms over 2,826 queue rows) */
#define WI_IS(col, kind) "(" col " LIKE '{\"" kind "\"%' OR " col " LIKE '{ \"" kind "\"%')"

/* ---- the instance digest ----------------------------------------------------------------- */

struct inst_ud {
	store_instance_digest *d;
	size_t cap;
	int oom;
};

static int inst_row(void *ud, const PGresult *r)
{
	struct inst_ud *u = ud;
	store_instance_digest *d = u->d;
	if (d->n == u->cap) {
		size_t ncap = u->cap ? u->cap * 2 : 16;
		store_instance_group *ng = arena_calloc(&d->mem, ncap, sizeof *ng);
		if (ng == NULL) {
			u->oom = 1;
			return -1;
		}
		if (d->n)
			memcpy(ng, d->groups, d->n * sizeof *ng);
		d->groups = ng;
		u->cap = ncap;
	}
	store_instance_group *g = &d->groups[d->n];
	g->name = arena_strdup(&d->mem, pq_text(r, 0) ? pq_text(r, 0) : "");
	g->version = pq_text(r, 1) ? arena_strdup(&d->mem, pq_text(r, 1)) : NULL;
	if (g->name == NULL || (pq_text(r, 1) && g->version == NULL)) {
		u->oom = 1;
		return -1;
	}
	g->instances = (uint64_t)pq_int(r, 2);
	g->running = (uint64_t)pq_int(r, 3);
	g->completed = (uint64_t)pq_int(r, 4);
	g->failed = (uint64_t)pq_int(r, 5);
	g->continued_as_new = (uint64_t)pq_int(r, 6);
	g->unknown = (uint64_t)pq_int(r, 7);
	d->n++;
	return 0;
}

static int pg_instance_digest(store *base, store_instance_digest *out)
{
	pg_store *s = (pg_store *)base;
	memset(out, 0, sizeof *out);
	arena_init(&out->mem);
	struct inst_ud u = {out, 0, 0};
	int rc;
	int indexed = pgi_usable(s, NULL);
	if (indexed) {
		/* the index's status totals (synced just now): the counts of its rows, whose name,
		 * version and status are the store's (COALESCE(e.status, 'Unknown'): NULL counts as
		 * unknown, as below); a few rows instead of a pass over the index table */
		rc = pgi_q(s->ix, 0,
		           "SELECT name, CASE WHEN vnull THEN NULL ELSE version END, sum(n)::int8,"
		           " COALESCE(sum(n) FILTER (WHERE status='Running'), 0)::int8,"
		           " COALESCE(sum(n) FILTER (WHERE status='Completed'), 0)::int8,"
		           " COALESCE(sum(n) FILTER (WHERE status='Failed'), 0)::int8,"
		           " COALESCE(sum(n) FILTER (WHERE status='ContinuedAsNew'), 0)::int8,"
		           " COALESCE(sum(n) FILTER (WHERE status NOT IN ('Running','Completed','Failed',"
		           "'ContinuedAsNew')), 0)::int8 FROM @C GROUP BY name, vnull, version HAVING sum(n) <> 0"
		           " ORDER BY name COLLATE \"C\", vnull DESC, version COLLATE \"C\"",
		           NULL, inst_row, &u, NULL, "counting instances");
	} else {
		/* byte order of names, NULL versions first: the order the SQLite digest sorts in */
		rc = pq_query(
		        s, 0,
		        "SELECT i.orchestration_name, i.orchestration_version, count(*),"
		        " count(*) FILTER (WHERE e.status='Running'), count(*) FILTER (WHERE e.status='Completed'),"
		        " count(*) FILTER (WHERE e.status='Failed'), count(*) FILTER (WHERE e.status='ContinuedAsNew'),"
		        " count(*) FILTER (WHERE e.status IS NULL OR e.status NOT IN"
		        " ('Running','Completed','Failed','ContinuedAsNew'))"
		        " FROM instances i LEFT JOIN executions e ON e.instance_id=i.instance_id AND"
		        " e.execution_id=i.current_execution_id GROUP BY 1, 2"
		        " ORDER BY i.orchestration_name COLLATE \"C\", i.orchestration_version COLLATE \"C\" NULLS "
		        "FIRST",
		        NULL, inst_row, &u, NULL, "counting instances");
	}
	if (rc == DUROX_OK && u.oom)
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	/* with the index, the executions rows as the sync last counted them (exact while no
	 * transaction ended since: postgres_index.h) */
	int64_t n = indexed ? s->ix->n_exec : -1;
	if (rc == DUROX_OK && n < 0)
		rc = pq_one_int(s, 0, "SELECT count(*) FROM executions", NULL, &n, NULL, "counting executions");
	out->executions = (uint64_t)n;
	if (out->groups == NULL && rc == DUROX_OK &&
	    (out->groups = arena_calloc(&out->mem, 1, sizeof *out->groups)) == NULL)
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	if (rc != DUROX_OK)
		store_instance_digest_free(out);
	return rc;
}

/* ---- the history digest ------------------------------------------------------------------ */

static int hist_row(void *ud, const PGresult *r)
{
	dg_acc *a = ud;
	const char *inst = pq_text(r, 0);
	const char *data = pq_text(r, 3);
	size_t ilen = inst ? (size_t)PQgetlength(r, 0, 0) : 0, dlen = data ? (size_t)PQgetlength(r, 0, 3) : 0;
	int type = data != NULL ? dg_type_from_event(a, data, dlen, ilen) : -1;
	return dg_add(a, type, inst, ilen, pq_int(r, 1), pq_int(r, 2), data, dlen) == 0 ? 0 : -1;
}

static int pg_history_digest(store *base, unsigned want, store_history_digest *out)
{
	(void)want; /* one pass reads every part, and so does the index */
	pg_store *s = (pg_store *)base;
	/* the index keeps the digest: a few rows instead of every history row */
	if (pgi_usable(s, NULL))
		return pgi_history_digest(s, out);
	if (s->ix != NULL)
		s->ix->digest_reads++;
	return pg_history_digest_cold(s, out);
}

int pg_history_digest_cold(pg_store *s, store_history_digest *out)
{
	store *base = &s->base;
	memset(out, 0, sizeof *out);
	arena_init(&out->mem);
	dg_acc *a = malloc(sizeof *a);
	if (a == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	dg_init(a);
	/* Every row, as a sequential scan returns them: the accumulator does not need them in
	 * order, and the server neither sorts nor parses anything (measured: PostgreSQL's left()
	 * and regular expressions over every row cost several times the transfer of the text) */
	int rc = pq_query(s, 0, "SELECT h.instance_id, h.execution_id, h.event_id, h.event_data FROM history h", NULL,
	                  hist_row, a, NULL, "reading history");
	if (rc == DUROX_OK && a->oom)
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	else if (rc == DUROX_ENOMEM || a->oom)
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	if (rc == DUROX_OK && dg_finish(a, out) != DUROX_OK)
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	out->has = STORE_DIGEST_ROUND_TRIPS;
	dg_free(a);
	free(a);
	if (rc != DUROX_OK) {
		store_history_digest_free(out);
		arena_init(&out->mem);
	}
	return rc;
}

/* ---- facts and sizes --------------------------------------------------------------------- */

static int pg_meta(store *base, store_meta *out)
{
	pg_store *s = (pg_store *)base;
	out->created_at = out->last_history_ts = out->newest_lock_at = DUROX_NO_TIME;
	int64_t v;
	int isnull, rc;
	if (s->schema_version != NULL && strcmp(s->schema_version, "none") != 0) {
		if ((rc = pq_one_int(s, 0, "SELECT " PG_MS("min(applied_at)") " FROM _duroxide_migrations", NULL, &v,
		                     &isnull, "reading migrations")) != DUROX_OK)
			return rc;
		if (!isnull)
			out->created_at = v;
	}
	if (out->created_at == DUROX_NO_TIME) {
		if ((rc = pq_one_int(s, 0, "SELECT " PG_MS("min(created_at)") " FROM instances", NULL, &v, &isnull,
		                     "reading instances")) != DUROX_OK)
			return rc;
		if (!isnull)
			out->created_at = v;
	}
	/* No rowid on PostgreSQL: the runtime stamps instances.updated_at (and the history rows it
	 * writes) with its clock at every turn it acknowledges, so the latest updated_at is when it
	 * last wrote; instances is far smaller than history to scan, and the index keeps the column
	 * (touched_at) with a B-tree of its own, which answers at once. */
	if (pgi_usable(s, NULL)) {
		char *sql = pgi_sql(s->ix, "SELECT max(touched_at) FROM @X");
		rc = sql == NULL ? store_fail(base, DUROX_ENOMEM, "out of memory")
		                 : pq_one_int(s, PQ_PRIMARY, sql, NULL, &v, &isnull, "reading the index");
		free(sql);
	} else
		rc = pq_one_int(s, 0, "SELECT " PG_MS("max(updated_at)") " FROM instances", NULL, &v, &isnull,
		                "reading instances");
	if (rc != DUROX_OK)
		return rc;
	if (!isnull)
		out->last_history_ts = v;
	if ((rc = pq_one_int(s, 0, "SELECT max(locked_at) FROM instance_locks", NULL, &v, &isnull,
	                     "reading instance locks")) != DUROX_OK)
		return rc;
	if (!isnull)
		out->newest_lock_at = v;
	return DUROX_OK;
}

struct diag_ud {
	durox_provider_diagnostics *out;
};

static int diag_row(void *ud, const PGresult *r)
{
	durox_provider_diagnostics *o = ((struct diag_ud *)ud)->out;
	o->total_instances_stored = (uint64_t)pq_int(r, 0);
	o->total_executions_stored = (uint64_t)pq_int(r, 1);
	o->total_history_events = (uint64_t)pq_int(r, 2);
	o->orchestrator_queue_rows = (uint64_t)pq_int(r, 3);
	o->worker_queue_rows = (uint64_t)pq_int(r, 4);
	o->storage_size_bytes = pq_int(r, 5);
	o->page_size = pq_int(r, 6);
	return 1;
}

static int pg_diagnostics(store *base, durox_provider_diagnostics *out)
{
	pg_store *s = (pg_store *)base;
	out->location = s->display;
	out->schema_version = s->base.info.schema_version;
	out->journal_mode = "wal";
	out->health_error = "";
	out->wal_size_bytes = -1; /* the WAL belongs to the whole cluster */
	out->storage_size_bytes = -1;
	out->freelist_count = 0;
	int64_t one = 0;
	int rc = pq_one_int(s, 0, "SELECT 1", NULL, &one, NULL, "checking the connection");
	out->connection_healthy = rc == DUROX_OK;
	if (rc != DUROX_OK)
		return rc;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, s->schema);
	struct diag_ud u = {out};
	/* sizes: every relation of the runtime's schema with its indexes and TOAST */
	rc = pq_query(
	        s, 0,
	        "SELECT (SELECT count(*) FROM instances), (SELECT count(*) FROM executions),"
	        " (SELECT count(*) FROM history), (SELECT count(*) FROM orchestrator_queue),"
	        " (SELECT count(*) FROM worker_queue),"
	        " (SELECT COALESCE(sum(pg_total_relation_size(c.oid)),0)::int8 FROM pg_class c JOIN pg_namespace n"
	        " ON n.oid=c.relnamespace WHERE n.nspname=$1 AND c.relkind IN ('r','m','p')),"
	        " current_setting('block_size')::int8",
	        &p, diag_row, &u, NULL, "reading the store's size");
	pqp_free(&p);
	if (rc != DUROX_OK)
		return rc;
	out->page_count = out->page_size > 0 ? out->storage_size_bytes / out->page_size : 0;
	out->read_calls = s->reads;
	out->write_calls = s->writes;
	out->average_read_latency_ms = s->reads ? s->read_ms / (double)s->reads : NAN;
	out->average_write_latency_ms = s->writes ? s->write_ms / (double)s->writes : NAN;
	out->max_read_latency_ms = s->max_read_ms;
	out->max_write_latency_ms = s->max_write_ms;
	return DUROX_OK;
}

/* ---- queues ------------------------------------------------------------------------------ */

/* The state of every orchestrator_queue row ($1 = now): as in the SQLite provider, a row is
 * in progress when its instance's lock is live and it carries that lock's token, waiting when
 * the instance is locked by a turn it is not part of, free otherwise; orphan: no instance and
 * no start queued for it. Unlike SQLite's, Duroxide's PostgreSQL runtime consumes an orphan
 * (leaving an executions row without an instance), so an orphan never blocks the queue here:
 * orphans_blocking is 0 and QF_BLOCKING is never set. The instance's existence is probed by
 * its primary key per queue row: OFFSET 0 keeps the planner from turning that NOT EXISTS into a
 * hashed subplan, which read and hashed all of `instances` for a queue of a few thousand rows
 * (100 ms of a 150 ms snapshot on 100,000 instances). */
/* clang-format off */
#define ORCH_ROWS(attempts)                                                                          \
	"SELECT q.id AS id, q.instance_id AS instance_id, q.work_item AS work_item,"                 \
	" " PG_MS("q.visible_at") " AS vis, " PG_MS("q.created_at") " AS created,"                  \
	" " attempts " AS attempts, q.lock_token AS token, l.locked_until AS lu,"                   \
	" " WI_IS("q.work_item", "TimerFired") " AS tm,"                                             \
	" CASE WHEN l.instance_id IS NULL OR l.locked_until <= $1::int8 THEN 0"                      \
	" WHEN q.lock_token IS NOT DISTINCT FROM l.lock_token THEN 1 ELSE 2 END AS st,"              \
	" (NOT EXISTS (SELECT 1 FROM instances x WHERE x.instance_id=q.instance_id OFFSET 0)"        \
	" AND NOT EXISTS (SELECT 1 FROM orchestrator_queue y WHERE y.instance_id=q.instance_id"      \
	" AND " WI_IS("y.work_item", "StartOrchestration") ")) AS orphan"                           \
	" FROM orchestrator_queue q LEFT JOIN instance_locks l ON l.instance_id=q.instance_id"

/* Worker rows: 0 free, 1 locked, 3 lock expired. */
#define WORKER_ROWS(attempts)                                                                        \
	"SELECT w.id AS id, w.instance_id AS instance_id, w.work_item AS work_item,"                 \
	" " PG_MS("w.visible_at") " AS vis, " PG_MS("w.created_at") " AS created,"                  \
	" " attempts " AS attempts, w.locked_until AS lu,"                                           \
	" CASE WHEN w.lock_token IS NULL THEN 0 WHEN w.locked_until > $1::int8 THEN 1 ELSE 3 END AS st" \
	" FROM worker_queue w"

#define CNT(cond) "count(*) FILTER (WHERE " cond ")"

/* The snapshot's figures over the rows of ORCH_ROWS (r) and WORKER_ROWS. */
static const char orch_snapshot_tail[] =
	", c AS (SELECT *, (tm AND vis > $1::int8) AS pt FROM r)"
	" SELECT count(*), " CNT("pt") ", " CNT("NOT pt AND st=1") ", " CNT("NOT pt AND st=2") ","
	" " CNT("NOT pt AND st=0 AND vis > $1::int8") ", " CNT("NOT pt AND st=0 AND vis <= $1::int8") ","
	" " CNT("NOT tm AND st=0 AND vis <= $1::int8 - $2::int8") ","
	" " CNT("tm AND NOT pt AND st=0 AND vis <= $1::int8 - $3::int8") ","
	" min(CASE WHEN NOT pt AND vis <= $1::int8 THEN vis END), min(CASE WHEN pt THEN created END),"
	" min(CASE WHEN pt THEN vis END), " CNT("attempts >= $4::int8") ", " CNT("attempts >= $5::int8") ","
	" max(attempts), " CNT("token IS NULL") ", " CNT("token IS NOT NULL AND st <> 1") ","
	" " CNT("orphan") ", 0 FROM c";

static const char worker_snapshot_tail[] =
	" SELECT count(*), " CNT("st=1") ", " CNT("st=3") ", " CNT("st<>1 AND vis > $1::int8") ","
	" " CNT("st<>1 AND vis <= $1::int8") ","
	" " CNT("st<>1 AND GREATEST(vis, CASE WHEN st=3 THEN lu ELSE vis END) <= $1::int8 - $2::int8") ","
	" min(CASE WHEN vis <= $1::int8 THEN vis END), " CNT("attempts >= $3::int8") ","
	" " CNT("attempts >= $4::int8") ", max(attempts), " CNT("st=0") " FROM r";

/* flags: 1 poison risk, 2 expired lock, 4 overdue timer, 8 stalled, 16 orphan (32, blocking,
 * never on PostgreSQL) */
static const char orch_problem_tail[] =
	", f AS (SELECT r.*, (CASE WHEN attempts >= $4::int8 THEN 1 ELSE 0 END)"
	" | (CASE WHEN st=0 AND lu IS NOT NULL AND lu <= $1::int8 - $2::int8 THEN 2 ELSE 0 END)"
	" | (CASE WHEN tm AND st=0 AND vis <= $1::int8 - $3::int8 THEN 4 ELSE 0 END)"
	" | (CASE WHEN NOT tm AND st=0 AND vis <= $1::int8 - $2::int8 THEN 8 ELSE 0 END)"
	" | (CASE WHEN orphan THEN 16 ELSE 0 END) AS flags FROM r)"
	" SELECT 0, f.id, f.instance_id, f.work_item, f.vis, f.lu, f.attempts, f.st, f.flags,"
	" f.created, i.instance_id IS NOT NULL, e.status, i.orchestration_name,"
	" EXISTS (SELECT 1 FROM orchestrator_queue y WHERE y.instance_id=f.instance_id AND "
	WI_IS("y.work_item", "StartOrchestration") ")"
	" FROM f LEFT JOIN instances i ON i.instance_id=f.instance_id LEFT JOIN executions e ON"
	" e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id WHERE f.flags <> 0"
	" ORDER BY f.id";

/* ($3 is unused by the worker rows; named so that its type is known) */
static const char worker_problem_tail[] =
	", f AS (SELECT r.*, (CASE WHEN attempts >= $4::int8 THEN 1 ELSE 0 END)"
	" | (CASE WHEN st=3 AND lu <= $1::int8 - $2::int8 THEN 2 ELSE 0 END)"
	" | (CASE WHEN st<>1 AND GREATEST(vis, CASE WHEN st=3 THEN lu ELSE vis END) <= $1::int8 -"
	" $2::int8 THEN 8 ELSE 0 END) AS flags FROM r WHERE $3::int8 IS NOT NULL)"
	" SELECT 1, f.id, f.instance_id, f.work_item, f.vis, f.lu, f.attempts, f.st, f.flags,"
	" f.created, i.instance_id IS NOT NULL, e.status, i.orchestration_name, false"
	" FROM f LEFT JOIN instances i ON i.instance_id=f.instance_id LEFT JOIN executions e ON"
	" e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id WHERE f.flags <> 0"
	" ORDER BY f.id";

static const char lock_counts_sql[] =
	"SELECT count(*), " CNT("locked_until <= $1::int8") ", " CNT("locked_until <= $1::int8 - $2::int8")
	" FROM instance_locks";
/* clang-format on */

/* ---- the queue rows kept between calls ---------------------------------------------------- */

/* A handle keeps the now-independent columns of every queue row it read (the orchestrator
 * rows with their instance lock, the worker rows, the instance locks) and the gate,
 * pg_current_snapshot() taken just before it read them; all in one statement, so one snapshot.
 * Orphans (no instance and no start queued) are counted by the server in that statement: an
 * anti-join probes instances' primary key once per queue row (a quarter less CPU than a flag
 * per row). A snapshot is then computed in C for the call's now and thresholds with the rules
 * of the statements above (the same figures: pg_index_spec and spec_metrics compare them with
 * raw SQL), and the rows are read again only when the gate moved, i.e. when some transaction
 * ended since (the runtime's lock, abandon, ack, enqueue, delete: every write of it is a
 * transaction with an xid). Nothing is kept per row across a change: every column the PG
 * runtime updates in place (lock_token, locked_until, attempt_count, visible_at, and rows
 * deleted and inserted under a new id) is read again whole. Not used inside a transaction of
 * the handle, nor beyond QM_MAX rows a queue (40 bytes a row kept: the statements above then
 * aggregate on the server, after the rows read so far are dropped). */
#define QM_MAX_DEFAULT 500000
#define QM_MAX qm_max()
#define QM_GATE 512

enum { QO_TM = 1, QO_LOCK = 2, QO_TOK_EQ = 4, QO_TOK_NULL = 8 };

typedef struct qm_orow {
	int64_t vis, created, lu; /* created only of TimerFired rows; lu: the instance lock's */
	int64_t attempts;
	unsigned f; /* QO_* */
} qm_orow;

typedef struct qm_wrow {
	int64_t vis, lu; /* lu: NO_TIME when NULL */
	int64_t attempts;
	int tok_null;
} qm_wrow;

struct pg_qmemo {
	char gate[QM_GATE];
	int valid, has_attempts;
	int has_orphans; /* orphans was counted at the gate (a caller may not need it) */
	qm_orow *o;
	size_t no, co;
	qm_wrow *w;
	size_t nw, cw;
	int64_t *locks;
	size_t nl, cl;
	uint64_t orphans;
	int oom, over;
};

/* QM_MAX: DUROX_PG_QUEUE_MEMO_MAX (rows a queue, at least 1; for tests) or 500,000 */
static size_t qm_max(void)
{
	const char *e = getenv("DUROX_PG_QUEUE_MEMO_MAX");
	long long v = e ? strtoll(e, NULL, 10) : 0;
	return v >= 1 ? (size_t)v : QM_MAX_DEFAULT;
}

/* clang-format off */
#define QM_ORCH(attempts)                                                                            \
	"SELECT 0, " PG_MS("q.visible_at") ", CASE WHEN q.tm THEN " PG_MS("q.created_at") " END, q.att,"  \
	" l.locked_until, (CASE WHEN q.tm THEN 1 ELSE 0 END"                                          \
	" | CASE WHEN l.instance_id IS NOT NULL THEN 2 ELSE 0 END"                                    \
	" | CASE WHEN l.instance_id IS NOT NULL AND q.lock_token IS NOT DISTINCT FROM l.lock_token"  \
	" THEN 4 ELSE 0 END | CASE WHEN q.lock_token IS NULL THEN 8 ELSE 0 END)"                      \
	" FROM (SELECT instance_id, visible_at, created_at, " attempts " AS att, lock_token,"         \
	" " WI_IS("work_item", "TimerFired") " AS tm FROM orchestrator_queue OFFSET 0) q"             \
	" LEFT JOIN instance_locks l ON l.instance_id=q.instance_id"
/* the orphans: no instance and no start queued for it (a probe of instances per queue row) */
#define QM_ORPHANS_FROM                                                                              \
	" FROM orchestrator_queue q WHERE NOT EXISTS"                                                 \
	" (SELECT 1 FROM instances x WHERE x.instance_id=q.instance_id) AND NOT EXISTS (SELECT 1 FROM" \
	" orchestrator_queue y WHERE y.instance_id=q.instance_id AND " WI_IS("y.work_item", "StartOrchestration") ")"
#define QM_ORPHANS " UNION ALL SELECT 3, count(*), NULL, NULL, NULL, 0" QM_ORPHANS_FROM
#define QM_WORKER(attempts)                                                                          \
	" UNION ALL SELECT 1, " PG_MS("w.visible_at") ", NULL, " attempts ", w.locked_until,"        \
	" CASE WHEN w.lock_token IS NULL THEN 8 ELSE 0 END FROM worker_queue w"                       \
	" UNION ALL SELECT 2, NULL, NULL, NULL, locked_until, 0 FROM instance_locks"
/* clang-format on */

static const char qm_sql_attempts[] = QM_ORCH("attempt_count") QM_ORPHANS QM_WORKER("w.attempt_count");
static const char qm_sql_plain[] = QM_ORCH("0") QM_ORPHANS QM_WORKER("0");
/* the same without the orphans (a caller that reads no orphans count: runtime metrics) */
static const char qm_sql_rows_attempts[] = QM_ORCH("attempt_count") QM_WORKER("w.attempt_count");
static const char qm_sql_rows_plain[] = QM_ORCH("0") QM_WORKER("0");
/* the orphans alone, with the statement's snapshot (they belong to the kept rows only when
 * it is still the snapshot the rows were kept at) */
static const char qm_sql_orphans[] = "SELECT count(*), pg_current_snapshot()::text" QM_ORPHANS_FROM;

/* A snapshot's text into gate (QM_GATE bytes); one too long to keep whole is no gate (left
 * empty: the rows are read every time). */
static void qm_gate_copy(char *gate, const char *t)
{
	if (t != NULL && strlen(t) < QM_GATE)
		memcpy(gate, t, strlen(t) + 1);
}

static int qm_gate_row(void *ud, const PGresult *r)
{
	qm_gate_copy(ud, pq_text(r, 0));
	return 1;
}

/* v (n elements used of *cap, each size bytes) with room for one more: v itself, or v grown
 * (the capacity doubles from first, at most QM_MAX); NULL with m->over set at QM_MAX, or m->oom
 * when out of memory (v is then still valid). */
static void *qm_room(struct pg_qmemo *m, void *v, size_t n, size_t *cap, size_t size, size_t first)
{
	if (n < *cap)
		return v;
	if (n >= QM_MAX) {
		m->over = 1;
		return NULL;
	}
	size_t c = *cap ? *cap * 2 : first;
	if (c > QM_MAX)
		c = QM_MAX;
	void *nv = realloc(v, c * size);
	if (nv == NULL) {
		m->oom = 1;
		return NULL;
	}
	*cap = c;
	return nv;
}

static int qm_row(void *ud, const PGresult *r)
{
	struct pg_qmemo *m = ud;
	int k = (int)pq_int(r, 0);
	if (k == 0) {
		qm_orow *grown = qm_room(m, m->o, m->no, &m->co, sizeof *m->o, 256);
		if (grown == NULL)
			return 1;
		m->o = grown;
		qm_orow *o = &m->o[m->no++];
		o->vis = pq_int(r, 1);
		o->created = pq_time(r, 2);
		o->attempts = pq_int(r, 3);
		o->lu = pq_time(r, 4);
		o->f = (unsigned)pq_int(r, 5);
	} else if (k == 1) {
		qm_wrow *grown = qm_room(m, m->w, m->nw, &m->cw, sizeof *m->w, 256);
		if (grown == NULL)
			return 1;
		m->w = grown;
		qm_wrow *w = &m->w[m->nw++];
		w->vis = pq_int(r, 1);
		w->attempts = pq_int(r, 3);
		w->lu = pq_time(r, 4);
		w->tok_null = (pq_int(r, 5) & QO_TOK_NULL) != 0;
	} else if (k == 3) {
		m->orphans = (uint64_t)pq_int(r, 1);
	} else {
		int64_t *grown = qm_room(m, m->locks, m->nl, &m->cl, sizeof *m->locks, 64);
		if (grown == NULL)
			return 1;
		m->locks = grown;
		m->locks[m->nl++] = pq_int(r, 4);
	}
	return 0;
}

static int64_t min_time(int64_t a, int64_t b) { return a == DUROX_NO_TIME || b < a ? b : a; }

/* The snapshot of the kept rows under qp: orch_snapshot_tail, worker_snapshot_tail and
 * lock_counts_sql, row by row. */
static void qm_snapshot(const struct pg_qmemo *m, const store_queue_params *qp, store_queue_snapshot *out)
{
	const int64_t now = qp->now;
	durox_queue_detail *o = &out->orchestrator, *w = &out->worker;
	out->orchestrator_rows = m->no;
	for (size_t i = 0; i < m->no; i++) {
		const qm_orow *r = &m->o[i];
		int tm = (r->f & QO_TM) != 0;
		int st = !(r->f & QO_LOCK) || r->lu <= now ? 0 : (r->f & QO_TOK_EQ) ? 1 : 2;
		int pt = tm && r->vis > now;
		if (pt) {
			out->pending_timers++;
			out->oldest_timer_created = min_time(out->oldest_timer_created, r->created);
			out->next_timer_at = min_time(out->next_timer_at, r->vis);
		} else {
			o->in_progress += st == 1;
			o->waiting_on_lock += st == 2;
			o->delayed += st == 0 && r->vis > now;
			o->available += st == 0 && r->vis <= now;
			out->overdue_timers += tm && st == 0 && r->vis <= now - qp->timer_overdue_ms;
			if (r->vis <= now)
				out->orchestrator_oldest_visible = min_time(out->orchestrator_oldest_visible, r->vis);
		}
		o->stalled += !tm && st == 0 && r->vis <= now - qp->stall_ms;
		o->near_poison += r->attempts >= qp->near_poison;
		o->at_poison_limit += r->attempts >= qp->max_attempts;
		if (r->attempts > o->max_attempt_count)
			o->max_attempt_count = r->attempts;
		o->unlocked_rows += (r->f & QO_TOK_NULL) != 0;
		o->stale_lock_tokens += !(r->f & QO_TOK_NULL) && st != 1;
	}
	o->orphans = m->orphans;
	out->worker_rows = m->nw;
	for (size_t i = 0; i < m->nw; i++) {
		const qm_wrow *r = &m->w[i];
		int st = r->tok_null ? 0 : r->lu != DUROX_NO_TIME && r->lu > now ? 1 : 3;
		w->in_progress += st == 1;
		w->expired_locks += st == 3;
		w->delayed += st != 1 && r->vis > now;
		w->available += st != 1 && r->vis <= now;
		int64_t since = st == 3 && r->lu != DUROX_NO_TIME && r->lu > r->vis ? r->lu : r->vis;
		w->stalled += st != 1 && since <= now - qp->stall_ms;
		if (r->vis <= now)
			out->worker_oldest_visible = min_time(out->worker_oldest_visible, r->vis);
		w->near_poison += r->attempts >= qp->near_poison;
		w->at_poison_limit += r->attempts >= qp->max_attempts;
		if (r->attempts > w->max_attempt_count)
			w->max_attempt_count = r->attempts;
		w->unlocked_rows += st == 0;
	}
	out->instance_locks = m->nl;
	for (size_t i = 0; i < m->nl; i++) {
		out->expired_instance_locks += m->locks[i] <= now;
		out->long_expired_instance_locks += m->locks[i] <= now - qp->stall_ms;
	}
	o->expired_locks = out->expired_instance_locks;
}

static void qm_free(struct pg_qmemo *m)
{
	if (m == NULL)
		return;
	free(m->o);
	free(m->w);
	free(m->locks);
	free(m);
}

static void qm_clear(struct pg_qmemo *m)
{
	m->valid = m->has_orphans = 0;
	m->no = m->nw = m->nl = 0;
	m->orphans = 0;
	m->oom = m->over = 0;
}

struct orphans_ud {
	uint64_t n;
	char snap[QM_GATE];
};

static int orphans_row(void *ud, const PGresult *r)
{
	struct orphans_ud *u = ud;
	u->n = (uint64_t)pq_int(r, 0);
	qm_gate_copy(u->snap, pq_text(r, 1));
	return 1;
}

/* The snapshot from the kept rows, read again first when the gate moved. Returns DUROX_OK,
 * 1 when the rows are not kept (too many: the caller aggregates on the server), or an
 * error. */
static int qm_get(pg_store *s, const store_queue_params *qp, store_queue_snapshot *out)
{
	struct pg_qmemo *m = s->qmemo;
	if (m == NULL) {
		if ((m = calloc(1, sizeof *m)) == NULL)
			return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
		s->qmemo = m;
	}
	char gate[sizeof m->gate] = "";
	int rc = pq_query(s, 0, "SELECT pg_current_snapshot()::text", NULL, qm_gate_row, gate, NULL,
	                  "reading a snapshot");
	if (rc != DUROX_OK)
		return rc;
	int has_attempts = s->base.info.has_attempt_count;
	int orphans = !qp->no_orphan_count;
	/* the kept rows are those of the store now: nothing ended since they were read */
	int kept = m->valid && m->has_attempts == has_attempts && gate[0] != '\0' && strcmp(gate, m->gate) == 0;
	if (kept && orphans && !m->has_orphans) {
		/* the rows are kept, the orphans were not counted: counted now, and kept when nothing
		 * ended since the rows were read (else everything is read again below, in one statement) */
		struct orphans_ud u = {0, ""};
		if ((rc = pq_query(s, 0, qm_sql_orphans, NULL, orphans_row, &u, NULL, "reading the queues")) !=
		    DUROX_OK)
			return rc;
		if (strcmp(u.snap, m->gate) == 0) {
			m->orphans = u.n;
			m->has_orphans = 1;
		} else {
			kept = 0;
		}
	}
	if (!kept) {
		qm_clear(m);
		const char *sql = orphans ? (has_attempts ? qm_sql_attempts : qm_sql_plain)
		                          : (has_attempts ? qm_sql_rows_attempts : qm_sql_rows_plain);
		rc = pq_query(s, 0, sql, NULL, qm_row, m, NULL, "reading the queues");
		m->has_orphans = orphans;
		if (rc == DUROX_OK && m->oom)
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
		if (rc != DUROX_OK || m->over) {
			qm_clear(m);
			return rc != DUROX_OK ? rc : 1;
		}
		memcpy(m->gate, gate, sizeof m->gate);
		m->has_attempts = has_attempts;
		m->valid = 1;
	}
	qm_snapshot(m, qp, out);
	return DUROX_OK;
}

static int orch_row(void *ud, const PGresult *r)
{
	store_queue_snapshot *out = ud;
	durox_queue_detail *o = &out->orchestrator;
	out->orchestrator_rows = (uint64_t)pq_int(r, 0);
	out->pending_timers = (uint64_t)pq_int(r, 1);
	o->in_progress = (uint64_t)pq_int(r, 2);
	o->waiting_on_lock = (uint64_t)pq_int(r, 3);
	o->delayed = (uint64_t)pq_int(r, 4);
	o->available = (uint64_t)pq_int(r, 5);
	o->stalled = (uint64_t)pq_int(r, 6);
	out->overdue_timers = (uint64_t)pq_int(r, 7);
	out->orchestrator_oldest_visible = pq_time(r, 8);
	out->oldest_timer_created = pq_time(r, 9);
	out->next_timer_at = pq_time(r, 10);
	o->near_poison = (uint64_t)pq_int(r, 11);
	o->at_poison_limit = (uint64_t)pq_int(r, 12);
	o->max_attempt_count = pq_isnull(r, 13) ? -1 : pq_int(r, 13);
	o->unlocked_rows = (uint64_t)pq_int(r, 14);
	o->stale_lock_tokens = (uint64_t)pq_int(r, 15);
	o->orphans = (uint64_t)pq_int(r, 16);
	o->orphans_blocking = (uint64_t)pq_int(r, 17);
	return 1;
}

static int worker_row(void *ud, const PGresult *r)
{
	store_queue_snapshot *out = ud;
	durox_queue_detail *w = &out->worker;
	out->worker_rows = (uint64_t)pq_int(r, 0);
	w->in_progress = (uint64_t)pq_int(r, 1);
	w->expired_locks = (uint64_t)pq_int(r, 2);
	w->delayed = (uint64_t)pq_int(r, 3);
	w->available = (uint64_t)pq_int(r, 4);
	w->stalled = (uint64_t)pq_int(r, 5);
	out->worker_oldest_visible = pq_time(r, 6);
	w->near_poison = (uint64_t)pq_int(r, 7);
	w->at_poison_limit = (uint64_t)pq_int(r, 8);
	w->max_attempt_count = pq_isnull(r, 9) ? -1 : pq_int(r, 9);
	w->unlocked_rows = (uint64_t)pq_int(r, 10);
	return 1;
}

static int lock_count_row(void *ud, const PGresult *r)
{
	store_queue_snapshot *out = ud;
	out->instance_locks = (uint64_t)pq_int(r, 0);
	out->expired_instance_locks = (uint64_t)pq_int(r, 1);
	out->long_expired_instance_locks = (uint64_t)pq_int(r, 2);
	out->orchestrator.expired_locks = out->expired_instance_locks;
	return 1;
}

static void queue_params(pqp *p, const store_queue_params *q)
{
	pqp_int(p, q->now);
	pqp_int(p, q->stall_ms);
	pqp_int(p, q->timer_overdue_ms);
	pqp_int(p, q->near_poison);
	pqp_int(p, q->max_attempts);
}

/* Builds "WITH r AS MATERIALIZED (<rows>), ... <tail>" into b with the attempts column. */
static void queue_sql(buf *b, int worker, int has_attempts, const char *tail)
{
	buf_adds(b, "WITH r AS MATERIALIZED (");
	if (worker)
		buf_adds(b, has_attempts ? WORKER_ROWS("w.attempt_count") : WORKER_ROWS("0"));
	else
		buf_adds(b, has_attempts ? ORCH_ROWS("q.attempt_count") : ORCH_ROWS("0"));
	buf_adds(b, ")");
	buf_adds(b, tail);
}

static int pg_queue_snapshot(store *base, const store_queue_params *qp, store_queue_snapshot *out)
{
	pg_store *s = (pg_store *)base;
	memset(out, 0, sizeof *out);
	out->orchestrator.max_attempt_count = out->worker.max_attempt_count = -1;
	out->orchestrator_oldest_visible = out->worker_oldest_visible = DUROX_NO_TIME;
	out->oldest_timer_created = out->next_timer_at = DUROX_NO_TIME;
	if (!s->in_txn && getenv("DUROX_PG_QUEUE_MEMO_OFF") == NULL) {
		int rc = qm_get(s, qp, out);
		if (rc != 1)
			return rc;
	}
	int has_attempts = s->base.info.has_attempt_count;
	buf sql;
	buf_init(&sql);
	queue_sql(&sql, 0, has_attempts, orch_snapshot_tail);
	pqp p;
	pqp_init(&p);
	queue_params(&p, qp);
	int rc = buf_oom(&sql)
	                 ? store_fail(base, DUROX_ENOMEM, "out of memory")
	                 : pq_query(s, 0, buf_str(&sql), &p, orch_row, out, NULL, "reading the orchestrator queue");
	pqp_free(&p);
	if (rc == DUROX_OK) {
		buf_reset(&sql);
		queue_sql(&sql, 1, has_attempts, worker_snapshot_tail);
		pqp_init(&p);
		pqp_int(&p, qp->now);
		pqp_int(&p, qp->stall_ms);
		pqp_int(&p, qp->near_poison);
		pqp_int(&p, qp->max_attempts);
		rc = buf_oom(&sql)
		             ? store_fail(base, DUROX_ENOMEM, "out of memory")
		             : pq_query(s, 0, buf_str(&sql), &p, worker_row, out, NULL, "reading the worker queue");
		pqp_free(&p);
	}
	buf_free(&sql);
	if (rc != DUROX_OK)
		return rc;
	pqp_init(&p);
	pqp_int(&p, qp->now);
	pqp_int(&p, qp->stall_ms);
	rc = pq_query(s, 0, lock_counts_sql, &p, lock_count_row, out, NULL, "reading instance locks");
	pqp_free(&p);
	return rc;
}

struct item_ud {
	store_queue_item_cb cb;
	void *ud;
};

static int problem_row(void *ud, const PGresult *r)
{
	struct item_ud *u = ud;
	static const int lock_states[] = {LOCK_FREE, LOCK_IN_PROGRESS, LOCK_WAITING, LOCK_EXPIRED};
	int lk = (int)pq_int(r, 7);
	store_queue_item it = {
	        .flags = (unsigned)pq_int(r, 8),
	        .created_at = pq_time(r, 9),
	        .worker = (int)pq_int(r, 0),
	        .id = pq_int(r, 1),
	        .instance_id = pq_text(r, 2),
	        .work_item = pq_text(r, 3),
	        .visible_at = pq_time(r, 4),
	        .locked_until = pq_time(r, 5),
	        .attempt_count = pq_int(r, 6),
	        .lock_state = lk >= 0 && lk <= 3 ? lock_states[lk] : LOCK_FREE,
	        .instance_exists = pq_bool(r, 10),
	        .status = pq_text(r, 11),
	        .orchestration_name = pq_text(r, 12),
	        .start_queued = pq_bool(r, 13),
	};
	if (it.instance_id == NULL)
		it.instance_id = "";
	if (it.work_item == NULL)
		it.work_item = "";
	return u->cb(u->ud, &it);
}

static int pg_problem_items(store *base, const store_queue_params *qp, store_queue_item_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	int has_attempts = s->base.info.has_attempt_count;
	struct item_ud u = {cb, ud};
	int rc = DUROX_OK;
	buf sql;
	buf_init(&sql);
	for (int q = 0; q < 2 && rc == DUROX_OK; q++) {
		buf_reset(&sql);
		queue_sql(&sql, q, has_attempts, q ? worker_problem_tail : orch_problem_tail);
		if (buf_oom(&sql)) {
			rc = store_fail(base, DUROX_ENOMEM, "out of memory");
			break;
		}
		pqp p;
		pqp_init(&p);
		pqp_int(&p, qp->now);
		pqp_int(&p, qp->stall_ms);
		pqp_int(&p, qp->timer_overdue_ms);
		pqp_int(&p, qp->near_poison);
		rc = pq_query(s, 0, buf_str(&sql), &p, problem_row, &u, NULL,
		              q ? "reading the worker queue" : "reading the orchestrator queue");
		pqp_free(&p);
	}
	buf_free(&sql);
	return rc;
}

struct lock_ud {
	store_lock_cb cb;
	void *ud;
};

static int lock_row(void *ud, const PGresult *r)
{
	struct lock_ud *u = ud;
	store_lock_row l = {pq_text(r, 0), pq_time(r, 1), pq_time(r, 2), pq_text(r, 3), pq_text(r, 4)};
	if (l.instance_id == NULL)
		return 0;
	return u->cb(u->ud, &l);
}

static int pg_expired_locks(store *base, int64_t before, store_lock_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_int(&p, before);
	struct lock_ud u = {cb, ud};
	int rc = pq_query(
	        s, 0,
	        "SELECT l.instance_id, l.locked_until, l.locked_at, e.status, i.orchestration_name"
	        " FROM instance_locks l LEFT JOIN instances i ON i.instance_id=l.instance_id"
	        " LEFT JOIN executions e ON e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id"
	        " WHERE l.locked_until <= $1::int8 ORDER BY l.instance_id COLLATE \"C\"",
	        &p, lock_row, &u, NULL, "reading instance locks");
	pqp_free(&p);
	return rc;
}

struct idle_ud {
	store_idle_cb cb;
	void *ud;
};

static int idle_row(void *ud, const PGresult *r)
{
	struct idle_ud *u = ud;
	store_idle_row row = {pq_text(r, 0), pq_text(r, 1), (uint64_t)pq_int(r, 2), pq_int(r, 3)};
	store_event_row ev = {(uint64_t)pq_int(r, 4), (uint64_t)pq_int(r, 5),       pq_text(r, 6),
	                      pq_text(r, 7),          (size_t)PQgetlength(r, 0, 7), pq_time(r, 8)};
	if (row.instance_id == NULL)
		return 0;
	if (ev.data == NULL) {
		ev.data = "";
		ev.data_len = 0;
	}
	return u->cb(u->ud, &row, &ev);
}

static int pg_idle_running(store *base, int64_t older_than, store_idle_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_int(&p, older_than);
	struct idle_ud u = {cb, ud};
	int rc = pq_query(
	        s, 0,
	        "WITH c AS MATERIALIZED (SELECT i.instance_id AS id, i.orchestration_name AS name,"
	        " i.current_execution_id AS ex, (SELECT " PG_EVENT_TS(
	                "h") " FROM history h WHERE"
	                     " h.instance_id=i.instance_id AND h.execution_id=i.current_execution_id ORDER BY "
	                     "h.event_id DESC"
	                     " LIMIT 1) AS last FROM executions e JOIN instances i ON i.instance_id=e.instance_id AND"
	                     " i.current_execution_id=e.execution_id WHERE e.status='Running')"
	                     " SELECT c.id, c.name, c.ex, c.last, h.execution_id, h.event_id, " PG_EVENT_TYPE(
	                             "h") ","
	                                  " h.event_data, " PG_MS(
	                                          "h.created_at") " FROM c JOIN history h ON h.instance_id=c.id AND"
	                                                          " h.execution_id=c.ex WHERE c.last < $1::int8 ORDER "
	                                                          "BY c.id COLLATE \"C\", h.event_id",
	        &p, idle_row, &u, NULL, "reading running instances");
	pqp_free(&p);
	return rc;
}

/* ---- registration ------------------------------------------------------------------------ */

int pg_query_instances(store *st, const store_group_query *q, store_group_cb cb, void *ud);
int pg_time_series(store *st, const store_series_query *q, durox_time_bucket *buckets, size_t n);
int pg_descendants(store *st, const char *root, uint32_t max_depth, uint32_t limit, const durox_filter *filter,
                   store_node_cb cb, void *ud);
int pg_count_descendants(store *st, const char *root, const durox_filter *filter, uint64_t *out);
int pg_ancestors(store *st, const char *id, store_node_cb cb, void *ud);

const store_metrics_vtable pg_metrics_vtable = {
        pg_instance_digest, pg_history_digest,    pg_meta,         pg_diagnostics,     pg_queue_snapshot,
        pg_problem_items,   pg_expired_locks,     pg_idle_running, pg_query_instances, pg_time_series,
        pg_descendants,     pg_count_descendants, pg_ancestors,
};
