-- webhook_spec.lua - webhooks (durox.webhook on libcurl, `duroxlua events --webhook`) against
-- a receiver of ours on 127.0.0.1 (tests/harness/receiver.js: Node's http/https and crypto
-- check every request independently): delivery, retries after 500s, a dropped connection
-- and a timeout, Retry-After, no retry after a 4xx, dead-lettering after the attempt cap (the
-- stream goes on and the cursor passes only delivered or dead-lettered events), signature
-- verification, TLS verification on by default, and, following the live runtime through
-- failures, no event lost and none delivered under two keys.
local durox = require "durox"
local L = require "live"

if L.skip then
  describe("webhooks", function() pending("DUROX_SCENARIO_DB, DUROX_HARNESS and DUROXLUA are not set") end)
  return
end

local D, E = durox.decode_json, durox.encode_json

-- Starts the receiver; returns {port, url, log, stop = function}.
local function receiver(dir, name, opts)
  opts = opts or {}
  local log = dir .. "/" .. name .. ".jsonl"
  local out = dir .. "/" .. name .. ".out"
  local parts = { "exec node", L.q(L.harness .. "/receiver.js"), "--log", L.q(log),
    "--script", L.q(E(opts.script or {})) }
  if opts.secret then parts[#parts + 1] = "--secret " .. L.q(opts.secret) end
  if opts.cert then parts[#parts + 1] = ("--cert %s --key %s"):format(L.q(opts.cert), L.q(opts.key)) end
  local pipe = assert(io.popen(table.concat(parts, " ") .. " >" .. L.q(out) .. " 2>&1", "w"))
  local port = L.wait_until(function() return tonumber((L.read(out) or ""):match("listening (%d+)")) end, 10000,
    "the receiver to listen", 20)
  local r = { port = port, log = log, url = ("%s://127.0.0.1:%d/hook"):format(opts.cert and "https" or "http", port) }
  function r.stop() if pipe then pipe:close() pipe = nil end end
  function r.requests()
    local t = {}
    for line in (L.read(log) or ""):gmatch("[^\n]+") do t[#t + 1] = D(line) end
    return t
  end
  return r
end

local function items(n, prefix)
  local t = {}
  for i = 1, n do t[i] = { kind = "event", key = ("%s/1/%d"):format(prefix, i), instance_id = prefix, n = i } end
  return t
end

describe("durox.webhook", function()
  local dir
  setup(function() dir = L.tmpdir() end)
  teardown(function() L.cleanup(dir) end)

  it("posts a batch with its Idempotency-Key, a JSON body and a signature the receiver verifies", function()
    local r = receiver(dir, "ok", { secret = "s3cret" })
    local wh = durox.webhook { url = r.url, secret = "s3cret" }
    local batch = items(3, "a")
    local res = assert(wh:deliver(batch))
    assert.is_true(res.delivered)
    assert.are.equal(1, res.attempts)
    assert.are.equal(200, res.status)
    local got = r.requests()
    assert.are.equal(1, #got)
    local q = got[1]
    assert.are.equal("POST", q.method)
    assert.are.equal("/hook", q.path)
    assert.is_true(q.signature_ok)
    assert.are.equal("application/json", q.content_type)
    assert.are.equal("duroxlua/" .. durox.version, q.user_agent)
    local body = D(q.body)
    assert.are.equal(3, body.count)
    assert.are.equal(q.idempotency_key, body.idempotency_key)
    assert.are.equal(res.key, q.idempotency_key)
    assert.are.same({ "a/1/1", "a/1/2", "a/1/3" }, { body.items[1].key, body.items[2].key, body.items[3].key })
    -- the key of a batch depends on its items only; a single event's key is its own
    local body2, key2 = durox.batch_body(batch)
    assert.are.equal(q.body, body2)
    assert.are.equal(q.idempotency_key, key2)
    assert.matches("^batch%-%x+$", key2)
    assert.are.equal("a/1/1", select(2, durox.batch_body({ batch[1] })))
    -- the receiver's check is real: another secret fails it
    local bad = durox.webhook { url = r.url, secret = "other" }
    assert(bad:deliver(items(1, "b")))
    assert.is_false(r.requests()[2].signature_ok)
    r.stop()
  end)

  it("retries after 500s and a dropped connection with the same key and body", function()
    local r = receiver(dir, "retry", { script = { { status = 500 }, { drop = true }, { status = 503 }, { status = 200 } } })
    local wh = durox.webhook { url = r.url, backoff_ms = 20, max_attempts = 5 }
    local res = assert(wh:deliver(items(2, "c")))
    assert.is_true(res.delivered)
    assert.are.equal(4, res.attempts)
    local got = r.requests()
    assert.are.equal(4, #got)
    for i, q in ipairs(got) do
      assert.are.equal(i, q.attempt)
      assert.are.equal(got[1].idempotency_key, q.idempotency_key)
      assert.are.equal(got[1].body, q.body)
    end
    r.stop()
  end)

  it("retries a timed-out request", function()
    local r = receiver(dir, "slow", { script = { { delay_ms = 2000, status = 200 }, { status = 200 } } })
    local wh = durox.webhook { url = r.url, timeout_ms = 300, backoff_ms = 10 }
    local res = assert(wh:deliver(items(1, "t")))
    assert.is_true(res.delivered)
    assert.are.equal(2, res.attempts)
    r.stop()
  end)

  it("honours Retry-After in seconds and as an HTTP date", function()
    -- the date is 2 s after the answer; HTTP dates have whole seconds, so the wait is 1 to 2 s
    local r = receiver(dir, "ra", { script = { { status = 429, retry_after = "1" }, { status = 503, retry_after_date_s = 2 },
      { status = 200 } } })
    local wh = durox.webhook { url = r.url, backoff_ms = 1 }
    local res = assert(wh:deliver(items(1, "r")))
    assert.is_true(res.delivered)
    local got = r.requests()
    assert.are.equal(3, #got)
    assert.is_true(got[2].at - got[1].at >= 950, "waited " .. (got[2].at - got[1].at))
    assert.is_true(got[3].at - got[2].at >= 900, "waited " .. (got[3].at - got[2].at))
    r.stop()
  end)

  it("stops at the attempt cap, and at once on a 4xx that retrying cannot fix", function()
    local r = receiver(dir, "cap", { script = { { status = 500 }, { status = 500 }, { status = 500 }, { status = 400 } } })
    local wh = durox.webhook { url = r.url, backoff_ms = 1, max_attempts = 3 }
    local res = assert(wh:deliver(items(1, "x")))
    assert.is_false(res.delivered)
    assert.are.equal(3, res.attempts)
    assert.are.equal(500, res.status)
    assert.are.equal("the receiver answered HTTP 500", res.error)
    res = assert(wh:deliver(items(1, "y")))
    assert.is_false(res.delivered)
    assert.are.equal(1, res.attempts)
    assert.are.equal(400, res.status)
    assert.are.equal(4, #r.requests())
    r.stop()
    -- nobody listens any more: connection errors are retried, then given up
    res = assert(wh:deliver(items(1, "z")))
    assert.is_false(res.delivered)
    assert.are.equal(3, res.attempts)
    assert.is_nil(res.status)
    assert.matches("onnect", res.error)
  end)

  it("verifies TLS certificates unless told not to", function()
    local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
    local _, code = L.run(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout %s -out %s")
      :format(L.q(key), L.q(cert)))
    assert.are.equal(0, code)
    local r = receiver(dir, "tls", { cert = cert, key = key })
    local res = assert(durox.webhook({ url = r.url, max_attempts = 1 }):deliver(items(1, "s")))
    assert.is_false(res.delivered)
    assert.matches("certificate", res.error)
    assert.are.equal(0, #r.requests())
    res = assert(durox.webhook({ url = r.url, verify_tls = false }):deliver(items(1, "s")))
    assert.is_true(res.delivered)
    assert.are.equal(1, #r.requests())
    r.stop()
  end)

  it("raises on misuse", function()
    assert.has_error(function() durox.webhook { url = "ftp://x" } end,
      "webhook url 'ftp://x' must start with http:// or https://")
    assert.has_error(function() durox.webhook {} end, "webhook option field 'url' is required")
    assert.has_error(function() durox.webhook { url = "http://x", max_attempts = 0 } end,
      "webhook option field 'max_attempts' out of range (1 to 100), got 0")
    assert.has_error(function() durox.webhook { url = "http://x", headers = { "bad\nheader: x" } } end)
  end)
end)

for _, kind in ipairs(L.kinds()) do
describe("on " .. kind .. ", duroxlua events --webhook", function()
  local dir, S, rt, dx

  setup(function()
    dir = L.tmpdir()
    S = L.store(kind, dir, "hook")
    rt = L.start_runtime(S.target, dir .. "/live")
    dx = assert(durox.open(S.url))
  end)

  teardown(function()
    if dx then dx:close() end
    L.stop_runtime(rt)
    if S then S.drop() end
    L.cleanup(dir)
  end)

  local function run_events(...)
    local parts = { L.q(L.bin), "--store", L.q(S.url), "events" }
    for _, a in ipairs { ... } do parts[#parts + 1] = L.q(a) end
    return L.run(table.concat(parts, " "))
  end

  local function expected_keys(types)
    local want = {}
    for _, r in ipairs(S.history()) do
      if types[r.t] then want[#want + 1] = ("%s/%d/%d"):format(r.i, r.x, r.e) end
    end
    return want
  end

  it("dead-letters a batch after the cap, goes on, and keeps the cursor past it", function()
    for i = 1, 5 do assert(dx:start_orchestration(("dl-%d"):format(i), "Echo", tostring(i))) end
    for i = 1, 5 do assert(dx:wait_for_orchestration(("dl-%d"):format(i), "30s")) end
    local r = receiver(dir, "dl", { script = { { status = 500 }, { status = 500 }, { status = 200 } } })
    local cf = dir .. "/dl.cursor"
    local out, code, err = run_events("--type", "Completed", "--webhook", r.url, "--webhook-attempts", "2",
      "--webhook-batch", "2", "--cursor-file", cf)
    assert.are.equal(0, code, err)
    assert.are.equal("", out)
    assert.matches("2 item%(s%) dead%-lettered after 2 attempts: the receiver answered HTTP 500", err)
    local got = r.requests()
    -- the first batch twice (both 500), then the remaining batches once each
    assert.are.equal(got[1].body, got[2].body)
    local delivered = {}
    for i = 3, #got do
      for _, it in ipairs(D(got[i].body).items) do delivered[#delivered + 1] = it.key end
    end
    local dead = assert(dx:list_dead_letters())
    assert.are.equal(1, #dead)
    assert.are.same({ source = "events", url = r.url, attempts = 2, status = 500, items = 2,
      key = got[1].idempotency_key, payload = got[1].body }, { source = dead[1].source, url = dead[1].url,
      attempts = dead[1].attempts, status = dead[1].status, items = dead[1].items, key = dead[1].key,
      payload = dead[1].payload })
    local all = {}
    for _, it in ipairs(D(dead[1].payload).items) do all[#all + 1] = it.key end
    for _, k in ipairs(delivered) do all[#all + 1] = k end
    assert.are.same(expected_keys { OrchestrationCompleted = true }, all)
    -- the cursor passed everything: a second run delivers nothing
    local before = #r.requests()
    out, code = run_events("--type", "Completed", "--webhook", r.url, "--cursor-file", cf)
    assert.are.equal(0, code)
    assert.are.equal(before, #r.requests())
    r.stop()
  end)

  it("watch --webhook posts every transition of the watched instances, signed, once each", function()
    local r = receiver(dir, "watch", { secret = "w4tch", script = { { status = 503 } } })
    local ids = { "wh-w-1", "wh-w-2" }
    local errf = dir .. "/watch.err"
    local p = L.spawn(("DUROX_WH_SECRET=w4tch %s --store %s watch %s %s --webhook %s --webhook-secret-env DUROX_WH_SECRET"
      .. " --poll 20ms --timeout 120s 2>%s"):format(L.q(L.bin), L.q(S.url), ids[1], ids[2], L.q(r.url), L.q(errf)))
    -- the watch has reported both as NotFound before they start
    L.wait_until(function()
      local n = 0
      for _, q in ipairs(r.requests()) do
        for _, it in ipairs(D(q.body).items) do if it.kind == "change" and it.initial then n = n + 1 end end
      end
      return n >= 2
    end, 60000, "the initial states", 50)
    assert(dx:start_orchestration(ids[1], "Echo", '"a"'))
    assert(dx:start_orchestration(ids[2], "Sequence", '{"value":3}'))
    local ok = L.wait_exit(p)
    assert.is_true(ok, L.read(errf))
    local got, by_key, seq = r.requests(), {}, {}
    assert.is_true(#got >= 2)
    assert.are.equal(got[1].body, got[2].body) -- the 503 retried with the same body and key
    assert.are.equal(got[1].idempotency_key, got[2].idempotency_key)
    for i, q in ipairs(got) do
      assert.is_true(q.signature_ok, "signature of request " .. i)
      if i > 1 then
        for _, it in ipairs(D(q.body).items) do
          if it.kind == "change" and (it.initial or it.old_status ~= it.new_status) then
            local k = ("%s %s>%s"):format(it.instance_id, tostring(it.old_status), it.new_status)
            assert.is_nil(by_key[k], "a transition posted twice: " .. k)
            by_key[k] = true
            seq[it.instance_id] = (seq[it.instance_id] or "") .. (seq[it.instance_id] and " " or "") .. it.new_status
          end
        end
      end
    end
    -- every transition, in order, from the initial state on
    for _, id in ipairs(ids) do assert.are.equal("NotFound Running Completed", seq[id], id) end
    r.stop()
  end)

  it("follows the runtime through failures: no event lost, none under two keys", function()
    local script = {}
    for i = 1, 12 do script[i] = (i % 4 == 1) and { drop = true } or (i % 4 == 2) and { status = 503 } or { status = 200 } end
    local r = receiver(dir, "live", { script = script, secret = "k" })
    local secret = dir .. "/secret"
    L.write(secret, "k\n")
    local cf = dir .. "/live.cursor"
    local follower = L.spawn(("%s --store %s events --follow --webhook %s --webhook-secret-file %s --webhook-batch 7"
      .. " --cursor-file %s --poll 20ms --timeout 60s"):format(L.q(L.bin), L.q(S.url), L.q(r.url),
      L.q(secret), L.q(cf)))
    L.wait_until(function() return L.read(cf) end, 10000, "the follower to save its first cursor", 20)
    local ids = {}
    for i = 1, 40 do
      ids[i] = ("wh-%03d"):format(i)
      assert(dx:start_orchestration(ids[i], "Sequence", ('{"value":%d}'):format(i)))
    end
    assert(dx:wait_for_instances { instances = ids, timeout = "60s" })
    local want = {}
    local keep = { OrchestrationStarted = true, OrchestrationCompleted = true, ActivityCompleted = true }
    for _, r2 in ipairs(S.history()) do
      if r2.i:sub(1, 3) == "wh-" and keep[r2.t] then want[("%s/%d/%d"):format(r2.i, r2.x, r2.e)] = true end
    end
    local function seen()
      local keys, content = {}, {}
      for _, q in ipairs(r.requests()) do
        assert.is_true(q.signature_ok)
        if q.action.status == 200 or q.action.status == nil then
          for _, it in ipairs(D(q.body).items) do
            if it.kind == "event" then
              local id = ("%s|%d|%d|%s"):format(it.instance_id, it.execution_id, it.event_id, it.event_type)
              assert.is_true(content[it.key] == nil or content[it.key] == id, "two events under key " .. it.key)
              content[it.key] = id
              keys[it.key] = true
            end
          end
        end
      end
      return keys
    end
    L.wait_until(function()
      local keys = seen()
      for k in pairs(want) do if not keys[k] then return false end end
      return true
    end, 30000, "every event to reach the receiver", 100)
    L.kill(follower, "TERM")
    L.wait_exit(follower)
    assert.are.equal(0, #assert(dx:list_dead_letters { source = "events" }) - 1) -- only the earlier test's
    r.stop()
  end)
end)
end
