/*
 * ops.h - the provider contract for writes: write transactions, the state checks the
 * engine makes inside them, queue inserts exactly as Duroxide's client writes them,
 * Duroxide's delete and prune, one-query status polling, and the bulk-job journal (our
 * own tables). A provider that supports writes sets store.ops (provider.h) to one of
 * these; implemented by sqlite_ops.c and sqlite_jobs.c, used by src/engine/ops*.c.
 *
 * Calls between begin() and commit()/rollback() run inside that transaction on the same
 * connection (reads included, so checks and writes see one snapshot). Row pointers handed
 * to callbacks are valid only during the callback.
 */
#ifndef DUROX_STORE_OPS_H
#define DUROX_STORE_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "store/provider.h"

/* What the engine needs to know about one instance before it writes. */
typedef struct store_instance_state {
	int exists;        /* the instances row exists */
	int pending_start; /* no row, but a StartOrchestration work item is queued for the id */
	int status;        /* durox_status of the current execution (UNKNOWN when its row is missing) */
	uint64_t current_execution;
	int is_child; /* parent_instance_id is set */
	int locked;   /* the runtime holds a live instance lock (instance_locks.locked_until > now) */
} store_instance_state;

/* One instance of a tree (delete). */
typedef struct store_tree_row {
	const char *instance_id;
	int status; /* durox_status of its current execution */
	int locked;
} store_tree_row;
typedef int (*store_tree_cb)(void *ud, const store_tree_row *r);

/* Row counts of a delete or prune. */
typedef struct store_delete_counts {
	uint64_t instances, executions, events, queue_messages;
} store_delete_counts;

/* One row of a status poll. */
typedef struct store_status_row {
	const char *instance_id; /* as asked */
	int exists, pending_start;
	int status;
	const char *output;
	int failure_kind;
} store_status_row;
typedef int (*store_status_cb)(void *ud, const store_status_row *r);

/* Work items queued for an instance (raw JSON text). */
typedef int (*store_item_cb)(void *ud, const char *work_item);

/* ---- journal rows ---- */

typedef struct store_job {
	int64_t job_id;
	const char *kind, *state, *request, *description, *owner, *last_error;
	uint64_t total, done, failed, no_subscription;
	double rate;
	uint32_t batch_size;
	int stop_requested;
	int64_t created_at, started_at, finished_at, heartbeat_at; /* DUROX_NO_TIME when NULL */
} store_job;
typedef int (*store_job_cb)(void *ud, const store_job *j);

typedef struct store_target {
	uint64_t seq;
	const char *instance_id;
	const char *state;   /* "pending", "done", "failed", "no_subscription" */
	const char *code;    /* durox_code_name() of a failure, or NULL */
	const char *message; /* NULL when none */
	const char *result;  /* JSON (restart: {"new_instance_id":..}; purge/prune: counts), or NULL */
} store_target;
typedef int (*store_target_cb)(void *ud, const store_target *t);

typedef struct store_ops_vtable {
	/* BEGIN IMMEDIATE (waits up to the busy timeout: DUROX_EBUSY), COMMIT, ROLLBACK. */
	int (*begin)(store *st);
	int (*commit)(store *st);
	void (*rollback)(store *st);

	/* State of one instance; now_ms judges instance locks. */
	int (*instance_state)(store *st, const char *instance_id, int64_t now_ms, store_instance_state *out);
	/* Raw work items queued in orchestrator_queue for the instance, in queue order. */
	int (*queued_items)(store *st, const char *instance_id, store_item_cb cb, void *ud);
	/* INSERT INTO orchestrator_queue (instance_id, work_item, visible_at) VALUES (..., visible_at_ms). */
	int (*enqueue)(store *st, const char *instance_id, const char *work_item, int64_t visible_at_ms);
	/* The instance and all its descendants (through parent_instance_id), root first. */
	int (*tree)(store *st, const char *root, int64_t now_ms, store_tree_cb cb, void *ud);
	/* Duroxide's delete_instances_atomic for exactly these ids (counts taken before deleting). */
	int (*delete_instances)(store *st, const char *const *ids, size_t n, store_delete_counts *out);
	/* Duroxide's prune_executions for one instance (counts in executions/events). */
	int (*prune)(store *st, const char *instance_id, int has_keep_last, uint32_t keep_last,
	             int64_t completed_before, store_delete_counts *out);
	/* Status of every id in ONE query (rows in any order; unknown ids have exists = 0). */
	int (*statuses)(store *st, const char *const *ids, size_t n, store_status_cb cb, void *ud);

	/* ---- journal (sqlite_jobs.c) ---- */
	/* Creates the journal tables if missing (inside a write transaction). */
	int (*journal_create)(store *st);
	/* Whether the journal tables exist. */
	int (*journal_exists)(store *st, int *exists);
	/* Inserts a job row (job_id ignored) and sets *job_id. */
	int (*job_insert)(store *st, const store_job *j, int64_t *job_id);
	/* Appends targets with seq first_seq, first_seq+1, ... (state "pending" unless given). */
	int (*job_add_targets)(store *st, int64_t job_id, uint64_t first_seq, const store_target *t, size_t n);
	/* Updates the mutable columns of the job (state, counters, owner, heartbeat, times,
	 * stop_requested, last_error, rate, batch_size) from j. */
	int (*job_update)(store *st, const store_job *j);
	/* Jobs matching state/kind (NULL: any), newest first, at most limit; job_id > 0: only that one. */
	int (*job_list)(store *st, int64_t job_id, const char *state, const char *kind, uint32_t limit, store_job_cb cb,
	                void *ud);
	/* Targets of a job with seq > after_seq, in seq order, at most limit (0: all);
	 * pending_only: only those still pending. */
	int (*job_targets)(store *st, int64_t job_id, uint64_t after_seq, uint32_t limit, int pending_only,
	                   store_target_cb cb, void *ud);
	/* Records the outcome of one target. */
	int (*job_set_target)(store *st, int64_t job_id, uint64_t seq, const store_target *t, int64_t done_at);

	/* How long a bulk job's batch transaction may run before it commits early (the rest of the
	 * batch stays pending for the next one), in ms: what the store's locking asks for. SQLite:
	 * 5, as the runtime's acks wait for the one write lock (the pacing note in sqlite_ops.c);
	 * PostgreSQL: 200, as a transaction there locks only its targets' rows. */
	int max_tx_ms;
} store_ops_vtable;

#endif
