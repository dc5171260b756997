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
rm -f "$db" "$db-wal" "$db-shm" "$db.manifest.json" "$dir/oracle.json" "$dir/oracle.json.tmp"
node "$here/harness/scenarios.js" create "$db" --log "$dir/scenarios.runtime.log" >/dev/null
node "$here/harness/oracle.js" "$db" > "$dir/oracle.json.tmp"
mv "$dir/oracle.json.tmp" "$dir/oracle.json"
echo "fixtures: created $db"
