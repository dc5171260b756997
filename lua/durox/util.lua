-- durox.util: small helpers shared by the CLI modules.
local M = {}

-- Returns a shallow copy of t.
function M.copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

return M
