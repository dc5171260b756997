/*
 * fuzz_cursor.c - libFuzzer target for the cursors of the change feed (src/engine/feed.c, the
 * providers' positions in src/store/sqlite_feed.c) and of the consumers built on it: the raw
 * feed (durox_read_changes), event streams (stream.c) and watches (watch.c, whose cursors also
 * carry the status of every watched instance). The first input byte picks the consumer and
 * its request (bits 0-1: changes, changes with payloads, event stream, watch; bits 2-3: the
 * limit, the filter and event types, or the watched ids), the rest is the cursor. With bit 6
 * set the rest is the cursor's raw content, sealed here with its checksum first (the checksum
 * only catches damage: anyone can forge a cursor, so the readers must survive any content).
 * The store is $DUROX_FUZZ_DB (opened read-only: the fixtures' scenario store in
 * scripts/test.sh) or an empty in-memory store. At start the target reads the whole feed and
 * every stream variant from the beginning (what the store really holds, in order). Besides
 * the sanitizers' checks it aborts when an invariant fails:
 * - a refused cursor gives DUROX_EINVALID and one of the documented one-line messages;
 * - an accepted change-feed cursor gives at most `limit` changes that are a contiguous run of
 *   the whole feed, each carrying the cursor the whole read gave that row; a read that stops
 *   before the limit has reached the end; a reset read delivers nothing and says why in one
 *   line; the result's cursor is accepted in turn and continues right after the last change;
 * - an accepted event-stream cursor yields a contiguous run of that stream's events, and the
 *   last item's cursor resumes right after it;
 * - an accepted watch cursor yields items about the watched ids only, with valid statuses,
 *   and the watch's cursor is accepted in turn.
 * With $DUROX_FUZZ_MAKE_CORPUS=DIR set, the target first writes seeds to DIR: the cursors the
 * store really issues for each consumer, as tokens and as raw contents (how corpus/cursor is
 * made from the scenario store).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durox.h"
#include "engine/token.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/hmap.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static durox *dx;

/* a sequence of rows in the order the store delivers them: their keys and cursors */
typedef struct seq {
	size_t n, cap;
	char **keys;
	char **cursors;
	hmap index; /* key -> position (a) */
} seq;

static seq feed;       /* the whole change feed */
static seq streams[4]; /* the event stream of each variant */
static const uint32_t limits[4] = {1, 2, 5, 50};
static durox_filter *stream_filter[4];
static const char *const stream_filter_text[4] = {NULL, "status = 'Completed'", NULL,
                                                  "name = 'Sequence' OR status = 'Running'"};
static const unsigned stream_types[4] = {0, 0, (1u << DUROX_IEV_ACTIVITY_COMPLETED) | (1u << DUROX_IEV_TIMER_FIRED),
                                         (1u << DUROX_IEV_STARTED) | (1u << DUROX_IEV_COMPLETED)};
static const char *const watch_ids[4][3] = {{"completed-seq-1", "can-done-1", NULL},
                                            {"can-wait-1", "completed-seq-1", NULL},
                                            {"status-done-1", "status-wait-1", "kv-done-1"},
                                            {"no-such-instance", "tree-done-1", NULL}};

static void die(const char *what, const char *cursor, const char *detail)
{
	fprintf(stderr, "fuzz_cursor: %s\ncursor: %s\ndetail: %s\n", what, cursor ? cursor : "(null)",
	        detail ? detail : "");
	abort();
}

static char *key_of(const char *id, uint64_t exec, uint64_t event)
{
	size_t n = strlen(id) + 48;
	char *k = malloc(n);
	if (k == NULL)
		abort();
	snprintf(k, n, "%s/%llu/%llu", id, (unsigned long long)exec, (unsigned long long)event);
	return k;
}

static void seq_add(seq *s, char *key, const char *cursor)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->keys = realloc(s->keys, s->cap * sizeof *s->keys);
		s->cursors = realloc(s->cursors, s->cap * sizeof *s->cursors);
		if (s->keys == NULL || s->cursors == NULL)
			abort();
	}
	int created;
	hmap_entry *e = hmap_put(&s->index, key, strlen(key), &created);
	if (e == NULL || !created) {
		fprintf(stderr, "fuzz_cursor: the store delivered %s twice\n", key);
		abort();
	}
	e->a = (int64_t)s->n;
	s->keys[s->n] = key;
	s->cursors[s->n] = strdup(cursor);
	if (s->cursors[s->n] == NULL)
		abort();
	s->n++;
}

/* the position of key in s, or -1 */
static long seq_find(const seq *s, const char *key)
{
	hmap_entry *e = hmap_get(&s->index, key, strlen(key));
	return e != NULL ? (long)e->a : -1;
}

static void stream_request(int v, durox_event_stream_request *req, const char *cursor)
{
	memset(req, 0, sizeof *req);
	req->filter = stream_filter[v];
	req->event_types = stream_types[v];
	req->cursor = cursor;
	req->batch_size = 4;
	req->no_payloads = v & 1;
}

static void read_whole_feed(void)
{
	const char *cursor = NULL;
	char *owned = NULL;
	for (;;) {
		durox_changes_request req = {.cursor = cursor, .limit = 500};
		durox_changes *c = NULL;
		if (durox_read_changes(dx, &req, &c) != DUROX_OK) {
			fprintf(stderr, "fuzz_cursor: reading the feed: %s\n", durox_errmsg(dx));
			abort();
		}
		for (size_t k = 0; k < c->count; k++) {
			const durox_change *ch = &c->changes[k];
			seq_add(&feed, key_of(ch->instance_id, ch->execution_id, ch->event_id), ch->cursor);
		}
		size_t n = c->count;
		free(owned);
		owned = strdup(c->cursor);
		cursor = owned;
		durox_changes_free(c);
		if (n == 0)
			break;
	}
	free(owned);
}

static void read_whole_stream(int v)
{
	durox_event_stream_request req;
	stream_request(v, &req, NULL);
	durox_event_stream *s = NULL;
	if (durox_event_stream_open(dx, &req, &s) != DUROX_OK) {
		fprintf(stderr, "fuzz_cursor: opening stream %d: %s\n", v, durox_errmsg(dx));
		abort();
	}
	const durox_instance_event *ev;
	int rc;
	while ((rc = durox_event_stream_next(s, &ev)) == 1)
		if (ev->item == DUROX_ITEM_EVENT)
			seq_add(&streams[v], key_of(ev->instance_id, ev->execution_id, ev->event_id), ev->cursor);
	if (rc != 0) {
		fprintf(stderr, "fuzz_cursor: reading stream %d: %s\n", v, durox_errmsg(dx));
		abort();
	}
	durox_event_stream_free(s);
}

/* ---- seeds ------------------------------------------------------------------------------- */

static void write_seed(const char *dir, int sel, const char *cursor, size_t n)
{
	char path[4096];
	for (int raw = 0; raw < 2; raw++) {
		snprintf(path, sizeof path, "%s/sel%03d-%zu", dir, sel | (raw ? 64 : 0), n);
		FILE *f = fopen(path, "wb");
		if (f == NULL)
			return;
		fputc(sel | (raw ? 64 : 0), f);
		if (!raw) {
			fputs(cursor, f);
		} else {
			buf b;
			buf_init(&b);
			if (token_open(cursor, &b) == 0)
				fwrite(b.data, 1, b.len, f);
			buf_free(&b);
		}
		fclose(f);
	}
}

static int stop_waiting(void *ud, int64_t ms)
{
	(void)ud;
	(void)ms;
	return 1;
}

static void watch_request(int v, durox_watch_request *req, const char *cursor)
{
	memset(req, 0, sizeof *req);
	req->instance_ids = watch_ids[v];
	req->n = watch_ids[v][2] != NULL ? 3 : 2;
	req->cursor = cursor;
	req->timeout_ms = 1;
	req->wait = stop_waiting;
}

static void make_corpus(const char *dir)
{
	/* change feed: the start, a few places inside, the end */
	for (int v = 0; v < 4; v++) {
		size_t picks[4] = {0, feed.n / 3, (2 * feed.n) / 3, feed.n ? feed.n - 1 : 0};
		for (size_t p = 0; p < 4 && feed.n > 0; p++)
			write_seed(dir, (v << 2) | (p & 1 ? 1 : 0), feed.cursors[picks[p]], p);
	}
	for (int v = 0; v < 4; v++) {
		seq *s = &streams[v];
		if (s->n > 0) {
			write_seed(dir, (v << 2) | 2, s->cursors[0], 0);
			write_seed(dir, (v << 2) | 2, s->cursors[s->n / 2], 1);
		}
		durox_watch_request wr;
		watch_request(v, &wr, NULL);
		durox_watch *w = NULL;
		if (durox_watch_open(dx, &wr, &w) == DUROX_OK) {
			const durox_status_change *c;
			size_t n = 0;
			while (durox_watch_next(w, &c) == 1 && n < 4)
				if (c->cursor != NULL)
					write_seed(dir, (v << 2) | 3, c->cursor, n++);
			const char *cur = durox_watch_cursor(w);
			if (cur != NULL)
				write_seed(dir, (v << 2) | 3, cur, n);
			durox_watch_free(w);
		}
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char err[512];
	const char *db = getenv("DUROX_FUZZ_DB");
	char url[4096];
	snprintf(url, sizeof url, "sqlite:%s", db != NULL && db[0] ? db : ":memory:");
	durox_open_options o = {.readonly = db != NULL && db[0]};
	if (durox_open(url, &o, &dx, err, sizeof err) != DUROX_OK) {
		fprintf(stderr, "fuzz_cursor: cannot open %s: %s\n", url, err);
		abort();
	}
	for (int v = 0; v < 4; v++) {
		hmap_init(&streams[v].index);
		if (stream_filter_text[v] != NULL &&
		    durox_filter_parse(stream_filter_text[v], &stream_filter[v], err, sizeof err) != DUROX_OK) {
			fprintf(stderr, "fuzz_cursor: %s\n", err);
			abort();
		}
	}
	hmap_init(&feed.index);
	read_whole_feed();
	for (int v = 0; v < 4; v++)
		read_whole_stream(v);
	const char *dir = getenv("DUROX_FUZZ_MAKE_CORPUS");
	if (dir != NULL && dir[0])
		make_corpus(dir);
	return 0;
}

/* ---- the checks -------------------------------------------------------------------------- */

static int one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20)
			return 0;
	return 1;
}

static void expect_refusal(int rc, const char *cursor)
{
	static const char *const documented[] = {"malformed cursor", "cursor is a ",
	                                         "cursor was issued for another store",
	                                         "cursor was issued for a different"};
	const char *msg = durox_errmsg(dx);
	if (rc != DUROX_EINVALID)
		die("a cursor was refused with another code than DUROX_EINVALID", cursor, msg);
	if (!one_line(msg))
		die("the refusal is not one line", cursor, msg);
	for (size_t k = 0; k < sizeof documented / sizeof *documented; k++)
		if (strncmp(msg, documented[k], strlen(documented[k])) == 0)
			return;
	die("an undocumented refusal", cursor, msg);
}

static void fuzz_changes(int sel, const char *cursor)
{
	uint32_t limit = limits[(sel >> 2) & 3];
	durox_changes_request req = {.cursor = cursor, .limit = limit, .include_payloads = (sel & 3) == 1};
	durox_changes *c = NULL;
	int rc = durox_read_changes(dx, &req, &c);
	if (rc != DUROX_OK) {
		expect_refusal(rc, cursor);
		return;
	}
	if (c->count > limit)
		die("more changes than the limit", cursor, NULL);
	if (c->cursor == NULL)
		die("no cursor after a read", cursor, NULL);
	long next = -1; /* where the feed must continue from c->cursor, when known */
	if (c->reset) {
		if (c->count != 0)
			die("a reset read delivered changes", cursor, NULL);
		if (c->reset_reason == NULL || !one_line(c->reset_reason) || durox_reset_name(c->reset) == NULL)
			die("a reset without a one-line reason", cursor, c->reset_reason);
	} else if (c->count > 0) {
		char *k0 = key_of(c->changes[0].instance_id, c->changes[0].execution_id, c->changes[0].event_id);
		long i = seq_find(&feed, k0);
		if (i < 0)
			die("a change that is not in the store's feed", cursor, k0);
		free(k0);
		for (size_t k = 0; k < c->count; k++) {
			const durox_change *ch = &c->changes[k];
			char *key = key_of(ch->instance_id, ch->execution_id, ch->event_id);
			if ((size_t)i + k >= feed.n || strcmp(key, feed.keys[i + k]) != 0)
				die("changes are not a contiguous run of the feed (a gap, a repeat or another order)",
				    cursor, key);
			if (strcmp(ch->cursor, feed.cursors[i + k]) != 0)
				die("a change's cursor is not the one the whole read gave it", cursor, key);
			if ((sel & 3) == 1 && ch->data == NULL)
				die("a change without its payload", cursor, key);
			free(key);
		}
		if (strcmp(c->cursor, c->changes[c->count - 1].cursor) != 0)
			die("the read's cursor is not its last change's", cursor, NULL);
		next = i + (long)c->count;
		if (c->count < limit && (size_t)next < feed.n)
			die("a read stopped before its limit with changes left", cursor, NULL);
		if (c->count == limit && (size_t)next < feed.n && !c->more)
			die("more changes are committed but 'more' is not set", cursor, NULL);
	}
	char *after = strdup(c->cursor);
	durox_changes_free(c);
	if (after == NULL)
		return;
	/* the result's cursor continues right after what was read */
	durox_changes_request req2 = {.cursor = after, .limit = 1};
	rc = durox_read_changes(dx, &req2, &c);
	if (rc != DUROX_OK)
		die("a cursor we issued is refused", after, durox_errmsg(dx));
	if (next >= 0) {
		if ((size_t)next == feed.n && c->count != 0)
			die("a change after the end of the feed", after, NULL);
		if ((size_t)next < feed.n) {
			if (c->count != 1)
				die("nothing after a cursor that has changes after it", after, NULL);
			char *key =
			        key_of(c->changes[0].instance_id, c->changes[0].execution_id, c->changes[0].event_id);
			if (strcmp(key, feed.keys[next]) != 0)
				die("the next read does not continue right after the last change", after, key);
			free(key);
		}
	}
	durox_changes_free(c);
	free(after);
}

/* Reads at most 6 items; returns the position in the variant's stream after the last event
 * read (-1 when none was read or a reset made the position unknown). */
static long read_stream(int v, const char *cursor, char **last_cursor)
{
	durox_event_stream_request req;
	stream_request(v, &req, cursor);
	durox_event_stream *s = NULL;
	int rc = durox_event_stream_open(dx, &req, &s);
	if (rc != DUROX_OK) {
		expect_refusal(rc, cursor);
		return -2;
	}
	const seq *sq = &streams[v];
	long at = -1;
	const durox_instance_event *ev;
	for (int k = 0; k < 6 && (rc = durox_event_stream_next(s, &ev)) == 1; k++) {
		if (ev->cursor == NULL)
			die("an item without a cursor", cursor, NULL);
		if (ev->item == DUROX_ITEM_RESET) {
			if (ev->reset_reason == NULL || !one_line(ev->reset_reason))
				die("a reset without a one-line reason", cursor, ev->reset_reason);
			at = -1;
			continue;
		}
		if (ev->item != DUROX_ITEM_EVENT)
			die("an item of an unknown kind (no follow, no heartbeat asked)", cursor, NULL);
		if (ev->event_type < 0 || ev->event_type >= DUROX_IEV__COUNT ||
		    (req.event_types != 0 && !(req.event_types & (1u << ev->event_type))))
			die("an event of a type the stream does not select", cursor, ev->key);
		char *key = key_of(ev->instance_id, ev->execution_id, ev->event_id);
		if (ev->key == NULL || strcmp(ev->key, key) != 0)
			die("an event's key is not instance/execution/event", cursor, ev->key);
		long i = seq_find(sq, key);
		if (i < 0)
			die("an event that is not in the stream read from the start", cursor, key);
		if (at >= 0 && i != at)
			die("events are not a contiguous run of the stream", cursor, key);
		if (strcmp(ev->cursor, sq->cursors[i]) != 0)
			die("an event's cursor is not the one the whole read gave it", cursor, key);
		free(key);
		at = i + 1;
		if (last_cursor != NULL) {
			free(*last_cursor);
			*last_cursor = strdup(ev->cursor);
		}
	}
	if (rc < 0)
		die("the stream failed", cursor, durox_errmsg(dx));
	durox_event_stream_free(s);
	return at;
}

static void fuzz_stream(int sel, const char *cursor)
{
	int v = (sel >> 2) & 3;
	char *last = NULL;
	long at = read_stream(v, cursor, &last);
	if (at >= 0 && last != NULL) {
		/* the last item's cursor resumes right after it */
		durox_event_stream_request req;
		stream_request(v, &req, last);
		durox_event_stream *s = NULL;
		if (durox_event_stream_open(dx, &req, &s) != DUROX_OK)
			die("an event's cursor we issued is refused", last, durox_errmsg(dx));
		const durox_instance_event *ev;
		int rc = durox_event_stream_next(s, &ev);
		if ((size_t)at < streams[v].n) {
			if (rc != 1 || ev->item != DUROX_ITEM_EVENT || strcmp(ev->key, streams[v].keys[at]) != 0)
				die("resuming from an event's cursor does not give the next event", last,
				    rc == 1 ? ev->key : durox_errmsg(dx));
		} else if (rc != 0) {
			die("resuming at the end of the stream gives more", last, NULL);
		}
		durox_event_stream_free(s);
	}
	free(last);
}

static void fuzz_watch(int sel, const char *cursor)
{
	int v = (sel >> 2) & 3;
	durox_watch_request req;
	watch_request(v, &req, cursor);
	durox_watch *w = NULL;
	int rc = durox_watch_open(dx, &req, &w);
	if (rc != DUROX_OK) {
		expect_refusal(rc, cursor);
		return;
	}
	const durox_status_change *c;
	for (int k = 0; k < 8 && (rc = durox_watch_next(w, &c)) == 1; k++) {
		if (c->cursor == NULL)
			die("a watch item without a cursor", cursor, NULL);
		if (c->item == DUROX_ITEM_RESET)
			continue;
		if (c->item != DUROX_ITEM_EVENT)
			die("a watch item of an unknown kind", cursor, NULL);
		int watched = 0;
		for (size_t i = 0; i < req.n; i++)
			watched |= c->instance_id != NULL && strcmp(c->instance_id, req.instance_ids[i]) == 0;
		if (!watched)
			die("an item about an instance that is not watched", cursor, c->instance_id);
		if (c->old_status < 0 || c->old_status >= DUROX_STATUS__COUNT || c->new_status < 0 ||
		    c->new_status >= DUROX_STATUS__COUNT || c->failure_kind < 0 ||
		    c->failure_kind >= DUROX_FAILURE__COUNT)
			die("a status change with a status out of range", cursor, c->instance_id);
	}
	if (rc < 0 && rc != DUROX_EABORT)
		die("the watch failed", cursor, durox_errmsg(dx));
	const char *cur = durox_watch_cursor(w);
	char *after = cur != NULL ? strdup(cur) : NULL;
	durox_watch_free(w);
	if (after == NULL)
		die("no cursor after a watch", cursor, NULL);
	watch_request(v, &req, after);
	if (durox_watch_open(dx, &req, &w) != DUROX_OK)
		die("a watch cursor we issued is refused", after, durox_errmsg(dx));
	durox_watch_free(w);
	free(after);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	int sel = data[0];
	char *cursor = NULL;
	if (sel & 64) {
		/* raw content: seal it as token_seal does (checksum appended, base64url) */
		arena a;
		arena_init(&a);
		buf b;
		buf_init(&b);
		buf_add(&b, data + 1, size - 1);
		const char *t = token_seal(&a, &b);
		buf_free(&b);
		cursor = t != NULL ? strdup(t) : NULL;
		arena_release(&a);
	} else {
		cursor = malloc(size);
		if (cursor != NULL) {
			memcpy(cursor, data + 1, size - 1);
			cursor[size - 1] = '\0';
		}
	}
	if (cursor == NULL)
		return 0;
	switch (sel & 3) {
	case 0:
	case 1: fuzz_changes(sel, cursor); break;
	case 2: fuzz_stream(sel, cursor); break;
	default: fuzz_watch(sel, cursor); break;
	}
	free(cursor);
	return 0;
}
