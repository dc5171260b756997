-- access_coverage_cli_spec.lua - every duroxlua command passes access control. The commands
-- are ENUMERATED from `duroxlua help`; each must be listed below with an invocation that a
-- policy allowing nothing (every hook missing) must refuse: exit 4 (refused) with the one-line
-- denial, or exit 3 (not found) for a named instance it cannot see, a deny record in the
-- audit log, and no row of the store changed (every table counted with the sqlite3 tool). A
-- command that is not listed fails the spec. The Lua methods behind them are enumerated the
-- same way on both providers by tests/spec/access_coverage_spec.lua.
local S = require "support"
local durox = S.durox
local E = require "durox.cli.exit"

local SCENARIO_DB = os.getenv("DUROX_SCENARIO_DB")
if not SCENARIO_DB then
  describe("access coverage of the commands", function() pending("DUROX_SCENARIO_DB is not set") end)
  return
end

local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p " .. S.sh(tmpdir)))
teardown(function() os.execute("rm -rf " .. S.sh(tmpdir)) end)
local db = tmpdir .. "/coverage.db"
assert(os.execute(("cp %s %s"):format(S.sh(SCENARIO_DB), S.sh(db))))
local policy = tmpdir .. "/nothing.lua"
S.write_file(policy, "return { description = 'allows nothing' }\n")

local function sql(q)
  local p = assert(io.popen(("sqlite3 -json %s %s"):format(S.sh(db), S.sh(q))))
  local out = p:read("a")
  p:close()
  if not out:match("%S") then return {} end
  return assert(durox.decode_json(out))
end

local function census()
  local counts = {}
  for _, r in ipairs(sql("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
      .. "AND name <> 'durox_audit_log' ORDER BY 1")) do
    counts[r.name] = sql("SELECT count(*) AS n FROM " .. r.name)[1].n
  end
  return counts
end

local function denials()
  local r = sql("SELECT count(*) AS n FROM sqlite_master WHERE name = 'durox_audit_log'")
  if r[1].n == 0 then return 0 end
  return sql("SELECT count(*) AS n FROM durox_audit_log WHERE decision = 'deny'")[1].n
end

local ID = "wait-approve-1"
local REFUSED = "^duroxlua %s: access denied: user 'zed' may not "
-- command -> { arguments, exit code, a pattern stderr (or stdout, for bulk reports) must match
--              [, the bulk operation: its attempt is recorded with the hidden target as not
--              found, and no job is made] }
local COMMANDS = {
  audit = { {}, E.REFUSED, REFUSED },
  cancel = { { ID, "--yes" }, E.NOTFOUND, "wait%-approve%-1%s+NOTFOUND%s+instance 'wait%-approve%-1' not found",
             "cancel_instances" },
  events = { { "--from", "start" }, E.REFUSED, REFUSED },
  history = { { ID }, E.NOTFOUND, "^duroxlua history: instance 'wait%-approve%-1' not found" },
  index = { { "status" }, E.REFUSED, REFUSED },
  jobs = { { "list" }, E.REFUSED, REFUSED },
  list = { {}, E.REFUSED, REFUSED },
  metrics = { {}, E.REFUSED, REFUSED },
  purge = { { ID, "--yes" }, E.NOTFOUND, "wait%-approve%-1%s+NOTFOUND%s+instance 'wait%-approve%-1' not found",
            "purge_instances" },
  query = { { "-g", "status" }, E.REFUSED, REFUSED },
  queues = { {}, E.REFUSED, REFUSED },
  raise = { { "Approval", ID, "--yes" }, E.NOTFOUND, "wait%-approve%-1%s+NOTFOUND%s+instance 'wait%-approve%-1' not found",
            "raise_event_bulk" },
  restart = { { ID, "--yes" }, E.NOTFOUND, "wait%-approve%-1%s+NOTFOUND%s+instance 'wait%-approve%-1' not found",
              "restart_instances" },
  -- a rule's durable state (cursor, runs) needs can_manage_jobs: the rules cannot start
  rules = { { "scripts/rules/restart-transient-failures.lua" }, E.REFUSED,
            "^duroxlua rules: rule 'restart%-transient%-failures': access denied: user 'zed' may not manage bulk jobs" },
  series = { { "--from", "-30d" }, E.REFUSED, REFUSED },
  show = { { ID }, E.NOTFOUND, "^duroxlua show: instance 'wait%-approve%-1' not found" },
  start = { { "coverage-new-1", "Echo" }, E.REFUSED, REFUSED },
  stuck = { {}, E.REFUSED, REFUSED },
  top = { { "--once" }, E.REFUSED, REFUSED },
  tree = { { ID }, E.NOTFOUND, "^duroxlua tree: instance 'wait%-approve%-1' not found" },
  wait = { { ID, "--timeout", "1s" }, E.NOTFOUND, "^duroxlua wait: not found: wait%-approve%-1" },
  watch = { { ID }, E.REFUSED, REFUSED },
}
local NOT_OPERATIONS = { help = "prints the help" }
-- exporter: a server; its scrapes are refused (below)

local function run(cmd, args)
  local argv = { "--store", "sqlite:" .. db, cmd }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  for _, a in ipairs { "--policy", policy, "--user", "zed" } do argv[#argv + 1] = a end
  return S.run(argv, { env = { DUROX_ONCALL_WEBHOOK = "http://127.0.0.1:9/" } })
end

describe("every command under a policy that allows nothing", function()
  local before = census()

  it("is listed here", function()
    local r = S.run { "help" }
    S.expect(r, 0, nil, "")
    local listed = {}
    for name in r.out:gmatch("\n  ([a-z]+) ") do
      listed[#listed + 1] = name
      assert.truthy(COMMANDS[name] or NOT_OPERATIONS[name] or name == "exporter",
        "the command '" .. name .. "' is not covered by this spec")
    end
    assert.is_true(#listed >= 24, "found only " .. #listed .. " commands")
    local set = {}
    for _, n in ipairs(listed) do set[n] = true end
    for name in pairs(COMMANDS) do assert.truthy(set[name], name .. " is listed but no longer a command") end
  end)

  local names = {}
  for name in pairs(COMMANDS) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local c = COMMANDS[name]
    it(name .. " is refused and recorded", function()
      local n0 = denials()
      local r = run(name, c[1])
      assert.are.equal(c[2], r.code, name .. ": " .. r.err .. r.out)
      local pattern = c[3] == REFUSED and REFUSED:format(name) or c[3]
      assert.truthy((r.err .. "\n" .. r.out):find(pattern) or r.err:find(pattern), name .. ": " .. r.err .. r.out)
      if c[4] then
        local rec = sql(("SELECT decision, result FROM durox_audit_log WHERE operation = '%s' ORDER BY seq DESC LIMIT 1")
          :format(c[4]))[1]
        assert.truthy(rec, name .. " left no record")
        local result = durox.decode_json(rec.result)
        -- told "not found", and recorded as hidden: the store holds it
        assert.are.same({ job_id = 0, matched = 1, denied = 0, not_found = 1, hidden = 1 }, result)
        assert.are.equal(0, sql("SELECT count(*) AS n FROM sqlite_master WHERE name = 'durox_jobs'")[1].n)
      else
        assert.is_true(denials() > n0, name .. " left no deny record")
      end
    end)
  end

  it("exporter serves the refusal: 503 and duroxlua_up 0, recorded", function()
    local pf, pidf = tmpdir .. "/port", tmpdir .. "/pid"
    local n0 = denials()
    local cmd = table.concat({ "sh", "-c", S.sh("echo $$ > " .. S.sh(pidf) .. "; exec " .. table.concat({
      S.sh(S.BIN), "--store", S.sh("sqlite:" .. db), "exporter", "--listen", "127.0.0.1:0", "--port-file", S.sh(pf),
      "--policy", S.sh(policy), "--user", "zed" }, " ")) }, " ")
    assert(os.execute(cmd .. " >/dev/null 2>" .. S.sh(tmpdir .. "/exporter.err") .. " &"))
    finally(function()
      local pid = (io.open(pidf) and S.read_file(pidf) or ""):match("%d+")
      if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    end)
    local port
    for _ = 1, 300 do
      local f = io.open(pf)
      port = f and tonumber((f:read("a") or ""):match("%d+"))
      if f then f:close() end
      if port then break end
      durox.sleep(50)
    end
    assert.truthy(port, "the exporter did not listen: " .. (S.read_file(tmpdir .. "/exporter.err") or ""))
    local res = durox.http { url = ("http://127.0.0.1:%d/metrics"):format(port), timeout_ms = 30000 }
    assert(res, "no answer")
    assert.are.equal(503, res.status)
    assert.truthy(res.body:find("\nduroxlua_up 0\n", 1, true), res.body)
    assert.is_nil(res.body:find("duroxlua_instances", 1, true), res.body)
    assert.is_true(denials() > n0)
  end)

  it("changed nothing in the store", function()
    assert.are.same(before, census())
  end)
end)
