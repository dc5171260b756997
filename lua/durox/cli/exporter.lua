-- durox.cli.exporter: `duroxlua exporter`, a Prometheus exporter: serves GET /metrics (the
-- exposition of durox.prometheus) on 127.0.0.1 by default, from a cache refreshed at most
-- once per --cache interval, each collection bounded by the store's busy timeout. One
-- connection at a time; /healthz answers "ok". Run by the dispatcher (durox.cli).
local durox = require "durox"
local args = require "durox.cli.args"
local prom = require "durox.prometheus"

local M = {}

M.summary = "serve the store's metrics to Prometheus (GET /metrics)"

M.arguments = {}

M.options = {
  { section = "Exporter" },
  { "listen", arg = "HOST:PORT", help = "where to listen (default 127.0.0.1:9470; port 0: any free port)" },
  { "cache", arg = "T", help = "serve a collection for up to T before collecting again (default 1s)" },
  { "timeout", arg = "T", help = "give up a collection that waits on a locked store after T (default 10s)" },
  { "port-file", arg = "FILE", help = "write the port listened on to FILE (with port 0)" },
}

M.help = args.help("duroxlua exporter [--listen HOST:PORT] [--cache T] [--timeout T]",
  "Serves the store's metrics in the Prometheus text format 0.0.4 at GET /metrics (the\n" ..
  "families of docs/streams.md; `duroxlua metrics --format prometheus` prints the same). A\n" ..
  "collection is reused for --cache; a scrape while the store stays locked past --timeout gets\n" ..
  "503 and duroxlua_up 0. Listens on 127.0.0.1 unless told otherwise. Runs until Ctrl-C or\n" ..
  "SIGTERM.",
  M.options)

local function parse_listen(s)
  local host, port = s:match("^%[([^%]]+)%]:(%d+)$")
  if not host then host, port = s:match("^([^:]+):(%d+)$") end
  if not host then port = s:match("^:?(%d+)$") host = "127.0.0.1" end
  port = tonumber(port)
  if not port or port > 65535 then return nil end
  return host, port
end

local function ms_of(text, def)
  if not text then return def end
  return (durox.parse_duration(text))
end

function M.run(a, ctx)
  local host, port = parse_listen(a.listen or "127.0.0.1:9470")
  if not host then return ctx:fail(("--listen expects HOST:PORT, got '%s'"):format(a.listen), 2) end
  local cache_ms = ms_of(a.cache, 1000)
  local timeout_ms = ms_of(a.timeout, 10000)
  if not cache_ms or cache_ms < 0 then return ctx:fail("--cache expects a duration like 1s", 2) end
  if not timeout_ms or timeout_ms < 1 then return ctx:fail("--timeout expects a duration like 10s", 2) end
  local dx, code = ctx:open(false, { busy_timeout_ms = timeout_ms })
  if not dx then return code end
  local srv, err = durox.http_server { host = host, port = port }
  if not srv then return ctx:fail(err) end
  if a.port_file then
    local ok, werr = require("durox.cli.follow").write_atomic(a.port_file, tostring(srv:port()) .. "\n", "port file")
    if not ok then return ctx:fail(werr) end
  end
  io.stderr:write(("duroxlua exporter: serving http://%s:%d/metrics\n"):format(host, srv:port()))
  local cached, cached_at, status = nil, -math.huge, 200
  while true do
    local ok, req = pcall(srv.accept, srv, 1000)
    if not ok then
      srv:close()
      if tostring(req):match("interrupted!$") then return require("durox.cli.exit").INTERRUPTED end
      return ctx:fail(tostring(req):gsub("^[^:\n]+:%d+: ", ""))
    end
    if req then
      local path = req.path:gsub("%?.*$", "")
      if req.method ~= "GET" and req.method ~= "HEAD" then
        req:respond(405, "only GET\n")
      elseif path == "/metrics" then
        local now = durox.now()
        if not cached or now - cached_at >= cache_ms then
          local t0 = durox.now()
          local text, cerr = prom.collect(dx, { fresh = true })
          if text then
            cached, status = text, 200
          else
            io.stderr:write(("duroxlua exporter: collection failed: %s\n"):format(cerr))
            cached, status = prom.failed(t0), 503
          end
          cached_at = durox.now()
        end
        req:respond(status, cached, prom.CONTENT_TYPE)
      elseif path == "/healthz" then
        req:respond(200, "ok\n")
      elseif path == "/" then
        req:respond(200, "duroxlua exporter: metrics at /metrics\n")
      else
        req:respond(404, "not found\n")
      end
    end
  end
end

return M
