-- run.lua - the mutation gate: plants each mutation of mutations.lua in a scratch copy of the
-- sources, rebuilds, runs the tests the mutation names and reports whether they noticed
-- (killed) or not (survived). Fails (exit 1) when any mutation survives, when one does not
-- apply (its original text is no longer found exactly once: the list must be maintained as
-- the code changes), when one does not compile, or when the unmutated copy fails its tests.
--
--   lua5.4 tests/mutation/run.lua [--work DIR] [--only PATTERNS] [--list] [--jobs N]
--
-- PATTERNS: comma-separated Lua patterns; the mutations whose id matches one of them.
-- DIR (default build-mutation/) holds the scratch copy, its build and the fixtures; the
-- fixtures are made once (tests/make_fixtures.sh) and shared by every run of the tests.
-- Needs what the test suite needs (cmake, node + tests/harness/node_modules, busted, sqlite3).
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/../.."

local opts = { work = nil, only = nil, list = false, jobs = "2" }
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--work" then opts.work = arg[i + 1]; i = i + 1
  elseif a == "--only" then opts.only = arg[i + 1]; i = i + 1
  elseif a == "--jobs" then opts.jobs = arg[i + 1]; i = i + 1
  elseif a == "--list" then opts.list = true
  else io.stderr:write("usage: lua5.4 tests/mutation/run.lua [--work DIR] [--only PATTERNS] [--list] [--jobs N]\n"); os.exit(2) end
  i = i + 1
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  return ok == true, code
end
local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return (out:gsub("%s+$", ""))
end
local function read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end
local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end
local function now() return tonumber(capture("date +%s.%N")) end

-- occurrences of plain text `pat` in s
local function count(s, pat)
  local n, from = 0, 1
  while true do
    local a, b = s:find(pat, from, true)
    if not a then return n end
    n, from = n + 1, b + 1
  end
end

root = capture("cd " .. q(root) .. " && pwd")
local mutations = dofile(root .. "/tests/mutation/mutations.lua")

-- validate the list: unique ids, every field present, original found exactly once
local problems, seen = {}, {}
for k, m in ipairs(mutations) do
  local id = m.id or ("#" .. k)
  if seen[id] then problems[#problems + 1] = id .. ": duplicate id" end
  seen[id] = true
  if not (m.file and m.from and m.to and m.tests and m.why) then
    problems[#problems + 1] = id .. ": needs id, file, from, to, tests and why"
  elseif m.from == m.to then
    problems[#problems + 1] = id .. ": from and to are the same"
  else
    local src = read(root .. "/" .. m.file)
    if not src then
      problems[#problems + 1] = id .. ": " .. m.file .. " does not exist"
    else
      local n = count(src, m.from)
      if n ~= 1 then
        problems[#problems + 1] = string.format("%s: its original text occurs %d times in %s (must be exactly once; update the mutation)", id, n, m.file)
      end
    end
  end
end

local selected = {}
for _, m in ipairs(mutations) do
  local hit = not opts.only
  for pat in (opts.only or ""):gmatch("[^,]+") do
    hit = hit or (m.id or ""):find(pat) ~= nil
  end
  if hit then selected[#selected + 1] = m end
end

if opts.list then
  for _, m in ipairs(selected) do print(string.format("%-40s %-32s %s", m.id, m.file, m.tests)) end
  print(#selected .. " mutations")
  for _, p in ipairs(problems) do print("PROBLEM " .. p) end
  os.exit(#problems == 0 and 0 or 1)
end
if #problems > 0 then
  for _, p in ipairs(problems) do io.stderr:write("mutation gate: ", p, "\n") end
  os.exit(1)
end

local work = opts.work or (root .. "/build-mutation")
sh("mkdir -p " .. q(work))
work = capture("cd " .. q(work) .. " && pwd")
local copy, build, fixtures = work .. "/src", work .. "/build", work .. "/fixtures"
local t0 = now()

-- 1. the scratch copy (the tracked files, as they are in the work tree now)
print("mutation gate: copying the sources to " .. copy)
assert(sh("rm -rf " .. q(copy) .. " && mkdir -p " .. q(copy)))
assert(sh("cd " .. q(root) .. " && git ls-files -z --cached --others --exclude-standard | "
  .. "xargs -0 -I{} sh -c 'test -e \"{}\" && echo \"{}\"' | tar -cf - -T - | tar -xf - -C " .. q(copy)),
  "copying the sources failed")
-- tar keeps the files' times: make them newer than any object a killed earlier run left built
-- from a mutated file, so the build below starts from the real sources
assert(sh("find " .. q(copy) .. " -type f -exec touch {} +"))
-- the harness's node_modules (not tracked): link it
if read(root .. "/tests/harness/node_modules/duroxide-linux-x64-gnu/package.json") then
  sh("ln -sfn " .. q(root .. "/tests/harness/node_modules") .. " " .. q(copy .. "/tests/harness/node_modules"))
end

-- 2. configure + build the unmutated copy, make the fixtures, run every test the list names
local function build_copy(log)
  return sh("cmake --build " .. q(build) .. " -j" .. opts.jobs .. " >" .. q(log) .. " 2>&1")
end
assert(sh("cmake -S " .. q(copy) .. " -B " .. q(build) .. " -DCMAKE_BUILD_TYPE=Debug -DDUROX_FIXTURES=" .. q(fixtures)
  .. " >" .. q(work .. "/configure.log") .. " 2>&1"), "cmake configure failed (see " .. work .. "/configure.log)")
assert(build_copy(work .. "/build.log"), "the unmutated copy does not build (see " .. work .. "/build.log)")
assert(sh(q(copy .. "/tests/make_fixtures.sh") .. " " .. q(fixtures) .. " >" .. q(work .. "/fixtures.log") .. " 2>&1"),
  "making the fixtures failed (see " .. work .. "/fixtures.log)")

-- The fixture setup tests (fixtures, busy_fixture, the PostgreSQL server and stores) run as
-- ctest needs them; they reuse fresh fixtures. A mutation's run stops at its first failing test
-- (killed: the rest need not run); the baseline runs every test.
local function run_tests(regex, log, stop)
  return sh("cd " .. q(build) .. " && ctest --timeout 600 " .. (stop and "--stop-on-failure " or "") .. "-R " .. q(regex)
    .. " >" .. q(log) .. " 2>&1")
end
-- the PostgreSQL server of the copy's build (a run stopped at a failure may leave it running)
local function stop_pg()
  local f = io.open(build .. "/CMakeCache.txt", "r")
  local dir = f and f:read("a"):match("DUROX_PG_DIR:PATH=([^\n]+)")
  if f then f:close() end
  if dir then sh(q(copy .. "/tests/pg_server.sh") .. " stop " .. q(dir) .. " >/dev/null 2>&1") end
end

local sets, seen_tests = {}, {}
for _, m in ipairs(selected) do
  if not seen_tests[m.tests] then seen_tests[m.tests], sets[#sets + 1] = true, m.tests end
end
for k, regex in ipairs(sets) do
  print("mutation gate: baseline (unmutated) run of " .. regex)
  local log = string.format("%s/baseline-%d.log", work, k)
  local ran = run_tests(regex, log)
  local text = read(log) or ""
  if not ran or not text:find("100%% tests passed") then
    io.stderr:write("mutation gate: the unmutated copy fails its tests (see " .. log .. ")\n")
    os.exit(1)
  end
end
local t_base = now()

-- 3. each mutation
local results, survived, broken = {}, 0, 0
for k, m in ipairs(selected) do
  local path = copy .. "/" .. m.file
  local original = assert(read(path))
  local a, b = original:find(m.from, 1, true)
  write(path, original:sub(1, a - 1) .. m.to .. original:sub(b + 1))
  local ts = now()
  local log = string.format("%s/mutation-%02d.log", work, k)
  local verdict
  if not build_copy(log .. ".build") then
    verdict = "BUILD-FAILED"
    broken = broken + 1
  elseif run_tests(m.tests, log, true) then
    verdict = "SURVIVED"
    survived = survived + 1
  elseif not (read(log) or ""):find("tests failed out of") then
    verdict = "NO-TESTS" -- ctest failed without running the tests (bad regex, crash of ctest)
    broken = broken + 1
  else
    verdict = "killed"
  end
  write(path, original)
  local line = string.format("%2d/%d %-12s %-40s %5.0fs  %s", k, #selected, verdict, m.id, now() - ts, m.file)
  print(line)
  io.stdout:flush()
  results[#results + 1] = { m = m, verdict = verdict }
end
-- leave the copy built unmutated, and no server running
build_copy(work .. "/build-final.log")
stop_pg()

local killed = #selected - survived - broken
print(string.format("mutation gate: %d mutations, %d killed, %d survived, %d did not build or run; kill rate %.1f%%; "
  .. "baseline %.0fs, mutations %.0fs, total %.0fs", #selected, killed, survived, broken,
  #selected > 0 and 100 * killed / #selected or 0, t_base - t0, now() - t_base, now() - t0))
for _, r in ipairs(results) do
  if r.verdict ~= "killed" then
    print(string.format("  %s %s (%s): %s", r.verdict, r.m.id, r.m.file, r.m.why))
  end
end
print(string.format("%d passed, %d failed", killed, survived + broken))
os.exit((survived == 0 and broken == 0) and 0 or 1)
