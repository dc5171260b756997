/*
 * jobs_report.c - bulk responses: building them item by item (dry runs) or from the
 * journal (a job's report), and copying a job row out of the store. Used by the other
 * jobs_*.c files.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "engine/jobs_internal.h"
#include "util/codec.h"
#include "util/timeutil.h"

static int copy_job_cb(void *ud, const store_job *j)
{
	job_copy *c = ud;
	c->j = *j;
#define DUP(f)                                                                                                         \
	if (j->f != NULL && (c->j.f = arena_strdup(&c->mem, j->f)) == NULL) {                                          \
		c->rc = DUROX_ENOMEM;                                                                                  \
		return -1;                                                                                             \
	}
	DUP(kind)
	DUP(state)
	DUP(request)
	DUP(description)
	DUP(owner)
	DUP(last_error)
#undef DUP
	c->found = 1;
	return 1;
}

/* Loads job id into c (c->found says whether it exists). The journal must exist. */
int job_load(durox *dx, int64_t id, job_copy *c)
{
	arena_release(&c->mem);
	c->found = 0;
	c->rc = DUROX_OK;
	int rc = dx->st->ops->job_list(dx->st, id, NULL, NULL, 1, copy_job_cb, c);
	if (rc != DUROX_OK)
		return c->rc != DUROX_OK ? dx_fail(dx, c->rc, "out of memory") : dx_store_fail(dx, rc);
	return DUROX_OK;
}

void durox_bulk_response_free(durox_bulk_response *r)
{
	if (r == NULL)
		return;
	bulk_result *br = (bulk_result *)r;
	arena_release(&br->mem);
	free(br);
}

bulk_result *job_result_new(int kind, const char *state)
{
	bulk_result *br = calloc(1, sizeof *br);
	if (br == NULL)
		return NULL;
	arena_init(&br->mem);
	br->pub.kind = op_kind_name(kind);
	br->pub.state = state;
	return br;
}

durox_bulk_item *job_result_push(bulk_result *br)
{
	if (br->pub.count == br->cap) {
		size_t cap = br->cap ? br->cap * 2 : 64;
		durox_bulk_item *v = arena_calloc(&br->mem, cap, sizeof *v);
		if (v == NULL)
			return NULL;
		if (br->pub.count)
			memcpy(v, br->pub.items, br->pub.count * sizeof *v);
		br->pub.items = v;
		br->cap = cap;
	}
	durox_bulk_item *it = &br->pub.items[br->pub.count++];
	memset(it, 0, sizeof *it);
	return it;
}

/* Adds an item's counts to the response totals. */
void job_tally(durox_bulk_response *r, const durox_bulk_item *it)
{
	switch (it->outcome) {
	case DUROX_OUTCOME_DONE: r->done++; break;
	case DUROX_OUTCOME_FAILED: r->failed++; break;
	case DUROX_OUTCOME_NO_SUBSCRIPTION: r->no_subscription++; break;
	case DUROX_OUTCOME_SKIPPED: r->skipped++; break;
	default: r->pending++;
	}
	r->instances_deleted += it->instances_deleted;
	r->executions_deleted += it->executions_deleted;
	r->events_deleted += it->events_deleted;
	r->queue_messages_deleted += it->queue_messages_deleted;
}

static int outcome_parse(const char *state)
{
	for (int k = 0; k <= DUROX_OUTCOME_SKIPPED; k++)
		if (strcmp(state, durox_outcome_name(k)) == 0)
			return k;
	return DUROX_OUTCOME_PENDING;
}

static int code_parse(const char *name)
{
	if (name == NULL)
		return DUROX_OK;
	for (int c = DUROX_ENOTFOUND; c >= DUROX_EGONE; c--)
		if (strcmp(durox_code_name(c), name) == 0)
			return c;
	return DUROX_EIO;
}

const char *job_result_json(const op_params *p, const op_result *res, buf *b)
{
	buf_reset(b);
	if (res->outcome != DUROX_OUTCOME_DONE)
		return NULL;
	if (p->kind == OP_RESTART) {
		buf_adds(b, "{\"new_instance_id\":");
		buf_add_json_string(b, res->new_id.data, res->new_id.len);
		buf_addc(b, '}');
	} else if (p->kind == OP_PURGE || p->kind == OP_PRUNE) {
		buf_addf(b,
		         "{\"instances_deleted\":%llu,\"executions_deleted\":%llu,\"events_deleted\":%llu,"
		         "\"queue_messages_deleted\":%llu}",
		         (unsigned long long)res->counts.instances, (unsigned long long)res->counts.executions,
		         (unsigned long long)res->counts.events, (unsigned long long)res->counts.queue_messages);
	} else {
		return NULL;
	}
	return buf_oom(b) ? NULL : b->data;
}

typedef struct report_ctx {
	bulk_result *br;
	arena scratch;
	int rc;
} report_ctx;

static uint64_t get_u64(const json *o, const char *k)
{
	int64_t v;
	return json_get_i64(o, k, &v) && v > 0 ? (uint64_t)v : 0;
}

static int report_target_cb(void *ud, const store_target *t)
{
	report_ctx *c = ud;
	durox_bulk_item *it = job_result_push(c->br);
	if (it == NULL)
		goto oom;
	arena *a = &c->br->mem;
	it->instance_id = arena_strdup(a, t->instance_id);
	it->outcome = outcome_parse(t->state);
	it->code = it->outcome == DUROX_OUTCOME_FAILED ? code_parse(t->code) : DUROX_OK;
	if (it->instance_id == NULL || (t->message != NULL && (it->message = arena_strdup(a, t->message)) == NULL))
		goto oom;
	if (t->result != NULL) {
		arena_release(&c->scratch);
		json *r = json_parse(&c->scratch, t->result, strlen(t->result), NULL, 0);
		const char *nid = json_get_str(r, "new_instance_id");
		if (nid != NULL && (it->new_instance_id = arena_strdup(a, nid)) == NULL)
			goto oom;
		it->instances_deleted = get_u64(r, "instances_deleted");
		it->executions_deleted = get_u64(r, "executions_deleted");
		it->events_deleted = get_u64(r, "events_deleted");
		it->queue_messages_deleted = get_u64(r, "queue_messages_deleted");
	}
	job_tally(&c->br->pub, it);
	return 0;
oom:
	c->rc = DUROX_ENOMEM;
	return -1;
}

/* Builds the response of job j from the journal. */
int job_build_report(durox *dx, const store_job *j, int64_t elapsed, durox_bulk_response **out)
{
	int active;
	bulk_result *br = job_result_new(op_kind_parse(j->kind), NULL);
	if (br == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	br->pub.kind = arena_strdup(&br->mem, j->kind);
	br->pub.state = arena_strdup(&br->mem, job_shown_state(j, time_now_ms(), &active));
	br->pub.job_id = j->job_id;
	br->pub.elapsed_ms = elapsed;
	report_ctx c = {br, {0}, DUROX_OK};
	arena_init(&c.scratch);
	int rc = br->pub.kind == NULL || br->pub.state == NULL
	                 ? DUROX_ENOMEM
	                 : dx->st->ops->job_targets(dx->st, j->job_id, 0, 0, 0, report_target_cb, &c);
	arena_release(&c.scratch);
	if (rc != DUROX_OK || c.rc != DUROX_OK) {
		rc = c.rc != DUROX_OK || rc == DUROX_ENOMEM ? dx_fail(dx, DUROX_ENOMEM, "out of memory")
		                                            : dx_store_fail(dx, rc);
		durox_bulk_response_free(&br->pub);
		return rc;
	}
	br->pub.total_matched = br->pub.count;
	*out = &br->pub;
	return DUROX_OK;
}

int job_add_skipped(durox_bulk_response *r, const targets *ts)
{
	bulk_result *br = (bulk_result *)r; /* every response is made by job_result_new */
	for (size_t k = 0; k < ts->nskipped; k++) {
		durox_bulk_item *it = job_result_push(br);
		if (it == NULL || (it->instance_id = arena_strdup(&br->mem, ts->skipped[k].id)) == NULL ||
		    (it->message = arena_strdup(&br->mem, ts->skipped[k].deny)) == NULL)
			return DUROX_ENOMEM;
		it->outcome = DUROX_OUTCOME_SKIPPED;
		job_tally(r, it);
		r->total_matched++;
	}
	return DUROX_OK;
}
