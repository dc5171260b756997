-- durox.cli.tree: `duroxlua tree ID`, an instance's place among its sub-orchestrations
-- (get_instance_dependencies): its parent, the tree's root, and its descendants as an
-- indented tree with statuses and child counts. Run by the dispatcher (durox.cli).
local args = require "durox.cli.args"
local format = require "durox.format"

local M = {}

M.summary = "show an instance's sub-orchestration tree (parent, children, descendants)"

M.options = {
  { section = "Options" },
  { "depth", short = "d", arg = "N", type = "count", min = 1, max = 1000, help = "list descendants down to N levels" },
  { "ascii", help = "draw the tree with ASCII characters" },
}

M.arguments = { { "ID", missing = "instance id" } }

M.help = args.help("duroxlua tree [--depth N] ID",
  "Shows the instance ID with its parent and the root of its tree, then every descendant\n" ..
  "(sub-orchestrations, through instances.parent_instance_id) with its orchestration name,\n" ..
  "status and number of children. --depth limits the levels listed; the total of descendants\n" ..
  "always counts them all. With --json: the DependencyGraph table.",
  M.options)

local function node_text(n)
  local text = ("%s  %s  %s"):format(format.oneline(n.instance_id), format.oneline(n.orchestration_name or "-"),
    n.status or "-")
  if n.child_count and n.child_count > 0 and #n.children == 0 then
    text = text .. ("  (%s not shown)"):format(format.count(n.child_count, "child", "children"))
  end
  return text
end

function M.render(g, ascii)
  local T = ascii and { mid = "|-- ", last = "`-- ", pipe = "|   ", blank = "    " }
                   or { mid = "├── ", last = "└── ", pipe = "│   ", blank = "    " }
  local out = {}
  if g.parent then
    out[#out + 1] = ("parent: %s  %s  %s"):format(format.oneline(g.parent.instance_id),
      format.oneline(g.parent.orchestration_name or "-"), g.parent.status)
    if g.tree_root ~= g.parent.instance_id then out[#out + 1] = "root:   " .. format.oneline(g.tree_root) end
  end
  out[#out + 1] = ("%s  %s  %s  (%s)"):format(format.oneline(g.root_instance), format.oneline(g.orchestration_name),
    g.status, format.count(g.total_descendants, "descendant"))
  local function walk(children, prefix)
    for i, c in ipairs(children) do
      local last = i == #children
      out[#out + 1] = prefix .. (last and T.last or T.mid) .. node_text(c)
      walk(c.children, prefix .. (last and T.blank or T.pipe))
    end
  end
  walk(g.children, "")
  if g.truncated then
    out[#out + 1] = ("(%d of %d descendants listed)"):format(g.listed_descendants, g.total_descendants)
  end
  return table.concat(out, "\n") .. "\n"
end

function M.run(a, ctx)
  local dx, code = ctx:open()
  if not dx then return code end
  local g
  g, code = ctx:call("get_instance_dependencies", a[1], a.depth and { max_depth = a.depth } or nil)
  if not g then return code end
  if ctx.json then
    ctx:print_json(g)
  else
    ctx:out(M.render(g, a.ascii))
  end
  return 0
end

return M
