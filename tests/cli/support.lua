-- support.lua - what the CLI specs share: running the built duroxlua binary with exact
-- stdout, stderr and exit code, and small readers. Binary: $DUROXLUA, default build/duroxlua.
-- The specs find this file through busted's --lpath (tests/CMakeLists.txt).
local M = {}

-- busted gives each spec file its own luassert `assert`; this module needs its own
local assert = require "luassert"

M.BIN = os.getenv("DUROXLUA") or "build/duroxlua"

-- the durox module: preloaded under duroxlua, else the durox.so next to the binary
local ok, durox = pcall(require, "durox")
if not ok then
  package.cpath = (M.BIN:match("^(.*)/[^/]*$") or ".") .. "/?.so;" .. package.cpath
  durox = require "durox"
end
M.durox = durox

function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- A shell word.
function M.sh(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs the binary with argv (a list) and returns {out=, err=, code=}. $DUROX_STORE,
-- $DUROX_CONFIG and the access-control variables ($DUROX_POLICY, ...) are unset and COLUMNS is opts.columns (default 120); opts.env adds variables;
-- opts.stdin is fed to standard input (default /dev/null, not a terminal).
function M.run(argv, opts)
  opts = opts or {}
  local sh = M.sh
  local errf = os.tmpname()
  local parts = { "env", "-u", "DUROX_STORE", "-u", "DUROX_CONFIG", "-u", "DUROX_POLICY", "-u", "DUROX_USER",
                  "-u", "DUROX_ROLES", "-u", "DUROX_AUDIT_FILE", "-u", "DUROX_ACCESS_REASON", "-u", "DUROX_AUDIT_KEY",
                  "-u", "SSH_CLIENT", "COLUMNS=" .. (opts.columns or 120) }
  local keys = {}
  for k in pairs(opts.env or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. sh(opts.env[k]) end
  parts[#parts + 1] = sh(M.BIN)
  for _, a in ipairs(argv) do parts[#parts + 1] = sh(a) end
  local inf
  if opts.stdin then
    inf = os.tmpname()
    M.write_file(inf, opts.stdin)
  end
  local cmd = table.concat(parts, " ") .. " 2>" .. sh(errf) .. " <" .. sh(inf or "/dev/null")
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local _, how, code = p:close()
  local err = M.read_file(errf)
  os.remove(errf)
  if inf then os.remove(inf) end
  return { out = out, err = err, code = how == "exit" and code or 128 + code }
end

-- Asserts a run's exact exit code, stdout and stderr (nil skips a stream).
function M.expect(r, code, out, err)
  if out ~= nil then assert.are.equal(out, r.out) end
  if err ~= nil then assert.are.equal(err, r.err) end
  assert.are.equal(code, r.code)
end

-- Checks every ISO-8601 twin the CLI adds beside a time in ms (created_at ->
-- created_at_iso, timestamp_ms -> timestamp_iso) against durox.format_time of the time, and
-- removes it, so the rest compares equal to the API's own result.
function M.strip_iso(v)
  if type(v) ~= "table" then return v end
  for k, x in pairs(v) do
    if type(k) == "string" and k:sub(-4) == "_iso" then
      local base = k:sub(1, -5)
      local ms = v[base] or v[base .. "_ms"]
      assert(math.type(ms) == "integer", ("%s without its time %s"):format(k, base))
      assert.are.equal(durox.format_time(ms), x, k)
      v[k] = nil
    else
      M.strip_iso(x)
    end
  end
  return v
end

-- Decodes JSON text (checking and removing the ISO twins of times) or fails the test.
function M.json(text)
  local v, msg = durox.decode_json(text)
  assert(v ~= nil, "output is not JSON: " .. tostring(msg) .. "\n" .. text)
  return M.strip_iso(v)
end

-- The lines of text (without their newlines).
function M.lines(text)
  local t = {}
  for l in text:gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

return M
