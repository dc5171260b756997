/*
 * postgres_jobs.h - the job journal entry points of the PostgreSQL provider
 * (postgres_jobs.c), referenced by the ops vtable in postgres_ops.c. See store/ops.h for
 * their contracts.
 */
#ifndef DUROX_STORE_POSTGRES_JOBS_H
#define DUROX_STORE_POSTGRES_JOBS_H

#include "store/ops.h"

int pgj_create(store *base);
int pgj_exists(store *base, int *exists);
int pgj_insert(store *base, const store_job *j, int64_t *job_id);
int pgj_add_targets(store *base, int64_t job_id, uint64_t first_seq, const store_target *t, size_t n);
int pgj_update(store *base, const store_job *j);
int pgj_list(store *base, int64_t job_id, const char *state, const char *kind, uint32_t limit, store_job_cb cb,
             void *ud);
int pgj_targets(store *base, int64_t job_id, uint64_t after_seq, uint32_t limit, int pending_only, store_target_cb cb,
                void *ud);
int pgj_set_target(store *base, int64_t job_id, uint64_t seq, const store_target *t, int64_t done_at);

#endif
