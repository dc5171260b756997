-- durox.cli.manual: the reference of duroxlua built from what --help shows: docs/cli.md
-- (Markdown), the man page duroxlua(1) (roff) and the bash and zsh completions, all from
-- the commands' help texts and option specs (durox.cli.args keeps what each help text was
-- made from), the exit-code table (durox.cli.exit) and the conventions below. Printed by
-- `duroxlua help --markdown | --man | --completion bash|zsh`; the build generates the man
-- page and completions, and a test checks that docs/cli.md is what this prints.
local args = require "durox.cli.args"
local cli = require "durox.cli"
local exit = require "durox.cli.exit"

local M = {}

-- The conventions every command follows, as paragraphs (title, text).
M.CONVENTIONS = {
  { "The store", "Every command that reads or writes a store takes --store URL (after or before the command"
    .. " name), else $DUROX_STORE: sqlite:PATH, sqlite::memory: or postgres://user@host/db?schema=dx."
    .. " --config FILE (else $DUROX_CONFIG) is a ManagementConfig file (docs/metrics.md). Reads open the"
    .. " store read-only; only the write commands (start, cancel, raise, purge, restart, jobs resume|stop)"
    .. " open it for writing." },
  { "Output", "Text tables by default, cut to the terminal width (--wide: not cut). --json prints one JSON"
    .. " document instead; every time in it is in milliseconds since the Unix epoch with an ISO-8601 twin"
    .. " beside it (created_at and created_at_iso; timestamp_ms and timestamp_iso). list, query, history,"
    .. " stuck and jobs also take --format table|json|jsonl|csv: jsonl prints one JSON record per line, csv"
    .. " a header line and one row per record (RFC 4180: fields quoted when they hold a comma, a quote or a"
    .. " line break, quotes doubled, lines ending in CRLF; times as ISO-8601)." },
  { "Errors", "A failure is one line on standard error, 'duroxlua <command>: <message>', with control"
    .. " characters escaped. With --json (or --format json or jsonl) it is JSON on standard output instead:"
    .. " {\"error\": message, \"code\": the engine's code (NOTFOUND, DENIED, ...) or null, \"exit\": the exit"
    .. " status}." },
  { "Targets and confirmation", "The bulk commands (cancel, raise, purge, restart) take instance ids as"
    .. " arguments, --ids-file FILE (one id per line; '-' for standard input; at most 64 MiB), the filter"
    .. " options of list, or --all. Without --yes they first run a dry run, show how many instances would be"
    .. " acted on with a sample of them, and ask; without a terminal they refuse (exit 2) unless --yes."
    .. " --dry-run changes nothing. Each runs as a job journaled in the store: 'duroxlua jobs resume JOB'"
    .. " finishes an interrupted one, acting on every target exactly once. When nothing would be acted on,"
    .. " nothing is written." },
  { "Files", "--input-file and --data-file are read up to the store's max_payload_bytes (16 MiB by"
    .. " default), --ids-file up to 64 MiB; a larger file (or /dev/zero) is refused with a message naming it." },
  { "Names", "When --name matches nothing but an orchestration of another case (or a close spelling)"
    .. " exists, the command says so: \"no orchestration is named 'order'; did you mean 'Order'?\". An unknown"
    .. " command or option gets the same kind of suggestion." },
}

-- The environment variables read.
M.ENVIRONMENT = {
  { "DUROX_STORE", "the store URL when --store is not given" },
  { "DUROX_CONFIG", "the ManagementConfig file when --config is not given" },
  { "DUROX_HISTORY", "the REPL's history file (default ~/.duroxlua_history; empty: no history kept)" },
  { "DUROX_DEBUG", "set: an error inside a command prints a Lua traceback" },
  { "DUROX_NICE", "the CPU nice level (0-19) when --nice is not given: a poller that yields to the runtime" },
  { "DUROX_POLICY", "the access-control policy file when --policy is not given (docs/access-control.md)" },
  { "DUROX_USER, DUROX_ROLES", "the caller's user id and roles (comma-separated) for the policy" },
  { "DUROX_AUDIT_FILE", "the JSON Lines audit log of a read-only handle when --audit-file is not given" },
  { "DUROX_ACCESS_REASON", "why the caller acts, when --access-reason is not given (break-glass policies)" },
  { "DUROX_AUDIT_KEY", "the key of the audit log's HMAC hash chain (written and verified with it)" },
  { "SSH_CLIENT", "its client address is the caller's source_ip in the access context and audit records" },
  { "COLUMNS", "the width of tables when standard output is no terminal (default 120)" },
  { "LUA_INIT_5_4, LUA_INIT", "Lua code (or @file) run before the interpreter's script, as lua runs it" },
}

-- The commands with what their help was made from, sorted by name.
function M.commands()
  local out = {}
  for _, name in ipairs(cli.commands()) do
    local cmd = cli.command(name)
    out[#out + 1] = { name = name, cmd = cmd, doc = args.docs[cmd.help] or {} }
  end
  return out
end

-- Every option of a command (its spec and the common ones), without section entries.
local function options_of(c)
  local out = {}
  for _, list in ipairs { c.cmd.options or {}, args.COMMON } do
    for _, opt in ipairs(list) do
      if opt[1] then out[#out + 1] = opt end
    end
  end
  return out
end

-- ---- Markdown ---------------------------------------------------------------------------------

function M.markdown()
  local o = {}
  local function add(s) o[#o + 1] = s end
  add("# duroxlua — command reference")
  add("")
  add("<!-- Generated by `duroxlua help --markdown` from the commands' help texts (lua/durox/cli/*.lua),")
  add("     the exit-code table (lua/durox/cli/exit.lua) and lua/durox/cli/manual.lua; the man page and the")
  add("     shell completions come from the same. Edit those, then run")
  add("     `build/duroxlua help --markdown > docs/cli.md` (the cli_docs test fails while this file differs). -->")
  add("")
  add("`duroxlua` is a Lua 5.4 interpreter with the `durox` module built in (docs/lua-api.md), a REPL, and")
  add("ready-made commands for operators. The same reference is in the man page, `man duroxlua`.")
  add("")
  add("## The interpreter")
  add("")
  add("```text")
  add((cli.interpreter_usage():gsub("\n$", "")))
  add("```")
  add("")
  add("A plain word that is not a file is a command (`duroxlua list`); anything else is a script, run as")
  add("`lua` runs it, with `arg` and `...`. With `--store`, the global `dx` is the open store. Without a")
  add("script, on a terminal, the REPL starts: lines are edited with libedit (history in")
  add("`~/.duroxlua_history`, Tab completes `dx:` methods, `durox.` functions, field names inside `{ }` and")
  add("instance ids inside quotes), `help` explains it, Ctrl-C discards the line or stops a running call, and")
  add("Ctrl-D leaves. Standard input that is no terminal is run as a script.")
  add("")
  add("## Conventions")
  for _, c in ipairs(M.CONVENTIONS) do
    add("")
    add("**" .. c[1] .. ".** " .. c[2])
  end
  add("")
  add("## Exit status")
  add("")
  add("Every command exits with one of these (lua/durox/cli/exit.lua); `duroxlua help exit` prints them.")
  add("")
  add("| status | meaning |")
  add("|---|---|")
  for _, e in ipairs(exit.TABLE) do add(("| %d | %s |"):format(e[1], e[2])) end
  add("")
  add("`top` ends with 0 when it is left with `q` or Ctrl-C. The interpreter exits 1 when the script")
  add("raises an error, 2 for a bad option and 130 when interrupted.")
  add("")
  add("## Environment")
  add("")
  add("| variable | meaning |")
  add("|---|---|")
  for _, e in ipairs(M.ENVIRONMENT) do add(("| `%s` | %s |"):format(e[1], e[2])) end
  add("")
  add("## Commands")
  add("")
  add("```text")
  add((cli.usage():gsub("\n$", "")))
  add("```")
  for _, c in ipairs(M.commands()) do
    add("")
    add("### " .. c.name)
    add("")
    add(c.cmd.summary and (c.cmd.summary:sub(1, 1):upper() .. c.cmd.summary:sub(2) .. ".") or "")
    add("")
    add("```text")
    add((c.cmd.help:gsub("\n$", "")))
    add("```")
  end
  add("")
  add("## Adding a command")
  add("")
  add("A command is a module `lua/durox/cli/<name>.lua` (embedded at build time) that returns a table with:")
  add("")
  add("- `summary` — one line for `duroxlua help`;")
  add("- `options` — its option spec (`durox.cli.args`: `{ \"name\", short =, arg =, type = \"count\"|\"time\",")
  add("  min =, max =, choices =, multi =, split =, group =, help = }` and `{ section = \"Title\" }`); the filter")
  add("  options of list are `durox.cli.filters.OPTIONS`, the bulk ones `durox.cli.bulk.TARGET_OPTIONS` and")
  add("  `RUN_OPTIONS`, `--format` is `durox.cli.output.OPTION`. A short letter has one meaning everywhere (a")
  add("  spec giving it two raises);")
  add("- `arguments` — its positional arguments, declared (`{ { \"ID\", missing = \"instance id\" },")
  add("  { \"ID\", many = true, optional = true } }`), so that missing and unexpected ones are reported for it;")
  add("- `help = args.help(usage, description, options)` — the --help text, which this reference, the man page")
  add("  and the completions are generated from;")
  add("- `run(a, ctx)` — returns an exit status of `durox.cli.exit`. `ctx:open(write)` opens the store,")
  add("  `ctx:call(method, ...)` calls a handle method and reports a failure with the status its code maps to,")
  add("  `ctx:fail(message, status_or_code)` reports (as JSON with --json), `ctx:emit{doc =, records =,")
  add("  columns =, text =}` prints in the chosen --format, `durox.cli.bulk.execute` runs a bulk operation")
  add("  with its confirmation and progress bar.")
  add("")
  add("A command that prints a list of records takes `--format` (table, json, jsonl, csv) and prints with")
  add("`ctx:emit`; one that streams (events, watch) prints a line per item, or JSON Lines with `--json`. A")
  add("waiting command that runs out of time exits 5, whatever it waits for. Files named by options are read")
  add("with `durox.cli.files` (`read`, `read_ids`: a size cap, `-` for standard input, one message shape).")
  add("")
  add("The CLI specs check every command for `--help`, the exit statuses (tests/cli/exit_spec.lua) and the")
  add("one meaning of each short option; this file must be regenerated after a help text changes.")
  return table.concat(o, "\n") .. "\n"
end

-- ---- man page -----------------------------------------------------------------------------------

-- Text escaped for roff: backslashes, leading dots and quotes, hyphens kept literal.
local function roff(s)
  s = s:gsub("\\", "\\e"):gsub("%-", "\\-")
  s = s:gsub("\n([.'])", "\n\\&%1")
  if s:sub(1, 1) == "." or s:sub(1, 1) == "'" then s = "\\&" .. s end
  return s
end

function M.man(date)
  local durox = require "durox"
  local o = {}
  local function add(s) o[#o + 1] = s end
  add('.\\" Generated by `duroxlua help --man` from the help texts of duroxlua; do not edit.')
  add((".TH DUROXLUA 1 \"%s\" \"duroxlua %s\" \"User Commands\""):format(date or "", durox.version))
  add(".SH NAME")
  add("duroxlua \\- manage and inspect Duroxide orchestration stores (a Lua 5.4 interpreter and commands)")
  add(".SH SYNOPSIS")
  add(".B duroxlua")
  add("[\\fIoptions\\fR] [\\fIscript\\fR [\\fIargs\\fR]]")
  add(".br")
  add(".B duroxlua")
  add("[\\fB\\-\\-store\\fR \\fIURL\\fR] \\fIcommand\\fR [\\fIargs\\fR]")
  add(".SH DESCRIPTION")
  add("duroxlua is a Lua 5.4 interpreter with the durox module built in, a REPL, and ready-made commands")
  add("for operators. A plain word that is not a file is a command; anything else is a script. Without a")
  add("script on a terminal the REPL starts (line editing, history, Tab completion; 'help' explains it).")
  add(".SH OPTIONS")
  for _, opt in ipairs(cli.INTERPRETER_OPTIONS) do
    add(".TP")
    add("\\fB" .. roff(opt[1]) .. "\\fR")
    add(roff(opt[2]))
  end
  add(".SH CONVENTIONS")
  for _, c in ipairs(M.CONVENTIONS) do
    add(".SS " .. roff(c[1]))
    add(roff(c[2]))
  end
  add(".SH COMMANDS")
  for _, c in ipairs(M.commands()) do
    add(".SS " .. c.name)
    add(roff(c.cmd.summary or ""))
    add(".PP")
    add(".nf")
    for u in ((c.doc.usage or ("duroxlua " .. c.name)) .. "\n"):gmatch("(.-)\n") do add(roff(u)) end
    add(".fi")
    if c.doc.description then
      add(".PP")
      for l in (c.doc.description .. "\n"):gmatch("(.-)\n") do add(l == "" and ".PP" or roff(l)) end
    end
    for _, opt in ipairs(options_of(c)) do
      add(".TP")
      local name = (opt.short and ("\\fB\\-" .. opt.short .. "\\fR, ") or "") .. "\\fB\\-\\-" .. roff(opt[1]) .. "\\fR"
      if opt.arg then name = name .. " \\fI" .. roff(opt.arg) .. "\\fR" end
      add(name)
      add(roff(opt.help or ""))
    end
  end
  add(".SH EXIT STATUS")
  for _, e in ipairs(exit.TABLE) do
    add(".TP")
    add(("\\fB%d\\fR"):format(e[1]))
    add(roff(e[2]))
  end
  add(".SH ENVIRONMENT")
  for _, e in ipairs(M.ENVIRONMENT) do
    add(".TP")
    add("\\fB" .. roff(e[1]) .. "\\fR")
    add(roff(e[2]))
  end
  add(".SH FILES")
  add(".TP")
  add("\\fI~/.duroxlua_history\\fR")
  add("the REPL's history (see DUROX_HISTORY)")
  add(".SH SEE ALSO")
  add(".BR lua (1),")
  add(".BR sqlite3 (1),")
  add(".BR psql (1);")
  add("docs/cli.md, docs/lua-api.md and docs/query-language.md in the duroxlua sources")
  return table.concat(o, "\n") .. "\n"
end

-- ---- shell completions -----------------------------------------------------------------------------

local INTERPRETER_FLAGS = "--store --config -e -l -i -v --version -E -W -h --help"

-- The words an option's value completes to: its choices, statuses, kinds; "FILE" for files.
local function value_words(opt)
  if opt.choices then return table.concat(opt.choices, " ") end
  local n = opt[1]
  if n == "status" then return "Running Completed Failed ContinuedAsNew Unknown Pending" end
  if n == "failure-kind" then return "application cancelled poison nondeterminism infrastructure configuration" end
  if n == "series" or n == "chart" then
    return "instances_started instances_completed instances_failed instances_cancelled activities_completed"
      .. " activities_failed average_duration_ms"
  end
  if n == "group-by" then return "name status day hour parent version" end
  if n == "aggregate" then return "count avg success failure p50 p95 p99" end
  if (opt.arg or ""):match("FILE") then return "FILE" end
  return nil
end

local function bash()
  local o = {}
  local function add(s) o[#o + 1] = s end
  local names = {}
  for _, c in ipairs(M.commands()) do names[#names + 1] = c.name end
  add("# bash completion for duroxlua - generated by 'duroxlua help --completion bash'; do not edit.")
  add("_duroxlua() {")
  add('  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="" i')
  add("  for ((i = 1; i < COMP_CWORD; i++)); do")
  add('    case "${COMP_WORDS[i]}" in')
  add("      --store|--config|-e|-l) ((i++)) ;;")
  add("      -*) ;;")
  add('      *) cmd="${COMP_WORDS[i]}"; break ;;')
  add("    esac")
  add("  done")
  add('  if [[ -z "$cmd" ]]; then')
  add('    case "$prev" in --config) COMPREPLY=($(compgen -f -- "$cur")); return ;; --store|-e|-l) return ;; esac')
  add('    if [[ "$cur" == -* ]]; then')
  add(('      COMPREPLY=($(compgen -W "%s" -- "$cur"))'):format(INTERPRETER_FLAGS))
  add("    else")
  add(('      COMPREPLY=($(compgen -W "%s" -- "$cur") $(compgen -f -X "!*.lua" -- "$cur"))'):format(
    table.concat(names, " ")))
  add("    fi")
  add("    return")
  add("  fi")
  add('  local opts=""')
  add('  case "$cmd" in')
  for _, c in ipairs(M.commands()) do
    local words, values = {}, {}
    for _, opt in ipairs(options_of(c)) do
      words[#words + 1] = "--" .. opt[1]
      if opt.short then words[#words + 1] = "-" .. opt.short end
      local v = opt.arg and value_words(opt)
      if v then
        values[#values + 1] = { "--" .. opt[1] .. (opt.short and ("|-" .. opt.short) or ""), v }
      end
    end
    add(("    %s)"):format(c.name))
    add(('      opts="%s"'):format(table.concat(words, " ")))
    if #values > 0 then
      add('      case "$prev" in')
      for _, v in ipairs(values) do
        if v[2] == "FILE" then
          add(('        %s) COMPREPLY=($(compgen -f -- "$cur")); return ;;'):format(v[1]))
        else
          add(('        %s) COMPREPLY=($(compgen -W "%s" -- "$cur")); return ;;'):format(v[1], v[2]))
        end
      end
      add("      esac")
    end
    if c.name == "help" then add(('      opts="$opts %s"'):format(table.concat(names, " "))) end
    if c.name == "jobs" then add('      opts="$opts list show resume stop"') end
    add("      ;;")
  end
  add("  esac")
  add('  COMPREPLY=($(compgen -W "$opts" -- "$cur"))')
  add("}")
  add("complete -o default -F _duroxlua duroxlua")
  return table.concat(o, "\n") .. "\n"
end

-- Text for a zsh _arguments description: brackets, colons and quotes escaped.
local function zq(s)
  return (s or ""):gsub("\\", "\\\\"):gsub("[%[%]:]", "\\%0"):gsub("'", "'\\''")
end

local function zsh()
  local o = {}
  local function add(s) o[#o + 1] = s end
  add("#compdef duroxlua")
  add("# zsh completion for duroxlua - generated by 'duroxlua help --completion zsh'; do not edit.")
  add("_duroxlua() {")
  add("  local -a commands")
  add("  commands=(")
  for _, c in ipairs(M.commands()) do add(("    '%s:%s'"):format(c.name, zq(c.cmd.summary))) end
  add("  )")
  add("  local cmd i")
  add("  for (( i = 2; i < CURRENT; i++ )); do")
  add("    case ${words[i]} in")
  add("      --store|--config|-e|-l) (( i++ )) ;;")
  add("      -*) ;;")
  add("      *) cmd=${words[i]}; break ;;")
  add("    esac")
  add("  done")
  add("  if [[ -z $cmd ]]; then")
  add("    _describe -t commands 'duroxlua command' commands")
  add("    _files -g '*.lua'")
  add("    return")
  add("  fi")
  add("  case $cmd in")
  for _, c in ipairs(M.commands()) do
    add(("    %s)"):format(c.name))
    local specs = {}
    for _, opt in ipairs(options_of(c)) do
      local desc = "[" .. zq(opt.help) .. "]"
      local value = ""
      if opt.arg then
        local v = value_words(opt)
        if v == "FILE" then
          value = ":" .. zq(opt.arg) .. ":_files"
        elseif v then
          value = ":" .. zq(opt.arg) .. ":(" .. v .. ")"
        else
          value = ":" .. zq(opt.arg) .. ":"
        end
      end
      local rep = opt.multi and "*" or ""
      specs[#specs + 1] = ("'%s--%s%s%s'"):format(rep, opt[1], desc, value)
      if opt.short then specs[#specs + 1] = ("'%s-%s%s%s'"):format(rep, opt.short, desc, value) end
    end
    specs[#specs + 1] = "'*:argument:_default'"
    add("      _arguments -s \\")
    for k, sp in ipairs(specs) do add("        " .. sp .. (k < #specs and " \\" or "")) end
    add("      ;;")
  end
  add("  esac")
  add("}")
  add('_duroxlua "$@"')
  return table.concat(o, "\n") .. "\n"
end

-- The completion script for shell ("bash" or "zsh"), or nil.
function M.completion(shell)
  if shell == "bash" then return bash() end
  if shell == "zsh" then return zsh() end
  return nil
end

return M
