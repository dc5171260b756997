-- operator_spec.lua - what an operator meets in the first hour, beyond exit codes and formats:
-- a --name that matches nothing says which name was probably meant (a case-insensitive match,
-- else a close one), on every command that selects by name; series chooses its window from
-- the store's age (a young store shows its activity in many buckets, not one bar) and keeps
-- at most 60 buckets. (The confirmation sample needs a terminal: terminal_spec.lua.) On
-- copies of the scenario store, on SQLite and on PostgreSQL; what the store holds is read with
-- the sqlite3 tool and psql. Binary: $DUROXLUA.
local T = require "support"
local durox, sh, json = T.durox, T.sh, T.json
local SCENARIO_DB = os.getenv("DUROX_SCENARIO_DB")

if not SCENARIO_DB then
  describe("operator", function() pending("DUROX_SCENARIO_DB is not set") end)
  return
end

-- The providers the specs run on: the scenario store on SQLite and (with the test server) the
-- same scenarios on PostgreSQL. Each gives its URL, a fresh copy's URL for the commands that
-- write, and value(sql): one integer read independently (the sqlite3 tool, psql).
local function shell_value(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return math.tointeger(tonumber((out:gsub("%s+$", ""))))
end
local PROVIDERS = {
  { name = "SQLite", url = "sqlite:" .. SCENARIO_DB,
    copy = function()
      local db = os.tmpname()
      assert(os.execute(("cp %s %s"):format(sh(SCENARIO_DB), sh(db))))
      return "sqlite:" .. db, function() os.remove(db) end,
        function(sql) return shell_value(("sqlite3 %s %s"):format(sh(db), sh(sql))) end
    end,
    value = function(sql) return shell_value(("sqlite3 %s %s"):format(sh(SCENARIO_DB), sh(sql))) end,
    created_sql = "SELECT CAST(strftime('%s', min(installed_on)) AS INTEGER) * 1000 FROM _sqlx_migrations",
    instances_sql = "SELECT count(*) FROM instances WHERE CAST(strftime('%%s', created_at) AS INTEGER) * 1000 >= %d" },
}
local pg_dir = os.getenv("DUROX_PG_DIR")
local pg_port = pg_dir and io.open(pg_dir .. "/port") and T.read_file(pg_dir .. "/port"):gsub("%s+$", "")
if pg_port then
  local function pg_url(db, store)
    return ("postgresql://postgres@/%s?host=%s&port=%s%s"):format(db, pg_dir, pg_port, store and "&schema=dx" or "")
  end
  local function psql(db, sql)
    return ("psql -X -q -A -t %s -c %s 2>&1"):format(sh(pg_url(db)), sh(sql))
  end
  local copies = 0
  PROVIDERS[#PROVIDERS + 1] = { name = "PostgreSQL", url = pg_url("durox_scenarios", true),
    copy = function()
      copies = copies + 1
      local name = ("durox_op_%d_%d"):format(os.time() % 100000, copies)
      -- a template copy fails while another spec is connected to the template: tried again
      local deadline = os.time() + 60
      while true do
        local p = assert(io.popen(psql("postgres", "CREATE DATABASE " .. name .. " TEMPLATE durox_scenarios")))
        local out = p:read("a")
        if p:close() then break end
        assert(out:find("being accessed by other users", 1, true) and os.time() < deadline, out)
        os.execute("sleep 0.2")
      end
      return pg_url(name, true), function()
        os.execute(psql("postgres", "DROP DATABASE IF EXISTS " .. name .. " WITH (FORCE)") .. " >/dev/null")
      end, function(sql) return shell_value(psql(name, "SET search_path = dx; " .. sql)) end
    end,
    value = function(sql) return shell_value(psql("durox_scenarios", sql)) end,
    created_sql = "SELECT floor(extract(epoch FROM min(applied_at)) * 1000)::bigint FROM dx._duroxide_migrations",
    instances_sql = "SELECT count(*) FROM dx.instances WHERE floor(extract(epoch FROM created_at) * 1000)::bigint >= %d" }
end

local function run(argv, opts)
  opts = opts or {}
  opts.columns = opts.columns or 200
  return T.run(argv, opts)
end

for _, P in ipairs(PROVIDERS) do
local STORE = P.url

describe("on " .. P.name .. ", a --name that matches nothing", function()
  it("says when only the case differs (did you mean 'Echo'?), on list and on the bulk commands", function()
    -- independently: Echo exists, echo and ECHO do not
    assert.is_true(P.value("SELECT count(*) FROM " .. (P.name == "PostgreSQL" and "dx." or "")
      .. "instances WHERE orchestration_name = 'Echo'") > 0)
    assert.are.equal(0, P.value("SELECT count(*) FROM " .. (P.name == "PostgreSQL" and "dx." or "")
      .. "instances WHERE orchestration_name IN ('echo', 'ECHO', 'Ech')"))
    local r = run { "--store", STORE, "list", "--name", "echo" }
    assert.are.equal(0, r.code)
    assert.are.equal("0 instances shown\n", r.out)
    assert.are.equal("duroxlua list: no orchestration is named 'echo'; did you mean 'Echo'?\n", r.err)
    -- a bulk operation selecting by name: nothing to do, and the same hint
    local url, drop = P.copy()
    r = run { "--store", url, "cancel", "--name", "ECHO", "--yes" }
    local dry = run { "--store", url, "restart", "--name", "echo", "--dry-run" }
    drop()
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.err:find("no orchestration is named 'ECHO'; did you mean 'Echo'?", 1, true), r.err)
    assert.are.equal(0, dry.code, dry.err)
    assert.truthy(dry.err:find("no orchestration is named 'echo'; did you mean 'Echo'?", 1, true), dry.err)
  end)

  it("suggests a close name for a typo, and says nothing when the name exists or nothing is close", function()
    local r = run { "--store", STORE, "list", "--name", "Ech" }
    assert.are.equal("duroxlua list: no orchestration is named 'Ech'; did you mean 'Echo'?\n", r.err)
    r = run { "--store", STORE, "list", "--name", "Zzzzzzzzzz" }
    assert.are.equal("duroxlua list: no orchestration is named 'Zzzzzzzzzz'\n", r.err)
    -- an existing name whose instances the other filters exclude: no hint
    r = run { "--store", STORE, "list", "--name", "Echo", "--status", "Failed" }
    assert.are.equal(0, r.code)
    assert.are.equal("", r.err)
  end)
end)

describe("on " .. P.name .. ", series without --from", function()
  it("starts the window when the store was created and keeps at most 60 buckets", function()
    local dx = assert(durox.open(STORE, { readonly = true }))
    local retention = dx:config().metrics_retention_hours * 3600000
    dx:close()
    -- independently: when the runtime's migrations made the store
    local created = assert(P.value(P.created_sql))
    local r = run { "--store", STORE, "series", "--json" }
    assert.are.equal(0, r.code, r.err)
    local s = json(r.out)
    local now = durox.now()
    assert.is_true(#s.buckets >= 1 and #s.buckets <= 60, #s.buckets)
    assert.is_true(s.to <= now and s.to >= now - 60000)
    if now - created < retention then
      -- the first bucket holds the store's creation: nothing before it is shown
      assert.is_true(s.from <= created and created < s.from + s.bucket_ms,
        ("from %d, bucket %d, created %d"):format(s.from, s.bucket_ms, created))
      -- a young store gets fine buckets: its age spread over many of them, not one bar
      local age = now - created
      assert.is_true(s.bucket_ms <= math.max(60000, age / 10), ("bucket %d for an age of %d"):format(s.bucket_ms, age))
    else
      assert.is_true(s.from >= now - retention - s.bucket_ms)
    end
    -- every instance created in the window is counted in it
    local started = 0
    for _, b in ipairs(s.buckets) do started = started + b.instances_started end
    assert.are.equal(P.value(P.instances_sql:format(s.from)), started)
    -- an explicit --from wins
    r = run { "--store", STORE, "series", "--json", "--from", "-2h", "--bucket", "1h" }
    assert.are.equal(0, r.code, r.err)
    s = json(r.out)
    assert.are.equal(3600000, s.bucket_ms)
    assert.is_true(s.from <= now - 2 * 3600000 + 3600000)
  end)
end)

describe("on " .. P.name .. ", a start the runtime has not picked up yet", function()
  it("is Pending in show, wait, watch, stuck, history, tree and purge alike (it was not found, Running and NotFound)", function()
    local url, drop, value = P.copy()
    local r = run { "--store", url, "start", "pend-1", "Echo", '"hi"' }
    assert.are.equal(0, r.code, r.err)
    -- independently: no instance row, one StartOrchestration queued
    assert.are.equal(0, value("SELECT count(*) FROM instances WHERE instance_id = 'pend-1'"))
    assert.are.equal(1, value("SELECT count(*) FROM orchestrator_queue WHERE instance_id = 'pend-1'"
      .. " AND CAST(work_item AS TEXT) LIKE '%StartOrchestration%'"))
    local show = run { "--store", url, "show", "pend-1" }
    local show_json = run { "--store", url, "show", "pend-1", "--json" }
    local wait = run { "--store", url, "wait", "pend-1", "--timeout", "300ms" }
    local wait_json = run { "--store", url, "wait", "pend-1", "--timeout", "300ms", "--json" }
    local stuck = run { "--store", url, "stuck", "--now", "+2h", "--json" }
    local watch = run { "--store", url, "watch", "pend-1", "--timeout", "300ms" }
    local history = run { "--store", url, "history", "pend-1" }
    local tree = run { "--store", url, "tree", "pend-1" }
    local purge = run { "--store", url, "purge", "pend-1", "--dry-run" }
    local unknown = run { "--store", url, "history", "nope-x" }
    drop()
    -- watch says Pending (it said NotFound); history, tree and purge say why there is nothing
    -- yet (they said not found), with the not-found exit code; an unknown id stays not found
    assert.are.equal(5, watch.code, watch.err)
    assert.truthy(watch.out:find("  pend-1  is Pending\n", 1, true), watch.out)
    local why = "instance 'pend-1' is Pending: its start is queued and the runtime has not created it yet"
    assert.are.equal(3, history.code)
    assert.are.equal("duroxlua history: " .. why .. ", so it has no history yet\n", history.err)
    assert.are.equal(3, tree.code)
    assert.are.equal("duroxlua tree: " .. why .. ", so it has no sub-orchestrations yet\n", tree.err)
    assert.are.equal(3, purge.code)
    assert.truthy(purge.out:find("  pend-1  NOTFOUND  " .. why .. "\n", 1, true), purge.out)
    assert.are.equal("duroxlua history: instance 'nope-x' not found\n", unknown.err)
    assert.are.equal(0, show.code, show.err)
    assert.truthy(show.out:find("\nStatus:      Pending\n", 1, true), show.out)
    assert.are.equal("Pending", json(show_json.out).summary.status)
    assert.are.equal(5, wait.code, wait.err)
    assert.truthy(wait.out:find("\npend%-1 +Pending"), wait.out)
    assert.truthy(wait.out:find("0 still running, 1 pending (queued, not started yet)\n", 1, true), wait.out)
    assert.are.equal("Pending", json(wait_json.out).instances[1].status)
    assert.are.equal(0, stuck.code, stuck.err)
    local found
    for _, x in ipairs(json(stuck.out).instances) do if x.instance_id == "pend-1" then found = x end end
    assert(found, "the queued start is stalled two hours later")
    assert.are.equal("Pending", found.status)
  end)
end)
end
