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

/* The version of this header, the one place it is written (CMake, the .pc file and the
 * rockspec read it from here): DUROX_VERSION_NUMBER is major * 1000000 + minor * 1000 +
 * patch, for compile-time comparisons; durox_version() tells the library's at run time. */
#define DUROX_VERSION_MAJOR 0
#define DUROX_VERSION_MINOR 1
#define DUROX_VERSION_PATCH 0
#define DUROX_VERSION "0.1.0"
#define DUROX_VERSION_NUMBER (DUROX_VERSION_MAJOR * 1000000 + DUROX_VERSION_MINOR * 1000 + DUROX_VERSION_PATCH)

/* The version of the library linked ("0.1.0"; a static string) and its number. */
const char *durox_version(void);
int durox_version_number(void);

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
#define DUROX_ECONFLICT                                                                                                \
	(-11)                /* the instance or job is not in a state that allows the operation                        \
	                        (already terminal, still running, already exists...) */
#define DUROX_ETIMEOUT (-12) /* a wait ended before its condition was met */
#define DUROX_EGONE (-13)    /* the store went away under the handle: its file was deleted or replaced; reopen it */

/* Short upper-case name of a result code ("NOTFOUND", "BUSY", ...); "OK" for 0, "UNKNOWN" otherwise. */
const char *durox_code_name(int rc);

#define DUROX_NO_TIME INT64_MIN

/* ---- statuses and kinds --------------------------------------------------------- */

/* Status of an instance = status of its current execution, with Duroxide's names. */
typedef enum durox_status {
	DUROX_STATUS_NOT_FOUND = 0,    /* "NotFound" */
	DUROX_STATUS_RUNNING,          /* "Running" */
	DUROX_STATUS_COMPLETED,        /* "Completed" */
	DUROX_STATUS_FAILED,           /* "Failed" (cancellation is a failure in Duroxide) */
	DUROX_STATUS_CONTINUED_AS_NEW, /* "ContinuedAsNew": between an execution's end and the next one's start */
	DUROX_STATUS_UNKNOWN,          /* "Unknown": the instance row exists but its current execution row does not */
	DUROX_STATUS_PENDING, /* "Pending": no instance row yet, but its StartOrchestration is queued (the runtime
	                         has not picked it up); shown by status, details, waits and stuck-work reports */
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
	DUROX_FAILURE_NONDETERMINISM, /* "nondeterminism": replay did not match history (Configuration/Nondeterminism)
	                               */
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
	int busy_timeout_ms; /* how long to wait for a locked store (SQLite's busy handler, PostgreSQL's
	                      * lock_timeout); 0 means 5000 */
	/* The largest share of wall time our write transactions may hold the store's write lock
	 * (0 means 0.1). Between two write transactions the handle waits long enough to keep
	 * to it, because the runtime's SQLite provider fails an orchestration when its ack keeps
	 * finding the lock taken (see docs/operations.md). 1 turns pacing off: only for a store
	 * no runtime is working on. */
	double max_write_share;
	/* The visibility index (docs/index.md): DUROX_INDEX_AUTO (0) keeps one beside the store, in
	 * a file of its own at index_path, or when that is NULL under the user's cache directory
	 * ($DUROX_INDEX_DIR, else $XDG_CACHE_HOME/duroxlua/index, else ~/.cache/duroxlua/index),
	 * built on the first read that needs it; DUROX_INDEX_OFF reads the store only. In-memory
	 * stores have none. */
	int index;
	const char *index_path; /* copied by durox_open */
	/* Access control (see "access control" below and docs/access-control.md). NULL: no access
	 * control, every operation is allowed as before. The handle copies the struct; from the
	 * call on it owns policy->ud and calls policy->release(ud) once when it is closed (also
	 * when durox_open fails). */
	const struct durox_access_policy *policy;
	const struct durox_access_context *context; /* who the caller is (copied); NULL: anonymous */
	/* The audit log: a policy always keeps one; audit nonzero keeps one without a policy too.
	 * A writable handle appends to the store's log (our own tables); a read-only handle to
	 * audit_file (JSON Lines, the same hash chain), and a read-only handle that must keep a
	 * log and has no audit_file fails to open. */
	int audit;
	const char *audit_file;
	const char *audit_key; /* HMAC-SHA256 key of the chain (NUL-terminated); NULL: plain SHA-256 */
	/* PostgreSQL only (ignored by SQLite). */
	const char *read_url;     /* a second postgres:// URL (a hot standby) that every read outside a write
	                             transaction goes to; NULL: reads go to the store URL's server */
	int connect_timeout_ms;   /* when the URL has no connect_timeout: 0 means 10000 (libpq counts whole
	                             seconds, at least 2) */
	int statement_timeout_ms; /* per statement, when the URL has no statement_timeout: 0 means 30000 */
} durox_open_options;

#define DUROX_INDEX_AUTO 0
#define DUROX_INDEX_OFF 1

/*
 * Opens a Duroxide store.
 * url: "sqlite:PATH", "sqlite://PATH" (optionally "?mode=ro"), or "sqlite::memory:" (a
 *      fresh in-memory store with the schema Duroxide creates for in-memory stores);
 *      or a PostgreSQL URI exactly as libpq accepts it, "postgres://" or "postgresql://"
 *      (user, password, host or a socket directory as "?host=/dir", port, dbname, sslmode
 *      and every other libpq parameter are passed through), plus parameters of duroxlua's
 *      own that are removed before libpq sees the URI:
 *        schema=NAME            the runtime's schema (default "public");
 *        state_schema=NAME      the schema of duroxlua's own tables (default "durox"; never
 *                               the runtime's), created on the first write that needs it;
 *        statement_timeout=MS   per-statement timeout (default 30000).
 *      Schema names must match ^[a-z_][a-z0-9_]*$ (Duroxide splices them unquoted into its
 *      procedures). Passwords come from the URI, PGPASSWORD or ~/.pgpass, as libpq finds
 *      them; no message or returned string ever shows one (they are masked as ***).
 *      Example: "postgres://ops@db1:5432/app?schema=dx&sslmode=require".
 * opts: may be NULL for defaults.
 * On success *out is a new handle (close with durox_close). On failure *out is NULL and,
 * if errbuf is not NULL, a one-line message is written there: a missing file, a file that
 * is not SQLite, a database or schema that is not a Duroxide store (DUROX_EUNSUPPORTED), a
 * database, schema or server that cannot be reached (DUROX_ENOTFOUND / DUROX_EIO, within
 * the connect timeout), refused credentials (DUROX_EDENIED), or a bad URL (DUROX_EINVALID).
 * The file, database or schema is never created.
 */
int durox_open(const char *url, const durox_open_options *opts, durox **out, char *errbuf, size_t errlen);

/* Closes the handle and its connection. Accepts NULL. */
void durox_close(durox *dx);

/* Asks the store call running on dx (from another thread, or a signal handler: it is
 * async-signal-safe) to stop: the call fails with DUROX_EABORT, "interrupted: ...". Does
 * nothing when no call runs. Accepts NULL. */
void durox_interrupt(durox *dx);
/* durox_interrupt on every handle open in this process (what a Ctrl-C handler calls; for a
 * process whose handles are used by one thread). Async-signal-safe. */
void durox_interrupt_all(void);

/* The message of the last failed call on dx (never NULL; "" after success). */
const char *durox_errmsg(const durox *dx);

/* What the handle is connected to. Strings are owned by dx. */
typedef struct durox_store_info {
	const char *provider;       /* "sqlite" or "postgres" */
	const char *location;       /* file path or ":memory:"; PostgreSQL: the URL, password masked */
	const char *schema_version; /* e.g. "20240112000000" (last applied migration), or "create_schema";
	                               PostgreSQL: the last row of _duroxide_migrations, e.g. "23" */
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

/* ---- the visibility index (docs/index.md) ------------------------------------------ */

/* What the handle's visibility index holds. Strings are owned by dx until its next index call. */
typedef struct durox_index_status {
	int enabled;                      /* the handle keeps an index (not DUROX_INDEX_OFF, not an in-memory store) */
	const char *state;                /* "off", "absent" (not built yet), "building" (a build is under way or was
	                                   * interrupted: resumable), "ready" (reads use it), "stale" (the store changed in
	                                   * a way the index cannot follow: reads use the store until it is rebuilt) */
	const char *path;                 /* the index file, NULL when off */
	const char *reason;               /* why it is not ready, "" when it is */
	uint64_t instances;               /* instance rows it holds */
	uint64_t build_done, build_total; /* instances done / to do in a build under way */
	int64_t size_bytes;               /* the file and its WAL on disk, -1 when absent */
	int64_t built_at;                 /* when the last build finished, DUROX_NO_TIME if never */
	int64_t synced_at;                /* when it last caught up with the store, DUROX_NO_TIME if never */
	uint64_t history_rows;            /* history rows it has read */
	uint64_t sync_scans;              /* PostgreSQL: syncs of this handle that found a transaction ended and
	                                   * looked for changed instances (0 on SQLite) */
	uint64_t digest_reads;            /* PostgreSQL: reads of this handle's metrics that streamed the whole
	                                   * history (the index did not hold the history digest; 0 on SQLite) */
} durox_index_status;

/* Fills *out; DUROX_EIO/DUROX_ECORRUPT only when the index file cannot be read at all. */
int durox_index_get_status(durox *dx, durox_index_status *out);

/* Progress of an index build: done of total instances. Return nonzero to stop the build at the
 * next chunk; it then stays resumable (the next build continues where it stopped). */
typedef int (*durox_index_progress_fn)(void *ud, uint64_t done, uint64_t total);

/* Builds the index (rebuild nonzero: from scratch; else it resumes a build under way, or only
 * catches up when the index is ready). progress may be NULL. DUROX_EABORT when progress
 * stopped it, DUROX_EUNSUPPORTED when the handle keeps no index. */
int durox_index_build(durox *dx, int rebuild, durox_index_progress_fn progress, void *ud);

/* Deletes the index file. Reads then go to the store until the next build (which the next
 * read that needs the index starts, unless the handle was opened with DUROX_INDEX_OFF). */
int durox_index_drop(durox *dx);

/* Brings the index up to date with the store now, as every read that uses it does first
 * (building it when it was never built). DUROX_EUNSUPPORTED when the handle keeps none. */
int durox_index_sync(durox *dx);

/* The progress callback of builds that a read starts (NULL clears it). */
void durox_index_set_progress(durox *dx, durox_index_progress_fn progress, void *ud);

/* What durox_index_verify found: every index row and digest compared with the store. */
typedef struct durox_index_verify_result {
	uint64_t instances_checked;
	uint64_t mismatched;         /* instance rows whose summary or contribution differs */
	uint64_t missing;            /* instances in the store but not in the index */
	uint64_t extra;              /* index rows of instances the store no longer has */
	uint64_t digests_mismatched; /* totals and groups that differ from the sum of the rows */
	char first[512];             /* the first difference, "" when none */
} durox_index_verify_result;

/* Syncs, then compares the index with the store (a full read of both). DUROX_EUNSUPPORTED
 * when the handle keeps no index or it is not ready. */
int durox_index_verify(durox *dx, durox_index_verify_result *out);

/* ---- configuration (the proposal's ManagementConfig) ---------------------------- */

typedef struct durox_config {
	int enable_metrics;               /* default 1 */
	int enable_streaming;             /* default 1 */
	uint32_t max_list_instances;      /* cap of durox_list_instances and of page_size; default 10000 */
	uint32_t max_bulk_operations;     /* ceiling of bulk max_instances; default 1000 */
	uint32_t metrics_retention_hours; /* default 24 */
	uint32_t cache_ttl_seconds;       /* metrics cache lifetime; default 5, 0 disables the cache */
	/* beyond the proposal: the thresholds of the health and stuck-work judgements (docs/metrics.md) */
	uint32_t stall_threshold_ms;      /* visible work untouched this long is stalled; default 60000 */
	uint32_t timer_overdue_ms;        /* a due timer unprocessed this long is overdue; default 60000 */
	uint32_t event_wait_threshold_ms; /* find_stuck_instances: event waits longer than this; default 86400000 */
	uint32_t max_attempts;            /* the runtime's poison limit (RuntimeOptions.max_attempts); default 10 */
	uint32_t near_poison_attempts;    /* attempt_count from which a queue item is near poison; default 5 */
	/* caps on what a write carries (DUROX_ELIMIT beyond them) */
	uint32_t max_payload_bytes; /* an input, event data or cancel reason; default 16777216 (16 MiB) */
	uint32_t max_id_bytes;      /* an instance id, orchestration, event or queue name, version; default 1024 */
	/* the Lua binding: how long one call of a predicate, authorize or progress function may run
	 * before it is stopped with an error; 0 (the default) sets no limit (trusted scripts) */
	uint32_t callback_budget_ms;
} durox_config;

/* The defaults of a new handle (what durox_get_config returns right after durox_open). */
#define DUROX_CONFIG_INIT                                                                                              \
	{                                                                                                              \
		.enable_metrics = 1, .enable_streaming = 1, .max_list_instances = 10000, .max_bulk_operations = 1000,  \
		.metrics_retention_hours = 24, .cache_ttl_seconds = 5, .stall_threshold_ms = 60000,                    \
		.timer_overdue_ms = 60000, .event_wait_threshold_ms = 86400000, .max_attempts = 10,                    \
		.near_poison_attempts = 5, .max_payload_bytes = 16777216, .max_id_bytes = 1024,                        \
		.callback_budget_ms = 0                                                                                \
	}

/* Copies the handle's configuration into *cfg. */
void durox_get_config(durox *dx, durox_config *cfg);
/* Replaces the configuration; DUROX_EINVALID when max_list_instances, max_bulk_operations,
 * max_attempts, near_poison_attempts, max_payload_bytes or max_id_bytes is 0, or
 * near_poison_attempts exceeds max_attempts. */
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
/* Field from its name or alias ("name" = orchestration_name, "id" = instance_id, "parent" = parent_instance); -1 if
 * unknown. */
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
	DUROX_ORDER_CREATED_AT = 0,    /* "CreatedAt" (default direction: newest first) */
	DUROX_ORDER_UPDATED_AT,        /* "UpdatedAt" (default: newest first) */
	DUROX_ORDER_INSTANCE_ID,       /* "InstanceId" (default: ascending) */
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
	uint64_t total_execution_time_ms; /* sum over executions of (end - start); end of a running execution = its last
	                                     event */
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

/* ---- metrics (the proposal's "Runtime Diagnostics & Metrics") ----------------------- */

/* Every figure below is derived from what the store holds; docs/metrics.md defines each one
 * precisely. Shared definitions:
 * - the duration of an instance: timestamp_ms of the terminal event (OrchestrationCompleted
 *   or OrchestrationFailed) of its current execution minus timestamp_ms of the
 *   OrchestrationStarted event of its first stored execution; defined only for instances
 *   whose current execution is Completed or Failed.
 * - "visible": a queue row's visible_at <= now. "Stalled": visible and not being processed for
 *   at least stall_threshold_ms (visible_at <= now - stall_threshold_ms: the age thresholds
 *   are inclusive). Orchestrator rows are "in progress" when their instance holds an
 *   unexpired lock (instance_locks.locked_until > now) whose token they carry (the row's own
 *   lock_token alone means nothing: SQLite leaves stale tokens behind).
 * Figures that are averages or rates are NaN when nothing qualifies (Lua: nil); optional ages
 * and times are -1 / DUROX_NO_TIME when there is nothing to measure.
 *
 * Metric calls fail with DUROX_EDENIED when the configuration has enable_metrics = 0. Their
 * results are cached per handle for cache_ttl_seconds (collected_at tells when a result was
 * computed); a request with fresh = 1 or an explicit now bypasses the cache. A recomputation
 * reads only the history rows added since the handle's previous pass, unless rows were
 * deleted meanwhile (then all of them): the result is always that of a full pass. */

typedef struct durox_metrics_request {
	int64_t now;        /* evaluate as of this time (ms); DUROX_NO_TIME: the current time */
	int fresh;          /* nonzero: recompute instead of using the cache */
	int merge_versions; /* get_orchestration_metrics: one row per name instead of per (name, version) */
} durox_metrics_request;

/* Initialises a request with the defaults (now = DUROX_NO_TIME). */
void durox_metrics_request_init(durox_metrics_request *r);

/* RuntimeMetrics. */
typedef struct durox_runtime_metrics {
	uint64_t uptime_seconds;            /* now - store_created_at (the store cannot tell a process's uptime) */
	uint64_t total_instances_started;   /* instances rows */
	uint64_t total_instances_completed; /* current execution Completed */
	uint64_t total_instances_failed;    /* current execution Failed (cancellations included) */
	uint64_t active_instances;          /* current execution Running */
	uint64_t total_activities_executed; /* ActivityCompleted + ActivityFailed history events */
	uint64_t total_timers_fired;        /* TimerFired history events */
	uint64_t total_events_raised;       /* ExternalEvent + ExternalEventPersistent history events */
	double average_orchestration_duration_ms; /* mean instance duration; NaN when none */
	int orchestrator_dispatcher_healthy;      /* no stalled orchestrator work, expired lock or blocking orphan */
	int worker_dispatcher_healthy;            /* no stalled worker item */
	int timer_dispatcher_healthy;             /* no overdue timer */
	/* beyond the proposal */
	int64_t collected_at;     /* when these figures were computed (ms) */
	int64_t store_created_at; /* first migration applied (_sqlx_migrations), else the oldest instance; DUROX_NO_TIME
	                             if none */
	int64_t last_activity_at; /* latest of: the most recently written history event, the newest instance lock */
	uint64_t total_executions;
	uint64_t total_history_events;
	uint64_t continued_as_new_instances;           /* current execution ContinuedAsNew (between two executions) */
	uint64_t unknown_instances;                    /* current execution row missing */
	uint64_t failed_by_kind[DUROX_FAILURE__COUNT]; /* OrchestrationFailed events by durox_failure_kind */
	uint64_t durations_counted;                    /* instances with a duration (the average's denominator) */
	/* the evidence behind the health flags */
	uint64_t stalled_orchestrator_items; /* visible, not in progress, not waiting on a lock, visible for >
	                                        stall_threshold_ms */
	uint64_t stalled_worker_items;       /* available to workers for > stall_threshold_ms */
	uint64_t overdue_timers;             /* due TimerFired rows not in progress for > timer_overdue_ms */
	uint64_t expired_instance_locks;     /* instance_locks rows expired for > stall_threshold_ms */
	uint64_t blocking_orphan_items;      /* visible rows for instances that do not exist (they block SQLite's
	                                        orchestrator queue) */
} durox_runtime_metrics;

/* get_runtime_metrics. req may be NULL (defaults). */
int durox_get_runtime_metrics(durox *dx, const durox_metrics_request *req, durox_runtime_metrics *out);

/* ProviderDiagnostics. Strings are owned by the handle and valid until it is closed. */
typedef struct durox_provider_diagnostics {
	const char *provider_type; /* "sqlite" */
	int connection_healthy;    /* a read of the schema succeeded just now */
	uint64_t total_instances_stored;
	uint64_t total_history_events;
	double average_read_latency_ms;  /* over this handle's statements that only read; NaN before the first */
	double average_write_latency_ms; /* over statements that write or control a write transaction; NaN before the
	                                    first */
	int64_t storage_size_bytes;      /* page_count * page_size + the WAL file's size; -1 unknown (in-memory) */
	/* beyond the proposal */
	int64_t collected_at;
	const char *location;
	const char *schema_version;
	const char *journal_mode;
	const char *health_error; /* why the connection is unhealthy, else "" */
	uint64_t total_executions_stored;
	uint64_t orchestrator_queue_rows;
	uint64_t worker_queue_rows;
	uint64_t read_calls, write_calls; /* statements measured */
	double max_read_latency_ms, max_write_latency_ms;
	int64_t page_size, page_count, freelist_count;
	int64_t wal_size_bytes; /* -1 when there is no WAL file */
} durox_provider_diagnostics;

int durox_get_provider_diagnostics(durox *dx, const durox_metrics_request *req, durox_provider_diagnostics *out);

/* The state of one queue (beyond the proposal's sizes). */
typedef struct durox_queue_detail {
	uint64_t available;         /* visible and free to fetch now */
	uint64_t in_progress;       /* held by an unexpired lock */
	uint64_t waiting_on_lock;   /* orchestrator: visible, arrived while its instance was locked */
	uint64_t delayed;           /* visible_at in the future (backoff), timers excluded */
	uint64_t stalled;           /* available for at least stall_threshold_ms */
	uint64_t expired_locks;     /* orchestrator: instance_locks rows expired; worker: rows whose lock expired */
	uint64_t near_poison;       /* attempt_count >= near_poison_attempts */
	uint64_t at_poison_limit;   /* attempt_count >= max_attempts: the next fetch poisons it */
	int64_t max_attempt_count;  /* -1 when the queue is empty */
	uint64_t stale_lock_tokens; /* orchestrator: rows carrying a lock_token of no live lock */
	uint64_t orphans;           /* orchestrator: rows for instances that do not exist and have no start queued */
	uint64_t orphans_blocking;  /* the visible ones (SQLite: they stop the whole orchestrator queue) */
	uint64_t unlocked_rows;     /* rows with lock_token IS NULL (what Duroxide's SQLite getQueueDepths counts) */
} durox_queue_detail;

/* QueueMetrics. */
typedef struct durox_queue_metrics {
	uint64_t orchestrator_queue_size;              /* orchestrator_queue rows except pending timers */
	uint64_t worker_queue_size;                    /* worker_queue rows */
	uint64_t timer_queue_size;                     /* TimerFired rows not yet visible (pending timers) */
	int64_t orchestrator_queue_oldest_item_age_ms; /* now - min(visible_at) of visible rows; -1 when none */
	int64_t worker_queue_oldest_item_age_ms;       /* same over worker rows */
	int64_t timer_queue_oldest_item_age_ms;        /* now - created_at of the oldest pending timer; -1 when none */
	uint64_t total_items_processed;                /* orchestrator_items_processed + worker_items_processed */
	double average_processing_time_ms;             /* mean activity round trip; NaN when none */
	/* beyond the proposal */
	int64_t collected_at;
	durox_queue_detail orchestrator, worker;
	uint64_t overdue_timers;               /* due TimerFired rows not in progress for > timer_overdue_ms */
	int64_t next_timer_at;                 /* earliest pending timer's fire time; DUROX_NO_TIME when none */
	uint64_t orchestrator_items_processed; /* history events that record a consumed orchestrator message */
	uint64_t worker_items_processed;       /* ActivityCompleted + ActivityFailed events */
	uint64_t activity_round_trips;         /* the average's denominator */
	/* the thresholds used */
	uint32_t stall_threshold_ms, timer_overdue_ms, max_attempts, near_poison_attempts;
} durox_queue_metrics;

int durox_get_queue_metrics(durox *dx, const durox_metrics_request *req, durox_queue_metrics *out);

/* OrchestrationTypeMetrics, one per (orchestration name, version). */
typedef struct durox_orchestration_type_metrics {
	const char *orchestration_name;
	const char *version;        /* NULL when merged over versions or when the store holds none */
	uint64_t total_started;     /* instances rows */
	uint64_t total_completed;   /* current execution Completed */
	uint64_t total_failed;      /* current execution Failed */
	uint64_t active_count;      /* current execution Running */
	double average_duration_ms; /* mean instance duration; NaN when none */
	double success_rate;        /* completed / (completed + failed); NaN when both are 0 */
	/* beyond the proposal */
	double failure_rate;       /* failed / (completed + failed) */
	uint64_t continued_as_new; /* current execution ContinuedAsNew */
	uint64_t unknown;          /* current execution row missing */
	uint64_t durations_counted;
} durox_orchestration_type_metrics;

typedef struct durox_orchestration_metrics {
	size_t count;
	durox_orchestration_type_metrics *items; /* by name, then version */
	int64_t collected_at;
} durox_orchestration_metrics;

void durox_orchestration_metrics_free(durox_orchestration_metrics *m);
int durox_get_orchestration_metrics(durox *dx, const durox_metrics_request *req, durox_orchestration_metrics **out);

/* ---- analytics ------------------------------------------------------------------ */

/* GroupByField. CreatedDate buckets by UTC day, CreatedHour by UTC hour. */
typedef enum durox_group_field {
	DUROX_GROUP_ORCHESTRATION_NAME, /* "OrchestrationName" */
	DUROX_GROUP_STATUS,             /* "Status" */
	DUROX_GROUP_CREATED_DATE,       /* "CreatedDate" (day) */
	DUROX_GROUP_CREATED_HOUR,       /* "CreatedHour" */
	DUROX_GROUP_PARENT_INSTANCE,    /* "ParentInstance" */
	DUROX_GROUP_VERSION,            /* "Version" */
	DUROX_GROUP__COUNT
} durox_group_field;

const char *durox_group_field_name(int g);
int durox_group_field_parse(const char *name); /* -1 if unknown; also "CreatedDay" */

/* AggregateFunction, as bits. */
typedef enum durox_aggregate {
	DUROX_AGG_COUNT = 1 << 0,            /* "Count" */
	DUROX_AGG_AVERAGE_DURATION = 1 << 1, /* "AverageDuration" */
	DUROX_AGG_SUCCESS_RATE = 1 << 2,     /* "SuccessRate" */
	DUROX_AGG_FAILURE_RATE = 1 << 3,     /* "FailureRate" */
	DUROX_AGG_P50_DURATION = 1 << 4,     /* "P50Duration" (nearest rank) */
	DUROX_AGG_P95_DURATION = 1 << 5,     /* "P95Duration" */
	DUROX_AGG_P99_DURATION = 1 << 6,     /* "P99Duration" */
	DUROX_AGG_ALL = (1 << 7) - 1
} durox_aggregate;

const char *durox_aggregate_name(unsigned bit);
int durox_aggregate_parse(const char *name); /* the bit, or -1 */

/* InstanceQuery: the same filter as listing, groups, aggregates, limit. */
typedef struct durox_instance_query {
	const durox_filter *filter; /* NULL: every instance */
	int group_by[DUROX_GROUP__COUNT];
	size_t n_group_by;   /* 0: one group of every match */
	unsigned aggregates; /* durox_aggregate bits; 0: all */
	uint32_t limit;      /* groups returned; 0: 1000; capped at max_list_instances */
} durox_instance_query;

/* One group. A key is meaningful only when the query groups by it (a grouped key that is NULL
 * is a group of its own: roots for ParentInstance, no version for Version). Aggregates not
 * requested are NaN. */
typedef struct durox_query_group {
	const char *orchestration_name;
	const char *status;
	int64_t created_date; /* start of the UTC day or hour (ms) */
	const char *parent_instance;
	const char *version;
	uint64_t count;
	double average_duration_ms;
	double success_rate; /* completed / (completed + failed) in the group */
	double failure_rate; /* failed / (completed + failed) */
	double p50_duration_ms, p95_duration_ms, p99_duration_ms;
	/* the counts behind the rates */
	uint64_t completed, failed, durations_counted;
} durox_query_group;

/* QueryResponse. Groups by count descending, then by their keys ascending. */
typedef struct durox_query_response {
	size_t count;
	durox_query_group *groups;
	uint64_t total_groups;    /* groups before the limit */
	uint64_t total_instances; /* instances matching the filter */
	int group_by[DUROX_GROUP__COUNT];
	size_t n_group_by;
	unsigned aggregates;
} durox_query_response;

void durox_query_response_free(durox_query_response *r);
/* query_instances. DUROX_EINVALID for a repeated or unknown group field or unknown aggregate bits. */
int durox_query_instances(durox *dx, const durox_instance_query *q, durox_query_response **out);

/* Series of get_time_series_metrics, as bits. */
typedef enum durox_series {
	DUROX_SERIES_INSTANCES_STARTED = 1 << 0,   /* "instances_started": instances.created_at in the bucket */
	DUROX_SERIES_INSTANCES_COMPLETED = 1 << 1, /* "instances_completed": OrchestrationCompleted events */
	DUROX_SERIES_INSTANCES_FAILED =
	        1 << 2, /* "instances_failed": OrchestrationFailed events, cancellations excluded */
	DUROX_SERIES_INSTANCES_CANCELLED =
	        1 << 3, /* "instances_cancelled": OrchestrationFailed events of kind cancelled */
	DUROX_SERIES_ACTIVITIES_COMPLETED = 1 << 4, /* "activities_completed": ActivityCompleted events */
	DUROX_SERIES_ACTIVITIES_FAILED = 1 << 5,    /* "activities_failed": ActivityFailed events */
	DUROX_SERIES_AVERAGE_DURATION = 1 << 6,     /* "average_duration_ms": of instances that ended in the bucket */
	DUROX_SERIES_ALL = (1 << 7) - 1
} durox_series;

const char *durox_series_name(unsigned bit);
int durox_series_parse(const char *name); /* the bit, or -1 */

/* TimeSeriesRequest. Buckets are [start, start + bucket_ms), aligned to multiples of bucket_ms
 * since the epoch; the window is [from, to). Events are placed by their timestamp_ms. */
typedef struct durox_time_series_request {
	int64_t from;                   /* DUROX_NO_TIME: to - metrics_retention_hours */
	int64_t to;                     /* DUROX_NO_TIME: now */
	int64_t bucket_ms;              /* 0: chosen so that the window has at most 60 buckets (a round unit) */
	unsigned series;                /* durox_series bits; 0: all */
	const char *orchestration_name; /* NULL: every orchestration */
} durox_time_series_request;

/* The defaults (from and to are DUROX_NO_TIME, not 0): `durox_time_series_request r =
 * DUROX_TIME_SERIES_REQUEST_INIT;` then set what differs. */
#define DUROX_TIME_SERIES_REQUEST_INIT                                                                                 \
	{                                                                                                              \
		DUROX_NO_TIME, DUROX_NO_TIME, 0, 0, NULL                                                               \
	}

typedef struct durox_time_bucket {
	int64_t start;
	uint64_t instances_started, instances_completed, instances_failed, instances_cancelled;
	uint64_t activities_completed, activities_failed;
	double average_duration_ms; /* NaN when no instance ended in the bucket */
	uint64_t durations_counted;
} durox_time_bucket;

/* TimeSeriesResponse. Every bucket of the window is present (zeros included). */
typedef struct durox_time_series {
	int64_t from, to, bucket_ms;
	unsigned series;
	size_t count;
	durox_time_bucket *buckets;
	durox_time_bucket totals; /* over the whole window (start = from) */
} durox_time_series;

void durox_time_series_free(durox_time_series *t);
/* get_time_series_metrics. DUROX_EINVALID for from >= to or a bucket < 1000 ms; DUROX_ELIMIT for
 * more than 10000 buckets; DUROX_EDENIED when metrics are disabled. */
int durox_get_time_series_metrics(durox *dx, const durox_time_series_request *req, durox_time_series **out);

/* A node of a dependency graph. */
typedef struct durox_child_instance {
	const char *instance_id;
	const char *orchestration_name;
	int status;
	uint64_t child_count; /* its direct children (all of them, whatever the depth limit) */
	uint32_t depth;       /* 1 for direct children of the root instance */
	const char *parent_instance;
	size_t first_child, n_children; /* its listed children: nodes[first_child .. first_child + n_children) */
} durox_child_instance;

typedef struct durox_parent_instance {
	const char *instance_id;
	const char *orchestration_name;
	int status;
} durox_parent_instance;

/* DependencyGraph. */
typedef struct durox_dependency_graph {
	const char *root_instance; /* the instance asked about */
	const char *orchestration_name;
	int status;
	durox_parent_instance *parent; /* NULL for a root */
	const char *tree_root;         /* the topmost ancestor (root_instance itself for a root) */
	size_t n_children;             /* direct children = nodes[0 .. n_children) */
	durox_child_instance *children;
	size_t n_nodes; /* every listed descendant, by depth, then creation, then id */
	durox_child_instance *nodes;
	uint64_t total_descendants; /* every descendant, whatever the depth limit */
	uint32_t max_depth;         /* the depth limit applied (0: none) */
	int truncated;              /* descendants exist beyond the limit or the node cap */
} durox_dependency_graph;

void durox_dependency_graph_free(durox_dependency_graph *g);
/* get_instance_dependencies: descendants down to max_depth levels (0: no limit), at most
 * max_list_instances nodes. DUROX_ENOTFOUND for an unknown instance. */
int durox_get_instance_dependencies(durox *dx, const char *instance_id, uint32_t max_depth,
                                    durox_dependency_graph **out);

/* ---- stuck and blocked work (beyond the proposal) ------------------------------------ */

typedef enum durox_stuck_reason {
	DUROX_STUCK_POISON_RISK,       /* "poison_risk": a queue item's attempt_count >= near_poison_attempts */
	DUROX_STUCK_EXPIRED_LOCK,      /* "expired_lock": its instance lock or an activity lock expired */
	DUROX_STUCK_OVERDUE_TIMER,     /* "overdue_timer": a due timer unprocessed for > timer_overdue_ms */
	DUROX_STUCK_UNPICKED_ACTIVITY, /* "unpicked_activity": an activity available to workers for > stall */
	DUROX_STUCK_STALLED_MESSAGES,  /* "stalled_messages": orchestrator messages available for > stall */
	DUROX_STUCK_WAITING_EVENT,     /* "waiting_on_event": an open event subscription older than event_wait */
	DUROX_STUCK_ORPHAN_MESSAGES,   /* "orphan_messages": messages for an instance that does not exist */
	DUROX_STUCK__COUNT
} durox_stuck_reason;

const char *durox_stuck_reason_name(int reason);

typedef struct durox_stuck_evidence {
	int reason;
	const char *message;   /* one line */
	int64_t since;         /* when the condition began (ms) */
	const char *queue;     /* "orchestrator", "worker" or NULL */
	int64_t queue_id;      /* the queue row, -1 when none */
	int64_t attempt_count; /* -1 when not relevant */
	const char *detail;    /* the work item kind, activity or event name; may be NULL */
	int blocks_queue;      /* orphan messages that stop SQLite's orchestrator dispatcher */
} durox_stuck_evidence;

typedef struct durox_stuck_instance {
	const char *instance_id;
	const char *
	        orchestration_name; /* for an instance not created yet, the name its queued start asks for; else NULL */
	int status;                 /* RUNNING (or CONTINUED_AS_NEW), or NOT_FOUND */
	int64_t since;              /* the earliest since of its evidence */
	size_t n_reasons;
	durox_stuck_evidence *reasons;
} durox_stuck_instance;

typedef struct durox_stuck_list {
	size_t count;
	durox_stuck_instance *items; /* oldest since first */
	int truncated;               /* more than limit instances qualified */
	int64_t now;
} durox_stuck_list;

/* Thresholds: a negative value (or 0 for the attempt counts) takes the handle's configuration. */
typedef struct durox_stuck_request {
	int64_t now; /* DUROX_NO_TIME: the current time */
	int64_t stall_threshold_ms;
	int64_t timer_overdue_ms;
	int64_t event_wait_threshold_ms;
	uint32_t near_poison_attempts;
	uint32_t max_attempts;
	uint32_t limit; /* 0: max_list_instances */
} durox_stuck_request;

void durox_stuck_request_init(durox_stuck_request *r);
void durox_stuck_list_free(durox_stuck_list *l);
/* find_stuck_instances: running instances (and instances that do not exist but have queued
 * messages) that make no progress, each with the evidence. */
int durox_find_stuck_instances(durox *dx, const durox_stuck_request *req, durox_stuck_list **out);
/* ---- writes: single-instance operations ---------------------------------------------
 *
 * Every write looks to the runtime exactly like the write of Duroxide's own client: one
 * row INSERTed into orchestrator_queue (instance_id, work_item, visible_at = now in ms)
 * with the work item in the compact serde JSON Duroxide writes, in a short BEGIN
 * IMMEDIATE transaction (waiting up to the handle's busy timeout, then DUROX_EBUSY). The
 * target is checked in the same transaction, so nothing is written for an instance that
 * cannot take it: a cancel or raise addressed to an unknown instance would, on SQLite,
 * block the runtime's whole orchestrator queue.
 *
 * An instance "exists" when it has an instances row, or when a StartOrchestration work
 * item for it is queued (the runtime creates the row on its first turn): such a pending
 * instance counts as running.
 * Common errors: DUROX_EDENIED on a read-only handle; DUROX_ENOTFOUND for an instance that
 * does not exist; DUROX_ECONFLICT when its state refuses the operation; DUROX_EINVALID for
 * an empty id or name, or text that is not valid UTF-8. Strings are NUL-terminated UTF-8.
 */

/*
 * start_orchestration: queues WorkItem::StartOrchestration{instance, orchestration = name,
 * input, version (NULL: null, i.e. the latest registered version), parent_instance null,
 * parent_id null, execution_id 1}. input is the raw input string (JSON text by
 * convention; NULL means "null"). Duroxide's client would also queue a start for an
 * instance that exists, which the runtime then ignores; we refuse it: DUROX_ECONFLICT when
 * the instance exists (any status) or its start is already queued.
 */
int durox_start_orchestration(durox *dx, const char *instance_id, const char *name, const char *input,
                              const char *version);

/*
 * raise_event: queues WorkItem::ExternalRaised{instance, name, data} (data NULL: "null").
 * Refused for an unknown instance (DUROX_ENOTFOUND) and for a terminal one (Completed or
 * Failed: DUROX_ECONFLICT; the runtime would drop the message). Like Duroxide's client it
 * does not check for a subscription: an event that arrives while no subscription of its
 * name is open is recorded in history but never delivered (raise_event_bulk classifies
 * such targets instead of writing to them).
 */
int durox_raise_event(durox *dx, const char *instance_id, const char *event_name, const char *data);

/* enqueue_event: queues WorkItem::QueueMessage{instance, name = queue, data} for
 * dequeue_event subscribers (messages wait in the instance's queue until dequeued). Same
 * refusals as durox_raise_event. */
int durox_enqueue_event(durox *dx, const char *instance_id, const char *queue, const char *data);

/*
 * cancel_instance: queues WorkItem::CancelInstance{instance, reason} (reason NULL: "", as
 * Duroxide's client writes for a missing reason). The runtime then fails the instance with
 * Application/Cancelled{reason} (status Failed, output "canceled: <reason>") and cancels
 * its running sub-orchestrations with reason "parent canceled". DUROX_ENOTFOUND for an
 * unknown instance, DUROX_ECONFLICT for a terminal one (Completed or Failed) or one whose
 * current execution row is missing (status Unknown).
 */
int durox_cancel_instance(durox *dx, const char *instance_id, const char *reason);

/*
 * wait_for_orchestration: polls until the instance is terminal (its current execution is
 * Completed or Failed; ContinuedAsNew is not terminal) and returns its client status
 * (as durox_get_orchestration_status) in *out. timeout_ms < 0 waits forever, 0 checks once;
 * poll_ms 0 means 200. DUROX_ENOTFOUND when the instance does not exist when the wait
 * starts; DUROX_ETIMEOUT (and *out NULL) when it is still not terminal at the deadline.
 */
int durox_wait_for_orchestration(durox *dx, const char *instance_id, int64_t timeout_ms, int64_t poll_ms,
                                 durox_orchestration_status **out);

/* ---- bulk operations and jobs ------------------------------------------------------
 *
 * A bulk write resolves its targets (ids, or the instances a filter and predicate match
 * when it starts), records them in a job journal in the store (our own tables, prefixed
 * durox_), then processes them in batches: each batch - the checks, the writes for every
 * target and the journal entries saying so - is ONE short BEGIN IMMEDIATE transaction.
 * A process killed at any point leaves every target either acted on and journaled, or
 * neither; durox_job_resume continues with the rest, so every target is acted on exactly
 * once. A target's state is checked again when its batch runs (it may have finished
 * since it was matched).
 */

/* What happened (or, in a dry run, would happen) to one target. */
typedef enum durox_outcome {
	DUROX_OUTCOME_PENDING = 0,     /* not processed yet (a stopped or interrupted job) */
	DUROX_OUTCOME_DONE,            /* acted on: cancelled, raised, purged, pruned, restarted */
	DUROX_OUTCOME_FAILED,          /* refused; code and message say why */
	DUROX_OUTCOME_NO_SUBSCRIPTION, /* raise: running, but no open subscription for the event */
	DUROX_OUTCOME_SKIPPED          /* purge or restart by filter: a sub-orchestration, acted on only through its
	                                  root; message says so. Reported in the response, not journaled. */
} durox_outcome;

/* "pending", "done", "failed", "no_subscription"; NULL when out of range. */
const char *durox_outcome_name(int outcome);

typedef struct durox_bulk_progress {
	int64_t job_id;    /* 0 in a dry run and while targets are being resolved */
	const char *kind;  /* "cancel", "raise", "enqueue", "purge", "prune", "restart"; "wait" */
	const char *phase; /* "resolving" (matching targets) or "running" */
	uint64_t total;    /* targets (while resolving: matched so far) */
	uint64_t done, failed, no_subscription;
	int64_t elapsed_ms; /* since this call started */
} durox_bulk_progress;

/* Progress callback, called after every batch (and during resolution and rate-limit
 * pauses at least every 250 ms). Return 0 to continue, 1 to stop the job (it ends in state
 * "stopped" and can be resumed), or a negative DUROX_E* code to abort the call with that
 * code (the job is left "interrupted", resumable). Never called inside a transaction. */
typedef int (*durox_progress_fn)(void *ud, const durox_bulk_progress *p);

/* Authorization callback, called once per target while targets are resolved (outside any
 * transaction) with the target's summary: return 1 to allow, 0 to deny (the target is
 * recorded as failed with DUROX_EDENIED and *reason, if set, as its message; *reason must
 * stay valid until the callback is called again), or a negative code to abort. */
typedef int (*durox_authorize_fn)(void *ud, const durox_instance_summary *s, const char **reason);

/* Targets and execution options shared by every bulk request. Exactly one of instances
 * (n_instances ids, duplicates removed, order kept) and filter (every instance matching
 * filter and predicate when the call starts, in instance_id order) must be given; an empty
 * filter (durox_filter_new()) targets every instance. */
typedef struct durox_bulk_options {
	const char *const *instances;
	size_t n_instances;
	const durox_filter *filter;
	durox_predicate_fn predicate;
	void *predicate_ud;
	durox_authorize_fn authorize; /* NULL: everything allowed */
	void *authorize_ud;
	uint32_t max_instances; /* safety limit: 0 means max_bulk_operations; more than that is DUROX_ELIMIT */
	int dry_run;            /* classify the targets without writing anything (allowed on read-only handles) */
	uint32_t batch_size;    /* targets per transaction; 0 means 200 */
	double rate;            /* operations (targets processed) per second; 0 means unlimited */
	durox_progress_fn progress;
	void *progress_ud;
} durox_bulk_options;

/* BulkCancelRequest: cancel_instance for every target (same refusals). */
typedef struct durox_bulk_cancel_request {
	durox_bulk_options opts;
	const char *reason; /* NULL: "" */
} durox_bulk_cancel_request;

/* BulkEventRequest: raise_event (or, with queue, enqueue_event) for every target.
 * Positional events (queue 0) are written only to targets with an OPEN subscription for
 * event_name in their current execution: more ExternalSubscribed events of that name, not
 * cancelled by ExternalSubscribedCancelled, than ExternalEvents of that name delivered to
 * them (an event recorded while no subscription was open was never delivered and does not
 * count) plus ExternalRaised work items of that name already queued for the instance (they
 * will take the open subscriptions first). The other running targets are classified
 * NO_SUBSCRIPTION and nothing is written for them, because Duroxide would record the event
 * and never deliver it. Queue messages (queue 1) are written to every running target: they
 * wait in the instance's queue until dequeued. */
typedef struct durox_bulk_event_request {
	durox_bulk_options opts;
	const char *event_name;
	const char *event_data; /* NULL: "null" */
	int queue;
} durox_bulk_event_request;

/* Purge: Duroxide's delete_instance for every target. A target must be a root instance
 * (a sub-orchestration is refused with DUROX_ECONFLICT: purge its root; with a filter,
 * sub-orchestrations are skipped while targets are resolved). Its whole tree (the root and
 * every descendant through instances.parent_instance_id) is deleted in one transaction
 * from history, executions, orchestrator_queue, worker_queue, instance_locks, kv_store,
 * kv_delta and instances (sessions are left alone, as Duroxide does). Without force the
 * target is refused (DUROX_ECONFLICT) when any instance of the tree is Running, and
 * (DUROX_EBUSY) when the runtime holds a live lock on one of them. */
typedef struct durox_purge_request {
	durox_bulk_options opts;
	int force;
} durox_purge_request;

/* Prune: Duroxide's prune_executions for every target: deletes the executions (and their
 * history) that are not the current one and not Running, optionally keeping the keep_last
 * newest execution ids (the current one always stays) and only those completed before
 * completed_before. */
typedef struct durox_prune_request {
	durox_bulk_options opts;
	int has_keep_last;
	uint32_t keep_last;
	int64_t completed_before; /* DUROX_NO_TIME: no bound */
} durox_prune_request;

/* The defaults (completed_before is DUROX_NO_TIME, not 0). */
#define DUROX_PRUNE_REQUEST_INIT                                                                                       \
	{                                                                                                              \
		.has_keep_last = 0, .completed_before = DUROX_NO_TIME                                                  \
	}

/* Restart: for every Failed root target (cancelled ones included), starts a new instance
 * with the name, version and input of the target's current execution (its
 * OrchestrationStarted event). The new id is "<base>~r<N>": base is the target's id
 * without a trailing "~r<digits>", N the smallest number from 1 whose id is free. With
 * latest_version the start carries version null (the latest registered version runs)
 * instead of the recorded version. Completed, running and sub-orchestration targets are
 * refused (DUROX_ECONFLICT); with a filter, sub-orchestrations are skipped. */
typedef struct durox_restart_request {
	durox_bulk_options opts;
	int latest_version;
} durox_restart_request;

typedef struct durox_bulk_item {
	const char *instance_id;
	int outcome;                 /* durox_outcome */
	int code;                    /* FAILED: the DUROX_E* code (NOTFOUND, CONFLICT, DENIED, BUSY...) */
	const char *message;         /* FAILED and NO_SUBSCRIPTION: why; else NULL */
	const char *new_instance_id; /* restart: the id of the new instance */
	/* purge and prune: what was deleted for this target */
	uint64_t instances_deleted, executions_deleted, events_deleted, queue_messages_deleted;
} durox_bulk_item;

/* The response of every bulk write. The proposal's lists are the items by outcome:
 * BulkCancelResponse.cancelled_instances = DONE, BulkEventResponse.delivered_instances = DONE,
 * no_subscription_instances = NO_SUBSCRIPTION, failed_instances = FAILED (id, message);
 * total_matched = count. */
typedef struct durox_bulk_response {
	int64_t job_id;    /* 0 for a dry run */
	const char *kind;  /* as in durox_bulk_progress */
	const char *state; /* the job's state: "completed", "stopped", "interrupted"; "dry_run" */
	int dry_run;
	uint64_t total_matched;
	size_t count;
	durox_bulk_item *items; /* every target, in processing order */
	uint64_t done, failed, no_subscription, pending, skipped;
	/* purge/prune totals over the items */
	uint64_t instances_deleted, executions_deleted, events_deleted, queue_messages_deleted;
	int64_t elapsed_ms; /* this call */
} durox_bulk_response;

void durox_bulk_response_free(durox_bulk_response *r);

/*
 * The bulk writes. On success *out holds the response (also when some targets failed, and
 * when the job was stopped through the progress callback or durox_job_stop: state then
 * says so and the unprocessed targets are PENDING). Errors before any target is processed:
 * DUROX_EINVALID (bad request), DUROX_ELIMIT (more targets than max_instances, or
 * max_instances above max_bulk_operations), DUROX_EDENIED (read-only handle, unless dry
 * run), the predicate's or callback's code. A store failure while processing (e.g.
 * DUROX_EBUSY after retries) or a negative progress return leaves the job "interrupted"
 * and returns that code; durox_job_resume continues it.
 */
int durox_cancel_instances(durox *dx, const durox_bulk_cancel_request *req, durox_bulk_response **out);
int durox_raise_event_bulk(durox *dx, const durox_bulk_event_request *req, durox_bulk_response **out);
int durox_purge_instances(durox *dx, const durox_purge_request *req, durox_bulk_response **out);
int durox_prune_executions(durox *dx, const durox_prune_request *req, durox_bulk_response **out);
int durox_restart_instances(durox *dx, const durox_restart_request *req, durox_bulk_response **out);

/* ---- bulk wait ---------------------------------------------------------------------- */

typedef enum durox_wait_mode {
	DUROX_WAIT_ALL = 0, /* until every target is terminal (or not found) */
	DUROX_WAIT_ANY,     /* until at least one target is terminal */
	DUROX_WAIT_FIRST    /* until at least `count` targets are terminal */
} durox_wait_mode;

/* BulkWaitRequest. Targets as in durox_bulk_options (only its target fields and
 * max_instances and progress are used). Every polling round reads the status of all
 * still-unfinished targets with ONE query. */
typedef struct durox_bulk_wait_request {
	durox_bulk_options opts;
	int64_t timeout_ms;       /* < 0: no timeout; 0: check once */
	int64_t poll_interval_ms; /* 0: 200 */
	int mode;                 /* durox_wait_mode */
	uint32_t count;           /* DUROX_WAIT_FIRST: how many */
} durox_bulk_wait_request;

/* The defaults: wait for all targets with no timeout (timeout_ms -1, not 0, which checks once). */
#define DUROX_BULK_WAIT_REQUEST_INIT                                                                                   \
	{                                                                                                              \
		.timeout_ms = -1, .mode = DUROX_WAIT_ALL                                                               \
	}

typedef struct durox_wait_item {
	const char *instance_id;
	int status;         /* last status seen: the current execution's (NOT_FOUND, PENDING for a queued start, ...) */
	int finished;       /* terminal (Completed/Failed) when the wait ended */
	const char *output; /* Completed: executions.output */
	const char *error;  /* Failed: the error Duroxide stored */
	int failure_kind;
	int64_t finished_after_ms; /* when it was first seen terminal, ms after the call started; -1 if not */
} durox_wait_item;

/* BulkWaitResponse: items in target order. satisfied: the mode's condition was met;
 * timed_out: the wait ended at the deadline without it. */
typedef struct durox_bulk_wait_response {
	size_t count;
	durox_wait_item *items;
	uint64_t total_matched, completed, failed, not_found, unfinished;
	int satisfied;
	int timed_out;
	int64_t elapsed_ms;
	uint32_t polls;
} durox_bulk_wait_response;

void durox_bulk_wait_response_free(durox_bulk_wait_response *r);
/* Unknown ids are finished at once with status NOT_FOUND (they never become terminal) and
 * do not count towards ANY/FIRST. A timeout is not an error: see timed_out. */
int durox_wait_for_instances(durox *dx, const durox_bulk_wait_request *req, durox_bulk_wait_response **out);

/* ---- the job journal ---------------------------------------------------------------- */

/* A job as journaled. state: "resolving" (targets being recorded; if its process died,
 * nothing was done and the job is "abandoned" on resume), "running", "stopped", "completed",
 * "interrupted", "abandoned". A "running" job whose process is gone (same host and its pid
 * is dead, or no heartbeat for 60 s) is reported as "interrupted". */
typedef struct durox_job {
	int64_t job_id;
	const char *kind;
	const char *state;
	const char *description; /* the targets: "ids (N)" or the filter's canonical text */
	const char *request;     /* the operation's parameters as JSON (reason, event, ...) */
	uint64_t total, done, failed, no_subscription, pending;
	double rate;
	uint32_t batch_size;
	const char *owner; /* "host:pid" of the process that last ran it */
	int active;        /* its process is alive and running it */
	int stop_requested;
	int64_t created_at, started_at, finished_at, heartbeat_at; /* ms; DUROX_NO_TIME when not set */
	const char *last_error;
} durox_job;

typedef struct durox_job_list {
	size_t count;
	durox_job *items;
} durox_job_list;

void durox_job_list_free(durox_job_list *l);
/* Jobs newest first, at most limit (0: 100), optionally only of one state and/or kind
 * (NULL: any). An empty list when the store has no journal yet. */
int durox_job_list_jobs(durox *dx, const char *state, const char *kind, uint32_t limit, durox_job_list **out);
/* One job (a list of one); DUROX_ENOTFOUND when unknown. */
int durox_job_get(durox *dx, int64_t job_id, durox_job_list **out);
/* The job's targets and outcomes so far, as a response (no processing). */
int durox_job_report(durox *dx, int64_t job_id, durox_bulk_response **out);

/* Continues a job that is interrupted, stopped or whose process died: the targets not yet
 * processed are processed as in the original call (progress, rate and batch_size from
 * opts when nonzero, else as journaled; opts may be NULL). A completed job is returned
 * as is. DUROX_ECONFLICT when another live process runs it, or when it was abandoned
 * while resolving (nothing was done: start the operation again). */
int durox_job_resume(durox *dx, int64_t job_id, const durox_bulk_options *opts, durox_bulk_response **out);

/* Asks a job to stop: a job run by a live process stops after its current batch; any other
 * unfinished job is marked "stopped" at once. Sets *state (may be NULL) to the resulting
 * state name (a static string). DUROX_ECONFLICT when the job already ended. */
int durox_job_stop(durox *dx, int64_t job_id, const char **state);

/* ---- access control (docs/access-control.md) ----------------------------------------
 *
 * A handle opened with a policy passes every operation through ONE enforcement point in
 * the engine, which asks the policy's hooks (the proposal's ManagementAccessControl) about
 * the caller (the AccessContext given at open):
 * - can_list_instances decides what the caller may see at all: everything, nothing, or the
 *   instances a filter matches. The filter is ANDed into the store query of every listing,
 *   count, page, search, group-by, time series, metrics-per-type, dependency graph, stuck
 *   report and bulk target resolution; can_view_instance is then asked per instance on top.
 *   An instance either of them hides is indistinguishable from a missing one for the caller
 *   (DUROX_ENOTFOUND from every view and write, absent from every count).
 * - the other hooks decide one operation class on an instance the caller can see (or, for
 *   metrics, jobs and the audit log, as a whole): a refusal is DUROX_EDENIED, and a bulk
 *   operation classifies such a target as failed with code DUROX_EDENIED and message
 *   "denied".
 * Fail closed: a hook left NULL (and not marked in always_allow), a hook that fails
 * (negative answer) or gives any answer but ALLOW (or FILTER where allowed) denies.
 * Denials, every write attempt, every bulk job and its outcome and the policy load are
 * recorded in the audit log; an operation whose record cannot be written is refused.
 * The policy and context are fixed for the handle's life.
 */

/* AccessContext: who is asking. Strings are copied by durox_open. */
typedef struct durox_access_context {
	const char *user_id; /* NULL: anonymous */
	const char *const *roles;
	size_t n_roles;
	const char *source_ip; /* NULL: unknown */
	const char *reason;    /* the caller's justification (e.g. a break-glass ticket); NULL: none */
} durox_access_context;

/* The instance a hook is asked about. */
typedef struct durox_access_instance {
	const durox_instance_summary *summary;
	/* The root of the instance's tree (the instance itself when it has no parent), read from
	 * the store on first use. NULL when the store failed (the hook should then deny). Valid
	 * until the hook returns; call only from within the hook. */
	const char *(*root)(const struct durox_access_instance *self);
	void *priv; /* the engine's */
} durox_access_instance;

/* The hooks, by number (bits of durox_access_policy.always_allow, audit records). */
typedef enum durox_access_hook {
	DUROX_HOOK_LIST_INSTANCES = 0,  /* "can_list_instances" */
	DUROX_HOOK_VIEW_INSTANCE,       /* "can_view_instance": summaries, status, listings per row */
	DUROX_HOOK_VIEW_HISTORY,        /* "can_view_history": history, details, statistics, descriptor */
	DUROX_HOOK_CANCEL_INSTANCE,     /* "can_cancel_instance" */
	DUROX_HOOK_RAISE_EVENT,         /* "can_raise_event": raise_event and enqueue_event */
	DUROX_HOOK_START_ORCHESTRATION, /* "can_start_orchestration" */
	DUROX_HOOK_PURGE_INSTANCE,      /* "can_purge_instance": purge and prune */
	DUROX_HOOK_RESTART_INSTANCE,    /* "can_restart_instance" */
	DUROX_HOOK_VIEW_METRICS,        /* "can_view_metrics" */
	DUROX_HOOK_MANAGE_JOBS,         /* "can_manage_jobs": the bulk-job journal */
	DUROX_HOOK_VIEW_AUDIT,          /* "can_view_audit": reading and verifying the audit log */
	DUROX_HOOK__COUNT
} durox_access_hook;

/* "can_list_instances", ...; NULL when out of range. durox_access_hook_parse: -1 if unknown. */
const char *durox_access_hook_name(int hook);
int durox_access_hook_parse(const char *name);

/* A hook's answer. */
#define DUROX_ACCESS_DENY 0
#define DUROX_ACCESS_ALLOW 1
#define DUROX_ACCESS_FILTER 2 /* can_list_instances only: *filter holds what the caller may see */

/*
 * A policy: hooks with the proposal's names. Every hook gets the policy's ud and the
 * context, may write a one-line reason for its answer into why (whylen bytes, "" on entry;
 * it goes to the audit log) and returns DUROX_ACCESS_ALLOW or DENY; a negative return is a
 * failure of the policy and denies. Hooks are called from the thread using the handle,
 * never inside a store transaction, and must not call the handle.
 */
typedef struct durox_access_policy {
	void *ud;
	/* ALLOW (everything), DENY (nothing) or FILTER with *filter set to a new filter (from
	 * durox_filter_new / durox_filter_parse) that the engine takes and frees. */
	int (*can_list_instances)(void *ud, const durox_access_context *ctx, durox_filter **filter, char *why,
	                          size_t whylen);
	int (*can_view_instance)(void *ud, const durox_access_context *ctx, const durox_access_instance *inst,
	                         char *why, size_t whylen);
	int (*can_view_history)(void *ud, const durox_access_context *ctx, const durox_access_instance *inst, char *why,
	                        size_t whylen);
	int (*can_cancel_instance)(void *ud, const durox_access_context *ctx, const durox_access_instance *inst,
	                           char *why, size_t whylen);
	int (*can_raise_event)(void *ud, const durox_access_context *ctx, const durox_access_instance *inst,
	                       const char *event_name, char *why, size_t whylen);
	int (*can_start_orchestration)(void *ud, const durox_access_context *ctx, const char *name,
	                               const char *instance_id, char *why, size_t whylen);
	int (*can_purge_instance)(void *ud, const durox_access_context *ctx, const durox_access_instance *inst,
	                          char *why, size_t whylen);
	int (*can_restart_instance)(void *ud, const durox_access_context *ctx, const durox_access_instance *inst,
	                            char *why, size_t whylen);
	int (*can_view_metrics)(void *ud, const durox_access_context *ctx, char *why, size_t whylen);
	int (*can_manage_jobs)(void *ud, const durox_access_context *ctx, char *why, size_t whylen);
	int (*can_view_audit)(void *ud, const durox_access_context *ctx, char *why, size_t whylen);
	/* Bits (1u << durox_access_hook) of hooks that are NULL and allow without being called
	 * (a constant answer: "can_view_instance = true"); a NULL hook without its bit denies. */
	unsigned always_allow;
	/* Bits of hooks the policy sets to a constant deny (only for the reason of a refusal:
	 * "can_x is false in the policy" instead of "can_x is not defined by the policy"). */
	unsigned always_deny;
	/* The largest bulk operation the caller may run (0: no cap): max_bulk_operations cannot be
	 * raised past it, and bulk max_instances is capped by it. */
	uint32_t max_bulk_operations;
	/* Identifies the policy in audit records and page tokens (e.g. "sha256:<hex of its text>");
	 * copied; NULL: "c-policy". */
	const char *id;
	/* Where it came from (a file name), for the policy-load audit record; copied; may be NULL. */
	const char *source;
	/* Called once with ud when the handle is closed (or durox_open fails); may be NULL. */
	void (*release)(void *ud);
} durox_access_policy;

/* What access control a handle runs under. Strings are owned by dx. */
typedef struct durox_access_info {
	int enabled;         /* a policy is in force */
	const char *policy;  /* its id, or NULL */
	const char *user_id; /* NULL: anonymous */
	size_t n_roles;
	const char *const *roles;
	const char *source_ip;
	const char *audit;            /* where audit records go: "store", "file" or "none" */
	const char *audit_file;       /* for "file" */
	int audit_keyed;              /* the chain is an HMAC with a key */
	uint32_t max_bulk_operations; /* the policy's cap, 0: none */
} durox_access_info;

void durox_get_access_info(durox *dx, durox_access_info *out);

/* ---- the audit log ------------------------------------------------------------------
 *
 * Append-only, hash-chained records: record N holds the hash of record N-1 (64 zeros for
 * the first), and its own hash is SHA-256 (or HMAC-SHA256 with the handle's audit_key) over
 * its canonical JSON text (docs/access-control.md gives the exact form). Kept in our own
 * table (SQLite: durox_audit_log) by writable handles, or in a JSON Lines file by read-only
 * ones. Editing, deleting or reordering records breaks the chain and verify says where.
 */

typedef struct durox_audit_record {
	uint64_t seq;
	int64_t time;               /* ms */
	const char *user_id;        /* NULL: anonymous */
	const char *roles;          /* JSON array of strings */
	const char *source_ip;      /* NULL: unknown */
	const char *context_reason; /* the context's reason, NULL: none */
	const char *operation;      /* "cancel_instance", "cancel_instances", "job_end", "policy_load", ... */
	const char *target;         /* an instance id, a job id, the canonical filter text, or NULL */
	const char *decision;       /* "allow" or "deny" */
	const char *reason;         /* why (the policy's reason, "hidden", ...), NULL: none */
	const char *policy;         /* the policy id, NULL without a policy */
	const char *params;         /* JSON object: a summary of the parameters */
	const char *result;         /* JSON object: the outcome (code, counts, job id) */
	const char *prev_hash;      /* hex */
	const char *hash;           /* hex */
} durox_audit_record;

typedef struct durox_audit_list {
	size_t count;
	durox_audit_record *items; /* ascending seq */
} durox_audit_list;

/* Which records to read; zero-initialised means the newest 100 of the handle's log. */
typedef struct durox_audit_query {
	int64_t since;         /* time >= since (ms); 0 or DUROX_NO_TIME: no bound */
	const char *user_id;   /* NULL: any */
	const char *operation; /* NULL: any */
	uint32_t limit;        /* the newest `limit` matching records; 0: 100 */
	const char *file;      /* NULL: the store's log; else a JSON Lines audit file */
} durox_audit_query;

void durox_audit_list_free(durox_audit_list *l);
/* Reads records (a store without a log yet has none). Under a policy it needs
 * can_view_audit. DUROX_EIO/DUROX_ECORRUPT for an unreadable file. */
int durox_get_audit_log(durox *dx, const durox_audit_query *q, durox_audit_list **out);

typedef struct durox_audit_verification {
	uint64_t records;   /* records checked */
	uint64_t head_seq;  /* the last good record */
	char head_hash[65]; /* its hash ("" when none) */
	uint64_t first_bad; /* 0 when intact, else the seq (or line) of the first broken record */
} durox_audit_verification;

/* Recomputes the chain of the store's log (file NULL) or of a JSON Lines audit file. Returns
 * DUROX_OK when every record is intact, DUROX_ECORRUPT with a message naming the first broken
 * record ("audit record 7: ..."), or another error when it cannot be read. A keyed chain needs
 * the handle's audit_key. Under a policy it needs can_view_audit. out may be NULL. */
int durox_verify_audit_log(durox *dx, const char *file, durox_audit_verification *out);
/* ---- the change feed ---------------------------------------------------------------- */

/* What a reset says (a change feed, a stream or a watch): the store changed under the
 * cursor, so whatever the consumer derived from what it read before may be wrong. */
typedef enum durox_reset {
	DUROX_RESET_NONE = 0,
	/* "lost": the last row read is gone or is another row (the newest rows were deleted and
	 * their rowids reused, VACUUM renumbered rows, the store file was replaced). Changes may
	 * have been missed; the feed continues from the present: re-list. */
	DUROX_RESET_LOST,
	/* "deleted": rows at or before the cursor were deleted (a purge or prune by any client);
	 * nothing after the cursor is missed, but what was derived from deleted rows is stale. */
	DUROX_RESET_DELETED
} durox_reset;

/* "lost", "deleted" ("" for NONE, NULL out of range). */
const char *durox_reset_name(int reset);

/* One history row the runtime committed. Strings point into the durox_changes. */
typedef struct durox_change {
	const char *instance_id;
	uint64_t execution_id;
	uint64_t event_id;
	const char *event_type; /* Duroxide's JSON "type" (e.g. "ActivityCompleted") */
	const char *data;       /* the event's JSON; NULL unless include_payloads */
	int64_t timestamp;      /* the event's timestamp_ms (the store time when the JSON is not read) */
	int64_t created_at;     /* the store's time of the row (whole seconds on SQLite) */
	const char *cursor;     /* resumes right after this change */
} durox_change;

typedef struct durox_changes {
	size_t count;
	durox_change *changes; /* in commit order (per execution always in event order) */
	const char *cursor;    /* after the last change; the request's position when there is none */
	int more;              /* the limit stopped the read: more changes are committed already */
	int idle;              /* nothing was committed since the previous call with this cursor */
	int reset;             /* durox_reset; a reset read delivers no changes */
	const char *reset_reason;
	int verified; /* this call counted history to look for deleted rows */
} durox_changes;

typedef struct durox_changes_request {
	const char *cursor; /* NULL: from the beginning of history (or the present with from_now) */
	int from_now;       /* with no cursor: start after the last row committed now */
	uint32_t limit;     /* most changes returned; 0 means 500 */
	int include_payloads;
	/* Deleted rows behind the cursor are found by counting history (a few ms per million
	 * rows): 0 checks on every call that reads, > 0 at most that often (ms), < 0 only when the
	 * cursor comes from another call of this handle's history (a restore) or this handle
	 * deleted rows. */
	int64_t verify_ms;
} durox_changes_request;

void durox_changes_free(durox_changes *c);

/*
 * The change feed: the history rows committed after req->cursor, at most req->limit, read in
 * one short read transaction (none is held after the call). The handle remembers the last
 * cursor it returned: called again with it while no other connection has committed anything,
 * the call reads nothing (changes->idle). A cursor is bound to this store (another store's
 * cursor is DUROX_EINVALID) and survives restarts of duroxlua and of the runtime. Requires
 * enable_streaming (DUROX_EDENIED otherwise). The SQLite feed is history rowid order, which
 * is the runtime's commit order.
 */
int durox_read_changes(durox *dx, const durox_changes_request *req, durox_changes **out);

/* ---- streams: stream_instance_events, watch_instances, stream_runtime_metrics ---------- */

/* The proposal's InstanceEventType. How history events map (docs/streams.md):
 *   Started            OrchestrationStarted (every execution, continue-as-new included)
 *   Completed          OrchestrationCompleted
 *   Failed             OrchestrationFailed, unless its details are Application/Cancelled
 *   Cancelled          OrchestrationFailed with Application/Cancelled details (what cancel_instance
 *                      leads to: Duroxide has no cancelled status)
 *   ContinuedAsNew     OrchestrationContinuedAsNew
 *   ActivityCompleted  ActivityCompleted of a user activity (not Duroxide's system calls)
 *   ActivityFailed     ActivityFailed of a user activity
 *   TimerFired         TimerFired
 *   EventReceived      ExternalEvent (raise_event) and ExternalEventPersistent (enqueue_event)
 * Every other history event (schedules, subscriptions, cancel requests, custom status, KV,
 * sub-orchestration results) is not an InstanceEvent. */
typedef enum durox_instance_event_type {
	DUROX_IEV_STARTED = 0,
	DUROX_IEV_COMPLETED,
	DUROX_IEV_FAILED,
	DUROX_IEV_CONTINUED_AS_NEW,
	DUROX_IEV_CANCELLED,
	DUROX_IEV_ACTIVITY_COMPLETED,
	DUROX_IEV_ACTIVITY_FAILED,
	DUROX_IEV_TIMER_FIRED,
	DUROX_IEV_EVENT_RECEIVED,
	DUROX_IEV__COUNT
} durox_instance_event_type;

/* "Started", "Completed", ... (NULL out of range). */
const char *durox_instance_event_type_name(int t);
/* The type from its name (case-insensitive), -1 if unknown. */
int durox_instance_event_type_parse(const char *name);

/* What a stream yields. */
typedef enum durox_stream_item {
	DUROX_ITEM_EVENT = 0, /* an InstanceEvent (or, from a watch, a status change) */
	DUROX_ITEM_RESET,     /* the store changed under the cursor (reset, reset_reason): re-list */
	DUROX_ITEM_HEARTBEAT  /* nothing to deliver for heartbeat_ms; cursor moved past what was read */
} durox_stream_item;

/* InstanceEvent. Strings point into the stream and stay valid until the next call on it. */
typedef struct durox_instance_event {
	int item;       /* durox_stream_item */
	int event_type; /* durox_instance_event_type (items of kind EVENT) */
	const char *instance_id;
	uint64_t execution_id;
	uint64_t event_id;
	int64_t timestamp;              /* the event's timestamp_ms */
	const char *orchestration_name; /* NULL when the instance is gone and the event does not say */
	const char *details; /* JSON object: output / error, failure_kind, details / reason / activity name, result /
	                        timer fire_at_ms / event name, data ... (docs/streams.md) */
	const char *key;     /* "<instance_id>/<execution_id>/<event_id>": stable, for idempotency */
	const char *cursor;  /* resumes right after this item */
	int reset;           /* durox_reset, for RESET items */
	const char *reset_reason;
	int64_t at; /* when the item was produced (ms) */
} durox_instance_event;

/* Sleeps ms between two polls; a nonzero return ends the stream (durox_*_next then returns
 * DUROX_EABORT). NULL: nanosleep. A Lua host uses it to stay interruptible. */
typedef int (*durox_wait_fn)(void *ud, int64_t ms);

typedef struct durox_event_stream_request {
	const durox_filter *filter;   /* NULL: every instance; evaluated on the instance as it is when the
	                                 event is read; an instance already purged then never matches */
	durox_predicate_fn predicate; /* applied after the filter, on the same summary */
	void *predicate_ud;
	unsigned event_types; /* bits (1u << durox_instance_event_type); 0: all */
	const char *cursor;   /* NULL: from the beginning of history, or the present with from_now */
	int from_now;
	int follow;                /* nonzero: wait for new events instead of ending at the present */
	uint32_t poll_interval_ms; /* follow: between two polls that found nothing; 0 means 200 */
	int64_t timeout_ms;        /* follow: end after this long (0: never) */
	uint32_t heartbeat_ms;     /* follow: a HEARTBEAT item after this long without an item (0: none) */
	uint32_t batch_size;       /* history rows read per poll; 0 means 500 */
	int no_payloads;           /* nonzero: details leave out inputs, outputs, results and event data */
	int64_t verify_ms;         /* how often to look for deleted rows (0 means 1000; < 0 never) */
	int no_wait;               /* follow: when nothing is there, next() returns 2 at once instead of waiting */
	durox_wait_fn wait;
	void *wait_ud;
} durox_event_stream_request;

typedef struct durox_event_stream durox_event_stream;

/*
 * stream_instance_events. Items come in commit order (each execution's in event order), no
 * gap and no duplicate while the stream runs. Each item's cursor resumes right after it, in
 * another process too; across a crash delivery is at least once, with the same key. No read
 * transaction is open while the caller holds an item: the store is the buffer. Errors at open:
 * DUROX_EINVALID (malformed cursor, or one of another store, filter or set of types),
 * DUROX_EDENIED (enable_streaming off), DUROX_EUNSUPPORTED (no change feed).
 */
int durox_event_stream_open(durox *dx, const durox_event_stream_request *req, durox_event_stream **out);
/* The next item: 1 and *ev set (valid until the next call), 0 when the stream ended (the
 * present reached without follow, or the timeout), 2 (follow with no_wait) when nothing is
 * there now, or a negative code (DUROX_EABORT when the wait function or the predicate
 * stopped it). */
int durox_event_stream_next(durox_event_stream *s, const durox_instance_event **ev);
/* A cursor for everything read so far (past the rows that matched nothing): the place to
 * resume when the consumer has handled every item it was given. Owned by s, valid until the
 * next call on it. */
const char *durox_event_stream_cursor(durox_event_stream *s);
/* How many items of the batch read last are not handed out yet: 0 means that the cursor
 * above covers every row read (a consumer saves it then). */
size_t durox_event_stream_pending(const durox_event_stream *s);
void durox_event_stream_free(durox_event_stream *s);

/* InstanceStatusChange (watch_instances). Strings point into the watch and stay valid until
 * the next call on it. */
typedef struct durox_status_change {
	int item; /* durox_stream_item: EVENT (a change), RESET, HEARTBEAT */
	const char *instance_id;
	int initial;    /* the instance's state when the watch began (not a transition) */
	int old_status; /* durox_status before (NOT_FOUND before the first execution started) */
	int new_status;
	int failure_kind; /* of a Failed new_status */
	uint64_t execution_id;
	int custom_status_changed;
	const char *custom_status;     /* now (NULL: none) */
	const char *old_custom_status; /* before (NULL: none) */
	const char *output;            /* Completed: the output; ContinuedAsNew: the next input */
	const char *error;             /* Failed: the error Duroxide recorded */
	int64_t at;                    /* the timestamp of the event that made the change (initial: now) */
	const char *key;               /* that event's key, NULL for initial and reset items */
	const char *cursor;            /* resumes right after this item */
	int reset;
	const char *reset_reason;
} durox_status_change;

typedef struct durox_watch_request {
	const char *const *instance_ids; /* 1 to 1000 ids (duplicates ignored) */
	size_t n;
	const char *cursor;        /* resume: the states are those the cursor carries */
	int64_t timeout_ms;        /* 0: until every watched instance is terminal */
	uint32_t poll_interval_ms; /* 0 means 200 */
	uint32_t heartbeat_ms;     /* 0: none */
	int64_t verify_ms;         /* 0 means 1000; < 0 never */
	durox_wait_fn wait;
	void *wait_ud;
} durox_watch_request;

typedef struct durox_watch durox_watch;

/*
 * watch_instances: the status transitions of the given instances, derived from the events
 * the runtime commits (so none is missed between two polls: NotFound -> Running ->
 * Completed, continue-as-new included), custom status changes, and, without a cursor, one
 * initial item per instance with its state when the watch began. It ends when every watched
 * instance is Completed or Failed (or at the timeout). The cursor binds to the set of ids.
 * After a reset (the store changed under the cursor) the watch reads the instances again and
 * reports what changed meanwhile (a purged instance becomes NotFound).
 */
int durox_watch_open(durox *dx, const durox_watch_request *req, durox_watch **out);
/* 1 and *c set, 0 at the end, or a negative code. */
int durox_watch_next(durox_watch *w, const durox_status_change **c);
/* Where to resume once every item handed out is handled (owned by w). */
const char *durox_watch_cursor(durox_watch *w);
size_t durox_watch_pending(const durox_watch *w);
void durox_watch_free(durox_watch *w);

/* stream_runtime_metrics. Each tick after the first applies the events committed since the
 * previous one to the figures (instances started/completed/failed/active, activities,
 * timers, events, executions, history rows, failures by kind, durations), judges the health
 * flags from the queues afresh, and recounts everything with get_runtime_metrics only now and
 * then: at the first tick, after a reset, every recount_ms, and on every tick whose recount
 * costs less than 2% of the interval. Between recounts the counters can be off by the events
 * committed while the last recount ran (docs/streams.md). */
typedef struct durox_metrics_stream_request {
	uint32_t interval_ms;  /* between ticks; 0 means 1000 */
	uint64_t count;        /* ticks, then the stream ends; 0: no end */
	uint32_t recount_ms;   /* a full recount at least this often; 0 means 60000 */
	int no_cheap_recounts; /* nonzero: recount only at the start, after resets and every recount_ms */
	durox_wait_fn wait;
	void *wait_ud;
} durox_metrics_stream_request;

typedef struct durox_metrics_stream durox_metrics_stream;

/* DUROX_EDENIED when enable_metrics or enable_streaming is off. */
int durox_metrics_stream_open(durox *dx, const durox_metrics_stream_request *req, durox_metrics_stream **out);
/* The next tick (waits for it): 1 with *out filled and *recounted set when it was a full
 * recount, 0 after count ticks, or a negative code. */
int durox_metrics_stream_next(durox_metrics_stream *s, durox_runtime_metrics *out, int *recounted);
void durox_metrics_stream_free(durox_metrics_stream *s);

/* ---- the durable state of real-time consumers (our own tables) ------------------------- */

/* A batch a webhook could not deliver (after its attempt cap or a refusal). */
typedef struct durox_dead_letter {
	int64_t id;
	int64_t created_at;
	const char *source; /* "events", "watch", "rules:<rule>", ... */
	const char *url;
	const char *key;     /* its Idempotency-Key */
	const char *payload; /* the JSON body */
	uint32_t items;
	int attempts;
	long last_status; /* HTTP status of the last attempt; 0: no response */
	const char *last_error;
} durox_dead_letter;

typedef struct durox_dead_letter_list {
	size_t count;
	durox_dead_letter *items;
} durox_dead_letter_list;

void durox_dead_letter_list_free(durox_dead_letter_list *l);
/* Records d (id and created_at are assigned; *id may be NULL) in a short write transaction,
 * creating our tables on first use. DUROX_EDENIED on a read-only handle. */
int durox_dead_letter_add(durox *dx, const durox_dead_letter *d, int64_t *id);
/* Dead letters with id > after (oldest first), of one source (NULL: any), at most limit (0:
 * 1000). An empty list when none was ever recorded. Under a policy every call of this section
 * needs can_manage_jobs (DUROX_EDENIED otherwise): it is operational state, as the job journal. */
int durox_list_dead_letters(durox *dx, const char *source, int64_t after, uint32_t limit, durox_dead_letter_list **out);
/* Removes one; DUROX_ENOTFOUND when there is none with that id. */
int durox_dead_letter_delete(durox *dx, int64_t id);

/* A cursor saved under a name (a rule's): *out is malloc'd (free with durox_free) or NULL
 * when none was saved. */
int durox_cursor_get(durox *dx, const char *name, char **out);
void durox_free(void *p);

/* The run of a rule handler for one event. state: "running" (recorded before the handler
 * runs), "done", "failed" (after its retries; error says why), "skipped" (a rate limit held
 * it back), "interrupted" (the process died while it ran: never run again automatically). */
typedef struct durox_rule_run {
	const char *rule;
	const char *key; /* the event's key */
	const char *state;
	int attempts;
	const char *error;
	const char *instance_id;
	const char *event_type;
	int64_t started_at, finished_at; /* DUROX_NO_TIME when not set */
} durox_rule_run;

typedef struct durox_rule_run_list {
	size_t count;
	durox_rule_run *items;
} durox_rule_run_list;

void durox_rule_run_list_free(durox_rule_run_list *l);
/* The run of (rule, key): a list of 0 or 1. */
int durox_rule_run_get(durox *dx, const char *rule, const char *key, durox_rule_run_list **out);
/* Records r and, when cursor_name is not NULL, saves cursor under it, in ONE write
 * transaction (so a restarted process resumes exactly after what it recorded). r may be NULL
 * (only the cursor). */
int durox_rule_run_put(durox *dx, const durox_rule_run *r, const char *cursor_name, const char *cursor);
/* Runs of a rule (NULL: every rule) in a state (NULL: any) started at or after since
 * (DUROX_NO_TIME: any time), newest first, at most limit (0: 1000). */
int durox_list_rule_runs(durox *dx, const char *rule, const char *state, int64_t since, uint32_t limit,
                         durox_rule_run_list **out);
/* How many runs of rule started at or after since (skipped ones not counted). */
int durox_rule_run_count(durox *dx, const char *rule, int64_t since, uint64_t *n);

#ifdef __cplusplus
}
#endif
#endif
