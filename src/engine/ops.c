/*
 * ops.c - single-instance writes (start_orchestration, raise_event, enqueue_event,
 * cancel_instance) and op_apply, the per-target check-and-act step every bulk job shares:
 * the work-item JSON exactly as Duroxide's client writes it (compact serde form, its field
 * order, serde's string escaping), the refusals (unknown, terminal, child, running...),
 * the open-subscription test of bulk raises (from history.c's analysis plus the events
 * already queued), Duroxide's delete/prune, and restart's id scheme.
 * Relies on the provider's ops vtable (store/ops.h). Used by jobs.c, wait.c and the binding.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/access.h"
#include "engine/ops_internal.h"
#include "util/timeutil.h"

static const char *const kind_names[OP__COUNT] = {"cancel", "raise", "enqueue", "purge", "prune", "restart"};

const char *op_kind_name(int kind) { return kind >= 0 && kind < OP__COUNT ? kind_names[kind] : NULL; }

int op_kind_parse(const char *name)
{
	for (int k = 0; k < OP__COUNT; k++)
		if (name != NULL && strcmp(name, kind_names[k]) == 0)
			return k;
	return -1;
}

static const char *const outcome_names[] = {"pending", "done", "failed", "no_subscription", "skipped"};

const char *durox_outcome_name(int outcome)
{
	return outcome >= 0 && outcome <= DUROX_OUTCOME_NO_SUBSCRIPTION ? outcome_names[outcome] : NULL;
}

void op_sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

int op_valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p;
		if (c < 0x80) {
			p++;
			continue;
		}
		int n;
		unsigned cp;
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		for (int k = 1; k <= n; k++) {
			if ((p[k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[k] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		p += n + 1;
	}
	return 1;
}

/* ---- op results ------------------------------------------------------------------ */

void op_result_init(op_result *r)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->message);
	buf_init(&r->new_id);
}

void op_result_reset(op_result *r)
{
	r->outcome = DUROX_OUTCOME_PENDING;
	r->code = DUROX_OK;
	buf_reset(&r->message);
	buf_reset(&r->new_id);
	memset(&r->counts, 0, sizeof r->counts);
}

void op_result_free(op_result *r)
{
	buf_free(&r->message);
	buf_free(&r->new_id);
}

static int refuse(op_result *r, int code, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;

/* Records a refusal (outcome FAILED) and returns DUROX_OK: the call itself succeeded. */
static int refuse(op_result *r, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_reset(&r->message);
	buf_addvf(&r->message, fmt, ap);
	va_end(ap);
	r->outcome = DUROX_OUTCOME_FAILED;
	r->code = code;
	return DUROX_OK;
}

/* ---- work items (Duroxide's WorkItem, externally tagged, compact serde JSON) ------------ */

static void add_str(buf *b, const char *s) { buf_add_json_string(b, s, strlen(s)); }

/* {"StartOrchestration":{"instance":..,"orchestration":..,"input":..,"version":null|"..",
 *  "parent_instance":null,"parent_id":null,"execution_id":1}} (field order of the Rust struct) */
static void wi_start(buf *b, const char *id, const char *name, const char *input, const char *version)
{
	buf_adds(b, "{\"StartOrchestration\":{\"instance\":");
	add_str(b, id);
	buf_adds(b, ",\"orchestration\":");
	add_str(b, name);
	buf_adds(b, ",\"input\":");
	add_str(b, input);
	buf_adds(b, ",\"version\":");
	if (version != NULL)
		add_str(b, version);
	else
		buf_adds(b, "null");
	buf_adds(b, ",\"parent_instance\":null,\"parent_id\":null,\"execution_id\":1}}");
}

/* {"ExternalRaised":{"instance":..,"name":..,"data":..}} or QueueMessage with the same fields */
static void wi_event(buf *b, int queue, const char *id, const char *name, const char *data)
{
	buf_adds(b, queue ? "{\"QueueMessage\":{\"instance\":" : "{\"ExternalRaised\":{\"instance\":");
	add_str(b, id);
	buf_adds(b, ",\"name\":");
	add_str(b, name);
	buf_adds(b, ",\"data\":");
	add_str(b, data);
	buf_adds(b, "}}");
}

/* {"CancelInstance":{"instance":..,"reason":..}} */
static void wi_cancel(buf *b, const char *id, const char *reason)
{
	buf_adds(b, "{\"CancelInstance\":{\"instance\":");
	add_str(b, id);
	buf_adds(b, ",\"reason\":");
	add_str(b, reason);
	buf_adds(b, "}}");
}

/* The encoders above, for tests/fuzz/fuzz_work_item.c (declared in ops_internal.h). */
void op_encode_start(buf *b, const char *id, const char *name, const char *input, const char *version)
{
	wi_start(b, id, name, input, version);
}

void op_encode_event(buf *b, int queue, const char *id, const char *name, const char *data)
{
	wi_event(b, queue, id, name, data);
}

void op_encode_cancel(buf *b, const char *id, const char *reason) { wi_cancel(b, id, reason); }

static int enqueue(durox *dx, const char *id, buf *item)
{
	if (buf_oom(item))
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	int rc = dx->st->ops->enqueue(dx->st, id, item->data, time_now_ms());
	return rc == DUROX_OK ? rc : dx_store_fail(dx, rc);
}

/* ---- checks ---------------------------------------------------------------------- */

int op_check_writable(durox *dx)
{
	if (dx->st->ops == NULL)
		return dx_fail(dx, DUROX_EUNSUPPORTED, "the %s provider cannot write", dx->st->info.provider);
	if (dx->st->info.readonly)
		return dx_fail(dx, DUROX_EDENIED,
		               "store '%s' is open read-only; writes are refused (open it without readonly)",
		               dx->st->info.location);
	return DUROX_OK;
}

int op_check_size(durox *dx, const char *what, const char *s, int payload)
{
	size_t n = strlen(s), cap = payload ? dx->cfg.max_payload_bytes : dx->cfg.max_id_bytes;
	if (n > cap)
		return dx_fail(dx, DUROX_ELIMIT, "%s is %zu bytes; the limit is %zu (%s)", what, n, cap,
		               payload ? "max_payload_bytes" : "max_id_bytes");
	return DUROX_OK;
}

/* Checks a text argument: not empty when nonempty, valid UTF-8, within its size cap (an id
 * or name, or with payload a payload). */
static int check_text(durox *dx, const char *what, const char *s, int nonempty, int payload)
{
	if (s == NULL || (nonempty && s[0] == '\0'))
		return dx_fail(dx, DUROX_EINVALID, "%s must not be empty", what);
	int rc = op_check_size(dx, what, s, payload);
	if (rc != DUROX_OK)
		return rc;
	if (!op_valid_utf8(s))
		return dx_fail(dx, DUROX_EINVALID, "%s is not valid UTF-8", what);
	return DUROX_OK;
}

int op_check_params(durox *dx, const op_params *p)
{
	int rc = DUROX_OK;
	switch (p->kind) {
	case OP_CANCEL:
		if (p->reason != NULL)
			rc = check_text(dx, "reason", p->reason, 0, 1);
		break;
	case OP_RAISE:
	case OP_ENQUEUE:
		rc = check_text(dx, p->kind == OP_RAISE ? "event name" : "queue name", p->event_name, 1, 0);
		if (rc == DUROX_OK && p->event_data != NULL)
			rc = check_text(dx, "event data", p->event_data, 0, 1);
		break;
	case OP_PRUNE:
		if (p->has_keep_last && p->keep_last > 1000000000u)
			rc = dx_fail(dx, DUROX_EINVALID, "keep_last out of range");
		break;
	case OP_PURGE:
	case OP_RESTART: break;
	default: rc = dx_fail(dx, DUROX_EINVALID, "unknown operation");
	}
	return rc;
}

static int store_err(durox *dx, int rc) { return dx_store_fail(dx, rc); }

/* ---- open subscriptions ------------------------------------------------------------ */

typedef struct queued_scan {
	const char *name; /* NULL: count no events */
	uint64_t events;  /* ExternalRaised items named name */
	uint64_t cancels; /* CancelInstance items */
	arena scratch;
} queued_scan;

static int queued_cb(void *ud, const char *work_item)
{
	queued_scan *q = ud;
	if (strncmp(work_item, "{\"CancelInstance\"", 17) == 0) {
		q->cancels++;
		return 0;
	}
	if (q->name == NULL || strncmp(work_item, "{\"ExternalRaised\"", 17) != 0)
		return 0;
	arena_release(&q->scratch);
	json *root = json_parse(&q->scratch, work_item, strlen(work_item), NULL, 0);
	const char *name = json_get_str(json_first(root), "name");
	if (name != NULL && strcmp(name, q->name) == 0)
		q->events++;
	return 0;
}

/* Counts the CancelInstance items and the ExternalRaised items named name (may be NULL)
 * queued for the instance and not consumed yet. */
static int scan_queued(durox *dx, const char *id, const char *name, queued_scan *q)
{
	memset(q, 0, sizeof *q);
	q->name = name;
	arena_init(&q->scratch);
	int rc = dx->st->ops->queued_items(dx->st, id, queued_cb, q);
	arena_release(&q->scratch);
	return rc == DUROX_OK ? rc : store_err(dx, rc);
}

/* Open positional subscriptions for name in the current execution (history.c's analysis). */
static int open_subscriptions(durox *dx, const char *id, uint64_t exec, const char *name, int64_t *open)
{
	*open = 0;
	arena a;
	arena_init(&a);
	exec_analysis ea;
	int rc = analyse_execution(dx, &a, id, exec, 1, &ea);
	if (rc == DUROX_OK)
		for (size_t k = 0; k < ea.pending.n_pending_events; k++) {
			const durox_pending_event *e = &ea.pending.pending_events[k];
			if (!e->queue && strcmp(e->name, name) == 0)
				(*open)++;
		}
	arena_release(&a);
	return rc;
}

/* ---- restart ---------------------------------------------------------------------- */

typedef struct started_scan {
	arena *a;
	const char *name, *version, *input;
	int found, rc;
} started_scan;

static int started_cb(void *ud, const store_event_row *r)
{
	started_scan *s = ud;
	arena tmp;
	arena_init(&tmp);
	json *ev = json_parse(&tmp, r->data, r->data_len, NULL, 0);
	const char *t = json_get_str(ev, "type");
	if (t != NULL && strcmp(t, "OrchestrationStarted") == 0 && json_get_str(ev, "name") != NULL &&
	    json_get_str(ev, "input") != NULL) {
		s->name = arena_strdup(s->a, json_get_str(ev, "name"));
		s->input = arena_strdup(s->a, json_get_str(ev, "input"));
		const char *v = json_get_str(ev, "version");
		s->version = v != NULL ? arena_strdup(s->a, v) : NULL;
		s->found = s->name != NULL && s->input != NULL && (v == NULL || s->version != NULL);
		if (!s->found)
			s->rc = DUROX_ENOMEM;
	}
	arena_release(&tmp);
	return s->rc == DUROX_OK ? 1 : -1; /* the first event is enough */
}

/* The id base of a restart: id without a trailing "~r<digits>". */
static size_t restart_base_len(const char *id)
{
	size_t n = strlen(id), k = n;
	while (k > 0 && id[k - 1] >= '0' && id[k - 1] <= '9')
		k--;
	if (k < n && k >= 2 && id[k - 1] == 'r' && id[k - 2] == '~')
		return k - 2;
	return n;
}

static int apply_restart(durox *dx, const op_params *p, const char *id, const store_instance_state *is, int write,
                         op_result *res)
{
	if (is->is_child)
		return refuse(res, DUROX_ECONFLICT, "instance '%s' is a sub-orchestration; restart its root instead",
		              id);
	if (is->status != DUROX_STATUS_FAILED)
		return refuse(res, DUROX_ECONFLICT,
		              "instance '%s' is %s; only failed or cancelled instances are restarted", id,
		              durox_status_name(is->status));
	arena a;
	arena_init(&a);
	started_scan ss = {&a, NULL, NULL, NULL, 0, DUROX_OK};
	const char *types[] = {"OrchestrationStarted"};
	store_history_query q = {id, is->current_execution, 0, 0, types, 1, DUROX_NO_TIME, DUROX_NO_TIME, 1, 1};
	int rc = dx->st->vt->history(dx->st, &q, started_cb, &ss);
	if (rc != DUROX_OK || ss.rc != DUROX_OK) {
		arena_release(&a);
		return ss.rc != DUROX_OK ? dx_fail(dx, ss.rc, "out of memory") : store_err(dx, rc);
	}
	if (!ss.found) {
		arena_release(&a);
		return refuse(res, DUROX_ECORRUPT,
		              "instance '%s' has no readable OrchestrationStarted event in execution %llu", id,
		              (unsigned long long)is->current_execution);
	}
	/* the first free "<base>~r<N>" */
	size_t base = restart_base_len(id);
	rc = DUROX_OK;
	for (unsigned n = 1;; n++) {
		if (n > 100000) {
			rc = refuse(res, DUROX_ELIMIT, "no free restart id for instance '%s'", id);
			break;
		}
		buf_reset(&res->new_id);
		buf_add(&res->new_id, id, base);
		buf_addf(&res->new_id, "~r%u", n);
		if (buf_oom(&res->new_id)) {
			rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
			break;
		}
		store_instance_state other;
		rc = dx->st->ops->instance_state(dx->st, res->new_id.data, 0, &other);
		if (rc != DUROX_OK) {
			rc = store_err(dx, rc);
			break;
		}
		if (other.exists || other.pending_start)
			continue;
		if (write) {
			buf item;
			buf_init(&item);
			wi_start(&item, res->new_id.data, ss.name, ss.input, p->latest_version ? NULL : ss.version);
			rc = enqueue(dx, res->new_id.data, &item);
			buf_free(&item);
		}
		if (rc == DUROX_OK)
			res->outcome = DUROX_OUTCOME_DONE;
		break;
	}
	arena_release(&a);
	return rc;
}

/* ---- purge ------------------------------------------------------------------------ */

typedef struct tree_scan {
	arena *a;
	const char **ids;
	size_t n, cap;
	const char *running, *locked; /* first such member */
	int rc;
} tree_scan;

static int tree_cb(void *ud, const store_tree_row *r)
{
	tree_scan *t = ud;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		const char **ids = arena_calloc(t->a, cap, sizeof *ids);
		if (ids == NULL)
			goto oom;
		if (t->n)
			memcpy(ids, t->ids, t->n * sizeof *ids);
		t->ids = ids;
		t->cap = cap;
	}
	const char *id = arena_strdup(t->a, r->instance_id);
	if (id == NULL)
		goto oom;
	t->ids[t->n++] = id;
	if (r->status == DUROX_STATUS_RUNNING && t->running == NULL)
		t->running = id;
	if (r->locked && t->locked == NULL)
		t->locked = id;
	return 0;
oom:
	t->rc = DUROX_ENOMEM;
	return -1;
}

static int apply_purge(durox *dx, const op_params *p, const char *id, const store_instance_state *is, int64_t now,
                       int write, op_result *res)
{
	if (is->is_child)
		return refuse(res, DUROX_ECONFLICT, "instance '%s' is a sub-orchestration; purge its root instead", id);
	arena a;
	arena_init(&a);
	tree_scan t = {&a, NULL, 0, 0, NULL, NULL, DUROX_OK};
	int rc = dx->st->ops->tree(dx->st, id, now, tree_cb, &t);
	if (rc != DUROX_OK || t.rc != DUROX_OK) {
		arena_release(&a);
		return t.rc != DUROX_OK ? dx_fail(dx, t.rc, "out of memory") : store_err(dx, rc);
	}
	if (!p->force && t.running != NULL) {
		if (strcmp(t.running, id) == 0)
			rc = refuse(res, DUROX_ECONFLICT,
			            "instance '%s' is still running; cancel it first or use force", id);
		else
			rc = refuse(res, DUROX_ECONFLICT,
			            "sub-orchestration '%s' of instance '%s' is still running; cancel it first or use "
			            "force",
			            t.running, id);
	} else if (!p->force && t.locked != NULL) {
		rc = refuse(res, DUROX_EBUSY, "instance '%s' is being processed by the runtime (locked); retry later",
		            t.locked);
	} else if (write) {
		rc = dx->st->ops->delete_instances(dx->st, t.ids, t.n, &res->counts);
		if (rc != DUROX_OK)
			rc = store_err(dx, rc);
		else
			res->outcome = DUROX_OUTCOME_DONE;
	} else {
		res->counts.instances = t.n;
		res->outcome = DUROX_OUTCOME_DONE;
	}
	arena_release(&a);
	return rc;
}

/* ---- op_apply ---------------------------------------------------------------------- */

int op_apply(durox *dx, const op_params *p, const char *id, int64_t now, int write, op_result *res)
{
	op_result_reset(res);
	if (id[0] == '\0' || !op_valid_utf8(id))
		return refuse(res, DUROX_EINVALID, "instance id '%s' is empty or not valid UTF-8", id);
	store_instance_state is;
	int rc = dx->st->ops->instance_state(dx->st, id, now, &is);
	if (rc != DUROX_OK)
		return store_err(dx, rc);
	if (!is.exists && is.pending_start && (p->kind == OP_PURGE || p->kind == OP_PRUNE || p->kind == OP_RESTART))
		return refuse(res, DUROX_ENOTFOUND,
		              "instance '%s' is Pending: its start is queued and the runtime has not created it yet",
		              id);
	if (!is.exists && !is.pending_start)
		return refuse(res, DUROX_ENOTFOUND, "instance '%s' not found", id);
	const char *st = durox_status_name(is.status);
	switch (p->kind) {
	case OP_CANCEL:
	case OP_RAISE:
	case OP_ENQUEUE: {
		if (is.status == DUROX_STATUS_COMPLETED || is.status == DUROX_STATUS_FAILED)
			return refuse(res, DUROX_ECONFLICT, "instance '%s' is already terminal (%s)", id, st);
		if (is.status == DUROX_STATUS_UNKNOWN)
			return refuse(res, DUROX_ECONFLICT, "instance '%s' has no current execution (status Unknown)",
			              id);
		/* what is already queued for it: a cancel ends it first; queued events take
		 * the open subscriptions first */
		queued_scan q;
		int check = p->kind == OP_RAISE && p->check_subscription;
		if ((rc = scan_queued(dx, id, check ? p->event_name : NULL, &q)) != DUROX_OK)
			return rc;
		if (q.cancels > 0)
			return refuse(res, DUROX_ECONFLICT, "instance '%s' is being cancelled (a cancel is queued)",
			              id);
		if (check) {
			int64_t open = 0;
			if (is.exists &&
			    (rc = open_subscriptions(dx, id, is.current_execution, p->event_name, &open)) != DUROX_OK)
				return rc;
			open -= (int64_t)q.events;
			if (open <= 0) {
				res->outcome = DUROX_OUTCOME_NO_SUBSCRIPTION;
				if (!is.exists)
					buf_addf(&res->message,
					         "instance '%s' has not started yet: no subscription for event '%s' is "
					         "open",
					         id, p->event_name);
				else if (q.events > 0)
					buf_addf(&res->message,
					         "instance '%s' has no open subscription for event '%s' left (events "
					         "already queued take them)",
					         id, p->event_name);
				else
					buf_addf(&res->message, "instance '%s' has no open subscription for event '%s'",
					         id, p->event_name);
				return DUROX_OK;
			}
		}
		if (write) {
			buf item;
			buf_init(&item);
			if (p->kind == OP_CANCEL)
				wi_cancel(&item, id, p->reason != NULL ? p->reason : "");
			else
				wi_event(&item, p->kind == OP_ENQUEUE, id, p->event_name,
				         p->event_data != NULL ? p->event_data : "null");
			rc = enqueue(dx, id, &item);
			buf_free(&item);
			if (rc != DUROX_OK)
				return rc;
		}
		res->outcome = DUROX_OUTCOME_DONE;
		return DUROX_OK;
	}
	case OP_PURGE: return apply_purge(dx, p, id, &is, now, write, res);
	case OP_PRUNE: {
		if (write) {
			rc = dx->st->ops->prune(dx->st, id, p->has_keep_last, p->keep_last, p->completed_before,
			                        &res->counts);
			if (rc != DUROX_OK)
				return store_err(dx, rc);
		}
		res->outcome = DUROX_OUTCOME_DONE;
		return DUROX_OK;
	}
	case OP_RESTART: return apply_restart(dx, p, id, &is, write, res);
	default: return dx_fail(dx, DUROX_EINVALID, "unknown operation");
	}
}

/* ---- single-instance writes --------------------------------------------------------- */

/* The parameter summary of an audit record for p (no payloads: their sizes). */
void op_params_summary(const op_params *p, buf *b)
{
	buf_addc(b, '{');
	switch (p->kind) {
	case OP_CANCEL:
		buf_adds(b, "\"reason\":");
		add_str(b, p->reason != NULL ? p->reason : "");
		break;
	case OP_RAISE:
	case OP_ENQUEUE:
		buf_adds(b, p->kind == OP_RAISE ? "\"event_name\":" : "\"queue\":");
		add_str(b, p->event_name != NULL ? p->event_name : "");
		buf_adds(b, ",\"data_bytes\":");
		buf_addi64(b, p->event_data != NULL ? (int64_t)strlen(p->event_data) : 4);
		break;
	case OP_PURGE: buf_adds(b, p->force ? "\"force\":true" : "\"force\":false"); break;
	case OP_PRUNE:
	case OP_RESTART: {
		buf tmp;
		buf_init(&tmp);
		op_params_to_json(p, &tmp);
		if (!buf_oom(&tmp) && tmp.len >= 2)
			buf_add(b, tmp.data + 1, tmp.len - 2);
		buf_free(&tmp);
		break;
	}
	default: break;
	}
	buf_addc(b, '}');
}

/* Records a write attempt that was allowed: its outcome rc (message in dx when it failed).
 * in_txn: inside the write's own transaction (committed with it). */
static int audit_attempt(durox *dx, const char *operation, const char *id, const buf *params, int rc, int in_txn)
{
	if (!audit_active(dx))
		return DUROX_OK;
	buf res;
	buf_init(&res);
	audit_result_code(&res, rc, dx->err);
	audit_entry e = {
	        operation, id, "allow", NULL, buf_oom(params) ? NULL : params->data, buf_oom(&res) ? NULL : res.data};
	char saved[sizeof dx->err];
	snprintf(saved, sizeof saved, "%s", dx->err);
	int arc = audit_append(dx, &e, in_txn);
	buf_free(&res);
	if (arc == DUROX_OK)
		snprintf(dx->err, sizeof dx->err, "%s", saved);
	return arc;
}

/* One operation on one instance in its own transaction; a refusal becomes the error. The
 * caller must be allowed (access_instance with the operation's hook), and the attempt is
 * recorded: with the write in its transaction, or after a refusal in its own. */
static int single(durox *dx, const op_params *p, const char *id, const char *operation, int hook)
{
	int rc = op_check_writable(dx);
	if (rc == DUROX_OK && (id == NULL || id[0] == '\0'))
		rc = dx_fail(dx, DUROX_EINVALID, "instance id must not be empty");
	if (rc == DUROX_OK)
		rc = op_check_size(dx, "instance id", id, 0);
	if (rc == DUROX_OK && !op_valid_utf8(id))
		rc = dx_fail(dx, DUROX_EINVALID, "instance id is not valid UTF-8");
	if (rc == DUROX_OK)
		rc = op_check_params(dx, p);
	if (rc == DUROX_OK)
		rc = access_instance(dx, operation, hook, id, p->event_name, NULL, NULL, NULL);
	if (rc != DUROX_OK)
		return rc;
	buf params;
	buf_init(&params);
	op_params_summary(p, &params);
	rc = dx->st->ops->begin(dx->st);
	if (rc != DUROX_OK) {
		rc = store_err(dx, rc);
		int arc = audit_attempt(dx, operation, id, &params, rc, 0);
		buf_free(&params);
		return arc != DUROX_OK ? arc : rc;
	}
	op_result res;
	op_result_init(&res);
	rc = op_apply(dx, p, id, time_now_ms(), 1, &res);
	if (rc == DUROX_OK && res.outcome == DUROX_OUTCOME_DONE) {
		rc = audit_attempt(dx, operation, id, &params, DUROX_OK, 1);
		if (rc == DUROX_OK && (rc = dx->st->ops->commit(dx->st)) != DUROX_OK)
			rc = store_err(dx, rc);
		if (rc != DUROX_OK)
			dx->st->ops->rollback(dx->st);
	} else {
		dx->st->ops->rollback(dx->st);
		if (rc == DUROX_OK)
			rc = dx_fail(dx, res.code != DUROX_OK ? res.code : DUROX_ECONFLICT, "%s",
			             buf_str(&res.message));
		int arc = audit_attempt(dx, operation, id, &params, rc, 0);
		if (arc != DUROX_OK)
			rc = arc;
	}
	op_result_free(&res);
	buf_free(&params);
	return rc;
}

int durox_raise_event(durox *dx, const char *instance_id, const char *event_name, const char *data)
{
	dx_clear(dx);
	op_params p = {.kind = OP_RAISE, .event_name = event_name, .event_data = data};
	return single(dx, &p, instance_id, "raise_event", DUROX_HOOK_RAISE_EVENT);
}

int durox_enqueue_event(durox *dx, const char *instance_id, const char *queue, const char *data)
{
	dx_clear(dx);
	op_params p = {.kind = OP_ENQUEUE, .event_name = queue, .event_data = data};
	return single(dx, &p, instance_id, "enqueue_event", DUROX_HOOK_RAISE_EVENT);
}

int durox_cancel_instance(durox *dx, const char *instance_id, const char *reason)
{
	dx_clear(dx);
	op_params p = {.kind = OP_CANCEL, .reason = reason};
	return single(dx, &p, instance_id, "cancel_instance", DUROX_HOOK_CANCEL_INSTANCE);
}

int durox_start_orchestration(durox *dx, const char *instance_id, const char *name, const char *input,
                              const char *version)
{
	dx_clear(dx);
	int rc = op_check_writable(dx);
	if (rc != DUROX_OK)
		return rc;
	if ((rc = check_text(dx, "instance id", instance_id, 1, 0)) != DUROX_OK ||
	    (rc = check_text(dx, "orchestration name", name, 1, 0)) != DUROX_OK ||
	    (input != NULL && (rc = check_text(dx, "input", input, 0, 1)) != DUROX_OK) ||
	    (version != NULL && (rc = check_text(dx, "version", version, 1, 0)) != DUROX_OK))
		return rc;
	if ((rc = access_start(dx, name, instance_id)) != DUROX_OK)
		return rc;
	buf params;
	buf_init(&params);
	buf_adds(&params, "{\"name\":");
	add_str(&params, name);
	buf_adds(&params, ",\"version\":");
	if (version != NULL)
		add_str(&params, version);
	else
		buf_adds(&params, "null");
	buf_adds(&params, ",\"input_bytes\":");
	buf_addi64(&params, input != NULL ? (int64_t)strlen(input) : 4);
	buf_addc(&params, '}');
	rc = dx->st->ops->begin(dx->st);
	if (rc != DUROX_OK) {
		rc = store_err(dx, rc);
		int arc = audit_attempt(dx, "start_orchestration", instance_id, &params, rc, 0);
		buf_free(&params);
		return arc != DUROX_OK ? arc : rc;
	}
	store_instance_state is;
	rc = dx->st->ops->instance_state(dx->st, instance_id, 0, &is);
	if (rc != DUROX_OK) {
		rc = store_err(dx, rc);
	} else if (is.exists) {
		rc = dx_fail(dx, DUROX_ECONFLICT, "instance '%s' already exists (%s)", instance_id,
		             durox_status_name(is.status));
	} else if (is.pending_start) {
		rc = dx_fail(dx, DUROX_ECONFLICT, "instance '%s' already exists (its start is queued)", instance_id);
	} else {
		buf item;
		buf_init(&item);
		wi_start(&item, instance_id, name, input != NULL ? input : "null", version);
		rc = enqueue(dx, instance_id, &item);
		buf_free(&item);
	}
	if (rc == DUROX_OK) {
		rc = audit_attempt(dx, "start_orchestration", instance_id, &params, DUROX_OK, 1);
		if (rc == DUROX_OK && (rc = dx->st->ops->commit(dx->st)) != DUROX_OK)
			rc = store_err(dx, rc);
		if (rc != DUROX_OK)
			dx->st->ops->rollback(dx->st);
	} else {
		dx->st->ops->rollback(dx->st);
		int arc = audit_attempt(dx, "start_orchestration", instance_id, &params, rc, 0);
		if (arc != DUROX_OK)
			rc = arc;
	}
	buf_free(&params);
	return rc;
}

/* ---- journaled parameters ------------------------------------------------------------ */

void op_params_to_json(const op_params *p, buf *b)
{
	buf_addc(b, '{');
	switch (p->kind) {
	case OP_CANCEL:
		buf_adds(b, "\"reason\":");
		add_str(b, p->reason != NULL ? p->reason : "");
		break;
	case OP_RAISE:
	case OP_ENQUEUE:
		buf_adds(b, "\"event_name\":");
		add_str(b, p->event_name);
		buf_adds(b, ",\"event_data\":");
		add_str(b, p->event_data != NULL ? p->event_data : "null");
		buf_adds(b, p->check_subscription ? ",\"check_subscription\":true" : ",\"check_subscription\":false");
		break;
	case OP_PURGE: buf_adds(b, p->force ? "\"force\":true" : "\"force\":false"); break;
	case OP_PRUNE:
		buf_adds(b, "\"keep_last\":");
		if (p->has_keep_last)
			buf_addf(b, "%u", (unsigned)p->keep_last);
		else
			buf_adds(b, "null");
		buf_adds(b, ",\"completed_before\":");
		if (p->completed_before != DUROX_NO_TIME)
			buf_addi64(b, p->completed_before);
		else
			buf_adds(b, "null");
		break;
	case OP_RESTART: buf_adds(b, p->latest_version ? "\"latest_version\":true" : "\"latest_version\":false"); break;
	default: break;
	}
	buf_addc(b, '}');
}

static int get_bool(const json *o, const char *k)
{
	const json *v = json_get(o, k);
	return v != NULL && v->type == JSON_TRUE;
}

int op_params_from_json(arena *a, const char *kind, const char *text, op_params *p)
{
	memset(p, 0, sizeof *p);
	p->completed_before = DUROX_NO_TIME;
	p->kind = op_kind_parse(kind);
	json *o = json_parse(a, text, strlen(text), NULL, 0);
	if (p->kind < 0 || o == NULL || o->type != JSON_OBJECT)
		return -1;
	int64_t v;
	switch (p->kind) {
	case OP_CANCEL: p->reason = json_get_str(o, "reason"); return p->reason != NULL ? 0 : -1;
	case OP_RAISE:
	case OP_ENQUEUE:
		p->event_name = json_get_str(o, "event_name");
		p->event_data = json_get_str(o, "event_data");
		p->check_subscription = get_bool(o, "check_subscription");
		return p->event_name != NULL && p->event_data != NULL ? 0 : -1;
	case OP_PURGE: p->force = get_bool(o, "force"); return 0;
	case OP_PRUNE:
		if (json_get_i64(o, "keep_last", &v) && v >= 0 && v <= 1000000000) {
			p->has_keep_last = 1;
			p->keep_last = (uint32_t)v;
		}
		if (json_get_i64(o, "completed_before", &v))
			p->completed_before = v;
		return 0;
	case OP_RESTART: p->latest_version = get_bool(o, "latest_version"); return 0;
	default: return -1;
	}
}
