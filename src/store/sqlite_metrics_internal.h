/*
 * sqlite_metrics_internal.h - what the files of the SQLite provider's metrics reads share:
 * the (name, version) groups both digests count into, the SQL functions that feed them, and
 * the digest, queue and helper entry points that sqlite_metrics.c puts in sq_metrics_vtable.
 * Implemented by sqlite_groups.c, sqlite_instance_digest.c, sqlite_history_digest.c,
 * sqlite_queues.c and sqlite_metrics.c. Private to src/store.
 */
#ifndef DUROX_STORE_SQLITE_METRICS_INTERNAL_H
#define DUROX_STORE_SQLITE_METRICS_INTERNAL_H

#include "store/provider_metrics.h"
#include "store/sqlite_internal.h"
#include "util/hmap.h"

/* ---- grouping in C (sqlite_groups.c) ---- */

/* Groups keyed by (name, version): the key is name NUL (version | "\1" for NULL). */
typedef struct group_set {
	hmap index;
	arena *mem;
	size_t n, cap;
	struct group_acc {
		const char *name, *version;
		uint64_t c[6]; /* instances, running, completed, failed, continued_as_new, unknown */
		uint64_t dn;
		double dsum;
	} * g;
	int oom;
} group_set;

/* An empty set whose names are copied into mem. */
void sq_groups_init(group_set *gs, arena *mem);
/* Frees the index and the accumulators (not the names, which belong to mem). */
void sq_groups_free(group_set *gs);
/* Index of the group for (name, version), created when new; -1 when out of memory (gs->oom
 * is then set). version NULL is its own group, distinct from "". */
int64_t sq_group_of(group_set *gs, const char *name, size_t nlen, const char *version, size_t vlen);
/* qsort comparator of struct group_acc: by name, then version with NULL first. */
int sq_group_cmp(const void *x, const void *y);

/* ---- the digests (sqlite_instance_digest.c, sqlite_history_digest.c) ---- */

/* durox_igroup(state, name, version, status) and durox_hdigest(...): the SQL functions the
 * digests aggregate with (registered by sq_metrics_attach). */
void sq_fn_igroup(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void sq_fn_hdigest(sqlite3_context *ctx, int argc, sqlite3_value **argv);
int sq_instance_digest(store *base, store_instance_digest *out);
int sq_history_digest(store *base, unsigned want, store_history_digest *out);
/* Free what the digests keep on the connection between calls (s->inst, s->hist). */
void sq_inst_cache_free(sqlite_store *s);
void sq_hist_free(sqlite_store *s);

/* ---- queues (sqlite_queues.c) ---- */

int sq_queue_snapshot(store *base, const store_queue_params *p, store_queue_snapshot *out);
/* Frees what the queue snapshot keeps between calls (s->qc). */
void sq_queue_cache_free(sqlite_store *s);
int sq_problem_items(store *base, const store_queue_params *p, store_queue_item_cb cb, void *ud);
int sq_expired_locks(store *base, int64_t before, store_lock_cb cb, void *ud);
int sq_idle_running(store *base, int64_t older_than, store_idle_cb cb, void *ud);

/* ---- analytics (sqlite_analytics.c) ---- */

int sq_query_instances(store *st, const store_group_query *q, store_group_cb cb, void *ud);
int sq_time_series(store *st, const store_series_query *q, durox_time_bucket *buckets, size_t n);
int sq_descendants(store *st, const char *root, uint32_t max_depth, uint32_t limit, const durox_filter *filter,
                   store_node_cb cb, void *ud);
int sq_count_descendants(store *st, const char *root, const durox_filter *filter, uint64_t *out);
int sq_ancestors(store *st, const char *id, store_node_cb cb, void *ud);

/* ---- helpers (sqlite_metrics.c) ---- */

/* Runs a one-row query and reads column 0 as int64 (NULL -> *isnull, which may be NULL). */
int sq_one_int(sqlite_store *s, const char *sql, const char *what, int64_t *out, int *isnull);

#endif
