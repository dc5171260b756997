-- cancel_stuck.lua - cancels the running instances that have been stuck for longer than a
-- threshold (find_stuck_instances: expired locks, poison risk, stalled messages, unpicked
-- activities, overdue timers...), as one resumable bulk job. A ready-made script on the
-- public durox API:
--   duroxlua --store URL scripts/cancel_stuck.lua --older-than 2h [--reason TEXT] [--yes]
-- Without --yes it is a dry run. Exit statuses as duroxlua's: 0 all cancelled (or nothing
-- stuck), 6 partly, 4 refused, 2 a bad command line.
local S = require "durox.script"
local format = require "durox.format"

local a, dx = S.start {
  name = "cancel_stuck",
  write = true,
  usage = "[--older-than D] [--reason TEXT] [--name NAME] [--only R,...] [--max N] [--yes]",
  description = "Finds the running instances that make no progress (as 'duroxlua stuck' does) and whose\n" ..
    "oldest evidence is older than --older-than (default 1h), and cancels them with --reason,\n" ..
    "as Duroxide's own client would. Without --yes it only shows what it would cancel.\n" ..
    "Waits for events count only with --only waiting_on_event (an instance may wait on purpose).",
  options = {
    { section = "Selection" },
    { "older-than", arg = "D", help = "stuck for longer than D (e.g. 30m, 2h, 1d; default 1h)" },
    { "name", arg = "NAME", help = "only instances of this orchestration" },
    { "only", arg = "R", multi = true, split = true,
      help = "only these reasons (poison_risk, expired_lock, overdue_timer, unpicked_activity,"
        .. " stalled_messages, waiting_on_event)" },
    { "now", arg = "T", type = "time", help = "judge as of time T (default: now)" },
    { "max", arg = "N", type = "count", min = 1, help = "refuse when more than N would be cancelled" },
    { section = "Action" },
    { "reason", short = "r", arg = "TEXT", help = "the cancel reason (default 'stuck: cancelled by cancel_stuck')" },
    { "yes", short = "y", help = "cancel (without it: a dry run)" },
  },
}

local durox = require "durox"
local now = a.now and durox.parse_time(a.now) or durox.now()
local older = 3600000
if a.older_than then
  older = a.older_than:match("^%d+$") and math.tointeger(tonumber(a.older_than)) or durox.parse_time("+" .. a.older_than, 0)
  if not older then S.fail("cancel_stuck", ("bad --older-than '%s' (e.g. 30m, 2h)"):format(a.older_than), 2) end
end
local only
if a.only then
  only = {}
  for _, r in ipairs(a.only) do only[r] = true end
end

local stuck = S.call("cancel_stuck", dx, "find_stuck_instances", { now = now })
local ids, why = {}, {}
for _, s in ipairs(stuck.instances) do
  if s.status == "Running" and (not a.name or s.orchestration_name == a.name) then
    local oldest
    for _, r in ipairs(s.reasons) do
      local counts = only and only[r.reason] or (not only and r.reason ~= "waiting_on_event")
      if counts and (not oldest or r.since < oldest.since) then oldest = r end
    end
    if oldest and now - oldest.since >= older then
      ids[#ids + 1] = s.instance_id
      why[s.instance_id] = oldest
    end
  end
end
if #ids == 0 then
  if a.json then S.print_json { cancelled_instances = {}, failed_instances = {}, total_matched = 0 }
  else print(("nothing stuck for longer than %s"):format(format.duration(older))) end
  os.exit(S.exit.OK)
end
local res = S.call("cancel_stuck", dx, "cancel_instances", { instances = ids, dry_run = not a.yes or nil,
  reason = a.reason or "stuck: cancelled by cancel_stuck", max_instances = a.max })
if a.json then
  S.print_json(res)
else
  print(("%s %s stuck for longer than %s:"):format(a.yes and "cancelled" or "would cancel (dry run; --yes cancels)",
    format.count(#res.cancelled_instances, "instance"), format.duration(older)))
  for _, id in ipairs(res.cancelled_instances) do
    print(("  %s  %s since %s"):format(format.oneline(id), why[id].reason, format.relative(why[id].since, now)))
  end
  for _, f in ipairs(res.failed_instances) do
    print(("  refused: %s  %s"):format(format.oneline(f.instance_id), format.oneline(f.error)))
  end
end
os.exit(S.exit.of_bulk(res))
