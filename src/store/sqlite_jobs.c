/*
 * sqlite_jobs.c - the bulk-job journal in a SQLite store: our own tables durox_meta,
 * durox_jobs and durox_job_targets (never the runtime's; created on first use inside the
 * caller's write transaction), and the reads and writes the engine's job runner makes
 * (src/engine/jobs.c). Times are INTEGER ms. Contracts in store/ops.h; referenced by
 * sq_ops_vtable (sqlite_ops.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "store/sqlite_internal.h"
#include "store/sqlite_jobs.h"

static const char journal_schema[] =
        "CREATE TABLE IF NOT EXISTS durox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT OR IGNORE INTO durox_meta (key, value) VALUES ('journal_version', '1');"
        "CREATE TABLE IF NOT EXISTS durox_jobs ("
        " job_id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " kind TEXT NOT NULL,"
        " state TEXT NOT NULL,"
        " request TEXT NOT NULL,"
        " description TEXT NOT NULL DEFAULT '',"
        " total INTEGER NOT NULL DEFAULT 0,"
        " done INTEGER NOT NULL DEFAULT 0,"
        " failed INTEGER NOT NULL DEFAULT 0,"
        " no_subscription INTEGER NOT NULL DEFAULT 0,"
        " rate REAL NOT NULL DEFAULT 0,"
        " batch_size INTEGER NOT NULL DEFAULT 0,"
        " owner TEXT,"
        " heartbeat_at INTEGER,"
        " stop_requested INTEGER NOT NULL DEFAULT 0,"
        " created_at INTEGER NOT NULL,"
        " started_at INTEGER,"
        " finished_at INTEGER,"
        " last_error TEXT);"
        "CREATE TABLE IF NOT EXISTS durox_job_targets ("
        " job_id INTEGER NOT NULL,"
        " seq INTEGER NOT NULL,"
        " instance_id TEXT NOT NULL,"
        " state TEXT NOT NULL DEFAULT 'pending',"
        " code TEXT,"
        " message TEXT,"
        " result TEXT,"
        " done_at INTEGER,"
        " PRIMARY KEY (job_id, seq)) WITHOUT ROWID;";

int sqj_create(store *base)
{
	sqlite_store *s = (sqlite_store *)base;
	int exists;
	int rc = sqj_exists(base, &exists);
	if (rc != DUROX_OK || exists)
		return rc;
	char *msg = NULL;
	int src = sqlite3_exec(s->db, journal_schema, NULL, NULL, &msg);
	if (src != SQLITE_OK) {
		rc = sq_fail(s, src, "creating the job journal");
		if (msg != NULL && rc != DUROX_EBUSY)
			store_fail(base, rc, "creating the job journal failed: %s", msg);
		sqlite3_free(msg);
	}
	return rc;
}

int sqj_exists(store *base, int *exists)
{
	sqlite_store *s = (sqlite_store *)base;
	*exists = 0;
	sqlite3_stmt *st = sq_stmt(s, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN"
	                              " ('durox_jobs','durox_job_targets')");
	if (st == NULL)
		return sq_stmt_err(s);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*exists = sqlite3_column_int(st, 0) == 2;
	sq_done(st);
	return rc == SQLITE_ROW ? DUROX_OK : sq_fail(s, rc, "reading the schema");
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_time(sqlite3_stmt *st, int i, int64_t v)
{
	if (v != DUROX_NO_TIME)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

int sqj_insert(store *base, const store_job *j, int64_t *job_id)
{
	sqlite_store *s = (sqlite_store *)base;
	*job_id = 0;
	sqlite3_stmt *st = sq_stmt(s, "INSERT INTO durox_jobs (kind, state, request, description, total, rate,"
	                              " batch_size, owner, heartbeat_at, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, j->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, j->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, j->request, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, j->description ? j->description : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)j->total);
	sqlite3_bind_double(st, 6, j->rate);
	sqlite3_bind_int64(st, 7, j->batch_size);
	bind_text_or_null(st, 8, j->owner);
	bind_time(st, 9, j->heartbeat_at);
	sqlite3_bind_int64(st, 10, j->created_at);
	int rc = sqlite3_step(st);
	sq_done(st);
	if (rc != SQLITE_DONE)
		return sq_fail(s, rc, "recording a job");
	*job_id = sqlite3_last_insert_rowid(s->db);
	return DUROX_OK;
}

int sqj_add_targets(store *base, int64_t job_id, uint64_t first_seq, const store_target *t, size_t n)
{
	sqlite_store *s = (sqlite_store *)base;
	for (size_t k = 0; k < n; k++) {
		sqlite3_stmt *st = sq_stmt(s, "INSERT INTO durox_job_targets (job_id, seq, instance_id, state, code,"
		                              " message, result) VALUES (?,?,?,?,?,?,?)");
		if (st == NULL)
			return sq_stmt_err(s);
		sqlite3_bind_int64(st, 1, job_id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)(first_seq + k));
		sqlite3_bind_text(st, 3, t[k].instance_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, t[k].state ? t[k].state : "pending", -1, SQLITE_STATIC);
		bind_text_or_null(st, 5, t[k].code);
		bind_text_or_null(st, 6, t[k].message);
		bind_text_or_null(st, 7, t[k].result);
		int rc = sqlite3_step(st);
		sq_done(st);
		if (rc != SQLITE_DONE)
			return sq_fail(s, rc, "recording job targets");
	}
	return DUROX_OK;
}

int sqj_update(store *base, const store_job *j)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = sq_stmt(s, "UPDATE durox_jobs SET state=?, total=?, done=?, failed=?, no_subscription=?,"
	                              " rate=?, batch_size=?, owner=?, heartbeat_at=?, stop_requested=?,"
	                              " started_at=?, finished_at=?, last_error=? WHERE job_id=?");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, j->state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)j->total);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)j->done);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)j->failed);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)j->no_subscription);
	sqlite3_bind_double(st, 6, j->rate);
	sqlite3_bind_int64(st, 7, j->batch_size);
	bind_text_or_null(st, 8, j->owner);
	bind_time(st, 9, j->heartbeat_at);
	sqlite3_bind_int(st, 10, j->stop_requested);
	bind_time(st, 11, j->started_at);
	bind_time(st, 12, j->finished_at);
	bind_text_or_null(st, 13, j->last_error);
	sqlite3_bind_int64(st, 14, j->job_id);
	int rc = sqlite3_step(st);
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "updating a job");
}

int sqj_list(store *base, int64_t job_id, const char *state, const char *kind, uint32_t limit, store_job_cb cb,
             void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = sq_stmt(s, "SELECT job_id, kind, state, request, description, total, done, failed,"
	                              " no_subscription, rate, batch_size, owner, heartbeat_at, stop_requested,"
	                              " created_at, started_at, finished_at, last_error FROM durox_jobs WHERE"
	                              " (?1=0 OR job_id=?1) AND (?2 IS NULL OR state=?2) AND (?3 IS NULL OR kind=?3)"
	                              " ORDER BY job_id DESC LIMIT ?4");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, job_id);
	bind_text_or_null(st, 2, state);
	bind_text_or_null(st, 3, kind);
	sqlite3_bind_int64(st, 4, limit > 0 ? (sqlite3_int64)limit : -1);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_job j = {0};
		j.job_id = sqlite3_column_int64(st, 0);
		j.kind = sq_col_text(st, 1);
		j.state = sq_col_text(st, 2);
		j.request = sq_col_text(st, 3);
		j.description = sq_col_text(st, 4);
		j.total = (uint64_t)sqlite3_column_int64(st, 5);
		j.done = (uint64_t)sqlite3_column_int64(st, 6);
		j.failed = (uint64_t)sqlite3_column_int64(st, 7);
		j.no_subscription = (uint64_t)sqlite3_column_int64(st, 8);
		j.rate = sqlite3_column_double(st, 9);
		j.batch_size = (uint32_t)sqlite3_column_int64(st, 10);
		j.owner = sq_col_text(st, 11);
		j.heartbeat_at = sq_col_time(st, 12);
		j.stop_requested = sqlite3_column_int(st, 13);
		j.created_at = sq_col_time(st, 14);
		j.started_at = sq_col_time(st, 15);
		j.finished_at = sq_col_time(st, 16);
		j.last_error = sq_col_text(st, 17);
		if (j.kind == NULL || j.state == NULL || j.request == NULL)
			continue;
		int x = cb(ud, &j);
		if (x != 0) {
			sq_done(st);
			return x > 0 ? DUROX_OK : x;
		}
	}
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "reading jobs");
}

int sqj_targets(store *base, int64_t job_id, uint64_t after_seq, uint32_t limit, int pending_only, store_target_cb cb,
                void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st =
	        sq_stmt(s, pending_only ? "SELECT seq, instance_id, state, code, message, result FROM durox_job_targets"
	                                  " WHERE job_id=?1 AND seq>?2 AND state='pending' ORDER BY seq LIMIT ?3"
	                                : "SELECT seq, instance_id, state, code, message, result FROM durox_job_targets"
	                                  " WHERE job_id=?1 AND seq>?2 ORDER BY seq LIMIT ?3");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, job_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)after_seq);
	sqlite3_bind_int64(st, 3, limit > 0 ? (sqlite3_int64)limit : -1);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_target t = {(uint64_t)sqlite3_column_int64(st, 0),
		                  sq_col_text(st, 1),
		                  sq_col_text(st, 2),
		                  sq_col_text(st, 3),
		                  sq_col_text(st, 4),
		                  sq_col_text(st, 5)};
		if (t.instance_id == NULL || t.state == NULL)
			continue;
		int x = cb(ud, &t);
		if (x != 0) {
			sq_done(st);
			return x > 0 ? DUROX_OK : x;
		}
	}
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "reading job targets");
}

int sqj_set_target(store *base, int64_t job_id, uint64_t seq, const store_target *t, int64_t done_at)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = sq_stmt(s, "UPDATE durox_job_targets SET state=?, code=?, message=?, result=?, done_at=?"
	                              " WHERE job_id=? AND seq=?");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, t->state, -1, SQLITE_STATIC);
	bind_text_or_null(st, 2, t->code);
	bind_text_or_null(st, 3, t->message);
	bind_text_or_null(st, 4, t->result);
	bind_time(st, 5, done_at);
	sqlite3_bind_int64(st, 6, job_id);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)seq);
	int rc = sqlite3_step(st);
	sq_done(st);
	if (rc != SQLITE_DONE)
		return sq_fail(s, rc, "recording a job target");
	return sqlite3_changes(s->db) == 1 ? DUROX_OK
	                                   : store_fail(base, DUROX_ECORRUPT, "job %lld has no target #%llu",
	                                                (long long)job_id, (unsigned long long)seq);
}
