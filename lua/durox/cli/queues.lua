-- durox.cli.queues: `duroxlua queues`, the orchestrator, worker and timer queues
-- (get_queue_metrics): sizes, ages, what is in progress, stalled, delayed or near poison, and
-- the items processed so far. Run by the dispatcher (durox.cli).
local args = require "durox.cli.args"
local format = require "durox.format"
local report = require "durox.report"

local M = {}

M.summary = "queue sizes, ages, locks, stalled and near-poison items, throughput"

M.options = {
  { section = "Options" },
  { "now", arg = "T", type = "time", help = "evaluate as of time T (default: now)" },
  { "fresh", help = "recompute instead of using the handle's metrics cache" },
  { "wide", short = "w", help = "do not truncate table cells to the terminal width" },
}

M.arguments = {}

M.help = args.help("duroxlua queues [options]",
  "Shows the runtime's queues as the store holds them (get_queue_metrics): the orchestrator\n" ..
  "queue (without pending timers), the worker queue and the timers not yet due, with their\n" ..
  "oldest visible item, what is available, in progress, waiting on an instance lock, delayed\n" ..
  "(backoff), stalled (available at least stall_threshold_ms) and near or at the poison\n" ..
  "limit; then the items processed and the average activity round trip, from history.\n" ..
  "The thresholds are the ManagementConfig's (--config). With --json: the QueueMetrics table.",
  M.options)

local COLUMNS = {
  { title = "QUEUE", min = 12 },
  { title = "SIZE", align = "right" },
  { title = "OLDEST", align = "right" },
  { title = "AVAILABLE", align = "right" },
  { title = "IN PROGRESS", align = "right" },
  { title = "WAITING", align = "right" },
  { title = "DELAYED", align = "right" },
  { title = "STALLED", align = "right" },
  { title = "NEAR POISON", align = "right" },
  { title = "AT LIMIT", align = "right" },
}

function M.render(q, now, width)
  local o, w = q.orchestrator, q.worker
  local rows = {
    { "orchestrator", report.int(q.orchestrator_queue_size), report.age(q.orchestrator_queue_oldest_item_age_ms),
      report.int(o.available), report.int(o.in_progress), report.int(o.waiting_on_lock), report.int(o.delayed),
      report.int(o.stalled), report.int(o.near_poison), report.int(o.at_poison_limit) },
    { "worker", report.int(q.worker_queue_size), report.age(q.worker_queue_oldest_item_age_ms),
      report.int(w.available), report.int(w.in_progress), "-", report.int(w.delayed), report.int(w.stalled),
      report.int(w.near_poison), report.int(w.at_poison_limit) },
    { "timers", report.int(q.timer_queue_size), report.age(q.timer_queue_oldest_item_age_ms), "-", "-", "-", "-",
      "-", "-", "-" },
  }
  local out = { (format.table(COLUMNS, rows, width):gsub("\n$", "")) }
  out[#out + 1] = ""
  local t = q.thresholds
  report.fields(out, {
    { "Timers", ("%d pending, next due %s, %d overdue (due at least %s ago)"):format(q.timer_queue_size,
      q.next_timer_at and format.relative(q.next_timer_at, now) or "-", q.overdue_timers,
      format.duration(t.timer_overdue_ms)) },
    { "Locks", ("%d instance locks expired, %d worker locks expired, %d stale lock tokens"):format(o.expired_locks,
      w.expired_locks, o.stale_lock_tokens) },
    { "Orphans", ("%d messages for instances that do not exist (%d blocking the orchestrator queue)"):format(
      o.orphans, o.orphans_blocking) },
    { "Attempts", ("highest %s orchestrator, %s worker (near poison from %d, poisoned after %d)"):format(
      o.max_attempt_count and tostring(o.max_attempt_count) or "-", w.max_attempt_count and tostring(w.max_attempt_count) or "-",
      t.near_poison_attempts, t.max_attempts) },
    { "Processed", ("%s items (%s orchestrator messages, %s activities)"):format(report.int(q.total_items_processed),
      report.int(q.orchestrator_items_processed), report.int(q.worker_items_processed)) },
    { "Activity round trip", ("%s average over %s activities"):format(report.ms(q.average_processing_time_ms),
      report.int(q.activity_round_trips)) },
    { "Stalled after", format.duration(t.stall_threshold_ms) },
  })
  return table.concat(out, "\n") .. "\n"
end

function M.run(a, ctx)
  local dx, code = ctx:open()
  if not dx then return code end
  local q
  q, code = ctx:call("get_queue_metrics", { now = a.now, fresh = a.fresh or nil })
  if not q then return code end
  if ctx.json then
    ctx:print_json(q)
  else
    local now = a.now and require("durox").parse_time(a.now) or ctx.now
    ctx:out(M.render(q, now, ctx:width()))
  end
  return 0
end

return M
