#!/usr/bin/env bash
# fuzz_long.sh [RUNS] [TARGET...] - the on-demand long fuzzing run: each libFuzzer target
# (default: query token history work_item) for RUNS executions (default 10000000), seeded with
# the committed corpus plus seeds from real stores (the fixtures of build/, made if missing), and
# prints the executions, the time and the coverage of each. A crash or a broken invariant stops
# it (exit 1) and leaves the input in build-fuzz/. Takes about an hour per target for
# fuzz_token (it queries a real store), minutes for the others, on this 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10000000}
shift || true
targets=${*:-query token history work_item}
jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -s build/fixtures/scenarios.db.manifest.json ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  tests/make_fixtures.sh build/fixtures
fi
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang-14 -DCMAKE_BUILD_TYPE=Debug -DDUROX_FUZZ=ON -DDUROX_TESTS=OFF \
  -DDUROX_FUZZ_DB="$PWD/build/fixtures/scenarios.db" >/dev/null
cmake --build build-fuzz -j"$jobs" >/dev/null
seeds=build-fuzz/tests/fuzz/fixture-seeds
tests/fuzz/make_corpora.sh "$seeds" build/fixtures/scenarios.db build/fixtures/shapes.db >/dev/null
export DUROX_FUZZ_DB="$PWD/build/fixtures/scenarios.db"
for t in $targets; do
  work=build-fuzz/tests/fuzz/long-$t
  mkdir -p "$work"
  case $t in
    history | work_item) cp "$seeds/$t"/* "$work/" ;;
    token) DUROX_FUZZ_MAKE_CORPUS="$PWD/$work" build-fuzz/tests/fuzz/fuzz_token -runs=0 "$work" >/dev/null 2>&1 ;;
  esac
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  start=$(date +%s)
  log=build-fuzz/tests/fuzz/long-$t.log
  build-fuzz/tests/fuzz/fuzz_"$t" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=build-fuzz/tests/fuzz/ "${dict[@]}" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 || {
    tail -40 "$log" >&2
    echo "fuzz_long: fuzz_$t failed (log: $log)" >&2
    exit 1
  }
  secs=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "fuzz_$t: $execs executions in ${secs}s, $cov, no crash"
done
