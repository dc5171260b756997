/*
 * sqlite_history_digest.c - the SQLite provider's history digest: every history row read
 * once by the SQL function durox_hdigest, which counts events by type, pairs activity
 * schedules with their results and instance starts with their ends (for durations), kept on
 * the connection and brought up to date incrementally by rowid while the rows already read
 * stay unchanged. Fields are found inside the event JSON without parsing it, by the reader the
 * visibility index shares (sq_event_facts_read), so both count the same. When the index is
 * ready it answers instead (sqlite_index_read.c). Relies on sqlite_groups.c and util/hmap;
 * used by the engine's metrics through sq_metrics_vtable.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store/format.h"
#include "store/sqlite_index.h"
#include "store/sqlite_metrics_internal.h"

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

typedef struct hist_state {
	store_history_digest *d;
	group_set groups;
	hmap pending;              /* "<instance>\0<execution>\0<event id>" of ActivityScheduled -> a = ts */
	hmap started;              /* instance id -> a = first start ts, b = group of the latest start */
	signed char by_len[40][4]; /* sq_types_by_length */
	int round_trips;           /* pair activity results with their schedules (STORE_DIGEST_ROUND_TRIPS) */
	int oom;
} hist_state;

/* Candidates for the counted type of an event_type value by its length: the type is then
 * found with at most four comparisons (this runs for every history row). */
void sq_types_by_length(signed char by_len[40][4])
{
	memset(by_len, -1, 40 * 4);
	for (int k = 0; k < EV__COUNT; k++) {
		size_t len = strlen(store_event_type_names[k]);
		for (int j = 0; j < 4; j++)
			if (by_len[len][j] < 0) {
				by_len[len][j] = (signed char)k;
				break;
			}
	}
}

int sq_event_type(signed char by_len[40][4], const char *t, size_t n)
{
	if (n >= 40)
		return -1;
	for (int j = 0; j < 4 && by_len[n][j] >= 0; j++)
		if (memcmp(store_event_type_names[by_len[n][j]], t, n) == 0)
			return by_len[n][j];
	return -1;
}

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
void sq_fn_hdigest(sqlite3_context *ctx, int argc, sqlite3_value **argv)
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
	int t = type != NULL ? sq_event_type(hs->by_len, type, (size_t)sqlite3_value_bytes(argv[1])) : -1;
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
		int64_t gi = sq_group_of(&hs->groups, f.name, f.nlen, f.version, f.vlen);
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
	sq_groups_free(&h->hs.groups);
	hmap_free(&h->hs.pending);
	hmap_free(&h->hs.started);
	arena_release(&h->mem);
	free(h->last_id);
	memset(h, 0, sizeof *h);
	arena_init(&h->mem);
	h->hs.d = &h->acc;
	sq_groups_init(&h->hs.groups, &h->mem);
	hmap_init(&h->hs.pending);
	hmap_init(&h->hs.started);
	sq_types_by_length(h->hs.by_len);
	h->max_rowid = INT64_MIN;
}

void sq_hist_free(sqlite_store *s)
{
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
	if ((rc = sq_one_int(s, "PRAGMA data_version", "reading the data version", &dv, NULL)) != DUROX_OK)
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
			       sq_one_int(s, "SELECT count(*) FROM history", "counting history", &total, NULL) ==
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

int sq_history_digest(store *base, unsigned want, store_history_digest *out)
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
		qsort(sorted, ng, sizeof *sorted, sq_group_cmp);
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
