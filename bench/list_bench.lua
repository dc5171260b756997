-- list_bench.lua - timings of our listing on a large store, printed as "name value" lines:
--   duroxlua bench/list_bench.lua STORE_URL ROUNDS
-- failed_page_first: the first page of 100 Failed instances with their summaries on a fresh
-- handle (statements not yet prepared); failed_page_warm: the same call again. Then, per
-- order, page 1 and page 500 (page_size 100) of a paginated listing, page 500 fetched with
-- the token that ends page 499 (getting the token is not timed). Each figure is the median of ROUNDS runs, in ms.
local durox = require "durox"
local url, rounds = arg[1], math.tointeger(tonumber(arg[2] or "7"))

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

-- wall-clock ms of f() (CPU time would hide waits on the disk)
local function timed(f)
  local w0 = durox.now()
  local r = f()
  return durox.now() - w0, r
end

local req = { filter = { status = "Failed" }, page_size = 100 }
local first, warm = {}, {}
for _ = 1, rounds do
  local dx = assert(durox.open(url, { readonly = true }))
  local t, r = timed(function() return assert(dx:list_instances_paginated(req)) end)
  assert(#r.instances == 100, "expected a full page of Failed instances")
  first[#first + 1] = t
  t = timed(function() return assert(dx:list_instances_paginated(req)) end)
  warm[#warm + 1] = t
  dx:close()
end
print("failed_page_first " .. median(first))
print("failed_page_warm " .. median(warm))

-- A token holds the position after the last instance of its page, whatever the page size:
-- one page of 49,900 instances yields the token of page 500 of 100.
local dx = assert(durox.open(url, { readonly = true, config = { max_list_instances = 50000 } }))
for _, order in ipairs({ "CreatedAt", "InstanceId", "UpdatedAt", "OrchestrationName" }) do
  local base = { page_size = 100, order_by = order }
  local skip = assert(dx:list_instances_paginated({ page_size = 49900, order_by = order }))
  local token = assert(skip.next_page_token, "store too small for 500 pages")
  local p1, p500 = {}, {}
  for _ = 1, rounds do
    p1[#p1 + 1] = timed(function() return assert(dx:list_instances_paginated(base)) end)
    p500[#p500 + 1] = timed(function()
      return assert(dx:list_instances_paginated({ page_size = 100, order_by = order, page_token = token }))
    end)
  end
  print(("page1_%s %d"):format(order, median(p1)))
  print(("page500_%s %d"):format(order, median(p500)))
end
