-- pg_load.lua STORE_URL - the load duroxlua puts on a PostgreSQL store, per call: the
-- statements each call sends (the handle's own counter, get_provider_diagnostics().read_calls
-- + write_calls, less what the diagnostics call itself costs) and the connections the handle
-- holds (pg_stat_activity, application_name = duroxlua, through psql). Prints "call
-- statements" lines, for docs/postgres.md. Writes (a cancel, a bulk cancel of 10, a purge)
-- go to the store: give it a copy. Run by bench/pg_bench.sh (step 5).
local durox = require "durox"
local url = assert(arg[1], "usage: duroxlua bench/pg_load.lua STORE_URL")
local base = url:gsub("[?&]schema=[^&]*", ""):gsub("%?$", "")

local function psql(sql)
  local p = assert(io.popen(("psql -X -q -A -t %q -c %q"):format(base, sql)))
  local out = p:read("a")
  p:close()
  return (out:gsub("%s+$", ""))
end

local t0 = durox.now()
local dx = assert(durox.open(url, { index = false }))
local open_stmts -- statements of durox.open itself
local function count()
  local d = assert(dx:get_provider_diagnostics { fresh = true })
  return d.read_calls + d.write_calls
end
local c1 = count()
local c2 = count()
local diag = c2 - c1 -- what one diagnostics call costs
open_stmts = c1 - diag
local function per(name, f)
  local before = count()
  f()
  local n = count() - before - diag
  io.write(("%-44s %d\n"):format(name, n))
end
io.write(("%-44s %d (connect, then these)\n"):format("durox.open", open_stmts))
io.write(("%-44s %d\n"):format("get_provider_diagnostics", diag))
local running = assert(dx:list_instances_paginated { filter = { status = "Running" }, page_size = 20,
  order_by = "InstanceId" }).instances
local failed = assert(dx:list_instances_paginated { filter = { status = "Failed" }, page_size = 1 }).instances[1]
local completed = assert(dx:list_instances_paginated { filter = { status = "Completed" }, page_size = 1,
  order_by = "InstanceId" }).instances[1]
per("list_instances_paginated (a page of 100)", function() assert(dx:list_instances_paginated { page_size = 100 }) end)
per("  with total_count", function() assert(dx:list_instances_paginated { page_size = 100, total_count = true }) end)
per("  status = Failed, newest first", function()
  assert(dx:list_instances_paginated { filter = { status = "Failed" }, page_size = 100 })
end)
per("dx:instances(), 1000 instances", function()
  local n = 0
  for _ in dx:instances() do
    n = n + 1
    if n == 1000 then break end
  end
end)
per("get_instance_details", function() assert(dx:get_instance_details(failed.instance_id)) end)
per("read_execution_history", function() assert(dx:read_execution_history(failed.instance_id)) end)
per("get_instances_status (20 ids)", function()
  local ids = {}
  for _, s in ipairs(running) do ids[#ids + 1] = s.instance_id end
  assert(dx:get_instances_status(ids))
end)
per("get_runtime_metrics (recomputed)", function() assert(dx:get_runtime_metrics { fresh = true }) end)
per("get_queue_metrics (recomputed)", function() assert(dx:get_queue_metrics { fresh = true }) end)
per("get_runtime_metrics (cached)", function() assert(dx:get_runtime_metrics()) end)
per("query_instances (group by name, status)", function()
  assert(dx:query_instances { group_by = { "OrchestrationName", "Status" } })
end)
per("find_stuck_instances", function() assert(dx:find_stuck_instances {}) end)
per("read_changes (500 changes)", function() assert(dx:read_changes { limit = 500 }) end)
per("cancel_instance", function() assert(dx:cancel_instance(running[1].instance_id, "load")) end)
per("cancel_instances (10 ids, one job)", function()
  local ids = {}
  for i = 2, 11 do ids[#ids + 1] = running[i].instance_id end
  assert(dx:cancel_instances { instances = ids, reason = "load" })
end)
per("purge_instances (one completed root)", function()
  assert(dx:purge_instances { instances = { completed.instance_id } })
end)
io.write(("%-44s %s\n"):format("connections of this handle",
  psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'duroxlua' AND datname = current_database()")))
dx:close()
io.write(("%-44s %.0f ms\n"):format("(all of the above)", durox.now() - t0))
