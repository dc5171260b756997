-- restart_transient.lua - restarts the root instances that failed for a transient reason
-- (by default failure kind 'infrastructure': the store or the runtime failed, not the
-- orchestration's own code), each under a new id with the same name, version and input, as
-- one resumable bulk job. A ready-made script on the public durox API:
--   duroxlua --store URL scripts/restart_transient.lua [--since -24h] [--kind K,...] [--yes]
-- Without --yes it is a dry run. Exit statuses as duroxlua's: 0 all restarted (or none
-- matched), 6 partly, 4 refused, 2 a bad command line.
local S = require "durox.script"
local format = require "durox.format"

local a, dx = S.start {
  name = "restart_transient",
  write = true,
  usage = "[--since T] [--kind K,...] [--name NAME] [--max N] [--latest-version] [--yes]",
  description = "Restarts the failed root instances whose failure kind is transient (default:\n" ..
    "infrastructure; --kind infrastructure,poison for poisoned messages too) and that failed\n" ..
    "after --since (default -24h): a new instance '<id>~r<N>' per target with its name, version\n" ..
    "and input (restart_instances). Without --yes it only shows what it would restart.",
  options = {
    { section = "Selection" },
    { "since", arg = "T", type = "time", help = "failed at or after T (default -24h)" },
    { "kind", arg = "K", multi = true, split = true, help = "failure kinds to restart (default infrastructure)" },
    { "name", arg = "NAME", help = "only instances of this orchestration" },
    { "max", arg = "N", type = "count", min = 1, help = "refuse when more than N would be restarted" },
    { section = "Action" },
    { "latest-version", help = "start the latest registered version instead of the recorded one" },
    { "yes", short = "y", help = "restart (without it: a dry run)" },
  },
}

local durox = require "durox"
local since = durox.parse_time(a.since or "-24h")
local res = S.call("restart_transient", dx, "restart_instances", {
  filter = { status = "Failed", failure_kind = a.kind or { "infrastructure" }, orchestration_name = a.name,
             completed_after = since - 1 },
  dry_run = not a.yes or nil, latest_version = a.latest_version or nil, max_instances = a.max,
})
if a.json then
  S.print_json(res)
else
  print(("%s %s (failed since %s):"):format(a.yes and "restarted" or "would restart (dry run; --yes restarts)",
    format.count(#res.restarted_instances, "instance"), format.iso(since)))
  for _, r in ipairs(res.restarted_instances) do
    print(("  %s -> %s"):format(format.oneline(r.instance_id), format.oneline(r.new_instance_id or "?")))
  end
  for _, f in ipairs(res.failed_instances) do
    print(("  refused: %s  %s"):format(format.oneline(f.instance_id), format.oneline(f.error)))
  end
  for _, s in ipairs(res.skipped_instances or {}) do
    print(("  skipped: %s  %s"):format(format.oneline(s.instance_id), format.oneline(s.reason)))
  end
end
os.exit(S.exit.of_bulk(res))
