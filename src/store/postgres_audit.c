/*
 * postgres_audit.c - the audit log in a PostgreSQL store: the table audit_log in duroxlua's
 * own schema (state_schema=, default "durox"; never the runtime's), created on first use in
 * the caller's write transaction, with a trigger that refuses UPDATE and DELETE. Appends are
 * serialised by a transaction-scoped advisory lock taken before the head is read, so two
 * writers cannot both append after the same record; the engine (src/engine/audit.c)
 * computes the chain. Our own state is always read on the primary. Contracts in
 * store/audit.h; referenced by the PostgreSQL provider (postgres.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/audit.h"
#include "store/postgres_internal.h"
#include "util/buf.h"

/* The advisory lock key of our appends: 'duroxaud' as an int8. */
#define AUDIT_LOCK_KEY "7310030436935508324"

static int run(pg_store *s, int flags, const char *tmpl, const pqp *p, pq_row_cb cb, void *ud, const char *what)
{
	char *sql = pq_ours(s, tmpl);
	if (sql == NULL)
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	int rc = pq_query(s, flags | PQ_PRIMARY, sql, p, cb, ud, NULL, what);
	free(sql);
	return rc;
}

static const char audit_tables[] =
        "CREATE TABLE IF NOT EXISTS @S.audit_log ("
        " seq bigint PRIMARY KEY,"
        " at_ms bigint NOT NULL,"
        " user_id text,"
        " roles text NOT NULL,"
        " source_ip text,"
        " context_reason text,"
        " operation text NOT NULL,"
        " target text,"
        " decision text NOT NULL,"
        " reason text,"
        " policy text,"
        " params text,"
        " result text,"
        " prev_hash text NOT NULL,"
        " hash text NOT NULL);"
        "CREATE INDEX IF NOT EXISTS audit_log_at ON @S.audit_log (at_ms);"
        "CREATE OR REPLACE FUNCTION @S.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS"
        " $f$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $f$;"
        "DO $d$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname='audit_log_append_only' AND"
        " tgrelid='@S.audit_log'::regclass) THEN CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON"
        " @S.audit_log FOR EACH ROW EXECUTE FUNCTION @S.audit_log_append_only(); END IF; END $d$;";

static int count_row(void *ud, const PGresult *r)
{
	*(int64_t *)ud = pq_int(r, 0);
	return 1;
}

static int pga_exists(store *base, int *exists)
{
	pg_store *s = (pg_store *)base;
	*exists = 0;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, s->state_schema);
	int64_t n = 0;
	int rc = pq_query(s, PQ_PRIMARY,
	                  "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid=c.relnamespace"
	                  " WHERE n.nspname=$1 AND c.relkind='r' AND c.relname='audit_log'",
	                  &p, count_row, &n, NULL, "reading the schema");
	pqp_free(&p);
	*exists = n == 1;
	return rc;
}

/* One appender (or creator) at a time until the caller's transaction ends. */
static int lock_log(pg_store *s)
{
	return pq_query(s, PQ_PRIMARY | PQ_WRITE, "SELECT pg_advisory_xact_lock(" AUDIT_LOCK_KEY ")", NULL, NULL, NULL,
	                NULL, "locking the audit log");
}

static int pga_create(store *base)
{
	pg_store *s = (pg_store *)base;
	int exists = 0;
	/* two processes creating the table at once would collide in the catalog: the lock first */
	int rc = lock_log(s);
	if (rc == DUROX_OK)
		rc = pga_exists(base, &exists);
	if (rc != DUROX_OK || exists)
		return rc;
	/* CREATE SCHEMA checks the database privilege even when the schema exists: only when it is
	 * missing (as the job journal does) */
	pqp p;
	pqp_init(&p);
	pqp_text(&p, s->state_schema);
	int64_t n = 0;
	rc = pq_query(s, PQ_PRIMARY, "SELECT count(*) FROM pg_namespace WHERE nspname=$1", &p, count_row, &n, NULL,
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
		char *sql = pq_ours(s, audit_tables);
		if (sql == NULL)
			return store_fail(base, DUROX_ENOMEM, "out of memory");
		rc = pq_exec_simple(s, sql, "creating the audit log");
		free(sql);
	}
	return rc;
}

typedef struct head_ud {
	uint64_t *seq;
	char *hash;
} head_ud;

static int head_row(void *ud, const PGresult *r)
{
	head_ud *h = ud;
	*h->seq = (uint64_t)pq_int(r, 0);
	const char *x = pq_text(r, 1);
	snprintf(h->hash, 65, "%s", x != NULL ? x : "");
	return 1;
}

static int pga_head(store *base, uint64_t *seq, char hash[65])
{
	pg_store *s = (pg_store *)base;
	*seq = 0;
	hash[0] = '\0';
	/* one appender at a time until this transaction ends (held already after create) */
	int rc = lock_log(s);
	if (rc != DUROX_OK)
		return rc;
	head_ud h = {seq, hash};
	return run(s, 0, "SELECT seq, hash FROM @S.audit_log ORDER BY seq DESC LIMIT 1", NULL, head_row, &h,
	           "reading the audit log");
}

static int pga_append(store *base, const store_audit_row *r)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_int(&p, (int64_t)r->seq);
	pqp_int(&p, r->at_ms);
	pqp_text(&p, r->user_id);
	pqp_text(&p, r->roles);
	pqp_text(&p, r->source_ip);
	pqp_text(&p, r->context_reason);
	pqp_text(&p, r->operation);
	pqp_text(&p, r->target);
	pqp_text(&p, r->decision);
	pqp_text(&p, r->reason);
	pqp_text(&p, r->policy);
	pqp_text(&p, r->params);
	pqp_text(&p, r->result);
	pqp_text(&p, r->prev_hash);
	pqp_text(&p, r->hash);
	int rc = p.oom ? store_fail(base, DUROX_ENOMEM, "out of memory")
	               : run(s, PQ_WRITE,
	                     "INSERT INTO @S.audit_log (seq, at_ms, user_id, roles, source_ip, context_reason, "
	                     "operation,"
	                     " target, decision, reason, policy, params, result, prev_hash, hash) VALUES ($1::int8,"
	                     " $2::int8, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
	                     &p, NULL, NULL, "appending to the audit log");
	pqp_free(&p);
	return rc;
}

typedef struct read_ud {
	store_audit_cb cb;
	void *ud;
} read_ud;

static int read_row(void *ud, const PGresult *r)
{
	read_ud *u = ud;
	store_audit_row a = {
	        .seq = (uint64_t)pq_int(r, 0),
	        .at_ms = pq_int(r, 1),
	        .user_id = pq_text(r, 2),
	        .roles = pq_text(r, 3),
	        .source_ip = pq_text(r, 4),
	        .context_reason = pq_text(r, 5),
	        .operation = pq_text(r, 6),
	        .target = pq_text(r, 7),
	        .decision = pq_text(r, 8),
	        .reason = pq_text(r, 9),
	        .policy = pq_text(r, 10),
	        .params = pq_text(r, 11),
	        .result = pq_text(r, 12),
	        .prev_hash = pq_text(r, 13),
	        .hash = pq_text(r, 14),
	};
	int x = u->cb(u->ud, &a);
	return x < 0 ? DUROX_EABORT : x > 0 ? 1 : 0;
}

static int pga_read(store *base, const store_audit_query *q, store_audit_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	int exists;
	int rc = pga_exists(base, &exists);
	if (rc != DUROX_OK || !exists)
		return rc;
	pqp p;
	pqp_init(&p);
	buf sql;
	buf_init(&sql);
	buf_adds(&sql, "SELECT seq, at_ms, user_id, roles, source_ip, context_reason, operation, target, decision,"
	               " reason, policy, params, result, prev_hash, hash FROM @S.audit_log WHERE TRUE");
	if (q->since != DUROX_NO_TIME) {
		pqp_int(&p, q->since);
		buf_addf(&sql, " AND at_ms >= $%d::int8", p.n);
	}
	if (q->user_id != NULL) {
		pqp_text(&p, q->user_id);
		buf_addf(&sql, " AND user_id = $%d", p.n);
	}
	if (q->operation != NULL) {
		pqp_text(&p, q->operation);
		buf_addf(&sql, " AND operation = $%d", p.n);
	}
	buf_adds(&sql, q->newest_first ? " ORDER BY seq DESC" : " ORDER BY seq");
	if (q->limit > 0)
		buf_addf(&sql, " LIMIT %u", (unsigned)q->limit);
	read_ud u = {cb, ud};
	rc = buf_oom(&sql) || p.oom ? store_fail(base, DUROX_ENOMEM, "out of memory")
	                            : run(s, 0, sql.data, &p, read_row, &u, "reading the audit log");
	buf_free(&sql);
	pqp_free(&p);
	return rc;
}

const store_audit_vtable pg_audit_vtable = {pga_create, pga_exists, pga_head, pga_append, pga_read};
