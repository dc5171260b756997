-- rules_spec.lua - `duroxlua rules FILE.lua` with the live runtime, on both providers: a rules
-- process SIGKILLed at random points while the runtime works and started again runs each
-- handler once per event (a handler side effect file has every key at most once, and every
-- matching event has a run record: done, or interrupted when the kill came while it ran);
-- handler errors are retried with backoff and then recorded; rate limits skip and record;
-- the two example rule files in scripts/rules/ page a receiver of ours once and restart
-- failed instances at most M an hour.
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("rules", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

local D = durox.decode_json
local root = L.harness:gsub("/tests/harness$", "")

local function lines(path)
  local t = {}
  for l in (L.read(path) or ""):gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

for _, kind in ipairs(L.kinds()) do
  describe("on " .. kind .. ", duroxlua rules", function()
    local dir, S, rt, dx

    setup(function()
      dir = L.tmpdir()
      S = L.store(kind, dir, "rules")
      rt = L.start_runtime(S.target, dir .. "/live")
      dx = assert(durox.open(S.url))
    end)

    teardown(function()
      if dx then dx:close() end
      L.stop_runtime(rt)
      if S then S.drop() end
      L.cleanup(dir)
    end)

    local function rules_cmd(file, ...)
      local parts = { L.q(L.bin), "--store", L.q(S.url), "rules", L.q(file) }
      for _, a in ipairs { ... } do parts[#parts + 1] = L.q(a) end
      return table.concat(parts, " ")
    end

    it("runs each handler once per event across SIGKILLs and restarts", function()
      local effects = dir .. "/effects.txt"
      local file = dir .. "/once.lua"
      L.write(file, ([[
rule {
  name = "record-completions",
  filter = { name_prefix = "Seq" },
  events = { "Completed" },
  from = "start",
  handler = function(ev, ctx)
    local f = assert(io.open(%q, "a"))
    f:write(ev.key, "\n")
    f:close()
  end,
}
]]):format(effects))
      local function spawn()
        return L.spawn("sh -c " .. L.q("exec " .. rules_cmd(file, "--poll", "20ms") .. " 2>>" .. L.q(dir .. "/rules.err")))
      end
      local p = spawn()
      local ids = {}
      for i = 1, 60 do
        ids[i] = ("rk-%03d"):format(i)
        assert(dx:start_orchestration(ids[i], "Sequence", ('{"value":%d}'):format(i)))
      end
      math.randomseed(7)
      local kills = 0
      local deadline = durox.now() + 60000
      while durox.now() < deadline and kills < 10 do
        durox.sleep(math.random(30, 250))
        L.kill(p, "KILL")
        L.wait_exit(p)
        kills = kills + 1
        p = spawn()
      end
      assert(dx:wait_for_instances { instances = ids, timeout = "60s" })
      local function all_recorded()
        local runs = assert(dx:list_rule_runs { rule = "record-completions", limit = 1000 })
        return #runs >= #ids and runs
      end
      local runs = L.wait_until(all_recorded, 120000, "a run record for every completion", 100)
      L.kill(p, "TERM")
      L.wait_exit(p)
      assert.are.equal(10, kills)
      local state = {}
      for _, r in ipairs(runs) do
        assert.is_nil(state[r.key], "two runs of " .. r.key)
        state[r.key] = r.state
      end
      local seen = {}
      for _, k in ipairs(lines(effects)) do
        assert.is_nil(seen[k], "the handler ran twice for " .. k)
        seen[k] = true
      end
      -- every completion: handled once (done), or interrupted by a kill (recorded, run at most once)
      local done, interrupted = 0, 0
      for _, r in ipairs(S.rows("SELECT instance_id AS i, execution_id AS x, event_id AS e FROM history WHERE"
          .. " instance_id LIKE 'rk-%' AND event_type = 'OrchestrationCompleted'",
          "SELECT instance_id AS i, execution_id AS x, event_id AS e FROM history WHERE instance_id LIKE 'rk-%'"
          .. " AND event_data::json->>'type' = 'OrchestrationCompleted'")) do
        local k = ("%s/%d/%d"):format(r.i, r.x, r.e)
        if state[k] == "done" then
          assert.is_true(seen[k], k .. " is done but its handler never ran")
          done = done + 1
        else
          assert.are.equal("interrupted", state[k], k)
          interrupted = interrupted + 1
        end
      end
      assert.are.equal(#ids, done + interrupted)
      assert.is_true(done >= #ids - kills)
    end)

    it("retries a failing handler, records what failed, and skips over the rate limit", function()
      local file = dir .. "/errors.lua"
      L.write(file, [[
local tries = {}
rule {
  name = "flaky",
  filter = { id_prefix = "fl-" },
  events = { "Completed" },
  from = "start",
  retries = 2,
  backoff = "10ms",
  handler = function(ev)
    tries[ev.instance_id] = (tries[ev.instance_id] or 0) + 1
    if ev.instance_id == "fl-always" then error("always broken") end
    if ev.instance_id == "fl-once" and tries[ev.instance_id] == 1 then error("first try fails") end
  end,
}
rule {
  name = "limited",
  filter = { id_prefix = "lim-" },
  events = { "Started" },
  from = "start",
  rate = { max = 3, per = "1h" },
  handler = function() end,
}
]])
      for _, id in ipairs { "fl-ok", "fl-once", "fl-always" } do assert(dx:start_orchestration(id, "Echo", '"x"')) end
      local lim = {}
      for i = 1, 5 do
        lim[i] = "lim-" .. i
        assert(dx:start_orchestration(lim[i], "Echo", '"y"'))
      end
      assert(dx:wait_for_instances { instances = { "fl-ok", "fl-once", "fl-always", table.unpack(lim) }, timeout = "120s" })
      local _, code, err = L.run(rules_cmd(file, "--once"))
      assert.are.equal(0, code, err)
      assert.matches("flaky: handler failed for fl%-always/1/%d+ after 3 attempts: .*always broken", err)
      local by = {}
      for _, r in ipairs(assert(dx:list_rule_runs { rule = "flaky" })) do by[r.instance_id] = r end
      assert.are.same({ "done", 1 }, { by["fl-ok"].state, by["fl-ok"].attempts })
      assert.are.same({ "done", 2 }, { by["fl-once"].state, by["fl-once"].attempts })
      assert.are.same({ "failed", 3 }, { by["fl-always"].state, by["fl-always"].attempts })
      assert.matches("always broken", by["fl-always"].error)
      local states = {}
      for _, r in ipairs(assert(dx:list_rule_runs { rule = "limited" })) do
        states[r.state] = (states[r.state] or 0) + 1
      end
      assert.are.same({ done = 3, skipped = 2 }, states)
      -- run again: nothing is handled twice
      _, code = L.run(rules_cmd(file, "--once"))
      assert.are.equal(0, code)
      assert.are.equal(3, #assert(dx:list_rule_runs { rule = "flaky" }))
      local out = L.run(rules_cmd(file, "--status"))
      assert.matches("flaky: 2 done, 1 failed", out)
      assert.matches("limited: 3 done, 2 skipped", out)
    end)

    it("ships an example that restarts failed instances at most M an hour", function()
      local ids = {}
      for i = 1, 4 do
        ids[i] = "rs-" .. i
        assert(dx:start_orchestration(ids[i], "ThrowingOrchestration", '{"why":"transient"}'))
      end
      assert(dx:wait_for_instances { instances = ids, timeout = "120s" })
      -- their OrchestrationFailed rows are in history (read independently) before the rule starts at
      -- the present, so none of them can come after its starting point
      local function failed_rows(prefix_like)
        return #S.rows("SELECT instance_id AS i FROM history WHERE instance_id LIKE '" .. prefix_like
          .. "' AND event_type = 'OrchestrationFailed'", "SELECT instance_id AS i FROM history WHERE instance_id LIKE '"
          .. prefix_like .. "' AND event_data::json->>'type' = 'OrchestrationFailed'")
      end
      L.wait_until(function() return failed_rows("rs-_") == 4 end, 120000, "the four failures in history")
      local _, code, err = L.run("DUROX_RESTART_FAILURE_KIND=application DUROX_RESTART_PER_HOUR=3"
        .. " DUROX_RESTART_ORCHESTRATION=ThrowingOrchestration " .. rules_cmd(root .. "/scripts/rules/restart-transient-failures.lua", "--once"))
      assert.are.equal(0, code, err)
      -- a new rule starts at the present: nothing restarted yet
      assert.are.equal(0, #assert(dx:list_instances { id_prefix = "rs-", status = "Running" }))
      for i = 5, 9 do
        ids[i] = "rs-" .. i
        assert(dx:start_orchestration(ids[i], "ThrowingOrchestration", '{"why":"transient"}'))
      end
      assert(dx:wait_for_instances { instances = ids, timeout = "120s" })
      L.wait_until(function() return failed_rows("rs-_") == 9 end, 120000, "the nine failures in history")
      _, code, err = L.run("DUROX_RESTART_FAILURE_KIND=application DUROX_RESTART_PER_HOUR=3"
        .. " DUROX_RESTART_ORCHESTRATION=ThrowingOrchestration " .. rules_cmd(root .. "/scripts/rules/restart-transient-failures.lua", "--once"))
      assert.are.equal(0, code, err)
      -- the restarts are queued starts: the runtime creates the new instances
      L.wait_until(function()
        return #S.rows("SELECT instance_id AS i FROM instances WHERE instance_id LIKE 'rs-%~r%'") == 3
      end, 120000, "the three restarted instances")
      local runs = assert(dx:list_rule_runs { rule = "restart-transient-failures" })
      local states, handled = {}, {}
      for _, r in ipairs(runs) do
        -- the restarted instances fail too; their runs are skipped by the exhausted limit
        if not r.instance_id:find("~r", 1, true) then
          states[r.state] = (states[r.state] or 0) + 1
          handled[#handled + 1] = r.instance_id
        end
        if r.instance_id:find("~r", 1, true) then assert.are.equal("skipped", r.state) end
      end
      -- exactly the failures after the rule's start (the first three the feed delivers restarted)
      table.sort(handled)
      assert.are.same({ "rs-5", "rs-6", "rs-7", "rs-8", "rs-9" }, handled)
      assert.are.same({ done = 3, skipped = 2 }, states)
    end)

    it("ships an example that pages the on-call webhook once when failures pass N in the window", function()
      local log, out = dir .. "/pages.jsonl", dir .. "/recv.out"
      local pipe = assert(io.popen(("exec node %s --log %s --secret s3 >%s 2>&1"):format(
        L.q(L.harness .. "/receiver.js"), L.q(log), L.q(out)), "w"))
      local port = L.wait_until(function() return tonumber((L.read(out) or ""):match("listening (%d+)")) end, 10000,
        "the receiver", 20)
      local env = ("DUROX_ONCALL_WEBHOOK=http://127.0.0.1:%d/page DUROX_ONCALL_SECRET=s3"
        .. " DUROX_PAYMENT_ORCHESTRATION=FailByActivity DUROX_PAYMENT_FAILURE_THRESHOLD=2 "):format(port)
      local file = root .. "/scripts/rules/page-payment-failures.lua"
      local _, code, err = L.run(env .. rules_cmd(file, "--once")) -- starts at the present
      assert.are.equal(0, code, err)
      local ids = {}
      for i = 1, 5 do
        ids[i] = "pay-" .. i
        assert(dx:start_orchestration(ids[i], "FailByActivity", '{"reason":"card declined"}'))
      end
      assert(dx:wait_for_instances { instances = ids, timeout = "120s" })
      _, code, err = L.run(env .. rules_cmd(file, "--once"))
      assert.are.equal(0, code, err)
      _, code, err = L.run(env .. rules_cmd(file, "--once"))
      assert.are.equal(0, code, err)
      pipe:close()
      local pages = {}
      for _, l in ipairs(lines(log)) do pages[#pages + 1] = D(l) end
      assert.are.equal(1, #pages)
      assert.is_true(pages[1].signature_ok)
      local body = D(pages[1].body)
      assert.are.equal(5, body.failures) -- the store's count when the first failure was handled
      assert.are.equal("FailByActivity", body.orchestration)
      local runs = assert(dx:list_rule_runs { rule = "page-payment-failures" })
      assert.are.equal(5, #runs)
    end)
  end)
end
