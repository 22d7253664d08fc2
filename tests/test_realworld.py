"""What can be checked of benchmarks/realworld without the network: the
output normaliser, the comparison, the tables, wrk's and JUnit's parsers,
and that the hooks install the mode asked for and record the collections."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REALWORLD = ROOT / "benchmarks" / "realworld"
sys.path.insert(0, str(REALWORLD))

import capture  # noqa: E402
import report  # noqa: E402
import run as realworld_run  # noqa: E402
from cyclegc_realworld_hook import summarise  # noqa: E402
from programs import junit_outcomes, parse_wrk  # noqa: E402


def test_normalise_replaces_durations_and_the_run_directory_only():
    text = ("==== 2400 passed, 24 skipped in 41.27s (0:00:41) ====\n"
            "built in 3.5 seconds\n/tmp/x/run7/html/index.html: WARNING: item 12 of 3.5\n")
    out = capture.normalise(text, "/tmp/x/run7")
    assert out == ("==== 2400 passed, 24 skipped in <T>s ====\n"
                   "built in <T> seconds\n<RUN>/html/index.html: WARNING: item 12 of 3.5\n")
    # what is not a duration stays: a changed count is still a difference
    assert capture.normalise("2400 passed in 1.0s") != capture.normalise("2399 passed in 1.0s")


def test_compare_outputs_names_the_keys_that_differ():
    ref = {"stdout": "a", "stderr": "", "html": "{}"}
    assert realworld_run.compare_outputs(ref, dict(ref)) == []
    assert realworld_run.compare_outputs(ref, {**ref, "html": "{1}"}) == ["html"]
    assert realworld_run.compare_outputs(ref, {"stdout": "a", "stderr": ""}) == ["html"]


def test_mode_env_selects_the_hook_mode(tmp_path):
    env = capture.mode_env("pause2", tmp_path)
    assert env["CYCLEGC_REGRTEST"] == "pause2"
    assert Path(env["CYCLEGC_REALWORLD_DIR"]).is_dir()
    assert env["PYTHONHASHSEED"] == "0"
    with pytest.raises(ValueError):
        capture.mode_env("pause3", tmp_path)


def _run(mode, gc_vals, wall, identical=True, rps=None, uss=None, program="pylint"):
    return {"python": "3.12.1", "program": program, "mode": mode, "wall_s": wall, "maxrss_kb": 102400,
            "gc": {"gc_s": gc_vals[0], "collections": 10, "max_automatic_stop_s": gc_vals[1], "overflow": 0,
                   "processes": 1, "not_installed": 0},
            "identical": identical, "differences": [] if identical else ["stdout"], "returncode_ok": True,
            "load": {"rps": rps} if rps else None, "uss_after_mb": uss}


def test_aggregate_medians_and_ratios_and_the_table():
    runs = [_run("builtin", (1.0, 0.2), 10.0), _run("builtin", (1.2, 0.3), 12.0), _run("builtin", (0.8, 0.1), 11.0),
            _run("pause2", (0.5, 0.002), 11.0), _run("pause2", (0.4, 0.003), 9.9),
            _run("pause2", (0.6, 0.004), 20.0, identical=False)]
    table = report.aggregate(runs)
    b, p = table[("3.12.1", "pylint")]["builtin"], table[("3.12.1", "pylint")]["pause2"]
    assert b["wall_s"] == 11.0 and p["wall_s"] == 11.0 and p["wall_s_ratio"] == 1.0
    assert p["gc_s_ratio"] == pytest.approx(0.5)
    assert p["max_stop_ms"] == pytest.approx(3.0) and p["max_stop_ms_worst"] == pytest.approx(4.0)
    assert b["wall_spread"] == pytest.approx(2 / 11)
    assert b["identical"] and not p["identical"]
    md = report.markdown(table)
    rows = [line for line in md.splitlines() if line.startswith("| pylint")]
    assert len(rows) == 2
    assert "| pause2 | 3 | 11.0 " in rows[1] and "NO: stdout" in rows[1]
    assert rows[0].count("|") == md.splitlines()[0].count("|")


def test_server_table_reports_throughput_and_uss_ratios():
    runs = [_run("builtin", (1, 0.1), 90, rps=600, uss=100, program="gunicorn"),
            _run("fork", (1, 0.1), 90, rps=660, uss=20, program="gunicorn")]
    md = report.markdown_server(report.aggregate(runs))
    fork = [line for line in md.splitlines() if "| fork |" in line][0]
    assert "| 660 " in fork and "| 1.10 |" in fork and "| 0.20 |" in fork


def test_parse_wrk():
    text = """Running 1m test @ http://127.0.0.1:8000
  2 threads and 8 connections
  Latency Distribution
     50%    9.71ms
     99%   41.02ms
  38512 requests in 1.00m, 40.31MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 2
Requests/sec:    641.35
Transfer/sec:    687.12KB
"""
    out = parse_wrk(text)
    assert out["requests"] == 38512 and out["rps"] == 641.35
    assert out["non2xx"] == 2 and out["socket_errors"] == 4
    assert out["latency"] == {"50%": "9.71ms", "99%": "41.02ms"}


def test_junit_outcomes(tmp_path):
    path = tmp_path / "j.xml"
    path.write_text('<testsuites><testsuite><testcase classname="a.T" name="t1" time="0.1"/>'
                    '<testcase classname="a.T" name="t2" time="0.2"><skipped/></testcase>'
                    '<testcase classname="a.T" name="t3"><failure message="x"/></testcase>'
                    '</testsuite></testsuites>')
    assert junit_outcomes(path) == [("a.T::t1", "passed"), ("a.T::t2", "skipped"), ("a.T::t3", "failure")]


def test_summarise_counts_overflow_and_longest_automatic_stop():
    kinds = ("", "young", "slice", "truncated slice", "overflow", "full", "collect()")
    recs = [(0.0, 0, 0.001, 5, 0, -1, 1), (0.1, 2, 0.050, 9, 0, -1, 4), (0.2, 2, 0.300, 0, 0, -1, 6)]
    out = summarise(recs, kinds)
    assert out["collections"] == 3 and out["by_generation"] == [1, 0, 2]
    assert out["by_kind"] == {"young": 1, "overflow": 1, "collect()": 1}
    assert out["max_stop_s"] == 0.3 and out["max_automatic_stop_s"] == 0.05
    assert out["gc_seconds"] == pytest.approx(0.351) and out["collected"] == 14


@pytest.mark.parametrize("mode, installed, max_pause, fork_friendly",
                         [("builtin", None, None, None), ("plain", True, 0, None),
                          ("pause2", True, 0.002, None), ("fork", True, 0, True)])
def test_hooks_install_the_mode_and_record_collections(tmp_path, mode, installed, max_pause, fork_friendly):
    """Both hooks imported as the venv's .pth imports them, in a fresh
    interpreter: the mode asked for is installed, and the realworld hook
    writes the process's collections at exit."""
    gc_dir = tmp_path / "gc"
    env = capture.mode_env(mode, tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "scripts" / "regrtest"), str(REALWORLD)])
    code = ("import cyclegc_regrtest_hook, cyclegc_realworld_hook, gc, cyclegc\n"
            "class N: pass\n"
            "for i in range(20000):\n    a = N(); a.self = a\n"
            "del a\n"
            "gc.collect()\n"
            "print(cyclegc.is_fork_friendly() if cyclegc.installed() else None)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    files = list(gc_dir.glob("*.json"))
    assert len(files) == 1
    rec = json.loads(files[0].read_text())
    assert rec["mode"] == mode
    assert rec["collections"] >= 2          # automatic ones and the explicit one
    assert rec["collected"] >= 20000
    assert rec.get("installed_at_exit") is installed
    if installed:
        assert rec["incremental"]["max_pause"] == pytest.approx(max_pause)
    # where the time went: per generation, and cyclegc's complete collections
    assert sum(rec["by_generation"]) == rec["collections"]
    assert sum(rec["seconds_by_generation"]) == pytest.approx(rec["gc_seconds"])
    if mode == "plain":
        # the explicit collect(): (candidates, left to trial deletion, s, collected)
        assert len(rec["full"]) == rec["by_generation"][2] >= 1
        assert rec["full_candidates"] == sum(f[0] for f in rec["full"]) > 0
        assert 0 < rec["full_trial_candidates"] < rec["full_candidates"]
        assert rec["full"][-1][2] > 0 and rec["full"][-1][3] >= 0
        assert rec["phases"]["mark"][2] > 0 and rec["phases"]["trial"][0] >= 0
    elif mode == "builtin":
        assert rec["full"] == [] and "phases" not in rec
    if fork_friendly:
        assert out.stdout.strip() == "True"


def test_pylint_duplicate_code_quote_is_normalised_but_not_the_files_named():
    from programs import normalise_duplicate_code
    block = ("x.py:1:0: R0801: Similar lines in 2 files\n==pkg.a:[642:647]\n==pkg.b:[266:271]\n"
             "{indent}stream=stream,\n{indent}proxies=proxies, (duplicate-code)\n\n---\n")
    a = normalise_duplicate_code(block.format(indent=" " * 12))
    b = normalise_duplicate_code(block.format(indent=" " * 20))
    assert a == b and "stream=stream" not in a and "==pkg.b:[266:271]" in a
    other = normalise_duplicate_code(block.replace("266:271", "266:272").format(indent=" " * 12))
    assert other != a


def test_breakdown_tables_per_generation_and_phases():
    def run(mode, secs, trial=None, phases=None):
        r = _run(mode, (sum(secs), 0.1), 10.0)
        r["gc"].update(by_generation=[100, 10, 2], seconds_by_generation=list(secs),
                       full_candidates=1000 if trial is not None else 0,
                       full_trial_candidates=trial or 0, phases=phases or {})
        return r
    phases = {name: [0.0, 0.0, 0.0] for name in report.PHASES}
    phases["split"] = [0.0, 0.0, 0.25]
    runs = [run("builtin", (1.0, 1.0, 4.0)), run("plain", (1.0, 0.5, 1.0), trial=100, phases=phases),
            {**_run("plain", (1, 1), 10.0), "round": 0}]    # an older run without the figures: left out
    table = report.breakdown(runs)
    plain = table[("3.12.1", "pylint")]["plain"]
    assert plain["runs"] == 1 and plain["ratio"] == [1.0, 0.5, 0.25]
    assert plain["trial_share"] == pytest.approx(0.1) and plain["full_objects"] == 500
    md = report.markdown_breakdown(table)
    row = [line for line in md.splitlines() if "| plain |" in line][0]
    assert "2, 1.00 (0.25)" in row and "10.0 %" in row
    ph = report.markdown_phases(table)
    assert "| pylint | plain | 2 | 0.000 | 0.250 |" in ph
    totals = capture.gc_totals([{"collections": 3, "gc_seconds": 1.0, "max_stop_s": 0.5, "max_automatic_stop_s": 0.5,
                                 "maxrss_kb": 1, "mode": "plain", "installed_at_exit": True,
                                 "by_generation": [2, 0, 1], "seconds_by_generation": [0.2, 0.0, 0.8],
                                 "full_candidates": 50, "full_trial_candidates": 5,
                                 "phases": {"mark": [0.0, 0.0, 0.3]}}] * 2)
    assert totals["by_generation"] == [4, 0, 2] and totals["seconds_by_generation"] == [0.4, 0.0, 1.6]
    assert totals["full_trial_candidates"] == 10 and totals["phases"] == {"mark": [0.0, 0.0, 0.6]}
