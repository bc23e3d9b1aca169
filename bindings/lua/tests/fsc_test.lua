-- TAP tests of the fsc Lua binding; run: lua5.4 fsc_test.lua
-- (with LUA_PATH finding fsc.lua and LUA_CPATH finding fsc_core.so).
local fsc = require "fsc"

local n, failed = 0, 0
local function ok(cond, name, diag)
  n = n + 1
  if cond then
    print(("ok %d - %s"):format(n, name))
  else
    failed = failed + 1
    print(("not ok %d - %s"):format(n, name))
    if diag ~= nil then
      print("# " .. tostring(diag):gsub("\n", "\n# "))
    end
  end
  return cond
end
local function is(got, want, name)
  return ok(got == want, name, ("got %q, want %q"):format(tostring(got), tostring(want)))
end
local function starts(s, prefix, name)
  return ok(type(s) == "string" and s:sub(1, #prefix) == prefix, name, s)
end

local lua = arg[-1]
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local function sh(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. sh(tmp)))
local function cleanup() os.execute("rm -rf " .. sh(tmp)) end

local c, err = fsc.open{dir = tmp .. "/cache", cache_size = 64 << 20}
ok(c, "open", err)
starts(fsc.version(), "0.", "version")

-- Round trip, miss, delete.
ok(c:set("k", "value"), "set")
is(c:get("k"), "value", "get")
is(c:delete("k"), true, "delete of a present key")
is(c:delete("k"), false, "delete of a missing key")
local v, e = c:get("k")
ok(v == nil and e == nil, "miss is nil without an error", e)
ok(c:set("empty", ""), "set of an empty value")
is(c:get("empty"), "", "empty value")

-- Binary keys and values.
local keys = {"a", "a\0", "a\0b", "a\0c", "\0", "\0\0"}
for i, k in ipairs(keys) do
  c:set(k, ("v%d\0\255"):format(i))
end
local all = true
for i, k in ipairs(keys) do
  all = all and c:get(k) == ("v%d\0\255"):format(i)
end
ok(all, "keys with NUL are distinct and values binary safe")
local bytes = {}
for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
bytes = table.concat(bytes)
c:set(bytes, bytes:rep(100))
is(c:get(bytes), bytes:rep(100), "every byte value in key and value")

-- Errors: nil plus a message starting with the status name.
v, e = c:set("", "x")
ok(v == nil, "empty key fails")
starts(e, "FSC_EINVAL", "empty key is FSC_EINVAL")
ok(c:set(("k"):rep(fsc.MAX_KEY), "x"), "key of MAX_KEY bytes")
ok(c:get(("k"):rep(fsc.MAX_KEY)) == "x" and c:get(fsc.hashed_key(("k"):rep(fsc.MAX_KEY))) == nil,
   "a key of MAX_KEY bytes is stored as is")
local small = assert(fsc.open{dir = tmp .. "/small", cache_size = 8})
v, e = small:set("k", "123456789")
starts(e, "FSC_ETOOBIG", "value over cache_size is FSC_ETOOBIG")
small:close()
local foreign = tmp .. "/foreign"
os.execute("mkdir -p " .. sh(foreign))
io.open(foreign .. "/precious", "w"):close()
v, e = fsc.open{dir = foreign}
ok(v == nil, "open of a foreign directory fails")
starts(e, "FSC_EFORMAT", "foreign directory is FSC_EFORMAT")
v, e = fsc.open{dir = tmp .. "/x", expiration_ms = 1.5}
starts(e, "FSC_EINVAL", "non-integer option is FSC_EINVAL")
v, e = fsc.open{}
starts(e, "FSC_EINVAL", "open without dir is FSC_EINVAL")
v, e = fsc.open{dir = tmp .. "/nul\0x"}
starts(e, "FSC_EINVAL", "a dir with a NUL byte is FSC_EINVAL")
ok(not io.open(tmp .. "/nul/FSC-FORMAT"), "and nothing was opened at its prefix")
v, e = fsc.open{dir = tmp .. "/neg", cache_size = -1}
starts(e, "FSC_EINVAL", "a negative cache_size is FSC_EINVAL")
v, e = c:set_file("k", tmp .. "/file\0x")
starts(e, "FSC_EINVAL", "set_file of a path with a NUL byte is FSC_EINVAL")
-- Expirations too long for microseconds in 64 bits never expire.
for _, ms in ipairs{10000000000000000, math.maxinteger} do
  local h = assert(fsc.open{dir = tmp .. "/huge-expiry-" .. ms, expiration_ms = ms})
  assert(h:set("k", "v"))
  is(h:get("k"), "v", "expiration_ms " .. ms .. ": a hit right after the set")
  assert(h:prune())
  is(h:get("k"), "v", "expiration_ms " .. ms .. ": still a hit after prune")
  h:close()
end
-- A lock timeout too large for a double's integers waits as long as it takes.
do
  local l, err = c:lock("huge-timeout", math.maxinteger)
  ok(l, "lock with timeout math.maxinteger", err)
  if l then l:unlock() end
end
-- A FIFO as set_file's source is refused at once (an open would wait for a writer).
assert(os.execute("mkfifo " .. sh(tmp .. "/source-fifo")))
v, e = c:set_file("fifo", tmp .. "/source-fifo")
starts(e, "FSC_EINVAL", "set_file of a FIFO is FSC_EINVAL")
is(fsc.status.FSC_EBUSY, -6, "status table by name")
is(fsc.status[-7], "FSC_ETIMEDOUT", "status table by value")
is(fsc.status.FSC_OK, 0, "status table holds the non-error statuses")
ok(fsc.status.FSC_MAX_KEY == nil and fsc.status.FSC_MOVE == nil, "and no other constant")
is(fsc.status.FSC_ELOST, -15, "status table holds FSC_ELOST")
is(fsc.status[-15], "FSC_ELOST", "and names -15")

-- network_mode: off by default on the local test directory, on when forced;
-- a handle forced on works as any other.
for mode, running in pairs{auto = false, on = true, off = false} do
  local h, err = fsc.open{dir = tmp .. "/net-" .. mode, network_mode = mode}
  ok(h, "open with network_mode " .. mode, err)
  if h then
    local st = assert(h:stats())
    is(st.network_mode, running, "network_mode " .. mode .. ": stats.network_mode")
    is(st.network_fs, false, "network_mode " .. mode .. ": stats.network_fs")
    assert(h:set("k", "v"))
    is(h:get("k"), "v", "network_mode " .. mode .. ": get after set")
    is(h:get_or_create("g", nil, function() return "made" end), "made", "network_mode " .. mode .. ": get_or_create")
    h:close()
  end
end
is(assert(fsc.open(tmp .. "/net-default")):stats().network_mode, false, "stats.network_mode by default")
for _, bad in ipairs{"ON", "", 1, true} do
  v, e = fsc.open{dir = tmp .. "/net-bad", network_mode = bad}
  ok(v == nil and e:match('^FSC_EINVAL: network_mode must be'), "network_mode " .. tostring(bad) .. " is FSC_EINVAL", e)
end

-- pack_limit: 0 gives a small value an entry file of its own (32 hex
-- digits), the default packs it into shards/<xx>/pack.<16 hex>.
local function shard_files(dir)
  local entries, packs = 0, 0
  local p = assert(io.popen("find " .. sh(dir .. "/shards") .. " -mindepth 2 -maxdepth 2 -type f"))
  for path in p:lines() do
    local name = path:match("[^/]*$")
    if name:match("^" .. ("%x"):rep(32) .. "$") then entries = entries + 1 end
    if name:match("^pack%." .. ("%x"):rep(16) .. "$") then packs = packs + 1 end
  end
  p:close()
  return entries, packs
end
for _, case in ipairs{{"pack_limit = 0", 0, true}, {"default pack_limit", nil, false}} do
  local name, limit, own = case[1], case[2], case[3]
  local dir = tmp .. "/pack" .. tostring(limit)
  local pc, perr = fsc.open{dir = dir, pack_limit = limit}
  ok(pc, "open with " .. name, perr)
  if pc then
    ok(pc:set("k", "small value"), name .. ": set")
    is(pc:get("k"), "small value", name .. ": value reads back")
    local entries, packs = shard_files(dir)
    ok((entries > 0) == own and (packs > 0) == not own,
       name .. (own and ": an entry file, no pack" or ": a pack file, no entry file"),
       ("%d entry files, %d pack files"):format(entries, packs))
    pc:close()
  end
end
v, e = fsc.open{dir = tmp .. "/packbig", pack_limit = (1 << 20) + 1}
ok(v == nil, "pack_limit over 1 MiB fails")
starts(e, "FSC_EINVAL", "pack_limit over 1 MiB is FSC_EINVAL")
v, e = fsc.open{dir = tmp .. "/packmax", pack_limit = 1 << 20}
ok(v, "pack_limit of 1 MiB opens", e)
if v then v:close() end

-- get_or_create: created once, then served; creator errors store nothing.
local calls = 0
local function make(k) calls = calls + 1; return "made:" .. k end
is(c:get_or_create("g\0k", 60000, make), "made:g\0k", "get_or_create creates")
is(c:get_or_create("g\0k", 60000, make), "made:g\0k", "get_or_create serves")
is(calls, 1, "creator called once")
v, e = c:get_or_create("bad", -1, function() error("no data", 0) end)
ok(v == nil, "failing creator gives nil")
starts(e, "FSC_ECREATOR: no data", "failing creator is FSC_ECREATOR with its error")
is(c:get("bad"), nil, "failing creator stored nothing")
v, e = c:get_or_create("bad", -1, function() return 42 end)
starts(e, "FSC_ECREATOR", "non-string creator result is FSC_ECREATOR")
local l = c:lock("bad", 0)
ok(l, "key unlocked after a failing creator")
if l then l:unlock() end
is(c:get_or_create("bad", nil, function() return "good" end), "good", "creator after failures")

-- Raw files: the remembered offset, copy and move.
local src = tmp .. "/src"
local f = assert(io.open(src, "wb"))
f:write("HEADER\0payload")
f:close()
f = assert(io.open(src, "rb"))
is(f:read(7), "HEADER\0", "read the header")
ok(c:set_file("raw", f), "set_file from an open file")
f:close()
local r = c:get_file("raw")
ok(io.type(r) == "file", "get_file gives an io file")
is(r:read("a"), "payload", "get_file is positioned at the offset")
r:seek("set", 0)
is(r:read("a"), "HEADER\0payload", "the whole file from 0")
r:close()
is(c:get("raw"), "payload", "get of a file value starts at the offset")
ok(c:set_file("path", src), "set_file from a path")
ok(io.open(src, "rb"), "copied source is still there")
r = c:get_file("path")
is(r and r:read("a"), "HEADER\0payload", "path value")
if r then r:close() end
ok(c:set_file("moved", src, true), "set_file with move")
is(io.open(src, "rb"), nil, "moved source is gone")
is(c:get("moved"), "HEADER\0payload", "moved value")
c:set("gen", "generic")
r = c:get_file("gen")
is(r and r:read("a"), "generic", "get_file of a set value")
if r then r:close() end
is(c:get_file("absent"), nil, "get_file miss is nil")
v, e = c:set_file("k", tmp .. "/does-not-exist")
ok(v == nil and type(e) == "string" and e:match("^FSC_E"), "set_file of a missing path fails", e)

-- Locks in this process.
l, e = c:lock("lk", 0)
ok(l, "lock", e)
is(c:lock_holder("lk"), 0, "no other process holds it")
ok(l and l:unlock(), "unlock")
v, e = l:unlock()
starts(e, "FSC_EINVAL", "second unlock is FSC_EINVAL")
do
  local held <close> = assert(c:lock("lk", 0))
end
l = c:lock("lk", 0)
ok(l, "a to-be-closed lock is released at the end of its scope")
l:unlock()

-- Keys longer than MAX_KEY. The same key (and SHA-256) in every binding's
-- test: Python stores it so.
local long = ("0123456789abcdef"):rep(4097)
local stored = "fsc.sha256:4de9ccf85d6b865de082de306a67e3aacb51222b2e3380a3455d0504e1e993b7"
local other = long:sub(1, -2) .. "x"
is(fsc.hashed_key(long), stored, "a long key's hashed key")
ok(c:set(long, "long") and c:set(other, "other"), "set of long keys")
is(c:get(long), "long", "get of a long key")
is(c:get(stored), "long", "a long key is stored under its hashed key")
is(c:get_or_create(long .. "y", nil, function(k) return #k .. "" end), #long + 1 .. "",
   "get_or_create of a long key gives the creator the key")
l = assert(c:lock(long, -1))
local stored_cmd = table.concat({sh(lua), sh(here .. "/lock_child.lua"), "trybusy", sh(c.dir), hex(stored)}, " ")
ok(os.execute(stored_cmd), "locking a long key locks its hashed key")
l:unlock()
is(c:delete(long), true, "delete of a long key")
is(c:get(long), nil, "a deleted long key misses")
is(c:get(other), "other", "another long key is kept")

-- Locks across processes.
local lkey = "shared\0lock"
l = assert(c:lock(lkey, -1))
local cmd = table.concat({sh(lua), sh(here .. "/lock_child.lua"), "%s", sh(c.dir), hex(lkey)}, " ")
ok(os.execute(cmd:format("trybusy")), "another process sees the lock busy")
l:unlock()
ok(os.execute(cmd:format("tryfree")), "another process takes it once unlocked")

-- A 256 MiB value streams in and out in another process, in bounded memory.
ok(os.execute(table.concat({sh(lua), sh(here .. "/stream_child.lua"), sh(tmp .. "/stream")}, " ")),
   "a 256 MiB value goes through set_file and get_file in under 64 MiB")

local fifo = tmp .. "/fifo"
assert(os.execute("mkfifo " .. sh(fifo)))
local child = assert(io.popen(cmd:format("hold") .. " " .. sh(fifo), "r"))
local line = child:read("l")
local pid = line and tonumber(line:match("^locked (%d+)$"))
ok(pid, "child holds the lock", line)
v, e = c:lock(lkey, 0)
ok(v == nil, "lock held by another process is not taken")
starts(e, "FSC_EBUSY", "busy is FSC_EBUSY")
v, e = c:lock(lkey, 50)
starts(e, "FSC_ETIMEDOUT", "waiting with a timeout is FSC_ETIMEDOUT")
is(c:lock_holder(lkey), pid, "lock_holder names the child")
local w = assert(io.open(fifo, "w")) -- the child waits for this writer
w:close()                             -- end of file: the child unlocks
l, e = c:lock(lkey, -1)
ok(l, "lock taken after the child released it", e)
if l then l:unlock() end
ok(child:close(), "child exited 0")

-- Housekeeping.
c:set("h", "1")
ok(c:invalidate(true), "invalidate(true)")
is(c:get("h"), nil, "hard invalidate makes a miss")
c:set("h", "2")
ok(c:clear(), "clear")
is(c:get("h"), nil, "clear makes a miss")
local results = {}
for _, name in ipairs{"prune", "stats", "verify"} do
  v, e = c[name](c)
  ok(v or (e and e:match("^FSC_ENOTSUP")), name .. " works or is FSC_ENOTSUP", e)
  if not v then print("# " .. name .. ": " .. e) end
  results[name] = v
end
if results.stats then
  ok(results.stats.sets >= 2 and results.stats.entries == 0, "stats count the sets and the clear",
     ("sets %s entries %s"):format(results.stats.sets, results.stats.entries))
  is(results.stats.network_fs, false, "stats says the test directory is on a local filesystem")
end
if results.verify then
  is(results.verify.problems, 0, "verify finds no problem in a healthy cache")
end

-- Creators that close their own cache, re-enter it, raise or yield.
do
  local own = assert(fsc.open(tmp .. "/own"))
  v, e = own:get_or_create("k", -1, function()
    ok(own:close(), "a creator closes its own cache")
    return "value"
  end)
  is(v, "value", "the call in flight finishes on the open handle", e)
  v, e = own:get("k")
  starts(e, "FSC_EINVAL: cache is closed", "a call after that close gives FSC_EINVAL")
  v, e = own:get_or_create("k", -1, function() return "again" end)
  starts(e, "FSC_EINVAL: cache is closed", "so does get_or_create")
  local again = assert(fsc.open(tmp .. "/own"))
  is(again:get("k"), "value", "the value the closing creator made was stored")
  local l = again:lock("k", 0)
  ok(l, "and the key's lock was released")
  if l then l:unlock() end

  v, e = again:get_or_create("re", -1, function()
    ok(again:get("re") == nil and again:set("other", "o"), "a creator gets and sets on its cache")
    is(again:get_or_create("inner", -1, function() return "i" end), "i", "a creator's get_or_create")
    local held = again:lock("re", 0)
    ok(held, "a creator takes its key's lock again (re-entrant)")
    if held then held:unlock() end
    return "outer"
  end)
  is(v, "outer", "a re-entering creator's value", e)
  is(again:get("inner"), "i", "the inner value is stored")

  v, e = again:get_or_create("boom", -1, function()
    again:set("side", "s")
    error("boom", 0)
  end)
  starts(e, "FSC_ECREATOR: boom", "a creator that raises gives FSC_ECREATOR")
  ok(again:get("boom") == nil and again:get("side") == "s", "nothing stored for its key")

  local co = coroutine.wrap(function()
    return again:get_or_create("y", -1, function() coroutine.yield() return "never" end)
  end)
  v, e = co()
  starts(e, "FSC_ECREATOR", "a creator that yields gives FSC_ECREATOR", e)
  is(again:get_or_create("y", -1, function() return "fine" end), "fine", "the cache works after it")
  again:close()
end

-- Coroutines calling one cache in turns while one of them closes it: every
-- call gives its value or FSC_EINVAL "cache is closed".
do
  local shared = assert(fsc.open(tmp .. "/turns"))
  local bad, done = {}, 0
  local function worker(n)
    return coroutine.create(function()
      for i = 1, 1000 do
        local r, er
        if i % 3 == 0 then
          r, er = shared:set("k" .. n, "v")
        elseif i % 3 == 1 then
          r, er = shared:get("k" .. n)
          r = r or er == nil
        else
          r, er = shared:get_or_create("g", -1, function()
            coroutine.yield() -- not allowed here: the creator fails, nothing breaks
            return "made"
          end)
          if not r and er:match("^FSC_ECREATOR") then r = true end
        end
        if not r then
          if er:match("^FSC_EINVAL: cache is closed") then
            done = done + 1
            return
          end
          bad[#bad + 1] = er
        end
        if n == 1 and i == 50 then
          shared:get_or_create("closer", -1, function()
            shared:close() -- from inside a call: it ends the handle
            return "last"
          end)
        end
        coroutine.yield()
      end
    end)
  end
  local cos = {}
  for n = 1, 4 do cos[n] = worker(n) end
  local live = #cos
  while live > 0 do
    live = 0
    for _, co in ipairs(cos) do
      if coroutine.status(co) == "suspended" then
        local fine, er = coroutine.resume(co)
        if not fine then bad[#bad + 1] = er end
        live = live + 1
      end
    end
  end
  is(#bad, 0, "coroutines racing a close: no other error", bad[1])
  is(done, 4, "every coroutine saw the cache closed")
  local after = assert(fsc.open(tmp .. "/turns"))
  is(after:get("closer"), "last", "the closing creator's value was stored")
  after:close()
end

-- Ownership: a world-writable directory is refused; shared_group shares.
do
  assert(os.execute("mkdir -m 0777 " .. sh(tmp .. "/planted")))
  v, e = fsc.open(tmp .. "/planted")
  starts(e, "FSC_EACCES", "a world-writable directory is refused")
  local gid = io.popen("id -g"):read("n")
  local sc = assert(fsc.open{dir = tmp .. "/shared", shared_group = gid})
  sc:close()
  is(io.popen("stat -c %a " .. sh(tmp .. "/shared")):read("l"), "2770", "shared_group makes a 02770 cache")
end

ok(c:close(), "close")
ok(c:close(), "second close")
v, e = c:get("k")
starts(e, "FSC_EINVAL: cache is closed", "a closed cache gives FSC_EINVAL")
cleanup()
print("1.." .. n)
os.exit(failed == 0 and 0 or 1)
