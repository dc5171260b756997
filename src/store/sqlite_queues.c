/*
 * sqlite_queues.c - the SQLite provider's queue reads for metrics and stuck-work detection:
 * the snapshot of both work queues (depths, in-progress, waiting, stalled, overdue timers,
 * orphans), the problem rows behind it, expired instance locks and running instances with no
 * work queued. Relies on sqlite_internal.h (and the visibility index's connection when it is
 * ready); used by the engine through sq_metrics_vtable.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "store/sqlite_metrics_internal.h"

/* The state of every orchestrator_queue row (?1 = now, ?2 = stall ms, ?3 = timer overdue ms):
 * tm: a TimerFired item; pt: a pending timer; st: 0 free, 1 in progress (held by its
 * instance's live lock), 2 waiting (its instance is locked by a turn it is not part of);
 * orphan: no instance and no StartOrchestration queued for it. */
#define ORCH_ROWS_WITH(attempts, absent)                                                                               \
	"SELECT q.id AS id, q.instance_id AS instance_id, q.work_item AS work_item,"                                   \
	" durox_ms(q.visible_at) AS vis, durox_ms(q.created_at) AS created, " attempts " AS attempts,"                 \
	" q.lock_token AS token, l.locked_until AS lu,"                                                                \
	" substr(q.work_item,1,14)='{\"TimerFired\":' AS tm,"                                                          \
	" CASE WHEN l.instance_id IS NULL OR l.locked_until <= ?1 THEN 0 WHEN q.lock_token IS l.lock_token THEN 1"     \
	" ELSE 2 END AS st,"                                                                                           \
	" (" absent " AND NOT EXISTS (SELECT 1 FROM"                                                                   \
	" orchestrator_queue y WHERE y.instance_id=q.instance_id AND substr(y.work_item,1,22)="                        \
	"'{\"StartOrchestration\":')) AS orphan"                                                                       \
	" FROM orchestrator_queue q LEFT JOIN instance_locks l ON l.instance_id=q.instance_id"
#define ORCH_ROWS(attempts)                                                                                            \
	ORCH_ROWS_WITH(attempts, "NOT EXISTS (SELECT 1 FROM instances x WHERE x.instance_id=q.instance_id)")
/* The same rows read on the visibility index's connection (the store attached, read through a
 * memory mapping): the index's instance rows, which its own page cache keeps between calls,
 * answer "does the instance exist" for almost every row; only a row whose instance it lacks
 * is looked up in the store, so an instance created since the last sync is never an orphan. */
#define ORCH_ROWS_IX(attempts)                                                                                         \
	ORCH_ROWS_WITH(attempts, "NOT EXISTS (SELECT 1 FROM main.dx_inst d WHERE d.instance_id=q.instance_id) AND"     \
	                         " NOT EXISTS (SELECT 1 FROM store.instances x WHERE x.instance_id=q.instance_id)")

#define WORKER_ROWS(attempts)                                                                                          \
	"SELECT w.id AS id, w.instance_id AS instance_id, w.work_item AS work_item,"                                   \
	" durox_ms(w.visible_at) AS vis, durox_ms(w.created_at) AS created, " attempts " AS attempts,"                 \
	" durox_ms(w.locked_until) AS lu,"                                                                             \
	" CASE WHEN w.lock_token IS NULL THEN 0 WHEN durox_ms(w.locked_until) > ?1 THEN 1 ELSE 3 END AS st"            \
	" FROM worker_queue w"

int sq_queue_snapshot(store *base, const store_queue_params *p, store_queue_snapshot *out)
{
	sqlite_store *s = (sqlite_store *)base;
	memset(out, 0, sizeof *out);
	out->orchestrator.max_attempt_count = out->worker.max_attempt_count = -1;
	out->orchestrator_oldest_visible = out->worker_oldest_visible = DUROX_NO_TIME;
	out->oldest_timer_created = out->next_timer_at = DUROX_NO_TIME;
	int has_attempts = s->base.info.has_attempt_count;
	/* One pass, each row classified in C: no table of every row and its work item is built
	 * (the figures read every per-row value several times). Values that SQL leaves NULL
	 * (an unreadable time) compare false, as they would in SQL. */
	int ix = sqi_usable(s);
	sqlite3_stmt *st = ix ? sqi_stmt(s, has_attempts ? ORCH_ROWS_IX("q.attempt_count") : ORCH_ROWS_IX("0"))
	                      : sq_stmt(s, has_attempts ? ORCH_ROWS("q.attempt_count") : ORCH_ROWS("0"));
	if (st == NULL)
		return ix ? DUROX_EIO : sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, p->now);
	int64_t now = p->now;
	durox_queue_detail *o = &out->orchestrator;
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		/* columns: id, instance_id, work_item, vis, created, attempts, token, lu, tm, st, orphan */
		int has_vis = sqlite3_column_type(st, 3) != SQLITE_NULL;
		int64_t vis = sqlite3_column_int64(st, 3);
		int has_created = sqlite3_column_type(st, 4) != SQLITE_NULL;
		int64_t created = sqlite3_column_int64(st, 4);
		int64_t attempts = sqlite3_column_int64(st, 5);
		int token_null = sqlite3_column_type(st, 6) == SQLITE_NULL;
		int tm = sqlite3_column_int(st, 8);
		int lk = sqlite3_column_int(st, 9);
		int orphan = sqlite3_column_int(st, 10);
		int visible = has_vis && vis <= now, future = has_vis && vis > now;
		int pt = tm && future;
		out->orchestrator_rows++;
		if (tm && !has_vis) {
			/* SQL: "pending timer" is unknown, so neither it nor its negation counts */
		} else if (pt) {
			out->pending_timers++;
			if (has_created &&
			    (out->oldest_timer_created == DUROX_NO_TIME || created < out->oldest_timer_created))
				out->oldest_timer_created = created;
			if (out->next_timer_at == DUROX_NO_TIME || vis < out->next_timer_at)
				out->next_timer_at = vis;
		} else {
			if (lk == 1)
				o->in_progress++;
			else if (lk == 2)
				o->waiting_on_lock++;
			else if (future)
				o->delayed++;
			else if (visible)
				o->available++;
			if (visible && (out->orchestrator_oldest_visible == DUROX_NO_TIME ||
			                vis < out->orchestrator_oldest_visible))
				out->orchestrator_oldest_visible = vis;
			if (lk == 0 && tm && has_vis && vis <= now - p->timer_overdue_ms)
				out->overdue_timers++;
		}
		if (!tm && lk == 0 && has_vis && vis <= now - p->stall_ms)
			o->stalled++;
		if (attempts >= (int64_t)p->near_poison)
			o->near_poison++;
		if (attempts >= (int64_t)p->max_attempts)
			o->at_poison_limit++;
		if (attempts > o->max_attempt_count)
			o->max_attempt_count = attempts;
		if (token_null)
			o->unlocked_rows++;
		else if (lk != 1)
			o->stale_lock_tokens++;
		if (orphan) {
			o->orphans++;
			const char *wi = sq_col_text(st, 2);
			if (visible && wi != NULL && strncmp(wi, "{\"QueueMessage\":", 16) != 0)
				o->orphans_blocking++;
		}
	}
	sq_done(st);
	if (r != SQLITE_DONE)
		return ix ? sqi_fail(s, r, "reading the orchestrator queue")
		          : sq_fail(s, r, "reading the orchestrator queue");

	char sql[4096];
	snprintf(sql, sizeof sql,
	         "WITH c AS MATERIALIZED (%s) SELECT count(*), total(st=1), total(st=3), total(st<>1 AND vis > ?1),"
	         " total(st<>1 AND vis <= ?1), total(st<>1 AND max(vis, CASE WHEN st=3 THEN lu ELSE vis END) <= ?1 - "
	         "?2),"
	         " min(CASE WHEN vis <= ?1 THEN vis END), total(attempts >= ?4), total(attempts >= ?5), max(attempts),"
	         " total(st=0) FROM c",
	         has_attempts ? WORKER_ROWS("w.attempt_count") : WORKER_ROWS("0"));
	if ((st = sq_stmt(s, sql)) == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, p->now);
	sqlite3_bind_int64(st, 2, p->stall_ms);
	sqlite3_bind_int64(st, 4, p->near_poison);
	sqlite3_bind_int64(st, 5, p->max_attempts);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		durox_queue_detail *w = &out->worker;
		out->worker_rows = (uint64_t)sqlite3_column_int64(st, 0);
		w->in_progress = (uint64_t)sqlite3_column_int64(st, 1);
		w->expired_locks = (uint64_t)sqlite3_column_int64(st, 2);
		w->delayed = (uint64_t)sqlite3_column_int64(st, 3);
		w->available = (uint64_t)sqlite3_column_int64(st, 4);
		w->stalled = (uint64_t)sqlite3_column_int64(st, 5);
		out->worker_oldest_visible = sq_col_time(st, 6);
		w->near_poison = (uint64_t)sqlite3_column_int64(st, 7);
		w->at_poison_limit = (uint64_t)sqlite3_column_int64(st, 8);
		w->max_attempt_count = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 9);
		w->unlocked_rows = (uint64_t)sqlite3_column_int64(st, 10);
	}
	sq_done(st);
	if (r != SQLITE_ROW)
		return sq_fail(s, r, "reading the worker queue");

	st = sq_stmt(s, "SELECT count(*), total(durox_ms(locked_until) <= ?1), total(durox_ms(locked_until) <= ?1 - ?2)"
	                " FROM instance_locks");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, p->now);
	sqlite3_bind_int64(st, 2, p->stall_ms);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		out->instance_locks = (uint64_t)sqlite3_column_int64(st, 0);
		out->expired_instance_locks = (uint64_t)sqlite3_column_int64(st, 1);
		out->long_expired_instance_locks = (uint64_t)sqlite3_column_int64(st, 2);
		out->orchestrator.expired_locks = out->expired_instance_locks;
	}
	sq_done(st);
	return r == SQLITE_ROW ? DUROX_OK : sq_fail(s, r, "reading instance locks");
}

/* Orchestrator and worker rows that show a problem, with their instance. */
int sq_problem_items(store *base, const store_queue_params *p, store_queue_item_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	int has_attempts = s->base.info.has_attempt_count;
	char sql[4096];
	/* flags: 1 poison risk, 2 expired lock, 4 overdue timer, 8 stalled, 16 orphan, 32 blocking */
	snprintf(sql, sizeof sql,
	         "WITH c AS (%s), f AS (SELECT c.*, (attempts >= ?4)"
	         " | (CASE WHEN st=0 AND lu IS NOT NULL AND lu <= ?1 - ?2 THEN 2 ELSE 0 END)"
	         " | (CASE WHEN tm AND st=0 AND vis <= ?1 - ?3 THEN 4 ELSE 0 END)"
	         " | (CASE WHEN NOT tm AND st=0 AND vis <= ?1 - ?2 THEN 8 ELSE 0 END)"
	         " | (CASE WHEN orphan THEN 16 ELSE 0 END)"
	         " | (CASE WHEN orphan AND vis <= ?1 AND substr(work_item,1,16) <> '{\"QueueMessage\":' THEN 32 ELSE 0 "
	         "END)"
	         " AS flags FROM c)"
	         " SELECT 0, f.id, f.instance_id, f.work_item, f.vis, f.lu, f.attempts, f.st, f.flags, f.created,"
	         " i.instance_id IS NOT NULL, e.status, i.orchestration_name,"
	         " EXISTS (SELECT 1 FROM orchestrator_queue y WHERE y.instance_id=f.instance_id AND"
	         " substr(y.work_item,1,22)='{\"StartOrchestration\":')"
	         " FROM f LEFT JOIN instances i ON i.instance_id=f.instance_id LEFT JOIN executions e ON"
	         " e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id WHERE f.flags <> 0"
	         " ORDER BY f.id",
	         has_attempts ? ORCH_ROWS("q.attempt_count") : ORCH_ROWS("0"));
	for (int q = 0; q < 2; q++) {
		if (q == 1)
			snprintf(
			        sql, sizeof sql,
			        "WITH c AS (%s), f AS (SELECT c.*, (attempts >= ?4)"
			        " | (CASE WHEN st=3 AND lu <= ?1 - ?2 THEN 2 ELSE 0 END)"
			        " | (CASE WHEN st<>1 AND max(vis, CASE WHEN st=3 THEN lu ELSE vis END) <= ?1 - ?2 THEN "
			        "8 ELSE 0 END)"
			        " AS flags FROM c)"
			        " SELECT 1, f.id, f.instance_id, f.work_item, f.vis, f.lu, f.attempts, f.st, f.flags, "
			        "f.created,"
			        " i.instance_id IS NOT NULL, e.status, i.orchestration_name, 0"
			        " FROM f LEFT JOIN instances i ON i.instance_id=f.instance_id LEFT JOIN executions e ON"
			        " e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id WHERE f.flags "
			        "<> 0"
			        " ORDER BY f.id",
			        has_attempts ? WORKER_ROWS("w.attempt_count") : WORKER_ROWS("0"));
		sqlite3_stmt *st = sq_stmt(s, sql);
		if (st == NULL)
			return sq_stmt_err(s);
		sqlite3_bind_int64(st, 1, p->now);
		sqlite3_bind_int64(st, 2, p->stall_ms);
		if (q == 0)
			sqlite3_bind_int64(st, 3, p->timer_overdue_ms);
		sqlite3_bind_int64(st, 4, p->near_poison);
		int r;
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			static const int lock_states[] = {LOCK_FREE, LOCK_IN_PROGRESS, LOCK_WAITING, LOCK_EXPIRED};
			int lk = sqlite3_column_int(st, 7);
			store_queue_item it = {
			        .flags = (unsigned)sqlite3_column_int(st, 8),
			        .created_at = sq_col_time(st, 9),
			        .worker = sqlite3_column_int(st, 0),
			        .id = sqlite3_column_int64(st, 1),
			        .instance_id = sq_col_text(st, 2),
			        .work_item = sq_col_text(st, 3),
			        .visible_at = sq_col_time(st, 4),
			        .locked_until = sq_col_time(st, 5),
			        .attempt_count = sqlite3_column_int64(st, 6),
			        .lock_state = lk >= 0 && lk <= 3 ? lock_states[lk] : LOCK_FREE,
			        .instance_exists = sqlite3_column_int(st, 10),
			        .status = sq_col_text(st, 11),
			        .orchestration_name = sq_col_text(st, 12),
			        .start_queued = sqlite3_column_int(st, 13),
			};
			if (it.instance_id == NULL)
				it.instance_id = "";
			if (it.work_item == NULL)
				it.work_item = "";
			int x = cb(ud, &it);
			if (x != 0) {
				sq_done(st);
				return x > 0 ? DUROX_OK : x;
			}
		}
		sq_done(st);
		if (r != SQLITE_DONE)
			return sq_fail(s, r, q ? "reading the worker queue" : "reading the orchestrator queue");
	}
	return DUROX_OK;
}

int sq_expired_locks(store *base, int64_t before, store_lock_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	sqlite3_stmt *st = sq_stmt(s, "SELECT l.instance_id, durox_ms(l.locked_until), durox_ms(l.locked_at),"
	                              " e.status, i.orchestration_name FROM instance_locks l"
	                              " LEFT JOIN instances i ON i.instance_id=l.instance_id LEFT JOIN executions e ON"
	                              " e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id"
	                              " WHERE durox_ms(l.locked_until) <= ?1 ORDER BY l.instance_id");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, before);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		store_lock_row l = {sq_col_text(st, 0), sq_col_time(st, 1), sq_col_time(st, 2), sq_col_text(st, 3),
		                    sq_col_text(st, 4)};
		if (l.instance_id == NULL)
			continue;
		int x = cb(ud, &l);
		if (x != 0) {
			sq_done(st);
			return x > 0 ? DUROX_OK : x;
		}
	}
	sq_done(st);
	return r == SQLITE_DONE ? DUROX_OK : sq_fail(s, r, "reading instance locks");
}

int sq_idle_running(store *base, int64_t older_than, store_idle_cb cb, void *ud)
{
	sqlite_store *s = (sqlite_store *)base;
	/* the candidates, sorted by id, drive an index walk of their history (one statement) */
	sqlite3_stmt *st = sq_stmt(
	        s,
	        "WITH c AS MATERIALIZED (SELECT i.instance_id AS id, i.orchestration_name AS name,"
	        " i.current_execution_id AS ex, (SELECT durox_event_ts(h.event_data, h.created_at) FROM history h WHERE"
	        " h.instance_id=i.instance_id AND h.execution_id=i.current_execution_id ORDER BY h.event_id DESC LIMIT "
	        "1)"
	        " AS last FROM executions e CROSS JOIN instances i ON i.instance_id=e.instance_id AND"
	        " i.current_execution_id=e.execution_id WHERE e.status='Running')"
	        " SELECT c.id, c.name, c.ex, c.last, h.execution_id, h.event_id, h.event_type, h.event_data,"
	        " durox_ms(h.created_at) FROM (SELECT * FROM c WHERE last < ?1 ORDER BY id) c CROSS JOIN history h"
	        " ON h.instance_id=c.id AND h.execution_id=c.ex");
	if (st == NULL)
		return sq_stmt_err(s);
	sqlite3_bind_int64(st, 1, older_than);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		store_idle_row row = {sq_col_text(st, 0), sq_col_text(st, 1), (uint64_t)sqlite3_column_int64(st, 2),
		                      sqlite3_column_int64(st, 3)};
		store_event_row ev = {(uint64_t)sqlite3_column_int64(st, 4),
		                      (uint64_t)sqlite3_column_int64(st, 5),
		                      sq_col_text(st, 6),
		                      sq_col_text(st, 7),
		                      (size_t)sqlite3_column_bytes(st, 7),
		                      sq_col_time(st, 8)};
		if (row.instance_id == NULL)
			continue;
		if (ev.data == NULL) {
			ev.data = "";
			ev.data_len = 0;
		}
		int x = cb(ud, &row, &ev);
		if (x != 0) {
			sq_done(st);
			return x > 0 ? DUROX_OK : x;
		}
	}
	sq_done(st);
	return r == SQLITE_DONE ? DUROX_OK : sq_fail(s, r, "reading running instances");
}
