/*
 * wait.c - wait_for_orchestration and wait_for_instances: poll until instances are
 * terminal (Completed or Failed), reading the status of ALL still-unfinished targets with
 * ONE query per round (the provider's statuses call), sleeping poll_interval_ms between
 * rounds and calling the progress callback (never inside a read) so a Lua caller stays
 * interruptible. Targets by ids or filter as in bulk writes. Relies on ops.c helpers and
 * the provider's ops vtable; used by the Lua binding and the CLI's `wait`.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "engine/ops_internal.h"
#include "util/timeutil.h"

#define DEFAULT_POLL_MS 200
#define MIN_POLL_MS 10

typedef struct wait_result {
	durox_bulk_wait_response pub;
	arena mem;
} wait_result;

void durox_bulk_wait_response_free(durox_bulk_wait_response *r)
{
	if (r == NULL)
		return;
	wait_result *w = (wait_result *)r;
	arena_release(&w->mem);
	free(w);
}

typedef struct wait_state {
	durox *dx;
	wait_result *w;
	size_t *index; /* open addressing: position + 1 of each item by id */
	size_t nindex;
	int64_t t0;
	int rc;
} wait_state;

static size_t slot_of(const wait_state *ws, const char *id)
{
	size_t mask = ws->nindex - 1, h = 5381;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = h * 33 + *p;
	h &= mask;
	while (ws->index[h] != 0 && strcmp(ws->w->pub.items[ws->index[h] - 1].instance_id, id) != 0)
		h = (h + 1) & mask;
	return h;
}

/* Adds id as an item unless already present. */
static int add_item(wait_state *ws, const char *id)
{
	size_t h = slot_of(ws, id);
	if (ws->index[h] != 0)
		return DUROX_OK;
	durox_wait_item *it = &ws->w->pub.items[ws->w->pub.count];
	memset(it, 0, sizeof *it);
	it->instance_id = arena_strdup(&ws->w->mem, id);
	if (it->instance_id == NULL)
		return DUROX_ENOMEM;
	it->status = DUROX_STATUS_NOT_FOUND;
	it->finished_after_ms = -1;
	ws->index[h] = ++ws->w->pub.count;
	return DUROX_OK;
}

static int status_cb(void *ud, const store_status_row *r)
{
	wait_state *ws = ud;
	size_t h = slot_of(ws, r->instance_id);
	if (ws->index[h] == 0)
		return 0;
	durox_wait_item *it = &ws->w->pub.items[ws->index[h] - 1];
	it->status = r->status;
	if (r->status == DUROX_STATUS_COMPLETED || r->status == DUROX_STATUS_FAILED) {
		arena *a = &ws->w->mem;
		it->finished = 1;
		it->finished_after_ms = time_mono_ms() - ws->t0;
		it->failure_kind = r->failure_kind;
		const char *text = r->output != NULL ? r->output : "";
		if (r->status == DUROX_STATUS_COMPLETED)
			it->output = arena_strdup(a, text);
		else
			it->error = arena_strdup(a, text);
		if (it->output == NULL && it->error == NULL) {
			ws->rc = DUROX_ENOMEM;
			return -1;
		}
	} else if (!r->exists && !r->pending_start) {
		it->finished = 1; /* unknown: it will never finish */
		it->status = DUROX_STATUS_NOT_FOUND;
	} else if (!r->exists) {
		it->status = DUROX_STATUS_PENDING; /* its start is queued: it will run */
	}
	return 0;
}

static int seen_cb(void *ud, const durox_instance_summary *s)
{
	wait_state *ws = ud;
	size_t h = slot_of(ws, s->instance_id);
	if (ws->index[h] != 0)
		ws->w->pub.items[ws->index[h] - 1].finished_after_ms = -2; /* seen */
	return 0;
}

/* Under a policy: the targets the caller may not see are NotFound at once (and never polled),
 * like missing ones. */
static int hide_unseen(wait_state *ws)
{
	durox *dx = ws->dx;
	size_t n = ws->w->pub.count;
	const char **ids = calloc(n ? n : 1, sizeof *ids);
	if (ids == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	for (size_t k = 0; k < n; k++)
		ids[k] = ws->w->pub.items[k].instance_id;
	access_view v;
	int rc = access_view_open(dx, "wait_for_instances", NULL, &v);
	if (rc == DUROX_EDENIED) { /* may list nothing (recorded) */
		dx_clear(dx);
		rc = DUROX_OK;
	} else if (rc == DUROX_OK) {
		rc = access_visible_by_id(&v, ids, n, seen_cb, ws);
	}
	access_view_close(&v);
	free(ids);
	for (size_t k = 0; rc == DUROX_OK && k < n; k++) {
		durox_wait_item *it = &ws->w->pub.items[k];
		if (it->finished_after_ms == -2) {
			it->finished_after_ms = -1;
		} else {
			it->finished = 1;
			it->status = DUROX_STATUS_NOT_FOUND;
		}
	}
	return rc;
}

/* A growable list of ids (copies in an arena). */
typedef struct idlist {
	const char **v;
	size_t n, cap;
} idlist;

static int idlist_push(idlist *l, arena *a, const char *id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		const char **v = arena_calloc(a, cap, sizeof *v);
		if (v == NULL)
			return DUROX_ENOMEM;
		if (l->n)
			memcpy(v, l->v, l->n * sizeof *v);
		l->v = v;
		l->cap = cap;
	}
	if ((l->v[l->n] = arena_strdup(a, id)) == NULL)
		return DUROX_ENOMEM;
	l->n++;
	return DUROX_OK;
}

int durox_wait_for_instances(durox *dx, const durox_bulk_wait_request *req, durox_bulk_wait_response **out)
{
	*out = NULL;
	dx_clear(dx);
	const durox_bulk_options *o = &req->opts;
	if (dx->st->ops == NULL)
		return dx_fail(dx, DUROX_EUNSUPPORTED, "the %s provider cannot poll statuses", dx->st->info.provider);
	if ((o->instances != NULL) == (o->filter != NULL))
		return dx_fail(dx, DUROX_EINVALID,
		               "give either instances or a filter (an empty filter targets every instance)");
	if (o->predicate != NULL && o->filter == NULL)
		return dx_fail(dx, DUROX_EINVALID, "a predicate needs a filter");
	if (req->mode < DUROX_WAIT_ALL || req->mode > DUROX_WAIT_FIRST)
		return dx_fail(dx, DUROX_EINVALID, "unknown wait mode (expected all, any or first)");
	if (req->mode == DUROX_WAIT_FIRST && req->count == 0)
		return dx_fail(dx, DUROX_EINVALID, "mode first needs a count of at least 1");
	if (req->poll_interval_ms < 0 || req->poll_interval_ms > 3600000)
		return dx_fail(dx, DUROX_EINVALID, "poll_interval_ms out of range (0 to 3600000)");
	uint32_t ceiling = access_bulk_ceiling(dx);
	if (o->max_instances > ceiling)
		return dx_fail(dx, DUROX_ELIMIT, "max_instances %u exceeds the configured max_bulk_operations %u",
		               (unsigned)o->max_instances, (unsigned)ceiling);
	uint32_t limit = o->max_instances > 0 ? o->max_instances : ceiling;
	int64_t poll = req->poll_interval_ms > 0 ? req->poll_interval_ms : DEFAULT_POLL_MS;
	if (poll < MIN_POLL_MS)
		poll = MIN_POLL_MS;

	wait_result *w = calloc(1, sizeof *w);
	if (w == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena_init(&w->mem);
	wait_state ws = {dx, w, NULL, 0, time_mono_ms(), DUROX_OK};
	durox_bulk_progress pr = {0};
	pr.kind = "wait";
	pr.phase = "resolving";
	int rc = DUROX_OK;
	/* resolve the targets: ids (deduplicated) or the filter's matches, then the items */
	idlist ids = {NULL, 0, 0};
	if (o->instances != NULL) {
		for (size_t k = 0; k < o->n_instances && rc == DUROX_OK; k++) {
			const char *id = o->instances[k];
			if (id == NULL || id[0] == '\0' || !op_valid_utf8(id))
				rc = dx_fail(dx, DUROX_EINVALID, "instance id #%zu is empty or not valid UTF-8", k + 1);
			else if (idlist_push(&ids, &w->mem, id) != DUROX_OK)
				rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
		}
	} else {
		durox_list_request lr = {0};
		lr.filter = o->filter;
		lr.predicate = o->predicate;
		lr.predicate_ud = o->predicate_ud;
		lr.order_by = DUROX_ORDER_INSTANCE_ID;
		lr.direction = DUROX_DIR_ASC;
		lr.page_size = 256;
		durox_instance_iter *it;
		rc = instance_iter_open(dx, "wait_for_instances", &lr, &it); /* only what the caller sees */
		if (rc == DUROX_OK) {
			const durox_instance_summary *s;
			int r;
			while ((r = durox_instance_iter_next(it, &s)) == 1) {
				if (ids.n >= limit) {
					r = dx_fail(dx, DUROX_ELIMIT,
					            "more than %u instances match (max_instances); narrow the filter "
					            "or raise max_instances",
					            (unsigned)limit);
					break;
				}
				if (idlist_push(&ids, &w->mem, s->instance_id) != DUROX_OK) {
					r = dx_fail(dx, DUROX_ENOMEM, "out of memory");
					break;
				}
			}
			durox_instance_iter_free(it);
			if (r < 0)
				rc = r;
		}
	}
	if (rc != DUROX_OK)
		goto done;
	w->pub.items = arena_calloc(&w->mem, ids.n + 1, sizeof *w->pub.items);
	ws.nindex = 16;
	while (ws.nindex < ids.n * 2 + 2)
		ws.nindex *= 2;
	ws.index = calloc(ws.nindex, sizeof *ws.index);
	if (w->pub.items == NULL || ws.index == NULL) {
		rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t k = 0; k < ids.n && rc == DUROX_OK; k++) {
		size_t before = w->pub.count;
		if (add_item(&ws, ids.v[k]) != DUROX_OK)
			rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
		else if (w->pub.count > before && w->pub.count > limit)
			rc = dx_fail(
			        dx, DUROX_ELIMIT,
			        "more than %u instances given (max_instances); split the list or raise max_instances",
			        (unsigned)limit);
	}
	if (rc == DUROX_OK && o->instances != NULL && access_enabled(dx))
		rc = hide_unseen(&ws);
	if (rc != DUROX_OK)
		goto done;
	w->pub.total_matched = w->pub.count;

	/* poll */
	const char **pending = calloc(w->pub.count + 1, sizeof *pending);
	if (pending == NULL) {
		rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
		goto done;
	}
	int64_t deadline = req->timeout_ms < 0 ? -1 : ws.t0 + req->timeout_ms;
	pr.phase = "running";
	pr.total = w->pub.count;
	for (;;) {
		size_t np = 0;
		for (size_t k = 0; k < w->pub.count; k++)
			if (!w->pub.items[k].finished)
				pending[np++] = w->pub.items[k].instance_id;
		if (np > 0) {
			w->pub.polls++;
			rc = dx->st->ops->statuses(dx->st, pending, np, status_cb, &ws);
			if (rc != DUROX_OK) {
				rc = ws.rc != DUROX_OK ? dx_fail(dx, ws.rc, "out of memory") : dx_store_fail(dx, rc);
				break;
			}
		}
		uint64_t terminal = 0, finished = 0;
		for (size_t k = 0; k < w->pub.count; k++) {
			const durox_wait_item *it = &w->pub.items[k];
			finished += it->finished;
			terminal += it->finished && it->status != DUROX_STATUS_NOT_FOUND;
		}
		int satisfied = req->mode == DUROX_WAIT_ALL   ? finished == w->pub.count
		                : req->mode == DUROX_WAIT_ANY ? terminal >= 1
		                                              : terminal >= req->count;
		if (satisfied) {
			w->pub.satisfied = 1;
			break;
		}
		if (finished == w->pub.count)
			break; /* ANY/FIRST can no longer be met: every target has finished */
		int64_t now = time_mono_ms();
		if (deadline >= 0 && now >= deadline) {
			w->pub.timed_out = 1;
			break;
		}
		pr.done = terminal;
		pr.elapsed_ms = now - ws.t0;
		if (o->progress != NULL) {
			int p = o->progress(o->progress_ud, &pr);
			if (p != 0) {
				if (p > 0) /* stop: return what is known */
					break;
				rc = dx->err[0] ? p : dx_fail(dx, p, "the progress callback stopped the wait");
				break;
			}
		}
		int64_t nap = poll;
		if (deadline >= 0 && deadline - now < nap)
			nap = deadline - now;
		op_sleep_ms(nap);
	}
	free(pending);
	for (size_t k = 0; k < w->pub.count; k++) {
		const durox_wait_item *it = &w->pub.items[k];
		if (!it->finished)
			w->pub.unfinished++;
		else if (it->status == DUROX_STATUS_COMPLETED)
			w->pub.completed++;
		else if (it->status == DUROX_STATUS_FAILED)
			w->pub.failed++;
		else
			w->pub.not_found++;
	}
	w->pub.elapsed_ms = time_mono_ms() - ws.t0;
done:
	free(ws.index);
	if (rc != DUROX_OK) {
		durox_bulk_wait_response_free(&w->pub);
		return rc;
	}
	*out = &w->pub;
	return DUROX_OK;
}

int durox_wait_for_orchestration(durox *dx, const char *instance_id, int64_t timeout_ms, int64_t poll_ms,
                                 durox_orchestration_status **out)
{
	*out = NULL;
	dx_clear(dx);
	if (instance_id == NULL || instance_id[0] == '\0')
		return dx_fail(dx, DUROX_EINVALID, "instance id must not be empty");
	int rc = access_instance(dx, "wait_for_orchestration", DUROX_HOOK_VIEW_INSTANCE, instance_id, NULL, NULL, NULL,
	                         NULL);
	if (rc != DUROX_OK)
		return rc;
	const char *ids[1] = {instance_id};
	durox_bulk_wait_request req = {0};
	req.opts.instances = ids;
	req.opts.n_instances = 1;
	req.opts.max_instances = 1;
	req.timeout_ms = timeout_ms;
	req.poll_interval_ms = poll_ms;
	req.mode = DUROX_WAIT_ALL;
	durox_bulk_wait_response *r;
	rc = durox_wait_for_instances(dx, &req, &r);
	if (rc != DUROX_OK)
		return rc;
	const durox_wait_item *it = &r->items[0];
	if (it->status == DUROX_STATUS_NOT_FOUND) {
		durox_bulk_wait_response_free(r);
		return dx_fail(dx, DUROX_ENOTFOUND, "instance '%s' not found", instance_id);
	}
	if (!it->finished) {
		int64_t el = r->elapsed_ms;
		const char *st = durox_status_name(it->status);
		durox_bulk_wait_response_free(r);
		return dx_fail(dx, DUROX_ETIMEOUT, "instance '%s' is still %s after waiting %lld ms", instance_id, st,
		               (long long)el);
	}
	durox_bulk_wait_response_free(r);
	return durox_get_orchestration_status(dx, instance_id, out);
}
