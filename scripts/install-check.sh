#!/usr/bin/env bash
# Installs fsc the way each language installs things, into a temporary
# directory outside the source tree, and runs a short program against each
# installation: meson install + pkg-config (C), a Go module with a replace
# directive, luarocks make, gem build + gem install, pip install and
# python3 -m build. Prints "ok"/"not ok" per check and ends with one line
# "N passed, M failed". Everything is built from a copy of the checkout's
# files, so the tree stays clean. KEEP=1 keeps the temporary directory.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

work=$(mktemp -d /tmp/fsc-install-check.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
src=$work/src          # the copy of the checkout
prefix=$work/prefix    # meson install --prefix
elsewhere=$work/elsewhere   # where the programs run from
mkdir -p "$src" "$elsewhere" "$work/logs" "$work/home"
# Nothing from the caller's environment decides where things are found;
# caches (Go, pip, luarocks, gem) stay under $work.
unset LD_LIBRARY_PATH PKG_CONFIG_PATH PYTHONPATH RUBYLIB LUA_PATH LUA_CPATH GEM_HOME GEM_PATH
export HOME=$work/home GOCACHE=$work/gocache GOPATH=$work/gopath GOPROXY=off GOFLAGS=-mod=mod \
  GO111MODULE=on GOTOOLCHAIN=local PIP_NO_INDEX=1 PIP_NO_CACHE_DIR=1

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$src"
else
  tar --exclude='./build*' --exclude='./.git' -cf - . | tar -xf - -C "$src"
fi
version=$(sed -nE "s/^ *version : '([^']+)',/\1/p" meson.build | head -n 1)

passed=0
failed=0
# check NAME FUNCTION: runs FUNCTION with its output in a log, shown on failure.
check() {
  local name=$1 log rc
  log=$work/logs/$(echo "$1" | tr -c 'A-Za-z0-9\n' '_').log
  # Not inside an `if`: that would switch set -e off in the subshell.
  (set -e; "$2") >"$log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    echo "ok - $name"
  else
    failed=$((failed + 1))
    echo "not ok - $name"
    tail -n 40 "$log" | sed 's/^/#   /'
  fi
}

# One Meson build with every binding, installed into the prefix (which the
# checks below use) and again into a DESTDIR: there every file must land
# under the prefix, and each binding must have put its files there.
meson_prefix() {
  meson setup "$work/build" "$src" --prefix="$prefix" -Dtests=false -Dbindings_go=enabled \
    -Dbindings_ruby=enabled -Dbindings_lua=enabled -Dbindings_python=enabled
  ninja -C "$work/build" -j2
  meson install -C "$work/build" --no-rebuild --quiet
  local dest=$work/dest
  DESTDIR=$dest meson install -C "$work/build" --no-rebuild
  local outside
  outside=$(find "$dest" ! -type d | grep -v "^$dest$prefix/" || true)
  if [ -n "$outside" ]; then
    echo "installed outside the prefix $prefix:"
    echo "$outside"
    return 1
  fi
  for f in include/fsc.h bin/fsc share/lua/5.4/fsc.lua share/lua/5.4/fsc_sha256.lua lib/lua/5.4/fsc_core.so \
           'lib/*/pkgconfig/fsc.pc' 'lib/*/libfsc.so.*' 'lib/python3*/*-packages/fsc/__init__.py' \
           'lib/python3*/*-packages/fsc/_fsc_swig_c*.so' 'lib/ruby/*/fsc.rb' 'lib/*/ruby/*/*/fsc_native.so' \
           'lib/ruby/*/active_support/cache/fsc_store.rb'; do
    # shellcheck disable=SC2086
    ls -d "$dest$prefix"/$f >/dev/null || { echo "missing under the prefix: $f"; return 1; }
  done
}
check "meson install --prefix: every file under the prefix, every binding there" meson_prefix

libdir=$(dirname "$(find "$prefix" -name fsc.pc 2>/dev/null | head -n 1)")/..
libdir=$(cd "$libdir" 2>/dev/null && pwd)
pcpath=$libdir/pkgconfig

# C: a program built with pkg-config, run against the installed library.
c_pkgconfig() {
  local flags
  flags=$(PKG_CONFIG_PATH=$pcpath pkg-config --cflags --libs fsc)
  # shellcheck disable=SC2086
  cc -std=c11 -Wall -Wextra -Werror "$src/tests/core/consumer.c" -o "$work/c-consumer" $flags
  cd "$elsewhere"
  LD_LIBRARY_PATH=$libdir "$work/c-consumer" "$work/c-cache" "$libdir"
}
check "C: cc \$(pkg-config --cflags --libs fsc), installed libfsc" c_pkgconfig

# Go: a module of its own, the binding required with a replace to the checkout.
go_module() {
  local mod=$work/go-module path=github.com/fsc-cache/fsc/bindings/go
  mkdir -p "$mod"
  printf 'module example.com/fsccheck\n\ngo 1.19\n\nrequire %s v0.0.0\n\nreplace %s => %s\n' \
    "$path" "$path" "$src/bindings/go" >"$mod/go.mod"
  cat >"$mod/main.go" <<'EOF'
package main

import (
	"bytes"
	"fmt"
	"os"

	fsc "github.com/fsc-cache/fsc/bindings/go"
)

func main() {
	c, err := fsc.Open(os.Args[1], fsc.Options{})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.Set([]byte("key"), []byte("from go")); err != nil {
		panic(err)
	}
	v, err := c.Get([]byte("key"))
	if err != nil || !bytes.Equal(v, []byte("from go")) {
		panic(fmt.Sprintf("get: %q %v", v, err))
	}
	fmt.Println("go: round trip with libfsc", fsc.Version())
}
EOF
  (cd "$mod" && PKG_CONFIG_PATH=$pcpath go build -o "$work/go-check" .)
  cd "$elsewhere"
  LD_LIBRARY_PATH=$libdir "$work/go-check" "$work/go-cache"
}
check "Go: go build in another module (replace), installed libfsc" go_module

# Lua: luarocks make into a tree, required from there alone.
lua_rock() {
  local tree=$work/rocks rockspec=fsc-$version-1.rockspec
  [ -f "$src/bindings/lua/$rockspec" ] || { echo "no $rockspec: the rockspec's version is not $version"; return 1; }
  (cd "$src/bindings/lua" && PKG_CONFIG_PATH=$pcpath luarocks --lua-version 5.4 --tree "$tree" make "$rockspec")
  cd "$elsewhere"
  lua5.4 -e "package.path = '$tree/share/lua/5.4/?.lua'; package.cpath = '$tree/lib/lua/5.4/?.so'
    local fsc = require 'fsc'
    local c = assert(fsc.open('$work/lua-cache'))
    assert(c:set('key', 'from lua'))
    assert(c:get('key') == 'from lua', 'get gave another value')
    local long = ('k'):rep(fsc.MAX_KEY + 1)
    assert(c:set(long, 'long key'))
    assert(c:get(fsc.hashed_key(long)) == 'long key', 'a long key is not stored under its hash')
    c:close()
    print('lua: round trip with libfsc ' .. fsc.version())"
}
check "Lua: luarocks make --tree, require from the tree" lua_rock

# Ruby: gem build (the wrapper goes into the gem), gem install into a
# directory of its own, then the Rails-style store lookup.
ruby_gem() {
  local gems=$work/gems
  (cd "$src/bindings/ruby" && gem build fsc.gemspec --output "$work/fsc.gem")
  local names
  names=$(tar -xOf "$work/fsc.gem" data.tar.gz | tar -tzf -)
  grep -qx ext/fsc_native/fsc_ruby_wrap.c <<<"$names" || { echo "the gem holds no SWIG wrapper"; return 1; }
  PKG_CONFIG_PATH=$pcpath gem install --local --no-document --install-dir "$gems" "$work/fsc.gem"
  cd "$elsewhere"
  # Debian's activesupport comes from the system's gem paths.
  GEM_HOME=$gems GEM_PATH=$gems:$(ruby -e 'print Gem.default_path.join(":")') ruby -e '
    require "active_support"
    require "active_support/cache"
    store = ActiveSupport::Cache.lookup_store(:fsc_store, ARGV[0])
    store.write("key", { "from" => "ruby" })
    raise "read gave #{store.read("key").inspect}" unless store.read("key") == { "from" => "ruby" }
    loaded = $LOADED_FEATURES.grep(%r{/fsc(_native\.so|\.rb)$})
    raise "fsc not loaded from the gem: #{loaded}" unless loaded.size == 2 && loaded.all? { |f| f.start_with?(ARGV[1]) }
    puts "ruby: #{store.class} round trip, #{loaded.join(" ")}"' "$work/ruby-cache" "$gems/"
}
check "Ruby: gem build + gem install --install-dir, :fsc_store lookup" ruby_gem

# Python: pip install into a fresh venv (dogpile.cache from Debian), then a
# dogpile region by backend name alone, with no `import fsc`.
python_pip() {
  local venv=$work/venv
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install --no-build-isolation "$src"
  cd "$elsewhere"
  "$venv/bin/python" - "$work/python-cache" <<'EOF'
import sys
from dogpile.cache import make_region

region = make_region().configure("fsc.filesystem", arguments={"base_dir": sys.argv[1]})
region.set("key", {"from": "python"})
assert region.get("key") == {"from": "python"}, region.get("key")
where = sys.modules["fsc"].__file__
assert where.startswith(sys.prefix + "/"), where
print("python: fsc.filesystem round trip,", where)
EOF
}
check "Python: pip install into a venv, dogpile region \"fsc.filesystem\" without import fsc" python_pip

# Python: the wheel holds the package and its extension, nothing else.
python_wheel() {
  /usr/bin/python3 -m build --wheel --no-isolation --outdir "$work/dist" "$src"
  local names
  names=$(/usr/bin/python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' \
    "$work"/dist/fsc-"$version"-*.whl)
  echo "$names"
  for f in '/fsc/__init__.py$' '/fsc/dogpile_backends.py$' '/fsc/_fsc_swig.py$' '^fsc/_fsc_swig_c\..*\.so$' \
           'dist-info/entry_points.txt$'; do
    grep -q "$f" <<<"$names" || { echo "not in the wheel: $f"; return 1; }
  done
  if grep -E 'libfsc|fsc\.h|fsc\.pc|/scripts/' <<<"$names"; then
    echo "the wheel holds more than the package"
    return 1
  fi
}
check "Python: python3 -m build --wheel, the package alone" python_wheel

# The bindings meson installed, loaded from the prefix.
meson_bindings() {
  local pylib rbarch rblib
  pylib=$(dirname "$(find "$prefix" -path '*/fsc/__init__.py' | head -n 1)")/..
  rbarch=$(dirname "$(find "$prefix" -name fsc_native.so | head -n 1)")
  rblib=$(dirname "$(find "$prefix" -name fsc.rb | head -n 1)")
  cd "$elsewhere"
  export LD_LIBRARY_PATH=$libdir
  PYTHONPATH=$pylib /usr/bin/python3 -c '
import sys, fsc
with fsc.Cache(sys.argv[1]) as c:
    c.set("key", b"v")
    assert c.get("key") == b"v"
assert fsc.__file__.startswith(sys.argv[2]), fsc.__file__' "$work/meson-py-cache" "$prefix/"
  RUBYLIB=$rbarch:$rblib ruby -e '
    require "fsc"
    c = Fsc::Cache.new(ARGV[0]); c.write("key", "v"); raise "read" unless c.read("key") == "v"
    raise "not from the prefix" unless $LOADED_FEATURES.grep(/fsc/).all? { |f| f.start_with?(ARGV[1]) }' \
    "$work/meson-rb-cache" "$prefix/"
  lua5.4 -e "package.path = '$prefix/share/lua/5.4/?.lua'; package.cpath = '$prefix/lib/lua/5.4/?.so'
    local c = assert(require('fsc').open('$work/meson-lua-cache'))
    assert(c:set('key', 'v')); assert(c:get('key') == 'v')"
}
check "meson install: Python, Ruby and Lua bindings load from the prefix" meson_bindings

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
