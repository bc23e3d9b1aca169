#!/bin/sh
# Installs into a temp DESTDIR and builds a consumer the way users do:
# pkg-config --cflags --libs fsc, then runs it against the installed library.
# Usage: installed.sh BUILD_ROOT PREFIX LIBDIR INCLUDEDIR CONSUMER_SOURCE EXTRA_FLAGS C_COMPILER...
set -u
build=$1 prefix=$2 libdir=$3 includedir=$4 source=$5 extra=$6
shift 6
cc="$*"
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
case $includedir in /*) ;; *) includedir=$prefix/$includedir ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root

if ! DESTDIR=$dest meson install -C "$build" --no-rebuild --quiet >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "meson install failed"
    exit 1
fi
for f in "$includedir/fsc.h" "$libdir/pkgconfig/fsc.pc"; do
    if [ ! -f "$dest$f" ]; then
        echo "not installed: $f"
        exit 1
    fi
done

flags=$(PKG_CONFIG_SYSROOT_DIR=$dest PKG_CONFIG_PATH=$dest$libdir/pkgconfig pkg-config --cflags --libs fsc) || { echo "pkg-config --cflags --libs fsc failed"; exit 1; }
echo "pkg-config: $flags"
case $flags in
    *"$dest"*) ;;
    *) echo "pkg-config flags do not point into the install"; exit 1 ;;
esac
# shellcheck disable=SC2086
if ! $cc -std=c11 -Wall -Wextra -Werror $extra "$source" -o "$tmp/consumer" $flags; then
    echo "the consumer does not build from the installed files"
    exit 1
fi
LD_LIBRARY_PATH=$dest$libdir "$tmp/consumer" "$tmp/cache" "$dest$libdir"
