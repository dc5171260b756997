/*
 * digest.h - the history digest (provider_metrics.h) as a provider-neutral accumulator: a
 * provider streams its history rows into it IN ANY ORDER (a sequential scan: no sort), and
 * reads the counters, the activity round trips and the per (name, version) durations out of
 * it. The rules are those of the SQLite provider's durox_hdigest(): counted types by the JSON
 * "type", failure kinds from OrchestrationFailed details, an activity result paired with its
 * ActivityScheduled (source_event_id), an instance's duration from its first start to its
 * terminal event, grouped by the name and version of its latest start. Because rows may come
 * in any order it keeps a little state per instance until dg_finish (about 150 bytes). Used
 * by the PostgreSQL provider (postgres_metrics.c).
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
	hmap pending; /* ActivityScheduled (instance, execution, id) -> a = ts */
	hmap early;   /* an activity result seen before its ActivityScheduled -> a = ts */
	hmap started; /* instance -> a = index in insts */
	struct dg_inst *insts;
	size_t ni, icap;
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

/* The counted type of an event from its JSON (the first "type" member after the common
 * fields; ilen: its instance id's length), or -1. */
int dg_type_from_event(const dg_acc *a, const char *data, size_t dlen, size_t ilen);

/* Completes the durations and copies the digest into out (a fresh arena; groups sorted by
 * name, then version with NULL first). Call once. Returns a durox code. */
int dg_finish(dg_acc *a, store_history_digest *out);

#endif
