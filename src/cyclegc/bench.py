"""Full (generation 2) collection time: cyclegc vs the built-in gc.

    python -m cyclegc bench                      # live heap, nothing to free
    python -m cyclegc bench --garbage            # half the heap is cyclic garbage
    python -m cyclegc bench --sizes 10k,100k --repeat 9 --json out.json

(`benchmarks/bench_full_collection.py` runs the same with the same options.)
    python benchmarks/bench_full_collection.py                  # live heap, nothing to free
    python benchmarks/bench_full_collection.py --garbage        # half the heap is cyclic garbage
    python benchmarks/bench_full_collection.py --sizes 10k,100k --repeat 9 --json out.json

For each heap size a heap of that many tracked container objects of mixed
shapes is built (instances with a __dict__, instances with __slots__, lists,
dicts, tuples holding containers, sets), every one reachable from one root and
linked to earlier objects at random.  Then `cyclegc.collect()` and the built-in
`gc.collect()` are timed ALTERNATELY in this one process, the order swapped on
every repeat, with automatic collection disabled while measuring.

With --garbage, half of the objects are live and the other half is cyclic
garbage (rings of objects of the same shapes) that is rebuilt before every
single collection, so both collectors always find the same amount to free.

Reported per size and collector: median, min and max time, nanoseconds per
tracked object (all objects the interpreter tracks, i.e. what a full
collection walks), and the median over repeats of the paired ratio
cyclegc/builtin (< 1 means cyclegc is faster).

`--suite quick|full` runs the whole side-by-side suite instead (full and young
collections, the pyperformance gc benchmarks, memory, automatic collection):
see cyclegc.bench_suite and `python -m cyclegc bench --suite quick --help`.
"""
from __future__ import annotations

import argparse
import gc as builtin_gc
import json
import platform
import random
import statistics
import sys
import time

import cyclegc


# --------------------------------------------------------------------------
# Heap shapes
# --------------------------------------------------------------------------

class WithDict:
    def __init__(self, a, b):
        self.a = a
        self.b = b
        self.n = 1


class WithSlots:
    __slots__ = ("a", "b", "n")

    def __init__(self, a, b):
        self.a = a
        self.b = b
        self.n = 1


N_SHAPES = 6


def build(n: int, rng: random.Random, ring: int = 0, base: list | None = None) -> list:
    """Build n tracked container objects of mixed shapes and return them.

    Live heap (ring == 0): each object refers to two earlier objects picked at
    random, and the returned list is what keeps them all alive.  With `base`
    (a list of existing objects, e.g. an old heap), the earlier objects are
    picked from base + the new ones, so new objects also point into `base`.

    Garbage (ring > 0): the objects form rings of `ring` objects.  Each refers
    to the one before it and to a random earlier one of its ring, and the
    first of each ring (always a list) refers to the last, so every ring is
    a strongly connected cycle: once the returned list is dropped, all of it
    is cyclic garbage that only a cycle collection can free.
    """
    objs: list = []
    instances: list[int] = []  # indices of hashable instances, for sets
    start = 0
    for i in range(n):
        if ring and i % ring == 0:
            if i:
                objs[start].append(objs[i - 1])  # close the previous ring
            start = i
            objs.append([i])
            continue
        if ring:
            x = objs[i - 1]
            y = objs[rng.randrange(start, i)]
        elif base:
            nb = len(base)
            k = rng.randrange(nb + i)
            x = base[k] if k < nb else objs[k - nb]
            k = rng.randrange(nb + i)
            y = base[k] if k < nb else objs[k - nb]
        elif i:
            x = objs[rng.randrange(i)]
            y = objs[rng.randrange(i)]
        else:
            x = y = None
        shape = i % N_SHAPES
        if shape == 0:
            o = WithDict(x, y)
            instances.append(i)
        elif shape == 1:
            o = [x, y, i]
        elif shape == 2:
            o = {"x": x, "y": y, "i": i}
        elif shape == 3:
            o = (x, y, i)  # holds containers, so it stays tracked
        elif shape == 4:
            o = WithSlots(x, y)
            instances.append(i)
        else:
            # Sets hold hashables only: recent instances, and x itself (the
            # WithSlots made just before, so a ring's chain goes through the
            # set) or, if x is unhashable (a ring's head list), a box for it.
            o = {objs[k] for k in instances[-2:] if k >= start}
            if isinstance(x, (WithDict, WithSlots)):
                o.add(x)
            elif ring:
                o.add(WithSlots(x, None))
            o.add(i)
        objs.append(o)
    if ring and objs:
        objs[start].append(objs[-1])
    return objs


def build_garbage(n: int, rng: random.Random) -> None:
    """Create about n objects of cyclic garbage (rings of 32)."""
    build(n, rng, ring=32)


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------

COLLECTORS = {
    "cyclegc": lambda: cyclegc.collect(),
    "builtin": lambda: builtin_gc.collect(),
}

# The two collect() functions, bound now: while cyclegc.install() is in
# effect the gc module's attributes are cyclegc's.
COLLECT = {"cyclegc": cyclegc.collect, "builtin": builtin_gc.collect}


def alternate(repeat: int, prepare, run, names=("cyclegc", "builtin"),
              warmup: int = 1) -> tuple[dict, dict]:
    """Time run(name) for each collector name, `repeat` times, alternating
    and swapping the order on every repeat; prepare(name) runs untimed
    before each call (warm-up calls included).  run returns what collect()
    returned.  Returns ({name: [seconds]}, {name: [returned]})."""
    names = list(names)
    times: dict[str, list[float]] = {name: [] for name in names}
    found: dict[str, list] = {name: [] for name in names}
    for _ in range(warmup):
        for name in names:
            prepare(name)
            run(name)
    for r in range(repeat):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            prepare(name)
            t0 = time.perf_counter()
            n = run(name)
            t1 = time.perf_counter()
            times[name].append(t1 - t0)
            found[name].append(n)
    return times, found


def paired_ratios(times: dict) -> list[float]:
    """cyclegc/builtin for each repeat (the two were timed back to back)."""
    return [c / b for c, b in zip(times["cyclegc"], times["builtin"]) if b > 0]


def disable_automatic() -> None:
    builtin_gc.disable()
    if hasattr(cyclegc, "disable"):
        cyclegc.disable()


def tracked_objects() -> int:
    objs = builtin_gc.get_objects()
    n = len(objs)
    del objs
    return n


def parse_size(s: str) -> int:
    s = s.strip().lower().replace("_", "")
    mult = 1
    if s.endswith("k"):
        mult, s = 1_000, s[:-1]
    elif s.endswith("m"):
        mult, s = 1_000_000, s[:-1]
    return int(float(s) * mult)


def fmt_size(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def fmt_ms(s: float) -> str:
    return f"{s * 1e3:9.2f}"


def bench_size(size: int, repeat: int, garbage: bool, seed: int) -> dict:
    rng = random.Random(seed)
    live_n = size // 2 if garbage else size
    garbage_n = size - live_n if garbage else 0
    heap = build(live_n, rng)
    # Settle: everything old, nothing pending, before the first measurement.
    builtin_gc.collect()
    cyclegc.collect()
    tracked = tracked_objects() + garbage_n

    names = list(COLLECTORS)

    def prepare(name):
        if garbage:
            build_garbage(garbage_n, rng)

    # One untimed warm-up of each collector, then alternating repeats.
    times, found = alternate(repeat, prepare, lambda name: COLLECTORS[name](), names)
    del heap

    result: dict = {"size": size, "live_objects": live_n, "garbage_objects": garbage_n,
                    "tracked_objects": tracked, "collectors": {}}
    for name in names:
        ts = times[name]
        med = statistics.median(ts)
        result["collectors"][name] = {
            "median_s": med, "min_s": min(ts), "max_s": max(ts), "times_s": ts,
            "ns_per_object": med * 1e9 / max(tracked, 1),
            "collected_median": statistics.median(found[name]),
        }
    ratios = paired_ratios(times)
    result["ratio_median"] = statistics.median(ratios) if ratios else float("nan")
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a == "--suite" or a.startswith("--suite=") for a in argv):
        # The side-by-side suite owns its options (a superset of these).
        from . import bench_suite
        return bench_suite.main(argv)
    ap = argparse.ArgumentParser(prog="python -m cyclegc bench",
                                 description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10k,100k,1M",
                    help="comma-separated heap sizes in tracked objects (default 10k,100k,1M)")
    ap.add_argument("--repeat", type=int, default=7,
                    help="timed collections per collector and size (default 7)")
    ap.add_argument("--garbage", action="store_true",
                    help="half of each heap is cyclic garbage, rebuilt before every collection")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--suite", choices=("quick", "full"),
                    help="run the whole side-by-side suite instead (full and young "
                         "collections, gc_collect, gc_traversal, memory, automatic "
                         "collection); --suite quick --help lists its options")
    args = ap.parse_args(argv)
    try:
        sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        ap.error(f"--sizes: not a list of sizes like 10k,100k,1M: {args.sizes!r}")
    if args.repeat < 1 or not sizes or min(sizes) < 1:
        ap.error("--repeat and --sizes must be positive")

    disable_automatic()
    mode = "garbage" if args.garbage else "live"
    print(f"cyclegc {getattr(cyclegc, '__version__', '?')} vs built-in gc on "
          f"{platform.python_implementation()} {platform.python_version()} "
          f"({platform.machine()}); mode: {mode}"
          + (" (half of each heap is cyclic garbage)" if args.garbage else " (nothing to free)")
          + f"; {args.repeat} repeats, alternating", flush=True)
    header = (f"{'heap':>6} {'tracked':>9} {'collector':<9} {'median ms':>9} {'min ms':>9} "
              f"{'max ms':>9} {'ns/obj':>7} {'found':>8}  ratio")
    print(header)
    print("-" * len(header))
    results = []
    t_start = time.perf_counter()
    for i, size in enumerate(sizes):
        res = bench_size(size, args.repeat, args.garbage, args.seed + i)
        results.append(res)
        for j, name in enumerate(("cyclegc", "builtin")):
            c = res["collectors"][name]
            ratio = f"{res['ratio_median']:.3f}" if j == 0 else ""
            print(f"{fmt_size(size) if j == 0 else '':>6} "
                  f"{res['tracked_objects'] if j == 0 else '':>9} {name:<9} "
                  f"{fmt_ms(c['median_s'])} {fmt_ms(c['min_s'])} {fmt_ms(c['max_s'])} "
                  f"{c['ns_per_object']:7.1f} {c['collected_median']:>8g}  {ratio}", flush=True)
    print("-" * len(header))
    print("ratio = median over repeats of cyclegc time / built-in time (paired); "
          "< 1 means cyclegc is faster.")
    print("ns/obj = median time / all objects tracked by the interpreter; "
          "found = what collect() returned.")
    print(f"total benchmark time {time.perf_counter() - t_start:.1f}s")

    if args.json:
        doc = {
            "benchmark": "full_collection",
            "mode": mode,
            "repeat": args.repeat,
            "seed": args.seed,
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "machine": platform.machine(),
            "platform": platform.platform(),
            "cyclegc_version": getattr(cyclegc, "__version__", None),
            "results": results,
        }
        import os
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
