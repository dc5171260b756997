/*
 * sqlite_jobs.h - the job journal entry points of the SQLite provider (sqlite_jobs.c),
 * referenced by the ops vtable in sqlite_ops.c. See store/ops.h for their contracts.
 */
#ifndef DUROX_STORE_SQLITE_JOBS_H
#define DUROX_STORE_SQLITE_JOBS_H

#include "store/ops.h"

int sqj_create(store *base);
int sqj_exists(store *base, int *exists);
int sqj_insert(store *base, const store_job *j, int64_t *job_id);
int sqj_add_targets(store *base, int64_t job_id, uint64_t first_seq, const store_target *t, size_t n);
int sqj_update(store *base, const store_job *j);
int sqj_list(store *base, int64_t job_id, const char *state, const char *kind, uint32_t limit, store_job_cb cb,
             void *ud);
int sqj_targets(store *base, int64_t job_id, uint64_t after_seq, uint32_t limit, int pending_only, store_target_cb cb,
                void *ud);
int sqj_set_target(store *base, int64_t job_id, uint64_t seq, const store_target *t, int64_t done_at);

#endif
