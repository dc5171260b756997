/*
 * sqlite_audit.c - the audit log in a SQLite store: our own table durox_audit_log (never
 * the runtime's), created on first use inside the caller's write transaction, with
 * triggers that refuse UPDATE and DELETE so that nothing in this process (or any client
 * that keeps the schema) can rewrite history; someone who drops the triggers is still
 * caught by the hash chain (src/engine/audit.c). Contracts in store/audit.h; referenced by
 * the SQLite provider (sqlite.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "store/audit.h"
#include "store/sqlite_internal.h"
#include "util/buf.h"

static const char audit_schema[] =
        "CREATE TABLE IF NOT EXISTS durox_audit_log ("
        " seq INTEGER PRIMARY KEY,"
        " at_ms INTEGER NOT NULL,"
        " user_id TEXT,"
        " roles TEXT NOT NULL,"
        " source_ip TEXT,"
        " context_reason TEXT,"
        " operation TEXT NOT NULL,"
        " target TEXT,"
        " decision TEXT NOT NULL,"
        " reason TEXT,"
        " policy TEXT,"
        " params TEXT,"
        " result TEXT,"
        " prev_hash TEXT NOT NULL,"
        " hash TEXT NOT NULL);"
        "CREATE INDEX IF NOT EXISTS durox_audit_log_at ON durox_audit_log (at_ms);"
        "CREATE TRIGGER IF NOT EXISTS durox_audit_log_no_update BEFORE UPDATE ON durox_audit_log"
        " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
        "CREATE TRIGGER IF NOT EXISTS durox_audit_log_no_delete BEFORE DELETE ON durox_audit_log"
        " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;";

static int sqa_exists(store *base, int *exists)
{
	sqlite_store *s = (sqlite_store *)base;
	*exists = 0;
	sqlite3_stmt *st =
	        sq_stmt(s, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='durox_audit_log'");
	if (st == NULL)
		return sq_stmt_err(s);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*exists = sqlite3_column_int(st, 0) == 1;
	sq_done(st);
	return rc == SQLITE_ROW ? DUROX_OK : sq_fail(s, rc, "reading the schema");
}

static int sqa_create(store *base)
{
	sqlite_store *s = (sqlite_store *)base;
	int exists;
	int rc = sqa_exists(base, &exists);
	if (rc != DUROX_OK || exists)
		return rc;
	char *msg = NULL;
	int src = sqlite3_exec(s->db, audit_schema, NULL, NULL, &msg);
	if (src != SQLITE_OK) {
		rc = sq_fail(s, src, "creating the audit log");
		if (msg != NULL && rc != DUROX_EBUSY)
			store_fail(base, rc, "creating the audit log failed: %s", msg);
	}
	sqlite3_free(msg);
	return rc;
}

static int sqa_head(store *base, uint64_t *seq, char hash[65])
{
	sqlite_store *s = (sqlite_store *)base;
	*seq = 0;
	hash[0] = '\0';
	sqlite3_stmt *st = sq_stmt(s, "SELECT seq, hash FROM durox_audit_log ORDER BY seq DESC LIMIT 1");
	if (st == NULL)
		return sq_stmt_err(s);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*seq = (uint64_t)sqlite3_column_int64(st, 0);
		const char *h = sq_col_text(st, 1);
		snprintf(hash, 65, "%s", h != NULL ? h : "");
		rc = SQLITE_DONE;
	}
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "reading the audit log");
}

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static int sqa_append(store *base, const store_audit_row *r)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = sq_stmt(s, "INSERT INTO durox_audit_log (seq, at_ms, user_id, roles, source_ip,"
	                              " context_reason, operation, target, decision, reason, policy, params, result,"
	                              " prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->seq);
	sqlite3_bind_int64(st, 2, r->at_ms);
	bind_opt(st, 3, r->user_id);
	bind_opt(st, 4, r->roles);
	bind_opt(st, 5, r->source_ip);
	bind_opt(st, 6, r->context_reason);
	bind_opt(st, 7, r->operation);
	bind_opt(st, 8, r->target);
	bind_opt(st, 9, r->decision);
	bind_opt(st, 10, r->reason);
	bind_opt(st, 11, r->policy);
	bind_opt(st, 12, r->params);
	bind_opt(st, 13, r->result);
	bind_opt(st, 14, r->prev_hash);
	bind_opt(st, 15, r->hash);
	int rc = sqlite3_step(st);
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "appending to the audit log");
}

static int sqa_read(store *base, const store_audit_query *q, store_audit_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	int exists;
	int rc = sqa_exists(base, &exists);
	if (rc != DUROX_OK || !exists)
		return rc;
	buf sql;
	buf_init(&sql);
	buf_adds(&sql, "SELECT seq, at_ms, user_id, roles, source_ip, context_reason, operation, target, decision,"
	               " reason, policy, params, result, prev_hash, hash FROM durox_audit_log WHERE 1");
	if (q->since != DUROX_NO_TIME)
		buf_adds(&sql, " AND at_ms >= ?1");
	if (q->user_id != NULL)
		buf_adds(&sql, " AND user_id = ?2");
	if (q->operation != NULL)
		buf_adds(&sql, " AND operation = ?3");
	buf_adds(&sql, q->newest_first ? " ORDER BY seq DESC" : " ORDER BY seq");
	if (q->limit > 0)
		buf_adds(&sql, " LIMIT ?4");
	if (buf_oom(&sql)) {
		buf_free(&sql);
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	}
	sqlite3_stmt *st = sq_stmt(s, sql.data);
	buf_free(&sql);
	if (st == NULL)
		return sq_stmt_err(s);
	if (q->since != DUROX_NO_TIME)
		sqlite3_bind_int64(st, 1, q->since);
	if (q->user_id != NULL)
		sqlite3_bind_text(st, 2, q->user_id, -1, SQLITE_STATIC);
	if (q->operation != NULL)
		sqlite3_bind_text(st, 3, q->operation, -1, SQLITE_STATIC);
	if (q->limit > 0)
		sqlite3_bind_int64(st, 4, q->limit);
	int src, stop = 0;
	while (!stop && (src = sqlite3_step(st)) == SQLITE_ROW) {
		store_audit_row r = {
		        .seq = (uint64_t)sqlite3_column_int64(st, 0),
		        .at_ms = sqlite3_column_int64(st, 1),
		        .user_id = sq_col_text(st, 2),
		        .roles = sq_col_text(st, 3),
		        .source_ip = sq_col_text(st, 4),
		        .context_reason = sq_col_text(st, 5),
		        .operation = sq_col_text(st, 6),
		        .target = sq_col_text(st, 7),
		        .decision = sq_col_text(st, 8),
		        .reason = sq_col_text(st, 9),
		        .policy = sq_col_text(st, 10),
		        .params = sq_col_text(st, 11),
		        .result = sq_col_text(st, 12),
		        .prev_hash = sq_col_text(st, 13),
		        .hash = sq_col_text(st, 14),
		};
		int r2 = cb(ud, &r);
		if (r2 < 0) {
			sq_done(st);
			return DUROX_EABORT;
		}
		stop = r2 > 0;
	}
	sq_done(st);
	if (!stop && src != SQLITE_DONE)
		return sq_fail(s, src, "reading the audit log");
	return DUROX_OK;
}

const store_audit_vtable sq_audit_vtable = {sqa_create, sqa_exists, sqa_head, sqa_append, sqa_read};
