-- index_cli_spec.lua - `duroxlua index status|build|verify|drop` and `--no-index` on the built
-- binary, on a copy of the scenario store ($DUROX_SCENARIO_DB) with the index files in a
-- directory of the test's own ($DUROX_INDEX_DIR): the lifecycle absent -> ready -> verified ->
-- dropped, listings with and without the index equal, and the usage errors (exit 2).
local T = require "support"
local durox = T.durox
local sh, expect, json = T.sh, T.expect, T.json
local run = T.run
local SCENARIO_DB = os.getenv("DUROX_SCENARIO_DB")

describe("duroxlua index", function()
  local dir, db, env
  setup(function()
    assert(SCENARIO_DB, "DUROX_SCENARIO_DB")
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. sh(dir .. "/idx")))
    db = dir .. "/store.db"
    assert(os.execute(("sqlite3 %s '.backup %s'"):format(sh(SCENARIO_DB), sh(db))))
    env = { DUROX_INDEX_DIR = dir .. "/idx" }
  end)
  teardown(function() if dir then os.execute("rm -rf " .. sh(dir)) end end)

  local function idx(args, opts)
    local argv = { "--store", "sqlite:" .. db, "index" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return run(argv, { env = (opts and opts.env) or env })
  end

  it("goes from absent to ready, verifies, and drops", function()
    local r = idx { "status", "--json" }
    expect(r, 0, nil, "")
    local st = json(r.out)
    assert.are.equal("absent", st.state)
    r = idx { "build", "--json" }
    expect(r, 0, nil, "") -- not a terminal: no progress bar
    st = json(r.out)
    assert.are.equal("ready", st.state)
    assert.is_true(st.instances > 0)
    assert.truthy(st.path:find(dir .. "/idx/", 1, true), st.path)
    r = idx { "verify" }
    expect(r, 0, nil, "")
    assert.truthy(r.out:match("^ok: %d+ instances and every digest agree with the store\n$"), r.out)
    r = idx { "drop" }
    expect(r, 0, "dropped\n", "")
    assert.are.equal("absent", json(idx({ "status", "--json" }).out).state)
  end)

  it("lists the same instances with and without the index", function()
    expect(idx { "build" }, 0, nil, "")
    for _, filter in ipairs { {}, { "--status", "Failed" }, { "--query", "name = 'Sequence'" } } do
      local with = { "--store", "sqlite:" .. db, "list", "--all", "--json" }
      local without = { "--store", "sqlite:" .. db, "--no-index", "list", "--all", "--json" }
      for _, a in ipairs(filter) do
        with[#with + 1] = a
        without[#without + 1] = a
      end
      local a, b = run(with, { env = env }), run(without, { env = env })
      expect(a, 0, nil, "")
      expect(b, 0, a.out, "")
    end
  end)

  it("takes --index PATH, and refuses what it cannot do (exit 2)", function()
    local path = dir .. "/elsewhere.dxi"
    local r = idx { "build", "--index", path, "--json" }
    expect(r, 0, nil, "")
    assert.are.equal(path, json(r.out).path)
    assert.is_truthy(io.open(path))
    expect(idx { "frobnicate" }, 2, "", "duroxlua index: unknown subcommand 'frobnicate' (expected status, build, drop or verify)\n")
    expect(idx {}, 2, "", "duroxlua index: missing subcommand (status, build, drop or verify)\n")
    expect(idx { "status", "--rebuild" }, 2, "", "duroxlua index: --rebuild goes with build\n")
    expect(run({ "--store", "sqlite:" .. db, "--no-index", "index", "status" }, { env = env }), 2, "",
      "duroxlua index: --no-index leaves no index to work on\n")
  end)
end)
