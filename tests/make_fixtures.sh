#!/usr/bin/env bash
# make_fixtures.sh DIR - creates the shared test fixtures once, each with the real Duroxide runtime
# (tests/harness/scenarios.js) and Duroxide's own management answers on it (tests/harness/oracle.js):
#   scenarios.db + oracle.json          the main scenario store (--set scenarios)
#   shapes.db    + shapes-oracle.json   the history shapes the main store lacks (--set shapes)
# Reuses them when complete and fresh; rebuilds them when partial. Both are made in parallel.
set -euo pipefail
dir=${1:?usage: make_fixtures.sh DIR}
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$dir"

# make_store NAME SET ORACLE: $dir/NAME.db from `scenarios.js create --set SET`, its oracle in $dir/ORACLE.
make_store() {
  local name=$1 set=$2 oracle=$3
  local db="$dir/$name.db"
  # Reuse only fresh fixtures: scenarios depend on time (1 h timers fire after an hour, and tests run
  # the runtime on copies).
  if [ -s "$db.manifest.json" ] && [ -s "$dir/$oracle" ] && [ -z "$(find "$db.manifest.json" -mmin +45)" ]; then
    echo "fixtures: reusing $db"
    return 0
  fi
  # Duroxide 0.1.29's SQLite provider sometimes fails an instance on its own: an ack that meets
  # another connection's write lock fails the orchestration with an infrastructure error
  # ("Database locked", see docs/operations.md). The generator then reports a scenario that did
  # not reach its state; such a store is discarded and made again (at most 3 times).
  local attempt
  for attempt in 1 2 3; do
    rm -f "$db" "$db-wal" "$db-shm" "$db.manifest.json" "$dir/$oracle" "$dir/$oracle.tmp"
    if node "$here/harness/scenarios.js" create "$db" --set "$set" --log "$dir/$name.runtime.log" >/dev/null \
         2>"$dir/$name.err"; then
      break
    fi
    cat "$dir/$name.err" >&2
    if [ "$attempt" = 3 ]; then
      echo "fixtures: the $set store could not be made in 3 attempts" >&2
      return 1
    fi
    if grep -q "Failed to ack orchestration item, failing orchestration" "$dir/$name.runtime.log"; then
      echo "fixtures: the runtime failed an instance of $name on its own (Database locked on ack); making it again" >&2
    else
      echo "fixtures: $name attempt $attempt failed; making it again" >&2
    fi
  done
  node "$here/harness/oracle.js" "$db" > "$dir/$oracle.tmp"
  mv "$dir/$oracle.tmp" "$dir/$oracle"
  echo "fixtures: created $db"
}

make_store scenarios scenarios oracle.json & main=$!
make_store shapes shapes shapes-oracle.json & shapes=$!
rc=0
wait "$main" || rc=1
wait "$shapes" || rc=1
exit "$rc"
