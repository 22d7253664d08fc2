#!/usr/bin/env python3
"""Run the full side-by-side suite several times and aggregate the runs.

    python benchmarks/run_suite.py                       # 3 runs, the first with 5M heaps
    python benchmarks/run_suite.py --runs 3 --big-runs 2 --out results/x.json
    python benchmarks/run_suite.py --quick --runs 1      # the quick suite, once
    python benchmarks/run_suite.py --markdown results/3.11.7.json results/3.12.1.json

Every run is a fresh process `python -m cyclegc bench --suite full` (see
cyclegc/bench_suite.py for the workloads), its table printed as it goes.  The
first --big-runs runs include the 5M-object heaps (about 1 GB each, ~2 min per
run for those); the others stop at 1M.  Then the runs are aggregated per
workload -- median of the run medians, the median of the runs' paired ratios
and the range of those ratios over runs (run-to-run noise) -- printed as a
table and written with every run's raw figures to results/<python-version>.json.

Run it with the interpreter to measure (python = the interpreter running this
script, or --python); the cyclegc imported is the one of this checkout's src/
unless --installed.  Options after `--` go to the suite, e.g.
`-- --workloads full_live,young --repeat 9`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SRC = os.path.join(ROOT, "src")


def _import_suite(src: str | None):
    if src and src not in sys.path:
        sys.path.insert(0, src)
    from cyclegc import bench_suite
    return bench_suite


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def run_once(python: str, suite: str, sizes: str | None, extra: list[str], src: str | None,
             json_path: str) -> dict:
    cmd = [python, "-m", "cyclegc", "bench", "--suite", suite, "--json", json_path]
    if sizes:
        cmd += ["--sizes", sizes]
    cmd += extra
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env)
    if not os.path.exists(json_path):
        raise SystemExit(f"the suite failed (exit {proc.returncode}) and wrote no results")
    with open(json_path) as f:
        doc = json.load(f)
    doc["exit_code"] = proc.returncode
    doc["command"] = cmd
    return doc


AGG_NOTE = ("ratio: median of the runs' paired-ratio medians [min-max over runs]; times: both "
            "collectors' medians in the least disturbed run [min-max over all samples of all runs]")


def reaggregate(path: str, bench_suite) -> int:
    """Recompute the aggregate of a results file from its runs."""
    with open(path) as f:
        doc = json.load(f)
    doc["aggregate"] = bench_suite.aggregate(doc["runs"])
    bench_suite.write_json(doc, path)
    print("\n".join(bench_suite.table_lines(doc["aggregate"])))
    print(AGG_NOTE)
    print(f"rewrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="suite runs, each a fresh process (3)")
    ap.add_argument("--big-runs", type=int, default=1,
                    help="how many of the runs include the 5M heaps (1)")
    ap.add_argument("--sizes", default="10k,100k,1M,5M",
                    help="full-collection sizes of the big runs (10k,100k,1M,5M)")
    ap.add_argument("--small-sizes", default="10k,100k,1M",
                    help="full-collection sizes of the other runs (10k,100k,1M)")
    ap.add_argument("--quick", action="store_true", help="the quick suite instead of full")
    ap.add_argument("--python", default=sys.executable, help="interpreter to measure")
    ap.add_argument("--installed", action="store_true",
                    help="use the cyclegc installed in that interpreter, not src/")
    ap.add_argument("--src", default=SRC,
                    help="directory holding the cyclegc package to measure, built in place "
                         "(default this checkout's src/; e.g. a copy, so that rebuilds of the "
                         "working tree during the runs do not mix builds)")
    ap.add_argument("--out", help="output JSON (default results/<python-version>.json)")
    ap.add_argument("--append", action="store_true",
                    help="add these runs to the runs already in the output file and "
                         "aggregate them all (e.g. one more run of the 5M heaps only: "
                         "--append --runs 1 --sizes 5M -- --workloads full_live,full_garbage)")
    ap.add_argument("--markdown", nargs="+", metavar="RESULTS_JSON",
                    help="only print markdown tables of these results files")
    ap.add_argument("--reaggregate", nargs="+", metavar="RESULTS_JSON",
                    help="only recompute the aggregate of these results files from their runs")
    args = ap.parse_args(argv)
    src = None if args.installed else os.path.abspath(args.src)
    bench_suite = _import_suite(src)

    if args.reaggregate:
        for path in args.reaggregate:
            reaggregate(path, bench_suite)
        return 0

    if args.markdown:
        docs = []
        for path in args.markdown:
            with open(path) as f:
                docs.append(json.load(f))
        print(bench_suite.markdown(docs))
        return 0

    suite = "quick" if args.quick else "full"
    t0 = time.perf_counter()
    docs = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.runs):
            sizes = None if args.quick else (args.sizes if r < args.big_runs else args.small_sizes)
            print(f"\n=== run {r + 1}/{args.runs} ({suite}, sizes {sizes or 'quick default'}) ===",
                  flush=True)
            docs.append(run_once(args.python, suite, sizes, extra, src,
                                 os.path.join(tmp, f"run{r}.json")))
    total = time.perf_counter() - t0
    first = docs[0]
    out = args.out or os.path.join(ROOT, "results", f"{first['python']}.json")
    commands = [[os.path.basename(sys.executable), "benchmarks/run_suite.py"] + sys.argv[1:]]
    if args.append and os.path.exists(out):
        with open(out) as f:
            previous = json.load(f)
        if previous["python"] != first["python"]:
            raise SystemExit(f"{out} holds runs of Python {previous['python']}, not {first['python']}")
        docs = previous["runs"] + docs
        total += previous["total_seconds"]
        commands = previous.get("commands", [previous.get("command")]) + commands
    agg = bench_suite.aggregate(docs)
    doc = {
        "benchmark": "suite_runs",
        "suite": suite,
        "python": first["python"],
        "implementation": first["implementation"],
        "machine": first["machine"],
        "platform": first["platform"],
        "cpus": first.get("cpus"),
        "cyclegc_version": first.get("cyclegc_version"),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "commands": commands,
        "runs_seconds": [d["total_seconds"] for d in docs],
        "total_seconds": total,
        "cyclegc_src": src or "installed",
        # the checkout's state, when that is what was measured (not a copy)
        "git_head": _git("rev-parse", "HEAD") if src == SRC else None,
        "git_dirty_files": ((_git("status", "--porcelain", "--untracked-files=no") or "").splitlines()
                            if src == SRC else None),
        "args": " ".join(sys.argv[1:]),
        "cores": [d.get("core") for d in docs],
        # skipped in every run; a workload skipped in some runs only is
        # aggregated over the others (its rows say how many runs)
        "skipped": {k: v for k, v in docs[0].get("skipped", {}).items()
                    if all(k in d.get("skipped", {}) for d in docs)},
        "aggregate": agg,
        "runs": docs,
    }
    bench_suite.write_json(doc, out)

    print(f"\n=== {first['python']}: {len(docs)} runs aggregated "
          f"(run times {', '.join(f'{s:.0f}s' for s in doc['runs_seconds'])}; total {total:.0f}s) ===")
    cores = {c["sha256_16"] for c in doc["cores"] if c}
    if len(cores) > 1:
        print(f"!! the runs measured {len(cores)} different builds of the C core "
              "(rebuilt during the runs): see 'cores' in the JSON, or use --src with a copy")
    print("\n".join(bench_suite.table_lines(agg)))
    print(AGG_NOTE)
    for note in bench_suite.TABLE_NOTES[1:]:
        print(note)
    for k, v in doc["skipped"].items():
        print(f"skipped {k}: {v}")
    print(f"wrote {out}")
    return max(d["exit_code"] for d in docs)


if __name__ == "__main__":
    sys.exit(main())
