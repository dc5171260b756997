/*
 * provider_state.h - the fourth part of the provider contract: the durable state of our
 * real-time consumers, in our own tables beside the runtime's (created on first use, inside a
 * write transaction the engine opens with store_ops_vtable.begin): the dead letters of
 * webhooks, named cursors (one per rule of a rules process), and the runs of rule handlers
 * (one row per rule and event key, so a restarted rules process never runs a handler twice
 * for an event it handled). SQLite: sqlite_state.c, tables durox_dead_letters,
 * durox_cursors, durox_rule_runs. Used by src/engine/state.c.
 */
#ifndef DUROX_STORE_PROVIDER_STATE_H
#define DUROX_STORE_PROVIDER_STATE_H

#include "store/provider.h"

typedef struct store_dead_letter {
	int64_t id;
	int64_t created_at;
	const char *source; /* what produced it ("events", "watch", "rules:<rule>") */
	const char *url;
	const char *key;     /* the batch's Idempotency-Key */
	const char *payload; /* the JSON body that could not be delivered */
	uint32_t items;
	int attempts;
	long last_status; /* 0: no response */
	const char *last_error;
} store_dead_letter;
typedef int (*store_dead_letter_cb)(void *ud, const store_dead_letter *d);

typedef struct store_rule_run {
	const char *rule;
	const char *key;   /* the event's key */
	const char *state; /* "running", "done", "failed", "skipped", "interrupted" */
	int attempts;
	const char *error;
	const char *instance_id;
	const char *event_type;
	int64_t started_at, finished_at; /* ms; DUROX_NO_TIME when not yet */
} store_rule_run;
typedef int (*store_rule_run_cb)(void *ud, const store_rule_run *r);

typedef struct store_state_vtable {
	/* Creates our tables if missing (inside the caller's write transaction). */
	int (*create)(store *st);
	/* Whether they exist (read-only handles can list an empty state). */
	int (*exists)(store *st, int *exists);

	int (*dead_letter_add)(store *st, const store_dead_letter *d, int64_t *id);
	/* Dead letters with id > after, oldest first, at most limit (0: all); source NULL: any. */
	int (*dead_letter_list)(store *st, const char *source, int64_t after, uint32_t limit, store_dead_letter_cb cb,
	                        void *ud);
	/* Removes one (after a successful replay); *found = 0 when there was none. */
	int (*dead_letter_delete)(store *st, int64_t id, int *found);

	/* The cursor saved under name into *out (malloc'd; NULL when none). */
	int (*cursor_get)(store *st, const char *name, char **out);
	int (*cursor_put)(store *st, const char *name, const char *cursor, int64_t at);

	/* The run of (rule, key); *found = 0 when there is none (r untouched). Strings of r are
	 * valid until the next call on st. */
	int (*run_get)(store *st, const char *rule, const char *key, int *found, store_rule_run *r);
	/* Inserts or replaces the run row. */
	int (*run_put)(store *st, const store_rule_run *r);
	/* Runs of rule in state (NULL: any) that started at or after since, newest first, at
	 * most limit (0: all). */
	int (*run_list)(store *st, const char *rule, const char *state, int64_t since, uint32_t limit,
	                store_rule_run_cb cb, void *ud);
	/* How many runs of rule started at or after since and were not skipped. */
	int (*run_count_since)(store *st, const char *rule, int64_t since, uint64_t *n);
} store_state_vtable;

#endif
