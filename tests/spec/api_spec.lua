-- api_spec.lua - the Lua API on a store written by the real Duroxide runtime: what each
-- scenario instance must look like (from the manifest the generator wrote), filters,
-- keyset paging in every order, predicates, search, the iterator, filtered history and
-- statistics. Expected values come from the manifest, from Lua-side computations over
-- full listings, or from SQL run by the sqlite3 tool - never from the code under test alone.
local durox = require "durox"
local H = require "helpers"

if #H.providers() == 0 then
  describe("api", function() pending("DUROX_SCENARIO_DB and DUROX_ORACLE are not set") end)
  return
end

-- Runs on both providers (H.providers): the same scenarios written by the runtime to SQLite
-- and to PostgreSQL.

for _, P in ipairs(H.providers()) do
local pg = P.name == "postgres"
local dx = P.open({ readonly = true })
local manifest = P.manifest().instances
local all = assert(dx:list_instances())
local by_id = {}
for _, s in ipairs(all) do by_id[s.instance_id] = s end

-- ids of `all` that satisfy f, and ids a filter lists, both sorted
local function where(f) return H.where(all, f) end
local function list_ids(filter) return H.list_ids(dx, filter) end

describe("scenario instances on " .. P.name, function()
  it("are all there", function()
    local n = 0
    for id in pairs(manifest) do
      n = n + 1
      assert(by_id[id], "missing " .. id)
    end
    assert.are.equal(n, #all)
  end)

  for id, m in pairs(manifest) do
    it(id .. " is " .. m.status .. (m.failure_kind and (" (" .. m.failure_kind .. ")") or ""), function()
      local s = by_id[id]
      assert.are.equal(m.status, s.status)
      assert.are.equal(m.failure_kind, s.failure_kind)
      assert.are.equal(m.executions, s.execution_count)
      assert.are.equal(m.name, s.orchestration_name)
      assert.are.equal(m.version, s.version)
      assert.are.equal(m.parent ~= durox.null and m.parent or nil, s.parent_instance)
      if m.custom_status then
        assert.are.equal(m.custom_status, s.custom_status)
        assert.are.equal(m.custom_status_version, s.custom_status_version)
      end
      if s.status == "Failed" then
        assert.is_string(s.error)
        assert.is_number(s.completed_at)
      elseif s.status == "Running" then
        assert.is_nil(s.completed_at)
        assert.is_nil(s.error)
      end
    end)
  end
end)

describe("get_instance_details on " .. P.name, function()
  -- what a running instance waits on, per the manifest's waiting_on
  for id, m in pairs(manifest) do
    if m.status == "Running" and m.waiting_on then
      it(id .. " shows it waits on " .. m.waiting_on, function()
        local d = assert(dx:get_instance_details(id))
        local cur = d.current_execution
        assert.are.equal(m.executions, cur.execution_id)
        local kind, name = m.waiting_on:match("^(%w+):?(.*)$")
        if kind == "event" or kind == "queue" then
          assert.are.equal(1, #cur.pending_events)
          assert.are.equal(name, cur.pending_events[1].name)
          assert.are.equal(kind, cur.pending_events[1].kind)
          assert.are.equal(0, #cur.pending_activities)
          assert.are.equal(0, #cur.pending_timers)
        elseif kind == "timer" then
          assert.are.equal(1, #cur.pending_timers)
          local t = cur.pending_timers[1]
          assert.are.equal(m.timer_fire_at_ms, t.fire_at)
          assert.are.equal(t.fire_at - t.scheduled_at, t.delay_ms)
          assert.is_true(t.delay_ms >= 3600000 - 1000 and t.delay_ms <= 3600000 + 1000)
        elseif kind == "activity" then
          assert.are.equal(1, #cur.pending_activities)
          assert.are.equal(name, cur.pending_activities[1].name)
          assert.are.equal(0, #cur.pending_events)
        elseif kind == "child" then
          local kids = {}
          for _, c in ipairs(cur.pending_sub_orchestrations) do kids[#kids + 1] = c.instance_id end
          local running = {}
          for _, c in ipairs(m.children) do
            if manifest[c].status == "Running" then running[#running + 1] = c end
          end
          assert.are.same(H.sorted(running), H.sorted(kids))
        else
          error("unknown waiting_on " .. m.waiting_on)
        end
      end)
    end
  end

  it("shows an early event as received but not delivered (the subscription stays open)", function()
    local d = assert(dx:get_instance_details("early-event-1"))
    assert.are.equal(1, d.statistics.total_events_received)
    assert.are.equal(1, d.statistics.total_events_subscribed)
    assert.are.equal(1, #d.current_execution.pending_events)
  end)

  it("counts a consumed queue message and the still open queue subscription", function()
    local d = assert(dx:get_instance_details("queue-partial-1"))
    local cur = d.current_execution
    assert.are.equal(1, d.statistics.total_events_received)
    assert.are.equal(2, d.statistics.total_events_subscribed)
    assert.are.equal(1, #cur.pending_events)
    assert.are.equal("queue", cur.pending_events[1].kind)
    assert.are.equal(0, cur.buffered_queue_messages)
  end)

  it("shows a pending tagged activity with its tag and input", function()
    local a = assert(dx:get_instance_details("pending-activity-1")).current_execution.pending_activities[1]
    assert.are.equal("gpu", a.tag)
    local scheduled = assert(dx:read_execution_history("pending-activity-1"))[a.correlation_id]
    assert.are.equal("ActivityScheduled", scheduled.event_type)
    assert.are.equal(scheduled.input, a.input)
    assert.are.equal(scheduled.timestamp_ms, a.scheduled_at)
    assert.are.equal('{"frame":1}', a.input)
  end)

  it("lists every execution of a continue-as-new chain with the input handed on", function()
    local d = assert(dx:get_instance_details("can-done-1"))
    assert.are.equal(4, #d.executions)
    for i, e in ipairs(d.executions) do
      assert.are.equal(i, e.execution_id)
      if i < 4 then
        assert.are.equal("ContinuedAsNew", e.status)
        assert.are.equal(e.output, e.continue_as_new_reason)
        -- the next execution starts with exactly that input
        local next_start = assert(dx:read_execution_history("can-done-1", i + 1))[1]
        assert.are.equal(e.continue_as_new_reason, next_start.input)
      else
        assert.are.equal("Completed", e.status)
        assert.is_nil(e.continue_as_new_reason)
      end
    end
    assert.are.equal(0, #d.current_execution.pending_events)
  end)

  it("returns the 1 MiB payload intact", function()
    local d = assert(dx:get_instance_details("payload-1mib-1"))
    assert.are.equal(1048576, #d.input)
    assert.are.equal(1048576, #d.output)
    assert.are.equal(d.input, d.output)
  end)

  it("handles ids with quotes, spaces, unicode and LIKE wildcards", function()
    for _, id in ipairs({ "quote'single-1", 'quote"double-1', "has spaces 1", "ünï-日本-✓", "pct%_1", "back\\slash-1" }) do
      local d = assert(dx:get_instance_details(id))
      assert.are.equal(id, d.summary.instance_id)
      assert.are.equal(manifest[id].status, d.summary.status)
    end
  end)

  it("reports unknown instances as NOTFOUND", function()
    local d, msg, code = dx:get_instance_details("no such thing")
    assert.is_nil(d)
    assert.are.equal("instance 'no such thing' not found", msg)
    assert.are.equal("NOTFOUND", code)
    assert.are.same({ nil, "instance 'x' not found", "NOTFOUND" }, { dx:get_instance_statistics("x") })
    assert.are.same({ nil, "instance 'x' not found", "NOTFOUND" }, { dx:list_executions("x") })
  end)
end)

describe("get_instance_statistics on " .. P.name, function()
  -- counted by SQLite over the history table, independently of our analysis
  local function count(id, types, extra)
    local in_list = {}
    for _, t in ipairs(types) do in_list[#in_list + 1] = H.q(t) end
    local rows = P.sql("SELECT count(*) AS n FROM history WHERE instance_id = " .. H.q(id) .. " AND "
      .. (pg and "(event_data::json->>'type')" or "event_type") .. " IN (" .. table.concat(in_list, ",") .. ")"
      .. (extra or ""))
    return rows[1].n
  end
  local not_syscall = pg and " AND (event_data::json->>'name') NOT LIKE '\\_\\_duroxide\\_syscall:%' ESCAPE '\\'"
    or " AND json_extract(event_data, '$.name') NOT LIKE '\\_\\_duroxide\\_syscall:%' ESCAPE '\\'"

  for _, id in ipairs({ "completed-seq-1", "can-done-1", "tree-done-1", "queue-partial-1", "early-event-1",
    "failed-activity-1", "catch-activity-1", "cancel-parent-1", "kv-done-1", "sleep-1h-1" }) do
    it("counts events of " .. id .. " as SQL does", function()
      local st = assert(dx:get_instance_statistics(id))
      assert.are.equal(count(id, { "ActivityScheduled" }, not_syscall), st.total_activities_scheduled)
      assert.are.equal(count(id, { "TimerCreated" }), st.total_timers_scheduled)
      assert.are.equal(count(id, { "TimerFired" }), st.total_timers_fired)
      assert.are.equal(count(id, { "ExternalSubscribed", "ExternalSubscribedPersistent" }), st.total_events_subscribed)
      assert.are.equal(count(id, { "ExternalEvent", "ExternalEventPersistent" }), st.total_events_received)
      assert.are.equal(count(id, { "SubOrchestrationScheduled" }), st.total_sub_orchestrations)
      local rows = P.sql("SELECT count(*) AS n FROM history WHERE instance_id = " .. H.q(id))
      assert.are.equal(rows[1].n, st.total_history_events)
      -- completions answer scheduled (non-syscall) activities
      assert.is_true(st.total_activities_completed + st.total_activities_failed <= st.total_activities_scheduled)
      assert.is_true(st.total_turns >= 1)
      assert.is_true(st.average_turn_duration_ms >= 0)
    end)
  end

  it("sums execution time from start to terminal event", function()
    local st = assert(dx:get_instance_statistics("can-done-1"))
    local expected = 0
    for exec = 1, 4 do
      local h = assert(dx:read_execution_history("can-done-1", exec))
      expected = expected + (h[#h].timestamp_ms - h[1].timestamp_ms)
    end
    assert.are.equal(expected, st.total_execution_time_ms)
  end)

  it("counts one failed activity for a caught activity error", function()
    local st = assert(dx:get_instance_statistics("catch-activity-1"))
    assert.are.equal(1, st.total_activities_failed)
  end)
end)

describe("filters on " .. P.name, function()
  it("by status list", function()
    assert.are.same(where(function(s) return s.status == "Failed" or s.status == "Running" end),
      list_ids({ status = { "Failed", "Running" } }))
  end)
  it("by name and name prefix", function()
    assert.are.same(where(function(s) return s.orchestration_name == "Sequence" end), list_ids({ name = "Sequence" }))
    assert.are.same(list_ids({ name = "Sequence" }), list_ids({ orchestration_name = "Sequence" }))
    assert.are.same(where(function(s) return s.orchestration_name:sub(1, 4) == "Tree" end), list_ids({ name_prefix = "Tree" }))
  end)
  it("by version", function()
    -- an unversioned start runs the latest registered version (2.0.0)
    assert.are.same({ "versioned-2-1", "versioned-default-1" }, list_ids({ version = "2.0.0" }))
    assert.are.same(where(function(s) return s.version == "1.0.0" end), list_ids({ version = "1.0.0" }))
  end)
  it("by id prefix, with LIKE wildcards taken literally", function()
    assert.are.same({ "pct%_1" }, list_ids({ id_prefix = "pct%" }))
    assert.are.same({}, list_ids({ id_prefix = "pct_" }))
    assert.are.same(where(function(s) return s.instance_id:sub(1, 5) == "tree-" end), list_ids({ instance_id_prefix = "tree-" }))
    assert.are.same({ "ünï-日本-✓" }, list_ids({ id_prefix = "ünï" }))
  end)
  it("by parent and has_parent", function()
    assert.are.same(where(function(s) return s.parent_instance == "tree-done-1" end), list_ids({ parent_instance = "tree-done-1" }))
    assert.are.equal(3, #list_ids({ parent_instance = "tree-done-1" }))
    assert.are.same(where(function(s) return s.parent_instance ~= nil end), list_ids({ has_parent = true }))
    assert.are.same(where(function(s) return s.parent_instance == nil end), list_ids({ has_parent = false }))
  end)
  it("by failure kind", function()
    assert.are.same({ "cancel-parent-1", "cancel-parent-1::sub::2", "cancel-waiting-1" }, list_ids({ failure_kind = "cancelled" }))
    assert.are.same({ "nondet-1" }, list_ids({ failure_kind = "nondeterminism" }))
    assert.are.same(where(function(s) return s.failure_kind == "application" or s.failure_kind == "cancelled" end),
      list_ids({ failure_kind = { "application", "cancelled" } }))
  end)
  it("by custom status", function()
    assert.are.same({ "status-wait-1" }, list_ids({ custom_status = '{"phase":"review"}', status = "Running" }))
    assert.are.same(where(function(s) return s.custom_status and s.custom_status:sub(1, 9) == '{"phase":' end),
      list_ids({ custom_status_prefix = '{"phase":' }))
  end)
  it("by executions", function()
    assert.are.same({ "can-done-1", "can-wait-1" }, list_ids({ min_executions = 2 }))
    assert.are.same(where(function(s) return s.execution_count <= 1 end), list_ids({ max_executions = 1 }))
  end)
  it("by time ranges", function()
    local times = {}
    for _, s in ipairs(all) do times[#times + 1] = s.created_at end
    table.sort(times)
    local mid = times[#times // 2]
    assert.are.same(where(function(s) return s.created_at > mid end), list_ids({ created_after = mid }))
    assert.are.same(where(function(s) return s.created_at < mid end), list_ids({ created_before = mid }))
    assert.are.same(where(function(s) return s.created_at > mid end), list_ids({ created_after = durox.format_time(mid) }))
    local u = by_id["completed-seq-1"].updated_at
    assert.are.same(where(function(s) return s.updated_at > u end), list_ids({ updated_after = u }))
    assert.are.same(where(function(s) return s.completed_at and s.completed_at < u end), list_ids({ completed_before = u }))
    assert.are.same({}, list_ids({ created_after = "now" }))
    assert.are.equal(#all, #list_ids({ created_after = "-3650d" }))
  end)
  it("by text in id, name, custom status, input or output", function()
    assert.are.same({ "failed-parent-1", "failed-parent-1::sub::2" }, list_ids({ text = "INVENTORY unavailable" }))
    assert.are.same(where(function(s) return s.orchestration_name == "CustomStatusWaiter" or
      (s.custom_status or ""):find("review", 1, true) end), list_ids({ text = "review" }))
    assert.are.same({ "ünï-日本-✓" }, list_ids({ text = "日本" }))
  end)
  it("rejects misuse with clear errors", function()
    assert.has_error(function() dx:list_instances({ colour = "red" }) end, "unknown filter field 'colour'")
    assert.has_error(function() dx:list_instances({ status = "Cancelled" }) end,
      "invalid filter: unknown status 'Cancelled' (expected Running, Completed, Failed, ContinuedAsNew or Unknown; "
      .. "a cancelled instance is Failed with failure_kind cancelled)")
    assert.has_error(function() dx:list_instances({ created_after = "last tuesday" }) end)
    assert.has_error(function() dx:list_instances({ has_parent = "yes" }) end,
      "filter field 'has_parent' expects a boolean, got string")
    assert.has_error(function() dx:list_instances("status = ") end,
      "query error at position 10: expected a value after '=' but found end of query")
    assert.has_error(function() dx:list_instances(42) end)
  end)
end)

describe("list_instances_paginated on " .. P.name, function()
  local orders = {
    CreatedAt = function(s) return s.created_at end,
    UpdatedAt = function(s) return s.updated_at end,
    InstanceId = function(s) return s.instance_id end,
    OrchestrationName = function(s) return s.orchestration_name end,
  }
  -- on SQLite the visibility index answers by default: the store's own SQL (index = false)
  -- pages too, and its ties (many instances share a created_at second) must order the same
  local handles = { { "", dx } }
  if not pg then handles[2] = { " without the index", P.open({ readonly = true, index = false }) } end
  for order, key in pairs(orders) do
    for _, dir in ipairs({ "asc", "desc" }) do
    for _, hd in ipairs(handles) do
      local how, dx = hd[1], hd[2]
      it("visits every instance once in " .. order .. " " .. dir .. " order" .. how, function()
        local expected = {}
        for i, s in ipairs(all) do expected[i] = s end
        table.sort(expected, function(a, b)
          local ka, kb = key(a), key(b)
          if ka ~= kb then
            if dir == "asc" then return ka < kb else return ka > kb end
          end
          if dir == "asc" then return a.instance_id < b.instance_id else return a.instance_id > b.instance_id end
        end)
        local got, token, pages = {}, nil, 0
        repeat
          local r = assert(dx:list_instances_paginated({ page_size = 7, page_token = token, order_by = order,
            direction = dir, total_count = true }))
          pages = pages + 1
          assert.are.equal(#all, r.total_count)
          if r.next_page_token then assert.are.equal(7, #r.instances) end
          for _, s in ipairs(r.instances) do got[#got + 1] = s.instance_id end
          token = r.next_page_token
        until not token
        assert.are.same(H.ids(expected), got)
        assert.are.equal(math.ceil(#all / 7), pages)
        -- the iterator streams the same sequence
        local streamed = {}
        for s in dx:instances(nil, { order_by = order, direction = dir, batch_size = 5 }) do
          streamed[#streamed + 1] = s.instance_id
        end
        assert.are.same(got, streamed)
      end)
    end
    end
  end

  it("defaults to newest first and 100 per page", function()
    local r = assert(dx:list_instances_paginated())
    assert.are.equal(#all <= 100 and #all or 100, #r.instances)
    assert.are.same(H.ids(all), H.ids(r.instances))
    assert.is_nil(r.total_count)
  end)

  it("binds tokens to their filter and order", function()
    local r = assert(dx:list_instances_paginated({ page_size = 3, filter = { status = "Completed" } }))
    local tok = r.next_page_token
    assert.is_string(tok)
    local ok, msg, code = dx:list_instances_paginated({ page_size = 3, page_token = tok, filter = { status = "Running" } })
    assert.is_nil(ok)
    assert.are.equal("page token was issued for a different filter or order; repeat the first request without a token", msg)
    assert.are.equal("INVALID", code)
    ok, msg = dx:list_instances_paginated({ page_size = 3, page_token = tok, filter = { status = "Completed" }, order_by = "InstanceId" })
    assert.is_nil(ok)
    assert.are.equal("page token was issued for a different filter or order; repeat the first request without a token", msg)
    local tampered = tok:sub(1, 10) .. (tok:sub(11, 11) == "A" and "B" or "A") .. tok:sub(12)
    ok, msg, code = dx:list_instances_paginated({ page_size = 3, page_token = tampered, filter = { status = "Completed" } })
    assert.is_nil(ok)
    assert.are.equal("malformed page token", msg)
    assert.are.equal("INVALID", code)
    -- the right filter continues
    local r2 = assert(dx:list_instances_paginated({ page_size = 3, page_token = tok, filter = { status = "Completed" } }))
    assert.are.equal(3, #r2.instances)
    assert.are_not.equal(r.instances[1].instance_id, r2.instances[1].instance_id)
  end)

  it("fills pages when a predicate drops instances", function()
    local pred = function(s) return #s.instance_id % 2 == 0 end
    local expected = {}
    for _, s in ipairs(all) do if pred(s) then expected[#expected + 1] = s.instance_id end end
    local got, token = {}, nil
    repeat
      local r = assert(dx:list_instances_paginated({ page_size = 5, page_token = token, predicate = pred, total_count = true }))
      assert.are.equal(#expected, r.total_count)
      if r.next_page_token then assert.are.equal(5, #r.instances) end
      for _, s in ipairs(r.instances) do got[#got + 1] = s.instance_id end
      token = r.next_page_token
    until not token
    assert.are.same(expected, got)
    assert.are.same(expected, H.ids(assert(dx:list_instances(nil, pred))))
    assert.are.same(expected, H.ids(assert(dx:list_instances({ predicate = pred }))))
  end)

  it("propagates an error raised by the predicate", function()
    assert.has_error(function()
      dx:list_instances_paginated({ predicate = function() error("boom", 0) end })
    end, "boom")
    assert.has_error(function()
      for _ in dx:instances({ predicate = function() error("boom2", 0) end }) do end
    end, "boom2")
  end)

  it("refuses list_instances beyond max_list_instances", function()
    local small = assert(durox.open(P.url, { readonly = true, config = { max_list_instances = 10 } }))
    local ok, msg, code = small:list_instances()
    assert.is_nil(ok)
    assert.are.equal("LIMIT", code)
    assert.are.equal("more than 10 instances match (max_list_instances); narrow the filter or use "
      .. "list_instances_paginated or the instances() iterator", msg)
    assert.are.equal(10, #assert(small:list_instances_paginated({ page_size = 50 })).instances)
    assert.are.equal(3, #assert(small:list_instances({ parent_instance = "tree-done-1" })))
    small:close()
  end)
end)

describe("search_instances on " .. P.name, function()
  it("finds text in output, case-insensitively", function()
    local r = assert(dx:search_instances("RESULT=20"))
    assert.are.same(where(function(s)
      local d = dx:get_instance_details(s.instance_id)
      return (d.output or ""):lower():find("result=20", 1, true) ~= nil
        or (d.input or ""):lower():find("result=20", 1, true) ~= nil
    end), H.sorted(H.ids(r)))
    assert.is_true(#r > 0)
  end)
  it("combines with a filter and a limit", function()
    local r = assert(dx:search_instances({ text = "tree", filter = { status = "Running" }, limit = 3 }))
    assert.are.equal(3, #r)
    for _, s in ipairs(r) do assert.are.equal("Running", s.status) end
  end)
  it("rejects empty text", function()
    assert.are.same({ nil, "search text is empty", "INVALID" }, { dx:search_instances("") })
  end)
end)

describe("the iterator on " .. P.name, function()
  it("releases on break and closes with the loop", function()
    local n = 0
    for s in dx:instances({ status = "Completed" }) do
      n = n + 1
      if n == 3 then break end
    end
    assert.are.equal(3, n)
  end)
  it("raises when the store is closed underneath it", function()
    local h = P.open({ readonly = true })
    assert.has_error(function()
      for _ in h:instances(nil, { batch_size = 2 }) do h:close() end
    end, "store was closed during iteration")
  end)
end)

describe("get_execution_history_filtered on " .. P.name, function()
  local id = "completed-seq-1"
  local full = assert(dx:read_execution_history(id))

  it("pages through the whole history", function()
    local got, token = {}, nil
    repeat
      local r = assert(dx:get_execution_history_filtered({ instance_id = id, page_size = 3, page_token = token }))
      for _, e in ipairs(r.events) do got[#got + 1] = e.event_id end
      token = r.next_page_token
    until not token
    local expected = {}
    for i, e in ipairs(full) do expected[i] = e.event_id end
    assert.are.same(expected, got)
  end)

  it("filters by type, id range and time range", function()
    local r = assert(dx:get_execution_history_filtered({ instance_id = id, event_types = { "ActivityScheduled" } }))
    for _, e in ipairs(r.events) do assert.are.equal("ActivityScheduled", e.event_type) end
    local n = 0
    for _, e in ipairs(full) do if e.event_type == "ActivityScheduled" then n = n + 1 end end
    assert.are.equal(n, #r.events)
    r = assert(dx:get_execution_history_filtered({ instance_id = id, from_event_id = 2, to_event_id = 4 }))
    assert.are.same({ 2, 3, 4 }, { r.events[1].event_id, r.events[2].event_id, r.events[3].event_id })
    local t = full[3].timestamp_ms
    r = assert(dx:get_execution_history_filtered({ instance_id = id, from_time = t, to_time = t }))
    for _, e in ipairs(r.events) do assert.are.equal(t, e.timestamp_ms) end
    local m = 0
    for _, e in ipairs(full) do if e.timestamp_ms == t then m = m + 1 end end
    assert.are.equal(m, #r.events)
  end)

  it("leaves payloads out when asked", function()
    local r = assert(dx:get_execution_history_filtered({ instance_id = "payload-1mib-1", include_payloads = false }))
    assert.are.equal("OrchestrationStarted", r.events[1].event_type)
    assert.is_nil(r.events[1].input)
    assert.are.equal("EchoRaw", r.events[1].name)
    assert.is_nil(r.events[2].output)
    local with = assert(dx:read_execution_history("payload-1mib-1"))
    assert.are.equal(1048576, #with[1].input)
  end)

  it("reads older executions and rejects unknown ones", function()
    local r = assert(dx:get_execution_history_filtered({ instance_id = "can-done-1", execution_id = 2 }))
    assert.are.equal(2, r.execution_id)
    assert.are.equal("OrchestrationContinuedAsNew", r.events[#r.events].event_type)
    assert.are.same({ nil, "execution 9 of instance 'can-done-1' not found", "NOTFOUND" },
      { dx:get_execution_history_filtered({ instance_id = "can-done-1", execution_id = 9 }) })
  end)

  it("binds page tokens to the request", function()
    local r = assert(dx:get_execution_history_filtered({ instance_id = id, page_size = 2 }))
    local ok, msg, code = dx:get_execution_history_filtered({ instance_id = id, page_size = 2, page_token = r.next_page_token,
      event_types = "ActivityCompleted" })
    assert.is_nil(ok)
    assert.are.equal("INVALID", code)
    assert.matches("different history request", msg)
    assert.are.same({ nil, "malformed history page token", "INVALID" },
      { dx:get_execution_history_filtered({ instance_id = id, page_token = "xyz" }) })
  end)
end)

describe("single-instance basics on " .. P.name, function()
  it("describes a child with its parent link", function()
    local d = assert(dx:get_orchestration_descriptor("tree-done-1::sub::2"))
    assert.are.equal("tree-done-1", d.parent_instance)
    assert.are.equal(2, d.parent_id)
    assert.are.equal(by_id["tree-done-1::sub::2"].orchestration_name, d.name)
    assert.are.equal(2, by_id["tree-done-1::sub::2"].parent_id)
    local root = assert(dx:get_orchestration_descriptor("tree-done-1"))
    assert.is_nil(root.parent_instance)
    assert.is_nil(root.parent_id)
  end)
  it("reports NotFound status for unknown ids without an error", function()
    assert.are.same({ status = "NotFound", custom_status_version = 0 }, assert(dx:get_orchestration_status("nope")))
  end)
  it("raises on a closed handle", function()
    local h = P.open()
    h:close()
    h:close() -- idempotent
    assert.has_error(function() h:list_instances() end, "attempt to use a closed store")
  end)
end)
end
