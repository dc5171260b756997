-- durox.cli.hook: where the real-time commands (events, watch) deliver their items: stdout
-- (a readable line each, or JSON Lines with --json) or, with --webhook URL, batched POSTs
-- through durox.webhook (retries, signature, dead letters). A sink collects the items of one
-- batch (add) and delivers them (flush); the caller saves its cursor only after flush
-- succeeded, so the cursor never passes an item that was neither delivered nor dead-lettered.
-- Not a command itself (it has no run).
local durox = require "durox"
local follow = require "durox.cli.follow"

local M = {}

M.OPTIONS = {
  { section = "Webhook" },
  { "webhook", arg = "URL", help = "POST each batch of items as JSON to URL instead of printing them" },
  { "webhook-secret-file", arg = "FILE", group = "secret",
    help = "sign each POST with HMAC-SHA256 under the secret in FILE" },
  { "webhook-secret-env", arg = "VAR", group = "secret", help = "the same with the secret in environment variable VAR" },
  { "webhook-batch", arg = "N", type = "count", min = 1, max = 10000, help = "at most N items per POST (default 100)" },
  { "webhook-timeout", arg = "T", help = "timeout of one POST (default 10s)" },
  { "webhook-attempts", arg = "N", type = "count", min = 1, max = 100,
    help = "attempts before a batch is dead-lettered (default 8)" },
  { "webhook-header", arg = "H", multi = true, help = "an extra header 'Name: value' (repeatable)" },
  { "webhook-insecure", help = "do not verify the receiver's TLS certificate (testing only)" },
}

-- ---- stdout ----------------------------------------------------------------------------------

local Stdout = {}
Stdout.__index = Stdout

function Stdout:open() return true end

function Stdout:add(item)
  if item.kind == "heartbeat" and not self.json then return true end
  self.parts[#self.parts + 1] = self.json and follow.json_line(item) or self.render(item)
  return true
end

function Stdout:flush()
  if #self.parts > 0 then
    local ok, err = io.stdout:write(table.concat(self.parts))
    self.parts = {}
    if not ok then return nil, ("cannot write to stdout: %s"):format(err) end
  end
  io.stdout:flush()
  return true
end

-- ---- webhook ---------------------------------------------------------------------------------

local Hook = {}
Hook.__index = Hook

function Hook:open(dx)
  local ok, wh = pcall(durox.webhook, self.opts)
  if not ok then return nil, tostring(wh):gsub("^[^:\n]+:%d+: ", "") end
  self.wh = wh
  self.dx = dx
  return true
end

function Hook:add(item)
  if item.kind == "heartbeat" then return true end
  self.items[#self.items + 1] = item
  if #self.items >= self.batch then return self:flush() end
  return true
end

-- Delivers the collected items: POSTed with retries; after the last attempt they go to the
-- dead-letter table and the stream goes on.
function Hook:flush()
  if #self.items == 0 then return true end
  local items = self.items
  self.items = {}
  local res, err = self.wh:deliver(items)
  if not res then return nil, err end
  if not res.delivered then
    local ok, derr = self.dx:dead_letter { source = self.source, url = self.opts.url, items = items,
      attempts = res.attempts, error = res.error, status = res.status }
    if not ok then return nil, ("cannot dead-letter a batch that could not be delivered: %s"):format(derr) end
    io.stderr:write(("duroxlua %s: %d item(s) dead-lettered after %d attempts: %s\n"):format(self.source, #items,
      res.attempts, res.error or ("HTTP " .. tostring(res.status))))
  end
  return true
end

-- The sink the options ask for, or nil and a message.
function M.sink(a, ctx, render)
  if not a.webhook then
    for _, k in ipairs { "webhook_secret_file", "webhook_secret_env", "webhook_batch", "webhook_timeout",
      "webhook_attempts", "webhook_header", "webhook_insecure" } do
      if a[k] ~= nil then return nil, ("--%s needs --webhook"):format(k:gsub("_", "-")) end
    end
    return setmetatable({ json = ctx.json, parts = {}, render = render or follow.event_line }, Stdout)
  end
  if not a.webhook:match("^https?://[^/]") then
    return nil, ("--webhook expects an http:// or https:// URL, got '%s'"):format(a.webhook)
  end
  if a.webhook_timeout and not durox.parse_duration(a.webhook_timeout) then
    return nil, ("--webhook-timeout expects a duration like 10s, got '%s'"):format(a.webhook_timeout)
  end
  local opts = { url = a.webhook, timeout_ms = a.webhook_timeout, max_attempts = a.webhook_attempts,
    verify_tls = not a.webhook_insecure, headers = a.webhook_header }
  if a.webhook_secret_file then
    local f, err = io.open(a.webhook_secret_file, "rb")
    if not f then return nil, ("cannot read the webhook secret: %s"):format(err) end
    opts.secret = (f:read("a") or ""):gsub("%s+$", "")
    f:close()
    if opts.secret == "" then return nil, ("the webhook secret file %s is empty"):format(a.webhook_secret_file) end
  elseif a.webhook_secret_env then
    opts.secret = os.getenv(a.webhook_secret_env)
    if not opts.secret or opts.secret == "" then
      return nil, ("environment variable %s holds no webhook secret"):format(a.webhook_secret_env)
    end
  end
  return setmetatable({ opts = opts, items = {}, batch = a.webhook_batch or 100, needs_write = true,
    source = ctx.command }, Hook)
end

return M
