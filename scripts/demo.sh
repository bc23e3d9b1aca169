#!/usr/bin/env bash
# Shows fsc caching a slow command: the cold and the warm run's wall time and
# the speed-up, then the cache's listing and statistics.
#
# Usage: scripts/demo.sh [PATH/TO/fsc]
# Without an argument it looks for build*/tools/fsc next to this script, then
# for fsc on $PATH. It uses a fresh temp cache unless FSC_DIR is set.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
fsc=${1:-}
if [ -z "$fsc" ]; then
    for candidate in "$here"/../build*/tools/fsc; do
        if [ -x "$candidate" ]; then
            fsc=$candidate
            break
        fi
    done
fi
if [ -z "$fsc" ]; then
    fsc=$(command -v fsc || true)
fi
if [ -z "$fsc" ] || [ ! -x "$fsc" ]; then
    echo "demo: no fsc binary found; pass its path: $0 BUILD_DIR/tools/fsc" >&2
    exit 2
fi

if [ -z "${FSC_DIR:-}" ]; then
    FSC_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fsc-demo.XXXXXX")
    trap 'rm -rf "$FSC_DIR"' EXIT
fi
export FSC_DIR

# A slow command: checksum the names of every file under /usr/share (sorted),
# plus a short sleep standing in for network latency.
slow='sleep 1; find /usr/share -type f 2>/dev/null | sort | md5sum; echo "made at $(date +%T)"'

now_ns() { date +%s%N; }
timed_run() { # prints the output, sets $elapsed_ms
    local t0 t1
    t0=$(now_ns)
    "$fsc" run --ttl 1h -- sh -c "$slow"
    t1=$(now_ns)
    elapsed_ms=$(((t1 - t0) / 1000000))
}

echo "fsc:   $fsc"
echo "cache: $FSC_DIR"
echo "command: sh -c '$slow'"
echo
echo "== cold run (runs the command) =="
timed_run
cold=$elapsed_ms
echo "wall time: ${cold} ms"
echo
echo "== warm run (replays the cached output) =="
timed_run
warm=$elapsed_ms
echo "wall time: ${warm} ms"
echo
awk -v c="$cold" -v w="$warm" 'BEGIN {
    if (w < 1) w = 1
    printf "speed-up: %.0fx (%d ms -> %d ms)\n", c / w, c, w
}'
echo
echo "== fsc ls =="
"$fsc" ls
echo
echo "== fsc stats =="
"$fsc" stats || echo "(stats are not available from this build of the library yet)"
