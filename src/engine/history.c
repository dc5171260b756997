/*
 * history.c - reading execution histories (filtered and paged) and analysing them.
 *
 * The analysis replays the bookkeeping Duroxide's replay engine does, from history
 * alone: which activities, timers and sub-orchestrations are still open, which event
 * subscriptions are open (positional events match the Nth active subscription of a name
 * to the Nth delivered event, and an event raised while no subscription slot is open is
 * recorded but never delivered; queue events match FIFO and buffer until dequeued), and
 * the counts and turn timings of InstanceStatistics. Relies on the provider's history
 * and executions calls and util/json. Used by details.c and by the Lua binding.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "engine/internal.h"
#include "engine/token.h"
#include "store/format.h"
#include "util/buf.h"
#include "util/codec.h"

#define SYSCALL_PREFIX "__duroxide_syscall:"

/* ---- event parsing ------------------------------------------------------------- */

typedef struct parsed_event {
	json *root;
	const char *type;
	int64_t ts;
	int64_t source;
	uint64_t event_id;
} parsed_event;

/* Parses one row into pe using scratch arena a; returns 0, or -1 when the JSON is not a
 * Duroxide event (pe then holds what the columns tell). */
static int parse_event(arena *a, const store_event_row *r, parsed_event *pe)
{
	pe->root = json_parse(a, r->data, r->data_len, NULL, 0);
	pe->type = r->event_type;
	pe->ts = r->created_at == DUROX_NO_TIME ? 0 : r->created_at;
	pe->source = -1;
	pe->event_id = r->event_id;
	if (pe->root == NULL || pe->root->type != JSON_OBJECT)
		return -1;
	const char *t = json_get_str(pe->root, "type");
	if (t != NULL)
		pe->type = t;
	int64_t v;
	if (json_get_i64(pe->root, "timestamp_ms", &v))
		pe->ts = v;
	if (json_get_i64(pe->root, "source_event_id", &v))
		pe->source = v;
	return 0;
}

static int is_payload_member(const char *key, size_t len)
{
	for (const char *const *m = store_payload_members; *m != NULL; m++)
		if (strlen(*m) == len && memcmp(*m, key, len) == 0)
			return 1;
	return 0;
}

/* ---- filtered history ---------------------------------------------------------- */

typedef struct history_result {
	durox_history pub;
	arena mem;
	size_t cap;
} history_result;

void durox_history_free(durox_history *h)
{
	if (h == NULL)
		return;
	history_result *hr = (history_result *)h;
	arena_release(&hr->mem);
	free(hr);
}

void durox_history_request_init(durox_history_request *r, const char *instance_id)
{
	memset(r, 0, sizeof *r);
	r->instance_id = instance_id;
	r->from_time = DUROX_NO_TIME;
	r->to_time = DUROX_NO_TIME;
	r->include_payloads = 1;
}

typedef struct collect_ctx {
	durox *dx;
	history_result *hr;
	int include_payloads;
	arena scratch;
	buf tmp;
	int rc;
} collect_ctx;

static int event_cb(void *ud, const store_event_row *r)
{
	collect_ctx *c = ud;
	history_result *hr = c->hr;
	if (hr->pub.count == hr->cap) {
		size_t cap = hr->cap ? hr->cap * 2 : 64;
		durox_event *ev = arena_calloc(&hr->mem, cap, sizeof *ev);
		if (ev == NULL)
			goto oom;
		if (hr->pub.count)
			memcpy(ev, hr->pub.events, hr->pub.count * sizeof *ev);
		hr->pub.events = ev;
		hr->cap = cap;
	}
	parsed_event pe;
	arena_release(&c->scratch);
	int ok = parse_event(&c->scratch, r, &pe) == 0;
	durox_event *e = &hr->pub.events[hr->pub.count];
	e->execution_id = r->execution_id;
	e->event_id = r->event_id;
	e->source_event_id = pe.source;
	e->timestamp_ms = pe.ts;
	e->event_type = arena_strdup(&hr->mem, pe.type != NULL ? pe.type : "");
	if (e->event_type == NULL)
		goto oom;
	if (c->include_payloads || !ok) {
		e->data = arena_strndup(&hr->mem, r->data, r->data_len);
		e->data_len = r->data_len;
	} else {
		buf_reset(&c->tmp);
		buf_addc(&c->tmp, '{');
		int first = 1;
		for (const json *m = pe.root->child; m != NULL; m = m->next) {
			if (is_payload_member(m->key, m->keylen))
				continue;
			if (!first)
				buf_addc(&c->tmp, ',');
			first = 0;
			buf_add_json_string(&c->tmp, m->key, m->keylen);
			buf_addc(&c->tmp, ':');
			json_emit(&c->tmp, m);
		}
		buf_addc(&c->tmp, '}');
		if (buf_oom(&c->tmp))
			goto oom;
		e->data = arena_strndup(&hr->mem, c->tmp.data, c->tmp.len);
		e->data_len = c->tmp.len;
	}
	if (e->data == NULL)
		goto oom;
	hr->pub.count++;
	return 0;
oom:
	c->rc = DUROX_ENOMEM;
	return -1;
}

/* Resolves execution 0 to the current one and checks that the execution exists. */
static int resolve_execution(durox *dx, const char *instance_id, uint64_t *execution_id)
{
	int exists;
	uint64_t current;
	int rc = dx->st->vt->instance_exists(dx->st, instance_id, &exists, &current);
	if (rc != DUROX_OK)
		return dx_store_fail(dx, rc);
	if (!exists)
		return dx_fail_missing(dx, instance_id, "history");
	if (*execution_id == 0) {
		*execution_id = current;
		return DUROX_OK;
	}
	uint64_t latest;
	rc = dx->st->vt->latest_execution(dx->st, instance_id, &latest);
	if (rc != DUROX_OK)
		return dx_store_fail(dx, rc);
	if (*execution_id > latest && *execution_id > current)
		return dx_fail(dx, DUROX_ENOTFOUND, "execution %llu of instance '%s' not found",
		               (unsigned long long)*execution_id, instance_id);
	return DUROX_OK;
}

static uint64_t history_fingerprint(durox *dx, const durox_history_request *req, uint64_t exec)
{
	buf b;
	buf_init(&b);
	token_put_str(&b, req->instance_id);
	token_put_u64(&b, exec);
	for (size_t k = 0; k < req->n_event_types; k++)
		token_put_str(&b, req->event_types[k]);
	token_put_u64(&b, req->from_event_id);
	token_put_u64(&b, req->to_event_id);
	/* Time bounds are not part of the fingerprint: callers pass relative times ('-1h')
	 * resolved per call, and event ids only grow, so a page continues correctly after
	 * its last event id whatever the window has moved to. */
	buf_addc(&b, req->from_time != DUROX_NO_TIME ? 1 : 0);
	buf_addc(&b, req->to_time != DUROX_NO_TIME ? 1 : 0);
	buf_addc(&b, req->include_payloads ? 1 : 0);
	uint64_t h = fnv1a64(FNV1A64_INIT, b.data, b.len);
	buf_free(&b);
	return access_fingerprint(dx, h);
}

int durox_get_execution_history_filtered(durox *dx, const durox_history_request *req, durox_history **out)
{
	*out = NULL;
	dx_clear(dx);
	if (req->instance_id == NULL)
		return dx_fail(dx, DUROX_EINVALID, "no instance id given");
	if (req->n_event_types > 64)
		return dx_fail(dx, DUROX_EINVALID, "too many event types (at most 64)");
	for (size_t k = 0; k < req->n_event_types; k++)
		if (req->event_types[k] == NULL)
			return dx_fail(dx, DUROX_EINVALID, "event type #%zu is missing", k + 1);
	int rc = access_instance(dx, "get_execution_history", DUROX_HOOK_VIEW_HISTORY, req->instance_id, NULL, NULL,
	                         NULL, NULL);
	if (rc != DUROX_OK)
		return rc;
	uint64_t exec = req->execution_id;
	rc = resolve_execution(dx, req->instance_id, &exec);
	if (rc != DUROX_OK)
		return rc;
	store_history_query q = {req->instance_id,
	                         exec,
	                         req->from_event_id,
	                         req->to_event_id,
	                         req->event_types,
	                         req->n_event_types,
	                         req->from_time,
	                         req->to_time,
	                         0,
	                         1};
	uint64_t fp = history_fingerprint(dx, req, exec);
	if (req->page_token != NULL && req->page_token[0] != '\0') {
		buf raw;
		buf_init(&raw);
		token_reader r;
		int bad = token_open(req->page_token, &raw) != 0;
		uint64_t last = 0;
		if (!bad) {
			token_reader_init(&r, &raw);
			bad = token_get_u8(&r) != 'H';
			uint64_t tfp = token_get_u64(&r);
			last = token_get_u64(&r);
			if (!bad && token_reader_done(&r) && tfp != fp) {
				buf_free(&raw);
				return dx_fail(dx, DUROX_EINVALID,
				               "page token was issued for a different history request; repeat the "
				               "first request "
				               "without a token");
			}
			bad = bad || !token_reader_done(&r);
		}
		buf_free(&raw);
		if (bad)
			return dx_fail(dx, DUROX_EINVALID, "malformed history page token");
		if (last + 1 > q.from_event_id)
			q.from_event_id = last + 1;
	}
	if (req->page_size > 0)
		q.limit = req->page_size + 1;
	history_result *hr = calloc(1, sizeof *hr);
	if (hr == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena_init(&hr->mem);
	hr->pub.execution_id = exec;
	collect_ctx c = {dx, hr, req->include_payloads, {0}, {0}, DUROX_OK};
	arena_init(&c.scratch);
	buf_init(&c.tmp);
	rc = dx->st->vt->history(dx->st, &q, event_cb, &c);
	arena_release(&c.scratch);
	buf_free(&c.tmp);
	if (rc != DUROX_OK) {
		rc = c.rc != DUROX_OK ? dx_fail(dx, c.rc, "out of memory") : dx_store_fail(dx, rc);
		durox_history_free(&hr->pub);
		return rc;
	}
	if (req->page_size > 0 && hr->pub.count > req->page_size) {
		hr->pub.count = req->page_size;
		buf b;
		buf_init(&b);
		buf_addc(&b, 'H');
		token_put_u64(&b, fp);
		token_put_u64(&b, hr->pub.events[hr->pub.count - 1].event_id);
		hr->pub.next_page_token = token_seal(&hr->mem, &b);
		buf_free(&b);
		if (hr->pub.next_page_token == NULL) {
			durox_history_free(&hr->pub);
			return dx_fail(dx, DUROX_ENOMEM, "out of memory");
		}
	}
	*out = &hr->pub;
	return DUROX_OK;
}

int durox_read_execution_history(durox *dx, const char *instance_id, uint64_t execution_id, durox_history **out)
{
	durox_history_request req;
	durox_history_request_init(&req, instance_id);
	req.execution_id = execution_id;
	return durox_get_execution_history_filtered(dx, &req, out);
}

/* ---- analysis ------------------------------------------------------------------ */

enum rec_kind { R_NONE, R_ACTIVITY, R_SYSCALL, R_TIMER, R_SUB, R_CHILD, R_QSUB };

typedef struct ev_rec {
	unsigned char kind;
	unsigned char open;
	unsigned char cancelled;
	const char *name, *input, *tag, *session, *child;
	int64_t ts, fire_at;
} ev_rec;

typedef struct name_slot {
	const char *name;
	uint64_t active;   /* non-cancelled subscriptions so far */
	uint64_t arrivals; /* delivered events */
	int queue;
} name_slot;

typedef struct analyser {
	durox *dx;
	arena *a;      /* results */
	arena scratch; /* per event */
	exec_analysis *ea;
	const char *instance_id;
	ev_rec *recs;
	size_t nrecs;
	name_slot *names;
	size_t nnames, capnames;
	int in_turn; /* a turn is open */
	int last_was_trigger;
	int64_t turn_first, turn_last;
	int rc;
} analyser;

static ev_rec *rec_at(analyser *an, uint64_t id)
{
	if (id >= an->nrecs) {
		size_t n = an->nrecs ? an->nrecs : 64;
		while (n <= id)
			n *= 2;
		ev_rec *r = realloc(an->recs, n * sizeof *r);
		if (r == NULL)
			return NULL;
		memset(r + an->nrecs, 0, (n - an->nrecs) * sizeof *r);
		an->recs = r;
		an->nrecs = n;
	}
	return &an->recs[id];
}

static name_slot *slot_for(analyser *an, const char *name, int queue)
{
	for (size_t k = 0; k < an->nnames; k++)
		if (an->names[k].queue == queue && strcmp(an->names[k].name, name) == 0)
			return &an->names[k];
	if (an->nnames == an->capnames) {
		size_t cap = an->capnames ? an->capnames * 2 : 8;
		name_slot *ns = realloc(an->names, cap * sizeof *ns);
		if (ns == NULL)
			return NULL;
		an->names = ns;
		an->capnames = cap;
	}
	name_slot *s = &an->names[an->nnames++];
	s->name = arena_strdup(an->a, name);
	s->active = s->arrivals = 0;
	s->queue = queue;
	return s->name != NULL ? s : NULL;
}

static int is_trigger(const char *t)
{
	static const char *const triggers[] = {"OrchestrationStarted",
	                                       "ActivityCompleted",
	                                       "ActivityFailed",
	                                       "TimerFired",
	                                       "ExternalEvent",
	                                       "ExternalEventPersistent",
	                                       "SubOrchestrationCompleted",
	                                       "SubOrchestrationFailed",
	                                       "OrchestrationCancelRequested",
	                                       NULL};
	for (const char *const *p = triggers; *p; p++)
		if (strcmp(t, *p) == 0)
			return 1;
	return 0;
}

static const char *keep(analyser *an, const char *s)
{
	if (s == NULL)
		return NULL;
	const char *c = arena_strdup(an->a, s);
	if (c == NULL)
		an->rc = DUROX_ENOMEM;
	return c;
}

static void close_source(analyser *an, int64_t src, int kind)
{
	if (src < 0 || (uint64_t)src >= an->nrecs)
		return;
	ev_rec *r = &an->recs[src];
	if (r->kind == kind)
		r->open = 0;
}

static int analyse_cb(void *ud, const store_event_row *row)
{
	analyser *an = ud;
	exec_analysis *ea = an->ea;
	durox_instance_statistics *st = &ea->stats;
	parsed_event pe;
	arena_release(&an->scratch);
	if (parse_event(&an->scratch, row, &pe) != 0 || pe.type == NULL)
		return 0; /* unreadable rows are shown by history reads, skipped by the analysis */
	/* Duroxide's event ids are dense (1..n in each execution): an id far beyond the rows seen
	 * is a corrupt row, skipped like an unreadable one (its record would need memory for
	 * every id below it; fuzz_history found this) */
	if (pe.event_id > 4 * (ea->events + 1) + 1024)
		return 0;
	const char *t = pe.type;
	const json *ev = pe.root;
	ea->events++;
	if (ea->first_ts == DUROX_NO_TIME)
		ea->first_ts = pe.ts;
	ea->last_ts = pe.ts;

	/* turns: a trigger after a decision (or at the start) opens a new turn */
	int trig = is_trigger(t);
	if (trig && (!an->in_turn || !an->last_was_trigger)) {
		if (an->in_turn) {
			ea->turn_time_sum += (double)(an->turn_last - an->turn_first);
			st->total_turns++;
		}
		an->in_turn = 1;
		an->turn_first = pe.ts;
	}
	if (an->in_turn)
		an->turn_last = pe.ts;
	an->last_was_trigger = trig;

	ev_rec *rec = rec_at(an, pe.event_id);
	if (rec == NULL)
		goto oom;
	rec->ts = pe.ts;
	if (strcmp(t, "OrchestrationStarted") == 0) {
		ea->started_ts = pe.ts;
		ea->input = keep(an, json_get_str(ev, "input"));
	} else if (strcmp(t, "ActivityScheduled") == 0) {
		const char *name = json_get_str(ev, "name");
		rec->open = 1;
		if (name != NULL && strncmp(name, SYSCALL_PREFIX, sizeof SYSCALL_PREFIX - 1) == 0) {
			rec->kind = R_SYSCALL;
		} else {
			rec->kind = R_ACTIVITY;
			st->total_activities_scheduled++;
			rec->name = keep(an, name);
			rec->input = keep(an, json_get_str(ev, "input"));
			rec->tag = keep(an, json_get_str(ev, "tag"));
			rec->session = keep(an, json_get_str(ev, "session_id"));
		}
	} else if (strcmp(t, "ActivityCompleted") == 0 || strcmp(t, "ActivityFailed") == 0) {
		if (pe.source >= 0 && (uint64_t)pe.source < an->nrecs && an->recs[pe.source].kind == R_ACTIVITY) {
			if (t[8] == 'C')
				st->total_activities_completed++;
			else
				st->total_activities_failed++;
		}
		close_source(an, pe.source, R_ACTIVITY);
		close_source(an, pe.source, R_SYSCALL);
	} else if (strcmp(t, "ActivityCancelRequested") == 0) {
		close_source(an, pe.source, R_ACTIVITY);
		close_source(an, pe.source, R_SYSCALL);
	} else if (strcmp(t, "TimerCreated") == 0) {
		st->total_timers_scheduled++;
		rec->kind = R_TIMER;
		rec->open = 1;
		int64_t fire;
		rec->fire_at = json_get_i64(ev, "fire_at_ms", &fire) ? fire : pe.ts;
	} else if (strcmp(t, "TimerFired") == 0) {
		st->total_timers_fired++;
		close_source(an, pe.source, R_TIMER);
	} else if (strcmp(t, "ExternalSubscribed") == 0 || strcmp(t, "ExternalSubscribedPersistent") == 0) {
		int queue = t[18] == 'P';
		const char *name = json_get_str(ev, "name");
		st->total_events_subscribed++;
		rec->kind = queue ? R_QSUB : R_SUB;
		rec->open = 1;
		rec->name = keep(an, name != NULL ? name : "");
		name_slot *s = slot_for(an, rec->name != NULL ? rec->name : "", queue);
		if (s == NULL)
			goto oom;
		s->active++;
	} else if (strcmp(t, "ExternalSubscribedCancelled") == 0 ||
	           strcmp(t, "ExternalSubscribedPersistentCancelled") == 0) {
		int kind = t[18] == 'P' ? R_QSUB : R_SUB;
		if (pe.source >= 0 && (uint64_t)pe.source < an->nrecs) {
			ev_rec *sub = &an->recs[pe.source];
			if (sub->kind == kind && !sub->cancelled) {
				sub->cancelled = 1;
				name_slot *s = slot_for(an, sub->name != NULL ? sub->name : "", kind == R_QSUB);
				if (s == NULL)
					goto oom;
				if (s->active > 0)
					s->active--;
			}
		}
	} else if (strcmp(t, "ExternalEvent") == 0 || strcmp(t, "ExternalEventPersistent") == 0) {
		int queue = t[13] == 'P';
		const char *name = json_get_str(ev, "name");
		st->total_events_received++;
		name_slot *s = slot_for(an, name != NULL ? name : "", queue);
		if (s == NULL)
			goto oom;
		/* positional: delivered only while an active subscription slot is unmatched */
		if (queue || s->active > s->arrivals)
			s->arrivals++;
	} else if (strcmp(t, "SubOrchestrationScheduled") == 0) {
		st->total_sub_orchestrations++;
		rec->kind = R_CHILD;
		rec->open = 1;
		rec->name = keep(an, json_get_str(ev, "name"));
		const char *child = json_get_str(ev, "instance");
		char autoid[40];
		snprintf(autoid, sizeof autoid, "sub::%llu", (unsigned long long)pe.event_id);
		if (child != NULL && strcmp(child, autoid) == 0) {
			/* auto ids are stored short: the full id is <parent>::sub::<event id> */
			size_t n = strlen(an->instance_id) + 2 + strlen(child) + 1;
			char *full = arena_alloc(an->a, n);
			if (full == NULL)
				goto oom;
			snprintf(full, n, "%s::%s", an->instance_id, child);
			rec->child = full;
		} else {
			rec->child = keep(an, child);
		}
	} else if (strcmp(t, "SubOrchestrationCompleted") == 0 || strcmp(t, "SubOrchestrationFailed") == 0 ||
	           strcmp(t, "SubOrchestrationCancelRequested") == 0) {
		close_source(an, pe.source, R_CHILD);
	} else if (strcmp(t, "OrchestrationCompleted") == 0) {
		ea->terminal_ts = pe.ts;
	} else if (strcmp(t, "OrchestrationFailed") == 0) {
		ea->terminal_ts = pe.ts;
		const json *d = json_get(ev, "details");
		if (d != NULL) {
			buf b;
			buf_init(&b);
			json_emit(&b, d);
			ea->details_json = buf_oom(&b) ? NULL : arena_strndup(an->a, b.data, b.len);
			buf_free(&b);
			if (ea->details_json == NULL)
				goto oom;
		}
		ea->failure_kind = format_failure_kind_details(d);
	} else if (strcmp(t, "OrchestrationContinuedAsNew") == 0) {
		ea->terminal_ts = pe.ts;
		ea->can_input = keep(an, json_get_str(ev, "input"));
	}
	return an->rc == DUROX_OK ? 0 : -1;
oom:
	an->rc = DUROX_ENOMEM;
	return -1;
}

/* Builds the pending lists of ea from the analyser's records. */
static int collect_pending(analyser *an)
{
	durox_execution_details *d = &an->ea->pending;
	size_t na = 0, nt = 0, ne = 0, nc = 0;
	for (size_t id = 0; id < an->nrecs; id++) {
		const ev_rec *r = &an->recs[id];
		if (!r->open)
			continue;
		na += r->kind == R_ACTIVITY;
		nt += r->kind == R_TIMER;
		ne += (r->kind == R_SUB || r->kind == R_QSUB) && !r->cancelled;
		nc += r->kind == R_CHILD;
	}
	d->pending_activities = arena_calloc(an->a, na + 1, sizeof *d->pending_activities);
	d->pending_timers = arena_calloc(an->a, nt + 1, sizeof *d->pending_timers);
	d->pending_events = arena_calloc(an->a, ne + 1, sizeof *d->pending_events);
	d->pending_children = arena_calloc(an->a, nc + 1, sizeof *d->pending_children);
	if (!d->pending_activities || !d->pending_timers || !d->pending_events || !d->pending_children)
		return DUROX_ENOMEM;
	/* position of each subscription among the active ones of its name */
	for (size_t k = 0; k < an->nnames; k++)
		an->names[k].active = 0;
	for (size_t id = 0; id < an->nrecs; id++) {
		const ev_rec *r = &an->recs[id];
		if (!r->open)
			continue;
		switch (r->kind) {
		case R_ACTIVITY:
			d->pending_activities[d->n_pending_activities++] = (durox_pending_activity){
			        id, r->name ? r->name : "", r->input ? r->input : "", r->ts, r->tag, r->session};
			break;
		case R_TIMER:
			d->pending_timers[d->n_pending_timers++] = (durox_pending_timer){
			        id, r->fire_at > r->ts ? (uint64_t)(r->fire_at - r->ts) : 0, r->ts, r->fire_at};
			break;
		case R_CHILD:
			d->pending_children[d->n_pending_children++] =
			        (durox_pending_child){id, r->name ? r->name : "", r->child ? r->child : "", r->ts};
			break;
		case R_SUB:
		case R_QSUB: {
			if (r->cancelled)
				break;
			name_slot *s = slot_for(an, r->name ? r->name : "", r->kind == R_QSUB);
			if (s == NULL)
				return DUROX_ENOMEM;
			uint64_t index = s->active++;
			if (index >= s->arrivals)
				d->pending_events[d->n_pending_events++] =
				        (durox_pending_event){id, r->name ? r->name : "", r->ts, r->kind == R_QSUB};
			break;
		}
		default: break;
		}
	}
	for (size_t k = 0; k < an->nnames; k++)
		if (an->names[k].queue && an->names[k].arrivals > an->names[k].active)
			d->buffered_queue_messages += an->names[k].arrivals - an->names[k].active;
	return DUROX_OK;
}

static void analyse_start(analyser *an, durox *dx, arena *a, const char *instance_id, uint64_t execution_id,
                          exec_analysis *ea)
{
	memset(ea, 0, sizeof *ea);
	ea->execution_id = execution_id;
	ea->first_ts = ea->last_ts = ea->started_ts = ea->terminal_ts = DUROX_NO_TIME;
	*an = (analyser){.dx = dx, .a = a, .ea = ea, .instance_id = instance_id, .rc = DUROX_OK};
	arena_init(&an->scratch);
}

static int analyse_finish(analyser *an, int rc, int want_pending);

int analyse_execution(durox *dx, arena *a, const char *instance_id, uint64_t execution_id, int want_pending,
                      exec_analysis *ea)
{
	analyser an;
	analyse_start(&an, dx, a, instance_id, execution_id, ea);
	store_history_query q = {instance_id, execution_id, 0, 0, NULL, 0, DUROX_NO_TIME, DUROX_NO_TIME, 0, 1};
	int rc = dx->st->vt->history(dx->st, &q, analyse_cb, &an);
	if (rc != DUROX_OK)
		rc = an.rc != DUROX_OK ? dx_fail(dx, an.rc, "out of memory") : dx_store_fail(dx, rc);
	return analyse_finish(&an, rc, want_pending);
}

int analyse_rows(durox *dx, arena *a, const char *instance_id, uint64_t execution_id, const store_event_row *rows,
                 size_t n, int want_pending, exec_analysis *ea)
{
	analyser an;
	analyse_start(&an, dx, a, instance_id, execution_id, ea);
	int rc = DUROX_OK;
	for (size_t k = 0; k < n && rc == DUROX_OK; k++)
		if (analyse_cb(&an, &rows[k]) != 0)
			rc = dx_fail(dx, an.rc != DUROX_OK ? an.rc : DUROX_ENOMEM, "out of memory");
	return analyse_finish(&an, rc, want_pending);
}

static int analyse_finish(analyser *an, int rc, int want_pending)
{
	durox *dx = an->dx;
	exec_analysis *ea = an->ea;
	uint64_t execution_id = ea->execution_id;
	if (rc == DUROX_OK && an->in_turn) {
		ea->turn_time_sum += (double)(an->turn_last - an->turn_first);
		ea->stats.total_turns++;
	}
	ea->stats.total_history_events = ea->events;
	if (rc == DUROX_OK && ea->started_ts != DUROX_NO_TIME) {
		int64_t end = ea->terminal_ts != DUROX_NO_TIME ? ea->terminal_ts : ea->last_ts;
		if (end > ea->started_ts)
			ea->stats.total_execution_time_ms = (uint64_t)(end - ea->started_ts);
	}
	if (rc == DUROX_OK && want_pending && collect_pending(an) != DUROX_OK)
		rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
	if (rc == DUROX_OK) {
		ea->pending.execution_id = execution_id;
		ea->pending.completed_activities = ea->stats.total_activities_completed;
		ea->pending.failed_activities = ea->stats.total_activities_failed;
	}
	arena_release(&an->scratch);
	free(an->recs);
	free(an->names);
	return rc;
}
