-- bench/metrics.lua - side-by-side benchmark of our metrics and a group-by query against
-- Duroxide's own management API on the same store, in one run:
--
--   duroxlua bench/metrics.lua STORE.db [runs]        (default 3 runs)
--   duroxlua bench/metrics.lua postgres://...?schema=dx [runs]   (a PostgreSQL store)
--
-- For each run it starts fresh processes (the OS page cache is warmed once first, by reading
-- the store's files): ours (this same binary) measures, in process,
--   cold    the first call in a fresh process with a fresh handle,
--   warm    a second call that recomputes (fresh = true): same process; the history digest
--           then reads only rows added since the first pass (none in a static store),
--   cached  a call answered by the handle's metrics cache (mean of many calls),
-- and Duroxide's (tests/harness/client.js metrics-timed) the in-process time of
-- getSystemMetrics and getQueueDepths, first call and repeat. Prints medians (min..max) in ms.
-- Make a large store with: node tests/harness/scenarios.js create seed.db --demo 300 &&
-- bench/make_store.sh seed.db big.db 1000000 (under /tmp: several GB). Use a Release build.
local durox = require "durox"

local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
local repo = here .. "/.."
local HARNESS = os.getenv("DUROX_HARNESS") or (repo .. "/tests/harness")

local function sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- ---- the child: one fresh process measures ours --------------------------------------

-- A wall clock with sub-millisecond resolution is not in the module; durox.now() is ms, and
-- the operations timed here take milliseconds to seconds. Cached calls are timed as a batch.
local function timed(f)
  local t0 = durox.now()
  local r = f()
  return durox.now() - t0, r
end

local function store_url(db) return db:match("^postgres") and db or "sqlite:" .. db end

local function child(db)
  local out = {}
  local dx = assert(durox.open(store_url(db), { readonly = true, config = { cache_ttl_seconds = 3600 } }))
  local m
  out.runtime_cold, m = timed(function() return assert(dx:get_runtime_metrics()) end)
  out.instances = m.total_instances_started
  out.history = m.total_history_events
  out.runtime_warm = timed(function() return assert(dx:get_runtime_metrics { fresh = true }) end)
  local n, t0 = 2000, durox.now()
  for _ = 1, n do assert(dx:get_runtime_metrics()) end
  out.runtime_cached = (durox.now() - t0) / n
  out.queue_warm = timed(function() return assert(dx:get_queue_metrics { fresh = true }) end)
  out.orch_warm = timed(function() return assert(dx:get_orchestration_metrics { fresh = true }) end)
  dx:close()
  -- the group-by queries, each first in a fresh handle (query_instances is not cached)
  dx = assert(durox.open(store_url(db), { readonly = true }))
  local q1 = { group_by = { "OrchestrationName", "Status" }, aggregate = { "Count", "SuccessRate", "FailureRate" } }
  local q2 = { group_by = { "OrchestrationName" } } -- every aggregate: durations and p50/p95/p99
  out.group_counts_cold = timed(function() return assert(dx:query_instances(q1)) end)
  out.group_counts_warm = timed(function() return assert(dx:query_instances(q1)) end)
  out.group_all_cold = timed(function() return assert(dx:query_instances(q2)) end)
  out.group_all_warm = timed(function() return assert(dx:query_instances(q2)) end)
  local d = assert(dx:get_provider_diagnostics())
  out.storage = d.storage_size_bytes
  dx:close()
  io.stdout:write(durox.encode_json(out), "\n")
end

if arg[1] == "--child" then
  child(arg[2])
  return
end

-- ---- the driver -------------------------------------------------------------------------

local db = arg[1]
local runs = tonumber(arg[2] or "3")
if not db then
  io.stderr:write("usage: duroxlua bench/metrics.lua STORE.db [runs]\n")
  os.exit(2)
end
local self_bin = os.getenv("DUROXLUA") or arg[-1]

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local s = p:read("a")
  local ok, how, code = p:close()
  if not ok then error(("command failed (%s %s): %s"):format(how, code, cmd)) end
  return s
end

-- warm the OS cache: every run starts with the store's pages in memory (a PostgreSQL server
-- keeps its own cache: one untimed pass first)
if db:match("^postgres") then
  capture(("%s %s --child %s >/dev/null"):format(sh(self_bin), sh(arg[0]), sh(db)))
else
  capture(("cat %s %s >/dev/null 2>&1 || true"):format(sh(db), sh(db .. "-wal")))
end

local ours, theirs = {}, {}
for r = 1, runs do
  io.stderr:write(("run %d/%d\n"):format(r, runs))
  ours[r] = assert(durox.decode_json(capture(("%s %s --child %s"):format(sh(self_bin), sh(arg[0]), sh(db)))))
  local t = assert(durox.decode_json(capture(("node %s %s metrics-timed 3"):format(sh(HARNESS .. "/client.js"),
    sh(db)))))
  theirs[r] = {
    sys_first = t.runs[1].system_metrics_ms,
    sys_repeat = math.min(t.runs[2].system_metrics_ms, t.runs[3].system_metrics_ms),
    depth_first = t.runs[1].queue_depths_ms,
    depth_repeat = math.min(t.runs[2].queue_depths_ms, t.runs[3].queue_depths_ms),
    instances = t.systemMetrics.totalInstances,
  }
  assert(theirs[r].instances == ours[r].instances, "both sides must count the same instances")
end

local function stat(list, key)
  local v = {}
  for i, x in ipairs(list) do v[i] = x[key] end
  table.sort(v)
  return v[(#v + 1) // 2], v[1], v[#v]
end

local function cell(list, key)
  if not key then return "-" end
  local med, lo, hi = stat(list, key)
  local f = med < 1 and "%.3f" or (med < 100 and "%.1f" or "%.0f")
  if runs == 1 then return f:format(med) end
  return (f .. " (" .. f .. ".." .. f .. ")"):format(med, lo, hi)
end

local o = ours[1]
print(("store: %s - %d instances, %d history events, %.2f GB; %d run(s), times in ms, median (min..max)")
  :format(db, o.instances, o.history, o.storage / 1e9, runs))
print("ours: this duroxlua in a fresh process per run; Duroxide: npm duroxide-linux-x64-gnu 0.1.29 through")
print("tests/harness/client.js, in-process time of each call (process start and store opening excluded on both sides)")
print()
local rows = {
  { "runtime metrics vs getSystemMetrics", { ours, "runtime_cold" }, { ours, "runtime_warm" },
    { ours, "runtime_cached" }, { theirs, "sys_first" }, { theirs, "sys_repeat" } },
  { "queue metrics vs getQueueDepths", nil, { ours, "queue_warm" }, nil, { theirs, "depth_first" },
    { theirs, "depth_repeat" } },
  { "orchestration metrics (per name+version)", nil, { ours, "orch_warm" }, nil, nil, nil },
  { "group by name,status: count, rates", { ours, "group_counts_cold" }, { ours, "group_counts_warm" }, nil, nil, nil },
  { "group by name: all aggregates, p50/95/99", { ours, "group_all_cold" }, { ours, "group_all_warm" }, nil, nil, nil },
}
local head = { "", "ours cold", "ours warm", "ours cached", "Duroxide first", "Duroxide repeat" }
local cells = { head }
for _, r in ipairs(rows) do
  local line = { r[1] }
  for k = 2, 6 do line[k] = r[k] and cell(r[k][1], r[k][2]) or "-" end
  cells[#cells + 1] = line
end
local w = {}
for _, line in ipairs(cells) do
  for k, c in ipairs(line) do w[k] = math.max(w[k] or 0, utf8.len(c)) end
end
for _, line in ipairs(cells) do
  local parts = {}
  for k, c in ipairs(line) do
    parts[k] = k == 1 and c .. (" "):rep(w[k] - utf8.len(c)) or (" "):rep(w[k] - utf8.len(c)) .. c
  end
  print(table.concat(parts, "  "))
end
print()
print("cold: first call in a fresh process (every digest computed from scratch); warm: the same call")
print("again, recomputed (fresh = true: the instance pass and the queues again, the history digest from the")
print("rows added since - none here, after a check that nothing was deleted); cached: answered by the")
print("handle's metrics cache within cache_ttl_seconds. Queue and orchestration metrics are timed warm.")
