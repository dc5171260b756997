-- shapes_spec.lua - every history shape the real runtime writes, and every figure duroxlua derives
-- from them, checked against oracles that do not use duroxlua: raw SQL over the stores (the
-- sqlite3 tool), a replay of the history rows written here from the definitions in
-- docs/lua-api.md and docs/metrics.md, Duroxide's own answers (oracle.js) and the generator's
-- manifest (asserted with Duroxide's management API when the stores were made).
--
-- Stores: the scenario store and the shapes store (tests/harness/scenarios.js --set shapes:
-- races won by a timer or an event, cancelled activities / sub-orchestrations / queue waits, an
-- approval waiting on an event and a timer at once, system calls, continue-as-new carrying queue
-- messages, retries, sessions, KeyValuesCleared, an unregistered start, an activity poisoned by
-- the runtime and one at the poison limit), each on SQLite (read with the sqlite3 tool and
-- SQLite's JSON functions) and on PostgreSQL (the test server's durox_scenarios and durox_shapes
-- databases, read with psql and PostgreSQL's JSON operators).
local durox = require "durox"
local H = require "helpers"

local shapes_db = os.getenv("DUROX_SHAPES_DB")
local shapes_oracle = os.getenv("DUROX_SHAPES_ORACLE")
local harness = os.getenv("DUROX_HARNESS")
-- Without its fixtures this spec fails (it must never pass by checking nothing).
assert(H.db and shapes_db and shapes_oracle and harness,
  "shapes_spec needs DUROX_SCENARIO_DB, DUROX_SHAPES_DB, DUROX_SHAPES_ORACLE and DUROX_HARNESS (run it through ctest)")

local pg_shapes_manifest = os.getenv("DUROX_PG_SHAPES_MANIFEST")
local pg_shapes_oracle = os.getenv("DUROX_PG_SHAPES_ORACLE")
assert(not H.pg_skip and pg_shapes_manifest and pg_shapes_oracle,
  "shapes_spec needs the PostgreSQL test server and its stores (DUROX_PG_*; run it through ctest)")

local function json_file(path) return assert(durox.decode_json(H.read_file(path))) end

-- A store: name ("scenarios" | "shapes"), provider ("sqlite" | "postgres"), open(opts),
-- manifest(), oracle(), rows(sqlite_sql [, pg_sql]) (raw reads in the provider's own dialect;
-- pg_sql defaults to the same text; JSON nulls as nil) and, on SQLite, db (the file).
local function sqlite_store(name, db, oracle_path)
  return { name = name, provider = "sqlite", db = db, label = name .. " store (SQLite)",
    open = function(opts) return assert(durox.open("sqlite:" .. db, opts)) end,
    manifest = function() return json_file(db .. ".manifest.json") end,
    oracle = function() return json_file(oracle_path) end,
    rows = function(q) return H.rows(q, db) end }
end
local function pg_store(name, pgdb, manifest_path, oracle_path)
  local url = H.pg_url(pgdb, "schema=dx")
  return { name = name, provider = "postgres", pgdb = pgdb, label = name .. " store (PostgreSQL)",
    open = function(opts) return assert(durox.open(url, opts)) end,
    manifest = function() return json_file(manifest_path) end,
    oracle = function() return json_file(oracle_path) end,
    rows = function(q, pgq) return H.nil_nulls(H.psql(pgq or q, pgdb)) end }
end
local STORES = {
  sqlite_store("scenarios", H.db, H.oracle_path),
  sqlite_store("shapes", shapes_db, shapes_oracle),
  pg_store("scenarios", "durox_scenarios", H.pg_manifest_path, H.pg_oracle_path),
  pg_store("shapes", "durox_shapes", pg_shapes_manifest, pg_shapes_oracle),
}
local SHAPES = { STORES[2], STORES[4] }

-- PostgreSQL: a timestamptz column as integer ms (as the provider reads it)
local function pg_ms(col) return "floor(extract(epoch from " .. col .. ") * 1000)::int8" end

local SYSCALL = "^__duroxide_syscall:"

-- ---- the independent replay -------------------------------------------------------------------

-- Every history row of the store, decoded by the database's own JSON functions: by instance,
-- then execution, in event order.
local function history_of(S)
  local rows = S.rows([[
    SELECT instance_id AS id, execution_id AS ex, event_id AS ev, event_type AS type,
      json_extract(event_data, '$.source_event_id') AS src, json_extract(event_data, '$.timestamp_ms') AS ts,
      json_extract(event_data, '$.name') AS name, json_extract(event_data, '$.instance') AS child,
      json_extract(event_data, '$.fire_at_ms') AS fire_at, json_extract(event_data, '$.tag') AS tag,
      json_extract(event_data, '$.session_id') AS session
    FROM history ORDER BY instance_id, execution_id, event_id]], [[
    SELECT instance_id AS id, execution_id AS ex, event_id AS ev, j->>'type' AS type,
      (j->>'source_event_id')::int8 AS src, (j->>'timestamp_ms')::int8 AS ts, j->>'name' AS name,
      j->>'instance' AS child, (j->>'fire_at_ms')::int8 AS fire_at, j->>'tag' AS tag, j->>'session_id' AS session
    FROM (SELECT *, event_data::jsonb AS j FROM history) h]])
  local by = {}
  for _, r in ipairs(rows) do
    by[r.id] = by[r.id] or {}
    by[r.id][r.ex] = by[r.id][r.ex] or {}
    table.insert(by[r.id][r.ex], r)
  end
  for _, execs in pairs(by) do
    for _, list in pairs(execs) do table.sort(list, function(a, b) return a.ev < b.ev end) end
  end
  return by
end

-- The instances of the store with their current execution and its status (raw SQL).
local function instances_of(S)
  local out = {}
  for _, r in ipairs(S.rows([[
    SELECT i.instance_id AS id, i.orchestration_name AS name, i.current_execution_id AS ex,
      e.status AS status FROM instances i
    LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id]])) do
    out[r.id] = r
  end
  return out
end

-- What one execution leaves open, replayed from its rows per docs/lua-api.md (pending work of
-- get_instance_details): activities (system calls excluded) not answered by Completed / Failed /
-- CancelRequested, timers not fired, sub-orchestrations not answered or cancelled, positional
-- event subscriptions not cancelled and not matched by a delivered event (an event is delivered
-- only when an unmatched subscription of its name exists when it is recorded), queue
-- subscriptions matched FIFO by the queue's messages.
local function replay_pending(id, rows)
  local sched, answered = {}, {}
  local subs = {} -- positional, by name: list of {ev, ts, cancelled}
  local qsubs = {}
  local delivered, qmsgs = {}, {}
  local cancelled_sub = {}
  for _, r in ipairs(rows) do
    local t = r.type
    if t == "ActivityScheduled" or t == "TimerCreated" or t == "SubOrchestrationScheduled" then
      sched[r.ev] = r
    elseif t == "ActivityCompleted" or t == "ActivityFailed" or t == "ActivityCancelRequested" or t == "TimerFired"
      or t == "SubOrchestrationCompleted" or t == "SubOrchestrationFailed" or t == "SubOrchestrationCancelRequested" then
      answered[r.src] = true
    elseif t == "ExternalSubscribed" then
      subs[r.name] = subs[r.name] or {}
      table.insert(subs[r.name], { ev = r.ev, ts = r.ts })
    elseif t == "ExternalSubscribedPersistent" then
      qsubs[r.name] = qsubs[r.name] or {}
      table.insert(qsubs[r.name], { ev = r.ev, ts = r.ts })
    elseif t == "ExternalSubscribedCancelled" or t == "ExternalSubscribedPersistentCancelled" then
      cancelled_sub[r.src] = true
    elseif t == "ExternalEvent" then
      local active = 0
      for _, s in ipairs(subs[r.name] or {}) do
        if not cancelled_sub[s.ev] then active = active + 1 end
      end
      if active > (delivered[r.name] or 0) then delivered[r.name] = (delivered[r.name] or 0) + 1 end
    elseif t == "ExternalEventPersistent" then
      qmsgs[r.name] = (qmsgs[r.name] or 0) + 1
    end
  end
  local p = { activities = {}, timers = {}, children = {}, events = {}, buffered = 0 }
  local ended = false
  for _, r in ipairs(rows) do
    if r.type == "OrchestrationCompleted" or r.type == "OrchestrationFailed" or r.type == "OrchestrationContinuedAsNew" then
      ended = true
    end
  end
  if ended then return p end
  local ids = {}
  for ev in pairs(sched) do ids[#ids + 1] = ev end
  table.sort(ids)
  for _, ev in ipairs(ids) do
    local r = sched[ev]
    if not answered[ev] then
      if r.type == "ActivityScheduled" and not r.name:match(SYSCALL) then
        p.activities[#p.activities + 1] = ev .. ":" .. r.name .. ":" .. tostring(r.tag) .. ":" .. tostring(r.session)
      elseif r.type == "TimerCreated" then
        -- delay = fire time - scheduling time (0 when it was already due)
        local delay = r.fire_at > r.ts and r.fire_at - r.ts or 0
        p.timers[#p.timers + 1] = ev .. ":" .. r.fire_at .. ":" .. delay
      elseif r.type == "SubOrchestrationScheduled" then
        local child = r.child == "sub::" .. ev and id .. "::" .. r.child or r.child
        p.children[#p.children + 1] = ev .. ":" .. r.name .. ":" .. child
      end
    end
  end
  for name, list in pairs(subs) do
    local k = 0
    for _, s in ipairs(list) do
      if not cancelled_sub[s.ev] then
        k = k + 1
        if k > (delivered[name] or 0) then p.events[#p.events + 1] = s.ev .. ":" .. name .. ":event:" .. s.ts end
      end
    end
  end
  for name, list in pairs(qsubs) do
    local k = 0
    for _, s in ipairs(list) do
      if not cancelled_sub[s.ev] then
        k = k + 1
        if k > (qmsgs[name] or 0) then p.events[#p.events + 1] = s.ev .. ":" .. name .. ":queue:" .. s.ts end
      end
    end
  end
  table.sort(p.events)
  -- queue messages no subscription has taken yet
  for name, n in pairs(qmsgs) do
    local subs_n = 0
    for _, sub in ipairs(qsubs[name] or {}) do
      if not cancelled_sub[sub.ev] then subs_n = subs_n + 1 end
    end
    if n > subs_n then p.buffered = p.buffered + (n - subs_n) end
  end
  return p
end

-- InstanceStatistics replayed over every execution (docs/lua-api.md).
local function replay_stats(execs)
  local s = { total_activities_scheduled = 0, total_activities_completed = 0, total_activities_failed = 0,
    total_timers_scheduled = 0, total_timers_fired = 0, total_events_subscribed = 0, total_events_received = 0,
    total_sub_orchestrations = 0, total_history_events = 0, total_execution_time_ms = 0 }
  for _, rows in pairs(execs) do
    local kind, start, stop, last = {}, nil, nil, nil
    for _, r in ipairs(rows) do
      local t = r.type
      s.total_history_events = s.total_history_events + 1
      last = r.ts
      if t == "OrchestrationStarted" then start = r.ts end
      if t == "OrchestrationCompleted" or t == "OrchestrationFailed" or t == "OrchestrationContinuedAsNew" then stop = r.ts end
      if t == "ActivityScheduled" then
        local sys = r.name:match(SYSCALL) ~= nil
        kind[r.ev] = sys and "syscall" or "activity"
        if not sys then s.total_activities_scheduled = s.total_activities_scheduled + 1 end
      elseif (t == "ActivityCompleted" or t == "ActivityFailed") and kind[r.src] == "activity" then
        local k = t == "ActivityCompleted" and "total_activities_completed" or "total_activities_failed"
        s[k] = s[k] + 1
      elseif t == "TimerCreated" then
        s.total_timers_scheduled = s.total_timers_scheduled + 1
      elseif t == "TimerFired" then
        s.total_timers_fired = s.total_timers_fired + 1
      elseif t == "ExternalSubscribed" or t == "ExternalSubscribedPersistent" then
        s.total_events_subscribed = s.total_events_subscribed + 1
      elseif t == "ExternalEvent" or t == "ExternalEventPersistent" then
        s.total_events_received = s.total_events_received + 1
      elseif t == "SubOrchestrationScheduled" then
        s.total_sub_orchestrations = s.total_sub_orchestrations + 1
      end
    end
    local stop_ts = stop or last
    if start and stop_ts and stop_ts > start then s.total_execution_time_ms = s.total_execution_time_ms + (stop_ts - start) end
  end
  return s
end

local function ours_pending(id, ce)
  local p = { activities = {}, timers = {}, children = {}, events = {}, buffered = ce.buffered_queue_messages }
  for _, a in ipairs(ce.pending_activities) do
    p.activities[#p.activities + 1] = a.correlation_id .. ":" .. a.name .. ":" .. tostring(a.tag) .. ":" .. tostring(a.session_id)
  end
  for _, t in ipairs(ce.pending_timers) do
    p.timers[#p.timers + 1] = t.correlation_id .. ":" .. t.fire_at .. ":" .. t.delay_ms
  end
  for _, c in ipairs(ce.pending_sub_orchestrations) do
    p.children[#p.children + 1] = c.correlation_id .. ":" .. c.name .. ":" .. c.instance_id
  end
  for _, e in ipairs(ce.pending_events) do
    p.events[#p.events + 1] = e.correlation_id .. ":" .. e.name .. ":" .. e.kind .. ":" .. e.subscribed_at
  end
  table.sort(p.events)
  return p
end

-- ---- the event types the runtime can write ----------------------------------------------------

-- The event kinds compiled into the runtime (the native module of duroxide-linux-x64-gnu): serde's
-- "struct variant EventKind::<Name>" strings, plus the one unit variant, KeyValuesCleared. SQLite's
-- event_type keeps legacy names for the queue variants.
local LEGACY = {
  QueueSubscribed = "ExternalSubscribedPersistent",
  QueueEventDelivered = "ExternalEventPersistent",
  QueueSubscriptionCancelled = "ExternalSubscribedPersistentCancelled",
}
local function runtime_event_types()
  local bin = H.read_file(harness .. "/node_modules/duroxide-linux-x64-gnu/duroxide.linux-x64-gnu.node")
  local set = {}
  for name in bin:gmatch("struct variant EventKind::(%w+)") do
    -- the strings run together: the next one starts with a lowercase word ("struct ...", "event ...")
    name = name:gsub("struct$", ""):gsub("event$", "")
    set[LEGACY[name] or name] = true
  end
  assert(bin:find("KeyValuesCleared", 1, true), "the runtime no longer knows KeyValuesCleared")
  set.KeyValuesCleared = true
  return set
end

describe("the oracles themselves", function()
  it("raise on a sqlite3 error instead of returning no rows", function()
    assert.has_error(function() H.sql("SELECT no_such_column FROM instances", shapes_db) end)
    assert.has_error(function() H.rows("SELECT 1 FROM no_such_table", shapes_db) end)
    assert.are.same({}, H.rows("SELECT 1 AS x FROM instances WHERE 0", shapes_db))
    assert.is_true(#H.rows("SELECT instance_id FROM instances", shapes_db) > 10)
  end)
end)

describe("fixture coverage", function()
  for _, provider in ipairs { "sqlite", "postgres" } do
    it("holds every event type the runtime can write (and no other), on " .. provider, function()
      local runtime = runtime_event_types()
      assert.is_true(#H.keys(runtime) >= 26, "expected at least 26 event kinds in the runtime, found " .. #H.keys(runtime))
      local present = {}
      for _, S in ipairs(STORES) do
        if S.provider == provider then
          -- SQLite's event_type column holds the type; PostgreSQL's says 'Event' (the JSON has it)
          for _, r in ipairs(S.rows("SELECT DISTINCT event_type AS t FROM history",
            "SELECT DISTINCT event_data::jsonb->>'type' AS t FROM history")) do
            assert.is_true(runtime[r.t] ~= nil, S.label .. " holds event type " .. r.t .. " the runtime does not know")
            present[r.t] = true
          end
        end
      end
      local missing = {}
      for t in pairs(runtime) do
        if not present[t] then missing[#missing + 1] = t end
      end
      table.sort(missing)
      assert.are.same({}, missing, "event types the runtime can write but no " .. provider .. " fixture holds")
    end)
  end

  it("holds the shapes the issue names, made by the runtime", function()
    local db = shapes_db
    local function one(q) return H.rows(q, db)[1] end
    -- a race won by the timer (the event subscription cancelled) and one won by the event
    assert.are.equal("dropped_future", one([[SELECT json_extract(event_data,'$.reason') AS r FROM history
      WHERE instance_id='race-timer-1' AND event_type='ExternalSubscribedCancelled']]).r)
    assert.are.equal(1, one("SELECT COUNT(*) AS n FROM history WHERE instance_id='race-event-1' AND event_type='ExternalEvent'").n)
    -- cancelled activities: a race loser and the activity of a cancelled instance
    for _, id in ipairs { "race-activity-1", "races-then-wait-1", "cancel-activity-1" } do
      assert.are.equal(1, one("SELECT COUNT(*) AS n FROM history WHERE instance_id=" .. H.q(id)
        .. " AND event_type='ActivityCancelRequested'").n, id)
    end
    -- cancelled sub-orchestrations, the children failed as cancelled
    for _, id in ipairs { "race-child-1", "races-then-wait-1" } do
      assert.are.equal(1, one("SELECT COUNT(*) AS n FROM history WHERE instance_id=" .. H.q(id)
        .. " AND event_type='SubOrchestrationCancelRequested'").n, id)
    end
    -- system calls
    local sys = H.rows([[SELECT DISTINCT json_extract(event_data,'$.name') AS n FROM history
      WHERE event_type='ActivityScheduled' AND json_extract(event_data,'$.name') LIKE '\_\_duroxide\_syscall:%' ESCAPE '\'
      ORDER BY 1]], db)
    assert.are.same({ "__duroxide_syscall:get_kv_value", "__duroxide_syscall:new_guid", "__duroxide_syscall:utc_now_ms" },
      H.ids((function() local o = {} for i, r in ipairs(sys) do o[i] = { instance_id = r.n } end return o end)()))
    -- an approval waiting on an event and a timer at once
    local m = STORES[2].manifest()
    assert.are.equal("event:Approve,timer", m.instances["approval-wait-1"].waiting_on)
    -- continue-as-new with queue messages carried over
    local carried = one([[SELECT json_array_length(event_data,'$.carry_forward_events') AS n FROM history
      WHERE instance_id='carry-1' AND execution_id=2 AND event_id=1]]).n
    assert.are.equal(2, carried)
    -- queue messages buffered while the instance waits for an event
    assert.are.equal(3, one([[SELECT COUNT(*) AS n FROM history WHERE instance_id='queue-buffered-1'
      AND event_type='ExternalEventPersistent']]).n)
    assert.are.equal(2, assert(durox.open("sqlite:" .. db, { readonly = true }):get_instance_details("queue-buffered-1"))
      .current_execution.buffered_queue_messages)
    -- at and past the poison limit, by the runtime's own attempt counting
    assert.are.equal(10, one("SELECT attempt_count AS n FROM worker_queue WHERE instance_id='poison-at-1'").n)
    assert.are.equal("poison", m.instances["poison-past-1"].failure_kind)
    assert.is_not_nil(one([[SELECT 1 AS x FROM history WHERE instance_id='poison-past-1' AND event_type='ActivityFailed'
      AND json_extract(event_data,'$.details.Poison.attempt_count') = 11]]))
    -- detached starts, custom status, KV (the scenario store)
    local sm = STORES[1].manifest()
    assert.are.equal("Completed", sm.instances["detached-child-1"].status)
    assert.is_not_nil(H.rows("SELECT 1 FROM history WHERE event_type='OrchestrationChained'", H.db)[1])
    assert.are.equal('{"phase":"done"}', sm.instances["status-done-1"].custom_status)
    assert.are.same({ color = "blue", count = "3" }, sm.instances["kv-done-1"].kv)
  end)
end)

-- ---- instance details and statistics ------------------------------------------------------------

for _, S in ipairs(STORES) do
  describe("details on the " .. S.label, function()
    local dx = S.open { readonly = true }
    local hist = history_of(S)
    local insts = instances_of(S)
    local m = S.manifest()

    it("lists the pending work a replay of the raw history rows finds, for every instance", function()
      local n = 0
      for id, inst in pairs(insts) do
        local d = assert(dx:get_instance_details(id))
        local cur = hist[id][inst.ex]
        assert.are.same(replay_pending(id, cur), ours_pending(id, d.current_execution), id)
        n = n + 1
      end
      assert.are.equal(#H.keys(insts), n)
      assert.is_true(n > 0)
    end)

    it("agrees with Duroxide's view of what each running instance waits on", function()
      for id, e in pairs(m.instances) do
        if e.status == "Running" then
          local ce = assert(dx:get_instance_details(id)).current_execution
          local what = {}
          for _, a in ipairs(ce.pending_activities) do what[#what + 1] = { a.correlation_id, "activity:" .. a.name } end
          for _, t in ipairs(ce.pending_timers) do what[#what + 1] = { t.correlation_id, "timer" } end
          for _, c in ipairs(ce.pending_sub_orchestrations) do what[#what + 1] = { c.correlation_id, "child" } end
          for _, ev in ipairs(ce.pending_events) do
            what[#what + 1] = { ev.correlation_id, (ev.kind == "queue" and "queue:" or "event:") .. ev.name }
          end
          table.sort(what, function(a, b) return a[1] < b[1] end)
          local seen, list = {}, {}
          for _, w in ipairs(what) do
            if not seen[w[2]] then seen[w[2]], list[#list + 1] = true, w[2] end
          end
          assert.are.equal(e.waiting_on, table.concat(list, ","), id)
        end
      end
    end)

    it("counts statistics as a replay of every execution does", function()
      for id in pairs(insts) do
        local st = assert(dx:get_instance_statistics(id))
        local want = replay_stats(hist[id])
        for k, v in pairs(want) do assert.are.equal(v, st[k], id .. " " .. k) end
      end
    end)

    it("counts the current execution's answered activities, system calls excluded", function()
      for id, inst in pairs(insts) do
        local ce = assert(dx:get_instance_details(id)).current_execution
        local kind, done, failed = {}, 0, 0
        for _, r in ipairs(hist[id][inst.ex]) do
          if r.type == "ActivityScheduled" then kind[r.ev] = not r.name:match(SYSCALL) end
          if r.type == "ActivityCompleted" and kind[r.src] then done = done + 1 end
          if r.type == "ActivityFailed" and kind[r.src] then failed = failed + 1 end
        end
        assert.are.equal(done, ce.completed_activities, id)
        assert.are.equal(failed, ce.failed_activities, id)
      end
    end)

    it("matches Duroxide's own status and execution count for every instance", function()
      local oracle = S.oracle()
      for id, o in pairs(oracle.instances) do
        local s = assert(dx:get_orchestration_status(id))
        assert.are.equal(o.info.status, s.status, id)
        assert.are.equal(#o.executions, assert(dx:get_instance_details(id)).summary.execution_count, id)
      end
    end)
  end)
end

-- ---- updated_at ---------------------------------------------------------------------------------

-- updated_at per docs/lua-api.md, in raw SQL: the latest of instances.updated_at, the current
-- execution's started_at and completed_at and the timestamp of its LAST history event.
local function updated_oracle(S)
  local out = {}
  for _, r in ipairs(S.rows([[
    SELECT i.instance_id AS id, MAX(
      COALESCE(CAST(strftime('%s', i.updated_at) AS INTEGER) * 1000, 0),
      COALESCE(CAST(strftime('%s', e.started_at) AS INTEGER) * 1000, 0),
      COALESCE(e.completed_at, 0),
      COALESCE((SELECT json_extract(h.event_data, '$.timestamp_ms') FROM history h WHERE h.instance_id = i.instance_id
        AND h.execution_id = i.current_execution_id ORDER BY h.event_id DESC LIMIT 1), 0)) AS u
    FROM instances i LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id]], [[
    SELECT i.instance_id AS id, GREATEST(
      COALESCE(]] .. pg_ms("i.updated_at") .. [[, 0), COALESCE(]] .. pg_ms("e.started_at") .. [[, 0),
      COALESCE(]] .. pg_ms("e.completed_at") .. [[, 0),
      COALESCE((SELECT (h.event_data::jsonb->>'timestamp_ms')::int8 FROM history h WHERE h.instance_id = i.instance_id
        AND h.execution_id = i.current_execution_id ORDER BY h.event_id DESC LIMIT 1), 0)) AS u
    FROM instances i LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id]])) do
    out[r.id] = r.u
  end
  return out
end

-- Both read paths: the visibility index (the default: listings read it once built, with
-- updated_at computed by its own build) and the store's own SQL (index = false).
local READ_PATHS = { { label = "", opts = { readonly = true } },
                     { label = " without the visibility index", opts = { readonly = true, index = false } } }
for _, S in ipairs(STORES) do
 for _, path in ipairs(READ_PATHS) do
  describe("updated_at on the " .. S.label .. path.label, function()
    local dx = S.open(path.opts)
    local want = updated_oracle(S)
    local all = assert(dx:list_instances())

    it("is the time of the last thing that happened to each instance", function()
      assert.are.equal(#H.keys(want), #all)
      for _, s in ipairs(all) do assert.are.equal(want[s.instance_id], s.updated_at, s.instance_id) end
    end)

    it("filters and sorts by it, equal values at the boundaries", function()
      -- a value some instance has exactly
      local ids = H.keys(want)
      local pivot = want[ids[math.floor(#ids / 2) + 1]]
      local function oracle_ids(f)
        local r = {}
        for id, u in pairs(want) do
          if f(u) then r[#r + 1] = id end
        end
        table.sort(r)
        return r
      end
      assert.are.same(oracle_ids(function(u) return u > pivot end), H.list_ids(dx, { updated_after = pivot }))
      assert.are.same(oracle_ids(function(u) return u < pivot end), H.list_ids(dx, { updated_before = pivot }))
      for _, case in ipairs {
        { ">", function(u) return u > pivot end }, { ">=", function(u) return u >= pivot end },
        { "<", function(u) return u < pivot end }, { "<=", function(u) return u <= pivot end },
        { "=", function(u) return u == pivot end }, { "!=", function(u) return u ~= pivot end },
      } do
        local got = H.sorted(H.ids(assert(dx:list_instances("updated_at " .. case[1] .. " " .. pivot))))
        assert.are.same(oracle_ids(case[2]), got, "updated_at " .. case[1] .. " " .. pivot)
      end
      local prev, n = nil, 0
      for s in dx:instances(nil, { order_by = "UpdatedAt", direction = "asc" }) do
        n = n + 1
        assert.are.equal(want[s.instance_id], s.updated_at)
        if prev then assert.is_true(prev <= s.updated_at) end
        prev = s.updated_at
      end
      assert.are.equal(#ids, n)
    end)
  end)
 end
end

-- ---- stuck instances ----------------------------------------------------------------------------

-- Defaults of docs/metrics.md.
local STALL, OVERDUE, MAX_ATTEMPTS, NEAR = 60000, 60000, 10, 5

-- find_stuck_instances' evidence per docs/metrics.md, from the queue rows, the locks and the
-- replayed history, as of now: a list of "instance/reason" strings. The queue thresholds are
-- inclusive (work untouched for stall_threshold_ms or more), event waits exclusive (open longer
-- than the threshold), as the implementation has them.
local function stuck_oracle(S, now, wait_ms)
  local insts = instances_of(S)
  local hist = history_of(S)
  local live = function(id) -- running, or not created yet
    local i = insts[id]
    return i == nil or i.status == "Running" or i.status == "ContinuedAsNew"
  end
  local starts = {}
  for _, r in ipairs(S.rows([[SELECT instance_id AS id FROM orchestrator_queue
    WHERE work_item LIKE '{"StartOrchestration"%']], [[SELECT instance_id AS id FROM orchestrator_queue
    WHERE work_item::jsonb ? 'StartOrchestration']])) do starts[r.id] = true end
  local locked = {}
  for _, r in ipairs(S.rows("SELECT instance_id AS id, locked_until AS lu FROM instance_locks")) do
    locked[r.id] = r.lu
  end
  local out = {}
  local function add(id, reason) out[#out + 1] = id .. "/" .. reason end
  for _, r in ipairs(S.rows([[SELECT instance_id AS id, work_item LIKE '{"TimerFired"%' AS timer, visible_at AS vis,
    attempt_count AS n FROM orchestrator_queue]], [[SELECT instance_id AS id, (work_item::jsonb ? 'TimerFired')::int AS timer,
    ]] .. pg_ms("visible_at") .. [[ AS vis, attempt_count AS n FROM orchestrator_queue]])) do
    if live(r.id) then
      if insts[r.id] == nil and not starts[r.id] then add(r.id, "orphan_messages") end
      if r.n >= NEAR then add(r.id, "poison_risk") end
      local in_turn = locked[r.id] and locked[r.id] > now
      if r.timer == 1 and r.vis <= now - OVERDUE and not in_turn then add(r.id, "overdue_timer") end
      if r.timer == 0 and r.vis <= now - STALL and not in_turn then add(r.id, "stalled_messages") end
    end
  end
  for id, lu in pairs(locked) do
    if insts[id] and live(id) and lu <= now - STALL then add(id, "expired_lock") end
  end
  for _, r in ipairs(S.rows([[SELECT instance_id AS id, visible_at AS vis, lock_token AS tok, locked_until AS lu,
    attempt_count AS n FROM worker_queue]], [[SELECT instance_id AS id, ]] .. pg_ms("visible_at") .. [[ AS vis,
    lock_token AS tok, locked_until AS lu, attempt_count AS n FROM worker_queue]])) do
    if live(r.id) then
      if r.n >= NEAR then add(r.id, "poison_risk") end
      local expired = r.tok ~= nil and r.lu ~= nil and r.lu <= now
      if r.tok ~= nil and r.lu ~= nil and r.lu <= now - STALL then add(r.id, "expired_lock") end
      local avail = r.vis
      if expired and r.lu > avail then avail = r.lu end
      if (r.tok == nil or expired) and avail <= now - STALL then add(r.id, "unpicked_activity") end
    end
  end
  for id, inst in pairs(insts) do
    if inst.status == "Running" then
      local rows = hist[id][inst.ex]
      local last = rows[#rows].ts
      local p = replay_pending(id, rows)
      local wakes = false
      for _, t in ipairs(p.timers) do
        if tonumber(t:match("^%d+:(%d+)")) > now then wakes = true end
      end
      if last < now - wait_ms and not wakes then
        for _, e in ipairs(p.events) do
          if tonumber(e:match(":(%d+)$")) < now - wait_ms then
            add(id, "waiting_on_event")
            break
          end
        end
      end
    end
  end
  table.sort(out)
  -- one entry per instance and reason
  local uniq, seen = {}, {}
  for _, v in ipairs(out) do
    if not seen[v] then seen[v], uniq[#uniq + 1] = true, v end
  end
  return uniq
end

local function stuck_pairs(res)
  local out, seen = {}, {}
  for _, s in ipairs(res.instances) do
    for _, r in ipairs(s.reasons) do
      local k = s.instance_id .. "/" .. r.reason
      if not seen[k] then seen[k], out[#out + 1] = true, k end
    end
  end
  table.sort(out)
  return out
end

for _, S in ipairs(SHAPES) do
  describe("find_stuck_instances on the " .. S.label, function()
    local dx = S.open { readonly = true }
    local m = S.manifest()
    local hist = history_of(S)
    local fire_at -- approval-wait-1's timer
    for _, r in ipairs(hist["approval-wait-1"][1]) do
      if r.type == "TimerCreated" then fire_at = r.fire_at end
    end

    for _, case in ipairs {
      { "ten minutes after the store was made", m.created_at_ms + 600000, 60000 },
      { "after approval-wait-1's timer is overdue", fire_at + 2 * OVERDUE, 60000 },
      { "a day later, with the default wait", m.created_at_ms + 90000000, 86400000 },
    } do
      it("reports the evidence the queues and histories hold, " .. case[1], function()
        local res = assert(dx:find_stuck_instances { now = case[2], event_wait_threshold_ms = case[3] })
        assert.are.same(stuck_oracle(S, case[2], case[3]), stuck_pairs(res))
        assert.is_true(#res.instances > 0)
      end)
    end

    it("does not report an approval whose timeout timer is still to fire, and does once it is due", function()
      local function has(now, id, reason)
        local res = assert(dx:find_stuck_instances { now = now, event_wait_threshold_ms = 1000 })
        for _, s in ipairs(res.instances) do
          for _, r in ipairs(s.reasons) do
            if s.instance_id == id and r.reason == reason then return true end
          end
        end
        return false
      end
      assert.is_false(has(fire_at - 1000, "approval-wait-1", "waiting_on_event"))
      assert.is_true(has(fire_at + 1000, "approval-wait-1", "waiting_on_event"))
      assert.is_true(has(fire_at + 2 * OVERDUE, "approval-wait-1", "overdue_timer"))
      -- the queue thresholds are inclusive: a timer due exactly timer_overdue_ms ago is overdue
      -- (unlike event waits, below, which must be open longer than their threshold)
      assert.is_true(has(fire_at + OVERDUE, "approval-wait-1", "overdue_timer"))
      assert.is_false(has(fire_at + OVERDUE - 1, "approval-wait-1", "overdue_timer"))
    end)

    it("reports an event wait only once it is longer than the threshold", function()
      local rows = hist["races-then-wait-1"][1]
      local last = rows[#rows]
      assert.are.equal("ExternalSubscribed", last.type)
      local now = last.ts + 600000
      local function reported(wait)
        local res = assert(dx:find_stuck_instances { now = now, event_wait_threshold_ms = wait })
        for _, s in ipairs(res.instances) do
          if s.instance_id == "races-then-wait-1" then return true end
        end
        return false
      end
      assert.is_true(reported(599999))
      assert.is_false(reported(600000)) -- open exactly as long as the threshold: not longer
      assert.is_false(reported(600001))
    end)

    it("tells an item at the poison limit from one near it", function()
      local now = m.created_at_ms + 600000
      local row = S.rows("SELECT id, attempt_count AS n FROM worker_queue WHERE instance_id='poison-at-1'")[1]
      assert.are.equal(MAX_ATTEMPTS, row.n)
      local function poison_msg(opts)
        opts.now = now
        local res = assert(dx:find_stuck_instances(opts))
        for _, s in ipairs(res.instances) do
          for _, r in ipairs(s.reasons) do
            if s.instance_id == "poison-at-1" and r.reason == "poison_risk" then return r.message, r.attempt_count end
          end
        end
      end
      local msg, n = poison_msg {}
      assert.are.equal(MAX_ATTEMPTS, n)
      assert.are.equal("activity 'Hang' (worker item " .. row.id .. ") was fetched 10 times: its next delivery poisons it"
        .. " (max_attempts 10)", msg)
      msg = poison_msg { max_attempts = 11 }
      assert.are.equal("activity 'Hang' (worker item " .. row.id .. ") was fetched 10 times (poisoned after 11)", msg)
      assert.is_nil(poison_msg { near_poison_attempts = 11, max_attempts = 11 })
      assert.is_not_nil(poison_msg { near_poison_attempts = 10 })
    end)
  end)
end

for _, S in ipairs(SHAPES) do
  describe("attempt thresholds at exact values on the " .. S.label, function()
    local m = S.manifest()
    local now = m.created_at_ms + 600000
    -- the runtime's own retry counts: unregistered-1's start (backoff), poison-at-1's activity (10)
    local orch_n = S.rows("SELECT attempt_count AS n FROM orchestrator_queue WHERE instance_id='unregistered-1'")[1].n
    local work_n = S.rows("SELECT attempt_count AS n FROM worker_queue WHERE instance_id='poison-at-1'")[1].n

    local function open_with(k)
      return S.open { readonly = true, config = { max_attempts = math.max(k, 1), near_poison_attempts = math.max(k, 1) } }
    end
    local function sql_count(t, k)
      return S.rows("SELECT COUNT(*) AS n FROM " .. t .. " WHERE attempt_count >= " .. k)[1].n
    end

    for _, k in ipairs { orch_n, orch_n + 1, work_n, work_n + 1 } do
      if k >= 1 then
        it("counts near_poison and at_poison_limit with both thresholds at " .. k, function()
          local dx = open_with(k)
          local qm = assert(dx:get_queue_metrics { now = now, fresh = true })
          for _, q in ipairs { "orchestrator", "worker" } do
            assert.are.equal(sql_count(q .. "_queue", k), qm[q].near_poison, q .. " near_poison at " .. k)
            assert.are.equal(sql_count(q .. "_queue", k), qm[q].at_poison_limit, q .. " at_poison_limit at " .. k)
          end
          local res = assert(dx:find_stuck_instances { now = now, event_wait_threshold_ms = "1d" })
          local risk = {}
          for _, inst in ipairs(res.instances) do
            for _, r in ipairs(inst.reasons) do
              if r.reason == "poison_risk" then risk[inst.instance_id] = r.attempt_count end
            end
          end
          assert.are.equal(orch_n >= k and orch_n or nil, risk["unregistered-1"], "unregistered-1 at " .. k)
          assert.are.equal(work_n >= k and work_n or nil, risk["poison-at-1"], "poison-at-1 at " .. k)
          dx:close()
        end)
      end
    end
  end)
end

-- ---- metrics and analytics --------------------------------------------------------------------

-- SQL fragments in each store's dialect, over history rows (optionally aliased, "h."): the event
-- type, its timestamp_ms and the failure kind of an OrchestrationFailed event's details.
local function TYPE(S, h)
  h = h or ""
  return S.provider == "sqlite" and h .. "event_type" or "(" .. h .. "event_data::jsonb->>'type')"
end
local function TS(S, h)
  h = h or ""
  return S.provider == "sqlite" and "json_extract(" .. h .. "event_data, '$.timestamp_ms')"
    or "(" .. h .. "event_data::jsonb->>'timestamp_ms')::int8"
end
local function KIND(S, h)
  h = h or ""
  local function has(path) -- path: dotted
    if S.provider == "sqlite" then return "json_extract(" .. h .. "event_data, '$.details." .. path .. "') IS NOT NULL" end
    return "(" .. h .. "event_data::jsonb #> '{details," .. path:gsub("%.", ",") .. "}') IS NOT NULL"
  end
  local nondet = S.provider == "sqlite" and "json_extract(" .. h .. "event_data, '$.details.Configuration.kind') = 'Nondeterminism'"
    or "(" .. h .. "event_data::jsonb #>> '{details,Configuration,kind}') = 'Nondeterminism'"
  return "CASE WHEN " .. has("Application.kind.Cancelled") .. " THEN 'cancelled' WHEN " .. has("Application")
    .. " THEN 'application' WHEN " .. has("Poison") .. " THEN 'poison' WHEN " .. nondet .. " THEN 'nondeterminism' WHEN "
    .. has("Configuration") .. " THEN 'configuration' WHEN " .. has("Infrastructure") .. " THEN 'infrastructure' END"
end
local function CREATED_MS(S, col)
  return S.provider == "sqlite" and "CAST(strftime('%s', " .. col .. ") AS INTEGER) * 1000" or pg_ms(col)
end

for _, S in ipairs(STORES) do
  describe("metrics and analytics on the " .. S.label, function()
    local dx = S.open { readonly = true }
    local m = S.manifest()
    local now = m.created_at_ms + 600000
    local function count(q) return S.rows(q)[1].n end

    it("counts runtime metrics as the raw rows do", function()
      local rm = assert(dx:get_runtime_metrics { now = now, fresh = true })
      local st = {}
      for _, r in ipairs(S.rows([[SELECT e.status AS s, COUNT(*) AS n FROM instances i JOIN executions e
        ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id GROUP BY 1]])) do st[r.s] = r.n end
      assert.are.equal(count("SELECT COUNT(*) AS n FROM instances"), rm.total_instances_started)
      assert.are.equal(st.Completed or 0, rm.total_instances_completed)
      assert.are.equal(st.Failed or 0, rm.total_instances_failed)
      assert.are.equal(st.Running or 0, rm.active_instances)
      assert.are.equal(count("SELECT COUNT(*) AS n FROM executions"), rm.total_executions)
      assert.are.equal(count("SELECT COUNT(*) AS n FROM history"), rm.total_history_events)
      assert.are.equal(count("SELECT COUNT(*) AS n FROM history WHERE " .. TYPE(S) .. " IN ('ActivityCompleted','ActivityFailed')"),
        rm.total_activities_executed)
      assert.are.equal(count("SELECT COUNT(*) AS n FROM history WHERE " .. TYPE(S) .. " = 'TimerFired'"), rm.total_timers_fired)
      assert.are.equal(count("SELECT COUNT(*) AS n FROM history WHERE " .. TYPE(S) .. " IN ('ExternalEvent','ExternalEventPersistent')"),
        rm.total_events_raised)
      local kinds = { application = 0, cancelled = 0, poison = 0, nondeterminism = 0, infrastructure = 0, configuration = 0 }
      for _, r in ipairs(S.rows("SELECT " .. KIND(S) .. " AS k, COUNT(*) AS n FROM history WHERE " .. TYPE(S)
        .. " = 'OrchestrationFailed' GROUP BY 1")) do
        kinds[r.k] = r.n
      end
      assert.are.same(kinds, rm.failed_by_kind)
      -- Duroxide's own system metrics on the same store
      local oracle = S.oracle()
      assert.are.equal(oracle.systemMetrics.totalInstances, rm.total_instances_started)
      assert.are.equal(oracle.systemMetrics.totalExecutions, rm.total_executions)
      assert.are.equal(oracle.systemMetrics.totalEvents, rm.total_history_events)
      assert.are.equal(oracle.systemMetrics.completedInstances, rm.total_instances_completed)
      assert.are.equal(oracle.systemMetrics.failedInstances, rm.total_instances_failed)
      assert.are.equal(oracle.systemMetrics.runningInstances, rm.active_instances)
    end)

    it("judges the dispatchers' health from the queues", function()
      local rm = assert(dx:get_runtime_metrics { now = now, fresh = true })
      -- worker: rows available (unlocked, or their lock expired) for stall_threshold_ms or more
      local stalled_worker = count("SELECT COUNT(*) AS n FROM worker_queue WHERE (lock_token IS NULL OR locked_until <= "
        .. now .. ") AND " .. (S.provider == "sqlite" and "max(visible_at, COALESCE(locked_until, 0))"
        or "GREATEST(" .. pg_ms("visible_at") .. ", COALESCE(locked_until, 0))") .. " <= " .. (now - STALL))
      assert.are.equal(stalled_worker, rm.stalled_worker_items)
      assert.are.equal(stalled_worker == 0, rm.worker_dispatcher_healthy)
      -- timers: TimerFired rows due timer_overdue_ms ago or more, of live instances or not
      local overdue = count("SELECT COUNT(*) AS n FROM orchestrator_queue WHERE "
        .. (S.provider == "sqlite" and "work_item LIKE '{\"TimerFired\"%' AND visible_at" or "work_item::jsonb ? 'TimerFired' AND "
        .. pg_ms("visible_at")) .. " <= " .. (now - OVERDUE))
      assert.are.equal(overdue, rm.overdue_timers)
      assert.are.equal(overdue == 0, rm.timer_dispatcher_healthy)
      if S.name == "shapes" then assert.is_false(rm.worker_dispatcher_healthy) end -- poison-at-1's item
    end)

    it("gives per-orchestration counts and rates the rows give", function()
      local om = assert(dx:get_orchestration_metrics { now = now, fresh = true, merge_versions = true })
      local want = {}
      for _, r in ipairs(S.rows([[SELECT i.orchestration_name AS name, e.status AS status, COUNT(*) AS n FROM instances i
        JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id GROUP BY 1, 2]])) do
        want[r.name] = want[r.name] or { Completed = 0, Failed = 0, Running = 0 }
        want[r.name][r.status] = (want[r.name][r.status] or 0) + r.n
      end
      assert.are.equal(#H.keys(want), #om)
      for _, row in ipairs(om) do
        local w = assert(want[row.orchestration_name], row.orchestration_name)
        assert.are.equal(w.Completed, row.total_completed, row.orchestration_name)
        assert.are.equal(w.Failed, row.total_failed, row.orchestration_name)
        assert.are.equal(w.Running, row.active_count, row.orchestration_name)
        local done = w.Completed + w.Failed
        if done > 0 then
          assert.are.equal(w.Completed / done, row.success_rate, row.orchestration_name)
          assert.are.equal(w.Failed / done, row.failure_rate, row.orchestration_name)
        else
          assert.is_nil(row.success_rate)
        end
      end
    end)

    it("counts queue attempts near and at the poison limit", function()
      local qm = assert(dx:get_queue_metrics { now = now, fresh = true })
      for _, q in ipairs { "orchestrator", "worker" } do
        local t = q .. "_queue"
        assert.are.equal(count("SELECT COUNT(*) AS n FROM " .. t .. " WHERE attempt_count >= " .. NEAR), qm[q].near_poison, q)
        assert.are.equal(count("SELECT COUNT(*) AS n FROM " .. t .. " WHERE attempt_count >= " .. MAX_ATTEMPTS), qm[q].at_poison_limit, q)
        assert.are.equal(count("SELECT COALESCE(MAX(attempt_count), 0) AS n FROM " .. t), qm[q].max_attempt_count, q)
        assert.are.equal(count("SELECT COUNT(*) AS n FROM " .. t .. " WHERE lock_token IS NULL"), qm[q].unlocked_rows, q)
      end
      if S.name == "shapes" then assert.are.equal(1, qm.worker.at_poison_limit) end
    end)

    it("gives every time-series total and bucket the raw timestamps give", function()
      local lo = count("SELECT MIN(" .. TS(S) .. ") AS n FROM history")
      local hi = count("SELECT MAX(" .. TS(S) .. ") AS n FROM history")
      local from, to, bucket = lo - 3600000, hi + 60000, 60000
      local ts = assert(dx:get_time_series_metrics { from = from, to = to, bucket_ms = bucket })
      local aligned = from - from % bucket
      assert.are.equal(aligned, ts.from)
      local want = {}
      local function bump(series, t)
        local b = (t - aligned) // bucket + 1
        want[b] = want[b] or {}
        want[b][series] = (want[b][series] or 0) + 1
      end
      for _, r in ipairs(S.rows("SELECT " .. CREATED_MS(S, "created_at") .. " AS t FROM instances")) do
        bump("instances_started", r.t)
      end
      -- each instance's terminal event of its current execution
      for _, r in ipairs(S.rows("SELECT " .. TYPE(S, "h.") .. " AS type, " .. TS(S, "h.") .. " AS t, " .. KIND(S, "h.")
        .. " AS k FROM history h JOIN instances i ON i.instance_id = h.instance_id AND i.current_execution_id = h.execution_id"
        .. " WHERE " .. TYPE(S, "h.") .. " IN ('OrchestrationCompleted', 'OrchestrationFailed')")) do
        if r.type == "OrchestrationCompleted" then bump("instances_completed", r.t)
        elseif r.k == "cancelled" then bump("instances_cancelled", r.t)
        else bump("instances_failed", r.t) end
      end
      for _, r in ipairs(S.rows("SELECT " .. TYPE(S) .. " AS type, " .. TS(S) .. " AS t FROM history WHERE " .. TYPE(S)
        .. " IN ('ActivityCompleted', 'ActivityFailed')")) do
        bump(r.type == "ActivityCompleted" and "activities_completed" or "activities_failed", r.t)
      end
      local series = { "instances_started", "instances_completed", "instances_failed", "instances_cancelled",
        "activities_completed", "activities_failed" }
      local totals = {}
      for b, bk in ipairs(ts.buckets) do
        assert.are.equal(aligned + (b - 1) * bucket, bk.start)
        for _, s in ipairs(series) do
          local w = want[b] and want[b][s] or 0
          assert.are.equal(w, bk[s], s .. " in bucket " .. b)
          totals[s] = (totals[s] or 0) + w
        end
      end
      for _, s in ipairs(series) do assert.are.equal(totals[s], ts.totals[s], "total " .. s) end
      -- the window is [from, to): an event exactly at `to` is outside, one exactly at `from` inside
      local completed = " FROM history WHERE " .. TYPE(S) .. " = 'ActivityCompleted'"
      local t = count("SELECT " .. TS(S) .. " AS n" .. completed .. " ORDER BY 1 DESC LIMIT 1")
      local at_t = count("SELECT COUNT(*) AS n" .. completed .. " AND " .. TS(S) .. " = " .. t)
      local function activities(f, tt)
        return assert(dx:get_time_series_metrics { from = f, to = tt, bucket_ms = 1000, series = "activities_completed" })
          .totals.activities_completed
      end
      local before_t = count("SELECT COUNT(*) AS n" .. completed .. " AND " .. TS(S) .. " >= " .. (t - t % 1000) .. " AND "
        .. TS(S) .. " < " .. t)
      assert.are.equal(before_t, activities(t - t % 1000, t))
      assert.are.equal(before_t + at_t, activities(t - t % 1000, t + 1))
      -- the same ends for the instances started (their own SQL: instances.created_at)
      local CR = CREATED_MS(S, "created_at")
      local last = count("SELECT MAX(" .. CR .. ") AS n FROM instances")
      local f0 = last - last % 1000 - 1000
      local function started(tt)
        return assert(dx:get_time_series_metrics { from = f0, to = tt, bucket_ms = 1000, series = "instances_started" })
          .totals.instances_started
      end
      local in_window = count("SELECT COUNT(*) AS n FROM instances WHERE " .. CR .. " >= " .. f0 .. " AND " .. CR
        .. " < " .. last)
      local at_last = count("SELECT COUNT(*) AS n FROM instances WHERE " .. CR .. " = " .. last)
      assert.is_true(at_last >= 1)
      assert.are.equal(in_window, started(last))
      assert.are.equal(in_window + at_last, started(last + 1))
      if S.name == "shapes" then
        assert.is_true(ts.totals.instances_cancelled >= 4)
        assert.is_true(ts.totals.instances_failed >= 1)
      end
    end)
  end)
end

-- ---- filter operators at equal values ------------------------------------------------------------

for _, S in ipairs(SHAPES) do
  describe("filter boundaries on the " .. S.label, function()
    local dx = S.open { readonly = true }
    local rows = S.rows([[SELECT i.instance_id AS id, i.current_execution_id AS n,
      CAST(strftime('%s', i.created_at) AS INTEGER) * 1000 AS c FROM instances i]], [[SELECT i.instance_id AS id,
      i.current_execution_id AS n, ]] .. pg_ms("i.created_at") .. [[ AS c FROM instances i]])
    local function expect(query, f)
      local want = {}
      for _, r in ipairs(rows) do
        if f(r) then want[#want + 1] = r.id end
      end
      table.sort(want)
      assert.are.same(want, H.sorted(H.ids(assert(dx:list_instances(query)))), type(query) == "string" and query or nil)
    end

    it("compares execution_count exactly (carry-1 has 2 executions)", function()
      expect("execution_count = 2", function(r) return r.n == 2 end)
      expect("execution_count > 2", function(r) return r.n > 2 end)
      expect("execution_count >= 2", function(r) return r.n >= 2 end)
      expect("execution_count < 2", function(r) return r.n < 2 end)
      expect("execution_count <= 2", function(r) return r.n <= 2 end)
      expect("execution_count != 2", function(r) return r.n ~= 2 end)
      assert.are.same({ "carry-1" }, H.list_ids(dx, "execution_count = 2"))
    end)

    it("takes an id prefix that is a whole id as matching that id", function()
      for _, id in ipairs { "carry-1", "race-child-1" } do
        expect({ instance_id_prefix = id }, function(r) return r.id:sub(1, #id) == id end)
        expect("instance_id STARTS_WITH '" .. id .. "'", function(r) return r.id:sub(1, #id) == id end)
      end
      assert.are.same({ "race-child-1", "race-child-1::sub::2" }, H.list_ids(dx, { instance_id_prefix = "race-child-1" }))
    end)

    it("compares created_at at a value instances have exactly", function()
      local c = rows[1].c
      expect("created_at = " .. c, function(r) return r.c == c end)
      expect("created_at >= " .. c, function(r) return r.c >= c end)
      expect("created_at > " .. c, function(r) return r.c > c end)
      expect("created_at <= " .. c, function(r) return r.c <= c end)
      expect("created_at < " .. c, function(r) return r.c < c end)
      expect("created_at >= " .. c .. " AND created_at <= " .. c, function(r) return r.c == c end)
    end)
  end)
end
