-- oncall.lua - the on-call operator: a caller with the role "oncall" sees everything, may
-- cancel instances and raise events (to unblock or stop work) and manage bulk jobs (resume,
-- stop), but may not purge, restart or start anything, and runs bulk operations of at most
-- 200 instances. Without the role: nothing is visible.
--
--   duroxlua --policy scripts/policies/oncall.lua --user carol --role oncall cancel --status Running --name Order
local function oncall(ctx)
  for _, r in ipairs(ctx.roles) do
    if r == "oncall" then return true end
  end
  return false
end

return {
  description = "on-call operator: cancel and raise, no purge",
  max_bulk_operations = 200,
  can_list_instances = function(ctx) return oncall(ctx), "the oncall role is required" end,
  can_view_instance = true,
  can_view_history = function(ctx) return oncall(ctx) end,
  can_view_metrics = function(ctx) return oncall(ctx) end,
  can_cancel_instance = function(ctx) return oncall(ctx) end,
  can_raise_event = function(ctx) return oncall(ctx) end,
  can_manage_jobs = function(ctx) return oncall(ctx) end,
  can_purge_instance = false,
  can_restart_instance = false,
  can_start_orchestration = false,
  can_view_audit = false,
}
