-- durox.pretty: the REPL printer of duroxlua (src/cli/main.c prints every result with
-- print(...)). Tables become indented, key-sorted trees (ms timestamps annotated with their
-- ISO form, cycles and depth guarded); a list of instance summaries becomes an aligned
-- table; other values print like the standard print. tostring(v) returns the rendering.
local durox = require "durox"
local format = require "durox.format"

local M = {}

-- Limits: nesting depth, items shown per table, characters shown per string.
M.max_depth = 8
M.max_items = 200
M.max_string = 1000

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

-- smallest and largest integer treated as a timestamp in a field ending _at/_ms (1973..5138)
local TS_MIN, TS_MAX = 100000000000, 99999999999999

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- A string as a double-quoted Lua literal, cut to max_string characters.
local function quote(s)
  local cut = ""
  if format.len(s) > M.max_string then
    cut = (" --[[%d bytes]]"):format(#s)
    s = format.truncate(s, M.max_string)
  end
  return '"' .. s:gsub('[%c"\\]', function(c) return ESC[c] or ("\\%03d"):format(c:byte()) end) .. '"' .. cut
end

-- A scalar (anything but a plain table) as text; strings quoted when quoted is true.
local function scalar(v, quoted)
  local t = type(v)
  if t == "string" then return quoted and quote(v) or v end
  if v == durox.null then return "null" end
  if t == "number" and math.type(v) == "float" then
    if v == math.floor(v) and v > -1e15 and v < 1e15 then return ("%.1f"):format(v) end
    return ("%.14g"):format(v)
  end
  return tostring(v)
end

-- A table key as it is written in a constructor: name, ["text"] or [1].
local function key_text(k)
  if type(k) == "string" then
    if k:match("^[%a_][%w_]*$") and not KEYWORDS[k] then return k end
    return "[" .. quote(k) .. "]"
  end
  return "[" .. scalar(k, true) .. "]"
end

-- Order of keys: numbers first (ascending), then strings (alphabetical), then the rest.
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    local rank = { number = 1, string = 2 }
    return (rank[ta] or 3) < (rank[tb] or 3) or ((rank[ta] or 3) == (rank[tb] or 3) and ta < tb)
  end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

-- The length of t's array part 1..n and the sorted list of its other keys.
local function split_keys(t)
  local n = 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  local rest = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then rest[#rest + 1] = k end
  end
  table.sort(rest, key_less)
  return n, rest
end

-- The ISO comment for a timestamp-looking value of a field named k, or nil.
local function time_comment(k, v)
  if type(k) == "string" and math.type(v) == "integer" and v >= TS_MIN and v <= TS_MAX
     and (k:sub(-3) == "_at" or k:sub(-3) == "_ms" or k == "timestamp") then
    return format.iso_ms(v)
  end
end

-- True when t is a non-empty array of instance summaries.
local function is_summary_list(t)
  local n, rest = split_keys(t)
  if n == 0 or #rest > 0 then return false end
  for i = 1, n do
    local s = t[i]
    if type(s) ~= "table" or getmetatable(s) or type(s.instance_id) ~= "string" or type(s.status) ~= "string" then
      return false
    end
  end
  return true
end

local render

-- t on one line ("{ 1, 2, a = 3 }"), or nil when it holds a table, a timestamp or is too long.
local function inline(t, n, rest, room)
  local parts = {}
  for i = 1, n do
    local v = t[i]
    if type(v) == "table" and next(v) ~= nil and not getmetatable(v) then return nil end
    parts[#parts + 1] = type(v) == "table" and "{}" or scalar(v, true)
  end
  for _, k in ipairs(rest) do
    local v = t[k]
    if (type(v) == "table" and (next(v) ~= nil or getmetatable(v))) or time_comment(k, v) then return nil end
    parts[#parts + 1] = key_text(k) .. " = " .. (type(v) == "table" and "{}" or scalar(v, true))
  end
  if #parts == 0 then return "{}" end
  local text = "{ " .. table.concat(parts, ", ") .. " }"
  if format.width(text) > room or text:find("\n") then return nil end
  return text
end

-- Renders v into lines (list of strings); the first line continues the caller's line.
function render(v, indent, depth, seen, width)
  if type(v) ~= "table" then return scalar(v, true) end
  local mt = getmetatable(v)
  if mt and mt.__tostring then return tostring(v) end
  if seen[v] then return "<cycle>" end
  local n, rest = split_keys(v)
  if n + #rest == 0 then return "{}" end
  if depth >= M.max_depth then return ("{...} --[[%s]]"):format(format.count(n + #rest, "item")) end
  local one = inline(v, n, rest, width - #indent)
  if one then return one end
  seen[v] = true
  local inner = indent .. "  "
  local out, shown = { "{" }, 0
  local function add(prefix, k, val)
    shown = shown + 1
    if shown > M.max_items then return false end
    local text = render(val, inner, depth + 1, seen, width)
    local comment = time_comment(k, val)
    out[#out + 1] = inner .. prefix .. text .. "," .. (comment and " -- " .. comment or "")
    return true
  end
  local total = n + #rest
  for i = 1, n do
    if not add("", i, v[i]) then break end
  end
  for _, k in ipairs(rest) do
    if not add(key_text(k) .. " = ", k, v[k]) then break end
  end
  if total > M.max_items then
    out[#out + 1] = ("%s-- ... %d more"):format(inner, total - M.max_items)
  end
  out[#out + 1] = indent .. "}"
  seen[v] = nil
  return table.concat(out, "\n")
end

-- The rendering of one value: a summary list as an aligned table, a table as a tree,
-- anything else like print would show it (strings unquoted).
function M.tostring(v, width)
  width = width or format.term_width()
  if type(v) ~= "table" then return scalar(v, false) end
  if is_summary_list(v) then
    local rows = {}
    for i, s in ipairs(v) do rows[i] = format.summary_cells(s) end
    return format.table(format.SUMMARY_COLUMNS, rows, width) .. "-- " .. format.count(#v, "instance")
  end
  return render(v, "", 0, {}, width)
end

-- Prints the values like print (separated by tabs), tables rendered by M.tostring.
function M.print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = M.tostring((select(i, ...))) end
  io.stdout:write(table.concat(parts, "\t"), "\n")
  io.stdout:flush()
end

return M
