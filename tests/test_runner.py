"""python -m cyclegc run: the program runs as under `python`, with cyclegc
running its collections, and a summary of them comes out at exit."""
import json
import os
import subprocess
import sys

import pytest

from cyclegc import report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHURN = os.path.join(REPO, "examples", "churn.py")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cyclegc", "run", *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text(
        "import gc, sys, cyclegc\n"
        "print(__name__, sys.argv[1:], cyclegc.installed(), gc.collect is cyclegc.collect)\n"
        "for i in range(20000):\n"
        "    a = []; a.append(a)\n"
        "sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)\n")
    return str(path)


def test_program_runs_as_main_with_its_args_and_exit_status(script, tmp_path):
    out = tmp_path / "summary.json"
    proc = run("--json", str(out), script, "7", "--help")
    assert proc.returncode == 7
    assert proc.stdout.split() == ["__main__", "['7',", "'--help']", "True", "True"]
    figures = json.loads(out.read_text())
    assert figures["collector"] == "cyclegc" and figures["exit_status"] == 7
    # most of the 20,000 self-cycles (the last ones may still be young at exit)
    assert sum(figures["collections"]) > 0 and figures["collected"] >= 15000
    assert "pause p99" in proc.stderr and "time in GC" in proc.stderr


def test_uncaught_exception_exits_1_with_traceback(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("raise ValueError('boom')\n")
    proc = run("--quiet", str(bad))
    assert proc.returncode == 1 and "ValueError: boom" in proc.stderr


def test_module_mode_like_python_dash_m():
    proc = run("--quiet", "-m", "json.tool", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m json.tool")


@pytest.mark.parametrize("args", [["/no/such/script.py"], ["--no-such-option", "x.py"], [], ["-m"]])
def test_bad_invocations_exit_2(args):
    proc = run(*args)
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_compare_prints_both_collectors():
    proc = run("--compare", CHURN, "--requests", "20000")
    assert proc.returncode == 0, proc.stderr
    assert "built-in" in proc.stderr and "cyclegc" in proc.stderr
    assert proc.stdout.count("served 20000 requests") == 2


def test_summarize_figures():
    pauses = [(0, 0.001, 10, 0), (0, 0.003, 0, 0), (2, 0.010, 5, 1)]
    f = report.summarize("cyclegc", pauses, 1.0)
    assert f["collections"] == [2, 0, 1]
    assert f["pause_max_ms"] == pytest.approx(10.0)
    assert f["pause_p50_ms"] == pytest.approx(3.0)
    assert f["gc_share"] == pytest.approx(0.014)
    assert (f["collected"], f["uncollectable"]) == (15, 1)
    assert "1/0/0" not in report.text(f) and "2/0/1" in report.text(f)


def test_run_pytest_in_a_project_that_turns_warnings_into_errors(tmp_path):
    """`cyclegc run -m pytest` imports cyclegc before pytest loads cyclegc's
    plugin entry point; pytest must not warn that it cannot rewrite the
    package (under `filterwarnings = error` that stopped toolz's suite)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    (tmp_path / "test_x.py").write_text("def test_x():\n    assert 1\n")
    proc = run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
