/*
 * stream_metrics.c - stream_runtime_metrics: RuntimeMetrics every interval, kept current from
 * the change feed (deltas of the counters the history and the instances' statuses define,
 * docs/metrics.md) and recounted with get_runtime_metrics only now and then; the health flags
 * come from a fresh queue snapshot each tick. Relies on feed.h, stream_internal.h and the
 * provider's metrics vtable; used by the Lua binding (dx:stream_runtime_metrics).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "engine/metrics_internal.h"
#include "engine/stream_internal.h"
#include "util/hmap.h"
#include "util/timeutil.h"

#define DEFAULT_INTERVAL_MS 1000
#define DEFAULT_RECOUNT_MS 60000
#define CHEAP_SHARE 50 /* a recount costing less than 1/50 of the interval runs every tick */
#define STARTS_MAX 200000

struct durox_metrics_stream {
	durox *dx;
	durox_metrics_stream_request rq;
	efeed e;
	int has_base;
	durox_runtime_metrics m;
	double duration_sum;
	int64_t last_recount, recount_cost, next_tick;
	uint64_t ticks;
	hmap starts; /* instance -> first OrchestrationStarted timestamp seen (a) */
	stream_rows rows;
};

void durox_metrics_stream_free(durox_metrics_stream *s)
{
	if (s == NULL)
		return;
	efeed_close(&s->e);
	hmap_free(&s->starts);
	stream_rows_free(&s->rows);
	free(s);
}

int durox_metrics_stream_open(durox *dx, const durox_metrics_stream_request *req, durox_metrics_stream **out)
{
	dx_clear(dx);
	*out = NULL;
	if (!dx->cfg.enable_metrics)
		return dx_fail(dx, DUROX_EDENIED, "metrics are disabled by the configuration (enable_metrics = false)");
	if (dx->st->mvt == NULL)
		return dx_fail(dx, DUROX_EUNSUPPORTED, "the %s store has no metrics", dx->st->info.provider);
	/* store-wide figures: can_view_metrics and an unrestricted view (the one enforcement point) */
	int rc = access_store_wide(dx, "stream_runtime_metrics");
	if (rc != DUROX_OK)
		return rc;
	durox_metrics_stream *s = calloc(1, sizeof *s);
	if (s == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	s->dx = dx;
	s->rq = *req;
	if (s->rq.interval_ms == 0)
		s->rq.interval_ms = DEFAULT_INTERVAL_MS;
	if (s->rq.recount_ms == 0)
		s->rq.recount_ms = DEFAULT_RECOUNT_MS;
	hmap_init(&s->starts);
	arena_init(&s->rows.mem);
	rc = efeed_open(dx, &s->e, EFEED_CHANGES, 0, NULL, 1);
	if (rc != DUROX_OK) {
		durox_metrics_stream_free(s);
		return rc;
	}
	*out = s;
	return DUROX_OK;
}

/* A full recount: the feed is put at the present first, so what commits while the recount
 * runs is counted at most twice, never missed. */
static int recount(durox_metrics_stream *s)
{
	durox *dx = s->dx;
	int rc = dx->st->fvt->seek(s->e.f, 1);
	if (rc != DUROX_OK)
		return dx_store_fail(dx, rc);
	int64_t t0 = time_mono_ms();
	durox_metrics_request req;
	durox_metrics_request_init(&req);
	req.fresh = 1;
	if ((rc = durox_get_runtime_metrics(dx, &req, &s->m)) != DUROX_OK)
		return rc;
	s->recount_cost = time_mono_ms() - t0;
	s->last_recount = time_mono_ms();
	s->duration_sum = s->m.durations_counted > 0 && !isnan(s->m.average_orchestration_duration_ms)
	                          ? s->m.average_orchestration_duration_ms * (double)s->m.durations_counted
	                          : 0;
	hmap_free(&s->starts);
	s->has_base = 1;
	return DUROX_OK;
}

/* The timestamp of the OrchestrationStarted of the instance's first stored execution. */
struct first_exec {
	uint64_t id;
};

static int first_exec_cb(void *ud, const store_exec_row *r)
{
	struct first_exec *f = ud;
	if (f->id == 0 || r->execution_id < f->id)
		f->id = r->execution_id;
	return 0;
}

static int start_ts_cb(void *ud, const store_event_row *r)
{
	*(int64_t *)ud = efeed_event_ts(r->data, r->data_len, r->created_at);
	return 1;
}

static int64_t first_start(durox_metrics_stream *s, const char *id)
{
	hmap_entry *e = hmap_get(&s->starts, id, strlen(id));
	if (e != NULL)
		return e->a;
	store *st = s->dx->st;
	struct first_exec f = {0};
	if (st->vt->executions(st, id, first_exec_cb, &f) != DUROX_OK || f.id == 0) {
		st->err[0] = '\0';
		return DUROX_NO_TIME;
	}
	store_history_query q = {0};
	q.instance_id = id;
	q.execution_id = f.id;
	q.from_event_id = q.to_event_id = 1;
	q.from_time = q.to_time = DUROX_NO_TIME;
	int64_t ts = DUROX_NO_TIME;
	if (st->vt->history(st, &q, start_ts_cb, &ts) != DUROX_OK)
		st->err[0] = '\0';
	return ts;
}

static void apply(durox_metrics_stream *s, const stream_row *x)
{
	durox_runtime_metrics *m = &s->m;
	m->total_history_events++;
	int sh = stream_history_type(x->event_type);
	switch (sh) {
	case SH_STARTED:
		m->total_executions++;
		m->active_instances++;
		if (x->execution_id <= 1) {
			m->total_instances_started++;
			if (s->starts.count < STARTS_MAX) {
				int created;
				hmap_entry *e = hmap_put(&s->starts, x->instance_id, strlen(x->instance_id), &created);
				if (e != NULL && created)
					e->a = efeed_event_ts(x->data, x->data_len, x->created_at);
			}
		} else if (m->continued_as_new_instances > 0) {
			m->continued_as_new_instances--;
		}
		break;
	case SH_COMPLETED:
	case SH_FAILED: {
		if (m->active_instances > 0)
			m->active_instances--;
		if (sh == SH_COMPLETED) {
			m->total_instances_completed++;
		} else {
			m->total_instances_failed++;
			arena tmp;
			arena_init(&tmp);
			json *ev = json_parse(&tmp, x->data ? x->data : "", x->data_len, NULL, 0);
			int cancelled;
			int kind = stream_failure_of(ev, &cancelled);
			arena_release(&tmp);
			m->failed_by_kind[kind]++;
		}
		int64_t t0 = first_start(s, x->instance_id);
		if (t0 != DUROX_NO_TIME) {
			int64_t t1 = efeed_event_ts(x->data, x->data_len, x->created_at);
			s->duration_sum += (double)(t1 - t0);
			m->durations_counted++;
		}
		hmap_del(&s->starts, x->instance_id, strlen(x->instance_id));
		break;
	}
	case SH_CAN:
		if (m->active_instances > 0)
			m->active_instances--;
		m->continued_as_new_instances++;
		break;
	case SH_ACTIVITY_COMPLETED:
	case SH_ACTIVITY_FAILED: m->total_activities_executed++; break;
	case SH_TIMER_FIRED: m->total_timers_fired++; break;
	case SH_EXTERNAL_EVENT:
	case SH_QUEUE_EVENT: m->total_events_raised++; break;
	default: break;
	}
	int64_t ts = efeed_event_ts(x->data, x->data_len, x->created_at);
	if (m->last_activity_at == DUROX_NO_TIME || ts > m->last_activity_at)
		m->last_activity_at = ts;
}

/* The health flags and their evidence, from the queues as they are now. */
static int health(durox_metrics_stream *s, int64_t now)
{
	durox *dx = s->dx;
	store_queue_params p;
	metrics_queue_params(dx, now, &p);
	store_queue_snapshot q;
	int rc = dx->st->mvt->queue_snapshot(dx->st, &p, &q);
	if (rc != DUROX_OK)
		return dx_store_fail(dx, rc);
	durox_runtime_metrics *m = &s->m;
	m->stalled_orchestrator_items = q.orchestrator.stalled;
	m->stalled_worker_items = q.worker.stalled;
	m->overdue_timers = q.overdue_timers;
	m->expired_instance_locks = q.long_expired_instance_locks;
	m->blocking_orphan_items = q.orchestrator.orphans_blocking;
	m->orchestrator_dispatcher_healthy = q.orchestrator.stalled == 0 && q.long_expired_instance_locks == 0 &&
	                                     q.orchestrator.orphans_blocking == 0;
	m->worker_dispatcher_healthy = q.worker.stalled == 0;
	m->timer_dispatcher_healthy = q.overdue_timers == 0;
	return DUROX_OK;
}

int durox_metrics_stream_next(durox_metrics_stream *s, durox_runtime_metrics *out, int *recounted)
{
	durox *dx = s->dx;
	dx_clear(dx);
	*recounted = 0;
	memset(out, 0, sizeof *out);
	if (s->rq.count > 0 && s->ticks >= s->rq.count)
		return 0;
	int rc;
	if (s->ticks > 0) {
		int64_t now = time_mono_ms();
		if (s->next_tick > now &&
		    (rc = stream_wait(dx, s->rq.wait, s->rq.wait_ud, s->next_tick - now)) != DUROX_OK)
			return rc;
	}
	int64_t mono = time_mono_ms();
	s->next_tick = (s->ticks == 0 ? mono : s->next_tick) + s->rq.interval_ms;
	if (s->next_tick < mono)
		s->next_tick = mono + s->rq.interval_ms; /* a slow tick: no burst to catch up */
	int full = !s->has_base || mono - s->last_recount >= (int64_t)s->rq.recount_ms ||
	           (!s->rq.no_cheap_recounts && s->recount_cost * CHEAP_SHARE < (int64_t)s->rq.interval_ms);
	if (!full) {
		/* the events since the last tick */
		for (;;) {
			store_feed_result fr;
			if ((rc = stream_poll(&s->e, 0, 1000, &s->rows, &fr)) != DUROX_OK)
				return rc;
			if (fr.reset != DUROX_RESET_NONE) {
				full = 1;
				break;
			}
			for (size_t i = 0; i < s->rows.n; i++)
				apply(s, &s->rows.rows[i]);
			if (!fr.more)
				break;
		}
	}
	if (full) {
		if ((rc = recount(s)) != DUROX_OK)
			return rc;
		*recounted = 1;
	} else {
		int64_t now = time_now_ms();
		if ((rc = health(s, now)) != DUROX_OK)
			return rc;
		s->m.collected_at = now;
		if (s->m.store_created_at != DUROX_NO_TIME && now > s->m.store_created_at)
			s->m.uptime_seconds = (uint64_t)((now - s->m.store_created_at) / 1000);
		s->m.average_orchestration_duration_ms =
		        s->m.durations_counted > 0 ? s->duration_sum / (double)s->m.durations_counted : NAN;
	}
	s->ticks++;
	*out = s->m;
	return 1;
}
