#!/usr/bin/env python3
"""How the cost per object of a full collection grows with the heap, and why.

For each heap size (a fresh process per size), builds the live heap of
`python -m cyclegc bench` (cyclegc.bench.build: mixed shapes, each object
referring to two earlier ones at random, nothing to free), then times,
alternating, repeat after repeat:

  walk        one pass over the generation lists reading each object's
              refcount: the reads of update_refs, in list order
  traverse    one tp_traverse per object whose visitor reads each referent's
              GC header: the reads of subtract_refs, in reference order
              (both from the core's _walk_probe(), which writes nothing)
  cyclegc     cyclegc.collect()
  built-in    the built-in gc.collect()

and prints each in ns per tracked object, and as a multiple of its value at
the smallest size.  A collection cannot cost less than its reads of the
heap; if the walk and the traversal grow by the same factor as the
collections from one size to the next, the growth is the memory hierarchy's
(the heap leaving the caches), not the algorithm's.

    python benchmarks/bench_scaling.py [--sizes 100k,300k,1M,3M,5M]
        [--repeat 5] [--json FILE]

Run it with an interpreter that has cyclegc installed (e.g.
.venvs/3.12/bin/python after `python scripts/test_all.py`), or with --src
pointing at a src/ directory holding a build.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r'''
import gc as builtin_gc, json, random, sys, time
import cyclegc
from cyclegc._core import _cyclegc as _core
from cyclegc.bench import build, disable_automatic, tracked_objects
size, repeat = int(sys.argv[1]), int(sys.argv[2])
disable_automatic()
heap = build(size, random.Random(1))
builtin_gc.collect(); cyclegc.collect()
tracked = tracked_objects()
times = {"walk": [], "traverse": [], "cyclegc": [], "builtin": []}
def collect(f):
    t0 = time.perf_counter(); f(); return time.perf_counter() - t0
for r in range(repeat + 1):
    steps = ["probe", "cyclegc", "builtin"]
    if r % 2:
        steps.reverse()
    for step in steps:
        if step == "probe":
            n, walk, trav, _ = _core._walk_probe()
            if r:
                times["walk"].append(walk); times["traverse"].append(trav)
        else:
            t = collect(cyclegc.collect if step == "cyclegc" else builtin_gc.collect)
            if r:
                times[step].append(t)
print(json.dumps({"size": size, "tracked": tracked, "times": times}))
'''

KINDS = ("walk", "traverse", "cyclegc", "builtin")


def parse_size(s):
    s = s.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1:], 1)
    return int(float(s.rstrip("km")) * mult)


def run_size(python, size, repeat, src):
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.path.abspath(src) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([python, "-c", CHILD, str(size), str(repeat)], env=env,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"size {size}: child failed\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100k,300k,1M,3M,5M")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--src", help="a src/ directory with cyclegc built in place")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    ver = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"],
                         capture_output=True, text=True).stdout.strip()
    rows = []
    for s in args.sizes.split(","):
        res = run_size(args.python, parse_size(s), args.repeat, args.src)
        res["ns"] = {k: statistics.median(res["times"][k]) * 1e9 / res["tracked"] for k in KINDS}
        res["ratio"] = statistics.median(
            c / b for c, b in zip(res["times"]["cyclegc"], res["times"]["builtin"]))
        rows.append(res)
        print(f"  {s}: done", file=sys.stderr, flush=True)
    base = rows[0]["ns"]
    print(f"Python {ver}: ns per tracked object, median of {args.repeat} "
          f"[x its value at {rows[0]['tracked']:,} objects]")
    print(f"{'tracked':>10} " + " ".join(f"{k:>16}" for k in KINDS) + "  cyclegc/built-in")
    for r in rows:
        cells = " ".join(f"{r['ns'][k]:7.1f} [{r['ns'][k] / base[k]:5.2f}x]" for k in KINDS)
        print(f"{r['tracked']:>10,} {cells}  {r['ratio']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": ver, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
