-- viewer.lua - a read-only viewer: sees every instance, its history and the metrics, and
-- changes nothing (every write hook is false, so every write is DENIED and recorded).
--
--   duroxlua --policy scripts/policies/viewer.lua --user alice list
--   durox.open(url, { policy = "scripts/policies/viewer.lua", context = { user_id = "alice" } })
--
-- The job journal and the audit log stay closed to a viewer (can_manage_jobs and
-- can_view_audit are false). docs/access-control.md describes every hook.
return {
  description = "read-only viewer",
  can_list_instances = true,   -- everything is visible
  can_view_instance = true,    -- no per-row check (the fastest listing)
  can_view_history = true,
  can_view_metrics = true,
  can_cancel_instance = false,
  can_raise_event = false,
  can_start_orchestration = false,
  can_purge_instance = false,
  can_restart_instance = false,
  can_manage_jobs = false,
  can_view_audit = false,
}
