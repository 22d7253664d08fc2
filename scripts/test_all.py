#!/usr/bin/env python3
"""The test command of cyclegc: build, install and test on every supported CPython.

    python scripts/test_all.py                  # 3.11, 3.12 and 3.13
    python scripts/test_all.py --python 3.12    # only some interpreters
    python scripts/test_all.py -- -x -k finalizer   # extra pytest arguments

For each interpreter this

1. finds it with pyenv (``PYENV_VERSION=<version> pyenv which python``;
   preferred patch levels are 3.11.7, 3.12.1 and 3.13.0, any other installed
   patch level of the same minor version is used if those are missing),
2. creates the virtual environment ``.venvs/<minor>`` (or reuses it),
3. installs the project into it for real, not editable, so that the built C
   extension is what gets tested: ``pip install '.[test]'`` into a new
   environment; on reruns ``pip install --force-reinstall --no-deps .`` (so
   changed sources are always rebuilt) plus the project's dependencies and
   test extras read from pyproject.toml,
4. runs ``python -m pytest`` from the repository root with that environment's
   interpreter.  The src layout keeps ``src/`` off ``sys.path``, so the tests
   import the installed cyclegc; this script checks that before running them.

It ends with a summary per interpreter and exits non-zero if any interpreter
failed.  A pytest run that collected no test (pytest's exit status 5) counts
as a failure: a test command that tests nothing must not look green.

Only the standard library is used, so any Python 3 can run this script.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".venvs"

# minor version -> preferred pyenv version
PREFERRED = {"3.11": "3.11.7", "3.12": "3.12.1", "3.13": "3.13.0"}

PYTEST_EXIT_NAMES = {
    0: "passed",
    1: "tests failed",
    2: "interrupted",
    3: "pytest internal error",
    4: "pytest usage error",
    5: "NO TESTS RAN",
}


def log(msg: str = "") -> None:
    print(msg, flush=True)


def banner(msg: str) -> None:
    log()
    log("=" * 78)
    log(msg)
    log("=" * 78)


# --------------------------------------------------------------------------
# Finding interpreters
# --------------------------------------------------------------------------

def _pyenv_executable() -> str | None:
    found = shutil.which("pyenv")
    if found:
        return found
    roots = [os.environ.get("PYENV_ROOT"), os.path.join(os.path.expanduser("~"), ".pyenv")]
    for root in roots:
        if root:
            cand = os.path.join(root, "bin", "pyenv")
            if os.access(cand, os.X_OK):
                return cand
    return None


def _pyenv_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYENV_VERSION", None)
    return env


def pyenv_versions(pyenv: str) -> list[str]:
    try:
        out = subprocess.run([pyenv, "versions", "--bare"], capture_output=True,
                             text=True, env=_pyenv_env(), check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _version_key(v: str) -> tuple:
    return tuple(int(p) if p.isdigit() else -1 for p in re.split(r"[.]", v))


def find_interpreter(spec: str) -> tuple[str | None, str]:
    """Return (executable, description) for a spec like '3.12' or '3.12.1'."""
    parts = spec.split(".")
    minor = ".".join(parts[:2])
    pyenv = _pyenv_executable()
    candidates: list[str] = []
    if len(parts) >= 3:
        candidates.append(spec)
    else:
        if minor in PREFERRED:
            candidates.append(PREFERRED[minor])
        if pyenv:
            # Other installed patch levels of this minor, newest first
            # (only plain CPython releases such as 3.12.4, no 't'/dev builds).
            others = [v for v in pyenv_versions(pyenv)
                      if re.fullmatch(re.escape(minor) + r"\.\d+", v)]
            for v in sorted(others, key=_version_key, reverse=True):
                if v not in candidates:
                    candidates.append(v)
    if pyenv:
        for version in candidates:
            env = _pyenv_env()
            env["PYENV_VERSION"] = version
            res = subprocess.run([pyenv, "which", "python"], capture_output=True,
                                 text=True, env=env)
            exe = res.stdout.strip()
            if res.returncode == 0 and exe and os.access(exe, os.X_OK):
                return exe, f"pyenv {version}"
    # No pyenv (or the version is not installed in it): try PATH.
    exe = shutil.which(f"python{minor}")
    if exe:
        return exe, f"PATH python{minor}"
    wanted = ", ".join(candidates) or minor
    return None, f"no interpreter found for {spec} (tried pyenv: {wanted}; PATH: python{minor})"


def interpreter_version(exe: str) -> str:
    res = subprocess.run([exe, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                         capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else "?"


# --------------------------------------------------------------------------
# Virtual environments and installation
# --------------------------------------------------------------------------

def _clean_env() -> dict[str, str]:
    """Environment for the venv's processes: nothing that could put src/ or
    another installation of cyclegc on sys.path."""
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE",
                "VIRTUAL_ENV", "PYENV_VERSION", "__PYVENV_LAUNCHER__"):
        env.pop(var, None)
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.setdefault("PYTHONFAULTHANDLER", "1")
    return env


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _venv_home(venv: Path) -> str | None:
    cfg = venv / "pyvenv.cfg"
    try:
        for line in cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home":
                return value.strip()
    except OSError:
        pass
    return None


def ensure_venv(base_exe: str, minor: str, recreate: bool) -> tuple[Path, bool]:
    """Create .venvs/<minor> or reuse it. Returns (venv path, newly created)."""
    venv = VENVS / minor
    py = venv_python(venv)
    if venv.exists() and not recreate:
        ok = py.exists()
        if ok:
            # Same base interpreter as requested, and still working?
            home = _venv_home(venv)
            if home and os.path.realpath(home) != os.path.realpath(os.path.dirname(base_exe)):
                log(f"  venv {venv} was made from {home}, not {os.path.dirname(base_exe)}: recreating")
                ok = False
            elif interpreter_version(str(py)).rsplit(".", 1)[0] != minor:
                log(f"  venv {venv} is broken or of another version: recreating")
                ok = False
        if ok:
            log(f"  reusing venv {venv.relative_to(ROOT)}")
            return venv, False
    if venv.exists():
        shutil.rmtree(venv)
    VENVS.mkdir(exist_ok=True)
    log(f"  creating venv {venv.relative_to(ROOT)} from {base_exe}")
    subprocess.run([base_exe, "-m", "venv", str(venv)], check=True, env=_clean_env())
    return venv, True


def _run(cmd: list[str], **kw) -> int:
    log("  $ " + " ".join(str(c) for c in cmd))
    return subprocess.run(cmd, cwd=ROOT, env=_clean_env(), **kw).returncode


def is_installed(py: Path) -> bool:
    code = ("import importlib.metadata as m\n"
            "try: m.version('cyclegc')\n"
            "except m.PackageNotFoundError: raise SystemExit(1)\n")
    return subprocess.run([str(py), "-c", code], cwd="/", env=_clean_env()).returncode == 0


def project_requirements(py: Path) -> list[str] | None:
    """Runtime dependencies plus the 'test' extra, read from pyproject.toml
    with the venv's own interpreter (3.11+, so tomllib is there)."""
    code = (
        "import json, sys, tomllib\n"
        "p = tomllib.load(open(sys.argv[1], 'rb')).get('project', {})\n"
        "reqs = list(p.get('dependencies', []))\n"
        "reqs += p.get('optional-dependencies', {}).get('test', [])\n"
        "print(json.dumps(reqs))\n"
    )
    res = subprocess.run([str(py), "-c", code, str(ROOT / "pyproject.toml")],
                         capture_output=True, text=True, env=_clean_env())
    if res.returncode != 0:
        log(res.stderr)
        return None
    import json
    return json.loads(res.stdout)


def snapshot_tree() -> Path:
    """Copy the working tree (tracked and untracked files, minus what
    .gitignore excludes) to a temporary directory and return it.

    Building from this copy rather than from the checkout means every run
    compiles the C core from scratch (setuptools would otherwise reuse a
    build/ directory whose extension it believes up to date, e.g. after a
    change to a header it does not list), nothing is written into the
    checkout (build/, *.egg-info), and all interpreters build the same
    sources even if files change while the tests run."""
    import tempfile
    dest = Path(tempfile.mkdtemp(prefix="cyclegc-src-"))
    res = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True)
    if res.returncode == 0:
        for rel in res.stdout.decode().split("\0"):
            src = ROOT / rel
            if rel and src.is_file():  # tracked files deleted in the tree are skipped
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / rel)
    else:  # not a git checkout
        shutil.rmtree(dest)
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(
            ".git", ".venvs", "build", "dist", "*.egg-info", "__pycache__", "*.so",
            ".pytest_cache", ".hypothesis", "results"))
    return dest


def install(venv: Path, fresh: bool, source: Path, verbose: bool) -> tuple[bool, str]:
    py = venv_python(venv)
    pip = [str(py), "-m", "pip", "install", "--progress-bar", "off"]
    if not verbose:
        pip.append("-q")
    if fresh or not is_installed(py):
        log(f"  (building from a copy of the working tree in {source})")
        if _run(pip + [f"{source}[test]"]) != 0:
            return False, "pip install '.[test]' failed"
        return True, ""
    reqs = project_requirements(py)
    if reqs is None:
        return False, "could not read pyproject.toml"
    if reqs and _run(pip + reqs) != 0:
        return False, "installing test dependencies failed"
    log(f"  (building from a copy of the working tree in {source})")
    if _run(pip + ["--force-reinstall", "--no-deps", str(source)]) != 0:
        return False, "pip install --force-reinstall --no-deps . failed"
    return True, ""


def check_import(py: Path, venv: Path) -> tuple[bool, str]:
    """Import cyclegc from the repository root, as pytest will, and check it
    comes from the venv's site-packages and not from src/."""
    code = "import cyclegc, os; print(os.path.realpath(cyclegc.__file__))"
    res = subprocess.run([str(py), "-c", code], cwd=ROOT, capture_output=True,
                         text=True, env=_clean_env())
    if res.returncode != 0:
        lines = res.stderr.strip().splitlines()
        return False, "import cyclegc failed: " + (lines[-1] if lines else f"exit {res.returncode}")
    path = res.stdout.strip()
    if not path.startswith(os.path.realpath(venv) + os.sep):
        return False, f"cyclegc was imported from {path}, not from the venv's site-packages"
    return True, path


# --------------------------------------------------------------------------
# Running pytest
# --------------------------------------------------------------------------

# pytest's closing line, with or without the '=' padding (-q drops it):
# "==== 3 passed, 1 skipped in 1.23s ====", "no tests ran in 0.01s"
SUMMARY_RE = re.compile(r"^=*\s*((?:\d+ [a-z]+(?:, )?)+|no tests ran)"
                        r" in [\d.]+s(?: \([^)]*\))?\s*=*$")
COUNT_RE = re.compile(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?|warnings?|deselected|rerun)")


def parse_counts(line: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n, what in COUNT_RE.findall(line):
        what = {"error": "errors", "warning": "warnings"}.get(what, what)
        counts[what] = counts.get(what, 0) + int(n)
    return counts


def run_pytest(py: Path, args: list[str], timeout: float | None) -> tuple[int, str, dict[str, int]]:
    cmd = [str(py), "-m", "pytest", "-o", "faulthandler_timeout=300"] + args
    if sys.stdout.isatty() and not any(a.startswith("--color") for a in args):
        cmd.insert(3, "--color=yes")
    log("  $ " + " ".join(cmd))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + timeout if timeout else None
    summary = ""
    timed_out = False

    import threading

    def watchdog() -> None:
        nonlocal timed_out
        while proc.poll() is None:
            if deadline and time.monotonic() > deadline:
                timed_out = True
                log(f"\n!!! pytest exceeded {timeout:.0f}s: SIGABRT for a traceback, then SIGKILL")
                try:
                    proc.send_signal(signal.SIGABRT)  # faulthandler dumps the stacks
                    time.sleep(5)
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
            time.sleep(0.5)

    threading.Thread(target=watchdog, daemon=True).start()
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace")
        sys.stdout.write(line)
        sys.stdout.flush()
        plain = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
        if SUMMARY_RE.match(plain):
            summary = SUMMARY_RE.match(plain).group(1)
    rc = proc.wait()
    if timed_out:
        rc = -999
    return rc, summary, parse_counts(summary)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

@dataclass
class Outcome:
    spec: str
    version: str = "-"
    ok: bool = False
    status: str = "not run"
    install_s: float = 0.0
    test_s: float = 0.0
    summary: str = ""
    counts: dict[str, int] = field(default_factory=dict)


def describe_rc(rc: int) -> str:
    if rc == -999:
        return "TIMED OUT"
    if rc < 0:
        try:
            return f"CRASHED ({signal.Signals(-rc).name})"
        except ValueError:
            return f"CRASHED (signal {-rc})"
    return PYTEST_EXIT_NAMES.get(rc, f"exit status {rc}")


def test_one(spec: str, args: argparse.Namespace, pytest_args: list[str],
             source: Path | None) -> Outcome:
    out = Outcome(spec)
    banner(f"CPython {spec}")
    exe, how = find_interpreter(spec)
    if exe is None:
        out.status = "INTERPRETER MISSING"
        log(f"  {how}")
        return out
    out.version = interpreter_version(exe)
    minor = ".".join(out.version.split(".")[:2])
    log(f"  interpreter {exe} ({how}, {out.version})")

    t0 = time.monotonic()
    try:
        venv, fresh = ensure_venv(exe, minor, args.recreate)
    except subprocess.CalledProcessError as e:
        out.status = f"VENV FAILED ({e})"
        return out
    py = venv_python(venv)
    if args.no_install:
        log("  --no-install: testing what is installed in the venv")
    else:
        assert source is not None
        ok, why = install(venv, fresh, source, args.verbose_install)
        if not ok:
            out.install_s = time.monotonic() - t0
            out.status = f"INSTALL FAILED: {why}"
            return out
    out.install_s = time.monotonic() - t0

    ok, where = check_import(py, venv)
    log(f"  cyclegc: {where}")
    if not ok and "not from the venv" in where:
        out.status = "WRONG CYCLEGC IMPORTED"
        return out
    # An import failure is left for the tests to report.

    t1 = time.monotonic()
    rc, summary, counts = run_pytest(py, pytest_args, args.timeout)
    out.test_s = time.monotonic() - t1
    out.summary, out.counts = summary, counts
    out.ok = rc == 0
    out.status = "PASS" if out.ok else "FAIL: " + describe_rc(rc)
    return out


def split_argv(argv: list[str] | None) -> tuple[list[str], list[str]]:
    """(the script's own arguments, pytest's: those after '--')."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def python_specs(ap: argparse.ArgumentParser, items: list[str] | None) -> list[str]:
    """The --python values (repeatable, comma-separated), all three by default."""
    specs = [s.strip() for item in (items or list(PREFERRED)) for s in item.split(",") if s.strip()]
    for s in specs:
        if not re.fullmatch(r"3\.\d+(\.\d+)?", s):
            ap.error(f"--python expects a version like 3.12 or 3.12.1, got {s!r}")
    return specs


def main(argv: list[str] | None = None) -> int:
    argv, pytest_args = split_argv(argv)
    ap = argparse.ArgumentParser(
        description="Build, install and test cyclegc on CPython 3.11, 3.12 and 3.13.",
        epilog="Arguments after '--' are passed to pytest.")
    ap.add_argument("--python", action="append", metavar="VERSION",
                    help="interpreter to test: 3.11, 3.12, 3.13 or an exact pyenv version; "
                         "repeatable or comma-separated (default: all three)")
    ap.add_argument("--recreate", action="store_true", help="delete and recreate the venvs")
    ap.add_argument("--no-install", action="store_true",
                    help="do not rebuild/reinstall; test what the venv already has")
    ap.add_argument("--verbose-install", action="store_true",
                    help="show pip's full output (compiler warnings included)")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="seconds allowed for one interpreter's pytest run (default 900; 0 = none)")
    args = ap.parse_args(argv)
    if args.timeout <= 0:
        args.timeout = None

    specs = python_specs(ap, args.python)

    start = time.monotonic()
    source = None if args.no_install else snapshot_tree()
    outcomes = []
    try:
        for spec in specs:
            outcomes.append(test_one(spec, args, pytest_args, source))
    except KeyboardInterrupt:
        log("\ninterrupted")
        return 130
    finally:
        if source is not None:
            shutil.rmtree(source, ignore_errors=True)

    banner("Summary")
    head = f"{'python':<8} {'version':<9} {'install':>8} {'tests':>8}  {'result':<30} pytest"
    log(head)
    log("-" * len(head))
    for o in outcomes:
        log(f"{o.spec:<8} {o.version:<9} {o.install_s:>7.1f}s {o.test_s:>7.1f}s  "
            f"{o.status:<30} {o.summary}")
    total = {k: sum(o.counts.get(k, 0) for o in outcomes)
             for k in ("passed", "failed", "errors", "skipped")}
    failed_interpreters = [o.spec for o in outcomes if not o.ok]
    log("-" * len(head))
    log(f"total time {time.monotonic() - start:.1f}s; "
        f"{len(outcomes) - len(failed_interpreters)}/{len(outcomes)} interpreters passed"
        + (f"; FAILED: {', '.join(failed_interpreters)}" if failed_interpreters else ""))
    # One plain closing line over all interpreters (errors counted as failures).
    log(f"total: {total['passed']} passed, {total['failed'] + total['errors']} failed, "
        f"{total['skipped']} skipped")
    return 1 if failed_interpreters else 0


if __name__ == "__main__":
    sys.exit(main())
