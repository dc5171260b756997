-- durox.cli.files: reading the files a command is given (--input-file, --data-file,
-- --ids-file) with a size cap, so that /dev/zero or a wrong file ends with a clear one-line
-- error instead of exhausting memory. Used by durox.cli.start, durox.cli.raise and
-- durox.cli.bulk, durox.cli.watch.
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

-- Reads ids from a file ('-': stdin), one per line (at most M.IDS_MAX_BYTES; a line's
-- trailing CR is dropped, blank lines are skipped). Returns the list, or nil and a message.
function M.read_ids(path)
  local text, err = M.read(path, M.IDS_MAX_BYTES, "ids file")
  if not text then return nil, err end
  local ids = {}
  for line in (text:gsub("\r?\n?$", "\n")):gmatch("(.-)\r?\n") do
    if line:match("%S") then ids[#ids + 1] = line end
  end
  return ids
end

return M
