#!/usr/bin/env bash
# test.sh - the whole test suite on a fresh machine: installs what is needed, builds,
# creates the fixtures with the real Duroxide runtime, runs every test, then rebuilds with
# AddressSanitizer/UBSan and runs every test again (same fixtures), then fuzzes the query
# parser for a bounded time (DUROX_FUZZ_SECONDS, default 30) with clang-14's libFuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)

# CTest starts a throwaway PostgreSQL server per build directory (tests/pg_server.sh, the
# pg_server fixture) and stops it after the last test; this makes sure none is left behind
# when a run is interrupted or a build fails.
stop_pg() {
  for b in build build-asan; do
    d=$(sed -n 's/^DUROX_PG_DIR:PATH=//p' "$b/CMakeCache.txt" 2>/dev/null || true)
    [ -n "$d" ] && ./tests/pg_server.sh stop "$d" >/dev/null 2>&1 || true
  done
}
trap stop_pg EXIT

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure)

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDUROX_SANITIZE=ON -DDUROX_FIXTURES="$PWD/build/fixtures"
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure)

# The query parser's libFuzzer target, for a bounded time (a crash or a broken invariant
# fails the script). New inputs go to a scratch corpus; the seeds stay as committed.
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang-14 -DCMAKE_BUILD_TYPE=Debug -DDUROX_FUZZ=ON -DDUROX_TESTS=OFF
cmake --build build-fuzz -j"$jobs" --target fuzz_query
mkdir -p build-fuzz/corpus-query
build-fuzz/tests/fuzz/fuzz_query -max_total_time="${DUROX_FUZZ_SECONDS:-30}" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -dict=tests/fuzz/query.dict build-fuzz/corpus-query tests/fuzz/corpus/query
echo "test.sh: all tests passed (normal and sanitizer builds, fuzzing)"
