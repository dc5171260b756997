-- options_spec.lua - the binding's one set of option readers (src/lua/options.c) and the
-- rule of docs/lua-api.md "Errors": integers are checked on the full Lua integer before
-- anything is narrowed (each case below was a silent truncation before), unknown or ignored
-- keys raise, every message names its table and field, and misuse raises while store
-- answers return nil, message, code. Expected rows come from the sqlite3 tool (psql for the
-- PostgreSQL cases: a whole 64-bit execution id reaching the store, page tokens, NUL bytes).
local durox = require "durox"
local H = require "helpers"

if H.skip then
  describe("options", function() pending("DUROX_SCENARIO_DB is not set") end)
  return
end

local dx = H.open({ readonly = true })

-- the error message a call raises (the test fails if it does not raise)
local function raised(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error")
  return err
end

describe("integers are range-checked before narrowing", function()
  it("execution_id = 2^32 + 1 is no execution, not execution 1", function()
    local id = "can-done-1"
    local execs = H.rows(string.format(
      "SELECT execution_id AS e FROM executions WHERE instance_id = '%s' ORDER BY e", id))
    assert.are.equal(1, execs[1].e)
    assert.is_nil(H.rows(string.format(
      "SELECT 1 AS x FROM executions WHERE instance_id = '%s' AND execution_id = 4294967297", id))[1])
    local one = assert(dx:get_execution_history_filtered { instance_id = id, execution_id = 1 })
    assert.are.equal(1, one.execution_id)
    local r, msg, code = dx:get_execution_history_filtered { instance_id = id, execution_id = (1 << 32) + 1 }
    assert.is_nil(r)
    assert.are.equal("NOTFOUND", code)
    assert.is_truthy(msg:find("4294967297", 1, true), msg)
    -- also as a float with an exact integer value
    r, _, code = dx:get_execution_history_filtered { instance_id = id, execution_id = 2 ^ 32 + 1 }
    assert.is_nil(r)
    assert.are.equal("NOTFOUND", code)
  end)

  it("page_size = 2^32 + 3 is out of range, never a page of 3", function()
    assert.are.equal("request field 'page_size' out of range (0 to 1000000), got 4294967299",
      raised(dx.list_instances_paginated, dx, { page_size = (1 << 32) + 3 }))
    assert.are.equal("history request field 'page_size' out of range (0 to 1000000), got 4294967299",
      raised(dx.get_execution_history_filtered, dx, { instance_id = "x", page_size = (1 << 32) + 3 }))
    assert.are.equal("request field 'page_size' out of range (0 to 1000000), got -1",
      raised(dx.list_instances_paginated, dx, { page_size = -1 }))
  end)

  it("config{ max_list_instances = 2^32 + 5 } raises and leaves the config as it was", function()
    local before = dx:config().max_list_instances
    assert.are.equal("config field 'max_list_instances' out of range (1 to 2147483647), got 4294967301",
      raised(dx.config, dx, { max_list_instances = (1 << 32) + 5 }))
    assert.are.equal(before, dx:config().max_list_instances)
    assert.are.equal("config field 'max_list_instances' out of range (1 to 2147483647), got 2^63",
      (raised(dx.config, dx, { max_list_instances = 2 ^ 63 }):gsub("9.2233720368548e%+18", "2^63")))
  end)

  it("floats with an exact integer value are integers; others say what they got", function()
    local n = #H.rows("SELECT instance_id FROM instances")
    assert(n >= 2)
    local page = assert(dx:list_instances_paginated { page_size = 2.0 })
    assert.are.equal(2, #page.instances)
    assert.are.equal("request field 'page_size' expects an integer, got 1.5",
      raised(dx.list_instances_paginated, dx, { page_size = 1.5 }))
    assert.are.equal("request field 'page_size' expects an integer, got '10'",
      raised(dx.list_instances_paginated, dx, { page_size = "10" }))
    assert.are.equal("find_stuck_instances option field 'limit' expects an integer, got true",
      raised(dx.find_stuck_instances, dx, { limit = true }))
  end)
end)

describe("unknown and ignored keys", function()
  it("batch_size on a paginated request is an error (it was ignored)", function()
    assert.are.equal("unknown request field 'batch_size'",
      raised(dx.list_instances_paginated, dx, { batch_size = 5 }))
  end)

  it("suggest the field meant, or none when nothing is close", function()
    assert.are.equal("unknown config field 'max_attempt' (did you mean 'max_attempts'?)",
      raised(dx.config, dx, { max_attempt = 3 }))
    assert.are.equal("unknown time series request field 'Bucket' (did you mean 'bucket'?)",
      raised(dx.get_time_series_metrics, dx, { Bucket = "1h" }))
    assert.are.equal("unknown query field 'sort'", raised(dx.query_instances, dx, { sort = "x" }))
    assert.are.equal("unknown open option field 'read_only' (did you mean 'readonly'?)",
      raised(durox.open, "sqlite:" .. H.db, { read_only = true }))
  end)

  it("wait_for_instances takes no write options", function()
    assert.are.equal("unknown request field 'dry_run'",
      raised(dx.wait_for_instances, dx, { instances = { "x" }, dry_run = true }))
  end)
end)

describe("messages name the field", function()
  it("page_token = {} says which field and what it got", function()
    assert.are.equal("request field 'page_token' expects a string, got table",
      raised(dx.list_instances_paginated, dx, { page_token = {} }))
    assert.are.equal("history request field 'page_token' expects a string, got table",
      raised(dx.get_execution_history_filtered, dx, { instance_id = "x", page_token = {} }))
  end)

  it("enum options list the names they take", function()
    assert.are.equal("request field 'direction' expects asc or desc, got 'up'",
      raised(dx.list_instances_paginated, dx, { direction = "up" }))
    assert.are.equal("request field 'order_by' expects CreatedAt, UpdatedAt, InstanceId or OrchestrationName, got 'Size'",
      raised(dx.list_instances_paginated, dx, { order_by = "Size" }))
    assert.are.equal("request field 'mode' expects all, any or first, got 'some'",
      raised(dx.wait_for_instances, dx, { instances = { "x" }, mode = "some" }))
  end)

  it("durations name the field and the range", function()
    assert.are.equal("find_stuck_instances option field 'stall_threshold_ms' expects a duration (integer ms, or like 500ms, 30s, 5m, 2h, 1d), got 'soon'",
      raised(dx.find_stuck_instances, dx, { stall_threshold_ms = "soon" }))
    assert.are.equal("open option field 'busy_timeout_ms' out of range (0 to 3600000 ms), got -1",
      raised(durox.open, "sqlite:" .. H.db, { busy_timeout_ms = -1 }))
  end)

  it("non-printable bytes in a quoted value are shown as '?'", function()
    assert.are.equal("request field 'direction' expects asc or desc, got 'a?b'",
      raised(dx.list_instances_paginated, dx, { direction = "a\27b" }))
  end)
end)

describe("NUL bytes", function()
  it("are refused by search in both forms (the string form searched for a prefix)", function()
    assert.is_truthy(raised(dx.search_instances, dx, "wait\0ZZZZ"):find("contains a NUL byte", 1, true))
    assert.are.equal("search field 'text' contains a NUL byte",
      raised(dx.search_instances, dx, { text = "wait\0ZZZZ" }))
  end)

  it("are refused in page tokens and request strings", function()
    assert.are.equal("request field 'page_token' contains a NUL byte",
      raised(dx.list_instances_paginated, dx, { page_token = "abc\0def" }))
    assert.are.equal("history request field 'instance_id' contains a NUL byte",
      raised(dx.get_execution_history_filtered, dx, { instance_id = "can-done-1\0x" }))
  end)
end)

describe("raise or return", function()
  it("a bad argument raises; a well-formed call the store cannot answer returns nil, message, code", function()
    -- misuse: raises
    raised(dx.get_time_series_metrics, dx, { bucket_ms = 5 })
    raised(dx.query_instances, dx, { group_by = { "Nope" } })
    -- store answers: return
    assert.are.same({ nil, "instance 'no-such' not found", "NOTFOUND" }, { dx:get_instance_details("no-such") })
    local r, _, code = dx:list_instances_paginated { page_token = "not-a-token" }
    assert.is_nil(r)
    assert.are.equal("INVALID", code)
  end)
end)

describe("page tokens", function()
  it("are refused with anything appended, as the table form refuses NUL bytes", function()
    local page = assert(dx:list_instances_paginated { page_size = 2 })
    local t = assert(page.next_page_token)
    assert(dx:list_instances_paginated { page_size = 2, page_token = t })
    for _, junk in ipairs { "=", "==", "A", "AAAA", " " } do
      local r, msg, code = dx:list_instances_paginated { page_size = 2, page_token = t .. junk }
      assert.is_nil(r, "accepted " .. t .. junk)
      assert.are.equal("INVALID", code)
      assert.is_truthy(msg:find("page token", 1, true), msg)
    end
    assert.are.equal("request field 'page_token' contains a NUL byte",
      raised(dx.list_instances_paginated, dx, { page_size = 2, page_token = t .. "\0junk" }))
    local h = assert(dx:get_execution_history_filtered { instance_id = "can-done-1", execution_id = 1, page_size = 1 })
    local ht = assert(h.next_page_token)
    local r, _, code = dx:get_execution_history_filtered { instance_id = "can-done-1", execution_id = 1, page_size = 1,
      page_token = ht .. "==" }
    assert.is_nil(r)
    assert.are.equal("INVALID", code)
  end)
end)

if not H.pg_skip then
  describe("on PostgreSQL", function()
    local pg = assert(durox.open(H.pg_url("durox_scenarios", "schema=dx"), { readonly = true }))
    teardown(function() pg:close() end)

    it("execution_id = 2^32 + 1 reaches the store whole: no execution, not execution 1", function()
      local row = H.psql("SELECT count(*) AS n FROM dx.executions WHERE instance_id = 'can-done-1' AND execution_id = 1")[1]
      assert.are.equal(1, tonumber(row.n))
      local one = assert(pg:get_execution_history_filtered { instance_id = "can-done-1", execution_id = 1 })
      assert.are.equal(1, one.execution_id)
      local r, msg, code = pg:get_execution_history_filtered { instance_id = "can-done-1", execution_id = (1 << 32) + 1 }
      assert.is_nil(r)
      assert.are.equal("NOTFOUND", code)
      assert.is_truthy(msg:find("4294967297", 1, true), msg)
    end)

    it("refuses page tokens with anything appended, and NUL bytes in search text", function()
      local page = assert(pg:list_instances_paginated { page_size = 2 })
      local t = assert(page.next_page_token)
      assert(pg:list_instances_paginated { page_size = 2, page_token = t })
      for _, junk in ipairs { "=", "A", " " } do
        local r, _, code = pg:list_instances_paginated { page_size = 2, page_token = t .. junk }
        assert.is_nil(r, "accepted " .. t .. junk)
        assert.are.equal("INVALID", code)
      end
      assert.are.equal("search field 'text' contains a NUL byte",
        raised(pg.search_instances, pg, { text = "wait\0ZZZZ" }))
    end)
  end)
end
