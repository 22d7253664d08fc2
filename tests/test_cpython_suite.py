"""CPython's own gc tests, run against cyclegc.

`test.test_gc` and `test.test_finalization` are taken unmodified from the
standard library of the interpreter running pytest (they are never copied into
this repository).  Each runs in a fresh subprocess that puts cyclegc in place
of the `gc` module (``sys.modules["gc"] = cyclegc``) before the test module is
imported, so every ``import gc`` in the test module and in ``test.support``
gets cyclegc.  (Tests that start a further Python subprocess, e.g. through
``assert_python_ok``, exercise the built-in gc there; that is the same for
both runs.)

The run must succeed with no failures and no errors, and it must skip exactly
the tests that the same module skips with the built-in gc, which is run the
same way in another subprocess.

A second variant also calls ``cyclegc.install()`` first, so that automatic
collections are cyclegc's too; a third installs the bounded-pause mode
(``install(max_pause_ms=2)``), so automatic collections are increments; a
fourth makes every full collection fork-friendly.
"""
from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap

import pytest

MODULES = ["test.test_gc", "test.test_finalization"]
TIMEOUT = 600  # seconds for one module run
TAIL = 12000   # characters of child output shown in a failure message

# Runs in the child: argv = mode, module name, path of the JSON report.
CHILD = textwrap.dedent(
    r'''
    import sys
    mode, modname, report_path = sys.argv[1:4]
    if mode != "builtin":
        import cyclegc
        sys.modules["gc"] = cyclegc       # before anything imports gc
        if mode == "install":
            cyclegc.install()
        elif mode == "fork-friendly":
            cyclegc.set_fork_friendly(True)
            cyclegc._core._cyclegc._set_heap_shared(True)   # as in a forked worker
        elif mode == "bounded-pause":
            cyclegc.install(max_pause_ms=2)

    import importlib, json, time, unittest

    class Result(unittest.TextTestResult):
        """Keeps the names of everything, not just the counts."""
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.passed = []
        def addSuccess(self, test):
            super().addSuccess(test)
            self.passed.append(test.id())

    report = {"mode": mode, "module": modname}
    try:
        mod = importlib.import_module(modname)
        modgc = getattr(mod, "gc", None)
        report["module_gc"] = repr(modgc)
        report["module_gc_ok"] = modgc is None or (
            modgc is sys.modules["gc"]
            and (mode == "builtin" or modgc is sys.modules["cyclegc"]))
        suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
        runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=Result)
        t0 = time.perf_counter()
        result = runner.run(suite)
        report.update(
            seconds=time.perf_counter() - t0,
            tests_run=result.testsRun,
            passed=result.passed,
            failures=[(t.id(), tb) for t, tb in result.failures],
            errors=[(t.id(), tb) for t, tb in result.errors],
            skipped=[(t.id(), reason) for t, reason in result.skipped],
            expected_failures=[t.id() for t, _ in result.expectedFailures],
            unexpected_successes=[t.id() for t in result.unexpectedSuccesses],
            successful=result.wasSuccessful(),
        )
    except BaseException as exc:
        import traceback
        report["crash"] = traceback.format_exc()
    with open(report_path, "w") as f:
        json.dump(report, f)
    sys.exit(0 if report.get("successful") else 1)
    '''
)


def run_module(mode: str, module: str) -> dict:
    """Run one CPython test module in a subprocess; return its report plus
    'returncode' and 'output' (the child's combined stdout/stderr)."""
    with tempfile.TemporaryDirectory(prefix="cyclegc-cpython-suite-") as tmp:
        report_path = os.path.join(tmp, "report.json")
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)  # only the installed cyclegc
        env["PYTHONFAULTHANDLER"] = "1"
        # cwd is an empty temporary directory: nothing from the repository
        # (src/ in particular) can shadow the installed package.
        proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", "-c", CHILD, mode, module, report_path],
            cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace")
        try:
            output, _ = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            try:
                output, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                output, _ = proc.communicate()
            output += f"\n*** TIMED OUT after {TIMEOUT}s ***"
        report = {}
        if os.path.exists(report_path):
            with open(report_path) as f:
                report = json.load(f)
    report["returncode"] = proc.returncode
    report["output"] = output
    return report


@functools.lru_cache(maxsize=None)
def builtin_baseline(module: str) -> dict:
    return run_module("builtin", module)


def _tail(text: str) -> str:
    return text if len(text) <= TAIL else "[...]\n" + text[-TAIL:]


def check_against_builtin(mode: str, module: str) -> None:
    base = builtin_baseline(module)
    assert base.get("successful"), (
        f"{module} fails even with the built-in gc on this interpreter "
        f"(exit {base['returncode']}):\n{_tail(base['output'])}")

    rep = run_module(mode, module)
    where = f"{module} with " + {"install": "cyclegc.install()",
                                 "bounded-pause": "cyclegc.install(max_pause_ms=2)",
                                 "fork-friendly": "cyclegc as gc, fork-friendly"}.get(
        mode, "cyclegc as gc")
    problems = []
    if "crash" in rep:
        problems.append("the test runner itself raised:\n" + rep["crash"])
    elif "tests_run" not in rep:
        problems.append(f"the subprocess died (exit status {rep['returncode']}) "
                        "before writing its report")
    else:
        if not rep["module_gc_ok"]:
            problems.append(f"{module}.gc is {rep['module_gc']}, not cyclegc: "
                            "the replacement did not take effect")
        for kind in ("failures", "errors"):
            for test_id, tb in rep[kind]:
                problems.append(f"{kind[:-1].upper()}: {test_id}\n{tb}")
        for test_id in rep["unexpected_successes"]:
            problems.append(f"UNEXPECTED SUCCESS: {test_id}")
        skipped = dict(rep["skipped"])
        base_skipped = dict(base["skipped"])
        for test_id in sorted(set(skipped) - set(base_skipped)):
            problems.append(f"SKIPPED only with cyclegc: {test_id}: {skipped[test_id]}")
        for test_id in sorted(set(base_skipped) - set(skipped)):
            problems.append(f"SKIPPED only with the built-in gc: {test_id}: "
                            f"{base_skipped[test_id]}")
        if rep["tests_run"] != base["tests_run"]:
            problems.append(f"ran {rep['tests_run']} tests, the built-in gc run ran "
                            f"{base['tests_run']}")
        if rep["returncode"] != 0 and not problems:
            problems.append(f"exit status {rep['returncode']}")
    if not problems and rep["returncode"] != 0:
        problems.append(f"exit status {rep['returncode']} after a successful run "
                        "(crash at exit?)")
    if problems:
        counts = ""
        if "tests_run" in rep:
            counts = (f"ran {rep['tests_run']}: {len(rep['failures'])} failures, "
                      f"{len(rep['errors'])} errors, {len(rep['skipped'])} skipped "
                      f"(built-in gc: {len(base['skipped'])} skipped)\n")
        pytest.fail(
            f"{where}: {len(problems)} problem(s)\n{counts}\n"
            + "\n\n".join(problems)
            + f"\n\n---- subprocess output (exit status {rep['returncode']}) ----\n"
            + _tail(rep["output"]),
            pytrace=False)


@pytest.mark.parametrize("module", MODULES)
def test_cpython_suite_with_cyclegc_as_gc(module):
    check_against_builtin("replace", module)


@pytest.mark.parametrize("module", MODULES)
def test_cpython_suite_with_cyclegc_installed(module):
    import cyclegc

    if not hasattr(cyclegc, "install"):
        pytest.skip("cyclegc.install() not implemented yet (issue 3)")
    check_against_builtin("install", module)


@pytest.mark.parametrize("module", MODULES)
def test_cpython_suite_with_fork_friendly_collections(module):
    """The same modules with every full collection in fork-friendly mode."""
    check_against_builtin("fork-friendly", module)


@pytest.mark.parametrize("module", MODULES)
def test_cpython_suite_with_bounded_pauses(module):
    """The same modules with automatic collections as bounded increments."""
    check_against_builtin("bounded-pause", module)
