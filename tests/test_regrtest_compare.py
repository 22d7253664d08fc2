"""scripts/regrtest_compare.py: CPython's own regression tests with the
built-in collector and with cyclegc installed in every process.

The parsers are checked on regrtest's own output forms; then a real run of
a few modules of the running interpreter's Lib/test (the whole suite is a
documented command, figures in docs/hardening.md), which must find no
difference and must see cyclegc installed in every regrtest worker.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import regrtest_compare as rc  # noqa: E402


SUMMARY = """
== Tests result: FAILURE then FAILURE ==

3 tests OK.

2 tests failed:
    test_a test_b

1 test skipped:
    test_winreg

1 re-run test:
    test_a

1 test failed again:
    test_b

1 test crashed:
    test_c
"""


def test_summary_lists_are_parsed():
    s = rc.parse_regrtest_summary(SUMMARY)
    assert s["failed"] == ["test_a", "test_b"]
    assert s["skipped"] == ["test_winreg"]
    assert s["rerun"] == ["test_a"]
    assert s["failed_again"] == ["test_b"]
    assert s["crashed"] == ["test_c"]


def test_junit_rerun_passing_is_flaky(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text(
        "<testsuites><testsuite>"
        "<testcase classname='test.m.C' name='t1'><failure>Traceback boom</failure></testcase>"
        "<testcase classname='test.m.C' name='t2'/>"
        "<testcase classname='test.m.C' name='t3'><skipped/></testcase>"
        "<testcase classname='test.m.C' name='t1'/>"
        "<testcase classname='test.m.C' name='t4'><error>bad</error></testcase>"
        "</testsuite></testsuites>")
    cases = rc.parse_junit(xml)
    assert cases["test.m.C.t1"]["status"] == "flaky"
    assert cases["test.m.C.t2"]["status"] == "passed"
    assert cases["test.m.C.t3"]["status"] == "skipped"
    assert cases["test.m.C.t4"]["status"] == "error"


def test_compare_reports_only_new_failures():
    base = {"mode": "builtin", "summary": {}, "cases": {
        "a": {"status": "passed", "text": ""}, "b": {"status": "failed", "text": "x"},
        "c": {"status": "passed", "text": ""}}}
    other = {"mode": "plain", "summary": {"crashed": ["test_z"]}, "cases": {
        "a": {"status": "error", "text": "Traceback"}, "b": {"status": "failed", "text": "x"},
        "c": {"status": "flaky", "text": "y"}}}
    cmp = rc.compare(base, other)
    assert [d["test"] for d in cmp["tests"]] == ["a"]
    assert cmp["both_bad"] == ["b"]
    assert cmp["flaky"] == ["c"]
    assert cmp["modules"] == [{"module": "test_z", "builtin": "passed", "plain": "crashed"}]


def test_env_changed_is_a_difference_unless_the_builtin_had_it_too():
    base = {"mode": "builtin", "cases": {},
            "summary": {"env_changed": ["test_both"], "failed": ["test_x"]}}
    other = {"mode": "fork", "cases": {},
             "summary": {"env_changed": ["test_both", "test_thread", "test_x"]}}
    cmp = rc.compare(base, other)
    assert cmp["modules"] == [{"module": "test_thread", "builtin": "passed", "fork": "env_changed"},
                              {"module": "test_x", "builtin": "failed", "fork": "env_changed"}]


def test_installed_check_needs_every_worker():
    run = {"processes": [
        {"pid": 1, "worker": True, "installed_at_start": True},
        {"pid": 1, "worker": True, "installed_at_exit": True},
        {"pid": 2, "worker": True, "installed_at_start": True},
        {"pid": 2, "worker": True, "installed_at_exit": False},
        {"pid": 3, "worker": False, "installed_at_start": False}]}
    n, bad = rc.check_installed(run)
    assert n == 2 and [p["pid"] for p in bad] == [2]


@pytest.mark.skipif(os.environ.get("CYCLEGC_SKIP_REGRTEST") == "1",
                    reason="CYCLEGC_SKIP_REGRTEST=1 asked to skip the real regrtest run")
def test_a_few_cpython_modules_show_no_difference(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "regrtest_compare.py"),
         "--python", sys.executable, "--modes", "plain",
         "--modules", "test_queue", "test_frame", "test_weakref", "test_finalization",
         "--workdir", str(tmp_path), "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    plain = report["comparisons"]["plain"]
    assert plain["workers"] >= 4 and plain["not_installed"] == []
    assert plain["tests"] == [] and plain["modules"] == []
    builtin_cases = report["runs"][0]["cases"]
    assert len(builtin_cases) > 200
