/*
 * postgres_jobs.c - the bulk-job journal in a PostgreSQL store: our own tables meta, jobs
 * and job_targets in duroxlua's own schema (state_schema=, default "durox"; never the
 * runtime's), created on first use inside the caller's write transaction, and the reads
 * and writes the engine's job runner makes (src/engine/jobs.c). Times are bigint ms. Our
 * own state is always read on the primary. Contracts in store/ops.h; referenced by
 * pg_ops_vtable (postgres_ops.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store/postgres_internal.h"
#include "store/postgres_jobs.h"

/* Runs tmpl (with @S. naming our schema) on the primary. */
static int run(pg_store *s, int flags, const char *tmpl, const pqp *p, pq_row_cb cb, void *ud, uint64_t *affected,
               const char *what)
{
	char *sql = pq_ours(s, tmpl);
	if (sql == NULL)
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	int rc = pq_query(s, flags | PQ_PRIMARY, sql, p, cb, ud, affected, what);
	free(sql);
	return rc;
}

static const char journal_tables[] =
        "CREATE TABLE IF NOT EXISTS @S.meta (key text PRIMARY KEY, value text NOT NULL);"
        "INSERT INTO @S.meta (key, value) VALUES ('journal_version', '1') ON CONFLICT (key) DO NOTHING;"
        "CREATE TABLE IF NOT EXISTS @S.jobs ("
        " job_id bigserial PRIMARY KEY,"
        " kind text NOT NULL,"
        " state text NOT NULL,"
        " request text NOT NULL,"
        " description text NOT NULL DEFAULT '',"
        " total bigint NOT NULL DEFAULT 0,"
        " done bigint NOT NULL DEFAULT 0,"
        " failed bigint NOT NULL DEFAULT 0,"
        " no_subscription bigint NOT NULL DEFAULT 0,"
        " rate double precision NOT NULL DEFAULT 0,"
        " batch_size integer NOT NULL DEFAULT 0,"
        " owner text,"
        " heartbeat_at bigint,"
        " stop_requested integer NOT NULL DEFAULT 0,"
        " created_at bigint NOT NULL,"
        " started_at bigint,"
        " finished_at bigint,"
        " last_error text);"
        "CREATE TABLE IF NOT EXISTS @S.job_targets ("
        " job_id bigint NOT NULL,"
        " seq bigint NOT NULL,"
        " instance_id text NOT NULL,"
        " state text NOT NULL DEFAULT 'pending',"
        " code text,"
        " message text,"
        " result text,"
        " done_at bigint,"
        " PRIMARY KEY (job_id, seq));";

int pgj_create(store *base)
{
	pg_store *s = (pg_store *)base;
	int exists;
	int rc = pgj_exists(base, &exists);
	if (rc != DUROX_OK || exists)
		return rc;
	/* CREATE SCHEMA checks the database privilege even when the schema exists, so only when
	 * it is missing: an operator may be granted CREATE on a schema an administrator made */
	pqp p;
	pqp_init(&p);
	pqp_text(&p, s->state_schema);
	int64_t n = 0;
	rc = pq_one_int(s, PQ_PRIMARY, "SELECT count(*) FROM pg_namespace WHERE nspname=$1", &p, &n, NULL,
	                "reading the schema");
	pqp_free(&p);
	if (rc == DUROX_OK && n == 0) {
		char *sql = pq_ours(s, "CREATE SCHEMA IF NOT EXISTS @S.");
		if (sql == NULL)
			return store_fail(base, DUROX_ENOMEM, "out of memory");
		sql[strlen(sql) - 1] = '\0'; /* no trailing dot */
		rc = pq_exec_simple(s, sql, "creating duroxlua's schema");
		free(sql);
	}
	if (rc == DUROX_OK) {
		char *sql = pq_ours(s, journal_tables);
		if (sql == NULL)
			return store_fail(base, DUROX_ENOMEM, "out of memory");
		rc = pq_exec_simple(s, sql, "creating the job journal");
		free(sql);
	}
	return rc;
}

int pgj_exists(store *base, int *exists)
{
	pg_store *s = (pg_store *)base;
	*exists = 0;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, s->state_schema);
	int64_t n = 0;
	int rc = pq_one_int(s, PQ_PRIMARY,
	                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid=c.relnamespace"
	                    " WHERE n.nspname=$1 AND c.relkind='r' AND c.relname IN ('jobs','job_targets')",
	                    &p, &n, NULL, "reading the schema");
	pqp_free(&p);
	*exists = n == 2;
	return rc;
}

static int id_row(void *ud, const PGresult *r)
{
	*(int64_t *)ud = pq_int(r, 0);
	return 1;
}

static void time_or_null(pqp *p, int64_t v)
{
	if (v != DUROX_NO_TIME)
		pqp_int(p, v);
	else
		pqp_null(p);
}

int pgj_insert(store *base, const store_job *j, int64_t *job_id)
{
	pg_store *s = (pg_store *)base;
	*job_id = 0;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, j->kind);
	pqp_text(&p, j->state);
	pqp_text(&p, j->request);
	pqp_text(&p, j->description ? j->description : "");
	pqp_int(&p, (int64_t)j->total);
	pqp_double(&p, j->rate);
	pqp_int(&p, j->batch_size);
	pqp_text(&p, j->owner);
	time_or_null(&p, j->heartbeat_at);
	pqp_int(&p, j->created_at);
	int rc = run(s, PQ_WRITE,
	             "INSERT INTO @S.jobs (kind, state, request, description, total, rate, batch_size, owner,"
	             " heartbeat_at, created_at) VALUES ($1, $2, $3, $4, $5::int8, $6::float8, $7::int4, $8, $9::int8,"
	             " $10::int8) RETURNING job_id",
	             &p, id_row, job_id, NULL, "recording a job");
	pqp_free(&p);
	return rc;
}

int pgj_add_targets(store *base, int64_t job_id, uint64_t first_seq, const store_target *t, size_t n)
{
	pg_store *s = (pg_store *)base;
	if (n == 0)
		return DUROX_OK;
	/* one statement per batch: the columns as arrays, unnested together */
	const char **cols[5];
	for (int c = 0; c < 5; c++)
		if ((cols[c] = calloc(n, sizeof *cols[c])) == NULL) {
			for (int k = 0; k < c; k++)
				free(cols[k]);
			return store_fail(base, DUROX_ENOMEM, "out of memory");
		}
	for (size_t k = 0; k < n; k++) {
		cols[0][k] = t[k].instance_id;
		cols[1][k] = t[k].state ? t[k].state : "pending";
		cols[2][k] = t[k].code;
		cols[3][k] = t[k].message;
		cols[4][k] = t[k].result;
	}
	char *arr[5] = {0};
	int rc = DUROX_OK;
	for (int c = 0; c < 5; c++)
		if ((arr[c] = pg_text_array(cols[c], n)) == NULL)
			rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	if (rc == DUROX_OK) {
		pqp p;
		pqp_init(&p);
		pqp_int(&p, job_id);
		pqp_int(&p, (int64_t)first_seq);
		for (int c = 0; c < 5; c++)
			pqp_text(&p, arr[c]);
		rc = run(
		        s, PQ_WRITE,
		        "INSERT INTO @S.job_targets (job_id, seq, instance_id, state, code, message, result)"
		        " SELECT $1::int8, $2::int8 + t.o - 1, t.id, t.st, t.code, t.msg, t.res FROM unnest($3::text[],"
		        " $4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS t(id, st, code, msg, res, "
		        "o)",
		        &p, NULL, NULL, NULL, "recording job targets");
		pqp_free(&p);
	}
	for (int c = 0; c < 5; c++) {
		free(cols[c]);
		free(arr[c]);
	}
	return rc;
}

int pgj_update(store *base, const store_job *j)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, j->state);
	pqp_int(&p, (int64_t)j->total);
	pqp_int(&p, (int64_t)j->done);
	pqp_int(&p, (int64_t)j->failed);
	pqp_int(&p, (int64_t)j->no_subscription);
	pqp_double(&p, j->rate);
	pqp_int(&p, j->batch_size);
	pqp_text(&p, j->owner);
	time_or_null(&p, j->heartbeat_at);
	pqp_int(&p, j->stop_requested);
	time_or_null(&p, j->started_at);
	time_or_null(&p, j->finished_at);
	pqp_text(&p, j->last_error);
	pqp_int(&p, j->job_id);
	int rc = run(s, PQ_WRITE,
	             "UPDATE @S.jobs SET state=$1, total=$2::int8, done=$3::int8, failed=$4::int8,"
	             " no_subscription=$5::int8, rate=$6::float8, batch_size=$7::int4, owner=$8, heartbeat_at=$9::int8,"
	             " stop_requested=$10::int4, started_at=$11::int8, finished_at=$12::int8, last_error=$13"
	             " WHERE job_id=$14::int8",
	             &p, NULL, NULL, NULL, "updating a job");
	pqp_free(&p);
	return rc;
}

struct job_ud {
	store_job_cb cb;
	void *ud;
};

static int job_row(void *ud, const PGresult *r)
{
	struct job_ud *u = ud;
	store_job j = {0};
	j.job_id = pq_int(r, 0);
	j.kind = pq_text(r, 1);
	j.state = pq_text(r, 2);
	j.request = pq_text(r, 3);
	j.description = pq_text(r, 4);
	j.total = (uint64_t)pq_int(r, 5);
	j.done = (uint64_t)pq_int(r, 6);
	j.failed = (uint64_t)pq_int(r, 7);
	j.no_subscription = (uint64_t)pq_int(r, 8);
	j.rate = pq_double(r, 9);
	j.batch_size = (uint32_t)pq_int(r, 10);
	j.owner = pq_text(r, 11);
	j.heartbeat_at = pq_time(r, 12);
	j.stop_requested = (int)pq_int(r, 13);
	j.created_at = pq_time(r, 14);
	j.started_at = pq_time(r, 15);
	j.finished_at = pq_time(r, 16);
	j.last_error = pq_text(r, 17);
	if (j.kind == NULL || j.state == NULL || j.request == NULL)
		return 0;
	return u->cb(u->ud, &j);
}

int pgj_list(store *base, int64_t job_id, const char *state, const char *kind, uint32_t limit, store_job_cb cb,
             void *ud)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_int(&p, job_id);
	pqp_text(&p, state);
	pqp_text(&p, kind);
	if (limit > 0)
		pqp_int(&p, limit);
	else
		pqp_null(&p);
	struct job_ud u = {cb, ud};
	int rc = run(s, 0,
	             "SELECT job_id, kind, state, request, description, total, done, failed, no_subscription, rate,"
	             " batch_size, owner, heartbeat_at, stop_requested, created_at, started_at, finished_at, last_error"
	             " FROM @S.jobs WHERE ($1::int8=0 OR job_id=$1::int8) AND ($2::text IS NULL OR state=$2::text) AND"
	             " ($3::text IS NULL OR kind=$3::text) ORDER BY job_id DESC LIMIT $4::int8",
	             &p, job_row, &u, NULL, "reading jobs");
	pqp_free(&p);
	return rc;
}

struct target_ud {
	store_target_cb cb;
	void *ud;
};

static int target_row(void *ud, const PGresult *r)
{
	struct target_ud *u = ud;
	store_target t = {(uint64_t)pq_int(r, 0), pq_text(r, 1), pq_text(r, 2),
	                  pq_text(r, 3),          pq_text(r, 4), pq_text(r, 5)};
	if (t.instance_id == NULL || t.state == NULL)
		return 0;
	return u->cb(u->ud, &t);
}

int pgj_targets(store *base, int64_t job_id, uint64_t after_seq, uint32_t limit, int pending_only, store_target_cb cb,
                void *ud)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_int(&p, job_id);
	pqp_int(&p, (int64_t)after_seq);
	if (limit > 0)
		pqp_int(&p, limit);
	else
		pqp_null(&p);
	struct target_ud u = {cb, ud};
	int rc = run(s, 0,
	             pending_only
	                     ? "SELECT seq, instance_id, state, code, message, result FROM @S.job_targets"
	                       " WHERE job_id=$1::int8 AND seq>$2::int8 AND state='pending' ORDER BY seq LIMIT $3::int8"
	                     : "SELECT seq, instance_id, state, code, message, result FROM @S.job_targets"
	                       " WHERE job_id=$1::int8 AND seq>$2::int8 ORDER BY seq LIMIT $3::int8",
	             &p, target_row, &u, NULL, "reading job targets");
	pqp_free(&p);
	return rc;
}

int pgj_set_target(store *base, int64_t job_id, uint64_t seq, const store_target *t, int64_t done_at)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, t->state);
	pqp_text(&p, t->code);
	pqp_text(&p, t->message);
	pqp_text(&p, t->result);
	time_or_null(&p, done_at);
	pqp_int(&p, job_id);
	pqp_int(&p, (int64_t)seq);
	char check[112];
	snprintf(check, sizeof check, "job %lld has no target #%llu", (long long)job_id, (unsigned long long)seq);
	char *sql = pq_ours(s, "UPDATE @S.job_targets SET state=$1, code=$2, message=$3, result=$4, done_at=$5::int8"
	                       " WHERE job_id=$6::int8 AND seq=$7::int8");
	int rc = sql == NULL ? store_fail(base, DUROX_ENOMEM, "out of memory")
	                     : pq_defer(s, sql, &p, "recording a job target", check);
	free(sql);
	pqp_free(&p);
	return rc;
}
