#!/usr/bin/env bash
# make_big_store.sh DIR [N] - a store of at least N (default 100000) instances derived from rows
# the real Duroxide runtime wrote (a demo store it writes, replicated by bench/make_store.sh),
# for the visibility index's differential spec. Reused while it exists.
set -euo pipefail
dir=${1:?usage: make_big_store.sh DIR [N]}
n=${2:-100000}
here="$(cd "$(dirname "$0")" && pwd)"
db=$dir/big-$n.db
[ -s "$db" ] && { echo "big store: reusing $db"; exit 0; }
mkdir -p "$dir"
seed=$dir/big-seed.db
rm -f "$seed" "$seed-wal" "$seed-shm" "$seed.manifest.json" "$db.tmp" "$db.tmp-wal" "$db.tmp-shm"
# Duroxide 0.1.29's SQLite provider sometimes fails an instance on its own ("Database locked" on
# ack, see docs/operations.md); such a seed is discarded and made again, as make_fixtures.sh does.
for attempt in 1 2 3; do
  rm -f "$seed" "$seed-wal" "$seed-shm" "$seed.manifest.json"
  if node "$here/harness/scenarios.js" create "$seed" --demo 300 --seed 11 >/dev/null 2>"$dir/big-seed.err"; then
    break
  fi
  if [ "$attempt" = 3 ]; then
    cat "$dir/big-seed.err" >&2
    echo "big store: the seed store could not be made in 3 attempts" >&2
    exit 1
  fi
  echo "big store: attempt $attempt failed; making the seed store again" >&2
done
"$here/../bench/make_store.sh" "$seed" "$db.tmp" "$n"
mv "$db.tmp" "$db"
echo "big store: created $db"
