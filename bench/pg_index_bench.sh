#!/usr/bin/env bash
# pg_index_bench.sh URL [ROUNDS] - the PostgreSQL visibility index, side by side in one run:
# duroxlua through the index, duroxlua on the runtime's tables (index = false), and Duroxide's
# own PostgreSQL API (bench/duroxide_timed.js: listInstancesByStatus + getInstanceInfo each,
# getSystemMetrics). URL: a store made by bench/make_pg_store.sh (real rows), with schema=dx.
# Runs under nice -n 10. The index is rebuilt (its build time is one of the figures).
set -euo pipefail
url=${1:?usage: pg_index_bench.sh URL [ROUNDS]}
rounds=${2:-3}
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=${DUROXLUA:-$root/build/duroxlua}
js() { node -e "const o=JSON.parse(process.argv[1]); console.log(o[process.argv[2]])" "$1" "$2"; }
echo "== duroxlua (index, and index = false)"
# libpq's own URL: without duroxlua's parameters (schema=, statement_timeout=), which psql rejects
psql_url=$(echo "$url" | sed -E 's/([?&])(schema|statement_timeout)=[^&]*/\1/g; s/&&+/\&/g; s/[?]&/?/; s/[?&]$//')
# the server's processes, for the CPU figures (children of the postmaster of the URL's host=)
host=$(echo "$url" | sed -nE 's/.*[?&]host=([^&]*).*/\1/p')
if [ -n "$host" ] && [ -r "$host/data/postmaster.pid" ]; then
  PG_POSTMASTER_PID=$(head -1 "$host/data/postmaster.pid")
  export PG_POSTMASTER_PID
fi
nice -n 10 "$bin" "$root/bench/pg_index_bench.lua" "$url" "$rounds" "$psql_url"
echo "== get_runtime_metrics in a fresh process (open + first call; medians of ROUNDS processes)"
# each line: wall_ms cpu_ms server_cpu_ms digest_reads
# the first process after the catch-up above syncs the index (the copies' purge): shown apart
echo "runtime_metrics_fresh_process_index_first_after_changes $(nice -n 10 "$bin" "$root/bench/pg_fresh_metrics.lua" "$url" index)"
for mode in index store; do
  for _ in $(seq "$rounds"); do
    nice -n 10 "$bin" "$root/bench/pg_fresh_metrics.lua" "$url" "$mode"
  done > "${TMPDIR:-/tmp}/pg_fresh_$mode.txt"
  med() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
  f="${TMPDIR:-/tmp}/pg_fresh_$mode.txt"
  echo "runtime_metrics_fresh_process_${mode}_ms $(cut -d' ' -f1 "$f" | med)"
  echo "runtime_metrics_fresh_process_${mode}_cpu_ms_proc_plus_server $(cut -d' ' -f2 "$f" | med)+$(cut -d' ' -f3 "$f" | med)"
  echo "runtime_metrics_fresh_process_${mode}_digest_reads $(cut -d' ' -f4 "$f" | sort -u | tr '\n' ' ')"
  rm -f "$f"
done
echo "== one full read of history (psql COPY of the columns the build reads, to /dev/null)"
t0=$(date +%s%N)
nice -n 10 psql -X -q -v ON_ERROR_STOP=1 "$psql_url" \
  -c "\\copy (SELECT instance_id, execution_id, event_id, event_data FROM dx.history) TO /dev/null"
echo "history_full_read_ms $(( ($(date +%s%N) - t0) / 1000000 ))"
echo "== Duroxide's PostgreSQL API"
page=$(nice -n 10 node "$root/bench/duroxide_timed.js" "$url" status-page "$rounds")
echo "duroxide_failed_page_first $(js "$page" first)"
echo "duroxide_failed_page_median $(js "$page" median)"
echo "duroxide_failed_page_cpu_ms_first_median $(js "$page" cpu_first) $(js "$page" cpu_median)"
all=$(nice -n 10 node "$root/bench/duroxide_timed.js" "$url" list-all 1)
echo "duroxide_list_all_first $(js "$all" first)"
echo "duroxide_list_all_cpu_ms_first $(js "$all" cpu_first)"
sys=$(nice -n 10 node "$root/bench/duroxide_timed.js" "$url" system "$rounds")
echo "duroxide_system_metrics_first $(js "$sys" first)"
echo "duroxide_system_metrics_median $(js "$sys" median)"
echo "duroxide_system_metrics_cpu_ms_proc_plus_server_first $(js "$sys" cpu_first)+$(js "$sys" srv_first)"
echo "duroxide_system_metrics_cpu_ms_proc_plus_server_median $(js "$sys" cpu_median)+$(js "$sys" srv_median)"
echo "== get_queue_metrics against getQueueDepths (bench/pg_queue_bench.sh, at least 5 rounds)"
DUROXLUA="$bin" "$root/bench/pg_queue_bench.sh" "$url" "$(( rounds > 5 ? rounds : 5 ))"
