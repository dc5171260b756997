-- durox.cli.query: `duroxlua query`, instances grouped and aggregated by the store
-- (query_instances): counts, durations with percentiles, success and failure rates per
-- orchestration name, status, creation day or hour, parent or version, over the same filters
-- as `duroxlua list`. Run by the dispatcher (durox.cli).
local durox = require "durox"
local args = require "durox.cli.args"
local format = require "durox.format"
local list = require "durox.cli.list"
local output = require "durox.cli.output"
local report = require "durox.report"

local M = {}

M.summary = "group instances and aggregate them (counts, durations, percentiles, rates)"

-- the filter options of `duroxlua list`
local FILTERS = {}
for _, opt in ipairs(list.options) do
  if opt.section and opt.section ~= "Filters" then break end
  FILTERS[#FILTERS + 1] = opt
end

local GROUPS = { name = "OrchestrationName", status = "Status", day = "CreatedDate", hour = "CreatedHour",
                 parent = "ParentInstance", version = "Version" }
local AGGS = { count = "Count", avg = "AverageDuration", success = "SuccessRate", failure = "FailureRate",
               p50 = "P50Duration", p95 = "P95Duration", p99 = "P99Duration" }

M.options = {}
for _, opt in ipairs(FILTERS) do M.options[#M.options + 1] = opt end
for _, opt in ipairs({
  { section = "Grouping" },
  { "group-by", short = "g", arg = "F", multi = true, split = true,
    help = "name, status, day, hour, parent, version (repeatable; a,b; default: one group)" },
  { "aggregate", short = "a", arg = "A", multi = true, split = true,
    help = "count, avg, success, failure, p50, p95, p99 (repeatable; default: all)" },
  { "limit", short = "n", arg = "N", type = "count", min = 1, max = 1000000, help = "at most N groups (default 1000)" },
  { section = "Output" },
  output.OPTION,
  { "wide", short = "w", help = "do not truncate table cells to the terminal width" },
}) do M.options[#M.options + 1] = opt end

M.arguments = {}

M.help = args.help("duroxlua query [filters] [-g name,status,...] [-a count,avg,...] [-n N]",
  "Groups the instances that match the filters (the filters of 'duroxlua list') and computes\n" ..
  "the aggregates in the store (query_instances): count, average duration, success and failure\n" ..
  "rates (among finished instances) and nearest-rank duration percentiles. Groups come largest\n" ..
  "first. A duration runs from an instance's first start to the end of its current execution\n" ..
  "(docs/metrics.md). Group names also accept the API's: OrchestrationName, Status,\n" ..
  "CreatedDate, CreatedHour, ParentInstance, Version. With --json: the QueryResponse table;\n" ..
  "--format jsonl and csv: one record or row per group.",
  M.options)

local KEY_COLUMN = {
  OrchestrationName = { title = "NAME", max = 32, min = 8, field = "orchestration_name" },
  Status = { title = "STATUS", min = 6, field = "status" },
  CreatedDate = { title = "CREATED (DAY)", field = "created_date", day = true },
  CreatedHour = { title = "CREATED (HOUR)", field = "created_date" },
  ParentInstance = { title = "PARENT", max = 40, min = 6, shrink = 3, field = "parent_instance" },
  Version = { title = "VERSION", max = 12, field = "version" },
}
local AGG_COLUMN = {
  Count = { title = "COUNT", align = "right", cell = function(g) return report.int(g.count) end },
  AverageDuration = { title = "AVG", align = "right", cell = function(g) return report.ms(g.average_duration_ms) end },
  SuccessRate = { title = "SUCCESS", align = "right", cell = function(g) return report.rate(g.success_rate) end },
  FailureRate = { title = "FAILURE", align = "right", cell = function(g) return report.rate(g.failure_rate) end },
  P50Duration = { title = "P50", align = "right", cell = function(g) return report.ms(g.p50_duration_ms) end },
  P95Duration = { title = "P95", align = "right", cell = function(g) return report.ms(g.p95_duration_ms) end },
  P99Duration = { title = "P99", align = "right", cell = function(g) return report.ms(g.p99_duration_ms) end },
}

local function key_cell(col, v)
  if v == nil or v == durox.null then return col.field == "parent_instance" and "(root)" or "-" end
  if col.field == "created_date" then
    local iso = format.iso(v)
    return col.day and iso:sub(1, 10) or iso:sub(1, 13):gsub("T", " ") .. ":00"
  end
  return format.oneline(v)
end

function M.render(res, width)
  local columns, rows = {}, {}
  for _, g in ipairs(res.group_by) do columns[#columns + 1] = KEY_COLUMN[g] end
  for _, a in ipairs(res.aggregate) do columns[#columns + 1] = AGG_COLUMN[a] end
  for i, grp in ipairs(res.groups) do
    local row = {}
    for _, g in ipairs(res.group_by) do
      local col = KEY_COLUMN[g]
      row[#row + 1] = key_cell(col, grp[col.field])
    end
    for _, a in ipairs(res.aggregate) do row[#row + 1] = AGG_COLUMN[a].cell(grp) end
    rows[i] = row
  end
  local out = {}
  if #rows > 0 then out[1] = (format.table(columns, rows, width):gsub("\n$", "")) end
  out[#out + 1] = ("%s of %s%s"):format(format.count(res.total_groups, "group"),
    format.count(res.total_instances, "instance"),
    #res.groups < res.total_groups and (" (%d shown)"):format(#res.groups) or "")
  return table.concat(out, "\n") .. "\n"
end

-- Maps short names to the API's, or reports the unknown one.
local function names(list_, map, what, ctx)
  local out = {}
  for _, n in ipairs(list_ or {}) do
    local v = map[n:lower()]
    if not v then
      for _, full in pairs(map) do if full:lower() == n:lower() then v = full end end
    end
    if not v then return nil, ctx:fail(("unknown %s '%s'"):format(what, n), 2) end
    out[#out + 1] = v
  end
  return out
end

function M.run(a, ctx)
  local gb, code = names(a.group_by, GROUPS, "group field", ctx)
  if not gb then return code end
  local aggs
  aggs, code = names(a.aggregate, AGGS, "aggregate", ctx)
  if not aggs then return code end
  local dx
  dx, code = ctx:open()
  if not dx then return code end
  local res
  res, code = ctx:call("query_instances", { filter = list.filter(a), group_by = gb,
                                            aggregate = #aggs > 0 and aggs or nil, limit = a.limit })
  if not res then return code end
  local columns = {}
  for _, g in ipairs(res.group_by) do columns[#columns + 1] = { KEY_COLUMN[g].field } end
  for _, f in ipairs { "count", "average_duration_ms", "success_rate", "failure_rate", "p50_duration_ms",
                       "p95_duration_ms", "p99_duration_ms", "completed", "failed", "durations_counted" } do
    columns[#columns + 1] = { f }
  end
  ctx:emit { doc = res, records = res.groups, columns = columns, text = function() return M.render(res, ctx:width()) end }
  if #res.groups == 0 then require("durox.cli.filters").name_hint(ctx, a) end
  return 0
end

return M
