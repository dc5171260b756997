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

-- promtool is required, never skipped: CI installs it (scripts/setup.sh: Debian's prometheus)
local promtool = (L.run("command -v promtool"))
promtool = promtool:match("%S") and promtool:gsub("%s+$", "") or nil
local function promtool_check(file)
  assert(promtool, "promtool is not installed (scripts/setup.sh installs Debian's prometheus package)")
  local pout, pcode, perr = L.run(("%s check metrics < %s"):format(L.q(promtool), L.q(file)))
  assert.are.equal(0, pcode, pout .. perr)
  assert.are.equal("", pout .. perr)
end

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
      local f = dir .. "/m.prom"
      L.write(f, out)
      promtool_check(f)
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
      local p = L.spawn(("%s --store %s exporter --listen 127.0.0.1:0 --port-file %s --cache 1h"):format(L.q(L.bin),
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
      promtool_check(body)
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

    local function exporter(name, ...)
      local pf = dir .. "/" .. name .. ".port"
      local parts = { L.q(L.bin), "--store", L.q(S.url), "exporter", "--listen", "127.0.0.1:0", "--port-file", L.q(pf) }
      for _, a in ipairs { ... } do parts[#parts + 1] = L.q(a) end
      local p = L.spawn(table.concat(parts, " "))
      local port = L.wait_until(function() return tonumber((L.read(pf) or ""):match("%d+")) end, 30000,
        "the exporter to listen", 20)
      p.scrape = function()
        local body = dir .. "/" .. name .. ".body"
        local code = L.run(("curl -s --max-time 120 -o %s -w '%%{http_code}' http://127.0.0.1:%d/metrics"):format(
          L.q(body), port))
        return code, L.read(body) or ""
      end
      return p
    end

    it("collects again once --cache has passed" .. (kind == "postgres"
        and ", and answers 503 with duroxlua_up 0 past --timeout on a locked store" or ""),
      function()
        local cached, fresh = exporter("cached", "--cache", "1h"), exporter("fresh", "--cache", "0s", "--timeout", "1s")
        local procs = { cached, fresh }
        finally(function() -- never leave a process behind, also when an assertion fails
          for _, p in ipairs(procs) do
            if p.pipe then
              L.kill(p, "TERM")
              L.wait_exit(p)
            end
          end
        end)
        local c1, t1 = cached.scrape()
        local f1, u1 = fresh.scrape()
        assert.are.same({ "200", "200" }, { c1, f1 })
        local q0 = parse(u1).duroxide_orchestrator_queue_depth
        assert.are.equal(parse(t1).duroxide_orchestrator_queue_depth, q0)
        -- one more queued start (no runtime works on this store)
        local w = assert(durox.open(S.url, { max_write_share = 1 }))
        assert(w:start_orchestration("prom-cache-1", "Echo", '"x"'))
        w:close()
        local c2, t2 = cached.scrape()
        local f2, u2 = fresh.scrape()
        assert.are.same({ "200", "200" }, { c2, f2 })
        assert.are.equal(t1, t2) -- within its cache window: the same collection, byte for byte
        assert.are.equal(q0 + 1, parse(u2).duroxide_orchestrator_queue_depth)
        if S.kind == "postgres" then
          -- a lock that blocks readers too, held by another session: the collection gives up after
          -- --timeout (PostgreSQL's lock_timeout). SQLite has no such case while the exporter has the
          -- store open: WAL readers never wait for the runtime's write lock, and the exclusive locking
          -- mode that would stop them cannot be taken while another connection is open.
          local holder = L.spawn(("psql -X -q %s -c %s"):format(L.q((S.url:gsub("&schema=dx", ""))),
            L.q("BEGIN; LOCK TABLE dx.instances IN ACCESS EXCLUSIVE MODE; LOCK TABLE dx.history IN ACCESS EXCLUSIVE"
              .. " MODE; SELECT pg_sleep(600); COMMIT;")))
          procs[#procs + 1] = holder
          L.wait_until(function()
            return #S.rows(nil, "SELECT 1 AS one FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE"
              .. " c.relname = 'history' AND l.mode = 'AccessExclusiveLock' AND l.granted") == 1
          end, 30000, "psql to take the locks", 50)
          local f3, u3 = fresh.scrape()
          S.rows(nil, "SELECT pg_cancel_backend(pid) AS c FROM pg_stat_activity WHERE datname = current_database()"
            .. " AND query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()")
          L.wait_exit(holder)
          assert.are.equal("503", f3)
          assert.are.equal(0, parse(u3).duroxlua_up)
          local f4, u4 = fresh.scrape()
          assert.are.equal("200", f4)
          assert.are.equal(1, parse(u4).duroxlua_up)
        end
      end)
  end)
end
