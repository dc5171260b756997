-- postgres_spec.lua - what only the PostgreSQL provider has: its store URLs (our schema=,
-- state_schema= and statement_timeout= parameters, libpq's own passed through), passwords
-- never shown, every bad input of issue 7 as one clear line with nothing written (a port
-- nobody listens on, a server that never answers within the connect timeout, a wrong
-- password, a missing database or schema, a schema that is not Duroxide's, a store missing
-- the procedures of a migration, bad schema names, the connection lost under an iteration,
-- the server restarted or stopped between calls), and the grants a read-only and an
-- operator role need. Runs against a server of its own (tests/pg_server.sh), so that it can
-- stop and restart it, holding copies of the scenario store the real runtime wrote.
local durox = require "durox"
local H = require "helpers"
local L = require "live"

if H.pg_skip then
  describe("postgres", function() pending("the PostgreSQL fixtures are not set") end)
  return
end

local q = L.q
local here = os.getenv("DUROX_HARNESS"):gsub("/harness$", "")

-- A server of this spec's own, with a copy of the scenario database (pg_dump | psql).
local dir = L.tmpdir()
local function sh(cmd)
  local out, code, err = L.run(cmd)
  assert(code == 0, cmd .. " failed: " .. out .. err)
  return out
end
local function server(cmd) return sh(("%s/pg_server.sh %s %s tcp"):format(here, cmd, q(dir))) end
-- registered first: the server goes whatever fails below
teardown(function()
  L.run(("%s/pg_server.sh stop %s"):format(here, q(dir)))
  L.cleanup(dir)
end)
server("start")
local port = (L.read(dir .. "/port"):gsub("%s+$", ""))
local function url(db, extra, user)
  return ("postgresql://%s@/%s?host=%s&port=%s%s"):format(user or "postgres", db, dir, port,
    extra and ("&" .. extra) or "")
end
local function psql(db, sql)
  return sh(("psql -X -q -A -t -v ON_ERROR_STOP=1 %s -c %s"):format(q(url(db)), q(sql)))
end
local function value(db, sql) return (psql(db, sql):gsub("%s+$", "")) end
psql("postgres", "CREATE DATABASE scen")
sh("bash -o pipefail -c " .. q(("pg_dump -d %s | psql -X -q -v ON_ERROR_STOP=1 -d %s >/dev/null"):format(
  q(H.pg_url("durox_scenarios")), q(url("scen")))))
local STORE = url("scen", "schema=dx")
local instances = tonumber(value("scen", "SELECT count(*) FROM dx.instances"))

-- copies made before any handle is open (a template must have no other session)
local COPIES = {}
for _, name in ipairs({ "noproc", "grants", "pw" }) do
  psql("postgres", ("CREATE DATABASE %s TEMPLATE scen"):format(name))
  COPIES[name] = url(name, "schema=dx")
end
local function copy(name) return COPIES[name] end

-- What the runtime's tables hold, to show that a refused call wrote nothing.
local function snapshot(db)
  return value(db, "SELECT (SELECT count(*) FROM dx.orchestrator_queue) || '/' || (SELECT count(*) FROM dx.instances)"
    .. " || '/' || (SELECT count(*) FROM dx.history) || '/' || (SELECT count(*) FROM pg_namespace WHERE"
    .. " nspname = 'durox')")
end

describe("postgres store URLs", function()
  it("opens postgres:// and postgresql:// URIs with our schema parameter, libpq's passed through", function()
    for _, u in ipairs({ STORE, (STORE:gsub("^postgresql:", "postgres:")),
                         url("scen", "schema=dx&sslmode=disable&connect_timeout=5&application_name=ops") }) do
      local dx = assert(durox.open(u, { readonly = true }))
      local info = dx:info()
      assert.are.equal("postgres", info.provider)
      assert.are.equal("23", info.schema_version)
      assert.are.equal(instances, #assert(dx:list_instances()))
      dx:close()
    end
    -- the same URL as DUROX_STORE (the global dx of a script) and as --store
    local lua = "io.write(#dx:list_instances(), ' ', dx:info().provider)"
    local out, rc, err = L.run(("DUROX_STORE=%s %s -e %s"):format(q(STORE), q(L.bin), q(lua)))
    assert.are.equal(0, rc, err)
    assert.are.equal(instances .. " postgres", out)
    out, rc, err = L.run(("env -u DUROX_STORE %s --store %s -e %s"):format(q(L.bin), q(STORE), q(lua)))
    assert.are.equal(0, rc, err)
    assert.are.equal(instances .. " postgres", out)
  end)

  it("names itself duroxlua to the server unless the URI says otherwise", function()
    local dx = assert(durox.open(STORE, { readonly = true }))
    assert(dx:list_instances_paginated { page_size = 1 })
    assert.are.equal("1", value("postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'duroxlua'"
      .. " AND datname = 'scen'"))
    dx:close()
  end)

  it("refuses bad schema names before connecting", function()
    for _, bad in ipairs({ "Dx", "a%20b", "x%22y", "1abc", "d-x", "", ("a"):rep(64) }) do
      local dx, msg, code = durox.open(url("scen", "schema=" .. bad))
      assert.is_nil(dx)
      assert.are.equal("INVALID", code)
      assert.are.equal(("invalid schema name '%s' in store URL (expected lower-case letters, digits and _, not"
        .. " starting with a digit, at most 63)"):format(bad), msg)
    end
    local dx, msg, code = durox.open(url("scen", "schema=dx&state_schema=dx"))
    assert.is_nil(dx)
    assert.are.equal("INVALID", code)
    assert.are.equal("state_schema 'dx' is the runtime's schema: duroxlua keeps its own tables in a schema of their own"
      .. " (default durox)", msg)
  end)
end)

describe("postgres bad input", function()
  it("fails at once on a port nobody listens on", function()
    local t0 = durox.now()
    local dx, msg, code = durox.open("postgresql://postgres@127.0.0.1:1/scen?schema=dx")
    assert.is_nil(dx)
    assert.are.equal("IO", code)
    assert.is_truthy(msg:match("^cannot connect to PostgreSQL store postgresql://postgres@127%.0%.0%.1:1/scen%?schema=dx: "))
    assert.is_truthy(msg:find("Connection refused", 1, true))
    assert.is_nil(msg:find("\n"))
    assert.is_true(durox.now() - t0 < 2000)
  end)

  it("gives up on a server that never answers within the connect timeout", function()
    -- a listener that accepts and then says nothing, on a port the system picks (so that
    -- nothing else answers there)
    local portfile = dir .. "/silent.port"
    local srv = L.spawn(("node -e %s"):format(q(("const s = require('net').createServer(() => {});"
      .. " s.listen(0, '127.0.0.1', () => require('fs').writeFileSync(%q, String(s.address().port)));"
      .. " setTimeout(() => process.exit(0), 30000)"):format(portfile))))
    local lport = L.wait_until(function() return tonumber(L.read(portfile) or "") end, 10000, "the listener", 50)
    local t0 = durox.now()
    local dx, msg, code = durox.open(("postgresql://postgres@127.0.0.1:%d/scen?schema=dx"):format(lport),
      { connect_timeout_ms = 2000 })
    local took = durox.now() - t0
    L.kill(srv)
    L.wait_exit(srv)
    assert.is_nil(dx)
    assert.are.equal("TIMEOUT", code, msg)
    assert.is_truthy(msg:find("timeout expired", 1, true), msg)
    assert.is_true(took >= 1500 and took < 6000, "took " .. took)
  end)

  it("refuses a wrong password, and never shows one", function()
    psql("postgres", "CREATE ROLE durox_pw LOGIN PASSWORD 'right-secret'")
    psql("scen", "GRANT USAGE ON SCHEMA dx TO durox_pw; GRANT SELECT ON ALL TABLES IN SCHEMA dx TO durox_pw")
    local bad = ("postgresql://durox_pw:wrong-secret@127.0.0.1:%s/scen?schema=dx"):format(port)
    local dx, msg, code = durox.open(bad)
    assert.is_nil(dx)
    assert.are.equal("DENIED", code)
    assert.are.equal(("cannot connect to PostgreSQL store postgresql://durox_pw:***@127.0.0.1:%s/scen?schema=dx:"
      .. " connection to server at \"127.0.0.1\", port %s failed: password authentication failed for user"
      .. " \"durox_pw\""):format(port, port), msg)
    assert.is_nil(msg:find("secret", 1, true))
    -- also as a parameter
    dx, msg = durox.open(("postgresql://durox_pw@127.0.0.1:%s/scen?schema=dx&password=wrong-secret"):format(port))
    assert.is_nil(dx)
    assert.is_nil(msg:find("secret", 1, true))
    assert.is_truthy(msg:find("password=***", 1, true))
    -- the right one, from the URI: the password appears nowhere we report
    local good = ("postgresql://durox_pw:right-secret@127.0.0.1:%s/scen?schema=dx"):format(port)
    dx = assert(durox.open(good, { readonly = true }))
    assert.are.equal(("postgresql://durox_pw:***@127.0.0.1:%s/scen?schema=dx"):format(port), dx:info().location)
    assert.is_nil(durox.encode_json(assert(dx:get_provider_diagnostics())):find("secret", 1, true))
    dx:close()
    -- and through the CLI, in --json output and error messages
    local out, rc, err = L.run(("%s --store %s metrics --json"):format(q(L.bin), q(good)))
    assert.are.equal(0, rc, err)
    assert.is_nil((out .. err):find("secret", 1, true))
    assert.is_truthy(out:find("durox_pw:***@", 1, true))
    out, rc, err = L.run(("%s --store %s list"):format(q(L.bin), q(bad)))
    assert.are.equal(4, rc) -- refused (DENIED: authentication failed), docs/cli.md
    assert.is_nil((out .. err):find("secret", 1, true))
    assert.is_truthy(err:find("durox_pw:***@", 1, true))
  end)

  it("never shows a password: top, a misspelt scheme, the job journal, audit records, --json", function()
    -- a role with a password that may write to a copy of the store
    psql("postgres", "CREATE ROLE durox_pwop LOGIN PASSWORD 'op-secret-42'; GRANT CREATE ON DATABASE pw TO durox_pwop")
    psql("pw", "GRANT USAGE ON SCHEMA dx TO durox_pwop; GRANT SELECT ON ALL TABLES IN SCHEMA dx TO durox_pwop;"
      .. " GRANT INSERT ON dx.orchestrator_queue TO durox_pwop;"
      .. " GRANT USAGE ON SEQUENCE dx.orchestrator_queue_id_seq TO durox_pwop")
    local good = ("postgresql://durox_pwop:op-secret-42@127.0.0.1:%s/pw?schema=dx"):format(port)
    local asparam = ("postgresql://durox_pwop@127.0.0.1:%s/pw?password=op-secret-42&schema=dx"):format(port)
    local function clean(text, what)
      assert.is_nil(text:find("op-secret-42", 1, true), what .. ": " .. text)
    end
    -- writes journaled and audited, through the API and the CLI
    local dx = assert(durox.open(good, { audit = true }))
    assert(dx:cancel_instance("wait-approve-1", "pw"))
    local r = assert(dx:cancel_instances { instances = { "kv-wait-1", "nope" }, reason = "pw" })
    assert.are.equal(1, #r.failed_instances)
    clean(durox.encode_json(r), "bulk response")
    clean(durox.encode_json(assert(dx:list_jobs())), "list_jobs")
    clean(durox.encode_json(assert(dx:get_job(r.job_id, { targets = true }))), "get_job")
    local log = assert(dx:get_audit_log { limit = 100 })
    assert.is_true(#log >= 2)
    clean(durox.encode_json(log), "audit log")
    clean(tostring(dx), "tostring")
    dx:close()
    for _, argv in ipairs({ { "cancel", "queue-wait-1", "--yes", "--json" }, { "jobs", "--json" }, { "top", "--once" },
                            { "metrics", "--json" }, { "audit", "--json" }, { "cancel", "nope", "--yes" },
                            { "show", "nope" } }) do
      for _, u in ipairs({ good, asparam }) do
        local out, _, err = L.run(("%s --store %s %s"):format(q(L.bin), q(u), table.concat(argv, " ")))
        clean(out .. err, table.concat(argv, " "))
      end
    end
    local out, rc, err = L.run(("%s --store %s top --once"):format(q(L.bin), q(good)))
    assert.are.equal(0, rc, err)
    assert.is_truthy(out:match("^duroxlua top %- postgresql://durox_pwop:%*%*%*@127"), out)
    -- every row duroxlua keeps (journal, audit log) and what the runtime's tables now hold
    local dump = sh(("pg_dump --data-only -d %s"):format(q(url("pw"))))
    assert.is_truthy(dump:find("durox.jobs", 1, true))
    assert.is_truthy(dump:find("audit", 1, true))
    clean(dump, "pg_dump")
    -- a misspelt scheme, which no provider takes
    local x, msg, code = durox.open((good:gsub("^postgresql", "postgresq")))
    assert.is_nil(x)
    assert.are.equal("INVALID", code)
    clean(msg, "unrecognised URL")
    assert.is_truthy(msg:find("durox_pwop:***@", 1, true), msg)
    x, msg = durox.open((asparam:gsub("^postgresql", "Postgres")))
    assert.is_nil(x)
    clean(msg, "unrecognised URL")
    out, rc, err = L.run(("%s --store %s list"):format(q(L.bin), q((good:gsub("^postgresql", "pg")))))
    assert.are_not.equal(0, rc)
    clean(out .. err, "CLI, unrecognised URL")
    -- a bad schema name or a bad read_url beside a password
    x, msg = durox.open(good .. "&schema=B%20ad")
    assert.is_nil(x)
    clean(msg, "bad schema")
    x, msg = durox.open(good, { read_url = (good:gsub("127%.0%.0%.1:%d+", "127.0.0.1:1")) })
    assert.is_nil(x)
    clean(msg, "read_url")
  end)

  it("takes the password from PGPASSWORD or ~/.pgpass as libpq does", function()
    local tcp = ("postgresql://durox_pw@127.0.0.1:%s/scen?schema=dx"):format(port)
    local lua = "local dx = assert(require('durox').open(os.getenv('S'), { readonly = true })) io.write(#dx:list_instances())"
    local out, rc, err = L.run(("S=%s PGPASSWORD=right-secret %s -e %s"):format(q(tcp), q(L.bin), q(lua)))
    assert.are.equal(0, rc, err)
    assert.are.equal(tostring(instances), out)
    local pgpass = dir .. "/pgpass"
    L.write(pgpass, ("127.0.0.1:%s:scen:durox_pw:right-secret\n"):format(port))
    sh("chmod 600 " .. q(pgpass))
    out, rc, err = L.run(("S=%s PGPASSFILE=%s %s -e %s"):format(q(tcp), q(pgpass), q(L.bin), q(lua)))
    assert.are.equal(0, rc, err)
    assert.are.equal(tostring(instances), out)
    -- ~/.pgpass itself (libpq's default place), and without it the server's refusal
    local home = dir .. "/home"
    sh(("mkdir -p %s && cp %s %s/.pgpass && chmod 600 %s/.pgpass"):format(q(home), q(pgpass), q(home), q(home)))
    out, rc, err = L.run(("S=%s HOME=%s %s -e %s"):format(q(tcp), q(home), q(L.bin), q(lua)))
    assert.are.equal(0, rc, err)
    assert.are.equal(tostring(instances), out)
    out, rc, err = L.run(("S=%s HOME=%s %s -e %s"):format(q(tcp), q(dir), q(L.bin), q(lua)))
    assert.are_not.equal(0, rc)
    assert.is_truthy(err:find("password", 1, true), err)
  end)

  it("names a database or a schema that does not exist", function()
    local dx, msg, code = durox.open(url("nope", "schema=dx"))
    assert.is_nil(dx)
    assert.are.equal("NOTFOUND", code)
    assert.is_truthy(msg:find('database "nope" does not exist', 1, true))
    dx, msg, code = durox.open(url("scen", "schema=nope"))
    assert.is_nil(dx)
    assert.are.equal("NOTFOUND", code)
    assert.are.equal("schema 'nope' does not exist in database 'scen' (check schema= in the store URL)", msg)
    assert.are.equal("0", value("scen", "SELECT count(*) FROM pg_namespace WHERE nspname = 'nope'"))
  end)

  it("refuses a schema that is not Duroxide's, and the default public one when empty", function()
    psql("scen", "CREATE SCHEMA notdx; CREATE TABLE notdx.instances (id int); CREATE TABLE notdx.other (x int)")
    local dx, msg, code = durox.open(url("scen", "schema=notdx"))
    assert.is_nil(dx)
    assert.are.equal("UNSUPPORTED", code)
    assert.are.equal("schema 'notdx' of database 'scen' is not a Duroxide store (table 'instances' has no column"
      .. " 'instance_id')", msg)
    dx, msg, code = durox.open(url("scen"))
    assert.is_nil(dx)
    assert.are.equal("UNSUPPORTED", code)
    assert.are.equal("schema 'public' of database 'scen' is not a Duroxide store (it has no table 'instances')", msg)
  end)

  it("reads a store that lacks the procedures of a migration, and refuses the writes that need them", function()
    local u = copy("noproc")
    psql("noproc", "DROP FUNCTION dx.enqueue_orchestrator_work(text, text, timestamptz, text, text, bigint);"
      .. " DROP FUNCTION dx.delete_instances_atomic(text[], boolean)")
    local before = snapshot("noproc")
    local dx = assert(durox.open(u))
    assert.are.equal(instances, #assert(dx:list_instances()))
    assert(dx:get_runtime_metrics())
    local ok, msg, code = dx:cancel_instance("wait-approve-1", "x")
    assert.is_nil(ok)
    assert.are.equal("UNSUPPORTED", code)
    assert.are.equal("schema 'dx' lacks Duroxide's procedure enqueue_orchestrator_work(text, text, timestamptz, text,"
      .. " text, bigint) (migration 0006); start a current Duroxide runtime on the store once to migrate it", msg)
    -- a store failure interrupts a bulk job (resumable once the store is fixed)
    local r
    r, msg = dx:purge_instances { filter = "status = 'Completed' AND name = 'Greeter'" }
    assert.is_nil(r)
    assert.are.equal("job 1 interrupted: schema 'dx' lacks Duroxide's procedure delete_instances_atomic(text[],"
      .. " boolean) (migration 0010); start a current Duroxide runtime on the store once to migrate it; resume it"
      .. " with resume_job(1)", msg)
    dx:close()
    -- nothing of the runtime's changed (the job journal, ours, recorded the refusals)
    local after = snapshot("noproc")
    assert.are.equal(before:gsub("/%d+$", ""), after:gsub("/%d+$", ""))
  end)

  it("goes on after the server drops the connection between pages of an iteration", function()
    local dx = assert(durox.open(STORE, { readonly = true }))
    local seen, n, pids = {}, 0, {}
    local function pid()
      return value("postgres", "SELECT pid FROM pg_stat_activity WHERE application_name = 'duroxlua' AND datname = 'scen'")
    end
    for inst in dx:instances(nil, { batch_size = 10 }) do
      n = n + 1
      assert.is_nil(seen[inst.instance_id], "visited twice: " .. inst.instance_id)
      seen[inst.instance_id] = true
      if n == 15 then
        pids[1] = pid()
        psql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'duroxlua'"
          .. " AND datname = 'scen'")
      end
    end
    pids[2] = pid()
    assert.are.equal(instances, n)
    assert.are_not.equal(pids[1], pids[2])
    dx:close()
  end)

  it("retries a statement once on a new connection when it is lost in the middle, else fails in one line", function()
    local dx = assert(durox.open(STORE, { readonly = true }))
    local ours = "application_name = 'duroxlua' AND datname = 'scen'"
    local function pid() return value("postgres", "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE " .. ours) end
    -- another session holds the instances table, so that our statements wait in the server; a
    -- watcher terminates our backend each time it waits there, `kills` times, then (release)
    -- ends the holder
    local function hold(kills, release)
      local h = L.spawn(("psql -X -q %s -c %s"):format(q(url("scen")),
        q("BEGIN; LOCK TABLE dx.instances IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;")))
      L.wait_until(function()
        return value("scen", "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE"
          .. " c.relname = 'instances' AND l.mode = 'AccessExclusiveLock' AND l.granted") == "1"
      end, 10000, "the lock", 50)
      local waiting = q("SELECT count(*) FROM pg_stat_activity WHERE " .. ours .. " AND wait_event_type = 'Lock'")
      local kill = q("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE " .. ours
        .. " AND wait_event_type = 'Lock'")
      local unhold = q("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'scen' AND query LIKE"
        .. " '%pg_sleep(60)%' AND pid <> pg_backend_pid()")
      local script = {}
      for _ = 1, kills do
        script[#script + 1] = ("until [ \"$(psql -X -q -A -t %s -c %s)\" -ge 1 ]; do sleep 0.05; done; psql -X -q %s -c %s;")
          :format(q(url("postgres")), waiting, q(url("postgres")), kill)
      end
      if release then script[#script + 1] = ("psql -X -q %s -c %s"):format(q(url("postgres")), unhold) end
      local w = L.spawn("sh -c " .. q(table.concat(script, " ")))
      return function()
        L.wait_exit(w)
        psql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'scen' AND query LIKE"
          .. " '%pg_sleep(60)%' AND pid <> pg_backend_pid()")
        L.wait_exit(h)
      end
    end
    -- lost once before any row came: the statement runs again on a new connection
    assert(dx:list_instances_paginated { page_size = 1 })
    local before = pid()
    local done = hold(1, true)
    local r, msg = dx:list_instances()
    done()
    assert.are.equal(instances, #assert(r, msg))
    assert.are_not.equal(before, pid())
    -- lost again on the new connection: one line, and the next call reconnects
    done = hold(2, false)
    local code
    r, msg, code = dx:list_instances()
    done()
    assert.is_nil(r)
    assert.are.equal("IO", code, msg)
    assert.is_truthy(msg:find("the connection to the PostgreSQL server was lost", 1, true), msg)
    assert.is_nil(msg:find("\n"))
    assert.are.equal(instances, #assert(dx:list_instances()))
    -- the same under an iteration, between two of its pages: the loop raises that line
    local n = 0
    local ok, err = pcall(function()
      for _ in dx:instances(nil, { batch_size = 10 }) do
        n = n + 1
        if n == 15 then done = hold(2, false) end
      end
    end)
    done()
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("the connection to the PostgreSQL server was lost", 1, true), tostring(err))
    assert.is_nil(tostring(err):find("\n"))
    assert.are.equal(20, n)
    assert.are.equal(instances, #assert(dx:list_instances()))
    dx:close()
  end)

  it("reconnects once when the server restarted between calls, and fails clearly while it is down", function()
    local dx = assert(durox.open(STORE, { readonly = true }))
    assert.are.equal(instances, #assert(dx:list_instances()))
    server("stop")
    server("start")
    assert.are.equal(instances, #assert(dx:list_instances()))
    server("stop")
    local t0 = durox.now()
    local r, msg, code = dx:list_instances()
    assert.is_nil(r)
    assert.are.equal("IO", code)
    assert.is_truthy(msg:match("^cannot reconnect to PostgreSQL store postgresql://postgres@/scen%?"), msg)
    assert.is_nil(msg:find("\n"))
    assert.is_true(durox.now() - t0 < 3000)
    server("start")
    assert.are.equal(instances, #assert(dx:list_instances()))
    dx:close()
  end)

  it("stops a statement at the statement timeout", function()
    local dx = assert(durox.open(url("scen", "schema=dx&statement_timeout=300"), { readonly = true }))
    -- another session holds the instances table for 3 s
    local holder = L.spawn(("psql -X -q %s -c %s"):format(q(url("scen")),
      q("BEGIN; LOCK TABLE dx.instances IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;")))
    L.wait_until(function()
      return value("scen", "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE"
        .. " c.relname = 'instances' AND l.mode = 'AccessExclusiveLock' AND l.granted") == "1"
    end, 5000, "the lock", 50)
    local t0 = durox.now()
    local r, msg, code = dx:list_instances()
    local took = durox.now() - t0
    assert.is_nil(r)
    assert.are.equal("BUSY", code)
    assert.are.equal("listing instances failed: the statement ran longer than the statement timeout (300 ms)", msg)
    assert.is_true(took >= 250 and took < 2500, "took " .. took)
    L.wait_exit(holder)
    assert.are.equal(instances, #assert(dx:list_instances()))
    dx:close()
  end)
end)

describe("postgres hot standby", function()
  it("reads from read_url, a standby made by pg_basebackup, and writes to the primary", function()
    local sdir = dir .. "/standby"
    sh(("%s/pg_server.sh standby %s %s"):format(here, q(sdir), q(dir)))
    finally(function() L.run(("%s/pg_server.sh stop %s"):format(here, q(sdir))) end)
    local sport = (L.read(sdir .. "/port"):gsub("%s+$", ""))
    local standby = ("postgresql://postgres@/scen?host=%s&port=%s&schema=dx"):format(sdir, sport)
    local function on_standby(sql)
      return (sh(("psql -X -q -A -t %s -c %s"):format(q(("postgresql://postgres@/scen?host=%s&port=%s"):format(sdir,
        sport)), q(sql))):gsub("%s+$", ""))
    end
    assert.are.equal("t", on_standby("SELECT pg_is_in_recovery()"))
    local dx = assert(durox.open(STORE, { read_url = standby }))
    assert.are.equal(instances, #assert(dx:list_instances()))
    -- the reads are the standby's: our session there, none on the primary until we write
    assert.are.equal("1", on_standby("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'duroxlua'"))
    local queued = tonumber(value("scen", "SELECT count(*) FROM dx.orchestrator_queue"))
    assert(dx:cancel_instance("kv-wait-1", "from the primary"))
    assert.are.equal(queued + 1, tonumber(value("scen", "SELECT count(*) FROM dx.orchestrator_queue")))
    -- and the standby catches up
    L.wait_until(function()
      return tonumber(on_standby("SELECT count(*) FROM dx.orchestrator_queue")) == queued + 1
    end, 10000, "the standby to replay the write")
    -- a read-only handle on the standby alone refuses writes clearly
    local ro = assert(durox.open(standby))
    local ok, msg, code = ro:raise_event("wait-approve-1", "Approve", "1")
    assert.is_nil(ok)
    assert.are.equal("DENIED", code)
    assert.is_truthy(msg:find("read-only", 1, true), msg)
    ro:close()
    dx:close()
    -- read_url must be a PostgreSQL URL of the same schema
    local r, m2, c2 = durox.open(STORE, { read_url = "sqlite:/tmp/x.db" })
    assert.is_nil(r)
    assert.are.equal("INVALID", c2)
    assert.are.equal("read_url must be a postgres:// or postgresql:// URL (a standby of the store's server)", m2)
  end)
end)

describe("postgres grants", function()
  local u = copy("grants")
  psql("postgres", "CREATE ROLE durox_reader LOGIN; CREATE ROLE durox_operator LOGIN; CREATE ROLE durox_execonly LOGIN")
  -- read-only: SELECT on the runtime's schema
  psql("grants", "GRANT USAGE ON SCHEMA dx TO durox_reader; GRANT SELECT ON ALL TABLES IN SCHEMA dx TO durox_reader")
  -- operator: Duroxide's procedures run with the caller's rights, so the writes they make
  -- need the table privileges; our own state needs a schema the operator may create in
  psql("grants", table.concat({
    "GRANT USAGE ON SCHEMA dx TO durox_operator",
    "GRANT SELECT ON ALL TABLES IN SCHEMA dx TO durox_operator",
    "GRANT INSERT ON dx.orchestrator_queue TO durox_operator",
    "GRANT USAGE ON SEQUENCE dx.orchestrator_queue_id_seq TO durox_operator",
    "GRANT UPDATE, DELETE ON dx.instances, dx.executions, dx.history, dx.orchestrator_queue, dx.worker_queue,"
      .. " dx.instance_locks, dx.kv_store, dx.kv_delta TO durox_operator",
    "CREATE SCHEMA durox AUTHORIZATION durox_operator",
  }, "; "))
  -- what the issue first supposed an operator needs: EXECUTE on the procedures and CREATE on
  -- our own schema (plus reading); not enough, as Duroxide's procedures are SECURITY INVOKER
  psql("grants", table.concat({
    "GRANT USAGE ON SCHEMA dx TO durox_execonly",
    "GRANT SELECT ON ALL TABLES IN SCHEMA dx TO durox_execonly",
    "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA dx TO durox_execonly",
    "CREATE SCHEMA exec_state AUTHORIZATION durox_execonly",
  }, "; "))
  local reader = url("grants", "schema=dx", "durox_reader")
  local operator = url("grants", "schema=dx", "durox_operator")
  local admin = url("grants", "schema=dx")
  local function queued() return tonumber(value("grants", "SELECT count(*) FROM dx.orchestrator_queue")) end
  -- every table of the runtime's, and whether our schemas exist: a refused write changes none
  local function everything()
    return value("grants", "SELECT string_agg(format('%s:%s', c.relname, (xpath('/row/n/text()', query_to_xml("
      .. "format('SELECT count(*) AS n FROM dx.%I', c.relname), false, true, '')))[1]::text), ',' ORDER BY c.relname)"
      .. " || ' / ' || (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname IN"
      .. " ('durox', 'exec_state')) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE"
      .. " n.nspname = 'dx' AND c.relkind = 'r'")
  end
  -- the durox schema is the operator's from the start; counts of our tables in it
  local function ours()
    return value("grants", "SELECT count(*) FROM pg_tables WHERE schemaname = 'durox'")
  end

  it("lets a read-only role make every read, with the answers the owner gets", function()
    local dx = assert(durox.open(reader))
    local ad = assert(durox.open(admin, { readonly = true }))
    -- (when each handle collected its figures aside)
    local function uncollected(v)
      if type(v) ~= "table" then return v end
      local out = {}
      for k, x in pairs(v) do
        if k ~= "collected_at" then out[k] = uncollected(x) end
      end
      return out
    end
    local function same(method, ...)
      local mine, msg = dx[method](dx, ...)
      assert(mine ~= nil, method .. ": " .. tostring(msg))
      local theirs = assert(ad[method](ad, ...))
      assert.are.same(uncollected(theirs), uncollected(mine), method)
      return mine
    end
    assert.are.equal(instances, #same("list_instances"))
    same("list_instances_paginated", { page_size = 7, total_count = true, order_by = "InstanceId" })
    same("list_instances", "status = 'Failed' AND name LIKE 'Fail%'")
    same("search_instances", "wait")
    local n = 0
    for _ in dx:instances(nil, { batch_size = 16 }) do n = n + 1 end
    assert.are.equal(instances, n)
    same("get_orchestration_status", "can-done-1")
    same("get_orchestration_descriptor", "tree-done-1::sub::2")
    same("list_executions", "can-done-1")
    same("read_execution_history", "early-event-1")
    same("get_execution_history_filtered", { instance_id = "can-wait-1", event_types = { "ActivityCompleted" } })
    same("get_instances_status", { "wait-approve-1", "failed-throw-1", "nope" })
    same("get_instance_details", "kv-done-1")
    same("get_instance_statistics", "can-done-1")
    local now = durox.now()
    same("get_runtime_metrics", { now = now })
    same("get_queue_metrics", { now = now })
    same("get_orchestration_metrics", { now = now })
    assert(dx:get_provider_diagnostics())
    same("query_instances", { group_by = { "OrchestrationName", "Status" } })
    same("query_instances", { group_by = "Status", aggregate = { "P50Duration", "P95Duration", "SuccessRate" } })
    same("get_time_series_metrics", { from = now - 86400000, to = now, bucket = "1h" })
    same("get_instance_dependencies", "tree-done-1")
    same("find_stuck_instances", { now = now })
    assert.are.equal("Completed", assert(dx:wait_for_orchestration("can-done-1", 1000)).status)
    local w = assert(dx:wait_for_instances { instances = { "can-done-1", "failed-throw-1" }, timeout = 1000 })
    assert.is_true(w.satisfied)
    -- duroxlua's own state: none yet, and reading it creates nothing
    assert.are.same({}, assert(dx:list_jobs()))
    local j, _, jc = dx:get_job(1)
    assert.is_nil(j)
    assert.are.equal("NOTFOUND", jc)
    assert.are.same({}, assert(dx:list_dead_letters {}))
    assert.is_nil(dx:get_cursor("x"))
    assert.are.same({}, assert(dx:list_rule_runs {}))
    assert.are.same({}, assert(dx:get_audit_log()))
    -- the change feed and the streams read the runtime's tables only
    local ch = assert(dx:read_changes { limit = 5 })
    assert.are.same(assert(ad:read_changes { limit = 5 }).changes, ch.changes)
    assert.are.equal(5, #ch.changes)
    local s = assert(dx:stream_instance_events { event_types = "Completed" })
    local ev = assert(s:next())
    assert.are.equal("Completed", ev.event_type)
    s:close()
    local wi = assert(dx:watch_instances { instance_ids = { "can-done-1" }, timeout_ms = 2000 })
    local c = assert(wi:next())
    assert.are.equal("Completed", c.new_status)
    wi:close()
    local ms = assert(dx:stream_runtime_metrics { count = 1, interval_ms = 100 })
    assert.are.equal(instances, assert(ms:next()).total_instances_started)
    ms:close()
    ad:close()
    dx:close()
    assert.are.equal("0", ours())
  end)

  it("refuses every write of a read-only role with DENIED, and writes nothing", function()
    local before = everything()
    local dx = assert(durox.open(reader))
    local function denied(what, r, msg, code)
      assert.is_nil(r, what)
      assert.are.equal("DENIED", code, what .. ": " .. tostring(msg))
      assert.is_truthy(msg:find("permission denied", 1, true), what .. ": " .. msg)
      assert.is_nil(msg:find("\n"), what)
    end
    local ok, msg, code = dx:cancel_instance("wait-approve-1", "x")
    denied("cancel", ok, msg, code)
    assert.are.equal("queueing a work item denied: permission denied for table orchestrator_queue", msg)
    denied("start", dx:start_orchestration("ro-start-1", "Echo", '"x"'))
    denied("raise", dx:raise_event("wait-approve-1", "Approve", '"x"'))
    denied("enqueue", dx:enqueue_event("queue-wait-1", "inbox", '"x"'))
    denied("bulk cancel", dx:cancel_instances { filter = "status = 'Running'", reason = "x" })
    denied("bulk raise", dx:raise_event_bulk { instances = { "kv-wait-1" }, event_name = "Approve" })
    denied("bulk enqueue", dx:raise_event_bulk { instances = { "queue-wait-1" }, event_name = "inbox", queue = true })
    denied("purge", dx:purge_instances { filter = "status = 'Completed'" })
    denied("purge ids", dx:purge_instances { instances = { "kv-done-1" } })
    denied("prune", dx:prune_executions { instances = { "can-done-1" }, keep_last = 1 })
    denied("restart", dx:restart_instances { instances = { "failed-throw-1" } })
    denied("dead letter", dx:dead_letter { source = "x", url = "http://127.0.0.1:9/", payload = "{}", key = "k" })
    denied("rule run", dx:record_rule_run({ rule = "r", key = "k", state = "done" }, "c", "x"))
    -- a dry run writes nothing anyway, so it is allowed
    assert.are.equal(1, assert(dx:cancel_instances { instances = { "wait-approve-1" }, dry_run = true }).total_matched)
    dx:close()
    assert.are.equal(before, everything())
    -- the same refusal through the CLI: exit 4 (refused), one line
    local out, rc, err = L.run(("%s --store %s cancel wait-approve-1 --yes"):format(q(L.bin), q(reader)))
    assert.are.equal(4, rc, out .. err)
    assert.is_truthy(err:find("permission denied", 1, true), err)
    assert.are.equal(1, select(2, err:gsub("\n", "")))
    assert.are.equal(before, everything())
  end)

  it("refuses an operator that has only EXECUTE on the procedures and CREATE on our schema, writing nothing", function()
    local before = everything()
    local dx = assert(durox.open(url("grants", "schema=dx&state_schema=exec_state", "durox_execonly")))
    local ok, msg, code = dx:cancel_instance("wait-approve-1", "x")
    assert.is_nil(ok)
    assert.are.equal("DENIED", code)
    assert.are.equal("queueing a work item denied: permission denied for table orchestrator_queue", msg)
    local r
    r, msg, code = dx:cancel_instances { filter = "status = 'Running' AND name = 'QueueWaiter'", reason = "x" }
    assert.is_nil(r)
    assert.are.equal("DENIED", code, msg)
    r, msg, code = dx:purge_instances { instances = { "kv-done-1" } }
    assert.is_nil(r)
    assert.are.equal("DENIED", code, msg)
    dx:close()
    assert.are.equal(before, everything())
  end)

  it("lets an operator role make every write, and keeps our state in its schema", function()
    local n = queued()
    local dx = assert(durox.open(operator, { audit = true }))
    assert.are.equal("ops-start-1", assert(dx:start_orchestration("ops-start-1", "Echo", '"x"')))
    assert(dx:raise_event("wait-approve-1", "Approve", '"ok"'))
    assert(dx:enqueue_event("queue-wait-1", "inbox", '"m"'))
    assert(dx:cancel_instance("wait-approve-1", "ops"))
    assert.are.equal(n + 4, queued())
    local r = assert(dx:cancel_instances { filter = "status = 'Running' AND name = 'QueueWaiter'", reason = "ops" })
    assert.are.equal(2, #r.cancelled_instances)
    local b = assert(dx:raise_event_bulk { instances = { "kv-wait-1" }, event_name = "Approve", event_data = "1" })
    assert.are.same({ "kv-wait-1" }, b.delivered_instances)
    local rs = assert(dx:restart_instances { instances = { "failed-throw-1" } })
    assert.are.equal("failed-throw-1~r1", rs.restarted_instances[1].new_instance_id)
    assert.are.equal(n + 8, queued())
    local pr = assert(dx:prune_executions { instances = { "can-done-1" }, keep_last = 1 })
    assert.are.equal(3, pr.executions_deleted)
    assert.are.equal("1", value("grants", "SELECT count(*) FROM dx.executions WHERE instance_id = 'can-done-1'"))
    local p = assert(dx:purge_instances { filter = "status = 'Completed' AND name = 'Greeter'" })
    assert.is_true(#p.purged_instances > 0)
    assert.are.equal("0", value("grants", "SELECT count(*) FROM dx.instances WHERE orchestration_name = 'Greeter'"
      .. " AND instance_id IN (SELECT instance_id FROM dx.executions WHERE status = 'Completed')"))
    assert(dx:dead_letter { source = "ops", url = "http://127.0.0.1:9/", payload = "{}", key = "k1" })
    assert(dx:record_rule_run({ rule = "r", key = "k", state = "done" }, "ops-cursor", "c1"))
    assert.are.equal("c1", dx:get_cursor("ops-cursor"))
    assert.are.equal(5, #assert(dx:list_jobs()))
    -- every write has its audit record, in our schema
    assert.is_true(#assert(dx:get_audit_log { limit = 1000 }) >= 10)
    assert(dx:verify_audit_log())
    dx:close()
    assert.are.equal("durox_operator", value("grants", "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables"
      .. " WHERE schemaname = 'durox'"))
    -- and nothing of ours in the runtime's schema
    assert.are.equal("0", value("grants", "SELECT count(*) FROM pg_tables WHERE schemaname = 'dx' AND tableowner ="
      .. " 'durox_operator'"))
  end)
end)
