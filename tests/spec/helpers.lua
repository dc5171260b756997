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
-- A sqlite3 error (a typo in the query, a missing table or column, an unreadable file) raises:
-- an oracle that fails must never look like one that found no rows.
function H.sql(query, db)
  local tmp, errf = os.tmpname(), os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(query)
  f:close()
  local p = assert(io.popen(string.format("sqlite3 -bail -readonly -json 'file:%s?mode=ro' < %s 2>%s", db or H.db,
    tmp, errf)))
  local out = p:read("a")
  local ok = p:close()
  local e = io.open(errf, "rb")
  local err = e and e:read("a") or ""
  if e then e:close() end
  os.remove(tmp)
  os.remove(errf)
  if not ok or err ~= "" then
    error(("sqlite3 failed on %s: %s\nquery: %s"):format(db or H.db, err:gsub("%s+$", ""), query), 2)
  end
  if out == "" then return {} end
  return assert(durox.decode_json(out))
end

-- H.sql with JSON nulls as nil.
function H.rows(query, db)
  local rows = H.sql(query, db)
  for _, r in ipairs(rows) do
    for k, v in pairs(r) do
      if v == durox.null then r[k] = nil end
    end
  end
  return rows
end

-- Every instance of db with what metrics and analytics derive from it, read independently of
-- our code (docs/metrics.md): id, name, version, status, parent, created (ms), start_ts (the
-- first OrchestrationStarted) and end_ts (the current execution's terminal event).
function H.instance_rows(db)
  return H.rows([[
    SELECT i.instance_id AS id, i.orchestration_name AS name, i.orchestration_version AS version,
      COALESCE(e.status, 'Unknown') AS status, i.parent_instance_id AS parent,
      CAST(strftime('%s', i.created_at) AS INTEGER) * 1000 AS created,
      (SELECT json_extract(t.event_data, '$.timestamp_ms') FROM history t WHERE t.instance_id = i.instance_id
         AND t.execution_id = i.current_execution_id AND t.event_type IN ('OrchestrationCompleted', 'OrchestrationFailed')
         ORDER BY t.event_id DESC LIMIT 1) AS end_ts,
      (SELECT json_extract(f.event_data, '$.timestamp_ms') FROM history f WHERE f.instance_id = i.instance_id
         AND f.event_type = 'OrchestrationStarted' ORDER BY f.execution_id, f.event_id LIMIT 1) AS start_ts
    FROM instances i LEFT JOIN executions e ON e.instance_id = i.instance_id
      AND e.execution_id = i.current_execution_id]], db)
end

-- H.instance_rows on PostgreSQL (database db, default the scenario store), with PostgreSQL's
-- own JSON and time functions.
function H.pg_instance_rows(db)
  local rows = H.psql([[
    SELECT i.instance_id AS id, i.orchestration_name AS name, i.orchestration_version AS version,
      COALESCE(e.status, 'Unknown') AS status, i.parent_instance_id AS parent,
      floor(extract(epoch FROM i.created_at) * 1000)::int8 AS created,
      (SELECT (t.event_data::json->>'timestamp_ms')::int8 FROM history t WHERE t.instance_id = i.instance_id
         AND t.execution_id = i.current_execution_id
         AND t.event_data::json->>'type' IN ('OrchestrationCompleted', 'OrchestrationFailed')
         ORDER BY t.event_id DESC LIMIT 1) AS end_ts,
      (SELECT (f.event_data::json->>'timestamp_ms')::int8 FROM history f WHERE f.instance_id = i.instance_id
         AND f.event_data::json->>'type' = 'OrchestrationStarted' ORDER BY f.execution_id, f.event_id LIMIT 1) AS start_ts
    FROM instances i LEFT JOIN executions e ON e.instance_id = i.instance_id
      AND e.execution_id = i.current_execution_id]], db)
  for _, r in ipairs(rows) do
    for k, v in pairs(r) do
      if v == durox.null then r[k] = nil end
    end
  end
  return rows
end

-- The duration of an instance row of H.instance_rows (nil unless Completed or Failed).
function H.instance_duration(r)
  if (r.status == "Completed" or r.status == "Failed") and r.end_ts and r.start_ts then
    return r.end_ts - r.start_ts
  end
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

-- The sorted ids of the summaries in list that satisfy f.
function H.where(list, f)
  local r = {}
  for _, s in ipairs(list) do
    if f(s) then r[#r + 1] = s.instance_id end
  end
  table.sort(r)
  return r
end

-- The sorted ids dx:list_instances(filter) returns.
function H.list_ids(dx, filter)
  return H.sorted(H.ids(assert(dx:list_instances(filter))))
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

-- ---- both providers ---------------------------------------------------------------------
--
-- The same scenarios, written by the real runtime to SQLite (H.db) and to PostgreSQL (the
-- test server's database durox_scenarios, schema dx: tests/make_pg_fixtures.sh). A spec runs
-- its cases once per provider:
--   for _, P in ipairs(H.providers()) do describe("on " .. P.name, function() ... end) end
-- Each P: name ("sqlite" | "postgres"), url (for durox.open), open(opts), manifest(),
-- oracle(), sql(query) / rows(query) (independent reads: the sqlite3 tool or psql, in the
-- provider's own SQL dialect), dialect ("sqlite" | "postgres").

H.pg_dir = os.getenv("DUROX_PG_DIR")
H.pg_manifest_path = os.getenv("DUROX_PG_MANIFEST")
H.pg_oracle_path = os.getenv("DUROX_PG_ORACLE")

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.shell_quote = shell_quote

-- The test server's port, or nil when there is none.
function H.pg_port()
  if not H.pg_dir then return nil end
  local f = io.open(H.pg_dir .. "/port", "rb")
  if not f then return nil end
  local p = f:read("l")
  f:close()
  return p
end

-- libpq URL of database db on the test server (superuser, unix socket); extra: more params.
function H.pg_url(db, extra)
  return ("postgresql://postgres@/%s?host=%s&port=%s%s"):format(db or "postgres", H.pg_dir, H.pg_port(),
    extra and ("&" .. extra) or "")
end

-- Rows of query run by psql on database db (search_path: schema, default dx), decoded from
-- JSON (durox.null for NULL).
function H.psql(query, db, schema)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write("SET search_path TO ", schema or "dx", ";\n")
  f:write("SELECT coalesce(json_agg(durox_row_), '[]'::json) FROM (", query, "\n) durox_row_;\n")
  f:close()
  local p = assert(io.popen(("psql -X -q -A -t -v ON_ERROR_STOP=1 %s -f %s 2>&1"):format(
    shell_quote(H.pg_url(db or "durox_scenarios")), shell_quote(tmp))))
  local out = p:read("a")
  local ok = p:close()
  os.remove(tmp)
  assert(ok, "psql failed: " .. out)
  return assert(durox.decode_json(out))
end

function H.nil_nulls(rows)
  for _, r in ipairs(rows) do
    for k, v in pairs(r) do
      if v == durox.null then r[k] = nil end
    end
  end
  return rows
end

H.pg_skip = not (H.pg_dir and H.pg_manifest_path and H.pg_oracle_path and H.pg_port())
H.pg_busy_oracle_path = os.getenv("DUROX_PG_BUSY_ORACLE")
H.pg_busy_info_path = os.getenv("DUROX_PG_BUSY_INFO")
H.pg_busy_skip = H.pg_skip or not (H.pg_busy_oracle_path and H.pg_busy_info_path)

local providers
function H.providers()
  if providers then return providers end
  providers = {}
  if not H.skip then
    providers[#providers + 1] = {
      name = "sqlite", dialect = "sqlite", url = "sqlite:" .. H.db, db = H.db,
      open = function(opts) return H.open(opts) end,
      manifest = H.manifest, oracle = H.oracle,
      sql = function(q) return H.sql(q) end,
      rows = function(q) return H.rows(q) end,
    }
  end
  if not H.pg_skip then
    local url = H.pg_url("durox_scenarios", "schema=dx")
    providers[#providers + 1] = {
      name = "postgres", dialect = "postgres", url = url,
      open = function(opts) return assert(durox.open(url, opts)) end,
      manifest = function() return assert(durox.decode_json(read_file(H.pg_manifest_path))) end,
      oracle = function() return assert(durox.decode_json(read_file(H.pg_oracle_path))) end,
      sql = function(q) return H.psql(q) end,
      rows = function(q) return H.nil_nulls(H.psql(q)) end,
      pgdb = "durox_scenarios",
    }
  end
  return providers
end

-- The store caught mid-flight (tests/make_busy_store.sh) and Duroxide's answers on it.
H.busy_db = os.getenv("DUROX_BUSY_DB")
H.busy_oracle_path = os.getenv("DUROX_BUSY_ORACLE")
H.busy_info_path = os.getenv("DUROX_BUSY_INFO")
H.busy_skip = not (H.busy_db and H.busy_oracle_path and H.busy_info_path)

return H
