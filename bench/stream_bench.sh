#!/usr/bin/env bash
# stream_bench.sh [K] [PAIRS] [sqlite|postgres] - the figures of issue 9, side by side in one run,
# on SQLite (default) or PostgreSQL (a throwaway server of its own, tests/pg_server.sh, in
# PG_BENCH_DIR, default /tmp/duroxlua-pg-streambench, stopped at the end):
#   latency   the real runtime works flat out through K Sequence instances while a follower
#             (`duroxlua events --follow --json`) prints their events; a reader stamps every
#             line as it arrives: arrival minus the event's timestamp_ms (the runtime's clock
#             when it recorded the event, just before its commit: an upper bound of
#             commit-to-stdout), median and p99, with --poll 20ms and with the default 200ms
#   rate      events per second a follower sustains reading a store derived from real rows
#             (bench/make_store.sh, 100k instances) from the start to /dev/null, and the same
#             in-process with dx:stream_instance_events
#   idle      the CPU of an idle follower over 10 s (from /proc), and the cost of one idle poll
#             round (dx:read_changes with nothing new, Lua call included)
#   runtime   the runtime's throughput on K queued Sequence instances alone and with three
#             followers plus `duroxlua exporter` scraped every second, in PAIRS alternating
#             pairs (the machine is shared: alone/with run back to back so load hits both),
#             medians and the share kept (goal: at least 97%)
# STEPS="latency rate idle runtime" (the default: all) runs only those parts; WITH="followers"
# or WITH="exporter" puts only those beside the runtime (default both).
# Needs node, sqlite3 (or psql and PostgreSQL 15), curl and a built duroxlua ($DUROXLUA,
# default build/duroxlua).
set -euo pipefail
K=${1:-1500}
PAIRS=${2:-5}
KIND=${3:-sqlite}
STEPS=" ${STEPS:-latency rate idle runtime} "
WITH=${WITH:-followers exporter} # what runs beside the runtime in the "with" runs (to attribute a loss)
step() { [[ "$STEPS" == *" $1 "* ]]; }
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=${DUROXLUA:-$root/build/duroxlua}
harness=$root/tests/harness
work=$(mktemp -d /tmp/durox-bench-stream.XXXXXX)
pids=()
pgdir=${PG_BENCH_DIR:-/tmp/duroxlua-pg-streambench}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  exec 3>&- 2>/dev/null || true
  [ "$KIND" = postgres ] && "$root/tests/pg_server.sh" stop "$pgdir" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
ms() { date +%s%3N; }

# ---- stores of either kind, by name ------------------------------------------------------------
case "$KIND" in
  sqlite) ;;
  postgres)
    admin=$("$root/tests/pg_server.sh" start "$pgdir")
    pgport=$(cat "$pgdir/port")
    ;;
  *) echo "stream_bench: the kind is sqlite or postgres, not '$KIND'" >&2; exit 2 ;;
esac
psqlq() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
url() { # name -> the store's URL (durox.open, --store)
  if [ "$KIND" = sqlite ]; then echo "sqlite:$work/$1.db"; else echo "postgresql://postgres@/$1?host=$pgdir&port=$pgport&schema=dx"; fi
}
target() { # name -> what the harness (live.js) takes
  if [ "$KIND" = sqlite ]; then echo "$work/$1.db"; else url "$1"; fi
}
fresh() { # name [template]: a new store, empty or a copy of the template
  if [ "$KIND" = sqlite ]; then
    rm -f "$work/$1.db" "$work/$1.db-wal" "$work/$1.db-shm"
    if [ -n "${2:-}" ]; then cp "$work/$2.db" "$work/$1.db"; fi
  else
    psqlq "$admin" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
    psqlq "$admin" -c "CREATE DATABASE $1${2:+ TEMPLATE $2}" >/dev/null
  fi
}
count_events() { # name id_like type,type...: history rows of those instances and event types
  local types
  types=$(echo "$3" | sed "s/[^,]*/'&'/g")
  if [ "$KIND" = sqlite ]; then
    sqlite3 "$work/$1.db" "SELECT count(*) FROM history WHERE instance_id LIKE '$2' AND event_type IN ($types)"
  else
    psqlq "$(url "$1" | sed 's/&schema=dx//')" -c "SELECT count(*) FROM dx.history WHERE instance_id LIKE '$2'
      AND event_data::json->>'type' IN ($types)"
  fi
}
count_history() { # name
  if [ "$KIND" = sqlite ]; then sqlite3 "$work/$1.db" "SELECT count(*) FROM history"
  else psqlq "$(url "$1" | sed 's/&schema=dx//')" -c "SELECT count(*) FROM dx.history"; fi
}

start_runtime() { # name -> fd 3 is the runtime's stdin; waits for ready
  rm -f "$work/$1.out" "$work/$1.err"
  exec 3> >(node "$harness/live.js" "$(target "$1")" --stdin-eof >"$work/$1.out" 2>"$work/$1.err")
  for _ in $(seq 600); do grep -q ready "$work/$1.out" 2>/dev/null && return 0; sleep 0.05; done
  echo "live.js did not start" >&2
  exit 1
}
stop_runtime() { # name
  exec 3>&-
  for _ in $(seq 200); do grep -q "stopped" "$work/$1.err" 2>/dev/null && break; sleep 0.05; done
  sleep 0.5
}
queue() { # name prefix n: n Sequence instances queued (the runtime picks them up when it runs)
  "$bin" -e '
    local durox = require "durox"
    local dx = assert(durox.open("'"$(url "$1")"'", { max_write_share = 1 }))
    for i = 1, '"$3"' do assert(dx:start_orchestration(("'"$2"'-%05d"):format(i), "Sequence", ("{\"value\":%d}"):format(i))) end'
}
wait_done() { # name prefix n: until every one is Completed or Failed, or the runtime has nothing
  # left to do for them (it can fail an instance it could not ack, without a row: counted as
  # lost); one read-only handle polls (no connection churn beside the runtime); prints lost
  "$bin" -e '
    local durox = require "durox"
    local dx = assert(durox.open("'"$(url "$1")"'", { readonly = true }))
    local quiet = 0
    while true do
      local done = #assert(dx:list_instances { id_prefix = "'"$2"'-", status = { "Completed", "Failed" } })
      if done >= '"$3"' then print(0) return end
      local q = assert(dx:get_queue_metrics { fresh = true })
      local busy = q.orchestrator_queue_size + q.worker_queue_size + q.timer_queue_size
      local running = #assert(dx:list_instances { id_prefix = "'"$2"'-", status = "Running" })
      quiet = (busy == 0 and running == 0) and quiet + 1 or 0
      if quiet >= 20 then print('"$3"' - done) return end
      durox.sleep(100)
    end'
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else print a[int((NR+1)/2)]}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# ---- the seed store (rows the real runtime wrote) ------------------------------------------
fresh seed
start_runtime seed
queue seed seed 300
wait_done seed seed 300 >/dev/null
stop_runtime seed
[ "$KIND" = sqlite ] && sqlite3 "$work/seed.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null

if [ "$KIND" = sqlite ]; then what="SQLite $(sqlite3 --version | cut -d' ' -f1)"
else what="PostgreSQL $(psqlq "$admin" -c 'SHOW server_version') over a unix socket"; fi
echo "stream_bench: K=$K instances per run, $PAIRS alone/with pairs, $what (machine: $(nproc) CPUs, shared)"
echo

# ---- latency: commit to stdout -----------------------------------------------------------------
latency() { # poll
  local db=lat_$1
  fresh "$db" seed
  queue "$db" lat "$K"
  local out=$work/lat-$1.times
  # the reader stamps each line on arrival (durox.now(), ms) next to the event's own timestamp
  local fifo=$work/lat-$1.fifo
  rm -f "$fifo"
  mkfifo "$fifo"
  "$bin" -e '
      local durox = require "durox"
      local out = assert(io.open("'"$out"'", "w"))
      for line in io.lines() do
        local ev = durox.decode_json(line)
        if ev.kind == "event" then out:write(durox.now() - ev.timestamp, "\n") out:flush() end
      end' <"$fifo" &
  local rp=$!
  "$bin" --store "$(url "$db")" events --follow --json --from now --poll "$1" --type Started,Completed,ActivityCompleted \
    >"$fifo" &
  local fp=$!
  pids+=("$rp" "$fp")
  sleep 1
  start_runtime "$db"
  local lost
  lost=$(wait_done "$db" lat "$K")
  # the follower stops once the reader has every event of the instances that exist
  local want
  want=$(count_events "$db" 'lat-%' OrchestrationStarted,OrchestrationCompleted,ActivityCompleted)
  for _ in $(seq 600); do [ "$(wc -l <"$out")" -ge "$want" ] && break; sleep 0.1; done
  stop_runtime "$db"
  kill "$fp" 2>/dev/null || true
  wait "$fp" 2>/dev/null || true
  wait "$rp" 2>/dev/null || true
  local n p50 p99
  n=$(wc -l <"$out")
  p50=$(sort -n "$out" | awk '{a[NR]=$1} END {print a[int(NR*0.5+0.5)]}')
  p99=$(sort -n "$out" | awk '{a[NR]=$1} END {print a[int(NR*0.99+0.5)]}')
  printf "  --poll %-6s %7d of %d events   median %4d ms   p99 %4d ms%s\n" "$1" "$n" "$want" "$p50" "$p99" \
    "$([ "$lost" -gt 0 ] && echo "   ($lost instances the runtime failed without a row)")"
}
if step latency; then
  echo "latency: event timestamp (just before the runtime's commit) to the follower's stdout, runtime flat out"
  latency 20ms
  latency 200ms
  echo
fi

# ---- rate: events a follower sustains ---------------------------------------------------------
if step rate || step idle; then
if [ "$KIND" = sqlite ]; then "$root/bench/make_store.sh" "$work/seed.db" "$work/big.db" 100000 2>/dev/null
else psqlq "$admin" -c "DROP DATABASE IF EXISTS big WITH (FORCE)" >/dev/null; "$root/bench/make_pg_store.sh" "$admin" seed big 100000 2>/dev/null; fi
fi
big=$(url big)
if step rate; then
rows=$(count_history big)
t0=$(ms)
items=$("$bin" --store "$big" events --json --from start | wc -l)
t1=$(ms)
echo "rate: reading a store of 100k instances ($rows history rows, derived from real rows) from the start"
printf "  duroxlua events --json > pipe   %8d events in %6.2f s   %8.0f events/s   %8.0f history rows/s\n" "$items" \
  "$(echo "($t1 - $t0) / 1000" | bc -l)" "$(echo "$items * 1000 / ($t1 - $t0)" | bc -l)" \
  "$(echo "$rows * 1000 / ($t1 - $t0)" | bc -l)"
"$bin" -e '
  local durox = require "durox"
  local dx = assert(durox.open("'"$big"'", { readonly = true }))
  local t0, n = durox.now(), 0
  for _ in dx:stream_instance_events { payloads = false } do n = n + 1 end
  local t = (durox.now() - t0) / 1000
  print(("  dx:stream_instance_events       %8d events in %6.2f s   %8.0f events/s   %8.0f history rows/s"):format(
    n, t, n / t, '"$rows"' / t))
  t0 = durox.now()
  local r = { more = true, cursor = nil }
  local rows = 0
  while r.more do
    r = assert(dx:read_changes { cursor = r.cursor, from = r.cursor == nil and "start" or nil, limit = 5000 })
    rows = rows + #r.changes
  end
  t = (durox.now() - t0) / 1000
  print(("  dx:read_changes (raw rows)      %8d rows   in %6.2f s   %8.0f rows/s"):format(rows, t, rows / t))'
echo
fi

# ---- idle: an idle follower -------------------------------------------------------------------
if step idle; then
"$bin" --store "$big" events --follow --json --from now >/dev/null &
fp=$!
pids+=("$fp")
sleep 2
c0=$(cpu_ticks "$fp")
sleep 10
c1=$(cpu_ticks "$fp")
kill "$fp"
wait "$fp" 2>/dev/null || true
hz=$(getconf CLK_TCK)
echo "idle: a follower on an idle store of 100k instances (default poll 200ms)"
printf "  CPU over 10 s: %d ticks of 1/%d s = %.3f%% of one core\n" "$((c1 - c0))" "$hz" \
  "$(echo "($c1 - $c0) * 100 / ($hz * 10)" | bc -l)"
"$bin" -e '
  local durox = require "durox"
  local dx = assert(durox.open("'"$big"'", { readonly = true }))
  local r = assert(dx:read_changes { from = "now" })
  r = assert(dx:read_changes { cursor = r.cursor })
  local n, t0 = 200000, os.clock()
  for _ = 1, n do r = dx:read_changes { cursor = r.cursor } end
  assert(r.idle)
  print(("  one idle poll round (dx:read_changes, Lua call and result table included): %.2f us"):format(
    (os.clock() - t0) / n * 1e6))'
echo
fi

# ---- runtime: throughput alone and with three followers and the exporter ------------------------
phase() { # name -> elapsed ms for K instances
  local db=tp
  fresh "$db" seed
  queue "$db" tp "$K"
  local extra=()
  if [ "$1" = with ] && [[ " $WITH " == *" followers "* ]]; then
    for i in 1 2 3; do
      "$bin" --store "$(url "$db")" events --follow --json --from now >/dev/null 2>&1 &
      extra+=("$!")
    done
  fi
  if [ "$1" = with ] && [[ " $WITH " == *" exporter "* ]]; then
    "$bin" --store "$(url "$db")" exporter --listen 127.0.0.1:0 --port-file "$work/port" >/dev/null 2>&1 &
    extra+=("$!")
    for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
    ( while true; do curl -s -o /dev/null "http://127.0.0.1:$(cat "$work/port")/metrics" || true; sleep 1; done ) &
    extra+=("$!")
  fi
  [ "$1" = with ] && sleep 0.5
  start_runtime "$db"
  local t0 t1 lost
  t0=$(ms)
  lost=$(wait_done "$db" tp "$K")
  t1=$(ms)
  [ "$lost" -gt 0 ] && echo "    ($1: the runtime failed $lost instances without a row: its own ack retries ran out)" >&2
  stop_runtime "$db"
  for p in "${extra[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${extra[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -f "$work/port"
  echo $((t1 - t0))
}
step runtime || exit 0
alone=()
with=()
for pair in $(seq "$PAIRS"); do
  if [ $((pair % 2)) = 1 ]; then a=$(phase alone); w=$(phase with); else w=$(phase with); a=$(phase alone); fi
  alone+=("$a")
  with+=("$w")
  printf "  pair %d: alone %6d ms (%5.1f/s)   with %6d ms (%5.1f/s)\n" "$pair" "$a" "$(echo "$K * 1000 / $a" | bc -l)" \
    "$w" "$(echo "$K * 1000 / $w" | bc -l)"
done
ma=$(printf "%s\n" "${alone[@]}" | median)
mw=$(printf "%s\n" "${with[@]}" | median)
beside=$(echo "$WITH" | sed 's/followers/3 followers/; s/exporter/the exporter scraped every second/; s/followers the/followers + the/')
echo "runtime: $K Sequence instances, throughput alone vs with $beside"
printf "  median alone %6d ms = %6.1f instances/s\n" "$ma" "$(echo "$K * 1000 / $ma" | bc -l)"
printf "  median with  %6d ms = %6.1f instances/s\n" "$mw" "$(echo "$K * 1000 / $mw" | bc -l)"
printf "  kept: %.1f%% of the throughput (goal: at least 97%%)\n" "$(echo "$ma * 100 / $mw" | bc -l)"
