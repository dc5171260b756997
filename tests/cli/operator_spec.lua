-- operator_spec.lua - what an operator meets in the first hour, beyond exit codes and formats:
-- a --name that matches nothing says which name was probably meant (a case-insensitive match,
-- else a close one), on every command that selects by name; series chooses its window from
-- the store's age (a young store shows its activity in many buckets, not one bar) and keeps
-- at most 60 buckets. (The confirmation sample needs a terminal: terminal_spec.lua.) On
-- copies of the scenario store. Binary: $DUROXLUA.
local T = require "support"
local durox, sh, json = T.durox, T.sh, T.json
local SCENARIO_DB = os.getenv("DUROX_SCENARIO_DB")

if not SCENARIO_DB then
  describe("operator", function() pending("DUROX_SCENARIO_DB is not set") end)
  return
end

local STORE = "sqlite:" .. SCENARIO_DB
local function run(argv, opts)
  opts = opts or {}
  opts.columns = opts.columns or 200
  return T.run(argv, opts)
end

describe("a --name that matches nothing", function()
  it("says when only the case differs (did you mean 'Echo'?), on list and on the bulk commands", function()
    local r = run { "--store", STORE, "list", "--name", "echo" }
    assert.are.equal(0, r.code)
    assert.are.equal("0 instances shown\n", r.out)
    assert.are.equal("duroxlua list: no orchestration is named 'echo'; did you mean 'Echo'?\n", r.err)
    -- a bulk operation selecting by name: nothing to do, and the same hint
    local db = os.tmpname()
    assert(os.execute(("cp %s %s"):format(sh(SCENARIO_DB), sh(db))))
    r = run { "--store", "sqlite:" .. db, "cancel", "--name", "ECHO", "--yes" }
    os.remove(db)
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.err:find("no orchestration is named 'ECHO'; did you mean 'Echo'?", 1, true), r.err)
  end)

  it("suggests a close name for a typo, and says nothing when the name exists or nothing is close", function()
    local r = run { "--store", STORE, "list", "--name", "Ech" }
    assert.are.equal("duroxlua list: no orchestration is named 'Ech'; did you mean 'Echo'?\n", r.err)
    r = run { "--store", STORE, "list", "--name", "Zzzzzzzzzz" }
    assert.are.equal("duroxlua list: no orchestration is named 'Zzzzzzzzzz'\n", r.err)
    -- an existing name whose instances the other filters exclude: no hint
    r = run { "--store", STORE, "list", "--name", "Echo", "--status", "Failed" }
    assert.are.equal(0, r.code)
    assert.are.equal("", r.err)
  end)
end)

describe("series without --from", function()
  it("starts the window when the store was created and keeps at most 60 buckets", function()
    local dx = assert(durox.open(STORE, { readonly = true }))
    local rt = assert(dx:get_runtime_metrics())
    local retention = dx:config().metrics_retention_hours * 3600000
    dx:close()
    local r = run { "--store", STORE, "series", "--json" }
    assert.are.equal(0, r.code, r.err)
    local s = json(r.out)
    local now = durox.now()
    assert.is_true(#s.buckets >= 1 and #s.buckets <= 60, #s.buckets)
    assert.is_true(s.to <= now and s.to >= now - 60000)
    if now - rt.store_created_at < retention then
      -- the first bucket holds the store's creation: nothing before it is shown
      assert.is_true(s.from <= rt.store_created_at and rt.store_created_at < s.from + s.bucket_ms,
        ("from %d, bucket %d, created %d"):format(s.from, s.bucket_ms, rt.store_created_at))
      -- a young store gets fine buckets: its age spread over many of them, not one bar
      local age = now - rt.store_created_at
      assert.is_true(s.bucket_ms <= math.max(60000, age / 10), ("bucket %d for an age of %d"):format(s.bucket_ms, age))
    else
      assert.is_true(s.from >= now - retention - s.bucket_ms)
    end
    -- every instance the store holds falls in the window
    local started = 0
    for _, b in ipairs(s.buckets) do started = started + b.instances_started end
    assert.are.equal(rt.total_instances_started, started)
    -- an explicit --from wins
    r = run { "--store", STORE, "series", "--json", "--from", "-2h", "--bucket", "1h" }
    assert.are.equal(0, r.code, r.err)
    s = json(r.out)
    assert.are.equal(3600000, s.bucket_ms)
    assert.is_true(s.from <= now - 2 * 3600000 + 3600000)
  end)
end)
