/*
 * postgres_index_read.c - the reads the PostgreSQL visibility index serves: listing with
 * keyset positions in any order and counting. Each answers exactly what the store's own query
 * (postgres_read.c) answers: the index rows hold what that query computes, filters compile
 * over them through the same compiler (postgres_filter.c, over_index), and the row value
 * (key, instance_id) seeks the (key, instance_id) indexes, so page 500 costs what page 1 costs.
 * Called by postgres_read.c when pgi_usable() says so.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store/postgres_index.h"

const char *pgi_field_sql(int field)
{
	switch (field) {
	case DUROX_FIELD_STATUS: return "x.status";
	case DUROX_FIELD_ORCHESTRATION_NAME: return "x.name";
	case DUROX_FIELD_VERSION: return "x.version";
	case DUROX_FIELD_INSTANCE_ID: return "x.instance_id";
	case DUROX_FIELD_PARENT_INSTANCE: return "x.parent_instance";
	case DUROX_FIELD_CREATED_AT: return "x.created_at";
	case DUROX_FIELD_UPDATED_AT: return "x.updated_at";
	case DUROX_FIELD_COMPLETED_AT: return "x.completed_at";
	case DUROX_FIELD_CUSTOM_STATUS: return "x.custom_status";
	case DUROX_FIELD_EXECUTION_COUNT: return "x.execution_count";
	case DUROX_FIELD_FAILURE_KIND: return "x.failure_kind";
	default: return NULL; /* the text search reads inputs and outputs: the store answers it */
	}
}

/* The summary columns in pg_read_summary's order. */
#define SUMMARY_COLS                                                                                                   \
	"SELECT x.instance_id, x.name, x.version, x.status, x.created_at, x.updated_at, x.execution_count,"            \
	" x.parent_instance, x.parent_id, x.completed_at, x.failure_kind, x.error, x.custom_status,"                   \
	" x.custom_status_version FROM @X x"

struct sum_ud {
	store_summary_cb cb;
	void *ud;
};

static int sum_row(void *ud, const PGresult *r)
{
	struct sum_ud *u = ud;
	durox_instance_summary sum;
	pg_read_summary(r, &sum);
	if (sum.instance_id == NULL)
		return 0;
	return u->cb(u->ud, &sum);
}

static int run(pg_store *s, const buf *sql, const pqp *p, pq_row_cb cb, void *ud, int64_t *one, const char *what)
{
	char *q = pgi_sql(s->ix, buf_str(sql));
	if (q == NULL)
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	int rc = one != NULL ? pq_one_int(s, PQ_PRIMARY, q, p, one, NULL, what)
	                     : pq_query(s, PQ_PRIMARY, q, p, cb, ud, NULL, what);
	free(q);
	return rc;
}

int pgi_list(pg_store *s, const store_list_query *q, store_summary_cb cb, void *ud)
{
	pqp p;
	pqp_init(&p);
	pgsqlgen g = {s, {0}, &p, 0, 1};
	buf_init(&g.sql);
	const char *key;
	switch (q->order_by) {
	case DUROX_ORDER_UPDATED_AT: key = "x.updated_at"; break;
	case DUROX_ORDER_INSTANCE_ID: key = NULL; break;
	case DUROX_ORDER_ORCHESTRATION_NAME: key = "x.name"; break;
	default: key = "x.created_at";
	}
	int text_key = q->order_by == DUROX_ORDER_ORCHESTRATION_NAME;
	const char *dir = q->descending ? "DESC" : "ASC";
	buf_adds(&g.sql, SUMMARY_COLS " WHERE ");
	pg_gen_where(&g, q->filter);
	if (q->after.active) {
		const char *cmp = q->descending ? "<" : ">";
		durox_value kv = {.type = q->after.key_is_text ? DUROX_VAL_TEXT : DUROX_VAL_INT,
		                  .text = q->after.key_text,
		                  .i = q->after.key_int};
		durox_value idv = {.type = DUROX_VAL_TEXT, .text = q->after.instance_id};
		if (key == NULL) {
			buf_addf(&g.sql, " AND x.instance_id %s ", cmp);
			pg_bind_push(&g, &idv);
			buf_adds(&g.sql, "::text");
		} else {
			buf_addf(&g.sql, " AND (%s, x.instance_id) %s (", key, cmp);
			pg_bind_push(&g, &kv);
			buf_adds(&g.sql, text_key ? "::text, " : "::int8, ");
			pg_bind_push(&g, &idv);
			buf_adds(&g.sql, "::text)");
		}
	}
	if (key == NULL)
		buf_addf(&g.sql, " ORDER BY x.instance_id %s", dir);
	else
		buf_addf(&g.sql, " ORDER BY %s %s, x.instance_id %s", key, dir, dir);
	if (q->limit > 0)
		buf_addf(&g.sql, " LIMIT %u", (unsigned)q->limit);
	int rc;
	if (buf_oom(&g.sql))
		rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	else if (g.overflow)
		rc = store_fail(&s->base, DUROX_ELIMIT, "filter too large (more than 4096 values)");
	else {
		struct sum_ud u = {cb, ud};
		rc = run(s, &g.sql, &p, sum_row, &u, NULL, "listing instances");
	}
	buf_free(&g.sql);
	pqp_free(&p);
	return rc;
}

int pgi_count(pg_store *s, const durox_filter *f, int64_t *out)
{
	*out = 0;
	pqp p;
	pqp_init(&p);
	pgsqlgen g = {s, {0}, &p, 0, 1};
	buf_init(&g.sql);
	buf_adds(&g.sql, "SELECT count(*) FROM @X x WHERE ");
	pg_gen_where(&g, f);
	int rc;
	if (buf_oom(&g.sql) || g.overflow)
		rc = store_fail(&s->base, g.overflow ? DUROX_ELIMIT : DUROX_ENOMEM,
		                "filter too large or out of memory");
	else
		rc = run(s, &g.sql, &p, NULL, NULL, out, "counting instances");
	buf_free(&g.sql);
	pqp_free(&p);
	return rc;
}
