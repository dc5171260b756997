-- ops_crash_spec.lua - the exactly-once guarantee of bulk jobs under SIGKILL: over 2,000
-- instances started on the LIVE real runtime wait for the event Approve; with the runtime
-- stopped (so that nothing consumes or hides a duplicate), a bulk raise is started and
-- resumed by processes killed with SIGKILL at random points (at least 20 kills while the job
-- runs), then finished; every target must have exactly one ExternalRaised item queued. Then
-- the runtime delivers them: every target receives exactly one ExternalEvent.
--
-- The runtime itself (0.1.29, SQLite) occasionally fails an instance under load with no
-- other writer at all: its ack is a deferred transaction that cannot wait for the write
-- lock, and after 5 retries it fails the orchestration ("Failed to ack orchestration item,
-- failing orchestration", an infrastructure error). So the instances are queued before the
-- runtime starts and it works alone: an instance it fails that way is not waiting, so it
-- is not a target; during the delivery such an instance records no ExternalEvent (never
-- two), and is counted and reported. The same on PostgreSQL (a database of the test server,
-- the runtime on it through Duroxide's PG provider).
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("crash", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

-- at least this many targets (bench/crash_raise_10k.sh runs it with 10000)
local N = tonumber(os.getenv("DUROX_CRASH_TARGETS")) or 2000
local STARTED = N + N // 50
local KILLS = 20

-- Whether a runtime log error is its own ack failing under load (with no writer but itself:
-- these phases run while we only read): the ack gave up, the failure was committed or not.
local function own_ack_failure(line)
  return line:match("Failed to ack") or line:match("after max retries") or line:match("failing orchestration")
    or line:match("Failed to commit failure event")
end

-- Instances the runtime failed by itself (an ack that failed after its retries).
local function self_failed(db)
  local ids = {}
  for _, row in ipairs(L.sql(db, "SELECT instance_id FROM executions WHERE status = 'Failed' AND output LIKE"
    .. " 'infrastructure:%database is locked%'", "SELECT instance_id FROM executions WHERE status = 'Failed' AND"
    .. " output LIKE 'infrastructure:%'")) do ids[row.instance_id] = true end
  return ids
end

-- event types: the column on SQLite, the JSON type on PostgreSQL (its column says 'Event')
local function typed(db, sql)
  if not L.is_pg(db) then return sql end
  return (sql:gsub("([%w_]*%.?)event_type", "(%1event_data::json->>'type')"))
end

local STORES = { "sqlite" }
if L.pg_dir and io.open(L.pg_dir .. "/port") then STORES[2] = "postgres" end

for _, provider in ipairs(STORES) do
describe("a bulk raise killed with SIGKILL on " .. provider, function()
  local dir, db, rt, dx, targets, base

  setup(function()
    dir = L.tmpdir()
    base = dir .. "/crash.live"
    db = provider == "postgres" and L.pg_fresh(true) or dir .. "/crash.db"
    L.stop_runtime(L.start_runtime(db, base)) -- creates the store
    dx = assert(durox.open(L.url(db), { config = { max_bulk_operations = 1000000 } }))
    for i = 1, STARTED do assert(dx:start_orchestration(("crash-%04d"):format(i), "WaitApprove", "null")) end
    rt = L.start_runtime(db, base)
    L.wait_until(function()
      return L.sql_value(db, "SELECT count(*) AS n FROM orchestrator_queue") == 0
    end, math.max(180000, 90 * STARTED), "the runtime to start " .. STARTED .. " instances", 500)
    L.stop_runtime(rt)
    for _, line in ipairs(L.log_errors(rt)) do assert(own_ack_failure(line), "runtime error: " .. line) end
    targets = L.sql_value(db, typed(db, "SELECT count(*) AS n FROM history WHERE event_type = 'ExternalSubscribed'"))
    assert.is_true(targets >= N, targets .. " instances wait")
  end)

  teardown(function()
    if dx then dx:close() end
    L.stop_runtime(rt)
    if db and L.is_pg(db) then L.pg_drop(db) end
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
      -- (PostgreSQL writes a batch several times faster: its full speed is capped so that the
      -- job outlives the kills)
      local rate = fast and (provider == "postgres" and "1500" or "1000000000") or (provider == "postgres" and "120"
        or "200")
      local batch = fast and math.random(20, 100) or math.random(5, 40)
      local delay = fast and math.random(5, 25) or math.random(30, 200)
      -- a start first resolves and journals its targets (longer on PostgreSQL and under the
      -- sanitizers): give it the time to get that far, or every kill lands before the job exists
      if mode == "start" then delay = delay + math.random(300, 1500) end
      local p = L.spawn(("%s %s %s %d"):format(worker, mode, rate, batch))
      durox.sleep(delay)
      -- kill at once (asking ps first would let the job run on meanwhile, and on a loaded
      -- machine finish it); the kill hit a running job when the signal could be sent and the
      -- job is not completed
      local sent = os.execute(("kill -KILL %d 2>/dev/null"):format(p.pid))
      L.wait_exit(p)
      job = newest_job()
      -- (a kill before the job was journaled hit no job: PostgreSQL takes longer to start one)
      if sent and job and job.state ~= "completed" then kills = kills + 1 end
      progress[#progress + 1] = job and (job.state .. ":" .. job.done) or "none"
    end
    assert.is_true(kills >= KILLS, "only " .. kills .. " kills")
    local job = newest_job()
    assert(job and job.state ~= "completed", "the job completed before the last kill: " .. table.concat(progress, " "))
    print(("\n%d trials, %d SIGKILLs; job %d after each: %s"):format(trials, kills, job.job_id,
      table.concat(progress, " ")))
    local r = assert(dx:resume_job(job.job_id))
    assert.are.equal("completed", r.state)
    assert.are.equal(targets, r.total_matched)
    assert.are.equal(targets, #r.delivered_instances)
    assert.are.same({}, r.failed_instances)
    assert.are.same({}, r.no_subscription_instances)
    job = assert(dx:get_job(job.job_id))
    assert.are.equal(targets, job.done)
    assert.are.equal(0, job.pending)
    -- exactly one ExternalRaised item per target, none anywhere else
    local rows = L.sql(db, "SELECT instance_id, count(*) AS n FROM orchestrator_queue WHERE work_item LIKE"
      .. " '{\"ExternalRaised\"%' GROUP BY instance_id")
    assert.are.equal(targets, #rows)
    for _, row in ipairs(rows) do
      assert.are.equal(1, row.n, row.instance_id)
      assert.truthy(row.instance_id:match("^crash%-%d%d%d%d$"))
    end
    assert.are.equal(targets, L.sql_value(db, "SELECT count(*) AS n FROM durox_job_targets WHERE job_id = "
      .. job.job_id .. " AND state = 'done'", "SELECT count(*) AS n FROM durox.job_targets WHERE job_id = "
      .. job.job_id .. " AND state = 'done'"))

    -- the runtime delivers them (we only read meanwhile): every target records exactly one
    -- ExternalEvent and completes, unless the runtime failed it by itself
    local before = self_failed(db)
    rt = L.start_runtime(db, base)
    L.wait_until(function()
      return L.sql_value(db, "SELECT count(*) AS n FROM orchestrator_queue") == 0
    end, math.max(180000, 90 * STARTED), "the runtime to deliver the events", 500)
    L.stop_runtime(rt)
    local after = self_failed(db)
    local events = {}
    for _, row in ipairs(L.sql(db, typed(db, "SELECT instance_id, count(*) AS n FROM history WHERE event_type ="
      .. " 'ExternalEvent' GROUP BY 1"))) do events[row.instance_id] = row.n end
    local completed, lost = 0, 0
    for _, row in ipairs(L.sql(db, typed(db, "SELECT e.instance_id, e.status, e.output FROM executions e JOIN history h ON"
      .. " h.instance_id = e.instance_id AND h.event_type = 'ExternalSubscribed'"))) do
      local id = row.instance_id
      if not before[id] then
        if after[id] then
          assert.is_nil(events[id], id) -- failed by the runtime in that turn: the event was not recorded
          lost = lost + 1
        else
          assert.are.equal(1, events[id], id)
          assert.are.equal("Completed", row.status, id)
          assert.are.equal('{"approved":"crash"}', row.output, id)
          completed = completed + 1
        end
      end
    end
    assert.are.equal(targets, completed + lost)
    print(("%d targets: %d completed with exactly one event; %d failed by the runtime itself"):format(targets,
      completed, lost))
    for _, line in ipairs(L.log_errors(rt)) do assert(own_ack_failure(line), "runtime error: " .. line) end
  end)
end)
end
