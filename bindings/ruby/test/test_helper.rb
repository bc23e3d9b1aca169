# frozen_string_literal: true

require "minitest/autorun"
require "tmpdir"
require "fileutils"
require "fsc"

# A fresh directory per test.
class FscTest < Minitest::Test
  def setup
    @tmp = Dir.mktmpdir("fsc-rb")
    @dir = File.join(@tmp, "cache")
    @cache = Fsc::Cache.new(@dir)
  end

  def teardown
    @cache.close
    FileUtils.rm_rf(@tmp)
  end

  # Forks a child running the block with pipes (to_child, from_child); the
  # child exits 0 unless the block raises.
  def fork_child
    down_r, down_w = IO.pipe
    up_r, up_w = IO.pipe
    pid = fork do
      down_w.close
      up_r.close
      code = 0
      begin
        yield down_r, up_w
      rescue Exception => e # rubocop:disable Lint/RescueException
        warn "child failed: #{e.full_message}"
        code = 1
      end
      up_w.flush
      exit!(code)
    end
    down_r.close
    up_w.close
    [pid, down_w, up_r]
  end

  def assert_child_ok(pid)
    _, status = Process.wait2(pid)
    assert_equal 0, status.exitstatus
  end
end
