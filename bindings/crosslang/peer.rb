# Cross-language peer in Ruby: one operation per run on a cache directory,
# keys and values given and printed in hex. See README.md for the commands.
require "fsc"

def die(msg)
  puts "error #{msg}"
  exit 1
end

def unhex(s)
  die("bad hex #{s.inspect}") unless s.match?(/\A(\h\h)*\z/)
  [s].pack("H*")
end

def tohex(b)
  b.unpack1("H*")
end

# Polls for path every millisecond, for at most 30 s.
def wait_for(path)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
  until File.exist?(path)
    die("timed out waiting for #{path}") if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    sleep 0.001
  end
end

$stdout.sync = true
cmd, dir, keyhex, *args = ARGV
die("usage: peer.rb CMD DIR KEYHEX [ARGS...]") if keyhex.nil?
# @FILE: the key is FILE's bytes (a long key's hex does not fit in one argument).
key = keyhex.start_with?("@") ? File.binread(keyhex[1..]) : unhex(keyhex)
if cmd == "openrace" # READYFILE GOFILE: open at the start signal, then get
  File.write(args[0], "")
  wait_for(args[1])
  cmd = "get"
end
begin
  cache = Fsc::Cache.new(dir)
  case cmd
  when "set"
    cache.write(key, unhex(args[0]))
    puts "stored"
  when "get"
    v = cache.read(key)
    puts(v.nil? ? "miss" : "hit #{tohex(v)}")
  when "trylock"
    begin
      cache.lock(key, timeout: 0) {}
      puts "acquired"
    rescue Fsc::BusyError
      puts "busy #{cache.lock_holder(key)}"
    end
  when "hold" # READYFILE RELEASEFILE: holds the lock until RELEASEFILE exists
    ready, release = args
    cache.lock(key, timeout: 10) do
      puts "holding #{Process.pid}"
      # Written aside and renamed in: the driver reads the file as soon as it exists.
      File.write("#{ready}.tmp", "#{Process.pid}\n")
      File.rename("#{ready}.tmp", ready)
      wait_for(release)
    end
    puts "released"
  when "stampede" # READYFILE GOFILE COUNTERFILE VALHEX
    ready, go, counter, mine = args
    File.write(ready, "")
    wait_for(go)
    v = cache.fetch(key) do
      File.open(counter, File::WRONLY | File::APPEND | File::CREAT, 0o644) { |f| f.write("ruby #{Process.pid}\n") }
      sleep 0.3
      unhex(mine)
    end
    puts "value #{tohex(v)}"
  else
    die("unknown command #{cmd.inspect}")
  end
  cache.close
rescue Fsc::Error => e
  die("#{cmd}: #{e.class}: #{e.message}")
end
