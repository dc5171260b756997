-- metrics_cli_spec.lua - busted spec of the built duroxlua's metrics commands (metrics, queues,
-- query, series, tree, stuck, top) and of --config: help, usage errors, JSON output equal to the
-- Lua API's answers on the same stores, and the text renderings. Needs the scenario and busy
-- fixtures ($DUROX_SCENARIO_DB, $DUROX_BUSY_DB). Binary: $DUROXLUA, default build/duroxlua.
local T = require "support"
local durox, BIN = T.durox, T.BIN
local read_file, write_file, sh, expect, json, lines = T.read_file, T.write_file, T.sh, T.expect, T.json, T.lines
local run = T.run
local SCENARIO_DB = os.getenv("DUROX_SCENARIO_DB")
local BUSY_DB = os.getenv("DUROX_BUSY_DB")
local BUSY_INFO = os.getenv("DUROX_BUSY_INFO")


-- The Lua value as its JSON would decode (what a --json output must equal).
local function as_json(v) return json(durox.encode_json(v)) end

local COMMANDS = { "metrics", "queues", "query", "series", "tree", "stuck", "top" }

describe("duroxlua metrics commands", function()
  it("have help, summaries and the common options", function()
    local all = run { "help" }
    for _, name in ipairs(COMMANDS) do
      local mod = require("durox.cli." .. name)
      expect(run { name, "--help" }, 0, mod.help, "")
      assert.are.equal("usage: duroxlua " .. name, mod.help:match("^usage: duroxlua %S+"))
      assert.truthy(mod.help:find("\n      --config FILE ", 1, true))
      assert.truthy(mod.help:find("With --json", 1, true), name .. " documents --json")
      assert.truthy(all.out:find("\n  " .. name .. " +" .. mod.summary:gsub("%p", "%%%0") .. "\n"), name)
    end
  end)

  local usage = {
    { { "metrics", "extra" }, "duroxlua metrics: unexpected argument 'extra'\n" },
    { { "queues", "--now", "soon" }, nil, "^duroxlua queues: option '%-%-now': invalid time 'soon'" },
    { { "query", "-g", "colour" }, "duroxlua query: unknown group field 'colour'\n" },
    { { "query", "-a", "median" }, "duroxlua query: unknown aggregate 'median'\n" },
    { { "series", "--chart", "x" }, nil, "^duroxlua series: option '%-%-chart' expects instances_started" },
    { { "tree" }, "duroxlua tree: missing instance id\n" },
    { { "tree", "a", "b" }, "duroxlua tree: unexpected argument 'b'\n" },
    { { "stuck", "--near-poison", "0" }, "duroxlua stuck: option '--near-poison' must be at least 1\n" },
    { { "top", "--interval", "fast" }, "duroxlua top: bad --interval 'fast' (e.g. 500ms, 2s, 1m; at least 100ms)\n" },
    { { "top", "-n", "x" }, "duroxlua top: option '--iterations' expects a non-negative integer, got 'x'\n" },
  }
  for _, c in ipairs(usage) do
    it("refuses " .. table.concat(c[1], " "), function()
      local argv = { "--store", "sqlite::memory:" }
      for _, a in ipairs(c[1]) do argv[#argv + 1] = a end
      local r = run(argv)
      expect(r, 2, "", c[2])
      if c[3] then assert.truthy(r.err:find(c[3]), r.err) end
    end)
  end

  it("run on an empty store", function()
    for _, argv in ipairs({ { "metrics" }, { "queues" }, { "query" }, { "series" }, { "stuck" }, { "top", "--once" } }) do
      local full = { "--store", "sqlite::memory:" }
      for _, a in ipairs(argv) do full[#full + 1] = a end
      local r = run(full)
      expect(r, 0, nil, "")
    end
    expect(run { "--store", "sqlite::memory:", "tree", "nope" }, 3, "", "duroxlua tree: instance 'nope' not found\n")
    expect(run { "--store", "sqlite::memory:", "stuck" }, 0, "nothing stuck\n", "")
    expect(run { "--store", "sqlite::memory:", "query" }, 0, "COUNT  AVG  SUCCESS  FAILURE  P50  P95  P99\n"
      .. "    0    -        -        -    -    -    -\n1 group of 0 instances\n", "")
  end)
end)

if not (SCENARIO_DB and BUSY_DB and BUSY_INFO) then
  describe("duroxlua metrics commands on real stores", function()
    pending("DUROX_SCENARIO_DB / DUROX_BUSY_DB are not set")
  end)
  return
end

local busy_now = json(read_file(BUSY_INFO)).killed_at_ms + 120000
local scen = assert(durox.open("sqlite:" .. SCENARIO_DB, { readonly = true }))
local busy = assert(durox.open("sqlite:" .. BUSY_DB, { readonly = true }))

local function without(t, ...)
  for _, k in ipairs({ ... }) do t[k] = nil end
  return t
end

describe("duroxlua metrics commands on real stores", function()
  it("metrics --json is the three API results", function()
    local r = run { "--store", "sqlite:" .. BUSY_DB, "metrics", "--json", "--now", tostring(busy_now) }
    expect(r, 0, nil, "")
    local j = json(r.out)
    assert.are.same(without(as_json(busy:get_runtime_metrics { now = busy_now }), "collected_at"),
      without(j.runtime, "collected_at"))
    assert.are.same(as_json(busy:get_orchestration_metrics()), j.orchestrations)
    assert.are.equal(j.runtime.total_instances_started, j.provider.total_instances_stored)
  end)

  it("metrics shows totals, health and the orchestration types", function()
    local r = run { "--store", "sqlite:" .. BUSY_DB, "metrics", "--now", tostring(busy_now) }
    expect(r, 0, nil, "")
    local m = busy:get_runtime_metrics { now = busy_now }
    assert.truthy(r.out:find(("\n  Instances: +%d started, %d running, %d completed, %d failed\n"):format(
      m.total_instances_started, m.active_instances, m.total_instances_completed, m.total_instances_failed)))
    assert.truthy(r.out:find("\n  Worker: +UNHEALTHY %(" .. m.stalled_worker_items .. " stalled%)\n"))
    assert.truthy(r.out:find("\n  Timers: +UNHEALTHY %(%d+ overdue%)\n"))
    assert.truthy(r.out:find("\nOrchestrations:\n  ORCHESTRATION +VERSION +STARTED +RUNNING +COMPLETED +FAILED +SUCCESS"
      .. " +AVG DURATION\n"))
    assert.truthy(r.out:find("\n  SlowActivity +1%.0%.0 +12 +12 +0 +0 +%- +%-\n"))
  end)

  it("queues --json is get_queue_metrics and the text is its table", function()
    local r = run { "--store", "sqlite:" .. BUSY_DB, "queues", "--json", "--now", tostring(busy_now) }
    expect(r, 0, nil, "")
    local q = busy:get_queue_metrics { now = busy_now }
    assert.are.same(without(as_json(q), "collected_at"), without(json(r.out), "collected_at"))
    r = run { "--store", "sqlite:" .. BUSY_DB, "queues", "--now", tostring(busy_now) }
    expect(r, 0, nil, "")
    local l = lines(r.out)
    assert.are.equal("QUEUE         SIZE  OLDEST  AVAILABLE  IN PROGRESS  WAITING  DELAYED  STALLED  NEAR POISON  AT LIMIT",
      l[1]:sub(1, 101))
    assert.truthy(l[3]:find(("^worker +%d "):format(q.worker_queue_size)))
    assert.truthy(l[4]:find(("^timers +%d "):format(q.timer_queue_size)))
    assert.truthy(r.out:find(("\nOrphans: +%d messages for instances that do not exist %%(%d blocking"):format(
      q.orchestrator.orphans, q.orchestrator.orphans_blocking)))
  end)

  it("query --json is query_instances with the filters of list", function()
    local r = run { "--store", "sqlite:" .. SCENARIO_DB, "query", "--json", "-g", "name,status", "--status",
                    "Completed,Failed", "-n", "5" }
    expect(r, 0, nil, "")
    assert.are.same(as_json(scen:query_instances { filter = { status = { "Completed", "Failed" } },
                                                   group_by = { "OrchestrationName", "Status" }, limit = 5 }),
      json(r.out))
  end)

  it("query prints the groups as a table", function()
    local r = run { "--store", "sqlite:" .. SCENARIO_DB, "query", "-g", "status", "-a", "count,success" }
    expect(r, 0, "STATUS     COUNT  SUCCESS\nCompleted     54   100.0%\nRunning       21        -\n"
      .. "Failed         8     0.0%\n3 groups of 83 instances\n", "")
    r = run { "--store", "sqlite:" .. SCENARIO_DB, "query", "-g", "parent", "-a", "count", "-n", "2",
              "--name", "TreeNode" }
    expect(r, 0, nil, "")
    assert.truthy(r.out:find("^PARENT +COUNT\ntree%-done%-1 +3\n%(root%) +2\n"))
    assert.truthy(r.out:find("\n%d+ groups of 23 instances %(2 shown%)\n$"))
  end)

  it("series --json is get_time_series_metrics; the chart and the table draw it", function()
    local m = scen:get_runtime_metrics()
    local from, to = m.store_created_at - 60000, m.last_activity_at + 60000
    local argv = { "--store", "sqlite:" .. SCENARIO_DB, "series", "--from", tostring(from), "--to", tostring(to),
                   "-b", "1m" }
    local function with(...)
      local t = { table.unpack(argv) }
      for _, x in ipairs({ ... }) do t[#t + 1] = x end
      return t
    end
    local r = run(with("--json"))
    expect(r, 0, nil, "")
    assert.are.same(as_json(scen:get_time_series_metrics { from = from, to = to, bucket = "1m" }), json(r.out))
    local res = json(r.out)
    r = run(with("-c", "instances_started", "--height", "4", "--ascii"))
    expect(r, 0, nil, "")
    assert.is_nil(r.out:find("[\128-\255]"), "ASCII only")
    local l = lines(r.out)
    assert.are.equal("instances_started:", l[#l - 6])
    -- the top label is the fullest bucket (all 83 starts fall in one minute only when the fixture did not cross one)
    local top, sum = 0, 0
    for _, b in ipairs(res.buckets) do
      top, sum = math.max(top, b.instances_started), sum + b.instances_started
    end
    assert.are.equal(83, sum)
    assert.truthy(l[#l - 5]:find("^" .. top .. " +|"), l[#l - 5])
    assert.truthy(l[#l - 1]:find("^   %+%-+$"))
    r = run(with("-t", "-s", "instances_started,activities_completed"))
    expect(r, 0, nil, "")
    l = lines(r.out)
    assert.are.equal("BUCKET                INSTANCES STARTED  ACTIVITIES COMPLETED", l[2])
    assert.are.equal(#res.buckets + 2, #l)
  end)

  it("tree prints the sub-orchestrations", function()
    expect(run { "--store", "sqlite:" .. SCENARIO_DB, "tree", "tree-done-1::sub::2", "--depth", "1", "--ascii" }, 0,
      "parent: tree-done-1  TreeNode  Completed\n"
        .. "tree-done-1::sub::2  TreeNode  Completed  (4 descendants)\n"
        .. "|-- tree-done-1::sub::2::sub::2  TreeNode  Completed  (1 child not shown)\n"
        .. "`-- tree-done-1::sub::2::sub::3  TreeNode  Completed  (1 child not shown)\n"
        .. "(2 of 4 descendants listed)\n", "")
    local r = run { "--store", "sqlite:" .. SCENARIO_DB, "tree", "tree-done-1", "--json" }
    expect(r, 0, nil, "")
    assert.are.same(as_json(scen:get_instance_dependencies("tree-done-1")), json(r.out))
  end)

  it("stuck lists the evidence", function()
    local now = busy_now
    local r = run { "--store", "sqlite:" .. BUSY_DB, "stuck", "--json", "--now", tostring(now), "--wait", "30s",
                    "--near-poison", "2" }
    expect(r, 0, nil, "")
    assert.are.same(as_json(busy:find_stuck_instances { now = now, event_wait_threshold_ms = 30000,
                                                        near_poison_attempts = 2 }), json(r.out))
    r = run { "--store", "sqlite:" .. BUSY_DB, "stuck", "--now", tostring(now), "--wait", "30s", "-w" }
    expect(r, 0, nil, "")
    assert.truthy(r.out:find("\nghost%-1 +%- +NotFound +[%dms ]+ago +orphan_messages +ExternalRaised %(orchestrator item %d+%)"
      .. " is addressed to an instance that does not exist; it blocks the orchestrator queue\n"))
    assert.truthy(r.out:find("\n%d+ instances stuck\n$"))
  end)

  it("top --once prints one overview; -n and --json print one object per refresh", function()
    local r = run { "--store", "sqlite:" .. BUSY_DB, "top", "--once", "--now", tostring(busy_now) }
    expect(r, 0, nil, "")
    local l = lines(r.out)
    assert.truthy(l[1]:find("^duroxlua top %- sqlite:" .. BUSY_DB:gsub("%p", "%%%0") .. " %- %d%d%d%d%-"))
    assert.truthy(l[1]:find(" %- refresh 1$"))
    assert.truthy(l[2]:find("^health: orchestrator UNHEALTHY, worker UNHEALTHY, timers UNHEALTHY$"))
    assert.is_nil(r.out:find("\27", 1, true))
    r = run { "--store", "sqlite:" .. BUSY_DB, "top", "-n", "3", "-i", "100ms", "--json" }
    expect(r, 0, nil, "")
    l = lines(r.out)
    assert.are.equal(3, #l)
    for _, line in ipairs(l) do
      local j = json(line)
      assert.are.equal(busy:get_runtime_metrics().total_instances_started, j.runtime.total_instances_started)
      assert.is_table(j.queues.orchestrator)
    end
    r = run { "--store", "sqlite:" .. BUSY_DB, "top", "-n", "2", "-i", "100ms" }
    expect(r, 0, nil, "")
    assert.truthy(r.out:find(" %- refresh 2\n"))
  end)

  it("top refreshes until interrupted and then exits 0", function()
    local out = os.tmpname()
    local cmd = ("env -u DUROX_STORE COLUMNS=120 timeout --preserve-status -s INT 1.5 %s --store %s top -i 200ms"
      .. " --no-clear >%s 2>&1 </dev/null"):format(sh(BIN), sh("sqlite:" .. BUSY_DB), sh(out))
    local ok, how, code = os.execute(cmd)
    local text = read_file(out)
    os.remove(out)
    assert.is_true(ok == true, ("%s %s: %s"):format(how, code, text))
    local frames = select(2, text:gsub("\nhealth: ", ""))
    assert.is_true(frames >= 3, text)
  end)

  it("take the configuration from --config, per command or global, and $DUROX_CONFIG", function()
    local path = os.tmpname()
    write_file(path, "return { enable_metrics = false }\n")
    local msg = "metrics are disabled (enable_metrics = false in the ManagementConfig)\n"
    -- metrics disabled: DENIED, exit 4 (refused)
    expect(run { "--store", "sqlite:" .. SCENARIO_DB, "--config", path, "metrics" }, 4, "", "duroxlua metrics: " .. msg)
    expect(run { "--store", "sqlite:" .. SCENARIO_DB, "queues", "--config", path }, 4, "", "duroxlua queues: " .. msg)
    expect(run({ "--store", "sqlite:" .. SCENARIO_DB, "series" }, { env = { DUROX_CONFIG = path } }), 4, "",
      "duroxlua series: " .. msg)
    -- analytics still work
    expect(run { "--store", "sqlite:" .. SCENARIO_DB, "--config", path, "query", "-a", "count" }, 0, nil, "")
    -- the interpreter's global dx gets it too
    expect(run { "--store", "sqlite:" .. SCENARIO_DB, "--config", path, "-e", "print(dx:config().enable_metrics)" }, 0,
      "false\n", "")
    write_file(path, "return { enable_metric = false }\n")
    expect(run { "--store", "sqlite:" .. SCENARIO_DB, "--config", path, "metrics" }, 2, "",
      "duroxlua metrics: configuration file " .. path .. ": unknown config field 'enable_metric' (did you mean 'enable_metrics'?)\n")
    os.remove(path)
  end)
end)
