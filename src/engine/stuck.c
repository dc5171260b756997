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

#include "engine/metrics_internal.h"
#include "util/hmap.h"
#include "util/timeutil.h"

static const char *const reason_names[DUROX_STUCK__COUNT] = {
	"poison_risk", "expired_lock", "overdue_timer", "unpicked_activity", "stalled_messages", "waiting_on_event",
	"orphan_messages"};

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
	int status = status_text ? durox_status_parse(status_text)
	                         : it->instance_exists ? DUROX_STATUS_UNKNOWN : DUROX_STATUS_NOT_FOUND;
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
			snprintf(msg, sizeof msg, "%s was fetched %lld times: its next delivery poisons it (max_attempts %u)", what,
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
			snprintf(msg, sizeof msg, "its instance lock expired %s ago with %s unprocessed (the turn was interrupted)",
			         d1, what);
		rc = add_evidence(c, it->instance_id, name, status, &ev);
	}
	if (rc == 0 && (it->flags & QF_OVERDUE_TIMER)) {
		ev.reason = DUROX_STUCK_OVERDUE_TIMER;
		ev.since = it->visible_at;
		fmt_dur(d1, sizeof d1, c->now - it->visible_at);
		snprintf(msg, sizeof msg, "timer (orchestrator item %lld) due %s ago has not fired", (long long)it->id, d1);
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

/* Candidates whose last event is old: report the subscriptions open for longer than the wait,
 * unless a pending timer will wake the instance. */
typedef struct idle_list {
	arena mem;
	store_idle_row *rows;
	size_t n, cap;
	int rc;
} idle_list;

static int idle_cb(void *ud, const store_idle_row *r)
{
	idle_list *l = ud;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		store_idle_row *nr = arena_alloc(&l->mem, ncap * sizeof *nr);
		if (nr == NULL) {
			l->rc = DUROX_ENOMEM;
			return -1;
		}
		if (l->n)
			memcpy(nr, l->rows, l->n * sizeof *nr);
		l->rows = nr;
		l->cap = ncap;
	}
	store_idle_row *d = &l->rows[l->n++];
	*d = *r;
	d->instance_id = arena_strdup(&l->mem, r->instance_id);
	d->orchestration_name = r->orchestration_name ? arena_strdup(&l->mem, r->orchestration_name) : NULL;
	if (d->instance_id == NULL || (r->orchestration_name && d->orchestration_name == NULL)) {
		l->rc = DUROX_ENOMEM;
		return -1;
	}
	return 0;
}

static int check_event_waits(collector *c, int64_t wait_ms)
{
	idle_list l;
	memset(&l, 0, sizeof l);
	arena_init(&l.mem);
	int rc = c->dx->st->mvt->idle_running(c->dx->st, c->now - wait_ms, idle_cb, &l);
	if (rc != DUROX_OK || l.rc != DUROX_OK) {
		arena_release(&l.mem);
		return l.rc != DUROX_OK ? dx_fail(c->dx, l.rc, "out of memory") : dx_store_fail(c->dx, rc);
	}
	for (size_t k = 0; k < l.n && rc == DUROX_OK; k++) {
		arena a;
		arena_init(&a);
		exec_analysis ea;
		rc = analyse_execution(c->dx, &a, l.rows[k].instance_id, l.rows[k].execution_id, 1, &ea);
		if (rc == DUROX_OK) {
			int timer_pending = 0;
			for (size_t t = 0; t < ea.pending.n_pending_timers; t++)
				if (ea.pending.pending_timers[t].fire_at > c->now)
					timer_pending = 1;
			for (size_t e = 0; e < ea.pending.n_pending_events && !timer_pending; e++) {
				const durox_pending_event *pe = &ea.pending.pending_events[e];
				if (pe->subscribed_at > c->now - wait_ms)
					continue;
				char msg[300], d1[48];
				fmt_dur(d1, sizeof d1, c->now - pe->subscribed_at);
				snprintf(msg, sizeof msg, "has waited %s for %s '%s'", d1, pe->queue ? "a message on queue" : "event",
				         pe->name ? pe->name : "");
				durox_stuck_evidence ev = {DUROX_STUCK_WAITING_EVENT, msg, pe->subscribed_at, NULL, -1, -1, pe->name, 0};
				if (add_evidence(c, l.rows[k].instance_id, l.rows[k].orchestration_name, DUROX_STATUS_RUNNING, &ev) != 0)
					rc = c->rc;
			}
		} else if (rc == DUROX_ENOTFOUND) {
			rc = DUROX_OK; /* deleted meanwhile */
			dx_clear(c->dx);
		}
		arena_release(&a);
	}
	arena_release(&l.mem);
	return rc;
}

static int cmp_acc(const void *x, const void *y)
{
	const inst_acc *a = x, *b = y;
	if (a->since != b->since)
		return a->since < b->since ? -1 : 1;
	return strcmp(a->id, b->id);
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
