-- durox.cli.cancel: `duroxlua cancel`, cancels instances (ids or filter flags) as a bulk job
-- (cancel_instances): Duroxide's client cancel for each running one, refusing unknown and
-- terminal ones. Run by the dispatcher (durox.cli); shares durox.cli.bulk.
local args = require "durox.cli.args"
local bulk = require "durox.cli.bulk"
local filters = require "durox.cli.filters"

local M = {}

M.summary = "cancel running instances (by id or filter), as a resumable job"

M.options = filters.spec({
  { section = "Cancel" },
  { "reason", short = "r", arg = "TEXT", help = "the reason Duroxide records (output 'canceled: TEXT'; default empty)" },
}, bulk.TARGET_OPTIONS, bulk.RUN_OPTIONS, filters.OPTIONS)

M.arguments = { { "ID", many = true, optional = true } }

M.help = args.help("duroxlua cancel [options] ID...\nduroxlua cancel [options] --status Running --name Order ...",
  "Cancels the given instances, or those matching the filter options, exactly as Duroxide's\n" ..
  "own client does (a CancelInstance message; the runtime then fails each one with\n" ..
  "'canceled: <reason>' and cancels its running sub-orchestrations). Unknown and already\n" ..
  "terminal instances are refused and reported, never written to. Runs as a job journaled\n" ..
  "in the store: if it is interrupted, 'duroxlua jobs resume JOB' finishes it and every\n" ..
  "instance is cancelled exactly once. Without --yes it first shows how many instances\n" ..
  "would be cancelled, with a sample, and asks. Exit status 0 when all were cancelled, 6 when\n" ..
  "some were and others refused, 4 (3) when all were refused (unknown); see 'duroxlua help exit'.\n" ..
  "With --json: the BulkCancelResponse {job_id, cancelled_instances, failed_instances, total_matched, ...}.",
  M.options)

function M.run(a, ctx)
  return bulk.execute(a, ctx, { method = "cancel_instances", verb = "cancel", fields = { reason = a.reason } })
end

return M
