/*
 * feed.h - the engine's side of the change feed (store/provider_feed.h): cursor tokens that
 * wrap a provider position, bound to the store (its identity) and to what the consumer
 * selects (a binding fingerprint: filter, event types, watched ids), with room for the
 * consumer's own state (a watch keeps the last status of every id). Used by feed.c (the raw
 * durox_read_changes) and stream.c (event streams, watches, metric streams).
 */
#ifndef DUROX_ENGINE_FEED_H
#define DUROX_ENGINE_FEED_H

#include "engine/internal.h"
#include "store/provider_feed.h"
#include "util/buf.h"

/* Token kinds (the first payload byte). */
#define EFEED_CHANGES 'C'
#define EFEED_EVENTS 'E'
#define EFEED_WATCH 'W'

typedef struct efeed {
	durox *dx;
	store_feed *f;
	const store_feed_vtable *fv; /* kept so the feed can be freed after dx is closed */
	char kind;
	uint64_t binding;
	buf extra; /* the consumer state a restored cursor carried (empty otherwise) */
} efeed;

/*
 * Opens a feed for dx's store: from cursor (a token of this kind, store and binding), else
 * at the present (at_end) or before the first row. DUROX_EINVALID with a message naming the
 * problem for a malformed cursor, one of another kind, store or binding; DUROX_EUNSUPPORTED
 * when the provider has no feed; DUROX_EDENIED when enable_streaming is off. On failure the
 * efeed is left closed (efeed_close is still safe).
 */
int efeed_open(durox *dx, efeed *e, char kind, uint64_t binding, const char *cursor, int at_end);
/* Frees the feed; safe after dx was closed (a Lua stream collected after its store). */
void efeed_close(efeed *e);

/* A cursor token for position pos (len bytes, from the provider) with the consumer state
 * extra (may be NULL), allocated from a; NULL when out of memory. */
const char *efeed_token(const efeed *e, arena *a, const unsigned char *pos, size_t len, const void *extra,
                        size_t extra_len);
/* The token of the feed's current position. */
const char *efeed_current(const efeed *e, arena *a, const void *extra, size_t extra_len);

/* The event's timestamp_ms from its JSON (the first top-level "timestamp_ms"), or def. */
int64_t efeed_event_ts(const char *text, size_t len, int64_t def);

#endif
