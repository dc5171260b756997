#!/usr/bin/env bash
# make_store.sh SEED_DB OUT_DB MIN_INSTANCES - derives a large store for benchmarks from a
# store the real Duroxide runtime wrote: every instance (and its executions, history and queue
# rows) is replicated with a new id ("<id>~<copy>") until OUT_DB holds at least MIN_INSTANCES.
# Copies are shifted back in time by <copy> minutes so orders and time filters stay
# meaningful; ids inside the JSON of events and work items are rewritten consistently
# (an instance's own id and its parent's). Instances with payloads over 64 KiB are not
# copied. Nothing is invented: every row is a copy of a row Duroxide wrote.
set -euo pipefail
seed=${1:?usage: make_store.sh SEED_DB OUT_DB MIN_INSTANCES}
out=${2:?usage: make_store.sh SEED_DB OUT_DB MIN_INSTANCES}
want=${3:?usage: make_store.sh SEED_DB OUT_DB MIN_INSTANCES}
[ -e "$out" ] && { echo "make_store: $out exists" >&2; exit 1; }
# fold the seed's WAL in first: the .db file alone may not hold the rows
sqlite3 "$seed" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
per=$(sqlite3 "$seed" "SELECT count(*) FROM instances WHERE instance_id NOT IN
        (SELECT instance_id FROM history WHERE length(event_data) > 65536)")
copies=$(( (want + per - 1) / per ))
echo "make_store: $per seed instances x $copies copies" >&2
cp "$seed" "$out"
sqlite3 "$out" >/dev/null <<SQL
PRAGMA journal_mode=WAL;
PRAGMA synchronous=OFF;
PRAGMA foreign_keys=OFF;
CREATE TEMP TABLE seed AS
  SELECT instance_id, parent_instance_id FROM instances
  WHERE instance_id NOT IN (SELECT instance_id FROM history WHERE length(event_data) > 65536);
CREATE TEMP TABLE k AS WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < $copies) SELECT n FROM c;
-- rewrite an instance's own id and its parent's id inside JSON text
CREATE TEMP VIEW ids AS SELECT s.instance_id AS id, s.parent_instance_id AS parent, k.n AS n FROM seed s, k;
BEGIN;
INSERT INTO instances (instance_id, orchestration_name, orchestration_version, current_execution_id, created_at,
                       updated_at, parent_instance_id, custom_status, custom_status_version)
  SELECT x.id || '~' || x.n, i.orchestration_name, i.orchestration_version, i.current_execution_id,
         datetime(i.created_at, printf('-%d minutes', x.n)), datetime(i.updated_at, printf('-%d minutes', x.n)),
         CASE WHEN i.parent_instance_id IS NULL THEN NULL ELSE i.parent_instance_id || '~' || x.n END,
         i.custom_status, i.custom_status_version
  FROM ids x JOIN instances i ON i.instance_id = x.id;
INSERT INTO executions (instance_id, execution_id, status, output, started_at, completed_at,
                        duroxide_version_major, duroxide_version_minor, duroxide_version_patch)
  SELECT x.id || '~' || x.n, e.execution_id, e.status, e.output, datetime(e.started_at, printf('-%d minutes', x.n)),
         CASE WHEN e.completed_at IS NULL THEN NULL ELSE e.completed_at - x.n * 60000 END,
         e.duroxide_version_major, e.duroxide_version_minor, e.duroxide_version_patch
  FROM ids x JOIN executions e ON e.instance_id = x.id;
INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data, created_at)
  SELECT x.id || '~' || x.n, h.execution_id, h.event_id, h.event_type,
         CASE WHEN x.parent IS NULL THEN replace(h.event_data, json_quote(x.id), json_quote(x.id || '~' || x.n))
              ELSE replace(replace(h.event_data, json_quote(x.id), json_quote(x.id || '~' || x.n)),
                           json_quote(x.parent), json_quote(x.parent || '~' || x.n)) END,
         datetime(h.created_at, printf('-%d minutes', x.n))
  FROM ids x JOIN history h ON h.instance_id = x.id;
INSERT INTO orchestrator_queue (instance_id, work_item, visible_at, lock_token, locked_until, created_at, attempt_count)
  SELECT x.id || '~' || x.n, replace(q.work_item, json_quote(x.id), json_quote(x.id || '~' || x.n)), q.visible_at,
         q.lock_token, q.locked_until, q.created_at, q.attempt_count
  FROM ids x JOIN orchestrator_queue q ON q.instance_id = x.id;
INSERT INTO worker_queue (work_item, visible_at, lock_token, locked_until, created_at, attempt_count, instance_id,
                          execution_id, activity_id, session_id, tag)
  SELECT replace(w.work_item, json_quote(x.id), json_quote(x.id || '~' || x.n)), w.visible_at, w.lock_token,
         w.locked_until, w.created_at, w.attempt_count, x.id || '~' || x.n, w.execution_id, w.activity_id,
         w.session_id, w.tag
  FROM ids x JOIN worker_queue w ON w.instance_id = x.id;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
echo "make_store: $(sqlite3 "$out" 'SELECT count(*) FROM instances') instances, $(sqlite3 "$out" 'SELECT count(*) FROM history') history rows in $out" >&2
