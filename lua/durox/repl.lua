-- durox.repl: duroxlua's read-eval-print loop. It reads lines with durox.term (libedit: line
-- editing, persistent history, Tab completion of dx: methods, durox functions, request and
-- filter field names and instance ids; plain lines when standard input is no terminal),
-- runs each chunk as an expression first ("return <line>") and as statements otherwise,
-- continues a chunk that is not complete yet on the next line, and prints results with
-- durox.pretty. 'help' explains the REPL and the methods. Ctrl-C discards the line at the
-- prompt and interrupts a running call (the error "interrupted!" raised by duroxlua's hook).
-- Run by src/cli/main.c (run_repl).
local durox = require "durox"
local pretty = require "durox.pretty"

local M = {}

M.PROMPT, M.PROMPT2 = "durox> ", "   >> "

-- ---- help -------------------------------------------------------------------------------------

-- One line per method of a store handle: its call and what it returns (docs/lua-api.md has
-- the full reference). Methods added later without an entry are listed by name.
M.METHODS = {
  info = "dx:info() -> provider, location, schema version, capabilities",
  config = "dx:config([fields]) -> the ManagementConfig (updated with fields)",
  close = "dx:close()",
  list_instances = "dx:list_instances([filter] [, predicate]) -> { InstanceSummary, ... }",
  list_instances_paginated = "dx:list_instances_paginated{filter=, page_size=, page_token=, order_by=, direction=,"
    .. " total_count=} -> { instances, next_page_token, total_count }",
  instances = "for s in dx:instances([filter] [, {order_by=, batch_size=}]) do ... end",
  search_instances = "dx:search_instances(text | {text=, filter=, limit=}) -> { InstanceSummary, ... }",
  get_orchestration_status = "dx:get_orchestration_status(id) -> { status, output, error, ... }",
  get_orchestration_descriptor = "dx:get_orchestration_descriptor(id) -> { name, version, parent_instance }",
  list_executions = "dx:list_executions(id) -> { 1, 2, ... }",
  get_instances_status = "dx:get_instances_status{ids} -> { {instance_id, status, failure_kind}, ... }",
  get_instance_details = "dx:get_instance_details(id) -> { summary, executions, current_execution, statistics }",
  get_instance_statistics = "dx:get_instance_statistics(id) -> InstanceStatistics",
  read_execution_history = "dx:read_execution_history(id [, execution_id]) -> { event, ... }",
  get_execution_history_filtered = "dx:get_execution_history_filtered{instance_id=, execution_id=, event_types=,"
    .. " page_size=, ...} -> { events, next_page_token }",
  get_runtime_metrics = "dx:get_runtime_metrics([{now=, fresh=}]) -> RuntimeMetrics",
  get_queue_metrics = "dx:get_queue_metrics([{now=, fresh=}]) -> QueueMetrics",
  get_orchestration_metrics = "dx:get_orchestration_metrics([{merge_versions=}]) -> { OrchestrationTypeMetrics, ... }",
  get_provider_diagnostics = "dx:get_provider_diagnostics() -> ProviderDiagnostics",
  query_instances = "dx:query_instances{filter=, group_by=, aggregate=, limit=} -> { groups, total_groups, ... }",
  get_time_series_metrics = "dx:get_time_series_metrics{from=, to=, bucket=, series=, name=} -> { buckets, totals }",
  get_instance_dependencies = "dx:get_instance_dependencies(id [, {max_depth=}]) -> DependencyGraph",
  find_stuck_instances = "dx:find_stuck_instances([{now=, stall_threshold_ms=, ...}]) -> { instances, truncated }",
  start_orchestration = "dx:start_orchestration(id, name [, input [, version]]) -> id",
  raise_event = "dx:raise_event(id, event_name [, data]) -> true",
  enqueue_event = "dx:enqueue_event(id, queue [, data]) -> true",
  cancel_instance = "dx:cancel_instance(id [, reason]) -> true",
  wait_for_orchestration = "dx:wait_for_orchestration(id [, timeout [, poll]]) -> status",
  cancel_instances = "dx:cancel_instances{instances= | filter=, reason=, dry_run=, max_instances=} -> BulkCancelResponse",
  raise_event_bulk = "dx:raise_event_bulk{instances= | filter=, event_name=, event_data=} -> BulkEventResponse",
  wait_for_instances = "dx:wait_for_instances{instances= | filter=, timeout=, mode=} -> BulkWaitResponse",
  purge_instances = "dx:purge_instances{instances= | filter=, force=, dry_run=} -> response",
  prune_executions = "dx:prune_executions{instances= | filter=, keep_last=, completed_before=} -> response",
  restart_instances = "dx:restart_instances{instances= | filter=, latest_version=} -> response",
  list_jobs = "dx:list_jobs([{state=, kind=, limit=}]) -> { job, ... }",
  get_job = "dx:get_job(job_id [, {targets = true}]) -> job",
  resume_job = "dx:resume_job(job_id [, {rate=, batch_size=}]) -> response",
  stop_job = "dx:stop_job(job_id) -> 'stopping' | 'stopped' | 'abandoned'",
}

-- The methods of a store handle (from its metatable), sorted; {} without a handle.
local function store_methods()
  local names = {}
  local ok, mt = pcall(function()
    local dx = rawget(_G, "dx")
    return dx ~= nil and getmetatable(dx) or nil
  end)
  local index = ok and type(mt) == "table" and mt.__index or nil
  if type(index) == "table" then
    for k in pairs(index) do
      if type(k) == "string" then names[#names + 1] = k end
    end
  else
    for k in pairs(M.METHODS) do names[#names + 1] = k end
  end
  table.sort(names)
  return names
end

-- The text of 'help' (topic nil) or 'help <name>'.
function M.help(topic)
  if topic and topic ~= "" then
    local name = topic:gsub("^dx[:.]", ""):gsub("^durox%.", "")
    if M.METHODS[name] then return M.METHODS[name] .. "\n(docs/lua-api.md has every field)\n" end
    for _, m in ipairs(store_methods()) do
      if m == name then return ("dx:%s(...) - see docs/lua-api.md\n"):format(m) end
    end
    if type(durox[name]) == "function" then return ("durox.%s(...) - see docs/lua-api.md\n"):format(name) end
    return ("no help for '%s'; 'help' lists what there is\n"):format(topic)
  end
  local lines = {
    "The duroxlua REPL: Lua 5.4 with the durox module; the store opened with --store is 'dx'.",
    "Type Lua: an expression prints its value (tables as trees, instance lists as tables);",
    "a line that is not complete yet continues on the next one.",
    "  Tab          completes dx: methods, durox. functions, field names inside { }, and",
    "               instance ids inside quotes",
    "  Up/Down      the history (kept in " .. (M.history_path or "no file") .. ")",
    "  Ctrl-C       discards the line, or stops a running call (the REPL stays)",
    "  Ctrl-D       leaves (also os.exit())",
    "  help NAME    one method, e.g. help list_instances",
    "",
    "Store methods (dx:...):",
  }
  local row = "  "
  for _, m in ipairs(store_methods()) do
    if #row + #m + 1 > 78 then
      lines[#lines + 1] = row
      row = "  "
    end
    row = row .. m .. " "
  end
  lines[#lines + 1] = row
  local fns = {}
  for k, v in pairs(durox) do
    if type(v) == "function" then fns[#fns + 1] = k end
  end
  table.sort(fns)
  lines[#lines + 1] = "Module functions (durox.*): " .. table.concat(fns, " ")
  lines[#lines + 1] = "Commands of duroxlua (list, show, cancel, ...) run from the shell: duroxlua help."
  return table.concat(lines, "\n") .. "\n"
end

-- ---- completion ---------------------------------------------------------------------------------

-- Field names inside a table constructor: the filter's and the requests'.
M.FIELDS = {
  "status", "failure_kind", "orchestration_name", "name", "name_prefix", "version", "instance_id",
  "instance_id_prefix", "id_prefix", "parent_instance", "has_parent", "created_after", "created_before",
  "updated_after", "updated_before", "completed_after", "completed_before", "custom_status",
  "custom_status_prefix", "text", "min_executions", "max_executions", "query", "predicate",
  "filter", "page_size", "page_token", "order_by", "direction", "total_count", "batch_size",
  "instances", "reason", "event_name", "event_data", "dry_run", "max_instances", "rate", "progress",
  "authorize", "force", "keep_last", "latest_version", "timeout", "poll_interval", "mode", "count",
  "execution_id", "event_types", "from_event_id", "to_event_id", "from_time", "to_time",
  "include_payloads", "group_by", "aggregate", "limit", "from", "to", "bucket", "series", "now", "fresh",
  "merge_versions", "max_depth", "targets",
}

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
                   "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

-- Keys of a value that completion may offer: a table's string keys (and its __index
-- table's), a store handle's methods.
local function keys_of(v)
  local out = {}
  local function add(t)
    for k in pairs(t) do
      if type(k) == "string" and k:match("^[%a_][%w_]*$") then out[#out + 1] = k end
    end
  end
  if type(v) == "table" then add(v) end
  local mt = getmetatable(v)
  if type(mt) == "table" and type(mt.__index) == "table" then add(mt.__index) end
  return out
end

-- The candidates among names that start with prefix, each prefixed with lead, sorted, unique.
local function matching(names, prefix, lead)
  local seen, out = {}, {}
  for _, n in ipairs(names) do
    if n:sub(1, #prefix) == prefix and not seen[n] then
      seen[n] = true
      out[#out + 1] = lead .. n
    end
  end
  table.sort(out)
  return out
end

-- Whether position pos of line is inside an unclosed { (a table constructor).
local function in_table(before)
  local depth = 0
  for c in before:gsub("%b\"\"", ""):gsub("%b''", ""):gmatch("[{}]") do
    depth = depth + (c == "{" and 1 or -1)
  end
  return depth > 0
end

-- The completion of text, the word before the cursor; line is the whole line and start
-- the offset of text in it. Returns the list of candidates (each replacing text).
function M.complete(text, line, start)
  local before = line:sub(1, start)
  -- inside a string: an instance id of the store
  local quote = before:sub(-1)
  if quote == '"' or quote == "'" then
    local dx = rawget(_G, "dx")
    if dx == nil then return {} end
    local ok, page = pcall(dx.list_instances_paginated, dx,
      { filter = { instance_id_prefix = text ~= "" and text or nil }, page_size = 100, order_by = "InstanceId" })
    if not ok or not page then return {} end
    local ids = {}
    for _, s in ipairs(page.instances) do ids[#ids + 1] = s.instance_id end
    return matching(ids, text, "")
  end
  -- a.b.c: or a:b: the keys of the value before the last separator
  local path, sep, partial = text:match("^([%a_][%w_%.:]-)([%.:])([%w_]*)$")
  if path then
    local v = _G
    for part in path:gmatch("[^%.:]+") do
      if type(v) ~= "table" and type(v) ~= "userdata" then return {} end
      local ok, x = pcall(function() return v[part] end)
      if not ok then return {} end
      v = x
    end
    return matching(keys_of(v), partial, path .. sep)
  end
  local names = {}
  if in_table(before) then
    for _, f in ipairs(M.FIELDS) do names[#names + 1] = f end
  end
  for _, k in ipairs(keys_of(_G)) do names[#names + 1] = k end
  for _, k in ipairs(KEYWORDS) do names[#names + 1] = k end
  names[#names + 1] = "help"
  return matching(names, text, "")
end

-- ---- the loop -------------------------------------------------------------------------------------

-- Where the history is kept: $DUROX_HISTORY (empty: nowhere), else ~/.duroxlua_history.
local function history_file()
  local p = os.getenv("DUROX_HISTORY")
  if p ~= nil then return p ~= "" and p or nil end
  local home = os.getenv("HOME")
  return home and home ~= "" and (home .. "/.duroxlua_history") or nil
end

-- The prompts: _PROMPT and _PROMPT2 when the user set them.
local function prompt(first)
  local p = rawget(_G, first and "_PROMPT" or "_PROMPT2")
  if p ~= nil then return tostring(p) end
  return first and M.PROMPT or M.PROMPT2
end

-- Compiles a chunk: as an expression first, then as statements. Returns the function, or
-- nil and the message, with incomplete = true when more lines may complete it.
local function compile(code)
  local expr = code:gsub("^=", "return ", 1)
  if expr == code then expr = "return " .. code .. ";" end
  local fn = load(expr, "=stdin", "t")
  if fn then return fn end
  local msg
  fn, msg = load(code, "=stdin", "t")
  if fn then return fn end
  if code:sub(1, 1) == "\27" then
    -- Lua takes a leading ESC for a precompiled chunk; it is a terminal key (an arrow...)
    -- typed where no line editing reads the keys
    return nil, ("stdin:1: the line starts with ESC (%s), a terminal key such as an arrow, not Lua")
      :format(code:sub(1, 8):gsub("[%c\128-\255]", function(c) return ("\\x%02x"):format(c:byte()) end))
  end
  return nil, msg, msg:sub(-5) == "<eof>"
end

local function traceback(err)
  if type(err) == "string" and err:find("interrupted!", 1, true) then return "interrupted" end
  local msg = type(err) == "string" and err or tostring(err)
  -- the traceback of the user's code only: cut where the REPL's own frames begin
  local tb = debug.traceback(msg, 2)
  return (tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
end

-- Runs the REPL until the end of input. opts.banner: print the version line first;
-- opts.version: its text.
function M.run(opts)
  opts = opts or {}
  local ok_term, term = pcall(require, "durox.term")
  if not ok_term then term = nil end
  if term then
    M.history_path = history_file()
    if M.history_path then
      local ok, msg = term.history(M.history_path)
      if not ok then io.stderr:write("duroxlua: ", msg, "\n") end
    end
    term.set_completer(M.complete)
  end
  if opts.banner then
    io.stdout:write(opts.version or ("duroxlua " .. durox.version), rawget(_G, "dx") ~= nil
      and " - store open as 'dx'" or " - no store (use --store URL)", "; 'help' explains the REPL\n")
  end
  local function readline(p)
    if term then return term.readline(p) end
    io.stdout:write(p)
    io.stdout:flush()
    return io.stdin:read("l")
  end
  local chunk = nil
  while true do
    local line = readline(prompt(chunk == nil))
    if line == nil then break end
    if line == false then
      chunk = nil -- Ctrl-C: the chunk is discarded
    else
      local code = chunk and (chunk .. "\n" .. line) or line
      local topic = chunk == nil and code:match("^%s*help%s*(%S*)%s*$")
      if topic then
        if term then term.add_history(code) end
        io.stdout:write(M.help(topic))
        chunk = nil
      elseif chunk == nil and code:match("^%s*$") then
        -- nothing to run
      else
        local fn, msg, incomplete = compile(code)
        if incomplete then
          chunk = code
        else
          chunk = nil
          if term then term.add_history(code) end
          if not fn then
            io.stderr:write("duroxlua: ", msg, "\n")
          else
            local r = table.pack(xpcall(fn, traceback))
            if not r[1] then
              io.stderr:write(r[2] == "interrupted" and "interrupted\n" or ("duroxlua: " .. tostring(r[2]) .. "\n"))
            elseif r.n > 1 then
              pretty.print(table.unpack(r, 2, r.n))
            end
          end
        end
      end
    end
  end
  io.stdout:write("\n")
  io.stdout:flush()
end

return M
