/*
 * sqlite_index.h - what the two files of the SQLite visibility index share (sqlite_index.c:
 * the file, its schema, build, sync and verification; sqlite_index_read.c: the reads it
 * serves). Private to src/store/sqlite*.c. The design is in docs/index.md.
 *
 * The index is a SQLite file of its own. Its connection (sq_index.db) has the index as `main`
 * and the store attached read-only as `store`, so index rows are computed by the very SQL the
 * provider reads the store with (unqualified table names resolve to the store's tables: the
 * index's own tables all start with dx_). The store's own connection is never touched.
 */
#ifndef DUROX_STORE_SQLITE_INDEX_H
#define DUROX_STORE_SQLITE_INDEX_H

#include "store/provider_index.h"
#include "store/provider_metrics.h"
#include "store/sqlite_internal.h"

#define IX_CACHE 32

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
	/* status strings */
	char state_text[16];
} sq_index;

/* The index connection's statement cache (the same contract as sq_stmt / sq_done). */
sqlite3_stmt *ix_stmt(sq_index *ix, const char *sql);
/* Maps an index connection failure to a durox code and the store's message. */
int ix_fail(sq_index *ix, int src, const char *what);

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

#endif
