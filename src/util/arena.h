/*
 * arena.h - chunked bump allocator for result objects.
 *
 * Every result the engine hands out (a page of instances, a history, the details of
 * one instance) lives in one arena, so it is freed with one call and never leaks
 * piecemeal. Used by the engine and by store providers when they copy rows out.
 */
#ifndef DUROX_UTIL_ARENA_H
#define DUROX_UTIL_ARENA_H

#include <stddef.h>

typedef struct arena_chunk arena_chunk;

typedef struct arena {
	arena_chunk *head; /* newest chunk first */
	size_t total;      /* bytes handed out, for accounting */
} arena;

/* Initialises an empty arena (no allocation happens until the first request). */
void arena_init(arena *a);
/* Releases every chunk; the arena is empty and reusable afterwards. Accepts NULL. */
void arena_release(arena *a);
/* Returns n bytes aligned for any type, or NULL when out of memory. n may be 0. */
void *arena_alloc(arena *a, size_t n);
/* Same, zero-filled. */
void *arena_calloc(arena *a, size_t count, size_t size);
/* Copies len bytes of s and a terminating NUL; NULL when out of memory or s is NULL. */
char *arena_strndup(arena *a, const char *s, size_t len);
/* Copies a NUL-terminated string; NULL when out of memory or s is NULL. */
char *arena_strdup(arena *a, const char *s);

#endif
