-- durox.cli.help: `duroxlua help [command]`, the list of commands with one-line summaries,
-- or the --help text of one command. Run by the dispatcher (durox.cli).
local args = require "durox.cli.args"

local M = {}

M.summary = "list the commands, or show the help of one command"
M.options = {}
M.arguments = { { "COMMAND", optional = true } }

M.help = args.help("duroxlua help [command]",
  "Lists the commands with a one-line summary each, or prints the help of one command\n" ..
  "(the same as 'duroxlua <command> --help').", M.options)

-- Prints the usage or one command's help; with --json, the commands and their summaries.
function M.run(a, ctx)
  local cli = require "durox.cli"
  if a[1] then
    local cmd = cli.command(a[1])
    if not cmd then return ctx:fail(("unknown command '%s'"):format(a[1]), cli.USAGE) end
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
