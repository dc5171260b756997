/*
 * binding_metrics.c - the store handle's metrics, analytics and stuck-work methods:
 * get_runtime_metrics, get_provider_diagnostics, get_queue_metrics,
 * get_orchestration_metrics, query_instances, get_time_series_metrics,
 * get_instance_dependencies and find_stuck_instances, with the proposal's field names;
 * plus reading a ManagementConfig file (a Lua chunk returning a table).
 * Misuse raises; expected failures (metrics disabled, not found, limits) return nil, msg,
 * code. Relies on the engine (durox.h) and lx.h; added to the Store methods by
 * lx_open_metrics (binding.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lx.h"
#include "util/timeutil.h"

/* ---- field setters (the table is at the top) ---------------------------------------- */

/* An optional age or count: absent when negative. */
static void set_opt(lua_State *L, const char *k, int64_t v)
{
	if (v >= 0)
		lx_set_int(L, k, v);
}

#define GROUP_NAMES "OrchestrationName, Status, CreatedDate, CreatedHour, ParentInstance or Version"
#define AGGREGATE_NAMES "Count, AverageDuration, SuccessRate, FailureRate, P50Duration, P95Duration or P99Duration"
#define SERIES_NAMES                                                                                                   \
	"instances_started, instances_completed, instances_failed, instances_cancelled, activities_completed,"         \
	" activities_failed or average_duration_ms"

/* ---- options ------------------------------------------------------------------------ */

/* Reads the optional {now=, fresh=, merge_versions=} argument at idx. */
static void check_metrics_request(lua_State *L, int idx, durox_metrics_request *r, int allow_merge)
{
	static const char *const known[] = {"now", "fresh", "merge_versions", NULL};
	static const char *const known_nomerge[] = {"now", "fresh", NULL};
	durox_metrics_request_init(r);
	lx_opts o = lx_opts_at(L, idx, "metrics option", allow_merge ? known : known_nomerge, NULL);
	r->now = lx_opt_time(&o, "now");
	r->fresh = lx_opt_boolean(&o, "fresh", 0);
	if (allow_merge)
		r->merge_versions = lx_opt_boolean(&o, "merge_versions", 0);
}

/* ---- metrics ------------------------------------------------------------------------- */

void lx_push_runtime_metrics(lua_State *L, const durox_runtime_metrics *mp)
{
	const durox_runtime_metrics m = *mp;
	lua_createtable(L, 0, 32);
	lx_set_int(L, "uptime_seconds", (int64_t)m.uptime_seconds);
	lx_set_int(L, "total_instances_started", (int64_t)m.total_instances_started);
	lx_set_int(L, "total_instances_completed", (int64_t)m.total_instances_completed);
	lx_set_int(L, "total_instances_failed", (int64_t)m.total_instances_failed);
	lx_set_int(L, "active_instances", (int64_t)m.active_instances);
	lx_set_int(L, "total_activities_executed", (int64_t)m.total_activities_executed);
	lx_set_int(L, "total_timers_fired", (int64_t)m.total_timers_fired);
	lx_set_int(L, "total_events_raised", (int64_t)m.total_events_raised);
	lx_set_num(L, "average_orchestration_duration_ms", m.average_orchestration_duration_ms);
	lx_set_bool(L, "orchestrator_dispatcher_healthy", m.orchestrator_dispatcher_healthy);
	lx_set_bool(L, "worker_dispatcher_healthy", m.worker_dispatcher_healthy);
	lx_set_bool(L, "timer_dispatcher_healthy", m.timer_dispatcher_healthy);
	lx_push_time(L, "collected_at", m.collected_at);
	lx_push_time(L, "store_created_at", m.store_created_at);
	lx_push_time(L, "last_activity_at", m.last_activity_at);
	lx_set_int(L, "total_executions", (int64_t)m.total_executions);
	lx_set_int(L, "total_history_events", (int64_t)m.total_history_events);
	lx_set_int(L, "continued_as_new_instances", (int64_t)m.continued_as_new_instances);
	lx_set_int(L, "unknown_instances", (int64_t)m.unknown_instances);
	lx_set_int(L, "durations_counted", (int64_t)m.durations_counted);
	lua_createtable(L, 0, DUROX_FAILURE__COUNT);
	for (int k = 1; k < DUROX_FAILURE__COUNT; k++)
		lx_set_int(L, durox_failure_kind_name(k), (int64_t)m.failed_by_kind[k]);
	lua_setfield(L, -2, "failed_by_kind");
	lx_set_int(L, "stalled_orchestrator_items", (int64_t)m.stalled_orchestrator_items);
	lx_set_int(L, "stalled_worker_items", (int64_t)m.stalled_worker_items);
	lx_set_int(L, "overdue_timers", (int64_t)m.overdue_timers);
	lx_set_int(L, "expired_instance_locks", (int64_t)m.expired_instance_locks);
	lx_set_int(L, "blocking_orphan_items", (int64_t)m.blocking_orphan_items);
}
/* handle:get_runtime_metrics([opts]) -> RuntimeMetrics */
static int l_runtime_metrics(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	durox_metrics_request req;
	check_metrics_request(L, 2, &req, 0);
	durox_runtime_metrics m;
	int rc = durox_get_runtime_metrics(dx, &req, &m);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lx_push_runtime_metrics(L, &m);
	return 1;
}

/* handle:get_provider_diagnostics([opts]) -> ProviderDiagnostics */
static int l_provider_diagnostics(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	durox_metrics_request req;
	check_metrics_request(L, 2, &req, 0);
	durox_provider_diagnostics d;
	int rc = durox_get_provider_diagnostics(dx, &req, &d);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_createtable(L, 0, 24);
	lx_set_str(L, "provider_type", d.provider_type);
	lx_set_bool(L, "connection_healthy", d.connection_healthy);
	lx_set_int(L, "total_instances_stored", (int64_t)d.total_instances_stored);
	lx_set_int(L, "total_history_events", (int64_t)d.total_history_events);
	lx_set_num(L, "average_read_latency_ms", d.average_read_latency_ms);
	lx_set_num(L, "average_write_latency_ms", d.average_write_latency_ms);
	set_opt(L, "storage_size_bytes", d.storage_size_bytes);
	lx_push_time(L, "collected_at", d.collected_at);
	lx_set_str(L, "location", d.location);
	lx_set_str(L, "schema_version", d.schema_version);
	if (d.journal_mode && d.journal_mode[0])
		lx_set_str(L, "journal_mode", d.journal_mode);
	if (d.health_error && d.health_error[0])
		lx_set_str(L, "health_error", d.health_error);
	lx_set_int(L, "total_executions_stored", (int64_t)d.total_executions_stored);
	lx_set_int(L, "orchestrator_queue_rows", (int64_t)d.orchestrator_queue_rows);
	lx_set_int(L, "worker_queue_rows", (int64_t)d.worker_queue_rows);
	lx_set_int(L, "read_calls", (int64_t)d.read_calls);
	lx_set_int(L, "write_calls", (int64_t)d.write_calls);
	if (d.read_calls)
		lx_set_num(L, "max_read_latency_ms", d.max_read_latency_ms);
	if (d.write_calls)
		lx_set_num(L, "max_write_latency_ms", d.max_write_latency_ms);
	if (d.page_count > 0) {
		lx_set_int(L, "page_size", d.page_size);
		lx_set_int(L, "page_count", d.page_count);
		lx_set_int(L, "freelist_count", d.freelist_count);
	}
	set_opt(L, "wal_size_bytes", d.wal_size_bytes);
	return 1;
}

static void push_queue_detail(lua_State *L, const durox_queue_detail *q, int orchestrator)
{
	lua_createtable(L, 0, 14);
	lx_set_int(L, "available", (int64_t)q->available);
	lx_set_int(L, "in_progress", (int64_t)q->in_progress);
	if (orchestrator)
		lx_set_int(L, "waiting_on_lock", (int64_t)q->waiting_on_lock);
	lx_set_int(L, "delayed", (int64_t)q->delayed);
	lx_set_int(L, "stalled", (int64_t)q->stalled);
	lx_set_int(L, "expired_locks", (int64_t)q->expired_locks);
	lx_set_int(L, "near_poison", (int64_t)q->near_poison);
	lx_set_int(L, "at_poison_limit", (int64_t)q->at_poison_limit);
	set_opt(L, "max_attempt_count", q->max_attempt_count);
	if (orchestrator) {
		lx_set_int(L, "stale_lock_tokens", (int64_t)q->stale_lock_tokens);
		lx_set_int(L, "orphans", (int64_t)q->orphans);
		lx_set_int(L, "orphans_blocking", (int64_t)q->orphans_blocking);
	}
	lx_set_int(L, "unlocked_rows", (int64_t)q->unlocked_rows);
}

/* handle:get_queue_metrics([opts]) -> QueueMetrics */
static int l_queue_metrics(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	durox_metrics_request req;
	check_metrics_request(L, 2, &req, 0);
	durox_queue_metrics q;
	int rc = durox_get_queue_metrics(dx, &req, &q);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_createtable(L, 0, 24);
	lx_set_int(L, "orchestrator_queue_size", (int64_t)q.orchestrator_queue_size);
	lx_set_int(L, "worker_queue_size", (int64_t)q.worker_queue_size);
	lx_set_int(L, "timer_queue_size", (int64_t)q.timer_queue_size);
	set_opt(L, "orchestrator_queue_oldest_item_age_ms", q.orchestrator_queue_oldest_item_age_ms);
	set_opt(L, "worker_queue_oldest_item_age_ms", q.worker_queue_oldest_item_age_ms);
	set_opt(L, "timer_queue_oldest_item_age_ms", q.timer_queue_oldest_item_age_ms);
	lx_set_int(L, "total_items_processed", (int64_t)q.total_items_processed);
	lx_set_num(L, "average_processing_time_ms", q.average_processing_time_ms);
	lx_push_time(L, "collected_at", q.collected_at);
	push_queue_detail(L, &q.orchestrator, 1);
	lua_setfield(L, -2, "orchestrator");
	push_queue_detail(L, &q.worker, 0);
	lua_setfield(L, -2, "worker");
	lx_set_int(L, "overdue_timers", (int64_t)q.overdue_timers);
	lx_push_time(L, "next_timer_at", q.next_timer_at);
	lx_set_int(L, "orchestrator_items_processed", (int64_t)q.orchestrator_items_processed);
	lx_set_int(L, "worker_items_processed", (int64_t)q.worker_items_processed);
	lx_set_int(L, "activity_round_trips", (int64_t)q.activity_round_trips);
	lua_createtable(L, 0, 4);
	lx_set_int(L, "stall_threshold_ms", q.stall_threshold_ms);
	lx_set_int(L, "timer_overdue_ms", q.timer_overdue_ms);
	lx_set_int(L, "max_attempts", q.max_attempts);
	lx_set_int(L, "near_poison_attempts", q.near_poison_attempts);
	lua_setfield(L, -2, "thresholds");
	return 1;
}

static void orchestration_metrics_free_box(void *p) { durox_orchestration_metrics_free(p); }

/* handle:get_orchestration_metrics([opts]) -> { OrchestrationTypeMetrics, ... } */
static int l_orchestration_metrics(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	durox_metrics_request req;
	check_metrics_request(L, 2, &req, 1);
	lx_box *b = lx_newbox(L);
	durox_orchestration_metrics *m;
	int rc = durox_get_orchestration_metrics(dx, &req, &m);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = m;
	b->fr = orchestration_metrics_free_box;
	lua_createtable(L, (int)m->count, 0);
	for (size_t k = 0; k < m->count; k++) {
		const durox_orchestration_type_metrics *o = &m->items[k];
		lua_createtable(L, 0, 12);
		lx_set_str(L, "orchestration_name", o->orchestration_name);
		lx_set_str(L, "version", o->version);
		lx_set_int(L, "total_started", (int64_t)o->total_started);
		lx_set_int(L, "total_completed", (int64_t)o->total_completed);
		lx_set_int(L, "total_failed", (int64_t)o->total_failed);
		lx_set_int(L, "active_count", (int64_t)o->active_count);
		lx_set_num(L, "average_duration_ms", o->average_duration_ms);
		lx_set_num(L, "success_rate", o->success_rate);
		lx_set_num(L, "failure_rate", o->failure_rate);
		lx_set_int(L, "continued_as_new", (int64_t)o->continued_as_new);
		lx_set_int(L, "unknown", (int64_t)o->unknown);
		lx_set_int(L, "durations_counted", (int64_t)o->durations_counted);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lx_boxfree(b);
	return 1;
}

/* ---- analytics ------------------------------------------------------------------------ */

static void query_free_box(void *p) { durox_query_response_free(p); }

/* handle:query_instances(query) -> QueryResponse */
static int l_query_instances(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	if (lua_isnoneornil(L, 2)) {
		lua_settop(L, 1);
		lua_newtable(L);
	}
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	static const char *const known[] = {"filter", "group_by", "aggregate", "aggregates", "limit", NULL};
	lx_opts o = lx_opts_at(L, 2, "query", known, NULL);
	durox_instance_query q;
	memset(&q, 0, sizeof q);
	int names[16];
	q.n_group_by = (size_t)lx_opt_enum_list(&o, "group_by", durox_group_field_parse, GROUP_NAMES, names,
	                                        DUROX_GROUP__COUNT);
	int day = 0, hour = 0;
	for (size_t k = 0; k < q.n_group_by; k++) {
		q.group_by[k] = names[k];
		day |= names[k] == DUROX_GROUP_CREATED_DATE;
		hour |= names[k] == DUROX_GROUP_CREATED_HOUR;
	}
	if (day && hour)
		lx_opt_error(&o, "group_by", "cannot combine CreatedDate and CreatedHour");
	if (lx_opt_has(&o, "aggregate") && lx_opt_has(&o, "aggregates"))
		lx_opt_error(&o, "aggregates", "given twice (as aggregate and as aggregates)");
	const char *ak = lx_opt_has(&o, "aggregates") ? "aggregates" : "aggregate";
	int n = lx_opt_enum_list(&o, ak, durox_aggregate_parse, AGGREGATE_NAMES, names, 16);
	for (int k = 0; k < n; k++)
		q.aggregates |= (unsigned)names[k];
	q.limit = (uint32_t)lx_opt_integer(&o, "limit", 0, 0, LX_MAX_PAGE);
	lua_getfield(L, 2, "filter"); /* 3 */
	int pred = 0;
	durox_filter *f = lx_filter_arg(L, 3, &pred); /* pushes its box */
	if (pred)
		luaL_error(L, "query_instances does not take a predicate: its groups are computed by the store");
	q.filter = f;
	lx_box *b = lx_newbox(L);
	durox_query_response *r;
	int rc = durox_query_instances(dx, &q, &r);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = r;
	b->fr = query_free_box;
	lua_createtable(L, 0, 6);
	lua_createtable(L, (int)r->count, 0);
	for (size_t k = 0; k < r->count; k++) {
		const durox_query_group *g = &r->groups[k];
		lua_createtable(L, 0, 16);
		for (size_t j = 0; j < r->n_group_by; j++) {
			const char *v = NULL;
			const char *key = NULL;
			switch (r->group_by[j]) {
			case DUROX_GROUP_ORCHESTRATION_NAME:
				key = "orchestration_name";
				v = g->orchestration_name;
				break;
			case DUROX_GROUP_STATUS:
				key = "status";
				v = g->status;
				break;
			case DUROX_GROUP_PARENT_INSTANCE:
				key = "parent_instance";
				v = g->parent_instance;
				break;
			case DUROX_GROUP_VERSION:
				key = "version";
				v = g->version;
				break;
			default: key = "created_date"; break;
			}
			if (r->group_by[j] == DUROX_GROUP_CREATED_DATE || r->group_by[j] == DUROX_GROUP_CREATED_HOUR)
				lua_pushinteger(L, g->created_date);
			else if (v != NULL)
				lua_pushstring(L, v);
			else
				lua_pushlightuserdata(L, NULL); /* durox.null: the group of NULL keys */
			lua_setfield(L, -2, key);
		}
		if (r->aggregates & DUROX_AGG_COUNT)
			lx_set_int(L, "count", (int64_t)g->count);
		lx_set_num(L, "average_duration_ms", g->average_duration_ms);
		lx_set_num(L, "success_rate", g->success_rate);
		lx_set_num(L, "failure_rate", g->failure_rate);
		lx_set_num(L, "p50_duration_ms", g->p50_duration_ms);
		lx_set_num(L, "p95_duration_ms", g->p95_duration_ms);
		lx_set_num(L, "p99_duration_ms", g->p99_duration_ms);
		lx_set_int(L, "completed", (int64_t)g->completed);
		lx_set_int(L, "failed", (int64_t)g->failed);
		lx_set_int(L, "durations_counted", (int64_t)g->durations_counted);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, -2, "groups");
	lx_set_int(L, "total_groups", (int64_t)r->total_groups);
	lx_set_int(L, "total_instances", (int64_t)r->total_instances);
	lua_createtable(L, (int)r->n_group_by, 0);
	for (size_t j = 0; j < r->n_group_by; j++) {
		lua_pushstring(L, durox_group_field_name(r->group_by[j]));
		lua_rawseti(L, -2, (lua_Integer)j + 1);
	}
	lua_setfield(L, -2, "group_by");
	lua_createtable(L, 7, 0);
	int na = 0;
	for (unsigned bit = 1; bit & DUROX_AGG_ALL; bit <<= 1) {
		if (r->aggregates & bit) {
			lua_pushstring(L, durox_aggregate_name(bit));
			lua_rawseti(L, -2, ++na);
		}
	}
	lua_setfield(L, -2, "aggregate");
	lx_boxfree(b);
	return 1;
}

static void push_bucket(lua_State *L, const durox_time_bucket *b, unsigned series)
{
	lua_createtable(L, 0, 9);
	lx_set_int(L, "start", b->start);
	if (series & DUROX_SERIES_INSTANCES_STARTED)
		lx_set_int(L, "instances_started", (int64_t)b->instances_started);
	if (series & DUROX_SERIES_INSTANCES_COMPLETED)
		lx_set_int(L, "instances_completed", (int64_t)b->instances_completed);
	if (series & DUROX_SERIES_INSTANCES_FAILED)
		lx_set_int(L, "instances_failed", (int64_t)b->instances_failed);
	if (series & DUROX_SERIES_INSTANCES_CANCELLED)
		lx_set_int(L, "instances_cancelled", (int64_t)b->instances_cancelled);
	if (series & DUROX_SERIES_ACTIVITIES_COMPLETED)
		lx_set_int(L, "activities_completed", (int64_t)b->activities_completed);
	if (series & DUROX_SERIES_ACTIVITIES_FAILED)
		lx_set_int(L, "activities_failed", (int64_t)b->activities_failed);
	if (series & DUROX_SERIES_AVERAGE_DURATION) {
		lx_set_num(L, "average_duration_ms", b->average_duration_ms);
		lx_set_int(L, "durations_counted", (int64_t)b->durations_counted);
	}
}

static void series_free_box(void *p) { durox_time_series_free(p); }

/* handle:get_time_series_metrics([request]) -> TimeSeriesResponse */
static int l_time_series(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	if (lua_isnoneornil(L, 2)) {
		lua_settop(L, 1);
		lua_newtable(L);
	}
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	static const char *const known[] = {"from", "to", "bucket", "bucket_ms", "series", "orchestration_name",
	                                    "name", NULL};
	lx_opts o = lx_opts_at(L, 2, "time series request", known, NULL);
	durox_time_series_request r = DUROX_TIME_SERIES_REQUEST_INIT;
	r.from = lx_opt_time(&o, "from");
	r.to = lx_opt_time(&o, "to");
	if (r.from != DUROX_NO_TIME && r.to != DUROX_NO_TIME && r.from >= r.to)
		lx_opt_error(&o, "from", "must be before 'to' (the window is empty)");
	if (lx_opt_has(&o, "bucket_ms") && lx_opt_has(&o, "bucket"))
		lx_opt_error(&o, "bucket", "given twice (as bucket and as bucket_ms)");
	/* at least 1 s (as the engine requires), at most 100 years */
	r.bucket_ms =
	        lx_opt_duration(&o, lx_opt_has(&o, "bucket_ms") ? "bucket_ms" : "bucket", 0, 1000, 3155760000000LL);
	int v[16];
	int n = lx_opt_enum_list(&o, "series", durox_series_parse, SERIES_NAMES, v, 16);
	for (int k = 0; k < n; k++)
		r.series |= (unsigned)v[k];
	if (lx_opt_has(&o, "orchestration_name") && lx_opt_has(&o, "name"))
		lx_opt_error(&o, "name", "given twice (as name and as orchestration_name)");
	r.orchestration_name = lx_opt_text(&o, lx_opt_has(&o, "name") ? "name" : "orchestration_name");
	lx_box *b = lx_newbox(L);
	durox_time_series *t;
	int rc = durox_get_time_series_metrics(dx, &r, &t);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = t;
	b->fr = series_free_box;
	lua_createtable(L, 0, 7);
	lx_set_int(L, "from", t->from);
	lx_set_int(L, "to", t->to);
	lx_set_int(L, "bucket_ms", t->bucket_ms);
	lua_createtable(L, 7, 0);
	int ns = 0;
	for (unsigned bit = 1; bit & DUROX_SERIES_ALL; bit <<= 1) {
		if (t->series & bit) {
			lua_pushstring(L, durox_series_name(bit));
			lua_rawseti(L, -2, ++ns);
		}
	}
	lua_setfield(L, -2, "series");
	lua_createtable(L, (int)t->count, 0);
	for (size_t k = 0; k < t->count; k++) {
		push_bucket(L, &t->buckets[k], t->series);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, -2, "buckets");
	push_bucket(L, &t->totals, t->series);
	lua_setfield(L, -2, "totals");
	if (r.orchestration_name)
		lx_set_str(L, "orchestration_name", r.orchestration_name);
	lx_boxfree(b);
	return 1;
}

/* Pushes node k and, recursively, its listed children. */
static void push_node(lua_State *L, const durox_dependency_graph *g, size_t k)
{
	luaL_checkstack(L, 6, "dependency graph too deep");
	const durox_child_instance *c = &g->nodes[k];
	lua_createtable(L, 0, 6);
	lx_set_str(L, "instance_id", c->instance_id);
	lx_set_str(L, "orchestration_name", c->orchestration_name);
	lx_set_str(L, "status", durox_status_name(c->status));
	lx_set_int(L, "child_count", (int64_t)c->child_count);
	lx_set_int(L, "depth", c->depth);
	lua_createtable(L, (int)c->n_children, 0);
	for (size_t j = 0; j < c->n_children; j++) {
		push_node(L, g, c->first_child + j);
		lua_rawseti(L, -2, (lua_Integer)j + 1);
	}
	lua_setfield(L, -2, "children");
}

static void graph_free_box(void *p) { durox_dependency_graph_free(p); }

/* handle:get_instance_dependencies(id [, {max_depth=}]) -> DependencyGraph */
static int l_dependencies(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *id = lx_checktext(L, 2);
	static const char *const known[] = {"max_depth", NULL};
	lx_opts o = lx_opts_at(L, 3, "dependencies option", known, NULL);
	uint32_t depth = (uint32_t)lx_opt_integer(&o, "max_depth", 0, 0, 1000);
	lx_box *b = lx_newbox(L);
	durox_dependency_graph *g;
	int rc = durox_get_instance_dependencies(dx, id, depth, &g);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = g;
	b->fr = graph_free_box;
	lua_createtable(L, 0, 9);
	lx_set_str(L, "root_instance", g->root_instance);
	lx_set_str(L, "orchestration_name", g->orchestration_name);
	lx_set_str(L, "status", durox_status_name(g->status));
	lx_set_str(L, "tree_root", g->tree_root);
	if (g->parent) {
		lua_createtable(L, 0, 3);
		lx_set_str(L, "instance_id", g->parent->instance_id);
		lx_set_str(L, "orchestration_name", g->parent->orchestration_name);
		lx_set_str(L, "status", durox_status_name(g->parent->status));
		lua_setfield(L, -2, "parent");
	}
	lua_createtable(L, (int)g->n_children, 0);
	for (size_t k = 0; k < g->n_children; k++) {
		push_node(L, g, k);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, -2, "children");
	lx_set_int(L, "total_descendants", (int64_t)g->total_descendants);
	lx_set_int(L, "listed_descendants", (int64_t)g->n_nodes);
	lx_set_int(L, "max_depth", g->max_depth);
	lx_set_bool(L, "truncated", g->truncated);
	lx_boxfree(b);
	return 1;
}

/* ---- stuck work ------------------------------------------------------------------------ */

static void stuck_free_box(void *p) { durox_stuck_list_free(p); }

/* handle:find_stuck_instances([opts]) -> { instances = {...}, truncated, now } */
static int l_find_stuck(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	static const char *const known[] = {"now",
	                                    "stall_threshold_ms",
	                                    "timer_overdue_ms",
	                                    "event_wait_threshold_ms",
	                                    "near_poison_attempts",
	                                    "max_attempts",
	                                    "limit",
	                                    NULL};
	lx_opts o = lx_opts_at(L, 2, "find_stuck_instances option", known, NULL);
	durox_stuck_request r;
	durox_stuck_request_init(&r);
	r.now = lx_opt_time(&o, "now");
	r.stall_threshold_ms = lx_opt_duration(&o, "stall_threshold_ms", -1, 0, 0x7fffffff);
	r.timer_overdue_ms = lx_opt_duration(&o, "timer_overdue_ms", -1, 0, 0x7fffffff);
	r.event_wait_threshold_ms = lx_opt_duration(&o, "event_wait_threshold_ms", -1, 0, 0x7fffffff);
	r.near_poison_attempts = (uint32_t)lx_opt_integer(&o, "near_poison_attempts", 0, 0, 1000000);
	r.max_attempts = (uint32_t)lx_opt_integer(&o, "max_attempts", 0, 0, 1000000);
	r.limit = (uint32_t)lx_opt_integer(&o, "limit", 0, 0, 10000000);
	if (r.near_poison_attempts > 0 && r.max_attempts > 0 && r.near_poison_attempts > r.max_attempts)
		lx_opt_error(&o, "near_poison_attempts", "out of range (0 to max_attempts, %d), got %d",
		             (int)r.max_attempts, (int)r.near_poison_attempts);
	lx_box *b = lx_newbox(L);
	durox_stuck_list *l;
	int rc = durox_find_stuck_instances(dx, &r, &l);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = l;
	b->fr = stuck_free_box;
	lua_createtable(L, 0, 3);
	lua_createtable(L, (int)l->count, 0);
	for (size_t k = 0; k < l->count; k++) {
		const durox_stuck_instance *s = &l->items[k];
		lua_createtable(L, 0, 5);
		lx_set_str(L, "instance_id", s->instance_id);
		lx_set_str(L, "orchestration_name", s->orchestration_name);
		lx_set_str(L, "status", durox_status_name(s->status));
		lx_set_int(L, "since", s->since);
		lua_createtable(L, (int)s->n_reasons, 0);
		for (size_t j = 0; j < s->n_reasons; j++) {
			const durox_stuck_evidence *e = &s->reasons[j];
			lua_createtable(L, 0, 8);
			lx_set_str(L, "reason", durox_stuck_reason_name(e->reason));
			lx_set_str(L, "message", e->message);
			lx_set_int(L, "since", e->since);
			lx_set_str(L, "queue", e->queue);
			set_opt(L, "queue_id", e->queue_id);
			set_opt(L, "attempt_count", e->attempt_count);
			lx_set_str(L, "detail", e->detail);
			if (e->blocks_queue)
				lx_set_bool(L, "blocks_queue", 1);
			lua_rawseti(L, -2, (lua_Integer)j + 1);
		}
		lua_setfield(L, -2, "reasons");
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, -2, "instances");
	lx_set_bool(L, "truncated", l->truncated);
	lx_set_int(L, "now", l->now);
	lx_boxfree(b);
	return 1;
}

/* ---- registration ---------------------------------------------------------------------- */

static const luaL_Reg metrics_methods[] = {
        {"get_runtime_metrics", l_runtime_metrics},
        {"get_provider_diagnostics", l_provider_diagnostics},
        {"get_queue_metrics", l_queue_metrics},
        {"get_orchestration_metrics", l_orchestration_metrics},
        {"query_instances", l_query_instances},
        {"get_time_series_metrics", l_time_series},
        {"get_instance_dependencies", l_dependencies},
        {"find_stuck_instances", l_find_stuck},
        {NULL, NULL},
};

void lx_open_metrics(lua_State *L) { luaL_setfuncs(L, metrics_methods, 0); }
