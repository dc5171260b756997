-- team.lua - per-team access by orchestration name prefix. A caller with the role
-- "team:<Prefix>" (any number of them) sees exactly the instances whose orchestration name
-- starts with one of its prefixes - in every listing, count, group-by, time series, metric,
-- tree and stuck report, because the prefix becomes a filter ANDed into the store's query -
-- and may start, cancel, raise events on and restart those instances. Purging is for
-- "team-lead:<Prefix>" only. Everything else (other teams' instances) is invisible: NOTFOUND.
--
--   duroxlua --policy scripts/policies/team.lua --user bob --role team:Payment,team:Order list
--
-- Runtime-wide metrics (get_runtime_metrics, queues, diagnostics) are denied to a team
-- member: they describe the whole store. Per-type metrics and time series count the team's
-- instances only.
local function prefixes(ctx, kind)
  local out = {}
  local head = kind .. ":"
  for _, role in ipairs(ctx.roles) do
    if role:sub(1, #head) == head and #role > #head then out[#out + 1] = role:sub(#head + 1) end
  end
  return out
end

local function owns(ctx, name, kind)
  for _, p in ipairs(prefixes(ctx, kind or "team")) do
    if name:sub(1, #p) == p then return true end
  end
  for _, p in ipairs(prefixes(ctx, "team-lead")) do
    if name:sub(1, #p) == p then return true end
  end
  return false
end

-- A query string: name STARTS_WITH 'A' OR name STARTS_WITH 'B' (quotes doubled).
local function filter_of(ctx)
  local terms = {}
  local seen = {}
  for _, kind in ipairs { "team", "team-lead" } do
    for _, p in ipairs(prefixes(ctx, kind)) do
      if not seen[p] then
        seen[p] = true
        terms[#terms + 1] = "name STARTS_WITH '" .. p:gsub("'", "''") .. "'"
      end
    end
  end
  if #terms == 0 then return nil end
  return table.concat(terms, " OR ")
end

return {
  description = "per-team access by orchestration name prefix (roles team:<Prefix>, team-lead:<Prefix>)",
  can_list_instances = function(ctx)
    local f = filter_of(ctx)
    if not f then return false, "no team role (team:<Prefix>)" end
    return f
  end,
  can_view_instance = true, -- the filter already decides
  can_view_history = true,
  can_view_metrics = true,
  can_cancel_instance = function(ctx, inst) return owns(ctx, inst.name) end,
  can_raise_event = function(ctx, inst) return owns(ctx, inst.name) end,
  can_restart_instance = function(ctx, inst) return owns(ctx, inst.name) end,
  can_start_orchestration = function(ctx, name) return owns(ctx, name), "not your team's orchestration" end,
  can_purge_instance = function(ctx, inst)
    for _, p in ipairs(prefixes(ctx, "team-lead")) do
      if inst.name:sub(1, #p) == p then return true end
    end
    return false, "purging needs team-lead:<Prefix>"
  end,
  can_manage_jobs = false,
  can_view_audit = false,
}
