-- seed_waits.lua STORE_URL [N] - starts N (default 100) WaitApprove instances through the
-- store and waits until a live runtime (started by the caller) has them all waiting: the
-- real rows bench/make_store.sh and make_pg_store.sh replicate for the cancel benchmarks.
local durox = require "durox"
local url, n = assert(arg[1], "usage: duroxlua bench/seed_waits.lua STORE_URL [N]"), tonumber(arg[2] or "100")
local dx = assert(durox.open(url))
for i = 1, n do assert(dx:start_orchestration(("wait-%03d"):format(i), "WaitApprove", "null")) end
local deadline = durox.now() + 60000
while #assert(dx:list_instances { status = "Running" }) < n do
  assert(durox.now() < deadline, "the runtime did not start the instances within 60 s")
  durox.sleep(100)
end
durox.sleep(500)
