/*
 * postgres_ops.c - the PostgreSQL provider's writes (store/ops.h): short transactions, the
 * instance checks made inside them, and Duroxide's own stored procedures called exactly as
 * Duroxide's PostgreSQL client calls them: enqueue_orchestrator_work(id, work_item,
 * visible_at, NULL, NULL, NULL) for every queued message, delete_instances_atomic(ids,
 * force) for a purge, prune_executions(id, keep_last, completed_before_ms) for a prune.
 * Lists of ids are one text[] parameter, so every statement is prepared once whatever the
 * number of ids. Used by the engine (src/engine/ops*.c) through pg_ops_vtable; the job
 * journal is in postgres_jobs.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/ops.h"
#include "store/postgres_internal.h"
#include "store/postgres_jobs.h"
#include "util/json.h"

/* A work item that starts an orchestration: Duroxide's client writes compact serde JSON, the
 * runtime's own acks jsonb text ({"StartOrchestration": {...}). */
#define IS_START(col) "left(" col ",24) ~ '^\\{ ?\"StartOrchestration\"'"
#define IS_START_TEXT(w)                                                                                               \
	(strncmp((w), "{\"StartOrchestration\"", 21) == 0 || strncmp((w), "{ \"StartOrchestration\"", 22) == 0)

/* ---- transactions ----------------------------------------------------------------------- */

static int pg_begin(store *base)
{
	pg_store *s = (pg_store *)base;
	if (s->in_txn)
		return store_fail(base, DUROX_EINVALID, "a write transaction is already open");
	int rc = pq_exec_simple(s, "BEGIN", "starting a write transaction");
	if (rc == DUROX_OK)
		s->in_txn = 1;
	return rc;
}

static int pg_commit(store *base)
{
	pg_store *s = (pg_store *)base;
	int rc = pq_exec_simple(s, "COMMIT", "committing");
	if (rc != DUROX_OK && s->primary.c != NULL && PQtransactionStatus(s->primary.c) != PQTRANS_IDLE)
		PQclear(PQexec(s->primary.c, "ROLLBACK"));
	s->in_txn = 0;
	return rc;
}

static void pg_rollback(store *base)
{
	pg_store *s = (pg_store *)base;
	/* whatever the deferred writes say now is rolled back with them; the message of the
	 * failure that led here stays */
	char saved[sizeof s->base.err];
	memcpy(saved, s->base.err, sizeof saved);
	pq_flush(s);
	memcpy(s->base.err, saved, sizeof saved);
	pq_cache_clear(s);
	if (s->primary.c != NULL && PQstatus(s->primary.c) == CONNECTION_OK &&
	    PQtransactionStatus(s->primary.c) != PQTRANS_IDLE)
		PQclear(PQexec(s->primary.c, "ROLLBACK"));
	s->in_txn = 0;
}

/* ---- reads inside write transactions --------------------------------------------------- */

struct state_ud {
	pg_store *s;
	store_instance_state *out;
	const char *items; /* JSON array of the instance's queued work items, in queue order */
	int oom;
};

static int state_row(void *ud, const PGresult *r)
{
	struct state_ud *u = ud;
	store_instance_state *out = u->out;
	out->exists = pq_bool(r, 4);
	if (out->exists) {
		out->current_execution = (uint64_t)pq_int(r, 0);
		out->status = pq_status_of(pq_text(r, 1));
		out->is_child = pq_bool(r, 2);
		out->locked = pq_bool(r, 3);
	}
	/* keep the queued items for the queued_items call that follows in the engine's checks */
	const char *items = pq_text(r, 5);
	arena a;
	arena_init(&a);
	json *arr = items != NULL ? json_parse(&a, items, strlen(items), NULL, 0) : NULL;
	const json *first = arr != NULL && arr->type == JSON_ARRAY ? arr->child : NULL;
	size_t n = 0;
	for (const json *v = first; v != NULL; v = v->next)
		n++;
	pg_store *s = u->s;
	pq_cache_clear(s);
	s->qc_items = calloc(n ? n : 1, sizeof *s->qc_items);
	s->qc_id = strdup(pq_text(r, 6) ? pq_text(r, 6) : "");
	if (s->qc_items == NULL || s->qc_id == NULL) {
		u->oom = 1;
	} else {
		for (const json *v = first; v != NULL; v = v->next) {
			const char *w = v->type == JSON_STRING ? v->str : NULL;
			if ((s->qc_items[s->qc_n] = strdup(w != NULL ? w : "")) == NULL) {
				u->oom = 1;
				break;
			}
			s->qc_n++;
			if (!out->exists && IS_START_TEXT(s->qc_items[s->qc_n - 1]))
				out->pending_start = 1;
		}
	}
	arena_release(&a);
	if (u->oom)
		pq_cache_clear(s);
	return 1;
}

static int pg_instance_state(store *base, const char *instance_id, int64_t now_ms, store_instance_state *out)
{
	pg_store *s = (pg_store *)base;
	memset(out, 0, sizeof *out);
	out->status = DUROX_STATUS_NOT_FOUND;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, instance_id);
	pqp_int(&p, now_ms);
	struct state_ud u = {s, out, NULL, 0};
	/* one round trip: the instance, its current execution, its lock, and what is queued for it
	 * (the engine looks at that next; a start queued for an instance the runtime has not
	 * created yet means it exists) */
	int rc =
	        pq_query(s, PQ_PRIMARY,
	                 s->base.info.has_parent_instance
	                         ? "SELECT i.current_execution_id, e.status, i.parent_instance_id IS NOT NULL,"
	                           " EXISTS(SELECT 1 FROM instance_locks l WHERE l.instance_id=i.instance_id AND"
	                           " l.locked_until>$2::int8), i.instance_id IS NOT NULL, (SELECT json_agg(q.work_item"
	                           " ORDER BY q.id) FROM orchestrator_queue q WHERE q.instance_id=$1), $1::text"
	                           " FROM (SELECT 1) one LEFT JOIN instances i ON i.instance_id=$1 LEFT JOIN executions"
	                           " e ON e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id"
	                         : "SELECT i.current_execution_id, e.status, false,"
	                           " EXISTS(SELECT 1 FROM instance_locks l WHERE l.instance_id=i.instance_id AND"
	                           " l.locked_until>$2::int8), i.instance_id IS NOT NULL, (SELECT json_agg(q.work_item"
	                           " ORDER BY q.id) FROM orchestrator_queue q WHERE q.instance_id=$1), $1::text"
	                           " FROM (SELECT 1) one LEFT JOIN instances i ON i.instance_id=$1 LEFT JOIN executions"
	                           " e ON e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id",
	                 &p, state_row, &u, NULL, "reading an instance");
	pqp_free(&p);
	if (rc == DUROX_OK && u.oom)
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	if (rc == DUROX_OK && !out->exists && out->pending_start)
		out->status = DUROX_STATUS_RUNNING;
	return rc;
}

struct item_ud {
	store_item_cb cb;
	void *ud;
};

static int item_row(void *ud, const PGresult *r)
{
	struct item_ud *u = ud;
	const char *w = pq_text(r, 0);
	return u->cb(u->ud, w != NULL ? w : "");
}

static int pg_queued_items(store *base, const char *instance_id, store_item_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	if (s->qc_id != NULL && strcmp(s->qc_id, instance_id) == 0) {
		/* read by instance_state in this transaction, nothing written since */
		for (size_t k = 0; k < s->qc_n; k++) {
			int x = cb(ud, s->qc_items[k]);
			if (x != 0)
				return x > 0 ? DUROX_OK : x;
		}
		return DUROX_OK;
	}
	pqp p;
	pqp_init(&p);
	pqp_text(&p, instance_id);
	struct item_ud u = {cb, ud};
	int rc = pq_query(s, PQ_PRIMARY, "SELECT work_item FROM orchestrator_queue WHERE instance_id=$1 ORDER BY id",
	                  &p, item_row, &u, NULL, "reading the orchestrator queue");
	pqp_free(&p);
	return rc;
}

/* A procedure the store lacks: the write cannot be made the way Duroxide makes it. */
static int missing_proc(pg_store *s, const char *proc, const char *migration)
{
	return store_fail(&s->base, DUROX_EUNSUPPORTED,
	                  "schema '%s' lacks Duroxide's procedure %s (migration %s); start a current Duroxide runtime "
	                  "on the store once to migrate it",
	                  s->schema, proc, migration);
}

/* Runs a statement with @R. naming the runtime's schema. */
static int run_rt(pg_store *s, int flags, const char *tmpl, const pqp *p, pq_row_cb cb, void *ud, const char *what)
{
	char *sql = pq_ours(s, tmpl);
	if (sql == NULL)
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	int rc = pq_query(s, flags, sql, p, cb, ud, NULL, what);
	free(sql);
	return rc;
}

static int pg_enqueue(store *base, const char *instance_id, const char *work_item, int64_t visible_at_ms)
{
	pg_store *s = (pg_store *)base;
	if (!s->has_enqueue)
		return missing_proc(s, "enqueue_orchestrator_work(text, text, timestamptz, text, text, bigint)",
		                    "0006");
	/* As Duroxide's PostgreSQL client does (provider.rs enqueue_for_orchestrator): the visible
	 * time is the client's clock in ms, the last three arguments NULL (created_at = NOW()). */
	pqp p;
	pqp_init(&p);
	pqp_text(&p, instance_id);
	pqp_text(&p, work_item);
	pqp_int(&p, visible_at_ms);
	char *sql =
	        pq_ours(s, "SELECT @R.enqueue_orchestrator_work($1::text, $2::text, to_timestamp($3::int8 / 1000.0),"
	                   " NULL, NULL, NULL)");
	int rc = sql == NULL ? store_fail(base, DUROX_ENOMEM, "out of memory")
	                     : pq_defer(s, sql, &p, "queueing a work item", NULL);
	free(sql);
	pqp_free(&p);
	return rc;
}

struct tree_ud {
	store_tree_cb cb;
	void *ud;
};

static int tree_row(void *ud, const PGresult *r)
{
	struct tree_ud *u = ud;
	store_tree_row row = {pq_text(r, 0), pq_status_of(pq_text(r, 1)), pq_bool(r, 2)};
	if (row.instance_id == NULL)
		return 0;
	return u->cb(u->ud, &row);
}

static int pg_tree(store *base, const char *root, int64_t now_ms, store_tree_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	pqp p;
	pqp_init(&p);
	pqp_text(&p, root);
	pqp_int(&p, now_ms);
	struct tree_ud u = {cb, ud};
	/* the path stops a damaged store's parent cycle */
	int rc = pq_query(
	        s, PQ_PRIMARY,
	        s->base.info.has_parent_instance
	                ? "WITH RECURSIVE t(id, depth, path) AS (SELECT $1::text, 0, ARRAY[$1::text] UNION ALL"
	                  " SELECT c.instance_id, t.depth + 1, t.path || c.instance_id FROM instances c JOIN t ON"
	                  " c.parent_instance_id=t.id WHERE NOT c.instance_id = ANY(t.path))"
	                  " SELECT t.id, COALESCE(e.status,'Unknown'), EXISTS(SELECT 1 FROM instance_locks l WHERE"
	                  " l.instance_id=t.id AND l.locked_until>$2::int8) FROM t JOIN instances i ON "
	                  "i.instance_id=t.id"
	                  " LEFT JOIN executions e ON e.instance_id=i.instance_id AND "
	                  "e.execution_id=i.current_execution_id"
	                  " ORDER BY t.depth, t.id COLLATE \"C\""
	                : "SELECT i.instance_id, COALESCE(e.status,'Unknown'), EXISTS(SELECT 1 FROM instance_locks l"
	                  " WHERE l.instance_id=i.instance_id AND l.locked_until>$2::int8) FROM instances i LEFT JOIN"
	                  " executions e ON e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id"
	                  " WHERE i.instance_id=$1",
	        &p, tree_row, &u, NULL, "reading an instance tree");
	pqp_free(&p);
	return rc;
}

struct counts_ud {
	store_delete_counts *out;
	int prune;
};

static int counts_row(void *ud, const PGresult *r)
{
	struct counts_ud *u = ud;
	if (u->prune) {
		u->out->executions = (uint64_t)pq_int(r, 1);
		u->out->events = (uint64_t)pq_int(r, 2);
	} else {
		u->out->instances = (uint64_t)pq_int(r, 0);
		u->out->executions = (uint64_t)pq_int(r, 1);
		u->out->events = (uint64_t)pq_int(r, 2);
		u->out->queue_messages = (uint64_t)pq_int(r, 3);
	}
	return 1;
}

static int pg_delete_instances(store *base, const char *const *ids, size_t n, store_delete_counts *out)
{
	pg_store *s = (pg_store *)base;
	memset(out, 0, sizeof *out);
	if (n == 0)
		return DUROX_OK;
	if (!s->has_delete)
		return missing_proc(s, "delete_instances_atomic(text[], boolean)", "0010");
	char *arr = pg_text_array(ids, n);
	if (arr == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	/* Duroxide's delete_instance(id, force) calls delete_instances_atomic(tree ids, force). The
	 * engine has already refused a running tree unless forced (inside this transaction), so
	 * force is TRUE here; the procedure still locks the rows, checks for orphans and deletes
	 * history, executions, both queues, locks, KV and the instances, returning its row counts. */
	pqp p;
	pqp_init(&p);
	pqp_text(&p, arr);
	struct counts_ud u = {out, 0};
	int rc = run_rt(s, PQ_WRITE,
	                "SELECT instances_deleted, executions_deleted, events_deleted, queue_messages_deleted"
	                " FROM @R.delete_instances_atomic($1::text[], TRUE)",
	                &p, counts_row, &u, "deleting an instance");
	pqp_free(&p);
	free(arr);
	s->own_deletes++; /* the change feed checks for deleted rows on its next round */
	return rc;
}

static int pg_prune(store *base, const char *instance_id, int has_keep_last, uint32_t keep_last,
                    int64_t completed_before, store_delete_counts *out)
{
	pg_store *s = (pg_store *)base;
	memset(out, 0, sizeof *out);
	if (!s->has_prune)
		return missing_proc(s, "prune_executions(text, integer, bigint)", "0010");
	pqp p;
	pqp_init(&p);
	pqp_text(&p, instance_id);
	if (has_keep_last)
		pqp_int(&p, keep_last);
	else
		pqp_null(&p);
	if (completed_before != DUROX_NO_TIME)
		pqp_int(&p, completed_before);
	else
		pqp_null(&p);
	struct counts_ud u = {out, 1};
	int rc = run_rt(s, PQ_WRITE,
	                "SELECT instances_processed, executions_deleted, events_deleted"
	                " FROM @R.prune_executions($1::text, $2::int4, $3::int8)",
	                &p, counts_row, &u, "pruning executions");
	pqp_free(&p);
	s->own_deletes++; /* the change feed checks for deleted rows on its next round */
	return rc;
}

struct status_ud {
	store_status_cb cb;
	void *ud;
};

static int status_row(void *ud, const PGresult *r)
{
	struct status_ud *u = ud;
	store_status_row row = {0};
	row.instance_id = pq_text(r, 0);
	row.exists = pq_bool(r, 1);
	row.pending_start = pq_bool(r, 5);
	row.status = row.exists          ? pq_status_of(pq_text(r, 2))
	             : row.pending_start ? DUROX_STATUS_RUNNING
	                                 : DUROX_STATUS_NOT_FOUND;
	row.output = pq_text(r, 3);
	const char *fk = pq_text(r, 4);
	row.failure_kind = fk != NULL ? durox_failure_kind_parse(fk) : DUROX_FAILURE_NONE;
	if (row.failure_kind < 0)
		row.failure_kind = DUROX_FAILURE_APPLICATION;
	if (row.instance_id == NULL)
		return 0;
	return u->cb(u->ud, &row);
}

static int pg_statuses(store *base, const char *const *ids, size_t n, store_status_cb cb, void *ud)
{
	pg_store *s = (pg_store *)base;
	if (n == 0)
		return DUROX_OK;
	char *arr = pg_text_array(ids, n);
	if (arr == NULL)
		return store_fail(base, DUROX_ENOMEM, "out of memory");
	buf sql;
	buf_init(&sql);
	buf_adds(&sql, "SELECT t.id, i.instance_id IS NOT NULL, COALESCE(e.status,'Unknown'), e.output,"
	               " CASE WHEN e.status='Failed' THEN ");
	buf_adds(&sql, pg_failure_kind_sql);
	buf_adds(&sql,
	         " END, CASE WHEN i.instance_id IS NULL THEN EXISTS(SELECT 1 FROM orchestrator_queue q WHERE"
	         " q.instance_id=t.id AND " IS_START("q.work_item") ") ELSE false END"
	                                                            " FROM unnest($1::text[]) AS t(id) LEFT JOIN "
	                                                            "instances i ON i.instance_id=t.id LEFT JOIN"
	                                                            " executions e ON e.instance_id=i.instance_id AND "
	                                                            "e.execution_id=i.current_execution_id");
	int rc;
	if (buf_oom(&sql)) {
		rc = store_fail(base, DUROX_ENOMEM, "out of memory");
	} else {
		pqp p;
		pqp_init(&p);
		pqp_text(&p, arr);
		struct status_ud u = {cb, ud};
		rc = pq_query(s, 0, buf_str(&sql), &p, status_row, &u, NULL, "reading instance statuses");
		pqp_free(&p);
	}
	buf_free(&sql);
	free(arr);
	return rc;
}

const store_ops_vtable pg_ops_vtable = {
        pg_begin,   pg_commit,           pg_rollback, pg_instance_state, pg_queued_items, pg_enqueue,
        pg_tree,    pg_delete_instances, pg_prune,    pg_statuses,       pgj_create,      pgj_exists,
        pgj_insert, pgj_add_targets,     pgj_update,  pgj_list,          pgj_targets,     pgj_set_target,
        200,
};
