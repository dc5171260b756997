-- postgres_cli_spec.lua - every duroxlua subcommand on a PostgreSQL store: the reading
-- commands answer with the same JSON as on the SQLite store of the same scenarios (times, and
-- what only times decide, aside), and the writing commands queue what Duroxide's own PG
-- client would and journal their jobs in duroxlua's own schema (read back with psql).
local S = require "support"
local durox = S.durox

local pg_dir = os.getenv("DUROX_PG_DIR")
local sq_db = os.getenv("DUROX_SCENARIO_DB")
local port = pg_dir and io.open(pg_dir .. "/port") and S.read_file(pg_dir .. "/port"):gsub("%s+$", "")
if not (port and sq_db) then
  describe("postgres cli", function() pending("the PostgreSQL and SQLite fixtures are not set") end)
  return
end

local function pg_url(db, store)
  return ("postgresql://postgres@/%s?host=%s&port=%s%s"):format(db, pg_dir, port, store and "&schema=dx" or "")
end
local PG = pg_url("durox_scenarios", true)
local SQ = "sqlite:" .. sq_db

local function psql(db, sql)
  local p = assert(io.popen(("psql -X -q -A -t -v ON_ERROR_STOP=1 %s -c %s"):format(S.sh(pg_url(db)), S.sh(sql))))
  local out = p:read("a")
  assert(p:close(), "psql failed: " .. sql)
  return (out:gsub("%s+$", ""))
end

local function json_of(store, argv)
  local a = { "--store", store }
  for _, x in ipairs(argv) do a[#a + 1] = x end
  a[#a + 1] = "--json"
  local r = S.run(a)
  assert.are.equal(0, r.code, r.err)
  return S.json(r.out)
end

-- a copy of a decoded JSON value without the keys whose values are times (or decided by them)
local TIMES = { created_at = true, updated_at = true, completed_at = true, started_at = true, timestamp_ms = true,
  scheduled_at = true, fire_at = true, fire_at_ms = true, collected_at = true, since = true, last_event_at = true,
  delay_ms = true, duration_ms = true, average_duration_ms = true, p50_duration_ms = true, p95_duration_ms = true,
  p99_duration_ms = true, elapsed_ms = true, age_ms = true, waiting_ms = true, message = true, output = true,
  error = true, location = true, result = true, oldest_item_age_ms = true, next_timer_at = true,
  execution_time_ms = true, average_turn_duration_ms = true, total_execution_time_ms = true,
  average_processing_time_ms = true, store_created_at = true, last_activity_at = true, uptime_seconds = true,
  created_date = true, input = true, data = true, details = true, event_data = true, value = true }
local function timeless(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    if not (type(k) == "string" and (TIMES[k] or k:match("_at$") or k:match("_ms$"))) then out[k] = timeless(x) end
  end
  return out
end

describe("postgres cli: reading commands answer as on SQLite", function()
  for _, argv in ipairs({
    { "list", "--order", "id", "--limit", "200" },
    { "list", "--status", "Failed", "--order", "id" },
    { "list", "-q", "name LIKE 'tree%' AND status = 'Running'", "--order", "id" },
    { "show", "can-wait-1" },
    { "show", "kv-done-1" },
    { "query", "--group-by", "OrchestrationName,Status" },
    { "cancel", "--status", "Running", "--name", "WaitApprove", "--dry-run" },
  }) do
    it(table.concat(argv, " "), function()
      assert.are.same(timeless(json_of(SQ, argv)), timeless(json_of(PG, argv)))
    end)
  end

  it("tree", function()
    -- siblings come in creation order, which differs between the two runs: sort them by id
    local function norm(n)
      if type(n) ~= "table" then return n end
      local c = {}
      for k, v in pairs(n) do c[k] = norm(v) end
      if c.children then table.sort(c.children, function(a, b) return a.instance_id < b.instance_id end) end
      return c
    end
    assert.are.same(norm(timeless(json_of(SQ, { "tree", "tree-done-1" }))),
      norm(timeless(json_of(PG, { "tree", "tree-done-1" }))))
  end)

  it("history", function()
    local function types(store)
      local h = json_of(store, { "history", "early-event-1" })
      local t = {}
      for i, e in ipairs(h.events or h) do t[i] = e.event_type .. "#" .. e.event_id end
      return t
    end
    assert.are.same(types(SQ), types(PG))
  end)

  it("metrics, queues and stuck count alike", function()
    local a, b = json_of(SQ, { "metrics" }), json_of(PG, { "metrics" })
    local ra, rb = a.runtime or a, b.runtime or b
    for _, k in ipairs({ "total_instances_started", "total_instances_completed", "total_instances_failed",
                         "active_instances", "total_executions", "total_history_events" }) do
      assert.are.equal(ra[k], rb[k], k)
    end
    local qa, qb = json_of(SQ, { "queues" }), json_of(PG, { "queues" })
    assert.are.equal(qa.orchestrator_queue_size, qb.orchestrator_queue_size)
    assert.are.equal(qa.worker_queue_size, qb.worker_queue_size)
    assert.are.equal(qa.timer_queue_size, qb.timer_queue_size)
    -- judged 10 minutes after each store was made, so that the waits are as old on both
    -- whenever the fixtures were written (as parity_spec does)
    local function made(path) return S.json(S.read_file(path)).created_at_ms end
    local at = { [SQ] = made(sq_db .. ".manifest.json"), [PG] = made(os.getenv("DUROX_PG_MANIFEST")) }
    local function stuck(store)
      local r = json_of(store, { "stuck", "--wait", "1m", "--now", tostring(at[store] + 600000) })
      local out = {}
      for _, s in ipairs(r.instances) do out[#out + 1] = s.instance_id end
      table.sort(out)
      return out
    end
    local a = stuck(SQ)
    assert.is_true(#a > 0)
    assert.are.same(a, stuck(PG))
  end)

  it("series answers on PostgreSQL", function()
    local r = json_of(PG, { "series", "--from", "-2h" })
    assert.is_table(r.buckets)
  end)
end)

describe("postgres cli: writing commands", function()
  local db = "durox_cli_" .. (os.time() % 100000)
  psql("postgres", ("CREATE DATABASE %s TEMPLATE durox_scenarios"):format(db))
  local W = pg_url(db, true)
  teardown(function() psql("postgres", ("DROP DATABASE IF EXISTS %s WITH (FORCE)"):format(db)) end)

  local function queued(kind)
    return tonumber(psql(db, ("SELECT count(*) FROM dx.orchestrator_queue WHERE work_item LIKE '{\"%s\"%%'"):format(kind)))
  end

  it("start, raise and cancel queue Duroxide's work items", function()
    local r = S.run { "--store", W, "start", "cli-1", "Echo", '"hi"' }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal('{"StartOrchestration":{"instance":"cli-1","orchestration":"Echo","input":"\\"hi\\"","version":null,'
      .. '"parent_instance":null,"parent_id":null,"execution_id":1}}',
      psql(db, "SELECT work_item FROM dx.orchestrator_queue WHERE instance_id = 'cli-1'"))
    r = S.run { "--store", W, "raise", "Approve", "wait-approve-1", "--data", '"ok"', "--yes", "--quiet" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(1, queued("ExternalRaised"))
    local before = queued("CancelInstance")
    r = S.run { "--store", W, "cancel", "--status", "Running", "--name", "TreeNode", "--reason", "cli", "--yes",
      "--quiet", "--json" }
    assert.are.equal(0, r.code, r.err)
    local res = S.json(r.out)
    assert.are.equal(#res.cancelled_instances, queued("CancelInstance") - before)
    assert.are.equal("1", psql(db, "SELECT count(*) FROM durox.jobs WHERE kind = 'cancel' AND state = 'completed'"))
  end)

  it("jobs lists the journal, purge deletes through Duroxide's procedure", function()
    local r = S.run { "--store", W, "jobs", "--json" }
    assert.are.equal(0, r.code, r.err)
    local jobs = S.json(r.out)
    jobs = jobs.jobs or jobs
    -- the raise and the cancel of the test before, newest first
    assert.are.equal(2, #jobs)
    assert.are.equal("cancel", jobs[1].kind)
    assert.are.equal("raise", jobs[2].kind)
    r = S.run { "--store", W, "purge", "completed-seq-1", "--yes", "--quiet", "--json" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("0", psql(db, "SELECT count(*) FROM dx.instances WHERE instance_id = 'completed-seq-1'"))
    assert.are.equal("0", psql(db, "SELECT count(*) FROM dx.history WHERE instance_id = 'completed-seq-1'"))
  end)

  it("reports an unreachable server in one line, exit 1", function()
    local r = S.run { "--store", "postgresql://nobody:pw@127.0.0.1:1/x?schema=dx", "list" }
    assert.are.equal(1, r.code)
    assert.are.equal("duroxlua list: cannot connect to PostgreSQL store postgresql://nobody:***@127.0.0.1:1/x?schema=dx:"
      .. " connection to server at \"127.0.0.1\", port 1 failed: Connection refused; Is the server running on that"
      .. " host and accepting TCP/IP connections?\n", r.err)
    assert.are.equal("", r.out)
  end)
end)
