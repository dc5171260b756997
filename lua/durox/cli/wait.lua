-- durox.cli.wait: `duroxlua wait`, waits until instances (ids or filter flags) are terminal:
-- all of them, any, or the first N (wait_for_instances: one status query per polling
-- round). Run by the dispatcher (durox.cli); shares durox.cli.bulk.
local args = require "durox.cli.args"
local bulk = require "durox.cli.bulk"
local filters = require "durox.cli.filters"
local exit = require "durox.cli.exit"
local format = require "durox.format"

local M = {}

M.summary = "wait until instances (by id or filter) complete or fail"

M.options = filters.spec({
  { section = "Wait" },
  { "timeout", short = "t", arg = "T", help = "give up after T (ms, or like 30s, 5m; default: wait forever)" },
  { "any", group = "mode", help = "until at least one target is terminal" },
  { "first", arg = "N", type = "count", min = 1, group = "mode", help = "until N targets are terminal" },
  { "poll", arg = "T", help = "polling interval (default 200ms)" },
  { "quiet", help = "no progress line" },
  { "wide", short = "w", help = "do not truncate cells to the terminal width" },
}, bulk.TARGET_OPTIONS, filters.OPTIONS)

M.arguments = { { "ID", many = true, optional = true } }

M.help = args.help("duroxlua wait [options] ID...\nduroxlua wait [options] --status Running --name Order",
  "Waits until the given instances, or those matching the filter options when the wait\n" ..
  "starts, are terminal (Completed or Failed): all of them (default), --any, or --first N.\n" ..
  "Every polling round reads the status of all unfinished instances with one query.\n" ..
  "Prints each instance's final status and output or error. Unknown ids are reported as\n" ..
  "NotFound at once; a start not yet picked up by the runtime waits as Pending. Exit status 0\n" ..
  "when the condition was met, 5 on timeout, 3 when an instance named does not exist.\n" ..
  "With --json: the BulkWaitResponse {instances, completed_instances, failed_instances,\n" ..
  "timed_out_instances, satisfied, timed_out, ...}.",
  M.options)

local COLUMNS = {
  { title = "INSTANCE", max = 40, min = 12 },
  { title = "STATUS", max = 28, min = 10 },
  { title = "AFTER", align = "right", min = 6 },
  { title = "OUTPUT / ERROR", min = 12, shrink = 2 },
}

function M.run(a, ctx)
  local req, err = bulk.targets(a, 1)
  if not req then return ctx:fail(err, exit.USAGE) end
  local dx, code = ctx:open()
  if not dx then return code end
  bulk.apply_max(dx, a, req)
  req.timeout = a.timeout
  req.poll_interval = a.poll
  req.mode = a.any and "any" or a.first and "first" or "all"
  req.count = a.first
  local bar, finish = bulk.progress(ctx, "wait")
  req.progress = bar
  local res, rcode = ctx:call("wait_for_instances", req)
  finish()
  if not res then return rcode end
  if ctx.json then
    ctx:print_json(res)
  else
    local rows = {}
    for i, it in ipairs(res.instances) do
      local status = it.failure_kind and ("%s (%s)"):format(it.status, it.failure_kind) or it.status
      rows[i] = {
        format.oneline(it.instance_id), status,
        it.finished_after_ms and format.duration(it.finished_after_ms) or "-",
        format.oneline(it.output or it.error or ""),
      }
    end
    if #rows > 0 then ctx:out(format.table(COLUMNS, rows, ctx:width())) end
    local outcome = res.satisfied and "done" or res.timed_out and "timed out" or "stopped"
    -- a start the runtime has not picked up yet is Pending, as show and stuck say, not running
    local queued = 0
    for _, it in ipairs(res.instances) do
      if not it.finished and it.status == "Pending" then queued = queued + 1 end
    end
    local unfinished = #res.timed_out_instances + #res.pending_instances
    ctx:out(("%s after %s: %d completed, %d failed, %d not found, %d still running%s\n"):format(outcome,
      format.duration(res.elapsed_ms), #res.completed_instances, #res.failed_instances,
      #res.not_found_instances, math.max(0, unfinished - queued),
      queued > 0 and (", %d pending (queued, not started yet)"):format(queued) or ""))
  end
  if #res.not_found_instances > 0 and not (res.satisfied and req.mode ~= "all") then
    if not ctx.json then
      io.stderr:write(("duroxlua wait: not found: %s\n"):format(table.concat(res.not_found_instances, ", ")))
    end
    return exit.NOTFOUND
  end
  if res.satisfied then return exit.OK end
  return res.timed_out and exit.TIMEOUT or exit.PARTIAL
end

return M
