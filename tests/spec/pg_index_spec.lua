-- pg_index_spec.lua - the visibility index on PostgreSQL (docs/index.md, "PostgreSQL"): on copies
-- of the PostgreSQL scenario store the real runtime wrote, every listing filter, order,
-- direction and page, count, group-by and metric asked of a handle that reads the store
-- (index = false) and of one that reads the index must give identical answers
-- (index_diff.lua); counts also against raw SQL; then the index's life: its table lives in
-- duroxlua's schema and never in the runtime's, resumable builds, verification that catches a
-- tampered row, purges by Duroxide's own client, new instances the live runtime runs, a
-- read-only role, and access control through the index.
local durox = require "durox"
local L = require "live"
local D = require "index_diff"

local skip = L.skip or not L.pg_dir
local POLICIES = "../../scripts/policies/"

local function describe_pg(name, fn)
  if skip then
    describe(name, function() pending("needs the PostgreSQL test server and the harness") end)
  else
    describe(name, fn)
  end
end

local function runtime_count(db, where)
  return math.tointeger(L.sql_value(db, "",
    "SELECT count(*) AS n FROM instances i LEFT JOIN executions e ON e.instance_id = i.instance_id AND"
    .. " e.execution_id = i.current_execution_id WHERE " .. where))
end

describe_pg("the PostgreSQL visibility index", function()
  local db, name
  before_each(function() db, name = L.pg_fresh() end)
  after_each(function() L.pg_drop(db) end)

  it("gives the store's answers for every filter, order, page, count, group-by and metric", function()
    local plain = assert(durox.open(db, { index = false }))
    local indexed = assert(durox.open(db))
    assert.are.equal("absent", indexed:index_status().state)
    -- a read does not build it on PostgreSQL: the store answers
    assert(indexed:list_instances_paginated { page_size = 5 })
    assert.are.equal("absent", indexed:index_status().state)
    assert(indexed:index_build())
    local st = indexed:index_status()
    assert.are.equal("ready", st.state)
    assert.are.equal(math.tointeger(L.sql_value(db, "", "SELECT count(*) FROM instances")), st.instances)
    assert.truthy(st.size_bytes > 0)
    local diffs, asked = D.compare(plain, indexed, { page_size = 7 })
    assert.are.same({}, diffs)
    assert.truthy(asked > 300)
    assert.are.equal("ready", indexed:index_status().state)
    -- counts against raw SQL over the runtime's tables
    for _, c in ipairs { { "Failed", "e.status = 'Failed'" }, { "Completed", "e.status = 'Completed'" },
      { "Running", "e.status = 'Running'" } } do
      local r = assert(indexed:list_instances_paginated { filter = { status = c[1] }, page_size = 1, total_count = true })
      assert.are.equal(runtime_count(db, c[2]), r.total_count, c[1])
    end
    local v = assert(indexed:index_verify())
    assert.is_true(v.ok)
    assert.are.equal(st.instances, v.instances_checked)
    plain:close()
    indexed:close()
  end)

  it("lives in duroxlua's schema, never in the runtime's; builds resumably; verify catches a tampered row", function()
    local before = L.sql(db, "", "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dx'"
      .. " ORDER BY 1")
    -- a read-only handle keeps the index too (its writes go to duroxlua's schema only)
    local dx = assert(durox.open(db, { readonly = true }))
    -- stopped after its first chunk: resumable
    local calls = 0
    local ok, err = dx:index_build { progress = function() calls = calls + 1; return false end }
    assert.is_nil(ok)
    assert.truthy(tostring(err):match("stopped"), err)
    assert.are.equal("building", dx:index_status().state)
    assert(dx:index_build())
    assert.are.equal("ready", dx:index_status().state)
    -- the command works on PostgreSQL too
    local out, code = L.run(("%s --store %s index status"):format(L.q(L.bin), L.q(db)))
    assert.are.equal(0, code)
    assert.truthy(out:match("state%s+ready"), out)
    out, code = L.run(("%s --store %s index verify"):format(L.q(L.bin), L.q(db)))
    assert.are.equal(0, code, out)
    local after = L.sql(db, "", "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dx'"
      .. " ORDER BY 1")
    assert.are.same(before, after)
    assert.are.same({ { table_name = "ix_dx" }, { table_name = "ix_meta" }, { table_name = "ixc_dx" },
      { table_name = "ixd_dx" }, { table_name = "ixg_dx" }, { table_name = "ixt_dx" } },
      L.sql(db, "", "SELECT table_name FROM information_schema.tables WHERE table_schema = 'durox' AND"
        .. " table_name LIKE 'ix%' ORDER BY 1"))
    assert.is_true(assert(dx:index_verify()).ok)
    -- tamper with one row behind the index's back
    local id = L.sql_value(db, "", "SELECT min(instance_id) AS id FROM instances")
    L.psql(name, "UPDATE durox.ix_dx SET custom_status = 'tampered' WHERE instance_id = " .. L.lit(id))
    local v = assert(dx:index_verify())
    assert.is_false(v.ok)
    assert.are.equal(1, v.mismatched)
    assert.truthy(v.first:find(id, 1, true), v.first)
    assert(dx:index_build { rebuild = true })
    assert.is_true(assert(dx:index_verify()).ok)
    -- the runtime's tables re-created (a replaced schema): stale, the store answers, a rebuild follows it
    L.psql(name, "ALTER TABLE dx.instances RENAME TO instances_old; CREATE TABLE dx.instances (LIKE dx.instances_old"
      .. " INCLUDING ALL); INSERT INTO dx.instances SELECT * FROM dx.instances_old WHERE instance_id <> "
      .. L.lit(id) .. "; DROP TABLE dx.instances_old")
    local total = math.tointeger(L.sql_value(db, "", "SELECT count(*) FROM instances"))
    assert.are.equal(total, assert(dx:list_instances_paginated { page_size = 1, total_count = true }).total_count)
    assert.are.equal("stale", dx:index_status().state)
    assert(dx:index_build { rebuild = true })
    assert.are.equal("ready", dx:index_status().state)
    assert.are.equal(total, assert(dx:list_instances_paginated { page_size = 1, total_count = true }).total_count)
    assert.is_true(assert(dx:index_verify()).ok)
    -- drop: reads use the store, status says absent, the table is gone
    assert(dx:index_drop())
    assert.are.equal("absent", dx:index_status().state)
    assert.are.equal(0, math.tointeger(L.sql_value(db, "", "SELECT count(*) FROM information_schema.tables"
      .. " WHERE table_schema = 'durox' AND table_name = 'ix_dx'")))
    dx:close()
    -- index = false keeps none; index = PATH is refused on PostgreSQL with one line
    local off = assert(durox.open(db, { index = false }))
    assert.are.equal("off", off:index_status().state)
    off:close()
    local no, msg = durox.open(db, { index = "/tmp/x.dxi" })
    assert.is_nil(no)
    assert.truthy(tostring(msg):match("index = PATH is for SQLite"), msg)
  end)

  it("follows purges by Duroxide's client and instances the live runtime runs", function()
    local plain = assert(durox.open(db, { index = false }))
    local indexed = assert(durox.open(db))
    assert(indexed:index_build())
    -- a purge by Duroxide's own client: gone from the index's answers at once
    local done = L.sql(db, "", "SELECT i.instance_id AS id FROM instances i JOIN executions e ON"
      .. " e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id WHERE e.status = 'Completed'"
      .. " AND i.parent_instance_id IS NULL ORDER BY 1 LIMIT 2")
    assert.are.equal(2, #done)
    for _, r in ipairs(done) do assert(L.client(db, "delete", r.id)) end
    local total = math.tointeger(L.sql_value(db, "", "SELECT count(*) FROM instances"))
    local page = assert(indexed:list_instances_paginated { page_size = 1, total_count = true })
    assert.are.equal(total, page.total_count)
    for _, r in ipairs(done) do
      assert.are.same({}, assert(indexed:list_instances_paginated { filter = { id_prefix = r.id } }).instances)
    end
    -- a live runtime runs new instances; each read syncs first
    local rt = L.start_runtime(db, os.tmpname())
    for k = 1, 5 do assert(L.client(db, "start", "pgix-" .. k, "Echo", '"hi"')) end
    L.wait_until(function()
      return runtime_count(db, "i.instance_id LIKE 'pgix-%' AND e.status = 'Completed'") == 5
    end, 60000, "the runtime to complete the new instances", 200)
    local r = assert(indexed:list_instances_paginated { filter = { id_prefix = "pgix-" }, page_size = 10 })
    assert.are.equal(5, #r.instances)
    for _, inst in ipairs(r.instances) do assert.are.equal("Completed", inst.status) end
    local diffs = D.compare(plain, indexed, { page_size = 50, quick = true })
    L.stop_runtime(rt)
    assert.are.same({}, diffs)
    assert.is_true(assert(indexed:index_verify()).ok)
    plain:close()
    indexed:close()
  end)

  -- The history metrics of a fresh handle reading the store (index = false: itself checked
  -- against raw SQL and Duroxide's API by metrics_spec and parity_spec) and of a fresh one
  -- reading the index; the latter's digest_reads (whole-history passes) must stay 0.
  local function metrics_differ(tag)
    local now = durox.now()
    local plain = assert(durox.open(db, { index = false }))
    local indexed = assert(durox.open(db))
    local d
    for _, m in ipairs { "get_runtime_metrics", "get_queue_metrics", "get_orchestration_metrics" } do
      local a, b = assert(plain[m](plain, { now = now })), assert(indexed[m](indexed, { now = now }))
      a.collected_at, b.collected_at = nil, nil
      d = d or D.diff(a, b, tag .. " " .. m)
    end
    assert.are.equal("ready", indexed:index_status().state, tag)
    assert.are.equal(0, indexed:index_status().digest_reads, tag)
    assert.truthy(plain:index_status().digest_reads >= 1, tag)
    plain:close()
    indexed:close()
    return d
  end

  it("keeps the history digest: metrics equal the store's after new work, purges, continue-as-new and prunes",
    function()
    local dx = assert(durox.open(db))
    assert(dx:index_build())
    assert.is_nil(metrics_differ("built"))
    -- a fresh process: its metrics read no history (its own counter, printed by a script)
    local script = os.tmpname()
    L.write(script, 'local durox = require "durox"\n'
      .. 'local dx = assert(durox.open(arg[1], { index = arg[2] ~= "store" }))\n'
      .. 'assert(dx:get_runtime_metrics())\nassert(dx:get_queue_metrics())\nassert(dx:get_orchestration_metrics())\n'
      .. 'print(dx:index_status().state, dx:index_status().digest_reads)\n')
    local out, code = L.run(("%s %s %s"):format(L.q(L.bin), L.q(script), L.q(db)))
    assert.are.equal(0, code, out)
    assert.are.equal("ready\t0", out:match("[^\n]+"), out)
    -- the same counter counts in a process whose handle has no index (the counter can fail)
    out, code = L.run(("%s %s %s store"):format(L.q(L.bin), L.q(script), L.q(db)))
    assert.are.equal(0, code, out)
    assert.truthy(out:match("^off\t[1-9]"), out)
    os.remove(script)
    -- the live runtime runs new instances and a continue-as-new chain of 4 executions
    local rt = L.start_runtime(db, os.tmpname())
    for k = 1, 3 do assert(L.client(db, "start", "pgdg-" .. k, "Echo", '"hi"')) end
    assert(L.client(db, "start", "pgdg-chain", "ContinueLoop", '{"n":0,"max":4}'))
    L.wait_until(function()
      return runtime_count(db, "i.instance_id LIKE 'pgdg-%' AND e.status = 'Completed'") == 4
    end, 60000, "the runtime to complete the new instances", 200)
    L.stop_runtime(rt)
    assert.are.equal(4, math.tointeger(L.sql_value(db, "",
      "SELECT current_execution_id AS n FROM instances WHERE instance_id = 'pgdg-chain'")))
    assert.is_nil(metrics_differ("new work"))
    -- a purge by Duroxide's own client
    for _, id in ipairs { "pgdg-1", "pgdg-2" } do assert(L.client(db, "delete", id)) end
    assert.is_nil(metrics_differ("purge"))
    -- a prune of the chain's older executions
    local r = assert(dx:prune_executions { instances = { "pgdg-chain" }, keep_last = 1 })
    assert.are.equal(1, #r.pruned_instances)
    assert.are.equal(0, math.tointeger(L.sql_value(db, "",
      "SELECT count(*) AS n FROM history WHERE instance_id = 'pgdg-chain' AND execution_id < 4")))
    L.wait_until(function() return metrics_differ("prune") == nil end, 10000, "the prune in the digest", 300)
    assert.is_true(assert(dx:index_verify()).ok)
    -- an index of the previous layout (no digest) is stale, not misread: the store answers
    L.psql(name, "UPDATE durox.ix_meta SET format = 2")
    local old = assert(durox.open(db))
    assert.are.equal("stale", old:index_status().state)
    assert(old:get_runtime_metrics())
    assert.are.equal(1, old:index_status().digest_reads)
    old:close()
    dx:close()
  end)

  it("verify catches a drifted digest row and drifted totals", function()
    local dx = assert(durox.open(db))
    assert(dx:index_build())
    assert.is_true(assert(dx:index_verify()).ok)
    local id = L.sql_value(db, "", "SELECT min(instance_id) AS id FROM instances")
    -- one instance's row counts one history row more (its first pair: counter 1, the rows):
    -- the totals no longer are the sum of the rows
    assert.are.equal(1, math.tointeger(L.sql_value(db, "", "SELECT c[3] AS k FROM durox.ixd_dx WHERE instance_id = "
      .. L.lit(id))))
    L.psql(name, "UPDATE durox.ixd_dx SET c[4] = c[4] + 1 WHERE instance_id = " .. L.lit(id))
    local v = assert(dx:index_verify())
    assert.is_false(v.ok)
    assert.are.equal(0, v.mismatched)
    assert.are.equal(1, v.digests_mismatched)
    assert.truthy(v.first:find("sum of the rows", 1, true), v.first)
    assert(dx:index_build { rebuild = true })
    assert.is_true(assert(dx:index_verify()).ok)
    -- the totals drift (one Failed event more): against history and against the rows
    L.psql(name, "UPDATE durox.ixg_dx SET dn = dn + 1 WHERE name = (SELECT min(name) FROM durox.ixg_dx)")
    v = assert(dx:index_verify())
    assert.is_false(v.ok)
    assert.are.equal(2, v.digests_mismatched)
    assert.truthy(v.first:find("history", 1, true), v.first)
    assert(dx:index_build { rebuild = true })
    assert.is_true(assert(dx:index_verify()).ok)
    -- the status totals: the rows they count, computed here from the index table itself
    local function kept_totals()
      return L.sql(db, "", "SELECT name, vnull::text AS vnull, version, status, n::text AS n FROM durox.ixc_dx"
        .. " WHERE n <> 0 ORDER BY 1, 2, 3, 4")
    end
    local counted = L.sql(db, "", "SELECT COALESCE(name, '') AS name, (version IS NULL)::text AS vnull,"
      .. " COALESCE(version, '') AS version, status, count(*)::text AS n FROM durox.ix_dx GROUP BY 1, 2, 3, 4"
      .. " ORDER BY 1, 2, 3, 4")
    assert.truthy(#counted >= 2)
    assert.are.same(counted, kept_totals())
    -- one total drifts: verify names it; the metrics of a fresh handle show the drift (they
    -- read the totals, not the rows)
    local g = counted[1]
    L.psql(name, ("UPDATE durox.ixc_dx SET n = n + 1 WHERE name = %s AND status = %s AND version = %s")
      :format(L.lit(g.name), L.lit(g.status), L.lit(g.version)))
    v = assert(dx:index_verify())
    assert.is_false(v.ok)
    assert.are.equal(0, v.mismatched)
    assert.are.equal(1, v.digests_mismatched)
    assert.truthy(v.first:find("status totals", 1, true), v.first)
    local fresh = assert(durox.open(db))
    local plain = assert(durox.open(db, { index = false }))
    assert.are.equal(assert(plain:get_runtime_metrics()).total_instances_started + 1,
      assert(fresh:get_runtime_metrics()).total_instances_started)
    fresh:close()
    plain:close()
    assert(dx:index_build { rebuild = true })
    assert.is_true(assert(dx:index_verify()).ok)
    assert.are.same(counted, kept_totals())
    dx:close()
  end)

  it("compares created_at and completed_at exactly as the ms it shows: equal ms, sub-ms times, NULL", function()
    -- three instances the runtime completed get times around one millisecond T (microseconds:
    -- T.000, T.999 and (T-1).999); running instances have no completed_at
    local T = 1700000000123
    local ids = L.sql(db, "", "SELECT i.instance_id AS id FROM instances i JOIN executions e ON e.instance_id ="
      .. " i.instance_id AND e.execution_id = i.current_execution_id WHERE e.completed_at IS NOT NULL ORDER BY 1 LIMIT 3")
    assert.are.equal(3, #ids)
    local sql = { "SET search_path TO dx" }
    for k, us in ipairs { T * 1000, T * 1000 + 999, T * 1000 - 1 } do
      local at = ("'epoch'::timestamptz + %d * interval '1 microsecond'"):format(us)
      sql[#sql + 1] = ("UPDATE instances SET created_at = %s WHERE instance_id = %s"):format(at, L.lit(ids[k].id))
      sql[#sql + 1] = ("UPDATE executions e SET completed_at = %s FROM instances i WHERE i.instance_id = %s AND"
        .. " e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id"):format(at, L.lit(ids[k].id))
    end
    L.psql(name, table.concat(sql, "; "))
    assert.is_true(runtime_count(db, "e.completed_at IS NULL") > 0)
    local plain = assert(durox.open(db, { index = false }))
    local indexed = assert(durox.open(db))
    assert(indexed:index_build())
    -- the oracle: the ms from the column in exact numeric arithmetic (created_at's NULL as 0)
    local ms = { created_at = "COALESCE(floor(extract(epoch FROM i.created_at) * 1000), 0)",
      completed_at = "floor(extract(epoch FROM e.completed_at) * 1000)" }
    local checked = 0
    for _, field in ipairs { "created_at", "completed_at" } do
      for _, n in ipairs { T - 1, T, T + 1, 0 } do
        for _, op in ipairs { ">=", ">", "<", "<=", "=" } do
          for _, negate in ipairs { false, true } do
            local f = ("%s %s %d"):format(field, op, n)
            local w = ("(%s %s %d)"):format(ms[field], op, n)
            if negate then
              f, w = "NOT " .. f, w .. " IS NOT TRUE"
            end
            local want = {}
            for _, r in ipairs(L.sql(db, "", "SELECT i.instance_id AS id FROM instances i LEFT JOIN executions e ON"
              .. " e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id WHERE " .. w
              .. " ORDER BY 1")) do
              want[#want + 1] = r.id
            end
            table.sort(want)
            for _, h in ipairs { plain, indexed } do
              local got = {}
              local page = assert(h:list_instances_paginated { filter = f, order_by = "InstanceId", page_size = 100000,
                total_count = true })
              for _, inst in ipairs(page.instances) do got[#got + 1] = inst.instance_id end
              table.sort(got)
              assert.are.same(want, got, f)
              assert.are.equal(#want, page.total_count, f)
              checked = checked + 1
            end
          end
        end
      end
    end
    assert.are.equal(160, checked)
    plain:close()
    indexed:close()
  end)

  it("keeps the feed's gate across fresh handles: an idle store is not scanned again, any other transaction opens it",
    function()
    local dx = assert(durox.open(db))
    assert(dx:index_build())
    dx:close()
    -- a fresh handle (its own connection and feed, as a new process has): one page, then how
    -- many of its syncs found the gate open and looked for changed instances
    local function fresh_read(filter)
      local h = assert(durox.open(db))
      local page = assert(h:list_instances_paginated { filter = filter, page_size = 100 })
      local st = assert(h:index_status())
      h:close()
      assert.are.equal("ready", st.state)
      return st.sync_scans, page
    end
    -- two in a row on an idle store: the second finds the gate closed, the first one's own write
    -- of the position notwithstanding (tried again while a spec beside this one on the test
    -- server ends transactions of its own, which rightly open it)
    -- (before, if given, runs first at every try)
    local function gate_closes(before)
      for _ = 1, 20 do
        if before then before() end
        fresh_read()
        if fresh_read() == 0 then return true end
        durox.sleep(100)
      end
      return false
    end
    assert.is_true(gate_closes(), "every fresh handle scanned the idle store again")
    -- two long-lived handles after a transaction ended elsewhere: each scans once, and neither's
    -- syncs reopen the other's gate (tried again as above)
    local calm = false
    for _ = 1, 10 do
      local a, b = assert(durox.open(db)), assert(durox.open(db))
      assert(a:list_instances_paginated { page_size = 1 })
      assert(b:list_instances_paginated { page_size = 1 })
      L.psql("postgres", "CREATE TEMP TABLE gate_probe (x int); INSERT INTO gate_probe VALUES (1)")
      local a0, b0 = a:index_status().sync_scans, b:index_status().sync_scans
      for _ = 1, 6 do
        assert(a:list_instances_paginated { page_size = 1 })
        assert(b:list_instances_paginated { page_size = 1 })
      end
      local da, db_ = a:index_status().sync_scans - a0, b:index_status().sync_scans - b0
      a:close()
      b:close()
      assert.is_true(da >= 1 and db_ >= 1)
      if da == 1 and db_ == 1 then
        calm = true
        break
      end
    end
    assert.is_true(calm, "two long-lived handles kept opening each other's gate")
    -- a transaction that ended in another database of the cluster opens it (it cannot tell)
    L.psql("postgres", "CREATE TEMP TABLE gate_probe (x int); INSERT INTO gate_probe VALUES (1)")
    assert.is_true(fresh_read() >= 1)
    -- ...also when the number of new xids cannot tell: a transaction in progress since before
    -- the position (listed in progress at both ends) while another begins and ends after it
    local tag = "durox_gate_holder_" .. tostring(durox.now())
    local function shq(t) return "'" .. t:gsub("'", "'\\''") .. "'" end
    os.execute(("psql -X -q %s -c %s >/dev/null 2>&1 &"):format(shq(L.pg_url("postgres") .. "&application_name=" .. tag),
      shq("BEGIN; SELECT pg_current_xact_id(); SELECT pg_sleep(120); COMMIT")))
    local holding = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' AND backend_xid IS NOT NULL")
      :format(tag)
    local ok, err = pcall(function()
      L.wait_until(function() return L.psql("postgres", holding):match("^1") ~= nil end, 30000,
        "the holding transaction to take its xid", 100)
      -- a transaction that ends makes the next fresh handle save a position taken while the
      -- holder is in progress (then tried again as above until a second handle finds it closed)
      assert.is_true(gate_closes(function() L.psql("postgres", "SELECT pg_current_xact_id()") end),
        "the gate did not close beside a transaction in progress")
      -- one transaction id, ended: the snapshot's xmax moved by as many ids as our own saves and
      -- the holder could account for, so only the list of ids tells that one ended
      L.psql("postgres", "SELECT pg_current_xact_id()")
      assert.is_true(fresh_read() >= 1, "a transaction that ended beside one in progress left the gate closed")
    end)
    L.psql("postgres", ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '%s'"):format(tag))
    assert(ok, err)
    -- the live runtime completes a new instance: the next fresh handle sees it
    local rt = L.start_runtime(db, os.tmpname())
    assert(L.client(db, "start", "gate-1", "Echo", '"hi"'))
    L.wait_until(function()
      return runtime_count(db, "i.instance_id = 'gate-1' AND e.status = 'Completed'") == 1
    end, 60000, "the runtime to complete the new instance", 200)
    L.stop_runtime(rt)
    local scans, page = fresh_read { id_prefix = "gate-" }
    assert.is_true(scans >= 1)
    assert.are.equal(1, #page.instances)
    assert.are.equal("gate-1", page.instances[1].instance_id)
    assert.are.equal("Completed", page.instances[1].status)
    local total = math.tointeger(L.sql_value(db, "", "SELECT count(*) FROM instances"))
    local h = assert(durox.open(db))
    assert.are.equal(total, assert(h:list_instances_paginated { page_size = 1, total_count = true }).total_count)
    h:close()
  end)

  -- The queue rows a handle keeps between snapshots (postgres_metrics.c: read again only when
  -- pg_current_snapshot() moved). Between two calls of ONE handle the runtime updates rows in
  -- place: its own procedures lock an instance's rows (lock_token, instance_locks,
  -- attempt_count + 1), abandon them with a delay (visible_at moved, lock cleared), lock and
  -- abandon a worker row; Duroxide's client enqueues; the live runtime deletes rows and inserts
  -- others. Each call must equal raw SQL over the runtime's tables at the same now.
  it("keeps no stale queue row: locks, abandons, enqueues and deletes between two calls of a handle", function()
    local function oracle(now)
      local pend = ("(q.work_item LIKE '{\"TimerFired\"%%' AND floor(extract(epoch FROM q.visible_at) * 1000) > %d)")
        :format(now)
      -- the orchestrator rows' lock state: 1 the instance's live lock is theirs, 2 it is another's, 0 none
      local st = ("(CASE WHEN l.instance_id IS NULL OR l.locked_until <= %d THEN 0"
        .. " WHEN q.lock_token = l.lock_token THEN 1 ELSE 2 END)"):format(now)
      local vis = "floor(extract(epoch FROM visible_at) * 1000)"
      local o = L.sql(db, "", ("SELECT count(*) FILTER (WHERE NOT %s) AS size, count(*) FILTER (WHERE %s) AS timers,"
        .. " count(*) FILTER (WHERE NOT %s AND %s = 1) AS in_progress,"
        .. " count(*) FILTER (WHERE NOT %s AND %s = 2) AS waiting,"
        .. " count(*) FILTER (WHERE NOT %s AND %s = 0 AND floor(extract(epoch FROM q.visible_at) * 1000) > %d) AS delayed,"
        .. " count(*) FILTER (WHERE NOT %s AND %s = 0 AND floor(extract(epoch FROM q.visible_at) * 1000) <= %d) AS available,"
        .. " count(*) FILTER (WHERE q.lock_token IS NULL) AS unlocked, coalesce(max(q.attempt_count), -1) AS max_att,"
        .. " count(*) FILTER (WHERE q.attempt_count >= 5) AS near,"
        .. " count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = q.instance_id)"
        .. " AND NOT EXISTS (SELECT 1 FROM orchestrator_queue s WHERE s.instance_id = q.instance_id"
        .. " AND s.work_item LIKE '%%StartOrchestration%%')) AS orphans"
        .. " FROM orchestrator_queue q LEFT JOIN instance_locks l ON l.instance_id = q.instance_id")
        :format(pend, pend, pend, st, pend, st, pend, st, now, pend, st, now))[1]
      local w = L.sql(db, "", ("SELECT count(*) AS size,"
        .. " count(*) FILTER (WHERE lock_token IS NOT NULL AND locked_until > %d) AS in_progress,"
        .. " count(*) FILTER (WHERE lock_token IS NOT NULL AND NOT coalesce(locked_until > %d, false)) AS expired,"
        .. " count(*) FILTER (WHERE NOT coalesce(lock_token IS NOT NULL AND locked_until > %d, false) AND %s > %d) AS delayed,"
        .. " count(*) FILTER (WHERE lock_token IS NULL) AS unlocked, coalesce(max(attempt_count), -1) AS max_att"
        .. " FROM worker_queue"):format(now, now, now, vis, now))[1]
      return {
        orchestrator_queue_size = o.size, timer_queue_size = o.timers, worker_queue_size = w.size,
        orchestrator = { in_progress = o.in_progress, waiting_on_lock = o.waiting, delayed = o.delayed,
          available = o.available, unlocked_rows = o.unlocked, max_attempt_count = o.max_att, near_poison = o.near,
          orphans = o.orphans },
        worker = { in_progress = w.in_progress, expired_locks = w.expired, delayed = w.delayed,
          unlocked_rows = w.unlocked, max_attempt_count = w.max_att },
      }
    end
    local function ours(dx, now)
      local m = assert(dx:get_queue_metrics { now = now })
      local function pick(t, want)
        local r = {}
        for k in pairs(want) do r[k] = t[k] == nil and -1 or t[k] end
        return r
      end
      local want = oracle(now)
      return {
        orchestrator_queue_size = m.orchestrator_queue_size, timer_queue_size = m.timer_queue_size,
        worker_queue_size = m.worker_queue_size,
        orchestrator = pick(m.orchestrator, want.orchestrator), worker = pick(m.worker, want.worker),
      }, want
    end
    local dx = assert(durox.open(db, { index = false }))
    local function same(tag)
      local now = durox.now()
      local got, want = ours(dx, now)
      assert.are.same(want, got, tag)
      return got
    end
    local base = same("at rest")
    -- Duroxide's client enqueues two starts (new rows under new ids)
    assert(L.client(db, "start", "qmemo-1", "Echo", '"hi"'))
    assert(L.client(db, "start", "qmemo-gpu", "TaggedActivity", '{"tag":"gpu"}'))
    local enq = same("two starts enqueued")
    assert.are.equal(base.orchestrator_queue_size + 2, enq.orchestrator_queue_size)
    -- an event for an instance that does not exist: an orphan row (the runtime consumes it later)
    assert(L.client(db, "raise", "qmemo-nobody", "ping", '"x"'))
    local orphan = same("an orphan enqueued")
    assert.are.equal(enq.orchestrator.orphans + 1, orphan.orchestrator.orphans)
    -- runtime metrics read no orphans count, so a handle whose first call they are keeps the
    -- rows without it: a later queue metrics call counts the orphans (nothing ended since), or
    -- reads everything again (an orphan enqueued in between)
    for _, between in ipairs { false, true } do
      local h = assert(durox.open(db, { index = false }))
      assert(h:get_runtime_metrics { now = durox.now() })
      if between then assert(L.client(db, "raise", "qmemo-nobody-2", "ping", '"x"')) end
      local now = durox.now()
      local g, w = ours(h, now)
      assert.are.same(w, g, "queue metrics after runtime metrics" .. (between and ", an orphan between" or ""))
      assert.are.equal(orphan.orchestrator.orphans + (between and 1 or 0), g.orchestrator.orphans)
      -- and the other way round: the rows kept with the count serve runtime metrics too
      assert(h:get_runtime_metrics { now = durox.now() })
      g, w = ours(h, durox.now())
      assert.are.same(w, g, "queue metrics again")
      h:close()
    end
    -- the same through the engine's metrics cache (no explicit now): a snapshot cached by
    -- runtime metrics, taken without the count, must not answer queue metrics
    local h = assert(durox.open(db, { index = false }))
    assert(h:get_runtime_metrics())
    assert.are.equal(tonumber(L.sql_value(db, "", "SELECT count(*) AS n FROM orchestrator_queue q WHERE NOT EXISTS"
      .. " (SELECT 1 FROM instances i WHERE i.instance_id = q.instance_id) AND NOT EXISTS (SELECT 1 FROM"
      .. " orchestrator_queue s WHERE s.instance_id = q.instance_id AND s.work_item LIKE '%StartOrchestration%')")),
      assert(h:get_queue_metrics()).orchestrator.orphans)
    h:close()
    orphan = same("orphans enqueued")
    -- the runtime's own fetch (its procedure, as its dispatcher calls it) locks an instance's
    -- rows: lock_token, instance_locks, attempt_count + 1, all in place
    local f = L.sql(db, "", ("SELECT out_lock_token AS token, out_instance_id AS id FROM"
      .. " dx.fetch_orchestration_item(%d, 600000)"):format(durox.now()))[1]
    assert(f and f.token, "the runtime's fetch took no orchestrator row")
    local locked = same("an instance locked")
    assert.truthy(locked.orchestrator.in_progress > 0)
    assert.are.equal(orphan.orchestrator.unlocked_rows - locked.orchestrator.in_progress,
      locked.orchestrator.unlocked_rows)
    assert.truthy(locked.orchestrator.max_attempt_count >= 1)
    -- the same kept rows under a later now, when that lock has expired
    local got, want = ours(dx, durox.now() + 700000)
    assert.are.same(want, got, "the instance lock expired (a later now)")
    assert.are.equal(0, got.orchestrator.in_progress)
    -- abandoned with a delay: lock cleared, visible_at moved ahead, attempt_count stays + 1
    assert.are.equal(f.id, L.sql(db, "", ("SELECT dx.abandon_orchestration_item(%s, %d, 120000) AS i")
      :format(L.lit(f.token), durox.now()))[1].i)
    local ab = same("abandoned with a delay")
    assert.are.equal(0, ab.orchestrator.in_progress)
    assert.truthy(ab.orchestrator.delayed > locked.orchestrator.delayed)
    -- the live runtime's turns: rows deleted, others inserted (qmemo-gpu's activity stays queued:
    -- no worker serves its tag)
    local rt = L.start_runtime(db, os.tmpname())
    L.wait_until(function()
      return tonumber(L.sql_value(db, "", "SELECT count(*) AS n FROM worker_queue WHERE instance_id = 'qmemo-gpu'")) == 1
    end, 60000, "qmemo-gpu's activity to be queued", 50)
    L.stop_runtime(rt)
    local turns = same("after the live runtime's turns")
    assert.truthy(turns.worker_queue_size >= 1)
    -- a worker row locked by the runtime's fetch, then abandoned (attempt_count + 1 kept)
    local wf = L.sql(db, "", ("SELECT out_lock_token AS token FROM dx.fetch_work_item(%d, 600000, NULL, NULL,"
      .. " ARRAY['gpu'], 'tags')"):format(durox.now()))[1]
    assert(wf and wf.token, "the runtime's fetch took no worker row")
    local wl = same("a worker row locked")
    assert.are.equal(turns.worker.in_progress + 1, wl.worker.in_progress)
    L.sql(db, "", ("SELECT 1 AS k FROM dx.abandon_work_item(%s, %d, 60000)"):format(L.lit(wf.token), durox.now()))
    local wa = same("a worker row abandoned")
    assert.are.equal(turns.worker.in_progress, wa.worker.in_progress)
    assert.truthy(wa.worker.max_attempt_count >= 1)
    -- at rest again: the kept rows under a later now (the abandoned rows' delays run out)
    got, want = ours(dx, durox.now() + 130000)
    assert.are.same(want, got, "at rest, 130 s later")
    -- the same snapshot in other processes: the rows kept again from scratch, the server-side
    -- statements (rows not kept), and a queue beyond the rows a handle keeps (the rows read so
    -- far dropped, the server-side statements then)
    assert(L.client(db, "start", "qmemo-3", "Echo", '"hi"'))
    assert(L.client(db, "start", "qmemo-4", "Echo", '"hi"'))
    assert.truthy(tonumber(L.sql_value(db, "", "SELECT count(*) AS n FROM orchestrator_queue")) >= 2)
    local t = durox.now()
    local mine = assert(dx:get_queue_metrics { now = t })
    mine.collected_at = nil
    local script = os.tmpname()
    L.write(script, 'local durox = require "durox"\n'
      .. 'local dx = assert(durox.open(arg[1], { index = false }))\n'
      .. 'local m = assert(dx:get_queue_metrics { now = math.tointeger(arg[2]) })\n'
      .. 'm.collected_at = nil\nprint(durox.encode_json(m))\n')
    for _, env in ipairs { "", "DUROX_PG_QUEUE_MEMO_OFF=1", "DUROX_PG_QUEUE_MEMO_MAX=1" } do
      local out, code = L.run(("%s %s %s %s %d"):format(env, L.q(L.bin), L.q(script), L.q(db), t))
      assert.are.equal(0, code, out)
      assert.are.same(mine, assert(durox.decode_json(out)), env)
    end
    os.remove(script)
    dx:close()
  end)

  it("serves a read-only role from an index that exists, and access-controlled views", function()
    local dx = assert(durox.open(db))
    assert(dx:index_build())
    dx:close()
    local role = "pgix_ro_" .. name
    L.psql(name, ("CREATE ROLE %s LOGIN; GRANT USAGE ON SCHEMA dx, durox TO %s;"
      .. " GRANT SELECT ON ALL TABLES IN SCHEMA dx, durox TO %s"):format(role, role, role))
    local ro_url = db:gsub("postgres@", role .. "@")
    local ro = assert(durox.open(ro_url, { readonly = true }))
    local plain = assert(durox.open(db, { index = false }))
    assert.are.equal("ready", ro:index_status().state)
    local diffs = D.compare(plain, ro, { page_size = 25, quick = true })
    assert.are.same({}, diffs)
    -- a change it cannot write into the index: the store answers, still exact
    assert(L.client(db, "delete", L.sql_value(db, "", "SELECT min(i.instance_id) AS id FROM instances i JOIN"
      .. " executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id WHERE"
      .. " e.status = 'Completed' AND i.parent_instance_id IS NULL")))
    local total = math.tointeger(L.sql_value(db, "", "SELECT count(*) FROM instances"))
    assert.are.equal(total, assert(ro:list_instances_paginated { page_size = 1, total_count = true }).total_count)
    assert.are.equal("broken", ro:index_status().state)
    -- without privileges to build, a build fails with one line and changes nothing
    assert(ro:index_drop() == nil)
    ro:close()
    -- access control: the team policy's view through the index equals the store's
    local ctx = { user_id = "tom", roles = { "team:Echo", "team:Wait" } }
    local a = assert(durox.open(db, { index = false, policy = POLICIES .. "team.lua", context = ctx }))
    local b = assert(durox.open(db, { policy = POLICIES .. "team.lua", context = ctx }))
    -- (the index's status describes the whole store: a team member may not read it)
    local owner = assert(durox.open(db))
    assert.are.equal("ready", owner:index_status().state)
    owner:close()
    local seen = {}
    for inst in b:instances() do seen[#seen + 1] = inst.orchestration_name end
    local want = L.sql(db, "", "SELECT orchestration_name AS n FROM instances WHERE orchestration_name LIKE 'Echo%'"
      .. " OR orchestration_name LIKE 'Wait%'")
    assert.are.equal(#want, #seen)
    for _, n in ipairs(seen) do assert.truthy(n:sub(1, 4) == "Echo" or n:sub(1, 4) == "Wait", n) end
    assert.are.same({}, (D.compare(a, b, { page_size = 25, quick = true,
      filters = { {}, { status = "Completed" }, "name LIKE 'E%'" } })))
    a:close()
    b:close()
    L.psql(name, ("REVOKE ALL ON ALL TABLES IN SCHEMA dx, durox FROM %s; REVOKE USAGE ON SCHEMA dx, durox FROM %s;"
      .. " DROP ROLE %s"):format(role, role, role))
  end)
end)
