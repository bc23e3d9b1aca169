#!/bin/sh
# fsc.h compiles on its own, twice included, as strict C11 and as C++17.
# Usage: header_check.sh INCLUDE_DIR C_COMPILER... -- CXX_COMPILER...
set -u
inc=$1
shift
cc=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    cc="$cc $1"
    shift
done
shift
cxx="$*"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/use.c" <<'SRC'
#include "fsc.h"
#include "fsc.h"
int use(void);
int use(void) {
    fsc_options o;
    fsc_options_init(&o);
    return (int)sizeof o + FSC_MISS + (int)FSC_MAX_KEY;
}
SRC
cp "$tmp/use.c" "$tmp/use.cc"

status=0
if ! $cc -std=c11 -Wall -Wextra -pedantic -Werror -Wstrict-prototypes -Wmissing-prototypes -Wshadow \
        -I"$inc" -c "$tmp/use.c" -o "$tmp/use_c.o"; then
    echo "fsc.h does not compile as C11"
    status=1
fi
if ! $cxx -std=c++17 -Wall -Wextra -pedantic -Werror -Wshadow \
        -I"$inc" -c "$tmp/use.cc" -o "$tmp/use_cc.o"; then
    echo "fsc.h does not compile as C++17"
    status=1
fi
# The C++ object must refer to the C names, not mangled ones.
if [ $status -eq 0 ] && ! nm "$tmp/use_cc.o" | grep -q ' U fsc_options_init$'; then
    echo "fsc.h declarations get C++ linkage"
    status=1
fi
[ $status -eq 0 ] && echo "fsc.h compiles as C11 and as C++17"
exit $status
