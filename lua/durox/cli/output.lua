-- durox.cli.output: the output formats of duroxlua's commands: the --format option (table,
-- json, jsonl, csv) that list, query, history, stuck, jobs and audit take, JSON with ISO-8601 times
-- beside the milliseconds, JSON Lines, and CSV as RFC 4180 has it. Used by durox.cli (the
-- context's print and emit) and by the commands that declare --format.
local durox = require "durox"

local M = {}

M.FORMATS = { "table", "json", "jsonl", "csv" }

-- The --format option, for a command's spec.
M.OPTION = { "format", arg = "F", choices = M.FORMATS,
             help = "table (default), json (one document), jsonl (one JSON record per line) or csv" }

-- Fields holding a time in ms: every key ending in _at, and these.
local TIME_KEYS = { since = true, now = true, from = true, to = true, start = true, timestamp_ms = true,
                    created_date = true }

local function is_time_key(k)
  return type(k) == "string" and (TIME_KEYS[k] or k:sub(-3) == "_at")
end

-- The name of the ISO-8601 field beside time field k: created_at -> created_at_iso,
-- timestamp_ms -> timestamp_iso.
local function iso_key(k)
  return (k:gsub("_ms$", "")) .. "_iso"
end

-- A copy of v where every integer time field (see TIME_KEYS) has an ISO-8601 UTC twin with
-- milliseconds ("2026-11-26T09:43:25.123Z"). Other values are shared, not copied.
function M.with_iso(v, depth)
  depth = depth or 0
  if type(v) ~= "table" or depth > 50 or getmetatable(v) ~= nil then return v end
  local out = {}
  for k, x in pairs(v) do
    out[k] = M.with_iso(x, depth + 1)
    if is_time_key(k) and math.type(x) == "integer" and x >= -62167219200000 and x <= 253402300799999
        and v[iso_key(k)] == nil then
      out[iso_key(k)] = durox.format_time(x)
    end
  end
  return out
end

-- One JSON document (pretty) with ISO twins of the times.
function M.json(v)
  return durox.encode_json(M.with_iso(v), true) .. "\n"
end

-- One compact JSON line per record, with ISO twins of the times.
function M.jsonl(records)
  local out = {}
  for i, r in ipairs(records) do out[i] = durox.encode_json(M.with_iso(r)) end
  return #out > 0 and (table.concat(out, "\n") .. "\n") or ""
end

-- A CSV field (RFC 4180): quoted when it holds a comma, a quote, CR or LF (quotes doubled).
function M.csv_field(v)
  if v == nil or v == durox.null then return "" end
  local s = tostring(v)
  if s:find('[,"\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

-- CSV text: a header line with the column names, then one line per record; lines end with
-- CRLF (RFC 4180). columns = { {name, get = function(record) -> value} }; without get the
-- record's field of the same name; times (see TIME_KEYS) are written as ISO-8601.
function M.csv(columns, records)
  local lines = {}
  local head = {}
  for i, c in ipairs(columns) do head[i] = M.csv_field(c[1]) end
  lines[1] = table.concat(head, ",")
  for _, r in ipairs(records) do
    local row = {}
    for i, c in ipairs(columns) do
      local v
      if c.get then v = c.get(r) else v = r[c[1]] end
      if is_time_key(c[1]) and math.type(v) == "integer" then v = durox.format_time(v) end
      if type(v) == "table" then v = durox.encode_json(v) end
      row[i] = M.csv_field(v)
    end
    lines[#lines + 1] = table.concat(row, ",")
  end
  return table.concat(lines, "\r\n") .. "\r\n"
end

return M
