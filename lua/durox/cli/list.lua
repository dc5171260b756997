-- durox.cli.list: `duroxlua list`, instances matching filter flags (one per filter field, and --query)
-- as an aligned table, a page at a time (--page-token) or all of them streamed (--all).
-- Run by the dispatcher (durox.cli); uses the handle's list_instances_paginated/instances.
local durox = require "durox"
local args = require "durox.cli.args"
local filters = require "durox.cli.filters"
local format = require "durox.format"
local output = require "durox.cli.output"

local M = {}

M.summary = "list instances (newest first) with filters and paging"

M.options = filters.spec(filters.OPTIONS, {
  { section = "Paging and order" },
  { "limit", short = "n", arg = "N", type = "count", min = 1, max = 1000000, help = "page size (default 50)" },
  { "page-token", arg = "TOKEN", help = "continue after a previous page (same filters and order)" },
  { "order", arg = "KEY", choices = { "created", "updated", "id", "name" },
    help = "created (default), updated, id or name" },
  { "asc", group = "dir", help = "ascending (default for id and name)" },
  { "desc", group = "dir", help = "descending (default for created and updated)" },
  { "all", help = "stream every match instead of one page" },
  { "count", help = "also count all matches" },
  { section = "Output" },
  output.OPTION,
  { "ids", help = "print only the instance ids, one per line" },
  { "wide", short = "w", help = "do not truncate cells to the terminal width" },
})

M.arguments = {}

M.help = args.help("duroxlua list [options]",
  "Lists the instances of the store that match every filter given, newest first, one page\n" ..
  "at a time. A page ends with the token of the next one; pass it with the same filters\n" ..
  "and order. With --json: {\"instances\": [...], \"next_page_token\": ..., \"total_count\": ...};\n" ..
  "--format jsonl prints one summary per line, --format csv one row per instance.\n" ..
  "\n" ..
  "--query takes the query language (docs/query-language.md), for example\n" ..
  "  --query \"status IN ('Failed','Running') AND name STARTS_WITH 'Order' AND created_at > now() - 1h\"\n" ..
  "Fields: status, failure_kind, orchestration_name (name), version, instance_id (id),\n" ..
  "parent_instance (parent), has_parent, created_at, updated_at, completed_at, custom_status,\n" ..
  "execution_count, text. Operators: = != < <= > >= IN, NOT IN, BETWEEN x AND y, STARTS_WITH,\n" ..
  "LIKE, CONTAINS, IS [NOT] NULL, with AND, OR, NOT and parentheses. Quote text and times.",
  M.options)

local DEFAULT_LIMIT = 50
local ORDER = { created = "CreatedAt", updated = "UpdatedAt", id = "InstanceId", name = "OrchestrationName" }

-- The filter table for the parsed options (shared with the other commands: durox.cli.filters).
M.filter = filters.filter

M.COLUMNS = format.SUMMARY_COLUMNS

-- The CSV columns of an instance summary (every field of InstanceSummary).
M.CSV = { { "instance_id" }, { "orchestration_name" }, { "version" }, { "status" }, { "failure_kind" },
          { "created_at" }, { "updated_at" }, { "completed_at" }, { "execution_count" }, { "parent_instance" },
          { "custom_status" }, { "error" } }

-- Prints one page (the paginated request) as a table or JSON; returns the exit code.
local function list_page(a, ctx, filter)
  local res, code = ctx:call("list_instances_paginated", {
    filter = filter,
    page_size = a.limit or DEFAULT_LIMIT,
    page_token = a.page_token,
    order_by = ORDER[a.order or "created"],
    direction = a.asc and "asc" or a.desc and "desc" or nil,
    total_count = a.count or nil,
  })
  if not res then return code end
  local items = res.instances
  if a.ids then
    for _, s in ipairs(items) do ctx:out(s.instance_id .. "\n") end
    return 0
  end
  ctx:emit {
    doc = { instances = items, next_page_token = res.next_page_token or durox.null,
            total_count = res.total_count or durox.null },
    records = items,
    columns = M.CSV,
    text = function()
      local rows = {}
      for i, s in ipairs(items) do rows[i] = format.summary_cells(s) end
      local text = #rows > 0 and format.table(M.COLUMNS, rows, ctx:width()) or ""
      local shown = res.total_count
          and ("%d of %s shown"):format(#items, format.count(res.total_count, "instance"))
          or format.count(#items, "instance") .. " shown"
      if res.next_page_token then
        shown = ("%s; more with --page-token %s"):format(shown, res.next_page_token)
      end
      return text .. shown .. "\n"
    end,
  }
  if #items == 0 then filters.name_hint(ctx, a) end
  return 0
end

local STREAM_BATCH = 256

-- Streams every match (the iterator) as a table, ids or one JSON document; returns the
-- exit code. The table's column widths come from the first batch of rows (with --wide a
-- longer cell later is printed whole, out of line).
local function list_all(a, ctx, filter)
  local ok, iter, state, init, closer = pcall(ctx.dx.instances, ctx.dx, filter, {
    order_by = ORDER[a.order or "created"],
    direction = a.asc and "asc" or a.desc and "desc" or nil,
    batch_size = STREAM_BATCH,
  })
  if not ok then return ctx:fail(tostring(iter):gsub("^[^:\n]+:%d+: ", ""), 2) end
  if iter == nil then return ctx:fail(state or "failed", closer) end
  local n = 0
  local width = ctx:width()
  local pending, widths = {}, nil
  -- prints the buffered rows, fixing the column widths on the first call
  local function flush()
    if not widths then
      if #pending == 0 then return end
      widths = format.layout(M.COLUMNS, pending, width)
      ctx:out(format.header(M.COLUMNS, widths) .. "\n")
    end
    for _, row in ipairs(pending) do ctx:out(format.row(M.COLUMNS, widths, row, width == nil) .. "\n") end
    pending = {}
  end
  local fmt = ctx.format
  if fmt == "json" then ctx:out('{\n  "instances": [') end
  if fmt == "csv" then ctx:out((output.csv(M.CSV, {}))) end
  for s in iter, state, init, closer do
    n = n + 1
    if a.ids then
      ctx:out(s.instance_id .. "\n")
    elseif fmt == "json" then
      ctx:out((n > 1 and ",\n    " or "\n    ") .. output.json(s):gsub("\n$", ""):gsub("\n", "\n    "))
    elseif fmt == "jsonl" then
      ctx:out(output.jsonl { s })
    elseif fmt == "csv" then
      ctx:out((output.csv(M.CSV, { s }):gsub("^[^\n]*\n", "")))
    else
      pending[#pending + 1] = format.summary_cells(s)
      if #pending >= STREAM_BATCH then flush() end
    end
  end
  if a.ids then return 0 end
  if fmt == "json" then
    ctx:out(("%s],\n  \"next_page_token\": null,\n  \"total_count\": %d\n}\n"):format(n > 0 and "\n  " or "", n))
  elseif fmt == "table" then
    flush()
    ctx:out(format.count(n, "instance") .. " shown\n")
  end
  if n == 0 then filters.name_hint(ctx, a) end
  return 0
end

-- Runs `duroxlua list`.
function M.run(a, ctx)
  if a.all and a.page_token then return ctx:fail("options '--all' and '--page-token' cannot be combined", 2) end
  local dx, code = ctx:open()
  if not dx then return code end
  local filter = M.filter(a)
  if a.all then return list_all(a, ctx, filter) end
  return list_page(a, ctx, filter)
end

return M
