#!/usr/bin/env bash
# fuzz_long.sh [RUNS] [TARGET...] - the on-demand long fuzzing run: each libFuzzer target
# (default: query token history work_item cursor) for RUNS executions (default 10000000), seeded with
# the committed corpus plus seeds from real stores (the fixtures of build/, made if missing), and
# prints the executions, the time and the coverage of each. A crash or a broken invariant stops
# it (exit 1) and leaves the input in the fuzz build directory ($DUROX_FUZZ_BUILD, default
# build-fuzz; give another one to run beside scripts/test.sh, which rebuilds build-fuzz).
# Takes about an hour per target for fuzz_token and fuzz_cursor (they query a real store),
# minutes for the others, on this 2-core machine. DUROX_FUZZ_SECONDS=N caps each target at N
# seconds (libFuzzer's -max_total_time; 0, the default, means no cap): the line then says how
# many of the RUNS executions fitted. DUROX_FUZZ_TIMEOUT (default 10) is libFuzzer's -timeout, the
# wall-clock seconds one input may take: raise it on a loaded machine, where a niced fuzzer gets
# so little CPU that an input of 1 s can take more than 10. DUROX_FUZZ_BUILD_TYPE (default
# RelWithDebInfo: -O2 with the sanitizers, as libFuzzer recommends; the core has no assert() that
# NDEBUG would remove) is the fuzz build's CMake build type; CTest's bounded runs use Debug.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10000000}
shift || true
targets=${*:-query token history work_item cursor}
fb=${DUROX_FUZZ_BUILD:-build-fuzz}
fx=${DUROX_FUZZ_FIXTURES:-build/fixtures} # the stores (copy them to run beside a test suite that remakes them)
cap=${DUROX_FUZZ_SECONDS:-0}
timeout=${DUROX_FUZZ_TIMEOUT:-10}
btype=${DUROX_FUZZ_BUILD_TYPE:-RelWithDebInfo}
jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -s "$fx/scenarios.db.manifest.json" ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  tests/make_fixtures.sh "$fx"
fi
cmake -S . -B "$fb" -DCMAKE_C_COMPILER=clang-14 -DCMAKE_BUILD_TYPE="$btype" -DDUROX_FUZZ=ON -DDUROX_TESTS=OFF \
  -DDUROX_FUZZ_DB="$(cd "$fx" && pwd)/scenarios.db" >/dev/null
cmake --build "$fb" -j"$jobs" >/dev/null
seeds=$fb/tests/fuzz/fixture-seeds
tests/fuzz/make_corpora.sh "$seeds" "$fx/scenarios.db" "$fx/shapes.db" >/dev/null
export DUROX_FUZZ_DB="$(cd "$fx" && pwd)/scenarios.db"
for t in $targets; do
  work=$fb/tests/fuzz/long-$t
  mkdir -p "$work"
  case $t in
    history | work_item) cp "$seeds/$t"/* "$work/" ;;
    token | cursor) DUROX_FUZZ_MAKE_CORPUS="$PWD/$work" "$fb/tests/fuzz/fuzz_$t" -runs=0 "$work" >/dev/null 2>&1 ;;
  esac
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  start=$(date +%s)
  log=$fb/tests/fuzz/long-$t.log
  "$fb/tests/fuzz/fuzz_$t" -runs="$runs" -max_total_time="$cap" -timeout="$timeout" -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$fb/tests/fuzz/" "${dict[@]}" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 || {
    tail -40 "$log" >&2
    echo "fuzz_long: fuzz_$t failed (log: $log)" >&2
    exit 1
  }
  secs=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  capped=
  [ "$execs" -lt "$runs" ] && capped=" (stopped by the ${cap}s cap before $runs)"
  echo "fuzz_$t: $execs executions in ${secs}s$capped, $cov, no crash"
done
