-- fsc: a persistent, size-bounded, cross-process filesystem cache with
-- dogpile (stampede) protection, for Lua 5.4.
--
--   local fsc = require "fsc"
--   local c = assert(fsc.open{dir = "/var/cache/app", cache_size = 1 << 30})
--   c:set("key", "value")
--   local v = c:get("key")            -- "value", or nil on a miss
--
-- Keys and values are Lua strings, any bytes (NUL included); a key longer
-- than fsc.MAX_KEY bytes is stored under fsc.hashed_key(key). Every call that
-- can fail returns nil (or false) plus a message that starts with the
-- status name, e.g. "FSC_EBUSY: ...". The raw C API is the module fsc_core.

local core = require "fsc_core"
local sha256 = require "fsc_sha256"

local M = {}

M.MAX_KEY = core.FSC_MAX_KEY

-- Keys longer than the library takes are stored under this prefix and the
-- SHA-256 of the whole key, so that a key of any length works.
M.LONG_KEY_PREFIX = "fsc.sha256:"

-- The key under which a key too long for the library is stored.
function M.hashed_key(key)
  return M.LONG_KEY_PREFIX .. sha256.hex(key)
end

-- The key the library is given (a non-string is left to its type check).
local function stored_key(key)
  if type(key) == "string" and #key > M.MAX_KEY then
    return M.hashed_key(key)
  end
  return key
end

-- The status codes by name (M.status.FSC_EBUSY == -6) and back: the
-- constants of fsc_core that fsc_strerror names as themselves.
M.status = {}
for name, value in pairs(core) do
  if math.type(value) == "integer" and name:find("^FSC_") and core.fsc_strerror(value) == name then
    M.status[name] = value
    M.status[value] = name
  end
end

function M.version()
  return core.fsc_version()
end

-- nil, "FSC_NAME: detail" for status rc; the detail is fsc_errmsg() unless given.
local function fail(rc, detail)
  detail = detail or core.fsc_errmsg()
  local msg = core.fsc_strerror(rc)
  if detail ~= nil and detail ~= "" then
    msg = msg .. ": " .. tostring(detail)
  end
  return nil, msg, rc
end

local function invalid(detail)
  return fail(core.FSC_EINVAL, detail)
end

-- SWIG hands a 64-bit integer to C through a double: past 2^53 it loses
-- precision, and math.maxinteger becomes 2^63, which wraps negative. Spans
-- of milliseconds saturate there instead (2^53 ms is 285,000 years: the
-- library reads it as never, or as waiting as long as it takes).
local ms_max = 1 << 53
local function saturate_ms(ms)
  return ms > ms_max and ms_max or ms
end

local Cache = {}
Cache.__index = Cache

local Lock = {}
Lock.__index = Lock

-- network_mode's names (FSC_NETWORK in fsc.h).
local network_modes = {auto = core.FSC_NETWORK_AUTO, on = core.FSC_NETWORK_ON, off = core.FSC_NETWORK_OFF}

local function flag(v)
  return v and 1 or 0
end

-- fsc.open{dir=..., cache_size=, max_entries=, expiration_ms=,
--          distributed_lock=, file_movable=, durable=, pack_limit=,
--          shared_group=, network_mode=}
--   -> cache | nil, err
-- Absent fields keep the library's defaults (1 GiB, unbounded, never,
-- true, false, false, 4096); cache_size = 0 means unbounded. Values set
-- with c:set of at most pack_limit bytes are packed into their shard's pack
-- file; pack_limit = 0 gives every value its own file, above 1 MiB is
-- FSC_EINVAL. shared_group (a gid) shares the cache with that group's
-- members; without it a directory another user owns or others may write is
-- refused with FSC_EACCES (FSC_OWNERSHIP in fsc.h). network_mode: "auto"
-- (the default) runs in network mode (FSC_NETWORK in fsc.h) when the cache
-- is on a network or FUSE filesystem, "on" and "off" force it.
-- fsc.open(dir) works too.
function M.open(opts)
  if type(opts) == "string" then
    opts = {dir = opts}
  end
  if type(opts) ~= "table" or type(opts.dir) ~= "string" then
    return invalid("fsc.open wants a table with a string field dir")
  end
  if opts.dir:find("\0", 1, true) then
    return invalid("dir must not contain a NUL byte") -- C would open its prefix
  end
  local o = core.fsc_options()
  for _, f in ipairs{"cache_size", "max_entries", "expiration_ms", "pack_limit", "shared_group"} do
    if opts[f] ~= nil then
      if math.type(opts[f]) ~= "integer" then
        return invalid(f .. " must be an integer")
      end
      if opts[f] < (f == "expiration_ms" and -1 or 0) then
        return invalid(f .. " must not be negative")
      end
      o[f] = f == "expiration_ms" and saturate_ms(opts[f]) or opts[f]
    end
  end
  for _, f in ipairs{"distributed_lock", "file_movable", "durable"} do
    if opts[f] ~= nil then
      o[f] = flag(opts[f])
    end
  end
  if opts.network_mode ~= nil then
    local mode = network_modes[opts.network_mode]
    if not mode then
      return invalid('network_mode must be "auto", "on" or "off", not ' .. tostring(opts.network_mode))
    end
    o.network_mode = mode
  end
  local rc, h = core.fsc_open(opts.dir, o)
  if rc ~= core.FSC_OK then
    return fail(rc)
  end
  return setmetatable({_h = h, dir = opts.dir, _calls = 0}, Cache)
end

local closed = "cache is closed"

-- Ends a call in flight: the last one closes a handle c:close() left open
-- (a creator may close its own cache), then its results or error go on.
local function leave(self, fine, ...)
  self._calls = self._calls - 1
  local h = self._closing
  if self._calls == 0 and h then
    self._closing = nil
    core.fsc_close(h)
  end
  if not fine then
    error((...), 0)
  end
  return ...
end

-- Defines c:name(...) as fn(h, ...) on the open handle h; on a closed
-- cache it gives nil, "FSC_EINVAL: cache is closed".
local function method(name, fn)
  Cache[name] = function(self, ...)
    local h = self._h
    if not h then
      return invalid(closed)
    end
    self._calls = self._calls + 1
    return leave(self, pcall(fn, h, ...))
  end
end

-- true for FSC_OK, nil, err for any other status.
local function done(rc)
  if rc ~= core.FSC_OK then
    return fail(rc)
  end
  return true
end

-- c:close() closes the handle (also done by the garbage collector and by
-- a to-be-closed variable). Locks still held stay valid. Called from a
-- creator (or anything a call of this cache runs), it leaves the handle to
-- that call, which closes it when it ends; calls made after it give
-- nil, "FSC_EINVAL: cache is closed".
function Cache:close()
  local h = self._h
  if h then
    self._h = nil
    if self._calls > 0 then
      self._closing = h
    else
      core.fsc_close(h)
    end
  end
  return true
end
Cache.__gc = Cache.close
Cache.__close = Cache.close

-- The entry stored under key | nil (miss) | nil, err.
local function lookup(h, key)
  local rc, e = core.fsc_get(h, stored_key(key))
  if rc == core.FSC_OK then
    return e
  elseif rc == core.FSC_MISS then
    return nil
  end
  return fail(rc)
end

-- The value of an entry (then freed): the string, or nil, err.
local function take_value(e)
  local v, erc, detail = core.entry_value(e)
  core.fsc_entry_free(e)
  if v == nil then
    return fail(erc, detail)
  end
  return v
end

-- c:get(key) -> value | nil (miss) | nil, err
-- For a value stored with set_file: its content from the remembered offset.
method("get", function(h, key)
  local e, err, rc = lookup(h, key)
  if not e then
    return nil, err, rc
  end
  return take_value(e)
end)

-- c:set(key, value) -> true | nil, err
method("set", function(h, key, value)
  if type(value) ~= "string" then
    return invalid("value must be a string")
  end
  return done(core.fsc_set(h, stored_key(key), value))
end)

-- c:delete(key) -> true (removed) | false (there was none) | nil, err
method("delete", function(h, key)
  local rc = core.fsc_delete(h, stored_key(key))
  if rc == core.FSC_MISS then
    return false
  end
  return done(rc)
end)

-- c:set_file(key, src, move) -> true | nil, err
-- src is a path (copied from offset 0, or renamed in with move) or an open
-- io file (its whole content is copied and its current position is
-- remembered: get_file hands out a file positioned there).
method("set_file", function(h, key, src, move)
  local fd, path = -1, nil
  if io.type(src) == "file" then
    fd = core.file_fd(src)
  elseif type(src) == "string" and src ~= "" then
    if src:find("\0", 1, true) then
      return invalid("a path must not contain a NUL byte")
    end
    path = src
  else
    return invalid("set_file wants a path or an open file")
  end
  if move and not path then
    return invalid("set_file can move only a path")
  end
  return done(core.fsc_set_file(h, stored_key(key), fd, path, move and core.FSC_MOVE or 0))
end)

-- c:get_file(key) -> io file | nil (miss) | nil, err
-- A read-only io file on the stored file, positioned at the remembered
-- offset (0 for values stored with set): reading to the end gives the
-- value from there on. Close it when done.
method("get_file", function(h, key)
  local e, err, rc = lookup(h, key)
  if not e then
    return nil, err, rc
  end
  local f, ferr = core.entry_file(e)
  core.fsc_entry_free(e)
  if not f then
    return nil, ferr
  end
  return f
end)

-- c:get_or_create(key, ttl_ms, fn) -> value | nil, err
-- fn(key) returns the value (a string); it runs at most once across every
-- process while the key is missing or expired, concurrent callers wait and
-- get its value. ttl_ms nil or -1: the cache's expiration_ms. While another
-- caller regenerates an expired value, the old one is returned at once.
-- An error raised by fn (or a non-string result) stores nothing and comes
-- back as nil, "FSC_ECREATOR: <error>".
method("get_or_create", function(h, key, ttl_ms, fn)
  if type(fn) ~= "function" then
    return invalid("get_or_create wants a function")
  end
  if ttl_ms ~= nil and math.type(ttl_ms) ~= "integer" then
    return invalid("ttl_ms must be an integer")
  end
  -- fn gets the caller's key, not the one stored for a long key.
  local rc, e, cerr = core.get_or_create(h, stored_key(key), ttl_ms or -1, function()
    return fn(key)
  end)
  if rc == core.FSC_ECREATOR then
    return fail(rc, cerr)
  elseif rc ~= core.FSC_OK and rc ~= core.FSC_STALE then
    return fail(rc)
  end
  return take_value(e)
end)

-- c:lock(key, timeout_ms) -> lock | nil, err
-- timeout_ms: nil or -1 waits as long as it takes, 0 only tries
-- ("FSC_EBUSY"), > 0 waits at most that long ("FSC_ETIMEDOUT").
-- Re-entrant within this process (Lua has one thread). The lock is
-- released by lock:unlock(), by a to-be-closed variable or by the garbage
-- collector.
method("lock", function(h, key, timeout_ms)
  if timeout_ms ~= nil and math.type(timeout_ms) ~= "integer" then
    return invalid("timeout_ms must be an integer")
  end
  local rc, l = core.fsc_lock(h, stored_key(key), saturate_ms(timeout_ms or -1))
  if rc ~= core.FSC_OK then
    return fail(rc)
  end
  return setmetatable({_l = l}, Lock)
end)

-- lock:unlock() -> true | nil, err (a second unlock is FSC_EINVAL)
function Lock:unlock()
  local l = self._l
  if not l then
    return invalid("lock released twice")
  end
  self._l = nil
  return done(core.fsc_unlock(l))
end
Lock.__gc = function(self)
  if self._l then
    self:unlock()
  end
end
Lock.__close = Lock.__gc

-- c:lock_holder(key) -> pid of the process holding key's lock (0: none) | nil, err
method("lock_holder", function(h, key)
  local rc, pid = core.fsc_lock_holder(h, stored_key(key))
  if rc ~= core.FSC_OK then
    return fail(rc)
  end
  return pid
end)

-- c:invalidate(hard) -> true | nil, err
-- Values stored before now become misses (hard) or stale (get_or_create
-- serves them while one caller regenerates), for every process.
method("invalidate", function(h, hard)
  return done(core.fsc_invalidate(h, flag(hard)))
end)

-- c:clear() -> true | nil, err: removes every value.
method("clear", function(h)
  return done(core.fsc_clear(h))
end)

-- c:prune() -> true | nil, err: drops expired values, then evicts down to cache_size.
method("prune", function(h)
  return done(core.fsc_prune(h))
end)

-- c:stats() -> table of counters, network_fs and network_mode (booleans) | nil, err
method("stats", function(h)
  local s = core.fsc_statistics()
  local rc = core.fsc_stats(h, s)
  if rc ~= core.FSC_OK then
    return fail(rc)
  end
  local t = {}
  for _, f in ipairs{"entries", "bytes", "cache_size", "hits", "misses", "sets", "evictions",
                     "expirations"} do
    t[f] = s[f]
  end
  t.network_fs = s.network_fs ~= 0
  t.network_mode = s.network_mode ~= 0
  return t
end)

-- c:verify(repair) -> {checked=, problems=, repaired=} | nil, err
method("verify", function(h, repair)
  local r = core.fsc_verify_report()
  local rc = core.fsc_verify(h, flag(repair), r)
  if rc ~= core.FSC_OK then
    return fail(rc)
  end
  return {checked = r.checked, problems = r.problems, repaired = r.repaired}
end)

return M
