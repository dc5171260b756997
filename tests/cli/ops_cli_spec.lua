-- ops_cli_spec.lua - busted spec of the built duroxlua binary's write commands (start,
-- raise, cancel, wait, purge, restart, jobs) on copies of the scenario store: help texts,
-- target and option errors, dry runs, the confirmation rule (refused without a terminal
-- unless --yes), --json, exit codes, and the job commands. Binary: $DUROXLUA.
local T = require "support"
local durox, BIN = T.durox, T.BIN
local read_file, write_file, sh, expect, json, lines = T.read_file, T.write_file, T.sh, T.expect, T.json, T.lines
-- wide enough that tables never truncate here
local function run(argv, opts)
  opts = opts or {}
  opts.columns = opts.columns or 200
  return T.run(argv, opts)
end
local SCENARIO_DB = os.getenv("DUROX_SCENARIO_DB")


local COMMANDS = { "start", "raise", "cancel", "wait", "purge", "restart", "jobs" }

describe("write commands", function()
  it("have --help", function()
    for _, c in ipairs(COMMANDS) do
      local r = run { c, "--help" }
      assert.are.equal(0, r.code, c)
      assert.are.equal("", r.err)
      assert.truthy(r.out:find("^usage: duroxlua " .. c), c)
    end
    local r = run { "cancel", "--help" }
    for _, opt in ipairs { "--reason", "--dry-run", "--yes", "--ids-file", "--max", "--rate", "--status", "--all" } do
      assert.truthy(r.out:find(opt, 1, true), opt)
    end
    r = run { "help" }
    for _, c in ipairs(COMMANDS) do assert.truthy(r.out:find("\n  " .. c .. " ", 1, true), c) end
  end)

  it("refuse bad targets and options", function()
    local r = run { "--store", "sqlite::memory:", "cancel" }
    assert.are.equal(2, r.code)
    assert.are.equal("duroxlua cancel: no targets: give instance ids, --ids-file FILE, filter options (see --help)"
      .. " or --all\n", r.err)
    r = run { "--store", "sqlite::memory:", "cancel", "a", "--status", "Running" }
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("give instance ids or filter options (or --all), not both", 1, true))
    r = run { "--store", "sqlite::memory:", "raise" }
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("missing EVENT", 1, true))
    r = run { "--store", "sqlite::memory:", "jobs", "show", "x" }
    assert.are.equal(2, r.code)
    r = run { "--store", "sqlite::memory:", "purge", "--keep-last", "2", "a" }
    assert.are.equal(2, r.code)
    r = run { "cancel", "a", "--yes" }
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("no store given", 1, true))
  end)
end)

if not SCENARIO_DB then
  describe("write commands on a store", function() pending("DUROX_SCENARIO_DB is not set") end)
  return
end

describe("write commands on a copy of the scenario store", function()
  local tmp = os.tmpname()
  local db = tmp .. ".db"
  local url = "sqlite:" .. db

  before_each(function()
    os.remove(db .. "-wal")
    os.remove(db .. "-shm")
    assert(os.execute(("cp %s %s"):format(sh(SCENARIO_DB), sh(db))))
  end)

  teardown(function()
    for _, s in ipairs { "", ".db", ".db-wal", ".db-shm" } do os.remove(tmp .. s) end
  end)

  local function queue_count()
    local dx = assert(durox.open(url, { readonly = true }))
    local n = 0
    local p = assert(io.popen(("sqlite3 %s 'SELECT count(*) FROM orchestrator_queue'"):format(sh(db))))
    n = tonumber(p:read("a"))
    p:close()
    dx:close()
    return n
  end

  it("cancel: a dry run, the refusal without a terminal, then --yes", function()
    local before = queue_count()
    local r = run { "--store", url, "cancel", "--status", "Running", "--dry-run" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("dry run: 21 instances matched: 21 would be cancelled\n", r.out)
    r = run { "--store", url, "cancel", "--status", "Running", "--reason", "cli" }
    assert.are.equal(2, r.code)
    assert.are.equal("cancel: 21 instances matched: 21 would be cancelled\n"
      .. "duroxlua cancel: refusing to cancel 21 instances without confirmation: standard input is not a terminal;"
      .. " pass --yes to go ahead (or --dry-run to see what would be done)\n", r.err)
    assert.are.equal(before, queue_count())
    r = run { "--store", url, "cancel", "--status", "Running", "--reason", "cli", "--yes", "--json" }
    assert.are.equal(0, r.code, r.err)
    local res = json(r.out)
    assert.are.equal(21, #res.cancelled_instances)
    assert.are.equal("completed", res.state)
    assert.is_number(res.job_id)
    assert.are.equal(before + 21, queue_count())
    -- the same again: every instance now has a cancel queued -> all refused (exit 4), nothing written
    r = run { "--store", url, "cancel", "--status", "Running", "--yes" }
    assert.are.equal(4, r.code)
    assert.truthy(r.out:find("^completed: 21 instances matched: 0 cancelled, 21 failed\nfailed:\n"), r.out)
    assert.are.equal(before + 21, queue_count())
    assert.truthy(r.out:find("is being cancelled (a cancel is queued)", 1, true))
  end)

  it("cancel: ids from arguments and from a file, unknown ones reported", function()
    local ids = os.tmpname()
    write_file(ids, "wait-approve-1\n\nnope\n")
    local r = run { "--store", url, "cancel", "pctX1", "--ids-file", ids, "--yes" }
    os.remove(ids)
    assert.are.equal(6, r.code) -- partly done
    assert.are.equal("job 1 completed: 3 instances matched: 2 cancelled, 1 failed\nfailed:\n"
      .. "  nope  NOTFOUND  instance 'nope' not found\n", r.out)
    r = run { "--store", url, "cancel", "--ids-file", "-", "--status", "Running" }
    assert.are.equal(2, r.code)
  end)

  it("raise: delivers to open subscriptions only", function()
    -- a dry run where some targets would get nothing says so in its exit status (6, partly)
    local r = run { "--store", url, "raise", "Approve", "--name", "WaitApprove", "--data", '"cli"', "--dry-run" }
    assert.are.equal(6, r.code, r.err)
    assert.truthy(r.out:find("would be delivered", 1, true))
    local data = os.tmpname()
    write_file(data, '{"from":"file"}')
    r = run { "--store", url, "raise", "Approve", "wait-approve-1", "sleep-1h-1", "--data-file", data, "--yes", "--json" }
    os.remove(data)
    assert.are.equal(6, r.code, r.err) -- partly done: one target has no open subscription
    local res = json(r.out)
    assert.are.same({ "wait-approve-1" }, res.delivered_instances)
    assert.are.same({ "sleep-1h-1" }, res.no_subscription_instances)
    local p = assert(io.popen(("sqlite3 %s %s"):format(sh(db),
      sh("SELECT work_item FROM orchestrator_queue WHERE instance_id = 'wait-approve-1'"))))
    local item = p:read("a")
    p:close()
    assert.are.equal('{"ExternalRaised":{"instance":"wait-approve-1","name":"Approve","data":"{\\"from\\":\\"file\\"}"}}\n',
      item)
  end)

  it("start, and a duplicate refused", function()
    local r = run { "--store", url, "start", "cli-1", "Echo", '{"a":1}' }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("started cli-1 (Echo)\n", r.out)
    r = run { "--store", url, "start", "cli-1", "Echo", "1" }
    assert.are.equal(4, r.code) -- a conflict
    assert.are.equal("duroxlua start: instance 'cli-1' already exists (its start is queued)\n", r.err)
    r = run { "--store", url, "start", "cli-2", "Versioned", "--version", "1.0.0", "--json" }
    assert.are.equal(0, r.code, r.err)
    assert.are.same({ instance_id = "cli-2" }, json(r.out))
  end)

  it("wait: final states and a timeout", function()
    -- an unknown id is reported and the exit status says so (3), never a silent 0
    local r = run { "--store", url, "wait", "completed-seq-1", "failed-throw-1", "nope" }
    assert.are.equal(3, r.code, r.err)
    assert.are.equal("duroxlua wait: not found: nope\n", r.err)
    assert.truthy(r.out:find("completed%-seq%-1%s+Completed"))
    assert.truthy(r.out:find("failed%-throw%-1%s+Failed %(application%)"))
    assert.truthy(r.out:find("nope%s+NotFound"))
    assert.truthy(r.out:find("1 completed, 1 failed, 1 not found, 0 still running", 1, true))
    r = run { "--store", url, "wait", "completed-seq-1", "failed-throw-1" }
    assert.are.equal(0, r.code, r.err)
    r = run { "--store", url, "wait", "wait-approve-1", "--timeout", "300ms", "--json" }
    assert.are.equal(5, r.code) -- timed out
    local res = json(r.out)
    assert.is_true(res.timed_out)
    assert.are.same({ "wait-approve-1" }, res.timed_out_instances)
  end)

  it("purge, prune and restart", function()
    local r = run { "--store", url, "purge", "completed-seq-1", "tree-done-1", "failed-parent-1::sub::2", "--yes" }
    assert.are.equal(6, r.code)
    assert.truthy(r.out:find("^job 1 completed: 3 instances matched: 2 purged, 1 failed\n"
      .. "deleted 17 instances, 17 executions, %d+ history events, 0 queue messages\nfailed:\n"
      .. "  failed%-parent%-1::sub::2  CONFLICT  instance 'failed%-parent%-1::sub::2' is a sub%-orchestration;"))
    r = run { "--store", url, "purge", "--executions", "--keep-last", "1", "can-done-1", "--yes" }
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("deleted 3 executions", 1, true))
    r = run { "--store", url, "restart", "--failure-kind", "cancelled", "--yes" }
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("  cancel-waiting-1 -> cancel-waiting-1~r1\n", 1, true))
    assert.truthy(r.out:find("  cancel-parent-1 -> cancel-parent-1~r1\n", 1, true))
    -- sub-orchestrations are skipped, and counted and listed with the reason
    assert.truthy(r.out:find("skipped (sub-orchestrations: restart their root instead)", 1, true), r.out)
    assert.truthy(r.out:find("\nskipped:\n  cancel-parent-1::sub::2  a sub-orchestration of 'cancel-parent-1': restart"
      .. " acts on trees through their root\n", 1, true), r.out)
    assert.is_nil(r.out:find("cancel-parent-1::sub::2 ->", 1, true))
  end)

  it("jobs: list, show, stop, resume", function()
    assert.are.equal(0, run { "--store", url, "jobs" }.code)
    assert.are.equal("no jobs\n", run { "--store", url, "jobs" }.out)
    -- every target refused: no job
    local r = run { "--store", url, "cancel", "nope", "--yes" }
    assert.are.equal(3, r.code) -- every target unknown
    assert.are.equal("no jobs\n", run { "--store", url, "jobs" }.out)
    r = run { "--store", url, "cancel", "nope", "wait-approve-1", "--yes" }
    assert.are.equal(6, r.code)
    r = run { "--store", url, "jobs", "list" }
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("^JOB%s+KIND%s+STATE"))
    assert.truthy(r.out:find("\n%s+1%s+cancel%s+completed%s+2%s+1%s+1%s+0%s+0"), r.out)
    r = run { "--store", url, "jobs", "show", "1" }
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("state:%s+completed"))
    assert.truthy(r.out:find("  nope  NOTFOUND  instance 'nope' not found", 1, true))
    r = run { "--store", url, "jobs", "--json", "--state", "completed" }
    assert.are.equal(1, #json(r.out).jobs)
    r = run { "--store", url, "jobs", "stop", "1" }
    assert.are.equal(4, r.code)
    assert.are.equal("duroxlua jobs: job 1 already ended (completed)\n", r.err)
    r = run { "--store", url, "jobs", "resume", "1" }
    assert.are.equal(6, r.code) -- one target done, one failed
    assert.truthy(r.out:find("^job 1 completed"))
    r = run { "--store", url, "jobs", "show", "7" }
    assert.are.equal(3, r.code)
    assert.are.equal("duroxlua jobs: job 7 not found\n", r.err)
  end)

  it("Ctrl-C interrupts a job between batches; jobs resume finishes it", function()
    local out, err = os.tmpname(), os.tmpname()
    local script = ("env -u DUROX_STORE %s --store %s cancel --status Running --yes --rate 4 --batch 1 >%s 2>%s </dev/null &"
      .. " pid=$!; sleep 1; kill -INT $pid; wait $pid; echo $?"):format(sh(BIN), sh(url), sh(out), sh(err))
    local p = assert(io.popen("sh -c " .. sh(script)))
    local code = tonumber(p:read("a"))
    p:close()
    assert.are.equal(130, code)
    assert.are.equal("duroxlua cancel: interrupted; job 1 can be resumed with 'duroxlua jobs resume 1'\n",
      read_file(err))
    os.remove(out)
    os.remove(err)
    local r = run { "--store", url, "jobs", "--json" }
    local job = json(r.out).jobs[1]
    assert.are.equal("interrupted", job.state)
    assert.is_true(job.done >= 1 and job.done < 21)
    r = run { "--store", url, "jobs", "resume", "1" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("job 1 completed: 21 instances matched: 21 cancelled\n", r.out)
  end)

  it("refuse writes on a read-only store", function()
    local r = run { "--store", url .. "?mode=ro", "cancel", "wait-approve-1", "--yes" }
    assert.are.equal(4, r.code)
    assert.truthy(r.err:find("read-only", 1, true))
  end)
end)
