/*
 * test_metrics.c - unit tests of the metrics and analytics code that need no runtime: the
 * hash map behind the one-pass digests, every metric and analytics call on an empty
 * in-memory store (zeros, undefined averages, no ages), enable_metrics = 0, the threshold
 * validation and the enum name tables. Figures on stores the runtime wrote are checked by
 * the busted specs (tests/spec/metrics_spec.lua and others).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "durox.h"
#include "t.h"
#include "util/hmap.h"

TEST(hmap_put_get_del)
{
	hmap m;
	hmap_init(&m);
	char key[128];
	int created;
	/* short keys live in the entry, long ones are allocated: use both */
	for (int i = 0; i < 5000; i++) {
		int n = snprintf(key, sizeof key, i % 3 ? "k%d" : "a-much-longer-key-that-does-not-fit-inline-%d", i);
		hmap_entry *e = hmap_put(&m, key, (size_t)n, &created);
		CHECK(e != NULL && created);
		e->a = i;
	}
	EQ_INT(m.count, 5000);
	for (int i = 0; i < 5000; i++) {
		int n = snprintf(key, sizeof key, i % 3 ? "k%d" : "a-much-longer-key-that-does-not-fit-inline-%d", i);
		hmap_entry *e = hmap_put(&m, key, (size_t)n, &created);
		CHECK(e != NULL && !created && e->a == i);
	}
	/* delete the even ones: lookups of the odd ones must survive the backward shifts */
	for (int i = 0; i < 5000; i += 2) {
		int n = snprintf(key, sizeof key, i % 3 ? "k%d" : "a-much-longer-key-that-does-not-fit-inline-%d", i);
		EQ_INT(hmap_del(&m, key, (size_t)n), 1);
		EQ_INT(hmap_del(&m, key, (size_t)n), 0);
	}
	EQ_INT(m.count, 2500);
	int missing = 0, wrong = 0;
	for (int i = 0; i < 5000; i++) {
		int n = snprintf(key, sizeof key, i % 3 ? "k%d" : "a-much-longer-key-that-does-not-fit-inline-%d", i);
		hmap_entry *e = hmap_get(&m, key, (size_t)n);
		if (i % 2 == 0)
			wrong += e != NULL;
		else if (e == NULL)
			missing++;
		else
			wrong += e->a != i || e->klen != (uint32_t)n || memcmp(e->key, key, (size_t)n) != 0;
	}
	EQ_INT(missing, 0);
	EQ_INT(wrong, 0);
	/* keys with NUL bytes are bytes */
	hmap_entry *e = hmap_put(&m, "x\0y", 3, &created);
	CHECK(e != NULL && created);
	CHECK(hmap_get(&m, "x\0z", 3) == NULL);
	CHECK(hmap_get(&m, "x", 1) == NULL);
	hmap_free(&m);
	EQ_INT(m.count, 0);
	CHECK(hmap_get(&m, "k1", 2) == NULL);
	hmap_free(&m); /* idempotent */
}

static durox *open_memory(void)
{
	durox *dx = NULL;
	char err[256];
	if (durox_open("sqlite::memory:", NULL, &dx, err, sizeof err) != DUROX_OK)
		fprintf(stderr, "open: %s\n", err);
	return dx;
}

TEST(metrics_empty_store)
{
	durox *dx = open_memory();
	CHECK(dx != NULL);
	if (dx == NULL)
		return;
	durox_runtime_metrics rt;
	EQ_INT(durox_get_runtime_metrics(dx, NULL, &rt), DUROX_OK);
	EQ_INT(rt.total_instances_started, 0);
	EQ_INT(rt.total_activities_executed, 0);
	CHECK(isnan(rt.average_orchestration_duration_ms));
	CHECK(rt.orchestrator_dispatcher_healthy && rt.worker_dispatcher_healthy && rt.timer_dispatcher_healthy);
	EQ_INT(rt.store_created_at, DUROX_NO_TIME); /* no migrations, no instances */
	EQ_INT(rt.uptime_seconds, 0);
	EQ_INT(rt.last_activity_at, DUROX_NO_TIME);

	durox_queue_metrics q;
	durox_metrics_request req;
	durox_metrics_request_init(&req);
	req.now = 1000000;
	EQ_INT(durox_get_queue_metrics(dx, &req, &q), DUROX_OK);
	EQ_INT(q.orchestrator_queue_size + q.worker_queue_size + q.timer_queue_size, 0);
	EQ_INT(q.orchestrator_queue_oldest_item_age_ms, -1);
	EQ_INT(q.worker_queue_oldest_item_age_ms, -1);
	EQ_INT(q.timer_queue_oldest_item_age_ms, -1);
	EQ_INT(q.orchestrator.max_attempt_count, -1);
	CHECK(isnan(q.average_processing_time_ms));
	EQ_INT(q.next_timer_at, DUROX_NO_TIME);
	EQ_INT(q.max_attempts, 10);
	EQ_INT(q.near_poison_attempts, 5);

	durox_provider_diagnostics d;
	EQ_INT(durox_get_provider_diagnostics(dx, NULL, &d), DUROX_OK);
	EQ_STR(d.provider_type, "sqlite");
	CHECK(d.connection_healthy);
	EQ_INT(d.storage_size_bytes, -1); /* in memory */
	CHECK(d.read_calls > 0 && !isnan(d.average_read_latency_ms));

	durox_orchestration_metrics *om;
	EQ_INT(durox_get_orchestration_metrics(dx, NULL, &om), DUROX_OK);
	EQ_INT(om->count, 0);
	durox_orchestration_metrics_free(om);

	durox_instance_query iq = {0};
	durox_query_response *qr;
	EQ_INT(durox_query_instances(dx, &iq, &qr), DUROX_OK);
	EQ_INT(qr->count, 1); /* no group_by: one group of every match, even none */
	EQ_INT(qr->groups[0].count, 0);
	CHECK(isnan(qr->groups[0].success_rate) && isnan(qr->groups[0].p50_duration_ms));
	durox_query_response_free(qr);
	iq.group_by[0] = DUROX_GROUP_STATUS;
	iq.n_group_by = 1;
	EQ_INT(durox_query_instances(dx, &iq, &qr), DUROX_OK);
	EQ_INT(qr->count, 0);
	EQ_INT(qr->total_groups, 0);
	durox_query_response_free(qr);

	durox_time_series_request tr = {3600000, 7200000, 0, 0, NULL};
	durox_time_series *ts;
	EQ_INT(durox_get_time_series_metrics(dx, &tr, &ts), DUROX_OK);
	EQ_INT(ts->bucket_ms, 60000); /* the smallest round unit giving at most 60 buckets */
	EQ_INT(ts->count, 60);
	EQ_INT(ts->from, 3600000);
	EQ_INT(ts->buckets[59].start, 3600000 + 59 * 60000);
	CHECK(isnan(ts->totals.average_duration_ms));
	durox_time_series_free(ts);
	tr.from = 3600000 + 30000; /* aligned down to the bucket */
	tr.bucket_ms = 60000;
	EQ_INT(durox_get_time_series_metrics(dx, &tr, &ts), DUROX_OK);
	EQ_INT(ts->from, 3600000);
	EQ_INT(ts->count, 60);
	durox_time_series_free(ts);

	durox_dependency_graph *g = (durox_dependency_graph *)1;
	EQ_INT(durox_get_instance_dependencies(dx, "nope", 0, &g), DUROX_ENOTFOUND);
	CHECK(g == NULL);
	EQ_STR(durox_errmsg(dx), "instance 'nope' not found");

	durox_stuck_list *sl;
	EQ_INT(durox_find_stuck_instances(dx, NULL, &sl), DUROX_OK);
	EQ_INT(sl->count, 0);
	durox_stuck_list_free(sl);
	durox_close(dx);
	/* frees accept NULL */
	durox_orchestration_metrics_free(NULL);
	durox_query_response_free(NULL);
	durox_time_series_free(NULL);
	durox_dependency_graph_free(NULL);
	durox_stuck_list_free(NULL);
}

TEST(metrics_disabled_and_config)
{
	durox *dx = open_memory();
	CHECK(dx != NULL);
	if (dx == NULL)
		return;
	durox_config c;
	durox_get_config(dx, &c);
	EQ_INT(c.stall_threshold_ms, 60000);
	EQ_INT(c.timer_overdue_ms, 60000);
	EQ_INT(c.event_wait_threshold_ms, 86400000);
	EQ_INT(c.max_attempts, 10);
	EQ_INT(c.near_poison_attempts, 5);
	c.near_poison_attempts = 11;
	EQ_INT(durox_set_config(dx, &c), DUROX_EINVALID);
	EQ_STR(durox_errmsg(dx), "near_poison_attempts must be between 1 and max_attempts (10)");
	c.near_poison_attempts = 5;
	c.max_attempts = 0;
	EQ_INT(durox_set_config(dx, &c), DUROX_EINVALID);
	EQ_STR(durox_errmsg(dx), "max_attempts must be at least 1");
	durox_get_config(dx, &c);
	c.enable_metrics = 0;
	EQ_INT(durox_set_config(dx, &c), DUROX_OK);
	const char *msg = "metrics are disabled (enable_metrics = false in the ManagementConfig)";
	durox_runtime_metrics rt;
	durox_queue_metrics q;
	durox_provider_diagnostics d;
	durox_orchestration_metrics *om = (durox_orchestration_metrics *)1;
	durox_time_series *ts = (durox_time_series *)1;
	EQ_INT(durox_get_runtime_metrics(dx, NULL, &rt), DUROX_EDENIED);
	EQ_STR(durox_errmsg(dx), msg);
	EQ_INT(durox_get_queue_metrics(dx, NULL, &q), DUROX_EDENIED);
	EQ_INT(durox_get_provider_diagnostics(dx, NULL, &d), DUROX_EDENIED);
	EQ_INT(durox_get_orchestration_metrics(dx, NULL, &om), DUROX_EDENIED);
	CHECK(om == NULL);
	EQ_INT(durox_get_time_series_metrics(dx, NULL, &ts), DUROX_EDENIED);
	CHECK(ts == NULL);
	EQ_STR(durox_errmsg(dx), msg);
	/* analytics are not metrics */
	durox_instance_query iq = {0};
	durox_query_response *qr;
	EQ_INT(durox_query_instances(dx, &iq, &qr), DUROX_OK);
	durox_query_response_free(qr);
	/* malformed queries */
	iq.n_group_by = 2;
	iq.group_by[0] = iq.group_by[1] = DUROX_GROUP_VERSION;
	EQ_INT(durox_query_instances(dx, &iq, &qr), DUROX_EINVALID);
	EQ_STR(durox_errmsg(dx), "group_by field Version given twice");
	iq.group_by[1] = 42;
	EQ_INT(durox_query_instances(dx, &iq, &qr), DUROX_EINVALID);
	iq.n_group_by = 0;
	iq.aggregates = 1u << 9;
	EQ_INT(durox_query_instances(dx, &iq, &qr), DUROX_EINVALID);
	EQ_STR(durox_errmsg(dx), "unknown aggregate bits 0x200");
	durox_close(dx);
}

TEST(metrics_names)
{
	for (int g = 0; g < DUROX_GROUP__COUNT; g++)
		EQ_INT(durox_group_field_parse(durox_group_field_name(g)), g);
	EQ_INT(durox_group_field_parse("createdday"), DUROX_GROUP_CREATED_DATE);
	EQ_INT(durox_group_field_parse("Colour"), -1);
	CHECK(durox_group_field_name(DUROX_GROUP__COUNT) == NULL);
	for (unsigned bit = 1; bit & DUROX_AGG_ALL; bit <<= 1)
		EQ_INT(durox_aggregate_parse(durox_aggregate_name(bit)), (int)bit);
	EQ_INT(durox_aggregate_parse("p95duration"), DUROX_AGG_P95_DURATION);
	CHECK(durox_aggregate_name(3) == NULL);
	for (unsigned bit = 1; bit & DUROX_SERIES_ALL; bit <<= 1)
		EQ_INT(durox_series_parse(durox_series_name(bit)), (int)bit);
	EQ_INT(durox_series_parse("nope"), -1);
	EQ_STR(durox_stuck_reason_name(DUROX_STUCK_ORPHAN_MESSAGES), "orphan_messages");
	CHECK(durox_stuck_reason_name(DUROX_STUCK__COUNT) == NULL);
}
