/*
 * durox.h - the duroxlua management engine for Duroxide stores: the public C API.
 *
 * This header is the reference. It implements the management and visibility API of
 * the Duroxide proposal (names and fields follow the proposal's Rust structs) directly
 * against the stores the Duroxide runtime writes (SQLite today; the provider interface
 * is shaped for PostgreSQL).
 *
 * Conventions
 * - Opaque handle `durox`, one per store connection; not safe for concurrent use from
 *   several threads (use one handle per thread).
 * - Functions that can fail return int: DUROX_OK (0) or a negative DUROX_E* code, and
 *   leave a one-line message in durox_errmsg(). Out-parameters are set to NULL/0 first.
 * - Times are int64 milliseconds since the Unix epoch, UTC. DUROX_NO_TIME marks "none".
 * - Every result object is returned through an out-parameter and owned by the caller,
 *   who frees it with the matching durox_*_free (all accept NULL). Strings inside a
 *   result point into the result and live exactly as long as it does.
 * - Reads never keep a transaction open after a call returns.
 */
#ifndef DUROX_H
#define DUROX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DUROX_VERSION "0.1.0"

/* ---- result codes ------------------------------------------------------------- */

#define DUROX_OK 0
#define DUROX_ENOTFOUND (-1)    /* the named instance, execution, job... does not exist */
#define DUROX_EBUSY (-2)        /* the store stayed locked past the busy timeout */
#define DUROX_EDENIED (-3)      /* refused by access control or a read-only handle */
#define DUROX_EINVALID (-4)     /* bad argument: malformed filter, token, URL, time... */
#define DUROX_ELIMIT (-5)       /* a configured limit would be exceeded */
#define DUROX_EIO (-6)          /* the store failed (I/O, SQL error, connection lost) */
#define DUROX_ENOMEM (-7)       /* out of memory */
#define DUROX_EUNSUPPORTED (-8) /* not a Duroxide store, unknown schema, or not supported by this provider */
#define DUROX_ECORRUPT (-9)     /* a stored row is not what Duroxide writes (unparseable JSON...) */
#define DUROX_EABORT (-10)      /* a caller callback asked to stop */

/* Short upper-case name of a result code ("NOTFOUND", "BUSY", ...); "OK" for 0, "UNKNOWN" otherwise. */
const char *durox_code_name(int rc);

#define DUROX_NO_TIME INT64_MIN

/* ---- statuses and kinds --------------------------------------------------------- */

/* Status of an instance = status of its current execution, with Duroxide's names. */
typedef enum durox_status {
	DUROX_STATUS_NOT_FOUND = 0, /* "NotFound" */
	DUROX_STATUS_RUNNING,       /* "Running" */
	DUROX_STATUS_COMPLETED,     /* "Completed" */
	DUROX_STATUS_FAILED,        /* "Failed" (cancellation is a failure in Duroxide) */
	DUROX_STATUS_CONTINUED_AS_NEW, /* "ContinuedAsNew": between an execution's end and the next one's start */
	DUROX_STATUS_UNKNOWN,       /* "Unknown": the instance row exists but its current execution row does not */
	DUROX_STATUS__COUNT
} durox_status;

/* Name of a status ("Running"...), or NULL for an out-of-range value. */
const char *durox_status_name(int status);
/* Status from its name (case-insensitive; also accepts "Cancelled"? no: cancelled is a failure_kind). -1 if unknown. */
int durox_status_parse(const char *name);

/* Why a Failed instance failed, from the ErrorDetails Duroxide recorded. */
typedef enum durox_failure_kind {
	DUROX_FAILURE_NONE = 0,       /* not failed */
	DUROX_FAILURE_APPLICATION,    /* "application": orchestration or activity code failed (incl. panics) */
	DUROX_FAILURE_CANCELLED,      /* "cancelled": cancel_instance (Application/Cancelled) */
	DUROX_FAILURE_POISON,         /* "poison": a message exceeded the runtime's max attempts */
	DUROX_FAILURE_NONDETERMINISM, /* "nondeterminism": replay did not match history (Configuration/Nondeterminism) */
	DUROX_FAILURE_INFRASTRUCTURE, /* "infrastructure": provider or data errors */
	DUROX_FAILURE_CONFIGURATION,  /* "configuration": other configuration errors */
	DUROX_FAILURE__COUNT
} durox_failure_kind;

/* Lower-case name of a failure kind ("cancelled"...), "" for NONE, NULL when out of range. */
const char *durox_failure_kind_name(int kind);
/* Kind from its name (case-insensitive), -1 if unknown. */
int durox_failure_kind_parse(const char *name);

/* ---- opening a store ---------------------------------------------------------- */

typedef struct durox durox;

typedef struct durox_open_options {
	int readonly;        /* nonzero: open read-only; every write fails with DUROX_EDENIED */
	int busy_timeout_ms; /* how long to wait for a locked store; 0 means 5000 */
} durox_open_options;

/*
 * Opens a Duroxide store.
 * url: "sqlite:PATH", "sqlite://PATH" (optionally "?mode=ro"), or "sqlite::memory:" (a
 *      fresh in-memory store with the schema Duroxide creates for in-memory stores).
 * opts: may be NULL for defaults.
 * On success *out is a new handle (close with durox_close). On failure *out is NULL and,
 * if errbuf is not NULL, a one-line message is written there: a missing file, a file that
 * is not SQLite, a database that is not a Duroxide store (DUROX_EUNSUPPORTED), or a bad
 * URL (DUROX_EINVALID). The file is never created.
 */
int durox_open(const char *url, const durox_open_options *opts, durox **out, char *errbuf, size_t errlen);

/* Closes the handle and its connection. Accepts NULL. */
void durox_close(durox *dx);

/* The message of the last failed call on dx (never NULL; "" after success). */
const char *durox_errmsg(const durox *dx);

/* What the handle is connected to. Strings are owned by dx. */
typedef struct durox_store_info {
	const char *provider;       /* "sqlite" */
	const char *location;       /* file path or ":memory:" */
	const char *schema_version; /* e.g. "20240112000000" (last applied migration), or "create_schema" */
	int readonly;
	/* capabilities detected from the schema (columns older stores lack) */
	int has_custom_status;
	int has_parent_instance;
	int has_kv;
	int has_sessions;
	int has_attempt_count;
	int has_worker_identity; /* worker_queue.instance_id/execution_id/activity_id */
} durox_store_info;

/* Fills *info; never fails. */
void durox_get_store_info(durox *dx, durox_store_info *info);

/* ---- configuration (the proposal's ManagementConfig) ---------------------------- */

typedef struct durox_config {
	int enable_metrics;               /* default 1 */
	int enable_streaming;             /* default 1 */
	uint32_t max_list_instances;      /* cap of durox_list_instances and of page_size; default 10000 */
	uint32_t max_bulk_operations;     /* ceiling of bulk max_instances; default 1000 */
	uint32_t metrics_retention_hours; /* default 24 */
	uint32_t cache_ttl_seconds;       /* default 5 */
} durox_config;

/* Copies the handle's configuration into *cfg. */
void durox_get_config(durox *dx, durox_config *cfg);
/* Replaces the configuration; DUROX_EINVALID when max_list_instances or max_bulk_operations is 0. */
int durox_set_config(durox *dx, const durox_config *cfg);

/* ---- instance summaries ---------------------------------------------------------- */

/* InstanceSummary. Field meanings (all derived from what the store holds):
 * created_at     instances.created_at (SQLite stores whole seconds).
 * updated_at     the latest of: instances.updated_at, the current execution's start and
 *                completion, and the store time of the current execution's last history event.
 * execution_count instances.current_execution_id: how many executions the instance has
 *                had (continue-as-new adds one; pruning old executions does not lower it).
 * parent_id      the event id of the parent's SubOrchestrationScheduled (from the child's
 *                OrchestrationStarted), or -1 for roots.
 * completed_at   completion time of the current execution, or DUROX_NO_TIME.
 * error          for Failed: the error message Duroxide recorded (executions.output).
 */
typedef struct durox_instance_summary {
	const char *instance_id;
	const char *orchestration_name;
	const char *version; /* NULL when the store holds none */
	int status;          /* durox_status */
	int64_t created_at;
	int64_t updated_at;
	uint64_t execution_count;
	const char *parent_instance; /* NULL for roots */
	int64_t parent_id;           /* -1 when none */
	/* beyond the proposal */
	int64_t completed_at;
	int failure_kind;          /* durox_failure_kind */
	const char *error;         /* NULL unless Failed */
	const char *custom_status; /* NULL when never set */
	int64_t custom_status_version;
} durox_instance_summary;

/* ---- filters ---------------------------------------------------------------------- */

/* Fields a filter can test. Names (durox_field_name) are the proposal's field names. */
typedef enum durox_field {
	DUROX_FIELD_STATUS,             /* "status" (string) */
	DUROX_FIELD_ORCHESTRATION_NAME, /* "orchestration_name" */
	DUROX_FIELD_VERSION,            /* "version" */
	DUROX_FIELD_INSTANCE_ID,        /* "instance_id" */
	DUROX_FIELD_PARENT_INSTANCE,    /* "parent_instance" (NULL for roots) */
	DUROX_FIELD_CREATED_AT,         /* "created_at" (time) */
	DUROX_FIELD_UPDATED_AT,         /* "updated_at" (time) */
	DUROX_FIELD_COMPLETED_AT,       /* "completed_at" (time, NULL while running) */
	DUROX_FIELD_CUSTOM_STATUS,      /* "custom_status" */
	DUROX_FIELD_EXECUTION_COUNT,    /* "execution_count" (integer) */
	DUROX_FIELD_FAILURE_KIND,       /* "failure_kind" (string, NULL unless Failed) */
	DUROX_FIELD_TEXT,               /* "text": substring of id, name, custom status, input or output */
	DUROX_FIELD__COUNT
} durox_field;

const char *durox_field_name(int field);
/* Field from its name or alias ("name" = orchestration_name, "id" = instance_id, "parent" = parent_instance); -1 if unknown. */
int durox_field_parse(const char *name);

typedef enum durox_op {
	DUROX_OP_EQ,
	DUROX_OP_NE,
	DUROX_OP_LT,
	DUROX_OP_LE,
	DUROX_OP_GT,
	DUROX_OP_GE,
	DUROX_OP_PREFIX,   /* string starts with (no wildcards; case-sensitive) */
	DUROX_OP_LIKE,     /* SQL LIKE pattern: % and _ wildcards, \ escapes the next character; ASCII
	                    * case-insensitive, as SQLite's LIKE (a provider must match this) */
	DUROX_OP_CONTAINS, /* substring, ASCII case-insensitive */
	DUROX_OP_IS_NULL,
	DUROX_OP_NOT_NULL
} durox_op;

/* A value in a filter: text, integer or time (ms), or null. */
typedef struct durox_value {
	enum { DUROX_VAL_NULL, DUROX_VAL_TEXT, DUROX_VAL_INT } type;
	const char *text; /* for TEXT (copied by the filter) */
	int64_t i;        /* for INT */
} durox_value;

/* An instance filter: an expression tree of AND/OR/NOT over field tests. The proposal's
 * InstanceFilter, the Lua-table filter and the query language all become one of these. */
typedef struct durox_filter durox_filter;
typedef struct durox_expr durox_expr; /* a node owned by its filter */

/* Creates an empty filter (matches everything). Returns NULL when out of memory. */
durox_filter *durox_filter_new(void);
void durox_filter_free(durox_filter *f);

/* Node constructors. Nodes are owned by f; NULL is returned when out of memory or when an
 * argument is invalid (the reason is in durox_filter_error(f)). A NULL child makes the
 * constructor return NULL, so calls can be nested without checks. */
durox_expr *durox_expr_cmp(durox_filter *f, int field, int op, const durox_value *v);
durox_expr *durox_expr_in(durox_filter *f, int field, const durox_value *vals, size_t n);
durox_expr *durox_expr_between(durox_filter *f, int field, const durox_value *lo, const durox_value *hi);
durox_expr *durox_expr_and(durox_filter *f, durox_expr *a, durox_expr *b);
durox_expr *durox_expr_or(durox_filter *f, durox_expr *a, durox_expr *b);
durox_expr *durox_expr_not(durox_filter *f, durox_expr *a);
/* ANDs e into the filter's root. Returns DUROX_OK, or DUROX_EINVALID/DUROX_ENOMEM when e is NULL. */
int durox_filter_add(durox_filter *f, durox_expr *e);
/* Message of the first construction error ("" if none). */
const char *durox_filter_error(const durox_filter *f);
/* Canonical text of the filter (stable; used to bind page tokens to it). Owned by f. It is
 * written in the query language and parses back to the same tree (durox_filter_parse), as
 * long as it stays within the query length limit. */
const char *durox_filter_describe(durox_filter *f);

/* ---- the query language (docs/query-language.md) --------------------------------------- */

/*
 * Parses a query such as
 *     status IN ('Failed', 'Running') AND name = 'Order' AND created_at > now() - 1h
 * into a new filter: the same tree the node constructors above build, so a query string and
 * the equivalent Lua-table filter select the same instances and have the same canonical text.
 * Values become bound parameters of the store's query, never SQL text. Keywords and field
 * names are ASCII case-insensitive. Relative times (now() - 1h, '-30m') are resolved against
 * the current time and keep their text in the canonical description, so the same query
 * describes the same filter on every call (page tokens stay valid while 'now' moves on).
 *
 * On success *out is a new filter owned by the caller (free it with durox_filter_free). On
 * failure *out is NULL, the result is DUROX_EINVALID (malformed, or beyond a limit: 8192
 * bytes of text, 256 conditions, 500 values in one IN list, 16 levels of nesting where each
 * NOT and each AND/OR group inside another is a level, 64 nested parentheses) or
 * DUROX_ENOMEM, and when errbuf is not NULL a one-line message is written there (truncated to
 * errlen; 512 bytes always hold it): "query error at position N: <what was expected and what
 * was found>", N being the 1-based byte offset in text of the offending token (text+1 for
 * the end of the query). text NULL is DUROX_EINVALID.
 */
int durox_filter_parse(const char *text, durox_filter **out, char *errbuf, size_t errlen);

/* Parses text as durox_filter_parse does and ANDs it into f's root (after what f holds).
 * Returns DUROX_OK, DUROX_EINVALID or DUROX_ENOMEM with the message in errbuf; on failure f
 * matches what it matched before and durox_filter_error(f) is unchanged. */
int durox_filter_add_query(durox_filter *f, const char *text, char *errbuf, size_t errlen);

/* A predicate applied after the part of the filter the store evaluates: return 1 to keep the
 * instance, 0 to drop it, or a negative DUROX_E* code to stop the operation with that code
 * (the message should then be set with durox_set_error on the handle passed to the call). */
typedef int (*durox_predicate_fn)(void *ud, const durox_instance_summary *s);

/* Sets the handle's error message (for callbacks that abort). */
void durox_set_error(durox *dx, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* ---- listing ---------------------------------------------------------------------- */

typedef enum durox_order_by {
	DUROX_ORDER_CREATED_AT = 0, /* "CreatedAt" (default direction: newest first) */
	DUROX_ORDER_UPDATED_AT,     /* "UpdatedAt" (default: newest first) */
	DUROX_ORDER_INSTANCE_ID,    /* "InstanceId" (default: ascending) */
	DUROX_ORDER_ORCHESTRATION_NAME /* "OrchestrationName" (default: ascending) */
} durox_order_by;

const char *durox_order_name(int order);
int durox_order_parse(const char *name); /* -1 if unknown */

typedef enum durox_direction { DUROX_DIR_DEFAULT = 0, DUROX_DIR_ASC, DUROX_DIR_DESC } durox_direction;

/* A list of instance summaries, with paging information when it is a page. */
typedef struct durox_instance_list {
	size_t count;
	durox_instance_summary *items;
	const char *next_page_token; /* NULL on the last page */
	int64_t total_count;         /* -1 unless requested */
} durox_instance_list;

void durox_instance_list_free(durox_instance_list *l);

/* ListInstancesRequest. Ties in the order key are broken by instance_id in the same direction. */
typedef struct durox_list_request {
	const durox_filter *filter; /* NULL: all instances */
	durox_predicate_fn predicate;
	void *predicate_ud;
	uint32_t page_size;     /* 0: 100; capped at max_list_instances */
	const char *page_token; /* NULL: first page; else a token from a previous page of the same filter and order */
	int order_by;           /* durox_order_by */
	int direction;          /* durox_direction */
	int want_total;         /* nonzero: compute total_count (all matches, predicate included) */
} durox_list_request;

/*
 * list_instances_paginated: one page in keyset order. Pages stay consistent under
 * concurrent inserts (an instance created later appears at most once, in its place).
 * A page is filled to page_size even when a predicate drops instances, unless the
 * matches are exhausted. Errors: DUROX_EINVALID for a malformed token or a token issued
 * for another filter or order; DUROX_EABORT or the predicate's code when it stops.
 */
int durox_list_instances_paginated(durox *dx, const durox_list_request *req, durox_instance_list **out);

/*
 * list_instances: every match, newest first. DUROX_ELIMIT (and nothing returned) when more
 * than max_list_instances match: use paging or the iterator for more.
 */
int durox_list_instances(durox *dx, const durox_filter *filter, durox_predicate_fn pred, void *ud,
                         durox_instance_list **out);

/* search_instances: instances whose id, orchestration name, custom status, input (of the
 * current execution) or output contains text (ASCII case-insensitive), combined with an
 * optional filter, newest first, at most limit (0: max_list_instances) results. */
typedef struct durox_search_request {
	const char *text;
	const durox_filter *filter;
	durox_predicate_fn predicate;
	void *predicate_ud;
	uint32_t limit;
} durox_search_request;

int durox_search_instances(durox *dx, const durox_search_request *req, durox_instance_list **out);

/* Streaming iterator over any number of matches in constant memory: it reads keyset batches
 * and holds no transaction between them. Batches are page_size rows, or by default 256 for
 * InstanceId order (served by the primary key) and 2048 for the other orders (which sort
 * the matches for every batch: prefer InstanceId to stream a large store). */
typedef struct durox_instance_iter durox_instance_iter;

/* Creates an iterator (the request's page_size is the batch size, 0 for the default; its
 * page_token and want_total are ignored). The request's filter must outlive the iterator. */
int durox_instance_iter_new(durox *dx, const durox_list_request *req, durox_instance_iter **out);
/* Sets *s to the next summary (valid until the next call or free) and returns 1, returns 0 at
 * the end, or a negative code on error. */
int durox_instance_iter_next(durox_instance_iter *it, const durox_instance_summary **s);
void durox_instance_iter_free(durox_instance_iter *it);

/* ---- single instance ------------------------------------------------------------- */

/* Client status (Duroxide's get_orchestration_status), derived like Duroxide derives it:
 * from the history of the latest execution (a terminal event wins, else Running if it has
 * started, else NotFound), plus custom status. */
typedef struct durox_orchestration_status {
	int status;          /* NOT_FOUND, RUNNING, COMPLETED or FAILED */
	const char *output;  /* Completed: the output */
	const char *error;   /* Failed: the error message (ErrorDetails display form) */
	int failure_kind;    /* Failed: durox_failure_kind */
	const char *details; /* Failed: the ErrorDetails JSON as recorded */
	const char *custom_status;
	int64_t custom_status_version;
} durox_orchestration_status;

void durox_orchestration_status_free(durox_orchestration_status *s);
/* Never DUROX_ENOTFOUND: an unknown instance has status NOT_FOUND. */
int durox_get_orchestration_status(durox *dx, const char *instance_id, durox_orchestration_status **out);

/* OrchestrationDescriptor, from the latest OrchestrationStarted event. */
typedef struct durox_descriptor {
	const char *name;
	const char *version;
	const char *parent_instance; /* NULL for roots */
	int64_t parent_id;           /* -1 for roots */
} durox_descriptor;

void durox_descriptor_free(durox_descriptor *d);
/* DUROX_ENOTFOUND when the instance has no history. */
int durox_get_orchestration_descriptor(durox *dx, const char *instance_id, durox_descriptor **out);

/* Execution ids stored for an instance, ascending. */
typedef struct durox_id_list {
	size_t count;
	uint64_t *ids;
} durox_id_list;

void durox_id_list_free(durox_id_list *l);
/* DUROX_ENOTFOUND when the instance does not exist. */
int durox_list_executions(durox *dx, const char *instance_id, durox_id_list **out);

/* Status of many instances in one round trip: items are in the order of ids (duplicates
 * kept); unknown ids have status NOT_FOUND. */
typedef struct durox_status_item {
	const char *instance_id;
	int status;
	int failure_kind;
} durox_status_item;

typedef struct durox_status_list {
	size_t count;
	durox_status_item *items;
} durox_status_list;

void durox_status_list_free(durox_status_list *l);
int durox_get_instances_status(durox *dx, const char *const *ids, size_t n, durox_status_list **out);

/* ---- history ---------------------------------------------------------------------- */

/* One history event. data is the event's JSON exactly as stored (include_payloads) or with
 * the payload members (input, output, result, data, details, value, status) removed. */
typedef struct durox_event {
	uint64_t execution_id;
	uint64_t event_id;
	int64_t source_event_id; /* -1 when none */
	int64_t timestamp_ms;    /* the event's own timestamp_ms; else its stored created_at */
	const char *event_type;  /* the JSON "type" (unknown future types are passed through) */
	const char *data;
	size_t data_len;
} durox_event;

typedef struct durox_history {
	uint64_t execution_id; /* the execution that was read */
	size_t count;
	durox_event *events;
	const char *next_page_token; /* NULL on the last page */
} durox_history;

void durox_history_free(durox_history *h);

/* HistoryRequest for get_execution_history_filtered. */
typedef struct durox_history_request {
	const char *instance_id;
	uint64_t execution_id;          /* 0: the current execution */
	const char *const *event_types; /* NULL/0: all types */
	size_t n_event_types;
	uint64_t from_event_id; /* inclusive; 0: from the first */
	uint64_t to_event_id;   /* inclusive; 0: to the last */
	int64_t from_time;      /* inclusive, on timestamp_ms; DUROX_NO_TIME: unbounded */
	int64_t to_time;        /* inclusive; DUROX_NO_TIME: unbounded */
	uint32_t page_size;     /* 0: no paging (all events) */
	const char *page_token;
	int include_payloads;
} durox_history_request;

/* Initialises a request with defaults for instance_id. */
void durox_history_request_init(durox_history_request *r, const char *instance_id);
/* DUROX_ENOTFOUND for an unknown instance or execution; DUROX_EINVALID for a bad token. */
int durox_get_execution_history_filtered(durox *dx, const durox_history_request *req, durox_history **out);
/* Whole history of one execution with payloads (0: current). */
int durox_read_execution_history(durox *dx, const char *instance_id, uint64_t execution_id, durox_history **out);

/* ---- details and statistics ------------------------------------------------------ */

/* ExecutionSummary. started_at is the OrchestrationStarted event's timestamp (the stored
 * started_at has only seconds); completed_at is executions.completed_at or, when the store
 * has none, the terminal event's timestamp; event_count counts its history rows;
 * continue_as_new_reason is the input the execution handed to the next one (Duroxide
 * records no other reason), NULL unless ContinuedAsNew. */
typedef struct durox_execution_summary {
	uint64_t execution_id;
	int status;
	int64_t started_at;
	int64_t completed_at; /* DUROX_NO_TIME while running */
	uint64_t event_count;
	const char *continue_as_new_reason;
	const char *output; /* executions.output */
} durox_execution_summary;

typedef struct durox_pending_activity {
	uint64_t correlation_id; /* the ActivityScheduled event id */
	const char *name;
	const char *input;
	int64_t scheduled_at;
	const char *tag;        /* NULL when none */
	const char *session_id; /* NULL when none */
} durox_pending_activity;

typedef struct durox_pending_timer {
	uint64_t correlation_id; /* the TimerCreated event id */
	uint64_t delay_ms;       /* fire_at - scheduled_at */
	int64_t scheduled_at;
	int64_t fire_at;
} durox_pending_timer;

/* An open event subscription: positional (ExternalSubscribed) or queue (dequeue_event). */
typedef struct durox_pending_event {
	uint64_t correlation_id; /* the subscription's event id */
	const char *name;
	int64_t subscribed_at;
	int queue; /* nonzero for a persistent/queue subscription */
} durox_pending_event;

/* A sub-orchestration started by the execution and not finished (beyond the proposal). */
typedef struct durox_pending_child {
	uint64_t correlation_id; /* the SubOrchestrationScheduled event id */
	const char *name;
	const char *instance_id; /* full child id */
	int64_t scheduled_at;
} durox_pending_child;

typedef struct durox_execution_details {
	uint64_t execution_id;
	int status;
	size_t n_pending_activities;
	durox_pending_activity *pending_activities;
	size_t n_pending_timers;
	durox_pending_timer *pending_timers;
	size_t n_pending_events;
	durox_pending_event *pending_events;
	size_t n_pending_children;
	durox_pending_child *pending_children;
	uint64_t completed_activities;
	uint64_t failed_activities;
	/* queue messages that arrived and were not yet consumed by a dequeue (per FIFO matching) */
	uint64_t buffered_queue_messages;
} durox_execution_details;

/* InstanceStatistics over every stored execution of the instance. Activities exclude
 * Duroxide's system calls (names starting "__duroxide_syscall:"). A turn is a run of history
 * events that starts with the events that woke the orchestration (start, completions,
 * timer, external events, cancel request) and continues with the decisions that follow;
 * consecutive wake-up events without a decision between them count as one turn. */
typedef struct durox_instance_statistics {
	uint64_t total_activities_scheduled;
	uint64_t total_activities_completed;
	uint64_t total_activities_failed;
	uint64_t total_timers_scheduled;
	uint64_t total_timers_fired;
	uint64_t total_events_subscribed; /* ExternalSubscribed + queue subscriptions */
	uint64_t total_events_received;   /* ExternalEvent + queue events */
	uint64_t total_execution_time_ms; /* sum over executions of (end - start); end of a running execution = its last event */
	double average_turn_duration_ms;  /* mean of (last - first event timestamp) per turn */
	/* beyond the proposal */
	uint64_t total_turns;
	uint64_t total_history_events;
	uint64_t total_sub_orchestrations;
} durox_instance_statistics;

typedef struct durox_instance_details {
	durox_instance_summary summary;
	size_t n_executions;
	durox_execution_summary *executions;
	durox_execution_details *current_execution; /* NULL when the current execution is not stored */
	durox_instance_statistics statistics;
	const char *output; /* current execution output (Completed) */
	const char *input;  /* current execution input */
} durox_instance_details;

void durox_instance_details_free(durox_instance_details *d);
/* DUROX_ENOTFOUND for an unknown instance. */
int durox_get_instance_details(durox *dx, const char *instance_id, durox_instance_details **out);
/* DUROX_ENOTFOUND for an unknown instance. */
int durox_get_instance_statistics(durox *dx, const char *instance_id, durox_instance_statistics *out);

#ifdef __cplusplus
}
#endif
#endif
