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

/* The counted types in store_event_type order (provider_metrics.h). */
#define EVENT_TYPES(X)                                                                                                 \
	X("OrchestrationStarted")                                                                                      \
	X("OrchestrationCompleted")                                                                                    \
	X("OrchestrationFailed")                                                                                       \
	X("OrchestrationContinuedAsNew")                                                                               \
	X("OrchestrationCancelRequested")                                                                              \
	X("OrchestrationChained")                                                                                      \
	X("ActivityScheduled")                                                                                         \
	X("ActivityCompleted")                                                                                         \
	X("ActivityFailed")                                                                                            \
	X("ActivityCancelRequested")                                                                                   \
	X("TimerCreated")                                                                                              \
	X("TimerFired")                                                                                                \
	X("ExternalSubscribed")                                                                                        \
	X("ExternalEvent")                                                                                             \
	X("ExternalSubscribedCancelled")                                                                               \
	X("ExternalSubscribedPersistent")                                                                              \
	X("ExternalEventPersistent")                                                                                   \
	X("ExternalSubscribedPersistentCancelled")                                                                     \
	X("SubOrchestrationScheduled")                                                                                 \
	X("SubOrchestrationCompleted")                                                                                 \
	X("SubOrchestrationFailed")                                                                                    \
	X("SubOrchestrationCancelRequested")                                                                           \
	X("CustomStatusUpdated")                                                                                       \
	X("KeyValueSet")                                                                                               \
	X("KeyValueCleared")                                                                                           \
	X("KeyValuesCleared")

#define EV_NAME(s) s,
#define EV_LEN(s) sizeof(s) - 1,
const char *const store_event_type_names[EV__COUNT] = {EVENT_TYPES(EV_NAME)};
static const unsigned char type_len[EV__COUNT] = {EVENT_TYPES(EV_LEN)};
#undef EV_NAME
#undef EV_LEN

void dg_init(dg_acc *a)
{
	memset(a, 0, sizeof *a);
	arena_init(&a->mem);
	hmap_init(&a->gindex);
	hmap_init(&a->pending);
	hmap_init(&a->started);
}

void dg_free(dg_acc *a)
{
	hmap_free(&a->gindex);
	hmap_free(&a->pending);
	hmap_free(&a->started);
	free(a->g);
	arena_release(&a->mem);
	memset(a, 0, sizeof *a);
}

/* This runs for every history row: the lengths are compared first, so a name is compared at
 * most about four times. */
int dg_event_type(const char *t, size_t n)
{
	if (t == NULL)
		return -1;
	for (int k = 0; k < EV__COUNT; k++)
		if (type_len[k] == n && memcmp(store_event_type_names[k], t, n) == 0)
			return k;
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

size_t dg_activity_key(char *key, size_t cap, const char *inst, size_t ilen, int64_t exec, int64_t id)
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

void dg_facts_read(int t, const char *data, size_t dlen, size_t ilen, arena *a, dg_facts *f)
{
	memset(f, 0, sizeof *f);
	if (data == NULL)
		return;
	if (t == EV_ORCHESTRATION_FAILED) {
		int kind = format_failure_kind(data, dlen, NULL);
		if (kind > 0 && kind < DUROX_FAILURE__COUNT)
			f->failure_kind = kind;
	}
	/* Duroxide writes {"event_id":N,"source_event_id":N|null,"instance_id":"<id>",
	 * "execution_id":N,"timestamp_ms":N,...: timestamp_ms cannot start before byte 68 + the
	 * id's length, so the search starts there (and from the start if the layout differs) */
	size_t skip = 66 + ilen < dlen ? 66 + ilen : 0;
	f->has_ts = int_member(data + skip, dlen - skip, TS_KEY, sizeof TS_KEY - 1, &f->ts) ||
	            (skip != 0 && int_member(data, dlen, TS_KEY, sizeof TS_KEY - 1, &f->ts));
	if (!f->has_ts)
		return;
	if (t == EV_ACTIVITY_COMPLETED || t == EV_ACTIVITY_FAILED)
		f->has_src = int_member(data, dlen, SRC_KEY, sizeof SRC_KEY - 1, &f->src);
	if (t != EV_ORCHESTRATION_STARTED)
		return;
	/* the started execution's name and version, after "type" (which follows timestamp_ms) */
	const char *dend = data + dlen;
	const char *tp = find(data + skip, dlen - skip, "\"type\":", 7);
	if (tp == NULL)
		tp = find(data, dlen, "\"type\":", 7);
	int nnull, vnull;
	if (tp != NULL && str_member(tp, dend, "\"name\":", &f->name, &f->nlen, &nnull) && !nnull &&
	    str_member(tp, dend, "\"version\":", &f->version, &f->vlen, &vnull)) {
		f->has_name = 1;
		return;
	}
	/* escaped or unusual: parse the whole event */
	f->name = f->version = NULL;
	f->nlen = f->vlen = 0;
	json *ev = json_parse(a, data, dlen, NULL, 0);
	const char *n2 = json_get_str(ev, "name"), *v2 = json_get_str(ev, "version");
	if (n2 != NULL) {
		f->has_name = 1;
		f->name = n2;
		f->nlen = strlen(n2);
		f->version = v2;
		f->vlen = v2 ? strlen(v2) : 0;
	}
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
	if (t != EV_ORCHESTRATION_STARTED && t != EV_ORCHESTRATION_COMPLETED && t != EV_ORCHESTRATION_FAILED &&
	    (a->no_round_trips ||
	     (t != EV_ACTIVITY_SCHEDULED && t != EV_ACTIVITY_COMPLETED && t != EV_ACTIVITY_FAILED)))
		return 0;
	if (inst == NULL || data == NULL)
		return 0;
	arena scratch;
	arena_init(&scratch);
	dg_facts f;
	dg_facts_read(t, data, dlen, ilen, &scratch, &f);
	if (f.failure_kind > 0)
		d->failed_by_kind[f.failure_kind]++;
	int rc = 0;
	char key[512];
	size_t klen;
	int created;
	hmap_entry *e;
	if (!f.has_ts)
		goto done;
	switch (t) {
	case EV_ACTIVITY_SCHEDULED:
		if ((klen = dg_activity_key(key, sizeof key, inst, ilen, exec, id)) == 0)
			break;
		if ((e = hmap_put(&a->pending, key, klen, &created)) == NULL)
			goto oom;
		e->a = f.ts;
		break;
	case EV_ACTIVITY_COMPLETED:
	case EV_ACTIVITY_FAILED:
		if (!f.has_src || (klen = dg_activity_key(key, sizeof key, inst, ilen, exec, f.src)) == 0)
			break;
		if ((e = hmap_get(&a->pending, key, klen)) != NULL) {
			d->round_trips++;
			d->round_trip_ms += (double)(f.ts - e->a);
			hmap_del(&a->pending, key, klen);
		}
		break;
	case EV_ORCHESTRATION_STARTED: {
		if (!f.has_name)
			break;
		int64_t gi = group_of(a, f.name, f.nlen, f.version, f.vlen);
		if (gi < 0)
			goto oom;
		if ((e = hmap_put(&a->started, inst, ilen, &created)) == NULL)
			goto oom;
		if (created)
			e->a = f.ts; /* the first stored execution's start */
		e->b = gi;
		break;
	}
	default: { /* OrchestrationCompleted / OrchestrationFailed */
		if ((e = hmap_get(&a->started, inst, ilen)) == NULL)
			break;
		double dur = (double)(f.ts - e->a);
		dg_group *g = &a->g[e->b];
		g->dn++;
		g->dsum += dur;
		d->durations++;
		d->duration_ms += dur;
		hmap_del(&a->started, inst, ilen);
		break;
	}
	}
done:
	arena_release(&scratch);
	return rc;
oom:
	arena_release(&scratch);
	a->oom = 1;
	return -1;
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

int dg_finish(const dg_acc *a, store_history_digest *out)
{
	*out = a->d;
	out->has = a->no_round_trips ? 0 : STORE_DIGEST_ROUND_TRIPS;
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
