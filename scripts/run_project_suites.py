#!/usr/bin/env python3
"""Run real projects' test suites with the built-in collector and with cyclegc.

    python scripts/run_project_suites.py --python "$(PYENV_VERSION=3.12.1 pyenv which python)"
    python scripts/run_project_suites.py --python python3.11 --python python3.12 \\
        --python python3.13 --rounds 3 --json results/project-suites.json

For each --python (a plain interpreter; cyclegc need not be installed in it)
the script makes a virtual environment ``<workdir>/venv-<version>`` and
installs into it, from the package index:

* the pinned source distributions of the projects (PROJECTS below), whose
  sdists ship their complete test suites: ``pip download --no-binary :all:``,
  unpacked into ``<workdir>/src``, and installed from the sdist;
* their test requirements (pytest, hypothesis, ...);
* cyclegc itself, built from this checkout's committed HEAD (``git archive``;
  ``--worktree`` builds the working tree instead).

Then, per project, one unmeasured warm-up run (bytecode, assertion rewriting,
disk cache), and --rounds rounds of two runs in alternating order (builtin
first in even rounds, cyclegc first in odd ones):

* builtin:  ``python -m pytest TESTS``
* cyclegc:  ``python -m cyclegc run --quiet --json F -m pytest TESTS``
  (cyclegc installed as the process's collector: every automatic and
  explicit collection is cyclegc's), or with ``--cyclegc-mode install`` a
  bootstrap that only calls ``cyclegc.install()`` before ``pytest.main``
  (no pause recorder in gc.callbacks, no summary)

Each run's outcome per test id comes from pytest's JUnit XML, its wall time
from the parent, its peak RSS from ``os.wait4``'s rusage (the test process
and anything it waited for).  Compared per project:

* the same test ids passed / failed / skipped with both collectors (a test
  whose outcome changes between rounds of the *same* collector is flaky and
  listed apart, not counted as a difference);
* median wall time and median peak RSS of cyclegc over the built-in's,
  required within --tolerance (default 10 %).

Prints a markdown table (``--json`` also writes every run); exit status 1 if
any project's outcomes differ or a ratio is outside the tolerance.

Projects (why): attrs (class-generation machinery: closures, descriptors,
``__slots__`` classes rebuilt with cells and weakrefs, hypothesis-driven,
~1,400 tests), more-itertools (iterators and generators kept suspended, tee
objects, ~1,000 tests), toolz (curried functions, closures, lazy iterators,
~600 tests incl. its sandbox).  All pure Python, their suites take seconds to
a minute each, and they build object graphs a collector must not get wrong.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name -> (pip requirement, directory of the unpacked sdist, pytest args
#          relative to it, test requirements)
PROJECTS = {
    "attrs": ("attrs==26.1.0", "attrs-26.1.0", ["tests"],
              ["pytest", "hypothesis", "pympler", "cloudpickle"]),
    "more-itertools": ("more-itertools==11.2.1", "more_itertools-11.2.1", ["tests"], ["pytest"]),
    "toolz": ("toolz==1.2.0", "toolz-1.2.0", ["toolz/tests", "toolz/sandbox/tests"], ["pytest"]),
}


# Given to both collectors' runs.  `cyclegc run` imports cyclegc before pytest
# starts, and pytest then warns that it cannot assertion-rewrite the already
# imported package of cyclegc's pytest plugin: in a project whose pytest
# configuration turns warnings into errors (toolz) pytest stops at once.
COMMON_PYTEST_ARGS = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", action="append", help="interpreter (repeatable; default: this one)")
    p.add_argument("--projects", default=",".join(PROJECTS), help="comma separated, of: " + ", ".join(PROJECTS))
    p.add_argument("--rounds", type=int, default=3, help="measured rounds (each: one run per collector)")
    p.add_argument("--tolerance", type=float, default=0.10, help="allowed relative difference of medians")
    p.add_argument("--workdir", default=str(ROOT / "build" / "project-suites"))
    p.add_argument("--worktree", action="store_true", help="install cyclegc from the working tree, not HEAD")
    p.add_argument("--no-install", action="store_true", help="reuse the virtual environments as they are")
    p.add_argument("--json", help="write every run and the comparison here")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per test run")
    p.add_argument("--cyclegc-mode", choices=("run", "install"), default="run",
                   help="run: python -m cyclegc run -m pytest (default); install: a bootstrap that "
                        "only calls cyclegc.install() before pytest.main (no pause recorder)")
    p.add_argument("--from-json", metavar="FILE", help="only print the table of a --json file")
    return p.parse_args(argv)


def sh(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run([str(c) for c in cmd], **kw)


def version_of(python):
    out = sh([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
             capture_output=True, text=True)
    return out.stdout.strip()


# ---- setting up ------------------------------------------------------------------


def fetch_sdists(workdir, names, python):
    sdists, src = workdir / "sdists", workdir / "src"
    sdists.mkdir(parents=True, exist_ok=True)
    src.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in names:
        req, dirname, _, _ = PROJECTS[name]
        dist, version = req.split("==")
        stem = dist.replace("-", "_")
        found = [f for f in sdists.glob("*.tar.gz")
                 if f.name.lower().replace("-", "_").startswith(f"{stem}_{version}".lower())
                 or f.name.lower().startswith(f"{dist}-{version}".lower())]
        if not found:
            sh([python, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
                "-d", sdists, req])
            found = [f for f in sdists.glob("*.tar.gz") if version in f.name
                     and f.name.lower().replace("-", "_").startswith(stem.lower())]
        sdist = found[0]
        if not (src / dirname).exists():
            with tarfile.open(sdist) as tar:
                tar.extractall(src, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(src)
        paths[name] = (sdist, src / dirname)
    return paths


def cyclegc_source(workdir, worktree):
    if worktree:
        return ROOT, "working tree"
    commit = sh(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dest = workdir / f"cyclegc-{commit[:12]}"
    if not dest.exists():
        tmp = Path(tempfile.mkdtemp(dir=workdir))
        archive = sh(["git", "-C", ROOT, "archive", "--format=tar", "HEAD"], capture_output=True).stdout
        with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
            tar.extractall(tmp)
        tmp.rename(dest)
    return dest, commit[:12]


def make_venv(python, workdir, version, sdists, names, cyclegc_src, no_install):
    venv = workdir / f"venv-{version}"
    py = venv / "bin" / "python"
    if no_install and py.exists():
        return py
    if not py.exists():
        sh([python, "-m", "venv", venv])
    reqs = sorted({r for n in names for r in PROJECTS[n][3]})
    sh([py, "-m", "pip", "install", "--quiet", "--upgrade", *reqs])
    sh([py, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall",
        *[sdists[n][0] for n in names]])
    build = Path(tempfile.mkdtemp(prefix="cyclegc-build-"))
    try:
        # Build from a copy: never leave build artefacts in the source.
        shutil.copytree(cyclegc_src, build / "cyclegc",
                        ignore=shutil.ignore_patterns(".venvs", "build", ".git", "*.so", "__pycache__"))
        sh([py, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", build / "cyclegc"])
    finally:
        shutil.rmtree(build, ignore_errors=True)
    sh([py, "-c", "import cyclegc; cyclegc.collect()"])
    return py


# ---- one run ---------------------------------------------------------------------


def outcomes(junit):
    """{test id: passed|failed|skipped} from a JUnit XML file."""
    result = {}
    root = ET.parse(junit).getroot()
    for case in root.iter("testcase"):
        tid = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None or case.find("error") is not None:
            state = "failed"
        elif case.find("skipped") is not None:
            state = "skipped"
        else:
            state = "passed"
        # A test reported twice (error in teardown after a pass) counts as failed.
        if result.get(tid) != "failed":
            result[tid] = state
    return result


INSTALL_BOOTSTRAP = "import sys, cyclegc; cyclegc.install(); import pytest; sys.exit(pytest.main(sys.argv[1:]))"


def run_once(py, project_dir, tests, collector, tag, outdir, timeout, mode="run"):
    junit = outdir / f"{tag}.xml"
    summary = outdir / f"{tag}.cyclegc.json"
    pytest_args = ["-m", "pytest", *tests, "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                   "-o", "junit_family=xunit1", *COMMON_PYTEST_ARGS]
    if collector == "cyclegc" and mode == "install":
        cmd = [py, "-c", INSTALL_BOOTSTRAP, *pytest_args[2:]]
    elif collector == "cyclegc":
        cmd = [py, "-m", "cyclegc", "run", "--quiet", "--json", summary, *pytest_args]
    else:
        cmd = [py, *pytest_args]
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="")
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONDEVMODE", None)
    log = open(outdir / f"{tag}.log", "w")
    t0 = time.monotonic()
    proc = subprocess.Popen([str(c) for c in cmd], cwd=project_dir, env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = t0 + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    run = {"collector": collector, "tag": tag, "status": proc.returncode, "wall": wall,
           "maxrss_mb": usage.ru_maxrss / 1024, "user": usage.ru_utime, "sys": usage.ru_stime}
    run["outcomes"] = outcomes(junit) if junit.exists() else {}
    if collector == "cyclegc" and summary.exists():
        try:
            data = json.loads(summary.read_text())
            run["cyclegc_summary"] = {k: data[k] for k in data if not isinstance(data[k], (list, dict))}
            run["cyclegc_summary"]["raw"] = data
        except (ValueError, OSError):
            pass
    return run


# ---- comparison ------------------------------------------------------------------


def compare(runs, tolerance):
    by = {"builtin": [r for r in runs if r["collector"] == "builtin"],
          "cyclegc": [r for r in runs if r["collector"] == "cyclegc"]}
    states, flaky = {}, set()
    for collector, rs in by.items():
        merged = {}
        for r in rs:
            for tid, state in r["outcomes"].items():
                if merged.setdefault(tid, state) != state:
                    flaky.add(tid)
        states[collector] = merged
    ids = set(states["builtin"]) | set(states["cyclegc"])
    differ = sorted(t for t in ids - flaky
                    if states["builtin"].get(t, "absent") != states["cyclegc"].get(t, "absent"))

    def counts(collector):
        vals = [s for t, s in states[collector].items() if t not in flaky]
        return {k: vals.count(k) for k in ("passed", "failed", "skipped")}

    med = {c: {"wall": statistics.median(r["wall"] for r in rs),
               "rss": statistics.median(r["maxrss_mb"] for r in rs)} for c, rs in by.items()}
    spread = {c: {"wall": [min(r["wall"] for r in rs), max(r["wall"] for r in rs)],
                  "rss": [min(r["maxrss_mb"] for r in rs), max(r["maxrss_mb"] for r in rs)]}
              for c, rs in by.items()}
    wall_ratio = med["cyclegc"]["wall"] / med["builtin"]["wall"]
    rss_ratio = med["cyclegc"]["rss"] / med["builtin"]["rss"]
    # Ratio of paired runs (same round), less sensitive to a slow spell of the machine.
    paired = [c["wall"] / b["wall"] for b, c in zip(by["builtin"], by["cyclegc"])]
    collections = [r.get("cyclegc_summary", {}).get("raw", {}) for r in by["cyclegc"]]
    return {
        "counts": {c: counts(c) for c in by},
        "differ": differ,
        "flaky": sorted(flaky),
        "median": med,
        "range": spread,
        "wall_ratio": wall_ratio,
        "paired_wall_ratio": statistics.median(paired) if paired else None,
        "rss_ratio": rss_ratio,
        "same_outcomes": not differ,
        "within_tolerance": abs(wall_ratio - 1) <= tolerance and abs(rss_ratio - 1) <= tolerance,
        "cyclegc_collections": _collections(collections),
    }


def _collections(summaries):
    """Total collections cyclegc ran, per run, from `run --json` (best effort)."""
    out = []
    for s in summaries:
        total = None
        for key in ("collections", "total_collections"):
            if isinstance(s.get(key), int):
                total = s[key]
        if total is None and isinstance(s.get("generations"), list):
            try:
                total = sum(g.get("collections", 0) for g in s["generations"])
            except AttributeError:
                total = None
        out.append(total)
    return out


def print_table(results, tolerance):
    """The markdown table; True if every project has the same outcomes and
    its medians within the tolerance."""
    print("| Python | project | passed/failed/skipped builtin | cyclegc | same | flaky | wall builtin | "
          "wall cyclegc | ratio | peak RSS builtin (min-max) | cyclegc (min-max) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ok = True
    for res in results:
        cmp = compare(res["runs"], tolerance)
        res["comparison"] = cmp
        ok = ok and cmp["same_outcomes"] and cmp["within_tolerance"]
        b, c = cmp["counts"]["builtin"], cmp["counts"]["cyclegc"]
        fmt = lambda d: f"{d['passed']}/{d['failed']}/{d['skipped']}"  # noqa: E731
        m, rg = cmp["median"], cmp["range"]
        rss = lambda k: f"{m[k]['rss']:.1f} MB ({rg[k]['rss'][0]:.0f}-{rg[k]['rss'][1]:.0f})"  # noqa: E731
        print(f"| {res['python']} | {res['project']} | {fmt(b)} | {fmt(c)} | "
              f"{'yes' if cmp['same_outcomes'] else 'NO'} | {len(cmp['flaky'])} | "
              f"{m['builtin']['wall']:.1f}s | {m['cyclegc']['wall']:.1f}s | {cmp['wall_ratio']:.3f} | "
              f"{rss('builtin')} | {rss('cyclegc')} | {cmp['rss_ratio']:.3f} |")
    return ok


def main(argv=None):
    args = parse_args(argv)
    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
        return 0 if print_table(report["results"], args.tolerance) else 1
    names = [n.strip() for n in args.projects.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROJECTS]
    if unknown:
        print(f"unknown projects: {unknown}; known: {list(PROJECTS)}")
        return 2
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    pythons = args.python or [sys.executable]
    sdists = fetch_sdists(workdir, names, pythons[0])
    cyclegc_src, cyclegc_rev = cyclegc_source(workdir, args.worktree)
    print(f"cyclegc from {cyclegc_rev}; projects: " + ", ".join(PROJECTS[n][0] for n in names), flush=True)

    report = {"cyclegc": cyclegc_rev, "rounds": args.rounds, "cyclegc_mode": args.cyclegc_mode,
              "tolerance": args.tolerance, "results": []}
    ok = True
    for python in pythons:
        version = version_of(python)
        py = make_venv(python, workdir, version, sdists, names, cyclegc_src, args.no_install)
        freeze = sh([py, "-m", "pip", "freeze"], capture_output=True, text=True).stdout.split()
        print(f"== Python {version}: {' '.join(freeze)}", flush=True)
        for name in names:
            _, dirname, tests, _ = PROJECTS[name]
            project_dir = sdists[name][1]
            outdir = workdir / "runs" / version / (name if args.cyclegc_mode == "run" else f"{name}-install")
            shutil.rmtree(outdir, ignore_errors=True)
            outdir.mkdir(parents=True)
            warm = run_once(py, project_dir, tests, "builtin", "warmup", outdir, args.timeout)
            print(f"   {name}: warm-up {warm['wall']:.1f}s, status {warm['status']}, "
                  f"{len(warm['outcomes'])} tests", flush=True)
            runs = []
            for rnd in range(args.rounds):
                order = ("builtin", "cyclegc") if rnd % 2 == 0 else ("cyclegc", "builtin")
                for collector in order:
                    run = run_once(py, project_dir, tests, collector, f"r{rnd}-{collector}", outdir,
                                   args.timeout, args.cyclegc_mode)
                    runs.append(run)
                    print(f"     round {rnd} {collector:<7} {run['wall']:7.1f}s {run['maxrss_mb']:7.1f} MB "
                          f"status {run['status']}", flush=True)
            cmp = compare(runs, args.tolerance)
            ok = ok and cmp["same_outcomes"] and cmp["within_tolerance"]
            report["results"].append({"python": version, "project": PROJECTS[name][0], "runs": runs,
                                      "comparison": cmp})
            b, c = cmp["counts"]["builtin"], cmp["counts"]["cyclegc"]
            print(f"   {name}: builtin {b}, cyclegc {c}, differ {len(cmp['differ'])}, flaky "
                  f"{len(cmp['flaky'])}, wall x{cmp['wall_ratio']:.3f} (paired x{cmp['paired_wall_ratio']:.3f}), "
                  f"peak RSS x{cmp['rss_ratio']:.3f}", flush=True)
            for tid in cmp["differ"][:10]:
                print(f"      differs: {tid}")

    print()
    ok = print_table(report["results"], args.tolerance) and ok
    if args.json:
        for res in report["results"]:
            for run in res["runs"]:
                run.get("cyclegc_summary", {}).pop("raw", None)
        Path(args.json).write_text(json.dumps(report, indent=1, sort_keys=True))
    print(f"VERDICT: {'PASS' if ok else 'FAIL'} (same outcomes and medians within "
          f"{args.tolerance:.0%} everywhere)" if ok else
          f"VERDICT: FAIL (outcomes differ or a median ratio is outside {args.tolerance:.0%})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
