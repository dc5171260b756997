-- access_spec.lua - the policy matrix: every read and write of the Lua module under six
-- callers of the ready-made policies (scripts/policies) and a per-row policy, on copies of
-- the scenario store the real runtime wrote. What each caller may see is decided here from
-- the rows the sqlite3 tool reads (never from our own answers); every listing, count, page,
-- search, group-by, time series, metric, tree, stuck report, status, wait and bulk dry run
-- must show exactly that set and nothing of the rest; every denial is the exact error, and a
-- denied write changes nothing but the audit log.
local durox = require "durox"
local H = require "helpers"
local L = require "live"

if H.skip or L.skip then
  describe("access control", function() pending("the scenario fixture is not set") end)
  return
end

local POLICIES = "../../scripts/policies/"
local dir = L.tmpdir()
teardown(function() L.cleanup(dir) end)

-- The per-row policy: everything listed, can_view_instance hides every '::sub::3' subtree,
-- no history, writes only on WaitApprove.
local ROWWISE = [[
return {
  can_list_instances = true,
  can_view_instance = function(ctx, inst) return not inst.id:find("::sub::3", 1, true) end,
  can_view_history = false,
  can_view_metrics = true,
  can_cancel_instance = function(ctx, inst) return inst.name == "WaitApprove", "WaitApprove only" end,
  can_raise_event = function(ctx, inst) return inst.name == "WaitApprove" end,
}]]

local function all() return true end
local function none() return false end

local ROLES = {
  { name = "viewer", open = { policy = POLICIES .. "viewer.lua", context = { user_id = "vera" } },
    sees = all, history = true, store_wide = true, payloads = true },
  { name = "team member", open = { policy = POLICIES .. "team.lua",
      context = { user_id = "tom", roles = { "team:Echo", "team:Wait" } } },
    sees = function(r) return r.name:sub(1, 4) == "Echo" or r.name:sub(1, 4) == "Wait" end,
    history = true, store_wide = false, payloads = true },
  { name = "on-call operator", open = { policy = POLICIES .. "oncall.lua",
      context = { user_id = "olga", roles = { "oncall" } } },
    sees = all, history = true, store_wide = true },
  { name = "break-glass admin", open = { policy = POLICIES .. "breakglass.lua",
      context = { user_id = "root", roles = { "admin" }, reason = "INC-42: clean up the test data" } },
    sees = all, history = true, store_wide = true },
  { name = "per-row policy", open = { policy_source = ROWWISE, context = { user_id = "rita" } },
    sees = function(r) return not r.id:find("::sub::3", 1, true) end, history = false, store_wide = false },
  { name = "caller without a team", open = { policy = POLICIES .. "team.lua", context = { user_id = "nina" } },
    sees = none, nothing = true, history = true, store_wide = false },
}

-- Both providers: a copy of the SQLite scenario store, and of the PostgreSQL one when the
-- test server runs (the same scenarios, written by the runtime to each store).
local STORES = { { name = "sqlite" } }
if L.pg_dir and io.open(L.pg_dir .. "/port") then STORES[2] = { name = "postgres" } end
local pg_copies = {}
teardown(function() for _, db in ipairs(pg_copies) do L.pg_drop(db) end end)

local SEARCH_SQL = [[
  SELECT i.instance_id AS id FROM instances i LEFT JOIN executions e ON e.instance_id = i.instance_id
    AND e.execution_id = i.current_execution_id
  WHERE instr(lower(i.instance_id), 'list-') > 0 OR instr(lower(i.orchestration_name), 'list-') > 0
    OR instr(lower(COALESCE(i.custom_status, '')), 'list-') > 0 OR instr(lower(COALESCE(e.output, '')), 'list-') > 0
    OR instr(lower(COALESCE((SELECT json_extract(h.event_data, '$.input') FROM history h
      WHERE h.instance_id = i.instance_id AND h.execution_id = i.current_execution_id AND h.event_id = 1), '')),
      'list-') > 0]]
local PG_SEARCH_SQL = [[
  SELECT i.instance_id AS id FROM instances i LEFT JOIN executions e ON e.instance_id = i.instance_id
    AND e.execution_id = i.current_execution_id
  WHERE strpos(lower(i.instance_id), 'list-') > 0 OR strpos(lower(i.orchestration_name), 'list-') > 0
    OR strpos(lower(COALESCE(i.custom_status, '')), 'list-') > 0 OR strpos(lower(COALESCE(e.output, '')), 'list-') > 0
    OR strpos(lower(COALESCE((SELECT h.event_data::json->>'input' FROM history h
      WHERE h.instance_id = i.instance_id AND h.execution_id = i.current_execution_id AND h.event_id = 1), '')),
      'list-') > 0]]

for _, P in ipairs(STORES) do
local pg = P.name == "postgres"
local db, pgname
if pg then
  db, pgname = L.pg_fresh()
  pg_copies[#pg_copies + 1] = db
else
  db = L.copy_scenarios(dir .. "/reads.db")
end
local url = L.url(db)
local ROWS = pg and H.pg_instance_rows(pgname) or H.instance_rows(db)
local BY_ID = {}
for _, r in ipairs(ROWS) do BY_ID[r.id] = r end
local manifest = pg and assert(durox.decode_json(H.read_file(H.pg_manifest_path))) or H.manifest()
local NOW = manifest.created_at_ms + 600000

local function visible(role)
  local v = {}
  for _, r in ipairs(ROWS) do
    if role.sees(r) then v[#v + 1] = r end
  end
  return v
end

local function ids_of(rows)
  local a = {}
  for i, r in ipairs(rows) do a[i] = r.id end
  table.sort(a)
  return a
end

local function sql_list(ids)
  local q = {}
  for i, id in ipairs(ids) do q[i] = H.q(id) end
  return "(" .. (#q > 0 and table.concat(q, ",") or "NULL") .. ")"
end

local function denied_listing(_, ...)
  local res, _, code = ...
  return res == nil and code == "DENIED"
end

for _, role in ipairs(ROLES) do
  describe(P.name .. ": " .. role.name, function()
    local dx = assert(durox.open(url, role.open))
    local seen = visible(role)
    local seen_ids = ids_of(seen)
    local seen_set = H.set(seen_ids)
    local hidden = {}
    for _, r in ipairs(ROWS) do
      if not seen_set[r.id] then hidden[#hidden + 1] = r.id end
    end
    teardown(function() dx:close() end)

    it("lists, pages, counts and iterates exactly what it may see", function()
      if role.nothing then
        local res, msg, code = dx:list_instances()
        assert.is_nil(res)
        assert.are.equal("DENIED", code)
        assert.are.equal("access denied: user 'nina' may not list instances: no team role (team:<Prefix>)", msg)
        return
      end
      assert.are.same(seen_ids, H.list_ids(dx))
      -- pages of 7: every visible instance once, the total counts only them
      local got, token, pages = {}, nil, 0
      repeat
        local page = assert(dx:list_instances_paginated { page_size = 7, page_token = token, total_count = true,
                                                          order_by = "InstanceId" })
        assert.are.equal(#seen_ids, page.total_count)
        for _, s in ipairs(page.instances) do got[#got + 1] = s.instance_id end
        token = page.next_page_token
        pages = pages + 1
      until not token
      assert.are.same(seen_ids, got) -- InstanceId order is the sorted order
      assert.are.equal(math.max(1, math.ceil(#seen_ids / 7)), pages)
      local it_ids = {}
      for s in dx:instances(nil, { order_by = "InstanceId", batch_size = 5 }) do it_ids[#it_ids + 1] = s.instance_id end
      assert.are.same(seen_ids, it_ids)
      -- a filter of the caller's own is ANDed with the policy's
      local running = {}
      for _, r in ipairs(seen) do
        if r.status == "Running" then running[#running + 1] = r.id end
      end
      table.sort(running)
      assert.are.same(running, H.list_ids(dx, { status = "Running" }))
      assert.are.same(running, H.list_ids(dx, "status = 'Running'"))
    end)

    it("binds its page tokens to the caller and the policy", function()
      if role.nothing then return end
      local page = assert(dx:list_instances_paginated { page_size = 2 })
      assert.is_string(page.next_page_token)
      local other = assert(durox.open(url, { policy = POLICIES .. "viewer.lua",
                                                         context = { user_id = "someone-else" } }))
      local res, msg, code = other:list_instances_paginated { page_size = 2, page_token = page.next_page_token }
      assert.is_nil(res)
      assert.are.equal("INVALID", code)
      assert.truthy(msg:find("page token was issued for a different filter or order", 1, true))
      other:close()
      -- and without a policy, a token of a caller under one is refused too
      local plain = assert(durox.open(url, { readonly = true }))
      res, _, code = plain:list_instances_paginated { page_size = 2, page_token = page.next_page_token }
      assert.is_nil(res)
      assert.are.equal("INVALID", code)
      plain:close()
      -- the same user with other roles, or under another policy: INVALID too
      local ctx = role.open.context
      local more_roles = { "one-more-role" } -- the caller's roles and one more: the same view
      for i, r in ipairs(ctx.roles or {}) do more_roles[i + 1] = r end
      local variants = {
        { policy = role.open.policy, policy_source = role.open.policy_source,
          context = { user_id = ctx.user_id, roles = more_roles, reason = ctx.reason } },
        { policy_source = "return { can_list_instances = true, can_view_instance = true }", context = ctx },
      }
      for _, open in ipairs(variants) do
        local h = assert(durox.open(url, open))
        res, msg, code = h:list_instances_paginated { page_size = 2, page_token = page.next_page_token }
        h:close()
        assert.is_nil(res)
        assert.are.equal("INVALID", code, msg)
      end
      -- the same caller under the same policy on a new handle continues where it left off
      local again = assert(durox.open(url, role.open))
      local p2 = assert(again:list_instances_paginated { page_size = 2, page_token = page.next_page_token })
      again:close()
      local p2_same = assert(dx:list_instances_paginated { page_size = 2, page_token = page.next_page_token })
      assert.are.same(H.ids(p2_same.instances), H.ids(p2.instances))
      assert.are.equal(2, #p2.instances)
    end)

    it("searches only what it may see", function()
      local expected = {}
      for _, r in ipairs(L.sql(db, SEARCH_SQL, PG_SEARCH_SQL)) do
        if seen_set[r.id] then expected[#expected + 1] = r.id end
      end
      table.sort(expected)
      if role.nothing then
        assert.truthy(denied_listing(dx, dx:search_instances("list-")))
        return
      end
      assert.is_true(#expected > 0)
      assert.are.same(expected, H.sorted(H.ids(assert(dx:search_instances("list-")))))
    end)

    it("reports hidden instances as not found in every single-instance read", function()
      for _, id in ipairs(hidden) do
        assert.are.equal("NotFound", assert(dx:get_orchestration_status(id)).status)
        for _, m in ipairs { "get_instance_details", "get_instance_statistics", "read_execution_history",
                             "get_orchestration_descriptor", "list_executions", "get_instance_dependencies" } do
          local res, msg, code = dx[m](dx, id)
          assert.is_nil(res, m)
          assert.are.equal("NOTFOUND", code, m)
          assert.are.equal(("instance '%s' not found"):format(id), msg, m)
        end
        local hf, hmsg, hcode = dx:get_execution_history_filtered { instance_id = id, event_types = "ActivityScheduled" }
        assert.are.same({ nil, ("instance '%s' not found"):format(id), "NOTFOUND" }, { hf, hmsg, hcode })
        local res, msg, code = dx:wait_for_orchestration(id, 0)
        assert.is_nil(res)
        assert.are.equal("NOTFOUND", code)
        assert.are.equal(("instance '%s' not found"):format(id), msg)
      end
      -- the same answers as for an id that does not exist
      local res, msg, code = dx:get_instance_details("no-such-instance")
      assert.are.same({ nil, "instance 'no-such-instance' not found", "NOTFOUND" }, { res, msg, code })
      -- statuses of many ids: hidden ones are NotFound, visible ones their status
      local ask = {}
      for _, r in ipairs(ROWS) do ask[#ask + 1] = r.id end
      ask[#ask + 1] = "no-such-instance"
      local st = assert(dx:get_instances_status(ask))
      for i, item in ipairs(st) do
        assert.are.equal(ask[i], item.instance_id)
        local r = BY_ID[item.instance_id]
        assert.are.equal(r and seen_set[r.id] and r.status or "NotFound", item.status)
      end
      -- a bulk wait: hidden targets are not found at once
      local w = assert(dx:wait_for_instances { instances = ask, timeout_ms = 0, max_instances = #ask })
      local nf = {}
      for _, it in ipairs(w.not_found_instances) do nf[#nf + 1] = it.instance_id or it end
      local want_nf = H.sorted(hidden)
      want_nf[#want_nf + 1] = "no-such-instance"
      table.sort(want_nf)
      assert.are.same(want_nf, H.sorted(nf))
    end)

    it("reads the history of what it sees when the policy lets it", function()
      for _, r in ipairs(seen) do
        assert.are_not.equal("NotFound", assert(dx:get_orchestration_status(r.id)).status, r.id)
        local d, msg, code = dx:get_instance_details(r.id)
        if role.history then
          assert.is_table(d, msg)
          assert.are.equal(r.id, d.summary.instance_id)
          assert.are.equal(r.status, d.summary.status)
        else
          assert.is_nil(d)
          assert.are.equal("DENIED", code)
          assert.are.equal(("access denied: user 'rita' may not view the history of instance '%s': "
            .. "can_view_history is false in the policy"):format(r.id), msg)
          local h, _, c2 = dx:read_execution_history(r.id)
          assert.is_nil(h)
          assert.are.equal("DENIED", c2)
        end
      end
    end)

    it("groups and counts only what it may see", function()
      local q, msg, code = dx:query_instances { group_by = { "OrchestrationName", "Status" }, aggregate = "Count" }
      if role.nothing then
        assert.is_nil(q)
        assert.are.equal("DENIED", code)
        return
      end
      assert.is_table(q, msg)
      local want, n = {}, 0
      for _, r in ipairs(seen) do
        local k = r.name .. "|" .. r.status
        want[k] = (want[k] or 0) + 1
        n = n + 1
      end
      local got = {}
      for _, g in ipairs(q.groups) do got[g.orchestration_name .. "|" .. g.status] = g.count end
      assert.are.same(want, got)
      assert.are.equal(n, q.total_instances)
    end)

    it("counts only what it may see in the time series", function()
      local ts, msg, code = dx:get_time_series_metrics { from = manifest.created_at_ms - 7200000, to = NOW,
                                                         bucket = "1h" }
      if role.nothing then
        assert.is_nil(ts)
        assert.are.equal("DENIED", code)
        return
      end
      assert.is_table(ts, msg)
      local in_list = sql_list(seen_ids)
      local function count(types)
        return L.sql_value(db, ("SELECT count(*) AS n FROM history WHERE event_type IN (%s) AND instance_id IN %s")
          :format(types, in_list), ("SELECT count(*) AS n FROM history WHERE event_data::json->>'type' IN (%s) AND"
          .. " instance_id IN %s"):format(types, in_list))
      end
      assert.are.equal(#seen_ids, ts.totals.instances_started)
      assert.are.equal(count("'OrchestrationCompleted'"), ts.totals.instances_completed)
      assert.are.equal(count("'ActivityCompleted'"), ts.totals.activities_completed)
      assert.are.equal(count("'ActivityFailed'"), ts.totals.activities_failed)
    end)

    it("computes per-type metrics over what it may see, and store-wide ones only for a full view", function()
      local list, msg, code = dx:get_orchestration_metrics()
      if role.nothing then
        assert.is_nil(list)
        assert.are.equal("DENIED", code)
      else
        assert.is_table(list, msg)
        local groups, order = {}, {}
        for _, r in ipairs(seen) do
          local key = r.name .. "\0" .. (r.version or "")
          local g = groups[key]
          if not g then
            g = { orchestration_name = r.name, version = r.version, total_started = 0, total_completed = 0,
                  total_failed = 0, active_count = 0, durations_counted = 0, sum = 0 }
            groups[key] = g
            order[#order + 1] = key
          end
          g.total_started = g.total_started + 1
          if r.status == "Completed" then g.total_completed = g.total_completed + 1 end
          if r.status == "Failed" then g.total_failed = g.total_failed + 1 end
          if r.status == "Running" then g.active_count = g.active_count + 1 end
          local d = H.instance_duration(r)
          if d then g.durations_counted, g.sum = g.durations_counted + 1, g.sum + d end
        end
        table.sort(order)
        assert.are.equal(#order, #list)
        for i, key in ipairs(order) do
          local g, m = groups[key], list[i]
          for _, f in ipairs { "orchestration_name", "version", "total_started", "total_completed", "total_failed",
                               "active_count", "durations_counted" } do
            assert.are.equal(g[f], m[f], key .. " " .. f)
          end
          if g.durations_counted > 0 then
            assert.is_true(math.abs(g.sum / g.durations_counted - m.average_duration_ms) < 0.5)
          end
        end
      end
      for _, m in ipairs { "get_runtime_metrics", "get_queue_metrics", "get_provider_diagnostics" } do
        local res, err, c = dx[m](dx)
        if role.store_wide then
          assert.is_table(res, err)
        else
          assert.is_nil(res, m)
          assert.are.equal("DENIED", c, m)
        end
      end
      if role.store_wide then
        assert.are.equal(#ROWS, assert(dx:get_runtime_metrics()).total_instances_started)
      end
    end)

    it("shows only the part of a tree it may see", function()
      -- the tree under tree-done-1, walked here from the parent links the store holds
      local children = {}
      for _, r in ipairs(ROWS) do
        if r.parent then
          children[r.parent] = children[r.parent] or {}
          table.insert(children[r.parent], r.id)
        end
      end
      local function walk(id, out)
        for _, c in ipairs(children[id] or {}) do
          if role.sees(BY_ID[c]) then
            out[#out + 1] = c
            walk(c, out)
          end
        end
        return out
      end
      local g, msg, code = dx:get_instance_dependencies("tree-done-1")
      if not role.sees(BY_ID["tree-done-1"]) then
        assert.is_nil(g)
        assert.are.equal("NOTFOUND", code)
        return
      end
      assert.is_table(g, msg)
      local want = walk("tree-done-1", {})
      table.sort(want)
      local got = {}
      local function collect(nodes)
        for _, n in ipairs(nodes) do
          got[#got + 1] = n.instance_id
          local visible_children = 0
          for _, c in ipairs(children[n.instance_id] or {}) do
            if role.sees(BY_ID[c]) then visible_children = visible_children + 1 end
          end
          assert.are.equal(visible_children, n.child_count, n.instance_id)
          collect(n.children)
        end
      end
      collect(g.children)
      table.sort(got)
      assert.are.same(want, got)
      assert.are.equal(#want, g.total_descendants)
      -- a visible child of a hidden parent shows no parent (and is its own tree's root)
      if role.sees(BY_ID["cancel-parent-1::sub::2"]) and not role.sees(BY_ID["cancel-parent-1"]) then
        local c = assert(dx:get_instance_dependencies("cancel-parent-1::sub::2"))
        assert.is_nil(c.parent)
        assert.are.equal("cancel-parent-1::sub::2", c.tree_root)
      end
    end)

    it("reports stuck work only of what it may see", function()
      local res, msg, code = dx:find_stuck_instances { now = NOW }
      if role.nothing then
        assert.is_nil(res)
        assert.are.equal("DENIED", code)
        return
      end
      assert.is_table(res, msg)
      local plain = assert(durox.open(url, { readonly = true }))
      local all_stuck = assert(plain:find_stuck_instances { now = NOW })
      plain:close()
      local want = {}
      for _, s in ipairs(all_stuck.instances) do
        if BY_ID[s.instance_id] and seen_set[s.instance_id] then want[#want + 1] = s.instance_id end
      end
      table.sort(want)
      assert.are.same(want, H.sorted(H.ids(res.instances)))
    end)

    it("streams the events and the raw feed of what it may see", function()
      local s, msg, code = dx:stream_instance_events { event_types = "Started" }
      if code == "UNSUPPORTED" then return end -- this provider has no change feed (yet)
      if role.nothing then
        assert.are.same({ nil, "DENIED" }, { s, code })
      else
        assert(s, msg)
        local got = {}
        while true do
          local it = s:next()
          if not it then break end
          got[it.instance_id] = true
          -- payloads only when the policy always shows history
          if not role.history then assert.is_nil(it.input) end
        end
        s:close()
        -- every visible instance has an OrchestrationStarted event in history
        local want = H.keys(H.set(seen_ids))
        assert.are.same(want, H.keys(got))
      end
      -- the raw feed: only the rows of visible instances, their JSON only when the policy's
      -- can_view_history is a constant allow (payloads), nothing to a caller who may list nothing
      local ch, err, c2 = dx:read_changes { from = "start", limit = 100000, payloads = true }
      if role.nothing then
        assert.is_nil(ch)
        assert.are.equal("DENIED", c2)
      else
        assert.is_table(ch, err)
        local rows = 0
        local q = "SELECT instance_id AS i FROM history"
        for _, x in ipairs(pg and H.psql(q, pgname) or H.sql(q, db)) do
          if seen_set[x.i] then rows = rows + 1 end
        end
        assert.are.equal(rows, #ch.changes)
        for _, c in ipairs(ch.changes) do
          assert.is_true(seen_set[c.instance_id] == true, c.instance_id)
          if role.payloads then assert.is_string(c.data) else assert.is_nil(c.data) end
        end
      end
      -- the durable state of streams and rules is the journal's: can_manage_jobs
      local dl, _, c3 = dx:list_dead_letters()
      if c3 == "UNSUPPORTED" then return end -- this provider keeps no stream state (yet)
      if role.name == "on-call operator" or role.name == "break-glass admin" then
        assert.is_table(dl)
      else
        assert.is_nil(dl)
        assert.are.equal("DENIED", c3)
      end
    end)

    it("classifies a bulk dry run over what it may see", function()
      local targets = { "wait-approve-1", "list-a-03", "completed-seq-1", "tree-wait-1", "no-such-instance" }
      local r, msg, code = dx:cancel_instances { instances = targets, dry_run = true, reason = "dry" }
      assert.is_table(r, msg)
      local cancelled = H.set(r.cancelled_instances or {})
      local failed = {}
      for _, f in ipairs(r.failed_instances) do failed[f.instance_id] = f end
      for _, id in ipairs(targets) do
        local row = BY_ID[id]
        if not row or not seen_set[id] then
          assert.are.equal("NOTFOUND", failed[id].code, id)
          assert.are.equal(("instance '%s' not found"):format(id), failed[id].error, id)
        elseif role.name == "viewer" or (role.name == "per-row policy" and row.name ~= "WaitApprove") then
          assert.are.equal("DENIED", failed[id].code, id)
          assert.are.equal("denied", failed[id].error, id)
        elseif row.status ~= "Running" then
          assert.are.equal("CONFLICT", failed[id].code, id)
        else
          assert.is_true(cancelled[id], id)
        end
      end
      -- a filter over everything: only visible instances are matched
      r, msg, code = dx:cancel_instances { filter = {}, dry_run = true, max_instances = 200 }
      if role.nothing then
        assert.is_nil(r)
        assert.are.equal("DENIED", code)
      else
        assert.is_table(r, msg)
        assert.are.equal(#seen_ids, r.total_matched)
      end
    end)
  end)
end
end
