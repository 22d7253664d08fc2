#!/usr/bin/env python3
"""Real programs from PyPI with the built-in collector and with cyclegc (issue 15, part 3).

    python benchmarks/realworld/run.py --python 3.12 --runs 3
    python benchmarks/realworld/run.py --python 3.11 --python 3.13 --runs 1 --reuse
    python benchmarks/realworld/run.py --python 3.12 --program gunicorn --load-seconds 120
    python benchmarks/realworld/run.py --from-json .realworld/results-3.12.json   # tables only

Programs (programs.py; pinned in requirements.txt / constraints.txt):

* sphinx   - Sphinx 8.1.3 builds its own docs from its sdist (HTML; changelog
             and extdev/ excluded, intersphinx off: no network)
* pylint   - pylint 3.3.1 on the source of requests 2.32.3 (its sdist)
* pytest   - networkx 3.4.2's own test suite, part of it (~2,400 tests)
* gunicorn - gunicorn 23.0.0, 4 sync workers, preload_app, a Flask app with a
             300k-row catalogue built before fork; wrk on loopback for
             --load-seconds; every worker's USS sampled; throughput from wrk
* aiohttp  - an aiohttp server and an asyncio aiohttp client in one loop

For every --python (3.11 / 3.12 / 3.13 = pyenv's 3.11.7 / 3.12.1 / 3.13.0, or
a path) the script makes ``<workdir>/venv-<minor>`` with the pinned programs
and cyclegc built from this checkout (envs.py; ``--reuse`` takes an existing
venv as it is), downloads the sdists once into ``<workdir>/src``, runs one
unmeasured warm-up run per program (--warmup 0 to skip), then --runs rounds
in which every program runs in every mode, alternating: builtin, plain,
pause2, fork (fork only for the server, the one program that forks), then
builtin again.  Modes are set by the regrtest hook in every process of the
venv (scripts/regrtest/cyclegc_regrtest_hook.py): builtin (cyclegc imported,
not installed), plain (install()), pause2 (install(max_pause_ms=2)), fork
(install(fork_friendly=True)).  The programs themselves are not modified.

Per run: wall time, exit status, peak RSS (wait4), time in collections and
the longest stop (gc.callbacks, every process, cyclegc_realworld_hook.py),
collections, overflow collections in pause2 mode, the outputs compared with
the first built-in run's (capture.normalise: durations and the run directory
replaced, nothing else), and for the server requests/s and USS per worker.
Results go to ``<workdir>/results-<minor>.json`` (rewritten after every run;
``--reuse`` also keeps the runs already there and adds to them) and markdown
tables to stdout.
"""
import argparse
import datetime
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import capture  # noqa: E402
import envs  # noqa: E402
import report  # noqa: E402
from programs import PROGRAMS, Context  # noqa: E402

DEFAULT_WORKDIR = envs.ROOT / ".realworld"


def log(msg=""):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", action="append", help="3.11, 3.12, 3.13 or a path (repeatable; default 3.12)")
    ap.add_argument("--program", action="append", choices=sorted(PROGRAMS), help="repeatable; default all")
    ap.add_argument("--modes", default="builtin,plain,pause2,fork")
    ap.add_argument("--runs", type=int, default=3, help="rounds of alternating runs")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured built-in runs per program first")
    ap.add_argument("--workdir", default=str(DEFAULT_WORKDIR))
    ap.add_argument("--reuse", action="store_true", help="reuse venvs, sources and earlier runs in the results")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per run")
    ap.add_argument("--load-seconds", type=float, default=90, help="gunicorn: seconds of wrk load per run")
    ap.add_argument("--sample-every", type=float, default=10, help="gunicorn: USS sample period, s")
    ap.add_argument("--connections", type=int, default=8, help="gunicorn: wrk connections")
    ap.add_argument("--rows", type=int, default=300_000, help="gunicorn: catalogue rows built before fork")
    ap.add_argument("--aio-requests", type=int, default=20_000)
    ap.add_argument("--from-json", nargs="+", metavar="FILE", help="only print the tables of results files")
    return ap.parse_args(argv)


def compare_outputs(reference, compare):
    """The keys whose normalised text differs from the reference's."""
    return sorted(k for k in set(reference) | set(compare) if reference.get(k) != compare.get(k))


def one_run(ctx, program, mode, run_dir, version, rnd, reference):
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    res = program.run(ctx, mode, run_dir)
    procs, installs = capture.gc_records(run_dir)
    gc = capture.gc_totals(procs)
    comp = program.renormalise(res.pop("compare"))
    (run_dir / "compare.json").write_text(json.dumps(comp, indent=1, sort_keys=True))
    for key in ("stdout", "stderr"):
        res.pop(key, None)
    if reference is None:
        reference = comp
    diffs = compare_outputs(reference, comp)
    rec = {"python": version, "program": program.name, "mode": mode, "round": rnd,
           "run_dir": str(run_dir), **res, "gc": gc, "gc_processes": procs,
           "installed_records": len(installs),
           # the regrtest hook's start record of each process that ran it, and
           # the realworld hook's exit record of every process, forked ones too
           "installed_everywhere": (all(i["installed_at_start"] for i in installs if "installed_at_start" in i)
                                    and gc["not_installed"] == 0 and gc["processes"] > 0)
                                   if mode not in ("builtin", "freeze") else None,
           "identical": not diffs, "differences": diffs,
           "returncode_ok": res.get("returncode") in (0, None) or "returncode" not in diffs}
    return rec, reference


def run_interpreter(spec, args, programs, modes):
    python = envs.find_python(spec)
    version = envs.version_of(python)
    minor = ".".join(version.split(".")[:2])
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"CPython {version} ({python})")
    py = envs.make_venv(python, workdir, reuse=args.reuse, log=log)
    ctx = Context(py, workdir, args, log=log)
    for p in programs:
        p.prepare(ctx)
    results_path = workdir / f"results-{minor}.json"
    doc = {"python": version, "runs": []}
    if args.reuse and results_path.exists():
        doc = json.loads(results_path.read_text())
    doc.update(freeze=envs.freeze(py), started=datetime.datetime.now(datetime.timezone.utc).isoformat(),
               argv=sys.argv, options=vars(args))
    references = {}
    for r in doc["runs"]:
        if r["mode"] == "builtin" and r["program"] not in references:
            comp = Path(r["run_dir"]) / "compare.json"
            if comp.exists():
                references[r["program"]] = json.loads(comp.read_text())
    first_round = 1 + max((r["round"] for r in doc["runs"]), default=0)
    runs_dir = workdir / "runs" / minor
    for p in programs:
        for w in range(args.warmup if p.name != "gunicorn" else 0):
            log(f"  warm-up {p.name}")
            rec, _ = one_run(ctx, p, "builtin", runs_dir / p.name / f"warmup{w}", version, 0, None)
            if p.name not in references:
                references[p.name] = json.loads((Path(rec["run_dir"]) / "compare.json").read_text())
    for rnd in range(first_round, first_round + args.runs):
        for p in programs:
            for mode in p.modes(modes):
                t = time.time()
                load = os.getloadavg()[0]
                rec, references[p.name] = one_run(ctx, p, mode, runs_dir / p.name / f"r{rnd}-{mode}",
                                                  version, rnd, references.get(p.name))
                rec["loadavg_before"] = load
                rec["loadavg_after"] = os.getloadavg()[0]
                doc["runs"].append(rec)
                results_path.write_text(json.dumps(doc, indent=1))
                g = rec["gc"]
                log(f"  r{rnd} {p.name:8} {mode:7} wall {rec['wall_s']:6.1f}s gc {g['gc_s']:6.2f}s "
                    f"n {g['collections']:5} max {1000 * g['max_automatic_stop_s']:7.1f}ms "
                    f"ovf {g['overflow']} rss {rec['maxrss_kb'] / 1024:5.0f}MB "
                    f"{'same' if rec['identical'] else 'DIFF ' + ','.join(rec['differences'])} "
                    f"rc {rec['returncode']} load {load:.1f} | {rec.get('summary', '')} ({time.time() - t:.0f}s)")
    doc["ended"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    results_path.write_text(json.dumps(doc, indent=1))
    return results_path


def recompare(runs):
    """Compare every run's saved outputs again with the first built-in run's
    of its interpreter and program, through the program's renormalise (so a
    normalisation added later applies to runs already recorded)."""
    refs = {}
    for r in sorted(runs, key=lambda r: (r["round"], r["mode"] != "builtin")):
        path = Path(r["run_dir"]) / "compare.json"
        if not path.exists():
            continue
        comp = PROGRAMS[r["program"]].renormalise(json.loads(path.read_text()))
        ref = refs.setdefault((r["python"], r["program"]), comp)
        r["differences"] = compare_outputs(ref, comp)
        r["identical"] = not r["differences"]


def print_tables(paths):
    runs, versions = [], []
    for path in paths:
        doc = json.loads(Path(path).read_text())
        runs += doc["runs"]
        versions.append(doc["python"])
    recompare(runs)
    table = report.aggregate(runs)
    for v in versions:
        loads = [r["loadavg_before"] for r in runs if r["python"] == v and "loadavg_before" in r]
        print(f"\n### CPython {v}  (load average during the runs: "
              f"{min(loads, default=0):.1f}-{max(loads, default=0):.1f})\n")
        print(report.markdown(table, v))
        parts = report.breakdown([r for r in runs if r["python"] == v])
        if parts:
            print(f"\n#### Where the time in collections went (CPython {v})\n")
            print(report.markdown_breakdown(parts, v))
            print(f"\nSeconds in each part of cyclegc's collections (its core's clock):\n")
            print(report.markdown_phases(parts, v))
    print("\n### The pre-fork server (gunicorn)\n")
    print(report.markdown_server(table))


def main(argv=None):
    args = parse_args(argv)
    if args.from_json:
        print_tables(args.from_json)
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in capture.MODES:
            raise SystemExit(f"unknown mode {m!r}")
    programs = [PROGRAMS[n] for n in (args.program or PROGRAMS)]
    paths = [run_interpreter(spec, args, programs, modes) for spec in (args.python or ["3.12"])]
    print_tables(paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
