-- access_cli_spec.lua - every duroxlua subcommand under access control: five callers of the
-- ready-made policies (scripts/policies) given by --policy/--user/--role (and by
-- $DUROX_POLICY/$DUROX_USER/$DUROX_ROLES), on copies of the scenario store. What each caller
-- may see is computed here with the sqlite3 tool; every command must show exactly that, fail
-- with the exact one-line denial where the policy says no (exit 4, refused; a hidden instance
-- is not found, exit 3: durox.cli.exit), and write nothing on a denial but the audit record. Also: 'duroxlua audit', --audit-file for read-only use, and
-- the break-glass reason.
local S = require "support"
local durox = S.durox
local E = require "durox.cli.exit"

local SCENARIO_DB = os.getenv("DUROX_SCENARIO_DB")
if not SCENARIO_DB then
  describe("access control in the CLI", function() pending("DUROX_SCENARIO_DB is not set") end)
  return
end

local POL = "scripts/policies/" -- the CLI specs run in the source tree
local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p " .. S.sh(tmpdir)))
teardown(function() os.execute("rm -rf " .. S.sh(tmpdir)) end)
local copies = 0
local function copy()
  copies = copies + 1
  local db = ("%s/c%d.db"):format(tmpdir, copies)
  assert(os.execute(("cp %s %s"):format(S.sh(SCENARIO_DB), S.sh(db))))
  return db
end

local function sql(db, q)
  local p = assert(io.popen(("sqlite3 -json %s %s"):format(S.sh(db), S.sh(q))))
  local out = p:read("a")
  p:close()
  if not out:match("%S") then return {} end
  return assert(durox.decode_json(out))
end

local function sorted(t)
  table.sort(t)
  return t
end

local ALL = {}
for _, r in ipairs(sql(SCENARIO_DB, "SELECT instance_id AS id, orchestration_name AS name FROM instances")) do
  ALL[#ALL + 1] = r
end

local function ids_where(f)
  local out = {}
  for _, r in ipairs(ALL) do
    if f(r) then out[#out + 1] = r.id end
  end
  return sorted(out)
end

local ROLES = {
  { name = "viewer", args = { "--policy", POL .. "viewer.lua", "--user", "vera" },
    sees = function() return true end, metrics = true, write = false, jobs = false, audit = false },
  { name = "team member", args = { "--policy", POL .. "team.lua", "--user", "tom", "--role", "team:Echo",
                                    "--role", "team:Wait" },
    sees = function(r) return r.name:sub(1, 4) == "Echo" or r.name:sub(1, 4) == "Wait" end, metrics = false,
    write = true, jobs = false, audit = false },
  { name = "on-call operator", args = { "--policy", POL .. "oncall.lua", "--user", "olga", "--role", "oncall" },
    sees = function() return true end, metrics = true, write = true, jobs = true, audit = false },
  { name = "break-glass admin", args = { "--policy", POL .. "breakglass.lua", "--user", "root", "--role", "admin",
                                          "--access-reason", "INC-42: clean up the test data" },
    sees = function() return true end, metrics = true, write = true, jobs = true, audit = true },
  { name = "caller without a team", args = { "--policy", POL .. "team.lua", "--user", "nina" },
    sees = function() return false end, nothing = true, metrics = false, write = false, jobs = false, audit = false },
}

-- Runs duroxlua with the role's global options, --store db and the command.
local function as(role, db, ...)
  local argv = { "--store", "sqlite:" .. db }
  for _, a in ipairs(role.args) do argv[#argv + 1] = a end
  for _, a in ipairs { ... } do argv[#argv + 1] = a end
  return S.run(argv)
end

for _, role in ipairs(ROLES) do
  describe(role.name, function()
    local db = copy()
    local seen = ids_where(role.sees)
    local seen_set = {}
    for _, id in ipairs(seen) do seen_set[id] = true end
    local hidden = ids_where(function(r) return not seen_set[r.id] end)

    it("list and query show exactly what it may see", function()
      local r = as(role, db, "list", "--json", "-n", "1000")
      if role.nothing then
        S.expect(r, E.REFUSED, nil, "")
        assert.are.same({ code = "DENIED", exit = E.REFUSED, error = "access denied: user 'nina' may not list "
          .. "instances: no team role (team:<Prefix>)" }, S.json(r.out))
        r = as(role, db, "list")
        S.expect(r, E.REFUSED, "", "duroxlua list: access denied: user 'nina' may not list instances: no team role "
          .. "(team:<Prefix>)\n")
        return
      end
      S.expect(r, 0, nil, "")
      local got = {}
      for _, s in ipairs(S.json(r.out).instances) do got[#got + 1] = s.instance_id end
      assert.are.same(seen, sorted(got))
      r = as(role, db, "query", "-g", "name", "--json")
      S.expect(r, 0, nil, "")
      local q = S.json(r.out)
      assert.are.equal(#seen, q.total_instances)
      local names = {}
      for _, g in ipairs(q.groups) do names[#names + 1] = g.orchestration_name end
      local want = {}
      for _, row in ipairs(ALL) do
        if seen_set[row.id] then want[row.name] = true end
      end
      local want_names = {}
      for n in pairs(want) do want_names[#want_names + 1] = n end
      assert.are.same(sorted(want_names), sorted(names))
    end)

    it("show, history, tree and wait find hidden instances nowhere", function()
      for _, cmd in ipairs { "show", "history", "tree" } do
        for _, id in ipairs { hidden[1], "no-such-instance" } do
          if id then
            local r = as(role, db, cmd, id)
            S.expect(r, E.NOTFOUND, "", ("duroxlua %s: instance '%s' not found\n"):format(cmd, id))
          end
        end
        if seen[1] then S.expect(as(role, db, cmd, seen[1]), 0, nil, "") end
      end
      local r = as(role, db, "wait", "--timeout", "1s", "--json", hidden[1] or seen[1])
      local w = S.json(r.out)
      if hidden[1] then assert.are.same({ hidden[1] }, w.not_found_instances) end
    end)

    it("metrics, queues, top, series and stuck follow the view", function()
      for _, cmd in ipairs { { "metrics" }, { "queues" }, { "top", "--once" } } do
        local r = as(role, db, table.unpack(cmd))
        if role.metrics then
          S.expect(r, 0, nil, "")
        else
          assert.are.equal(E.REFUSED, r.code, cmd[1])
          assert.truthy(r.err:find("access denied: ", 1, true), cmd[1] .. ": " .. r.err)
        end
      end
      local r = as(role, db, "series", "--from", "-30d", "--json")
      if role.nothing then
        assert.are.equal(E.REFUSED, r.code)
      else
        S.expect(r, 0, nil, "")
        assert.are.equal(#seen, S.json(r.out).totals.instances_started)
      end
      r = as(role, db, "stuck", "--json")
      if not role.nothing then
        S.expect(r, 0, nil, "")
        for _, s in ipairs(S.json(r.out).instances) do assert.is_true(seen_set[s.instance_id], s.instance_id) end
      end
    end)

    it("index status and verify need a full view and metrics, build and drop can_manage_jobs", function()
      local idb = copy()
      local full = role.metrics and not role.nothing and #seen == #ALL
      local r = as(role, idb, "index", "build")
      if role.jobs then
        S.expect(r, 0, nil, "")
      else
        assert.are.equal(E.REFUSED, r.code, r.err)
        assert.truthy(r.err:find("may not manage bulk jobs", 1, true), r.err)
      end
      for _, verb in ipairs { "status", "verify" } do
        r = as(role, idb, "index", verb, "--json")
        if full and (verb == "status" or role.jobs) then
          S.expect(r, 0, nil, "")
          if verb == "verify" then assert.are.equal(#ALL, S.json(r.out).instances_checked) end
        else
          assert.are.equal(E.REFUSED, r.code, verb .. ": " .. r.err)
          -- with --json the error is a JSON object on stdout
          assert.truthy((r.err .. r.out):find("access denied: ", 1, true), verb .. ": " .. r.err .. r.out)
        end
      end
      r = as(role, idb, "index", "drop")
      assert.are.equal(role.jobs and 0 or E.REFUSED, r.code, r.err)
      -- every refusal is in the audit log, as the operation it refused
      local denied = sql(idb, "SELECT operation FROM durox_audit_log WHERE decision = 'deny' AND operation LIKE 'index%' "
        .. "ORDER BY seq")
      local want = {}
      if not role.jobs then want[#want + 1] = "index_build" end
      if not full then want[#want + 1] = "index_status" end
      if not (full and role.jobs) then want[#want + 1] = "index_verify" end
      if not role.jobs then want[#want + 1] = "index_drop" end
      local got = {}
      for i, x in ipairs(denied) do got[i] = x.operation end
      assert.are.same(want, got)
    end)

    it("writes where the policy allows it, and nothing else", function()
      local wdb = copy()
      local q0 = sql(wdb, "SELECT count(*) AS n FROM orchestrator_queue")[1].n
      local r = as(role, wdb, "cancel", "--yes", "wait-approve-1", "--reason", "cli")
      local queued = 0
      -- (a cancel by id is a bulk operation of one: its targets' outcomes are its output)
      if role.nothing then
        S.expect(r, E.NOTFOUND, nil, "")
        assert.truthy(r.out:find("wait-approve-1  NOTFOUND  instance 'wait-approve-1' not found", 1, true), r.out)
      elseif not role.write then
        S.expect(r, E.REFUSED, nil, "")
        assert.truthy(r.out:find("wait-approve-1  DENIED  denied", 1, true), r.out)
      else
        S.expect(r, 0, nil, "")
        queued = queued + 1
      end
      r = as(role, wdb, "raise", "--yes", "Approve", "pctX1", "--data", '"yes"')
      if role.write then queued = queued + (r.code == 0 and 1 or 0) end
      if not role.write then assert.are.equal(role.nothing and E.NOTFOUND or E.REFUSED, r.code, r.out .. r.err) end
      -- purge: a policy that may not purge gets every target denied and nothing is deleted
      local n0 = sql(wdb, "SELECT count(*) AS n FROM instances")[1].n
      r = as(role, wdb, "purge", "--yes", "list-a-03", "--json")
      local removed = sql(wdb, "SELECT count(*) AS n FROM instances")[1].n
      if role.name == "break-glass admin" then
        S.expect(r, 0, nil, nil)
        assert.are.equal(n0 - 1, removed)
      else
        assert.are.equal(n0, removed)
        local res = S.json(r.out)
        assert.are.equal(1, #res.failed_instances)
        assert.are.equal(seen_set["list-a-03"] and "DENIED" or "NOTFOUND", res.failed_instances[1].code)
      end
      -- start
      r = as(role, wdb, "start", "cli-new-1", "EchoCli", "1")
      local can_start = role.name == "team member" or role.name == "break-glass admin"
      assert.are.equal(can_start and 0 or E.REFUSED, r.code, r.err)
      if can_start then queued = queued + 1 end
      assert.are.equal(q0 + queued, sql(wdb, "SELECT count(*) AS n FROM orchestrator_queue")[1].n)
      -- jobs and the audit log
      r = as(role, wdb, "jobs")
      assert.are.equal(role.jobs and 0 or E.REFUSED, r.code, r.err)
      r = as(role, wdb, "audit", "--json")
      assert.are.equal(role.audit and 0 or E.REFUSED, r.code, r.err)
      -- every denial above is on record, with the caller's name
      local denials = sql(wdb, "SELECT operation FROM durox_audit_log WHERE decision = 'deny'")
      local users = sql(wdb, "SELECT DISTINCT user_id FROM durox_audit_log")
      assert.are.same({ { user_id = role.args[4] } }, users)
      if not role.write or role.nothing then assert.is_true(#denials >= 2) end
    end)
  end)
end

describe("the environment and read-only use", function()
  it("takes the policy, user and roles from $DUROX_POLICY, $DUROX_USER and $DUROX_ROLES", function()
    local db = copy()
    local r = S.run({ "--store", "sqlite:" .. db, "list", "--json", "-n", "1000" },
      { env = { DUROX_POLICY = POL .. "team.lua", DUROX_USER = "eve", DUROX_ROLES = "team:Echo,team:Seq" } })
    S.expect(r, 0, nil, "")
    local got = {}
    for _, s in ipairs(S.json(r.out).instances) do got[#got + 1] = s.instance_id end
    assert.are.same(ids_where(function(x) return x.name:sub(1, 4) == "Echo" or x.name:sub(1, 3) == "Seq" end),
      sorted(got))
    assert.are.same({ { user_id = "eve", roles = '["team:Echo","team:Seq"]' } },
      sql(db, "SELECT DISTINCT user_id, roles FROM durox_audit_log"))
    -- the command's own options win over the environment
    r = S.run({ "--store", "sqlite:" .. db, "list", "--json", "-n", "1000", "--role", "team:Greet" },
      { env = { DUROX_POLICY = POL .. "team.lua", DUROX_USER = "eve", DUROX_ROLES = "team:Echo" } })
    got = {}
    for _, s in ipairs(S.json(r.out).instances) do got[#got + 1] = s.instance_id end
    assert.are.same(ids_where(function(x) return x.name:sub(1, 5) == "Greet" end), sorted(got))
  end)

  it("keeps a read-only store untouched with --audit-file, and audit reads the file", function()
    local db = copy()
    local file = tmpdir .. "/cli-audit.jsonl"
    local before = sql(db, "SELECT count(*) AS n FROM sqlite_master")[1].n
    local r = S.run({ "--store", "sqlite:" .. db, "--policy", POL .. "team.lua", "--user", "ro", "--role",
                      "team:Echo", "--audit-file", file, "show", "completed-seq-1" })
    S.expect(r, E.NOTFOUND, "", "duroxlua show: instance 'completed-seq-1' not found\n")
    assert.are.equal(before, sql(db, "SELECT count(*) AS n FROM sqlite_master")[1].n) -- no table of ours
    r = S.run({ "--store", "sqlite:" .. db, "audit", "--file", file, "--json" })
    S.expect(r, 0, nil, "")
    local recs = S.json(r.out)
    assert.are.equal(2, #recs)
    assert.are.equal("policy_load", recs[1].operation)
    assert.are.equal("get_instance_details", recs[2].operation)
    assert.are.equal("hidden", recs[2].reason)
    r = S.run({ "--store", "sqlite:" .. db, "audit", "--verify", "--file", file })
    S.expect(r, 0, nil, "")
    assert.truthy(r.out:find("^ok: 2 records verified, head 2 %x+\n$"), r.out)
  end)

  it("audit --verify names the first broken record and exits 1", function()
    local db = copy()
    S.run({ "--store", "sqlite:" .. db, "--policy", POL .. "viewer.lua", "--user", "v", "cancel", "--yes", "pctX1" })
    S.run({ "--store", "sqlite:" .. db, "--policy", POL .. "viewer.lua", "--user", "v", "cancel", "--yes", "pctX1" })
    local r = S.run({ "--store", "sqlite:" .. db, "audit", "--verify" })
    S.expect(r, 0, nil, "")
    assert(os.execute(("sqlite3 %s %s"):format(S.sh(db), S.sh("DROP TRIGGER durox_audit_log_no_update; "
      .. "UPDATE durox_audit_log SET user_id = 'w' WHERE seq = 2"))))
    r = S.run({ "--store", "sqlite:" .. db, "audit", "--verify" })
    S.expect(r, 1, "", "duroxlua audit: audit record 2: its hash does not match its content (edited, or written "
      .. "with an audit_key)\n")
  end)

  it("refuses break-glass writes without a reason", function()
    local db = copy()
    local r = S.run({ "--store", "sqlite:" .. db, "--policy", POL .. "breakglass.lua", "--user", "root", "--role",
                      "admin", "cancel", "--yes", "pctX1" })
    assert.are.equal(E.REFUSED, r.code)
    assert.truthy(r.out:find("pctX1  DENIED  denied", 1, true), r.out)
    -- the policy's reason is in the audit record of the attempt (a bulk of one: no job)
    local recs = sql(db, "SELECT operation, decision, result FROM durox_audit_log ORDER BY seq")
    assert.are.equal("cancel_instances", recs[#recs].operation)
    assert.are.equal(1, durox.decode_json(recs[#recs].result).denied)
    r = S.run({ "--store", "sqlite:" .. db, "--policy", POL .. "breakglass.lua", "--user", "root", "--role",
                "admin", "--access-reason", "INC-7: unstick pctX1 now", "cancel", "--yes", "pctX1" })
    S.expect(r, 0, nil, "")
    recs = sql(db, "SELECT operation, decision, context_reason FROM durox_audit_log ORDER BY seq")
    assert.are.same({ operation = "job_end", decision = "allow", context_reason = "INC-7: unstick pctX1 now" },
      recs[#recs])
    assert.are.same({ operation = "cancel_instances", decision = "allow", context_reason = "INC-7: unstick pctX1 now" },
      recs[#recs - 1])
  end)
end)
