-- ops_crash_kinds_spec.lua - the exactly-once guarantee of bulk cancel, purge and restart under
-- SIGKILL, as ops_crash_spec.lua checks it for bulk raise. The LIVE real runtime makes three
-- populations in one store: instances waiting for Approve (cancel targets), completed ones
-- (purge targets) and failed ones (restart targets). With the runtime stopped (nothing consumes
-- or hides a duplicate), each bulk operation is started and resumed by processes killed with
-- SIGKILL at random points (at least 20 kills while the job runs), then finished; the store
-- must then hold exactly one CancelInstance per cancel target, no row of any purge target and
-- every other row untouched (Duroxide's own listing agrees), exactly one queued start
-- `<id>~r1` per restart target. Then the runtime processes what was queued: every cancel target
-- is cancelled once, every restart runs once.
--
-- The runtime's own failures (0.1.29's SQLite ack gives up under lock contention and fails the
-- orchestration, docs/operations.md) are identified by their output, counted, reported and
-- bounded; every other runtime error fails the test.
--
-- It runs on SQLite (a temporary file) and on PostgreSQL (a fresh database on the test server),
-- each read independently with its own tool (sqlite3, psql).
local durox = require "durox"
local L = require "live"
local H = require "helpers"

assert(not L.skip, "ops_crash_kinds_spec needs DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA (run it through ctest)")
assert(not H.pg_skip, "ops_crash_kinds_spec needs the PostgreSQL test server (DUROX_PG_*; run it through ctest)")

local N = tonumber(os.getenv("DUROX_CRASH_KIND_TARGETS")) or 1200 -- instances per population
local KILLS = 20
local SELF_FAILED_BOUND = 0.05 -- at most this share of a population failed by the runtime itself

local function own_ack_failure(line)
  return line:match("Failed to ack") or line:match("after max retries") or line:match("failing orchestration")
    or line:match("Failed to commit failure event")
end

-- The stores: P:new(dir) makes an empty one and returns its URL and what live.js / client.js
-- take; P:sql(sqlite_sql [, pg_sql]) reads it with the provider's own tool (JSON nulls as nil);
-- P.drop() removes it.
local PROVIDERS = {
  { name = "sqlite",
    new = function(P, dir)
      P.db = dir .. "/kinds.db"
      return "sqlite:" .. P.db, P.db
    end,
    sql = function(P, q) return H.nil_nulls(L.sql(P.db, q)) end,
    drop = function() end,
    -- the runtime's own ack failures under lock contention
    self_failed_sql = "SELECT instance_id FROM executions WHERE status = 'Failed' AND output LIKE"
      .. " 'infrastructure:%database is locked%'",
    jobs_table = "durox_job_targets" },
  { name = "postgres",
    new = function(P)
      assert(os.execute(("psql -X -q -v ON_ERROR_STOP=1 %s -c 'DROP DATABASE IF EXISTS durox_crash_kinds WITH (FORCE)'"
        .. " -c 'CREATE DATABASE durox_crash_kinds' >/dev/null"):format(L.q(H.pg_url("postgres")))))
      P.url = H.pg_url("durox_crash_kinds", "schema=dx")
      return P.url, P.url
    end,
    sql = function(P, q, pgq) return H.nil_nulls(H.psql(pgq or q, "durox_crash_kinds")) end,
    drop = function()
      os.execute(("psql -X -q %s -c 'DROP DATABASE IF EXISTS durox_crash_kinds WITH (FORCE)' >/dev/null 2>&1"):format(
        L.q(H.pg_url("postgres"))))
    end,
    self_failed_sql = "SELECT instance_id FROM executions WHERE status = 'Failed' AND output LIKE 'infrastructure:%'",
    jobs_table = "durox.job_targets" },
}

-- tests/harness/live.js on store (a file or a URL), its output beside base; waits for "ready".
local function start_runtime(store, base)
  local rt = { out = base .. ".live.out", err = base .. ".live.err" }
  rt.pipe = assert(io.popen(("exec node %s %s --stdin-eof >%s 2>%s"):format(L.q(L.harness .. "/live.js"), L.q(store),
    L.q(rt.out), L.q(rt.err)), "w"))
  L.wait_until(function() return (L.read(rt.out) or ""):match("ready") end, 30000, "live.js to print ready", 50)
  return rt
end

for _, P in ipairs(PROVIDERS) do
local function value(q, pgq)
  local rows = P:sql(q, pgq)
  if #rows == 0 then return nil end
  local _, v = next(rows[1])
  return v
end

-- Instances the runtime failed by itself (an ack that failed after its retries).
local function self_failed()
  local ids, n = {}, 0
  for _, row in ipairs(P:sql(P.self_failed_sql)) do
    ids[row.instance_id] = true
    n = n + 1
  end
  return ids, n
end

local function ids_of(query)
  local set, n = {}, 0
  for _, row in ipairs(P:sql(query)) do
    set[row.instance_id] = true
    n = n + 1
  end
  return set, n
end

local function drain(what)
  L.wait_until(function()
    return value("SELECT (SELECT count(*) FROM orchestrator_queue WHERE work_item NOT LIKE"
      .. " '{\"TimerFired\"%') + (SELECT count(*) FROM worker_queue) AS n") == 0
  end, 300000, what, 500)
end

describe("bulk cancel, purge and restart killed with SIGKILL, on " .. P.name, function()
  local dir, store, url, dx, rt
  local targets = {}     -- kind -> set of ids
  local counts = {}      -- kind -> number of targets
  local self_before      -- set of ids the runtime failed while making the populations
  local progress_report = {}
  local t0

  setup(function()
    t0 = os.time()
    dir = L.tmpdir()
    url, store = P:new(dir)
    L.stop_runtime(start_runtime(store, dir .. "/create")) -- creates the store
    dx = assert(durox.open(url, { config = { max_bulk_operations = 1000000 } }))
    for i = 1, N do
      assert(dx:start_orchestration(("kc-%04d"):format(i), "WaitApprove", "null"))
      assert(dx:start_orchestration(("kp-%04d"):format(i), "EchoRaw", '"purge me"'))
      assert(dx:start_orchestration(("kr-%04d"):format(i), "ThrowingOrchestration", '{"why":"crash"}'))
    end
    rt = start_runtime(store, dir .. "/make")
    drain("the runtime to make " .. 3 * N .. " instances")
    L.stop_runtime(rt)
    for _, line in ipairs(L.log_errors(rt)) do assert(own_ack_failure(line), "runtime error: " .. line) end
    local n
    self_before, n = self_failed()
    print(("\n%d instances made in %d s; the runtime failed %d of them by itself (ack gave up)"):format(3 * N,
      os.time() - t0, n))
    assert.is_true(n <= SELF_FAILED_BOUND * 3 * N, n .. " instances failed by the runtime itself")
    -- the targets, as the store holds them (each kind's filter, in SQL)
    local cur = " FROM instances i JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id ="
      .. " i.current_execution_id WHERE i.orchestration_name = "
    targets.cancel, counts.cancel = ids_of("SELECT i.instance_id" .. cur .. "'WaitApprove' AND e.status = 'Running'")
    targets.purge, counts.purge = ids_of("SELECT i.instance_id" .. cur .. "'EchoRaw' AND e.status = 'Completed'")
    targets.restart, counts.restart = ids_of("SELECT i.instance_id" .. cur .. "'ThrowingOrchestration' AND"
      .. " e.status = 'Failed'")
    for kind, c in pairs(counts) do
      assert.is_true(c >= N * (1 - SELF_FAILED_BOUND), kind .. ": only " .. c .. " targets")
    end
  end)

  teardown(function()
    if dx then dx:close() end
    L.stop_runtime(rt)
    P.drop()
    L.cleanup(dir)
  end)

  -- Starts / resumes the job of kind with SIGKILLs until KILLS of them hit a running process;
  -- then resumes it to its end and returns the response and the job.
  local function crash_and_finish(kind, seed)
    math.randomseed(seed)
    local newest = function() return (assert(dx:list_jobs { kind = kind, limit = 1 }))[1] end
    local worker = L.q(L.bin) .. " support/bulk_worker.lua " .. L.q(url) .. " " .. kind
    local kills, trials, progress = 0, 0, {}
    while kills < KILLS and trials < 3 * KILLS do
      trials = trials + 1
      local job = newest()
      assert(not job or job.state ~= "completed", ("the %s job completed after only %d kills: %s"):format(kind, kills,
        table.concat(progress, " ")))
      local mode = (job and job.state ~= "abandoned") and job.job_id or "start"
      -- alternate throttled runs (kills mostly between batches) and fast runs with large batches
      -- (kills mostly inside a transaction); cancels and restarts are cheap, so even the fast
      -- runs are paced, or a few of them would finish the job
      local fast = trials % 2 == 0
      local rate = fast and "1000" or "100"
      local batch = fast and math.random(10, 50) or math.random(5, 20)
      local delay = fast and math.random(5, 25) or math.random(30, 200)
      -- a start first resolves and journals its targets (longer on PostgreSQL): give it the time
      -- to get that far, or every kill lands before the job exists
      if mode == "start" then delay = delay + math.random(300, 1500) end
      local p = L.spawn(("%s %s %s %d"):format(worker, mode, rate, batch))
      durox.sleep(delay)
      -- kill at once (asking ps first would let the job run on meanwhile); the kill hit a
      -- running process when the signal could be sent and the process did not exit normally
      local sent = os.execute(("kill -KILL %d 2>/dev/null"):format(p.pid))
      L.wait_exit(p)
      local after = newest()
      if sent and after and after.state ~= "completed" then kills = kills + 1 end
      job = after
      progress[#progress + 1] = job and (job.state .. ":" .. job.done) or "none"
    end
    assert.is_true(kills >= KILLS, kind .. ": only " .. kills .. " kills")
    local job = newest()
    assert(job and job.state ~= "completed", ("the %s job completed before the last kill: %s"):format(kind,
      table.concat(progress, " ")))
    progress_report[#progress_report + 1] = ("%s: %d trials, %d SIGKILLs; job %d after each: %s"):format(kind, trials,
      kills, job.job_id, table.concat(progress, " "))
    print("\n" .. progress_report[#progress_report])
    local r = assert(dx:resume_job(job.job_id))
    assert.are.equal("completed", r.state)
    assert.are.equal(counts[kind], r.total_matched)
    assert.are.same({}, r.failed_instances)
    job = assert(dx:get_job(job.job_id))
    assert.are.equal(counts[kind], job.done)
    assert.are.equal(0, job.pending)
    assert.are.equal(counts[kind], value("SELECT count(*) AS n FROM " .. P.jobs_table .. " WHERE job_id = "
      .. job.job_id .. " AND state = 'done'"))
    return r, job
  end

  it("cancel: exactly one CancelInstance per target, none elsewhere", function()
    local r = crash_and_finish("cancel", 20261201)
    assert.are.equal(counts.cancel, #r.cancelled_instances)
    local rows = P:sql("SELECT instance_id, count(*) AS n, min(json_extract(work_item, '$.CancelInstance.reason'))"
      .. " AS reason FROM orchestrator_queue WHERE work_item LIKE '{\"CancelInstance\"%' GROUP BY instance_id",
      "SELECT instance_id, count(*) AS n, min(work_item::jsonb #>> '{CancelInstance,reason}') AS reason"
      .. " FROM orchestrator_queue WHERE work_item::jsonb ? 'CancelInstance' GROUP BY instance_id")
    assert.are.equal(counts.cancel, #rows)
    for _, row in ipairs(rows) do
      assert.is_true(targets.cancel[row.instance_id] ~= nil, row.instance_id)
      assert.are.equal(1, row.n, row.instance_id)
      assert.are.equal("crash-test", row.reason)
    end
  end)

  it("purge: every target gone with all its rows, every other row untouched", function()
    local function where_targets(col)
      return col .. " IN (SELECT i.instance_id FROM instances i JOIN executions e ON e.instance_id = i.instance_id AND"
        .. " e.execution_id = i.current_execution_id WHERE i.orchestration_name = 'EchoRaw' AND e.status = 'Completed')"
    end
    local ev = value("SELECT count(*) AS n FROM history WHERE " .. where_targets("instance_id"))
    local ex = value("SELECT count(*) AS n FROM executions WHERE " .. where_targets("instance_id"))
    local others = {}
    for _, t in ipairs { "instances", "executions", "history", "orchestrator_queue" } do
      others[t] = value("SELECT count(*) AS n FROM " .. t .. " WHERE NOT " .. where_targets("instance_id"))
    end
    local before_ids = assert(L.client(store, "list"))
    local r = crash_and_finish("purge", 20261202)
    assert.are.equal(counts.purge, #r.purged_instances)
    assert.are.equal(counts.purge, r.instances_deleted)
    assert.are.equal(ex, r.executions_deleted)
    assert.are.equal(ev, r.events_deleted)
    -- no row of a target is left anywhere (the kp- instances that are not targets: the runtime
    -- failed them by itself, they stay)
    local keep = {}
    for id in pairs(self_before) do
      if id:match("^kp%-") then keep[#keep + 1] = L.lit(id) end
    end
    local not_kept = #keep > 0 and (" AND instance_id NOT IN (" .. table.concat(keep, ",") .. ")") or ""
    for _, t in ipairs { "instances", "executions", "history", "orchestrator_queue", "worker_queue", "kv_store",
      "kv_delta", "instance_locks" } do
      assert.are.equal(0, value("SELECT count(*) AS n FROM " .. t .. " WHERE instance_id LIKE 'kp-%'"
        .. not_kept), t .. " still holds rows of purged instances")
    end
    for t, n in pairs(others) do
      assert.are.equal(n, value("SELECT count(*) AS n FROM " .. t), t .. " rows of other instances changed")
    end
    -- Duroxide's own listing: what it listed before, less the targets
    local after_ids = assert(L.client(store, "list"))
    local want = {}
    for _, id in ipairs(before_ids) do
      if not targets.purge[id] then want[#want + 1] = id end
    end
    table.sort(want)
    table.sort(after_ids)
    assert.are.same(want, after_ids)
  end)

  it("restart: exactly one queued start <id>~r1 per target", function()
    local r = crash_and_finish("restart", 20261203)
    assert.are.equal(counts.restart, #r.restarted_instances)
    for _, x in ipairs(r.restarted_instances) do
      assert.are.equal(x.instance_id .. "~r1", x.new_instance_id)
    end
    local rows = P:sql("SELECT instance_id, count(*) AS n, min(json_extract(work_item,"
      .. " '$.StartOrchestration.orchestration')) AS name, min(json_extract(work_item, '$.StartOrchestration.input'))"
      .. " AS input FROM orchestrator_queue WHERE work_item LIKE '{\"StartOrchestration\"%' GROUP BY instance_id",
      "SELECT instance_id, count(*) AS n, min(work_item::jsonb #>> '{StartOrchestration,orchestration}') AS name,"
      .. " min(work_item::jsonb #>> '{StartOrchestration,input}') AS input FROM orchestrator_queue"
      .. " WHERE work_item::jsonb ? 'StartOrchestration' GROUP BY instance_id")
    assert.are.equal(counts.restart, #rows)
    for _, row in ipairs(rows) do
      local base = row.instance_id:match("^(kr%-%d%d%d%d)~r1$")
      assert.is_truthy(base, row.instance_id)
      assert.is_true(targets.restart[base] ~= nil, row.instance_id)
      assert.are.equal(1, row.n, row.instance_id)
      assert.are.equal("ThrowingOrchestration", row.name)
      assert.are.equal('{"why":"crash"}', row.input)
    end
  end)

  it("and the runtime then cancels each cancel target once and runs each restart once", function()
    rt = start_runtime(store, dir .. "/process")
    drain("the runtime to process the cancels and restarts")
    L.stop_runtime(rt)
    for _, line in ipairs(L.log_errors(rt)) do assert(own_ack_failure(line), "runtime error: " .. line) end
    local self_after = self_failed()
    local lost = 0
    local requests = {}
    for _, row in ipairs(P:sql("SELECT instance_id, count(*) AS n FROM history WHERE event_type ="
      .. " 'OrchestrationCancelRequested' GROUP BY 1", "SELECT instance_id, count(*) AS n FROM history WHERE"
      .. " event_data::jsonb->>'type' = 'OrchestrationCancelRequested' GROUP BY 1")) do requests[row.instance_id] = row.n end
    for _, row in ipairs(P:sql("SELECT e.instance_id, e.status, e.output FROM instances i JOIN executions e ON"
      .. " e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id WHERE i.instance_id LIKE 'kc-%'")) do
      local id = row.instance_id
      if targets.cancel[id] then
        if self_after[id] and not self_before[id] then
          lost = lost + 1 -- the runtime failed it by itself in the turn of the cancel
          assert.is_true((requests[id] or 0) <= 1, id)
        else
          assert.are.equal(1, requests[id], id)
          assert.are.equal("Failed", row.status, id)
          assert.are.equal("canceled: crash-test", row.output, id)
        end
      end
    end
    local restarted = 0
    for _, row in ipairs(P:sql("SELECT i.instance_id, e.status, e.output, (SELECT count(*) FROM executions x WHERE"
      .. " x.instance_id = i.instance_id) AS execs FROM instances i JOIN executions e ON e.instance_id = i.instance_id"
      .. " AND e.execution_id = i.current_execution_id WHERE i.instance_id LIKE 'kr-%~r%'")) do
      local base = row.instance_id:match("^(kr%-%d%d%d%d)~r1$")
      assert.is_truthy(base, row.instance_id) -- never a ~r2
      assert.are.equal(1, row.execs, row.instance_id)
      assert.are.equal("Failed", row.status, row.instance_id)
      if not self_after[row.instance_id] then
        assert.are.equal("validation failed: crash", row.output, row.instance_id)
      else
        lost = lost + 1
      end
      restarted = restarted + 1
    end
    -- a restarted start the runtime failed by itself under lock contention can leave its
    -- execution and history without an instances row: identified (its own failure) and counted
    for _, row in ipairs(P:sql("SELECT x.instance_id, count(*) AS execs FROM executions x WHERE x.instance_id LIKE"
      .. " 'kr-%~r%' AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = x.instance_id) GROUP BY 1")) do
      assert.is_truthy(row.instance_id:match("^(kr%-%d%d%d%d)~r1$"), row.instance_id)
      assert.is_true(self_after[row.instance_id] == true, "no instance row, not failed by the runtime: " .. row.instance_id)
      assert.are.equal(1, row.execs, row.instance_id)
      lost = lost + 1
      restarted = restarted + 1
    end
    assert.are.equal(counts.restart, restarted)
    print(("%d cancelled and %d restarted exactly once; the runtime failed %d of them by itself"):format(counts.cancel,
      restarted, lost))
    assert.is_true(lost <= SELF_FAILED_BOUND * (counts.cancel + counts.restart), lost .. " failed by the runtime")
  end)
end)
end
