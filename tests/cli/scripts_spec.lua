-- scripts_spec.lua - the ready-made operational scripts of scripts/ (failure_report,
-- export_failures, cancel_stuck, restart_transient, overview) run by the built duroxlua on
-- copies of the scenario store the real runtime wrote; what they report and what they
-- write is checked with the sqlite3 tool (psql on PostgreSQL: every script runs on both
-- providers), never with duroxlua's own output. Binary: $DUROXLUA.
local T = require "support"
local durox, sh, json = T.durox, T.sh, T.json
local SCENARIO_DB = os.getenv("DUROX_SCENARIO_DB")

if not SCENARIO_DB then
  describe("scripts", function() pending("DUROX_SCENARIO_DB is not set") end)
  return
end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. sh(dir)))
teardown(function() os.execute("rm -rf " .. sh(dir)) end)
local n = 0

-- The providers: copies of the scenario store on SQLite and (with the test server) of the same
-- scenarios on PostgreSQL. A copy is { url = , sql = function(query) -> rows }: rows read
-- independently, through the sqlite3 tool or psql (the runtime's schema first on the path).
local PROVIDERS = {
  { name = "SQLite", copy = function()
    n = n + 1
    local db = ("%s/s%d.db"):format(dir, n)
    assert(os.execute(("cp %s %s"):format(sh(SCENARIO_DB), sh(db))))
    return { url = "sqlite:" .. db, sql = function(query)
      local p = assert(io.popen(("sqlite3 -json %s %s"):format(sh(db), sh(query))))
      local out = p:read("a")
      p:close()
      if out == "" then return {} end
      return assert(durox.decode_json(out))
    end }
  end },
}
local pg_dir = os.getenv("DUROX_PG_DIR")
local pg_port = pg_dir and io.open(pg_dir .. "/port") and T.read_file(pg_dir .. "/port"):gsub("%s+$", "")
local pg_copies = {}
local function pg_url(db, store)
  return ("postgresql://postgres@/%s?host=%s&port=%s%s"):format(db, pg_dir, pg_port, store and "&schema=dx" or "")
end
local function psql(db, query)
  local p = assert(io.popen(("PGOPTIONS='-c search_path=dx' psql -X -q -A -t %s -c %s 2>&1"):format(sh(pg_url(db)),
    sh(query))))
  local out = p:read("a")
  return out, p:close()
end
if pg_port then
  PROVIDERS[#PROVIDERS + 1] = { name = "PostgreSQL", copy = function()
    n = n + 1
    local name = ("durox_scr_%d_%d"):format(os.time() % 100000, n)
    -- a template copy fails while another spec is connected to the template: tried again
    local deadline = os.time() + 60
    while true do
      local out, ok = psql("postgres", "CREATE DATABASE " .. name .. " TEMPLATE durox_scenarios")
      if ok then break end
      assert(out:find("being accessed by other users", 1, true) and os.time() < deadline, out)
      os.execute("sleep 0.2")
    end
    pg_copies[#pg_copies + 1] = name
    return { url = pg_url(name, true), sql = function(query)
      local out, ok = psql(name, "SELECT coalesce(json_agg(t), '[]') FROM (" .. query .. ") t")
      assert(ok, out)
      return assert(durox.decode_json(out))
    end }
  end }
  teardown(function()
    for _, name in ipairs(pg_copies) do psql("postgres", "DROP DATABASE IF EXISTS " .. name .. " WITH (FORCE)") end
  end)
end

local function script(db, name, ...)
  return T.run({ "--store", db.url, "scripts/" .. name .. ".lua", ... }, { columns = 200 })
end

-- A small RFC 4180 reader: the records of text (fields unquoted, "" as ").
local function csv_records(text)
  local records, fields, field, i, quoted = {}, {}, {}, 1, false
  while i <= #text do
    local c = text:sub(i, i)
    if quoted then
      if c == '"' and text:sub(i + 1, i + 1) == '"' then field[#field + 1] = '"'; i = i + 1
      elseif c == '"' then quoted = false
      else field[#field + 1] = c end
    elseif c == '"' then quoted = true
    elseif c == "," then fields[#fields + 1] = table.concat(field); field = {}
    elseif c == "\r" and text:sub(i + 1, i + 1) == "\n" then
      fields[#fields + 1] = table.concat(field); field = {}
      records[#records + 1] = fields; fields = {}
      i = i + 1
    else field[#field + 1] = c end
    i = i + 1
  end
  assert(#fields == 0 and #field == 0, "the CSV does not end with CRLF")
  return records
end

local FAILED = "SELECT i.instance_id AS id, i.orchestration_name AS name, e.output AS output FROM instances i"
  .. " JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id"
  .. " WHERE e.status = 'Failed' ORDER BY 1"

for _, P in ipairs(PROVIDERS) do
describe("on " .. P.name .. ", failure_report.lua", function()
  it("counts the failures per orchestration as the store holds them", function()
    local db = P.copy()
    local r = script(db, "failure_report", "--since", "0", "--json")
    assert.are.equal(0, r.code, r.err)
    local rep = json(r.out)
    local failed = db.sql(FAILED)
    assert.is_true(#failed > 0)
    assert.are.equal(#failed, rep.total)
    local want = {}
    for _, f in ipairs(failed) do want[f.name] = (want[f.name] or 0) + 1 end
    local got = {}
    for _, o in ipairs(rep.by_orchestration) do got[o.orchestration_name] = o.failed end
    assert.are.same(want, got)
    local sum = 0
    for _, c in pairs(rep.by_kind) do sum = sum + c end
    assert.are.equal(#failed, sum)
    -- a window that ends before every failure: none
    r = script(db, "failure_report", "--until", "0", "--json")
    assert.are.equal(0, json(r.out).total)
    -- the text report
    r = script(db, "failure_report", "--since", "0")
    assert.are.equal(0, r.code)
    assert.truthy(r.out:find(("%d instances\n"):format(#failed), 1, true))
    assert.are.equal(2, script(db, "failure_report", "--bogus").code)
  end)
end)

describe("on " .. P.name .. ", export_failures.lua", function()
  it("writes every failed instance as RFC 4180 CSV, errors and all", function()
    local db = P.copy()
    local out = dir .. "/failures.csv"
    local r = script(db, "export_failures", "-o", out)
    assert.are.equal(0, r.code, r.err)
    local records = csv_records(T.read_file(out))
    assert.are.same({ "instance_id", "orchestration_name", "version", "failure_kind", "created_at", "completed_at",
                      "execution_count", "parent_instance", "error" }, records[1])
    local failed = db.sql(FAILED)
    assert.are.equal(#failed + 1, #records)
    local by_id = {}
    for k = 2, #records do by_id[records[k][1]] = records[k] end
    local quoted = 0
    for _, f in ipairs(failed) do
      local rec = assert(by_id[f.id], f.id)
      assert.are.equal(f.name, rec[2])
      assert.are.equal(f.output, rec[9]) -- the stored error, unchanged by the quoting
      if f.output:find('[,"\n]') then quoted = quoted + 1 end
      assert.truthy(rec[6]:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"), rec[6])
    end
    assert.is_true(quoted > 0, "no error needed quoting: the test proves less than it should")
    -- JSON Lines, and a kind filter
    r = script(db, "export_failures", "--format", "jsonl", "--kind", "cancelled")
    assert.are.equal(0, r.code)
    local lines = 0
    for line in r.out:gmatch("[^\n]+") do
      lines = lines + 1
      assert.are.equal("cancelled", json(line).failure_kind)
    end
    local cancelled = 0
    for _, f in ipairs(failed) do if f.output:match("^canceled") then cancelled = cancelled + 1 end end
    assert.are.equal(cancelled, lines)
  end)
end)

describe("on " .. P.name .. ", cancel_stuck.lua", function()
  it("shows, then cancels, the instances stuck longer than the threshold", function()
    local db = P.copy()
    local queued = function() return #db.sql("SELECT id FROM orchestrator_queue WHERE CAST(work_item AS TEXT) LIKE '{\"CancelInstance\"%'") end
    local before = queued()
    -- judged two hours from now, the untaggable activity of pending-activity-1 is long stuck
    local later = tostring(durox.now() + 7200000)
    local r = script(db, "cancel_stuck", "--older-than", "1h", "--now", later, "--json")
    assert.are.equal(0, r.code, r.err)
    local dry = json(r.out)
    assert.is_true(dry.dry_run)
    assert.are.equal(before, queued()) -- a dry run writes nothing
    local ids = {}
    for _, id in ipairs(dry.cancelled_instances) do ids[id] = true end
    assert.is_true(ids["pending-activity-1"], r.out)
    assert.is_nil(ids["wait-approve-1"]) -- it waits for an event on purpose
    r = script(db, "cancel_stuck", "--older-than", "1h", "--now", later, "--yes", "--json")
    assert.are.equal(0, r.code, r.err)
    local done = json(r.out)
    assert.are.same(dry.cancelled_instances, done.cancelled_instances)
    assert.are.equal(before + #done.cancelled_instances, queued())
    for _, id in ipairs(done.cancelled_instances) do
      assert.are.equal(1, #db.sql(("SELECT id FROM orchestrator_queue WHERE instance_id = '%s' AND CAST(work_item AS TEXT) LIKE"
        .. " '{\"CancelInstance\"%%'"):format(id:gsub("'", "''"))), id)
    end
    -- nothing older than a day
    r = script(db, "cancel_stuck", "--older-than", "1d")
    assert.are.equal(0, r.code)
    assert.truthy(r.out:find("^nothing stuck for longer than 1d"))
    -- a read-only store is refused
    if P.name == "SQLite" then
      assert.are.equal(4, T.run({ "--store", db.url .. "?mode=ro", "scripts/cancel_stuck.lua" }).code)
    end
  end)
end)

describe("on " .. P.name .. ", restart_transient.lua", function()
  it("restarts the failed roots of the given kinds under new ids", function()
    local db = P.copy()
    local starts = function(id)
      return #db.sql(("SELECT id FROM orchestrator_queue WHERE instance_id = '%s' AND CAST(work_item AS TEXT) LIKE"
        .. " '{\"StartOrchestration\"%%'"):format(id))
    end
    -- the scenario store has no infrastructure failure: nothing to do
    assert.are.equal(0, #db.sql("SELECT instance_id FROM executions WHERE status = 'Failed' AND output LIKE"
      .. " 'infrastructure%'"))
    local r = script(db, "restart_transient", "--since", "0", "--json")
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(0, json(r.out).total_matched)
    -- application failures, by request
    r = script(db, "restart_transient", "--since", "0", "--kind", "application", "--json")
    local dry = json(r.out)
    assert.is_true(dry.dry_run)
    assert.is_true(#dry.restarted_instances > 0)
    assert.are.equal(0, starts(dry.restarted_instances[1].new_instance_id))
    r = script(db, "restart_transient", "--since", "0", "--kind", "application", "--yes", "--json")
    assert.are.equal(0, r.code, r.err)
    local done = json(r.out)
    assert.are.equal(#dry.restarted_instances, #done.restarted_instances)
    for _, x in ipairs(done.restarted_instances) do
      assert.are.equal(x.instance_id .. "~r1", x.new_instance_id)
      assert.are.equal(1, starts(x.new_instance_id), x.new_instance_id)
    end
    -- the failed sub-orchestrations are reported as skipped
    assert.is_true(#(done.skipped_instances or {}) > 0)
  end)
end)

describe("on " .. P.name .. ", overview.lua", function()
  it("runs and counts every instance", function()
    local db = P.copy()
    local r = script(db, "overview")
    assert.are.equal(0, r.code, r.err)
    local total = #db.sql("SELECT instance_id FROM instances")
    assert.truthy(r.out:find(("%d instances:"):format(total), 1, true), r.out)
  end)
end)
end
