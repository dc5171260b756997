/*
 * stream_internal.h - what the streams of src/engine share (stream.c, watch.c,
 * stream_metrics.c): batches of history rows copied out of the change feed, the history event
 * types they care about, and sleeping between polls through the caller's wait function.
 */
#ifndef DUROX_ENGINE_STREAM_INTERNAL_H
#define DUROX_ENGINE_STREAM_INTERNAL_H

#include "engine/feed.h"
#include "util/json.h"

/* One history row copied out of a poll (strings in the batch's arena). */
typedef struct stream_row {
	char *instance_id;
	uint64_t execution_id, event_id;
	char *event_type;
	char *data; /* event JSON */
	size_t data_len;
	int64_t created_at;
	unsigned char *pos; /* the feed position right after the row */
	size_t pos_len;
} stream_row;

typedef struct stream_rows {
	arena mem;
	stream_row *rows;
	size_t n, cap;
} stream_rows;

void stream_rows_reset(stream_rows *b);
void stream_rows_free(stream_rows *b);

/* One poll of e into b (emptied first): at most limit rows (0: 500) with their JSON. */
int stream_poll(efeed *e, uint32_t limit, int64_t verify_ms, stream_rows *b, store_feed_result *res);

/* The history event types the streams distinguish. */
enum {
	SH_OTHER = 0,
	SH_STARTED,
	SH_COMPLETED,
	SH_FAILED,
	SH_CAN,
	SH_ACTIVITY_SCHEDULED,
	SH_ACTIVITY_COMPLETED,
	SH_ACTIVITY_FAILED,
	SH_TIMER_FIRED,
	SH_EXTERNAL_EVENT,
	SH_QUEUE_EVENT,
	SH_CUSTOM_STATUS
};
int stream_history_type(const char *type);

/* The failure kind of an OrchestrationFailed event; *cancelled when it is a cancellation. */
int stream_failure_of(const json *ev, int *cancelled);

/* Sleeps ms through wait (NULL: nanosleep). DUROX_EABORT when wait asked to stop. */
int stream_wait(durox *dx, durox_wait_fn wait, void *ud, int64_t ms);

/* The "name" of the first event a history read returns (store_event_cb). */
typedef struct stream_name_lookup {
	arena *a;
	const char *name;
} stream_name_lookup;
int stream_event_name_cb(void *ud, const store_event_row *r);

#endif
