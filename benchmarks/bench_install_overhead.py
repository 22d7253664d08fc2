#!/usr/bin/env python3
"""What cyclegc.install() costs a program, against the built-in collector.

    python benchmarks/bench_install_overhead.py [--runs 9] [--python PY ...]
        [--callgrind] [--rss-runs 5] [--json FILE]

1. Overhead (target: ratio <= 1.03).  An allocation-heavy program with
   little cyclic garbage (records of dicts, lists, tuples, strings, ints and
   instances flowing through a window of live ones, one cycle per ~10k
   records), run in a fresh process per run, alternately with the built-in
   collector and with cyclegc installed (both import cyclegc; only one
   installs it).  Reported: the median wall and CPU time of the workload in
   each mode, and the median of the paired ratios cyclegc/built-in (run i of
   one mode against run i of the other, so slow phases of a shared machine
   hit both sides of a pair).  Both modes must run the same number of
   collections (same thresholds, same rules), printed too.

   --callgrind also counts instructions (valgrind --tool=callgrind, one run
   per mode with a smaller workload, minus a run with no workload for each
   mode so interpreter start-up and imports cancel out): deterministic, the
   figure to trust on a busy machine.

2. Peak RSS (target: within 10%).  A loop churning cyclic garbage (objects
   with instance dicts, lists and dicts in cycles) next to a live heap of
   ~200k objects, in the main thread and in a worker thread; ru_maxrss of
   the child process, --rss-runs per mode, medians and their ratio.

Every child is started with PYTHONHASHSEED=0.  Several --python may be given
(each must be able to import cyclegc: an installed one, or this checkout's
src/ with the extension built in place).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")

CHILD = textwrap.dedent(r'''
    import gc, json, resource, sys, threading, time
    import cyclegc
    what, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "cyclegc":
        cyclegc.install()

    class Point:
        def __init__(self, x, y):
            self.x = x
            self.y = y

    class Slotted:
        __slots__ = ("a", "b")
        def __init__(self, a, b):
            self.a = a
            self.b = b

    def overhead(n):
        """Allocation-heavy, little cyclic garbage."""
        window = []
        total = 0
        for i in range(n):
            rec = {"id": i, "name": "item%d" % i, "tags": [i % 7, i % 11, i % 13],
                   "pos": Point(i, i + 1), "key": (i % 97, "k"), "s": Slotted(i, None)}
            rec["score"] = (rec["tags"][0] + rec["tags"][1]) * 1.5
            window.append(rec)
            if len(window) >= 64:
                batch = sorted(window, key=lambda r: r["score"])
                total += len([r["name"].upper() for r in batch[:8]])
                keep.append(batch[-1])          # a few records live longer
                if len(keep) > 3000:
                    del keep[:1000]
                window = []
            if i % 10000 == 0:                  # a little cyclic garbage
                a = [i]
                a.append(a)
        return total

    def churn(n):
        """Cyclic garbage next to a live heap."""
        for i in range(n):
            p = Point(i, None)
            p.y = p
            d = {"i": i, "l": [p]}
            d["self"] = d
            l = [d, (i, i)]
            l.append(l)

    keep = []
    if what.startswith("rss"):
        live = [[Point(i, i), {"i": i}] for i in range(50000)]   # ~200k objects
    func = overhead if what == "overhead" else churn
    before = [s["collections"] for s in gc.get_stats()]
    t0, c0 = time.perf_counter(), time.process_time()
    if what == "rss_thread":
        t = threading.Thread(target=func, args=(n,))
        t.start()
        t.join()
    elif n:
        func(n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    after = [s["collections"] for s in gc.get_stats()]
    print(json.dumps({"wall": wall, "cpu": cpu,
                      "collections": [a - b for a, b in zip(after, before)],
                      "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
''')


def child_env(python):
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONHASHSEED"] = "0"
    return env


def run_child(python, what, mode, n, prefix=()):
    cmd = [*prefix, python, "-c", CHILD, what, mode, str(n)]
    out = subprocess.run(cmd, env=child_env(python), capture_output=True, text=True,
                         timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:len(prefix) + 1])} {what} {mode} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def python_version(python):
    return subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def overhead(python, runs, n):
    res = {"builtin": [], "cyclegc": []}
    for i in range(runs):
        # Alternate which mode goes first, so neither always runs second.
        order = ("builtin", "cyclegc") if i % 2 == 0 else ("cyclegc", "builtin")
        for mode in order:
            res[mode].append(run_child(python, "overhead", mode, n)[0])
    b, c = res["builtin"], res["cyclegc"]
    out = {"n": n, "runs": runs}
    for key in ("wall", "cpu"):
        out[key] = {"builtin": statistics.median(r[key] for r in b),
                    "cyclegc": statistics.median(r[key] for r in c),
                    "paired_ratio": statistics.median(y[key] / x[key] for x, y in zip(b, c)),
                    "ratios": [round(y[key] / x[key], 4) for x, y in zip(b, c)]}
    out["collections"] = {"builtin": b[0]["collections"], "cyclegc": c[0]["collections"]}
    return out


def callgrind_ir(python, mode, n):
    with tempfile.TemporaryDirectory() as tmp:
        prefix = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out")
        _, err = run_child(python, "overhead", mode, n, prefix)
    m = re.search(r"Collected\s*:\s*(\d+)", err)
    if not m:
        raise SystemExit(f"no instruction count in valgrind's output:\n{err[-2000:]}")
    return int(m.group(1))


def callgrind(python, n):
    out = {"n": n}
    for mode in ("builtin", "cyclegc"):
        full, base = callgrind_ir(python, mode, n), callgrind_ir(python, mode, 0)
        out[mode] = {"total": full, "startup": base, "workload": full - base}
    out["ratio"] = out["cyclegc"]["workload"] / out["builtin"]["workload"]
    return out


def rss(python, runs, n):
    out = {}
    for what in ("rss", "rss_thread"):
        res = {"builtin": [], "cyclegc": []}
        for i in range(runs):
            order = ("builtin", "cyclegc") if i % 2 == 0 else ("cyclegc", "builtin")
            for mode in order:
                res[mode].append(run_child(python, what, mode, n)[0])
        med = {m: statistics.median(r["maxrss_kb"] for r in res[m]) / 1024 for m in res}
        out["main" if what == "rss" else "thread"] = {
            "builtin_mb": med["builtin"], "cyclegc_mb": med["cyclegc"],
            "ratio": med["cyclegc"] / med["builtin"],
            "builtin_all": [round(r["maxrss_kb"] / 1024, 1) for r in res["builtin"]],
            "cyclegc_all": [round(r["maxrss_kb"] / 1024, 1) for r in res["cyclegc"]],
            "collections": {m: res[m][0]["collections"] for m in res}}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", action="append", help="interpreter (repeatable; default: this one)")
    p.add_argument("--runs", type=int, default=9, help="runs per mode for the overhead (default 9)")
    p.add_argument("-n", type=int, default=1_000_000, help="records in the overhead workload")
    p.add_argument("--callgrind", action="store_true", help="also count instructions")
    p.add_argument("--callgrind-n", type=int, default=30_000)
    p.add_argument("--rss-runs", type=int, default=5, help="runs per mode for peak RSS (0: skip)")
    p.add_argument("--rss-n", type=int, default=300_000, help="garbage cycles per RSS run")
    p.add_argument("--json", help="write every figure to this file")
    p.add_argument("--src", help="import cyclegc from this src/ directory (a build made "
                   "elsewhere) instead of the checkout's")
    args = p.parse_args(argv)
    if args.src:
        global SRC
        SRC = os.path.abspath(args.src)
    report = []
    for python in args.python or [sys.executable]:
        version = python_version(python)
        print(f"== Python {version} ({python})", flush=True)
        entry = {"python": python, "version": version}
        o = entry["overhead"] = overhead(python, args.runs, args.n)
        for key in ("wall", "cpu"):
            x = o[key]
            print(f"overhead {key:4}: built-in {x['builtin']:.3f} s, cyclegc {x['cyclegc']:.3f} s "
                  f"(medians of {args.runs}), paired ratio {x['paired_ratio']:.3f} "
                  f"[{min(x['ratios']):.3f}..{max(x['ratios']):.3f}]", flush=True)
        print(f"collections (g0, g1, g2): built-in {o['collections']['builtin']}, "
              f"cyclegc {o['collections']['cyclegc']}")
        if args.callgrind:
            cg = entry["callgrind"] = callgrind(python, args.callgrind_n)
            print(f"instructions (n={args.callgrind_n}, start-up subtracted): built-in "
                  f"{cg['builtin']['workload']:,}, cyclegc {cg['cyclegc']['workload']:,}, "
                  f"ratio {cg['ratio']:.4f}", flush=True)
        if args.rss_runs:
            r = entry["rss"] = rss(python, args.rss_runs, args.rss_n)
            for where, x in r.items():
                print(f"peak RSS, churn in {where:6} thread: built-in {x['builtin_mb']:.1f} MB, "
                      f"cyclegc {x['cyclegc_mb']:.1f} MB, ratio {x['ratio']:.3f} "
                      f"(medians of {args.rss_runs}; collections {x['collections']['builtin']} "
                      f"vs {x['collections']['cyclegc']})", flush=True)
        report.append(entry)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
