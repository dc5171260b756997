-- access_coverage_spec.lua - every public operation passes the one enforcement point. The
-- spec ENUMERATES the public API: the methods of a store handle (its metatable, so a method
-- added anywhere in the binding shows up here) and every function include/durox.h declares.
-- Each must be listed below, a handle method with a call that a policy allowing nothing must
-- refuse, on both providers: DENIED (or NOTFOUND: an instance it cannot see is a missing one),
-- a deny record in the audit log for that call, and nothing changed in the store (every table
-- of the runtime's and of ours counted by raw SQL before and after, the audit log aside). A
-- method or C function that is not listed fails the spec: whoever adds an operation must say
-- how access control covers it. The few that are not operations (close, info, ...) are listed
-- with the reason.
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("access coverage", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

local dir = L.tmpdir()
teardown(function() L.cleanup(dir) end)

-- A policy with no hook at all: every hook is missing, so every decision denies.
local NOTHING = "return { description = 'allows nothing' }"
local ID = "wait-approve-1" -- an instance of the scenario store (the runtime wrote it)

-- How each handle method is called under NOTHING, and what it must answer: the refusal's
-- code ("NOTFOUND" where the operation names an instance the caller cannot see), or
-- "NotFound": a status read answers the status of a missing instance, as for an id that
-- does not exist.
local CALLS = {
  list_instances = { "DENIED" },
  list_instances_paginated = { "DENIED", { page_size = 10, total_count = true } },
  search_instances = { "DENIED", "wait" },
  instances = { "DENIED" },
  get_orchestration_status = { "NotFound", ID },
  get_orchestration_descriptor = { "NOTFOUND", ID },
  list_executions = { "NOTFOUND", ID },
  read_execution_history = { "NOTFOUND", ID },
  get_execution_history_filtered = { "NOTFOUND", { instance_id = ID } },
  get_instances_status = { "NotFound", { ID } },
  get_instance_details = { "NOTFOUND", ID },
  get_instance_statistics = { "NOTFOUND", ID },
  get_instance_dependencies = { "NOTFOUND", ID },
  get_runtime_metrics = { "DENIED" },
  get_provider_diagnostics = { "DENIED" },
  get_queue_metrics = { "DENIED" },
  get_orchestration_metrics = { "DENIED" },
  query_instances = { "DENIED", { group_by = { "status" } } },
  get_time_series_metrics = { "DENIED", { from = 0, to = durox.now() + 3600000, bucket = "1h" } },
  find_stuck_instances = { "DENIED" },
  start_orchestration = { "DENIED", "coverage-new-1", "Echo", "{}" },
  raise_event = { "NOTFOUND", ID, "Approval", "{}" },
  enqueue_event = { "NOTFOUND", ID, "Approval", "{}" },
  cancel_instance = { "NOTFOUND", ID, "coverage" },
  wait_for_orchestration = { "NOTFOUND", ID, 10 },
  cancel_instances = { "DENIED", { filter = {}, dry_run = false } },
  raise_event_bulk = { "DENIED", { filter = {}, event_name = "Approval", event_data = "{}" } },
  wait_for_instances = { "DENIED", { filter = {}, timeout_ms = 10 } },
  purge_instances = { "DENIED", { filter = {} } },
  prune_executions = { "DENIED", { filter = {}, keep_last = 1 } },
  restart_instances = { "DENIED", { filter = {} } },
  list_jobs = { "DENIED" },
  get_job = { "DENIED", 1 },
  resume_job = { "DENIED", 1 },
  stop_job = { "DENIED", 1 },
  read_changes = { "DENIED", { from = "start" } },
  stream_instance_events = { "DENIED", { from = "start" } },
  watch_instances = { "DENIED", { instance_ids = { ID } } },
  stream_runtime_metrics = { "DENIED" },
  dead_letter = { "DENIED", { source = "coverage", url = "http://127.0.0.1:9/", payload = "{}", key = "k1" } },
  list_dead_letters = { "DENIED", {} },
  delete_dead_letter = { "DENIED", 1 },
  get_cursor = { "DENIED", "coverage" },
  get_rule_run = { "DENIED", "rule", "key" },
  record_rule_run = { "DENIED", nil, "coverage", "cursor-1" },
  list_rule_runs = { "DENIED", {} },
  count_rule_runs = { "DENIED", "rule", 0 },
  get_audit_log = { "DENIED", {} },
  verify_audit_log = { "DENIED" },
  index_status = { "DENIED" },
  index_build = { "DENIED", {} },
  index_sync = { "DENIED" },
  index_verify = { "DENIED" },
  index_drop = { "DENIED" },
}

-- Methods that are not operations on the store's instances, metrics, jobs, state or audit log.
local NOT_OPERATIONS = {
  close = "closes the handle",
  interrupt = "stops the handle's own call in progress (a signal handler's use)",
  info = "the store's provider, path and schema capabilities: no instance, metric or row of it",
  access_info = "the caller's own context and policy, fixed at open",
  config = "the handle's limits; raising max_bulk_operations past the policy's cap is DENIED "
    .. "(access_spec.lua, access_writes_spec.lua)",
}

-- The functions of include/durox.h on a handle that are not operations, with the reason.
local C_NOT_OPERATIONS = {
  durox_close = "closes a handle",
  durox_interrupt = "stops the handle's own call in progress",
  durox_errmsg = "the handle's last error",
  durox_set_error = "sets the handle's last error (for callbacks that abort)",
  durox_get_store_info = "the provider and schema capabilities",
  durox_get_access_info = "the caller's own context",
  durox_get_config = "the handle's limits (setting them is durox_config, which checks the policy's cap)",
  durox_index_set_progress = "a progress callback for builds, no data",
}

-- The decisions of src/engine/access.c (engine/access.h).
local DECISIONS = { access_view_open = true, access_view_open_quiet = true, access_view_open_aggregate = true,
  access_instance = true, access_start = true, access_global = true, access_store_wide = true,
  access_check_config = true }

local function sorted_keys(t)
  local a = {}
  for k in pairs(t) do a[#a + 1] = k end
  table.sort(a)
  return a
end

describe("the public API", function()
  local dx = assert(durox.open("sqlite::memory:"))
  local methods = getmetatable(dx).__index
  dx:close()

  it("has every handle method listed as a covered operation or as no operation", function()
    local missing, stale = {}, {}
    for _, name in ipairs(sorted_keys(methods)) do
      if type(methods[name]) == "function" and not CALLS[name] and not NOT_OPERATIONS[name] then
        missing[#missing + 1] = name
      end
    end
    for name in pairs(CALLS) do if not methods[name] then stale[#stale + 1] = name end end
    for name in pairs(NOT_OPERATIONS) do if not methods[name] then stale[#stale + 1] = name end end
    table.sort(stale)
    assert.are.same({}, missing, "methods access control does not cover: " .. table.concat(missing, ", "))
    assert.are.same({}, stale, "listed but gone: " .. table.concat(stale, ", "))
    assert.is_true(#sorted_keys(CALLS) >= 50)
  end)

  it("has every function of include/durox.h on a handle pass the enforcement point", function()
    -- The public functions whose first parameter is the handle (the operations; functions of
    -- the objects they return, iterators and streams, act within what their opening call
    -- allowed). Each must be listed as no operation or reach a decision of src/engine/access.c:
    -- its body in src/engine, or a function it calls there (transitively), calls one.
    local flat = assert(L.read("../../include/durox.h")):gsub("/%*.-%*/", ""):gsub("\n[ \t]+", " ")
    local fns, declared = {}, {}
    for line in flat:gmatch("[^\n]+") do
      local name, params = line:match("^[%w_ %*]-[%s%*](durox_[%w_]+)%(([^)]*)%)")
      if name and not line:match("^typedef") and not declared[name] then
        declared[name] = true
        if params:match("^%s*const durox%s*%*") or params:match("^%s*durox%s*%*") then fns[#fns + 1] = name end
      end
    end
    table.sort(fns)
    assert.is_true(#fns >= 60, "found only " .. #fns .. " operations in durox.h")
    local defs, global = {}, {}
    local files = assert(io.popen("ls ../../src/engine/*.c"))
    for f in files:lines() do
      local text = "\n" .. assert(L.read(f))
      defs[f] = {}
      for start, name in text:gmatch("\n()[%w_][%w_ %*]-[%s%*]?([%w_]+)%([^;{]-%)\n{") do
        local body = text:sub(start, text:find("\n}\n", start, true) or #text)
        defs[f][name] = body
        if not body:match("^static") then global[name] = { f, body } end
      end
    end
    files:close()
    local memo = {}
    local function decides(f, name)
      local body = defs[f][name]
      if not body then
        if not global[name] then return false end
        f, body = global[name][1], global[name][2]
      end
      local key = f .. ":" .. name
      if memo[key] ~= nil then return memo[key] end
      memo[key] = false
      for callee in body:gmatch("[^%w_](access_[%w_]+)%(") do
        if DECISIONS[callee] then memo[key] = true return true end
      end
      for callee in body:gmatch("([%a_][%w_]*)%s*%(") do
        if callee ~= name and (defs[f][callee] or global[callee]) and decides(f, callee) then
          memo[key] = true
          return true
        end
      end
      return false
    end
    local bypass = {}
    for _, name in ipairs(fns) do
      if not C_NOT_OPERATIONS[name] and not (global[name] and decides(global[name][1], name)) then
        bypass[#bypass + 1] = name
      end
    end
    assert.are.same({}, bypass, "durox.h operations that do not pass the enforcement point: "
      .. table.concat(bypass, ", "))
    for name in pairs(C_NOT_OPERATIONS) do
      assert.truthy(declared[name], name .. " is listed but durox.h no longer declares it")
    end
  end)
end)

-- Both providers: a copy of the scenario store, and of the PostgreSQL one when the test server runs.
local STORES = { { name = "sqlite", db = L.copy_scenarios(dir .. "/coverage.db") } }
if L.pg_dir and io.open(L.pg_dir .. "/port") then
  local db = L.pg_fresh()
  STORES[2] = { name = "postgres", db = db }
  teardown(function() L.pg_drop(db) end)
end

-- Every table of the store, the runtime's and ours, with its row count (raw SQL), the audit
-- log aside.
local function census(db)
  local rows
  if L.is_pg(db) then
    local names = L.sql(db, "", [[SELECT table_schema || '.' || table_name AS t FROM information_schema.tables
      WHERE table_schema IN ('dx', 'durox') AND table_type = 'BASE TABLE' AND table_name <> 'audit_log'
      ORDER BY 1]])
    rows = {}
    for _, r in ipairs(names) do
      rows[r.t] = L.sql_value(db, "", "SELECT count(*) AS n FROM " .. r.t)
    end
  else
    rows = {}
    for _, r in ipairs(L.sql(db, [[SELECT name AS t FROM sqlite_master WHERE type = 'table'
        AND name NOT LIKE 'sqlite_%' AND name <> 'durox_audit_log' ORDER BY 1]])) do
      rows[r.t] = L.sql_value(db, "SELECT count(*) AS n FROM " .. r.t)
    end
  end
  return rows
end

local function denials(db, pg)
  return L.sql_value(db, "SELECT count(*) AS n FROM durox_audit_log WHERE decision = 'deny'",
    "SELECT count(*) AS n FROM durox.audit_log WHERE decision = 'deny'") or 0
end

-- Calls method under the handle; an iterator or stream object is read once (a refusal may
-- come when it is first read). Returns res, msg, code.
local function call(dx, name, args)
  local res, msg, code = dx[name](dx, table.unpack(args, 2, args.n))
  if res ~= nil and (type(res) == "function" or type(res) == "userdata") and name ~= "watch_instances" then
    local ok, a, b, c = pcall(function()
      if type(res) == "function" then return res() end
      return res:next()
    end)
    if not ok then return nil, tostring(a), tostring(a):match("DENIED") and "DENIED" or nil end
    return a, b, c
  end
  return res, msg, code
end

for _, S in ipairs(STORES) do
  describe(S.name .. ": a policy that allows nothing", function()
    local dx = assert(durox.open(L.url(S.db), { policy_source = NOTHING, context = { user_id = "zed" },
                                                 config = { max_bulk_operations = 100000 } }))
    teardown(function() dx:close() end)
    local before = census(S.db)

    for _, name in ipairs(sorted_keys(CALLS)) do
      local spec = CALLS[name]
      it("refuses " .. name .. " with " .. spec[1] .. " and records it", function()
        local args = table.pack(table.unpack(spec))
        args.n = #spec
        local n0 = denials(S.db)
        local res, msg, code = call(dx, name, args)
        if spec[1] == "NotFound" then
          -- the same answer as for an id that does not exist
          local st = res[1] or res
          assert.are.equal("NotFound", st.status, name)
          local none = assert(dx[name](dx, type(spec[2]) == "table" and { "no-such-instance" } or "no-such-instance"))
          local ghost = none[1] or none
          ghost.instance_id = st.instance_id
          assert.are.same(ghost, st)
          assert.is_true(denials(S.db) > n0, name .. " left no deny record")
          return
        end
        assert.is_nil(res, name .. " answered")
        assert.are.equal(spec[1], code, name .. ": " .. tostring(msg))
        if spec[1] == "NOTFOUND" then
          assert.are.equal(("instance '%s' not found"):format(ID), msg)
        else
          assert.truthy(tostring(msg):find("^access denied: user 'zed' may not "), name .. ": " .. tostring(msg))
        end
        assert.is_true(denials(S.db) > n0, name .. " left no deny record")
      end)
    end

    it("tells hidden and missing bulk targets apart only in the audit record", function()
      local r = assert(dx:cancel_instances { instances = { ID, "no-such-instance" }, dry_run = false })
      local got = {}
      for _, f in ipairs(r.failed_instances) do got[f.instance_id] = f.code .. ": " .. f.error end
      assert.are.same({ [ID] = ("NOTFOUND: instance '%s' not found"):format(ID),
                        ["no-such-instance"] = "NOTFOUND: instance 'no-such-instance' not found" }, got)
      assert.is_nil(r.job_id)
      local rec = L.sql(S.db, "SELECT result FROM durox_audit_log WHERE operation = 'cancel_instances' ORDER BY seq "
        .. "DESC LIMIT 1", "SELECT result FROM durox.audit_log WHERE operation = 'cancel_instances' ORDER BY seq "
        .. "DESC LIMIT 1")[1]
      local result = type(rec.result) == "string" and durox.decode_json(rec.result) or rec.result
      assert.are.same({ job_id = 0, matched = 2, denied = 0, not_found = 2, hidden = 1 }, result)
    end)

    it("changed nothing in the store", function()
      assert.are.same(before, census(S.db))
    end)
  end)
end
