-- Second process for fsc_test.lua: lock_child.lua ROLE DIR HEXKEY [FIFO]
--   hold:    take the key's lock, print "locked <pid>", keep it until FIFO
--            reaches end of file, unlock, exit 0.
--   trybusy: exit 0 if the lock is held elsewhere (FSC_EBUSY), else 3.
--   tryfree: exit 0 if the lock can be taken at once, else 3.
local fsc = require "fsc"
local role, dir, hexkey, fifo = ...
local key = hexkey:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
local c = assert(fsc.open{dir = dir})

if role == "hold" then
  local l = assert(c:lock(key, -1))
  local pid = io.open("/proc/self/stat"):read("n")
  io.stdout:write("locked ", pid, "\n")
  io.stdout:flush()
  local f = assert(io.open(fifo, "r")) -- waits for the writer
  f:read("a")                          -- and for it to close
  f:close()
  assert(l:unlock())
  os.exit(0)
elseif role == "trybusy" then
  local l, err = c:lock(key, 0)
  if l then
    io.stderr:write("lock taken although another process holds it\n")
    os.exit(3)
  end
  os.exit(err:match("^FSC_EBUSY") and 0 or 4)
elseif role == "tryfree" then
  local l, err = c:lock(key, 0)
  if not l then
    io.stderr:write(err, "\n")
    os.exit(3)
  end
  l:unlock()
  os.exit(0)
end
os.exit(2)
