/*
 * postgres_index.c - the PostgreSQL visibility index (postgres_index.h, docs/index.md): its
 * tables in duroxlua's own schema, the state machine, the chunked resumable build, the sync
 * from the change feed (postgres_feed.c) with reconciliation of purges, verification, and the
 * provider's store_index_vtable.
 *
 * Every summary row is computed by the provider's own summary SQL (pg_add_summary_columns,
 * the very columns a listing reads), so a row holds exactly what the store's listing shows.
 * The table: "<state schema>"."ix_<runtime schema>"; its state: one row of
 * "<state schema>".ix_meta (state, the build's position, the change feed's position, when it
 * was built and synced). Writes take a transaction-level advisory lock on the table, so two
 * processes that sync one index serialise; recomputing a row is idempotent, so a position
 * that goes back (another process saved an older one) only re-reads rows.
 *
 * A read answered by the index first syncs it: the feed's gate (one `SELECT
 * pg_current_snapshot()`) says whether any transaction ended since the last round; when one
 * did, the changed instances' rows are recomputed, and the number of instances is compared
 * with the index's so that a purge by any client is reconciled at once. History rows lost
 * under the feed's position (re-created tables, a restored backup) make it rebuild.
 *
 * The index also keeps the metrics' history digest (postgres_index_digest.c): the build computes
 * each chunk's per-instance rows from history in the chunk's transaction, every recomputation of
 * changed instances recomputes theirs, and the reconciliation removes purged ones (and, after a
 * prune, recomputes the instances with several executions), the totals adjusted in the same
 * transaction. Prunes by other processes are noticed by the executions count (exec_check).
 *
 * On PostgreSQL the index is built on request only (dx:index_build, `duroxlua index build`):
 * it lives in a shared database, and a read should not start a server-side pass over the whole
 * store. Once built, every handle that may use it (index not false) keeps it current.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/postgres_index.h"
#include "util/timeutil.h"

/* 4: the status totals (@C) and the runtime's instances.updated_at (touched_at); 3: the
 * persisted history digest (postgres_index_digest.c); 2: the summary rows only */
#define IX_FORMAT 4
#define CHUNK_DEFAULT 4096
#define FEED_LIMIT 20000

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- names and SQL ----------------------------------------------------------------------- */

pg_index *pgi_new(pg_store *s, int mode)
{
	pg_index *ix = calloc(1, sizeof *ix);
	if (ix == NULL)
		return NULL;
	ix->s = s;
	ix->size_bytes = -1;
	ix->built_at = ix->synced_at = DUROX_NO_TIME;
	snprintf(ix->table, sizeof ix->table, "\"%s\".\"ix_%s\"", s->state_schema, s->schema);
	snprintf(ix->dtab, sizeof ix->dtab, "\"%s\".\"ixd_%s\"", s->state_schema, s->schema);
	snprintf(ix->ttab, sizeof ix->ttab, "\"%s\".\"ixt_%s\"", s->state_schema, s->schema);
	snprintf(ix->gtab, sizeof ix->gtab, "\"%s\".\"ixg_%s\"", s->state_schema, s->schema);
	snprintf(ix->ctab, sizeof ix->ctab, "\"%s\".\"ixc_%s\"", s->state_schema, s->schema);
	ix->n_exec = -1;
	snprintf(ix->meta, sizeof ix->meta, "\"%s\".ix_meta", s->state_schema);
	snprintf(ix->where, sizeof ix->where, "postgres: table %s", ix->table);
	if (mode == DUROX_INDEX_OFF) {
		ix->state = PGIX_OFF;
		snprintf(ix->reason, sizeof ix->reason, "the handle was opened without an index");
	} else if (strlen(s->schema) > 50) {
		ix->state = PGIX_OFF;
		snprintf(ix->reason, sizeof ix->reason,
		         "the runtime's schema name is too long for an index table name");
	} else if (s->reader != NULL) {
		ix->state = PGIX_OFF;
		snprintf(ix->reason, sizeof ix->reason,
		         "reads go to a standby (read_url), where duroxlua cannot keep an index current");
	}
	return ix;
}

void pgi_free(pg_index *ix)
{
	if (ix == NULL)
		return;
	if (ix->feed != NULL)
		pg_feed_vtable.close(ix->feed);
	free(ix);
}

char *pgi_sql(pg_index *ix, const char *tmpl)
{
	buf b;
	buf_init(&b);
	for (const char *p = tmpl; *p; p++) {
		if (p[0] == '@' && p[1] == 'X') {
			buf_adds(&b, ix->table);
			p++;
		} else if (p[0] == '@' && p[1] == 'M') {
			buf_adds(&b, ix->meta);
			p++;
		} else if (p[0] == '@' && (p[1] == 'D' || p[1] == 'T' || p[1] == 'G' || p[1] == 'C')) {
			buf_adds(&b, p[1] == 'D'   ? ix->dtab
			             : p[1] == 'T' ? ix->ttab
			             : p[1] == 'G' ? ix->gtab
			                           : ix->ctab);
			p++;
		} else if (p[0] == '@' && (p[1] == 'S' || p[1] == 'R') && p[2] == '.') {
			buf_addf(&b, "\"%s\".", p[1] == 'S' ? ix->s->state_schema : ix->s->schema);
			p += 2;
		} else {
			buf_addc(&b, *p);
		}
	}
	if (buf_oom(&b)) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

int pgi_q(pg_index *ix, int flags, const char *tmpl, const pqp *p, pq_row_cb cb, void *ud, uint64_t *affected,
          const char *what)
{
	char *sql = pgi_sql(ix, tmpl);
	if (sql == NULL)
		return store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	int rc = pq_query(ix->s, flags | PQ_PRIMARY, sql, p, cb, ud, affected, what);
	free(sql);
	return rc;
}

static int ix_exec(pg_index *ix, const char *tmpl, const char *what)
{
	char *sql = pgi_sql(ix, tmpl);
	if (sql == NULL)
		return store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	int rc = pq_exec_simple(ix->s, sql, what);
	free(sql);
	return rc;
}

/* A write transaction of the index (READ WRITE also on a read-only handle: the index is ours,
 * never the runtime's tables), serialised with other processes by an advisory lock. */
static int ix_begin(pg_index *ix)
{
	int rc = pq_exec_simple(ix->s, "BEGIN TRANSACTION READ WRITE", "starting an index transaction");
	if (rc != DUROX_OK)
		return rc;
	ix->s->in_txn = 1;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, ix->table);
	rc = pq_query(ix->s, PQ_WRITE, "SELECT pg_advisory_xact_lock(hashtext($1))", &p, NULL, NULL, NULL,
	              "locking the index");
	pqp_free(&p);
	/* no NOTICE lines from IF [NOT] EXISTS on the caller's terminal */
	if (rc == DUROX_OK)
		rc = pq_exec_simple(ix->s, "SET LOCAL client_min_messages = warning", "starting an index transaction");
	return rc;
}

static int ix_end(pg_index *ix, int rc)
{
	pg_store *s = ix->s;
	if (rc == DUROX_OK) {
		rc = pq_exec_simple(s, "COMMIT", "committing the index");
	}
	if (s->primary.c != NULL && PQtransactionStatus(s->primary.c) != PQTRANS_IDLE) {
		char saved[sizeof s->base.err];
		memcpy(saved, s->base.err, sizeof saved);
		PQclear(PQexec(s->primary.c, "ROLLBACK"));
		memcpy(s->base.err, saved, sizeof saved);
	}
	s->in_txn = 0;
	return rc;
}

/* The columns of the index table, in pg_add_summary_columns' order. */
#define IX_COLS                                                                                                        \
	"instance_id, name, version, status, created_at, updated_at, execution_count, parent_instance, parent_id,"     \
	" completed_at, failure_kind, error, custom_status, custom_status_version, duration, touched_at"

#define IX_UPSERT                                                                                                      \
	" ON CONFLICT (instance_id) DO UPDATE SET (name, version, status, created_at, updated_at, execution_count,"    \
	" parent_instance, parent_id, completed_at, failure_kind, error, custom_status, custom_status_version,"        \
	" duration, touched_at) = (EXCLUDED.name, EXCLUDED.version, EXCLUDED.status, EXCLUDED.created_at, "            \
	"EXCLUDED.updated_at,"                                                                                         \
	" EXCLUDED.execution_count, EXCLUDED.parent_instance, EXCLUDED.parent_id, EXCLUDED.completed_at,"              \
	" EXCLUDED.failure_kind, EXCLUDED.error, EXCLUDED.custom_status, EXCLUDED.custom_status_version,"              \
	" EXCLUDED.duration, EXCLUDED.touched_at)"

static const char tables_sql[] =
        "CREATE TABLE IF NOT EXISTS @M (runtime_schema text PRIMARY KEY, format int NOT NULL, state text NOT NULL,"
        " build_after text, build_done int8 NOT NULL DEFAULT 0, build_total int8 NOT NULL DEFAULT 0,"
        " feed_pos bytea, inst_oid int8, hist_oid int8, built_at int8, synced_at int8,"
        " history_rows int8 NOT NULL DEFAULT 0);"
        "ALTER TABLE @M ADD COLUMN IF NOT EXISTS n_inst int8 NOT NULL DEFAULT 0;"
        "ALTER TABLE @M ADD COLUMN IF NOT EXISTS n_exec int8 NOT NULL DEFAULT -1;"
        "CREATE TABLE IF NOT EXISTS @X (instance_id text COLLATE \"C\" PRIMARY KEY, name text COLLATE \"C\","
        " version text COLLATE \"C\", status text COLLATE \"C\" NOT NULL, created_at int8 NOT NULL,"
        " updated_at int8 NOT NULL, execution_count int8, parent_instance text COLLATE \"C\", parent_id int8,"
        " completed_at int8, failure_kind text COLLATE \"C\", error text, custom_status text COLLATE \"C\","
        " custom_status_version int8, duration int8, touched_at int8);"
        "CREATE TABLE IF NOT EXISTS @D (instance_id text COLLATE \"C\" PRIMARY KEY, c int8[] NOT NULL,"
        " g text[] NOT NULL);"
        "CREATE TABLE IF NOT EXISTS @T (k int PRIMARY KEY, n int8 NOT NULL);"
        "CREATE TABLE IF NOT EXISTS @G (name text COLLATE \"C\" NOT NULL, vnull bool NOT NULL,"
        " version text COLLATE \"C\" NOT NULL, refs int8 NOT NULL, dn int8 NOT NULL, dsum int8 NOT NULL,"
        " PRIMARY KEY (name, vnull, version));"
        "CREATE TABLE IF NOT EXISTS @C (name text COLLATE \"C\" NOT NULL, vnull bool NOT NULL,"
        " version text COLLATE \"C\" NOT NULL, status text COLLATE \"C\" NOT NULL, n int8 NOT NULL,"
        " PRIMARY KEY (name, vnull, version, status))";

/* Every table of an index but the meta table (what a rebuild and a drop remove). */
#define IX_TABLES "@X, @D, @T, @G, @C"

/* The listing indexes (created after a build's last chunk: loading is faster without them). */
static const char *const index_sql[] = {
        "CREATE INDEX IF NOT EXISTS @I_c ON @X (created_at, instance_id)",
        "CREATE INDEX IF NOT EXISTS @I_u ON @X (updated_at, instance_id)",
        "CREATE INDEX IF NOT EXISTS @I_n ON @X (name, instance_id)",
        "CREATE INDEX IF NOT EXISTS @I_sc ON @X (status, created_at, instance_id)",
        "CREATE INDEX IF NOT EXISTS @I_su ON @X (status, updated_at, instance_id)",
        "CREATE INDEX IF NOT EXISTS @I_sn ON @X (status, name, instance_id)",
        "CREATE INDEX IF NOT EXISTS @I_p ON @X (parent_instance, instance_id) WHERE parent_instance IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS @I_f ON @X (failure_kind, created_at, instance_id) WHERE failure_kind IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS @I_t ON @X (touched_at)",
};

/* index_sql[k] with @I (the index's name, unqualified: it goes into the table's schema). */
static int create_index(pg_index *ix, const char *tmpl)
{
	buf b;
	buf_init(&b);
	for (const char *p = tmpl; *p; p++) {
		if (p[0] == '@' && p[1] == 'I') {
			buf_addf(&b, "\"ix_%s", ix->s->schema);
			p += 2;
			while (*p != ' ')
				buf_addc(&b, *p++);
			buf_addc(&b, '"');
			p--;
		} else {
			buf_addc(&b, *p);
		}
	}
	int rc = buf_oom(&b) ? store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory")
	                     : ix_exec(ix, buf_str(&b), "creating the index's listing indexes");
	buf_free(&b);
	return rc;
}

/* " FROM instances i LEFT JOIN executions e ..." after the summary columns (the runtime's tables
 * through the search path, as every provider read). */
#define FROM_STORE                                                                                                     \
	" FROM instances i LEFT JOIN executions e ON e.instance_id=i.instance_id AND"                                  \
	" e.execution_id=i.current_execution_id"

/* The index row's columns as SQL over i and e: the listing's summary columns, the duration,
 * then the runtime's own instances.updated_at (the metrics' last activity: max(touched_at)). */
static void add_row_columns(pg_store *s, buf *b)
{
	pg_add_summary_columns(s, b);
	buf_adds(b, ", ");
	buf_adds(b, pg_duration_sql);
	buf_adds(b, ", " PG_MS("i.updated_at"));
}

/* ---- the status totals ------------------------------------------------------------------- */

/* @C holds, per (name, version, status), how many rows of @X have them, so that the metrics'
 * instance counts read a few rows instead of grouping the whole table. Every change of @X rows
 * subtracts the old rows' counts and adds the new ones in its own transaction (recompute); a
 * build and a reconciliation (full passes anyway) count afresh. */
#define STATUS_COLS "COALESCE(x.name, ''), x.version IS NULL, COALESCE(x.version, ''), x.status"

/* Adds sign x the counts of the rows of the ids $1 (a text[] parameter in p). */
static int status_adjust(pg_index *ix, const char *arr, int sign)
{
	pqp p;
	pqp_init(&p);
	pqp_text(&p, arr);
	pqp_int(&p, sign);
	int rc = pgi_q(ix, PQ_WRITE,
	               "INSERT INTO @C AS t (name, vnull, version, status, n) SELECT " STATUS_COLS
	               ", $2::int8 * count(*) FROM @X x WHERE x.instance_id = ANY($1::text[]) GROUP BY 1, 2, 3, 4"
	               " ON CONFLICT (name, vnull, version, status) DO UPDATE SET n = t.n + EXCLUDED.n",
	               &p, NULL, NULL, NULL, "updating the index's status totals");
	pqp_free(&p);
	return rc;
}

/* Compares the status totals with the counts of @X: a difference counts once in
 * out->digests_mismatched (the first differing row in out->first when empty). */
static int status_row(void *ud, const PGresult *r)
{
	durox_index_verify_result *o = ud;
	if (pq_int(r, 0) > 0) {
		o->digests_mismatched++;
		if (o->first[0] == '\0')
			snprintf(o->first, sizeof o->first,
			         "status totals: %" PRId64 " rows differ from the index's rows, first %s", pq_int(r, 0),
			         pq_text(r, 1) ? pq_text(r, 1) : "");
	}
	return 1;
}

static int status_verify(pg_index *ix, durox_index_verify_result *out)
{
	return pgi_q(
	        ix, 0,
	        "WITH k AS (SELECT name, vnull, version, status, n FROM @C WHERE n <> 0), c AS (SELECT " STATUS_COLS
	        ", count(*) FROM @X x GROUP BY 1, 2, 3, 4) SELECT count(*), min(d::text) FROM"
	        " ((SELECT 'kept', * FROM k EXCEPT ALL SELECT 'kept', * FROM c) UNION ALL (SELECT 'counted', *"
	        " FROM c EXCEPT ALL SELECT 'counted', * FROM k)) AS d(side, name, vnull, version, status, n)",
	        NULL, status_row, out, NULL, "verifying the index's status totals");
}

/* Counts the status totals afresh from @X. In a transaction. */
static int status_rebuild(pg_index *ix)
{
	return ix_exec(ix,
	               "DELETE FROM @C; INSERT INTO @C (name, vnull, version, status, n) SELECT " STATUS_COLS
	               ", count(*) FROM @X x GROUP BY 1, 2, 3, 4",
	               "counting the index's status totals");
}

/* INSERT INTO @X (...) <summary SELECT> FROM_STORE <where> ON CONFLICT ... */
static char *upsert_sql(pg_index *ix, const char *from_where)
{
	buf b;
	buf_init(&b);
	buf_adds(&b, "INSERT INTO @X (" IX_COLS ") ");
	add_row_columns(ix->s, &b);
	buf_adds(&b, from_where);
	buf_adds(&b, IX_UPSERT);
	if (buf_oom(&b)) {
		buf_free(&b);
		return NULL;
	}
	char *sql = pgi_sql(ix, buf_str(&b));
	buf_free(&b);
	return sql;
}

/* Runs an upsert from upsert_sql (p may be NULL) and adds the rows it inserted (not updated) to
 * *delta: PostgreSQL leaves xmax 0 on a row an INSERT ... ON CONFLICT inserted. */
static int run_upsert(pg_index *ix, const char *ins, const pqp *p, int64_t *delta, const char *what)
{
	buf b;
	buf_init(&b);
	buf_adds(&b, "WITH w AS (");
	buf_adds(&b, ins);
	buf_adds(&b, " RETURNING (xmax = 0) AS ins) SELECT count(*) FILTER (WHERE ins) FROM w");
	int64_t n = 0;
	int rc = buf_oom(&b) ? store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory")
	                     : pq_one_int(ix->s, PQ_WRITE | PQ_PRIMARY, buf_str(&b), p, &n, NULL, what);
	buf_free(&b);
	*delta += n;
	return rc;
}

/* ---- the meta row ------------------------------------------------------------------------ */

struct meta_ud {
	pg_index *ix;
	int found;
	char state[16];
	char *after; /* malloc'd, NULL for SQL NULL */
	char *feed;  /* hex, malloc'd */
	int format;
	int64_t inst_oid, hist_oid;
	int64_t n_exec; /* the executions rows counted with the position (-1: not known) */
};

static int meta_row(void *ud, const PGresult *r)
{
	struct meta_ud *u = ud;
	u->found = 1;
	snprintf(u->state, sizeof u->state, "%s", pq_text(r, 0) ? pq_text(r, 0) : "");
	u->format = (int)pq_int(r, 1);
	if (!pq_isnull(r, 2) && (u->after = strdup(pq_text(r, 2))) == NULL)
		return DUROX_ENOMEM;
	u->ix->build_done = pq_int(r, 3);
	u->ix->build_total = pq_int(r, 4);
	if (!pq_isnull(r, 5) && (u->feed = strdup(pq_text(r, 5))) == NULL)
		return DUROX_ENOMEM;
	u->inst_oid = pq_int(r, 6);
	u->hist_oid = pq_int(r, 7);
	u->ix->built_at = pq_isnull(r, 8) ? DUROX_NO_TIME : pq_int(r, 8);
	u->ix->synced_at = pq_isnull(r, 9) ? DUROX_NO_TIME : pq_int(r, 9);
	u->ix->history_rows = pq_int(r, 10);
	u->ix->n_inst = pq_int(r, 11);
	u->n_exec = pq_isnull(r, 12) ? -1 : pq_int(r, 12);
	return 1;
}

static void meta_free(struct meta_ud *u)
{
	free(u->after);
	free(u->feed);
	u->after = u->feed = NULL;
}

/* Reads the meta row (u->found 0: none, or no tables at all). */
static int meta_read(pg_index *ix, struct meta_ud *u)
{
	memset(u, 0, sizeof *u);
	u->ix = ix;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, ix->table);
	pqp_text(&p, ix->meta);
	int64_t have = 0;
	int rc = pq_one_int(ix->s, PQ_PRIMARY,
	                    "SELECT (to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL)::int", &p, &have,
	                    NULL, "reading the index's tables");
	pqp_free(&p);
	if (rc != DUROX_OK || !have)
		return rc;
	pqp_init(&p);
	pqp_text(&p, ix->s->schema);
	rc = pgi_q(ix, 0,
	           "SELECT state, format, build_after, build_done, build_total, encode(feed_pos,'hex'), inst_oid,"
	           " hist_oid, built_at, synced_at, history_rows, COALESCE((to_jsonb(m)->>'n_inst')::int8, -1),"
	           " (to_jsonb(m)->>'n_exec')::int8 FROM @M m"
	           " WHERE runtime_schema=$1",
	           &p, meta_row, u, NULL, "reading the index's state");
	pqp_free(&p);
	if (rc == DUROX_ENOMEM)
		rc = store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	return rc;
}

static int oid_row(void *ud, const PGresult *r)
{
	int64_t *o = ud;
	o[0] = pq_int(r, 0);
	o[1] = pq_int(r, 1);
	return 1;
}

static int runtime_oids(pg_index *ix, int64_t o[2])
{
	o[0] = o[1] = 0;
	return pq_query(ix->s, PQ_PRIMARY,
	                "SELECT to_regclass('instances')::oid::int8, to_regclass('history')::oid::int8", NULL, oid_row,
	                o, NULL, "reading the schema");
}

static void set_state(pg_index *ix, int state, const char *reason)
{
	ix->state = state;
	snprintf(ix->reason, sizeof ix->reason, "%s", reason != NULL ? reason : "");
}

/* Loads the state from the database when it is not known yet (or again, after a failure). */
static int load(pg_index *ix)
{
	if (ix->state == PGIX_OFF)
		return DUROX_OK;
	struct meta_ud u;
	int rc = meta_read(ix, &u);
	if (rc != DUROX_OK) {
		meta_free(&u);
		return rc;
	}
	if (!u.found) {
		set_state(ix, PGIX_ABSENT, "not built yet: `duroxlua index build` (dx:index_build()) builds it");
	} else if (u.format != IX_FORMAT || ix->n_inst < 0) {
		set_state(ix, PGIX_STALE, "an index of another layout: rebuild it (duroxlua index build --rebuild)");
	} else if (strcmp(u.state, "building") == 0) {
		set_state(ix, PGIX_BUILDING,
		          "a build is under way or was interrupted: `duroxlua index build` resumes it");
	} else if (strcmp(u.state, "ready") == 0) {
		int64_t o[2];
		if ((rc = runtime_oids(ix, o)) == DUROX_OK) {
			if (o[0] != u.inst_oid || o[1] != u.hist_oid)
				set_state(ix, PGIX_STALE,
				          "the runtime's tables were re-created since the index was built: rebuild it");
			else
				set_state(ix, PGIX_READY, "");
		}
	} else {
		set_state(ix, PGIX_STALE, "the store changed in a way the index cannot follow: rebuild it");
	}
	meta_free(&u);
	return rc;
}

/* The feed, positioned at the meta row's position (read again). */
static int place_feed(pg_index *ix)
{
	if (ix->feed_placed)
		return DUROX_OK;
	int rc;
	if (ix->feed == NULL && (rc = pg_feed_vtable.open(&ix->s->base, &ix->feed)) != DUROX_OK)
		return rc;
	struct meta_ud u;
	if ((rc = meta_read(ix, &u)) != DUROX_OK) {
		meta_free(&u);
		return rc;
	}
	if (!u.found || u.feed == NULL) {
		meta_free(&u);
		return store_fail(&ix->s->base, DUROX_ECORRUPT, "the index has no change feed position");
	}
	size_t n = strlen(u.feed) / 2;
	unsigned char *pos = malloc(n + 1);
	if (pos == NULL) {
		meta_free(&u);
		return store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	}
	for (size_t k = 0; k < n; k++) {
		unsigned v = 0;
		sscanf(u.feed + 2 * k, "%2x", &v);
		pos[k] = (unsigned char)v;
	}
	rc = pg_feed_vtable.restore(ix->feed, pos, n);
	/* the executions count saved with that position: exact while the gate stays closed */
	ix->n_exec = u.n_exec;
	/* a restored position would count history at once, looking for deleted rows (a pass over
	 * history in every fresh process); the index finds purges by counting instances at every
	 * round that reads, so the feed's own check may wait its interval */
	if (rc == DUROX_OK)
		rc = pg_feed_vtable.vouch(ix->feed, now_ms());
	free(pos);
	meta_free(&u);
	if (rc == DUROX_OK)
		ix->feed_placed = 1;
	return rc;
}

/* The feed's position as hex (into out, 2 * STORE_FEED_POS_MAX + 1). */
static int feed_hex(pg_index *ix, char *out)
{
	unsigned char pos[STORE_FEED_POS_MAX];
	size_t len = 0;
	int rc = pg_feed_vtable.save(ix->feed, pos, &len);
	if (rc != DUROX_OK)
		return rc;
	for (size_t k = 0; k < len; k++)
		snprintf(out + 2 * k, 3, "%02x", pos[k]);
	out[2 * len] = '\0';
	return DUROX_OK;
}

/* ---- the build --------------------------------------------------------------------------- */

static int chunk_size(void)
{
	const char *e = getenv("DUROX_INDEX_CHUNK");
	long v = e != NULL ? strtol(e, NULL, 10) : 0;
	return v >= 1 && v <= 1000000 ? (int)v : CHUNK_DEFAULT;
}

struct chunk_ud {
	char *last;
	int64_t n, inserted;
};

static int chunk_row(void *ud, const PGresult *r)
{
	struct chunk_ud *u = ud;
	u->n = pq_int(r, 1);
	u->inserted = pq_int(r, 2);
	if (!pq_isnull(r, 0)) {
		free(u->last);
		if ((u->last = strdup(pq_text(r, 0))) == NULL)
			return DUROX_ENOMEM;
	}
	return 1;
}

/* Starts a build from scratch: empties the table, drops the listing indexes, and records the
 * feed's position now (the catch-up after the last chunk starts there). */
static int build_start(pg_index *ix)
{
	pg_store *s = ix->s;
	int rc;
	/* the schema only when missing (CREATE SCHEMA checks the database privilege) */
	pqp p;
	pqp_init(&p);
	pqp_text(&p, s->state_schema);
	int64_t n = 0;
	rc = pq_one_int(s, PQ_PRIMARY, "SELECT count(*) FROM pg_namespace WHERE nspname=$1", &p, &n, NULL,
	                "reading the schema");
	pqp_free(&p);
	if (rc != DUROX_OK)
		return rc;
	if ((rc = ix_begin(ix)) != DUROX_OK)
		return ix_end(ix, rc);
	if (n == 0) {
		char sql[PG_NAME_MAX + 40];
		snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS \"%s\"", s->state_schema);
		rc = pq_exec_simple(s, sql, "creating duroxlua's schema");
	}
	if (rc == DUROX_OK)
		rc = ix_exec(ix, tables_sql, "creating the index's tables");
	/* a new table (an older layout goes with it), its listing indexes made after the last chunk */
	if (rc == DUROX_OK)
		rc = ix_exec(ix, "DROP TABLE IF EXISTS " IX_TABLES, "emptying the index");
	if (rc == DUROX_OK)
		rc = ix_exec(ix, tables_sql, "creating the index's tables");
	int64_t total = 0, o[2] = {0, 0};
	if (rc == DUROX_OK)
		rc = pq_one_int(s, PQ_PRIMARY, "SELECT count(*) FROM instances", NULL, &total, NULL,
		                "counting instances");
	if (rc == DUROX_OK)
		rc = runtime_oids(ix, o);
	if (rc == DUROX_OK && ix->feed == NULL)
		rc = pg_feed_vtable.open(&s->base, &ix->feed);
	if (rc == DUROX_OK)
		rc = pg_feed_vtable.seek(ix->feed, 1);
	char hex[2 * STORE_FEED_POS_MAX + 1];
	if (rc == DUROX_OK)
		rc = feed_hex(ix, hex);
	if (rc == DUROX_OK) {
		pqp_init(&p);
		pqp_text(&p, s->schema);
		pqp_int(&p, IX_FORMAT);
		pqp_int(&p, total);
		pqp_text(&p, hex);
		pqp_int(&p, o[0]);
		pqp_int(&p, o[1]);
		rc = pgi_q(
		        ix, PQ_WRITE,
		        "INSERT INTO @M (runtime_schema, format, state, build_after, build_done, build_total, feed_pos,"
		        " inst_oid, hist_oid, built_at, synced_at, history_rows, n_inst, n_exec) VALUES ($1, $2,"
		        " 'building', NULL, 0, $3, decode($4,'hex'), $5, $6, NULL, NULL, 0, 0, (SELECT count(*) FROM"
		        " executions)) ON CONFLICT (runtime_schema) DO UPDATE SET (format, state, build_after, "
		        "build_done,"
		        " build_total, feed_pos, inst_oid, hist_oid, built_at, synced_at, history_rows, n_inst, "
		        "n_exec) ="
		        " (EXCLUDED.format, 'building', NULL, 0, EXCLUDED.build_total, EXCLUDED.feed_pos, "
		        "EXCLUDED.inst_oid,"
		        " EXCLUDED.hist_oid, NULL, NULL, 0, 0, EXCLUDED.n_exec)",
		        &p, NULL, NULL, NULL, "recording the index's state");
		pqp_free(&p);
	}
	rc = ix_end(ix, rc);
	ix->feed_placed = rc == DUROX_OK;
	ix->n_exec = -1; /* counted in SQL above; the digest counts again until a sync does */
	if (rc == DUROX_OK) {
		ix->build_done = 0;
		ix->build_total = total;
		set_state(ix, PGIX_BUILDING, "a build is under way");
	}
	return rc;
}

/* One chunk after `after` (NULL: from the first id): upserts its rows and moves the position,
 * in one statement (one snapshot) and one transaction. */
static int build_chunk(pg_index *ix, const char *after, struct chunk_ud *cu)
{
	buf b;
	buf_init(&b);
	buf_addf(&b,
	         "WITH c AS MATERIALIZED (SELECT instance_id FROM instances%s ORDER BY instance_id LIMIT %d), w AS (",
	         after != NULL ? " WHERE instance_id > $1" : "", chunk_size());
	buf_adds(&b, "INSERT INTO @X (" IX_COLS ") ");
	add_row_columns(ix->s, &b);
	buf_adds(&b, " FROM c JOIN instances i ON i.instance_id=c.instance_id LEFT JOIN executions e ON"
	             " e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id" IX_UPSERT
	             " RETURNING (xmax = 0) AS ins) SELECT (SELECT max(instance_id) FROM c), (SELECT count(*) FROM c),"
	             " (SELECT count(*) FILTER (WHERE ins) FROM w)");
	char *sql = buf_oom(&b) ? NULL : pgi_sql(ix, buf_str(&b));
	buf_free(&b);
	if (sql == NULL)
		return store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	pqp p;
	pqp_init(&p);
	if (after != NULL)
		pqp_text(&p, after);
	int rc = ix_begin(ix);
	if (rc == DUROX_OK)
		rc = pq_query(ix->s, PQ_WRITE | PQ_PRIMARY, sql, &p, chunk_row, cu, NULL, "building the index");
	if (rc == DUROX_ENOMEM)
		rc = store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	free(sql);
	pqp_free(&p);
	/* the digest rows of the history ids in the chunk's range; the last (empty) chunk takes the
	 * ids after the last instance's (history of ids `instances` lacks counts in the digest too) */
	if (rc == DUROX_OK)
		rc = pgd_build_range(ix, after, cu->n > 0 ? cu->last : NULL);
	if (rc == DUROX_OK) {
		pqp_init(&p);
		pqp_text(&p, ix->s->schema);
		pqp_text(&p, cu->n > 0 ? cu->last : after);
		pqp_int(&p, cu->n);
		pqp_int(&p, cu->inserted);
		rc = pgi_q(ix, PQ_WRITE,
		           "UPDATE @M SET build_after=$2, build_done=build_done+$3, n_inst=n_inst+$4 WHERE"
		           " runtime_schema=$1",
		           &p, NULL, NULL, NULL, "recording the build's progress");
		pqp_free(&p);
	}
	return ix_end(ix, rc);
}

static int ix_sync(pg_index *ix);

/* Builds (rebuild: from scratch) or resumes a build until ready, then catches up. */
static int ix_build(pg_index *ix, int rebuild, store_progress_fn progress, void *ud)
{
	if (ix->state == PGIX_OFF)
		return store_fail(&ix->s->base, DUROX_EUNSUPPORTED, "the handle keeps no visibility index: %s",
		                  ix->reason);
	if (ix->s->in_txn)
		return store_fail(&ix->s->base, DUROX_EINVALID, "a write transaction is open");
	int rc = load(ix);
	if (rc != DUROX_OK)
		return rc;
	if (ix->state == PGIX_READY && !rebuild)
		return ix_sync(ix);
	ix->building = 1;
	if (rebuild || ix->state != PGIX_BUILDING)
		rc = build_start(ix);
	struct meta_ud u = {0};
	if (rc == DUROX_OK)
		rc = meta_read(ix, &u);
	char *after = u.after;
	u.after = NULL;
	meta_free(&u);
	if (rc == DUROX_OK && progress != NULL && progress(ud, (uint64_t)ix->build_done, (uint64_t)ix->build_total))
		rc = DUROX_EABORT;
	while (rc == DUROX_OK) {
		struct chunk_ud cu = {NULL, 0, 0};
		rc = build_chunk(ix, after, &cu);
		if (rc != DUROX_OK || cu.n == 0) {
			free(cu.last);
			break;
		}
		free(after);
		after = cu.last;
		ix->build_done += cu.n;
		uint64_t total = (uint64_t)(ix->build_total > ix->build_done ? ix->build_total : ix->build_done);
		if (progress != NULL && progress(ud, (uint64_t)ix->build_done, total))
			rc = DUROX_EABORT;
	}
	free(after);
	if (rc == DUROX_OK) {
		rc = ix_begin(ix);
		for (size_t k = 0; rc == DUROX_OK && k < sizeof index_sql / sizeof index_sql[0]; k++)
			rc = create_index(ix, index_sql[k]);
		if (rc == DUROX_OK)
			rc = status_rebuild(ix);
		if (rc == DUROX_OK)
			rc = ix_exec(ix, "ANALYZE @X", "analyzing the index");
		if (rc == DUROX_OK) {
			pqp p;
			pqp_init(&p);
			pqp_text(&p, ix->s->schema);
			pqp_int(&p, now_ms());
			rc = pgi_q(ix, PQ_WRITE, "UPDATE @M SET state='ready', built_at=$2 WHERE runtime_schema=$1", &p,
			           NULL, NULL, NULL, "recording the index's state");
			pqp_free(&p);
		}
		rc = ix_end(ix, rc);
	}
	ix->building = 0;
	if (rc == DUROX_EABORT)
		return store_fail(&ix->s->base, DUROX_EABORT, "index build stopped (resumable: build again)");
	if (rc != DUROX_OK)
		return rc;
	if ((rc = load(ix)) != DUROX_OK)
		return rc;
	return ix->state == PGIX_READY ? ix_sync(ix) : DUROX_OK;
}

/* ---- the sync ---------------------------------------------------------------------------- */

typedef struct idlist {
	char **v;
	size_t n, cap;
	int oom;
} idlist;

static void idlist_free(idlist *l)
{
	for (size_t k = 0; k < l->n; k++)
		free(l->v[k]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

struct feed_ud {
	idlist *ids;
	uint64_t rows;
};

static int feed_row(void *ud, const store_feed_row *r)
{
	struct feed_ud *u = ud;
	idlist *l = u->ids;
	u->rows++;
	/* rows come grouped by instance */
	if (l->n > 0 && strcmp(l->v[l->n - 1], r->instance_id) == 0)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		char **v = realloc(l->v, cap * sizeof *v);
		if (v == NULL) {
			l->oom = 1;
			return DUROX_ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	if ((l->v[l->n] = strdup(r->instance_id)) == NULL) {
		l->oom = 1;
		return DUROX_ENOMEM;
	}
	l->n++;
	return 0;
}

/* Recomputes the ids' rows (those the store no longer has are deleted). In a transaction. */
static int recompute(pg_index *ix, idlist *l, int64_t *delta)
{
	if (l->n == 0)
		return DUROX_OK;
	char *arr = pg_text_array((const char *const *)l->v, l->n);
	char *ins = upsert_sql(ix, FROM_STORE " WHERE i.instance_id = ANY($1::text[])");
	int rc = DUROX_OK;
	if (arr == NULL || ins == NULL)
		rc = store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	pqp p;
	pqp_init(&p);
	pqp_text(&p, arr);
	if (rc == DUROX_OK)
		rc = status_adjust(ix, arr, -1);
	if (rc == DUROX_OK)
		rc = run_upsert(ix, ins, &p, delta, "updating the index");
	uint64_t gone = 0;
	if (rc == DUROX_OK)
		rc = pgi_q(ix, PQ_WRITE,
		           "DELETE FROM @X x WHERE x.instance_id = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM"
		           " instances i WHERE i.instance_id = x.instance_id COLLATE \"default\")",
		           &p, NULL, NULL, &gone, "updating the index");
	*delta -= (int64_t)gone;
	if (rc == DUROX_OK)
		rc = status_adjust(ix, arr, 1);
	pqp_free(&p);
	free(arr);
	free(ins);
	if (rc == DUROX_OK)
		rc = pgd_recompute(ix, (const char *const *)l->v, l->n);
	return rc;
}

/* Makes the index hold exactly the store's instance ids: rows of purged instances go, instances
 * it lacks are added; after deleted history (pruned: a prune keeps the current execution, so
 * only instances with more than one can change, through their first start's time) those are
 * recomputed too. In a transaction. */
static int reconcile(pg_index *ix, int pruned, int64_t *delta)
{
	if (pruned) {
		char *up = upsert_sql(ix, FROM_STORE " WHERE i.current_execution_id > 1");
		if (up == NULL)
			return store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
		int rc = run_upsert(ix, up, NULL, delta, "reconciling the index");
		free(up);
		if (rc != DUROX_OK)
			return rc;
	}
	char *ins = upsert_sql(ix, FROM_STORE " WHERE NOT EXISTS (SELECT 1 FROM @X x WHERE x.instance_id ="
	                                      " i.instance_id COLLATE \"C\")");
	if (ins == NULL)
		return store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	int rc = run_upsert(ix, ins, NULL, delta, "reconciling the index");
	free(ins);
	uint64_t gone = 0;
	if (rc == DUROX_OK)
		rc = pgi_q(ix, PQ_WRITE,
		           "DELETE FROM @X x WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.instance_id ="
		           " x.instance_id COLLATE \"default\")",
		           NULL, NULL, NULL, &gone, "reconciling the index");
	*delta -= (int64_t)gone;
	if (rc == DUROX_OK)
		rc = status_rebuild(ix);
	if (rc == DUROX_OK)
		rc = pgd_reconcile(ix, pruned);
	return rc;
}

static int save_position(pg_index *ix, uint64_t rows, int64_t delta)
{
	char hex[2 * STORE_FEED_POS_MAX + 1];
	/* this transaction writes only our tables: its end is no change of the store. Its xid,
	 * kept with the position, is assigned by a write first (a role that may not write the
	 * index fails there without one: an aborted xid would open every other process's gate) */
	pqp p;
	pqp_init(&p);
	pqp_text(&p, ix->s->schema);
	pqp_int(&p, now_ms());
	int rc = pgi_q(ix, PQ_WRITE, "UPDATE @M SET synced_at=$2 WHERE runtime_schema=$1", &p, NULL, NULL, NULL,
	               "recording the index's position");
	pqp_free(&p);
	if (rc == DUROX_OK)
		rc = pg_feed_own_xact(ix->feed);
	if (rc == DUROX_OK)
		rc = feed_hex(ix, hex);
	if (rc != DUROX_OK)
		return rc;
	pqp_init(&p);
	pqp_text(&p, ix->s->schema);
	pqp_text(&p, hex);
	pqp_int(&p, now_ms());
	pqp_int(&p, (int64_t)rows);
	pqp_int(&p, delta);
	/* every save follows this sync's exec_check (it saves only after the gate opened), so
	 * n_exec is the count just taken (-1 when not known: the saved one stays) */
	pqp_int(&p, ix->n_exec);
	rc = pgi_q(ix, PQ_WRITE,
	           "UPDATE @M SET feed_pos=decode($2,'hex'), synced_at=$3, history_rows=history_rows+$4,"
	           " n_inst=n_inst+$5, n_exec=CASE WHEN $6::int8 < 0 THEN n_exec ELSE $6::int8 END"
	           " WHERE runtime_schema=$1",
	           &p, NULL, NULL, NULL, "recording the index's position");
	pqp_free(&p);
	return rc;
}

static int64_t verify_ms(void)
{
	const char *e = getenv("DUROX_INDEX_VERIFY_MS");
	if (e == NULL || *e == '\0')
		return 1000;
	return strtoll(e, NULL, 10);
}

/* One write of the index: the ids recomputed, with fix a reconciliation (pruned: also the
 * instances a prune can change), the feed's position saved. */
static int apply(pg_index *ix, idlist *ids, int fix, int pruned, uint64_t rows)
{
	int64_t delta = 0;
	int rc = ix_begin(ix);
	if (rc == DUROX_OK)
		rc = recompute(ix, ids, &delta);
	if (rc == DUROX_OK && fix)
		rc = reconcile(ix, pruned, &delta);
	if (rc == DUROX_OK)
		rc = save_position(ix, rows, delta);
	/* after a reconciliation (a full pass anyway) the count is taken afresh */
	if (rc == DUROX_OK && fix) {
		pqp p;
		pqp_init(&p);
		pqp_text(&p, ix->s->schema);
		rc = pgi_q(ix, PQ_WRITE, "UPDATE @M SET n_inst=(SELECT count(*) FROM @X) WHERE runtime_schema=$1", &p,
		           NULL, NULL, NULL, "recording the index's state");
		pqp_free(&p);
	}
	rc = ix_end(ix, rc);
	if (rc != DUROX_OK)
		ix->feed_placed = 0; /* the feed moved past rows the index did not take */
	else
		ix->synced_at = now_ms();
	return rc;
}

/* A prune deletes executions rows (and their history rows, which the feed finds only when it
 * counts history: at most every DUROX_INDEX_VERIFY_MS, never in a fresh process's first
 * rounds). So when the gate opens, the executions rows are counted: fewer than the index saw
 * at its last write means rows were deleted, and *pruned is set (the reconciliation then
 * recomputes the instances a prune changes); the count is saved with the position. */
static int exec_check(pg_index *ix, int *pruned)
{
	int64_t v[2] = {0, -1};
	pqp p;
	pqp_init(&p);
	pqp_text(&p, ix->s->schema);
	char *sql = pgi_sql(ix, "SELECT (SELECT count(*) FROM executions), (SELECT n_exec FROM @M WHERE"
	                        " runtime_schema=$1)");
	int rc = sql == NULL ? store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory")
	                     : pq_query(ix->s, PQ_PRIMARY, sql, &p, oid_row, v, NULL, "counting executions");
	free(sql);
	pqp_free(&p);
	if (rc == DUROX_OK) {
		ix->n_exec = v[0];
		if (v[1] >= 0 && v[0] < v[1])
			*pruned = 1;
	}
	return rc;
}

/* Brings a ready index up to date. An idle round (no transaction ended since the last one)
 * reads one snapshot and writes nothing; otherwise the changed instances are recomputed, and
 * once per sync the number of instances is compared with the index's (kept in ix_meta), so a
 * purge by anyone is reconciled at once. */
static int ix_sync(pg_index *ix)
{
	int fresh = !ix->feed_placed; /* the position comes from ix_meta now (a new handle) */
	int rc = place_feed(ix);
	int moved = 0, pruned = 0, saved = 0;
	for (int rounds = 0; rc == DUROX_OK && rounds < 100000; rounds++) {
		idlist ids = {0};
		struct feed_ud fu = {&ids, 0};
		store_feed_request rq = {FEED_LIMIT, 0, 0, verify_ms(), 0};
		store_feed_result res;
		rc = pg_feed_vtable.poll(ix->feed, &rq, feed_row, &fu, &res);
		if (rc != DUROX_OK) {
			if (ids.oom)
				rc = store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
			idlist_free(&ids);
			break;
		}
		if (getenv("DUROX_IX_DEBUG"))
			fprintf(stderr, "ixsync: idle %d rows %zu ids %zu more %d reset %d verified %d\n", res.idle,
			        res.rows, ids.n, res.more, res.reset, res.verified);
		if (res.reset == STORE_FEED_RESET_LOST) {
			idlist_free(&ids);
			/* rows may have been missed: the store answers until a rebuild (on request, as every
			 * PostgreSQL build) */
			char msg[400];
			snprintf(msg, sizeof msg, "%.300s: rebuild it (duroxlua index build --rebuild)", res.reason);
			set_state(ix, PGIX_STALE, msg);
			ix->feed_placed = 0;
			return DUROX_OK;
		}
		if (res.idle) {
			idlist_free(&ids);
			break;
		}
		if (!moved)
			rc = exec_check(ix, &pruned);
		moved = 1;
		ix->scans++;
		pruned |= res.reset == STORE_FEED_RESET_DELETED;
		if (rc == DUROX_OK && ids.n > 0) {
			rc = apply(ix, &ids, 0, 0, fu.rows);
			saved = 1;
		}
		idlist_free(&ids);
		if (rc != DUROX_OK || !res.more)
			break;
	}
	if (rc == DUROX_OK && moved) {
		int64_t d = 0;
		pqp p;
		pqp_init(&p);
		pqp_text(&p, ix->s->schema);
		char *sql = pgi_sql(ix, "SELECT (SELECT count(*) FROM instances) - (SELECT n_inst FROM @M WHERE"
		                        " runtime_schema=$1)");
		rc = sql == NULL ? store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory")
		                 : pq_one_int(ix->s, PQ_PRIMARY, sql, &p, &d, NULL, "counting instances");
		free(sql);
		pqp_free(&p);
		if (rc == DUROX_OK && (d != 0 || pruned)) {
			idlist none = {0};
			rc = apply(ix, &none, 1, pruned, 0);
		} else if (rc == DUROX_OK && !saved && fresh) {
			/* a new handle found transactions ended but none changed the store: the position is
			 * saved all the same, or every later process would scan again for the same nothing.
			 * Only a new handle does so: two long-lived ones that both did would open each other's
			 * gate at every sync. A role that may not write the index only loses that (the feed
			 * stands where it is either way) */
			char err[sizeof ix->s->base.err];
			memcpy(err, ix->s->base.err, sizeof err);
			int64_t delta = 0;
			int w = ix_begin(ix);
			if (w == DUROX_OK)
				w = save_position(ix, 0, delta);
			if (ix_end(ix, w) != DUROX_OK)
				memcpy(ix->s->base.err, err, sizeof err);
			else
				ix->synced_at = now_ms();
		}
	}
	return rc;
}

/* ---- routing ----------------------------------------------------------------------------- */

static int servable(const durox_expr *e)
{
	if (e == NULL)
		return 1;
	switch (e->kind) {
	case EXPR_AND:
	case EXPR_OR: return servable(e->a) && servable(e->b);
	case EXPR_NOT: return servable(e->a);
	case EXPR_IDSET: return 1;
	default: return pgi_field_sql(e->field) != NULL;
	}
}

int pgi_usable(pg_store *s, const durox_filter *f)
{
	pg_index *ix = s->ix;
	if (ix == NULL || ix->state == PGIX_OFF || ix->building || s->in_txn)
		return 0;
	if (f != NULL && !servable(f->root))
		return 0;
	char saved[sizeof s->base.err];
	memcpy(saved, s->base.err, sizeof saved);
	int rc = DUROX_OK;
	if (ix->state == PGIX_UNKNOWN || ix->state == PGIX_BROKEN)
		rc = load(ix);
	if (rc == DUROX_OK && ix->state == PGIX_READY)
		rc = ix_sync(ix);
	if (rc != DUROX_OK) {
		char msg[400];
		snprintf(msg, sizeof msg, "the index failed (%.300s); the store answers reads", s->base.err);
		set_state(ix, PGIX_BROKEN, msg);
	}
	memcpy(s->base.err, saved, sizeof saved);
	return rc == DUROX_OK && ix->state == PGIX_READY;
}

int pgi_history_digest(pg_store *s, store_history_digest *out) { return pgd_read(s->ix, out); }

/* ---- the vtable -------------------------------------------------------------------------- */

static const char *state_name(int st)
{
	switch (st) {
	case PGIX_OFF: return "off";
	case PGIX_ABSENT: return "absent";
	case PGIX_BUILDING: return "building";
	case PGIX_READY: return "ready";
	case PGIX_STALE: return "stale";
	case PGIX_BROKEN: return "broken";
	default: return "closed";
	}
}

static int pgi_status(store *base, durox_index_status *out)
{
	pg_store *s = (pg_store *)base;
	pg_index *ix = s->ix;
	out->enabled = ix->state != PGIX_OFF;
	out->path = ix->state != PGIX_OFF ? ix->where : NULL;
	if (ix->state != PGIX_OFF && !ix->building && !s->in_txn) {
		/* a broken index stays so in the status (its reason says why) until a read retries it */
		int rc = ix->state == PGIX_BROKEN ? DUROX_OK : load(ix);
		if (rc == DUROX_OK && ix->state != PGIX_ABSENT) {
			char *sql = pgi_sql(ix, "SELECT count(*) FROM @X");
			rc = sql == NULL
			             ? store_fail(base, DUROX_ENOMEM, "out of memory")
			             : pq_one_int(s, PQ_PRIMARY, sql, NULL, &ix->n_inst, NULL, "counting the index");
			free(sql);
		}
		if (rc != DUROX_OK)
			return rc;
		int64_t sz = -1;
		pqp p;
		pqp_init(&p);
		pqp_text(&p, ix->table);
		pqp_text(&p, ix->dtab);
		pqp_text(&p, ix->ttab);
		pqp_text(&p, ix->gtab);
		rc = pq_one_int(
		        s, PQ_PRIMARY,
		        "SELECT sum(pg_total_relation_size(to_regclass(t)))::int8 FROM unnest(ARRAY[$1, $2, $3, $4])"
		        " AS u(t)",
		        &p, &sz, NULL, "reading the index's size");
		pqp_free(&p);
		if (rc != DUROX_OK)
			return rc;
		ix->size_bytes = ix->state == PGIX_ABSENT ? -1 : sz;
	}
	out->state = state_name(ix->state);
	out->reason = ix->reason;
	out->instances = (uint64_t)(ix->state == PGIX_ABSENT ? 0 : ix->n_inst);
	out->build_done = (uint64_t)ix->build_done;
	out->build_total = (uint64_t)ix->build_total;
	out->size_bytes = ix->size_bytes;
	out->built_at = ix->built_at;
	out->synced_at = ix->synced_at;
	out->history_rows = (uint64_t)ix->history_rows;
	out->sync_scans = ix->scans;
	out->digest_reads = ix->digest_reads;
	return DUROX_OK;
}

static int pgi_build(store *base, int rebuild, store_progress_fn progress, void *ud)
{
	pg_store *s = (pg_store *)base;
	if (s->ix->building)
		return store_fail(base, DUROX_EINVALID, "an index build is already running on this handle");
	int rc = ix_build(s->ix, rebuild, progress, ud);
	if (rc != DUROX_OK && rc != DUROX_EABORT && s->ix->state != PGIX_OFF) {
		char saved[sizeof s->base.err];
		memcpy(saved, s->base.err, sizeof saved);
		s->ix->building = 0;
		load(s->ix);
		memcpy(s->base.err, saved, sizeof saved);
	}
	return rc;
}

static int pgi_drop(store *base)
{
	pg_store *s = (pg_store *)base;
	pg_index *ix = s->ix;
	if (ix->state == PGIX_OFF)
		return store_fail(base, DUROX_EUNSUPPORTED, "the handle keeps no visibility index: %s", ix->reason);
	if (s->in_txn)
		return store_fail(base, DUROX_EINVALID, "a write transaction is open");
	struct meta_ud u;
	int rc = meta_read(ix, &u);
	int found = u.found;
	meta_free(&u);
	if (rc == DUROX_OK && found) {
		pqp p;
		pqp_init(&p);
		pqp_text(&p, s->schema);
		rc = ix_begin(ix);
		if (rc == DUROX_OK)
			rc = ix_exec(ix, "DROP TABLE IF EXISTS " IX_TABLES, "dropping the index");
		if (rc == DUROX_OK)
			rc = pgi_q(ix, PQ_WRITE, "DELETE FROM @M WHERE runtime_schema=$1", &p, NULL, NULL, NULL,
			           "dropping the index");
		rc = ix_end(ix, rc);
		pqp_free(&p);
	}
	if (rc == DUROX_OK) {
		ix->feed_placed = 0;
		ix->n_exec = -1;
		ix->n_inst = ix->build_done = ix->build_total = ix->history_rows = 0;
		ix->built_at = ix->synced_at = DUROX_NO_TIME;
		ix->size_bytes = -1;
		set_state(ix, PGIX_ABSENT, "not built yet: `duroxlua index build` (dx:index_build()) builds it");
	}
	return rc;
}

struct verify_ud {
	durox_index_verify_result *out;
};

static int verify_row(void *ud, const PGresult *r)
{
	durox_index_verify_result *o = ((struct verify_ud *)ud)->out;
	o->instances_checked = (uint64_t)pq_int(r, 0);
	o->missing = (uint64_t)pq_int(r, 1);
	o->extra = (uint64_t)pq_int(r, 2);
	o->mismatched = (uint64_t)pq_int(r, 3);
	const char *first = pq_text(r, 4);
	if (first != NULL)
		snprintf(o->first, sizeof o->first, "%s", first);
	return 1;
}

static int pgi_verify(store *base, durox_index_verify_result *out)
{
	pg_store *s = (pg_store *)base;
	pg_index *ix = s->ix;
	memset(out, 0, sizeof *out);
	if (ix->state == PGIX_OFF)
		return store_fail(base, DUROX_EUNSUPPORTED, "the handle keeps no visibility index: %s", ix->reason);
	int rc = load(ix);
	if (rc == DUROX_OK && ix->state == PGIX_READY)
		rc = ix_sync(ix);
	if (rc != DUROX_OK)
		return rc;
	if (ix->state != PGIX_READY)
		return store_fail(base, DUROX_EUNSUPPORTED, "the index is not ready (%s): %s", state_name(ix->state),
		                  ix->reason);
	/* every row against the listing's own summary SQL over the store, in one snapshot */
	buf b;
	buf_init(&b);
	buf_adds(&b, "WITH s AS MATERIALIZED (");
	add_row_columns(s, &b);
	buf_adds(&b, FROM_STORE
	         "), t AS (SELECT s.instance_id AS sid, x.instance_id AS xid, (s.*)::text AS st,"
	         " (x.*)::text AS xt FROM s FULL JOIN @X x ON x.instance_id = s.instance_id COLLATE \"C\")"
	         " SELECT count(*) FILTER (WHERE xid IS NOT NULL), count(*) FILTER (WHERE xid IS NULL),"
	         " count(*) FILTER (WHERE sid IS NULL), count(*) FILTER (WHERE sid IS NOT NULL AND xid IS NOT NULL"
	         " AND st IS DISTINCT FROM xt), (SELECT CASE WHEN t2.sid IS NULL THEN 'extra row ' || t2.xid"
	         " WHEN t2.xid IS NULL THEN 'missing row ' || t2.sid ELSE 'instance ' || t2.sid || ': store '"
	         " || t2.st || ' vs index ' || t2.xt END FROM t t2 WHERE t2.sid IS NULL OR t2.xid IS NULL OR"
	         " t2.st IS DISTINCT FROM t2.xt LIMIT 1) FROM t");
	struct verify_ud u = {out};
	if (buf_oom(&b)) {
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	} else {
		/* one snapshot for both sides */
		rc = pq_exec_simple(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "verifying the index");
		if (rc == DUROX_OK) {
			s->in_txn = 1;
			/* a full read of both sides: not bound by the handle's statement timeout */
			rc = pq_exec_simple(s, "SET LOCAL statement_timeout = 0", "verifying the index");
			if (rc == DUROX_OK)
				rc = pgi_q(ix, 0, buf_str(&b), NULL, verify_row, &u, NULL, "verifying the index");
			/* the digest: its totals against history and against the sum of its rows */
			if (rc == DUROX_OK)
				rc = pgd_verify(ix, out);
			if (rc == DUROX_OK)
				rc = status_verify(ix, out);
			rc = ix_end(ix, rc);
		}
	}
	buf_free(&b);
	return rc;
}

static void pgi_set_progress(store *base, store_progress_fn progress, void *ud)
{
	pg_store *s = (pg_store *)base;
	s->ix->progress = progress;
	s->ix->progress_ud = ud;
}

static int pgi_sync(store *base)
{
	pg_store *s = (pg_store *)base;
	pg_index *ix = s->ix;
	if (ix->state == PGIX_OFF)
		return store_fail(base, DUROX_EUNSUPPORTED, "the handle keeps no visibility index: %s", ix->reason);
	int rc = ix->state == PGIX_READY ? DUROX_OK : load(ix);
	if (rc != DUROX_OK)
		return rc;
	if (ix->state == PGIX_READY)
		return ix_sync(ix);
	/* never built (or resumable, or stale): an explicit sync builds it */
	return ix_build(ix, ix->state == PGIX_STALE, ix->progress, ix->progress_ud);
}

const store_index_vtable pg_index_vtable = {pgi_status, pgi_build, pgi_drop, pgi_verify, pgi_set_progress, pgi_sync};
