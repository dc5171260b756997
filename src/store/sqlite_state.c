/*
 * sqlite_state.c - the durable state of the real-time consumers in a SQLite store
 * (store/provider_state.h): our own tables durox_dead_letters, durox_cursors and
 * durox_rule_runs, never the runtime's, created on first use inside the caller's write
 * transaction. Times are INTEGER ms. Referenced by the provider's state vtable (sqlite.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store/provider_state.h"
#include "store/sqlite_internal.h"

static const char state_schema[] =
        "CREATE TABLE IF NOT EXISTS durox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT OR IGNORE INTO durox_meta (key, value) VALUES ('stream_state_version', '1');"
        "CREATE TABLE IF NOT EXISTS durox_dead_letters ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " created_at INTEGER NOT NULL,"
        " source TEXT NOT NULL,"
        " url TEXT NOT NULL,"
        " idempotency_key TEXT NOT NULL,"
        " payload TEXT NOT NULL,"
        " items INTEGER NOT NULL,"
        " attempts INTEGER NOT NULL,"
        " last_status INTEGER,"
        " last_error TEXT);"
        "CREATE TABLE IF NOT EXISTS durox_cursors ("
        " name TEXT PRIMARY KEY,"
        " cursor TEXT NOT NULL,"
        " updated_at INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS durox_rule_runs ("
        " rule TEXT NOT NULL,"
        " key TEXT NOT NULL,"
        " state TEXT NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " error TEXT,"
        " instance_id TEXT,"
        " event_type TEXT,"
        " started_at INTEGER,"
        " finished_at INTEGER,"
        " PRIMARY KEY (rule, key)) WITHOUT ROWID;"
        "CREATE INDEX IF NOT EXISTS durox_rule_runs_started ON durox_rule_runs (rule, started_at);";

static int st_exists(store *base, int *exists)
{
	sqlite_store *s = (sqlite_store *)base;
	*exists = 0;
	sqlite3_stmt *st = sq_stmt(s, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN"
	                              " ('durox_dead_letters','durox_cursors','durox_rule_runs')");
	if (st == NULL)
		return sq_stmt_err(s);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*exists = sqlite3_column_int(st, 0) == 3;
	sq_done(st);
	return rc == SQLITE_ROW ? DUROX_OK : sq_fail(s, rc, "reading the schema");
}

static int st_create(store *base)
{
	sqlite_store *s = (sqlite_store *)base;
	int exists;
	int rc = st_exists(base, &exists);
	if (rc != DUROX_OK || exists)
		return rc;
	char *msg = NULL;
	int src = sqlite3_exec(s->db, state_schema, NULL, NULL, &msg);
	if (src != SQLITE_OK) {
		rc = sq_fail(s, src, "creating the stream state tables");
		if (msg != NULL && rc != DUROX_EBUSY)
			store_fail(base, rc, "creating the stream state tables failed: %s", msg);
		sqlite3_free(msg);
	}
	return rc;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
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

/* Steps a statement that returns no rows; resets it. */
static int run_done(sqlite_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, what);
}

static int dl_add(store *base, const store_dead_letter *d, int64_t *id)
{
	sqlite_store *s = (sqlite_store *)base;
	*id = 0;
	sqlite3_stmt *st = sq_stmt(s, "INSERT INTO durox_dead_letters (created_at, source, url, idempotency_key,"
	                              " payload, items, attempts, last_status, last_error) VALUES (?,?,?,?,?,?,?,?,?)");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, d->created_at);
	bind_text(st, 2, d->source);
	bind_text(st, 3, d->url);
	bind_text(st, 4, d->key);
	bind_text(st, 5, d->payload);
	sqlite3_bind_int64(st, 6, d->items);
	sqlite3_bind_int(st, 7, d->attempts);
	if (d->last_status > 0)
		sqlite3_bind_int64(st, 8, d->last_status);
	else
		sqlite3_bind_null(st, 8);
	bind_text(st, 9, d->last_error);
	int rc = run_done(s, st, "recording a dead letter");
	if (rc == DUROX_OK)
		*id = sqlite3_last_insert_rowid(s->db);
	return rc;
}

static int dl_list(store *base, const char *source, int64_t after, uint32_t limit, store_dead_letter_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = sq_stmt(s, "SELECT id, created_at, source, url, idempotency_key, payload, items, attempts,"
	                              " last_status, last_error FROM durox_dead_letters WHERE id > ?1 AND"
	                              " (?2 IS NULL OR source = ?2) ORDER BY id LIMIT ?3");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, after);
	bind_text(st, 2, source);
	sqlite3_bind_int64(st, 3, limit ? (sqlite3_int64)limit : -1);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_dead_letter d;
		d.id = sqlite3_column_int64(st, 0);
		d.created_at = sqlite3_column_int64(st, 1);
		d.source = sq_col_text(st, 2);
		d.url = sq_col_text(st, 3);
		d.key = sq_col_text(st, 4);
		d.payload = sq_col_text(st, 5);
		d.items = (uint32_t)sqlite3_column_int64(st, 6);
		d.attempts = sqlite3_column_int(st, 7);
		d.last_status = (long)sqlite3_column_int64(st, 8);
		d.last_error = sq_col_text(st, 9);
		int r = cb(ud, &d);
		if (r != 0) {
			sq_done(st);
			return r > 0 ? DUROX_OK : r;
		}
	}
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "reading dead letters");
}

static int dl_delete(store *base, int64_t id, int *found)
{
	sqlite_store *s = (sqlite_store *)base;
	*found = 0;
	sqlite3_stmt *st = sq_stmt(s, "DELETE FROM durox_dead_letters WHERE id = ?1");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, id);
	int rc = run_done(s, st, "removing a dead letter");
	if (rc == DUROX_OK)
		*found = sqlite3_changes(s->db) > 0;
	return rc;
}

static int cur_get(store *base, const char *name, char **out)
{
	sqlite_store *s = (sqlite_store *)base;
	*out = NULL;
	sqlite3_stmt *st = sq_stmt(s, "SELECT cursor FROM durox_cursors WHERE name = ?1");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int err = DUROX_OK;
	if (rc == SQLITE_ROW) {
		const char *c = sq_col_text(st, 0);
		if (c != NULL && (*out = strdup(c)) == NULL)
			err = store_fail(base, DUROX_ENOMEM, "out of memory");
	} else if (rc != SQLITE_DONE) {
		err = sq_fail(s, rc, "reading a cursor");
	}
	sq_done(st);
	return err;
}

static int cur_put(store *base, const char *name, const char *cursor, int64_t at)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = sq_stmt(s, "INSERT INTO durox_cursors (name, cursor, updated_at) VALUES (?1, ?2, ?3)"
	                              " ON CONFLICT (name) DO UPDATE SET cursor = ?2, updated_at = ?3");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, cursor, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, at);
	return run_done(s, st, "saving a cursor");
}

#define RUN_COLUMNS "rule, key, state, attempts, error, instance_id, event_type, started_at, finished_at"

static void read_run(sqlite3_stmt *st, store_rule_run *r)
{
	r->rule = sq_col_text(st, 0);
	r->key = sq_col_text(st, 1);
	r->state = sq_col_text(st, 2);
	r->attempts = sqlite3_column_int(st, 3);
	r->error = sq_col_text(st, 4);
	r->instance_id = sq_col_text(st, 5);
	r->event_type = sq_col_text(st, 6);
	r->started_at = sq_col_time(st, 7);
	r->finished_at = sq_col_time(st, 8);
}

static int run_get(store *base, const char *rule, const char *key, int *found, store_rule_run *r)
{
	sqlite_store *s = (sqlite_store *)base;
	*found = 0;
	sqlite3_stmt *st = sq_stmt(s, "SELECT " RUN_COLUMNS " FROM durox_rule_runs WHERE rule = ?1 AND key = ?2");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, rule, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int err = DUROX_OK;
	if (rc == SQLITE_ROW) {
		store_rule_run tmp;
		read_run(st, &tmp);
		/* one block holding the strings */
		const char *parts[] = {tmp.rule, tmp.key, tmp.state, tmp.error, tmp.instance_id, tmp.event_type};
		size_t total = 0;
		for (size_t i = 0; i < 6; i++)
			total += parts[i] ? strlen(parts[i]) + 1 : 0;
		free(s->state_buf);
		s->state_buf = malloc(total ? total : 1);
		if (s->state_buf == NULL) {
			err = store_fail(base, DUROX_ENOMEM, "out of memory");
		} else {
			char *p = s->state_buf;
			const char **dst[] = {&r->rule, &r->key, &r->state, &r->error, &r->instance_id, &r->event_type};
			for (size_t i = 0; i < 6; i++) {
				if (parts[i] == NULL) {
					*dst[i] = NULL;
					continue;
				}
				size_t n = strlen(parts[i]) + 1;
				memcpy(p, parts[i], n);
				*dst[i] = p;
				p += n;
			}
			r->attempts = tmp.attempts;
			r->started_at = tmp.started_at;
			r->finished_at = tmp.finished_at;
			*found = 1;
		}
	} else if (rc != SQLITE_DONE) {
		err = sq_fail(s, rc, "reading a rule run");
	}
	sq_done(st);
	return err;
}

static int run_put(store *base, const store_rule_run *r)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st =
	        sq_stmt(s, "INSERT OR REPLACE INTO durox_rule_runs (" RUN_COLUMNS ") VALUES (?,?,?,?,?,?,?,?,?)");
	if (st == NULL)
		return sq_stmt_err(s);
	bind_text(st, 1, r->rule);
	bind_text(st, 2, r->key);
	bind_text(st, 3, r->state);
	sqlite3_bind_int(st, 4, r->attempts);
	bind_text(st, 5, r->error);
	bind_text(st, 6, r->instance_id);
	bind_text(st, 7, r->event_type);
	bind_time(st, 8, r->started_at);
	bind_time(st, 9, r->finished_at);
	return run_done(s, st, "recording a rule run");
}

static int run_list(store *base, const char *rule, const char *state, int64_t since, uint32_t limit,
                    store_rule_run_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = sq_stmt(s, "SELECT " RUN_COLUMNS " FROM durox_rule_runs WHERE (?1 IS NULL OR rule = ?1) AND"
	                              " (?2 IS NULL OR state = ?2) AND coalesce(started_at, 0) >= ?3"
	                              " ORDER BY started_at DESC, key DESC LIMIT ?4");
	if (st == NULL)
		return sq_stmt_err(s);
	bind_text(st, 1, rule);
	bind_text(st, 2, state);
	sqlite3_bind_int64(st, 3, since == DUROX_NO_TIME ? 0 : since);
	sqlite3_bind_int64(st, 4, limit ? (sqlite3_int64)limit : -1);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_rule_run r;
		read_run(st, &r);
		int c = cb(ud, &r);
		if (c != 0) {
			sq_done(st);
			return c > 0 ? DUROX_OK : c;
		}
	}
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "reading rule runs");
}

static int run_count_since(store *base, const char *rule, int64_t since, uint64_t *n)
{
	sqlite_store *s = (sqlite_store *)base;
	*n = 0;
	sqlite3_stmt *st = sq_stmt(s, "SELECT count(*) FROM durox_rule_runs WHERE rule = ?1 AND started_at >= ?2 AND"
	                              " state <> 'skipped'");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, rule, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(st, 0);
	sq_done(st);
	return rc == SQLITE_ROW ? DUROX_OK : sq_fail(s, rc, "counting rule runs");
}

const store_state_vtable sq_state_vtable = {st_create, st_exists, dl_add,  dl_list,  dl_delete,      cur_get,
                                            cur_put,   run_get,   run_put, run_list, run_count_since};
