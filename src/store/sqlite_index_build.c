/*
 * sqlite_index_build.c - what the SQLite visibility index holds and how it is computed: the
 * contribution of an instance id to the digests (its encoding, and the state machine that
 * counts its history exactly as the providers' cold digest does), the totals and groups they
 * add up to, and the resumable chunked build, one ordered pass over instances, history and
 * executions per chunk. ix_build_pass also recomputes a set of ids for the sync
 * (sqlite_index_sync.c) and for verification (sqlite_index_verify.c).
 */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/format.h"
#include "store/sqlite_index.h"
#include "util/hmap.h"
#include "util/timeutil.h"

#define IX_CHUNK 4096 /* instances per build transaction (~10-40 ms of work) */

/* Instances per build transaction: IX_CHUNK, or $DUROX_INDEX_CHUNK (docs/index.md). */
static int chunk_size(void)
{
	const char *e = getenv("DUROX_INDEX_CHUNK");
	long n = e != NULL ? strtol(e, NULL, 10) : 0;
	return n >= 1 && n <= 1000000 ? (int)n : IX_CHUNK;
}

/* ---- contributions: encoding ------------------------------------------------------------ */

static void put_varint(buf *b, uint64_t v)
{
	unsigned char t[10];
	size_t n = 0;
	do {
		unsigned char c = v & 0x7F;
		v >>= 7;
		t[n++] = c | (v ? 0x80 : 0);
	} while (v);
	buf_add(b, t, n);
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -1;
		unsigned char c = *(*p)++;
		*v |= (uint64_t)(c & 0x7F) << shift;
		if (!(c & 0x80))
			return 0;
	}
	return -1;
}

static void put_str(buf *b, const char *s)
{
	if (s == NULL) {
		put_varint(b, 0);
		return;
	}
	size_t n = strlen(s);
	put_varint(b, n + 1);
	buf_add(b, s, n);
}

static int get_str(const unsigned char **p, const unsigned char *end, arena *a, const char **s)
{
	uint64_t n;
	if (get_varint(p, end, &n) != 0)
		return -1;
	if (n == 0) {
		*s = NULL;
		return 0;
	}
	n--;
	if ((uint64_t)(end - *p) < n)
		return -1;
	*s = arena_strndup(a, (const char *)*p, (size_t)n);
	*p += n;
	return *s == NULL ? -1 : 0;
}

#define CONTRIB_VERSION 1

void ix_contrib_encode(buf *b, const ix_contrib *c)
{
	put_varint(b, CONTRIB_VERSION);
	put_varint(b, c->rows);
	put_varint(b, c->other);
	for (int k = 0; k < EV__COUNT; k++)
		put_varint(b, c->by_type[k]);
	for (int k = 1; k < DUROX_FAILURE__COUNT; k++)
		put_varint(b, c->failed_by_kind[k]);
	put_varint(b, c->rt_n);
	put_varint(b, zigzag(c->rt_sum));
	put_varint(b, c->n_exec);
	put_varint(b, c->ndg);
	for (size_t k = 0; k < c->ndg; k++) {
		put_str(b, c->dg[k].name);
		put_str(b, c->dg[k].version);
		put_varint(b, c->dg[k].os);
		put_varint(b, c->dg[k].n);
		put_varint(b, zigzag(c->dg[k].sum));
	}
}

int ix_contrib_decode(const void *blob, size_t n, arena *a, ix_contrib *c)
{
	memset(c, 0, sizeof *c);
	const unsigned char *p = blob, *end = p + n;
	uint64_t v;
	if (p == NULL || get_varint(&p, end, &v) != 0 || v != CONTRIB_VERSION)
		return -1;
	if (get_varint(&p, end, &c->rows) || get_varint(&p, end, &c->other))
		return -1;
	for (int k = 0; k < EV__COUNT; k++)
		if (get_varint(&p, end, &c->by_type[k]))
			return -1;
	for (int k = 1; k < DUROX_FAILURE__COUNT; k++)
		if (get_varint(&p, end, &c->failed_by_kind[k]))
			return -1;
	if (get_varint(&p, end, &c->rt_n) || get_varint(&p, end, &v))
		return -1;
	c->rt_sum = unzigzag(v);
	if (get_varint(&p, end, &c->n_exec) || get_varint(&p, end, &v) || v > 1000000)
		return -1;
	c->ndg = (size_t)v;
	c->dg = c->ndg ? arena_calloc(a, c->ndg, sizeof *c->dg) : NULL;
	if (c->ndg && c->dg == NULL)
		return -1;
	for (size_t k = 0; k < c->ndg; k++) {
		ix_dgroup *g = &c->dg[k];
		if (get_str(&p, end, a, &g->name) || g->name == NULL || get_str(&p, end, a, &g->version) ||
		    get_varint(&p, end, &g->os) || get_varint(&p, end, &g->n) || get_varint(&p, end, &v))
			return -1;
		g->sum = unzigzag(v);
		c->dur_n += g->n;
		c->dur_sum += g->sum;
	}
	return p == end ? 0 : -1;
}

/* ---- one id's history, as the cold digest reads it -------------------------------------- */

/* The pairing state of one id while its rows are read in (execution, event) order, which is
 * the order Duroxide appended them: the same state machine as the cold digest's durox_hdigest
 * (sqlite_history_digest.c), whose keys all contain the instance id, so one id at a time
 * gives the same figures. */
typedef struct ix_pending {
	int64_t exec, event, ts;
} ix_pending;

typedef struct ix_acc {
	arena mem;
	ix_contrib c;
	size_t dg_cap;
	ix_pending *pend;
	size_t npend, pend_cap;
	int open;                           /* a start awaits its terminal event */
	int64_t open_ts;                    /* the first start since the last terminal event */
	const char *grp_name, *grp_version; /* the latest start's (arena) */
	signed char by_len[40][4];          /* sq_types_by_length */
	int oom;
} ix_acc;

static void acc_reset(ix_acc *a)
{
	arena_release(&a->mem);
	free(a->pend);
	memset(a, 0, sizeof *a);
	arena_init(&a->mem);
	sq_types_by_length(a->by_len);
}

static ix_dgroup *acc_dgroup(ix_acc *a, const char *name, const char *version)
{
	for (size_t k = 0; k < a->c.ndg; k++) {
		ix_dgroup *g = &a->c.dg[k];
		if (strcmp(g->name, name) == 0 &&
		    ((g->version == NULL && version == NULL) ||
		     (g->version != NULL && version != NULL && strcmp(g->version, version) == 0)))
			return g;
	}
	if (a->c.ndg == a->dg_cap) {
		size_t cap = a->dg_cap ? a->dg_cap * 2 : 2;
		ix_dgroup *n = arena_calloc(&a->mem, cap, sizeof *n);
		if (n == NULL)
			return NULL;
		if (a->c.ndg)
			memcpy(n, a->c.dg, a->c.ndg * sizeof *n);
		a->c.dg = n;
		a->dg_cap = cap;
	}
	ix_dgroup *g = &a->c.dg[a->c.ndg++];
	memset(g, 0, sizeof *g);
	g->name = name;
	g->version = version;
	return g;
}

static ix_pending *pend_find(ix_acc *a, int64_t exec, int64_t event)
{
	for (size_t k = a->npend; k-- > 0;)
		if (a->pend[k].exec == exec && a->pend[k].event == event)
			return &a->pend[k];
	return NULL;
}

/* The cold digest keys activities by "<id>\0<exec><event>" in a 512-byte buffer and skips
 * ids too long for it: so does this. */
#define ACT_KEY_ROOM(ilen) ((ilen) + 48 <= 512)

/* Counts one history row of the id (type as stored, data its JSON, ilen the id's length). */
static void acc_row(ix_acc *a, const char *type, size_t tlen, int64_t exec, int64_t event, const char *data,
                    size_t dlen, size_t ilen)
{
	ix_contrib *c = &a->c;
	c->rows++;
	int t = type != NULL ? sq_event_type(a->by_len, type, tlen) : -1;
	if (t < 0) {
		c->other++;
		return;
	}
	c->by_type[t]++;
	if (t != EV_ORCHESTRATION_STARTED && t != EV_ORCHESTRATION_COMPLETED && t != EV_ORCHESTRATION_FAILED &&
	    t != EV_ACTIVITY_SCHEDULED && t != EV_ACTIVITY_COMPLETED && t != EV_ACTIVITY_FAILED)
		return;
	if (data == NULL)
		return;
	sq_event_facts f;
	sq_event_facts_read(t, data, dlen, ilen, &a->mem, &f);
	if (f.failure_kind > 0)
		c->failed_by_kind[f.failure_kind]++;
	if (!f.has_ts)
		return;
	switch (t) {
	case EV_ACTIVITY_SCHEDULED: {
		if (!ACT_KEY_ROOM(ilen))
			return;
		ix_pending *p = pend_find(a, exec, event);
		if (p == NULL) {
			if (a->npend == a->pend_cap) {
				size_t cap = a->pend_cap ? a->pend_cap * 2 : 8;
				ix_pending *n = realloc(a->pend, cap * sizeof *n);
				if (n == NULL) {
					a->oom = 1;
					return;
				}
				a->pend = n;
				a->pend_cap = cap;
			}
			p = &a->pend[a->npend++];
			p->exec = exec;
			p->event = event;
		}
		p->ts = f.ts;
		return;
	}
	case EV_ACTIVITY_COMPLETED:
	case EV_ACTIVITY_FAILED: {
		if (!f.has_src || !ACT_KEY_ROOM(ilen))
			return;
		ix_pending *p = pend_find(a, exec, f.src);
		if (p != NULL) {
			c->rt_n++;
			c->rt_sum += f.ts - p->ts;
			*p = a->pend[--a->npend];
		}
		return;
	}
	case EV_ORCHESTRATION_STARTED: {
		if (!f.has_name)
			return;
		const char *name = arena_strndup(&a->mem, f.name, f.nlen);
		const char *version = f.version ? arena_strndup(&a->mem, f.version, f.vlen) : NULL;
		if (name == NULL || (f.version && version == NULL)) {
			a->oom = 1;
			return;
		}
		/* the group exists from its first start on, with or without a duration */
		ix_dgroup *g = acc_dgroup(a, name, version);
		if (g == NULL) {
			a->oom = 1;
			return;
		}
		g->os++;
		if (!a->open) {
			a->open = 1;
			a->open_ts = f.ts;
		}
		a->grp_name = name;
		a->grp_version = version;
		return;
	}
	default: { /* OrchestrationCompleted / OrchestrationFailed */
		if (!a->open)
			return;
		ix_dgroup *g = acc_dgroup(a, a->grp_name, a->grp_version);
		if (g == NULL) {
			a->oom = 1;
			return;
		}
		g->n++;
		g->sum += f.ts - a->open_ts;
		c->dur_n++;
		c->dur_sum += f.ts - a->open_ts;
		a->open = 0;
		return;
	}
	}
}

/* ---- totals and groups ------------------------------------------------------------------ */

/* Adds sign * c into dx_totals (the store's sums). */
int ix_totals_add(sq_index *ix, const ix_contrib *c, int sign)
{
	sqlite3_stmt *st = ix_stmt(ix, "INSERT INTO main.dx_totals (k, v) VALUES (?1, ?2)"
	                               " ON CONFLICT (k) DO UPDATE SET v = v + excluded.v");
	if (st == NULL)
		return ix_last_err(ix);
	char key[64];
	int rc = DUROX_OK;
#define ADD(name, val)                                                                                                 \
	if (rc == DUROX_OK && (val) != 0) {                                                                            \
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);                                                  \
		sqlite3_bind_int64(st, 2, sign *(int64_t)(val));                                                       \
		int r_ = sqlite3_step(st);                                                                             \
		sq_done(st);                                                                                           \
		if (r_ != SQLITE_DONE)                                                                                 \
			rc = ix_fail(ix, r_, "adding to its totals");                                                  \
	}
	ADD("rows", c->rows)
	ADD("other", c->other)
	for (int k = 0; k < EV__COUNT; k++) {
		snprintf(key, sizeof key, "t:%s", store_event_type_names[k]);
		ADD(key, c->by_type[k])
	}
	for (int k = 1; k < DUROX_FAILURE__COUNT; k++) {
		snprintf(key, sizeof key, "fk:%s", durox_failure_kind_name(k));
		ADD(key, c->failed_by_kind[k])
	}
	ADD("rt_n", c->rt_n)
	ADD("rt_sum", c->rt_sum)
	ADD("n_exec", c->n_exec)
	ADD("dur_n", c->dur_n)
	ADD("dur_sum", c->dur_sum)
#undef ADD
	return rc;
}

/* The key of a (name, version) group: name NUL then "\1" for a NULL version or "\2" version. */
void ix_group_key(buf *b, const char *name, const char *version)
{
	buf_reset(b);
	buf_add(b, name ? name : "", name ? strlen(name) : 0);
	buf_addc(b, '\0');
	if (version == NULL)
		buf_addc(b, '\1');
	else {
		buf_addc(b, '\2');
		buf_adds(b, version);
	}
}

/* Adds deltas to the group of (name, version): instances by status class, starts seen,
 * durations. */
static int group_add(sq_index *ix, const char *name, const char *version, const int64_t inst[6], int64_t os,
                     int64_t dur_n, int64_t dur_sum)
{
	buf k;
	buf_init(&k);
	ix_group_key(&k, name, version);
	if (buf_oom(&k))
		return store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	sqlite3_stmt *st = ix_stmt(
	        ix,
	        "INSERT INTO main.dx_groups (gkey, name, version, instances, running, completed, failed, can,"
	        " unknown, os_n, dur_n, dur_sum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
	        " ON CONFLICT (gkey) DO UPDATE SET instances = instances + excluded.instances,"
	        " running = running + excluded.running, completed = completed + excluded.completed,"
	        " failed = failed + excluded.failed, can = can + excluded.can, unknown = unknown + excluded.unknown,"
	        " os_n = os_n + excluded.os_n, dur_n = dur_n + excluded.dur_n, dur_sum = dur_sum + excluded.dur_sum");
	if (st == NULL) {
		buf_free(&k);
		return ix_last_err(ix);
	}
	sqlite3_bind_blob(st, 1, k.data, (int)k.len, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name ? name : "", -1, SQLITE_STATIC);
	if (version)
		sqlite3_bind_text(st, 3, version, -1, SQLITE_STATIC);
	for (int i = 0; i < 6; i++)
		sqlite3_bind_int64(st, 4 + i, inst ? inst[i] : 0);
	sqlite3_bind_int64(st, 10, os);
	sqlite3_bind_int64(st, 11, dur_n);
	sqlite3_bind_int64(st, 12, dur_sum);
	int r = sqlite3_step(st);
	sq_done(st);
	buf_free(&k);
	return r == SQLITE_DONE ? DUROX_OK : ix_fail(ix, r, "adding to its groups");
}

/* The status class of a stored status: 1 running ... 5 unknown (the instance digest's). */
int ix_status_class(const char *status)
{
	if (status == NULL)
		return 5;
	if (strcmp(status, "Running") == 0)
		return 1;
	if (strcmp(status, "Completed") == 0)
		return 2;
	if (strcmp(status, "Failed") == 0)
		return 3;
	if (strcmp(status, "ContinuedAsNew") == 0)
		return 4;
	return 5;
}

/* ---- the build -------------------------------------------------------------------------- */

/* "instance_id <op> ?N" range conditions for a chunk (col: the column, with its alias). */
static void range_sql(buf *b, const char *col, int has_lo, int first, int has_hi)
{
	if (has_lo)
		buf_addf(b, " %s %s ?1", col, first ? ">=" : ">");
	else
		buf_adds(b, " 1");
	if (has_hi)
		buf_addf(b, " AND %s <= ?2", col);
}

static void bind_range(sqlite3_stmt *st, const char *lo, const char *hi)
{
	sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
	if (hi != NULL)
		sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
}

/* The condition selecting a pass's ids: exactly those of a JSON array (?1), or a range. */
static void where_ids(buf *b, const char *col, const char *ids_json, int first, int has_hi)
{
	if (ids_json != NULL)
		buf_addf(b, " %s IN (SELECT value FROM json_each(?1))", col);
	else
		range_sql(b, col, 1, first, has_hi);
}

/* Compares two ids as SQLite's BINARY collation does. */
int ix_id_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c != 0 ? c : (an > bn) - (an < bn);
}

/* Writes the contribution of one id (and its open activities) into the tables of schema
 * ("main": the index; "temp": verify's scratch copy). */
static int put_contrib(sq_index *ix, const char *schema, const char *id, size_t idlen, ix_acc *a, buf *scratch)
{
	if (a->oom)
		return store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	buf_reset(scratch);
	ix_contrib_encode(scratch, &a->c);
	char sql[256];
	snprintf(sql, sizeof sql,
	         "INSERT OR REPLACE INTO %s.dx_contrib (instance_id, open_start, grp_name, grp_version, c)"
	         " VALUES (?1, ?2, ?3, ?4, ?5)",
	         schema);
	sqlite3_stmt *st = ix_stmt(ix, sql);
	if (st == NULL)
		return ix_last_err(ix);
	sqlite3_bind_text(st, 1, id, (int)idlen, SQLITE_STATIC);
	if (a->open)
		sqlite3_bind_int64(st, 2, a->open_ts);
	if (a->open && a->grp_name)
		sqlite3_bind_text(st, 3, a->grp_name, -1, SQLITE_STATIC);
	if (a->open && a->grp_version)
		sqlite3_bind_text(st, 4, a->grp_version, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, scratch->data, (int)scratch->len, SQLITE_STATIC);
	int r = buf_oom(scratch) ? SQLITE_NOMEM : sqlite3_step(st);
	sq_done(st);
	if (r != SQLITE_DONE)
		return ix_fail(ix, r, "writing a contribution");
	if (a->npend > 0) {
		snprintf(sql, sizeof sql,
		         "INSERT OR REPLACE INTO %s.dx_pending (instance_id, execution_id, event_id, ts)"
		         " VALUES (?1, ?2, ?3, ?4)",
		         schema);
		if ((st = ix_stmt(ix, sql)) == NULL)
			return ix_last_err(ix);
		for (size_t k = 0; k < a->npend; k++) {
			sqlite3_bind_text(st, 1, id, (int)idlen, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, a->pend[k].exec);
			sqlite3_bind_int64(st, 3, a->pend[k].event);
			sqlite3_bind_int64(st, 4, a->pend[k].ts);
			r = sqlite3_step(st);
			sq_done(st);
			if (r != SQLITE_DONE)
				return ix_fail(ix, r, "writing open activities");
		}
	}
	return DUROX_OK;
}

void ix_contrib_add(ix_contrib *t, const ix_contrib *c)
{
	t->rows += c->rows;
	t->other += c->other;
	for (int k = 0; k < EV__COUNT; k++)
		t->by_type[k] += c->by_type[k];
	for (int k = 0; k < DUROX_FAILURE__COUNT; k++)
		t->failed_by_kind[k] += c->failed_by_kind[k];
	t->rt_n += c->rt_n;
	t->rt_sum += c->rt_sum;
	t->n_exec += c->n_exec;
	t->dur_n += c->dur_n;
	t->dur_sum += c->dur_sum;
}

/* Groups counted while a chunk is built, added to dx_groups once per chunk. */
typedef struct chunk_groups {
	hmap index; /* group key -> a = slot */
	struct cgroup {
		char *name, *version;
		int64_t inst[6];
		int64_t os, dur_n, dur_sum;
	} * g;
	size_t n, cap;
	int oom;
} chunk_groups;

static struct cgroup *cg_of(chunk_groups *cg, buf *key, const char *name, const char *version)
{
	ix_group_key(key, name, version);
	if (buf_oom(key)) {
		cg->oom = 1;
		return NULL;
	}
	int created;
	hmap_entry *e = hmap_put(&cg->index, key->data, key->len, &created);
	if (e == NULL) {
		cg->oom = 1;
		return NULL;
	}
	if (!created)
		return &cg->g[e->a];
	if (cg->n == cg->cap) {
		size_t cap = cg->cap ? cg->cap * 2 : 16;
		struct cgroup *ng = realloc(cg->g, cap * sizeof *ng);
		if (ng == NULL) {
			hmap_del(&cg->index, key->data, key->len);
			cg->oom = 1;
			return NULL;
		}
		cg->g = ng;
		cg->cap = cap;
	}
	struct cgroup *g = &cg->g[cg->n];
	memset(g, 0, sizeof *g);
	g->name = strdup(name ? name : "");
	g->version = version ? strdup(version) : NULL;
	if (g->name == NULL || (version && g->version == NULL)) {
		free(g->name);
		free(g->version);
		hmap_del(&cg->index, key->data, key->len);
		cg->oom = 1;
		return NULL;
	}
	e->a = (int64_t)cg->n++;
	return g;
}

static void cg_free(chunk_groups *cg)
{
	for (size_t k = 0; k < cg->n; k++) {
		free(cg->g[k].name);
		free(cg->g[k].version);
	}
	free(cg->g);
	hmap_free(&cg->index);
	memset(cg, 0, sizeof *cg);
}

static int cg_flush(sq_index *ix, chunk_groups *cg)
{
	for (size_t k = 0; k < cg->n; k++) {
		struct cgroup *g = &cg->g[k];
		int rc = group_add(ix, g->name, g->version, g->inst, g->os, g->dur_n, g->dur_sum);
		if (rc != DUROX_OK)
			return rc;
	}
	return DUROX_OK;
}

/* The columns of an instance that need no history: the listing's field SQL (sq_field_sql) for
 * each, and the row parts of updated_at; the build adds what the history gives. Column order:
 * 0 id, 1 name, 2 version, 3 status, 4 created_at, 5 updated_at (row parts), 6 execution
 * count, 7 parent_instance, 8 completed_at, 9 error, 10 custom_status, 11 its version, 12 the
 * stored status (NULL without an execution row), 13 the stored output. */
static void add_base_columns(sqlite_store *s, buf *b)
{
	buf_addf(
	        b,
	        "SELECT i.instance_id, i.orchestration_name, i.orchestration_version, %s, %s, MAX(" UPDATED_AT_ROW_PARTS
	        "), i.current_execution_id, %s, %s, CASE WHEN e.status='Failed' THEN e.output END, %s, %s, e.status,"
	        " e.output",
	        sq_field_sql(s, DUROX_FIELD_STATUS), sq_field_sql(s, DUROX_FIELD_CREATED_AT),
	        sq_field_sql(s, DUROX_FIELD_PARENT_INSTANCE), sq_field_sql(s, DUROX_FIELD_COMPLETED_AT),
	        sq_field_sql(s, DUROX_FIELD_CUSTOM_STATUS),
	        s->base.info.has_custom_status ? "i.custom_status_version" : "0");
}

/* What an instance's summary takes from its history, gathered while its rows stream by in
 * (execution, event) order: exactly the rows the listing's subqueries pick (sqlite_filter.c,
 * sq_add_summary_columns, DURATION_SQL). */
typedef struct hist_facts {
	int64_t cur;             /* current_execution_id (from the instances row) */
	int has_last, last_null; /* the current execution's last event, and its store time */
	int64_t last_ts;
	int has_first, first_null; /* the first OrchestrationStarted (by execution, event) */
	int64_t first_ts;
	int has_term, term_null; /* the current execution's last Completed/Failed event */
	int64_t term_ts;
	buf failed; /* the current execution's last OrchestrationFailed event JSON */
	int has_failed;
	buf first_event; /* the current execution's event 1 JSON (parent_id) */
	int has_first_event;
} hist_facts;

/* Reads ids in (lo, hi] (see range_sql) from three streams in id order: instances with their
 * current execution, history in (execution, event) order, and executions counts. Writes one
 * summary row per instance (when want_inst) and one contribution per id into schema ("main":
 * the index, adding to its totals and groups; "temp": verify's scratch tables). *n_inst is
 * the number of instances rows read. */
int ix_build_pass(sq_index *ix, const char *schema, int want_inst, const char *lo, int first, const char *hi,
                  const char *ids_json, int64_t *n_inst)
{
	*n_inst = 0;
	sqlite_store *s = ix->s;
	buf sql;
	buf_init(&sql);
	add_base_columns(s, &sql);
	buf_adds(&sql, " FROM store.instances i LEFT JOIN store.executions e ON e.instance_id=i.instance_id AND"
	               " e.execution_id=i.current_execution_id WHERE");
	where_ids(&sql, "i.instance_id", ids_json, first, hi != NULL);
	buf_adds(&sql, " ORDER BY i.instance_id");
	sqlite3_stmt *S = buf_oom(&sql) ? NULL : ix_stmt(ix, buf_str(&sql));
	buf_reset(&sql);
	buf_adds(&sql, "SELECT instance_id, execution_id, event_id, event_type, event_data,"
	               " durox_event_ts(event_data, created_at) FROM store.history WHERE");
	where_ids(&sql, "instance_id", ids_json, first, hi != NULL);
	buf_adds(&sql, " ORDER BY instance_id, execution_id, event_id");
	sqlite3_stmt *H = S == NULL || buf_oom(&sql) ? NULL : ix_stmt(ix, buf_str(&sql));
	buf_reset(&sql);
	buf_adds(&sql, "SELECT instance_id, count(*) FROM store.executions WHERE");
	where_ids(&sql, "instance_id", ids_json, first, hi != NULL);
	buf_adds(&sql, " GROUP BY instance_id ORDER BY instance_id");
	sqlite3_stmt *E = H == NULL || buf_oom(&sql) ? NULL : ix_stmt(ix, buf_str(&sql));
	buf_free(&sql);
	if (E == NULL) {
		if (S)
			sq_done(S);
		if (H)
			sq_done(H);
		return ix_last_err(ix);
	}
	/* statements used per instance, prepared before the streams move (the cache may evict) */
	char isql[512];
	snprintf(isql, sizeof isql,
	         "INSERT OR REPLACE INTO %s.dx_inst (instance_id, name, version, status, created_at, updated_at,"
	         " execution_count, parent_instance, parent_id, completed_at, failure_kind, error, custom_status,"
	         " custom_status_version, duration_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)",
	         schema);
	sqlite3_stmt *ins = want_inst ? ix_stmt(ix, isql) : NULL;
	sqlite3_stmt *pid = ix_stmt(ix, "SELECT CASE WHEN json_valid(?1) THEN json_extract(?1,'$.parent_id') END");
	int to_main = strcmp(schema, "main") == 0;
	if (ids_json != NULL) {
		sqlite3_bind_text(S, 1, ids_json, -1, SQLITE_STATIC);
		sqlite3_bind_text(H, 1, ids_json, -1, SQLITE_STATIC);
		sqlite3_bind_text(E, 1, ids_json, -1, SQLITE_STATIC);
	} else {
		bind_range(S, lo, hi);
		bind_range(H, lo, hi);
		bind_range(E, lo, hi);
	}
	ix_acc a;
	memset(&a, 0, sizeof a);
	arena_init(&a.mem);
	ix_contrib total;
	memset(&total, 0, sizeof total);
	chunk_groups cg;
	memset(&cg, 0, sizeof cg);
	hmap_init(&cg.index);
	hist_facts hf;
	memset(&hf, 0, sizeof hf);
	buf_init(&hf.failed);
	buf_init(&hf.first_event);
	buf scratch, cur, key;
	buf_init(&scratch);
	buf_init(&cur);
	buf_init(&key);
	int rc = (want_inst && ins == NULL) || pid == NULL ? ix_last_err(ix) : DUROX_OK;
	int sr = sqlite3_step(S), hr = sqlite3_step(H), er = sqlite3_step(E);
	while (rc == DUROX_OK && (sr == SQLITE_ROW || hr == SQLITE_ROW || er == SQLITE_ROW)) {
		/* the next id: the smallest of the three streams' */
		const char *ids[3] = {NULL, NULL, NULL};
		size_t lens[3] = {0, 0, 0};
		sqlite3_stmt *sts[3] = {S, H, E};
		int rows[3] = {sr == SQLITE_ROW, hr == SQLITE_ROW, er == SQLITE_ROW};
		int best = -1;
		for (int k = 0; k < 3; k++) {
			if (!rows[k])
				continue;
			ids[k] = (const char *)sqlite3_column_blob(sts[k], 0);
			lens[k] = (size_t)sqlite3_column_bytes(sts[k], 0);
			if (ids[k] == NULL)
				ids[k] = "";
			if (best < 0 || ix_id_cmp(ids[k], lens[k], ids[best], lens[best]) < 0)
				best = k;
		}
		buf_reset(&cur);
		buf_add(&cur, ids[best], lens[best]);
		if (buf_oom(&cur)) {
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
			break;
		}
		int has_inst = rows[0] && ix_id_cmp(ids[0], lens[0], cur.data, cur.len) == 0;
		acc_reset(&a);
		hf.cur = has_inst ? sqlite3_column_int64(S, 6) : INT64_MIN;
		hf.has_last = hf.has_first = hf.has_term = hf.has_failed = hf.has_first_event = 0;
		int want_event1 = has_inst && sqlite3_column_type(S, 7) != SQLITE_NULL;
		while (hr == SQLITE_ROW) { /* its history rows */
			const char *x = (const char *)sqlite3_column_blob(H, 0);
			size_t xn = (size_t)sqlite3_column_bytes(H, 0);
			if (ix_id_cmp(x ? x : "", xn, cur.data, cur.len) != 0)
				break;
			const char *type = (const char *)sqlite3_column_text(H, 3);
			size_t tlen = (size_t)sqlite3_column_bytes(H, 3);
			int64_t exec = sqlite3_column_int64(H, 1), event = sqlite3_column_int64(H, 2);
			const char *data = (const char *)sqlite3_column_text(H, 4);
			size_t dlen = (size_t)sqlite3_column_bytes(H, 4);
			acc_row(&a, type, tlen, exec, event, data, dlen, xn);
			if (has_inst) {
				int ts_null = sqlite3_column_type(H, 5) == SQLITE_NULL;
				int64_t ts = sqlite3_column_int64(H, 5);
				int is = type != NULL && tlen == 20 && memcmp(type, "OrchestrationStarted", 20) == 0;
				int ic = type != NULL && tlen == 22 && memcmp(type, "OrchestrationCompleted", 22) == 0;
				int iff = type != NULL && tlen == 19 && memcmp(type, "OrchestrationFailed", 19) == 0;
				if (is && !hf.has_first) {
					hf.has_first = 1;
					hf.first_null = ts_null;
					hf.first_ts = ts;
				}
				if (exec == hf.cur) {
					hf.has_last = 1;
					hf.last_null = ts_null;
					hf.last_ts = ts;
					if (ic || iff) {
						hf.has_term = 1;
						hf.term_null = ts_null;
						hf.term_ts = ts;
					}
					if (iff) {
						buf_reset(&hf.failed);
						hf.has_failed = data != NULL;
						if (data != NULL)
							buf_add(&hf.failed, data, dlen);
					}
					if (event == 1 && want_event1) {
						buf_reset(&hf.first_event);
						hf.has_first_event = data != NULL;
						if (data != NULL)
							buf_add(&hf.first_event, data, dlen);
					}
				}
			}
			hr = sqlite3_step(H);
		}
		if (er == SQLITE_ROW) { /* its executions */
			const char *x = (const char *)sqlite3_column_blob(E, 0);
			size_t xn = (size_t)sqlite3_column_bytes(E, 0);
			if (ix_id_cmp(x ? x : "", xn, cur.data, cur.len) == 0) {
				a.c.n_exec = (uint64_t)sqlite3_column_int64(E, 1);
				er = sqlite3_step(E);
			}
		}
		if (buf_oom(&hf.failed) || buf_oom(&hf.first_event)) {
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
			break;
		}
		if (has_inst) {
			(*n_inst)++;
			const char *status = (const char *)sqlite3_column_text(S, 3);
			const char *stored = (const char *)sqlite3_column_text(S, 12);
			if (want_inst) {
				for (int k = 0; k < 5; k++)
					sqlite3_bind_value(ins, k + 1,
					                   sqlite3_column_value(S, k)); /* id .. created_at */
				int64_t updated = sqlite3_column_int64(S, 5);
				int64_t last = hf.has_last && !hf.last_null ? hf.last_ts : 0;
				sqlite3_bind_int64(ins, 6, last > updated ? last : updated);
				sqlite3_bind_value(ins, 7, sqlite3_column_value(S, 6));
				sqlite3_bind_value(ins, 8, sqlite3_column_value(S, 7));
				/* parent_id: json_extract of the current execution's event 1, for children */
				if (want_event1 && hf.has_first_event) {
					sqlite3_bind_text(pid, 1, hf.first_event.data, (int)hf.first_event.len,
					                  SQLITE_STATIC);
					int pr = sqlite3_step(pid);
					if (pr == SQLITE_ROW)
						sqlite3_bind_value(ins, 9, sqlite3_column_value(pid, 0));
					else
						sqlite3_bind_null(ins, 9);
					sq_done(pid);
					if (pr != SQLITE_ROW) {
						rc = ix_fail(ix, pr, "reading a parent id");
						break;
					}
				} else {
					sqlite3_bind_null(ins, 9);
				}
				sqlite3_bind_value(ins, 10, sqlite3_column_value(S, 8));
				/* failure_kind: CASE WHEN e.status='Failed' THEN durox_failure_kind(event, output) */
				if (stored != NULL && strcmp(stored, "Failed") == 0) {
					const char *output = (const char *)sqlite3_column_text(S, 13);
					int kind = format_failure_kind(hf.has_failed ? buf_str(&hf.failed) : NULL,
					                               hf.has_failed ? hf.failed.len : 0, output);
					sqlite3_bind_text(ins, 11, durox_failure_kind_name(kind), -1, SQLITE_STATIC);
				} else {
					sqlite3_bind_null(ins, 11);
				}
				sqlite3_bind_value(ins, 12, sqlite3_column_value(S, 9));
				sqlite3_bind_value(ins, 13, sqlite3_column_value(S, 10));
				sqlite3_bind_value(ins, 14, sqlite3_column_value(S, 11));
				/* duration_ms: DURATION_SQL */
				if (stored != NULL &&
				    (strcmp(stored, "Completed") == 0 || strcmp(stored, "Failed") == 0) &&
				    hf.has_term && !hf.term_null && hf.has_first && !hf.first_null)
					sqlite3_bind_int64(ins, 15, hf.term_ts - hf.first_ts);
				else
					sqlite3_bind_null(ins, 15);
				int r = sqlite3_step(ins);
				sq_done(ins);
				if (r != SQLITE_DONE) {
					rc = ix_fail(ix, r, "writing a summary");
					break;
				}
			}
			if (to_main) {
				struct cgroup *g = cg_of(&cg, &key, (const char *)sqlite3_column_text(S, 1),
				                         (const char *)sqlite3_column_text(S, 2));
				if (g != NULL) {
					g->inst[0]++;
					g->inst[ix_status_class(status)]++;
				}
			}
		}
		rc = put_contrib(ix, schema, cur.data, cur.len, &a, &scratch);
		if (rc == DUROX_OK && to_main)
			for (size_t k = 0; k < a.c.ndg; k++) {
				struct cgroup *g = cg_of(&cg, &key, a.c.dg[k].name, a.c.dg[k].version);
				if (g != NULL) {
					g->os += (int64_t)a.c.dg[k].os;
					g->dur_n += (int64_t)a.c.dg[k].n;
					g->dur_sum += a.c.dg[k].sum;
				}
			}
		if (cg.oom)
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
		ix_contrib_add(&total, &a.c);
		if (has_inst && rc == DUROX_OK)
			sr = sqlite3_step(S);
	}
	if (rc == DUROX_OK && sr != SQLITE_DONE && sr != SQLITE_ROW)
		rc = ix_fail(ix, sr, "reading instances");
	if (rc == DUROX_OK && hr != SQLITE_DONE && hr != SQLITE_ROW)
		rc = ix_fail(ix, hr, "reading history");
	if (rc == DUROX_OK && er != SQLITE_DONE && er != SQLITE_ROW)
		rc = ix_fail(ix, er, "reading executions");
	sq_done(S);
	sq_done(H);
	sq_done(E);
	if (rc == DUROX_OK && to_main)
		rc = cg_flush(ix, &cg);
	if (rc == DUROX_OK && to_main)
		rc = ix_totals_add(ix, &total, 1);
	cg_free(&cg);
	acc_reset(&a);
	arena_release(&a.mem);
	buf_free(&hf.failed);
	buf_free(&hf.first_event);
	buf_free(&scratch);
	buf_free(&cur);
	buf_free(&key);
	return rc;
}

/* Starts a build from scratch: empties the index, records the store's identity and state. */
static int build_begin(sq_index *ix)
{
	store_ident id;
	if (ix_ident_now(ix->s, &id) != 0)
		return store_fail(&ix->s->base, DUROX_EIO, "the store's real path cannot be read");
	int rc = ix_exec(ix, "BEGIN IMMEDIATE", "starting a build");
	if (rc != DUROX_OK)
		return rc;
	ix->removals++;
	int64_t total = 0, max_rowid = 0;
	/* the feed's position now, before any chunk reads: what the chunks miss comes after it,
	 * and so do instances rows above the highest rowid now */
	if ((rc = ix_exec(ix, ix_drop_sql, "clearing it")) == DUROX_OK &&
	    (rc = ix_exec(ix, ix_schema_sql, "creating its tables")) == DUROX_OK &&
	    (rc = ix_feed_mark(ix)) == DUROX_OK &&
	    (rc = ix_int(ix, "SELECT max(rowid) FROM store.instances", NULL, &max_rowid, NULL)) == DUROX_OK &&
	    (rc = ix_meta_set_int(ix, "inst_rowid", max_rowid)) == DUROX_OK &&
	    (rc = ix_int(ix, "SELECT count(*) FROM store.instances", NULL, &total, NULL)) == DUROX_OK &&
	    (rc = ix_meta_set_int(ix, "format", IX_FORMAT)) == DUROX_OK &&
	    (rc = ix_meta_set_text(ix, "store_path", id.path)) == DUROX_OK &&
	    (rc = ix_meta_set_int(ix, "store_dev", id.dev)) == DUROX_OK &&
	    (rc = ix_meta_set_int(ix, "store_ino", id.ino)) == DUROX_OK &&
	    (rc = ix_meta_set_text(ix, "state", "building")) == DUROX_OK &&
	    (rc = ix_meta_set_int(ix, "build_total", total)) == DUROX_OK &&
	    (rc = ix_meta_set_int(ix, "build_done", 0)) == DUROX_OK &&
	    (rc = ix_meta_set_int(ix, "started_at", time_now_ms())) == DUROX_OK)
		rc = ix_exec(ix, "COMMIT", "starting a build");
	if (rc != DUROX_OK)
		sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* One chunk: the next IX_CHUNK instances after build_next. *done = 1 after the last one. */
static int build_chunk(sq_index *ix, int *done, uint64_t *progress, uint64_t *total)
{
	*done = 0;
	int rc = ix_exec(ix, "BEGIN IMMEDIATE", "building");
	if (rc != DUROX_OK)
		return rc;
	char lo[2048];
	int64_t started = 0, ndone = 0, ntotal = 0;
	int has_next = 0;
	sqlite3_stmt *st;
	int first;
	char *hi = NULL;
	if ((rc = ix_meta_int(ix, "build_has_next", &started, &has_next)) != DUROX_OK ||
	    (rc = ix_meta_text(ix, "build_next", lo, sizeof lo)) != DUROX_OK ||
	    (rc = ix_meta_int(ix, "build_done", &ndone, NULL)) != DUROX_OK ||
	    (rc = ix_meta_int(ix, "build_total", &ntotal, NULL)) != DUROX_OK)
		goto out;
	first = !has_next;
	if (first)
		lo[0] = '\0';
	/* the chunk's last instance id (none: the chunk runs to the end) */
	st = ix_stmt(ix, first ? "SELECT instance_id FROM store.instances WHERE instance_id >= ?1 ORDER BY instance_id"
	                         " LIMIT 1 OFFSET ?2"
	                       : "SELECT instance_id FROM store.instances WHERE instance_id > ?1 ORDER BY instance_id"
	                         " LIMIT 1 OFFSET ?2");
	if (st == NULL) {
		rc = ix_last_err(ix);
		goto out;
	}
	sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, chunk_size() - 1);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW && (hi = strdup((const char *)sqlite3_column_text(st, 0))) == NULL)
		r = SQLITE_NOMEM;
	sq_done(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		rc = ix_fail(ix, r, "reading instances");
		goto out;
	}
	int64_t n = 0;
	if ((rc = ix_build_pass(ix, "main", 1, lo, first, hi, NULL, &n)) != DUROX_OK)
		goto out;
	ndone += n;
	if ((rc = ix_meta_set_int(ix, "build_done", ndone)) != DUROX_OK)
		goto out;
	if (hi != NULL) {
		if ((rc = ix_meta_set_text(ix, "build_next", hi)) != DUROX_OK ||
		    (rc = ix_meta_set_int(ix, "build_has_next", 1)) != DUROX_OK)
			goto out;
	} else {
		/* the last chunk: sort the listing indexes once, and the index is ready */
		if ((rc = ix_exec(ix, ix_index_sql, "creating its indexes")) != DUROX_OK ||
		    (rc = ix_meta_set_int(ix, "n_inst", ndone)) != DUROX_OK ||
		    (rc = ix_meta_set_text(ix, "state", "ready")) != DUROX_OK ||
		    (rc = ix_meta_set_int(ix, "built_at", time_now_ms())) != DUROX_OK ||
		    (rc = ix_meta_set_int(ix, "synced_at", time_now_ms())) != DUROX_OK)
			goto out;
		*done = 1;
	}
	rc = ix_exec(ix, "COMMIT", "building");
out:
	free(hi);
	if (rc != DUROX_OK)
		sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
	*progress = (uint64_t)ndone;
	*total = (uint64_t)(ntotal > ndone ? ntotal : ndone);
	return rc;
}

/* Builds (or resumes) until ready; progress may stop it (DUROX_EABORT, resumable). */
int ix_build(sq_index *ix, int rebuild, store_progress_fn progress, void *ud)
{
	int rc;
	if (ix->building)
		return store_fail(&ix->s->base, DUROX_ECONFLICT, "the visibility index is being built by this handle");
	ix->building = 1;
	ix_store_mmap(ix, 0);
	if (rebuild || ix->state == IX_ABSENT || ix->state == IX_STALE || ix->state == IX_READY) {
		if ((rc = build_begin(ix)) != DUROX_OK)
			goto out;
	}
	ix_set_state(ix, IX_BUILDING, "a build is under way");
	for (;;) {
		int done;
		uint64_t n, total;
		rc = build_chunk(ix, &done, &n, &total);
		if (rc != DUROX_OK)
			goto out;
		if (progress != NULL && progress(ud, n, total) != 0 && !done) {
			ix_set_state(ix, IX_BUILDING, "the build was stopped (resumable)");
			rc = store_fail(&ix->s->base, DUROX_EABORT,
			                "the visibility index build was stopped at %llu of %llu"
			                " instances; it resumes where it stopped",
			                (unsigned long long)n, (unsigned long long)total);
			goto out;
		}
		if (done)
			break;
	}
	ix_set_state(ix, IX_READY, "");
	ix->building = 0;
	/* what the runtime committed while the chunks were read: from the build's start on.
	 * Still through read(): this first sync counts the store's instances, whose pages a
	 * mapping would leave resident (the build's peak RSS) */
	rc = ix_sync(ix);
	ix_store_mmap(ix, 1);
	return rc;
out:
	ix->building = 0;
	ix_store_mmap(ix, 1);
	return rc;
}

/* ---- recomputing ids --------------------------------------------------------------------- */

int ix_recompute(sq_index *ix, const char *ids_json)
{
	chunk_groups cg;
	memset(&cg, 0, sizeof cg);
	hmap_init(&cg.index);
	ix_contrib old;
	memset(&old, 0, sizeof old);
	buf key;
	buf_init(&key);
	int rc = DUROX_OK, r;
	/* the old rows come out of the groups and totals */
	int64_t n_old = 0;
	sqlite3_stmt *st = ix_stmt(ix, "SELECT name, version, status FROM main.dx_inst WHERE instance_id IN"
	                               " (SELECT value FROM json_each(?1))");
	if (st == NULL)
		rc = ix_last_err(ix);
	else {
		sqlite3_bind_text(st, 1, ids_json, -1, SQLITE_STATIC);
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			n_old++;
			struct cgroup *g = cg_of(&cg, &key, (const char *)sqlite3_column_text(st, 0),
			                         (const char *)sqlite3_column_text(st, 1));
			if (g != NULL) {
				g->inst[0]--;
				g->inst[ix_status_class((const char *)sqlite3_column_text(st, 2))]--;
			}
		}
		sq_done(st);
		if (r != SQLITE_DONE)
			rc = ix_fail(ix, r, "reading summaries");
	}
	if (rc == DUROX_OK && (st = ix_stmt(ix, "SELECT c FROM main.dx_contrib WHERE instance_id IN"
	                                        " (SELECT value FROM json_each(?1))")) == NULL)
		rc = ix_last_err(ix);
	else if (rc == DUROX_OK) {
		sqlite3_bind_text(st, 1, ids_json, -1, SQLITE_STATIC);
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			arena a;
			arena_init(&a);
			ix_contrib c;
			if (ix_contrib_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &a,
			                      &c) != 0) {
				arena_release(&a);
				r = SQLITE_CORRUPT;
				break;
			}
			ix_contrib_add(&old, &c);
			for (size_t k = 0; k < c.ndg; k++) {
				struct cgroup *g = cg_of(&cg, &key, c.dg[k].name, c.dg[k].version);
				if (g != NULL) {
					g->os -= (int64_t)c.dg[k].os;
					g->dur_n -= (int64_t)c.dg[k].n;
					g->dur_sum -= c.dg[k].sum;
				}
			}
			arena_release(&a);
		}
		sq_done(st);
		if (r != SQLITE_DONE)
			rc = ix_fail(ix, r, "reading contributions");
	}
	if (rc == DUROX_OK && cg.oom)
		rc = store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	static const char *const del[] = {
	        "DELETE FROM main.dx_inst WHERE instance_id IN (SELECT value FROM json_each(?1))",
	        "DELETE FROM main.dx_contrib WHERE instance_id IN (SELECT value FROM json_each(?1))",
	        "DELETE FROM main.dx_pending WHERE instance_id IN (SELECT value FROM json_each(?1))",
	};
	for (size_t k = 0; k < 3 && rc == DUROX_OK; k++) {
		if ((st = ix_stmt(ix, del[k])) == NULL) {
			rc = ix_last_err(ix);
			break;
		}
		sqlite3_bind_text(st, 1, ids_json, -1, SQLITE_STATIC);
		r = sqlite3_step(st);
		sq_done(st);
		if (r != SQLITE_DONE)
			rc = ix_fail(ix, r, "removing rows");
	}
	if (rc == DUROX_OK)
		rc = cg_flush(ix, &cg);
	if (rc == DUROX_OK)
		rc = ix_totals_add(ix, &old, -1);
	cg_free(&cg);
	buf_free(&key);
	/* and what the store holds now goes in */
	int64_t n = 0, total = 0;
	if (rc == DUROX_OK)
		rc = ix_build_pass(ix, "main", 1, NULL, 0, NULL, ids_json, &n);
	/* an instance left the index when one of these ids had a row and one of them has no
	 * instances row now (a deleted instance and a new one in the same batch leave n equal
	 * to n_old): what the queue snapshot's cache of "this instance exists" must notice */
	if (rc == DUROX_OK && n_old > 0) {
		int64_t gone = 0;
		sqlite3_stmt *g = ix_stmt(ix, "SELECT EXISTS (SELECT 1 FROM json_each(?1) j WHERE NOT EXISTS"
		                              " (SELECT 1 FROM main.dx_inst d WHERE d.instance_id = j.value))");
		if (g == NULL)
			rc = ix_last_err(ix);
		else {
			sqlite3_bind_text(g, 1, ids_json, -1, SQLITE_STATIC);
			int gr = sqlite3_step(g);
			gone = gr == SQLITE_ROW ? sqlite3_column_int64(g, 0) : 1;
			sq_done(g);
		}
		if (gone || n < n_old)
			ix->removals++;
	}
	if (rc == DUROX_OK && n != n_old && (rc = ix_meta_int(ix, "n_inst", &total, NULL)) == DUROX_OK)
		rc = ix_meta_set_int(ix, "n_inst", total + n - n_old);
	return rc;
}
