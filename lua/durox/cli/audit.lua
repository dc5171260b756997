-- durox.cli.audit: `duroxlua audit [--verify] [--json]`, the audit log of access control: every
-- write attempt, bulk job, denied read and policy load (get_audit_log), newest last, or the
-- verification of its hash chain (verify_audit_log), from the store or a JSON Lines file.
-- Run by the dispatcher (durox.cli).
local durox = require "durox"
local args = require "durox.cli.args"
local format = require "durox.format"
local output = require "durox.cli.output"

local M = {}

M.summary = "show the audit log or verify its hash chain (--verify)"

M.arguments = {}

M.options = {
  { section = "Options" },
  { "verify", help = "recompute the hash chain; exit 1 naming the first broken record" },
  { "since", arg = "TIME", type = "time", help = "records from TIME on (ISO-8601 or relative, e.g. -24h)" },
  { "for-user", arg = "NAME", key = "for_user", help = "records of this user only" },
  { "operation", arg = "OP", help = "records of this operation only (e.g. cancel_instance, policy_load)" },
  { "limit", short = "n", arg = "N", type = "count", min = 1, max = 1000000, help = "the newest N records (default 100)" },
  { "file", arg = "FILE", help = "read a JSON Lines audit file instead of the store's log" },
  { "wide", short = "w", help = "do not truncate cells to the terminal width" },
  output.OPTION,
}

M.help = args.help("duroxlua audit [--since TIME] [--for-user NAME] [--operation OP] [-n N] [--file FILE]\n" ..
  "duroxlua audit --verify [--file FILE]",
  "The audit log access control keeps (docs/access-control.md): a record for every write\n" ..
  "attempt (allowed or denied), every bulk job and its outcome, every denied read and every\n" ..
  "policy load, each holding the hash of its predecessor. Without --verify: the newest\n" ..
  "records, oldest first. With --verify: recomputes every hash and link and says 'ok' with the\n" ..
  "head of the chain, or names the first edited, removed or reordered record (exit 1).\n" ..
  "Reading it needs can_view_audit when a policy is in force. A keyed chain needs the key in\n" ..
  "$DUROX_AUDIT_KEY. With --json: the records (or the verification) as JSON; --format jsonl\n" ..
  "or csv: one record per line (csv: every field, time as ISO-8601, roles/params/result as JSON).",
  M.options)

local COLUMNS = {
  { title = "SEQ", align = "right" },
  { title = "TIME", min = 20 },
  { title = "USER", min = 4 },
  { title = "OPERATION", min = 9 },
  { title = "TARGET", min = 6, shrink = 2 },
  { title = "DECISION", min = 5 },
  { title = "RESULT", min = 6, shrink = 1 },
  { title = "REASON", min = 6, shrink = 1 },
}

-- --format csv: every field of a record (docs/access-control.md), in its order.
local CSV_COLUMNS = { { "seq" }, { "time", get = function(r) return durox.format_time(r.time) end }, { "user_id" },
  { "roles" }, { "source_ip" }, { "context_reason" }, { "operation" }, { "target" }, { "decision" }, { "reason" },
  { "policy" }, { "params" }, { "result" }, { "prev_hash" }, { "hash" } }

-- One line for a record's result: its code (and message), or its counts.
local function result_text(r)
  local res = r.result
  if type(res) ~= "table" then return "-" end
  if res.code then
    return res.message and (res.code .. ": " .. res.message) or res.code
  end
  local parts = {}
  for _, k in ipairs { "job_id", "state", "matched", "done", "failed", "denied", "not_found", "pending" } do
    if res[k] ~= nil and res[k] ~= durox.null then parts[#parts + 1] = k .. "=" .. tostring(res[k]) end
  end
  return #parts > 0 and table.concat(parts, " ") or "-"
end

function M.run(a, ctx)
  local dx, code = ctx:open()
  if not dx then return code end
  if a.verify then
    local ok, info = dx:verify_audit_log(a.file)
    if not ok then
      if ctx.json then -- one document: the verification and the error shape of every command
        ctx:print_json { ok = false, error = format.oneline(info), code = durox.null, exit = 1 }
        return 1
      end
      return ctx:fail(info, 1)
    end
    if ctx.json then
      ctx:print_json { ok = true, records = info.records, head_seq = info.head_seq, head_hash = info.head_hash }
    else
      ctx:out(("ok: %s verified%s\n"):format(format.count(info.records, "record"),
        info.head_hash and (", head %d %s"):format(info.head_seq, info.head_hash) or ""))
    end
    return 0
  end
  local q = { since = a.since, user_id = a.for_user, operation = a.operation, limit = a.limit, file = a.file }
  local records
  records, code = ctx:call("get_audit_log", q)
  if not records then return code end
  ctx:emit {
    doc = records,
    records = records,
    columns = CSV_COLUMNS,
    text = function()
      if #records == 0 then return "no audit records\n" end
      local rows = {}
      for _, r in ipairs(records) do
        rows[#rows + 1] = { tostring(r.seq), format.iso_ms(r.time), format.oneline(r.user_id or "-"),
          r.operation, format.oneline(r.target or "-"), r.decision, format.oneline(result_text(r)),
          format.oneline(r.reason or "-") }
      end
      return format.table(COLUMNS, rows, ctx:width())
    end,
  }
  return 0
end

return M
