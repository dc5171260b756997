-- durox.cli.purge: `duroxlua purge`, deletes terminal root instances with their whole trees
-- (Duroxide's delete_instance semantics), or with --executions prunes old executions of
-- continue-as-new instances (prune_executions), as bulk jobs. Run by the dispatcher
-- (durox.cli); shares durox.cli.bulk.
local args = require "durox.cli.args"
local bulk = require "durox.cli.bulk"
local filters = require "durox.cli.filters"

local M = {}

M.summary = "delete terminal instances with their sub-orchestrations, or prune old executions"

M.options = filters.spec({
  { section = "Purge" },
  { "force", help = "also delete running instances (a runtime mid-turn then fails its ack)" },
  { "executions", help = "prune old executions instead of deleting instances" },
  { "keep-last", arg = "N", type = "count", help = "with --executions: keep the N newest executions" },
  { "executions-before", arg = "T", type = "time",
    help = "with --executions: only executions completed before T" },
}, bulk.TARGET_OPTIONS, bulk.RUN_OPTIONS, filters.OPTIONS)

M.arguments = { { "ID", many = true, optional = true } }

M.help = args.help("duroxlua purge [options] ID...\nduroxlua purge [options] --status Completed --completed-before -30d\n" ..
  "duroxlua purge --executions [--keep-last N] [--executions-before T] ID...|filters",
  "Deletes the given root instances, or the root instances matching the filter options,\n" ..
  "each with all its sub-orchestrations, exactly as Duroxide's delete_instance does: its\n" ..
  "history, executions, queued messages, locks and key-value data, in one transaction per\n" ..
  "batch, so that Duroxide's own API then reports them gone. A sub-orchestration id is\n" ..
  "refused (purge its root); an instance whose tree still runs is refused unless --force.\n" ..
  "With --executions, deletes instead the executions that are neither current nor running\n" ..
  "(Duroxide's prune_executions), optionally keeping the --keep-last newest and only those\n" ..
  "completed before --executions-before. Runs as a resumable job.\n" ..
  "With --json: {job_id, purged_instances (or pruned_instances), failed_instances,\n" ..
  "instances_deleted, executions_deleted, events_deleted, queue_messages_deleted, ...}.",
  M.options)

function M.run(a, ctx)
  if a.executions then
    if a.force then return ctx:fail("options '--executions' and '--force' cannot be combined", 2) end
    return bulk.execute(a, ctx, {
      method = "prune_executions", verb = "prune",
      fields = { keep_last = a.keep_last, completed_before = a.executions_before },
    })
  end
  if a.keep_last or a.executions_before then
    return ctx:fail("options '--keep-last' and '--executions-before' need '--executions'", 2)
  end
  return bulk.execute(a, ctx, { method = "purge_instances", verb = "purge", fields = { force = a.force or nil } })
end

return M
