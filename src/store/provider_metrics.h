/*
 * provider_metrics.h - the second half of the provider contract: the aggregate reads behind
 * metrics, analytics and the stuck-work report. A provider that supports them points
 * store.mvt at a store_metrics_vtable (SQLite: sqlite_metrics.c, sqlite_analytics.c);
 * the engine (src/engine/metrics.c, analytics.c, stuck.c) calls nothing else for them.
 *
 * Every aggregate is computed by the store in one pass (no per-instance round trips from
 * the engine); the engine combines the digests into the public figures and caches them.
 */
#ifndef DUROX_STORE_PROVIDER_METRICS_H
#define DUROX_STORE_PROVIDER_METRICS_H

#include "store/provider.h"

/* History event types the history digest counts (the JSON "type" values Duroxide writes). */
typedef enum store_event_type {
	EV_ORCHESTRATION_STARTED,
	EV_ORCHESTRATION_COMPLETED,
	EV_ORCHESTRATION_FAILED,
	EV_ORCHESTRATION_CONTINUED_AS_NEW,
	EV_ORCHESTRATION_CANCEL_REQUESTED,
	EV_ORCHESTRATION_CHAINED,
	EV_ACTIVITY_SCHEDULED,
	EV_ACTIVITY_COMPLETED,
	EV_ACTIVITY_FAILED,
	EV_ACTIVITY_CANCEL_REQUESTED,
	EV_TIMER_CREATED,
	EV_TIMER_FIRED,
	EV_EXTERNAL_SUBSCRIBED,
	EV_EXTERNAL_EVENT,
	EV_EXTERNAL_SUBSCRIBED_CANCELLED,
	EV_QUEUE_SUBSCRIBED,             /* ExternalSubscribedPersistent */
	EV_QUEUE_EVENT,                  /* ExternalEventPersistent */
	EV_QUEUE_SUBSCRIPTION_CANCELLED, /* ExternalSubscribedPersistentCancelled */
	EV_SUB_ORCHESTRATION_SCHEDULED,
	EV_SUB_ORCHESTRATION_COMPLETED,
	EV_SUB_ORCHESTRATION_FAILED,
	EV_SUB_ORCHESTRATION_CANCEL_REQUESTED,
	EV_CUSTOM_STATUS_UPDATED,
	EV_KEY_VALUE_SET,
	EV_KEY_VALUE_CLEARED,
	EV_KEY_VALUES_CLEARED,
	EV__COUNT
} store_event_type;

/* Name of a counted type (the stored JSON "type"). */
extern const char *const store_event_type_names[EV__COUNT];

/* ---- digests ---------------------------------------------------------------------- */

/* Instances of one (orchestration_name, orchestration_version) by current status. */
typedef struct store_instance_group {
	const char *name, *version; /* version NULL when the store holds none */
	uint64_t instances, running, completed, failed, continued_as_new, unknown;
} store_instance_group;

typedef struct store_instance_digest {
	arena mem; /* owns groups and their strings */
	size_t n;
	store_instance_group *groups; /* sorted by name, then version (NULL first) */
	uint64_t executions;          /* executions rows */
} store_instance_digest;

/* Instance durations of one (name, version): the version of the execution that ended. */
typedef struct store_duration_group {
	const char *name, *version;
	uint64_t n;
	double sum_ms;
} store_duration_group;

/* What a history digest must include beyond the counts (store_metrics_vtable.history_digest):
 * pairing activity results with their schedules needs a map of every activity in flight, so
 * a caller that shows no processing times does not ask for it. */
enum { STORE_DIGEST_ROUND_TRIPS = 1 };

typedef struct store_history_digest {
	arena mem;
	unsigned has; /* STORE_DIGEST_* parts this digest includes (round_trips are 0 without) */
	uint64_t rows;
	uint64_t by_type[EV__COUNT];
	uint64_t other_types;
	uint64_t failed_by_kind[DUROX_FAILURE__COUNT]; /* OrchestrationFailed events */
	uint64_t round_trips;                          /* activity results paired with their ActivityScheduled */
	double round_trip_ms;                          /* sum of (result ts - scheduled ts) */
	uint64_t durations;                            /* instances whose start and terminal events were both seen */
	double duration_ms;                            /* sum of their durations */
	size_t ngroups;
	store_duration_group *groups; /* sorted by name, then version */
} store_history_digest;

/* Facts about the store as a whole. */
typedef struct store_meta {
	int64_t created_at; /* earliest migration install time, else the oldest instance; DUROX_NO_TIME when unknown */
	int64_t last_history_ts; /* timestamp of the most recently written history row */
	int64_t newest_lock_at;  /* max instance_locks.locked_at */
} store_meta;

/* ---- queues -------------------------------------------------------------------------- */

typedef struct store_queue_params {
	int64_t now;
	int64_t stall_ms, timer_overdue_ms;
	uint32_t near_poison, max_attempts;
	/* 1: the caller reads no orchestrator.orphans, which a provider may then leave 0 (its
	 * orphans_blocking stays exact); 0: every figure */
	int no_orphan_count;
} store_queue_params;

typedef struct store_queue_snapshot {
	uint64_t orchestrator_rows, worker_rows, pending_timers, overdue_timers;
	durox_queue_detail orchestrator, worker;
	int64_t orchestrator_oldest_visible; /* min visible_at of visible non-timer-pending rows, or NO_TIME */
	int64_t worker_oldest_visible;
	int64_t oldest_timer_created; /* created_at of the oldest pending timer */
	int64_t next_timer_at;
	uint64_t instance_locks, expired_instance_locks, long_expired_instance_locks; /* long: > stall_ms */
} store_queue_snapshot;

/* A queue row that shows a problem (find_stuck_instances). Strings are transient. */
typedef enum store_lock_state { LOCK_FREE, LOCK_IN_PROGRESS, LOCK_WAITING, LOCK_EXPIRED } store_lock_state;

/* Problems of a queue row (store_queue_item.flags), judged by the provider under the params. */
enum {
	QF_POISON_RISK = 1 << 0,   /* attempt_count >= near_poison */
	QF_EXPIRED_LOCK = 1 << 1,  /* its lock (worker) or its instance's lock expired more than stall_ms ago */
	QF_OVERDUE_TIMER = 1 << 2, /* a due TimerFired, not in progress, visible for > timer_overdue_ms */
	QF_STALLED = 1 << 3,       /* available (not a timer) for > stall_ms */
	QF_ORPHAN = 1 << 4,        /* orchestrator: no such instance and no start queued for it */
	QF_BLOCKING = 1 << 5       /* an orphan that is visible and not a QueueMessage */
};

typedef struct store_queue_item {
	unsigned flags;     /* QF_* */
	int64_t created_at; /* the row's created_at (ms, whole seconds on SQLite) */
	int worker;         /* 0: orchestrator_queue, 1: worker_queue */
	int64_t id;
	const char *instance_id;
	const char *work_item; /* the JSON as stored */
	int64_t visible_at;
	int64_t locked_until; /* worker rows: their lock; orchestrator rows: the instance lock; NO_TIME when none */
	int64_t attempt_count;
	int lock_state; /* store_lock_state */
	int instance_exists;
	const char *status;             /* its current execution's status as stored; NULL when none */
	const char *orchestration_name; /* NULL when the instance does not exist */
	int start_queued;               /* a StartOrchestration for the instance is queued */
} store_queue_item;

typedef int (*store_queue_item_cb)(void *ud, const store_queue_item *it);

/* An instance lock that expired (it may have no queue rows left). */
typedef struct store_lock_row {
	const char *instance_id;
	int64_t locked_until, locked_at;
	const char *status; /* current execution status, NULL when none */
	const char *orchestration_name;
} store_lock_row;

typedef int (*store_lock_cb)(void *ud, const store_lock_row *l);

/* A running instance whose current execution's last event is older than a bound. */
typedef struct store_idle_row {
	const char *instance_id;
	const char *orchestration_name;
	uint64_t execution_id;
	int64_t last_event_ts;
} store_idle_row;

/* One event of such an instance's current execution (strings transient). */
typedef int (*store_idle_cb)(void *ud, const store_idle_row *r, const store_event_row *ev);

/* ---- analytics ---------------------------------------------------------------------- */

typedef struct store_group_query {
	const durox_filter *filter;
	const int *group_by; /* durox_group_field */
	size_t n_group_by;
	unsigned aggregates; /* durox_aggregate bits */
	uint32_t limit;
} store_group_query;

/* One result group (strings transient); total_groups and total_instances are over every group. */
typedef int (*store_group_cb)(void *ud, const durox_query_group *g, uint64_t total_groups, uint64_t total_instances);

typedef struct store_series_query {
	int64_t from, to; /* window [from, to), from aligned to bucket_ms */
	int64_t bucket_ms;
	unsigned series; /* durox_series bits */
	const char *orchestration_name;
	const durox_filter *filter; /* only instances matching it (access control's view); NULL: all */
} store_series_query;

/* A descendant (strings transient). */
typedef struct store_node {
	const char *instance_id, *parent_instance, *orchestration_name, *status;
	uint32_t depth;
	uint64_t child_count;
} store_node;

typedef int (*store_node_cb)(void *ud, const store_node *n);

/* ---- the vtable --------------------------------------------------------------------- */

typedef struct store_metrics_vtable {
	int (*instance_digest)(store *st, store_instance_digest *out);
	/* want: STORE_DIGEST_* bits of the optional parts the caller needs (it may get more). */
	int (*history_digest)(store *st, unsigned want, store_history_digest *out);
	int (*meta)(store *st, store_meta *out);
	/* Sizes and latencies; everything but the provider_type and the two averages. */
	int (*diagnostics)(store *st, durox_provider_diagnostics *out);
	int (*queue_snapshot)(store *st, const store_queue_params *p, store_queue_snapshot *out);
	/* Queue rows with a problem under p (near poison, expired lock, overdue timer, stalled, orphan). */
	int (*problem_items)(store *st, const store_queue_params *p, store_queue_item_cb cb, void *ud);
	/* instance_locks rows with locked_until <= before. */
	int (*expired_locks)(store *st, int64_t before, store_lock_cb cb, void *ud);
	/* Every event of the current execution of every running instance whose last event is older
	 * than older_than, in one statement: an instance's events come together, by event_id. */
	int (*idle_running)(store *st, int64_t older_than, store_idle_cb cb, void *ud);
	int (*query_instances)(store *st, const store_group_query *q, store_group_cb cb, void *ud);
	/* Adds the window's figures into buckets[0..n) (bucket i starts at from + i * bucket_ms). */
	int (*time_series)(store *st, const store_series_query *q, durox_time_bucket *buckets, size_t n);
	/* Descendants of root down to max_depth (0: all), by depth, creation, id; at most limit rows.
	 * With a filter (access control's view; NULL: none) the walk passes only through instances
	 * matching it: a node that does not match is left out with its whole subtree, and
	 * child_count counts matching children only. */
	int (*descendants)(store *st, const char *root, uint32_t max_depth, uint32_t limit, const durox_filter *filter,
	                   store_node_cb cb, void *ud);
	/* The number of descendants descendants() would list without depth and row limits. */
	int (*count_descendants)(store *st, const char *root, const durox_filter *filter, uint64_t *out);
	/* Ancestors of id, nearest first (the instance itself excluded). */
	int (*ancestors)(store *st, const char *id, store_node_cb cb, void *ud);
} store_metrics_vtable;

void store_instance_digest_free(store_instance_digest *d);
void store_history_digest_free(store_history_digest *d);

#endif
