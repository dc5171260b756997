-- durox.cli.files: reading the files a command is given (--input-file, --data-file,
-- --ids-file) with a size cap, so that /dev/zero or a wrong file ends with a clear one-line
-- error instead of exhausting memory. Used by durox.cli.start, durox.cli.raise and
-- durox.cli.bulk.
local M = {}

-- The cap of an --ids-file (ids are at most max_id_bytes each; 64 MiB is millions of them).
M.IDS_MAX_BYTES = 64 * 1024 * 1024

-- Reads all of path ('-': standard input) as long as it holds at most cap bytes. Returns
-- the text, or nil and a message naming the file and the limit (what names the option).
function M.read(path, cap, what)
  local f, err
  if path == "-" then
    f = io.stdin
  else
    f, err = io.open(path, "rb")
    if not f then return nil, ("cannot read %s '%s': %s"):format(what, path, (err or "?"):gsub("^[^:]*: ", "")) end
  end
  local parts, n = {}, 0
  while true do
    local chunk, rerr = f:read(math.min(65536, cap + 1 - n))
    if chunk == nil then
      if rerr then
        if f ~= io.stdin then f:close() end
        return nil, ("cannot read %s '%s': %s"):format(what, path, rerr)
      end
      break
    end
    parts[#parts + 1] = chunk
    n = n + #chunk
    if n > cap then
      if f ~= io.stdin then f:close() end
      return nil, ("%s '%s' is larger than %d bytes (the limit%s)"):format(what, path, cap,
        what == "ids file" and "" or "; see max_payload_bytes")
    end
  end
  if f ~= io.stdin then f:close() end
  return table.concat(parts)
end

return M
