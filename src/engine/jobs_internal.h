/*
 * jobs_internal.h - what the files of the bulk-job engine share (private to src/engine):
 *   jobs.c          starting a bulk operation: checks, recording the job, dry runs
 *   jobs_targets.c  resolving the targets (ids or filter + predicate, authorize callback)
 *   jobs_run.c      the batch runner and progress reports
 *   jobs_report.c   responses, built from the journal
 *   jobs_owner.c    which process owns a job and whether it is alive
 *   jobs_journal.c  list, get, report, resume and stop
 * A call resolves its targets in memory (no transaction open while Lua runs), records the job
 * and its targets in the journal, then runs batches, each one BEGIN IMMEDIATE transaction
 * that acts on its targets and marks them in the journal; see jobs.c.
 */
#ifndef DUROX_ENGINE_JOBS_INTERNAL_H
#define DUROX_ENGINE_JOBS_INTERNAL_H

#include "engine/ops_internal.h"

#define DEFAULT_BATCH 200
#define RECORD_CHUNK 5000        /* targets journaled per transaction while recording */
#define HEARTBEAT_STALE_MS 60000 /* a running job without heartbeat for this long is orphaned */
#define PROGRESS_EVERY_MS 250
#define BUSY_RETRIES 5
/* (How long a batch's transaction may run is the provider's: store_ops_vtable.max_tx_ms in
 * store/ops.h; on SQLite 5 ms of the write lock, so that the runtime's ack retries, 10 to
 * 160 ms apart, meet independent phases of our paced cycle: the pacing note in
 * store/sqlite_ops.c.) */

/* ---- job states (jobs_owner.c) ----
 *
 * The state of a job is stored as text in the journal (durox_jobs.state) and is one of
 * these. The moves a job may make, and who makes them:
 *
 *   from         to           when
 *   (new)        running      a job is recorded in one transaction (at most RECORD_CHUNK targets)
 *   (new)        resolving    a larger job: its targets are recorded in chunks
 *   resolving    running      the last chunk is recorded
 *   resolving    abandoned    recording failed or was stopped, or its process died (resume_job or
 *                             stop_job find it so): nothing was done, start the operation again
 *   running      completed    no target is pending any more (final)
 *   running      stopped      a stop request (stop_job) or a progress callback returning false
 *   running      interrupted  its run ended on an error or Ctrl-C (a killed process leaves it
 *                             running with a dead owner: shown as interrupted)
 *   running      running      resume_job takes over a job whose owner died
 *   interrupted  running      resume_job
 *   stopped      running      resume_job
 *   interrupted  stopped      stop_job on a job nobody runs
 *
 * completed and abandoned are final; nothing else moves. job_move is the one way the
 * engine changes a state, and refuses a move the table does not have. */
typedef enum job_state {
	JOB_RESOLVING,   /* "resolving" */
	JOB_RUNNING,     /* "running" */
	JOB_STOPPED,     /* "stopped" */
	JOB_INTERRUPTED, /* "interrupted" */
	JOB_COMPLETED,   /* "completed" */
	JOB_ABANDONED,   /* "abandoned" */
	JOB__COUNT
} job_state;

/* The stored name of a state (a static string), or NULL when out of range. */
const char *job_state_name(int state);
/* The state a stored name means, or -1. */
int job_state_parse(const char *name);
/* Whether the table above has the move from -> to (from -1: a new job). */
int job_can_move(int from, int to);
/* Sets j->state to `to` when the move from its current state is in the table; otherwise
 * leaves it and returns DUROX_ECONFLICT with dx's message set. */
int job_move(durox *dx, store_job *j, int to);
/* Whether j is in state s. */
int job_is(const store_job *j, int s);

/* ---- owner (jobs_owner.c) ---- */

/* "host:pid" of this process into out. */
void job_self_owner(char *out, size_t n);
/* Whether the owner of a running job is alive: same host -> its pid exists (and a heartbeat
 * is recent), other host -> a recent heartbeat. */
int job_owner_alive(const char *owner, int64_t heartbeat, int64_t now);
/* Whether owner is this process. */
int job_is_self(const char *owner);
/* The state shown to users: a running/resolving job whose process is gone is reported as
 * interrupted/abandoned. *active: its owner is alive and working on it. */
const char *job_shown_state(const store_job *j, int64_t now, int *active);

/* ---- a job row copied out of the store (jobs_report.c) ---- */

typedef struct job_copy {
	store_job j;
	arena mem;
	int found;
	int rc;
} job_copy;

/* Loads job id into c (c->found says whether it exists). The journal must exist. */
int job_load(durox *dx, int64_t id, job_copy *c);

/* ---- progress (jobs_run.c) ---- */

typedef struct runctx {
	durox *dx;
	int kind;
	const durox_bulk_options *o;
	int64_t t0;
	int64_t last_report;
	durox_bulk_progress pr;
} runctx;

/* Calls the progress callback (always when force, else at most every 250 ms). Returns its
 * answer (0 continue, 1 stop, <0 abort; the message is set for an abort). */
int job_progress(runctx *rc, int force);

/* ---- targets (jobs_targets.c) ---- */

typedef struct target {
	const char *id;
	const char *deny; /* refused before processing (authorize callback, policy): its message */
	int deny_code;    /* DUROX_EDENIED, or DUROX_ENOTFOUND for an instance the caller may not see */
	int hidden;       /* NOTFOUND to the caller, but the store holds it (the audit record counts it) */
} target;

typedef struct targets {
	arena mem;
	target *v;
	size_t n, cap;
	/* purge and restart by filter: the sub-orchestrations that matched, with why they are
	 * skipped (in deny); never journaled, reported in the response */
	target *skipped;
	size_t nskipped, skipcap;
	arena skipmem; /* the skipped targets live here, past job_targets_release */
	/* open-addressing index id -> position (for dedup and mapping summaries back) */
	size_t *slots; /* position + 1; 0 = empty */
	size_t nslots;
} targets;

void job_targets_init(targets *t);
void job_targets_free(targets *t);
/* Frees the targets but keeps the skipped ones (a long job runs from the journal). */
void job_targets_release(targets *t);
/* Fill ts from the ids of rc->o (deduplicated, at most limit) or from its filter and
 * predicate, asking the access policy (engine/access.h: what the caller may not see is
 * NOTFOUND, what it may not change is DENIED "denied") and the authorize callback about
 * each. Set dx's message on failure. */
int job_resolve_ids(runctx *rc, targets *ts, uint32_t limit, const op_params *p);
int job_resolve_filter(runctx *rc, targets *ts, uint32_t limit, const op_params *p);
/* Under a policy: asks it about every target job_id still has to process and records the
 * refused ones as failed before anything is done (a job runs with the rights of whoever runs
 * it). Uses rc->dx and rc's progress. */
int job_police_pending(runctx *rc, int64_t job_id, const op_params *p);

/* The audit name of a bulk operation of kind ("cancel_instances"...) and the access hook that
 * decides each of its targets. */
const char *job_bulk_operation(int kind);
int job_bulk_hook(int kind);

/* ---- responses (jobs_report.c) ---- */

typedef struct bulk_result {
	durox_bulk_response pub;
	arena mem;
	size_t cap;
} bulk_result;

/* A new empty response of kind in state (a static string); NULL when out of memory. */
bulk_result *job_result_new(int kind, const char *state);
/* Appends a zeroed item; NULL when out of memory. */
durox_bulk_item *job_result_push(bulk_result *br);
/* Adds an item's counts to the response totals. */
void job_tally(durox_bulk_response *r, const durox_bulk_item *it);
/* The JSON journaled as a target's result (NULL when none), built in b. */
const char *job_result_json(const op_params *p, const op_result *res, buf *b);
/* Appends the skipped targets of ts to the response r (outcome SKIPPED, counted in
 * total_matched). DUROX_ENOMEM when out of memory. */
int job_add_skipped(durox_bulk_response *r, const targets *ts);
/* Builds the response of job j from the journal. */
int job_build_report(durox *dx, const store_job *j, int64_t elapsed, durox_bulk_response **out);

/* ---- the batch runner (jobs_run.c) ---- */

/* BEGIN IMMEDIATE, retried with backoff while the store stays busy. */
int job_begin_retry(runctx *rc);
/* Moves the job from state `from` to `to` (job_state) in its own transaction if it is still
 * ours; best effort (the message of dx is kept). */
void job_mark(runctx *rc, int64_t job_id, int from, int to, const char *error);
/* Runs job_id to its end and builds the response from the journal. */
int job_run_and_report(runctx *rc, int64_t job_id, const op_params *p, uint32_t batch_size, double rate,
                       durox_bulk_response **out);

#endif
