-- prometheus_spec.lua - `duroxlua metrics --format prometheus` (and --out) and `duroxlua
-- exporter` on both providers: promtool (Prometheus' own checker) accepts the exposition;
-- Duroxide's gauges equal what Duroxide's own client reports on the same store
-- (getQueueDepths, getSystemMetrics); the per-orchestration gauges equal the store's rows
-- counted with sqlite3 or psql; the exporter answers curl (a real HTTP client) with the same
-- text, caches, and refuses what it does not serve.
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("prometheus", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

local promtool = (L.run("command -v promtool"))
promtool = promtool:match("%S") and promtool:gsub("%s+$", "") or nil

-- name{labels} -> value of an exposition.
local function parse(text)
  local v = {}
  for line in text:gmatch("[^\n]+") do
    if not line:match("^#") then
      local key, val = line:match("^(%S+) (%S+)$")
      assert(key, "not a sample line: " .. line)
      v[key] = tonumber(val) or val
    end
  end
  return v
end

local function duroxlua(S, ...)
  local parts = { L.q(L.bin), "--store", L.q(S.url) }
  for _, a in ipairs { ... } do parts[#parts + 1] = L.q(a) end
  return L.run(table.concat(parts, " "))
end

for _, kind in ipairs(L.kinds()) do
  describe("on " .. kind .. ", the Prometheus exposition", function()
    local dir, S

    setup(function()
      dir = L.tmpdir()
      S = L.scenario_store(kind, dir, "prom")
    end)

    teardown(function()
      if S then S.drop() end
      L.cleanup(dir)
    end)

    it("passes promtool and agrees with Duroxide's own client and the store's rows", function()
      local out, code, err = duroxlua(S, "metrics", "--format", "prometheus")
      assert.are.equal(0, code, err)
      if promtool then
        local f = dir .. "/m.prom"
        L.write(f, out)
        local pout, pcode, perr = L.run(("%s check metrics < %s"):format(L.q(promtool), L.q(f)))
        assert.are.equal(0, pcode, pout .. perr)
        assert.are.equal("", pout .. perr)
      end
      local v = parse(out)
      local dm = assert(L.client(S.target, "metrics"))
      assert.are.equal(dm.queueDepths.orchestratorQueue, v.duroxide_orchestrator_queue_depth)
      assert.are.equal(dm.queueDepths.workerQueue, v.duroxide_worker_queue_depth)
      assert.are.equal(dm.systemMetrics.runningInstances, v.duroxide_active_orchestrations)
      assert.are.equal(dm.systemMetrics.totalInstances, v.duroxlua_instances_stored)
      assert.are.equal(dm.systemMetrics.totalExecutions, v.duroxlua_executions_stored)
      assert.are.equal(dm.systemMetrics.totalEvents, v.duroxlua_history_events_stored)
      assert.are.equal(dm.systemMetrics.completedInstances, v['duroxlua_instances_by_status{status="Completed"}'])
      assert.are.equal(dm.systemMetrics.failedInstances, v['duroxlua_instances_by_status{status="Failed"}'])
      local rows = S.rows("SELECT i.orchestration_name AS n, coalesce(e.status, 'Unknown') AS s, count(*) AS c"
        .. " FROM instances i LEFT JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id ="
        .. " i.current_execution_id GROUP BY 1, 2")
      assert.is_true(#rows > 10)
      for _, r in ipairs(rows) do
        assert.are.equal(r.c, v[('duroxlua_instances{orchestration="%s",status="%s"}'):format(r.n, r.s)], r.n .. " " .. r.s)
      end
      -- no instance ids in any label, every family a gauge
      for name in pairs(v) do assert.is_nil(name:match("instance_id")) end
      for t in out:gmatch("# TYPE %S+ (%S+)") do assert.are.equal("gauge", t) end
      assert.is_nil(out:match("_total[{ ]"))
      assert.are.equal(1, v.duroxlua_up)
    end)

    it("writes --out atomically for the textfile collector", function()
      local f = dir .. "/durox.prom"
      L.write(f, "old\n")
      local out, code, err = duroxlua(S, "metrics", "--format", "prometheus", "--out", f)
      assert.are.equal(0, code, err)
      assert.are.equal("", out)
      local text = L.read(f)
      assert.matches("^# HELP duroxide_orchestrator_queue_depth", text)
      assert.is_nil(io.open(f .. ".tmp", "rb"))
      local a, b = parse(text), parse((duroxlua(S, "metrics", "--format", "prometheus")))
      for k in pairs(b) do -- the figures that move with the clock aside
        if k:match("seconds") and not k:match("average") then a[k], b[k] = nil, nil end
      end
      assert.are.same(b, a)
      local _, c2, e2 = duroxlua(S, "metrics", "--out", f)
      assert.are.equal(2, c2)
      assert.matches("%-%-out needs %-%-format prometheus", e2)
    end)

    it("is served by `duroxlua exporter` to a real HTTP client", function()
      local pf = dir .. "/port"
      local p = L.spawn(("%s --store %s exporter --listen 127.0.0.1:0 --port-file %s --cache 2s"):format(L.q(L.bin),
        L.q(S.url), L.q(pf)))
      local port = L.wait_until(function() return tonumber((L.read(pf) or ""):match("%d+")) end, 10000,
        "the exporter to listen", 20)
      local url = ("http://127.0.0.1:%d"):format(port)
      local hdr, body = dir .. "/h", dir .. "/b"
      local _, code = L.run(("curl -s -D %s -o %s %s/metrics"):format(L.q(hdr), L.q(body), url))
      assert.are.equal(0, code)
      local h = L.read(hdr)
      assert.matches("^HTTP/1.1 200", h)
      assert.matches("Content%-Type: text/plain; version=0.0.4; charset=utf%-8", h)
      local text = L.read(body)
      if promtool then
        local pout, pcode = L.run(("%s check metrics < %s"):format(L.q(promtool), L.q(body)))
        assert.are.equal(0, pcode, pout)
      end
      local served = parse(text)
      local direct = parse((duroxlua(S, "metrics", "--format", "prometheus")))
      for k in pairs(direct) do -- the figures that move with the clock aside
        if k:match("seconds") and not k:match("average") then served[k], direct[k] = nil, nil end
      end
      assert.are.same(direct, served)
      -- within the cache window the same collection is served
      local again = L.run(("curl -s %s/metrics"):format(url))
      assert.are.equal(text, again)
      assert.are.equal("404", (L.run(("curl -s -o /dev/null -w '%%{http_code}' %s/nope"):format(url))))
      assert.are.equal("405", (L.run(("curl -s -o /dev/null -w '%%{http_code}' -X POST %s/metrics"):format(url))))
      assert.are.equal("ok\n", (L.run(("curl -s %s/healthz"):format(url))))
      L.kill(p, "TERM")
      L.wait_exit(p)
    end)
  end)
end
