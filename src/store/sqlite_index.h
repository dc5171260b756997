/*
 * sqlite_index.h - what the files of the SQLite visibility index share: sqlite_index.c (the
 * file, its schema and identity, the state and the provider's entry points),
 * sqlite_index_build.c (contributions, totals, the build), sqlite_index_sync.c (following
 * the store through the change feed), sqlite_index_verify.c and sqlite_index_read.c (the reads
 * it serves). Private to src/store/sqlite*.c. The design is in docs/index.md.
 *
 * The index is a SQLite file of its own. Its connection (sq_index.db) has the index as `main`
 * and the store attached read-only as `store`, so index rows are computed by the very SQL the
 * provider reads the store with (unqualified table names resolve to the store's tables: the
 * index's own tables all start with dx_). The store's own connection is never touched.
 */
#ifndef DUROX_STORE_SQLITE_INDEX_H
#define DUROX_STORE_SQLITE_INDEX_H

#include <limits.h>

#include "store/provider_feed.h"
#include "store/provider_index.h"
#include "store/provider_metrics.h"
#include "store/sqlite_internal.h"

#define IX_CACHE 32
#define IX_FORMAT 3 /* the layout of the index file's tables (3: the listing indexes of docs/index.md) */

/* The handle's view of its index. State machine (docs/index.md):
 *   CLOSED --first read--> ABSENT/BUILDING/READY (file opened)     OFF: never
 *   ABSENT/BUILDING --build--> READY --store changed beyond what a sync follows--> STALE
 *   STALE --build--> READY      any --unusable file--> BROKEN (reads use the store) */
enum ix_state { IX_CLOSED, IX_OFF, IX_ABSENT, IX_BUILDING, IX_READY, IX_STALE, IX_BROKEN };

typedef struct sq_index {
	sqlite_store *s;
	sqlite3 *db; /* NULL until opened */
	char *path;  /* the index file */
	int state;   /* enum ix_state */
	char reason[512];
	cached_stmt cache[IX_CACHE];
	uint64_t clock;
	int last_rc;
	store_progress_fn progress; /* for builds that a read starts */
	void *progress_ud;
	int building; /* a build runs on this handle now (no reentry from its progress callback) */
	/* the gate: nothing was committed to the store or the index since the last sync */
	int gate_valid;
	int64_t gate_store_dv, gate_index_dv;
	store_feed *feed;             /* the store's change feed (on the store's own connection), once opened */
	int feed_placed;              /* the feed stands where the index's dx_meta feed_pos says */
	int64_t store_dev, store_ino; /* the store file the index connection attached */
	/* instances rows this handle removed from the index (syncs, rebuilds): what a cache of
	 * "this instance exists" must notice (sqi_existence_gen) */
	uint64_t removals;
	/* status strings */
	char state_text[16];
} sq_index;

/* The index connection's statement cache (the same contract as sq_stmt / sq_done). */
sqlite3_stmt *ix_stmt(sq_index *ix, const char *sql);
/* Maps an index connection failure to a durox code and the store's message. */
int ix_fail(sq_index *ix, int src, const char *what);
/* The code for a NULL from ix_stmt. */
int ix_last_err(sq_index *ix);
/* Runs sql (no rows) on the index connection. */
int ix_exec(sq_index *ix, const char *sql, const char *what);
/* One integer from sql (bound text ?1 when arg is not NULL); *found (may be NULL) = 0 for
 * no row or NULL. */
int ix_int(sq_index *ix, const char *sql, const char *arg, int64_t *out, int *found);

/* dx_meta: the index's state (k -> v). */
int ix_meta_int(sq_index *ix, const char *k, int64_t *v, int *found);
int ix_meta_text(sq_index *ix, const char *k, char *out, size_t n); /* "" when absent */
int ix_meta_set(sq_index *ix, const char *k, int type, int64_t i, const char *t, const void *blob, size_t n);
int ix_meta_set_int(sq_index *ix, const char *k, int64_t v);
int ix_meta_set_text(sq_index *ix, const char *k, const char *v);

void ix_set_state(sq_index *ix, int state, const char *reason);
/* Maps the store into memory for the index connection's reads (on), or reads it (off). */
void ix_store_mmap(sq_index *ix, int on);
/* "ready", "building", ... (durox_index_status.state). */
const char *ix_state_name(int state);
/* The index of s, its file opened when it was not (NULL when out of memory). */
sq_index *ix_opened(sqlite_store *s);

/* What names the store: its real path, and its file's device and inode (a file replaced at the
 * same path is another store). */
typedef struct store_ident {
	char path[PATH_MAX];
	int64_t dev, ino;
} store_ident;
int ix_ident_now(sqlite_store *s, store_ident *id);

/* The schema of the index's tables, its listing indexes, and what empties it. */
extern const char ix_schema_sql[], ix_index_sql[], ix_drop_sql[];

/* ---- the build (sqlite_index_build.c) ------------------------------------------------------ */

/* Builds, or resumes a build, until ready; progress may stop it (DUROX_EABORT, resumable). */
int ix_build(sq_index *ix, int rebuild, store_progress_fn progress, void *ud);
/* Writes the summaries and contributions of the instance ids in (lo, hi] (range: first,
 * has bounds; see sqlite_index_build.c) or, with ids_json a JSON array, of exactly those ids,
 * into schema ("main": adding to its totals and groups; "temp": verify's scratch tables);
 * want_inst writes summary rows. *n_inst: instances rows read. */
int ix_build_pass(sq_index *ix, const char *schema, int want_inst, const char *lo, int first, const char *hi,
                  const char *ids_json, int64_t *n_inst);
/* Recomputes the given ids (a JSON array) from the store: their old rows, contributions and
 * open activities are taken out of the totals and groups and replaced by what the store
 * holds now (nothing, for ids the store no longer has). Inside the caller's transaction. */
int ix_recompute(sq_index *ix, const char *ids_json);
/* Compares ids as SQLite's BINARY collation does. */
int ix_id_cmp(const char *a, size_t an, const char *b, size_t bn);
/* The digest's status class of a stored status: 1 running ... 5 unknown. */
int ix_status_class(const char *status);
/* The key of a (name, version) group in dx_groups. */
void ix_group_key(buf *b, const char *name, const char *version);

/* ---- following the store (sqlite_index_sync.c) --------------------------------------------- */

/* Brings a ready index up to date through the change feed (the gate first: an idle sync reads
 * nothing), reconciling deletions; a store that changed beyond what it can follow (rows lost
 * under the feed's position) is rebuilt. */
int ix_sync(sq_index *ix);
/* Positions the feed at the present and records it as the index's (a build's start). */
int ix_feed_mark(sq_index *ix);
/* Closes the feed (the index is closed or dropped). */
void ix_feed_close(sq_index *ix);

/* ---- verification (sqlite_index_verify.c) --------------------------------------------------- */

int sqi_verify(store *base, durox_index_verify_result *out);
/* ---- the reads it serves (sqlite_index_read.c), same contracts as the store's ---------- */

int sqi_list(sqlite_store *s, const store_list_query *q, store_summary_cb cb, void *ud);
int sqi_count(sqlite_store *s, const durox_filter *f, int64_t *out);
int sqi_summaries_by_id(sqlite_store *s, const char *const *ids, size_t n, store_summary_cb cb, void *ud);
int sqi_instance_digest(sqlite_store *s, store_instance_digest *out);

int sqi_history_digest(sqlite_store *s, store_history_digest *out);

/* ---- an id's contribution to the digests (sqlite_index.c) ----------------------------- */

typedef struct ix_dgroup {
	const char *name, *version; /* version NULL for JSON null */
	uint64_t os;                /* OrchestrationStarted events counted into this (name, version) */
	uint64_t n;                 /* durations counted for it */
	int64_t sum;                /* their sum, ms */
} ix_dgroup;

/* Everything the history and instance digests count for one instance id (or for a whole
 * store, in dx_totals). All sums are integers, so adding and subtracting is exact. */
typedef struct ix_contrib {
	uint64_t rows, other;
	uint64_t by_type[EV__COUNT];
	uint64_t failed_by_kind[DUROX_FAILURE__COUNT];
	uint64_t rt_n; /* activity round trips */
	int64_t rt_sum;
	uint64_t n_exec; /* executions rows */
	uint64_t dur_n;  /* durations (every group) */
	int64_t dur_sum;
	size_t ndg; /* durations by group (per id only) */
	ix_dgroup *dg;
} ix_contrib;

/* Encodes c into b (varints); decodes a blob into c (strings in a). Decoding returns -1 for
 * a blob that is not one (a corrupt index). */
void ix_contrib_encode(buf *b, const ix_contrib *c);
int ix_contrib_decode(const void *p, size_t n, arena *a, ix_contrib *c);
/* t += c (counters only). */
void ix_contrib_add(ix_contrib *t, const ix_contrib *c);
/* Adds sign * c into dx_totals. */
int ix_totals_add(sq_index *ix, const ix_contrib *c, int sign);

#endif
