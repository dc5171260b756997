/*
 * sqlite_read.c - the SQLite provider's read queries: instance summaries (listing with
 * keyset positions, counting, by id), executions and history. Listing runs in two phases
 * so the costly summary columns are computed for the page's rows only.
 * Used by the engine through the provider vtable (sqlite.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_index.h"

/* ---- summaries ------------------------------------------------------------------ */

#define FROM_CURRENT                                                                                                   \
	" FROM instances i LEFT JOIN executions e ON e.instance_id=i.instance_id AND "                                 \
	"e.execution_id=i.current_execution_id"

/* Appends the summary column list (see read_summary for the order). */
void sq_add_summary_columns(sqlite_store *s, buf *b)
{
	buf_addf(b,
	         "SELECT i.instance_id, i.orchestration_name, i.orchestration_version, %s, %s, %s, "
	         "i.current_execution_id, %s, ",
	         sq_field_sql(s, DUROX_FIELD_STATUS), sq_field_sql(s, DUROX_FIELD_CREATED_AT),
	         sq_field_sql(s, DUROX_FIELD_UPDATED_AT), sq_field_sql(s, DUROX_FIELD_PARENT_INSTANCE));
	if (s->base.info.has_parent_instance)
		buf_adds(b, "CASE WHEN i.parent_instance_id IS NOT NULL THEN (SELECT CASE WHEN json_valid(h.event_data)"
		            " THEN json_extract(h.event_data,'$.parent_id') END FROM history h WHERE " CURRENT_EXEC
		            " AND h.event_id=1) END, ");
	else
		buf_adds(b, "NULL, ");
	buf_addf(b, "%s, %s, CASE WHEN e.status='Failed' THEN e.output END, %s, %s",
	         sq_field_sql(s, DUROX_FIELD_COMPLETED_AT), sq_field_sql(s, DUROX_FIELD_FAILURE_KIND),
	         sq_field_sql(s, DUROX_FIELD_CUSTOM_STATUS),
	         s->base.info.has_custom_status ? "i.custom_status_version" : "0");
}

static int status_from_text(const char *t)
{
	int st = t != NULL ? durox_status_parse(t) : -1;
	return st < 0 ? DUROX_STATUS_UNKNOWN : st;
}

void sq_read_summary(sqlite3_stmt *st, durox_instance_summary *s)
{
	s->instance_id = sq_col_text(st, 0);
	s->orchestration_name = sq_col_text(st, 1);
	s->version = sq_col_text(st, 2);
	s->status = status_from_text(sq_col_text(st, 3));
	s->created_at = sqlite3_column_int64(st, 4);
	s->updated_at = sqlite3_column_int64(st, 5);
	s->execution_count = (uint64_t)sqlite3_column_int64(st, 6);
	s->parent_instance = sq_col_text(st, 7);
	s->parent_id = sqlite3_column_type(st, 8) == SQLITE_INTEGER ? sqlite3_column_int64(st, 8) : -1;
	s->completed_at = sq_col_time(st, 9);
	const char *fk = sq_col_text(st, 10);
	s->failure_kind = fk != NULL ? durox_failure_kind_parse(fk) : DUROX_FAILURE_NONE;
	if (s->failure_kind < 0)
		s->failure_kind = DUROX_FAILURE_APPLICATION;
	s->error = sq_col_text(st, 11);
	s->custom_status = sq_col_text(st, 12);
	s->custom_status_version = sqlite3_column_int64(st, 13);
	if (s->orchestration_name == NULL)
		s->orchestration_name = "";
}

/* Steps st and hands each summary row to cb. */
int sq_run_summaries(sqlite_store *s, sqlite3_stmt *st, store_summary_cb cb, void *ud)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		durox_instance_summary sum;
		sq_read_summary(st, &sum);
		if (sum.instance_id == NULL)
			continue;
		int r = cb(ud, &sum);
		if (r != 0) {
			sq_done(st);
			return r > 0 ? DUROX_OK : r;
		}
	}
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "listing instances");
}

static const char *order_key_sql(sqlite_store *s, int order_by)
{
	switch (order_by) {
	case DUROX_ORDER_UPDATED_AT: return sq_field_sql(s, DUROX_FIELD_UPDATED_AT);
	case DUROX_ORDER_INSTANCE_ID: return "i.instance_id";
	case DUROX_ORDER_ORCHESTRATION_NAME: return "i.orchestration_name";
	default: return sq_field_sql(s, DUROX_FIELD_CREATED_AT);
	}
}

int sq_list(store *base, const store_list_query *q, store_summary_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	if (sqi_usable(s))
		return sqi_list(s, q, cb, ud);
	binds *b = calloc(1, sizeof *b);
	if (b == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	sqlgen g = {s, {0}, b, 0};
	buf_init(&g.sql);
	const char *key = order_key_sql(s, q->order_by);
	const char *dir = q->descending ? "DESC" : "ASC";
	int id_order = q->order_by == DUROX_ORDER_INSTANCE_ID;

	/* Phase 1 (inner): only the keys of the page's rows, so the expensive summary columns
	 * are computed for the page alone, not for every row the sort looks at. */
	buf_adds(&g.sql, "WITH page AS (SELECT i.rowid AS rid");
	if (!id_order)
		buf_addf(&g.sql, ", %s AS k", key);
	buf_adds(&g.sql, sq_from_current(q->filter));
	buf_adds(&g.sql, " WHERE ");
	sq_gen_where(&g, q->filter);
	if (q->after.active) {
		const char *cmp = q->descending ? "<" : ">";
		durox_value kv = {.type = q->after.key_is_text ? DUROX_VAL_TEXT : DUROX_VAL_INT,
		                  .text = q->after.key_text,
		                  .i = q->after.key_int};
		durox_value idv = {.type = DUROX_VAL_TEXT, .text = q->after.instance_id};
		if (id_order) {
			buf_addf(&g.sql, " AND i.instance_id %s ", cmp);
			sq_bind_push(&g, &idv);
		} else {
			buf_addf(&g.sql, " AND (%s %s ", key, cmp);
			sq_bind_push(&g, &kv);
			buf_addf(&g.sql, " OR (%s = ", key);
			sq_bind_push(&g, &kv);
			buf_addf(&g.sql, " AND i.instance_id %s ", cmp);
			sq_bind_push(&g, &idv);
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
	sq_add_summary_columns(s, &g.sql);
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
		rc = store_fail(base, DUROX_ELIMIT, "filter too large (more than %zu values)",
		                sizeof b->v / sizeof b->v[0]);
	else {
		sqlite3_stmt *st = sq_stmt(s, buf_str(&g.sql));
		if (st == NULL)
			rc = sq_stmt_err(s);
		else if ((rc = sq_bind_all(s, st, b, 1)) != DUROX_OK)
			sq_done(st);
		else
			rc = sq_run_summaries(s, st, cb, ud);
	}
	buf_free(&g.sql);
	free(b);
	return rc;
}

int sq_count(store *base, const durox_filter *f, int64_t *out)
{
	sqlite_store *s = (sqlite_store *)base;
	if (sqi_usable(s))
		return sqi_count(s, f, out);
	*out = 0;
	binds *b = calloc(1, sizeof *b);
	if (b == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	sqlgen g = {s, {0}, b, 0};
	buf_init(&g.sql);
	buf_adds(&g.sql, "SELECT count(*)");
	buf_adds(&g.sql, sq_from_current(f));
	buf_adds(&g.sql, " WHERE ");
	sq_gen_where(&g, f);
	int rc;
	sqlite3_stmt *st;
	if (buf_oom(&g.sql) || b->overflow)
		rc = store_fail(base, b->overflow ? DUROX_ELIMIT : DUROX_ENOMEM, "filter too large or out of memory");
	else if ((st = sq_stmt(s, buf_str(&g.sql))) == NULL)
		rc = sq_stmt_err(s);
	else {
		rc = sq_bind_all(s, st, b, 1);
		if (rc == DUROX_OK) {
			int r = sqlite3_step(st);
			if (r == SQLITE_ROW)
				*out = sqlite3_column_int64(st, 0);
			else
				rc = sq_fail(s, r, "counting instances");
		}
		sq_done(st);
	}
	buf_free(&g.sql);
	free(b);
	return rc;
}

int sq_summaries_by_id(store *base, const char *const *ids, size_t n, store_summary_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	if (sqi_usable(s))
		return sqi_summaries_by_id(s, ids, n, cb, ud);
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
		sq_add_summary_columns(s, &sql);
		buf_adds(&sql, FROM_CURRENT " WHERE i.instance_id IN (");
		for (size_t k = 0; k < chunk; k++)
			buf_adds(&sql, k ? ",?" : "?");
		buf_addc(&sql, ')');
		if (buf_oom(&sql)) {
			rc = store_fail(base, DUROX_ENOMEM, "out of memory");
			break;
		}
		sqlite3_stmt *st = sq_stmt(s, buf_str(&sql));
		if (st == NULL) {
			rc = sq_stmt_err(s);
			break;
		}
		for (size_t k = 0; k < chunk; k++)
			sqlite3_bind_text(st, (int)k + 1, ids[done + k], -1, SQLITE_STATIC);
		rc = sq_run_summaries(s, st, cb, ud);
		done += chunk;
	}
	buf_free(&sql);
	return rc;
}

/* ---- executions and history ----------------------------------------------------- */

int sq_executions(store *base, const char *instance_id, store_exec_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = sq_stmt(s, "SELECT e.execution_id, e.status, e.output, durox_ms(e.started_at),"
	                              " durox_ms(e.completed_at), (SELECT count(*) FROM history h WHERE"
	                              " h.instance_id=e.instance_id AND h.execution_id=e.execution_id)"
	                              " FROM executions e WHERE e.instance_id=? ORDER BY e.execution_id");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, instance_id, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_exec_row r = {(uint64_t)sqlite3_column_int64(st, 0),
		                    sq_col_text(st, 1),
		                    sq_col_text(st, 2),
		                    sq_col_time(st, 3),
		                    sq_col_time(st, 4),
		                    (uint64_t)sqlite3_column_int64(st, 5)};
		int x = cb(ud, &r);
		if (x != 0) {
			sq_done(st);
			return x > 0 ? DUROX_OK : x;
		}
	}
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "reading executions");
}

int sq_history(store *base, const store_history_query *q, store_event_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlgen g = {s, {0}, NULL, 0};
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
	sqlite3_stmt *st = sq_stmt(s, buf_str(&g.sql));
	buf_free(&g.sql);
	if (st == NULL)
		return sq_stmt_err(s);
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
		store_event_row r = {(uint64_t)sqlite3_column_int64(st, 0),
		                     (uint64_t)sqlite3_column_int64(st, 1),
		                     sq_col_text(st, 2),
		                     sq_col_text(st, 3),
		                     (size_t)sqlite3_column_bytes(st, 3),
		                     sq_col_time(st, 4)};
		if (r.data == NULL) {
			r.data = "";
			r.data_len = 0;
		}
		int x = cb(ud, &r);
		if (x != 0) {
			sq_done(st);
			return x > 0 ? DUROX_OK : x;
		}
	}
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "reading history");
}

int sq_instance_exists(store *base, const char *instance_id, int *exists, uint64_t *current)
{
	sqlite_store *s = (sqlite_store *)base;
	*exists = 0;
	*current = 0;
	sqlite3_stmt *st = sq_stmt(s, "SELECT current_execution_id FROM instances WHERE instance_id=?");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, instance_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*exists = 1;
		*current = (uint64_t)sqlite3_column_int64(st, 0);
	}
	sq_done(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "reading an instance");
}

int sq_latest_execution(store *base, const char *instance_id, uint64_t *out)
{
	sqlite_store *s = (sqlite_store *)base;
	*out = 0;
	sqlite3_stmt *st = sq_stmt(s, "SELECT MAX(execution_id) FROM executions WHERE instance_id=?");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, instance_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	sq_done(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? DUROX_OK : sq_fail(s, rc, "reading executions");
}
