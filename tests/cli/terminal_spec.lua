-- terminal_spec.lua - duroxlua under a real terminal: tmux runs it in a pane of a given size
-- and the spec types keys (send-keys) and reads the screen (capture-pane). The REPL: line
-- editing (the Up arrow recalls the history instead of printing ^[[A), history kept across
-- sessions in $DUROX_HISTORY, Tab completion of dx: methods and instance ids, 'help', Ctrl-C
-- discarding the line at the prompt and interrupting a running call without leaving, Ctrl-D
-- leaving with exit 0. A bulk command's confirmation: a sample of the targets, then the
-- question; 'n' does nothing. top: its frame fits 80x24 (and 40x15) and 'q' quits. Uses a tmux server
-- of its own (-L), killed at the end. Binary: $DUROXLUA; stores: $DUROX_SCENARIO_DB, $DUROX_BUSY_DB.
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

-- Waits until the screen matches pattern (plain text unless lua is true); returns the screen.
local function wait_for(name, pattern, timeout_ms, lua)
  local deadline = os.time() + (timeout_ms or 5000) / 1000 + 1
  repeat
    local s = screen(name)
    if s:find(pattern, 1, not lua) then return s end
    sleep(50)
  until os.time() > deadline
  error(("timed out waiting for %q; the screen:\n%s"):format(pattern, screen(name)), 2)
end

-- Types text (literally) then the named keys (Enter, Up, Tab, C-c...).
local function type_(name, text, ...)
  if text and text ~= "" then tmux(("send-keys -t %s -l %s"):format(name, sh(text))) end
  for _, k in ipairs { ... } do tmux(("send-keys -t %s %s"):format(name, k)) end
  sleep(150)
end

-- How many times plain text occurs on the screen.
local function count(name, text)
  local s, n, i = screen(name), 0, 1
  while true do
    local a, b = s:find(text, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

-- a session that lives as long as the spec: the server would exit with its last session, and
-- a new-session racing with that exit fails
tmux("new-session -d -s keep -x 80 -y 24 'sleep 3600'")
teardown(function() tmux("kill-server") end)

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
    type_(s, "x", "Enter")
    wait_for(s, "\n42\n")
    -- the Up arrow recalls the last line (it used to print ^[[A and fail)
    type_(s, "", "Up", "Enter")
    assert.are.equal(2, count(s, "\n42\n"))
    assert.is_nil(screen(s):find("^[[A", 1, true))
    -- Tab completes a method, then an instance id inside quotes
    type_(s, "dx:get_orchestration_st", "Tab")
    type_(s, '("can-don', "Tab")
    type_(s, '").status', "Enter")
    wait_for(s, 'durox> dx:get_orchestration_status("can-done-1").status\nCompleted\n')
    -- help
    type_(s, "help", "Enter")
    wait_for(s, "The duroxlua REPL")
    type_(s, "help list_instances", "Enter")
    wait_for(s, "dx:list_instances([filter] [, predicate])")
    -- Ctrl-C interrupts a running loop, and a predicate running inside a store call
    type_(s, "while true do end", "Enter")
    sleep(300)
    type_(s, "", "C-c")
    wait_for(s, "interrupted\ndurox>")
    type_(s, "dx:list_instances(nil, function() while true do end end)", "Enter")
    sleep(300)
    type_(s, "", "C-c")
    assert.are.equal(2, count(s, "interrupted\n"))
    -- Ctrl-C at the prompt discards what was typed
    type_(s, "this is not run", "C-c")
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
    wait_for(s, "\n44\n", 2000)
  end)
end)

describe("a bulk command asking for confirmation in a terminal", function()
  local durox = T.durox
  local db = os.tmpname()
  teardown(function() os.remove(db) end)

  it("shows a sample of the targets, not only the count; 'n' does nothing (exit 4), 'y' goes ahead", function()
    assert(os.execute(("cp %s %s"):format(sh(SCENARIO_DB), sh(db))))
    local dx = assert(durox.open("sqlite:" .. db, { readonly = true }))
    local running = {}
    for _, s in ipairs(assert(dx:list_instances { status = "Running" })) do
      running[s.instance_id] = true
    end
    dx:close()
    local n = 0
    for _ in pairs(running) do n = n + 1 end
    assert.is_true(n > 5)
    local cmd = ("%s --store %s cancel --status Running --reason terminal-spec"):format(sh(BIN), sh("sqlite:" .. db))
    local s = start(cmd, 100, 30)
    wait_for(s, "[y/N]")
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
    dx = assert(durox.open("sqlite:" .. db, { readonly = true }))
    assert.are.equal(n, #assert(dx:list_instances { status = "Running" }))
    dx:close()
    s = start(cmd, 100, 30)
    wait_for(s, "[y/N]")
    type_(s, "y", "Enter")
    wait_for(s, "EXIT:0", 10000)
    tmux("kill-session -t " .. s)
    -- the cancellations are queued for the runtime (none runs on the copy)
    dx = assert(durox.open("sqlite:" .. db, { readonly = true }))
    local j = assert(dx:list_jobs {})
    dx:close()
    assert.are.equal(1, #j)
    assert.are.equal(n, j[1].done)
  end)
end)

describe("top in a terminal", function()
  local cmd = ("%s --store %s top -i 300ms"):format(sh(BIN), sh("sqlite:" .. BUSY_DB))

  for _, size in ipairs { { 80, 24 }, { 40, 15 } } do
    local w, h = size[1], size[2]
    it(("fits %dx%d and quits on q"):format(w, h), function()
      local s = start(cmd, w, h)
      wait_for(s, "q quit")
      sleep(700) -- a few refreshes
      local r = rows(s)
      assert.are.equal(h, #r)
      -- the header on the first row and the key help on the last: nothing scrolled away
      assert.truthy(r[1]:find("^duroxlua top"), table.concat(r, "\n"))
      assert.truthy(r[h]:find("^q quit, r refresh"), table.concat(r, "\n"))
      assert.truthy(r[2]:find("^health: "), table.concat(r, "\n"))
      -- no row wrapped: the queue table starts where the frame puts it
      assert.truthy(r[6]:find("^QUEUE"), table.concat(r, "\n"))
      if w >= 80 then
        assert.truthy(r[1]:find("refresh [2-9]$") or r[1]:find("refresh %d%d+$"), "it refreshes: " .. r[1])
      end
      type_(s, "q")
      wait_for(s, "EXIT:0", 3000)
      tmux("kill-session -t " .. s)
    end)
  end
end)
