#!/usr/bin/env bash
# make_pg_store.sh ADMIN_URL SEED_DB OUT_DB MIN_INSTANCES - the PostgreSQL twin of
# make_store.sh: derives database OUT_DB (schema dx) of the server ADMIN_URL names from
# database SEED_DB, a store the real Duroxide runtime wrote (schema dx), by replicating every
# instance (its executions, history and queue rows) with a new id "<id>~<copy>" until OUT_DB
# holds at least MIN_INSTANCES. Copies are shifted back in time by <copy> minutes; ids inside
# the JSON of events and work items are rewritten consistently (an instance's own id and its
# parent's). Instances with payloads over 64 KiB are not copied. Nothing is invented: every
# row is a copy of a row Duroxide wrote. ADMIN_URL: a libpq URL of the server's postgres
# database (superuser).
set -euo pipefail
admin=${1:?usage: make_pg_store.sh ADMIN_URL SEED_DB OUT_DB MIN_INSTANCES}
seed=${2:?usage: make_pg_store.sh ADMIN_URL SEED_DB OUT_DB MIN_INSTANCES}
out=${3:?usage: make_pg_store.sh ADMIN_URL SEED_DB OUT_DB MIN_INSTANCES}
want=${4:?usage: make_pg_store.sh ADMIN_URL SEED_DB OUT_DB MIN_INSTANCES}
db_url() { echo "$admin" | sed "s|/postgres?|/$1?|; s|/postgres\$|/$1|"; }
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
exists=$(q "$admin" -c "SELECT count(*) FROM pg_database WHERE datname = '$out'")
[ "$exists" = 0 ] || { echo "make_pg_store: database $out exists" >&2; exit 1; }
per=$(q "$(db_url "$seed")" -c "SELECT count(*) FROM dx.instances WHERE instance_id NOT IN
        (SELECT instance_id FROM dx.history WHERE length(event_data) > 65536)")
copies=$(( (want + per - 1) / per ))
echo "make_pg_store: $per seed instances x $copies copies" >&2
q "$admin" -c "CREATE DATABASE $out TEMPLATE $seed"
q "$(db_url "$out")" <<SQL
SET search_path TO dx;
SET synchronous_commit = off;
CREATE TEMP TABLE seed AS
  SELECT instance_id, parent_instance_id FROM instances
  WHERE instance_id NOT IN (SELECT instance_id FROM history WHERE length(event_data) > 65536);
CREATE TEMP TABLE ids AS SELECT s.instance_id AS id, s.parent_instance_id AS parent, n,
  to_json(s.instance_id)::text AS qid, to_json(s.instance_id || '~' || n)::text AS qnew,
  to_json(s.parent_instance_id)::text AS qparent, to_json(s.parent_instance_id || '~' || n)::text AS qnewparent
  FROM seed s, generate_series(1, $copies) AS n;
BEGIN;
INSERT INTO instances (instance_id, orchestration_name, orchestration_version, current_execution_id, created_at,
                       updated_at, parent_instance_id, custom_status, custom_status_version)
  SELECT x.id || '~' || x.n, i.orchestration_name, i.orchestration_version, i.current_execution_id,
         i.created_at - make_interval(mins => x.n), i.updated_at - make_interval(mins => x.n),
         CASE WHEN i.parent_instance_id IS NULL THEN NULL ELSE i.parent_instance_id || '~' || x.n END,
         i.custom_status, i.custom_status_version
  FROM ids x JOIN instances i ON i.instance_id = x.id;
INSERT INTO executions (instance_id, execution_id, status, output, started_at, completed_at,
                        duroxide_version_major, duroxide_version_minor, duroxide_version_patch)
  SELECT x.id || '~' || x.n, e.execution_id, e.status, e.output, e.started_at - make_interval(mins => x.n),
         e.completed_at - make_interval(mins => x.n),
         e.duroxide_version_major, e.duroxide_version_minor, e.duroxide_version_patch
  FROM ids x JOIN executions e ON e.instance_id = x.id;
INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data, created_at)
  SELECT x.id || '~' || x.n, h.execution_id, h.event_id, h.event_type,
         CASE WHEN x.parent IS NULL THEN replace(h.event_data, x.qid, x.qnew)
              ELSE replace(replace(h.event_data, x.qid, x.qnew), x.qparent, x.qnewparent) END,
         h.created_at - make_interval(mins => x.n)
  FROM ids x JOIN history h ON h.instance_id = x.id;
INSERT INTO orchestrator_queue (instance_id, work_item, visible_at, lock_token, locked_until, created_at, attempt_count)
  SELECT x.id || '~' || x.n, replace(q.work_item, x.qid, x.qnew), q.visible_at, q.lock_token, q.locked_until,
         q.created_at, q.attempt_count
  FROM ids x JOIN orchestrator_queue q ON q.instance_id = x.id;
INSERT INTO worker_queue (work_item, visible_at, lock_token, locked_until, created_at, attempt_count, instance_id,
                          execution_id, activity_id, session_id, tag)
  SELECT replace(w.work_item, x.qid, x.qnew), w.visible_at, w.lock_token, w.locked_until, w.created_at,
         w.attempt_count, x.id || '~' || x.n, w.execution_id, w.activity_id, w.session_id, w.tag
  FROM ids x JOIN worker_queue w ON w.instance_id = x.id;
INSERT INTO kv_store (instance_id, key, value, execution_id, last_updated_at_ms)
  SELECT x.id || '~' || x.n, k.key, k.value, k.execution_id, k.last_updated_at_ms
  FROM ids x JOIN kv_store k ON k.instance_id = x.id;
COMMIT;
VACUUM ANALYZE;
SQL
echo "make_pg_store: $(q "$(db_url "$out")" -c 'SELECT count(*) FROM dx.instances') instances," \
  "$(q "$(db_url "$out")" -c 'SELECT count(*) FROM dx.history') history rows in database $out" >&2
