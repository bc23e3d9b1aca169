#!/bin/sh
# The shared library exports exactly the functions fsc.h declares, nothing
# without the fsc_ prefix, and carries the soname libfsc.so.<major>.
# Usage: symbols.sh LIBRARY HEADER SONAME
set -u
lib=$1 header=$2 soname=$3
status=0

# "fsc_open@@FSC_0" -> "fsc_open"; the version node itself is an absolute
# symbol named FSC_0 and is not a function.
exported=$(nm -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' | grep -v '^FSC_0$' | sort -u)
if [ -z "$exported" ]; then
    echo "nm found no exported symbols in $lib"
    exit 1
fi
leaks=$(printf '%s\n' "$exported" | grep -v '^fsc_' || true)
if [ -n "$leaks" ]; then
    echo "exported symbols without the fsc_ prefix:"
    printf '  %s\n' $leaks
    status=1
fi

# Every declaration starts with FSC_API on one line that holds the name.
declared=$(sed -n 's/^FSC_API[^(]*[ *]\(fsc_[a-z0-9_]*\)(.*/\1/p' "$header" | sort -u)
count=$(printf '%s\n' "$declared" | grep -c .)
if [ "$count" -lt 20 ]; then
    echo "found only $count FSC_API declarations in $header: the header parser is broken"
    exit 1
fi
missing=$(printf '%s\n' "$declared" | while read -r f; do
    printf '%s\n' "$exported" | grep -qx "$f" || echo "$f"
done)
if [ -n "$missing" ]; then
    echo "declared in fsc.h but not exported:"
    printf '  %s\n' $missing
    status=1
fi
undeclared=$(printf '%s\n' "$exported" | grep '^fsc_' | while read -r f; do
    printf '%s\n' "$declared" | grep -qx "$f" || echo "$f"
done)
if [ -n "$undeclared" ]; then
    echo "exported but not declared in fsc.h:"
    printf '  %s\n' $undeclared
    status=1
fi

got=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
if [ "$got" != "$soname" ]; then
    echo "soname is '$got', want '$soname'"
    status=1
fi

[ $status -eq 0 ] && echo "$count functions declared and exported; soname $got"
exit $status
