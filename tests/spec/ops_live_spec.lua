-- ops_live_spec.lua - our writes processed by the LIVE real runtime (tests/harness/live.js
-- on a fresh store, stopped in teardown): a bulk cancel ends running and waiting instances
-- (children included) exactly as Duroxide's own cancel does; a bulk raise reaches exactly
-- the instances waiting on the event, once each, and classifies the rest; waits return the
-- right final states and timeouts; a purge leaves Duroxide's own API reporting the instances
-- gone; restarted instances run; and the runtime logs no error caused by our writes. On both
-- providers: a fresh SQLite file, and a fresh database of the PostgreSQL test server with the
-- runtime on it through Duroxide's PG provider.
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("ops live", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

local E = durox.encode_json

local STORES = { "sqlite" }
if L.pg_dir and io.open(L.pg_dir .. "/port") then STORES[2] = "postgres" end

for _, provider in ipairs(STORES) do
describe("ops against the live runtime on " .. provider, function()
  local dir, db, rt, dx

  setup(function()
    dir = L.tmpdir()
    db = provider == "postgres" and L.pg_fresh(true) or dir .. "/live.db"
    rt = L.start_runtime(db, dir .. "/live")
    dx = assert(durox.open(L.url(db)))
  end)

  teardown(function()
    if dx then dx:close() end
    L.stop_runtime(rt)
    if db and L.is_pg(db) then L.pg_drop(db) end
    L.cleanup(dir)
  end)

  -- Whether the instance's current execution waits on something (what: "event", "timer",
  -- "activity", "child"; nil: any of them), from its history.
  local function waiting(id, what)
    local d = dx:get_instance_details(id)
    if not d or d.summary.status ~= "Running" or not d.current_execution then return false end
    local c = d.current_execution
    local n = { event = #c.pending_events, timer = #c.pending_timers, activity = #c.pending_activities,
      child = #c.pending_sub_orchestrations }
    if what then return n[what] > 0 end
    return n.event + n.timer + n.activity + n.child > 0
  end

  -- Waits until every id (or id = what pairs) waits.
  local function all_waiting(ids)
    L.wait_until(function()
      for k, v in pairs(ids) do
        local id, what = type(k) == "string" and k or v, type(k) == "string" and v or nil
        if not waiting(id, what) then return false end
      end
      return true
    end, 30000, "instances to wait")
  end

  local function types(id)
    local t = {}
    for i, e in ipairs(assert(dx:read_execution_history(id))) do t[i] = e.event_type end
    return t
  end

  local function count_events(id, event_type)
    return L.sql_value(db, ("SELECT count(*) AS n FROM history WHERE instance_id = %s AND event_type = %s"):format(
      L.lit(id), L.lit(event_type)), ("SELECT count(*) AS n FROM history WHERE instance_id = %s AND"
      .. " event_data::json->>'type' = %s"):format(L.lit(id), L.lit(event_type)))
  end

  local function queued(id)
    return L.sql_value(db, "SELECT count(*) AS n FROM orchestrator_queue WHERE instance_id = " .. L.lit(id))
  end

  local function wait_terminal(ids)
    local w = assert(dx:wait_for_instances { instances = ids, timeout = "30s", poll_interval = 50 })
    assert.is_true(w.satisfied, "not terminal: " .. E(w.timed_out_instances))
    return w
  end

  it("a bulk cancel ends instances exactly as Duroxide's own cancel does", function()
    local kinds = {
      wait = { "WaitApprove", "null", "event" },
      parent = { "ParentWithWaitingChild", '"x"', "child" },
      activity = { "SlowActivity", '{"ms":60000}', "activity" },
      timer = { "Sleeper", '{"ms":3600000}', "timer" },
      loop = { "ContinueLoop", '{"n":0,"max":3,"wait":true}', "event" },
      queue = { "QueueWaiter", '{"queue":"inbox","count":1}', "event" },
    }
    local ours, theirs, all, settled = {}, {}, {}, {}
    for k, spec in pairs(kinds) do
      ours[k], theirs[k] = "c-ours-" .. k, "c-dx-" .. k
      assert(dx:start_orchestration(ours[k], spec[1], spec[2]))
      assert(L.client(db, "start", theirs[k], spec[1], spec[2]))
      all[#all + 1] = ours[k]
      all[#all + 1] = theirs[k]
      settled[ours[k]], settled[theirs[k]] = spec[3], spec[3]
    end
    assert(dx:start_orchestration("c-done", "Echo", '"done"'))
    wait_terminal { "c-done" }
    all_waiting(settled)
    all_waiting { ["c-ours-parent::sub::2"] = "event", ["c-dx-parent::sub::2"] = "event" }
    local ids = {}
    for _, id in pairs(ours) do ids[#ids + 1] = id end
    table.sort(ids)
    ids[#ids + 1] = "c-nope"
    ids[#ids + 1] = "c-done"
    local r = assert(dx:cancel_instances { instances = ids, reason = "ops-bulk" })
    assert.are.equal("completed", r.state)
    assert.are.equal(#ids - 2, #r.cancelled_instances)
    assert.are.same({ { instance_id = "c-nope", code = "NOTFOUND", error = "instance 'c-nope' not found" },
      { instance_id = "c-done", code = "CONFLICT", error = "instance 'c-done' is already terminal (Completed)" } },
      r.failed_instances)
    assert.are.equal(0, queued("c-nope"))
    for _, id in pairs(theirs) do assert(L.client(db, "cancel", id, "ops-bulk")) end
    local everything = { "c-ours-parent::sub::2", "c-dx-parent::sub::2" }
    for _, id in ipairs(all) do everything[#everything + 1] = id end
    wait_terminal(everything)
    for k in pairs(kinds) do
      local a = assert(dx:get_orchestration_status(ours[k]))
      local b = assert(dx:get_orchestration_status(theirs[k]))
      assert.are.equal("Failed", a.status, k)
      assert.are.equal("cancelled", a.failure_kind, k)
      assert.are.equal("canceled: ops-bulk", a.error, k)
      assert.are.equal(b.status, a.status, k)
      assert.are.equal(b.error, a.error, k)
      assert.are.equal(b.details, a.details, k)
      assert.are.same(types(theirs[k]), types(ours[k]), k)
      assert.are.equal(assert(L.client(db, "info", theirs[k])).status, assert(L.client(db, "info", ours[k])).status)
    end
    -- the child of the parent is cancelled too, as Duroxide's own cancel cancels it
    local ca, cb = assert(dx:get_orchestration_status("c-ours-parent::sub::2")),
        assert(dx:get_orchestration_status("c-dx-parent::sub::2"))
    assert.are.equal("canceled: parent canceled", ca.error)
    assert.are.equal(cb.error, ca.error)
    assert.are.same(types("c-dx-parent::sub::2"), types("c-ours-parent::sub::2"))
    -- the cancelled activity's worker item is gone in both
    for _, id in ipairs { ours.activity, theirs.activity } do
      assert.are.equal(0, L.sql_value(db, "SELECT count(*) AS n FROM worker_queue WHERE instance_id = " .. L.lit(id)))
    end
    assert.are.same(assert(dx:list_executions(theirs.loop)), assert(dx:list_executions(ours.loop)))
  end)

  it("a bulk raise reaches exactly the instances waiting on the event, once each", function()
    local waiters = {}
    for i = 1, 6 do
      waiters[i] = "r-w-" .. i
      assert(dx:start_orchestration(waiters[i], "WaitApprove", "null"))
    end
    assert(dx:start_orchestration("r-queue", "QueueWaiter", '{"queue":"inbox","count":1}'))
    assert(dx:start_orchestration("r-timer", "Sleeper", '{"ms":3600000}'))
    assert(dx:start_orchestration("r-early", "EarlyEventWaiter", '{"sleepMs":3600000}'))
    assert(dx:start_orchestration("r-other", "WaitApprove", '{"event":"Other"}'))
    assert(dx:start_orchestration("r-done", "Echo", "1"))
    wait_terminal { "r-done" }
    local others = { "r-queue", "r-timer", "r-early", "r-other" }
    all_waiting(waiters)
    all_waiting { ["r-queue"] = "event", ["r-timer"] = "timer", ["r-early"] = "timer", ["r-other"] = "event" }
    local ids = { "r-nope", "r-done" }
    for _, id in ipairs(waiters) do ids[#ids + 1] = id end
    for _, id in ipairs(others) do ids[#ids + 1] = id end
    local r = assert(dx:raise_event_bulk { instances = ids, event_name = "Approve", event_data = '"bulk"', batch_size = 2 })
    assert.are.same(waiters, r.delivered_instances)
    assert.are.same(others, r.no_subscription_instances)
    assert.are.same({ "r-nope", "r-done" }, { r.failed_instances[1].instance_id, r.failed_instances[2].instance_id })
    assert.are.same({ "NOTFOUND", "CONFLICT" }, { r.failed_instances[1].code, r.failed_instances[2].code })
    -- a second raise right away: the queued events (or the completions) take the subscriptions
    local again = assert(dx:raise_event_bulk { instances = waiters, event_name = "Approve", event_data = '"twice"' })
    assert.are.same({}, again.delivered_instances)
    local w = wait_terminal(waiters)
    for _, it in ipairs(w.instances) do
      assert.are.equal("Completed", it.status)
      assert.are.equal('{"approved":"bulk"}', it.output)
    end
    for _, id in ipairs(waiters) do
      assert.are.equal(1, count_events(id, "ExternalEvent"), id)
      assert.are.equal(0, queued(id), id)
    end
    for _, id in ipairs(others) do
      assert.are.equal(0, count_events(id, "ExternalEvent"), id)
      assert.is_true(waiting(id), id)
    end
    assert.are.equal(0, queued("r-nope"))
    -- the one whose event is named differently takes its own event
    r = assert(dx:raise_event_bulk { instances = { "r-other" }, event_name = "Other", event_data = '"o"' })
    assert.are.same({ "r-other" }, r.delivered_instances)
    wait_terminal { "r-other" }
    -- queue messages reach the queue waiter
    r = assert(dx:raise_event_bulk { instances = { "r-queue" }, event_name = "inbox", event_data = '{"m":1}', queue = true })
    assert.are.same({ "r-queue" }, r.delivered_instances)
    w = wait_terminal { "r-queue" }
    assert.are.equal('{"received":[{"m":1}]}', w.instances[1].output)
  end)

  it("waits return final states, and time out", function()
    assert(dx:start_orchestration("wt-echo", "Echo", '{"e":1}'))
    assert(dx:start_orchestration("wt-fail", "ThrowingOrchestration", "null"))
    assert(dx:start_orchestration("wt-wait", "WaitApprove", "null"))
    local t0 = durox.now()
    local w = assert(dx:wait_for_instances { instances = { "wt-echo", "wt-fail", "wt-wait", "wt-nope" },
      timeout = 2500, poll_interval = 50 })
    assert.is_true(durox.now() - t0 >= 2490) -- (two clocks rounded to ms)
    assert.is_true(w.timed_out)
    assert.is_false(w.satisfied)
    assert.are.same({ "wt-echo" }, w.completed_instances)
    assert.are.equal(1, #w.failed_instances)
    assert.are.equal("wt-fail", w.failed_instances[1].instance_id)
    assert.are.equal("application", w.failed_instances[1].failure_kind)
    assert.are.equal("validation failed: amount must be positive", w.failed_instances[1].error)
    assert.are.same({ "wt-wait" }, w.timed_out_instances)
    assert.are.same({ "wt-nope" }, w.not_found_instances)
    assert.are.equal('{"e":1}', w.instances[1].output)
    assert.is_true(w.polls >= 2)
    -- any / first N / by filter
    assert(dx:start_orchestration("wt-echo2", "Echo", "2"))
    w = assert(dx:wait_for_instances { instances = { "wt-wait", "wt-echo2" }, mode = "any", timeout = "20s" })
    assert.is_true(w.satisfied)
    assert.are.same({ "wt-echo2" }, w.completed_instances)
    assert.are.same({ "wt-wait" }, w.pending_instances)
    assert.are.same({}, w.timed_out_instances)
    for i = 3, 5 do assert(dx:start_orchestration("wt-echo" .. i, "Echo", tostring(i))) end
    w = assert(dx:wait_for_instances { instances = { "wt-wait", "wt-echo3", "wt-echo4", "wt-echo5" }, mode = "first",
      count = 3, timeout = "20s" })
    assert.is_true(w.satisfied)
    assert.are.same({ "wt-echo3", "wt-echo4", "wt-echo5" }, w.completed_instances)
    -- a filter takes the instances that exist when the wait starts
    w = assert(dx:wait_for_instances { filter = { instance_id_prefix = "wt-echo" }, timeout = "20s" })
    assert.is_true(w.satisfied)
    assert.are.equal(5, #w.completed_instances)
    -- the single wait
    local st = assert(dx:wait_for_orchestration("wt-echo", 1000))
    assert.are.equal("Completed", st.status)
    assert.are.equal('{"e":1}', st.output)
    local r, msg, code = dx:wait_for_orchestration("wt-wait", 300)
    assert.are.same({ nil, "TIMEOUT" }, { r, code })
    assert.truthy(msg:find("instance 'wt-wait' is still Running after waiting", 1, true))
    r, msg, code = dx:wait_for_orchestration("wt-nope", 300)
    assert.are.same({ nil, "instance 'wt-nope' not found", "NOTFOUND" }, { r, msg, code })
    assert(dx:cancel_instance("wt-wait", "done"))
  end)

  it("a purge leaves Duroxide's own API reporting the instances gone", function()
    assert(dx:start_orchestration("pg-parent", "ParentWithWaitingChild", "null"))
    assert(dx:start_orchestration("pg-echo", "Echo", "1"))
    all_waiting { ["pg-parent::sub::2"] = "event" }
    local r = assert(dx:purge_instances { instances = { "pg-parent" } })
    assert.are.equal("instance 'pg-parent' is still running; cancel it first or use force", r.failed_instances[1].error)
    assert(dx:cancel_instance("pg-parent", "purge me"))
    wait_terminal { "pg-parent", "pg-parent::sub::2", "pg-echo" }
    r = assert(dx:purge_instances { instances = { "pg-parent", "pg-echo" } })
    assert.are.same({ "pg-parent", "pg-echo" }, r.purged_instances)
    assert.are.equal(3, r.instances_deleted)
    for _, id in ipairs { "pg-parent", "pg-parent::sub::2", "pg-echo" } do
      local info, err = L.client(db, "info", id)
      assert.is_nil(info)
      assert.truthy(err:find("not found", 1, true), err)
      assert.are.equal("NotFound", assert(L.client(db, "status", id)).status)
    end
    local listed = assert(L.client(db, "list"))
    for _, id in ipairs(listed) do assert.is_nil(id:match("^pg%-"), id) end
  end)

  it("restarted instances run", function()
    assert(dx:start_orchestration("rs-fail", "ThrowingOrchestration", '{"why":"again"}'))
    assert(dx:start_orchestration("rs-wait", "WaitApprove", '{"event":"Go"}'))
    all_waiting { ["rs-wait"] = "event" }
    assert(dx:cancel_instance("rs-wait", "stop"))
    wait_terminal { "rs-fail", "rs-wait" }
    local r = assert(dx:restart_instances { instances = { "rs-fail", "rs-wait" } })
    assert.are.same({ { instance_id = "rs-fail", new_instance_id = "rs-fail~r1" },
      { instance_id = "rs-wait", new_instance_id = "rs-wait~r1" } }, r.restarted_instances)
    all_waiting { ["rs-wait~r1"] = "event" }
    assert(dx:raise_event("rs-wait~r1", "Go", '"now"'))
    local w = wait_terminal { "rs-fail~r1", "rs-wait~r1" }
    assert.are.equal("validation failed: again", w.instances[1].error)
    assert.are.equal('{"approved":"now"}', w.instances[2].output)
    for _, pair in ipairs { { "rs-fail", "rs-fail~r1" }, { "rs-wait", "rs-wait~r1" } } do
      local a, b = assert(dx:get_instance_details(pair[1])), assert(dx:get_instance_details(pair[2]))
      assert.are.equal(a.summary.orchestration_name, b.summary.orchestration_name)
      assert.are.equal(a.summary.version, b.summary.version)
      assert.are.equal(a.input, b.input)
    end
  end)

  it("leaves no error in the runtime's log", function()
    -- give the runtime a moment to log anything late, then look
    durox.sleep(300)
    assert.are.same({}, L.log_errors(rt))
    local log = L.read(rt.err) or ""
    for _, id in ipairs { "c-nope", "r-nope", "wt-nope", "c-done", "r-done" } do
      assert.is_nil(log:find('"' .. id .. '"', 1, true), id .. " appears in the runtime log")
    end
  end)
end)
end
