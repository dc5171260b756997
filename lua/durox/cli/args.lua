-- durox.cli.args: the option parser and help-text builder shared by every duroxlua command
-- (durox.cli and the durox.cli.<command> modules). Options are described by a spec; parse
-- errors are one-line messages the dispatcher prints with exit code 2.
local durox = require "durox"

local M = {}

--[[ A spec is a list of entries, each either a section title { section = "Filters" } or an
option:
  { "name-prefix",          long name (the result key is "name_prefix")
    short = "n",            one-letter alias (-n)
    arg = "TEXT",           takes a value (else it is a flag: true when given)
    multi = true,           repeatable: the values are collected in a list
    split = true,           with multi: "a,b" counts as two values
    type = "count"|"time",  value check: a non-negative integer (converted) or a time
                            (durox.parse_time must accept it; the text is kept)
    min = 1, max = 1000,    bounds of a count
    choices = {"a", "b"},   the accepted values
    group = "dir",          at most one option of the same group may be given
    key = "asc",            result key when it differs from the name
    help = "..." }          one line for --help

Positional arguments are declared too (a command's `arguments`), so that no command checks
"missing ..." or "unexpected argument" by hand:
  { { "ID", missing = "instance id" },    required; the message when absent
    { "INPUT", optional = true },          may be left out
    { "ID", many = true, optional = true } any number (only the last may be many) }
Without a declaration, positional arguments are collected and the command checks them.
]]

-- The options every command has.
M.COMMON = {
  { section = "Common options" },
  { "json", help = "print one JSON document instead of text" },
  { "store", arg = "URL", help = "the store to read (default: the global --store, then $DUROX_STORE)" },
  { "config", arg = "FILE", help = "ManagementConfig file (default: the global --config, then $DUROX_CONFIG)" },
  { "no-index", help = "read the store itself, without the visibility index (docs/index.md)" },
  { "help", short = "h", help = "show this help" },
  { section = "Access control (docs/access-control.md)" },
  { "policy", arg = "FILE", help = "access-control policy (default: the global --policy, then $DUROX_POLICY)" },
  { "user", arg = "NAME", help = "the caller's user id for the policy (default: $DUROX_USER)" },
  { "role", arg = "R1,R2", multi = true, split = true, help = "the caller's roles, repeatable (default: $DUROX_ROLES)" },
  { "audit-file", arg = "FILE", help = "JSON Lines audit log when the store is read-only (default: $DUROX_AUDIT_FILE)" },
  { "access-reason", arg = "TEXT", help = "why you act, for break-glass policies (default: $DUROX_ACCESS_REASON)" },
}

-- Result key of an option entry.
local function key_of(opt)
  return opt.key or (opt[1]:gsub("-", "_"))
end

-- Checks and converts one option value; returns the value or nil, message.
local function convert(opt, text)
  if opt.type == "count" then
    local n = text:match("^%d+$") and math.tointeger(tonumber(text))
    if not n then
      return nil, ("option '--%s' expects a non-negative integer, got '%s'"):format(opt[1], text)
    end
    if opt.min and n < opt.min then return nil, ("option '--%s' must be at least %d"):format(opt[1], opt.min) end
    if opt.max and n > opt.max then return nil, ("option '--%s' must be at most %d"):format(opt[1], opt.max) end
    return n
  elseif opt.type == "time" then
    local ok, msg = durox.parse_time(text)
    if not ok then return nil, ("option '--%s': %s"):format(opt[1], msg) end
  end
  if opt.choices then
    for _, c in ipairs(opt.choices) do
      if c == text then return text end
    end
    local list = table.concat(opt.choices, ", "):gsub(", ([^,]*)$", " or %1")
    return nil, ("option '--%s' expects %s, got '%s'"):format(opt[1], list, text)
  end
  return text
end

-- Stores a value for opt in result r; returns nil, message on a conflict.
local function store(r, opt, value, seen_group)
  local k = key_of(opt)
  if opt.group then
    local prev = seen_group[opt.group]
    if prev and prev ~= opt then
      return nil, ("options '--%s' and '--%s' cannot be combined"):format(prev[1], opt[1])
    end
    seen_group[opt.group] = opt
  end
  if opt.multi then
    local list = r[k] or {}
    r[k] = list
    if opt.split then
      local before = #list
      for part in (value .. ","):gmatch("(.-),") do
        if part ~= "" then list[#list + 1] = part end
      end
      if #list == before then return nil, ("option '--%s' needs a value (%s)"):format(opt[1], opt.arg) end
    else
      list[#list + 1] = value
    end
  else
    r[k] = value
  end
  return true
end

-- Edit distance of a and b (case-insensitive; a swap of two neighbours counts as one edit),
-- for suggestions.
local function distance(a, b)
  a, b = a:lower(), b:lower()
  if #a > 64 or #b > 64 then return 99 end
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[#a][#b]
end

-- The entry of words closest to word, or nil: another case, a prefix of at least 3
-- characters, or one edit (two for words of 6 or more characters).
function M.suggest(word, words)
  local best, bd = nil, #word >= 6 and 3 or 2
  for _, w in ipairs(words) do
    local d = distance(word, w)
    if #word >= 3 and w:lower():sub(1, #word) == word:lower() then d = math.min(d, 1) end
    if d < bd then best, bd = w, d end
  end
  return best
end

-- Checks a spec once: every long and short name unique (one meaning everywhere).
local checked = setmetatable({}, { __mode = "k" })
local function check_spec(spec)
  if checked[spec] then return end
  local long, short = {}, {}
  for _, list in ipairs { spec, M.COMMON } do
    for _, opt in ipairs(list) do
      if opt[1] then
        if long[opt[1]] and long[opt[1]] ~= opt then error("option '--" .. opt[1] .. "' declared twice", 3) end
        long[opt[1]] = opt
        if opt.short then
          if short[opt.short] and short[opt.short] ~= opt then
            error(("option '-%s' means both '--%s' and '--%s'"):format(opt.short, short[opt.short][1], opt[1]), 3)
          end
          short[opt.short] = opt
        end
      end
    end
  end
  checked[spec] = true
end

-- Checks the positional arguments r[1..n] against the declaration; nil, message when wrong.
local function check_positional(r, arguments)
  if not arguments then return true end
  local n = #r
  local required, many = 0, false
  for _, p in ipairs(arguments) do
    if not p.optional then required = required + 1 end
    if p.many then many = true end
  end
  if n < required then
    local missing = {}
    for i = n + 1, #arguments do
      local p = arguments[i]
      if not p.optional then
        if #missing == 0 and p.missing then return nil, "missing " .. p.missing end
        missing[#missing + 1] = p[1]
      end
    end
    return nil, "missing " .. table.concat(missing, " and ")
  end
  if not many and n > #arguments then
    return nil, ("unexpected argument '%s'"):format(r[#arguments + 1])
  end
  return true
end

-- Parses argv[first..] against the spec (plus M.COMMON) and the positional declaration
-- (optional). Returns a table with the options under their keys and the positional
-- arguments at 1..n, or nil and a one-line message. -h/--help anywhere (before "--") wins:
-- the result is then {help = true}.
function M.parse(argv, first, spec, arguments)
  check_spec(spec)
  for i = first or 1, #argv do
    if argv[i] == "--" then break end
    if argv[i] == "--help" or argv[i] == "-h" then return { help = true } end
  end
  local long, short, names = {}, {}, {}
  for _, list in ipairs { spec, M.COMMON } do
    for _, opt in ipairs(list) do
      if opt[1] then
        long[opt[1]] = opt
        names[#names + 1] = opt[1]
        if opt.short then short[opt.short] = opt end
      end
    end
  end
  local r, seen_group = {}, {}
  local i, n = first or 1, #argv
  while i <= n do
    local a = argv[i]
    if a == "--" then
      for k = i + 1, n do r[#r + 1] = argv[k] end
      break
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local opt = long[name]
      if not opt then
        local close = M.suggest(name, names)
        return nil, ("unknown option '--%s'%s"):format(name, close and (" (did you mean '--%s'?)"):format(close) or "")
      end
      if opt.arg then
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then return nil, ("option '--%s' needs a value (%s)"):format(name, opt.arg) end
        end
      elseif value ~= nil then
        return nil, ("option '--%s' takes no value"):format(name)
      else
        value = true
      end
      local v, msg = value
      if opt.arg then
        v, msg = convert(opt, value)
        if v == nil then return nil, msg end
      end
      local ok, err = store(r, opt, v, seen_group)
      if not ok then return nil, err end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      -- -x, -x VALUE, -xVALUE, or bundled flags -xy
      local k = 2
      while k <= #a do
        local c = a:sub(k, k)
        local opt = short[c]
        if not opt then return nil, ("unknown option '-%s'"):format(c) end
        local v, msg = true
        if opt.arg then
          local value = a:sub(k + 1)
          if value == "" then
            i = i + 1
            value = argv[i]
            if value == nil then return nil, ("option '-%s' needs a value (%s)"):format(c, opt.arg) end
          end
          v, msg = convert(opt, value)
          if v == nil then return nil, msg end
          k = #a
        end
        local ok, err = store(r, opt, v, seen_group)
        if not ok then return nil, err end
        k = k + 1
      end
    else
      r[#r + 1] = a
    end
    i = i + 1
  end
  local ok, err = check_positional(r, arguments)
  if not ok then return nil, err end
  return r
end

-- What each help text was made from ({usage, description, spec}), keyed by the text: the
-- manual (durox.cli.manual) builds docs/cli.md, the man page and the shell completions from
-- exactly what --help shows.
M.docs = {}

-- The --help text of a command: usage line(s), description, then the options of spec and
-- M.COMMON in aligned sections.
function M.help(usage, description, spec)
  local lines = {}
  for u in (usage .. "\n"):gmatch("(.-)\n") do
    lines[#lines + 1] = (#lines == 0 and "usage: " or "       ") .. u
  end
  lines[#lines + 1] = ""
  for d in (description .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = d end
  local entries = {}
  for _, list in ipairs { spec, M.COMMON } do
    for _, opt in ipairs(list) do entries[#entries + 1] = opt end
  end
  local left, width = {}, 0
  for i, opt in ipairs(entries) do
    if opt[1] then
      local l = (opt.short and ("-%s, "):format(opt.short) or "    ") .. "--" .. opt[1]
      if opt.arg then l = l .. " " .. opt.arg end
      left[i] = l
      if #l > width then width = #l end
    end
  end
  for i, opt in ipairs(entries) do
    if opt.section then
      lines[#lines + 1] = ""
      lines[#lines + 1] = opt.section .. ":"
    else
      lines[#lines + 1] = ("  %-" .. width .. "s  %s"):format(left[i], opt.help or "")
    end
  end
  local text = table.concat(lines, "\n") .. "\n"
  M.docs[text] = { usage = usage, description = description, spec = spec }
  return text
end

return M
