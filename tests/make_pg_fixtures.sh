#!/usr/bin/env bash
# make_pg_fixtures.sh PGDIR DIR - the PostgreSQL twin of make_fixtures.sh: the scenario store
# written by the real Duroxide runtime into database durox_scenarios (schema dx) of the test
# server of PGDIR (tests/pg_server.sh), its manifest (DIR/pg-scenarios.manifest.json) and
# Duroxide's own management answers on it (DIR/pg-oracle.json). Reuses them while fresh
# (made less than 45 minutes ago: the scenarios depend on time), else makes them again.
# Specs copy the database with CREATE DATABASE ... TEMPLATE durox_scenarios.
set -euo pipefail
pgdir=${1:?usage: make_pg_fixtures.sh PGDIR DIR}
dir=${2:?usage: make_pg_fixtures.sh PGDIR DIR}
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$dir"
admin=$("$here/pg_server.sh" url "$pgdir")
port=$(cat "$pgdir/port")
store="postgresql://postgres@/durox_scenarios?host=$pgdir&port=$port&schema=dx"
manifest="$dir/pg-scenarios.manifest.json"
oracle="$dir/pg-oracle.json"
psqlq() { psql -X -q -v ON_ERROR_STOP=1 "$admin" "$@"; }

exists=$(psql -X -A -t "$admin" -c "SELECT count(*) FROM pg_database WHERE datname='durox_scenarios'")
if [ "$exists" = 1 ] && [ -s "$manifest" ] && [ -s "$oracle" ] && [ -z "$(find "$manifest" -mmin +45)" ] &&
   grep -q "\"port=$port\"\|port=$port" "$manifest"; then
  echo "fixtures: reusing PostgreSQL database durox_scenarios"
  exit 0
fi
for attempt in 1 2 3; do
  rm -f "$manifest" "$oracle" "$oracle.tmp"
  psqlq -c "DROP DATABASE IF EXISTS durox_scenarios WITH (FORCE)" -c "CREATE DATABASE durox_scenarios"
  if node "$here/harness/scenarios.js" create "$store" --manifest "$manifest" --log "$dir/pg-scenarios.runtime.log" \
       >/dev/null 2>"$dir/pg-scenarios.err"; then
    break
  fi
  cat "$dir/pg-scenarios.err" >&2
  if [ "$attempt" = 3 ]; then
    echo "fixtures: the PostgreSQL scenario store could not be made in 3 attempts" >&2
    exit 1
  fi
  echo "fixtures: attempt $attempt failed; making the PostgreSQL store again" >&2
done
node "$here/harness/oracle.js" "$store" >"$oracle.tmp"
mv "$oracle.tmp" "$oracle"
echo "fixtures: created PostgreSQL database durox_scenarios (schema dx)"
