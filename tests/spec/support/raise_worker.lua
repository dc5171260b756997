-- raise_worker.lua DB MODE (DB: a SQLite path or a PostgreSQL URL) [RATE] [BATCH] - the process ops_crash_spec kills with SIGKILL:
-- MODE "start" starts a bulk raise of Approve for every running WaitApprove instance;
-- MODE <job id> resumes that job. RATE (operations per second) and BATCH are optional.
local durox = require "durox"
local db, mode = arg[1], arg[2]
local rate, batch = tonumber(arg[3]), tonumber(arg[4])
local dx = assert(durox.open(db:match("^postgres") and db or "sqlite:" .. db, { config = { max_bulk_operations = 1000000 } }))
if mode == "start" then
  assert(dx:raise_event_bulk { filter = { orchestration_name = "WaitApprove", status = "Running" },
    event_name = "Approve", event_data = '"crash"', max_instances = 1000000, rate = rate, batch_size = batch })
else
  assert(dx:resume_job(math.tointeger(tonumber(mode)), { rate = rate, batch_size = batch }))
end
dx:close()
