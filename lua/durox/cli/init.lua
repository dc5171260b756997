-- durox.cli: the dispatcher of duroxlua's subcommands. src/cli/main.c calls
-- main({command, args...}, store_url, config_file) for `duroxlua [--store URL] <command> ...` and exits
-- with the returned code. Each command is a module durox.cli.<name> exporting summary,
-- help, options (an args spec), optionally arguments (its positional arguments) and
-- run(args, ctx) -> exit code (durox.cli.exit). docs/cli.md tells how to add one.
local durox = require "durox"
local args = require "durox.cli.args"
local exit = require "durox.cli.exit"
local format = require "durox.format"
local output = require "durox.cli.output"

local M = {}

-- Exit codes (the table is durox.cli.exit).
M.OK, M.FAILURE, M.USAGE = exit.OK, exit.FAILED, exit.USAGE
M.exit = exit

-- The command module for name (an embedded or loaded durox.cli.<name> with run), or nil.
function M.command(name)
  if type(name) ~= "string" or not name:match("^[%w_-]+$") then return nil end
  local modname = "durox.cli." .. name
  if package.loaded[modname] == nil and package.preload[modname] == nil then return nil end
  local mod = require(modname)
  if type(mod) == "table" and type(mod.run) == "function" then return mod end
  return nil
end

-- Sorted names of every available command (embedded durox.cli.<name> modules with run).
function M.commands()
  local names = {}
  for key in pairs(package.preload) do
    local name = type(key) == "string" and key:match("^durox%.cli%.([%w_-]+)$")
    if name and M.command(name) then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

-- The interpreter's own options (src/cli/main.c reads them; --help and the manual print them).
M.INTERPRETER_OPTIONS = {
  { "--store URL", "open this Duroxide store as the global 'dx' (default: $DUROX_STORE)" },
  { "--config FILE", "its ManagementConfig file (default: $DUROX_CONFIG)" },
  { "--no-index", "read the store without the visibility index (docs/index.md)" },
  { "--nice N", "run at CPU nice level N, 0-19 (default: $DUROX_NICE): a poller yields to the runtime" },
  { "--policy FILE", "access-control policy (default: $DUROX_POLICY; docs/access-control.md)" },
  { "--user NAME", "the caller's user id for the policy (default: $DUROX_USER)" },
  { "--role R1,R2", "the caller's roles, repeatable (default: $DUROX_ROLES)" },
  { "--audit-file FILE", "JSON Lines audit log of a read-only handle (default: $DUROX_AUDIT_FILE)" },
  { "--access-reason TEXT", "why the caller acts (break-glass policies; default: $DUROX_ACCESS_REASON)" },
  { "-e CODE", "run the Lua code CODE" },
  { "-l MOD", "require module MOD into the global MOD (-l G=MOD: into G)" },
  { "-i", "the REPL after the script and -e code" },
  { "-v, --version", "print the version" },
  { "-E", "ignore the environment (LUA_INIT, LUA_PATH, DUROX_STORE, DUROX_CONFIG)" },
  { "-W", "turn warnings on" },
  { "-h, --help", "this help" },
  { "--", "end of options; '-' alone runs standard input" },
}

-- `duroxlua --help`: the interpreter and the way to the commands.
function M.interpreter_usage()
  local lines = {
    "usage: duroxlua [options] [script [args]]       run Lua code (no script: the REPL on a terminal)",
    "       duroxlua [--store URL] command [args]    run a command ('duroxlua help' lists them)",
    "Options:",
  }
  for _, o in ipairs(M.INTERPRETER_OPTIONS) do lines[#lines + 1] = ("  %-20s %s"):format(o[1], o[2]) end
  lines[#lines + 1] = "In the REPL: 'help' explains it, Tab completes, Ctrl-C stops a running call, Ctrl-D leaves."
  return table.concat(lines, "\n") .. "\n"
end

-- The overall usage text (`duroxlua help`).
function M.usage()
  local lines = {
    "usage: duroxlua [--store URL] <command> [options] [args]",
    "       duroxlua [--store URL] [script [args]]   (a Lua 5.4 interpreter; no script: the REPL)",
    "",
    "Commands:",
  }
  local names = M.commands()
  local width = 0
  for _, name in ipairs(names) do width = math.max(width, #name) end
  for _, name in ipairs(names) do
    lines[#lines + 1] = ("  %-" .. width .. "s  %s"):format(name, M.command(name).summary or "")
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Every command takes --store URL, --config FILE, --no-index, --json and -h/--help,"
  lines[#lines + 1] = "and --policy FILE, --user NAME, --role R1,R2 for access control (docs/access-control.md)."
  lines[#lines + 1] = "Exit status: 0 done, 1 failed, 2 usage, 3 not found, 4 refused, 5 timeout, 6 partly done,"
  lines[#lines + 1] = "130 interrupted ('duroxlua help exit' explains each)."
  lines[#lines + 1] = "Run 'duroxlua <command> --help' for the options of a command."
  return table.concat(lines, "\n") .. "\n"
end

-- ---- the context handed to a command ----------------------------------------------------

local Ctx = {}
Ctx.__index = Ctx

-- Reports a failure and returns its exit code. code is an exit code or an engine code name
-- ("NOTFOUND", ...; default FAILED). With --json (or --format json/jsonl) the error is one
-- JSON object on stdout: {"error": message, "code": code name, "exit": exit code}; else one
-- line "duroxlua <command>: message" on stderr.
function Ctx:fail(message, code)
  local name = type(code) == "string" and code or nil
  local status = name and exit.of(name) or code or exit.FAILED
  message = format.oneline(message)
  if self.json or self.format == "jsonl" then
    local doc = { error = message, code = name or durox.null, exit = status }
    io.stdout:write(self.format == "jsonl" and (durox.encode_json(doc) .. "\n") or durox.encode_json(doc, true) .. "\n")
  else
    io.stderr:write(("duroxlua %s: %s\n"):format(self.command, message))
  end
  return status
end

-- Writes text to stdout.
function Ctx:out(text)
  io.stdout:write(text)
end

-- Prints v as one pretty JSON document on stdout, times also as ISO-8601 (<field>_iso).
function Ctx:print_json(v)
  io.stdout:write(output.json(v))
end

--[[ Prints a command's result in the chosen --format:
  doc      the JSON document (--format json / --json)
  records  the list of records (jsonl: one per line; csv: one per row)
  columns  the CSV columns { {name [, get = function(record)]} }
  text     a function returning the table text (the default format) ]]
function Ctx:emit(spec)
  local f = self.format
  if f == "json" then
    self:print_json(spec.doc)
  elseif f == "jsonl" then
    self:out(output.jsonl(spec.records))
  elseif f == "csv" then
    self:out(output.csv(spec.columns, spec.records))
  else
    self:out(spec.text())
  end
end

-- The durox.open options of a command: read-only unless write, the configuration file, and
-- access control from access = { policy, user, roles, audit_file, reason, source_ip } (the
-- command line and environment, src/cli/main.c). Under a policy, a read-only command without
-- an audit file opens the store writable so that its audit records (the policy load, denials)
-- go into the store's audit log: its reads stay reads. $DUROX_AUDIT_KEY keys the hash chain.
function M.open_options(write, config_file, access)
  local opts = { readonly = not write, config_file = config_file }
  access = access or {}
  if access.policy then
    opts.policy = access.policy
    opts.context = { user_id = access.user, roles = access.roles, source_ip = access.source_ip,
                     reason = access.reason }
    if not write and not access.audit_file then opts.readonly = false end
  end
  opts.audit_file = access.audit_file
  if access.no_index then opts.index = false end
  opts.audit_key = os.getenv("DUROX_AUDIT_KEY")
  if opts.audit_key == "" then opts.audit_key = nil end
  return opts
end

-- Opens the store, read-only unless write is true (extra: more durox.open options). Returns
-- the handle, or nil and the exit code after reporting the failure.
function Ctx:open(write, extra)
  if not self.store_url then
    return nil, self:fail("no store given (use --store URL or set DUROX_STORE)", exit.USAGE)
  end
  local opts = M.open_options(write, self.config_file, self.access)
  if self.no_index then opts.index = false end
  for k, v in pairs(extra or {}) do opts[k] = v end
  local ok, dx, msg, code = pcall(durox.open, self.store_url, opts)
  if not ok then return nil, self:fail(tostring(dx):gsub("^[^:\n]+:%d+: ", ""), exit.USAGE) end
  if not dx then return nil, self:fail(msg, code) end
  self.dx = dx
  if not self.no_index then
    local ok, code = self:build_index()
    if not ok then return nil, code end
  end
  return dx
end

-- Builds the visibility index now when it was never built (or a build was interrupted),
-- with a progress bar on a terminal: the first read would build it anyway, silently.
-- Ctrl-C stops the build at a chunk boundary; the next command resumes it. Returns true,
-- or nil and the exit code.
function Ctx:build_index()
  -- under a policy the index's status is store-wide (and may be denied): no progress bar,
  -- the read builds the index silently
  if self.dx:access_info().enabled then return true end
  local st = self.dx:index_status()
  if not st or (st.state ~= "absent" and st.state ~= "building") then return true end
  if not durox.isatty("stderr") then return true end
  local drawn, last = false, 0
  local ok, res, msg = pcall(self.dx.index_build, self.dx, { progress = function(done, total)
    local now = durox.now()
    if now - last >= 100 or done >= total then
      last = now
      local frac = total > 0 and done / total or 1
      local fill = math.floor(frac * 30 + 0.5)
      io.stderr:write(("\rbuilding the visibility index [%s%s] %d/%d %3d%%\27[K"):format(("#"):rep(fill),
        ("-"):rep(30 - fill), done, total, math.floor(frac * 100)))
      io.stderr:flush()
      drawn = true
    end
  end })
  if drawn then io.stderr:write("\r\27[K") io.stderr:flush() end
  if not ok then
    local text = tostring(res):gsub("^[^:\n]+:%d+: ", "")
    if text:match("interrupted!$") then
      return nil, self:fail("interrupted while building the visibility index; the next command resumes it", 130)
    end
    error(res, 0)
  end
  if not res then
    -- the store answers without the index; say why once
    io.stderr:write(("duroxlua: the visibility index was not built: %s\n"):format(format.oneline(msg)))
  end
  return true
end

-- Calls handle method `method` with the arguments, protected. Returns its result, or nil
-- and an exit code after reporting the failure: a raised error (a malformed filter or
-- request built from the command line) is a usage error, a failed call's code is mapped
-- by durox.cli.exit.
function Ctx:call(method, ...)
  local ok, res, msg, code = pcall(self.dx[method], self.dx, ...)
  if not ok then
    local text = tostring(res):gsub("^[^:\n]+:%d+: ", "")
    if text:match("interrupted!$") then return nil, self:fail("interrupted", exit.INTERRUPTED) end
    return nil, self:fail(text, exit.USAGE)
  end
  if res == nil then
    return nil, self:fail(msg or "failed", code)
  end
  return res
end

-- Width available to tables: nil (no limit) with --wide, else the terminal's.
function Ctx:width()
  if self.args.wide then return nil end
  return format.term_width()
end

-- ---- main --------------------------------------------------------------------------------

-- Error handler: the message, plus a traceback when $DUROX_DEBUG is set.
local function handler(err)
  local msg = tostring(err)
  if os.getenv("DUROX_DEBUG") then msg = debug.traceback(msg, 2) end
  return msg
end

-- Whether argv asks for JSON output (for errors found before the options are parsed).
local function wants_json(argv)
  for i = 2, #argv do
    local a = argv[i]
    if a == "--" then break end
    if a == "--json" or a == "--format=json" or (a == "--format" and argv[i + 1] == "json") then return "json" end
    if a == "--format=jsonl" or (a == "--format" and argv[i + 1] == "jsonl") then return "jsonl" end
  end
end

-- The access settings of a command: its own options over the global ones (main.c).
local function access_of(parsed, global)
  global = global or {}
  local a = {}
  for k, v in pairs(global) do a[k] = v end
  if parsed.policy then a.policy = parsed.policy end
  if parsed.user then a.user = parsed.user end
  if parsed.audit_file then a.audit_file = parsed.audit_file end
  if parsed.access_reason then a.reason = parsed.access_reason end
  if parsed.role and #parsed.role > 0 then a.roles = parsed.role end
  -- roles from $DUROX_ROLES arrive as one "a,b" string: split it
  local roles = {}
  for _, r in ipairs(a.roles or {}) do
    for part in (r .. ","):gmatch("(.-),") do
      if part ~= "" then roles[#roles + 1] = part end
    end
  end
  a.roles = roles
  if a.policy == "" then a.policy = nil end
  return a
end

-- Runs argv = { command, args... } with the global store URL and configuration file (or nil)
-- and the global settings of main.c (access control, and no_index for duroxlua --no-index);
-- returns the exit code.
function M.main(argv, store_url, config_file, access)
  local name = argv[1]
  if name == nil or name == "-h" or name == "--help" then
    io.stdout:write(M.usage())
    return M.OK
  end
  local cmd = M.command(name)
  local early = setmetatable({ command = name }, Ctx)
  local jf = wants_json(argv)
  early.json, early.format = jf == "json", jf
  if not cmd then
    local close = args.suggest(name, M.commands())
    local msg = ("unknown command '%s' (%ssee 'duroxlua help')"):format(format.oneline(name),
      close and ("did you mean '%s'? "):format(close) or "")
    if early.json or early.format == "jsonl" then return early:fail(msg, M.USAGE) end
    io.stderr:write("duroxlua: ", msg, "\n")
    return M.USAGE
  end
  local parsed, err = args.parse(argv, 2, cmd.options or {}, cmd.arguments)
  if parsed and parsed.help then
    io.stdout:write(cmd.help or M.usage())
    return M.OK
  end
  if not parsed then return early:fail(err, M.USAGE) end
  local fmt = parsed.format
  if parsed.json then
    if fmt and fmt ~= "json" then
      return early:fail(("options '--json' and '--format %s' cannot be combined"):format(fmt), M.USAGE)
    end
    fmt = "json"
  end
  local ctx = setmetatable({
    command = name,
    args = parsed,
    format = fmt or "table",
    json = fmt == "json",
    store_url = parsed.store or store_url,
    config_file = parsed.config or config_file,
    access = access_of(parsed, access),
    no_index = parsed.no_index or (access ~= nil and access.no_index) or false,
    now = durox.now(),
  }, Ctx)
  if ctx.store_url == "" then ctx.store_url = nil end
  if ctx.config_file == "" then ctx.config_file = nil end
  local ok, code = xpcall(cmd.run, handler, parsed, ctx)
  if ctx.dx then ctx.dx:close() end
  io.stdout:flush()
  if not ok then
    if tostring(code):match("interrupted!") then return ctx:fail("interrupted", exit.INTERRUPTED) end
    return ctx:fail(code, exit.FAILED)
  end
  return math.tointeger(code) or M.OK
end

return M
