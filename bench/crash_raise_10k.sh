#!/usr/bin/env bash
# crash_raise_10k.sh [TARGETS] - the bulk-raise crash test (tests/spec/ops_crash_spec.lua) at
# benchmark size, on demand: TARGETS (default 10000) instances wait for Approve on the live
# runtime, a bulk raise is SIGKILLed at >= 20 random points and resumed, every target must get
# exactly one ExternalRaised and then exactly one ExternalEvent. Prints the kills, the job's
# progress after each, the instances the runtime failed by itself, and the time taken.
# Needs a build (build/) and its fixtures; takes ~10-20 minutes on this 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=${1:-10000}
[ -x build/duroxlua ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build build -j2 >/dev/null; }
[ -s build/fixtures/scenarios.db.manifest.json ] || tests/make_fixtures.sh build/fixtures
start=$(date +%s)
(cd tests/spec && DUROX_CRASH_TARGETS="$targets" DUROX_SCENARIO_DB="$PWD/../../build/fixtures/scenarios.db" \
   DUROX_HARNESS="$PWD/../harness" DUROXLUA="$PWD/../../build/duroxlua" \
   ../../build/duroxlua "$(command -v busted)" --output=plainTerminal ops_crash_spec.lua)
echo "crash_raise_10k: $targets targets, $(( $(date +%s) - start )) s"
