-- parity_spec.lua - the same scenarios, written by the real runtime once to SQLite and once to
-- PostgreSQL, give the same answers on both providers: listings (in every order that does not
-- depend on time), filters and query strings, summaries, details, history shapes, statistics,
-- runtime, queue and per-orchestration metrics, group-by and stuck detection. Times differ
-- between the two runs (and SQLite keeps whole seconds where PostgreSQL keeps milliseconds),
-- so they are left aside; everything else must be equal.
local durox = require "durox"
local H = require "helpers"

local P = H.providers()
if #P < 2 then
  describe("parity", function() pending("both the SQLite and the PostgreSQL fixtures are needed") end)
  return
end

local sq = P[1].open({ readonly = true })
local pg = P[2].open({ readonly = true })
local sq_made = P[1].manifest().created_at_ms
local pg_made = P[2].manifest().created_at_ms

-- A summary without its times (and the fields that only times decide).
local function timeless(s)
  return {
    instance_id = s.instance_id, orchestration_name = s.orchestration_name, version = s.version, status = s.status,
    execution_count = s.execution_count, parent_instance = s.parent_instance, parent_id = s.parent_id,
    failure_kind = s.failure_kind, custom_status = s.custom_status, custom_status_version = s.custom_status_version,
    completed = s.completed_at ~= nil,
    -- the nondeterminism message quotes a timer's fire time
    error = s.error and (s.error:gsub("fire_at_ms: %d+", "fire_at_ms: T")),
  }
end

local function by_id(list)
  local m = {}
  for _, s in ipairs(list) do m[s.instance_id] = timeless(s) end
  return m
end

describe("parity of listings", function()
  local a, b = assert(sq:list_instances()), assert(pg:list_instances())

  it("has the same instances with the same summaries", function()
    assert.is_true(#a > 50)
    assert.are.same(by_id(a), by_id(b))
  end)

  for _, order in ipairs({ "InstanceId", "OrchestrationName" }) do
    for _, dir in ipairs({ "asc", "desc" }) do
      it("pages in the same " .. order .. " " .. dir .. " order", function()
        local function walk(dx)
          local ids, token = {}, nil
          repeat
            local r = assert(dx:list_instances_paginated { page_size = 9, page_token = token, order_by = order,
                                                          direction = dir })
            for _, s in ipairs(r.instances) do ids[#ids + 1] = s.instance_id end
            token = r.next_page_token
          until not token
          return ids
        end
        assert.are.same(walk(sq), walk(pg))
      end)
    end
  end

  for _, q in ipairs({
    "status = 'Failed'", "status IN ('Running', 'ContinuedAsNew') AND name = 'TreeNode'",
    "failure_kind = 'cancelled'", "failure_kind IN ('application', 'nondeterminism')", "name LIKE 'tree%'",
    "instance_id STARTS_WITH 'tree-done-1'", "text CONTAINS 'approve'", "custom_status IS NOT NULL",
    "parent_instance IS NULL AND execution_count > 1", "NOT (status = 'Completed') OR version = '2.0.0'",
    "name CONTAINS 'wait' AND NOT (failure_kind = 'cancelled')", "version BETWEEN '1.0.0' AND '1.9'",
    "instance_id > 'm' AND instance_id <= 't'", "completed_at IS NULL",
  }) do
    it("selects the same instances for " .. q, function()
      local x, y = assert(sq:list_instances(q)), assert(pg:list_instances(q))
      assert.is_true(#x > 0, q)
      assert.are.same(H.sorted(H.ids(x)), H.sorted(H.ids(y)))
      local cx = assert(sq:list_instances_paginated { filter = q, page_size = 1, total_count = true })
      local cy = assert(pg:list_instances_paginated { filter = q, page_size = 1, total_count = true })
      assert.are.equal(#x, cx.total_count)
      assert.are.equal(cx.total_count, cy.total_count)
    end)
  end

  it("searches alike", function()
    local x = assert(sq:search_instances { text = "hello" })
    local y = assert(pg:search_instances { text = "hello" })
    assert.are.same(H.sorted(H.ids(x.instances or x)), H.sorted(H.ids(y.instances or y)))
  end)
end)

describe("parity of details and history", function()
  local ids = H.ids(assert(sq:list_instances()))
  table.sort(ids)

  -- the shape of a history: its events by type and name (payloads can hold times and guids;
  -- completions of concurrent work arrive in the order the runtime happened to finish it, so
  -- their ids and sources may differ between the two runs)
  local function shape(dx, id, exec)
    local out = {}
    for i, e in ipairs(assert(dx:read_execution_history(id, exec))) do
      out[i] = ("%s %s"):format(e.event_type, tostring(e.name))
    end
    table.sort(out)
    return out
  end

  it("has the same executions, waits and statistics for every instance", function()
    for _, id in ipairs(ids) do
      local a, b = assert(sq:get_instance_details(id)), assert(pg:get_instance_details(id))
      assert.are.equal(#a.executions, #b.executions, id)
      for k, e in ipairs(a.executions) do
        local f = b.executions[k]
        assert.are.equal(e.status, f.status, id)
        assert.are.equal(e.event_count, f.event_count, id)
        assert.are.same(shape(sq, id, e.execution_id), shape(pg, id, f.execution_id), id)
      end
      local ca, cb = a.current_execution, b.current_execution
      if ca then
        local function names(list)
          local n = {}
          for i, x in ipairs(list) do n[i] = x.name or x.instance_id or tostring(x.fire_at ~= nil) end
          return n
        end
        assert.are.same(names(ca.pending_events), names(cb.pending_events), id)
        assert.are.same(names(ca.pending_activities), names(cb.pending_activities), id)
        assert.are.equal(#ca.pending_timers, #cb.pending_timers, id)
        assert.are.same(names(ca.pending_sub_orchestrations), names(cb.pending_sub_orchestrations), id)
      end
      local sa, sb = a.statistics, b.statistics
      for _, k in ipairs({ "total_history_events", "total_activities_scheduled", "total_activities_completed",
                           "total_activities_failed", "total_timers_scheduled", "total_timers_fired",
                           "total_events_subscribed", "total_events_received", "total_sub_orchestrations" }) do
        assert.are.equal(sa[k], sb[k], id .. " " .. k)
      end
      assert.are.equal(a.input, b.input, id)
    end
  end)

  it("has the same client status and trees", function()
    for _, id in ipairs(ids) do
      local a, b = assert(sq:get_orchestration_status(id)), assert(pg:get_orchestration_status(id))
      assert.are.equal(a.status, b.status, id)
      assert.are.equal(a.output, b.output, id)
      assert.are.equal(a.custom_status, b.custom_status, id)
      assert.are.equal(a.custom_status_version, b.custom_status_version, id)
    end
    for _, root in ipairs({ "tree-done-1", "tree-wait-1", "cancel-parent-1", "failed-parent-1" }) do
      local function members(dx)
        local g = assert(dx:get_instance_dependencies(root))
        local m = {}
        for _, n in ipairs(g.descendants or g.nodes or {}) do m[#m + 1] = n.instance_id .. ":" .. n.status end
        table.sort(m)
        return m
      end
      assert.are.same(members(sq), members(pg))
    end
  end)
end)

describe("parity of metrics and analytics", function()
  it("has the same runtime metrics", function()
    local a = assert(sq:get_runtime_metrics { now = sq_made + 600000 })
    local b = assert(pg:get_runtime_metrics { now = pg_made + 600000 })
    for _, k in ipairs({ "total_instances_started", "total_instances_completed", "total_instances_failed",
                         "active_instances", "continued_as_new_instances", "unknown_instances", "total_executions",
                         "total_history_events", "total_activities_executed", "total_timers_fired",
                         "total_events_raised", "durations_counted", "stalled_orchestrator_items",
                         "stalled_worker_items", "overdue_timers", "expired_instance_locks",
                         "blocking_orphan_items", "orchestrator_dispatcher_healthy", "worker_dispatcher_healthy",
                         "timer_dispatcher_healthy" }) do
      assert.are.equal(a[k], b[k], k)
    end
    assert.are.same(a.failed_by_kind, b.failed_by_kind)
  end)

  it("has the same queue metrics", function()
    local a = assert(sq:get_queue_metrics { now = sq_made + 600000 })
    local b = assert(pg:get_queue_metrics { now = pg_made + 600000 })
    for _, k in ipairs({ "orchestrator_queue_size", "worker_queue_size", "timer_queue_size", "overdue_timers",
                         "orchestrator_items_processed", "worker_items_processed", "total_items_processed",
                         "activity_round_trips" }) do
      assert.are.equal(a[k], b[k], k)
    end
    for _, q in ipairs({ "orchestrator", "worker" }) do
      for _, k in ipairs({ "available", "in_progress", "waiting_on_lock", "delayed", "stalled", "near_poison",
                           "at_poison_limit", "max_attempt_count", "orphans", "orphans_blocking" }) do
        assert.are.equal(a[q][k], b[q][k], q .. "." .. k)
      end
    end
  end)

  it("has the same per-orchestration counts", function()
    local function counts(dx)
      local out = {}
      for _, o in ipairs(assert(dx:get_orchestration_metrics())) do
        out[#out + 1] = ("%s %s %d %d %d %d %d"):format(o.orchestration_name, tostring(o.version), o.total_started,
          o.total_completed, o.total_failed, o.active_count, o.durations_counted)
      end
      return out
    end
    assert.are.same(counts(sq), counts(pg))
  end)

  for _, gb in ipairs({ { "Status" }, { "OrchestrationName" }, { "Version" }, { "OrchestrationName", "Status" },
                         { "ParentInstance" } }) do
    it("groups alike by " .. table.concat(gb, ", "), function()
      local function groups(dx)
        local r = assert(dx:query_instances { group_by = gb, aggregate = { "Count", "SuccessRate", "FailureRate" } })
        local out = {}
        for _, g in ipairs(r.groups) do
          local key = {}
          for _, f in ipairs({ "orchestration_name", "status", "version", "parent_instance" }) do
            local v = g[f]
            key[#key + 1] = v == nil and "-" or v == durox.null and "null" or tostring(v)
          end
          out[#out + 1] = table.concat(key, "/") .. (" %d %s %s"):format(g.count, tostring(g.success_rate),
            tostring(g.failure_rate))
        end
        return out, r.total_groups, r.total_instances
      end
      local a, ag, ai = groups(sq)
      local b, bg, bi = groups(pg)
      assert.are.same(a, b)
      assert.are.equal(ag, bg)
      assert.are.equal(ai, bi)
    end)
  end

  it("finds the same stuck instances", function()
    local function found(dx, made)
      local r = assert(dx:find_stuck_instances { now = made + 600000, event_wait_threshold_ms = "1m" })
      local out = {}
      for _, s in ipairs(r.instances) do
        for _, x in ipairs(s.reasons) do out[#out + 1] = s.instance_id .. "/" .. x.reason end
      end
      table.sort(out)
      return out
    end
    local a = found(sq, sq_made)
    assert.is_true(#a > 0)
    assert.are.same(a, found(pg, pg_made))
  end)
end)
