#!/usr/bin/env bash
# make_fixtures.sh DIR - creates the shared test fixtures once: a scenario store written by
# the real Duroxide runtime (tests/harness/scenarios.js) and Duroxide's own management
# answers on it (oracle.json). Reuses them when complete; rebuilds them when partial.
set -euo pipefail
dir=${1:?usage: make_fixtures.sh DIR}
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$dir"
db="$dir/scenarios.db"
# Reuse only fresh fixtures: scenarios depend on time (sleep-1h-1's timer fires after an hour,
# and tests run the runtime on copies).
if [ -s "$db.manifest.json" ] && [ -s "$dir/oracle.json" ] && [ -z "$(find "$db.manifest.json" -mmin +45)" ]; then
  echo "fixtures: reusing $db"
  exit 0
fi
# Duroxide 0.1.29's SQLite provider sometimes fails an instance on its own: an ack that meets
# another connection's write lock fails the orchestration with an infrastructure error
# ("Database locked", see docs/operations.md). The generator then reports a scenario that did
# not reach its state; such a store is discarded and made again (at most 3 times).
for attempt in 1 2 3; do
  rm -f "$db" "$db-wal" "$db-shm" "$db.manifest.json" "$dir/oracle.json" "$dir/oracle.json.tmp"
  if node "$here/harness/scenarios.js" create "$db" --log "$dir/scenarios.runtime.log" >/dev/null \
       2>"$dir/scenarios.err"; then
    break
  fi
  cat "$dir/scenarios.err" >&2
  if [ "$attempt" = 3 ]; then
    echo "fixtures: the scenario store could not be made in 3 attempts" >&2
    exit 1
  fi
  if grep -q "Failed to ack orchestration item, failing orchestration" "$dir/scenarios.runtime.log"; then
    echo "fixtures: the runtime failed an instance on its own (Database locked on ack); making the store again" >&2
  else
    echo "fixtures: attempt $attempt failed; making the store again" >&2
  fi
done
node "$here/harness/oracle.js" "$db" > "$dir/oracle.json.tmp"
mv "$dir/oracle.json.tmp" "$dir/oracle.json"
echo "fixtures: created $db"
