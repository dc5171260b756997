/*
 * sqlite.c - the SQLite store provider: Duroxide's SQLite schema, its time formats and
 * the SQL for every engine query (provider.h).
 *
 * Relies on sqlite3 (with its built-in JSON functions) and util/. Opens the file the
 * runtime writes without creating it, checks that it is a Duroxide store, detects the
 * schema generation, and registers two SQL functions: durox_ms(x) (any stored time ->
 * ms) and durox_failure_kind(event_json, output). Statements are prepared once per
 * connection (bounded LRU cache) and always reset before returning, so no read
 * transaction outlives a call. Used by the engine through store_sqlite_open().
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "store/format.h"
#include "store/provider.h"
#include "util/buf.h"
#include "util/timeutil.h"

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
	char *schema_version;
	int busy_timeout_ms;
	cached_stmt cache[CACHE_SIZE];
	uint64_t clock;
	int last_rc; /* durox code of the last sql_fail, for callers of stmt_get */
} sqlite_store;

/* ---- helpers ------------------------------------------------------------------- */

int store_fail(store *st, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->err, sizeof st->err, fmt, ap);
	va_end(ap);
	return rc;
}

const char *const store_payload_members[] = {"input", "output", "result", "data", "details", "value", "status", NULL};

/* Maps a SQLite result code to a durox code and message. */
static int sql_fail(sqlite_store *s, int src, const char *what)
{
	int rc;
	switch (src & 0xFF) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		s->last_rc = DUROX_EBUSY;
		return store_fail(&s->base, DUROX_EBUSY, "store is busy: %s stayed locked for more than %d ms; retry later",
		                  s->location, s->busy_timeout_ms);
	case SQLITE_NOMEM: rc = DUROX_ENOMEM; break;
	case SQLITE_READONLY: rc = DUROX_EDENIED; break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: rc = DUROX_ECORRUPT; break;
	default: rc = DUROX_EIO;
	}
	s->last_rc = rc;
	return store_fail(&s->base, rc, "%s failed: %s", what, sqlite3_errmsg(s->db));
}

/* The durox code for a NULL from stmt_get. */
static int stmt_err(sqlite_store *s) { return s->last_rc != 0 ? s->last_rc : DUROX_EIO; }

/* Returns a prepared statement for sql from the cache (preparing it on a miss), reset and
 * with no bindings. NULL on error (message set). */
static sqlite3_stmt *stmt_get(sqlite_store *s, const char *sql)
{
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
		sql_fail(s, rc, "preparing a query");
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
static void stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int64_t col_time(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? DUROX_NO_TIME : sqlite3_column_int64(st, i);
}

static const char *col_text(sqlite3_stmt *st, int i) { return (const char *)sqlite3_column_text(st, i); }

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
	" duroxide_version_minor INTEGER, duroxide_version_patch INTEGER, started_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
	" completed_at TIMESTAMP, PRIMARY KEY (instance_id, execution_id));"
	"CREATE TABLE history (instance_id TEXT NOT NULL, execution_id INTEGER NOT NULL, event_id INTEGER NOT NULL,"
	" event_type TEXT NOT NULL, event_data TEXT NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
	" PRIMARY KEY (instance_id, execution_id, event_id));"
	"CREATE TABLE orchestrator_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL,"
	" work_item TEXT NOT NULL, visible_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, lock_token TEXT, locked_until TIMESTAMP,"
	" attempt_count INTEGER NOT NULL DEFAULT 0 CHECK(attempt_count >= 0), created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);"
	"CREATE TABLE worker_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, work_item TEXT NOT NULL,"
	" visible_at INTEGER NOT NULL DEFAULT 0, lock_token TEXT, locked_until TIMESTAMP,"
	" attempt_count INTEGER NOT NULL DEFAULT 0 CHECK(attempt_count >= 0), created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,"
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
static int probe(sqlite_store *s, const char *table, const char *column, int *found)
{
	const char *sql = column == NULL ? "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1"
	                                 : "SELECT 1 FROM pragma_table_info(?1) WHERE name=?2";
	sqlite3_stmt *st = stmt_get(s, sql);
	if (st == NULL)
		return stmt_err(s);
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	if (column != NULL)
		sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW;
	int err = rc == SQLITE_ROW || rc == SQLITE_DONE ? DUROX_OK : sql_fail(s, rc, "reading the schema");
	stmt_done(st);
	return err;
}

static int detect_schema(sqlite_store *s)
{
	static const char *const required[][2] = {
		{"instances", "instance_id"},        {"instances", "orchestration_name"},
		{"instances", "current_execution_id"}, {"instances", "created_at"},
		{"executions", "execution_id"},      {"executions", "status"},
		{"executions", "output"},            {"history", "event_data"},
		{"history", "event_type"},           {"orchestrator_queue", "work_item"},
		{"worker_queue", "work_item"},
	};
	int found, rc;
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
		if ((rc = probe(s, required[i][0], NULL, &found)) != DUROX_OK)
			return rc;
		if (!found)
			return store_fail(&s->base, DUROX_EUNSUPPORTED, "'%s' is not a Duroxide store (it has no table '%s')",
			                  s->location, required[i][0]);
		if ((rc = probe(s, required[i][0], required[i][1], &found)) != DUROX_OK)
			return rc;
		if (!found)
			return store_fail(&s->base, DUROX_EUNSUPPORTED,
			                  "'%s' is not a Duroxide store (table '%s' has no column '%s')", s->location,
			                  required[i][0], required[i][1]);
	}
	durox_store_info *in = &s->base.info;
	if ((rc = probe(s, "instances", "custom_status", &in->has_custom_status)) != DUROX_OK ||
	    (rc = probe(s, "instances", "parent_instance_id", &in->has_parent_instance)) != DUROX_OK ||
	    (rc = probe(s, "kv_store", NULL, &in->has_kv)) != DUROX_OK ||
	    (rc = probe(s, "sessions", NULL, &in->has_sessions)) != DUROX_OK ||
	    (rc = probe(s, "orchestrator_queue", "attempt_count", &in->has_attempt_count)) != DUROX_OK ||
	    (rc = probe(s, "worker_queue", "activity_id", &in->has_worker_identity)) != DUROX_OK)
		return rc;
	int has_migrations;
	if ((rc = probe(s, "_sqlx_migrations", NULL, &has_migrations)) != DUROX_OK)
		return rc;
	char version[32] = "create_schema";
	if (has_migrations) {
		sqlite3_stmt *st = stmt_get(s, "SELECT MAX(version) FROM _sqlx_migrations WHERE success");
		if (st == NULL)
			return stmt_err(s);
		int r = sqlite3_step(st);
		if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
			snprintf(version, sizeof version, "%lld", (long long)sqlite3_column_int64(st, 0));
		stmt_done(st);
		if (r != SQLITE_ROW && r != SQLITE_DONE)
			return sql_fail(s, r, "reading the migrations table");
	}
	s->schema_version = strdup(version);
	if (s->schema_version == NULL)
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	in->schema_version = s->schema_version;
	return DUROX_OK;
}

/* ---- filter compilation ----------------------------------------------------------- */

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

static void bind_push(sqlgen *g, const durox_value *v)
{
	if (g->b->n >= sizeof g->b->v / sizeof g->b->v[0]) {
		g->b->overflow = 1;
		return;
	}
	g->b->v[g->b->n++] = *v;
	buf_addc(&g->sql, '?');
}

#define CURRENT_EXEC "h.instance_id=i.instance_id AND h.execution_id=i.current_execution_id"

/* The SQL expression of a field over `instances i LEFT JOIN executions e` (current execution). */
static const char *field_sql(sqlite_store *s, int field)
{
	switch (field) {
	case DUROX_FIELD_STATUS: return "COALESCE(e.status,'Unknown')";
	case DUROX_FIELD_ORCHESTRATION_NAME: return "i.orchestration_name";
	case DUROX_FIELD_VERSION: return "i.orchestration_version";
	case DUROX_FIELD_INSTANCE_ID: return "i.instance_id";
	case DUROX_FIELD_PARENT_INSTANCE: return s->base.info.has_parent_instance ? "i.parent_instance_id" : "NULL";
	case DUROX_FIELD_CREATED_AT: return "COALESCE(durox_ms(i.created_at),0)";
	case DUROX_FIELD_UPDATED_AT:
		return "MAX(COALESCE(durox_ms(i.updated_at),0),COALESCE(durox_ms(e.started_at),0),"
		       "COALESCE(durox_ms(e.completed_at),0),COALESCE((SELECT durox_event_ts(h.event_data,h.created_at) FROM history h"
		       " WHERE " CURRENT_EXEC " ORDER BY h.event_id DESC LIMIT 1),0))";
	case DUROX_FIELD_COMPLETED_AT: return "durox_ms(e.completed_at)";
	case DUROX_FIELD_CUSTOM_STATUS: return s->base.info.has_custom_status ? "i.custom_status" : "NULL";
	case DUROX_FIELD_EXECUTION_COUNT: return "i.current_execution_id";
	case DUROX_FIELD_FAILURE_KIND:
		return "(CASE WHEN e.status='Failed' THEN durox_failure_kind((SELECT h.event_data FROM history h WHERE "
		       CURRENT_EXEC " AND h.event_type='OrchestrationFailed' ORDER BY h.event_id DESC LIMIT 1),"
		       "e.output) END)";
	default: return NULL;
	}
}

/* The input of the current execution (from its OrchestrationStarted event). */
#define INPUT_SQL                                                                                              \
	"(SELECT CASE WHEN json_valid(h.event_data) THEN json_extract(h.event_data,'$.input') END FROM history h" \
	" WHERE " CURRENT_EXEC " AND h.event_id=1)"

static void gen_expr(sqlgen *g, const durox_expr *e);

static void gen_cmp(sqlgen *g, const durox_expr *e)
{
	if (e->field == DUROX_FIELD_TEXT) {
		/* substring of id, name, custom status, input or output, ASCII case-insensitive */
		const char *cols[] = {"i.instance_id", "i.orchestration_name", field_sql(g->s, DUROX_FIELD_CUSTOM_STATUS),
		                      INPUT_SQL, "e.output"};
		buf_adds(&g->sql, e->op == DUROX_OP_NE ? "NOT (" : "(");
		for (size_t k = 0; k < 5; k++) {
			if (k > 0)
				buf_adds(&g->sql, " OR ");
			buf_addf(&g->sql, "COALESCE(instr(lower(%s),lower(", cols[k]);
			bind_push(g, &e->vals[0]);
			buf_adds(&g->sql, ")),0)>0");
		}
		buf_addc(&g->sql, ')');
		return;
	}
	const char *f = field_sql(g->s, e->field);
	switch (e->op) {
	case DUROX_OP_IS_NULL: buf_addf(&g->sql, "(%s IS NULL)", f); return;
	case DUROX_OP_NOT_NULL: buf_addf(&g->sql, "(%s IS NOT NULL)", f); return;
	case DUROX_OP_PREFIX:
		/* A range, so the instance_id primary key index can serve it: the filter stores the
		 * prefix and prefix||0xFF (UTF-8 text never contains the byte 0xFF). */
		buf_addf(&g->sql, "(%s >= ", f);
		bind_push(g, &e->vals[0]);
		buf_addf(&g->sql, " AND %s < ", f);
		bind_push(g, &e->vals[1]);
		buf_addc(&g->sql, ')');
		return;
	case DUROX_OP_LIKE:
		buf_addf(&g->sql, "(%s LIKE ", f);
		bind_push(g, &e->vals[0]);
		buf_adds(&g->sql, " ESCAPE '\\')");
		return;
	case DUROX_OP_CONTAINS:
		buf_addf(&g->sql, "(COALESCE(instr(lower(%s),lower(", f);
		bind_push(g, &e->vals[0]);
		buf_adds(&g->sql, ")),0)>0)");
		return;
	case DUROX_OP_NE:
		buf_addf(&g->sql, "(%s IS NOT ", f);
		bind_push(g, &e->vals[0]);
		buf_addc(&g->sql, ')');
		return;
	default: {
		static const char *const ops[] = {[DUROX_OP_EQ] = "=", [DUROX_OP_LT] = "<", [DUROX_OP_LE] = "<=",
		                                  [DUROX_OP_GT] = ">", [DUROX_OP_GE] = ">="};
		buf_addf(&g->sql, "(%s %s ", f, ops[e->op]);
		bind_push(g, &e->vals[0]);
		buf_addc(&g->sql, ')');
	}
	}
}

static void gen_expr(sqlgen *g, const durox_expr *e)
{
	switch (e->kind) {
	case EXPR_AND:
	case EXPR_OR:
		buf_addc(&g->sql, '(');
		gen_expr(g, e->a);
		buf_adds(&g->sql, e->kind == EXPR_AND ? " AND " : " OR ");
		gen_expr(g, e->b);
		buf_addc(&g->sql, ')');
		return;
	case EXPR_NOT:
		/* COALESCE: NOT of an unknown (NULL) comparison is true, as users expect */
		buf_adds(&g->sql, "(NOT COALESCE(");
		gen_expr(g, e->a);
		buf_adds(&g->sql, ",0))");
		return;
	case EXPR_CMP: gen_cmp(g, e); return;
	case EXPR_IN:
		buf_addf(&g->sql, "(%s IN (", field_sql(g->s, e->field));
		for (size_t k = 0; k < e->nvals; k++) {
			if (k > 0)
				buf_addc(&g->sql, ',');
			bind_push(g, &e->vals[k]);
		}
		buf_adds(&g->sql, "))");
		return;
	case EXPR_BETWEEN:
		buf_addf(&g->sql, "(%s BETWEEN ", field_sql(g->s, e->field));
		bind_push(g, &e->vals[0]);
		buf_adds(&g->sql, " AND ");
		bind_push(g, &e->vals[1]);
		buf_addc(&g->sql, ')');
		return;
	}
}

/* Nonzero when e can only match instances whose current execution row exists (a status
 * other than Unknown, a failure kind, a completion time). Such filters use an inner join,
 * which lets SQLite scan executions first: 4x faster for "status = Failed" on 100k rows. */
static int needs_execution(const durox_expr *e)
{
	if (e == NULL)
		return 0;
	switch (e->kind) {
	case EXPR_AND: return needs_execution(e->a) || needs_execution(e->b);
	case EXPR_OR: return needs_execution(e->a) && needs_execution(e->b);
	case EXPR_NOT: return 0;
	case EXPR_CMP:
		if (e->field == DUROX_FIELD_STATUS && e->op == DUROX_OP_EQ)
			return strcmp(e->vals[0].text, "Unknown") != 0;
		if (e->field == DUROX_FIELD_FAILURE_KIND || e->field == DUROX_FIELD_COMPLETED_AT)
			return e->op != DUROX_OP_IS_NULL && e->op != DUROX_OP_NE;
		return 0;
	case EXPR_IN:
		if (e->field == DUROX_FIELD_FAILURE_KIND || e->field == DUROX_FIELD_COMPLETED_AT)
			return 1;
		if (e->field != DUROX_FIELD_STATUS)
			return 0;
		for (size_t k = 0; k < e->nvals; k++)
			if (strcmp(e->vals[k].text, "Unknown") == 0)
				return 0;
		return 1;
	case EXPR_BETWEEN: return e->field == DUROX_FIELD_COMPLETED_AT;
	}
	return 0;
}

/* The FROM clause for a filter: instances with their current execution. */
static const char *from_current(const durox_filter *f)
{
	return f != NULL && needs_execution(f->root)
	           ? " FROM instances i JOIN executions e ON e.instance_id=i.instance_id AND "
	             "e.execution_id=i.current_execution_id"
	           : " FROM instances i LEFT JOIN executions e ON e.instance_id=i.instance_id AND "
	             "e.execution_id=i.current_execution_id";
}

static void gen_where(sqlgen *g, const durox_filter *f)
{
	if (f == NULL || f->root == NULL)
		buf_adds(&g->sql, "1");
	else
		gen_expr(g, f->root);
}

static int bind_all(sqlite_store *s, sqlite3_stmt *st, const binds *b, int first)
{
	for (size_t k = 0; k < b->n; k++) {
		const durox_value *v = &b->v[k];
		int idx = first + (int)k, rc;
		if (v->type == DUROX_VAL_TEXT)
			rc = sqlite3_bind_text(st, idx, v->text, -1, SQLITE_STATIC);
		else if (v->type == DUROX_VAL_INT)
			rc = sqlite3_bind_int64(st, idx, v->i);
		else
			rc = sqlite3_bind_null(st, idx);
		if (rc != SQLITE_OK)
			return sql_fail(s, rc, "binding a query parameter");
	}
	return DUROX_OK;
}

/* ---- summaries ------------------------------------------------------------------ */

#define FROM_CURRENT                                                                                           \
	" FROM instances i LEFT JOIN executions e ON e.instance_id=i.instance_id AND "                           \
	"e.execution_id=i.current_execution_id"

/* Appends the summary column list (see read_summary for the order). */
static void add_summary_columns(sqlite_store *s, buf *b)
{
	buf_addf(b,
	         "SELECT i.instance_id, i.orchestration_name, i.orchestration_version, %s, %s, %s, "
	         "i.current_execution_id, %s, ",
	         field_sql(s, DUROX_FIELD_STATUS), field_sql(s, DUROX_FIELD_CREATED_AT),
	         field_sql(s, DUROX_FIELD_UPDATED_AT), field_sql(s, DUROX_FIELD_PARENT_INSTANCE));
	if (s->base.info.has_parent_instance)
		buf_adds(b, "CASE WHEN i.parent_instance_id IS NOT NULL THEN (SELECT CASE WHEN json_valid(h.event_data)"
		            " THEN json_extract(h.event_data,'$.parent_id') END FROM history h WHERE " CURRENT_EXEC
		            " AND h.event_id=1) END, ");
	else
		buf_adds(b, "NULL, ");
	buf_addf(b, "%s, %s, CASE WHEN e.status='Failed' THEN e.output END, %s, %s", field_sql(s, DUROX_FIELD_COMPLETED_AT),
	         field_sql(s, DUROX_FIELD_FAILURE_KIND), field_sql(s, DUROX_FIELD_CUSTOM_STATUS),
	         s->base.info.has_custom_status ? "i.custom_status_version" : "0");
}

static int status_from_text(const char *t)
{
	int st = t != NULL ? durox_status_parse(t) : -1;
	return st < 0 ? DUROX_STATUS_UNKNOWN : st;
}

static void read_summary(sqlite3_stmt *st, durox_instance_summary *s)
{
	s->instance_id = col_text(st, 0);
	s->orchestration_name = col_text(st, 1);
	s->version = col_text(st, 2);
	s->status = status_from_text(col_text(st, 3));
	s->created_at = sqlite3_column_int64(st, 4);
	s->updated_at = sqlite3_column_int64(st, 5);
	s->execution_count = (uint64_t)sqlite3_column_int64(st, 6);
	s->parent_instance = col_text(st, 7);
	s->parent_id = sqlite3_column_type(st, 8) == SQLITE_INTEGER ? sqlite3_column_int64(st, 8) : -1;
	s->completed_at = col_time(st, 9);
	const char *fk = col_text(st, 10);
	s->failure_kind = fk != NULL ? durox_failure_kind_parse(fk) : DUROX_FAILURE_NONE;
	if (s->failure_kind < 0)
		s->failure_kind = DUROX_FAILURE_APPLICATION;
	s->error = col_text(st, 11);
	s->custom_status = col_text(st, 12);
	s->custom_status_version = sqlite3_column_int64(st, 13);
	if (s->orchestration_name == NULL)
		s->orchestration_name = "";
}

/* Steps st and hands each summary row to cb. */
static int run_summaries(sqlite_store *s, sqlite3_stmt *st, store_summary_cb cb, void *ud)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		durox_instance_summary sum;
		read_summary(st, &sum);
		if (sum.instance_id == NULL)
			continue;
		int r = cb(ud, &sum);
		if (r != 0) {
			stmt_done(st);
			return r > 0 ? DUROX_OK : r;
		}
	}
	stmt_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sql_fail(s, rc, "listing instances");
}

static const char *order_key_sql(sqlite_store *s, int order_by)
{
	switch (order_by) {
	case DUROX_ORDER_UPDATED_AT: return field_sql(s, DUROX_FIELD_UPDATED_AT);
	case DUROX_ORDER_INSTANCE_ID: return "i.instance_id";
	case DUROX_ORDER_ORCHESTRATION_NAME: return "i.orchestration_name";
	default: return field_sql(s, DUROX_FIELD_CREATED_AT);
	}
}

static int sq_list(store *base, const store_list_query *q, store_summary_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	binds *b = calloc(1, sizeof *b);
	if (b == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	sqlgen g = {s, {0}, b};
	buf_init(&g.sql);
	const char *key = order_key_sql(s, q->order_by);
	const char *dir = q->descending ? "DESC" : "ASC";
	int id_order = q->order_by == DUROX_ORDER_INSTANCE_ID;

	/* Phase 1 (inner): only the keys of the page's rows, so the expensive summary columns
	 * are computed for the page alone, not for every row the sort looks at. */
	buf_adds(&g.sql, "WITH page AS (SELECT i.rowid AS rid");
	if (!id_order)
		buf_addf(&g.sql, ", %s AS k", key);
	buf_adds(&g.sql, from_current(q->filter));
	buf_adds(&g.sql, " WHERE ");
	gen_where(&g, q->filter);
	if (q->after.active) {
		const char *cmp = q->descending ? "<" : ">";
		durox_value kv = {.type = q->after.key_is_text ? DUROX_VAL_TEXT : DUROX_VAL_INT,
		                  .text = q->after.key_text, .i = q->after.key_int};
		durox_value idv = {.type = DUROX_VAL_TEXT, .text = q->after.instance_id};
		if (id_order) {
			buf_addf(&g.sql, " AND i.instance_id %s ", cmp);
			bind_push(&g, &idv);
		} else {
			buf_addf(&g.sql, " AND (%s %s ", key, cmp);
			bind_push(&g, &kv);
			buf_addf(&g.sql, " OR (%s = ", key);
			bind_push(&g, &kv);
			buf_addf(&g.sql, " AND i.instance_id %s ", cmp);
			bind_push(&g, &idv);
			buf_adds(&g.sql, "))");
		}
	}
	if (id_order)
		buf_addf(&g.sql, " ORDER BY i.instance_id %s", dir);
	else
		buf_addf(&g.sql, " ORDER BY k %s, i.instance_id %s", dir, dir);
	if (q->limit > 0)
		buf_addf(&g.sql, " LIMIT %u", (unsigned)q->limit);
	buf_adds(&g.sql, ") ");
	/* Phase 2 (outer): full summaries of the page, in page order. */
	add_summary_columns(s, &g.sql);
	buf_adds(&g.sql, " FROM page p JOIN instances i ON i.rowid=p.rid LEFT JOIN executions e ON "
	                 "e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id");
	if (id_order)
		buf_addf(&g.sql, " ORDER BY i.instance_id %s", dir);
	else
		buf_addf(&g.sql, " ORDER BY p.k %s, i.instance_id %s", dir, dir);

	int rc;
	if (buf_oom(&g.sql))
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	else if (b->overflow)
		rc = store_fail(base, DUROX_ELIMIT, "filter too large (more than %zu values)", sizeof b->v / sizeof b->v[0]);
	else {
		sqlite3_stmt *st = stmt_get(s, buf_str(&g.sql));
		if (st == NULL)
			rc = stmt_err(s);
		else if ((rc = bind_all(s, st, b, 1)) != DUROX_OK)
			stmt_done(st);
		else
			rc = run_summaries(s, st, cb, ud);
	}
	buf_free(&g.sql);
	free(b);
	return rc;
}

static int sq_count(store *base, const durox_filter *f, int64_t *out)
{
	sqlite_store *s = (sqlite_store *)base;
	*out = 0;
	binds *b = calloc(1, sizeof *b);
	if (b == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	sqlgen g = {s, {0}, b};
	buf_init(&g.sql);
	buf_adds(&g.sql, "SELECT count(*)");
	buf_adds(&g.sql, from_current(f));
	buf_adds(&g.sql, " WHERE ");
	gen_where(&g, f);
	int rc;
	sqlite3_stmt *st;
	if (buf_oom(&g.sql) || b->overflow)
		rc = store_fail(base, b->overflow ? DUROX_ELIMIT : DUROX_ENOMEM, "filter too large or out of memory");
	else if ((st = stmt_get(s, buf_str(&g.sql))) == NULL)
		rc = stmt_err(s);
	else {
		rc = bind_all(s, st, b, 1);
		if (rc == DUROX_OK) {
			int r = sqlite3_step(st);
			if (r == SQLITE_ROW)
				*out = sqlite3_column_int64(st, 0);
			else
				rc = sql_fail(s, r, "counting instances");
		}
		stmt_done(st);
	}
	buf_free(&g.sql);
	free(b);
	return rc;
}

static int sq_summaries_by_id(store *base, const char *const *ids, size_t n, store_summary_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	/* Fixed chunk sizes keep the statement cache small: 1, 8, 64, 256 placeholders. */
	static const size_t sizes[] = {256, 64, 8, 1};
	size_t done = 0;
	int rc = DUROX_OK;
	buf sql;
	buf_init(&sql);
	while (done < n && rc == DUROX_OK) {
		size_t chunk = 1;
		for (size_t k = 0; k < 4; k++)
			if (n - done >= sizes[k]) {
				chunk = sizes[k];
				break;
			}
		buf_reset(&sql);
		add_summary_columns(s, &sql);
		buf_adds(&sql, FROM_CURRENT " WHERE i.instance_id IN (");
		for (size_t k = 0; k < chunk; k++)
			buf_adds(&sql, k ? ",?" : "?");
		buf_addc(&sql, ')');
		if (buf_oom(&sql)) {
			rc = store_fail(base, DUROX_ENOMEM, "out of memory");
			break;
		}
		sqlite3_stmt *st = stmt_get(s, buf_str(&sql));
		if (st == NULL) {
			rc = stmt_err(s);
			break;
		}
		for (size_t k = 0; k < chunk; k++)
			sqlite3_bind_text(st, (int)k + 1, ids[done + k], -1, SQLITE_STATIC);
		rc = run_summaries(s, st, cb, ud);
		done += chunk;
	}
	buf_free(&sql);
	return rc;
}

/* ---- executions and history ----------------------------------------------------- */

static int sq_executions(store *base, const char *instance_id, store_exec_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = stmt_get(s, "SELECT e.execution_id, e.status, e.output, durox_ms(e.started_at),"
	                               " durox_ms(e.completed_at), (SELECT count(*) FROM history h WHERE"
	                               " h.instance_id=e.instance_id AND h.execution_id=e.execution_id)"
	                               " FROM executions e WHERE e.instance_id=? ORDER BY e.execution_id");
	if (st == NULL)
		return stmt_err(s);
	sqlite3_bind_text(st, 1, instance_id, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_exec_row r = {(uint64_t)sqlite3_column_int64(st, 0), col_text(st, 1), col_text(st, 2),
		                    col_time(st, 3), col_time(st, 4), (uint64_t)sqlite3_column_int64(st, 5)};
		int x = cb(ud, &r);
		if (x != 0) {
			stmt_done(st);
			return x > 0 ? DUROX_OK : x;
		}
	}
	stmt_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sql_fail(s, rc, "reading executions");
}

static int sq_history(store *base, const store_history_query *q, store_event_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlgen g = {s, {0}, NULL};
	buf_init(&g.sql);
	buf_adds(&g.sql, "SELECT execution_id, event_id, event_type, event_data, durox_ms(created_at) FROM history"
	                 " WHERE instance_id=? AND execution_id=?");
	if (q->from_event_id > 0)
		buf_adds(&g.sql, " AND event_id>=?3");
	if (q->to_event_id > 0)
		buf_adds(&g.sql, " AND event_id<=?4");
	if (q->from_time != DUROX_NO_TIME)
		buf_adds(&g.sql, " AND durox_event_ts(event_data,created_at)>=?5");
	if (q->to_time != DUROX_NO_TIME)
		buf_adds(&g.sql, " AND durox_event_ts(event_data,created_at)<=?6");
	if (q->ntypes > 0) {
		/* types are bound from ?7 on; a fixed set of sizes keeps the cache small */
		buf_adds(&g.sql, " AND event_type IN (");
		for (size_t k = 0; k < q->ntypes; k++)
			buf_addf(&g.sql, k ? ",?%zu" : "?%zu", 7 + k);
		buf_addc(&g.sql, ')');
	}
	buf_adds(&g.sql, " ORDER BY event_id");
	if (q->limit > 0)
		buf_addf(&g.sql, " LIMIT %u", (unsigned)q->limit);
	if (buf_oom(&g.sql)) {
		buf_free(&g.sql);
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	}
	sqlite3_stmt *st = stmt_get(s, buf_str(&g.sql));
	buf_free(&g.sql);
	if (st == NULL)
		return stmt_err(s);
	sqlite3_bind_text(st, 1, q->instance_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)q->execution_id);
	if (q->from_event_id > 0)
		sqlite3_bind_int64(st, 3, (sqlite3_int64)q->from_event_id);
	if (q->to_event_id > 0)
		sqlite3_bind_int64(st, 4, (sqlite3_int64)q->to_event_id);
	if (q->from_time != DUROX_NO_TIME)
		sqlite3_bind_int64(st, 5, q->from_time);
	if (q->to_time != DUROX_NO_TIME)
		sqlite3_bind_int64(st, 6, q->to_time);
	for (size_t k = 0; k < q->ntypes; k++)
		sqlite3_bind_text(st, 7 + (int)k, q->types[k], -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_event_row r = {(uint64_t)sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
		                     col_text(st, 2), col_text(st, 3), (size_t)sqlite3_column_bytes(st, 3),
		                     col_time(st, 4)};
		if (r.data == NULL) {
			r.data = "";
			r.data_len = 0;
		}
		int x = cb(ud, &r);
		if (x != 0) {
			stmt_done(st);
			return x > 0 ? DUROX_OK : x;
		}
	}
	stmt_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sql_fail(s, rc, "reading history");
}

static int sq_instance_exists(store *base, const char *instance_id, int *exists, uint64_t *current)
{
	sqlite_store *s = (sqlite_store *)base;
	*exists = 0;
	*current = 0;
	sqlite3_stmt *st = stmt_get(s, "SELECT current_execution_id FROM instances WHERE instance_id=?");
	if (st == NULL)
		return stmt_err(s);
	sqlite3_bind_text(st, 1, instance_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*exists = 1;
		*current = (uint64_t)sqlite3_column_int64(st, 0);
	}
	stmt_done(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? DUROX_OK : sql_fail(s, rc, "reading an instance");
}

static int sq_latest_execution(store *base, const char *instance_id, uint64_t *out)
{
	sqlite_store *s = (sqlite_store *)base;
	*out = 0;
	sqlite3_stmt *st = stmt_get(s, "SELECT MAX(execution_id) FROM executions WHERE instance_id=?");
	if (st == NULL)
		return stmt_err(s);
	sqlite3_bind_text(st, 1, instance_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	stmt_done(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? DUROX_OK : sql_fail(s, rc, "reading executions");
}

/* ---- open/close ----------------------------------------------------------------- */

static void sq_close(store *base)
{
	sqlite_store *s = (sqlite_store *)base;
	if (s == NULL)
		return;
	for (int i = 0; i < CACHE_SIZE; i++) {
		if (s->cache[i].sql != NULL) {
			sqlite3_finalize(s->cache[i].stmt);
			free(s->cache[i].sql);
		}
	}
	sqlite3_close_v2(s->db);
	free(s->location);
	free(s->schema_version);
	free(s);
}

static const store_vtable sqlite_vtable = {
	sq_close, sq_list, sq_count, sq_summaries_by_id, sq_executions, sq_history, sq_instance_exists,
	sq_latest_execution,
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
			snprintf(err, errlen, "unsupported option '%s' in store URL (expected ?mode=ro or ?mode=rw)", q);
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
	s->base.info.provider = "sqlite";
	s->base.info.location = s->location;
	s->base.info.readonly = readonly;
	s->busy_timeout_ms = opts != NULL && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
	memory = strcmp(s->location, ":memory:") == 0;

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
	int flags = (readonly && !memory ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
	if (memory)
		flags |= SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY;
	int src = sqlite3_open_v2(s->location, &s->db, flags, NULL);
	if (src != SQLITE_OK) {
		snprintf(err, errlen, "cannot open store '%s': %s", s->location,
		         s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src));
		sq_close(&s->base);
		return DUROX_EIO;
	}
	sqlite3_extended_result_codes(s->db, 0);
	sqlite3_busy_timeout(s->db, s->busy_timeout_ms);
	sqlite3_create_function(s->db, "durox_ms", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
	                        fn_ms, NULL, NULL);
	sqlite3_create_function(s->db, "durox_event_ts", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
	                        fn_event_ts, NULL, NULL);
	sqlite3_create_function(s->db, "durox_failure_kind", 2,
	                        SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL, fn_failure_kind, NULL, NULL);
	if (memory) {
		char *msg = NULL;
		if (sqlite3_exec(s->db, memory_schema, NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(err, errlen, "cannot create in-memory store: %s", msg ? msg : "?");
			sqlite3_free(msg);
			sq_close(&s->base);
			return DUROX_EIO;
		}
	}
	/* Foreign keys as the runtime has them, so a purge can never orphan a child. */
	sqlite3_exec(s->db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
	rc = detect_schema(s);
	if (rc != DUROX_OK) {
		if (rc == DUROX_ECORRUPT && strstr(s->base.err, "not a database") != NULL)
			snprintf(err, errlen, "'%s' is not a SQLite database, so not a Duroxide store", s->location);
		else
			snprintf(err, errlen, "%s", s->base.err);
		sq_close(&s->base);
		return rc == DUROX_ECORRUPT ? DUROX_EUNSUPPORTED : rc;
	}
	*out = &s->base;
	return DUROX_OK;
}
