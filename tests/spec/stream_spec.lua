-- stream_spec.lua - dx:stream_instance_events against stores the REAL runtime wrote and while
-- it runs: every InstanceEvent the history holds, mapped as docs/streams.md defines (an oracle
-- written here over the raw rows the sqlite3 tool returns), in commit order, with the
-- filter and event types applied, resumable from every item's cursor; following a live
-- runtime: every event once and in per-execution order, a purge under the cursor gives a
-- reset; enable_streaming = false is DENIED.
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("event streams", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

local D = durox.decode_json

-- The InstanceEvents of a store's history rows (S.history(): SQLite in rowid order,
-- PostgreSQL by instance, execution and event, the orders the feeds deliver from the start),
-- {key, type, instance, ev}. Mapping (docs/streams.md): OrchestrationStarted -> Started,
-- OrchestrationCompleted -> Completed, OrchestrationFailed -> Cancelled when its details are
-- Application/Cancelled else Failed, OrchestrationContinuedAsNew -> ContinuedAsNew,
-- ActivityCompleted/Failed -> Activity* unless the scheduled activity is a Duroxide system
-- call, TimerFired -> TimerFired, ExternalEvent/ExternalEventPersistent -> EventReceived.
local function oracle(S, skip)
  local rows = S.history()
  local scheduled = {}
  for _, r in ipairs(rows) do
    if r.t == "ActivityScheduled" then scheduled[("%s/%d/%d"):format(r.i, r.x, r.e)] = D(r.d).name end
  end
  local simple = { OrchestrationStarted = "Started", OrchestrationCompleted = "Completed",
    OrchestrationContinuedAsNew = "ContinuedAsNew", TimerFired = "TimerFired", ExternalEvent = "EventReceived",
    ExternalEventPersistent = "EventReceived", ActivityCompleted = "ActivityCompleted",
    ActivityFailed = "ActivityFailed" }
  local out = {}
  for _, r in ipairs(rows) do
    local k = ("%s/%d/%d"):format(r.i, r.x, r.e)
    local ev = D(r.d)
    local t = simple[r.t]
    if r.t == "OrchestrationFailed" then
      local app = ev.details.Application
      t = (app and type(app.kind) == "table" and app.kind.Cancelled) and "Cancelled" or "Failed"
    elseif t == "ActivityCompleted" or t == "ActivityFailed" then
      local name = scheduled[("%s/%d/%d"):format(r.i, r.x, ev.source_event_id)]
      if name and name:match("^__duroxide_syscall:") then t = nil end
      ev.activity_name = name
    end
    if t and not (skip and skip[k]) then out[#out + 1] = { key = k, type = t, instance = r.i, ev = ev } end
  end
  return out
end

local function collect(dx, opts)
  local items = {}
  local s = assert(dx:stream_instance_events(opts))
  while true do
    local it = s:next()
    if not it then break end
    items[#items + 1] = it
  end
  local cursor = s:cursor()
  s:close()
  return items, cursor
end

local function keys_types(list, from_oracle)
  local t = {}
  for i, v in ipairs(list) do
    t[i] = from_oracle and (v.key .. " " .. v.type) or (v.key .. " " .. v.event_type)
  end
  return t
end

local function sorted(t)
  local c = { table.unpack(t) }
  table.sort(c)
  return c
end

for _, kind in ipairs(L.kinds()) do
describe("on " .. kind .. ", event streams on a store the runtime wrote", function()
  local dir, S, dx

  setup(function()
    dir = L.tmpdir()
    S = L.scenario_store(kind, dir, "sc")
    dx = assert(durox.open(S.url, { readonly = true }))
  end)

  teardown(function()
    if dx then dx:close() end
    if S then S.drop() end
    L.cleanup(dir)
  end)

  it("yields every InstanceEvent of history, mapped as documented, in commit order", function()
    local expected = oracle(S)
    local got = collect(dx, {})
    assert.are.same(keys_types(expected, true), keys_types(got))
    local kinds = {}
    for _, e in ipairs(expected) do kinds[e.type] = true end
    for _, k in ipairs { "Started", "Completed", "Failed", "Cancelled", "ContinuedAsNew", "ActivityCompleted",
      "ActivityFailed", "TimerFired", "EventReceived" } do
      assert.is_true(kinds[k], "the scenario store has no " .. k)
    end
  end)

  it("fills each event's details from the event and the store", function()
    local expected = oracle(S)
    local got = collect(dx, {})
    local outputs = {}
    for _, r in ipairs(S.rows("SELECT instance_id AS i, execution_id AS x, output AS o FROM executions")) do
      outputs[r.i .. "/" .. r.x] = r.o
    end
    local names = {}
    for _, r in ipairs(S.rows("SELECT instance_id AS i, orchestration_name AS n FROM instances")) do names[r.i] = r.n end
    for i, e in ipairs(expected) do
      local g, ev, d = got[i], e.ev, got[i].details
      assert.are.equal(ev.timestamp_ms, g.timestamp)
      assert.are.equal(names[e.instance], g.orchestration_name)
      assert.are.equal(e.key, g.key)
      assert.are.equal(ev.execution_id, g.execution_id)
      assert.are.equal(ev.event_id, g.event_id)
      if e.type == "Started" then
        local function v(x) return x ~= durox.null and x or nil end
        assert.are.same({ name = ev.name, version = ev.version, input = ev.input,
          parent_instance = v(ev.parent_instance), parent_id = v(ev.parent_id) }, { name = d.name, version = d.version, input = d.input,
          parent_instance = d.parent_instance, parent_id = d.parent_id })
      elseif e.type == "Completed" then
        assert.are.equal(ev.output, d.output)
      elseif e.type == "Failed" then
        assert.are.equal(outputs[("%s/%d"):format(e.instance, ev.execution_id)], d.error)
        assert.are.same(ev.details, d.details)
        assert.is_string(d.failure_kind)
      elseif e.type == "Cancelled" then
        local reason = ev.details.Application.kind.Cancelled.reason
        assert.are.equal(reason, d.reason)
        assert.are.equal("canceled: " .. reason, d.error)
        assert.are.equal(outputs[("%s/%d"):format(e.instance, ev.execution_id)], d.error)
        assert.are.equal("cancelled", d.failure_kind)
      elseif e.type == "ContinuedAsNew" then
        assert.are.equal(ev.input, d.input)
      elseif e.type == "ActivityCompleted" then
        assert.are.same({ ev.activity_name, ev.source_event_id, ev.result }, { d.name, d.activity_id, d.result })
      elseif e.type == "ActivityFailed" then
        assert.are.same({ ev.activity_name, ev.source_event_id, ev.details }, { d.name, d.activity_id, d.details })
        assert.are.equal(ev.details.Application.message, d.error)
      elseif e.type == "TimerFired" then
        assert.are.same({ ev.source_event_id, ev.fire_at_ms }, { d.timer_id, d.fire_at_ms })
      elseif e.type == "EventReceived" then
        assert.are.same({ ev.name, ev.data }, { d.name, d.data })
        assert.are.equal(ev.type == "ExternalEventPersistent", d.persistent)
      end
    end
    local bare = collect(dx, { payloads = false, event_types = { "Completed" } })
    for _, g in ipairs(bare) do assert.is_nil(g.details.output) end
  end)

  it("applies the filter (on the instance as it is) and the event types", function()
    local failed = {}
    for _, r in ipairs(S.rows("SELECT i.instance_id AS i FROM instances i JOIN executions e ON e.instance_id ="
        .. " i.instance_id AND e.execution_id = i.current_execution_id WHERE e.status = 'Failed'")) do
      failed[r.i] = true
    end
    local want = {}
    for _, e in ipairs(oracle(S)) do
      if failed[e.instance] and (e.type == "Started" or e.type == "ActivityFailed") then want[#want + 1] = e end
    end
    assert.is_true(#want > 5)
    local got = collect(dx, { filter = { status = "Failed" }, event_types = { "Started", "ActivityFailed" } })
    assert.are.same(keys_types(want, true), keys_types(got))
    local q = collect(dx, { filter = "status = 'Failed'", event_types = { "Started", "ActivityFailed" } })
    assert.are.same(keys_types(want, true), keys_types(q))
    -- a predicate on the summary
    local seen = {}
    local p = collect(dx, { event_types = "Completed", predicate = function(s)
      seen[s.instance_id] = true
      return s.orchestration_name == "Sequence"
    end })
    assert.is_true(next(seen) ~= nil)
    for _, g in ipairs(p) do assert.are.equal("Sequence", g.orchestration_name) end
  end)

  it("resumes right after any item from its cursor, in another handle", function()
    local all = collect(dx, {})
    local other = assert(durox.open(S.url, { readonly = true }))
    for _, k in ipairs { 1, 17, #all - 1, #all } do
      local tail = collect(other, { cursor = all[k].cursor })
      assert.are.same(keys_types({ table.unpack(all, k + 1) }), keys_types(tail))
    end
    local _, final = collect(dx, {})
    assert.are.same({}, collect(other, { cursor = final }))
    -- bound to the filter
    local ok, err, code = other:stream_instance_events { cursor = all[3].cursor, event_types = { "Completed" } }
    assert.is_nil(ok)
    assert.are.equal("INVALID", code)
    assert.are.equal("cursor was issued for a different filter or set of event types; start again without it", err)
    ok, err, code = other:stream_instance_events { cursor = assert(dx:read_changes { limit = 1 }).cursor }
    assert.is_nil(ok)
    assert.are.equal("cursor is a change-feed cursor, not a event-stream cursor", err)
    other:close()
  end)

  -- Whether any connection of ours holds a read transaction (or a snapshot) on the store now,
  -- seen from another process: SQLite's PRAGMA wal_checkpoint(TRUNCATE) reports busy (its first
  -- column 1) while any reader holds a snapshot; PostgreSQL shows our sessions
  -- (application_name duroxlua) idle with no snapshot (backend_xmin) and no transaction.
  local function readers()
    if kind == "sqlite" then
      assert(L.run(("sqlite3 %s 'CREATE TABLE IF NOT EXISTS durox_test_wal(x); INSERT INTO durox_test_wal VALUES (1)'")
        :format(L.q(S.path))))
      local out = L.run(("sqlite3 %s 'PRAGMA wal_checkpoint(TRUNCATE)'"):format(L.q(S.path)))
      return assert(tonumber(out:match("^(%d+)|")), out)
    end
    return #S.rows(nil, ("SELECT pid FROM pg_stat_activity WHERE datname = '%s' AND application_name = 'duroxlua'"
      .. " AND (state <> 'idle' OR backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)"):format(S.db))
  end

  it("holds no read transaction while the consumer keeps an item (the store is the buffer)", function()
    if kind == "sqlite" then
      -- the check can fail: a reader holding a snapshot makes the checkpoint busy
      local said = dir .. "/reader.out"
      local holder = assert(io.popen("sqlite3 " .. L.q(S.path) .. " >" .. L.q(said), "w"))
      holder:write("BEGIN;\nSELECT count(*) FROM history;\n")
      holder:flush()
      L.wait_until(function() return (L.read(said) or ""):match("%d") end, 30000, "the sqlite3 reader", 20)
      assert.are.equal(1, readers())
      holder:close()
    end
    assert.are.equal(0, readers())
    local follower = assert(durox.open(S.url, { readonly = true }))
    -- mid-batch and between batches of a stream that ends at the present
    local s = assert(follower:stream_instance_events { batch_size = 7 })
    for i = 1, 20 do
      assert(s:next())
      if i == 3 or i == 7 or i == 15 then assert.are.equal(0, readers(), "after item " .. i) end
    end
    s:close()
    -- a following stream that has caught up, between two polls
    s = assert(follower:stream_instance_events { from = "start", follow = true, no_wait = true, batch_size = 50 })
    while s:next() do end
    assert.are.equal(0, readers())
    s:close()
    -- a watch between its items, and the raw feed between two reads
    local ids = {}
    for _, r in ipairs(S.rows("SELECT instance_id AS i FROM instances ORDER BY instance_id LIMIT 5")) do ids[#ids + 1] = r.i end
    local w = assert(follower:watch_instances { instance_ids = ids, timeout_ms = 100 })
    assert(w:next())
    assert.are.equal(0, readers())
    w:close()
    local r = assert(follower:read_changes { from = "start", limit = 5 })
    assert.are.equal(0, readers())
    assert(follower:read_changes { cursor = r.cursor, limit = 5 })
    assert.are.equal(0, readers())
    follower:close()
  end)

  it("is DENIED when streaming is disabled, and raises on misuse", function()
    local off = assert(durox.open(S.url, { readonly = true, config = { enable_streaming = false } }))
    local ok, err, code = off:stream_instance_events {}
    assert.is_nil(ok)
    assert.are.equal("DENIED", code)
    assert.are.equal("streaming is disabled by the configuration (enable_streaming = false)", err)
    -- the other streams and the raw feed too
    for _, call in ipairs { function() return off:watch_instances { instance_ids = { "x" } } end,
      function() return off:stream_runtime_metrics { count = 1 } end,
      function() return off:read_changes { from = "now" } end } do
      ok, err, code = call()
      assert.is_nil(ok)
      assert.are.equal("DENIED", code)
      assert.are.equal("streaming is disabled by the configuration (enable_streaming = false)", err)
    end
    off:close()
    assert.has_error(function() dx:stream_instance_events { event_types = { "Finished" } } end)
    assert.has_error(function() dx:stream_instance_events { follow = "yes" } end, "stream option field 'follow' expects a boolean, got 'yes'")
    assert.has_error(function() dx:stream_instance_events { bogus = 1 } end)
  end)
end)

describe("on " .. kind .. ", event streams following the live runtime", function()
  local dir, S, rt, dx

  setup(function()
    dir = L.tmpdir()
    S = L.store(kind, dir, "live")
    rt = L.start_runtime(S.target, dir .. "/live")
    dx = assert(durox.open(S.url))
  end)

  teardown(function()
    if dx then dx:close() end
    L.stop_runtime(rt)
    if S then S.drop() end
    L.cleanup(dir)
  end)

  it("sees every event once and in per-execution order while the runtime works", function()
    local follower = assert(durox.open(S.url, { readonly = true }))
    local s = assert(follower:stream_instance_events { from = "now", follow = true, poll_interval_ms = 20 })
    local ids = {}
    for i = 1, 60 do
      ids[i] = ("s-%03d"):format(i)
      local name, input = "Sequence", ('{"value":%d}'):format(i)
      if i % 3 == 0 then name, input = "ContinueLoop", '{"n":0,"max":3}' end
      assert(dx:start_orchestration(ids[i], name, input))
    end
    local items, done = {}, 0
    while done < #ids do
      local it = assert(s:next())
      items[#items + 1] = it
      if it.event_type == "Completed" then done = done + 1 end
    end
    -- let the runtime settle, then take what remains
    durox.sleep(300)
    s:close()
    local rest = collect(follower, { cursor = items[#items].cursor })
    for _, it in ipairs(rest) do items[#items + 1] = it end
    if kind == "sqlite" then
      assert.are.same(keys_types(oracle(S), true), keys_types(items))
    else
      assert.are.same(sorted(keys_types(oracle(S), true)), sorted(keys_types(items)))
    end
    local last = {}
    for _, it in ipairs(items) do
      local ex = it.instance_id .. "/" .. it.execution_id
      assert.is_true((last[ex] or 0) < it.event_id, "out of order: " .. it.key)
      last[ex] = it.event_id
    end
    follower:close()
  end)

  it("resumes its cursor after the runtime restarts, in a new handle: nothing missed, nothing twice", function()
    local s = assert(dx:stream_instance_events { from = "now", follow = true, no_wait = true })
    assert(dx:start_orchestration("rr-1", "Sequence", '{"value":1}'))
    assert(dx:wait_for_orchestration("rr-1", "120s"))
    local done = S.rows("SELECT execution_id AS x, event_id AS e FROM history WHERE instance_id = 'rr-1' AND"
      .. " event_type = 'OrchestrationCompleted'", "SELECT execution_id AS x, event_id AS e FROM history WHERE"
      .. " instance_id = 'rr-1' AND event_data::json->>'type' = 'OrchestrationCompleted'")[1]
    local last = ("rr-1/%d/%d"):format(done.x, done.e)
    local keys, got_last = {}, false
    L.wait_until(function()
      local it = s:next()
      while it do
        if it.kind == "event" then
          keys[#keys + 1] = it.key
          got_last = got_last or it.key == last
        end
        it = s:next()
      end
      return got_last
    end, 120000, "rr-1's events")
    local cursor = s:cursor()
    s:close()
    dx:close()
    L.stop_runtime(rt)
    rt = L.start_runtime(S.target, dir .. "/live2")
    dx = assert(durox.open(S.url))
    assert(dx:start_orchestration("rr-2", "Sequence", '{"value":2}'))
    assert(dx:wait_for_orchestration("rr-2", "120s"))
    local other = assert(durox.open(S.url, { readonly = true }))
    local tail = collect(other, { cursor = cursor })
    other:close()
    local seen = {}
    for _, k in ipairs(keys) do seen[k] = true end
    local want = {}
    for _, e in ipairs(oracle(S, seen)) do
      if e.instance:match("^rr%-") then want[#want + 1] = e.key end
    end
    local got = {}
    for _, it in ipairs(tail) do
      if it.kind == "event" then
        assert.is_nil(seen[it.key], "twice: " .. it.key)
        if it.instance_id:match("^rr%-") then got[#got + 1] = it.key end
      end
    end
    assert.are.same(sorted(want), sorted(got))
    assert.is_true(#got > 0)
  end)

  it("yields a reset when Duroxide's client purges under the cursor, then goes on", function()
    assert(dx:start_orchestration("purge-me", "Echo", '"x"'))
    assert(dx:wait_for_orchestration("purge-me", "30s"))
    -- the cursor will stand after a later instance's rows, so purge-me lies behind it
    assert(dx:start_orchestration("keep-me", "Echo", '"k"'))
    assert(dx:wait_for_orchestration("keep-me", "30s"))
    local s = assert(dx:stream_instance_events { from = "now", follow = true, poll_interval_ms = 20,
      verify_ms = 1, timeout_ms = 20000 })
    assert(L.client(S.target, "delete", "purge-me"))
    local it = assert(s:next())
    assert.are.equal("reset", it.kind)
    assert.are.equal("deleted", it.reset)
    assert.matches("were deleted", it.reason)
    assert(dx:start_orchestration("after-purge", "Echo", '"y"'))
    it = assert(s:next())
    assert.are.same({ "event", "Started", "after-purge" }, { it.kind, it.event_type, it.instance_id })
    s:close()
    assert(dx:wait_for_orchestration("after-purge", "30s"))
  end)

  it("times out and emits heartbeats while nothing happens", function()
    local s = assert(dx:stream_instance_events { from = "now", follow = true, poll_interval_ms = 20,
      heartbeat_ms = 100, timeout_ms = 450 })
    local t0, beats = durox.now(), 0
    while true do
      local it = s:next()
      if not it then break end
      assert.are.equal("heartbeat", it.kind)
      assert.is_string(it.cursor)
      beats = beats + 1
    end
    -- only what a loaded machine cannot change: the stream ends, never before its timeout, with at
    -- least one heartbeat and never more than one per heartbeat_ms (no upper bound on the time)
    local took = durox.now() - t0
    assert.is_true(took >= 440, "took " .. took)
    assert.is_true(beats >= 1 and beats <= took // 100 + 1, ("%d beats in %d ms"):format(beats, took))
    s:close()
  end)
end)
end
