-- exit_spec.lua - the exit-code table of docs/cli.md (durox.cli.exit), command by command: for
-- every subcommand each code that applies to it is produced by a real situation on a real
-- store (copies of the scenario store the runtime wrote; a file that is not a store; a
-- read-only URL; metrics disabled by a configuration file) and checked, with --json errors
-- on stdout. 0 done, 1 failed, 2 usage, 3 not found, 4 refused, 5 timeout, 6 partly done,
-- 130 interrupted. Binary: $DUROXLUA.
local T = require "support"
local durox, BIN, sh, json = T.durox, T.BIN, T.sh, T.json
local SCENARIO_DB = os.getenv("DUROX_SCENARIO_DB")

if not SCENARIO_DB then
  describe("exit codes", function() pending("DUROX_SCENARIO_DB is not set") end)
  return
end

local function run(argv, opts)
  opts = opts or {}
  opts.columns = opts.columns or 200
  return T.run(argv, opts)
end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. sh(dir)))
local n = 0
local function copy()
  n = n + 1
  local db = ("%s/e%d.db"):format(dir, n)
  assert(os.execute(("cp %s %s"):format(sh(SCENARIO_DB), sh(db))))
  return "sqlite:" .. db
end
local NOT_A_STORE = dir .. "/not-a-store.db"
T.write_file(NOT_A_STORE, "hello, not a database\n")
local NO_METRICS = dir .. "/no-metrics.lua"
T.write_file(NO_METRICS, "return { enable_metrics = false }\n")
local MISSING = "sqlite:" .. dir .. "/missing.db"

teardown(function() os.execute("rm -rf " .. sh(dir)) end)

-- Every command that reads a store, with arguments that would work on the scenario store.
local READERS = {
  { "list" }, { "show", "can-done-1" }, { "history", "can-done-1" }, { "tree", "tree-done-1" }, { "metrics" },
  { "queues" }, { "query" }, { "series" }, { "stuck" }, { "top", "--once" }, { "jobs" },
}

describe("every command that reads a store", function()
  for _, argv in ipairs(READERS) do
    local name = table.concat(argv, " ")
    it(name .. ": 0 done, 1 not a store, 2 bad option, 3 store missing", function()
      local r = run { "--store", "sqlite:" .. SCENARIO_DB, table.unpack(argv) }
      assert.are.equal(0, r.code, r.err)
      r = run { "--store", "sqlite:" .. NOT_A_STORE, table.unpack(argv) }
      assert.are.equal(1, r.code, r.err)
      r = run { "--store", "sqlite:" .. SCENARIO_DB, argv[1], "--no-such-option" }
      assert.are.equal(2, r.code, r.err)
      r = run { "--store", MISSING, table.unpack(argv) }
      assert.are.equal(3, r.code, r.err)
      -- --json: the error is JSON on stdout with the same exit code
      if argv[1] ~= "top" then
        r = run { "--store", MISSING, argv[1], "--json", table.unpack(argv, 2) }
        assert.are.equal(3, r.code)
        assert.are.equal("", r.err)
        local e = json(r.out)
        assert.are.equal("NOTFOUND", e.code)
        assert.are.equal(3, e.exit)
        assert.truthy(e.error:find("does not exist", 1, true))
      end
    end)
  end

  it("show, history and tree: 3 for an unknown instance; history: 3 for an unknown execution", function()
    for _, argv in ipairs { { "show", "nope" }, { "history", "nope" }, { "tree", "nope" },
                             { "history", "can-done-1", "--execution", "99" } } do
      local r = run { "--store", "sqlite:" .. SCENARIO_DB, table.unpack(argv) }
      assert.are.equal(3, r.code, table.concat(argv, " "))
    end
  end)

  it("metrics, queues, series and top: 4 when metrics are disabled (denied)", function()
    for _, argv in ipairs { { "metrics" }, { "queues" }, { "series" }, { "top", "--once" } } do
      local r = run { "--store", "sqlite:" .. SCENARIO_DB, "--config", NO_METRICS, table.unpack(argv) }
      assert.are.equal(4, r.code, argv[1] .. ": " .. r.err)
    end
  end)

  it("list, query, history, stuck and jobs: 2 for a bad --format or a bad filter", function()
    for _, argv in ipairs { { "list", "--format", "xml" }, { "query", "--format", "yaml" }, { "stuck", "--format", "x" },
                             { "jobs", "--format", "x" }, { "history", "x", "--format", "x" },
                             { "list", "--query", "status =" }, { "list", "--json", "--format", "csv" } } do
      local r = run { "--store", "sqlite:" .. SCENARIO_DB, table.unpack(argv) }
      assert.are.equal(2, r.code, table.concat(argv, " "))
    end
  end)
end)

describe("the write commands", function()
  it("cancel: 0 done, 6 partly done, 3 every target unknown, 4 refused, 2 no confirmation", function()
    local url = copy()
    assert.are.equal(0, run { "--store", url, "cancel", "wait-approve-1", "--yes" }.code)
    assert.are.equal(6, run { "--store", url, "cancel", "pctX1", "nope", "--yes" }.code)
    assert.are.equal(3, run { "--store", url, "cancel", "nope", "nope-2", "--yes" }.code)
    assert.are.equal(4, run { "--store", url, "cancel", "completed-seq-1", "--yes" }.code)
    assert.are.equal(4, run { "--store", url .. "?mode=ro", "cancel", "list-b-wait-1", "--yes" }.code)
    assert.are.equal(2, run { "--store", url, "cancel", "--status", "Running" }.code) -- no terminal, no --yes
    -- a dry run says what would happen: partly
    assert.are.equal(6, run { "--store", url, "cancel", "--dry-run", "sleep-1h-1", "completed-seq-1" }.code)
    assert.are.equal(0, run { "--store", url, "cancel", "--dry-run", "sleep-1h-1" }.code)
  end)

  it("raise: 0 delivered, 6 partly, 4 no open subscription", function()
    local url = copy()
    assert.are.equal(0, run { "--store", url, "raise", "Approve", "wait-approve-1", "--yes" }.code)
    assert.are.equal(6, run { "--store", url, "raise", "Approve", "list-b-wait-1", "sleep-1h-1", "--yes" }.code)
    assert.are.equal(4, run { "--store", url, "raise", "Approve", "sleep-1h-1", "--yes" }.code)
    assert.are.equal(2, run { "--store", url, "raise" }.code)
  end)

  it("purge and restart: 0, 6 and 4", function()
    local url = copy()
    assert.are.equal(0, run { "--store", url, "purge", "completed-seq-1", "--yes" }.code)
    assert.are.equal(6, run { "--store", url, "purge", "tree-done-1", "failed-parent-1::sub::2", "--yes" }.code)
    assert.are.equal(4, run { "--store", url, "purge", "failed-parent-1::sub::2", "--yes" }.code)
    assert.are.equal(0, run { "--store", url, "restart", "failed-throw-1", "--yes" }.code)
    assert.are.equal(6, run { "--store", url, "restart", "cancel-waiting-1", "list-b-wait-1", "--yes" }.code)
    assert.are.equal(4, run { "--store", url, "restart", "list-b-wait-1", "--yes" }.code)
  end)

  it("start: 0, 4 for a duplicate or a read-only store, 5 when --wait times out", function()
    local url = copy()
    assert.are.equal(0, run { "--store", url, "start", "ex-1", "Echo", "1" }.code)
    assert.are.equal(4, run { "--store", url, "start", "ex-1", "Echo", "1" }.code)
    assert.are.equal(4, run { "--store", url .. "?mode=ro", "start", "ex-2", "Echo", "1" }.code)
    -- no runtime works on the copy: the instance never finishes
    assert.are.equal(5, run { "--store", url, "start", "ex-3", "Echo", "1", "--wait", "200ms" }.code)
    assert.are.equal(2, run { "--store", url, "start", "only-an-id" }.code)
  end)

  it("wait: 0 done, 5 timed out, 3 unknown id", function()
    local url = copy()
    assert.are.equal(0, run { "--store", url, "wait", "completed-seq-1", "failed-throw-1" }.code)
    assert.are.equal(5, run { "--store", url, "wait", "wait-approve-1", "--timeout", "200ms" }.code)
    local r = run { "--store", url, "wait", "completed-seq-1", "nope" }
    assert.are.equal(3, r.code)
    assert.are.equal("duroxlua wait: not found: nope\n", r.err)
    -- --any is satisfied by a finished target even beside an unknown one
    assert.are.equal(0, run { "--store", url, "wait", "--any", "completed-seq-1", "nope" }.code)
  end)

  it("jobs: 0, 3 unknown job, 4 a job that already ended, 6 a resumed job with failures", function()
    local url = copy()
    assert.are.equal(6, run { "--store", url, "cancel", "wait-approve-1", "nope", "--yes" }.code)
    assert.are.equal(0, run { "--store", url, "jobs", "show", "1" }.code)
    assert.are.equal(3, run { "--store", url, "jobs", "show", "9" }.code)
    assert.are.equal(4, run { "--store", url, "jobs", "stop", "1" }.code)
    assert.are.equal(6, run { "--store", url, "jobs", "resume", "1" }.code)
    assert.are.equal(2, run { "--store", url, "jobs", "show", "x" }.code)
    assert.are.equal(2, run { "--store", url, "jobs", "bogus" }.code)
  end)

  it("a bulk job interrupted by Ctrl-C: 130", function()
    local url = copy()
    local out = os.tmpname()
    local script = ("env -u DUROX_STORE %s --store %s cancel --status Running --yes --rate 4 --batch 1 >%s 2>&1"
      .. " </dev/null & pid=$!; sleep 1; kill -INT $pid; wait $pid; echo $?"):format(sh(BIN), sh(url), sh(out))
    local p = assert(io.popen("sh -c " .. sh(script)))
    local code = tonumber(p:read("a"))
    p:close()
    os.remove(out)
    assert.are.equal(130, code)
  end)
end)

describe("the real-time commands", function()
  it("events: 0 read, 2 an unexpected argument, 3 store missing", function()
    local url = copy()
    assert.are.equal(0, run { "--store", url, "events", "--from", "start" }.code)
    local r = run { "--store", url, "events", "extra" }
    assert.are.equal(2, r.code)
    assert.are.equal("duroxlua events: unexpected argument 'extra'\n", r.err)
    assert.are.equal(3, run { "--store", MISSING, "events" }.code)
  end)

  it("watch: 0 every instance terminal, 5 the timeout first (as wait), 2 no instance or an unreadable ids file", function()
    local url = copy()
    assert.are.equal(0, run { "--store", url, "watch", "completed-seq-1", "failed-throw-1" }.code)
    assert.are.equal(5, run { "--store", url, "watch", "wait-approve-1", "--timeout", "200ms" }.code)
    assert.are.equal(2, run { "--store", url, "watch" }.code)
    local r = run { "--store", url, "watch", "--ids-file", dir .. "/no-such-ids" }
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("cannot read ids file", 1, true), r.err)
    -- --ids-file '-' reads standard input, like the bulk commands
    r = run({ "--store", url, "watch", "--ids-file", "-" }, { stdin = "completed-seq-1\r\n\nfailed-throw-1\n" })
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("failed-throw-1", 1, true))
  end)

  it("rules: 2 without a file or with one that cannot be loaded, 0 for --status and --once", function()
    local url = copy()
    local r = run { "--store", url, "rules" }
    assert.are.equal(2, r.code)
    assert.are.equal("duroxlua rules: missing rules file (duroxlua rules FILE.lua)\n", r.err)
    assert.are.equal(2, run { "--store", url, "rules", dir .. "/none.lua" }.code)
    local file = "scripts/rules/restart-transient-failures.lua"
    assert.are.equal(0, run { "--store", url, "rules", "--status", file }.code)
    assert.are.equal(0, run { "--store", url, "rules", "--once", file }.code)
  end)

  it("audit and exporter: 2 for an unexpected argument", function()
    assert.are.equal(2, run { "--store", copy(), "audit", "extra" }.code)
    assert.are.equal(2, run { "--store", copy(), "exporter", "extra" }.code)
  end)

  it("audit: --format csv and jsonl list the records; a failed --verify --json is one document, exit 1", function()
    local url = copy()
    -- a denied write leaves records (the policy load, the attempt)
    run { "--store", url, "--policy", "scripts/policies/viewer.lua", "--user", "vic", "cancel", "wait-approve-1", "--yes" }
    local r = run { "--store", url, "audit", "--format", "csv" }
    assert.are.equal(0, r.code, r.err)
    local head, first = r.out:match("^(.-)\r\n(.-)\r\n")
    assert.are.equal("seq,time,user_id,roles,source_ip,context_reason,operation,target,decision,reason,policy,"
      .. "params,result,prev_hash,hash", head)
    assert.truthy(first:match("^1,%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z,vic,"), first)
    r = run { "--store", url, "audit", "--format", "jsonl" }
    assert.are.equal(0, r.code)
    local n = 0
    for line in r.out:gmatch("[^\n]+") do
      n = n + 1
      assert.are.equal(n, json(line).seq)
    end
    assert.is_true(n >= 2)
    local bad = dir .. "/bad-audit.jsonl"
    T.write_file(bad, '{"seq":1}\n')
    r = run { "--store", url, "audit", "--verify", "--file", bad, "--json" }
    assert.are.equal(1, r.code)
    local doc = json(r.out) -- one document (the whole of stdout)
    assert.are.equal(false, doc.ok)
    assert.are.equal(1, doc.exit)
    assert.truthy(doc.error:find("not an audit record", 1, true))
  end)
end)

describe("index and help", function()
  it("index: 0 status, build, verify and drop; 1 verify without an index or on a file that is not a store; 2 usage; 3 store missing", function()
    local url = copy()
    assert.are.equal(0, run { "--store", url, "index", "status" }.code)
    local r = run { "--store", url, "index", "verify", "--json" }
    assert.are.equal(1, r.code, r.err)
    assert.are.equal(1, json(r.out).exit)
    assert.are.equal(0, run { "--store", url, "index", "build" }.code)
    assert.are.equal(0, run { "--store", url, "index", "verify" }.code)
    assert.are.equal(0, run { "--store", url, "index", "drop" }.code)
    assert.are.equal(2, run { "--store", url, "index", "nope" }.code)
    assert.are.equal(2, run { "--store", url, "index" }.code)
    assert.are.equal(2, run { "--store", url, "index", "status", "--bogus" }.code)
    assert.are.equal(1, run { "--store", "sqlite:" .. NOT_A_STORE, "index", "status" }.code)
    assert.are.equal(3, run { "--store", MISSING, "index", "status" }.code)
  end)

  it("help: 0 for the list, a command and a topic; 2 for an unknown one", function()
    assert.are.equal(0, run { "help" }.code)
    assert.are.equal(0, run { "help", "cancel" }.code)
    assert.are.equal(0, run { "help", "exit" }.code)
    assert.are.equal(0, run { "cancel", "--help" }.code)
    local r = run { "help", "nope" }
    assert.are.equal(2, r.code)
    assert.are.equal("duroxlua help: unknown command 'nope'\n", r.err)
  end)
end)

describe("the interpreter", function()
  it("0 for a script that runs, 1 for one that raises, 2 for a bad option, 130 when interrupted", function()
    assert.are.equal(0, run { "-e", "x = 1" }.code)
    assert.are.equal(1, run { "-e", "error('boom')" }.code)
    assert.are.equal(2, run { "-Z" }.code)
    local p = assert(io.popen("sh -c " .. sh(("%s -e 'while true do end' & pid=$!; sleep 0.5; kill -INT $pid;"
      .. " wait $pid; echo $?"):format(sh(BIN)))))
    local code = tonumber(p:read("a"))
    p:close()
    assert.are.equal(130, code)
  end)

  it("2 for an unknown command, with a suggestion", function()
    local r = run { "lsit" }
    assert.are.equal(2, r.code)
    assert.are.equal("duroxlua: unknown command 'lsit' (did you mean 'list'? see 'duroxlua help')\n", r.err)
  end)
end)
