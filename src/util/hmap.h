/*
 * hmap.h - a hash map from byte-string keys to two int64 values, with linear probing and
 * backward-shift deletion (no tombstones), for the one-pass aggregates of the metrics code
 * (pairing events while scanning history, grouping rows in C instead of sorting them).
 * Keys are copied (into the entry when short, else malloc'd) and freed on deletion. Used by src/store/sqlite_metrics.c.
 */
#ifndef DUROX_UTIL_HMAP_H
#define DUROX_UTIL_HMAP_H

#include <stddef.h>
#include <stdint.h>

#define HMAP_INLINE 40 /* keys up to this size live in the entry (no allocation) */

typedef struct hmap_entry {
	char *key; /* NULL: empty slot; else points to inl or to a malloc'd copy */
	uint32_t klen;
	uint32_t hash;
	int64_t a, b; /* the values */
	char inl[HMAP_INLINE];
} hmap_entry;

typedef struct hmap {
	hmap_entry *slots;
	size_t cap; /* a power of two, or 0 */
	size_t count;
} hmap;

void hmap_init(hmap *m);
/* Frees every key and the table; the map is empty and reusable. */
void hmap_free(hmap *m);
/* The entry for key, or NULL. */
hmap_entry *hmap_get(const hmap *m, const void *key, size_t len);
/* The entry for key, created (values 0) when missing (*created = 1); NULL when out of memory.
 * The pointer is valid until the next put or delete. */
hmap_entry *hmap_put(hmap *m, const void *key, size_t len, int *created);
/* Removes key; returns 1 when it was present. */
int hmap_del(hmap *m, const void *key, size_t len);

#endif
