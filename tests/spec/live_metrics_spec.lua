-- live_metrics_spec.lua - metrics while the real runtime works: a copy of the scenario store
-- is run by live.js while new instances are started with Duroxide's own client; a handle kept
-- open across the changes must give, with fresh = true (which reads only the history rows
-- added since its last pass), exactly what a new handle computes from scratch, and must notice
-- a deletion (Duroxide's deleteInstance) and read everything again. On both providers.
local durox = require "durox"
local H = require "helpers"

local L = require "live"
if L.skip then
  describe("live metrics", function() pending("DUROX_SCENARIO_DB / DUROX_HARNESS / DUROXLUA are not set") end)
  return
end

-- Duroxide's own client; raises when it fails.
local function client(db, ...)
  local r, err = L.client(db, ...)
  assert(r ~= nil, "client.js failed: " .. tostring(err))
  return r
end

-- The figures that do not depend on when they were computed.
local function stable(m)
  m.collected_at, m.uptime_seconds = nil, nil
  return m
end

local function same_everything(dx, url)
  local fresh = assert(durox.open(url, { readonly = true }))
  local now = durox.now()
  assert.are.same(stable(assert(fresh:get_runtime_metrics { now = now })), stable(assert(dx:get_runtime_metrics { now = now })))
  assert.are.same(stable(assert(fresh:get_queue_metrics { now = now })), stable(assert(dx:get_queue_metrics { now = now })))
  assert.are.same(assert(fresh:get_orchestration_metrics { fresh = true }), assert(dx:get_orchestration_metrics { fresh = true }))
  fresh:close()
end

for _, kind in ipairs(L.kinds()) do
  describe("metrics on a store the runtime is writing (" .. kind .. ")", function()
    local dir = L.tmpdir()
    local S = L.scenario_store(kind, dir, "live_metrics")
    local db = S.target -- what live.js and client.js are given
    local dx = assert(durox.open(S.url, { readonly = true, config = { cache_ttl_seconds = 0 } }))
    local before = assert(dx:get_runtime_metrics())
    local completed_before = {}
    for _, s in ipairs(assert(dx:list_instances({ status = "Completed" }))) do completed_before[s.instance_id] = true end

    it("follow new history with an incremental pass that equals a full one", function()
      local rt = L.start_runtime(db, dir .. "/live")
      local lines = {}
      for i = 1, 12 do
        lines[i] = ('{"id":"live-seq-%d","name":"Sequence","input":"{\\"value\\":%d}"}'):format(i, i)
      end
      L.write(dir .. "/starts.jsonl", table.concat(lines, "\n") .. "\n")
      client(db, "start-many", dir .. "/starts.jsonl")
      -- the open handle follows the runtime while it works
      local ids = {}
      for i = 1, 12 do ids[i] = "live-seq-" .. i end
      local m
      for _ = 1, 200 do
        m = assert(dx:get_runtime_metrics())
        local done = 0
        for _, st in ipairs(assert(dx:get_instances_status(ids))) do
          if st.status == "Completed" then done = done + 1 end
        end
        if done == 12 then break end
        durox.sleep(100)
      end
      L.stop_runtime(rt)
      m = assert(dx:get_runtime_metrics())
      -- instances of the scenario store may also have moved on meanwhile (sleep-1h-1's timer
      -- fires once the fixture is an hour old): count them from the statuses, not by assumption
      local others = 0
      for _, s in ipairs(assert(dx:list_instances({ status = "Completed" }))) do
        if not s.instance_id:match("^live%-seq%-") and not completed_before[s.instance_id] then others = others + 1 end
      end
      assert.are.equal(before.total_instances_completed + 12 + others, m.total_instances_completed)
      if others == 0 then
        assert.are.equal(before.total_activities_executed + 36, m.total_activities_executed)
      end
      same_everything(dx, S.url)
    end)

    it("notice a deletion and read everything again", function()
      local m = assert(dx:get_runtime_metrics())
      client(db, "delete", "live-seq-3")
      local after = assert(dx:get_runtime_metrics())
      assert.are.equal(m.total_instances_started - 1, after.total_instances_started)
      assert.are.equal(m.total_activities_executed - 3, after.total_activities_executed)
      assert.are.equal(m.total_history_events - 8, after.total_history_events)
      same_everything(dx, S.url)
    end)

    it("cleans up", function()
      dx:close()
      S.drop()
      L.cleanup(dir)
    end)
  end)
end
