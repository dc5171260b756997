#!/usr/bin/env bash
# make_busy_store.sh DIR - a store caught mid-flight, for the metrics tests: a --demo store
# on which the real runtime (live.js) is busy with newly started work (activities, short and
# long timers, timers due while it is blocked, slow activities holding worker locks, event waits, an unregistered
# orchestration retried with backoff, a turn that holds its instance lock, an event raised to an instance that does not exist)
# when it is killed (SIGKILL: locks, in-flight queue rows and stale lock tokens stay as a
# crash leaves them). Then Duroxide's own answers on it (busy-oracle.json). Reuses a
# complete set; rebuilds a partial one. Everything in it was written by the real runtime.
# With PGDIR (tests/pg_server.sh), the same on PostgreSQL: database durox_busy (schema dx) of
# that server, files DIR/pg-busy*.
set -euo pipefail
dir=${1:?usage: make_busy_store.sh DIR [PGDIR]}
pgdir=${2:-}
here="$(cd "$(dirname "$0")" && pwd)"
h="$here/harness"
mkdir -p "$dir"
if [ -n "$pgdir" ]; then
  admin=$("$here/pg_server.sh" url "$pgdir")
  port=$(cat "$pgdir/port")
  db="postgresql://postgres@/durox_busy?host=$pgdir&port=$port&schema=dx"
  p="$dir/pg-busy"
  exists=$(psql -X -A -t "$admin" -c "SELECT count(*) FROM pg_database WHERE datname='durox_busy'")
  [ "$exists" = 1 ] || rm -f "$p-oracle.json" "$p.info.json"
  grep -q "port=$port" "$p.manifest.json" 2>/dev/null || rm -f "$p-oracle.json" "$p.info.json"
else
  db="$dir/busy.db"
  p="$dir/busy"
fi
if [ -s "$p-oracle.json" ] && [ -s "$p.info.json" ]; then
  echo "busy fixture: reusing $db"
  exit 0
fi
# (at most 3 attempts: Duroxide 0.1.29 can fail an instance on its own under lock
# contention, and the generator then reports it; see docs/operations.md)
for attempt in 1 2 3; do
  rm -f "$p-oracle.json" "$p.info.json"
  if [ -n "$pgdir" ]; then
    psql -X -q -v ON_ERROR_STOP=1 "$admin" -c "DROP DATABASE IF EXISTS durox_busy WITH (FORCE)" \
      -c "CREATE DATABASE durox_busy"
    set -- --manifest "$p.manifest.json"
  else
    rm -f "$db" "$db-wal" "$db-shm" "$db.manifest.json"
    set --
  fi
  if node "$h/scenarios.js" create "$db" --demo 40 --seed 7 "$@" >/dev/null 2>"$p.scenarios.log"; then
    break
  fi
  if [ "$attempt" = 3 ]; then
    cat "$p.scenarios.log" >&2
    exit 1
  fi
  echo "busy fixture: the seed store did not settle (attempt $attempt); making it again" >&2
done

starts="$p-starts.jsonl"
: >"$starts"
for i in $(seq 1 40); do echo "{\"id\":\"busy-seq-$i\",\"name\":\"Sequence\",\"input\":\"{\\\"value\\\":$i}\"}" >>"$starts"; done
for i in $(seq 1 12); do echo "{\"id\":\"busy-slow-$i\",\"name\":\"SlowActivity\",\"input\":\"{\\\"ms\\\":600000}\"}" >>"$starts"; done
for i in $(seq 1 15); do echo "{\"id\":\"busy-nap-$i\",\"name\":\"Sleeper\",\"input\":\"{\\\"ms\\\":2500}\"}" >>"$starts"; done
for i in $(seq 1 10); do echo "{\"id\":\"busy-sleep-$i\",\"name\":\"Sleeper\",\"input\":\"{\\\"ms\\\":3600000}\"}" >>"$starts"; done
# timers that fall due while the runtime is blocked (below): overdue in the snapshot
for i in $(seq 1 6); do echo "{\"id\":\"busy-due-$i\",\"name\":\"Sleeper\",\"input\":\"{\\\"ms\\\":4200}\"}" >>"$starts"; done
for i in $(seq 1 15); do echo "{\"id\":\"busy-wait-$i\",\"name\":\"WaitApprove\",\"input\":\"null\"}" >>"$starts"; done
for i in $(seq 1 3); do echo "{\"id\":\"busy-unreg-$i\",\"name\":\"NoSuchOrchestration\",\"input\":\"null\"}" >>"$starts"; done
# a turn that runs for 10 s, started last: the kill catches its instance lock (it also blocks
# node, so the runtime makes no progress after it starts)
turn="$p-turn.jsonl"
echo '{"id":"busy-turn-1","name":"SlowTurn","input":"{\"ms\":10000}"}' >"$turn"

out="$p.live.out"
node "$h/live.js" "$db" >"$out" 2>"$p.live.log" &
pid=$!
trap 'kill -KILL $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  grep -qx ready "$out" 2>/dev/null && break
  sleep 0.05
done
grep -qx ready "$out" || { echo "busy fixture: live.js did not start" >&2; exit 1; }
node "$h/client.js" "$db" start-many "$starts" >/dev/null
# long enough for the unregistered starts to be retried twice (backoff 1 s, then 2 s)
sleep 3.5
node "$h/client.js" "$db" start-many "$turn" >/dev/null
sleep 2
kill -KILL $pid
wait $pid 2>/dev/null || true
trap - EXIT
killed_at=$(date +%s%3N)
# an event for an instance that does not exist, raised once the runtime is gone (a live runtime
# may take it off the queue first on a loaded machine): an orphan message in the snapshot
node "$h/client.js" "$db" raise ghost-1 Approve '"x"' >/dev/null
node "$h/oracle.js" "$db" >"$p-oracle.json.tmp"
mv "$p-oracle.json.tmp" "$p-oracle.json"
echo "{\"killed_at_ms\":$killed_at}" >"$p.info.json"
echo "busy fixture: created $db"
