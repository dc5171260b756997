/*
 * provider_feed.h - the change feed: the third part of the provider contract. "What did the
 * runtime commit to history since this position?", answered from the runtime's own tables
 * without changing them, gated so that an idle round costs about a microsecond, and able to
 * say that the store changed under the position (reset) instead of skipping silently.
 * A provider that has one points store.fvt at a store_feed_vtable (SQLite: sqlite_feed.c).
 * Two kinds of consumer are built on it, and this one contract serves both:
 * - streams (src/engine/stream.c: stream_instance_events, watch_instances, metric streams,
 *   the events/watch commands, webhooks, rules) read per-event rows with their payloads;
 * - the visibility index (issue 10) reads which instances changed (rows without payloads)
 *   and keeps its summaries and digests current from them.
 *
 * Positions
 * - A position lies between two history rows. It is saved as opaque bytes (at most
 *   STORE_FEED_POS_MAX) that the provider reads back on a later open, in another process,
 *   after the runtime restarted: the engine wraps them in its cursor tokens. Every row a
 *   poll delivers carries the position right after it, so a consumer that stops after any
 *   row can resume exactly there.
 * - Order: every row of one execution comes after the rows of that execution delivered
 *   before it, in event_id order (the order Duroxide appends them). SQLite delivers in
 *   commit order (history rowid); a provider without a commit order delivers each round's
 *   rows grouped by instance. A poll never delivers a row twice and never skips one, as long
 *   as it reports no reset.
 *
 * Resets: the position is no longer trustworthy; the result says which kind and why.
 * - STORE_FEED_RESET_LOST: the row the position was taken after is gone or is another row
 *   (deletion of the newest rows and rowid reuse, VACUUM renumbering rows, the store file
 *   replaced by another one, a restored backup that lacks it). Rows may have been missed:
 *   the feed is repositioned at the present and the consumer must re-list what it derives.
 * - STORE_FEED_RESET_DELETED: rows at or before the position were deleted (a purge, a prune,
 *   by anyone's client), while the position itself is intact, so nothing after it is
 *   missed; what the consumer derived from the deleted rows is stale: re-list or reconcile.
 *   Finding these costs a count of the history table (a few ms per million rows), so it is
 *   done at most every verify_ms of wall time (and always right after a restore and after
 *   this connection deleted rows); the result says whether this round checked.
 * A reset round delivers no rows; the next poll continues from the new position.
 *
 * Costs and transactions: an idle round (nothing committed by any connection since this
 * feed's last round reached the end, and the file not replaced) reads nothing. A round that
 * reads runs in ONE short read transaction, ended before poll returns; the row callback runs
 * inside it, so it must be quick, must copy what it keeps and must not call the provider.
 */
#ifndef DUROX_STORE_PROVIDER_FEED_H
#define DUROX_STORE_PROVIDER_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "store/provider.h"

#define STORE_FEED_POS_MAX 4096 /* bytes of a saved position */

typedef struct store_feed store_feed; /* provider-private state of one consumer */

enum store_feed_reset { STORE_FEED_RESET_NONE = 0, STORE_FEED_RESET_LOST, STORE_FEED_RESET_DELETED };

/* One history row. Pointers are valid only during the callback. */
typedef struct store_feed_row {
	const char *instance_id;
	uint64_t execution_id;
	uint64_t event_id;
	const char *event_type; /* the JSON "type" Duroxide wrote (never NULL) */
	const char *data;       /* event JSON; NULL when the request asked for no payloads */
	size_t data_len;
	int64_t created_at;       /* store time, DUROX_NO_TIME when NULL */
	const unsigned char *pos; /* the position right after this row */
	size_t pos_len;
} store_feed_row;

/* Row callback: 0 continues, 1 stops after this row (the feed's position is then right after
 * it), < 0 aborts the poll with that code (the position is then unchanged). */
typedef int (*store_feed_cb)(void *ud, const store_feed_row *r);

typedef struct store_feed_request {
	uint32_t limit;    /* most rows this round; 0 means 500 */
	size_t max_bytes;  /* stop after this many payload bytes (at least one row); 0 means 8 MiB */
	int with_data;     /* nonzero: read event_data (else data is NULL: cheaper, for the index) */
	int64_t verify_ms; /* check for deleted rows at most this often; 0: every reading round;
	                    * < 0: only when forced (after a restore, after own deletes) */
	int64_t now_ms;    /* wall clock of this round, for verify_ms (0: the provider reads it) */
} store_feed_request;

typedef struct store_feed_result {
	int idle;         /* the gate showed no commit since the last round: nothing was read */
	size_t rows;      /* rows handed to the callback */
	int more;         /* the limit stopped the round: committed rows remain */
	int verified;     /* this round counted the table to look for deletions */
	int reset;        /* enum store_feed_reset */
	char reason[160]; /* for a reset: what was found, one line */
} store_feed_result;

typedef struct store_feed_vtable {
	/* A new feed positioned before the first row (*out NULL on failure). */
	int (*open)(store *st, store_feed **out);
	/* Frees the feed (accepts NULL). */
	void (*close)(store_feed *f);
	/* Positions the feed before the first row (at_end 0) or after the last row committed now
	 * (at_end nonzero). */
	int (*seek)(store_feed *f, int at_end);
	/* Positions the feed at saved bytes; DUROX_EINVALID when they are not a position of
	 * this provider (the message says so). The next poll checks the position. */
	int (*restore)(store_feed *f, const void *pos, size_t len);
	/* Copies the current position into out (capacity STORE_FEED_POS_MAX) and sets *len. */
	int (*save)(store_feed *f, unsigned char *out, size_t *len);
	/* One round: hands the rows committed after the position to cb, in feed order, and
	 * moves the position past each row delivered. Fills *res (zeroed first). */
	int (*poll)(store_feed *f, const store_feed_request *rq, store_feed_cb cb, void *ud, store_feed_result *res);
	/* Vouches for the position: no history row at or before it had been deleted as of
	 * verified_at_ms (wall clock), as the caller established itself (a check another handle
	 * recorded with the position, or the store's files unchanged since such a check: the
	 * visibility index). The next round then looks for deletions only once the request's
	 * verify interval has passed since verified_at_ms, instead of at once as after a restore. */
	int (*vouch)(store_feed *f, int64_t verified_at_ms);
} store_feed_vtable;

#endif
