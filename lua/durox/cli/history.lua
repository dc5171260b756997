-- durox.cli.history: `duroxlua history ID`, the history events of one execution of an
-- instance (get_execution_history_filtered) as a table with a one-line rendering of each
-- event's own fields, filtered by type, event id and time, paged. Run by durox.cli.
local durox = require "durox"
local args = require "durox.cli.args"
local format = require "durox.format"
local output = require "durox.cli.output"

local M = {}

M.summary = "show the history events of an instance's execution"

M.options = {
  { section = "Selection" },
  { "execution", short = "e", arg = "N", type = "count", min = 1, help = "execution N (default: the current one)" },
  { "type", short = "t", arg = "T", multi = true, split = true,
    help = "only events of type T, e.g. ActivityScheduled (repeatable, or a,b)" },
  { "from-id", arg = "N", type = "count", help = "from event id N (inclusive)" },
  { "to-id", arg = "N", type = "count", help = "to event id N (inclusive)" },
  { "since", arg = "T", type = "time", help = "events at or after T (ISO-8601, ms, or relative like -1h)" },
  { "until", arg = "T", type = "time", help = "events at or before T" },
  { section = "Paging" },
  { "limit", short = "n", arg = "N", type = "count", min = 1, max = 1000000, help = "page size (default: every event)" },
  { "page-token", arg = "TOKEN", help = "continue after a previous page (same selection)" },
  { section = "Output" },
  output.OPTION,
  { "no-payloads", help = "leave out inputs, results, outputs and error details" },
  { "full", short = "f", help = "show every field value in full (implies --wide)" },
  { "wide", short = "w", help = "do not truncate table cells to the terminal width" },
}

M.arguments = { { "ID", missing = "instance id" } }

M.help = args.help("duroxlua history [options] ID",
  "Shows the history of one execution of instance ID (the current one unless --execution),\n" ..
  "one event per line: id, time (UTC), type, the event it answers (SOURCE), and its own\n" ..
  "fields (name, input, result, ...).\n" ..
  "With --json: {\"events\": [...], \"execution_id\": N, \"next_page_token\": ...}; --format jsonl:\n" ..
  "one event per line; --format csv: event_id, timestamp_ms, event_type, source_event_id and\n" ..
  "the event's own fields as JSON (data).",
  M.options)

-- fields every event has (they have their own columns) or that only repeat the instance
local SKIP = {
  event_id = true, event_type = true, execution_id = true, timestamp_ms = true,
  source_event_id = true, instance_id = true, duroxide_version = true,
}
-- fields shown first, in this order; the others follow sorted by name
local FIRST = { "name", "instance", "version", "input", "result", "output", "data", "reason", "error", "details" }
local FIRST_RANK = {}
for i, k in ipairs(FIRST) do FIRST_RANK[k] = i end

local VALUE_MAX = 80

-- One field value on one line: a simple token bare, JSON text as it is, other strings
-- quoted, tables as compact JSON; cut to VALUE_MAX characters unless full.
function M.value(v, full)
  local text
  if type(v) == "table" then
    text = durox.encode_json(v)
  elseif type(v) == "string" then
    if v:match("^[%w_.:@/+-]+$") or durox.decode_json(v) ~= nil then
      text = format.oneline(v)
    else
      text = durox.encode_json(v)
    end
  else
    text = tostring(v)
  end
  if not full then text = format.truncate(text, VALUE_MAX) end
  return text
end

-- The DETAILS cell of an event: its own fields as key=value pairs (null values left out).
function M.details(e, full)
  local keys = {}
  for k, v in pairs(e) do
    if type(k) == "string" and not SKIP[k] and v ~= durox.null then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    local ra, rb = FIRST_RANK[a] or #FIRST + 1, FIRST_RANK[b] or #FIRST + 1
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. "=" .. M.value(e[k], full) end
  return table.concat(parts, " ")
end

M.COLUMNS = {
  { title = "EVENT", align = "right" },
  { title = "TIME", min = 24 },
  { title = "TYPE", max = 32, min = 12 },
  { title = "SOURCE", align = "right" },
  { title = "DETAILS", min = 7 },
}

-- The table cells of one event.
function M.cells(e, full)
  return {
    tostring(e.event_id), format.iso_ms(e.timestamp_ms), format.oneline(e.event_type or "?"),
    e.source_event_id and tostring(e.source_event_id) or "-", M.details(e, full),
  }
end

-- The time option text as ms, resolved against now; the second result is the option
-- again as an absolute ISO time when the text was relative (a page token is bound to the
-- resolved time, so the next page must repeat it absolutely), else nil.
local function resolve_time(name, text, now)
  if text == nil then return nil end
  local ms = durox.parse_time(text, now)
  if ms ~= durox.parse_time(text, now + 1) then
    return ms, ("--%s %s"):format(name, format.iso_ms(ms))
  end
  return ms
end

-- Runs `duroxlua history ID`.
function M.run(a, ctx)
  local since, since_abs = resolve_time("since", a["since"], ctx.now)
  local till, until_abs = resolve_time("until", a["until"], ctx.now)
  local dx, code = ctx:open()
  if not dx then return code end
  local res
  res, code = ctx:call("get_execution_history_filtered", {
    instance_id = a[1],
    execution_id = a.execution,
    event_types = a.type,
    from_event_id = a.from_id,
    to_event_id = a.to_id,
    from_time = since,
    to_time = till,
    page_size = a.limit,
    page_token = a.page_token,
    include_payloads = not a.no_payloads,
  })
  if not res then return code end
  if ctx.format ~= "table" then
    ctx:emit {
      doc = { events = res.events, execution_id = res.execution_id, next_page_token = res.next_page_token or durox.null },
      records = res.events,
      columns = { { "event_id" }, { "timestamp_ms" }, { "event_type" }, { "source_event_id" },
                  { "data", get = function(e)
                    local own = {}
                    for k, v in pairs(e) do if not SKIP[k] then own[k] = v end end
                    return next(own) and own or nil
                  end } },
    }
    return 0
  end
  local rows = {}
  for i, e in ipairs(res.events) do rows[i] = M.cells(e, a.full) end
  if #rows > 0 then ctx:out(format.table(M.COLUMNS, rows, not a.full and ctx:width() or nil)) end
  local footer = ("%s of execution %d"):format(format.count(#rows, "event"), res.execution_id)
  if res.next_page_token then
    footer = ("%s; more with --page-token %s"):format(footer, res.next_page_token)
    for _, abs in ipairs { since_abs or false, until_abs or false } do
      if abs then footer = footer .. " " .. abs end
    end
  end
  ctx:out(footer .. "\n")
  return 0
end

return M
