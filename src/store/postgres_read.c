/*
 * postgres_read.c - the PostgreSQL provider's read queries: instance summaries (listing
 * with keyset positions, counting, by id), executions and history. Listing runs in two
 * phases so the costly summary columns are computed for the page's rows only, as in
 * sqlite_read.c. Event types come from the event JSON (PostgreSQL stores event_type =
 * 'Event'). Used by the engine through the provider vtable (postgres.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store/postgres_index.h"

#define FROM_CURRENT                                                                                                   \
	" FROM instances i LEFT JOIN executions e ON e.instance_id=i.instance_id AND "                                 \
	"e.execution_id=i.current_execution_id"

/* ---- summaries ------------------------------------------------------------------------ */

void pg_add_summary_columns(pg_store *s, buf *b)
{
	buf_addf(b,
	         "SELECT i.instance_id, i.orchestration_name, i.orchestration_version, %s, %s, %s, "
	         "i.current_execution_id, %s, ",
	         pg_field_sql(s, DUROX_FIELD_STATUS), pg_field_sql(s, DUROX_FIELD_CREATED_AT),
	         pg_field_sql(s, DUROX_FIELD_UPDATED_AT), pg_field_sql(s, DUROX_FIELD_PARENT_INSTANCE));
	if (s->base.info.has_parent_instance)
		buf_adds(b, "CASE WHEN i.parent_instance_id IS NOT NULL THEN (SELECT substring(h.event_data from"
		            " '\"parent_id\": ?([0-9]{1,18})')::int8 FROM history h WHERE " PG_CURRENT_EXEC
		            " AND h.event_id=1) END, ");
	else
		buf_adds(b, "NULL::int8, ");
	buf_addf(b, "%s, CASE WHEN e.status='Failed' THEN ", pg_field_sql(s, DUROX_FIELD_COMPLETED_AT));
	buf_adds(b, pg_failure_kind_sql);
	buf_addf(b, " END, CASE WHEN e.status='Failed' THEN e.output END, %s, %s",
	         pg_field_sql(s, DUROX_FIELD_CUSTOM_STATUS),
	         s->base.info.has_custom_status ? "i.custom_status_version" : "0");
}

void pg_read_summary(const PGresult *r, durox_instance_summary *s)
{
	s->instance_id = pq_text(r, 0);
	s->orchestration_name = pq_text(r, 1);
	s->version = pq_text(r, 2);
	s->status = pq_status_of(pq_text(r, 3));
	s->created_at = pq_int(r, 4);
	s->updated_at = pq_int(r, 5);
	s->execution_count = (uint64_t)pq_int(r, 6);
	s->parent_instance = pq_text(r, 7);
	s->parent_id = pq_isnull(r, 8) ? -1 : pq_int(r, 8);
	s->completed_at = pq_time(r, 9);
	const char *fk = pq_text(r, 10);
	s->failure_kind = fk != NULL ? durox_failure_kind_parse(fk) : DUROX_FAILURE_NONE;
	if (s->failure_kind < 0)
		s->failure_kind = DUROX_FAILURE_APPLICATION;
	s->error = pq_text(r, 11);
	s->custom_status = pq_text(r, 12);
	s->custom_status_version = pq_int(r, 13);
	if (s->orchestration_name == NULL)
		s->orchestration_name = "";
}

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

static const char *order_key_sql(pg_store *s, int order_by)
{
	switch (order_by) {
	case DUROX_ORDER_UPDATED_AT: return pg_field_sql(s, DUROX_FIELD_UPDATED_AT);
	case DUROX_ORDER_INSTANCE_ID: return "i.instance_id";
	case DUROX_ORDER_ORCHESTRATION_NAME: return "i.orchestration_name";
	default: return pg_field_sql(s, DUROX_FIELD_CREATED_AT);
	}
}

int pg_list(store *base, const store_list_query *q, store_summary_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	if (pgi_usable(s, q->filter))
		return pgi_list(s, q, cb, ud);
	pqp p;
	pqp_init(&p);
	pgsqlgen g = {s, {0}, &p, 0, 0};
	buf_init(&g.sql);
	const char *key = order_key_sql(s, q->order_by);
	const char *dir = q->descending ? "DESC" : "ASC";
	int id_order = q->order_by == DUROX_ORDER_INSTANCE_ID;
	int text_key = q->order_by == DUROX_ORDER_ORCHESTRATION_NAME;
	/* byte order: the database's own collation when it is C (the primary key index then serves
	 * instance_id order), else COLLATE "C" */
	const char *bc = s->byte_order ? "" : " COLLATE \"C\"";
	const char *kc = text_key ? bc : "";

	buf_adds(&g.sql, "WITH page AS MATERIALIZED (SELECT i.instance_id AS pid");
	if (!id_order)
		buf_addf(&g.sql, ", %s AS k", key);
	buf_adds(&g.sql, pg_from_current(q->filter));
	buf_adds(&g.sql, " WHERE ");
	pg_gen_where(&g, q->filter);
	if (q->after.active) {
		const char *cmp = q->descending ? "<" : ">";
		durox_value kv = {.type = q->after.key_is_text ? DUROX_VAL_TEXT : DUROX_VAL_INT,
		                  .text = q->after.key_text,
		                  .i = q->after.key_int};
		durox_value idv = {.type = DUROX_VAL_TEXT, .text = q->after.instance_id};
		if (id_order) {
			buf_addf(&g.sql, " AND i.instance_id%s %s ", bc, cmp);
			pg_bind_push(&g, &idv);
			buf_adds(&g.sql, "::text");
		} else {
			const char *cast = text_key ? "::text" : "::int8";
			buf_addf(&g.sql, " AND (%s%s %s ", key, kc, cmp);
			pg_bind_push(&g, &kv);
			buf_addf(&g.sql, "%s OR (%s = ", cast, key);
			pg_bind_push(&g, &kv);
			buf_addf(&g.sql, "%s AND i.instance_id%s %s ", cast, bc, cmp);
			pg_bind_push(&g, &idv);
			buf_adds(&g.sql, "::text))");
		}
	}
	if (id_order)
		buf_addf(&g.sql, " ORDER BY i.instance_id%s %s", bc, dir);
	else
		/* an output alias may only stand alone in ORDER BY: the expression itself under a collation */
		buf_addf(&g.sql, " ORDER BY %s%s %s, i.instance_id%s %s", text_key ? key : "k", kc, dir, bc, dir);
	if (q->limit > 0)
		buf_addf(&g.sql, " LIMIT %u", (unsigned)q->limit);
	buf_adds(&g.sql, ") ");
	pg_add_summary_columns(s, &g.sql);
	buf_adds(&g.sql, " FROM page p JOIN instances i ON i.instance_id=p.pid LEFT JOIN executions e ON "
	                 "e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id");
	if (id_order)
		buf_addf(&g.sql, " ORDER BY i.instance_id%s %s", bc, dir);
	else
		buf_addf(&g.sql, " ORDER BY p.k%s %s, i.instance_id%s %s", kc, dir, bc, dir);

	int rc;
	if (buf_oom(&g.sql))
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	else if (g.overflow)
		rc = store_fail(base, DUROX_ELIMIT, "filter too large (more than 4096 values)");
	else {
		struct sum_ud u = {cb, ud};
		rc = pq_query(s, PQ_GENERIC, buf_str(&g.sql), &p, sum_row, &u, NULL, "listing instances");
	}
	buf_free(&g.sql);
	pqp_free(&p);
	return rc;
}

int pg_count(store *base, const durox_filter *f, int64_t *out)
{
	pg_store *s = (pg_store *)base;
	if (pgi_usable(s, f))
		return pgi_count(s, f, out);
	*out = 0;
	pqp p;
	pqp_init(&p);
	pgsqlgen g = {s, {0}, &p, 0, 0};
	buf_init(&g.sql);
	buf_adds(&g.sql, "SELECT count(*)");
	buf_adds(&g.sql, pg_from_current(f));
	buf_adds(&g.sql, " WHERE ");
	pg_gen_where(&g, f);
	int rc;
	if (buf_oom(&g.sql) || g.overflow)
		rc = store_fail(base, g.overflow ? DUROX_ELIMIT : DUROX_ENOMEM, "filter too large or out of memory");
	else
		rc = pq_one_int(s, PQ_GENERIC, buf_str(&g.sql), &p, out, NULL, "counting instances");
	buf_free(&g.sql);
	pqp_free(&p);
	return rc;
}

char *pg_text_array(const char *const *ids, size_t n)
{
	buf b;
	buf_init(&b);
	buf_addc(&b, '{');
	for (size_t k = 0; k < n; k++) {
		if (k > 0)
			buf_addc(&b, ',');
		if (ids[k] == NULL) {
			buf_adds(&b, "NULL");
			continue;
		}
		buf_addc(&b, '"');
		for (const char *c = ids[k]; *c != '\0'; c++) {
			if (*c == '"' || *c == '\\')
				buf_addc(&b, '\\');
			buf_addc(&b, *c);
		}
		buf_addc(&b, '"');
	}
	buf_addc(&b, '}');
	if (buf_oom(&b)) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

int pg_summaries_by_id(store *base, const char *const *ids, size_t n, store_summary_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	if (n == 0)
		return DUROX_OK;
	char *arr = pg_text_array(ids, n);
	if (arr == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	buf sql;
	buf_init(&sql);
	pg_add_summary_columns(s, &sql);
	buf_adds(&sql, FROM_CURRENT " WHERE i.instance_id = ANY($1::text[])");
	int rc;
	if (buf_oom(&sql)) {
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	} else {
		pqp p;
		pqp_init(&p);
		pqp_text(&p, arr);
		struct sum_ud u = {cb, ud};
		rc = pq_query(s, 0, buf_str(&sql), &p, sum_row, &u, NULL, "reading instances");
		pqp_free(&p);
	}
	buf_free(&sql);
	free(arr);
	return rc;
}

/* ---- executions and history ------------------------------------------------------------ */

struct exec_ud {
	store_exec_cb cb;
	void *ud;
};

static int exec_row(void *ud, const PGresult *r)
{
	struct exec_ud *u = ud;
	store_exec_row row = {(uint64_t)pq_int(r, 0), pq_text(r, 1), pq_text(r, 2),
	                      pq_time(r, 3),          pq_time(r, 4), (uint64_t)pq_int(r, 5)};
	return u->cb(u->ud, &row);
}

int pg_executions(store *base, const char *instance_id, store_exec_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, instance_id);
	struct exec_ud u = {cb, ud};
	int rc =
	        pq_query(s, 0,
	                 "SELECT e.execution_id, e.status, e.output, " PG_MS("e.started_at") ", " PG_MS(
	                         "e.completed_at") ", (SELECT count(*) FROM history h WHERE h.instance_id=e.instance_id"
	                                           " AND h.execution_id=e.execution_id) FROM executions e WHERE"
	                                           " e.instance_id=$1 ORDER BY e.execution_id",
	                 &p, exec_row, &u, NULL, "reading executions");
	pqp_free(&p);
	return rc;
}

struct event_ud {
	store_event_cb cb;
	void *ud;
};

static int event_row(void *ud, const PGresult *r)
{
	struct event_ud *u = ud;
	store_event_row row = {(uint64_t)pq_int(r, 0), (uint64_t)pq_int(r, 1),       pq_text(r, 2),
	                       pq_text(r, 3),          (size_t)PQgetlength(r, 0, 3), pq_time(r, 4)};
	if (row.data == NULL) {
		row.data = "";
		row.data_len = 0;
	}
	return u->cb(u->ud, &row);
}

int pg_history(store *base, const store_history_query *q, store_event_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	buf sql;
	buf_init(&sql);
	char *types = NULL;
	buf_adds(&sql, "SELECT h.execution_id, h.event_id, " PG_EVENT_TYPE("h") ", h.event_data, " PG_MS(
	                       "h.created_at") " FROM history h WHERE h.instance_id=$1 AND h.execution_id=$2");
	pqp_text(&p, q->instance_id);
	pqp_int(&p, (int64_t)q->execution_id);
	if (q->from_event_id > 0) {
		pqp_int(&p, (int64_t)q->from_event_id);
		buf_addf(&sql, " AND h.event_id>=$%d", p.n);
	}
	if (q->to_event_id > 0) {
		pqp_int(&p, (int64_t)q->to_event_id);
		buf_addf(&sql, " AND h.event_id<=$%d", p.n);
	}
	if (q->from_time != DUROX_NO_TIME) {
		pqp_int(&p, q->from_time);
		buf_addf(&sql, " AND " PG_EVENT_TS("h") ">=$%d", p.n);
	}
	if (q->to_time != DUROX_NO_TIME) {
		pqp_int(&p, q->to_time);
		buf_addf(&sql, " AND " PG_EVENT_TS("h") "<=$%d", p.n);
	}
	if (q->ntypes > 0) {
		types = pg_text_array(q->types, q->ntypes);
		pqp_text(&p, types);
		buf_addf(&sql, " AND " PG_EVENT_TYPE("h") " = ANY($%d::text[])", p.n);
	}
	buf_adds(&sql, " ORDER BY h.event_id");
	if (q->limit > 0)
		buf_addf(&sql, " LIMIT %u", (unsigned)q->limit);
	int rc;
	if (buf_oom(&sql) || (q->ntypes > 0 && types == NULL)) {
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	} else {
		struct event_ud u = {cb, ud};
		rc = pq_query(s, 0, buf_str(&sql), &p, event_row, &u, NULL, "reading history");
	}
	buf_free(&sql);
	free(types);
	pqp_free(&p);
	return rc;
}

struct exists_ud {
	int *exists;
	uint64_t *current;
};

static int exists_row(void *ud, const PGresult *r)
{
	struct exists_ud *u = ud;
	*u->exists = 1;
	*u->current = (uint64_t)pq_int(r, 0);
	return 1;
}

int pg_instance_exists(store *base, const char *instance_id, int *exists, uint64_t *current)
{
	pg_store *s = (pg_store *)base;
	*exists = 0;
	*current = 0;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, instance_id);
	struct exists_ud u = {exists, current};
	int rc = pq_query(s, 0, "SELECT current_execution_id FROM instances WHERE instance_id=$1", &p, exists_row, &u,
	                  NULL, "reading an instance");
	pqp_free(&p);
	return rc;
}

int pg_latest_execution(store *base, const char *instance_id, uint64_t *out)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, instance_id);
	int64_t v = 0;
	int rc = pq_one_int(s, 0, "SELECT max(execution_id) FROM executions WHERE instance_id=$1", &p, &v, NULL,
	                    "reading executions");
	*out = (uint64_t)v;
	pqp_free(&p);
	return rc;
}
