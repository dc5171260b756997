/*
 * metrics_internal.h - what the engine's metrics and analytics files share: the per-call
 * context (enable_metrics check, the evaluation time, the cache policy) and access to the
 * handle's cached digests. Private to src/engine (metrics.c, analytics.c, stuck.c).
 */
#ifndef DUROX_ENGINE_METRICS_INTERNAL_H
#define DUROX_ENGINE_METRICS_INTERNAL_H

#include "engine/internal.h"
#include "store/provider_metrics.h"

typedef struct metrics_ctx {
	durox *dx;
	int64_t now;
	int explicit_now;
	int fresh;
	int64_t collected_at; /* the oldest computation time of what was used */
} metrics_ctx;

/* Starts a metric call: clears the message, refuses when metrics are disabled (DUROX_EDENIED)
 * or unsupported, creates the cache. req may be NULL. */
int metrics_begin(durox *dx, const durox_metrics_request *req, metrics_ctx *m);
/* The (possibly cached) digests; the pointers stay valid until the next metric call. */
int metrics_instances(metrics_ctx *m, const store_instance_digest **out);
/* want: STORE_DIGEST_* parts needed beyond the counts. */
int metrics_history(metrics_ctx *m, unsigned want, const store_history_digest **out);
/* The queue thresholds of the handle's configuration at time now. */
void metrics_queue_params(const durox *dx, int64_t now, store_queue_params *p);
int64_t metrics_collected_at(const metrics_ctx *m);

#endif
