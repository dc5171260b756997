/*
 * digest.c - the provider-neutral history digest accumulator (digest.h): pairing events in
 * hash maps while a provider streams its history, with the fast in-place readers of the
 * common event fields that the SQLite provider's digest uses (Duroxide writes the common
 * fields first and escapes every quote inside strings, so the first '"<key>":' is the
 * top-level member). Relies on util/hmap, util/json and store/format; used by
 * postgres_metrics.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "store/digest.h"

#include <stdlib.h>
#include <string.h>

#include "store/format.h"
#include "util/json.h"

void dg_init(dg_acc *a)
{
	memset(a, 0, sizeof *a);
	arena_init(&a->mem);
	hmap_init(&a->gindex);
	hmap_init(&a->pending);
	hmap_init(&a->started);
	hmap_init(&a->early);
	memset(a->by_len, -1, sizeof a->by_len);
	for (int k = 0; k < EV__COUNT; k++) {
		size_t len = strlen(store_event_type_names[k]);
		for (int j = 0; j < 4; j++)
			if (a->by_len[len][j] < 0) {
				a->by_len[len][j] = (signed char)k;
				break;
			}
	}
}

void dg_free(dg_acc *a)
{
	hmap_free(&a->gindex);
	hmap_free(&a->pending);
	hmap_free(&a->started);
	hmap_free(&a->early);
	free(a->insts);
	free(a->g);
	arena_release(&a->mem);
	memset(a, 0, sizeof *a);
}

int dg_type_of(const dg_acc *a, const char *t, size_t n)
{
	if (t == NULL || n >= 40)
		return -1;
	for (int j = 0; j < 4 && a->by_len[n][j] >= 0; j++)
		if (memcmp(store_event_type_names[a->by_len[n][j]], t, n) == 0)
			return a->by_len[n][j];
	return -1;
}

/* ---- readers of event members in place --------------------------------------------------- */

static const char *find(const char *hay, size_t n, const char *needle, size_t nn)
{
	if (nn < 2 || n < nn)
		return NULL;
	const char c0 = needle[0], c1 = needle[1];
	const char *end = hay + n - nn;
	for (const char *p = hay; p <= end; p++)
		if (p[0] == c0 && p[1] == c1 && memcmp(p + 2, needle + 2, nn - 2) == 0)
			return p;
	return NULL;
}

static int int_member(const char *t, size_t n, const char *key, size_t keylen, int64_t *out)
{
	const char *p = find(t, n, key, keylen);
	if (p == NULL)
		return 0;
	const char *end = t + n;
	p += keylen;
	while (p < end && *p == ' ')
		p++;
	int64_t v = 0;
	int digits = 0;
	while (p < end && *p >= '0' && *p <= '9' && digits < 19) {
		v = v * 10 + (*p++ - '0');
		digits++;
	}
	if (digits == 0)
		return 0;
	*out = v;
	return 1;
}

static int str_member(const char *from, const char *end, const char *key, const char **s, size_t *n, int *is_null)
{
	*is_null = 0;
	size_t kl = strlen(key);
	const char *p = find(from, (size_t)(end - from), key, kl);
	if (p == NULL)
		return 0;
	p += kl;
	while (p < end && *p == ' ')
		p++;
	if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
		*is_null = 1;
		*s = NULL;
		*n = 0;
		return 1;
	}
	if (p >= end || *p != '"')
		return 0;
	const char *b = ++p;
	while (p < end && *p != '"') {
		if (*p == '\\')
			return 0;
		p++;
	}
	if (p >= end)
		return 0;
	*s = b;
	*n = (size_t)(p - b);
	return 1;
}

/* ---- groups ----------------------------------------------------------------------------- */

static int64_t group_of(dg_acc *a, const char *name, size_t nlen, const char *version, size_t vlen)
{
	char stackkey[256];
	size_t klen = nlen + 1 + (version ? vlen : 1);
	char *key = klen <= sizeof stackkey ? stackkey : malloc(klen);
	if (key == NULL)
		return -1;
	memcpy(key, name, nlen);
	key[nlen] = '\0';
	if (version != NULL)
		memcpy(key + nlen + 1, version, vlen);
	else
		key[nlen + 1] = '\1';
	int created;
	hmap_entry *e = hmap_put(&a->gindex, key, klen, &created);
	if (key != stackkey)
		free(key);
	if (e == NULL)
		return -1;
	if (!created)
		return e->a;
	if (a->ng == a->gcap) {
		size_t ncap = a->gcap ? a->gcap * 2 : 16;
		dg_group *ng = realloc(a->g, ncap * sizeof *ng);
		if (ng == NULL) {
			hmap_del(&a->gindex, e->key, e->klen);
			return -1;
		}
		a->g = ng;
		a->gcap = ncap;
	}
	dg_group *g = &a->g[a->ng];
	memset(g, 0, sizeof *g);
	g->name = arena_strndup(&a->mem, name, nlen);
	g->version = version ? arena_strndup(&a->mem, version, vlen) : NULL;
	if (g->name == NULL || (version && g->version == NULL))
		return -1;
	e->a = (int64_t)a->ng;
	return (int64_t)a->ng++;
}

static size_t act_key(char *key, size_t cap, const char *inst, size_t ilen, int64_t exec, int64_t id)
{
	if (ilen + 48 > cap)
		return 0;
	memcpy(key, inst, ilen);
	size_t n = ilen;
	key[n++] = '\0';
	memcpy(key + n, &exec, sizeof exec);
	n += sizeof exec;
	memcpy(key + n, &id, sizeof id);
	return n + sizeof id;
}

#define TS_KEY "\"timestamp_ms\":"
#define SRC_KEY "\"source_event_id\":"

/* Per-instance facts for the durations, kept until dg_finish (rows may come in any order). */
typedef struct dg_inst {
	int64_t first_exec, first_id, first_ts; /* the earliest OrchestrationStarted */
	int64_t last_exec, group;               /* the latest start's execution and (name, version) group */
	int64_t term_exec, term_id, term_ts;    /* the latest terminal event */
	int has_start, has_term;
} dg_inst;

static int64_t inst_of(dg_acc *a, const char *inst, size_t ilen)
{
	int created;
	hmap_entry *e = hmap_put(&a->started, inst, ilen, &created);
	if (e == NULL)
		return -1;
	if (!created)
		return e->a;
	if (a->ni == a->icap) {
		size_t ncap = a->icap ? a->icap * 2 : 256;
		dg_inst *ni = realloc(a->insts, ncap * sizeof *ni);
		if (ni == NULL) {
			hmap_del(&a->started, inst, ilen);
			return -1;
		}
		a->insts = ni;
		a->icap = ncap;
	}
	memset(&a->insts[a->ni], 0, sizeof a->insts[a->ni]);
	e->a = (int64_t)a->ni;
	return (int64_t)a->ni++;
}

int dg_add(dg_acc *a, int t, const char *inst, size_t ilen, int64_t exec, int64_t id, const char *data, size_t dlen)
{
	store_history_digest *d = &a->d;
	d->rows++;
	if (t < 0) {
		d->other_types++;
		return 0;
	}
	d->by_type[t]++;
	if (t != EV_ACTIVITY_SCHEDULED && t != EV_ACTIVITY_COMPLETED && t != EV_ACTIVITY_FAILED &&
	    t != EV_ORCHESTRATION_STARTED && t != EV_ORCHESTRATION_COMPLETED && t != EV_ORCHESTRATION_FAILED)
		return 0;
	if (inst == NULL || data == NULL)
		return 0;
	if (t == EV_ORCHESTRATION_FAILED) {
		int kind = format_failure_kind(data, dlen, NULL);
		if (kind > 0 && kind < DUROX_FAILURE__COUNT)
			d->failed_by_kind[kind]++;
	}
	int64_t ts;
	size_t skip = 66 + ilen < dlen ? 66 + ilen : 0;
	if (!int_member(data + skip, dlen - skip, TS_KEY, sizeof TS_KEY - 1, &ts) &&
	    (skip == 0 || !int_member(data, dlen, TS_KEY, sizeof TS_KEY - 1, &ts)))
		return 0;
	char key[512];
	size_t klen;
	int created;
	hmap_entry *e;
	switch (t) {
	case EV_ACTIVITY_SCHEDULED:
		if ((klen = act_key(key, sizeof key, inst, ilen, exec, id)) == 0)
			return 0;
		if ((e = hmap_get(&a->early, key, klen)) != NULL) { /* its result came first */
			d->round_trips++;
			d->round_trip_ms += (double)(e->a - ts);
			hmap_del(&a->early, key, klen);
			return 0;
		}
		if ((e = hmap_put(&a->pending, key, klen, &created)) == NULL)
			goto oom;
		e->a = ts;
		return 0;
	case EV_ACTIVITY_COMPLETED:
	case EV_ACTIVITY_FAILED: {
		int64_t src;
		if (!int_member(data, dlen, SRC_KEY, sizeof SRC_KEY - 1, &src))
			return 0;
		if ((klen = act_key(key, sizeof key, inst, ilen, exec, src)) == 0)
			return 0;
		if ((e = hmap_get(&a->pending, key, klen)) != NULL) {
			d->round_trips++;
			d->round_trip_ms += (double)(ts - e->a);
			hmap_del(&a->pending, key, klen);
		} else if ((e = hmap_put(&a->early, key, klen, &created)) == NULL) {
			goto oom;
		} else if (created) {
			e->a = ts;
		}
		return 0;
	}
	case EV_ORCHESTRATION_STARTED: {
		const char *dend = data + dlen;
		const char *tp = find(data + skip, dlen - skip, "\"type\":", 7);
		if (tp == NULL)
			tp = find(data, dlen, "\"type\":", 7);
		const char *name = NULL, *version = NULL;
		size_t nlen = 0, vlen = 0;
		int nnull, vnull;
		int64_t gi = -1;
		if (tp != NULL && str_member(tp, dend, "\"name\":", &name, &nlen, &nnull) && !nnull &&
		    str_member(tp, dend, "\"version\":", &version, &vlen, &vnull)) {
			gi = group_of(a, name, nlen, version, vlen);
		} else {
			arena ar;
			arena_init(&ar);
			json *ev = json_parse(&ar, data, dlen, NULL, 0);
			const char *n2 = json_get_str(ev, "name"), *v2 = json_get_str(ev, "version");
			if (n2 != NULL)
				gi = group_of(a, n2, strlen(n2), v2, v2 ? strlen(v2) : 0);
			arena_release(&ar);
			if (n2 == NULL)
				return 0;
		}
		if (gi < 0)
			goto oom;
		int64_t k = inst_of(a, inst, ilen);
		if (k < 0)
			goto oom;
		dg_inst *x = &a->insts[k];
		if (!x->has_start || exec < x->first_exec || (exec == x->first_exec && id < x->first_id)) {
			x->first_exec = exec;
			x->first_id = id;
			x->first_ts = ts;
		}
		if (!x->has_start || exec >= x->last_exec) {
			x->last_exec = exec;
			x->group = gi;
		}
		x->has_start = 1;
		return 0;
	}
	default: { /* OrchestrationCompleted / OrchestrationFailed */
		int64_t k = inst_of(a, inst, ilen);
		if (k < 0)
			goto oom;
		dg_inst *x = &a->insts[k];
		if (!x->has_term || exec > x->term_exec || (exec == x->term_exec && id > x->term_id)) {
			x->term_exec = exec;
			x->term_id = id;
			x->term_ts = ts;
		}
		x->has_term = 1;
		return 0;
	}
	}
oom:
	a->oom = 1;
	return -1;
}

/* The durations of the instances whose first start and terminal event were both seen. */
static void durations(dg_acc *a)
{
	for (size_t k = 0; k < a->ni; k++) {
		dg_inst *x = &a->insts[k];
		if (!x->has_start || !x->has_term)
			continue;
		double dur = (double)(x->term_ts - x->first_ts);
		dg_group *g = &a->g[x->group];
		g->dn++;
		g->dsum += dur;
		a->d.durations++;
		a->d.duration_ms += dur;
	}
}

int dg_type_from_event(const dg_acc *a, const char *data, size_t dlen, size_t ilen)
{
	size_t skip = 66 + ilen < dlen ? 66 + ilen : 0;
	const char *tp = find(data + skip, dlen - skip, "\"type\":", 7);
	if (tp == NULL && skip > 0)
		tp = find(data, dlen, "\"type\":", 7);
	if (tp == NULL)
		return -1;
	const char *p = tp + 7, *end = data + dlen;
	while (p < end && *p == ' ')
		p++;
	if (p >= end || *p != '"')
		return -1;
	const char *b = ++p;
	while (p < end && *p != '"' && p - b < 40)
		p++;
	if (p >= end || *p != '"')
		return -1;
	return dg_type_of(a, b, (size_t)(p - b));
}

static int cmp_str_null_first(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int cmp_group(const void *x, const void *y)
{
	const dg_group *a = x, *b = y;
	int c = strcmp(a->name, b->name);
	return c != 0 ? c : cmp_str_null_first(a->version, b->version);
}

int dg_finish(dg_acc *a, store_history_digest *out)
{
	durations(a);
	*out = a->d;
	arena_init(&out->mem);
	out->groups = NULL;
	out->ngroups = 0;
	size_t ng = a->ng;
	dg_group *sorted = malloc((ng ? ng : 1) * sizeof *sorted);
	out->groups = arena_calloc(&out->mem, ng ? ng : 1, sizeof *out->groups);
	if (sorted == NULL || out->groups == NULL) {
		free(sorted);
		store_history_digest_free(out);
		return DUROX_ENOMEM;
	}
	if (ng)
		memcpy(sorted, a->g, ng * sizeof *sorted);
	if (ng > 1)
		qsort(sorted, ng, sizeof *sorted, cmp_group);
	for (size_t k = 0; k < ng; k++) {
		const char *name = arena_strdup(&out->mem, sorted[k].name);
		const char *version = sorted[k].version ? arena_strdup(&out->mem, sorted[k].version) : NULL;
		if (name == NULL || (sorted[k].version && version == NULL)) {
			free(sorted);
			store_history_digest_free(out);
			return DUROX_ENOMEM;
		}
		out->groups[k] = (store_duration_group){name, version, sorted[k].dn, sorted[k].dsum};
	}
	out->ngroups = ng;
	free(sorted);
	return DUROX_OK;
}
