#!/usr/bin/env bash
# Runs fsc as one more row of the shared peer benchmark harness.
#
#   bash bench/peers.sh                                   # PEERS=fsc,floor,diskcache,seed
#   PEERS=fsc,floor WORKLOADS=w12,w4 bash bench/peers.sh  # a subset
#   BENCH_TMP=/dev/shm bash bench/peers.sh                # caches on tmpfs
#
# What it does:
#  1. builds fsc (release) in $BUILD_DIR (default: build-bench at the top of
#     the repository; NO_BUILD=1 takes the library already built there);
#  2. copies the harness from $PEERS_SRC (default /work/shared/bench-peers) to
#     $BENCH_WORK (default /tmp/fsc-bench-peers-fsc), never touching the
#     original, and keeps that copy's .build/ between runs (npm modules, the
#     time of the last cleanup that the harness waits on);
#  3. compiles bench/peer/fsc_peer.c there as .build/fsc against the build
#     directory's libfsc (rpath set, nothing installed);
#  4. patches the copy: adds the fsc row to PEERS in harness.py, and skips the
#     npm install when cacache is not among $PEERS;
#  5. runs the copy's run_all.sh with the environment given (PEERS,
#     WORKLOADS, SIZES, SETTLE_S, BENCH_TMP, ... as the harness reads them).
#
# SEED_SRC (the dogpile_filesystem source) is optional: without it the seed
# rows fail and the rest runs. When unset, a git mirror at
# /work/.mirror/paylogic+dogpile_filesystem* is used if one exists. Nothing
# is fetched from the network here (the harness itself may apt-get/npm).
#
# Results: $BENCH_WORK/results.md and results.json (also printed on stdout).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$top/build-bench}"
PEERS_SRC="${PEERS_SRC:-/work/shared/bench-peers}"
export BENCH_WORK="${BENCH_WORK:-/tmp/fsc-bench-peers-fsc}"
export PEERS="${PEERS:-fsc,floor,diskcache,seed}"

say() { echo "[peers.sh] $*" >&2; }

# ---- 1. the library ---------------------------------------------------------
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$top/$BUILD_DIR" ;; esac
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  say "configuring $BUILD_DIR (release)"
  meson setup "$BUILD_DIR" "$top" -Dbuildtype=release >&2
fi
libdir="$BUILD_DIR/lib"
if [ -n "${NO_BUILD:-}" ]; then
  say "NO_BUILD set: using the library already built in $BUILD_DIR"
elif ! ninja -C "$BUILD_DIR" >&2; then
  # a tree being edited may not configure; an already built library still serves
  [ -e "$libdir/libfsc.so" ] || { say "build failed in $BUILD_DIR"; exit 1; }
  say "WARNING: ninja failed; using the library already built in $BUILD_DIR"
fi
[ -e "$libdir/libfsc.so" ] || { say "no $libdir/libfsc.so"; exit 1; }

# ---- 2. a private copy of the harness ---------------------------------------
mkdir -p "$BENCH_WORK"
# copy everything but a .build/ of the source (ours is kept between runs)
(cd "$PEERS_SRC" && find . -path ./.build -prune -o -type f -print) | while read -r f; do
  mkdir -p "$BENCH_WORK/$(dirname "$f")"
  cp -f "$PEERS_SRC/$f" "$BENCH_WORK/$f"
done
chmod -R u+w "$BENCH_WORK"
mkdir -p "$BENCH_WORK/.build" "$BENCH_WORK/fsc"

# ---- 3. the fsc peer ----------------------------------------------------------
cp -f "$here/peer/fsc_peer.c" "$BENCH_WORK/fsc/peer.c"
gcc -O2 -Wall -o "$BENCH_WORK/.build/fsc" "$BENCH_WORK/fsc/peer.c" \
  -I"$top/include" -L"$libdir" -lfsc -Wl,-rpath,"$libdir"
"$BENCH_WORK/.build/fsc" info >&2

# ---- 4. patch the copy ----------------------------------------------------------
/usr/bin/python3 - "$BENCH_WORK" <<'EOF'
import re, sys, os
work = sys.argv[1]
p = os.path.join(work, "harness.py")
s = open(p).read()
if not re.search(r'^\s+Peer\("fsc",', s, flags=re.M):
    row = ('    Peer("fsc", "fsc (C, libfsc)", [".build/fsc"], w12=True, w3=True,\n'
           '         w4=[("", "fsc_get_or_create (cross-process dogpile lock)")]),\n')
    s, n = re.subn(r"^PEERS = \[\n", lambda m: m.group(0) + row, s, count=1, flags=re.M)
    if n != 1:
        sys.exit("harness.py: no 'PEERS = [' line to patch")
    open(p, "w").write(s)
p = os.path.join(work, "run_all.sh")
s = open(p).read()
old = "if [ ! -d cacache/node_modules/cacache ]; then"
new = ('if [ -n "${PEERS:-}" ] && [[ ",$PEERS," != *",cacache,"* ]]; then\n'
       '  say "cacache not in PEERS: npm install skipped"\n'
       'elif [ ! -d cacache/node_modules/cacache ]; then')
if new not in s:
    if old not in s:
        sys.exit("run_all.sh: npm step not found")
    s = s.replace(old, new, 1)
    open(p, "w").write(s)
EOF

# ---- 5. run ------------------------------------------------------------------------
if [ -z "${SEED_SRC:-}" ]; then
  for m in /work/.mirror/paylogic+dogpile_filesystem*; do
    if [ -e "$m" ]; then
      # a mirror directory may hold the git directory itself or one below it
      g="$(git -C "$m" rev-parse --git-dir 2>/dev/null || find "$m" -maxdepth 2 -name HEAD -printf '%h\n' | head -1)"
      [ -n "$g" ] && export SEED_SRC="$(cd "$m" && cd "$g" && pwd)"
      break
    fi
  done
fi
say "PEERS=$PEERS WORKLOADS=${WORKLOADS:-w12,w3,w4} SEED_SRC=${SEED_SRC:-<unset>} BENCH_TMP=${BENCH_TMP:-/tmp} in $BENCH_WORK"
cd "$BENCH_WORK"
exec bash run_all.sh
