#!/usr/bin/env bash
# make_pg_shapes.sh PGDIR DIR - the PostgreSQL twin of the shapes store (make_fixtures.sh makes
# the SQLite one): tests/harness/scenarios.js --set shapes written by the real Duroxide runtime
# into database durox_shapes (schema dx) of the test server of PGDIR (tests/pg_server.sh), its
# manifest (DIR/pg-shapes.manifest.json) and Duroxide's own answers on it
# (DIR/pg-shapes-oracle.json). Reuses them while fresh (made less than 45 minutes ago on this
# server), else makes them again (at most 3 attempts).
set -euo pipefail
pgdir=${1:?usage: make_pg_shapes.sh PGDIR DIR}
dir=${2:?usage: make_pg_shapes.sh PGDIR DIR}
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$dir"
admin=$("$here/pg_server.sh" url "$pgdir")
port=$(cat "$pgdir/port")
store="postgresql://postgres@/durox_shapes?host=$pgdir&port=$port&schema=dx"
manifest="$dir/pg-shapes.manifest.json"
oracle="$dir/pg-shapes-oracle.json"
psqlq() { psql -X -q -v ON_ERROR_STOP=1 "$admin" "$@"; }

exists=$(psql -X -A -t "$admin" -c "SELECT count(*) FROM pg_database WHERE datname='durox_shapes'")
if [ "$exists" = 1 ] && [ -s "$manifest" ] && [ -s "$oracle" ] && [ -z "$(find "$manifest" -mmin +45)" ] &&
   grep -q "port=$port" "$manifest"; then
  echo "fixtures: reusing PostgreSQL database durox_shapes"
  exit 0
fi
for attempt in 1 2 3; do
  rm -f "$manifest" "$oracle" "$oracle.tmp"
  psqlq -c "DROP DATABASE IF EXISTS durox_shapes WITH (FORCE)" -c "CREATE DATABASE durox_shapes"
  if node "$here/harness/scenarios.js" create "$store" --set shapes --manifest "$manifest" \
       --log "$dir/pg-shapes.runtime.log" >/dev/null 2>"$dir/pg-shapes.err"; then
    break
  fi
  cat "$dir/pg-shapes.err" >&2
  if [ "$attempt" = 3 ]; then
    echo "fixtures: the PostgreSQL shapes store could not be made in 3 attempts" >&2
    exit 1
  fi
  echo "fixtures: attempt $attempt failed; making the PostgreSQL shapes store again" >&2
done
node "$here/harness/oracle.js" "$store" >"$oracle.tmp"
mv "$oracle.tmp" "$oracle"
echo "fixtures: created PostgreSQL database durox_shapes (schema dx)"
