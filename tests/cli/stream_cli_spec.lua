-- stream_cli_spec.lua - the real-time commands of the built duroxlua on a copy of the
-- scenario store: events (text, JSON Lines, types, filters, cursor files), watch, metrics
-- --format prometheus, exporter and rules: their --help, their exit codes, and a clear
-- one-line error for every kind of bad input, which changes nothing. Expected counts come
-- from the sqlite3 tool.
local S = require "support"
local durox = S.durox

local SRC = os.getenv("DUROX_SCENARIO_DB")
if not SRC then
  describe("stream cli", function() pending("DUROX_SCENARIO_DB is not set") end)
  return
end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. S.sh(dir)))
local db = dir .. "/sc.db"
assert(os.execute(("cp %s %s"):format(S.sh(SRC), S.sh(db))))
local STORE = "sqlite:" .. db
teardown(function() os.execute("rm -rf " .. S.sh(dir)) end)

local function sql(q)
  local p = assert(io.popen(("sqlite3 %s %s"):format(S.sh(db), S.sh(q))))
  local out = p:read("a")
  p:close()
  return (out:gsub("%s+$", ""))
end

local function run(...) return S.run({ "--store", STORE, ... }) end

describe("duroxlua events", function()
  it("prints one line per event and ends at the present", function()
    local r = run("events", "--type", "Completed")
    assert.are.equal(0, r.code, r.err)
    local n = select(2, r.out:gsub("\n", ""))
    assert.are.equal(tonumber(sql("SELECT count(*) FROM history WHERE event_type = 'OrchestrationCompleted'")), n)
    assert.matches("Completed%s+%S+ %(%S+%)", r.out)
  end)

  it("prints JSON Lines with a cursor on each, and a cursor file resumes after the last", function()
    local cf = dir .. "/events.cursor"
    local r = run("events", "--json", "--type", "Started", "--name", "Sequence", "--cursor-file", cf)
    assert.are.equal(0, r.code, r.err)
    local lines = {}
    for l in r.out:gmatch("[^\n]+") do
      local ev = durox.decode_json(l)
      assert.are.equal("event", ev.kind)
      assert.are.equal("Sequence", ev.orchestration_name)
      assert.is_string(ev.cursor)
      lines[#lines + 1] = ev
    end
    assert.are.equal(tonumber(sql("SELECT count(*) FROM history h JOIN instances i USING (instance_id) WHERE"
      .. " i.orchestration_name = 'Sequence' AND h.event_type = 'OrchestrationStarted'")), #lines)
    -- resumed: nothing more
    r = run("events", "--json", "--type", "Started", "--name", "Sequence", "--cursor-file", cf)
    assert.are.equal(0, r.code)
    assert.are.equal("", r.out)
    -- from a line's cursor: the lines after it
    r = run("events", "--json", "--type", "Started", "--name", "Sequence", "--cursor", lines[2].cursor)
    local n = select(2, r.out:gsub("\n", ""))
    assert.are.equal(#lines - 2, n)
  end)

  it("refuses bad input with one line and exit status 2", function()
    local cases = {
      { { "events", "--type", "Finished" }, "unknown event type 'Finished'" },
      { { "events", "--timeout", "1s" }, "--timeout needs --follow" },
      { { "events", "--cursor", "garbage!" }, "malformed cursor" },
      { { "events", "--cursor", "x", "--cursor-file", "y" }, "cannot be combined" },
      { { "events", "--webhook-batch", "5" }, "--webhook-batch needs --webhook" },
      { { "events", "--webhook", "ftp://nowhere" }, "--webhook expects an http:// or https:// URL" },
      { { "events", "--from", "yesterday" }, "expects start or now" },
    }
    for _, c in ipairs(cases) do
      local r = run(table.unpack(c[1]))
      assert.are.equal(2, r.code, table.concat(c[1], " ") .. ": " .. r.err)
      assert.are.equal("", r.out)
      assert.matches(c[2], r.err, 1, true)
      assert.are.equal(1, select(2, r.err:gsub("\n", "")), r.err)
    end
    -- a cursor file holding garbage is a bad cursor, and is left as it was
    local bad = dir .. "/bad.cursor"
    S.write_file(bad, "not a cursor\n")
    local r = run("events", "--cursor-file", bad)
    assert.are.equal(2, r.code)
    assert.matches("malformed cursor", r.err)
    assert.are.equal("not a cursor\n", S.read_file(bad))
    -- no store
    r = S.run { "events" }
    assert.are.equal(2, r.code)
    assert.matches("no store given", r.err)
  end)

  it("documents itself", function()
    for _, cmd in ipairs { "events", "watch", "exporter", "rules" } do
      local r = S.run { cmd, "--help" }
      assert.are.equal(0, r.code)
      assert.matches("^usage: duroxlua " .. cmd, r.out)
    end
    local h = S.run { "help" }
    for _, cmd in ipairs { "events", "watch", "exporter", "rules" } do assert.matches("\n  " .. cmd .. " ", h.out) end
  end)
end)

describe("duroxlua watch", function()
  it("reports terminal instances at once and exits 0; an unknown one times out with 5", function()
    local done = sql("SELECT i.instance_id FROM instances i JOIN executions e ON e.instance_id = i.instance_id AND"
      .. " e.execution_id = i.current_execution_id WHERE e.status = 'Completed' ORDER BY 1 LIMIT 2")
    local ids = {}
    for id in done:gmatch("[^\n]+") do ids[#ids + 1] = id end
    local r = run("watch", table.unpack(ids))
    assert.are.equal(0, r.code, r.err)
    assert.matches(ids[1] .. "  is Completed", r.out, 1, true)
    r = run("watch", "--json", "--timeout", "300ms", "no-such-instance")
    assert.are.equal(5, r.code)
    local first = durox.decode_json(r.out:match("[^\n]+"))
    assert.are.same({ "change", "no-such-instance", "NotFound", true },
      { first.kind, first.instance_id, first.new_status, first.initial })
    r = run("watch")
    assert.are.equal(2, r.code)
    assert.matches("no instance to watch", r.err)
  end)
end)

describe("duroxlua metrics --format prometheus and rules", function()
  it("prints the exposition, and --out needs it", function()
    local r = run("metrics", "--format", "prometheus")
    assert.are.equal(0, r.code, r.err)
    assert.matches("^# HELP duroxide_orchestrator_queue_depth ", r.out)
    assert.matches("\nduroxlua_up 1\n$", r.out)
    r = run("metrics", "--out", dir .. "/x.prom")
    assert.are.equal(2, r.code)
    assert.is_nil(io.open(dir .. "/x.prom", "rb"))
  end)

  it("refuses a rules file with a mistake, naming it", function()
    local f = dir .. "/bad_rules.lua"
    S.write_file(f, 'rule { name = "x", handler = function() end, colour = "red" }')
    local r = run("rules", f, "--once")
    assert.are.equal(2, r.code)
    assert.matches("rule field 'colour' is unknown", r.err)
    S.write_file(f, 'rule { name = "x" }')
    r = run("rules", f, "--once")
    assert.are.equal(2, r.code)
    assert.matches("rule 'x' has no handler function", r.err)
    S.write_file(f, "-- nothing\n")
    r = run("rules", f, "--once")
    assert.are.equal(2, r.code)
    assert.matches("declares no rule", r.err)
    r = run("rules", dir .. "/missing.lua")
    assert.are.equal(2, r.code)
    assert.matches("missing.lua", r.err)
    -- none of that wrote our tables
    assert.are.equal("0", sql("SELECT count(*) FROM sqlite_master WHERE name = 'durox_rule_runs'"))
  end)

  it("exporter refuses a bad --listen", function()
    local r = run("exporter", "--listen", "nowhere")
    assert.are.equal(2, r.code)
    assert.matches("%-%-listen expects HOST:PORT", r.err)
  end)
end)
