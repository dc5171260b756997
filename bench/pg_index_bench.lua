-- pg_index_bench.lua - duroxlua's side of bench/pg_index_bench.sh on a PostgreSQL store, as
-- "name value" lines (ms; medians of ROUNDS):
--   duroxlua bench/pg_index_bench.lua URL [ROUNDS]
--   duroxlua bench/pg_index_bench.lua URL ROUNDS PSQL_URL   (also the catch-up, at the end)
-- Rebuilds the visibility index (build_ms, size_bytes), then: the first page of 100 Failed with
-- summaries on a fresh handle (the open timed apart, and how many fresh handles scanned the
-- store in their first sync), with the index and without (index = false: the runtime's
-- tables); page 1 and page 500 in each order and for name = 'Order' AND status = 'Running'
-- (or the last full page when there are fewer), with the index and without; the idle sync;
-- group-bys (with P95 and average durations; by status); runtime metrics (not index-served on
-- PostgreSQL).
local durox = require "durox"
local url = arg[1]
local rounds = math.tointeger(tonumber(arg[2] or "3"))

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

-- the server's CPU ms so far (bench/pg_server_cpu.lua)
local server_cpu = dofile((arg[0]:match("^(.*)/") or ".") .. "/pg_server_cpu.lua")
local last_cpu, last_srv = 0, 0
local function timed(f)
  local s0, c0 = server_cpu(), os.clock()
  local t0 = durox.now()
  local r = f()
  local t = durox.now() - t0
  last_cpu, last_srv = (os.clock() - c0) * 1000, server_cpu() - s0
  return t, r
end

local function say(k, v) print(k .. " " .. tostring(v)) end
-- the CPU of the last timed call: process ms, server ms
local function say_cpu(k) print(("%s_cpu_ms %.0f+%.0f"):format(k, last_cpu, last_srv)) end

do
  local dx = assert(durox.open(url))
  local t = timed(function() return assert(dx:index_build { rebuild = true }) end)
  local st = dx:index_status()
  say("build_ms", t)
  say_cpu("build")
  say("size_bytes", st.size_bytes)
  say("instances", st.instances)
  dx:close()
end

for _, mode in ipairs { "index", "store" } do
  local opts = mode == "index" and { statement_timeout_ms = 300000 } or { index = false, statement_timeout_ms = 300000 }
  local first, opened, scans, fcpu = {}, {}, 0, {}
  for _ = 1, rounds do
    local o, dx = timed(function() return assert(durox.open(url, opts)) end)
    local t, r = timed(function()
      return assert(dx:list_instances_paginated { filter = { status = "Failed" }, page_size = 100 })
    end)
    assert(#r.instances == 100)
    first[#first + 1] = t
    fcpu[#fcpu + 1] = last_cpu + last_srv
    opened[#opened + 1] = o
    if mode == "index" then scans = scans + dx:index_status().sync_scans end
    dx:close()
  end
  say("failed_page_fresh_" .. mode, median(first))
  say("failed_page_fresh_" .. mode .. "_cpu_ms_proc_plus_server", median(fcpu))
  say("open_fresh_" .. mode, median(opened))
  -- how many of those fresh handles' syncs found the feed's gate open and scanned the store (the
  -- first one after the rebuild does; on an idle store the others must not)
  if mode == "index" then say("failed_page_fresh_index_scans_of_" .. rounds, scans) end
  local dx = assert(durox.open(url, opts))
  local cases = { { "CreatedAt" }, { "UpdatedAt" }, { "InstanceId" }, { "OrchestrationName" },
    { "CreatedAt", "name = 'Order' AND status = 'Running'", "order_running" } }
  for _, c in ipairs(cases) do
    local order, filter, label = c[1], c[2], c[3] or c[1]
    local n = assert(dx:list_instances_paginated { filter = filter, page_size = 1, total_count = true }).total_count
    local page = math.min(500, n // 100)
    local p1 = {}
    for _ = 1, rounds do
      p1[#p1 + 1] = timed(function() return assert(dx:list_instances_paginated { filter = filter, order_by = order, page_size = 100 }) end)
    end
    say(("page1_%s_%s"):format(label, mode), median(p1))
    if page > 1 and mode == "index" then
      -- the token that ends page page-1: one page of (page-1)*100 rows
      local skip = assert(dx:list_instances_paginated { filter = filter, order_by = order, page_size = (page - 1) * 100 })
      local pn = {}
      for _ = 1, rounds do
        pn[#pn + 1] = timed(function()
          return assert(dx:list_instances_paginated { filter = filter, order_by = order, page_size = 100,
            page_token = skip.next_page_token })
        end)
      end
      say(("page%d_%s_%s"):format(page, label, mode), median(pn))
    end
  end
  if mode == "index" then
    assert(dx:index_sync())
    local s = {}
    for _ = 1, 200 do
      local w0 = durox.now()
      assert(dx:index_sync())
      s[#s + 1] = durox.now() - w0
    end
    local sum = 0
    for _, v in ipairs(s) do sum = sum + v end
    say("idle_sync_avg_ms", sum / #s)
  end
  -- every instance with its summary, no paging (against listAllInstances' ids)
  local big = assert(durox.open(url, { index = opts.index, statement_timeout_ms = 300000,
    config = { max_list_instances = 10000000 } }))
  say("list_all_" .. mode, (timed(function() return assert(big:list_instances()) end)))
  say_cpu("list_all_" .. mode)
  big:close()
  say("group_by_name_p95_" .. mode, (timed(function()
    return assert(dx:query_instances { group_by = "OrchestrationName", aggregate = { "Count", "P95Duration", "AverageDuration" } })
  end)))
  say_cpu("group_by_name_p95_" .. mode)
  say("group_by_status_count_" .. mode, (timed(function()
    return assert(dx:query_instances { group_by = "Status", aggregate = "Count" })
  end)))
  say_cpu("group_by_status_count_" .. mode)
  say("runtime_metrics_" .. mode, (timed(function() return assert(dx:get_runtime_metrics()) end)))
  say_cpu("runtime_metrics_" .. mode)
  dx:close()
end

-- The catch-up: a synced handle, then copies of 2,200 root instances the runtime wrote (new ids
-- "<id>~cu", their executions and history rows, as bench/make_pg_store.sh derives them) are
-- committed, and the next sync is timed, per 10,000 history rows. PSQL_URL: libpq URL of the
-- database (no schema= parameter).
local psql_url = arg[3]
if psql_url then
  local dx = assert(durox.open(url))
  assert(dx:index_sync())
  local sql = [[
SET search_path TO dx;
BEGIN;
CREATE TEMP TABLE cu ON COMMIT DROP AS SELECT instance_id AS id, to_json(instance_id)::text AS qid,
  to_json(instance_id || '~cu')::text AS qnew FROM instances
  WHERE parent_instance_id IS NULL AND instance_id NOT LIKE '%~cu' ORDER BY instance_id LIMIT 2200;
INSERT INTO instances (instance_id, orchestration_name, orchestration_version, current_execution_id, created_at,
  updated_at, parent_instance_id, custom_status, custom_status_version)
  SELECT x.id || '~cu', i.orchestration_name, i.orchestration_version, i.current_execution_id, i.created_at,
         i.updated_at, NULL, i.custom_status, i.custom_status_version FROM cu x JOIN instances i ON i.instance_id = x.id;
INSERT INTO executions (instance_id, execution_id, status, output, started_at, completed_at,
  duroxide_version_major, duroxide_version_minor, duroxide_version_patch)
  SELECT x.id || '~cu', e.execution_id, e.status, e.output, e.started_at, e.completed_at,
         e.duroxide_version_major, e.duroxide_version_minor, e.duroxide_version_patch
  FROM cu x JOIN executions e ON e.instance_id = x.id;
INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data, created_at)
  SELECT x.id || '~cu', h.execution_id, h.event_id, h.event_type, replace(h.event_data, x.qid, x.qnew), h.created_at
  FROM cu x JOIN history h ON h.instance_id = x.id;
COMMIT;
SELECT count(*) FROM history WHERE instance_id LIKE '%~cu';
]]
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(sql)
  f:close()
  local p = assert(io.popen(("psql -X -q -A -t -v ON_ERROR_STOP=1 '%s' -f '%s'"):format(psql_url, path)))
  local rows = tonumber((p:read("a"):match("(%d+)%s*$")))
  p:close()
  os.remove(path)
  local t = timed(function() return assert(dx:index_sync()) end)
  say("catchup_rows", rows)
  say("catchup_ms", t)
  say_cpu("catchup")
  say("catchup_per_10k_ms", t * 10000 / rows)
  local v = assert(dx:index_verify())
  say("verified_after_catchup", v.ok)
  -- leave the store as it was
  os.execute(("psql -X -q '%s' -c \"SET search_path TO dx; DELETE FROM history WHERE instance_id LIKE '%%~cu';"
    .. " DELETE FROM executions WHERE instance_id LIKE '%%~cu'; DELETE FROM instances WHERE instance_id LIKE"
    .. " '%%~cu'\""):format(psql_url))
  local t2 = timed(function() return assert(dx:list_instances_paginated { page_size = 1, total_count = true }) end)
  say("sync_after_purge_of_2200_ms", t2)
  dx:close()
end
