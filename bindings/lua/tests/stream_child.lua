-- Second process for fsc_test.lua: stream_child.lua DIR
-- Stores a 256 MiB file with set_file and reads it back through get_file in
-- 1 MiB pieces; exits 0 when every byte came back and the peak resident
-- memory (VmHWM) stayed under 64 MiB, so the value was never held whole.
local fsc = require "fsc"
local dir = ...
local c = assert(fsc.open{dir = dir, cache_size = 0})
local mib, count = 1 << 20, 256
local path = dir .. ".src"
local f = assert(io.open(path, "wb"))
for i = 1, count do
  assert(f:write(string.char(i % 251):rep(mib)))
end
f:close()
assert(c:set_file("big", path))
os.remove(path)
local r = assert(c:get_file("big"))
local total, bad = 0, 0
while true do
  local piece = r:read(mib)
  if not piece then break end
  total = total + #piece
  local i = total // mib
  if piece:byte(1) ~= i % 251 or piece:byte(#piece) ~= i % 251 then bad = bad + 1 end
end
r:close()
local hwm = tonumber(io.open("/proc/self/status"):read("a"):match("VmHWM:%s+(%d+)"))
io.stdout:write(("# read %d bytes, %d bad pieces, peak %d KiB\n"):format(total, bad, hwm))
os.exit(total == count * mib and bad == 0 and hwm < 64 * 1024 and 0 or 1)
