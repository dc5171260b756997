-- pg_fresh_metrics.lua - one FRESH process's get_runtime_metrics on a PostgreSQL store (what
-- bench/pg_index_bench.sh runs several times and puts beside Duroxide's getSystemMetrics):
--   duroxlua bench/pg_fresh_metrics.lua URL index|store [METHOD]
-- Prints one line "wall_ms cpu_ms server_cpu_ms digest_reads": the open and the first
-- get_runtime_metrics of this process (index: the handle reads the visibility index, synced
-- first; store: index = false, every history row streamed), this process's CPU (os.clock) and
-- the server's (every child of $PG_POSTMASTER_PID, from /proc, 10 ms ticks; 0 when unset), and
-- how many whole-history passes the handle made (index_status().digest_reads: 0 when the
-- index held the digest). METHOD: another metrics method of the handle to time instead
-- (get_queue_metrics, get_orchestration_metrics).
local durox = require "durox"
local url, mode, method = arg[1], arg[2] or "index", arg[3] or "get_runtime_metrics"

-- the server's CPU ms so far (bench/pg_server_cpu.lua)
local server_cpu = dofile((arg[0]:match("^(.*)/") or ".") .. "/pg_server_cpu.lua")

local s0, c0, t0 = server_cpu(), os.clock(), durox.now()
local dx = assert(durox.open(url, { index = mode ~= "store", statement_timeout_ms = 300000 }))
local m = assert(dx[method](dx))
local wall, cpu = durox.now() - t0, (os.clock() - c0) * 1000
local srv = server_cpu() - s0
assert(type(m) == "table")
print(("%d %.0f %d %d"):format(wall, cpu, srv, dx:index_status().digest_reads or -1))
dx:close()
