-- durox.cli.filters: the instance filter flags every command that selects instances shares
-- (list, cancel, raise, wait, purge, restart): their option specs and the filter table they
-- make. Not a command itself (it has no run).
local M = {}

-- The filter options (an args spec section, see durox.cli.args).
M.OPTIONS = {
  { section = "Filters" },
  { "query", short = "q", arg = "QUERY",
    help = "a query in the query language, ANDed with the other filters" },
  { "status", short = "s", arg = "S", multi = true, split = true,
    help = "Running, Completed, Failed, ContinuedAsNew, Unknown (repeatable; a,b)" },
  { "name", arg = "NAME", help = "orchestration name" },
  { "name-prefix", arg = "P", help = "orchestration name starts with P" },
  { "version", arg = "V", help = "orchestration version" },
  { "id-prefix", arg = "P", help = "instance id starts with P" },
  { "parent", arg = "ID", help = "sub-orchestrations of instance ID" },
  { "roots", group = "parent", help = "only instances without a parent" },
  { "children", group = "parent", help = "only sub-orchestrations" },
  { "created-after", arg = "T", type = "time", help = "created after T (ISO-8601, ms, or relative like -24h)" },
  { "created-before", arg = "T", type = "time", help = "created before T" },
  { "updated-after", arg = "T", type = "time", help = "updated after T" },
  { "updated-before", arg = "T", type = "time", help = "updated before T" },
  { "completed-after", arg = "T", type = "time", help = "completed after T" },
  { "completed-before", arg = "T", type = "time", help = "completed before T" },
  { "failure-kind", arg = "K", multi = true, split = true,
    help = "application, cancelled, poison, nondeterminism, infrastructure, configuration" },
  { "custom-status", arg = "TEXT", help = "custom status equals TEXT" },
  { "custom-status-prefix", arg = "P", help = "custom status starts with P" },
  { "min-executions", arg = "N", type = "count", help = "at least N executions" },
  { "max-executions", arg = "N", type = "count", help = "at most N executions" },
  { "text", arg = "TEXT", help = "id, name, custom status, input or output contains TEXT (any case)" },
}

-- filter field <- option key, for the options that map straight through
local DIRECT = {
  { "status", "status" },
  { "orchestration_name", "name" },
  { "name_prefix", "name_prefix" },
  { "version", "version" },
  { "instance_id_prefix", "id_prefix" },
  { "parent_instance", "parent" },
  { "created_after", "created_after" },
  { "created_before", "created_before" },
  { "updated_after", "updated_after" },
  { "updated_before", "updated_before" },
  { "completed_after", "completed_after" },
  { "completed_before", "completed_before" },
  { "failure_kind", "failure_kind" },
  { "custom_status", "custom_status" },
  { "custom_status_prefix", "custom_status_prefix" },
  { "min_executions", "min_executions" },
  { "max_executions", "max_executions" },
  { "text", "text" },
}

-- The filter table for the parsed options (times stay text, so that a relative time like
-- -24h describes the same filter on every page and page tokens stay valid).
function M.filter(a)
  local f = {}
  for _, m in ipairs(DIRECT) do f[m[1]] = a[m[2]] end
  if a.roots then f.has_parent = false elseif a.children then f.has_parent = true end
  f.query = a.query -- parsed by the engine and ANDed with the fields above
  return f
end

-- Whether any filter option was given.
function M.given(a)
  for _, m in ipairs(DIRECT) do
    if a[m[2]] ~= nil then return true end
  end
  return a.roots == true or a.children == true or a.query ~= nil
end

-- After a selection by --name matched nothing: when no orchestration has that exact name but
-- one differs only in case (or by a typo), says so on stderr ("did you mean 'Order'?").
function M.name_hint(ctx, a)
  local name = a.name
  if type(name) ~= "string" or not ctx.dx then return end
  local ok, res = pcall(ctx.dx.query_instances, ctx.dx,
    { group_by = "OrchestrationName", aggregate = "Count", limit = 100000 })
  if not ok or not res then return end
  local names, close = {}, nil
  for _, g in ipairs(res.groups) do
    local n = g.orchestration_name
    if n == name then return end
    if type(n) == "string" then
      names[#names + 1] = n
      if not close and n:lower() == name:lower() then close = n end
    end
  end
  close = close or require("durox.cli.args").suggest(name, names)
  local format = require "durox.format"
  io.stderr:write(("duroxlua %s: no orchestration is named '%s'%s\n"):format(ctx.command, format.oneline(name),
    close and ("; did you mean '%s'?"):format(format.oneline(close)) or ""))
end

-- Concatenates option spec lists into one.
function M.spec(...)
  local out = {}
  for _, list in ipairs { ... } do
    for _, opt in ipairs(list) do out[#out + 1] = opt end
  end
  return out
end

return M
