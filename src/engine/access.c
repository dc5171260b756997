/*
 * access.c - the engine's ONE access-control enforcement point (contracts in access.h):
 * the caller's context and policy of a handle, views (the policy's filter ANDed into the
 * caller's, per-row can_view_instance, the exclusion of hidden rows from aggregates),
 * single-instance checks (hidden -> NOTFOUND, refused -> DENIED), class-wide hooks, the
 * bulk ceiling, and the audit records of denials and of the policy load.
 *
 * Fail closed everywhere: a hook that is missing (and not a constant allow), fails, or
 * answers anything but ALLOW (or FILTER where allowed) denies. Hooks are never called while
 * a provider call is in progress or a transaction is open. Relies on the provider (for
 * visible summaries and roots) and audit.c; used by every public operation of the engine.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "store/provider_metrics.h"
#include "util/codec.h"

static const char *const hook_names[DUROX_HOOK__COUNT] = {
        "can_list_instances", "can_view_instance",       "can_view_history",   "can_cancel_instance",
        "can_raise_event",    "can_start_orchestration", "can_purge_instance", "can_restart_instance",
        "can_view_metrics",   "can_manage_jobs",         "can_view_audit"};

const char *durox_access_hook_name(int hook) { return hook >= 0 && hook < DUROX_HOOK__COUNT ? hook_names[hook] : NULL; }

int durox_access_hook_parse(const char *name)
{
	for (int k = 0; name != NULL && k < DUROX_HOOK__COUNT; k++)
		if (strcmp(name, hook_names[k]) == 0)
			return k;
	return -1;
}

/* What each instance hook lets the caller do, for messages. */
static const char *hook_verb(int hook)
{
	switch (hook) {
	case DUROX_HOOK_VIEW_HISTORY: return "view the history of";
	case DUROX_HOOK_CANCEL_INSTANCE: return "cancel";
	case DUROX_HOOK_RAISE_EVENT: return "raise events on";
	case DUROX_HOOK_PURGE_INSTANCE: return "purge";
	case DUROX_HOOK_RESTART_INSTANCE: return "restart";
	default: return "view";
	}
}

/* ---- the handle's state ------------------------------------------------------------------ */

static char *dup_opt(const char *s, int *oom)
{
	if (s == NULL)
		return NULL;
	char *c = strdup(s);
	if (c == NULL)
		*oom = 1;
	return c;
}

int access_enabled(const durox *dx) { return dx->acl != NULL && dx->acl->enabled; }

void access_free(durox *dx)
{
	access_state *a = dx->acl;
	if (a == NULL)
		return;
	if (a->enabled && a->pol.release != NULL)
		a->pol.release(a->pol.ud);
	free(a->policy_id);
	free(a->policy_source);
	free(a->user_id);
	free(a->source_ip);
	free(a->reason);
	for (size_t k = 0; k < a->n_roles; k++)
		free(a->roles[k]);
	free(a->roles);
	free(a->roles_json);
	free(a->audit_file);
	free(a->key);
	free(a);
	dx->acl = NULL;
}

static int record_load(durox *dx)
{
	access_state *a = dx->acl;
	buf p;
	buf_init(&p);
	buf_adds(&p, "{\"policy\":");
	buf_add_json_string(&p, a->policy_id, strlen(a->policy_id));
	buf_adds(&p, ",\"max_bulk_operations\":");
	buf_addi64(&p, a->pol.max_bulk_operations);
	buf_adds(&p, ",\"audit\":");
	const char *m = audit_mode_name(dx);
	buf_add_json_string(&p, m, strlen(m));
	buf_addc(&p, '}');
	audit_entry e = {"policy_load",      a->policy_source, "allow", NULL, buf_oom(&p) ? NULL : p.data,
	                 "{\"code\":\"OK\"}"};
	int rc = audit_append(dx, &e, 0);
	buf_free(&p);
	return rc;
}

int access_init(durox *dx, const durox_open_options *opts, char *errbuf, size_t errlen)
{
	access_state *a = calloc(1, sizeof *a);
	if (a == NULL) {
		if (opts != NULL && opts->policy != NULL && opts->policy->release != NULL)
			opts->policy->release(opts->policy->ud);
		snprintf(errbuf, errlen, "out of memory");
		return DUROX_ENOMEM;
	}
	dx->acl = a;
	int oom = 0;
	if (opts != NULL && opts->policy != NULL) {
		/* the handle owns the policy from here on: durox_close releases it */
		a->pol = *opts->policy;
		a->enabled = 1;
		a->policy_id = dup_opt(opts->policy->id != NULL ? opts->policy->id : "c-policy", &oom);
		a->policy_source = dup_opt(opts->policy->source, &oom);
	}
	const durox_access_context *c = opts != NULL ? opts->context : NULL;
	if (c != NULL) {
		a->user_id = dup_opt(c->user_id, &oom);
		a->source_ip = dup_opt(c->source_ip, &oom);
		a->reason = dup_opt(c->reason, &oom);
		if (c->n_roles > 0 && (a->roles = calloc(c->n_roles, sizeof *a->roles)) == NULL)
			oom = 1;
		for (size_t k = 0; !oom && k < c->n_roles; k++) {
			if (c->roles[k] == NULL) {
				snprintf(errbuf, errlen, "role #%zu of the access context is missing", k + 1);
				return DUROX_EINVALID;
			}
			a->roles[k] = dup_opt(c->roles[k], &oom);
			a->n_roles = k + 1;
		}
	}
	buf rj;
	buf_init(&rj);
	buf_addc(&rj, '[');
	for (size_t k = 0; k < a->n_roles; k++) {
		if (k)
			buf_addc(&rj, ',');
		buf_add_json_string(&rj, a->roles[k], strlen(a->roles[k]));
	}
	buf_addc(&rj, ']');
	if (buf_oom(&rj))
		oom = 1;
	a->roles_json = rj.data; /* owned */
	if (oom) {
		snprintf(errbuf, errlen, "out of memory");
		return DUROX_ENOMEM;
	}
	a->ctx = (durox_access_context){a->user_id, (const char *const *)a->roles, a->n_roles, a->source_ip, a->reason};
	/* the identity a page token is bound to */
	uint64_t h = FNV1A64_INIT;
	const char *parts[3] = {a->enabled ? a->policy_id : "-", a->user_id ? a->user_id : "-", a->roles_json};
	for (int k = 0; k < 3; k++)
		h = fnv1a64(h, parts[k], strlen(parts[k]) + 1);
	a->identity = h;
	int rc = audit_init(dx, opts, a->enabled || (opts != NULL && opts->audit), errbuf, errlen);
	if (rc != DUROX_OK)
		return rc;
	if (a->enabled && (rc = record_load(dx)) != DUROX_OK)
		snprintf(errbuf, errlen, "%s", dx->err);
	return rc;
}

uint64_t access_fingerprint(const durox *dx, uint64_t h)
{
	if (dx->acl == NULL || !dx->acl->enabled)
		return h;
	uint64_t id = dx->acl->identity;
	return fnv1a64(h, &id, sizeof id);
}

/* ---- denials ------------------------------------------------------------------------------- */

/* "user 'alice'" or "an anonymous caller". */
static void who(const access_state *a, char *out, size_t n)
{
	if (a->user_id != NULL)
		snprintf(out, n, "user '%s'", a->user_id);
	else
		snprintf(out, n, "an anonymous caller");
}

/* Records a denial and returns rc with the message set. An audit failure wins (its message
 * says the operation was refused, which it is either way). */
static int deny(durox *dx, int rc, const char *operation, const char *target, const char *reason, const char *msg)
{
	buf res;
	buf_init(&res);
	audit_result_code(&res, rc, msg);
	audit_entry e = {operation, target,
	                 "deny",    reason != NULL && reason[0] ? reason : NULL,
	                 NULL,      buf_oom(&res) ? NULL : res.data};
	int arc = audit_append(dx, &e, 0);
	buf_free(&res);
	if (arc != DUROX_OK)
		return arc;
	return dx_fail(dx, rc, "%s", msg);
}

/* The reason of an answer: the hook's why, or what the engine knows about a refusal. */
static void note_missing(const access_state *a, int hook, char *why, size_t n)
{
	snprintf(why, n, "%s is %s", hook_names[hook],
	         (a->pol.always_deny & (1u << hook)) ? "false in the policy" : "not defined by the policy");
}

/* ---- asking hooks --------------------------------------------------------------------------- */

typedef struct root_ctx {
	durox *dx;
	const durox_instance_summary *s;
	buf root;
	int done, ok;
} root_ctx;

static int ancestor_cb(void *ud, const store_node *n)
{
	root_ctx *r = ud;
	buf_reset(&r->root);
	buf_adds(&r->root, n->instance_id);
	return 0;
}

static const char *resolve_root(const durox_access_instance *self)
{
	root_ctx *r = self->priv;
	if (r->done)
		return r->ok ? buf_str(&r->root) : NULL;
	r->done = 1;
	buf_reset(&r->root);
	if (r->s->parent_instance == NULL) {
		buf_adds(&r->root, r->s->instance_id);
	} else {
		buf_adds(&r->root, r->s->parent_instance); /* an orphan: its parent row is gone */
		store *st = r->dx->st;
		if (st->mvt == NULL || st->mvt->ancestors(st, r->s->instance_id, ancestor_cb, r) != DUROX_OK) {
			st->err[0] = '\0';
			return NULL;
		}
	}
	r->ok = !buf_oom(&r->root);
	return r->ok ? buf_str(&r->root) : NULL;
}

/* Calls an instance hook: 1 allow, 0 deny (why set), never an error (a failing policy denies). */
static int ask_instance(durox *dx, int hook, const durox_instance_summary *s, const char *event, char *why, size_t n)
{
	access_state *a = dx->acl;
	const durox_access_policy *p = &a->pol;
	why[0] = '\0';
	typedef int (*inst_fn)(void *, const durox_access_context *, const durox_access_instance *, char *, size_t);
	inst_fn f = NULL;
	switch (hook) {
	case DUROX_HOOK_VIEW_INSTANCE: f = p->can_view_instance; break;
	case DUROX_HOOK_VIEW_HISTORY: f = p->can_view_history; break;
	case DUROX_HOOK_CANCEL_INSTANCE: f = p->can_cancel_instance; break;
	case DUROX_HOOK_PURGE_INSTANCE: f = p->can_purge_instance; break;
	case DUROX_HOOK_RESTART_INSTANCE: f = p->can_restart_instance; break;
	case DUROX_HOOK_RAISE_EVENT: break;
	default: snprintf(why, n, "not an instance hook"); return 0;
	}
	if (hook == DUROX_HOOK_RAISE_EVENT ? p->can_raise_event == NULL : f == NULL) {
		if (p->always_allow & (1u << hook))
			return 1;
		note_missing(a, hook, why, n);
		return 0;
	}
	root_ctx r = {dx, s, {0}, 0, 0};
	buf_init(&r.root);
	durox_access_instance inst = {s, resolve_root, &r};
	int ans = hook == DUROX_HOOK_RAISE_EVENT ? p->can_raise_event(p->ud, &a->ctx, &inst, event, why, n)
	                                         : f(p->ud, &a->ctx, &inst, why, n);
	buf_free(&r.root);
	why[n - 1] = '\0';
	return ans == DUROX_ACCESS_ALLOW;
}

/* Calls a class-wide hook: 1 allow, 0 deny. */
static int ask_global(durox *dx, int hook, char *why, size_t n)
{
	access_state *a = dx->acl;
	const durox_access_policy *p = &a->pol;
	why[0] = '\0';
	int (*f)(void *, const durox_access_context *, char *, size_t) = NULL;
	switch (hook) {
	case DUROX_HOOK_VIEW_METRICS: f = p->can_view_metrics; break;
	case DUROX_HOOK_MANAGE_JOBS: f = p->can_manage_jobs; break;
	case DUROX_HOOK_VIEW_AUDIT: f = p->can_view_audit; break;
	default: snprintf(why, n, "not a class-wide hook"); return 0;
	}
	if (f == NULL) {
		if (p->always_allow & (1u << hook))
			return 1;
		note_missing(a, hook, why, n);
		return 0;
	}
	int ans = f(p->ud, &a->ctx, why, n);
	why[n - 1] = '\0';
	return ans == DUROX_ACCESS_ALLOW;
}

/* can_list_instances: ALLOW (*filter NULL), FILTER (*filter set, owned by the caller) or DENY. */
static int ask_list(durox *dx, durox_filter **filter, char *why, size_t n)
{
	access_state *a = dx->acl;
	const durox_access_policy *p = &a->pol;
	*filter = NULL;
	why[0] = '\0';
	if (p->can_list_instances == NULL) {
		if (p->always_allow & (1u << DUROX_HOOK_LIST_INSTANCES))
			return DUROX_ACCESS_ALLOW;
		note_missing(a, DUROX_HOOK_LIST_INSTANCES, why, n);
		return DUROX_ACCESS_DENY;
	}
	durox_filter *f = NULL;
	int ans = p->can_list_instances(p->ud, &a->ctx, &f, why, n);
	why[n - 1] = '\0';
	if (ans == DUROX_ACCESS_FILTER && f != NULL) {
		if (f->root == NULL) { /* an empty filter matches everything */
			durox_filter_free(f);
			return DUROX_ACCESS_ALLOW;
		}
		*filter = f;
		return DUROX_ACCESS_FILTER;
	}
	durox_filter_free(f);
	if (ans == DUROX_ACCESS_ALLOW)
		return ans;
	if (ans == DUROX_ACCESS_FILTER && why[0] == '\0')
		snprintf(why, n, "can_list_instances answered FILTER without a filter");
	return DUROX_ACCESS_DENY;
}

/* ---- views ------------------------------------------------------------------------------------- */

/* A new filter whose root ANDs a's and b's roots (borrowed: both must outlive it). */
static durox_filter *conjoin(const durox_filter *a, const durox_filter *b)
{
	durox_filter *f = durox_filter_new();
	if (f == NULL)
		return NULL;
	durox_expr *ra = a != NULL ? a->root : NULL, *rb = b != NULL ? b->root : NULL;
	f->root = ra == NULL ? rb : rb == NULL ? ra : durox_expr_and(f, ra, rb);
	if ((ra != NULL || rb != NULL) && f->root == NULL) {
		durox_filter_free(f);
		return NULL;
	}
	return f;
}

static int view_open(durox *dx, const char *operation, const durox_filter *caller, access_view *v, int record,
                     char *why_out, size_t why_len);

int access_view_open(durox *dx, const char *operation, const durox_filter *caller, access_view *v)
{
	return view_open(dx, operation, caller, v, 1, NULL, 0);
}

int access_view_open_quiet(durox *dx, const char *operation, const durox_filter *caller, access_view *v)
{
	char why[256];
	return view_open(dx, operation, caller, v, 0, why, sizeof why);
}

/* access_view_open; with record 0 a refusal is not recorded and its reason is copied to why_out. */
static int view_open(durox *dx, const char *operation, const durox_filter *caller, access_view *v, int record,
                     char *why_out, size_t why_len)
{
	memset(v, 0, sizeof *v);
	v->dx = dx;
	v->operation = operation;
	v->filter = caller;
	if (!access_enabled(dx))
		return DUROX_OK;
	access_state *a = dx->acl;
	char why[256];
	durox_filter *pf = NULL;
	int ans = ask_list(dx, &pf, why, sizeof why);
	if (ans == DUROX_ACCESS_DENY) {
		char who_s[300], msg[700];
		who(a, who_s, sizeof who_s);
		snprintf(msg, sizeof msg, "access denied: %s may not list instances%s%s", who_s, why[0] ? ": " : "",
		         why);
		if (!record) {
			snprintf(why_out, why_len, "%s", why);
			return dx_fail(dx, DUROX_EDENIED, "%s", msg);
		}
		return deny(dx, DUROX_EDENIED, operation, NULL, why, msg);
	}
	if (pf != NULL) {
		v->policy = pf;
		v->own = conjoin(caller, pf);
		if (v->own == NULL)
			return dx_fail(dx, DUROX_ENOMEM, "out of memory");
		v->filter = v->own;
	}
	if (a->pol.can_view_instance != NULL)
		v->per_row = 1;
	else if (!(a->pol.always_allow & (1u << DUROX_HOOK_VIEW_INSTANCE)))
		v->nothing = 1; /* fail closed: no can_view_instance, no instance is visible */
	v->restricted = pf != NULL || v->per_row || v->nothing;
	return DUROX_OK;
}

int access_view_row(access_view *v, const durox_instance_summary *s)
{
	if (v->nothing)
		return 0;
	if (!v->per_row)
		return 1;
	char why[256];
	return ask_instance(v->dx, DUROX_HOOK_VIEW_INSTANCE, s, NULL, why, sizeof why);
}

void access_view_close(access_view *v)
{
	durox_filter_free(v->excl);
	durox_filter_free(v->own);
	durox_filter_free(v->policy);
	memset(v, 0, sizeof *v);
}

/* ---- aggregate views: hidden rows excluded in the filter ---------------------------------------- */

typedef struct hidden_scan {
	arena batch;
	durox_instance_summary *rows;
	size_t n, cap;
	int rc;
} hidden_scan;

static int hidden_fill(void *ud, const durox_instance_summary *s)
{
	hidden_scan *h = ud;
	if (h->n == h->cap || summary_copy(&h->batch, &h->rows[h->n], s) != DUROX_OK) {
		h->rc = DUROX_ENOMEM;
		return -1;
	}
	h->n++;
	return 0;
}

int access_view_open_aggregate(durox *dx, const char *operation, const durox_filter *caller, access_view *v)
{
	int rc = access_view_open(dx, operation, caller, v);
	if (rc != DUROX_OK || (!v->per_row && !v->nothing))
		return rc;
	durox_filter *x = durox_filter_new();
	if (x == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	v->excl = x;
	durox_expr *base = v->filter != NULL ? v->filter->root : NULL;
	if (v->nothing) {
		/* every instance is hidden: a condition no instance meets */
		durox_expr *none = durox_expr_cmp(x, DUROX_FIELD_INSTANCE_ID, DUROX_OP_IS_NULL, NULL);
		x->root = base != NULL ? durox_expr_and(x, base, none) : none;
	} else {
		/* one pass over what the filter admits, asking can_view_instance about each row
		 * between store reads; the hidden ids become one exclusion */
		buf ids;
		buf_init(&ids);
		buf_addc(&ids, '[');
		size_t hidden = 0;
		hidden_scan h = {{0}, NULL, 0, 512, DUROX_OK};
		arena_init(&h.batch);
		buf last;
		buf_init(&last);
		store_list_query q = {v->filter, DUROX_ORDER_INSTANCE_ID, 0, {0}, 512};
		for (;;) {
			arena_release(&h.batch);
			h.n = 0;
			h.rows = arena_calloc(&h.batch, h.cap, sizeof *h.rows);
			if (h.rows == NULL) {
				rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
				break;
			}
			rc = dx->st->vt->list(dx->st, &q, hidden_fill, &h);
			if (rc != DUROX_OK) {
				rc = h.rc != DUROX_OK ? dx_fail(dx, h.rc, "out of memory") : dx_store_fail(dx, rc);
				break;
			}
			for (size_t k = 0; k < h.n; k++) {
				char why[256];
				if (ask_instance(dx, DUROX_HOOK_VIEW_INSTANCE, &h.rows[k], NULL, why, sizeof why))
					continue;
				if (hidden++)
					buf_addc(&ids, ',');
				buf_add_json_string(&ids, h.rows[k].instance_id, strlen(h.rows[k].instance_id));
			}
			if (h.n < h.cap)
				break;
			buf_reset(&last);
			buf_adds(&last, h.rows[h.n - 1].instance_id);
			if (buf_oom(&last)) {
				rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
				break;
			}
			q.after = (store_keyset){1, 1, buf_str(&last), 0, buf_str(&last)};
		}
		buf_addc(&ids, ']');
		if (rc == DUROX_OK && buf_oom(&ids))
			rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
		if (rc == DUROX_OK && hidden > 0) {
			durox_expr *out = durox_expr_not(x, filter_idset(x, ids.data, hidden));
			x->root = base != NULL ? durox_expr_and(x, base, out) : out;
		} else if (rc == DUROX_OK) {
			x->root = base; /* nothing hidden: the view's filter as it is */
		}
		arena_release(&h.batch);
		buf_free(&last);
		buf_free(&ids);
		if (rc != DUROX_OK)
			return rc;
	}
	if (base != NULL && x->root == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	v->filter = x;
	v->per_row = 0;
	v->nothing = 0;
	return DUROX_OK;
}

/* ---- one instance ---------------------------------------------------------------------------------- */

typedef struct one_row {
	arena *a;
	durox_instance_summary s;
	int found, rc;
} one_row;

static int one_cb(void *ud, const durox_instance_summary *s)
{
	one_row *o = ud;
	if (summary_copy(o->a, &o->s, s) != DUROX_OK) {
		o->rc = DUROX_ENOMEM;
		return -1;
	}
	o->found = 1;
	return 1;
}

/* The summary of id if the view's filter admits it (found 0 otherwise). */
static int visible_summary(durox *dx, const access_view *v, const char *id, arena *a, durox_instance_summary *out,
                           int *found)
{
	*found = 0;
	durox_filter *f = durox_filter_new();
	if (f == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	durox_value val = {.type = DUROX_VAL_TEXT, .text = id};
	durox_expr *e = durox_expr_cmp(f, DUROX_FIELD_INSTANCE_ID, DUROX_OP_EQ, &val);
	if (e != NULL && v->filter != NULL && v->filter->root != NULL)
		e = durox_expr_and(f, v->filter->root, e);
	if (e == NULL) {
		durox_filter_free(f);
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	}
	f->root = e;
	one_row o = {a, {0}, 0, DUROX_OK};
	store_list_query q = {f, DUROX_ORDER_INSTANCE_ID, 0, {0}, 1};
	int rc = dx->st->vt->list(dx->st, &q, one_cb, &o);
	durox_filter_free(f);
	if (rc != DUROX_OK)
		return o.rc != DUROX_OK ? dx_fail(dx, o.rc, "out of memory") : dx_store_fail(dx, rc);
	*found = o.found;
	*out = o.s;
	return DUROX_OK;
}

int access_instance(durox *dx, const char *operation, int hook, const char *id, const char *event_name, arena *a,
                    durox_instance_summary *out, int *checked)
{
	if (checked != NULL)
		*checked = 0;
	if (!access_enabled(dx))
		return DUROX_OK;
	if (checked != NULL)
		*checked = 1;
	if (id == NULL || id[0] == '\0')
		return dx_fail(dx, DUROX_EINVALID, "instance id must not be empty");
	access_view v;
	char msg[900], lwhy[256];
	snprintf(msg, sizeof msg, "instance '%s' not found", id);
	int rc = view_open(dx, operation, NULL, &v, 0, lwhy, sizeof lwhy);
	if (rc == DUROX_EDENIED) {
		/* the caller may list nothing: every instance is hidden from it */
		access_view_close(&v);
		return deny(dx, DUROX_ENOTFOUND, operation, id, lwhy[0] ? lwhy : "hidden", msg);
	}
	if (rc != DUROX_OK) {
		access_view_close(&v);
		return rc;
	}
	arena local;
	arena_init(&local);
	durox_instance_summary s;
	int found = 0;
	rc = visible_summary(dx, &v, id, a != NULL ? a : &local, &s, &found);
	if (rc == DUROX_OK && found && access_view_row(&v, &s) != 1)
		found = 0;
	access_view_close(&v);
	if (rc == DUROX_OK && !found) {
		/* hidden or missing: the same answer; a hidden one that exists is a denied read */
		int exists = 0;
		uint64_t cur;
		rc = dx->st->vt->instance_exists(dx->st, id, &exists, &cur);
		if (rc != DUROX_OK)
			rc = dx_store_fail(dx, rc);
		else if (exists)
			rc = deny(dx, DUROX_ENOTFOUND, operation, id, "hidden", msg);
		else
			rc = dx_fail(dx, DUROX_ENOTFOUND, "%s", msg);
	}
	if (rc == DUROX_OK && hook != DUROX_HOOK_VIEW_INSTANCE) {
		char why[256], who_s[300];
		if (!ask_instance(dx, hook, &s, event_name, why, sizeof why)) {
			who(dx->acl, who_s, sizeof who_s);
			snprintf(msg, sizeof msg, "access denied: %s may not %s instance '%s'%s%s", who_s,
			         hook_verb(hook), id, why[0] ? ": " : "", why);
			rc = deny(dx, DUROX_EDENIED, operation, id, why, msg);
		}
	}
	if (rc == DUROX_OK && out != NULL && a != NULL)
		*out = s;
	arena_release(&local);
	return rc;
}

int access_ask_instance(durox *dx, int hook, const durox_instance_summary *s, const char *event_name, char *why,
                        size_t whylen)
{
	if (!access_enabled(dx))
		return 1;
	return ask_instance(dx, hook, s, event_name, why, whylen);
}

int access_start(durox *dx, const char *name, const char *instance_id)
{
	if (!access_enabled(dx))
		return DUROX_OK;
	access_state *a = dx->acl;
	const durox_access_policy *p = &a->pol;
	char why[256] = "";
	int ok;
	if (p->can_start_orchestration == NULL) {
		ok = (p->always_allow & (1u << DUROX_HOOK_START_ORCHESTRATION)) != 0;
		if (!ok)
			note_missing(a, DUROX_HOOK_START_ORCHESTRATION, why, sizeof why);
	} else {
		ok = p->can_start_orchestration(p->ud, &a->ctx, name, instance_id, why, sizeof why) ==
		     DUROX_ACCESS_ALLOW;
		why[sizeof why - 1] = '\0';
	}
	if (ok)
		return DUROX_OK;
	char who_s[300], msg[900];
	who(a, who_s, sizeof who_s);
	snprintf(msg, sizeof msg, "access denied: %s may not start orchestration '%s' as instance '%s'%s%s", who_s,
	         name, instance_id, why[0] ? ": " : "", why);
	return deny(dx, DUROX_EDENIED, "start_orchestration", instance_id, why, msg);
}

int access_global(durox *dx, const char *operation, int hook)
{
	if (!access_enabled(dx))
		return DUROX_OK;
	char why[256];
	if (ask_global(dx, hook, why, sizeof why))
		return DUROX_OK;
	static const char *const what[] = {[DUROX_HOOK_VIEW_METRICS] = "view metrics",
	                                   [DUROX_HOOK_MANAGE_JOBS] = "manage bulk jobs",
	                                   [DUROX_HOOK_VIEW_AUDIT] = "read the audit log"};
	char who_s[300], msg[700];
	who(dx->acl, who_s, sizeof who_s);
	snprintf(msg, sizeof msg, "access denied: %s may not %s%s%s", who_s,
	         hook >= DUROX_HOOK_VIEW_METRICS && hook <= DUROX_HOOK_VIEW_AUDIT ? what[hook] : "do this",
	         why[0] ? ": " : "", why);
	return deny(dx, DUROX_EDENIED, operation, NULL, why, msg);
}

int access_store_wide(durox *dx, const char *operation)
{
	if (!access_enabled(dx))
		return DUROX_OK;
	int rc = access_global(dx, operation, DUROX_HOOK_VIEW_METRICS);
	if (rc != DUROX_OK)
		return rc;
	access_view v;
	rc = access_view_open(dx, operation, NULL, &v);
	int restricted = v.restricted;
	access_view_close(&v);
	if (rc != DUROX_OK || !restricted)
		return rc;
	char who_s[300], msg[700];
	who(dx->acl, who_s, sizeof who_s);
	snprintf(msg, sizeof msg,
	         "access denied: %s may not see every instance, and %s describes the whole store; use "
	         "get_orchestration_metrics, query_instances or get_time_series_metrics, which count what the caller "
	         "may see",
	         who_s, operation);
	return deny(dx, DUROX_EDENIED, operation, NULL, "restricted view", msg);
}

int access_payloads_visible(const durox *dx)
{
	return !access_enabled(dx) || (dx->acl->pol.can_view_history == NULL &&
	                               (dx->acl->pol.always_allow & (1u << DUROX_HOOK_VIEW_HISTORY)) != 0);
}

uint32_t access_bulk_ceiling(const durox *dx)
{
	uint32_t c = dx->cfg.max_bulk_operations;
	if (access_enabled(dx) && dx->acl->pol.max_bulk_operations > 0 && dx->acl->pol.max_bulk_operations < c)
		c = dx->acl->pol.max_bulk_operations;
	return c;
}

uint32_t access_policy_bulk_cap(const durox *dx) { return access_enabled(dx) ? dx->acl->pol.max_bulk_operations : 0; }

int access_check_config(durox *dx, const durox_config *cfg)
{
	if (!access_enabled(dx) || dx->acl->pol.max_bulk_operations == 0 ||
	    cfg->max_bulk_operations <= dx->acl->pol.max_bulk_operations)
		return DUROX_OK;
	char who_s[300], msg[700];
	who(dx->acl, who_s, sizeof who_s);
	snprintf(msg, sizeof msg,
	         "access denied: the policy allows %s bulk operations of at most %u instances (asked for %u)", who_s,
	         (unsigned)dx->acl->pol.max_bulk_operations, (unsigned)cfg->max_bulk_operations);
	char target[32];
	snprintf(target, sizeof target, "%u", (unsigned)cfg->max_bulk_operations);
	return deny(dx, DUROX_EDENIED, "set_config", target, "max_bulk_operations above the policy's cap", msg);
}

void durox_get_access_info(durox *dx, durox_access_info *out)
{
	memset(out, 0, sizeof *out);
	access_state *a = dx->acl;
	out->audit = audit_mode_name(dx);
	if (a == NULL)
		return;
	out->enabled = a->enabled;
	out->policy = a->enabled ? a->policy_id : NULL;
	out->user_id = a->user_id;
	out->n_roles = a->n_roles;
	out->roles = (const char *const *)a->roles;
	out->source_ip = a->source_ip;
	out->audit_file = a->audit_mode == AUDIT_FILE ? a->audit_file : NULL;
	out->audit_keyed = a->key != NULL;
	out->max_bulk_operations = a->enabled ? a->pol.max_bulk_operations : 0;
}

/* ---- visible summaries by id -------------------------------------------------------------------- */

typedef struct id_batch {
	arena mem;
	durox_instance_summary *rows;
	size_t n, cap;
	int rc;
} id_batch;

static int id_batch_cb(void *ud, const durox_instance_summary *s)
{
	id_batch *b = ud;
	if (b->n == b->cap || summary_copy(&b->mem, &b->rows[b->n], s) != DUROX_OK) {
		b->rc = DUROX_ENOMEM;
		return -1;
	}
	b->n++;
	return 0;
}

#define ID_CHUNK 200

int access_visible_by_id(access_view *v, const char *const *ids, size_t n, store_summary_cb cb, void *ud)
{
	durox *dx = v->dx;
	if (v->nothing)
		return DUROX_OK;
	int rc = DUROX_OK;
	for (size_t first = 0; first < n && rc == DUROX_OK; first += ID_CHUNK) {
		size_t m = n - first < ID_CHUNK ? n - first : ID_CHUNK;
		id_batch b = {{0}, NULL, 0, m, DUROX_OK};
		arena_init(&b.mem);
		b.rows = arena_calloc(&b.mem, m, sizeof *b.rows);
		if (b.rows == NULL) {
			arena_release(&b.mem);
			return dx_fail(dx, DUROX_ENOMEM, "out of memory");
		}
		int from_store = 0;
		if (v->filter != NULL && v->filter->root != NULL) {
			/* the store tests the policy's filter: (filter) AND instance_id IN (chunk) */
			durox_filter *f = durox_filter_new();
			durox_value *vals = f != NULL ? arena_calloc(&f->mem, m, sizeof *vals) : NULL;
			durox_expr *e = NULL;
			if (vals != NULL) {
				for (size_t k = 0; k < m; k++)
					vals[k] = (durox_value){.type = DUROX_VAL_TEXT, .text = ids[first + k]};
				e = durox_expr_in(f, DUROX_FIELD_INSTANCE_ID, vals, m);
				if (e != NULL)
					e = durox_expr_and(f, v->filter->root, e);
			}
			if (e == NULL) {
				rc = f != NULL && strstr(f->err, "memory") == NULL
				             ? dx_fail(dx, DUROX_EINVALID, "%s", f->err)
				             : dx_fail(dx, DUROX_ENOMEM, "out of memory");
			} else {
				f->root = e;
				store_list_query q = {f, DUROX_ORDER_INSTANCE_ID, 0, {0}, (uint32_t)m};
				rc = dx->st->vt->list(dx->st, &q, id_batch_cb, &b);
				from_store = 1;
			}
			durox_filter_free(f);
		} else {
			rc = dx->st->vt->summaries_by_id(dx->st, ids + first, m, id_batch_cb, &b);
			from_store = 1;
		}
		if (rc != DUROX_OK && from_store)
			rc = b.rc != DUROX_OK ? dx_fail(dx, b.rc, "out of memory") : dx_store_fail(dx, rc);
		for (size_t k = 0; rc == DUROX_OK && k < b.n; k++) {
			int vis = access_view_row(v, &b.rows[k]);
			if (vis < 0)
				rc = vis;
			else if (vis && cb(ud, &b.rows[k]) < 0)
				rc = DUROX_EABORT;
		}
		arena_release(&b.mem);
	}
	return rc;
}
