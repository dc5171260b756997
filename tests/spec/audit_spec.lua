-- audit_spec.lua - the audit log on copies of the scenario store and in JSON Lines files: what
-- a record holds (read back with the sqlite3 tool), its hash recomputed here with sha256sum
-- from the canonical text docs/access-control.md defines, tampering (an edited, deleted,
-- reordered or inserted record, a dropped trigger) detected by verify_audit_log naming the
-- first broken record, the keyed chain, read-only handles writing to a file, and refusal of an
-- operation whose record cannot be written.
local durox = require "durox"
local H = require "helpers"
local L = require "live"

if H.skip or L.skip then
  describe("audit log", function() pending("the scenario fixture is not set") end)
  return
end

local dir = L.tmpdir()
teardown(function() L.cleanup(dir) end)
local n_copies = 0
local function copy()
  n_copies = n_copies + 1
  return L.copy_scenarios(("%s/a%d.db"):format(dir, n_copies))
end

local OPS = [[
return {
  can_list_instances = true, can_view_instance = true, can_view_history = true, can_view_metrics = true,
  can_view_audit = true, can_manage_jobs = true,
  can_cancel_instance = function(ctx, inst) return inst.name == "WaitApprove", "only WaitApprove" end,
  can_raise_event = true,
}]]

-- Writes some history: a load, an allowed and a denied cancel, a refused raise, a bulk job.
local function activity(db, extra)
  local opts = { policy_source = OPS, context = { user_id = "ann", roles = { "ops", "night" }, source_ip = "10.0.0.7",
                                                  reason = "CHG-7" } }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local dx = assert(durox.open(L.url(db), opts))
  assert(dx:cancel_instance("wait-approve-1", "audit test"))
  assert.is_nil(dx:cancel_instance("tree-wait-1"))
  assert.is_nil(dx:raise_event("completed-seq-1", "Nope"))
  assert(dx:cancel_instances { instances = { "pctX1", "list-b-wait-1", "kv-wait-1" } })
  return dx
end

-- Runs SQL that writes (the sqlite3 tool; the triggers must be dropped first to edit).
local function sql_write(db, query)
  local out, code, err = L.run(("sqlite3 %s %s"):format(L.q(db), L.q(query)))
  assert(code == 0, err .. out)
end

local function sha256_hex(text)
  local path = os.tmpname()
  L.write(path, text)
  local out = L.run("sha256sum " .. L.q(path))
  os.remove(path)
  return out:match("^(%x+)")
end

-- The canonical text of a record (docs/access-control.md), built here from the columns.
local function json_str(v)
  if v == nil or v == durox.null then return "null" end
  return durox.encode_json(v)
end
local function canonical(r)
  local function raw(v) return (v == nil or v == durox.null) and "null" or v end
  return table.concat {
    '{"seq":', r.seq, ',"time":', r.at_ms, ',"user_id":', json_str(r.user_id), ',"roles":', raw(r.roles),
    ',"source_ip":', json_str(r.source_ip), ',"context_reason":', json_str(r.context_reason),
    ',"operation":', json_str(r.operation), ',"target":', json_str(r.target), ',"decision":', json_str(r.decision),
    ',"reason":', json_str(r.reason), ',"policy":', json_str(r.policy), ',"params":', raw(r.params),
    ',"result":', raw(r.result), ',"prev_hash":', json_str(r.prev_hash), "}" }
end

describe("audit records", function()
  it("hold who, what, the decision and the outcome, chained by SHA-256 of their canonical text", function()
    local db = copy()
    local dx = activity(db)
    dx:close()
    local rows = L.sql(db, "SELECT * FROM durox_audit_log ORDER BY seq")
    local ops = {}
    for _, r in ipairs(rows) do ops[#ops + 1] = r.operation .. ":" .. r.decision end
    assert.are.same({ "policy_load:allow", "cancel_instance:allow", "cancel_instance:deny", "raise_event:allow",
                      "cancel_instances:allow", "job_end:allow" }, ops)
    local prev = ("0"):rep(64)
    for i, r in ipairs(rows) do
      assert.are.equal(i, r.seq)
      assert.are.equal("ann", r.user_id)
      assert.are.equal('["ops","night"]', r.roles)
      assert.are.equal("10.0.0.7", r.source_ip)
      assert.are.equal("CHG-7", r.context_reason)
      assert.are.equal(prev, r.prev_hash)
      assert.are.equal(sha256_hex(canonical(r)), r.hash)
      prev = r.hash
    end
    assert.are.equal("wait-approve-1", rows[2].target)
    assert.are.same({ reason = "audit test" }, durox.decode_json(rows[2].params))
    assert.are.same({ code = "OK" }, durox.decode_json(rows[2].result))
    assert.are.equal("only WaitApprove", rows[3].reason)
    assert.are.equal("DENIED", durox.decode_json(rows[3].result).code)
    -- the refused raise: allowed by the policy, refused by the store's state
    assert.are.same({ code = "CONFLICT", message = "instance 'completed-seq-1' is already terminal (Completed)" },
      durox.decode_json(rows[4].result))
    assert.are.same({ event_name = "Nope", data_bytes = 4 }, durox.decode_json(rows[4].params))
    local start = durox.decode_json(rows[5].result)
    assert.are.equal(3, start.matched)
    assert.are.equal(1, start.denied) -- kv-wait-1 is no WaitApprove
    local job_end = durox.decode_json(rows[6].result)
    assert.are.equal(start.job_id, job_end.job_id)
    assert.are.equal("completed", job_end.state)
    assert.are.equal(3, job_end.total)
    assert.are.equal("job " .. start.job_id, rows[6].target)
  end)

  it("are read back by get_audit_log with since, user, operation and limit", function()
    local db = copy()
    local dx = activity(db)
    local all = assert(dx:get_audit_log { limit = 100 })
    assert.are.equal(6, #all)
    local cancels = assert(dx:get_audit_log { operation = "cancel_instance" })
    assert.are.same({ 2, 3 }, { cancels[1].seq, cancels[2].seq })
    assert.are.same({ "ops", "night" }, cancels[1].roles)
    assert.are.same({ reason = "audit test" }, cancels[1].params)
    local last = assert(dx:get_audit_log { limit = 2 })
    assert.are.same({ 5, 6 }, { last[1].seq, last[2].seq })
    assert.are.same({}, assert(dx:get_audit_log { user_id = "nobody" }))
    assert.are.same({}, assert(dx:get_audit_log { since = durox.now() + 60000 }))
    local ok, info = dx:verify_audit_log()
    assert.is_true(ok)
    assert.are.equal(6, info.records)
    assert.are.equal(all[6].hash, info.head_hash)
    dx:close()
  end)
end)

describe("tampering", function()
  local function tampered(edit)
    local db = copy()
    activity(db):close()
    sql_write(db, "DROP TRIGGER durox_audit_log_no_update; DROP TRIGGER durox_audit_log_no_delete; " .. edit)
    local dx = assert(durox.open("sqlite:" .. db))
    local ok, msg, code = dx:verify_audit_log()
    dx:close()
    assert.is_nil(ok)
    assert.are.equal("CORRUPT", code)
    return msg
  end

  it("the triggers refuse UPDATE and DELETE on the log", function()
    local db = copy()
    activity(db):close()
    local _, code, err = L.run(("sqlite3 %s %s"):format(L.q(db), L.q("UPDATE durox_audit_log SET decision='allow'")))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("the audit log is append-only", 1, true))
    _, code, err = L.run(("sqlite3 %s %s"):format(L.q(db), L.q("DELETE FROM durox_audit_log WHERE seq = 3")))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("the audit log is append-only", 1, true))
  end)

  it("detects an edited record", function()
    assert.are.equal("audit record 3: its hash does not match its content (edited, or written with an audit_key)",
      tampered("UPDATE durox_audit_log SET decision = 'allow' WHERE seq = 3"))
    assert.are.equal("audit record 2: its hash does not match its content (edited, or written with an audit_key)",
      tampered("UPDATE durox_audit_log SET user_id = 'mallory' WHERE seq = 2"))
  end)

  it("detects a deleted record", function()
    assert.are.equal("audit record 4: out of sequence (records 3 to 3 are missing)",
      tampered("DELETE FROM durox_audit_log WHERE seq = 3"))
    assert.are.equal("audit record 2: out of sequence (records 1 to 1 are missing)",
      tampered("DELETE FROM durox_audit_log WHERE seq = 1"))
  end)

  it("detects reordered records", function()
    -- swap the contents of records 2 and 3 (their seq stays)
    assert.are.equal("audit record 2: its link to the previous record does not match (the previous record was "
      .. "edited, removed or reordered)", tampered([[
      CREATE TEMP TABLE t AS SELECT * FROM durox_audit_log WHERE seq IN (2, 3);
      UPDATE durox_audit_log SET (at_ms, operation, target, decision, reason, params, result, prev_hash, hash) =
        (SELECT at_ms, operation, target, decision, reason, params, result, prev_hash, hash FROM t WHERE t.seq = 5 - durox_audit_log.seq)
        WHERE seq IN (2, 3);]]))
  end)

  it("detects a rewritten chain from the edit on, unless the whole rest was recomputed", function()
    -- renumbering after a deletion keeps the sequence but breaks the link
    assert.are.equal("audit record 3: its link to the previous record does not match (the previous record was "
      .. "edited, removed or reordered)",
      tampered("DELETE FROM durox_audit_log WHERE seq = 3; UPDATE durox_audit_log SET seq = seq - 1 WHERE seq > 3"))
  end)

  it("with an audit_key, a chain recomputed without the key does not verify", function()
    local db = copy()
    local dx = activity(db, { audit_key = "s3cret" })
    assert.is_true((dx:verify_audit_log()))
    dx:close()
    -- verified without the key, or with another one: record 1 fails
    local plain = assert(durox.open("sqlite:" .. db))
    local ok, msg = plain:verify_audit_log()
    assert.is_nil(ok)
    assert.are.equal("audit record 1: its hash does not match its content (edited, or written with an audit_key)", msg)
    plain:close()
    local other = assert(durox.open("sqlite:" .. db, { audit_key = "guess" }))
    ok, msg = other:verify_audit_log()
    assert.is_nil(ok)
    assert.are.equal("audit record 1: its hash does not match its content (edited, or written with another audit_key)",
      msg)
    other:close()
    -- an attacker who edits record 2 and recomputes every plain SHA-256 hash after it
    sql_write(db, "DROP TRIGGER durox_audit_log_no_update; UPDATE durox_audit_log SET decision = 'deny' WHERE seq = 2")
    local rows = L.sql(db, "SELECT * FROM durox_audit_log ORDER BY seq")
    local prev = ("0"):rep(64)
    for _, r in ipairs(rows) do
      r.prev_hash = prev
      r.hash = sha256_hex(canonical(r))
      sql_write(db, ("UPDATE durox_audit_log SET prev_hash = '%s', hash = '%s' WHERE seq = %d"):format(r.prev_hash,
        r.hash, r.seq))
      prev = r.hash
    end
    plain = assert(durox.open("sqlite:" .. db))
    assert.is_true((plain:verify_audit_log())) -- without the key the forgery passes: that is what the key is for
    plain:close()
    local keyed = assert(durox.open("sqlite:" .. db, { audit_key = "s3cret" }))
    ok, msg = keyed:verify_audit_log()
    assert.is_nil(ok)
    assert.truthy(msg:find("^audit record 1: its hash does not match"))
    keyed:close()
  end)
end)

describe("read-only handles", function()
  it("append their records to the audit file, chained, and say so", function()
    local file = dir .. "/ro-audit.jsonl"
    local dx = assert(durox.open("sqlite:" .. H.db, { readonly = true, audit_file = file, policy_source = [[
      return { can_list_instances = function() return "name = 'Echo'" end, can_view_instance = true,
               can_view_audit = true }]],
      context = { user_id = "ro" } }))
    local ai = dx:access_info()
    assert.are.equal("file", ai.audit)
    assert.are.equal(file, ai.audit_file)
    assert.is_true(ai.enabled)
    assert.is_nil(dx:get_runtime_metrics())                          -- denied: recorded
    assert.is_nil(dx:get_instance_details("completed-seq-1"))        -- hidden: recorded
    assert.is_nil(dx:get_instance_details("no-such-instance"))       -- missing: not a denial
    assert.is_nil(dx:cancel_instance("list-a-03"))                   -- read-only: DENIED before the policy
    local recs = assert(dx:get_audit_log { file = file })
    local ops = {}
    for _, r in ipairs(recs) do ops[#ops + 1] = r.operation .. ":" .. r.decision .. ":" .. (r.reason or "") end
    assert.are.same({ "policy_load:allow:", "get_runtime_metrics:deny:can_view_metrics is not defined by the policy",
                      "get_instance_details:deny:hidden" }, ops)
    -- each line is the canonical text plus its hash, which sha256sum confirms
    local n = 0
    for line in L.read(file):gmatch("[^\n]+") do
      n = n + 1
      local body, hash = line:match('^(.*),"hash":"(%x+)"}$')
      assert.are.equal(sha256_hex(body .. "}"), hash)
    end
    assert.are.equal(3, n)
    assert.is_true((dx:verify_audit_log { file = file }))
    dx:close()
    -- an edited line, a deleted line, swapped lines
    local lines = {}
    for line in L.read(file):gmatch("[^\n]+") do lines[#lines + 1] = line end
    local function check(text, want)
      local f2 = dir .. "/tampered.jsonl"
      L.write(f2, text)
      local plain = assert(durox.open("sqlite:" .. H.db, { readonly = true }))
      local ok, msg, code = plain:verify_audit_log(f2)
      plain:close()
      assert.is_nil(ok)
      assert.are.equal("CORRUPT", code)
      assert.are.equal(want:format(f2), msg)
    end
    check(lines[1] .. "\n" .. lines[2]:gsub('"deny"', '"allow"') .. "\n" .. lines[3] .. "\n",
      "audit file %s: record 2: its hash does not match its content (edited, or written with an audit_key)")
    check(lines[1] .. "\n" .. lines[3] .. "\n", "audit file %s: record 3: out of sequence (records 2 to 2 are missing)")
    check(lines[1] .. "\n" .. lines[3] .. "\n" .. lines[2] .. "\n",
      "audit file %s: record 3: out of sequence (records 2 to 2 are missing)")
    check(lines[1] .. "\n" .. lines[2] .. "\n" .. lines[3], "audit file %s: line 3 is a partial record")
  end)

  it("refuse to open under a policy without an audit file", function()
    local dx, msg, code = durox.open("sqlite:" .. H.db, { readonly = true, policy_source = "return {}" })
    assert.is_nil(dx)
    assert.are.equal("INVALID", code)
    assert.truthy(msg:find("is open read-only and its audit records need a place", 1, true))
  end)
end)

describe("an operation whose record cannot be written", function()
  it("is refused, and nothing is written", function()
    local db = copy()
    local dx = assert(durox.open("sqlite:" .. db, { policy_source = OPS, context = { user_id = "ann" } }))
    dx:close()
    -- from now on every append fails
    sql_write(db, "CREATE TRIGGER no_audit BEFORE INSERT ON durox_audit_log BEGIN SELECT RAISE(ABORT, 'disk says no'); END;")
    local q0 = L.sql_value(db, "SELECT count(*) AS n FROM orchestrator_queue")
    local res, msg, code = durox.open("sqlite:" .. db, { policy_source = OPS })
    assert.is_nil(res) -- the policy load cannot be recorded: no handle
    assert.truthy(msg:find("the audit record could not be written", 1, true))
    assert.truthy(msg:find("disk says no", 1, true))
    -- without a policy but with audit = true, the write itself is refused
    dx = assert(durox.open("sqlite:" .. db, { audit = true }))
    res, msg, code = dx:cancel_instance("wait-approve-1")
    assert.is_nil(res)
    assert.truthy(msg:find("the audit record could not be written", 1, true))
    assert.is_string(code)
    local r = dx:cancel_instances { instances = { "pctX1" } }
    assert.is_nil(r)
    dx:close()
    assert.are.equal(q0, L.sql_value(db, "SELECT count(*) AS n FROM orchestrator_queue"))
    -- the job and its journal were refused with their record: not even the journal tables exist
    assert.are.equal(0, L.sql_value(db, "SELECT count(*) AS n FROM sqlite_master WHERE name = 'durox_jobs'"))
  end)

  it("is refused on a handle opened before the log broke, and nothing is written", function()
    local db = copy()
    local dx = assert(durox.open("sqlite:" .. db, { policy_source = OPS, context = { user_id = "ann" } }))
    local q0 = L.sql_value(db, "SELECT count(*) AS n FROM orchestrator_queue")
    local st0 = L.sql_value(db, "SELECT count(*) AS n FROM history")
    sql_write(db, "CREATE TRIGGER no_audit BEFORE INSERT ON durox_audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END;")
    -- a write the policy allows, a denied one, a bulk job: each refused, since none can be recorded
    local res, msg = dx:cancel_instance("wait-approve-1", "would be allowed")
    assert.is_nil(res)
    assert.truthy(msg:find("the audit record could not be written", 1, true), msg)
    res, msg = dx:cancel_instance("tree-wait-1")
    assert.is_nil(res)
    assert.truthy(msg:find("the audit record could not be written", 1, true), msg)
    res, msg = dx:cancel_instances { instances = { "wait-approve-1", "list-b-wait-1" } }
    assert.is_nil(res)
    assert.truthy(msg:find("the audit record could not be written", 1, true), msg)
    dx:close()
    assert.are.equal(q0, L.sql_value(db, "SELECT count(*) AS n FROM orchestrator_queue"))
    assert.are.equal(st0, L.sql_value(db, "SELECT count(*) AS n FROM history"))
    assert.are.equal(0, L.sql_value(db, "SELECT count(*) AS n FROM sqlite_master WHERE name = 'durox_jobs'"))
  end)

  it("is refused when the audit file cannot be written", function()
    local dx, msg = durox.open("sqlite:" .. H.db, { readonly = true, audit_file = "/nonexistent-dir/audit.jsonl",
                                                     policy_source = "return {}" })
    assert.is_nil(dx)
    assert.truthy(msg:find("the audit record could not be written (audit file /nonexistent-dir/audit.jsonl: No such "
      .. "file or directory)", 1, true))
  end)
end)

describe("concurrent writers", function()
  -- two processes appending at the same time must not fork the chain (SQLite: the write lock;
  -- PostgreSQL: an advisory lock taken before the head is read)
  local stores = { { name = "sqlite", db = function() return copy() end } }
  if L.pg_dir and io.open(L.pg_dir .. "/port") then
    stores[2] = { name = "postgres", db = function() local u = L.pg_fresh() return u end, pg = true }
  end
  for _, S in ipairs(stores) do
    it("keep one chain on " .. S.name, function()
      local db = S.db()
      local url = L.url(db)
      local script = dir .. "/appender.lua"
      L.write(script, ([[
        local durox = require "durox"
        local dx = assert(durox.open(%q, { policy_source = "return { can_list_instances = true }",
                                          context = { user_id = arg[1] } }))
        for i = 1, 40 do assert(dx:get_runtime_metrics() == nil) end
        dx:close()
      ]]):format(url))
      local a = L.spawn(("%s %s one"):format(L.q(L.bin), L.q(script)))
      local b = L.spawn(("%s %s two"):format(L.q(L.bin), L.q(script)))
      L.wait_exit(a)
      L.wait_exit(b)
      local dx = assert(durox.open(url))
      local ok, info = dx:verify_audit_log()
      assert.is_true(ok, info)
      assert.are.equal(82, info.records) -- two loads and 2 x 40 denials
      dx:close()
      if S.pg then
        local rows = L.sql(db, "", "SELECT user_id, count(*) AS n FROM durox.audit_log GROUP BY 1 ORDER BY 1")
        assert.are.same({ { user_id = "one", n = 41 }, { user_id = "two", n = 41 } }, rows)
        L.pg_drop(db)
      else
        local rows = L.sql(db, "SELECT user_id, count(*) AS n FROM durox_audit_log GROUP BY 1 ORDER BY 1")
        assert.are.same({ { user_id = "one", n = 41 }, { user_id = "two", n = 41 } }, rows)
      end
    end)
  end
end)

if L.pg_dir and io.open(L.pg_dir .. "/port") then
  describe("on PostgreSQL", function()
    local pg_copies = {}
    teardown(function() for _, db in ipairs(pg_copies) do L.pg_drop(db) end end)
    local function pg_activity()
      local db = L.pg_fresh()
      pg_copies[#pg_copies + 1] = db
      activity(db):close()
      return db
    end
    local function psql_write(db, sql)
      local out, code, err = L.run(("psql -X -q -v ON_ERROR_STOP=1 %s -c %s"):format(
        L.q((db:gsub("&schema=dx", ""))), L.q(sql)))
      return code == 0, err .. out
    end

    it("keeps the same records and chain in durox.audit_log", function()
      local db = pg_activity()
      local rows = L.sql(db, "", "SELECT * FROM durox.audit_log ORDER BY seq")
      local ops = {}
      local prev = ("0"):rep(64)
      for i, r in ipairs(rows) do
        ops[#ops + 1] = r.operation .. ":" .. r.decision
        assert.are.equal(i, r.seq)
        assert.are.equal(prev, r.prev_hash)
        assert.are.equal(sha256_hex(canonical(r)), r.hash)
        prev = r.hash
      end
      assert.are.same({ "policy_load:allow", "cancel_instance:allow", "cancel_instance:deny", "raise_event:allow",
                        "cancel_instances:allow", "job_end:allow" }, ops)
    end)

    it("refuses UPDATE and DELETE, and detects what an owner of the table changes anyway", function()
      local db = pg_activity()
      local ok, err = psql_write(db, "UPDATE durox.audit_log SET decision = 'allow' WHERE seq = 3")
      assert.is_false(ok)
      assert.truthy(err:find("the audit log is append-only", 1, true))
      ok, err = psql_write(db, "DELETE FROM durox.audit_log WHERE seq = 3")
      assert.is_false(ok)
      assert.truthy(err:find("the audit log is append-only", 1, true))
      assert(psql_write(db, "ALTER TABLE durox.audit_log DISABLE TRIGGER audit_log_append_only;"
        .. " UPDATE durox.audit_log SET decision = 'allow' WHERE seq = 3"))
      local dx = assert(durox.open(db))
      local res, msg, code = dx:verify_audit_log()
      assert.are.same({ nil, "CORRUPT" }, { res, code })
      assert.are.equal("audit record 3: its hash does not match its content (edited, or written with an audit_key)",
        msg)
      dx:close()
      assert(psql_write(db, "DELETE FROM durox.audit_log WHERE seq = 3"))
      dx = assert(durox.open(db))
      res, msg = dx:verify_audit_log()
      assert.is_nil(res)
      assert.are.equal("audit record 4: out of sequence (records 3 to 3 are missing)", msg)
      dx:close()
    end)

    it("detects reordered records", function()
      -- swap the contents of records 2 and 3 (their seq stays), as an owner of the table can
      local db = pg_activity()
      assert(psql_write(db, [[
        ALTER TABLE durox.audit_log DISABLE TRIGGER audit_log_append_only;
        CREATE TEMP TABLE t AS SELECT * FROM durox.audit_log WHERE seq IN (2, 3);
        UPDATE durox.audit_log a SET at_ms = t.at_ms, operation = t.operation, target = t.target,
          decision = t.decision, reason = t.reason, params = t.params, result = t.result,
          prev_hash = t.prev_hash, hash = t.hash
          FROM t WHERE t.seq = 5 - a.seq AND a.seq IN (2, 3);]]))
      -- the swap happened (raw SQL): record 2 now holds what record 3 held
      assert.are.same({ { seq = 2, decision = "deny" }, { seq = 3, decision = "allow" } },
        L.sql(db, "", "SELECT seq, decision FROM durox.audit_log WHERE seq IN (2, 3) ORDER BY seq"))
      local dx = assert(durox.open(db))
      local res, msg, code = dx:verify_audit_log()
      dx:close()
      assert.are.same({ nil, "CORRUPT" }, { res, code })
      assert.are.equal("audit record 2: its link to the previous record does not match (the previous record was "
        .. "edited, removed or reordered)", msg)
    end)

    it("refuses an operation whose record cannot be written", function()
      local db = pg_activity()
      assert(psql_write(db, "ALTER TABLE durox.audit_log ADD CONSTRAINT no_more CHECK (seq < 7)"))
      local q0 = L.sql_value(db, "", "SELECT count(*) AS n FROM orchestrator_queue")
      local dx = assert(durox.open(db, { audit = true }))
      local res, msg = dx:cancel_instance("pctX1")
      assert.is_nil(res)
      assert.truthy(msg:find("the audit record could not be written", 1, true), msg)
      dx:close()
      assert.are.equal(q0, L.sql_value(db, "", "SELECT count(*) AS n FROM orchestrator_queue"))
    end)
  end)
end
