-- live.lua - shared by the specs that run the REAL Duroxide runtime (ops_spec, ops_live_spec,
-- ops_crash_spec): temporary stores, tests/harness/live.js started with --stdin-eof through a
-- pipe this process holds (closing it stops the runtime, and if this process dies the pipe
-- closes and the runtime stops too), Duroxide's own client (client.js), the sqlite3 tool
-- for independent reads, and background processes for kill tests.
local durox = require "durox"

local L = {}

L.harness = os.getenv("DUROX_HARNESS")
L.bin = os.getenv("DUROXLUA")
L.scenario_db = os.getenv("DUROX_SCENARIO_DB")
L.skip = not (L.harness and L.bin and L.scenario_db)

-- A shell word.
function L.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
local q = L.q

-- Runs a shell command; returns stdout, the exit code and stderr.
function L.run(cmd)
  local errf = os.tmpname()
  local p = assert(io.popen(cmd .. " 2>" .. q(errf) .. " </dev/null", "r"))
  local out = p:read("a")
  local _, how, code = p:close()
  local f = io.open(errf, "rb")
  local err = f and f:read("a") or ""
  if f then f:close() end
  os.remove(errf)
  return out, how == "exit" and code or 128 + code, err
end

function L.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function L.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- A new temporary directory (removed by L.cleanup).
function L.tmpdir()
  local out = L.run("mktemp -d /tmp/duroxlua-ops.XXXXXX")
  return (out:gsub("%s+$", ""))
end

-- Removes dir (kept when $DUROX_KEEP_TMP is set, for post-mortems).
function L.cleanup(dir)
  if os.getenv("DUROX_KEEP_TMP") then
    io.stderr:write("kept ", dir, "\n")
    return
  end
  if dir and dir:match("^/tmp/duroxlua%-ops%.") then os.execute("rm -rf " .. q(dir)) end
end

-- Copies the (checkpointed) scenario store to path.
function L.copy_scenarios(path)
  assert(os.execute(("cp %s %s"):format(q(L.scenario_db), q(path))))
  return path
end

-- Polls fn() every step ms until it returns a true value (returned) or timeout_ms passes
-- (then raises with what).
function L.wait_until(fn, timeout_ms, what, step)
  local deadline = durox.now() + timeout_ms
  while true do
    local v = fn()
    if v then return v end
    if durox.now() > deadline then error(("timed out after %d ms waiting for %s"):format(timeout_ms, what), 2) end
    durox.sleep(step or 100)
  end
end

-- ---- the live runtime ----------------------------------------------------------------------

-- ---- PostgreSQL stores ------------------------------------------------------------------
--
-- A store argument `db` of these helpers is a SQLite path or a PostgreSQL URL (a database of
-- the test server, schema dx). L.url(db) is what durox.open takes.

L.pg_dir = os.getenv("DUROX_PG_DIR")

function L.is_pg(db) return db:match("^postgres") ~= nil end

function L.url(db) return L.is_pg(db) and db or "sqlite:" .. db end

local pg_port
-- The test server's URL for database name (superuser, unix socket); store: with schema=dx.
function L.pg_url(name, store)
  if not pg_port then pg_port = (L.read(L.pg_dir .. "/port") or ""):gsub("%s+$", "") end
  return ("postgresql://postgres@/%s?host=%s&port=%s%s"):format(name, L.pg_dir, pg_port, store and "&schema=dx" or "")
end

-- Runs sql on database name of the test server as the superuser (psql); returns stdout.
function L.psql(name, sql)
  local out, code, err = L.run(("psql -X -q -A -t -v ON_ERROR_STOP=1 %s -c %s"):format(q(L.pg_url(name)), q(sql)))
  assert(code == 0, "psql failed: " .. err)
  return out
end

-- CREATE DATABASE name [TEMPLATE durox_scenarios]. A template copy fails while another
-- session is connected to the template (a spec running beside this one with ctest -j): it is
-- tried again for up to a minute.
function L.pg_create(name, template)
  local sql = ("CREATE DATABASE %s%s"):format(name, template and " TEMPLATE durox_scenarios" or "")
  local deadline = durox.now() + 60000
  while true do
    local out, code, err = L.run(("psql -X -q -A -t -v ON_ERROR_STOP=1 %s -c %s"):format(q(L.pg_url("postgres")),
      q(sql)))
    if code == 0 then return out end
    if not err:match("is being accessed by other users") or durox.now() > deadline then
      error("psql failed: " .. err, 2)
    end
    durox.sleep(200)
  end
end

local pg_copies = 0
-- A fresh database on the test server: a copy of the PG scenario store, or (empty) a new one.
-- Returns its store URL. Dropped by L.pg_drop.
function L.pg_fresh(empty)
  pg_copies = pg_copies + 1
  local name = ("durox_t%d_%d"):format(os.time() % 100000, pg_copies)
  L.pg_create(name, not empty)
  return L.pg_url(name, true), name
end

function L.pg_drop(db)
  local name = db:match("^postgres[^/]*//[^/]*/([^?]+)")
  if name then L.run(("psql -X -q %s -c %s"):format(q(L.pg_url("postgres")), q("DROP DATABASE IF EXISTS " .. name
    .. " WITH (FORCE)"))) end
end

-- Starts tests/harness/live.js on db (created if missing) and waits for "ready". base: where
-- its output files go (default db .. ".live"; required for a PostgreSQL URL).
function L.start_runtime(db, base)
  base = base or db .. ".live"
  local rt = { db = db, out = base .. ".out", err = base .. ".err" }
  rt.pipe = assert(io.popen(("exec node %s %s --stdin-eof >%s 2>%s"):format(q(L.harness .. "/live.js"), q(db),
    q(rt.out), q(rt.err)), "w"))
  L.wait_until(function() return (L.read(rt.out) or ""):match("ready") end, 30000, "live.js to print ready", 50)
  return rt
end

-- Stops the runtime (closing its stdin; waits for it to exit). Idempotent.
function L.stop_runtime(rt)
  if rt and rt.pipe then
    rt.pipe:close()
    rt.pipe = nil
  end
end

-- The runtime's log lines that are errors: level ERROR, an ack that failed for good (the
-- runtime then fails the orchestration with an infrastructure error), messages it could not
-- deliver. Its benign retryable "database is locked" warnings (a fetch backing off, an ack
-- retried) and application failures are not counted (tests/harness/README.md).
function L.log_errors(rt)
  local bad = {}
  for line in ((L.read(rt.err) or "") .. "\n"):gmatch("([^\n]*)\n") do
    -- a cancelled activity's worker row is deleted with the cancel (Duroxide's lock stealing);
    -- the worker still running it then warns that its ack found no row (seen on PostgreSQL,
    -- for Duroxide's own cancel as for ours): expected, not an error
    if line:match("Failed to ack cancelled activity work item") and line:match('"level":"WARN"') then
      line = ""
    end
    if line:match('"level":"ERROR"') or line:match("Failed to ack") or line:match("failing orchestration")
        or line:match("after max retries") or line:match("infrastructure") or line:match("orphan") then
      bad[#bad + 1] = line
    end
  end
  return bad
end

-- How many retryable "database is locked" warnings the runtime logged (fetch and ack).
function L.log_lock_warnings(rt)
  local n = 0
  for _ in (L.read(rt.err) or ""):gmatch("database is locked") do n = n + 1 end
  return n
end

-- ---- Duroxide's own client and the sqlite3 tool -------------------------------------------

-- node client.js db args...: the decoded JSON result, or nil and the error text.
function L.client(db, ...)
  local parts = { "node", q(L.harness .. "/client.js"), q(db) }
  for _, a in ipairs { ... } do parts[#parts + 1] = q(a) end
  local out, code, err = L.run(table.concat(parts, " "))
  if code ~= 0 then return nil, err end
  return assert(durox.decode_json(out))
end

-- Rows of a query run by the sqlite3 tool, or by psql (search_path dx) on a PostgreSQL
-- store, where pg_query (when given) is the PostgreSQL spelling (independent of our code).
function L.sql(db, query, pg_query)
  if L.is_pg(db) then
    local out, code, err = L.run(("psql -X -q -A -t -v ON_ERROR_STOP=1 %s -c %s"):format(
      q((db:gsub("&schema=dx", ""):gsub("%?schema=dx&", "?"))),
      q("SET search_path TO dx; SELECT coalesce(json_agg(durox_row_), '[]'::json) FROM (" .. (pg_query or query)
        .. ") durox_row_")))
    assert(code == 0, "psql failed: " .. err)
    return assert(durox.decode_json(out))
  end
  local out, code, err = L.run(("sqlite3 -json -cmd '.timeout 10000' %s %s"):format(q(db), q(query)))
  assert(code == 0, "sqlite3 failed: " .. err)
  if not out:match("%S") then return {} end
  return assert(durox.decode_json(out))
end

function L.sql_value(db, query, pg_query)
  local rows = L.sql(db, query, pg_query)
  if #rows == 0 then return nil end
  local _, v = next(rows[1])
  return v
end

-- SQL string literal.
function L.lit(s)
  return "'" .. s:gsub("'", "''") .. "'"
end

-- ---- background processes ---------------------------------------------------------------

-- Starts a shell command in the background under a shell that waits for it (so it never
-- lingers as a zombie); returns a process handle {pid}.
function L.spawn(cmd)
  local script = cmd .. " </dev/null >/dev/null 2>&1 & echo $!; wait"
  local p = assert(io.popen("sh -c " .. q(script), "r"))
  local pid = tonumber(p:read("l"))
  return { pid = assert(pid, "no pid"), pipe = p }
end

-- Whether the process still runs (a zombie does not).
function L.alive(proc)
  local out = L.run("ps -o stat= -p " .. proc.pid)
  return out:match("%S") ~= nil and not out:match("^%s*Z")
end

function L.kill(proc, sig)
  os.execute(("kill -%s %d 2>/dev/null"):format(sig or "KILL", proc.pid))
end

-- Waits until the process has exited; returns its shell's exit status.
function L.wait_exit(proc)
  if not proc.pipe then return end
  proc.pipe:read("a")
  local ok = proc.pipe:close()
  proc.pipe = nil
  return ok
end

-- ---- stores of both kinds ---------------------------------------------------------------------
--
-- The real-time specs run on SQLite and, when the test PostgreSQL server runs (DUROX_PG_DIR),
-- on PostgreSQL too. L.kinds() lists the kinds; L.store(kind, dir, name) makes a fresh empty
-- store (the runtime creates its schema when it starts), L.scenario_store(kind, dir, name) a
-- copy of the scenario store the real runtime wrote. A store S has:
--   S.kind ("sqlite" | "postgres"), S.url (for durox.open and duroxlua --store), S.target (for
--   the harness: live.js, client.js), S.rows(sql_sqlite [, sql_pg]) (independent reads: the
--   sqlite3 tool or psql; nulls become nil), S.history() (every history row {i, x, e, t, d}:
--   t is the JSON type; SQLite in rowid order, PostgreSQL by instance, execution and event).

local pg_dir = os.getenv("DUROX_PG_DIR")
local pg_serial = 0

local function pg_port()
  if not pg_dir then return nil end
  local f = io.open(pg_dir .. "/port", "rb")
  if not f then return nil end
  local port = f:read("l")
  f:close()
  return port
end

local function pg_url(db, extra)
  return ("postgresql://postgres@/%s?host=%s&port=%s%s"):format(db, pg_dir, pg_port(), extra and ("&" .. extra) or "")
end

local function psql_rows(db, query)
  local tmp = os.tmpname()
  L.write(tmp, "SET search_path TO dx;\nSELECT coalesce(json_agg(r_), '[]'::json) FROM (" .. query .. "\n) r_;\n")
  local out, code, err = L.run(("psql -X -q -A -t -v ON_ERROR_STOP=1 %s -f %s"):format(q(pg_url(db)), q(tmp)))
  os.remove(tmp)
  assert(code == 0, "psql failed: " .. err .. out)
  return assert(durox.decode_json(out))
end

local function psql_admin(sql)
  local out, code, err = L.run(("psql -X -q -v ON_ERROR_STOP=1 %s -c %s"):format(q(pg_url("postgres")), q(sql)))
  assert(code == 0, "psql failed: " .. err .. out)
end

function L.kinds()
  local k = { "sqlite" }
  if pg_dir and pg_port() then k[#k + 1] = "postgres" end
  return k
end

local function nil_nulls(rows)
  for _, r in ipairs(rows) do
    for k, v in pairs(r) do
      if v == durox.null then r[k] = nil end
    end
  end
  return rows
end

local function make_store(kind, dir, name, template)
  local S = { kind = kind }
  if kind == "sqlite" then
    S.path = dir .. "/" .. name .. ".db"
    if template then L.copy_scenarios(S.path) end
    S.url, S.target = "sqlite:" .. S.path, S.path
    function S.rows(sql) return nil_nulls(L.sql(S.path, sql)) end
    function S.history()
      return S.rows("SELECT instance_id AS i, execution_id AS x, event_id AS e, event_type AS t, event_data AS d"
        .. " FROM history ORDER BY rowid")
    end
    function S.drop() end
  else
    pg_serial = pg_serial + 1
    S.db = ("%s_%d_%d"):format(name:gsub("%W", "_"), math.floor(durox.now() % 1000000), pg_serial)
    L.pg_create(S.db, template)
    S.url = pg_url(S.db, "schema=dx")
    S.target = S.url
    function S.rows(sqlite_sql, pg_sql) return nil_nulls(psql_rows(S.db, pg_sql or sqlite_sql)) end
    function S.history()
      return S.rows(nil, "SELECT instance_id AS i, execution_id AS x, event_id AS e, event_data::json->>'type' AS t,"
        .. " event_data AS d FROM history ORDER BY instance_id COLLATE \"C\", execution_id, event_id")
    end
    function S.drop() pcall(psql_admin, ("DROP DATABASE IF EXISTS %s WITH (FORCE)"):format(S.db)) end
  end
  return S
end

function L.store(kind, dir, name) return make_store(kind, dir, name, false) end
function L.scenario_store(kind, dir, name) return make_store(kind, dir, name, true) end

return L
