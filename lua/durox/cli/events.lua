-- durox.cli.events: `duroxlua events`, the instance events the runtime commits
-- (stream_instance_events): up to the present, or following new ones with --follow; a
-- readable line per event on a terminal, JSON Lines with --json; resumable from a cursor or a
-- cursor file; delivered to a webhook with --webhook. Run by the dispatcher (durox.cli);
-- shares durox.cli.follow and durox.cli.filters.
local args = require "durox.cli.args"
local filters = require "durox.cli.filters"
local follow = require "durox.cli.follow"
local hook = require "durox.cli.hook"

local M = {}

M.summary = "instance events as the runtime commits them (Started, Completed, Failed...), or follow them"

local TYPES = "Started, Completed, Failed, ContinuedAsNew, Cancelled, ActivityCompleted, ActivityFailed, TimerFired, " ..
  "EventReceived"

M.arguments = {}

M.options = filters.spec({
  { section = "Events" },
  { "type", short = "t", arg = "T", multi = true, split = true, help = "only these event types (repeatable; a,b): " ..
    TYPES },
  { "follow", short = "f", help = "wait for new events instead of ending at the present" },
  { "from", arg = "WHERE", choices = { "start", "now" },
    help = "without a cursor: start at the beginning of history (default) or now" },
  { "timeout", arg = "T", help = "with --follow: stop after T (ms, or like 30s, 5m; default: never)" },
  { "poll", arg = "T", help = "with --follow: polling interval when idle (default 200ms)" },
  { "heartbeat", arg = "T",
    help = "with --follow: a heartbeat line after T without events (default with --json: 30s; 0: none)" },
  { "no-payloads", help = "leave inputs, outputs, results and event data out of the details" },
}, follow.CURSOR_OPTIONS, hook.OPTIONS, filters.OPTIONS)

M.help = args.help("duroxlua events [filter options] [--type T,...] [--follow] [--cursor TOKEN | --cursor-file FILE]",
  "Prints the events of the instances matching the filter options, as the runtime committed\n" ..
  "them (per execution always in event order): from the beginning of history (or --from now,\n" ..
  "or right after --cursor) up to the present, or, with --follow, waiting for new ones. The\n" ..
  "filter is evaluated on each instance as it is when its event is read.\n" ..
  "With --json: JSON Lines, one object per line: events {\"kind\":\"event\", \"instance_id\",\n" ..
  "\"execution_id\", \"event_id\", \"event_type\", \"timestamp\", \"orchestration_name\", \"details\",\n" ..
  "\"key\", \"cursor\", \"at\"}; resets {\"kind\":\"reset\", \"reset\":\"lost\"|\"deleted\", \"reason\",\n" ..
  "\"cursor\"} when the store changed under the cursor (re-list what you derived); heartbeats\n" ..
  "{\"kind\":\"heartbeat\", \"cursor\", \"at\"} while nothing happens. A line's cursor resumes right\n" ..
  "after it. --cursor-file keeps the cursor after each delivered batch (replaced atomically),\n" ..
  "so a follower killed at any point resumes with the same option: nothing is missed, and\n" ..
  "events after the last saved cursor may be printed again (same key).\n" ..
  "With --webhook URL: each batch is POSTed as JSON instead of printed (docs/streams.md).",
  M.options)

local KNOWN = {}
for t in TYPES:gmatch("%a+") do KNOWN[t:lower()] = t end

function M.run(a, ctx)
  if a[1] then return ctx:fail(("unexpected argument '%s'"):format(a[1]), 2) end
  if a.timeout and not a.follow then return ctx:fail("--timeout needs --follow", 2) end
  for i, t in ipairs(a.type or {}) do
    local name = KNOWN[t:lower()]
    if not name then return ctx:fail(("unknown event type '%s' (expected %s)"):format(t, TYPES), 2) end
    a.type[i] = name
  end
  local cursor, cerr = follow.start_cursor(a)
  if cerr then return ctx:fail(cerr) end
  local sink, herr = hook.sink(a, ctx)
  if not sink then return ctx:fail(herr, 2) end
  local dx, code = ctx:open(sink.needs_write)
  if not dx then return code end
  local req = {
    filter = filters.filter(a),
    event_types = a.type,
    cursor = cursor,
    from = not cursor and a.from or nil,
    follow = a.follow or nil,
    timeout_ms = a.timeout,
    poll_interval_ms = a.poll,
    payloads = not a.no_payloads,
  }
  if a.follow then
    req.heartbeat_ms = a.heartbeat or ((ctx.json or sink.webhook) and "30s" or nil)
  end
  local stream, rcode = ctx:call("stream_instance_events", req)
  if not stream then return rcode end
  local ok, err = sink:open(dx)
  if not ok then return ctx:fail(err) end
  -- the starting point, at once: a follower killed before its first item resumes there
  ok, err = follow.save_cursor(a.cursor_file, stream:cursor())
  if not ok then return ctx:fail(err) end
  local out = io.stdout
  while true do
    local ev, ecode = follow.next(ctx, stream)
    if ev == false then return ecode end
    if not ev then break end
    local delivered, derr = sink:add(ev)
    if not delivered then return ctx:fail(derr) end
    if stream:pending() == 0 then
      -- the batch is complete: deliver it, then keep the cursor
      delivered, derr = sink:flush()
      if not delivered then return ctx:fail(derr) end
      local saved, serr = follow.save_cursor(a.cursor_file, stream:cursor())
      if not saved then return ctx:fail(serr) end
    end
  end
  local delivered, derr = sink:flush()
  if not delivered then return ctx:fail(derr) end
  local saved, serr = follow.save_cursor(a.cursor_file, stream:cursor())
  stream:close()
  if not saved then return ctx:fail(serr) end
  out:flush()
  return 0
end

return M
