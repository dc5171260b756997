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

#include "store/format.h"
#include "store/sqlite_index.h"
#include "util/hmap.h"
#include "util/sha256.h"
#include "util/timeutil.h"

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

int ix_last_err(sq_index *ix) { return ix->last_rc != 0 ? ix->last_rc : DUROX_EIO; }

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
int ix_exec(sq_index *ix, const char *sql, const char *what)
{
	int rc = sqlite3_exec(ix->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? DUROX_OK : ix_fail(ix, rc, what);
}

/* One integer from sql (bound text ?1 when arg is not NULL); *found = 0 for no row / NULL. */
int ix_int(sq_index *ix, const char *sql, const char *arg, int64_t *out, int *found)
{
	*out = 0;
	if (found)
		*found = 0;
	sqlite3_stmt *st = ix_stmt(ix, sql);
	if (st == NULL)
		return ix_last_err(ix);
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

/* ---- meta ------------------------------------------------------------------------------- */

int ix_meta_int(sq_index *ix, const char *k, int64_t *v, int *found)
{
	return ix_int(ix, "SELECT v FROM main.dx_meta WHERE k=?1", k, v, found);
}

/* Copies the text value of k into out (capacity n); "" when absent. */
int ix_meta_text(sq_index *ix, const char *k, char *out, size_t n)
{
	out[0] = '\0';
	sqlite3_stmt *st = ix_stmt(ix, "SELECT v FROM main.dx_meta WHERE k=?1");
	if (st == NULL)
		return ix_last_err(ix);
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
	int rc = r == SQLITE_ROW || r == SQLITE_DONE ? DUROX_OK : ix_fail(ix, r, "reading its state");
	sq_done(st);
	return rc;
}

int ix_meta_set(sq_index *ix, const char *k, int type, int64_t i, const char *t, const void *blob, size_t n)
{
	sqlite3_stmt *st = ix_stmt(ix, "INSERT OR REPLACE INTO main.dx_meta (k, v) VALUES (?1, ?2)");
	if (st == NULL)
		return ix_last_err(ix);
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

int ix_meta_set_int(sq_index *ix, const char *k, int64_t v)
{
	return ix_meta_set(ix, k, SQLITE_INTEGER, v, NULL, NULL, 0);
}
int ix_meta_set_text(sq_index *ix, const char *k, const char *v)
{
	return ix_meta_set(ix, k, v ? SQLITE_TEXT : SQLITE_NULL, 0, v, NULL, 0);
}

/* ---- the schema ------------------------------------------------------------------------- */

const char ix_schema_sql[] =
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
const char ix_index_sql[] =
        "CREATE INDEX IF NOT EXISTS main.dx_inst_created ON dx_inst (created_at, instance_id);"
        "CREATE INDEX IF NOT EXISTS main.dx_inst_updated ON dx_inst (updated_at, instance_id);"
        "CREATE INDEX IF NOT EXISTS main.dx_inst_name ON dx_inst (name, instance_id);"
        "CREATE INDEX IF NOT EXISTS main.dx_inst_status ON dx_inst (status, created_at, instance_id);"
        "CREATE INDEX IF NOT EXISTS main.dx_inst_status_updated ON dx_inst (status, updated_at, instance_id);"
        /* a status filter in InstanceId and OrchestrationName order (and a name within a status)
         * without a sort of every instance of that status */
        "CREATE INDEX IF NOT EXISTS main.dx_inst_status_id ON dx_inst (status, instance_id);"
        "CREATE INDEX IF NOT EXISTS main.dx_inst_status_name ON dx_inst (status, name, instance_id);"
        /* a name within a status in CreatedAt order: seeks to page 500 as to page 1, instead of
         * walking the status' creation order and skipping the other names */
        "CREATE INDEX IF NOT EXISTS main.dx_inst_status_name_created ON dx_inst (status, name, created_at,"
        " instance_id);"
        "CREATE INDEX IF NOT EXISTS main.dx_inst_parent ON dx_inst (parent_instance, instance_id)"
        " WHERE parent_instance IS NOT NULL;";

const char ix_drop_sql[] = "DROP TABLE IF EXISTS main.dx_inst; DROP TABLE IF EXISTS main.dx_contrib;"
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

int ix_ident_now(sqlite_store *s, store_ident *id)
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

/* ---- opening ------------------------------------------------------------------------------ */

void ix_set_state(sq_index *ix, int state, const char *reason)
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

/* The store, as the index connection reads it, memory-mapped or not. A sync's reads are small
 * (a count of the smallest index of instances, the rows of the instances that changed) but
 * each starts with an empty page cache, since the runtime commits between any two of them:
 * through a mapping they cost no copy and no system call. A build and a verification read
 * all of history, through read(): so that what they touch does not count as this process's
 * memory (resident pages of a mapping do). */
void ix_store_mmap(sq_index *ix, int on)
{
	sqlite3_exec(ix->db, on ? "PRAGMA store.mmap_size=2147418112" : "PRAGMA store.mmap_size=0", NULL, NULL, NULL);
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
	ix_store_mmap(ix, 1);
	return DUROX_OK;
}

/* Opens (creating when needed) the index file and sets the state from what it holds. */
static int ix_open(sq_index *ix)
{
	sqlite_store *s = ix->s;
	store_ident id;
	if (ix_ident_now(s, &id) != 0) {
		ix_set_state(ix, IX_BROKEN, "the store's real path cannot be read");
		return DUROX_EIO;
	}
	char err[512] = "";
	if (ix->path == NULL) {
		char p[PATH_MAX];
		int rc = default_path(id.path, p, sizeof p, err, sizeof err);
		if (rc != DUROX_OK) {
			ix_set_state(ix, IX_BROKEN, err);
			return store_fail(&s->base, rc, "%s", err);
		}
		if ((ix->path = strdup(p)) == NULL)
			return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	}
	int rc = ix_connect(ix);
	ix->store_dev = id.dev;
	ix->store_ino = id.ino;
	int foreign = 0, ours = 0;
	if (rc == DUROX_OK)
		rc = foreign_tables(ix, &foreign, &ours);
	if (rc == DUROX_ECORRUPT || (rc == DUROX_OK && foreign && !ours)) {
		/* not an index of ours: ours to replace only at the default path, under our cache */
		if (s->index_path != NULL) {
			ix_disconnect(ix);
			ix_set_state(ix, IX_BROKEN,
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
		rc = ix_exec(ix, ix_schema_sql, "creating its tables");
	if (rc != DUROX_OK) {
		ix_disconnect(ix);
		ix_set_state(ix, IX_BROKEN, s->base.err);
		return rc;
	}
	/* is it this store's index, in a format we read? */
	int64_t format = 0, dev = 0, ino = 0;
	int has_format = 0;
	char path[PATH_MAX], state[32];
	if ((rc = ix_meta_int(ix, "format", &format, &has_format)) != DUROX_OK ||
	    (rc = ix_meta_int(ix, "store_dev", &dev, NULL)) != DUROX_OK ||
	    (rc = ix_meta_int(ix, "store_ino", &ino, NULL)) != DUROX_OK ||
	    (rc = ix_meta_text(ix, "store_path", path, sizeof path)) != DUROX_OK ||
	    (rc = ix_meta_text(ix, "state", state, sizeof state)) != DUROX_OK) {
		ix_disconnect(ix);
		ix_set_state(ix, IX_BROKEN, s->base.err);
		return rc;
	}
	if (!has_format) {
		ix_set_state(ix, IX_ABSENT, "not built yet");
	} else if (format != IX_FORMAT || strcmp(path, id.path) != 0 || dev != id.dev || ino != id.ino) {
		/* another store's, or another format: start again */
		const char *why =
		        format != IX_FORMAT ? "it was written in another format" : "it belongs to another store file";
		if ((rc = ix_exec(ix, ix_drop_sql, "clearing it")) != DUROX_OK ||
		    (rc = ix_exec(ix, ix_schema_sql, "creating its tables")) != DUROX_OK) {
			ix_disconnect(ix);
			ix_set_state(ix, IX_BROKEN, s->base.err);
			return rc;
		}
		ix_set_state(ix, IX_ABSENT, why);
	} else if (strcmp(state, "ready") == 0) {
		ix_set_state(ix, IX_READY, "");
	} else {
		ix_set_state(ix, IX_BUILDING, "a build was interrupted (resumable)");
	}
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
			ix_set_state(ix, IX_OFF, s->memory ? "an in-memory store has no index" : "the index is off");
		s->ix = ix;
	}
	return s->ix;
}

/* The index of s, opened (state CLOSED left behind: also after a sync found the store file
 * replaced, when the connection still has the old file attached). NULL when out of memory. */
sq_index *ix_opened(sqlite_store *s)
{
	sq_index *ix = ix_of(s);
	if (ix != NULL && ix->state == IX_CLOSED) {
		ix_disconnect(ix);
		ix_open(ix);
	}
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
	for (int round = 0; round < 2 && rc == DUROX_OK; round++) {
		if (ix->state == IX_ABSENT || ix->state == IX_BUILDING) {
			/* the first read that needs it builds it (a build another handle runs is joined) */
			rc = ix_build(ix, 0, ix->progress, ix->progress_ud);
		} else if (ix->state == IX_READY) {
			rc = ix_sync(ix);
		}
		if (ix->state != IX_CLOSED)
			break;
		ix = ix_opened(s); /* the store file was replaced: its index starts again */
	}
	/* an index that fails is set aside: the store answers, and the message is not this read's */
	memcpy(s->base.err, saved, sizeof saved);
	if (rc != DUROX_OK && rc != DUROX_EABORT && rc != DUROX_EBUSY)
		ix_set_state(ix, IX_BROKEN,
		             "the index failed; the store answers reads (rebuild: duroxlua index build)");
	return rc == DUROX_OK && ix->state == IX_READY;
}

void sqi_close(sqlite_store *s)
{
	sq_index *ix = s->ix;
	if (ix == NULL)
		return;
	ix_feed_close(ix);
	ix_disconnect(ix);
	free(ix->path);
	free(ix);
	s->ix = NULL;
}

const char *ix_state_name(int st)
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
	out->state = ix_state_name(ix->state);
	out->path = ix->path;
	out->reason = ix->reason;
	if (ix->db == NULL)
		return DUROX_OK;
	int64_t v;
	int found;
	if (ix_meta_int(ix, "built_at", &v, &found) == DUROX_OK && found)
		out->built_at = v;
	if (ix_meta_int(ix, "synced_at", &v, &found) == DUROX_OK && found)
		out->synced_at = v;
	if (ix_meta_int(ix, "build_done", &v, NULL) == DUROX_OK)
		out->build_done = (uint64_t)v;
	if (ix_meta_int(ix, "build_total", &v, NULL) == DUROX_OK)
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

static int sqi_sync(store *base)
{
	sqlite_store *s = (sqlite_store *)base;
	sq_index *ix = ix_opened(s);
	if (ix == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	if (ix->state == IX_OFF)
		return store_fail(base, DUROX_EUNSUPPORTED, "this handle keeps no visibility index (%s)", ix->reason);
	if (sqi_usable(s))
		return DUROX_OK;
	return store_fail(base, ix->state == IX_BUILDING ? DUROX_EABORT : DUROX_EIO, "the visibility index is %s: %s",
	                  ix_state_name(ix->state), ix->reason);
}

const store_index_vtable sq_index_vtable = {sqi_status, sqi_build, sqi_drop, sqi_verify, sqi_set_progress, sqi_sync};
