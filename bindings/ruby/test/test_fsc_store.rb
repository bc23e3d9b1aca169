# frozen_string_literal: true

require_relative "test_helper"
require "active_support"
require "active_support/cache"
require "active_support/core_ext/numeric/time"

class TestFscStore < FscTest
  def setup
    super
    @store = ActiveSupport::Cache.lookup_store(:fsc_store, File.join(@tmp, "store"), cache_size: 1 << 24)
  end

  def teardown
    @store.close
    super
  end

  # nil is a value, as in FileStore: written, it exists and reads as nil.
  def test_nil_is_stored_as_file_store_stores_it
    file_store = ActiveSupport::Cache::FileStore.new(File.join(@tmp, "file_store"))
    [file_store, @store].each do |store|
      assert store.write("k", nil), store.class.name
      assert store.exist?("k"), store.class.name
      assert_nil store.read("k"), store.class.name
      assert_nil store.fetch("k") { flunk "#{store.class.name}: nil was not kept" }
    end
  end

  def test_lookup_store_gives_an_fsc_store
    assert_instance_of ActiveSupport::Cache::FscStore, @store
    assert_equal File.join(@tmp, "store"), @store.cache_path
  end

  def test_read_write_fetch_delete
    assert_nil @store.read("k")
    assert @store.write("k", { "any" => [:marshalable, 1] })
    assert_equal({ "any" => [:marshalable, 1] }, @store.read("k"))
    assert @store.exist?("k")
    calls = 0
    2.times { assert_equal "made", @store.fetch("f") { calls += 1; "made" } }
    assert_equal 1, calls
    assert @store.delete("k")
    refute @store.exist?("k")
    assert_equal({ "a" => 1, "b" => nil }.compact, @store.tap { |s| s.write("a", 1) }.read_multi("a", "b"))
  end

  def test_expiry_and_versions
    @store.write("k", "v", expires_in: -1.second)
    assert_nil @store.read("k")
    @store.write("k", "v", expires_in: 1.hour)
    assert_equal "v", @store.read("k")
    @store.write("versioned", "v1", version: 1)
    assert_nil @store.read("versioned", version: 2)
    assert_equal "v1", @store.read("versioned", version: 1)
  end

  def test_unless_exist_and_namespace
    assert @store.write("k", "first")
    refute @store.write("k", "second", unless_exist: true)
    assert_equal "first", @store.read("k")
    @store.write("k", "spaced", namespace: "ns")
    assert_equal "spaced", @store.read("k", namespace: "ns")
    assert_equal "first", @store.read("k")
  end

  def test_increment_decrement_delete_matched_cleanup_clear
    @store.write("n", 1, raw: true)
    assert_equal 3, @store.increment("n", 2)
    assert_equal 2, @store.decrement("n")
    assert_nil @store.increment("missing")
    @store.write("user/1", "a")
    @store.write("user/2", "b")
    @store.write("post/1", "c")
    @store.delete_matched(/\Auser/)
    assert_nil @store.read("user/1")
    assert_equal "c", @store.read("post/1")
    @store.write("old", "x", expires_in: -1.second)
    @store.cleanup
    refute_includes @store.fsc.keys, "old"
    @store.clear
    assert_nil @store.read("post/1")
  end

  def test_entries_are_marshaled_store_entries
    @store.write("k", "v")
    entry = Marshal.load(@store.fsc.read("k"))
    assert_instance_of ActiveSupport::Cache::Entry, entry
    assert_equal "v", entry.value
    @store.fsc.write("k", "not marshal data")
    assert_nil @store.read("k")
  end

  def test_pack_limit_reaches_the_cache
    dir = File.join(@tmp, "unpacked")
    store = ActiveSupport::Cache.lookup_store(:fsc_store, dir, pack_limit: 0)
    store.write("k", "v")
    assert_equal "v", store.read("k")
    names = Dir.glob(File.join(dir, "shards", "*", "*")).map { |f| File.basename(f) }
    assert names.any? { |n| n.match?(/\A\h{32}\z/) }, names.inspect
    store.close
  end

  def test_network_mode_reaches_the_cache
    store = ActiveSupport::Cache.lookup_store(:fsc_store, File.join(@tmp, "net"), network_mode: :on)
    assert_equal true, store.fsc.stats[:network_mode]
    store.close
  end

  def test_increment_is_atomic_across_processes
    @store.write("n", 0, raw: true)
    kids = Array.new(3) do
      fork_child do |_input, output|
        store = ActiveSupport::Cache::FscStore.new(File.join(@tmp, "store"))
        20.times { store.increment("n") }
        output.puts "done"
      end
    end
    kids.each { |_pid, _to, from| assert_equal "done\n", from.gets }
    kids.each { |pid, _to, _from| assert_child_ok(pid) }
    assert_equal 60, @store.read("n", raw: true).to_i
  end
end
