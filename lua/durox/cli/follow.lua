-- durox.cli.follow: what the real-time commands share (events, watch): the cursor options,
-- the cursor file (read at start, replaced atomically after each delivered batch, so a killed
-- follower resumes with --cursor-file alone), JSON Lines output, and the readable line of an
-- item. Not a command itself (it has no run).
local durox = require "durox"
local format = require "durox.format"

local M = {}

M.CURSOR_OPTIONS = {
  { section = "Cursor" },
  { "cursor", arg = "TOKEN", group = "cursor", help = "resume right after the item that carried TOKEN" },
  { "cursor-file", arg = "FILE", group = "cursor",
    help = "read the cursor from FILE at start (if it exists) and keep it there after each batch" },
}

-- The cursor to start from: --cursor, else the content of --cursor-file (nil when the file is
-- missing or empty); or nil, message when the file cannot be read.
function M.start_cursor(a)
  if a.cursor then return a.cursor end
  if not a.cursor_file then return nil end
  local f, err = io.open(a.cursor_file, "rb")
  if not f then
    if err and err:match("No such file") then return nil end
    return nil, ("cannot read the cursor file: %s"):format(err)
  end
  local text = f:read("a") or ""
  f:close()
  text = text:gsub("%s+$", "")
  if text == "" then return nil end
  return text
end

-- Replaces the content of the file at path with content, atomically: a new file in the same
-- directory renamed over it (readers see the old or the new content, never a part). what
-- names the file in messages. Returns true or nil, message.
function M.write_atomic(path, content, what)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, ("cannot write the %s: %s"):format(what, err) end
  local ok, werr = f:write(content)
  if ok then ok, werr = f:close() else f:close() end
  if not ok then
    os.remove(tmp)
    return nil, ("cannot write the %s: %s"):format(what, werr)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    return nil, ("cannot replace the %s: %s"):format(what, rerr)
  end
  return true
end

-- Replaces the cursor file's content with cursor (atomically). Returns true or nil, message.
function M.save_cursor(path, cursor)
  if not path or not cursor then return true end
  return M.write_atomic(path, cursor .. "\n", "cursor file")
end

-- The next item of stream s: the item, nil at the end, or false and the exit code after
-- reporting a failure (Ctrl-C: interrupted; a store failure while following).
function M.next(ctx, s)
  local ok, item = pcall(s.next, s)
  if ok then return item end
  local exit = require "durox.cli.exit"
  local text = tostring(item):gsub("^[^:\n]+:%d+: ", "")
  if text:match("interrupted!$") then return false, ctx:fail("interrupted", exit.INTERRUPTED) end
  return false, ctx:fail(text, exit.FAILED)
end

-- One JSON line.
function M.json_line(item)
  return durox.encode_json(item) .. "\n"
end

-- A short text of a payload string for a readable line.
local function short(s, max)
  if s == nil then return nil end
  s = format.oneline(tostring(s))
  if #s > max then s = s:sub(1, max - 3) .. "..." end
  return s
end

-- The readable line of an event-stream item.
function M.event_line(ev)
  if ev.kind == "reset" then
    return ("%s  RESET (%s): %s; re-list what you derived from earlier events\n"):format(format.iso_ms(ev.at),
      ev.reset, ev.reason)
  elseif ev.kind == "heartbeat" then
    return ("%s  (no new events)\n"):format(format.iso_ms(ev.at))
  end
  local d = ev.details or {}
  local what
  local t = ev.event_type
  if t == "Started" then
    what = d.parent_instance and ("child of %s"):format(d.parent_instance) or nil
    if ev.execution_id > 1 then what = ("execution %d%s"):format(ev.execution_id, what and ", " .. what or "") end
  elseif t == "Completed" then
    what = d.output and ("output " .. short(d.output, 60)) or nil
  elseif t == "Failed" or t == "Cancelled" then
    what = ("%s: %s"):format(d.failure_kind or "?", short(d.error or "", 80))
  elseif t == "ContinuedAsNew" then
    what = d.input and ("input " .. short(d.input, 60)) or nil
  elseif t == "ActivityCompleted" then
    what = ("%s#%s%s"):format(d.name or "?", tostring(d.activity_id or "?"),
      d.result and (" -> " .. short(d.result, 50)) or "")
  elseif t == "ActivityFailed" then
    what = ("%s#%s: %s"):format(d.name or "?", tostring(d.activity_id or "?"), short(d.error or "", 60))
  elseif t == "TimerFired" then
    what = d.fire_at_ms and ("due " .. format.iso_ms(d.fire_at_ms)) or nil
  elseif t == "EventReceived" then
    what = ("%s%s%s"):format(d.persistent and "queue " or "", d.name or "?",
      d.data and (" " .. short(d.data, 50)) or "")
  end
  local name = ev.orchestration_name and (" (" .. format.oneline(ev.orchestration_name) .. ")") or ""
  return ("%s  %-17s %s%s%s\n"):format(format.iso_ms(ev.timestamp), t, format.oneline(ev.instance_id), name,
    what and ("  " .. what) or "")
end

return M
