#!/usr/bin/env bash
# pg_bench.sh - issue 7's PostgreSQL benchmarks, each side by side with its reference in one
# run, on a throwaway server of its own (tests/pg_server.sh, stopped at the end):
#  1. the first page of 100 Failed instances with their summaries (bench/list_bench.lua)
#     against Duroxide's own PG API: listInstancesByStatus, then getInstanceInfo for each of
#     the first 100 (tests/harness/client.js status-page, timed in process); goal >= 10x faster;
#  2. get_runtime_metrics in a fresh process against getSystemMetrics (bench/metrics.lua);
#     goal no slower;
#  3. iterating 1,000,000 instances with dx:instances(): time and the process's peak RSS
#     (VmHWM); goal <= 32 MB;
#  4. a 10,000-instance bulk cancel (one journaled job) against 10,000 cancelInstance calls of
#     Duroxide's PG client, on two copies of one store; both must write the same work items;
#  5. the load per call: statements each call sends and the connections a handle holds
#     (bench/pg_load.lua, on a copy of the seed store), for docs/postgres.md.
# The stores are derived from rows the real runtime wrote into PostgreSQL (bench/make_pg_store.sh
# from a --demo store, and from 100 WaitApprove instances for the cancel), kept between runs in
# the server's directory (PG_BENCH_DIR, default /tmp/duroxlua-pg-bench). HUGE=0 skips the 1M store;
# STEPS="1 4" runs only those parts.
# Needs node, psql and a built duroxlua ($DUROXLUA, default build/duroxlua; use a Release build).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bin=${DUROXLUA:-$root/build/duroxlua}
ROUNDS=${ROUNDS:-5}
HUGE=${HUGE:-1}
STEPS=" ${STEPS:-1 2 3 4 5} "
step() { [[ "$STEPS" == *" $1 "* ]]; }
dir=${PG_BENCH_DIR:-/tmp/duroxlua-pg-bench}
harness=$root/tests/harness
work=$(mktemp -d /tmp/durox-pg-bench.XXXXXX)
# a server that was already running (a bench server kept between runs) is left running
if tests/pg_server.sh status "$dir" >/dev/null 2>&1; then was_running=1; else was_running=0; fi
trap '[ "$was_running" = 1 ] || tests/pg_server.sh stop "$dir" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
admin=$(tests/pg_server.sh start "$dir")
port=$(cat "$dir/port")
url() { echo "postgresql://postgres@/$1?host=$dir&port=$port${2:+&$2}"; }
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
has_db() { [ "$(q "$admin" -c "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ]; }
# CPU ms (user + system, 10 ms ticks) of the server's processes: every child of its postmaster
server_cpu_ms() {
  local pm t=0 pid f
  pm=$(head -1 "$dir/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
  for pid in $(ps -o pid= --ppid "$pm"); do
    f=$(cut -d')' -f2- "/proc/$pid/stat" 2>/dev/null) || continue
    t=$((t + $(echo "$f" | awk '{print ($12 + $13) * 10}')))
  done
  echo "$t"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ---- the stores ----------------------------------------------------------------------------
if ! has_db seed; then
  q "$admin" -c "CREATE DATABASE seed"
  node "$harness/scenarios.js" create "$(url seed schema=dx)" --demo 300 --seed 11 --manifest "$work/seed.json" \
    >/dev/null 2>"$work/seed.err" || { cat "$work/seed.err" >&2; exit 1; }
fi
has_db big || bench/make_pg_store.sh "$admin" seed big 100000
if [ "$HUGE" = 1 ]; then has_db huge || bench/make_pg_store.sh "$admin" seed huge 1000000; fi
# (a statement limit for a loaded machine: the group-by with every percentile reads every
# instance's durations, 20 s with load 15 on 2 cores, past the default 30 s at load 20)
BIG=$(url big schema=dx\&statement_timeout=600000)
inst=$(q "$(url big)" -c "SELECT count(*) FROM dx.instances")
failed=$(q "$(url big)" -c "SELECT count(*) FROM dx.instances i JOIN dx.executions e ON e.instance_id = i.instance_id
  AND e.execution_id = i.current_execution_id WHERE e.status = 'Failed'")
echo "PostgreSQL $(q "$admin" -c 'SHOW server_version') over a unix socket; store 'big': $inst instances ($failed Failed)"
echo "duroxlua: $bin; Duroxide: npm duroxide-linux-x64-gnu 0.1.29 (its PG client); medians of $ROUNDS runs, ms"

# ---- 1. the first page of 100 Failed instances -----------------------------------------------
if step 1; then
ours=$("$bin" bench/list_bench.lua "$BIG" "$ROUNDS")
theirs=()
for _ in $(seq "$ROUNDS"); do
  theirs+=("$(node "$harness/client.js" "$BIG" status-page Failed 100 | sed 's/.*"elapsed_ms":\([0-9.]*\).*/\1/')")
done
dur=$(printf '%s\n' "${theirs[@]}" | median)
get() { echo "$ours" | awk -v k="$1" '$1 == k {print $2}'; }
first=$(get failed_page_first)
printf '\n%-60s %10s %10s %8s\n' "1. first page of 100 Failed instances with summaries" "duroxlua" "Duroxide" "ratio"
printf '%-60s %10s %10.1f %7.1fx\n' "   fresh handle (Duroxide: list by status + 100 x info)" "$first" "$dur" \
  "$(awk -v a="$first" -v b="$dur" 'BEGIN {print (a > 0 ? b / a : 0)}')"
printf '%-60s %10s %10s\n' "   same handle, second call" "$(get failed_page_warm)" "-"
for o in CreatedAt InstanceId UpdatedAt OrchestrationName; do
  printf '%-60s %10s %10s\n' "   keyset page 1 / page 500, order_by = $o" "$(get page1_$o)" "$(get page500_$o)"
done

fi

# ---- 2. runtime metrics in a fresh process ----------------------------------------------------
if step 2; then
echo
echo "2. metrics (bench/metrics.lua)"
"$bin" bench/metrics.lua "$BIG" "$ROUNDS" | sed 's/^/   /'
fi

# ---- 3. iterating 1,000,000 instances --------------------------------------------------------
if [ "$HUGE" = 1 ] && step 3; then
  HUGEURL=$(url huge schema=dx)
  n=$(q "$(url huge)" -c "SELECT count(*) FROM dx.instances")
  s0=$(server_cpu_ms)
  out=$(nice -n 10 "$bin" bench/iterate.lua "$HUGEURL")
  s1=$(server_cpu_ms)
  read -r got ms hwm cpu <<<"$out"
  [ "$got" = "$n" ] || { echo "iteration saw $got of $n instances" >&2; exit 1; }
  printf '\n%-60s %10s %10s %16s\n' "3. iterating every instance with dx:instances()" "time ms" "peak RSS" "CPU ms proc+srv"
  printf '%-60s %10s %7.1f MB %16s\n' "   $n instances (goal: peak RSS <= 32 MB)" "$ms" \
    "$(awk -v k="$hwm" 'BEGIN {print k / 1024}')" "$cpu+$((s1 - s0))"
fi

# ---- 5. the load per call ---------------------------------------------------------------------
if step 5; then
  q "$admin" -c "DROP DATABASE IF EXISTS load_copy WITH (FORCE)" -c "CREATE DATABASE load_copy TEMPLATE seed"
  printf '\n%-60s\n' "5. load per call: statements sent (the handle's counter), on the $(q "$(url seed)" -c \
    "SELECT count(*) FROM dx.instances")-instance seed store"
  "$bin" bench/pg_load.lua "$(url load_copy schema=dx)" | sed 's/^/   /'
  q "$admin" -c "DROP DATABASE load_copy WITH (FORCE)"
fi

# ---- 4. bulk cancel of 10,000 instances --------------------------------------------------------
N=${N:-10000}
step 4 || exit 0
if ! has_db cancelseed; then
  q "$admin" -c "CREATE DATABASE cancelseed"
  exec 3> >(node "$harness/live.js" "$(url cancelseed schema=dx)" --stdin-eof >"$work/live.out" 2>"$work/live.err")
  for _ in $(seq 300); do grep -q ready "$work/live.out" 2>/dev/null && break; sleep 0.1; done
  "$bin" bench/seed_waits.lua "$(url cancelseed schema=dx)" 100
  exec 3>&-
  sleep 3
fi
has_db cancelbig || bench/make_pg_store.sh "$admin" cancelseed cancelbig "$N"
q "$admin" -c "DROP DATABASE IF EXISTS c_ours WITH (FORCE)" -c "DROP DATABASE IF EXISTS c_theirs WITH (FORCE)"
q "$admin" -c "CREATE DATABASE c_ours TEMPLATE cancelbig" -c "CREATE DATABASE c_theirs TEMPLATE cancelbig"
q "$(url cancelbig)" -c "SELECT i.instance_id FROM dx.instances i JOIN dx.executions e ON e.instance_id = i.instance_id
  AND e.execution_id = i.current_execution_id WHERE e.status = 'Running' ORDER BY 1 LIMIT $N" >"$work/ids.txt"
n=$(wc -l <"$work/ids.txt")
t0=$(date +%s%3N)
"$bin" --store "$(url c_ours schema=dx)" cancel --ids-file "$work/ids.txt" --reason bench --yes --quiet --max "$n" \
  --json >"$work/ours.json"
ours_wall=$(( $(date +%s%3N) - t0 ))
ours_ms=$(sed -n 's/.*"elapsed_ms": *\([0-9.]*\).*/\1/p' "$work/ours.json")

t0=$(date +%s%3N)
theirs=$(node "$harness/client.js" "$(url c_theirs schema=dx)" cancel-many "$work/ids.txt" bench)
theirs_wall=$(( $(date +%s%3N) - t0 ))
theirs_ms=$(echo "$theirs" | sed 's/.*"elapsed_ms":\([0-9.]*\).*/\1/')
items() { q "$(url "$1")" -c "SELECT instance_id || ' ' || work_item FROM dx.orchestrator_queue WHERE work_item LIKE
  '{\"CancelInstance\"%' ORDER BY 1"; }
if [ "$(items c_ours | md5sum)" != "$(items c_theirs | md5sum)" ]; then
  echo "the two sides wrote different work items" >&2
  exit 1
fi
printf '\n%-60s %10s %10s %8s\n' "4. cancel $n running instances (enqueue only, no runtime)" "duroxlua" "Duroxide" "ratio"
printf '%-60s %10s %10s %7.1fx\n' "   in process: one bulk job vs $n x cancelInstance" "$ours_ms" "$theirs_ms" \
  "$(awk -v a="$ours_ms" -v b="$theirs_ms" 'BEGIN {print (a > 0 ? b / a : 0)}')"
printf '%-60s %10s %10s %7.1fx\n' "   wall (process start and store opening included)" "$ours_wall" "$theirs_wall" \
  "$(awk -v a="$ours_wall" -v b="$theirs_wall" 'BEGIN {print (a > 0 ? b / a : 0)}')"
echo "   (both wrote the same $(items c_ours | wc -l) CancelInstance work items)"
