-- pg_index_bench.lua - duroxlua's side of bench/pg_index_bench.sh on a PostgreSQL store, as
-- "name value" lines (ms; medians of ROUNDS):
--   duroxlua bench/pg_index_bench.lua URL [ROUNDS]
-- Rebuilds the visibility index (build_ms, size_bytes), then: the first page of 100 Failed with
-- summaries on a fresh handle, with the index and without (index = false: the runtime's
-- tables); page 1 and page 500 in each order and for name = 'Order' AND status = 'Running'
-- (or the last full page when there are fewer), with the index and without; the idle sync;
-- runtime metrics (not index-served on PostgreSQL).
local durox = require "durox"
local url = arg[1]
local rounds = math.tointeger(tonumber(arg[2] or "3"))

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local function timed(f)
  local t0 = durox.now()
  local r = f()
  return durox.now() - t0, r
end

local function say(k, v) print(k .. " " .. tostring(v)) end

do
  local dx = assert(durox.open(url))
  local t = timed(function() return assert(dx:index_build { rebuild = true }) end)
  local st = dx:index_status()
  say("build_ms", t)
  say("size_bytes", st.size_bytes)
  say("instances", st.instances)
  dx:close()
end

for _, mode in ipairs { "index", "store" } do
  local opts = mode == "index" and {} or { index = false }
  local first = {}
  for _ = 1, rounds do
    local dx = assert(durox.open(url, opts))
    local t, r = timed(function()
      return assert(dx:list_instances_paginated { filter = { status = "Failed" }, page_size = 100 })
    end)
    assert(#r.instances == 100)
    first[#first + 1] = t
    dx:close()
  end
  say("failed_page_fresh_" .. mode, median(first))
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
      local t0 = os.clock()
      local w0 = durox.now()
      assert(dx:index_sync())
      s[#s + 1] = durox.now() - w0
      local _ = t0
    end
    local sum = 0
    for _, v in ipairs(s) do sum = sum + v end
    say("idle_sync_avg_ms", sum / #s)
  end
  say("runtime_metrics_" .. mode, (timed(function() return assert(dx:get_runtime_metrics()) end)))
  dx:close()
end
