-- durox.prometheus: the store's metrics in the Prometheus text exposition format 0.0.4, for
-- `duroxlua metrics --format prometheus` (and --out FILE for node_exporter's textfile
-- collector) and `duroxlua exporter`. Duroxide's own names where the meaning is the same as
-- the runtime's gauges (duroxide_orchestrator_queue_depth, duroxide_worker_queue_depth,
-- duroxide_active_orchestrations); duroxlua_ for the rest. Every family is a gauge: what the
-- store holds can go down (a purge), so no _total counters. No instance ids as labels.
-- docs/streams.md lists the families; `promtool check metrics` accepts the output.
local durox = require "durox"

local M = {}

-- A label value as the format escapes it.
local function esc(v)
  return (tostring(v):gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"'))
end

local function num(v)
  if v == nil then return nil end
  if v ~= v then return "NaN" end
  if math.type(v) == "integer" then return tostring(v) end
  if v == math.huge then return "+Inf" elseif v == -math.huge then return "-Inf" end
  for _, f in ipairs { "%.15g", "%.16g" } do -- the shortest text that reads back the same
    local t = f:format(v)
    if tonumber(t) == v then return t end
  end
  return ("%.17g"):format(v)
end

-- A collector of families: f = family(name, help); f(value [, labels]).
local function exposition()
  local out, seen = {}, {}
  local function family(name, help)
    assert(not seen[name], "family " .. name .. " twice")
    seen[name] = true
    out[#out + 1] = ("# HELP %s %s\n# TYPE %s gauge\n"):format(name, help:gsub("\\", "\\\\"):gsub("\n", " "), name)
    return function(value, labels)
      local v = num(value)
      if v == nil then return end
      local l = ""
      if labels then
        local keys = {}
        for k in pairs(labels) do keys[#keys + 1] = k end
        table.sort(keys)
        local parts = {}
        for _, k in ipairs(keys) do parts[#parts + 1] = ('%s="%s"'):format(k, esc(labels[k])) end
        l = "{" .. table.concat(parts, ",") .. "}"
      end
      out[#out + 1] = name .. l .. " " .. v .. "\n"
    end
  end
  return family, function() return table.concat(out) end
end

local STATUSES = { "Running", "Completed", "Failed", "ContinuedAsNew", "Unknown" }
local KINDS = { "application", "cancelled", "poison", "nondeterminism", "infrastructure", "configuration" }

-- The exposition of dx's store now, or nil and a message. opts.now: evaluate as of (ms).
function M.collect(dx, opts)
  opts = opts or {}
  local t0 = durox.now()
  local req = { fresh = opts.fresh }
  local rt, err = dx:get_runtime_metrics(req)
  if not rt then return nil, err end
  local q
  q, err = dx:get_queue_metrics(req)
  if not q then return nil, err end
  local types
  types, err = dx:get_orchestration_metrics { fresh = opts.fresh, merge_versions = true }
  if not types then return nil, err end
  local oldest
  oldest, err = dx:list_instances_paginated { filter = { status = "Running" }, order_by = "CreatedAt",
    direction = "asc", page_size = 1 }
  if not oldest then return nil, err end
  local stuck
  stuck, err = dx:find_stuck_instances {}
  if not stuck then return nil, err end
  local info = dx:info()
  local now = durox.now()

  local family, text = exposition()
  -- Duroxide's own gauges, with the meaning the runtime gives them (its provider's
  -- get_queue_depths and get_system_metrics().running_instances)
  local od, wd
  if info.provider == "sqlite" then
    od, wd = q.orchestrator.unlocked_rows, q.worker.unlocked_rows
  else
    od, wd = q.orchestrator.available + q.orchestrator.waiting_on_lock, q.worker.available
  end
  family("duroxide_orchestrator_queue_depth",
    "Orchestrator queue depth as Duroxide's provider reports it (get_queue_depths)")(od)
  family("duroxide_worker_queue_depth", "Worker queue depth as Duroxide's provider reports it (get_queue_depths)")(wd)
  family("duroxide_active_orchestrations", "Instances whose current execution is Running")(rt.active_instances)

  local f = family("duroxlua_instances", "Instances by orchestration name and the status of their current execution")
  for _, t in ipairs(types) do
    local name = t.orchestration_name
    f(t.active_count, { orchestration = name, status = "Running" })
    f(t.total_completed, { orchestration = name, status = "Completed" })
    f(t.total_failed, { orchestration = name, status = "Failed" })
    f(t.continued_as_new, { orchestration = name, status = "ContinuedAsNew" })
    f(t.unknown, { orchestration = name, status = "Unknown" })
  end
  f = family("duroxlua_instances_by_status", "Instances by the status of their current execution")
  local by_status = { Running = rt.active_instances, Completed = rt.total_instances_completed,
    Failed = rt.total_instances_failed, ContinuedAsNew = rt.continued_as_new_instances, Unknown = rt.unknown_instances }
  for _, s in ipairs(STATUSES) do f(by_status[s], { status = s }) end
  f = family("duroxlua_orchestration_failures", "OrchestrationFailed events in history, by failure kind")
  for _, k in ipairs(KINDS) do f(rt.failed_by_kind[k] or 0, { kind = k }) end
  family("duroxlua_instances_stored", "Instances rows in the store")(rt.total_instances_started)
  family("duroxlua_executions_stored", "Executions rows in the store")(rt.total_executions)
  family("duroxlua_history_events_stored", "History rows in the store")(rt.total_history_events)
  family("duroxlua_activities_executed", "ActivityCompleted and ActivityFailed events in history")(
    rt.total_activities_executed)
  family("duroxlua_timers_fired", "TimerFired events in history")(rt.total_timers_fired)
  family("duroxlua_events_raised", "ExternalEvent and ExternalEventPersistent events in history")(rt.total_events_raised)
  f = family("duroxlua_average_orchestration_duration_seconds", "Mean duration of finished instances, by orchestration")
  for _, t in ipairs(types) do
    if t.average_duration_ms then f(t.average_duration_ms / 1000, { orchestration = t.orchestration_name }) end
  end
  local age = oldest.instances[1] and math.max(0, now - oldest.instances[1].created_at) / 1000 or 0
  family("duroxlua_oldest_running_instance_age_seconds",
    "Age of the oldest instance whose current execution is Running (0 when none)")(age)
  f = family("duroxlua_stuck_instances", "Instances find_stuck_instances reports, by reason")
  local reasons = {}
  for _, s in ipairs(stuck.instances) do
    local seen = {}
    for _, r in ipairs(s.reasons) do
      if not seen[r.reason] then -- an instance counts once per reason
        seen[r.reason] = true
        reasons[r.reason] = (reasons[r.reason] or 0) + 1
      end
    end
  end
  local rnames = {}
  for r in pairs(reasons) do rnames[#rnames + 1] = r end
  table.sort(rnames)
  for _, r in ipairs(rnames) do f(reasons[r], { reason = r }) end
  family("duroxlua_stuck_instances_all", "Instances find_stuck_instances reports")(#stuck.instances)
  f = family("duroxlua_queue_items", "Queue rows by queue and state")
  for _, qn in ipairs { "orchestrator", "worker" } do
    local d = q[qn]
    for _, st in ipairs { "available", "in_progress", "waiting_on_lock", "delayed", "stalled", "near_poison" } do
      if d[st] ~= nil then f(d[st], { queue = qn, state = st }) end
    end
  end
  f(q.timer_queue_size, { queue = "timer", state = "pending" })
  f(q.overdue_timers, { queue = "timer", state = "overdue" })
  f = family("duroxlua_queue_oldest_item_age_seconds", "Age of the oldest visible item of a queue (0 when none)")
  f((q.orchestrator_queue_oldest_item_age_ms or 0) / 1000, { queue = "orchestrator" })
  f((q.worker_queue_oldest_item_age_ms or 0) / 1000, { queue = "worker" })
  f((q.timer_queue_oldest_item_age_ms or 0) / 1000, { queue = "timer" })
  f = family("duroxlua_dispatcher_healthy", "1 when the dispatcher shows no stalled work (docs/metrics.md)")
  f(rt.orchestrator_dispatcher_healthy and 1 or 0, { dispatcher = "orchestrator" })
  f(rt.worker_dispatcher_healthy and 1 or 0, { dispatcher = "worker" })
  f(rt.timer_dispatcher_healthy and 1 or 0, { dispatcher = "timer" })
  if rt.last_activity_at then
    family("duroxlua_last_activity_timestamp_seconds", "When the runtime last wrote history or took a lock")(
      rt.last_activity_at / 1000)
  end
  family("duroxlua_scrape_duration_seconds", "How long collecting these metrics took")((durox.now() - t0) / 1000)
  family("duroxlua_up", "1: the store answered")(1)
  return text()
end

-- The exposition of a failed scrape: duroxlua_up 0 and the duration.
function M.failed(t0)
  local family, text = exposition()
  family("duroxlua_scrape_duration_seconds", "How long collecting these metrics took")((durox.now() - t0) / 1000)
  family("duroxlua_up", "1: the store answered")(0)
  return text()
end

M.CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

return M
