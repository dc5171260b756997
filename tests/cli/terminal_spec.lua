-- terminal_spec.lua - duroxlua under a real terminal: tmux runs it in a pane of a given size
-- and the spec types keys (send-keys) and reads the screen (capture-pane). The REPL: line
-- editing (the Up arrow recalls the history instead of printing ^[[A), history kept across
-- sessions in $DUROX_HISTORY, Tab completion of dx: methods, durox. functions, field names
-- inside { } and instance ids, 'help', Ctrl-C discarding the line at the prompt and
-- interrupting a running call without leaving, Ctrl-D leaving with exit 0. A bulk command's
-- confirmation: a sample of the targets, then the question; 'n' does nothing, 'y' queues one
-- cancellation per target (on SQLite and on PostgreSQL, counted with the sqlite3 tool and
-- psql). top: its frame fits 80x24 (and 40x15) and 'q' quits. Uses a tmux server of its own
-- (-L), killed at the end. No fixed sleeps: after every key the spec polls the screen until
-- what it expects appears (a generous deadline, for a loaded machine), and a call to
-- interrupt prints a mark first, so Ctrl-C is sent once the call is known to run.
-- Binary: $DUROXLUA; stores: $DUROX_SCENARIO_DB, $DUROX_BUSY_DB, the PG test server.
local T = require "support"
local BIN, sh = T.BIN, T.sh
local SCENARIO_DB, BUSY_DB = os.getenv("DUROX_SCENARIO_DB"), os.getenv("DUROX_BUSY_DB")

local function have_tmux() return os.execute("command -v tmux >/dev/null 2>&1") == true end

if not (have_tmux() and SCENARIO_DB and BUSY_DB) then
  describe("duroxlua in a terminal", function() pending("needs tmux and the scenario and busy fixtures") end)
  return
end

local SOCKET = ("duroxlua-test-%d-%d"):format(os.time(), math.random(1000000))
local sessions = 0

local function tmux(args)
  local p = assert(io.popen("tmux -L " .. SOCKET .. " " .. args .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

local function sleep(ms) os.execute(("sleep %.3f"):format(ms / 1000)) end

-- A pane of w x h running cmd (then "EXIT:<status>"); returns its name.
local function start(cmd, w, h)
  sessions = sessions + 1
  local name = "s" .. sessions
  local full = ("env -u DUROX_STORE -u DUROX_CONFIG TERM=xterm %s; echo EXIT:$?; sleep 600"):format(cmd)
  tmux(("new-session -d -s %s -x %d -y %d %s"):format(name, w, h, sh(full)))
  return name
end

local function screen(name) return tmux("capture-pane -p -t " .. name) end
local function rows(name)
  local t = {}
  for l in screen(name):gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

-- How long a screen may take to show what is expected: generous, the machine may be loaded
-- (a deadline only bounds a failing test; a passing one goes on as soon as the text appears).
local DEADLINE_S = 90

-- Polls until ok(screen) holds (every 50 ms, up to DEADLINE_S); returns the screen, or fails
-- the test with what was awaited and the screen.
local function poll(name, ok, what)
  local deadline = os.time() + DEADLINE_S
  repeat
    local s = screen(name)
    if ok(s) then return s end
    sleep(50)
  until os.time() > deadline
  error(("timed out waiting for %s; the screen:\n%s"):format(what, screen(name)), 3)
end

-- Waits until the screen shows pattern (plain text unless lua is true); returns the screen.
local function wait_for(name, pattern, lua)
  return poll(name, function(s) return s:find(pattern, 1, not lua) ~= nil end, ("%q"):format(pattern))
end

-- Types text (literally) then the named keys (Enter, Up, Tab, C-c...); the caller waits for
-- their effect with wait_for.
local function type_(name, text, ...)
  if text and text ~= "" then tmux(("send-keys -t %s -l %s"):format(name, sh(text))) end
  for _, k in ipairs { ... } do tmux(("send-keys -t %s %s"):format(name, k)) end
end

-- How many times plain text occurs in s.
local function occurrences(s, text)
  local n, i = 0, 1
  while true do
    local a, b = s:find(text, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end
local function count(name, text) return occurrences(screen(name), text) end

-- Waits until text occurs at least n times on the screen.
local function wait_count(name, text, n)
  return poll(name, function(s) return occurrences(s, text) >= n end, ("%d times %q"):format(n, text))
end

-- a session that lives as long as the spec: the server would exit with its last session, and
-- a new-session racing with that exit fails
tmux("new-session -d -s keep -x 80 -y 24 'sleep 3600'")
teardown(function() tmux("kill-server") end)

-- how many Echo instances the scenario store holds (the sqlite3 tool)
local ECHO = (function()
  local p = assert(io.popen(("sqlite3 %s %s"):format(sh(SCENARIO_DB),
    sh("SELECT count(*) FROM instances WHERE orchestration_name = 'Echo'"))))
  local v = math.tointeger(tonumber(p:read("a")))
  p:close()
  return assert(v)
end)()

describe("the REPL in a terminal", function()
  local history = os.tmpname()
  local store = "sqlite:" .. SCENARIO_DB
  local cmd = ("DUROX_HISTORY=%s %s --store %s"):format(sh(history), sh(BIN), sh(store))

  teardown(function() os.remove(history) end)

  it("edits lines, recalls history, completes, helps, and survives Ctrl-C", function()
    os.remove(history)
    local s = start(cmd, 100, 40)
    wait_for(s, "durox>")
    type_(s, "x = 6 * 7", "Enter")
    wait_for(s, "durox> x = 6 * 7\ndurox>")
    type_(s, "x", "Enter")
    wait_for(s, "\n42\n")
    -- the Up arrow recalls the last line (it used to print ^[[A and fail)
    type_(s, "", "Up")
    wait_for(s, "\n42\ndurox> x")
    type_(s, "", "Enter")
    wait_count(s, "\n42\n", 2)
    assert.is_nil(screen(s):find("^[[A", 1, true))
    -- Tab completes a method, then an instance id inside quotes
    type_(s, "dx:get_orchestration_st", "Tab")
    wait_for(s, "durox> dx:get_orchestration_status")
    type_(s, '("can-don', "Tab")
    wait_for(s, 'durox> dx:get_orchestration_status("can-done-1')
    type_(s, '").status', "Enter")
    wait_for(s, 'durox> dx:get_orchestration_status("can-done-1").status\nCompleted\n')
    -- a function of the durox module, then a filter field name inside { }
    type_(s, "durox.format_ti", "Tab")
    wait_for(s, "durox> durox.format_time")
    type_(s, "(0)", "Enter")
    wait_for(s, "durox> durox.format_time(0)\n1970-01-01T00:00:00")
    type_(s, "#dx:list_instances { orchestration_na", "Tab")
    wait_for(s, "durox> #dx:list_instances { orchestration_name")
    type_(s, ' = "Echo" }', "Enter")
    wait_for(s, ('durox> #dx:list_instances { orchestration_name = "Echo" }\n%d\n'):format(ECHO))
    -- help
    type_(s, "help", "Enter")
    wait_for(s, "The duroxlua REPL")
    type_(s, "help list_instances", "Enter")
    wait_for(s, "dx:list_instances([filter] [, predicate])")
    -- Ctrl-C interrupts a running loop, and a predicate running inside a store call
    -- (each prints a mark once it runs; the mark is split in the typed line, so only the
    -- output shows it whole)
    type_(s, "io.write('spin', 'ning\\n') io.flush() while true do end", "Enter")
    wait_for(s, "\nspinning\n")
    type_(s, "", "C-c")
    wait_for(s, "interrupted\ndurox>")
    type_(s, "dx:list_instances(nil, function() io.write('in', 'side\\n') io.flush() while true do end end)", "Enter")
    wait_for(s, "\ninside\n")
    type_(s, "", "C-c")
    wait_count(s, "interrupted\n", 2)
    -- Ctrl-C at the prompt discards what was typed
    type_(s, "this is not run")
    wait_for(s, "durox> this is not run")
    type_(s, "", "C-c")
    wait_for(s, "durox> this is not run\ndurox>")
    type_(s, "1 + 1", "Enter")
    wait_for(s, "\n2\n")
    assert.is_nil(screen(s):find("syntax error", 1, true))
    -- the REPL is still the same session: x is still set
    type_(s, "x + 1", "Enter")
    wait_for(s, "\n43\n")
    type_(s, "6 * 7 + 2", "Enter")
    wait_for(s, "\n44\n")
    type_(s, "", "C-d")
    wait_for(s, "EXIT:0")
    tmux("kill-session -t " .. s)
  end)

  it("keeps the history across sessions", function()
    local s = start(cmd, 100, 20)
    wait_for(s, "durox>")
    type_(s, "", "Up")
    -- the last line of the previous session
    wait_for(s, "durox> 6 * 7 + 2")
    type_(s, "", "Enter")
    wait_for(s, "\n44\n")
  end)
end)

-- The stores the confirmation runs on: a copy of the scenario store on SQLite and (with the
-- test server) of the same scenarios on PostgreSQL. copy() gives its URL, sql(query) -> the
-- first column of every row (the sqlite3 tool, psql) and drop().
local function column(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  assert(p:close(), cmd .. ": " .. out)
  local t = {}
  for l in out:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end
local PROVIDERS = {
  { name = "SQLite", copy = function()
    local db = os.tmpname()
    assert(os.execute(("cp %s %s"):format(sh(SCENARIO_DB), sh(db))))
    return "sqlite:" .. db, function(q) return column(("sqlite3 %s %s"):format(sh(db), sh(q))) end,
      function() os.remove(db) end
  end },
}
local pg_dir = os.getenv("DUROX_PG_DIR")
local pg_port = pg_dir and io.open(pg_dir .. "/port") and T.read_file(pg_dir .. "/port"):gsub("%s+$", "")
if pg_port then
  local function pg_url(db, store)
    return ("postgresql://postgres@/%s?host=%s&port=%s%s"):format(db, pg_dir, pg_port, store and "&schema=dx" or "")
  end
  local function psql(db, q)
    return ("PGOPTIONS='-c search_path=dx' psql -X -q -A -t %s -c %s 2>&1"):format(sh(pg_url(db)), sh(q))
  end
  local copies = 0
  PROVIDERS[2] = { name = "PostgreSQL", copy = function()
    copies = copies + 1
    local name = ("durox_term_%d_%d"):format(os.time() % 100000, copies)
    -- a template copy fails while another spec is connected to the template: tried again
    local deadline = os.time() + 60
    while true do
      local p = assert(io.popen(psql("postgres", "CREATE DATABASE " .. name .. " TEMPLATE durox_scenarios")))
      local out = p:read("a")
      if p:close() then break end
      assert(out:find("being accessed by other users", 1, true) and os.time() < deadline, out)
      os.execute("sleep 0.2")
    end
    return pg_url(name, true), function(q) return column(psql(name, q)) end, function()
      os.execute(psql("postgres", "DROP DATABASE IF EXISTS " .. name .. " WITH (FORCE)") .. " >/dev/null")
    end
  end }
end

local RUNNING = "SELECT i.instance_id FROM instances i JOIN executions e ON e.instance_id = i.instance_id"
  .. " AND e.execution_id = i.current_execution_id WHERE e.status = 'Running' ORDER BY 1"
local CANCELS = "SELECT count(*) FROM orchestrator_queue WHERE CAST(work_item AS TEXT) LIKE '{\"CancelInstance\"%'"

for _, P in ipairs(PROVIDERS) do
describe("on " .. P.name .. ", a bulk command asking for confirmation in a terminal", function()
  it("shows a sample of the targets, not only the count; 'n' does nothing (exit 4), 'y' goes ahead", function()
    local url, sql, drop = P.copy()
    finally(drop)
    -- independently: the running instances, and no cancellation queued yet
    local running, n = {}, 0
    for _, id in ipairs(sql(RUNNING)) do running[id] = true; n = n + 1 end
    assert.is_true(n > 5)
    local before = tonumber(sql(CANCELS)[1])
    local cmd = ("%s --store %s cancel --status Running --reason terminal-spec"):format(sh(BIN), sh(url))
    local s = start(cmd, 100, 30)
    wait_for(s, ("Cancel %d instances? [y/N]"):format(n))
    -- five of the targets by id, then how many more
    local shown = 0
    for l in screen(s):gmatch("[^\n]+") do
      local id = l:match("^  (.-)%s*$")
      if id and running[id] then shown = shown + 1 end
    end
    assert.are.equal(5, shown, screen(s))
    wait_for(s, ("  ... and %d more\nCancel %d instances? [y/N]"):format(n - 5, n))
    type_(s, "n", "Enter")
    wait_for(s, "nothing done\nEXIT:4")
    tmux("kill-session -t " .. s)
    assert.are.equal(before, tonumber(sql(CANCELS)[1]))
    s = start(cmd, 100, 30)
    wait_for(s, "[y/N]")
    type_(s, "y", "Enter")
    wait_for(s, "EXIT:0")
    tmux("kill-session -t " .. s)
    -- one cancellation queued for each running instance (no runtime works on the copy)
    assert.are.equal(before + n, tonumber(sql(CANCELS)[1]))
  end)
end)
end

describe("top in a terminal", function()
  local cmd = ("%s --store %s top -i 300ms"):format(sh(BIN), sh("sqlite:" .. BUSY_DB))

  for _, size in ipairs { { 80, 24 }, { 40, 15 } } do
    local w, h = size[1], size[2]
    it(("fits %dx%d and quits on q"):format(w, h), function()
      local s = start(cmd, w, h)
      wait_for(s, "q quit")
      -- a whole frame after a few refreshes (the header counts them where it has room); a
      -- frame being drawn is waited out, not asserted on
      local function frame(sc)
        local r = {}
        for l in sc:gmatch("([^\n]*)\n") do r[#r + 1] = l end
        local ok = #r == h and r[1]:find("^duroxlua top") and r[h]:find("^q quit, r refresh")
        if ok and w >= 80 then ok = tonumber(r[1]:match("refresh (%d+)$") or "0") >= 2 end
        return ok and r
      end
      local r = frame(poll(s, frame, "a whole frame after two refreshes"))
      assert.are.equal(h, #r)
      -- the header on the first row and the key help on the last: nothing scrolled away
      assert.truthy(r[1]:find("^duroxlua top"), table.concat(r, "\n"))
      assert.truthy(r[h]:find("^q quit, r refresh"), table.concat(r, "\n"))
      assert.truthy(r[2]:find("^health: "), table.concat(r, "\n"))
      -- no row wrapped: the queue table starts where the frame puts it
      assert.truthy(r[6]:find("^QUEUE"), table.concat(r, "\n"))
      -- no row is wider than the pane
      for _, l in ipairs(r) do assert.is_true((utf8.len(l) or #l) <= w, l) end
      type_(s, "q")
      wait_for(s, "EXIT:0")
      tmux("kill-session -t " .. s)
    end)
  end
end)
