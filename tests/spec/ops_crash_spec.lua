-- ops_crash_spec.lua - the exactly-once guarantee of bulk jobs under SIGKILL: 2,000
-- instances started on the LIVE real runtime wait for the event Approve; with the runtime
-- stopped (so that nothing consumes or hides a duplicate), a bulk raise is started and
-- resumed by processes killed with SIGKILL at random points (at least 20 kills while the job
-- runs), then finished; every instance must have exactly one ExternalRaised item queued.
-- Then the runtime delivers them: every instance completes with exactly one ExternalEvent.
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("crash", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

local N = 2000
local KILLS = 20

describe("a bulk raise killed with SIGKILL", function()
  local dir, db, rt, dx

  setup(function()
    dir = L.tmpdir()
    db = dir .. "/crash.db"
    rt = L.start_runtime(db)
    dx = assert(durox.open("sqlite:" .. db, { config = { max_bulk_operations = 1000000 } }))
    for i = 1, N do assert(dx:start_orchestration(("crash-%04d"):format(i), "WaitApprove", "null")) end
    L.wait_until(function()
      local ended = L.sql(db, "SELECT instance_id, status, output FROM executions WHERE status <> 'Running'")
      assert(#ended == 0, "an instance ended before the raise: " .. durox.encode_json(ended[1] or {}) .. " log: "
        .. table.concat(L.log_errors(rt), "\n"))
      return L.sql_value(db, "SELECT count(*) AS n FROM history WHERE event_type = 'ExternalSubscribed'") == N
    end, 180000, N .. " instances to wait for Approve", 500)
    L.stop_runtime(rt)
    assert.are.same({}, L.log_errors(rt))
  end)

  teardown(function()
    if dx then dx:close() end
    L.stop_runtime(rt)
    L.cleanup(dir)
  end)

  local function newest_job()
    return (assert(dx:list_jobs { kind = "raise", limit = 1 }))[1]
  end

  it("and resumed delivers every event exactly once", function()
    math.randomseed(20261126)
    local worker = L.q(L.bin) .. " support/raise_worker.lua " .. L.q(db)
    local kills, trials, progress = 0, 0, {}
    while kills < KILLS and trials < 3 * KILLS do
      trials = trials + 1
      local job = newest_job()
      assert(not job or job.state ~= "completed", ("the job completed after only %d kills: %s"):format(kills,
        table.concat(progress, " ")))
      local mode = (job and job.state ~= "abandoned") and job.job_id or "start"
      -- alternate throttled runs (kills mostly between batches) and full-speed runs with
      -- large batches (kills mostly inside a transaction)
      local fast = trials % 2 == 0
      local rate = fast and "1000000000" or "200"
      local batch = fast and math.random(20, 100) or math.random(5, 40)
      local delay = fast and math.random(5, 25) or math.random(30, 200)
      local p = L.spawn(("%s %s %s %d"):format(worker, mode, rate, batch))
      durox.sleep(delay)
      if L.alive(p) then
        L.kill(p, "KILL")
        kills = kills + 1
      end
      L.wait_exit(p)
      job = newest_job()
      progress[#progress + 1] = job and (job.state .. ":" .. job.done) or "none"
    end
    assert.is_true(kills >= KILLS, "only " .. kills .. " kills")
    local job = newest_job()
    assert(job and job.state ~= "completed", "the job completed before the last kill")
    print(("\n%d trials, %d SIGKILLs; job %d after each: %s"):format(trials, kills, job.job_id,
      table.concat(progress, " ")))
    local r = assert(dx:resume_job(job.job_id))
    assert.are.equal("completed", r.state)
    assert.are.equal(N, r.total_matched)
    assert.are.equal(N, #r.delivered_instances)
    assert.are.same({}, r.failed_instances)
    assert.are.same({}, r.no_subscription_instances)
    job = assert(dx:get_job(job.job_id))
    assert.are.equal(N, job.done)
    assert.are.equal(0, job.pending)
    -- exactly one ExternalRaised item per instance, none anywhere else
    local rows = L.sql(db, "SELECT instance_id, count(*) AS n FROM orchestrator_queue WHERE work_item LIKE"
      .. " '{\"ExternalRaised\"%' GROUP BY instance_id")
    assert.are.equal(N, #rows)
    for _, row in ipairs(rows) do
      assert.are.equal(1, row.n, row.instance_id)
      assert.truthy(row.instance_id:match("^crash%-%d%d%d%d$"))
    end
    assert.are.equal(N, L.sql_value(db, "SELECT count(*) AS n FROM durox_job_targets WHERE job_id = "
      .. job.job_id .. " AND state = 'done'"))

    -- the runtime delivers them: every instance completes with exactly one ExternalEvent
    rt = L.start_runtime(db)
    local w = assert(dx:wait_for_instances { filter = { orchestration_name = "WaitApprove" }, timeout = "180s",
      poll_interval = 250, max_instances = 1000000 })
    assert.is_true(w.satisfied)
    assert.are.equal(N, #w.completed_instances)
    for _, it in ipairs(w.instances) do assert.are.equal('{"approved":"crash"}', it.output, it.instance_id) end
    rows = L.sql(db, "SELECT instance_id, count(*) AS n FROM history WHERE event_type = 'ExternalEvent' GROUP BY 1")
    assert.are.equal(N, #rows)
    for _, row in ipairs(rows) do assert.are.equal(1, row.n, row.instance_id) end
    assert.are.equal(0, L.sql_value(db, "SELECT count(*) AS n FROM orchestrator_queue"))
    L.stop_runtime(rt)
    assert.are.same({}, L.log_errors(rt))
  end)
end)
