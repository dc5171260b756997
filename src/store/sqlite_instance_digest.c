/*
 * sqlite_instance_digest.c - the SQLite provider's instance digest: one pass over instances
 * joined to their current execution, counted per (name, version) and status by the SQL
 * function durox_igroup, and kept on the connection while the store is unchanged (PRAGMA
 * data_version and this handle's own writes). Relies on sqlite_groups.c; used by the engine's
 * metrics through sq_metrics_vtable.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_index.h"
#include "store/sqlite_metrics_internal.h"

/* durox_igroup(state, name, version, status): counts one instance into its group. */
void sq_fn_igroup(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	group_set *gs = sqlite3_value_pointer(argv[0], "durox_group_set");
	if (gs == NULL) {
		sqlite3_result_error(ctx, "durox_igroup: no state", -1);
		return;
	}
	const char *name = (const char *)sqlite3_value_blob(argv[1]);
	int nlen = sqlite3_value_bytes(argv[1]);
	const char *version =
	        sqlite3_value_type(argv[2]) == SQLITE_NULL ? NULL : (const char *)sqlite3_value_blob(argv[2]);
	int vlen = sqlite3_value_bytes(argv[2]);
	if (version == NULL && sqlite3_value_type(argv[2]) != SQLITE_NULL)
		version = ""; /* an empty string, not NULL */
	const char *status = (const char *)sqlite3_value_text(argv[3]);
	int64_t gi = sq_group_of(gs, name ? name : "", name ? (size_t)nlen : 0, version, (size_t)vlen);
	if (gi < 0) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	struct group_acc *g = &gs->g[gi];
	g->c[0]++;
	int k = 5;
	if (status != NULL) {
		if (strcmp(status, "Running") == 0)
			k = 1;
		else if (strcmp(status, "Completed") == 0)
			k = 2;
		else if (strcmp(status, "Failed") == 0)
			k = 3;
		else if (strcmp(status, "ContinuedAsNew") == 0)
			k = 4;
	}
	g->c[k]++;
	sqlite3_result_int(ctx, 0);
}

/* The last instance digest, reused while nothing changed: no other connection committed
 * (PRAGMA data_version) and this one wrote nothing since it was read. */
struct inst_cache {
	store_instance_digest d;
	int64_t data_version;
	uint64_t own_writes;
};

void sq_inst_cache_free(sqlite_store *s)
{
	if (s->inst != NULL) {
		store_instance_digest_free(&s->inst->d);
		free(s->inst);
		s->inst = NULL;
	}
}

/* Deep-copies digest src into dst (a fresh arena). */
static int instance_digest_copy(store_instance_digest *dst, const store_instance_digest *src)
{
	memset(dst, 0, sizeof *dst);
	arena_init(&dst->mem);
	dst->executions = src->executions;
	dst->groups = arena_calloc(&dst->mem, src->n ? src->n : 1, sizeof *dst->groups);
	if (dst->groups == NULL)
		return DUROX_ENOMEM;
	for (size_t k = 0; k < src->n; k++) {
		dst->groups[k] = src->groups[k];
		dst->groups[k].name = arena_strdup(&dst->mem, src->groups[k].name);
		dst->groups[k].version =
		        src->groups[k].version ? arena_strdup(&dst->mem, src->groups[k].version) : NULL;
		if (dst->groups[k].name == NULL || (src->groups[k].version && dst->groups[k].version == NULL))
			return DUROX_ENOMEM;
	}
	dst->n = src->n;
	return DUROX_OK;
}

static int instance_digest_read(sqlite_store *s, store_instance_digest *out);

int sq_instance_digest(store *base, store_instance_digest *out)
{
	sqlite_store *s = (sqlite_store *)base;
	if (sqi_usable(s))
		return sqi_instance_digest(s, out);
	int64_t dv = 0;
	int rc = sq_one_int(s, "PRAGMA data_version", "reading the data version", &dv, NULL);
	if (rc != DUROX_OK) {
		memset(out, 0, sizeof *out);
		arena_init(&out->mem);
		return rc;
	}
	if (s->inst == NULL || s->inst->data_version != dv || s->inst->own_writes != s->writes) {
		sq_inst_cache_free(s);
		if ((rc = instance_digest_read(s, out)) != DUROX_OK)
			return rc;
		struct inst_cache *c = calloc(1, sizeof *c);
		if (c != NULL && instance_digest_copy(&c->d, out) == DUROX_OK) {
			c->data_version = dv;
			c->own_writes = s->writes;
			s->inst = c;
		} else if (c != NULL) {
			store_instance_digest_free(&c->d);
			free(c);
		}
		return DUROX_OK;
	}
	if (instance_digest_copy(out, &s->inst->d) != DUROX_OK) {
		store_instance_digest_free(out);
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	}
	return DUROX_OK;
}

static int instance_digest_read(sqlite_store *s, store_instance_digest *out)
{
	store *base = &s->base;
	memset(out, 0, sizeof *out);
	arena_init(&out->mem);
	group_set gs;
	sq_groups_init(&gs, &out->mem);
	int rc = DUROX_OK;
	sqlite3_stmt *st = sq_stmt(s, "SELECT count(*),"
	                              " sum(durox_igroup(?1, i.orchestration_name, i.orchestration_version, e.status))"
	                              " FROM instances i LEFT JOIN executions e ON e.instance_id=i.instance_id AND"
	                              " e.execution_id=i.current_execution_id");
	if (st == NULL) {
		rc = sq_stmt_err(s);
		goto done;
	}
	sqlite3_bind_pointer(st, 1, &gs, "durox_group_set", NULL);
	int r = sqlite3_step(st);
	sq_done(st);
	if (gs.oom) {
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
		goto done;
	}
	if (r != SQLITE_ROW) {
		rc = sq_fail(s, r, "counting instances");
		goto done;
	}
	st = sq_stmt(s, "SELECT count(*) FROM executions");
	if (st == NULL) {
		rc = sq_stmt_err(s);
		goto done;
	}
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		out->executions = (uint64_t)sqlite3_column_int64(st, 0);
	sq_done(st);
	if (r != SQLITE_ROW) {
		rc = sq_fail(s, r, "counting executions");
		goto done;
	}
	if (gs.n > 1)
		qsort(gs.g, gs.n, sizeof *gs.g, sq_group_cmp);
	out->groups = arena_calloc(&out->mem, gs.n ? gs.n : 1, sizeof *out->groups);
	if (out->groups == NULL) {
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t k = 0; k < gs.n; k++) {
		struct group_acc *g = &gs.g[k];
		out->groups[k] = (store_instance_group){g->name, g->version, g->c[0], g->c[1],
		                                        g->c[2], g->c[3],    g->c[4], g->c[5]};
	}
	out->n = gs.n;
done:
	sq_groups_free(&gs);
	if (rc != DUROX_OK)
		store_instance_digest_free(out);
	return rc;
}
