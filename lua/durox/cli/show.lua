-- durox.cli.show: `duroxlua show ID`, a readable view of one instance (get_instance_details):
-- summary, input/output, executions, the current execution's pending work, statistics.
-- Run by the dispatcher (durox.cli).
local args = require "durox.cli.args"
local format = require "durox.format"

local M = {}

M.summary = "show one instance: summary, executions, pending work, statistics"

M.options = {
  { section = "Output" },
  { "full", short = "f", help = "show input, output and errors in full (default: first 200 characters)" },
  { "wide", short = "w", help = "do not truncate table cells to the terminal width" },
}

M.arguments = { { "ID", missing = "instance id" } }

M.help = args.help("duroxlua show [options] ID",
  "Shows the instance ID: its summary (times in UTC, with how long ago), error and failure\n" ..
  "kind when it failed, custom status, input and output, its executions, what its current\n" ..
  "execution waits for (activities, timers, events, sub-orchestrations) and its statistics.\n" ..
  "With --json: the get_instance_details table.",
  M.options)

local PREVIEW = 200

-- A payload for display: one line cut to PREVIEW characters, or all of it with --full.
local function payload(text, full)
  if full then return text end
  local line = format.oneline(text)
  if format.len(line) <= PREVIEW then return line end
  return ("%s (%d bytes; --full shows all)"):format(format.truncate(line, PREVIEW), #text)
end

-- "2024-01-31T12:00:00Z (3m ago)", or "-".
local function when(ms, now)
  if ms == nil then return "-" end
  return ("%s (%s)"):format(format.iso(ms), format.relative(ms, now))
end

-- Appends aligned "Label:  value" lines for the pairs (nil values are skipped).
local function fields(out, pairs_)
  local width = 0
  for _, p in ipairs(pairs_) do
    if p[2] ~= nil then width = math.max(width, #p[1] + 1) end
  end
  for _, p in ipairs(pairs_) do
    if p[2] ~= nil then
      local value = tostring(p[2]):gsub("\n", "\n" .. (" "):rep(width + 2))
      out[#out + 1] = ("%-" .. width .. "s  %s"):format(p[1] .. ":", value)
    end
  end
end

-- Appends a titled, indented table (nothing when rows is empty).
local function section_table(out, title, columns, rows, width)
  if #rows == 0 then return end
  out[#out + 1] = ""
  out[#out + 1] = title
  local text = format.table(columns, rows, width and width - 2)
  for line in text:gmatch("([^\n]*)\n") do out[#out + 1] = "  " .. line end
end

-- Appends an indented payload block under a title (nothing when text is nil).
local function block(out, title, text, full)
  if text == nil then return end
  out[#out + 1] = ""
  out[#out + 1] = title
  for line in (payload(text, full) .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = "  " .. line end
end

local EXEC_COLUMNS = {
  { title = "ID", align = "right" },
  { title = "STATUS", min = 14 },
  { title = "STARTED", min = 24 },
  { title = "COMPLETED", min = 24 },
  { title = "EVENTS", align = "right" },
  { title = "CAN INPUT", min = 9 },
}
local ACTIVITY_COLUMNS = {
  { title = "ID", align = "right" },
  { title = "NAME", max = 30, min = 8 },
  { title = "SCHEDULED", min = 20 },
  { title = "TAG", max = 16 },
  { title = "SESSION", max = 20 },
  { title = "INPUT", min = 5 },
}
local TIMER_COLUMNS = {
  { title = "ID", align = "right" },
  { title = "FIRES AT", min = 20 },
  { title = "DELAY", min = 5 },
  { title = "DUE", min = 3 },
}
local EVENT_COLUMNS = {
  { title = "ID", align = "right" },
  { title = "NAME", max = 40, min = 8 },
  { title = "KIND", min = 5 },
  { title = "SUBSCRIBED", min = 20 },
}
local CHILD_COLUMNS = {
  { title = "ID", align = "right" },
  { title = "INSTANCE", max = 50, min = 12 },
  { title = "NAME", max = 30, min = 8 },
  { title = "SCHEDULED", min = 20 },
}

-- A measured time: "0.3ms", "250ms", "1.46s", else a compact duration.
local function elapsed(ms)
  if ms < 10 and ms ~= math.floor(ms) then return ("%.1fms"):format(ms) end
  if ms < 1000 then return ("%dms"):format(math.floor(ms + 0.5)) end
  if ms < 60000 then return ("%.2fs"):format(ms / 1000) end
  return format.duration(ms)
end

-- "in 59m" for a timer not yet due, "overdue by 3s" for one past its time.
local function due(fire_at, now)
  if fire_at >= now then return "in " .. format.duration(fire_at - now) end
  return "overdue by " .. format.duration(now - fire_at)
end

-- The text rendering of a details table.
function M.render(d, now, full, width)
  local s = d.summary
  local out = {}
  local parent
  if s.parent_instance then
    parent = format.oneline(s.parent_instance) .. (s.parent_id and (" (event %d)"):format(s.parent_id) or "")
  end
  local custom
  if s.custom_status then
    custom = ("%s (version %d)"):format(payload(s.custom_status, full), s.custom_status_version or 0)
  end
  fields(out, {
    { "Instance", format.oneline(s.instance_id) },
    { "Name", format.oneline(s.orchestration_name or "-") },
    { "Version", s.version and format.oneline(s.version) or "-" },
    { "Status", format.status_text(s) },
    { "Error", s.error and payload(s.error, full) },
    { "Custom status", custom },
    { "Parent", parent },
    { "Created", when(s.created_at, now) },
    { "Updated", when(s.updated_at, now) },
    { "Completed", s.completed_at and when(s.completed_at, now) },
    { "Executions", s.execution_count },
  })
  block(out, "Input:", d.input, full)
  block(out, "Output:", d.output, full)

  local rows = {}
  for i, e in ipairs(d.executions or {}) do
    rows[i] = {
      tostring(e.execution_id), e.status, format.iso_ms(e.started_at), format.iso_ms(e.completed_at),
      tostring(e.event_count), e.continue_as_new_reason and payload(e.continue_as_new_reason, false) or "-",
    }
  end
  section_table(out, "Executions:", EXEC_COLUMNS, rows, width)

  local cur = d.current_execution
  out[#out + 1] = ""
  if not cur then
    out[#out + 1] = "Current execution: not stored"
  else
    out[#out + 1] = ("Current execution %d (%s): %s completed, %d failed%s"):format(
      cur.execution_id, cur.status, format.count(cur.completed_activities, "activity", "activities"),
      cur.failed_activities,
      cur.buffered_queue_messages > 0
        and ("; %s buffered"):format(format.count(cur.buffered_queue_messages, "queue message"))
        or "")
    rows = {}
    for i, a in ipairs(cur.pending_activities) do
      rows[i] = {
        tostring(a.correlation_id), format.oneline(a.name), when(a.scheduled_at, now),
        a.tag and format.oneline(a.tag) or "-", a.session_id and format.oneline(a.session_id) or "-",
        a.input and payload(a.input, false) or "-",
      }
    end
    section_table(out, "Pending activities:", ACTIVITY_COLUMNS, rows, width)
    rows = {}
    for i, t in ipairs(cur.pending_timers) do
      rows[i] = { tostring(t.correlation_id), format.iso(t.fire_at), format.duration(t.delay_ms), due(t.fire_at, now) }
    end
    section_table(out, "Pending timers:", TIMER_COLUMNS, rows, width)
    rows = {}
    for i, e in ipairs(cur.pending_events) do
      rows[i] = { tostring(e.correlation_id), format.oneline(e.name), e.kind, when(e.subscribed_at, now) }
    end
    section_table(out, "Waiting for events:", EVENT_COLUMNS, rows, width)
    rows = {}
    for i, c in ipairs(cur.pending_sub_orchestrations) do
      rows[i] = { tostring(c.correlation_id), format.oneline(c.instance_id), format.oneline(c.name), when(c.scheduled_at, now) }
    end
    section_table(out, "Pending sub-orchestrations:", CHILD_COLUMNS, rows, width)
    if cur.status == "Running" and #cur.pending_activities + #cur.pending_timers + #cur.pending_events
        + #cur.pending_sub_orchestrations == 0 then
      out[#out + 1] = "Pending work: none"
    end
  end

  local st = d.statistics
  if st then
    out[#out + 1] = ""
    out[#out + 1] = "Statistics:"
    local stats = {}
    fields(stats, {
      { "Activities", ("%d scheduled, %d completed, %d failed"):format(
        st.total_activities_scheduled, st.total_activities_completed, st.total_activities_failed) },
      { "Timers", ("%d scheduled, %d fired"):format(st.total_timers_scheduled, st.total_timers_fired) },
      { "Events", ("%d subscribed, %d received"):format(st.total_events_subscribed, st.total_events_received) },
      { "Sub-orchestrations", st.total_sub_orchestrations },
      { "History", ("%s in %s (average turn %s)"):format(format.count(st.total_history_events, "event"),
        format.count(st.total_turns, "turn"), elapsed(st.average_turn_duration_ms)) },
      { "Execution time", elapsed(st.total_execution_time_ms) },
    })
    for _, line in ipairs(stats) do out[#out + 1] = "  " .. line end
  end
  return table.concat(out, "\n") .. "\n"
end

-- Runs `duroxlua show ID`.
function M.run(a, ctx)
  local dx, code = ctx:open()
  if not dx then return code end
  local d
  d, code = ctx:call("get_instance_details", a[1])
  if not d then return code end
  if ctx.json then
    ctx:print_json(d)
  else
    ctx:out(M.render(d, ctx.now, a.full, ctx:width()))
  end
  return 0
end

return M
