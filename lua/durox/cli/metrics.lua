-- durox.cli.metrics: `duroxlua metrics`, the runtime's health and totals
-- (get_runtime_metrics), the orchestration types (get_orchestration_metrics) and the store
-- (get_provider_diagnostics). Run by the dispatcher (durox.cli).
local args = require "durox.cli.args"
local format = require "durox.format"
local report = require "durox.report"

local M = {}

M.summary = "runtime health and totals, orchestration types, store diagnostics"

M.options = {
  { section = "Options" },
  { "now", arg = "T", type = "time", help = "judge health as of time T (default: now)" },
  { "fresh", help = "recompute instead of using the handle's metrics cache" },
  { "merge-versions", help = "one row per orchestration name instead of per (name, version)" },
  { "wide", short = "w", help = "do not truncate table cells to the terminal width" },
  { "format", arg = "F", choices = { "table", "text", "json", "prometheus" },
    help = "table or text (default), json (as --json) or prometheus (the text exposition format 0.0.4)" },
  { "out", arg = "FILE", help = "with --format prometheus: write FILE atomically instead of stdout (node_exporter's textfile collector)" },
}

M.arguments = {}

M.help = args.help("duroxlua metrics [options]",
  "Shows the runtime's totals and dispatcher health as the store shows them\n" ..
  "(get_runtime_metrics), one row per orchestration name and version\n" ..
  "(get_orchestration_metrics) and the store's size, counts and this process's measured\n" ..
  "read/write latency (get_provider_diagnostics). Every figure is defined in docs/metrics.md.\n" ..
  "With --format prometheus: the gauges of docs/streams.md in the Prometheus text format\n" ..
  "(what `duroxlua exporter` serves); --out FILE replaces FILE atomically, for node_exporter's\n" ..
  "textfile collector.\n" ..
  "With --json: {\"runtime\": ..., \"orchestrations\": [...], \"provider\": ...}.",
  M.options)

local TYPE_COLUMNS = {
  { title = "ORCHESTRATION", max = 32, min = 10 },
  { title = "VERSION", max = 12, shrink = 2 },
  { title = "STARTED", align = "right" },
  { title = "RUNNING", align = "right" },
  { title = "COMPLETED", align = "right" },
  { title = "FAILED", align = "right" },
  { title = "SUCCESS", align = "right" },
  { title = "AVG DURATION", align = "right" },
}

-- The text of the three results.
function M.render(rt, types, prov, now, width)
  local out = {}
  out[#out + 1] = "Runtime (as of " .. format.iso(rt.collected_at) .. "):"
  report.fields(out, {
    { "Instances", ("%s started, %s running, %s completed, %s failed"):format(report.int(rt.total_instances_started),
      report.int(rt.active_instances), report.int(rt.total_instances_completed), report.int(rt.total_instances_failed)) },
    { "Failures by kind", (function()
      local parts = {}
      for _, k in ipairs({ "application", "cancelled", "poison", "nondeterminism", "infrastructure", "configuration" }) do
        if (rt.failed_by_kind[k] or 0) > 0 then parts[#parts + 1] = ("%s %s"):format(report.int(rt.failed_by_kind[k]), k) end
      end
      return #parts > 0 and table.concat(parts, ", ") or nil
    end)() },
    { "Activities executed", report.int(rt.total_activities_executed) },
    { "Timers fired", report.int(rt.total_timers_fired) },
    { "Events raised", report.int(rt.total_events_raised) },
    { "Average duration", ("%s (over %s finished instances)"):format(report.ms(rt.average_orchestration_duration_ms),
      report.int(rt.durations_counted)) },
    { "Executions", report.int(rt.total_executions) },
    { "History events", report.int(rt.total_history_events) },
    { "Store created", rt.store_created_at and ("%s (uptime %s)"):format(format.iso(rt.store_created_at),
      format.duration(rt.uptime_seconds * 1000)) or "-" },
    { "Last activity", rt.last_activity_at and ("%s (%s)"):format(format.iso(rt.last_activity_at),
      format.relative(rt.last_activity_at, now)) or "-" },
  }, "  ")
  out[#out + 1] = ""
  out[#out + 1] = "Dispatchers:"
  report.fields(out, {
    { "Orchestrator", ("%s (%d stalled, %d expired locks, %d blocking orphans)"):format(
      report.health(rt.orchestrator_dispatcher_healthy), rt.stalled_orchestrator_items, rt.expired_instance_locks,
      rt.blocking_orphan_items) },
    { "Worker", ("%s (%d stalled)"):format(report.health(rt.worker_dispatcher_healthy), rt.stalled_worker_items) },
    { "Timers", ("%s (%d overdue)"):format(report.health(rt.timer_dispatcher_healthy), rt.overdue_timers) },
  }, "  ")
  if #types > 0 then
    out[#out + 1] = ""
    out[#out + 1] = "Orchestrations:"
    local rows = {}
    for i, t in ipairs(types) do
      rows[i] = { format.oneline(t.orchestration_name), t.version and format.oneline(t.version) or "-",
                  report.int(t.total_started), report.int(t.active_count), report.int(t.total_completed),
                  report.int(t.total_failed), report.rate(t.success_rate), report.ms(t.average_duration_ms) }
    end
    local text = format.table(TYPE_COLUMNS, rows, width and width - 2)
    for line in text:gmatch("([^\n]*)\n") do out[#out + 1] = "  " .. line end
  end
  out[#out + 1] = ""
  out[#out + 1] = "Store:"
  report.fields(out, {
    { "Provider", ("%s %s (schema %s, %s)"):format(prov.provider_type, format.oneline(prov.location or "-"),
      prov.schema_version or "-", prov.connection_healthy and "connection ok"
        or ("connection FAILED: " .. format.oneline(prov.health_error or "?"))) },
    { "Size", prov.storage_size_bytes and ("%s (WAL %s)"):format(report.bytes(prov.storage_size_bytes),
      report.bytes(prov.wal_size_bytes or 0)) or "-" },
    { "Rows", ("%s instances, %s executions, %s history events, %s + %s queued"):format(
      report.int(prov.total_instances_stored), report.int(prov.total_executions_stored),
      report.int(prov.total_history_events), report.int(prov.orchestrator_queue_rows), report.int(prov.worker_queue_rows)) },
    { "Read latency", ("%s average over %s statements"):format(report.ms(prov.average_read_latency_ms),
      report.int(prov.read_calls)) },
    { "Write latency", prov.write_calls > 0 and ("%s average over %s statements"):format(
      report.ms(prov.average_write_latency_ms), report.int(prov.write_calls)) or "- (no writes by this process)" },
  }, "  ")
  return table.concat(out, "\n") .. "\n"
end

-- Runs `duroxlua metrics`.
function M.run(a, ctx)
  if a.out and a.format ~= "prometheus" then return ctx:fail("--out needs --format prometheus", 2) end
  if a.format == "json" then ctx.json = true end
  local dx, code = ctx:open()
  if not dx then return code end
  if a.format == "prometheus" then
    if a.now then return ctx:fail("--now cannot be used with --format prometheus", 2) end
    local prom = require "durox.prometheus"
    local text, err = prom.collect(dx, { fresh = a.fresh })
    if not text then return ctx:fail(err) end
    if not a.out then
      ctx:out(text)
      return 0
    end
    local ok, werr = require("durox.cli.follow").write_atomic(a.out, text, "output file")
    if not ok then return ctx:fail(werr) end
    return 0
  end
  local opts = { now = a.now, fresh = a.fresh or nil }
  local rt, types, prov
  rt, code = ctx:call("get_runtime_metrics", opts)
  if not rt then return code end
  types, code = ctx:call("get_orchestration_metrics", { fresh = a.fresh or nil, merge_versions = a.merge_versions or nil })
  if not types then return code end
  prov, code = ctx:call("get_provider_diagnostics", { fresh = a.fresh or nil })
  if not prov then return code end
  if ctx.json then
    ctx:print_json { runtime = rt, orchestrations = types, provider = prov }
  else
    local now = a.now and require("durox").parse_time(a.now) or ctx.now
    ctx:out(M.render(rt, types, prov, now, ctx:width()))
  end
  return 0
end

return M
