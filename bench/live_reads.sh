#!/usr/bin/env bash
# live_reads.sh [PAIRS] [K] [STORE_DB] - do duroxlua's reads hurt the live runtime? PAIRS (default
# 20) pairs of real-runtime runs on identical copies of one store (default: the 100k-instance
# bench store, derived from real rows), each run processing K (default 2000) Sequence
# instances (three activities each) queued before the runtime starts:
#   alone   nothing else touches the store
#   with    a duroxlua process polls the store at 10 Hz meanwhile: get_runtime_metrics and
#           get_queue_metrics recomputed every tick (fresh = true), which syncs the visibility
#           index first when the handle has one ($READER_OPTS: open options, a Lua table body,
#           e.g. "index = false" for the reader that scans the store; $READER_NICE: run the reader
#           at that nice level, e.g. 10, as `duroxlua --nice 10` does). The reader's index is
#           built before the runtime starts (as an operator's would have been long before),
#           so the runs measure what keeping it current costs, not the first build.
# The two runs of a pair follow each other and alternate their order (alone first in odd pairs),
# so the load of the shared machine weighs on both sides alike. Per run: the time until all K
# ended, instances the runtime FAILED (an ack that kept finding the write lock taken fails the
# orchestration: "infrastructure" output), its ack retries and fetch back-offs ("database is
# locked" warnings), and for "with" the reader's ticks and mean tick cost. The totals at the end
# compare the two sides. Needs node, sqlite3 and a built duroxlua ($DUROXLUA, default build/duroxlua).
set -euo pipefail
PAIRS=${1:-20}
K=${2:-2000}
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=${DUROXLUA:-$root/build/duroxlua}
harness=$root/tests/harness
READER_OPTS=${READER_OPTS:-}
base=${3:-}
if [ -z "$base" ]; then
  data=$root/build/bench-data
  mkdir -p "$data"
  base=$data/list-100k.db
  if [ ! -s "$base" ]; then
    rm -f "$data/seed.db" "$data/seed.db-wal" "$data/seed.db-shm" "$data/seed.db.manifest.json"
    node "$harness/scenarios.js" create "$data/seed.db" --demo 300 --seed 11 >/dev/null 2>&1
    "$root/bench/make_store.sh" "$data/seed.db" "$base" 100000
  fi
fi
work=$(mktemp -d /tmp/durox-live-reads.XXXXXX)
trap 'rm -rf "$work"' EXIT
ms() { date +%s%3N; }
sqlite3 "$base" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
# the queued starts, written once by duroxlua into a template copy (the runtime is not running)
cp "$base" "$work/template.db"
"$bin" -e '
  local durox = require "durox"
  local dx = assert(durox.open("sqlite:'"$work/template.db"'", { max_write_share = 1 }))
  for i = 1, '"$K"' do
    assert(dx:start_orchestration(("lr-%05d"):format(i), "Sequence", ("{\"value\":%d}"):format(i)))
  end'
sqlite3 "$work/template.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null

cat >"$work/reader.lua" <<EOF
-- polls at 10 Hz until the stop file exists; prints ticks and the mean and max tick cost (ms)
local durox = require "durox"
local db, stop = arg[1], arg[2]
local dx = assert(durox.open("sqlite:" .. db, { readonly = true, index = db .. ".dxi", $READER_OPTS }))
local ticks, total, worst = 0, 0, 0
while not io.open(stop) do
  local t0 = durox.now()
  assert(dx:get_runtime_metrics { fresh = true })
  assert(dx:get_queue_metrics { fresh = true })
  local dt = durox.now() - t0
  ticks, total, worst = ticks + 1, total + dt, math.max(worst, dt)
  if dt < 100 then durox.sleep(math.floor(100 - dt)) end
end
dx:close()
print(("%d %.2f %.1f"):format(ticks, ticks > 0 and total / ticks or 0, worst))
EOF

declare -a A_MS A_FAILED A_RETRY A_FETCH W_MS W_FAILED W_RETRY W_FETCH W_TICK
run() { # kind pair -> appends to the arrays
  local kind=$1 db=$work/run.db
  rm -f "$db" "$db-wal" "$db-shm" "$work/stop" "$work/reader.out"
  cp "$work/template.db" "$db"
  rm -f "$db.dxi" "$db.dxi-wal" "$db.dxi-shm"
  if [ "$kind" = with ]; then # the reader's index, built before the runtime starts (when it keeps one)
    "$bin" -e 'local durox = require "durox"
      local dx = assert(durox.open("sqlite:'"$db"'", { readonly = true, index = "'"$db"'.dxi", '"$READER_OPTS"' }))
      if dx:index_status().enabled then assert(dx:index_build()) end' >/dev/null
  fi
  exec 3> >(node "$harness/live.js" "$db" --stdin-eof >"$db.out" 2>"$db.err")
  for _ in $(seq 600); do grep -q ready "$db.out" 2>/dev/null && break; sleep 0.05; done
  local t0 t1 rpid=""
  t0=$(ms)
  if [ "$kind" = with ]; then
    ${READER_NICE:+nice -n "$READER_NICE"} "$bin" "$work/reader.lua" "$db" "$work/stop" >"$work/reader.out" 2>&1 &
    rpid=$!
  fi
  local n=0
  while :; do
    # the same light check in both runs: one indexed count per 200 ms
    n=$(sqlite3 -cmd ".timeout 5000" "$db" \
          "SELECT count(*) FROM executions WHERE instance_id LIKE 'lr-%' AND status <> 'Running'")
    [ "$n" -ge "$K" ] && break
    if [ $(( $(ms) - t0 )) -gt 600000 ]; then echo "run $kind: only $n of $K ended after 600 s" >&2; break; fi
    sleep 0.2
  done
  t1=$(ms)
  local tick="-"
  if [ -n "$rpid" ]; then
    touch "$work/stop"
    wait "$rpid" || { echo "the reader failed:" >&2; cat "$work/reader.out" >&2; exit 1; }
    tick=$(cat "$work/reader.out")
  fi
  exec 3>&-
  for _ in $(seq 200); do grep -q "stopped" "$db.err" 2>/dev/null && break; sleep 0.05; done
  local failed retry fetch
  failed=$(sqlite3 "$db" "SELECT count(*) FROM executions WHERE instance_id LIKE 'lr-%' AND status = 'Failed'")
  retry=$(grep -c "ack_orchestration_item failed; retrying" "$db.err" || true)
  fetch=$(grep -c "Error fetching" "$db.err" || true)
  if [ "$kind" = alone ]; then
    A_MS+=($((t1 - t0))); A_FAILED+=("$failed"); A_RETRY+=("$retry"); A_FETCH+=("$fetch")
  else
    W_MS+=($((t1 - t0))); W_FAILED+=("$failed"); W_RETRY+=("$retry"); W_FETCH+=("$fetch"); W_TICK+=("$tick")
  fi
  printf '%-6s %4d %8d ms %7d failed %6d ack retries %6d fetch back-offs   %s\n' "$kind" "$2" $((t1 - t0)) \
    "$failed" "$retry" "$fetch" "${tick:+reader: $tick}" >&2
}

echo "store: $base ($(sqlite3 "$base" 'SELECT count(*) FROM instances') instances); $PAIRS pairs of runs, $K Sequence instances each" >&2
for p in $(seq "$PAIRS"); do
  if [ $((p % 2)) -eq 1 ]; then run alone "$p"; run with "$p"; else run with "$p"; run alone "$p"; fi
done

sum() { local s=0; for v in "$@"; do s=$((s + v)); done; echo "$s"; }
nz() { local c=0; for v in "$@"; do [ "$v" -gt 0 ] && c=$((c + 1)); done; echo "$c"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '\n%d pairs, %d Sequence instances per run (reader: %s%s)\n' "$PAIRS" "$K" "${READER_OPTS:-default options}" \
  "${READER_NICE:+, nice $READER_NICE}"
printf '%-34s %12s %12s\n' "" "alone" "with reader"
printf '%-34s %12s %12s\n' "instances failed by the runtime" "$(sum "${A_FAILED[@]}")" "$(sum "${W_FAILED[@]}")"
printf '%-34s %12s %12s\n' "runs with a failed instance" "$(nz "${A_FAILED[@]}")/$PAIRS" "$(nz "${W_FAILED[@]}")/$PAIRS"
printf '%-34s %12s %12s\n' "ack retries (sum)" "$(sum "${A_RETRY[@]}")" "$(sum "${W_RETRY[@]}")"
printf '%-34s %12s %12s\n' "fetch back-offs (sum)" "$(sum "${A_FETCH[@]}")" "$(sum "${W_FETCH[@]}")"
printf '%-34s %10s ms %10s ms\n' "time to finish K (median)" "$(median "${A_MS[@]}")" "$(median "${W_MS[@]}")"
printf '%-34s %12s %12s\n' "reader mean tick (median, ms)" "-" \
  "$(printf '%s\n' "${W_TICK[@]}" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
