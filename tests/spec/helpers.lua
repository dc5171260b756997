-- helpers.lua - shared by the busted specs: where the fixture store and Duroxide's own
-- answers (the oracle) are, and an independent way to read the store (the sqlite3 CLI)
-- so tests can check our figures against values computed without our code.
local durox = require "durox"

local H = {}

H.db = os.getenv("DUROX_SCENARIO_DB")
H.oracle_path = os.getenv("DUROX_ORACLE")

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
H.read_file = read_file

-- The scenario store's manifest (what each instance was made to be).
function H.manifest()
  return assert(durox.decode_json(read_file(H.db .. ".manifest.json")))
end

-- Duroxide's own management answers on the same store (tests/harness/oracle.js).
function H.oracle()
  return assert(durox.decode_json(read_file(H.oracle_path)))
end

function H.open(opts)
  return assert(durox.open("sqlite:" .. H.db, opts))
end

-- Runs SQL through the sqlite3 command-line tool (read-only) and returns its rows; db
-- defaults to the scenario store.
function H.sql(query, db)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(query)
  f:close()
  local p = assert(io.popen(string.format("sqlite3 -readonly -json 'file:%s?mode=ro' < %s", db or H.db, tmp)))
  local out = p:read("a")
  p:close()
  os.remove(tmp)
  if out == "" then return {} end
  return assert(durox.decode_json(out))
end

-- SQL string literal.
function H.q(s)
  return "'" .. s:gsub("'", "''") .. "'"
end

-- Set of the values of field k in a list of tables (or of the list itself when k is nil).
function H.set(list, k)
  local s = {}
  for _, v in ipairs(list) do s[k and v[k] or v] = true end
  return s
end

-- Sorted array of the keys of a set.
function H.keys(set)
  local a = {}
  for k in pairs(set) do a[#a + 1] = k end
  table.sort(a)
  return a
end

function H.ids(list)
  local a = {}
  for i, v in ipairs(list) do a[i] = v.instance_id end
  return a
end

function H.sorted(a)
  local c = {}
  for i, v in ipairs(a) do c[i] = v end
  table.sort(c)
  return c
end

-- Deep equality for decoded JSON (durox.null compares equal to itself).
function H.deep_equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not H.deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

H.skip = not (H.db and H.oracle_path)

-- The store caught mid-flight (tests/make_busy_store.sh) and Duroxide's answers on it.
H.busy_db = os.getenv("DUROX_BUSY_DB")
H.busy_oracle_path = os.getenv("DUROX_BUSY_ORACLE")
H.busy_info_path = os.getenv("DUROX_BUSY_INFO")
H.busy_skip = not (H.busy_db and H.busy_oracle_path and H.busy_info_path)

return H
