-- durox.cli.series: `duroxlua series`, metrics over time (get_time_series_metrics) drawn in the
-- terminal: a sparkline per series, a bar chart of one series, or the numbers per bucket.
-- Buckets come from durable timestamps, so any past window works. Run by the dispatcher.
local durox = require "durox"
local args = require "durox.cli.args"
local format = require "durox.format"
local report = require "durox.report"

local M = {}

M.summary = "metrics over time as a terminal chart (started, completed, failed, activities, durations)"

local SERIES = { "instances_started", "instances_completed", "instances_failed", "instances_cancelled",
                 "activities_completed", "activities_failed", "average_duration_ms" }

M.options = {
  { section = "Window" },
  { "from", arg = "T", type = "time",
    help = "window start (default: when the store was created, at most metrics_retention_hours back)" },
  { "to", arg = "T", type = "time", help = "window end (default: now)" },
  { "bucket", short = "b", arg = "D", help = "bucket size, e.g. 1m, 15m, 1h, 1d (default: at most 60 buckets)" },
  { "name", arg = "NAME", help = "only instances of this orchestration" },
  { "series", short = "s", arg = "S", multi = true, split = true,
    help = "series to show, of: " .. table.concat(SERIES, ", ") .. " (repeatable; a,b; default: all)" },
  { section = "Output" },
  { "chart", short = "c", arg = "S", choices = SERIES, help = "draw S as a bar chart" },
  { "height", arg = "N", type = "count", min = 2, max = 50, help = "height of the bar chart in lines (default 8)" },
  { "table", short = "t", help = "print the numbers of every bucket" },
  { "ascii", help = "ASCII characters only" },
}

M.arguments = {}

M.help = args.help("duroxlua series [--from T] [--to T] [-b D] [--name N] [-s S,...] [-c S] [-t]",
  "Shows the store's activity over a window (get_time_series_metrics): instances started\n" ..
  "(instances.created_at), completed, failed and cancelled (their terminal events), activities\n" ..
  "completed and failed (history events), and the average duration of the instances that ended\n" ..
  "in each bucket. Buckets are aligned to multiples of their size since the epoch (UTC). By\n" ..
  "default one sparkline per series; --chart draws one series as bars, --table prints numbers.\n" ..
  "Without --from the window starts when the store was created (at most metrics_retention_hours\n" ..
  "ago), and the bucket is chosen so that the window has at most 60 of them.\n" ..
  "With --json: the TimeSeriesResponse table.",
  M.options)

local function value(b, s)
  return b[s]
end

-- Merges adjacent buckets by k (sums; averages weighted by their counts).
local function merge(buckets, k, series)
  if k <= 1 then return buckets end
  local out = {}
  for i = 1, #buckets, k do
    local m = { start = buckets[i].start, durations_counted = 0 }
    local dsum = 0
    for j = i, math.min(i + k - 1, #buckets) do
      local b = buckets[j]
      for _, s in ipairs(series) do
        if s ~= "average_duration_ms" and b[s] then m[s] = (m[s] or 0) + b[s] end
      end
      if b.average_duration_ms then
        dsum = dsum + b.average_duration_ms * b.durations_counted
        m.durations_counted = m.durations_counted + b.durations_counted
      end
    end
    if m.durations_counted > 0 then m.average_duration_ms = dsum / m.durations_counted end
    out[#out + 1] = m
  end
  return out
end

local function fmt_total(s, t)
  if s == "average_duration_ms" then return report.ms(t.average_duration_ms) end
  return report.int(t[s])
end

function M.render(res, opts, width)
  local series = res.series
  width = width or 120
  local name_w = 0
  for _, s in ipairs(series) do name_w = math.max(name_w, #s) end
  local out = {}
  out[#out + 1] = ("%s .. %s, %s per bucket%s"):format(format.iso(res.from), format.iso(res.to),
    format.duration(res.bucket_ms), res.orchestration_name and (", orchestration " .. format.oneline(res.orchestration_name)) or "")
  if opts.table then
    local cols = { { title = "BUCKET", min = 20 } }
    for _, s in ipairs(series) do
      cols[#cols + 1] = { title = s:gsub("_ms$", ""):gsub("_", " "):upper(), align = "right" }
    end
    local rows = {}
    for i, b in ipairs(res.buckets) do
      local row = { format.iso(b.start) }
      for _, s in ipairs(series) do
        row[#row + 1] = s == "average_duration_ms" and report.ms(b[s]) or report.int(b[s])
      end
      rows[i] = row
    end
    out[#out + 1] = (format.table(cols, rows, nil):gsub("\n$", ""))
  end
  -- sparklines
  local avail = math.max(10, width - name_w - 30)
  local k = math.ceil(#res.buckets / avail)
  local buckets = merge(res.buckets, k, series)
  if k > 1 then out[#out + 1] = ("(%d buckets per column)"):format(k) end
  if not opts.table then
    out[#out + 1] = ""
    for _, s in ipairs(series) do
      local values, max = {}, 0
      for i, b in ipairs(buckets) do
        values[i] = value(b, s) or 0
        max = math.max(max, values[i])
      end
      local maxtext = s == "average_duration_ms" and report.ms(max) or report.int(max)
      out[#out + 1] = ("%s  %s  total %s, max %s"):format(format.pad(s, name_w), report.sparkline(values, opts.ascii),
        fmt_total(s, res.totals), maxtext)
    end
  end
  if opts.chart then
    local values = {}
    for i, b in ipairs(buckets) do values[i] = value(b, opts.chart) or 0 end
    out[#out + 1] = ""
    out[#out + 1] = opts.chart .. ":"
    local lines, label_w = report.bars(values, opts.height or 8, opts.ascii)
    for _, l in ipairs(lines) do out[#out + 1] = l end
    local axis = (" "):rep(label_w) .. (opts.ascii and " +" or " └") .. (opts.ascii and "-" or "─"):rep(#values)
    out[#out + 1] = axis
    local first = format.iso(buckets[1].start)
    local last = format.iso(buckets[#buckets].start)
    local gap = math.max(1, #values + 2 - #first - #last)
    out[#out + 1] = (" "):rep(label_w + 2) .. first .. (" "):rep(gap) .. last
  end
  return table.concat(out, "\n") .. "\n"
end

function M.run(a, ctx)
  local dx, code = ctx:open()
  if not dx then return code end
  local req = { from = a.from, to = a.to, bucket = a.bucket, name = a.name, series = a.series }
  if not a.from then
    -- a young store: the window starts when it was created, so its buckets are fine enough
    -- to show something (the engine then picks at most 60 buckets for the window)
    local ok, rt = pcall(dx.get_runtime_metrics, dx) -- quietly: the series call reports failures
    if not ok then rt = nil end
    local to = a.to and durox.parse_time(a.to) or ctx.now
    local retention = dx:config().metrics_retention_hours * 3600000
    if rt and rt.store_created_at and rt.store_created_at < to and to - rt.store_created_at < retention then
      req.from = rt.store_created_at
    end
  end
  if a.chart and a.series then
    local found = false
    for _, s in ipairs(a.series) do found = found or s == a.chart end
    if not found then req.series[#req.series + 1] = a.chart end
  end
  local res
  res, code = ctx:call("get_time_series_metrics", req)
  if not res then return code end
  if ctx.json then
    ctx:print_json(res)
  else
    ctx:out(M.render(res, { chart = a.chart, height = a.height, table = a.table, ascii = a.ascii }, ctx:width()))
  end
  return 0
end

return M
