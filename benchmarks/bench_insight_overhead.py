#!/usr/bin/env python3
"""What insight costs, next to a heap of a million objects.

    python benchmarks/bench_insight_overhead.py [--python PY ...] [--runs 5]
        [--heap 1000000] [--allocations 300000] [--query-procs 3] [--query-runs 3]
        [--skip-auto] [--skip-queries] [--json FILE]

1. Insight mode on the automatic-collection benchmark.  A program run with
   ``python -m cyclegc run`` (cyclegc installed, automatic collection on,
   collect() never called): it builds a long-lived heap of --heap tracked
   objects of mixed shapes (cyclegc.bench.build), then runs the workload of
   the suite's "automatic collection program" (cyclegc.bench_suite): about
   --allocations container allocations in requests that each leave a ring
   of 32 objects of cyclic garbage, every fourth request adding 8 objects
   to a growing long-lived heap.  Three modes, each run in a fresh
   process, alternating (the order rotates every run):

   * ``plain``:   ``python -m cyclegc run --quiet prog.py``
   * ``insight``: ``python -m cyclegc run --quiet --insight-json F prog.py``
     (tracemalloc with 1 frame for allocation sites, and every
     collection's garbage examined);
   * ``nosites``: ``plain``, with the program calling
     ``cyclegc.insight.start(tracebacks=False)`` first (the examination
     without tracemalloc: where the cost comes from).

   Timed inside the program: the build of the heap, the churn (the
   automatic-collection workload proper) and the time inside collections
   during the churn (gc.callbacks, registered after insight's observer, so
   it includes insight's examination); outside: the whole process.
   Reported: medians per mode and the median of the per-run paired ratios
   mode/plain with their range (the noise).

2. Per-collection insight cost, from the insight report's timeline
   (``analysis_ms``: insight's examination of one collection's garbage,
   outside the collector's own pause): the median per young collection,
   microseconds per garbage object, the last full collection over the heap
   (pause and examination), and (time in collections with insight minus
   without) / collections during the churn, paired per run.

3. why_alive() and find_cycles() on the heap of --heap objects (cyclegc
   installed), each query --query-runs times in each of --query-procs fresh
   processes: an object held through a module global's list, the end of a
   5,000-long linked chain (depth limit 64: partial answer; and complete),
   an object only C code holds, find_cycles() on a member of a ring of
   1,000 objects.  Reported: the median over processes of each process's
   median, with the range.

Every child gets PYTHONHASHSEED=0 and runs in a temporary directory; by
default this checkout's src/ goes first on PYTHONPATH (like
benchmarks/bench_install_overhead.py), so each --python must import cyclegc
from it (the extension built in place); with --installed, each --python uses
the cyclegc installed in it (e.g. a venv with a build of one commit, which
edits of the checkout during a long run cannot change).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")

# The program run under `python -m cyclegc run`.
PROGRAM = textwrap.dedent(r'''
    import gc, json, os, random, sys, time
    from cyclegc import bench

    mode, heap_n, allocations, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    session = None
    if mode == "nosites":
        import cyclegc.insight
        session = cyclegc.insight.start(tracebacks=False)

    gc_time = [0.0]
    counts = [0, 0, 0]
    start = [0.0]

    def callback(phase, info):
        if phase == "start":
            start[0] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - start[0]
            counts[info["generation"]] += 1

    def churn(n, rng):
        """bench_suite.auto_program: requests leaving a ring of 32 objects of
        cyclic garbage, every fourth one adding 8 objects to a long-lived heap."""
        heap = []
        for i in range(n // 34):
            bench.build_garbage(32, rng)
            if i % 4 == 0:
                heap.append(bench.build(8, rng))
        return heap

    t0 = time.perf_counter()
    HEAP = bench.build(heap_n, random.Random(1))
    t1 = time.perf_counter()
    gc.callbacks.append(callback)          # after insight's observer
    young = churn(allocations, random.Random(2))
    t2 = time.perf_counter()
    gc.callbacks.remove(callback)
    res = {"build_s": t1 - t0, "churn_s": t2 - t1, "churn_gc_s": gc_time[0],
           "churn_collections": counts, "tracked": len(gc.get_objects())}
    if session is not None:
        # a last full collection, untimed, as run --insight does
        res["report"] = cyclegc.insight.stop(collect=True).as_dict()
    with open(out, "w") as f:
        json.dump(res, f)
''')

# why_alive() / find_cycles() on a heap of a million objects.
QUERIES = textwrap.dedent(r'''
    import ctypes, gc, json, random, statistics, sys, time
    import cyclegc
    from cyclegc import bench
    heap_n, runs = int(sys.argv[1]), int(sys.argv[2])
    cyclegc.install()

    class Node:
        def __init__(self, nxt=None):
            self.next = nxt

    HEAP = bench.build(heap_n, random.Random(1))
    CHAIN = None                           # a linked chain of 5,000 nodes
    for _ in range(5000):
        CHAIN = Node(CHAIN)
    RING = [Node()]                        # a ring of 1,000 nodes
    RING[0].next = Node(Node())
    node = RING[0].next.next
    for _ in range(997):
        node.next = Node()
        node = node.next
    node.next = RING[0]
    node = Node()                          # kept alive by one reference only C holds
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(node))
    C_HELD = id(node)
    del node
    cyclegc.collect()
    tracked = len(gc.get_objects())

    # The targets are never held in a variable between queries (a variable
    # of a running frame is a root, found at once): each query fetches its
    # target into why_alive()'s argument, which the search ignores.
    def tail():
        node = CHAIN
        while node.next is not None:
            node = node.next
        return node

    def c_held():
        return ctypes.cast(C_HELD, ctypes.py_object).value

    def timed(name, fn, check):
        times, last = [], None
        for _ in range(runs):
            last = None                    # the last answer holds its target: a root
            t0 = time.perf_counter()
            last = fn()
            times.append(time.perf_counter() - t0)
        ok = check(last)
        text = str(last)
        return name, {"median_s": statistics.median(times), "times_s": times, "ok": ok,
                      "examined": getattr(last, "examined", None),
                      "indexed": getattr(last, "indexed", None),
                      "complete": getattr(last, "complete", None),
                      "first_line": text.splitlines()[0][:200] if text else ""}

    k = heap_n * 7 // 10
    res = dict([
        timed("global_list", lambda: cyclegc.why_alive(HEAP[k]),
              lambda r: bool(r) and r.complete and ".HEAP" in str(r)),
        timed("chain_5000_depth64", lambda: cyclegc.why_alive(tail()),
              lambda r: not r.complete and "depth limit" in r.reason),
        timed("chain_5000_complete", lambda: cyclegc.why_alive(tail(), max_depth=20000, timeout=120),
              lambda r: bool(r) and r.complete and ".CHAIN" in str(r)),
        timed("c_held", lambda: cyclegc.why_alive(c_held()),
              lambda r: "C code" in str(r)),
        timed("find_cycles_ring_1000", lambda: cyclegc.find_cycles(RING[0]),
              lambda r: r.complete and bool(r.cycles)),
    ])
    print(json.dumps({"tracked": tracked, "queries": res}))
''')


USE_SRC = [True]


def child_env():
    env = dict(os.environ)
    if USE_SRC[0]:
        env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONHASHSEED"] = "0"
    return env


def python_version(python):
    return subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def cyclegc_origin(python):
    return subprocess.run([python, "-c", "import cyclegc; print(cyclegc.__file__)"],
                          env=child_env(), capture_output=True, text=True, check=True,
                          cwd=tempfile.gettempdir()).stdout.strip()


def run_program(python, prog, mode, heap, allocations, tmp):
    out = os.path.join(tmp, f"{mode}.json")
    report = os.path.join(tmp, f"{mode}-insight.json")
    cmd = [python, "-m", "cyclegc", "run", "--quiet"]
    if mode == "insight":
        cmd += ["--insight-json", report]
    cmd += [prog, mode, str(heap), str(allocations), out]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=7200,
                          cwd=tmp)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    with open(out) as f:
        res = json.load(f)
    res["process_s"] = wall
    if mode == "insight":
        with open(report) as f:
            res["report"] = json.load(f)
    return res


def per_collection(report):
    """Insight's examination cost per collection, from a report's timeline."""
    tl = report["timeline"]
    young_all = [t for t in tl if t["generation"] < 2 and t.get("reason") != "final"]
    young = [t for t in young_all if t["garbage_objects"]]        # the churn's
    empty = [t for t in young_all if not t["garbage_objects"]]    # mostly the heap build's
    garbage = sum(t["garbage_objects"] for t in tl)
    analysis = sum(t["analysis_ms"] for t in tl)
    final = [t for t in tl if t.get("reason") == "final"]     # after the churn, over the heap
    last_full = final[-1] if final else None
    return {
        "collections": len(tl),
        "young_analysis_ms_median": statistics.median(t["analysis_ms"] for t in young) if young else None,
        "young_pause_ms_median": statistics.median(t["pause_ms"] for t in young) if young else None,
        "young_garbage_median": statistics.median(t["garbage_objects"] for t in young) if young else None,
        "empty_young_collections": len(empty),
        "empty_young_analysis_ms_median": (statistics.median(t["analysis_ms"] for t in empty)
                                           if empty else None),
        "us_per_garbage_object": analysis * 1e3 / garbage if garbage else None,
        "full_pause_ms": last_full["pause_ms"] if last_full else None,
        "full_analysis_ms": last_full["analysis_ms"] if last_full else None,
        "full_reason": last_full.get("reason") if last_full else None,
        "analysis_s_total": analysis / 1e3,
        "garbage_objects": garbage,
    }


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "all": [round(v, 4) for v in values]}


MODES = ("plain", "insight", "nosites")


def auto(python, runs, heap, allocations):
    res = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="cyclegc-insight-bench-") as tmp:
        prog = os.path.join(tmp, "prog.py")
        with open(prog, "w") as f:
            f.write(PROGRAM)
        for i in range(runs):
            k = i % len(MODES)
            for mode in MODES[k:] + MODES[:k]:
                res[mode].append(run_program(python, prog, mode, heap, allocations, tmp))
            print(f"  run {i + 1}/{runs}: " + ", ".join(
                f"{m} churn {res[m][-1]['churn_s']:.2f} s" for m in MODES), flush=True)
    out = {"runs": runs, "heap": heap, "allocations": allocations,
           "tracked": {m: res[m][0]["tracked"] for m in MODES},
           "collections": {m: res[m][0]["churn_collections"] for m in MODES}}
    for key in ("churn_s", "churn_gc_s", "build_s", "process_s"):
        out[key] = {m: spread([r[key] for r in res[m]]) for m in MODES}
        for m in ("insight", "nosites"):
            out[key][m + "/plain"] = spread([r[key] / p[key]
                                             for r, p in zip(res[m], res["plain"]) if p[key] > 0])
    for m in ("insight", "nosites"):
        pcs = [per_collection(r["report"]) for r in res[m]]
        summary = {}
        for k in pcs[0]:
            vals = [p[k] for p in pcs if isinstance(p[k], (int, float))]
            summary[k] = spread(vals) if vals else pcs[0][k]
        # Extra time in collections per collection, paired with plain.
        extra = [(r["churn_gc_s"] - p["churn_gc_s"]) / max(1, sum(r["churn_collections"])) * 1e3
                 for r, p in zip(res[m], res["plain"])]
        summary["extra_gc_ms_per_collection"] = spread(extra)
        out["per_collection_" + m] = summary
    return out


def queries(python, runs, heap, query_runs):
    per = []
    for i in range(runs):
        proc = subprocess.run([python, "-c", QUERIES, str(heap), str(query_runs)], env=child_env(),
                              capture_output=True, text=True, timeout=7200,
                              cwd=tempfile.gettempdir())
        if proc.returncode != 0:
            raise SystemExit(f"queries failed:\n{proc.stderr[-3000:]}")
        per.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"  query process {i + 1}/{runs}: " + ", ".join(
            f"{k} {v['median_s'] * 1e3:.0f} ms" for k, v in per[-1]["queries"].items()), flush=True)
    out = {"tracked": per[0]["tracked"], "runs": runs, "query_runs": query_runs, "queries": {}}
    for name in per[0]["queries"]:
        q = [p["queries"][name] for p in per]
        out["queries"][name] = {"s": spread([x["median_s"] for x in q]),
                                "ok": all(x["ok"] for x in q),
                                "examined": q[0]["examined"], "indexed": q[0]["indexed"],
                                "complete": q[0]["complete"]}
    return out


def fmt_spread(x, scale=1.0, fmt="{:.3f}"):
    return (f"{fmt.format(x['median'] * scale)} [{fmt.format(x['min'] * scale)}-"
            f"{fmt.format(x['max'] * scale)}]")


def print_auto(a):
    print(f"automatic collection, heap {a['heap']:,} + {a['allocations']:,} allocations "
          f"({a['runs']} alternating runs; tracked at the end {a['tracked']['plain']:,}; "
          f"collections during the churn {a['collections']})")
    for key, what in (("churn_s", "churn (the benchmark)"), ("churn_gc_s", "in collections"),
                      ("build_s", "heap build"), ("process_s", "whole process")):
        x = a[key]
        print(f"  {what:22}: plain {x['plain']['median']:.3f} s, insight "
              f"{x['insight']['median']:.3f} s, nosites {x['nosites']['median']:.3f} s; "
              f"ratio insight/plain {fmt_spread(x['insight/plain'], fmt='{:.2f}')}, "
              f"nosites/plain {fmt_spread(x['nosites/plain'], fmt='{:.2f}')}")
    for m in ("insight", "nosites"):
        p = a["per_collection_" + m]

        def g(k, scale=1.0, fmt="{:.3f}"):
            v = p[k]
            return fmt_spread(v, scale, fmt) if isinstance(v, dict) else str(v)
        print(f"  per collection ({m}): examination {g('young_analysis_ms_median')} ms per young "
              f"collection that found garbage (median garbage {g('young_garbage_median', fmt='{:.0f}')} objects, pause "
              f"{g('young_pause_ms_median')} ms), {g('us_per_garbage_object', fmt='{:.2f}')} us "
              f"per garbage object; last full collection (after the churn, untimed): pause {g('full_pause_ms', fmt='{:.1f}')} ms, "
              f"examination {g('full_analysis_ms', fmt='{:.2f}')} ms; extra time in collections "
              f"{g('extra_gc_ms_per_collection')} ms per collection (paired); "
              f"{g('empty_young_analysis_ms_median')} ms for a young collection without garbage")


def print_queries(q):
    print(f"why_alive/find_cycles, {q['tracked']:,} tracked objects ({q['runs']} processes x "
          f"{q['query_runs']} queries)")
    for name, x in q["queries"].items():
        print(f"  {name:24}: {fmt_spread(x['s'], 1e3, '{:.0f}')} ms  (examined {x['examined']}, "
              f"indexed {x['indexed']}, complete {x['complete']}, checks "
              f"{'ok' if x['ok'] else 'FAILED'})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", action="append", help="interpreter (repeatable; default: this one)")
    p.add_argument("--runs", type=int, default=5, help="processes per mode (default 5)")
    p.add_argument("--heap", type=int, default=1_000_000, help="long-lived heap (default 1M)")
    p.add_argument("--allocations", type=int, default=300_000,
                   help="container allocations in the churn (default 300k)")
    p.add_argument("--query-procs", type=int, default=3,
                   help="processes for the why_alive queries (default 3)")
    p.add_argument("--query-runs", type=int, default=3, help="each query per process (default 3)")
    p.add_argument("--skip-auto", action="store_true")
    p.add_argument("--skip-queries", action="store_true")
    p.add_argument("--installed", action="store_true",
                   help="use the cyclegc installed in each --python, not this checkout's src/")
    p.add_argument("--json", help="write every figure to this file")
    args = p.parse_args(argv)
    USE_SRC[0] = not args.installed
    report = []
    for python in args.python or [sys.executable]:
        version = python_version(python)
        origin = cyclegc_origin(python)
        print(f"== Python {version} ({python}; cyclegc from {origin})", flush=True)
        entry = {"python": python, "version": version, "cyclegc": origin}
        if not args.skip_auto:
            entry["auto"] = auto(python, args.runs, args.heap, args.allocations)
            print_auto(entry["auto"])
        if not args.skip_queries:
            entry["queries"] = queries(python, args.query_procs, args.heap, args.query_runs)
            print_queries(entry["queries"])
        report.append(entry)
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0 if all(x["ok"] for e in report for x in e.get("queries", {}).get("queries", {}).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
