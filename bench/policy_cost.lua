-- bench/policy_cost.lua - what an access-control policy costs, side by side in one run:
--
--   duroxlua bench/policy_cost.lua STORE [runs]        (default 9 runs)
--
-- STORE: a SQLite file (the bench works on a copy of it) or a PostgreSQL URL
-- (postgresql://...&schema=dx; the bench appends the policy loads' audit records to it: give it
-- a throwaway copy, as bench/policy_cost.sh does). bench/policy_cost.sh makes a 10,000-instance
-- store of each provider from rows the real runtime wrote and runs this on both.
--
-- Two operations, each under four handles on the same store:
--   page      the first page of 100 instances (list_instances_paginated, newest first)
--   dry run   cancel_instances over every instance as a dry run (10,000 of them on a store
--             made with bench/make_store.sh tests' scenarios.db big.db 10000)
--   none      no policy (no access control)
--   filter    a policy whose can_list_instances returns a filter that admits every instance
--             (the store evaluates it: same answer, the cost of the policy call and the SQL),
--             compared with no policy and with the same filter given by the caller
--   team      the same as a caller's own filter without a policy, and as a policy's filter
--             (a narrower answer: the overhead of the policy for the same result)
--   per-row   can_list_instances = true and a Lua can_view_instance asked for every row
-- The goal of issue 8: a filter-returning policy costs at most 10% over no policy. Times are
-- the median of the runs (min..max) per operation, in ms of CPU time (below); each run times
-- 400 pages per case on SQLite, 50 on PostgreSQL, the cases interleaved page by page, and
-- divides; the ratios are taken within a run. Use an optimized build.
local durox = require "durox"

local db = arg[1]
local runs = tonumber(arg[2] or "9")
if not db then
  io.stderr:write("usage: duroxlua bench/policy_cost.lua STORE.db|POSTGRES_URL [runs]\n")
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

local url
local function open(case)
  local opts = { readonly = false, config = { max_bulk_operations = 100000, max_list_instances = 100000 } }
  if POLICIES[case] then
    opts.policy_source = POLICIES[case]
    opts.context = { user_id = "bench", roles = { "bench" } }
  end
  return assert(durox.open(url, opts))
end

local pg = db:match("^postgres") ~= nil
-- SQLite: a copy of the store (the policy handles append audit records: policy loads); keep
-- the original as it is.
local tmp
if not pg then
  tmp = os.tmpname()
  os.remove(tmp)
  tmp = tmp .. ".db"
  assert(os.execute(("sqlite3 %q '.backup %s'"):format(db, tmp)))
end
url = pg and db or "sqlite:" .. tmp

local total = (function()
  local dx = open("none")
  local n = assert(dx:list_instances_paginated { page_size = 1, total_count = true }).total_count
  dx:close()
  return n
end)()

-- vs: the cases each is compared with (the ratio of the two within each run)
local CASES = {
  { name = "no policy", case = "none", filter = nil },
  { name = "all: caller's filter, no policy", case = "none", filter = "created_at >= 0" },
  { name = "filter policy (admits all)", case = "filter", filter = nil,
    vs = { "no policy", "all: caller's filter, no policy" } },
  { name = "per-row can_view_instance", case = "per_row", filter = nil, vs = { "no policy" } },
  { name = "team: caller's filter, no policy", case = "none", filter = "name STARTS_WITH 'Echo'" },
  { name = "team: the policy's filter", case = "team_policy", filter = nil, vs = { "team: caller's filter, no policy" } },
}

-- CPU time in ms: a machine that other work loads disturbs it far less than wall time.
-- SQLite: this process (user + system; everything timed runs in it, the store's pages are in
-- the OS cache after the warm-up). PostgreSQL: this process plus the server backend serving
-- the handle (a local server: its /proc/PID/schedstat, ns on the CPU), found by
-- application_name=duroxlua in pg_stat_activity right after the handle opened.
local function cpu_ms() return os.clock() * 1000 end
local backend -- the PostgreSQL backend pid of the open handle
local function backend_ms()
  local f = backend and io.open("/proc/" .. backend .. "/schedstat")
  if not f then return 0 end
  local ns = tonumber(f:read("l"):match("^(%d+)"))
  f:close()
  return ns / 1e6
end
local function clock() return cpu_ms() + backend_ms() end
-- The backend of the handle opened last: the one duroxlua backend of this database that is not
-- in known (the backends of the handles already open).
local function find_backend(known)
  local conn = db:gsub("[?&]schema=[^&]*", ""):gsub("%?$", "")
  local p = assert(io.popen(("psql -X -A -t %q -c %q"):format(conn, "SELECT pid FROM pg_stat_activity WHERE "
    .. "application_name = 'duroxlua' AND datname = current_database() AND pid <> pg_backend_pid() "
    .. "ORDER BY backend_start DESC")))
  local out = p:read("a")
  p:close()
  local pids = {}
  for pid in out:gmatch("%d+") do
    if not known[pid] then pids[#pids + 1] = pid end
  end
  assert(#pids == 1, "expected one new backend of this handle, found " .. #pids .. " (another duroxlua on the database?)")
  assert(io.open("/proc/" .. pids[1] .. "/schedstat"), "the server's backend is not on this machine")
  return pids[1]
end

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
for _, c in ipairs(CASES) do
  for _, b in ipairs(c.vs or {}) do
    results[c.name].rp[b], results[c.name].rd[b] = {}, {}
  end
end

-- Each run opens a handle per case and then times the pages INTERLEAVED: page i of every case,
-- in a rotating order, then page i+1, so a case and the one it is compared with share the
-- machine's state (another job on the other core, the CPU's clock) page by page; summed per
-- case (this process's CPU around each call plus that handle's backend's). The ratio is taken
-- within each run. The dry runs, a second each, then run one case after another.
local PAGES = pg and 50 or 400 -- a SQLite page takes a fraction of a ms: a long batch steadies it
for run = 1, runs do
  local handles, backends, known = {}, {}, {}
  for k, c in ipairs(CASES) do
    handles[k] = open(c.case)
    if pg then
      backends[k] = find_backend(known)
      known[backends[k]] = true
    end
    -- warm the statement cache and the page cache, past PostgreSQL's first five custom plans
    for _ = 1, 6 do page(handles[k], c.filter) end
  end
  local sum, rows = {}, {}
  for k = 1, #CASES do sum[k] = 0 end
  for i = 1, PAGES do
    for j = 0, #CASES - 1 do
      local k = (i + j) % #CASES + 1
      backend = backends[k]
      local t0 = clock()
      rows[k] = page(handles[k], CASES[k].filter)
      sum[k] = sum[k] + (clock() - t0)
    end
  end
  for k, c in ipairs(CASES) do
    local r = results[c.name]
    r.page[run] = sum[k] / PAGES
    r.rows = rows[k]
    backend = backends[k]
    local t0 = clock()
    r.matched = dry(handles[k], c.filter)
    r.dry[run] = clock() - t0
  end
  for k, c in ipairs(CASES) do
    handles[k]:close()
    local r = results[c.name]
    for _, b in ipairs(c.vs or {}) do
      r.rp[b][run] = r.page[run] / results[b].page[run]
      r.rd[b][run] = r.dry[run] / results[b].dry[run]
    end
  end
end

local function stats(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  return s[math.floor((#s + 1) / 2)], s[1], s[#s]
end

print(("policy_cost: %s: %s, %d instances, %d runs (median, min..max ms of %s; pages: %d per run)"):format(
  pg and "PostgreSQL" or "SQLite", (arg[1]:gsub("%?.*", "")), total, runs,
  pg and "CPU time, this process + its server backend" or "CPU time", PAGES))
print(("%-36s %5s %22s %7s %24s"):format("case", "rows", "first page of 100", "matched", "bulk dry run"))
for _, c in ipairs(CASES) do
  local r = results[c.name]
  local pm, pmin, pmax = stats(r.page)
  local dm, dmin, dmax = stats(r.dry)
  print(("%-36s %5d %8.2f (%.2f..%.2f) %7d %8.1f (%.1f..%.1f)"):format(c.name, r.rows, pm, pmin, pmax, r.matched,
    dm, dmin, dmax))
end
print()
print(("%-64s %s"):format("cost (median of the runs' ratios, min..max)", "first page of 100    bulk dry run"))
for _, c in ipairs(CASES) do
  for _, b in ipairs(c.vs or {}) do
    local r = results[c.name]
    local a, amin, amax = stats(r.rp[b])
    local d, dmin, dmax = stats(r.rd[b])
    print(("  %-62s %+7.1f%% (%+.0f..%+.0f) %+7.1f%% (%+.0f..%+.0f)"):format(c.name .. " vs " .. b, (a - 1) * 100,
      (amin - 1) * 100, (amax - 1) * 100, (d - 1) * 100, (dmin - 1) * 100, (dmax - 1) * 100))
  end
end
print("goal for a filter-returning policy: at most +10% over no policy ('vs all: caller's filter' is the")
print("same SQL without the policy: what the policy itself costs; the team lines the same for a narrower view).")
if tmp then
  os.remove(tmp)
  os.remove(tmp .. "-wal")
  os.remove(tmp .. "-shm")
end
