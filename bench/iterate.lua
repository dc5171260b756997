-- iterate.lua STORE_URL - iterates every instance of the store with dx:instances() and
-- prints "instances ms peak_rss_kb": the count, the wall time and the process's peak
-- resident set (VmHWM of /proc/self/status), for the constant-memory goal of issue 7; then
-- the process's CPU ms.
local durox = require "durox"
local url = assert(arg[1], "usage: duroxlua bench/iterate.lua STORE_URL")
local dx = assert(durox.open(url, { readonly = true }))
local t0, c0, n = durox.now(), os.clock(), 0
for _ in dx:instances() do n = n + 1 end
local ms = durox.now() - t0
local cpu = (os.clock() - c0) * 1000
local f = assert(io.open("/proc/self/status"))
local hwm = f:read("a"):match("VmHWM:%s*(%d+) kB")
f:close()
io.write(n, " ", ms, " ", hwm, " ", ("%.0f"):format(cpu), "\n")
