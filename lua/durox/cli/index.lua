-- durox.cli.index: `duroxlua index status|build|drop|verify`, the visibility index that
-- duroxlua keeps beside a store (docs/index.md): what it holds and where, building it (with a
-- progress bar on a terminal; Ctrl-C stops it and the next build resumes), deleting it, and
-- comparing it with the store. Run by the dispatcher (durox.cli).
local durox = require "durox"
local args = require "durox.cli.args"
local exit = require "durox.cli.exit"
local format = require "durox.format"

local M = {}

M.summary = "the visibility index: status, build, drop, verify"

M.options = {
  { section = "Options" },
  { "rebuild", help = "build: start from scratch (default: resume a build, or catch up)" },
  { "index", arg = "PATH", help = "the index file (default: under the cache directory, see docs/index.md)" },
  { "quiet", help = "build: no progress bar" },
}

M.help = args.help("duroxlua index status\n" ..
  "duroxlua index build [--rebuild]\n" ..
  "duroxlua index drop\n" ..
  "duroxlua index verify",
  "The visibility index is a file of duroxlua's own (never the runtime's) holding one summary\n" ..
  "row per instance and the metric digests, indexed for every listing order and filter. Reads\n" ..
  "use it by themselves and sync it first, so answers are the store's; --no-index skips it.\n" ..
  "  status  where it is, its state (absent, building, ready, stale, off), size and counts\n" ..
  "  build   builds it (or resumes an interrupted build, or catches up); Ctrl-C stops it\n" ..
  "  drop    deletes the file (the next read that needs it builds it again)\n" ..
  "  verify  compares every row and digest with the store; exit code 1 when they differ\n" ..
  "With --json: the status, or the verification's counts.",
  M.options)

-- "12.3 MB" (decimal units).
function M.bytes(n)
  if n < 1000 then return n .. " B" end
  for _, u in ipairs { "kB", "MB", "GB", "TB" } do
    n = n / 1000
    if n < 1000 or u == "TB" then return ("%.1f %s"):format(n, u) end
  end
end

local function show_status(ctx, st)
  if ctx.json then
    ctx:print_json(st)
    return 0
  end
  local rows = {
    { "state", st.state .. (st.reason ~= "" and ("  (" .. st.reason .. ")") or "") },
    { "file", st.path or "-" },
    { "size", st.size_bytes and M.bytes(st.size_bytes) or "-" },
    { "instances", tostring(st.instances) },
    { "history rows", tostring(st.history_rows) },
    { "built", st.built_at and durox.format_time(st.built_at) or "-" },
    { "synced", st.synced_at and durox.format_time(st.synced_at) or "-" },
  }
  if st.state == "building" then
    rows[#rows + 1] = { "build", ("%d of %d instances"):format(st.build_done, st.build_total) }
  end
  local out = {}
  for _, r in ipairs(rows) do out[#out + 1] = ("%-13s %s"):format(r[1], format.oneline(r[2])) end
  ctx:out(table.concat(out, "\n") .. "\n")
  return 0
end

function M.run(a, ctx)
  local verb = a[1]
  if verb == nil then return ctx:fail("missing subcommand (status, build, drop or verify)", 2) end
  if verb ~= "status" and verb ~= "build" and verb ~= "drop" and verb ~= "verify" then
    return ctx:fail(("unknown subcommand '%s' (expected status, build, drop or verify)"):format(verb), 2)
  end
  if a[2] then return ctx:fail(("unexpected argument '%s'"):format(a[2]), 2) end
  if a.rebuild and verb ~= "build" then return ctx:fail("--rebuild goes with build", 2) end
  if ctx.no_index then return ctx:fail("--no-index leaves no index to work on", 2) end
  -- open without the dispatcher's implicit build: these commands decide themselves
  ctx.no_index = true
  local dx, code = ctx:open(false, { index = a.index or true })
  ctx.no_index = false
  if not dx then return code end
  if verb == "status" then
    local st
    st, code = ctx:call("index_status")
    if not st then return code end
    return show_status(ctx, st)
  elseif verb == "drop" then
    local ok
    ok, code = ctx:call("index_drop")
    if not ok then return code end
    if ctx.json then ctx:print_json({ dropped = true }) else ctx:out("dropped\n") end
    return 0
  elseif verb == "verify" then
    local r
    r, code = ctx:call("index_verify")
    if not r then return code end
    if ctx.json then
      ctx:print_json(r)
    elseif r.ok then
      ctx:out(("ok: %d instances and every digest agree with the store\n"):format(r.instances_checked))
    else
      ctx:out(("DIFFERENT: %d rows differ, %d missing, %d extra, %d digests differ (of %d instances)\n"):format(
        r.mismatched, r.missing, r.extra, r.digests_mismatched, r.instances_checked))
      if r.first then ctx:out("first: " .. r.first .. "\n") end
    end
    return r.ok and 0 or 1
  end
  -- build
  local tty = durox.isatty("stderr") and not a.quiet
  local drawn, last, t0 = false, 0, durox.now()
  local pok, ok, msg, rcode = pcall(dx.index_build, dx, { rebuild = a.rebuild or false, progress = function(done, total)
    if not tty then return true end
    local now = durox.now()
    if now - last >= 100 or done >= total then
      last = now
      local frac = total > 0 and done / total or 1
      local fill = math.floor(frac * 30 + 0.5)
      local rate = now > t0 and done * 1000 // (now - t0) or 0
      io.stderr:write(("\rbuilding [%s%s] %d/%d %3d%% %d/s\27[K"):format(("#"):rep(fill), ("-"):rep(30 - fill),
        done, total, math.floor(frac * 100), rate))
      io.stderr:flush()
      drawn = true
    end
    return true
  end })
  if drawn then io.stderr:write("\r\27[K") io.stderr:flush() end
  if not pok then
    local text = tostring(ok):gsub("^[^:\n]+:%d+: ", "")
    if text:match("interrupted!$") then
      return ctx:fail("interrupted; 'duroxlua index build' resumes where it stopped", 130)
    end
    return ctx:fail(text, 2)
  end
  if not ok then return ctx:fail(msg or "failed", rcode == "INVALID" and 2 or exit.of(rcode)) end
  local st = dx:index_status()
  if ctx.json then
    st.build_ms = durox.now() - t0
    ctx:print_json(st)
  else
    ctx:out(("ready: %d instances in %s (%d ms)\n"):format(st.instances, st.path, durox.now() - t0))
  end
  return 0
end

return M
