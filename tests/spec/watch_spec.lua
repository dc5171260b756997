-- watch_spec.lua - dx:watch_instances and `duroxlua watch` with the live runtime, on both
-- providers: every transition of the watched instances (NotFound -> Running -> terminal,
-- continue-as-new executions, custom status changes), in order, exactly as the instances'
-- history shows them (computed here from the rows psql or sqlite3 return); the watch ends when
-- all are terminal; a resumed watch (SIGKILLed `duroxlua watch --cursor-file`) misses nothing;
-- a purge under the watch gives a reset and the purged instance's NotFound.
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("watch", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

local D = durox.decode_json

-- The transitions of instance id from its history rows: "old>new@exec" and "custom:<value>".
local function transitions(S, id)
  local rows = {}
  for _, r in ipairs(S.history()) do
    if r.i == id then rows[#rows + 1] = r end
  end
  table.sort(rows, function(a, b) return a.x < b.x or (a.x == b.x and a.e < b.e) end)
  local out, exec, phase, status, custom = {}, 0, 0, "NotFound", nil
  for _, r in ipairs(rows) do
    local t = r.t
    if t == "CustomStatusUpdated" then
      local v = D(r.d).status
      if v == durox.null then v = nil end
      if v ~= custom then
        custom = v
        out[#out + 1] = "custom:" .. tostring(v)
      end
    else
      local new = ({ OrchestrationStarted = "Running", OrchestrationCompleted = "Completed",
        OrchestrationFailed = "Failed", OrchestrationContinuedAsNew = "ContinuedAsNew" })[t]
      local p = t == "OrchestrationStarted" and 1 or 2
      if new and (r.x > exec or (r.x == exec and p > phase)) then
        out[#out + 1] = ("%s>%s@%d"):format(status, new, r.x)
        exec, phase, status = r.x, p, new
      end
    end
  end
  return out
end

local function as_text(c)
  if c.custom_status_changed then return "custom:" .. tostring(c.custom_status) end
  return ("%s>%s@%d"):format(c.old_status, c.new_status, c.execution_id)
end

for _, kind in ipairs(L.kinds()) do
  describe("on " .. kind .. ", watching instances of the live runtime", function()
    local dir, S, rt, dx

    setup(function()
      dir = L.tmpdir()
      S = L.store(kind, dir, "watch")
      rt = L.start_runtime(S.target, dir .. "/live")
      dx = assert(durox.open(S.url))
    end)

    teardown(function()
      if dx then dx:close() end
      L.stop_runtime(rt)
      if S then S.drop() end
      L.cleanup(dir)
    end)

    local function waiting(id)
      return L.wait_until(function()
        local d = dx:get_instance_details(id)
        return d and d.current_execution and #d.current_execution.pending_events > 0
      end, 30000, id .. " to wait for its event")
    end

    it("reports every transition and custom status change, then ends when all are terminal", function()
      local ids = { "wa-1", "wa-loop", "wa-custom", "wa-seq", "wa-cancel" }
      local w = assert(dx:watch_instances { instance_ids = ids, poll_interval_ms = 20, timeout_ms = 60000 })
      assert(dx:start_orchestration("wa-1", "WaitApprove", "null"))
      assert(dx:start_orchestration("wa-loop", "ContinueLoop", '{"n":0,"max":3}'))
      assert(dx:start_orchestration("wa-custom", "CustomStatusWaiter", '{"status":"phase1"}'))
      assert(dx:start_orchestration("wa-seq", "Sequence", '{"value":5}'))
      assert(dx:start_orchestration("wa-cancel", "WaitApprove", "null"))
      local got, initial = {}, {}
      for _, id in ipairs(ids) do got[id] = {} end
      local raised = false
      while true do
        local c = w:next()
        if not c then break end
        assert.are.equal("change", c.kind)
        if c.initial then
          initial[#initial + 1] = c.instance_id .. " " .. c.new_status
        else
          table.insert(got[c.instance_id], as_text(c))
        end
        if not raised and #got["wa-1"] >= 1 and #got["wa-custom"] >= 2 and #got["wa-cancel"] >= 1 then
          raised = true
          waiting("wa-1")
          waiting("wa-custom")
          waiting("wa-cancel")
          assert(dx:raise_event("wa-1", "Approve", '"yes"'))
          assert(dx:raise_event("wa-custom", "Approve", '"ok"'))
          assert(dx:cancel_instance("wa-cancel", "watch-test"))
        end
      end
      w:close()
      table.sort(initial)
      assert.are.same({ "wa-1 NotFound", "wa-cancel NotFound", "wa-custom NotFound", "wa-loop NotFound",
        "wa-seq NotFound" }, initial)
      for _, id in ipairs(ids) do
        assert.are.same(transitions(S, id), got[id], id)
      end
      -- the shapes the runtime produced
      assert.are.same({ "NotFound>Running@1", "Running>ContinuedAsNew@1", "ContinuedAsNew>Running@2",
        "Running>ContinuedAsNew@2", "ContinuedAsNew>Running@3", "Running>Completed@3" }, got["wa-loop"])
      assert.are.equal("NotFound>Running@1", got["wa-cancel"][1])
      assert.are.equal("Running>Failed@1", got["wa-cancel"][#got["wa-cancel"]])
      assert.is_true(#got["wa-custom"] >= 3)
    end)

    it("answers at once for instances already terminal, with their state", function()
      local w = assert(dx:watch_instances { instance_ids = { "wa-seq", "wa-loop" } })
      local items = {}
      for c in w do items[#items + 1] = c.instance_id .. " " .. c.new_status .. " " .. tostring(c.initial) end
      table.sort(items)
      assert.are.same({ "wa-loop Completed true", "wa-seq Completed true" }, items)
    end)

    it("gives a reset and NotFound when a watched instance is purged", function()
      assert(dx:start_orchestration("wp-2", "Echo", '"x"'))
      assert(dx:wait_for_orchestration("wp-2", "30s"))
      assert(dx:start_orchestration("wp-1", "WaitApprove", "null")) -- its rows come after wp-2's
      waiting("wp-1")
      local w = assert(dx:watch_instances { instance_ids = { "wp-1", "wp-2" }, poll_interval_ms = 20,
        verify_ms = 1, timeout_ms = 20000 })
      local a, b = w:next(), w:next()
      assert.is_true(a.initial and b.initial)
      assert(dx:purge_instances { instances = { "wp-2" } })
      local r = assert(w:next())
      assert.are.same({ "reset", "deleted" }, { r.kind, r.reset })
      local c = assert(w:next())
      assert.are.same({ "wp-2", "Completed", "NotFound" }, { c.instance_id, c.old_status, c.new_status })
      w:close()
    end)

    it("refuses a cursor of another set of instances, and raises on misuse", function()
      local w = assert(dx:watch_instances { instance_ids = { "wa-seq" } })
      local c = assert(w:next())
      w:close()
      local ok, err, code = dx:watch_instances { instance_ids = { "wa-1" }, cursor = c.cursor }
      assert.is_nil(ok)
      assert.are.equal("INVALID", code)
      assert.are.equal("cursor was issued for a different set of instances; start again without it", err)
      assert.has_error(function() dx:watch_instances {} end, "watch option field 'instance_ids' is required")
      assert.has_error(function() dx:watch_instances { instance_ids = {} } end,
        "watch option field 'instance_ids' is empty")
    end)

    it("resumes a killed `duroxlua watch --cursor-file` without missing a transition", function()
      local ids = { "wk-1", "wk-2", "wk-3" }
      local cf, out = dir .. "/watch.cursor", dir .. "/watch.jsonl"
      local function spawn()
        return L.spawn("sh -c " .. L.q(("exec %s --store %s watch --json --poll 20ms --cursor-file %s %s >>%s")
          :format(L.q(L.bin), L.q(S.url), L.q(cf), table.concat(ids, " "), L.q(out))))
      end
      local p = spawn()
      L.wait_until(function() return L.read(cf) end, 10000, "the first cursor", 20)
      for i, id in ipairs(ids) do assert(dx:start_orchestration(id, "ContinueLoop", ('{"n":0,"max":%d}'):format(i + 2))) end
      -- kill it a few times while the instances run
      for _ = 1, 3 do
        durox.sleep(150)
        L.kill(p, "KILL")
        L.wait_exit(p)
        p = spawn()
      end
      assert(dx:wait_for_instances { instances = ids, timeout = "60s" })
      L.wait_until(function() return not L.alive(p) end, 20000, "the watch to end")
      L.wait_exit(p)
      local got = {}
      for _, id in ipairs(ids) do got[id] = {} end
      local seen = {}
      for l in (L.read(out) or ""):gmatch("[^\n]+") do
        local c = D(l)
        if c.kind == "change" and not c.initial then
          local t = as_text(c)
          local k = c.instance_id .. " " .. t
          if not seen[k] then -- at least once: a transition may come again after a kill
            seen[k] = true
            table.insert(got[c.instance_id], t)
          end
        end
      end
      for _, id in ipairs(ids) do assert.are.same(transitions(S, id), got[id], id) end
    end)
  end)
end
