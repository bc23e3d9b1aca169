-- Cross-language peer in Lua: one operation per run on a cache directory,
-- keys and values given and printed in hex. See README.md for the commands.
local fsc = require "fsc"

local function die(msg)
  io.write("error ", tostring(msg), "\n")
  io.stdout:flush()
  os.exit(1)
end

local function unhex(s)
  if #s % 2 ~= 0 or s:find("[^0-9a-fA-F]") then
    die("bad hex " .. s)
  end
  return (s:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

local function tohex(b)
  return (b:gsub(".", function(ch) return string.format("%02x", ch:byte()) end))
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Lua has no sleep of its own: sleep(1) runs for the given seconds.
local function sleep(seconds)
  os.execute("sleep " .. seconds)
end

-- Polls for path every few milliseconds, for at most 30 s (wall clock).
local function wait_for(path)
  local deadline = os.time() + 30
  while not exists(path) do
    if os.time() > deadline then
      die("timed out waiting for " .. path)
    end
    sleep(0.001)
  end
end

local cmd, dir, keyhex = arg[1], arg[2], arg[3]
if not keyhex then
  die("usage: peer.lua CMD DIR KEYHEX [ARGS...]")
end
-- @FILE: the key is FILE's bytes (a long key's hex does not fit in one argument).
local key
if keyhex:sub(1, 1) == "@" then
  local f = assert(io.open(keyhex:sub(2), "rb"))
  key = f:read("a")
  f:close()
else
  key = unhex(keyhex)
end
if cmd == "openrace" then -- READYFILE GOFILE: open at the start signal, then get
  assert(io.open(arg[4], "w")):close()
  wait_for(arg[5])
  cmd = "get"
end
local c, err = fsc.open(dir)
if not c then
  die("open: " .. err)
end

if cmd == "set" then
  local ok, e = c:set(key, unhex(arg[4]))
  if not ok then die("set: " .. e) end
  print("stored")
elseif cmd == "get" then
  local v, e = c:get(key)
  if v == nil and e ~= nil then die("get: " .. e) end
  print(v == nil and "miss" or "hit " .. tohex(v))
elseif cmd == "trylock" then
  local l, e, rc = c:lock(key, 0)
  if l then
    local ok, ue = l:unlock()
    if not ok then die("unlock: " .. ue) end
    print("acquired")
  elseif rc == fsc.status.FSC_EBUSY then
    local pid, he = c:lock_holder(key)
    if not pid then die("lock_holder: " .. he) end
    print("busy " .. math.tointeger(pid))
  else
    die("trylock: " .. tostring(e))
  end
elseif cmd == "stampede" then
  local ready, go, counter, mine = arg[4], arg[5], arg[6], arg[7]
  assert(io.open(ready, "w")):close()
  wait_for(go)
  local v, e = c:get_or_create(key, nil, function()
    local f = assert(io.open(counter, "a"))  -- fopen "a": O_APPEND
    -- The shell's parent is this process: $PPID is our pid.
    local p = io.popen("echo $PPID")
    local pid = p:read("l")
    p:close()
    assert(f:write("lua ", pid, "\n"))
    assert(f:close())
    sleep(0.3)
    return unhex(mine)
  end)
  if v == nil then die("get_or_create: " .. tostring(e)) end
  print("value " .. tohex(v))
else
  die("unknown command " .. tostring(cmd))
end
c:close()
