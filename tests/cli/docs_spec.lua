-- docs_spec.lua - the reference is generated from the help texts and stays so: docs/cli.md is
-- exactly what `duroxlua help --markdown` prints (regenerate it after changing a help text),
-- the man page renders without warnings and documents every command, option and exit status,
-- and the bash and zsh completions (from the same specs) complete commands, options and
-- option values. Binary: $DUROXLUA.
local T = require "support"
local BIN, sh, read_file = T.BIN, T.sh, T.read_file

local function out(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local s = p:read("a")
  local ok = p:close()
  return s, ok
end

local cli = require "durox.cli"

describe("docs/cli.md", function()
  it("is what 'duroxlua help --markdown' prints (regenerate: build/duroxlua help --markdown > docs/cli.md)",
    function()
      local md = T.run { "help", "--markdown" }
      assert.are.equal(0, md.code)
      assert.are.equal(md.out, read_file("docs/cli.md"))
      for _, name in ipairs(cli.commands()) do
        assert.truthy(md.out:find("\n### " .. name .. "\n", 1, true), name)
        assert.truthy(md.out:find(cli.command(name).help:gsub("\n$", ""), 1, true), name .. ": its help text")
      end
      for _, e in ipairs(require("durox.cli.exit").TABLE) do
        assert.truthy(md.out:find(("\n| %d | "):format(e[1]), 1, true), e[1])
      end
    end)
end)

describe("the man page", function()
  local page = os.tmpname()
  teardown(function() os.remove(page) end)

  it("renders without warnings and covers every command, option and exit status", function()
    local r = T.run({ "help", "--man" }, { env = { SOURCE_DATE_EPOCH = "1764547200" } })
    assert.are.equal(0, r.code)
    T.write_file(page, r.out)
    assert.truthy(r.out:find('^%.\\" Generated'))
    assert.truthy(r.out:find('\n%.TH DUROXLUA 1 "2025%-12%-01" "duroxlua '))
    local text, ok = out("MANWIDTH=100 man --warnings -l " .. sh(page) .. " 2>&1 >/dev/null")
    assert.is_true(ok)
    assert.are.equal("", text)
    local rendered = out("MANWIDTH=200 man -l " .. sh(page) .. " | col -b")
    for _, name in ipairs(cli.commands()) do
      assert.truthy(r.out:find("\n.SS " .. name .. "\n", 1, true), name)
      for _, opt in ipairs(cli.command(name).options or {}) do
        if opt[1] then assert.truthy(rendered:find("--" .. opt[1], 1, true), name .. " --" .. opt[1]) end
      end
    end
    assert.truthy(rendered:find("EXIT STATUS", 1, true))
    assert.truthy(rendered:find("partly done", 1, true))
  end)
end)

describe("the shell completions", function()
  local script = os.tmpname()
  teardown(function() os.remove(script) end)

  -- What bash completes for the words (the last one is being typed).
  local function complete(words)
    local quoted = {}
    for i, w in ipairs(words) do quoted[i] = sh(w) end
    local cmd = ("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _duroxlua; printf '%%s\\n' \"${COMPREPLY[@]}\""):format(
      sh(script), table.concat(quoted, " "), #words - 1)
    local text = out("bash -c " .. sh(cmd))
    local t = {}
    for l in text:gmatch("([^\n]+)") do t[l] = true end
    return t
  end

  it("bash: commands, their options and the values of options", function()
    local r = T.run { "help", "--completion", "bash" }
    assert.are.equal(0, r.code)
    T.write_file(script, r.out)
    assert.is_true(complete({ "duroxlua", "li" }).list)
    assert.is_true(complete({ "duroxlua", "--store", "sqlite:x.db", "ca" }).cancel)
    local c = complete { "duroxlua", "list", "--for" }
    assert.is_true(c["--format"])
    c = complete { "duroxlua", "list", "--format", "" }
    assert.is_true(c.csv and c.jsonl and c.json and c.table)
    c = complete { "duroxlua", "cancel", "--st" }
    assert.is_true(c["--status"])
    c = complete { "duroxlua", "cancel", "-s", "" }
    assert.is_true(c.Running and c.Failed and c.Pending)
    assert.is_true(complete({ "duroxlua", "cancel", "--y" })["--yes"])
    assert.is_true(complete({ "duroxlua", "jobs", "re" }).resume)
    assert.is_true(complete({ "duroxlua", "help", "qu" }).query)
    assert.is_true(complete({ "duroxlua", "--he" })["--help"])
  end)

  it("zsh: a valid #compdef script naming every command and option", function()
    local r = T.run { "help", "--completion", "zsh" }
    assert.are.equal(0, r.code)
    T.write_file(script, r.out)
    assert.truthy(r.out:find("^#compdef duroxlua\n"))
    if os.execute("command -v zsh >/dev/null 2>&1") then
      local text, ok = out("zsh -n " .. sh(script))
      assert.is_true(ok, text)
    end
    for _, name in ipairs(cli.commands()) do
      assert.truthy(r.out:find("\n    '" .. name .. ":", 1, true), name)
      assert.truthy(r.out:find("\n    " .. name .. ")\n", 1, true), name)
    end
    assert.truthy(r.out:find("'--format[table (default), json", 1, true))
    assert.truthy(r.out:find(":F:(table json jsonl csv)'", 1, true))
  end)
end)
