-- index_spec.lua - the visibility index (docs/index.md). First correctness: on the scenario
-- store, the busy store caught mid-flight and a 100,000-instance store derived from real rows,
-- every listing filter, order, direction and page, count, group-by, time series and metric is
-- asked of a handle reading the store itself and of one reading the index, and the answers
-- must be identical (index_diff.lua). Then the index's life: where its file goes, that it never
-- writes the store, resumable builds, verification that catches a tampered index, corrupt and
-- foreign index files, a replaced store file, and what happens when the store changes.
local durox = require "durox"
local H = require "helpers"
local D = require "index_diff"

local function sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. sh(p)))
  return p
end

-- A private copy of a store (its WAL folded in first, so the copy is complete).
local function copy_store(src, dir)
  local dst = dir .. "/store.db"
  assert(os.execute(("sqlite3 %s 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null && cp %s %s"):format(sh(src), sh(src),
    sh(dst))))
  return dst
end

local function sha(path)
  local out = run("sha256sum " .. sh(path))
  return out:match("^(%x+)")
end

local function differential(db, opts, index_path)
  local plain = assert(durox.open("sqlite:" .. db, { readonly = true, index = false }))
  local indexed = assert(durox.open("sqlite:" .. db, { readonly = true, index = index_path }))
  assert(indexed:index_build())
  assert.are.equal("ready", indexed:index_status().state)
  local diffs, asked = D.compare(plain, indexed, opts)
  -- the index answered (it did not fall back to the store on the way)
  assert.are.equal("ready", indexed:index_status().state)
  local v = assert(indexed:index_verify())
  plain:close()
  indexed:close()
  return diffs, asked, v
end

describe("the visibility index gives the store's answers", function()
  it("on the scenario store", function()
    local dir = tmpdir()
    local db = copy_store(H.db, dir)
    local diffs, asked, v = differential(db, { page_size = 7 }, dir .. "/s.dxi")
    assert.are.same({}, diffs)
    assert.is_true(asked > 300)
    assert.is_true(v.ok, v.first)
    assert.are.equal(83, v.instances_checked)
  end)

  it("on the busy store caught mid-flight (locks, stale tokens, timers, orphans)", function()
    local dir = tmpdir()
    local db = copy_store(H.busy_db, dir)
    local info = durox.decode_json(H.read_file(H.busy_info_path))
    local diffs, asked, v = differential(db, { page_size = 11, now = info.killed_at_ms + 120000 }, dir .. "/b.dxi")
    assert.are.same({}, diffs)
    assert.is_true(asked > 300)
    assert.is_true(v.ok, v.first)
  end)

  it("on a store of 100,000 instances derived from real rows", function()
    local big = os.getenv("DUROX_BIG_DB")
    assert(big and io.open(big), "DUROX_BIG_DB (the big_fixture test makes it)")
    local dir = tmpdir()
    local diffs, asked, v = differential(big, { page_size = 1000, max_pages = 3, quick = true }, dir .. "/big.dxi")
    assert.are.same({}, diffs)
    assert.is_true(asked > 100)
    assert.is_true(v.ok, v.first)
    assert.is_true(v.instances_checked >= 100000)
  end)
end)

describe("the visibility index file", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = copy_store(H.db, dir)
  end)

  it("goes under $DUROX_INDEX_DIR by default, named after the store, and index = false keeps none", function()
    local d = tmpdir()
    local out = run(("DUROX_INDEX_DIR=%s %s -e %s"):format(sh(d), sh(os.getenv("DUROXLUA")), sh([[
      local durox = require "durox"
      local dx = assert(durox.open("sqlite:]] .. db .. [[", { readonly = true }))
      assert(#dx:list_instances() == 83)
      local st = dx:index_status()
      print(st.state, st.path, st.instances)
      local off = assert(durox.open("sqlite:]] .. db .. [[", { index = false }))
      print(off:index_status().state, off:index_status().path)]])))
    local state, path, n = out:match("^(%S+)\t(%S+)\t(%d+)\n")
    assert.are.equal("ready", state, out)
    assert.are.equal("83", n)
    assert.truthy(path:find("^" .. d:gsub("%p", "%%%0") .. "/store%.db%-%x+%.dxi$"), path)
    assert.truthy(io.open(path))
    assert.truthy(out:find("\noff\tnil\n", 1, true), out)
  end)

  it("never writes the store: its file and schema are unchanged after a build and reads", function()
    local before = sha(db)
    local schema = H.sql("SELECT name FROM sqlite_master ORDER BY name", db)
    local dx = assert(durox.open("sqlite:" .. db, { index = dir .. "/x.dxi" }))
    assert(dx:index_build { rebuild = true })
    assert(dx:list_instances_paginated { filter = { status = "Failed" }, page_size = 5 })
    assert(dx:get_runtime_metrics())
    assert(dx:index_verify())
    dx:close()
    assert.are.equal(before, sha(db))
    assert.are.same(schema, H.sql("SELECT name FROM sqlite_master ORDER BY name", db))
  end)

  it("serves a store on a read-only file (a read-only mount)", function()
    assert(os.execute("chmod 0444 " .. sh(db)))
    local plain = assert(durox.open("sqlite:" .. db, { readonly = true, index = false }))
    local dx = assert(durox.open("sqlite:" .. db, { readonly = true, index = dir .. "/ro.dxi" }))
    assert(dx:index_build())
    assert.are.equal("ready", dx:index_status().state)
    assert.are.same({}, (D.compare(plain, dx, { filters = { {}, { status = "Failed" } } })))
  end)

  it("builds in chunks that an interruption leaves resumable", function()
    -- 10 instances per chunk (DUROX_INDEX_CHUNK), stopped after the second chunk
    local out = run(("DUROX_INDEX_CHUNK=10 %s -e %s"):format(sh(os.getenv("DUROXLUA")), sh([[
      local durox = require "durox"
      local dx = assert(durox.open("sqlite:]] .. db .. [[", { index = "]] .. dir .. [[/r.dxi" }))
      local calls = 0
      local ok, msg, code = dx:index_build { progress = function(done, total)
        calls = calls + 1
        print("progress", done, total)
        return calls < 2
      end }
      print("first", ok, code)
      local st = dx:index_status()
      print("state", st.state, st.build_done, st.build_total)
      dx:close()
      dx = assert(durox.open("sqlite:]] .. db .. [[", { index = "]] .. dir .. [[/r.dxi" }))
      local seen = {}
      assert(dx:index_build { progress = function(done) seen[#seen + 1] = done end })
      print("resumed", seen[1], seen[#seen], dx:index_status().state)
      print("verify", dx:index_verify().ok)]])))
    assert.truthy(out:find("progress\t10\t83\nprogress\t20\t83\n", 1, true), out)
    assert.truthy(out:find("first\tnil\tABORT\n", 1, true), out)
    assert.truthy(out:find("state\tbuilding\t20\t83\n", 1, true), out)
    -- the second build starts after the 20 done, not from scratch
    assert.truthy(out:find("resumed\t30\t83\tready\n", 1, true), out)
    assert.truthy(out:find("verify\ttrue\n", 1, true), out)
  end)

  it("verify finds a tampered row, a tampered digest and a missing row; a rebuild repairs them", function()
    local path = dir .. "/v.dxi"
    local dx = assert(durox.open("sqlite:" .. db, { index = path }))
    assert(dx:index_build())
    assert.is_true(dx:index_verify().ok)
    dx:close()
    assert(os.execute(("sqlite3 %s \"UPDATE dx_inst SET status='Completed' WHERE instance_id ="
      .. " (SELECT min(instance_id) FROM dx_inst WHERE status='Failed')\""):format(sh(path))))
    dx = assert(durox.open("sqlite:" .. db, { index = path }))
    local v = assert(dx:index_verify())
    assert.is_false(v.ok)
    assert.are.equal(1, v.mismatched)
    assert.truthy(v.first:find("status differs"), v.first)
    dx:close()
    assert(os.execute(("sqlite3 %s \"UPDATE dx_totals SET v = v + 1 WHERE k = 't:TimerFired';"
      .. " DELETE FROM dx_inst WHERE instance_id = (SELECT min(instance_id) FROM dx_inst)\""):format(sh(path))))
    dx = assert(durox.open("sqlite:" .. db, { index = path }))
    v = assert(dx:index_verify())
    assert.is_false(v.ok)
    assert.are.equal(1, v.missing)
    assert.is_true(v.digests_mismatched >= 1)
    assert(dx:index_build { rebuild = true })
    assert.is_true(dx:index_verify().ok)
  end)

  it("replaces a corrupt index file at the default path, and answers from the store meanwhile", function()
    local d = tmpdir()
    local out = run(("DUROX_INDEX_DIR=%s %s -e %s"):format(sh(d), sh(os.getenv("DUROXLUA")), sh([[
      local durox = require "durox"
      local dx = assert(durox.open("sqlite:]] .. db .. [[", { readonly = true }))
      assert(dx:index_build())
      local path = dx:index_status().path
      dx:close()
      local f = assert(io.open(path, "r+b"))
      f:write(("garbage!"):rep(512))
      f:close()
      os.remove(path .. "-wal")
      dx = assert(durox.open("sqlite:]] .. db .. [[", { readonly = true }))
      print(#assert(dx:list_instances { status = "Failed" }))
      local st = dx:index_status()
      print(st.state, st.instances)]])))
    local failed = #H.rows("SELECT 1 FROM instances i JOIN executions e ON e.instance_id = i.instance_id"
      .. " AND e.execution_id = i.current_execution_id WHERE e.status = 'Failed'", db)
    assert.are.equal(("%d\nready\t83\n"):format(failed), out)
  end)

  it("refuses a file at index = PATH that is not its own, and leaves it untouched", function()
    local foreign = dir .. "/mine.db"
    assert(os.execute(("sqlite3 %s 'CREATE TABLE precious(x); INSERT INTO precious VALUES (42);'"):format(sh(foreign))))
    local before = sha(foreign)
    local dx = assert(durox.open("sqlite:" .. db, { index = foreign }))
    local ok, msg, code = dx:index_build()
    assert.is_nil(ok)
    assert.are.equal("visibility index " .. foreign .. ": the index file is not a duroxlua index (remove it or choose"
      .. " another path)", msg)
    assert.are.equal("INVALID", code)
    -- reads still answer, from the store
    assert.are.equal(83, #assert(dx:list_instances()))
    assert.are.equal("broken", dx:index_status().state)
    dx:close()
    assert.are.equal(before, sha(foreign))
    local text = dir .. "/notes.txt"
    local f = assert(io.open(text, "wb"))
    f:write("not a database at all\n")
    f:close()
    dx = assert(durox.open("sqlite:" .. db, { index = text }))
    ok, msg = dx:index_build()
    assert.is_nil(ok)
    assert.truthy(msg:find("is not a SQLite database", 1, true), msg)
    assert.are.equal(83, #assert(dx:list_instances()))
    assert.are.equal("not a database at all\n", H.read_file(text))
  end)

  it("rebuilds for a store file replaced at the same path", function()
    local path = dir .. "/rep.dxi"
    local dx = assert(durox.open("sqlite:" .. db, { index = path }))
    assert(dx:index_build())
    dx:close()
    -- another store (the busy one) moved into place: another inode, other instances
    local other = copy_store(H.busy_db, tmpdir())
    -- the busy store is caught mid-flight by a SIGKILL, so its size varies from run to run
    local want = tonumber(H.rows("SELECT count(*) AS n FROM instances", other)[1].n)
    assert(os.execute(("mv %s %s"):format(sh(other), sh(db))))
    dx = assert(durox.open("sqlite:" .. db, { index = path }))
    local plain = assert(durox.open("sqlite:" .. db, { index = false }))
    assert.are.equal(#assert(plain:list_instances()), #assert(dx:list_instances()))
    local st = dx:index_status()
    assert.are.equal("ready", st.state)
    assert.are.equal(want, st.instances)
    assert.are.same({}, (D.compare(plain, dx, { filters = { {}, { status = "Running" } } })))
  end)

  it("answers exactly after the store changes (a purge through the same and through another handle)", function()
    local path = dir .. "/ch.dxi"
    local dx = assert(durox.open("sqlite:" .. db, { index = path, max_write_share = 1 }))
    local plain = assert(durox.open("sqlite:" .. db, { index = false }))
    assert(dx:index_build())
    local done = H.rows("SELECT i.instance_id AS id FROM instances i JOIN executions e ON e.instance_id ="
      .. " i.instance_id AND e.execution_id = i.current_execution_id WHERE e.status = 'Completed' AND"
      .. " i.parent_instance_id IS NULL AND NOT EXISTS (SELECT 1 FROM instances c WHERE c.parent_instance_id ="
      .. " i.instance_id) ORDER BY 1 LIMIT 3", db)
    assert(dx:purge_instances { instances = { done[1].id } })
    assert.are.same({}, (D.compare(plain, dx, { filters = { {}, { status = "Completed" } } })))
    assert(plain:purge_instances { instances = { done[2].id, done[3].id } })
    assert.are.same({}, (D.compare(plain, dx, { filters = { {}, { status = "Completed" } } })))
    assert.are.equal(80, #assert(dx:list_instances()))
  end)

  it("notices executions pruned by another handle within the feed's verify interval", function()
    local path = dir .. "/pr.dxi"
    local dx = assert(durox.open("sqlite:" .. db, { readonly = true, index = path }))
    local plain = assert(durox.open("sqlite:" .. db, { readonly = true, index = false }))
    assert(dx:index_build())
    local before = assert(dx:get_runtime_metrics { fresh = true }).total_history_events
    local other = assert(durox.open("sqlite:" .. db, { index = false, max_write_share = 1 }))
    local r = assert(other:prune_executions { instances = { "can-done-1", "can-wait-1" }, keep_last = 1 })
    assert.is_true(r.events_deleted > 0)
    durox.sleep(1100)
    local m = assert(dx:get_runtime_metrics { fresh = true })
    assert.are.equal(before - r.events_deleted, m.total_history_events)
    assert.are.same({}, (D.compare(plain, dx, { filters = { {}, { min_executions = 2 } } })))
    assert.is_true(assert(dx:index_verify()).ok)
  end)

  it("is dropped with its files", function()
    local path = dir .. "/d.dxi"
    local dx = assert(durox.open("sqlite:" .. db, { index = path }))
    assert(dx:index_build())
    assert.truthy(io.open(path))
    assert(dx:index_drop())
    assert.is_nil(io.open(path))
    assert.is_nil(io.open(path .. "-wal"))
    -- the next read that needs it builds it again
    assert.are.equal(83, #assert(dx:list_instances()))
    assert.are.equal("ready", dx:index_status().state)
  end)
end)
