-- durox.cli.watch: `duroxlua watch ID...`, the status transitions of the given instances
-- (watch_instances) until every one is Completed or Failed, or the timeout: a readable line
-- each, JSON Lines with --json, to a webhook with --webhook; resumable with --cursor-file.
-- Run by the dispatcher (durox.cli); shares durox.cli.follow and durox.cli.hook.
local args = require "durox.cli.args"
local exit = require "durox.cli.exit"
local files = require "durox.cli.files"
local follow = require "durox.cli.follow"
local format = require "durox.format"
local exit = require "durox.cli.exit"
local hook = require "durox.cli.hook"

local M = {}

M.summary = "watch instances change status until they complete or fail"

M.arguments = { { "ID", many = true, optional = true } }

M.options = {
  { section = "Watch" },
  { "timeout", short = "t", arg = "T", help = "stop after T (ms, or like 30s, 5m; default: until all are terminal)" },
  { "poll", arg = "T", help = "polling interval when nothing happens (default 200ms)" },
  { "heartbeat", arg = "T", help = "a heartbeat line after T without a change (default with --json: 30s; 0: none)" },
  { "ids-file", arg = "FILE", help = "read more ids from FILE (one per line; '-' for standard input)" },
}
for _, list in ipairs { follow.CURSOR_OPTIONS, hook.OPTIONS } do
  for _, o in ipairs(list) do M.options[#M.options + 1] = o end
end

M.help = args.help("duroxlua watch [options] ID...",
  "Reports every status transition of the given instances as the runtime commits it\n" ..
  "(NotFound -> Running -> Completed or Failed, continue-as-new included) and every change of\n" ..
  "their custom status, until each is Completed or Failed (exit status 0) or the timeout\n" ..
  "(exit status 5). First one line per instance with its state now (not with a cursor).\n" ..
  "With --json: JSON Lines: changes {\"kind\":\"change\", \"instance_id\", \"initial\", \"old_status\",\n" ..
  "\"new_status\", \"failure_kind\", \"execution_id\", \"custom_status_changed\", \"custom_status\",\n" ..
  "\"old_custom_status\", \"output\", \"error\", \"key\", \"at\", \"cursor\"}, resets and heartbeats as\n" ..
  "in `duroxlua events`. --cursor-file resumes a killed watch where it stopped (the same ids).",
  M.options)

local function line(c)
  if c.kind == "reset" then
    return ("%s  RESET (%s): %s; states read again\n"):format(format.iso_ms(c.at), c.reset, c.reason)
  elseif c.kind == "heartbeat" then
    return ("%s  (no change)\n"):format(format.iso_ms(c.at))
  end
  local status = c.new_status .. (c.failure_kind and (" (" .. c.failure_kind .. ")") or "")
  local what
  if c.initial then
    what = "is " .. status
  elseif c.old_status ~= c.new_status then
    what = ("%s -> %s"):format(c.old_status, status)
  else
    what = status
  end
  if c.execution_id and c.execution_id > 1 then what = what .. (" (execution %d)"):format(c.execution_id) end
  if c.custom_status_changed then
    what = what .. ("; custom status %s"):format(c.custom_status and ("'" .. format.oneline(c.custom_status) .. "'")
      or "cleared")
  elseif c.initial and c.custom_status then
    what = what .. ("; custom status '%s'"):format(format.oneline(c.custom_status))
  end
  local extra = c.error or c.output
  if extra and not c.initial then
    extra = format.oneline(extra)
    if #extra > 70 then extra = extra:sub(1, 67) .. "..." end
    what = what .. "  " .. extra
  end
  return ("%s  %s  %s\n"):format(format.iso_ms(c.at), format.oneline(c.instance_id), what)
end

function M.run(a, ctx)
  local ids = {}
  for _, id in ipairs(a) do ids[#ids + 1] = id end
  if a.ids_file then
    local more, err = files.read_ids(a.ids_file)
    if not more then return ctx:fail(err, exit.USAGE) end
    for _, id in ipairs(more) do ids[#ids + 1] = id end
  end
  if #ids == 0 then return ctx:fail("no instance to watch (give ids or --ids-file)", exit.USAGE) end
  local cursor, cerr = follow.start_cursor(a)
  if cerr then return ctx:fail(cerr) end
  local sink, herr = hook.sink(a, ctx, line)
  if not sink then return ctx:fail(herr, 2) end
  local dx, code = ctx:open(sink.needs_write)
  if not dx then return code end
  local req = { instance_ids = ids, cursor = cursor, timeout_ms = a.timeout, poll_interval_ms = a.poll,
    heartbeat_ms = a.heartbeat or ((ctx.json or sink.webhook) and "30s" or nil) }
  local w, rcode = ctx:call("watch_instances", req)
  if not w then return rcode end
  local ok, err = sink:open(dx)
  if not ok then return ctx:fail(err) end
  -- the starting point, at once: a follower killed before its first item resumes there
  ok, err = follow.save_cursor(a.cursor_file, w:cursor())
  if not ok then return ctx:fail(err) end
  local terminal = {}
  while true do
    local c, ecode = follow.next(ctx, w)
    if c == false then return ecode end
    if not c then break end
    if c.kind == "change" then
      terminal[c.instance_id] = c.new_status == "Completed" or c.new_status == "Failed"
    end
    local delivered, derr = sink:add(c)
    if not delivered then return ctx:fail(derr) end
    if w:pending() == 0 then
      delivered, derr = sink:flush()
      if not delivered then return ctx:fail(derr) end
      local saved, serr = follow.save_cursor(a.cursor_file, w:cursor())
      if not saved then return ctx:fail(serr) end
    end
  end
  local delivered, derr = sink:flush()
  if not delivered then return ctx:fail(derr) end
  local saved, serr = follow.save_cursor(a.cursor_file, w:cursor())
  w:close()
  if not saved then return ctx:fail(serr) end
  -- exit 0 when every id is terminal (a resumed watch may not have shown them all: ask)
  local now = dx:get_instances_status(ids)
  for i, id in ipairs(ids) do
    local st = now and now[i] and now[i].status
    if not (terminal[id] or st == "Completed" or st == "Failed") then return exit.TIMEOUT end
  end
  return exit.OK
end

return M
