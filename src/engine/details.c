/*
 * details.c - single-instance reads: get_orchestration_status (derived as Duroxide's
 * client derives it), get_orchestration_descriptor, list_executions,
 * get_instance_details and get_instance_statistics.
 * Relies on the provider and on history.c's analysis. Used by the Lua binding.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "engine/internal.h"
#include "store/format.h"
#include "store/ops.h"
#include "util/buf.h"

/* ---- one summary ---------------------------------------------------------------- */

typedef struct one_summary {
	arena *a;
	durox_instance_summary s;
	int found;
	int rc;
} one_summary;

static int one_cb(void *ud, const durox_instance_summary *r)
{
	one_summary *o = ud;
	if (summary_copy(o->a, &o->s, r) != DUROX_OK) {
		o->rc = DUROX_ENOMEM;
		return -1;
	}
	o->found = 1;
	return 1;
}

static int load_summary(durox *dx, arena *a, const char *id, durox_instance_summary *out, int *found)
{
	one_summary o = {a, {0}, 0, DUROX_OK};
	const char *ids[1] = {id};
	int rc = dx->st->vt->summaries_by_id(dx->st, ids, 1, one_cb, &o);
	if (rc != DUROX_OK)
		return o.rc != DUROX_OK ? dx_fail(dx, o.rc, "out of memory") : dx_store_fail(dx, rc);
	*found = o.found;
	*out = o.s;
	return DUROX_OK;
}

/* ---- a start still queued ------------------------------------------------------------ */

typedef struct queued_start {
	arena *a;
	arena scratch;
	durox_instance_summary *s;
	const char *input;
	int found, rc;
} queued_start;

static int queued_start_cb(void *ud, const char *work_item)
{
	queued_start *q = ud;
	if (q->found || strncmp(work_item, "{\"StartOrchestration\":", 22) != 0)
		return 0;
	arena_release(&q->scratch);
	const json *v = json_first(json_parse(&q->scratch, work_item, strlen(work_item), NULL, 0));
	if (v == NULL)
		return 0;
	const char *name = json_get_str(v, "orchestration"), *version = json_get_str(v, "version");
	const char *parent = json_get_str(v, "parent_instance"), *input = json_get_str(v, "input");
	q->s->orchestration_name = arena_strdup(q->a, name != NULL ? name : "");
	q->s->version = version != NULL ? arena_strdup(q->a, version) : NULL;
	q->s->parent_instance = parent != NULL ? arena_strdup(q->a, parent) : NULL;
	q->input = input != NULL ? arena_strdup(q->a, input) : NULL;
	if (q->s->orchestration_name == NULL || (version && !q->s->version) || (parent && !q->s->parent_instance) ||
	    (input && !q->input)) {
		q->rc = DUROX_ENOMEM;
		return -1;
	}
	q->found = 1;
	return 0;
}

static int missing_cb(void *ud, const store_status_row *r)
{
	*(int *)ud = !r->exists && r->pending_start;
	return 0;
}

int dx_fail_missing(durox *dx, const char *id, const char *what)
{
	int pending = 0;
	if (!access_enabled(dx) && dx->st->ops != NULL && dx->st->ops->statuses != NULL) {
		const char *ids[1] = {id};
		if (dx->st->ops->statuses(dx->st, ids, 1, missing_cb, &pending) != DUROX_OK)
			pending = 0; /* the plain message then */
	}
	if (pending)
		return dx_fail(
		        dx, DUROX_ENOTFOUND,
		        "instance '%s' is Pending: its start is queued and the runtime has not created it yet, so"
		        " it has no %s yet",
		        id, what);
	return dx_fail(dx, DUROX_ENOTFOUND, "instance '%s' not found", id);
}

/* For an id without an instance row: whether its StartOrchestration is queued (the runtime
 * has not created the instance yet); then *s is a summary of status Pending from that work
 * item, allocated from a, and *input its input. */
static int load_queued_start(durox *dx, arena *a, const char *id, durox_instance_summary *s, const char **input,
                             int *found)
{
	*found = 0;
	if (dx->st->ops == NULL || dx->st->ops->queued_items == NULL)
		return DUROX_OK;
	memset(s, 0, sizeof *s);
	queued_start q = {a, {0}, s, NULL, 0, DUROX_OK};
	arena_init(&q.scratch);
	int rc = dx->st->ops->queued_items(dx->st, id, queued_start_cb, &q);
	arena_release(&q.scratch);
	if (rc != DUROX_OK)
		return q.rc != DUROX_OK ? dx_fail(dx, q.rc, "out of memory") : dx_store_fail(dx, rc);
	if (!q.found)
		return DUROX_OK;
	s->instance_id = arena_strdup(a, id);
	if (s->instance_id == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	s->status = DUROX_STATUS_PENDING;
	s->created_at = s->updated_at = s->completed_at = DUROX_NO_TIME;
	s->parent_id = -1;
	*input = q.input;
	*found = 1;
	return DUROX_OK;
}

/* ---- client status --------------------------------------------------------------- */

typedef struct status_result {
	durox_orchestration_status pub;
	arena mem;
} status_result;

void durox_orchestration_status_free(durox_orchestration_status *s)
{
	if (s == NULL)
		return;
	status_result *sr = (status_result *)s;
	arena_release(&sr->mem);
	free(sr);
}

typedef struct status_scan {
	arena *a;
	arena scratch;
	int started;
	int terminal; /* 0 none, 1 completed, 2 failed */
	const char *output, *details;
	int failure_kind;
	const char *error_text;
	int rc;
} status_scan;

static int status_cb(void *ud, const store_event_row *r)
{
	status_scan *ss = ud;
	arena_release(&ss->scratch);
	json *ev = json_parse(&ss->scratch, r->data, r->data_len, NULL, 0);
	const char *t = json_get_str(ev, "type");
	if (t == NULL)
		t = r->event_type;
	if (t == NULL)
		return 0;
	if (strcmp(t, "OrchestrationStarted") == 0) {
		ss->started = 1;
	} else if (strcmp(t, "OrchestrationCompleted") == 0) {
		ss->terminal = 1;
		ss->output = arena_strdup(ss->a, json_get_str(ev, "output") ? json_get_str(ev, "output") : "");
		if (ss->output == NULL)
			ss->rc = DUROX_ENOMEM;
	} else if (strcmp(t, "OrchestrationFailed") == 0) {
		ss->terminal = 2;
		const json *d = json_get(ev, "details");
		ss->failure_kind = format_failure_kind_details(d);
		if (d != NULL) {
			buf b;
			buf_init(&b);
			json_emit(&b, d);
			ss->details = buf_oom(&b) ? NULL : arena_strndup(ss->a, b.data, b.len);
			buf_free(&b);
			if (ss->details == NULL)
				ss->rc = DUROX_ENOMEM;
		}
	}
	return ss->rc == DUROX_OK ? 0 : -1;
}

int durox_get_orchestration_status(durox *dx, const char *instance_id, durox_orchestration_status **out)
{
	*out = NULL;
	dx_clear(dx);
	if (instance_id == NULL)
		return dx_fail(dx, DUROX_EINVALID, "no instance id given");
	int rc = access_instance(dx, "get_orchestration_status", DUROX_HOOK_VIEW_INSTANCE, instance_id, NULL, NULL,
	                         NULL, NULL);
	int hidden = rc == DUROX_ENOTFOUND; /* reported as NotFound, like a missing instance */
	if (rc != DUROX_OK && !hidden)
		return rc;
	status_result *sr = calloc(1, sizeof *sr);
	if (sr == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena_init(&sr->mem);
	durox_orchestration_status *st = &sr->pub;
	if (hidden) {
		dx_clear(dx);
		st->status = DUROX_STATUS_NOT_FOUND;
		*out = st;
		return DUROX_OK;
	}
	uint64_t latest;
	rc = dx->st->vt->latest_execution(dx->st, instance_id, &latest);
	if (rc != DUROX_OK) {
		rc = dx_store_fail(dx, rc);
		goto fail;
	}
	/* Duroxide reads the latest execution (COALESCE(MAX(execution_id), 1)). */
	static const char *const types[] = {"OrchestrationStarted", "OrchestrationCompleted", "OrchestrationFailed"};
	store_history_query q = {instance_id, latest ? latest : 1, 0, 0, types, 3, DUROX_NO_TIME, DUROX_NO_TIME, 0, 1};
	status_scan ss = {.a = &sr->mem, .rc = DUROX_OK};
	arena_init(&ss.scratch);
	rc = dx->st->vt->history(dx->st, &q, status_cb, &ss);
	arena_release(&ss.scratch);
	if (rc != DUROX_OK) {
		rc = ss.rc != DUROX_OK ? dx_fail(dx, ss.rc, "out of memory") : dx_store_fail(dx, rc);
		goto fail;
	}
	if (ss.terminal == 1) {
		st->status = DUROX_STATUS_COMPLETED;
		st->output = ss.output;
	} else if (ss.terminal == 2) {
		st->status = DUROX_STATUS_FAILED;
		st->details = ss.details;
		st->failure_kind = ss.failure_kind ? ss.failure_kind : DUROX_FAILURE_APPLICATION;
	} else {
		st->status = ss.started ? DUROX_STATUS_RUNNING : DUROX_STATUS_NOT_FOUND;
	}
	if (st->status == DUROX_STATUS_NOT_FOUND) {
		durox_instance_summary qs;
		const char *input;
		int queued;
		if ((rc = load_queued_start(dx, &sr->mem, instance_id, &qs, &input, &queued)) != DUROX_OK)
			goto fail;
		if (queued)
			st->status = DUROX_STATUS_PENDING;
	}
	if (st->status != DUROX_STATUS_NOT_FOUND && st->status != DUROX_STATUS_PENDING) {
		durox_instance_summary sum = {0};
		int found = 0;
		rc = load_summary(dx, &sr->mem, instance_id, &sum, &found);
		if (rc != DUROX_OK)
			goto fail;
		if (found) {
			st->custom_status = sum.custom_status;
			st->custom_status_version = sum.custom_status_version;
		}
		if (st->status == DUROX_STATUS_FAILED) {
			/* the display form Duroxide stored with the failed execution */
			if (found && sum.status == DUROX_STATUS_FAILED && sum.error != NULL)
				st->error = sum.error;
			else
				st->error = st->details != NULL ? st->details : "";
		}
	}
	*out = st;
	return DUROX_OK;
fail:
	durox_orchestration_status_free(st);
	return rc;
}

/* ---- descriptor ---------------------------------------------------------------- */

typedef struct descriptor_result {
	durox_descriptor pub;
	arena mem;
} descriptor_result;

void durox_descriptor_free(durox_descriptor *d)
{
	if (d == NULL)
		return;
	descriptor_result *dr = (descriptor_result *)d;
	arena_release(&dr->mem);
	free(dr);
}

typedef struct desc_scan {
	arena *a;
	arena scratch;
	durox_descriptor *d;
	int found;
	int rc;
} desc_scan;

static int desc_cb(void *ud, const store_event_row *r)
{
	desc_scan *ds = ud;
	arena_release(&ds->scratch);
	json *ev = json_parse(&ds->scratch, r->data, r->data_len, NULL, 0);
	if (ev == NULL)
		return 0;
	ds->found = 1;
	const char *name = json_get_str(ev, "name"), *version = json_get_str(ev, "version");
	const char *parent = json_get_str(ev, "parent_instance");
	ds->d->name = arena_strdup(ds->a, name ? name : "");
	ds->d->version = arena_strdup(ds->a, version ? version : "");
	ds->d->parent_instance = parent ? arena_strdup(ds->a, parent) : NULL;
	int64_t pid;
	ds->d->parent_id = json_get_i64(ev, "parent_id", &pid) ? pid : -1;
	if (!ds->d->name || !ds->d->version || (parent && !ds->d->parent_instance)) {
		ds->rc = DUROX_ENOMEM;
		return -1;
	}
	return 0; /* keep going: the last OrchestrationStarted wins */
}

int durox_get_orchestration_descriptor(durox *dx, const char *instance_id, durox_descriptor **out)
{
	*out = NULL;
	dx_clear(dx);
	if (instance_id == NULL)
		return dx_fail(dx, DUROX_EINVALID, "no instance id given");
	int rc = access_instance(dx, "get_orchestration_descriptor", DUROX_HOOK_VIEW_HISTORY, instance_id, NULL, NULL,
	                         NULL, NULL);
	if (rc != DUROX_OK)
		return rc;
	descriptor_result *dr = calloc(1, sizeof *dr);
	if (dr == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena_init(&dr->mem);
	uint64_t latest;
	rc = dx->st->vt->latest_execution(dx->st, instance_id, &latest);
	if (rc != DUROX_OK) {
		rc = dx_store_fail(dx, rc);
		goto fail;
	}
	static const char *const types[] = {"OrchestrationStarted"};
	store_history_query q = {instance_id, latest ? latest : 1, 0, 0, types, 1, DUROX_NO_TIME, DUROX_NO_TIME, 0, 1};
	desc_scan ds = {&dr->mem, {0}, &dr->pub, 0, DUROX_OK};
	arena_init(&ds.scratch);
	rc = dx->st->vt->history(dx->st, &q, desc_cb, &ds);
	arena_release(&ds.scratch);
	if (rc != DUROX_OK) {
		rc = ds.rc != DUROX_OK ? dx_fail(dx, ds.rc, "out of memory") : dx_store_fail(dx, rc);
		goto fail;
	}
	if (!ds.found) {
		rc = dx_fail(dx, DUROX_ENOTFOUND, "instance '%s' not found", instance_id);
		goto fail;
	}
	*out = &dr->pub;
	return DUROX_OK;
fail:
	durox_descriptor_free(&dr->pub);
	return rc;
}

/* ---- executions ---------------------------------------------------------------- */

typedef struct exec_list {
	store_exec_row *rows;
	size_t n, cap;
	arena *a;
	int rc;
} exec_list;

static int exec_cb(void *ud, const store_exec_row *r)
{
	exec_list *el = ud;
	if (el->n == el->cap) {
		size_t cap = el->cap ? el->cap * 2 : 8;
		store_exec_row *rows = arena_calloc(el->a, cap, sizeof *rows);
		if (rows == NULL)
			goto oom;
		if (el->n)
			memcpy(rows, el->rows, el->n * sizeof *rows);
		el->rows = rows;
		el->cap = cap;
	}
	store_exec_row *d = &el->rows[el->n];
	*d = *r;
	d->status = arena_strdup(el->a, r->status ? r->status : "Unknown");
	d->output = r->output ? arena_strdup(el->a, r->output) : NULL;
	if (d->status == NULL || (r->output && d->output == NULL))
		goto oom;
	el->n++;
	return 0;
oom:
	el->rc = DUROX_ENOMEM;
	return -1;
}

static int load_executions(durox *dx, arena *a, const char *id, exec_list *el)
{
	memset(el, 0, sizeof *el);
	el->a = a;
	int rc = dx->st->vt->executions(dx->st, id, exec_cb, el);
	if (rc != DUROX_OK)
		return el->rc != DUROX_OK ? dx_fail(dx, el->rc, "out of memory") : dx_store_fail(dx, rc);
	return DUROX_OK;
}

typedef struct id_list_result {
	durox_id_list pub;
	arena mem;
} id_list_result;

void durox_id_list_free(durox_id_list *l)
{
	if (l == NULL)
		return;
	id_list_result *r = (id_list_result *)l;
	arena_release(&r->mem);
	free(r);
}

int durox_list_executions(durox *dx, const char *instance_id, durox_id_list **out)
{
	*out = NULL;
	dx_clear(dx);
	if (instance_id == NULL)
		return dx_fail(dx, DUROX_EINVALID, "no instance id given");
	int rc = access_instance(dx, "list_executions", DUROX_HOOK_VIEW_HISTORY, instance_id, NULL, NULL, NULL, NULL);
	if (rc != DUROX_OK)
		return rc;
	int exists;
	uint64_t current;
	rc = dx->st->vt->instance_exists(dx->st, instance_id, &exists, &current);
	if (rc != DUROX_OK)
		return dx_store_fail(dx, rc);
	if (!exists)
		return dx_fail(dx, DUROX_ENOTFOUND, "instance '%s' not found", instance_id);
	id_list_result *r = calloc(1, sizeof *r);
	if (r == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena_init(&r->mem);
	exec_list el;
	rc = load_executions(dx, &r->mem, instance_id, &el);
	if (rc == DUROX_OK) {
		r->pub.ids = arena_calloc(&r->mem, el.n + 1, sizeof(uint64_t));
		if (r->pub.ids == NULL)
			rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
		for (size_t k = 0; rc == DUROX_OK && k < el.n; k++)
			r->pub.ids[r->pub.count++] = el.rows[k].execution_id;
	}
	if (rc != DUROX_OK) {
		durox_id_list_free(&r->pub);
		return rc;
	}
	*out = &r->pub;
	return DUROX_OK;
}

/* ---- details and statistics ----------------------------------------------------- */

typedef struct details_result {
	durox_instance_details pub;
	arena mem;
} details_result;

void durox_instance_details_free(durox_instance_details *d)
{
	if (d == NULL)
		return;
	details_result *dr = (details_result *)d;
	arena_release(&dr->mem);
	free(dr);
}

static int is_terminal(int status)
{
	return status == DUROX_STATUS_COMPLETED || status == DUROX_STATUS_FAILED ||
	       status == DUROX_STATUS_CONTINUED_AS_NEW;
}

/* Loads summary, executions and their analyses into d (allocating from a). */
static int build_details(durox *dx, arena *a, const char *id, int want_pending, durox_instance_details *d)
{
	int found = 0, rc = load_summary(dx, a, id, &d->summary, &found);
	if (rc != DUROX_OK)
		return rc;
	if (!found) {
		/* a start the runtime has not picked up yet: Pending, with what its start asks for */
		if ((rc = load_queued_start(dx, a, id, &d->summary, &d->input, &found)) != DUROX_OK)
			return rc;
		return found ? DUROX_OK : dx_fail(dx, DUROX_ENOTFOUND, "instance '%s' not found", id);
	}
	exec_list el;
	if ((rc = load_executions(dx, a, id, &el)) != DUROX_OK)
		return rc;
	d->executions = arena_calloc(a, el.n + 1, sizeof *d->executions);
	if (d->executions == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	durox_instance_statistics *st = &d->statistics;
	double turn_sum = 0;
	uint64_t current = d->summary.execution_count;
	for (size_t k = 0; k < el.n; k++) {
		const store_exec_row *row = &el.rows[k];
		int is_current = row->execution_id == current;
		exec_analysis ea;
		rc = analyse_execution(dx, a, id, row->execution_id, want_pending && is_current, &ea);
		if (rc != DUROX_OK)
			return rc;
		int status = durox_status_parse(row->status);
		if (status < 0)
			status = DUROX_STATUS_UNKNOWN;
		durox_execution_summary *es = &d->executions[d->n_executions++];
		es->execution_id = row->execution_id;
		es->status = status;
		es->started_at = ea.started_ts != DUROX_NO_TIME ? ea.started_ts : row->started_at;
		es->completed_at = row->completed_at;
		if (es->completed_at == DUROX_NO_TIME && is_terminal(status))
			es->completed_at = ea.terminal_ts;
		es->event_count = row->event_count;
		es->output = row->output;
		if (status == DUROX_STATUS_CONTINUED_AS_NEW)
			es->continue_as_new_reason = ea.can_input != NULL ? ea.can_input : row->output;

		st->total_activities_scheduled += ea.stats.total_activities_scheduled;
		st->total_activities_completed += ea.stats.total_activities_completed;
		st->total_activities_failed += ea.stats.total_activities_failed;
		st->total_timers_scheduled += ea.stats.total_timers_scheduled;
		st->total_timers_fired += ea.stats.total_timers_fired;
		st->total_events_subscribed += ea.stats.total_events_subscribed;
		st->total_events_received += ea.stats.total_events_received;
		st->total_execution_time_ms += ea.stats.total_execution_time_ms;
		st->total_turns += ea.stats.total_turns;
		st->total_history_events += ea.stats.total_history_events;
		st->total_sub_orchestrations += ea.stats.total_sub_orchestrations;
		turn_sum += ea.turn_time_sum;

		if (is_current) {
			d->input = ea.input;
			if (status == DUROX_STATUS_COMPLETED)
				d->output = row->output;
			if (want_pending) {
				durox_execution_details *cur = arena_calloc(a, 1, sizeof *cur);
				if (cur == NULL)
					return dx_fail(dx, DUROX_ENOMEM, "out of memory");
				*cur = ea.pending;
				cur->status = status;
				if (is_terminal(status)) {
					/* nothing is pending once the execution has ended */
					cur->n_pending_activities = cur->n_pending_timers = 0;
					cur->n_pending_events = cur->n_pending_children = 0;
					cur->buffered_queue_messages = 0;
				}
				d->current_execution = cur;
			}
		}
	}
	st->average_turn_duration_ms = st->total_turns ? turn_sum / (double)st->total_turns : 0.0;
	return DUROX_OK;
}

int durox_get_instance_details(durox *dx, const char *instance_id, durox_instance_details **out)
{
	*out = NULL;
	dx_clear(dx);
	if (instance_id == NULL)
		return dx_fail(dx, DUROX_EINVALID, "no instance id given");
	int rc = access_instance(dx, "get_instance_details", DUROX_HOOK_VIEW_HISTORY, instance_id, NULL, NULL, NULL,
	                         NULL);
	if (rc != DUROX_OK)
		return rc;
	details_result *dr = calloc(1, sizeof *dr);
	if (dr == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena_init(&dr->mem);
	rc = build_details(dx, &dr->mem, instance_id, 1, &dr->pub);
	if (rc != DUROX_OK) {
		durox_instance_details_free(&dr->pub);
		return rc;
	}
	*out = &dr->pub;
	return DUROX_OK;
}

int durox_get_instance_statistics(durox *dx, const char *instance_id, durox_instance_statistics *out)
{
	memset(out, 0, sizeof *out);
	dx_clear(dx);
	if (instance_id == NULL)
		return dx_fail(dx, DUROX_EINVALID, "no instance id given");
	int rc = access_instance(dx, "get_instance_statistics", DUROX_HOOK_VIEW_HISTORY, instance_id, NULL, NULL, NULL,
	                         NULL);
	if (rc != DUROX_OK)
		return rc;
	arena a;
	arena_init(&a);
	durox_instance_details d;
	memset(&d, 0, sizeof d);
	rc = build_details(dx, &a, instance_id, 0, &d);
	if (rc == DUROX_OK)
		*out = d.statistics;
	arena_release(&a);
	return rc;
}
