/*
 * jobs_run.c - the batch runner of a recorded job: one BEGIN IMMEDIATE transaction per batch
 * reads the job row (stop requests, ownership), takes the next pending targets, acts on each
 * through op_apply and marks each in the journal, then commits, early once it has run for
 * the provider's max_tx_ms (store/ops.h). A kill at any point loses either a whole batch or nothing, so a
 * resume acts on every target exactly once. Progress callbacks run between transactions
 * only; a rate limit sleeps between batches. Used by jobs.c and jobs_journal.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/access.h"
#include "engine/jobs_internal.h"
#include "util/codec.h"
#include "util/timeutil.h"

/* Calls the progress callback (always when force, else at most every 250 ms). Returns its
 * answer (0 continue, 1 stop, <0 abort; the message is set for an abort). */
int job_progress(runctx *rc, int force)
{
	if (rc->o == NULL || rc->o->progress == NULL)
		return 0;
	int64_t now = time_mono_ms();
	if (!force && now - rc->last_report < PROGRESS_EVERY_MS)
		return 0;
	rc->last_report = now;
	rc->pr.elapsed_ms = now - rc->t0;
	rc->pr.kind = op_kind_name(rc->kind);
	int r = rc->o->progress(rc->o->progress_ud, &rc->pr);
	if (r < 0 && rc->dx->err[0] == '\0')
		dx_fail(rc->dx, r, "the progress callback stopped the operation");
	return r < 0 ? r : r > 0 ? 1 : 0;
}

typedef struct batch_item {
	uint64_t seq;
	const char *id;
} batch_item;

typedef struct batch {
	arena mem;
	batch_item *v;
	size_t n, cap;
	int rc;
} batch;

static int batch_cb(void *ud, const store_target *t)
{
	batch *b = ud;
	if (b->n == b->cap) {
		b->rc = DUROX_ENOMEM;
		return -1;
	}
	b->v[b->n].seq = t->seq;
	b->v[b->n].id = arena_strdup(&b->mem, t->instance_id);
	if (b->v[b->n].id == NULL) {
		b->rc = DUROX_ENOMEM;
		return -1;
	}
	b->n++;
	return 0;
}

/* BEGIN IMMEDIATE, retried with backoff while the store stays busy (the runtime's write
 * bursts are short; each attempt already waits up to the busy timeout). */
int job_begin_retry(runctx *rc)
{
	durox *dx = rc->dx;
	int64_t t0 = time_mono_ms();
	for (int attempt = 0;; attempt++) {
		int r = dx->st->ops->begin(dx->st);
		if (r == DUROX_OK)
			return r;
		if (r != DUROX_EBUSY)
			return dx_store_fail(dx, r);
		if (attempt >= BUSY_RETRIES) {
			/* the message says how long it really waited, not one attempt's timeout */
			double s = (double)(time_mono_ms() - t0) / 1000.0;
			dx->st->err[0] = '\0';
			return dx_fail(
			        dx, DUROX_EBUSY,
			        "store is busy: its write lock stayed taken for %.1f s (%d attempts, each waiting "
			        "up to busy_timeout_ms); retry later",
			        s, attempt + 1);
		}
		dx->st->err[0] = '\0';
		op_sleep_ms(100LL << attempt);
		int p = job_progress(rc, 1);
		if (p < 0)
			return p;
	}
}

/* Records the end of a job (completed or stopped: inside the transaction that says so, so
 * that the job cannot end unrecorded; interrupted: best effort, in its own). */
static int audit_job_end(durox *dx, const store_job *j, const char *state, const char *error, int in_txn)
{
	if (!audit_active(dx))
		return DUROX_OK;
	char tgt[64];
	snprintf(tgt, sizeof tgt, "job %lld", (long long)j->job_id);
	buf params, result;
	buf_init(&params);
	buf_init(&result);
	buf_adds(&params, "{\"kind\":");
	buf_add_json_string(&params, j->kind, strlen(j->kind));
	buf_adds(&params, ",\"targets\":");
	buf_add_json_string(&params, j->description ? j->description : "",
	                    strlen(j->description ? j->description : ""));
	buf_addc(&params, '}');
	uint64_t finished = j->done + j->failed + j->no_subscription;
	buf_addf(&result,
	         "{\"job_id\":%lld,\"state\":\"%s\",\"total\":%llu,\"done\":%llu,\"failed\":%llu,"
	         "\"no_subscription\":%llu,\"pending\":%llu",
	         (long long)j->job_id, state, (unsigned long long)j->total, (unsigned long long)j->done,
	         (unsigned long long)j->failed, (unsigned long long)j->no_subscription,
	         (unsigned long long)(j->total > finished ? j->total - finished : 0));
	if (error != NULL) {
		buf_adds(&result, ",\"error\":");
		buf_add_json_string(&result, error, strlen(error) < 1024 ? strlen(error) : 1024);
	}
	buf_addc(&result, '}');
	audit_entry e = {"job_end",
	                 tgt,
	                 "allow",
	                 NULL,
	                 buf_oom(&params) ? NULL : params.data,
	                 buf_oom(&result) ? NULL : result.data};
	int rc = audit_append(dx, &e, in_txn);
	buf_free(&params);
	buf_free(&result);
	return rc;
}

void job_mark(runctx *rc, int64_t job_id, int from, int to, const char *error)
{
	durox *dx = rc->dx;
	char saved[sizeof dx->err];
	snprintf(saved, sizeof saved, "%s", dx->err);
	if (dx->st->ops->begin(dx->st) == DUROX_OK) {
		job_copy jc = {{0}, {0}, 0, DUROX_OK};
		arena_init(&jc.mem);
		int ok = job_load(dx, job_id, &jc) == DUROX_OK && jc.found && job_is_self(jc.j.owner) &&
		         job_is(&jc.j, from) && job_move(dx, &jc.j, to) == DUROX_OK;
		if (ok) {
			if (to == JOB_ABANDONED)
				jc.j.finished_at = time_now_ms();
			jc.j.stop_requested = 0;
			jc.j.last_error = error;
			jc.j.heartbeat_at = time_now_ms();
			ok = dx->st->ops->job_update(dx->st, &jc.j) == DUROX_OK;
		}
		if (ok)
			ok = audit_job_end(dx, &jc.j, job_state_name(to), error, 1) == DUROX_OK;
		if (ok)
			ok = dx->st->ops->commit(dx->st) == DUROX_OK;
		else
			dx->st->ops->rollback(dx->st);
		arena_release(&jc.mem);
	}
	snprintf(dx->err, sizeof dx->err, "%s", saved);
	dx->st->err[0] = '\0';
}

/* Processes the pending targets of job_id until none is left, a stop request, or an error.
 * Returns DUROX_OK (the job completed or was stopped) or the error (job interrupted). */
static int run_job(runctx *rc, int64_t job_id, const op_params *p, uint32_t batch_size, double rate)
{
	durox *dx = rc->dx;
	uint64_t after = 0, processed = 0;
	int64_t run_t0 = time_mono_ms();
	if (batch_size == 0)
		batch_size = DEFAULT_BATCH;
	if (rate > 0 && (double)batch_size > ceil(rate))
		batch_size = (uint32_t)ceil(rate); /* about one batch per second at most */
	op_result res;
	op_result_init(&res);
	buf rj;
	buf_init(&rj);
	batch b = {{0}, NULL, 0, batch_size, DUROX_OK};
	arena_init(&b.mem);
	job_copy jc = {{0}, {0}, 0, DUROX_OK};
	arena_init(&jc.mem);
	int r = DUROX_OK;
	int end = -1; /* JOB_COMPLETED, JOB_STOPPED, JOB_RUNNING (taken over by another process) or -1 */
	rc->pr.job_id = job_id;
	rc->pr.phase = "running";
	for (;;) {
		/* rate limit: processed / elapsed <= rate */
		int s = 0;
		if (rate > 0) {
			int64_t due = run_t0 + (int64_t)((double)processed * 1000.0 / rate);
			int64_t now;
			while (s == 0 && (now = time_mono_ms()) < due) {
				op_sleep_ms(due - now < PROGRESS_EVERY_MS ? due - now : PROGRESS_EVERY_MS);
				s = job_progress(rc, 0);
			}
		}
		if (s > 0) {
			job_mark(rc, job_id, JOB_RUNNING, JOB_STOPPED, NULL);
			end = JOB_STOPPED;
			break;
		}
		if (s < 0) {
			r = s;
			break;
		}
		if ((r = job_begin_retry(rc)) != DUROX_OK)
			break;
		if ((r = job_load(dx, job_id, &jc)) != DUROX_OK || !jc.found) {
			dx->st->ops->rollback(dx->st);
			if (r == DUROX_OK)
				r = dx_fail(dx, DUROX_ENOTFOUND, "job %lld vanished from the journal",
				            (long long)job_id);
			break;
		}
		if (!job_is_self(jc.j.owner) || !job_is(&jc.j, JOB_RUNNING)) {
			dx->st->ops->rollback(dx->st);
			r = dx_fail(dx, DUROX_ECONFLICT, "job %lld was taken over by %s (state %s)", (long long)job_id,
			            jc.j.owner ? jc.j.owner : "another process", jc.j.state);
			end = JOB_RUNNING;
			break;
		}
		int64_t now = time_now_ms();
		if (jc.j.stop_requested) {
			r = job_move(dx, &jc.j, JOB_STOPPED);
			jc.j.stop_requested = 0;
			jc.j.heartbeat_at = now;
			r = r == DUROX_OK ? dx->st->ops->job_update(dx->st, &jc.j) : r;
			if (r == DUROX_OK &&
			    (r = audit_job_end(dx, &jc.j, job_state_name(JOB_STOPPED), NULL, 1)) != DUROX_OK) {
				dx->st->ops->rollback(dx->st);
				break;
			}
			r = r == DUROX_OK ? dx->st->ops->commit(dx->st) : r;
			if (r != DUROX_OK) {
				dx->st->ops->rollback(dx->st);
				r = dx_store_fail(dx, r);
			} else {
				end = JOB_STOPPED;
			}
			break;
		}
		arena_release(&b.mem);
		b.v = arena_calloc(&b.mem, batch_size, sizeof *b.v);
		b.n = 0;
		b.rc = DUROX_OK;
		if (b.v == NULL) {
			dx->st->ops->rollback(dx->st);
			r = dx_fail(dx, DUROX_ENOMEM, "out of memory");
			break;
		}
		r = dx->st->ops->job_targets(dx->st, job_id, after, batch_size, 1, batch_cb, &b);
		if (r != DUROX_OK || b.rc != DUROX_OK) {
			dx->st->ops->rollback(dx->st);
			r = b.rc != DUROX_OK ? dx_fail(dx, b.rc, "out of memory") : dx_store_fail(dx, r);
			break;
		}
		if (b.n == 0) {
			r = job_move(dx, &jc.j, JOB_COMPLETED);
			jc.j.finished_at = now;
			jc.j.heartbeat_at = now;
			r = r == DUROX_OK ? dx->st->ops->job_update(dx->st, &jc.j) : r;
			if (r == DUROX_OK &&
			    (r = audit_job_end(dx, &jc.j, job_state_name(JOB_COMPLETED), NULL, 1)) != DUROX_OK) {
				dx->st->ops->rollback(dx->st);
				break;
			}
			r = r == DUROX_OK ? dx->st->ops->commit(dx->st) : r;
			if (r != DUROX_OK) {
				dx->st->ops->rollback(dx->st);
				r = dx_store_fail(dx, r);
			} else {
				end = JOB_COMPLETED;
			}
			break;
		}
		/* the batch: act on each target and journal it, all in this transaction, which is
		 * committed early once it has run for the provider's max_tx_ms (the rest stays
		 * pending for the next batch) */
		size_t n_done = 0;
		int64_t tx_start = time_mono_ms();
		for (size_t k = 0; k < b.n && r == DUROX_OK; k++) {
			if (k > 0 && time_mono_ms() - tx_start >= dx->st->ops->max_tx_ms)
				break;
			r = op_apply(dx, p, b.v[k].id, now, 1, &res);
			if (r != DUROX_OK)
				break;
			store_target t = {b.v[k].seq,
			                  b.v[k].id,
			                  durox_outcome_name(res.outcome),
			                  res.outcome == DUROX_OUTCOME_FAILED ? durox_code_name(res.code) : NULL,
			                  res.message.len > 0 ? res.message.data : NULL,
			                  job_result_json(p, &res, &rj)};
			if (buf_oom(&res.message) || buf_oom(&rj)) {
				r = dx_fail(dx, DUROX_ENOMEM, "out of memory");
				break;
			}
			r = dx->st->ops->job_set_target(dx->st, job_id, b.v[k].seq, &t, now);
			if (r != DUROX_OK) {
				r = dx_store_fail(dx, r);
				break;
			}
			jc.j.done += res.outcome == DUROX_OUTCOME_DONE;
			jc.j.failed += res.outcome == DUROX_OUTCOME_FAILED;
			jc.j.no_subscription += res.outcome == DUROX_OUTCOME_NO_SUBSCRIPTION;
			n_done++;
		}
		if (r == DUROX_OK) {
			jc.j.heartbeat_at = time_now_ms();
			r = dx->st->ops->job_update(dx->st, &jc.j);
			r = r == DUROX_OK ? dx->st->ops->commit(dx->st) : r;
			if (r != DUROX_OK)
				r = dx_store_fail(dx, r);
		}
		if (r != DUROX_OK) {
			dx->st->ops->rollback(dx->st);
			break;
		}
		after = b.v[n_done - 1].seq;
		processed += n_done;
		rc->pr.total = jc.j.total;
		rc->pr.done = jc.j.done;
		rc->pr.failed = jc.j.failed;
		rc->pr.no_subscription = jc.j.no_subscription;
		s = job_progress(rc, 1);
		if (s > 0) {
			job_mark(rc, job_id, JOB_RUNNING, JOB_STOPPED, NULL);
			end = JOB_STOPPED;
			break;
		}
		if (s < 0) {
			r = s;
			break;
		}
	}
	if (end < 0) {
		char msg[sizeof dx->err];
		snprintf(msg, sizeof msg, "%s", dx->err);
		job_mark(rc, job_id, JOB_RUNNING, JOB_INTERRUPTED, msg);
		dx_fail(dx, r, "job %lld interrupted: %s; resume it with resume_job(%lld)", (long long)job_id, msg,
		        (long long)job_id);
	}
	arena_release(&jc.mem);
	arena_release(&b.mem);
	buf_free(&rj);
	op_result_free(&res);
	return end == JOB_COMPLETED || end == JOB_STOPPED ? DUROX_OK : r;
}

/* Runs job_id to its end and builds the response from the journal. */
int job_run_and_report(runctx *rc, int64_t job_id, const op_params *p, uint32_t batch_size, double rate,
                       durox_bulk_response **out)
{
	durox *dx = rc->dx;
	int r = run_job(rc, job_id, p, batch_size, rate);
	if (r != DUROX_OK)
		return r;
	job_copy jc = {{0}, {0}, 0, DUROX_OK};
	arena_init(&jc.mem);
	r = job_load(dx, job_id, &jc);
	if (r == DUROX_OK && !jc.found)
		r = dx_fail(dx, DUROX_ENOTFOUND, "job %lld vanished from the journal", (long long)job_id);
	if (r == DUROX_OK)
		r = job_build_report(dx, &jc.j, time_mono_ms() - rc->t0, out);
	arena_release(&jc.mem);
	return r;
}
