/*
 * postgres_feed.c - the PostgreSQL provider's change feed (store/provider_feed.h), from
 * transaction ids, without touching the runtime's tables (shared/reference/streams.md).
 * No column orders commits, so a position is a snapshot S (pg_current_snapshot()): a row is
 * "newer than S" when the transaction that wrote it (xmin) had not committed when S was
 * taken: xmin at or after S.xmax, or in S's in-progress list. A round takes a new snapshot R
 * and delivers exactly the history rows newer than the previous S and not newer than R,
 * grouped by instance and in (instance, execution, event) order; every ack of the runtime
 * writes a new version of its instance's row, so the changed instances are those whose row
 * is newer than S (a scan of `instances`), and their history is read by primary key. A round
 * that does not fit one poll continues in the next one from the last row's key. The gate: no
 * transaction ended between S and R (R's xmax and in-progress list against S's) means nothing
 * was committed; transactions of our own that wrote only duroxlua's tables (the index saving
 * this position: pg_feed_own_xact) are kept with the position and do not count, so a fresh
 * process on an idle store finds the gate closed too.
 * Deleted rows are found by counting the rows not newer than S (at most every verify_ms).
 * A store whose tables were re-created (other oids) or whose transaction ids went backwards
 * (a restored backup) resets "lost". Used through pg_feed_vtable (postgres.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/postgres_internal.h"
#include "store/provider_feed.h"

#define DEFAULT_LIMIT 500
#define MAX_LIMIT 100000
#define DEFAULT_MAX_BYTES ((size_t)8 << 20)
#define INSTANCES_PER_POLL 200
#define VERIFY_COST_FACTOR 50
#define SNAP_MAX 1000 /* a snapshot's text: about 60 transactions in progress at once */
#define KEY_MAX 900   /* instance ids in a position */

#define POS_TAG 'P'
#define POS_VERSION 2 /* 1: without the own transactions */
#define OWN_MAX 8
#define XIP_MAX 128 /* in-progress xids of one snapshot (its text is at most SNAP_MAX) */

/* A snapshot: xmin, xmax (64-bit) and the in-progress list. */
typedef struct snap {
	int set; /* 0: "before everything" (every row is newer) */
	uint64_t xmin, xmax;
	char text[SNAP_MAX]; /* as pg_current_snapshot()::text gives it, for equality */
} snap;

typedef struct feed_pos {
	snap prev;                /* S: the rows not newer than it were delivered */
	snap round;               /* R of the round in progress (set = 0: none) */
	char scan_after[KEY_MAX]; /* the round's instances after this id are still to scan ("" and */
	int scan_started;         /* scan_started 0: from the first) */
	char last_id[KEY_MAX];    /* the last row delivered in the round (has_last) */
	int has_last;
	uint64_t last_exec, last_event;
	uint64_t count;              /* history rows not newer than prev when it was taken */
	uint64_t delivered;          /* rows delivered so far in the round */
	uint32_t hist_oid, inst_oid; /* the runtime's tables, to notice re-created ones */
	uint64_t own[OWN_MAX];       /* our own transactions that wrote no runtime rows (full xids) */
	int n_own;
} feed_pos;

struct store_feed {
	pg_store *s;
	feed_pos pos;
	int gate_valid; /* no round in progress and prev is the snapshot the last round ended at */
	int verify_now;
	int64_t last_verify_ms, verify_cost_ms;
	uint32_t hist_oid, inst_oid; /* as the store has them now */
	uint64_t seen_deletes;       /* s->own_deletes at the last round */
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

/* Parses "xmin:xmax:xip,..." into sn. -1 when malformed or too long to keep. */
static int snap_parse(snap *sn, const char *t)
{
	memset(sn, 0, sizeof *sn);
	if (t == NULL || strlen(t) >= SNAP_MAX)
		return -1;
	char *end;
	sn->xmin = strtoull(t, &end, 10);
	if (*end != ':')
		return -1;
	sn->xmax = strtoull(end + 1, &end, 10);
	if (*end != ':' || sn->xmax < sn->xmin)
		return -1;
	for (const char *p = end + 1; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == ','))
			return -1;
	snprintf(sn->text, sizeof sn->text, "%s", t);
	sn->set = 1;
	return 0;
}

/* The in-progress list of sn as 32-bit xids in an array literal ("{1,2}", "{}" when none); into b. */
static void snap_xip32(const snap *sn, char *b, size_t cap)
{
	const char *p = strchr(strchr(sn->text, ':') + 1, ':') + 1;
	size_t n = 0;
	b[n++] = '{';
	while (*p && n + 24 < cap) {
		char *end;
		uint64_t x = strtoull(p, &end, 10);
		if (end == p)
			break;
		n += (size_t)snprintf(b + n, cap - n, "%s%" PRIu64, b[n - 1] == '{' ? "" : ",", x & 0xFFFFFFFFu);
		p = *end == ',' ? end + 1 : end;
	}
	b[n++] = '}';
	b[n] = '\0';
}

/* The in-progress list of sn (full xids) into out (at most cap); their number, -1 when more. */
static int snap_xips(const snap *sn, uint64_t *out, int cap)
{
	const char *p = strchr(strchr(sn->text, ':') + 1, ':') + 1;
	int n = 0;
	while (*p) {
		char *end;
		uint64_t x = strtoull(p, &end, 10);
		if (end == p)
			break;
		if (n == cap)
			return -1;
		out[n++] = x;
		p = *end == ',' ? end + 1 : end;
	}
	return n;
}

static int has_xid(const uint64_t *l, int n, uint64_t x)
{
	for (int i = 0; i < n; i++)
		if (l[i] == x)
			return 1;
	return 0;
}

/* Whether a transaction other than own[] ended between snapshots s (earlier) and c: one in
 * s's in-progress list that c does not list, or one at or after s's xmax that c neither lists
 * nor has yet to begin (below c's xmax; every xid below xmax has ended unless listed). Any
 * transaction of the cluster counts, committed or aborted. With no own transactions this is
 * "c differs from s". */
static int others_ended(const snap *s, const snap *c, const uint64_t *own, int n_own)
{
	uint64_t sx[XIP_MAX], cx[XIP_MAX];
	int ns = snap_xips(s, sx, XIP_MAX), nc = snap_xips(c, cx, XIP_MAX);
	if (ns < 0 || nc < 0 || c->xmax < s->xmax)
		return 1;
	for (int i = 0; i < ns; i++)
		if (!has_xid(cx, nc, sx[i]) && !has_xid(own, n_own, sx[i]))
			return 1;
	if (c->xmax - s->xmax > (uint64_t)(n_own + nc))
		return 1; /* more began and ended than we could account for */
	for (uint64_t x = s->xmax; x < c->xmax; x++)
		if (!has_xid(cx, nc, x) && !has_xid(own, n_own, x))
			return 1;
	return 0;
}

/* Keeps of p's own transactions those not ended at p->prev (the others cannot matter any more). */
static void own_trim(feed_pos *p)
{
	uint64_t xs[XIP_MAX];
	int nx = snap_xips(&p->prev, xs, XIP_MAX);
	int k = 0;
	for (int i = 0; i < p->n_own; i++)
		if (p->prev.set && (p->own[i] >= p->prev.xmax || (nx > 0 && has_xid(xs, nx, p->own[i]))))
			p->own[k++] = p->own[i];
	p->n_own = k;
}

/* ---- positions --------------------------------------------------------------------------- */

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

static void put_str(unsigned char *o, size_t *n, const char *s)
{
	size_t l = strlen(s);
	o[(*n)++] = (unsigned char)(l & 0xFF);
	o[(*n)++] = (unsigned char)(l >> 8);
	memcpy(o + *n, s, l);
	*n += l;
}

static int get_str(const unsigned char *b, size_t len, size_t *n, char *out, size_t cap)
{
	if (*n + 2 > len)
		return -1;
	size_t l = (size_t)b[*n] | (size_t)b[*n + 1] << 8;
	*n += 2;
	if (l >= cap || *n + l > len)
		return -1;
	memcpy(out, b + *n, l);
	out[l] = '\0';
	*n += l;
	return 0;
}

/* Whether p fits a saved position (STORE_FEED_POS_MAX). */
static size_t pos_encode(const feed_pos *p, unsigned char *o)
{
	size_t n = 0;
	o[n++] = POS_TAG;
	o[n++] = POS_VERSION;
	o[n++] = (unsigned char)((p->prev.set ? 1 : 0) | (p->round.set ? 2 : 0) | (p->scan_started ? 4 : 0) |
	                         (p->has_last ? 8 : 0));
	put_u64(o, &n, p->count);
	put_u64(o, &n, p->delivered);
	put_u64(o, &n, ((uint64_t)p->hist_oid << 32) | p->inst_oid);
	put_str(o, &n, p->prev.set ? p->prev.text : "");
	put_str(o, &n, p->round.set ? p->round.text : "");
	put_str(o, &n, p->scan_after);
	put_str(o, &n, p->has_last ? p->last_id : "");
	put_u64(o, &n, p->last_exec);
	put_u64(o, &n, p->last_event);
	o[n++] = (unsigned char)p->n_own;
	for (int i = 0; i < p->n_own; i++)
		put_u64(o, &n, p->own[i]);
	return n;
}

static int pos_decode(feed_pos *p, const unsigned char *b, size_t len)
{
	memset(p, 0, sizeof *p);
	if (len < 27 || b[0] != POS_TAG || (b[1] != POS_VERSION && b[1] != 1) || (b[2] & ~15) != 0)
		return -1;
	int version = b[1];
	int flags = b[2];
	p->count = get_u64(b + 3);
	p->delivered = get_u64(b + 11);
	uint64_t oids = get_u64(b + 19);
	p->hist_oid = (uint32_t)(oids >> 32);
	p->inst_oid = (uint32_t)oids;
	size_t n = 27;
	char prev[SNAP_MAX], round[SNAP_MAX];
	if (get_str(b, len, &n, prev, sizeof prev) || get_str(b, len, &n, round, sizeof round) ||
	    get_str(b, len, &n, p->scan_after, sizeof p->scan_after) ||
	    get_str(b, len, &n, p->last_id, sizeof p->last_id) || n + 16 > len)
		return -1;
	p->last_exec = get_u64(b + n);
	p->last_event = get_u64(b + n + 8);
	n += 16;
	if (version >= 2) {
		if (n + 1 > len || b[n] > OWN_MAX || n + 1 + 8 * (size_t)b[n] != len)
			return -1;
		p->n_own = b[n];
		for (int i = 0; i < p->n_own; i++)
			p->own[i] = get_u64(b + n + 1 + 8 * (size_t)i);
	} else if (n != len) {
		return -1;
	}
	if ((flags & 1) && snap_parse(&p->prev, prev) != 0)
		return -1;
	if ((flags & 2) && snap_parse(&p->round, round) != 0)
		return -1;
	if (!(flags & 1) && prev[0] != '\0')
		return -1;
	p->scan_started = (flags & 4) != 0;
	p->has_last = (flags & 8) != 0;
	if (!p->round.set && (p->scan_started || p->has_last || p->delivered != 0))
		return -1;
	return 0;
}

/* ---- queries ---------------------------------------------------------------------------------- */

static int text_row(void *ud, const PGresult *r)
{
	char *out = ud;
	const char *t = pq_text(r, 0);
	snprintf(out, SNAP_MAX, "%s", t ? t : "");
	return 1;
}

static int current_snapshot(pg_store *s, snap *out)
{
	char t[SNAP_MAX] = "";
	int rc = pq_query(s, 0, "SELECT pg_current_snapshot()::text", NULL, text_row, t, NULL, "reading a snapshot");
	if (rc != DUROX_OK)
		return rc;
	if (snap_parse(out, t) != 0)
		return store_fail(
		        &s->base, DUROX_EBUSY,
		        "too many transactions are in progress for the change feed to keep a snapshot (%.40s...);"
		        " retry later",
		        t);
	return DUROX_OK;
}

struct oids {
	uint32_t hist, inst;
};

static int oids_row(void *ud, const PGresult *r)
{
	struct oids *o = ud;
	o->hist = (uint32_t)pq_int(r, 0);
	o->inst = (uint32_t)pq_int(r, 1);
	return 1;
}

static int table_oids(pg_store *s, struct oids *o)
{
	memset(o, 0, sizeof *o);
	return pq_query(s, 0, "SELECT to_regclass('history')::oid::int8, to_regclass('instances')::oid::int8", NULL,
	                oids_row, o, NULL, "reading the schema");
}

/* The parameter texts one snapshot predicate needs, kept alive for the query. */
typedef struct snap_args {
	char xmax[24];
	char xip[SNAP_MAX + 64];
} snap_args;

static void snap_args_of(snap_args *a, const snap *sn)
{
	snprintf(a->xmax, sizeof a->xmax, "%" PRIu64, sn->xmax & 0xFFFFFFFFu);
	snap_xip32(sn, a->xip, sizeof a->xip);
}

/* Appends "newer than S" over col and its parameters: xmin at or after S's xmax (by age, as
 * xmin is a 32-bit xid), or in S's in-progress list (compared as xid: a text cast per row
 * doubled the cost of the scan). */
static void add_newer(buf *b, pqp *p, const char *col, const snap_args *a)
{
	pqp_text(p, a->xmax);
	if (strcmp(a->xip, "{}") == 0) {
		buf_addf(b, "(age(%s) <= age($%d::xid))", col, p->n);
		return;
	}
	pqp_text(p, a->xip);
	buf_addf(b, "(age(%s) <= age($%d::xid) OR %s = ANY($%d::xid[]))", col, p->n - 1, col, p->n);
}

struct count_ud {
	uint64_t n;
};

static int count_row(void *ud, const PGresult *r)
{
	((struct count_ud *)ud)->n = (uint64_t)pq_int(r, 0);
	return 1;
}

/* History rows not newer than sn (all rows when sn is not set... none then: 0). */
static int count_before(pg_store *s, const snap *sn, uint64_t *out)
{
	*out = 0;
	if (!sn->set)
		return DUROX_OK;
	buf b;
	buf_init(&b);
	pqp p;
	pqp_init(&p);
	snap_args a;
	snap_args_of(&a, sn);
	buf_adds(&b, "SELECT count(*) FROM history h WHERE NOT ");
	add_newer(&b, &p, "h.xmin", &a);
	struct count_ud c = {0};
	int rc = buf_oom(&b) || p.oom ? store_fail(&s->base, DUROX_ENOMEM, "out of memory")
	                              : pq_query(s, 0, buf_str(&b), &p, count_row, &c, NULL, "counting history");
	buf_free(&b);
	pqp_free(&p);
	*out = c.n;
	return rc;
}

/* ---- the vtable ------------------------------------------------------------------------------- */

static int feed_open(store *base, store_feed **out)
{
	*out = NULL;
	pg_store *s = (pg_store *)base;
	store_feed *f = calloc(1, sizeof *f);
	if (f == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	f->s = s;
	f->seen_deletes = s->own_deletes;
	struct oids o;
	int rc = table_oids(s, &o);
	if (rc != DUROX_OK) {
		free(f);
		return rc;
	}
	f->hist_oid = o.hist;
	f->inst_oid = o.inst;
	f->pos.hist_oid = o.hist;
	f->pos.inst_oid = o.inst;
	*out = f;
	return DUROX_OK;
}

static void feed_close(store_feed *f) { free(f); }

/* Positions p at the present: the snapshot now and the rows it shows (one statement). */
struct end_ud {
	char snap[SNAP_MAX];
	uint64_t count;
};

static int end_row(void *ud, const PGresult *r)
{
	struct end_ud *e = ud;
	const char *t = pq_text(r, 0);
	snprintf(e->snap, sizeof e->snap, "%s", t ? t : "");
	e->count = (uint64_t)pq_int(r, 1);
	return 1;
}

static int pos_at_end(store_feed *f, feed_pos *p)
{
	memset(p, 0, sizeof *p);
	p->hist_oid = f->hist_oid;
	p->inst_oid = f->inst_oid;
	struct end_ud e = {"", 0};
	int rc = pq_query(f->s, 0, "SELECT pg_current_snapshot()::text, (SELECT count(*) FROM history)", NULL, end_row,
	                  &e, NULL, "reading the end of history");
	if (rc != DUROX_OK)
		return rc;
	if (snap_parse(&p->prev, e.snap) != 0)
		return store_fail(&f->s->base, DUROX_EIO, "unreadable snapshot '%.40s'", e.snap);
	p->count = e.count;
	return DUROX_OK;
}

static int feed_seek(store_feed *f, int at_end)
{
	f->gate_valid = 0;
	f->verify_now = 0;
	if (!at_end) {
		memset(&f->pos, 0, sizeof f->pos);
		f->pos.hist_oid = f->hist_oid;
		f->pos.inst_oid = f->inst_oid;
		return DUROX_OK;
	}
	feed_pos p;
	int rc = pos_at_end(f, &p);
	if (rc == DUROX_OK) {
		f->pos = p;
		f->gate_valid = 1;
	}
	return rc;
}

static int feed_restore(store_feed *f, const void *pos, size_t len)
{
	feed_pos p;
	if (pos_decode(&p, pos, len) != 0)
		return store_fail(&f->s->base, DUROX_EINVALID, "not a position of the PostgreSQL change feed");
	f->pos = p;
	/* a complete round's position: the gate holds across processes (the own transactions saved
	 * with it are those that wrote it) */
	f->gate_valid = p.prev.set && !p.round.set;
	f->verify_now = p.prev.set;
	return DUROX_OK;
}

static int feed_save(store_feed *f, unsigned char *out, size_t *len)
{
	*len = pos_encode(&f->pos, out);
	return DUROX_OK;
}

/* ---- a poll ------------------------------------------------------------------------------------ */

typedef struct ids_ud {
	char **ids;
	size_t n, cap;
	int oom;
} ids_ud;

static int id_row(void *ud, const PGresult *r)
{
	ids_ud *u = ud;
	const char *id = pq_text(r, 0);
	if (id == NULL)
		return 0;
	if (u->n == u->cap) {
		size_t ncap = u->cap ? u->cap * 2 : 64;
		char **n = realloc(u->ids, ncap * sizeof *n);
		if (n == NULL) {
			u->oom = 1;
			return DUROX_ENOMEM;
		}
		u->ids = n;
		u->cap = ncap;
	}
	if ((u->ids[u->n] = strdup(id)) == NULL) {
		u->oom = 1;
		return DUROX_ENOMEM;
	}
	u->n++;
	return 0;
}

static void ids_free(ids_ud *u)
{
	for (size_t i = 0; i < u->n; i++)
		free(u->ids[i]);
	free(u->ids);
	memset(u, 0, sizeof *u);
}

typedef struct rows_ud {
	store_feed *f;
	const store_feed_request *rq;
	store_feed_cb cb;
	void *ud;
	store_feed_result *res;
	uint32_t limit;
	size_t max_bytes, bytes;
	int stopped; /* the callback asked to stop, or the byte cap was reached */
	int err;
} rows_ud;

static int hist_row(void *ud, const PGresult *r)
{
	rows_ud *u = ud;
	if (u->stopped)
		return 1;
	feed_pos *p = &u->f->pos;
	const char *id = pq_text(r, 0);
	if (id == NULL || strlen(id) >= KEY_MAX) {
		u->err = store_fail(&u->f->s->base, DUROX_EUNSUPPORTED,
		                    "instance id longer than %d bytes: the PostgreSQL change feed cannot keep it",
		                    KEY_MAX - 1);
		return u->err;
	}
	store_feed_row row;
	row.instance_id = id;
	row.execution_id = (uint64_t)pq_int(r, 1);
	row.event_id = (uint64_t)pq_int(r, 2);
	row.event_type = pq_text(r, 3) ? pq_text(r, 3) : "";
	row.data = u->rq->with_data ? pq_text(r, 4) : NULL;
	row.data_len = row.data ? (size_t)PQgetlength(r, 0, 4) : 0;
	if (u->rq->with_data && row.data == NULL)
		row.data = "";
	row.created_at = pq_time(r, 5);
	snprintf(p->last_id, sizeof p->last_id, "%s", id);
	p->has_last = 1;
	p->last_exec = row.execution_id;
	p->last_event = row.event_id;
	p->delivered++;
	unsigned char enc[STORE_FEED_POS_MAX];
	row.pos = enc;
	row.pos_len = pos_encode(p, enc);
	u->bytes += row.data_len;
	u->res->rows++;
	int c = u->cb(u->ud, &row);
	if (c < 0) {
		u->err = c;
		return c;
	}
	if (c > 0 || (u->bytes >= u->max_bytes))
		u->stopped = 1;
	return 0;
}

static int feed_poll(store_feed *f, const store_feed_request *rq, store_feed_cb cb, void *ud, store_feed_result *res)
{
	memset(res, 0, sizeof *res);
	pg_store *s = f->s;
	int64_t now = rq->now_ms > 0 ? rq->now_ms : wall_ms();
	int rc;
	feed_pos *p = &f->pos;
	/* the runtime's tables re-created: the position means nothing there */
	struct oids o;
	if ((rc = table_oids(s, &o)) != DUROX_OK)
		return rc;
	f->hist_oid = o.hist;
	f->inst_oid = o.inst;
	if (o.hist != p->hist_oid || o.inst != p->inst_oid) {
		if ((rc = feed_seek(f, 1)) != DUROX_OK)
			return rc;
		res->reset = STORE_FEED_RESET_LOST;
		snprintf(res->reason, sizeof res->reason,
		         "the runtime's tables were re-created (the store was replaced)");
		return DUROX_OK;
	}
	snap cur;
	if (!p->round.set) {
		if ((rc = current_snapshot(s, &cur)) != DUROX_OK)
			return rc;
		if (p->prev.set && cur.xmax < p->prev.xmax) {
			if ((rc = feed_seek(f, 1)) != DUROX_OK)
				return rc;
			res->reset = STORE_FEED_RESET_LOST;
			snprintf(res->reason, sizeof res->reason,
			         "transaction ids went backwards (%" PRIu64 " after %" PRIu64
			         "): a restored or replaced store",
			         cur.xmax, p->prev.xmax);
			return DUROX_OK;
		}
		int own = s->own_deletes != f->seen_deletes;
		f->seen_deletes = s->own_deletes;
		if (own)
			f->verify_now = 1;
		if (f->gate_valid && !f->verify_now && p->prev.set && !others_ended(&p->prev, &cur, p->own, p->n_own)) {
			res->idle = 1;
			return DUROX_OK;
		}
		/* between rounds: look for deleted rows when due */
		int due = f->verify_now;
		if (!due && rq->verify_ms >= 0) {
			int64_t every = rq->verify_ms;
			if (every < f->verify_cost_ms * VERIFY_COST_FACTOR)
				every = f->verify_cost_ms * VERIFY_COST_FACTOR;
			due = f->last_verify_ms == 0 || now - f->last_verify_ms >= every;
		}
		if (due && p->prev.set) {
			int64_t t0 = mono_us();
			uint64_t n = 0;
			if ((rc = count_before(s, &p->prev, &n)) != DUROX_OK)
				return rc;
			f->verify_cost_ms = (mono_us() - t0) / 1000;
			f->last_verify_ms = now;
			f->verify_now = 0;
			res->verified = 1;
			if (n < p->count) {
				res->reset = STORE_FEED_RESET_DELETED;
				snprintf(res->reason, sizeof res->reason,
				         "%" PRIu64
				         " history rows at or before the position were deleted (a purge or prune)",
				         p->count - n);
				p->count = n;
				f->gate_valid = 0;
				return DUROX_OK;
			}
			if (n > p->count) {
				if ((rc = feed_seek(f, 1)) != DUROX_OK)
					return rc;
				res->reset = STORE_FEED_RESET_LOST;
				snprintf(res->reason, sizeof res->reason,
				         "%" PRIu64 " history rows appeared before the position (a restored store)",
				         n - p->count);
				return DUROX_OK;
			}
		} else if (due) {
			f->verify_now = 0;
			f->last_verify_ms = now;
		}
		p->round = cur;
		p->scan_after[0] = '\0';
		p->scan_started = 0;
		p->has_last = 0;
		p->delivered = 0;
	}
	/* the round: the changed instances after scan_after, then their new rows by key. Byte order
	 * throughout: the database's own collation when it is C (the primary key indexes then serve
	 * the keyset steps), else COLLATE "C" */
	const char *bc = s->byte_order ? "" : " COLLATE \"C\"";
	/* ...but the scan for instances newer than prev keeps COLLATE "C" even then: the planner
	 * would walk the whole primary key in order hoping to meet 200 matches early (3-4x slower
	 * than a sequential scan and a top-N sort when few instances changed) */
	const char *ic = p->prev.set ? " COLLATE \"C\"" : bc;
	uint32_t limit = rq->limit == 0 ? DEFAULT_LIMIT : rq->limit > MAX_LIMIT ? MAX_LIMIT : rq->limit;
	snap_args pa, ra;
	if (p->prev.set)
		snap_args_of(&pa, &p->prev);
	snap_args_of(&ra, &p->round);
	ids_ud ids = {0};
	buf sql;
	buf_init(&sql);
	pqp q;
	pqp_init(&q);
	buf_adds(&sql, "SELECT i.instance_id FROM instances i WHERE ");
	if (p->prev.set)
		add_newer(&sql, &q, "i.xmin", &pa);
	else
		buf_adds(&sql, "TRUE");
	if (p->scan_started) {
		pqp_text(&q, p->scan_after);
		buf_addf(&sql, " AND i.instance_id%s > $%d", ic, q.n);
	}
	buf_addf(&sql, " ORDER BY i.instance_id%s LIMIT %d", ic, INSTANCES_PER_POLL);
	rc = buf_oom(&sql) || q.oom
	             ? store_fail(&s->base, DUROX_ENOMEM, "out of memory")
	             : pq_query(s, 0, buf_str(&sql), &q, id_row, &ids, NULL, "finding changed instances");
	buf_free(&sql);
	pqp_free(&q);
	if (rc == DUROX_OK && ids.oom)
		rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	if (rc != DUROX_OK) {
		ids_free(&ids);
		return rc;
	}
	feed_pos start = *p;
	rows_ud u = {f, rq, cb, ud, res, limit, rq->max_bytes ? rq->max_bytes : DEFAULT_MAX_BYTES, 0, 0, 0};
	int full = 0;
	if (ids.n > 0) {
		char *arr = pg_text_array((const char *const *)ids.ids, ids.n);
		buf_init(&sql);
		pqp_init(&q);
		buf_addf(&sql,
		         "SELECT h.instance_id, h.execution_id, h.event_id, %s, %s, %s FROM history h"
		         " WHERE h.instance_id = ANY($1::text[]) AND ",
		         PG_EVENT_TYPE("h"), rq->with_data ? "h.event_data" : "NULL::text", PG_MS("h.created_at"));
		pqp_text(&q, arr);
		if (p->prev.set) {
			add_newer(&sql, &q, "h.xmin", &pa);
			buf_adds(&sql, " AND ");
		}
		buf_adds(&sql, "NOT ");
		add_newer(&sql, &q, "h.xmin", &ra);
		char ex[24], ev[24];
		if (p->has_last) {
			snprintf(ex, sizeof ex, "%" PRIu64, p->last_exec);
			snprintf(ev, sizeof ev, "%" PRIu64, p->last_event);
			pqp_text(&q, p->last_id);
			pqp_text(&q, ex);
			pqp_text(&q, ev);
			buf_addf(&sql,
			         " AND (h.instance_id%s, h.execution_id, h.event_id) > ($%d%s, $%d::int8, $%d::int8)",
			         bc, q.n - 2, bc, q.n - 1, q.n);
		}
		buf_addf(&sql, " ORDER BY h.instance_id%s, h.execution_id, h.event_id LIMIT %u", bc, limit);
		rc = arr == NULL || buf_oom(&sql) || q.oom
		             ? store_fail(&s->base, DUROX_ENOMEM, "out of memory")
		             : pq_query(s, 0, buf_str(&sql), &q, hist_row, &u, NULL, "reading history");
		buf_free(&sql);
		pqp_free(&q);
		free(arr);
		if (rc == DUROX_OK && u.err)
			rc = u.err;
		full = res->rows == limit || u.stopped;
	}
	if (rc != DUROX_OK) {
		*p = start;
		res->rows = 0;
		ids_free(&ids);
		f->gate_valid = 0;
		return rc;
	}
	if (full) {
		res->more = 1; /* the same instances go on from the last key */
	} else if (ids.n == INSTANCES_PER_POLL) {
		snprintf(p->scan_after, sizeof p->scan_after, "%s", ids.ids[ids.n - 1]);
		p->scan_started = 1;
		p->has_last = 0;
		res->more = 1;
	} else {
		/* the round is complete: R becomes the position */
		p->count += p->delivered;
		p->prev = p->round;
		own_trim(p);
		memset(&p->round, 0, sizeof p->round);
		p->scan_after[0] = '\0';
		p->scan_started = 0;
		p->has_last = 0;
		p->delivered = 0;
	}
	ids_free(&ids);
	f->gate_valid = !res->more;
	return DUROX_OK;
}

int pg_feed_own_xact(store_feed *f)
{
	pg_store *s = f->s;
	char t[SNAP_MAX] = "";
	int rc = pq_query(s, PQ_WRITE, "SELECT pg_current_xact_id()::text", NULL, text_row, t, NULL,
	                  "reading the transaction id");
	if (rc != DUROX_OK)
		return rc;
	char *end;
	uint64_t x = strtoull(t, &end, 10);
	if (end == t || *end != '\0')
		return store_fail(&s->base, DUROX_EIO, "unreadable transaction id '%.40s'", t);
	feed_pos *p = &f->pos;
	if (has_xid(p->own, p->n_own, x))
		return DUROX_OK;
	if (p->n_own == OWN_MAX) {
		/* the oldest goes: the gate then opens once more than it must, never less */
		memmove(p->own, p->own + 1, (OWN_MAX - 1) * sizeof p->own[0]);
		p->n_own--;
	}
	p->own[p->n_own++] = x;
	return DUROX_OK;
}

static int feed_vouch(store_feed *f, int64_t verified_at_ms)
{
	f->verify_now = 0;
	f->last_verify_ms = verified_at_ms > 0 ? verified_at_ms : 1;
	return DUROX_OK;
}

const store_feed_vtable pg_feed_vtable = {feed_open, feed_close, feed_seek, feed_restore,
                                          feed_save, feed_poll,  feed_vouch};
