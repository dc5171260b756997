-- durox.report: text helpers for the metrics commands of duroxlua (metrics, queues, query,
-- series, tree, stuck, top): aligned "label: value" blocks, figures (rates, measured times,
-- sizes, ages) with "-" for what is undefined, and terminal charts (block-character bars and
-- sparklines). Used by durox.cli.<command> modules; relies on durox.format.
local format = require "durox.format"

local M = {}

-- Appends aligned "Label:  value" lines for the pairs (nil values are skipped), indented.
function M.fields(out, list, indent)
  indent = indent or ""
  local width = 0
  for _, p in ipairs(list) do
    if p[2] ~= nil then width = math.max(width, format.width(p[1]) + 1) end
  end
  for _, p in ipairs(list) do
    if p[2] ~= nil then
      out[#out + 1] = indent .. format.pad(p[1] .. ":", width) .. "  " .. tostring(p[2])
    end
  end
end

-- "97.3%", or "-" for nil.
function M.rate(x)
  if x == nil then return "-" end
  return ("%.1f%%"):format(x * 100)
end

-- A measured time in ms: "0.42ms", "216ms", "2.41s", "3m 20s"; "-" for nil.
function M.ms(x)
  if x == nil then return "-" end
  if x < 10 and x ~= math.floor(x) then return ("%.2fms"):format(x) end
  if x < 1000 then return ("%dms"):format(math.floor(x + 0.5)) end
  if x < 60000 then return ("%.2fs"):format(x / 1000) end
  return format.duration(x)
end

-- An age in ms as a compact duration ("3m 20s"), "-" for nil.
function M.age(x)
  if x == nil then return "-" end
  return format.duration(x)
end

-- "3.3 MiB"; "-" for nil.
function M.bytes(n)
  if n == nil then return "-" end
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local u, v = 1, n
  while v >= 1024 and u < #units do v, u = v / 1024, u + 1 end
  if u == 1 then return ("%d B"):format(n) end
  return ("%.1f %s"):format(v, units[u])
end

-- "1,234,567"
function M.int(n)
  if n == nil then return "-" end
  local s = tostring(math.tointeger(n) or n)
  local sign, digits = s:match("^(-?)(%d+)$")
  if not digits then return s end
  return sign .. digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
end

-- "ok" / "UNHEALTHY"
function M.health(ok)
  return ok and "ok" or "UNHEALTHY"
end

local BARS = { "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" }
local ASCII_BARS = { ".", ":", "-", "=", "+", "*", "#", "@" }

-- One character per value, scaled to the maximum (a blank for 0).
function M.sparkline(values, ascii)
  local bars = ascii and ASCII_BARS or BARS
  local max = 0
  for _, v in ipairs(values) do if v and v > max then max = v end end
  local out = {}
  for i, v in ipairs(values) do
    if not v or v <= 0 or max == 0 then
      out[i] = " "
    else
      out[i] = bars[math.max(1, math.min(8, math.ceil(v / max * 8)))]
    end
  end
  return table.concat(out)
end

-- A vertical bar chart of values, height rows tall, one column per value (eighth blocks give
-- each row 8 steps), with a left axis of labels; returns its lines (without the x axis).
function M.bars(values, height, ascii)
  local max = 0
  for _, v in ipairs(values) do if v and v > max then max = v end end
  local label_w = #M.int(max)
  local lines = {}
  for row = height, 1, -1 do
    local cells = {}
    for i, v in ipairs(values) do
      local level = (max > 0 and v) and (v / max * height) or 0 -- in rows
      local fill = level - (row - 1)
      if fill >= 1 then
        cells[i] = ascii and "#" or "█"
      elseif fill > 0 and v > 0 then
        cells[i] = ascii and (fill >= 0.5 and "+" or ".") or BARS[math.max(1, math.floor(fill * 8 + 0.5))]
      else
        cells[i] = " "
      end
    end
    local label = row == height and M.int(max) or (row == 1 and "0" or "")
    lines[#lines + 1] = format.pad(label, label_w, "right") .. (ascii and " |" or " │") .. table.concat(cells)
  end
  return lines, label_w
end

return M
