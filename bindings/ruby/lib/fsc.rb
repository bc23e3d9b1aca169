# frozen_string_literal: true

# fsc: a persistent, size-bounded, cross-process filesystem cache.
#
#   require "fsc"
#   cache = Fsc::Cache.new("/var/cache/myapp", cache_size: 1 << 30, expires_in: 3600)
#   cache.write("key", "value")
#   cache.read("key")                          # => "value" (ASCII-8BIT); nil on a miss
#   cache.fetch("other") { "made once, across every process" }
#   cache.lock("key", timeout: 5) { ... }      # excludes other threads and processes
#   cache.close
#
# Keys and values are Strings (their bytes; Symbols are turned into Strings);
# a key longer than Native::FSC_MAX_KEY bytes is stored under
# Fsc.hashed_key(key). Errors are Fsc::Error subclasses, one per status code
# of fsc.h.
require "digest"
require "etc"
require "fsc_native"

module Fsc
  N = Native
  private_constant :N

  # Base class of every fsc error; #status is the code, #status_name its name.
  class Error < StandardError
    attr_reader :status

    def initialize(message = nil, status = self.class::STATUS)
      super(message)
      @status = status
    end

    def status_name
      N.fsc_strerror(status)
    end
  end
  Error::STATUS = nil

  # One class per status code, from this one table.
  ERRORS = {
    FSC_EINVAL: :InvalidArgumentError,
    FSC_ENOMEM: :OutOfMemoryError,
    FSC_EIO: :IoError,
    FSC_ENOSPC: :NoSpaceError,
    FSC_EACCES: :AccessDeniedError,
    FSC_EBUSY: :BusyError,
    FSC_ETIMEDOUT: :LockTimeoutError,
    FSC_EDEADLK: :DeadlockError,
    FSC_ECORRUPT: :CorruptError,
    FSC_ETOOBIG: :TooBigError,
    FSC_EXDEV: :CrossDeviceError,
    FSC_EFORMAT: :FormatError,
    FSC_ECREATOR: :CreatorError,
    FSC_ENOTSUP: :NotSupportedError,
    FSC_ELOST: :LostError,
  }.freeze

  # status code => error class, for every FSC_E* constant of the library
  # (a code missing from the table still gets a class of its own).
  ERROR_CLASSES = N.constants.grep(/\AFSC_E/).to_h do |name|
    status = N.const_get(name)
    klass = Class.new(Error)
    klass.const_set(:STATUS, status)
    [status, const_set(ERRORS.fetch(name) { :"Error#{name.to_s.delete_prefix('FSC_')}" }, klass)]
  end.freeze

  # Returns a non-negative status; raises the error class of a negative one.
  def self.check(status, what)
    return status if status >= 0

    detail = N.fsc_errmsg
    message = "#{what}: #{N.fsc_strerror(status)}#{detail.empty? ? '' : " (#{detail})"}"
    raise ERROR_CLASSES.fetch(status, Error).new(message, status)
  end

  # A call on a closed Cache.
  class ClosedError < IOError
    def initialize(message = "the cache is closed")
      super
    end
  end

  # Keys longer than the library takes are stored under this prefix and the
  # SHA-256 of the whole key, so that a key of any length works.
  LONG_KEY_PREFIX = "fsc.sha256:".b.freeze

  # The key under which a key too long for the library is stored.
  def self.hashed_key(key)
    LONG_KEY_PREFIX + Digest::SHA256.hexdigest(key)
  end

  # The library's version, e.g. "0.1.0".
  def self.version
    N.fsc_version
  end

  # One open cache directory; safe to share between threads, and many
  # processes may open the same directory at once.
  #
  # #close may come from any thread, or from a block the cache calls (a
  # fetch block, an each_key or lock block): calls in flight finish on the
  # open handle, which the last of them closes; calls made after #close
  # raise Fsc::ClosedError.
  class Cache
    attr_reader :dir

    # pack_limit: values written with #write of at most that many bytes are
    # packed into their shard's pack file; 0 gives every value a file of its
    # own; above 1 MiB, Fsc::InvalidArgumentError.
    # shared_group (a gid or a group name) shares the cache with that group's
    # members; without it a directory another user owns or others may write
    # is refused with Fsc::AccessDeniedError (FSC_OWNERSHIP in fsc.h).
    # network_mode: :auto runs in network mode (FSC_NETWORK in fsc.h) when the
    # cache is on a network or FUSE filesystem; :on and :off force it.
    def initialize(dir, cache_size: 1 << 30, expires_in: nil, distributed_lock: true, file_movable: false,
                   durable: false, max_entries: 0, pack_limit: N::FSC_PACK_LIMIT_DEFAULT, shared_group: nil,
                   network_mode: :auto)
      @mutex = Mutex.new
      @calls = 0 # calls in flight (guarded by @mutex)
      @closing = nil # the handle #close left to the last call in flight
      opts = N::Options.new
      opts.cache_size = Cache.count(cache_size, "cache_size")
      opts.max_entries = Cache.count(max_entries, "max_entries")
      opts.pack_limit = Cache.count(pack_limit, "pack_limit")
      opts.expiration_ms = Cache.ms(expires_in, -1)
      opts.distributed_lock = distributed_lock ? 1 : 0
      opts.file_movable = file_movable ? 1 : 0
      opts.durable = durable ? 1 : 0
      opts.shared_group = Cache.gid(shared_group)
      opts.network_mode = Cache.network_mode(network_mode)
      @dir = dir.to_s
      raise ArgumentError, "a path must not contain a NUL character: #{@dir.inspect}" if @dir.include?("\0")
      @file_movable = file_movable
      status, @handle = N.fsc_open(@dir, opts)
      Fsc.check(status, "open #{@dir}")
    end

    MS_MAX = (1 << 63) - 1

    # Seconds (Numeric or ActiveSupport::Duration) to milliseconds, saturated
    # at the int64 maximum (the library reads that as never).
    def self.ms(seconds, default)
      return default if seconds.nil?

      ms = seconds.to_f * 1000
      raise ArgumentError, "a time span must be a number, not NaN" if ms.nan?
      raise ArgumentError, "a time span must not be negative" if ms.negative?

      ms >= MS_MAX ? MS_MAX : ms.round
    end

    # A size or count option: an Integer from 0 to 2**64 - 1.
    def self.count(value, name)
      n = Integer(value)
      raise ArgumentError, "#{name} must be from 0 to 2**64 - 1, not #{n}" if n.negative? || n >= (1 << 64)

      n
    end

    NETWORK_MODES = { auto: N::FSC_NETWORK_AUTO, on: N::FSC_NETWORK_ON, off: N::FSC_NETWORK_OFF }.freeze

    # :auto, :on or :off (or their Strings) to FSC_NETWORK_*.
    def self.network_mode(mode)
      NETWORK_MODES.fetch(mode.is_a?(String) ? mode.to_sym : mode) do
        raise ArgumentError, "network_mode must be :auto, :on or :off, not #{mode.inspect}"
      end
    end

    # A group name or gid to a gid; nil to -1 (private).
    def self.gid(group)
      return -1 if group.nil?
      return Etc.getgrnam(group.to_s).gid if group.is_a?(String) || group.is_a?(Symbol)

      Integer(group)
    end

    # Closes the handle (locks still held stay valid until released); with
    # calls in flight, the last of them closes it.
    def close
      handle = @mutex.synchronize do
        h = @handle
        @handle = nil
        if h && @calls.positive?
          @closing = h
          h = nil
        end
        h
      end
      N.fsc_close(handle) if handle
      nil
    end

    def closed?
      @handle.nil?
    end

    # The value (an ASCII-8BIT String), or nil on a miss.
    def read(key)
      entry = get_entry(key)
      entry && read_all(entry)
    end

    # Stores the String's bytes under the key, replacing any value. nil is
    # no value (refused: #delete removes one).
    def write(key, value)
      raise ArgumentError, "a value must be a String, not nil (delete the key to remove its value)" if value.nil?

      Fsc.check(N.fsc_set(handle, Cache.key(key), String(value)), "write")
      true
    end

    # Removes the key's value; true if there was one.
    def delete(key)
      Fsc.check(N.fsc_delete(handle, Cache.key(key)), "delete") == N::FSC_OK
    end

    def exist?(key)
      entry = get_entry(key)
      N.fsc_entry_free(entry)
      !entry.nil?
    end

    # The key's value; on a miss (or expiry) the block's result is stored and
    # returned, the block running at most once across every process. An
    # exception in the block propagates and nothing is stored. Without a
    # block, the same as #read.
    def fetch(key, expires_in: nil)
      return read(key) unless block_given?

      k = Cache.key(key)
      creator = proc { write(k, yield(key)) }
      status, entry = N.fsc_rb_get_or_create(handle, k, Cache.ms(expires_in, -1), creator)
      Fsc.check(status, "fetch")
      read_all(entry)
    end

    # Runs the block holding the key's lock (shared by every thread and
    # process using the directory; re-entrant for the holding thread).
    # timeout: nil waits as long as it takes, 0 only tries (Fsc::BusyError),
    # else seconds (Fsc::LockTimeoutError).
    def lock(key, timeout: nil)
      status, hold = N.fsc_rb_lock(handle, Cache.key(key), Cache.ms(timeout, -1))
      Fsc.check(status, "lock")
      begin
        yield
      ensure
        Fsc.check(N.fsc_unlock(hold), "unlock")
      end
    end

    # Pid of another process holding the key's lock, 0 if none.
    def lock_holder(key)
      status, pid = N.fsc_lock_holder(handle, Cache.key(key))
      Fsc.check(status, "lock_holder")
      pid
    end

    # Stores a file without reading it into memory: a path, or an IO whose
    # current position is remembered (read_file hands out an IO positioned
    # there). move: true (or file_movable) renames the file into the cache.
    def write_file(key, io_or_path, move: false)
      flags = move || @file_movable ? N::FSC_MOVE : 0
      if io_or_path.respond_to?(:fileno)
        io = io_or_path
        pos = io.pos
        io.flush
        io.seek(pos) # drops read-ahead so the descriptor's offset is pos
        path = flags.zero? || !io.respond_to?(:path) ? nil : io.path
        flags = 0 if path.nil?
        Fsc.check(N.fsc_set_file(handle, Cache.key(key), io.fileno, path, flags), "write_file")
      else
        path = io_or_path.to_s
        raise ArgumentError, "a path must not contain a NUL character: #{path.inspect}" if path.include?("\0")

        Fsc.check(N.fsc_set_file(handle, Cache.key(key), -1, path, flags), "write_file")
      end
      true
    end

    # A binary File positioned where the stored file was, or nil. With a
    # block, yields it and closes it afterwards.
    def read_file(key)
      entry = get_entry(key)
      return nil if entry.nil?

      begin
        fd = N.fsc_rb_entry_dup_fd(entry)
        raise SystemCallError.new("dup of a cached value's descriptor", FFI_ERRNO) if fd.negative?
      ensure
        N.fsc_entry_free(entry)
      end
      file = File.for_fd(fd, "rb")
      return file unless block_given?

      begin
        yield file
      ensure
        file.close
      end
    end

    # Every value stored before now becomes a miss (hard) or stale (soft:
    # read misses, fetch serves it while one caller regenerates).
    def invalidate(hard: true)
      Fsc.check(N.fsc_invalidate(handle, hard ? 1 : 0), "invalidate")
    end

    # Removes every value.
    def clear
      Fsc.check(N.fsc_clear(handle), "clear")
      true
    end

    def prune
      Fsc.check(N.fsc_prune(handle), "prune")
    end

    def stats
      status, stats = N.fsc_stats(handle)
      Fsc.check(status, "stats")
      stats
    end

    def verify(repair: false)
      status, report = N.fsc_verify(handle, repair ? 1 : 0)
      Fsc.check(status, "verify")
      report
    end

    # Yields (key, size, created_ms) for every stored value; `break` stops.
    # A key longer than FSC_MAX_KEY is yielded as Fsc.hashed_key(key).
    def each_key
      return enum_for(:each_key) unless block_given?

      Fsc.check(N.fsc_rb_foreach(handle, proc { |k, size, created_ms| yield(k, size, created_ms) && false }),
                "each_key")
      self
    end

    def keys
      each_key.map { |k, _size, _created| k }
    end

    # A key as the bytes fsc stores.
    def self.key(key)
      key = key.to_s if key.is_a?(Symbol)
      raise TypeError, "fsc keys are Strings, not #{key.class}" unless key.is_a?(String)

      key.bytesize > N::FSC_MAX_KEY ? Fsc.hashed_key(key) : key
    end

    private

    FFI_ERRNO = 9 # EBADF
    private_constant :FFI_ERRNO

    def handle
      @handle or raise ClosedError
    end

    # Runs the block as a call in flight (see Cache): #close leaves the
    # handle open until the block ends.
    def in_flight
      @mutex.synchronize do
        raise ClosedError unless @handle

        @calls += 1
      end
      begin
        yield
      ensure
        last = @mutex.synchronize do
          @calls -= 1
          h = @calls.zero? ? @closing : nil
          @closing = nil if h
          h
        end
        N.fsc_close(last) if last
      end
    end

    # Every public call that uses the handle is a call in flight.
    module InFlight
      %i[read write delete exist? fetch lock lock_holder write_file read_file invalidate clear prune stats verify
         each_key].each do |name|
        define_method(name) { |*args, **kw, &blk| in_flight { super(*args, **kw, &blk) } }
      end
    end
    private_constant :InFlight
    prepend InFlight

    def get_entry(key)
      status, entry = N.fsc_get(handle, Cache.key(key))
      Fsc.check(status, "read") == N::FSC_OK ? entry : nil
    end

    def read_all(entry)
      status, data = N.fsc_rb_entry_read_all(entry)
      Fsc.check(status, "read")
      data
    ensure
      N.fsc_entry_free(entry)
    end
  end
end
