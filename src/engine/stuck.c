/*
 * stuck.c - find_stuck_instances: running instances (and instances that do not exist but
 * have queued messages) that make no progress, each with its evidence: queue items near or
 * past the poison limit, expired locks, overdue timers, activities nobody picked up,
 * orchestrator messages nobody processed, event subscriptions open too long, and messages
 * addressed to instances that do not exist (on SQLite they block the orchestrator queue).
 * Relies on the provider's problem rows and on history.c's analysis for event waits.
 * Used by the Lua binding.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "engine/metrics_internal.h"
#include "util/hmap.h"
#include "util/timeutil.h"

static const char *const reason_names[DUROX_STUCK__COUNT] = {
        "poison_risk",      "expired_lock",     "overdue_timer",  "unpicked_activity",
        "stalled_messages", "waiting_on_event", "orphan_messages"};

const char *durox_stuck_reason_name(int reason)
{
	return reason >= 0 && reason < DUROX_STUCK__COUNT ? reason_names[reason] : NULL;
}

void durox_stuck_request_init(durox_stuck_request *r)
{
	memset(r, 0, sizeof *r);
	r->now = DUROX_NO_TIME;
	r->stall_threshold_ms = r->timer_overdue_ms = r->event_wait_threshold_ms = -1;
}

typedef struct stuck_result {
	durox_stuck_list pub;
	arena mem;
} stuck_result;

void durox_stuck_list_free(durox_stuck_list *l)
{
	if (l == NULL)
		return;
	stuck_result *r = (stuck_result *)l;
	arena_release(&r->mem);
	free(r);
}

/* ---- collection --------------------------------------------------------------------- */

typedef struct ev_node {
	durox_stuck_evidence ev;
	struct ev_node *next;
} ev_node;

typedef struct inst_acc {
	const char *id, *name;
	int status;
	int64_t since;
	size_t n;
	ev_node *head, *tail;
	int seen; /* visible to the caller (keep_visible) */
} inst_acc;

typedef struct collector {
	durox *dx;
	arena *a;
	hmap index; /* instance id -> position in accs */
	inst_acc *accs;
	size_t n, cap;
	int64_t now;
	uint32_t max_attempts;
	int rc;
} collector;

/* "3m 20s" */
static void fmt_dur(char *out, size_t n, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	if (ms < 1000)
		snprintf(out, n, "%lldms", (long long)ms);
	else if (ms < 60000)
		snprintf(out, n, "%llds", (long long)(ms / 1000));
	else if (ms < 3600000)
		snprintf(out, n, "%lldm %llds", (long long)(ms / 60000), (long long)(ms % 60000 / 1000));
	else if (ms < 86400000)
		snprintf(out, n, "%lldh %lldm", (long long)(ms / 3600000), (long long)(ms % 3600000 / 60000));
	else
		snprintf(out, n, "%lldd %lldh", (long long)(ms / 86400000), (long long)(ms % 86400000 / 3600000));
}

static inst_acc *acc_for(collector *c, const char *id, const char *name, int status)
{
	int created;
	hmap_entry *e = hmap_put(&c->index, id, strlen(id), &created);
	if (e == NULL)
		return NULL;
	if (!created)
		return &c->accs[e->a];
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 32;
		inst_acc *na = realloc(c->accs, ncap * sizeof *na);
		if (na == NULL) {
			hmap_del(&c->index, id, strlen(id));
			return NULL;
		}
		c->accs = na;
		c->cap = ncap;
	}
	inst_acc *acc = &c->accs[c->n];
	memset(acc, 0, sizeof *acc);
	acc->id = arena_strdup(c->a, id);
	acc->name = name ? arena_strdup(c->a, name) : NULL;
	acc->status = status;
	acc->since = INT64_MAX;
	if (acc->id == NULL || (name && acc->name == NULL))
		return NULL;
	e->a = (int64_t)c->n++;
	return acc;
}

static int add_evidence(collector *c, const char *id, const char *name, int status, const durox_stuck_evidence *ev)
{
	inst_acc *acc = acc_for(c, id, name, status);
	ev_node *node = acc ? arena_calloc(c->a, 1, sizeof *node) : NULL;
	if (node == NULL) {
		c->rc = DUROX_ENOMEM;
		return -1;
	}
	node->ev = *ev;
	if (ev->message && (node->ev.message = arena_strdup(c->a, ev->message)) == NULL)
		goto oom;
	if (ev->detail && (node->ev.detail = arena_strdup(c->a, ev->detail)) == NULL)
		goto oom;
	if (acc->tail)
		acc->tail->next = node;
	else
		acc->head = node;
	acc->tail = node;
	acc->n++;
	if (ev->since < acc->since)
		acc->since = ev->since;
	return 0;
oom:
	c->rc = DUROX_ENOMEM;
	return -1;
}

/* The work item's variant; for activities their name and tag; for a start, the orchestration. */
static void item_kind(arena *scratch, const char *work_item, const char **kind, const char **activity, const char **tag,
                      const char **orchestration)
{
	*kind = *activity = *tag = *orchestration = NULL;
	json *root = json_parse(scratch, work_item, strlen(work_item), NULL, 0);
	const json *v = json_first(root);
	if (v == NULL)
		return;
	*kind = arena_strndup(scratch, v->key, v->keylen);
	if (v->keylen == 15 && memcmp(v->key, "ActivityExecute", 15) == 0) {
		*activity = json_get_str(v, "name");
		*tag = json_get_str(v, "tag");
	} else if (v->keylen == 18 && memcmp(v->key, "StartOrchestration", 18) == 0) {
		*orchestration = json_get_str(v, "orchestration");
	}
}

static int item_cb(void *ud, const store_queue_item *it)
{
	collector *c = ud;
	const char *status_text = it->status;
	/* no instance yet: Pending when its start is queued (not an orphan), else NotFound */
	int status = status_text                ? durox_status_parse(status_text)
	             : it->instance_exists      ? DUROX_STATUS_UNKNOWN
	             : !(it->flags & QF_ORPHAN) ? DUROX_STATUS_PENDING
	                                        : DUROX_STATUS_NOT_FOUND;
	if (status < 0)
		status = DUROX_STATUS_UNKNOWN;
	/* the messages of finished instances are acknowledged without processing: not stuck */
	if (it->instance_exists && status != DUROX_STATUS_RUNNING && status != DUROX_STATUS_CONTINUED_AS_NEW)
		return 0;
	arena scratch;
	arena_init(&scratch);
	const char *kind, *activity, *tag, *orchestration;
	item_kind(&scratch, it->work_item, &kind, &activity, &tag, &orchestration);
	/* an instance not created yet (its start queued): the name its start asks for */
	const char *name = it->orchestration_name ? it->orchestration_name : orchestration;
	const char *queue = it->worker ? "worker" : "orchestrator";
	char what[300], msg[512], d1[48];
	if (activity)
		snprintf(what, sizeof what, "activity '%s' (worker item %lld%s%s)", activity, (long long)it->id,
		         tag ? ", tag " : "", tag ? tag : "");
	else
		snprintf(what, sizeof what, "%s (%s item %lld)", kind ? kind : "work item", queue, (long long)it->id);
	const char *detail = activity ? activity : kind;
	int rc = 0;
	durox_stuck_evidence ev = {0, msg, 0, queue, it->id, it->attempt_count, detail, 0};
	if (it->flags & QF_ORPHAN) {
		ev.reason = DUROX_STUCK_ORPHAN_MESSAGES;
		ev.since = it->created_at != DUROX_NO_TIME ? it->created_at : it->visible_at;
		ev.blocks_queue = (it->flags & QF_BLOCKING) != 0;
		snprintf(msg, sizeof msg, "%s is addressed to an instance that does not exist%s", what,
		         ev.blocks_queue ? "; it blocks the orchestrator queue" : "");
		rc = add_evidence(c, it->instance_id, NULL, DUROX_STATUS_NOT_FOUND, &ev);
	}
	if (rc == 0 && (it->flags & QF_POISON_RISK)) {
		ev.reason = DUROX_STUCK_POISON_RISK;
		ev.blocks_queue = 0;
		ev.since = it->created_at != DUROX_NO_TIME ? it->created_at : it->visible_at;
		if ((uint64_t)it->attempt_count >= c->max_attempts)
			snprintf(msg, sizeof msg,
			         "%s was fetched %lld times: its next delivery poisons it (max_attempts %u)", what,
			         (long long)it->attempt_count, (unsigned)c->max_attempts);
		else
			snprintf(msg, sizeof msg, "%s was fetched %lld times (poisoned after %u)", what,
			         (long long)it->attempt_count, (unsigned)c->max_attempts);
		rc = add_evidence(c, it->instance_id, name, status, &ev);
	}
	if (rc == 0 && (it->flags & QF_EXPIRED_LOCK)) {
		ev.reason = DUROX_STUCK_EXPIRED_LOCK;
		ev.since = it->locked_until;
		fmt_dur(d1, sizeof d1, c->now - it->locked_until);
		if (it->worker)
			snprintf(msg, sizeof msg, "the lock on %s expired %s ago (its worker stopped)", what, d1);
		else
			snprintf(msg, sizeof msg,
			         "its instance lock expired %s ago with %s unprocessed (the turn was interrupted)", d1,
			         what);
		rc = add_evidence(c, it->instance_id, name, status, &ev);
	}
	if (rc == 0 && (it->flags & QF_OVERDUE_TIMER)) {
		ev.reason = DUROX_STUCK_OVERDUE_TIMER;
		ev.since = it->visible_at;
		fmt_dur(d1, sizeof d1, c->now - it->visible_at);
		snprintf(msg, sizeof msg, "timer (orchestrator item %lld) due %s ago has not fired", (long long)it->id,
		         d1);
		rc = add_evidence(c, it->instance_id, name, status, &ev);
	}
	if (rc == 0 && (it->flags & QF_STALLED)) {
		int64_t avail = it->visible_at;
		if (it->lock_state == LOCK_EXPIRED && it->locked_until > avail)
			avail = it->locked_until;
		ev.since = avail;
		fmt_dur(d1, sizeof d1, c->now - avail);
		if (it->worker) {
			ev.reason = DUROX_STUCK_UNPICKED_ACTIVITY;
			snprintf(msg, sizeof msg, "%s has waited %s for a worker", what, d1);
		} else {
			ev.reason = DUROX_STUCK_STALLED_MESSAGES;
			snprintf(msg, sizeof msg, "%s has waited %s for the orchestrator", what, d1);
		}
		rc = add_evidence(c, it->instance_id, name, status, &ev);
	}
	arena_release(&scratch);
	return rc;
}

/* Expired instance locks of running instances (the row evidence covers locks with messages;
 * this adds locks whose messages are gone). */
static int lock_cb(void *ud, const store_lock_row *l)
{
	collector *c = ud;
	int status = l->status ? durox_status_parse(l->status) : DUROX_STATUS_NOT_FOUND;
	if (status != DUROX_STATUS_RUNNING && status != DUROX_STATUS_CONTINUED_AS_NEW)
		return 0;
	hmap_entry *e = hmap_get(&c->index, l->instance_id, strlen(l->instance_id));
	if (e != NULL) {
		for (ev_node *n = c->accs[e->a].head; n; n = n->next)
			if (n->ev.reason == DUROX_STUCK_EXPIRED_LOCK && strcmp(n->ev.queue, "orchestrator") == 0)
				return 0;
	}
	char msg[256], d1[48];
	fmt_dur(d1, sizeof d1, c->now - l->locked_until);
	snprintf(msg, sizeof msg, "its instance lock expired %s ago (the turn was interrupted)", d1);
	durox_stuck_evidence ev = {DUROX_STUCK_EXPIRED_LOCK, msg, l->locked_until, "orchestrator", -1, -1, NULL, 0};
	return add_evidence(c, l->instance_id, l->orchestration_name, status, &ev);
}

/* Event waits. The store streams every event of the running instances whose last event is
 * older than the wait, an instance's events together; each instance is analysed as its events
 * end (as get_instance_details would) and reported for every subscription open longer than the
 * wait, unless a pending timer will wake it. Should the rows of an instance not come together
 * or in order, its verdict is dropped and it is read again on its own afterwards. */
typedef struct wait_verdict {
	char *id, *name, *event;
	int64_t since;
	int queue;
} wait_verdict;

typedef struct wait_scan {
	collector *c;
	int64_t wait_ms;
	arena rows_mem; /* the current instance's rows */
	store_event_row *rows;
	size_t n, cap;
	char *id, *name; /* the current instance (malloc'd) */
	uint64_t execution_id;
	uint64_t last_event_id;
	int out_of_order;
	hmap seen;       /* instances analysed; b = 1 when they must be read again */
	wait_verdict *v; /* verdicts, applied once the scan is over */
	size_t nv, capv;
	int rc;
} wait_scan;

/* Records the verdicts of one analysed instance. */
static int judge_waits(wait_scan *w, const char *id, const char *name, exec_analysis *ea)
{
	int64_t now = w->c->now;
	for (size_t t = 0; t < ea->pending.n_pending_timers; t++)
		if (ea->pending.pending_timers[t].fire_at > now)
			return DUROX_OK;
	for (size_t e = 0; e < ea->pending.n_pending_events; e++) {
		const durox_pending_event *pe = &ea->pending.pending_events[e];
		if (pe->subscribed_at > now - w->wait_ms)
			continue;
		if (w->nv == w->capv) {
			size_t ncap = w->capv ? w->capv * 2 : 64;
			wait_verdict *nv = realloc(w->v, ncap * sizeof *nv);
			if (nv == NULL)
				return DUROX_ENOMEM;
			w->v = nv;
			w->capv = ncap;
		}
		wait_verdict *v = &w->v[w->nv];
		v->id = strdup(id);
		v->name = name ? strdup(name) : NULL;
		v->event = strdup(pe->name ? pe->name : "");
		v->since = pe->subscribed_at;
		v->queue = pe->queue;
		if (v->id == NULL || (name && v->name == NULL) || v->event == NULL) {
			free(v->id);
			free(v->name);
			free(v->event);
			return DUROX_ENOMEM;
		}
		w->nv++;
	}
	return DUROX_OK;
}

/* Analyses the buffered instance (or marks it to be read again). */
static int flush_instance(wait_scan *w)
{
	if (w->id == NULL)
		return DUROX_OK;
	int rc = DUROX_OK, created;
	hmap_entry *e = hmap_put(&w->seen, w->id, strlen(w->id), &created);
	if (e == NULL) {
		rc = DUROX_ENOMEM;
	} else if (!created || w->out_of_order) {
		e->b = 1; /* rows in two runs, or out of order: read it again on its own */
	} else {
		arena a;
		arena_init(&a);
		exec_analysis ea;
		rc = analyse_rows(w->c->dx, &a, w->id, w->execution_id, w->rows, w->n, 1, &ea);
		if (rc == DUROX_OK)
			rc = judge_waits(w, w->id, w->name, &ea);
		arena_release(&a);
	}
	free(w->id);
	free(w->name);
	w->id = w->name = NULL;
	arena_release(&w->rows_mem);
	w->rows = NULL;
	w->n = w->cap = 0;
	w->out_of_order = 0;
	return rc;
}

static int wait_row_cb(void *ud, const store_idle_row *r, const store_event_row *ev)
{
	wait_scan *w = ud;
	if (w->id == NULL || strcmp(w->id, r->instance_id) != 0) {
		if ((w->rc = flush_instance(w)) != DUROX_OK)
			return -1;
		w->id = strdup(r->instance_id);
		w->name = r->orchestration_name ? strdup(r->orchestration_name) : NULL;
		if (w->id == NULL || (r->orchestration_name && w->name == NULL)) {
			w->rc = DUROX_ENOMEM;
			return -1;
		}
		w->execution_id = r->execution_id;
		w->last_event_id = 0;
	}
	if (ev->event_id <= w->last_event_id)
		w->out_of_order = 1;
	w->last_event_id = ev->event_id;
	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 32;
		store_event_row *nr = arena_alloc(&w->rows_mem, ncap * sizeof *nr);
		if (nr == NULL) {
			w->rc = DUROX_ENOMEM;
			return -1;
		}
		if (w->n)
			memcpy(nr, w->rows, w->n * sizeof *nr);
		w->rows = nr;
		w->cap = ncap;
	}
	store_event_row *d = &w->rows[w->n++];
	*d = *ev;
	d->event_type = ev->event_type ? arena_strdup(&w->rows_mem, ev->event_type) : NULL;
	d->data = arena_strndup(&w->rows_mem, ev->data, ev->data_len);
	if (d->data == NULL || (ev->event_type && d->event_type == NULL)) {
		w->rc = DUROX_ENOMEM;
		return -1;
	}
	return 0;
}

static int add_wait(collector *c, const char *id, const char *name, const char *event, int64_t since, int queue)
{
	char msg[300], d1[48];
	fmt_dur(d1, sizeof d1, c->now - since);
	snprintf(msg, sizeof msg, "has waited %s for %s '%s'", d1, queue ? "a message on queue" : "event", event);
	durox_stuck_evidence ev = {DUROX_STUCK_WAITING_EVENT, msg, since, NULL, -1, -1, event, 0};
	return add_evidence(c, id, name, DUROX_STATUS_RUNNING, &ev) == 0 ? DUROX_OK : c->rc;
}

static int check_event_waits(collector *c, int64_t wait_ms)
{
	wait_scan w;
	memset(&w, 0, sizeof w);
	w.c = c;
	w.wait_ms = wait_ms;
	arena_init(&w.rows_mem);
	hmap_init(&w.seen);
	int rc = c->dx->st->mvt->idle_running(c->dx->st, c->now - wait_ms, wait_row_cb, &w);
	if (rc == DUROX_OK && w.rc == DUROX_OK)
		w.rc = flush_instance(&w);
	if (rc != DUROX_OK || w.rc != DUROX_OK)
		rc = w.rc != DUROX_OK ? dx_fail(c->dx, w.rc, "out of memory") : dx_store_fail(c->dx, rc);
	/* the verdicts of the instances read in one piece */
	for (size_t k = 0; k < w.nv && rc == DUROX_OK; k++) {
		hmap_entry *e = hmap_get(&w.seen, w.v[k].id, strlen(w.v[k].id));
		if (e != NULL && e->b)
			continue;
		rc = add_wait(c, w.v[k].id, w.v[k].name, w.v[k].event, w.v[k].since, w.v[k].queue);
	}
	/* the others, one by one */
	for (size_t i = 0; i < w.seen.cap && rc == DUROX_OK; i++) {
		hmap_entry *e = &w.seen.slots[i];
		if (e->key == NULL || !e->b)
			continue;
		int exists;
		uint64_t current;
		if ((rc = c->dx->st->vt->instance_exists(c->dx->st, e->key, &exists, &current)) != DUROX_OK) {
			rc = dx_store_fail(c->dx, rc);
			break;
		}
		if (!exists)
			continue;
		arena a;
		arena_init(&a);
		exec_analysis ea;
		size_t before = w.nv;
		rc = analyse_execution(c->dx, &a, e->key, current, 1, &ea);
		if (rc == DUROX_OK)
			rc = judge_waits(&w, e->key, NULL, &ea);
		for (size_t k = before; k < w.nv && rc == DUROX_OK; k++)
			rc = add_wait(c, w.v[k].id, w.v[k].name, w.v[k].event, w.v[k].since, w.v[k].queue);
		arena_release(&a);
	}
	for (size_t k = 0; k < w.nv; k++) {
		free(w.v[k].id);
		free(w.v[k].name);
		free(w.v[k].event);
	}
	free(w.v);
	free(w.id);
	free(w.name);
	arena_release(&w.rows_mem);
	hmap_free(&w.seen);
	return rc;
}

static int cmp_acc(const void *x, const void *y)
{
	const inst_acc *a = x, *b = y;
	if (a->since != b->since)
		return a->since < b->since ? -1 : 1;
	return strcmp(a->id, b->id);
}

static int mark_seen_cb(void *ud, const durox_instance_summary *s)
{
	collector *c = ud;
	hmap_entry *e = hmap_get(&c->index, s->instance_id, strlen(s->instance_id));
	if (e != NULL)
		c->accs[e->a].seen = 1;
	return 0;
}

/* Under a policy: keeps the instances the caller may see (the view's filter in the store,
 * can_view_instance per row); messages for instances that do not exist are shown to no
 * restricted caller, since no policy can judge them. Before the limit, so nothing hidden
 * counts towards it or towards truncated. */
static int keep_visible(collector *c)
{
	durox *dx = c->dx;
	const char **ids = calloc(c->n ? c->n : 1, sizeof *ids);
	if (ids == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	for (size_t k = 0; k < c->n; k++) {
		ids[k] = c->accs[k].id;
		c->accs[k].seen = 0;
	}
	access_view v;
	int rc = access_view_open(dx, "find_stuck_instances", NULL, &v);
	if (rc == DUROX_OK)
		rc = access_visible_by_id(&v, ids, c->n, mark_seen_cb, c);
	access_view_close(&v);
	free(ids);
	if (rc != DUROX_OK)
		return rc;
	size_t m = 0;
	for (size_t k = 0; k < c->n; k++)
		if (c->accs[k].seen)
			c->accs[m++] = c->accs[k];
	c->n = m;
	return DUROX_OK;
}

int durox_find_stuck_instances(durox *dx, const durox_stuck_request *req, durox_stuck_list **out)
{
	*out = NULL;
	dx_clear(dx);
	if (dx->st->mvt == NULL)
		return dx_fail(dx, DUROX_EUNSUPPORTED, "the %s provider does not support find_stuck_instances",
		               dx->st->info.provider);
	durox_stuck_request r;
	durox_stuck_request_init(&r);
	if (req != NULL)
		r = *req;
	int64_t now = r.now != DUROX_NO_TIME ? r.now : time_now_ms();
	store_queue_params p;
	metrics_queue_params(dx, now, &p);
	if (r.stall_threshold_ms >= 0)
		p.stall_ms = r.stall_threshold_ms;
	if (r.timer_overdue_ms >= 0)
		p.timer_overdue_ms = r.timer_overdue_ms;
	if (r.max_attempts > 0)
		p.max_attempts = r.max_attempts;
	if (r.near_poison_attempts > 0)
		p.near_poison = r.near_poison_attempts;
	if (p.near_poison > p.max_attempts)
		return dx_fail(dx, DUROX_EINVALID, "near_poison_attempts (%u) exceeds max_attempts (%u)", p.near_poison,
		               p.max_attempts);
	int64_t wait_ms = r.event_wait_threshold_ms >= 0 ? r.event_wait_threshold_ms : dx->cfg.event_wait_threshold_ms;
	uint32_t limit = r.limit > 0 ? r.limit : dx->cfg.max_list_instances;

	stuck_result *res = calloc(1, sizeof *res);
	if (res == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena_init(&res->mem);
	collector c = {dx, &res->mem, {0}, NULL, 0, 0, now, p.max_attempts, DUROX_OK};
	hmap_init(&c.index);
	int rc = dx->st->mvt->problem_items(dx->st, &p, item_cb, &c);
	if (rc == DUROX_OK && c.rc == DUROX_OK)
		rc = dx->st->mvt->expired_locks(dx->st, now - p.stall_ms, lock_cb, &c);
	if (rc != DUROX_OK || c.rc != DUROX_OK) {
		rc = c.rc != DUROX_OK ? dx_fail(dx, c.rc, "out of memory") : dx_store_fail(dx, rc);
		goto fail;
	}
	if ((rc = check_event_waits(&c, wait_ms)) != DUROX_OK)
		goto fail;
	if (access_enabled(dx) && (rc = keep_visible(&c)) != DUROX_OK)
		goto fail;
	if (c.n > 1)
		qsort(c.accs, c.n, sizeof *c.accs, cmp_acc);
	size_t n = c.n > limit ? limit : c.n;
	durox_stuck_instance *items = arena_calloc(&res->mem, n ? n : 1, sizeof *items);
	if (items == NULL) {
		rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t k = 0; k < n; k++) {
		inst_acc *acc = &c.accs[k];
		durox_stuck_instance *it = &items[k];
		it->instance_id = acc->id;
		it->orchestration_name = acc->name;
		it->status = acc->status;
		it->since = acc->since;
		it->n_reasons = acc->n;
		it->reasons = arena_calloc(&res->mem, acc->n, sizeof *it->reasons);
		if (it->reasons == NULL) {
			rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
			goto fail;
		}
		size_t j = 0;
		for (ev_node *e = acc->head; e; e = e->next)
			it->reasons[j++] = e->ev;
	}
	res->pub.items = items;
	res->pub.count = n;
	res->pub.truncated = c.n > limit;
	res->pub.now = now;
	hmap_free(&c.index);
	free(c.accs);
	*out = &res->pub;
	return DUROX_OK;
fail:
	hmap_free(&c.index);
	free(c.accs);
	durox_stuck_list_free(&res->pub);
	return rc;
}
