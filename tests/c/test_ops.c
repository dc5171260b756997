/*
 * test_ops.c - unit tests of the write API (durox.h) on an in-memory store, where no
 * runtime runs: starts queue work items, the refusals and their messages, bulk jobs and
 * their journal (batches, report, resume, stop), waits and their timeouts. What the runtime
 * does with our writes is tested by the busted specs against the live runtime.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durox.h"
#include "engine/jobs_internal.h"
#include "t.h"

static durox *memory_store(int readonly)
{
	durox *dx = NULL;
	char err[256];
	durox_open_options o = {.readonly = readonly};
	EQ_INT(durox_open("sqlite::memory:", &o, &dx, err, sizeof err), DUROX_OK);
	return dx;
}

TEST(ops_single_writes)
{
	durox *dx = memory_store(0);
	EQ_STR(durox_code_name(DUROX_ECONFLICT), "CONFLICT");
	EQ_STR(durox_code_name(DUROX_ETIMEOUT), "TIMEOUT");
	EQ_INT(durox_start_orchestration(dx, "a-1", "Echo", "{\"x\":1}", NULL), DUROX_OK);
	EQ_INT(durox_start_orchestration(dx, "a-1", "Echo", "1", NULL), DUROX_ECONFLICT);
	EQ_STR(durox_errmsg(dx), "instance 'a-1' already exists (its start is queued)");
	EQ_INT(durox_start_orchestration(dx, "", "Echo", NULL, NULL), DUROX_EINVALID);
	EQ_STR(durox_errmsg(dx), "instance id must not be empty");
	EQ_INT(durox_start_orchestration(dx, "a-2", "", NULL, NULL), DUROX_EINVALID);
	EQ_STR(durox_errmsg(dx), "orchestration name must not be empty");
	EQ_INT(durox_start_orchestration(dx, "a-2", "Echo", "\xed\xa0\x80", NULL), DUROX_EINVALID); /* a surrogate */
	EQ_STR(durox_errmsg(dx), "input is not valid UTF-8");
	EQ_INT(durox_raise_event(dx, "nope", "Approve", "1"), DUROX_ENOTFOUND);
	EQ_STR(durox_errmsg(dx), "instance 'nope' not found");
	EQ_INT(durox_enqueue_event(dx, "nope", "inbox", NULL), DUROX_ENOTFOUND);
	EQ_INT(durox_raise_event(dx, "a-1", "Approve", "\"ok\""), DUROX_OK);         /* a queued start exists */
	EQ_INT(durox_raise_event(dx, "a-1", "Approve", "\xc0\xaf"), DUROX_EINVALID); /* overlong */
	EQ_INT(durox_cancel_instance(dx, "a-1", NULL), DUROX_OK);
	EQ_INT(durox_cancel_instance(dx, "a-1", "again"), DUROX_ECONFLICT);
	EQ_STR(durox_errmsg(dx), "instance 'a-1' is being cancelled (a cancel is queued)");
	EQ_INT(durox_cancel_instance(dx, "nope", "x"), DUROX_ENOTFOUND);
	EQ_INT(durox_enqueue_event(dx, "a-1", "inbox", "[1]"), DUROX_ECONFLICT); /* cancel queued */
	EQ_INT(durox_start_orchestration(dx, "a-3", "Echo", NULL, "2.0.0"), DUROX_OK);
	EQ_STR(durox_errmsg(dx), ""); /* cleared by a successful call */
	durox_close(dx);

	dx = memory_store(1);
	EQ_INT(durox_start_orchestration(dx, "a-1", "Echo", NULL, NULL), DUROX_EDENIED);
	EQ_INT(durox_cancel_instance(dx, "a-1", NULL), DUROX_EDENIED);
	durox_close(dx);
}

static int stop_after_two(void *ud, const durox_bulk_progress *p)
{
	int *calls = ud;
	(*calls)++;
	return p->phase != NULL && strcmp(p->phase, "running") == 0 && p->done >= 2 ? 1 : 0;
}

TEST(ops_bulk_jobs)
{
	durox *dx = memory_store(0);
	const char *ids[] = {"b-1", "b-2", "b-3", "b-1", "b-4", "nope"};
	for (int i = 0; i < 4; i++) {
		char id[8];
		snprintf(id, sizeof id, "b-%d", i + 1);
		EQ_INT(durox_start_orchestration(dx, id, "WaitApprove", NULL, NULL), DUROX_OK);
	}
	durox_bulk_response *r = NULL;
	durox_bulk_cancel_request req = {0};
	req.opts.instances = ids;
	req.opts.n_instances = 6;
	req.opts.dry_run = 1;
	req.reason = "unit";
	EQ_INT(durox_cancel_instances(dx, &req, &r), DUROX_OK);
	EQ_INT(r->job_id, 0);
	EQ_STR(r->state, "dry_run");
	EQ_INT(r->total_matched, 5); /* duplicates removed */
	EQ_INT(r->done, 4);
	EQ_INT(r->failed, 1);
	EQ_STR(r->items[4].instance_id, "nope");
	EQ_INT(r->items[4].code, DUROX_ENOTFOUND);
	durox_bulk_response_free(r);

	int calls = 0;
	req.opts.dry_run = 0;
	req.opts.batch_size = 1;
	req.opts.progress = stop_after_two;
	req.opts.progress_ud = &calls;
	EQ_INT(durox_cancel_instances(dx, &req, &r), DUROX_OK);
	EQ_STR(r->state, "stopped");
	EQ_INT(r->done, 2);
	EQ_INT(r->pending, 3);
	CHECK(r->job_id > 0);
	int64_t job = r->job_id;
	durox_bulk_response_free(r);

	durox_job_list *l;
	EQ_INT(durox_job_get(dx, job, &l), DUROX_OK);
	EQ_STR(l->items[0].state, "stopped");
	EQ_STR(l->items[0].kind, "cancel");
	EQ_STR(l->items[0].description, "ids (5)");
	EQ_STR(l->items[0].request, "{\"reason\":\"unit\"}");
	EQ_INT(l->items[0].total, 5);
	EQ_INT(l->items[0].pending, 3);
	durox_job_list_free(l);

	EQ_INT(durox_job_resume(dx, job, NULL, &r), DUROX_OK);
	EQ_STR(r->state, "completed");
	EQ_INT(r->done, 4);
	EQ_INT(r->failed, 1);
	EQ_INT(r->pending, 0);
	durox_bulk_response_free(r);
	const char *state;
	EQ_INT(durox_job_stop(dx, job, &state), DUROX_ECONFLICT);
	EQ_INT(durox_job_get(dx, job + 1, &l), DUROX_ENOTFOUND);
	EQ_INT(durox_job_list_jobs(dx, "completed", NULL, 0, &l), DUROX_OK);
	EQ_INT(l->count, 1);
	durox_job_list_free(l);

	/* limits */
	req.opts.progress = NULL;
	req.opts.max_instances = 2;
	EQ_INT(durox_cancel_instances(dx, &req, &r), DUROX_ELIMIT);
	CHECK(r == NULL);
	req.opts.max_instances = 5000;
	EQ_INT(durox_cancel_instances(dx, &req, &r), DUROX_ELIMIT);
	req.opts.max_instances = 0;
	req.opts.filter = durox_filter_new();
	EQ_INT(durox_cancel_instances(dx, &req, &r), DUROX_EINVALID); /* ids and a filter */
	req.opts.instances = NULL;
	EQ_INT(durox_cancel_instances(dx, &req, &r), DUROX_OK); /* no instance rows: nothing matches */
	EQ_INT(r->total_matched, 0);
	EQ_INT(r->job_id, 0);
	durox_bulk_response_free(r);
	durox_filter_free((durox_filter *)req.opts.filter);
	durox_close(dx);
}

TEST(ops_waits)
{
	durox *dx = memory_store(0);
	EQ_INT(durox_start_orchestration(dx, "w-1", "WaitApprove", NULL, NULL), DUROX_OK);
	durox_orchestration_status *st = (durox_orchestration_status *)1;
	EQ_INT(durox_wait_for_orchestration(dx, "w-1", 30, 10, &st), DUROX_ETIMEOUT);
	CHECK(st == NULL);
	CHECK(strstr(durox_errmsg(dx), "instance 'w-1' is still Pending after waiting") != NULL);
	EQ_INT(durox_wait_for_orchestration(dx, "nope", 1000, 10, &st), DUROX_ENOTFOUND);
	const char *ids[] = {"w-1", "nope"};
	durox_bulk_wait_request req = {0};
	req.opts.instances = ids;
	req.opts.n_instances = 2;
	req.timeout_ms = 0;
	durox_bulk_wait_response *w;
	EQ_INT(durox_wait_for_instances(dx, &req, &w), DUROX_OK);
	EQ_INT(w->timed_out, 1);
	EQ_INT(w->satisfied, 0);
	EQ_INT(w->polls, 1);
	EQ_INT(w->unfinished, 1);
	EQ_INT(w->not_found, 1);
	EQ_INT(w->items[0].status, DUROX_STATUS_PENDING); /* its start is queued: no instance row yet */
	EQ_INT(w->items[1].status, DUROX_STATUS_NOT_FOUND);
	durox_bulk_wait_response_free(w);
	req.mode = DUROX_WAIT_FIRST;
	EQ_INT(durox_wait_for_instances(dx, &req, &w), DUROX_EINVALID);
	durox_close(dx);
	EQ_STR(durox_outcome_name(DUROX_OUTCOME_NO_SUBSCRIPTION), "no_subscription");
	CHECK(durox_outcome_name(9) == NULL);
}

TEST(ops_job_states)
{
	/* the transition table of jobs_internal.h, every pair (from -1: a new job) */
	static const char *const allowed[] = {"new>running",         "new>resolving",     "resolving>running",
	                                      "resolving>abandoned", "running>completed", "running>stopped",
	                                      "running>interrupted", "running>running",   "interrupted>running",
	                                      "interrupted>stopped", "stopped>running",   NULL};
	for (int from = -1; from < JOB__COUNT; from++) {
		for (int to = 0; to < JOB__COUNT; to++) {
			char pair[64];
			snprintf(pair, sizeof pair, "%s>%s", from < 0 ? "new" : job_state_name(from),
			         job_state_name(to));
			int want = 0;
			for (int k = 0; allowed[k] != NULL; k++)
				want |= strcmp(allowed[k], pair) == 0;
			if (job_can_move(from, to) != want)
				fprintf(stderr, "move %s\n", pair);
			EQ_INT(job_can_move(from, to), want);
		}
	}
	for (int s = 0; s < JOB__COUNT; s++)
		EQ_INT(job_state_parse(job_state_name(s)), s);
	EQ_INT(job_state_parse("dry_run"), -1);
	CHECK(job_state_name(JOB__COUNT) == NULL);
	/* job_move refuses a move the table does not have, and says so */
	durox *dx = memory_store(0);
	store_job j = {0};
	j.job_id = 7;
	j.state = "completed";
	EQ_INT(job_move(dx, &j, JOB_RUNNING), DUROX_ECONFLICT);
	EQ_STR(durox_errmsg(dx), "job 7 cannot go from completed to running");
	EQ_STR(j.state, "completed");
	j.state = "interrupted";
	EQ_INT(job_move(dx, &j, JOB_RUNNING), DUROX_OK);
	EQ_STR(j.state, "running");
	j.state = "weird";
	EQ_INT(job_move(dx, &j, JOB_RUNNING), DUROX_ECORRUPT);
	durox_close(dx);
}

TEST(ops_request_defaults)
{
	/* what a new handle has is DUROX_CONFIG_INIT, field by field */
	durox *dx = memory_store(0);
	durox_config got, want = DUROX_CONFIG_INIT;
	durox_get_config(dx, &got);
	EQ_INT(memcmp(&got, &want, sizeof got), 0);
	EQ_INT(got.max_payload_bytes, 16777216);
	EQ_INT(got.max_id_bytes, 1024);
	EQ_INT(got.callback_budget_ms, 0);
	/* a wait with the INIT defaults waits (no timeout) rather than checking once: a Completed
	 * target ends it at once either way, an unknown one too */
	durox_bulk_wait_request w = DUROX_BULK_WAIT_REQUEST_INIT;
	CHECK(w.timeout_ms < 0);
	const char *ids[] = {"nope"};
	w.opts.instances = ids;
	w.opts.n_instances = 1;
	durox_bulk_wait_response *r;
	EQ_INT(durox_wait_for_instances(dx, &w, &r), DUROX_OK);
	EQ_INT(r->satisfied, 1);
	EQ_INT(r->timed_out, 0);
	durox_bulk_wait_response_free(r);
	durox_time_series_request t = DUROX_TIME_SERIES_REQUEST_INIT;
	EQ_INT(t.from == DUROX_NO_TIME && t.to == DUROX_NO_TIME, 1);
	durox_time_series *ts;
	EQ_INT(durox_get_time_series_metrics(dx, &t, &ts), DUROX_OK);
	CHECK(ts->to - ts->from == 24LL * 3600000 || ts->count > 0);
	durox_time_series_free(ts);
	durox_prune_request p = DUROX_PRUNE_REQUEST_INIT;
	EQ_INT(p.completed_before == DUROX_NO_TIME, 1);
	EQ_STR(durox_version(), DUROX_VERSION);
	EQ_INT(durox_version_number(), DUROX_VERSION_NUMBER);
	durox_close(dx);
}
