#!/usr/bin/env python3
"""Automatic collections: cyclegc.install() vs the built-in collector.

For each workload, a fresh subprocess runs it --repeat times with the
built-in automatic collector and --repeat times with cyclegc installed,
interleaved (install()/uninstall() around each cyclegc run), with the same
thresholds, and prints:

* automatic collections per million container allocations, per generation,
  from the interpreter's own counters (gc.get_stats() deltas over the first
  run; the workload never calls collect()), and the ratio cyclegc/built-in;
* wall time of the workload (best of --repeat), and the difference.

Workloads:

  cycles        a loop creating self-referencing instances (all garbage)
  grow          a loop appending fresh lists to a list that stays alive
                (exercises generations 1 and 2 and the long-lived rule)
  mixed         trees of dicts/lists, most dropped, some kept
  thread        `cycles` in a worker thread while the main thread join()s
  thread_sleep  `cycles` in two worker threads, main thread in time.sleep()
  atoms         allocation-heavy, no containers (ints, floats, strings):
                the allocator wrapper's cost when nothing is due
  churn         containers freed right away (count never reaches the
                threshold): the wrapper's cost on container allocation

Usage:
    PYTHONPATH=src python benchmarks/bench_trigger.py [-n 1000000] [--repeat 5]
        [--workloads cycles,grow,...] [--json FILE]
"""
import argparse
import json
import os
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")

CHILD = textwrap.dedent(r'''
    import gc, json, sys, threading, time
    workload, n, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    import cyclegc

    class A:
        pass

    def cycles(n):
        for _ in range(n):
            a = A()
            a.self = a

    def grow(n):
        keep = []
        for _ in range(n):
            keep.append([])
        return len(keep)

    def mixed(n):
        keep = []
        for i in range(n // 4):
            d = {"l": [], "t": A()}
            d["l"].append(d)
            if i % 16 == 0:
                keep.append(d)
        return len(keep)

    def atoms(n):
        x = 0
        for i in range(n):
            s = str(i)
            f = float(i) * 1.5
            x += len(s) + int(f)
        return x

    def churn(n):
        for i in range(n):
            a = A()
            b = A()
            del a, b

    def thread(n):
        t = threading.Thread(target=cycles, args=(n,))
        t.start()
        t.join()

    def thread_sleep(n):
        ts = [threading.Thread(target=cycles, args=(n // 2,)) for _ in range(2)]
        for t in ts:
            t.start()
        while any(t.is_alive() for t in ts):
            time.sleep(0.05)
        for t in ts:
            t.join()

    # Container allocations a workload performs per unit of n.
    ALLOCS = {"cycles": 1, "grow": 1, "mixed": 0.75, "atoms": 0, "churn": 2,
              "thread": 1, "thread_sleep": 1}
    func = globals()[workload]

    def collections():
        # The interpreter's per-generation counters: both collectors keep
        # them, and reading them does not perturb either (a gc.callbacks
        # observer would run Python code inside the built-in's collections).
        return [s["collections"] for s in gc.get_stats()]

    res = {m: {"times": [], "counts": None} for m in ("builtin", "cyclegc")}
    for r in range(repeat):
        for mode in ("builtin", "cyclegc"):     # interleaved: same heap, same noise
            if mode == "cyclegc":
                cyclegc.install()
            cyclegc.collect()
            before = collections()
            t0 = time.perf_counter()
            func(n)
            dt = time.perf_counter() - t0
            after = collections()
            if mode == "cyclegc":
                cyclegc.uninstall()
            res[mode]["times"].append(dt)
            if res[mode]["counts"] is None:
                res[mode]["counts"] = [a - b for a, b in zip(after, before)]
    for mode in res:
        res[mode].update(best=min(res[mode]["times"]), allocs=n * ALLOCS[workload])
    print(json.dumps({"workload": workload, "n": n, "threshold": list(gc.get_threshold()),
                      "builtin": res["builtin"], "cyclegc": res["cyclegc"]}))
''')


def run(workload, n, repeat, python):
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([python, "-c", CHILD, workload, str(n), str(repeat)],
                         env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"{workload} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--workloads", default="cycles,grow,mixed,thread,thread_sleep,atoms,churn")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--json")
    args = p.parse_args(argv)
    results = []
    print(f"Python {sys.version.split()[0]}, n={args.n}, best of {args.repeat}")
    print(f"{'workload':<13} {'built-in per 1M allocs (g0/g1/g2)':>36} {'cyclegc':>26} "
          f"{'ratio':>6} {'built-in s':>10} {'cyclegc s':>10} {'time':>7}")
    for w in args.workloads.split(","):
        r = run(w, args.n, args.repeat, args.python)
        b, c = r["builtin"], r["cyclegc"]
        if b["allocs"]:
            scale = 1e6 / b["allocs"]
            bc = [x * scale for x in b["counts"]]
            cc = [x * scale for x in c["counts"]]
            ratio = sum(cc) / sum(bc) if sum(bc) else float("nan")
            bs = "/".join(f"{x:.0f}" for x in bc) + f" = {sum(bc):.0f}"
            cs = "/".join(f"{x:.0f}" for x in cc) + f" = {sum(cc):.0f}"
        else:
            ratio, bs, cs = float("nan"), "-", "-"
        tr = c["best"] / b["best"]
        print(f"{w:<13} {bs:>36} {cs:>26} {ratio:>6.3f} {b['best']:>10.4f} "
              f"{c['best']:>10.4f} {100 * (tr - 1):>+6.1f}%")
        results.append({"workload": w, "builtin": b, "cyclegc": c,
                        "collections_ratio": ratio, "time_ratio": tr})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
