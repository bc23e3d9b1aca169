#!/usr/bin/env bash
# Every benchmark of bench/ in one command, then the plots (bench/plots/).
#
#   bash bench/run_all.sh
#   BEFORE=bc49d3f ONLY=core SIZES=1000,100000 bash bench/run_all.sh   # an A/B round
#
# Builds build-bench (release) and runs, into $OUT (default
# /tmp/fsc-bench-run-<date>), each report a markdown file:
#   core     core_bench --dir $BENCH_DIR --sizes $SIZES --reps $REPS, $RUNS times
#            (core-after-<i>.md); with BEFORE=<git revision>, the library of
#            that revision is built too (once, in $TMPDIR/fsc-bench-before-<rev>)
#            and the same core_bench binary runs
#            against it (core-before-<i>.md), the two alternating run by run
#   lock     lock_bench --dir $BENCH_DIR                              (lock.md)
#   lru      lru_bench --dir $BENCH_DIR                               (lru.md)
#   setfile  setfile_bench --dir $BENCH_DIR --reps 5                  (setfile.md)
#   peers    bench/peers.sh, when the peer harness is there            (peers.md)
# ONLY=core,lru (say) runs a subset; the default is all five. Then
# bench/plot.py draws bench/plots/set-latency.svg, throughput.svg and (with
# peers) peers.svg from this run. Needs gnuplot (Debian gnuplot-nox),
# installed here when missing and run as root.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
BUILD_DIR="${BUILD_DIR:-$root/build-bench}"
BENCH_DIR="${BENCH_DIR:-/dev/shm}"
SIZES="${SIZES:-1000,10000,100000}"
REPS="${REPS:-3}"
RUNS="${RUNS:-3}"
ONLY="${ONLY:-core,lock,lru,setfile,peers}"
OUT="${OUT:-/tmp/fsc-bench-run-$(date -u +%Y%m%d-%H%M%S)}"
PLOTS="${PLOTS:-$here/plots}"
PEERS_SRC="${PEERS_SRC:-/work/shared/bench-peers}"

wants() { [[ ",$ONLY," == *",$1,"* ]]; }
say() { echo "[run_all] $*" >&2; }

if ! command -v gnuplot >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y gnuplot-nox >&2
  else
    say "gnuplot is missing (apt-get install gnuplot-nox): the benchmarks run, the plots will not be drawn"
  fi
fi

mkdir -p "$OUT"
if [ ! -d "$BUILD_DIR" ]; then
  meson setup "$BUILD_DIR" "$root" -Dbuildtype=release -Dtests=false -Dbindings_go=disabled \
    -Dbindings_ruby=disabled -Dbindings_lua=disabled -Dbindings_python=disabled >&2
fi
ninja -C "$BUILD_DIR" -j2 >&2
bin="$BUILD_DIR/bench"

before_lib=""
if [ -n "${BEFORE:-}" ]; then
  # Built once per revision, kept for the next rounds.
  rev="$(git -C "$root" rev-parse --short "$BEFORE")"
  src="${TMPDIR:-/tmp}/fsc-bench-before-$rev"
  if [ ! -f "$src/build/lib/libfsc.so.0" ]; then
    rm -rf "$src" && mkdir -p "$src"
    git -C "$root" archive "$rev" | tar -x -C "$src"
    meson setup "$src/build" "$src" -Dbuildtype=release -Dtests=false -Dbindings_go=disabled \
      -Dbindings_ruby=disabled -Dbindings_lua=disabled -Dbindings_python=disabled >&2
    ninja -C "$src/build" -j2 lib/libfsc.so.0.1.0 >&2
    ln -sf libfsc.so.0.1.0 "$src/build/lib/libfsc.so.0"
  fi
  before_lib="$src/build/lib"
  say "BEFORE=$BEFORE: library in $before_lib"
fi

if wants core; then
  for i in $(seq 1 "$RUNS"); do
    # core_bench finds its library through its RUNPATH; LD_LIBRARY_PATH comes first.
    if [ -n "$before_lib" ] && [ $((i % 2)) = 0 ]; then
      say "core_bench run $i/$RUNS: BEFORE first"
      LD_LIBRARY_PATH="$before_lib" "$bin/core_bench" --dir "$BENCH_DIR" --sizes "$SIZES" --reps "$REPS" > "$OUT/core-before-$i.md"
    fi
    say "core_bench run $i/$RUNS"
    "$bin/core_bench" --dir "$BENCH_DIR" --sizes "$SIZES" --reps "$REPS" > "$OUT/core-after-$i.md"
    if [ -n "$before_lib" ] && [ $((i % 2)) = 1 ]; then
      say "core_bench run $i/$RUNS: BEFORE"
      LD_LIBRARY_PATH="$before_lib" "$bin/core_bench" --dir "$BENCH_DIR" --sizes "$SIZES" --reps "$REPS" > "$OUT/core-before-$i.md"
    fi
  done
fi
if wants lock; then
  say "lock_bench"
  "$bin/lock_bench" --dir "$BENCH_DIR" > "$OUT/lock.md"
fi
if wants lru; then
  say "lru_bench"
  "$bin/lru_bench" --dir "$BENCH_DIR" > "$OUT/lru.md"
fi
if wants setfile; then
  say "setfile_bench"
  "$bin/setfile_bench" --dir "$BENCH_DIR" --reps 5 > "$OUT/setfile.md"
fi
if wants peers; then
  if [ -d "$PEERS_SRC" ]; then
    say "peers.sh (BENCH_TMP=$BENCH_DIR)"
    work="$OUT/peers-work"
    NO_BUILD=1 BUILD_DIR="$BUILD_DIR" BENCH_TMP="$BENCH_DIR" BENCH_WORK="$work" PEERS_SRC="$PEERS_SRC" \
      bash "$here/peers.sh" >&2
    cp "$work/results.md" "$OUT/peers.md"
  else
    say "no peer harness at $PEERS_SRC: peers skipped"
  fi
fi

if command -v gnuplot >/dev/null && ls "$OUT"/core-after-*.md >/dev/null 2>&1; then
  python3 "$here/plot.py" "$OUT" "$PLOTS" >&2
fi
say "reports in $OUT, plots in $PLOTS"
