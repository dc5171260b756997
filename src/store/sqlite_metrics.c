/*
 * sqlite_metrics.c - the SQLite provider's metrics reads (provider_metrics.h): the statement
 * timer behind the read/write latencies, the instance and history digests (one pass each,
 * aggregated in C by SQL functions that receive a state pointer, so nothing is sorted), the
 * store's facts and sizes, and the queue snapshot and problem rows. Analytics queries live in
 * sqlite_analytics.c. Relies on sqlite_internal.h and util/hmap; used by the engine through
 * sq_metrics_vtable.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "store/format.h"
#include "store/provider_metrics.h"
#include "store/sqlite_index.h"
#include "util/hmap.h"

/* The counted types in store_event_type order (provider_metrics.h). */
#define EVENT_TYPES(X)                                                                                                 \
	X("OrchestrationStarted")                                                                                      \
	X("OrchestrationCompleted")                                                                                    \
	X("OrchestrationFailed")                                                                                       \
	X("OrchestrationContinuedAsNew")                                                                               \
	X("OrchestrationCancelRequested")                                                                              \
	X("OrchestrationChained")                                                                                      \
	X("ActivityScheduled")                                                                                         \
	X("ActivityCompleted")                                                                                         \
	X("ActivityFailed")                                                                                            \
	X("ActivityCancelRequested")                                                                                   \
	X("TimerCreated")                                                                                              \
	X("TimerFired")                                                                                                \
	X("ExternalSubscribed")                                                                                        \
	X("ExternalEvent")                                                                                             \
	X("ExternalSubscribedCancelled")                                                                               \
	X("ExternalSubscribedPersistent")                                                                              \
	X("ExternalEventPersistent")                                                                                   \
	X("ExternalSubscribedPersistentCancelled")                                                                     \
	X("SubOrchestrationScheduled")                                                                                 \
	X("SubOrchestrationCompleted")                                                                                 \
	X("SubOrchestrationFailed")                                                                                    \
	X("SubOrchestrationCancelRequested")                                                                           \
	X("CustomStatusUpdated")                                                                                       \
	X("KeyValueSet")                                                                                               \
	X("KeyValueCleared")                                                                                           \
	X("KeyValuesCleared")

#define EV_NAME(s) s,
#define EV_LEN(s) sizeof(s) - 1,
const char *const store_event_type_names[EV__COUNT] = {EVENT_TYPES(EV_NAME)};
static const unsigned char store_event_type_len[EV__COUNT] = {EVENT_TYPES(EV_LEN)};
#undef EV_NAME
#undef EV_LEN

void store_instance_digest_free(store_instance_digest *d)
{
	if (d != NULL) {
		arena_release(&d->mem);
		memset(d, 0, sizeof *d);
	}
}

void store_history_digest_free(store_history_digest *d)
{
	if (d != NULL) {
		arena_release(&d->mem);
		memset(d, 0, sizeof *d);
	}
}

/* ---- statement timing ------------------------------------------------------------ */

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whether a statement is a write. Transaction control belongs to what it controls: BEGIN
 * IMMEDIATE/EXCLUSIVE and the COMMIT/ROLLBACK/END/SAVEPOINT/RELEASE inside such a transaction
 * are writes; a plain BEGIN and its COMMIT (a read snapshot) are reads. PRAGMAs set connection
 * options (foreign_keys at open): reads. Everything else: what sqlite3_stmt_readonly says. */
static int is_write(sqlite_store *s, sqlite3_stmt *st)
{
	const char *sql = sqlite3_sql(st);
	if (sql == NULL)
		return !sqlite3_stmt_readonly(st);
	while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r')
		sql++;
	if (strncasecmp(sql, "PRAGMA", 6) == 0)
		return 0;
	if (strncasecmp(sql, "BEGIN", 5) == 0) {
		const char *p = sql + 5;
		while (*p == ' ')
			p++;
		s->in_write_txn = strncasecmp(p, "IMMEDIATE", 9) == 0 || strncasecmp(p, "EXCLUSIVE", 9) == 0;
		return s->in_write_txn;
	}
	static const char *const ends[] = {"COMMIT", "END", "ROLLBACK"};
	for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
		if (strncasecmp(sql, ends[i], strlen(ends[i])) == 0) {
			int w = s->in_write_txn;
			if (strncasecmp(sql, "ROLLBACK TO", 11) != 0)
				s->in_write_txn = 0;
			return w;
		}
	}
	if (strncasecmp(sql, "SAVEPOINT", 9) == 0 || strncasecmp(sql, "RELEASE", 7) == 0)
		return s->in_write_txn;
	return !sqlite3_stmt_readonly(st);
}

/* SQLITE_TRACE_STMT fires when a statement starts running (its first step after a prepare or
 * reset); SQLITE_TRACE_PROFILE when it finishes or is reset. The time between is the call's
 * latency as this handle saw it, measured with the monotonic clock (SQLite's own profile time
 * has only millisecond resolution). It includes the time our code spends on each row between
 * steps, which for our reads is copying the row. */
static int trace_cb(unsigned type, void *ctx, void *p, void *x)
{
	sqlite_store *s = ctx;
	if (type == SQLITE_TRACE_STMT) {
		const char *sql = x;
		if (sql != NULL && sql[0] == '-' && sql[1] == '-')
			return 0; /* a trigger program inside a statement already timed */
		for (int i = 0; i < 8; i++)
			if (s->timing[i].stmt == p)
				return 0;
		for (int i = 0; i < 8; i++) {
			if (s->timing[i].stmt == NULL) {
				s->timing[i].stmt = p;
				s->timing[i].t0_ns = mono_ns();
				return 0;
			}
		}
		return 0; /* more than 8 statements running at once: not measured */
	}
	if (type == SQLITE_TRACE_PROFILE) {
		for (int i = 0; i < 8; i++) {
			if (s->timing[i].stmt != p)
				continue;
			double ms = (double)(mono_ns() - s->timing[i].t0_ns) / 1e6;
			s->timing[i].stmt = NULL;
			if (is_write(s, p)) {
				s->writes++;
				s->write_ms += ms;
				if (ms > s->max_write_ms)
					s->max_write_ms = ms;
			} else {
				s->reads++;
				s->read_ms += ms;
				if (ms > s->max_read_ms)
					s->max_read_ms = ms;
			}
			return 0;
		}
	}
	return 0;
}

/* ---- timestamps and fields inside event JSON ----------------------------------------- */

/* The first occurrence of needle (at least 2 bytes) in hay[0..n), or NULL. A plain loop on
 * the first two bytes: the keys searched for sit near the start of an event. */
static const char *find(const char *hay, size_t n, const char *needle, size_t nn)
{
	if (nn < 2 || n < nn)
		return NULL;
	const char c0 = needle[0], c1 = needle[1];
	const char *end = hay + n - nn;
	for (const char *p = hay; p <= end; p++)
		if (p[0] == c0 && p[1] == c1 && memcmp(p + 2, needle + 2, nn - 2) == 0)
			return p;
	return NULL;
}

/* Duroxide writes the common fields first and escapes every quote inside strings, so the
 * first '"<key>":' is the top-level member (see durox_event_ts in sqlite.c). Values are read
 * from the column's bytes in place (sqlite3_value_blob: no copy to add a terminator). */
static int int_member(const char *t, size_t n, const char *key, size_t keylen, int64_t *out)
{
	const char *p = find(t, n, key, keylen);
	if (p == NULL)
		return 0;
	const char *end = t + n;
	p += keylen;
	while (p < end && *p == ' ')
		p++;
	int64_t v = 0;
	int digits = 0;
	while (p < end && *p >= '0' && *p <= '9' && digits < 19) {
		v = v * 10 + (*p++ - '0');
		digits++;
	}
	if (digits == 0)
		return 0;
	*out = v;
	return 1;
}

#define TS_KEY "\"timestamp_ms\":"
#define SRC_KEY "\"source_event_id\":"

/* The text of JSON string member `key` found in [from, end), when it has no escapes: sets *s
 * and *n and returns 1; returns 0 when absent, not a string, or escaped (the caller then
 * parses the event). *is_null is set for a JSON null. */
static int str_member(const char *from, const char *end, const char *key, const char **s, size_t *n, int *is_null)
{
	*is_null = 0;
	size_t kl = strlen(key);
	const char *p = find(from, (size_t)(end - from), key, kl);
	if (p == NULL)
		return 0;
	p += kl;
	while (p < end && *p == ' ')
		p++;
	if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
		*is_null = 1;
		*s = NULL;
		*n = 0;
		return 1;
	}
	if (p >= end || *p != '"')
		return 0;
	const char *b = ++p;
	while (p < end && *p != '"') {
		if (*p == '\\')
			return 0;
		p++;
	}
	if (p >= end)
		return 0;
	*s = b;
	*n = (size_t)(p - b);
	return 1;
}

static int one_int(sqlite_store *s, const char *sql, const char *what, int64_t *out, int *isnull);

/* ---- grouping in C ------------------------------------------------------------------ */

/* Groups keyed by (name, version): the key is name NUL (version | "\1" for NULL). */
typedef struct group_set {
	hmap index;
	arena *mem;
	size_t n, cap;
	struct group_acc {
		const char *name, *version;
		uint64_t c[6]; /* instances, running, completed, failed, continued_as_new, unknown */
		uint64_t dn;
		double dsum;
	} * g;
	int oom;
} group_set;

static void groups_init(group_set *gs, arena *mem)
{
	memset(gs, 0, sizeof *gs);
	hmap_init(&gs->index);
	gs->mem = mem;
}

static void groups_free(group_set *gs)
{
	hmap_free(&gs->index);
	free(gs->g);
	gs->g = NULL;
}

/* Index of the group for (name, version), created when new; -1 when out of memory. */
static int64_t group_of(group_set *gs, const char *name, size_t nlen, const char *version, size_t vlen)
{
	char stackkey[256];
	size_t klen = nlen + 1 + (version ? vlen : 1);
	char *key = klen <= sizeof stackkey ? stackkey : malloc(klen);
	if (key == NULL) {
		gs->oom = 1;
		return -1;
	}
	memcpy(key, name, nlen);
	key[nlen] = '\0';
	if (version != NULL)
		memcpy(key + nlen + 1, version, vlen);
	else
		key[nlen + 1] = '\1';
	int created;
	hmap_entry *e = hmap_put(&gs->index, key, klen, &created);
	if (key != stackkey)
		free(key);
	if (e == NULL) {
		gs->oom = 1;
		return -1;
	}
	if (!created)
		return e->a;
	if (gs->n == gs->cap) {
		size_t ncap = gs->cap ? gs->cap * 2 : 16;
		struct group_acc *ng = realloc(gs->g, ncap * sizeof *ng);
		if (ng == NULL) {
			gs->oom = 1;
			hmap_del(&gs->index, e->key, e->klen);
			return -1;
		}
		gs->g = ng;
		gs->cap = ncap;
	}
	struct group_acc *g = &gs->g[gs->n];
	memset(g, 0, sizeof *g);
	g->name = arena_strndup(gs->mem, name, nlen);
	g->version = version ? arena_strndup(gs->mem, version, vlen) : NULL;
	if (g->name == NULL || (version && g->version == NULL)) {
		gs->oom = 1;
		return -1;
	}
	e->a = (int64_t)gs->n;
	return (int64_t)gs->n++;
}

static int cmp_str_null_first(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int cmp_acc(const void *x, const void *y)
{
	const struct group_acc *a = x, *b = y;
	int c = strcmp(a->name, b->name);
	return c != 0 ? c : cmp_str_null_first(a->version, b->version);
}

/* ---- the instance digest -------------------------------------------------------------- */

/* durox_igroup(state, name, version, status): counts one instance into its group. */
static void fn_igroup(sqlite3_context *ctx, int argc, sqlite3_value **argv)
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
	int64_t gi = group_of(gs, name ? name : "", name ? (size_t)nlen : 0, version, (size_t)vlen);
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

static void inst_cache_free(sqlite_store *s)
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

static int sq_instance_digest(store *base, store_instance_digest *out)
{
	sqlite_store *s = (sqlite_store *)base;
	if (sqi_usable(s))
		return sqi_instance_digest(s, out);
	int64_t dv = 0;
	int rc = one_int(s, "PRAGMA data_version", "reading the data version", &dv, NULL);
	if (rc != DUROX_OK) {
		memset(out, 0, sizeof *out);
		arena_init(&out->mem);
		return rc;
	}
	if (s->inst == NULL || s->inst->data_version != dv || s->inst->own_writes != s->writes) {
		inst_cache_free(s);
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
	groups_init(&gs, &out->mem);
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
		qsort(gs.g, gs.n, sizeof *gs.g, cmp_acc);
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
	groups_free(&gs);
	if (rc != DUROX_OK)
		store_instance_digest_free(out);
	return rc;
}

/* ---- the history digest ------------------------------------------------------------- */

typedef struct hist_state {
	store_history_digest *d;
	group_set groups;
	hmap pending;    /* "<instance>\0<execution>\0<event id>" of ActivityScheduled -> a = ts */
	hmap started;    /* instance id -> a = first start ts, b = group of the latest start */
	int round_trips; /* pair activity results with their schedules (STORE_DIGEST_ROUND_TRIPS) */
	int oom;
} hist_state;

/* The counted type of an event_type value (this runs for every history row: the lengths are
 * compared first, so a name is compared at most about four times). */
static int event_type_by_len(const char *t, size_t n)
{
	for (int k = 0; k < EV__COUNT; k++)
		if (store_event_type_len[k] == n && memcmp(store_event_type_names[k], t, n) == 0)
			return k;
	return -1;
}

int sq_event_type(const char *t, size_t n) { return event_type_by_len(t, n); }

static size_t act_key(char *key, size_t cap, const char *inst, size_t ilen, int64_t exec, int64_t id)
{
	if (ilen + 48 > cap)
		return 0;
	memcpy(key, inst, ilen);
	size_t n = ilen;
	key[n++] = '\0';
	memcpy(key + n, &exec, sizeof exec);
	n += sizeof exec;
	memcpy(key + n, &id, sizeof id);
	return n + sizeof id;
}

/* Reads the facts of one event the digests use (sqlite_internal.h). Duroxide writes
 * {"event_id":N,"source_event_id":N|null,"instance_id":"<id>","execution_id":N,
 * "timestamp_ms":N,...: timestamp_ms cannot start before byte 68 + the id's length, so the
 * search starts there (and from the start if the layout differs). */
void sq_event_facts_read(int t, const char *data, size_t dlen, size_t ilen, arena *a, sq_event_facts *f)
{
	memset(f, 0, sizeof *f);
	f->type = t;
	if (data == NULL)
		return;
	if (t == EV_ORCHESTRATION_FAILED) {
		int kind = format_failure_kind(data, dlen, NULL);
		if (kind > 0 && kind < DUROX_FAILURE__COUNT)
			f->failure_kind = kind;
	}
	size_t skip = 66 + ilen < dlen ? 66 + ilen : 0;
	f->has_ts = int_member(data + skip, dlen - skip, TS_KEY, sizeof TS_KEY - 1, &f->ts) ||
	            (skip != 0 && int_member(data, dlen, TS_KEY, sizeof TS_KEY - 1, &f->ts));
	if (!f->has_ts)
		return;
	if (t == EV_ACTIVITY_COMPLETED || t == EV_ACTIVITY_FAILED)
		f->has_src = int_member(data, dlen, SRC_KEY, sizeof SRC_KEY - 1, &f->src);
	if (t != EV_ORCHESTRATION_STARTED)
		return;
	/* the started execution's name and version */
	const char *dend = data + dlen;
	const char *tp = find(data + skip, dlen - skip, "\"type\":", 7); /* after timestamp_ms */
	if (tp == NULL)
		tp = find(data, dlen, "\"type\":", 7);
	int nnull, vnull;
	if (tp != NULL && str_member(tp, dend, "\"name\":", &f->name, &f->nlen, &nnull) && !nnull &&
	    str_member(tp, dend, "\"version\":", &f->version, &f->vlen, &vnull)) {
		f->has_name = 1;
		return;
	}
	/* escaped or unusual: parse the whole event (strings in a) */
	f->name = f->version = NULL;
	f->nlen = f->vlen = 0;
	json *ev = json_parse(a, data, dlen, NULL, 0);
	const char *n2 = json_get_str(ev, "name"), *v2 = json_get_str(ev, "version");
	if (n2 != NULL) {
		f->has_name = 1;
		f->name = n2;
		f->nlen = strlen(n2);
		f->version = v2;
		f->vlen = v2 ? strlen(v2) : 0;
	}
}

/* durox_hdigest(state, event_type, instance_id, execution_id, event_id, event_data): counts
 * one history row and pairs starts with ends and activity schedules with their results. Rows
 * arrive in rowid (= insertion) order, and Duroxide appends an instance's events in order. */
static void fn_hdigest(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	hist_state *hs = sqlite3_value_pointer(argv[0], "durox_hist_state");
	if (hs == NULL) {
		sqlite3_result_error(ctx, "durox_hdigest: no state", -1);
		return;
	}
	store_history_digest *d = hs->d;
	d->rows++;
	sqlite3_result_int(ctx, 0);
	const char *type = (const char *)sqlite3_value_blob(argv[1]);
	int t = type != NULL ? sq_event_type(type, (size_t)sqlite3_value_bytes(argv[1])) : -1;
	if (t < 0) {
		d->other_types++;
		return;
	}
	d->by_type[t]++;
	if (t != EV_ORCHESTRATION_STARTED && t != EV_ORCHESTRATION_COMPLETED && t != EV_ORCHESTRATION_FAILED &&
	    (!hs->round_trips || (t != EV_ACTIVITY_SCHEDULED && t != EV_ACTIVITY_COMPLETED && t != EV_ACTIVITY_FAILED)))
		return;
	const char *inst = (const char *)sqlite3_value_blob(argv[2]);
	size_t ilen = (size_t)sqlite3_value_bytes(argv[2]);
	int64_t exec = sqlite3_value_int64(argv[3]);
	int64_t id = sqlite3_value_int64(argv[4]);
	const char *data = (const char *)sqlite3_value_blob(argv[5]);
	size_t dlen = (size_t)sqlite3_value_bytes(argv[5]);
	if (inst == NULL || data == NULL)
		return;
	arena a;
	arena_init(&a);
	sq_event_facts f;
	sq_event_facts_read(t, data, dlen, ilen, &a, &f);
	if (f.failure_kind > 0)
		d->failed_by_kind[f.failure_kind]++;
	if (!f.has_ts) {
		arena_release(&a);
		return;
	}
	int64_t ts = f.ts;
	char key[512];
	size_t klen;
	int created;
	hmap_entry *e;
	switch (t) {
	case EV_ACTIVITY_SCHEDULED:
		if ((klen = act_key(key, sizeof key, inst, ilen, exec, id)) == 0)
			break;
		if ((e = hmap_put(&hs->pending, key, klen, &created)) == NULL)
			goto oom;
		e->a = ts;
		break;
	case EV_ACTIVITY_COMPLETED:
	case EV_ACTIVITY_FAILED:
		if (!f.has_src || (klen = act_key(key, sizeof key, inst, ilen, exec, f.src)) == 0)
			break;
		if ((e = hmap_get(&hs->pending, key, klen)) != NULL) {
			d->round_trips++;
			d->round_trip_ms += (double)(ts - e->a);
			hmap_del(&hs->pending, key, klen);
		}
		break;
	case EV_ORCHESTRATION_STARTED: {
		if (!f.has_name)
			break;
		int64_t gi = group_of(&hs->groups, f.name, f.nlen, f.version, f.vlen);
		if (gi < 0)
			goto oom;
		if ((e = hmap_put(&hs->started, inst, ilen, &created)) == NULL)
			goto oom;
		if (created)
			e->a = ts; /* the first stored execution's start */
		e->b = gi;
		break;
	}
	default: { /* OrchestrationCompleted / OrchestrationFailed */
		if ((e = hmap_get(&hs->started, inst, ilen)) == NULL)
			break;
		double dur = (double)(ts - e->a);
		struct group_acc *g = &hs->groups.g[e->b];
		g->dn++;
		g->dsum += dur;
		d->durations++;
		d->duration_ms += dur;
		hmap_del(&hs->started, inst, ilen);
		break;
	}
	}
	arena_release(&a);
	return;
oom:
	arena_release(&a);
	hs->oom = 1;
	sqlite3_result_error_nomem(ctx);
}

/* The history digest persists on the connection between calls: the next call reads only the
 * rows added since (rowid > the last one read), when the store shows that nothing was
 * deleted: the row count is what was read plus the new rows, and the last row read is still
 * the same row. Otherwise (a purge, a prune) it reads everything again. Rows are never
 * updated by the runtime, so this gives exactly what a full pass gives. */
struct hist_inc {
	hist_state hs;            /* the pairing maps and the groups */
	arena mem;                /* group names */
	store_history_digest acc; /* the counters (its groups and mem are unused) */
	int64_t max_rowid;        /* the last row read */
	uint64_t rows;            /* rows read in all */
	char *last_id;            /* identity of the last row: its key and a hash of its data */
	size_t last_len;
	uint64_t last_hash;
	int valid;
	int64_t data_version; /* PRAGMA data_version at the last pass */
	uint64_t own_writes;  /* this connection's write statements at the last pass */
};

static void hist_inc_reset(hist_inc *h)
{
	groups_free(&h->hs.groups);
	hmap_free(&h->hs.pending);
	hmap_free(&h->hs.started);
	arena_release(&h->mem);
	free(h->last_id);
	memset(h, 0, sizeof *h);
	arena_init(&h->mem);
	h->hs.d = &h->acc;
	groups_init(&h->hs.groups, &h->mem);
	hmap_init(&h->hs.pending);
	hmap_init(&h->hs.started);
	h->max_rowid = INT64_MIN;
}

void sq_metrics_detach(sqlite_store *s)
{
	inst_cache_free(s);
	if (s->hist != NULL) {
		hist_inc_reset(s->hist);
		arena_release(&s->hist->mem);
		free(s->hist);
		s->hist = NULL;
	}
}

static uint64_t fnv64(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The identity of the row at rowid: "<instance>\0<execution>\0<event id>" and a hash of its
 * data; *found = 0 when there is no such row. key is malloc'd. */
static int row_identity(sqlite_store *s, int64_t rowid, int *found, char **key, size_t *klen, uint64_t *hash)
{
	*found = 0;
	*key = NULL;
	sqlite3_stmt *st =
	        sq_stmt(s, "SELECT instance_id, execution_id, event_id, event_data FROM history WHERE rowid=?1");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, rowid);
	int r = sqlite3_step(st);
	int rc = DUROX_OK;
	if (r == SQLITE_ROW) {
		const char *inst = sqlite3_column_blob(st, 0);
		size_t ilen = (size_t)sqlite3_column_bytes(st, 0);
		char kbuf[512];
		size_t n = act_key(kbuf, sizeof kbuf, inst ? inst : "", inst ? ilen : 0, sqlite3_column_int64(st, 1),
		                   sqlite3_column_int64(st, 2));
		if (n == 0) { /* a very long id: its hash stands for it */
			uint64_t hid = fnv64(inst, ilen);
			n = act_key(kbuf, sizeof kbuf, (const char *)&hid, sizeof hid, sqlite3_column_int64(st, 1),
			            sqlite3_column_int64(st, 2));
		}
		*key = malloc(n);
		if (*key == NULL) {
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
		} else {
			memcpy(*key, kbuf, n);
			*klen = n;
			*hash = fnv64(sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st, 3));
			*found = 1;
		}
	} else if (r != SQLITE_DONE) {
		rc = sq_fail(s, r, "reading history");
	}
	sq_done(st);
	return rc;
}

/* Reads the rows after h->max_rowid into h; sets *n to how many and moves max_rowid. */
static int hist_scan(sqlite_store *s, hist_inc *h, uint64_t *n)
{
	*n = 0;
	/* without round trips the ids of a row are not needed: fewer columns to decode per row */
	sqlite3_stmt *st =
	        sq_stmt(s, h->hs.round_trips ? "SELECT max(rowid), count(*), sum(durox_hdigest(?1, event_type,"
	                                       " instance_id, execution_id, event_id, event_data)) FROM history"
	                                       " WHERE rowid > ?2"
	                                     : "SELECT max(rowid), count(*), sum(durox_hdigest(?1, event_type,"
	                                       " instance_id, 0, 0, event_data)) FROM history WHERE rowid > ?2");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_pointer(st, 1, &h->hs, "durox_hist_state", NULL);
	sqlite3_bind_int64(st, 2, h->max_rowid);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*n = (uint64_t)sqlite3_column_int64(st, 1);
		if (*n > 0)
			h->max_rowid = sqlite3_column_int64(st, 0);
	}
	sq_done(st);
	if (h->hs.oom || h->hs.groups.oom)
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	return r == SQLITE_ROW ? DUROX_OK : sq_fail(s, r, "reading history");
}

static int remember_last(sqlite_store *s, hist_inc *h)
{
	free(h->last_id);
	h->last_id = NULL;
	if (h->rows == 0)
		return DUROX_OK;
	int found;
	int rc = row_identity(s, h->max_rowid, &found, &h->last_id, &h->last_len, &h->last_hash);
	if (rc == DUROX_OK && !found)
		h->valid = 0; /* deleted meanwhile: the next call reads everything */
	return rc;
}

/* Brings the persistent digest up to date: incrementally when it can, else from scratch.
 * When no other connection has committed since the last pass (PRAGMA data_version is
 * unchanged) and this one has written nothing, the digest is current as it is: no read at
 * all (counting 6M history rows alone costs 60 ms). */
static int hist_refresh(sqlite_store *s, unsigned want)
{
	hist_inc *h = s->hist;
	int rc;
	int64_t dv = 0;
	if ((rc = one_int(s, "PRAGMA data_version", "reading the data version", &dv, NULL)) != DUROX_OK)
		return rc;
	if (h != NULL && (h->acc.has & want) != want)
		h->valid = 0; /* it lacks a part: read everything again, with it */
	if (h != NULL && h->valid && dv == h->data_version && s->writes == h->own_writes)
		return DUROX_OK;
	if (h != NULL && h->valid) {
		/* one read transaction: the checks and the new rows see the same snapshot (unless the
		 * caller has one open already: then that one serves, and it is not ours to end) */
		int own = sqlite3_get_autocommit(s->db) && sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
		int same = 1, found = 0;
		char *key = NULL;
		size_t klen = 0;
		uint64_t hash = 0;
		uint64_t n = 0;
		int64_t total = 0;
		if (h->rows > 0) {
			rc = row_identity(s, h->max_rowid, &found, &key, &klen, &hash);
			same = rc == DUROX_OK && found && klen == h->last_len && memcmp(key, h->last_id, klen) == 0 &&
			       hash == h->last_hash;
			free(key);
		}
		if (same) {
			int64_t before = h->max_rowid;
			rc = hist_scan(s, h, &n);
			same = rc == DUROX_OK &&
			       one_int(s, "SELECT count(*) FROM history", "counting history", &total, NULL) ==
			               DUROX_OK &&
			       (uint64_t)total == h->rows + n;
			if (!same)
				h->max_rowid = before;
		}
		if (own)
			sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
		if (same) {
			h->rows += n;
			h->data_version = dv;
			h->own_writes = s->writes;
			return n > 0 ? remember_last(s, h) : DUROX_OK;
		}
		h->valid = 0;
	}
	if (h == NULL) {
		if ((h = calloc(1, sizeof *h)) == NULL)
			return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
		s->hist = h;
	}
	hist_inc_reset(h);
	h->hs.round_trips = (want & STORE_DIGEST_ROUND_TRIPS) != 0;
	h->acc.has = want & STORE_DIGEST_ROUND_TRIPS;
	uint64_t n;
	if ((rc = hist_scan(s, h, &n)) != DUROX_OK) {
		hist_inc_reset(h);
		return rc;
	}
	h->rows = n;
	h->valid = 1;
	h->data_version = dv;
	h->own_writes = s->writes;
	return remember_last(s, h);
}

static int sq_history_digest(store *base, unsigned want, store_history_digest *out)
{
	sqlite_store *s = (sqlite_store *)base;
	if (sqi_usable(s))
		return sqi_history_digest(s, out); /* it always has every part */
	memset(out, 0, sizeof *out);
	arena_init(&out->mem);
	int rc = hist_refresh(s, want);
	if (rc != DUROX_OK)
		return rc;
	hist_inc *h = s->hist;
	/* a copy of the counters and of the groups, sorted (the live groups keep their indices) */
	*out = h->acc;
	arena_init(&out->mem);
	out->groups = NULL;
	out->ngroups = 0;
	size_t ng = h->hs.groups.n;
	struct group_acc *sorted = malloc((ng ? ng : 1) * sizeof *sorted);
	out->groups = arena_calloc(&out->mem, ng ? ng : 1, sizeof *out->groups);
	if (sorted == NULL || out->groups == NULL) {
		free(sorted);
		store_history_digest_free(out);
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	}
	if (ng)
		memcpy(sorted, h->hs.groups.g, ng * sizeof *sorted);
	if (ng > 1)
		qsort(sorted, ng, sizeof *sorted, cmp_acc);
	for (size_t k = 0; k < ng; k++) {
		const char *name = arena_strdup(&out->mem, sorted[k].name);
		const char *version = sorted[k].version ? arena_strdup(&out->mem, sorted[k].version) : NULL;
		if (name == NULL || (sorted[k].version && version == NULL)) {
			free(sorted);
			store_history_digest_free(out);
			return store_fail(base, DUROX_ENOMEM, "out of memory");
		}
		out->groups[k] = (store_duration_group){name, version, sorted[k].dn, sorted[k].dsum};
	}
	out->ngroups = ng;
	free(sorted);
	return DUROX_OK;
}

/* ---- small helpers -------------------------------------------------------------------- */

/* Runs a one-row query and reads column 0 as int64 (NULL -> *isnull). */
static int one_int(sqlite_store *s, const char *sql, const char *what, int64_t *out, int *isnull)
{
	*out = 0;
	if (isnull)
		*isnull = 1;
	sqlite3_stmt *st = sq_stmt(s, sql);
	if (st == NULL)
		return sq_stmt_err(s);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*out = sqlite3_column_int64(st, 0);
		if (isnull)
			*isnull = 0;
	}
	sq_done(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? DUROX_OK : sq_fail(s, r, what);
}

static int table_exists(sqlite_store *s, const char *table, int *found)
{
	*found = 0;
	sqlite3_stmt *st = sq_stmt(s, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	*found = r == SQLITE_ROW;
	sq_done(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? DUROX_OK : sq_fail(s, r, "reading the schema");
}

static int sq_meta(store *base, store_meta *out)
{
	sqlite_store *s = (sqlite_store *)base;
	out->created_at = out->last_history_ts = out->newest_lock_at = DUROX_NO_TIME;
	int rc, found, isnull;
	int64_t v;
	if ((rc = table_exists(s, "_sqlx_migrations", &found)) != DUROX_OK)
		return rc;
	if (found) {
		if ((rc = one_int(s, "SELECT min(durox_ms(installed_on)) FROM _sqlx_migrations", "reading migrations",
		                  &v, &isnull)) != DUROX_OK)
			return rc;
		if (!isnull)
			out->created_at = v;
	}
	if (out->created_at == DUROX_NO_TIME) {
		/* a store made without migrations: its oldest instance (a full scan, rarely needed) */
		if ((rc = one_int(s, "SELECT min(durox_ms(created_at)) FROM instances", "reading instances", &v,
		                  &isnull)) != DUROX_OK)
			return rc;
		if (!isnull)
			out->created_at = v;
	}
	/* rowids grow with every insert, so the largest is the latest history row written */
	if ((rc = one_int(s, "SELECT durox_event_ts(event_data, created_at) FROM history ORDER BY rowid DESC LIMIT 1",
	                  "reading history", &v, &isnull)) != DUROX_OK)
		return rc;
	if (!isnull)
		out->last_history_ts = v;
	if ((rc = one_int(s, "SELECT max(durox_ms(locked_at)) FROM instance_locks", "reading instance locks", &v,
	                  &isnull)) != DUROX_OK)
		return rc;
	if (!isnull)
		out->newest_lock_at = v;
	return DUROX_OK;
}

static int sq_diagnostics(store *base, durox_provider_diagnostics *out)
{
	sqlite_store *s = (sqlite_store *)base;
	out->location = s->location;
	out->schema_version = s->base.info.schema_version;
	out->journal_mode = "";
	out->health_error = "";
	out->wal_size_bytes = -1;
	out->storage_size_bytes = -1;
	int64_t v;
	int rc = one_int(s, "SELECT count(*) FROM sqlite_master", "reading the schema", &v, NULL);
	out->connection_healthy = rc == DUROX_OK;
	if (rc != DUROX_OK)
		return rc;
	static const struct {
		const char *sql, *what;
		size_t off;
	} counts[] = {
	        {"SELECT count(*) FROM instances", "counting instances",
	         offsetof(durox_provider_diagnostics, total_instances_stored)},
	        {"SELECT count(*) FROM executions", "counting executions",
	         offsetof(durox_provider_diagnostics, total_executions_stored)},
	        {"SELECT count(*) FROM history", "counting history",
	         offsetof(durox_provider_diagnostics, total_history_events)},
	        {"SELECT count(*) FROM orchestrator_queue", "counting the orchestrator queue",
	         offsetof(durox_provider_diagnostics, orchestrator_queue_rows)},
	        {"SELECT count(*) FROM worker_queue", "counting the worker queue",
	         offsetof(durox_provider_diagnostics, worker_queue_rows)},
	};
	for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
		if ((rc = one_int(s, counts[k].sql, counts[k].what, &v, NULL)) != DUROX_OK)
			return rc;
		*(uint64_t *)(void *)((char *)out + counts[k].off) = (uint64_t)v;
	}
	if ((rc = one_int(s, "PRAGMA page_size", "reading the page size", &out->page_size, NULL)) != DUROX_OK ||
	    (rc = one_int(s, "PRAGMA page_count", "reading the page count", &out->page_count, NULL)) != DUROX_OK ||
	    (rc = one_int(s, "PRAGMA freelist_count", "reading the free list", &out->freelist_count, NULL)) != DUROX_OK)
		return rc;
	sqlite3_stmt *st = sq_stmt(s, "PRAGMA journal_mode");
	if (st == NULL)
		return sq_stmt_err(s);
	if (sqlite3_step(st) == SQLITE_ROW && sq_col_text(st, 0) != NULL) {
		strncpy(s->journal_mode, sq_col_text(st, 0), sizeof s->journal_mode - 1);
		s->journal_mode[sizeof s->journal_mode - 1] = '\0';
	}
	sq_done(st);
	out->journal_mode = s->journal_mode;
	if (strcmp(s->location, ":memory:") != 0) {
		out->storage_size_bytes = out->page_size * out->page_count;
		size_t n = strlen(s->location);
		char *wal = malloc(n + 5);
		if (wal != NULL) {
			memcpy(wal, s->location, n);
			memcpy(wal + n, "-wal", 5);
			struct stat sb;
			if (stat(wal, &sb) == 0) {
				out->wal_size_bytes = (int64_t)sb.st_size;
				out->storage_size_bytes += (int64_t)sb.st_size;
			}
			free(wal);
		}
	}
	out->read_calls = s->reads;
	out->write_calls = s->writes;
	out->average_read_latency_ms = s->reads ? s->read_ms / (double)s->reads : NAN;
	out->average_write_latency_ms = s->writes ? s->write_ms / (double)s->writes : NAN;
	out->max_read_latency_ms = s->max_read_ms;
	out->max_write_latency_ms = s->max_write_ms;
	return DUROX_OK;
}

/* ---- queues --------------------------------------------------------------------------- */

/* The state of every orchestrator_queue row (?1 = now, ?2 = stall ms, ?3 = timer overdue ms):
 * tm: a TimerFired item; pt: a pending timer; st: 0 free, 1 in progress (held by its
 * instance's live lock), 2 waiting (its instance is locked by a turn it is not part of);
 * orphan: no instance and no StartOrchestration queued for it. */
#define ORCH_ROWS(attempts)                                                                                            \
	"SELECT q.id AS id, q.instance_id AS instance_id, q.work_item AS work_item,"                                   \
	" durox_ms(q.visible_at) AS vis, durox_ms(q.created_at) AS created, " attempts " AS attempts,"                 \
	" q.lock_token AS token, l.locked_until AS lu,"                                                                \
	" substr(q.work_item,1,14)='{\"TimerFired\":' AS tm,"                                                          \
	" CASE WHEN l.instance_id IS NULL OR l.locked_until <= ?1 THEN 0 WHEN q.lock_token IS l.lock_token THEN 1"     \
	" ELSE 2 END AS st,"                                                                                           \
	" (NOT EXISTS (SELECT 1 FROM instances x WHERE x.instance_id=q.instance_id) AND NOT EXISTS (SELECT 1 FROM"     \
	" orchestrator_queue y WHERE y.instance_id=q.instance_id AND substr(y.work_item,1,22)="                        \
	"'{\"StartOrchestration\":')) AS orphan"                                                                       \
	" FROM orchestrator_queue q LEFT JOIN instance_locks l ON l.instance_id=q.instance_id"

#define WORKER_ROWS(attempts)                                                                                          \
	"SELECT w.id AS id, w.instance_id AS instance_id, w.work_item AS work_item,"                                   \
	" durox_ms(w.visible_at) AS vis, durox_ms(w.created_at) AS created, " attempts " AS attempts,"                 \
	" durox_ms(w.locked_until) AS lu,"                                                                             \
	" CASE WHEN w.lock_token IS NULL THEN 0 WHEN durox_ms(w.locked_until) > ?1 THEN 1 ELSE 3 END AS st"            \
	" FROM worker_queue w"

static int sq_queue_snapshot(store *base, const store_queue_params *p, store_queue_snapshot *out)
{
	sqlite_store *s = (sqlite_store *)base;
	memset(out, 0, sizeof *out);
	out->orchestrator.max_attempt_count = out->worker.max_attempt_count = -1;
	out->orchestrator_oldest_visible = out->worker_oldest_visible = DUROX_NO_TIME;
	out->oldest_timer_created = out->next_timer_at = DUROX_NO_TIME;
	int has_attempts = s->base.info.has_attempt_count;
	/* One pass, each row classified in C: no table of every row and its work item is built
	 * (the figures read every per-row value several times). Values that SQL leaves NULL
	 * (an unreadable time) compare false, as they would in SQL. */
	sqlite3_stmt *st = sq_stmt(s, has_attempts ? ORCH_ROWS("q.attempt_count") : ORCH_ROWS("0"));
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, p->now);
	int64_t now = p->now;
	durox_queue_detail *o = &out->orchestrator;
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		/* columns: id, instance_id, work_item, vis, created, attempts, token, lu, tm, st, orphan */
		int has_vis = sqlite3_column_type(st, 3) != SQLITE_NULL;
		int64_t vis = sqlite3_column_int64(st, 3);
		int has_created = sqlite3_column_type(st, 4) != SQLITE_NULL;
		int64_t created = sqlite3_column_int64(st, 4);
		int64_t attempts = sqlite3_column_int64(st, 5);
		int token_null = sqlite3_column_type(st, 6) == SQLITE_NULL;
		int tm = sqlite3_column_int(st, 8);
		int lk = sqlite3_column_int(st, 9);
		int orphan = sqlite3_column_int(st, 10);
		int visible = has_vis && vis <= now, future = has_vis && vis > now;
		int pt = tm && future;
		out->orchestrator_rows++;
		if (tm && !has_vis) {
			/* SQL: "pending timer" is unknown, so neither it nor its negation counts */
		} else if (pt) {
			out->pending_timers++;
			if (has_created &&
			    (out->oldest_timer_created == DUROX_NO_TIME || created < out->oldest_timer_created))
				out->oldest_timer_created = created;
			if (out->next_timer_at == DUROX_NO_TIME || vis < out->next_timer_at)
				out->next_timer_at = vis;
		} else {
			if (lk == 1)
				o->in_progress++;
			else if (lk == 2)
				o->waiting_on_lock++;
			else if (future)
				o->delayed++;
			else if (visible)
				o->available++;
			if (visible && (out->orchestrator_oldest_visible == DUROX_NO_TIME ||
			                vis < out->orchestrator_oldest_visible))
				out->orchestrator_oldest_visible = vis;
			if (lk == 0 && tm && has_vis && vis <= now - p->timer_overdue_ms)
				out->overdue_timers++;
		}
		if (!tm && lk == 0 && has_vis && vis <= now - p->stall_ms)
			o->stalled++;
		if (attempts >= (int64_t)p->near_poison)
			o->near_poison++;
		if (attempts >= (int64_t)p->max_attempts)
			o->at_poison_limit++;
		if (attempts > o->max_attempt_count)
			o->max_attempt_count = attempts;
		if (token_null)
			o->unlocked_rows++;
		else if (lk != 1)
			o->stale_lock_tokens++;
		if (orphan) {
			o->orphans++;
			const char *wi = sq_col_text(st, 2);
			if (visible && wi != NULL && strncmp(wi, "{\"QueueMessage\":", 16) != 0)
				o->orphans_blocking++;
		}
	}
	sq_done(st);
	if (r != SQLITE_DONE)
		return sq_fail(s, r, "reading the orchestrator queue");

	char sql[4096];
	snprintf(sql, sizeof sql,
	         "WITH c AS MATERIALIZED (%s) SELECT count(*), total(st=1), total(st=3), total(st<>1 AND vis > ?1),"
	         " total(st<>1 AND vis <= ?1), total(st<>1 AND max(vis, CASE WHEN st=3 THEN lu ELSE vis END) <= ?1 - "
	         "?2),"
	         " min(CASE WHEN vis <= ?1 THEN vis END), total(attempts >= ?4), total(attempts >= ?5), max(attempts),"
	         " total(st=0) FROM c",
	         has_attempts ? WORKER_ROWS("w.attempt_count") : WORKER_ROWS("0"));
	if ((st = sq_stmt(s, sql)) == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, p->now);
	sqlite3_bind_int64(st, 2, p->stall_ms);
	sqlite3_bind_int64(st, 4, p->near_poison);
	sqlite3_bind_int64(st, 5, p->max_attempts);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		durox_queue_detail *w = &out->worker;
		out->worker_rows = (uint64_t)sqlite3_column_int64(st, 0);
		w->in_progress = (uint64_t)sqlite3_column_int64(st, 1);
		w->expired_locks = (uint64_t)sqlite3_column_int64(st, 2);
		w->delayed = (uint64_t)sqlite3_column_int64(st, 3);
		w->available = (uint64_t)sqlite3_column_int64(st, 4);
		w->stalled = (uint64_t)sqlite3_column_int64(st, 5);
		out->worker_oldest_visible = sq_col_time(st, 6);
		w->near_poison = (uint64_t)sqlite3_column_int64(st, 7);
		w->at_poison_limit = (uint64_t)sqlite3_column_int64(st, 8);
		w->max_attempt_count = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 9);
		w->unlocked_rows = (uint64_t)sqlite3_column_int64(st, 10);
	}
	sq_done(st);
	if (r != SQLITE_ROW)
		return sq_fail(s, r, "reading the worker queue");

	st = sq_stmt(s, "SELECT count(*), total(durox_ms(locked_until) <= ?1), total(durox_ms(locked_until) <= ?1 - ?2)"
	                " FROM instance_locks");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, p->now);
	sqlite3_bind_int64(st, 2, p->stall_ms);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		out->instance_locks = (uint64_t)sqlite3_column_int64(st, 0);
		out->expired_instance_locks = (uint64_t)sqlite3_column_int64(st, 1);
		out->long_expired_instance_locks = (uint64_t)sqlite3_column_int64(st, 2);
		out->orchestrator.expired_locks = out->expired_instance_locks;
	}
	sq_done(st);
	return r == SQLITE_ROW ? DUROX_OK : sq_fail(s, r, "reading instance locks");
}

/* Orchestrator and worker rows that show a problem, with their instance. */
static int sq_problem_items(store *base, const store_queue_params *p, store_queue_item_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	int has_attempts = s->base.info.has_attempt_count;
	char sql[4096];
	/* flags: 1 poison risk, 2 expired lock, 4 overdue timer, 8 stalled, 16 orphan, 32 blocking */
	snprintf(sql, sizeof sql,
	         "WITH c AS (%s), f AS (SELECT c.*, (attempts >= ?4)"
	         " | (CASE WHEN st=0 AND lu IS NOT NULL AND lu <= ?1 - ?2 THEN 2 ELSE 0 END)"
	         " | (CASE WHEN tm AND st=0 AND vis <= ?1 - ?3 THEN 4 ELSE 0 END)"
	         " | (CASE WHEN NOT tm AND st=0 AND vis <= ?1 - ?2 THEN 8 ELSE 0 END)"
	         " | (CASE WHEN orphan THEN 16 ELSE 0 END)"
	         " | (CASE WHEN orphan AND vis <= ?1 AND substr(work_item,1,16) <> '{\"QueueMessage\":' THEN 32 ELSE 0 "
	         "END)"
	         " AS flags FROM c)"
	         " SELECT 0, f.id, f.instance_id, f.work_item, f.vis, f.lu, f.attempts, f.st, f.flags, f.created,"
	         " i.instance_id IS NOT NULL, e.status, i.orchestration_name,"
	         " EXISTS (SELECT 1 FROM orchestrator_queue y WHERE y.instance_id=f.instance_id AND"
	         " substr(y.work_item,1,22)='{\"StartOrchestration\":')"
	         " FROM f LEFT JOIN instances i ON i.instance_id=f.instance_id LEFT JOIN executions e ON"
	         " e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id WHERE f.flags <> 0"
	         " ORDER BY f.id",
	         has_attempts ? ORCH_ROWS("q.attempt_count") : ORCH_ROWS("0"));
	for (int q = 0; q < 2; q++) {
		if (q == 1)
			snprintf(
			        sql, sizeof sql,
			        "WITH c AS (%s), f AS (SELECT c.*, (attempts >= ?4)"
			        " | (CASE WHEN st=3 AND lu <= ?1 - ?2 THEN 2 ELSE 0 END)"
			        " | (CASE WHEN st<>1 AND max(vis, CASE WHEN st=3 THEN lu ELSE vis END) <= ?1 - ?2 THEN "
			        "8 ELSE 0 END)"
			        " AS flags FROM c)"
			        " SELECT 1, f.id, f.instance_id, f.work_item, f.vis, f.lu, f.attempts, f.st, f.flags, "
			        "f.created,"
			        " i.instance_id IS NOT NULL, e.status, i.orchestration_name, 0"
			        " FROM f LEFT JOIN instances i ON i.instance_id=f.instance_id LEFT JOIN executions e ON"
			        " e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id WHERE f.flags "
			        "<> 0"
			        " ORDER BY f.id",
			        has_attempts ? WORKER_ROWS("w.attempt_count") : WORKER_ROWS("0"));
		sqlite3_stmt *st = sq_stmt(s, sql);
		if (st == NULL)
			return sq_stmt_err(s);
		sqlite3_bind_int64(st, 1, p->now);
		sqlite3_bind_int64(st, 2, p->stall_ms);
		if (q == 0)
			sqlite3_bind_int64(st, 3, p->timer_overdue_ms);
		sqlite3_bind_int64(st, 4, p->near_poison);
		int r;
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			static const int lock_states[] = {LOCK_FREE, LOCK_IN_PROGRESS, LOCK_WAITING, LOCK_EXPIRED};
			int lk = sqlite3_column_int(st, 7);
			store_queue_item it = {
			        .flags = (unsigned)sqlite3_column_int(st, 8),
			        .created_at = sq_col_time(st, 9),
			        .worker = sqlite3_column_int(st, 0),
			        .id = sqlite3_column_int64(st, 1),
			        .instance_id = sq_col_text(st, 2),
			        .work_item = sq_col_text(st, 3),
			        .visible_at = sq_col_time(st, 4),
			        .locked_until = sq_col_time(st, 5),
			        .attempt_count = sqlite3_column_int64(st, 6),
			        .lock_state = lk >= 0 && lk <= 3 ? lock_states[lk] : LOCK_FREE,
			        .instance_exists = sqlite3_column_int(st, 10),
			        .status = sq_col_text(st, 11),
			        .orchestration_name = sq_col_text(st, 12),
			        .start_queued = sqlite3_column_int(st, 13),
			};
			if (it.instance_id == NULL)
				it.instance_id = "";
			if (it.work_item == NULL)
				it.work_item = "";
			int x = cb(ud, &it);
			if (x != 0) {
				sq_done(st);
				return x > 0 ? DUROX_OK : x;
			}
		}
		sq_done(st);
		if (r != SQLITE_DONE)
			return sq_fail(s, r, q ? "reading the worker queue" : "reading the orchestrator queue");
	}
	return DUROX_OK;
}

static int sq_expired_locks(store *base, int64_t before, store_lock_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = sq_stmt(s, "SELECT l.instance_id, durox_ms(l.locked_until), durox_ms(l.locked_at),"
	                              " e.status, i.orchestration_name FROM instance_locks l"
	                              " LEFT JOIN instances i ON i.instance_id=l.instance_id LEFT JOIN executions e ON"
	                              " e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id"
	                              " WHERE durox_ms(l.locked_until) <= ?1 ORDER BY l.instance_id");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, before);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		store_lock_row l = {sq_col_text(st, 0), sq_col_time(st, 1), sq_col_time(st, 2), sq_col_text(st, 3),
		                    sq_col_text(st, 4)};
		if (l.instance_id == NULL)
			continue;
		int x = cb(ud, &l);
		if (x != 0) {
			sq_done(st);
			return x > 0 ? DUROX_OK : x;
		}
	}
	sq_done(st);
	return r == SQLITE_DONE ? DUROX_OK : sq_fail(s, r, "reading instance locks");
}

static int sq_idle_running(store *base, int64_t older_than, store_idle_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	/* the candidates, sorted by id, drive an index walk of their history (one statement) */
	sqlite3_stmt *st = sq_stmt(
	        s,
	        "WITH c AS MATERIALIZED (SELECT i.instance_id AS id, i.orchestration_name AS name,"
	        " i.current_execution_id AS ex, (SELECT durox_event_ts(h.event_data, h.created_at) FROM history h WHERE"
	        " h.instance_id=i.instance_id AND h.execution_id=i.current_execution_id ORDER BY h.event_id DESC LIMIT "
	        "1)"
	        " AS last FROM executions e CROSS JOIN instances i ON i.instance_id=e.instance_id AND"
	        " i.current_execution_id=e.execution_id WHERE e.status='Running')"
	        " SELECT c.id, c.name, c.ex, c.last, h.execution_id, h.event_id, h.event_type, h.event_data,"
	        " durox_ms(h.created_at) FROM (SELECT * FROM c WHERE last < ?1 ORDER BY id) c CROSS JOIN history h"
	        " ON h.instance_id=c.id AND h.execution_id=c.ex");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, older_than);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		store_idle_row row = {sq_col_text(st, 0), sq_col_text(st, 1), (uint64_t)sqlite3_column_int64(st, 2),
		                      sqlite3_column_int64(st, 3)};
		store_event_row ev = {(uint64_t)sqlite3_column_int64(st, 4),
		                      (uint64_t)sqlite3_column_int64(st, 5),
		                      sq_col_text(st, 6),
		                      sq_col_text(st, 7),
		                      (size_t)sqlite3_column_bytes(st, 7),
		                      sq_col_time(st, 8)};
		if (row.instance_id == NULL)
			continue;
		if (ev.data == NULL) {
			ev.data = "";
			ev.data_len = 0;
		}
		int x = cb(ud, &row, &ev);
		if (x != 0) {
			sq_done(st);
			return x > 0 ? DUROX_OK : x;
		}
	}
	sq_done(st);
	return r == SQLITE_DONE ? DUROX_OK : sq_fail(s, r, "reading running instances");
}

/* ---- registration ------------------------------------------------------------------- */

/* From sqlite_analytics.c. */
int sq_query_instances(store *st, const store_group_query *q, store_group_cb cb, void *ud);
int sq_time_series(store *st, const store_series_query *q, durox_time_bucket *buckets, size_t n);
int sq_descendants(store *st, const char *root, uint32_t max_depth, uint32_t limit, store_node_cb cb, void *ud);
int sq_count_descendants(store *st, const char *root, uint64_t *out);
int sq_ancestors(store *st, const char *id, store_node_cb cb, void *ud);

const store_metrics_vtable sq_metrics_vtable = {
        sq_instance_digest, sq_history_digest,    sq_meta,         sq_diagnostics,     sq_queue_snapshot,
        sq_problem_items,   sq_expired_locks,     sq_idle_running, sq_query_instances, sq_time_series,
        sq_descendants,     sq_count_descendants, sq_ancestors,
};

void sq_metrics_attach(sqlite_store *s)
{
	/* the digest functions take a state pointer (sqlite3_bind_pointer): direct use only */
	sqlite3_create_function(s->db, "durox_igroup", 4, SQLITE_UTF8 | SQLITE_DIRECTONLY, NULL, fn_igroup, NULL, NULL);
	sqlite3_create_function(s->db, "durox_hdigest", 6, SQLITE_UTF8 | SQLITE_DIRECTONLY, NULL, fn_hdigest, NULL,
	                        NULL);
	sqlite3_trace_v2(s->db, SQLITE_TRACE_STMT | SQLITE_TRACE_PROFILE, trace_cb, s);
}
