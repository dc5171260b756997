-- durox.cli.help: `duroxlua help [command | exit]`, the list of commands with one-line
-- summaries, the --help text of one command, or the exit statuses; and the reference built
-- from them (durox.cli.manual): --markdown (docs/cli.md), --man (duroxlua.1) and
-- --completion bash|zsh. Run by the dispatcher (durox.cli).
local args = require "durox.cli.args"

local M = {}

M.summary = "list the commands, or show the help of one command"
M.options = {
  { section = "Reference" },
  { "markdown", group = "ref", help = "print the command reference as Markdown (docs/cli.md)" },
  { "man", group = "ref", help = "print the man page duroxlua(1) (roff)" },
  { "completion", arg = "SHELL", choices = { "bash", "zsh" }, group = "ref",
    help = "print the completion script for bash or zsh" },
}
M.arguments = { { "COMMAND", optional = true } }
M.help = args.help("duroxlua help [command | exit]\nduroxlua help --markdown | --man | --completion bash|zsh",
  "Lists the commands with a one-line summary each, prints the help of one command (the same\n" ..
  "as 'duroxlua <command> --help'), or with 'exit' the exit statuses. --markdown, --man and\n" ..
  "--completion print the reference, the man page and the shell completions, generated from\n" ..
  "the same help texts.", M.options)

-- Wraps text to width columns after an indent (the first line starts at the indent too).
local function wrap(text, width, indent)
  local lines, line = {}, ""
  for word in text:gmatch("%S+") do
    if #line > 0 and #line + 1 + #word > width then
      lines[#lines + 1] = line
      line = ""
    end
    line = #line > 0 and (line .. " " .. word) or word
  end
  if #line > 0 then lines[#lines + 1] = line end
  return table.concat(lines, "\n" .. indent)
end

-- Prints the usage, one command's help or the exit statuses; with --json, the commands and
-- their summaries; or the reference.
function M.run(a, ctx)
  local cli = require "durox.cli"
  local manual = require "durox.cli.manual"
  if a.markdown then
    ctx:out(manual.markdown())
    return cli.OK
  elseif a.man then
    ctx:out(manual.man(os.getenv("SOURCE_DATE_EPOCH") and os.date("!%Y-%m-%d",
      math.tointeger(tonumber(os.getenv("SOURCE_DATE_EPOCH")))) or ""))
    return cli.OK
  elseif a.completion then
    ctx:out(manual.completion(a.completion))
    return cli.OK
  end
  if a[1] == "exit" then
    local exit = require "durox.cli.exit"
    if ctx.json then
      local t = {}
      for i, e in ipairs(exit.TABLE) do t[i] = { status = e[1], meaning = e[2] } end
      ctx:print_json { exit_statuses = t }
    else
      local o = { "Exit status of every duroxlua command:" }
      for _, e in ipairs(exit.TABLE) do
        o[#o + 1] = ("  %3d  %s"):format(e[1], wrap(e[2], 86, "       "))
      end
      ctx:out(table.concat(o, "\n") .. "\n")
    end
    return cli.OK
  end
  if a[1] then
    local cmd = cli.command(a[1])
    if not cmd then
      local close = args.suggest(a[1], cli.commands())
      return ctx:fail(("unknown command '%s'%s"):format(a[1], close and (" (did you mean '%s'?)"):format(close) or ""),
        cli.USAGE)
    end
    if ctx.json then
      ctx:print_json { name = a[1], summary = cmd.summary, help = cmd.help }
    else
      ctx:out(cmd.help)
    end
    return cli.OK
  end
  if ctx.json then
    local list = {}
    for _, name in ipairs(cli.commands()) do
      list[#list + 1] = { name = name, summary = cli.command(name).summary }
    end
    ctx:print_json { commands = list }
  else
    ctx:out(cli.usage())
  end
  return cli.OK
end

return M
