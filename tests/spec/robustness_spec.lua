-- robustness_spec.lua - stores that are not what the current runtime writes: the schema of
-- older Duroxide versions (columns and tables added by later migrations removed from a copy
-- of a real store, as those versions created it), an event type from a future version, a
-- corrupt event row, and files that are not Duroxide stores. Every case must give a clear
-- answer or a one-line error, never a crash.
local durox = require "durox"
local H = require "helpers"

if H.skip then
  describe("robustness", function() pending("DUROX_SCENARIO_DB is not set") end)
  return
end

-- A private copy of the scenario store, transformed by sql (run by the sqlite3 tool).
local function copy_with(sql)
  local path = os.tmpname()
  os.remove(path)
  path = path .. ".db"
  local src = assert(io.open(H.db, "rb"))
  local dst = assert(io.open(path, "wb"))
  dst:write(src:read("a"))
  src:close()
  dst:close()
  for _, suffix in ipairs({ "-wal", "-shm" }) do
    local w = io.open(H.db .. suffix, "rb")
    if w then
      local d = assert(io.open(path .. suffix, "wb"))
      d:write(w:read("a"))
      w:close()
      d:close()
    end
  end
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(sql)
  f:close()
  assert(os.execute(string.format("sqlite3 -bail %s < %s", path, tmp)))
  os.remove(tmp)
  return path
end

local function cleanup(path)
  for _, suffix in ipairs({ "", "-wal", "-shm" }) do os.remove(path .. suffix) end
end

describe("an older schema (Duroxide's 20240104 migration level)", function()
  -- what 20240105..20240112 added: parent_instance_id, duroxide_version_*, sessions,
  -- custom_status, worker tags, kv tables
  local path, dx
  setup(function()
  path = copy_with([[
    PRAGMA foreign_keys=OFF;
    BEGIN;
    CREATE TABLE instances_old (instance_id TEXT PRIMARY KEY, orchestration_name TEXT NOT NULL,
      orchestration_version TEXT NOT NULL, current_execution_id INTEGER NOT NULL DEFAULT 1,
      created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
    INSERT INTO instances_old SELECT instance_id, orchestration_name, orchestration_version, current_execution_id,
      created_at, updated_at FROM instances;
    DROP INDEX idx_instances_parent;
    DROP TABLE instances;
    ALTER TABLE instances_old RENAME TO instances;
    ALTER TABLE executions DROP COLUMN duroxide_version_major;
    ALTER TABLE executions DROP COLUMN duroxide_version_minor;
    ALTER TABLE executions DROP COLUMN duroxide_version_patch;
    DROP INDEX IF EXISTS idx_worker_queue_session;
    DROP INDEX IF EXISTS idx_worker_queue_tag;
    ALTER TABLE worker_queue DROP COLUMN session_id;
    ALTER TABLE worker_queue DROP COLUMN tag;
    DROP TABLE sessions;
    DROP TABLE kv_store;
    DROP TABLE kv_delta;
    DELETE FROM _sqlx_migrations WHERE version > 20240104000000;
    COMMIT;
  ]])
  dx = assert(durox.open("sqlite:" .. path, { readonly = true }))
  end)
  teardown(function()
    dx:close()
    cleanup(path)
  end)
  local manifest = H.manifest().instances

  it("is detected with its capabilities", function()
    local info = dx:info()
    assert.are.equal("20240104000000", info.schema_version)
    assert.is_false(info.has_custom_status)
    assert.is_false(info.has_parent_instance)
    assert.is_false(info.has_kv)
    assert.is_false(info.has_sessions)
    assert.is_true(info.has_worker_identity)
  end)

  it("lists every instance with the right status, without the missing columns", function()
    local all = assert(dx:list_instances())
    local n = 0
    for id, m in pairs(manifest) do
      n = n + 1
      local found
      for _, s in ipairs(all) do if s.instance_id == id then found = s end end
      assert(found, id)
      assert.are.equal(m.status, found.status)
      assert.are.equal(m.failure_kind, found.failure_kind)
      assert.is_nil(found.parent_instance)
      assert.is_nil(found.custom_status)
    end
    assert.are.equal(n, #all)
    assert.are.same({}, H.ids(assert(dx:list_instances({ has_parent = true }))))
    assert.are.same({}, H.ids(assert(dx:list_instances({ custom_status = "x" }))))
  end)

  it("still reads details, history and statuses", function()
    local d = assert(dx:get_instance_details("can-done-1"))
    assert.are.equal(4, #d.executions)
    assert.are.equal("Completed", d.summary.status)
    -- the parent link survives in the history even without the column
    assert.are.equal("tree-done-1", assert(dx:get_orchestration_descriptor("tree-done-1::sub::2")).parent_instance)
    assert.are.equal("Running", assert(dx:get_orchestration_status("wait-approve-1")).status)
    local r = assert(dx:list_instances_paginated({ page_size = 10, order_by = "UpdatedAt" }))
    assert.are.equal(10, #r.instances)
  end)
end)

describe("a store created without migrations (create_schema)", function()
  it("opens as such", function()
    local path = copy_with("DROP TABLE _sqlx_migrations;")
    local dx = assert(durox.open("sqlite:" .. path, { readonly = true }))
    assert.are.equal("create_schema", dx:info().schema_version)
    assert.are.equal(8, #assert(dx:list_instances({ status = "Failed" })))
    dx:close()
    cleanup(path)
  end)
end)

describe("events a newer runtime might write, and corrupt rows", function()
  local path, dx
  setup(function()
  path = copy_with([[
    UPDATE history SET event_type = 'FutureThing',
      event_data = replace(event_data, '"type":"ActivityCompleted"', '"type":"FutureThing","extra":{"x":[1,null]}')
      WHERE instance_id = 'completed-seq-1' AND event_id = 3;
    UPDATE history SET event_data = '{"event_id":4,"type":"ActivitySch' WHERE instance_id = 'completed-seq-1' AND event_id = 4;
    UPDATE history SET event_id = 6118911064, event_data = replace(event_data, '"event_id":8,', '"event_id":6118911064,')
      WHERE instance_id = 'list-a-01' AND event_id = 8;
    UPDATE history SET event_id = 4611686018427387904,
      event_data = replace(event_data, '"event_id":2,', '"event_id":4611686018427387904,')
      WHERE instance_id = 'wait-approve-1' AND event_id = 2;
  ]])
  dx = assert(durox.open("sqlite:" .. path, { readonly = true }))
  end)
  teardown(function()
    dx:close()
    cleanup(path)
  end)

  it("shows an unknown event type as such", function()
    local h = assert(dx:read_execution_history("completed-seq-1"))
    local ev = h[3]
    assert.are.equal("FutureThing", ev.event_type)
    assert.are.equal(2, ev.source_event_id)
    assert.are.same({ x = { 1, durox.null } }, ev.extra)
    assert.is_number(ev.timestamp_ms)
  end)

  it("returns a corrupt row as stored instead of failing", function()
    local h = assert(dx:read_execution_history("completed-seq-1"))
    local ev = h[4]
    assert.is_true(ev.corrupt)
    assert.are.equal('{"event_id":4,"type":"ActivitySch', ev.raw)
    assert.are.equal(4, ev.event_id)
    local r = assert(dx:get_execution_history_filtered({ instance_id = "completed-seq-1", include_payloads = false }))
    assert.is_true(r.events[4].corrupt)
  end)

  it("still analyses the instance around them", function()
    local d = assert(dx:get_instance_details("completed-seq-1"))
    assert.are.equal("Completed", d.summary.status)
    assert.is_true(d.statistics.total_history_events >= 6)
    assert.are.same({}, d.current_execution.pending_activities)
  end)

  it("skips rows with event ids far beyond the execution's rows (found by fuzz_history)", function()
    -- Duroxide's ids are dense; such an id would make the analysis reserve memory for every id below it
    local d = assert(dx:get_instance_details("list-a-01"))
    assert.are.equal("Completed", d.summary.status)
    assert.are.equal(7, d.statistics.total_history_events) -- 8 rows, the corrupt one skipped
    local w = assert(dx:get_instance_details("wait-approve-1"))
    assert.are.equal("Running", w.summary.status)
    assert.are.same({}, w.current_execution.pending_events) -- its subscription was the corrupt row
    local h = assert(dx:read_execution_history("list-a-01"))
    assert.are.equal(6118911064, h[#h].event_id) -- history reads still show it as stored
    assert(dx:find_stuck_instances { event_wait_threshold_ms = 0 })
  end)
end)

describe("files that are not Duroxide stores", function()
  it("are refused with one clear line, and left unchanged", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(("not a database\n"):rep(100))
    f:close()
    local ok, msg, code = durox.open("sqlite:" .. path)
    assert.is_nil(ok)
    assert.are.equal(("'%s' is not a SQLite database, so not a Duroxide store"):format(path), msg)
    assert.are.equal("UNSUPPORTED", code)
    f = assert(io.open(path, "rb"))
    assert.are.equal(("not a database\n"):rep(100), f:read("a"))
    f:close()
    os.remove(path)

    path = os.tmpname() .. ".db"
    assert(os.execute(("sqlite3 %s 'CREATE TABLE instances(instance_id TEXT)'"):format(path)))
    ok, msg, code = durox.open("sqlite:" .. path)
    assert.is_nil(ok)
    assert.are.equal(("'%s' is not a Duroxide store (table 'instances' has no column 'orchestration_name')"):format(path), msg)
    assert.are.equal("UNSUPPORTED", code)
    os.remove(path)

    ok, msg, code = durox.open("sqlite:/nonexistent/dir/store.db")
    assert.is_nil(ok)
    assert.are.equal("store '/nonexistent/dir/store.db' does not exist (No such file or directory)", msg)
    assert.are.equal("NOTFOUND", code)
    ok, msg, code = durox.open("redis://localhost")
    assert.are.equal("unrecognised store URL 'redis://localhost' (expected sqlite:PATH, sqlite::memory: or postgres://...)", msg)
    assert.are.equal("INVALID", code)
  end)
end)

describe("a live store's checkpoints", function()
  -- A read transaction left open would stop the runtime's WAL checkpoints (the WAL then grows
  -- without bound). PRAGMA wal_checkpoint(TRUNCATE) reports busy=1 while any reader holds a
  -- snapshot, so running it from another process in the middle of our calls proves we hold none.
  local path
  setup(function()
    path = copy_with("CREATE TABLE durox_test_wal(x); INSERT INTO durox_test_wal VALUES (1);")
  end)
  teardown(function() cleanup(path) end)

  local function checkpoint()
    assert(os.execute(("sqlite3 %s 'INSERT INTO durox_test_wal VALUES (2)'"):format(path)))
    local p = assert(io.popen(("sqlite3 %s 'PRAGMA wal_checkpoint(TRUNCATE)'"):format(path)))
    local out = p:read("a")
    p:close()
    return out
  end

  it("are never blocked while a predicate runs or between iterator batches", function()
    local dx = assert(durox.open("sqlite:" .. path))
    local results = {}
    local r = assert(dx:list_instances_paginated({ page_size = 5, predicate = function(s)
      if #results < 3 then results[#results + 1] = checkpoint() end
      return true
    end }))
    assert.are.equal(5, #r.instances)
    local n = 0
    for _ in dx:instances(nil, { batch_size = 10 }) do
      n = n + 1
      if n % 10 == 5 and n < 40 then results[#results + 1] = checkpoint() end
    end
    assert.are.equal(7, #results)
    for _, out in ipairs(results) do assert.are.equal("0|0|0\n", out) end
    dx:close()
  end)
end)
