#!/usr/bin/env bash
# pg_queue_bench.sh URL [ROUNDS] - queue metrics on PostgreSQL against Duroxide's getQueueDepths
# (issue 10: within 2x), side by side in one run, the three cases of docs/index.md:
#   first call of a handle    vs getQueueDepths' first call (provider open, untimed)
#   store at rest             vs getQueueDepths' later calls (median)
#   after new items           vs getQueueDepths after the same enqueues
# URL: a store made by bench/make_pg_store.sh, with schema=dx. Each "after new items" round
# has Duroxide's client start 3 instances (bench/pg_queue_turns.js): they stay queued, so the
# store gains 3 queue rows a round. ROUNDS (default 5): the number of batches / processes
# each median is of. Wall ms; CPU ms of this process + the server's (10 ms ticks).
# DUROX_PG_QUEUE_MEMO_OFF=1 in the environment gives the figures of the server-side snapshot
# (no rows kept between calls). Runs under nice -n 10.
set -euo pipefail
url=${1:?usage: pg_queue_bench.sh URL [ROUNDS]}
rounds=${2:-5}
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=${DUROXLUA:-$root/build/duroxlua}
host=$(echo "$url" | sed -nE 's/.*[?&]host=([^&]*).*/\1/p')
if [ -n "$host" ] && [ -r "$host/data/postmaster.pid" ]; then
  PG_POSTMASTER_PID=$(head -1 "$host/data/postmaster.pid")
  export PG_POSTMASTER_PID
fi
js() { node -e "const o=JSON.parse(process.argv[1]); console.log(o[process.argv[2]])" "$1" "$2"; }
med() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
enq="node '$root/bench/pg_queue_turns.js' '$url' enqueue 3"
ours=$(nice -n 10 "$bin" "$root/bench/pg_queue_bench.lua" "$url" "$rounds" "$enq")
echo "$ours"
# Duroxide: first calls of ROUNDS processes, later calls, calls after the same enqueues
firsts=""
medians=""
for _ in $(seq "$rounds"); do
  q=$(nice -n 10 node "$root/bench/duroxide_timed.js" "$url" queues 20)
  firsts="$firsts $(js "$q" first) $(js "$q" cpu_first)"
  medians="$medians $(js "$q" median) $(js "$q" cpu_median)"
done
pair() { echo "$1" | tr ' ' '\n' | grep -v '^$' | paste - - | cut -f"$2" | med; }
t=$(nice -n 10 node "$root/bench/pg_queue_turns.js" "$url" measure "$rounds" 3)
get() { echo "$ours" | awk -v k="$1" -v c="$2" '$1 == k {print $c}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
echo
printf '%-46s %16s %16s %8s\n' "queue metrics (ms)" "get_queue_metrics" "getQueueDepths" "ratio"
row() { printf '%-46s %16s %16s %8s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
row "first call of a handle (wall)" "$(get queue_first 2)" "$(pair "$firsts" 1)"
row "store at rest (wall)" "$(get queue_rest 2)" "$(pair "$medians" 1)"
row "after 3 new items (wall)" "$(get queue_turns 2)" "$(js "$t" turns)"
row "first call of a handle (CPU, process)" "$(get queue_first 3)" "$(pair "$firsts" 2)"
row "store at rest (CPU, process)" "$(get queue_rest 3)" "$(pair "$medians" 2)"
row "after 3 new items (CPU, process)" "$(get queue_turns 3)" "$(js "$t" cpu_turns)"
echo "server CPU ms a call (ours): first $(get queue_first 4), at rest $(get queue_rest 4), after items $(get queue_turns 4)"
echo "queue rows (orchestrator incl. timers, worker): $(get queue_rows 2) $(get queue_rows 3)"
