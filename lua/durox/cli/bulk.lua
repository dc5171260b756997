-- durox.cli.bulk: what the commands that act on many instances share (cancel, raise,
-- purge, restart, wait, jobs): target options (ids, --ids-file, filter flags, --all), the
-- confirmation flow (a dry run, the count, a question; refused without a terminal unless
-- --yes), the progress bar on stderr, and the printing of bulk responses. Not a command.
local durox = require "durox"
local exit = require "durox.cli.exit"
local files = require "durox.cli.files"
local format = require "durox.format"
local filters = require "durox.cli.filters"

local M = {}

M.TARGET_OPTIONS = {
  { section = "Targets (instance ids as arguments, or filter options, or --all)" },
  { "ids-file", arg = "FILE", help = "read instance ids from FILE, one per line ('-': standard input)" },
  { "all", help = "every instance (needed when neither ids nor filters are given)" },
  { "max", arg = "N", type = "count", min = 1,
    help = "refuse when more than N instances are targeted (default: max_bulk_operations, 1000)" },
}

M.RUN_OPTIONS = {
  { section = "Execution" },
  { "dry-run", help = "show what would be done and change nothing" },
  { "yes", short = "y", help = "act without asking (required when standard input is not a terminal)" },
  { "rate", arg = "N", type = "count", min = 1, help = "at most N operations per second" },
  { "batch", arg = "N", type = "count", min = 1, max = 100000, help = "targets per transaction (default 200)" },
  { "no-pacing", help = "hold the write lock back to back (only when no runtime works on the store)" },
  { "quiet", help = "no progress bar" },
  { "verbose", short = "v", help = "list every instance in the summary, not only the first 20 of each group" },
}

local SHOWN = 20

-- The target part of a request from the parsed options and the positional ids at
-- a[first..]: {instances = ids} or {filter = ...}. Returns it, or nil and a usage message.
function M.targets(a, first)
  local ids = {}
  for i = first or 1, #a do ids[#ids + 1] = a[i] end
  if a.ids_file then
    local more, err = files.read_ids(a.ids_file)
    if not more then return nil, err end
    for _, id in ipairs(more) do ids[#ids + 1] = id end
  end
  local has_filter = filters.given(a)
  if #ids > 0 or a.ids_file then
    if has_filter or a.all then return nil, "give instance ids or filter options (or --all), not both" end
    return { instances = ids }
  end
  if has_filter then return { filter = filters.filter(a) } end
  if a.all then return { filter = {} } end
  return nil, "no targets: give instance ids, --ids-file FILE, filter options (see --help) or --all"
end

-- Applies --max: the limit of this call, raising the handle's ceiling to it if needed.
function M.apply_max(dx, a, req)
  if not a.max then return end
  local cfg = dx:config()
  if a.max > cfg.max_bulk_operations then dx:config { max_bulk_operations = a.max } end
  req.max_instances = a.max
end

-- A progress function drawing a bar on stderr (when it is a terminal and not --quiet), and
-- a function ending the bar's line. state.job_id holds the last job id seen.
function M.progress(ctx, verb)
  local tty = durox.isatty("stderr") and not ctx.args.quiet
  local state, drawn = {}, false
  local last = 0
  local function fn(p)
    state.job_id = p.job_id or state.job_id
    if not tty then return true end
    local now = durox.now()
    local processed = (p.done or 0) + (p.failed or 0) + (p.no_subscription or 0)
    if now - last < 100 and processed < (p.total or 0) then return true end
    last = now
    local line
    if p.phase == "resolving" then
      line = ("%s: matching instances... %d"):format(verb, p.total or 0)
    else
      local total = p.total or 0
      local frac = total > 0 and processed / total or 1
      local width = 30
      local fill = math.floor(frac * width + 0.5)
      local rate = p.elapsed_ms and p.elapsed_ms > 0 and processed * 1000 // p.elapsed_ms or 0
      line = ("%s%s [%s%s] %d/%d %3d%% %d/s"):format(verb, p.job_id and (" job " .. p.job_id) or "",
        ("#"):rep(fill), ("-"):rep(width - fill), processed, total, math.floor(frac * 100), rate)
    end
    io.stderr:write("\r", line, "\27[K")
    io.stderr:flush()
    drawn = true
    return true
  end
  local function finish()
    if drawn then io.stderr:write("\r\27[K") io.stderr:flush() end
    drawn = false
  end
  return fn, finish, state
end

-- Asks "<question>? [y/N]" on the terminal, after showing up to SAMPLE of the targets.
-- Returns true, or nil and the exit code after explaining (no terminal: refused unless
-- --yes; an answer other than yes: nothing done, exit REFUSED).
local SAMPLE = 5
function M.confirm(ctx, question, stdin_taken, sample)
  if ctx.args.yes then return true end
  if stdin_taken or not durox.isatty("stdin") then
    return nil, ctx:fail(("refusing to %s without confirmation: standard input is not a terminal;"
      .. " pass --yes to go ahead (or --dry-run to see what would be done)"):format(question), exit.USAGE)
  end
  if sample and #sample > 0 then
    local shown = {}
    for i = 1, math.min(#sample, SAMPLE) do
      local x = sample[i]
      shown[i] = "  " .. format.oneline(type(x) == "table" and x.instance_id or x)
    end
    if #sample > SAMPLE then shown[#shown + 1] = ("  ... and %d more"):format(#sample - SAMPLE) end
    io.stderr:write(table.concat(shown, "\n"), "\n")
  end
  io.stderr:write(question:sub(1, 1):upper(), question:sub(2), "? [y/N] ")
  io.stderr:flush()
  local answer = io.stdin:read("l")
  if answer and answer:match("^%s*[yY]") then return true end
  io.stderr:write("nothing done\n")
  return nil, exit.REFUSED
end

-- The done list and its label, per kind.
local DONE = {
  cancel = { "cancelled_instances", "cancelled", "would be cancelled" },
  raise = { "delivered_instances", "delivered", "would be delivered" },
  enqueue = { "delivered_instances", "delivered", "would be delivered" },
  purge = { "purged_instances", "purged", "would be purged" },
  prune = { "pruned_instances", "pruned", "would be pruned" },
  restart = { "restarted_instances", "restarted", "would be restarted" },
}

-- "118 would be cancelled, 2 would fail, 3 have no open subscription"
function M.counts(r)
  local d = DONE[r.kind] or DONE.cancel
  local parts = { ("%d %s"):format(#r[d[1]], r.dry_run and d[3] or d[2]) }
  if r.no_subscription_instances and #r.no_subscription_instances > 0 then
    parts[#parts + 1] = ("%d with no open subscription"):format(#r.no_subscription_instances)
  end
  if #r.failed_instances > 0 then
    parts[#parts + 1] = ("%d %s"):format(#r.failed_instances, r.dry_run and "would fail" or "failed")
  end
  if r.pending_instances and #r.pending_instances > 0 then
    parts[#parts + 1] = ("%d not processed"):format(#r.pending_instances)
  end
  if r.skipped_instances and #r.skipped_instances > 0 then
    parts[#parts + 1] = ("%d skipped (sub-orchestrations: %s their root instead)"):format(#r.skipped_instances,
      r.kind == "restart" and "restart" or "purge")
  end
  return table.concat(parts, ", ")
end

local function list_block(out, title, items, verbose, render)
  if #items == 0 then return end
  out[#out + 1] = title
  local n = verbose and #items or math.min(#items, SHOWN)
  for i = 1, n do out[#out + 1] = "  " .. render(items[i]) end
  if n < #items then out[#out + 1] = ("  ... and %d more (--verbose or --json lists all)"):format(#items - n) end
end

-- Prints a bulk response (text or --json); returns its exit code (durox.cli.exit.of_bulk:
-- 0 all done, 6 partly done, 4 refused, 3 every target unknown; a dry run by what would happen).
function M.print_response(ctx, r)
  if ctx.json then
    ctx:print_json(r)
  else
    local out = {}
    local head = r.dry_run and "dry run" or (r.job_id and ("job %d %s"):format(r.job_id, r.state) or r.state)
    out[1] = ("%s: %s matched: %s"):format(head, format.count(r.total_matched, "instance"), M.counts(r))
    if r.kind == "purge" and not r.dry_run then
      out[#out + 1] = ("deleted %d instances, %d executions, %d history events, %d queue messages"):format(
        r.instances_deleted, r.executions_deleted, r.events_deleted, r.queue_messages_deleted)
    elseif r.kind == "prune" and not r.dry_run then
      out[#out + 1] = ("deleted %d executions, %d history events"):format(r.executions_deleted, r.events_deleted)
    end
    local verbose = ctx.args.verbose
    local d = DONE[r.kind] or DONE.cancel
    if r.kind == "restart" then
      list_block(out, r.dry_run and "would restart:" or "restarted:", r.restarted_instances, verbose, function(x)
        return ("%s -> %s"):format(format.oneline(x.instance_id), format.oneline(x.new_instance_id or "?"))
      end)
    elseif verbose then
      list_block(out, d[r.dry_run and 3 or 2] .. ":", r[d[1]], true, format.oneline)
    end
    list_block(out, "no open subscription:", r.no_subscription_instances or {}, verbose, format.oneline)
    list_block(out, "skipped:", r.skipped_instances or {}, verbose, function(x)
      return ("%s  %s"):format(format.oneline(x.instance_id), format.oneline(x.reason))
    end)
    list_block(out, r.dry_run and "would fail:" or "failed:", r.failed_instances, verbose, function(f)
      return ("%s  %s  %s"):format(format.oneline(f.instance_id), f.code, format.oneline(f.error))
    end)
    if r.pending_instances and #r.pending_instances > 0 and r.job_id then
      out[#out + 1] = ("resume with: duroxlua jobs resume %d"):format(r.job_id)
    end
    ctx:out(table.concat(out, "\n") .. "\n")
  end
  return exit.of_bulk(r)
end

--[[ Runs a bulk write for a command:
  spec = { method = "cancel_instances", verb = "cancel", first = 1 (first positional id),
           fields = { reason = ... } (the request's own fields) } ]]
function M.execute(a, ctx, spec)
  local req, err = M.targets(a, spec.first)
  if not req then return ctx:fail(err, exit.USAGE) end
  local dx, code = ctx.dx, nil -- a command may have opened it already (raise --data-file)
  if not dx then
    dx, code = ctx:open(not a.dry_run, { max_write_share = a.no_pacing and 1 or nil })
    if not dx then return code end
  end
  for k, v in pairs(spec.fields or {}) do req[k] = v end
  M.apply_max(dx, a, req)
  req.rate = a.rate
  req.batch_size = a.batch
  local bar, finish, state = M.progress(ctx, spec.verb)
  req.progress = bar
  local function call(dry)
    req.dry_run = dry or nil
    local ok, res, msg, rcode = pcall(dx[spec.method], dx, req)
    finish()
    if not ok then
      local text = tostring(res):gsub("^[^:\n]+:%d+: ", "")
      if text:match("interrupted!$") then
        if state.job_id then
          return nil, ctx:fail(("interrupted; job %d can be resumed with 'duroxlua jobs resume %d'"):format(
            state.job_id, state.job_id), exit.INTERRUPTED)
        end
        return nil, ctx:fail("interrupted; nothing was done", exit.INTERRUPTED)
      end
      return nil, ctx:fail(text, exit.USAGE)
    end
    if res == nil then return nil, ctx:fail(msg or "failed", rcode) end
    return res
  end
  if not a.dry_run and not a.yes then
    local preview, pcode = call(true)
    if not preview then return pcode end
    if preview.total_matched == 0 then
      if ctx.json then return M.print_response(ctx, preview) end
      ctx:out("no instance matches: nothing to do\n")
      filters.name_hint(ctx, a)
      return exit.OK
    end
    io.stderr:write(("%s: %s matched: %s\n"):format(spec.verb, format.count(preview.total_matched, "instance"),
      M.counts(preview)))
    local d = DONE[preview.kind] or DONE.cancel
    local n = #preview[d[1]]
    if n == 0 then
      local code = M.print_response(ctx, preview)
      if not ctx.json then ctx:out("nothing to do\n") end
      return code
    end
    local ok, ccode = M.confirm(ctx, ("%s %s"):format(spec.verb, format.count(n, "instance")),
      a.ids_file == "-", preview[d[1]])
    if not ok then return ccode end
  end
  local res, rcode = call(a.dry_run)
  if not res then return rcode end
  local status = M.print_response(ctx, res)
  if res.total_matched == 0 then filters.name_hint(ctx, a) end
  return status
end

return M
