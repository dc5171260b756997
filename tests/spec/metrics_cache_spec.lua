-- metrics_cache_spec.lua - recomputed metrics (fresh = true) reuse the connection's digests
-- only while the store is unchanged: a write by another connection (SQLite: PRAGMA
-- data_version; PostgreSQL: the history rows after the digest's position, and a count that
-- finds deletions) or by this one must be seen. Runs on both providers, each on a private
-- copy of the scenario store the real runtime wrote; the other connection is the sqlite3 or
-- psql tool.
local durox = require "durox"
local H = require "helpers"
local L = require "live"

if H.skip then
  describe("metrics cache", function() pending("DUROX_SCENARIO_DB is not set") end)
  return
end

for _, kind in ipairs(L.kinds()) do
  describe("recomputed metrics (" .. kind .. ")", function()
    local dir, S, dx
    -- a statement of another connection, in the store's own tool
    local function other(sql)
      if kind == "sqlite" then
        local out, code, err = L.run(("sqlite3 %s %s"):format(L.q(S.path), L.q(sql)))
        assert(code == 0, "sqlite3 failed: " .. out .. err)
      else
        L.psql(S.db, "SET search_path TO dx; " .. sql)
      end
    end
    local function count(sql) return tonumber(S.rows(sql)[1].n) end
    setup(function()
      dir = L.tmpdir()
      S = L.scenario_store(kind, dir, "metrics_cache")
      dx = assert(durox.open(S.url, { max_write_share = 1 }))
    end)
    teardown(function()
      if dx then dx:close() end
      if S then S.drop() end
      L.cleanup(dir)
    end)

    it("are unchanged when nothing changed", function()
      local a = assert(dx:get_runtime_metrics({ fresh = true }))
      local b = assert(dx:get_runtime_metrics({ fresh = true }))
      a.collected_at, b.collected_at, a.uptime_seconds, b.uptime_seconds = nil, nil, nil, nil
      assert.are.same(a, b)
    end)

    it("see a deletion made by another connection", function()
      local before = assert(dx:get_runtime_metrics({ fresh = true }))
      local events = count("SELECT count(*) AS n FROM history WHERE instance_id = 'completed-seq-1'")
      assert.is_true(events > 0)
      other("DELETE FROM history WHERE instance_id='completed-seq-1';"
        .. " DELETE FROM executions WHERE instance_id='completed-seq-1';"
        .. " DELETE FROM instances WHERE instance_id='completed-seq-1'")
      local after = assert(dx:get_runtime_metrics({ fresh = true }))
      assert.are.equal(before.total_instances_started - 1, after.total_instances_started)
      assert.are.equal(before.total_instances_completed - 1, after.total_instances_completed)
      assert.are.equal(before.total_history_events - events, after.total_history_events)
    end)

    it("see history rows another connection added", function()
      local before = assert(dx:get_runtime_metrics({ fresh = true }))
      local n = count("SELECT count(*) AS n FROM history WHERE instance_id = 'list-b-01'")
      -- a copy of an instance's rows under a new id: one more completed instance with its events
      other("INSERT INTO instances (instance_id, orchestration_name, orchestration_version, current_execution_id,"
        .. " created_at, updated_at, parent_instance_id) SELECT 'list-b-01-copy', orchestration_name,"
        .. " orchestration_version, current_execution_id, created_at, updated_at, parent_instance_id FROM instances"
        .. " WHERE instance_id = 'list-b-01';"
        .. " INSERT INTO executions (instance_id, execution_id, status, output, started_at, completed_at,"
        .. " duroxide_version_major, duroxide_version_minor, duroxide_version_patch)"
        .. " SELECT 'list-b-01-copy', execution_id, status, output, started_at, completed_at, duroxide_version_major,"
        .. " duroxide_version_minor, duroxide_version_patch FROM executions WHERE instance_id = 'list-b-01';"
        .. " INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data, created_at)"
        .. " SELECT 'list-b-01-copy', execution_id, event_id, event_type, event_data, created_at FROM history"
        .. " WHERE instance_id = 'list-b-01' ORDER BY execution_id, event_id")
      local after = assert(dx:get_runtime_metrics({ fresh = true }))
      assert.are.equal(before.total_instances_started + 1, after.total_instances_started)
      assert.are.equal(before.total_instances_completed + 1, after.total_instances_completed)
      assert.are.equal(before.total_history_events + n, after.total_history_events)
      -- and what a new handle computes from scratch
      local fresh = assert(durox.open(S.url, { readonly = true }))
      local scratch = assert(fresh:get_runtime_metrics())
      fresh:close()
      for _, m in ipairs({ after, scratch }) do m.collected_at, m.uptime_seconds = nil, nil end
      assert.are.same(scratch, after)
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
end
