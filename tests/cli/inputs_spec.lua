-- inputs_spec.lua - the files and values a command is given are bounded and every message
-- about them is one printable line naming the thing and the real limit: --input-file,
-- --data-file and --ids-file read with a cap (/dev/zero used to exhaust memory), a missing
-- file named with the system's reason (it used to print ': nil'), and nothing written when
-- an input is refused. On copies of the scenario store; rows counted with the sqlite3 tool.
local T = require "support"
local sh = T.sh
local SCENARIO_DB = os.getenv("DUROX_SCENARIO_DB")

if not SCENARIO_DB then
  describe("inputs", function() pending("DUROX_SCENARIO_DB is not set") end)
  return
end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. sh(dir)))
teardown(function() os.execute("rm -rf " .. sh(dir)) end)
local n = 0
local function copy()
  n = n + 1
  local db = ("%s/i%d.db"):format(dir, n)
  assert(os.execute(("cp %s %s"):format(sh(SCENARIO_DB), sh(db))))
  return db
end
local function queued(db)
  local p = assert(io.popen(("sqlite3 %s 'SELECT count(*) FROM orchestrator_queue'"):format(sh(db))))
  local v = tonumber(p:read("a"))
  p:close()
  return v
end
local function run(argv) return T.run(argv, { columns = 200 }) end

describe("files given to commands", function()
  it("--ids-file: a missing file is named with the reason, exit 2", function()
    local r = run { "--store", "sqlite:" .. copy(), "cancel", "--ids-file", "/nonexistent/ids.txt", "--yes" }
    assert.are.equal(2, r.code)
    assert.are.equal("duroxlua cancel: cannot read ids file '/nonexistent/ids.txt': No such file or directory\n", r.err)
  end)

  it("--input-file /dev/zero stops at the store's max_payload_bytes and writes nothing", function()
    local db = copy()
    local before = queued(db)
    local r = run { "--store", "sqlite:" .. db, "start", "z-1", "Echo", "--input-file", "/dev/zero" }
    assert.are.equal(2, r.code)
    assert.are.equal("duroxlua start: input file '/dev/zero' is larger than 16777216 bytes (the limit; see"
      .. " max_payload_bytes)\n", r.err)
    assert.are.equal(before, queued(db))
    -- the limit is the configuration's
    local cfg = dir .. "/small.lua"
    T.write_file(cfg, "return { max_payload_bytes = 10 }\n")
    local data = dir .. "/data.json"
    T.write_file(data, '{"a":"0123456789"}')
    r = run { "--store", "sqlite:" .. db, "--config", cfg, "raise", "Approve", "wait-approve-1", "--data-file", data,
              "--yes" }
    assert.are.equal(2, r.code)
    assert.are.equal(("duroxlua raise: data file '%s' is larger than 10 bytes (the limit; see max_payload_bytes)\n")
      :format(data), r.err)
    assert.are.equal(before, queued(db))
  end)

  it("--ids-file /dev/zero stops at 64 MiB", function()
    local r = run { "--store", "sqlite:" .. copy(), "cancel", "--ids-file", "/dev/zero", "--dry-run" }
    assert.are.equal(2, r.code)
    assert.are.equal("duroxlua cancel: ids file '/dev/zero' is larger than 67108864 bytes (the limit)\n", r.err)
  end)

  it("a payload over the cap given inline is refused by the engine with LIMIT (exit 4)", function()
    local db = copy()
    local cfg = dir .. "/small2.lua"
    T.write_file(cfg, "return { max_payload_bytes = 4, max_id_bytes = 8 }\n")
    local r = run { "--store", "sqlite:" .. db, "--config", cfg, "start", "z-2", "Echo", '"12345"' }
    assert.are.equal(4, r.code)
    assert.are.equal("duroxlua start: input is 7 bytes; the limit is 4 (max_payload_bytes)\n", r.err)
    r = run { "--store", "sqlite:" .. db, "--config", cfg, "start", "a-very-long-id", "Echo" }
    assert.are.equal(4, r.code)
    assert.are.equal("duroxlua start: instance id is 14 bytes; the limit is 8 (max_id_bytes)\n", r.err)
  end)
end)

describe("messages", function()
  it("are one printable line, with control characters escaped", function()
    local r = run { "--store", "sqlite:" .. copy(), "show", "bad\27[2Jid\n" }
    assert.are.equal(3, r.code)
    assert.are.equal("duroxlua show: instance 'bad\\x1b[2Jid\\n' not found\n", r.err)
  end)
end)

describe("configuration files", function()
  local function with_config(text)
    local path = dir .. "/conf-" .. n .. ".lua"
    n = n + 1
    T.write_file(path, text)
    return run { "--store", "sqlite:" .. SCENARIO_DB, "--config", path, "list", "--limit", "1" }, path
  end

  it("range-check integers before narrowing (2^32 + 5 used to set 5)", function()
    local r, path = with_config("return { max_list_instances = 4294967301 }\n")
    assert.are.equal(2, r.code)
    assert.are.equal(("duroxlua list: configuration file %s: config field 'max_list_instances' out of range"
      .. " (1 to 2147483647), got 4294967301\n"):format(path), r.err)
    assert.are.equal("", r.out)
    -- the same value inside the range is taken
    r = with_config("return { max_list_instances = 7 }\n")
    assert.are.equal(0, r.code, r.err)
  end)

  it("a binary file is named as such in one printable line (it used to print its raw bytes)", function()
    -- a real precompiled chunk (it holds NUL bytes)
    local r, path = with_config(string.dump(function() return { max_attempts = 3 } end))
    assert.are.equal(2, r.code)
    assert.are.equal(("duroxlua list: cannot read configuration file: %s is not a text file (it contains NUL bytes)\n")
      :format(path), r.err)
    -- a chunk signature without NUL bytes: named, not 'attempt to load a binary chunk'
    r, path = with_config("\27Lua\84\255\254\1\2garbage\n")
    assert.are.equal(2, r.code)
    assert.are.equal(("duroxlua list: cannot read configuration file: %s is not a text file (a precompiled Lua chunk)\n")
      :format(path), r.err)
    -- control characters in a value are escaped in the message
    r, path = with_config('max_attempts = "\27[2J\7"\n')
    assert.are.equal(2, r.code)
    assert.are.equal(("duroxlua list: configuration file %s: config field 'max_attempts' expects an integer, got '?[2J?'\n")
      :format(path), r.err)
  end)
end)
