-- durox.cli.stuck: `duroxlua stuck`, running instances that make no progress, and messages for
-- instances that do not exist, each with its evidence (find_stuck_instances). Run by the
-- dispatcher (durox.cli).
local args = require "durox.cli.args"
local format = require "durox.format"
local output = require "durox.cli.output"

local M = {}

M.summary = "instances that make no progress, with the reason (locks, poison, stalls, waits, orphans)"

M.options = {
  { section = "Thresholds (default: the ManagementConfig's)" },
  { "now", arg = "T", type = "time", help = "judge as of time T (default: now)" },
  { "stall", arg = "D", help = "visible work untouched at least D is stalled (e.g. 1m)" },
  { "overdue", arg = "D", help = "a due timer unprocessed at least D is overdue" },
  { "wait", arg = "D", help = "report event subscriptions open longer than D (e.g. 24h)" },
  { "near-poison", arg = "N", type = "count", min = 1, help = "attempt count from which an item is near poison" },
  { "max-attempts", arg = "N", type = "count", min = 1, help = "the runtime's poison limit (default 10)" },
  { section = "Output" },
  output.OPTION,
  { "limit", short = "n", arg = "N", type = "count", min = 1, max = 1000000, help = "at most N instances" },
  { "wide", short = "w", help = "do not truncate table cells to the terminal width" },
}

M.arguments = {}

M.help = args.help("duroxlua stuck [options]",
  "Lists the running instances that make no progress, oldest problem first, with one line per\n" ..
  "piece of evidence: queue items near or past the poison limit (poison_risk), locks that\n" ..
  "expired (expired_lock), timers due but not fired (overdue_timer), activities no worker\n" ..
  "picked up (unpicked_activity), orchestrator messages not processed (stalled_messages),\n" ..
  "event subscriptions open longer than --wait (waiting_on_event), and messages addressed to\n" ..
  "instances that do not exist (orphan_messages; on SQLite they block the orchestrator queue).\n" ..
  "Exit status 0 whether or not something is stuck. With --json: the find_stuck_instances table;\n" ..
  "--format jsonl: one instance per line; --format csv: one row per piece of evidence.",
  M.options)

local COLUMNS = {
  { title = "INSTANCE", max = 40, min = 12 },
  { title = "NAME", max = 24, min = 6, shrink = 2 },
  { title = "STATUS", min = 8 },
  { title = "SINCE", min = 8 },
  { title = "REASON", min = 12 },
  { title = "EVIDENCE", min = 20, shrink = 3 },
}

function M.render(res, width)
  local rows = {}
  for _, s in ipairs(res.instances) do
    for j, r in ipairs(s.reasons) do
      rows[#rows + 1] = {
        j == 1 and format.oneline(s.instance_id) or "",
        j == 1 and format.oneline(s.orchestration_name or "-") or "",
        j == 1 and s.status or "",
        format.relative(r.since, res.now),
        r.reason,
        format.oneline(r.message),
      }
    end
  end
  local out = {}
  if #rows > 0 then out[1] = (format.table(COLUMNS, rows, width):gsub("\n$", "")) end
  out[#out + 1] = #res.instances == 0 and "nothing stuck"
    or (format.count(#res.instances, "instance") .. " stuck" .. (res.truncated and " (more not shown)" or ""))
  return table.concat(out, "\n") .. "\n"
end

function M.run(a, ctx)
  local dx, code = ctx:open()
  if not dx then return code end
  local res
  res, code = ctx:call("find_stuck_instances", {
    now = a.now, stall_threshold_ms = a.stall, timer_overdue_ms = a.overdue, event_wait_threshold_ms = a.wait,
    near_poison_attempts = a.near_poison, max_attempts = a.max_attempts, limit = a.limit,
  })
  if not res then return code end
  local rows = {}
  for _, s in ipairs(res.instances) do
    for _, r in ipairs(s.reasons) do
      rows[#rows + 1] = { instance_id = s.instance_id, orchestration_name = s.orchestration_name, status = s.status,
        reason = r.reason, since = r.since, message = r.message, queue = r.queue, queue_id = r.queue_id,
        attempt_count = r.attempt_count, detail = r.detail }
    end
  end
  ctx:emit {
    doc = res,
    records = ctx.format == "csv" and rows or res.instances,
    columns = { { "instance_id" }, { "orchestration_name" }, { "status" }, { "reason" }, { "since" }, { "message" },
                { "queue" }, { "queue_id" }, { "attempt_count" }, { "detail" } },
    text = function() return M.render(res, ctx:width()) end,
  }
  return 0
end

return M
