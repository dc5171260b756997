#!/usr/bin/env bash
# list_bench.sh [STORE_DB] - issue 2's listing benchmark, side by side in one run:
#  1. the first page of 100 Failed instances with their summaries: duroxlua against
#     Duroxide's own API (listInstancesByStatus, then getInstanceInfo for each of the first
#     100, timed inside the node process after opening, as client.js status-page does);
#  2. page 1 against page 500 of a keyset-paginated listing, in each order.
# Without STORE_DB it derives a store of >= 100,000 instances from a demo store the real
# runtime writes (bench/make_store.sh), under build/bench-data/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}
DUROXLUA=${DUROXLUA:-build/duroxlua}
db=${1:-}
if [ -z "$db" ]; then
  data=build/bench-data
  mkdir -p "$data"
  db=$data/list-100k.db
  if [ ! -s "$db" ]; then
    rm -f "$data/seed.db" "$data/seed.db-wal" "$data/seed.db-shm" "$data/seed.db.manifest.json"
    node tests/harness/scenarios.js create "$data/seed.db" --demo 300 --seed 11 >/dev/null 2>&1
    bench/make_store.sh "$data/seed.db" "$db" 100000
  fi
fi
instances=$(sqlite3 "$db" "SELECT count(*) FROM instances")
failed=$(sqlite3 "$db" "SELECT count(*) FROM instances i JOIN executions e ON e.instance_id=i.instance_id AND e.execution_id=i.current_execution_id WHERE e.status='Failed'")
echo "store: $db ($instances instances, $failed Failed), median of $ROUNDS runs, ms"

ours=$("$DUROXLUA" bench/list_bench.lua "sqlite:$db" "$ROUNDS")
theirs=()
for _ in $(seq "$ROUNDS"); do
  theirs+=("$(node tests/harness/client.js "$db" status-page Failed 100 | sed 's/.*"elapsed_ms":\([0-9.]*\).*/\1/')")
done
dur=$(printf '%s\n' "${theirs[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
get() { echo "$ours" | awk -v k="$1" '$1 == k {print $2}'; }

printf '\n%-58s %10s %10s\n' "first page of 100 Failed instances with summaries" "duroxlua" "Duroxide"
printf '%-58s %10s %10.1f\n' "  fresh handle (Duroxide: list by status + 100 x info)" "$(get failed_page_first)" "$dur"
printf '%-58s %10s %10s\n' "  same handle, second call" "$(get failed_page_warm)" "-"
printf '\n%-58s %10s %10s\n' "keyset pages of 100 (duroxlua)" "page 1" "page 500"
for o in CreatedAt InstanceId UpdatedAt OrchestrationName; do
  printf '%-58s %10s %10s\n' "  order_by = $o" "$(get page1_$o)" "$(get page500_$o)"
done
