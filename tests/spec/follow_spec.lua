-- follow_spec.lua - `duroxlua events --follow` as an operator runs it, against the live
-- runtime on both providers, with a workload of DUROX_FOLLOW_INSTANCES (default 2000)
-- instances: a follower started before the workload prints every expected event exactly once
-- and every execution's events in order; a second follower, SIGKILLed at 10 random points and
-- started again each time with --cursor-file alone, misses nothing (at least once, the same key
-- for the same event). Expected events come from the raw history rows (sqlite3 or psql) mapped
-- as docs/streams.md defines.
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("follow", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

local D = durox.decode_json
local N = tonumber(os.getenv("DUROX_FOLLOW_INSTANCES") or "2000")

local MAP = { OrchestrationStarted = "Started", OrchestrationCompleted = "Completed",
  OrchestrationContinuedAsNew = "ContinuedAsNew", TimerFired = "TimerFired", ExternalEvent = "EventReceived",
  ExternalEventPersistent = "EventReceived", ActivityCompleted = "ActivityCompleted",
  ActivityFailed = "ActivityFailed" }

-- key -> event type of every InstanceEvent of the instances with prefix.
local function expected(S, prefix)
  local out, n = {}, 0
  local sched = {}
  local rows = S.history()
  for _, r in ipairs(rows) do
    if r.t == "ActivityScheduled" then sched[("%s/%d/%d"):format(r.i, r.x, r.e)] = D(r.d).name end
  end
  for _, r in ipairs(rows) do
    if r.i:sub(1, #prefix) == prefix then
      local t = MAP[r.t]
      if r.t == "OrchestrationFailed" then
        local app = D(r.d).details.Application
        t = (app and type(app.kind) == "table" and app.kind.Cancelled) and "Cancelled" or "Failed"
      elseif t == "ActivityCompleted" or t == "ActivityFailed" then
        local name = sched[("%s/%d/%d"):format(r.i, r.x, D(r.d).source_event_id)]
        if name and name:match("^__duroxide_syscall:") then t = nil end
      end
      if t then
        out[("%s/%d/%d"):format(r.i, r.x, r.e)] = t
        n = n + 1
      end
    end
  end
  return out, n
end

-- The events of a follower's output, every line a JSON object. killed: the follower was
-- SIGKILLed, so its output may end in a fragment (the kernel cuts a write short at a fatal
-- signal), which is left out; its events were not acknowledged (the cursor is saved only after
-- the write), so the next run delivers them again. Any other line that is not JSON fails.
local function read_events(path, killed, list)
  list = list or {}
  local text = L.read(path) or ""
  if killed and text ~= "" and text:sub(-1) ~= "\n" then text = text:gsub("[^\n]*$", "") end
  for l in text:gmatch("[^\n]+") do
    local ok, ev = pcall(D, l)
    assert(ok and type(ev) == "table", ("%s: a line that is not JSON: %s"):format(path, l:sub(1, 200)))
    if ev.kind == "event" then list[#list + 1] = ev end
  end
  return list
end

for _, kind in ipairs(L.kinds()) do
  describe("on " .. kind .. ", duroxlua events --follow under a workload of " .. N .. " instances", function()
    local dir, S, rt, dx

    setup(function()
      dir = L.tmpdir()
      S = L.store(kind, dir, "follow")
      rt = L.start_runtime(S.target, dir .. "/live")
      dx = assert(durox.open(S.url))
    end)

    teardown(function()
      if dx then dx:close() end
      L.stop_runtime(rt)
      if S then S.drop() end
      L.cleanup(dir)
    end)

    it("prints every event once, in per-execution order; a SIGKILLed follower resumes and misses nothing", function()
      local out1, out2, cf = dir .. "/f1.jsonl", dir .. "/f2.jsonl", dir .. "/f2.cursor"
      local base = ("exec %s --store %s events --follow --json --from now --poll 20ms"):format(L.q(L.bin), L.q(S.url))
      local f1 = L.spawn("sh -c " .. L.q(base .. " --cursor-file " .. L.q(dir .. "/f1.cursor") .. " >" .. L.q(out1)))
      -- each run of the killed follower writes a file of its own (out2.1, out2.2, ...)
      local runs2 = 0
      local function spawn2()
        runs2 = runs2 + 1
        return L.spawn("sh -c " .. L.q(base .. " --cursor-file " .. L.q(cf) .. " >" .. L.q(out2 .. "." .. runs2)))
      end
      local function events2(running)
        local list = {}
        for r = 1, runs2 do read_events(out2 .. "." .. r, running or r < runs2, list) end
        return list
      end
      local f2 = spawn2()
      L.wait_until(function() return L.read(dir .. "/f1.cursor") and L.read(cf) end, 20000, "both followers", 20)
      -- the workload: mostly activities, some continue-as-new, failures, timers and events
      local ids = {}
      local t0 = durox.now()
      math.randomseed(11)
      local kills, next_kill = 0, durox.now() + math.random(100, 800)
      for i = 1, N do
        local id = ("fw-%05d"):format(i)
        ids[#ids + 1] = id
        local m = i % 10
        if m == 0 then
          assert(dx:start_orchestration(id, "ContinueLoop", '{"n":0,"max":2}'))
        elseif m == 1 then
          assert(dx:start_orchestration(id, "ThrowingOrchestration", '{"why":"follow"}'))
        elseif m == 2 then
          assert(dx:start_orchestration(id, "Sleeper", '{"ms":20}'))
        else
          assert(dx:start_orchestration(id, "Sequence", ('{"value":%d}'):format(i)))
        end
        if kills < 10 and durox.now() >= next_kill then
          L.kill(f2, "KILL")
          L.wait_exit(f2)
          kills = kills + 1
          f2 = spawn2()
          next_kill = durox.now() + math.random(100, 800)
        end
      end
      for i = 1, #ids, 1000 do -- bulk requests take at most max_bulk_operations (1000) targets
        local w = assert(dx:wait_for_instances { instances = { table.unpack(ids, i, math.min(#ids, i + 999)) },
          timeout = "600s", poll_interval = 200 })
        assert.is_true(w.satisfied, "the workload did not finish")
      end
      while kills < 10 do -- the rest of the kills, if the workload was quicker than them
        L.kill(f2, "KILL")
        L.wait_exit(f2)
        kills = kills + 1
        f2 = spawn2()
        durox.sleep(math.random(50, 300))
      end
      io.stderr:write(("follow (%s): %d instances in %.1f s\n"):format(kind, N, (durox.now() - t0) / 1000))
      local want, nwant = expected(S, "fw-")
      local function caught_up(list)
        local got = {}
        for _, ev in ipairs(list) do got[ev.key] = true end
        for k in pairs(want) do if not got[k] then return false end end
        return true
      end
      -- (the running follower's last line may be half written while it is read: only complete
      -- lines count here)
      L.wait_until(function() return caught_up(read_events(out1, true)) and caught_up(events2(true)) end, 120000,
        "both followers to catch up", 200)
      L.kill(f1, "TERM")
      L.kill(f2, "TERM")
      L.wait_exit(f1)
      L.wait_exit(f2)
      assert.are.equal(10, kills)
      -- the follower that ran throughout: exactly the expected events, each once, in order
      local seen, last, count = {}, {}, 0
      for _, ev in ipairs(read_events(out1)) do
        if ev.instance_id:sub(1, 3) == "fw-" then
          assert.is_nil(seen[ev.key], "twice: " .. ev.key)
          seen[ev.key] = true
          assert.are.equal(want[ev.key], ev.event_type, ev.key)
          local ex = ev.instance_id .. "/" .. ev.execution_id
          assert.is_true((last[ex] or 0) < ev.event_id, "out of order: " .. ev.key)
          last[ex] = ev.event_id
          count = count + 1
        end
      end
      assert.are.equal(nwant, count)
      -- the killed one: everything at least once, and a key always names the same event
      local content, got = {}, 0
      for _, ev in ipairs(events2()) do
        local id = ("%s|%d|%d|%s"):format(ev.instance_id, ev.execution_id, ev.event_id, ev.event_type)
        assert.is_true(content[ev.key] == nil or content[ev.key] == id, "two events under " .. ev.key)
        if not content[ev.key] then got = got + 1 end
        content[ev.key] = id
      end
      for k, t in pairs(want) do
        assert.is_truthy(content[k], "missed after the kills: " .. k)
        assert.matches("|" .. t .. "$", content[k])
      end
      assert.are.equal(nwant, got)
    end)
  end)
end
