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

#include "engine/jobs_internal.h"
#include "util/codec.h"
#include "util/timeutil.h"

void job_targets_init(targets *t)
{
	memset(t, 0, sizeof *t);
	arena_init(&t->mem);
}

void job_targets_free(targets *t)
{
	arena_release(&t->mem);
	free(t->slots);
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
	t->v[t->n].deny = NULL;
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
		if (t->deny == NULL)
			return dx_fail(rc->dx, DUROX_ENOMEM, "out of memory");
	}
	return DUROX_OK;
}

int job_resolve_ids(runctx *rc, targets *ts, uint32_t limit)
{
	durox *dx = rc->dx;
	const durox_bulk_options *o = rc->o;
	if (index_init(ts, o->n_instances) != DUROX_OK)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	for (size_t k = 0; k < o->n_instances; k++) {
		const char *id = o->instances[k];
		if (id == NULL || id[0] == '\0')
			return dx_fail(dx, DUROX_EINVALID, "instance id #%zu is empty", k + 1);
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

typedef struct pred_chain {
	const durox_bulk_options *o;
	int skip_children;
} pred_chain;

static int chained_predicate(void *ud, const durox_instance_summary *s)
{
	pred_chain *pc = ud;
	if (pc->skip_children && s->parent_instance != NULL)
		return 0;
	return pc->o->predicate != NULL ? pc->o->predicate(pc->o->predicate_ud, s) : 1;
}

int job_resolve_filter(runctx *rc, targets *ts, uint32_t limit)
{
	durox *dx = rc->dx;
	pred_chain pc = {rc->o, rc->kind == OP_PURGE || rc->kind == OP_RESTART};
	durox_list_request req = {0};
	req.filter = rc->o->filter;
	req.order_by = DUROX_ORDER_INSTANCE_ID;
	req.direction = DUROX_DIR_ASC;
	req.page_size = 256;
	if (pc.skip_children || rc->o->predicate != NULL) {
		req.predicate = chained_predicate;
		req.predicate_ud = &pc;
	}
	durox_instance_iter *it;
	int r = durox_instance_iter_new(dx, &req, &it);
	if (r != DUROX_OK)
		return r;
	const durox_instance_summary *s;
	while ((r = durox_instance_iter_next(it, &s)) == 1) {
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
		if (rc->o->authorize != NULL && (r = authorize(rc, ts, &ts->v[ts->n - 1], s)) != DUROX_OK)
			break;
		rc->pr.total = ts->n;
		int p = job_progress(rc, 0);
		if (p != 0) {
			r = p < 0 ? p : dx_fail(dx, DUROX_EABORT, "stopped while resolving targets; nothing was done");
			break;
		}
	}
	durox_instance_iter_free(it);
	return r < 0 ? r : DUROX_OK;
}
