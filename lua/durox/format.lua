-- durox.format: text helpers shared by the CLI commands (durox.cli.*) and the REPL printer
-- (durox.pretty): ISO-8601 times, relative durations ("3m ago", "in 2h"), UTF-8 aware
-- display width and ellipsis truncation, one-line escaping, and an aligned table renderer.
local durox = require "durox"

local M = {}

M.ELLIPSIS = "\u{2026}"

-- ---- times -----------------------------------------------------------------------------

-- ISO-8601 UTC with milliseconds ("2024-01-31T12:00:00.250Z"), or "-" when ms is nil.
function M.iso_ms(ms)
  if ms == nil then return "-" end
  return durox.format_time(ms)
end

-- ISO-8601 UTC to the second ("2024-01-31T12:00:00Z"), or "-" when ms is nil.
function M.iso(ms)
  if ms == nil then return "-" end
  return (durox.format_time(ms):gsub("%.%d+Z$", "Z"))
end

local UNITS = {
  { "d", 86400000 },
  { "h", 3600000 },
  { "m", 60000 },
  { "s", 1000 },
}

-- A compact duration: "250ms", "45s", "3m 20s", "59m", "2h 5m", "15h", "3d 4h" (a second
-- unit only while the first is below 10).
function M.duration(ms)
  ms = math.abs(ms // 1)
  if ms < 1000 then return ("%dms"):format(ms) end
  for i, u in ipairs(UNITS) do
    local n = ms // u[2]
    if n >= 1 then
      local text = ("%d%s"):format(n, u[1])
      local sub = UNITS[i + 1]
      if n < 10 and sub then
        local rest = (ms % u[2]) // sub[2]
        if rest > 0 then text = ("%s %d%s"):format(text, rest, sub[1]) end
      end
      return text
    end
  end
end

-- Where ms lies relative to now: "3m ago", "in 2h", or "now" (within a second).
function M.relative(ms, now)
  now = now or durox.now()
  local d = ms - now
  if d > -1000 and d < 1000 then return "now" end
  if d > 0 then return "in " .. M.duration(d) end
  return M.duration(d) .. " ago"
end

-- "1 instance", "3 instances" (plural defaults to singular .. "s").
function M.count(n, singular, plural)
  return ("%d %s"):format(n, n == 1 and singular or (plural or singular .. "s"))
end

-- ---- UTF-8 and display width -----------------------------------------------------------

-- Decodes the character starting at byte i of s: returns its code point (nil for an invalid
-- byte, which then counts as one character) and the index of its last byte.
local function decode(s, i)
  local c = s:byte(i)
  local n, cp
  if c < 0x80 then return c, i
  elseif c >= 0xC2 and c <= 0xDF then n, cp = 1, c & 0x1F
  elseif c >= 0xE0 and c <= 0xEF then n, cp = 2, c & 0x0F
  elseif c >= 0xF0 and c <= 0xF4 then n, cp = 3, c & 0x07
  else return nil, i end
  for k = 1, n do
    local b = s:byte(i + k)
    if b == nil or b < 0x80 or b > 0xBF then return nil, i end
    cp = (cp << 6) | (b & 0x3F)
  end
  return cp, i + n
end

-- Display columns of a code point: 0 for combining marks and zero-width characters, 2 for
-- East Asian wide and emoji, else 1.
local function cpwidth(cp)
  if cp == nil then return 1 end
  if (cp >= 0x300 and cp <= 0x36F) or (cp >= 0x200B and cp <= 0x200F) or cp == 0xFEFF
     or (cp >= 0xFE00 and cp <= 0xFE0F) then
    return 0
  end
  if (cp >= 0x1100 and cp <= 0x115F) or (cp >= 0x2E80 and cp <= 0x303E) or (cp >= 0x3041 and cp <= 0x33FF)
     or (cp >= 0x3400 and cp <= 0x4DBF) or (cp >= 0x4E00 and cp <= 0x9FFF) or (cp >= 0xA000 and cp <= 0xA4CF)
     or (cp >= 0xAC00 and cp <= 0xD7A3) or (cp >= 0xF900 and cp <= 0xFAFF) or (cp >= 0xFE30 and cp <= 0xFE4F)
     or (cp >= 0xFF00 and cp <= 0xFF60) or (cp >= 0xFFE0 and cp <= 0xFFE6) or (cp >= 0x1F300 and cp <= 0x1F64F)
     or (cp >= 0x1F900 and cp <= 0x1F9FF) or (cp >= 0x20000 and cp <= 0x3FFFD) then
    return 2
  end
  return 1
end

-- Number of characters (code points; an invalid byte counts as one) in s.
function M.len(s)
  local n = utf8.len(s)
  if n then return n end
  local i, count = 1, 0
  while i <= #s do
    local _, last = decode(s, i)
    i, count = last + 1, count + 1
  end
  return count
end

-- Display width of s in terminal columns.
function M.width(s)
  if not s:find("[\x80-\xFF]") then return #s end
  local i, w = 1, 0
  while i <= #s do
    local cp, last = decode(s, i)
    w, i = w + cpwidth(cp), last + 1
  end
  return w
end

-- s cut to at most max display columns, ending with an ellipsis when it was cut (never
-- splits a UTF-8 character).
function M.truncate(s, max)
  if M.width(s) <= max then return s end
  if max <= 0 then return "" end
  local i, w, cut = 1, 0, 0
  while i <= #s do
    local cp, last = decode(s, i)
    local cw = cpwidth(cp)
    if w + cw > max - 1 then break end
    w, cut, i = w + cw, last, last + 1
  end
  return s:sub(1, cut) .. M.ELLIPSIS
end

-- s padded with spaces to width display columns (align "right" pads on the left).
function M.pad(s, width, align)
  local fill = width - M.width(s)
  if fill <= 0 then return s end
  if align == "right" then return (" "):rep(fill) .. s end
  return s .. (" "):rep(fill)
end

local ESCAPES = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- s on one line: newlines, tabs and other control characters escaped (\n, \t, \x1b).
function M.oneline(s)
  s = tostring(s)
  return (s:gsub("[%c]", function(c) return ESCAPES[c] or ("\\x%02x"):format(c:byte()) end))
end

-- ---- terminal --------------------------------------------------------------------------

local term_width_cache

-- Width of the output in columns: $COLUMNS, else the terminal's when stdout is one, else 120.
function M.term_width()
  if term_width_cache then return term_width_cache end
  local w = tonumber(os.getenv("COLUMNS") or "")
  if not w and os.execute("test -t 1") then
    local p = io.popen("stty size </dev/tty 2>/dev/null")
    if p then
      w = tonumber((p:read("a") or ""):match("^%d+%s+(%d+)"))
      p:close()
    end
  end
  if not w or w < 20 then w = w and 20 or 120 end
  term_width_cache = math.floor(w)
  return term_width_cache
end

-- ---- aligned tables --------------------------------------------------------------------

local GAP = "  "

-- Column widths for rows (lists of strings) under columns ({title=, align=, max=, min=,
-- shrink=}): each column as wide as its widest cell (capped at max), then columns shrunk
-- (down to min, default the title's width or 6) until the line fits width (nil: no limit):
-- those with the highest shrink priority (default 1) first, the widest of them first.
function M.layout(columns, rows, width)
  local w, floor = {}, {}
  for c, col in ipairs(columns) do
    local tw = M.width(col.title)
    w[c] = tw
    for _, row in ipairs(rows) do
      local cw = M.width(row[c] or "")
      if cw > w[c] then w[c] = cw end
    end
    if width and col.max and w[c] > col.max then w[c] = math.max(col.max, tw) end
    floor[c] = math.min(w[c], col.min or math.max(tw, 6))
  end
  if width then
    local total = #GAP * (#columns - 1)
    for c = 1, #columns do total = total + w[c] end
    while total > width do
      local widest, prio
      for c = 1, #columns do
        local p = columns[c].shrink or 1
        if w[c] > floor[c] and (not widest or p > prio or (p == prio and w[c] > w[widest])) then
          widest, prio = c, p
        end
      end
      if not widest then break end
      w[widest], total = w[widest] - 1, total - 1
    end
  end
  return w
end

-- One table line: the cells padded to widths and truncated to them unless keep is true
-- (no trailing blanks).
function M.row(columns, widths, cells, keep)
  local parts = {}
  for c, col in ipairs(columns) do
    local cell = cells[c] or ""
    if not keep then cell = M.truncate(cell, widths[c]) end
    if c < #columns or col.align == "right" then cell = M.pad(cell, widths[c], col.align) end
    parts[c] = cell
  end
  return (table.concat(parts, GAP):gsub("%s+$", ""))
end

-- The header line of a table.
function M.header(columns, widths)
  local titles = {}
  for c, col in ipairs(columns) do titles[c] = col.title end
  return M.row(columns, widths, titles)
end

-- A whole table (header and rows, each line ending with a newline) fitted to width (nil:
-- no limit).
function M.table(columns, rows, width)
  local widths = M.layout(columns, rows, width)
  local out = { M.header(columns, widths) }
  for _, row in ipairs(rows) do out[#out + 1] = M.row(columns, widths, row) end
  return table.concat(out, "\n") .. "\n"
end

-- ---- instance summaries -----------------------------------------------------------------

-- "Failed (cancelled)" for a failed instance, else its status.
function M.status_text(s)
  if s.failure_kind then return ("%s (%s)"):format(s.status, s.failure_kind) end
  return s.status or "-"
end

-- The columns of an instance summary table (duroxlua list, the REPL printer).
M.SUMMARY_COLUMNS = {
  { title = "INSTANCE", max = 40, min = 12 },
  { title = "NAME", max = 24, min = 8, shrink = 2 },
  { title = "VERSION", max = 10, shrink = 2 },
  { title = "STATUS", max = 28, min = 23 },
  { title = "CREATED", min = 20 },
  { title = "UPDATED", min = 20 },
  { title = "EXECS", align = "right", min = 5 },
  { title = "PARENT", max = 40, min = 6, shrink = 3 },
}

-- The cells of one instance summary under SUMMARY_COLUMNS.
function M.summary_cells(s)
  return {
    M.oneline(s.instance_id or "-"),
    M.oneline(s.orchestration_name or "-"),
    s.version and M.oneline(s.version) or "-",
    M.status_text(s),
    M.iso(s.created_at),
    M.iso(s.updated_at),
    tostring(s.execution_count or "-"),
    s.parent_instance and M.oneline(s.parent_instance) or "-",
  }
end

return M
