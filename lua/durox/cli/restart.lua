-- durox.cli.restart: `duroxlua restart`, starts a new instance for each failed or cancelled
-- root instance (ids or filter flags) with its name, version and input, as a bulk job
-- (restart_instances). Run by the dispatcher (durox.cli); shares durox.cli.bulk.
local args = require "durox.cli.args"
local bulk = require "durox.cli.bulk"
local filters = require "durox.cli.filters"

local M = {}

M.summary = "start failed or cancelled instances again under new ids, as a resumable job"

M.options = filters.spec({
  { section = "Restart" },
  { "latest-version", help = "run the latest registered version instead of the recorded one" },
}, bulk.TARGET_OPTIONS, bulk.RUN_OPTIONS, filters.OPTIONS)

M.arguments = { { "ID", many = true, optional = true } }

M.help = args.help("duroxlua restart [options] ID...\nduroxlua restart [options] --status Failed --name Order ...",
  "For each Failed root instance (cancelled ones included) given or matched, starts a new\n" ..
  "instance with the name, version and input of its current execution. The new id is\n" ..
  "'<id>~r<N>' (N the smallest free number; a restart of 'x~r1' is 'x~r2'). Completed,\n" ..
  "running and sub-orchestration instances are refused (with a filter, sub-orchestrations\n" ..
  "are skipped). Runs as a resumable job: each instance is restarted exactly once.\n" ..
  "With --json: {job_id, restarted_instances = [{instance_id, new_instance_id}], failed_instances, ...}.",
  M.options)

function M.run(a, ctx)
  return bulk.execute(a, ctx, {
    method = "restart_instances", verb = "restart", fields = { latest_version = a.latest_version or nil },
  })
end

return M
