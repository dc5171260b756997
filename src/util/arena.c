/*
 * arena.c - chunked bump allocator (see arena.h).
 * Chunks grow geometrically up to 1 MiB; a request larger than a chunk gets a chunk of
 * its own so huge payloads (1 MiB inputs) do not waste a doubled chunk.
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
	arena_chunk *next;
	size_t size; /* usable bytes in data */
	size_t used;
	max_align_t data[]; /* flexible, aligned storage */
};

#define ALIGN (sizeof(max_align_t))
#define FIRST_CHUNK 4096u
#define MAX_CHUNK (1024u * 1024u)

void arena_init(arena *a)
{
	a->head = NULL;
	a->total = 0;
}

void arena_release(arena *a)
{
	if (a == NULL)
		return;
	arena_chunk *c = a->head;
	while (c != NULL) {
		arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->total = 0;
}

void *arena_alloc(arena *a, size_t n)
{
	size_t need = (n + ALIGN - 1) / ALIGN * ALIGN;
	if (need < n)
		return NULL; /* overflow */
	arena_chunk *c = a->head;
	if (c == NULL || c->size - c->used < need) {
		size_t size = c == NULL ? FIRST_CHUNK : c->size * 2;
		if (size > MAX_CHUNK)
			size = MAX_CHUNK;
		if (size < need)
			size = need;
		if (size > SIZE_MAX - sizeof(arena_chunk))
			return NULL;
		arena_chunk *nc = malloc(sizeof(arena_chunk) + size);
		if (nc == NULL)
			return NULL;
		nc->size = size;
		nc->used = 0;
		if (c != NULL && need > c->size && c->size - c->used > 256) {
			/* A big one-off block: keep the current chunk in front for small ones. */
			nc->next = c->next;
			c->next = nc;
			nc->used = need;
			a->total += need;
			return (char *)nc->data;
		}
		nc->next = c;
		a->head = nc;
		c = nc;
	}
	void *p = (char *)c->data + c->used;
	c->used += need;
	a->total += need;
	return p;
}

void *arena_calloc(arena *a, size_t count, size_t size)
{
	if (size != 0 && count > SIZE_MAX / size)
		return NULL;
	void *p = arena_alloc(a, count * size);
	if (p != NULL)
		memset(p, 0, count * size);
	return p;
}

char *arena_strndup(arena *a, const char *s, size_t len)
{
	if (s == NULL)
		return NULL;
	char *p = arena_alloc(a, len + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *arena_strdup(arena *a, const char *s) { return s == NULL ? NULL : arena_strndup(a, s, strlen(s)); }
