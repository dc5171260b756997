-- durox.cli.exit: the exit codes of every duroxlua command, in one place: the table that
-- docs/cli.md and the man page print, the code for each engine result code, and the code of a
-- bulk response (done, partly done, refused). Used by durox.cli (the dispatcher and its
-- context), durox.cli.bulk and every command that reports an outcome.
local M = {}

M.OK = 0          -- done
M.FAILED = 1      -- the store or the operation failed
M.USAGE = 2       -- the command line is wrong
M.NOTFOUND = 3    -- what was named does not exist
M.REFUSED = 4     -- refused, a conflict, or denied
M.TIMEOUT = 5     -- a wait or a lock ran out of time
M.PARTIAL = 6     -- partly done
M.INTERRUPTED = 130 -- interrupted (Ctrl-C, SIGINT)

-- The table, in order, for --help, docs/cli.md and duroxlua(1).
M.TABLE = {
  { M.OK, "done: everything asked was done (a dry run: everything would be done)" },
  { M.FAILED, "failed: the store or the operation failed (I/O, a corrupt row, not a Duroxide store, the store"
    .. " file gone, an error raised by a script)" },
  { M.USAGE, "usage: a bad option, argument, filter, query, time or page token" },
  { M.NOTFOUND, "not found: the instance, execution, job or store named does not exist (also 'wait' on an"
    .. " unknown id, and a bulk operation whose every target is unknown)" },
  { M.REFUSED, "refused: denied by access control or a read-only store, a state that does not allow it"
    .. " (already terminal, still running), a configured limit; a bulk operation whose every target is refused" },
  { M.TIMEOUT, "timeout: a wait ended before its condition was met, or the store stayed locked" },
  { M.PARTIAL, "partly done: a bulk operation (or a dry run) where some targets were done and others were"
    .. " refused or failed, or a job that was stopped" },
  { M.INTERRUPTED, "interrupted by Ctrl-C (a bulk job can be resumed with 'duroxlua jobs resume')" },
}

-- Exit code <- engine result code (the third value of a failed call).
local BY_CODE = {
  INVALID = M.USAGE,
  NOTFOUND = M.NOTFOUND,
  DENIED = M.REFUSED,
  CONFLICT = M.REFUSED,
  LIMIT = M.REFUSED,
  TIMEOUT = M.TIMEOUT,
  BUSY = M.TIMEOUT,
  ABORT = M.INTERRUPTED, -- a store call stopped by Ctrl-C (durox_interrupt)
}

-- The exit code of a failed call's code name (nil: FAILED).
function M.of(code)
  return BY_CODE[code] or M.FAILED
end

-- The exit code of a bulk response: OK when nothing matched, or every target matched was (in
-- a dry run: would be) done, sub-orchestrations skipped as reported aside; PARTIAL when some
-- were and others were not, or the job was stopped; otherwise (none was done) NOTFOUND when
-- every refusal is NOTFOUND, else REFUSED.
function M.of_bulk(r)
  local failed = r.failed_instances or {}
  local refused = #failed + #(r.no_subscription_instances or {}) + #(r.pending_instances or {})
  local done = (r.total_matched or 0) - refused - #(r.skipped_instances or {})
  if r.state == "stopped" then return M.PARTIAL end
  if (r.total_matched or 0) == 0 or (refused == 0 and done > 0) then return M.OK end
  if done > 0 then return M.PARTIAL end
  if refused == #failed then
    local all_unknown = #failed > 0
    for _, f in ipairs(failed) do all_unknown = all_unknown and f.code == "NOTFOUND" end
    if all_unknown then return M.NOTFOUND end
  end
  return M.REFUSED
end

return M
