-- restart-transient-failures.lua - a rules file for `duroxlua rules`: restarts instances that
-- failed with a transient infrastructure error (Duroxide's Infrastructure error details: the
-- provider or its data failed, not the orchestration's code), at most M an hour. A restart
-- starts a new instance with the failed one's input (restart_instances, docs/operations.md).
--
--   duroxlua --store URL rules scripts/rules/restart-transient-failures.lua
--
-- Environment: DUROX_RESTART_PER_HOUR (M, default 10), DUROX_RESTART_FAILURE_KIND (default
-- "infrastructure"; the failure kinds of docs/metrics.md), DUROX_RESTART_ORCHESTRATION (only
-- this orchestration; default all).
local per_hour = tonumber(os.getenv("DUROX_RESTART_PER_HOUR") or "10")
local kind = os.getenv("DUROX_RESTART_FAILURE_KIND") or "infrastructure"
local only = os.getenv("DUROX_RESTART_ORCHESTRATION")

rule {
  name = "restart-transient-failures",
  filter = only and { name = only } or nil,
  events = { "Failed" },
  where = function(ev) return ev.details.failure_kind == kind end,
  rate = { max = per_hour, per = "1h" },
  retries = 2,
  backoff = "5s",
  handler = function(ev, ctx)
    local r = assert(ctx.dx:restart_instances { instances = { ev.instance_id } })
    local failed = r.failed_instances and r.failed_instances[1]
    if failed then error(("restart of %s refused: %s"):format(ev.instance_id, failed.error), 0) end
    ctx.log("restarted %s", ev.instance_id)
  end,
}
