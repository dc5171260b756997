-- durox.cli.rules: `duroxlua rules FILE.lua`, the remediation process (durox.rules): runs the
-- rules of the file against the events the runtime commits until stopped, restartable at any
-- point; --once handles what is there and exits; --status reports what the rules did. Run by
-- the dispatcher (durox.cli).
local durox = require "durox"
local args = require "durox.cli.args"
local format = require "durox.format"
local rules = require "durox.rules"

local M = {}

M.summary = "run remediation rules (FILE.lua) on the events the runtime commits"

M.arguments = { { "FILE", missing = "rules file (duroxlua rules FILE.lua)" } }

M.options = {
  { section = "Rules" },
  { "once", help = "handle the events that are there now, then exit" },
  { "poll", arg = "T", help = "polling interval when nothing happens (default 500ms)" },
  { "status", help = "report what the rules of FILE did (runs by state, recent failures) and exit" },
}

M.help = args.help("duroxlua rules [options] FILE.lua",
  "Runs the rules FILE.lua declares, each an instance filter, event types and a Lua handler:\n" ..
  "\n" ..
  "  rule { name = \"restart-transient\", filter = { name = \"Payment\" }, events = { \"Failed\" },\n" ..
  "         where = function(ev) return ev.details.failure_kind == \"infrastructure\" end,\n" ..
  "         rate = { max = 10, per = \"1h\" }, retries = 2, backoff = \"1s\",\n" ..
  "         handler = function(ev, ctx) assert(ctx.dx:restart_instances { instances = { ev.instance_id } }) end }\n" ..
  "\n" ..
  "Each rule keeps a durable cursor and a record of every event its handler ran for in the\n" ..
  "store (our own tables), so a restarted process resumes each rule where it stopped and never\n" ..
  "runs a handler twice for one event: a handler that was running when the process died is\n" ..
  "recorded \"interrupted\" and not run again. A failing handler is retried (retries, with\n" ..
  "exponential backoff) and then recorded \"failed\" with its error. Events over the rate limit\n" ..
  "are recorded \"skipped\". A new rule starts at the present (from = \"start\": the beginning).\n" ..
  "ctx: dx (the store, writable), rule, log(fmt, ...), webhook(url, table [, opts]) (raises when\n" ..
  "it cannot deliver), under_limit(what, max, per) / record(what) / allow(what, max, per)\n" ..
  "(durable rate limits of the handler's own actions).\n" ..
  "Examples: scripts/rules/. docs/streams.md has the details.",
  M.options)

local function status(dx, list, ctx)
  local out = {}
  for _, r in ipairs(list) do
    local runs = dx:list_rule_runs { rule = r.name, limit = 100000 } or {}
    local by = {}
    for _, x in ipairs(runs) do by[x.state] = (by[x.state] or 0) + 1 end
    local cursor = dx:get_cursor("rule:" .. r.name) -- nil: never started
    out[#out + 1] = { rule = r.name, runs = by, started = cursor ~= nil, recent_failures = {} }
    for _, x in ipairs(runs) do
      if (x.state == "failed" or x.state == "interrupted") and #out[#out].recent_failures < 5 then
        table.insert(out[#out].recent_failures, { key = x.key, state = x.state, error = x.error,
          at = x.finished_at })
      end
    end
  end
  if ctx.json then
    ctx:print_json(out)
  else
    for _, o in ipairs(out) do
      local parts = {}
      for _, st in ipairs { "done", "failed", "skipped", "interrupted", "running" } do
        if o.runs[st] then parts[#parts + 1] = ("%d %s"):format(o.runs[st], st) end
      end
      ctx:out(("%s: %s%s\n"):format(o.rule, #parts > 0 and table.concat(parts, ", ") or "no runs",
        o.started and "" or " (never started)"))
      for _, f in ipairs(o.recent_failures) do
        ctx:out(("  %s %s %s: %s\n"):format(format.iso(f.at), f.state, format.oneline(f.key),
          format.oneline(f.error or "")))
      end
    end
  end
  return 0
end

function M.run(a, ctx)
  local path = a[1]
  local list, err = rules.load(path)
  if not list then return ctx:fail(err, 2) end
  local dx, code = ctx:open(true)
  if not dx then return code end
  if a.status then return status(dx, list, ctx) end
  local poll = 500
  if a.poll then
    poll = durox.parse_duration(a.poll)
    if not poll then return ctx:fail(("--poll expects a duration like 500ms, got '%s'"):format(a.poll), 2) end
  end
  local runner, rerr, rcode = rules.runner(dx, list, { poll_ms = poll })
  if not runner then return ctx:fail(rerr, require("durox.cli.exit").of(rcode)) end
  local ok, perr = pcall(function()
    if a.once then
      while runner:step() > 0 do end
    else
      io.stderr:write(("duroxlua rules: %d rule(s) from %s running\n"):format(#list, path))
      runner:run()
    end
  end)
  runner:close()
  if not ok then
    local text = tostring(perr):gsub("^[^:\n]+:%d+: ", "")
    local exit = require "durox.cli.exit"
    if text:match("interrupted!$") then return ctx:fail("interrupted (each rule resumes where it stopped)",
      exit.INTERRUPTED) end
    return ctx:fail(text, exit.FAILED)
  end
  return 0
end

return M
