/*
 * sqlite.c - the SQLite store provider's connection: opening the file the runtime writes
 * (never creating it), checking that it is a Duroxide store, detecting the schema
 * generation, the statement cache, error mapping, and the SQL functions durox_ms(x) (any
 * stored time -> ms), durox_event_ts(event, created_at) and durox_failure_kind(event,
 * output). Queries live in sqlite_read.c, filter compilation in sqlite_filter.c.
 * Used by the engine through store_sqlite_open().
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/format.h"
#include "store/sqlite_internal.h"
#include "util/timeutil.h"

/* Maps a SQLite result code to a durox code and message. */
int sq_fail(sqlite_store *s, int src, const char *what)
{
	int rc;
	if ((src & 0xFF) == SQLITE_BUSY && s->busy_interrupted)
		src = SQLITE_INTERRUPT; /* the wait for the lock was interrupted (sq_busy) */
	s->busy_interrupted = 0;
	switch (src & 0xFF) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		s->last_rc = DUROX_EBUSY;
		return store_fail(&s->base, DUROX_EBUSY,
		                  "store is busy: %s stayed locked for more than %d ms; retry later", s->location,
		                  s->busy_timeout_ms);
	case SQLITE_INTERRUPT:
		s->last_rc = DUROX_EABORT;
		return store_fail(&s->base, DUROX_EABORT, "interrupted: %s stopped", what);
	case SQLITE_NOMEM: rc = DUROX_ENOMEM; break;
	case SQLITE_READONLY: rc = DUROX_EDENIED; break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: rc = DUROX_ECORRUPT; break;
	default: rc = DUROX_EIO;
	}
	s->last_rc = rc;
	return store_fail(&s->base, rc, "%s failed: %s", what, sqlite3_errmsg(s->db));
}

int sq_check_file(sqlite_store *s)
{
	if (s->file_ino == 0 && s->file_dev == 0)
		return DUROX_OK;
	struct stat sb;
	const char *what = NULL;
	if (s->gone)
		what = "was deleted or replaced";
	else if (stat(s->location, &sb) != 0)
		what = "was deleted";
	else if ((uint64_t)sb.st_ino != s->file_ino || (uint64_t)sb.st_dev != s->file_dev)
		what = "was replaced by another file";
	if (what == NULL)
		return DUROX_OK;
	s->gone = 1;
	s->last_rc = DUROX_EGONE;
	/* nothing was read or written: a write to the old file would be lost, a read would show
	 * a store that no longer exists */
	return store_fail(&s->base, DUROX_EGONE, "store '%s' %s while it was open; open it again", s->location, what);
}

/* The durox code for a NULL from stmt_get. */
int sq_stmt_err(sqlite_store *s) { return s->last_rc != 0 ? s->last_rc : DUROX_EIO; }

/* Returns a prepared statement for sql from the cache (preparing it on a miss), reset and
 * with no bindings. NULL on error (message set). */
sqlite3_stmt *sq_stmt(sqlite_store *s, const char *sql)
{
	/* a statement that starts a transaction (or runs in autocommit mode) checks the file
	 * first; statements inside a transaction see the file the transaction began on */
	if (sqlite3_get_autocommit(s->db) && sq_check_file(s) != DUROX_OK)
		return NULL;
	cached_stmt *victim = &s->cache[0];
	for (int i = 0; i < CACHE_SIZE; i++) {
		cached_stmt *c = &s->cache[i];
		if (c->sql != NULL && strcmp(c->sql, sql) == 0) {
			c->used = ++s->clock;
			return c->stmt;
		}
		if (c->sql == NULL || (victim->sql != NULL && c->used < victim->used))
			victim = c;
	}
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
	if (rc != SQLITE_OK) {
		sq_fail(s, rc, "preparing a query");
		sqlite3_finalize(stmt);
		return NULL;
	}
	char *copy = strdup(sql);
	if (copy == NULL) {
		sqlite3_finalize(stmt);
		s->last_rc = DUROX_ENOMEM;
		store_fail(&s->base, DUROX_ENOMEM, "out of memory");
		return NULL;
	}
	if (victim->sql != NULL) {
		sqlite3_finalize(victim->stmt);
		free(victim->sql);
	}
	victim->sql = copy;
	victim->stmt = stmt;
	victim->used = ++s->clock;
	return stmt;
}

/* Ends a statement's use: reset (which ends its read transaction) and clear bindings. */
void sq_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

int64_t sq_col_time(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? DUROX_NO_TIME : sqlite3_column_int64(st, i);
}

const char *sq_col_text(sqlite3_stmt *st, int i) { return (const char *)sqlite3_column_text(st, i); }

/* ---- SQL functions ---------------------------------------------------------------- */

/* durox_ms(x): integer -> itself (ms); real -> truncated; text -> parsed timestamp or
 * integer digits; anything unreadable -> NULL. */
static void fn_ms(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	sqlite3_value *v = argv[0];
	switch (sqlite3_value_type(v)) {
	case SQLITE_INTEGER: sqlite3_result_int64(ctx, sqlite3_value_int64(v)); return;
	case SQLITE_FLOAT: sqlite3_result_int64(ctx, (sqlite3_int64)sqlite3_value_double(v)); return;
	case SQLITE_TEXT: {
		const char *t = (const char *)sqlite3_value_text(v);
		int n = sqlite3_value_bytes(v);
		int64_t ms;
		if (t != NULL && time_parse_iso(t, (size_t)n, &ms) == 0) {
			sqlite3_result_int64(ctx, ms);
			return;
		}
		if (t != NULL && n > 0 && n < 20) {
			int64_t acc = 0;
			int ok = 1;
			for (int i = 0; i < n; i++) {
				if (t[i] < '0' || t[i] > '9') {
					ok = 0;
					break;
				}
				acc = acc * 10 + (t[i] - '0');
			}
			if (ok) {
				sqlite3_result_int64(ctx, acc);
				return;
			}
		}
		sqlite3_result_null(ctx);
		return;
	}
	default: sqlite3_result_null(ctx);
	}
}

/* durox_event_ts(event_json, created_at): the event's own timestamp_ms, else the stored
 * time. Duroxide writes the common fields first (event_id, source_event_id, instance_id,
 * execution_id, timestamp_ms), and inside JSON strings every quote is escaped, so the
 * first '"timestamp_ms":' is the top-level member: no need to parse a 1 MiB payload. */
static void fn_event_ts(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	const char *t = (const char *)sqlite3_value_text(argv[0]);
	if (t != NULL) {
		const char *p = strstr(t, "\"timestamp_ms\":");
		if (p != NULL) {
			p += 15;
			while (*p == ' ')
				p++;
			int64_t v = 0;
			int digits = 0;
			while (*p >= '0' && *p <= '9' && digits < 19) {
				v = v * 10 + (*p++ - '0');
				digits++;
			}
			if (digits > 0) {
				sqlite3_result_int64(ctx, v);
				return;
			}
		}
	}
	fn_ms(ctx, 1, argv + 1);
}

/* durox_failure_kind(event_json, output) -> 'cancelled', 'application', ... */
static void fn_failure_kind(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	const char *ev = (const char *)sqlite3_value_text(argv[0]);
	size_t evlen = (size_t)sqlite3_value_bytes(argv[0]);
	const char *out = (const char *)sqlite3_value_text(argv[1]);
	int kind = format_failure_kind(ev, evlen, out);
	sqlite3_result_text(ctx, durox_failure_kind_name(kind), -1, SQLITE_STATIC);
}

void sq_register_functions(sqlite3 *db)
{
	sqlite3_create_function(db, "durox_ms", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL, fn_ms,
	                        NULL, NULL);
	sqlite3_create_function(db, "durox_event_ts", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
	                        fn_event_ts, NULL, NULL);
	sqlite3_create_function(db, "durox_failure_kind", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
	                        NULL, fn_failure_kind, NULL, NULL);
}

/* ---- schema --------------------------------------------------------------------- */

/* The schema Duroxide's SQLite provider creates for in-memory stores (create_schema). */
static const char memory_schema[] =
        "CREATE TABLE instances (instance_id TEXT PRIMARY KEY, orchestration_name TEXT NOT NULL,"
        " orchestration_version TEXT, current_execution_id INTEGER NOT NULL DEFAULT 1, custom_status TEXT,"
        " custom_status_version INTEGER NOT NULL DEFAULT 0, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
        " updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, parent_instance_id TEXT REFERENCES instances(instance_id));"
        "CREATE INDEX idx_instances_parent ON instances(parent_instance_id);"
        "CREATE TABLE executions (instance_id TEXT NOT NULL, execution_id INTEGER NOT NULL,"
        " status TEXT NOT NULL DEFAULT 'Running', output TEXT, duroxide_version_major INTEGER,"
        " duroxide_version_minor INTEGER, duroxide_version_patch INTEGER, started_at TIMESTAMP DEFAULT "
        "CURRENT_TIMESTAMP,"
        " completed_at TIMESTAMP, PRIMARY KEY (instance_id, execution_id));"
        "CREATE TABLE history (instance_id TEXT NOT NULL, execution_id INTEGER NOT NULL, event_id INTEGER NOT NULL,"
        " event_type TEXT NOT NULL, event_data TEXT NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
        " PRIMARY KEY (instance_id, execution_id, event_id));"
        "CREATE TABLE orchestrator_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL,"
        " work_item TEXT NOT NULL, visible_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, lock_token TEXT, locked_until "
        "TIMESTAMP,"
        " attempt_count INTEGER NOT NULL DEFAULT 0 CHECK(attempt_count >= 0), created_at TIMESTAMP DEFAULT "
        "CURRENT_TIMESTAMP);"
        "CREATE TABLE worker_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, work_item TEXT NOT NULL,"
        " visible_at INTEGER NOT NULL DEFAULT 0, lock_token TEXT, locked_until TIMESTAMP,"
        " attempt_count INTEGER NOT NULL DEFAULT 0 CHECK(attempt_count >= 0), created_at TIMESTAMP DEFAULT "
        "CURRENT_TIMESTAMP,"
        " instance_id TEXT, execution_id TEXT, activity_id INTEGER, session_id TEXT, tag TEXT);"
        "CREATE TABLE instance_locks (instance_id TEXT PRIMARY KEY, lock_token TEXT NOT NULL,"
        " locked_until INTEGER NOT NULL, locked_at INTEGER NOT NULL);"
        "CREATE INDEX idx_orch_visible ON orchestrator_queue(visible_at, lock_token);"
        "CREATE INDEX idx_orch_instance ON orchestrator_queue(instance_id);"
        "CREATE INDEX idx_orch_lock ON orchestrator_queue(lock_token);"
        "CREATE INDEX idx_worker_available ON worker_queue(lock_token, id);"
        "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, worker_id TEXT NOT NULL, locked_until INTEGER NOT NULL,"
        " last_activity_at INTEGER NOT NULL);"
        "CREATE TABLE kv_store (instance_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
        " last_updated_at_ms INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (instance_id, key));"
        "CREATE TABLE kv_delta (instance_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT,"
        " last_updated_at_ms INTEGER NOT NULL, PRIMARY KEY (instance_id, key));";

/* Sets *found when table has column (or, with column NULL, when the table exists). */
/* The store's tables and their columns, read in one statement: "\ntable\tcolumn" for each
 * column and "\ntable\t" for each table (the schema checks of every open look them up). */
static int read_columns(sqlite_store *s, buf *cols)
{
	sqlite3_stmt *st = sq_stmt(s, "SELECT m.name, p.name FROM sqlite_master m LEFT JOIN pragma_table_info(m.name) p"
	                              " WHERE m.type='table'");
	if (st == NULL)
		return sq_stmt_err(s);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0), *c = (const char *)sqlite3_column_text(st, 1);
		if (t == NULL)
			continue;
		buf_addf(cols, "\n%s\t", t);
		if (c != NULL)
			buf_addf(cols, "\n%s\t%s", t, c);
	}
	sq_done(st);
	buf_addc(cols, '\n');
	if (r != SQLITE_DONE)
		return sq_fail(s, r, "reading the schema");
	return buf_oom(cols) ? store_fail(&s->base, DUROX_ENOMEM, "out of memory") : DUROX_OK;
}

/* Whether the store has table (and column, unless NULL), from read_columns' list. */
static int probe(const buf *cols, const char *table, const char *column, int *found)
{
	char key[160];
	snprintf(key, sizeof key, "\n%s\t%s\n", table, column ? column : "");
	*found = strstr(buf_str((buf *)cols), key) != NULL;
	return DUROX_OK;
}

static int check_schema(sqlite_store *s, const buf *cols)
{
	static const char *const required[][2] = {
	        {"instances", "instance_id"},
	        {"instances", "orchestration_name"},
	        {"instances", "current_execution_id"},
	        {"instances", "created_at"},
	        {"executions", "execution_id"},
	        {"executions", "status"},
	        {"executions", "output"},
	        {"history", "event_data"},
	        {"history", "event_type"},
	        {"orchestrator_queue", "work_item"},
	        {"worker_queue", "work_item"},
	};
	int found, rc;
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
		if ((rc = probe(cols, required[i][0], NULL, &found)) != DUROX_OK)
			return rc;
		if (!found)
			return store_fail(&s->base, DUROX_EUNSUPPORTED,
			                  "'%s' is not a Duroxide store (it has no table '%s')", s->location,
			                  required[i][0]);
		if ((rc = probe(cols, required[i][0], required[i][1], &found)) != DUROX_OK)
			return rc;
		if (!found)
			return store_fail(&s->base, DUROX_EUNSUPPORTED,
			                  "'%s' is not a Duroxide store (table '%s' has no column '%s')", s->location,
			                  required[i][0], required[i][1]);
	}
	durox_store_info *in = &s->base.info;
	if ((rc = probe(cols, "instances", "custom_status", &in->has_custom_status)) != DUROX_OK ||
	    (rc = probe(cols, "instances", "parent_instance_id", &in->has_parent_instance)) != DUROX_OK ||
	    (rc = probe(cols, "kv_store", NULL, &in->has_kv)) != DUROX_OK ||
	    (rc = probe(cols, "sessions", NULL, &in->has_sessions)) != DUROX_OK ||
	    (rc = probe(cols, "orchestrator_queue", "attempt_count", &in->has_attempt_count)) != DUROX_OK ||
	    (rc = probe(cols, "worker_queue", "activity_id", &in->has_worker_identity)) != DUROX_OK)
		return rc;
	int has_migrations = 0;
	if ((rc = probe(cols, "_sqlx_migrations", NULL, &has_migrations)) != DUROX_OK)
		return rc;
	char version[32] = "create_schema";
	if (has_migrations) {
		sqlite3_stmt *st = sq_stmt(s, "SELECT MAX(version) FROM _sqlx_migrations WHERE success");
		if (st == NULL)
			return sq_stmt_err(s);
		int r = sqlite3_step(st);
		if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
			snprintf(version, sizeof version, "%lld", (long long)sqlite3_column_int64(st, 0));
		sq_done(st);
		if (r != SQLITE_ROW && r != SQLITE_DONE)
			return sq_fail(s, r, "reading the migrations table");
	}
	s->schema_version = strdup(version);
	if (s->schema_version == NULL)
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	in->schema_version = s->schema_version;
	return DUROX_OK;
}

static int detect_schema(sqlite_store *s)
{
	buf cols;
	buf_init(&cols);
	int rc = read_columns(s, &cols);
	if (rc == DUROX_OK)
		rc = check_schema(s, &cols);
	buf_free(&cols);
	return rc;
}

/* Opens the connection of s (s->location) and checks the schema: the part of opening that a
 * reopen repeats. On failure the message is in err and s->db may be open (sq_close frees it). */
/* The busy handler: waits for the lock up to busy_timeout_ms (the delays of SQLite's own
 * handler, at most 50 ms each), but gives up at once when the store is interrupted meanwhile
 * (Ctrl-C while another process holds the write lock: sqlite3_interrupt alone does not end
 * the wait). Returns nonzero to try again. */
static int sq_busy(void *ud, int count)
{
	static const int delays[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50};
	sqlite_store *s = ud;
	int64_t now = time_mono_ms();
	if (count == 0) {
		s->busy_since_ms = now;
		s->busy_seen = atomic_load(&s->interrupts);
		s->busy_interrupted = 0;
	}
	if (atomic_load(&s->interrupts) != s->busy_seen) {
		s->busy_interrupted = 1;
		return 0;
	}
	int64_t left = s->busy_timeout_ms - (now - s->busy_since_ms);
	if (left <= 0)
		return 0;
	int delay = count < (int)(sizeof delays / sizeof delays[0]) ? delays[count] : 50;
	sqlite3_sleep(delay < left ? delay : (int)left);
	return 1;
}

static int connect_db(sqlite_store *s, int readonly, int memory, char *err, size_t errlen)
{
	int flags = (readonly && !memory ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
	if (memory)
		flags |= SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY;
	int src = sqlite3_open_v2(s->location, &s->db, flags, NULL);
	if (src != SQLITE_OK) {
		snprintf(err, errlen, "cannot open store '%s': %s", s->location,
		         s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src));
		return DUROX_EIO;
	}
	sqlite3_extended_result_codes(s->db, 0);
	sqlite3_busy_handler(s->db, sq_busy, s);
	sq_register_functions(s->db);
	sq_metrics_attach(s);
	if (memory) {
		char *msg = NULL;
		if (sqlite3_exec(s->db, memory_schema, NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(err, errlen, "cannot create in-memory store: %s", msg ? msg : "?");
			sqlite3_free(msg);
			return DUROX_EIO;
		}
	}
	/* Foreign keys as the runtime has them, so a purge can never orphan a child. */
	sqlite3_exec(s->db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
	/* The durability the runtime's own connections have (its "synchronous = WAL" is read by
	 * SQLite as NORMAL): in WAL mode a commit then holds the write lock without an fsync. */
	if (!readonly && !memory)
		sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	int rc = detect_schema(s);
	if (rc != DUROX_OK) {
		if (rc == DUROX_ECORRUPT && strstr(s->base.err, "not a database") != NULL)
			snprintf(err, errlen, "'%s' is not a SQLite database, so not a Duroxide store", s->location);
		else
			snprintf(err, errlen, "%s", s->base.err);
		return rc == DUROX_ECORRUPT ? DUROX_EUNSUPPORTED : rc;
	}
	return DUROX_OK;
}

/* Closes what connect_db opened: the statement cache, the metrics state, the connection. */
static void disconnect_db(sqlite_store *s)
{
	sq_metrics_detach(s);
	for (int i = 0; i < CACHE_SIZE; i++) {
		if (s->cache[i].sql != NULL) {
			sqlite3_finalize(s->cache[i].stmt);
			free(s->cache[i].sql);
			s->cache[i].sql = NULL;
			s->cache[i].stmt = NULL;
		}
	}
	sqlite3_close_v2(s->db);
	s->db = NULL;
	free(s->schema_version);
	s->schema_version = NULL;
	s->base.info.schema_version = NULL;
}

/* The identity of the file at s->location now (0 when it cannot be read). */
int sq_file_identity(sqlite_store *s, uint64_t *dev, uint64_t *ino)
{
	struct stat sb;
	*dev = *ino = 0;
	if (s->memory || stat(s->location, &sb) != 0)
		return -1;
	*dev = (uint64_t)sb.st_dev;
	*ino = (uint64_t)sb.st_ino;
	return 0;
}

int sq_reopen(sqlite_store *s)
{
	disconnect_db(s);
	/* the new file is the store from now on (sq_check_file compares with it) */
	sq_file_identity(s, &s->file_dev, &s->file_ino);
	s->gone = 0;
	char err[512];
	durox_store_info keep = s->base.info;
	int rc = connect_db(s, s->base.info.readonly, s->memory, err, sizeof err);
	if (rc != DUROX_OK) {
		sqlite3_close_v2(s->db);
		s->db = NULL;
		s->base.info = keep;
		s->base.info.schema_version = "";
		return store_fail(&s->base, rc, "reopening the replaced store file: %s", err);
	}
	sq_file_identity(s, &s->file_dev, &s->file_ino);
	s->reopens++;
	return DUROX_OK;
}

/* ---- open/close ----------------------------------------------------------------- */

static void sq_close(store *base)
{
	sqlite_store *s = (sqlite_store *)base;
	if (s == NULL)
		return;
	sqi_close(s);
	disconnect_db(s);
	free(s->location);
	free(s->identity);
	free(s->state_buf);
	free(s->index_path);
	free(s);
}

/* sqlite3_interrupt may be called from another thread or a signal handler. */
static void sq_interrupt(store *base)
{
	sqlite_store *s = (sqlite_store *)base;
	atomic_fetch_add(&s->interrupts, 1); /* ends a wait for the lock (sq_busy) */
	if (s->db != NULL)
		sqlite3_interrupt(s->db);
}

static const store_vtable sqlite_vtable = {
        sq_close,      sq_list,    sq_count,           sq_summaries_by_id,
        sq_executions, sq_history, sq_instance_exists, sq_latest_execution,
        sq_interrupt,
};

int store_sqlite_open(const char *location, const durox_open_options *opts, store **out, char *err, size_t errlen)
{
	*out = NULL;
	int readonly = opts != NULL && opts->readonly;
	int memory = 0;
	int rc;
	/* location may carry "?mode=ro|rw" (sqlx URL form) */
	const char *q = strchr(location, '?');
	size_t pathlen = q != NULL ? (size_t)(q - location) : strlen(location);
	if (q != NULL) {
		if (strcmp(q, "?mode=ro") == 0)
			readonly = 1;
		else if (strcmp(q, "?mode=rw") != 0 && strcmp(q, "?mode=rwc") != 0) {
			snprintf(err, errlen, "unsupported option '%s' in store URL (expected ?mode=ro or ?mode=rw)",
			         q);
			return DUROX_EINVALID;
		}
	}
	if (pathlen == 0) {
		snprintf(err, errlen, "store URL has no path (expected sqlite:PATH)");
		return DUROX_EINVALID;
	}
	sqlite_store *s = calloc(1, sizeof *s);
	if (s == NULL || (s->location = strndup(location, pathlen)) == NULL) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return DUROX_ENOMEM;
	}
	s->base.vt = &sqlite_vtable;
	s->base.mvt = &sq_metrics_vtable;
	s->base.ops = &sq_ops_vtable;
	s->base.audit = &sq_audit_vtable;
	s->base.fvt = &sq_feed_vtable;
	s->base.svt = &sq_state_vtable;
	s->base.ivt = &sq_index_vtable;
	s->base.info.provider = "sqlite";
	s->base.info.location = s->location;
	s->base.info.readonly = readonly;
	s->busy_timeout_ms = opts != NULL && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
	if (opts != NULL && (opts->max_write_share < 0 || opts->max_write_share > 1)) {
		snprintf(err, errlen, "max_write_share must be between 0 and 1");
		sq_close(&s->base);
		return DUROX_EINVALID;
	}
	double share = opts != NULL && opts->max_write_share > 0 ? opts->max_write_share : 0.1;
	s->w_gap_factor = (1.0 - share) / share;
	memory = strcmp(s->location, ":memory:") == 0;
	s->memory = memory;
	s->index_mode = opts != NULL ? opts->index : DUROX_INDEX_AUTO;
	if (s->index_mode != DUROX_INDEX_AUTO && s->index_mode != DUROX_INDEX_OFF) {
		snprintf(err, errlen, "unknown index mode %d", s->index_mode);
		sq_close(&s->base);
		return DUROX_EINVALID;
	}
	if (opts != NULL && opts->index_path != NULL && (s->index_path = strdup(opts->index_path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		sq_close(&s->base);
		return DUROX_ENOMEM;
	}

	if (!memory) {
		struct stat sb;
		if (stat(s->location, &sb) != 0) {
			snprintf(err, errlen, "store '%s' does not exist (%s)", s->location, strerror(errno));
			sq_close(&s->base);
			return DUROX_ENOTFOUND;
		}
		if (!S_ISREG(sb.st_mode)) {
			snprintf(err, errlen, "store '%s' is not a regular file", s->location);
			sq_close(&s->base);
			return DUROX_EINVALID;
		}
	}
	rc = connect_db(s, readonly, memory, err, errlen);
	if (rc != DUROX_OK) {
		sq_close(&s->base);
		return rc;
	}
	sq_file_identity(s, &s->file_dev, &s->file_ino);
	s->identity = memory ? strdup(":memory:") : realpath(s->location, NULL);
	if (s->identity == NULL)
		s->identity = strdup(s->location);
	if (s->identity == NULL) {
		snprintf(err, errlen, "out of memory");
		sq_close(&s->base);
		return DUROX_ENOMEM;
	}
	s->base.identity = s->identity;
	*out = &s->base;
	return DUROX_OK;
}
