/*
 * postgres_analytics.c - the PostgreSQL provider's analytics queries (provider_metrics.h):
 * query_instances (grouping, counts, rates and nearest-rank duration percentiles with window
 * functions over the same filter SQL as listing), time series bucketed from durable
 * timestamps (event types and times from the event JSON), and parent/child walks with
 * recursive CTEs over idx_instances_parent. The same definitions as sqlite_analytics.c.
 * Used through pg_metrics_vtable (postgres_metrics.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres_index.h"
#include "store/provider_metrics.h"

int pg_query_instances(store *st, const store_group_query *q, store_group_cb cb, void *ud);
int pg_time_series(store *st, const store_series_query *q, durox_time_bucket *buckets, size_t n);
int pg_descendants(store *st, const char *root, uint32_t max_depth, uint32_t limit, const durox_filter *filter,
                   store_node_cb cb, void *ud);
int pg_count_descendants(store *st, const char *root, const durox_filter *filter, uint64_t *out);
int pg_ancestors(store *st, const char *id, store_node_cb cb, void *ud);

#define TYPE_IS(h, t) "(" h ".event_data ~ '\"type\": ?\"" t "\"')"

/* The timestamp of an instance's first start (X: the instances alias). */
#define FIRST_START(X)                                                                                                 \
	"(SELECT " PG_EVENT_TS(                                                                                        \
	        "f") " FROM history f WHERE f.instance_id=" X ".instance_id"                                           \
	             " AND " TYPE_IS("f", "OrchestrationStarted") " ORDER BY f.execution_id, f.event_id LIMIT 1)"

/* An instance's duration (docs/metrics.md): terminal event of the current execution minus its
 * first start, for Completed and Failed instances. */
#define DURATION_SQL                                                                                                   \
	"CASE WHEN e.status IN ('Completed','Failed') THEN (SELECT " PG_EVENT_TS(                                      \
	        "t") " FROM history t WHERE"                                                                           \
	             " t.instance_id=i.instance_id AND t.execution_id=i.current_execution_id AND (" TYPE_IS(           \
	                     "t", "OrchestrationCompleted") " OR " TYPE_IS("t",                                        \
	                                                                   "OrchestrationFailed") ") ORDER BY "        \
	                                                                                          "t.event_id DESC"    \
	                                                                                          " LIMIT 1) "         \
	                                                                                          "- " FIRST_START(    \
	                                                                                                  "i") " END"

const char pg_duration_sql[] = DURATION_SQL;

/* The same keys over the visibility index's columns (which hold the values these compute). */
static const char *index_key_sql(int g)
{
	switch (g) {
	case DUROX_GROUP_ORCHESTRATION_NAME: return "x.name";
	case DUROX_GROUP_STATUS: return "x.status";
	case DUROX_GROUP_CREATED_DATE: return "(x.created_at/86400000)*86400000";
	case DUROX_GROUP_CREATED_HOUR: return "(x.created_at/3600000)*3600000";
	case DUROX_GROUP_PARENT_INSTANCE: return "x.parent_instance";
	case DUROX_GROUP_VERSION: return "x.version";
	default: return "NULL::text";
	}
}

static const char *group_key_sql(pg_store *s, int g)
{
	switch (g) {
	case DUROX_GROUP_ORCHESTRATION_NAME: return "i.orchestration_name";
	case DUROX_GROUP_STATUS: return "COALESCE(e.status,'Unknown')";
	case DUROX_GROUP_CREATED_DATE: return "(COALESCE(" PG_MS("i.created_at") ",0)/86400000)*86400000";
	case DUROX_GROUP_CREATED_HOUR: return "(COALESCE(" PG_MS("i.created_at") ",0)/3600000)*3600000";
	case DUROX_GROUP_PARENT_INSTANCE:
		return s->base.info.has_parent_instance ? "i.parent_instance_id" : "NULL::text";
	case DUROX_GROUP_VERSION: return "i.orchestration_version";
	default: return "NULL::text";
	}
}

static int text_key(int g)
{
	return g == DUROX_GROUP_ORCHESTRATION_NAME || g == DUROX_GROUP_STATUS || g == DUROX_GROUP_PARENT_INSTANCE ||
	       g == DUROX_GROUP_VERSION;
}

static void add_keys(buf *b, size_t n, const char *prefix)
{
	for (size_t k = 0; k < n; k++)
		buf_addf(b, "%s%sk%zu", k ? ", " : "", prefix, k + 1);
}

struct group_ud {
	const store_group_query *q;
	store_group_cb cb;
	void *ud;
};

static int group_row(void *ud, const PGresult *r)
{
	struct group_ud *u = ud;
	const store_group_query *q = u->q;
	size_t nk = q->n_group_by;
	durox_query_group grp;
	memset(&grp, 0, sizeof grp);
	for (size_t k = 0; k < nk; k++) {
		int col = (int)k;
		switch (q->group_by[k]) {
		case DUROX_GROUP_ORCHESTRATION_NAME: grp.orchestration_name = pq_text(r, col); break;
		case DUROX_GROUP_STATUS: grp.status = pq_text(r, col); break;
		case DUROX_GROUP_CREATED_DATE:
		case DUROX_GROUP_CREATED_HOUR: grp.created_date = pq_int(r, col); break;
		case DUROX_GROUP_PARENT_INSTANCE: grp.parent_instance = pq_text(r, col); break;
		case DUROX_GROUP_VERSION: grp.version = pq_text(r, col); break;
		}
	}
	int c = (int)nk;
	grp.count = (uint64_t)pq_int(r, c);
	grp.completed = (uint64_t)pq_int(r, c + 1);
	grp.failed = (uint64_t)pq_int(r, c + 2);
	grp.average_duration_ms = pq_isnull(r, c + 3) ? NAN : pq_double(r, c + 3);
	grp.durations_counted = (uint64_t)pq_int(r, c + 4);
	double *pct[3] = {&grp.p50_duration_ms, &grp.p95_duration_ms, &grp.p99_duration_ms};
	for (int k = 0; k < 3; k++)
		*pct[k] = pq_isnull(r, c + 5 + k) ? NAN : pq_double(r, c + 5 + k);
	return u->cb(u->ud, &grp, (uint64_t)pq_int(r, c + 8), (uint64_t)pq_int(r, c + 9));
}

int pg_query_instances(store *base, const store_group_query *q, store_group_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	/* over the visibility index when it is ready: one row per instance with its duration */
	int over = pgi_usable(s, q->filter);
	pgsqlgen g = {s, {0}, &p, 0, over};
	buf_init(&g.sql);
	size_t nk = q->n_group_by;
	int want_dur = (q->aggregates & (DUROX_AGG_AVERAGE_DURATION | DUROX_AGG_P50_DURATION | DUROX_AGG_P95_DURATION |
	                                 DUROX_AGG_P99_DURATION)) != 0;
	int want_pct =
	        (q->aggregates & (DUROX_AGG_P50_DURATION | DUROX_AGG_P95_DURATION | DUROX_AGG_P99_DURATION)) != 0;

	buf_adds(&g.sql, want_pct ? "WITH d AS MATERIALIZED (SELECT " : "WITH d AS (SELECT ");
	for (size_t k = 0; k < nk; k++)
		buf_addf(&g.sql, "%s AS k%zu, ",
		         over ? index_key_sql(q->group_by[k]) : group_key_sql(s, q->group_by[k]), k + 1);
	if (over)
		buf_addf(&g.sql, "x.status AS st, %s AS dur FROM @X x", want_dur ? "x.duration" : "NULL::int8");
	else
		buf_addf(&g.sql, "COALESCE(e.status,'Unknown') AS st, %s AS dur%s",
		         want_dur ? DURATION_SQL : "NULL::int8", pg_from_current(q->filter));
	buf_adds(&g.sql, " WHERE ");
	pg_gen_where(&g, q->filter);
	buf_adds(&g.sql, "), a AS (SELECT ");
	add_keys(&g.sql, nk, "");
	buf_adds(&g.sql, nk ? ", " : "");
	buf_adds(&g.sql, "count(*) AS n, count(*) FILTER (WHERE st='Completed') AS c, count(*) FILTER (WHERE"
	                 " st='Failed') AS f, avg(dur)::float8 AS av, count(dur) AS nd FROM d");
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
	buf_addf(&g.sql, "a.n, a.c, a.f, a.av, a.nd, %s, count(*) OVER (), sum(a.n) OVER () FROM a",
	         want_pct ? "p.p50, p.p95, p.p99" : "NULL::int8, NULL::int8, NULL::int8");
	if (want_pct) {
		buf_adds(&g.sql, " LEFT JOIN p ON ");
		if (nk == 0)
			buf_adds(&g.sql, "TRUE");
		for (size_t k = 0; k < nk; k++)
			buf_addf(&g.sql, "%sp.k%zu IS NOT DISTINCT FROM a.k%zu", k ? " AND " : "", k + 1, k + 1);
	}
	/* ties in byte order, NULL first, as SQLite sorts */
	buf_adds(&g.sql, " ORDER BY a.n DESC");
	for (size_t k = 0; k < nk; k++)
		buf_addf(&g.sql, ", a.k%zu%s NULLS FIRST", k + 1, text_key(q->group_by[k]) ? " COLLATE \"C\"" : "");
	if (q->limit > 0)
		buf_addf(&g.sql, " LIMIT %u", (unsigned)q->limit);

	int rc;
	if (buf_oom(&g.sql))
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	else if (g.overflow)
		rc = store_fail(base, DUROX_ELIMIT, "filter too large (more than 4096 values)");
	else {
		struct group_ud u = {q, cb, ud};
		char *sql = over ? pgi_sql(s->ix, buf_str(&g.sql)) : NULL;
		if (over && sql == NULL)
			rc = store_fail(base, DUROX_ENOMEM, "out of memory");
		else
			rc = pq_query(s, over ? PQ_PRIMARY : 0, over ? sql : buf_str(&g.sql), &p, group_row, &u, NULL,
			              "grouping instances");
		free(sql);
	}
	buf_free(&g.sql);
	pqp_free(&p);
	return rc;
}

/* ---- access control's view ----------------------------------------------------------- */

/* Appends " AND <col> IN (SELECT i.instance_id FROM instances i ... WHERE <filter>)": only the
 * instances of the caller's view (nothing when f is NULL or empty). Its values are bound after
 * the parameters already in g. */
static void add_visible(pgsqlgen *g, const durox_filter *f, const char *col)
{
	if (f == NULL || f->root == NULL)
		return;
	buf_addf(&g->sql, " AND %s IN (SELECT i.instance_id", col);
	buf_adds(&g->sql, pg_from_current(f));
	buf_adds(&g->sql, " WHERE ");
	pg_gen_where(g, f);
	buf_addc(&g->sql, ')');
}

/* Runs g's statement, or fails for a statement that could not be built. */
static int run_gen(pg_store *s, pgsqlgen *g, pq_row_cb cb, void *ud, const char *what)
{
	if (buf_oom(&g->sql) || g->p->oom)
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	if (g->overflow)
		return store_fail(&s->base, DUROX_ELIMIT, "filter too large (more than 4096 values)");
	return pq_query(s, 0, buf_str(&g->sql), g->p, cb, ud, NULL, what);
}

/* ---- time series ------------------------------------------------------------------- */

struct series_ud {
	durox_time_bucket *b;
	size_t n;
	int terminal;
};

static int started_row(void *ud, const PGresult *r)
{
	struct series_ud *u = ud;
	int64_t k = pq_int(r, 0);
	if (k >= 0 && (size_t)k < u->n)
		u->b[k].instances_started += (uint64_t)pq_int(r, 1);
	return 0;
}

static int ended_row(void *ud, const PGresult *r)
{
	struct series_ud *u = ud;
	int64_t k = pq_int(r, 0);
	if (k < 0 || (size_t)k >= u->n)
		return 0;
	durox_time_bucket *bk = &u->b[k];
	bk->instances_completed += (uint64_t)pq_int(r, 1);
	bk->instances_failed += (uint64_t)pq_int(r, 2);
	bk->instances_cancelled += (uint64_t)pq_int(r, 3);
	bk->activities_completed += (uint64_t)pq_int(r, 4);
	bk->activities_failed += (uint64_t)pq_int(r, 5);
	/* average_duration_ms holds the sum (the engine zeroes it first and divides at the end) */
	bk->average_duration_ms += pq_double(r, 6);
	bk->durations_counted += (uint64_t)pq_int(r, 7);
	return 0;
}

/* The failure kind of an OrchestrationFailed event's text (its details), as SQL over h. */
#define EVENT_FAILURE_KIND(h)                                                                                          \
	"(CASE substring(" h ".event_data from '\"details\": ?\\{ ?\"(Application|Poison|Infrastructure|"              \
	"Configuration)\"')"                                                                                           \
	" WHEN 'Application' THEN CASE WHEN " h ".event_data ~ '\"details\": ?\\{ ?\"Application\": ?\\{ ?\"kind\":"   \
	" ?\\{ ?\"Cancelled\"' THEN 'cancelled' ELSE 'application' END WHEN 'Poison' THEN 'poison'"                    \
	" WHEN 'Infrastructure' THEN 'infrastructure' WHEN 'Configuration' THEN CASE WHEN " h ".event_data ~"          \
	" '\"details\": ?\\{ ?\"Configuration\": ?\\{ ?\"kind\": ?\"Nondeterminism\"' THEN 'nondeterminism' ELSE"      \
	" 'configuration' END ELSE 'application' END)"

int pg_time_series(store *base, const store_series_query *q, durox_time_bucket *buckets, size_t n)
{
	pg_store *s = (pg_store *)base;
	struct series_ud u = {buckets, n, 0};
	int rc = DUROX_OK;
	if (q->series & DUROX_SERIES_INSTANCES_STARTED) {
		pqp p;
		pqp_init(&p);
		pqp_int(&p, q->from);
		pqp_int(&p, q->to);
		pqp_int(&p, q->bucket_ms);
		if (q->orchestration_name)
			pqp_text(&p, q->orchestration_name);
		pgsqlgen g = {s, {0}, &p, 0, 0};
		buf_init(&g.sql);
		buf_adds(&g.sql, "SELECT (c - $1::int8) / $3::int8, count(*) FROM (SELECT " PG_MS(
		                         "i.created_at") " AS c FROM instances i WHERE TRUE");
		if (q->orchestration_name != NULL)
			buf_adds(&g.sql, " AND i.orchestration_name=$4");
		add_visible(&g, q->filter, "i.instance_id");
		buf_adds(&g.sql, ") x WHERE c >= $1::int8 AND c < $2::int8 GROUP BY 1");
		rc = run_gen(s, &g, started_row, &u, "reading instances");
		buf_free(&g.sql);
		pqp_free(&p);
		if (rc != DUROX_OK)
			return rc;
	}
	unsigned terminal = DUROX_SERIES_INSTANCES_COMPLETED | DUROX_SERIES_INSTANCES_FAILED |
	                    DUROX_SERIES_INSTANCES_CANCELLED | DUROX_SERIES_AVERAGE_DURATION;
	unsigned activity = DUROX_SERIES_ACTIVITIES_COMPLETED | DUROX_SERIES_ACTIVITIES_FAILED;
	if ((q->series & (terminal | activity)) == 0)
		return DUROX_OK;
	const char *types;
	if ((q->series & terminal) && (q->series & activity))
		types = "'OrchestrationCompleted','OrchestrationFailed','ActivityCompleted','ActivityFailed'";
	else if (q->series & terminal)
		types = "'OrchestrationCompleted','OrchestrationFailed'";
	else
		types = "'ActivityCompleted','ActivityFailed'";
	int want_dur = (q->series & DUROX_SERIES_AVERAGE_DURATION) != 0;
	pqp p;
	pqp_init(&p);
	pqp_int(&p, q->from);
	pqp_int(&p, q->to);
	pqp_int(&p, q->bucket_ms);
	if (q->orchestration_name)
		pqp_text(&p, q->orchestration_name);
	pgsqlgen g = {s, {0}, &p, 0, 0};
	buf_init(&g.sql);
	buf_addf(&g.sql,
	         "SELECT (ts - $1::int8) / $3::int8, count(*) FILTER (WHERE t='OrchestrationCompleted'),"
	         " count(*) FILTER (WHERE t='OrchestrationFailed' AND k IS DISTINCT FROM 'cancelled'),"
	         " count(*) FILTER (WHERE k='cancelled'), count(*) FILTER (WHERE t='ActivityCompleted'),"
	         " count(*) FILTER (WHERE t='ActivityFailed'), COALESCE(sum(dur),0)::float8, count(dur)"
	         " FROM (SELECT y.t, y.ts, CASE WHEN y.t='OrchestrationFailed' THEN y.k END AS k,"
	         " CASE WHEN %d=1 AND y.t IN ('OrchestrationCompleted','OrchestrationFailed') THEN y.ts - y.fs END AS "
	         "dur"
	         " FROM (SELECT " PG_EVENT_TYPE("h") " AS t, " PG_EVENT_TS("h") " AS ts, " EVENT_FAILURE_KIND(
	                 "h") " AS k, %s AS fs FROM history h WHERE TRUE",
	         want_dur, want_dur ? FIRST_START("h") : "NULL::int8");
	/* only the events of instances the store lists (as on SQLite: an execution and its history
	 * without an instances row count nowhere); a name or a filter already selects from instances */
	if (q->orchestration_name != NULL)
		buf_adds(&g.sql,
		         " AND h.instance_id IN (SELECT i.instance_id FROM instances i WHERE i.orchestration_name=$4)");
	else if (q->filter == NULL || q->filter->root == NULL)
		buf_adds(&g.sql, " AND h.instance_id IN (SELECT i.instance_id FROM instances i)");
	add_visible(&g, q->filter, "h.instance_id");
	buf_addf(&g.sql, ") y WHERE y.t IN (%s)) z WHERE ts >= $1::int8 AND ts < $2::int8 GROUP BY 1", types);
	rc = run_gen(s, &g, ended_row, &u, "reading history");
	buf_free(&g.sql);
	pqp_free(&p);
	return rc;
}

/* ---- parents and children ---------------------------------------------------------- */

struct node_ud {
	store_node_cb cb;
	void *ud;
};

static int node_row(void *ud, const PGresult *r)
{
	struct node_ud *u = ud;
	store_node nd = {pq_text(r, 0), pq_text(r, 1),          pq_text(r, 2),
	                 pq_text(r, 3), (uint32_t)pq_int(r, 4), (uint64_t)pq_int(r, 5)};
	if (nd.instance_id == NULL)
		return 0;
	if (nd.orchestration_name == NULL)
		nd.orchestration_name = "";
	return u->cb(u->ud, &nd);
}

int pg_descendants(store *base, const char *root, uint32_t max_depth, uint32_t limit, const durox_filter *filter,
                   store_node_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	if (!s->base.info.has_parent_instance)
		return DUROX_OK;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, root);
	pqp_int(&p, max_depth);
	if (limit > 0)
		pqp_int(&p, limit);
	else
		pqp_null(&p);
	pgsqlgen g = {s, {0}, &p, 0, 0};
	buf_init(&g.sql);
	int filtered = filter != NULL && filter->root != NULL;
	/* with a view, the walk passes only through what it admits: the visible set v first */
	buf_adds(&g.sql, "WITH RECURSIVE ");
	if (filtered) {
		buf_adds(&g.sql, "v(id) AS MATERIALIZED (SELECT i.instance_id");
		buf_adds(&g.sql, pg_from_current(filter));
		buf_adds(&g.sql, " WHERE ");
		pg_gen_where(&g, filter);
		buf_adds(&g.sql, "), ");
	}
	const char *vis = filtered ? " AND c.instance_id IN (SELECT id FROM v)" : "";
	buf_addf(&g.sql,
	         "t(id, parent, depth) AS (SELECT c.instance_id, c.parent_instance_id, 1 FROM instances c"
	         " WHERE c.parent_instance_id=$1%s UNION ALL SELECT c.instance_id, c.parent_instance_id, t.depth + 1 "
	         "FROM t"
	         " JOIN instances c ON c.parent_instance_id=t.id WHERE ($2::int8 = 0 OR t.depth < $2::int8) AND"
	         " t.depth < 1000%s)"
	         " SELECT t.id, t.parent, i.orchestration_name, COALESCE(e.status,'Unknown'), t.depth,"
	         " (SELECT count(*) FROM instances c WHERE c.parent_instance_id=t.id%s)"
	         " FROM t JOIN instances i ON i.instance_id=t.id LEFT JOIN executions e ON e.instance_id=i.instance_id"
	         " AND e.execution_id=i.current_execution_id ORDER BY t.depth, " PG_MS(
	                 "i.created_at") ", t.id COLLATE \"C\" LIMIT $3::int8",
	         vis, vis, vis);
	struct node_ud u = {cb, ud};
	int rc = run_gen(s, &g, node_row, &u, "reading sub-orchestrations");
	buf_free(&g.sql);
	pqp_free(&p);
	return rc;
}

static int one_count(void *ud, const PGresult *r)
{
	*(uint64_t *)ud = (uint64_t)pq_int(r, 0);
	return 1;
}

int pg_count_descendants(store *base, const char *root, const durox_filter *filter, uint64_t *out)
{
	pg_store *s = (pg_store *)base;
	*out = 0;
	if (!s->base.info.has_parent_instance)
		return DUROX_OK;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, root);
	pgsqlgen g = {s, {0}, &p, 0, 0};
	buf_init(&g.sql);
	int filtered = filter != NULL && filter->root != NULL;
	buf_adds(&g.sql, "WITH RECURSIVE ");
	if (filtered) {
		buf_adds(&g.sql, "v(id) AS MATERIALIZED (SELECT i.instance_id");
		buf_adds(&g.sql, pg_from_current(filter));
		buf_adds(&g.sql, " WHERE ");
		pg_gen_where(&g, filter);
		buf_adds(&g.sql, "), ");
	}
	const char *vis = filtered ? " AND c.instance_id IN (SELECT id FROM v)" : "";
	/* UNION (not ALL) ends on a cycle */
	buf_addf(&g.sql,
	         "t(id) AS (SELECT c.instance_id FROM instances c WHERE c.parent_instance_id=$1%s"
	         " UNION SELECT c.instance_id FROM t JOIN instances c ON c.parent_instance_id=t.id WHERE TRUE%s)"
	         " SELECT count(*) FROM t WHERE id IS DISTINCT FROM $1",
	         vis, vis);
	int rc = run_gen(s, &g, one_count, out, "counting sub-orchestrations");
	buf_free(&g.sql);
	pqp_free(&p);
	return rc;
}

int pg_ancestors(store *base, const char *id, store_node_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	if (!s->base.info.has_parent_instance)
		return DUROX_OK;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, id);
	struct node_ud u = {cb, ud};
	int rc = pq_query(
	        s, 0,
	        "WITH RECURSIVE a(id, depth) AS (SELECT parent_instance_id, 1 FROM instances WHERE instance_id=$1"
	        " UNION ALL SELECT i.parent_instance_id, a.depth + 1 FROM a JOIN instances i ON i.instance_id=a.id"
	        " WHERE a.depth < 1000)"
	        " SELECT a.id, i.parent_instance_id, i.orchestration_name, COALESCE(e.status,'Unknown'), a.depth, 0"
	        " FROM a JOIN instances i ON i.instance_id=a.id LEFT JOIN executions e ON e.instance_id=i.instance_id"
	        " AND e.execution_id=i.current_execution_id ORDER BY a.depth",
	        &p, node_row, &u, NULL, "reading parent instances");
	pqp_free(&p);
	return rc;
}
