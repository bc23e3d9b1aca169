#!/bin/sh
# The shared library exports exactly the functions fsc.h declares, nothing
# without the fsc_ prefix, and carries the soname libfsc.so.<major>.
# Usage: symbols.sh LIBRARY HEADER SONAME
set -u
lib=$1 header=$2 soname=$3
status=0

# The names of the list $1 (one a line) that the list $2 lacks.
missing_from() {
    printf '%s\n' "$1" | while read -r f; do
        printf '%s\n' "$2" | grep -qx "$f" || echo "$f"
    done
}

# When the names $2 are not empty: says $1, lists them and fails the check.
complain() {
    if [ -n "$2" ]; then
        echo "$1"
        printf '  %s\n' $2
        status=1
    fi
}

# "fsc_open@@FSC_0" -> "fsc_open"; the version node itself is an absolute
# symbol named FSC_0 and is not a function.
exported=$(nm -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' | grep -v '^FSC_0$' | sort -u)
if [ -z "$exported" ]; then
    echo "nm found no exported symbols in $lib"
    exit 1
fi
complain "exported symbols without the fsc_ prefix:" "$(printf '%s\n' "$exported" | grep -v '^fsc_' || true)"

# Every declaration starts with FSC_API on one line that holds the name.
declared=$(sed -n 's/^FSC_API[^(]*[ *]\(fsc_[a-z0-9_]*\)(.*/\1/p' "$header" | sort -u)
count=$(printf '%s\n' "$declared" | grep -c .)
if [ "$count" -lt 20 ]; then
    echo "found only $count FSC_API declarations in $header: the header parser is broken"
    exit 1
fi
complain "declared in fsc.h but not exported:" "$(missing_from "$declared" "$exported")"
complain "exported but not declared in fsc.h:" "$(missing_from "$(printf '%s\n' "$exported" | grep '^fsc_')" "$declared")"

got=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
if [ "$got" != "$soname" ]; then
    echo "soname is '$got', want '$soname'"
    status=1
fi

[ $status -eq 0 ] && echo "$count functions declared and exported; soname $got"
exit $status
