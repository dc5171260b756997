#!/usr/bin/env bash
# reads_mechanism.sh [ROUNDS] [SECONDS] [STORE_DB] - can duroxlua's reads make a writer's
# transaction fail? busy_probe (bench/busy_probe.c) commits the way Duroxide's SQLite provider
# acks a turn (deferred: read, then write; no busy timeout, so every refusal counts) on a copy
# of a store (default: the 100k-instance bench store), for SECONDS (default 10) per phase:
#   alone    the probe alone
#   churn    duroxlua processes one after another: open, first page of Failed instances,
#            get_runtime_metrics, get_queue_metrics, close (connection churn, close-time
#            checkpoint attempts, read-mark churn)
#   poll     one duroxlua handle recomputing runtime and queue metrics at 10 Hz (which syncs
#            the visibility index first when there is one; $READER_OPTS: open options)
#   writer   control: a second probe, so the probe is seen to count real contention
# ROUNDS (default 5) rounds, the phase order rotated each round (the machine is shared, so
# load weighs on every phase alike). Prints SQLITE_BUSY and transactions per phase, summed.
set -euo pipefail
ROUNDS=${1:-5}
SECS=${2:-10}
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=${DUROXLUA:-$root/build/duroxlua}
probe=${BUSY_PROBE:-$root/build/bench/busy_probe}
READER_OPTS=${READER_OPTS:-}
base=${3:-$root/build/bench-data/list-100k.db}
[ -s "$base" ] || { echo "reads_mechanism: no store $base (bench/list_bench.sh makes it)" >&2; exit 1; }
work=$(mktemp -d /tmp/durox-mech.XXXXXX)
trap 'touch "$work/stop"; wait 2>/dev/null; rm -rf "$work"' EXIT
sqlite3 "$base" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
db=$work/store.db
cp "$base" "$db"

cat >"$work/churn.lua" <<'EOF'
local durox = require "durox"
local db, stop = arg[1], arg[2]
local dx = assert(durox.open("sqlite:" .. db, { readonly = true }))
assert(dx:list_instances_paginated { filter = { status = "Failed" }, page_size = 100 })
assert(dx:get_runtime_metrics())
assert(dx:get_queue_metrics())
dx:close()
EOF
cat >"$work/poll.lua" <<EOF
local durox = require "durox"
local db, stop = arg[1], arg[2]
local dx = assert(durox.open("sqlite:" .. db, { readonly = true, $READER_OPTS }))
local n = 0
while not io.open(stop) do
  local t0 = durox.now()
  assert(dx:get_runtime_metrics { fresh = true })
  assert(dx:get_queue_metrics { fresh = true })
  n = n + 1
  local dt = durox.now() - t0
  if dt < 100 then durox.sleep(math.floor(100 - dt)) end
end
dx:close()
print(n)
EOF

declare -A BUSY TXNS EXTRA
phase() { # name
  local name=$1 pids=()
  rm -f "$work/stop"
  case $name in
    churn) (n=0; while [ ! -e "$work/stop" ]; do "$bin" "$work/churn.lua" "$db" "$work/stop"; n=$((n + 1)); done
            echo "$n" >"$work/extra") & pids+=($!) ;;
    poll) "$bin" "$work/poll.lua" "$db" "$work/stop" >"$work/extra" & pids+=($!) ;;
    writer) "$probe" "$db" "$SECS" second 1000 >"$work/extra" & pids+=($!) ;;
  esac
  local out
  out=$("$probe" "$db" "$SECS" "$name" 1000)
  touch "$work/stop"
  for p in "${pids[@]}"; do wait "$p"; done
  local b t
  b=$(echo "$out" | sed 's/.*"busy":\([0-9]*\).*/\1/')
  t=$(echo "$out" | sed 's/.*"txns":\([0-9]*\).*/\1/')
  BUSY[$name]=$(( ${BUSY[$name]:-0} + b ))
  TXNS[$name]=$(( ${TXNS[$name]:-0} + t ))
  local x
  x=$(sed 's/.*"busy":\([0-9]*\).*/\1/' "$work/extra" 2>/dev/null || true)
  case $name in
    churn|poll) EXTRA[$name]=$(( ${EXTRA[$name]:-0} + $(cat "$work/extra") )) ;;
    writer) EXTRA[$name]=$(( ${EXTRA[$name]:-0} + x )) ;;
  esac
  echo "round $r $name: $out" >&2
}

PHASES=(alone churn poll writer)
for r in $(seq "$ROUNDS"); do
  for k in 0 1 2 3; do phase "${PHASES[$(( (k + r) % 4 ))]}"; done
done
printf '\nbusy_probe (deferred read-then-write, no busy timeout, 1 ms between transactions), %d rounds x %d s per phase\n' "$ROUNDS" "$SECS"
printf 'store: %s (%s instances)\n' "$base" "$(sqlite3 "$base" 'SELECT count(*) FROM instances')"
printf '%-8s %12s %10s   %s\n' phase transactions SQLITE_BUSY "meanwhile"
printf '%-8s %12d %10d   %s\n' alone "${TXNS[alone]}" "${BUSY[alone]}" "-"
printf '%-8s %12d %10d   %s\n' churn "${TXNS[churn]}" "${BUSY[churn]}" "${EXTRA[churn]} duroxlua processes opened, read, closed"
printf '%-8s %12d %10d   %s\n' poll "${TXNS[poll]}" "${BUSY[poll]}" "${EXTRA[poll]} metric ticks (10 Hz)"
printf '%-8s %12d %10d   %s\n' writer "${TXNS[writer]}" "${BUSY[writer]}" "control: the second probe met ${EXTRA[writer]} SQLITE_BUSY"
