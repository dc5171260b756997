/*
 * sqlite_index_read.c - the reads the SQLite visibility index serves: listing with keyset
 * positions in any order, counting, summaries by id, and the instance and history digests
 * behind the metrics. Each answers exactly what the store's own query (sqlite_read.c,
 * sqlite_metrics.c) answers, from rows that hold what that query computes; only the SQL is
 * shorter, and an index serves it. Called by those files when sqi_usable() says so.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_index.h"

sqlite3_stmt *sqi_stmt(sqlite_store *s, const char *sql) { return ix_stmt(s->ix, sql); }

int sqi_fail(sqlite_store *s, int src, const char *what) { return ix_fail(s->ix, src, what); }

static int stmt_err(sqlite_store *s) { return s->ix->last_rc != 0 ? s->ix->last_rc : DUROX_EIO; }

/* The field as a column of `main.dx_inst x` (the columns hold the store SQL's values). */
const char *sqi_field_sql(int field)
{
	switch (field) {
	case DUROX_FIELD_STATUS: return "x.status";
	case DUROX_FIELD_ORCHESTRATION_NAME: return "x.name";
	case DUROX_FIELD_VERSION: return "x.version";
	case DUROX_FIELD_INSTANCE_ID: return "x.instance_id";
	case DUROX_FIELD_PARENT_INSTANCE: return "x.parent_instance";
	case DUROX_FIELD_CREATED_AT: return "x.created_at";
	case DUROX_FIELD_UPDATED_AT: return "x.updated_at";
	case DUROX_FIELD_COMPLETED_AT: return "x.completed_at";
	case DUROX_FIELD_CUSTOM_STATUS: return "x.custom_status";
	case DUROX_FIELD_EXECUTION_COUNT: return "x.execution_count";
	case DUROX_FIELD_FAILURE_KIND: return "x.failure_kind";
	default: return NULL;
	}
}

/* The summary columns in sq_read_summary's order. */
#define SUMMARY_COLS                                                                                                   \
	"SELECT x.instance_id, x.name, x.version, x.status, x.created_at, x.updated_at, x.execution_count,"            \
	" x.parent_instance, x.parent_id, x.completed_at, x.failure_kind, x.error, x.custom_status,"                   \
	" x.custom_status_version FROM main.dx_inst x"

static int run(sqlite_store *s, sqlite3_stmt *st, store_summary_cb cb, void *ud)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		durox_instance_summary sum;
		sq_read_summary(st, &sum);
		if (sum.instance_id == NULL)
			continue;
		int r = cb(ud, &sum);
		if (r != 0) {
			sq_done(st);
			return r > 0 ? DUROX_OK : r;
		}
	}
	sq_done(st);
	return rc == SQLITE_DONE ? DUROX_OK : sqi_fail(s, rc, "listing instances");
}

/* ---- a long listing from the first row: read unordered, sort here ---------------------
 * Walking a (key, instance_id) index in order costs a primary-key lookup into dx_inst per row
 * (a WITHOUT ROWID table): 100k rows took ~120 ms of the index walk against ~15 ms for a scan
 * of the table itself. So a listing that starts at its first row and may return more than
 * BULK_MIN rows reads the matches in table order (SQLite picks an index for the filter, if one
 * serves it), and sorts them here in the order the SQL would give: keys compare as SQLite
 * compares them (NULL first, integers by value, text by BINARY collation), ties by
 * instance_id. When more than q->limit rows match, it gives up and the index walk answers
 * (that listing is cut at q->limit anyway), so memory stays bounded by q->limit rows. */

#define BULK_MIN 4096

typedef struct bulk_row {
	durox_instance_summary s;
	const char *tkey; /* text key (name) or NULL for NULL */
	int64_t ikey;
	size_t tlen, idlen;
	int knull; /* the key is NULL */
} bulk_row;

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl;
}

static int cmp_id(const bulk_row *a, const bulk_row *b)
{
	return cmp_bytes(a->s.instance_id, a->idlen, b->s.instance_id, b->idlen);
}

static int cmp_bulk_int(const void *x, const void *y)
{
	const bulk_row *a = *(bulk_row *const *)x, *b = *(bulk_row *const *)y;
	if (a->knull != b->knull)
		return a->knull ? -1 : 1;
	if (!a->knull && a->ikey != b->ikey)
		return a->ikey < b->ikey ? -1 : 1;
	return cmp_id(a, b);
}

static int cmp_bulk_text(const void *x, const void *y)
{
	const bulk_row *a = *(bulk_row *const *)x, *b = *(bulk_row *const *)y;
	if (a->knull != b->knull)
		return a->knull ? -1 : 1;
	if (!a->knull) {
		int c = cmp_bytes(a->tkey, a->tlen, b->tkey, b->tlen);
		if (c != 0)
			return c;
	}
	return cmp_id(a, b);
}

static int cmp_bulk_id(const void *x, const void *y) { return cmp_id(*(bulk_row *const *)x, *(bulk_row *const *)y); }

static const char *bulk_text(arena *a, sqlite3_stmt *st, int col, size_t *len, int *oom)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	if (t == NULL)
		return NULL;
	size_t n = (size_t)sqlite3_column_bytes(st, col);
	if (len != NULL)
		*len = n;
	char *c = arena_strndup(a, (const char *)t, n);
	if (c == NULL)
		*oom = 1;
	return c;
}

/* 1: answered (rc in *rc), 0: more than q->limit rows match (the caller walks the index). */
static int list_bulk(sqlite_store *s, const store_list_query *q, const char *where_sql, binds *b, store_summary_cb cb,
                     void *ud, int *rcp)
{
	sqlite3_stmt *st = sqi_stmt(s, where_sql);
	if (st == NULL) {
		*rcp = stmt_err(s);
		return 1;
	}
	int rc = sq_bind_all(s, st, b, 1);
	if (rc != DUROX_OK) {
		sq_done(st);
		*rcp = rc;
		return 1;
	}
	arena a;
	arena_init(&a);
	size_t n = 0, cap = 1024;
	bulk_row *rows = malloc(cap * sizeof *rows);
	int oom = rows == NULL, answered = 1;
	int step = SQLITE_DONE;
	while (!oom && (step = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) == SQLITE_NULL)
			continue; /* as run() skips it */
		if (n == q->limit) {
			answered = 0;
			break;
		}
		if (n == cap) {
			bulk_row *g = realloc(rows, 2 * cap * sizeof *rows);
			if (g == NULL) {
				oom = 1;
				break;
			}
			rows = g;
			cap *= 2;
		}
		bulk_row *r = &rows[n++];
		durox_instance_summary *m = &r->s;
		sq_read_summary(st, m); /* the integers and enums; the texts are copied below */
		m->instance_id = bulk_text(&a, st, 0, &r->idlen, &oom);
		const char *name = bulk_text(&a, st, 1, &r->tlen, &oom);
		m->orchestration_name = name != NULL ? name : "";
		m->version = bulk_text(&a, st, 2, NULL, &oom);
		m->parent_instance = bulk_text(&a, st, 7, NULL, &oom);
		m->error = bulk_text(&a, st, 11, NULL, &oom);
		m->custom_status = bulk_text(&a, st, 12, NULL, &oom);
		int kcol = q->order_by == DUROX_ORDER_UPDATED_AT           ? 5
		           : q->order_by == DUROX_ORDER_ORCHESTRATION_NAME ? 1
		                                                           : 4;
		r->knull = sqlite3_column_type(st, kcol) == SQLITE_NULL;
		r->ikey = sqlite3_column_int64(st, kcol);
		r->tkey = name;
	}
	sq_done(st);
	if (oom)
		rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	else if (answered && step != SQLITE_DONE)
		rc = sqi_fail(s, step, "listing instances");
	else if (answered) {
		int (*cmp)(const void *, const void *) = q->order_by == DUROX_ORDER_INSTANCE_ID          ? cmp_bulk_id
		                                         : q->order_by == DUROX_ORDER_ORCHESTRATION_NAME ? cmp_bulk_text
		                                                                                         : cmp_bulk_int;
		bulk_row **order = malloc((n ? n : 1) * sizeof *order);
		if (order == NULL) {
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
		} else {
			for (size_t k = 0; k < n; k++)
				order[k] = &rows[k];
			qsort(order, n, sizeof *order, cmp);
			for (size_t k = 0; k < n; k++) {
				int r = cb(ud, &order[q->descending ? n - 1 - k : k]->s);
				if (r != 0) {
					rc = r > 0 ? DUROX_OK : r;
					break;
				}
			}
			free(order);
		}
	}
	free(rows);
	arena_release(&a);
	*rcp = rc;
	return answered || oom;
}

int sqi_list(sqlite_store *s, const store_list_query *q, store_summary_cb cb, void *ud)
{
	binds *b = calloc(1, sizeof *b);
	if (b == NULL)
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	sqlgen g = {s, {0}, b, 1};
	buf_init(&g.sql);
	const char *key;
	switch (q->order_by) {
	case DUROX_ORDER_UPDATED_AT: key = "x.updated_at"; break;
	case DUROX_ORDER_INSTANCE_ID: key = NULL; break;
	case DUROX_ORDER_ORCHESTRATION_NAME: key = "x.name"; break;
	default: key = "x.created_at";
	}
	const char *dir = q->descending ? "DESC" : "ASC";
	buf_adds(&g.sql, SUMMARY_COLS " WHERE ");
	sq_gen_where(&g, q->filter);
	if (!q->after.active && q->limit > BULK_MIN && !buf_oom(&g.sql) && !b->overflow) {
		int rc;
		if (list_bulk(s, q, buf_str(&g.sql), b, cb, ud, &rc)) {
			buf_free(&g.sql);
			free(b);
			return rc;
		}
	}
	if (q->after.active) {
		/* a row value, which the (key, instance_id) indexes seek to */
		const char *cmp = q->descending ? "<" : ">";
		durox_value kv = {.type = q->after.key_is_text ? DUROX_VAL_TEXT : DUROX_VAL_INT,
		                  .text = q->after.key_text,
		                  .i = q->after.key_int};
		durox_value idv = {.type = DUROX_VAL_TEXT, .text = q->after.instance_id};
		if (key == NULL) {
			buf_addf(&g.sql, " AND x.instance_id %s ", cmp);
			sq_bind_push(&g, &idv);
		} else {
			buf_addf(&g.sql, " AND (%s, x.instance_id) %s (", key, cmp);
			sq_bind_push(&g, &kv);
			buf_adds(&g.sql, ", ");
			sq_bind_push(&g, &idv);
			buf_adds(&g.sql, ")");
		}
	}
	if (key == NULL)
		buf_addf(&g.sql, " ORDER BY x.instance_id %s", dir);
	else
		buf_addf(&g.sql, " ORDER BY %s %s, x.instance_id %s", key, dir, dir);
	if (q->limit > 0)
		buf_addf(&g.sql, " LIMIT %u", (unsigned)q->limit);
	int rc;
	if (buf_oom(&g.sql))
		rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	else if (b->overflow)
		rc = store_fail(&s->base, DUROX_ELIMIT, "filter too large (more than %zu values)",
		                sizeof b->v / sizeof b->v[0]);
	else {
		sqlite3_stmt *st = sqi_stmt(s, buf_str(&g.sql));
		if (st == NULL)
			rc = stmt_err(s);
		else if ((rc = sq_bind_all(s, st, b, 1)) != DUROX_OK)
			sq_done(st);
		else
			rc = run(s, st, cb, ud);
	}
	buf_free(&g.sql);
	free(b);
	return rc;
}

int sqi_count(sqlite_store *s, const durox_filter *f, int64_t *out)
{
	*out = 0;
	binds *b = calloc(1, sizeof *b);
	if (b == NULL)
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	sqlgen g = {s, {0}, b, 1};
	buf_init(&g.sql);
	buf_adds(&g.sql, "SELECT count(*) FROM main.dx_inst x WHERE ");
	sq_gen_where(&g, f);
	int rc;
	sqlite3_stmt *st;
	if (buf_oom(&g.sql) || b->overflow)
		rc = store_fail(&s->base, b->overflow ? DUROX_ELIMIT : DUROX_ENOMEM,
		                "filter too large or out of memory");
	else if ((st = sqi_stmt(s, buf_str(&g.sql))) == NULL)
		rc = stmt_err(s);
	else {
		rc = sq_bind_all(s, st, b, 1);
		if (rc == DUROX_OK) {
			int r = sqlite3_step(st);
			if (r == SQLITE_ROW)
				*out = sqlite3_column_int64(st, 0);
			else
				rc = sqi_fail(s, r, "counting instances");
		}
		sq_done(st);
	}
	buf_free(&g.sql);
	free(b);
	return rc;
}

int sqi_summaries_by_id(sqlite_store *s, const char *const *ids, size_t n, store_summary_cb cb, void *ud)
{
	static const size_t sizes[] = {256, 64, 8, 1};
	size_t done = 0;
	int rc = DUROX_OK;
	buf sql;
	buf_init(&sql);
	while (done < n && rc == DUROX_OK) {
		size_t chunk = 1;
		for (size_t k = 0; k < 4; k++)
			if (n - done >= sizes[k]) {
				chunk = sizes[k];
				break;
			}
		buf_reset(&sql);
		buf_adds(&sql, SUMMARY_COLS " WHERE x.instance_id IN (");
		for (size_t k = 0; k < chunk; k++)
			buf_adds(&sql, k ? ",?" : "?");
		buf_addc(&sql, ')');
		if (buf_oom(&sql)) {
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
			break;
		}
		sqlite3_stmt *st = sqi_stmt(s, buf_str(&sql));
		if (st == NULL) {
			rc = stmt_err(s);
			break;
		}
		for (size_t k = 0; k < chunk; k++)
			sqlite3_bind_text(st, (int)k + 1, ids[done + k], -1, SQLITE_STATIC);
		rc = run(s, st, cb, ud);
		done += chunk;
	}
	buf_free(&sql);
	return rc;
}

/* ---- the digests ------------------------------------------------------------------------- */

static int cmp_null_first(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int cmp_igroup(const void *x, const void *y)
{
	const store_instance_group *a = x, *b = y;
	int c = strcmp(a->name, b->name);
	return c != 0 ? c : cmp_null_first(a->version, b->version);
}

static int cmp_dgroup(const void *x, const void *y)
{
	const store_duration_group *a = x, *b = y;
	int c = strcmp(a->name, b->name);
	return c != 0 ? c : cmp_null_first(a->version, b->version);
}

/* The value of a dx_totals counter (0 when absent). */
static int total_of(sqlite_store *s, const char *k, int64_t *v)
{
	*v = 0;
	sqlite3_stmt *st = sqi_stmt(s, "SELECT v FROM main.dx_totals WHERE k=?1");
	if (st == NULL)
		return stmt_err(s);
	sqlite3_bind_text(st, 1, k, -1, SQLITE_TRANSIENT);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sq_done(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? DUROX_OK : sqi_fail(s, r, "reading its totals");
}

int sqi_instance_digest(sqlite_store *s, store_instance_digest *out)
{
	memset(out, 0, sizeof *out);
	arena_init(&out->mem);
	int64_t n = 0, execs = 0;
	int rc = total_of(s, "n_exec", &execs);
	sqlite3_stmt *st = NULL;
	if (rc == DUROX_OK && (st = sqi_stmt(s, "SELECT count(*) FROM main.dx_groups WHERE instances <> 0")) == NULL)
		rc = stmt_err(s);
	if (st != NULL) {
		int r = sqlite3_step(st);
		n = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		sq_done(st);
		if (r != SQLITE_ROW)
			rc = sqi_fail(s, r, "reading its groups");
	}
	out->executions = (uint64_t)execs;
	out->groups = rc == DUROX_OK ? arena_calloc(&out->mem, n ? (size_t)n : 1, sizeof *out->groups) : NULL;
	if (rc == DUROX_OK && out->groups == NULL)
		rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	if (rc == DUROX_OK &&
	    (st = sqi_stmt(s, "SELECT name, version, instances, running, completed, failed, can, unknown"
	                      " FROM main.dx_groups WHERE instances <> 0")) == NULL)
		rc = stmt_err(s);
	if (rc == DUROX_OK) {
		int r;
		size_t k = 0;
		while ((r = sqlite3_step(st)) == SQLITE_ROW && k < (size_t)n) {
			store_instance_group *g = &out->groups[k++];
			const char *name = (const char *)sqlite3_column_text(st, 0);
			const char *version = (const char *)sqlite3_column_text(st, 1);
			g->name = arena_strdup(&out->mem, name ? name : "");
			g->version = version ? arena_strdup(&out->mem, version) : NULL;
			if (g->name == NULL || (version && g->version == NULL)) {
				r = SQLITE_NOMEM;
				break;
			}
			g->instances = (uint64_t)sqlite3_column_int64(st, 2);
			g->running = (uint64_t)sqlite3_column_int64(st, 3);
			g->completed = (uint64_t)sqlite3_column_int64(st, 4);
			g->failed = (uint64_t)sqlite3_column_int64(st, 5);
			g->continued_as_new = (uint64_t)sqlite3_column_int64(st, 6);
			g->unknown = (uint64_t)sqlite3_column_int64(st, 7);
		}
		sq_done(st);
		if (r == SQLITE_NOMEM)
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
		else if (r != SQLITE_DONE && r != SQLITE_ROW)
			rc = sqi_fail(s, r, "reading its groups");
		out->n = k;
		if (k > 1)
			qsort(out->groups, k, sizeof *out->groups, cmp_igroup);
	}
	if (rc != DUROX_OK)
		store_instance_digest_free(out);
	return rc;
}

int sqi_history_digest(sqlite_store *s, store_history_digest *out)
{
	memset(out, 0, sizeof *out);
	arena_init(&out->mem);
	out->has = STORE_DIGEST_ROUND_TRIPS;
	int rc = DUROX_OK;
	int64_t v;
	char key[64];
	if ((rc = total_of(s, "rows", &v)) != DUROX_OK)
		goto fail;
	out->rows = (uint64_t)v;
	if ((rc = total_of(s, "other", &v)) != DUROX_OK)
		goto fail;
	out->other_types = (uint64_t)v;
	for (int k = 0; k < EV__COUNT; k++) {
		snprintf(key, sizeof key, "t:%s", store_event_type_names[k]);
		if ((rc = total_of(s, key, &v)) != DUROX_OK)
			goto fail;
		out->by_type[k] = (uint64_t)v;
	}
	for (int k = 1; k < DUROX_FAILURE__COUNT; k++) {
		snprintf(key, sizeof key, "fk:%s", durox_failure_kind_name(k));
		if ((rc = total_of(s, key, &v)) != DUROX_OK)
			goto fail;
		out->failed_by_kind[k] = (uint64_t)v;
	}
	if ((rc = total_of(s, "rt_n", &v)) != DUROX_OK)
		goto fail;
	out->round_trips = (uint64_t)v;
	if ((rc = total_of(s, "rt_sum", &v)) != DUROX_OK)
		goto fail;
	out->round_trip_ms = (double)v;
	if ((rc = total_of(s, "dur_n", &v)) != DUROX_OK)
		goto fail;
	out->durations = (uint64_t)v;
	if ((rc = total_of(s, "dur_sum", &v)) != DUROX_OK)
		goto fail;
	out->duration_ms = (double)v;
	/* the groups that an OrchestrationStarted was counted into */
	sqlite3_stmt *st = sqi_stmt(s, "SELECT name, version, dur_n, dur_sum FROM main.dx_groups WHERE os_n <> 0");
	if (st == NULL) {
		rc = stmt_err(s);
		goto fail;
	}
	size_t cap = 16, n = 0;
	store_duration_group *gs = malloc(cap * sizeof *gs);
	int r = gs ? SQLITE_ROW : SQLITE_NOMEM;
	while (gs != NULL && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			store_duration_group *g2 = realloc(gs, 2 * cap * sizeof *gs);
			if (g2 == NULL) {
				r = SQLITE_NOMEM;
				break;
			}
			gs = g2;
			cap *= 2;
		}
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *version = (const char *)sqlite3_column_text(st, 1);
		store_duration_group *g = &gs[n++];
		g->name = arena_strdup(&out->mem, name ? name : "");
		g->version = version ? arena_strdup(&out->mem, version) : NULL;
		g->n = (uint64_t)sqlite3_column_int64(st, 2);
		g->sum_ms = (double)sqlite3_column_int64(st, 3);
		if (g->name == NULL || (version && g->version == NULL)) {
			r = SQLITE_NOMEM;
			break;
		}
	}
	sq_done(st);
	if (r != SQLITE_DONE) {
		free(gs);
		rc = r == SQLITE_NOMEM ? store_fail(&s->base, DUROX_ENOMEM, "out of memory")
		                       : sqi_fail(s, r, "reading its groups");
		goto fail;
	}
	if (n > 1)
		qsort(gs, n, sizeof *gs, cmp_dgroup);
	out->groups = arena_calloc(&out->mem, n ? n : 1, sizeof *out->groups);
	if (out->groups == NULL) {
		free(gs);
		rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
		goto fail;
	}
	if (n)
		memcpy(out->groups, gs, n * sizeof *gs);
	out->ngroups = n;
	free(gs);
	return DUROX_OK;
fail:
	store_history_digest_free(out);
	memset(out, 0, sizeof *out);
	arena_init(&out->mem);
	return rc;
}

int sqi_existence_gen(sqlite_store *s, int64_t gen[2])
{
	gen[0] = (int64_t)s->ix->removals;
	return ix_int(s->ix, "PRAGMA main.data_version", NULL, &gen[1], NULL);
}

int sqi_instances_exist(sqlite_store *s, size_t n, const char *const *ids, const size_t *lens, unsigned char *exists)
{
	static const char *const sql[] = {"SELECT 1 FROM main.dx_inst WHERE instance_id=?1",
	                                  "SELECT 1 FROM store.instances WHERE instance_id=?1"};
	int rc = ix_exec(s->ix, "BEGIN", "reading instances"); /* one snapshot, not one per id */
	for (size_t i = 0; rc == DUROX_OK && i < n; i++) {
		exists[i] = 0;
		for (int k = 0; k < 2 && !exists[i] && rc == DUROX_OK; k++) {
			sqlite3_stmt *st = sqi_stmt(s, sql[k]);
			if (st == NULL) {
				rc = stmt_err(s);
				break;
			}
			sqlite3_bind_text(st, 1, ids[i], (int)lens[i], SQLITE_STATIC);
			int r = sqlite3_step(st);
			exists[i] = r == SQLITE_ROW;
			sq_done(st);
			if (r != SQLITE_ROW && r != SQLITE_DONE)
				rc = sqi_fail(s, r, "reading instances");
		}
	}
	sqlite3_exec(s->ix->db, "COMMIT", NULL, NULL, NULL);
	return rc;
}
