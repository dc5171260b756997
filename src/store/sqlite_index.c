/*
 * sqlite_index.c - the SQLite provider's visibility index (provider_index.h): where its file
 * lives, its schema and identity checks, the resumable build, keeping it in step with the
 * store, verification, and the routing decision the provider's reads ask for (sqi_usable).
 * The reads it serves are in sqlite_index_read.c; docs/index.md describes the design.
 * Relies on sqlite_internal.h (the summary SQL, the event reader shared with the cold digest);
 * used by sqlite.c (open/close, vtable) and sqlite_read.c / sqlite_metrics.c (routing).
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/digest.h"
#include "store/format.h"
#include "store/sqlite_index.h"
#include "util/hmap.h"
#include "util/sha256.h"
#include "util/timeutil.h"

#define IX_FORMAT 1
#define IX_CHUNK 4096 /* instances per build transaction (~10-40 ms of work) */

/* Instances per build transaction: IX_CHUNK, or $DUROX_INDEX_CHUNK (docs/index.md). */
static int chunk_size(void)
{
	const char *e = getenv("DUROX_INDEX_CHUNK");
	long n = e != NULL ? strtol(e, NULL, 10) : 0;
	return n >= 1 && n <= 1000000 ? (int)n : IX_CHUNK;
}

/* ---- statements and errors ----------------------------------------------------------- */

int ix_fail(sq_index *ix, int src, const char *what)
{
	int rc;
	switch (src & 0xFF) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED: rc = DUROX_EBUSY; break;
	case SQLITE_NOMEM: rc = DUROX_ENOMEM; break;
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM: rc = DUROX_EIO; break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: rc = DUROX_ECORRUPT; break;
	default: rc = DUROX_EIO;
	}
	ix->last_rc = rc;
	return store_fail(&ix->s->base, rc, "visibility index %s: %s failed: %s", ix->path ? ix->path : "", what,
	                  ix->db ? sqlite3_errmsg(ix->db) : sqlite3_errstr(src));
}

sqlite3_stmt *ix_stmt(sq_index *ix, const char *sql)
{
	cached_stmt *victim = &ix->cache[0];
	for (int i = 0; i < IX_CACHE; i++) {
		cached_stmt *c = &ix->cache[i];
		if (c->sql != NULL && strcmp(c->sql, sql) == 0) {
			c->used = ++ix->clock;
			return c->stmt;
		}
		if (c->sql == NULL || (victim->sql != NULL && c->used < victim->used))
			victim = c;
	}
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v3(ix->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK) {
		ix_fail(ix, rc, "preparing a query");
		sqlite3_finalize(st);
		return NULL;
	}
	char *copy = strdup(sql);
	if (copy == NULL) {
		sqlite3_finalize(st);
		ix->last_rc = DUROX_ENOMEM;
		store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
		return NULL;
	}
	if (victim->sql != NULL) {
		sqlite3_finalize(victim->stmt);
		free(victim->sql);
	}
	victim->sql = copy;
	victim->stmt = st;
	victim->used = ++ix->clock;
	return st;
}

static int ix_stmt_err(sq_index *ix) { return ix->last_rc != 0 ? ix->last_rc : DUROX_EIO; }

static void cache_clear(sq_index *ix)
{
	for (int i = 0; i < IX_CACHE; i++) {
		if (ix->cache[i].sql != NULL) {
			sqlite3_finalize(ix->cache[i].stmt);
			free(ix->cache[i].sql);
		}
		ix->cache[i].sql = NULL;
		ix->cache[i].stmt = NULL;
	}
}

/* Runs sql (no rows expected) on the index connection. */
static int ix_exec(sq_index *ix, const char *sql, const char *what)
{
	int rc = sqlite3_exec(ix->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? DUROX_OK : ix_fail(ix, rc, what);
}

/* One integer from sql (bound text ?1 when arg is not NULL); *found = 0 for no row / NULL. */
static int ix_int(sq_index *ix, const char *sql, const char *arg, int64_t *out, int *found)
{
	*out = 0;
	if (found)
		*found = 0;
	sqlite3_stmt *st = ix_stmt(ix, sql);
	if (st == NULL)
		return ix_stmt_err(ix);
	if (arg != NULL)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*out = sqlite3_column_int64(st, 0);
		if (found)
			*found = 1;
	}
	int rc = r == SQLITE_ROW || r == SQLITE_DONE ? DUROX_OK : ix_fail(ix, r, "reading");
	sq_done(st);
	return rc;
}

static int64_t wall_ms(void) { return time_now_ms(); }

/* ---- meta ------------------------------------------------------------------------------- */

static int meta_get_int(sq_index *ix, const char *k, int64_t *v, int *found)
{
	return ix_int(ix, "SELECT v FROM main.dx_meta WHERE k=?1", k, v, found);
}

/* Copies the text value of k into out (capacity n); "" when absent. */
static int meta_get_text(sq_index *ix, const char *k, char *out, size_t n)
{
	out[0] = '\0';
	sqlite3_stmt *st = ix_stmt(ix, "SELECT v FROM main.dx_meta WHERE k=?1");
	if (st == NULL)
		return ix_stmt_err(ix);
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
	int rc = r == SQLITE_ROW || r == SQLITE_DONE ? DUROX_OK : ix_fail(ix, r, "reading its state");
	sq_done(st);
	return rc;
}

static int meta_set(sq_index *ix, const char *k, int type, int64_t i, const char *t, const void *blob, size_t n)
{
	sqlite3_stmt *st = ix_stmt(ix, "INSERT OR REPLACE INTO main.dx_meta (k, v) VALUES (?1, ?2)");
	if (st == NULL)
		return ix_stmt_err(ix);
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	if (type == SQLITE_INTEGER)
		sqlite3_bind_int64(st, 2, i);
	else if (type == SQLITE_TEXT && t != NULL)
		sqlite3_bind_text(st, 2, t, -1, SQLITE_STATIC);
	else if (type == SQLITE_BLOB)
		sqlite3_bind_blob(st, 2, blob, (int)n, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	int r = sqlite3_step(st);
	sq_done(st);
	return r == SQLITE_DONE ? DUROX_OK : ix_fail(ix, r, "saving its state");
}

static int meta_set_int(sq_index *ix, const char *k, int64_t v)
{
	return meta_set(ix, k, SQLITE_INTEGER, v, NULL, NULL, 0);
}
static int meta_set_text(sq_index *ix, const char *k, const char *v)
{
	return meta_set(ix, k, v ? SQLITE_TEXT : SQLITE_NULL, 0, v, NULL, 0);
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
 * the order Duroxide appended them: the same state machine as dg_add in digest.c (the cold
 * digest of both providers), whose keys all contain the instance id, so one id at a time
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
	int oom;
} ix_acc;

static void acc_reset(ix_acc *a)
{
	arena_release(&a->mem);
	free(a->pend);
	memset(a, 0, sizeof *a);
	arena_init(&a->mem);
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

/* dg_add keys activities by dg_activity_key in a 512-byte buffer and skips ids too long
 * for it: so does this. */
#define ACT_KEY_ROOM(ilen) ((ilen) + 48 <= 512)

/* Counts one history row of the id (type as stored, data its JSON, ilen the id's length). */
static void acc_row(ix_acc *a, const char *type, size_t tlen, int64_t exec, int64_t event, const char *data,
                    size_t dlen, size_t ilen)
{
	ix_contrib *c = &a->c;
	c->rows++;
	int t = dg_event_type(type, tlen);
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
	dg_facts f;
	dg_facts_read(t, data, dlen, ilen, &a->mem, &f);
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
static int totals_add(sq_index *ix, const ix_contrib *c, int sign)
{
	sqlite3_stmt *st = ix_stmt(ix, "INSERT INTO main.dx_totals (k, v) VALUES (?1, ?2)"
	                               " ON CONFLICT (k) DO UPDATE SET v = v + excluded.v");
	if (st == NULL)
		return ix_stmt_err(ix);
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
static void group_key(buf *b, const char *name, const char *version)
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
	group_key(&k, name, version);
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
		return ix_stmt_err(ix);
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
static int status_class(const char *status)
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

/* ---- the schema ------------------------------------------------------------------------- */

static const char schema_sql[] =
        "CREATE TABLE IF NOT EXISTS main.dx_meta (k TEXT PRIMARY KEY, v) WITHOUT ROWID;"
        /* one row per instances row: its summary exactly as the store's listing SQL computes it */
        "CREATE TABLE IF NOT EXISTS main.dx_inst (instance_id TEXT PRIMARY KEY, name TEXT, version TEXT,"
        " status TEXT, created_at INTEGER, updated_at INTEGER, execution_count INTEGER, parent_instance TEXT,"
        " parent_id INTEGER, completed_at INTEGER, failure_kind TEXT, error TEXT, custom_status TEXT,"
        " custom_status_version INTEGER, duration_ms INTEGER) WITHOUT ROWID;"
        /* one row per instance id that has history or executions rows (instances rows or not):
         * what it adds to the digests, and the state that pairs its later rows */
        "CREATE TABLE IF NOT EXISTS main.dx_contrib (instance_id TEXT PRIMARY KEY, open_start INTEGER,"
        " grp_name TEXT, grp_version TEXT, c BLOB NOT NULL) WITHOUT ROWID;"
        /* activities scheduled and not answered yet */
        "CREATE TABLE IF NOT EXISTS main.dx_pending (instance_id TEXT, execution_id INTEGER, event_id INTEGER,"
        " ts INTEGER, PRIMARY KEY (instance_id, execution_id, event_id)) WITHOUT ROWID;"
        /* the sums of all contributions, and the groups of the instance and history digests */
        "CREATE TABLE IF NOT EXISTS main.dx_totals (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS main.dx_groups (gkey BLOB PRIMARY KEY, name TEXT NOT NULL, version TEXT,"
        " instances INTEGER NOT NULL, running INTEGER NOT NULL, completed INTEGER NOT NULL, failed INTEGER NOT NULL,"
        " can INTEGER NOT NULL, unknown INTEGER NOT NULL, os_n INTEGER NOT NULL, dur_n INTEGER NOT NULL,"
        " dur_sum INTEGER NOT NULL) WITHOUT ROWID;";

/* The indexes that serve every listing filter and order (created after a build's last chunk:
 * sorting once is far cheaper than keeping six b-trees in order row by row). */
static const char index_sql[] =
        "CREATE INDEX IF NOT EXISTS main.dx_inst_created ON dx_inst (created_at, instance_id);"
        "CREATE INDEX IF NOT EXISTS main.dx_inst_updated ON dx_inst (updated_at, instance_id);"
        "CREATE INDEX IF NOT EXISTS main.dx_inst_name ON dx_inst (name, instance_id);"
        "CREATE INDEX IF NOT EXISTS main.dx_inst_status ON dx_inst (status, created_at, instance_id);"
        "CREATE INDEX IF NOT EXISTS main.dx_inst_status_updated ON dx_inst (status, updated_at, instance_id);"
        "CREATE INDEX IF NOT EXISTS main.dx_inst_parent ON dx_inst (parent_instance, instance_id)"
        " WHERE parent_instance IS NOT NULL;";

static const char drop_sql[] = "DROP TABLE IF EXISTS main.dx_inst; DROP TABLE IF EXISTS main.dx_contrib;"
                               "DROP TABLE IF EXISTS main.dx_pending; DROP TABLE IF EXISTS main.dx_totals;"
                               "DROP TABLE IF EXISTS main.dx_groups; DELETE FROM main.dx_meta;";

/* ---- where the file is ------------------------------------------------------------------ */

static int mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp)
		return -1;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* The default index file for the store at real path rp: <cache>/duroxlua/index/<name>-<hash>.dxi */
static int default_path(const char *rp, char *out, size_t n, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	const char *d = getenv("DUROX_INDEX_DIR");
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (d != NULL && d[0] != '\0')
		snprintf(dir, sizeof dir, "%s", d);
	else if (xdg != NULL && xdg[0] == '/')
		snprintf(dir, sizeof dir, "%s/duroxlua/index", xdg);
	else if (home != NULL && home[0] != '\0')
		snprintf(dir, sizeof dir, "%s/.cache/duroxlua/index", home);
	else {
		snprintf(err, errlen,
		         "no cache directory for the visibility index (set DUROX_INDEX_DIR, or give index = PATH)");
		return DUROX_EINVALID;
	}
	if (mkdir_p(dir) != 0) {
		snprintf(err, errlen, "cannot create the index directory %.300s: %s", dir, strerror(errno));
		return DUROX_EIO;
	}
	uint8_t h[SHA256_LEN];
	sha256(rp, strlen(rp), h);
	char hex[2 * SHA256_LEN + 1];
	hex_encode(h, SHA256_LEN, hex);
	hex[16] = '\0';
	const char *base = strrchr(rp, '/');
	base = base ? base + 1 : rp;
	char name[64];
	snprintf(name, sizeof name, "%.40s", base);
	for (char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '_' || *p == '.'))
			*p = '_';
	if (snprintf(out, n, "%s/%s-%s.dxi", dir, name, hex) >= (int)n) {
		snprintf(err, errlen, "the index path is too long");
		return DUROX_EINVALID;
	}
	return DUROX_OK;
}

/* "file:" URI of a path, read-only (percent-encoding what a URI path cannot hold). */
static void ro_uri(buf *b, const char *path)
{
	buf_adds(b, "file:");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if (*p == '%' || *p == '?' || *p == '#' || *p < 0x21 || *p >= 0x7F)
			buf_addf(b, "%%%02X", *p);
		else
			buf_addc(b, (char)*p);
	}
	buf_adds(b, "?mode=ro");
}

/* ---- the store's identity --------------------------------------------------------------- */

/* What names the store: its real path, and its file's device and inode (a file replaced at the
 * same path is another store). */
typedef struct store_ident {
	char path[PATH_MAX];
	int64_t dev, ino;
} store_ident;

static int ident_now(sqlite_store *s, store_ident *id)
{
	memset(id, 0, sizeof *id);
	if (realpath(s->location, id->path) == NULL)
		return -1;
	struct stat sb;
	if (stat(id->path, &sb) != 0)
		return -1;
	id->dev = (int64_t)sb.st_dev;
	id->ino = (int64_t)sb.st_ino;
	return 0;
}

/* ---- the store's state, for following it ---------------------------------------------------
 * Until the change feed lands (issue 9), the index follows the store by a fingerprint taken
 * when a build starts: the last history row (rowid, key, hash of its JSON), the number of
 * history rows, and the number and highest rowid of instances rows. While the store matches it,
 * the index is exact; when it does not, reads go to the store (state stale). */
typedef struct store_fp {
	int64_t hist_rowid, hist_count, inst_count, inst_rowid;
	uint64_t guard;
} store_fp;

static int fp_now(sq_index *ix, store_fp *fp)
{
	memset(fp, 0, sizeof *fp);
	int rc;
	if ((rc = ix_int(ix, "SELECT max(rowid) FROM store.history", NULL, &fp->hist_rowid, NULL)) != DUROX_OK ||
	    (rc = ix_int(ix, "SELECT count(*) FROM store.history", NULL, &fp->hist_count, NULL)) != DUROX_OK ||
	    (rc = ix_int(ix, "SELECT count(*) FROM store.instances", NULL, &fp->inst_count, NULL)) != DUROX_OK ||
	    (rc = ix_int(ix, "SELECT max(rowid) FROM store.instances", NULL, &fp->inst_rowid, NULL)) != DUROX_OK)
		return rc;
	sqlite3_stmt *st = ix_stmt(ix, "SELECT instance_id, execution_id, event_id, event_data FROM store.history"
	                               " WHERE rowid=?1");
	if (st == NULL)
		return ix_stmt_err(ix);
	sqlite3_bind_int64(st, 1, fp->hist_rowid);
	int r = sqlite3_step(st);
	uint64_t h = 1469598103934665603ULL;
	if (r == SQLITE_ROW) {
		for (int c = 0; c < 4; c++) {
			const unsigned char *p = sqlite3_column_blob(st, c);
			int n = sqlite3_column_bytes(st, c);
			for (int i = 0; i < n; i++) {
				h ^= p[i];
				h *= 1099511628211ULL;
			}
			h ^= 0xFF;
			h *= 1099511628211ULL;
		}
	}
	fp->guard = h;
	rc = r == SQLITE_ROW || r == SQLITE_DONE ? DUROX_OK : ix_fail(ix, r, "reading the store");
	sq_done(st);
	return rc;
}

static int fp_save(sq_index *ix, const store_fp *fp)
{
	return meta_set(ix, "fp", SQLITE_BLOB, 0, NULL, fp, sizeof *fp);
}

static int fp_load(sq_index *ix, store_fp *fp, int *found)
{
	*found = 0;
	memset(fp, 0, sizeof *fp);
	sqlite3_stmt *st = ix_stmt(ix, "SELECT v FROM main.dx_meta WHERE k='fp'");
	if (st == NULL)
		return ix_stmt_err(ix);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW && sqlite3_column_bytes(st, 0) == (int)sizeof *fp) {
		memcpy(fp, sqlite3_column_blob(st, 0), sizeof *fp);
		*found = 1;
	}
	int rc = r == SQLITE_ROW || r == SQLITE_DONE ? DUROX_OK : ix_fail(ix, r, "reading its state");
	sq_done(st);
	return rc;
}

/* ---- opening ------------------------------------------------------------------------------ */

static void set_state(sq_index *ix, int state, const char *reason)
{
	ix->state = state;
	snprintf(ix->reason, sizeof ix->reason, "%s", reason ? reason : "");
	ix->gate_valid = 0;
}

static void ix_disconnect(sq_index *ix)
{
	cache_clear(ix);
	if (ix->db != NULL)
		sqlite3_close_v2(ix->db);
	ix->db = NULL;
}

static void unlink_files(const char *path)
{
	char p[PATH_MAX + 8];
	unlink(path);
	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
}

/* Whether the index file holds anything but our tables (a file we must not overwrite). */
static int foreign_tables(sq_index *ix, int *foreign, int *ours)
{
	int64_t n = 0, mine = 0;
	int rc = ix_int(ix,
	                "SELECT count(*) FROM main.sqlite_master WHERE type='table' AND name NOT LIKE 'dx\\_%'"
	                " ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
	                NULL, &n, NULL);
	if (rc == DUROX_OK)
		rc = ix_int(ix, "SELECT count(*) FROM main.sqlite_master WHERE type='table' AND name='dx_meta'", NULL,
		            &mine, NULL);
	*foreign = n > 0;
	*ours = mine > 0;
	return rc;
}

/* Opens the index connection on path: the index as main, the store attached read-only. */
static int ix_connect(sq_index *ix)
{
	int r = sqlite3_open_v2(ix->path, &ix->db,
	                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
	                        NULL);
	if (r != SQLITE_OK)
		return ix_fail(ix, r, "opening");
	sqlite3_extended_result_codes(ix->db, 0);
	sqlite3_busy_timeout(ix->db, ix->s->busy_timeout_ms);
	sq_register_functions(ix->db);
	buf uri;
	buf_init(&uri);
	ro_uri(&uri, ix->s->location);
	int rc = DUROX_OK;
	sqlite3_stmt *st = NULL;
	if (buf_oom(&uri))
		rc = store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	else if ((r = sqlite3_prepare_v2(ix->db, "ATTACH ?1 AS store", -1, &st, NULL)) != SQLITE_OK)
		rc = ix_fail(ix, r, "attaching the store");
	else {
		sqlite3_bind_text(st, 1, buf_str(&uri), -1, SQLITE_STATIC);
		r = sqlite3_step(st);
		if (r != SQLITE_DONE)
			rc = ix_fail(ix, r, "attaching the store");
	}
	sqlite3_finalize(st);
	buf_free(&uri);
	return rc;
}

/* Configures the index connection once the file is known to be ours: WAL (readers of other
 * handles never wait for a writer), NORMAL sync (a power loss can lose the last sync, which
 * the next sync redoes). Setting WAL writes the file's header: never before that check. */
static int ix_configure(sq_index *ix)
{
	int rc;
	if ((rc = ix_exec(ix, "PRAGMA main.journal_mode=WAL", "setting WAL mode")) != DUROX_OK ||
	    (rc = ix_exec(ix, "PRAGMA main.synchronous=NORMAL", "setting its durability")) != DUROX_OK ||
	    (rc = ix_exec(ix, "PRAGMA main.cache_size=-16000", "setting its cache")) != DUROX_OK)
		return rc;
	return DUROX_OK;
}

/* Opens (creating when needed) the index file and sets the state from what it holds. */
static int ix_open(sq_index *ix)
{
	sqlite_store *s = ix->s;
	store_ident id;
	if (ident_now(s, &id) != 0) {
		set_state(ix, IX_BROKEN, "the store's real path cannot be read");
		return DUROX_EIO;
	}
	char err[512] = "";
	if (ix->path == NULL) {
		char p[PATH_MAX];
		int rc = default_path(id.path, p, sizeof p, err, sizeof err);
		if (rc != DUROX_OK) {
			set_state(ix, IX_BROKEN, err);
			return store_fail(&s->base, rc, "%s", err);
		}
		if ((ix->path = strdup(p)) == NULL)
			return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	}
	int rc = ix_connect(ix);
	int foreign = 0, ours = 0;
	if (rc == DUROX_OK)
		rc = foreign_tables(ix, &foreign, &ours);
	if (rc == DUROX_ECORRUPT || (rc == DUROX_OK && foreign && !ours)) {
		/* not an index of ours: ours to replace only at the default path, under our cache */
		if (s->index_path != NULL) {
			ix_disconnect(ix);
			set_state(ix, IX_BROKEN,
			          rc == DUROX_ECORRUPT ? "the index file is not a SQLite database"
			                               : "the index file is not a duroxlua index");
			return store_fail(&s->base, DUROX_EINVALID,
			                  "visibility index %s: %s (remove it or choose another path)", ix->path,
			                  ix->reason);
		}
		ix_disconnect(ix);
		unlink_files(ix->path);
		rc = ix_connect(ix);
	}
	if (rc == DUROX_OK && (rc = ix_configure(ix)) == DUROX_OK)
		rc = ix_exec(ix, schema_sql, "creating its tables");
	if (rc != DUROX_OK) {
		ix_disconnect(ix);
		set_state(ix, IX_BROKEN, s->base.err);
		return rc;
	}
	/* is it this store's index, in a format we read? */
	int64_t format = 0, dev = 0, ino = 0;
	int has_format = 0;
	char path[PATH_MAX], state[32];
	if ((rc = meta_get_int(ix, "format", &format, &has_format)) != DUROX_OK ||
	    (rc = meta_get_int(ix, "store_dev", &dev, NULL)) != DUROX_OK ||
	    (rc = meta_get_int(ix, "store_ino", &ino, NULL)) != DUROX_OK ||
	    (rc = meta_get_text(ix, "store_path", path, sizeof path)) != DUROX_OK ||
	    (rc = meta_get_text(ix, "state", state, sizeof state)) != DUROX_OK) {
		ix_disconnect(ix);
		set_state(ix, IX_BROKEN, s->base.err);
		return rc;
	}
	if (!has_format) {
		set_state(ix, IX_ABSENT, "not built yet");
	} else if (format != IX_FORMAT || strcmp(path, id.path) != 0 || dev != id.dev || ino != id.ino) {
		/* another store's, or another format: start again */
		const char *why =
		        format != IX_FORMAT ? "it was written in another format" : "it belongs to another store file";
		if ((rc = ix_exec(ix, drop_sql, "clearing it")) != DUROX_OK ||
		    (rc = ix_exec(ix, schema_sql, "creating its tables")) != DUROX_OK) {
			ix_disconnect(ix);
			set_state(ix, IX_BROKEN, s->base.err);
			return rc;
		}
		set_state(ix, IX_ABSENT, why);
	} else if (strcmp(state, "ready") == 0) {
		set_state(ix, IX_READY, "");
	} else {
		set_state(ix, IX_BUILDING, "a build was interrupted (resumable)");
	}
	return DUROX_OK;
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

/* Compares two ids as SQLite's BINARY collation does. */
static int id_cmp(const char *a, size_t an, const char *b, size_t bn)
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
		return ix_stmt_err(ix);
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
			return ix_stmt_err(ix);
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

static void contrib_add(ix_contrib *t, const ix_contrib *c)
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
	group_key(key, name, version);
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
static int build_pass(sq_index *ix, const char *schema, int want_inst, const char *lo, int first, const char *hi,
                      int64_t *n_inst)
{
	*n_inst = 0;
	sqlite_store *s = ix->s;
	buf sql;
	buf_init(&sql);
	add_base_columns(s, &sql);
	buf_adds(&sql, " FROM store.instances i LEFT JOIN store.executions e ON e.instance_id=i.instance_id AND"
	               " e.execution_id=i.current_execution_id WHERE");
	range_sql(&sql, "i.instance_id", 1, first, hi != NULL);
	buf_adds(&sql, " ORDER BY i.instance_id");
	sqlite3_stmt *S = buf_oom(&sql) ? NULL : ix_stmt(ix, buf_str(&sql));
	buf_reset(&sql);
	buf_adds(&sql, "SELECT instance_id, execution_id, event_id, event_type, event_data,"
	               " durox_event_ts(event_data, created_at) FROM store.history WHERE");
	range_sql(&sql, "instance_id", 1, first, hi != NULL);
	buf_adds(&sql, " ORDER BY instance_id, execution_id, event_id");
	sqlite3_stmt *H = S == NULL || buf_oom(&sql) ? NULL : ix_stmt(ix, buf_str(&sql));
	buf_reset(&sql);
	buf_adds(&sql, "SELECT instance_id, count(*) FROM store.executions WHERE");
	range_sql(&sql, "instance_id", 1, first, hi != NULL);
	buf_adds(&sql, " GROUP BY instance_id ORDER BY instance_id");
	sqlite3_stmt *E = H == NULL || buf_oom(&sql) ? NULL : ix_stmt(ix, buf_str(&sql));
	buf_free(&sql);
	if (E == NULL) {
		if (S)
			sq_done(S);
		if (H)
			sq_done(H);
		return ix_stmt_err(ix);
	}
	/* statements used per instance, prepared before the streams move (the cache may evict) */
	char isql[512];
	snprintf(isql, sizeof isql,
	         "INSERT INTO %s.dx_inst (instance_id, name, version, status, created_at, updated_at,"
	         " execution_count, parent_instance, parent_id, completed_at, failure_kind, error, custom_status,"
	         " custom_status_version, duration_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)",
	         schema);
	sqlite3_stmt *ins = want_inst ? ix_stmt(ix, isql) : NULL;
	sqlite3_stmt *pid = ix_stmt(ix, "SELECT CASE WHEN json_valid(?1) THEN json_extract(?1,'$.parent_id') END");
	int to_main = strcmp(schema, "main") == 0;
	bind_range(S, lo, hi);
	bind_range(H, lo, hi);
	bind_range(E, lo, hi);
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
	int rc = (want_inst && ins == NULL) || pid == NULL ? ix_stmt_err(ix) : DUROX_OK;
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
			if (best < 0 || id_cmp(ids[k], lens[k], ids[best], lens[best]) < 0)
				best = k;
		}
		buf_reset(&cur);
		buf_add(&cur, ids[best], lens[best]);
		if (buf_oom(&cur)) {
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
			break;
		}
		int has_inst = rows[0] && id_cmp(ids[0], lens[0], cur.data, cur.len) == 0;
		acc_reset(&a);
		hf.cur = has_inst ? sqlite3_column_int64(S, 6) : INT64_MIN;
		hf.has_last = hf.has_first = hf.has_term = hf.has_failed = hf.has_first_event = 0;
		int want_event1 = has_inst && sqlite3_column_type(S, 7) != SQLITE_NULL;
		while (hr == SQLITE_ROW) { /* its history rows */
			const char *x = (const char *)sqlite3_column_blob(H, 0);
			size_t xn = (size_t)sqlite3_column_bytes(H, 0);
			if (id_cmp(x ? x : "", xn, cur.data, cur.len) != 0)
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
			if (id_cmp(x ? x : "", xn, cur.data, cur.len) == 0) {
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
					g->inst[status_class(status)]++;
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
		contrib_add(&total, &a.c);
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
		rc = totals_add(ix, &total, 1);
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
	if (ident_now(ix->s, &id) != 0)
		return store_fail(&ix->s->base, DUROX_EIO, "the store's real path cannot be read");
	int rc = ix_exec(ix, "BEGIN IMMEDIATE", "starting a build");
	if (rc != DUROX_OK)
		return rc;
	store_fp fp;
	int64_t total = 0;
	if ((rc = ix_exec(ix, drop_sql, "clearing it")) == DUROX_OK &&
	    (rc = ix_exec(ix, schema_sql, "creating its tables")) == DUROX_OK && (rc = fp_now(ix, &fp)) == DUROX_OK &&
	    (rc = fp_save(ix, &fp)) == DUROX_OK &&
	    (rc = ix_int(ix, "SELECT count(*) FROM store.instances", NULL, &total, NULL)) == DUROX_OK &&
	    (rc = meta_set_int(ix, "format", IX_FORMAT)) == DUROX_OK &&
	    (rc = meta_set_text(ix, "store_path", id.path)) == DUROX_OK &&
	    (rc = meta_set_int(ix, "store_dev", id.dev)) == DUROX_OK &&
	    (rc = meta_set_int(ix, "store_ino", id.ino)) == DUROX_OK &&
	    (rc = meta_set_text(ix, "state", "building")) == DUROX_OK &&
	    (rc = meta_set_int(ix, "build_total", total)) == DUROX_OK &&
	    (rc = meta_set_int(ix, "build_done", 0)) == DUROX_OK &&
	    (rc = meta_set_int(ix, "started_at", wall_ms())) == DUROX_OK)
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
	if ((rc = meta_get_int(ix, "build_has_next", &started, &has_next)) != DUROX_OK ||
	    (rc = meta_get_text(ix, "build_next", lo, sizeof lo)) != DUROX_OK ||
	    (rc = meta_get_int(ix, "build_done", &ndone, NULL)) != DUROX_OK ||
	    (rc = meta_get_int(ix, "build_total", &ntotal, NULL)) != DUROX_OK)
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
		rc = ix_stmt_err(ix);
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
	if ((rc = build_pass(ix, "main", 1, lo, first, hi, &n)) != DUROX_OK)
		goto out;
	ndone += n;
	if ((rc = meta_set_int(ix, "build_done", ndone)) != DUROX_OK)
		goto out;
	if (hi != NULL) {
		if ((rc = meta_set_text(ix, "build_next", hi)) != DUROX_OK ||
		    (rc = meta_set_int(ix, "build_has_next", 1)) != DUROX_OK)
			goto out;
	} else {
		/* the last chunk: sort the listing indexes once, and the index is ready */
		if ((rc = ix_exec(ix, index_sql, "creating its indexes")) != DUROX_OK ||
		    (rc = meta_set_text(ix, "state", "ready")) != DUROX_OK ||
		    (rc = meta_set_int(ix, "built_at", wall_ms())) != DUROX_OK ||
		    (rc = meta_set_int(ix, "synced_at", wall_ms())) != DUROX_OK)
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
static int ix_build(sq_index *ix, int rebuild, store_progress_fn progress, void *ud)
{
	int rc;
	if (ix->building)
		return store_fail(&ix->s->base, DUROX_ECONFLICT, "the visibility index is being built by this handle");
	ix->building = 1;
	if (rebuild || ix->state == IX_ABSENT || ix->state == IX_STALE || ix->state == IX_READY) {
		if ((rc = build_begin(ix)) != DUROX_OK)
			goto out;
	}
	set_state(ix, IX_BUILDING, "a build is under way");
	for (;;) {
		int done;
		uint64_t n, total;
		rc = build_chunk(ix, &done, &n, &total);
		if (rc != DUROX_OK)
			goto out;
		if (progress != NULL && progress(ud, n, total) != 0 && !done) {
			set_state(ix, IX_BUILDING, "the build was stopped (resumable)");
			rc = store_fail(&ix->s->base, DUROX_EABORT,
			                "the visibility index build was stopped at %llu of %llu"
			                " instances; it resumes where it stopped",
			                (unsigned long long)n, (unsigned long long)total);
			goto out;
		}
		if (done)
			break;
	}
	set_state(ix, IX_READY, "");
	rc = DUROX_OK;
out:
	ix->building = 0;
	return rc;
}

/* ---- following the store ------------------------------------------------------------------ */

/* Brings a ready index up to date, or finds that it cannot (state stale). The gate: when
 * neither the store nor the index file has had a commit from another connection since the
 * last check, nothing is read (PRAGMA data_version costs about a microsecond each). */
static int ix_sync(sq_index *ix)
{
	int64_t sdv = 0, idv = 0;
	int rc;
	if ((rc = ix_int(ix, "PRAGMA store.data_version", NULL, &sdv, NULL)) != DUROX_OK ||
	    (rc = ix_int(ix, "PRAGMA main.data_version", NULL, &idv, NULL)) != DUROX_OK)
		return rc;
	if (ix->gate_valid && sdv == ix->gate_store_dv && idv == ix->gate_index_dv)
		return DUROX_OK;
	/* one read transaction: the state read and the comparison see one snapshot of both */
	if ((rc = ix_exec(ix, "BEGIN", "reading")) != DUROX_OK)
		return rc;
	char state[32];
	store_fp saved, now;
	int found = 0;
	if ((rc = meta_get_text(ix, "state", state, sizeof state)) == DUROX_OK &&
	    (rc = fp_load(ix, &saved, &found)) == DUROX_OK && strcmp(state, "ready") == 0 && found)
		rc = fp_now(ix, &now);
	sqlite3_exec(ix->db, "COMMIT", NULL, NULL, NULL);
	if (rc != DUROX_OK)
		return rc;
	if (strcmp(state, "ready") != 0 || !found) {
		/* another handle dropped it or started a rebuild */
		set_state(ix, strcmp(state, "building") == 0 ? IX_BUILDING : IX_ABSENT,
		          strcmp(state, "building") == 0 ? "a build is under way" : "not built yet");
		return DUROX_OK;
	}
	if (memcmp(&saved, &now, sizeof now) != 0) {
		set_state(ix, IX_STALE,
		          "the store changed since the index was built; rebuild it (duroxlua index build)");
		return DUROX_OK;
	}
	ix->state = IX_READY;
	ix->gate_valid = 1;
	ix->gate_store_dv = sdv;
	ix->gate_index_dv = idv;
	return DUROX_OK;
}

/* ---- the provider's entry points -------------------------------------------------------- */

static sq_index *ix_of(sqlite_store *s)
{
	if (s->ix == NULL) {
		sq_index *ix = calloc(1, sizeof *ix);
		if (ix == NULL)
			return NULL;
		ix->s = s;
		ix->state = IX_CLOSED;
		if (s->index_path != NULL && (ix->path = strdup(s->index_path)) == NULL) {
			free(ix);
			return NULL;
		}
		if (s->index_mode == DUROX_INDEX_OFF || s->memory)
			set_state(ix, IX_OFF, s->memory ? "an in-memory store has no index" : "the index is off");
		s->ix = ix;
	}
	return s->ix;
}

/* The index of s, opened (state CLOSED left behind). NULL when out of memory. */
static sq_index *ix_opened(sqlite_store *s)
{
	sq_index *ix = ix_of(s);
	if (ix != NULL && ix->state == IX_CLOSED)
		ix_open(ix);
	return ix;
}

int sqi_usable(sqlite_store *s)
{
	sq_index *ix = ix_opened(s);
	if (ix == NULL || ix->state == IX_OFF || ix->state == IX_BROKEN || ix->building)
		return 0;
	char saved[sizeof s->base.err];
	memcpy(saved, s->base.err, sizeof saved);
	int rc = DUROX_OK;
	if (ix->state == IX_ABSENT || ix->state == IX_BUILDING) {
		/* the first read that needs it builds it (a build another handle runs is joined) */
		rc = ix_build(ix, 0, ix->progress, ix->progress_ud);
	}
	if (rc == DUROX_OK && ix->state == IX_READY)
		rc = ix_sync(ix);
	/* an index that fails is set aside: the store answers, and the message is not this read's */
	memcpy(s->base.err, saved, sizeof saved);
	if (rc != DUROX_OK && rc != DUROX_EABORT && rc != DUROX_EBUSY)
		set_state(ix, IX_BROKEN, "the index failed; the store answers reads (rebuild: duroxlua index build)");
	return rc == DUROX_OK && ix->state == IX_READY;
}

void sqi_close(sqlite_store *s)
{
	sq_index *ix = s->ix;
	if (ix == NULL)
		return;
	ix_disconnect(ix);
	free(ix->path);
	free(ix);
	s->ix = NULL;
}

static const char *state_name(int st)
{
	switch (st) {
	case IX_OFF: return "off";
	case IX_ABSENT: return "absent";
	case IX_BUILDING: return "building";
	case IX_READY: return "ready";
	case IX_STALE: return "stale";
	case IX_BROKEN: return "broken";
	default: return "closed";
	}
}

static int sqi_status(store *base, durox_index_status *out)
{
	sqlite_store *s = (sqlite_store *)base;
	memset(out, 0, sizeof *out);
	out->built_at = out->synced_at = DUROX_NO_TIME;
	out->size_bytes = -1;
	sq_index *ix = ix_opened(s);
	if (ix == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	if (ix->state == IX_READY)
		ix_sync(ix);
	out->enabled = ix->state != IX_OFF;
	out->state = state_name(ix->state);
	out->path = ix->path;
	out->reason = ix->reason;
	if (ix->db == NULL)
		return DUROX_OK;
	int64_t v;
	int found;
	if (meta_get_int(ix, "built_at", &v, &found) == DUROX_OK && found)
		out->built_at = v;
	if (meta_get_int(ix, "synced_at", &v, &found) == DUROX_OK && found)
		out->synced_at = v;
	if (meta_get_int(ix, "build_done", &v, NULL) == DUROX_OK)
		out->build_done = (uint64_t)v;
	if (meta_get_int(ix, "build_total", &v, NULL) == DUROX_OK)
		out->build_total = (uint64_t)v;
	if (ix_int(ix, "SELECT count(*) FROM main.dx_inst", NULL, &v, NULL) == DUROX_OK)
		out->instances = (uint64_t)v;
	if (ix_int(ix, "SELECT v FROM main.dx_totals WHERE k='rows'", NULL, &v, NULL) == DUROX_OK)
		out->history_rows = (uint64_t)v;
	struct stat sb;
	if (stat(ix->path, &sb) == 0) {
		out->size_bytes = (int64_t)sb.st_size;
		char wal[PATH_MAX + 8];
		snprintf(wal, sizeof wal, "%s-wal", ix->path);
		if (stat(wal, &sb) == 0)
			out->size_bytes += (int64_t)sb.st_size;
	}
	s->base.err[0] = '\0';
	return DUROX_OK;
}

static int sqi_build(store *base, int rebuild, store_progress_fn progress, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	sq_index *ix = ix_opened(s);
	if (ix == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	if (ix->state == IX_OFF)
		return store_fail(base, DUROX_EUNSUPPORTED, "this handle keeps no visibility index (%s)", ix->reason);
	if (ix->state == IX_BROKEN) {
		/* try the file again from scratch */
		ix_disconnect(ix);
		ix->state = IX_CLOSED;
		int rc = ix_open(ix);
		if (rc != DUROX_OK)
			return rc;
	}
	if (!rebuild && ix->state == IX_READY) {
		int rc = ix_sync(ix);
		if (rc != DUROX_OK || ix->state == IX_READY)
			return rc;
	}
	return ix_build(ix, rebuild, progress, ud);
}

static int sqi_drop(store *base)
{
	sqlite_store *s = (sqlite_store *)base;
	sq_index *ix = ix_of(s);
	if (ix == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	if (ix->state == IX_OFF)
		return store_fail(base, DUROX_EUNSUPPORTED, "this handle keeps no visibility index (%s)", ix->reason);
	if (ix->path == NULL && ix_opened(s) && ix->path == NULL)
		return DUROX_OK;
	ix_disconnect(ix);
	unlink_files(ix->path);
	ix->state = IX_CLOSED;
	return DUROX_OK;
}

static void sqi_set_progress(store *base, store_progress_fn progress, void *ud)
{
	sq_index *ix = ix_of((sqlite_store *)base);
	if (ix != NULL) {
		ix->progress = progress;
		ix->progress_ud = ud;
	}
}

/* ---- verification ------------------------------------------------------------------------- */

static int sqi_verify(store *base, durox_index_verify_result *out);

const store_index_vtable sq_index_vtable = {sqi_status, sqi_build, sqi_drop, sqi_verify, sqi_set_progress};

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
		return ix_stmt_err(ix);
	}
	int ra = sqlite3_step(a), rb = sqlite3_step(b);
	while (ra == SQLITE_ROW || rb == SQLITE_ROW) {
		const char *ia = ra == SQLITE_ROW ? (const char *)sqlite3_column_text(a, 0) : NULL;
		const char *ib = rb == SQLITE_ROW ? (const char *)sqlite3_column_text(b, 0) : NULL;
		int c = ia == NULL ? 1 : ib == NULL ? -1 : id_cmp(ia, strlen(ia), ib, strlen(ib));
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
		rc = build_pass(ix, "temp", 0, "", 1, NULL, &n_inst);
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
		contrib_add(&total, &c);
		for (size_t k = 0; k < c.ndg; k++) {
			group_key(&key, c.dg[k].name, c.dg[k].version);
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
		rc = st == NULL ? ix_stmt_err(ix) : ix_fail(ix, r, "reading contributions");
	if (rc == DUROX_OK && (st = ix_stmt(ix, "SELECT name, version, status, count(*) FROM main.dx_inst"
	                                        " GROUP BY name, version, status")) == NULL)
		rc = ix_stmt_err(ix);
	else if (rc == DUROX_OK) {
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			const char *name = (const char *)sqlite3_column_text(st, 0);
			const char *version = (const char *)sqlite3_column_text(st, 1);
			group_key(&key, name, version);
			vgroup *g = vgroup_of(&gs, &key);
			if (g != NULL) {
				int64_t n = sqlite3_column_int64(st, 3);
				g->v[0] += n;
				g->v[status_class((const char *)sqlite3_column_text(st, 2))] += n;
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
		rc = ix_stmt_err(ix);
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

static int sqi_verify(store *base, durox_index_verify_result *out)
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
		                  state_name(ix->state), ix->reason);
	int rc = ix_exec(ix, "BEGIN", "verifying");
	if (rc != DUROX_OK)
		return rc;
	rc = verify_summaries(ix, out);
	if (rc == DUROX_OK)
		rc = verify_contribs(ix, out);
	sqlite3_exec(ix->db, "COMMIT", NULL, NULL, NULL);
	return rc;
}
