/*
 * sqlite_ops.c - the SQLite provider's writes (store/ops.h): BEGIN IMMEDIATE transactions,
 * the instance checks made inside them, queue inserts with exactly the columns Duroxide's
 * SQLite provider writes, Duroxide's delete_instances_atomic and prune_executions, and
 * the one-query status poll. Lists of ids are bound as ONE JSON array parameter read
 * with json_each(), so every statement is cached whatever the number of ids.
 * Used by the engine (src/engine/ops*.c) through sq_ops_vtable; the journal is in
 * sqlite_jobs.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/ops.h"
#include "store/sqlite_internal.h"
#include "store/sqlite_jobs.h"

/* The ids bound as ?1 (a JSON array of strings), as a subquery. */
#define IDS "(SELECT value FROM json_each(?1))"

/* Runs a statement that returns no rows; returns a durox code. */
static int exec_cached(sqlite_store *s, const char *sql, const char *what)
{
	sqlite3_stmt *st = sq_stmt(s, sql);
	if (st == NULL)
		return sq_stmt_err(s);
	int rc = sqlite3_step(st);
	sq_done(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? DUROX_OK : sq_fail(s, rc, what);
}

/* ---- write transactions and pacing --------------------------------------------------
 *
 * The runtime's SQLite provider acks a turn in a DEFERRED transaction that reads before it
 * writes; SQLite cannot wait for the write lock in that upgrade, so the ack fails at once
 * whenever another connection holds the lock at that moment. The runtime retries 5 times
 * (10 to 160 ms apart) and then FAILS the orchestration with an infrastructure error. A
 * writer that holds the lock back to back (a bulk job, or a script starting instances in a
 * loop) can therefore fail the runtime's instances. So we pace our write transactions:
 * before a new one, we leave the lock free w_gap_factor times as long as we held it last
 * time (9 by default: a 10% share of the lock, and 0.1^6 odds of six straight collisions). */
#define WRITE_GAP_MAX_US 200000

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void pace(sqlite_store *s)
{
	if (s->w_end_us == 0)
		return;
	if (s->w_gap_factor <= 0)
		return;
	int64_t gap = (int64_t)((double)(s->w_end_us - s->w_begin_us) * s->w_gap_factor);
	if (gap > WRITE_GAP_MAX_US)
		gap = WRITE_GAP_MAX_US;
	int64_t wait = s->w_end_us + gap - mono_us();
	if (wait <= 0)
		return;
	struct timespec ts = {(time_t)(wait / 1000000), (long)(wait % 1000000) * 1000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static void tx_ended(sqlite_store *s)
{
	s->w_end_us = mono_us();
	if (s->w_end_us == s->w_begin_us)
		s->w_end_us++;
}

static int sq_begin(store *base)
{
	sqlite_store *s = (sqlite_store *)base;
	if (!sqlite3_get_autocommit(s->db))
		return store_fail(base, DUROX_EINVALID, "a write transaction is already open");
	pace(s);
	/* Waits for the write lock up to the busy timeout (the busy handler retries). */
	int rc = exec_cached(s, "BEGIN IMMEDIATE", "starting a write transaction");
	s->w_begin_us = mono_us();
	if (rc != DUROX_OK)
		tx_ended(s);
	return rc;
}

static int sq_commit(store *base)
{
	sqlite_store *s = (sqlite_store *)base;
	int rc = exec_cached(s, "COMMIT", "committing");
	if (rc != DUROX_OK && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	tx_ended(s);
	return rc;
}

static void sq_rollback(store *base)
{
	sqlite_store *s = (sqlite_store *)base;
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	tx_ended(s);
}

static int status_of(const char *t)
{
	int st = t != NULL ? durox_status_parse(t) : -1;
	return st < 0 ? DUROX_STATUS_UNKNOWN : st;
}

static int sq_instance_state(store *base, const char *instance_id, int64_t now_ms, store_instance_state *out)
{
	sqlite_store *s = (sqlite_store *)base;
	memset(out, 0, sizeof *out);
	out->status = DUROX_STATUS_NOT_FOUND;
	sqlite3_stmt *st = sq_stmt(
	        s,
	        s->base.info.has_parent_instance
	                ? "SELECT i.current_execution_id, e.status, i.parent_instance_id IS NOT NULL, EXISTS(SELECT 1 "
	                  "FROM"
	                  " instance_locks l WHERE l.instance_id=i.instance_id AND l.locked_until>?2) FROM instances i "
	                  "LEFT JOIN"
	                  " executions e ON e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id WHERE"
	                  " i.instance_id=?1"
	                : "SELECT i.current_execution_id, e.status, 0, EXISTS(SELECT 1 FROM instance_locks l WHERE"
	                  " l.instance_id=i.instance_id AND l.locked_until>?2) FROM instances i LEFT JOIN executions e "
	                  "ON"
	                  " e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id WHERE "
	                  "i.instance_id=?1");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, instance_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->exists = 1;
		out->current_execution = (uint64_t)sqlite3_column_int64(st, 0);
		out->status = status_of(sq_col_text(st, 1));
		out->is_child = sqlite3_column_int(st, 2);
		out->locked = sqlite3_column_int(st, 3);
	}
	sq_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(s, rc, "reading an instance");
	if (out->exists)
		return DUROX_OK;
	/* No row yet: a queued start means the runtime will create it on its first turn. */
	st = sq_stmt(s, "SELECT 1 FROM orchestrator_queue WHERE instance_id=?1 AND work_item LIKE"
	                " '{\"StartOrchestration\"%' LIMIT 1");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, instance_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	out->pending_start = rc == SQLITE_ROW;
	sq_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(s, rc, "reading the orchestrator queue");
	if (out->pending_start)
		out->status = DUROX_STATUS_RUNNING;
	return DUROX_OK;
}

static int sq_queued_items(store *base, const char *instance_id, store_item_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = sq_stmt(s, "SELECT work_item FROM orchestrator_queue WHERE instance_id=? ORDER BY id");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, instance_id, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *w = sq_col_text(st, 0);
		int x = cb(ud, w != NULL ? w : "");
		if (x != 0) {
			sq_done(st);
			return x > 0 ? DUROX_OK : x;
		}
	}
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "reading the orchestrator queue");
}

static int sq_enqueue(store *base, const char *instance_id, const char *work_item, int64_t visible_at_ms)
{
	sqlite_store *s = (sqlite_store *)base;
	/* Exactly the columns Duroxide's SQLite provider writes (enqueue_for_orchestrator):
	 * id, lock_token, locked_until, attempt_count and created_at take their defaults. */
	sqlite3_stmt *st =
	        sq_stmt(s, "INSERT INTO orchestrator_queue (instance_id, work_item, visible_at) VALUES (?, ?, ?)");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, instance_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, work_item, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, visible_at_ms);
	int rc = sqlite3_step(st);
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "queueing a work item");
}

static int sq_tree(store *base, const char *root, int64_t now_ms, store_tree_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	/* UNION (not UNION ALL): a damaged store with a parent cycle still terminates. */
	sqlite3_stmt *st = sq_stmt(
	        s,
	        s->base.info.has_parent_instance
	                ? "WITH RECURSIVE t(id) AS (SELECT ?1 UNION SELECT c.instance_id FROM instances c JOIN t ON"
	                  " c.parent_instance_id=t.id) SELECT t.id, COALESCE(e.status,'Unknown'), EXISTS(SELECT 1 FROM"
	                  " instance_locks l WHERE l.instance_id=t.id AND l.locked_until>?2) FROM t JOIN instances i ON"
	                  " i.instance_id=t.id LEFT JOIN executions e ON e.instance_id=i.instance_id AND"
	                  " e.execution_id=i.current_execution_id"
	                : "SELECT i.instance_id, COALESCE(e.status,'Unknown'), EXISTS(SELECT 1 FROM instance_locks l "
	                  "WHERE"
	                  " l.instance_id=i.instance_id AND l.locked_until>?2) FROM instances i LEFT JOIN executions e "
	                  "ON"
	                  " e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id WHERE "
	                  "i.instance_id=?1");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, root, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_tree_row r = {sq_col_text(st, 0), status_of(sq_col_text(st, 1)), sqlite3_column_int(st, 2)};
		if (r.instance_id == NULL)
			continue;
		int x = cb(ud, &r);
		if (x != 0) {
			sq_done(st);
			return x > 0 ? DUROX_OK : x;
		}
	}
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "reading an instance tree");
}

/* Builds the JSON array of ids bound as ?1. */
static int ids_json(store *base, const char *const *ids, size_t n, buf *b)
{
	buf_addc(b, '[');
	for (size_t k = 0; k < n; k++) {
		if (k > 0)
			buf_addc(b, ',');
		buf_add_json_string(b, ids[k], strlen(ids[k]));
	}
	buf_addc(b, ']');
	return buf_oom(b) ? store_fail(base, DUROX_ENOMEM, "out of memory") : DUROX_OK;
}

/* Runs sql with the id array as ?1; *count (may be NULL) receives column 0 of the first row
 * for a SELECT, or sqlite3_changes() for a DELETE. */
static int run_ids(sqlite_store *s, const char *sql, const buf *ids, uint64_t *count, const char *what)
{
	sqlite3_stmt *st = sq_stmt(s, sql);
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, ids->data, (int)ids->len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (count != NULL)
		*count = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : (uint64_t)sqlite3_changes(s->db);
	sq_done(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? DUROX_OK : sq_fail(s, rc, what);
}

static int sq_delete_instances(store *base, const char *const *ids, size_t n, store_delete_counts *out)
{
	sqlite_store *s = (sqlite_store *)base;
	memset(out, 0, sizeof *out);
	buf b;
	buf_init(&b);
	int rc = ids_json(base, ids, n, &b);
	/* worker_queue rows name their instance in a column since migration 0104; before, only
	 * inside the ActivityExecute work item */
	const char *wq = s->base.info.has_worker_identity ? "instance_id"
	                                                  : "json_extract(work_item,'$.ActivityExecute.instance')";
	char sql[256];
	uint64_t oq = 0, wqn = 0;
	/* Counted before deleting, as Duroxide's SQLite provider reports them. */
	if (rc == DUROX_OK)
		rc = run_ids(s, "SELECT count(*) FROM executions WHERE instance_id IN " IDS, &b, &out->executions,
		             "counting executions");
	if (rc == DUROX_OK)
		rc = run_ids(s, "SELECT count(*) FROM history WHERE instance_id IN " IDS, &b, &out->events,
		             "counting history");
	if (rc == DUROX_OK)
		rc = run_ids(s, "SELECT count(*) FROM orchestrator_queue WHERE instance_id IN " IDS, &b, &oq,
		             "counting queue messages");
	if (rc == DUROX_OK) {
		snprintf(sql, sizeof sql, "SELECT count(*) FROM worker_queue WHERE %s IN " IDS, wq);
		rc = run_ids(s, sql, &b, &wqn, "counting queue messages");
	}
	out->queue_messages = oq + wqn;
	static const char *const tables[] = {"history", "executions", "orchestrator_queue", "instance_locks", NULL};
	for (int k = 0; rc == DUROX_OK && tables[k] != NULL; k++) {
		snprintf(sql, sizeof sql, "DELETE FROM %s WHERE instance_id IN " IDS, tables[k]);
		rc = run_ids(s, sql, &b, NULL, "deleting an instance");
	}
	if (rc == DUROX_OK) {
		snprintf(sql, sizeof sql, "DELETE FROM worker_queue WHERE %s IN " IDS, wq);
		rc = run_ids(s, sql, &b, NULL, "deleting an instance");
	}
	if (rc == DUROX_OK && s->base.info.has_kv) {
		rc = run_ids(s, "DELETE FROM kv_store WHERE instance_id IN " IDS, &b, NULL, "deleting an instance");
		int has_delta = 0;
		sqlite3_stmt *st =
		        rc == DUROX_OK
		                ? sq_stmt(s, "SELECT 1 FROM sqlite_master WHERE type='table' AND name='kv_delta'")
		                : NULL;
		if (st != NULL) {
			has_delta = sqlite3_step(st) == SQLITE_ROW;
			sq_done(st);
		} else if (rc == DUROX_OK) {
			rc = sq_stmt_err(s);
		}
		if (rc == DUROX_OK && has_delta)
			rc = run_ids(s, "DELETE FROM kv_delta WHERE instance_id IN " IDS, &b, NULL,
			             "deleting an instance");
	}
	/* last: children reference their parents (the foreign key is checked per statement) */
	if (rc == DUROX_OK)
		rc = run_ids(s, "DELETE FROM instances WHERE instance_id IN " IDS, &b, &out->instances,
		             "deleting an instance");
	s->own_deletes++; /* the change feed checks for deleted rows on its next round */
	buf_free(&b);
	return rc;
}

/* The executions of ?1 prune may delete: not current, not Running, not among the ?2 newest
 * (when ?2 is not NULL), completed before ?3 (when ?3 is not NULL). */
#define PRUNABLE                                                                                                       \
	"(SELECT p.execution_id FROM executions p WHERE p.instance_id=?1 AND p.execution_id<>(SELECT"                  \
	" current_execution_id FROM instances WHERE instance_id=?1) AND p.status<>'Running' AND (?2 IS NULL OR"        \
	" p.execution_id NOT IN (SELECT k.execution_id FROM executions k WHERE k.instance_id=?1 ORDER BY"              \
	" k.execution_id DESC LIMIT COALESCE(?2,0))) AND (?3 IS NULL OR durox_ms(p.completed_at)<?3))"

static int prune_step(sqlite_store *s, const char *sql, const char *id, int has_keep, uint32_t keep, int64_t before,
                      uint64_t *count)
{
	sqlite3_stmt *st = sq_stmt(s, sql);
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (has_keep)
		sqlite3_bind_int64(st, 2, keep);
	if (before != DUROX_NO_TIME)
		sqlite3_bind_int64(st, 3, before);
	int rc = sqlite3_step(st);
	*count = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : (uint64_t)sqlite3_changes(s->db);
	sq_done(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? DUROX_OK : sq_fail(s, rc, "pruning executions");
}

static int sq_prune(store *base, const char *instance_id, int has_keep_last, uint32_t keep_last,
                    int64_t completed_before, store_delete_counts *out)
{
	sqlite_store *s = (sqlite_store *)base;
	memset(out, 0, sizeof *out);
	uint64_t ignored;
	int rc = prune_step(s, "SELECT count(*) FROM history WHERE instance_id=?1 AND execution_id IN " PRUNABLE,
	                    instance_id, has_keep_last, keep_last, completed_before, &out->events);
	if (rc == DUROX_OK)
		rc = prune_step(s, "DELETE FROM history WHERE instance_id=?1 AND execution_id IN " PRUNABLE,
		                instance_id, has_keep_last, keep_last, completed_before, &ignored);
	if (rc == DUROX_OK)
		rc = prune_step(s, "DELETE FROM executions WHERE instance_id=?1 AND execution_id IN " PRUNABLE,
		                instance_id, has_keep_last, keep_last, completed_before, &out->executions);
	s->own_deletes++; /* the change feed checks for deleted rows on its next round */
	return rc;
}

static int sq_statuses(store *base, const char *const *ids, size_t n, store_status_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	buf b;
	buf_init(&b);
	int rc = ids_json(base, ids, n, &b);
	if (rc != DUROX_OK) {
		buf_free(&b);
		return rc;
	}
	sqlite3_stmt *st = sq_stmt(
	        s, "SELECT t.value, i.instance_id IS NOT NULL, COALESCE(e.status,'Unknown'), e.output,"
	           " CASE WHEN e.status='Failed' THEN durox_failure_kind((SELECT h.event_data FROM history h WHERE"
	           " h.instance_id=i.instance_id AND h.execution_id=i.current_execution_id AND"
	           " h.event_type='OrchestrationFailed' ORDER BY h.event_id DESC LIMIT 1), e.output) END,"
	           " CASE WHEN i.instance_id IS NULL THEN EXISTS(SELECT 1 FROM orchestrator_queue q WHERE"
	           " q.instance_id=t.value AND q.work_item LIKE '{\"StartOrchestration\"%') ELSE 0 END"
	           " FROM json_each(?1) t LEFT JOIN instances i ON i.instance_id=t.value LEFT JOIN executions e ON"
	           " e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id");
	if (st == NULL) {
		buf_free(&b);
		return sq_stmt_err(s);
	}
	sqlite3_bind_text(st, 1, b.data, (int)b.len, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_status_row r = {0};
		r.instance_id = sq_col_text(st, 0);
		r.exists = sqlite3_column_int(st, 1);
		r.pending_start = sqlite3_column_int(st, 5);
		r.status = r.exists          ? status_of(sq_col_text(st, 2))
		           : r.pending_start ? DUROX_STATUS_RUNNING
		                             : DUROX_STATUS_NOT_FOUND;
		r.output = sq_col_text(st, 3);
		const char *fk = sq_col_text(st, 4);
		r.failure_kind = fk != NULL ? durox_failure_kind_parse(fk) : DUROX_FAILURE_NONE;
		if (r.failure_kind < 0)
			r.failure_kind = DUROX_FAILURE_APPLICATION;
		if (r.instance_id == NULL)
			continue;
		int x = cb(ud, &r);
		if (x != 0) {
			sq_done(st);
			buf_free(&b);
			return x > 0 ? DUROX_OK : x;
		}
	}
	sq_done(st);
	buf_free(&b);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "reading instance statuses");
}

const store_ops_vtable sq_ops_vtable = {
        sq_begin,   sq_commit,           sq_rollback, sq_instance_state, sq_queued_items, sq_enqueue,
        sq_tree,    sq_delete_instances, sq_prune,    sq_statuses,       sqj_create,      sqj_exists,
        sqj_insert, sqj_add_targets,     sqj_update,  sqj_list,          sqj_targets,     sqj_set_target,
        5,
};
