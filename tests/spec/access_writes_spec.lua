-- access_writes_spec.lua - the write half of the policy matrix: the same six callers as
-- access_spec.lua each get a fresh copy of the scenario store and attempt the same writes
-- (single writes, bulk purge and restart over a mixed target set, a bulk ceiling, the job
-- journal, the audit log). Each attempt must give the exact outcome, exactly the allowed work
-- items must be queued (read back with the sqlite3 tool), nothing of the runtime's tables may
-- change on a denial, and the audit log must hold one record per attempt, in order.
local durox = require "durox"
local H = require "helpers"
local L = require "live"

if H.skip or L.skip then
  describe("access control writes", function() pending("the scenario fixture is not set") end)
  return
end

local POLICIES = "../../scripts/policies/"
local dir = L.tmpdir()
teardown(function() L.cleanup(dir) end)

local ROWWISE = [[
return {
  can_list_instances = true,
  can_view_instance = function(ctx, inst) return not inst.id:find("::sub::3", 1, true) end,
  can_view_history = false,
  can_view_metrics = true,
  can_cancel_instance = function(ctx, inst) return inst.name == "WaitApprove", "WaitApprove only" end,
  can_raise_event = function(ctx, inst) return inst.name == "WaitApprove" end,
}]]

-- Outcomes: "ok", or the error code (a denial's message is checked for DENIED).
local ROLES = {
  { name = "viewer", user = "vera", open = { policy = POLICIES .. "viewer.lua", context = { user_id = "vera" } },
    cancel_wait = "DENIED", cancel_tree = "DENIED", raise = "DENIED", start_echo = "DENIED", start_seq = "DENIED",
    purge = { ["list-a-03"] = "DENIED", ["completed-seq-1"] = "DENIED", ["wait-approve-1"] = "DENIED" },
    restart = "DENIED", jobs = "DENIED", audit = "DENIED", source = POLICIES .. "viewer.lua" },
  { name = "team member", user = "tom", open = { policy = POLICIES .. "team.lua",
      context = { user_id = "tom", roles = { "team:Echo", "team:Wait" } } },
    cancel_wait = "ok", cancel_tree = "NOTFOUND", raise = "ok", start_echo = "ok", start_seq = "DENIED",
    purge = { ["list-a-03"] = "DENIED", ["completed-seq-1"] = "NOTFOUND", ["wait-approve-1"] = "DENIED" },
    restart = "NOTFOUND", jobs = "DENIED", audit = "DENIED", source = POLICIES .. "team.lua" },
  { name = "on-call operator", user = "olga", open = { policy = POLICIES .. "oncall.lua",
      context = { user_id = "olga", roles = { "oncall" } } },
    cancel_wait = "ok", cancel_tree = "ok", raise = "ok", start_echo = "DENIED", start_seq = "DENIED",
    purge = { ["list-a-03"] = "DENIED", ["completed-seq-1"] = "DENIED", ["wait-approve-1"] = "DENIED" },
    restart = "DENIED", jobs = "ok", audit = "DENIED", cap = 200, source = POLICIES .. "oncall.lua" },
  { name = "break-glass admin", user = "root", open = { policy = POLICIES .. "breakglass.lua",
      context = { user_id = "root", roles = { "admin" }, reason = "INC-42: clean up the test data" } },
    cancel_wait = "ok", cancel_tree = "ok", raise = "ok", start_echo = "ok", start_seq = "ok",
    purge = { ["list-a-03"] = "ok", ["completed-seq-1"] = "ok", ["wait-approve-1"] = "CONFLICT" },
    restart = "ok", jobs = "ok", audit = "ok", source = POLICIES .. "breakglass.lua" },
  { name = "per-row policy", user = "rita", open = { policy_source = ROWWISE, context = { user_id = "rita" } },
    cancel_wait = "ok", cancel_tree = "DENIED", raise = "ok", start_echo = "DENIED", start_seq = "DENIED",
    purge = { ["list-a-03"] = "DENIED", ["completed-seq-1"] = "DENIED", ["wait-approve-1"] = "DENIED" },
    restart = "DENIED", jobs = "DENIED", audit = "DENIED", source = "policy_source" },
  { name = "caller without a team", user = "nina", open = { policy = POLICIES .. "team.lua",
      context = { user_id = "nina" } },
    cancel_wait = "NOTFOUND", cancel_tree = "NOTFOUND", raise = "NOTFOUND", start_echo = "DENIED",
    start_seq = "DENIED",
    purge = { ["list-a-03"] = "NOTFOUND", ["completed-seq-1"] = "NOTFOUND", ["wait-approve-1"] = "NOTFOUND" },
    restart = "NOTFOUND", jobs = "DENIED", audit = "DENIED", source = POLICIES .. "team.lua" },
}

-- Every row of Duroxide's tables (not ours).
local TABLES = { "instances", "executions", "history", "orchestrator_queue", "worker_queue", "instance_locks",
  "kv_store", "kv_delta" }
local function dump(db)
  local d = {}
  for _, t in ipairs(TABLES) do d[t] = L.sql(db, ("SELECT * FROM %s ORDER BY 1, 2, 3"):format(t)) end
  return d
end

local function outcome(res, msg, code)
  if res ~= nil then return "ok" end
  if code == "DENIED" then assert.truthy(msg:find("^access denied: ")) end
  return code
end

-- Both providers: copies of the SQLite scenario store, and of the PostgreSQL one when the
-- test server runs. On PostgreSQL our audit log is durox.audit_log.
local STORES = { "sqlite" }
if L.pg_dir and io.open(L.pg_dir .. "/port") then STORES[2] = "postgres" end
local pg_copies = {}
teardown(function() for _, db in ipairs(pg_copies) do L.pg_drop(db) end end)

for _, provider in ipairs(STORES) do
local pg = provider == "postgres"
local AUDIT = pg and "durox.audit_log" or "durox_audit_log"
for n, role in ipairs(ROLES) do
  describe(provider .. ": " .. role.name, function()
    it("writes exactly what the policy allows, and records every attempt", function()
      local db
      if pg then
        db = L.pg_fresh()
        pg_copies[#pg_copies + 1] = db
      else
        db = L.copy_scenarios(("%s/w%d.db"):format(dir, n))
      end
      local url = L.url(db)
      local before = dump(db)
      local q0 = L.sql_value(db, "SELECT max(id) AS m FROM orchestrator_queue")
      local dx = assert(durox.open(url, role.open))
      local expect_log = { { "policy_load", role.source, "allow" } }
      local function log(op, target, decision) expect_log[#expect_log + 1] = { op, target, decision } end
      local queued = {} -- the work items the allowed writes must queue, in order

      local function single(key, op, target, call)
        local got = outcome(call())
        assert.are.equal(role[key], got, op .. " " .. target)
        if got == "ok" then
          log(op, target, "allow")
        elseif got == "DENIED" or got == "NOTFOUND" then -- every target exists: NOTFOUND means hidden
          log(op, target, "deny")
        else
          log(op, target, "allow")
        end
        return got
      end
      if single("cancel_wait", "cancel_instance", "wait-approve-1",
                function() return dx:cancel_instance("wait-approve-1", "matrix") end) == "ok" then
        queued[#queued + 1] = { "wait-approve-1", "CancelInstance" }
      end
      if single("cancel_tree", "cancel_instance", "tree-wait-1",
                function() return dx:cancel_instance("tree-wait-1", "matrix") end) == "ok" then
        queued[#queued + 1] = { "tree-wait-1", "CancelInstance" }
      end
      if single("raise", "raise_event", "pctX1", function() return dx:raise_event("pctX1", "Approve", '"yes"') end)
          == "ok" then
        queued[#queued + 1] = { "pctX1", "ExternalRaised" }
      end
      if single("start_echo", "start_orchestration", "new-echo-1",
                function() return dx:start_orchestration("new-echo-1", "EchoNew", "1") end) == "ok" then
        queued[#queued + 1] = { "new-echo-1", "StartOrchestration" }
      end
      if single("start_seq", "start_orchestration", "new-seq-1",
                function() return dx:start_orchestration("new-seq-1", "Sequence", "1") end) == "ok" then
        queued[#queued + 1] = { "new-seq-1", "StartOrchestration" }
      end

      -- bulk purge over a mixed set: every target classified
      local targets = { "list-a-03", "completed-seq-1", "wait-approve-1" }
      local r = assert(dx:purge_instances { instances = targets })
      local got = {}
      for _, id in ipairs(r.purged_instances) do got[id] = "ok" end
      for _, f in ipairs(r.failed_instances) do
        got[f.instance_id] = f.code
        if f.code == "DENIED" then assert.are.equal("denied", f.error) end
        if f.code == "NOTFOUND" then assert.are.equal(("instance '%s' not found"):format(f.instance_id), f.error) end
      end
      assert.are.same(role.purge, got)
      log("purge_instances", "ids (3)", "allow")
      if r.job_id then log("job_end", "job " .. r.job_id, "allow") end
      local purged = {}
      for id, o in pairs(role.purge) do
        if o == "ok" then purged[#purged + 1] = id end
      end

      -- restart of a failed root
      r = assert(dx:restart_instances { instances = { "failed-throw-1" } })
      local ro = #r.restarted_instances == 1 and "ok" or r.failed_instances[1].code
      assert.are.equal(role.restart, ro)
      log("restart_instances", "ids (1)", "allow")
      if r.job_id then
        log("job_end", "job " .. r.job_id, "allow")
        queued[#queued + 1] = { "failed-throw-1~r1", "StartOrchestration" }
      end

      -- the bulk ceiling cannot be raised past the policy's cap
      if role.cap then
        local ok, err = pcall(dx.config, dx, { max_bulk_operations = role.cap + 1 })
        assert.is_false(ok)
        assert.truthy(tostring(err):find("access denied: the policy allows user 'olga' bulk operations of at most 200",
                                         1, true))
        log("set_config", tostring(role.cap + 1), "deny")
        local res, msg, code = dx:cancel_instances { instances = { "pctX1" }, max_instances = role.cap + 1 }
        assert.are.same({ nil, "max_instances 201 exceeds 200, the largest bulk operation the access policy allows",
                          "LIMIT" }, { res, msg, code })
      end

      -- the job journal and the audit log
      local jobs_out = outcome(dx:list_jobs())
      assert.are.equal(role.jobs, jobs_out)
      if jobs_out ~= "ok" then log("list_jobs", nil, "deny") end
      local audit_out = outcome(dx:get_audit_log())
      assert.are.equal(role.audit, audit_out)
      if audit_out ~= "ok" then log("get_audit_log", nil, "deny") end
      dx:close()

      -- the queue holds exactly the allowed writes, after the rows that were there
      local rows = L.sql(db, ("SELECT instance_id, work_item FROM orchestrator_queue WHERE id > %d ORDER BY id"):format(q0))
      local want_q = {}
      for _, w in ipairs(queued) do want_q[#want_q + 1] = w[1] .. " " .. w[2] end
      local got_q = {}
      for _, row in ipairs(rows) do got_q[#got_q + 1] = row.instance_id .. " " .. row.work_item:match('^{"(%w+)"') end
      assert.are.same(want_q, got_q)
      -- nothing else of the runtime's tables changed (a purge removed exactly its trees)
      local after = dump(db)
      local gone = H.set(purged)
      for _, t in ipairs(TABLES) do
        local want_rows = {}
        for _, row in ipairs(before[t]) do
          if not gone[row.instance_id] and t ~= "orchestrator_queue" then want_rows[#want_rows + 1] = row end
          if t == "orchestrator_queue" and not gone[row.instance_id] then want_rows[#want_rows + 1] = row end
        end
        local got_rows = {}
        for _, row in ipairs(after[t]) do
          if t ~= "orchestrator_queue" or row.id <= q0 then got_rows[#got_rows + 1] = row end
        end
        assert.are.same(want_rows, got_rows, t)
      end

      -- the audit log, read with the sqlite3 tool: one record per attempt, in order, all by this caller
      local recs = L.sql(db, ("SELECT operation, target, decision, user_id, policy FROM %s ORDER BY seq"):format(AUDIT))
      local got_log = {}
      for _, rec in ipairs(recs) do
        got_log[#got_log + 1] = { rec.operation, rec.target ~= durox.null and rec.target or nil, rec.decision }
        assert.are.equal(role.user, rec.user_id)
        assert.truthy(tostring(rec.policy):match("^sha256:%x+$"))
      end
      assert.are.same(expect_log, got_log)
      -- and the chain verifies (a plain handle: no policy needed to verify)
      local plain = assert(durox.open(url))
      assert.is_true((plain:verify_audit_log()))
      plain:close()
    end)
  end)
end
end

-- The rest of the write methods, and jobs run by one caller and resumed by another.
for _, provider in ipairs(STORES) do
local pg = provider == "postgres"
local function fresh()
  if pg then
    local db = L.pg_fresh()
    pg_copies[#pg_copies + 1] = db
    return db
  end
  return L.copy_scenarios(("%s/x%d.db"):format(dir, #pg_copies + math.random(1, 1e9)))
end

describe(provider .. ": every other write", function()
  local PICK = { viewer = ROLES[1], team = ROLES[2], oncall = ROLES[3], admin = ROLES[4] }

  it("enqueue_event, raise_event_bulk and prune_executions ask the policy about each target", function()
    local db = fresh()
    local url = L.url(db)
    local plain = assert(durox.open(url))
    local targets = { "wait-approve-1", "list-b-wait-1", "completed-seq-1", "tree-wait-1", "no-such-instance" }
    -- what the store's state makes of each target, for a caller who may do anything
    local base = assert(plain:raise_event_bulk { instances = targets, event_name = "Approve", dry_run = true })
    local base_out = {}
    for _, id in ipairs(base.delivered_instances) do base_out[id] = "delivered" end
    for _, id in ipairs(base.no_subscription_instances) do base_out[id] = "no_subscription" end
    for _, f in ipairs(base.failed_instances) do base_out[f.instance_id] = f.code end
    plain:close()
    local expect = {
      viewer = { enqueue = "DENIED", raise = function(id) return id ~= "no-such-instance" and "DENIED" or "NOTFOUND" end,
                 prune = "DENIED" },
      team = { enqueue = "NOTFOUND", prune = "NOTFOUND",
               raise = function(id)
                 return (id == "wait-approve-1" or id == "list-b-wait-1") and base_out[id] or "NOTFOUND"
               end },
      oncall = { enqueue = "ok", raise = function(id) return base_out[id] end, prune = "DENIED" },
      admin = { enqueue = "ok", raise = function(id) return base_out[id] end, prune = "ok" },
    }
    for name, role in pairs(PICK) do
      local e = expect[name]
      local dx = assert(durox.open(url, role.open))
      local res, msg, code = dx:enqueue_event("queue-wait-1", "inbox", "1")
      assert.are.equal(e.enqueue, res ~= nil and "ok" or code, name .. ": " .. tostring(msg))
      local r = assert(dx:raise_event_bulk { instances = targets, event_name = "Approve", dry_run = true })
      local got = {}
      for _, id in ipairs(r.delivered_instances) do got[id] = "delivered" end
      for _, id in ipairs(r.no_subscription_instances) do got[id] = "no_subscription" end
      for _, f in ipairs(r.failed_instances) do got[f.instance_id] = f.code end
      for _, id in ipairs(targets) do assert.are.equal(e.raise(id), got[id], name .. " " .. id) end
      r = assert(dx:prune_executions { instances = { "can-done-1" }, keep_last = 1 })
      local po = #r.pruned_instances == 1 and "ok" or r.failed_instances[1].code
      assert.are.equal(e.prune, po, name)
      dx:close()
    end
  end)

  it("the caller's authorize callback allows a target only with exactly true, and only within the policy", function()
    local db = fresh()
    local url = L.url(db)
    -- running targets the on-call operator may cancel, and the answers authorize gives them
    local answers = { ["wait-approve-1"] = true, ["list-b-wait-1"] = 1, ["tree-wait-1"] = "yes",
                      ["kv-wait-1"] = {}, ["queue-wait-1"] = false }
    local targets = {}
    for id in pairs(answers) do targets[#targets + 1] = id end
    table.sort(targets)
    local plain = assert(durox.open(url))
    local base = assert(plain:cancel_instances { instances = targets, dry_run = true })
    plain:close()
    assert.are.equal(#targets, #base.cancelled_instances, "every target must be cancellable for this test")
    for _, role in ipairs { PICK.oncall, PICK.viewer } do
      local dx = assert(durox.open(url, role.open))
      local asked = {}
      local r = assert(dx:cancel_instances { instances = targets, dry_run = true,
        authorize = function(sum) asked[#asked + 1] = sum.instance_id return answers[sum.instance_id] end })
      dx:close()
      local codes = {}
      for _, id in ipairs(r.cancelled_instances) do codes[id] = "ok" end
      for _, f in ipairs(r.failed_instances) do codes[f.instance_id] = f.code end
      for _, id in ipairs(targets) do
        if role == PICK.oncall then
          assert.are.equal(answers[id] == true and "ok" or "DENIED", codes[id], id)
        else
          assert.are.equal("DENIED", codes[id], id) -- the viewer's policy refuses first
        end
      end
      -- under a policy that refuses, authorize is not even asked
      table.sort(asked)
      assert.are.same(role == PICK.oncall and targets or {}, asked)
    end
  end)

  it("a job stopped by one caller is resumed with the rights of the next", function()
    local db = fresh()
    local url = L.url(db)
    local targets = { "wait-approve-1", "list-b-wait-1", "tree-wait-1", "kv-wait-1" }
    local admin = assert(durox.open(url, PICK.admin.open))
    local r = assert(admin:cancel_instances { instances = targets, reason = "two callers", batch_size = 1,
                                               progress = function(p) return p.phase ~= "running" end })
    assert.are.equal("stopped", r.state)
    assert.are.equal(1, #r.cancelled_instances) -- the first batch, then the stop
    local job = r.job_id
    admin:close()
    -- the next caller sees WaitApprove only and may cancel it, and manages jobs
    local other = assert(durox.open(url, { policy_source = [[
      return { can_list_instances = function() return "name = 'WaitApprove'" end, can_view_instance = true,
               can_manage_jobs = true,
               can_cancel_instance = function(ctx, inst) return inst.id ~= "list-b-wait-1", "not that one" end }]],
      context = { user_id = "resumer" } }))
    local j = assert(other:get_job(job))
    assert.are.equal(3, j.pending)
    local res = assert(other:resume_job(job))
    assert.are.equal("completed", res.state)
    local out = {}
    for _, id in ipairs(res.cancelled_instances) do out[id] = "ok" end
    for _, f in ipairs(res.failed_instances) do out[f.instance_id] = f.code end
    assert.are.same({ ["wait-approve-1"] = "ok", ["list-b-wait-1"] = "DENIED", ["tree-wait-1"] = "NOTFOUND",
                      ["kv-wait-1"] = "NOTFOUND" }, out)
    -- stop_job of a job that ended: CONFLICT; a caller without can_manage_jobs: DENIED
    local s, _, code = other:stop_job(job)
    assert.are.same({ nil, "CONFLICT" }, { s, code })
    other:close()
    local viewer = assert(durox.open(url, PICK.viewer.open))
    for _, m in ipairs { "get_job", "stop_job", "resume_job" } do
      local v, _, c = viewer[m](viewer, job)
      assert.are.same({ nil, "DENIED" }, { v, c }, m)
    end
    viewer:close()
    -- the queue: exactly the cancel the admin's first batch made; the resumer made none
    local rows = L.sql(db, "SELECT instance_id FROM orchestrator_queue WHERE work_item LIKE '{\"CancelInstance\"%' ORDER BY id")
    local ids = {}
    for _, row in ipairs(rows) do ids[#ids + 1] = row.instance_id end
    assert.are.same({ "wait-approve-1" }, ids)
  end)
end)
end
