-- stuck_spec.lua - find_stuck_instances on the scenario store (checked against what the
-- generator's manifest says each instance waits on) and on the busy store (the runtime killed
-- mid-flight: expired locks, overdue timers, activities nobody picks up, an unregistered
-- orchestration retried towards poison, an event for an instance that does not exist). The
-- expected evidence is recomputed here from queue rows read with the sqlite3 tool; the same on
-- the PostgreSQL twins of both stores, read with psql.
local durox = require "durox"
local H = require "helpers"

if H.skip or H.busy_skip then
  describe("stuck", function() pending("the scenario and busy fixtures are not set") end)
  return
end

-- rows of an independent query: SQLite (db a path), or PostgreSQL (pgq the PG spelling, on
-- the database pgdb)
local function sql(query, db, pgq, pgdb)
  local rows = pgdb and H.psql(pgq or query, pgdb) or H.sql(query, db)
  for _, r in ipairs(rows) do
    for k, v in pairs(r) do
      if v == durox.null then r[k] = nil end
    end
  end
  return rows
end

-- "instance/reason" strings of a result, sorted
local function pairs_of(res)
  local out = {}
  for _, s in ipairs(res.instances) do
    for _, r in ipairs(s.reasons) do out[#out + 1] = s.instance_id .. "/" .. r.reason end
  end
  table.sort(out)
  return out
end

local function uniq_sorted(list)
  local seen, out = {}, {}
  for _, v in ipairs(list) do
    if not seen[v] then seen[v], out[#out + 1] = true, v end
  end
  table.sort(out)
  return out
end

for _, P in ipairs(H.providers()) do
describe("find_stuck_instances on the scenario store on " .. P.name, function()
  local dx = P.open({ readonly = true })
  local m = P.manifest()
  local now = m.created_at_ms + 600000

  it("finds the instances the manifest says wait on events or on an activity nobody runs", function()
    local res = assert(dx:find_stuck_instances { now = now, event_wait_threshold_ms = "1m" })
    local want = {}
    for id, inst in pairs(m.instances) do
      local w = inst.waiting_on
      if inst.status == "Running" and w then
        if w:match("^event:") or w:match("^queue:") then want[#want + 1] = id .. "/waiting_on_event" end
        if w:match("^activity:") then want[#want + 1] = id .. "/unpicked_activity" end
      end
    end
    table.sort(want)
    assert.are.same(want, pairs_of(res))
    assert.is_false(res.truncated)
    assert.are.equal(now, res.now)
    for _, s in ipairs(res.instances) do
      assert.are.equal("Running", s.status)
      assert.are.equal(m.instances[s.instance_id].name, s.orchestration_name)
      for _, r in ipairs(s.reasons) do
        if r.reason == "waiting_on_event" then
          assert.are.equal(m.instances[s.instance_id].waiting_on:match(":(.*)$"), r.detail)
        else
          assert.are.equal("worker", r.queue)
          assert.are.equal("GpuRender", r.detail)
          assert.are.equal("activity 'GpuRender' (worker item " .. r.queue_id .. ", tag gpu) has waited "
            .. (r.message:match("waited (.-) for") or "?") .. " for a worker", r.message)
        end
      end
    end
    -- oldest first
    for i = 2, #res.instances do assert.is_true(res.instances[i - 1].since <= res.instances[i].since) end
  end)

  it("ignores event waits shorter than the threshold and caps the list", function()
    local res = assert(dx:find_stuck_instances { now = now, event_wait_threshold_ms = 24 * 3600000 })
    assert.are.same({ "pending-activity-1/unpicked_activity" }, pairs_of(res))
    local capped = assert(dx:find_stuck_instances { now = now, event_wait_threshold_ms = 1000, limit = 2 })
    assert.are.equal(2, #capped.instances)
    assert.is_true(capped.truncated)
  end)

  it("sees nothing stalled right after the store was made", function()
    local res = assert(dx:find_stuck_instances { now = m.created_at_ms + 20000, event_wait_threshold_ms = "1h" })
    assert.are.same({}, res.instances)
  end)
end)
end

local BUSY = { { name = "busy store", db = H.busy_db, url = "sqlite:" .. H.busy_db, info = H.busy_info_path } }
if not H.pg_busy_skip then
  BUSY[2] = { name = "PostgreSQL busy store", pg = "durox_busy", url = H.pg_url("durox_busy", "schema=dx"),
              info = H.pg_busy_info_path }
end
local function pgms(col) return ("floor(extract(epoch FROM %s) * 1000)::int8"):format(col) end

for _, B in ipairs(BUSY) do
describe("find_stuck_instances on the " .. B.name, function()
  local info = assert(durox.decode_json(H.read_file(B.info)))
  local db, pgdb = B.db, B.pg
  local dx = assert(durox.open(B.url, { readonly = true }))
  local now = info.killed_at_ms + 120000
  local T = { stall = 60000, overdue = 60000, near = 2, wait = 30000 }
  local res = assert(dx:find_stuck_instances { now = now, stall_threshold_ms = T.stall, timer_overdue_ms = T.overdue,
                                               near_poison_attempts = T.near, event_wait_threshold_ms = T.wait })

  -- the evidence of docs/metrics.md recomputed from the rows, as of `now`
  local function expected(now)
    local out = {}
    local function add(id, reason) out[#out + 1] = id .. "/" .. reason end
    local live = function(status) return status == nil or status == "Running" or status == "ContinuedAsNew" end
    for _, r in ipairs(sql([[
      SELECT q.instance_id AS id, q.work_item LIKE '{"TimerFired":%' AS tm, q.work_item LIKE '{"QueueMessage":%' AS qm,
        q.visible_at AS vis, q.attempt_count AS attempts, l.locked_until AS lu, q.lock_token IS l.lock_token AS mine,
        i.instance_id IS NOT NULL AS exists_, e.status AS status,
        (SELECT count(*) FROM orchestrator_queue s WHERE s.instance_id = q.instance_id
           AND s.work_item LIKE '{"StartOrchestration":%') AS starts
      FROM orchestrator_queue q LEFT JOIN instance_locks l ON l.instance_id = q.instance_id
        LEFT JOIN instances i ON i.instance_id = q.instance_id
        LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id]], db, [[
      SELECT q.instance_id AS id, (q.work_item::jsonb ? 'TimerFired')::int AS tm,
        (q.work_item::jsonb ? 'QueueMessage')::int AS qm, ]] .. pgms("q.visible_at") .. [[ AS vis,
        q.attempt_count AS attempts, l.locked_until AS lu, (q.lock_token IS NOT DISTINCT FROM l.lock_token)::int AS mine,
        (i.instance_id IS NOT NULL)::int AS exists_, e.status AS status,
        (SELECT count(*) FROM orchestrator_queue s WHERE s.instance_id = q.instance_id
           AND s.work_item::jsonb ? 'StartOrchestration') AS starts
      FROM orchestrator_queue q LEFT JOIN instance_locks l ON l.instance_id = q.instance_id
        LEFT JOIN instances i ON i.instance_id = q.instance_id
        LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id]], pgdb)) do
      if r.exists_ == 0 or live(r.status) then
        local locked = r.lu ~= nil and r.lu > now
        if r.exists_ == 0 and r.starts == 0 then add(r.id, "orphan_messages") end
        if r.attempts >= T.near then add(r.id, "poison_risk") end
        if r.lu ~= nil and r.lu <= now - T.stall then add(r.id, "expired_lock") end
        if r.tm == 1 and not locked and r.vis <= now - T.overdue then add(r.id, "overdue_timer") end
        if r.tm == 0 and not locked and r.vis <= now - T.stall then add(r.id, "stalled_messages") end
      end
    end
    for _, r in ipairs(sql([[
      SELECT w.instance_id AS id, w.visible_at AS vis, w.lock_token AS token, w.locked_until AS lu,
        w.attempt_count AS attempts, i.instance_id IS NOT NULL AS exists_, e.status AS status
      FROM worker_queue w LEFT JOIN instances i ON i.instance_id = w.instance_id
        LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id]], db, [[
      SELECT w.instance_id AS id, ]] .. pgms("w.visible_at") .. [[ AS vis, w.lock_token AS token, w.locked_until AS lu,
        w.attempt_count AS attempts, (i.instance_id IS NOT NULL)::int AS exists_, e.status AS status
      FROM worker_queue w LEFT JOIN instances i ON i.instance_id = w.instance_id
        LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id]], pgdb)) do
      if r.exists_ == 0 or live(r.status) then
        local held = r.token ~= nil and r.lu > now
        if r.attempts >= T.near then add(r.id, "poison_risk") end
        if r.token ~= nil and r.lu <= now - T.stall then add(r.id, "expired_lock") end
        local since = (r.token ~= nil and not held) and math.max(r.vis, r.lu) or r.vis
        if not held and since <= now - T.stall then add(r.id, "unpicked_activity") end
      end
    end
    for _, r in ipairs(sql([[
      SELECT l.instance_id AS id FROM instance_locks l JOIN instances i ON i.instance_id = l.instance_id
        JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
      WHERE l.locked_until <= ]] .. (now - T.stall) .. " AND e.status IN ('Running', 'ContinuedAsNew')", db, nil, pgdb)) do
      add(r.id, "expired_lock")
    end
    -- running instances whose last event is a subscription older than the wait, with no
    -- timer due in the future
    for _, r in ipairs(sql([[
      SELECT i.instance_id AS id, (SELECT h.event_type FROM history h WHERE h.instance_id = i.instance_id
          AND h.execution_id = i.current_execution_id ORDER BY h.event_id DESC LIMIT 1) AS last_type,
        (SELECT json_extract(h.event_data, '$.timestamp_ms') FROM history h WHERE h.instance_id = i.instance_id
          AND h.execution_id = i.current_execution_id ORDER BY h.event_id DESC LIMIT 1) AS last_ts,
        (SELECT count(*) FROM history t WHERE t.instance_id = i.instance_id AND t.execution_id = i.current_execution_id
          AND t.event_type = 'TimerCreated' AND json_extract(t.event_data, '$.fire_at_ms') > ]] .. now .. [[
          AND NOT EXISTS (SELECT 1 FROM history f WHERE f.instance_id = t.instance_id AND f.execution_id = t.execution_id
            AND f.event_type = 'TimerFired' AND json_extract(f.event_data, '$.source_event_id') = t.event_id)) AS timers
      FROM instances i JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
      WHERE e.status = 'Running']], db, [[
      SELECT i.instance_id AS id, (SELECT h.event_data::json->>'type' FROM history h WHERE h.instance_id = i.instance_id
          AND h.execution_id = i.current_execution_id ORDER BY h.event_id DESC LIMIT 1) AS last_type,
        (SELECT (h.event_data::json->>'timestamp_ms')::int8 FROM history h WHERE h.instance_id = i.instance_id
          AND h.execution_id = i.current_execution_id ORDER BY h.event_id DESC LIMIT 1) AS last_ts,
        (SELECT count(*) FROM history t WHERE t.instance_id = i.instance_id AND t.execution_id = i.current_execution_id
          AND t.event_data::json->>'type' = 'TimerCreated' AND (t.event_data::json->>'fire_at_ms')::int8 > ]] .. now .. [[
          AND NOT EXISTS (SELECT 1 FROM history f WHERE f.instance_id = t.instance_id AND f.execution_id = t.execution_id
            AND f.event_data::json->>'type' = 'TimerFired'
            AND (f.event_data::json->>'source_event_id')::int8 = t.event_id)) AS timers
      FROM instances i JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
      WHERE e.status = 'Running']], pgdb)) do
      if (r.last_type == "ExternalSubscribed" or r.last_type == "ExternalSubscribedPersistent")
         and r.last_ts < now - T.wait and r.timers == 0 then
        add(r.id, "waiting_on_event")
      end
    end
    return uniq_sorted(out)
  end

  it("finds every piece of evidence the rows show, and nothing else", function()
    local exp = expected(now)
    assert.are.same(exp, pairs_of(res))
    -- the fixture really has each kind of trouble
    local kinds = {}
    for _, p in ipairs(exp) do kinds[p:match("/(.*)$")] = true end
    for _, k in ipairs({ "orphan_messages", "poison_risk", "expired_lock", "overdue_timer", "unpicked_activity",
                         "waiting_on_event" }) do
      assert(kinds[k], "the busy store shows no " .. k)
    end
  end)

  -- The age thresholds are inclusive (docs/metrics.md): a row exactly stall_threshold_ms (or
  -- timer_overdue_ms) old counts. At the very instant each row crosses its threshold, and 1 ms
  -- before, the evidence and the health counters equal what the rows give.
  it("counts work exactly as old as a threshold, and not 1 ms younger", function()
    local function at(t)
      return pairs_of(assert(dx:find_stuck_instances { now = t, stall_threshold_ms = T.stall,
        timer_overdue_ms = T.overdue, near_poison_attempts = T.near, event_wait_threshold_ms = T.wait }))
    end
    -- the instant each row crosses a threshold and the pair (instance/reason) it must add then,
    -- per kind of row (the locks of instances and of worker rows are judged apart, so each
    -- kind gets its own crossings)
    local crossing = { stalled_messages = {}, overdue_timer = {}, ["expired_lock/instance lock"] = {},
                       ["expired_lock/worker lock"] = {}, unpicked_activity = {} }
    local function cross(kind, t, id) table.insert(crossing[kind], { t = t, id = id }) end
    for _, r in ipairs(sql([[SELECT q.instance_id AS id, q.work_item LIKE '{"TimerFired":%' AS tm, q.visible_at AS vis,
      l.locked_until AS lu FROM orchestrator_queue q LEFT JOIN instance_locks l ON l.instance_id = q.instance_id]], db,
      [[SELECT q.instance_id AS id, (q.work_item::jsonb ? 'TimerFired')::int AS tm, ]] .. pgms("q.visible_at") .. [[ AS vis,
      l.locked_until AS lu FROM orchestrator_queue q LEFT JOIN instance_locks l ON l.instance_id = q.instance_id]], pgdb)) do
      if r.tm == 1 then cross("overdue_timer", r.vis + T.overdue, r.id)
      else cross("stalled_messages", r.vis + T.stall, r.id) end
    end
    for _, r in ipairs(sql("SELECT instance_id AS id, locked_until AS lu FROM instance_locks", db, nil, pgdb)) do
      cross("expired_lock/instance lock", r.lu + T.stall, r.id)
    end
    for _, r in ipairs(sql("SELECT instance_id AS id, visible_at AS vis, lock_token AS token, locked_until AS lu"
      .. " FROM worker_queue", db, "SELECT instance_id AS id, " .. pgms("visible_at")
      .. " AS vis, lock_token AS token, locked_until AS lu FROM worker_queue", pgdb)) do
      if r.token ~= nil then
        cross("expired_lock/worker lock", r.lu + T.stall, r.id)
        cross("unpicked_activity", math.max(r.vis, r.lu) + T.stall, r.id)
      else
        cross("unpicked_activity", r.vis + T.stall, r.id)
      end
    end
    local kinds = H.keys(crossing)
    table.sort(kinds)
    for _, kind in ipairs(kinds) do
      local reason = kind:match("^[^/]+")
      local list = crossing[kind]
      table.sort(list, function(a, b) return a.t < b.t or (a.t == b.t and a.id < b.id) end)
      local tried, seen = 0, 0
      for _, c in ipairs(list) do
        if seen >= 2 or tried >= 6 then break end
        tried = tried + 1
        local t = c.t
        local before, exact = expected(t - 1), expected(t)
        -- this row's pair appears exactly at t (else another row of the instance hides it)
        local in_before, in_exact = false, false
        for _, p in ipairs(before) do in_before = in_before or p == c.id .. "/" .. reason end
        for _, p in ipairs(exact) do in_exact = in_exact or p == c.id .. "/" .. reason end
        if in_exact and not in_before then
          seen = seen + 1
          assert.are.same(exact, at(t), kind .. " of " .. c.id .. " at " .. t)
          assert.are.same(before, at(t - 1), kind .. " of " .. c.id .. " at " .. (t - 1))
        end
      end
      assert(seen > 0, "no " .. kind .. " crossing its threshold on the " .. B.name)
    end
    -- the health counters at the same kind of instants, from the rows
    local function count(q, pgq)
      return sql(q, db, pgq, pgdb)[1].n
    end
    -- on PostgreSQL a handle computes these from the queue rows it keeps; the server-side
    -- statements (inside a handle's own transaction, beyond 500,000 rows a queue) are checked
    -- at the same instants in a process with the kept rows turned off
    local server_side = {}
    local function check_server_side(t, field, want)
      if pgdb then server_side[#server_side + 1] = { t = t, field = field, want = want } end
    end
    for _, r in ipairs(sql("SELECT locked_until AS lu FROM instance_locks ORDER BY 1 LIMIT 2", db, nil, pgdb)) do
      for _, t in ipairs({ r.lu + T.stall - 1, r.lu + T.stall }) do
        local rm = assert(dx:get_runtime_metrics { now = t, fresh = true })
        local want = count("SELECT count(*) AS n FROM instance_locks WHERE locked_until <= " .. (t - T.stall))
        assert.are.equal(want, rm.expired_instance_locks, "expired_instance_locks at " .. t)
        check_server_side(t, "expired_instance_locks", want)
      end
    end
    for _, r in ipairs(sql("SELECT visible_at AS vis, locked_until AS lu FROM worker_queue ORDER BY id LIMIT 3", db,
      "SELECT " .. pgms("visible_at") .. " AS vis, locked_until AS lu FROM worker_queue ORDER BY id LIMIT 3", pgdb)) do
      local cross = math.max(r.vis, r.lu or 0) + T.stall
      for _, t in ipairs({ cross - 1, cross }) do
        local rm = assert(dx:get_runtime_metrics { now = t, fresh = true })
        local since = "max(visible_at, COALESCE(locked_until, 0))"
        local pgsince = "GREATEST(" .. pgms("visible_at") .. ", COALESCE(locked_until, 0))"
        local where = "(lock_token IS NULL OR locked_until <= " .. t .. ") AND %s <= " .. (t - T.stall)
        local want = count("SELECT count(*) AS n FROM worker_queue WHERE " .. where:format(since),
          "SELECT count(*) AS n FROM worker_queue WHERE " .. where:format(pgsince))
        assert.are.equal(want, rm.stalled_worker_items, "stalled_worker_items at " .. t)
        check_server_side(t, "stalled_worker_items", want)
      end
    end
    if #server_side > 0 then
      local script, lines = os.tmpname(), {}
      for _, c in ipairs(server_side) do lines[#lines + 1] = ("{%d,%q}"):format(c.t, c.field) end
      local f = assert(io.open(script, "w"))
      f:write('local durox = require "durox"\n'
        .. 'local dx = assert(durox.open(arg[1], { readonly = true }))\n'
        .. 'for _, c in ipairs { ' .. table.concat(lines, ", ") .. ' } do\n'
        .. '  local rm = assert(dx:get_runtime_metrics { now = c[1], fresh = true })\n'
        .. '  print(rm[c[2]])\nend\n')
      f:close()
      local p = assert(io.popen(("DUROX_PG_QUEUE_MEMO_OFF=1 %q %q %q 2>&1"):format(os.getenv("DUROXLUA"), script, B.url)))
      local out = p:read("a")
      local ok = p:close()
      os.remove(script)
      assert(ok, out)
      local k = 0
      for v in out:gmatch("[^\n]+") do
        k = k + 1
        local c = server_side[k]
        assert(c, out)
        assert.are.equal(c.want, tonumber(v), "server-side " .. c.field .. " at " .. c.t)
      end
      assert.are.equal(#server_side, k, out)
    end
  end)

  it("explains the orphan message that blocks the orchestrator queue", function()
    local ghost
    for _, s in ipairs(res.instances) do if s.instance_id == "ghost-1" then ghost = s end end
    assert(ghost)
    assert.are.equal("NotFound", ghost.status)
    assert.is_nil(ghost.orchestration_name)
    local r = ghost.reasons[1]
    assert.are.equal("orphan_messages", r.reason)
    assert.are.equal(pgdb == nil, r.blocks_queue == true)
    assert.are.equal("orchestrator", r.queue)
    assert.are.equal("ExternalRaised", r.detail)
    local id = sql("SELECT id FROM orchestrator_queue WHERE instance_id = 'ghost-1'", db, nil, pgdb)[1].id
    assert.are.equal(id, r.queue_id)
    if pgdb then
      -- Duroxide's PostgreSQL runtime consumes such a message (it leaves an execution row
      -- without an instance): it never blocks the queue there
      assert.is_falsy(r.blocks_queue)
      assert.are.equal(("ExternalRaised (orchestrator item %d) is addressed to an instance that does not exist")
        :format(id), r.message)
      return
    end
    assert.are.equal(("ExternalRaised (orchestrator item %d) is addressed to an instance that does not exist; it"
      .. " blocks the orchestrator queue"):format(id), r.message)
  end)

  it("reports the unregistered orchestration's retries as poison risk", function()
    local found = 0
    for _, s in ipairs(res.instances) do
      if s.instance_id:match("^busy%-unreg%-") then
        -- not created yet: Pending, and the name comes from its queued start
        assert.are.equal("Pending", s.status)
        assert.are.equal("NoSuchOrchestration", s.orchestration_name)
        for _, r in ipairs(s.reasons) do
          if r.reason == "poison_risk" then
            found = found + 1
            assert.are.equal("StartOrchestration", r.detail)
            assert.is_true(r.attempt_count >= T.near)
            assert.are.equal(("StartOrchestration (orchestrator item %d) was fetched %d times (poisoned after 10)")
              :format(r.queue_id, r.attempt_count), r.message)
          end
        end
      end
    end
    assert.is_true(found > 0)
  end)

  it("judges with the handle's configuration by default", function()
    local dx2 = assert(durox.open(B.url, { readonly = true, config = {
      stall_threshold_ms = T.stall, timer_overdue_ms = T.overdue, near_poison_attempts = T.near,
      event_wait_threshold_ms = T.wait } }))
    assert.are.same(pairs_of(res), pairs_of(assert(dx2:find_stuck_instances { now = now })))
    dx2:close()
  end)

  it("refuses inconsistent thresholds", function()
    local r, msg, code = dx:find_stuck_instances { near_poison_attempts = 20 }
    assert.is_nil(r)
    assert.are.equal("near_poison_attempts (20) exceeds max_attempts (10)", msg)
    assert.are.equal("INVALID", code)
    assert.has_error(function() dx:find_stuck_instances { stall_threshold_ms = "soon" } end)
    assert.has_error(function() dx:find_stuck_instances { stalled = 1 } end,
      "unknown find_stuck_instances option field 'stalled'")
  end)
end)
end
