/*
 * sqlite_index_sync.c - keeping the SQLite visibility index in step with the store, through
 * the store's change feed (provider_feed.h, the same feed streams use; no second one):
 *   1. the gate: PRAGMA data_version of the store and of the index file, and the store file's
 *      identity; when nothing changed an idle sync reads nothing (about two microseconds);
 *   2. the feed is polled (outside any index transaction) for the history rows committed since
 *      the index's saved position; only the instance ids are kept;
 *   3. in one index write transaction, whose read snapshot of the store is newer than the poll,
 *      every id named is recomputed from its own rows (ix_recompute): idempotent, so two
 *      processes syncing one index file, or a build and its catch-up, never count twice;
 *   4. instances rows that came without history, and deletions: the number of instances rows
 *      is compared on every reading sync (a purge by anyone's client is seen at once), and
 *      the feed's count of history rows (a prune) within its verify interval; either leads
 *      to a reconciliation that recomputes exactly the ids that differ;
 *   5. rows lost under the position (rowid reuse, VACUUM, a replaced file): a rebuild.
 * Used by sqlite_index.c (sqi_usable, status, build, verify) and sqlite_index_build.c.
 */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/sqlite_index.h"
#include "util/hmap.h"
#include "util/timeutil.h"

#define POLL_ROWS 5000 /* history rows per feed round */
#define FLUSH_IDS 2000 /* ids recomputed per statement */
#define VERIFY_MS 1000 /* the feed counts history for deletions at most this often */

/* How often the feed looks for deleted history rows: VERIFY_MS or $DUROX_INDEX_VERIFY_MS
 * (0: every reading sync; docs/index.md). */
static int64_t verify_ms(void)
{
	const char *e = getenv("DUROX_INDEX_VERIFY_MS");
	if (e == NULL || *e == '\0')
		return VERIFY_MS;
	long v = strtol(e, NULL, 10);
	return v >= 0 ? (int64_t)v : VERIFY_MS;
}

/* ---- a set of ids, as the JSON array the passes take ---------------------------------- */

typedef struct idset {
	hmap seen;
	buf json;
	size_t n;
	int oom;
} idset;

static void idset_init(idset *s)
{
	memset(s, 0, sizeof *s);
	hmap_init(&s->seen);
	buf_init(&s->json);
}

static void idset_clear(idset *s)
{
	hmap_free(&s->seen);
	buf_reset(&s->json);
	s->n = 0;
}

static void idset_free(idset *s)
{
	hmap_free(&s->seen);
	buf_free(&s->json);
}

static void idset_add(idset *s, const char *id, size_t n)
{
	int created;
	if (hmap_put(&s->seen, id, n, &created) == NULL) {
		s->oom = 1;
		return;
	}
	if (!created)
		return;
	buf_addc(&s->json, s->n == 0 ? '[' : ',');
	buf_add_json_string(&s->json, id, n);
	s->n++;
	if (buf_oom(&s->json))
		s->oom = 1;
}

/* The set's JSON array text (valid until the set changes). */
static const char *idset_json(idset *s)
{
	buf_addc(&s->json, ']');
	const char *t = buf_str(&s->json);
	s->json.len--; /* the next add replaces the bracket */
	return t;
}

/* Recomputes the set's ids (inside the caller's index transaction) and empties it. */
static int idset_flush(sq_index *ix, idset *s)
{
	if (s->n == 0)
		return DUROX_OK;
	if (s->oom)
		return store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	int rc = ix_recompute(ix, idset_json(s));
	idset_clear(s);
	return rc;
}

/* ---- the feed --------------------------------------------------------------------------- */

static int feed_open(sq_index *ix)
{
	if (ix->feed != NULL)
		return DUROX_OK;
	store *st = &ix->s->base;
	if (st->fvt == NULL)
		return store_fail(st, DUROX_EUNSUPPORTED, "the store has no change feed");
	return st->fvt->open(st, &ix->feed);
}

void ix_feed_close(sq_index *ix)
{
	if (ix->feed != NULL)
		ix->s->base.fvt->close(ix->feed);
	ix->feed = NULL;
	ix->feed_placed = 0;
}

static int save_position(sq_index *ix)
{
	unsigned char pos[STORE_FEED_POS_MAX];
	size_t n = 0;
	int rc = ix->s->base.fvt->save(ix->feed, pos, &n);
	if (rc == DUROX_OK)
		rc = ix_meta_set(ix, "feed_pos", SQLITE_BLOB, 0, NULL, pos, n);
	return rc;
}

int ix_feed_mark(sq_index *ix)
{
	int rc = feed_open(ix);
	if (rc == DUROX_OK)
		rc = ix->s->base.fvt->seek(ix->feed, 1);
	if (rc == DUROX_OK)
		rc = save_position(ix);
	ix->feed_placed = rc == DUROX_OK;
	return rc;
}

/* Positions the feed at the index's saved position, unless it is there already (a restored
 * position is checked for deletions on the next poll, a count of the history table: only
 * when another handle moved the index on, or on the first sync). */
static int restore_position(sq_index *ix, int *restored)
{
	*restored = 0;
	sqlite3_stmt *st = ix_stmt(ix, "SELECT v FROM main.dx_meta WHERE k='feed_pos'");
	if (st == NULL)
		return ix_last_err(ix);
	int r = sqlite3_step(st);
	int rc;
	if (r == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_BLOB) {
		const void *saved = sqlite3_column_blob(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		unsigned char now[STORE_FEED_POS_MAX];
		size_t nn = 0;
		if (ix->feed_placed && ix->s->base.fvt->save(ix->feed, now, &nn) == DUROX_OK && nn == n &&
		    memcmp(now, saved, n) == 0)
			rc = DUROX_OK;
		else {
			rc = ix->s->base.fvt->restore(ix->feed, saved, n);
			*restored = rc == DUROX_OK;
		}
		ix->feed_placed = rc == DUROX_OK;
	} else if (r == SQLITE_ROW || r == SQLITE_DONE)
		rc = store_fail(&ix->s->base, DUROX_ECORRUPT, "the visibility index has no feed position");
	else
		rc = ix_fail(ix, r, "reading its state");
	sq_done(st);
	return rc;
}

static int collect(void *ud, const store_feed_row *r)
{
	idset *s = ud;
	idset_add(s, r->instance_id, strlen(r->instance_id));
	return s->oom ? DUROX_ENOMEM : 0;
}

/* ---- reconciliations ------------------------------------------------------------------------ */

/* Adds to ids every id that one ordered id list (a) holds and the other (b) does not, and,
 * with counts (column 1 of both), every id whose counts differ. */
static int merge_diff(sq_index *ix, sqlite3_stmt *a, sqlite3_stmt *b, int counts, idset *ids)
{
	int ra = sqlite3_step(a), rb = sqlite3_step(b);
	while (ra == SQLITE_ROW || rb == SQLITE_ROW) {
		const char *ia = ra == SQLITE_ROW ? (const char *)sqlite3_column_blob(a, 0) : NULL;
		size_t na = ra == SQLITE_ROW ? (size_t)sqlite3_column_bytes(a, 0) : 0;
		const char *ib = rb == SQLITE_ROW ? (const char *)sqlite3_column_blob(b, 0) : NULL;
		size_t nb = rb == SQLITE_ROW ? (size_t)sqlite3_column_bytes(b, 0) : 0;
		int c = ra != SQLITE_ROW ? 1 : rb != SQLITE_ROW ? -1 : ix_id_cmp(ia ? ia : "", na, ib ? ib : "", nb);
		if (c < 0) {
			idset_add(ids, ia ? ia : "", na);
			ra = sqlite3_step(a);
		} else if (c > 0) {
			idset_add(ids, ib ? ib : "", nb);
			rb = sqlite3_step(b);
		} else {
			if (counts && sqlite3_column_int64(a, 1) != sqlite3_column_int64(b, 1))
				idset_add(ids, ia ? ia : "", na);
			ra = sqlite3_step(a);
			rb = sqlite3_step(b);
		}
	}
	int rc = ra != SQLITE_DONE   ? ix_fail(ix, ra, "reading the store")
	         : rb != SQLITE_DONE ? ix_fail(ix, rb, "reading the index")
	                             : DUROX_OK;
	sq_done(a);
	sq_done(b);
	if (rc == DUROX_OK && ids->oom)
		rc = store_fail(&ix->s->base, DUROX_ENOMEM, "out of memory");
	return rc;
}

/* Instances rows that appeared or vanished: the store's ids against the index's. */
static int reconcile_instances(sq_index *ix, idset *ids)
{
	sqlite3_stmt *a = ix_stmt(ix, "SELECT instance_id FROM store.instances ORDER BY instance_id");
	sqlite3_stmt *b = a ? ix_stmt(ix, "SELECT instance_id FROM main.dx_inst ORDER BY instance_id") : NULL;
	if (b == NULL) {
		if (a)
			sq_done(a);
		return ix_last_err(ix);
	}
	return merge_diff(ix, a, b, 0, ids);
}

/* The index's count of an id's rows in a table (history: its contribution's rows). */
static void fn_contrib_rows(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	arena a;
	arena_init(&a);
	ix_contrib c;
	if (ix_contrib_decode(sqlite3_value_blob(argv[0]), (size_t)sqlite3_value_bytes(argv[0]), &a, &c) != 0)
		sqlite3_result_int64(ctx, -1);
	else
		sqlite3_result_int64(ctx, sqlite3_value_int(argv[1]) ? (int64_t)c.n_exec : (int64_t)c.rows);
	arena_release(&a);
}

/* History or executions rows deleted (a prune, a purge): the store's count per id against the
 * index's. Reads the history table's primary key index, not its rows. */
static int reconcile_rows(sq_index *ix, idset *ids)
{
	sqlite3_create_function(ix->db, "durox_contrib_rows", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
	                        fn_contrib_rows, NULL, NULL);
	static const char *const store_sql[] = {
	        "SELECT instance_id, count(*) FROM store.history GROUP BY instance_id ORDER BY instance_id",
	        "SELECT instance_id, count(*) FROM store.executions GROUP BY instance_id ORDER BY instance_id"};
	static const char *const index_sql[] = {
	        "SELECT instance_id, durox_contrib_rows(c, 0) FROM main.dx_contrib WHERE durox_contrib_rows(c, 0) > 0"
	        " ORDER BY instance_id",
	        "SELECT instance_id, durox_contrib_rows(c, 1) FROM main.dx_contrib WHERE durox_contrib_rows(c, 1) > 0"
	        " ORDER BY instance_id"};
	for (int k = 0; k < 2; k++) {
		sqlite3_stmt *a = ix_stmt(ix, store_sql[k]);
		sqlite3_stmt *b = a ? ix_stmt(ix, index_sql[k]) : NULL;
		if (b == NULL) {
			if (a)
				sq_done(a);
			return ix_last_err(ix);
		}
		int rc = merge_diff(ix, a, b, 1, ids);
		if (rc != DUROX_OK)
			return rc;
	}
	return DUROX_OK;
}

/* ---- the store files' stamp ------------------------------------------------------------------ */

/* What the store's files look like: the database file's and its WAL's identity, size, and
 * modification and change times (ns). Every commit writes one of the two files, and a write
 * sets its file's times to the present, so a stamp equal to one taken at a verified sync
 * (the database file's change time too) proves that nothing was committed since: a fresh
 * process then needs neither the feed's count of history nor the count of instances. A stamp is recorded only when both
 * files' times are older than STAMP_MARGIN_MS at the moment it is taken ("racy" otherwise, as git calls an index entry
 * whose file changed within its timestamp's resolution): a commit whose write had begun but was not yet visible when
 * the sync read the store could otherwise leave the same times behind. */
#define STAMP_MARGIN_MS 2000
#define STAMP_N 13

typedef struct ix_stamp {
	int64_t v[STAMP_N];
} ix_stamp;

static int64_t ns_of(const struct timespec *t) { return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec; }

/* Fills *st; *trusted = 0 when the files changed too recently (or cannot be read). */
static void stamp_take(sq_index *ix, ix_stamp *st, int *trusted)
{
	memset(st, 0, sizeof *st);
	*trusted = 0;
	struct stat db, wal;
	char walpath[PATH_MAX + 8];
	snprintf(walpath, sizeof walpath, "%s-wal", ix->s->location);
	int64_t now_ns = time_now_ms() * 1000000;
	if (stat(ix->s->location, &db) != 0)
		return;
	int has_wal = stat(walpath, &wal) == 0;
	st->v[0] = 1;
	st->v[1] = (int64_t)db.st_dev;
	st->v[2] = (int64_t)db.st_ino;
	st->v[3] = (int64_t)db.st_size;
	st->v[4] = ns_of(&db.st_mtim);
	st->v[5] = ns_of(&db.st_ctim);
	int64_t newest = st->v[4] > st->v[5] ? st->v[4] : st->v[5];
	if (has_wal) {
		st->v[6] = 1;
		st->v[7] = (int64_t)wal.st_dev;
		st->v[8] = (int64_t)wal.st_ino;
		st->v[9] = (int64_t)wal.st_size;
		st->v[10] = ns_of(&wal.st_mtim);
		if (st->v[10] > newest)
			newest = st->v[10];
		/* not the WAL's change time: SQLite, running as root, gives the WAL the database's
		 * owner (fchown) each time a connection opens it, which sets its change time */
	}
	st->v[12] = 0;
	*trusted = newest < now_ns - (int64_t)STAMP_MARGIN_MS * 1000000;
}

/* Whether dx_meta holds a stamp equal to st. */
static int stamp_matches(sq_index *ix, const ix_stamp *st)
{
	sqlite3_stmt *q = ix_stmt(ix, "SELECT v FROM main.dx_meta WHERE k='stamp'");
	if (q == NULL)
		return 0;
	int same = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_BLOB &&
	           sqlite3_column_bytes(q, 0) == (int)sizeof *st &&
	           memcmp(sqlite3_column_blob(q, 0), st, sizeof *st) == 0;
	sq_done(q);
	return same;
}

/* How often the store is checked for deleted rows: verify_ms(), stretched so that the checks
 * (whose cost the last one recorded) take at most a fiftieth of the time; 0 for every sync. */
static int64_t verify_every(sq_index *ix)
{
	int64_t every = verify_ms(), cost = 0;
	if (every > 0 && ix_meta_int(ix, "verify_cost_ms", &cost, NULL) == DUROX_OK && cost * 50 > every)
		every = cost * 50;
	return every;
}

/* ---- the sync ------------------------------------------------------------------------------- */

/* Nonzero when the file at the store's path is not the one the index connection attached. */
static int store_replaced(sq_index *ix)
{
	struct stat sb;
	if (stat(ix->s->location, &sb) != 0)
		return 1;
	return (int64_t)sb.st_dev != ix->store_dev || (int64_t)sb.st_ino != ix->store_ino;
}

int ix_sync(sq_index *ix)
{
	int64_t sdv = 0, idv = 0;
	int rc;
	if (store_replaced(ix)) {
		/* the attached file is the old one: start over on the new one (ix_open sees another
		 * store in the file and empties it) */
		ix_feed_close(ix);
		ix_set_state(ix, IX_CLOSED, "");
		return DUROX_OK;
	}
	if ((rc = ix_int(ix, "PRAGMA store.data_version", NULL, &sdv, NULL)) != DUROX_OK ||
	    (rc = ix_int(ix, "PRAGMA main.data_version", NULL, &idv, NULL)) != DUROX_OK)
		return rc;
	if (ix->gate_valid && sdv == ix->gate_store_dv && idv == ix->gate_index_dv)
		return DUROX_OK;
	char state[32];
	if ((rc = ix_meta_text(ix, "state", state, sizeof state)) != DUROX_OK)
		return rc;
	if (strcmp(state, "ready") != 0) {
		/* another handle dropped it or started a rebuild */
		ix_set_state(ix, strcmp(state, "building") == 0 ? IX_BUILDING : IX_ABSENT,
		             strcmp(state, "building") == 0 ? "a build is under way" : "not built yet");
		return DUROX_OK;
	}
	/* the stamp of the store's files, before anything of the store is read */
	ix_stamp stamp;
	int stamp_ok;
	int64_t t0 = time_now_ms();
	stamp_take(ix, &stamp, &stamp_ok);
	int restored = 0;
	if ((rc = feed_open(ix)) != DUROX_OK || (rc = restore_position(ix, &restored)) != DUROX_OK)
		return rc;
	if (restored) {
		/* a position read back (a fresh handle, or another handle moved the index on): no
		 * deletion check at once when the store's files are as a verified sync left them, or
		 * when a handle checked within the verify interval */
		int64_t at = 0;
		int found = 0;
		if (stamp_matches(ix, &stamp)) {
			ix->s->base.fvt->vouch(ix->feed, t0);
			ix->gate_valid = 1;
			ix->gate_store_dv = sdv;
			ix->gate_index_dv = idv;
			return DUROX_OK;
		}
		if ((rc = ix_meta_int(ix, "verified_at", &at, &found)) != DUROX_OK)
			return rc;
		if (found && at > 0)
			ix->s->base.fvt->vouch(ix->feed, at);
	}
	/* 2. the ids the feed names, read before the index transaction begins */
	idset ids;
	idset_init(&ids);
	store_feed_request rq = {POLL_ROWS, 0, 0, verify_every(ix), t0};
	int deleted = 0, more = 1, polls = 0, verified = 0;
	int64_t v0 = time_mono_ms();
	while (rc == DUROX_OK && more) {
		store_feed_result res;
		rc = ix->s->base.fvt->poll(ix->feed, &rq, collect, &ids, &res);
		if (rc != DUROX_OK)
			break;
		if (res.reset == STORE_FEED_RESET_LOST) {
			/* rows may have been missed: everything derived is suspect */
			idset_free(&ids);
			ix_set_state(ix, IX_STALE, res.reason);
			return ix_build(ix, 1, ix->progress, ix->progress_ud);
		}
		if (res.reset == STORE_FEED_RESET_DELETED)
			deleted = 1;
		if (res.verified)
			verified = 1;
		more = res.more || res.reset != STORE_FEED_RESET_NONE;
		if (++polls > 1000000)
			break;
	}
	int64_t cost = time_mono_ms() - v0; /* the checks' cost, when they ran */
	if (rc != DUROX_OK) {
		idset_free(&ids);
		return rc;
	}
	int64_t max_rowid = 0, seen_rowid = 0, n_store = 0, n_index = 0;
	int found;
	if (ids.n == 0 && !deleted && !verified) {
		/* nothing in history: a read transaction tells whether instances rows changed (new
		 * ones without history, or deleted ones), and only then is the index written */
		if ((rc = ix_exec(ix, "BEGIN", "syncing")) != DUROX_OK) {
			idset_free(&ids);
			return rc;
		}
		if ((rc = ix_int(ix, "SELECT max(rowid) FROM store.instances", NULL, &max_rowid, NULL)) == DUROX_OK &&
		    (rc = ix_meta_int(ix, "inst_rowid", &seen_rowid, &found)) == DUROX_OK &&
		    (rc = ix_int(ix, "SELECT count(*) FROM store.instances", NULL, &n_store, NULL)) == DUROX_OK)
			rc = ix_meta_int(ix, "n_inst", &n_index, NULL);
		sqlite3_exec(ix->db, "COMMIT", NULL, NULL, NULL);
		if (rc == DUROX_OK && max_rowid == seen_rowid && n_store == n_index) {
			idset_free(&ids);
			ix->gate_valid = 1;
			ix->gate_store_dv = sdv;
			ix->gate_index_dv = idv;
			return DUROX_OK;
		}
		if (rc != DUROX_OK) {
			idset_free(&ids);
			return rc;
		}
	}
	/* 3. one write transaction of the index: its snapshot of the store is newer than the poll */
	if ((rc = ix_exec(ix, "BEGIN IMMEDIATE", "syncing")) != DUROX_OK) {
		idset_free(&ids);
		return rc;
	}
	if ((rc = ix_meta_text(ix, "state", state, sizeof state)) == DUROX_OK && strcmp(state, "ready") != 0) {
		sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
		idset_free(&ids);
		ix_set_state(ix, IX_BUILDING, "a build is under way");
		return DUROX_OK;
	}
	/* 4. instances rows new since the last sync (with or without history of their own) */
	if (rc == DUROX_OK &&
	    (rc = ix_int(ix, "SELECT max(rowid) FROM store.instances", NULL, &max_rowid, NULL)) == DUROX_OK &&
	    (rc = ix_meta_int(ix, "inst_rowid", &seen_rowid, &found)) == DUROX_OK && max_rowid > seen_rowid) {
		sqlite3_stmt *st = ix_stmt(ix, "SELECT instance_id FROM store.instances WHERE rowid > ?1");
		if (st == NULL)
			rc = ix_last_err(ix);
		else {
			sqlite3_bind_int64(st, 1, seen_rowid);
			int r;
			while ((r = sqlite3_step(st)) == SQLITE_ROW)
				idset_add(&ids, (const char *)sqlite3_column_blob(st, 0),
				          (size_t)sqlite3_column_bytes(st, 0));
			sq_done(st);
			if (r != SQLITE_DONE)
				rc = ix_fail(ix, r, "reading instances");
		}
	}
	if (rc == DUROX_OK && deleted)
		rc = reconcile_rows(ix, &ids);
	if (rc == DUROX_OK)
		rc = idset_flush(ix, &ids);
	/* deletions of instances rows, by anyone (Duroxide's deleteInstance, a purge, a hand-written
	 * DELETE): the counts tell at every reading sync, so that a deletion shows at once, not
	 * only when the feed next counts history (a count of the smallest index of instances: a
	 * few ms per million instances) */
	int64_t c0 = time_mono_ms();
	if (rc == DUROX_OK &&
	    (rc = ix_int(ix, "SELECT count(*) FROM store.instances", NULL, &n_store, NULL)) == DUROX_OK &&
	    (cost += verified ? time_mono_ms() - c0 : 0) >= 0 &&
	    (rc = ix_meta_int(ix, "n_inst", &n_index, NULL)) == DUROX_OK && n_store != n_index) {
		if ((rc = reconcile_instances(ix, &ids)) == DUROX_OK)
			rc = idset_flush(ix, &ids);
	}
	if (rc == DUROX_OK && max_rowid != seen_rowid)
		rc = ix_meta_set_int(ix, "inst_rowid", max_rowid);
	if (rc == DUROX_OK)
		rc = save_position(ix);
	if (rc == DUROX_OK)
		rc = ix_meta_set_int(ix, "synced_at", time_now_ms());
	if (rc == DUROX_OK && verified) {
		/* what a fresh handle needs to skip these checks (the time before the poll) */
		if ((rc = ix_meta_set_int(ix, "verified_at", t0)) == DUROX_OK)
			rc = ix_meta_set_int(ix, "verify_cost_ms", cost);
		if (rc == DUROX_OK)
			rc = stamp_ok ? ix_meta_set(ix, "stamp", SQLITE_BLOB, 0, NULL, &stamp, sizeof stamp)
			              : ix_exec(ix, "DELETE FROM main.dx_meta WHERE k='stamp'", "saving its state");
	}
	if (rc == DUROX_OK)
		rc = ix_exec(ix, "COMMIT", "syncing");
	if (rc != DUROX_OK)
		sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
	idset_free(&ids);
	if (rc != DUROX_OK)
		return rc;
	/* the gate as of the start: whatever was committed since makes the next sync read */
	ix->gate_valid = 1;
	ix->gate_store_dv = sdv;
	ix->gate_index_dv = idv;
	return DUROX_OK;
}
