-- overview.lua - an operator's overview of a Duroxide store, written against the public
-- `durox` API only (a ready-made script and an example of scripting duroxlua):
--   duroxlua --store sqlite:app.db scripts/overview.lua [--running N] [--failures N]
-- Prints the instance counts by status and failure kind, a table per orchestration, what
-- the stalest running instances wait on, and the most recent failures.
local durox = require "durox"
local format = require "durox.format"

local opts = { running = 15, failures = 10 }
local i = 1
while arg and arg[i] do
  local a = arg[i]
  if (a == "--running" or a == "--failures") and tonumber(arg[i + 1]) then
    opts[a:sub(3)] = math.tointeger(tonumber(arg[i + 1]))
    i = i + 2
  elseif a == "-h" or a == "--help" then
    print("usage: duroxlua --store URL scripts/overview.lua [--running N] [--failures N]")
    os.exit(0)
  else
    io.stderr:write("overview: unknown argument '", a, "'\n")
    os.exit(2)
  end
end

local dx = rawget(_G, "dx")
if not dx then
  io.stderr:write("overview: no store (run with duroxlua --store URL or set DUROX_STORE)\n")
  os.exit(2)
end
local width = format.term_width()
local now = durox.now()

local function section(title)
  io.write("\n", title, "\n", string.rep("-", format.width(title)), "\n")
end

-- ---- counts, in one pass over every instance (constant memory) ------------------------

local total, by_status, by_kind, by_name = 0, {}, {}, {}
local roots, children, can = 0, 0, 0
for s in dx:instances() do
  total = total + 1
  by_status[s.status] = (by_status[s.status] or 0) + 1
  if s.failure_kind then by_kind[s.failure_kind] = (by_kind[s.failure_kind] or 0) + 1 end
  local key = s.orchestration_name .. "\0" .. (s.version or "-")
  local n = by_name[key]
  if not n then
    n = { name = s.orchestration_name, version = s.version or "-", total = 0 }
    by_name[key] = n
  end
  n.total = n.total + 1
  local col = s.failure_kind == "cancelled" and "Cancelled" or s.status
  n[col] = (n[col] or 0) + 1
  if s.parent_instance then children = children + 1 else roots = roots + 1 end
  if s.execution_count > 1 then can = can + 1 end
end

local info = dx:info()
print(("Store %s:%s (schema %s)"):format(info.provider, info.location, info.schema_version))
local parts = {}
for _, st in ipairs({ "Running", "Completed", "Failed", "ContinuedAsNew", "Unknown" }) do
  if by_status[st] then parts[#parts + 1] = ("%d %s"):format(by_status[st], st) end
end
print(("%s: %s"):format(format.count(total, "instance"), table.concat(parts, ", ")))
if by_status.Failed then
  local kinds = {}
  for k, n in pairs(by_kind) do kinds[#kinds + 1] = ("%d %s"):format(n, k) end
  table.sort(kinds)
  print("failures: " .. table.concat(kinds, ", "))
end
print(("%d roots, %d sub-orchestrations, %d instances that continued as new"):format(roots, children, can))

-- ---- per orchestration ---------------------------------------------------------------

section("By orchestration")
local names = {}
for _, n in pairs(by_name) do names[#names + 1] = n end
table.sort(names, function(a, b)
  if a.total ~= b.total then return a.total > b.total end
  return a.name .. a.version < b.name .. b.version
end)
local cols = {
  { title = "ORCHESTRATION", max = 32 }, { title = "VERSION", max = 10 },
  { title = "TOTAL", align = "right" }, { title = "RUNNING", align = "right" },
  { title = "COMPLETED", align = "right" }, { title = "FAILED", align = "right" },
  { title = "CANCELLED", align = "right" }, { title = "SUCCESS", align = "right" },
}
local rows = {}
for _, n in ipairs(names) do
  local done = (n.Completed or 0) + (n.Failed or 0) + (n.Cancelled or 0)
  rows[#rows + 1] = {
    n.name, n.version, tostring(n.total), tostring(n.Running or 0), tostring(n.Completed or 0),
    tostring(n.Failed or 0), tostring(n.Cancelled or 0),
    done > 0 and ("%.1f%%"):format(100 * (n.Completed or 0) / done) or "-",
  }
end
io.write(format.table(cols, rows, width))

-- ---- what running instances wait on ---------------------------------------------------

local function waits_on(d)
  local cur = d.current_execution
  if not cur then return "no current execution row" end
  local w = {}
  for _, e in ipairs(cur.pending_events) do
    w[#w + 1] = (e.kind == "queue" and "queue " or "event ") .. e.name
  end
  for _, t in ipairs(cur.pending_timers) do
    w[#w + 1] = "timer " .. (t.fire_at > now and ("in " .. format.duration(t.fire_at - now))
      or ("overdue by " .. format.duration(now - t.fire_at)))
  end
  for _, a in ipairs(cur.pending_activities) do
    w[#w + 1] = "activity " .. a.name .. (a.tag and (" [tag " .. a.tag .. "]") or "")
  end
  for _, c in ipairs(cur.pending_sub_orchestrations) do w[#w + 1] = "child " .. c.instance_id end
  if #w == 0 then return "nothing recorded (a message is being processed?)" end
  if #w > 3 then return table.concat(w, ", ", 1, 3) .. (", +%d more"):format(#w - 3) end
  return table.concat(w, ", ")
end

if (by_status.Running or 0) > 0 then
  section(("Running instances: what they wait on (the %d stalest)"):format(math.min(opts.running, by_status.Running)))
  local page = assert(dx:list_instances_paginated({ filter = { status = "Running" }, order_by = "UpdatedAt",
    direction = "asc", page_size = opts.running }))
  rows = {}
  for _, s in ipairs(page.instances) do
    local d = dx:get_instance_details(s.instance_id)
    rows[#rows + 1] = {
      format.oneline(s.instance_id), s.orchestration_name, d and waits_on(d) or "(gone)",
      format.relative(s.updated_at, now),
    }
  end
  io.write(format.table({ { title = "INSTANCE", max = 36 }, { title = "ORCHESTRATION", max = 24 },
    { title = "WAITING ON", max = 60 }, { title = "LAST PROGRESS" } }, rows, width))
end

-- ---- recent failures -------------------------------------------------------------------

if (by_status.Failed or 0) > 0 then
  section("Most recent failures")
  local page = assert(dx:list_instances_paginated({ filter = { status = "Failed" }, order_by = "UpdatedAt",
    page_size = opts.failures }))
  rows = {}
  for _, s in ipairs(page.instances) do
    rows[#rows + 1] = {
      format.oneline(s.instance_id), s.orchestration_name, s.failure_kind or "-",
      format.relative(s.completed_at or s.updated_at, now), format.oneline(s.error or ""),
    }
  end
  io.write(format.table({ { title = "INSTANCE", max = 36 }, { title = "ORCHESTRATION", max = 20 },
    { title = "KIND" }, { title = "WHEN" }, { title = "ERROR", shrink = 2 } }, rows, width))
end
