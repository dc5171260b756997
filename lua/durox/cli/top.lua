-- durox.cli.top: `duroxlua top`, a live overview that refreshes until interrupted (Ctrl-C):
-- dispatcher health, instance totals, queues and the busiest orchestration types, from the
-- metrics calls (through the handle's metrics cache). --once / --iterations N make it finite
-- for scripts and tests. Run by the dispatcher (durox.cli).
local durox = require "durox"
local args = require "durox.cli.args"
local format = require "durox.format"
local queues = require "durox.cli.queues"
local report = require "durox.report"

local M = {}

M.summary = "live overview of health, instances, queues and orchestration types (refreshing)"

M.options = {
  { section = "Refresh" },
  { "interval", short = "i", arg = "D", help = "time between refreshes, e.g. 2s, 500ms (default 2s)" },
  { "iterations", short = "n", arg = "N", type = "count", min = 1, help = "stop after N refreshes" },
  { "once", help = "print one overview and exit (same as -n 1)" },
  { "no-clear", help = "do not clear the screen between refreshes" },
  { "top", arg = "N", type = "count", min = 1, max = 1000, help = "orchestration types shown (default 10)" },
  { "now", arg = "T", type = "time", help = "judge health and ages as of time T (every refresh)" },
  { "wide", short = "w", help = "do not truncate table cells to the terminal width" },
}

M.help = args.help("duroxlua top [-i D] [-n N | --once] [--top N]",
  "Shows a refreshing overview of the store: dispatcher health, instance totals, the queues and\n" ..
  "the orchestration types with the most running instances. It refreshes every --interval\n" ..
  "until interrupted (Ctrl-C), or N times with --iterations, or once with --once. Figures come\n" ..
  "through the handle's metrics cache, so a refresh shorter than cache_ttl_seconds may show\n" ..
  "the same figures (the header tells their age). With --json: one JSON object per refresh,\n" ..
  "one per line ({\"runtime\", \"queues\", \"orchestrations\"}).",
  M.options)

local TYPE_COLUMNS = {
  { title = "ORCHESTRATION", max = 32, min = 10 },
  { title = "VERSION", max = 12, shrink = 2 },
  { title = "RUNNING", align = "right" },
  { title = "STARTED", align = "right" },
  { title = "FAILED", align = "right" },
  { title = "SUCCESS", align = "right" },
  { title = "AVG DURATION", align = "right" },
}

function M.frame(store, rt, q, types, now, n, width, top)
  local out = {}
  out[#out + 1] = ("duroxlua top - %s - %s (figures %s old) - refresh %d"):format(format.oneline(store),
    format.iso(now), format.duration(math.max(0, now - rt.collected_at)), n)
  out[#out + 1] = ("health: orchestrator %s, worker %s, timers %s"):format(
    report.health(rt.orchestrator_dispatcher_healthy), report.health(rt.worker_dispatcher_healthy),
    report.health(rt.timer_dispatcher_healthy))
  out[#out + 1] = ("instances: %s running, %s completed, %s failed of %s; average duration %s"):format(
    report.int(rt.active_instances), report.int(rt.total_instances_completed), report.int(rt.total_instances_failed),
    report.int(rt.total_instances_started), report.ms(rt.average_orchestration_duration_ms))
  out[#out + 1] = ("activity: %s activities, %s timers fired, %s events raised; last activity %s"):format(
    report.int(rt.total_activities_executed), report.int(rt.total_timers_fired), report.int(rt.total_events_raised),
    rt.last_activity_at and format.relative(rt.last_activity_at, now) or "-")
  out[#out + 1] = ""
  out[#out + 1] = (queues.render(q, now, width):gsub("\n$", ""))
  local sorted = {}
  for i, t in ipairs(types) do sorted[i] = t end
  table.sort(sorted, function(a, b)
    if a.active_count ~= b.active_count then return a.active_count > b.active_count end
    if a.total_started ~= b.total_started then return a.total_started > b.total_started end
    return a.orchestration_name < b.orchestration_name
  end)
  local rows = {}
  for i = 1, math.min(top or 10, #sorted) do
    local t = sorted[i]
    rows[i] = { format.oneline(t.orchestration_name), t.version and format.oneline(t.version) or "-",
                report.int(t.active_count), report.int(t.total_started), report.int(t.total_failed),
                report.rate(t.success_rate), report.ms(t.average_duration_ms) }
  end
  if #rows > 0 then
    out[#out + 1] = ""
    out[#out + 1] = (format.table(TYPE_COLUMNS, rows, width):gsub("\n$", ""))
  end
  return table.concat(out, "\n") .. "\n"
end

-- Sleeps ms; returns false when interrupted (Ctrl-C reaches the sleep child first).
local function sleep(ms)
  local ok, how = os.execute(("sleep %.3f"):format(ms / 1000))
  return ok == true or how == "exit"
end

function M.run(a, ctx)
  if a[1] then return ctx:fail(("unexpected argument '%s'"):format(a[1]), 2) end
  local interval = 2000
  if a.interval then
    local ms = a.interval:match("^%d+$") and tonumber(a.interval) or nil
    if not ms then
      local t = durox.parse_time("+" .. a.interval, 0)
      ms = t
    end
    if not ms or ms < 100 then return ctx:fail(("bad --interval '%s' (e.g. 500ms, 2s, 1m; at least 100ms)"):format(a.interval), 2) end
    interval = ms
  end
  local iterations = a.once and 1 or a.iterations
  local dx, code = ctx:open()
  if not dx then return code end
  local clear = not a.no_clear and not ctx.json and iterations ~= 1 and os.execute("test -t 1")
  local n = 0
  local ok, err = pcall(function()
    while true do
      n = n + 1
      local rt, q, types
      local at = a.now and { now = a.now } or nil
      rt, code = ctx:call("get_runtime_metrics", at)
      if not rt then return end
      q, code = ctx:call("get_queue_metrics", at)
      if not q then return end
      types, code = ctx:call("get_orchestration_metrics")
      if not types then return end
      code = 0
      local now = a.now and durox.parse_time(a.now) or durox.now()
      if ctx.json then
        ctx:out(durox.encode_json({ runtime = rt, queues = q, orchestrations = types }) .. "\n")
      else
        if clear then ctx:out("\27[H\27[2J") end
        ctx:out(M.frame(ctx.store_url, rt, q, types, now, n, ctx:width(), a.top))
        if not clear and (not iterations or n < iterations) then ctx:out("\n") end
      end
      io.stdout:flush()
      if iterations and n >= iterations then return end
      if not sleep(interval) then return end
    end
  end)
  if not ok then
    if tostring(err):find("interrupted!", 1, true) then return 0 end
    error(err, 0)
  end
  return code
end

return M
