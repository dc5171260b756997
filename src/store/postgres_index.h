/*
 * postgres_index.h - the PostgreSQL visibility index (docs/index.md, "PostgreSQL"): one summary
 * row per instance in a table of duroxlua's own schema (the state schema, default `durox`;
 * never the runtime's), indexed for every listing filter and order, built in chunks, kept
 * current from the provider's change feed (postgres_feed.c) and read instead of the runtime's
 * tables when it is ready. postgres_index.c holds its state, build, sync, verification and the
 * provider's store_index_vtable; postgres_index_read.c the reads it serves;
 * postgres_index_digest.c the persisted history digest of the metrics. Private to
 * src/store/postgres*.c.
 */
#ifndef DUROX_STORE_POSTGRES_INDEX_H
#define DUROX_STORE_POSTGRES_INDEX_H

#include "store/postgres_internal.h"
#include "store/provider_feed.h"
#include "store/provider_index.h"
#include "store/provider_metrics.h"

enum pgix_state { PGIX_UNKNOWN, PGIX_OFF, PGIX_ABSENT, PGIX_BUILDING, PGIX_READY, PGIX_STALE, PGIX_BROKEN };

typedef struct pg_index {
	pg_store *s;
	int state; /* enum pgix_state; UNKNOWN until the meta row was read */
	char reason[512];
	char table[2 * PG_NAME_MAX + 16]; /* "durox"."ix_<schema>" */
	char dtab[2 * PG_NAME_MAX + 16];  /* the digest's tables (postgres_index_digest.c): rows, */
	char ttab[2 * PG_NAME_MAX + 16];  /* totals */
	char gtab[2 * PG_NAME_MAX + 16];  /* and groups */
	char ctab[2 * PG_NAME_MAX + 16];  /* the status totals of the summary rows (postgres_index.c) */
	char meta[PG_NAME_MAX + 24];      /* "durox".ix_meta */
	char where[3 * PG_NAME_MAX + 64]; /* what status shows as its path */
	store_feed *feed;                 /* the change feed, once opened */
	int feed_placed;                  /* the feed stands at the meta row's position */
	store_progress_fn progress;
	void *progress_ud;
	int building;
	int64_t n_inst, build_done, build_total, built_at, synced_at, history_rows, size_bytes;
	uint64_t scans;        /* syncs of this handle that found the feed's gate open and scanned the store */
	uint64_t digest_rows;  /* history rows this handle read to compute instances' digest rows */
	int64_t n_exec;        /* executions rows as of the feed's position: counted when the gate last
	                        * opened, or saved with the position read back; -1 when not known. Exact
	                        * while the gate stays closed (no transaction ended since) */
	uint64_t digest_reads; /* whole-history passes of this handle's metrics digest (postgres_metrics.c) */
} pg_index;

/* Creates the handle's index state (mode: DUROX_INDEX_AUTO / _OFF). NULL when out of memory. */
pg_index *pgi_new(pg_store *s, int mode);
void pgi_free(pg_index *ix);

/* Whether a read with filter f (may be NULL) is to be answered by the index: it is ready,
 * synced now, and holds every field f names. A failing index is set aside (the store answers). */
int pgi_usable(pg_store *s, const durox_filter *f);

/* The reads it serves (postgres_index_read.c), the contracts of pg_list / pg_count. */
int pgi_list(pg_store *s, const store_list_query *q, store_summary_cb cb, void *ud);
int pgi_count(pg_store *s, const durox_filter *f, int64_t *out);

/* A field as a column of the index table `x` (NULL when it holds none: the text search). */
const char *pgi_field_sql(int field);

/* SQL from a template: "@X" becomes the index table, "@M" its meta table, "@D", "@T", "@G" the
 * digest's tables, "@C" the status totals, "@S." / "@R." as pq_ours. malloc'd; NULL when out of memory. */
char *pgi_sql(pg_index *ix, const char *tmpl);
/* Runs a template statement (pgi_sql) on the primary with flags | PQ_PRIMARY, rows to cb (may be
 * NULL), as pq_query. Returns a durox code (DUROX_ENOMEM when the SQL cannot be made). */
int pgi_q(pg_index *ix, int flags, const char *tmpl, const pqp *p, pq_row_cb cb, void *ud, uint64_t *affected,
          const char *what);

/* The history digest as the index keeps it (postgres_index_digest.c), for a ready index that
 * pgi_usable just synced: *out as the cold pg_history_digest_cold gives it (a fresh arena the
 * caller frees with store_history_digest_free). Returns a durox code. */
int pgi_history_digest(pg_store *s, store_history_digest *out);

/* The history digest from every history row (one pass; never the index; postgres_metrics.c).
 * *out: a fresh arena the caller frees with store_history_digest_free. Returns a durox code. */
int pg_history_digest_cold(pg_store *s, store_history_digest *out);

/* ---- the digest's rows (postgres_index_digest.c); each in the caller's index transaction ---- */

/* (Re)computes the rows of the instance ids of history in (after, last] (NULL: unbounded) and
 * adds them to the totals. */
int pgd_build_range(pg_index *ix, const char *after, const char *last);
/* Recomputes the rows of the ids from history (an id without history rows loses its row). */
int pgd_recompute(pg_index *ix, const char *const *ids, size_t n);
/* Removes the rows of ids whose history is gone; pruned: recomputes the instances that a prune
 * may have changed (more than one execution). */
int pgd_reconcile(pg_index *ix, int pruned);
/* The digest from the totals. */
int pgd_read(pg_index *ix, store_history_digest *out);
/* Compares the totals with the cold digest of history and with the sum of the rows: each
 * difference counts in out->digests_mismatched (the first one in out->first when empty). In
 * the caller's read transaction. */
int pgd_verify(pg_index *ix, durox_index_verify_result *out);

extern const store_index_vtable pg_index_vtable;

#endif
