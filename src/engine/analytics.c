/*
 * analytics.c - the proposal's "Advanced Query & Analytics": query_instances (groups and
 * aggregates computed by the store over the listing filter), get_time_series_metrics
 * (buckets over durable timestamps) and get_instance_dependencies (parent, children with
 * their own child counts, total descendants, depth limit), plus the name tables of their
 * enums. Relies on the provider's metrics vtable; used by the Lua binding.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/access.h"
#include "engine/metrics_internal.h"
#include "util/hmap.h"
#include "util/timeutil.h"

/* ---- names -------------------------------------------------------------------------- */

static const char *const group_names[DUROX_GROUP__COUNT] = {"OrchestrationName", "Status",         "CreatedDate",
                                                            "CreatedHour",       "ParentInstance", "Version"};

const char *durox_group_field_name(int g) { return g >= 0 && g < DUROX_GROUP__COUNT ? group_names[g] : NULL; }

int durox_group_field_parse(const char *name)
{
	for (int i = 0; i < DUROX_GROUP__COUNT; i++)
		if (strcasecmp(name, group_names[i]) == 0)
			return i;
	if (strcasecmp(name, "CreatedDay") == 0)
		return DUROX_GROUP_CREATED_DATE;
	return -1;
}

static const char *const agg_names[] = {"Count",       "AverageDuration", "SuccessRate", "FailureRate",
                                        "P50Duration", "P95Duration",     "P99Duration"};

const char *durox_aggregate_name(unsigned bit)
{
	for (unsigned i = 0; i < sizeof agg_names / sizeof agg_names[0]; i++)
		if (bit == 1u << i)
			return agg_names[i];
	return NULL;
}

int durox_aggregate_parse(const char *name)
{
	for (unsigned i = 0; i < sizeof agg_names / sizeof agg_names[0]; i++)
		if (strcasecmp(name, agg_names[i]) == 0)
			return 1 << i;
	return -1;
}

static const char *const series_names[] = {"instances_started",   "instances_completed",  "instances_failed",
                                           "instances_cancelled", "activities_completed", "activities_failed",
                                           "average_duration_ms"};

const char *durox_series_name(unsigned bit)
{
	for (unsigned i = 0; i < sizeof series_names / sizeof series_names[0]; i++)
		if (bit == 1u << i)
			return series_names[i];
	return NULL;
}

int durox_series_parse(const char *name)
{
	for (unsigned i = 0; i < sizeof series_names / sizeof series_names[0]; i++)
		if (strcasecmp(name, series_names[i]) == 0)
			return 1 << i;
	if (strcasecmp(name, "average_duration") == 0)
		return DUROX_SERIES_AVERAGE_DURATION;
	return -1;
}

/* A result allocated with its arena behind it: [T][arena]. */
static void *result_new(size_t size, arena **a)
{
	size = (size + 15) & ~(size_t)15;
	char *p = calloc(1, size + sizeof(arena));
	if (p == NULL)
		return NULL;
	*a = (arena *)(void *)(p + size);
	arena_init(*a);
	return p;
}

static void result_free(void *p, size_t size)
{
	if (p == NULL)
		return;
	size = (size + 15) & ~(size_t)15;
	arena_release((arena *)(void *)((char *)p + size));
	free(p);
}

/* ---- query_instances ------------------------------------------------------------------ */

void durox_query_response_free(durox_query_response *r) { result_free(r, sizeof *r); }

typedef struct group_collect {
	arena *a;
	durox_query_group *groups;
	size_t n, cap;
	uint64_t total_groups, total_instances;
	unsigned aggregates;
	int rc;
} group_collect;

static const char *dup_or_null(arena *a, const char *s, int *oom)
{
	if (s == NULL)
		return NULL;
	const char *d = arena_strdup(a, s);
	if (d == NULL)
		*oom = 1;
	return d;
}

static int group_cb(void *ud, const durox_query_group *g, uint64_t total_groups, uint64_t total_instances)
{
	group_collect *c = ud;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		durox_query_group *ng = arena_alloc(c->a, ncap * sizeof *ng);
		if (ng == NULL) {
			c->rc = DUROX_ENOMEM;
			return -1;
		}
		if (c->n)
			memcpy(ng, c->groups, c->n * sizeof *ng);
		c->groups = ng;
		c->cap = ncap;
	}
	durox_query_group *d = &c->groups[c->n++];
	*d = *g;
	int oom = 0;
	d->orchestration_name = dup_or_null(c->a, g->orchestration_name, &oom);
	d->status = dup_or_null(c->a, g->status, &oom);
	d->parent_instance = dup_or_null(c->a, g->parent_instance, &oom);
	d->version = dup_or_null(c->a, g->version, &oom);
	if (oom) {
		c->rc = DUROX_ENOMEM;
		return -1;
	}
	uint64_t done = g->completed + g->failed;
	d->success_rate = (c->aggregates & DUROX_AGG_SUCCESS_RATE) && done ? (double)g->completed / (double)done : NAN;
	d->failure_rate = (c->aggregates & DUROX_AGG_FAILURE_RATE) && done ? (double)g->failed / (double)done : NAN;
	if (!(c->aggregates & DUROX_AGG_AVERAGE_DURATION))
		d->average_duration_ms = NAN;
	if (!(c->aggregates & DUROX_AGG_P50_DURATION))
		d->p50_duration_ms = NAN;
	if (!(c->aggregates & DUROX_AGG_P95_DURATION))
		d->p95_duration_ms = NAN;
	if (!(c->aggregates & DUROX_AGG_P99_DURATION))
		d->p99_duration_ms = NAN;
	c->total_groups = total_groups;
	c->total_instances = total_instances;
	return 0;
}

int durox_query_instances(durox *dx, const durox_instance_query *q, durox_query_response **out)
{
	*out = NULL;
	dx_clear(dx);
	if (q == NULL)
		return dx_fail(dx, DUROX_EINVALID, "no query given");
	if (dx->st->mvt == NULL)
		return dx_fail(dx, DUROX_EUNSUPPORTED, "the %s provider does not support query_instances",
		               dx->st->info.provider);
	if (q->n_group_by > DUROX_GROUP__COUNT)
		return dx_fail(dx, DUROX_EINVALID, "too many group_by fields (at most %d)", DUROX_GROUP__COUNT);
	int seen[DUROX_GROUP__COUNT] = {0};
	for (size_t k = 0; k < q->n_group_by; k++) {
		int g = q->group_by[k];
		if (g < 0 || g >= DUROX_GROUP__COUNT)
			return dx_fail(dx, DUROX_EINVALID, "unknown group_by field %d", g);
		if (seen[g])
			return dx_fail(dx, DUROX_EINVALID, "group_by field %s given twice", group_names[g]);
		if ((g == DUROX_GROUP_CREATED_DATE && seen[DUROX_GROUP_CREATED_HOUR]) ||
		    (g == DUROX_GROUP_CREATED_HOUR && seen[DUROX_GROUP_CREATED_DATE]))
			return dx_fail(dx, DUROX_EINVALID, "group_by CreatedDate and CreatedHour cannot be combined");
		seen[g] = 1;
	}
	unsigned aggs = q->aggregates == 0 ? DUROX_AGG_ALL : q->aggregates;
	if (aggs & ~(unsigned)DUROX_AGG_ALL)
		return dx_fail(dx, DUROX_EINVALID, "unknown aggregate bits 0x%x", aggs & ~(unsigned)DUROX_AGG_ALL);
	uint32_t limit = q->limit == 0 ? 1000 : q->limit;
	if (limit > dx->cfg.max_list_instances)
		limit = dx->cfg.max_list_instances;
	access_view v;
	int rc = access_view_open_aggregate(dx, "query_instances", q->filter, &v); /* what the caller sees */
	if (rc != DUROX_OK) {
		access_view_close(&v);
		return rc;
	}
	arena *a;
	durox_query_response *res = result_new(sizeof *res, &a);
	if (res == NULL) {
		access_view_close(&v);
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	}
	group_collect c = {a, NULL, 0, 0, 0, 0, aggs, DUROX_OK};
	store_group_query sq = {v.filter, q->group_by, q->n_group_by, aggs, limit};
	rc = dx->st->mvt->query_instances(dx->st, &sq, group_cb, &c);
	access_view_close(&v);
	if (rc != DUROX_OK || c.rc != DUROX_OK) {
		durox_query_response_free(res);
		return c.rc != DUROX_OK ? dx_fail(dx, c.rc, "out of memory") : dx_store_fail(dx, rc);
	}
	res->groups = c.groups;
	res->count = c.n;
	res->total_groups = c.total_groups;
	res->total_instances = c.total_instances;
	memcpy(res->group_by, q->group_by, q->n_group_by * sizeof q->group_by[0]);
	res->n_group_by = q->n_group_by;
	res->aggregates = aggs;
	*out = res;
	return DUROX_OK;
}

/* ---- get_time_series_metrics ------------------------------------------------------------ */

void durox_time_series_free(durox_time_series *t) { result_free(t, sizeof *t); }

#define MAX_BUCKETS 10000

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* How many buckets of the given size cover [from, to) once the first starts on a multiple of
 * the size. */
static int64_t aligned_buckets(int64_t from, int64_t to, int64_t bucket)
{
	int64_t start = floor_div(from, bucket) * bucket;
	return (to - start + bucket - 1) / bucket;
}

/* The smallest round bucket that splits [from, to) into at most 60 buckets, counted as they
 * are laid out: from the bucket boundary at or before from (a window of exactly 60 buckets'
 * length that does not start on a boundary needs 61). */
static int64_t auto_bucket(int64_t from, int64_t to)
{
	static const int64_t units[] = {1000,    5000,    10000,   30000,    60000,    300000,   600000,   900000,
	                                1800000, 3600000, 7200000, 10800000, 21600000, 43200000, 86400000, 604800000};
	for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
		if (aligned_buckets(from, to, units[k]) <= 60)
			return units[k];
	int64_t day = 86400000;
	int64_t days = ((to - from) / 60 + day - 1) / day;
	while (aligned_buckets(from, to, days * day) > 60)
		days++;
	return days * day;
}

int durox_get_time_series_metrics(durox *dx, const durox_time_series_request *req, durox_time_series **out)
{
	*out = NULL;
	metrics_ctx m;
	int rc = metrics_begin(dx, NULL, &m);
	if (rc == DUROX_OK)
		rc = access_global(dx, "get_time_series_metrics", DUROX_HOOK_VIEW_METRICS);
	if (rc != DUROX_OK)
		return rc;
	durox_time_series_request r = {DUROX_NO_TIME, DUROX_NO_TIME, 0, 0, NULL};
	if (req != NULL)
		r = *req;
	int64_t to = r.to != DUROX_NO_TIME ? r.to : m.now;
	int64_t from = r.from != DUROX_NO_TIME ? r.from : to - (int64_t)dx->cfg.metrics_retention_hours * 3600000;
	if (from >= to)
		return dx_fail(dx, DUROX_EINVALID, "the time series window is empty (from must be before to)");
	unsigned series = r.series == 0 ? DUROX_SERIES_ALL : r.series;
	if (series & ~(unsigned)DUROX_SERIES_ALL)
		return dx_fail(dx, DUROX_EINVALID, "unknown series bits 0x%x", series & ~(unsigned)DUROX_SERIES_ALL);
	int64_t bucket = r.bucket_ms != 0 ? r.bucket_ms : auto_bucket(from, to);
	if (bucket < 1000)
		return dx_fail(dx, DUROX_EINVALID, "bucket must be at least 1s (got %lld ms)", (long long)bucket);
	int64_t start = floor_div(from, bucket) * bucket;
	int64_t nb = (to - start + bucket - 1) / bucket;
	if (nb > MAX_BUCKETS)
		return dx_fail(dx, DUROX_ELIMIT, "%lld buckets of %lld ms: at most %d (use a larger bucket)",
		               (long long)nb, (long long)bucket, MAX_BUCKETS);
	arena *a;
	durox_time_series *res = result_new(sizeof *res, &a);
	if (res == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	durox_time_bucket *b = arena_calloc(a, (size_t)nb, sizeof *b);
	if (b == NULL) {
		durox_time_series_free(res);
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	}
	access_view v;
	rc = access_view_open_aggregate(dx, "get_time_series_metrics", NULL, &v); /* what the caller sees */
	if (rc == DUROX_OK) {
		store_series_query sq = {start, to, bucket, series, r.orchestration_name, v.filter};
		rc = dx->st->mvt->time_series(dx->st, &sq, b, (size_t)nb);
		if (rc != DUROX_OK)
			rc = dx_store_fail(dx, rc);
	}
	access_view_close(&v);
	if (rc != DUROX_OK) {
		durox_time_series_free(res);
		return rc;
	}
	durox_time_bucket *t = &res->totals;
	t->start = start;
	for (int64_t k = 0; k < nb; k++) {
		durox_time_bucket *bk = &b[k];
		bk->start = start + k * bucket;
		t->instances_started += bk->instances_started;
		t->instances_completed += bk->instances_completed;
		t->instances_failed += bk->instances_failed;
		t->instances_cancelled += bk->instances_cancelled;
		t->activities_completed += bk->activities_completed;
		t->activities_failed += bk->activities_failed;
		t->average_duration_ms += bk->average_duration_ms; /* sums until divided */
		t->durations_counted += bk->durations_counted;
		bk->average_duration_ms =
		        bk->durations_counted ? bk->average_duration_ms / (double)bk->durations_counted : NAN;
	}
	t->average_duration_ms = t->durations_counted ? t->average_duration_ms / (double)t->durations_counted : NAN;
	res->from = start;
	res->to = to;
	res->bucket_ms = bucket;
	res->series = series;
	res->count = (size_t)nb;
	res->buckets = b;
	*out = res;
	return DUROX_OK;
}

/* ---- get_instance_dependencies --------------------------------------------------------- */

void durox_dependency_graph_free(durox_dependency_graph *g) { result_free(g, sizeof *g); }

typedef struct node_collect {
	arena *a;
	durox_child_instance *nodes;
	size_t n, cap;
	const char *last_id; /* ancestors: the topmost so far */
	int rc;
} node_collect;

static int node_cb(void *ud, const store_node *nd)
{
	node_collect *c = ud;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 32;
		durox_child_instance *nn = arena_alloc(c->a, ncap * sizeof *nn);
		if (nn == NULL) {
			c->rc = DUROX_ENOMEM;
			return -1;
		}
		if (c->n)
			memcpy(nn, c->nodes, c->n * sizeof *nn);
		c->nodes = nn;
		c->cap = ncap;
	}
	durox_child_instance *d = &c->nodes[c->n++];
	memset(d, 0, sizeof *d);
	int oom = 0;
	d->instance_id = dup_or_null(c->a, nd->instance_id, &oom);
	d->orchestration_name = dup_or_null(c->a, nd->orchestration_name, &oom);
	d->parent_instance = dup_or_null(c->a, nd->parent_instance, &oom);
	int st = nd->status ? durox_status_parse(nd->status) : -1;
	d->status = st < 0 ? DUROX_STATUS_UNKNOWN : st;
	d->depth = nd->depth;
	d->child_count = nd->child_count;
	if (oom) {
		c->rc = DUROX_ENOMEM;
		return -1;
	}
	return 0;
}

/* Sort key of a node: depth, then its parent's position, then the order the store gave. */
typedef struct node_key {
	uint32_t depth;
	size_t parent_pos, pos;
} node_key;

static int cmp_node_key(const void *x, const void *y)
{
	const node_key *a = x, *b = y;
	if (a->depth != b->depth)
		return a->depth < b->depth ? -1 : 1;
	if (a->parent_pos != b->parent_pos)
		return a->parent_pos < b->parent_pos ? -1 : 1;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* Orders nodes so that every node's children are contiguous and links them. */
static int link_nodes(durox_child_instance *nodes, size_t n, arena *a)
{
	if (n == 0)
		return DUROX_OK;
	hmap pos;
	hmap_init(&pos);
	node_key *keys = malloc(n * sizeof *keys);
	durox_child_instance *tmp = malloc(n * sizeof *tmp);
	int rc = DUROX_OK;
	if (keys == NULL || tmp == NULL) {
		rc = DUROX_ENOMEM;
		goto done;
	}
	/* nodes arrive by depth: a parent's final position is known before its children's */
	size_t level_start = 0;
	for (size_t k = 0; k < n; k++) {
		if (k > 0 && nodes[k].depth != nodes[k - 1].depth) {
			/* sort the finished level and record final positions */
			qsort(keys + level_start, k - level_start, sizeof *keys, cmp_node_key);
			for (size_t j = level_start; j < k; j++) {
				int created;
				hmap_entry *e = hmap_put(&pos, nodes[keys[j].pos].instance_id,
				                         strlen(nodes[keys[j].pos].instance_id), &created);
				if (e == NULL) {
					rc = DUROX_ENOMEM;
					goto done;
				}
				e->a = (int64_t)j;
			}
			level_start = k;
		}
		hmap_entry *p = nodes[k].parent_instance
		                        ? hmap_get(&pos, nodes[k].parent_instance, strlen(nodes[k].parent_instance))
		                        : NULL;
		keys[k] = (node_key){nodes[k].depth, p ? (size_t)p->a : 0, k};
	}
	qsort(keys + level_start, n - level_start, sizeof *keys, cmp_node_key);
	for (size_t k = 0; k < n; k++)
		tmp[k] = nodes[keys[k].pos];
	memcpy(nodes, tmp, n * sizeof *tmp);
	/* link: children of node j are the run of nodes whose parent_pos is j */
	for (size_t k = 0; k < n; k++) {
		if (keys[k].depth <= 1)
			continue;
		durox_child_instance *parent = &nodes[keys[k].parent_pos];
		if (parent->n_children == 0)
			parent->first_child = k;
		parent->n_children++;
	}
	(void)a;
done:
	hmap_free(&pos);
	free(keys);
	free(tmp);
	return rc;
}

typedef struct self_row {
	arena *a;
	const char *id, *name;
	int status;
	const char *parent;
	int found;
	int rc;
} self_row;

static int self_cb(void *ud, const durox_instance_summary *s)
{
	self_row *r = ud;
	r->found = 1;
	r->status = s->status;
	r->id = arena_strdup(r->a, s->instance_id);
	r->name = arena_strdup(r->a, s->orchestration_name);
	r->parent = s->parent_instance ? arena_strdup(r->a, s->parent_instance) : NULL;
	if (r->id == NULL || r->name == NULL || (s->parent_instance && r->parent == NULL)) {
		r->rc = DUROX_ENOMEM;
		return -1;
	}
	return 1;
}

/* Marks the nodes the caller may see (access_visible_by_id callback). */
typedef struct seen_nodes {
	hmap pos; /* id -> index in nodes */
	unsigned char *seen;
} seen_nodes;

static int seen_node_cb(void *ud, const durox_instance_summary *s)
{
	seen_nodes *sn = ud;
	hmap_entry *e = hmap_get(&sn->pos, s->instance_id, strlen(s->instance_id));
	if (e != NULL)
		sn->seen[e->a] = 1;
	return 0;
}

/* Which of nodes[0..n) the view lets the caller see: seen[k] = 1. */
static int mark_visible(access_view *v, const durox_child_instance *nodes, size_t n, unsigned char *seen)
{
	seen_nodes sn;
	sn.seen = seen;
	hmap_init(&sn.pos);
	const char **ids = calloc(n ? n : 1, sizeof *ids);
	int rc = ids == NULL ? DUROX_ENOMEM : DUROX_OK;
	for (size_t k = 0; rc == DUROX_OK && k < n; k++) {
		int created;
		hmap_entry *e = hmap_put(&sn.pos, nodes[k].instance_id, strlen(nodes[k].instance_id), &created);
		if (e == NULL)
			rc = DUROX_ENOMEM;
		else
			e->a = (int64_t)k;
		ids[k] = nodes[k].instance_id;
	}
	if (rc == DUROX_ENOMEM)
		rc = dx_fail(v->dx, rc, "out of memory");
	else
		rc = access_visible_by_id(v, ids, n, seen_node_cb, &sn);
	free(ids);
	hmap_free(&sn.pos);
	return rc;
}

/* Under a per-row policy: keeps the descendants the caller sees whose whole path from the root
 * is seen, recounts their children, and applies the depth limit and the node cap. */
static int prune_hidden(access_view *v, node_collect *down, uint32_t max_depth, uint32_t cap, durox_dependency_graph *g)
{
	size_t n = down->n;
	unsigned char *seen = calloc(n ? n : 1, 1);
	if (seen == NULL)
		return dx_fail(v->dx, DUROX_ENOMEM, "out of memory");
	int rc = mark_visible(v, down->nodes, n, seen);
	hmap kept;
	hmap_init(&kept);
	size_t m = 0;
	for (size_t k = 0; rc == DUROX_OK && k < n; k++) {
		durox_child_instance *d = &down->nodes[k];
		/* nodes come by depth: a parent is decided before its children */
		hmap_entry *pe = d->depth > 1 && d->parent_instance != NULL
		                         ? hmap_get(&kept, d->parent_instance, strlen(d->parent_instance))
		                         : NULL;
		if (!seen[k] || (d->depth > 1 && pe == NULL))
			continue;
		if (pe != NULL)
			down->nodes[pe->a].child_count++;
		int created;
		hmap_entry *e = hmap_put(&kept, d->instance_id, strlen(d->instance_id), &created);
		if (e == NULL) {
			rc = dx_fail(v->dx, DUROX_ENOMEM, "out of memory");
			break;
		}
		down->nodes[m] = *d;
		down->nodes[m].child_count = 0;
		e->a = (int64_t)m;
		m++;
	}
	hmap_free(&kept);
	free(seen);
	if (rc != DUROX_OK)
		return rc;
	g->total_descendants = m;
	/* the depth limit and the cap, as the store applies them without a per-row policy */
	size_t out = 0;
	for (size_t k = 0; k < m; k++) {
		if (max_depth > 0 && down->nodes[k].depth > max_depth) {
			g->truncated = 1;
			continue;
		}
		down->nodes[out++] = down->nodes[k];
	}
	down->n = out;
	if (down->n > cap) {
		down->n = cap;
		g->truncated = 1;
	}
	return DUROX_OK;
}

int durox_get_instance_dependencies(durox *dx, const char *instance_id, uint32_t max_depth,
                                    durox_dependency_graph **out)
{
	*out = NULL;
	dx_clear(dx);
	if (instance_id == NULL)
		return dx_fail(dx, DUROX_EINVALID, "no instance id given");
	if (dx->st->mvt == NULL)
		return dx_fail(dx, DUROX_EUNSUPPORTED, "the %s provider does not support dependencies",
		               dx->st->info.provider);
	/* the instance must be visible; its tree shows only what the caller sees */
	int rc = access_instance(dx, "get_instance_dependencies", DUROX_HOOK_VIEW_INSTANCE, instance_id, NULL, NULL,
	                         NULL, NULL);
	if (rc != DUROX_OK)
		return rc;
	access_view v;
	if ((rc = access_view_open(dx, "get_instance_dependencies", NULL, &v)) != DUROX_OK) {
		access_view_close(&v);
		return rc;
	}
	int policed = access_enabled(dx);
	arena *a;
	durox_dependency_graph *g = result_new(sizeof *g, &a);
	if (g == NULL) {
		access_view_close(&v);
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	}
	/* the instance itself */
	self_row self = {a, NULL, NULL, 0, NULL, 0, DUROX_OK};
	const char *ids[1] = {instance_id};
	rc = dx->st->vt->summaries_by_id(dx->st, ids, 1, self_cb, &self);
	if (rc != DUROX_OK || self.rc != DUROX_OK) {
		durox_dependency_graph_free(g);
		access_view_close(&v);
		return self.rc != DUROX_OK ? dx_fail(dx, self.rc, "out of memory") : dx_store_fail(dx, rc);
	}
	if (!self.found) {
		durox_dependency_graph_free(g);
		access_view_close(&v);
		return dx_fail_missing(dx, instance_id, "sub-orchestrations");
	}
	g->root_instance = self.id;
	g->orchestration_name = self.name;
	g->status = self.status;
	g->max_depth = max_depth;
	/* parent and tree root */
	node_collect up = {a, NULL, 0, 0, NULL, DUROX_OK};
	node_collect down = {a, NULL, 0, 0, NULL, DUROX_OK};
	rc = dx->st->mvt->ancestors(dx->st, instance_id, node_cb, &up);
	if (rc != DUROX_OK || up.rc != DUROX_OK)
		goto fail_up;
	if (policed && up.n > 0) {
		/* the chain upwards ends at the first ancestor the caller may not see */
		unsigned char *seen = calloc(up.n, 1);
		if (seen == NULL)
			goto oom;
		rc = mark_visible(&v, up.nodes, up.n, seen);
		size_t keep = 0;
		while (rc == DUROX_OK && keep < up.n && seen[keep])
			keep++;
		free(seen);
		if (rc != DUROX_OK)
			goto fail;
		up.n = keep;
	}
	g->tree_root = up.n > 0 ? up.nodes[up.n - 1].instance_id : g->root_instance;
	if (up.n > 0) {
		g->parent = arena_calloc(a, 1, sizeof *g->parent);
		if (g->parent == NULL)
			goto oom;
		g->parent->instance_id = up.nodes[0].instance_id;
		g->parent->orchestration_name = up.nodes[0].orchestration_name;
		g->parent->status = up.nodes[0].status;
	} else if (self.parent != NULL && !policed) {
		/* the parent row is gone (PostgreSQL has no foreign keys); under a policy a missing
		 * parent looks like a hidden one: not shown */
		g->parent = arena_calloc(a, 1, sizeof *g->parent);
		if (g->parent == NULL || (g->parent->instance_id = self.parent) == NULL)
			goto oom;
		g->parent->orchestration_name = NULL;
		g->parent->status = DUROX_STATUS_NOT_FOUND;
		g->tree_root = g->parent->instance_id;
	}
	/* descendants: the store walks only through what the view's filter admits; a per-row
	 * policy is applied here over the whole tree */
	uint32_t cap = dx->cfg.max_list_instances;
	if (v.per_row) {
		uint32_t fetch = cap < UINT32_MAX / 4 ? cap * 4 : cap;
		rc = dx->st->mvt->descendants(dx->st, instance_id, 0, fetch, v.filter, node_cb, &down);
		if (rc != DUROX_OK || down.rc != DUROX_OK) {
			up = down;
			goto fail_up;
		}
		int more = down.n >= fetch;
		if ((rc = prune_hidden(&v, &down, max_depth, cap, g)) != DUROX_OK)
			goto fail;
		if (more)
			g->truncated = 1;
	} else {
		rc = dx->st->mvt->descendants(dx->st, instance_id, max_depth, cap + 1, v.filter, node_cb, &down);
		if (rc != DUROX_OK || down.rc != DUROX_OK) {
			up = down;
			goto fail_up;
		}
		if ((rc = dx->st->mvt->count_descendants(dx->st, instance_id, v.filter, &g->total_descendants)) !=
		    DUROX_OK)
			goto fail_store;
		if (down.n > cap) {
			down.n = cap;
			g->truncated = 1;
		}
	}
	for (size_t k = 0; k < down.n; k++)
		if (max_depth > 0 && down.nodes[k].depth == max_depth && down.nodes[k].child_count > 0)
			g->truncated = 1;
	if ((rc = link_nodes(down.nodes, down.n, a)) != DUROX_OK)
		goto oom;
	/* a node cut off by the cap may leave its parent with fewer listed children: fine, truncated says so */
	g->nodes = down.nodes;
	g->n_nodes = down.n;
	g->children = down.nodes;
	size_t direct = 0;
	while (direct < down.n && down.nodes[direct].depth == 1)
		direct++;
	g->n_children = direct;
	access_view_close(&v);
	*out = g;
	return DUROX_OK;
fail_up:
	if (up.rc != DUROX_OK)
		goto oom;
fail_store:
	durox_dependency_graph_free(g);
	access_view_close(&v);
	return dx_store_fail(dx, rc);
oom:
	durox_dependency_graph_free(g);
	access_view_close(&v);
	return dx_fail(dx, DUROX_ENOMEM, "out of memory");
fail:
	durox_dependency_graph_free(g);
	access_view_close(&v);
	return rc;
}
