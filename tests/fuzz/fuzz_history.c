/*
 * fuzz_history.c - libFuzzer target for the history event decoder and analyser
 * (src/engine/history.c: what get_instance_details, get_instance_statistics and
 * find_stuck_instances derive from an execution's events). The input is one execution's
 * history, one event JSON per line, as the store holds it in history.event_data; each row's
 * event_id and event_type columns are taken from the line's own "event_id" and "type" (as the
 * runtime writes them; the previous id + 1 and "?" when absent). A line whose id is not above
 * the previous one is dropped: the store's primary key and ORDER BY event_id never give the
 * analyser such rows. Besides the sanitizers' checks it
 * aborts when an invariant fails:
 * - the analysis succeeds (a corrupt row is skipped, never an error, crash or runaway
 *   allocation);
 * - every pending activity / timer / sub-orchestration / event subscription names a row of the
 *   matching scheduling type (ActivityScheduled, not a system call; TimerCreated;
 *   SubOrchestrationScheduled; ExternalSubscribed or ExternalSubscribedPersistent by kind), no
 *   row twice, and a timer's delay is its fire time minus its scheduling time (0 if earlier);
 * - the counts are bounded by the rows: total_history_events <= lines, each statistic <= lines.
 * Seeds in corpus/history are executions of the real scenario and shapes stores.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durox.h"
#include "engine/internal.h"
#include "util/arena.h"
#include "util/json.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static durox *dx;

static void die(const char *what, uint64_t id)
{
	fprintf(stderr, "fuzz_history: %s (event %llu)\n", what, (unsigned long long)id);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char err[512];
	if (durox_open("sqlite::memory:", NULL, &dx, err, sizeof err) != DUROX_OK) {
		fprintf(stderr, "fuzz_history: cannot open an in-memory store: %s\n", err);
		abort();
	}
	return 0;
}

typedef struct row_info {
	const char *type;
	const char *name; /* ActivityScheduled name */
	int used;
} row_info;

/* The row whose event_id is id (the first of several), or NULL. */
static row_info *row_for(store_event_row *rows, row_info *info, size_t n, uint64_t id)
{
	for (size_t k = 0; k < n; k++)
		if (rows[k].event_id == id)
			return &info[k];
	return NULL;
}

static void expect_row(store_event_row *rows, row_info *info, size_t n, uint64_t id, const char *t1, const char *t2)
{
	row_info *r = row_for(rows, info, n, id);
	if (r == NULL)
		die("a pending item names no row", id);
	if (r->type == NULL || (strcmp(r->type, t1) != 0 && (t2 == NULL || strcmp(r->type, t2) != 0)))
		die("a pending item names a row of another type", id);
	if (r->used++)
		die("a row is pending twice", id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 18)
		return 0;
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	size_t lines = 1;
	for (size_t k = 0; k < size; k++)
		lines += text[k] == '\n';
	store_event_row *rows = calloc(lines, sizeof *rows);
	row_info *info = calloc(lines, sizeof *info);
	arena cols, res;
	arena_init(&cols);
	arena_init(&res);
	if (rows == NULL || info == NULL)
		goto done;
	size_t n = 0;
	uint64_t last_id = 0;
	for (char *line = text; line != NULL;) {
		char *nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		store_event_row *r = &rows[n];
		r->execution_id = 1;
		r->event_id = last_id + 1;
		r->event_type = "?";
		r->data = line;
		r->data_len = strlen(line);
		r->created_at = DUROX_NO_TIME;
		json *ev = json_parse(&cols, line, r->data_len, NULL, 0);
		const char *name = NULL;
		int64_t v;
		if (ev != NULL && ev->type == JSON_OBJECT) {
			if (json_get_i64(ev, "event_id", &v) && v >= 0)
				r->event_id = (uint64_t)v;
			const char *t = json_get_str(ev, "type");
			if (t != NULL)
				r->event_type = t;
			name = json_get_str(ev, "name");
		}
		line = nl != NULL ? nl + 1 : NULL;
		if (r->event_id <= last_id)
			continue;
		last_id = r->event_id;
		info[n].type = r->event_type;
		info[n].name = name;
		n++;
	}
	exec_analysis ea;
	int rc = analyse_rows(dx, &res, "fuzz-1", 1, rows, n, 1, &ea);
	if (rc == DUROX_ENOMEM)
		goto done;
	if (rc != DUROX_OK)
		die(durox_errmsg(dx), 0);
	const durox_execution_details *d = &ea.pending;
	for (size_t k = 0; k < d->n_pending_activities; k++) {
		uint64_t id = d->pending_activities[k].correlation_id;
		expect_row(rows, info, n, id, "ActivityScheduled", NULL);
		const char *name = row_for(rows, info, n, id)->name;
		if (name != NULL && strncmp(name, "__duroxide_syscall:", 19) == 0)
			die("a system call is listed as a pending activity", id);
	}
	for (size_t k = 0; k < d->n_pending_timers; k++) {
		const durox_pending_timer *t = &d->pending_timers[k];
		expect_row(rows, info, n, t->correlation_id, "TimerCreated", NULL);
		uint64_t want = t->fire_at > t->scheduled_at ? (uint64_t)(t->fire_at - t->scheduled_at) : 0;
		if (t->delay_ms != want)
			die("a timer's delay is not fire_at - scheduled_at", t->correlation_id);
	}
	for (size_t k = 0; k < d->n_pending_children; k++)
		expect_row(rows, info, n, d->pending_children[k].correlation_id, "SubOrchestrationScheduled", NULL);
	for (size_t k = 0; k < d->n_pending_events; k++) {
		const durox_pending_event *e = &d->pending_events[k];
		expect_row(rows, info, n, e->correlation_id,
		           e->queue ? "ExternalSubscribedPersistent" : "ExternalSubscribed", NULL);
	}
	const durox_instance_statistics *s = &ea.stats;
	uint64_t counts[] = {s->total_history_events,       s->total_activities_scheduled,
	                     s->total_activities_completed, s->total_activities_failed,
	                     s->total_timers_scheduled,     s->total_timers_fired,
	                     s->total_events_subscribed,    s->total_events_received,
	                     s->total_sub_orchestrations,   s->total_turns};
	for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++)
		if (counts[k] > n)
			die("a statistic exceeds the number of rows", k);
done:
	arena_release(&res);
	arena_release(&cols);
	free(info);
	free(rows);
	free(text);
	return 0;
}
