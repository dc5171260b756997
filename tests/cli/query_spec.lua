-- query_spec.lua - `duroxlua list --query` on the built binary: the same instances as the
-- equivalent flags and as the store's manifest says, combined with other filter flags,
-- paging across runs with a query, --help, and malformed queries as one-line usage errors
-- (exit 2). Binary: $DUROXLUA; store: $DUROX_SCENARIO_DB (made by tests/harness/scenarios.js).
local T = require "support"
local durox, BIN = T.durox, T.BIN
local read_file, write_file, sh, expect, json, lines = T.read_file, T.write_file, T.sh, T.expect, T.json, T.lines
local run = T.run
local SCENARIO_DB = os.getenv("DUROX_SCENARIO_DB")


describe("duroxlua list --query", function()
  it("is in --help", function()
    local r = run { "list", "--help" }
    expect(r, 0, nil, "")
    assert.truthy(r.out:find("\n  %-q, %-%-query QUERY +a query in the query language, ANDed with the other filters\n"), r.out)
    assert.truthy(r.out:find("--query takes the query language (docs/query-language.md)", 1, true))
  end)

  it("reports a malformed query as a usage error, one line, exit 2", function()
    local mem = "sqlite::memory:"
    expect(run { "list", "--store", mem, "--query", "status = " }, 2, "",
      "duroxlua list: query error at position 10: expected a value after '=' but found end of query\n")
    expect(run { "list", "--store", mem, "--all", "-q", "name = 'abc" }, 2, "",
      "duroxlua list: query error at position 12: unterminated string starting at position 8\n")
    expect(run { "list", "--store", mem, "--query", "status = Failed", "--status", "Running" }, 2, "",
      "duroxlua list: query error at position 10: expected a value after '=' but found 'Failed' (text values are "
      .. "quoted: 'Failed')\n")
    -- a value with a line break is shown on one line
    local r = run { "list", "--store", mem, "--query", "name = 'a' OR 'multi\nline'" }
    expect(r, 2, "", "duroxlua list: query error at position 15: expected a condition after OR but found string "
      .. "'multi?line'\n")
    expect(run { "list", "--query" }, 2, "", "duroxlua list: option '--query' needs a value (QUERY)\n")
  end)

  it("lists nothing on an empty store", function()
    expect(run { "list", "--store", "sqlite::memory:", "--query", "status = 'Failed' OR has_parent = true" }, 0,
      "0 instances shown\n", "")
  end)

  if not SCENARIO_DB then
    pending("DUROX_SCENARIO_DB is not set: no scenario store checks")
    return
  end

  local STORE = "sqlite:" .. SCENARIO_DB
  local manifest = json(read_file(SCENARIO_DB .. ".manifest.json")).instances

  local function on(argv)
    local a = { "list", "--store", STORE }
    table.move(argv, 1, #argv, 4, a)
    return run(a)
  end

  -- manifest ids for which pred(instance, id) holds, sorted
  local function where(pred)
    local t = {}
    for id, m in pairs(manifest) do
      if pred(m, id) then t[#t + 1] = id end
    end
    table.sort(t)
    return t
  end

  -- ids printed by `list ... --all --ids`, sorted
  local function ids_of(argv)
    local a = table.move(argv, 1, #argv, 1, {})
    a[#a + 1] = "--all"
    a[#a + 1] = "--ids"
    local r = on(a)
    expect(r, 0, nil, "")
    local t = lines(r.out)
    table.sort(t)
    return t
  end

  it("selects what the equivalent flags select, and what the manifest says", function()
    local failed = where(function(m) return m.status == "Failed" end)
    assert.is_true(#failed > 0)
    assert.are.same(failed, ids_of { "--query", "status = 'Failed'" })
    assert.are.same(ids_of { "--status", "Failed" }, ids_of { "--query", "status = 'Failed'" })
    assert.are.same(where(function(m) return m.status == "Failed" and m.failure_kind == "cancelled" end),
      ids_of { "-q", "status = 'Failed' AND failure_kind = 'cancelled'" })
    assert.are.same(ids_of { "--children", "--name-prefix", "Tree" },
      ids_of { "--query", "has_parent = true AND name STARTS_WITH 'Tree'" })
    assert.are.same(where(function(m) return m.executions >= 2 or m.version == "2.0.0" end),
      ids_of { "--query", "execution_count >= 2 OR version = '2.0.0'" })
    assert.are.same(where(function(m, id) return m.parent == durox.null and not id:find("-", 1, true) end),
      ids_of { "--query", "parent IS NULL AND NOT id LIKE '%-%'" })
  end)

  it("is ANDed with the other filter flags", function()
    local want = where(function(m)
      return m.status == "Running" and (m.name == "WaitApprove" or m.name == "TreeNode")
    end)
    assert.is_true(#want > 2)
    assert.are.same(want, ids_of { "--status", "Running", "--query", "name = 'WaitApprove' OR name = 'TreeNode'" })
    assert.are.same(where(function(m) return m.status == "Running" and m.name == "TreeNode" and m.parent ~= durox.null end),
      ids_of { "--children", "--query", "name = 'TreeNode'", "--status", "Running" })
    -- contradictory flag and query: nothing
    assert.are.same({}, ids_of { "--status", "Completed", "--query", "status = 'Failed'" })
  end)

  it("pages with --page-token across runs, with a count", function()
    local Q = "status != 'Failed' AND (name STARTS_WITH 'Tree' OR id LIKE 'list-%')"
    local want = where(function(m, id)
      return m.status ~= "Failed" and (m.name:sub(1, 4) == "Tree" or id:sub(1, 5) == "list-")
    end)
    assert.is_true(#want > 20)
    for _, order in ipairs { { "--order", "created" }, { "--order", "id", "--asc" }, { "--order", "updated" } } do
      local seen, token, pages = {}, nil, 0
      repeat
        local argv = { "--query", Q, "--json", "--limit", "6", "--count" }
        table.move(order, 1, #order, #argv + 1, argv)
        if token then
          argv[#argv + 1] = "--page-token"
          argv[#argv + 1] = token
        end
        local r = on(argv)
        expect(r, 0, nil, "")
        local page = json(r.out)
        assert.are.equal(#want, page.total_count)
        for _, s in ipairs(page.instances) do
          assert.is_nil(seen[s.instance_id], "visited twice: " .. s.instance_id)
          seen[s.instance_id] = true
        end
        token = page.next_page_token ~= durox.null and page.next_page_token or nil
        pages = pages + 1
        assert.is_true(pages <= #want + 1, "paging does not end")
      until not token
      local got = {}
      for id in pairs(seen) do got[#got + 1] = id end
      table.sort(got)
      assert.are.same(want, got)
      assert.are.equal(math.ceil(#want / 6), pages)
    end
  end)

  it("keeps a token valid in a later run when the query has relative times", function()
    local Q = "created_at > now() - 3650d AND completed_at < now()"
    local r = on { "--query", Q, "--limit", "4", "--order", "id", "--asc", "--json" }
    expect(r, 0, nil, "")
    local first = json(r.out)
    local token = first.next_page_token
    assert.is_string(token)
    r = on { "--query", Q, "--limit", "4", "--order", "id", "--asc", "--json", "--page-token", token }
    expect(r, 0, nil, "")
    local want = where(function(m) return m.status ~= "Running" end)
    local second = {}
    for i, s in ipairs(json(r.out).instances) do second[i] = s.instance_id end
    assert.are.same({ want[5], want[6], want[7], want[8] }, second)
    -- the token belongs to that query: another one is refused
    r = on { "--query", "created_at > now() - 3650d", "--limit", "4", "--order", "id", "--asc", "--page-token", token }
    expect(r, 2, "", "duroxlua list: page token was issued for a different filter or order; repeat the first request "
      .. "without a token\n")
    -- the same filter written partly with a flag has the same canonical text: the token continues
    r = on { "--query", "completed_at < now()", "--created-after", "now() - 3650d", "--limit", "4", "--order", "id",
      "--asc", "--json", "--page-token", token }
    expect(r, 0, nil, "")
    local again = {}
    for i, s in ipairs(json(r.out).instances) do again[i] = s.instance_id end
    assert.are.same(second, again)
  end)
end)
