"""The side-by-side benchmark suite: cyclegc vs the built-in collector.

    python -m cyclegc bench --suite quick            # everything, small, < 1 min
    python -m cyclegc bench --suite full --json out.json   # with the 5M-object heaps
    python -m cyclegc bench --suite quick --workloads young,gc_collect --repeat 9

Every timing workload runs both collectors in this one process, on the same
heap, ALTERNATELY (the order swapped on every repeat), with automatic
collection disabled, and reports per collector the median, min and max time
and the median of the paired ratios cyclegc/built-in (< 1: cyclegc is faster).

Workloads (--workloads, comma-separated; default all):

  full_live     full collection of a live heap (bench.build: instances with a
                __dict__ and with __slots__, lists, dicts, tuples, sets), nothing
                to free; one row per --sizes entry
  full_garbage  the same with half of the heap cyclic garbage, rebuilt before
                every collection and freed by it (deallocation included); both
                collectors must find the same number of objects
  young         young collections over an old heap of --young-heap objects:
                before each timed collect(0) (row young_gen0) or collect(1)
                (row young_gen1), --young-new new objects are created, half of
                them cyclic garbage, half surviving and pointing into the old
                heap
  gc_collect    pyperformance's gc_collect: 100 cycles of 21 linked Node objects
                are created and dropped, then one timed full collection
  gc_traversal  pyperformance's gc_traversal: nested lists 1000 levels deep
                (list k holds k references to list k-1) stay alive; one timed
                full collection with nothing to free
  memory        the collector's own extra memory: for each collector, child
                processes build the same heap (--memory-size, live and half
                garbage) and run the same full collections; reported: the rise
                of peak RSS during a collection above the RSS just before it
                (Linux: peak RSS reset through /proc/self/clear_refs), the
                process's peak RSS, and their cyclegc - built-in difference in
                bytes per tracked object
  shapes        full collections on many heap shapes (cyclegc.bench_shapes:
                random graph, document tree, dict of records, stdlib ASTs,
                chain, small cycles, wide list, big dict, slotted records,
                nested containers, JSON document), each built with automatic
                collection on, at --shape-sizes, with the floor (a read-only
                traversal in memory and in random order) in ns per object;
                young collections too when a size equals --young-heap (full
                suite); `benchmarks/bench_shapes.py` runs it alone with more
                options
  auto          a program relying on automatic collection (request-like
                cyclic temporaries, a growing long-lived heap), run with the
                built-in collector and with cyclegc.install(): total time and
                time inside collections (gc.callbacks); only if cyclegc.install
                exists

`benchmarks/run_suite.py` runs the full suite several times in fresh processes
and aggregates the runs into results/<python-version>.json.
"""
from __future__ import annotations

import argparse
import gc as builtin_gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time

import cyclegc

from . import bench
from .bench import COLLECT, alternate, build, build_garbage, fmt_size, paired_ratios, parse_size

NAMES = ("cyclegc", "builtin")
WORKLOADS = ("full_live", "full_garbage", "young", "gc_collect", "gc_traversal", "memory", "auto",
             "shapes")

PRESETS = {
    "quick": {"sizes": "10k,100k,1M", "garbage_sizes": "10k,100k", "repeat": 5,
              "young_heap": "1M", "young_new": 2000, "memory_size": "100k",
              "memory_runs": 1, "auto_n": "300k", "shape_sizes": "100k"},
    "full": {"sizes": "10k,100k,1M,5M", "garbage_sizes": None, "repeat": 7,
             "young_heap": "1M", "young_new": 2000, "memory_size": "1M",
             "memory_runs": 3, "auto_n": "2M", "shape_sizes": "1M,5M"},
}

# Timed samples per repeat for the workloads whose single collection is short
# (a few ms or less: on a busy machine, one sample in four or five includes a
# preemption of 4-8 ms, so they need more samples for a stable median).
SHORT_FACTOR = 5
SHORT_HEAP = 100_000


def _full_repeat(size: int, repeat: int) -> int:
    return repeat * SHORT_FACTOR if size <= SHORT_HEAP else repeat


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def _proc_status(key: str) -> int | None:
    """A Vm* line of /proc/self/status, in bytes (None if unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's peak RSS (VmHWM, ru_maxrss) to its current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _ru_maxrss() -> int:
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def settle() -> None:
    """Untimed: free whatever is pending, leave every survivor old."""
    COLLECT["builtin"]()
    COLLECT["cyclegc"]()


def summarize(workload: str, key: str, times: dict, found: dict, **extra) -> dict:
    """A timing row: per collector median/min/max, paired ratios."""
    row = {"workload": workload, "key": key, "kind": "time", **extra, "collectors": {}}
    for name in NAMES:
        ts = times[name]
        row["collectors"][name] = {
            "median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts),
            "times_s": ts, "samples": len(ts),
            "collected_median": statistics.median(found[name]) if found[name] else None,
        }
    ratios = paired_ratios(times)
    row["ratio_median"] = statistics.median(ratios) if ratios else float("nan")
    row["ratio_min"] = min(ratios) if ratios else float("nan")
    row["ratio_max"] = max(ratios) if ratios else float("nan")
    row["found_equal"] = (
        sorted(found["cyclegc"]) == sorted(found["builtin"]) if found["cyclegc"] else None)
    return row


# --------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------

def full_collection(size: int, repeat: int, garbage: bool, seed: int) -> dict:
    """bench.bench_size (the package benchmark) as a suite row."""
    res = bench.bench_size(size, repeat, garbage, seed)
    times = {n: res["collectors"][n]["times_s"] for n in NAMES}
    row = summarize("full_garbage" if garbage else "full_live",
                    f"{'full_garbage' if garbage else 'full_live'}/{fmt_size(size)}",
                    times, {n: [res["collectors"][n]["collected_median"]] for n in NAMES},
                    size=size, tracked_objects=res["tracked_objects"],
                    live_objects=res["live_objects"], garbage_objects=res["garbage_objects"])
    for n in NAMES:
        row["collectors"][n]["ns_per_object"] = res["collectors"][n]["ns_per_object"]
    del res
    settle()
    return row


def young_collections(old_size: int, new: int, repeat: int, seed: int,
                      generations=(0, 1)) -> list[dict]:
    """collect(0) / collect(1) after `new` fresh objects over an old heap.

    Before every timed collection (untimed): new // 2 objects of cyclic
    garbage (rings of 32, bench.build_garbage) and new // 2 surviving objects
    (bench.build with the old heap as base, so they point into it), kept
    alive by a list that is itself old.  Survivors of collect(0) accumulate
    in generation 1; collect(1) promotes them to the old generation.
    """
    rng = random.Random(seed)
    heap = build(old_size, rng)
    survivors: list = []
    settle()
    settle()
    tracked = bench.tracked_objects()
    half = new // 2
    rows = []
    for gen in generations:
        young_count: list[int] = []
        settle()  # the previous row's survivors leave the young generations

        def prepare(name):
            build_garbage(half, rng)
            survivors.append(build(new - half, rng, base=heap))
            if not young_count:  # what the collection examines (once, untimed)
                young_count.append(sum(len(builtin_gc.get_objects(g)) for g in range(gen + 1)))

        times, found = alternate(repeat * SHORT_FACTOR, prepare,
                                 lambda name: COLLECT[name](gen), NAMES)
        row = summarize(f"young_gen{gen}", f"young_gen{gen}", times, found,
                        size=old_size, new_objects=new, young_objects=young_count[0],
                        tracked_objects=tracked)
        for n in NAMES:
            row["collectors"][n]["ns_per_object"] = (
                row["collectors"][n]["median_s"] * 1e9 / max(young_count[0], 1))
        rows.append(row)
    del heap, survivors
    settle()
    return rows


class Node:
    """pyperformance gc_collect's node."""

    def __init__(self):
        self.next = None
        self.prev = None

    def link_next(self, next):
        self.next = next
        self.next.prev = self


def create_cycle(node, n_links):
    current = node
    for _ in range(n_links):
        next_node = Node()
        current.link_next(next_node)
        current = next_node
    current.link_next(node)


def create_gc_cycles(n_cycles, n_links):
    cycles = []
    for _ in range(n_cycles):
        node = Node()
        cycles.append(node)
        create_cycle(node, n_links)
    return cycles


def gc_collect(repeat: int, cycles: int = 100, links: int = 20) -> dict:
    """pyperformance gc_collect: collect(), create the cycles, drop them, then
    one timed collect() -- with the same collector."""

    def prepare(name):
        COLLECT[name]()
        all_cycles = create_gc_cycles(cycles, links)
        del all_cycles

    settle()
    tracked = bench.tracked_objects()
    times, found = alternate(repeat * SHORT_FACTOR, prepare, lambda name: COLLECT[name](), NAMES)
    row = summarize("gc_collect", "gc_collect", times, found, cycles=cycles,
                    nodes=cycles * (links + 1), tracked_objects=tracked)
    if min(found["cyclegc"] + found["builtin"]) < cycles * (links + 1):
        row["error"] = "a collection found fewer objects than the cycles hold"
    settle()
    return row


def create_recursive_containers(n_levels):
    current_list = []
    for n in range(n_levels):
        new_list = [None] * n
        for index in range(n):
            new_list[index] = current_list
        current_list = new_list
    return current_list


def gc_traversal(repeat: int, levels: int = 1000) -> dict:
    """pyperformance gc_traversal: the nested lists stay alive; collect(),
    then one timed collect() (nothing to free) -- with the same collector."""
    all_cycles = create_recursive_containers(levels)
    settle()
    tracked = bench.tracked_objects()
    times, found = alternate(repeat * SHORT_FACTOR, lambda name: COLLECT[name](),
                             lambda name: COLLECT[name](), NAMES)
    row = summarize("gc_traversal", "gc_traversal", times, found, levels=levels,
                    references=levels * (levels - 1) // 2, tracked_objects=tracked)
    if any(found["cyclegc"] + found["builtin"]):
        row["error"] = "a collection found garbage where there is none"
    del all_cycles
    settle()
    return row


# ---- memory ------------------------------------------------------------------

def _memory_child(argv: list[str]) -> int:
    """Child process: build the heap, run `collections` full collections with
    one collector, print JSON with peak RSS figures."""
    mode, size, name, collections, seed = argv[0], int(argv[1]), argv[2], int(argv[3]), int(argv[4])
    bench.disable_automatic()
    rng = random.Random(seed)
    garbage = mode == "garbage"
    live_n = size // 2 if garbage else size
    garbage_n = size - live_n
    heap = build(live_n, rng)
    fn = COLLECT[name]
    process_peak = 0
    extras: list[int] = []
    can_reset = True
    for _ in range(collections + 1):  # the first one also settles the heap
        if garbage:
            build_garbage(garbage_n, rng)
        hwm = _proc_status("VmHWM")
        process_peak = max(process_peak, hwm or 0)
        before = _proc_status("VmRSS")
        can_reset = can_reset and before is not None and _reset_peak_rss()
        fn()
        if can_reset:
            after = _proc_status("VmHWM")
            extras.append(after - before)
            process_peak = max(process_peak, after)
    hwm = _proc_status("VmHWM")
    # ru_maxrss only where /proc is missing: on Linux it carries the parent's
    # peak over fork+exec, so a child of a big process would report that.
    process_peak = max(process_peak, hwm) if hwm is not None else _ru_maxrss()
    rss_end = _proc_status("VmRSS")
    tracked = bench.tracked_objects() + garbage_n  # after the peaks were read
    del heap
    print(json.dumps({"mode": mode, "size": size, "collector": name,
                      "tracked_objects": tracked, "peak_rss_bytes": process_peak,
                      "rss_end_bytes": rss_end,
                      "collection_extra_bytes": extras if can_reset else None}))
    return 0


def _child_env() -> dict:
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(cyclegc.__file__)))
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def memory(size: int, mode: str, runs: int, collections: int, seed: int,
           python: str | None = None) -> dict:
    code = ("import sys; from cyclegc.bench_suite import _memory_child; "
            "sys.exit(_memory_child(sys.argv[1:]))")
    per: dict[str, list[dict]] = {n: [] for n in NAMES}
    for r in range(runs):
        order = NAMES if r % 2 == 0 else NAMES[::-1]
        for name in order:
            proc = subprocess.run([python or sys.executable, "-c", code, mode, str(size), name,
                                   str(collections), str(seed)],
                                  env=_child_env(), capture_output=True, text=True, timeout=3600)
            if proc.returncode != 0:
                raise RuntimeError(f"memory child ({name}, {mode}, {size}) failed:\n{proc.stderr}")
            per[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    tracked = per["builtin"][0]["tracked_objects"]
    row = {"workload": f"memory_{mode}", "key": f"memory_{mode}/{fmt_size(size)}",
           "kind": "memory", "size": size, "mode": mode, "runs": runs,
           "collections": collections + 1, "tracked_objects": tracked, "collectors": {}}
    for name in NAMES:
        peaks = [c["peak_rss_bytes"] for c in per[name]]
        extras = [max(c["collection_extra_bytes"]) for c in per[name]
                  if c["collection_extra_bytes"]]
        row["collectors"][name] = {
            "peak_rss_bytes": statistics.median(peaks), "peak_rss_min": min(peaks),
            "peak_rss_max": max(peaks),
            "collection_extra_bytes": statistics.median(extras) if extras else None,
            "collection_extra_min": min(extras) if extras else None,
            "collection_extra_max": max(extras) if extras else None,
            "children": per[name],
        }
    c, b = row["collectors"]["cyclegc"], row["collectors"]["builtin"]
    row["peak_diff_bytes"] = c["peak_rss_bytes"] - b["peak_rss_bytes"]
    row["peak_diff_bytes_per_object"] = row["peak_diff_bytes"] / max(tracked, 1)
    if c["collection_extra_bytes"] is not None and b["collection_extra_bytes"] is not None:
        row["extra_diff_bytes"] = c["collection_extra_bytes"] - b["collection_extra_bytes"]
        row["extra_diff_bytes_per_object"] = row["extra_diff_bytes"] / max(tracked, 1)
    else:
        row["extra_diff_bytes"] = row["extra_diff_bytes_per_object"] = None
    return row


# ---- automatic collection ----------------------------------------------------

def auto_program(n: int, rng: random.Random) -> list:
    """About n container allocations, never calling collect(): each request
    makes a ring of 32 objects of cyclic garbage (bench.build_garbage), and
    every fourth one also adds 8 objects to a long-lived heap that keeps
    growing (so older generations fill up and get collected too)."""
    heap: list = []
    for i in range(n // 34):
        build_garbage(32, rng)
        if i % 4 == 0:
            heap.append(build(8, rng))
    return heap


class _Churn:
    pass


def shapes(sizes: list[int], repeat: int, seed: int, young_heap: int | None) -> list[dict]:
    """cyclegc.bench_shapes as suite rows: one per shape, size and kind (full,
    young after 200k new objects, young after threshold0 new objects)."""
    from . import bench_shapes
    rows = []
    for size in sizes:
        for i, shape in enumerate(bench_shapes.SHAPES):
            young = 200_000 if young_heap is not None and size == young_heap else None
            for r in bench_shapes.bench_shape(shape, size, repeat, seed + i, False, young):
                times = {n: r["collectors"][n]["times_s"] for n in NAMES}
                found = {n: r["collectors"][n]["found"] for n in NAMES}
                extra = {k: r[k] for k in ("size", "tracked_objects", "floor_memory_ns",
                                           "floor_random_ns", "young_objects") if k in r}
                row = summarize("shapes", f"shape_{r['kind']}/{shape}/{fmt_size(size)}",
                                times, found, **extra)
                for n in NAMES:
                    row["collectors"][n]["ns_per_object"] = r["collectors"][n]["ns_per_object"]
                rows.append(row)
    bench.disable_automatic()
    return rows


def auto_probe() -> str | None:
    """Does cyclegc.install() work here?  A short churn of self-referencing
    objects with cyclegc installed must trigger collections and raise
    nothing unraisable.  Returns None, or why not."""
    seen = [0]
    errors: list = []

    def callback(phase, info):
        if phase == "stop":
            seen[0] += 1

    def unraisable(u):  # keep a description, not the traceback (and its frames)
        if not errors:
            errors.append(f"{u.exc_type.__name__}: {u.exc_value}")

    hook = sys.unraisablehook
    sys.unraisablehook = unraisable
    builtin_gc.callbacks.append(callback)
    try:
        cyclegc.install()
        cyclegc.enable()
        try:
            for _ in range(5_000):
                c = _Churn()
                c.self = c
            del c
        finally:
            cyclegc.disable()
            cyclegc.uninstall()
    except Exception as exc:  # an install() in progress elsewhere
        return f"install() failed: {exc!r}"
    finally:
        sys.unraisablehook = hook
        builtin_gc.callbacks.remove(callback)
        bench.disable_automatic()
        settle()
    if errors:
        return f"automatic collection raised {errors[0]}"
    if not seen[0]:
        return "no automatic collection happened with cyclegc installed"
    return None


def auto(n: int, repeat: int, seed: int) -> dict:
    """The same program with the built-in automatic collector and with
    cyclegc.install(), alternating; total time and time in collections."""
    gc_time = [0.0]
    counts = [0, 0, 0]
    start = [0.0]

    def callback(phase, info):
        if phase == "start":
            start[0] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - start[0]
            counts[info["generation"]] += 1

    res = {n_: {"times": [], "gc_times": [], "collections": []} for n_ in NAMES}
    tracked: list[int] = []
    thresholds = builtin_gc.get_threshold()
    builtin_gc.callbacks.append(callback)
    try:
        for r in range(repeat + 1):  # the first round is a warm-up
            order = NAMES if r % 2 == 0 else NAMES[::-1]
            for name in order:
                settle()
                gc_time[0] = 0.0
                counts[:] = [0, 0, 0]
                rng = random.Random(seed)
                if name == "cyclegc":
                    cyclegc.install()
                    cyclegc.enable()
                else:
                    builtin_gc.enable()
                try:
                    t0 = time.perf_counter()
                    heap = auto_program(n, rng)
                    t1 = time.perf_counter()
                    if not tracked:  # untimed: how big the program's heap got
                        tracked.append(bench.tracked_objects())
                finally:
                    if name == "cyclegc":
                        cyclegc.disable()
                        cyclegc.uninstall()
                    else:
                        builtin_gc.disable()
                del heap
                if r:
                    res[name]["times"].append(t1 - t0)
                    res[name]["gc_times"].append(gc_time[0])
                    res[name]["collections"].append(list(counts))
    finally:
        builtin_gc.callbacks.remove(callback)
        builtin_gc.set_threshold(*thresholds)
        bench.disable_automatic()
    settle()
    times = {name: res[name]["times"] for name in NAMES}
    row = summarize("auto", f"auto/{fmt_size(n)}", times, {name: [] for name in NAMES},
                    size=n, thresholds=list(thresholds), tracked_objects=tracked[0])
    row["kind"] = "auto"
    for name in NAMES:
        g = res[name]["gc_times"]
        col = row["collectors"][name]
        col.update(gc_median_s=statistics.median(g), gc_min_s=min(g), gc_max_s=max(g),
                   gc_times_s=g, collections=res[name]["collections"][0])
    gr = [c / b for c, b in zip(res["cyclegc"]["gc_times"], res["builtin"]["gc_times"]) if b > 0]
    row["gc_ratio_median"] = statistics.median(gr) if gr else float("nan")
    row["gc_ratio_min"] = min(gr) if gr else float("nan")
    row["gc_ratio_max"] = max(gr) if gr else float("nan")
    return row


# --------------------------------------------------------------------------
# Table
# --------------------------------------------------------------------------

def fmt_t(s: float) -> str:
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


def fmt_b(b: float | None) -> str:
    if b is None:
        return "-"
    sign = "-" if b < 0 else ""
    b = abs(b)
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= div:
            return f"{sign}{b / div:.3g} {unit}"
    return f"{sign}{b:.0f} B"


def fmt_db(b: float | None) -> str:
    """A signed byte difference: +1.2 MiB, -8 KiB, +0 B."""
    if b is None:
        return "-"
    return ("-" if b < 0 else "+") + fmt_b(abs(b))


def table_lines(rows: list[dict]) -> list[str]:
    head = (f"{'workload':<20} {'tracked':>9} {'cyclegc median [min-max]':>30} "
            f"{'built-in median [min-max]':>30} {'ratio [min-max]':>20} {'found c/b':>15}")
    lines = [head, "-" * len(head)]
    for row in rows:
        c, b = row["collectors"]["cyclegc"], row["collectors"]["builtin"]
        if row["kind"] == "memory":
            lines.append(
                f"{row['key']:<20} {row['tracked_objects']:>9} "
                f"{'peak ' + fmt_b(c['peak_rss_bytes']) + ', ' + fmt_db(c['collection_extra_bytes']):>30} "
                f"{'peak ' + fmt_b(b['peak_rss_bytes']) + ', ' + fmt_db(b['collection_extra_bytes']):>30} "
                f"{'diff ' + _per_obj(row.get('extra_diff_bytes_per_object')):>20} "
                f"{'peak ' + _per_obj(row['peak_diff_bytes_per_object']):>15}")
            continue
        cs = f"{fmt_t(c['median_s'])} [{fmt_t(c['min_s'])}-{fmt_t(c['max_s'])}]"
        bs = f"{fmt_t(b['median_s'])} [{fmt_t(b['min_s'])}-{fmt_t(b['max_s'])}]"
        if row.get("runs", 2) > 1:
            rs = f"{row['ratio_median']:.3f} [{row['ratio_min']:.2f}-{row['ratio_max']:.2f}]"
        else:  # one run of an aggregate: the range over its repeats
            rs = (f"{row['ratio_median']:.3f} [{row['sample_ratio_min']:.2f}-"
                  f"{row['sample_ratio_max']:.2f}]*")
        if row["kind"] == "auto":
            fs = "-"
        else:
            fc, fb = c["collected_median"], b["collected_median"]
            fs = f"{fc:.0f}/{fb:.0f}" if fc is not None else "-"
        lines.append(f"{row['key']:<20} {row.get('tracked_objects', 0):>9} {cs:>30} {bs:>30} "
                     f"{rs:>20} {fs:>15}")
        if row["kind"] == "auto":
            gs_c = f"{fmt_t(c['gc_median_s'])} {'/'.join(map(str, c['collections']))}"
            gs_b = f"{fmt_t(b['gc_median_s'])} {'/'.join(map(str, b['collections']))}"
            lines.append(f"{'  time in gc, g0/g1/g2':<30} {gs_c:>30} {gs_b:>30} "
                         f"{row['gc_ratio_median']:>9.3f} [{row['gc_ratio_min']:.2f}-"
                         f"{row['gc_ratio_max']:.2f}]")
        if row.get("error"):
            lines.append(f"  !! {row['error']}")
    return lines


def _per_obj(x):
    return "-" if x is None else f"{x:+.2f} B/obj"


TABLE_NOTES = (
    "ratio = median of paired ratios cyclegc/built-in over alternating repeats (< 1: cyclegc "
    "faster); [min-max] = range over repeats; found = what collect() returned (median).",
    "memory: peak = process peak RSS; +X = rise of peak RSS during a collection above the RSS "
    "just before it; diff = cyclegc - built-in of the rise, per tracked object.",
    "auto: total time of the program; 'time in gc' measured with gc.callbacks, collections "
    "per generation in the first timed run.",
)


# --------------------------------------------------------------------------
# Aggregating several runs (benchmarks/run_suite.py)
# --------------------------------------------------------------------------

def aggregate(docs: list[dict]) -> list[dict]:
    """One row per key over several suite runs: the median of the per-run
    paired ratio medians with its range over runs (the run-to-run noise);
    times: both collectors' medians in the least disturbed run, min and max
    over all samples (the median of the run medians is kept as
    median_of_runs_s)."""
    order: list[str] = []
    by_key: dict[str, list[dict]] = {}
    for doc in docs:
        for row in doc["results"]:
            if row["key"] not in by_key:
                order.append(row["key"])
                by_key[row["key"]] = []
            by_key[row["key"]].append(row)
    out = []
    for key in order:
        rows = by_key[key]
        first = rows[0]
        agg = {k: v for k, v in first.items() if k not in ("collectors",)}
        agg["runs"] = len(rows)
        agg["collectors"] = {}
        if first["kind"] == "memory":
            for name in NAMES:
                cs = [r["collectors"][name] for r in rows]
                agg["collectors"][name] = {
                    "peak_rss_bytes": statistics.median(c["peak_rss_bytes"] for c in cs),
                    "collection_extra_bytes": _med([c["collection_extra_bytes"] for c in cs]),
                }
            for k in ("peak_diff_bytes", "peak_diff_bytes_per_object", "extra_diff_bytes",
                      "extra_diff_bytes_per_object"):
                agg[k] = _med([r.get(k) for r in rows])
                vals = [r.get(k) for r in rows if r.get(k) is not None]
                agg[k + "_range"] = [min(vals), max(vals)] if vals else None
            out.append(agg)
            continue
        # The machine's speed changes from run to run (it is shared): the
        # times shown are both collectors' medians of one run, the least
        # disturbed (lowest sum of the two), so they stay paired; the ratio
        # below is over all runs.
        best = min(range(len(rows)), key=lambda i: sum(
            rows[i]["collectors"][n]["median_s"] for n in NAMES))
        agg["best_run"] = best
        for name in NAMES:
            cs = [r["collectors"][name] for r in rows]
            col = {
                "median_s": cs[best]["median_s"],
                "median_of_runs_s": statistics.median(c["median_s"] for c in cs),
                "min_s": min(c["min_s"] for c in cs),
                "max_s": max(c["max_s"] for c in cs),
                "run_medians_s": [c["median_s"] for c in cs],
                "collected_median": _med([c.get("collected_median") for c in cs]),
            }
            if "ns_per_object" in cs[0]:
                col["ns_per_object"] = cs[best]["ns_per_object"]
            if first["kind"] == "auto":
                col["gc_median_s"] = cs[best]["gc_median_s"]
                col["gc_median_of_runs_s"] = statistics.median(c["gc_median_s"] for c in cs)
                col["gc_min_s"] = min(c["gc_min_s"] for c in cs)
                col["gc_max_s"] = max(c["gc_max_s"] for c in cs)
                col["collections"] = cs[0]["collections"]
            agg["collectors"][name] = col
        run_ratios = [r["ratio_median"] for r in rows]
        agg["run_ratio_medians"] = run_ratios
        agg["ratio_median"] = statistics.median(run_ratios)
        agg["ratio_min"] = min(run_ratios)
        agg["ratio_max"] = max(run_ratios)
        agg["sample_ratio_min"] = min(r["ratio_min"] for r in rows)
        agg["sample_ratio_max"] = max(r["ratio_max"] for r in rows)
        if first["kind"] == "auto":
            g = [r["gc_ratio_median"] for r in rows]
            agg["gc_ratio_median"] = statistics.median(g)
            agg["gc_ratio_min"], agg["gc_ratio_max"] = min(g), max(g)
        agg["found_equal"] = all(r.get("found_equal") in (True, None) for r in rows)
        errors = [r["error"] for r in rows if r.get("error")]
        if errors:
            agg["error"] = "; ".join(errors)
        out.append(agg)
    return out


def _med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


LABELS = {
    "full_live": "full collection, live heap {size}",
    "full_garbage": "full collection, {size} (half cyclic garbage)",
    "young_gen0": "collect(0): {new} new objects over a {size} heap",
    "young_gen1": "collect(1): {new} new objects over a {size} heap",
    "gc_collect": "pyperformance gc_collect",
    "gc_traversal": "pyperformance gc_traversal",
    "auto": "automatic collection program ({size} allocations)",
    "memory_live": "full collections of a live heap of {size}",
    "memory_garbage": "full collections of {size}, half garbage",
}


def label(row: dict) -> str:
    tmpl = LABELS.get(row["workload"], row["key"])
    return tmpl.format(size=fmt_size(row.get("size", 0)), new=f"{row.get('new_objects', 0):,}")


def markdown(docs: list[dict]) -> str:
    """Markdown tables from results/<version>.json documents (run_suite.py),
    one column per interpreter."""
    pys = [d["python"] for d in docs]
    rows_by_py = [{r["key"]: r for r in d["aggregate"]} for d in docs]
    keys: list[str] = []
    for d in docs:
        for r in d["aggregate"]:
            if r["key"] not in keys:
                keys.append(r["key"])
    time_keys = [k for k in keys if not k.startswith("memory")]
    mem_keys = [k for k in keys if k.startswith("memory")]
    out = ["| workload | tracked | " + " | ".join(pys) + " |",
           "|---|---|" + "---|" * len(pys)]
    for k in time_keys:
        any_row = next(r[k] for r in rows_by_py if k in r)
        cells = []
        for r in rows_by_py:
            row = r.get(k)
            if row is None:
                cells.append("")
                continue
            c, b = row["collectors"]["cyclegc"], row["collectors"]["builtin"]
            noise = (f" [{row['ratio_min']:.2f}-{row['ratio_max']:.2f}]"
                     if row["runs"] > 1 else f" [{row['sample_ratio_min']:.2f}-"
                     f"{row['sample_ratio_max']:.2f}]*")
            cell = (f"**{row['ratio_median']:.2f}**{noise} "
                    f"{fmt_t(c['median_s'])} / {fmt_t(b['median_s'])}")
            if row["kind"] == "auto":
                gnoise = (f" [{row['gc_ratio_min']:.2f}-{row['gc_ratio_max']:.2f}]"
                          if row["runs"] > 1 else "")
                cell += (f"; in gc: **{row['gc_ratio_median']:.2f}**{gnoise} "
                         f"{fmt_t(c['gc_median_s'])} / {fmt_t(b['gc_median_s'])}")
            cells.append(cell)
        tracked = any_row.get("tracked_objects")
        out.append(f"| {label(any_row)} | {_short(tracked)} | " + " | ".join(cells) + " |")
    if mem_keys:
        out += ["", "| memory | tracked | " + " | ".join(pys) + " |",
                "|---|---|" + "---|" * len(pys)]
        for k in mem_keys:
            any_row = next(r[k] for r in rows_by_py if k in r)
            cells = []
            for r in rows_by_py:
                row = r.get(k)
                if row is None:
                    cells.append("")
                    continue
                c, b = row["collectors"]["cyclegc"], row["collectors"]["builtin"]
                cells.append(
                    f"**{_per_obj(row['extra_diff_bytes_per_object'])}**: "
                    f"{fmt_db(c['collection_extra_bytes'])} / "
                    f"{fmt_db(b['collection_extra_bytes'])}; peak "
                    f"{fmt_b(c['peak_rss_bytes'])} / {fmt_b(b['peak_rss_bytes'])} "
                    f"({_per_obj(row['peak_diff_bytes_per_object'])})")
            out.append(f"| {label(any_row)} | {_short(any_row['tracked_objects'])} | "
                       + " | ".join(cells) + " |")
    return "\n".join(out)


def _short(n):
    if not n:
        return ""
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 1_000:
        return f"{n / 1e3:.0f}k"
    return str(n)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m cyclegc bench",
                                 description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=tuple(PRESETS), required=True,
                    help="quick (< 1 min, default sizes 10k-1M) or full (adds 5M heaps, "
                         "more repeats, 1M-object memory children)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated subset of: " + ", ".join(WORKLOADS))
    ap.add_argument("--sizes", help="heap sizes of full_live (and full_garbage unless "
                                    "--garbage-sizes); quick: 10k,100k,1M, full: 10k,100k,1M,5M")
    ap.add_argument("--garbage-sizes", help="heap sizes of full_garbage (quick: 10k,100k)")
    ap.add_argument("--repeat", type=int, help="timed collections per collector (quick 5, "
                    f"full 7; x{SHORT_FACTOR} for heaps <= 100k, young, gc_collect, gc_traversal; "
                    "rounds of the auto program)")
    ap.add_argument("--young-heap", help="old heap of the young workload (default 1M)")
    ap.add_argument("--young-new", type=int, help="new objects before each young collection "
                                                  "(default 2000)")
    ap.add_argument("--memory-size", help="heap of the memory children (quick 100k, full 1M)")
    ap.add_argument("--memory-runs", type=int, help="child processes per collector and mode "
                                                    "(quick 1, full 3)")
    ap.add_argument("--auto-n", help="container allocations of the auto program "
                                     "(quick 300k, full 2M)")
    ap.add_argument("--shape-sizes", help="heap sizes of the shapes workload "
                                          "(quick 100k, full 1M,5M)")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--garbage", action="store_true", help=argparse.SUPPRESS)
    return ap


def run(args) -> dict:
    preset = PRESETS[args.suite]

    def opt(name):
        v = getattr(args, name)
        return preset[name] if v is None else v

    sizes = [parse_size(s) for s in opt("sizes").split(",") if s.strip()]
    gs = args.garbage_sizes or (preset["garbage_sizes"] if args.sizes is None else None)
    garbage_sizes = [parse_size(s) for s in gs.split(",")] if gs else sizes
    repeat = opt("repeat")
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workloads: {', '.join(sorted(unknown))} "
                         f"(choose from {', '.join(WORKLOADS)})")
    if repeat < 1 or not sizes or min(sizes + garbage_sizes) < 1:
        raise SystemExit("--repeat and sizes must be positive")

    if hasattr(cyclegc, "installed") and cyclegc.installed():
        cyclegc.uninstall()
    bench.disable_automatic()
    print(f"cyclegc {getattr(cyclegc, '__version__', '?')} vs built-in gc on "
          f"{platform.python_implementation()} {platform.python_version()} "
          f"({platform.machine()}); suite {args.suite}; {repeat} repeats, alternating",
          flush=True)
    lines = table_lines([])
    print("\n".join(lines), flush=True)
    rows: list[dict] = []
    timings: dict[str, float] = {}
    skipped: dict[str, str] = {}
    t_start = time.perf_counter()

    def emit(new_rows):
        for row in new_rows:
            row["rss_after_bytes"] = _proc_status("VmRSS")
            rows.append(row)
            print("\n".join(table_lines([row])[2:]), flush=True)

    seed = args.seed
    for w in workloads:
        t0 = time.perf_counter()
        if w == "full_live":
            for i, size in enumerate(sizes):
                emit([full_collection(size, _full_repeat(size, repeat), False, seed + i)])
        elif w == "full_garbage":
            for i, size in enumerate(garbage_sizes):
                emit([full_collection(size, _full_repeat(size, repeat), True, seed + 100 + i)])
        elif w == "young":
            emit(young_collections(parse_size(opt("young_heap")), opt("young_new"), repeat,
                                   seed + 200))
        elif w == "gc_collect":
            emit([gc_collect(repeat)])
        elif w == "gc_traversal":
            emit([gc_traversal(repeat)])
        elif w == "memory":
            size = parse_size(opt("memory_size"))
            for mode in ("live", "garbage"):
                emit([memory(size, mode, opt("memory_runs"), 3, seed + 300)])
        elif w == "shapes":
            emit(shapes([parse_size(x) for x in opt("shape_sizes").split(",") if x.strip()],
                        repeat, seed + 500,
                        parse_size(opt("young_heap")) if args.suite == "full" else None))
        elif w == "auto":
            why = "this cyclegc has no install()" if not hasattr(cyclegc, "install") else auto_probe()
            if why:
                print(f"(auto skipped: {why})", flush=True)
                skipped["auto"] = why
            else:
                emit([auto(parse_size(opt("auto_n")), repeat, seed + 400)])
        timings[w] = time.perf_counter() - t0
    total = time.perf_counter() - t_start
    print("-" * len(lines[0]))
    for note in TABLE_NOTES:
        print(note)
    print("time per workload: " + ", ".join(f"{w} {t:.1f}s" for w, t in timings.items())
          + f"; total {total:.1f}s", flush=True)
    return {
        "benchmark": "suite",
        "suite": args.suite,
        "repeat": repeat,
        "seed": args.seed,
        "argv": sys.argv,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cyclegc_version": getattr(cyclegc, "__version__", None),
        "core": _core_fingerprint(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "workload_seconds": timings,
        "total_seconds": total,
        "skipped": skipped,
        "results": rows,
    }


def _core_fingerprint() -> dict:
    """Which build of the C core was measured (colleagues rebuild it in place)."""
    import hashlib
    from ._core import _cyclegc as core
    path = core.__file__
    try:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
        mtime = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(path)))
    except OSError:
        digest = mtime = None
    return {"file": os.path.basename(path), "sha256_16": digest, "mtime": mtime}


def write_json(doc: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.garbage:
        ap.error("--garbage is not a suite option: the suite runs full_live and full_garbage "
                 "(choose with --workloads)")
    doc = run(args)
    if args.json:
        write_json(doc, args.json)
        print(f"wrote {args.json}")
    return 0 if not any(r.get("error") for r in doc["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
