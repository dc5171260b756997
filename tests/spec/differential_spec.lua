-- differential_spec.lua - our answers against Duroxide's own management API on the same
-- store (the oracle written by tests/harness/oracle.js), on every instance of the scenario
-- store. Where Duroxide's answer is wrong (its SQLite provider reads text timestamps as 0),
-- the test asserts the right value, computed independently from the store or the history.
-- Runs on both providers: the same scenarios written by the runtime to SQLite and to
-- PostgreSQL, each against Duroxide's own answers on that store.
local durox = require "durox"
local H = require "helpers"

if #H.providers() == 0 then
  describe("differential", function()
    pending("DUROX_SCENARIO_DB and DUROX_ORACLE are not set")
  end)
  return
end

local E = durox.encode_json

-- Duroxide's node module names queue events by their Rust variants.
local NODE_KIND = {
  ExternalSubscribedPersistent = "QueueSubscribed",
  ExternalEventPersistent = "QueueEventDelivered",
  ExternalSubscribedPersistentCancelled = "QueueSubscriptionCancelled",
}

-- The `data` text Duroxide's node module renders for an event (it splices raw payloads
-- into a JSON template), or nil when it renders none. Failures are compared as JSON.
local function node_data(ev)
  local t = ev.event_type
  local s = function(v) return E(v) end
  if t == "OrchestrationStarted" then
    return '{"name":' .. s(ev.name) .. ',"version":' .. s(ev.version) .. ',"input":' .. ev.input .. '}'
  elseif t == "ActivityScheduled" then
    return '{"name":' .. s(ev.name) .. ',"input":' .. ev.input .. '}'
  elseif t == "ActivityCompleted" or t == "SubOrchestrationCompleted" then
    return ev.result
  elseif t == "OrchestrationCompleted" then
    return ev.output
  elseif t == "ExternalSubscribed" or t == "ExternalSubscribedPersistent" then
    return '{"name":' .. s(ev.name) .. '}'
  elseif t == "ExternalEvent" or t == "ExternalEventPersistent" then
    return '{"name":' .. s(ev.name) .. ',"data":' .. ev.data .. '}'
  elseif t == "SubOrchestrationScheduled" then
    return '{"name":' .. s(ev.name) .. ',"instance":' .. s(ev.instance) .. ',"input":' .. ev.input .. '}'
  elseif t == "TimerCreated" or t == "TimerFired" then
    return '{"fireAtMs":' .. ev.fire_at_ms .. '}'
  end
  return nil
end

local FAILURES = { ActivityFailed = true, OrchestrationFailed = true, SubOrchestrationFailed = true }
local NO_DATA = {
  OrchestrationCancelRequested = true, ExternalSubscribedCancelled = true, OrchestrationContinuedAsNew = true,
  OrchestrationChained = true, CustomStatusUpdated = true, KeyValueSet = true, KeyValueCleared = true,
  ActivityCancelRequested = true, SubOrchestrationCancelRequested = true,
  ExternalSubscribedPersistentCancelled = true, KeyValuesCleared = true,
}

for _, P in ipairs(H.providers()) do
local dx = P.open({ readonly = true })
local oracle = P.oracle()
local pg = P.name == "postgres"

-- instances.created_at as ms, computed by the store itself (not by our parser).
local function stored_created_ms(id)
  if pg then
    return P.sql("SELECT floor(extract(epoch FROM created_at) * 1000)::int8 AS ms FROM instances WHERE instance_id = "
      .. H.q(id))[1].ms
  end
  local rows = P.sql("SELECT CAST(strftime('%s', created_at) AS INTEGER) * 1000 AS ms FROM instances WHERE instance_id = "
    .. H.q(id))
  return rows[1].ms
end

describe("differential on " .. P.name .. ": listing", function()
  it("lists the same instances as listAllInstances, newest first", function()
    local ours = assert(dx:list_instances())
    assert.are.same(H.sorted(oracle.listAll), H.sorted(H.ids(ours)))
    assert.are.equal(#oracle.listAll, #ours)
    for i = 2, #ours do
      assert.is_true(ours[i - 1].created_at >= ours[i].created_at)
    end
  end)

  for _, status in ipairs({ "Running", "Completed", "Failed", "ContinuedAsNew" }) do
    it("lists the same " .. status .. " instances as listInstancesByStatus", function()
      local ours = assert(dx:list_instances({ status = status }))
      assert.are.same(H.sorted(oracle.byStatus[status]), H.sorted(H.ids(ours)))
      for _, s in ipairs(ours) do assert.are.equal(status, s.status) end
    end)
  end

  it("gets every status in one round trip", function()
    local ids = {}
    for id in pairs(oracle.instances) do ids[#ids + 1] = id end
    table.sort(ids)
    ids[#ids + 1] = "no-such-instance"
    local got = assert(dx:get_instances_status(ids))
    assert.are.equal(#ids, #got)
    for i, id in ipairs(ids) do
      assert.are.equal(id, got[i].instance_id)
      local expected = oracle.instances[id] and oracle.instances[id].info.status or "NotFound"
      assert.are.equal(expected, got[i].status)
    end
  end)
end)

describe("differential on " .. P.name .. ": every instance", function()
  local ids = {}
  for id in pairs(oracle.instances) do ids[#ids + 1] = id end
  table.sort(ids)
  assert(#ids > 50, "the scenario store is too small")

  for _, id in ipairs(ids) do
    local o = oracle.instances[id]
    describe(id, function()
      it("has the instance info of getInstanceInfo", function()
        local d = assert(dx:get_instance_details(id))
        local s = d.summary
        assert.are.equal(o.info.instanceId, s.instance_id)
        assert.are.equal(o.info.orchestrationName, s.orchestration_name)
        assert.are.equal(o.info.orchestrationVersion, s.version or "unknown")
        assert.are.equal(o.info.currentExecutionId, s.execution_count)
        assert.are.equal(o.info.status, s.status)
        assert.are.equal(o.info.parentInstanceId, s.parent_instance)
        local current = d.executions[#d.executions]
        -- Duroxide's PostgreSQL API gives no output for a Running instance, its SQLite one ""
        if pg and o.info.output == nil then
          assert.is_nil(current.output)
        else
          assert.are.equal(o.info.output, current.output or "")
        end
        if s.status == "Failed" then assert.are.equal(o.info.output, s.error) end
        assert.are.equal(stored_created_ms(id), s.created_at)
        assert.is_true(s.updated_at >= s.created_at)
        if pg then
          -- PostgreSQL: Duroxide reports real times; updated_at is at least its updatedAt (the
          -- runtime stamps it at every turn; we also look at the execution and its last event)
          assert.are.equal(o.info.createdAt, s.created_at)
          assert.is_true(s.updated_at >= o.info.updatedAt)
        else
          -- Duroxide reports createdAt = updatedAt = 0 on SQLite (it reads text as an integer).
          assert.are.equal(0, o.info.createdAt)
        end
      end)

      it("has the executions of listExecutions and getExecutionInfo", function()
        assert.are.same(o.executions, assert(dx:list_executions(id)))
        local d = assert(dx:get_instance_details(id))
        assert.are.equal(#o.executions, #d.executions)
        for _, e in ipairs(d.executions) do
          local oe = o.executionInfo[tostring(e.execution_id)]
          assert.are.equal(oe.status, e.status)
          if pg and oe.output == nil then
            assert.is_nil(e.output)
          else
            assert.are.equal(oe.output, e.output or "")
          end
          assert.are.equal(oe.eventCount, e.event_count)
          if oe.completedAt ~= nil and oe.completedAt ~= 0 then
            assert.are.equal(oe.completedAt, e.completed_at)
          elseif pg and oe.status == "ContinuedAsNew" then
            -- Duroxide's PostgreSQL provider leaves completed_at NULL on a ContinuedAsNew
            -- execution (SQLite sets it): we give the time of its last event on both
            local hist = o.history[tostring(e.execution_id)]
            assert.are.equal(hist[#hist].timestampMs, e.completed_at)
          else
            assert.is_nil(e.completed_at)
          end
          -- the start of an execution is its first event (Duroxide reports startedAt = 0 on
          -- SQLite; on PostgreSQL the runtime's clock when it wrote the row, at that turn's end)
          if pg then
            assert.is_true(oe.startedAt >= e.started_at and oe.startedAt - e.started_at < 60000)
          else
            assert.are.equal(0, oe.startedAt)
          end
          assert.are.equal(o.history[tostring(e.execution_id)][1].timestampMs, e.started_at)
        end
      end)

      it("has the history of readExecutionHistory", function()
        for _, exec in ipairs(o.executions) do
          local theirs = o.history[tostring(exec)]
          local ours = assert(dx:read_execution_history(id, exec))
          assert.are.equal(#theirs, #ours)
          for i, ev in ipairs(ours) do
            local te = theirs[i]
            assert.are.equal(te.eventId, ev.event_id)
            assert.are.equal(te.kind, NODE_KIND[ev.event_type] or ev.event_type)
            assert.are.equal(te.sourceEventId, ev.source_event_id)
            assert.are.equal(te.timestampMs, ev.timestamp_ms)
            assert.are.equal(exec, ev.execution_id)
            if FAILURES[ev.event_type] then
              assert.is_true(H.deep_equal(assert(durox.decode_json(te.data)), ev.details))
            elseif NO_DATA[ev.event_type] then
              assert.is_nil(te.data)
            else
              local expected = node_data(ev)
              assert(expected ~= nil, "an event type this test does not know: " .. ev.event_type)
              assert.are.equal(te.data, expected)
            end
          end
        end
      end)

      it("has the client status of getStatus", function()
        local st = assert(dx:get_orchestration_status(id))
        assert.are.equal(o.status.status, st.status)
        assert.are.equal(o.status.output, st.output)
        assert.are.equal(o.status.customStatus, st.custom_status)
        assert.are.equal(o.status.customStatusVersion, st.custom_status_version)
        if st.status == "Failed" then
          assert.are.equal(o.status.error, st.error)
        end
      end)

      it("has the tree of getInstanceTree", function()
        local all, stack = {}, { id }
        while #stack > 0 do
          local cur = table.remove(stack)
          all[#all + 1] = cur
          for _, c in ipairs(assert(dx:list_instances({ parent_instance = cur }))) do
            stack[#stack + 1] = c.instance_id
          end
        end
        assert.are.equal(o.tree.rootId, id)
        assert.are.equal(o.tree.size, #all)
        assert.are.same(H.sorted(o.tree.allIds), H.sorted(all))
      end)
    end)
  end
end)

describe("differential on " .. P.name .. ": system metrics", function()
  it("counts instances by status like getSystemMetrics", function()
    local m = oracle.systemMetrics
    local total = 0
    for _ in dx:instances() do total = total + 1 end
    assert.are.equal(m.totalInstances, total)
    assert.are.equal(m.runningInstances, #assert(dx:list_instances({ status = "Running" })))
    assert.are.equal(m.completedInstances, #assert(dx:list_instances({ status = "Completed" })))
    assert.are.equal(m.failedInstances, #assert(dx:list_instances({ status = "Failed" })))
    local execs, events = 0, 0
    for _, s in ipairs(assert(dx:list_instances())) do
      local d = assert(dx:get_instance_details(s.instance_id))
      execs = execs + #d.executions
      for _, e in ipairs(d.executions) do events = events + e.event_count end
    end
    assert.are.equal(m.totalExecutions, execs)
    assert.are.equal(m.totalEvents, events)
  end)
end)
end
