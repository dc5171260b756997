/*
 * jobs.c - bulk writes as resumable jobs: cancel_instances, raise_event_bulk,
 * purge_instances, prune_executions, restart_instances, and the journal's list, get,
 * report, resume and stop.
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
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/access.h"
#include "engine/ops_internal.h"
#include "util/codec.h"
#include "util/timeutil.h"

#define DEFAULT_BATCH 200
#define RECORD_CHUNK 5000        /* targets journaled per transaction while recording */
#define HEARTBEAT_STALE_MS 60000 /* a running job without heartbeat for this long is orphaned */
#define PROGRESS_EVERY_MS 250
#define BUSY_RETRIES 5
/* A batch's transaction commits early after holding the write lock this long: the runtime's
 * ack retries (10 to 160 ms apart) then meet independent phases of our paced cycle instead of
 * one long transaction (see the pacing note in store/sqlite_ops.c). */
#define MAX_TX_MS 5

/* ---- identity of this process ------------------------------------------------------- */

static void self_owner(char *out, size_t n)
{
	char host[128] = "localhost";
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	snprintf(out, n, "%s:%ld", host, (long)getpid());
}

/* Whether the owner of a running job is alive: same host -> its pid exists (and a
 * heartbeat is recent), other host -> a recent heartbeat. */
static int owner_alive(const char *owner, int64_t heartbeat, int64_t now)
{
	if (owner == NULL || heartbeat == DUROX_NO_TIME || now - heartbeat > HEARTBEAT_STALE_MS)
		return 0;
	const char *colon = strrchr(owner, ':');
	char self[200];
	self_owner(self, sizeof self);
	const char *scolon = strrchr(self, ':');
	if (colon == NULL || scolon == NULL)
		return 1;
	if ((size_t)(colon - owner) != (size_t)(scolon - self) || strncmp(owner, self, (size_t)(colon - owner)) != 0)
		return 1; /* another host: trust the heartbeat */
	long pid = strtol(colon + 1, NULL, 10);
	if (pid <= 0)
		return 0;
	if (pid == (long)getpid())
		return 1;
	if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
		return 0;
	/* a zombie (killed, not yet reaped by its parent) is dead too */
	char path[64], st[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 1;
	size_t n = fread(st, 1, sizeof st - 1, f);
	fclose(f);
	st[n] = '\0';
	const char *paren = strrchr(st, ')');
	return !(paren != NULL && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

static int is_self(const char *owner)
{
	char self[200];
	self_owner(self, sizeof self);
	return owner != NULL && strcmp(owner, self) == 0;
}

/* The state shown to users: a running/resolving job whose process is gone is reported as
 * interrupted/abandoned. */
static const char *shown_state(const store_job *j, int64_t now, int *active)
{
	int alive = owner_alive(j->owner, j->heartbeat_at, now);
	*active = 0;
	if (strcmp(j->state, "running") == 0) {
		*active = alive;
		return alive ? "running" : "interrupted";
	}
	if (strcmp(j->state, "resolving") == 0) {
		*active = alive;
		return alive ? "resolving" : "abandoned";
	}
	return j->state;
}

/* ---- a job row copied out of the store ----------------------------------------------- */

typedef struct job_copy {
	store_job j;
	arena mem;
	int found;
	int rc;
} job_copy;

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
static int load_job(durox *dx, int64_t id, job_copy *c)
{
	arena_release(&c->mem);
	c->found = 0;
	c->rc = DUROX_OK;
	int rc = dx->st->ops->job_list(dx->st, id, NULL, NULL, 1, copy_job_cb, c);
	if (rc != DUROX_OK)
		return c->rc != DUROX_OK ? dx_fail(dx, c->rc, "out of memory") : dx_store_fail(dx, rc);
	return DUROX_OK;
}

/* ---- progress --------------------------------------------------------------------- */

typedef struct runctx {
	durox *dx;
	int kind;
	const durox_bulk_options *o;
	int64_t t0;
	int64_t last_report;
	durox_bulk_progress pr;
} runctx;

/* The audit name of a bulk operation and the hook that decides each of its targets. */
static const char *bulk_operation(int kind)
{
	static const char *const names[OP__COUNT] = {"cancel_instances", "raise_event_bulk", "enqueue_event_bulk",
	                                             "purge_instances",  "prune_executions", "restart_instances"};
	return kind >= 0 && kind < OP__COUNT ? names[kind] : "bulk";
}

static int bulk_hook(int kind)
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

/* Calls the progress callback (always when force, else at most every 250 ms). Returns its
 * answer (0 continue, 1 stop, <0 abort; the message is set for an abort). */
static int report(runctx *rc, int force)
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

/* ---- targets ---------------------------------------------------------------------- */

typedef struct target {
	const char *id;
	const char *deny; /* refused before processing (authorize callback, policy): its message */
	int deny_code;    /* DUROX_EDENIED, or DUROX_ENOTFOUND for an instance the caller may not see */
} target;

typedef struct targets {
	arena mem;
	target *v;
	size_t n, cap;
	/* open-addressing index id -> position (for dedup and mapping summaries back) */
	size_t *slots; /* position + 1; 0 = empty */
	size_t nslots;
} targets;

static void targets_init(targets *t)
{
	memset(t, 0, sizeof *t);
	arena_init(&t->mem);
}

static void targets_free(targets *t)
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
	t->v[t->n].deny_code = DUROX_OK;
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

/* Asks the policy about a target the caller sees: a refusal marks it failed, DENIED, with
 * the message "denied" (the policy's reason goes to the audit log). */
static int police(runctx *rc, target *t, const durox_instance_summary *s, const op_params *p)
{
	if (!access_enabled(rc->dx) || t->deny != NULL)
		return DUROX_OK;
	char why[256];
	int ok = access_ask_instance(rc->dx, bulk_hook(rc->kind), s, p->event_name, why, sizeof why);
	if (ok < 0)
		return ok;
	if (!ok) {
		t->deny = "denied";
		t->deny_code = DUROX_EDENIED;
	}
	return DUROX_OK;
}

/* Marks every target the caller may not see (hidden or missing: the same answer) NOTFOUND. */
static int hide_unseen(runctx *rc, targets *ts, const unsigned char *seen)
{
	for (size_t k = 0; k < ts->n; k++) {
		if (seen[k] || ts->v[k].deny != NULL)
			continue;
		char msg[600];
		snprintf(msg, sizeof msg, "instance '%s' not found", ts->v[k].id);
		ts->v[k].deny = arena_strdup(&ts->mem, msg);
		ts->v[k].deny_code = DUROX_ENOTFOUND;
		if (ts->v[k].deny == NULL)
			return dx_fail(rc->dx, DUROX_ENOMEM, "out of memory");
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

static int authorize(runctx *rc, targets *ts, target *t, const durox_instance_summary *s);

static int seen_cb(void *ud, const durox_instance_summary *s)
{
	seen_ctx *c = ud;
	size_t pos;
	index_find(c->ts, s->instance_id, &pos);
	if (pos == (size_t)-1)
		return 0;
	c->seen[pos] = 1;
	target *t = &c->ts->v[pos];
	if ((c->r = police(c->rc, t, s, c->p)) == DUROX_OK && c->rc->o->authorize != NULL)
		c->r = authorize(c->rc, c->ts, t, s);
	return c->r == DUROX_OK ? 0 : -1;
}

static int resolve_ids(runctx *rc, targets *ts, uint32_t limit, const op_params *p)
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
		int r = access_view_open(dx, bulk_operation(rc->kind), NULL, &v);
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
		if ((r = report(rc, 0)) != 0)
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

static int resolve_filter(runctx *rc, targets *ts, uint32_t limit, const op_params *p)
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
	int r = instance_iter_open(dx, bulk_operation(rc->kind), &req, &it); /* only what the caller sees */
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
		if ((r = police(rc, &ts->v[ts->n - 1], s, p)) != DUROX_OK)
			break;
		if (rc->o->authorize != NULL && ts->v[ts->n - 1].deny == NULL &&
		    (r = authorize(rc, ts, &ts->v[ts->n - 1], s)) != DUROX_OK)
			break;
		rc->pr.total = ts->n;
		int pr = report(rc, 0);
		if (pr != 0) {
			r = pr < 0 ? pr
			           : dx_fail(dx, DUROX_EABORT, "stopped while resolving targets; nothing was done");
			break;
		}
	}
	durox_instance_iter_free(it);
	return r < 0 ? r : DUROX_OK;
}

/* ---- responses ----------------------------------------------------------------------- */

typedef struct bulk_result {
	durox_bulk_response pub;
	arena mem;
	size_t cap;
} bulk_result;

void durox_bulk_response_free(durox_bulk_response *r)
{
	if (r == NULL)
		return;
	bulk_result *br = (bulk_result *)r;
	arena_release(&br->mem);
	free(br);
}

static bulk_result *result_new(int kind, const char *state)
{
	bulk_result *br = calloc(1, sizeof *br);
	if (br == NULL)
		return NULL;
	arena_init(&br->mem);
	br->pub.kind = op_kind_name(kind);
	br->pub.state = state;
	return br;
}

static durox_bulk_item *result_push(bulk_result *br)
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
static void tally(durox_bulk_response *r, const durox_bulk_item *it)
{
	switch (it->outcome) {
	case DUROX_OUTCOME_DONE: r->done++; break;
	case DUROX_OUTCOME_FAILED: r->failed++; break;
	case DUROX_OUTCOME_NO_SUBSCRIPTION: r->no_subscription++; break;
	default: r->pending++;
	}
	r->instances_deleted += it->instances_deleted;
	r->executions_deleted += it->executions_deleted;
	r->events_deleted += it->events_deleted;
	r->queue_messages_deleted += it->queue_messages_deleted;
}

static int outcome_parse(const char *state)
{
	for (int k = 0; k <= DUROX_OUTCOME_NO_SUBSCRIPTION; k++)
		if (strcmp(state, durox_outcome_name(k)) == 0)
			return k;
	return DUROX_OUTCOME_PENDING;
}

static int code_parse(const char *name)
{
	if (name == NULL)
		return DUROX_OK;
	for (int c = DUROX_ENOTFOUND; c >= DUROX_ETIMEOUT; c--)
		if (strcmp(durox_code_name(c), name) == 0)
			return c;
	return DUROX_EIO;
}

/* The JSON journaled as a target's result. */
static const char *result_json(const op_params *p, const op_result *res, buf *b)
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
	durox_bulk_item *it = result_push(c->br);
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
	tally(&c->br->pub, it);
	return 0;
oom:
	c->rc = DUROX_ENOMEM;
	return -1;
}

/* Builds the response of job j from the journal. */
static int build_report(durox *dx, const store_job *j, int64_t elapsed, durox_bulk_response **out)
{
	int active;
	bulk_result *br = result_new(op_kind_parse(j->kind), NULL);
	if (br == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	br->pub.kind = arena_strdup(&br->mem, j->kind);
	br->pub.state = arena_strdup(&br->mem, shown_state(j, time_now_ms(), &active));
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

/* ---- the batch runner ---------------------------------------------------------------- */

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
static int begin_retry(runctx *rc)
{
	durox *dx = rc->dx;
	for (int attempt = 0;; attempt++) {
		int r = dx->st->ops->begin(dx->st);
		if (r == DUROX_OK)
			return r;
		if (r != DUROX_EBUSY || attempt >= BUSY_RETRIES)
			return dx_store_fail(dx, r);
		dx->st->err[0] = '\0';
		op_sleep_ms(100LL << attempt);
		int p = report(rc, 1);
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

/* Moves the job from state `from` to `state` in its own transaction if it is still ours;
 * best effort (the message of dx is kept). */
static void mark_job(runctx *rc, int64_t job_id, const char *from, const char *state, const char *error)
{
	durox *dx = rc->dx;
	char saved[sizeof dx->err];
	snprintf(saved, sizeof saved, "%s", dx->err);
	if (dx->st->ops->begin(dx->st) == DUROX_OK) {
		job_copy jc = {{0}, {0}, 0, DUROX_OK};
		arena_init(&jc.mem);
		int ok = load_job(dx, job_id, &jc) == DUROX_OK && jc.found && is_self(jc.j.owner) &&
		         strcmp(jc.j.state, from) == 0;
		if (ok) {
			jc.j.state = state;
			if (strcmp(state, "abandoned") == 0)
				jc.j.finished_at = time_now_ms();
			jc.j.stop_requested = 0;
			jc.j.last_error = error;
			jc.j.heartbeat_at = time_now_ms();
			ok = dx->st->ops->job_update(dx->st, &jc.j) == DUROX_OK;
		}
		if (ok)
			ok = audit_job_end(dx, &jc.j, state, error, 1) == DUROX_OK;
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
	const char *end = NULL; /* "completed", "stopped" or NULL (interrupted) */
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
				s = report(rc, 0);
			}
		}
		if (s > 0) {
			mark_job(rc, job_id, "running", "stopped", NULL);
			end = "stopped";
			break;
		}
		if (s < 0) {
			r = s;
			break;
		}
		if ((r = begin_retry(rc)) != DUROX_OK)
			break;
		if ((r = load_job(dx, job_id, &jc)) != DUROX_OK || !jc.found) {
			dx->st->ops->rollback(dx->st);
			if (r == DUROX_OK)
				r = dx_fail(dx, DUROX_ENOTFOUND, "job %lld vanished from the journal",
				            (long long)job_id);
			break;
		}
		if (!is_self(jc.j.owner) || strcmp(jc.j.state, "running") != 0) {
			dx->st->ops->rollback(dx->st);
			r = dx_fail(dx, DUROX_ECONFLICT, "job %lld was taken over by %s (state %s)", (long long)job_id,
			            jc.j.owner ? jc.j.owner : "another process", jc.j.state);
			end = "taken";
			break;
		}
		int64_t now = time_now_ms();
		if (jc.j.stop_requested) {
			jc.j.state = "stopped";
			jc.j.stop_requested = 0;
			jc.j.heartbeat_at = now;
			r = dx->st->ops->job_update(dx->st, &jc.j);
			if (r == DUROX_OK && (r = audit_job_end(dx, &jc.j, "stopped", NULL, 1)) != DUROX_OK) {
				dx->st->ops->rollback(dx->st);
				break;
			}
			r = r == DUROX_OK ? dx->st->ops->commit(dx->st) : r;
			if (r != DUROX_OK) {
				dx->st->ops->rollback(dx->st);
				r = dx_store_fail(dx, r);
			} else {
				end = "stopped";
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
			jc.j.state = "completed";
			jc.j.finished_at = now;
			jc.j.heartbeat_at = now;
			r = dx->st->ops->job_update(dx->st, &jc.j);
			if (r == DUROX_OK && (r = audit_job_end(dx, &jc.j, "completed", NULL, 1)) != DUROX_OK) {
				dx->st->ops->rollback(dx->st);
				break;
			}
			r = r == DUROX_OK ? dx->st->ops->commit(dx->st) : r;
			if (r != DUROX_OK) {
				dx->st->ops->rollback(dx->st);
				r = dx_store_fail(dx, r);
			} else {
				end = "completed";
			}
			break;
		}
		/* the batch: act on each target and journal it, all in this transaction, which is
		 * committed early once it has held the write lock for MAX_TX_MS (the rest stays
		 * pending for the next batch) */
		size_t n_done = 0;
		int64_t tx_start = time_mono_ms();
		for (size_t k = 0; k < b.n && r == DUROX_OK; k++) {
			if (k > 0 && time_mono_ms() - tx_start >= MAX_TX_MS)
				break;
			r = op_apply(dx, p, b.v[k].id, now, 1, &res);
			if (r != DUROX_OK)
				break;
			store_target t = {b.v[k].seq,
			                  b.v[k].id,
			                  durox_outcome_name(res.outcome),
			                  res.outcome == DUROX_OUTCOME_FAILED ? durox_code_name(res.code) : NULL,
			                  res.message.len > 0 ? res.message.data : NULL,
			                  result_json(p, &res, &rj)};
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
		s = report(rc, 1);
		if (s > 0) {
			mark_job(rc, job_id, "running", "stopped", NULL);
			end = "stopped";
			break;
		}
		if (s < 0) {
			r = s;
			break;
		}
	}
	if (end == NULL) {
		char msg[sizeof dx->err];
		snprintf(msg, sizeof msg, "%s", dx->err);
		mark_job(rc, job_id, "running", "interrupted", msg);
		dx_fail(dx, r, "job %lld interrupted: %s; resume it with resume_job(%lld)", (long long)job_id, msg,
		        (long long)job_id);
	}
	arena_release(&jc.mem);
	arena_release(&b.mem);
	buf_free(&rj);
	op_result_free(&res);
	return end != NULL && strcmp(end, "taken") != 0 ? DUROX_OK : r;
}

/* Runs job_id to its end and builds the response from the journal. */
static int run_and_report(runctx *rc, int64_t job_id, const op_params *p, uint32_t batch_size, double rate,
                          durox_bulk_response **out)
{
	durox *dx = rc->dx;
	int r = run_job(rc, job_id, p, batch_size, rate);
	if (r != DUROX_OK)
		return r;
	job_copy jc = {{0}, {0}, 0, DUROX_OK};
	arena_init(&jc.mem);
	r = load_job(dx, job_id, &jc);
	if (r == DUROX_OK && !jc.found)
		r = dx_fail(dx, DUROX_ENOTFOUND, "job %lld vanished from the journal", (long long)job_id);
	if (r == DUROX_OK)
		r = build_report(dx, &jc.j, time_mono_ms() - rc->t0, out);
	arena_release(&jc.mem);
	return r;
}

/* ---- starting a bulk operation --------------------------------------------------------- */

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
	uint64_t denied = 0, unseen = 0;
	for (size_t k = 0; k < ts->n; k++) {
		denied += ts->v[k].deny != NULL && ts->v[k].deny_code == DUROX_EDENIED;
		unseen += ts->v[k].deny != NULL && ts->v[k].deny_code == DUROX_ENOTFOUND;
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
	buf_addf(&result, "{\"job_id\":%lld,\"matched\":%zu,\"denied\":%llu,\"not_found\":%llu}", (long long)job_id,
	         ts->n, (unsigned long long)denied, (unsigned long long)unseen);
	audit_entry e = {bulk_operation(p->kind),
	                 desc,
	                 "allow",
	                 NULL,
	                 buf_oom(&params) ? NULL : params.data,
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
	self_owner(owner, sizeof owner);
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
	j.state = ts->n <= RECORD_CHUNK ? "running" : "resolving";
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
	int r = buf_oom(&req) || buf_oom(&desc) || chunk == NULL ? dx_fail(dx, DUROX_ENOMEM, "out of memory")
	                                                         : DUROX_OK;
	size_t next = 0;
	int first = 1;
	while (r == DUROX_OK && (first || next < ts->n)) {
		if ((r = begin_retry(rc)) != DUROX_OK)
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
		if (r == DUROX_OK && last && strcmp(j.state, "resolving") == 0) {
			j.state = "running";
			j.heartbeat_at = time_now_ms();
			r = dx->st->ops->job_update(dx->st, &j);
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
		int s = report(rc, 0);
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

/* Classifies every target without writing (dry run). */
static int dry_run(runctx *rc, const op_params *p, const targets *ts, durox_bulk_response **out)
{
	durox *dx = rc->dx;
	bulk_result *br = result_new(p->kind, "dry_run");
	if (br == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	br->pub.dry_run = 1;
	op_result res;
	op_result_init(&res);
	int r = DUROX_OK;
	int64_t now = time_now_ms();
	rc->pr.phase = "running";
	for (size_t k = 0; k < ts->n && r == DUROX_OK; k++) {
		durox_bulk_item *it = result_push(br);
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
		tally(&br->pub, it);
		rc->pr.done = br->pub.done;
		rc->pr.failed = br->pub.failed;
		rc->pr.no_subscription = br->pub.no_subscription;
		int s = report(rc, 0);
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
	targets_init(&ts);
	r = o->instances != NULL ? resolve_ids(&rc, &ts, limit, p) : resolve_filter(&rc, &ts, limit, p);
	size_t actionable = 0;
	for (size_t k = 0; r == DUROX_OK && k < ts.n; k++)
		actionable += ts.v[k].deny == NULL;
	if (r == DUROX_OK && o->dry_run) {
		r = dry_run(&rc, p, &ts, out);
	} else if (r == DUROX_OK && actionable == 0) {
		/* nothing to act on (no target, or every one refused): no job; the refusals are the
		 * response and the attempt is recorded */
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
		targets_free(&ts);
		targets_init(&ts);
		if (r != DUROX_OK && job_id != 0)
			mark_job(&rc, job_id, "resolving", "abandoned", durox_errmsg(dx));
		if (r == DUROX_OK)
			r = run_and_report(&rc, job_id, p, o->batch_size, o->rate, out);
	}
	targets_free(&ts);
	return r;
}

static durox_bulk_options no_options;

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

/* ---- the journal: list, get, report, resume, stop ---------------------------------------- */

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
	const char *state = shown_state(j, r->now, &active);
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
	rc = load_job(dx, job_id, &jc);
	if (rc == DUROX_OK && !jc.found)
		rc = dx_fail(dx, DUROX_ENOTFOUND, "job %lld not found", (long long)job_id);
	if (rc == DUROX_OK)
		rc = build_report(dx, &jc.j, 0, out);
	arena_release(&jc.mem);
	return rc;
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
static int police_pending(runctx *rc, int64_t job_id, const op_params *p)
{
	durox *dx = rc->dx;
	if (!access_enabled(dx))
		return DUROX_OK;
	pending_ctx c;
	memset(&c, 0, sizeof c);
	targets_init(&c.ts);
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
			r = access_view_open(dx, "resume_job", NULL, &v);
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
		if ((r = begin_retry(rc)) == DUROX_OK) {
			r = load_job(dx, job_id, &jc);
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
	targets_free(&c.ts);
	return r;
}

int durox_job_resume(durox *dx, int64_t job_id, const durox_bulk_options *opts, durox_bulk_response **out)
{
	*out = NULL;
	dx_clear(dx);
	if (opts == NULL)
		opts = &no_options;
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
	if ((rc = begin_retry(&run)) != DUROX_OK)
		return rc;
	job_copy jc = {{0}, {0}, 0, DUROX_OK};
	arena_init(&jc.mem);
	rc = load_job(dx, job_id, &jc);
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
		int alive = owner_alive(j->owner, j->heartbeat_at, now) && !is_self(j->owner);
		if (strcmp(j->state, "completed") == 0) {
			finished = 1;
		} else if (strcmp(j->state, "abandoned") == 0) {
			rc = dx_fail(dx, DUROX_ECONFLICT,
			             "job %lld was interrupted while its targets were being recorded; nothing was "
			             "done; start "
			             "the operation again",
			             (long long)job_id);
		} else if (strcmp(j->state, "resolving") == 0) {
			if (alive) {
				rc = dx_fail(dx, DUROX_ECONFLICT,
				             "job %lld is still recording its targets in process %s", (long long)job_id,
				             j->owner);
			} else {
				jc.j.state = "abandoned";
				jc.j.finished_at = now;
				commit = dx->st->ops->job_update(dx->st, &jc.j) == DUROX_OK;
				rc = dx_fail(dx, DUROX_ECONFLICT,
				             "job %lld was interrupted while its targets were being recorded; nothing "
				             "was done; "
				             "start the operation again",
				             (long long)job_id);
			}
		} else if (strcmp(j->state, "running") == 0 && alive) {
			rc = dx_fail(dx, DUROX_ECONFLICT, "job %lld is running in process %s; stop it or wait for it",
			             (long long)job_id, j->owner);
		} else if (op_params_from_json(&pmem, j->kind, j->request, &p) != 0) {
			rc = dx_fail(dx, DUROX_ECORRUPT, "job %lld has an unreadable request in the journal",
			             (long long)job_id);
		} else {
			char owner[200];
			self_owner(owner, sizeof owner);
			jc.j.state = "running";
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
			rc = dx->st->ops->job_update(dx->st, &jc.j);
			if (rc != DUROX_OK)
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
		rc = build_report(dx, &jc.j, time_mono_ms() - run.t0, out);
	} else if (rc == DUROX_OK) {
		run.kind = p.kind;
		run.pr.total = jc.j.total;
		/* the resuming caller's policy decides the targets still pending */
		rc = police_pending(&run, job_id, &p);
		if (rc == DUROX_OK)
			rc = run_and_report(&run, job_id, &p, jc.j.batch_size, jc.j.rate, out);
		else
			mark_job(&run, job_id, "running", "interrupted", durox_errmsg(dx));
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
	rc = load_job(dx, job_id, &jc);
	if (rc == DUROX_OK && !jc.found)
		rc = dx_fail(dx, DUROX_ENOTFOUND, "job %lld not found", (long long)job_id);
	const char *result = NULL;
	if (rc == DUROX_OK) {
		int active;
		const char *shown = shown_state(&jc.j, time_now_ms(), &active);
		if (strcmp(shown, "completed") == 0 || strcmp(shown, "abandoned") == 0) {
			rc = dx_fail(dx, DUROX_ECONFLICT, "job %lld already ended (%s)", (long long)job_id, shown);
		} else if (strcmp(shown, "stopped") == 0) {
			result = "stopped";
		} else if (active) {
			jc.j.stop_requested = 1;
			result = "stopping";
		} else {
			jc.j.state = strcmp(jc.j.state, "resolving") == 0 ? "abandoned" : "stopped";
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
