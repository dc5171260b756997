/*
 * access.h - the ONE access-control enforcement point of the engine (access.c) and the audit
 * log behind it (audit.c). Every public operation that reads or writes instances, metrics,
 * jobs or the audit log asks here first; nothing in the binding or the CLI decides access.
 * Without a policy every call below allows at once (a handle without access control pays a
 * pointer test) and nothing is recorded unless the handle keeps an audit log anyway.
 *
 * How an operation uses it:
 * - listings and aggregates open a VIEW (access_view_open): the filter to hand the provider
 *   (the caller's ANDed with the policy's) and whether rows must be asked about one by one
 *   (access_view_row), then close it;
 * - single-instance operations call access_instance: the instance must be visible (else
 *   DUROX_ENOTFOUND, as if it did not exist) and the operation's hook must allow it (else
 *   DUROX_EDENIED);
 * - metrics, jobs and the audit log call access_global;
 * - writes append their audit record with audit_append, inside their own transaction when
 *   they have one, so that the record and the write commit together or not at all.
 * Private to src/engine; the streams, webhooks, exporter and visibility index route through
 * the same functions.
 */
#ifndef DUROX_ENGINE_ACCESS_H
#define DUROX_ENGINE_ACCESS_H

#include "engine/internal.h"
#include "util/buf.h"

/* What a handle knows about its caller, its policy and its audit log (dx->acl; created by
 * access_init for every handle). */
enum { AUDIT_NONE = 0, AUDIT_STORE, AUDIT_FILE };

typedef struct access_state {
	int enabled;             /* a policy is in force */
	durox_access_policy pol; /* the policy (hooks and ud) */
	char *policy_id, *policy_source;
	/* the context, copied */
	char *user_id, *source_ip, *reason;
	char **roles;
	size_t n_roles;
	durox_access_context ctx; /* points at the copies */
	char *roles_json;         /* the roles as a JSON array, for audit records */
	uint64_t identity;        /* fingerprint of policy id, user and roles */
	/* the audit log */
	int audit_mode; /* AUDIT_* */
	char *audit_file;
	unsigned char *key;
	size_t keylen;
} access_state;

/* Sets up access control and the audit log of a new handle from opts (copies everything),
 * and records the policy load. On failure the message is in errbuf and the handle must be
 * closed (durox_close releases the policy). */
int access_init(durox *dx, const durox_open_options *opts, char *errbuf, size_t errlen);
/* Releases the policy (calls its release) and frees the state; accepts dx->acl == NULL. */
void access_free(durox *dx);
/* Nonzero when a policy is in force on dx. */
int access_enabled(const durox *dx);

/* ---- views: what the caller may see ----------------------------------------------------- */

typedef struct access_view {
	durox *dx;
	const char *operation;
	/* The filter to hand the provider: the caller's filter ANDed with the policy's (owned by
	 * the view when it had to combine them). NULL: every instance. */
	const durox_filter *filter;
	durox_filter *own;    /* the combination, freed by access_view_close */
	durox_filter *policy; /* the policy's filter, freed by access_view_close */
	int per_row;          /* can_view_instance is asked for each row (access_view_row) */
	int nothing;          /* can_view_instance denies every instance: every row is hidden */
	int restricted;       /* the caller may not see every instance */
	/* Hidden-instance exclusion of aggregate views (access_view_open_aggregate). */
	durox_filter *excl;
} access_view;

/* Opens the caller's view for operation (its audit name). caller may be NULL. Returns
 * DUROX_OK, DUROX_EDENIED when can_list_instances refuses (recorded), or an error. Always
 * close the view, also after a failure. */
int access_view_open(durox *dx, const char *operation, const durox_filter *caller, access_view *v);
/* access_view_open without recording a refusal (an operation that records its own outcome,
 * like a bulk write whose targets are then all NOTFOUND). */
int access_view_open_quiet(durox *dx, const char *operation, const durox_filter *caller, access_view *v);
/* For operations that count rather than list (counts, group-by, time series, metrics, trees):
 * like access_view_open, and when can_view_instance applies per row, the instances the filter
 * admits but the hook hides are found once (one scan) and excluded in v->filter, so the
 * store's aggregates count only what the caller may see. */
int access_view_open_aggregate(durox *dx, const char *operation, const durox_filter *caller, access_view *v);
/* Whether the caller may see the row: 1 yes, 0 no (hidden; not recorded), <0 an error. */
int access_view_row(access_view *v, const durox_instance_summary *s);
void access_view_close(access_view *v);

/* Hands cb the summaries of the ids (n of them, no duplicates needed) that the view lets
 * the caller see, in any order; hidden and missing ids are skipped alike. cb runs after each
 * store read has returned (it may call the store). Without a policy this is the provider's
 * summaries_by_id. cb returns 0 to continue, <0 to abort with DUROX_EABORT. */
int access_visible_by_id(access_view *v, const char *const *ids, size_t n, store_summary_cb cb, void *ud);

/* Mixes the caller's identity (policy, user, roles) into a page-token fingerprint so that a
 * token works only for the caller and policy it was issued to. */
uint64_t access_fingerprint(const durox *dx, uint64_t h);

/* ---- one instance ------------------------------------------------------------------------- */

/* Checks that the caller may see instance id and, when hook is not DUROX_HOOK_VIEW_INSTANCE,
 * that the hook allows operation on it (event_name for can_raise_event). On DUROX_OK *out (if
 * not NULL) holds its summary (strings in a) and *checked is 1 when a policy was asked;
 * without a policy *checked is 0 and *out is untouched. Errors: DUROX_ENOTFOUND ("instance
 * 'x' not found": hidden or missing), DUROX_EDENIED; denials are recorded (a hidden instance
 * that exists is recorded as a denied read with reason "hidden"). */
int access_instance(durox *dx, const char *operation, int hook, const char *id, const char *event_name, arena *a,
                    durox_instance_summary *out, int *checked);

/* Asks the hook about summary s the caller already sees (bulk targets): 1 allow, 0 deny
 * (reason in why), <0 error. Not recorded (the bulk operation records its outcome). */
int access_ask_instance(durox *dx, int hook, const durox_instance_summary *s, const char *event_name, char *why,
                        size_t whylen);

/* can_start_orchestration: DUROX_OK or DUROX_EDENIED (recorded). */
int access_start(durox *dx, const char *name, const char *instance_id);

/* A class-wide hook (metrics, jobs, audit): DUROX_OK or DUROX_EDENIED (recorded). */
int access_global(durox *dx, const char *operation, int hook);

/* Runtime-wide figures (runtime and queue metrics, provider diagnostics): can_view_metrics
 * and an unrestricted view, else DUROX_EDENIED (recorded): totals over the whole store would
 * tell a restricted caller about instances it may not see. */
int access_store_wide(durox *dx, const char *operation);

/* Streams: whether payloads (inputs, outputs, event data) may be shown for the caller's
 * instances without asking per instance: 1 without a policy or when can_view_history is a
 * constant allow, 0 otherwise (the stream then leaves payloads out). */
int access_payloads_visible(const durox *dx);

/* The bulk ceiling: max_bulk_operations capped by the policy's cap. */
uint32_t access_bulk_ceiling(const durox *dx);
/* The policy's cap of bulk operations (0: none). */
uint32_t access_policy_bulk_cap(const durox *dx);
/* DUROX_EDENIED when cfg would raise max_bulk_operations past the policy's cap. */
int access_check_config(durox *dx, const durox_config *cfg);

/* ---- the audit log (audit.c) --------------------------------------------------------------- */

/* What one record says; the handle adds seq, time, who, the policy and the chain. */
typedef struct audit_entry {
	const char *operation;
	const char *target;   /* may be NULL */
	const char *decision; /* "allow" or "deny" */
	const char *reason;   /* may be NULL */
	const char *params;   /* JSON object text, NULL: {} */
	const char *result;   /* JSON object text, NULL: {} */
} audit_entry;

/* Nonzero when dx keeps an audit log (a policy, or the audit option). */
int audit_active(const durox *dx);
/* Appends a record. in_txn: the caller holds a write transaction on the store and commits
 * the record with its write; otherwise the record is appended in its own transaction (or to
 * the audit file). Returns DUROX_OK, or an error with the message set ("the audit record
 * could not be written: ..."): the caller must then refuse the operation. */
int audit_append(durox *dx, const audit_entry *e, int in_txn);
/* Builds {"code":"NOTFOUND","message":"..."} (or {"code":"OK"}) into b. */
void audit_result_code(buf *b, int rc, const char *message);

/* Sets up the audit destination of a new handle (audit.c): the store's log for a writable
 * handle, opts->audit_file for a read-only one. need_log: a policy or the audit option asks
 * for a log; a read-only handle without a file then fails (message in errbuf). */
int audit_init(durox *dx, const durox_open_options *opts, int need_log, char *errbuf, size_t errlen);
const char *audit_mode_name(const durox *dx); /* "store", "file", "none" */

#endif
