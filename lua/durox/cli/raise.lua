-- durox.cli.raise: `duroxlua raise EVENT [ID...]`, raises an external event (or, with
-- --queue, enqueues a queue message) for instances given by id or filter, as a bulk job
-- (raise_event_bulk). Run by the dispatcher (durox.cli); shares durox.cli.bulk.
local args = require "durox.cli.args"
local bulk = require "durox.cli.bulk"
local files = require "durox.cli.files"
local filters = require "durox.cli.filters"

local M = {}

M.summary = "raise an event for instances waiting on it (by id or filter), as a resumable job"

M.options = filters.spec({
  { section = "Event" },
  { "data", short = "d", arg = "TEXT", help = "the event data, raw (JSON text by convention; default null)" },
  { "data-file", arg = "FILE", help = "read the event data from FILE" },
  { "queue", help = "enqueue a queue message (dequeue_event) instead of a positional event" },
}, bulk.TARGET_OPTIONS, bulk.RUN_OPTIONS, filters.OPTIONS)

M.arguments = { { "EVENT", missing = "EVENT (the event or queue name)" }, { "ID", many = true, optional = true } }

M.help = args.help("duroxlua raise [options] EVENT ID...\nduroxlua raise [options] EVENT --status Running --name Order ...",
  "Raises the external event EVENT with --data for the given instances, or those matching\n" ..
  "the filter options, exactly as Duroxide's client raise_event does. Only running\n" ..
  "instances with an OPEN subscription for EVENT (a wait not yet satisfied, counting events\n" ..
  "already queued) receive it; the others are reported as having no open subscription and\n" ..
  "nothing is written for them (Duroxide would record the event and never deliver it).\n" ..
  "With --queue the data is enqueued as a queue message for every running target (messages\n" ..
  "wait until dequeued). Unknown and terminal instances are refused. Runs as a resumable job:\n" ..
  "each instance receives the event exactly once. Exit status 0 when every target got it, 6 when\n" ..
  "some did not, 4 when none did (see 'duroxlua help exit').\n" ..
  "With --json: the BulkEventResponse {job_id, delivered_instances, no_subscription_instances,\n" ..
  "failed_instances, total_matched, ...}.",
  M.options)

function M.run(a, ctx)
  local event = a[1]
  local data = a.data
  if a.data_file then
    if data then return ctx:fail("options '--data' and '--data-file' cannot be combined", 2) end
    -- the cap is the store's max_payload_bytes (the engine refuses more anyway)
    local dx, code = ctx:open(not a.dry_run, { max_write_share = a.no_pacing and 1 or nil })
    if not dx then return code end
    local err
    data, err = files.read(a.data_file, dx:config().max_payload_bytes, "data file")
    if not data then return ctx:fail(err, 2) end
  end
  return bulk.execute(a, ctx, {
    method = "raise_event_bulk", verb = a.queue and "enqueue" or "raise", first = 2,
    fields = { event_name = event, event_data = data, queue = a.queue or nil },
  })
end

return M
