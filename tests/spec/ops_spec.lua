-- ops_spec.lua - writes without a runtime, on copies of the scenario store the real runtime
-- wrote: the rows we queue are byte-for-byte the rows Duroxide's own client (client.js)
-- queues; refusals write nothing; purge and prune leave exactly the store Duroxide's own
-- delete_instance / prune_executions leave; restart's ids and start items; the job journal
-- (listing, stop, resume, progress, authorize, rate, limits). Expected values come from
-- Duroxide's own API, the manifest or the sqlite3 tool. On both providers: on PostgreSQL the
-- copies are databases made from the PG scenario store (CREATE DATABASE ... TEMPLATE), read
-- with psql, and Duroxide's client is its PG client.
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("ops", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

local STORES = { "sqlite" }
if L.pg_dir and io.open(L.pg_dir .. "/port") then STORES[2] = "postgres" end
local dir = L.tmpdir()
local n_copies = 0
local pg_copies = {}

for _, provider in ipairs(STORES) do
local pg = provider == "postgres"
local scenario = pg and L.pg_url("durox_scenarios", true) or L.scenario_db
local manifest_path = pg and os.getenv("DUROX_PG_MANIFEST") or L.scenario_db .. ".manifest.json"

-- A fresh copy of the scenario store and a writable handle on it.
local function fresh(config)
  local db
  if pg then
    db = L.pg_fresh()
    pg_copies[#pg_copies + 1] = db
  else
    n_copies = n_copies + 1
    db = L.copy_scenarios(("%s/s%d.db"):format(dir, n_copies))
  end
  return assert(durox.open(L.url(db), { config = config })), db
end

local function pgms(col) return ("floor(extract(epoch FROM %s) * 1000)::int8"):format(col) end

-- Queue rows after id > after, as the sqlite3 tool (or psql) reads them.
local function queue_rows(db, after)
  return L.sql(db, ("SELECT instance_id, work_item, typeof(visible_at) AS vt, visible_at, lock_token IS NULL AS"
    .. " unlocked, locked_until IS NULL AS no_until, attempt_count, typeof(created_at) AS ct FROM orchestrator_queue"
    .. " WHERE id > %d ORDER BY id"):format(after or 0), ("SELECT instance_id, work_item, pg_typeof(visible_at)::text"
    .. " AS vt, %s AS visible_at, (lock_token IS NULL)::int AS unlocked, (locked_until IS NULL)::int AS no_until,"
    .. " attempt_count, pg_typeof(created_at)::text AS ct FROM orchestrator_queue WHERE id > %d ORDER BY id"):format(
      pgms("visible_at"), after or 0))
end

local function max_queue_id(db) return L.sql_value(db, "SELECT COALESCE(MAX(id),0) AS m FROM orchestrator_queue") end
local function queue_count(db) return L.sql_value(db, "SELECT count(*) AS n FROM orchestrator_queue") end
-- how many tables of ours the store has (none until a job is journaled)
local function own_tables(db)
  return L.sql_value(db, "SELECT count(*) AS n FROM sqlite_master WHERE name LIKE 'durox_%'",
    "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'durox'")
end

-- Every row of Duroxide's tables (not ours), for whole-store comparisons.
local TABLES = { "instances", "executions", "history", "orchestrator_queue", "worker_queue", "instance_locks",
  "kv_store", "kv_delta", "sessions" }
local function dump(db)
  local d = {}
  for _, t in ipairs(TABLES) do d[t] = L.sql(db, ("SELECT * FROM %s ORDER BY 1, 2, 3"):format(t)) end
  return d
end

describe("single writes on " .. provider, function()
  -- quotes, backslash, control characters, DEL, non-ASCII, an emoji, a newline, '</'
  local P = 'we\u{fc}ird "q" \\ back\nnl\ttab \1 \127 \u{1F600} </script> \u{65E5}\u{672C}'

  it("queue exactly the rows Duroxide's client queues", function()
    local _, a = fresh()
    local dx, b = fresh()
    local before_a, before_b = max_queue_id(a), max_queue_id(b)
    assert(L.client(a, "cancel", "wait-approve-1", P))
    assert(L.client(a, "raise", "pctX1", P, P))
    assert(L.client(a, "enqueue", "queue-wait-1", "inbox", P))
    assert(L.client(a, "start", P, "Echo", P))
    assert(L.client(a, "start", "v-1", "Versioned", "null", "1.0.0"))
    assert(L.client(a, "cancel", "kv-wait-1"))
    local t0 = durox.now()
    assert(dx:cancel_instance("wait-approve-1", P))
    assert(dx:raise_event("pctX1", P, P))
    assert(dx:enqueue_event("queue-wait-1", "inbox", P))
    assert.are.equal(P, assert(dx:start_orchestration(P, "Echo", P)))
    assert(dx:start_orchestration("v-1", "Versioned", "null", "1.0.0"))
    assert(dx:cancel_instance("kv-wait-1"))
    local t1 = durox.now()
    local ra, rb = queue_rows(a, before_a), queue_rows(b, before_b)
    assert.are.equal(6, #rb)
    for i = 1, 6 do
      assert.are.equal(ra[i].work_item, rb[i].work_item)
      for _, k in ipairs { "instance_id", "vt", "unlocked", "no_until", "attempt_count", "ct" } do
        assert.are.equal(ra[i][k], rb[i][k])
      end
      assert.are.equal(pg and "timestamp with time zone" or "integer", rb[i].vt)
      assert.is_true(rb[i].visible_at >= t0 and rb[i].visible_at <= t1 + 1)
    end
    assert.are.equal('{"CancelInstance":{"instance":"kv-wait-1","reason":""}}', rb[6].work_item)
    assert.are.equal('{"StartOrchestration":{"instance":"v-1","orchestration":"Versioned","input":"null",'
      .. '"version":"1.0.0","parent_instance":null,"parent_id":null,"execution_id":1}}', rb[5].work_item)
    dx:close()
  end)

  it("encode non-string payloads as JSON and default to null", function()
    local dx, db = fresh()
    local before = max_queue_id(db)
    assert(dx:raise_event("pctX1", "Approve", { ok = true, n = 2 }))
    assert(dx:raise_event("wait-approve-1", "Approve"))
    assert(dx:start_orchestration("n-1", "Echo"))
    local rows = queue_rows(db, before)
    assert.are.equal('{"ExternalRaised":{"instance":"pctX1","name":"Approve","data":"{\\"n\\":2,\\"ok\\":true}"}}',
      rows[1].work_item)
    assert.are.equal('{"ExternalRaised":{"instance":"wait-approve-1","name":"Approve","data":"null"}}', rows[2].work_item)
    assert.truthy(rows[3].work_item:find('"input":"null"', 1, true))
    dx:close()
  end)

  it("refuse unknown, terminal and duplicate targets without writing", function()
    local dx, db = fresh()
    local before = queue_count(db)
    local cases = {
      { "cancel_instance", { "nope", "r" }, "NOTFOUND", "instance 'nope' not found" },
      { "raise_event", { "nope", "Approve", "1" }, "NOTFOUND", "instance 'nope' not found" },
      { "enqueue_event", { "nope", "inbox", "1" }, "NOTFOUND", "instance 'nope' not found" },
      { "cancel_instance", { "completed-seq-1" }, "CONFLICT", "instance 'completed-seq-1' is already terminal (Completed)" },
      { "raise_event", { "cancel-waiting-1", "Approve" }, "CONFLICT",
        "instance 'cancel-waiting-1' is already terminal (Failed)" },
      { "start_orchestration", { "completed-seq-1", "Echo", "1" }, "CONFLICT",
        "instance 'completed-seq-1' already exists (Completed)" },
      { "start_orchestration", { "", "Echo", "1" }, "INVALID", "instance id must not be empty" },
      { "raise_event", { "pctX1", "", "1" }, "INVALID", "event name must not be empty" },
      { "raise_event", { "pctX1", "Approve", "\255bad" }, "INVALID", "event data is not valid UTF-8" },
      { "cancel_instance", { "pctX1", "\192\128" }, "INVALID", "reason is not valid UTF-8" },
    }
    for _, c in ipairs(cases) do
      local r, msg, code = dx[c[1]](dx, table.unpack(c[2]))
      assert.is_nil(r, c[1])
      assert.are.equal(c[3], code)
      assert.are.equal(c[4], msg)
    end
    assert.are.equal(before, queue_count(db))
    -- a queued start makes the instance exist: raise and cancel are then accepted
    assert(dx:start_orchestration("fresh-1", "WaitApprove", "null"))
    local r, msg, code = dx:start_orchestration("fresh-1", "WaitApprove", "null")
    assert.are.same({ nil, "instance 'fresh-1' already exists (its start is queued)", "CONFLICT" }, { r, msg, code })
    assert(dx:cancel_instance("fresh-1", "early"))
    -- and a queued cancel makes further cancels and raises pointless: refused
    r, msg, code = dx:raise_event("fresh-1", "Approve")
    assert.are.same({ nil, "instance 'fresh-1' is being cancelled (a cancel is queued)", "CONFLICT" }, { r, msg, code })
    assert.are.equal(before + 2, queue_count(db))
    dx:close()
  end)

  it("are refused on a read-only handle", function()
    local _, db = fresh()
    local ro = assert(durox.open(L.url(db), { readonly = true }))
    local r, msg, code = ro:cancel_instance("wait-approve-1", "x")
    assert.is_nil(r)
    assert.are.equal("DENIED", code)
    assert.truthy(msg:find("read-only", 1, true))
    r, msg, code = ro:cancel_instances { instances = { "wait-approve-1" } }
    assert.are.equal("DENIED", code)
    -- a dry run writes nothing, so it is allowed
    local dry = assert(ro:cancel_instances { instances = { "wait-approve-1" }, dry_run = true })
    assert.are.same({ "wait-approve-1" }, dry.cancelled_instances)
    assert.are.equal(0, own_tables(db))
    ro:close()
  end)

  it("raise misuse", function()
    local dx = fresh()
    assert.has_error(function() dx:raise_event("pctX1") end)
    assert.has_error(function() dx:cancel_instance({}) end)
    assert.has_error(function() dx:start_orchestration("a\0b", "Echo") end)
    assert.has_error(function() dx:cancel_instances { reason = "x" } end)
    assert.has_error(function() dx:cancel_instances { instances = { "a" }, filter = {} } end)
    assert.has_error(function() dx:cancel_instances { instances = { "a" }, bogus = 1 } end)
    assert.has_error(function() dx:raise_event_bulk { instances = { "a" } } end)
    assert.has_error(function() dx:wait_for_instances { instances = { "a" }, mode = "first" } end)
    dx:close()
  end)
end)

describe("bulk classification (dry run) on " .. provider, function()
  it("takes a query string as its filter, like a filter table", function()
    local dx = fresh()
    local q = assert(dx:cancel_instances { filter = "status = 'Running' AND name IN ('WaitApprove', 'TreeNode')",
      dry_run = true })
    local t = assert(dx:cancel_instances { filter = { status = "Running", query = "name IN ('WaitApprove', 'TreeNode')" },
      dry_run = true })
    local expected = {}
    for _, s in ipairs(assert(dx:list_instances({ status = "Running" }))) do
      if s.orchestration_name == "WaitApprove" or s.orchestration_name == "TreeNode" then
        expected[#expected + 1] = s.instance_id
      end
    end
    table.sort(expected)
    table.sort(q.cancelled_instances)
    table.sort(t.cancelled_instances)
    assert.is_true(#expected > 5)
    assert.are.same(expected, q.cancelled_instances)
    assert.are.same(expected, t.cancelled_instances)
    assert.has_error(function() dx:cancel_instances { filter = "status = ", dry_run = true } end,
      "query error at position 10: expected a value after '=' but found end of query")
    dx:close()
  end)

  it("matches the scenario manifest", function()
    local dx, db = fresh()
    local manifest = assert(durox.decode_json(L.read(manifest_path))).instances
    local r = assert(dx:raise_event_bulk { filter = {}, event_name = "Approve", event_data = "1", dry_run = true })
    assert.is_true(r.dry_run)
    assert.is_nil(r.job_id)
    local delivered, nosub, failed = {}, {}, {}
    for _, id in ipairs(r.delivered_instances) do delivered[id] = true end
    for _, id in ipairs(r.no_subscription_instances) do nosub[id] = true end
    for _, f in ipairs(r.failed_instances) do failed[f.instance_id] = f.code end
    local n = 0
    for id, m in pairs(manifest) do
      n = n + 1
      if m.status ~= "Running" then
        assert.are.equal("CONFLICT", failed[id], id)
      elseif m.waiting_on == "event:Approve" and id ~= "early-event-1" or id == "early-event-1" then
        -- early-event-1 got its Approve before subscribing: that event was never delivered,
        -- so its subscription is still open
        assert.is_true(delivered[id], id)
      else
        assert.is_true(nosub[id], id .. " waits on " .. tostring(m.waiting_on))
      end
    end
    assert.are.equal(n, r.total_matched)
    assert.are.equal(0, own_tables(db))
    dx:close()
  end)

  it("counts events already queued against open subscriptions", function()
    local dx = fresh()
    assert(dx:raise_event("wait-approve-1", "Approve", "1"))
    local r = assert(dx:raise_event_bulk { instances = { "wait-approve-1", "status-wait-1" }, event_name = "Approve" })
    assert.are.same({ "status-wait-1" }, r.delivered_instances)
    assert.are.same({ "wait-approve-1" }, r.no_subscription_instances)
    -- queue messages need no subscription
    r = assert(dx:raise_event_bulk { instances = { "queue-wait-1", "pctX1" }, event_name = "inbox", queue = true })
    assert.are.equal("enqueue", r.kind)
    assert.are.same({ "queue-wait-1", "pctX1" }, r.delivered_instances)
    dx:close()
  end)
end)

describe("purge on " .. provider, function()
  local roots = { "completed-seq-1", "failed-parent-1", "cancel-parent-1", "tree-done-1", "kv-done-1",
    "detached-parent-1", "can-done-1" }

  it("leaves exactly the store Duroxide's delete_instance leaves", function()
    local _, a = fresh()
    local dx, b = fresh()
    local theirs = { instancesDeleted = 0, executionsDeleted = 0, eventsDeleted = 0, queueMessagesDeleted = 0 }
    for _, id in ipairs(roots) do
      local r = assert(L.client(a, "delete", id))
      for k in pairs(theirs) do theirs[k] = theirs[k] + r[k] end
    end
    local r = assert(dx:purge_instances { instances = roots })
    assert.are.same(roots, r.purged_instances)
    assert.are.same({}, r.failed_instances)
    assert.are.equal(theirs.instancesDeleted, r.instances_deleted)
    assert.are.equal(theirs.executionsDeleted, r.executions_deleted)
    assert.are.equal(theirs.eventsDeleted, r.events_deleted)
    assert.are.equal(theirs.queueMessagesDeleted, r.queue_messages_deleted)
    local da, db_ = dump(a), dump(b)
    for _, t in ipairs(TABLES) do
      assert.are.equal(durox.encode_json(da[t]), durox.encode_json(db_[t]), "table " .. t)
    end
    -- and Duroxide's own API reports them gone
    for _, id in ipairs { "completed-seq-1", "tree-done-1-explicit::sub::2", "failed-parent-1::sub::2" } do
      local ok, err = L.client(b, "info", id)
      assert.is_nil(ok)
      assert.truthy(err:find("not found", 1, true), err)
    end
    dx:close()
  end)

  it("refuses sub-orchestrations, running trees and unknown ids, and forces like delete --force", function()
    local _, a = fresh()
    local dx, b = fresh()
    local r = assert(dx:purge_instances { instances = { "failed-parent-1::sub::2", "wait-approve-1", "tree-wait-1",
      "nope" } })
    assert.are.same({}, r.purged_instances)
    local by = {}
    for _, f in ipairs(r.failed_instances) do by[f.instance_id] = f end
    assert.are.equal("CONFLICT", by["failed-parent-1::sub::2"].code)
    assert.are.equal("instance 'failed-parent-1::sub::2' is a sub-orchestration; purge its root instead",
      by["failed-parent-1::sub::2"].error)
    assert.are.equal("instance 'wait-approve-1' is still running; cancel it first or use force",
      by["wait-approve-1"].error)
    assert.are.equal("CONFLICT", by["tree-wait-1"].code)
    assert.are.equal("NOTFOUND", by["nope"].code)
    -- what Duroxide says about the same requests
    assert.is_nil(L.client(a, "delete", "failed-parent-1::sub::2"))
    assert.is_nil(L.client(a, "delete", "wait-approve-1"))
    -- forced: the same store as Duroxide's forced delete
    assert(L.client(a, "delete", "tree-wait-1", "--force"))
    assert(L.client(a, "delete", "wait-approve-1", "--force"))
    r = assert(dx:purge_instances { instances = { "tree-wait-1", "wait-approve-1" }, force = true })
    assert.are.same({ "tree-wait-1", "wait-approve-1" }, r.purged_instances)
    local da, db_ = dump(a), dump(b)
    for _, t in ipairs(TABLES) do
      assert.are.equal(durox.encode_json(da[t]), durox.encode_json(db_[t]), "table " .. t)
    end
    dx:close()
  end)

  it("by filter takes root instances only", function()
    local dx = fresh()
    local r = assert(dx:purge_instances { filter = { status = "Failed" }, dry_run = true })
    for _, id in ipairs(r.purged_instances) do assert.is_nil(id:find("::", 1, true), id) end
    local expected = L.sql(scenario, "SELECT i.instance_id AS id FROM instances i JOIN executions e ON"
      .. " e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id WHERE e.status = 'Failed'"
      .. " AND i.parent_instance_id IS NULL ORDER BY 1")
    local ids = {}
    for i, row in ipairs(expected) do ids[i] = row.id end
    assert.are.same(ids, r.purged_instances)
    -- the sub-orchestrations that matched are reported as skipped, each with its reason
    local children = L.sql(L.scenario_db, "SELECT i.instance_id AS id, i.parent_instance_id AS parent FROM instances i"
      .. " JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id"
      .. " WHERE e.status = 'Failed' AND i.parent_instance_id IS NOT NULL ORDER BY 1")
    assert.is_true(#children > 0)
    assert.are.equal(#children, #r.skipped_instances)
    for i, c in ipairs(children) do
      assert.are.equal(c.id, r.skipped_instances[i].instance_id)
      assert.are.equal(("a sub-orchestration of '%s': purge acts on trees through their root"):format(c.parent),
        r.skipped_instances[i].reason)
    end
    assert.are.equal(#ids + #children, r.total_matched)
    dx:close()
  end)
end)

describe("prune on " .. provider, function()
  it("deletes what Duroxide's prune_executions deletes", function()
    local _, a = fresh()
    local dx, b = fresh()
    local out, code, err = L.run(("node %s %s can-done-1 2"):format(L.q("support/prune.js"), L.q(a)))
    assert.are.equal(0, code, err)
    local theirs = assert(durox.decode_json(out))
    local r = assert(dx:prune_executions { instances = { "can-done-1", "can-wait-1", "completed-seq-1" }, keep_last = 2 })
    assert.are.same({ "can-done-1", "can-wait-1", "completed-seq-1" }, r.pruned_instances)
    out, code, err = L.run(("node %s %s can-wait-1 2"):format(L.q("support/prune.js"), L.q(a)))
    assert.are.equal(0, code, err)
    local theirs2 = assert(durox.decode_json(out))
    assert.are.equal(theirs.executionsDeleted + theirs2.executionsDeleted, r.executions_deleted)
    assert.are.equal(theirs.eventsDeleted + theirs2.eventsDeleted, r.events_deleted)
    assert.are.equal(3, r.instances_processed)
    local da, db_ = dump(a), dump(b)
    for _, t in ipairs(TABLES) do
      assert.are.equal(durox.encode_json(da[t]), durox.encode_json(db_[t]), "table " .. t)
    end
    -- without keep_last everything but the current execution goes
    r = assert(dx:prune_executions { instances = { "can-done-1" } })
    assert.are.equal(1, r.executions_deleted)
    assert.are.same({ 4 }, assert(dx:list_executions("can-done-1")))
    r = assert(dx:prune_executions { instances = { "nope" } })
    assert.are.equal("NOTFOUND", r.failed_instances[1].code)
    dx:close()
  end)
end)

describe("restart on " .. provider, function()
  it("queues a start with the failed execution's name, version and input under <id>~r<N>", function()
    local dx, db = fresh()
    local before = max_queue_id(db)
    local r = assert(dx:restart_instances { instances = { "failed-throw-1", "cancel-waiting-1", "completed-seq-1",
      "failed-parent-1::sub::2", "wait-approve-1", "nope" } })
    assert.are.same({ { instance_id = "failed-throw-1", new_instance_id = "failed-throw-1~r1" },
      { instance_id = "cancel-waiting-1", new_instance_id = "cancel-waiting-1~r1" } }, r.restarted_instances)
    local codes = {}
    for _, f in ipairs(r.failed_instances) do codes[f.instance_id] = f.code end
    assert.are.same({ ["completed-seq-1"] = "CONFLICT", ["failed-parent-1::sub::2"] = "CONFLICT",
      ["wait-approve-1"] = "CONFLICT", nope = "NOTFOUND" }, codes)
    local started = assert(dx:read_execution_history("failed-throw-1", 1))[1]
    local rows = queue_rows(db, before)
    assert.are.equal(2, #rows)
    assert.are.equal(('{"StartOrchestration":{"instance":"failed-throw-1~r1","orchestration":%s,"input":%s,'
      .. '"version":%s,"parent_instance":null,"parent_id":null,"execution_id":1}}'):format(
        durox.encode_json(started.name), durox.encode_json(started.input), durox.encode_json(started.version)),
      rows[1].work_item)
    -- the next restart of the same instance (or of the restarted one) takes the next number
    r = assert(dx:restart_instances { instances = { "failed-throw-1" }, latest_version = true })
    assert.are.equal("failed-throw-1~r2", r.restarted_instances[1].new_instance_id)
    assert.truthy(queue_rows(db, before)[3].work_item:find('"version":null', 1, true))
    dx:close()
  end)

  it("by filter reports the sub-orchestrations it skips, with a count and a reason", function()
    local dx, db = fresh()
    local failed = L.sql(db, "SELECT i.instance_id AS id, i.parent_instance_id AS parent FROM instances i"
      .. " JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id"
      .. " WHERE e.status = 'Failed' ORDER BY 1")
    local roots, children = 0, 0
    for _, f in ipairs(failed) do
      if f.parent == durox.null or f.parent == nil then roots = roots + 1 else children = children + 1 end
    end
    assert.is_true(children > 0)
    local r = assert(dx:restart_instances { filter = { status = "Failed" } })
    assert.are.equal(#failed, r.total_matched)
    assert.are.equal(roots, #r.restarted_instances + #r.failed_instances)
    assert.are.equal(children, #r.skipped_instances)
    assert.truthy(r.skipped_instances[1].reason:find("restart acts on trees through their root", 1, true))
    dx:close()
  end)
end)

describe("jobs on " .. provider, function()
  it("are journaled, listed and inspected", function()
    local dx, db = fresh()
    local r = assert(dx:cancel_instances { filter = { status = "Running", name = "WaitApprove" }, reason = "j" })
    assert.is_number(r.job_id)
    local job = assert(dx:get_job(r.job_id, { targets = true }))
    assert.are.equal("cancel", job.kind)
    assert.are.equal("completed", job.state)
    assert.are.same({ reason = "j" }, job.request)
    assert.are.equal(#r.cancelled_instances, job.done)
    assert.are.equal(job.total, #job.targets)
    local n = L.sql_value(db, "SELECT count(*) AS n FROM durox_job_targets WHERE job_id = " .. r.job_id
      .. " AND state = 'done'", "SELECT count(*) AS n FROM durox.job_targets WHERE job_id = " .. r.job_id
      .. " AND state = 'done'")
    assert.are.equal(job.done, n)
    local jobs = assert(dx:list_jobs())
    assert.are.equal(r.job_id, jobs[1].job_id)
    assert.are.same({}, assert(dx:list_jobs { state = "running" }))
    local missing, msg, code = dx:get_job(9999)
    assert.are.equal("NOTFOUND", code)
    -- never a runtime table touched by the journal, never a migration row
    assert.are.equal(pg and 22 or 12, L.sql_value(db, "SELECT count(*) AS n FROM _sqlx_migrations",
      "SELECT count(*) AS n FROM _duroxide_migrations"))
    dx:close()
  end)

  it("stop through the progress callback and resume: every target once", function()
    local dx, db = fresh()
    local ids = {}
    for i = 1, 50 do
      ids[i] = ("job-%02d"):format(i)
      assert(dx:start_orchestration(ids[i], "WaitApprove", "null"))
    end
    local seen = {}
    local r = assert(dx:cancel_instances { instances = ids, batch_size = 10, reason = "s",
      progress = function(p)
        seen[#seen + 1] = p.done
        return p.done < 20
      end })
    assert.are.equal("stopped", r.state)
    -- stopped at the first progress report with 20 or more done (a batch is committed early
    -- after 5 ms in a transaction, so it may hold fewer than 10)
    local stopped_at = seen[#seen]
    assert.is_true(stopped_at >= 20 and stopped_at < 30, stopped_at)
    for i = 1, #seen - 1 do assert.is_true(seen[i] < 20) end
    assert.are.equal(stopped_at, #r.cancelled_instances)
    assert.are.equal(50 - stopped_at, #r.pending_instances)
    assert.are.equal("stopped", assert(dx:get_job(r.job_id)).state)
    -- an error in the callback leaves the job interrupted and propagates
    assert.has_error(function()
      dx:resume_job(r.job_id, { progress = function(p) if p.done >= 30 then error("boom") end end })
    end, nil)
    assert.are.equal("interrupted", assert(dx:get_job(r.job_id)).state)
    local done = assert(dx:resume_job(r.job_id))
    assert.are.equal("completed", done.state)
    assert.are.equal(50, #done.cancelled_instances)
    -- exactly one CancelInstance row per instance
    local counts = L.sql(db, "SELECT instance_id, count(*) AS n FROM orchestrator_queue WHERE work_item LIKE"
      .. " '{\"CancelInstance\"%' AND instance_id LIKE 'job-%' GROUP BY 1")
    assert.are.equal(50, #counts)
    for _, c in ipairs(counts) do assert.are.equal(1, c.n, c.instance_id) end
    -- resuming a completed job returns its result and does nothing
    local again = assert(dx:resume_job(r.job_id))
    assert.are.equal(50, #again.cancelled_instances)
    local stopped, msg, code = dx:stop_job(r.job_id)
    assert.are.same({ nil, ("job %d already ended (completed)"):format(r.job_id), "CONFLICT" }, { stopped, msg, code })
    dx:close()
  end)

  it("stop_job marks a job nobody runs stopped", function()
    local dx = fresh()
    local ok, err = pcall(dx.cancel_instances, dx, { instances = { "wait-approve-1", "pctX1" }, batch_size = 1,
      progress = function() error("interrupt") end })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("interrupt", 1, true))
    local job = assert(dx:list_jobs())[1]
    assert.are.equal("interrupted", job.state)
    assert.are.equal(1, job.done)
    assert.are.equal("stopped", assert(dx:stop_job(job.job_id)))
    assert.are.equal("stopped", assert(dx:get_job(job.job_id)).state)
    local r = assert(dx:resume_job(job.job_id))
    assert.are.equal("completed", r.state)
    assert.are.same({ "wait-approve-1", "pctX1" }, r.cancelled_instances)
    dx:close()
  end)

  it("stop_job stops a job another process runs, after its current batch", function()
    local dx, db = fresh()
    -- the 6 running WaitApprove instances of the scenario store: 1 per batch, 2 per second
    local p = L.spawn(("%s support/raise_worker.lua %s start 2 1"):format(L.q(L.bin), L.q(db)))
    local job = L.wait_until(function()
      local j = assert(dx:list_jobs())[1]
      return j and j.state == "running" and j.done >= 1 and j
    end, 20000, "the worker's job to run")
    assert.is_true(job.active)
    assert.truthy(job.owner:match(":%d+$"))
    local r, msg, code = dx:resume_job(job.job_id)
    assert.are.same({ nil, "CONFLICT" }, { r, code })
    assert.truthy(msg:find("is running in process", 1, true))
    assert.are.equal("stopping", assert(dx:stop_job(job.job_id)))
    L.wait_exit(p)
    job = assert(dx:get_job(job.job_id))
    assert.are.equal("stopped", job.state)
    assert.is_true(job.pending > 0)
    r = assert(dx:resume_job(job.job_id))
    assert.are.equal("completed", r.state)
    assert.are.equal(6, r.total_matched)
    assert.are.equal(6, #r.delivered_instances)
    local rows = L.sql(db, "SELECT instance_id, count(*) AS n FROM orchestrator_queue WHERE work_item LIKE"
      .. " '{\"ExternalRaised\"%' GROUP BY 1")
    assert.are.equal(6, #rows)
    for _, row in ipairs(rows) do assert.are.equal(1, row.n, row.instance_id) end
    dx:close()
  end)

  it("classify denied targets through authorize", function()
    local dx = fresh()
    local r = assert(dx:cancel_instances { filter = { status = "Running" }, reason = "a",
      authorize = function(s)
        if s.orchestration_name == "WaitApprove" then return true end
        return false, "only WaitApprove may be cancelled"
      end })
    assert.is_true(#r.cancelled_instances > 0)
    for _, f in ipairs(r.failed_instances) do
      assert.are.equal("DENIED", f.code)
      assert.are.equal("only WaitApprove may be cancelled", f.error)
    end
    assert.are.equal(r.total_matched, #r.cancelled_instances + #r.failed_instances)
    dx:close()
  end)

  it("honour max_instances and max_bulk_operations", function()
    local dx = fresh()
    local r, msg, code = dx:cancel_instances { filter = {}, max_instances = 5 }
    assert.is_nil(r)
    assert.are.equal("LIMIT", code)
    assert.are.equal("more than 5 instances match (max_instances); narrow the filter or raise max_instances", msg)
    r, msg, code = dx:cancel_instances { filter = {}, max_instances = 5000 }
    assert.are.equal("LIMIT", code)
    assert.truthy(msg:find("exceeds the configured max_bulk_operations 1000", 1, true))
    dx:config { max_bulk_operations = 10 }
    r, msg, code = dx:cancel_instances { filter = {}, dry_run = true }
    assert.are.equal("LIMIT", code)
    dx:close()
  end)

  it("apply a predicate after the filter", function()
    local dx = fresh()
    local r = assert(dx:cancel_instances { filter = { status = "Running" }, dry_run = true,
      predicate = function(s) return s.instance_id:sub(1, 4) == "tree" end })
    for _, id in ipairs(r.cancelled_instances) do assert.are.equal("tree", id:sub(1, 4)) end
    assert.are.equal(7, #r.cancelled_instances)
    dx:close()
  end)

  it("are rate-limited", function()
    local dx, db = fresh()
    local running = L.sql_value(db, "SELECT count(*) AS n FROM instances i JOIN executions e ON"
      .. " e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id WHERE e.status = 'Running'")
    assert.is_true(running > 20, "needs more than 20 running instances")
    local t0 = durox.now()
    local r = assert(dx:cancel_instances { filter = { status = "Running" }, rate = 20 })
    assert.are.equal(running, #r.cancelled_instances)
    -- batches of at most 20 (one second's worth), the second one second after the first
    assert.is_true(durox.now() - t0 >= 950, "took " .. (durox.now() - t0) .. " ms")
    dx:close()
  end)

  it("write nothing, not even the journal, when every target is refused", function()
    local dx, db = fresh()
    local before = queue_count(db)
    local ids = {}
    for i = 1, 30 do ids[i] = "nope-" .. i end
    local r = assert(dx:cancel_instances { instances = ids })
    assert.are.equal("completed", r.state)
    assert.is_nil(r.job_id)
    assert.are.equal(30, #r.failed_instances)
    assert.are.equal("NOTFOUND", r.failed_instances[1].code)
    -- terminal instances are refused too
    r = assert(dx:cancel_instances { filter = { status = "Completed" } })
    assert.is_nil(r.job_id)
    assert.is_true(#r.failed_instances > 0)
    assert.are.equal(0, #r.cancelled_instances)
    assert.are.equal(before, queue_count(db))
    assert.are.equal(0, own_tables(db))
    -- one target acted on: the job is journaled, with the refused ones
    r = assert(dx:cancel_instances { instances = { "nope-1", "wait-approve-1" } })
    assert.is_number(r.job_id)
    assert.are.equal(1, #r.cancelled_instances)
    assert.are.equal(1, #r.failed_instances)
    dx:close()
  end)
end)
end

teardown(function()
  for _, db in ipairs(pg_copies) do L.pg_drop(db) end
  L.cleanup(dir)
end)
