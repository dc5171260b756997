-- failure_report.lua - the daily failure report of a Duroxide store: the instances that
-- failed in a window (default the last 24 hours), by orchestration and failure kind, with
-- the most frequent errors. A ready-made script on the public durox API:
--   duroxlua --store URL scripts/failure_report.lua [--since -24h] [--until T] [--name N] [--json]
-- Exit status 0 (also when nothing failed), 2 for a bad command line.
local S = require "durox.script"
local format = require "durox.format"

local a, dx = S.start {
  name = "failure_report",
  usage = "[--since T] [--until T] [--name NAME] [--top N] [--json]",
  description = "Reports the instances that failed (completed as Failed) between --since and --until:\n" ..
    "how many per orchestration and failure kind, and the most frequent errors of each kind.\n" ..
    "Cancelled instances count as the failure kind 'cancelled'. With --json: {since, until,\n" ..
    "total, by_kind, by_orchestration, top_errors}.",
  options = {
    { section = "Window" },
    { "since", arg = "T", type = "time", help = "failed at or after T (default -24h)" },
    { "until", arg = "T", type = "time", help = "failed before T (default now)" },
    { "name", arg = "NAME", help = "only instances of this orchestration" },
    { section = "Output" },
    { "top", arg = "N", type = "count", min = 1, max = 100, help = "errors shown per failure kind (default 5)" },
  },
}

local durox = require "durox"
local now = durox.now()
local since = durox.parse_time(a.since or "-24h", now)
local till = a["until"] and durox.parse_time(a["until"], now) or now
local top = a.top or 5

local total, by_kind, by_name, errors = 0, {}, {}, {}
local filter = { status = "Failed", completed_after = since - 1, completed_before = till, orchestration_name = a.name }
local ok, err = pcall(function()
  for s in dx:instances(filter) do
    total = total + 1
    local kind = s.failure_kind or "application"
    by_kind[kind] = (by_kind[kind] or 0) + 1
    local n = by_name[s.orchestration_name]
    if not n then
      n = { orchestration_name = s.orchestration_name, failed = 0, kinds = {} }
      by_name[s.orchestration_name] = n
    end
    n.failed = n.failed + 1
    n.kinds[kind] = (n.kinds[kind] or 0) + 1
    -- the first line of the error, as the runtime stored it
    local msg = format.truncate(format.oneline((s.error or ""):match("^[^\n]*")), 160)
    local key = kind .. "\0" .. msg
    local e = errors[key]
    if not e then
      e = { failure_kind = kind, error = msg, count = 0, example = s.instance_id }
      errors[key] = e
    end
    e.count = e.count + 1
  end
end)
if not ok then S.fail("failure_report", tostring(err):gsub("^[^:\n]+:%d+: ", ""), S.exit.FAILED) end

local names = {}
for _, n in pairs(by_name) do names[#names + 1] = n end
table.sort(names, function(x, y)
  if x.failed ~= y.failed then return x.failed > y.failed end
  return x.orchestration_name < y.orchestration_name
end)
local tops = {}
for _, e in pairs(errors) do tops[#tops + 1] = e end
table.sort(tops, function(x, y)
  if x.failure_kind ~= y.failure_kind then return x.failure_kind < y.failure_kind end
  if x.count ~= y.count then return x.count > y.count end
  return x.error < y.error
end)
local shown, per_kind = {}, {}
for _, e in ipairs(tops) do
  per_kind[e.failure_kind] = (per_kind[e.failure_kind] or 0) + 1
  if per_kind[e.failure_kind] <= top then shown[#shown + 1] = e end
end

if a.json then
  S.print_json { since = since, ["until"] = till, total = total, by_kind = by_kind, by_orchestration = names,
                 top_errors = shown }
  os.exit(S.exit.OK)
end

print(("Failures from %s to %s: %s"):format(format.iso(since), format.iso(till), format.count(total, "instance")))
if total == 0 then os.exit(S.exit.OK) end
local kinds = {}
for k, n in pairs(by_kind) do kinds[#kinds + 1] = ("%d %s"):format(n, k) end
table.sort(kinds)
print("by kind: " .. table.concat(kinds, ", "))
print("")
local rows = {}
for i, n in ipairs(names) do
  local ks = {}
  for k, c in pairs(n.kinds) do ks[#ks + 1] = ("%s %d"):format(k, c) end
  table.sort(ks)
  rows[i] = { format.oneline(n.orchestration_name), tostring(n.failed), table.concat(ks, ", ") }
end
io.write(format.table({ { title = "ORCHESTRATION", max = 40 }, { title = "FAILED", align = "right" },
                        { title = "KINDS", min = 10 } }, rows, format.term_width()))
print("")
rows = {}
for i, e in ipairs(shown) do rows[i] = { e.failure_kind, tostring(e.count), e.error, format.oneline(e.example) } end
io.write(format.table({ { title = "KIND", min = 8 }, { title = "COUNT", align = "right" }, { title = "ERROR", min = 20,
                        shrink = 3 }, { title = "E.G.", max = 30 } }, rows, format.term_width()))
