/*
 * sqlite_feed.c - the SQLite provider's change feed (store/provider_feed.h). history is a
 * rowid table and the runtime is its only writer, so rowid order is commit order: a position
 * is the rowid of the last row read plus a guard (that row's instance, execution and event
 * ids and a hash of its JSON) and the number of rows at or before it. The gate is PRAGMA
 * data_version (it changes only when another connection commits) and the file's identity
 * (a replaced file is reopened). Facts behind it: shared/reference/streams.md.
 * Used by the engine (src/engine/feed.c, stream.c) and by the visibility index.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/provider_feed.h"
#include "store/sqlite_internal.h"
#include "util/codec.h"

#define DEFAULT_LIMIT 500
#define MAX_LIMIT 100000
#define DEFAULT_MAX_BYTES ((size_t)8 << 20)
#define ID_INLINE_MAX 900 /* longer instance ids are kept in a position as their hash */
/* A deletion check may take at most this share of wall time (its interval stretches with
 * its cost: a count of a 5M-row history costs 5-50 ms). */
#define VERIFY_COST_FACTOR 50

#define POS_TAG 'S'
#define POS_VERSION 1
#define POS_GUARD 1
#define POS_HASH 2
#define POS_ID_HASHED 4

typedef struct feed_pos {
	int64_t rowid;  /* the last row read; 0 before the first row */
	uint64_t count; /* rows with rowid <= rowid when the position was taken */
	int flags;      /* POS_* */
	uint64_t exec, event, hash;
	size_t id_len;
	char id[ID_INLINE_MAX]; /* instance id, or its 8-byte hash with POS_ID_HASHED */
} feed_pos;

struct store_feed {
	sqlite_store *s;
	feed_pos pos;
	/* the gate: the last round reached the end at this data version */
	int gate_valid;
	int64_t gate_dv;
	uint64_t seen_deletes; /* s->own_deletes at the last round */
	uint64_t seen_reopens; /* s->reopens when the position was last checked */
	int verify_now;        /* the position came from outside: check it for deletions */
	int64_t last_verify_ms;
	int64_t verify_cost_ms;
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- positions ------------------------------------------------------------------- */

/* Sets the guard of p from a row's key (data may be NULL: no hash). */
static void pos_set_guard(feed_pos *p, const char *id, size_t id_len, uint64_t exec, uint64_t event, const void *data,
                          size_t data_len)
{
	p->flags = POS_GUARD;
	p->exec = exec;
	p->event = event;
	if (id_len <= ID_INLINE_MAX) {
		memcpy(p->id, id, id_len);
		p->id_len = id_len;
	} else {
		uint64_t h = fnv1a64(FNV1A64_INIT, id, id_len);
		memcpy(p->id, &h, sizeof h);
		p->id_len = sizeof h;
		p->flags |= POS_ID_HASHED;
	}
	p->hash = 0;
	if (data != NULL) {
		p->hash = fnv1a64(FNV1A64_INIT, data, data_len);
		p->flags |= POS_HASH;
	}
}

/* Whether a row's key (and data, when both sides have it) is the guard's row. */
static int pos_matches(const feed_pos *p, const char *id, size_t id_len, uint64_t exec, uint64_t event,
                       const void *data, size_t data_len)
{
	if (exec != p->exec || event != p->event)
		return 0;
	if (p->flags & POS_ID_HASHED) {
		uint64_t h = fnv1a64(FNV1A64_INIT, id, id_len);
		if (id_len <= ID_INLINE_MAX || memcmp(p->id, &h, sizeof h) != 0)
			return 0;
	} else if (id_len != p->id_len || memcmp(p->id, id, id_len) != 0) {
		return 0;
	}
	if ((p->flags & POS_HASH) && data != NULL && fnv1a64(FNV1A64_INIT, data, data_len) != p->hash)
		return 0;
	return 1;
}

static void put_u64(unsigned char *o, size_t *n, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		o[(*n)++] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static size_t pos_encode(const feed_pos *p, unsigned char *o)
{
	size_t n = 0;
	o[n++] = POS_TAG;
	o[n++] = POS_VERSION;
	o[n++] = (unsigned char)p->flags;
	put_u64(o, &n, (uint64_t)p->rowid);
	put_u64(o, &n, p->count);
	if (p->flags & POS_GUARD) {
		put_u64(o, &n, p->exec);
		put_u64(o, &n, p->event);
		if (p->flags & POS_HASH)
			put_u64(o, &n, p->hash);
		o[n++] = (unsigned char)(p->id_len & 0xFF);
		o[n++] = (unsigned char)(p->id_len >> 8);
		memcpy(o + n, p->id, p->id_len);
		n += p->id_len;
	}
	return n;
}

static int pos_decode(feed_pos *p, const unsigned char *b, size_t len)
{
	memset(p, 0, sizeof *p);
	if (len < 19 || b[0] != POS_TAG || b[1] != POS_VERSION || (b[2] & ~7) != 0)
		return -1;
	p->flags = b[2];
	p->rowid = (int64_t)get_u64(b + 3);
	p->count = get_u64(b + 11);
	size_t n = 19;
	if (!(p->flags & POS_GUARD))
		return n == len && p->flags == 0 && p->rowid == 0 && p->count == 0 ? 0 : -1;
	size_t need = n + 16 + ((p->flags & POS_HASH) ? 8 : 0) + 2;
	if (len < need)
		return -1;
	p->exec = get_u64(b + n);
	p->event = get_u64(b + n + 8);
	n += 16;
	if (p->flags & POS_HASH) {
		p->hash = get_u64(b + n);
		n += 8;
	}
	p->id_len = (size_t)b[n] | (size_t)b[n + 1] << 8;
	n += 2;
	if (p->id_len > ID_INLINE_MAX || len != n + p->id_len || ((p->flags & POS_ID_HASHED) && p->id_len != 8) ||
	    p->rowid <= 0 || p->count == 0)
		return -1;
	memcpy(p->id, b + n, p->id_len);
	return 0;
}

/* ---- small queries -------------------------------------------------------------------- */

static int count_rows(sqlite_store *s, int64_t after, int all, uint64_t *out)
{
	sqlite3_stmt *st =
	        sq_stmt(s, all ? "SELECT count(*) FROM history" : "SELECT count(*) FROM history WHERE rowid>?1");
	if (st == NULL)
		return sq_stmt_err(s);
	if (!all)
		sqlite3_bind_int64(st, 1, after);
	int r = sqlite3_step(st);
	*out = r == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	sq_done(st);
	return r == SQLITE_ROW ? DUROX_OK : sq_fail(s, r, "counting history");
}

/* Positions p after the newest row (inside the caller's read transaction, if any). */
static int pos_at_end(sqlite_store *s, feed_pos *p)
{
	memset(p, 0, sizeof *p);
	sqlite3_stmt *st = sq_stmt(s, "SELECT rowid, instance_id, execution_id, event_id, event_data FROM history"
	                              " ORDER BY rowid DESC LIMIT 1");
	if (st == NULL)
		return sq_stmt_err(s);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		p->rowid = sqlite3_column_int64(st, 0);
		const char *id = (const char *)sqlite3_column_blob(st, 1);
		size_t id_len = (size_t)sqlite3_column_bytes(st, 1);
		const void *data = sqlite3_column_blob(st, 4);
		size_t dlen = (size_t)sqlite3_column_bytes(st, 4);
		pos_set_guard(p, id ? id : "", id ? id_len : 0, (uint64_t)sqlite3_column_int64(st, 2),
		              (uint64_t)sqlite3_column_int64(st, 3), data ? data : "", dlen);
	}
	sq_done(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return sq_fail(s, r, "reading history");
	if (r == SQLITE_DONE)
		return DUROX_OK;
	return count_rows(s, 0, 1, &p->count);
}

/* Checks the guard row of p: *ok = 1 when the row at p->rowid is the one read last;
 * otherwise why is set. */
static int check_guard(sqlite_store *s, const feed_pos *p, int *ok, char *why, size_t whylen)
{
	*ok = 1;
	if (!(p->flags & POS_GUARD))
		return DUROX_OK;
	sqlite3_stmt *st =
	        sq_stmt(s, "SELECT instance_id, execution_id, event_id, event_data FROM history WHERE rowid=?1");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, p->rowid);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_blob(st, 0);
		size_t id_len = (size_t)sqlite3_column_bytes(st, 0);
		const void *data = sqlite3_column_blob(st, 3);
		size_t dlen = (size_t)sqlite3_column_bytes(st, 3);
		if (!pos_matches(p, id ? id : "", id ? id_len : 0, (uint64_t)sqlite3_column_int64(st, 1),
		                 (uint64_t)sqlite3_column_int64(st, 2), data ? data : "", dlen)) {
			*ok = 0;
			snprintf(why, whylen,
			         "the last history row read (rowid %lld) now holds another event (rowid reuse or "
			         "VACUUM)",
			         (long long)p->rowid);
		}
	} else if (r == SQLITE_DONE) {
		*ok = 0;
		snprintf(why, whylen, "the last history row read (rowid %lld) is gone (deleted, or VACUUM)",
		         (long long)p->rowid);
	}
	sq_done(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? DUROX_OK : sq_fail(s, r, "reading history");
}

static int run_simple(sqlite_store *s, const char *sql)
{
	sqlite3_stmt *st = sq_stmt(s, sql);
	if (st == NULL)
		return sq_stmt_err(s);
	int r = sqlite3_step(st);
	sq_done(st);
	return r == SQLITE_DONE ? DUROX_OK : sq_fail(s, r, "reading the change feed");
}

static int data_version(sqlite_store *s, int64_t *dv)
{
	sqlite3_stmt *st = sq_stmt(s, "PRAGMA data_version");
	if (st == NULL)
		return sq_stmt_err(s);
	int r = sqlite3_step(st);
	*dv = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sq_done(st);
	return r == SQLITE_ROW ? DUROX_OK : sq_fail(s, r, "reading the data version");
}

/* ---- the vtable ---------------------------------------------------------------------------- */

static int feed_open(store *base, store_feed **out)
{
	*out = NULL;
	store_feed *f = calloc(1, sizeof *f);
	if (f == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	f->s = (sqlite_store *)base;
	f->seen_deletes = f->s->own_deletes;
	f->seen_reopens = f->s->reopens;
	*out = f;
	return DUROX_OK;
}

static void feed_close(store_feed *f) { free(f); }

static int feed_seek(store_feed *f, int at_end)
{
	f->gate_valid = 0;
	f->verify_now = 0;
	f->seen_deletes = f->s->own_deletes;
	f->seen_reopens = f->s->reopens;
	if (!at_end) {
		memset(&f->pos, 0, sizeof f->pos);
		return DUROX_OK;
	}
	if (f->s->db == NULL)
		return store_fail(&f->s->base, DUROX_EIO, "the store connection is closed");
	sqlite_store *s = f->s;
	int own = sqlite3_get_autocommit(s->db);
	int rc = own ? run_simple(s, "BEGIN") : DUROX_OK;
	if (rc != DUROX_OK)
		return rc;
	feed_pos p;
	rc = pos_at_end(s, &p);
	if (own)
		run_simple(s, "COMMIT");
	if (rc == DUROX_OK)
		f->pos = p;
	return rc;
}

static int feed_restore(store_feed *f, const void *pos, size_t len)
{
	feed_pos p;
	if (pos_decode(&p, pos, len) != 0)
		return store_fail(&f->s->base, DUROX_EINVALID, "not a position of the SQLite change feed");
	f->pos = p;
	f->gate_valid = 0;
	f->verify_now = p.rowid > 0;
	f->seen_deletes = f->s->own_deletes;
	f->seen_reopens = f->s->reopens;
	return DUROX_OK;
}

static int feed_save(store_feed *f, unsigned char *out, size_t *len)
{
	*len = pos_encode(&f->pos, out);
	return DUROX_OK;
}

/* The reading part of a round, inside one read transaction. */
static int read_round(store_feed *f, const store_feed_request *rq, int64_t now, store_feed_cb cb, void *ud,
                      store_feed_result *res)
{
	sqlite_store *s = f->s;
	int ok = 1;
	int rc = check_guard(s, &f->pos, &ok, res->reason, sizeof res->reason);
	if (rc != DUROX_OK)
		return rc;
	int due = f->verify_now || s->own_deletes != f->seen_deletes;
	if (!due && rq->verify_ms >= 0) {
		int64_t every = rq->verify_ms;
		if (every < f->verify_cost_ms * VERIFY_COST_FACTOR)
			every = f->verify_cost_ms * VERIFY_COST_FACTOR;
		due = f->last_verify_ms == 0 || now - f->last_verify_ms >= every;
	}
	if (ok && due && f->pos.rowid > 0) {
		int64_t t0 = mono_us();
		uint64_t total = 0, after = 0;
		if ((rc = count_rows(s, 0, 1, &total)) != DUROX_OK || (rc = count_rows(s, f->pos.rowid, 0, &after)))
			return rc;
		f->verify_cost_ms = (mono_us() - t0) / 1000;
		f->last_verify_ms = now;
		f->verify_now = 0;
		res->verified = 1;
		uint64_t before = total - after; /* rows at or before the position now */
		if (before < f->pos.count) {
			res->reset = STORE_FEED_RESET_DELETED;
			snprintf(res->reason, sizeof res->reason,
			         "%llu history rows at or before the position were deleted (a purge or prune)",
			         (unsigned long long)(f->pos.count - before));
			f->pos.count = before;
			return DUROX_OK;
		}
		if (before > f->pos.count) {
			ok = 0;
			snprintf(res->reason, sizeof res->reason,
			         "%llu history rows appeared at or before the position (rowids reused)",
			         (unsigned long long)(before - f->pos.count));
		}
	} else if (ok && due) {
		f->verify_now = 0;
		f->last_verify_ms = now;
	}
	if (!ok) {
		res->reset = STORE_FEED_RESET_LOST;
		return pos_at_end(s, &f->pos);
	}
	uint32_t limit = rq->limit == 0 ? DEFAULT_LIMIT : rq->limit > MAX_LIMIT ? MAX_LIMIT : rq->limit;
	size_t max_bytes = rq->max_bytes == 0 ? DEFAULT_MAX_BYTES : rq->max_bytes;
	sqlite3_stmt *st = sq_stmt(s, rq->with_data ? "SELECT rowid, instance_id, execution_id, event_id, event_type,"
	                                              " event_data, durox_ms(created_at) FROM history WHERE rowid>?1"
	                                              " ORDER BY rowid LIMIT ?2"
	                                            : "SELECT rowid, instance_id, execution_id, event_id, event_type,"
	                                              " NULL, durox_ms(created_at) FROM history WHERE rowid>?1"
	                                              " ORDER BY rowid LIMIT ?2");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, f->pos.rowid);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)limit + 1);
	feed_pos start = f->pos;
	size_t bytes = 0;
	unsigned char enc[STORE_FEED_POS_MAX];
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (res->rows == limit || (res->rows > 0 && bytes >= max_bytes)) {
			res->more = 1;
			break;
		}
		store_feed_row row;
		row.instance_id = sq_col_text(st, 1);
		size_t id_len = (size_t)sqlite3_column_bytes(st, 1);
		row.execution_id = (uint64_t)sqlite3_column_int64(st, 2);
		row.event_id = (uint64_t)sqlite3_column_int64(st, 3);
		row.event_type = sq_col_text(st, 4);
		row.data = rq->with_data ? sq_col_text(st, 5) : NULL;
		row.data_len = rq->with_data ? (size_t)sqlite3_column_bytes(st, 5) : 0;
		row.created_at = sq_col_time(st, 6);
		if (row.instance_id == NULL)
			row.instance_id = "";
		if (row.event_type == NULL)
			row.event_type = "";
		if (rq->with_data && row.data == NULL) {
			row.data = "";
			row.data_len = 0;
		}
		f->pos.rowid = sqlite3_column_int64(st, 0);
		f->pos.count++;
		pos_set_guard(&f->pos, row.instance_id, id_len, row.execution_id, row.event_id, row.data, row.data_len);
		row.pos = enc;
		row.pos_len = pos_encode(&f->pos, enc);
		bytes += row.data_len;
		res->rows++;
		int c = cb(ud, &row);
		if (c < 0) {
			sq_done(st);
			f->pos = start;
			res->rows = 0;
			return c;
		}
		if (c > 0) {
			res->more = 1;
			break;
		}
	}
	sq_done(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		f->pos = start;
		res->rows = 0;
		return sq_fail(s, r, "reading history");
	}
	/* without payloads the rows carried no hash: give the position that ends the round one */
	if (!rq->with_data && res->rows > 0) {
		sqlite3_stmt *h = sq_stmt(s, "SELECT event_data FROM history WHERE rowid=?1");
		if (h == NULL)
			return sq_stmt_err(s);
		sqlite3_bind_int64(h, 1, f->pos.rowid);
		if (sqlite3_step(h) == SQLITE_ROW) {
			const void *d = sqlite3_column_blob(h, 0);
			f->pos.hash = fnv1a64(FNV1A64_INIT, d ? d : "", (size_t)sqlite3_column_bytes(h, 0));
			f->pos.flags |= POS_HASH;
		}
		sq_done(h);
	}
	return DUROX_OK;
}

static int feed_poll(store_feed *f, const store_feed_request *rq, store_feed_cb cb, void *ud, store_feed_result *res)
{
	memset(res, 0, sizeof *res);
	sqlite_store *s = f->s;
	int64_t now = rq->now_ms > 0 ? rq->now_ms : wall_ms();
	int rc;
	/* the file: a store replaced under the connection would look idle forever */
	if (!s->memory) {
		uint64_t dev, ino;
		if (sq_file_identity(s, &dev, &ino) == 0 && (dev != s->file_dev || ino != s->file_ino)) {
			if ((rc = sq_reopen(s)) != DUROX_OK)
				return rc;
		}
	}
	if (s->db == NULL)
		return store_fail(&s->base, DUROX_EIO, "the store connection is closed");
	if (s->reopens != f->seen_reopens) {
		f->seen_reopens = s->reopens;
		if ((rc = feed_seek(f, 1)) != DUROX_OK)
			return rc;
		res->reset = STORE_FEED_RESET_LOST;
		snprintf(res->reason, sizeof res->reason, "the store file %s was replaced", s->location);
		return DUROX_OK;
	}
	int64_t dv = 0;
	if ((rc = data_version(s, &dv)) != DUROX_OK)
		return rc;
	if (f->gate_valid && dv == f->gate_dv && s->own_deletes == f->seen_deletes && !f->verify_now) {
		res->idle = 1;
		return DUROX_OK;
	}
	int own = sqlite3_get_autocommit(s->db);
	if (own && (rc = run_simple(s, "BEGIN")) != DUROX_OK)
		return rc;
	uint64_t deletes = s->own_deletes;
	rc = read_round(f, rq, now, cb, ud, res);
	if (own)
		run_simple(s, "COMMIT");
	if (rc != DUROX_OK) {
		f->gate_valid = 0;
		return rc;
	}
	f->seen_deletes = deletes;
	f->gate_valid = !res->more && res->reset == STORE_FEED_RESET_NONE;
	f->gate_dv = dv;
	return DUROX_OK;
}

static int feed_vouch(store_feed *f, int64_t verified_at_ms)
{
	f->verify_now = 0;
	f->last_verify_ms = verified_at_ms > 0 ? verified_at_ms : 1;
	return DUROX_OK;
}

const store_feed_vtable sq_feed_vtable = {feed_open, feed_close, feed_seek, feed_restore,
                                          feed_save, feed_poll,  feed_vouch};
