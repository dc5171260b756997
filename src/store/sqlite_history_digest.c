/*
 * sqlite_history_digest.c - the SQLite provider's history digest: every history row read
 * once by the SQL function durox_hdigest, which counts events by type, pairs activity
 * schedules with their results and instance starts with their ends (for durations), kept on
 * the connection and brought up to date incrementally by rowid while the rows already read
 * stay unchanged. The counting itself is the providers' shared accumulator (digest.c). When
 * the visibility index is ready it answers instead (sqlite_index_read.c). Used by the
 * engine's metrics through sq_metrics_vtable.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store/digest.h"
#include "store/format.h"
#include "store/sqlite_index.h"
#include "store/sqlite_metrics_internal.h"

/* durox_hdigest(state, event_type, instance_id, execution_id, event_id, event_data): counts
 * one history row into the digest accumulator (digest.c). Rows arrive in rowid (= insertion)
 * order, and Duroxide appends an instance's events in order. */
void sq_fn_hdigest(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	dg_acc *a = sqlite3_value_pointer(argv[0], "durox_dg_acc");
	if (a == NULL) {
		sqlite3_result_error(ctx, "durox_hdigest: no state", -1);
		return;
	}
	sqlite3_result_int(ctx, 0);
	const char *type = (const char *)sqlite3_value_blob(argv[1]);
	int t = dg_event_type(type, (size_t)sqlite3_value_bytes(argv[1]));
	const char *data = (const char *)sqlite3_value_blob(argv[5]);
	if (dg_add(a, t, (const char *)sqlite3_value_blob(argv[2]), (size_t)sqlite3_value_bytes(argv[2]),
	           sqlite3_value_int64(argv[3]), sqlite3_value_int64(argv[4]), data,
	           (size_t)sqlite3_value_bytes(argv[5])) != 0)
		sqlite3_result_error_nomem(ctx);
}

/* The history digest persists on the connection between calls: the next call reads only the
 * rows added since (rowid > the last one read), when the store shows that nothing was
 * deleted: the row count is what was read plus the new rows, and the last row read is still
 * the same row. Otherwise (a purge, a prune) it reads everything again. Rows are never
 * updated by the runtime, so this gives exactly what a full pass gives. */
struct hist_inc {
	dg_acc acc;        /* the counters, the pairing maps and the groups (digest.c) */
	int64_t max_rowid; /* the last row read */
	uint64_t rows;     /* rows read in all */
	char *last_id;     /* identity of the last row: its key and a hash of its data */
	size_t last_len;
	uint64_t last_hash;
	int valid;
	int64_t data_version; /* PRAGMA data_version at the last pass */
	uint64_t own_writes;  /* this connection's write statements at the last pass */
};

static void hist_inc_reset(hist_inc *h)
{
	dg_free(&h->acc);
	free(h->last_id);
	memset(h, 0, sizeof *h);
	dg_init(&h->acc);
	h->max_rowid = INT64_MIN;
}

void sq_hist_free(sqlite_store *s)
{
	if (s->hist != NULL) {
		dg_free(&s->hist->acc);
		free(s->hist->last_id);
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
		size_t n = dg_activity_key(kbuf, sizeof kbuf, inst ? inst : "", inst ? ilen : 0,
		                           sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2));
		if (n == 0) { /* a very long id: its hash stands for it */
			uint64_t hid = fnv64(inst, ilen);
			n = dg_activity_key(kbuf, sizeof kbuf, (const char *)&hid, sizeof hid,
			                    sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2));
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
	        sq_stmt(s, h->acc.no_round_trips ? "SELECT max(rowid), count(*), sum(durox_hdigest(?1, event_type,"
	                                           " instance_id, 0, 0, event_data)) FROM history WHERE rowid > ?2"
	                                         : "SELECT max(rowid), count(*), sum(durox_hdigest(?1, event_type,"
	                                           " instance_id, execution_id, event_id, event_data)) FROM history"
	                                           " WHERE rowid > ?2");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_pointer(st, 1, &h->acc, "durox_dg_acc", NULL);
	sqlite3_bind_int64(st, 2, h->max_rowid);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*n = (uint64_t)sqlite3_column_int64(st, 1);
		if (*n > 0)
			h->max_rowid = sqlite3_column_int64(st, 0);
	}
	sq_done(st);
	if (h->acc.oom)
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
	if (h != NULL && h->acc.no_round_trips && (want & STORE_DIGEST_ROUND_TRIPS))
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
	h->acc.no_round_trips = (want & STORE_DIGEST_ROUND_TRIPS) == 0;
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
	if (dg_finish(&s->hist->acc, out) != DUROX_OK) {
		memset(out, 0, sizeof *out);
		arena_init(&out->mem);
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	}
	return DUROX_OK;
}
