#!/usr/bin/env python3
"""Bounded pauses: a service-like workload under the built-in collector and
under ``cyclegc.install(max_pause_ms=2)``, alternating runs.

    python benchmarks/bench_pauses.py [--rows 1000000] [--seconds 15]
        [--runs 3] [--max-pause-ms 2] [--scales 1] [--short-cycles]
        [--python PY ...] [--json FILE]

The service (one child process per run, PYTHONHASHSEED=0):
  * a live heap of --rows long-lived rows, each a dict holding a list and a
    dict (3 tracked objects per row: ~3M objects for 1M rows), built first;
  * then, for --seconds, requests: each reads a few rows, builds a small
    cycle (a Request instance, a dict pointing back at it, a list of three
    __slots__ parts pointing back at it) and puts it in an LRU cache of
    100,000 entries, evicting the oldest, which becomes cyclic garbage in the
    oldest generation: the case where the built-in's full collections stop
    the program for a time proportional to the heap.  The cache is a
    preallocated ring (requests are never looked up again, so least recently
    used = oldest): an OrderedDict would add its own multi-millisecond
    resizes to the slowest request whatever the collector (measured: 8.7 ms
    CPU with the collector disabled), hiding what is measured here.
  * each request is timed (wall: perf_counter; CPU: thread_time, which a
    busy machine's scheduler does not inflate); gc.callbacks time every
    collection stop.

Reported per mode (medians over runs) and as paired ratios cyclegc/built-in
(run i against run i: noisy phases of a shared machine hit both):
  slowest request (wall and CPU ms), p99.9, requests per second, time per
  request, time in collection per request, peak RSS (ru_maxrss), the garbage
  still outstanding when the run stops (what a complete collection then
  finds: one sample, biased for the built-in, whose seconds-long full
  collections often end the run), the garbage waiting over the whole run
  (memory blocks in use sampled every 1000 requests, above the steady-state
  low: mean and peak), and the longest collection stop (wall and CPU).

--scales 0.333,1,3 repeats the service at other heap sizes (the scaling
table).  --short-cycles adds the other workload of the acceptance: many
small cycles that die young next to a modest heap (the pattern that made
CPython 3.13's incremental collector slower), total time per mode; with
--callgrind also its instruction count per mode (valgrind --tool=callgrind,
--short-n/10 iterations minus a run of 0 iterations, so start-up and the
heap's construction cancel out): deterministic where CPU time on a shared
machine is not.

Each --python must import cyclegc (installed, or this checkout's src/ with
the extension built in place: src/ is put on PYTHONPATH).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")

SERVICE = textwrap.dedent(r'''
    import gc, json, resource, sys, time
    import cyclegc
    mode, rows_n, seconds, max_pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])

    class Part:
        __slots__ = ("owner", "value")
        def __init__(self, owner, value):
            self.owner = owner
            self.value = value

    class Request:
        def __init__(self, i, rows):
            self.id = i
            self.data = {"owner": self, "seen": [rows[(i * 7919 + k) % len(rows)]["id"] for k in range(3)]}
            self.parts = [Part(self, k) for k in range(3)]

    rows = [{"id": i, "name": "row%d" % i, "tags": [i % 7, i % 11], "attrs": {"score": i * 0.5}}
            for i in range(rows_n)]
    gc.collect()
    if mode == "cyclegc":
        cyclegc.install(max_pause_ms=max_pause)

    stops, stops_cpu = [], []
    t_start = [0.0, 0.0]
    def timer(phase, info):
        if phase == "start":
            t_start[0] = time.perf_counter()
            t_start[1] = time.thread_time()
        else:
            stops.append(time.perf_counter() - t_start[0])
            stops_cpu.append(time.thread_time() - t_start[1])
    gc.callbacks.append(timer)

    CACHE = 100000
    cache = [None] * CACHE
    # Latencies go to fixed histograms (1 us buckets up to 100 ms), not to
    # growing lists: the bookkeeping must cost the same memory and time
    # whichever collector serves more requests.
    NB = 100001
    hist_wall, hist_cpu = [0] * NB, [0] * NB
    worst_wall = worst_cpu = 0.0
    perf, tcpu = time.perf_counter, time.thread_time
    # Memory blocks in use, sampled every 1000 requests: the live heap is
    # constant once the cache is full, so what varies is garbage waiting.
    blocks = []
    i = 0
    t0 = perf()
    c0 = time.process_time()
    end = t0 + seconds
    while True:
        a = perf(); b = tcpu()
        cache[i % CACHE] = Request(i, rows)
        d = perf(); e = tcpu() - b
        w = d - a
        hist_wall[min(int(w * 1e6), NB - 1)] += 1
        hist_cpu[min(int(e * 1e6), NB - 1)] += 1
        if w > worst_wall:
            worst_wall = w
        if e > worst_cpu:
            worst_cpu = e
        i += 1
        if i % 1000 == 0:
            blocks.append(sys.getallocatedblocks())
        if d > end:
            break
    wall = perf() - t0
    proc_cpu = time.process_time() - c0
    gc.callbacks.remove(timer)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # garbage outstanding now: what a complete collection finds
    outstanding = (cyclegc.collect() if mode == "cyclegc" else gc.collect())
    inc = cyclegc.incremental_stats() if mode == "cyclegc" else {}
    if mode == "cyclegc":
        cyclegc.uninstall()
    n = i

    def garbage_blocks(samples, how):
        """Blocks above the lowest sample after the cache filled (the heap
        right after a collection), averaged or at their peak."""
        steady = samples[len(samples) // 4:] or samples
        if not steady:
            return 0
        low = min(steady)
        extra = [b - low for b in steady]
        return sum(extra) / len(extra) if how == "mean" else max(extra)

    def pct(hist, q):
        want, seen = q * n, 0
        for us, count in enumerate(hist):
            seen += count
            if seen >= want:
                return us / 1e3
        return (NB - 1) / 1e3

    print(json.dumps({
        "requests": n, "wall": wall, "cpu": proc_cpu,
        "max_ms": worst_wall * 1e3, "max_cpu_ms": worst_cpu * 1e3,
        "p999_ms": pct(hist_wall, 0.999), "p99_ms": pct(hist_wall, 0.99),
        "p9999_cpu_ms": pct(hist_cpu, 0.9999),
        "us_per_request": wall / n * 1e6,
        "gc_us_per_request": sum(stops) / n * 1e6,
        "longest_stop_ms": max(stops) * 1e3 if stops else 0.0,
        "longest_stop_cpu_ms": max(stops_cpu) * 1e3 if stops_cpu else 0.0,
        "garbage_blocks_mean": garbage_blocks(blocks, "mean"),
        "garbage_blocks_max": garbage_blocks(blocks, "max"),
        "stops": len(stops), "rss_mb": rss / 1024, "outstanding": outstanding,
        "rounds": inc.get("rounds"), "overflow": inc.get("overflow_collections"),
        "truncated": inc.get("truncated_slices"),
    }))
''')

SHORT = textwrap.dedent(r'''
    import gc, json, sys, time
    import cyclegc
    mode, n, max_pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    heap = [{"k": [i], "v": {"i": i}} for i in range(200000)]
    gc.collect()
    if mode == "cyclegc":
        cyclegc.install(max_pause_ms=max_pause)

    class Node:
        def __init__(self, parent):
            self.parent = parent
            self.children = []
            if parent is not None:
                parent.children.append(self)

    t0 = time.perf_counter(); c0 = time.process_time()
    for i in range(n):
        root = Node(None)
        for k in range(4):
            Node(root)
        t = (root, [root], {"r": root})
    print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}))
    if mode == "cyclegc":
        cyclegc.uninstall()
''')


# The suite: each workload is a program run in a child process, as
# ``python prog.py args`` or ``python -m module args`` would run it, under the
# built-in collector or under cyclegc.install(max_pause_ms=P).  gc.callbacks
# time every stop (wall and thread CPU); stops inside an explicit
# gc.collect() (the program's own, or Sphinx's and mypy's) are set apart.
# The program's stdout is captured and hashed (outputs identical?); after it
# ends, a complete collection counts the garbage still outstanding.
WRAP = textwrap.dedent(r'''
    import gc, hashlib, io, json, os, resource, runpy, sys, time
    import cyclegc
    mode, max_pause, kind, target, *args = sys.argv[1:]
    max_pause = float(max_pause)
    if mode == "cyclegc":
        cyclegc.install(max_pause_ms=max_pause)
    explicit = [0]
    real_collect = gc.collect
    def collect(*a, **k):
        explicit[0] += 1
        try:
            return real_collect(*a, **k)
        finally:
            explicit[0] -= 1
    gc.collect = collect
    stops, stops_cpu, t = [], [], [0.0, 0.0, 0]
    def timer(phase, info):
        if phase == "start":
            t[0], t[1], t[2] = time.perf_counter(), time.thread_time(), explicit[0]
        elif not t[2]:
            stops.append(time.perf_counter() - t[0])
            stops_cpu.append(time.thread_time() - t[1])
    gc.callbacks.append(timer)
    out = io.StringIO()
    real_stdout = sys.stdout
    sys.stdout = out
    status = 0
    t0 = time.perf_counter()
    try:
        if kind == "module":
            sys.argv = [target, *args]
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            sys.argv = [target, *args]
            sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
            runpy.run_path(target, run_name="__main__")
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    wall = time.perf_counter() - t0
    sys.stdout = real_stdout
    gc.callbacks.remove(timer)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    inc = cyclegc.incremental_stats() if mode == "cyclegc" else {}
    outstanding = real_collect()
    text = out.getvalue()
    cause = inc.get("longest_stop") or {}
    print(json.dumps({
        "wall": wall, "status": status, "rss_mb": rss / 1024,
        "stops": len(stops),
        "longest_stop_ms": max(stops) * 1e3 if stops else 0.0,
        "longest_stop_cpu_ms": max(stops_cpu) * 1e3 if stops_cpu else 0.0,
        "p99_stop_ms": sorted(stops)[int(len(stops) * 0.99)] * 1e3 if stops else 0.0,
        "gc_total_ms": sum(stops) * 1e3,
        "outstanding": outstanding,
        "output_sha": hashlib.sha256(text.encode()).hexdigest()[:16],
        "output_tail": text[-200:],
        "overflow": inc.get("overflow_collections"), "rounds": inc.get("rounds"),
        "truncated": inc.get("truncated_slices"), "young_chunks": inc.get("young_chunks"),
        "core_longest_ms": cause.get("seconds", 0) * 1e3,
        "core_longest_cpu_ms": cause.get("cpu_seconds", 0) * 1e3,
        "core_longest_cause": f"{cause.get('cause')} ({cause.get('cause_objects')} objects)",
    }))
''')

PAUSES = os.path.join(HERE, "pauses")
ROOT = os.path.dirname(HERE)
PAUSES_VENVS = os.path.join(ROOT, ".pauses-venvs")

#: The two PyPI programs, pinned; installed by --install-pypi into
#: .pauses-venvs/<minor>/ (gitignored) with this checkout's cyclegc.
PYPI_PINS = ["sphinx==9.0.4", "mypy==2.4.0"]


def workloads(python, scale, tmp):
    """name -> (python, kind, target, args, setup).  PyPI workloads are
    included when .pauses-venvs/<minor> exists for the interpreter."""
    n = lambda x: str(max(1, int(x * scale)))
    w = {
        "asyncio": (python, "path", os.path.join(PAUSES, "asyncio_server.py"), [n(3000), n(150_000)]),
        "drop": (python, "path", os.path.join(PAUSES, "drop_structures.py"),
                 [",".join(n(x) for x in (100_000, 300_000, 1_000_000))]),
        "threads": (python, "path", os.path.join(PAUSES, "threads_work.py"), [n(150_000)]),
        "churn": (python, "path", os.path.join(ROOT, "examples", "churn.py"),
                  ["--requests", n(200_000)]),
        "big_young": (python, "path", os.path.join(PAUSES, "big_young.py"), [n(1_500_000)]),
    }
    minor = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True).stdout.strip()
    venv_py = os.path.join(PAUSES_VENVS, minor, "bin", "python")
    if os.path.exists(venv_py):
        proj = os.path.join(tmp, "sphinx-src")
        if not os.path.exists(proj):
            subprocess.run([venv_py, os.path.join(PAUSES, "sphinx_project.py"), proj,
                            str(max(5, int(72 * scale)))], check=True)
        w["sphinx"] = (venv_py, "module", "sphinx",
                       ["-q", "-E", "-b", "html", proj, os.path.join(tmp, "sphinx-out")])
        # mypy checks the installed Sphinx package (it ships py.typed).  Given
        # the package's directory instead, mypy 2.x takes site-packages for
        # the user's code and stops (typing_extensions.py "shadows library
        # module", status 2); and it ends with os._exit unless told not to,
        # which the child that measures it would not survive.
        w["mypy"] = (venv_py, "module", "mypy",
                     ["--no-incremental", "--cache-dir", os.devnull, "--ignore-missing-imports",
                      "--no-error-summary", "--no-fast-exit", "-p", "sphinx"])
    return w


def install_pypi(python):
    minor = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True).stdout.strip()
    venv = os.path.join(PAUSES_VENVS, minor)
    if not os.path.exists(venv):
        subprocess.run([python, "-m", "venv", venv], check=True)
    subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q",
                    *PYPI_PINS, ROOT], check=True)


def suite(python, names, scale, runs, max_pause, tmp):
    ws = workloads(python, scale, tmp)
    out = {}
    for name in names:
        if name not in ws:
            print(f"  {name}: skipped (not available for {python})", file=sys.stderr)
            continue
        py, kind, target, args = ws[name]
        res = {"builtin": [], "cyclegc": []}
        for i in range(runs):
            for mode in ("builtin", "cyclegc") if i % 2 == 0 else ("cyclegc", "builtin"):
                r = run_child(py, WRAP, [mode, max_pause, kind, target, *args], src=False)
                res[mode].append(r)
                print(f"  {name} run {i + 1} {mode:8s} longest stop {r['longest_stop_ms']:8.2f} ms "
                      f"(CPU {r['longest_stop_cpu_ms']:.2f})  wall {r['wall']:.2f} s  "
                      f"rss {r['rss_mb']:.0f} MB", file=sys.stderr, flush=True)
        out[name] = res
    return out


SUITE_KEYS = [("longest_stop_ms", "longest stop, ms"), ("longest_stop_cpu_ms", "longest stop, CPU ms"),
              ("p99_stop_ms", "p99 stop, ms"), ("gc_total_ms", "time in stops, ms"),
              ("wall", "wall, s"), ("rss_mb", "peak RSS, MB"), ("outstanding", "garbage outstanding at end")]


def spread(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return f"{min(vals):.2f}-{max(vals):.2f}" if vals else "-"


def report_suite(res, max_pause):
    for name, r in res.items():
        b, c = r["builtin"], r["cyclegc"]
        same = len({x["output_sha"] for x in b + c}) == 1 and len({x["status"] for x in b + c}) == 1
        print(f"\n{name} ({len(b)} runs per mode; medians [min-max]; ratio = median of paired ratios)")
        print(f"  {'':28s} {'built-in':>22s} {'cyclegc':>22s} {'ratio':>7s}")
        for key, label in SUITE_KEYS:
            print(f"  {label:28s} {med(b, key):9.2f} [{spread(b, key):>11s}] "
                  f"{med(c, key):9.2f} [{spread(c, key):>11s}] {paired(b, c, key):7.3f}")
        print(f"  overflow collections: {[x['overflow'] for x in c]}, rounds: {[x['rounds'] for x in c]}, "
              f"young chunks: {[x['young_chunks'] for x in c]}")
        print(f"  cyclegc's longest stop by the core: "
              f"{[(round(x['core_longest_cpu_ms'], 2), x['core_longest_cause']) for x in c]}")
        print(f"  outputs identical: {'yes' if same else 'NO'}  "
              f"(status {sorted({x['status'] for x in b + c})})")


def run_child(python, script, args, src=True):
    env = dict(os.environ, PYTHONHASHSEED="0")
    if src:
        env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([python, "-c", script, *map(str, args)], env=env,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def callgrind_instructions(python, script, args):
    """Instructions executed by a child under callgrind."""
    import re
    import tempfile
    env = dict(os.environ, PYTHONHASHSEED="0")
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(["valgrind", "--tool=callgrind",
                              f"--callgrind-out-file={tmp}/cg.out", python, "-c", script,
                              *map(str, args)], env=env, capture_output=True, text=True,
                             timeout=3600)
    m = re.search(r"Collected : (\d+)", out.stderr)
    if m is None:
        raise RuntimeError(f"callgrind failed:\n{out.stderr[-2000:]}")
    return int(m.group(1))


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else float("nan")


def paired(base, test, key):
    ratios = [t[key] / b[key] for b, t in zip(base, test) if b[key]]
    return statistics.median(ratios) if ratios else float("nan")


KEYS = [("max_ms", "slowest request, wall ms"), ("max_cpu_ms", "slowest request, CPU ms"),
        ("p999_ms", "p99.9 request, ms"), ("p9999_cpu_ms", "p99.99 request CPU, ms"), ("us_per_request", "time per request, us"),
        ("gc_us_per_request", "collection per request, us"), ("longest_stop_ms", "longest stop, ms"),
        ("longest_stop_cpu_ms", "longest stop, CPU ms"),
        ("rss_mb", "peak RSS, MB"), ("outstanding", "garbage outstanding at stop"),
        ("garbage_blocks_mean", "garbage blocks, mean"), ("garbage_blocks_max", "garbage blocks, peak"),
        ("requests", "requests")]


def service(python, rows, seconds, runs, max_pause):
    res = {"builtin": [], "cyclegc": []}
    for i in range(runs):
        for mode in ("builtin", "cyclegc") if i % 2 == 0 else ("cyclegc", "builtin"):
            res[mode].append(run_child(python, SERVICE, [mode, rows, seconds, max_pause]))
            print(f"  run {i + 1} {mode:8s} slowest {res[mode][-1]['max_ms']:8.2f} ms "
                  f"(cpu {res[mode][-1]['max_cpu_ms']:.2f})  {res[mode][-1]['requests']} requests",
                  file=sys.stderr, flush=True)
    return res


def report_service(rows, res):
    b, c = res["builtin"], res["cyclegc"]
    print(f"\nservice, {rows:,} rows ({len(b)} runs per mode, medians; ratio = median of paired ratios)")
    print(f"  {'':32s} {'built-in':>12s} {'cyclegc':>12s} {'ratio':>8s}")
    for key, label in KEYS:
        print(f"  {label:32s} {med(b, key):12.2f} {med(c, key):12.2f} {paired(b, c, key):8.3f}")
    print(f"  cyclegc rounds per run: {med(c, 'rounds')}, overflow collections: {med(c, 'overflow')}, "
          f"truncated slices: {med(c, 'truncated')}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-pause-ms", type=float, default=2.0)
    ap.add_argument("--scales", default="1",
                    help="comma-separated heap scales, e.g. 0.333,1,3; '' runs no service")
    ap.add_argument("--src", help="import cyclegc from this src/ directory (a build made "
                    "elsewhere) instead of the checkout's")
    ap.add_argument("--short-cycles", action="store_true")
    ap.add_argument("--short-n", type=int, default=1_000_000)
    ap.add_argument("--callgrind", action="store_true",
                    help="with --short-cycles: also count instructions under callgrind")
    ap.add_argument("--suite", default="",
                    help="comma-separated workloads of the suite: asyncio, drop, threads, churn, "
                         "big_young, sphinx, mypy (or 'all'); the service runs per --scales")
    ap.add_argument("--suite-scale", type=float, default=1.0, help="size factor of the suite's workloads")
    ap.add_argument("--install-pypi", action="store_true",
                    help=f"install {' '.join(PYPI_PINS)} into .pauses-venvs/<minor> first")
    ap.add_argument("--python", action="append")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.src:
        global SRC
        SRC = os.path.abspath(args.src)
    out = {}
    for python in args.python or [sys.executable]:
        ver = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True).stdout.strip()
        print(f"=== {python} (Python {ver}) max_pause_ms={args.max_pause_ms}")
        out[ver] = {}
        for scale in [float(s) for s in args.scales.split(",") if s]:
            rows = int(args.rows * scale)
            res = service(python, rows, args.seconds, args.runs, args.max_pause_ms)
            report_service(rows, res)
            out[ver][f"service_{rows}"] = res
        if args.install_pypi:
            install_pypi(python)
        if args.suite:
            import tempfile
            names = (["asyncio", "drop", "threads", "churn", "big_young", "sphinx", "mypy"]
                     if args.suite == "all" else args.suite.split(","))
            with tempfile.TemporaryDirectory() as tmp:
                res = suite(python, names, args.suite_scale, args.runs, args.max_pause_ms, tmp)
            report_suite(res, args.max_pause_ms)
            out[ver]["suite"] = res
        if args.short_cycles:
            res = {"builtin": [], "cyclegc": []}
            for i in range(args.runs):
                for mode in ("builtin", "cyclegc") if i % 2 == 0 else ("cyclegc", "builtin"):
                    res[mode].append(run_child(python, SHORT, [mode, args.short_n, args.max_pause_ms]))
            b, c = res["builtin"], res["cyclegc"]
            print(f"\nshort-lived cycles ({args.short_n:,} iterations, {args.runs} runs per mode)")
            print(f"  wall s: built-in {med(b, 'wall'):.3f}  cyclegc {med(c, 'wall'):.3f}  "
                  f"ratio {paired(b, c, 'wall'):.3f}")
            print(f"  CPU s:  built-in {med(b, 'cpu'):.3f}  cyclegc {med(c, 'cpu'):.3f}  "
                  f"ratio {paired(b, c, 'cpu'):.3f}")
            out[ver]["short_cycles"] = res
            if args.callgrind:
                n = args.short_n // 10
                ins = {mode: callgrind_instructions(python, SHORT, [mode, n, args.max_pause_ms])
                       - callgrind_instructions(python, SHORT, [mode, 0, args.max_pause_ms])
                       for mode in ("builtin", "cyclegc")}
                print(f"  instructions ({n:,} iterations, callgrind): built-in {ins['builtin']:,}  "
                      f"cyclegc {ins['cyclegc']:,}  ratio {ins['cyclegc'] / ins['builtin']:.4f}")
                out[ver]["short_cycles_instructions"] = ins
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
