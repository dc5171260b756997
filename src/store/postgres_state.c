/*
 * postgres_state.c - the durable state of the real-time consumers in a PostgreSQL store
 * (store/provider_state.h): tables dead_letters, cursors and rule_runs in duroxlua's own
 * schema (state_schema=, default "durox"; never the runtime's), created on first use inside
 * the caller's write transaction; always read on the primary. Times are bigint ms.
 * Referenced by the provider's state vtable (postgres.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store/postgres_internal.h"
#include "store/provider_state.h"

static const char state_tables[] =
        "CREATE TABLE IF NOT EXISTS @S.meta (key text PRIMARY KEY, value text NOT NULL);"
        "INSERT INTO @S.meta (key, value) VALUES ('stream_state_version', '1') ON CONFLICT (key) DO NOTHING;"
        "CREATE TABLE IF NOT EXISTS @S.dead_letters ("
        " id bigserial PRIMARY KEY,"
        " created_at bigint NOT NULL,"
        " source text NOT NULL,"
        " url text NOT NULL,"
        " idempotency_key text NOT NULL,"
        " payload text NOT NULL,"
        " items bigint NOT NULL,"
        " attempts integer NOT NULL,"
        " last_status integer,"
        " last_error text);"
        "CREATE TABLE IF NOT EXISTS @S.cursors ("
        " name text PRIMARY KEY,"
        " cursor text NOT NULL,"
        " updated_at bigint NOT NULL);"
        "CREATE TABLE IF NOT EXISTS @S.rule_runs ("
        " rule text NOT NULL,"
        " key text NOT NULL,"
        " state text NOT NULL,"
        " attempts integer NOT NULL DEFAULT 0,"
        " error text,"
        " instance_id text,"
        " event_type text,"
        " started_at bigint,"
        " finished_at bigint,"
        " PRIMARY KEY (rule, key));"
        "CREATE INDEX IF NOT EXISTS rule_runs_started ON @S.rule_runs (rule, started_at);";

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

static int st_exists(store *base, int *exists)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, s->state_schema);
	int64_t n = 0;
	int rc = pq_one_int(
	        s, PQ_PRIMARY,
	        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid=c.relnamespace"
	        " WHERE n.nspname=$1 AND c.relkind='r' AND c.relname IN ('dead_letters','cursors','rule_runs')",
	        &p, &n, NULL, "reading the schema");
	pqp_free(&p);
	*exists = n == 3;
	return rc;
}

static int st_create(store *base)
{
	pg_store *s = (pg_store *)base;
	int exists;
	int rc = st_exists(base, &exists);
	if (rc != DUROX_OK || exists)
		return rc;
	/* the schema only when it is missing (CREATE SCHEMA checks the database privilege) */
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
		sql[strlen(sql) - 1] = '\0';
		rc = pq_exec_simple(s, sql, "creating duroxlua's schema");
		free(sql);
	}
	if (rc == DUROX_OK) {
		char *sql = pq_ours(s, state_tables);
		if (sql == NULL)
			return store_fail(base, DUROX_ENOMEM, "out of memory");
		rc = pq_exec_simple(s, sql, "creating the stream state tables");
		free(sql);
	}
	return rc;
}

static int id_row(void *ud, const PGresult *r)
{
	*(int64_t *)ud = pq_int(r, 0);
	return 1;
}

static int dl_add(store *base, const store_dead_letter *d, int64_t *id)
{
	pg_store *s = (pg_store *)base;
	*id = 0;
	pqp p;
	pqp_init(&p);
	pqp_int(&p, d->created_at);
	pqp_text(&p, d->source);
	pqp_text(&p, d->url);
	pqp_text(&p, d->key);
	pqp_text(&p, d->payload);
	pqp_int(&p, d->items);
	pqp_int(&p, d->attempts);
	if (d->last_status > 0)
		pqp_int(&p, d->last_status);
	else
		pqp_null(&p);
	pqp_text(&p, d->last_error);
	int rc = p.oom ? store_fail(base, DUROX_ENOMEM, "out of memory")
	               : run(s, PQ_WRITE,
	                     "INSERT INTO @S.dead_letters (created_at, source, url, idempotency_key, payload, items, "
	                     "attempts,"
	                     " last_status, last_error) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING id",
	                     &p, id_row, id, NULL, "recording a dead letter");
	pqp_free(&p);
	return rc;
}

struct dl_ud {
	store_dead_letter_cb cb;
	void *ud;
};

static int dl_row(void *ud, const PGresult *r)
{
	struct dl_ud *u = ud;
	store_dead_letter d;
	d.id = pq_int(r, 0);
	d.created_at = pq_int(r, 1);
	d.source = pq_text(r, 2);
	d.url = pq_text(r, 3);
	d.key = pq_text(r, 4);
	d.payload = pq_text(r, 5);
	d.items = (uint32_t)pq_int(r, 6);
	d.attempts = (int)pq_int(r, 7);
	d.last_status = (long)pq_int(r, 8);
	d.last_error = pq_text(r, 9);
	return u->cb(u->ud, &d);
}

static int dl_list(store *base, const char *source, int64_t after, uint32_t limit, store_dead_letter_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_int(&p, after);
	pqp_text(&p, source);
	if (limit)
		pqp_int(&p, limit);
	else
		pqp_null(&p);
	struct dl_ud u = {cb, ud};
	int rc = p.oom ? store_fail(base, DUROX_ENOMEM, "out of memory")
	               : run(s, 0,
	                     "SELECT id, created_at, source, url, idempotency_key, payload, items, attempts, "
	                     "last_status,"
	                     " last_error FROM @S.dead_letters WHERE id > $1 AND ($2::text IS NULL OR source = $2)"
	                     " ORDER BY id LIMIT $3",
	                     &p, dl_row, &u, NULL, "reading dead letters");
	pqp_free(&p);
	return rc;
}

static int dl_delete(store *base, int64_t id, int *found)
{
	pg_store *s = (pg_store *)base;
	*found = 0;
	pqp p;
	pqp_init(&p);
	pqp_int(&p, id);
	uint64_t n = 0;
	int rc = run(s, PQ_WRITE, "DELETE FROM @S.dead_letters WHERE id = $1", &p, NULL, NULL, &n,
	             "removing a dead letter");
	pqp_free(&p);
	*found = n > 0;
	return rc;
}

static int str_row(void *ud, const PGresult *r)
{
	char **out = ud;
	const char *t = pq_text(r, 0);
	if (t != NULL && (*out = strdup(t)) == NULL)
		return DUROX_ENOMEM;
	return 1;
}

static int cur_get(store *base, const char *name, char **out)
{
	pg_store *s = (pg_store *)base;
	*out = NULL;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, name);
	int rc = run(s, 0, "SELECT cursor FROM @S.cursors WHERE name = $1", &p, str_row, out, NULL, "reading a cursor");
	pqp_free(&p);
	if (rc == DUROX_ENOMEM)
		store_fail(base, rc, "out of memory");
	return rc;
}

static int cur_put(store *base, const char *name, const char *cursor, int64_t at)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, name);
	pqp_text(&p, cursor);
	pqp_int(&p, at);
	int rc = run(s, PQ_WRITE,
	             "INSERT INTO @S.cursors (name, cursor, updated_at) VALUES ($1, $2, $3)"
	             " ON CONFLICT (name) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = EXCLUDED.updated_at",
	             &p, NULL, NULL, NULL, "saving a cursor");
	pqp_free(&p);
	return rc;
}

#define RUN_COLUMNS "rule, key, state, attempts, error, instance_id, event_type, started_at, finished_at"

static void read_run(const PGresult *r, store_rule_run *x)
{
	x->rule = pq_text(r, 0);
	x->key = pq_text(r, 1);
	x->state = pq_text(r, 2);
	x->attempts = (int)pq_int(r, 3);
	x->error = pq_text(r, 4);
	x->instance_id = pq_text(r, 5);
	x->event_type = pq_text(r, 6);
	x->started_at = pq_isnull(r, 7) ? DUROX_NO_TIME : pq_int(r, 7);
	x->finished_at = pq_isnull(r, 8) ? DUROX_NO_TIME : pq_int(r, 8);
}

struct run_ud {
	store_rule_run_cb cb;
	void *ud;
};

static int run_row(void *ud, const PGresult *r)
{
	struct run_ud *u = ud;
	store_rule_run x;
	read_run(r, &x);
	return u->cb(u->ud, &x);
}

/* run_get keeps the strings of the row it found until the next call (in the store). */
struct get_ud {
	pg_store *s;
	store_rule_run *out;
	int found;
	int oom;
};

static int get_row(void *ud, const PGresult *r)
{
	struct get_ud *u = ud;
	store_rule_run x;
	read_run(r, &x);
	const char *parts[] = {x.rule, x.key, x.state, x.error, x.instance_id, x.event_type};
	size_t total = 0;
	for (size_t i = 0; i < 6; i++)
		total += parts[i] ? strlen(parts[i]) + 1 : 0;
	free(u->s->state_buf);
	if ((u->s->state_buf = malloc(total ? total : 1)) == NULL) {
		u->oom = 1;
		return DUROX_ENOMEM;
	}
	char *p = u->s->state_buf;
	const char **dst[] = {&u->out->rule,  &u->out->key,         &u->out->state,
	                      &u->out->error, &u->out->instance_id, &u->out->event_type};
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
	u->out->attempts = x.attempts;
	u->out->started_at = x.started_at;
	u->out->finished_at = x.finished_at;
	u->found = 1;
	return 1;
}

static int rr_get(store *base, const char *rule, const char *key, int *found, store_rule_run *r)
{
	pg_store *s = (pg_store *)base;
	*found = 0;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, rule);
	pqp_text(&p, key);
	struct get_ud u = {s, r, 0, 0};
	int rc = run(s, 0, "SELECT " RUN_COLUMNS " FROM @S.rule_runs WHERE rule = $1 AND key = $2", &p, get_row, &u,
	             NULL, "reading a rule run");
	pqp_free(&p);
	if (u.oom)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	*found = u.found;
	return rc;
}

static void time_or_null(pqp *p, int64_t v)
{
	if (v != DUROX_NO_TIME)
		pqp_int(p, v);
	else
		pqp_null(p);
}

static int rr_put(store *base, const store_rule_run *r)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, r->rule);
	pqp_text(&p, r->key);
	pqp_text(&p, r->state);
	pqp_int(&p, r->attempts);
	pqp_text(&p, r->error);
	pqp_text(&p, r->instance_id);
	pqp_text(&p, r->event_type);
	time_or_null(&p, r->started_at);
	time_or_null(&p, r->finished_at);
	int rc = p.oom ? store_fail(base, DUROX_ENOMEM, "out of memory")
	               : run(s, PQ_WRITE,
	                     "INSERT INTO @S.rule_runs (" RUN_COLUMNS ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"
	                     " ON CONFLICT (rule, key) DO UPDATE SET state = EXCLUDED.state, attempts = "
	                     "EXCLUDED.attempts,"
	                     " error = EXCLUDED.error, instance_id = EXCLUDED.instance_id, event_type ="
	                     " EXCLUDED.event_type, started_at = EXCLUDED.started_at, finished_at = "
	                     "EXCLUDED.finished_at",
	                     &p, NULL, NULL, NULL, "recording a rule run");
	pqp_free(&p);
	return rc;
}

static int rr_list(store *base, const char *rule, const char *state, int64_t since, uint32_t limit,
                   store_rule_run_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, rule);
	pqp_text(&p, state);
	pqp_int(&p, since == DUROX_NO_TIME ? 0 : since);
	if (limit)
		pqp_int(&p, limit);
	else
		pqp_null(&p);
	struct run_ud u = {cb, ud};
	int rc = p.oom ? store_fail(base, DUROX_ENOMEM, "out of memory")
	               : run(s, 0,
	                     "SELECT " RUN_COLUMNS " FROM @S.rule_runs WHERE ($1::text IS NULL OR rule = $1) AND"
	                     " ($2::text IS NULL OR state = $2) AND coalesce(started_at, 0) >= $3"
	                     " ORDER BY started_at DESC, key COLLATE \"C\" DESC LIMIT $4",
	                     &p, run_row, &u, NULL, "reading rule runs");
	pqp_free(&p);
	return rc;
}

static int rr_count(store *base, const char *rule, int64_t since, uint64_t *n)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, rule);
	pqp_int(&p, since);
	int64_t v = 0;
	char *sql = pq_ours(s, "SELECT count(*) FROM @S.rule_runs WHERE rule = $1 AND started_at >= $2 AND"
	                       " state <> 'skipped'");
	int rc = sql == NULL ? store_fail(base, DUROX_ENOMEM, "out of memory")
	                     : pq_one_int(s, PQ_PRIMARY, sql, &p, &v, NULL, "counting rule runs");
	free(sql);
	pqp_free(&p);
	*n = (uint64_t)v;
	return rc;
}

const store_state_vtable pg_state_vtable = {st_create, st_exists, dl_add, dl_list, dl_delete, cur_get,
                                            cur_put,   rr_get,    rr_put, rr_list, rr_count};
