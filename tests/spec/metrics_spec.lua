-- metrics_spec.lua - get_runtime_metrics, get_queue_metrics, get_provider_diagnostics and
-- get_orchestration_metrics on two stores the real runtime wrote: the scenario store (quiet)
-- and the busy store (tests/make_busy_store.sh: the runtime killed mid-flight, with locks,
-- in-flight rows, stale lock tokens, due timers and an orphan message). Figures that Duroxide
-- also reports are compared with its own answers (oracle.js); where Duroxide counts
-- differently the difference is asserted and explained; every other figure is compared with
-- a value computed here from the store with the sqlite3 tool and Lua, following the
-- definitions of docs/metrics.md - never with our own code. The same on PostgreSQL: the PG
-- twins of both stores (tests/make_pg_fixtures.sh, make_busy_store.sh with a server), read
-- independently with psql and PostgreSQL's own JSON functions.
local durox = require "durox"
local H = require "helpers"

if H.skip or H.busy_skip then
  describe("metrics", function() pending("the scenario and busy fixtures are not set") end)
  return
end

local CFG = { stall = 60000, overdue = 60000, near = 5, max = 10 }

-- The two stores, each with an explicit evaluation time: the scenario store 10 minutes after
-- it was made (its 1 h timer still pending, its untaggable activity long stalled), the busy
-- store 2 minutes after the kill (locks expired, short timers overdue).
local manifest = H.manifest()
local busy_info = assert(durox.decode_json(H.read_file(H.busy_info_path)))
local STORES = {
  { name = "scenario store", db = H.db, url = "sqlite:" .. H.db, oracle = H.oracle(),
    now = manifest.created_at_ms + 600000 },
  { name = "busy store", db = H.busy_db, url = "sqlite:" .. H.busy_db,
    oracle = assert(durox.decode_json(H.read_file(H.busy_oracle_path))), now = busy_info.killed_at_ms + 120000 },
}
if not H.pg_busy_skip then
  local pgm = assert(durox.decode_json(H.read_file(H.pg_manifest_path)))
  local pgb = assert(durox.decode_json(H.read_file(H.pg_busy_info_path)))
  STORES[#STORES + 1] = { name = "PostgreSQL scenario store", pg = "durox_scenarios", static = true,
    url = H.pg_url("durox_scenarios", "schema=dx"), oracle = assert(durox.decode_json(H.read_file(H.pg_oracle_path))),
    now = pgm.created_at_ms + 600000 }
  STORES[#STORES + 1] = { name = "PostgreSQL busy store", pg = "durox_busy", url = H.pg_url("durox_busy", "schema=dx"),
    oracle = assert(durox.decode_json(H.read_file(H.pg_busy_oracle_path))), now = pgb.killed_at_ms + 120000 }
end

-- Rows of an independent query on store S: the sqlite3 tool, or psql (sql[2] when given, the
-- PostgreSQL spelling of the same query).
local function rows_of(S, sqlite_sql, pg_sql)
  if S.pg then return H.nil_nulls(H.psql(pg_sql or sqlite_sql, S.pg)) end
  return H.rows(sqlite_sql, S.db)
end

local function pgms(col) return ("floor(extract(epoch FROM %s) * 1000)::int8"):format(col) end

local function ms(text_col) return ("CAST(strftime('%%s', %s) AS INTEGER) * 1000"):format(text_col) end

-- ---- independent computations (SQL through the sqlite3 tool, classification in Lua) --------

local function type_counts(S)
  local c = setmetatable({}, { __index = function() return 0 end })
  for _, r in ipairs(rows_of(S, "SELECT event_type AS t, count(*) AS n FROM history GROUP BY event_type",
    "SELECT event_data::json->>'type' AS t, count(*) AS n FROM history GROUP BY 1")) do
    c[r.t] = r.n
  end
  return c
end

-- Failure kinds of OrchestrationFailed events, from the ErrorDetails with SQLite's JSON functions.
local function failure_kinds(S)
  local k = { application = 0, cancelled = 0, poison = 0, nondeterminism = 0, infrastructure = 0, configuration = 0 }
  for _, r in ipairs(rows_of(S, [[
    SELECT CASE
      WHEN json_type(event_data, '$.details.Application.kind.Cancelled') IS NOT NULL THEN 'cancelled'
      WHEN json_type(event_data, '$.details.Application') IS NOT NULL THEN 'application'
      WHEN json_type(event_data, '$.details.Poison') IS NOT NULL THEN 'poison'
      WHEN json_extract(event_data, '$.details.Configuration.kind') = 'Nondeterminism' THEN 'nondeterminism'
      WHEN json_type(event_data, '$.details.Configuration') IS NOT NULL THEN 'configuration'
      WHEN json_type(event_data, '$.details.Infrastructure') IS NOT NULL THEN 'infrastructure' END AS kind,
      count(*) AS n FROM history WHERE event_type = 'OrchestrationFailed' GROUP BY kind]], [[
    SELECT CASE
      WHEN d #> '{Application,kind,Cancelled}' IS NOT NULL THEN 'cancelled'
      WHEN d ? 'Application' THEN 'application'
      WHEN d ? 'Poison' THEN 'poison'
      WHEN d #>> '{Configuration,kind}' = 'Nondeterminism' THEN 'nondeterminism'
      WHEN d ? 'Configuration' THEN 'configuration'
      WHEN d ? 'Infrastructure' THEN 'infrastructure' END AS kind, count(*) AS n
    FROM (SELECT event_data::jsonb->'details' AS d FROM history
          WHERE event_data::jsonb->>'type' = 'OrchestrationFailed') x GROUP BY 1]])) do
    k[r.kind] = r.n
  end
  return k
end

-- Queue rows with what they need for the definitions.
local function orchestrator_rows(S)
  return rows_of(S, [[
    SELECT q.id, q.instance_id AS inst, q.work_item LIKE '{"TimerFired":%' AS tm,
      q.work_item LIKE '{"QueueMessage":%' AS qm, q.visible_at AS vis, q.lock_token AS token,
      q.attempt_count AS attempts, ]] .. ms("q.created_at") .. [[ AS created,
      l.lock_token AS lock_token, l.locked_until AS locked_until,
      (SELECT count(*) FROM instances i WHERE i.instance_id = q.instance_id) AS has_instance,
      (SELECT count(*) FROM orchestrator_queue s WHERE s.instance_id = q.instance_id
         AND s.work_item LIKE '{"StartOrchestration":%') AS starts
    FROM orchestrator_queue q LEFT JOIN instance_locks l ON l.instance_id = q.instance_id ORDER BY q.id]], [[
    SELECT q.id, q.instance_id AS inst, (q.work_item::jsonb ? 'TimerFired')::int AS tm,
      (q.work_item::jsonb ? 'QueueMessage')::int AS qm, ]] .. pgms("q.visible_at") .. [[ AS vis,
      q.lock_token AS token, q.attempt_count AS attempts, ]] .. pgms("q.created_at") .. [[ AS created,
      l.lock_token AS lock_token, l.locked_until AS locked_until,
      (SELECT count(*) FROM instances i WHERE i.instance_id = q.instance_id) AS has_instance,
      (SELECT count(*) FROM orchestrator_queue s WHERE s.instance_id = q.instance_id
         AND s.work_item::jsonb ? 'StartOrchestration') AS starts
    FROM orchestrator_queue q LEFT JOIN instance_locks l ON l.instance_id = q.instance_id ORDER BY q.id]])
end

local function worker_rows(S)
  return rows_of(S, "SELECT id, visible_at AS vis, lock_token AS token, locked_until AS lu, attempt_count AS attempts"
    .. " FROM worker_queue ORDER BY id", "SELECT id, " .. pgms("visible_at") .. " AS vis, lock_token AS token,"
    .. " locked_until AS lu, attempt_count AS attempts FROM worker_queue ORDER BY id")
end

-- The queue figures of docs/metrics.md, computed in Lua from the rows.
local function expected_queues(S, now)
  local o = { available = 0, in_progress = 0, waiting_on_lock = 0, delayed = 0, stalled = 0, near_poison = 0,
              at_poison_limit = 0, stale_lock_tokens = 0, orphans = 0, orphans_blocking = 0, unlocked_rows = 0 }
  local e = { pending_timers = 0, overdue = 0, rows = 0 }
  local oldest_visible, oldest_timer, next_timer, max_attempts
  for _, r in ipairs(orchestrator_rows(S)) do
    e.rows = e.rows + 1
    local locked = r.locked_until ~= nil and r.locked_until > now
    local pending_timer = r.tm == 1 and r.vis > now
    local held = locked and r.token == r.lock_token
    if r.token == nil then o.unlocked_rows = o.unlocked_rows + 1 end
    if r.token ~= nil and not held then o.stale_lock_tokens = o.stale_lock_tokens + 1 end
    if pending_timer then
      e.pending_timers = e.pending_timers + 1
      oldest_timer = math.min(oldest_timer or math.huge, r.created)
      next_timer = math.min(next_timer or math.huge, r.vis)
    elseif held then
      o.in_progress = o.in_progress + 1
    elseif locked then
      o.waiting_on_lock = o.waiting_on_lock + 1
    elseif r.vis > now then
      o.delayed = o.delayed + 1
    else
      o.available = o.available + 1
      if r.tm == 0 and r.vis <= now - CFG.stall then o.stalled = o.stalled + 1 end
      if r.tm == 1 and r.vis <= now - CFG.overdue then e.overdue = e.overdue + 1 end
    end
    if not pending_timer and r.vis <= now then oldest_visible = math.min(oldest_visible or math.huge, r.vis) end
    if r.attempts >= CFG.near then o.near_poison = o.near_poison + 1 end
    if r.attempts >= CFG.max then o.at_poison_limit = o.at_poison_limit + 1 end
    max_attempts = math.max(max_attempts or -1, r.attempts)
    if r.has_instance == 0 and r.starts == 0 then
      o.orphans = o.orphans + 1
      -- on PostgreSQL the runtime consumes orphans (they leave a ghost execution): none blocks
      if r.vis <= now and r.qm == 0 and not S.pg then o.orphans_blocking = o.orphans_blocking + 1 end
    end
  end
  o.max_attempt_count = max_attempts
  local w = { available = 0, in_progress = 0, expired_locks = 0, delayed = 0, stalled = 0, near_poison = 0,
              at_poison_limit = 0, unlocked_rows = 0 }
  local wrows, w_oldest, w_max = 0, nil, nil
  for _, r in ipairs(worker_rows(S)) do
    wrows = wrows + 1
    if r.token == nil then w.unlocked_rows = w.unlocked_rows + 1 end
    local held = r.token ~= nil and r.lu > now
    local expired = r.token ~= nil and not held
    if expired then w.expired_locks = w.expired_locks + 1 end
    if held then
      w.in_progress = w.in_progress + 1
    elseif r.vis > now then
      w.delayed = w.delayed + 1
    else
      w.available = w.available + 1
      local since = expired and math.max(r.vis, r.lu) or r.vis
      if since <= now - CFG.stall then w.stalled = w.stalled + 1 end
    end
    if r.vis <= now then w_oldest = math.min(w_oldest or math.huge, r.vis) end
    if r.attempts >= CFG.near then w.near_poison = w.near_poison + 1 end
    if r.attempts >= CFG.max then w.at_poison_limit = w.at_poison_limit + 1 end
    w_max = math.max(w_max or -1, r.attempts)
  end
  w.max_attempt_count = w_max
  local locks = rows_of(S, "SELECT count(*) AS n, total(locked_until <= " .. now .. ") AS expired, total(locked_until <= "
    .. (now - CFG.stall) .. ") AS long_expired FROM instance_locks", "SELECT count(*) AS n, count(*) FILTER (WHERE"
    .. " locked_until <= " .. now .. ") AS expired, count(*) FILTER (WHERE locked_until <= " .. (now - CFG.stall)
    .. ") AS long_expired FROM instance_locks")[1]
  o.expired_locks = math.tointeger(locks.expired)
  return {
    orchestrator = o, worker = w, rows = e.rows, pending_timers = e.pending_timers, overdue = e.overdue,
    worker_rows = wrows, oldest_visible = oldest_visible, worker_oldest = w_oldest, oldest_timer = oldest_timer,
    next_timer = next_timer, long_expired_locks = math.tointeger(locks.long_expired),
  }
end

-- The history events that record a consumed orchestrator message.
local CONSUMED = { "OrchestrationStarted", "ActivityCompleted", "ActivityFailed", "TimerFired", "ExternalEvent",
                   "ExternalEventPersistent", "SubOrchestrationCompleted", "SubOrchestrationFailed",
                   "OrchestrationCancelRequested" }

local function close(a, b)
  if a == nil or b == nil then return a == b end
  return math.abs(a - b) <= 1e-6 * math.max(1, math.abs(b))
end

for _, S in ipairs(STORES) do
  describe("metrics on the " .. S.name, function()
    local dx = assert(durox.open(S.url, { readonly = true }))
    local sys = S.oracle.systemMetrics
    local depths = S.oracle.queueDepths
    local rows = S.pg and H.pg_instance_rows(S.pg) or H.instance_rows(S.db)
    local types = type_counts(S)

    describe("get_runtime_metrics", function()
      local before = durox.now()
      local m = assert(dx:get_runtime_metrics { now = S.now })
      local after = durox.now()

      it("agrees with Duroxide's getSystemMetrics on every field they share", function()
        assert.are.equal(sys.totalInstances, m.total_instances_started)
        assert.are.equal(sys.completedInstances, m.total_instances_completed)
        assert.are.equal(sys.failedInstances, m.total_instances_failed)
        assert.are.equal(sys.runningInstances, m.active_instances)
        assert.are.equal(sys.totalExecutions, m.total_executions)
        assert.are.equal(sys.totalEvents, m.total_history_events)
      end)

      it("counts activities, timers and events from history", function()
        assert.are.equal(types.ActivityCompleted + types.ActivityFailed, m.total_activities_executed)
        assert.are.equal(types.TimerFired, m.total_timers_fired)
        assert.are.equal(types.ExternalEvent + types.ExternalEventPersistent, m.total_events_raised)
        assert.is_true(m.total_activities_executed > 0)
      end)

      it("averages instance durations as defined", function()
        local n, sum, cans, unknown = 0, 0, 0, 0
        for _, r in ipairs(rows) do
          local d = H.instance_duration(r)
          if d then n, sum = n + 1, sum + d end
          if r.status == "ContinuedAsNew" then cans = cans + 1 end
          if r.status == "Unknown" then unknown = unknown + 1 end
        end
        assert.is_true(n > 0)
        assert.are.equal(n, m.durations_counted)
        assert.is_true(close(m.average_orchestration_duration_ms, sum / n),
          ("%s vs %s"):format(m.average_orchestration_duration_ms, sum / n))
        assert.are.equal(cans, m.continued_as_new_instances)
        assert.are.equal(unknown, m.unknown_instances)
      end)

      it("classifies failures by kind", function()
        assert.are.same(failure_kinds(S), m.failed_by_kind)
      end)

      it("dates the store by its first migration and reports the last activity", function()
        local created = rows_of(S, "SELECT " .. ms("min(installed_on)") .. " AS t FROM _sqlx_migrations",
          "SELECT " .. pgms("min(applied_at)") .. " AS t FROM _duroxide_migrations")[1].t
        assert.are.equal(created, m.store_created_at)
        assert.are.equal((S.now - created) // 1000, m.uptime_seconds)
        -- PostgreSQL has no rowid: its runtime stamps instances.updated_at with its clock at every
        -- turn it acknowledges, so the latest is when it last wrote (docs/metrics.md)
        local last = rows_of(S, "SELECT json_extract(event_data, '$.timestamp_ms') AS t FROM history ORDER BY rowid DESC"
          .. " LIMIT 1", "SELECT " .. pgms("max(updated_at)") .. " AS t FROM instances")[1].t
        local lock = rows_of(S, "SELECT max(locked_at) AS t FROM instance_locks")[1].t
        assert.are.equal(math.max(last, lock or last), m.last_activity_at)
      end)

      it("judges the dispatchers from the queues", function()
        local q = expected_queues(S, S.now)
        assert.are.equal(q.orchestrator.stalled, m.stalled_orchestrator_items)
        assert.are.equal(q.worker.stalled, m.stalled_worker_items)
        assert.are.equal(q.overdue, m.overdue_timers)
        assert.are.equal(q.long_expired_locks, m.expired_instance_locks)
        assert.are.equal(q.orchestrator.orphans_blocking, m.blocking_orphan_items)
        assert.are.equal(q.orchestrator.stalled == 0 and q.long_expired_locks == 0 and q.orchestrator.orphans_blocking == 0,
          m.orchestrator_dispatcher_healthy)
        assert.are.equal(q.worker.stalled == 0, m.worker_dispatcher_healthy)
        assert.are.equal(q.overdue == 0, m.timer_dispatcher_healthy)
        -- collected_at is when the store was read, whatever `now` the judgement assumed
        assert.is_true(m.collected_at >= before and m.collected_at <= after)
      end)
    end)

    describe("get_queue_metrics", function()
      local m = assert(dx:get_queue_metrics { now = S.now })
      local q = expected_queues(S, S.now)

      it("agrees with Duroxide's getQueueDepths where the figures correspond", function()
        if S.pg then
          -- Duroxide's PostgreSQL provider counts rows visible now and not held by a live lock:
          -- in our terms the available ones. The oracle ran when the store was made; in the
          -- quiet scenario store nothing changes state between then and S.now (its timer is an
          -- hour away), in the busy store locks expire in between, so only the first compares.
          assert.are.equal(0, depths.timerQueue)
          if S.static then
            assert.are.equal(depths.orchestratorQueue, m.orchestrator.available)
            assert.are.equal(depths.workerQueue, m.worker.available)
          end
          return
        end
        -- Duroxide's SQLite provider counts rows whose lock_token IS NULL: it includes pending
        -- timers and backed-off rows and excludes rows that carry a stale token. Our rows with a
        -- NULL token are exactly its figure.
        assert.are.equal(depths.orchestratorQueue, m.orchestrator.unlocked_rows)
        assert.are.equal(depths.workerQueue, m.worker.unlocked_rows)
        -- its timerQueue is hard-coded to 0: pending timers live in the orchestrator queue
        assert.are.equal(0, depths.timerQueue)
        assert.are.equal(q.pending_timers, m.timer_queue_size)
        -- so its orchestrator figure = our orchestrator + timer sizes, minus every row that
        -- carries a token (held by a live lock or stale)
        local tokens = H.rows("SELECT count(*) AS n FROM orchestrator_queue WHERE lock_token IS NOT NULL", S.db)[1].n
        assert.are.equal(depths.orchestratorQueue, m.orchestrator_queue_size + m.timer_queue_size - tokens)
      end)

      it("sizes and ages the queues as defined", function()
        assert.are.equal(q.rows - q.pending_timers, m.orchestrator_queue_size)
        assert.are.equal(q.worker_rows, m.worker_queue_size)
        assert.are.equal(q.oldest_visible and S.now - q.oldest_visible, m.orchestrator_queue_oldest_item_age_ms)
        assert.are.equal(q.worker_oldest and S.now - q.worker_oldest, m.worker_queue_oldest_item_age_ms)
        assert.are.equal(q.oldest_timer and S.now - q.oldest_timer, m.timer_queue_oldest_item_age_ms)
        assert.are.equal(q.next_timer, m.next_timer_at)
        assert.are.equal(q.overdue, m.overdue_timers)
      end)

      it("details every queue's state", function()
        assert.are.same(q.orchestrator, m.orchestrator)
        assert.are.same(q.worker, m.worker)
      end)

      it("derives processed items and processing time from history", function()
        local orch = 0
        for _, t in ipairs(CONSUMED) do orch = orch + types[t] end
        assert.are.equal(orch, m.orchestrator_items_processed)
        assert.are.equal(types.ActivityCompleted + types.ActivityFailed, m.worker_items_processed)
        assert.are.equal(orch + m.worker_items_processed, m.total_items_processed)
        local rt = rows_of(S, [[
          SELECT count(*) AS n, total(json_extract(c.event_data, '$.timestamp_ms')
            - json_extract(s.event_data, '$.timestamp_ms')) AS sum
          FROM history c JOIN history s ON s.instance_id = c.instance_id AND s.execution_id = c.execution_id
            AND s.event_id = json_extract(c.event_data, '$.source_event_id') AND s.event_type = 'ActivityScheduled'
          WHERE c.event_type IN ('ActivityCompleted', 'ActivityFailed')]], [[
          SELECT count(*) AS n, sum((c.event_data::json->>'timestamp_ms')::int8
            - (s.event_data::json->>'timestamp_ms')::int8) AS sum
          FROM history c JOIN history s ON s.instance_id = c.instance_id AND s.execution_id = c.execution_id
            AND s.event_id = (c.event_data::json->>'source_event_id')::int8
            AND s.event_data::json->>'type' = 'ActivityScheduled'
          WHERE c.event_data::json->>'type' IN ('ActivityCompleted', 'ActivityFailed')]])[1]
        assert.is_true(rt.n > 0)
        assert.are.equal(rt.n, m.activity_round_trips)
        assert.is_true(close(m.average_processing_time_ms, rt.sum / rt.n))
      end)

      it("reports the thresholds it used", function()
        assert.are.same({ stall_threshold_ms = CFG.stall, timer_overdue_ms = CFG.overdue, max_attempts = CFG.max,
                          near_poison_attempts = CFG.near }, m.thresholds)
      end)
    end)

    describe("get_orchestration_metrics", function()
      local list = assert(dx:get_orchestration_metrics())

      local function expected(merge)
        local groups, order = {}, {}
        for _, r in ipairs(rows) do
          local key = r.name .. "\0" .. ((not merge and r.version) or "")
          local g = groups[key]
          if not g then
            g = { orchestration_name = r.name, version = (not merge) and r.version or nil, total_started = 0,
                  total_completed = 0, total_failed = 0, active_count = 0, continued_as_new = 0, unknown = 0,
                  durations_counted = 0, sum = 0 }
            groups[key] = g
            order[#order + 1] = key
          end
          g.total_started = g.total_started + 1
          if r.status == "Completed" then g.total_completed = g.total_completed + 1 end
          if r.status == "Failed" then g.total_failed = g.total_failed + 1 end
          if r.status == "Running" then g.active_count = g.active_count + 1 end
          if r.status == "ContinuedAsNew" then g.continued_as_new = g.continued_as_new + 1 end
          if r.status == "Unknown" then g.unknown = g.unknown + 1 end
          local d = H.instance_duration(r)
          if d then g.durations_counted, g.sum = g.durations_counted + 1, g.sum + d end
        end
        table.sort(order)
        local out = {}
        for i, key in ipairs(order) do
          local g = groups[key]
          local done = g.total_completed + g.total_failed
          if g.durations_counted > 0 then g.average_duration_ms = g.sum / g.durations_counted end
          if done > 0 then
            g.success_rate = g.total_completed / done
            g.failure_rate = g.total_failed / done
          end
          g.sum = nil
          out[i] = g
        end
        return out
      end

      local function same_rows(exp, got)
        assert.are.equal(#exp, #got)
        for i, e in ipairs(exp) do
          local g = got[i]
          for k, v in pairs(e) do
            if type(v) == "number" and math.type(v) == "float" then
              assert.is_true(close(g[k], v), ("%s.%s: %s vs %s"):format(e.orchestration_name, k, g[k], v))
            else
              assert.are.equal(v, g[k], e.orchestration_name .. "." .. k)
            end
          end
          for k in pairs(g) do assert(e[k] ~= nil, "unexpected field " .. k) end
        end
      end

      it("has one row per orchestration name and version, as computed from the store", function()
        same_rows(expected(false), list)
      end)

      it("merges versions on request", function()
        same_rows(expected(true), assert(dx:get_orchestration_metrics { merge_versions = true }))
      end)

      it("sums to the runtime totals", function()
        local m = assert(dx:get_runtime_metrics())
        local started, done = 0, 0
        for _, o in ipairs(list) do
          started = started + o.total_started
          done = done + o.durations_counted
        end
        assert.are.equal(m.total_instances_started, started)
        assert.are.equal(m.durations_counted, done)
      end)
    end)

    describe("get_provider_diagnostics", function()
      local d = assert(dx:get_provider_diagnostics { fresh = true })

      it("counts what the store holds", function()
        assert.are.equal(S.pg and "postgres" or "sqlite", d.provider_type)
        assert.is_true(d.connection_healthy)
        assert.are.equal(sys.totalInstances, d.total_instances_stored)
        assert.are.equal(sys.totalEvents, d.total_history_events)
        assert.are.equal(sys.totalExecutions, d.total_executions_stored)
        local c = rows_of(S, "SELECT (SELECT count(*) FROM orchestrator_queue) AS o, (SELECT count(*) FROM worker_queue) AS w")[1]
        assert.are.equal(c.o, d.orchestrator_queue_rows)
        assert.are.equal(c.w, d.worker_queue_rows)
        assert.are.equal("wal", d.journal_mode)
      end)

      it("sizes the storage as pages plus the WAL", function()
        if S.pg then
          -- PostgreSQL: the runtime's schema's tables with their indexes and TOAST, as the
          -- server sizes them; its WAL belongs to the whole cluster
          local b = H.psql("SELECT sum(pg_total_relation_size(format('%I.%I', schemaname, tablename)::regclass))::int8"
            .. " AS b FROM pg_tables WHERE schemaname = 'dx'", S.pg)[1].b
          assert.are.equal(b, d.storage_size_bytes)
          assert.is_nil(d.wal_size_bytes)
          return
        end
        local p = H.rows("SELECT page_count * page_size AS b FROM pragma_page_count(), pragma_page_size()", S.db)[1].b
        local f = io.open(S.db .. "-wal", "rb")
        local wal = f and f:seek("end") or nil
        if f then f:close() end
        assert.are.equal(p + (wal or 0), d.storage_size_bytes)
        assert.are.equal(wal, d.wal_size_bytes)
      end)

      it("measures this handle's own reads", function()
        assert.is_true(d.read_calls > 0)
        assert.is_true(d.average_read_latency_ms > 0 and d.average_read_latency_ms <= d.max_read_latency_ms)
        -- a read-only handle writes nothing
        assert.are.equal(0, d.write_calls)
        assert.is_nil(d.average_write_latency_ms)
        assert(dx:list_instances_paginated { page_size = 5 })
        local d2 = assert(dx:get_provider_diagnostics { fresh = true })
        assert.is_true(d2.read_calls > d.read_calls)
      end)
    end)
  end)
end

for _, P in ipairs(H.providers()) do
describe("metrics configuration on " .. P.name, function()
  -- statements run by the handle so far (a fresh diagnostics call runs the same ones each time)
  local function reads(dx) return assert(dx:get_provider_diagnostics { fresh = true }).read_calls end

  it("caches results for cache_ttl_seconds and recomputes on request", function()
    local dx = P.open({ readonly = true, config = { cache_ttl_seconds = 3600 } })
    local a = assert(dx:get_runtime_metrics())
    local r1 = reads(dx)
    local r2 = reads(dx)
    local b = assert(dx:get_runtime_metrics()) -- from the cache: no statement runs
    local r3 = reads(dx)
    assert.are.equal(r2 - r1, r3 - r2)
    assert.are.equal(a.collected_at, b.collected_at)
    -- uptime is the store's age now: it may tick between the two calls
    assert.is_true(b.uptime_seconds - a.uptime_seconds <= 1)
    a.uptime_seconds, b.uptime_seconds = nil, nil
    assert.are.same(a, b)
    local c = assert(dx:get_runtime_metrics { fresh = true })
    assert.is_true(reads(dx) - r3 > r3 - r2)
    assert.is_true(c.collected_at >= a.collected_at)
    dx:close()
  end)

  it("does not cache with cache_ttl_seconds = 0", function()
    local dx = P.open({ readonly = true, config = { cache_ttl_seconds = 0 } })
    local r1 = reads(dx)
    local r2 = reads(dx)
    assert(dx:get_queue_metrics())
    local r3 = reads(dx)
    assert(dx:get_queue_metrics())
    local r4 = reads(dx)
    -- every call reads the store (the second reads only what history gained: nothing here)
    assert.is_true(r3 - r2 > r2 - r1)
    assert.is_true(r4 - r3 > r2 - r1)
    dx:close()
  end)

  it("fails every metric call clearly when enable_metrics is false", function()
    local dx = P.open({ readonly = true, config = { enable_metrics = false } })
    for _, call in ipairs({ "get_runtime_metrics", "get_queue_metrics", "get_provider_diagnostics",
                            "get_orchestration_metrics", "get_time_series_metrics" }) do
      local r, msg, code = dx[call](dx)
      assert.is_nil(r)
      assert.are.equal("metrics are disabled (enable_metrics = false in the ManagementConfig)", msg)
      assert.are.equal("DENIED", code)
    end
    -- analytics are not metrics
    assert(dx:query_instances { group_by = "Status" })
    dx:config { enable_metrics = true }
    assert(dx:get_runtime_metrics())
    dx:close()
  end)

  it("uses the configured thresholds", function()
    local dx = P.open({ readonly = true, config = { stall_threshold_ms = 1, max_attempts = 3, near_poison_attempts = 1 } })
    local q = assert(dx:get_queue_metrics { now = durox.now() })
    assert.are.same({ stall_threshold_ms = 1, timer_overdue_ms = 60000, max_attempts = 3, near_poison_attempts = 1 },
      q.thresholds)
    dx:close()
  end)

  it("validates the thresholds", function()
    local dx = P.open({ readonly = true })
    assert.has_error(function() dx:config { near_poison_attempts = 11 } end,
      "config field 'near_poison_attempts' out of range (1 to max_attempts, 10), got 11")
    assert.has_error(function() dx:config { max_attempts = 0 } end,
      "config field 'max_attempts' out of range (1 to 2147483647), got 0")
    assert.has_error(function() dx:config { max_attempts = 3 } end,
      "config field 'max_attempts' out of range (near_poison_attempts, 5, or more), got 3")
    assert.has_error(function() dx:config { stall_threshold = 5 } end,
      "unknown config field 'stall_threshold' (did you mean 'stall_threshold_ms'?)")
    assert.are.equal(10, dx:config().max_attempts)
    dx:close()
  end)
end)

describe("configuration files on " .. P.name, function()
  local function write(text)
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
    return path
  end

  it("reads a file that returns a table", function()
    local path = write("return { cache_ttl_seconds = 30, enable_metrics = false, stall_threshold_ms = 120000 }\n")
    local dx = assert(durox.open(P.url, { readonly = true, config_file = path }))
    local c = dx:config()
    assert.are.equal(30, c.cache_ttl_seconds)
    assert.is_false(c.enable_metrics)
    assert.are.equal(120000, c.stall_threshold_ms)
    dx:close()
    os.remove(path)
  end)

  it("reads a file of assignments, and options.config overrides it", function()
    local path = write("-- ops settings\nmax_list_instances = 500\nmax_attempts = 20\n")
    local dx = assert(durox.open(P.url, { readonly = true, config_file = path,
                                                       config = { max_list_instances = 50 } }))
    local c = dx:config()
    assert.are.equal(50, c.max_list_instances)
    assert.are.equal(20, c.max_attempts)
    dx:close()
    os.remove(path)
  end)

  it("refuses bad files with nil, message, INVALID", function()
    local cases = {
      { "return { cache_ttl = 1 }",
        "configuration file %s: unknown config field 'cache_ttl' (did you mean 'cache_ttl_seconds'?)" },
      { "return { max_list_instances = 'many' }",
        "configuration file %s: config field 'max_list_instances' expects an integer, got 'many'" },
      -- checked on the full integer: 2^32 + 5 is out of range, never 5
      { "return { max_list_instances = 4294967301 }",
        "configuration file %s: config field 'max_list_instances' out of range (1 to 2147483647), got 4294967301" },
      { "return 42", "configuration file %s: returns a number (expected a table, or nothing and assignments)" },
      { "x = ", nil },
      { "os.exit(1)", nil },
      { "while true do end", nil },
    }
    for _, c in ipairs(cases) do
      local path = write(c[1])
      local dx, msg, code = durox.open(P.url, { readonly = true, config_file = path })
      assert.is_nil(dx)
      assert.are.equal("INVALID", code)
      if c[2] then assert.are.equal(c[2]:format(path), msg) else assert.is_truthy(msg:find(path, 1, true)) end
      os.remove(path)
    end
    -- a binary file: one printable line, never its raw bytes
    local dx0, msg0, code0 = durox.open(P.url, { readonly = true, config_file = H.db })
    assert.is_nil(dx0)
    assert.are.equal("INVALID", code0)
    assert.are.equal(("cannot read configuration file: %s is not a text file (it contains NUL bytes)"):format(H.db),
      msg0)
    local junk = write("\255\254\27[2J = 1\n")
    dx0, msg0, code0 = durox.open(P.url, { readonly = true, config_file = junk })
    assert.is_nil(dx0)
    assert.are.equal("INVALID", code0)
    assert.is_nil(msg0:find("[%c\128-\255]"), msg0)
    assert.truthy(msg0:find("<\\255>", 1, true), msg0)
    os.remove(junk)
    local big = write(("-- x\n"):rep(300000))
    dx0, msg0 = durox.open(P.url, { readonly = true, config_file = big })
    assert.are.equal(("cannot read configuration file: %s is larger than 1 MB"):format(big), msg0)
    os.remove(big)
    local dx, msg, code = durox.open(P.url, { config_file = "/nonexistent/durox.conf" })
    assert.is_nil(dx)
    assert.are.equal("INVALID", code)
    assert.are.equal("cannot read configuration file: cannot open /nonexistent/durox.conf: No such file or directory",
      msg)
  end)
end)
end
