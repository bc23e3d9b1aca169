-- `luarocks --lua-version 5.4 make` in this directory of a checkout builds
-- the rock: SWIG makes the wrapper (the command of meson.build), which is
-- compiled against the libfsc that pkg-config finds (PKG_CONFIG_PATH for an
-- installation elsewhere than /usr). The version is the project's
-- (meson.build); scripts/install-check.sh checks that they agree.
rockspec_format = "3.0"
package = "fsc"
version = "0.1.0-1"
source = {
   url = "git+https://github.com/fsc-cache/fsc",
   dir = "fsc/bindings/lua",
}
description = {
   summary = "Persistent, size-bounded, cross-process filesystem cache with dogpile protection",
   license = "MIT",
}
dependencies = {
   "lua >= 5.4",
}
build = {
   type = "command",
   -- A libfsc outside the dynamic linker's default directories is found at
   -- run time through the module's run path, with no LD_LIBRARY_PATH.
   build_command = [[
set -e
swig -lua -module fsc_core -nomoduleglobal -I../../include -I.. -o fsc_lua_wrap.c ../fsc.i
libdir=$(pkg-config --variable=libdir fsc)
case $libdir in
  /lib|/lib64|/usr/lib|/usr/lib64|/lib/*-linux-gnu|/usr/lib/*-linux-gnu) rpath= ;;
  *) rpath=-Wl,-rpath,$libdir ;;
esac
$(CC) $(CFLAGS) -I$(LUA_INCDIR) $(pkg-config --cflags fsc) $(LIBFLAG) -o fsc_core.so fsc_lua_wrap.c \
  $(pkg-config --libs fsc) $rpath
]],
   install = {
      lua = { fsc = "fsc.lua", fsc_sha256 = "fsc_sha256.lua" },
      lib = { fsc_core = "fsc_core.so" },
   },
}
