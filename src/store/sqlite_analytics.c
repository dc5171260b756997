/*
 * sqlite_analytics.c - the SQLite provider's analytics queries (provider_metrics.h):
 * query_instances (grouping, counts, rates and nearest-rank duration percentiles with
 * window functions, over the same filter SQL as listing), time series bucketed from durable
 * timestamps, and parent/child walks with recursive CTEs over idx_instances_parent.
 * Relies on sqlite_internal.h (statement cache, filter compiler); used through
 * sq_metrics_vtable (sqlite_metrics.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/provider_metrics.h"
#include "store/sqlite_internal.h"

int sq_query_instances(store *st, const store_group_query *q, store_group_cb cb, void *ud);
int sq_time_series(store *st, const store_series_query *q, durox_time_bucket *buckets, size_t n);
int sq_descendants(store *st, const char *root, uint32_t max_depth, uint32_t limit, const durox_filter *filter,
                   store_node_cb cb, void *ud);
int sq_count_descendants(store *st, const char *root, const durox_filter *filter, uint64_t *out);
int sq_ancestors(store *st, const char *id, store_node_cb cb, void *ud);

static const char *group_key_sql(sqlite_store *s, int g, int over_index)
{
	if (over_index) {
		/* the same values, as columns of the visibility index */
		switch (g) {
		case DUROX_GROUP_ORCHESTRATION_NAME: return "x.name";
		case DUROX_GROUP_STATUS: return "x.status";
		case DUROX_GROUP_CREATED_DATE: return "(x.created_at/86400000)*86400000";
		case DUROX_GROUP_CREATED_HOUR: return "(x.created_at/3600000)*3600000";
		case DUROX_GROUP_PARENT_INSTANCE: return "x.parent_instance";
		case DUROX_GROUP_VERSION: return "x.version";
		default: return "NULL";
		}
	}
	switch (g) {
	case DUROX_GROUP_ORCHESTRATION_NAME: return "i.orchestration_name";
	case DUROX_GROUP_STATUS: return "COALESCE(e.status,'Unknown')";
	case DUROX_GROUP_CREATED_DATE: return "(COALESCE(durox_ms(i.created_at),0)/86400000)*86400000";
	case DUROX_GROUP_CREATED_HOUR: return "(COALESCE(durox_ms(i.created_at),0)/3600000)*3600000";
	case DUROX_GROUP_PARENT_INSTANCE: return s->base.info.has_parent_instance ? "i.parent_instance_id" : "NULL";
	case DUROX_GROUP_VERSION: return "i.orchestration_version";
	default: return "NULL";
	}
}

/* Appends "k1, k2, ..." with an optional alias prefix ("a.") */
static void add_keys(buf *b, size_t n, const char *prefix)
{
	for (size_t k = 0; k < n; k++)
		buf_addf(b, "%s%sk%zu", k ? ", " : "", prefix, k + 1);
}

int sq_query_instances(store *base, const store_group_query *q, store_group_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	binds *b = calloc(1, sizeof *b);
	if (b == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	/* over the visibility index when it is ready: one row per instance with its duration */
	int ix = sqi_usable(s);
	sqlgen g = {s, {0}, b, ix};
	buf_init(&g.sql);
	size_t nk = q->n_group_by;
	int want_dur = (q->aggregates & (DUROX_AGG_AVERAGE_DURATION | DUROX_AGG_P50_DURATION | DUROX_AGG_P95_DURATION |
	                                 DUROX_AGG_P99_DURATION)) != 0;
	int want_pct =
	        (q->aggregates & (DUROX_AGG_P50_DURATION | DUROX_AGG_P95_DURATION | DUROX_AGG_P99_DURATION)) != 0;

	/* d: one row per matching instance; materialized once when the percentiles read it a second
	 * time, else flattened into the grouping (no temporary table) */
	buf_adds(&g.sql, want_pct ? "WITH d AS MATERIALIZED (SELECT " : "WITH d AS (SELECT ");
	for (size_t k = 0; k < nk; k++)
		buf_addf(&g.sql, "%s AS k%zu, ", group_key_sql(s, q->group_by[k], ix), k + 1);
	if (ix)
		buf_addf(&g.sql, "x.status AS st, %s AS dur FROM main.dx_inst x", want_dur ? "x.duration_ms" : "NULL");
	else {
		buf_addf(&g.sql, "COALESCE(e.status,'Unknown') AS st, %s AS dur", want_dur ? DURATION_SQL : "NULL");
		buf_adds(&g.sql, sq_from_current(q->filter));
	}
	buf_adds(&g.sql, " WHERE ");
	sq_gen_where(&g, q->filter);
	buf_adds(&g.sql, "), a AS (SELECT ");
	add_keys(&g.sql, nk, "");
	buf_adds(&g.sql, nk ? ", " : "");
	buf_adds(&g.sql, "count(*) AS n, total(st='Completed') AS c, total(st='Failed') AS f, avg(dur) AS av,"
	                 " count(dur) AS nd FROM d");
	if (nk) {
		buf_adds(&g.sql, " GROUP BY ");
		add_keys(&g.sql, nk, "");
	}
	buf_adds(&g.sql, ")");
	if (want_pct) {
		/* nearest rank: the p-th percentile of m sorted values is the one at rank ceil(p*m/100) */
		buf_adds(&g.sql, ", r AS (SELECT ");
		add_keys(&g.sql, nk, "");
		buf_adds(&g.sql, nk ? ", " : "");
		buf_adds(&g.sql, "dur, row_number() OVER w AS rn, count(*) OVER (");
		if (nk) {
			buf_adds(&g.sql, "PARTITION BY ");
			add_keys(&g.sql, nk, "");
		}
		buf_adds(&g.sql, ") AS m FROM d WHERE dur IS NOT NULL WINDOW w AS (");
		if (nk) {
			buf_adds(&g.sql, "PARTITION BY ");
			add_keys(&g.sql, nk, "");
			buf_adds(&g.sql, " ");
		}
		buf_adds(&g.sql, "ORDER BY dur)), p AS (SELECT ");
		add_keys(&g.sql, nk, "");
		buf_adds(&g.sql, nk ? ", " : "");
		buf_adds(&g.sql, "max(CASE WHEN rn=(50*m+99)/100 THEN dur END) AS p50,"
		                 " max(CASE WHEN rn=(95*m+99)/100 THEN dur END) AS p95,"
		                 " max(CASE WHEN rn=(99*m+99)/100 THEN dur END) AS p99 FROM r");
		if (nk) {
			buf_adds(&g.sql, " GROUP BY ");
			add_keys(&g.sql, nk, "");
		}
		buf_adds(&g.sql, ")");
	}
	buf_adds(&g.sql, " SELECT ");
	for (size_t k = 0; k < nk; k++)
		buf_addf(&g.sql, "a.k%zu, ", k + 1);
	buf_addf(&g.sql, "a.n, a.c, a.f, a.av, a.nd, %s, count(*) OVER (), total(a.n) OVER () FROM a",
	         want_pct ? "p.p50, p.p95, p.p99" : "NULL, NULL, NULL");
	if (want_pct) {
		buf_adds(&g.sql, " LEFT JOIN p ON ");
		if (nk == 0)
			buf_adds(&g.sql, "1");
		for (size_t k = 0; k < nk; k++)
			buf_addf(&g.sql, "%sp.k%zu IS a.k%zu", k ? " AND " : "", k + 1, k + 1);
	}
	buf_adds(&g.sql, " ORDER BY a.n DESC");
	for (size_t k = 0; k < nk; k++)
		buf_addf(&g.sql, ", a.k%zu", k + 1);
	if (q->limit > 0)
		buf_addf(&g.sql, " LIMIT %u", (unsigned)q->limit);

	int rc;
	sqlite3_stmt *st = NULL;
	if (buf_oom(&g.sql))
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	else if (b->overflow)
		rc = store_fail(base, DUROX_ELIMIT, "filter too large (more than %zu values)",
		                sizeof b->v / sizeof b->v[0]);
	else if ((st = ix ? sqi_stmt(s, buf_str(&g.sql)) : sq_stmt(s, buf_str(&g.sql))) == NULL)
		rc = ix ? DUROX_EIO : sq_stmt_err(s);
	else if ((rc = sq_bind_all(s, st, b, 1)) == DUROX_OK) {
		int r;
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			durox_query_group grp;
			memset(&grp, 0, sizeof grp);
			for (size_t k = 0; k < nk; k++) {
				int col = (int)k;
				switch (q->group_by[k]) {
				case DUROX_GROUP_ORCHESTRATION_NAME:
					grp.orchestration_name = sq_col_text(st, col);
					break;
				case DUROX_GROUP_STATUS: grp.status = sq_col_text(st, col); break;
				case DUROX_GROUP_CREATED_DATE:
				case DUROX_GROUP_CREATED_HOUR: grp.created_date = sqlite3_column_int64(st, col); break;
				case DUROX_GROUP_PARENT_INSTANCE: grp.parent_instance = sq_col_text(st, col); break;
				case DUROX_GROUP_VERSION: grp.version = sq_col_text(st, col); break;
				}
			}
			int c = (int)nk;
			grp.count = (uint64_t)sqlite3_column_int64(st, c);
			grp.completed = (uint64_t)sqlite3_column_int64(st, c + 1);
			grp.failed = (uint64_t)sqlite3_column_int64(st, c + 2);
			grp.average_duration_ms =
			        sqlite3_column_type(st, c + 3) == SQLITE_NULL ? NAN : sqlite3_column_double(st, c + 3);
			grp.durations_counted = (uint64_t)sqlite3_column_int64(st, c + 4);
			double *pct[3] = {&grp.p50_duration_ms, &grp.p95_duration_ms, &grp.p99_duration_ms};
			for (int k = 0; k < 3; k++)
				*pct[k] = sqlite3_column_type(st, c + 5 + k) == SQLITE_NULL
				                  ? NAN
				                  : sqlite3_column_double(st, c + 5 + k);
			uint64_t total_groups = (uint64_t)sqlite3_column_int64(st, c + 8);
			uint64_t total_instances = (uint64_t)sqlite3_column_int64(st, c + 9);
			int x = cb(ud, &grp, total_groups, total_instances);
			if (x != 0) {
				r = x > 0 ? SQLITE_DONE : SQLITE_ABORT;
				rc = x > 0 ? DUROX_OK : x;
				break;
			}
		}
		if (r != SQLITE_DONE && r != SQLITE_ABORT)
			rc = ix ? sqi_fail(s, r, "grouping instances") : sq_fail(s, r, "grouping instances");
	}
	if (st != NULL)
		sq_done(st);
	buf_free(&g.sql);
	free(b);
	return rc;
}

/* ---- time series ------------------------------------------------------------------- */

/* The visible set of a filter as the first CTE of a statement: "v(id) AS MATERIALIZED
 * (SELECT i.instance_id ... WHERE <filter>)". Coming first in the text, the filter's
 * parameters are numbered 1..b->n; the statement numbers its own from b->n + 1. Appends
 * nothing when f is NULL or empty. */
static void add_visible_cte(sqlgen *g, const durox_filter *f)
{
	if (f == NULL || f->root == NULL)
		return;
	buf_adds(&g->sql, "v(id) AS MATERIALIZED (SELECT i.instance_id");
	buf_adds(&g->sql, sq_from_current(f));
	buf_adds(&g->sql, " WHERE ");
	sq_gen_where(g, f);
	buf_adds(&g->sql, ")");
}

/* Prepares g's statement and binds the filter's values (1..n); NULL on error (code in *rc). */
static sqlite3_stmt *prepare_gen(sqlite_store *s, sqlgen *g, int *rc)
{
	if (buf_oom(&g->sql) || g->b->overflow) {
		*rc = store_fail(&s->base, g->b->overflow ? DUROX_EINVALID : DUROX_ENOMEM,
		                 g->b->overflow ? "the filter has too many values" : "out of memory");
		return NULL;
	}
	sqlite3_stmt *st = sq_stmt(s, g->sql.data);
	if (st == NULL) {
		*rc = sq_stmt_err(s);
		return NULL;
	}
	if ((*rc = sq_bind_all(s, st, g->b, 1)) != DUROX_OK) {
		sq_done(st);
		return NULL;
	}
	return st;
}

int sq_time_series(store *base, const store_series_query *q, durox_time_bucket *buckets, size_t n)
{
	sqlite_store *s = (sqlite_store *)base;
	int filtered = q->filter != NULL && q->filter->root != NULL;
	binds *b = calloc(1, sizeof *b);
	if (b == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	sqlgen g = {s, {0}, b, 0};
	buf_init(&g.sql);
	int rc = DUROX_OK, r;
	if (q->series & DUROX_SERIES_INSTANCES_STARTED) {
		buf_reset(&g.sql);
		b->n = 0;
		if (filtered) {
			buf_adds(&g.sql, "WITH ");
			add_visible_cte(&g, q->filter);
		}
		size_t o = b->n; /* the statement's own parameters: o+1 from, o+2 to, o+3 bucket, o+4 name */
		buf_addf(&g.sql,
		         " SELECT (c - ?%zu) / ?%zu, count(*) FROM (SELECT durox_ms(i.created_at) AS c FROM instances i"
		         " WHERE 1",
		         o + 1, o + 3);
		if (q->orchestration_name != NULL)
			buf_addf(&g.sql, " AND i.orchestration_name=?%zu", o + 4);
		if (filtered)
			buf_adds(&g.sql, " AND i.instance_id IN (SELECT id FROM v)");
		buf_addf(&g.sql, ") WHERE c >= ?%zu AND c < ?%zu GROUP BY 1", o + 1, o + 2);
		sqlite3_stmt *st = prepare_gen(s, &g, &rc);
		if (st == NULL)
			goto done;
		sqlite3_bind_int64(st, (int)o + 1, q->from);
		sqlite3_bind_int64(st, (int)o + 2, q->to);
		sqlite3_bind_int64(st, (int)o + 3, q->bucket_ms);
		if (q->orchestration_name)
			sqlite3_bind_text(st, (int)o + 4, q->orchestration_name, -1, SQLITE_STATIC);
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			int64_t k = sqlite3_column_int64(st, 0);
			if (k >= 0 && (size_t)k < n)
				buckets[k].instances_started += (uint64_t)sqlite3_column_int64(st, 1);
		}
		sq_done(st);
		if (r != SQLITE_DONE) {
			rc = sq_fail(s, r, "reading instances");
			goto done;
		}
	}
	unsigned terminal = DUROX_SERIES_INSTANCES_COMPLETED | DUROX_SERIES_INSTANCES_FAILED |
	                    DUROX_SERIES_INSTANCES_CANCELLED | DUROX_SERIES_AVERAGE_DURATION;
	unsigned activity = DUROX_SERIES_ACTIVITIES_COMPLETED | DUROX_SERIES_ACTIVITIES_FAILED;
	if ((q->series & (terminal | activity)) == 0)
		goto done;
	const char *types;
	if ((q->series & terminal) && (q->series & activity))
		types = "'OrchestrationCompleted','OrchestrationFailed','ActivityCompleted','ActivityFailed'";
	else if (q->series & terminal)
		types = "'OrchestrationCompleted','OrchestrationFailed'";
	else
		types = "'ActivityCompleted','ActivityFailed'";
	int want_dur = (q->series & DUROX_SERIES_AVERAGE_DURATION) != 0;
	buf_reset(&g.sql);
	b->n = 0;
	if (filtered) {
		buf_adds(&g.sql, "WITH ");
		add_visible_cte(&g, q->filter);
	}
	size_t o = b->n;
	buf_addf(&g.sql,
	         " SELECT (ts - ?%zu) / ?%zu, total(t='OrchestrationCompleted'),"
	         " total(t='OrchestrationFailed' AND k IS NOT 'cancelled'), total(k IS 'cancelled'),"
	         " total(t='ActivityCompleted'), total(t='ActivityFailed'), total(dur), count(dur)"
	         " FROM (SELECT h.event_type AS t, durox_event_ts(h.event_data, h.created_at) AS ts,"
	         " CASE WHEN h.event_type='OrchestrationFailed' THEN durox_failure_kind(h.event_data, NULL) END AS k,"
	         " %s AS dur FROM history h WHERE h.event_type IN (%s)",
	         o + 1, o + 3,
	         want_dur ? "CASE WHEN h.event_type IN ('OrchestrationCompleted','OrchestrationFailed') THEN"
	                    " durox_event_ts(h.event_data, h.created_at) - " FIRST_START("h") " END"
	                  : "NULL",
	         types);
	/* only the events of instances the store lists: the runtime can leave an execution and its
	 * history without an instances row (a start it failed itself under lock contention) */
	if (q->orchestration_name != NULL)
		buf_addf(
		        &g.sql,
		        " AND h.instance_id IN (SELECT i.instance_id FROM instances i WHERE i.orchestration_name=?%zu)",
		        o + 4);
	else if (!filtered)
		buf_adds(&g.sql, " AND h.instance_id IN (SELECT i.instance_id FROM instances i)");
	if (filtered)
		buf_adds(&g.sql, " AND h.instance_id IN (SELECT id FROM v)");
	buf_addf(&g.sql, ") WHERE ts >= ?%zu AND ts < ?%zu GROUP BY 1", o + 1, o + 2);
	sqlite3_stmt *st = prepare_gen(s, &g, &rc);
	if (st == NULL)
		goto done;
	sqlite3_bind_int64(st, (int)o + 1, q->from);
	sqlite3_bind_int64(st, (int)o + 2, q->to);
	sqlite3_bind_int64(st, (int)o + 3, q->bucket_ms);
	if (q->orchestration_name)
		sqlite3_bind_text(st, (int)o + 4, q->orchestration_name, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t k = sqlite3_column_int64(st, 0);
		if (k < 0 || (size_t)k >= n)
			continue;
		durox_time_bucket *bk = &buckets[k];
		bk->instances_completed += (uint64_t)sqlite3_column_int64(st, 1);
		bk->instances_failed += (uint64_t)sqlite3_column_int64(st, 2);
		bk->instances_cancelled += (uint64_t)sqlite3_column_int64(st, 3);
		bk->activities_completed += (uint64_t)sqlite3_column_int64(st, 4);
		bk->activities_failed += (uint64_t)sqlite3_column_int64(st, 5);
		/* average_duration_ms holds the sum (the engine zeroes it first and divides at the end) */
		bk->average_duration_ms += sqlite3_column_double(st, 6);
		bk->durations_counted += (uint64_t)sqlite3_column_int64(st, 7);
	}
	sq_done(st);
	if (r != SQLITE_DONE)
		rc = sq_fail(s, r, "reading history");
done:
	buf_free(&g.sql);
	free(b);
	return rc;
}

/* ---- parents and children ---------------------------------------------------------- */

/* Depth guard: a corrupt store with a parent cycle must not recurse forever. */
#define MAX_TREE_DEPTH 1000

static int run_nodes(sqlite_store *s, sqlite3_stmt *st, store_node_cb cb, void *ud, const char *what)
{
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		store_node nd = {sq_col_text(st, 0),
		                 sq_col_text(st, 1),
		                 sq_col_text(st, 2),
		                 sq_col_text(st, 3),
		                 (uint32_t)sqlite3_column_int64(st, 4),
		                 (uint64_t)sqlite3_column_int64(st, 5)};
		if (nd.instance_id == NULL)
			continue;
		if (nd.orchestration_name == NULL)
			nd.orchestration_name = "";
		int x = cb(ud, &nd);
		if (x != 0) {
			sq_done(st);
			return x > 0 ? DUROX_OK : x;
		}
	}
	sq_done(st);
	return r == SQLITE_DONE ? DUROX_OK : sq_fail(s, r, what);
}

int sq_descendants(store *base, const char *root, uint32_t max_depth, uint32_t limit, const durox_filter *filter,
                   store_node_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	if (!s->base.info.has_parent_instance)
		return DUROX_OK;
	int filtered = filter != NULL && filter->root != NULL;
	binds *b = calloc(1, sizeof *b);
	if (b == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	sqlgen g = {s, {0}, b, 0};
	buf_init(&g.sql);
	buf_adds(&g.sql, "WITH RECURSIVE ");
	if (filtered) {
		add_visible_cte(&g, filter);
		buf_adds(&g.sql, ", ");
	}
	size_t o = b->n; /* o+1 root, o+2 max_depth, o+3 limit */
	const char *vis_c = filtered ? " AND c.instance_id IN (SELECT id FROM v)" : "";
	buf_addf(&g.sql,
	         "t(id, parent, depth) AS (SELECT c.instance_id, c.parent_instance_id, 1 FROM instances c"
	         " WHERE c.parent_instance_id=?%zu%s UNION ALL SELECT c.instance_id, c.parent_instance_id, t.depth + 1"
	         " FROM t JOIN instances c ON c.parent_instance_id=t.id WHERE (?%zu = 0 OR t.depth < ?%zu) AND"
	         " t.depth < 1000%s)"
	         " SELECT t.id, t.parent, i.orchestration_name, COALESCE(e.status,'Unknown'), t.depth,"
	         " (SELECT count(*) FROM instances c WHERE c.parent_instance_id=t.id%s)"
	         " FROM t JOIN instances i ON i.instance_id=t.id LEFT JOIN executions e ON e.instance_id=i.instance_id"
	         " AND e.execution_id=i.current_execution_id ORDER BY t.depth, durox_ms(i.created_at), t.id LIMIT ?%zu",
	         o + 1, vis_c, o + 2, o + 2, vis_c, vis_c, o + 3);
	int rc;
	sqlite3_stmt *st = prepare_gen(s, &g, &rc);
	if (st != NULL) {
		sqlite3_bind_text(st, (int)o + 1, root, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, (int)o + 2, max_depth);
		sqlite3_bind_int64(st, (int)o + 3, limit == 0 ? -1 : (int64_t)limit);
		rc = run_nodes(s, st, cb, ud, "reading sub-orchestrations");
	}
	buf_free(&g.sql);
	free(b);
	return rc;
}

int sq_count_descendants(store *base, const char *root, const durox_filter *filter, uint64_t *out)
{
	sqlite_store *s = (sqlite_store *)base;
	*out = 0;
	if (!s->base.info.has_parent_instance)
		return DUROX_OK;
	int filtered = filter != NULL && filter->root != NULL;
	binds *b = calloc(1, sizeof *b);
	if (b == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	sqlgen g = {s, {0}, b, 0};
	buf_init(&g.sql);
	buf_adds(&g.sql, "WITH RECURSIVE ");
	if (filtered) {
		add_visible_cte(&g, filter);
		buf_adds(&g.sql, ", ");
	}
	size_t o = b->n;
	const char *vis_c = filtered ? " AND c.instance_id IN (SELECT id FROM v)" : "";
	/* UNION (not ALL) ends on a cycle */
	buf_addf(&g.sql,
	         "t(id) AS (SELECT c.instance_id FROM instances c WHERE c.parent_instance_id=?%zu%s UNION SELECT"
	         " c.instance_id FROM t JOIN instances c ON c.parent_instance_id=t.id%s)"
	         " SELECT count(*) FROM t WHERE id IS NOT ?%zu",
	         o + 1, vis_c, filtered ? " WHERE c.instance_id IN (SELECT id FROM v)" : "", o + 1);
	int rc;
	sqlite3_stmt *st = prepare_gen(s, &g, &rc);
	if (st != NULL) {
		sqlite3_bind_text(st, (int)o + 1, root, -1, SQLITE_STATIC);
		int r = sqlite3_step(st);
		if (r == SQLITE_ROW)
			*out = (uint64_t)sqlite3_column_int64(st, 0);
		sq_done(st);
		rc = r == SQLITE_ROW ? DUROX_OK : sq_fail(s, r, "counting sub-orchestrations");
	}
	buf_free(&g.sql);
	free(b);
	return rc;
}

int sq_ancestors(store *base, const char *id, store_node_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	if (!s->base.info.has_parent_instance)
		return DUROX_OK;
	sqlite3_stmt *st = sq_stmt(
	        s,
	        "WITH RECURSIVE a(id, depth) AS (SELECT parent_instance_id, 1 FROM instances WHERE instance_id=?1"
	        " UNION ALL SELECT i.parent_instance_id, a.depth + 1 FROM a JOIN instances i ON i.instance_id=a.id"
	        " WHERE a.depth < 1000)"
	        " SELECT a.id, i.parent_instance_id, i.orchestration_name, COALESCE(e.status,'Unknown'), a.depth, 0"
	        " FROM a JOIN instances i ON i.instance_id=a.id LEFT JOIN executions e ON e.instance_id=i.instance_id"
	        " AND e.execution_id=i.current_execution_id ORDER BY a.depth");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	return run_nodes(s, st, cb, ud, "reading parent instances");
}
