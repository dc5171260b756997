-- page-payment-failures.lua - a rules file for `duroxlua rules`: pages the on-call webhook
-- when Payment orchestrations fail with an application error more than N times in 5 minutes,
-- at most one page per 5 minutes.
--
--   DUROX_ONCALL_WEBHOOK=https://oncall.example/hook duroxlua --store URL rules scripts/rules/page-payment-failures.lua
--
-- Environment: DUROX_ONCALL_WEBHOOK (required: where pages go), DUROX_ONCALL_SECRET (signs
-- them with HMAC-SHA256, see docs/streams.md), DUROX_PAYMENT_ORCHESTRATION (default
-- "Payment"), DUROX_PAYMENT_FAILURE_THRESHOLD (N, default 5), DUROX_PAGE_WINDOW (default 5m).
local url = os.getenv("DUROX_ONCALL_WEBHOOK")
if not url or url == "" then error("set DUROX_ONCALL_WEBHOOK to the on-call webhook's URL", 0) end
local name = os.getenv("DUROX_PAYMENT_ORCHESTRATION") or "Payment"
local threshold = tonumber(os.getenv("DUROX_PAYMENT_FAILURE_THRESHOLD") or "5")
local window = os.getenv("DUROX_PAGE_WINDOW") or "5m"

rule {
  name = "page-payment-failures",
  filter = { name = name },
  events = { "Failed" },
  where = function(ev) return ev.details.failure_kind == "application" end,
  retries = 3,
  backoff = "2s",
  handler = function(ev, ctx)
    -- the failures of the window, as the store holds them now (not a counter of ours)
    local recent = assert(ctx.dx:list_instances { name = name, status = "Failed", failure_kind = "application",
      completed_after = "-" .. window })
    if #recent <= threshold or not ctx.under_limit("page", 1, window) then return end
    local ids = {}
    for i = 1, math.min(#recent, 20) do ids[i] = recent[i].instance_id end
    ctx.webhook(url, {
      summary = ("%d %s instances failed with an application error in the last %s"):format(#recent, name, window),
      orchestration = name, failures = #recent, threshold = threshold, window = window,
      latest = { instance_id = ev.instance_id, error = ev.details.error, at = ev.timestamp },
      instances = ids,
    }, { secret = os.getenv("DUROX_ONCALL_SECRET"), key = "page:" .. ev.key })
    ctx.record("page")
    ctx.log("paged: %d failures of %s in %s", #recent, name, window)
  end,
}
