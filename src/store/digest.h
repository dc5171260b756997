/*
 * digest.h - the history digest (provider_metrics.h) as a provider-neutral accumulator: a
 * provider streams its history rows into it, an instance's rows in event order, and reads the
 * counters, the activity round trips and the per (name, version) durations out of it. The
 * rules are those of the SQLite provider's durox_hdigest(): counted types by the JSON "type",
 * failure kinds from OrchestrationFailed details, an activity result paired with its
 * ActivityScheduled (source_event_id), an instance's duration from its first start to its
 * terminal event, grouped by the name and version of its latest start. Used by both providers'
 * digests (postgres_metrics.c, sqlite_history_digest.c), and the event reader below by the
 * visibility index (sqlite_index.c), so that every one of them counts exactly the same.
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
	hmap pending;       /* ActivityScheduled (instance, execution, id) -> a = ts */
	hmap started;       /* instance -> a = first start ts, b = group of the latest start */
	int no_round_trips; /* set before the first row: do not pair activities (d.has lacks them) */
	int oom;
} dg_acc;

void dg_init(dg_acc *a);
void dg_free(dg_acc *a);

/* The counted type (store_event_type) of a JSON "type" value, or -1. */
int dg_event_type(const char *t, size_t n);

/* What the digests read from one event's JSON (dg_facts_read). */
typedef struct dg_facts {
	int failure_kind; /* OrchestrationFailed: the kind of its details, 0 when unreadable */
	int has_ts;       /* timestamp_ms was found (nothing below is read without it) */
	int64_t ts;
	int has_src; /* ActivityCompleted/Failed: source_event_id */
	int64_t src;
	int has_name;               /* OrchestrationStarted: the started execution's name and version */
	const char *name, *version; /* not NUL-terminated; version NULL for JSON null */
	size_t nlen, vlen;
} dg_facts;

/* Reads the facts of an event of counted type t: data is its JSON, ilen the length of its
 * instance id (which tells where timestamp_ms can start). Strings point into data, or into
 * a when the event had to be parsed (escaped or unusual JSON). */
void dg_facts_read(int t, const char *data, size_t dlen, size_t ilen, arena *a, dg_facts *f);

/* The key dg_add pairs an activity by: "<instance>\0<execution><event>" into key (capacity
 * cap); 0 when the instance id is too long for it (such activities are not paired). */
size_t dg_activity_key(char *key, size_t cap, const char *inst, size_t ilen, int64_t exec, int64_t id);

/* Adds one history row: type as dg_type_of gave it (-1: another type), the instance id, the
 * execution and event ids and the event JSON (for Started and Failed events the whole event;
 * for others at least its common fields). Returns 0, or -1 when out of memory. */
int dg_add(dg_acc *a, int type, const char *inst, size_t ilen, int64_t exec, int64_t id, const char *data, size_t dlen);

/* Copies the digest into out (a fresh arena; groups sorted by name, then version with NULL
 * first). Returns a durox code. */
int dg_finish(const dg_acc *a, store_history_digest *out);

#endif
