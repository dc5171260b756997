/*
 * jobs_targets.c - resolving a bulk operation's targets in memory before anything is
 * journaled: given ids deduplicated (an open-addressing index), or the filter and predicate
 * streamed in instance_id order through the listing iterator, with no store statement open
 * while the Lua callbacks (predicate, authorize) run. Used by jobs.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "engine/jobs_internal.h"
#include "util/codec.h"
#include "util/timeutil.h"

void job_targets_init(targets *t)
{
	memset(t, 0, sizeof *t);
	arena_init(&t->mem);
	arena_init(&t->skipmem);
}

void job_targets_release(targets *t)
{
	arena_release(&t->mem);
	free(t->slots);
	t->slots = NULL;
	t->nslots = 0;
	t->v = NULL;
	t->n = t->cap = 0;
}

void job_targets_free(targets *t)
{
	job_targets_release(t);
	arena_release(&t->skipmem);
}

static int targets_push(targets *t, const char *id)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		target *v = arena_calloc(&t->mem, cap, sizeof *v);
		if (v == NULL)
			return DUROX_ENOMEM;
		if (t->n)
			memcpy(v, t->v, t->n * sizeof *v);
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n].id = arena_strdup(&t->mem, id);
	t->v[t->n].deny_code = DUROX_OK;
	t->v[t->n].deny = NULL;
	t->v[t->n].hidden = 0;
	if (t->v[t->n].id == NULL)
		return DUROX_ENOMEM;
	t->n++;
	return DUROX_OK;
}

/* Finds id: returns its slot; *pos = position or (size_t)-1 when absent. */
static size_t index_find(const targets *t, const char *id, size_t *pos)
{
	size_t mask = t->nslots - 1;
	size_t h = (size_t)fnv1a64(FNV1A64_INIT, id, strlen(id)) & mask;
	while (t->slots[h] != 0 && strcmp(t->v[t->slots[h] - 1].id, id) != 0)
		h = (h + 1) & mask;
	*pos = t->slots[h] != 0 ? t->slots[h] - 1 : (size_t)-1;
	return h;
}

/* Builds the index for up to n ids. */
static int index_init(targets *t, size_t n)
{
	size_t cap = 16;
	while (cap < n * 2 + 2)
		cap *= 2;
	t->slots = calloc(cap, sizeof *t->slots);
	t->nslots = cap;
	return t->slots != NULL ? DUROX_OK : DUROX_ENOMEM;
}

typedef struct summaries {
	arena mem;
	durox_instance_summary *v;
	size_t n, cap;
	int rc;
} summaries;

static int collect_summary(void *ud, const durox_instance_summary *s)
{
	summaries *c = ud;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		durox_instance_summary *v = arena_calloc(&c->mem, cap, sizeof *v);
		if (v == NULL)
			goto oom;
		if (c->n)
			memcpy(v, c->v, c->n * sizeof *v);
		c->v = v;
		c->cap = cap;
	}
	if (summary_copy(&c->mem, &c->v[c->n], s) != DUROX_OK)
		goto oom;
	c->n++;
	return 0;
oom:
	c->rc = DUROX_ENOMEM;
	return -1;
}

/* Asks the authorize callback about s; records a denial on target t. */
static int authorize(runctx *rc, targets *ts, target *t, const durox_instance_summary *s)
{
	const char *reason = NULL;
	int r = rc->o->authorize(rc->o->authorize_ud, s, &reason);
	if (r < 0) {
		if (rc->dx->err[0] == '\0')
			dx_fail(rc->dx, r, "the authorize callback stopped the operation");
		return r;
	}
	if (r == 0) {
		char msg[600];
		snprintf(msg, sizeof msg, "%s", reason != NULL && reason[0] != '\0' ? reason : "denied");
		t->deny = arena_strdup(&ts->mem, msg);
		t->deny_code = DUROX_EDENIED;
		if (t->deny == NULL)
			return dx_fail(rc->dx, DUROX_ENOMEM, "out of memory");
	}
	return DUROX_OK;
}

const char *job_bulk_operation(int kind)
{
	static const char *const names[OP__COUNT] = {"cancel_instances", "raise_event_bulk", "enqueue_event_bulk",
	                                             "purge_instances",  "prune_executions", "restart_instances"};
	return kind >= 0 && kind < OP__COUNT ? names[kind] : "bulk";
}

int job_bulk_hook(int kind)
{
	switch (kind) {
	case OP_CANCEL: return DUROX_HOOK_CANCEL_INSTANCE;
	case OP_RAISE:
	case OP_ENQUEUE: return DUROX_HOOK_RAISE_EVENT;
	case OP_PURGE:
	case OP_PRUNE: return DUROX_HOOK_PURGE_INSTANCE;
	default: return DUROX_HOOK_RESTART_INSTANCE;
	}
}

/* Asks the policy about a target the caller sees: a refusal marks it failed, DENIED, with
 * the message "denied" (the policy's reason goes to the audit log). */
static int police(runctx *rc, target *t, const durox_instance_summary *s, const op_params *p)
{
	if (!access_enabled(rc->dx) || t->deny != NULL)
		return DUROX_OK;
	char why[256];
	int ok = access_ask_instance(rc->dx, job_bulk_hook(rc->kind), s, p->event_name, why, sizeof why);
	if (ok < 0)
		return ok;
	if (!ok) {
		t->deny = "denied";
		t->deny_code = DUROX_EDENIED;
	}
	return DUROX_OK;
}

/* summaries_by_id callback: marks a target the caller did not see but the store holds. */
static int mark_hidden(void *ud, const durox_instance_summary *s)
{
	targets *ts = ud;
	size_t pos;
	index_find(ts, s->instance_id, &pos);
	if (pos != (size_t)-1)
		ts->v[pos].hidden = 1;
	return 0;
}

/* Marks every target the caller may not see (hidden or missing: the same answer) NOTFOUND.
 * Which of them the store holds is noted for the audit record only (hidden), read by id
 * without the caller's view. */
static int hide_unseen(runctx *rc, targets *ts, const unsigned char *seen)
{
	const char *ids[256];
	size_t n = 0;
	for (size_t k = 0; k < ts->n; k++) {
		if (seen[k] || ts->v[k].deny != NULL)
			continue;
		char msg[600];
		snprintf(msg, sizeof msg, "instance '%s' not found", ts->v[k].id);
		ts->v[k].deny = arena_strdup(&ts->mem, msg);
		ts->v[k].deny_code = DUROX_ENOTFOUND;
		if (ts->v[k].deny == NULL)
			return dx_fail(rc->dx, DUROX_ENOMEM, "out of memory");
		ids[n++] = ts->v[k].id;
		if (n == sizeof ids / sizeof ids[0]) {
			int r = rc->dx->st->vt->summaries_by_id(rc->dx->st, ids, n, mark_hidden, ts);
			if (r != DUROX_OK)
				return dx_store_fail(rc->dx, r);
			n = 0;
		}
	}
	if (n > 0) {
		int r = rc->dx->st->vt->summaries_by_id(rc->dx->st, ids, n, mark_hidden, ts);
		if (r != DUROX_OK)
			return dx_store_fail(rc->dx, r);
	}
	return DUROX_OK;
}

typedef struct seen_ctx {
	runctx *rc;
	targets *ts;
	unsigned char *seen;
	const op_params *p;
	int r;
} seen_ctx;

static int seen_cb(void *ud, const durox_instance_summary *s)
{
	seen_ctx *c = ud;
	size_t pos;
	index_find(c->ts, s->instance_id, &pos);
	if (pos == (size_t)-1)
		return 0;
	c->seen[pos] = 1;
	target *t = &c->ts->v[pos];
	/* the caller's authorize callback only restricts further: it is not asked about a target
	 * the policy refused (as for targets by filter) */
	if ((c->r = police(c->rc, t, s, c->p)) == DUROX_OK && c->rc->o->authorize != NULL && t->deny == NULL)
		c->r = authorize(c->rc, c->ts, t, s);
	return c->r == DUROX_OK ? 0 : -1;
}

int job_resolve_ids(runctx *rc, targets *ts, uint32_t limit, const op_params *p)
{
	durox *dx = rc->dx;
	const durox_bulk_options *o = rc->o;
	if (index_init(ts, o->n_instances) != DUROX_OK)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	for (size_t k = 0; k < o->n_instances; k++) {
		const char *id = o->instances[k];
		if (id == NULL || id[0] == '\0')
			return dx_fail(dx, DUROX_EINVALID, "instance id #%zu is empty", k + 1);
		if (strlen(id) > dx->cfg.max_id_bytes)
			return dx_fail(dx, DUROX_ELIMIT,
			               "instance id #%zu is %zu bytes; the limit is %u (max_id_bytes)", k + 1,
			               strlen(id), (unsigned)dx->cfg.max_id_bytes);
		if (!op_valid_utf8(id))
			return dx_fail(dx, DUROX_EINVALID, "instance id #%zu is not valid UTF-8", k + 1);
		size_t pos, slot = index_find(ts, id, &pos);
		if (pos != (size_t)-1)
			continue;
		if (ts->n >= limit)
			return dx_fail(
			        dx, DUROX_ELIMIT,
			        "more than %u instances given (max_instances); split the list or raise max_instances",
			        (unsigned)limit);
		if (targets_push(ts, id) != DUROX_OK)
			return dx_fail(dx, DUROX_ENOMEM, "out of memory");
		ts->slots[slot] = ts->n;
	}
	if (access_enabled(dx)) {
		/* what the caller sees, asked of the policy (and of the authorize callback) */
		unsigned char *seen = calloc(ts->n ? ts->n : 1, 1);
		if (seen == NULL)
			return dx_fail(dx, DUROX_ENOMEM, "out of memory");
		const char **ids = calloc(ts->n ? ts->n : 1, sizeof *ids);
		if (ids == NULL) {
			free(seen);
			return dx_fail(dx, DUROX_ENOMEM, "out of memory");
		}
		for (size_t k = 0; k < ts->n; k++)
			ids[k] = ts->v[k].id;
		access_view v;
		seen_ctx c = {rc, ts, seen, p, DUROX_OK};
		int r = access_view_open_quiet(dx, job_bulk_operation(rc->kind), NULL, &v);
		if (r == DUROX_EDENIED) { /* may list nothing: every target is NotFound (recorded) */
			dx_clear(dx);
			r = DUROX_OK;
		} else if (r == DUROX_OK) {
			r = access_visible_by_id(&v, ids, ts->n, seen_cb, &c);
			if (r == DUROX_EABORT)
				r = c.r != DUROX_OK ? c.r : dx_fail(dx, DUROX_ENOMEM, "out of memory");
		}
		access_view_close(&v);
		if (r == DUROX_OK)
			r = hide_unseen(rc, ts, seen);
		free(ids);
		free(seen);
		return r;
	}
	if (o->authorize == NULL)
		return DUROX_OK;
	/* Summaries are read first and the callback runs after each read returned: no store
	 * statement is open while user code runs. */
	for (size_t first = 0; first < ts->n; first += 256) {
		size_t chunk = ts->n - first < 256 ? ts->n - first : 256;
		const char *ids[256];
		for (size_t k = 0; k < chunk; k++)
			ids[k] = ts->v[first + k].id;
		summaries sm = {{0}, NULL, 0, 0, DUROX_OK};
		arena_init(&sm.mem);
		int r = dx->st->vt->summaries_by_id(dx->st, ids, chunk, collect_summary, &sm);
		if (r != DUROX_OK) {
			arena_release(&sm.mem);
			return sm.rc != DUROX_OK ? dx_fail(dx, sm.rc, "out of memory") : dx_store_fail(dx, r);
		}
		for (size_t k = 0; k < sm.n && r == DUROX_OK; k++) {
			size_t pos;
			index_find(ts, sm.v[k].instance_id, &pos);
			if (pos != (size_t)-1)
				r = authorize(rc, ts, &ts->v[pos], &sm.v[k]);
		}
		arena_release(&sm.mem);
		if (r != DUROX_OK)
			return r;
		if ((r = job_progress(rc, 0)) != 0)
			return r < 0 ? r
			             : dx_fail(dx, DUROX_EABORT, "stopped while resolving targets; nothing was done");
	}
	return DUROX_OK;
}

/* Records a sub-orchestration that purge or restart by filter skips, with the reason. */
static int push_skipped(durox *dx, targets *ts, const durox_instance_summary *s, int kind)
{
	if (ts->nskipped == ts->skipcap) {
		size_t cap = ts->skipcap ? ts->skipcap * 2 : 64;
		target *v = arena_calloc(&ts->skipmem, cap, sizeof *v);
		if (v == NULL)
			return dx_fail(dx, DUROX_ENOMEM, "out of memory");
		if (ts->nskipped)
			memcpy(v, ts->skipped, ts->nskipped * sizeof *v);
		ts->skipped = v;
		ts->skipcap = cap;
	}
	char msg[600];
	snprintf(msg, sizeof msg, "a sub-orchestration of '%s': %s acts on trees through their root",
	         s->parent_instance, op_kind_name(kind));
	target *t = &ts->skipped[ts->nskipped];
	t->id = arena_strdup(&ts->skipmem, s->instance_id);
	t->deny = arena_strdup(&ts->skipmem, msg);
	if (t->id == NULL || t->deny == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	ts->nskipped++;
	return DUROX_OK;
}

int job_resolve_filter(runctx *rc, targets *ts, uint32_t limit, const op_params *p)
{
	durox *dx = rc->dx;
	int skip_children = rc->kind == OP_PURGE || rc->kind == OP_RESTART;
	durox_list_request req = {0};
	req.filter = rc->o->filter;
	req.order_by = DUROX_ORDER_INSTANCE_ID;
	req.direction = DUROX_DIR_ASC;
	req.page_size = 256;
	req.predicate = rc->o->predicate;
	req.predicate_ud = rc->o->predicate_ud;
	durox_instance_iter *it;
	int r = instance_iter_open(dx, job_bulk_operation(rc->kind), &req, &it); /* only what the caller sees */
	if (r != DUROX_OK)
		return r;
	const durox_instance_summary *s;
	while ((r = durox_instance_iter_next(it, &s)) == 1) {
		if (skip_children && s->parent_instance != NULL) {
			if ((r = push_skipped(dx, ts, s, rc->kind)) != DUROX_OK)
				break;
			continue;
		}
		if (ts->n >= limit) {
			r = dx_fail(dx, DUROX_ELIMIT,
			            "more than %u instances match (max_instances); narrow the filter or raise "
			            "max_instances",
			            (unsigned)limit);
			break;
		}
		if (targets_push(ts, s->instance_id) != DUROX_OK) {
			r = dx_fail(dx, DUROX_ENOMEM, "out of memory");
			break;
		}
		if ((r = police(rc, &ts->v[ts->n - 1], s, p)) != DUROX_OK)
			break;
		if (rc->o->authorize != NULL && ts->v[ts->n - 1].deny == NULL &&
		    (r = authorize(rc, ts, &ts->v[ts->n - 1], s)) != DUROX_OK)
			break;
		rc->pr.total = ts->n;
		int pr = job_progress(rc, 0);
		if (pr != 0) {
			r = pr < 0 ? pr
			           : dx_fail(dx, DUROX_EABORT, "stopped while resolving targets; nothing was done");
			break;
		}
	}
	durox_instance_iter_free(it);
	return r < 0 ? r : DUROX_OK;
}

typedef struct pending_ctx {
	targets ts;
	uint64_t *seqs;
	size_t cap;
	int rc;
} pending_ctx;

static int pending_cb(void *ud, const store_target *t)
{
	pending_ctx *c = ud;
	if (c->ts.n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		uint64_t *v = realloc(c->seqs, cap * sizeof *v);
		if (v == NULL)
			goto oom;
		c->seqs = v;
		c->cap = cap;
	}
	c->seqs[c->ts.n] = t->seq;
	if (targets_push(&c->ts, t->instance_id) != DUROX_OK)
		goto oom;
	return 0;
oom:
	c->rc = DUROX_ENOMEM;
	return -1;
}

/* Under a policy, asks it about every target a resumed job still has to process, and
 * records the refused ones as failed (NOTFOUND for what the caller may not see, DENIED for
 * what it may not change) before anything is done: a job runs with the rights of whoever
 * runs it, not of whoever started it. */
int job_police_pending(runctx *rc, int64_t job_id, const op_params *p)
{
	durox *dx = rc->dx;
	if (!access_enabled(dx))
		return DUROX_OK;
	pending_ctx c;
	memset(&c, 0, sizeof c);
	job_targets_init(&c.ts);
	int r = dx->st->ops->job_targets(dx->st, job_id, 0, 0, 1, pending_cb, &c);
	if (r != DUROX_OK)
		r = c.rc != DUROX_OK ? dx_fail(dx, c.rc, "out of memory") : dx_store_fail(dx, r);
	if (r == DUROX_OK && (r = index_init(&c.ts, c.ts.n)) != DUROX_OK)
		r = dx_fail(dx, DUROX_ENOMEM, "out of memory");
	for (size_t k = 0; r == DUROX_OK && k < c.ts.n; k++) {
		size_t pos, slot = index_find(&c.ts, c.ts.v[k].id, &pos);
		if (pos == (size_t)-1)
			c.ts.slots[slot] = k + 1;
	}
	if (r == DUROX_OK) {
		/* the same classification as a new operation with these ids */
		durox_bulk_options o = {0};
		const durox_bulk_options *saved = rc->o;
		o.progress = saved != NULL ? saved->progress : NULL;
		o.progress_ud = saved != NULL ? saved->progress_ud : NULL;
		rc->o = &o;
		unsigned char *seen = calloc(c.ts.n ? c.ts.n : 1, 1);
		const char **ids = calloc(c.ts.n ? c.ts.n : 1, sizeof *ids);
		if (seen == NULL || ids == NULL) {
			r = dx_fail(dx, DUROX_ENOMEM, "out of memory");
		} else {
			for (size_t k = 0; k < c.ts.n; k++)
				ids[k] = c.ts.v[k].id;
			access_view v;
			seen_ctx sc = {rc, &c.ts, seen, p, DUROX_OK};
			r = access_view_open_quiet(dx, "resume_job", NULL, &v);
			if (r == DUROX_EDENIED) {
				dx_clear(dx);
				r = DUROX_OK;
			} else if (r == DUROX_OK) {
				r = access_visible_by_id(&v, ids, c.ts.n, seen_cb, &sc);
				if (r == DUROX_EABORT)
					r = sc.r != DUROX_OK ? sc.r : dx_fail(dx, DUROX_ENOMEM, "out of memory");
			}
			access_view_close(&v);
			if (r == DUROX_OK)
				r = hide_unseen(rc, &c.ts, seen);
		}
		free(seen);
		free(ids);
		rc->o = saved;
	}
	size_t refused = 0;
	for (size_t k = 0; r == DUROX_OK && k < c.ts.n; k++)
		refused += c.ts.v[k].deny != NULL;
	if (r == DUROX_OK && refused > 0) {
		/* one transaction records the refusals and the job's counter */
		job_copy jc = {{0}, {0}, 0, DUROX_OK};
		arena_init(&jc.mem);
		int64_t now = time_now_ms();
		if ((r = job_begin_retry(rc)) == DUROX_OK) {
			r = job_load(dx, job_id, &jc);
			for (size_t k = 0; r == DUROX_OK && k < c.ts.n; k++) {
				const target *t = &c.ts.v[k];
				if (t->deny == NULL)
					continue;
				store_target st = {c.seqs[k], t->id, "failed", durox_code_name(t->deny_code),
				                   t->deny,   NULL};
				if ((r = dx->st->ops->job_set_target(dx->st, job_id, c.seqs[k], &st, now)) != DUROX_OK)
					r = dx_store_fail(dx, r);
			}
			if (r == DUROX_OK && jc.found) {
				jc.j.failed += refused;
				if ((r = dx->st->ops->job_update(dx->st, &jc.j)) != DUROX_OK)
					r = dx_store_fail(dx, r);
			}
			if (r == DUROX_OK && (r = dx->st->ops->commit(dx->st)) != DUROX_OK)
				r = dx_store_fail(dx, r);
			if (r != DUROX_OK)
				dx->st->ops->rollback(dx->st);
		}
		arena_release(&jc.mem);
	}
	free(c.seqs);
	job_targets_free(&c.ts);
	return r;
}
