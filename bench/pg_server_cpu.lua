-- pg_server_cpu.lua - the CPU time of a local PostgreSQL server, for the PostgreSQL benches
-- (pg_index_bench.lua, pg_fresh_metrics.lua, pg_queue_bench.lua load it with dofile):
-- returns a function giving the ms of CPU (user + system, 10 ms ticks) used so far by every
-- child of the postmaster whose pid is in $PG_POSTMASTER_PID (the backends, autovacuum and
-- the checkpointer: an upper bound for one backend), from /proc; 0 when the variable is unset.
-- A child that exits between two readings takes its time with it.
local pm = os.getenv("PG_POSTMASTER_PID")
return function()
  if not pm then return 0 end
  local p = io.popen("ps -o pid= --ppid " .. pm)
  local ms = 0
  for pid in p:lines() do
    local f = io.open("/proc/" .. pid:match("%d+") .. "/stat")
    if f then
      local rest = f:read("a"):match("%) (.*)")
      f:close()
      local i, ut = 0, nil
      for w in rest:gmatch("%S+") do
        i = i + 1
        if i == 12 then ut = tonumber(w) elseif i == 13 then ms = ms + (ut + tonumber(w)) * 10 break end
      end
    end
  end
  p:close()
  return ms
end
