-- metrics_cache_spec.lua - recomputed metrics (fresh = true) reuse the connection's digests
-- only while the store is unchanged: a write by another connection (PRAGMA data_version) or by
-- this one must be seen. Runs on a private copy of the scenario store.
local durox = require "durox"
local H = require "helpers"

if H.skip then
  describe("metrics cache", function() pending("DUROX_SCENARIO_DB is not set") end)
  return
end

local function copy_store()
  local path = os.tmpname() .. ".db"
  assert(os.execute(("cp '%s' '%s'"):format(H.db, path)))
  for _, ext in ipairs({ "-wal", "-shm" }) do
    if io.open(H.db .. ext) then assert(os.execute(("cp '%s%s' '%s%s'"):format(H.db, ext, path, ext))) end
  end
  return path
end

describe("recomputed metrics", function()
  local path, dx
  setup(function()
    path = copy_store()
    dx = assert(durox.open("sqlite:" .. path, { max_write_share = 1 }))
  end)
  teardown(function()
    dx:close()
    for _, ext in ipairs({ "", "-wal", "-shm" }) do os.remove(path .. ext) end
  end)

  it("are unchanged when nothing changed", function()
    local a = assert(dx:get_runtime_metrics({ fresh = true }))
    local b = assert(dx:get_runtime_metrics({ fresh = true }))
    a.collected_at, b.collected_at, a.uptime_seconds, b.uptime_seconds = nil, nil, nil, nil
    assert.are.same(a, b)
  end)

  it("see a deletion made by another connection", function()
    local before = assert(dx:get_runtime_metrics({ fresh = true }))
    local events = H.sql("SELECT count(*) AS n FROM history WHERE instance_id = 'completed-seq-1'")[1].n
    assert(os.execute(("sqlite3 '%s' \"DELETE FROM history WHERE instance_id='completed-seq-1';"
      .. " DELETE FROM executions WHERE instance_id='completed-seq-1';"
      .. " DELETE FROM instances WHERE instance_id='completed-seq-1'\""):format(path)))
    local after = assert(dx:get_runtime_metrics({ fresh = true }))
    assert.are.equal(before.total_instances_started - 1, after.total_instances_started)
    assert.are.equal(before.total_instances_completed - 1, after.total_instances_completed)
    assert.are.equal(before.total_history_events - events, after.total_history_events)
  end)

  it("see a purge made through this connection", function()
    local before = assert(dx:get_runtime_metrics({ fresh = true }))
    local r = assert(dx:purge_instances({ instances = { "list-a-01" } }))
    assert.are.equal(1, #r.purged_instances)
    local after = assert(dx:get_runtime_metrics({ fresh = true }))
    assert.are.equal(before.total_instances_started - 1, after.total_instances_started)
    assert.are.equal(before.total_instances_completed - 1, after.total_instances_completed)
  end)
end)
