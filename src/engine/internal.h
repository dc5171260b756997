/*
 * internal.h - engine-private declarations shared by the files of src/engine.
 * The handle owns one store provider, the management configuration and the last
 * error message. Nothing here is visible to the binding or the CLI.
 */
#ifndef DUROX_ENGINE_INTERNAL_H
#define DUROX_ENGINE_INTERNAL_H

#include "durox.h"
#include "store/provider.h"
#include "util/arena.h"
#include "util/json.h"

typedef struct metrics_cache metrics_cache; /* metrics.c */
typedef struct access_state access_state;   /* access.h */
struct changes_state;                       /* feed.c */

struct durox {
	store *st;
	durox_config cfg;
	char err[512];
	metrics_cache *metrics;        /* cached digests (metrics.c), created on first use */
	access_state *acl;             /* caller, policy and audit log (access.c, audit.c); set by durox_open */
	struct changes_state *changes; /* the feed of durox_read_changes (feed.c), created on first use */
};

/* Frees the handle's metrics cache (metrics.c); accepts NULL. */
void metrics_cache_free(metrics_cache *c);
/* Frees the handle's read_changes feed (feed.c); accepts NULL. */
void feed_state_free(struct changes_state *cs);

/* Sets the handle's message and returns rc. */
int dx_fail(durox *dx, int rc, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;
/* Copies the provider's message for a failed provider call and returns rc. */
int dx_store_fail(durox *dx, int rc);
/* The error for an instance id without an instance row: DUROX_ENOTFOUND with "instance 'id'
 * not found", or, when its StartOrchestration is queued (and no policy is in force, which
 * would hide it), "instance 'id' is Pending: ..." so a queued start reads the same in every
 * call. what: what it has not got yet ("history", "tree"...). Defined in details.c. */
int dx_fail_missing(durox *dx, const char *id, const char *what);
/* Clears the message (start of every public call). */
void dx_clear(durox *dx);

/* An EXPR_IDSET node of f: instance_id is one of the ids in json_array (a JSON array of
 * strings, copied), n_ids of them (filter.c). NULL when out of memory. */
durox_expr *filter_idset(durox_filter *f, const char *json_array, size_t n_ids);

/* durox_instance_iter_new for an operation of the engine (list.c): the caller's view is
 * opened under that operation's name (bulk target resolution, exports...). */
int instance_iter_open(durox *dx, const char *operation, const durox_list_request *req, durox_instance_iter **out);

/* Deep-copies a summary's strings into a. Returns 0 or DUROX_ENOMEM. */
int summary_copy(arena *a, durox_instance_summary *dst, const durox_instance_summary *src);

/* Analysis of one execution's history (history.c). */
typedef struct exec_analysis {
	uint64_t execution_id;
	int64_t first_ts, last_ts; /* DUROX_NO_TIME when no events */
	int64_t started_ts;        /* OrchestrationStarted timestamp */
	int64_t terminal_ts;       /* OrchestrationCompleted/Failed/ContinuedAsNew timestamp */
	const char *input;         /* OrchestrationStarted input (arena) */
	const char *can_input;     /* OrchestrationContinuedAsNew input (arena) */
	const char *details_json;  /* OrchestrationFailed details (arena, compact JSON) */
	int failure_kind;
	uint64_t events;
	durox_instance_statistics stats; /* counts for this execution */
	double turn_time_sum;
	/* pending work (filled when want_pending) */
	durox_execution_details pending;
} exec_analysis;

/* Reads and analyses one execution's history into *ea (allocations from a). */
int analyse_execution(durox *dx, arena *a, const char *instance_id, uint64_t execution_id, int want_pending,
                      exec_analysis *ea);
/* The same over rows the caller already read (the execution's events in event_id order). */
int analyse_rows(durox *dx, arena *a, const char *instance_id, uint64_t execution_id, const store_event_row *rows,
                 size_t n, int want_pending, exec_analysis *ea);

#endif
