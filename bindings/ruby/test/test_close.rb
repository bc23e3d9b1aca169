# frozen_string_literal: true

require_relative "test_helper"

# close racing calls in other threads, and blocks the cache calls that close,
# re-enter or raise: no crash, every call gives its value or raises
# Fsc::ClosedError.
class TestClose < FscTest
  def worker(cache, n, started)
    calls = 0
    loop do
      case calls % 3
      when 0 then cache.write("k#{n}", "v")
      when 1 then raise "wrong value" unless [nil, "v"].include?(cache.read("k#{n}"))
      else raise "wrong value" unless cache.fetch("shared") { "made" } == "made"
      end
      calls += 1
      started << n if calls == 50
    end
  rescue Fsc::ClosedError
    :closed
  end

  def test_close_while_threads_call
    20.times do
      cache = Fsc::Cache.new(@dir)
      started = Queue.new
      threads = Array.new(4) { |n| Thread.new { worker(cache, n, started) } }
      threads.size.times { started.pop } # every thread is calling
      cache.close
      threads.each { |t| assert_equal :closed, t.value }
      assert cache.closed?
      assert_raises(Fsc::ClosedError) { cache.read("k0") }
    end
  end

  def test_block_closes_its_cache
    cache = Fsc::Cache.new(File.join(@tmp, "own"))
    # The value's write runs after the close: it is refused, nothing is stored.
    assert_raises(Fsc::ClosedError) do
      cache.fetch("k") do
        cache.close
        "value"
      end
    end
    assert cache.closed?
    again = Fsc::Cache.new(File.join(@tmp, "own"))
    assert_nil again.read("k")
    assert_equal "second", again.fetch("k") { "second" } # the key's lock was released
    again.close
  end

  def test_block_reenters_its_cache
    value = @cache.fetch("k") do
      assert_nil @cache.read("k")
      @cache.write("other", "o")
      assert_equal "i", @cache.fetch("inner") { "i" }
      @cache.lock("k") { :reentrant }
      "outer"
    end
    assert_equal "outer", value
    assert_equal "o", @cache.read("other")
    assert_equal "i", @cache.read("inner")
  end

  def test_block_raises_then_cache_works
    boom = Class.new(StandardError)
    assert_raises(boom) do
      @cache.fetch("k") do
        @cache.write("side", "s")
        raise boom
      end
    end
    assert_nil @cache.read("k")
    assert_equal "s", @cache.read("side")
    assert_equal "v", @cache.fetch("k") { "v" }
  end

  def test_each_key_block_closes_and_reenters
    cache = Fsc::Cache.new(File.join(@tmp, "walk"))
    5.times { |i| cache.write("k#{i}", "v") }
    seen = []
    cache.each_key do |key, _size, _created|
      seen << key
      if seen.size == 1
        assert_equal "v", cache.read(key)
        cache.close
      else
        assert_raises(Fsc::ClosedError) { cache.read(key) }
      end
    end
    assert_equal 5, seen.size
    assert cache.closed?
  end

  def test_lock_block_closes
    cache = Fsc::Cache.new(File.join(@tmp, "locked"))
    cache.lock("k") { cache.close }
    assert cache.closed?
    again = Fsc::Cache.new(File.join(@tmp, "locked"))
    again.lock("k", timeout: 0) { :free } # the hold was released
    again.close
  end

  def test_ownership_and_shared_group
    planted = File.join(@tmp, "planted")
    Dir.mkdir(planted)
    File.chmod(0o777, planted)
    e = assert_raises(Fsc::AccessDeniedError) { Fsc::Cache.new(planted) }
    assert_match(/writable by others/, e.message)
    shared = File.join(@tmp, "shared")
    Fsc::Cache.new(shared, shared_group: Process.gid).close
    assert_equal 0o2770, File.stat(shared).mode & 0o7777
    assert_raises(Fsc::AccessDeniedError) { Fsc::Cache.new(shared) }
  end
end
