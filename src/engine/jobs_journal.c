/*
 * jobs_journal.c - the job journal as users see it: list_jobs, get_job, the report of a job,
 * resume_job (takes over an interrupted or stopped job and runs its pending targets) and
 * stop_job (asks the owner to stop at its next batch, or stops an orphan at once). Relies on
 * the provider's journal entries (store/ops.h); used by the Lua binding.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "engine/jobs_internal.h"
#include "util/codec.h"
#include "util/timeutil.h"

typedef struct job_list_result {
	durox_job_list pub;
	arena mem;
	size_t cap;
	const char *want_state; /* filter on the shown state */
	uint32_t limit;
	int64_t now;
	int rc;
} job_list_result;

void durox_job_list_free(durox_job_list *l)
{
	if (l == NULL)
		return;
	job_list_result *r = (job_list_result *)l;
	arena_release(&r->mem);
	free(r);
}

static int list_cb(void *ud, const store_job *j)
{
	job_list_result *r = ud;
	int active;
	const char *state = job_shown_state(j, r->now, &active);
	if (r->want_state != NULL && strcmp(state, r->want_state) != 0)
		return 0;
	if (r->limit > 0 && r->pub.count >= r->limit)
		return 1;
	if (r->pub.count == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		durox_job *v = arena_calloc(&r->mem, cap, sizeof *v);
		if (v == NULL)
			goto oom;
		if (r->pub.count)
			memcpy(v, r->pub.items, r->pub.count * sizeof *v);
		r->pub.items = v;
		r->cap = cap;
	}
	durox_job *o = &r->pub.items[r->pub.count];
	memset(o, 0, sizeof *o);
	o->job_id = j->job_id;
	o->total = j->total;
	o->done = j->done;
	o->failed = j->failed;
	o->no_subscription = j->no_subscription;
	uint64_t finished = j->done + j->failed + j->no_subscription;
	o->pending = j->total > finished ? j->total - finished : 0;
	o->rate = j->rate;
	o->batch_size = j->batch_size;
	o->active = active;
	o->stop_requested = j->stop_requested;
	o->created_at = j->created_at;
	o->started_at = j->started_at;
	o->finished_at = j->finished_at;
	o->heartbeat_at = j->heartbeat_at;
#define DUP(dst, src)                                                                                                  \
	if ((src) != NULL && ((dst) = arena_strdup(&r->mem, (src))) == NULL)                                           \
		goto oom;
	DUP(o->kind, j->kind)
	DUP(o->state, state)
	DUP(o->description, j->description)
	DUP(o->request, j->request)
	DUP(o->owner, j->owner)
	DUP(o->last_error, j->last_error)
#undef DUP
	r->pub.count++;
	return 0;
oom:
	r->rc = DUROX_ENOMEM;
	return -1;
}

static int journal_ready(durox *dx, int *exists)
{
	*exists = 0;
	if (dx->st->ops == NULL)
		return DUROX_OK;
	int rc = dx->st->ops->journal_exists(dx->st, exists);
	return rc == DUROX_OK ? rc : dx_store_fail(dx, rc);
}

static int list_jobs(durox *dx, int64_t job_id, const char *state, const char *kind, uint32_t limit,
                     durox_job_list **out)
{
	*out = NULL;
	job_list_result *r = calloc(1, sizeof *r);
	if (r == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena_init(&r->mem);
	r->now = time_now_ms();
	r->limit = limit;
	r->want_state = state;
	int exists;
	int rc = journal_ready(dx, &exists);
	if (rc == DUROX_OK && exists) {
		/* the shown state can differ from the stored one: filter on it here */
		rc = dx->st->ops->job_list(dx->st, job_id, NULL, kind, 0, list_cb, r);
		if (rc != DUROX_OK)
			rc = r->rc != DUROX_OK ? dx_fail(dx, r->rc, "out of memory") : dx_store_fail(dx, rc);
	}
	if (rc != DUROX_OK) {
		durox_job_list_free(&r->pub);
		return rc;
	}
	*out = &r->pub;
	return DUROX_OK;
}

int durox_job_list_jobs(durox *dx, const char *state, const char *kind, uint32_t limit, durox_job_list **out)
{
	*out = NULL;
	dx_clear(dx);
	int rc = access_global(dx, "list_jobs", DUROX_HOOK_MANAGE_JOBS);
	if (rc != DUROX_OK)
		return rc;
	return list_jobs(dx, 0, state, kind, limit ? limit : 100, out);
}

int durox_job_get(durox *dx, int64_t job_id, durox_job_list **out)
{
	*out = NULL;
	dx_clear(dx);
	int rc = access_global(dx, "get_job", DUROX_HOOK_MANAGE_JOBS);
	if (rc != DUROX_OK)
		return rc;
	rc = job_id > 0 ? list_jobs(dx, job_id, NULL, NULL, 1, out)
	                : dx_fail(dx, DUROX_EINVALID, "job id must be a positive integer");
	if (rc == DUROX_OK && (*out)->count == 0) {
		durox_job_list_free(*out);
		*out = NULL;
		rc = dx_fail(dx, DUROX_ENOTFOUND, "job %lld not found", (long long)job_id);
	}
	return rc;
}

int durox_job_report(durox *dx, int64_t job_id, durox_bulk_response **out)
{
	*out = NULL;
	dx_clear(dx);
	int exists;
	int rc = access_global(dx, "job_report", DUROX_HOOK_MANAGE_JOBS);
	if (rc == DUROX_OK)
		rc = journal_ready(dx, &exists);
	if (rc != DUROX_OK)
		return rc;
	if (!exists)
		return dx_fail(dx, DUROX_ENOTFOUND, "job %lld not found (the store has no job journal)",
		               (long long)job_id);
	job_copy jc = {{0}, {0}, 0, DUROX_OK};
	arena_init(&jc.mem);
	rc = job_load(dx, job_id, &jc);
	if (rc == DUROX_OK && !jc.found)
		rc = dx_fail(dx, DUROX_ENOTFOUND, "job %lld not found", (long long)job_id);
	if (rc == DUROX_OK)
		rc = job_build_report(dx, &jc.j, 0, out);
	arena_release(&jc.mem);
	return rc;
}

int durox_job_resume(durox *dx, int64_t job_id, const durox_bulk_options *opts, durox_bulk_response **out)
{
	static const durox_bulk_options none;
	*out = NULL;
	dx_clear(dx);
	if (opts == NULL)
		opts = &none;
	int rc = op_check_writable(dx);
	int exists = 0;
	if (rc == DUROX_OK)
		rc = access_global(dx, "resume_job", DUROX_HOOK_MANAGE_JOBS);
	if (rc == DUROX_OK)
		rc = journal_ready(dx, &exists);
	if (rc == DUROX_OK && !exists)
		rc = dx_fail(dx, DUROX_ENOTFOUND, "job %lld not found (the store has no job journal)",
		             (long long)job_id);
	if (rc == DUROX_OK && (!(opts->rate >= 0) || isinf(opts->rate) || opts->batch_size > 100000))
		rc = dx_fail(dx, DUROX_EINVALID, "rate or batch_size out of range");
	if (rc != DUROX_OK)
		return rc;
	runctx run = {dx, 0, opts, time_mono_ms(), 0, {0}};
	if ((rc = job_begin_retry(&run)) != DUROX_OK)
		return rc;
	job_copy jc = {{0}, {0}, 0, DUROX_OK};
	arena_init(&jc.mem);
	rc = job_load(dx, job_id, &jc);
	if (rc == DUROX_OK && !jc.found)
		rc = dx_fail(dx, DUROX_ENOTFOUND, "job %lld not found", (long long)job_id);
	int64_t now = time_now_ms();
	int finished = 0, commit = 0;
	op_params p;
	memset(&p, 0, sizeof p);
	arena pmem;
	arena_init(&pmem);
	if (rc == DUROX_OK) {
		const store_job *j = &jc.j;
		int alive = job_owner_alive(j->owner, j->heartbeat_at, now) && !job_is_self(j->owner);
		if (job_is(j, JOB_COMPLETED)) {
			finished = 1;
		} else if (job_is(j, JOB_ABANDONED)) {
			rc = dx_fail(dx, DUROX_ECONFLICT,
			             "job %lld was interrupted while its targets were being recorded; nothing was "
			             "done; start "
			             "the operation again",
			             (long long)job_id);
		} else if (job_is(j, JOB_RESOLVING)) {
			if (alive) {
				rc = dx_fail(dx, DUROX_ECONFLICT,
				             "job %lld is still recording its targets in process %s", (long long)job_id,
				             j->owner);
			} else {
				jc.j.finished_at = now;
				commit = job_move(dx, &jc.j, JOB_ABANDONED) == DUROX_OK &&
				         dx->st->ops->job_update(dx->st, &jc.j) == DUROX_OK;
				rc = dx_fail(dx, DUROX_ECONFLICT,
				             "job %lld was interrupted while its targets were being recorded; nothing "
				             "was done; "
				             "start the operation again",
				             (long long)job_id);
			}
		} else if (job_is(j, JOB_RUNNING) && alive) {
			rc = dx_fail(dx, DUROX_ECONFLICT, "job %lld is running in process %s; stop it or wait for it",
			             (long long)job_id, j->owner);
		} else if (op_params_from_json(&pmem, j->kind, j->request, &p) != 0) {
			rc = dx_fail(dx, DUROX_ECORRUPT, "job %lld has an unreadable request in the journal",
			             (long long)job_id);
		} else {
			char owner[200];
			job_self_owner(owner, sizeof owner);
			rc = job_move(dx, &jc.j, JOB_RUNNING);
			jc.j.owner = owner;
			jc.j.heartbeat_at = now;
			jc.j.stop_requested = 0;
			jc.j.last_error = NULL;
			if (jc.j.started_at == DUROX_NO_TIME)
				jc.j.started_at = now;
			if (opts->rate > 0)
				jc.j.rate = opts->rate;
			if (opts->batch_size > 0)
				jc.j.batch_size = opts->batch_size;
			if (rc == DUROX_OK && (rc = dx->st->ops->job_update(dx->st, &jc.j)) != DUROX_OK)
				rc = dx_store_fail(dx, rc);
			if (rc == DUROX_OK && audit_active(dx)) {
				char tgt[64];
				snprintf(tgt, sizeof tgt, "job %lld", (long long)job_id);
				buf params;
				buf_init(&params);
				buf_adds(&params, "{\"kind\":");
				buf_add_json_string(&params, jc.j.kind, strlen(jc.j.kind));
				buf_addc(&params, '}');
				audit_entry e = {
				        "resume_job",       tgt, "allow", NULL, buf_oom(&params) ? NULL : params.data,
				        "{\"code\":\"OK\"}"};
				rc = audit_append(dx, &e, 1);
				buf_free(&params);
			}
			commit = rc == DUROX_OK;
		}
	}
	if (commit) {
		char saved[sizeof dx->err];
		snprintf(saved, sizeof saved, "%s", dx->err);
		int c = dx->st->ops->commit(dx->st);
		if (c != DUROX_OK) {
			dx->st->ops->rollback(dx->st);
			rc = dx_store_fail(dx, c);
		} else if (rc != DUROX_OK) {
			snprintf(dx->err, sizeof dx->err, "%s", saved);
		}
	} else {
		dx->st->ops->rollback(dx->st);
	}
	if (rc == DUROX_OK && finished) {
		rc = job_build_report(dx, &jc.j, time_mono_ms() - run.t0, out);
	} else if (rc == DUROX_OK) {
		run.kind = p.kind;
		run.pr.total = jc.j.total;
		/* the resuming caller's policy decides the targets still pending */
		rc = job_police_pending(&run, job_id, &p);
		if (rc == DUROX_OK)
			rc = job_run_and_report(&run, job_id, &p, jc.j.batch_size, jc.j.rate, out);
		else
			job_mark(&run, job_id, JOB_RUNNING, JOB_INTERRUPTED, durox_errmsg(dx));
	}
	arena_release(&pmem);
	arena_release(&jc.mem);
	return rc;
}

int durox_job_stop(durox *dx, int64_t job_id, const char **state)
{
	dx_clear(dx);
	if (state != NULL)
		*state = NULL;
	int rc = op_check_writable(dx);
	int exists = 0;
	if (rc == DUROX_OK)
		rc = access_global(dx, "stop_job", DUROX_HOOK_MANAGE_JOBS);
	if (rc == DUROX_OK)
		rc = journal_ready(dx, &exists);
	if (rc == DUROX_OK && !exists)
		rc = dx_fail(dx, DUROX_ENOTFOUND, "job %lld not found (the store has no job journal)",
		             (long long)job_id);
	if (rc != DUROX_OK)
		return rc;
	rc = dx->st->ops->begin(dx->st);
	if (rc != DUROX_OK)
		return dx_store_fail(dx, rc);
	job_copy jc = {{0}, {0}, 0, DUROX_OK};
	arena_init(&jc.mem);
	rc = job_load(dx, job_id, &jc);
	if (rc == DUROX_OK && !jc.found)
		rc = dx_fail(dx, DUROX_ENOTFOUND, "job %lld not found", (long long)job_id);
	const char *result = NULL;
	if (rc == DUROX_OK) {
		int active;
		const char *shown = job_shown_state(&jc.j, time_now_ms(), &active);
		int st = job_state_parse(shown);
		if (st == JOB_COMPLETED || st == JOB_ABANDONED) {
			rc = dx_fail(dx, DUROX_ECONFLICT, "job %lld already ended (%s)", (long long)job_id, shown);
		} else if (st == JOB_STOPPED) {
			result = job_state_name(JOB_STOPPED);
		} else if (active) {
			jc.j.stop_requested = 1;
			result = "stopping";
		} else {
			rc = job_move(dx, &jc.j, job_is(&jc.j, JOB_RESOLVING) ? JOB_ABANDONED : JOB_STOPPED);
			jc.j.stop_requested = 0;
			result = jc.j.state;
		}
		if (rc == DUROX_OK && (rc = dx->st->ops->job_update(dx->st, &jc.j)) != DUROX_OK)
			rc = dx_store_fail(dx, rc);
		if (rc == DUROX_OK && audit_active(dx)) {
			char tgt[64], res[96];
			snprintf(tgt, sizeof tgt, "job %lld", (long long)job_id);
			snprintf(res, sizeof res, "{\"code\":\"OK\",\"state\":\"%s\"}", result);
			audit_entry e = {"stop_job", tgt, "allow", NULL, NULL, res};
			rc = audit_append(dx, &e, 1);
		}
	}
	if (rc == DUROX_OK && (rc = dx->st->ops->commit(dx->st)) != DUROX_OK)
		rc = dx_store_fail(dx, rc);
	if (rc != DUROX_OK)
		dx->st->ops->rollback(dx->st);
	else if (state != NULL)
		*state = result;
	arena_release(&jc.mem);
	return rc;
}
