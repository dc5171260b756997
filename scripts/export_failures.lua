-- export_failures.lua - exports failed instances to CSV (RFC 4180, with a header) or JSON
-- Lines, for a spreadsheet or another tool. A ready-made script on the public durox API:
--   duroxlua --store URL scripts/export_failures.lua [--since T] [--kind K,...] [-o FILE]
-- Exit status 0, 1 when the file cannot be written, 2 for a bad command line.
local S = require "durox.script"

local a, dx = S.start {
  name = "export_failures",
  usage = "[--since T] [--until T] [--name NAME] [--kind K,...] [--format csv|jsonl] [-o FILE]",
  description = "Writes one row per failed instance (oldest failure first): instance_id,\n" ..
    "orchestration_name, version, failure_kind, created_at, completed_at (ISO-8601 UTC),\n" ..
    "execution_count, parent_instance and error. CSV quotes fields as RFC 4180 says and ends\n" ..
    "lines with CRLF; --format jsonl writes one JSON object per line instead.",
  options = {
    { section = "Selection" },
    { "since", arg = "T", type = "time", help = "failed at or after T (default: all)" },
    { "until", arg = "T", type = "time", help = "failed before T" },
    { "name", arg = "NAME", help = "only instances of this orchestration" },
    { "kind", arg = "K", multi = true, split = true,
      help = "only these failure kinds (application, cancelled, poison, ...; repeatable, a,b)" },
    { section = "Output" },
    { "format", arg = "F", choices = { "csv", "jsonl" }, help = "csv (default) or jsonl" },
    { "output", short = "o", arg = "FILE", help = "write to FILE (default: standard output)" },
  },
}

local durox = require "durox"
local output = require "durox.cli.output"
local now = durox.now()
local filter = {
  status = "Failed",
  failure_kind = a.kind,
  orchestration_name = a.name,
  completed_after = a.since and durox.parse_time(a.since, now) - 1 or nil,
  completed_before = a["until"] and durox.parse_time(a["until"], now) or nil,
}
local rows = {}
local ok, err = pcall(function()
  for s in dx:instances(filter) do rows[#rows + 1] = s end
end)
if not ok then S.fail("export_failures", tostring(err):gsub("^[^:\n]+:%d+: ", ""), S.exit.FAILED) end
table.sort(rows, function(x, y)
  if (x.completed_at or 0) ~= (y.completed_at or 0) then return (x.completed_at or 0) < (y.completed_at or 0) end
  return x.instance_id < y.instance_id
end)

local COLUMNS = { { "instance_id" }, { "orchestration_name" }, { "version" }, { "failure_kind" }, { "created_at" },
                  { "completed_at" }, { "execution_count" }, { "parent_instance" }, { "error" } }
local text = a.format == "jsonl" and output.jsonl(rows) or output.csv(COLUMNS, rows)
local out = io.stdout
if a.output then
  local f, ferr = io.open(a.output, "wb")
  if not f then S.fail("export_failures", ("cannot write '%s': %s"):format(a.output, ferr), S.exit.FAILED) end
  out = f
end
out:write(text)
if out ~= io.stdout then
  out:close()
  io.stderr:write(("export_failures: %d failed instances written to %s\n"):format(#rows, a.output))
end
