/*
 * sqlite_groups.c - counting by (orchestration name, version) in C for the SQLite provider's
 * digests: a hash index from the pair to an accumulator, so one pass over a table needs no
 * SQL GROUP BY (no temporary b-tree, no sort). Relies on util/hmap and the handle's arena;
 * used by sqlite_instance_digest.c and sqlite_history_digest.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_metrics_internal.h"

void sq_groups_init(group_set *gs, arena *mem)
{
	memset(gs, 0, sizeof *gs);
	hmap_init(&gs->index);
	gs->mem = mem;
}

void sq_groups_free(group_set *gs)
{
	hmap_free(&gs->index);
	free(gs->g);
	gs->g = NULL;
}

int64_t sq_group_of(group_set *gs, const char *name, size_t nlen, const char *version, size_t vlen)
{
	char stackkey[256];
	size_t klen = nlen + 1 + (version ? vlen : 1);
	char *key = klen <= sizeof stackkey ? stackkey : malloc(klen);
	if (key == NULL) {
		gs->oom = 1;
		return -1;
	}
	memcpy(key, name, nlen);
	key[nlen] = '\0';
	if (version != NULL)
		memcpy(key + nlen + 1, version, vlen);
	else
		key[nlen + 1] = '\1';
	int created;
	hmap_entry *e = hmap_put(&gs->index, key, klen, &created);
	if (key != stackkey)
		free(key);
	if (e == NULL) {
		gs->oom = 1;
		return -1;
	}
	if (!created)
		return e->a;
	if (gs->n == gs->cap) {
		size_t ncap = gs->cap ? gs->cap * 2 : 16;
		struct group_acc *ng = realloc(gs->g, ncap * sizeof *ng);
		if (ng == NULL) {
			gs->oom = 1;
			hmap_del(&gs->index, e->key, e->klen);
			return -1;
		}
		gs->g = ng;
		gs->cap = ncap;
	}
	struct group_acc *g = &gs->g[gs->n];
	memset(g, 0, sizeof *g);
	g->name = arena_strndup(gs->mem, name, nlen);
	g->version = version ? arena_strndup(gs->mem, version, vlen) : NULL;
	if (g->name == NULL || (version && g->version == NULL)) {
		gs->oom = 1;
		return -1;
	}
	e->a = (int64_t)gs->n;
	return (int64_t)gs->n++;
}

static int cmp_str_null_first(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

int sq_group_cmp(const void *x, const void *y)
{
	const struct group_acc *a = x, *b = y;
	int c = strcmp(a->name, b->name);
	return c != 0 ? c : cmp_str_null_first(a->version, b->version);
}
