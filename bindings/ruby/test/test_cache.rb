# frozen_string_literal: true

require_relative "test_helper"

class TestCache < FscTest
  def test_read_write_delete
    assert_nil @cache.read("missing")
    assert @cache.write("k", "v1")
    assert_equal "v1", @cache.read("k")
    assert @cache.exist?("k")
    assert @cache.delete("k")
    refute @cache.delete("k")
    refute @cache.exist?("k")
    assert_nil @cache.read("k")
  end

  def test_binary_keys_and_values
    value = (0..255).map(&:chr).join.b * 3
    @cache.write("\0\xff".b, value)
    @cache.write("été", "utf8")
    @cache.write(:sym, "")
    assert_equal value, @cache.read("\0\xff".b)
    assert_equal Encoding::ASCII_8BIT, @cache.read("\0\xff".b).encoding
    assert_nil @cache.read("\0".b)
    assert_equal "utf8", @cache.read("été".b)
    assert_equal "", @cache.read("sym")
    assert_equal ["\0\xff".b, "été".b, "sym"].sort, @cache.keys.sort
  end

  def test_long_keys
    max = "\0".b * Fsc::Native::FSC_MAX_KEY
    @cache.write(max, "x")
    assert_equal [max], @cache.keys, "a key of FSC_MAX_KEY bytes is stored as is"
    assert @cache.delete(max)

    # The same key (and SHA-256) in every binding's test: Python stores it so.
    long = "0123456789abcdef" * 4097
    stored = "fsc.sha256:4de9ccf85d6b865de082de306a67e3aacb51222b2e3380a3455d0504e1e993b7"
    other = long.chop + "x"
    @cache.write(long, "long")
    @cache.write(other, "other")
    assert_equal "long", @cache.read(long)
    assert_equal stored, Fsc.hashed_key(long)
    assert_includes @cache.keys, stored
    assert_equal "long", @cache.read(stored)
    assert_equal "made", @cache.fetch(long + "y") { "made" }
    @cache.lock(long) do
      other_thread = Thread.new { assert_raises(Fsc::BusyError) { @cache.lock(stored, timeout: 0) {} } }
      other_thread.join
    end
    assert @cache.delete(long)
    assert_nil @cache.read(long)
    assert_equal "other", @cache.read(other)
  end

  def test_errors_come_from_the_status_table
    native = Fsc::Native.constants.grep(/\AFSC_E/)
    assert_operator native.size, :>=, 14
    native.each do |name|
      status = Fsc::Native.const_get(name)
      klass = Fsc::ERROR_CLASSES.fetch(status)
      assert_operator klass, :<, Fsc::Error
      assert_equal status, klass::STATUS
      assert Fsc::ERRORS.key?(name), "no idiomatic name for #{name}"
      assert_equal name.to_s, klass.new("x").status_name
    end
    assert_equal native.size, Fsc::ERROR_CLASSES.values.uniq.size
    assert_raises(Fsc::InvalidArgumentError) { @cache.write("", "x") }
    assert_raises(TypeError) { @cache.write(1, "x") }
  end

  def test_open_errors
    foreign = File.join(@tmp, "foreign")
    Dir.mkdir(foreign)
    File.write(File.join(foreign, "somefile"), "x")
    e = assert_raises(Fsc::FormatError) { Fsc::Cache.new(foreign) }
    assert_equal "FSC_EFORMAT", e.status_name
    assert_includes e.message, "foreign"
  end

  def test_pack_limit
    [[0, true], [nil, false]].each do |limit, own_file|
      dir = File.join(@tmp, "pack#{limit.inspect}")
      c = limit ? Fsc::Cache.new(dir, pack_limit: limit) : Fsc::Cache.new(dir)
      assert c.write("k", "small value")
      assert_equal "small value", c.read("k")
      names = Dir.children(File.join(dir, "shards")).flat_map { |xx| Dir.children(File.join(dir, "shards", xx)) }
      assert_equal own_file, names.any? { |n| n.match?(/\A\h{32}\z/) }, "pack_limit #{limit.inspect}: #{names}"
      assert_equal !own_file, names.any? { |n| n.match?(/\Apack\.\h{16}\z/) }, "pack_limit #{limit.inspect}: #{names}"
      c.close
    end
    e = assert_raises(Fsc::InvalidArgumentError) { Fsc::Cache.new(File.join(@tmp, "big"), pack_limit: (1 << 20) + 1) }
    assert_equal "FSC_EINVAL", e.status_name
    Fsc::Cache.new(File.join(@tmp, "max"), pack_limit: 1 << 20).close
  end

  def test_too_big_and_not_supported
    small = Fsc::Cache.new(File.join(@tmp, "small"), cache_size: 10)
    assert_raises(Fsc::TooBigError) { small.write("k", "x" * 11) }
    assert_nil small.read("k")
    %i[prune stats verify].each do |m|
      small.public_send(m)
    rescue Fsc::NotSupportedError => e
      assert_equal "FSC_ENOTSUP", e.status_name
    end
    small.close
    assert_raises(IOError) { small.read("k") }
  end

  def test_stats_says_local_filesystem
    assert_equal false, @cache.stats[:network_fs]
    assert_equal false, @cache.stats[:network_mode]
  end

  def test_network_mode
    { auto: false, on: true, off: false, "on" => true }.each do |mode, running|
      c = Fsc::Cache.new(File.join(@tmp, "net-#{mode}"), network_mode: mode)
      assert_equal running, c.stats[:network_mode], mode.inspect
      assert_equal false, c.stats[:network_fs]
      # A handle forced on works as any other on a local directory.
      c.write("k", "v")
      assert_equal "v", c.read("k")
      assert_equal "made", c.fetch("g") { "made" }
      c.close
    end
    [:sometimes, "", nil, 1, true].each do |bad|
      e = assert_raises(ArgumentError) { Fsc::Cache.new(File.join(@tmp, "bad"), network_mode: bad) }
      assert_match(/network_mode must be/, e.message)
    end
    refute File.exist?(File.join(@tmp, "bad"))
  end

  def test_lost_error
    assert_equal(-15, Fsc::LostError::STATUS)
    assert_equal "FSC_ELOST", Fsc::LostError.new("lost").status_name
    e = assert_raises(Fsc::LostError) { Fsc.check(-15, "write") }
    assert_match(/FSC_ELOST/, e.message)
  end

  def test_expiry_and_invalidation
    c = Fsc::Cache.new(@dir, expires_in: 0)
    c.write("k", "v")
    assert_nil c.read("k")
    c.close
    @cache.write("k", "old")
    assert_equal "new", @cache.fetch("k", expires_in: 0) { "new" }
    @cache.invalidate(hard: true)
    assert_nil @cache.read("k")
    @cache.write("k", "old")
    @cache.invalidate(hard: false)
    assert_nil @cache.read("k")
    assert_equal "newer", @cache.fetch("k") { "newer" }
    @cache.clear
    assert_nil @cache.read("k")
  end

  def test_fetch
    calls = 0
    2.times { assert_equal "made k", @cache.fetch("k") { |key| calls += 1; "made #{key}" } }
    assert_equal 1, calls
    assert_nil @cache.fetch("missing")
  end

  def test_fetch_error_propagates_and_nothing_is_stored
    boom = Class.new(StandardError)
    assert_raises(boom) { @cache.fetch("k") { raise boom, "no value" } }
    assert_nil @cache.read("k")
    assert_equal 7, catch(:done) { @cache.fetch("k") { throw :done, 7 } }
    assert_nil @cache.read("k")
    assert_equal "second", @cache.fetch("k") { "second" } # the lock was released
  end

  # Writes content into a new file name under @tmp and yields it open for
  # reading at offset at; returns its path.
  def open_source_at(name, content, at)
    src = File.join(@tmp, name)
    File.binwrite(src, content)
    File.open(src, "rb") do |f|
      f.seek(at)
      yield f
    end
    src
  end

  def test_write_file_copy_keeps_offset
    src = open_source_at("src.bin", "0123456789", 4) do |f|
      @cache.write_file("k", f)
      assert_equal 4, f.pos
    end
    assert File.exist?(src)
    @cache.read_file("k") do |f|
      assert_equal 4, f.pos
      assert_equal "456789", f.read
      f.rewind
      assert_equal "0123456789", f.read
    end
    @cache.write_file("p", src)
    assert_equal "0123456789", @cache.read_file("p", &:read)
    assert_nil @cache.read_file("missing")
  end

  def test_write_file_after_buffered_read
    src = File.join(@tmp, "src.bin")
    File.binwrite(src, "abcdefgh" * 4096)
    File.open(src, "rb") do |f|
      assert_equal "abc", f.read(3) # Ruby has buffered far more than 3 bytes
      @cache.write_file("k", f)
      assert_equal "def", f.read(3)
    end
    @cache.read_file("k") { |f| assert_equal [3, "def"], [f.pos, f.read(3)] }
  end

  def test_write_file_move
    src = open_source_at("moved.bin", "moved content", 6) { |f| @cache.write_file("k", f, move: true) }
    refute File.exist?(src)
    @cache.read_file("k") { |f| assert_equal [6, "content"], [f.pos, f.read] }
  end

  def test_lock_reentrant_and_thread_exclusion
    @cache.lock("k", timeout: 1) do
      @cache.lock("k", timeout: 0) { :reentrant }
      got = Thread.new do
        @cache.lock("k", timeout: 0) { :acquired }
      rescue Fsc::BusyError
        :busy
      end.value
      assert_equal :busy, got
    end
    assert_equal :free, @cache.lock("k", timeout: 0) { :free }
  end

  # Forks a child that holds the lock of key until it reads a line, then says
  # "released"; returns once the child holds it.
  def fork_lock_holder(key)
    pid, to_child, from_child = fork_child do |input, output|
      @cache.lock(key) do
        output.puts "locked"
        output.flush
        input.gets
      end
      output.puts "released"
    end
    assert_equal "locked\n", from_child.gets
    [pid, to_child, from_child]
  end

  def test_lock_excludes_forked_process
    pid, to_child, from_child = fork_lock_holder("k")
    assert_equal pid, @cache.lock_holder("k")
    assert_raises(Fsc::BusyError) { @cache.lock("k", timeout: 0) { flunk } }
    assert_raises(Fsc::LockTimeoutError) { @cache.lock("k", timeout: 0.05) { flunk } }
    assert_equal :other, @cache.lock("other", timeout: 0) { :other }
    to_child.puts "go"
    to_child.flush
    assert_equal "released\n", from_child.gets
    assert_equal :mine, @cache.lock("k", timeout: 10) { :mine }
    assert_child_ok(pid)
  end

  # Whether /proc/locks lists pid as blocked on a record lock ("->" lines).
  def waiting_for_a_lock?(pid)
    File.readlines("/proc/locks").any? do |line|
      w = line.split
      w[1] == "->" && w[5] == pid.to_s
    end
  end

  def test_lock_wait_releases_the_gvl
    pid, to_child, = fork_lock_holder("k")
    waiter = Thread.new { @cache.lock("k") { :acquired } } # no timeout: one wait in the kernel
    # Only a wait that released the GVL lets this thread see it in the kernel
    # (one that kept it would hang here: the child releases only when told).
    assert waiter.alive? until waiting_for_a_lock?(Process.pid)
    to_child.puts "go"
    to_child.flush
    assert_equal :acquired, waiter.value
    assert_child_ok(pid)
  end

  def test_fetch_creates_once_across_processes
    log = File.join(@tmp, "creators")
    kids = nil
    @cache.lock("k") do # the children pile up behind this lock
      kids = Array.new(4) do
        fork_child do |_input, output|
          output.puts "ready"
          output.flush
          value = @cache.fetch("k") do
            File.open(log, "a") { |f| f.puts Process.pid }
            "value from #{Process.pid}"
          end
          output.puts value
        end
      end
      kids.each { |_pid, _to, from| assert_equal "ready\n", from.gets }
    end
    answers = kids.map { |_pid, _to, from| from.gets.chomp }.uniq
    kids.each { |pid, _to, _from| assert_child_ok(pid) }
    creators = File.read(log).split
    assert_equal 1, creators.size
    assert_equal ["value from #{creators[0]}"], answers
  end

  def test_big_raw_value_streams
    size = 256 * 1024 * 1024
    script = <<~RUBY
      require "fsc"
      dir = ARGV[0]
      src = File.join(dir, "big.bin")
      chunk = (0..255).map(&:chr).join.b * 4096 # 1 MiB
      File.open(src, "wb") { |f| (#{size} / chunk.bytesize).times { f.write(chunk) } }
      c = Fsc::Cache.new(File.join(dir, "big"), cache_size: 1 << 30)
      File.open(src, "rb") { |f| f.seek(1); c.write_file("big", f) }
      File.unlink(src)
      total = 0
      first = nil
      start = nil
      buf = String.new
      c.read_file("big") do |f|
        start = f.pos
        while f.read(1 << 20, buf)
          first ||= buf[0, 3].unpack1("H*")
          total += buf.bytesize
        end
      end
      peak = File.read("/proc/self/status")[/^VmHWM:\\s+(\\d+)/, 1]
      puts [start, total, first, peak].join(" ")
    RUBY
    dirs = $LOADED_FEATURES.grep(%r{/(fsc_native\.so|fsc\.rb)\z}).map { |f| ["-I", File.dirname(f)] }
    out = IO.popen([RbConfig.ruby, *dirs.flatten, "-e", script, @tmp], &:read)
    assert $?.success?
    start, total, first, peak_kib = out.split
    assert_equal [1, size - 1, "010203"], [start.to_i, total.to_i, first]
    assert_operator peak_kib.to_i, :<, 64 * 1024, "peak RSS #{peak_kib} KiB"
  end
  def test_negative_sizes_and_counts_are_refused
    %i[cache_size max_entries pack_limit].each do |opt|
      assert_raises(ArgumentError) { Fsc::Cache.new(File.join(@tmp, "neg"), **{ opt => -1 }) }
    end
    assert_raises(ArgumentError) { Fsc::Cache.new(File.join(@tmp, "neg"), cache_size: 1 << 64) }
  end

  def test_path_with_nul_is_refused
    assert_raises(ArgumentError) { Fsc::Cache.new(File.join(@tmp, "other\0x")) }
    refute File.exist?(File.join(@tmp, "other")) # the C library would have opened the prefix
    assert_raises(ArgumentError) { @cache.write_file("k", File.join(@tmp, "file\0x")) }
  end

  # nil is not a String: refused (an empty value is "", a removal is #delete).
  def test_write_nil_is_refused
    @cache.write("k", "v")
    assert_raises(ArgumentError) { @cache.write("k", nil) }
    assert_equal "v", @cache.read("k")
  end

  def test_huge_expiry_never_expires
    [1e13, 1e20, Float::INFINITY].each do |seconds|
      dir = File.join(@tmp, "huge-#{seconds}")
      cache = Fsc::Cache.new(dir, expires_in: seconds)
      cache.write("k", "v")
      assert_equal "v", cache.read("k"), "expires_in: #{seconds}"
      cache.prune
      assert_equal "v", cache.read("k"), "expires_in: #{seconds}"
      assert_equal "v", cache.fetch("k", expires_in: seconds) { flunk "created again" }
      cache.close
    end
    assert_raises(ArgumentError) { Fsc::Cache.new(File.join(@tmp, "nan"), expires_in: Float::NAN) }
    assert_equal :held, @cache.lock("k", timeout: Float::INFINITY) { :held }
  end

  # A FIFO as write_file's source: refused at once (an open of it would wait
  # for a writer with the whole interpreter blocked: this test would hang).
  def test_write_file_of_a_fifo_is_refused
    fifo = File.join(@tmp, "fifo")
    File.mkfifo(fifo)
    assert_raises(Fsc::InvalidArgumentError) { @cache.write_file("k", fifo) }
    assert_raises(Fsc::InvalidArgumentError) { @cache.write_file("k", fifo, move: true) }
    assert File.pipe?(fifo)
    assert_nil @cache.read("k")
  end
end
