/*
 * provider_index.h - the visibility index in the provider contract: a per-instance summary
 * table and persisted metric digests that duroxlua keeps beside the store (never in the
 * runtime's file or schema), so that listing, counting, paging in any order, group-by,
 * percentiles, time series and metrics read indexes instead of scanning the runtime's tables.
 *
 * A provider that keeps one points store.ivt at a store_index_vtable (SQLite: sqlite_index.c,
 * a file of its own that the provider's index connection opens with the store attached
 * read-only). The provider routes its own reads through the index whenever the index is
 * ready and, synced first, answers exactly what the store answers; otherwise it reads the
 * store. So the engine sees no difference but speed; it calls these entries only for the
 * index's own operations (status, build, drop, verify: durox_index_*).
 */
#ifndef DUROX_STORE_PROVIDER_INDEX_H
#define DUROX_STORE_PROVIDER_INDEX_H

#include "store/provider.h"

/* Progress of a build: return nonzero to stop it at the next chunk (it stays resumable). */
typedef int (*store_progress_fn)(void *ud, uint64_t done, uint64_t total);

typedef struct store_index_vtable {
	/* Fills *out (strings owned by the store until its next index call). */
	int (*status)(store *st, durox_index_status *out);
	/* Builds the index (rebuild: from scratch, else resuming a build under way), then brings
	 * it up to date. progress may be NULL. DUROX_EABORT when progress stopped it. */
	int (*build)(store *st, int rebuild, store_progress_fn progress, void *ud);
	/* Deletes the index file; the handle then reads the store until the next build. */
	int (*drop)(store *st);
	/* Compares every index row and digest with what the store holds now (*out zeroed first). */
	int (*verify)(store *st, durox_index_verify_result *out);
	/* The progress callback for builds that a query starts (NULL: none). */
	void (*set_progress)(store *st, store_progress_fn progress, void *ud);
	/* Brings the index up to date now (what every read does first); builds it when absent. */
	int (*sync)(store *st);
} store_index_vtable;

#endif
