-- stream_access_spec.lua - the streams pass the ONE enforcement point: under the ready-made
-- team policy (a filter the store applies) and a per-row policy (can_view_instance asked per
-- instance), stream_instance_events, read_changes and watch_instances show exactly the
-- instances the caller may see (computed here from the store's rows with sqlite3 or psql), on
-- both providers; a hidden instance looks like a missing one, the raw feed holds the rows of
-- visible instances only (all of them for a caller who sees everything) and their payloads only
-- when can_view_history is a constant true, cursors are bound to the caller, and the
-- store-wide metric stream is denied to a restricted caller.
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("stream access", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

local POLICIES = "../../scripts/policies/"
local ROWWISE = [[
return {
  can_list_instances = true,
  can_view_instance = function(ctx, inst) return not inst.id:find("::sub::", 1, true) end,
  can_view_history = true,
  can_view_metrics = true,
}]]

for _, kind in ipairs(L.kinds()) do
describe("on " .. kind .. ", streams under access control", function()
  local dir, S, names

  setup(function()
    dir = L.tmpdir()
    S = L.scenario_store(kind, dir, "acl")
    names = {}
    for _, r in ipairs(S.rows("SELECT instance_id AS i, orchestration_name AS n FROM instances")) do names[r.i] = r.n end
  end)

  teardown(function()
    if S then S.drop() end
    L.cleanup(dir)
  end)

  local function open(opts)
    opts.audit_file = dir .. "/audit.jsonl"
    opts.readonly = true
    return assert(durox.open(S.url, opts))
  end

  local function history_count()
    return tonumber(S.rows("SELECT count(*) AS n FROM history")[1].n)
  end

  local team = { policy = POLICIES .. "team.lua", context = { user_id = "tom", roles = { "team:Echo", "team:Wait" } } }
  local function team_sees(id) local n = names[id] or "" return n:sub(1, 4) == "Echo" or n:sub(1, 4) == "Wait" end
  local function row_sees(id) return names[id] ~= nil and not id:find("::sub::", 1, true) end

  -- keys of the InstanceEvents an unrestricted stream yields, kept when keep(instance_id).
  local function expected(keep)
    local all = assert(durox.open(S.url, { readonly = true }))
    local t = {}
    for ev in all:stream_instance_events {} do
      if keep(ev.instance_id) then t[#t + 1] = ev.key end
    end
    all:close()
    return t
  end

  local function stream_keys(dx, opts)
    local t = {}
    for ev in assert(dx:stream_instance_events(opts or {})) do t[#t + 1] = ev.key end
    return t
  end

  for _, case in ipairs { { "the team policy (a filter)", team, team_sees },
    { "a per-row policy", { policy_source = ROWWISE, context = { user_id = "rita" } }, row_sees } } do
    local name, opts, sees = case[1], case[2], case[3]

    it("shows exactly the events of visible instances under " .. name, function()
      local want = expected(sees)
      assert.is_true(#want > 10)
      local dx = open(opts)
      assert.are.same(want, stream_keys(dx))
      -- the caller's own filter is ANDed with the policy's
      local mine = stream_keys(dx, { filter = { status = "Completed" } })
      for _, k in ipairs(mine) do assert.is_true(sees(k:match("^(.*)/%d+/%d+$"))) end
      -- the raw feed too: the rows of visible instances only
      local r = assert(dx:read_changes { from = "start", limit = 100000, payloads = true })
      for _, c in ipairs(r.changes) do assert.is_true(sees(c.instance_id), c.instance_id) end
      local rows = 0
      for _, x in ipairs(S.rows("SELECT instance_id AS i FROM history")) do
        if sees(x.i) then rows = rows + 1 end
      end
      assert.are.equal(rows, #r.changes)
      -- can_view_history is a constant true in both policies: the payloads come along
      for _, c in ipairs(r.changes) do assert.is_string(c.data) end
      dx:close()
    end)

    it("watches a hidden instance as NotFound under " .. name, function()
      local hidden, visible
      for id in pairs(names) do
        if not sees(id) and not hidden then hidden = id end
        if sees(id) and not visible then visible = id end
      end
      local dx = open(opts)
      local w = assert(dx:watch_instances { instance_ids = { hidden, visible }, timeout_ms = 200 })
      local got = {}
      for c in w do if c.initial then got[c.instance_id] = c.new_status end end
      assert.are.equal("NotFound", got[hidden])
      assert.are_not.equal("NotFound", got[visible])
      dx:close()
    end)
  end

  it("binds cursors to the caller and denies the store-wide metric stream to a restricted one", function()
    local dx = open(team)
    local s = assert(dx:stream_instance_events {})
    local first = assert(s:next())
    s:close()
    local viewer = open { policy = POLICIES .. "viewer.lua", context = { user_id = "vera" } }
    local ok, err, code = viewer:stream_instance_events { cursor = first.cursor }
    assert.is_nil(ok)
    assert.are.equal("INVALID", code)
    assert.matches("different filter", err)
    ok, err, code = dx:stream_runtime_metrics { count = 1 }
    assert.is_nil(ok)
    assert.are.equal("DENIED", code)
    local all = assert(viewer:read_changes { from = "start", limit = 100000 })
    assert.are.equal(history_count(), #all.changes)
    local m = assert(viewer:stream_runtime_metrics { count = 1 })
    assert.is_number(assert(m:next()).total_instances_started)
    m:close()
    -- a caller the policy shows nothing to gets no event
    local nobody = open { policy = POLICIES .. "team.lua", context = { user_id = "nina" } }
    local n = 0
    local st, e2 = nobody:stream_instance_events {}
    if st then
      for _ in st do n = n + 1 end
    else
      assert.matches("denied", e2)
    end
    assert.are.equal(0, n)
    dx:close()
    viewer:close()
    nobody:close()
  end)

  it("leaves the payloads out of the raw feed unless can_view_history is a constant true", function()
    -- asked per instance, false, or missing (fail closed): every row, never its JSON
    for _, hook in ipairs({ "  can_view_history = function(ctx, inst) return true end,\n",
                            "  can_view_history = false,\n", "" }) do
      local p = open { policy_source = "return {\n  can_list_instances = true,\n  can_view_instance = true,\n" .. hook
        .. "  can_view_metrics = true,\n}", context = { user_id = "hal" } }
      local r = assert(p:read_changes { from = "start", limit = 100000, payloads = true })
      assert.are.equal(history_count(), #r.changes) -- every row (every instance is visible) ...
      for _, c in ipairs(r.changes) do assert.is_nil(c.data) end -- ... without its JSON
      p:close()
    end
  end)
end)
end
