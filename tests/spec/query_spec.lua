-- query_spec.lua - the query language on a store written by the real Duroxide runtime: the
-- same filter written as a Lua table and as a query string selects exactly the same
-- instances; constructs only the language has (OR, NOT, IN, BETWEEN, LIKE, CONTAINS, IS NULL,
-- ranges) against the answer computed here in Lua from a full listing; paging, the iterator,
-- search and predicates with query strings; errors; and the deepest queries the parser
-- accepts run on SQLite.
local durox = require "durox"
local H = require "helpers"

if #H.providers() == 0 then
  describe("query language", function() pending("DUROX_SCENARIO_DB and DUROX_ORACLE are not set") end)
  return
end

-- Runs on both providers (H.providers): every query compiles to SQLite's and to PostgreSQL's SQL.

for _, P in ipairs(H.providers()) do
local pg = P.name == "postgres"
local dx = P.open({ readonly = true })
local all = assert(dx:list_instances())
local by_id = {}
for _, s in ipairs(all) do by_id[s.instance_id] = s end

-- ids of `all` that satisfy f, and ids a filter lists, both sorted
local function where(f) return H.where(all, f) end
local function list_ids(filter) return H.list_ids(dx, filter) end

-- byte-wise a < b (Lua's < follows the C library's collation)
local function bytes_lt(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- a SQL-style string literal for the query language
local function q(s) return "'" .. s:gsub("'", "''") .. "'" end

local times = {}
for _, s in ipairs(all) do times[#times + 1] = s.completed_at end
table.sort(times)
local mid_completed = times[#times // 2]
local low_completed, high_completed = times[#times // 4], times[3 * #times // 4]
local u = by_id["completed-seq-1"].updated_at

describe("a query string and the equivalent table on " .. P.name, function()
  local pairs_ = {
    { { status = "Failed" }, "status = 'Failed'" },
    { { status = { "Failed", "Running" } }, "status IN ('failed', 'RUNNING')" },
    { { name = "Sequence" }, "name = 'Sequence'" },
    { { orchestration_name = "Sequence" }, "orchestration_name = \"Sequence\"" },
    { { name_prefix = "Tree" }, "name STARTS_WITH 'Tree'" },
    { { version = "2.0.0" }, "version = '2.0.0'" },
    { { instance_id = "quote'single-1" }, "id = 'quote''single-1'" },
    { { instance_id = "quote\"double-1" }, "instance_id = \"quote\"\"double-1\"" },
    { { instance_id = "back\\slash-1" }, "id = 'back\\slash-1'" },
    { { instance_id = "has spaces 1" }, "id = 'has spaces 1'" },
    { { instance_id = "ünï-日本-✓" }, "id = 'ünï-日本-✓'" },
    { { id_prefix = "pct%" }, "id STARTS_WITH 'pct%'" },
    { { instance_id_prefix = "tree-done-1::" }, "id STARTS_WITH 'tree-done-1::'" },
    { { parent_instance = "tree-done-1" }, "parent = 'tree-done-1'" },
    { { has_parent = true }, "has_parent = true" },
    { { has_parent = true }, "parent_instance IS NOT NULL" },
    { { has_parent = false }, "has_parent = false" },
    { { has_parent = false }, "parent IS NULL" },
    { { failure_kind = "cancelled" }, "failure_kind = 'Cancelled'" },
    { { failure_kind = { "application", "nondeterminism" } }, "kind IN ('application', 'nondeterminism')" },
    { { custom_status = '{"phase":"review"}' }, [[custom_status = '{"phase":"review"}']] },
    { { custom_status_prefix = '{"phase":' }, [[custom_status STARTS_WITH '{"phase":']] },
    { { min_executions = 2 }, "execution_count >= 2" },
    { { max_executions = 1 }, "execution_count <= '1'" },
    { { created_after = "-3650d" }, "created_at > '-3650d'" },
    { { created_after = "-3650d" }, "created_at > now() - 3650d" },
    { { created_after = "-3650d" }, "created_at > -3650d" },
    { { created_before = "now" }, "created_at < now()" },
    { { updated_after = u }, "updated_at > " .. u },
    { { updated_after = durox.format_time(u) }, "updated_at > " .. q(durox.format_time(u)) },
    { { completed_before = mid_completed }, "completed_at < " .. mid_completed },
    { { completed_after = mid_completed }, "completed_at > " .. mid_completed },
    { { text = "INVENTORY unavailable" }, "text CONTAINS 'INVENTORY unavailable'" },
    { { text = "日本" }, "text CONTAINS '日本'" },
    { { status = "Running", name = "WaitApprove" }, "status = 'Running' AND name = 'WaitApprove'" },
    { { status = "Completed", name_prefix = "Tree", has_parent = true, max_executions = 1 },
      "has_parent = true AND status = 'Completed' AND execution_count <= 1 AND name STARTS_WITH 'Tree'" },
  }
  for _, p in ipairs(pairs_) do
    it(p[2], function()
      local from_table = assert(dx:list_instances(p[1]))
      local from_query = assert(dx:list_instances(p[2]))
      assert.are.same(H.ids(from_table), H.ids(from_query)) -- same instances, same order
      assert.are.same(from_table, from_query)              -- and the same summaries
    end)
  end

  it("selects something in most cases (the comparisons are not vacuous)", function()
    local nonempty = 0
    for _, p in ipairs(pairs_) do
      if #assert(dx:list_instances(p[2])) > 0 then nonempty = nonempty + 1 end
    end
    assert.is_true(nonempty >= #pairs_ - 2, nonempty .. " of " .. #pairs_)
  end)
end)

describe("constructs only the query language has on " .. P.name, function()
  local cases = {
    { "status = 'Failed' OR name = 'Echo'", function(s) return s.status == "Failed" or s.orchestration_name == "Echo" end },
    { "NOT status = 'Completed'", function(s) return s.status ~= "Completed" end },
    { "status != 'Completed'", function(s) return s.status ~= "Completed" end },
    { "status <> 'Completed' AND status <> 'Failed'", function(s) return s.status == "Running" end },
    { "name NOT IN ('TreeNode', 'Sequence', 'Echo')", function(s)
      return s.orchestration_name ~= "TreeNode" and s.orchestration_name ~= "Sequence" and s.orchestration_name ~= "Echo"
    end },
    -- NOT and != are true where the field is absent (NULL), as users expect
    { "NOT parent = 'tree-done-1'", function(s) return s.parent_instance ~= "tree-done-1" end },
    { "parent != 'tree-done-1'", function(s) return s.parent_instance ~= "tree-done-1" end },
    { "NOT completed_at > " .. mid_completed, function(s) return not (s.completed_at and s.completed_at > mid_completed) end },
    { "NOT failure_kind = 'cancelled'", function(s) return s.failure_kind ~= "cancelled" end },
    { "NOT NOT failure_kind = 'cancelled'", function(s) return s.failure_kind == "cancelled" end },
    { "failure_kind IS NULL", function(s) return s.failure_kind == nil end },
    { "custom_status IS NOT NULL", function(s) return s.custom_status ~= nil end },
    { "completed_at IS NULL", function(s) return s.completed_at == nil end },
    { "execution_count BETWEEN 2 AND 4", function(s) return s.execution_count >= 2 and s.execution_count <= 4 end },
    { ("completed_at BETWEEN %d AND %d"):format(low_completed, high_completed), function(s)
      return s.completed_at ~= nil and s.completed_at >= low_completed and s.completed_at <= high_completed
    end },
    { ("completed_at NOT BETWEEN %d AND %d"):format(low_completed, high_completed), function(s)
      return not (s.completed_at ~= nil and s.completed_at >= low_completed and s.completed_at <= high_completed)
    end },
    { "updated_at >= " .. u .. " AND updated_at <= " .. (u + 1000), function(s)
      return s.updated_at >= u and s.updated_at <= u + 1000
    end },
    { "execution_count > 1 AND execution_count < 4", function(s) return s.execution_count > 1 and s.execution_count < 4 end },
    -- LIKE: % and _ wildcards, \ escapes, ASCII case-insensitive
    { "id LIKE 'list-_-0%'", function(s) return s.instance_id:match("^list%-.%-0") ~= nil end },
    { "name LIKE 'tree%'", function(s) return s.orchestration_name:lower():sub(1, 4) == "tree" end },
    { "id LIKE 'pct\\%%'", function(s) return s.instance_id:sub(1, 4) == "pct%" end },
    { "id LIKE 'pct_%'", function(s) return s.instance_id:sub(1, 3) == "pct" and #s.instance_id > 3 end },
    { "id LIKE '%\\\\%'", function(s) return s.instance_id:find("\\", 1, true) ~= nil end },
    { "id NOT LIKE '%::sub::%'", function(s) return s.instance_id:find("::sub::", 1, true) == nil end },
    -- CONTAINS on a field: a substring, ASCII case-insensitive
    { "name CONTAINS 'approve'", function(s) return s.orchestration_name:lower():find("approve", 1, true) ~= nil end },
    { "id CONTAINS '::SUB::3'", function(s) return s.instance_id:find("::sub::3", 1, true) ~= nil end },
    -- STARTS_WITH is case-sensitive and takes % literally
    { "name STARTS_WITH 'tree'", function() return false end },
    { "id NOT STARTS_WITH 'tree' AND id NOT STARTS_WITH 'list'", function(s)
      return s.instance_id:sub(1, 4) ~= "tree" and s.instance_id:sub(1, 4) ~= "list"
    end },
    -- text ranges compare bytes
    { "id >= 'list-b' AND id < 'list-c'", function(s)
      return not bytes_lt(s.instance_id, "list-b") and bytes_lt(s.instance_id, "list-c")
    end },
    -- precedence: NOT > AND > OR, parentheses
    { "status = 'Running' OR status = 'Failed' AND failure_kind = 'cancelled'", function(s)
      return s.status == "Running" or (s.status == "Failed" and s.failure_kind == "cancelled")
    end },
    { "(status = 'Running' OR status = 'Failed') AND name = 'WaitApprove'", function(s)
      return (s.status == "Running" or s.status == "Failed") and s.orchestration_name == "WaitApprove"
    end },
    { "NOT status = 'Running' AND name = 'WaitApprove'", function(s)
      return s.status ~= "Running" and s.orchestration_name == "WaitApprove"
    end },
    { "NOT (status = 'Running' AND name = 'WaitApprove')", function(s)
      return not (s.status == "Running" and s.orchestration_name == "WaitApprove")
    end },
    { "has_parent = true AND (name = 'WaitApprove' OR parent STARTS_WITH 'tree-wait') OR version = '2.0.0'", function(s)
      return (s.parent_instance ~= nil and (s.orchestration_name == "WaitApprove"
        or (s.parent_instance or ""):sub(1, 9) == "tree-wait")) or s.version == "2.0.0"
    end },
    { "version != '1.0.0'", function(s) return s.version ~= "1.0.0" end },
    { "created_at <= now()", function() return true end },
    { "created_at > now() + 1h", function() return false end },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      assert.are.same(where(c[2]), list_ids(c[1]))
    end)
  end

  it("values are data, never SQL", function()
    -- each of these is one string value; as SQL text they would match everything
    assert.are.same({}, list_ids("id = 'x'' OR ''1''=''1'"))
    assert.are.same({}, list_ids("name = 'Echo'') OR 1=1 --'"))
    assert.are.same({}, list_ids("id IN ('x''); DROP TABLE instances; --')"))
    assert.are.same({ "quote'single-1" }, list_ids("id LIKE 'quote''%'"))
    assert.are.equal(#all, #list_ids("created_at > 0"))
  end)

  it("a table's query field is ANDed with its other fields", function()
    assert.are.same(where(function(s)
      return s.status == "Running" and (s.orchestration_name == "WaitApprove" or s.orchestration_name == "TreeNode")
    end), list_ids({ status = "Running", query = "name = 'WaitApprove' OR name = 'TreeNode'" }))
    assert.are.same(list_ids("status = 'Running' AND (name = 'WaitApprove' OR name = 'TreeNode')"),
      list_ids({ status = "Running", query = "name = 'WaitApprove' OR name = 'TreeNode'" }))
  end)
end)

describe("query strings wherever a filter is taken on " .. P.name, function()
  local Q = "status = 'Completed' AND (name STARTS_WITH 'Tree' OR name = 'Sequence') OR has_parent = true"
  local expected = where(function(s)
    return (s.status == "Completed" and (s.orchestration_name:sub(1, 4) == "Tree" or s.orchestration_name == "Sequence"))
      or s.parent_instance ~= nil
  end)

  it("list_instances_paginated visits every match once in every order", function()
    assert.is_true(#expected > 10)
    for _, order in ipairs { "CreatedAt", "UpdatedAt", "InstanceId", "OrchestrationName" } do
      local got, token, pages = {}, nil, 0
      repeat
        local r = assert(dx:list_instances_paginated({ filter = Q, page_size = 4, page_token = token,
          order_by = order, total_count = true }))
        assert.are.equal(#expected, r.total_count)
        if r.next_page_token then assert.are.equal(4, #r.instances) end
        for _, s in ipairs(r.instances) do got[#got + 1] = s.instance_id end
        token = r.next_page_token
        pages = pages + 1
      until not token
      assert.are.equal(math.ceil(#expected / 4), pages)
      assert.are.same(expected, H.sorted(got))
      if order == "CreatedAt" then assert.are.same(H.ids(assert(dx:list_instances(Q))), got) end
    end
  end)

  it("binds tokens to the filter: the same filter as a table continues, another query does not", function()
    local r = assert(dx:list_instances_paginated({ filter = "status = 'completed'", page_size = 3 }))
    local tok = assert(r.next_page_token)
    -- same canonical text (status = 'Completed'), so the same filter
    local a = assert(dx:list_instances_paginated({ filter = { status = "Completed" }, page_size = 3, page_token = tok }))
    local b = assert(dx:list_instances_paginated({ filter = "STATUS = \"Completed\"", page_size = 3, page_token = tok }))
    assert.are.same(H.ids(a.instances), H.ids(b.instances))
    local full = H.ids(assert(dx:list_instances({ status = "Completed" })))
    assert.are.same({ full[4], full[5], full[6] }, H.ids(b.instances))
    local ok, msg, code = dx:list_instances_paginated({ filter = "status = 'Completed' AND version = '1.0.0'",
      page_size = 3, page_token = tok })
    assert.is_nil(ok)
    assert.are.equal("page token was issued for a different filter or order; repeat the first request without a token", msg)
    assert.are.equal("INVALID", code)
  end)

  it("keeps a token valid while now() moves on", function()
    local query = "created_at > now() - 3650d AND updated_at < now() + 1h"
    local r = assert(dx:list_instances_paginated({ filter = query, page_size = 5, order_by = "InstanceId" }))
    local tok = assert(r.next_page_token)
    local later = durox.now()
    while durox.now() == later do end -- the clock moves on between the calls
    local r2 = assert(dx:list_instances_paginated({ filter = query, page_size = 5, page_token = tok, order_by = "InstanceId" }))
    local ids = H.sorted(H.ids(all))
    assert.are.same({ ids[6], ids[7], ids[8], ids[9], ids[10] }, H.ids(r2.instances))
  end)

  it("the iterator streams the same instances", function()
    local got = {}
    for s in dx:instances(Q, { batch_size = 3 }) do got[#got + 1] = s.instance_id end
    assert.are.same(expected, got) -- InstanceId order, ascending
  end)

  it("search_instances takes a query as its filter", function()
    local r = assert(dx:search_instances({ text = "tree", filter = "status = 'Running' AND has_parent = true" }))
    assert.are.same(where(function(s)
      return s.status == "Running" and s.parent_instance ~= nil
        and (s.instance_id:lower():find("tree", 1, true) or s.orchestration_name:lower():find("tree", 1, true))
    end), H.sorted(H.ids(r)))
    assert.is_true(#r > 0)
  end)

  it("a predicate applies after the query", function()
    local pred = function(s) return #s.instance_id % 2 == 0 end
    assert.are.same(where(function(s) return s.status == "Running" and pred(s) end),
      H.sorted(H.ids(assert(dx:list_instances("status = 'Running'", pred)))))
    local r = assert(dx:list_instances_paginated({ filter = "status = 'Running'", predicate = pred, total_count = true }))
    assert.are.equal(#where(function(s) return s.status == "Running" and pred(s) end), r.total_count)
  end)
end)

describe("malformed queries on " .. P.name, function()
  it("raise their message wherever a filter is taken", function()
    local msg = "query error at position 10: expected a value after '=' but found end of query"
    assert.has_error(function() dx:list_instances("status = ") end, msg)
    assert.has_error(function() dx:list_instances_paginated({ filter = "status = " }) end, msg)
    assert.has_error(function() dx:search_instances({ text = "x", filter = "status = " }) end, msg)
    assert.has_error(function() dx:instances("status = ") end, msg)
    assert.has_error(function() dx:list_instances({ status = "Failed", query = "status = " }) end, msg)
    assert.has_error(function() dx:list_instances({ query = 5 }) end, "filter field 'query' expects a string, got number")
    assert.has_error(function() dx:list_instances("name = 'a\0b'") end, "query contains a NUL byte")
    assert.has_error(function() dx:list_instances("colour = 'red'") end,
      "query error at position 1: unknown field 'colour' (fields: status, failure_kind, orchestration_name (or name), "
      .. "version, instance_id (or id), parent_instance (or parent), has_parent, created_at, updated_at, completed_at, "
      .. "custom_status, execution_count, text)")
  end)

  it("durox.parse_query returns the canonical text, or nil, message, INVALID", function()
    assert.are.equal("(status IN ('Failed', 'Running') AND orchestration_name = 'Order' AND created_at > 'now() - 1h')",
      durox.parse_query("status IN ('failed','running') and name = 'Order' and created_at > now() - 1h"))
    assert.are.same({ nil, "query error at position 12: unterminated string starting at position 8", "INVALID" },
      { durox.parse_query("name = 'abc") })
    assert.are.same({ nil, "query error at position 1: expected a condition but found end of query", "INVALID" },
      { durox.parse_query("") })
    assert.has_error(function() durox.parse_query() end)
  end)
end)

describe("the deepest queries the parser accepts on " .. P.name, function()
  -- a leaf the store evaluates and this spec can evaluate too (text via the details)
  local details = {}
  local function text_has(s, needle)
    local d = details[s.instance_id] or assert(dx:get_instance_details(s.instance_id))
    details[s.instance_id] = d
    for _, v in ipairs { s.instance_id, s.orchestration_name, s.custom_status or "", d.input or "", d.output or "" } do
      if v:lower():find(needle, 1, true) then return true end
    end
    return false
  end
  local leaves = {
    { "text CONTAINS 'result='", function(s) return text_has(s, "result=") end },
    { "updated_at > " .. u, function(s) return s.updated_at > u end },
    { "failure_kind IS NULL", function(s) return s.failure_kind == nil end },
    { "id CONTAINS 'sub'", function(s) return s.instance_id:find("sub", 1, true) ~= nil end },
  }

  -- 16 levels: L OR (L AND (L OR ...)), innermost leaf the heaviest
  local function alternating(levels)
    local text, fn = leaves[1][1], leaves[1][2]
    for i = 1, levels do
      local leaf = leaves[i % #leaves + 1]
      local inner_text, inner_fn, lf = text, fn, leaf[2]
      if i % 2 == 1 then
        text = "(" .. leaf[1] .. " OR " .. inner_text .. ")"
        fn = function(s) return lf(s) or inner_fn(s) end
      else
        text = "(" .. leaf[1] .. " AND " .. inner_text .. ")"
        fn = function(s) return lf(s) and inner_fn(s) end
      end
    end
    return text, fn
  end

  -- 16 levels: NOT (L OR NOT (L AND ...))
  local function negated_groups(levels)
    local text, fn = leaves[1][1], leaves[1][2]
    for i = 1, levels // 2 do
      local leaf = leaves[i % #leaves + 1]
      local inner_text, inner_fn, lf = text, fn, leaf[2]
      local op = i % 2 == 1 and " OR " or " AND "
      text = "NOT (" .. leaf[1] .. op .. inner_text .. ")"
      if i % 2 == 1 then
        fn = function(s) return not (lf(s) or inner_fn(s)) end
      else
        fn = function(s) return not (lf(s) and inner_fn(s)) end
      end
    end
    return text, fn
  end

  local shapes = {
    { "alternating AND/OR groups", alternating(16) },
    { "NOT around groups", negated_groups(16) },
    { "a chain of NOT", ("NOT "):rep(16) .. leaves[1][1], function(s) return leaves[1][2](s) end },
  }
  for _, shape in ipairs(shapes) do
    local name, text, fn = shape[1], shape[2], shape[3]
    it(name .. " run on SQLite: listing, pages, count, iterator, search", function()
      assert.is_string(durox.parse_query(text))
      local expected = where(fn)
      assert.are.same(expected, list_ids(text))
      -- paginated in the heaviest order, with a token and a count, combined with table fields
      local got, token = {}, nil
      repeat
        local r = assert(dx:list_instances_paginated({ filter = { has_parent = false, query = text }, page_size = 3,
          page_token = token, order_by = "UpdatedAt", total_count = true }))
        for _, s in ipairs(r.instances) do got[#got + 1] = s.instance_id end
        token = r.next_page_token
      until not token
      assert.are.same(where(function(s) return s.parent_instance == nil and fn(s) end), H.sorted(got))
      local n = 0
      for _ in dx:instances(text, { order_by = "UpdatedAt", batch_size = 4 }) do n = n + 1 end
      assert.are.equal(#expected, n)
      assert.is_table(assert(dx:search_instances({ text = "e", filter = { status = "Completed", query = text } })))
    end)
    it(name .. ": one level more is refused", function()
      local ok, msg = durox.parse_query("NOT " .. text)
      assert.is_nil(ok)
      assert.truthy(msg:find("conditions nest more than 16 levels deep", 1, true), msg)
    end)
  end

  it("256 conditions OR-ed (and AND-ed) run on SQLite", function()
    local ors, ands = {}, {}
    for i = 1, 256 do
      ors[i] = "id = 'list-a-0" .. (i % 10) .. "'"
      ands[i] = "updated_at > " .. i
    end
    assert.are.same(where(function(s) return s.instance_id:match("^list%-a%-0%d$") ~= nil end),
      list_ids(table.concat(ors, " OR ")))
    assert.are.equal(#all, #list_ids(table.concat(ands, " AND ")))
    local r = assert(dx:list_instances_paginated({ filter = table.concat(ands, " AND "), total_count = true, page_size = 2 }))
    assert.are.equal(#all, r.total_count)
  end)
end)
end
