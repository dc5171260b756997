-- durox.rules: the engine of `duroxlua rules FILE.lua`, a long-running, restartable process
-- for automated remediation. A rules file declares rules with rule{...}: an instance filter,
-- event types, an optional per-event test, a handler, a rate limit and retries. Each rule has
-- its own event stream and a durable cursor in our tables ("rule:<name>"); every event a
-- handler runs for gets a run record (durox_rule_runs): "running" before the handler, then
-- "done" or "failed" together with the cursor in one transaction. So a restarted process
-- resumes each rule where it stopped and never runs a handler twice for one event: a run found
-- "running" (the process died during it) is recorded "interrupted" and not run again. Handler
-- errors are retried with backoff, then recorded with their message. Used by durox.cli.rules.
local durox = require "durox"

local M = {}

local RULE_FIELDS = { name = true, filter = true, events = true, where = true, handler = true, rate = true,
  retries = true, backoff = true, from = true, payloads = true }

local function ms(v, what)
  if v == nil then return nil end
  if math.type(v) == "integer" then return v end
  local n, err = durox.parse_duration(tostring(v))
  if not n then error(("%s: %s"):format(what, err), 0) end
  return n
end

-- Loads the rules of a file: runs it with rule() defined (and everything else of Lua and
-- durox available); returns the list of rules, or nil and a message.
function M.load(path)
  local rules, names = {}, {}
  local env = setmetatable({}, { __index = _G })
  env.durox = durox
  function env.rule(spec)
    if type(spec) ~= "table" then error("rule{...} expects a table", 2) end
    for k in pairs(spec) do
      if not RULE_FIELDS[k] then error(("rule field '%s' is unknown"):format(tostring(k)), 2) end
    end
    local name = spec.name
    if type(name) ~= "string" or not name:match("^[%w_.:-]+$") then
      error("a rule needs a name of letters, digits and _.:- (rule{name = ..., ...})", 2)
    end
    if names[name] then error(("two rules are named '%s'"):format(name), 2) end
    if type(spec.handler) ~= "function" then error(("rule '%s' has no handler function"):format(name), 2) end
    if spec.where ~= nil and type(spec.where) ~= "function" then
      error(("rule '%s': where must be a function of the event"):format(name), 2)
    end
    local r = { name = name, filter = spec.filter, events = spec.events, where = spec.where, handler = spec.handler,
      retries = spec.retries or 2, from = spec.from or "now", payloads = spec.payloads }
    if math.type(r.retries) ~= "integer" or r.retries < 0 or r.retries > 100 then
      error(("rule '%s': retries must be an integer from 0 to 100"):format(name), 2)
    end
    if r.from ~= "now" and r.from ~= "start" then error(("rule '%s': from must be \"now\" or \"start\""):format(name), 2) end
    local ok, err = pcall(function()
      r.backoff = ms(spec.backoff, ("rule '%s': backoff"):format(name)) or 1000
      if spec.rate ~= nil then
        if type(spec.rate) ~= "table" or math.type(spec.rate.max) ~= "integer" or spec.rate.max < 0 then
          error(("rule '%s': rate must be {max = N, per = duration}"):format(name), 0)
        end
        r.rate = { max = spec.rate.max, per = ms(spec.rate.per or "1h", ("rule '%s': rate.per"):format(name)) }
      end
    end)
    if not ok then error(err, 2) end
    names[name] = true
    rules[#rules + 1] = r
    return r
  end
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, err end
  local ok, rerr = pcall(chunk)
  if not ok then return nil, tostring(rerr) end
  if #rules == 0 then return nil, ("%s declares no rule (use rule{name = ..., handler = ...})"):format(path) end
  return rules
end

-- ---- running -------------------------------------------------------------------------------

local Runner = {}
Runner.__index = Runner

local function log(self, fmt, ...)
  self.logf(("rules: " .. fmt .. "\n"):format(...))
end

-- What a handler gets besides the event.
local function context(self, r)
  local ctx = { dx = self.dx, rule = r.name }
  function ctx.log(fmt, ...) log(self, "%s: %s", r.name, fmt:format(...)) end
  -- Durable rate limits of the handler's own actions, kept as runs of "<rule>#<what>":
  -- under_limit(what, max, per) is true when fewer than max were recorded in the last per;
  -- record(what) records one; allow(what, max, per) does both (for actions that cannot fail).
  function ctx.under_limit(what, max, per)
    local n = assert(self.dx:count_rule_runs(r.name .. "#" .. what, durox.now() - ms(per, "under_limit")))
    return n < max
  end
  function ctx.record(what)
    self.actions = (self.actions or 0) + 1
    assert(self.dx:record_rule_run { rule = r.name .. "#" .. what,
      key = ("%d-%d-%d"):format(durox.now(), self.pid, self.actions), state = "done", started_at = durox.now(),
      finished_at = durox.now() })
  end
  function ctx.allow(what, max, per)
    if not ctx.under_limit(what, max, per) then return false end
    ctx.record(what)
    return true
  end
  -- POSTs body (a table, as JSON) to url; raises when it cannot be delivered (so the handler
  -- is retried and then recorded as failed).
  function ctx.webhook(url, body, opts)
    opts = opts or {}
    local wh = durox.webhook { url = url, secret = opts.secret, headers = opts.headers, max_attempts = opts.max_attempts,
      timeout_ms = opts.timeout_ms }
    local payload = durox.encode_json(body)
    local res = assert(wh:post(payload, opts.key or (r.name .. ":" .. durox.now())))
    if not res.delivered then error(("webhook %s: %s"):format(url, res.error), 0) end
    return res
  end
  return ctx
end

-- Opens a runner over dx for the rules; opts: poll_ms, log (a function of a string). On failure:
-- nil, the message naming the rule, and the engine's code of the call that failed (e.g. DENIED).
function M.runner(dx, rules, opts)
  opts = opts or {}
  local self = setmetatable({ dx = dx, rules = rules, poll_ms = opts.poll_ms or 500, pid = durox.now() % 1000000,
    logf = opts.log or function(s) io.stderr:write(s) end, stats = {} }, Runner)
  for _, r in ipairs(rules) do
    local cursor, cerr, ccode = dx:get_cursor("rule:" .. r.name)
    if cerr then return nil, ("rule '%s': %s"):format(r.name, cerr), ccode end
    local req = { filter = r.filter, event_types = r.events, follow = true, no_wait = true, payloads = r.payloads }
    if cursor then req.cursor = cursor else req.from = r.from end
    local s, err, code = dx:stream_instance_events(req)
    if not s and cursor and err and err:match("cursor was issued for a different") then
      -- the rule's filter or events changed: it starts afresh from now, and says so
      log(self, "%s: its filter or event types changed; starting from now", r.name)
      req.cursor, req.from = nil, "now"
      s, err, code = dx:stream_instance_events(req)
    end
    if not s then return nil, ("rule '%s': %s"):format(r.name, err), code end
    r.stream = s
    r.ctx = context(self, r)
    self.stats[r.name] = { done = 0, failed = 0, skipped = 0, interrupted = 0 }
    if not cursor then
      -- keep the starting point so a restart before the first event begins there too
      assert(dx:record_rule_run(nil, "rule:" .. r.name, s:cursor()))
    end
  end
  return self
end

-- Handles one event of rule r (not yet handled).
local function handle(self, r, ev)
  local dx = self.dx
  local st = self.stats[r.name]
  local prior, perr = dx:get_rule_run(r.name, ev.key)
  if perr then error(perr, 0) end
  if prior and prior.state == "running" then
    -- the process stopped while the handler ran: it may have acted; never run it twice
    assert(dx:record_rule_run({ rule = r.name, key = ev.key, state = "interrupted", attempts = prior.attempts,
      error = "the rules process stopped while the handler ran; not run again", instance_id = ev.instance_id,
      event_type = ev.event_type, started_at = prior.started_at, finished_at = durox.now() }, "rule:" .. r.name,
      ev.cursor))
    st.interrupted = st.interrupted + 1
    log(self, "%s: %s was interrupted by a restart; recorded, not run again", r.name, ev.key)
    return
  end
  if prior then -- handled already (a cursor saved before a crash lags behind its run records)
    assert(dx:record_rule_run(nil, "rule:" .. r.name, ev.cursor))
    return
  end
  local now = durox.now()
  if r.rate then
    local n = assert(dx:count_rule_runs(r.name, now - r.rate.per))
    if n >= r.rate.max then
      assert(dx:record_rule_run({ rule = r.name, key = ev.key, state = "skipped", attempts = 0,
        error = ("rate limit: at most %d per %d ms"):format(r.rate.max, r.rate.per), instance_id = ev.instance_id,
        event_type = ev.event_type, started_at = now, finished_at = now }, "rule:" .. r.name, ev.cursor))
      st.skipped = st.skipped + 1
      return
    end
  end
  assert(dx:record_rule_run { rule = r.name, key = ev.key, state = "running", attempts = 0,
    instance_id = ev.instance_id, event_type = ev.event_type, started_at = now })
  local attempts, err = 0, nil
  local ok = false
  while attempts <= r.retries do
    attempts = attempts + 1
    local good, e = pcall(r.handler, ev, r.ctx)
    if good then
      ok = true
      break
    end
    err = tostring(e)
    if attempts <= r.retries then durox.sleep(math.min(r.backoff * 2 ^ (attempts - 1) // 1, 60000)) end
  end
  assert(dx:record_rule_run({ rule = r.name, key = ev.key, state = ok and "done" or "failed", attempts = attempts,
    error = not ok and err or nil, instance_id = ev.instance_id, event_type = ev.event_type, started_at = now,
    finished_at = durox.now() }, "rule:" .. r.name, ev.cursor))
  if ok then
    st.done = st.done + 1
  else
    st.failed = st.failed + 1
    log(self, "%s: handler failed for %s after %d attempts: %s", r.name, ev.key, attempts, err)
  end
end

-- One pass: every rule takes what is there now. Returns how many events were handled.
function Runner:step()
  local n = 0
  for _, r in ipairs(self.rules) do
    local advanced = false
    while true do
      local ev = r.stream:next()
      if not ev then break end -- false: nothing now (nil: never, the stream follows)
      if ev.kind == "reset" then
        log(self, "%s: the store changed under its cursor (%s: %s)", r.name, ev.reset, ev.reason)
        advanced = true
      elseif ev.kind == "event" then
        local wanted = true
        if r.where then
          local good, res = pcall(r.where, ev)
          if not good then
            log(self, "%s: where() raised for %s: %s (event skipped)", r.name, ev.key, tostring(res))
            wanted = false
          else
            wanted = res and true or false
          end
        end
        if wanted then
          handle(self, r, ev)
          n = n + 1
        else
          advanced = true
        end
      end
      if r.stream:pending() == 0 and advanced then
        -- events the rule does not act on: keep the cursor past them once per batch
        assert(self.dx:record_rule_run(nil, "rule:" .. r.name, r.stream:cursor()))
        advanced = false
      end
    end
    if advanced then assert(self.dx:record_rule_run(nil, "rule:" .. r.name, r.stream:cursor())) end
  end
  return n
end

-- Runs until stop() returns true (checked between passes) or forever.
function Runner:run(stop)
  while not (stop and stop()) do
    if self:step() == 0 then durox.sleep(self.poll_ms) end
  end
end

function Runner:close()
  for _, r in ipairs(self.rules) do
    if r.stream then r.stream:close() end
  end
end

return M
