-- metrics_stream_spec.lua - dx:stream_runtime_metrics while the live runtime works, on both
-- providers, with recounts only at the start (so every later tick runs on the deltas of the
-- change feed): when the work has settled, the last tick's counters equal Duroxide's own
-- getSystemMetrics and the history rows counted by type with sqlite3 or psql; ticks come at
-- the interval; enable_metrics = false is DENIED.
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("metric streams", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

for _, kind in ipairs(L.kinds()) do
  describe("on " .. kind .. ", stream_runtime_metrics", function()
    local dir, S, rt, dx

    setup(function()
      dir = L.tmpdir()
      S = L.store(kind, dir, "ms")
      rt = L.start_runtime(S.target, dir .. "/live")
      dx = assert(durox.open(S.url))
    end)

    teardown(function()
      if dx then dx:close() end
      L.stop_runtime(rt)
      if S then S.drop() end
      L.cleanup(dir)
    end)

    it("keeps the counters from the change feed between recounts", function()
      assert(dx:start_orchestration("pre-1", "Echo", '"before"'))
      assert(dx:wait_for_orchestration("pre-1", "30s"))
      local follower = assert(durox.open(S.url, { readonly = true }))
      local s = assert(follower:stream_runtime_metrics { interval_ms = 100, recount_ms = 3600000,
        cheap_recounts = false })
      local first = assert(s:next())
      assert.is_true(first.recounted)
      assert.are.equal(1, first.total_instances_started)
      -- work of every kind: completions, failures, a cancellation, continue-as-new, timers, events
      local ids = {}
      for i = 1, 12 do
        ids[#ids + 1] = "m-seq-" .. i
        assert(dx:start_orchestration(ids[#ids], "Sequence", ('{"value":%d}'):format(i)))
      end
      for i = 1, 3 do
        ids[#ids + 1] = "m-loop-" .. i
        assert(dx:start_orchestration(ids[#ids], "ContinueLoop", '{"n":0,"max":3}'))
        ids[#ids + 1] = "m-fail-" .. i
        assert(dx:start_orchestration(ids[#ids], "ThrowingOrchestration", '{"why":"stream"}'))
        ids[#ids + 1] = "m-sleep-" .. i
        assert(dx:start_orchestration(ids[#ids], "Sleeper", '{"ms":50}'))
      end
      assert(dx:start_orchestration("m-wait", "WaitApprove", "null"))
      assert(dx:start_orchestration("m-cancel", "WaitApprove", "null"))
      L.wait_until(function()
        local d = dx:get_instance_details("m-wait")
        local c = dx:get_instance_details("m-cancel")
        return d and c and d.current_execution and c.current_execution and #d.current_execution.pending_events > 0
          and #c.current_execution.pending_events > 0
      end, 30000, "the waiters to wait")
      assert(dx:raise_event("m-wait", "Approve", '"ok"'))
      assert(dx:cancel_instance("m-cancel", "stream"))
      ids[#ids + 1] = "m-wait"
      ids[#ids + 1] = "m-cancel"
      assert(dx:wait_for_instances { instances = ids, timeout = "60s" })
      -- a few ticks after the last commit
      local last, recounts = nil, 0
      for _ = 1, 8 do
        last = assert(s:next())
        if last.recounted then recounts = recounts + 1 end
      end
      -- every tick after the first ran on the feed's deltas: no recount (recount_ms is an hour and
      -- cheap recounts are off). No timing is asserted: pacing is bench/ material, and a loaded
      -- machine stretches or bunches ticks.
      assert.are.equal(0, recounts)
      s:close()
      follower:close()
      local dm = assert(L.client(S.target, "metrics")).systemMetrics
      assert.are.same({ dm.totalInstances, dm.runningInstances, dm.completedInstances, dm.failedInstances,
        dm.totalExecutions, dm.totalEvents },
        { last.total_instances_started, last.active_instances, last.total_instances_completed,
          last.total_instances_failed, last.total_executions, last.total_history_events })
      local by = {}
      for _, r in ipairs(S.history()) do by[r.t] = (by[r.t] or 0) + 1 end
      assert.are.equal((by.ActivityCompleted or 0) + (by.ActivityFailed or 0), last.total_activities_executed)
      assert.are.equal(by.TimerFired or 0, last.total_timers_fired)
      assert.are.equal((by.ExternalEvent or 0) + (by.ExternalEventPersistent or 0), last.total_events_raised)
      assert.are.equal(3, last.failed_by_kind.application)
      assert.are.equal(1, last.failed_by_kind.cancelled)
      -- and the same as a recount now (durations included)
      local fresh = assert(dx:get_runtime_metrics { fresh = true })
      assert.are.equal(fresh.durations_counted, last.durations_counted)
      assert.is_true(math.abs(fresh.average_orchestration_duration_ms - last.average_orchestration_duration_ms) < 1e-6)
      assert.are.equal(fresh.continued_as_new_instances, last.continued_as_new_instances)
    end)

    it("ends after count ticks and is DENIED with metrics disabled", function()
      local n = 0
      for m in dx:stream_runtime_metrics { interval_ms = 20, count = 3 } do
        n = n + 1
        assert.is_number(m.total_instances_started)
      end
      assert.are.equal(3, n)
      local off = assert(durox.open(S.url, { config = { enable_metrics = false } }))
      local ok, err, code = off:stream_runtime_metrics {}
      assert.is_nil(ok)
      assert.are.equal("DENIED", code)
      assert.are.equal("metrics are disabled by the configuration (enable_metrics = false)", err)
      off:close()
    end)
  end)
end
