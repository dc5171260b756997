/*
 * stream.c - stream_instance_events: the change feed (feed.h) turned into the proposal's
 * InstanceEvents. Each poll copies a batch of history rows out of the store (the provider's
 * read transaction ends before anything is handed out), maps the events that are
 * InstanceEvents (the table is in durox.h), evaluates the filter and predicate on the
 * instances' current summaries with one query per batch, and hands the items out one by one
 * with a cursor after each. Following, it sleeps through the caller's wait function between
 * polls that found nothing. Used by the Lua binding (dx:stream_instance_events, the events
 * command, webhooks and rules).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine/access.h"
#include "engine/feed.h"
#include "engine/stream_internal.h"
#include "store/format.h"
#include "util/codec.h"
#include "util/hmap.h"
#include "util/timeutil.h"

#define DEFAULT_POLL_MS 200
#define DEFAULT_VERIFY_MS 1000
#define MAP_MAX 200000 /* cached names before the caches start over */
#define SYSCALL_PREFIX "__duroxide_syscall:"

static const char *const iev_names[DUROX_IEV__COUNT] = {
        "Started",           "Completed",      "Failed",     "ContinuedAsNew", "Cancelled",
        "ActivityCompleted", "ActivityFailed", "TimerFired", "EventReceived",
};

const char *durox_instance_event_type_name(int t) { return t >= 0 && t < DUROX_IEV__COUNT ? iev_names[t] : NULL; }

int durox_instance_event_type_parse(const char *name)
{
	if (name == NULL)
		return -1;
	for (int i = 0; i < DUROX_IEV__COUNT; i++)
		if (strcasecmp(name, iev_names[i]) == 0)
			return i;
	return -1;
}

/* ---- shared by the streams (stream_internal.h) ---------------------------------------- */

int stream_wait(durox *dx, durox_wait_fn wait, void *ud, int64_t ms)
{
	if (ms <= 0)
		return DUROX_OK;
	if (wait != NULL) {
		if (wait(ud, ms) != 0)
			return dx->err[0] ? DUROX_EABORT : dx_fail(dx, DUROX_EABORT, "the stream was stopped");
		return DUROX_OK;
	}
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	return DUROX_OK;
}

void stream_rows_reset(stream_rows *b)
{
	arena_release(&b->mem);
	arena_init(&b->mem);
	b->n = 0;
}

void stream_rows_free(stream_rows *b)
{
	arena_release(&b->mem);
	free(b->rows);
	memset(b, 0, sizeof *b);
}

/* Feed callback: copies the row into the batch. */
static int copy_row(void *ud, const store_feed_row *r)
{
	stream_rows *b = ud;
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 256;
		stream_row *n = realloc(b->rows, ncap * sizeof *n);
		if (n == NULL)
			return DUROX_ENOMEM;
		b->rows = n;
		b->cap = ncap;
	}
	stream_row *x = &b->rows[b->n];
	x->instance_id = arena_strdup(&b->mem, r->instance_id);
	x->execution_id = r->execution_id;
	x->event_id = r->event_id;
	x->event_type = arena_strdup(&b->mem, r->event_type);
	x->data = r->data != NULL ? arena_strndup(&b->mem, r->data, r->data_len) : NULL;
	x->data_len = r->data_len;
	x->created_at = r->created_at;
	x->pos = arena_alloc(&b->mem, r->pos_len ? r->pos_len : 1);
	x->pos_len = r->pos_len;
	if (x->instance_id == NULL || x->event_type == NULL || x->pos == NULL || (r->data != NULL && x->data == NULL))
		return DUROX_ENOMEM;
	memcpy(x->pos, r->pos, r->pos_len);
	b->n++;
	return 0;
}

int stream_poll(efeed *e, uint32_t limit, int64_t verify_ms, stream_rows *b, store_feed_result *res)
{
	stream_rows_reset(b);
	store_feed_request rq = {0};
	rq.limit = limit;
	rq.with_data = 1;
	rq.verify_ms = verify_ms;
	int rc = e->dx->st->fvt->poll(e->f, &rq, copy_row, b, res);
	if (rc == DUROX_ENOMEM)
		return dx_fail(e->dx, rc, "out of memory");
	if (rc != DUROX_OK) {
		b->n = 0;
		return dx_store_fail(e->dx, rc);
	}
	return DUROX_OK;
}

int stream_history_type(const char *type)
{
	static const struct {
		const char *name;
		int t;
	} types[] = {
	        {"OrchestrationStarted", SH_STARTED},         {"OrchestrationCompleted", SH_COMPLETED},
	        {"OrchestrationFailed", SH_FAILED},           {"OrchestrationContinuedAsNew", SH_CAN},
	        {"ActivityScheduled", SH_ACTIVITY_SCHEDULED}, {"ActivityCompleted", SH_ACTIVITY_COMPLETED},
	        {"ActivityFailed", SH_ACTIVITY_FAILED},       {"TimerFired", SH_TIMER_FIRED},
	        {"ExternalEvent", SH_EXTERNAL_EVENT},         {"ExternalEventPersistent", SH_QUEUE_EVENT},
	        {"CustomStatusUpdated", SH_CUSTOM_STATUS},
	};
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcmp(type, types[i].name) == 0)
			return types[i].t;
	return SH_OTHER;
}

/* ---- the event stream ------------------------------------------------------------------- */

struct durox_event_stream {
	durox *dx;
	efeed e;
	durox_event_stream_request rq;
	uint64_t binding;
	access_view view; /* what the caller may see: the filter ANDed with the policy's */
	int view_open;
	stream_rows rows;
	arena mem; /* the current batch's items */
	durox_instance_event *items;
	size_t n, cap, next;
	hmap activities; /* "inst\0exec\0id" -> name (a: pointer into names_mem) */
	hmap names;      /* instance id -> orchestration name (a: pointer into names_mem) */
	arena names_mem;
	int ended;
	int64_t t0, last_item;
	unsigned char pre[STORE_FEED_POS_MAX]; /* the feed's position before the current batch */
	size_t pre_len;
	char *cursor; /* durox_event_stream_cursor */
};

static uint64_t event_binding(const durox_event_stream_request *rq)
{
	uint64_t h = FNV1A64_INIT;
	const char *d = rq->filter != NULL ? durox_filter_describe((durox_filter *)rq->filter) : "TRUE";
	h = fnv1a64(h, d, strlen(d));
	if (rq->predicate != NULL)
		h = fnv1a64(h, "|predicate", 10);
	unsigned types = rq->event_types & ((1u << DUROX_IEV__COUNT) - 1);
	if (types == 0)
		types = (1u << DUROX_IEV__COUNT) - 1;
	h = fnv1a64(h, &types, sizeof types);
	if (rq->no_payloads)
		h = fnv1a64(h, "|bare", 5);
	return h;
}

static void maps_reset(durox_event_stream *s)
{
	hmap_free(&s->activities);
	hmap_free(&s->names);
	arena_release(&s->names_mem);
	arena_init(&s->names_mem);
}

void durox_event_stream_free(durox_event_stream *s)
{
	if (s == NULL)
		return;
	if (s->view_open)
		access_view_close(&s->view);
	efeed_close(&s->e);
	stream_rows_free(&s->rows);
	arena_release(&s->mem);
	free(s->items);
	hmap_free(&s->activities);
	hmap_free(&s->names);
	arena_release(&s->names_mem);
	free(s->cursor);
	free(s);
}

int durox_event_stream_open(durox *dx, const durox_event_stream_request *req, durox_event_stream **out)
{
	dx_clear(dx);
	*out = NULL;
	if (req->event_types >> DUROX_IEV__COUNT)
		return dx_fail(dx, DUROX_EINVALID, "event_types has bits beyond the %d event types", DUROX_IEV__COUNT);
	durox_event_stream *s = calloc(1, sizeof *s);
	if (s == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	s->dx = dx;
	s->rq = *req;
	if (s->rq.poll_interval_ms == 0)
		s->rq.poll_interval_ms = DEFAULT_POLL_MS;
	if (s->rq.verify_ms == 0)
		s->rq.verify_ms = DEFAULT_VERIFY_MS;
	if (s->rq.event_types == 0)
		s->rq.event_types = (1u << DUROX_IEV__COUNT) - 1;
	s->rq.cursor = NULL;
	arena_init(&s->mem);
	arena_init(&s->names_mem);
	arena_init(&s->rows.mem);
	hmap_init(&s->activities);
	hmap_init(&s->names);
	/* the one enforcement point: can_list_instances and the policy's filter now, and
	 * can_view_instance for every instance an item is about */
	int rc = access_view_open(dx, "stream_instance_events", req->filter, &s->view);
	s->view_open = 1;
	if (rc != DUROX_OK) {
		durox_event_stream_free(s);
		return rc;
	}
	s->binding = access_fingerprint(dx, event_binding(req));
	/* details carry payloads only for a caller whose policy always lets them see history */
	if (!access_payloads_visible(dx))
		s->rq.no_payloads = 1;
	rc = efeed_open(dx, &s->e, EFEED_EVENTS, s->binding, req->cursor, req->from_now);
	if (rc != DUROX_OK) {
		durox_event_stream_free(s);
		return rc;
	}
	s->t0 = s->last_item = time_mono_ms();
	*out = s;
	return DUROX_OK;
}

/* ---- one batch ------------------------------------------------------------------------ */

static durox_instance_event *new_item(durox_event_stream *s)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		durox_instance_event *n = realloc(s->items, ncap * sizeof *n);
		if (n == NULL)
			return NULL;
		s->items = n;
		s->cap = ncap;
	}
	durox_instance_event *it = &s->items[s->n++];
	memset(it, 0, sizeof *it);
	it->at = time_now_ms();
	return it;
}

static size_t act_key(char *k, size_t cap, const char *id, uint64_t exec, uint64_t ev)
{
	size_t n = strlen(id);
	if (n + 42 > cap)
		return 0;
	memcpy(k, id, n);
	k[n++] = '\0';
	memcpy(k + n, &exec, 8);
	n += 8;
	memcpy(k + n, &ev, 8);
	return n + 8;
}

static const char *map_get(const hmap *m, const void *k, size_t n)
{
	const hmap_entry *e = n ? hmap_get(m, k, n) : NULL;
	return e != NULL ? (const char *)(intptr_t)e->a : NULL;
}

static int map_put(durox_event_stream *s, hmap *m, const void *k, size_t n, const char *v, size_t vlen)
{
	if (n == 0)
		return DUROX_OK;
	int created;
	hmap_entry *e = hmap_put(m, k, n, &created);
	char *copy = arena_strndup(&s->names_mem, v, vlen);
	if (e == NULL || copy == NULL)
		return DUROX_ENOMEM;
	e->a = (int64_t)(intptr_t)copy;
	return DUROX_OK;
}

/* The name of the activity scheduled as event id of the execution: from the rows seen, else
 * read from history. NULL when it cannot be found. */
static const char *activity_name(durox_event_stream *s, arena *a, const char *inst, uint64_t exec, int64_t id)
{
	char k[1024];
	size_t kn = id > 0 ? act_key(k, sizeof k, inst, exec, (uint64_t)id) : 0;
	const char *name = map_get(&s->activities, k, kn);
	if (name != NULL || id <= 0)
		return name;
	/* scheduled before the stream's start: one primary-key read */
	store_history_query q = {0};
	q.instance_id = inst;
	q.execution_id = exec;
	q.from_event_id = q.to_event_id = (uint64_t)id;
	q.from_time = q.to_time = DUROX_NO_TIME;
	q.include_payloads = 0;
	stream_name_lookup c = {a, NULL};
	int rc = s->dx->st->vt->history(s->dx->st, &q, stream_event_name_cb, &c);
	if (rc != DUROX_OK)
		s->dx->st->err[0] = '\0';
	return c.name;
}

int stream_event_name_cb(void *ud, const store_event_row *r)
{
	stream_name_lookup *c = ud;
	arena tmp;
	arena_init(&tmp);
	json *ev = json_parse(&tmp, r->data, r->data_len, NULL, 0);
	const char *n = json_get_str(ev, "name");
	if (n != NULL)
		c->name = arena_strdup(c->a, n);
	arena_release(&tmp);
	return 1;
}

/* Appends "key": value to the JSON object being built in b. */
static void put_key(buf *b, const char *k)
{
	if (b->len > 1)
		buf_addc(b, ',');
	buf_add_json_string(b, k, strlen(k));
	buf_addc(b, ':');
}

static void put_str(buf *b, const char *k, const char *v)
{
	if (v == NULL)
		return;
	put_key(b, k);
	buf_add_json_string(b, v, strlen(v));
}

static void put_json(buf *b, const char *k, const json *v)
{
	if (v == NULL)
		return;
	put_key(b, k);
	json_emit(b, v);
}

static void put_int(buf *b, const char *k, int64_t v)
{
	put_key(b, k);
	buf_addi64(b, v);
}

/* The message inside ErrorDetails ({"Application":{"message":..}} ...), or NULL. */
static const char *error_message(const json *details)
{
	const json *v = json_first(details);
	return json_get_str(v, "message");
}

/* The reason of an Application/Cancelled ErrorDetails, or NULL. */
static const char *cancel_reason(const json *details)
{
	const json *app = json_get(details, "Application");
	const json *kind = json_get(app, "kind");
	return json_get_str(json_get(kind, "Cancelled"), "reason");
}

int stream_failure_of(const json *ev, int *cancelled)
{
	const json *det = json_get(ev, "details");
	int kind = format_failure_kind_details(det);
	if (kind == DUROX_FAILURE_NONE)
		kind = DUROX_FAILURE_APPLICATION;
	*cancelled = kind == DUROX_FAILURE_CANCELLED;
	return kind;
}

/* The display form Duroxide stored for a failed execution (executions.output), or NULL. */
struct exec_output {
	uint64_t execution_id;
	arena *a;
	const char *output;
};

static int exec_output_cb(void *ud, const store_exec_row *r)
{
	struct exec_output *c = ud;
	if (r->execution_id == c->execution_id && r->output != NULL)
		c->output = arena_strdup(c->a, r->output);
	return 0;
}

/* Builds the item for row x when it is an InstanceEvent of a selected type; 0 when it is not
 * one (nothing added), 1 when added, < 0 on failure. */
static int map_row(durox_event_stream *s, const stream_row *x, int sh)
{
	int payloads = !s->rq.no_payloads;
	arena tmp;
	arena_init(&tmp);
	json *ev = json_parse(&tmp, x->data ? x->data : "", x->data_len, NULL, 0);
	int t = -1;
	buf d;
	buf_init(&d);
	buf_addc(&d, '{');
	int rc = 0;
	switch (sh) {
	case SH_STARTED:
		t = DUROX_IEV_STARTED;
		put_str(&d, "name", json_get_str(ev, "name"));
		put_str(&d, "version", json_get_str(ev, "version"));
		if (payloads)
			put_str(&d, "input", json_get_str(ev, "input"));
		put_str(&d, "parent_instance", json_get_str(ev, "parent_instance"));
		{
			int64_t pid;
			if (json_get_i64(ev, "parent_id", &pid))
				put_int(&d, "parent_id", pid);
		}
		break;
	case SH_COMPLETED:
		t = DUROX_IEV_COMPLETED;
		if (payloads)
			put_str(&d, "output", json_get_str(ev, "output"));
		break;
	case SH_FAILED: {
		int cancelled;
		int kind = stream_failure_of(ev, &cancelled);
		const json *det = json_get(ev, "details");
		t = cancelled ? DUROX_IEV_CANCELLED : DUROX_IEV_FAILED;
		if (!(s->rq.event_types & (1u << t)))
			break;
		const char *reason = cancelled ? cancel_reason(det) : NULL;
		const char *err = NULL;
		if (cancelled && reason != NULL) {
			char *e = arena_alloc(&tmp, strlen(reason) + 11);
			if (e != NULL) {
				memcpy(e, "canceled: ", 10);
				strcpy(e + 10, reason);
			}
			err = e;
		} else {
			struct exec_output c = {x->execution_id, &tmp, NULL};
			if (s->dx->st->vt->executions(s->dx->st, x->instance_id, exec_output_cb, &c) != DUROX_OK)
				s->dx->st->err[0] = '\0';
			err = c.output != NULL ? c.output : error_message(det);
		}
		put_str(&d, "error", err);
		put_str(&d, "failure_kind", durox_failure_kind_name(kind));
		put_str(&d, "reason", reason);
		put_json(&d, "details", det);
		break;
	}
	case SH_CAN:
		t = DUROX_IEV_CONTINUED_AS_NEW;
		if (payloads)
			put_str(&d, "input", json_get_str(ev, "input"));
		break;
	case SH_ACTIVITY_COMPLETED:
	case SH_ACTIVITY_FAILED: {
		t = sh == SH_ACTIVITY_COMPLETED ? DUROX_IEV_ACTIVITY_COMPLETED : DUROX_IEV_ACTIVITY_FAILED;
		if (!(s->rq.event_types & (1u << t)))
			break;
		int64_t src = -1;
		json_get_i64(ev, "source_event_id", &src);
		const char *name = activity_name(s, &tmp, x->instance_id, x->execution_id, src);
		if (name != NULL && strncmp(name, SYSCALL_PREFIX, sizeof SYSCALL_PREFIX - 1) == 0) {
			t = -1; /* Duroxide's system calls (new_guid, utc_now) are not the user's activities */
			break;
		}
		if (src > 0)
			put_int(&d, "activity_id", src);
		put_str(&d, "name", name);
		if (sh == SH_ACTIVITY_COMPLETED) {
			if (payloads)
				put_str(&d, "result", json_get_str(ev, "result"));
		} else {
			const json *det = json_get(ev, "details");
			put_str(&d, "error", error_message(det));
			int kind = format_failure_kind_details(det);
			put_str(&d, "failure_kind",
			        durox_failure_kind_name(kind == DUROX_FAILURE_NONE ? DUROX_FAILURE_APPLICATION : kind));
			put_json(&d, "details", det);
		}
		break;
	}
	case SH_TIMER_FIRED: {
		t = DUROX_IEV_TIMER_FIRED;
		int64_t v;
		if (json_get_i64(ev, "source_event_id", &v))
			put_int(&d, "timer_id", v);
		if (json_get_i64(ev, "fire_at_ms", &v))
			put_int(&d, "fire_at_ms", v);
		break;
	}
	case SH_EXTERNAL_EVENT:
	case SH_QUEUE_EVENT:
		t = DUROX_IEV_EVENT_RECEIVED;
		put_str(&d, "name", json_get_str(ev, "name"));
		if (payloads)
			put_str(&d, "data", json_get_str(ev, "data"));
		put_key(&d, "persistent");
		buf_adds(&d, sh == SH_QUEUE_EVENT ? "true" : "false");
		break;
	default: break;
	}
	buf_addc(&d, '}');
	if (t < 0 || !(s->rq.event_types & (1u << t)))
		goto done;
	durox_instance_event *it = new_item(s);
	if (it == NULL || buf_oom(&d)) {
		rc = DUROX_ENOMEM;
		goto done;
	}
	it->item = DUROX_ITEM_EVENT;
	it->event_type = t;
	it->instance_id = x->instance_id; /* the rows' arena lives until the next poll */
	it->execution_id = x->execution_id;
	it->event_id = x->event_id;
	it->timestamp = efeed_event_ts(x->data, x->data_len, x->created_at);
	it->details = arena_strndup(&s->mem, d.data, d.len);
	char key[64];
	snprintf(key, sizeof key, "/%llu/%llu", (unsigned long long)x->execution_id, (unsigned long long)x->event_id);
	size_t il = strlen(x->instance_id), kl = strlen(key);
	char *k = arena_alloc(&s->mem, il + kl + 1);
	if (k != NULL) {
		memcpy(k, x->instance_id, il);
		memcpy(k + il, key, kl + 1);
	}
	it->key = k;
	it->cursor = efeed_token(&s->e, &s->mem, x->pos, x->pos_len, NULL, 0);
	if (sh == SH_STARTED)
		it->orchestration_name = arena_strdup(&s->mem, json_get_str(ev, "name"));
	if (it->details == NULL || it->key == NULL || it->cursor == NULL)
		rc = DUROX_ENOMEM;
	else
		rc = 1;
done:
	buf_free(&d);
	arena_release(&tmp);
	return rc;
}

/* Summary lookup of a batch: which instances pass the filter and predicate, and their names. */
typedef struct sum_ctx {
	durox_event_stream *s;
	hmap pass; /* instance id -> 1 */
	int rc;
} sum_ctx;

static int sum_cb(void *ud, const durox_instance_summary *sm)
{
	sum_ctx *c = ud;
	durox_event_stream *s = c->s;
	if (s->rq.predicate != NULL) {
		int keep = s->rq.predicate(s->rq.predicate_ud, sm);
		if (keep < 0) {
			c->rc = keep;
			return -1;
		}
		if (!keep)
			return 0;
	}
	int created;
	size_t n = strlen(sm->instance_id);
	if (hmap_put(&c->pass, sm->instance_id, n, &created) == NULL ||
	    map_put(s, &s->names, sm->instance_id, n, sm->orchestration_name, strlen(sm->orchestration_name)) !=
	            DUROX_OK) {
		c->rc = DUROX_ENOMEM;
		return -1;
	}
	return 0;
}

/* The summaries of the given ids that the caller may see and the filter admits (the store
 * tests the filter; access control the rest), chunk by chunk. */
static int lookup(durox_event_stream *s, const char *const *ids, size_t n, sum_ctx *c)
{
	int rc = access_visible_by_id(&s->view, ids, n, sum_cb, c);
	if (c->rc != 0)
		return c->rc == DUROX_ENOMEM ? dx_fail(s->dx, c->rc, "out of memory") : c->rc;
	return rc;
}

/* Turns the rows of the last poll into items. */
static int build_items(durox_event_stream *s)
{
	arena_release(&s->mem);
	arena_init(&s->mem);
	s->n = s->next = 0;
	if (s->activities.count + s->names.count > MAP_MAX)
		maps_reset(s); /* bounded memory; what is forgotten is read from the store again */
	unsigned want = s->rq.event_types;
	int want_acts = (want & ((1u << DUROX_IEV_ACTIVITY_COMPLETED) | (1u << DUROX_IEV_ACTIVITY_FAILED))) != 0;
	int rc = DUROX_OK;
	for (size_t i = 0; i < s->rows.n; i++) {
		stream_row *x = &s->rows.rows[i];
		int sh = stream_history_type(x->event_type);
		if (sh == SH_ACTIVITY_SCHEDULED && want_acts) {
			arena tmp;
			arena_init(&tmp);
			json *ev = json_parse(&tmp, x->data ? x->data : "", x->data_len, NULL, 0);
			const char *name = json_get_str(ev, "name");
			char k[1024];
			size_t kn = act_key(k, sizeof k, x->instance_id, x->execution_id, x->event_id);
			if (name != NULL)
				rc = map_put(s, &s->activities, k, kn, name, strlen(name));
			arena_release(&tmp);
			if (rc != DUROX_OK)
				return dx_fail(s->dx, rc, "out of memory");
			continue;
		}
		int t = -1;
		switch (sh) {
		case SH_STARTED: t = DUROX_IEV_STARTED; break;
		case SH_COMPLETED: t = DUROX_IEV_COMPLETED; break;
		case SH_FAILED: t = want & (1u << DUROX_IEV_FAILED) ? DUROX_IEV_FAILED : DUROX_IEV_CANCELLED; break;
		case SH_CAN: t = DUROX_IEV_CONTINUED_AS_NEW; break;
		case SH_ACTIVITY_COMPLETED: t = DUROX_IEV_ACTIVITY_COMPLETED; break;
		case SH_ACTIVITY_FAILED: t = DUROX_IEV_ACTIVITY_FAILED; break;
		case SH_TIMER_FIRED: t = DUROX_IEV_TIMER_FIRED; break;
		case SH_EXTERNAL_EVENT:
		case SH_QUEUE_EVENT: t = DUROX_IEV_EVENT_RECEIVED; break;
		default: break;
		}
		if (t < 0 || !(want & (1u << t)))
			continue;
		int r = map_row(s, x, sh);
		if (r < 0)
			return r == DUROX_ENOMEM ? dx_fail(s->dx, r, "out of memory") : r;
	}
	if (s->n == 0)
		return DUROX_OK;
	/* names the batch's Started events carry, for its later items and later batches */
	for (size_t i = 0; i < s->n; i++) {
		durox_instance_event *it = &s->items[i];
		if (it->event_type == DUROX_IEV_STARTED && it->orchestration_name != NULL &&
		    map_put(s, &s->names, it->instance_id, strlen(it->instance_id), it->orchestration_name,
		            strlen(it->orchestration_name)) != DUROX_OK)
			return dx_fail(s->dx, DUROX_ENOMEM, "out of memory");
	}
	/* the instances of the items: filter, predicate and names, one query per chunk */
	int need = (s->view.filter != NULL && s->view.filter->root != NULL) || s->rq.predicate != NULL ||
	           s->view.per_row || s->view.nothing;
	const char **ids = malloc(s->n * sizeof *ids);
	if (ids == NULL)
		return dx_fail(s->dx, DUROX_ENOMEM, "out of memory");
	size_t nids = 0;
	hmap seen;
	hmap_init(&seen);
	for (size_t i = 0; i < s->n; i++) {
		const char *id = s->items[i].instance_id;
		if (!need && map_get(&s->names, id, strlen(id)) != NULL)
			continue;
		int created;
		if (hmap_put(&seen, id, strlen(id), &created) == NULL) {
			rc = DUROX_ENOMEM;
			break;
		}
		if (created)
			ids[nids++] = id;
	}
	hmap_free(&seen);
	sum_ctx c = {s, {0}, 0};
	hmap_init(&c.pass);
	if (rc == DUROX_OK && nids > 0)
		rc = lookup(s, ids, nids, &c);
	else if (rc == DUROX_ENOMEM)
		rc = dx_fail(s->dx, rc, "out of memory");
	free(ids);
	if (rc == DUROX_OK) {
		size_t w = 0;
		for (size_t i = 0; i < s->n; i++) {
			durox_instance_event it = s->items[i];
			size_t il = strlen(it.instance_id);
			if (need && hmap_get(&c.pass, it.instance_id, il) == NULL)
				continue;
			const char *name = map_get(&s->names, it.instance_id, il);
			if (name != NULL && (it.orchestration_name = arena_strdup(&s->mem, name)) == NULL) {
				rc = dx_fail(s->dx, DUROX_ENOMEM, "out of memory");
				break;
			}
			s->items[w++] = it;
		}
		s->n = w;
	}
	hmap_free(&c.pass);
	return rc;
}

/* The cursor for everything read so far. */
static const char *current_cursor(durox_event_stream *s, arena *a) { return efeed_current(&s->e, a, NULL, 0); }

int durox_event_stream_next(durox_event_stream *s, const durox_instance_event **ev)
{
	*ev = NULL;
	durox *dx = s->dx;
	dx_clear(dx);
	for (;;) {
		if (s->next < s->n) {
			*ev = &s->items[s->next++];
			s->last_item = time_mono_ms();
			return 1;
		}
		if (s->ended)
			return 0;
		store_feed_result fr;
		dx->st->fvt->save(s->e.f, s->pre, &s->pre_len);
		int rc = stream_poll(&s->e, s->rq.batch_size, s->rq.verify_ms, &s->rows, &fr);
		if (rc != DUROX_OK)
			return rc;
		if (fr.reset != DUROX_RESET_NONE) {
			arena_release(&s->mem);
			arena_init(&s->mem);
			s->n = s->next = 0;
			maps_reset(s);
			durox_instance_event *it = new_item(s);
			if (it == NULL)
				return dx_fail(dx, DUROX_ENOMEM, "out of memory");
			it->item = DUROX_ITEM_RESET;
			it->reset = fr.reset;
			it->reset_reason = arena_strdup(&s->mem, fr.reason);
			it->cursor = current_cursor(s, &s->mem);
			if (it->reset_reason == NULL || it->cursor == NULL)
				return dx_fail(dx, DUROX_ENOMEM, "out of memory");
			continue;
		}
		if ((rc = build_items(s)) != DUROX_OK)
			return rc;
		if (s->n > 0 || fr.more)
			continue;
		/* the present is reached */
		if (!s->rq.follow) {
			s->ended = 1;
			return 0;
		}
		int64_t now = time_mono_ms();
		if (s->rq.timeout_ms > 0 && now - s->t0 >= s->rq.timeout_ms) {
			s->ended = 1;
			return 0;
		}
		if (s->rq.no_wait)
			return 2;
		if (s->rq.heartbeat_ms > 0 && now - s->last_item >= (int64_t)s->rq.heartbeat_ms) {
			durox_instance_event *it = new_item(s);
			if (it == NULL || (it->cursor = current_cursor(s, &s->mem)) == NULL)
				return dx_fail(dx, DUROX_ENOMEM, "out of memory");
			it->item = DUROX_ITEM_HEARTBEAT;
			continue;
		}
		int64_t sleep = s->rq.poll_interval_ms;
		if (s->rq.timeout_ms > 0 && s->t0 + s->rq.timeout_ms - now < sleep)
			sleep = s->t0 + s->rq.timeout_ms - now;
		if (s->rq.heartbeat_ms > 0 && s->last_item + (int64_t)s->rq.heartbeat_ms - now < sleep)
			sleep = s->last_item + (int64_t)s->rq.heartbeat_ms - now;
		if ((rc = stream_wait(dx, s->rq.wait, s->rq.wait_ud, sleep)) != DUROX_OK)
			return rc;
	}
}

const char *durox_event_stream_cursor(durox_event_stream *s)
{
	/* items of the batch not handed out yet: right after the last one that was, or where the
	 * batch began */
	if (s->next < s->n && s->next > 0)
		return s->items[s->next - 1].cursor;
	arena a;
	arena_init(&a);
	const char *t = s->next < s->n ? efeed_token(&s->e, &a, s->pre, s->pre_len, NULL, 0) : current_cursor(s, &a);
	free(s->cursor);
	s->cursor = t != NULL ? strdup(t) : NULL;
	arena_release(&a);
	return s->cursor;
}

size_t durox_event_stream_pending(const durox_event_stream *s) { return s->n - s->next; }
