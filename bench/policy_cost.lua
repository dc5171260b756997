-- bench/policy_cost.lua - what an access-control policy costs, side by side in one run:
--
--   duroxlua bench/policy_cost.lua STORE.db [runs]        (default 9 runs)
--
-- Two operations, each under four handles on the same store:
--   page      the first page of 100 instances (list_instances_paginated, newest first)
--   dry run   cancel_instances over every instance as a dry run (10,000 of them on a store
--             made with bench/make_store.sh tests' scenarios.db big.db 10000)
--   none      no policy (no access control)
--   filter    a policy whose can_list_instances returns a filter that admits every instance
--             (the store evaluates it: same answer, the cost of the policy call and the SQL)
--   team      the same as a caller's own filter without a policy, and as a policy's filter
--             (a narrower answer: the overhead of the policy for the same result)
--   per-row   can_list_instances = true and a Lua can_view_instance asked for every row
-- The goal of issue 8: a filter-returning policy costs at most 10% over no policy. Times are
-- the median of the runs (min..max) per operation, in ms of CPU time; each run times a batch (pages: 50
-- calls) and divides; the ratios are taken within a run. Use a Release build on a quiet machine.
local durox = require "durox"

local db = arg[1]
local runs = tonumber(arg[2] or "9")
if not db then
  io.stderr:write("usage: duroxlua bench/policy_cost.lua STORE.db [runs]\n")
  os.exit(2)
end

local ALLOW = "can_view_history = true, can_cancel_instance = true, can_view_metrics = true"
local POLICIES = {
  none = nil,
  filter = ("return { can_list_instances = function(ctx) return 'created_at >= 0' end, can_view_instance = true, %s }")
    :format(ALLOW),
  team_policy = ("return { can_list_instances = function(ctx) return \"name STARTS_WITH 'Echo'\" end, "
    .. "can_view_instance = true, %s }"):format(ALLOW),
  per_row = ("return { can_list_instances = true, can_view_instance = function(ctx, inst) "
    .. "return inst.name ~= 'NoSuchName' end, %s }"):format(ALLOW),
}

local function open(case)
  local opts = { readonly = false, config = { max_bulk_operations = 100000, max_list_instances = 100000 } }
  if POLICIES[case] then
    opts.policy_source = POLICIES[case]
    opts.context = { user_id = "bench", roles = { "bench" } }
  end
  return assert(durox.open("sqlite:" .. db, opts))
end

-- A copy of the store: the policy handles append audit records (policy loads); keep the
-- original as it is.
local tmp = os.tmpname()
os.remove(tmp)
db = (function()
  local dst = tmp .. ".db"
  assert(os.execute(("sqlite3 %q '.backup %s'"):format(db, dst)))
  return dst
end)()

local total = (function()
  local dx = open("none")
  local n = assert(dx:list_instances_paginated { page_size = 1, total_count = true }).total_count
  dx:close()
  return n
end)()

local CASES = {
  { name = "no policy", case = "none", filter = nil, base = true },
  { name = "filter policy (admits all)", case = "filter", filter = nil },
  { name = "per-row can_view_instance", case = "per_row", filter = nil },
  { name = "team: caller's filter, no policy", case = "none", filter = "name STARTS_WITH 'Echo'", base = true },
  { name = "team: the policy's filter", case = "team_policy", filter = nil },
}

-- CPU time of this process in ms (user + system): a machine that other work loads disturbs it
-- far less than wall time, and everything timed here runs in this process (the store's pages
-- are in the OS cache after the warm-up).
local function cpu_ms() return os.clock() * 1000 end

local function page(dx, filter)
  local p = assert(dx:list_instances_paginated { page_size = 100, filter = filter })
  return #p.instances
end

local function dry(dx, filter)
  local r = assert(dx:cancel_instances { filter = filter or {}, dry_run = true, max_instances = 100000 })
  return r.total_matched
end

local results = {}
for _, c in ipairs(CASES) do results[c.name] = { page = {}, dry = {}, rp = {}, rd = {}, rows = 0, matched = 0 } end

-- Each run times every case in turn, so a case and the one it is compared with run close
-- together; the ratio is taken within each run (the machine's speed drifts between runs).
local PAGES = 50
for run = 1, runs do
  local base
  for _, c in ipairs(CASES) do
    local dx = open(c.case)
    page(dx, c.filter) -- warm the statement cache and the page cache
    local t0 = cpu_ms()
    local rows
    for _ = 1, PAGES do rows = page(dx, c.filter) end
    local r = results[c.name]
    r.page[run] = (cpu_ms() - t0) / PAGES
    r.rows = rows
    t0 = cpu_ms()
    r.matched = dry(dx, c.filter)
    r.dry[run] = cpu_ms() - t0
    dx:close()
    if c.base then base = r end
    if not c.base then
      r.rp[run] = r.page[run] / base.page[run]
      r.rd[run] = r.dry[run] / base.dry[run]
    end
  end
end

local function stats(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  return s[math.floor((#s + 1) / 2)], s[1], s[#s]
end

print(("policy_cost: %s, %d instances, %d runs (median, min..max ms of CPU time; pages: %d per run)"):format(arg[1], total,
  runs, PAGES))
print(("%-36s %5s %22s %7s %24s %s"):format("case", "rows", "first page of 100", "matched", "bulk dry run",
  "vs its baseline (median of the runs' ratios: page / dry run)"))
for _, c in ipairs(CASES) do
  local r = results[c.name]
  local pm, pmin, pmax = stats(r.page)
  local dm, dmin, dmax = stats(r.dry)
  local vs = ""
  if not c.base then
    local a, amin, amax = stats(r.rp)
    local b, bmin, bmax = stats(r.rd)
    vs = ("%+.1f%% (%+.0f..%+.0f) / %+.1f%% (%+.0f..%+.0f)"):format((a - 1) * 100, (amin - 1) * 100,
      (amax - 1) * 100, (b - 1) * 100, (bmin - 1) * 100, (bmax - 1) * 100)
  end
  print(("%-36s %5d %8.2f (%.2f..%.2f) %7d %8.1f (%.1f..%.1f) %s"):format(c.name, r.rows, pm, pmin, pmax, r.matched,
    dm, dmin, dmax, vs))
end
print("baselines: 'no policy' for the filter and per-row policies, the caller's own team filter for the policy's")
print("team filter; goal for a filter-returning policy: at most +10%.")
os.remove(db)
os.remove(db .. "-wal")
os.remove(db .. "-shm")
