/*
 * sqlite_queues.c - the SQLite provider's queue reads for metrics and stuck-work detection:
 * the snapshot of both work queues (depths, in-progress, waiting, stalled, overdue timers,
 * orphans), the problem rows behind it, expired instance locks and running instances with no
 * work queued. Relies on sqlite_internal.h (and the visibility index's connection when it is
 * ready); used by the engine through sq_metrics_vtable.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_metrics_internal.h"

/* The state of every orchestrator_queue row (?1 = now, ?2 = stall ms, ?3 = timer overdue ms):
 * tm: a TimerFired item; pt: a pending timer; st: 0 free, 1 in progress (held by its
 * instance's live lock), 2 waiting (its instance is locked by a turn it is not part of);
 * orphan: no instance and no StartOrchestration queued for it. */
#define ORCH_ROWS_WITH(attempts, absent)                                                                               \
	"SELECT q.id AS id, q.instance_id AS instance_id, q.work_item AS work_item,"                                   \
	" durox_ms(q.visible_at) AS vis, durox_ms(q.created_at) AS created, " attempts " AS attempts,"                 \
	" q.lock_token AS token, l.locked_until AS lu,"                                                                \
	" substr(q.work_item,1,14)='{\"TimerFired\":' AS tm,"                                                          \
	" CASE WHEN l.instance_id IS NULL OR l.locked_until <= ?1 THEN 0 WHEN q.lock_token IS l.lock_token THEN 1"     \
	" ELSE 2 END AS st,"                                                                                           \
	" (" absent " AND NOT EXISTS (SELECT 1 FROM"                                                                   \
	" orchestrator_queue y WHERE y.instance_id=q.instance_id AND substr(y.work_item,1,22)="                        \
	"'{\"StartOrchestration\":')) AS orphan"                                                                       \
	" FROM orchestrator_queue q LEFT JOIN instance_locks l ON l.instance_id=q.instance_id"
#define ORCH_ROWS(attempts)                                                                                            \
	ORCH_ROWS_WITH(attempts, "NOT EXISTS (SELECT 1 FROM instances x WHERE x.instance_id=q.instance_id)")
#define WORKER_ROWS(attempts)                                                                                          \
	"SELECT w.id AS id, w.instance_id AS instance_id, w.work_item AS work_item,"                                   \
	" durox_ms(w.visible_at) AS vis, durox_ms(w.created_at) AS created, " attempts " AS attempts,"                 \
	" durox_ms(w.locked_until) AS lu,"                                                                             \
	" CASE WHEN w.lock_token IS NULL THEN 0 WHEN durox_ms(w.locked_until) > ?1 THEN 1 ELSE 3 END AS st"            \
	" FROM worker_queue w"

/* ---- the queue snapshot, from rows kept between calls ---------------------------------------
 *
 * The figures depend on the queue rows and on the time. The rows are read once and kept
 * (s->qc) with what each needs from other tables (its instance exists, a start is queued for
 * it, its instance's lock, whether it holds that lock's token), and a snapshot recomputes the
 * figures from them in C for its own `now`. They are read again only when something was
 * committed since (the store's data version, this connection's own writes), so a store at
 * rest answers without a statement, however long its queues. "The instance exists" is kept
 * across reads too: checked once per instance (through the visibility index when it is
 * ready, whose rows its sync keeps current), again only when it did not exist or when
 * instances may have left since (the index's existence generation; without the index, at
 * every read). */

enum {
	QR_VIS = 1,        /* visible_at readable */
	QR_CREATED = 2,    /* created_at readable */
	QR_TOKEN_NULL = 4, /* lock_token IS NULL */
	QR_TM = 8,         /* a TimerFired item */
	QR_QM = 16,        /* a QueueMessage item */
	QR_SAME = 32,      /* its token is its instance lock's token */
	QR_ORPHAN = 64     /* no such instance and no StartOrchestration queued for it */
};

typedef struct qrow {
	int64_t vis, created, attempts;
	int32_t lock; /* index into locks, -1: its instance has no lock row */
	uint32_t flags;
} qrow;

typedef struct wrow {
	int64_t vis, lu, attempts;
	int has_vis, has_lu, token_null;
} wrow;

typedef struct lrow {
	int lu_kind; /* 1 numeric (lu_num), 0 other (compares false against a time) */
	double lu_num;
	int has_ms;
	int64_t ms; /* durox_ms(locked_until) */
} lrow;

/* What never changes in an orchestrator_queue row once written (the runtime updates only
 * lock_token, locked_until, visible_at and attempt_count): kept by row id, in id order, so that
 * a read after a commit parses the work item's kind and the creation time of new rows only. */
#define QM_START 128 /* a StartOrchestration item */
typedef struct qmemo {
	int64_t id, created;
	uint32_t flags; /* QR_CREATED, QR_TM, QR_QM, QM_START */
} qmemo;

struct queue_cache {
	int valid;
	qmemo *memo; /* the rows of the last read, by id */
	size_t nmemo, capmemo;
	int64_t max_id; /* the highest id ever read: the rowids are AUTOINCREMENT's */
	int64_t data_version;
	uint64_t own_writes;
	int via_index;
	int64_t gen[2];
	qrow *q;
	size_t nq, capq;
	wrow *w;
	size_t nw, capw;
	lrow *l;
	size_t nl, capl;
	hmap exists; /* instance id -> a: 1 exists, 0 not; b: the generation it was checked in */
	int64_t check_round;
};

void sq_queue_cache_free(sqlite_store *s)
{
	struct queue_cache *c = s->qc;
	if (c == NULL)
		return;
	free(c->q);
	free(c->memo);
	free(c->w);
	free(c->l);
	hmap_free(&c->exists);
	free(c);
	s->qc = NULL;
}

/* arr with room for one more element (n used of *cap), or NULL when out of memory, with arr
 * freed and *cap 0 (so that a later use starts again from nothing). */
static void *grow(void *arr, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return arr;
	size_t ncap = *cap ? *cap * 2 : 256;
	void *q = realloc(arr, ncap * size);
	if (q == NULL) {
		free(arr);
		*cap = 0;
		return NULL;
	}
	*cap = ncap;
	return q;
}

#define GROW(arr, n, cap) (((arr) = grow((arr), (n), &(cap), sizeof *(arr))) != NULL)

static int sq_exec(sqlite_store *s, const char *sql)
{
	sqlite3_stmt *st = sq_stmt(s, sql);
	if (st == NULL)
		return sq_stmt_err(s);
	int r = sqlite3_step(st);
	sq_done(st);
	return r == SQLITE_DONE ? DUROX_OK : sq_fail(s, r, "reading the queues");
}

static int starts_with(sqlite3_stmt *st, int col, const char *prefix, size_t n)
{
	if (sqlite3_column_type(st, col) != SQLITE_TEXT)
		return 0;
	const char *t = (const char *)sqlite3_column_text(st, col);
	return t != NULL && (size_t)sqlite3_column_bytes(st, col) >= n && memcmp(t, prefix, n) == 0;
}

/* The instance id kept at offset `at` of ids while reading the orchestrator rows (its length,
 * then its bytes; not NUL-terminated), and its length into *len. */
static const char *queued_id(const buf *ids, size_t at, size_t *len)
{
	memcpy(len, ids->data + at, sizeof *len);
	return ids->data + at + sizeof *len;
}

/* Reads the rows into c (inside the caller's read transaction of the store connection).
 * *redo: a row the kept memo should know is not in it (ids reused): read again without it. */
static int qc_read_once(sqlite_store *s, struct queue_cache *c, int via_index, int *redo)
{
	int has_attempts = s->base.info.has_attempt_count;
	c->nq = c->nw = c->nl = 0;
	c->check_round++;
	/* instance locks first: the orchestrator rows point at them */
	hmap locks;
	hmap_init(&locks);
	hmap starts;
	hmap_init(&starts);
	int rc = DUROX_OK, r;
	sqlite3_stmt *st = sq_stmt(s, "SELECT instance_id, locked_until, durox_ms(locked_until), lock_token FROM"
	                              " instance_locks");
	/* the lock tokens, by lock row (kept only while reading) */
	buf tokens;
	buf_init(&tokens);
	size_t *tok_at = NULL;
	size_t tok_cap = 0;
	if (st == NULL)
		rc = sq_stmt_err(s);
	while (rc == DUROX_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (!GROW(c->l, c->nl, c->capl) || (c->nl >= tok_cap && !GROW(tok_at, c->nl, tok_cap))) {
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
			break;
		}
		lrow *l = &c->l[c->nl];
		int t = sqlite3_column_type(st, 1);
		l->lu_kind = t == SQLITE_INTEGER || t == SQLITE_FLOAT;
		l->lu_num = sqlite3_column_double(st, 1);
		l->has_ms = sqlite3_column_type(st, 2) != SQLITE_NULL;
		l->ms = sqlite3_column_int64(st, 2);
		const char *id = (const char *)sqlite3_column_blob(st, 0);
		size_t idn = (size_t)sqlite3_column_bytes(st, 0);
		int created;
		hmap_entry *e = id ? hmap_put(&locks, id, idn, &created) : NULL;
		if (id != NULL && e == NULL) {
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
			break;
		}
		if (e != NULL)
			e->a = (int64_t)c->nl;
		/* the token, NUL-terminated, with a leading flag: 0 NULL, 1 text */
		tok_at[c->nl] = tokens.len;
		const void *tok = sqlite3_column_blob(st, 3);
		buf_addc(&tokens, sqlite3_column_type(st, 3) == SQLITE_NULL ? 0 : 1);
		buf_add(&tokens, tok ? tok : "", (size_t)sqlite3_column_bytes(st, 3));
		buf_addc(&tokens, 0);
		c->nl++;
	}
	if (st != NULL)
		sq_done(st);
	if (rc == DUROX_OK && r != SQLITE_DONE)
		rc = sq_fail(s, r, "reading instance locks");
	if (rc == DUROX_OK && buf_oom(&tokens))
		rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	/* the orchestrator rows; instance ids kept while reading, for the existence checks */
	buf ids;
	buf_init(&ids);
	size_t *id_at = NULL;
	size_t id_cap = 0;
	/* With nothing known yet (a handle's first read; without the index, every read) each row
	 * says in this read snapshot whether its instance exists: a lookup inside the statement
	 * costs a fraction of one through the API per instance (2,826 queued instances: about
	 * 2.5 ms that way). Later reads through the index check only instances not known. */
	int direct = !via_index || c->exists.count == 0;
	/* rows read before (their id at most max_id) take their kind and creation time from the
	 * memo: only new rows' work items and times are parsed */
	int light = c->nmemo > 0;
	char orch_sql[640];
	snprintf(orch_sql, sizeof orch_sql,
	         "SELECT instance_id, durox_ms(visible_at), %s, %s, lock_token, %s, %s, id FROM orchestrator_queue q"
	         " ORDER BY id",
	         light ? "CASE WHEN id > ?1 THEN durox_ms(created_at) END" : "durox_ms(created_at)",
	         has_attempts ? "attempt_count" : "0",
	         light ? "CASE WHEN id > ?1 THEN substr(work_item,1,22) END" : "substr(work_item,1,22)",
	         direct ? "EXISTS (SELECT 1 FROM instances x WHERE x.instance_id=q.instance_id)" : "0");
	unsigned char *row_exists = NULL;
	size_t rex_cap = 0;
	qmemo *memo = NULL;
	size_t nmemo = 0, capmemo = 0, mj = 0;
	st = rc == DUROX_OK ? sq_stmt(s, orch_sql) : NULL;
	if (st != NULL && light)
		sqlite3_bind_int64(st, 1, c->max_id);
	if (rc == DUROX_OK && st == NULL)
		rc = sq_stmt_err(s);
	while (rc == DUROX_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (!GROW(c->q, c->nq, c->capq) || (c->nq >= id_cap && !GROW(id_at, c->nq, id_cap)) ||
		    (direct && c->nq >= rex_cap && !GROW(row_exists, c->nq, rex_cap)) || !GROW(memo, nmemo, capmemo)) {
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
			break;
		}
		qrow *q = &c->q[c->nq];
		memset(q, 0, sizeof *q);
		q->lock = -1;
		if (sqlite3_column_type(st, 1) != SQLITE_NULL)
			q->flags |= QR_VIS;
		q->vis = sqlite3_column_int64(st, 1);
		qmemo *m = &memo[nmemo++];
		m->id = sqlite3_column_int64(st, 6 + 1);
		if (!light || m->id > c->max_id) {
			m->flags = 0;
			if (sqlite3_column_type(st, 2) != SQLITE_NULL)
				m->flags |= QR_CREATED;
			m->created = sqlite3_column_int64(st, 2);
			if (starts_with(st, 5, "{\"TimerFired\":", 14))
				m->flags |= QR_TM;
			const char *wi = sq_col_text(st, 5);
			if (wi != NULL && strncmp(wi, "{\"QueueMessage\":", 16) == 0)
				m->flags |= QR_QM;
			if (starts_with(st, 5, "{\"StartOrchestration\":", 22))
				m->flags |= QM_START;
		} else {
			while (mj < c->nmemo && c->memo[mj].id < m->id)
				mj++;
			if (mj == c->nmemo || c->memo[mj].id != m->id) {
				*redo = 1; /* not read before, yet not newer than what was */
				break;
			}
			m->flags = c->memo[mj].flags;
			m->created = c->memo[mj].created;
		}
		q->flags |= m->flags & (QR_CREATED | QR_TM | QR_QM);
		q->created = m->created;
		q->attempts = sqlite3_column_int64(st, 3);
		int tnull = sqlite3_column_type(st, 4) == SQLITE_NULL;
		if (tnull)
			q->flags |= QR_TOKEN_NULL;
		if (direct)
			row_exists[c->nq] = (unsigned char)sqlite3_column_int(st, 6);
		const char *id = (const char *)sqlite3_column_blob(st, 0);
		size_t idn = id ? (size_t)sqlite3_column_bytes(st, 0) : 0;
		id_at[c->nq] = id ? ids.len : (size_t)-1;
		if (id != NULL) {
			buf_add(&ids, &idn, sizeof idn);
			buf_add(&ids, id, idn);
			int created;
			if ((m->flags & QM_START) && hmap_put(&starts, id, idn, &created) == NULL)
				rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
			hmap_entry *e = hmap_get(&locks, id, idn);
			if (e != NULL) {
				q->lock = (int32_t)e->a;
				const char *lt = tokens.data + tok_at[e->a];
				const void *qt = sqlite3_column_blob(st, 4);
				size_t qn = (size_t)sqlite3_column_bytes(st, 4);
				/* q.lock_token IS l.lock_token */
				if (tnull ? lt[0] == 0
				          : lt[0] == 1 && strlen(lt + 1) == qn && memcmp(lt + 1, qt ? qt : "", qn) == 0)
					q->flags |= QR_SAME;
			}
		}
		c->nq++;
	}
	if (st != NULL)
		sq_done(st);
	if (rc == DUROX_OK && !*redo && r != SQLITE_DONE)
		rc = sq_fail(s, r, "reading the orchestrator queue");
	if (rc == DUROX_OK && !*redo) {
		free(c->memo);
		c->memo = memo;
		c->nmemo = nmemo;
		c->capmemo = capmemo;
		if (nmemo > 0 && memo[nmemo - 1].id > c->max_id)
			c->max_id = memo[nmemo - 1].id;
		memo = NULL;
	}
	free(memo);
	if (*redo)
		rc = 1; /* not an error: every later step is skipped, and the caller reads again */
	if (rc == DUROX_OK && buf_oom(&ids))
		rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	/* orphans: no StartOrchestration queued and no such instance (checked once per instance
	 * and generation: instances come and go far less often than queue rows) */
	if (rc == DUROX_OK && c->exists.count > 4 * (c->nq + 1024))
		hmap_free(&c->exists); /* ids of instances long gone from the queues */
	const char **cid = NULL;
	size_t *clen = NULL, nc = 0;
	unsigned char *cex = NULL;
	if (rc == DUROX_OK && c->nq > 0) {
		cid = malloc(c->nq * sizeof *cid);
		clen = malloc(c->nq * sizeof *clen);
		cex = malloc(c->nq);
		if (cid == NULL || clen == NULL || cex == NULL)
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	}
	int64_t round = via_index ? 0 : c->check_round;
	if (direct) {
		/* the answers of the statement: kept for later reads through the index */
		for (size_t k = 0; rc == DUROX_OK && k < c->nq; k++) {
			if (id_at[k] == (size_t)-1)
				continue;
			size_t idn;
			const char *id = queued_id(&ids, id_at[k], &idn);
			if (!row_exists[k] && hmap_get(&starts, id, idn) == NULL)
				c->q[k].flags |= QR_ORPHAN;
			if (!via_index)
				continue;
			int created;
			hmap_entry *e = hmap_put(&c->exists, id, idn, &created);
			if (e == NULL) {
				rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
				break;
			}
			e->a = row_exists[k];
			e->b = round;
		}
	}
	for (int pass = 0; !direct && pass < 2 && rc == DUROX_OK; pass++) {
		/* pass 0: the instances to check; pass 1: the rows' orphan flags */
		for (size_t k = 0; rc == DUROX_OK && k < c->nq; k++) {
			if (id_at[k] == (size_t)-1)
				continue;
			size_t idn;
			const char *id = queued_id(&ids, id_at[k], &idn);
			if (hmap_get(&starts, id, idn) != NULL)
				continue;
			int created;
			hmap_entry *e = hmap_put(&c->exists, id, idn, &created);
			if (e == NULL) {
				rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
				break;
			}
			if (pass == 0) {
				if (created || e->a == 0 || e->b != round) {
					e->a = -1; /* to check (once) */
					e->b = round;
					cid[nc] = id;
					clen[nc++] = idn;
				}
			} else if (e->a == 0)
				c->q[k].flags |= QR_ORPHAN;
		}
		if (pass == 0 && rc == DUROX_OK && nc > 0) {
			if (via_index)
				rc = sqi_instances_exist(s, nc, cid, clen, cex);
			else {
				sqlite3_stmt *x = sq_stmt(s, "SELECT 1 FROM instances WHERE instance_id=?1");
				if (x == NULL)
					rc = sq_stmt_err(s);
				for (size_t i = 0; x != NULL && rc == DUROX_OK && i < nc; i++) {
					sqlite3_bind_text(x, 1, cid[i], (int)clen[i], SQLITE_STATIC);
					int xr = sqlite3_step(x);
					cex[i] = xr == SQLITE_ROW;
					sqlite3_reset(x);
					if (xr != SQLITE_ROW && xr != SQLITE_DONE)
						rc = sq_fail(s, xr, "reading instances");
				}
				if (x != NULL)
					sq_done(x);
			}
			for (size_t i = 0; rc == DUROX_OK && i < nc; i++)
				hmap_get(&c->exists, cid[i], clen[i])->a = cex[i];
		}
	}
	free(row_exists);
	free(cid);
	free(clen);
	free(cex);
	free(id_at);
	buf_free(&ids);
	free(tok_at);
	buf_free(&tokens);
	hmap_free(&locks);
	hmap_free(&starts);
	/* the worker rows */
	st = rc == DUROX_OK
	             ? sq_stmt(s, has_attempts ? "SELECT durox_ms(visible_at), durox_ms(locked_until), attempt_count,"
	                                         " lock_token IS NULL FROM worker_queue"
	                                       : "SELECT durox_ms(visible_at), durox_ms(locked_until), 0,"
	                                         " lock_token IS NULL FROM worker_queue")
	             : NULL;
	if (rc == DUROX_OK && st == NULL)
		rc = sq_stmt_err(s);
	while (rc == DUROX_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (!GROW(c->w, c->nw, c->capw)) {
			rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
			break;
		}
		wrow *w = &c->w[c->nw++];
		w->has_vis = sqlite3_column_type(st, 0) != SQLITE_NULL;
		w->vis = sqlite3_column_int64(st, 0);
		w->has_lu = sqlite3_column_type(st, 1) != SQLITE_NULL;
		w->lu = sqlite3_column_int64(st, 1);
		w->attempts = sqlite3_column_int64(st, 2);
		w->token_null = sqlite3_column_int(st, 3);
	}
	if (st != NULL)
		sq_done(st);
	if (rc == DUROX_OK && r != SQLITE_DONE)
		rc = sq_fail(s, r, "reading the worker queue");
	return rc;
}

/* Reads the rows into c (inside the caller's read transaction of the store connection). */
static int qc_read(sqlite_store *s, struct queue_cache *c, int via_index)
{
	int redo = 0;
	int rc = qc_read_once(s, c, via_index, &redo);
	if (rc == 1) {
		c->nmemo = 0; /* read everything again, parsing every row */
		c->max_id = 0;
		redo = 0;
		rc = qc_read_once(s, c, via_index, &redo);
	}
	return rc;
}

/* The figures of the kept rows at p->now (the statements they replace are in comments). */
static void qc_figures(const struct queue_cache *c, const store_queue_params *p, store_queue_snapshot *out)
{
	int64_t now = p->now;
	/* instance locks: count(*), total(durox_ms(locked_until) <= now), ... <= now - stall_ms */
	for (size_t k = 0; k < c->nl; k++) {
		out->instance_locks++;
		if (c->l[k].has_ms && c->l[k].ms <= now)
			out->expired_instance_locks++;
		if (c->l[k].has_ms && c->l[k].ms <= now - p->stall_ms)
			out->long_expired_instance_locks++;
	}
	out->orchestrator.expired_locks = out->expired_instance_locks;
	/* orchestrator rows; st: CASE WHEN no lock OR l.locked_until <= now THEN 0 WHEN
	 * q.lock_token IS l.lock_token THEN 1 ELSE 2 END */
	durox_queue_detail *o = &out->orchestrator;
	for (size_t k = 0; k < c->nq; k++) {
		const qrow *q = &c->q[k];
		int lk = 0;
		if (q->lock >= 0) {
			const lrow *l = &c->l[q->lock];
			int expired = l->lu_kind && l->lu_num <= (double)now;
			lk = expired ? 0 : (q->flags & QR_SAME) ? 1 : 2;
		}
		int has_vis = (q->flags & QR_VIS) != 0, has_created = (q->flags & QR_CREATED) != 0;
		int tm = (q->flags & QR_TM) != 0;
		int64_t vis = q->vis, created = q->created, attempts = q->attempts;
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
		if (q->flags & QR_TOKEN_NULL)
			o->unlocked_rows++;
		else if (lk != 1)
			o->stale_lock_tokens++;
		if (q->flags & QR_ORPHAN) {
			o->orphans++;
			if (visible && !(q->flags & QR_QM))
				o->orphans_blocking++;
		}
	}
	/* worker rows; st: CASE WHEN lock_token IS NULL THEN 0 WHEN durox_ms(locked_until) > now
	 * THEN 1 ELSE 3 END (NULLs compare false, as in SQL) */
	durox_queue_detail *w = &out->worker;
	for (size_t k = 0; k < c->nw; k++) {
		const wrow *r = &c->w[k];
		int st = r->token_null ? 0 : (r->has_lu && r->lu > now) ? 1 : 3;
		out->worker_rows++;
		if (st == 1)
			w->in_progress++;
		if (st == 3)
			w->expired_locks++;
		if (st != 1 && r->has_vis && r->vis > now)
			w->delayed++;
		if (st != 1 && r->has_vis && r->vis <= now)
			w->available++;
		/* st<>1 AND max(vis, CASE WHEN st=3 THEN lu ELSE vis END) <= now - stall_ms */
		if (st != 1 && r->has_vis && (st != 3 || r->has_lu)) {
			int64_t m = st == 3 && r->lu > r->vis ? r->lu : r->vis;
			if (m <= now - p->stall_ms)
				w->stalled++;
		}
		/* min(CASE WHEN vis <= now THEN vis END) */
		if (r->has_vis && r->vis <= now &&
		    (out->worker_oldest_visible == DUROX_NO_TIME || r->vis < out->worker_oldest_visible))
			out->worker_oldest_visible = r->vis;
		if (r->attempts >= (int64_t)p->near_poison)
			w->near_poison++;
		if (r->attempts >= (int64_t)p->max_attempts)
			w->at_poison_limit++;
		if (r->attempts > w->max_attempt_count)
			w->max_attempt_count = r->attempts;
		if (st == 0)
			w->unlocked_rows++;
	}
}

int sq_queue_snapshot(store *base, const store_queue_params *p, store_queue_snapshot *out)
{
	sqlite_store *s = (sqlite_store *)base;
	memset(out, 0, sizeof *out);
	out->orchestrator.max_attempt_count = out->worker.max_attempt_count = -1;
	out->orchestrator_oldest_visible = out->worker_oldest_visible = DUROX_NO_TIME;
	out->oldest_timer_created = out->next_timer_at = DUROX_NO_TIME;
	int via_index = sqi_usable(s);
	int64_t dv = 0, gen[2] = {0, 0};
	int rc = sq_one_int(s, "PRAGMA data_version", "reading the data version", &dv, NULL);
	if (rc == DUROX_OK && via_index)
		rc = sqi_existence_gen(s, gen);
	if (rc != DUROX_OK)
		return rc;
	if (s->qc == NULL) {
		if ((s->qc = calloc(1, sizeof *s->qc)) == NULL)
			return store_fail(base, DUROX_ENOMEM, "out of memory");
		hmap_init(&s->qc->exists);
	}
	struct queue_cache *c = s->qc;
	int own_txn = sqlite3_get_autocommit(s->db);
	if (!c->valid || c->data_version != dv || c->own_writes != s->writes || c->via_index != via_index ||
	    (via_index && (c->gen[0] != gen[0] || c->gen[1] != gen[1]))) {
		if (via_index != c->via_index || (via_index && (c->gen[0] != gen[0] || c->gen[1] != gen[1])))
			hmap_free(&c->exists); /* instances may have left: check them again */
		c->valid = 0;
		/* one read snapshot for the queues and the locks */
		if (own_txn && (rc = sq_exec(s, "BEGIN")) != DUROX_OK)
			return rc;
		rc = qc_read(s, c, via_index);
		if (own_txn)
			sq_exec(s, "COMMIT");
		if (rc != DUROX_OK)
			return rc;
		c->valid = 1;
		c->data_version = dv;
		c->own_writes = s->writes;
		c->via_index = via_index;
		c->gen[0] = gen[0];
		c->gen[1] = gen[1];
	}
	qc_figures(c, p, out);
	return DUROX_OK;
}

/* Orchestrator and worker rows that show a problem, with their instance. */
int sq_problem_items(store *base, const store_queue_params *p, store_queue_item_cb cb, void *ud)
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

int sq_expired_locks(store *base, int64_t before, store_lock_cb cb, void *ud)
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

int sq_idle_running(store *base, int64_t older_than, store_idle_cb cb, void *ud)
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
