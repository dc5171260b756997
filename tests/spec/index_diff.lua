-- index_diff.lua - the differential check of the visibility index, shared by index_spec and
-- index_live_spec: every listing filter, order, direction and page, counts, group-bys with
-- every aggregate, time series and metrics, asked of a handle that reads the store itself
-- (index = false) and of one that reads through the index, must give identical answers.
local durox = require "durox"

local D = {}

-- Filters covering every field and operator of the filter tree, in both forms.
function D.filters(sample)
  local now = durox.now()
  local f = {
    {},
    { status = "Running" }, { status = "Completed" }, { status = "Failed" }, { status = "ContinuedAsNew" },
    { status = "Unknown" }, { status = { "Failed", "Running" } },
    "status IN ('Failed', 'Running') AND name = 'Order'",
    "name = 'Order' AND status = 'Running'",
    { name_prefix = "O" }, { version = "1.0.0" }, "version IS NULL", "version = '2.0.0'",
    { id_prefix = "order" }, { has_parent = false }, { has_parent = true },
    "parent_instance IS NOT NULL AND status = 'Completed'",
    { created_after = now - 86400000 * 400 }, { created_before = now - 60000 },
    { updated_after = now - 86400000 * 400 }, "updated_at >= '2000-01-01T00:00:00Z'",
    "completed_at IS NULL", "completed_at IS NOT NULL AND status = 'Failed'", { completed_after = 0 },
    { failure_kind = "cancelled" }, { failure_kind = { "application", "poison" } }, "failure_kind IS NULL",
    "custom_status IS NOT NULL", "custom_status CONTAINS 'phase'", { custom_status_prefix = "{" },
    { min_executions = 2 }, { max_executions = 1, status = "Completed" },
    { text = "order" }, "text CONTAINS 'fail'",
    "NOT status = 'Completed'", "status = 'Failed' OR execution_count >= 3",
    "(name = 'Order' OR name = 'Payment') AND NOT failure_kind = 'cancelled'",
    "name LIKE '%e%' AND instance_id LIKE '%1%'",
  }
  for _, s in ipairs(sample or {}) do f[#f + 1] = s end
  return f
end

local ORDERS = { "CreatedAt", "UpdatedAt", "InstanceId", "OrchestrationName" }

-- A readable difference between two Lua values (nil when equal).
local function diff(a, b, path)
  if type(a) ~= type(b) then return ("%s: %s vs %s"):format(path, tostring(a), tostring(b)) end
  if type(a) == "number" and a ~= a and b ~= b then return nil end -- NaN
  if type(a) ~= "table" then
    if a ~= b then return ("%s: %s vs %s"):format(path, tostring(a), tostring(b)) end
    return nil
  end
  for k, v in pairs(a) do
    local d = diff(v, b[k], path .. "." .. tostring(k))
    if d then return d end
  end
  for k, v in pairs(b) do
    if a[k] == nil then return ("%s.%s: nil vs %s"):format(path, tostring(k), tostring(v)) end
  end
  return nil
end
D.diff = diff

-- collected_at says when each handle computed its answer: the one field that may differ.
local function strip(v)
  if type(v) == "table" then
    v.collected_at = nil
    for _, x in pairs(v) do strip(x) end
  end
  return v
end

-- Asks both handles the same question; returns nil or the first difference.
local function same(a, b, what, method, ...)
  local ra, ma = a[method](a, ...)
  local rb, mb = b[method](b, ...)
  strip(ra)
  strip(rb)
  if ra == nil or rb == nil then
    if ra == nil and rb == nil and ma == mb then return nil end
    return ("%s: %s vs %s"):format(what, tostring(ma or "ok"), tostring(mb or "ok"))
  end
  return diff(ra, rb, what)
end

-- Pages through a filter in one order and direction on both handles.
local function pages(a, b, filter, order, dir, page_size, max_pages)
  local ta, tb
  for page = 1, max_pages do
    local req = { filter = filter, order_by = order, direction = dir, page_size = page_size, total_count = page == 1 }
    local ra = assert(a:list_instances_paginated(setmetatable({ page_token = ta }, { __index = req })))
    local rb = assert(b:list_instances_paginated(setmetatable({ page_token = tb }, { __index = req })))
    local d = diff(ra, rb, ("page %d of %s %s %s"):format(page, durox.encode_json(filter), order, dir))
    if d then return d end
    ta, tb = ra.next_page_token, rb.next_page_token
    if not ta then return nil end
  end
  return nil
end

-- Runs the whole comparison; returns the list of differences (empty when identical) and the
-- number of questions asked. opts: page_size, max_pages, now (for metrics), filters, quick
-- (fewer order/direction combinations for big stores).
function D.compare(a, b, opts)
  opts = opts or {}
  local out, asked = {}, 0
  local function check(d)
    asked = asked + 1
    if d then out[#out + 1] = d end
  end
  local page_size, max_pages = opts.page_size or 7, opts.max_pages or 1000
  for fi, filter in ipairs(opts.filters or D.filters()) do
    for oi, order in ipairs(ORDERS) do
      for _, dir in ipairs { "asc", "desc" } do
        if not opts.quick or (fi + oi) % 3 == 0 or fi == 1 then
          check(pages(a, b, filter, order, dir, page_size, max_pages))
        end
      end
    end
    -- the unpaged listing, which the index answers from a scan sorted in C (every filter on
    -- the small stores; the order, ties included, must be the store SQL's)
    if (type(filter) == "table" and next(filter) == nil) or not opts.quick then
      check(same(a, b, "list_instances " .. durox.encode_json(filter), "list_instances", filter))
    end
  end
  -- summaries by id
  local ids = {}
  for inst in a:instances(nil, { order_by = "InstanceId" }) do
    if #ids < 300 then ids[#ids + 1] = inst.instance_id end
  end
  ids[#ids + 1] = "no-such-instance"
  check(same(a, b, "get_instances_status", "get_instances_status", ids))
  -- group-bys, every aggregate
  local groups = { {}, { "OrchestrationName" }, { "Status" }, { "OrchestrationName", "Status" }, { "Version" },
    { "CreatedDate" }, { "CreatedHour", "Status" }, { "ParentInstance" } }
  for _, g in ipairs(groups) do
    check(same(a, b, "query_instances " .. table.concat(g, ","), "query_instances", { group_by = g }))
    check(same(a, b, "query_instances failed " .. table.concat(g, ","), "query_instances",
      { group_by = g, filter = { status = "Failed" } }))
  end
  check(same(a, b, "query_instances by filter", "query_instances",
    { group_by = { "OrchestrationName" }, filter = { name_prefix = "O", has_parent = false } }))
  -- metrics (a fixed now: the health judgements depend on it)
  local now = opts.now or durox.now()
  check(same(a, b, "get_runtime_metrics", "get_runtime_metrics", { now = now }))
  check(same(a, b, "get_queue_metrics", "get_queue_metrics", { now = now }))
  check(same(a, b, "get_orchestration_metrics", "get_orchestration_metrics", { now = now }))
  check(same(a, b, "get_orchestration_metrics merged", "get_orchestration_metrics", { now = now, merge_versions = true }))
  -- time series over the whole store
  check(same(a, b, "get_time_series_metrics", "get_time_series_metrics",
    { from = now - 86400000 * 30, to = now + 60000, bucket = "1d" }))
  check(same(a, b, "get_time_series_metrics by name", "get_time_series_metrics",
    { from = now - 86400000 * 30, to = now + 60000, bucket = "6h", name = "Order" }))
  return out, asked
end

return D
