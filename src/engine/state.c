/*
 * state.c - the durable state of the real-time consumers (durox.h: dead letters, named
 * cursors, rule runs) over the provider's state vtable (store/provider_state.h). Writes are
 * short write transactions through the provider's ops (begin/commit, so they are paced like
 * every write of ours); our tables are created on first use. Reads on a store that never
 * had them answer empty. Used by the Lua binding (webhooks, `duroxlua rules`).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "engine/ops_internal.h"
#include "store/provider_state.h"
#include "util/timeutil.h"

#define DEFAULT_LIMIT 1000

void durox_free(void *p) { free(p); }

static int check_state(durox *dx)
{
	if (dx->st->svt == NULL)
		return dx_fail(dx, DUROX_EUNSUPPORTED, "the %s store cannot keep stream state", dx->st->info.provider);
	/* the durable state of streams, webhooks and rules is operational state, as the job
	 * journal is: under a policy it needs can_manage_jobs */
	return access_global(dx, "stream_state", DUROX_HOOK_MANAGE_JOBS);
}

/* Opens a write transaction with our tables in place. */
static int begin_state(durox *dx)
{
	int rc = op_check_writable(dx);
	if (rc == DUROX_OK)
		rc = check_state(dx);
	if (rc != DUROX_OK)
		return rc;
	if ((rc = dx->st->ops->begin(dx->st)) != DUROX_OK)
		return dx_store_fail(dx, rc);
	if ((rc = dx->st->svt->create(dx->st)) != DUROX_OK) {
		dx->st->ops->rollback(dx->st);
		return dx_store_fail(dx, rc);
	}
	return DUROX_OK;
}

static int end_state(durox *dx, int rc)
{
	if (rc != DUROX_OK) {
		dx->st->ops->rollback(dx->st);
		return dx_store_fail(dx, rc);
	}
	if ((rc = dx->st->ops->commit(dx->st)) != DUROX_OK) {
		dx->st->ops->rollback(dx->st);
		return dx_store_fail(dx, rc);
	}
	return DUROX_OK;
}

/* Whether our tables exist (reads of a store without them answer empty). */
static int have_state(durox *dx, int *exists)
{
	*exists = 0;
	int rc = check_state(dx);
	if (rc != DUROX_OK)
		return rc;
	if ((rc = dx->st->svt->exists(dx->st, exists)) != DUROX_OK)
		return dx_store_fail(dx, rc);
	return DUROX_OK;
}

/* ---- dead letters ------------------------------------------------------------------------- */

typedef struct dl_result {
	durox_dead_letter_list pub;
	arena mem;
	size_t cap;
} dl_result;

void durox_dead_letter_list_free(durox_dead_letter_list *l)
{
	if (l == NULL)
		return;
	dl_result *r = (dl_result *)l;
	free(r->pub.items);
	arena_release(&r->mem);
	free(r);
}

int durox_dead_letter_add(durox *dx, const durox_dead_letter *d, int64_t *id)
{
	dx_clear(dx);
	if (id != NULL)
		*id = 0;
	if (d->source == NULL || d->url == NULL || d->key == NULL || d->payload == NULL)
		return dx_fail(dx, DUROX_EINVALID, "a dead letter needs its source, url, key and payload");
	int rc = begin_state(dx);
	if (rc != DUROX_OK)
		return rc;
	store_dead_letter s = {0,          time_now_ms(), d->source,   d->url,         d->key,
	                       d->payload, d->items,      d->attempts, d->last_status, d->last_error};
	int64_t got = 0;
	rc = end_state(dx, dx->st->svt->dead_letter_add(dx->st, &s, &got));
	if (rc == DUROX_OK && id != NULL)
		*id = got;
	return rc;
}

static int dl_cb(void *ud, const store_dead_letter *d)
{
	dl_result *r = ud;
	if (r->pub.count == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;
		durox_dead_letter *n = realloc(r->pub.items, ncap * sizeof *n);
		if (n == NULL)
			return DUROX_ENOMEM;
		r->pub.items = n;
		r->cap = ncap;
	}
	durox_dead_letter *o = &r->pub.items[r->pub.count];
	*o = (durox_dead_letter){d->id,
	                         d->created_at,
	                         arena_strdup(&r->mem, d->source),
	                         arena_strdup(&r->mem, d->url),
	                         arena_strdup(&r->mem, d->key),
	                         arena_strdup(&r->mem, d->payload),
	                         d->items,
	                         d->attempts,
	                         d->last_status,
	                         d->last_error ? arena_strdup(&r->mem, d->last_error) : NULL};
	if (o->source == NULL || o->url == NULL || o->key == NULL || o->payload == NULL ||
	    (d->last_error && o->last_error == NULL))
		return DUROX_ENOMEM;
	r->pub.count++;
	return 0;
}

int durox_list_dead_letters(durox *dx, const char *source, int64_t after, uint32_t limit, durox_dead_letter_list **out)
{
	dx_clear(dx);
	*out = NULL;
	dl_result *r = calloc(1, sizeof *r);
	if (r == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena_init(&r->mem);
	int exists = 0;
	int rc = have_state(dx, &exists);
	if (rc == DUROX_OK && exists) {
		rc = dx->st->svt->dead_letter_list(dx->st, source, after, limit ? limit : DEFAULT_LIMIT, dl_cb, r);
		if (rc == DUROX_ENOMEM && dx->st->err[0] == '\0')
			rc = dx_fail(dx, rc, "out of memory");
		else if (rc != DUROX_OK)
			rc = dx_store_fail(dx, rc);
	}
	if (rc != DUROX_OK) {
		durox_dead_letter_list_free(&r->pub);
		return rc;
	}
	*out = &r->pub;
	return DUROX_OK;
}

int durox_dead_letter_delete(durox *dx, int64_t id)
{
	dx_clear(dx);
	int rc = begin_state(dx);
	if (rc != DUROX_OK)
		return rc;
	int found = 0;
	rc = end_state(dx, dx->st->svt->dead_letter_delete(dx->st, id, &found));
	if (rc == DUROX_OK && !found)
		return dx_fail(dx, DUROX_ENOTFOUND, "dead letter %lld not found", (long long)id);
	return rc;
}

/* ---- cursors and rule runs ------------------------------------------------------------------ */

int durox_cursor_get(durox *dx, const char *name, char **out)
{
	dx_clear(dx);
	*out = NULL;
	int exists = 0;
	int rc = have_state(dx, &exists);
	if (rc != DUROX_OK || !exists)
		return rc;
	if ((rc = dx->st->svt->cursor_get(dx->st, name, out)) != DUROX_OK)
		return dx_store_fail(dx, rc);
	return DUROX_OK;
}

typedef struct run_result {
	durox_rule_run_list pub;
	arena mem;
	size_t cap;
} run_result;

void durox_rule_run_list_free(durox_rule_run_list *l)
{
	if (l == NULL)
		return;
	run_result *r = (run_result *)l;
	free(r->pub.items);
	arena_release(&r->mem);
	free(r);
}

static int run_cb(void *ud, const store_rule_run *x)
{
	run_result *r = ud;
	if (r->pub.count == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;
		durox_rule_run *n = realloc(r->pub.items, ncap * sizeof *n);
		if (n == NULL)
			return DUROX_ENOMEM;
		r->pub.items = n;
		r->cap = ncap;
	}
	durox_rule_run *o = &r->pub.items[r->pub.count];
#define DUP(f) (x->f != NULL ? arena_strdup(&r->mem, x->f) : NULL)
	*o = (durox_rule_run){DUP(rule),        DUP(key),        DUP(state),    x->attempts,   DUP(error),
	                      DUP(instance_id), DUP(event_type), x->started_at, x->finished_at};
#undef DUP
	if (o->rule == NULL || o->key == NULL || o->state == NULL || (x->error && !o->error) ||
	    (x->instance_id && !o->instance_id) || (x->event_type && !o->event_type))
		return DUROX_ENOMEM;
	r->pub.count++;
	return 0;
}

static int new_runs(durox *dx, run_result **out)
{
	*out = calloc(1, sizeof **out);
	if (*out == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena_init(&(*out)->mem);
	return DUROX_OK;
}

int durox_rule_run_get(durox *dx, const char *rule, const char *key, durox_rule_run_list **out)
{
	dx_clear(dx);
	*out = NULL;
	run_result *r;
	int rc = new_runs(dx, &r);
	if (rc != DUROX_OK)
		return rc;
	int exists = 0;
	rc = have_state(dx, &exists);
	if (rc == DUROX_OK && exists) {
		int found = 0;
		store_rule_run x;
		rc = dx->st->svt->run_get(dx->st, rule, key, &found, &x);
		if (rc != DUROX_OK)
			rc = dx_store_fail(dx, rc);
		else if (found && run_cb(r, &x) != 0)
			rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
	}
	if (rc != DUROX_OK) {
		durox_rule_run_list_free(&r->pub);
		return rc;
	}
	*out = &r->pub;
	return DUROX_OK;
}

int durox_rule_run_put(durox *dx, const durox_rule_run *r, const char *cursor_name, const char *cursor)
{
	dx_clear(dx);
	if (r != NULL && (r->rule == NULL || r->key == NULL || r->state == NULL))
		return dx_fail(dx, DUROX_EINVALID, "a rule run needs its rule, key and state");
	if (cursor_name != NULL && cursor == NULL)
		return dx_fail(dx, DUROX_EINVALID, "no cursor to save under '%s'", cursor_name);
	int rc = begin_state(dx);
	if (rc != DUROX_OK)
		return rc;
	if (r != NULL) {
		store_rule_run x = {r->rule,        r->key,        r->state,      r->attempts,   r->error,
		                    r->instance_id, r->event_type, r->started_at, r->finished_at};
		rc = dx->st->svt->run_put(dx->st, &x);
	}
	if (rc == DUROX_OK && cursor_name != NULL)
		rc = dx->st->svt->cursor_put(dx->st, cursor_name, cursor, time_now_ms());
	return end_state(dx, rc);
}

int durox_list_rule_runs(durox *dx, const char *rule, const char *state, int64_t since, uint32_t limit,
                         durox_rule_run_list **out)
{
	dx_clear(dx);
	*out = NULL;
	run_result *r;
	int rc = new_runs(dx, &r);
	if (rc != DUROX_OK)
		return rc;
	int exists = 0;
	rc = have_state(dx, &exists);
	if (rc == DUROX_OK && exists) {
		rc = dx->st->svt->run_list(dx->st, rule, state, since, limit ? limit : DEFAULT_LIMIT, run_cb, r);
		if (rc == DUROX_ENOMEM && dx->st->err[0] == '\0')
			rc = dx_fail(dx, rc, "out of memory");
		else if (rc != DUROX_OK)
			rc = dx_store_fail(dx, rc);
	}
	if (rc != DUROX_OK) {
		durox_rule_run_list_free(&r->pub);
		return rc;
	}
	*out = &r->pub;
	return DUROX_OK;
}

int durox_rule_run_count(durox *dx, const char *rule, int64_t since, uint64_t *n)
{
	dx_clear(dx);
	*n = 0;
	int exists = 0;
	int rc = have_state(dx, &exists);
	if (rc != DUROX_OK || !exists)
		return rc;
	if ((rc = dx->st->svt->run_count_since(dx->st, rule, since, n)) != DUROX_OK)
		return dx_store_fail(dx, rc);
	return DUROX_OK;
}
