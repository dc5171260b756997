/*
 * jobs_owner.c - the states of a bulk job and the moves between them (the table is in
 * jobs_internal.h), which process owns a job ("host:pid") and whether it is still alive (its
 * pid exists and is not a zombie, or a recent heartbeat from another host), and the state
 * shown to users that follows from both (a running job whose owner died is "interrupted").
 * Used by the other jobs_*.c files.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/jobs_internal.h"
#include "util/codec.h"
#include "util/timeutil.h"

static const char *const state_names[JOB__COUNT] = {"resolving",   "running",   "stopped",
                                                    "interrupted", "completed", "abandoned"};

const char *job_state_name(int state) { return state >= 0 && state < JOB__COUNT ? state_names[state] : NULL; }

int job_state_parse(const char *name)
{
	for (int k = 0; name != NULL && k < JOB__COUNT; k++)
		if (strcmp(name, state_names[k]) == 0)
			return k;
	return -1;
}

int job_can_move(int from, int to)
{
	switch (from) {
	case -1: return to == JOB_RUNNING || to == JOB_RESOLVING;
	case JOB_RESOLVING: return to == JOB_RUNNING || to == JOB_ABANDONED;
	case JOB_RUNNING: return to == JOB_COMPLETED || to == JOB_STOPPED || to == JOB_INTERRUPTED || to == JOB_RUNNING;
	case JOB_INTERRUPTED: return to == JOB_RUNNING || to == JOB_STOPPED;
	case JOB_STOPPED: return to == JOB_RUNNING;
	default: return 0; /* completed, abandoned: final */
	}
}

int job_move(durox *dx, store_job *j, int to)
{
	int from = j->state != NULL ? job_state_parse(j->state) : -1;
	if (j->state != NULL && from < 0)
		return dx_fail(dx, DUROX_ECORRUPT, "job %lld has an unknown state '%s' in the journal",
		               (long long)j->job_id, j->state);
	if (!job_can_move(from, to))
		return dx_fail(dx, DUROX_ECONFLICT, "job %lld cannot go from %s to %s", (long long)j->job_id,
		               from < 0 ? "new" : state_names[from], job_state_name(to));
	j->state = state_names[to];
	return DUROX_OK;
}

int job_is(const store_job *j, int s) { return job_state_parse(j->state) == s; }

void job_self_owner(char *out, size_t n)
{
	char host[128] = "localhost";
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	snprintf(out, n, "%s:%ld", host, (long)getpid());
}

/* Whether the owner of a running job is alive: same host -> its pid exists (and a
 * heartbeat is recent), other host -> a recent heartbeat. */
int job_owner_alive(const char *owner, int64_t heartbeat, int64_t now)
{
	if (owner == NULL || heartbeat == DUROX_NO_TIME || now - heartbeat > HEARTBEAT_STALE_MS)
		return 0;
	const char *colon = strrchr(owner, ':');
	char self[200];
	job_self_owner(self, sizeof self);
	const char *scolon = strrchr(self, ':');
	if (colon == NULL || scolon == NULL)
		return 1;
	if ((size_t)(colon - owner) != (size_t)(scolon - self) || strncmp(owner, self, (size_t)(colon - owner)) != 0)
		return 1; /* another host: trust the heartbeat */
	long pid = strtol(colon + 1, NULL, 10);
	if (pid <= 0)
		return 0;
	if (pid == (long)getpid())
		return 1;
	if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
		return 0;
	/* a zombie (killed, not yet reaped by its parent) is dead too */
	char path[64], st[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 1;
	size_t n = fread(st, 1, sizeof st - 1, f);
	fclose(f);
	st[n] = '\0';
	const char *paren = strrchr(st, ')');
	return !(paren != NULL && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

int job_is_self(const char *owner)
{
	char self[200];
	job_self_owner(self, sizeof self);
	return owner != NULL && strcmp(owner, self) == 0;
}

/* The state shown to users: a running/resolving job whose process is gone is reported as
 * interrupted/abandoned. */
const char *job_shown_state(const store_job *j, int64_t now, int *active)
{
	int alive = job_owner_alive(j->owner, j->heartbeat_at, now);
	*active = 0;
	if (job_is(j, JOB_RUNNING)) {
		*active = alive;
		return job_state_name(alive ? JOB_RUNNING : JOB_INTERRUPTED);
	}
	if (job_is(j, JOB_RESOLVING)) {
		*active = alive;
		return job_state_name(alive ? JOB_RESOLVING : JOB_ABANDONED);
	}
	return j->state;
}
