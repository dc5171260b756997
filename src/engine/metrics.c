/*
 * metrics.c - the proposal's metrics: get_runtime_metrics, get_provider_diagnostics,
 * get_queue_metrics and get_orchestration_metrics, assembled from the provider's digests
 * (provider_metrics.h), with the handle's metrics cache (cache_ttl_seconds) and the
 * enable_metrics switch. Every figure's definition is in docs/metrics.md.
 * Relies on the provider's metrics vtable; used by the Lua binding.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "engine/internal.h"
#include "engine/metrics_internal.h"
#include "store/provider_metrics.h"
#include "util/timeutil.h"

struct metrics_cache {
	store_instance_digest inst;
	int64_t inst_mono, inst_at; /* when computed: monotonic ms (for the TTL) and wall ms */
	int has_inst;
	store_history_digest hist;
	int64_t hist_mono, hist_at;
	int has_hist;
	store_meta meta;
	int64_t meta_mono, meta_at;
	int has_meta;
	store_queue_snapshot queue;
	store_queue_params queue_params;
	int64_t queue_mono, queue_at;
	int has_queue;
	durox_provider_diagnostics diag;
	int64_t diag_mono;
	int has_diag;
	char health_error[512];
};

void metrics_cache_free(metrics_cache *c)
{
	if (c == NULL)
		return;
	store_instance_digest_free(&c->inst);
	store_history_digest_free(&c->hist);
	free(c);
}

void durox_metrics_request_init(durox_metrics_request *r)
{
	memset(r, 0, sizeof *r);
	r->now = DUROX_NO_TIME;
}

/* ---- shared plumbing ---------------------------------------------------------------- */

int metrics_begin(durox *dx, const durox_metrics_request *req, metrics_ctx *m)
{
	dx_clear(dx);
	memset(m, 0, sizeof *m);
	if (!dx->cfg.enable_metrics)
		return dx_fail(dx, DUROX_EDENIED,
		               "metrics are disabled (enable_metrics = false in the ManagementConfig)");
	if (dx->st->mvt == NULL)
		return dx_fail(dx, DUROX_EUNSUPPORTED, "the %s provider has no metrics", dx->st->info.provider);
	if (dx->metrics == NULL && (dx->metrics = calloc(1, sizeof *dx->metrics)) == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	m->dx = dx;
	m->explicit_now = req != NULL && req->now != DUROX_NO_TIME;
	m->now = m->explicit_now ? req->now : time_now_ms();
	m->fresh = (req != NULL && req->fresh) || m->explicit_now;
	m->collected_at = INT64_MAX;
	return DUROX_OK;
}

/* Nonzero when a cached entry computed at mono time `at` may still be used. */
static int usable(const metrics_ctx *m, int has, int64_t at)
{
	if (!has || m->fresh)
		return 0;
	uint32_t ttl = m->dx->cfg.cache_ttl_seconds;
	return ttl > 0 && time_mono_ms() - at < (int64_t)ttl * 1000;
}

static void seen(metrics_ctx *m, int64_t at)
{
	if (at < m->collected_at)
		m->collected_at = at;
}

int64_t metrics_collected_at(const metrics_ctx *m) { return m->collected_at == INT64_MAX ? m->now : m->collected_at; }

int metrics_instances(metrics_ctx *m, const store_instance_digest **out)
{
	metrics_cache *c = m->dx->metrics;
	if (!usable(m, c->has_inst, c->inst_mono)) {
		store_instance_digest d;
		int rc = m->dx->st->mvt->instance_digest(m->dx->st, &d);
		if (rc != DUROX_OK)
			return dx_store_fail(m->dx, rc);
		store_instance_digest_free(&c->inst);
		c->inst = d;
		c->has_inst = 1;
		c->inst_mono = time_mono_ms();
		c->inst_at = time_now_ms();
	}
	seen(m, c->inst_at);
	*out = &c->inst;
	return DUROX_OK;
}

int metrics_history(metrics_ctx *m, unsigned want, const store_history_digest **out)
{
	metrics_cache *c = m->dx->metrics;
	if (!usable(m, c->has_hist && (c->hist.has & want) == want, c->hist_mono)) {
		store_history_digest d;
		int rc = m->dx->st->mvt->history_digest(m->dx->st, want, &d);
		if (rc != DUROX_OK)
			return dx_store_fail(m->dx, rc);
		store_history_digest_free(&c->hist);
		c->hist = d;
		c->has_hist = 1;
		c->hist_mono = time_mono_ms();
		c->hist_at = time_now_ms();
	}
	seen(m, c->hist_at);
	*out = &c->hist;
	return DUROX_OK;
}

static int get_meta(metrics_ctx *m, const store_meta **out)
{
	metrics_cache *c = m->dx->metrics;
	if (!usable(m, c->has_meta, c->meta_mono)) {
		int rc = m->dx->st->mvt->meta(m->dx->st, &c->meta);
		if (rc != DUROX_OK) {
			c->has_meta = 0;
			return dx_store_fail(m->dx, rc);
		}
		c->has_meta = 1;
		c->meta_mono = time_mono_ms();
		c->meta_at = time_now_ms();
	}
	seen(m, c->meta_at);
	*out = &c->meta;
	return DUROX_OK;
}

void metrics_queue_params(const durox *dx, int64_t now, store_queue_params *p)
{
	p->now = now;
	p->stall_ms = dx->cfg.stall_threshold_ms;
	p->timer_overdue_ms = dx->cfg.timer_overdue_ms;
	p->near_poison = dx->cfg.near_poison_attempts;
	p->max_attempts = dx->cfg.max_attempts;
	p->no_orphan_count = 0;
}

/* The queue snapshot as of m->now: cached only when now is implicit (the snapshot then holds
 * as of the time it was taken) and the thresholds have not changed since. orphans: the caller
 * reads the orphans count (a snapshot taken without it does not serve such a caller). */
static int get_queues(metrics_ctx *m, store_queue_snapshot *scratch, const store_queue_snapshot **out,
                      store_queue_params *used, int orphans)
{
	metrics_cache *c = m->dx->metrics;
	store_queue_params p;
	metrics_queue_params(m->dx, m->now, &p);
	p.no_orphan_count = !orphans;
	int same = c->has_queue && c->queue_params.stall_ms == p.stall_ms &&
	           c->queue_params.timer_overdue_ms == p.timer_overdue_ms &&
	           c->queue_params.near_poison == p.near_poison && c->queue_params.max_attempts == p.max_attempts &&
	           (!orphans || !c->queue_params.no_orphan_count);
	if (!m->explicit_now && same && usable(m, 1, c->queue_mono)) {
		seen(m, c->queue_at);
		*out = &c->queue;
		*used = c->queue_params;
		return DUROX_OK;
	}
	store_queue_snapshot q;
	int rc = m->dx->st->mvt->queue_snapshot(m->dx->st, &p, &q);
	if (rc != DUROX_OK)
		return dx_store_fail(m->dx, rc);
	if (m->explicit_now) {
		/* an explicit now is a what-if: keep it out of the cache */
		*scratch = q;
		*out = scratch;
	} else {
		c->queue = q;
		c->queue_params = p;
		c->has_queue = 1;
		c->queue_mono = time_mono_ms();
		c->queue_at = time_now_ms();
		*out = &c->queue;
	}
	*used = p;
	seen(m, m->explicit_now ? time_now_ms() : c->queue_at);
	return DUROX_OK;
}

/* ---- get_runtime_metrics -------------------------------------------------------------- */

int durox_get_runtime_metrics(durox *dx, const durox_metrics_request *req, durox_runtime_metrics *out)
{
	memset(out, 0, sizeof *out);
	out->average_orchestration_duration_ms = NAN;
	out->store_created_at = out->last_activity_at = DUROX_NO_TIME;
	metrics_ctx m;
	int rc = metrics_begin(dx, req, &m);
	if (rc == DUROX_OK)
		rc = access_store_wide(dx, "get_runtime_metrics");
	if (rc != DUROX_OK)
		return rc;
	const store_instance_digest *in = NULL;
	const store_history_digest *h = NULL;
	const store_meta *meta = NULL;
	const store_queue_snapshot *q = NULL;
	store_queue_snapshot scratch;
	store_queue_params qp;
	if ((rc = metrics_instances(&m, &in)) != DUROX_OK || (rc = metrics_history(&m, 0, &h)) != DUROX_OK ||
	    (rc = get_meta(&m, &meta)) != DUROX_OK || (rc = get_queues(&m, &scratch, &q, &qp, 0)) != DUROX_OK)
		return rc;
	for (size_t k = 0; k < in->n; k++) {
		const store_instance_group *g = &in->groups[k];
		out->total_instances_started += g->instances;
		out->total_instances_completed += g->completed;
		out->total_instances_failed += g->failed;
		out->active_instances += g->running;
		out->continued_as_new_instances += g->continued_as_new;
		out->unknown_instances += g->unknown;
	}
	out->total_executions = in->executions;
	out->total_history_events = h->rows;
	out->total_activities_executed = h->by_type[EV_ACTIVITY_COMPLETED] + h->by_type[EV_ACTIVITY_FAILED];
	out->total_timers_fired = h->by_type[EV_TIMER_FIRED];
	out->total_events_raised = h->by_type[EV_EXTERNAL_EVENT] + h->by_type[EV_QUEUE_EVENT];
	out->durations_counted = h->durations;
	if (h->durations > 0)
		out->average_orchestration_duration_ms = h->duration_ms / (double)h->durations;
	memcpy(out->failed_by_kind, h->failed_by_kind, sizeof out->failed_by_kind);
	out->store_created_at = meta->created_at;
	out->last_activity_at = meta->last_history_ts;
	if (meta->newest_lock_at != DUROX_NO_TIME &&
	    (out->last_activity_at == DUROX_NO_TIME || meta->newest_lock_at > out->last_activity_at))
		out->last_activity_at = meta->newest_lock_at;
	/* as of the request's explicit now, else as of when the figures were collected (so a
	 * cached result is the same result) */
	out->collected_at = metrics_collected_at(&m);
	int64_t asof = m.explicit_now ? m.now : out->collected_at;
	if (out->store_created_at != DUROX_NO_TIME && asof > out->store_created_at)
		out->uptime_seconds = (uint64_t)((asof - out->store_created_at) / 1000);
	out->stalled_orchestrator_items = q->orchestrator.stalled;
	out->stalled_worker_items = q->worker.stalled;
	out->overdue_timers = q->overdue_timers;
	out->expired_instance_locks = q->long_expired_instance_locks;
	out->blocking_orphan_items = q->orchestrator.orphans_blocking;
	out->orchestrator_dispatcher_healthy = q->orchestrator.stalled == 0 && q->long_expired_instance_locks == 0 &&
	                                       q->orchestrator.orphans_blocking == 0;
	out->worker_dispatcher_healthy = q->worker.stalled == 0;
	out->timer_dispatcher_healthy = q->overdue_timers == 0;
	return DUROX_OK;
}

/* ---- get_provider_diagnostics -------------------------------------------------------- */

int durox_get_provider_diagnostics(durox *dx, const durox_metrics_request *req, durox_provider_diagnostics *out)
{
	memset(out, 0, sizeof *out);
	out->average_read_latency_ms = out->average_write_latency_ms = NAN;
	out->storage_size_bytes = out->wal_size_bytes = -1;
	out->provider_type = dx->st->info.provider;
	out->location = dx->st->info.location;
	out->schema_version = dx->st->info.schema_version;
	out->journal_mode = out->health_error = "";
	metrics_ctx m;
	int rc = metrics_begin(dx, req, &m);
	if (rc == DUROX_OK)
		rc = access_store_wide(dx, "get_provider_diagnostics");
	if (rc != DUROX_OK)
		return rc;
	metrics_cache *c = dx->metrics;
	if (usable(&m, c->has_diag, c->diag_mono) && !m.explicit_now) {
		*out = c->diag;
		return DUROX_OK;
	}
	rc = dx->st->mvt->diagnostics(dx->st, out);
	out->provider_type = dx->st->info.provider;
	out->collected_at = time_now_ms();
	if (rc != DUROX_OK) {
		/* an unhealthy connection is a result, not a failure of this call */
		out->connection_healthy = 0;
		dx_store_fail(dx, rc);
		snprintf(c->health_error, sizeof c->health_error, "%s", durox_errmsg(dx));
		out->health_error = c->health_error;
		dx->err[0] = '\0';
		c->has_diag = 0;
		return DUROX_OK;
	}
	c->diag = *out;
	c->has_diag = 1;
	c->diag_mono = time_mono_ms();
	return DUROX_OK;
}

/* ---- get_queue_metrics ------------------------------------------------------------------ */

int durox_get_queue_metrics(durox *dx, const durox_metrics_request *req, durox_queue_metrics *out)
{
	memset(out, 0, sizeof *out);
	out->average_processing_time_ms = NAN;
	out->orchestrator_queue_oldest_item_age_ms = out->worker_queue_oldest_item_age_ms =
	        out->timer_queue_oldest_item_age_ms = -1;
	out->next_timer_at = DUROX_NO_TIME;
	metrics_ctx m;
	int rc = metrics_begin(dx, req, &m);
	if (rc == DUROX_OK)
		rc = access_store_wide(dx, "get_queue_metrics");
	if (rc != DUROX_OK)
		return rc;
	const store_queue_snapshot *q = NULL;
	store_queue_snapshot scratch;
	const store_history_digest *h = NULL;
	store_queue_params qp;
	if ((rc = get_queues(&m, &scratch, &q, &qp, 1)) != DUROX_OK ||
	    (rc = metrics_history(&m, STORE_DIGEST_ROUND_TRIPS, &h)) != DUROX_OK)
		return rc;
	int64_t now = qp.now;
	out->orchestrator_queue_size = q->orchestrator_rows - q->pending_timers;
	out->worker_queue_size = q->worker_rows;
	out->timer_queue_size = q->pending_timers;
	if (q->orchestrator_oldest_visible != DUROX_NO_TIME)
		out->orchestrator_queue_oldest_item_age_ms = now - q->orchestrator_oldest_visible;
	if (q->worker_oldest_visible != DUROX_NO_TIME)
		out->worker_queue_oldest_item_age_ms = now - q->worker_oldest_visible;
	if (q->oldest_timer_created != DUROX_NO_TIME)
		out->timer_queue_oldest_item_age_ms = now > q->oldest_timer_created ? now - q->oldest_timer_created : 0;
	out->orchestrator = q->orchestrator;
	out->worker = q->worker;
	out->overdue_timers = q->overdue_timers;
	out->next_timer_at = q->next_timer_at;
	/* every event that records a message the orchestrator consumed */
	static const int consumed[] = {EV_ORCHESTRATION_STARTED,
	                               EV_ACTIVITY_COMPLETED,
	                               EV_ACTIVITY_FAILED,
	                               EV_TIMER_FIRED,
	                               EV_EXTERNAL_EVENT,
	                               EV_QUEUE_EVENT,
	                               EV_SUB_ORCHESTRATION_COMPLETED,
	                               EV_SUB_ORCHESTRATION_FAILED,
	                               EV_ORCHESTRATION_CANCEL_REQUESTED};
	for (size_t k = 0; k < sizeof consumed / sizeof consumed[0]; k++)
		out->orchestrator_items_processed += h->by_type[consumed[k]];
	out->worker_items_processed = h->by_type[EV_ACTIVITY_COMPLETED] + h->by_type[EV_ACTIVITY_FAILED];
	out->total_items_processed = out->orchestrator_items_processed + out->worker_items_processed;
	out->activity_round_trips = h->round_trips;
	if (h->round_trips > 0)
		out->average_processing_time_ms = h->round_trip_ms / (double)h->round_trips;
	out->stall_threshold_ms = (uint32_t)qp.stall_ms;
	out->timer_overdue_ms = (uint32_t)qp.timer_overdue_ms;
	out->max_attempts = qp.max_attempts;
	out->near_poison_attempts = qp.near_poison;
	out->collected_at = metrics_collected_at(&m);
	return DUROX_OK;
}

/* ---- get_orchestration_metrics ------------------------------------------------------ */

void durox_orchestration_metrics_free(durox_orchestration_metrics *m)
{
	if (m == NULL)
		return;
	arena a = *(arena *)(void *)(m + 1);
	arena_release(&a);
	free(m);
}

static int cmp_null_first(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int cmp_item(const void *x, const void *y)
{
	const durox_orchestration_type_metrics *a = x, *b = y;
	int c = strcmp(a->orchestration_name, b->orchestration_name);
	return c != 0 ? c : cmp_null_first(a->version, b->version);
}

/* The row for (name, version) in items[0..*n), appended when missing. */
static durox_orchestration_type_metrics *row_for(durox_orchestration_type_metrics *items, size_t *n, const char *name,
                                                 const char *version)
{
	for (size_t k = 0; k < *n; k++)
		if (strcmp(items[k].orchestration_name, name) == 0 && cmp_null_first(items[k].version, version) == 0)
			return &items[k];
	durox_orchestration_type_metrics *r = &items[(*n)++];
	memset(r, 0, sizeof *r);
	r->orchestration_name = name;
	r->version = version;
	return r;
}

/* get_orchestration_metrics over what a restricted caller sees (the view's filter, with the
 * hidden rows excluded): the same figures from the store's grouping of the visible instances
 * by name, version and status (query_instances), computed on every call. */
typedef struct view_groups {
	arena *a;
	durox_orchestration_type_metrics *items;
	size_t n, cap;
	int merge;
	int rc;
} view_groups;

static durox_orchestration_type_metrics *row_for(durox_orchestration_type_metrics *items, size_t *n, const char *name,
                                                 const char *version);

static int view_group_cb(void *ud, const durox_query_group *g, uint64_t total_groups, uint64_t total_instances)
{
	(void)total_groups;
	(void)total_instances;
	view_groups *c = ud;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 32;
		durox_orchestration_type_metrics *v = arena_calloc(c->a, cap, sizeof *v);
		if (v == NULL)
			goto oom;
		if (c->n)
			memcpy(v, c->items, c->n * sizeof *v);
		c->items = v;
		c->cap = cap;
	}
	const char *name = arena_strdup(c->a, g->orchestration_name != NULL ? g->orchestration_name : "");
	const char *version = c->merge || g->version == NULL ? NULL : arena_strdup(c->a, g->version);
	if (name == NULL || (!c->merge && g->version != NULL && version == NULL))
		goto oom;
	durox_orchestration_type_metrics *r = row_for(c->items, &c->n, name, version);
	int st = g->status != NULL ? durox_status_parse(g->status) : -1;
	r->total_started += g->count;
	switch (st) {
	case DUROX_STATUS_RUNNING: r->active_count += g->count; break;
	case DUROX_STATUS_COMPLETED: r->total_completed += g->count; break;
	case DUROX_STATUS_FAILED: r->total_failed += g->count; break;
	case DUROX_STATUS_CONTINUED_AS_NEW: r->continued_as_new += g->count; break;
	default: r->unknown += g->count; break;
	}
	if (g->durations_counted > 0) {
		r->durations_counted += g->durations_counted;
		r->average_duration_ms +=
		        g->average_duration_ms * (double)g->durations_counted; /* a sum until divided */
	}
	return 0;
oom:
	c->rc = DUROX_ENOMEM;
	return -1;
}

static int view_orchestration_metrics(durox *dx, const access_view *v, int merge, arena *a,
                                      durox_orchestration_type_metrics **items, size_t *n)
{
	static const int keys[3] = {DUROX_GROUP_ORCHESTRATION_NAME, DUROX_GROUP_VERSION, DUROX_GROUP_STATUS};
	view_groups c = {a, NULL, 0, 0, merge, DUROX_OK};
	store_group_query q = {v->filter, keys, 3, DUROX_AGG_COUNT | DUROX_AGG_AVERAGE_DURATION, UINT32_MAX};
	int rc = dx->st->mvt->query_instances(dx->st, &q, view_group_cb, &c);
	if (rc != DUROX_OK || c.rc != DUROX_OK)
		return c.rc != DUROX_OK ? dx_fail(dx, c.rc, "out of memory") : dx_store_fail(dx, rc);
	*items = c.items;
	*n = c.n;
	return DUROX_OK;
}

int durox_get_orchestration_metrics(durox *dx, const durox_metrics_request *req, durox_orchestration_metrics **out)
{
	*out = NULL;
	metrics_ctx m;
	int rc = metrics_begin(dx, req, &m);
	if (rc == DUROX_OK)
		rc = access_global(dx, "get_orchestration_metrics", DUROX_HOOK_VIEW_METRICS);
	if (rc != DUROX_OK)
		return rc;
	access_view view;
	rc = access_view_open_aggregate(dx, "get_orchestration_metrics", NULL, &view);
	if (rc != DUROX_OK || view.restricted) {
		durox_orchestration_metrics *res = NULL;
		size_t n = 0;
		durox_orchestration_type_metrics *items = NULL;
		if (rc == DUROX_OK && (res = calloc(1, sizeof *res + sizeof(arena))) == NULL)
			rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
		arena *a = res != NULL ? (arena *)(void *)(res + 1) : NULL;
		if (a != NULL) {
			arena_init(a);
			rc = view_orchestration_metrics(dx, &view, req != NULL && req->merge_versions, a, &items, &n);
		}
		access_view_close(&view);
		if (rc != DUROX_OK) {
			if (res != NULL)
				durox_orchestration_metrics_free(res);
			return rc;
		}
		for (size_t k = 0; k < n; k++) {
			durox_orchestration_type_metrics *r = &items[k];
			r->average_duration_ms =
			        r->durations_counted ? r->average_duration_ms / (double)r->durations_counted : NAN;
			uint64_t done = r->total_completed + r->total_failed;
			r->success_rate = done ? (double)r->total_completed / (double)done : NAN;
			r->failure_rate = done ? (double)r->total_failed / (double)done : NAN;
		}
		if (n > 1)
			qsort(items, n, sizeof *items, cmp_item);
		res->items = items;
		res->count = n;
		res->collected_at = time_now_ms();
		*out = res;
		return DUROX_OK;
	}
	access_view_close(&view);
	const store_instance_digest *in = NULL;
	const store_history_digest *h = NULL;
	if ((rc = metrics_instances(&m, &in)) != DUROX_OK || (rc = metrics_history(&m, 0, &h)) != DUROX_OK)
		return rc;
	int merge = req != NULL && req->merge_versions;
	/* the result and its arena in one allocation: [struct][arena] */
	durox_orchestration_metrics *res = calloc(1, sizeof *res + sizeof(arena));
	if (res == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena *a = (arena *)(void *)(res + 1);
	arena_init(a);
	size_t cap = in->n + h->ngroups + 1, n = 0;
	durox_orchestration_type_metrics *items = arena_calloc(a, cap, sizeof *items);
	if (items == NULL)
		goto oom;
	/* the digests' strings live in the cache: copy what the result keeps */
	for (size_t k = 0; k < in->n; k++) {
		const store_instance_group *g = &in->groups[k];
		const char *name = arena_strdup(a, g->name);
		const char *version = merge || g->version == NULL ? NULL : arena_strdup(a, g->version);
		if (name == NULL || (!merge && g->version != NULL && version == NULL))
			goto oom;
		durox_orchestration_type_metrics *r = row_for(items, &n, name, version);
		r->total_started += g->instances;
		r->total_completed += g->completed;
		r->total_failed += g->failed;
		r->active_count += g->running;
		r->continued_as_new += g->continued_as_new;
		r->unknown += g->unknown;
	}
	for (size_t k = 0; k < h->ngroups; k++) {
		const store_duration_group *g = &h->groups[k];
		const char *name = arena_strdup(a, g->name);
		const char *version = merge || g->version == NULL ? NULL : arena_strdup(a, g->version);
		if (name == NULL || (!merge && g->version != NULL && version == NULL))
			goto oom;
		durox_orchestration_type_metrics *r = row_for(items, &n, name, version);
		r->durations_counted += g->n;
		r->average_duration_ms += g->sum_ms;
	}
	for (size_t k = 0; k < n; k++) {
		durox_orchestration_type_metrics *r = &items[k];
		/* average_duration_ms held the sum */
		r->average_duration_ms =
		        r->durations_counted ? r->average_duration_ms / (double)r->durations_counted : NAN;
		uint64_t done = r->total_completed + r->total_failed;
		r->success_rate = done ? (double)r->total_completed / (double)done : NAN;
		r->failure_rate = done ? (double)r->total_failed / (double)done : NAN;
	}
	if (n > 1)
		qsort(items, n, sizeof *items, cmp_item);
	res->items = items;
	res->count = n;
	res->collected_at = metrics_collected_at(&m);
	*out = res;
	return DUROX_OK;
oom:
	arena_release(a);
	free(res);
	return dx_fail(dx, DUROX_ENOMEM, "out of memory");
}
