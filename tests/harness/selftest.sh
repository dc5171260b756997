#!/usr/bin/env bash
# Smoke test of the harness itself: create a scenario store, query it with the oracle, then run live.js and
# check that a row INSERTed by hand with sqlite3 is processed by the real runtime.
# usage: tests/harness/selftest.sh [workdir]      (needs node, sqlite3, and `npm ci` done in tests/harness)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="${1:-$(mktemp -d /tmp/duroxlua-harness.XXXXXX)}"
mkdir -p "$WORK"
DB="$WORK/selftest.db"
rm -f "$DB" "$DB-wal" "$DB-shm" "$DB.manifest.json"

fail() { echo "selftest: FAIL: $*" >&2; exit 1; }

echo "selftest: create $DB"
t0=$(date +%s%N)
node "$HERE/scenarios.js" create "$DB" --log "$WORK/selftest.runtime.log" >/dev/null
echo "selftest: create took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
[ -f "$DB.manifest.json" ] || fail "no manifest"

echo "selftest: oracle"
node "$HERE/oracle.js" "$DB" >"$WORK/oracle.json"
node -e '
  const o = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const m = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
  const n = Object.keys(m.instances).length;
  if (o.systemMetrics.totalInstances !== n) throw new Error(`oracle totalInstances ${o.systemMetrics.totalInstances} != manifest ${n}`);
  for (const [id, x] of Object.entries(m.instances)) {
    const s = o.instances[id] && o.instances[id].info && o.instances[id].info.status;
    if (s !== x.status) throw new Error(`${id}: oracle status ${s} != manifest ${x.status}`);
  }
' "$WORK/oracle.json" "$DB.manifest.json" || fail "oracle disagrees with manifest"

echo "selftest: live + hand-written INSERT"
node "$HERE/live.js" "$DB" >"$WORK/live.out" 2>"$WORK/live.err" &
LIVE=$!
trap 'kill -TERM $LIVE 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -qx ready "$WORK/live.out" && break; sleep 0.1; done
grep -qx ready "$WORK/live.out" || fail "live.js did not print ready"
NOW=$(( $(date +%s%N) / 1000000 ))
sqlite3 -cmd ".timeout 5000" "$DB" "INSERT INTO orchestrator_queue(instance_id, work_item, visible_at) VALUES ('wait-approve-1', '{\"ExternalRaised\":{\"instance\":\"wait-approve-1\",\"name\":\"Approve\",\"data\":\"\\\"ok\\\"\"}}', $NOW);"
status=""
for _ in $(seq 1 100); do
  status=$(node "$HERE/client.js" "$DB" status wait-approve-1)
  case "$status" in *Completed*) break ;; esac
  sleep 0.1
done
echo "selftest: wait-approve-1 -> $status"
[ "$status" = '{"status":"Completed","output":"{\"approved\":\"ok\"}","customStatusVersion":0}' ] || fail "unexpected status $status"
kill -TERM $LIVE
wait $LIVE || fail "live.js exit code $?"
trap - EXIT
echo "selftest: OK ($WORK)"
