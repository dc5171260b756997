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
psql_url=$(echo "$url" | sed -E 's/[?&]schema=[a-z_0-9]+//')
nice -n 10 "$bin" "$root/bench/pg_index_bench.lua" "$url" "$rounds" "$psql_url"
echo "== Duroxide's PostgreSQL API"
page=$(nice -n 10 node "$root/bench/duroxide_timed.js" "$url" status-page "$rounds")
echo "duroxide_failed_page_first $(js "$page" first)"
echo "duroxide_failed_page_median $(js "$page" median)"
all=$(nice -n 10 node "$root/bench/duroxide_timed.js" "$url" list-all 1)
echo "duroxide_list_all_first $(js "$all" first)"
sys=$(nice -n 10 node "$root/bench/duroxide_timed.js" "$url" system 1)
echo "duroxide_system_metrics_first $(js "$sys" first)"
