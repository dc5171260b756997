/*
 * sqlite_index_verify.c - durox_index_verify for the SQLite visibility index: every summary row
 * compared with the listing's own SQL over the store (not the build's fast path), every
 * contribution recomputed into scratch tables, and the totals and groups checked against the
 * sum of the rows. Relies on sqlite_index_build.c; used through sq_index_vtable.
 */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_index.h"

/* Keeps the first difference found. */
#define NOTE(out, ...)                                                                                                 \
	do {                                                                                                           \
		if ((out)->first[0] == '\0')                                                                           \
			snprintf((out)->first, sizeof(out)->first, __VA_ARGS__);                                       \
	} while (0)

/* Compares dx_inst with the listing SQL over the store, row by row, in id order. */
static int verify_summaries(sq_index *ix, durox_index_verify_result *out)
{
	buf sql;
	buf_init(&sql);
	sq_add_summary_columns(ix->s, &sql);
	buf_adds(&sql, ", " DURATION_SQL " FROM store.instances i LEFT JOIN store.executions e ON"
	               " e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id ORDER BY i.instance_id");
	sqlite3_stmt *a = buf_oom(&sql) ? NULL : ix_stmt(ix, buf_str(&sql));
	buf_free(&sql);
	sqlite3_stmt *b =
	        a == NULL ? NULL
	                  : ix_stmt(ix, "SELECT instance_id, name, version, status, created_at, updated_at,"
	                                " execution_count, parent_instance, parent_id, completed_at, failure_kind,"
	                                " error, custom_status, custom_status_version, duration_ms FROM"
	                                " main.dx_inst ORDER BY instance_id");
	if (a == NULL || b == NULL) {
		if (a)
			sq_done(a);
		return ix_last_err(ix);
	}
	int ra = sqlite3_step(a), rb = sqlite3_step(b);
	while (ra == SQLITE_ROW || rb == SQLITE_ROW) {
		const char *ia = ra == SQLITE_ROW ? (const char *)sqlite3_column_text(a, 0) : NULL;
		const char *ib = rb == SQLITE_ROW ? (const char *)sqlite3_column_text(b, 0) : NULL;
		int c = ia == NULL ? 1 : ib == NULL ? -1 : ix_id_cmp(ia, strlen(ia), ib, strlen(ib));
		if (c < 0) {
			out->missing++;
			NOTE(out, "instance '%.400s' is missing from the index", ia);
			ra = sqlite3_step(a);
			continue;
		}
		if (c > 0) {
			out->extra++;
			NOTE(out, "the index holds instance '%.400s', which the store no longer has", ib);
			rb = sqlite3_step(b);
			continue;
		}
		out->instances_checked++;
		for (int k = 1; k < 15; k++) {
			sqlite3_value *va = sqlite3_column_value(a, k), *vb = sqlite3_column_value(b, k);
			int ta = sqlite3_value_type(va), tb = sqlite3_value_type(vb);
			int same = ta == tb;
			if (same && ta == SQLITE_INTEGER)
				same = sqlite3_value_int64(va) == sqlite3_value_int64(vb);
			else if (same && ta != SQLITE_NULL)
				same = sqlite3_value_bytes(va) == sqlite3_value_bytes(vb) &&
				       memcmp(sqlite3_value_blob(va), sqlite3_value_blob(vb),
				              (size_t)sqlite3_value_bytes(va)) == 0;
			if (!same) {
				out->mismatched++;
				NOTE(out, "instance '%.400s': %s differs", ia, sqlite3_column_name(b, k));
				break;
			}
		}
		ra = sqlite3_step(a);
		rb = sqlite3_step(b);
	}
	int rc = DUROX_OK;
	if (ra != SQLITE_DONE)
		rc = ix_fail(ix, ra, "reading the store");
	else if (rb != SQLITE_DONE)
		rc = ix_fail(ix, rb, "reading the index");
	sq_done(a);
	sq_done(b);
	return rc;
}

/* Rows of table that are in one schema and not in the other. */
static int table_diff(sq_index *ix, const char *table, int64_t *n)
{
	char sql[512];
	snprintf(sql, sizeof sql,
	         "SELECT (SELECT count(*) FROM (SELECT * FROM main.%s EXCEPT SELECT * FROM temp.%s)) +"
	         " (SELECT count(*) FROM (SELECT * FROM temp.%s EXCEPT SELECT * FROM main.%s))",
	         table, table, table, table);
	return ix_int(ix, sql, NULL, n, NULL);
}

/* One expected group (verify). */
typedef struct vgroup {
	char *key;
	size_t klen;
	int64_t v[9]; /* instances, running, completed, failed, can, unknown, os_n, dur_n, dur_sum */
} vgroup;

typedef struct vgroups {
	vgroup *g;
	size_t n, cap;
	int oom;
} vgroups;

static vgroup *vgroup_of(vgroups *gs, const buf *key)
{
	for (size_t k = 0; k < gs->n; k++)
		if (gs->g[k].klen == key->len && memcmp(gs->g[k].key, key->data, key->len) == 0)
			return &gs->g[k];
	if (gs->n == gs->cap) {
		size_t cap = gs->cap ? gs->cap * 2 : 16;
		vgroup *n = realloc(gs->g, cap * sizeof *n);
		if (n == NULL) {
			gs->oom = 1;
			return NULL;
		}
		gs->g = n;
		gs->cap = cap;
	}
	vgroup *g = &gs->g[gs->n];
	memset(g, 0, sizeof *g);
	if ((g->key = malloc(key->len ? key->len : 1)) == NULL) {
		gs->oom = 1;
		return NULL;
	}
	memcpy(g->key, key->data, key->len);
	g->klen = key->len;
	gs->n++;
	return g;
}

/* Recomputes every contribution into scratch tables and compares them, the totals and the
 * groups with what the index holds. */
static int verify_contribs(sq_index *ix, durox_index_verify_result *out)
{
	int rc = ix_exec(
	        ix,
	        "CREATE TEMP TABLE IF NOT EXISTS dx_contrib (instance_id TEXT PRIMARY KEY, open_start INTEGER,"
	        " grp_name TEXT, grp_version TEXT, c BLOB NOT NULL) WITHOUT ROWID;"
	        "CREATE TEMP TABLE IF NOT EXISTS dx_pending (instance_id TEXT, execution_id INTEGER,"
	        " event_id INTEGER, ts INTEGER, PRIMARY KEY (instance_id, execution_id, event_id)) WITHOUT ROWID;"
	        "DELETE FROM temp.dx_contrib; DELETE FROM temp.dx_pending;",
	        "verifying");
	int64_t n_inst;
	if (rc == DUROX_OK)
		rc = ix_build_pass(ix, "temp", 0, "", 1, NULL, NULL, &n_inst);
	int64_t diff = 0;
	if (rc == DUROX_OK && (rc = table_diff(ix, "dx_contrib", &diff)) == DUROX_OK && diff > 0) {
		out->mismatched += (uint64_t)diff;
		if (out->first[0] == '\0')
			snprintf(out->first, sizeof out->first,
			         "%lld contribution rows differ from a recount of the store's history",
			         (long long)diff);
	}
	if (rc == DUROX_OK && (rc = table_diff(ix, "dx_pending", &diff)) == DUROX_OK && diff > 0) {
		out->mismatched += (uint64_t)diff;
		if (out->first[0] == '\0')
			snprintf(out->first, sizeof out->first, "%lld open activities differ from the store's history",
			         (long long)diff);
	}
	if (rc != DUROX_OK)
		return rc;
	/* the totals and groups the rows add up to */
	ix_contrib total;
	memset(&total, 0, sizeof total);
	vgroups gs = {0};
	buf key;
	buf_init(&key);
	sqlite3_stmt *st = ix_stmt(ix, "SELECT c FROM temp.dx_contrib");
	int r = st ? SQLITE_ROW : SQLITE_ERROR;
	while (st != NULL && (r = sqlite3_step(st)) == SQLITE_ROW) {
		arena a;
		arena_init(&a);
		ix_contrib c;
		if (ix_contrib_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &a, &c) != 0) {
			arena_release(&a);
			r = SQLITE_CORRUPT;
			break;
		}
		ix_contrib_add(&total, &c);
		for (size_t k = 0; k < c.ndg; k++) {
			ix_group_key(&key, c.dg[k].name, c.dg[k].version);
			vgroup *g = vgroup_of(&gs, &key);
			if (g != NULL) {
				g->v[6] += (int64_t)c.dg[k].os;
				g->v[7] += (int64_t)c.dg[k].n;
				g->v[8] += c.dg[k].sum;
			}
		}
		arena_release(&a);
	}
	if (st != NULL)
		sq_done(st);
	if (r != SQLITE_DONE)
		rc = st == NULL ? ix_last_err(ix) : ix_fail(ix, r, "reading contributions");
	if (rc == DUROX_OK && (st = ix_stmt(ix, "SELECT name, version, status, count(*) FROM main.dx_inst"
	                                        " GROUP BY name, version, status")) == NULL)
		rc = ix_last_err(ix);
	else if (rc == DUROX_OK) {
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			const char *name = (const char *)sqlite3_column_text(st, 0);
			const char *version = (const char *)sqlite3_column_text(st, 1);
			ix_group_key(&key, name, version);
			vgroup *g = vgroup_of(&gs, &key);
			if (g != NULL) {
				int64_t n = sqlite3_column_int64(st, 3);
				g->v[0] += n;
				g->v[ix_status_class((const char *)sqlite3_column_text(st, 2))] += n;
			}
		}
		sq_done(st);
		if (r != SQLITE_DONE)
			rc = ix_fail(ix, r, "reading summaries");
	}
	if (rc == DUROX_OK && (gs.oom || buf_oom(&key)))
		rc = store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	/* compare the groups, both ways */
	if (rc == DUROX_OK &&
	    (st = ix_stmt(ix, "SELECT gkey, instances, running, completed, failed, can, unknown, os_n,"
	                      " dur_n, dur_sum FROM main.dx_groups")) == NULL)
		rc = ix_last_err(ix);
	else if (rc == DUROX_OK) {
		size_t seen = 0;
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			buf_reset(&key);
			buf_add(&key, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
			int zero = 1;
			for (int k = 0; k < 9; k++)
				zero = zero && sqlite3_column_int64(st, 1 + k) == 0;
			vgroup *g = NULL;
			for (size_t k = 0; k < gs.n; k++)
				if (gs.g[k].klen == key.len && memcmp(gs.g[k].key, key.data, key.len) == 0)
					g = &gs.g[k];
			int same = g != NULL || zero;
			for (int k = 0; g != NULL && k < 9; k++)
				same = same && sqlite3_column_int64(st, 1 + k) == g->v[k];
			if (g != NULL)
				seen++;
			if (!same) {
				out->digests_mismatched++;
				if (out->first[0] == '\0')
					snprintf(out->first, sizeof out->first,
					         "the digest group of '%s' differs from its rows",
					         (const char *)key.data);
			}
		}
		sq_done(st);
		if (r != SQLITE_DONE)
			rc = ix_fail(ix, r, "reading groups");
		else if (seen < gs.n) {
			out->digests_mismatched += gs.n - seen;
			if (out->first[0] == '\0')
				snprintf(out->first, sizeof out->first, "%zu digest groups are missing", gs.n - seen);
		}
	}
	/* compare the totals */
	if (rc == DUROX_OK) {
		int64_t v;
		struct {
			const char *k;
			int64_t want;
		} t[8] = {{"rows", (int64_t)total.rows},     {"other", (int64_t)total.other},
		          {"rt_n", (int64_t)total.rt_n},     {"rt_sum", total.rt_sum},
		          {"n_exec", (int64_t)total.n_exec}, {"dur_n", (int64_t)total.dur_n},
		          {"dur_sum", total.dur_sum},        {NULL, 0}};
		for (int k = 0; t[k].k != NULL && rc == DUROX_OK; k++) {
			if ((rc = ix_int(ix, "SELECT v FROM main.dx_totals WHERE k=?1", t[k].k, &v, NULL)) ==
			            DUROX_OK &&
			    v != t[k].want) {
				out->digests_mismatched++;
				if (out->first[0] == '\0')
					snprintf(out->first, sizeof out->first,
					         "the total '%s' is %lld, its rows add up to %lld", t[k].k,
					         (long long)v, (long long)t[k].want);
			}
		}
		char name[64];
		for (int k = 0; k < EV__COUNT && rc == DUROX_OK; k++) {
			snprintf(name, sizeof name, "t:%s", store_event_type_names[k]);
			if ((rc = ix_int(ix, "SELECT v FROM main.dx_totals WHERE k=?1", name, &v, NULL)) == DUROX_OK &&
			    v != (int64_t)total.by_type[k]) {
				out->digests_mismatched++;
				if (out->first[0] == '\0')
					snprintf(out->first, sizeof out->first,
					         "the count of %s events differs from its rows",
					         store_event_type_names[k]);
			}
		}
		for (int k = 1; k < DUROX_FAILURE__COUNT && rc == DUROX_OK; k++) {
			snprintf(name, sizeof name, "fk:%s", durox_failure_kind_name(k));
			if ((rc = ix_int(ix, "SELECT v FROM main.dx_totals WHERE k=?1", name, &v, NULL)) == DUROX_OK &&
			    v != (int64_t)total.failed_by_kind[k]) {
				out->digests_mismatched++;
				if (out->first[0] == '\0')
					snprintf(out->first, sizeof out->first,
					         "the count of %s failures differs from its rows",
					         durox_failure_kind_name(k));
			}
		}
	}
	for (size_t k = 0; k < gs.n; k++)
		free(gs.g[k].key);
	free(gs.g);
	buf_free(&key);
	ix_exec(ix, "DELETE FROM temp.dx_contrib; DELETE FROM temp.dx_pending;", "verifying");
	return rc;
}

int sqi_verify(store *base, durox_index_verify_result *out)
{
	sqlite_store *s = (sqlite_store *)base;
	memset(out, 0, sizeof *out);
	sq_index *ix = ix_opened(s);
	if (ix == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	if (ix->state == IX_READY) {
		int rc = ix_sync(ix);
		if (rc != DUROX_OK)
			return rc;
	}
	if (ix->state != IX_READY)
		return store_fail(base, DUROX_EUNSUPPORTED, "the visibility index is not ready (%s): %s",
		                  ix_state_name(ix->state), ix->reason);
	ix_store_mmap(ix, 0);
	int rc = ix_exec(ix, "BEGIN", "verifying");
	if (rc != DUROX_OK) {
		ix_store_mmap(ix, 1);
		return rc;
	}
	rc = verify_summaries(ix, out);
	if (rc == DUROX_OK)
		rc = verify_contribs(ix, out);
	sqlite3_exec(ix->db, "COMMIT", NULL, NULL, NULL);
	ix_store_mmap(ix, 1);
	return rc;
}
