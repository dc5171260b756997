#!/usr/bin/env bash
# live_throughput.sh [K] [C] - the live runtime's throughput while a bulk job runs, against
# without one: K (default 1000) Echo instances are queued, the real runtime (live.js) is
# started, and the time until all K have completed gives instances/second. Side by side in
# one run, on identical copies of one store that also holds completed and waiting instances:
#   alone               nothing else writes
#   duroxlua purge      a bulk purge of the completed instances runs meanwhile (pure write
#                       load: the runtime has nothing to do for them)
#   client purge        Duroxide's own deleteInstanceBulk of the same instances (against a busy
#                       runtime it may stop with "Database locked": acted shows what it did)
#   duroxlua unpaced    the bulk purge with --no-pacing (what pacing protects against)
#   duroxlua cancel     a bulk cancel of C (default 1000) waiting instances (the runtime then
#                       also works through C cancellations)
#   client cancel       Duroxide's own client cancels the same C instances (cancel-many)
# For each: the K instances' throughput, how long the job took, and the runtime's lock
# warnings: acks it retried, acks that failed for good (it then FAILS the orchestration with
# an infrastructure error: "infra"), fetches it backed off.
# Needs node, sqlite3, bc and a built duroxlua ($DUROXLUA, default build/duroxlua).
set -euo pipefail
K=${1:-1000}
C=${2:-1000}
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=${DUROXLUA:-$root/build/duroxlua}
harness=$root/tests/harness
work=$(mktemp -d /tmp/durox-bench-live.XXXXXX)
trap 'rm -rf "$work"' EXIT
ms() { date +%s%3N; }

start_runtime() { # db -> sets fd 3 to the runtime's stdin; waits for ready
  rm -f "$1.out" "$1.err"
  exec 3> >(node "$harness/live.js" "$1" --stdin-eof >"$1.out" 2>"$1.err")
  for _ in $(seq 600); do grep -q ready "$1.out" 2>/dev/null && return 0; sleep 0.05; done
  echo "live.js did not start" >&2
  exit 1
}
stop_runtime() { # db
  exec 3>&-
  for _ in $(seq 200); do grep -q "stopped" "$1.err" 2>/dev/null && break; sleep 0.05; done
  sleep 0.5
}

# ---- the store: completed and waiting instances (real rows, replicated) ------------------
seed=$work/seed.db
start_runtime "$seed"
"$bin" -e '
  local durox = require "durox"
  local dx = assert(durox.open("sqlite:'"$seed"'"))
  for i = 1, 100 do
    assert(dx:start_orchestration(("wait-%03d"):format(i), "WaitApprove", "null"))
    assert(dx:start_orchestration(("done-%03d"):format(i), "Echo", tostring(i)))
  end
  while #assert(dx:list_instances{ status = "Completed" }) < 100 or #assert(dx:list_instances{ status = "Running" }) < 100 do
    durox.sleep(100)
  end
  durox.sleep(500)'
stop_runtime "$seed"
"$root/bench/make_store.sh" "$seed" "$work/big.db" 5000 2>/dev/null
sqlite3 "$work/big.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
sqlite3 "$work/big.db" "SELECT instance_id FROM instances WHERE orchestration_name = 'Echo' ORDER BY 1" >"$work/done.txt"
sqlite3 "$work/big.db" "SELECT instance_id FROM instances WHERE orchestration_name = 'WaitApprove' ORDER BY 1
  LIMIT $C" >"$work/wait.txt"
np=$(wc -l <"$work/done.txt")
nc=$(wc -l <"$work/wait.txt")

# ---- one phase ------------------------------------------------------------------------------
declare -A RES
phase() { # name
  local name=$1 db=$work/${1// /-}.db
  cp "$work/big.db" "$db"
  "$bin" -e '
    local durox = require "durox"
    local dx = assert(durox.open("sqlite:'"$db"'", { max_write_share = 1 }))
    for i = 1, '"$K"' do assert(dx:start_orchestration(("tp-%05d"):format(i), "Echo", tostring(i))) end'
  start_runtime "$db"
  local t0 t1 pid=""
  t0=$(ms)
  case $name in
    "duroxlua purge") "$bin" --store "sqlite:$db" purge --ids-file "$work/done.txt" --yes --quiet --max "$np" \
                        --json >"$db.job" 2>&1 & pid=$! ;;
    "duroxlua unpaced") "$bin" --store "sqlite:$db" purge --ids-file "$work/done.txt" --yes --quiet --max "$np" \
                        --no-pacing --json >"$db.job" 2>&1 & pid=$! ;;
    "client purge") node "$root/bench/delete_bulk.js" "$db" "$work/done.txt" >"$db.job" 2>&1 & pid=$! ;;
    "duroxlua cancel") "$bin" --store "sqlite:$db" cancel --ids-file "$work/wait.txt" --reason bench --yes --quiet \
                        --max "$nc" --json >"$db.job" 2>&1 & pid=$! ;;
    "client cancel") node "$harness/client.js" "$db" cancel-many "$work/wait.txt" bench >"$db.job" 2>&1 & pid=$! ;;
  esac
  local job_ms="" job_end=""
  echo "phase '$name'..." >&2
  while :; do
    n=$(sqlite3 -cmd ".timeout 5000" "$db" "SELECT count(*) FROM executions WHERE instance_id LIKE 'tp-%' AND status <> 'Running'")
    [ "$n" -ge "$K" ] && break
    if [ $(( $(ms) - t0 )) -gt 300000 ]; then echo "phase $name: only $n of $K ended after 300 s" >&2; break; fi
    if [ -n "$pid" ] && [ -z "$job_ms" ] && ! kill -0 "$pid" 2>/dev/null; then job_ms=$(( $(ms) - t0 )); job_end=$(ms); fi
    sleep 0.05
  done
  t1=$(ms)
  if [ -n "$pid" ]; then
    wait "$pid" || true
    [ -z "$job_ms" ] && { job_ms="(>$(( t1 - t0 )))"; job_end=$(ms); }
  fi
  stop_runtime "$db"
  # what the job acted on, from its own output
  local acted="-"
  if [ -s "$db.job" ]; then
    acted=$("$bin" -e 'local durox = require "durox"
      local text = io.open("'"$db.job"'"):read("a")
      local r = durox.decode_json(text)
      if not r then -- the JSON line after any other output
        local last
        for line in text:gmatch("[^\n]+") do if line:match("^{") then last = line end end
        r = last and durox.decode_json(last) or {}
      end
      local n = r.purged_instances and #r.purged_instances or r.cancelled_instances and #r.cancelled_instances
        or r.result and r.result.instancesDeleted or r.count
      print(n or "?")')
    if [ "$acted" = "?" ]; then
      echo "phase $name: the job failed:" >&2
      head -c 600 "$db.job" >&2
      echo >&2
      acted="ERROR"
    fi
  fi
  local left
  case $name in *purge*|*unpaced*) # what is gone, whatever the job said
    left=$(sqlite3 "$db" "SELECT count(*) FROM instances WHERE orchestration_name = 'Echo' AND instance_id NOT LIKE 'tp-%'")
    acted="$acted/$((np - left))" ;;
  esac
  local err=$db.err
  local retried failed fetch infra
  retried=$(grep -c "ack_orchestration_item failed; retrying" "$err" || true)
  failed=$(grep -c "after max retries" "$err" || true)
  # failed acks while the job was still writing (the others happened with the runtime alone)
  local during=0 ts
  if [ -n "$job_end" ]; then
    while read -r ts; do
      [ -n "$ts" ] && [ "$(date -d "$ts" +%s%3N)" -le "$job_end" ] && during=$((during + 1))
    done < <(grep "after max retries" "$err" | sed 's/.*"timestamp":"\([^"]*\)".*/\1/')
    failed="$failed ($during)"
  fi
  fetch=$(grep -c "Error fetching" "$err" || true)
  infra=$(sqlite3 "$db" "SELECT count(*) FROM executions WHERE output LIKE 'infrastructure:%'")
  RES[$name]=$(printf '%-18s %9d ms %9.1f/s %13s %10s %10s %10s %8s %6s' "$name" $((t1 - t0)) \
    "$(echo "$K * 1000 / ($t1 - $t0)" | bc -l)" "${job_ms:--}${job_ms:+ ms}" "$acted" "$retried" "$failed" "$fetch" "$infra")
}

PHASES=("alone" "duroxlua purge" "client purge" "duroxlua unpaced" "duroxlua cancel" "client cancel")
for p in "${PHASES[@]}"; do phase "$p"; done

printf '\nlive runtime: %d Echo instances to complete; meanwhile %d completed instances purged or %d waiting\n' \
  "$K" "$np" "$nc"
printf 'instances cancelled (jobs start with the runtime)\n'
printf '%-18s %12s %11s %13s %10s %10s %10s %8s %6s\n' "phase" "K done in" "throughput" "job done in" "acted" \
  "ack retry" "ack FAILED" "fetch" "infra"
for p in "${PHASES[@]}"; do echo "${RES[$p]}"; done
printf '(job done in: from the runtime start until the job had written everything; acted: instances\n'
printf ' the job purged or cancelled as it reported (ERROR: it failed), for purges /instances gone;\n'
printf ' a cancel job is followed by the runtime working through the\n'
printf ' cancellations, which the K wait behind; infra: instances the runtime failed because an ack\n'
printf ' kept finding the write lock taken; ack FAILED (n): n of them while the job was writing;\n'
printf ' numbers vary by about +-25%% from run to run)\n'
