-- durox.script: what the ready-made operational scripts in scripts/ share, so each is a short
-- program on the public API: their command line (declared like a duroxlua command's, with
-- --help from the same spec), the store (the global dx that `duroxlua --store URL` opens,
-- else --store URL or $DUROX_STORE), one-line errors, and the exit statuses of duroxlua's
-- commands (durox.cli.exit). Works under duroxlua and from stock lua5.4 with durox.so.
local durox = require "durox"
local args = require "durox.cli.args"
local exit = require "durox.cli.exit"

local M = {}

M.exit = exit

-- Reports message as "<script>: message" on stderr and exits with status (default FAILED).
function M.fail(name, message, status)
  io.stderr:write(("%s: %s\n"):format(name, require("durox.format").oneline(message)))
  os.exit(status or exit.FAILED)
end

--[[ Parses the script's arguments and opens the store:
  spec = { name = "failure_report", usage = "...", description = "...",
           options = { args spec }, arguments = { positional declaration }, write = true|nil }
  Returns the parsed options and the store handle; prints --help and exits 0; on a bad
  command line exits 2 with a one-line message. ]]
function M.start(spec)
  spec.options = spec.options or {}
  local help = args.help("duroxlua --store URL scripts/" .. spec.name .. ".lua " .. spec.usage, spec.description,
    spec.options)
  local a, err = args.parse(arg or {}, 1, spec.options, spec.arguments or {})
  if not a then M.fail(spec.name, err, exit.USAGE) end
  if a.help then
    io.stdout:write(help)
    os.exit(exit.OK)
  end
  local dx = rawget(_G, "dx")
  local url = a.store or (dx == nil and os.getenv("DUROX_STORE")) or nil
  if url == "" then url = nil end
  if url then
    local code
    dx, err, code = durox.open(url, { readonly = not spec.write, config_file = a.config or os.getenv("DUROX_CONFIG") })
    if not dx then M.fail(spec.name, err, exit.of(code)) end
  elseif dx == nil then
    M.fail(spec.name, "no store (run it as 'duroxlua --store URL scripts/" .. spec.name .. ".lua' or set DUROX_STORE)",
      exit.USAGE)
  elseif spec.write and dx:info().readonly then
    M.fail(spec.name, "the store is open read-only; this script writes", exit.REFUSED)
  end
  return a, dx
end

-- Calls dx:method(...) and returns its result, or exits with the failure's message and
-- status (a raised error: the command line was wrong, 2).
function M.call(name, dx, method, ...)
  local ok, res, msg, code = pcall(dx[method], dx, ...)
  if not ok then M.fail(name, tostring(res):gsub("^[^:\n]+:%d+: ", ""), exit.USAGE) end
  if res == nil then M.fail(name, msg, exit.of(code)) end
  return res
end

-- Prints v as one JSON document with ISO-8601 twins of the times.
function M.print_json(v)
  io.stdout:write(require("durox.cli.output").json(v))
end

return M
