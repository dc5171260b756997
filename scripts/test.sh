#!/usr/bin/env bash
# test.sh - the whole test suite on a fresh machine: installs what is needed, builds,
# creates the fixtures with the real Duroxide runtime, runs every test, then rebuilds with
# AddressSanitizer/UBSan and runs every test again (same fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure)

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDUROX_SANITIZE=ON -DDUROX_FIXTURES="$PWD/build/fixtures"
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure)
echo "test.sh: all tests passed (normal and sanitizer builds)"
