-- index_bench.lua - duroxlua's side of bench/index_bench.sh, printed as "name value" lines (ms
-- unless the name says otherwise; medians of ROUNDS runs):
--   duroxlua bench/index_bench.lua MODE STORE INDEX [ROUNDS]
-- MODE build     builds INDEX from scratch (build_ms, size_bytes, instances)
-- MODE reads     the index's reads on a built INDEX: the first page of 100 Failed with
--                summaries (first call of a fresh handle, and warm); pages 1 and 500 in each order and for
--                name = 'Order' AND status = 'Running' (500, or the last full page when there
--                are fewer); every instance listed without paging; queue metrics; the idle
--                sync; runtime metrics in this (fresh) process
-- MODE cold      runtime metrics in a fresh process without any index (run it in its own process)
-- MODE fresh     runtime metrics in a fresh process with the built INDEX
-- MODE live      with the live runtime (index_bench.sh drives it through files in INDEX's
--                directory): waits for "go1", recomputes runtime metrics after a few turns;
--                waits for "go2", catches up after >= 10,000 new history rows
local durox = require "durox"
local mode, store, index = arg[1], arg[2], arg[3]
local rounds = math.tointeger(tonumber(arg[4] or "5"))

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

-- wall ms, the result, and the CPU ms of this process (os.clock: one thread)
local function timed(f)
  local t0, c0 = durox.now(), os.clock()
  local r = f()
  return durox.now() - t0, r, (os.clock() - c0) * 1000
end

local function say(k, v) print(k .. " " .. tostring(v)) end

local url = "sqlite:" .. store

if mode == "build" then
  local dx = assert(durox.open(url, { readonly = true, index = index }))
  local t = timed(function() return assert(dx:index_build { rebuild = true }) end)
  local st = dx:index_status()
  say("build_ms", t)
  say("size_bytes", st.size_bytes)
  say("instances", st.instances)
  say("history_rows", st.history_rows)
  return
end

if mode == "cold" or mode == "fresh" then
  -- runtime metrics in a fresh process: without any index (cold), or with the built one
  local dx = assert(durox.open(url, { readonly = true, index = mode == "fresh" and index or false }))
  local t, _, c = timed(function() return assert(dx:get_runtime_metrics()) end)
  say("runtime_" .. mode .. "_ms", t)
  say("runtime_" .. mode .. "_cpu", ("%.2f"):format(c))
  return
end

if mode == "reads" then
  local opts = { readonly = true, index = index, config = { max_list_instances = 2000000 } }
  -- the first page of 100 Failed instances with their summaries: the first call on a fresh
  -- handle (its first sync included; the open is not, as Duroxide's side does not time
  -- openProvider) and warm calls on an open handle, the same two figures Duroxide's side
  -- gives. durox.now() counts ms: the figures are means over many calls, to 0.01 ms.
  local page = { filter = { status = "Failed" }, page_size = 100 }
  local first_sum, warm_sum, warm_n, first_cpu, warm_cpu = 0, 0, 0, 0, 0
  local fresh_rounds = math.max(rounds, 20)
  for _ = 1, fresh_rounds do
    local dx = assert(durox.open(url, opts))
    local t, r, c = timed(function() return assert(dx:list_instances_paginated(page)) end)
    assert(#r.instances == 100)
    first_sum, first_cpu = first_sum + t, first_cpu + c
    local tw, _, cw = timed(function()
      for _ = 1, 10 do assert(dx:list_instances_paginated(page)) end
    end)
    warm_sum, warm_n, warm_cpu = warm_sum + tw, warm_n + 10, warm_cpu + cw
    dx:close()
  end
  say("failed_page_first", ("%.2f"):format(first_sum / fresh_rounds))
  say("failed_page_warm", ("%.2f"):format(warm_sum / warm_n))
  say("failed_page_first_cpu", ("%.2f"):format(first_cpu / fresh_rounds))
  say("failed_page_warm_cpu", ("%.2f"):format(warm_cpu / warm_n))
  -- the same first call in a fresh handle, with the open timed too (what a CLI run pays)
  local open_sum = 0
  for _ = 1, fresh_rounds do
    local t = timed(function()
      local dx = assert(durox.open(url, opts))
      assert(dx:list_instances_paginated(page))
      dx:close()
    end)
    open_sum = open_sum + t
  end
  say("failed_page_open_first_close", ("%.2f"):format(open_sum / fresh_rounds))
  local dx = assert(durox.open(url, opts))
  -- runtime and queue metrics in this process: the first calls read the persisted digests
  say("runtime_index_first", (timed(function() return assert(dx:get_runtime_metrics()) end)))
  -- queue metrics: the first call of a fresh handle (reads the queue rows), then warm calls
  -- (nothing committed since: the kept rows, recomputed for the call's own time)
  local qsum, qcpu = 0, 0
  for _ = 1, fresh_rounds do
    local qx = assert(durox.open(url, opts))
    assert(qx:index_sync())
    local t, _, c = timed(function() return assert(qx:get_queue_metrics { fresh = true }) end)
    qsum, qcpu = qsum + t, qcpu + c
    qx:close()
  end
  say("queue_index_first", ("%.2f"):format(qsum / fresh_rounds))
  say("queue_index_first_cpu", ("%.2f"):format(qcpu / fresh_rounds))
  local tq, _, cq = timed(function()
    for _ = 1, 100 do assert(dx:get_queue_metrics { fresh = true }) end
  end)
  say("queue_index", ("%.3f"):format(tq / 100))
  say("queue_index_cpu", ("%.3f"):format(cq / 100))
  -- keyset pages: page 1 and page 500 (the token that ends page 499: one page of 49,900)
  local cases = { { "CreatedAt" }, { "UpdatedAt" }, { "InstanceId" }, { "OrchestrationName" },
    { "CreatedAt", "name = 'Order' AND status = 'Running'", "order_running" } }
  for _, c in ipairs(cases) do
    local order, filter, label = c[1], c[2], c[3] or c[1]
    local n = assert(dx:list_instances_paginated { filter = filter, page_size = 1, total_count = true }).total_count
    local page = math.min(500, n // 100)
    local token
    if page > 1 then
      token = assert(dx:list_instances_paginated { filter = filter, order_by = order, page_size = (page - 1) * 100 }).next_page_token
    end
    -- means of 10 x rounds calls each (durox.now() counts whole ms; a page takes less)
    local reps = 10 * rounds
    local t1 = timed(function()
      for _ = 1, reps do assert(dx:list_instances_paginated { filter = filter, order_by = order, page_size = 100 }) end
    end)
    local tn = timed(function()
      for _ = 1, reps do
        assert(dx:list_instances_paginated { filter = filter, order_by = order, page_size = 100, page_token = token })
      end
    end)
    say("page1_" .. label, ("%.2f"):format(t1 / reps))
    say("pageN_" .. label, ("%.2f"):format(tn / reps))
    say("pageN_number_" .. label, page)
  end
  -- every instance without paging: the first call of this process (its memory not yet
  -- grown) and the median of the later ones, as Duroxide's side gives first and median
  local all, all_cpu = {}, {}
  local count, first, first_cpu
  for i = 0, math.max(3, rounds) do
    local t, l, c = timed(function() return assert(dx:list_instances()) end)
    count = #l
    l = nil
    if i == 0 then
      first, first_cpu = t, c
    else
      all[#all + 1], all_cpu[#all_cpu + 1] = t, c
    end
    collectgarbage() -- each call starts from the same heap
  end
  say("list_all_first", first)
  say("list_all_first_cpu", ("%.1f"):format(first_cpu))
  say("list_all", median(all))
  say("list_all_cpu", ("%.1f"):format(median(all_cpu)))
  say("list_all_count", count)
  -- the idle sync: nothing committed since the last one
  assert(dx:index_sync())
  local n, t0 = 20000, durox.now()
  for _ = 1, n do assert(dx:index_sync()) end
  say("idle_sync_us", ("%.2f"):format((durox.now() - t0) * 1000 / n))
  return
end

if mode == "live" then
  local dir = index:match("^(.*)/[^/]*$")
  local dx = assert(durox.open(url, { readonly = true, index = index }))
  assert(dx:index_build())
  assert(dx:get_runtime_metrics { fresh = true })
  local qx = assert(durox.open(url, { readonly = true, index = false }))
  assert(qx:get_queue_metrics { fresh = true })
  local function rows() return dx:index_status().history_rows end
  local function wait_for(name)
    local f = io.open(dir .. "/" .. name, "w")
    f:write("ready\n")
    f:close()
    while not io.open(dir .. "/" .. name .. ".go") do durox.sleep(20) end
  end
  -- (every call syncs first, index_status too: the rows are counted before each wait, so the
  -- timed call is the one that catches up)
  local before = rows()
  wait_for("go1") -- the runtime has committed a few turns, and is frozen
  local t, _, c = timed(function() return assert(dx:get_runtime_metrics { fresh = true }) end)
  say("runtime_after_turns_ms", t)
  say("runtime_after_turns_cpu", ("%.2f"):format(c))
  -- queue metrics after the same turns, on a second handle that read them before (its kept
  -- queue rows are read again; without an index, so that no catch-up is in the figure)
  local tq, _, cq = timed(function() return assert(qx:get_queue_metrics { fresh = true }) end)
  say("queue_after_turns_ms", tq)
  say("queue_after_turns_cpu", ("%.2f"):format(cq))
  say("runtime_after_turns_rows", rows() - before)
  before = rows()
  wait_for("go2") -- >= 10,000 more history rows, frozen again
  local tc, _, cc = timed(function() return assert(dx:index_sync()) end)
  say("catchup_cpu", ("%.1f"):format(cc))
  local added = rows() - before
  say("catchup_ms", tc)
  say("catchup_rows", added)
  say("catchup_ms_per_10k", ("%.1f"):format(tc * 10000 / math.max(added, 1)))
  local v = assert(dx:index_verify())
  say("verify_ok", v.ok)
  return
end

error("unknown mode " .. tostring(mode))
