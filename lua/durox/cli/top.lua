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

M.arguments = {}

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

local QUEUE_COLUMNS = {
  { title = "QUEUE", min = 6 },
  { title = "SIZE", align = "right" },
  { title = "OLDEST", align = "right" },
  { title = "AVAILABLE", align = "right" },
  { title = "BUSY", align = "right" },
  { title = "WAITING", align = "right" },
  { title = "STALLED", align = "right" },
  { title = "NEAR POISON", align = "right" },
}

-- s cut to width display columns (nil: no limit).
local function fit(s, width)
  if width == nil then return s end
  return format.truncate(s, width)
end

-- The store's text in at most max columns: the middle elided.
local function short_store(store, max)
  store = format.oneline(store)
  if format.width(store) <= max or max < 8 then return store end
  local keep = max - 1
  local head = keep // 3
  return store:sub(1, head) .. format.ELLIPSIS .. store:sub(#store - (keep - head) + 1)
end

-- The queue table: one row per queue, columns dropped from the right when narrow.
local function queue_lines(q, width)
  local o, w = q.orchestrator, q.worker
  local rows = {
    { "orchestrator", report.int(q.orchestrator_queue_size), report.age(q.orchestrator_queue_oldest_item_age_ms),
      report.int(o.available), report.int(o.in_progress), report.int(o.waiting_on_lock), report.int(o.stalled),
      report.int(o.near_poison) },
    { "worker", report.int(q.worker_queue_size), report.age(q.worker_queue_oldest_item_age_ms),
      report.int(w.available), report.int(w.in_progress), "-", report.int(w.stalled), report.int(w.near_poison) },
    { "timers", report.int(q.timer_queue_size), report.age(q.timer_queue_oldest_item_age_ms), "-", "-", "-", "-", "-" },
  }
  local cols = QUEUE_COLUMNS
  if width then
    -- keep the columns that fit (each at least its title plus a gap)
    local used, n = 0, 0
    for i, c in ipairs(cols) do
      local cw = #c.title
      for _, r in ipairs(rows) do cw = math.max(cw, format.width(r[i])) end
      if used + cw + (i > 1 and 2 or 0) > width then break end
      used, n = used + cw + (i > 1 and 2 or 0), i
    end
    if n < #cols then
      cols = table.move(cols, 1, math.max(n, 1), 1, {})
      for i, r in ipairs(rows) do rows[i] = table.move(r, 1, #cols, 1, {}) end
    end
  end
  local out = {}
  for line in format.table(cols, rows, width):gmatch("([^\n]*)\n") do out[#out + 1] = fit(line, width) end
  return out
end

--[[ One frame of top as text. width, height: the terminal's (nil: no limit; then at most
  `top` orchestration types). It never has more than height lines nor lines wider than
  width: the orchestration types take the rows left. footer: a last line (key help). ]]
function M.frame(store, rt, q, types, now, n, width, top, height, footer)
  local out = {}
  local tail = (" - %s - refresh %d"):format(format.iso(now), n)
  local head = "duroxlua top - "
  out[#out + 1] = head .. short_store(store, (width or 1000) - #head - #tail) .. tail
  out[#out + 1] = ("health: orchestrator %s, worker %s, timers %s"):format(
    report.health(rt.orchestrator_dispatcher_healthy), report.health(rt.worker_dispatcher_healthy),
    report.health(rt.timer_dispatcher_healthy))
  out[#out + 1] = ("instances: %s running, %s completed, %s failed of %s; average duration %s"):format(
    report.int(rt.active_instances), report.int(rt.total_instances_completed), report.int(rt.total_instances_failed),
    report.int(rt.total_instances_started), report.ms(rt.average_orchestration_duration_ms))
  out[#out + 1] = ("activity: %s activities, %s timers, %s events; last %s; figures %s old"):format(
    report.int(rt.total_activities_executed), report.int(rt.total_timers_fired), report.int(rt.total_events_raised),
    rt.last_activity_at and format.relative(rt.last_activity_at, now) or "-",
    format.duration(math.max(0, now - rt.collected_at)))
  out[#out + 1] = ""
  for _, l in ipairs(queue_lines(q, width)) do out[#out + 1] = l end
  local o, w = q.orchestrator, q.worker
  out[#out + 1] = ("timers %d overdue; locks %d+%d expired; orphans %d (%d blocking); attempts up to %s"):format(
    q.overdue_timers, o.expired_locks, w.expired_locks, o.orphans, o.orphans_blocking,
    tostring(math.max(o.max_attempt_count or 0, w.max_attempt_count or 0)))
  local sorted = {}
  for i, t in ipairs(types) do sorted[i] = t end
  table.sort(sorted, function(a, b)
    if a.active_count ~= b.active_count then return a.active_count > b.active_count end
    if a.total_started ~= b.total_started then return a.total_started > b.total_started end
    return a.orchestration_name < b.orchestration_name
  end)
  -- the rows left for the types: blank + header + rows (+ footer)
  local room = top or (height and #sorted or 10)
  if height then room = math.min(room, height - #out - 2 - (footer and 1 or 0)) end
  local rows = {}
  for i = 1, math.min(math.max(room, 0), #sorted) do
    local t = sorted[i]
    rows[i] = { format.oneline(t.orchestration_name), t.version and format.oneline(t.version) or "-",
                report.int(t.active_count), report.int(t.total_started), report.int(t.total_failed),
                report.rate(t.success_rate), report.ms(t.average_duration_ms) }
  end
  if #rows > 0 then
    local cols = TYPE_COLUMNS
    if width and width < 50 then -- very narrow: name, running, failed
      cols = { TYPE_COLUMNS[1], TYPE_COLUMNS[3], TYPE_COLUMNS[5] }
      for i, r in ipairs(rows) do rows[i] = { r[1], r[3], r[5] } end
    elseif width and width < 70 then -- narrow: no version, no average duration
      cols = { TYPE_COLUMNS[1], TYPE_COLUMNS[3], TYPE_COLUMNS[4], TYPE_COLUMNS[5], TYPE_COLUMNS[6] }
      for i, r in ipairs(rows) do rows[i] = { r[1], r[3], r[4], r[5], r[6] } end
    end
    out[#out + 1] = ""
    for line in format.table(cols, rows, width):gmatch("([^\n]*)\n") do out[#out + 1] = line end
  end
  if footer then
    if height then
      while #out < height - 1 do out[#out + 1] = "" end
    end
    out[#out + 1] = footer
  end
  for i, l in ipairs(out) do out[i] = fit(l, width) end
  if height then
    -- a full screen: no newline after the last line, or the terminal scrolls it away
    if #out > height then out = table.move(out, 1, height, 1, {}) end
    return table.concat(out, "\n")
  end
  return table.concat(out, "\n") .. "\n"
end

-- Sleeps ms; returns false when interrupted (Ctrl-C reaches the sleep child first).
local function sleep(ms)
  local ok, how = os.execute(("sleep %.3f"):format(ms / 1000))
  return ok == true or how == "exit"
end

-- Waits up to ms for a key on the terminal (key mode on): "quit", "refresh" or nil (time up).
local function wait_key(term, ms)
  local deadline = durox.now() + ms
  while true do
    local left = deadline - durox.now()
    if left <= 0 then return nil end
    local k = term.getkey(math.min(left, 250))
    if k == "q" or k == "Q" or k == "\3" then return "quit" end
    if k == "r" or k == " " or k == "\f" then return "refresh" end
  end
end

function M.run(a, ctx)
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
  -- the header names the store: a PostgreSQL URL as the handle reports it (its password
  -- masked), never --store's own text; a SQLite URL has no password
  local info = dx:info()
  local where = info.provider == "sqlite" and ctx.store_url or info.location
  local ok_term, term = pcall(require, "durox.term")
  if not ok_term then term = nil end
  local live = not ctx.json and iterations ~= 1 and term ~= nil and term.size() ~= nil
  local clear = live and not a.no_clear
  local keys = live and not a.no_clear and durox.isatty("stdin") and term.keys(true)
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
        local width, height = ctx:width(), nil
        if live then
          local cols, lines = term.size()
          width, height = a.wide and nil or cols, lines
        end
        local footer = keys and ("q quit, r refresh; every %s"):format(format.duration(interval)) or nil
        if clear then ctx:out("\27[H\27[2J") end
        ctx:out(M.frame(where, rt, q, types, now, n, width, a.top, clear and height or nil, footer))
        if not clear and (not iterations or n < iterations) then ctx:out("\n") end
      end
      io.stdout:flush()
      if iterations and n >= iterations then return end
      if keys then
        if wait_key(term, interval) == "quit" then return end
      elseif not sleep(interval) then
        return
      end
    end
  end)
  if keys then term.keys(false) end
  if clear then ctx:out("\n") end
  if not ok then
    if tostring(err):find("interrupted!", 1, true) then return 0 end
    error(err, 0)
  end
  return code
end

return M
