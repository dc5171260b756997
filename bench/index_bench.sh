#!/usr/bin/env bash
# index_bench.sh [SIZES] - the visibility index's figures (issue 10), side by side in one run
# with Duroxide's own management API (bench/duroxide_timed.js, timed inside node) and with
# the floors (bench/scan_floor: one full read with plain SQLite), on stores derived from real
# rows (bench/make_store.sh) of each size in SIZES (default "100000 1000000"; the stores are
# made under build/bench-data/ once and reused):
#   - the first page of 100 Failed instances with summaries (fresh handle) vs Duroxide's
#     listInstancesByStatus + 100 x getInstanceInfo                    goal: >= 50x faster
#   - page 1 and page 500 in each of the four orders and for name = 'Order' AND
#     status = 'Running', vs one full read of executions          goal: page 500 within 1.5x
#                                                     of page 1, every page 1 >= 20x faster
#   - every instance listed without paging vs listAllInstances        goal: no slower
#   - runtime metrics: cold in a fresh process without an index vs getSystemMetrics (goal:
#     no slower); in a fresh process with the index (goal: >= 10x faster); recomputed after
#     the live runtime committed new turns (goal: >= 100x faster)
#   - queue metrics with the index vs getQueueDepths                    goal: within 2x
#   - the index build vs one full read of history                       goal: within 1.5x
#   - the idle sync, the catch-up per 10,000 new history rows (live runtime), the index's size
#     on disk, and the build's peak RSS (goal: <= 64 MB at 1M)
# ROUNDS (default 5) sets the medians. Needs node, sqlite3, GNU time, a built duroxlua
# ($DUROXLUA, default build/duroxlua) and build/bench/{scan_floor}. Uses a Release-like build.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
SIZES=${1:-"100000 1000000"}
ROUNDS=${ROUNDS:-5}
bin=${DUROXLUA:-$root/build/duroxlua}
floor=${SCAN_FLOOR:-$root/build/bench/scan_floor}
harness=$root/tests/harness
data=$root/build/bench-data
mkdir -p "$data"
work=$(mktemp -d /tmp/durox-index-bench.XXXXXX)
trap 'if [ -n "${rtpid:-}" ]; then kill -CONT "$rtpid" 2>/dev/null || true; fi; exec 3>&- 2>/dev/null || true; rm -rf "$work"' EXIT

store_of() { # size -> path of a store derived from real rows
  local n=$1 db=$data/idx-$1.db
  if [ ! -s "$db" ]; then
    if [ ! -s "$data/seed.db" ]; then
      node "$harness/scenarios.js" create "$data/seed.db" --demo 300 --seed 11 >/dev/null 2>&1
    fi
    "$root/bench/make_store.sh" "$data/seed.db" "$db" "$n" >&2
  fi
  echo "$db"
}
get() { echo "$1" | awk -v k="$2" '$1 == k {print $2}'; }
js() { echo "$1" | sed 's/.*"'"$2"'":\([0-9.]*\).*/\1/'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.1fx", b / a; else print "-" }'; }

for n in $SIZES; do
  db=$(store_of "$n")
  sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
  cat "$db" >/dev/null # the OS page cache holds the store for both sides
  idx=$work/idx-$n.dxi
  instances=$(sqlite3 "$db" "SELECT count(*) FROM instances")
  hist=$(sqlite3 "$db" "SELECT count(*) FROM history")
  echo "== store $db: $instances instances, $hist history rows (medians of $ROUNDS)" >&2
  # the build, under GNU time for its peak RSS
  /usr/bin/time -v -o "$work/time.txt" "$bin" "$root/bench/index_bench.lua" build "$db" "$idx" >"$work/build.txt"
  build=$(cat "$work/build.txt")
  rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time.txt")
  hread=$("$floor" "$db" history)
  build_cpu=$(awk '/User time/ {u=$4} /System time/ {s=$4} END {printf "%.0f", (u + s) * 1000}' "$work/time.txt")
  # the CPU of ONE read (scan_floor reads three times and gives the medians of one read)
  hread_cpu=$(js "$hread" cpu_ms)
  eread=$("$floor" "$db" executions)
  reads=$("$bin" "$root/bench/index_bench.lua" reads "$db" "$idx" "$ROUNDS")
  cold=() fresh=() sys=() cold_c=() fresh_c=() sys_c=()
  for _ in 1 2 3; do # fresh processes, alternating sides
    o=$("$bin" "$root/bench/index_bench.lua" cold "$db" "$idx")
    cold+=("$(get "$o" runtime_cold_ms)") cold_c+=("$(get "$o" runtime_cold_cpu)")
    o=$("$bin" "$root/bench/index_bench.lua" fresh "$db" "$idx")
    fresh+=("$(get "$o" runtime_fresh_ms)") fresh_c+=("$(get "$o" runtime_fresh_cpu)")
    o=$(node "$root/bench/duroxide_timed.js" "$db" system 1)
    sys+=("$(js "$o" first)") sys_c+=("$(js "$o" cpu_first)")
  done
  med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  cold_ms=$(med "${cold[@]}") fresh_ms=$(med "${fresh[@]}") sys_first=$(med "${sys[@]}")
  cold_cpu=$(med "${cold_c[@]}") fresh_cpu=$(med "${fresh_c[@]}") sys_cpu=$(med "${sys_c[@]}")
  page=$(node "$root/bench/duroxide_timed.js" "$db" status-page "$ROUNDS")
  listall=$(node "$root/bench/duroxide_timed.js" "$db" list-all "$ROUNDS")
  # the same work as list_instances (a summary per instance): once, it takes long
  listinfo=$(node "$root/bench/duroxide_timed.js" "$db" list-all-info 0)
  sysm=$(node "$root/bench/duroxide_timed.js" "$db" system "$ROUNDS")
  queues=$(node "$root/bench/duroxide_timed.js" "$db" queues "$ROUNDS")

  # ---- the live part: a copy of the store, the real runtime committing turns ----------------
  live=$work/live.db
  cp "$db" "$live"
  "$bin" -e 'local durox = require "durox"
    local dx = assert(durox.open("sqlite:'"$live"'", { max_write_share = 1, index = false }))
    for i = 1, 2000 do assert(dx:start_orchestration(("ib-%05d"):format(i), "Sequence", ("{\"value\":%d}"):format(i))) end'
  rm -f "$work"/go1* "$work"/go2*
  "$bin" "$root/bench/index_bench.lua" live "$live" "$work/live.dxi" >"$work/live.txt" &
  lpid=$!
  while [ ! -e "$work/go1" ]; do sleep 0.1; done
  h0=$(sqlite3 "$live" "SELECT max(rowid) FROM history")
  exec 3> >(node "$harness/live.js" "$live" --stdin-eof >"$work/rt.out" 2>"$work/rt.err")
  while ! grep -q ready "$work/rt.out" 2>/dev/null; do sleep 0.05; done
  rtpid=$(pgrep -f -- "live.js $live" | head -1)
  while [ "$(sqlite3 -cmd '.timeout 5000' "$live" "SELECT max(rowid) FROM history")" -lt $((h0 + 100)) ]; do sleep 0.02; done
  kill -STOP "$rtpid"
  sleep 0.2
  touch "$work/go1.go"
  while [ ! -e "$work/go2" ]; do sleep 0.05; done
  sys_live=$(node "$root/bench/duroxide_timed.js" "$live" system 1)
  q_live=$(node "$root/bench/duroxide_timed.js" "$live" queues 1)
  h1=$(sqlite3 "$live" "SELECT max(rowid) FROM history")
  kill -CONT "$rtpid"
  while [ "$(sqlite3 -cmd '.timeout 5000' "$live" "SELECT max(rowid) FROM history")" -lt $((h1 + 10000)) ]; do sleep 0.05; done
  kill -STOP "$rtpid"
  sleep 0.2
  touch "$work/go2.go"
  wait "$lpid"
  kill -CONT "$rtpid"
  rtpid=""
  exec 3>&-
  sleep 1
  lv=$(cat "$work/live.txt")

  printf '\n%s instances, %s history rows (derived from real rows); ms unless noted\n' "$instances" "$hist"
  printf '%-60s %12s %12s %10s\n' "" "duroxlua" "reference" "ratio"
  printf '%-60s %12s %12s %10s\n' "first page of 100 Failed + summaries, first call after open" "$(get "$reads" failed_page_first)" \
    "$(js "$page" first)" "$(ratio "$(get "$reads" failed_page_first)" "$(js "$page" first)")"
  printf '%-60s %12s %12s %10s\n' "  the same, warm (later calls on the open handle/provider)" "$(get "$reads" failed_page_warm)" \
    "$(js "$page" median)" "$(ratio "$(get "$reads" failed_page_warm)" "$(js "$page" median)")"
  printf '%-60s %12s %12s %10s\n' "  first call vs warm Duroxide, duroxlua's open+close timed too" \
    "$(get "$reads" failed_page_open_first_close)" "$(js "$page" median)" \
    "$(ratio "$(get "$reads" failed_page_open_first_close)" "$(js "$page" median)")"
  ef=$(js "$eread" ms)
  for o in CreatedAt UpdatedAt InstanceId OrchestrationName order_running; do
    label=$o
    [ "$o" = order_running ] && label="name='Order' AND status='Running'"
    p1=$(get "$reads" "page1_$o") pn=$(get "$reads" "pageN_$o") pnum=$(get "$reads" "pageN_number_$o")
    printf '%-60s %12s %12s %10s\n' "  $label: page 1 (vs full read of executions)" "$p1" "$ef" "$(ratio "$p1" "$ef")"
    printf '%-60s %12s %12s %10s\n' "  $label: page $pnum (vs page 1)" "$pn" "$p1" \
      "$(awk -v a="$pn" -v b="$p1" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
  done
  printf '%-60s %12s %12s %10s\n' "every instance, no paging (vs listAllInstances, ids only)" "$(get "$reads" list_all)" \
    "$(js "$listall" median)" "$(ratio "$(get "$reads" list_all)" "$(js "$listall" median)")"
  printf '%-60s %12s %12s %10s\n' "  the same, first call of the process (vs listAllInstances first)" \
    "$(get "$reads" list_all_first)" "$(js "$listall" first)" \
    "$(ratio "$(get "$reads" list_all_first)" "$(js "$listall" first)")"
  printf '%-60s %12s %12s %10s\n' "  equal work: vs listAllInstances + getInstanceInfo of each" \
    "$(get "$reads" list_all)" "$(js "$listinfo" first)" "$(ratio "$(get "$reads" list_all)" "$(js "$listinfo" first)")"
  printf '%-60s %12s %12s %10s\n' "runtime metrics, cold, no index (vs getSystemMetrics first)" "$cold_ms" "$sys_first" \
    "$(ratio "$cold_ms" "$sys_first")"
  printf '%-60s %12s %12s %10s\n' "runtime metrics, fresh process, index (vs getSystemMetrics)" "$fresh_ms" "$sys_first" \
    "$(ratio "$fresh_ms" "$sys_first")"
  printf '%-60s %12s %12s %10s\n' "runtime metrics after new turns (vs getSystemMetrics)" "$(get "$lv" runtime_after_turns_ms)" \
    "$(js "$sys_live" first)" "$(ratio "$(get "$lv" runtime_after_turns_ms)" "$(js "$sys_live" first)")"
  printf '%-60s %12s %12s %10s\n' "queue metrics, first call of a handle (vs getQueueDepths first)" "$(get "$reads" queue_index_first)" \
    "$(js "$queues" first)" "$(ratio "$(get "$reads" queue_index_first)" "$(js "$queues" first)")"
  printf '%-60s %12s %12s %10s\n' "queue metrics, store at rest (vs getQueueDepths median)" "$(get "$reads" queue_index)" "$(js "$queues" median)" \
    "$(ratio "$(get "$reads" queue_index)" "$(js "$queues" median)")"
  printf '%-60s %12s %12s %10s\n' "queue metrics after new turns (vs getQueueDepths, same store)" "$(get "$lv" queue_after_turns_ms)" \
    "$(js "$q_live" first)" "$(ratio "$(get "$lv" queue_after_turns_ms)" "$(js "$q_live" first)")"
  printf '%-60s %12s %12s %10s\n' "index build (vs one full read of history)" "$(get "$build" build_ms)" "$(js "$hread" ms)" \
    "$(awk -v a="$(get "$build" build_ms)" -v b="$(js "$hread" ms)" 'BEGIN { printf "%.2f", a / b }')"
  printf '%-60s %12s\n' "idle sync (us)" "$(get "$reads" idle_sync_us)"
  printf '%-60s %12s   (%s rows in %s ms)\n' "catch-up per 10,000 new history rows (live runtime)" \
    "$(get "$lv" catchup_ms_per_10k)" "$(get "$lv" catchup_rows)" "$(get "$lv" catchup_ms)"
  printf '%-60s %12s   (%s bytes per instance)\n' "index size on disk (MB)" \
    "$(awk -v b="$(get "$build" size_bytes)" 'BEGIN { printf "%.1f", b / 1e6 }')" \
    "$(awk -v b="$(get "$build" size_bytes)" -v n="$instances" 'BEGIN { printf "%.0f", b / n }')"
  printf '%-60s %12s\n' "peak RSS while building (MB)" "$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')"
  printf '%-60s %12s\n' "the index verified against the store after the live run" "$(get "$lv" verify_ok)"
  # the same comparisons in CPU ms (this process's; node's whole process, every thread): on a
  # loaded machine wall times stretch unevenly, CPU times much less
  printf '\nCPU ms (duroxlua: os.clock of its one thread; Duroxide: process.cpuUsage of node)\n'
  row() { printf '%-60s %12s %12s %10s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
  row "first page of 100 Failed, first call after open" "$(get "$reads" failed_page_first_cpu)" "$(js "$page" cpu_first)"
  row "  the same, warm" "$(get "$reads" failed_page_warm_cpu)" "$(js "$page" cpu_median)"
  row "every instance, no paging (vs listAllInstances, ids only)" "$(get "$reads" list_all_cpu)" "$(js "$listall" cpu_median)"
  row "  the same, first call of the process" "$(get "$reads" list_all_first_cpu)" "$(js "$listall" cpu_first)"
  row "  equal work: vs listAllInstances + getInstanceInfo of each" "$(get "$reads" list_all_cpu)" "$(js "$listinfo" cpu_first)"
  row "runtime metrics, cold, no index (vs getSystemMetrics first)" "$cold_cpu" "$sys_cpu"
  row "runtime metrics, fresh process, index" "$fresh_cpu" "$sys_cpu"
  row "runtime metrics after new turns" "$(get "$lv" runtime_after_turns_cpu)" "$(js "$sys_live" cpu_first)"
  row "queue metrics, first call of a handle" "$(get "$reads" queue_index_first_cpu)" "$(js "$queues" cpu_first)"
  row "queue metrics, store at rest" "$(get "$reads" queue_index_cpu)" "$(js "$queues" cpu_median)"
  row "queue metrics after new turns (no index)" "$(get "$lv" queue_after_turns_cpu)" "$(js "$q_live" cpu_first)"
  printf '%-60s %12s %12s %10s\n' "index build (vs one full read of history, user+sys)" "$build_cpu" "$hread_cpu" \
    "$(awk -v a="$build_cpu" -v b="$hread_cpu" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
  printf '%-60s %12s\n' "catch-up of the new history rows (CPU ms)" "$(get "$lv" catchup_cpu)"
  rm -f "$live" "$live-wal" "$live-shm" "$work"/live.dxi*
done
