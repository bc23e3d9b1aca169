# frozen_string_literal: true

# Builds fsc_native, the SWIG wrapper shipped in the gem, against the libfsc
# that pkg-config finds (PKG_CONFIG_PATH=<prefix>/lib/<arch>/pkgconfig for an
# installation elsewhere than /usr).
require "mkmf"

unless pkg_config("fsc")
  abort "fsc: libfsc not found by pkg-config; install it (meson install) and " \
        "point PKG_CONFIG_PATH at the directory holding fsc.pc"
end

# A libfsc outside the dynamic linker's default directories is found at run
# time through the extension's run path, with no LD_LIBRARY_PATH.
libdir = pkg_config("fsc", "variable=libdir").to_s.strip
unless libdir.empty? || libdir.match?(%r{\A/(usr/)?lib(64)?(/[^/]+-linux-gnu)?/?\z})
  $LDFLAGS << " -Wl,-rpath,#{libdir}"
end

create_makefile("fsc_native")
