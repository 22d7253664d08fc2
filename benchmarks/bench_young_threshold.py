#!/usr/bin/env python3
"""Young collections at the default threshold over a big heap, every shape.

    python benchmarks/bench_young_threshold.py [--size 1M] [--pairs 100] [--json FILE]

For each shape of cyclegc.bench_shapes: the heap is built with automatic
collection on, then per pair: gc.collect(1) (untimed, last round's young
objects promoted), threshold0 new objects made by the shape's grower
(the same objects for both collectors of a pair), collect(0) timed, once
with the built-in and once with cyclegc, the order swapped every pair.
Prints the median paired ratio cyclegc / built-in with its quartiles (a
30-400 us collection on a shared machine is often preempted: the quartiles
say more than the range) and the geometric mean over the shapes.  Run it
with an interpreter that has cyclegc installed.
"""
import argparse
import gc as builtin_gc
import json
import math
import random
import statistics
import sys
import time

import cyclegc
from cyclegc import bench_shapes as bs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1M")
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--shapes", default=",".join(bs.SHAPES))
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    size = bs.parse_size(args.size)
    if hasattr(cyclegc, "installed") and cyclegc.installed():
        cyclegc.uninstall()
    out = {}
    for si, shape in enumerate(s for s in args.shapes.split(",") if s):
        _desc, build, grow = bs.SHAPES[shape]
        builtin_gc.enable()
        root, _count, refs = build(size, random.Random(1 + si))
        builtin_gc.disable()
        builtin_gc.collect()
        cyclegc.collect()
        k = builtin_gc.get_threshold()[0]
        t = {"builtin": [], "cyclegc": []}
        for i in range(args.pairs):
            for n in (("builtin", "cyclegc") if i % 2 == 0 else ("cyclegc", "builtin")):
                builtin_gc.collect(1)
                holder = [grow(k, random.Random(1000 * (1 + si) + i), refs)]
                collect = builtin_gc.collect if n == "builtin" else cyclegc.collect
                t0 = time.perf_counter()
                collect(0)
                t[n].append(time.perf_counter() - t0)
                holder.clear()
        r = [a / b for a, b in zip(t["cyclegc"], t["builtin"]) if b > 0]
        q = statistics.quantiles(r, n=4)
        out[shape] = {"new": k, "pairs": args.pairs, "ratio": statistics.median(r),
                      "q1": q[0], "q3": q[2], "cyclegc_s": statistics.median(t["cyclegc"]),
                      "builtin_s": statistics.median(t["builtin"])}
        o = out[shape]
        print(f"{shape:18s} k={k} pairs={args.pairs} ratio {o['ratio']:.2f} [{q[0]:.2f}-{q[2]:.2f}] "
              f"cyclegc {o['cyclegc_s'] * 1e6:.0f} us builtin {o['builtin_s'] * 1e6:.0f} us", flush=True)
        del root, refs
        builtin_gc.collect()
    g = math.exp(sum(math.log(v["ratio"]) for v in out.values()) / len(out))
    print(f"geometric mean {g:.3f} (worst {max(v['ratio'] for v in out.values()):.2f})")
    builtin_gc.enable()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
