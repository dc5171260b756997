/*
 * postgres_index_digest.c - the history digest persisted in the PostgreSQL visibility index
 * (postgres_index.h, docs/index.md "PostgreSQL"), so that a fresh process reads the metrics'
 * history figures from a few rows instead of streaming every history row.
 *
 * Three tables in duroxlua's schema, beside the summary table:
 * - "ixd_<schema>" (instance_id, c int8[], g text[]): one row per instance id that has history
 *   rows, its contribution to the digest. c holds its duration count (0 or 1) and ms, then
 *   (k, n) pairs of its counters that are not 0 (sparse: about 10 of 39), k a counter's 1-based
 *   position in this order: rows, other types, the counted types (store_event_type order), the
 *   failure kinds (durox_failure_kind order, 0 included), round trips, their ms, durations,
 *   their ms. g holds the (name, version) pairs of its OrchestrationStarted events, flattened
 *   (a NULL element for a NULL version), the pair that receives its duration first.
 * - "ixt_<schema>" (k, n): the running totals of the counters.
 * - "ixg_<schema>" (name, vnull, version, refs, dn, dsum): the running totals of the groups; refs
 *   counts the instances that started one (a group shows while refs is not 0).
 * Every change of an instance's row subtracts its old contribution from the totals and adds the
 * new one, in SQL, in the transaction that changes the row (under the index's advisory lock),
 * so the totals are always the sum of the rows; verification recomputes both from history.
 *
 * Why the sum of per-instance digests is the cold digest: digest.c's accumulator keys
 * everything by instance id (an activity's pairing by (instance, execution, event id), a
 * duration by instance, a group by the instance's start events), counts each row once, and
 * its sums are of integer ms (exact in a double and in int8). So running it over one
 * instance's rows and adding the results over every instance id of history gives the same
 * counters, sums and groups as one pass over all the rows. The contribution is computed from
 * every history row of the id, whether or not `instances` still has the id.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/digest.h"
#include "store/postgres_index.h"

/* positions in c (0-based here; SQL adds 1) */
enum {
	C_ROWS = 0,
	C_OTHER = 1,
	C_TYPE = 2,
	C_FAIL = C_TYPE + EV__COUNT,
	C_RT_N = C_FAIL + DUROX_FAILURE__COUNT,
	C_RT_MS,
	C_DUR_N,
	C_DUR_MS,
	C__COUNT
};

/* ---- contributions computed from history ------------------------------------------------ */

/* The contributions of a pass: ids and their c and g literals, parallel arrays. */
typedef struct contribs {
	char **id, **c, **g;
	size_t n, cap;
	int oom;
} contribs;

static void contribs_free(contribs *b)
{
	for (size_t k = 0; k < b->n; k++) {
		free(b->id[k]);
		free(b->c[k]);
		free(b->g[k]);
	}
	free(b->id);
	free(b->c);
	free(b->g);
	memset(b, 0, sizeof *b);
}

struct pass_ud {
	contribs *out;
	dg_acc acc;
	char *cur; /* the instance being accumulated, NULL before the first row */
	uint64_t rows;
};

/* The c literal of a finished digest into b: the duration's count and ms, then the counters
 * that are not 0 as (1-based position, value) pairs. */
static void c_literal(buf *b, const store_history_digest *d)
{
	int64_t v[C__COUNT];
	v[C_ROWS] = (int64_t)d->rows;
	v[C_OTHER] = (int64_t)d->other_types;
	for (int k = 0; k < EV__COUNT; k++)
		v[C_TYPE + k] = (int64_t)d->by_type[k];
	for (int k = 0; k < DUROX_FAILURE__COUNT; k++)
		v[C_FAIL + k] = (int64_t)d->failed_by_kind[k];
	v[C_RT_N] = (int64_t)d->round_trips;
	v[C_RT_MS] = (int64_t)llround(d->round_trip_ms);
	v[C_DUR_N] = (int64_t)d->durations;
	v[C_DUR_MS] = (int64_t)llround(d->duration_ms);
	buf_addf(b, "{%" PRId64 ",%" PRId64, v[C_DUR_N], v[C_DUR_MS]);
	for (int k = 0; k < C__COUNT; k++)
		if (v[k] != 0)
			buf_addf(b, ",%d,%" PRId64, k + 1, v[k]);
	buf_addc(b, '}');
}

/* Ends the instance being accumulated: its literals go to the batch, the accumulator restarts. */
static int flush_inst(struct pass_ud *u)
{
	if (u->cur == NULL)
		return 0;
	contribs *b = u->out;
	store_history_digest d;
	int rc = dg_finish(&u->acc, &d);
	dg_free(&u->acc);
	dg_init(&u->acc);
	if (rc != DUROX_OK)
		goto oom;
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 256;
		char **a = realloc(b->id, cap * sizeof *a), **c = a ? realloc(b->c, cap * sizeof *c) : NULL;
		if (a != NULL)
			b->id = a;
		if (c != NULL)
			b->c = c;
		char **g = c ? realloc(b->g, cap * sizeof *g) : NULL;
		if (g == NULL) {
			store_history_digest_free(&d);
			goto oom;
		}
		b->g = g;
		b->cap = cap;
	}
	buf cb;
	buf_init(&cb);
	c_literal(&cb, &d);
	/* the pairs, the one with the duration first */
	const char **pairs = malloc((2 * d.ngroups + 1) * sizeof *pairs);
	size_t np = 0, first = 0;
	for (size_t k = 0; k < d.ngroups; k++)
		if (d.groups[k].n > 0)
			first = k;
	for (size_t j = 0; pairs != NULL && j < d.ngroups; j++) {
		size_t k = j == 0 ? first : (j <= first ? j - 1 : j);
		pairs[np++] = d.groups[k].name;
		pairs[np++] = d.groups[k].version;
	}
	char *g = pairs != NULL ? pg_text_array(pairs, np) : NULL;
	free(pairs);
	store_history_digest_free(&d);
	if (g == NULL || buf_oom(&cb)) {
		free(g);
		buf_free(&cb);
		goto oom;
	}
	b->id[b->n] = u->cur;
	b->c[b->n] = cb.data;
	b->g[b->n] = g;
	b->n++;
	u->cur = NULL;
	return 0;
oom:
	b->oom = 1;
	return DUROX_ENOMEM;
}

static int pass_row(void *ud, const PGresult *r)
{
	struct pass_ud *u = ud;
	const char *inst = pq_text(r, 0);
	if (inst == NULL)
		return 0;
	if (u->cur == NULL || strcmp(u->cur, inst) != 0) {
		int rc = flush_inst(u);
		if (rc != 0)
			return rc;
		if ((u->cur = strdup(inst)) == NULL) {
			u->out->oom = 1;
			return DUROX_ENOMEM;
		}
	}
	u->rows++;
	const char *data = pq_text(r, 3);
	size_t ilen = (size_t)PQgetlength(r, 0, 0), dlen = data ? (size_t)PQgetlength(r, 0, 3) : 0;
	int type = data != NULL ? dg_type_from_event(&u->acc, data, dlen, ilen) : -1;
	if (dg_add(&u->acc, type, inst, ilen, pq_int(r, 1), pq_int(r, 2), data, dlen) != 0) {
		u->out->oom = 1;
		return DUROX_ENOMEM;
	}
	return 0;
}

/* The contributions of the history rows " WHERE <where>" (over h), grouped by instance. */
static int compute(pg_index *ix, const char *where, const pqp *p, contribs *out)
{
	memset(out, 0, sizeof *out);
	struct pass_ud u;
	memset(&u, 0, sizeof u);
	u.out = out;
	dg_init(&u.acc);
	buf b;
	buf_init(&b);
	buf_adds(&b, "SELECT h.instance_id, h.execution_id, h.event_id, h.event_data FROM history h WHERE ");
	buf_adds(&b, where);
	buf_adds(&b, " ORDER BY h.instance_id");
	int rc = buf_oom(&b) ? DUROX_ENOMEM
	                     : pq_query(ix->s, PQ_PRIMARY, buf_str(&b), p, pass_row, &u, NULL, "reading history");
	if (rc == DUROX_OK)
		rc = flush_inst(&u);
	buf_free(&b);
	free(u.cur);
	dg_free(&u.acc);
	ix->digest_rows += u.rows;
	if (rc == DUROX_ENOMEM || out->oom)
		rc = store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	return rc;
}

/* ---- the rows and the totals -------------------------------------------------------------- */

/* clang-format off */
/* The (k, n) pairs of the rows d (a FROM item). */
#define PAIRS " CROSS JOIN LATERAL generate_series(1, (array_length(d.c, 1) - 2) / 2) j"
#define PAIR_K "d.c[2*j+1]"
#define PAIR_N "d.c[2*j+2]"

/* $1 the ids (text[]), $2 the sign */
static const char totals_sql[] =
	"INSERT INTO @T AS t (k, n) SELECT " PAIR_K ", $2::int8 * sum(" PAIR_N ") FROM @D d" PAIRS
	" WHERE d.instance_id = ANY($1::text[]) GROUP BY 1 ON CONFLICT (k) DO UPDATE SET n = t.n + EXCLUDED.n";

static const char groups_sql[] =
	"INSERT INTO @G AS t (name, vnull, version, refs, dn, dsum) SELECT d.g[2*j-1], d.g[2*j] IS NULL,"
	" COALESCE(d.g[2*j], ''), $2::int8 * count(*), $2::int8 * sum(CASE WHEN j = 1 THEN d.c[1] ELSE 0 END),"
	" $2::int8 * sum(CASE WHEN j = 1 THEN d.c[2] ELSE 0 END) FROM @D d CROSS JOIN LATERAL"
	" generate_series(1, COALESCE(array_length(d.g, 1), 0) / 2) j WHERE d.instance_id = ANY($1::text[])"
	" GROUP BY 1, 2, 3 ON CONFLICT (name, vnull, version) DO UPDATE SET refs = t.refs + EXCLUDED.refs,"
	" dn = t.dn + EXCLUDED.dn, dsum = t.dsum + EXCLUDED.dsum";
/* clang-format on */

/* Adds sign x the rows of the ids (a text[] literal) to the totals. */
static int add_rows(pg_index *ix, const char *arr, int sign)
{
	pqp p;
	pqp_init(&p);
	pqp_text(&p, arr);
	pqp_int(&p, sign);
	int rc = pgi_q(ix, PQ_WRITE, totals_sql, &p, NULL, NULL, NULL, "updating the index's digest");
	if (rc == DUROX_OK)
		rc = pgi_q(ix, PQ_WRITE, groups_sql, &p, NULL, NULL, NULL, "updating the index's digest");
	pqp_free(&p);
	return rc;
}

/* Replaces the rows of the ids in clear (a text[] literal) by the contributions in b (whose ids
 * are among them, or clear is NULL: b's own ids), adjusting the totals. In a transaction. */
static int replace(pg_index *ix, const char *clear, const contribs *b)
{
	char *ids = pg_text_array((const char *const *)b->id, b->n);
	char *cs = pg_text_array((const char *const *)b->c, b->n);
	char *gs = pg_text_array((const char *const *)b->g, b->n);
	int rc = ids == NULL || cs == NULL || gs == NULL ? store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory")
	                                                 : DUROX_OK;
	const char *old = clear != NULL ? clear : ids;
	if (rc == DUROX_OK)
		rc = add_rows(ix, old, -1);
	pqp p;
	pqp_init(&p);
	pqp_text(&p, old);
	if (rc == DUROX_OK)
		rc = pgi_q(ix, PQ_WRITE, "DELETE FROM @D WHERE instance_id = ANY($1::text[])", &p, NULL, NULL, NULL,
		           "updating the index's digest");
	pqp_free(&p);
	if (rc == DUROX_OK && b->n > 0) {
		pqp_init(&p);
		pqp_text(&p, ids);
		pqp_text(&p, cs);
		pqp_text(&p, gs);
		rc = pgi_q(ix, PQ_WRITE,
		           "INSERT INTO @D (instance_id, c, g) SELECT u.i, u.c::int8[], u.g::text[] FROM"
		           " unnest($1::text[], $2::text[], $3::text[]) AS u(i, c, g)",
		           &p, NULL, NULL, NULL, "updating the index's digest");
		pqp_free(&p);
		if (rc == DUROX_OK)
			rc = add_rows(ix, ids, 1);
	}
	free(ids);
	free(cs);
	free(gs);
	return rc;
}

int pgd_build_range(pg_index *ix, const char *after, const char *last)
{
	pqp p;
	pqp_init(&p);
	const char *where = "TRUE";
	if (after != NULL && last != NULL)
		where = "h.instance_id > $1 AND h.instance_id <= $2";
	else if (after != NULL)
		where = "h.instance_id > $1";
	else if (last != NULL)
		where = "h.instance_id <= $1";
	if (after != NULL)
		pqp_text(&p, after);
	if (last != NULL)
		pqp_text(&p, last);
	contribs b;
	int rc = compute(ix, where, &p, &b);
	pqp_free(&p);
	if (rc == DUROX_OK && b.n > 0)
		rc = replace(ix, NULL, &b);
	contribs_free(&b);
	return rc;
}

int pgd_recompute(pg_index *ix, const char *const *ids, size_t n)
{
	if (n == 0)
		return DUROX_OK;
	char *arr = pg_text_array(ids, n);
	if (arr == NULL)
		return store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	pqp p;
	pqp_init(&p);
	pqp_text(&p, arr);
	contribs b;
	int rc = compute(ix, "h.instance_id = ANY($1::text[])", &p, &b);
	pqp_free(&p);
	if (rc == DUROX_OK)
		rc = replace(ix, arr, &b);
	contribs_free(&b);
	free(arr);
	return rc;
}

struct ids_ud {
	char **v;
	size_t n, cap;
	int oom;
};

static int id_row(void *ud, const PGresult *r)
{
	struct ids_ud *u = ud;
	if (u->n == u->cap) {
		size_t cap = u->cap ? 2 * u->cap : 64;
		char **v = realloc(u->v, cap * sizeof *v);
		if (v == NULL)
			goto oom;
		u->v = v;
		u->cap = cap;
	}
	if ((u->v[u->n] = strdup(pq_text(r, 0) ? pq_text(r, 0) : "")) == NULL)
		goto oom;
	u->n++;
	return 0;
oom:
	u->oom = 1;
	return DUROX_ENOMEM;
}

static void ids_free(struct ids_ud *u)
{
	for (size_t k = 0; k < u->n; k++)
		free(u->v[k]);
	free(u->v);
	memset(u, 0, sizeof *u);
}

/* Recomputes the ids a query gives, a batch at a time. */
static int recompute_query(pg_index *ix, const char *tmpl, const char *what)
{
	struct ids_ud u = {0};
	int rc = pgi_q(ix, PQ_WRITE, tmpl, NULL, id_row, &u, NULL, what);
	if (rc == DUROX_ENOMEM || u.oom)
		rc = store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	for (size_t k = 0; rc == DUROX_OK && k < u.n; k += 4096)
		rc = pgd_recompute(ix, (const char *const *)u.v + k, u.n - k < 4096 ? u.n - k : 4096);
	ids_free(&u);
	return rc;
}

int pgd_reconcile(pg_index *ix, int pruned)
{
	/* rows of ids whose history is gone (a purge): recomputing them removes them */
	int rc = recompute_query(ix,
	                         "SELECT d.instance_id FROM @D d WHERE NOT EXISTS (SELECT 1 FROM history h WHERE"
	                         " h.instance_id = d.instance_id COLLATE \"default\")",
	                         "reconciling the index's digest");
	/* a prune keeps the current execution: only instances with more than one can change */
	if (rc == DUROX_OK && pruned)
		rc = recompute_query(ix, "SELECT instance_id FROM instances WHERE current_execution_id > 1",
		                     "reconciling the index's digest");
	return rc;
}

/* ---- reading ------------------------------------------------------------------------------ */

static void set_c(store_history_digest *d, int k, int64_t v)
{
	if (k == C_ROWS)
		d->rows = (uint64_t)v;
	else if (k == C_OTHER)
		d->other_types = (uint64_t)v;
	else if (k >= C_TYPE && k < C_TYPE + EV__COUNT)
		d->by_type[k - C_TYPE] = (uint64_t)v;
	else if (k >= C_FAIL && k < C_FAIL + DUROX_FAILURE__COUNT)
		d->failed_by_kind[k - C_FAIL] = (uint64_t)v;
	else if (k == C_RT_N)
		d->round_trips = (uint64_t)v;
	else if (k == C_RT_MS)
		d->round_trip_ms = (double)v;
	else if (k == C_DUR_N)
		d->durations = (uint64_t)v;
	else if (k == C_DUR_MS)
		d->duration_ms = (double)v;
}

static int total_row(void *ud, const PGresult *r)
{
	set_c(ud, (int)pq_int(r, 0) - 1, pq_int(r, 1));
	return 0;
}

struct group_ud {
	store_history_digest *d;
	size_t cap;
	int oom;
};

static int group_row(void *ud, const PGresult *r)
{
	struct group_ud *u = ud;
	store_history_digest *d = u->d;
	if (d->ngroups == u->cap) {
		size_t cap = u->cap ? 2 * u->cap : 16;
		store_duration_group *g = arena_calloc(&d->mem, cap, sizeof *g);
		if (g == NULL)
			goto oom;
		if (d->ngroups)
			memcpy(g, d->groups, d->ngroups * sizeof *g);
		d->groups = g;
		u->cap = cap;
	}
	store_duration_group *g = &d->groups[d->ngroups];
	g->name = arena_strdup(&d->mem, pq_text(r, 0) ? pq_text(r, 0) : "");
	g->version = pq_text(r, 1) ? arena_strdup(&d->mem, pq_text(r, 1)) : NULL;
	if (g->name == NULL || (pq_text(r, 1) && g->version == NULL))
		goto oom;
	g->n = (uint64_t)pq_int(r, 2);
	g->sum_ms = (double)pq_int(r, 3);
	d->ngroups++;
	return 0;
oom:
	u->oom = 1;
	return DUROX_ENOMEM;
}

/* The digest from the tables t (totals) and g (groups) templates. */
static int read_digest(pg_index *ix, const char *tsql, const char *gsql, store_history_digest *out)
{
	memset(out, 0, sizeof *out);
	arena_init(&out->mem);
	out->has = STORE_DIGEST_ROUND_TRIPS;
	int rc = pgi_q(ix, 0, tsql, NULL, total_row, out, NULL, "reading the index's digest");
	struct group_ud u = {out, 0, 0};
	if (rc == DUROX_OK)
		rc = pgi_q(ix, 0, gsql, NULL, group_row, &u, NULL, "reading the index's digest");
	if (rc == DUROX_OK && out->groups == NULL &&
	    (out->groups = arena_calloc(&out->mem, 1, sizeof *out->groups)) == NULL)
		rc = DUROX_ENOMEM;
	if (rc == DUROX_ENOMEM || u.oom)
		rc = store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	if (rc != DUROX_OK) {
		store_history_digest_free(out);
		arena_init(&out->mem);
	}
	return rc;
}

/* the groups in the order of dg_finish: name, then version with NULL first (byte order) */
#define GROUPS_ORDER " ORDER BY name COLLATE \"C\", vnull DESC, version COLLATE \"C\""

int pgd_read(pg_index *ix, store_history_digest *out)
{
	return read_digest(ix, "SELECT k, n FROM @T",
	                   "SELECT name, CASE WHEN vnull THEN NULL ELSE version END, dn, dsum, vnull, version FROM @G"
	                   " WHERE refs <> 0" GROUPS_ORDER,
	                   out);
}

/* ---- verification ------------------------------------------------------------------------- */

static int same_digest(const store_history_digest *a, const store_history_digest *b, char *what, size_t cap)
{
	if (a->rows != b->rows || a->other_types != b->other_types)
		return snprintf(what, cap, "rows %" PRIu64 "/%" PRIu64 " vs %" PRIu64 "/%" PRIu64, a->rows,
		                a->other_types, b->rows, b->other_types),
		       0;
	for (int k = 0; k < EV__COUNT; k++)
		if (a->by_type[k] != b->by_type[k])
			return snprintf(what, cap, "%s %" PRIu64 " vs %" PRIu64, store_event_type_names[k],
			                a->by_type[k], b->by_type[k]),
			       0;
	for (int k = 0; k < DUROX_FAILURE__COUNT; k++)
		if (a->failed_by_kind[k] != b->failed_by_kind[k])
			return snprintf(what, cap, "failure kind %d: %" PRIu64 " vs %" PRIu64, k, a->failed_by_kind[k],
			                b->failed_by_kind[k]),
			       0;
	if (a->round_trips != b->round_trips || a->round_trip_ms != b->round_trip_ms)
		return snprintf(what, cap, "round trips %" PRIu64 "/%.0f ms vs %" PRIu64 "/%.0f ms", a->round_trips,
		                a->round_trip_ms, b->round_trips, b->round_trip_ms),
		       0;
	if (a->durations != b->durations || a->duration_ms != b->duration_ms)
		return snprintf(what, cap, "durations %" PRIu64 "/%.0f ms vs %" PRIu64 "/%.0f ms", a->durations,
		                a->duration_ms, b->durations, b->duration_ms),
		       0;
	if (a->ngroups != b->ngroups)
		return snprintf(what, cap, "%zu groups vs %zu", a->ngroups, b->ngroups), 0;
	for (size_t k = 0; k < a->ngroups; k++) {
		const store_duration_group *x = &a->groups[k], *y = &b->groups[k];
		int vs = (x->version == NULL) != (y->version == NULL) ||
		         (x->version != NULL && strcmp(x->version, y->version) != 0);
		if (strcmp(x->name, y->name) != 0 || vs || x->n != y->n || x->sum_ms != y->sum_ms)
			return snprintf(what, cap, "group %s@%s: %" PRIu64 "/%.0f ms vs %s@%s: %" PRIu64 "/%.0f ms",
			                x->name, x->version ? x->version : "(none)", x->n, x->sum_ms, y->name,
			                y->version ? y->version : "(none)", y->n, y->sum_ms),
			       0;
	}
	return 1;
}

int pgd_verify(pg_index *ix, durox_index_verify_result *out)
{
	store_history_digest cold, kept, summed;
	int rc = pg_history_digest_cold(ix->s, &cold);
	if (rc != DUROX_OK)
		return rc;
	if ((rc = pgd_read(ix, &kept)) != DUROX_OK) {
		store_history_digest_free(&cold);
		return rc;
	}
	/* the sum of the rows, as the totals should be */
	rc = read_digest(
	        ix, "SELECT " PAIR_K ", sum(" PAIR_N ")::int8 FROM @D d" PAIRS " GROUP BY 1",
	        "SELECT * FROM (SELECT d.g[2*j-1] AS name, d.g[2*j] AS v, sum(CASE WHEN j = 1 THEN d.c[1] ELSE 0"
	        " END)::int8 AS dn, sum(CASE WHEN j = 1 THEN d.c[2] ELSE 0 END)::int8 AS ds, d.g[2*j] IS NULL"
	        " AS vnull, COALESCE(d.g[2*j], '') AS version FROM @D d CROSS JOIN LATERAL"
	        " generate_series(1, COALESCE(array_length(d.g, 1), 0) / 2) j GROUP BY 1, 2) s" GROUPS_ORDER,
	        &summed);
	if (rc == DUROX_OK) {
		char what[400];
		if (!same_digest(&cold, &kept, what, sizeof what)) {
			out->digests_mismatched++;
			if (out->first[0] == '\0')
				snprintf(out->first, sizeof out->first, "digest totals: history %s (index)", what);
		}
		if (!same_digest(&summed, &kept, what, sizeof what)) {
			out->digests_mismatched++;
			if (out->first[0] == '\0')
				snprintf(out->first, sizeof out->first, "digest totals: sum of the rows %s (totals)",
				         what);
		}
		store_history_digest_free(&summed);
	}
	store_history_digest_free(&cold);
	store_history_digest_free(&kept);
	return rc;
}
