-- feed_spec.lua - the change feed (dx:read_changes) on both providers, against stores the REAL
-- runtime wrote and while it runs: every history row exactly once (SQLite: in commit order,
-- history rowid; PostgreSQL: grouped by instance, in (instance, execution, event) order), with
-- cursors that resume right after each row, across handles; an idle call reads nothing;
-- cursors bound to their store; and the store changing under a cursor (Duroxide's own delete
-- of old rows, our purge, the newest rows deleted and their rowids reused, VACUUM, the file
-- replaced, the runtime's schema re-created) gives a reset, never a silent skip. Expected rows
-- come from the sqlite3 tool or psql, never from duroxlua.
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("change feed", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

local function rkey(r) return ("%s/%d/%d/%s"):format(r.i, r.x, r.e, r.t) end
local function key(c) return ("%s/%d/%d/%s"):format(c.instance_id, c.execution_id, c.event_id, c.event_type) end

-- Every history row's key, in the order the feed of kind delivers a store read from the start.
local function all_keys(S)
  local t = {}
  for i, r in ipairs(S.history()) do t[i] = rkey(r) end
  return t
end

-- Reads every change after cursor (nil: from the start) in pages of limit; returns the keys,
-- the changes and the final cursor.
local function drain(dx, cursor, limit)
  local keys, all = {}, {}
  local opts = { cursor = cursor, limit = limit }
  if not cursor then opts.from = "start" end
  while true do
    local r = assert(dx:read_changes(opts))
    assert.is_nil(r.reset)
    for _, c in ipairs(r.changes) do
      keys[#keys + 1] = key(c)
      all[#all + 1] = c
    end
    cursor = r.cursor
    if not r.more then break end
    opts = { cursor = cursor, limit = limit }
  end
  return keys, all, cursor
end

local function sorted(t)
  local c = { table.unpack(t) }
  table.sort(c)
  return c
end

-- No key twice, and every execution's events in event order.
local function assert_once_in_order(keys)
  local seen, last = {}, {}
  for _, k in ipairs(keys) do
    assert.is_nil(seen[k], "twice: " .. k)
    seen[k] = true
    local inst, x, e = k:match("^(.*)/(%d+)/(%d+)/[^/]*$")
    local ex = inst .. "/" .. x
    assert.is_true((last[ex] or 0) < tonumber(e), "out of order: " .. k)
    last[ex] = tonumber(e)
  end
end

for _, kind in ipairs(L.kinds()) do
  describe("on " .. kind, function()
    describe("the change feed on a store the runtime wrote", function()
      local dir, S, dx

      setup(function()
        dir = L.tmpdir()
        S = L.scenario_store(kind, dir, "sc")
        dx = assert(durox.open(S.url, { readonly = true }))
      end)

      teardown(function()
        if dx then dx:close() end
        if S then S.drop() end
        L.cleanup(dir)
      end)

      it("delivers every history row once, in the feed's order, in pages of any size", function()
        local expected = all_keys(S)
        assert.is_true(#expected > 300)
        for _, limit in ipairs { 1, 7, 500 } do
          assert.are.same(expected, (drain(dx, nil, limit)))
        end
      end)

      it("gives each change a cursor that resumes right after it, also in another handle", function()
        local expected = all_keys(S)
        local _, all = drain(dx, nil, 50)
        local other = assert(durox.open(S.url, { readonly = true }))
        for _, k in ipairs { 1, 2, 100, #all - 1, #all } do
          assert.are.same({ table.unpack(expected, k + 1) }, (drain(other, all[k].cursor, 64)))
        end
        other:close()
      end)

      it("carries the event's own timestamp and, when asked, its JSON", function()
        local rows = S.history()
        local r = assert(dx:read_changes { from = "start", limit = 3, payloads = true })
        for i = 1, 3 do
          assert.are.equal(rows[i].d, r.changes[i].data)
          assert.are.equal(durox.decode_json(rows[i].d).timestamp_ms, r.changes[i].timestamp)
        end
        local bare = assert(dx:read_changes { from = "start", limit = 1 })
        assert.is_nil(bare.changes[1].data)
      end)

      it("reads nothing when nothing was committed since the cursor it returned", function()
        local _, _, cursor = drain(dx, nil, 500)
        local r = assert(dx:read_changes { cursor = cursor })
        assert.are.equal(0, #r.changes)
        r = assert(dx:read_changes { cursor = r.cursor })
        assert.is_true(r.idle)
        local now = assert(dx:read_changes { from = "now" })
        assert.are.equal(0, #now.changes)
        if kind == "sqlite" then assert.are.equal(cursor, now.cursor) end
      end)

      it("refuses malformed cursors and cursors of another store with one clear line", function()
        local r = assert(dx:read_changes { from = "start", limit = 2 })
        local c = r.changes[2].cursor
        local function refused(cur, msg)
          local ok, err, code = dx:read_changes { cursor = cur }
          assert.is_nil(ok)
          assert.are.equal("INVALID", code)
          assert.are.equal(msg, err)
        end
        refused("", "malformed cursor")
        refused(c:sub(1, -3), "malformed cursor")
        refused(c:sub(1, 10) .. (c:sub(11, 11) == "A" and "B" or "A") .. c:sub(12), "malformed cursor")
        local page = assert(dx:list_instances_paginated { page_size = 1 })
        refused(page.next_page_token, "malformed cursor (not a change-feed cursor)")
        local T = L.scenario_store(kind, dir, "other")
        local other = assert(durox.open(T.url, { readonly = true }))
        local ok, err, code = other:read_changes { cursor = c }
        assert.is_nil(ok)
        assert.are.equal("INVALID", code)
        assert.matches("^cursor was issued for another store, not .+; start again without it$", err)
        other:close()
        T.drop()
        assert.has_error(function() dx:read_changes { cursor = c, from = "now" } end,
          "read_changes option field 'from' cannot be given with 'cursor'")
        assert.has_error(function() dx:read_changes { limit = 0 } end,
          "read_changes option field 'limit' out of range (1 to 100000), got 0")
        assert.has_error(function() dx:read_changes { since = 1 } end)
      end)

      it("is refused when streaming is disabled", function()
        local off = assert(durox.open(S.url, { readonly = true, config = { enable_streaming = false } }))
        local ok, err, code = off:read_changes {}
        assert.is_nil(ok)
        assert.are.equal("DENIED", code)
        assert.are.equal("streaming is disabled by the configuration (enable_streaming = false)", err)
        off:close()
      end)
    end)

    describe("the change feed while the runtime runs", function()
      local dir, S, rt, dx

      setup(function()
        dir = L.tmpdir()
        S = L.store(kind, dir, "live")
        rt = L.start_runtime(S.target, dir .. "/live")
        dx = assert(durox.open(S.url))
      end)

      teardown(function()
        if dx then dx:close() end
        L.stop_runtime(rt)
        if S then S.drop() end
        L.cleanup(dir)
      end)

      local function run_instances(prefix, n)
        local ids = {}
        for i = 1, n do
          ids[i] = ("%s-%03d"):format(prefix, i)
          assert(dx:start_orchestration(ids[i], "Sequence", ('{"value":%d}'):format(i)))
        end
        local w = assert(dx:wait_for_instances { instances = ids, timeout = "60s", poll_interval = 50 })
        assert.is_true(w.satisfied)
        return ids
      end

      local function count_rows(id)
        return S.rows("SELECT count(*) AS n FROM history WHERE instance_id = " .. L.lit(id))[1].n
      end

      it("follows the runtime's commits: every row once, in order", function()
        local follower = assert(durox.open(S.url, { readonly = true }))
        local r = assert(follower:read_changes { from = "now" })
        local cursor, keys, idle = r.cursor, {}, 0
        for i = 1, 40 do
          assert(dx:start_orchestration(("f-%03d"):format(i), "Sequence", ('{"value":%d}'):format(i)))
        end
        -- one poll: never a reset, every row kept, idle polls counted
        local function poll()
          local page = assert(follower:read_changes { cursor = cursor, limit = 37 })
          assert.is_nil(page.reset)
          if page.idle then idle = idle + 1 end
          for _, c in ipairs(page.changes) do keys[#keys + 1] = key(c) end
          cursor = page.cursor
          return page
        end
        L.wait_until(function()
          local page = poll()
          return #assert(dx:list_instances { status = "Completed", id_prefix = "f-" }) == 40 and not page.more
            and #page.changes == 0
        end, 60000, "the instances to complete", 20)
        -- once the runtime is quiet, a poll reports idle (the gate read nothing); on a loaded
        -- machine the last poll above may still have seen the runtime's own queue transactions
        L.wait_until(function()
          poll()
          return idle > 0
        end, 60000, "an idle poll", 50)
        local expected = all_keys(S)
        if kind == "sqlite" then
          assert.are.same(expected, keys) -- commit order
        else
          assert.are.same(sorted(expected), sorted(keys))
          assert_once_in_order(keys)
        end
        assert.is_true(idle > 0, "no poll was idle")
        follower:close()
      end)

      it("resets 'deleted' when Duroxide's own client deletes old instances behind the cursor", function()
        local ids = run_instances("d", 3)
        run_instances("e", 2)
        local r = assert(dx:read_changes { from = "now" })
        local n = count_rows(ids[1])
        assert(L.client(S.target, "delete", ids[1]))
        r = assert(dx:read_changes { cursor = r.cursor })
        assert.are.same({ kind = "deleted",
          reason = n .. " history rows at or before the position were deleted (a purge or prune)" }, r.reset)
        assert.are.equal(0, #r.changes)
        -- nothing after the cursor was missed: the feed goes on from where it was
        local before = {}
        for _, k in ipairs(all_keys(S)) do before[k] = true end
        run_instances("g", 2)
        local new = {}
        for _, k in ipairs(all_keys(S)) do if not before[k] then new[#new + 1] = k end end
        assert.are.same(sorted(new), sorted((drain(dx, r.cursor, 500))))
      end)

      it("resets 'deleted' when this handle purges, at once even with verify_ms < 0", function()
        local ids = run_instances("p", 1)
        run_instances("pp", 1) -- its rows come after p-001's, so the purge is behind the cursor
        local r = assert(dx:read_changes { from = "now", verify_ms = -1 })
        assert(dx:purge_instances { instances = { ids[1] } })
        r = assert(dx:read_changes { cursor = r.cursor, verify_ms = -1 })
        assert.are.equal("deleted", r.reset and r.reset.kind)
      end)

      if kind == "postgres" then
        -- PostgreSQL has no rowids to reuse: deleting the newest rows (those of the last row read)
        -- is a deletion at or before the position, and what comes after is not missed
        it("resets 'deleted' when the newest rows are deleted, then misses nothing after them", function()
          local ids = run_instances("nd", 2)
          local r = assert(dx:read_changes { from = "now" })
          local n = count_rows(ids[2])
          assert(L.client(S.target, "delete", ids[2]))
          local before = {}
          for _, k in ipairs(all_keys(S)) do before[k] = true end
          run_instances("nr", 2)
          local x = assert(dx:read_changes { cursor = r.cursor })
          assert.are.same({ kind = "deleted",
            reason = n .. " history rows at or before the position were deleted (a purge or prune)" }, x.reset)
          local new = {}
          for _, k in ipairs(all_keys(S)) do if not before[k] then new[#new + 1] = k end end
          assert.is_true(#new > 0)
          local got = { table.unpack((drain(dx, x.cursor, 500))) }
          for _, c in ipairs(x.changes) do table.insert(got, 1, key(c)) end
          assert.are.same(sorted(new), sorted(got))
        end)
      end

      if kind == "sqlite" then
        it("resets 'lost' when the newest rows are deleted and their rowids reused", function()
          local ids = run_instances("n", 2)
          local r = assert(dx:read_changes { from = "now" })
          local last = S.rows("SELECT instance_id AS i FROM history ORDER BY rowid DESC LIMIT 1")[1].i
          assert.is_true(last == ids[1] or last == ids[2])
          local function top() return S.rows("SELECT coalesce(max(rowid), 0) AS m FROM history")[1].m end
          local before = top()
          assert(L.client(S.target, "delete", last))
          assert.is_true(top() < before)
          run_instances("r", 1) -- its rows take the freed rowids
          assert.is_true(top() >= before)
          local x = assert(dx:read_changes { cursor = r.cursor })
          assert.are.equal("lost", x.reset.kind)
          assert.matches("now holds another event", x.reset.reason)
          local after = assert(dx:read_changes { cursor = x.cursor }) -- repositioned at the present
          assert.is_nil(after.reset)
          assert.are.equal(0, #after.changes)
        end)

        it("resets 'lost' when the last row read is deleted and nothing took its place", function()
          local ids = run_instances("q", 1)
          local r = assert(dx:read_changes { from = "now" })
          assert(L.client(S.target, "delete", ids[1]))
          local x = assert(dx:read_changes { cursor = r.cursor })
          assert.are.equal("lost", x.reset.kind)
          assert.matches("is gone", x.reset.reason)
        end)
      end

      it("goes on without a reset and without a gap after " .. (kind == "sqlite" and "VACUUM" or "VACUUM FULL"),
        function()
          local ids = run_instances("v", 3)
          assert(L.client(S.target, "delete", ids[1]))
          local r = assert(dx:read_changes { from = "now" })
          local before = {}
          for _, k in ipairs(all_keys(S)) do before[k] = true end
          if kind == "sqlite" then
            L.run(("sqlite3 -cmd '.timeout 10000' %s 'VACUUM'"):format(L.q(S.path)))
          else
            S.rows(nil, "SELECT 1 AS one") -- the database is reachable
            local _, code, err = L.run(("psql -X -q %s -c 'VACUUM FULL dx.history' -c 'VACUUM FULL dx.instances'")
              :format(L.q(S.url:gsub("&schema=dx", ""))))
            assert.are.equal(0, code, err)
          end
          run_instances("w", 2)
          local new = {}
          for _, k in ipairs(all_keys(S)) do if not before[k] then new[#new + 1] = k end end
          assert.are.same(sorted(new), sorted((drain(dx, r.cursor, 500))))
        end)
    end)
  end)
end

describe("on sqlite, the change feed when the store file is replaced", function()
  it("reopens the new file and resets 'lost'", function()
    local dir = L.tmpdir()
    local db = L.copy_scenarios(dir .. "/a.db")
    local dx = assert(durox.open("sqlite:" .. db, { readonly = true }))
    local r = assert(dx:read_changes { from = "now" })
    -- another store (one of its instances deleted by Duroxide's client) takes the file's place
    local b = L.copy_scenarios(dir .. "/b.db")
    local done = L.sql(b, "SELECT i.instance_id AS i FROM instances i JOIN executions e ON e.instance_id ="
      .. " i.instance_id AND e.execution_id = i.current_execution_id WHERE e.status = 'Completed' AND"
      .. " i.parent_instance_id IS NULL AND NOT EXISTS (SELECT 1 FROM instances c WHERE c.parent_instance_id ="
      .. " i.instance_id) ORDER BY 1 LIMIT 1")[1].i
    assert(L.client(b, "delete", done))
    L.run(("sqlite3 %s 'PRAGMA wal_checkpoint(TRUNCATE)'"):format(L.q(b)))
    os.remove(b .. "-wal")
    os.remove(b .. "-shm")
    assert(os.rename(b, db))
    local x = assert(dx:read_changes { cursor = r.cursor })
    assert.are.same({ kind = "lost", reason = "the store file " .. db .. " was replaced" }, x.reset)
    local now = L.sql_value(db, "SELECT count(*) AS n FROM history")
    assert.are.equal(now, #(drain(dx, nil, 500)))
    dx:close()
    L.cleanup(dir)
  end)
end)

if #L.kinds() > 1 then
  describe("on postgres, the change feed when the runtime's schema is re-created", function()
    it("resets 'lost'", function()
      local dir = L.tmpdir()
      local S = L.store("postgres", dir, "recreate")
      local rt = L.start_runtime(S.target, dir .. "/rt1")
      local dx = assert(durox.open(S.url))
      assert(dx:start_orchestration("x-1", "Echo", '"a"'))
      assert(dx:wait_for_orchestration("x-1", "30s"))
      local r = assert(dx:read_changes { from = "now" })
      L.stop_runtime(rt)
      S.rows(nil, "SELECT 1 AS one")
      local _, code, err = L.run(("psql -X -q %s -c 'DROP SCHEMA dx CASCADE'"):format(L.q(S.url:gsub("&schema=dx", ""))))
      assert.are.equal(0, code, err)
      rt = L.start_runtime(S.target, dir .. "/rt2") -- migrates a new schema
      local x = assert(dx:read_changes { cursor = r.cursor })
      assert.are.same({ kind = "lost", reason = "the runtime's tables were re-created (the store was replaced)" },
        x.reset)
      assert(dx:start_orchestration("x-2", "Echo", '"b"'))
      assert(dx:wait_for_orchestration("x-2", "30s"))
      local keys = drain(dx, x.cursor, 500)
      assert.are.equal(#S.history(), #keys)
      dx:close()
      L.stop_runtime(rt)
      S.drop()
      L.cleanup(dir)
    end)
  end)
end
