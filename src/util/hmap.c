/*
 * hmap.c - the hash map of hmap.h: FNV-1a hashes, linear probing, load factor <= 1/2,
 * backward-shift deletion so that lookups never cross tombstones.
 */
#include "util/hmap.h"

#include <stdlib.h>
#include <string.h>

static uint32_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 16777619u;
	}
	return h;
}

void hmap_init(hmap *m)
{
	m->slots = NULL;
	m->cap = m->count = 0;
}

static void free_key(hmap_entry *e)
{
	if (e->key != NULL && e->key != e->inl)
		free(e->key);
}

/* Moves an entry to another slot (an inline key must follow it). */
static void move_entry(hmap_entry *dst, hmap_entry *src)
{
	*dst = *src;
	if (src->key == src->inl)
		dst->key = dst->inl;
}

void hmap_free(hmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free_key(&m->slots[i]);
	free(m->slots);
	hmap_init(m);
}

static hmap_entry *find(const hmap *m, const void *key, size_t len, uint32_t h)
{
	if (m->cap == 0)
		return NULL;
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		hmap_entry *e = &m->slots[i];
		if (e->key == NULL)
			return e;
		if (e->hash == h && e->klen == len && memcmp(e->key, key, len) == 0)
			return e;
	}
}

hmap_entry *hmap_get(const hmap *m, const void *key, size_t len)
{
	hmap_entry *e = find(m, key, len, hash_bytes(key, len));
	return e != NULL && e->key != NULL ? e : NULL;
}

static int grow(hmap *m)
{
	size_t ncap = m->cap == 0 ? 64 : m->cap * 2;
	hmap_entry *ns = calloc(ncap, sizeof *ns);
	if (ns == NULL)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		hmap_entry *e = &m->slots[i];
		if (e->key == NULL)
			continue;
		size_t j = e->hash & (ncap - 1);
		while (ns[j].key != NULL)
			j = (j + 1) & (ncap - 1);
		move_entry(&ns[j], e);
	}
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	return 0;
}

hmap_entry *hmap_put(hmap *m, const void *key, size_t len, int *created)
{
	*created = 0;
	if ((m->count + 1) * 2 > m->cap && grow(m) != 0)
		return NULL;
	uint32_t h = hash_bytes(key, len);
	hmap_entry *e = find(m, key, len, h);
	if (e->key != NULL)
		return e;
	char *k = len < HMAP_INLINE ? e->inl : malloc(len + 1);
	if (k == NULL)
		return NULL;
	memcpy(k, key, len);
	k[len] = '\0';
	e->key = k;
	e->klen = (uint32_t)len;
	e->hash = h;
	e->a = e->b = 0;
	m->count++;
	*created = 1;
	return e;
}

int hmap_del(hmap *m, const void *key, size_t len)
{
	hmap_entry *e = find(m, key, len, hash_bytes(key, len));
	if (e == NULL || e->key == NULL)
		return 0;
	free_key(e);
	size_t mask = m->cap - 1;
	size_t hole = (size_t)(e - m->slots);
	/* shift back the entries of the cluster that would not be found across the hole */
	for (size_t i = (hole + 1) & mask; m->slots[i].key != NULL; i = (i + 1) & mask) {
		size_t home = m->slots[i].hash & mask;
		/* distance from home to i vs from home to hole (cyclic) */
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			move_entry(&m->slots[hole], &m->slots[i]);
			hole = i;
		}
	}
	m->slots[hole].key = NULL;
	m->count--;
	return 1;
}
