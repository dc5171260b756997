-- cli_spec.lua - busted spec of the built duroxlua binary's commands (lua/durox/cli): help,
-- option errors, store errors, an empty in-memory store, the REPL printer, and (when
-- DUROX_SCENARIO_DB names a store made by tests/harness/scenarios.js) real answers checked
-- against the store's manifest. Binary: $DUROXLUA, default build/duroxlua.
--   busted tests/cli/cli_spec.lua        (from the repository root, with lua5.4)
local T = require "support"
local durox, BIN = T.durox, T.BIN
local read_file, write_file, sh, expect, json, lines = T.read_file, T.write_file, T.sh, T.expect, T.json, T.lines
local run = T.run
local SCENARIO_DB = os.getenv("DUROX_SCENARIO_DB")


local MEM = "sqlite::memory:"
local COMMANDS = { "help", "history", "list", "show" }

describe("duroxlua commands", function()
  describe("help", function()
    for _, name in ipairs(COMMANDS) do
      it("prints the help of '" .. name .. "' with --help and -h, exit 0", function()
        local help = require("durox.cli." .. name).help
        assert.is_string(help)
        local r = run { name, "--help" }
        expect(r, 0, help, "")
        assert.are.equal("usage: duroxlua " .. name, r.out:match("^[^\n]*"):match("^usage: duroxlua %S+"))
        assert.truthy(r.out:find("\nCommon options:\n", 1, true))
        assert.truthy(r.out:find("\n      --json ", 1, true))
        assert.truthy(r.out:find("\n      --store URL ", 1, true))
        assert.truthy(r.out:find("\n  -h, --help ", 1, true))
        expect(run { name, "-h" }, 0, help, "")
        expect(run { "help", name }, 0, help, "")
        -- --help wins over every other argument, even a bad store
        expect(run { "--store", "sqlite:/nonexistent/x.db", name, "x", "--help" }, 0, help, "")
      end)
    end

    it("lists every command with its summary", function()
      local r = run { "help" }
      expect(r, 0, nil, "")
      local l = lines(r.out)
      assert.are.equal("usage: duroxlua [--store URL] <command> [options] [args]", l[1])
      assert.are.equal("Commands:", l[4])
      for _, name in ipairs(COMMANDS) do
        local summary = require("durox.cli." .. name).summary
        assert.truthy(r.out:find("\n  " .. name .. " +" .. summary:gsub("%p", "%%%0") .. "\n"), name)
      end
      assert.are.equal("Run 'duroxlua <command> --help' for the options of a command.", l[#l])
    end)

    it("prints the commands as JSON", function()
      local r = run { "help", "--json" }
      expect(r, 0, nil, "")
      local names = {}
      for _, c in ipairs(json(r.out).commands) do
        names[c.name] = true
        assert.are.equal(require("durox.cli." .. c.name).summary, c.summary)
      end
      for _, name in ipairs(COMMANDS) do assert.is_true(names[name], name) end
    end)
  end)

  describe("usage errors", function()
    local cases = {
      { { "list", "--bogus" }, "duroxlua list: unknown option '--bogus'\n" },
      { { "list", "-x" }, "duroxlua list: unknown option '-x'\n" },
      { { "list", "--limit" }, "duroxlua list: option '--limit' needs a value (N)\n" },
      { { "list", "-n" }, "duroxlua list: option '-n' needs a value (N)\n" },
      { { "list", "--limit", "abc" }, "duroxlua list: option '--limit' expects a non-negative integer, got 'abc'\n" },
      { { "list", "--limit=-3" }, "duroxlua list: option '--limit' expects a non-negative integer, got '-3'\n" },
      { { "list", "--json=yes" }, "duroxlua list: option '--json' takes no value\n" },
      { { "list", "--roots", "--children" }, "duroxlua list: options '--roots' and '--children' cannot be combined\n" },
      { { "list", "--asc", "--desc" }, "duroxlua list: options '--asc' and '--desc' cannot be combined\n" },
      { { "list", "--order", "size" }, "duroxlua list: option '--order' expects created, updated, id or name, got 'size'\n" },
      { { "list", "extra" }, "duroxlua list: unexpected argument 'extra'\n" },
      { { "list", "--limit", "0", "--store", MEM }, "duroxlua list: option '--limit' must be at least 1\n" },
      { { "list", "--all", "--page-token", "x", "--store", MEM },
        "duroxlua list: options '--all' and '--page-token' cannot be combined\n" },
      { { "list", "--page-token", "garbage", "--store", MEM }, "duroxlua list: malformed page token\n" },
      { { "show" }, "duroxlua show: missing instance id\n" },
      { { "show", "a", "b" }, "duroxlua show: unexpected argument 'b'\n" },
      { { "show", "--full=1", "a" }, "duroxlua show: option '--full' takes no value\n" },
      { { "history" }, "duroxlua history: missing instance id\n" },
      { { "history", "x", "--execution", "0", "--store", MEM }, "duroxlua history: option '--execution' must be at least 1\n" },
      { { "history", "x", "--from-id", "one" }, "duroxlua history: option '--from-id' expects a non-negative integer, got 'one'\n" },
      { { "history", "x", "--type" }, "duroxlua history: option '--type' needs a value (T)\n" },
      { { "help", "bogus" }, "duroxlua help: unknown command 'bogus'\n" },
      { { "help", "list", "show" }, "duroxlua help: unexpected argument 'show'\n" },
    }
    for _, c in ipairs(cases) do
      it(table.concat(c[1], " ") .. " -> exit 2", function()
        expect(run(c[1]), 2, "", c[2])
      end)
    end

    it("rejects a malformed time naming the option", function()
      local r = run { "list", "--created-after", "yesterday" }
      expect(r, 2, "", nil)
      assert.are.equal("duroxlua list: option '--created-after': invalid time 'yesterday'",
        r.err:match("^[^(]*"):gsub("%s+$", ""))
      assert.are.equal(1, #lines(r.err))
    end)

    it("rejects an unknown status or failure kind from the engine, one line", function()
      local r = run { "list", "--status", "Cancelled", "--store", MEM }
      expect(r, 2, "", nil)
      assert.are.equal("duroxlua list: invalid filter: unknown status 'Cancelled'", r.err:match("^[^(]*"):gsub("%s+$", ""))
      assert.are.equal(1, #lines(r.err))
      r = run { "list", "--failure-kind", "oops", "--store", MEM }
      expect(r, 2, "", nil)
      assert.are.equal("duroxlua list: invalid filter: unknown failure_kind 'oops'", r.err:match("^[^(]*"):gsub("%s+$", ""))
    end)

    it("reports an unknown command (dispatcher), exit 2", function()
      -- durox.cli.args exists but is no command
      expect(run { "args" }, 2, "", "duroxlua: unknown command 'args' (see 'duroxlua help')\n")
      -- the dispatcher itself, as main.c calls it
      expect(run { "-e", "os.exit(require('durox.cli').main({'bogus'}, nil))" }, 2, "",
        "duroxlua: unknown command 'bogus' (see 'duroxlua help')\n")
    end)

    it("treats an unknown plain word as a command, not a script", function()
      expect(run { "bogus" }, 2, "", "duroxlua: unknown command 'bogus' (see 'duroxlua help')\n")
      -- a word with a dot is a script path, as in lua
      expect(run { "no-such-script.lua" }, 1, "", "duroxlua: cannot open no-such-script.lua: No such file or directory\n")
    end)
  end)

  describe("--nice", function()
    -- the nice level of a process from /proc/<pid>/stat (field 19)
    local function nice_of(stat)
      local f = {}
      for w in stat:match("%) (.*)$"):gmatch("%S+") do f[#f + 1] = w end
      return tonumber(f[17])
    end
    local base = nice_of(io.open("/proc/self/stat"):read("a")) -- the suite's own level (inherited)
    local probe = "io.write(io.open('/proc/self/stat'):read('a'))"
    it("lowers the process's priority to level N, before the script or command runs", function()
      local r = run { "--nice", "19", "-e", probe }
      expect(r, 0, nil, "")
      assert.are.equal(19, nice_of(r.out))
      r = run { "--nice=18", "-e", probe }
      assert.are.equal(math.max(base, 18), nice_of(r.out))
      -- $DUROX_NICE when the option is not given; -E ignores it
      r = run({ "-e", probe }, { env = { DUROX_NICE = "17" } })
      assert.are.equal(math.max(base, 17), nice_of(r.out))
      r = run({ "-E", "-e", probe }, { env = { DUROX_NICE = "17" } })
      assert.are.equal(base, nice_of(r.out))
      -- a level below the current one changes nothing (no privilege is needed or asked for)
      r = run { "--nice", "0", "-e", probe }
      expect(r, 0, nil, "")
      assert.are.equal(base, nice_of(r.out))
    end)
    it("rejects a level outside 0-19 or not a number, exit 2, one line", function()
      for _, v in ipairs { "20", "-1", "ten", "", "5x" } do
        expect(run { "--nice", v, "-e", "print('ran')" }, 2, "",
          "duroxlua: --nice takes a level from 0 to 19, not '" .. v .. "'\n")
      end
      expect(run({ "-e", "print('ran')" }, { env = { DUROX_NICE = "high" } }), 2, "",
        "duroxlua: --nice takes a level from 0 to 19, not 'high'\n")
    end)
  end)

  describe("stores", function()
    it("needs a store", function()
      expect(run { "list" }, 2, "", "duroxlua list: no store given (use --store URL or set DUROX_STORE)\n")
      expect(run({ "show", "x" }, { env = { DUROX_STORE = "" } }), 2, "",
        "duroxlua show: no store given (use --store URL or set DUROX_STORE)\n")
    end)

    it("reports a missing store file, exit 3 (not found)", function()
      expect(run { "--store", "sqlite:/nonexistent/dir/x.db", "list" }, 3, "",
        "duroxlua list: store '/nonexistent/dir/x.db' does not exist (No such file or directory)\n")
      expect(run { "show", "x", "--store", "sqlite:/nonexistent/dir/x.db" }, 3, "",
        "duroxlua show: store '/nonexistent/dir/x.db' does not exist (No such file or directory)\n")
    end)

    it("reports a malformed store URL, exit 2 (usage)", function()
      expect(run { "list", "--store", "/tmp/x.db" }, 2, "",
        "duroxlua list: unrecognised store URL '/tmp/x.db' (expected sqlite:PATH, sqlite::memory: or postgres://...)\n")
    end)

    it("reports a file that is not a Duroxide store, exit 1", function()
      local path = os.tmpname()
      write_file(path, "hello, not a database\n")
      expect(run { "list", "--store", "sqlite:" .. path }, 1, "",
        ("duroxlua list: '%s' is not a SQLite database, so not a Duroxide store\n"):format(path))
      os.remove(path)
      if os.execute("command -v sqlite3 >/dev/null") then
        path = os.tmpname()
        os.remove(path)
        assert.is_true(os.execute(("sqlite3 %s 'CREATE TABLE t(x)'"):format(sh(path))))
        expect(run { "history", "x", "--store", "sqlite:" .. path }, 1, "",
          ("duroxlua history: '%s' is not a Duroxide store (it has no table 'instances')\n"):format(path))
        os.remove(path)
      end
    end)

    it("takes the store from --store after the command, --store before it, or $DUROX_STORE", function()
      expect(run { "--store", "sqlite:/nonexistent/x.db", "list", "--store", MEM }, 0, "0 instances shown\n", "")
      expect(run { "--store=" .. MEM, "list" }, 0, "0 instances shown\n", "")
      expect(run({ "list" }, { env = { DUROX_STORE = MEM } }), 0, "0 instances shown\n", "")
      expect(run({ "list", "--store=" .. MEM }, { env = { DUROX_STORE = "sqlite:/nonexistent/x.db" } }), 0,
        "0 instances shown\n", "")
    end)
  end)

  describe("an empty in-memory store", function()
    it("lists 0 instances", function()
      expect(run { "list", "--store", MEM }, 0, "0 instances shown\n", "")
      expect(run { "list", "--store", MEM, "--count" }, 0, "0 of 0 instances shown\n", "")
      expect(run { "list", "--store", MEM, "--all" }, 0, "0 instances shown\n", "")
      expect(run { "list", "--store", MEM, "--ids", "--all" }, 0, "", "")
      expect(run { "list", "--store", MEM, "--json" }, 0,
        '{\n  "instances": [],\n  "next_page_token": null,\n  "total_count": null\n}\n', "")
      expect(run { "list", "--store", MEM, "--json", "--all" }, 0,
        '{\n  "instances": [],\n  "next_page_token": null,\n  "total_count": 0\n}\n', "")
      expect(run { "list", "--store", MEM, "--json", "--count", "-s", "Running,Failed", "--created-after", "-24h" }, 0,
        '{\n  "instances": [],\n  "next_page_token": null,\n  "total_count": 0\n}\n', "")
    end)

    it("does not find an instance", function()
      expect(run { "show", "x", "--store", MEM }, 3, "", "duroxlua show: instance 'x' not found\n")
      -- with --json the error is JSON on stdout
      expect(run { "show", "x", "--store", MEM, "--json" }, 3,
        '{\n  "code": "NOTFOUND",\n  "error": "instance \'x\' not found",\n  "exit": 3\n}\n', "")
      expect(run { "history", "x", "--store", MEM }, 3, "", "duroxlua history: instance 'x' not found\n")
      expect(run { "show", "--store", MEM, "--", "-dash" }, 3, "", "duroxlua show: instance '-dash' not found\n")
      -- a control character in a message is escaped, so the message stays on one line
      expect(run { "show", "a\nb", "--store", MEM }, 3, "", "duroxlua show: instance 'a\\nb' not found\n")
    end)
  end)

  describe("the REPL", function()
    it("pretty-prints results", function()
      local r = run({ "-i", "--store", MEM }, { stdin = table.concat({
        "{b = 1, a = 'x', created_at = 1704067200000}",
        "{1, 2, 3}",
        "'plain', 42, nil, durox.null",
        "t = {}; t.self = t",
        "t",
        "dx:list_instances()",
      }, "\n") .. "\n" })
      expect(r, 0, nil, "")
      local expected = table.concat({
        "duroxlua " .. durox.version .. " (Lua 5.4",
        "durox> {",
        '  a = "x",',
        "  b = 1,",
        "  created_at = 1704067200000, -- 2024-01-01T00:00:00.000Z",
        "}",
        "durox> { 1, 2, 3 }",
        "durox> plain\t42\tnil\tnull",
        "durox> durox> {",
        "  self = <cycle>,",
        "}",
        "durox> {}",
        "durox> ",
      }, "\n") .. "\n"
      assert.are.equal(expected, r.out:gsub("^(duroxlua [^\n]-%(Lua 5%.4)[^\n]*", "%1"))
    end)

    it("without a terminal, an arrow key's escape sequence is one clear line, and the REPL goes on", function()
      -- it used to fail with "stdin: bad binary format (truncated chunk)"
      local r = run({ "-i", "--store", MEM }, { stdin = "\27[A\n1 + 1\n" })
      expect(r, 0, nil, "duroxlua: stdin:1: the line starts with ESC (\\x1b[A), a terminal key such as an arrow,"
        .. " not Lua\n")
      assert.truthy(r.out:find("\ndurox> durox> 2\ndurox> \n$"), r.out)
    end)
  end)

  if not SCENARIO_DB then
    pending("scenario store checks (set DUROX_SCENARIO_DB to a store made by tests/harness/scenarios.js)")
    return
  end

  describe("a scenario store", function()
    local STORE = "sqlite:" .. SCENARIO_DB
    local manifest = json(read_file(SCENARIO_DB .. ".manifest.json"))
    local ids = {}
    for id in pairs(manifest.instances) do ids[#ids + 1] = id end
    table.sort(ids)

    -- runs a command on the scenario store
    local function on(argv, opts)
      local a = { "--store", STORE }
      table.move(argv, 1, #argv, 3, a)
      return run(a, opts)
    end

    -- ids of the manifest instances for which pred(instance) is true, sorted
    local function where(pred)
      local t = {}
      for _, id in ipairs(ids) do
        if pred(manifest.instances[id]) then t[#t + 1] = id end
      end
      return t
    end

    -- every summary that `argv --json` lists, following the page tokens (pages of 500)
    local function pages(argv)
      local all, token = {}, nil
      repeat
        local a = table.move(argv, 1, #argv, 1, {})
        table.move({ "--json", "--limit", "500" }, 1, 3, #a + 1, a)
        if token then
          a[#a + 1] = "--page-token"
          a[#a + 1] = token
        end
        local r = on(a)
        expect(r, 0, nil, "")
        local page = json(r.out)
        table.move(page.instances, 1, #page.instances, #all + 1, all)
        token = page.next_page_token ~= durox.null and page.next_page_token or nil
      until not token or #all > #ids
      return all
    end

    -- sorted list of the instance ids in a list of summaries
    local function id_list(instances)
      local t = {}
      for i, s in ipairs(instances) do t[i] = s.instance_id end
      table.sort(t)
      return t
    end

    it("holds instances of every status (the fixture is what these checks expect)", function()
      assert.is_true(#ids >= 10)
      assert.is_true(#where(function(m) return m.status == "Failed" end) >= 1)
      assert.is_true(#where(function(m) return m.executions > 1 end) >= 1)
      assert.is_true(#where(function(m) return m.status == "Completed" end) >= 1)
    end)

    it("list --status Failed lists exactly the failed instances", function()
      local failed = where(function(m) return m.status == "Failed" end)
      local instances = pages { "list", "--status", "Failed" }
      assert.are.same(failed, id_list(instances))
      for _, s in ipairs(instances) do
        local m = manifest.instances[s.instance_id]
        assert.are.equal("Failed", s.status)
        assert.are.equal(m.failure_kind, s.failure_kind)
        assert.are.equal(m.name, s.orchestration_name)
      end
      -- the same through the iterator, ids only
      local r = on { "list", "--status", "failed", "--all", "--ids" }
      expect(r, 0, nil, "")
      local got = lines(r.out)
      table.sort(got)
      assert.are.same(failed, got)
      -- and in the table: one row per failed instance, status with its failure kind
      r = on { "list", "-s", "Failed", "--all", "--wide", "--order", "id", "--asc" }
      expect(r, 0, nil, "")
      local l = lines(r.out)
      assert.are.equal(#failed + 2, #l)
      assert.are.equal(("%d instances shown"):format(#failed), l[#l])
      for i, id in ipairs(failed) do
        local m = manifest.instances[id]
        local row = l[i + 1]
        assert.are.equal(id, row:sub(1, #id))
        assert.truthy(row:find("  Failed (" .. m.failure_kind .. ")", 1, true), row)
      end
    end)

    it("list renders summaries: ISO times, parents, counts", function()
      local all = pages { "list", "--order", "id", "--asc" }
      assert.are.equal(#ids, #all)
      local r = on { "list", "--order", "id", "--asc", "--all", "--wide" }
      expect(r, 0, nil, "")
      local l = lines(r.out)
      assert.are.equal("INSTANCE", l[1]:match("^%S+"))
      assert.truthy(l[1]:match("^INSTANCE +NAME +VERSION +STATUS +CREATED +UPDATED +EXECS  PARENT$"), l[1])
      for i, s in ipairs(all) do
        local m = manifest.instances[s.instance_id]
        local row = l[i + 1]
        -- the row starts with the id and ends with the execution count and the parent
        assert.are.equal(s.instance_id .. "  ", row:sub(1, #s.instance_id + 2))
        local tail = ("  %d  %s"):format(m.executions, m.parent ~= durox.null and m.parent or "-")
        assert.are.equal(tail, row:sub(-#tail))
        -- times in ISO-8601 UTC to the second, computed here independently
        local created, updated = row:match("  (%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ)  (%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ)  ")
        assert.are.equal(os.date("!%Y-%m-%dT%H:%M:%SZ", s.created_at // 1000), created)
        assert.are.equal(os.date("!%Y-%m-%dT%H:%M:%SZ", s.updated_at // 1000), updated)
        local status = m.status .. (m.failure_kind and (" (" .. m.failure_kind .. ")") or "")
        assert.truthy(row:find("  " .. status .. "  ", 1, true), row)
      end
      assert.are.equal(("%d instances shown"):format(#ids), l[#l])
    end)

    it("list --children and --parent follow the manifest's tree", function()
      local children = where(function(m) return m.parent ~= durox.null end)
      local r = on { "list", "--children", "--all", "--json" }
      expect(r, 0, nil, "")
      assert.are.same(children, id_list(json(r.out).instances))
      local parent = manifest.instances[children[1]].parent
      r = on { "list", "--parent", parent, "--json" }
      expect(r, 0, nil, "")
      assert.are.same(manifest.instances[parent].children, id_list(json(r.out).instances))
    end)

    it("paging with --page-token visits every instance exactly once", function()
      for _, order in ipairs { { "--order", "created" }, { "--order", "id", "--asc" }, { "--order", "name", "--desc" } } do
        local seen, visits, token, pages = {}, 0, nil, 0
        repeat
          local argv = { "list", "--json", "--limit", "7", "--count" }
          table.move(order, 1, #order, #argv + 1, argv)
          if token then
            argv[#argv + 1] = "--page-token"
            argv[#argv + 1] = token
          end
          local r = on(argv)
          expect(r, 0, nil, "")
          local page = json(r.out)
          assert.are.equal(#ids, page.total_count)
          assert.is_true(#page.instances <= 7)
          for _, s in ipairs(page.instances) do
            assert.is_nil(seen[s.instance_id], "visited twice: " .. s.instance_id)
            seen[s.instance_id] = true
            visits = visits + 1
          end
          token = page.next_page_token ~= durox.null and page.next_page_token or nil
          pages = pages + 1
          assert.is_true(pages <= #ids + 1, "paging does not end")
        until not token
        assert.are.equal(#ids, visits)
        for _, id in ipairs(ids) do assert.is_true(seen[id], "never visited: " .. id) end
      end
    end)

    it("the text footer gives the next page token", function()
      local r = on { "list", "--limit", "5", "--order", "id", "--asc" }
      expect(r, 0, nil, "")
      local l = lines(r.out)
      assert.are.equal(7, #l)
      local token = l[7]:match("^5 instances shown; more with %-%-page%-token (%S+)$")
      assert.is_string(token)
      r = on { "list", "--limit", "5", "--order", "id", "--asc", "--page-token", token, "--json" }
      expect(r, 0, nil, "")
      local second = id_list(json(r.out).instances)
      assert.are.same({ ids[6], ids[7], ids[8], ids[9], ids[10] }, second)
    end)

    it("list --all --json streams the same summaries as one big page", function()
      local a = on { "list", "--all", "--json", "--order", "id", "--asc" }
      expect(a, 0, nil, "")
      local sa = json(a.out)
      assert.are.same(pages { "list", "--order", "id", "--asc" }, sa.instances)
      assert.are.equal(#ids, sa.total_count)
      assert.are.equal(durox.null, sa.next_page_token)
    end)

    it("show of a continue-as-new instance lists its executions", function()
      local can = where(function(m) return m.executions > 1 end)
      for _, id in ipairs(can) do
        local m = manifest.instances[id]
        local r = on { "show", id }
        expect(r, 0, nil, "")
        local l = lines(r.out)
        assert.are.equal("Instance:    " .. id, l[1])
        assert.truthy(r.out:find("\nExecutions:  " .. m.executions .. "\n", 1, true))
        local at
        for i, line in ipairs(l) do
          if line == "Executions:" then at = i end
        end
        assert.is_number(at, "no executions table")
        assert.truthy(l[at + 1]:match("^  ID  STATUS +STARTED +COMPLETED +EVENTS  CAN INPUT$"), l[at + 1])
        for k = 1, m.executions do
          local eid, status = l[at + 1 + k]:match("^%s+(%d+)  (%S+)")
          assert.are.equal(tostring(k), eid)
          assert.are.equal(m.execution_statuses[k], status)
        end
        assert.are.equal("", l[at + 2 + m.executions])
      end
    end)

    it("show reports failures with their kind and error", function()
      for _, id in ipairs(where(function(m) return m.status == "Failed" end)) do
        local m = manifest.instances[id]
        local r = on { "show", id }
        expect(r, 0, nil, "")
        assert.truthy(r.out:find("\nStatus:  +Failed %(" .. m.failure_kind .. "%)\n"), r.out)
        assert.truthy(r.out:find("\nError:  +%S"), r.out)
      end
    end)

    it("show --json has the details fields", function()
      for _, id in ipairs(ids) do
        local m = manifest.instances[id]
        local r = on { "show", id, "--json" }
        expect(r, 0, nil, "")
        local d = json(r.out)
        assert.are.equal(id, d.summary.instance_id)
        assert.are.equal(m.status, d.summary.status)
        assert.are.equal(m.name, d.summary.orchestration_name)
        assert.are.equal(m.executions, #d.executions)
        for k, e in ipairs(d.executions) do assert.are.equal(m.execution_statuses[k], e.status) end
        assert.is_table(d.statistics)
        assert.is_number(d.statistics.total_history_events)
        assert.is_table(d.current_execution.pending_timers)
      end
    end)

    it("history of a completed instance starts with OrchestrationStarted and ends with OrchestrationCompleted", function()
      local done = where(function(m) return m.status == "Completed" end)
      for _, id in ipairs(done) do
        local m = manifest.instances[id]
        local r = on { "history", id }
        expect(r, 0, nil, "")
        local l = lines(r.out)
        assert.truthy(l[1]:match("^EVENT  TIME +TYPE +SOURCE  DETAILS$"), l[1])
        local rows = {}
        for i = 2, #l - 1 do
          local eid, time, etype, source = l[i]:match("^%s*(%d+)  (%S+)  (%S+)%s+(%S+)")
          assert.is_string(eid, l[i])
          assert.truthy(time:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"), time)
          rows[#rows + 1] = { id = tonumber(eid), type = etype, source = source }
        end
        assert.are.equal(m.history_events, #rows)
        assert.are.equal("OrchestrationStarted", rows[1].type)
        assert.are.equal("OrchestrationCompleted", rows[#rows].type)
        for i, row in ipairs(rows) do assert.are.equal(i, row.id) end
        assert.are.equal(("%d events of execution %d"):format(#rows, m.executions), l[#l])
      end
    end)

    it("history --json, filters and paging", function()
      local id = where(function(m) return m.status == "Completed" and m.history_events >= 6 end)[1]
      assert.is_string(id)
      local m = manifest.instances[id]
      local r = on { "history", id, "--json" }
      expect(r, 0, nil, "")
      local h = json(r.out)
      assert.are.equal(m.executions, h.execution_id)
      assert.are.equal(durox.null, h.next_page_token)
      assert.are.equal(m.history_events, #h.events)
      assert.are.equal("OrchestrationStarted", h.events[1].event_type)
      assert.are.equal("OrchestrationCompleted", h.events[#h.events].event_type)
      assert.are.equal(m.output, h.events[#h.events].output)
      -- --type keeps only those types
      r = on { "history", id, "--json", "--type", "OrchestrationStarted,OrchestrationCompleted" }
      expect(r, 0, nil, "")
      local typed = json(r.out).events
      assert.are.equal(2, #typed)
      -- --no-payloads drops the output
      r = on { "history", id, "--json", "--no-payloads", "-t", "OrchestrationCompleted" }
      expect(r, 0, nil, "")
      assert.is_nil(json(r.out).events[1].output)
      -- paging by 2 visits every event once, in order
      local got, token = {}, nil
      repeat
        local argv = { "history", id, "--json", "--limit", "2" }
        if token then
          argv[#argv + 1] = "--page-token"
          argv[#argv + 1] = token
        end
        r = on(argv)
        expect(r, 0, nil, "")
        local page = json(r.out)
        for _, e in ipairs(page.events) do got[#got + 1] = e.event_id end
        token = page.next_page_token ~= durox.null and page.next_page_token or nil
      until not token or #got > 1000
      local want = {}
      for i = 1, m.history_events do want[i] = i end
      assert.are.same(want, got)
      -- the text footer of a page
      r = on { "history", id, "--limit", "2" }
      expect(r, 0, nil, "")
      local l = lines(r.out)
      assert.truthy(l[#l]:match("^2 events of execution %d+; more with %-%-page%-token %S+$"), l[#l])
    end)

    it("a page token stays valid in a later run when the times are relative", function()
      local r = on { "list", "--limit", "3", "--order", "id", "--asc", "--created-after", "-3650d", "--json" }
      expect(r, 0, nil, "")
      local token = json(r.out).next_page_token
      assert.is_string(token)
      r = on { "list", "--limit", "3", "--order", "id", "--asc", "--created-after", "-3650d", "--json",
               "--page-token", token }
      expect(r, 0, nil, "")
      assert.are.same({ ids[4], ids[5], ids[6] }, id_list(json(r.out).instances))
      -- history binds its token to the resolved time: the footer repeats it absolutely
      local id = where(function(m) return m.history_events >= 4 end)[1]
      r = on { "history", id, "--limit", "2", "--since", "-3650d" }
      expect(r, 0, nil, "")
      local l = lines(r.out)
      local tok, since = l[#l]:match("; more with %-%-page%-token (%S+) %-%-since (%S+)$")
      assert.is_string(tok, l[#l])
      assert.truthy(since:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"), since)
      r = on { "history", id, "--limit", "2", "--page-token", tok, "--since", since, "--json" }
      expect(r, 0, nil, "")
      local events = json(r.out).events
      assert.are.same({ 3, 4 }, { events[1].event_id, events[2].event_id })
    end)

    it("history of an execution that does not exist fails, exit 3", function()
      local r = on { "history", ids[1], "--execution", "999" }
      expect(r, 3, "", ("duroxlua history: execution 999 of instance '%s' not found\n"):format(ids[1]))
    end)
  end)
end)
