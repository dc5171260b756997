-- sandbox_spec.lua - policies and configuration files run in their own sandboxed Lua state
-- (src/policy/sandbox.c): every escape (os, io, require, load, debug, metatables,
-- string.dump, coroutines, the caller's globals) and every bomb (CPU, memory, runaway
-- patterns and string.rep, deep recursion, huge answers) is stopped within its budget with a
-- clear reason, and the decision is "deny". Read on the scenario store; the denials are read
-- back from the audit log.
local durox = require "durox"
local H = require "helpers"
local L = require "live"

if H.skip or L.skip then
  describe("sandbox", function() pending("the scenario fixture is not set") end)
  return
end

local dir = L.tmpdir()
teardown(function() L.cleanup(dir) end)
local db = L.copy_scenarios(dir .. "/sandbox.db")

-- A handle whose can_list_instances runs body (a Lua function body).
local function policy(body, limits)
  return assert(durox.open("sqlite:" .. db, {
    policy_source = ("return { can_view_instance = true, can_list_instances = function(ctx) %s end }"):format(body),
    policy_limits = limits, context = { user_id = "eve" } }))
end

-- Lists under the policy: must be denied; returns the message. The specs assert the decision
-- and the error, never the elapsed time: on a loaded machine a budget of 50 ms may take far
-- longer to notice, and a timed assertion would flake (the budgets' cost is for bench/).
local function denied(body, limits)
  local dx = policy(body, limits)
  local res, msg, code = dx:list_instances()
  dx:close()
  assert.is_nil(res, body)
  assert.are.equal("DENIED", code, body)
  return msg
end

local PREFIX = "access denied: user 'eve' may not list instances: "

describe("escapes", function()
  local cases = {
    { "os.execute('touch /tmp/pwned')", "attempt to index a nil value (global 'os')" },
    { "io.open('/etc/passwd')", "attempt to index a nil value (global 'io')" },
    { "require('os')", "attempt to call a nil value (global 'require')" },
    { "load('return 1')()", "attempt to call a nil value (global 'load')" },
    { "loadstring('return 1')", "attempt to call a nil value (global 'loadstring')" },
    { "dofile('/etc/passwd')", "attempt to call a nil value (global 'dofile')" },
    { "loadfile('/etc/passwd')", "attempt to call a nil value (global 'loadfile')" },
    { "debug.getregistry()", "attempt to index a nil value (global 'debug')" },
    { "getmetatable('').__index.rep = nil", "attempt to call a nil value (global 'getmetatable')" },
    { "setmetatable({}, { __gc = function() while true do end end })",
      "attempt to call a nil value (global 'setmetatable')" },
    { "string.dump(function() end)", "attempt to call a nil value (field 'dump')" },
    { "coroutine.wrap(function() end)()", "attempt to index a nil value (global 'coroutine')" },
    { "collectgarbage('stop')", "attempt to call a nil value (global 'collectgarbage')" },
    { "print('hi')", "attempt to call a nil value (global 'print')" },
    { "package.loadlib('x', 'y')", "attempt to index a nil value (global 'package')" },
    { "return dx:list_instances()", "attempt to index a nil value (global 'dx')" },
    { "return durox.open('sqlite::memory:')", "attempt to index a nil value (global 'durox')" },
  }
  for _, c in ipairs(cases) do
    it("cannot " .. c[1], function()
      local msg = denied(c[1])
      assert.are.equal(PREFIX .. "can_list_instances failed: policy_source:1: " .. c[2], msg)
    end)
  end

  it("keeps its own globals to itself", function()
    local dx = assert(durox.open("sqlite:" .. db, {
      policy_source = "secret = 42; return { can_list_instances = true, can_view_instance = true }" }))
    assert.is_nil(rawget(_G, "secret"))
    assert(dx:list_instances())
    dx:close()
  end)

  it("refuses a binary chunk", function()
    local path = dir .. "/binary.luac"
    L.write(path, string.dump(function() return {} end))
    local dx, msg, code = durox.open("sqlite:" .. db, { policy = path })
    assert.is_nil(dx)
    assert.are.equal("INVALID", code)
    assert.truthy(msg:find("attempt to load a binary chunk", 1, true))
  end)
end)

describe("bombs", function()
  it("a busy loop stops at the instruction budget", function()
    local msg = denied("while true do end", { instructions = 1000000, time_ms = 600000 })
    assert.are.equal(PREFIX .. "can_list_instances stopped: exceeded the budget of 1000000 instructions", msg)
  end)

  it("a busy loop stops at the time budget, and a pcall cannot hold it", function()
    local msg = denied("while true do pcall(function() while true do end end) end",
      { time_ms = 30, instructions = 1 << 40 })
    assert.are.equal(PREFIX .. "can_list_instances stopped: exceeded the time budget of 30 ms", msg)
  end)

  it("the default budget is 50 ms", function()
    -- whichever of the default budgets (50 ms, 10,000,000 instructions) the machine meets first
    local msg = denied("local x = 0 while true do x = x + 1 end")
    assert.truthy(msg == PREFIX .. "can_list_instances stopped: exceeded the time budget of 50 ms"
      or msg == PREFIX .. "can_list_instances stopped: exceeded the budget of 10000000 instructions", msg)
    -- with the instruction budget out of reach, the time budget stops it: the default's 50 ms
    assert.are.equal(PREFIX .. "can_list_instances stopped: exceeded the time budget of 50 ms",
      denied("local x = 0 while true do x = x + 1 end", { instructions = 1 << 40 }))
  end)

  it("a backtracking pattern stops within its budget (Lua's own runs for minutes)", function()
    local msg = denied([[return ("a"):rep(16):find(("a-"):rep(16) .. "b") and true]])
    assert.truthy(msg:find("^" .. PREFIX:gsub("%p", "%%%0") .. "can_list_instances stopped: exceeded the"), msg)
  end)

  it("string.rep cannot allocate gigabytes", function()
    local msg = denied([[return ("x"):rep(1 << 30)]])
    assert.are.equal(PREFIX .. "can_list_instances failed: policy_source:1: resulting string too "
      .. "large (the sandbox holds at most 16777216 bytes)", msg)
  end)

  it("memory stops at the cap", function()
    local msg = denied("local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(64) .. i end",
      { memory = 4 << 20, time_ms = 600000, instructions = 1 << 40 })
    assert.are.equal(PREFIX .. "can_list_instances stopped: exceeded the memory budget of 4194304 bytes", msg)
  end)

  it("deep recursion stops", function()
    local msg = denied("local function f() return 1 + f() end return f()")
    -- the memory cap, the stack limit or (on a slow machine) the time budget: whichever comes first
    assert.truthy(msg:find("stopped: exceeded the", 1, true) or msg:find("stack overflow", 1, true), msg)
  end)

  it("a huge answer is a bad filter, and a non-boolean answer denies", function()
    assert.truthy(denied([[return ("x"):rep(100000)]]):find("can_list_instances returned a bad filter: query error",
      1, true))
    local many = {}
    for i = 1, 600 do many[i] = "'Running'" end
    local msg = denied(("return { status = { %s } }"):format(table.concat(many, ",")))
    assert.truthy(msg:find("can_list_instances returned a bad filter:", 1, true), msg)
    assert.are.equal(PREFIX .. "can_list_instances returned a number (expected true, false, a filter table or a "
      .. "query string)", denied("return 1"))
    assert.are.equal(PREFIX .. "can_list_instances returned a nil (expected true, false, a filter table or a query "
      .. "string)", denied("return nil"))
    assert.are.equal(PREFIX .. "can_list_instances returned a bad filter: a policy's filter cannot hold a predicate "
      .. "function", denied("return { predicate = function() return true end }"))
  end)

  it("the state works on after a bomb, and every stop is in the audit log", function()
    local since = durox.now()
    local dx = assert(durox.open("sqlite:" .. db, { policy_source = [[
      local n = 0
      return {
        can_view_instance = true, can_view_audit = true,
        can_list_instances = function()
          n = n + 1
          if n == 1 then while true do end end
          return "name = 'Echo'"
        end }]], context = { user_id = "eve" } }))
    assert.is_nil(dx:list_instances())
    assert.are.equal(10, #assert(dx:list_instances()))
    local recs = assert(dx:get_audit_log { operation = "list_instances", since = since })
    assert.are.equal(1, #recs)
    assert.are.equal("deny", recs[1].decision)
    assert.truthy(recs[1].reason:find("^can_list_instances stopped: exceeded the"))
    dx:close()
  end)

  it("a per-row hook that fails hides the row, and loading a policy has the same budget", function()
    local dx = assert(durox.open("sqlite:" .. db, { policy_source = [[
      return { can_list_instances = true,
               can_view_instance = function(ctx, inst)
                 if inst.name == "Echo" then while true do end end
                 return inst.name == "Greeter"
               end }]], policy_limits = { instructions = 100000 } }))
    local ids = H.list_ids(dx)
    assert.are.same(H.sorted(H.ids(H.rows("SELECT instance_id FROM instances WHERE orchestration_name = 'Greeter'",
      db))), ids)
    dx:close()
    local _, msg, code = durox.open("sqlite:" .. db, { policy_source = "while true do end return {}",
                                                        policy_limits = { instructions = 100000 } })
    assert.are.equal("INVALID", code)
    assert.are.equal("policy policy_source: exceeded the budget of 100000 instructions", msg)
  end)
end)

describe("the context and instance tables", function()
  it("hand the policy the context and the summary, root included", function()
    local dx = assert(durox.open("sqlite:" .. db, { policy_source = [[
      return {
        can_list_instances = function(ctx)
          assert(ctx.user_id == "ivy" and ctx.roles[1] == "a" and ctx.roles[2] == "b" and ctx.source_ip == "::1"
                 and ctx.reason == "why")
          return true
        end,
        can_view_instance = function(ctx, inst)
          assert(inst.id == inst.instance_id and inst.name == inst.orchestration_name)
          assert(math.type(inst.created_at) == "integer" and type(inst.status) == "string")
          if inst.parent then assert(inst.parent == inst.parent_instance) end
          -- root: the tree's topmost instance, read on demand
          return inst.root == "tree-done-1"
        end }]], context = { user_id = "ivy", roles = { "a", "b" }, source_ip = "::1", reason = "why" } }))
    local want = {}
    for _, r in ipairs(H.rows([[
        WITH RECURSIVE t(id) AS (SELECT 'tree-done-1' UNION ALL SELECT i.instance_id FROM instances i JOIN t
          ON i.parent_instance_id = t.id) SELECT id FROM t]], db)) do want[#want + 1] = r.id end
    table.sort(want)
    assert.are.same(want, H.list_ids(dx))
    dx:close()
  end)
end)

describe("configuration files", function()
  local function conf(text)
    local path = os.tmpname()
    L.write(path, text)
    local dx, msg, code = durox.open("sqlite:" .. db, { readonly = true, config_file = path })
    os.remove(path)
    return dx, msg, code, path
  end

  it("run in the sandbox: data and string methods, nothing else", function()
    local dx = assert(conf("max_attempts = ('1234567890'):len() + 2\nstall_threshold_ms = 5 * 60000\n"))
    assert.are.equal(12, dx:config().max_attempts)
    assert.are.equal(300000, dx:config().stall_threshold_ms)
    dx:close()
  end)

  it("stop bombs and escapes with a clear error", function()
    for _, text in ipairs {
      "max_attempts = #(('x'):rep(1 << 30))",
      "max_attempts = ('a'):rep(16):find(('a-'):rep(16) .. 'b') and 1 or 2",
      "while true do end",
      "max_attempts = os.time()",
      "max_attempts = require('os')",
      "local t = {} for i = 1, 1e9 do t[i] = i end",
    } do
      local dx, msg, code, path = conf(text)
      assert.is_nil(dx, text)
      assert.are.equal("INVALID", code, text)
      assert.truthy(msg:find(path, 1, true), msg)
    end
    local _, msg = conf("max_attempts = ('x'):rep(1 << 30)")
    assert.truthy(msg:find("resulting string too large", 1, true), msg)
    _, msg = conf("return { stall_threshold_ms = {} }")
    assert.truthy(msg:find("field 'stall_threshold_ms' is a table (expected a boolean, number or string)", 1, true))
  end)
end)
