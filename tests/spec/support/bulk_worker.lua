-- bulk_worker.lua STORE KIND MODE [RATE] [BATCH] - the process ops_crash_kinds_spec kills with
-- SIGKILL. STORE is a store URL (or a SQLite file). KIND is cancel, purge or restart; MODE "start" starts that bulk operation on its
-- population (cancel: running WaitApprove instances, purge: completed EchoRaw instances,
-- restart: failed ThrowingOrchestration instances), MODE <job id> resumes that job. RATE
-- (operations per second) and BATCH are optional.
local durox = require "durox"
local store, kind, mode = arg[1], arg[2], arg[3]
local rate, batch = tonumber(arg[4]), tonumber(arg[5])
local url = (store:match("^sqlite:") or store:match("^postgres")) and store or "sqlite:" .. store
local dx = assert(durox.open(url, { config = { max_bulk_operations = 1000000 } }))
if mode == "start" then
  local common = { max_instances = 1000000, rate = rate, batch_size = batch }
  if kind == "cancel" then
    common.filter = "name = 'WaitApprove' AND status = 'Running'"
    common.reason = "crash-test"
    assert(dx:cancel_instances(common))
  elseif kind == "purge" then
    common.filter = "name = 'EchoRaw' AND status = 'Completed'"
    assert(dx:purge_instances(common))
  elseif kind == "restart" then
    common.filter = "name = 'ThrowingOrchestration' AND status = 'Failed'"
    assert(dx:restart_instances(common))
  else
    error("unknown kind " .. tostring(kind))
  end
else
  assert(dx:resume_job(math.tointeger(tonumber(mode)), { rate = rate, batch_size = batch }))
end
dx:close()
