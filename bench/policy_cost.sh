#!/usr/bin/env bash
# policy_cost.sh [N] - issue 8's policy-cost bench (bench/policy_cost.lua) on BOTH providers in
# one run: the first page of 100 instances and an N-instance bulk dry run (default 10,000),
# without a policy, with a per-row can_view_instance and with a filter-returning
# can_list_instances, side by side; goal: a filter-returning policy costs at most 10% over none.
#
# The stores are derived from rows the real Duroxide runtime wrote (nothing invented):
#   SQLite      bench/make_store.sh from the tests' scenario store ($DUROX_SCENARIO_DB, default
#               build/fixtures/scenarios.db: run `ctest -R fixtures` once)
#   PostgreSQL  a throwaway server of its own (tests/pg_server.sh, stopped at the end) in
#               $POLICY_BENCH_DIR (default /tmp/duroxlua-policy-bench); the runtime writes the
#               same scenarios into database seed (tests/harness/scenarios.js), then
#               bench/make_pg_store.sh derives database big from it
# Both are kept between runs (delete the directory to start again). RUNS (default 9) runs;
# PROVIDERS="sqlite postgres" (default both). Needs node, psql and a built duroxlua
# ($DUROXLUA, default build/duroxlua; use an optimized build). Run it with nice -n 10 on a
# shared machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
n=${1:-10000}
bin=${DUROXLUA:-$root/build/duroxlua}
RUNS=${RUNS:-9}
PROVIDERS=" ${PROVIDERS:-sqlite postgres} "
dir=${POLICY_BENCH_DIR:-/tmp/duroxlua-policy-bench}
mkdir -p "$dir"
seed=${DUROX_SCENARIO_DB:-$root/build/fixtures/scenarios.db}

if [[ "$PROVIDERS" == *" sqlite "* ]]; then
  [ -f "$seed" ] || { echo "policy_cost: no scenario store $seed (run ctest -R fixtures)" >&2; exit 1; }
  store=$dir/big-$n.db
  [ -f "$store" ] || bench/make_store.sh "$seed" "$store" "$n"
  "$bin" bench/policy_cost.lua "$store" "$RUNS"
  echo
fi

if [[ "$PROVIDERS" == *" postgres "* ]]; then
  trap 'tests/pg_server.sh stop "$dir" >/dev/null 2>&1 || true' EXIT
  admin=$(tests/pg_server.sh start "$dir")
  port=$(cat "$dir/port")
  url() { echo "postgresql://postgres@/$1?host=$dir&port=$port${2:+&$2}"; }
  q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
  has_db() { [ "$(q "$admin" -c "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ]; }
  if ! has_db seed; then
    q "$admin" -c "CREATE DATABASE seed"
    node tests/harness/scenarios.js create "$(url seed schema=dx)" --manifest "$dir/seed.json" \
      --log "$dir/seed.runtime.log" >/dev/null 2>"$dir/seed.err" || { cat "$dir/seed.err" >&2; exit 1; }
  fi
  has_db "big$n" || bench/make_pg_store.sh "$admin" seed "big$n" "$n"
  # a fresh copy each run: the bench appends the policy loads' audit records to it
  q "$admin" -c "DROP DATABASE IF EXISTS policy_run WITH (FORCE)" -c "CREATE DATABASE policy_run TEMPLATE big$n"
  "$bin" bench/policy_cost.lua "$(url policy_run schema=dx)" "$RUNS"
  q "$admin" -c "DROP DATABASE policy_run WITH (FORCE)"
fi
