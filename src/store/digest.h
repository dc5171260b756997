/*
 * digest.h - the history digest (provider_metrics.h) as a provider-neutral accumulator: a
 * provider streams its history rows into it, an instance's rows in event order, and reads the
 * counters, the activity round trips and the per (name, version) durations out of it. The
 * rules are those of the SQLite provider's durox_hdigest(): counted types by the JSON "type",
 * failure kinds from OrchestrationFailed details, an activity result paired with its
 * ActivityScheduled (source_event_id), an instance's duration from its first start to its
 * terminal event, grouped by the name and version of its latest start. Used by the PostgreSQL
 * provider (postgres_metrics.c).
 */
#ifndef DUROX_STORE_DIGEST_H
#define DUROX_STORE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "store/provider_metrics.h"
#include "util/hmap.h"

typedef struct dg_group {
	const char *name, *version;
	uint64_t dn;
	double dsum;
} dg_group;

typedef struct dg_acc {
	store_history_digest d; /* the counters (its groups are filled by dg_finish) */
	arena mem;              /* group names */
	hmap gindex;            /* (name, version) -> index in g */
	dg_group *g;
	size_t ng, gcap;
	hmap pending;              /* ActivityScheduled (instance, execution, id) -> a = ts */
	hmap started;              /* instance -> a = first start ts, b = group of the latest start */
	signed char by_len[40][4]; /* candidate types by name length */
	int oom;
} dg_acc;

void dg_init(dg_acc *a);
void dg_free(dg_acc *a);

/* The counted type (store_event_type) of a JSON "type" value, or -1. */
int dg_type_of(const dg_acc *a, const char *t, size_t n);

/* Adds one history row: type as dg_type_of gave it (-1: another type), the instance id, the
 * execution and event ids and the event JSON (for Started and Failed events the whole event;
 * for others at least its common fields). Returns 0, or -1 when out of memory. */
int dg_add(dg_acc *a, int type, const char *inst, size_t ilen, int64_t exec, int64_t id, const char *data, size_t dlen);

/* Copies the digest into out (a fresh arena; groups sorted by name, then version with NULL
 * first). Returns a durox code. */
int dg_finish(const dg_acc *a, store_history_digest *out);

#endif
