-- breakglass.lua - break-glass administration: a caller with the role "admin" may do
-- everything - purge included - but only while it states why: the access context's reason
-- (duroxlua --access-reason "INC-1234: stuck payment batch", or context.reason) must name a
-- ticket (letters, a dash, digits) and say something. Every decision and the reason itself
-- land in the audit log (context_reason), so the use of the glass is on record. Without a
-- reason an admin is a viewer; without the role, a caller sees nothing.
--
--   duroxlua --policy scripts/policies/breakglass.lua --user root --role admin \
--            --access-reason "INC-4711: purge the poisoned batch" purge --status Failed
local function admin(ctx)
  for _, r in ipairs(ctx.roles) do
    if r == "admin" then return true end
  end
  return false
end

-- The glass is broken: an admin with a reason like "INC-4711: why".
local function broken(ctx)
  if not admin(ctx) then return false, "the admin role is required" end
  local r = ctx.reason
  if type(r) ~= "string" or not r:match("^%u+%-%d+: %S.....") then
    return false, "break-glass needs a reason: --access-reason 'TICKET-123: what and why'"
  end
  return true
end

local function view(ctx) return admin(ctx), "the admin role is required" end

return {
  description = "break-glass admin: everything, with a ticket reason",
  can_list_instances = view,
  can_view_instance = true,
  can_view_history = view,
  can_view_metrics = view,
  can_view_audit = view,
  can_cancel_instance = broken,
  can_raise_event = broken,
  can_start_orchestration = broken,
  can_purge_instance = broken,
  can_restart_instance = broken,
  can_manage_jobs = broken,
}
