-- durox.cli.start: `duroxlua start ID NAME [INPUT]`, queues the start of a new instance
-- exactly as Duroxide's client start_orchestration does, optionally waiting for it to end.
-- Run by the dispatcher (durox.cli).
local args = require "durox.cli.args"
local files = require "durox.cli.files"
local format = require "durox.format"

local M = {}

M.summary = "start a new orchestration instance"

M.options = {
  { section = "Start" },
  { "version", arg = "V", help = "the orchestration version (default: the latest registered)" },
  { "input-file", arg = "FILE", help = "read the input from FILE" },
  { "wait", arg = "T", help = "wait up to T (ms, or like 30s) for the instance to finish and print its result" },
}

M.arguments = { { "ID" }, { "NAME" }, { "INPUT", optional = true } }

M.help = args.help("duroxlua start [options] ID NAME [INPUT]",
  "Queues a StartOrchestration message for a new instance ID of orchestration NAME with the\n" ..
  "raw INPUT (JSON text by convention; default null), exactly as Duroxide's client does;\n" ..
  "the runtime creates the instance on its next turn. An existing ID is refused (Duroxide\n" ..
  "would silently ignore the start). With --wait, waits for the instance to complete or\n" ..
  "fail and prints its output or error (exit status 1 if it failed, 5 if the wait timed out).\n" ..
  "With --json: {instance_id} or, with --wait, the final status.",
  M.options)

function M.run(a, ctx)
  local id, name, input = a[1], a[2], a[3]
  if a.input_file and input then return ctx:fail("give INPUT or --input-file, not both", 2) end
  local dx, code = ctx:open(true)
  if not dx then return code end
  if a.input_file then
    local err
    input, err = files.read(a.input_file, dx:config().max_payload_bytes, "input file")
    if not input then return ctx:fail(err, 2) end
  end
  local ok, rcode = ctx:call("start_orchestration", id, name, input, a.version)
  if not ok then return rcode end
  if not a.wait then
    if ctx.json then ctx:print_json { instance_id = id } else ctx:out(("started %s (%s)\n"):format(id, name)) end
    return 0
  end
  local st, wcode = ctx:call("wait_for_orchestration", id, a.wait)
  if not st then return wcode end
  if ctx.json then
    st.instance_id = id
    ctx:print_json(st)
    return st.status == "Completed" and 0 or 1
  elseif st.status == "Completed" then
    ctx:out(("%s completed: %s\n"):format(id, format.oneline(st.output or "")))
  else
    ctx:out(("%s %s: %s\n"):format(id, st.status:lower(), format.oneline(st.error or "")))
  end
  return st.status == "Completed" and 0 or 1
end

return M
