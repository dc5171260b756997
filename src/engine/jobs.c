/*
 * jobs.c - bulk writes as resumable jobs: cancel_instances, raise_event_bulk,
 * purge_instances, prune_executions, restart_instances, and the journal's list, get,
 * report, resume and stop (jobs_journal.c).
 *
 * A call resolves its targets in memory (ids deduplicated, or the filter and predicate
 * streamed in instance_id order with no transaction open while Lua runs), records the job
 * and its targets in the journal, then runs batches: one BEGIN IMMEDIATE transaction
 * reads the job row (stop requests), takes the next pending targets, acts on each through
 * op_apply and marks each in the journal, then commits. A kill at any point loses either a
 * whole batch (nothing of it happened) or nothing, so resume acts on every target exactly
 * once. Progress callbacks run between transactions only. Relies on ops.c and the
 * provider's ops vtable; used by the Lua binding.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "engine/jobs_internal.h"
#include "util/codec.h"
#include "util/timeutil.h"

static int check_options(durox *dx, const durox_bulk_options *o, uint32_t *limit)
{
	int has_ids = o->instances != NULL;
	if (has_ids == (o->filter != NULL))
		return dx_fail(dx, DUROX_EINVALID,
		               "give either instances or a filter (an empty filter targets every instance)");
	if (o->predicate != NULL && o->filter == NULL)
		return dx_fail(dx, DUROX_EINVALID, "a predicate needs a filter");
	if (o->batch_size > 100000)
		return dx_fail(dx, DUROX_EINVALID, "batch_size must be at most 100000");
	if (!(o->rate >= 0) || isinf(o->rate))
		return dx_fail(dx, DUROX_EINVALID, "rate must be a non-negative number of operations per second");
	uint32_t ceiling = access_bulk_ceiling(dx);
	if (o->max_instances > ceiling)
		return dx_fail(dx, DUROX_ELIMIT,
		               access_policy_bulk_cap(dx) == ceiling
		                       ? "max_instances %u exceeds %u, the largest bulk operation the access policy "
		                         "allows"
		                       : "max_instances %u exceeds the configured max_bulk_operations %u; raise "
		                         "max_bulk_operations first",
		               (unsigned)o->max_instances, (unsigned)ceiling);
	*limit = o->max_instances > 0 ? o->max_instances : ceiling;
	return DUROX_OK;
}

/* Records the start of a bulk operation: what it targets, its parameters and how its
 * targets were classified before processing (job_id 0: no job was needed). */
static int audit_bulk_start(runctx *rc, const op_params *p, const char *desc, const targets *ts, int64_t job_id,
                            int in_txn)
{
	durox *dx = rc->dx;
	if (!audit_active(dx))
		return DUROX_OK;
	uint64_t denied = 0, unseen = 0, hidden = 0;
	for (size_t k = 0; k < ts->n; k++) {
		denied += ts->v[k].deny != NULL && ts->v[k].deny_code == DUROX_EDENIED;
		unseen += ts->v[k].deny != NULL && ts->v[k].deny_code == DUROX_ENOTFOUND;
		hidden += ts->v[k].hidden != 0;
	}
	buf params, result;
	buf_init(&params);
	buf_init(&result);
	op_params_summary(p, &params);
	if (!buf_oom(&params) && params.len >= 2) {
		params.len--; /* reopen the object */
		buf_addf(&params, "%s\"max_instances\":%u,\"rate\":%g}", params.len > 1 ? "," : "",
		         (unsigned)rc->o->max_instances, rc->o->rate);
	}
	/* not_found: what the caller was told; hidden: of those, the ones the store holds (for the
	 * auditor: the caller may not see them) */
	buf_addf(&result, "{\"job_id\":%lld,\"matched\":%zu,\"denied\":%llu,\"not_found\":%llu,\"hidden\":%llu}",
	         (long long)job_id, ts->n, (unsigned long long)denied, (unsigned long long)unseen,
	         (unsigned long long)hidden);
	audit_entry e = {
	        job_bulk_operation(p->kind),          desc, "allow", NULL, buf_oom(&params) ? NULL : params.data,
	        buf_oom(&result) ? NULL : result.data};
	int r = audit_append(dx, &e, in_txn);
	buf_free(&params);
	buf_free(&result);
	return r;
}

/* The canonical text of a bulk operation's targets: the filter's, or "ids (N)". */
static void describe_targets(const durox_bulk_options *o, size_t n, buf *desc)
{
	if (o->filter != NULL) {
		buf_adds(desc, durox_filter_describe((durox_filter *)o->filter));
		if (o->predicate != NULL)
			buf_adds(desc, " AND <predicate>");
	} else {
		buf_addf(desc, "ids (%zu)", n);
	}
}

/* Records the job and its targets; sets *job_id. Small jobs take one transaction; larger
 * ones record in chunks with the job in state "resolving" until the last chunk. */
static int record_job(runctx *rc, const op_params *p, const targets *ts, int64_t *job_id)
{
	durox *dx = rc->dx;
	char owner[200];
	job_self_owner(owner, sizeof owner);
	buf req, desc;
	buf_init(&req);
	buf_init(&desc);
	op_params_to_json(p, &req);
	describe_targets(rc->o, ts->n, &desc);
	uint64_t denied = 0;
	for (size_t k = 0; k < ts->n; k++)
		denied += ts->v[k].deny != NULL;
	int64_t now = time_now_ms();
	store_job j = {0};
	j.kind = op_kind_name(p->kind);
	int r0 = job_move(dx, &j, ts->n <= RECORD_CHUNK ? JOB_RUNNING : JOB_RESOLVING);
	j.request = buf_str(&req);
	j.description = buf_str(&desc);
	j.total = ts->n;
	j.failed = denied;
	j.rate = rc->o->rate;
	j.batch_size = rc->o->batch_size;
	j.owner = owner;
	j.heartbeat_at = now;
	j.created_at = now;
	j.started_at = now;
	j.finished_at = DUROX_NO_TIME;
	store_target *chunk = calloc(RECORD_CHUNK, sizeof *chunk);
	int r = buf_oom(&req) || buf_oom(&desc) || chunk == NULL ? dx_fail(dx, DUROX_ENOMEM, "out of memory") : r0;
	size_t next = 0;
	int first = 1;
	while (r == DUROX_OK && (first || next < ts->n)) {
		if ((r = job_begin_retry(rc)) != DUROX_OK)
			break;
		if (first) {
			r = dx->st->ops->journal_create(dx->st);
			if (r == DUROX_OK)
				r = dx->st->ops->job_insert(dx->st, &j, job_id);
			if (r == DUROX_OK) {
				j.job_id = *job_id;
				r = dx->st->ops->job_update(dx->st, &j); /* failed = denied */
			}
			if (r == DUROX_OK &&
			    (r = audit_bulk_start(rc, p, buf_str(&desc), ts, *job_id, 1)) != DUROX_OK) {
				dx->st->ops->rollback(dx->st);
				break;
			}
		}
		size_t n = ts->n - next < RECORD_CHUNK ? ts->n - next : RECORD_CHUNK;
		for (size_t k = 0; k < n; k++) {
			const target *t = &ts->v[next + k];
			chunk[k] = (store_target){next + k + 1,
			                          t->id,
			                          t->deny ? "failed" : "pending",
			                          t->deny ? durox_code_name(t->deny_code) : NULL,
			                          t->deny,
			                          NULL};
		}
		if (r == DUROX_OK)
			r = dx->st->ops->job_add_targets(dx->st, *job_id, next + 1, chunk, n);
		int last = next + n >= ts->n;
		if (r == DUROX_OK && last && job_is(&j, JOB_RESOLVING)) {
			r = job_move(dx, &j, JOB_RUNNING);
			j.heartbeat_at = time_now_ms();
			r = r == DUROX_OK ? dx->st->ops->job_update(dx->st, &j) : r;
		}
		if (r == DUROX_OK)
			r = dx->st->ops->commit(dx->st);
		if (r != DUROX_OK) {
			dx->st->ops->rollback(dx->st);
			r = dx_store_fail(dx, r);
			break;
		}
		next += n;
		first = 0;
		rc->pr.job_id = *job_id;
		int s = job_progress(rc, 0);
		if (s != 0 && !last) {
			r = s < 0 ? s
			          : dx_fail(dx, DUROX_EABORT, "stopped while recording job %lld; nothing was done",
			                    (long long)*job_id);
			break;
		}
	}
	free(chunk);
	buf_free(&req);
	buf_free(&desc);
	return r;
}

/* Sets *found when at least one target would be acted on (classifying without writing,
 * up to the first such target): a job whose targets are all refused writes nothing, not
 * even the journal, like a single refused call. */
static int any_actionable(runctx *rc, const op_params *p, const targets *ts, int *found)
{
	op_result res;
	op_result_init(&res);
	int r = DUROX_OK;
	int64_t now = time_now_ms();
	*found = 0;
	for (size_t k = 0; k < ts->n && !*found && r == DUROX_OK; k++) {
		if (ts->v[k].deny != NULL)
			continue;
		r = op_apply(rc->dx, p, ts->v[k].id, now, 0, &res);
		*found = r == DUROX_OK && res.outcome == DUROX_OUTCOME_DONE;
	}
	op_result_free(&res);
	return r;
}

/* Classifies every target without writing (dry run). */
static int dry_run(runctx *rc, const op_params *p, const targets *ts, durox_bulk_response **out)
{
	durox *dx = rc->dx;
	bulk_result *br = job_result_new(p->kind, "dry_run");
	if (br == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	br->pub.dry_run = 1;
	op_result res;
	op_result_init(&res);
	int r = DUROX_OK;
	int64_t now = time_now_ms();
	rc->pr.phase = "running";
	for (size_t k = 0; k < ts->n && r == DUROX_OK; k++) {
		durox_bulk_item *it = job_result_push(br);
		if (it == NULL) {
			r = dx_fail(dx, DUROX_ENOMEM, "out of memory");
			break;
		}
		arena *a = &br->mem;
		if ((it->instance_id = arena_strdup(a, ts->v[k].id)) == NULL) {
			r = dx_fail(dx, DUROX_ENOMEM, "out of memory");
			break;
		}
		if (ts->v[k].deny != NULL) {
			it->outcome = DUROX_OUTCOME_FAILED;
			it->code = ts->v[k].deny_code;
			it->message = arena_strdup(a, ts->v[k].deny);
		} else {
			if ((r = op_apply(dx, p, ts->v[k].id, now, 0, &res)) != DUROX_OK)
				break;
			it->outcome = res.outcome;
			it->code = res.outcome == DUROX_OUTCOME_FAILED ? res.code : DUROX_OK;
			if (res.message.len > 0)
				it->message = arena_strndup(a, res.message.data, res.message.len);
			if (res.new_id.len > 0)
				it->new_instance_id = arena_strndup(a, res.new_id.data, res.new_id.len);
			it->instances_deleted = res.counts.instances;
		}
		job_tally(&br->pub, it);
		rc->pr.done = br->pub.done;
		rc->pr.failed = br->pub.failed;
		rc->pr.no_subscription = br->pub.no_subscription;
		int s = job_progress(rc, 0);
		if (s != 0)
			r = s < 0 ? s : dx_fail(dx, DUROX_EABORT, "dry run stopped");
	}
	op_result_free(&res);
	if (r != DUROX_OK) {
		durox_bulk_response_free(&br->pub);
		return r;
	}
	br->pub.total_matched = br->pub.count;
	br->pub.elapsed_ms = time_mono_ms() - rc->t0;
	*out = &br->pub;
	return DUROX_OK;
}

static int bulk(durox *dx, const op_params *p, const durox_bulk_options *o, durox_bulk_response **out)
{
	*out = NULL;
	dx_clear(dx);
	uint32_t limit = 0;
	int r = dx->st->ops == NULL
	                ? dx_fail(dx, DUROX_EUNSUPPORTED, "the %s provider cannot write", dx->st->info.provider)
	                : check_options(dx, o, &limit);
	if (r == DUROX_OK)
		r = op_check_params(dx, p);
	if (r == DUROX_OK && !o->dry_run)
		r = op_check_writable(dx);
	if (r != DUROX_OK)
		return r;
	runctx rc = {dx, p->kind, o, time_mono_ms(), 0, {0}};
	rc.pr.phase = "resolving";
	targets ts;
	job_targets_init(&ts);
	r = o->instances != NULL ? job_resolve_ids(&rc, &ts, limit, p) : job_resolve_filter(&rc, &ts, limit, p);
	int actionable = 0;
	if (r == DUROX_OK && !o->dry_run)
		r = any_actionable(&rc, p, &ts, &actionable);
	if (r == DUROX_OK && o->dry_run) {
		r = dry_run(&rc, p, &ts, out);
	} else if (r == DUROX_OK && !actionable) {
		/* nothing to act on (no target, or every one refused: unknown, terminal, denied, no
		 * subscription): no job, nothing written but the audit record of the attempt; the
		 * refusals are the response, as a dry run reports them */
		buf desc;
		buf_init(&desc);
		describe_targets(o, ts.n, &desc);
		r = buf_oom(&desc) ? dx_fail(dx, DUROX_ENOMEM, "out of memory")
		                   : audit_bulk_start(&rc, p, desc.data, &ts, 0, 0);
		buf_free(&desc);
		if (r == DUROX_OK && (r = dry_run(&rc, p, &ts, out)) == DUROX_OK) {
			(*out)->dry_run = 0;
			(*out)->state = "completed";
		}
	} else if (r == DUROX_OK) {
		int64_t job_id = 0;
		rc.pr.total = ts.n;
		r = record_job(&rc, p, &ts, &job_id);
		job_targets_release(&ts); /* the job runs from the journal */
		if (r != DUROX_OK && job_id != 0)
			job_mark(&rc, job_id, JOB_RESOLVING, JOB_ABANDONED, durox_errmsg(dx));
		if (r == DUROX_OK)
			r = job_run_and_report(&rc, job_id, p, o->batch_size, o->rate, out);
	}
	if (r == DUROX_OK && *out != NULL && job_add_skipped(*out, &ts) != DUROX_OK) {
		durox_bulk_response_free(*out);
		*out = NULL;
		r = dx_fail(dx, DUROX_ENOMEM, "out of memory");
	}
	job_targets_free(&ts);
	return r;
}

int durox_cancel_instances(durox *dx, const durox_bulk_cancel_request *req, durox_bulk_response **out)
{
	op_params p = {.kind = OP_CANCEL, .reason = req->reason != NULL ? req->reason : ""};
	return bulk(dx, &p, &req->opts, out);
}

int durox_raise_event_bulk(durox *dx, const durox_bulk_event_request *req, durox_bulk_response **out)
{
	op_params p = {.kind = req->queue ? OP_ENQUEUE : OP_RAISE,
	               .event_name = req->event_name,
	               .event_data = req->event_data != NULL ? req->event_data : "null",
	               .check_subscription = !req->queue};
	return bulk(dx, &p, &req->opts, out);
}

int durox_purge_instances(durox *dx, const durox_purge_request *req, durox_bulk_response **out)
{
	op_params p = {.kind = OP_PURGE, .force = req->force};
	return bulk(dx, &p, &req->opts, out);
}

int durox_prune_executions(durox *dx, const durox_prune_request *req, durox_bulk_response **out)
{
	op_params p = {.kind = OP_PRUNE,
	               .has_keep_last = req->has_keep_last,
	               .keep_last = req->keep_last,
	               .completed_before = req->completed_before};
	return bulk(dx, &p, &req->opts, out);
}

int durox_restart_instances(durox *dx, const durox_restart_request *req, durox_bulk_response **out)
{
	op_params p = {.kind = OP_RESTART, .latest_version = req->latest_version};
	return bulk(dx, &p, &req->opts, out);
}
