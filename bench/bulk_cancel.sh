#!/usr/bin/env bash
# bulk_cancel.sh [N] - time to queue the cancellation of N (default 10000) running instances:
# duroxlua's bulk cancel (one journaled job) against N calls of Duroxide's own client
# cancelInstance (tests/harness/client.js cancel-many), side by side on identical copies of
# one store, with no runtime running (what is measured is the enqueueing). Then checks that
# both wrote the same work items.
#
# The store: 100 WaitApprove instances started on the real runtime (live.js), replicated
# from those real rows with bench/make_store.sh until N are waiting.
# Needs node, sqlite3 and a built duroxlua ($DUROXLUA, default build/duroxlua).
set -euo pipefail
N=${1:-10000}
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=${DUROXLUA:-$root/build/duroxlua}
harness=$root/tests/harness
work=$(mktemp -d /tmp/durox-bench-cancel.XXXXXX)
trap 'rm -rf "$work"' EXIT
ms() { date +%s%3N; }

# ---- a store with N waiting instances, all rows written by the runtime -------------------
seed=$work/seed.db
exec 3> >(node "$harness/live.js" "$seed" --stdin-eof >"$work/live.out" 2>"$work/live.err")
for _ in $(seq 300); do grep -q ready "$work/live.out" 2>/dev/null && break; sleep 0.1; done
"$bin" -e '
  local durox = require "durox"
  local dx = assert(durox.open("sqlite:'"$seed"'"))
  for i = 1, 100 do assert(dx:start_orchestration(("wait-%03d"):format(i), "WaitApprove", "null")) end
  while #assert(dx:list_instances{ status = "Running" }) < 100 do durox.sleep(100) end
  durox.sleep(500)'
exec 3>&-
for _ in $(seq 100); do [ -s "$work/live.out" ] && ! pgrep -f "live.js $seed" >/dev/null && break; sleep 0.1; done
sleep 1
"$root/bench/make_store.sh" "$seed" "$work/big.db" "$N" 2>/dev/null
sqlite3 "$work/big.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
sqlite3 "$work/big.db" "SELECT i.instance_id FROM instances i JOIN executions e ON e.instance_id = i.instance_id
  AND e.execution_id = i.current_execution_id WHERE e.status = 'Running' ORDER BY 1 LIMIT $N" >"$work/ids.txt"
n=$(wc -l <"$work/ids.txt")
cp "$work/big.db" "$work/ours.db"
cp "$work/big.db" "$work/theirs.db"
cp "$work/big.db" "$work/ours-filter.db"

# ---- ours: one bulk job (ids), and one by filter ------------------------------------------
t0=$(ms)
"$bin" --store "sqlite:$work/ours.db" cancel --ids-file "$work/ids.txt" --reason bench --yes --quiet \
  --max "$n" --json >"$work/ours.json"
t1=$(ms)
ours_wall=$((t1 - t0))
ours_inproc=$("$bin" -e 'local durox = require "durox"
  local r = durox.decode_json(io.open("'"$work/ours.json"'"):read("a")); print(r.elapsed_ms, #r.cancelled_instances)')
cp "$work/big.db" "$work/ours-unpaced.db"
t0=$(ms)
"$bin" --store "sqlite:$work/ours-unpaced.db" cancel --ids-file "$work/ids.txt" --reason bench --yes --quiet \
  --max "$n" --no-pacing --json >"$work/ours-unpaced.json"
t1=$(ms)
unpaced_wall=$((t1 - t0))
unpaced_inproc=$("$bin" -e 'local durox = require "durox"
  local r = durox.decode_json(io.open("'"$work/ours-unpaced.json"'"):read("a")); print(r.elapsed_ms, #r.cancelled_instances)')
t0=$(ms)
"$bin" --store "sqlite:$work/ours-filter.db" cancel --status Running --name WaitApprove --reason bench --yes --quiet \
  --max 1000000 --json >"$work/ours-filter.json"
t1=$(ms)
filter_wall=$((t1 - t0))
filter_inproc=$("$bin" -e 'local durox = require "durox"
  local r = durox.decode_json(io.open("'"$work/ours-filter.json"'"):read("a")); print(r.elapsed_ms, #r.cancelled_instances)')

# ---- Duroxide's own client: N cancelInstance calls -----------------------------------------
t0=$(ms)
node "$harness/client.js" "$work/theirs.db" cancel-many "$work/ids.txt" bench >"$work/theirs.json"
t1=$(ms)
theirs_wall=$((t1 - t0))
theirs_inproc=$(sed 's/.*"elapsed_ms":\([0-9.]*\).*/\1/' "$work/theirs.json")

# ---- the same rows? ------------------------------------------------------------------------
q="SELECT instance_id || ' ' || work_item FROM orchestrator_queue WHERE work_item LIKE '{\"CancelInstance\"%' ORDER BY 1"
sqlite3 "$work/ours.db" "$q" >"$work/ours.rows"
sqlite3 "$work/theirs.db" "$q" >"$work/theirs.rows"
same=$(cmp -s "$work/ours.rows" "$work/theirs.rows" && echo yes || echo NO)
rows=$(wc -l <"$work/ours.rows")

read -r ours_ms ours_n <<<"$ours_inproc"
read -r filter_ms filter_n <<<"$filter_inproc"
read -r unpaced_ms unpaced_n <<<"$unpaced_inproc"
printf '\nbulk cancel of %d running instances (enqueue only, no runtime running)\n' "$n"
printf '%-48s %12s %12s %10s\n' "" "in-process" "wall" "cancelled"
printf '%-48s %10s ms %10s ms %10s\n' "duroxlua cancel --ids-file (one job)" "$ours_ms" "$ours_wall" "$ours_n"
printf '%-48s %10s ms %10s ms %10s\n' "duroxlua cancel --ids-file --no-pacing" "$unpaced_ms" "$unpaced_wall" "$unpaced_n"
printf '%-48s %10s ms %10s ms %10s\n' "duroxlua cancel --status Running (one job)" "$filter_ms" "$filter_wall" "$filter_n"
printf '%-48s %10s ms %10s ms %10s\n' "Duroxide client cancelInstance x $n" "$theirs_inproc" "$theirs_wall" "$n"
printf 'work items identical to the client'"'"'s: %s (%d rows)\n' "$same" "$rows"
printf '(duroxlua paces its write transactions to hold the write lock at most 10%% of the time unless\n'
printf ' --no-pacing, see docs/operations.md; in-process = from the call to the response / the client loop)\n'
