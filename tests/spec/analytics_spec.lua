-- analytics_spec.lua - query_instances, get_time_series_metrics and get_instance_dependencies
-- on the scenario store and the busy store (both written by the real runtime). Groups,
-- aggregates, percentiles and buckets are recomputed here in Lua from rows read with the
-- sqlite3 tool, following docs/metrics.md; dependency graphs are checked against Duroxide's own
-- getInstanceTree (oracle.js) and the store's parent links.
local durox = require "durox"
local H = require "helpers"

if H.skip or H.busy_skip then
  describe("analytics", function() pending("the scenario and busy fixtures are not set") end)
  return
end

local STORES = {
  { name = "scenario store", db = H.db, url = "sqlite:" .. H.db, oracle = H.oracle() },
  { name = "busy store", db = H.busy_db, url = "sqlite:" .. H.busy_db,
    oracle = assert(durox.decode_json(H.read_file(H.busy_oracle_path))) },
}
-- the same on PostgreSQL (read with psql and PostgreSQL's own JSON functions)
if not H.pg_busy_skip then
  STORES[#STORES + 1] = { name = "PostgreSQL scenario store", pg = "durox_scenarios",
    url = H.pg_url("durox_scenarios", "schema=dx"), oracle = assert(durox.decode_json(H.read_file(H.pg_oracle_path))) }
  STORES[#STORES + 1] = { name = "PostgreSQL busy store", pg = "durox_busy", url = H.pg_url("durox_busy", "schema=dx"),
    oracle = assert(durox.decode_json(H.read_file(H.pg_busy_oracle_path))) }
end

local function close(a, b)
  if a == nil or b == nil then return a == b end
  return math.abs(a - b) <= 1e-6 * math.max(1, math.abs(b))
end

-- nearest rank: the value at rank ceil(p * n / 100) of the sorted values
local function percentile(sorted, p)
  if #sorted == 0 then return nil end
  return sorted[(p * #sorted + 99) // 100]
end

local KEY = {
  OrchestrationName = function(r) return "orchestration_name", r.name end,
  Status = function(r) return "status", r.status end,
  CreatedDate = function(r) return "created_date", r.created // 86400000 * 86400000 end,
  CreatedHour = function(r) return "created_date", r.created // 3600000 * 3600000 end,
  ParentInstance = function(r) return "parent_instance", r.parent end,
  Version = function(r) return "version", r.version end,
}

-- The groups of docs/metrics.md computed in Lua; rows filtered by keep.
local function expected_groups(rows, group_by, keep)
  local groups, list = {}, {}
  for _, r in ipairs(rows) do
    if not keep or keep(r) then
      local parts, keys = {}, {}
      for i, g in ipairs(group_by) do
        local k, v = KEY[g](r)
        keys[k] = v
        parts[i] = v == nil and "\0nil" or tostring(v)
      end
      local id = table.concat(parts, "\1")
      local grp = groups[id]
      if not grp then
        grp = { keys = keys, count = 0, completed = 0, failed = 0, durs = {} }
        groups[id] = grp
        list[#list + 1] = grp
      end
      grp.count = grp.count + 1
      if r.status == "Completed" then grp.completed = grp.completed + 1 end
      if r.status == "Failed" then grp.failed = grp.failed + 1 end
      local d = H.instance_duration(r)
      if d then grp.durs[#grp.durs + 1] = d end
    end
  end
  for _, g in ipairs(list) do
    table.sort(g.durs)
    local sum = 0
    for _, d in ipairs(g.durs) do sum = sum + d end
    if #g.durs > 0 then g.average = sum / #g.durs end
    local done = g.completed + g.failed
    if done > 0 then g.success, g.failure = g.completed / done, g.failed / done end
  end
  -- count descending, then the keys ascending (NULL first)
  table.sort(list, function(a, b)
    if a.count ~= b.count then return a.count > b.count end
    for _, gname in ipairs(group_by) do
      local k = KEY[gname]({ name = 0, status = 0, created = 0 })
      local x, y = a.keys[k], b.keys[k]
      if x ~= y then
        if x == nil then return true end
        if y == nil then return false end
        return x < y
      end
    end
    return false
  end)
  return list
end

local function check_groups(exp, res, group_by, limit)
  assert.are.equal(#exp, res.total_groups)
  local n = limit and math.min(limit, #exp) or #exp
  assert.are.equal(n, #res.groups)
  local total = 0
  for _, g in ipairs(exp) do total = total + g.count end
  assert.are.equal(total, res.total_instances)
  for i = 1, n do
    local e, g = exp[i], res.groups[i]
    for _, gname in ipairs(group_by) do
      local k = KEY[gname]({ name = 0, status = 0, created = 0 })
      local v = g[k]
      if v == durox.null then v = nil end
      assert.are.equal(e.keys[k], v, ("group %d key %s"):format(i, k))
    end
    assert.are.equal(e.count, g.count)
    assert.are.equal(e.completed, g.completed)
    assert.are.equal(e.failed, g.failed)
    assert.are.equal(#e.durs, g.durations_counted)
    assert.is_true(close(e.average, g.average_duration_ms))
    assert.is_true(close(e.success, g.success_rate))
    assert.is_true(close(e.failure, g.failure_rate))
    assert.are.equal(percentile(e.durs, 50), g.p50_duration_ms)
    assert.are.equal(percentile(e.durs, 95), g.p95_duration_ms)
    assert.are.equal(percentile(e.durs, 99), g.p99_duration_ms)
  end
end

for _, S in ipairs(STORES) do
  describe("analytics on the " .. S.name, function()
    local dx = assert(durox.open(S.url, { readonly = true }))
    local rows = S.pg and H.pg_instance_rows(S.pg) or H.instance_rows(S.db)

    describe("query_instances", function()
      for _, gb in ipairs({ {}, { "OrchestrationName" }, { "Status" }, { "CreatedDate" }, { "CreatedHour" },
                             { "ParentInstance" }, { "Version" }, { "OrchestrationName", "Status" },
                             { "Status", "Version", "ParentInstance" } }) do
        it("groups by {" .. table.concat(gb, ", ") .. "} with every aggregate", function()
          local res = assert(dx:query_instances { group_by = gb })
          check_groups(expected_groups(rows, gb), res, gb)
          assert.are.same(gb, res.group_by)
          assert.are.same({ "Count", "AverageDuration", "SuccessRate", "FailureRate", "P50Duration", "P95Duration",
                            "P99Duration" }, res.aggregate)
        end)
      end

      it("applies the listing filter in the store", function()
        local res = assert(dx:query_instances { filter = { status = { "Completed", "Failed" } },
                                                group_by = { "OrchestrationName" } })
        check_groups(expected_groups(rows, { "OrchestrationName" },
          function(r) return r.status == "Completed" or r.status == "Failed" end), res, { "OrchestrationName" })
        local roots = assert(dx:query_instances { filter = { has_parent = false }, group_by = "Status" })
        check_groups(expected_groups(rows, { "Status" }, function(r) return r.parent == nil end), roots, { "Status" })
      end)

      it("limits the groups and keeps the totals", function()
        local exp = expected_groups(rows, { "OrchestrationName" })
        local res = assert(dx:query_instances { group_by = "OrchestrationName", limit = 3 })
        check_groups(exp, res, { "OrchestrationName" }, 3)
      end)

      it("computes only what is asked", function()
        local res = assert(dx:query_instances { group_by = "Status", aggregate = { "Count", "SuccessRate" } })
        assert.are.same({ "Count", "SuccessRate" }, res.aggregate)
        for _, g in ipairs(res.groups) do
          assert.is_number(g.count)
          assert.is_nil(g.average_duration_ms)
          assert.is_nil(g.p50_duration_ms)
          assert.is_nil(g.failure_rate)
          assert.are.equal(0, g.durations_counted)
        end
      end)
    end)

    describe("get_time_series_metrics", function()
      -- every durable timestamp the series use, read independently
      local events = S.pg and H.nil_nulls(H.psql([[
        SELECT h.t, (h.j->>'timestamp_ms')::int8 AS ts, i.orchestration_name AS name,
          (h.j #> '{details,Application,kind,Cancelled}' IS NOT NULL)::int AS cancelled,
          (SELECT (f.event_data::json->>'timestamp_ms')::int8 FROM history f WHERE f.instance_id = h.instance_id
             AND f.event_data::json->>'type' = 'OrchestrationStarted' ORDER BY f.execution_id, f.event_id LIMIT 1)
             AS start_ts
        FROM (SELECT instance_id, event_data::jsonb AS j, event_data::jsonb->>'type' AS t FROM history) h
          JOIN instances i ON i.instance_id = h.instance_id
        WHERE h.t IN ('OrchestrationCompleted', 'OrchestrationFailed', 'ActivityCompleted', 'ActivityFailed')]],
        S.pg)) or H.rows([[
        SELECT h.event_type AS t, json_extract(h.event_data, '$.timestamp_ms') AS ts, i.orchestration_name AS name,
          json_type(h.event_data, '$.details.Application.kind.Cancelled') IS NOT NULL AS cancelled,
          (SELECT json_extract(f.event_data, '$.timestamp_ms') FROM history f WHERE f.instance_id = h.instance_id
             AND f.event_type = 'OrchestrationStarted' ORDER BY f.execution_id, f.event_id LIMIT 1) AS start_ts
        FROM history h JOIN instances i ON i.instance_id = h.instance_id
        WHERE h.event_type IN ('OrchestrationCompleted', 'OrchestrationFailed', 'ActivityCompleted', 'ActivityFailed')]],
        S.db)
      local lo, hi = math.huge, 0
      for _, r in ipairs(rows) do lo, hi = math.min(lo, r.created), math.max(hi, r.created) end
      for _, e in ipairs(events) do lo, hi = math.min(lo, e.ts), math.max(hi, e.ts) end

      local function expected(from, to, bucket, name)
        local start = from // bucket * bucket
        local n = (to - start + bucket - 1) // bucket
        local b = {}
        for k = 1, n do
          b[k] = { start = start + (k - 1) * bucket, instances_started = 0, instances_completed = 0, instances_failed = 0,
                   instances_cancelled = 0, activities_completed = 0, activities_failed = 0, durations_counted = 0,
                   sum = 0 }
        end
        local function at(ts)
          if ts < start or ts >= to then return nil end
          return b[(ts - start) // bucket + 1]
        end
        for _, r in ipairs(rows) do
          local x = (not name or r.name == name) and at(r.created)
          if x then x.instances_started = x.instances_started + 1 end
        end
        for _, e in ipairs(events) do
          local x = (not name or e.name == name) and at(e.ts)
          if x then
            if e.t == "OrchestrationCompleted" then x.instances_completed = x.instances_completed + 1
            elseif e.t == "OrchestrationFailed" and e.cancelled == 1 then x.instances_cancelled = x.instances_cancelled + 1
            elseif e.t == "OrchestrationFailed" then x.instances_failed = x.instances_failed + 1
            elseif e.t == "ActivityCompleted" then x.activities_completed = x.activities_completed + 1
            else x.activities_failed = x.activities_failed + 1 end
            if e.t == "OrchestrationCompleted" or e.t == "OrchestrationFailed" then
              x.durations_counted, x.sum = x.durations_counted + 1, x.sum + (e.ts - e.start_ts)
            end
          end
        end
        for _, x in ipairs(b) do
          if x.durations_counted > 0 then x.average_duration_ms = x.sum / x.durations_counted end
          x.sum = nil
        end
        return b, start
      end

      local function check(res, exp, start, to, bucket)
        assert.are.equal(start, res.from)
        assert.are.equal(to, res.to)
        assert.are.equal(bucket, res.bucket_ms)
        assert.are.equal(#exp, #res.buckets)
        local total = { instances_started = 0, activities_completed = 0 }
        for k, e in ipairs(exp) do
          local g = res.buckets[k]
          for f, v in pairs(e) do
            if f == "average_duration_ms" then
              assert.is_true(close(v, g[f]), ("bucket %d: %s vs %s"):format(k, tostring(g[f]), v))
            else
              assert.are.equal(v, g[f], ("bucket %d field %s"):format(k, f))
            end
          end
          total.instances_started = total.instances_started + e.instances_started
          total.activities_completed = total.activities_completed + e.activities_completed
        end
        assert.are.equal(total.instances_started, res.totals.instances_started)
        assert.are.equal(total.activities_completed, res.totals.activities_completed)
      end

      it("buckets every series over a past window", function()
        local from, to, bucket = lo - 3600000, hi + 1, 60000
        local res = assert(dx:get_time_series_metrics { from = from, to = to, bucket_ms = bucket })
        local exp, start = expected(from, to, bucket, nil)
        check(res, exp, start, to, bucket)
        assert.is_true(res.totals.instances_started == #rows)
      end)

      it("chooses a round bucket giving at most 60 buckets as laid out from the aligned start", function()
        -- an hour that starts on a minute boundary: 60 buckets of 1m
        local from = (lo // 60000) * 60000 - 3600000
        local res = assert(dx:get_time_series_metrics { from = from, to = from + 3600000 })
        assert.are.equal(60000, res.bucket_ms)
        assert.are.equal(60, #res.buckets)
        -- the same hour starting 30 s into a minute: 1m buckets would need 61 (it gave 61);
        -- the next round size, 5m, lays out 13
        res = assert(dx:get_time_series_metrics { from = from + 30000, to = from + 30000 + 3600000 })
        assert.are.equal(300000, res.bucket_ms)
        assert.are.equal(13, #res.buckets)
        local exp, start = expected(from + 30000, from + 30000 + 3600000, 300000, nil)
        check(res, exp, start, from + 30000 + 3600000, 300000)
      end)

      it("takes a bucket given as a duration and aligns the window to it", function()
        local from, to = lo - 1, hi + 1
        local res = assert(dx:get_time_series_metrics { from = from, to = to, bucket = "1s" })
        local exp, start = expected(from, to, 1000, nil)
        check(res, exp, start, to, 1000)
      end)

      it("restricts to one orchestration", function()
        local from, to = lo - 60000, hi + 60000
        local name = rows[1].name
        local res = assert(dx:get_time_series_metrics { from = from, to = to, bucket = "10s", name = name })
        local exp, start = expected(from, to, 10000, name)
        check(res, exp, start, to, 10000)
        assert.are.equal(name, res.orchestration_name)
      end)

      it("returns only the series asked for", function()
        local res = assert(dx:get_time_series_metrics { from = lo - 1, to = hi + 1, bucket = "1m",
                                                        series = { "instances_started", "activities_failed" } })
        assert.are.same({ "instances_started", "activities_failed" }, res.series)
        for _, b in ipairs(res.buckets) do
          assert.is_number(b.instances_started)
          assert.is_number(b.activities_failed)
          assert.is_nil(b.instances_completed)
          assert.is_nil(b.average_duration_ms)
        end
      end)
    end)

    describe("get_instance_dependencies", function()
      local parent_of, children_of = {}, {}
      for _, r in ipairs(rows) do
        parent_of[r.id] = r.parent
        if r.parent then
          children_of[r.parent] = children_of[r.parent] or {}
          table.insert(children_of[r.parent], r.id)
        end
      end
      local status_of = {}
      for _, r in ipairs(rows) do status_of[r.id] = r.status end

      -- every node of our graph, checked against the parent links; returns the ids
      local function walk(node, parent, depth, ids)
        ids[#ids + 1] = node.instance_id
        assert.are.equal(parent, parent_of[node.instance_id])
        assert.are.equal(depth, node.depth)
        assert.are.equal(#(children_of[node.instance_id] or {}), node.child_count)
        assert.are.equal(status_of[node.instance_id], node.status)
        for _, c in ipairs(node.children) do walk(c, node.instance_id, depth + 1, ids) end
        return ids
      end

      it("agrees with Duroxide's getInstanceTree for every instance", function()
        local n = 0
        for id, info in pairs(S.oracle.instances) do
          if info.tree and info.tree.allIds then
            local g = assert(dx:get_instance_dependencies(id))
            n = n + 1
            assert.are.equal(id, g.root_instance)
            assert.are.equal(info.tree.size - 1, g.total_descendants)
            local ids = {}
            for _, c in ipairs(g.children) do walk(c, id, 1, ids) end
            local want = {}
            for _, x in ipairs(info.tree.allIds) do if x ~= id then want[#want + 1] = x end end
            assert.are.same(H.sorted(want), H.sorted(ids))
            assert.is_false(g.truncated)
            assert.are.equal(#(children_of[id] or {}), #g.children)
            if parent_of[id] then
              assert.are.equal(parent_of[id], g.parent.instance_id)
              assert.are.equal(status_of[parent_of[id]], g.parent.status)
            else
              assert.is_nil(g.parent)
            end
            local top = id
            while parent_of[top] do top = parent_of[top] end
            assert.are.equal(top, g.tree_root)
          end
        end
        assert.is_true(n > 50)
      end)

      it("lists down to the depth limit and says when it cut", function()
        local deepest
        for id in pairs(children_of) do
          if not parent_of[id] then
            local g = assert(dx:get_instance_dependencies(id))
            if g.total_descendants > #g.children then deepest = id end
          end
        end
        assert(deepest, "a tree with grandchildren")
        local g = assert(dx:get_instance_dependencies(deepest, { max_depth = 1 }))
        assert.are.equal(#children_of[deepest], #g.children)
        for _, c in ipairs(g.children) do assert.are.same({}, c.children) end
        assert.is_true(g.truncated)
        assert.are.equal(1, g.max_depth)
        assert.are.equal(#children_of[deepest], g.listed_descendants)
      end)

      it("reports unknown instances", function()
        local g, msg, code = dx:get_instance_dependencies("no-such-instance")
        assert.is_nil(g)
        assert.are.equal("instance 'no-such-instance' not found", msg)
        assert.are.equal("NOTFOUND", code)
      end)
    end)
  end)
end

for _, P in ipairs(H.providers()) do
describe("analytics misuse on " .. P.name, function()
  local dx = P.open({ readonly = true })
  it("raises for malformed requests", function()
    assert.has_error(function() dx:query_instances { group_by = "Colour" } end)
    assert.has_error(function() dx:query_instances { group_by = { "Status", "Status" } } end,
      "query field 'group_by' lists 'Status' twice")
    assert.has_error(function() dx:query_instances { aggregate = "Median" } end)
    assert.has_error(function() dx:query_instances { filter = { predicate = function() return true end } } end,
      "query_instances does not take a predicate: its groups are computed by the store")
    assert.has_error(function() dx:query_instances { limit = -1 } end)
    assert.has_error(function() dx:query_instances { sort = "x" } end, "unknown query field 'sort'")
    assert.has_error(function() dx:get_time_series_metrics { bucket = "often" } end)
    assert.has_error(function() dx:get_time_series_metrics { series = { "everything" } } end)
    assert.has_error(function() dx:get_instance_dependencies("x", { max_depth = -1 }) end)
  end)

  it("raises for requests whose fields contradict each other or leave their range", function()
    assert.has_error(function() dx:query_instances { group_by = { "CreatedDate", "CreatedHour" } } end,
      "query field 'group_by' cannot combine CreatedDate and CreatedHour")
    assert.has_error(function() dx:get_time_series_metrics { from = 2000, to = 1000 } end,
      "time series request field 'from' must be before 'to' (the window is empty)")
    -- a bucket below 1 s raises like an unknown group_by name does (both are misuse)
    assert.has_error(function() dx:get_time_series_metrics { from = 0, to = 100000000, bucket_ms = 500 } end,
      "time series request field 'bucket_ms' out of range (1000 to 3155760000000 ms), got 500")
    assert.has_error(function() dx:get_time_series_metrics { bucket_ms = 5 } end,
      "time series request field 'bucket_ms' out of range (1000 to 3155760000000 ms), got 5")
    assert.has_error(function() dx:query_instances { group_by = { "Nope" } } end,
      "query field 'group_by' expects OrchestrationName, Status, CreatedDate, CreatedHour, ParentInstance or Version, got 'Nope' at [1]")
  end)

  it("returns LIMIT for requests it cannot serve", function()
    local r, msg, code
    r, msg, code = dx:get_time_series_metrics { from = 0, to = 100000000, bucket = "1s" }
    assert.are.equal("100000 buckets of 1000 ms: at most 10000 (use a larger bucket)", msg)
    assert.are.equal("LIMIT", code)
  end)

  it("defaults the window to metrics_retention_hours and picks a round bucket", function()
    dx:config { metrics_retention_hours = 2 }
    local res = assert(dx:get_time_series_metrics())
    assert.are.equal(300000, res.bucket_ms) -- the smallest round unit that splits 2 h in at most 60
    assert.is_true(res.to - res.from >= 7200000 and res.to - res.from < 7200000 + 300000)
    assert.is_true(#res.buckets <= 25)
  end)
end)
end
