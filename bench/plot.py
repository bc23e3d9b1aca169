#!/usr/bin/env python3
"""Plots of a bench/run_all.sh run, drawn by gnuplot as SVG.

    python3 bench/plot.py RUN_DIR PLOT_DIR

RUN_DIR holds core_bench reports (core-<lib>-<i>.md, <lib> "after" for the
library of the tree, "before" for the BEFORE revision) and, when the peer
harness ran, peers.md. Writes into PLOT_DIR:

  set-latency.svg   median latency of one set against the entries the cache
                    holds: fsc (into a store with room, and into one made
                    full, every set needing room) beside the syscall floor
  evict-cpu.svg     CPU time per set into a full cache, evictions included
                    (the mean: what a stream of sets pays), beside the floor's set
  throughput.svg    ops/s of set, get-hit and get-miss per size, fsc (C)
                    beside the floor, from the same runs
  peers.svg         (with peers.md) single-process throughput of every peer
                    of the harness at each size, set and get-hit
"""
import glob
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROW = re.compile(r"^\|\s*([a-z0-9-]+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|")


def core_rows(path):
    """{(op, entries): (floor_us, fsc_us)} of one core_bench report."""
    rows = {}
    with open(path) as f:
        for line in f:
            m = ROW.match(line)
            if m:
                rows[(m.group(1), int(m.group(2)))] = (float(m.group(4)), float(m.group(5)))
    return rows


def merged(paths):
    """Median over runs of each (op, entries): (floor_us, fsc_us)."""
    runs = [core_rows(p) for p in paths]
    keys = sorted({k for r in runs for k in r}, key=lambda k: (k[0], k[1]))
    out = {}
    for k in keys:
        vals = [r[k] for r in runs if k in r]
        out[k] = (statistics.median(v[0] for v in vals), statistics.median(v[1] for v in vals))
    return out


def gnuplot(script):
    with tempfile.NamedTemporaryFile("w", suffix=".gp", delete=False) as f:
        f.write(script)
    try:
        subprocess.run(["gnuplot", f.name], check=True)
    finally:
        os.unlink(f.name)


def data_block(name, lines):
    return "$%s << EOD\n%s\nEOD\n" % (name, "\n".join(lines))


HEAD = 'set terminal svg size 760,440 dynamic font "sans,11" background "white"\nset output "%s"\n'


def line_plot(out, title, ylabel, sizes, lines, series):
    """Lines against the entries held (log scale), one per series."""
    gnuplot(HEAD % out + data_block("d", lines) + """
set title "%s"
set logscale x
set xrange [%g:%g]
set xlabel "entries in the cache"
set ylabel "%s"
set yrange [0:*]
set key top right
set grid
""" % (title, sizes[0] * 0.8, sizes[-1] * 1.25, ylabel) + "plot " + ", \\\n     ".join(series) + "\n")


FLOOR_SET = "floor: one set (open, write, close, rename)"


def plot_set_latency(after, before, out):
    sizes = sorted({n for (op, n) in after if op == "set-w2"})
    lines = []
    for n in sizes:
        floor, fsc = after[("set-w2", n)]
        ev = after.get(("set-evict", n), (float("nan"),) * 2)[1]
        old = before.get(("set-evict", n), (float("nan"),) * 2)[1] if before else float("nan")
        lines.append("%d %.3f %.3f %.3f %.3f" % (n, floor, fsc, ev, old))
    series = [
        '$d using 1:2 with linespoints lw 2 title "%s"' % FLOOR_SET,
        '$d using 1:3 with linespoints lw 2 title "fsc: one set, room in the cache"',
        '$d using 1:4 with linespoints lw 2 title "fsc: one set into a full cache (needing room)"',
    ]
    if before:
        series.append('$d using 1:5 with linespoints lw 2 dt 2 title "fsc before: one set into a full cache"')
    line_plot(out, "Latency of one set of a 1 KiB value against the entries held (median)", "microseconds",
              sizes, lines, series)


def plot_evict_cpu(after, before, out):
    sizes = sorted({n for (op, n) in after if op == "evict-cpu"})
    if not sizes:
        return
    lines = []
    for n in sizes:
        floor, fsc = after[("evict-cpu", n)]
        old = before.get(("evict-cpu", n), (float("nan"),) * 2)[1] if before else float("nan")
        lines.append("%d %.3f %.3f %.3f" % (n, floor, fsc, old))
    series = ['$d using 1:2 with linespoints lw 2 title "%s"' % FLOOR_SET,
              '$d using 1:3 with linespoints lw 2 title "fsc: a set into a full cache, evictions included"']
    if before:
        series.append('$d using 1:4 with linespoints lw 2 dt 2 title "fsc before: the same"')
    line_plot(out, "CPU time (user + system) per set of a 1 KiB value into a full cache (mean)",
              "microseconds of CPU", sizes, lines, series)


def plot_throughput(after, out):
    sizes = sorted({n for (op, n) in after if op == "set"})
    lines = []
    for op in ("set", "get-hit", "get-miss"):
        for n in sizes:
            floor, fsc = after[(op, n)]
            lines.append('"%s %s" %.0f %.0f' % (op, kn(n), 1e6 / fsc, 1e6 / floor))
    gnuplot(HEAD % out + data_block("d", lines) + """
set title "Single-process throughput, 1 KiB values (C API)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "operations per second"
set yrange [0:*]
set xtics rotate by -30
set key top left
set grid ytics
plot $d using 2:xtic(1) title "fsc", '' using 3 title "floor (file per entry; set: temp file, rename; get: open, fstat, read, close)"
""")


def kn(n):
    return "%dk" % (n // 1000) if n >= 1000 and n % 1000 == 0 else str(n)


def peer_rows(path):
    """[(peer label, {column: ops/s})] of the W1 table of the harness's report."""
    rows, cols, inside = [], None, False
    with open(path) as f:
        for line in f:
            if line.startswith("## W1"):
                inside = True
                continue
            if inside and line.startswith("## "):
                break
            if not inside or not line.startswith("|"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] == "peer":
                cols = cells[1:]
            elif cols and not cells[0].startswith("---"):
                vals = {}
                for c, v in zip(cols, cells[1:]):
                    v = v.replace(",", "").rstrip("†")
                    if re.fullmatch(r"\d+", v):
                        vals[c] = int(v)
                rows.append((cells[0], vals))
    return cols or [], rows


def plot_peers(path, out):
    cols, rows = peer_rows(path)
    cols = [c for c in cols if c.startswith(("set", "get-hit"))]
    if not rows or not cols:
        return False
    lines = ['"%s" %s' % (label.replace('"', "'"), " ".join(str(vals.get(c, "NaN")) for c in cols))
             for label, vals in rows]
    plots = ", ".join('$d using %d%s title "%s"' % (i + 2, ":xtic(1)" if i == 0 else "", c)
                      for i, c in enumerate(cols))
    gnuplot((HEAD % out).replace("760,440", "960,520") + data_block("d", lines) + """
set title "Peer harness W1: single-process throughput, 1000-byte values"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "operations per second"
set yrange [0:*]
set xtics rotate by -25 font ",9"
set key outside right
set grid ytics
plot """ + plots + "\n")
    return True


def main():
    run, plots = sys.argv[1], sys.argv[2]
    os.makedirs(plots, exist_ok=True)
    after = merged(sorted(glob.glob(os.path.join(run, "core-after-*.md"))))
    before_paths = sorted(glob.glob(os.path.join(run, "core-before-*.md")))
    before = merged(before_paths) if before_paths else None
    if not after:
        sys.exit("plot.py: no core_bench report (core-after-*.md) in " + run)
    plot_set_latency(after, before, os.path.join(plots, "set-latency.svg"))
    plot_evict_cpu(after, before, os.path.join(plots, "evict-cpu.svg"))
    plot_throughput(after, os.path.join(plots, "throughput.svg"))
    peers = os.path.join(run, "peers.md")
    if os.path.exists(peers) and plot_peers(peers, os.path.join(plots, "peers.svg")):
        print("plot.py: wrote peers.svg")
    print("plot.py: wrote set-latency.svg, evict-cpu.svg, throughput.svg in " + plots)


if __name__ == "__main__":
    main()
