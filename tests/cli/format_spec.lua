-- format_spec.lua - busted spec of the pure-Lua helpers behind the duroxlua commands:
-- durox.format (times, durations, UTF-8 width and truncation, tables), durox.cli.args (the
-- option parser) and durox.pretty (the REPL printer), run in-process. Needs the durox
-- module: run it with duroxlua, or with lua5.4 and build/durox.so on package.cpath.
local BIN = os.getenv("DUROXLUA") or "build/duroxlua"
if not pcall(require, "durox") then
  package.cpath = (BIN:match("^(.*)/[^/]*$") or ".") .. "/?.so;" .. package.cpath
end
local durox = require "durox"
local format = require "durox.format"
local args = require "durox.cli.args"
local pretty = require "durox.pretty"

describe("durox.format", function()
  it("renders times in ISO-8601 UTC", function()
    assert.are.equal("2024-01-31T12:00:05Z", format.iso(1706702405250))
    assert.are.equal("2024-01-31T12:00:05.250Z", format.iso_ms(1706702405250))
    assert.are.equal("1970-01-01T00:00:00Z", format.iso(0))
    assert.are.equal("-", format.iso(nil))
    assert.are.equal("-", format.iso_ms(nil))
  end)

  it("renders durations and relative times", function()
    assert.are.equal("250ms", format.duration(250))
    assert.are.equal("3s", format.duration(3000))
    assert.are.equal("3m 20s", format.duration(200000))
    assert.are.equal("59m", format.duration(59 * 60000 + 59000))
    assert.are.equal("2h", format.duration(7200000))
    assert.are.equal("2h 5m", format.duration(7500000))
    assert.are.equal("15h", format.duration(15 * 3600000 + 60000))
    assert.are.equal("3d 4h", format.duration((3 * 24 + 4) * 3600000))
    assert.are.equal("12d", format.duration(12 * 86400000 + 3600000))
    local now = 1706702405000
    assert.are.equal("3m ago", format.relative(now - 180000, now))
    assert.are.equal("in 2h", format.relative(now + 7200000, now))
    assert.are.equal("now", format.relative(now + 400, now))
  end)

  it("counts characters and display columns in UTF-8", function()
    assert.are.equal(8, format.len("ünï-日本-✓"))
    assert.are.equal(10, format.width("ünï-日本-✓")) -- 日 and 本 take two columns
    assert.are.equal(3, format.width("e\u{301}x\u{200B}y")) -- combining accent and zero-width space
    assert.are.equal(3, format.len("a\xffb")) -- an invalid byte counts as one character
    assert.are.equal(3, format.width("a\xffb"))
  end)

  it("truncates by display width with an ellipsis, never splitting a character", function()
    assert.are.equal("abc", format.truncate("abc", 3))
    assert.are.equal("ab…", format.truncate("abcd", 3))
    assert.are.equal("ünï…", format.truncate("ünïcode", 4))
    assert.are.equal("a日…", format.truncate("a日本語", 4))
    assert.are.equal("a…", format.truncate("a日本語", 3)) -- 日 would not fit beside the ellipsis
    assert.are.equal("…", format.truncate("abc", 1))
    assert.are.equal("", format.truncate("abc", 0))
    assert.are.equal("a…", format.truncate("a\xff\xfeb", 2))
  end)

  it("escapes control characters onto one line", function()
    assert.are.equal("a\\nb\\tc\\x1b", format.oneline("a\nb\tc\27"))
    assert.are.equal("日本", format.oneline("日本"))
  end)

  it("pluralises counts", function()
    assert.are.equal("1 instance", format.count(1, "instance"))
    assert.are.equal("0 instances", format.count(0, "instance"))
    assert.are.equal("2 activities", format.count(2, "activity", "activities"))
  end)

  it("aligns tables by display width and shrinks them to fit", function()
    local cols = { { title = "ID" }, { title = "N", align = "right" }, { title = "NOTE" } }
    local rows = { { "日本", "1", "x" }, { "abcdef", "100", "a long note here" } }
    assert.are.equal(table.concat({
      "ID        N  NOTE",
      "日本      1  x",
      "abcdef  100  a long note here",
    }, "\n") .. "\n", format.table(cols, rows))
    -- 20 columns: NOTE (the widest) shrinks first
    assert.are.equal(table.concat({
      "ID        N  NOTE",
      "日本      1  x",
      "abcdef  100  a long…",
    }, "\n") .. "\n", format.table(cols, rows, 20))
    -- a higher shrink priority goes first, down to its minimum
    cols[1].shrink, cols[1].min = 2, 3
    assert.are.equal(table.concat({
      "ID     N  NOTE",
      "日…    1  x",
      "ab…  100  a long note h…",
    }, "\n") .. "\n", format.table(cols, rows, 24))
  end)

  it("renders instance summaries", function()
    local s = { instance_id = "a", orchestration_name = "N", status = "Failed", failure_kind = "cancelled",
                created_at = 0, updated_at = 1000, execution_count = 2, parent_instance = "p" }
    assert.are.same({ "a", "N", "-", "Failed (cancelled)", "1970-01-01T00:00:00Z", "1970-01-01T00:00:01Z", "2", "p" },
      format.summary_cells(s))
  end)
end)

describe("durox.cli.args", function()
  local spec = {
    { "status", short = "s", arg = "S", multi = true, split = true },
    { "limit", short = "n", arg = "N", type = "count", min = 1 },
    { "since", arg = "T", type = "time" },
    { "order", arg = "K", choices = { "a", "b" } },
    { "all" },
    { "wide", short = "w" },
    { "asc", group = "dir" },
    { "desc", group = "dir" },
  }

  it("parses long and short options, values, repeats and positionals", function()
    local r = assert(args.parse({ "cmd", "x", "--status", "A,B", "-s", "C", "--limit=5", "-wn7", "--all",
      "--since", "-24h", "--", "--not-an-option" }, 2, spec))
    assert.are.same({ "A", "B", "C" }, r.status)
    assert.are.equal(7, r.limit)
    assert.is_true(r.wide)
    assert.is_true(r.all)
    assert.are.equal("-24h", r.since)
    assert.are.same({ "x", "--not-an-option" }, { r[1], r[2] })
    -- -h anywhere wins over every other argument
    assert.are.same({ help = true }, assert(args.parse({ "--json", "--bogus", "x", "-h" }, 1, spec, {})))
    r = assert(args.parse({ "--json", "--store", "sqlite::memory:" }, 1, spec))
    assert.is_true(r.json)
    assert.are.equal("sqlite::memory:", r.store)
  end)

  it("reports every error as one line", function()
    local function err(argv) return select(2, args.parse(argv, 1, spec)) end
    assert.are.equal("unknown option '--nope'", err { "--nope" })
    assert.are.equal("unknown option '-q'", err { "-wq" })
    assert.are.equal("option '--limit' needs a value (N)", err { "--limit" })
    assert.are.equal("option '-n' needs a value (N)", err { "-n" })
    assert.are.equal("option '--limit' expects a non-negative integer, got '1.5'", err { "--limit", "1.5" })
    assert.are.equal("option '--limit' must be at least 1", err { "-n0" })
    assert.are.equal("option '--all' takes no value", err { "--all=1" })
    assert.are.equal("option '--order' expects a or b, got 'c'", err { "--order", "c" })
    assert.are.equal("options '--asc' and '--desc' cannot be combined", err { "--asc", "--desc" })
    assert.truthy(err { "--since", "soon" }:find("^option '%-%-since': invalid time 'soon'"))
  end)

  it("builds the help text from the spec", function()
    local help = args.help("duroxlua x [options] ID", "Does x.", {
      { section = "Things" },
      { "limit", short = "n", arg = "N", help = "at most N" },
      { "all", help = "everything" },
    })
    assert.are.equal(table.concat({
      "usage: duroxlua x [options] ID",
      "",
      "Does x.",
      "",
      "Things:",
      "  -n, --limit N             at most N",
      "      --all                 everything",
      "",
      "Common options:",
      "      --json                print one JSON document instead of text",
      "      --store URL           the store to read (default: the global --store, then $DUROX_STORE)",
      "      --config FILE         ManagementConfig file (default: the global --config, then $DUROX_CONFIG)",
      "      --no-index            read the store itself, without the visibility index (docs/index.md)",
      "  -h, --help                show this help",
      "",
      "Access control (docs/access-control.md):",
      "      --policy FILE         access-control policy (default: the global --policy, then $DUROX_POLICY)",
      "      --user NAME           the caller's user id for the policy (default: $DUROX_USER)",
      "      --role R1,R2          the caller's roles, repeatable (default: $DUROX_ROLES)",
      "      --audit-file FILE     JSON Lines audit log when the store is read-only (default: $DUROX_AUDIT_FILE)",
      "      --access-reason TEXT  why you act, for break-glass policies (default: $DUROX_ACCESS_REASON)",
    }, "\n") .. "\n", help)
  end)
end)

describe("durox.pretty", function()
  it("prints scalars like print, strings unquoted at the top", function()
    assert.are.equal("plain", pretty.tostring("plain"))
    assert.are.equal("42", pretty.tostring(42))
    assert.are.equal("1.5", pretty.tostring(1.5))
    assert.are.equal("nil", pretty.tostring(nil))
    assert.are.equal("null", pretty.tostring(durox.null))
  end)

  it("prints tables as sorted trees with quoted strings and annotated timestamps", function()
    assert.are.equal('{ 1, "two", 3.0 }', pretty.tostring({ 1, "two", 3.0 }, 80))
    assert.are.equal(table.concat({
      "{",
      "  true,",
      '  ["a b"] = "x\\ny",',
      '  ["end"] = 1,',
      "  fire_at = 1706702405250, -- 2024-01-31T12:00:05.250Z",
      "  nested = { k = false },",
      "  z = {},",
      "}",
    }, "\n"), pretty.tostring({ [1] = true, ["a b"] = "x\ny", ["end"] = 1, fire_at = 1706702405250,
      nested = { k = false }, z = {} }, 80))
    -- durations ending in _ms are not taken for timestamps
    assert.are.equal("{ delay_ms = 3600000 }", pretty.tostring({ delay_ms = 3600000 }, 80))
  end)

  it("guards cycles and depth", function()
    local t = { name = "t" }
    t.me = t
    assert.are.equal('{\n  me = <cycle>,\n  name = "t",\n}', pretty.tostring(t, 80))
    local deep = {}
    local cur = deep
    for _ = 1, 12 do
      cur.next = { v = 1 }
      cur = cur.next
    end
    local text = pretty.tostring(deep, 80)
    assert.truthy(text:find("{...} --[[2 items]]", 1, true))
  end)

  it("limits long strings and long tables", function()
    local long = ("x"):rep(pretty.max_string + 10)
    local text = pretty.tostring({ long }, 80)
    assert.truthy(text:find(("--[[%d bytes]]"):format(#long), 1, true))
    local big = {}
    for i = 1, pretty.max_items + 5 do big[i] = { i = i } end
    local out = pretty.tostring(big, 80)
    assert.are.equal("\n  -- ... 5 more\n}", out:sub(-#"\n  -- ... 5 more\n}"))
    assert.truthy(out:find("\n  { i = 200 },\n", 1, true))
    assert.falsy(out:find("\n  { i = 201 },\n", 1, true))
  end)

  it("prints a list of instance summaries as an aligned table", function()
    local list = {
      { instance_id = "a", orchestration_name = "N", version = "1", status = "Running",
        created_at = 0, updated_at = 0, execution_count = 1 },
      { instance_id = "bb", orchestration_name = "M", version = "1", status = "Failed", failure_kind = "poison",
        created_at = 0, updated_at = 0, execution_count = 2, parent_instance = "a" },
    }
    assert.are.equal(table.concat({
      "INSTANCE  NAME  VERSION  STATUS           CREATED               UPDATED               EXECS  PARENT",
      "a         N     1        Running          1970-01-01T00:00:00Z  1970-01-01T00:00:00Z      1  -",
      "bb        M     1        Failed (poison)  1970-01-01T00:00:00Z  1970-01-01T00:00:00Z      2  a",
      "-- 2 instances",
    }, "\n"), pretty.tostring(list, 200))
  end)
end)

describe("durox.cli.output", function()
  local output = require "durox.cli.output"

  it("quotes CSV fields as RFC 4180 says, with CRLF line ends and a header", function()
    assert.are.equal("plain", output.csv_field("plain"))
    assert.are.equal('"a,b"', output.csv_field("a,b"))
    assert.are.equal('"say ""hi"""', output.csv_field('say "hi"'))
    assert.are.equal('"two\nlines"', output.csv_field("two\nlines"))
    assert.are.equal('"cr\rhere"', output.csv_field("cr\rhere"))
    assert.are.equal("", output.csv_field(nil))
    assert.are.equal("", output.csv_field(durox.null))
    assert.are.equal("42", output.csv_field(42))
    assert.are.equal('id,created_at,n,t\r\n"x,1",1970-01-01T00:00:01.500Z,3,"{""a"":1}"\r\ny,,,\r\n',
      output.csv({ { "id" }, { "created_at" }, { "n", get = function(r) return r.count end }, { "t" } },
        { { id = "x,1", created_at = 1500, count = 3, t = { a = 1 } }, { id = "y" } }))
    assert.are.equal("a\r\n", output.csv({ { "a" } }, {}))
  end)

  it("adds an ISO-8601 twin beside every time in ms, deep, without touching the input", function()
    local v = { created_at = 0, nested = { { timestamp_ms = 1706702405250, since = 1000 } }, name = "x", now = 2.5 }
    local w = output.with_iso(v)
    assert.are.equal("1970-01-01T00:00:00.000Z", w.created_at_iso)
    assert.are.equal("2024-01-31T12:00:05.250Z", w.nested[1].timestamp_iso)
    assert.are.equal("1970-01-01T00:00:01.000Z", w.nested[1].since_iso)
    assert.is_nil(w.now_iso) -- not an integer
    assert.is_nil(v.created_at_iso)
    assert.are.equal(0, w.created_at)
    assert.are.equal('{"a":1,"at_iso":null}', durox.encode_json { a = 1, at_iso = durox.null })
    assert.are.equal('{"b_at":5,"b_at_iso":"1970-01-01T00:00:00.005Z"}\n', output.jsonl { { b_at = 5 } })
  end)
end)

describe("durox.cli.exit", function()
  local exit = require "durox.cli.exit"

  it("maps engine codes and bulk responses onto the documented exit codes", function()
    assert.are.same({ 0, 1, 2, 3, 4, 5, 6, 130 }, { exit.OK, exit.FAILED, exit.USAGE, exit.NOTFOUND, exit.REFUSED,
      exit.TIMEOUT, exit.PARTIAL, exit.INTERRUPTED })
    for code, want in pairs { INVALID = 2, NOTFOUND = 3, DENIED = 4, CONFLICT = 4, LIMIT = 4, TIMEOUT = 5, BUSY = 5,
                               IO = 1, CORRUPT = 1, GONE = 1, UNSUPPORTED = 1 } do
      assert.are.equal(want, exit.of(code), code)
    end
    local function bulk(t)
      t.total_matched = t.total_matched or 0
      t.failed_instances = t.failed_instances or {}
      return exit.of_bulk(t)
    end
    local nf = { instance_id = "x", code = "NOTFOUND" }
    local cf = { instance_id = "y", code = "CONFLICT" }
    assert.are.equal(0, bulk { total_matched = 0, state = "completed" })
    assert.are.equal(0, bulk { total_matched = 2, state = "completed" })
    assert.are.equal(0, bulk { total_matched = 2, dry_run = true, state = "dry_run" })
    assert.are.equal(6, bulk { total_matched = 2, failed_instances = { nf } })
    assert.are.equal(6, bulk { total_matched = 2, dry_run = true, no_subscription_instances = { "z" } })
    assert.are.equal(3, bulk { total_matched = 1, failed_instances = { nf } })
    assert.are.equal(4, bulk { total_matched = 2, failed_instances = { nf, cf } })
    assert.are.equal(4, bulk { total_matched = 1, no_subscription_instances = { "z" } })
    assert.are.equal(6, bulk { total_matched = 3, state = "stopped", pending_instances = { "p" } })
    -- sub-orchestrations skipped as reported: not a failure, but nothing done is refused
    assert.are.equal(0, bulk { total_matched = 3, skipped_instances = { {}, {} } })
    assert.are.equal(4, bulk { total_matched = 2, skipped_instances = { {}, {} } })
    assert.is_true(#exit.TABLE == 8)
  end)
end)

describe("durox.cli.args, positional arguments and one meaning per option", function()
  local spec = { { "limit", short = "n", arg = "N", type = "count" }, { "quiet" } }

  it("checks declared positional arguments", function()
    local function err(argv, decl) return select(2, args.parse(argv, 1, spec, decl)) end
    assert.are.equal("missing instance id", err({}, { { "ID", missing = "instance id" } }))
    assert.are.equal("missing ID and NAME", err({}, { { "ID" }, { "NAME" }, { "INPUT", optional = true } }))
    assert.are.equal("missing NAME", err({ "x" }, { { "ID" }, { "NAME" } }))
    assert.are.equal("unexpected argument 'b'", err({ "a", "b" }, { { "ID" } }))
    assert.are.equal("unexpected argument 'a'", err({ "a" }, {}))
    assert.are.same({ "a", "b", "c" }, { table.unpack(assert(args.parse({ "a", "b", "c" }, 1, spec,
      { { "EVENT" }, { "ID", many = true, optional = true } }))) })
  end)

  it("suggests the option or command meant", function()
    assert.are.equal("unknown option '--limt' (did you mean '--limit'?)", select(2, args.parse({ "--limt" }, 1, spec)))
    assert.are.equal("unknown option '--xyz'", select(2, args.parse({ "--xyz" }, 1, spec)))
    assert.are.equal("list", args.suggest("lsit", { "list", "show" }))
    assert.are.equal("Order", args.suggest("order", { "Order", "Echo" }))
    assert.is_nil(args.suggest("zz", { "list" }))
  end)

  it("refuses a spec where one short option has two meanings", function()
    local bad = { { "query", short = "q", arg = "Q" }, { "quiet", short = "q" } }
    assert.has_error(function() args.parse({}, 1, bad) end, "option '-q' means both '--query' and '--quiet'")
  end)

  it("gives -q one meaning in every command: --query", function()
    local cli = require "durox.cli"
    for _, name in ipairs(cli.commands()) do
      local cmd = cli.command(name)
      local ok, err = pcall(args.parse, { "--store", "sqlite::memory:" }, 1, cmd.options or {})
      assert(ok, name .. ": " .. tostring(err))
      for _, opt in ipairs(cmd.options or {}) do
        if opt.short == "q" then assert.are.equal("query", opt[1], name) end
      end
      -- the help text says the same
      local q = cmd.help:match("\n  %-q, %-%-(%S+)")
      if q then assert.are.equal("query", q, name) end
    end
  end)
end)
