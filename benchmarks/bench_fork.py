#!/usr/bin/env python3
"""Copy-on-write cost of one full collection in a forked child.

A parent builds a live heap of N rows (slotted row objects, each with a list:
~2 tracked objects per row) kept in a module global, plus G objects of
cyclic garbage, with automatic collection off.  It forks; the child reads its
private dirty memory (/proc/self/smaps_rollup), runs ONE full collection with
the chosen collector, reads it again, and reports the growth, the objects
found and the time.  Collectors, each in its own fork of the same parent:

  builtin        gc.collect()
  frozen         gc.freeze() in the parent before forking, then gc.collect()
  cyclegc        cyclegc.collect()
  fork-friendly  cyclegc.collect() with cyclegc's fork-friendly mode on
  frozen+ff      gc.freeze() in the parent, then fork-friendly cyclegc.collect()
                 (which examines the frozen generation too)

    python benchmarks/bench_fork.py [--rows 1000000] [--garbage 100000] [--repeat 3] [--json FILE]
"""
import argparse
import gc
import json
import os
import statistics
import sys
import time

import cyclegc

ROWS = None  # the live heap: a module global, as a server's data would be


class Row:
    __slots__ = ("id", "name", "tags")

    def __init__(self, i):
        self.id = i
        self.name = "row"
        self.tags = [i, i + 1]


class Node:
    __slots__ = ("peer", "__weakref__")


def make_garbage(n):
    """n objects of cyclic garbage: rings of 10 slotted nodes."""
    for _ in range(n // 10):
        ring = [Node() for _ in range(10)]
        for a, b in zip(ring, ring[1:] + ring[:1]):
            a.peer = b


def private_dirty_kb():
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1])
    raise RuntimeError("no Private_Dirty in smaps_rollup")


def child(mode, out_fd):
    collect = {"builtin": gc.collect, "frozen": gc.collect, "cyclegc": cyclegc.collect,
               "fork-friendly": cyclegc.collect, "frozen+ff": cyclegc.collect}[mode]
    if mode in ("fork-friendly", "frozen+ff"):
        cyclegc.set_fork_friendly(True)
    before = private_dirty_kb()
    t0 = time.perf_counter()
    found = collect()
    elapsed = time.perf_counter() - t0
    after = private_dirty_kb()
    os.write(out_fd, json.dumps({"mode": mode, "found": found, "seconds": elapsed,
                                 "dirty_kb": after - before}).encode())
    os._exit(0)


def run_once(mode):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            child(mode, w)
        finally:
            os._exit(1)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def main(argv=None):
    global ROWS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--garbage", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--modes", default="builtin,frozen,cyclegc,fork-friendly,frozen+ff")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if not hasattr(cyclegc, "set_fork_friendly"):
        modes = [m for m in modes if m not in ("fork-friendly", "frozen+ff")]

    gc.disable()
    ROWS = [Row(i) for i in range(args.rows)]
    gc.collect()
    results = {m: [] for m in modes}
    for rep in range(args.repeat):
        for mode in modes:
            make_garbage(args.garbage)
            if mode.startswith("frozen"):
                gc.freeze()
            results[mode].append(run_once(mode))
            if mode.startswith("frozen"):
                gc.unfreeze()
            gc.collect()  # the parent drops this round's garbage
    print(f"fork benchmark: Python {sys.version.split()[0]}, {args.rows} rows "
          f"(~{len(gc.get_objects())} tracked), {args.garbage} objects of garbage, "
          f"median of {args.repeat}")
    print(f"{'mode':<14} {'found':>8} {'dirty MB':>9} {'ms':>8}")
    base = statistics.median(r["dirty_kb"] for r in results.get("builtin", [])) if "builtin" in results else None
    summary = {}
    for mode, runs in results.items():
        dirty = statistics.median(r["dirty_kb"] for r in runs) / 1024
        ms = statistics.median(r["seconds"] for r in runs) * 1e3
        found = statistics.median(r["found"] for r in runs)
        rel = f"  ({dirty * 1024 / base:.1%} of built-in)" if base else ""
        print(f"{mode:<14} {found:>8g} {dirty:9.1f} {ms:8.1f}{rel}")
        summary[mode] = {"found": found, "dirty_mb": dirty, "ms": ms, "runs": runs}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "rows": args.rows,
                       "garbage": args.garbage, "results": summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
