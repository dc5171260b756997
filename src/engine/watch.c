/*
 * watch.c - watch_instances: status transitions of a set of instances, derived from the
 * change feed (every OrchestrationStarted / Completed / Failed / ContinuedAsNew and
 * CustomStatusUpdated of a watched id), so no transition is lost between two polls. The state
 * of each id (execution, its phase, status, failure kind, custom status) travels in the cursor.
 * A transition applies only when it moves forward: (execution, phase) grows, phase 1 being
 * "started" and 2 "ended", which keeps the watch right across the overlap of its first read of
 * the instances and the feed's start. Used by the Lua binding (dx:watch_instances,
 * `duroxlua watch`).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "engine/stream_internal.h"
#include "engine/token.h"
#include "store/ops.h"
#include "util/codec.h"
#include "util/hmap.h"
#include "util/timeutil.h"

#define MAX_IDS 1000
#define DEFAULT_POLL_MS 200
#define DEFAULT_VERIFY_MS 1000

typedef struct wstate {
	char *id;
	uint64_t exec;
	int phase; /* 0: not started, 1: started, 2: ended */
	int status;
	int kind;
	char *custom; /* NULL: none */
} wstate;

struct durox_watch {
	durox *dx;
	efeed e;
	access_view view; /* a watched instance the caller may not see stays NotFound */
	int view_open;
	durox_watch_request rq;
	wstate *st;
	size_t n;
	hmap index; /* id -> position + 1 */
	stream_rows rows;
	arena mem; /* the current items */
	durox_status_change *items;
	size_t ni, cap, next;
	int ended;
	int64_t t0, last_item;
	unsigned char pre[STORE_FEED_POS_MAX]; /* the feed position before the current batch ... */
	size_t pre_len;
	buf pre_state; /* ... and the states then */
	char *cursor;
};

static int terminal(int status) { return status == DUROX_STATUS_COMPLETED || status == DUROX_STATUS_FAILED; }

static int all_terminal(const durox_watch *w)
{
	for (size_t i = 0; i < w->n; i++)
		if (!terminal(w->st[i].status))
			return 0;
	return 1;
}

void durox_watch_free(durox_watch *w)
{
	if (w == NULL)
		return;
	if (w->view_open)
		access_view_close(&w->view);
	efeed_close(&w->e);
	for (size_t i = 0; i < w->n; i++) {
		free(w->st[i].id);
		free(w->st[i].custom);
	}
	free(w->st);
	hmap_free(&w->index);
	stream_rows_free(&w->rows);
	arena_release(&w->mem);
	free(w->items);
	free(w->cursor);
	buf_free(&w->pre_state);
	free(w);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* ---- the state in cursors ---------------------------------------------------------------- */

static void encode_state(const durox_watch *w, buf *b)
{
	token_put_u64(b, w->n);
	for (size_t i = 0; i < w->n; i++) {
		const wstate *s = &w->st[i];
		token_put_u64(b, s->exec);
		buf_addc(b, (char)s->phase);
		buf_addc(b, (char)s->status);
		buf_addc(b, (char)s->kind);
		buf_addc(b, (char)(s->custom != NULL));
		if (s->custom != NULL)
			token_put_str(b, s->custom);
	}
}

static int decode_state(durox_watch *w, const buf *extra)
{
	token_reader r;
	token_reader_init(&r, extra);
	if (token_get_u64(&r) != w->n)
		return -1;
	for (size_t i = 0; i < w->n; i++) {
		wstate *s = &w->st[i];
		s->exec = token_get_u64(&r);
		s->phase = token_get_u8(&r);
		s->status = token_get_u8(&r);
		s->kind = token_get_u8(&r);
		int has = token_get_u8(&r);
		if (r.bad || s->phase > 2 || s->status >= DUROX_STATUS__COUNT || s->kind >= DUROX_FAILURE__COUNT ||
		    has > 1)
			return -1;
		if (has) {
			size_t len;
			const char *c = token_get_str(&r, &len);
			if (c == NULL || (s->custom = strndup(c, len)) == NULL)
				return -1;
		}
	}
	return token_reader_done(&r) ? 0 : -1;
}

static const char *item_cursor(durox_watch *w, const unsigned char *pos, size_t len)
{
	buf b;
	buf_init(&b);
	encode_state(w, &b);
	const char *t = buf_oom(&b) ? NULL : efeed_token(&w->e, &w->mem, pos, len, b.data, b.len);
	buf_free(&b);
	return t;
}

static const char *current_cursor(durox_watch *w, arena *a)
{
	buf b;
	buf_init(&b);
	encode_state(w, &b);
	const char *t = buf_oom(&b) ? NULL : efeed_current(&w->e, a, b.data, b.len);
	buf_free(&b);
	return t;
}

/* ---- items ------------------------------------------------------------------------------------ */

static durox_status_change *new_item(durox_watch *w)
{
	if (w->ni == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 32;
		durox_status_change *n = realloc(w->items, ncap * sizeof *n);
		if (n == NULL)
			return NULL;
		w->items = n;
		w->cap = ncap;
	}
	durox_status_change *c = &w->items[w->ni++];
	memset(c, 0, sizeof *c);
	return c;
}

static void clear_items(durox_watch *w)
{
	arena_release(&w->mem);
	arena_init(&w->mem);
	w->ni = w->next = 0;
}

/* Summaries of every watched id: the state they show now. */
typedef struct sum_ctx {
	durox_watch *w;
	wstate *now; /* parallel to w->st */
	int rc;
} sum_ctx;

static int sum_cb(void *ud, const durox_instance_summary *s)
{
	sum_ctx *c = ud;
	hmap_entry *e = hmap_get(&c->w->index, s->instance_id, strlen(s->instance_id));
	if (e == NULL)
		return 0;
	wstate *x = &c->now[e->a - 1];
	x->exec = s->execution_count;
	x->status = s->status;
	x->phase = s->status == DUROX_STATUS_RUNNING ? 1 : s->status == DUROX_STATUS_UNKNOWN ? 0 : 2;
	x->kind = s->status == DUROX_STATUS_FAILED ? s->failure_kind : DUROX_FAILURE_NONE;
	if (s->custom_status != NULL && (x->custom = strdup(s->custom_status)) == NULL) {
		c->rc = DUROX_ENOMEM;
		return -1;
	}
	return 0;
}

static void free_states(wstate *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].custom);
	free(s);
}

/* Marks the watched ids still NotFound whose StartOrchestration is queued as Pending, as
 * status, details, waits and stuck-work reports show them (without a policy only: under one
 * an instance the runtime has not created is not visible, as in wait_for_instances). */
typedef struct pend_ctx {
	durox_watch *w;
	wstate *now;
} pend_ctx;

static int pend_cb(void *ud, const store_status_row *r)
{
	pend_ctx *c = ud;
	if (r->exists || !r->pending_start)
		return 0;
	for (size_t i = 0; i < c->w->n; i++)
		if (c->now[i].status == DUROX_STATUS_NOT_FOUND && strcmp(c->w->st[i].id, r->instance_id) == 0)
			c->now[i].status = DUROX_STATUS_PENDING;
	return 0;
}

static int mark_pending(durox_watch *w, wstate *now)
{
	durox *dx = w->dx;
	if (access_enabled(dx) || dx->st->ops == NULL || dx->st->ops->statuses == NULL)
		return DUROX_OK;
	size_t n = 0;
	const char **ids = malloc((w->n ? w->n : 1) * sizeof *ids);
	if (ids == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	for (size_t i = 0; i < w->n; i++)
		if (now[i].status == DUROX_STATUS_NOT_FOUND)
			ids[n++] = w->st[i].id;
	pend_ctx c = {w, now};
	int rc = n > 0 ? dx->st->ops->statuses(dx->st, ids, n, pend_cb, &c) : DUROX_OK;
	free(ids);
	return rc != DUROX_OK ? dx_store_fail(dx, rc) : DUROX_OK;
}

static int read_now(durox_watch *w, wstate **out)
{
	*out = NULL;
	durox *dx = w->dx;
	wstate *now = calloc(w->n ? w->n : 1, sizeof *now);
	if (now == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	for (size_t i = 0; i < w->n; i++)
		now[i].status = DUROX_STATUS_NOT_FOUND;
	sum_ctx c = {w, now, 0};
	const char **ids = malloc((w->n ? w->n : 1) * sizeof *ids);
	if (ids == NULL) {
		free_states(now, w->n);
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < w->n; i++)
		ids[i] = w->st[i].id;
	int rc = access_visible_by_id(&w->view, ids, w->n, sum_cb, &c);
	if (c.rc != 0)
		rc = dx_fail(dx, c.rc, "out of memory");
	free(ids);
	if (rc == DUROX_OK)
		rc = mark_pending(w, now);
	if (rc != DUROX_OK) {
		free_states(now, w->n);
		return rc;
	}
	*out = now;
	return DUROX_OK;
}

static int same_text(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Adds an item for id i moving from its state to x (statuses and custom status), then makes x
 * its state. initial: the first item of a fresh watch. */
static int report(durox_watch *w, size_t i, const wstate *x, int initial, int64_t at, const char *key,
                  const char *output, const char *error, const unsigned char *pos, size_t pos_len)
{
	wstate *s = &w->st[i];
	durox_status_change *c = new_item(w);
	if (c == NULL)
		return DUROX_ENOMEM;
	c->item = DUROX_ITEM_EVENT;
	c->instance_id = s->id;
	c->initial = initial;
	c->old_status = initial ? DUROX_STATUS_NOT_FOUND : s->status;
	c->new_status = x->status;
	c->failure_kind = x->status == DUROX_STATUS_FAILED ? x->kind : DUROX_FAILURE_NONE;
	c->execution_id = x->exec;
	c->custom_status_changed = !initial && !same_text(s->custom, x->custom);
	c->old_custom_status = s->custom != NULL && !initial ? arena_strdup(&w->mem, s->custom) : NULL;
	c->custom_status = x->custom != NULL ? arena_strdup(&w->mem, x->custom) : NULL;
	c->output = output != NULL ? arena_strdup(&w->mem, output) : NULL;
	c->error = error != NULL ? arena_strdup(&w->mem, error) : NULL;
	c->at = at;
	c->key = key != NULL ? arena_strdup(&w->mem, key) : NULL;
	if ((x->custom && !c->custom_status) || (output && !c->output) || (error && !c->error) || (key && !c->key) ||
	    (s->custom && !initial && !c->old_custom_status))
		return DUROX_ENOMEM;
	/* the new state, then the cursor that carries it */
	char *custom = x->custom != NULL ? strdup(x->custom) : NULL;
	if (x->custom != NULL && custom == NULL)
		return DUROX_ENOMEM;
	free(s->custom);
	s->custom = custom;
	s->exec = x->exec;
	s->phase = x->phase;
	s->status = x->status;
	s->kind = x->kind;
	c->cursor = pos != NULL ? item_cursor(w, pos, pos_len) : current_cursor(w, &w->mem);
	return c->cursor != NULL ? DUROX_OK : DUROX_ENOMEM;
}

/* After a reset or at the start: reports every id whose state differs from what the store
 * shows now (initial: every id). */
static int resync(durox_watch *w, int initial)
{
	wstate *now;
	int rc = read_now(w, &now);
	if (rc != DUROX_OK)
		return rc;
	int64_t at = time_now_ms();
	for (size_t i = 0; i < w->n && rc == DUROX_OK; i++) {
		wstate *s = &w->st[i];
		if (!initial && s->status == now[i].status && s->exec == now[i].exec &&
		    same_text(s->custom, now[i].custom))
			continue;
		rc = report(w, i, &now[i], initial, at, NULL, NULL, NULL, NULL, 0);
	}
	free_states(now, w->n);
	return rc == DUROX_ENOMEM ? dx_fail(w->dx, rc, "out of memory") : rc;
}

/* ---- open -------------------------------------------------------------------------------------- */

int durox_watch_open(durox *dx, const durox_watch_request *req, durox_watch **out)
{
	dx_clear(dx);
	*out = NULL;
	if (req->n == 0)
		return dx_fail(dx, DUROX_EINVALID, "no instance to watch");
	durox_watch *w = calloc(1, sizeof *w);
	if (w == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	w->dx = dx;
	w->rq = *req;
	w->rq.cursor = NULL;
	w->rq.instance_ids = NULL;
	if (w->rq.poll_interval_ms == 0)
		w->rq.poll_interval_ms = DEFAULT_POLL_MS;
	if (w->rq.verify_ms == 0)
		w->rq.verify_ms = DEFAULT_VERIFY_MS;
	arena_init(&w->mem);
	arena_init(&w->rows.mem);
	hmap_init(&w->index);
	buf_init(&w->pre_state);
	int rc = DUROX_OK;
	/* the ids, sorted and without duplicates (the cursor's state is in this order) */
	const char **ids = malloc(req->n * sizeof *ids);
	if (ids == NULL) {
		durox_watch_free(w);
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < req->n; i++) {
		if (req->instance_ids[i] == NULL || req->instance_ids[i][0] == '\0') {
			free(ids);
			durox_watch_free(w);
			return dx_fail(dx, DUROX_EINVALID, "an instance id to watch is empty");
		}
		ids[i] = req->instance_ids[i];
	}
	qsort(ids, req->n, sizeof *ids, cmp_str);
	size_t n = 0;
	for (size_t i = 0; i < req->n; i++)
		if (n == 0 || strcmp(ids[n - 1], ids[i]) != 0)
			ids[n++] = ids[i];
	if (n > MAX_IDS) {
		free(ids);
		durox_watch_free(w);
		return dx_fail(dx, DUROX_ELIMIT, "cannot watch %zu instances at once (at most %d)", n, MAX_IDS);
	}
	w->st = calloc(n, sizeof *w->st);
	uint64_t h = FNV1A64_INIT;
	for (size_t i = 0; w->st != NULL && i < n; i++) {
		w->st[i].status = DUROX_STATUS_NOT_FOUND;
		w->st[i].id = strdup(ids[i]);
		int created;
		hmap_entry *e = w->st[i].id ? hmap_put(&w->index, ids[i], strlen(ids[i]), &created) : NULL;
		if (e == NULL) {
			rc = DUROX_ENOMEM;
			w->n = i + 1;
			break;
		}
		e->a = (int64_t)i + 1;
		h = fnv1a64(h, ids[i], strlen(ids[i]) + 1);
		w->n = i + 1;
	}
	free(ids);
	if (w->st == NULL || rc != DUROX_OK) {
		durox_watch_free(w);
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	}
	rc = access_view_open(dx, "watch_instances", NULL, &w->view);
	w->view_open = 1;
	if (rc == DUROX_OK)
		rc = efeed_open(dx, &w->e, EFEED_WATCH, access_fingerprint(dx, h), req->cursor, 1);
	if (rc == DUROX_OK && req->cursor != NULL && decode_state(w, &w->e.extra) != 0)
		rc = dx_fail(dx, DUROX_EINVALID, "malformed cursor (its watch state is unreadable)");
	if (rc == DUROX_OK && req->cursor == NULL)
		rc = resync(w, 1);
	if (rc != DUROX_OK) {
		durox_watch_free(w);
		return rc;
	}
	dx->st->fvt->save(w->e.f, w->pre, &w->pre_len);
	encode_state(w, &w->pre_state);
	if (buf_oom(&w->pre_state)) {
		durox_watch_free(w);
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	}
	w->t0 = w->last_item = time_mono_ms();
	*out = w;
	return DUROX_OK;
}

/* ---- polls -------------------------------------------------------------------------------------- */

/* Marks the watched instances of this batch the caller may see (access_visible_by_id). */
static int vis_cb(void *ud, const durox_instance_summary *s)
{
	int created;
	return hmap_put(ud, s->instance_id, strlen(s->instance_id), &created) != NULL ? 0 : DUROX_ENOMEM;
}

static int apply_rows(durox_watch *w)
{
	hmap vis;
	hmap_init(&vis);
	int restricted = w->view.restricted || w->view.per_row || w->view.nothing;
	if (restricted) {
		const char **ids = malloc((w->rows.n ? w->rows.n : 1) * sizeof *ids);
		size_t n = 0;
		if (ids == NULL)
			return dx_fail(w->dx, DUROX_ENOMEM, "out of memory");
		hmap seen;
		hmap_init(&seen);
		for (size_t r = 0; r < w->rows.n; r++) {
			const char *id = w->rows.rows[r].instance_id;
			int created;
			if (hmap_get(&w->index, id, strlen(id)) != NULL &&
			    hmap_put(&seen, id, strlen(id), &created) != NULL && created)
				ids[n++] = id;
		}
		int rc = n > 0 ? access_visible_by_id(&w->view, ids, n, vis_cb, &vis) : DUROX_OK;
		hmap_free(&seen);
		free(ids);
		if (rc != DUROX_OK) {
			hmap_free(&vis);
			return rc;
		}
	}
	for (size_t r = 0; r < w->rows.n; r++) {
		stream_row *x = &w->rows.rows[r];
		hmap_entry *e = hmap_get(&w->index, x->instance_id, strlen(x->instance_id));
		if (e == NULL || (restricted && hmap_get(&vis, x->instance_id, strlen(x->instance_id)) == NULL))
			continue;
		int sh = stream_history_type(x->event_type);
		if (sh != SH_STARTED && sh != SH_COMPLETED && sh != SH_FAILED && sh != SH_CAN && sh != SH_CUSTOM_STATUS)
			continue;
		size_t i = (size_t)e->a - 1;
		wstate *s = &w->st[i];
		arena tmp;
		arena_init(&tmp);
		json *ev = json_parse(&tmp, x->data ? x->data : "", x->data_len, NULL, 0);
		wstate nx = *s;
		nx.id = NULL;
		nx.custom = s->custom;
		const char *output = NULL, *error = NULL;
		int apply = 0;
		if (sh == SH_CUSTOM_STATUS) {
			const char *v = json_get_str(ev, "status");
			if (x->execution_id >= s->exec && !same_text(v, s->custom)) {
				nx.custom = (char *)v;
				apply = 1;
			}
		} else {
			int phase = sh == SH_STARTED ? 1 : 2;
			if (x->execution_id > s->exec || (x->execution_id == s->exec && phase > s->phase)) {
				apply = 1;
				nx.exec = x->execution_id;
				nx.phase = phase;
				nx.kind = DUROX_FAILURE_NONE;
				if (sh == SH_STARTED) {
					nx.status = DUROX_STATUS_RUNNING;
				} else if (sh == SH_COMPLETED) {
					nx.status = DUROX_STATUS_COMPLETED;
					output = json_get_str(ev, "output");
				} else if (sh == SH_CAN) {
					nx.status = DUROX_STATUS_CONTINUED_AS_NEW;
					output = json_get_str(ev, "input");
				} else {
					int cancelled;
					nx.status = DUROX_STATUS_FAILED;
					nx.kind = stream_failure_of(ev, &cancelled);
					const json *det = json_first(json_get(ev, "details"));
					error = json_get_str(det, "message");
					const char *reason = NULL;
					if (cancelled) {
						const json *k = json_get(
						        json_get(json_get(ev, "details"), "Application"), "kind");
						reason = json_get_str(json_get(k, "Cancelled"), "reason");
					}
					if (reason != NULL) {
						char *m = arena_alloc(&tmp, strlen(reason) + 11);
						if (m != NULL) {
							memcpy(m, "canceled: ", 10);
							strcpy(m + 10, reason);
						}
						error = m;
					}
				}
			}
		}
		int rc = DUROX_OK;
		if (apply) {
			char key[64];
			snprintf(key, sizeof key, "/%llu/%llu", (unsigned long long)x->execution_id,
			         (unsigned long long)x->event_id);
			size_t il = strlen(x->instance_id);
			char *k = arena_alloc(&tmp, il + strlen(key) + 1);
			if (k != NULL) {
				memcpy(k, x->instance_id, il);
				strcpy(k + il, key);
			}
			rc = k == NULL ? DUROX_ENOMEM
			               : report(w, i, &nx, 0, efeed_event_ts(x->data, x->data_len, x->created_at), k,
			                        output, error, x->pos, x->pos_len);
		}
		arena_release(&tmp);
		if (rc != DUROX_OK) {
			hmap_free(&vis);
			return dx_fail(w->dx, rc, "out of memory");
		}
	}
	hmap_free(&vis);
	return DUROX_OK;
}

int durox_watch_next(durox_watch *w, const durox_status_change **c)
{
	*c = NULL;
	durox *dx = w->dx;
	dx_clear(dx);
	for (;;) {
		if (w->next < w->ni) {
			*c = &w->items[w->next++];
			w->last_item = time_mono_ms();
			return 1;
		}
		if (w->ended || all_terminal(w)) {
			w->ended = 1;
			return 0;
		}
		clear_items(w);
		store_feed_result fr;
		dx->st->fvt->save(w->e.f, w->pre, &w->pre_len);
		buf_reset(&w->pre_state);
		encode_state(w, &w->pre_state);
		if (buf_oom(&w->pre_state))
			return dx_fail(dx, DUROX_ENOMEM, "out of memory");
		int rc = stream_poll(&w->e, 0, w->rq.verify_ms, &w->rows, &fr);
		if (rc != DUROX_OK)
			return rc;
		if (fr.reset != DUROX_RESET_NONE) {
			durox_status_change *it = new_item(w);
			if (it == NULL)
				return dx_fail(dx, DUROX_ENOMEM, "out of memory");
			it->item = DUROX_ITEM_RESET;
			it->reset = fr.reset;
			it->reset_reason = arena_strdup(&w->mem, fr.reason);
			it->at = time_now_ms();
			if (it->reset_reason == NULL || (it->cursor = current_cursor(w, &w->mem)) == NULL)
				return dx_fail(dx, DUROX_ENOMEM, "out of memory");
			if ((rc = resync(w, 0)) != DUROX_OK)
				return rc;
			continue;
		}
		if ((rc = apply_rows(w)) != DUROX_OK)
			return rc;
		if (w->ni > 0 || fr.more)
			continue;
		int64_t now = time_mono_ms();
		if (w->rq.timeout_ms > 0 && now - w->t0 >= w->rq.timeout_ms) {
			w->ended = 1;
			return 0;
		}
		if (w->rq.heartbeat_ms > 0 && now - w->last_item >= (int64_t)w->rq.heartbeat_ms) {
			durox_status_change *it = new_item(w);
			if (it == NULL || (it->cursor = current_cursor(w, &w->mem)) == NULL)
				return dx_fail(dx, DUROX_ENOMEM, "out of memory");
			it->item = DUROX_ITEM_HEARTBEAT;
			it->at = time_now_ms();
			continue;
		}
		int64_t sleep = w->rq.poll_interval_ms;
		if (w->rq.timeout_ms > 0 && w->t0 + w->rq.timeout_ms - now < sleep)
			sleep = w->t0 + w->rq.timeout_ms - now;
		if (w->rq.heartbeat_ms > 0 && w->last_item + (int64_t)w->rq.heartbeat_ms - now < sleep)
			sleep = w->last_item + (int64_t)w->rq.heartbeat_ms - now;
		if ((rc = stream_wait(dx, w->rq.wait, w->rq.wait_ud, sleep)) != DUROX_OK)
			return rc;
	}
}

const char *durox_watch_cursor(durox_watch *w)
{
	if (w->next < w->ni && w->next > 0)
		return w->items[w->next - 1].cursor;
	arena a;
	arena_init(&a);
	const char *t;
	if (w->next < w->ni) /* nothing of this batch handed out yet: where it began */
		t = efeed_token(&w->e, &a, w->pre, w->pre_len, w->pre_state.data, w->pre_state.len);
	else
		t = current_cursor(w, &a);
	free(w->cursor);
	w->cursor = t != NULL ? strdup(t) : NULL;
	arena_release(&a);
	return w->cursor;
}

size_t durox_watch_pending(const durox_watch *w) { return w->ni - w->next; }
