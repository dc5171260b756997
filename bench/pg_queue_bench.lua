-- pg_queue_bench.lua - get_queue_metrics on a PostgreSQL store, in the three cases of
-- docs/index.md (what bench/pg_queue_bench.sh puts beside Duroxide's getQueueDepths):
--   duroxlua bench/pg_queue_bench.lua URL ROUNDS ENQUEUE_CMD
-- Prints "key wall_ms cpu_ms server_cpu_ms" lines, each the median of ROUNDS batches (wall ms
-- per call; durox.now() counts whole ms, so a batch times several calls and divides):
--   queue_first   the first call of a handle: a new handle (a new connection, so a new server
--                 backend) opened and synced untimed, then one get_queue_metrics { fresh = true }
--                 timed; 4 handles a batch
--   queue_rest    later calls of one handle, nothing committed between them; 50 calls a batch
--   queue_turns   a later call of one handle after Duroxide's client enqueued a few items
--                 (ENQUEUE_CMD, run untimed before each call); one call a batch, so whole ms
-- cpu_ms is this process's (os.clock), server_cpu_ms the server's (every child of
-- $PG_POSTMASTER_PID, from /proc, 10 ms ticks; 0 when unset), both per call.
local durox = require "durox"
local url, rounds, enqueue = arg[1], tonumber(arg[2] or "5"), arg[3]
assert(url and enqueue, "usage: pg_queue_bench.lua URL ROUNDS ENQUEUE_CMD")

-- the server's CPU ms so far (bench/pg_server_cpu.lua)
local server_cpu = dofile((arg[0]:match("^(.*)/") or ".") .. "/pg_server_cpu.lua")

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local opts = { statement_timeout_ms = 300000 }
local function call(dx) return assert(dx:get_queue_metrics { fresh = true }) end

-- batches: f(k) does the k-th call of a batch of n; returns the timed wall/cpu/server ms
local function batches(key, n, setup, f)
  local w, c, s = {}, {}, {}
  for b = 1, rounds do
    local tw, tc, ts = 0, 0, 0
    for k = 1, n do
      local ctx = setup and setup(b, k)
      local s0, c0, t0 = server_cpu(), os.clock(), durox.now()
      f(ctx)
      tw, tc, ts = tw + durox.now() - t0, tc + (os.clock() - c0) * 1000, ts + server_cpu() - s0
      if type(ctx) == "table" and ctx.close then ctx:close() end
    end
    w[#w + 1], c[#c + 1], s[#s + 1] = tw / n, tc / n, ts / n
  end
  print(("%s %.2f %.2f %.1f"):format(key, median(w), median(c), median(s)))
end

-- the first call of a handle
batches("queue_first", 4, function()
  local dx = assert(durox.open(url, opts))
  assert(dx:index_sync())
  return dx
end, call)

-- a handle at rest
local dx = assert(durox.open(url, opts))
assert(dx:index_sync())
call(dx)
batches("queue_rest", 50, function() return dx end, call)

-- after new items: Duroxide's client enqueues, then the handle's next call
batches("queue_turns", 1, function()
  assert(os.execute(enqueue), "the enqueue command failed")
  return dx
end, call)
local m = call(dx)
print(("queue_rows %d %d"):format(m.orchestrator_queue_size + m.timer_queue_size, m.worker_queue_size))
