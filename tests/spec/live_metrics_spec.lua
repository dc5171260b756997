-- live_metrics_spec.lua - metrics while the real runtime works: a copy of the scenario store
-- is run by live.js while new instances are started with Duroxide's own client; a handle kept
-- open across the changes must give, with fresh = true (which reads only the history rows
-- added since its last pass), exactly what a new handle computes from scratch, and must notice
-- a deletion (Duroxide's deleteInstance) and read everything again.
local durox = require "durox"
local H = require "helpers"

local HARNESS = os.getenv("DUROX_HARNESS")
if H.skip or not HARNESS then
  describe("live metrics", function() pending("DUROX_SCENARIO_DB / DUROX_HARNESS are not set") end)
  return
end

local function sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local ok = p:close()
  assert(ok, "command failed: " .. cmd .. "\n" .. out)
  return out
end

local function copy_store()
  local dir = os.tmpname()
  os.remove(dir)
  run("mkdir -p " .. sh(dir))
  local db = dir .. "/live.db"
  run(("cp %s %s"):format(sh(H.db), sh(db)))
  for _, ext in ipairs({ "-wal", "-shm" }) do
    local f = io.open(H.db .. ext, "rb")
    if f then
      f:close()
      run(("cp %s %s"):format(sh(H.db .. ext), sh(db .. ext)))
    end
  end
  return dir, db
end

-- Starts live.js on db; returns a stop function.
local function start_runtime(dir, db)
  local out = dir .. "/live.out"
  run(("node %s %s >%s 2>%s & echo $! >%s"):format(sh(HARNESS .. "/live.js"), sh(db), sh(out), sh(dir .. "/live.err"),
    sh(dir .. "/live.pid")))
  local pid = H.read_file(dir .. "/live.pid"):match("%d+")
  for _ = 1, 200 do
    local f = io.open(out, "rb")
    local s = f and f:read("a") or ""
    if f then f:close() end
    if s:find("ready") then break end
    run("sleep 0.05")
  end
  return function()
    run("kill -TERM " .. pid .. "; while kill -0 " .. pid .. " 2>/dev/null; do sleep 0.05; done")
  end
end

local function client(db, ...)
  local argv = { "node", sh(HARNESS .. "/client.js"), sh(db) }
  for _, a in ipairs({ ... }) do argv[#argv + 1] = sh(a) end
  return run(table.concat(argv, " "))
end

-- The figures that do not depend on when they were computed.
local function stable(m)
  m.collected_at, m.uptime_seconds = nil, nil
  return m
end

local function same_everything(dx, db)
  local fresh = assert(durox.open("sqlite:" .. db, { readonly = true }))
  local now = durox.now()
  assert.are.same(stable(assert(fresh:get_runtime_metrics { now = now })), stable(assert(dx:get_runtime_metrics { now = now })))
  assert.are.same(stable(assert(fresh:get_queue_metrics { now = now })), stable(assert(dx:get_queue_metrics { now = now })))
  assert.are.same(assert(fresh:get_orchestration_metrics { fresh = true }), assert(dx:get_orchestration_metrics { fresh = true }))
  fresh:close()
end

describe("metrics on a store the runtime is writing", function()
  local dir, db = copy_store()
  local dx = assert(durox.open("sqlite:" .. db, { readonly = true, config = { cache_ttl_seconds = 0 } }))
  local before = assert(dx:get_runtime_metrics())
  local completed_before = {}
  for _, s in ipairs(assert(dx:list_instances({ status = "Completed" }))) do completed_before[s.instance_id] = true end

  it("follow new history with an incremental pass that equals a full one", function()
    local stop = start_runtime(dir, db)
    local lines = {}
    for i = 1, 12 do
      lines[i] = ('{"id":"live-seq-%d","name":"Sequence","input":"{\\"value\\":%d}"}'):format(i, i)
    end
    local f = assert(io.open(dir .. "/starts.jsonl", "wb"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
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
      run("sleep 0.1")
    end
    stop()
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
    same_everything(dx, db)
  end)

  it("notice a deletion and read everything again", function()
    local m = assert(dx:get_runtime_metrics())
    client(db, "delete", "live-seq-3")
    local after = assert(dx:get_runtime_metrics())
    assert.are.equal(m.total_instances_started - 1, after.total_instances_started)
    assert.are.equal(m.total_activities_executed - 3, after.total_activities_executed)
    assert.are.equal(m.total_history_events - 8, after.total_history_events)
    same_everything(dx, db)
  end)

  it("cleans up", function()
    dx:close()
    run("rm -rf " .. sh(dir))
  end)
end)
