#!/usr/bin/env bash
# test.sh - the whole test suite on a fresh machine: installs what is needed, builds,
# creates the fixtures with the real Duroxide runtime, runs every test, then rebuilds with
# AddressSanitizer/UBSan and runs every test again (same fixtures), builds Release with gcc
# (and runs the unit tests and a few specs there) and everything with clang-14 in Release,
# tests included, both with -Werror, then runs the libFuzzer targets (clang-14) for a bounded time each
# (DUROX_FUZZ_SECONDS, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

# CTest starts a throwaway PostgreSQL server per build directory (tests/pg_server.sh, the
# pg_server fixture) and stops it after the last test; this makes sure none is left behind
# when a run is interrupted or a build fails.
stop_pg() {
  for b in build build-asan build-release; do
    d=$(sed -n 's/^DUROX_PG_DIR:PATH=//p' "$b/CMakeCache.txt" 2>/dev/null || true)
    [ -n "$d" ] && ./tests/pg_server.sh stop "$d" >/dev/null 2>&1 || true
  done
}
trap stop_pg EXIT

# Wall time of each phase, printed as it ends and summed up at the end (the CI budget is
# 90 minutes on a 2-core machine: docs/testing.md).
t0=$(date +%s); tp=$t0; cur=""; summary=""
phase() {
  local now; now=$(date +%s)
  if [ -n "$cur" ]; then
    summary+=$(printf '  %-28s %5d s\n' "$cur" $((now - tp)))$'\n'
    echo "test.sh: phase '$cur' took $((now - tp)) s (total $((now - t0)) s; load $(cut -d' ' -f1-3 /proc/loadavg))"
  fi
  cur=$1; tp=$now
}
phase setup
./scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)

phase build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
phase ctest
(cd build && ctest --output-on-failure)

phase build-asan
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDUROX_SANITIZE=ON -DDUROX_FIXTURES="$PWD/build/fixtures"
cmake --build build-asan -j"$jobs"
phase ctest-asan
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure)

# Every build type builds, warning-free (-Werror) with gcc and clang, tests on: RelWithDebInfo
# and Release with gcc (its optimiser warns about more, e.g. format truncation), with a few
# tests run on Release, Debug with the sanitizers above, and Release with clang-14 (every
# target, the tests' C programs included).
phase release
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DDUROX_FIXTURES="$PWD/build/fixtures"
cmake --build build-release -j"$jobs"
(cd build-release && ctest --output-on-failure -FA 'pg_server|pg_store|pg_busy_store' -R '^(c_unit|spec_options|cli_format|cli_exit)$')
phase clang
cmake -S . -B build-clang -DCMAKE_C_COMPILER=clang-14 -DCMAKE_BUILD_TYPE=Release -DDUROX_TESTS=ON \
  -DDUROX_FIXTURES="$PWD/build/fixtures"
cmake --build build-clang -j"$jobs"

# The libFuzzer targets (tests/fuzz: query parser, page tokens, history decoder, work-item
# encoder, stream cursors), each a CTest test fuzzing for a bounded time (DUROX_FUZZ_SECONDS each, default 20;
# a crash or a broken invariant fails the script). New inputs go to scratch corpora beside the
# build, seeded afresh from this run's fixtures (real stores); the committed seeds stay as they are.
phase build-fuzz
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang-14 -DCMAKE_BUILD_TYPE=Debug -DDUROX_FUZZ=ON -DDUROX_TESTS=OFF \
  -DDUROX_FUZZ_SECONDS="${DUROX_FUZZ_SECONDS:-20}" -DDUROX_FUZZ_DB="$PWD/build/fixtures/scenarios.db"
cmake --build build-fuzz -j"$jobs"
tests/fuzz/make_corpora.sh build-fuzz/tests/fuzz/fixture-seeds build/fixtures/scenarios.db build/fixtures/shapes.db
for t in history work_item; do cp build-fuzz/tests/fuzz/fixture-seeds/$t/* build-fuzz/tests/fuzz/corpus-$t/; done
for t in token cursor; do
  DUROX_FUZZ_DB="$PWD/build/fixtures/scenarios.db" DUROX_FUZZ_MAKE_CORPUS="$PWD/build-fuzz/tests/fuzz/corpus-$t" \
    build-fuzz/tests/fuzz/fuzz_$t -runs=0 build-fuzz/tests/fuzz/corpus-$t >/dev/null 2>&1
done
phase fuzz
(cd build-fuzz && ctest --output-on-failure)
phase done
printf 'test.sh: wall time per phase\n%s  %-28s %5d s\n' "$summary" total $(($(date +%s) - t0))
echo "test.sh: CPU time (user, system) of this shell, then of everything it ran:"; times
echo "test.sh: all tests passed (RelWithDebInfo, sanitizer and Release builds; clang build; fuzzing)"
