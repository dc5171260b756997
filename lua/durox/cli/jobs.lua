-- durox.cli.jobs: `duroxlua jobs [list|show|resume|stop]`, the bulk-job journal: list the
-- jobs, show one with its failures, resume an interrupted or stopped job (with a progress
-- bar), ask a running job to stop. Run by the dispatcher (durox.cli); shares durox.cli.bulk.
local durox = require "durox"
local args = require "durox.cli.args"
local bulk = require "durox.cli.bulk"
local exit = require "durox.cli.exit"
local format = require "durox.format"
local output = require "durox.cli.output"

local M = {}

M.summary = "list, show, resume or stop bulk jobs (cancel, raise, purge, restart)"

M.options = {
  { section = "list" },
  { "state", arg = "S", choices = { "running", "stopped", "interrupted", "completed", "resolving", "abandoned" },
    help = "only jobs in state S" },
  { "kind", arg = "K", choices = { "cancel", "raise", "enqueue", "purge", "prune", "restart" },
    help = "only jobs of kind K" },
  { "limit", short = "n", arg = "N", type = "count", min = 1, help = "at most N jobs (default 100)" },
  { section = "show" },
  { "targets", help = "also list every target with its outcome" },
  { "verbose", short = "v", help = "list every failure, not only the first 20" },
  { section = "resume" },
  { "rate", arg = "N", type = "count", min = 1, help = "at most N operations per second" },
  { "batch", arg = "N", type = "count", min = 1, max = 100000, help = "targets per transaction" },
  { "quiet", help = "no progress bar" },
  { "wide", short = "w", help = "do not truncate cells to the terminal width" },
  output.OPTION,
}

M.arguments = { { "SUBCOMMAND", optional = true }, { "JOB", optional = true } }

M.help = args.help("duroxlua jobs [list] [--state S] [--kind K]\nduroxlua jobs show JOB [--targets]\n" ..
  "duroxlua jobs resume JOB [--rate N]\nduroxlua jobs stop JOB",
  "Every bulk write (cancel, raise, purge, restart) runs as a job journaled in the store's\n" ..
  "durox_jobs tables: its targets are recorded first, then processed in batches, each batch\n" ..
  "with its journal entries in one transaction.\n" ..
  "  list    the jobs, newest first: state, counts, targets ('interrupted': its process died\n" ..
  "          or was stopped by an error or Ctrl-C)\n" ..
  "  show    one job: its request, counts, owner, times, and its failed targets\n" ..
  "  resume  continues an interrupted or stopped job; every target is acted on exactly once\n" ..
  "  stop    asks the process running a job to stop after its current batch (a job nobody\n" ..
  "          runs is marked stopped at once); 'resume' continues it later\n" ..
  "'list' takes --format (table, json, jsonl, csv).",
  M.options)

local COLUMNS = {
  { title = "JOB", align = "right" },
  { title = "KIND", min = 7 },
  { title = "STATE", min = 11 },
  { title = "TOTAL", align = "right" },
  { title = "DONE", align = "right" },
  { title = "FAILED", align = "right" },
  { title = "NOSUB", align = "right" },
  { title = "PENDING", align = "right" },
  { title = "CREATED", min = 20 },
  { title = "TARGETS", min = 10, shrink = 2 },
}

local function job_id(ctx, text)
  local id = text and text:match("^%d+$") and math.tointeger(tonumber(text))
  if text == nil then return nil, ctx:fail("missing JOB (a job id)", exit.USAGE) end
  if not id or id < 1 then return nil, ctx:fail(("expected a job id, got '%s'"):format(format.oneline(text)), exit.USAGE) end
  return id
end

local function list(a, ctx)
  local dx, code = ctx:open()
  if not dx then return code end
  local jobs, rcode = ctx:call("list_jobs", { state = a.state, kind = a.kind, limit = a.limit })
  if not jobs then return rcode end
  ctx:emit {
    doc = { jobs = jobs },
    records = jobs,
    columns = { { "job_id" }, { "kind" }, { "state" }, { "total" }, { "done" }, { "failed" }, { "no_subscription" },
                { "pending" }, { "created_at" }, { "started_at" }, { "finished_at" }, { "owner" }, { "description" },
                { "last_error" } },
    text = function()
      if #jobs == 0 then return "no jobs\n" end
      local rows = {}
      for i, j in ipairs(jobs) do
        rows[i] = { tostring(j.job_id), j.kind, j.state, tostring(j.total), tostring(j.done), tostring(j.failed),
          tostring(j.no_subscription), tostring(j.pending), format.iso(j.created_at), format.oneline(j.description) }
      end
      return format.table(COLUMNS, rows, ctx:width())
    end,
  }
  return exit.OK
end

local function show(a, ctx)
  local id, icode = job_id(ctx, a[2])
  if not id then return icode end
  local dx, code = ctx:open()
  if not dx then return code end
  local j, rcode = ctx:call("get_job", id, { targets = a.targets or nil })
  if not j then return rcode end
  if ctx.json then
    ctx:print_json(j)
    return 0
  end
  local out = {}
  local function field(k, v) if v ~= nil then out[#out + 1] = ("%-13s %s"):format(k .. ":", tostring(v)) end end
  field("job", j.job_id)
  field("kind", j.kind)
  field("state", j.state .. (j.active and " (its process is running it)" or ""))
  field("targets", j.description)
  field("request", durox.encode_json(j.request))
  field("counts", ("%d total, %d done, %d failed, %d no subscription, %d pending"):format(j.total, j.done,
    j.failed, j.no_subscription, j.pending))
  field("rate", j.rate and (j.rate .. "/s"))
  field("owner", j.owner)
  field("created", j.created_at and format.iso(j.created_at))
  field("started", j.started_at and format.iso(j.started_at))
  field("finished", j.finished_at and format.iso(j.finished_at))
  field("heartbeat", j.heartbeat_at and ("%s (%s)"):format(format.iso(j.heartbeat_at),
    format.relative(j.heartbeat_at, ctx.now)))
  field("last error", j.last_error)
  if #j.errors > 0 then
    out[#out + 1] = "failed:"
    local n = a.verbose and #j.errors or math.min(#j.errors, 20)
    for i = 1, n do
      local e = j.errors[i]
      out[#out + 1] = ("  %s  %s  %s"):format(format.oneline(e.instance_id), e.code, format.oneline(e.error or ""))
    end
    if n < #j.errors then out[#out + 1] = ("  ... and %d more (--verbose)"):format(#j.errors - n) end
  end
  if j.targets then
    out[#out + 1] = "targets:"
    for _, t in ipairs(j.targets) do
      out[#out + 1] = ("  %s  %s%s%s"):format(format.oneline(t.instance_id), t.outcome,
        t.new_instance_id and (" -> " .. t.new_instance_id) or "", t.error and ("  " .. format.oneline(t.error)) or "")
    end
  end
  ctx:out(table.concat(out, "\n") .. "\n")
  return 0
end

local function resume(a, ctx)
  local id, icode = job_id(ctx, a[2])
  if not id then return icode end
  local dx, code = ctx:open(true)
  if not dx then return code end
  local bar, finish, state = bulk.progress(ctx, "resume")
  state.job_id = id
  local ok, res, msg, rcode = pcall(dx.resume_job, dx, id, { progress = bar, rate = a.rate, batch_size = a.batch })
  finish()
  if not ok then
    local text = tostring(res):gsub("^[^:\n]+:%d+: ", "")
    if text:match("interrupted!$") then
      return ctx:fail(("interrupted; resume job %d again to finish it"):format(id), exit.INTERRUPTED)
    end
    return ctx:fail(text, exit.USAGE)
  end
  if not res then return ctx:fail(msg, rcode) end
  return bulk.print_response(ctx, res)
end

local function stop(a, ctx)
  local id, icode = job_id(ctx, a[2])
  if not id then return icode end
  local dx, code = ctx:open(true)
  if not dx then return code end
  local state, rcode = ctx:call("stop_job", id)
  if not state then return rcode end
  if ctx.json then ctx:print_json { job_id = id, state = state } else ctx:out(("job %d %s\n"):format(id, state)) end
  return 0
end

function M.run(a, ctx)
  local sub = a[1] or "list"
  if sub == "list" then
    if a[2] then return ctx:fail(("unexpected argument '%s'"):format(a[2]), exit.USAGE) end
    return list(a, ctx)
  elseif sub == "show" then
    return show(a, ctx)
  elseif sub == "resume" then
    return resume(a, ctx)
  elseif sub == "stop" then
    return stop(a, ctx)
  end
  return ctx:fail(("unknown jobs subcommand '%s' (expected list, show, resume or stop)"):format(format.oneline(sub)),
    exit.USAGE)
end

return M
