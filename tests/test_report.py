"""python -m cyclegc report RUN.json [--html PAGE]: a run's JSON (run --json)
shown again as text, or as one HTML page with each process's pause timeline
(checked in headless Chromium like the insight report, where installed)."""
import json
import re
import signal
import socket
import subprocess
import sys

import pytest

from tests.test_insight_browser import CHROMIUM, SCRIPT, shot
from tests.test_runner import PREFORK, start

REQUESTS = 2000   # each worker makes a few young collections even at 3.13's threshold0 of 2000


@pytest.fixture(scope="module")
def service_run(tmp_path_factory):
    """A pre-fork server with two workers run under `run --json`, loaded,
    then stopped with SIGTERM."""
    out = tmp_path_factory.mktemp("service") / "run.json"
    proc, line = start("--fork-friendly", "--json", str(out), PREFORK, "--gc", "cyclegc",
                       "--rows", "20000", "--workers", "2", "--cache", "20")
    port = int(line.split()[1])
    for i in range(REQUESTS):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"request-%d" % i)
            s.recv(64)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    return out, stderr


def report(*args):
    return subprocess.run([sys.executable, "-m", "cyclegc", "report", *args],
                          capture_output=True, text=True, timeout=300)


def test_report_prints_the_runs_summary_again(service_run):
    path, stderr = service_run
    proc = report(str(path))
    assert proc.returncode == 0, proc.stderr
    summary = stderr[stderr.index("cyclegc run summary"):]     # after any warning of the program's
    assert proc.stdout.rstrip("\n") == summary.rstrip("\n")


def test_html_draws_one_timeline_per_process(service_run, tmp_path):
    path, _ = service_run
    page = tmp_path / "run.html"
    proc = report(str(path), "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(path.read_text())
    dom = shot._RunDom()          # the browser check's parser, on the page as written
    dom.feed(page.read_text(encoding="utf-8"))
    # a bar stands for several collections where they share a pixel ("longest of N")
    drawn = {pid: sum(int(m.group(1)) if (m := re.search(r"longest of (\d+)", t)) else 1
                      for t in titles)
             for pid, titles in dom.timelines.items()}
    assert drawn == {p["pid"]: sum(p["collections"]) for p in doc["processes"]}
    assert len(drawn) == 3


def test_report_of_a_file_that_is_not_a_run_is_a_usage_error(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "cyclegc-insight/1"}))
    proc = report(str(other))
    assert proc.returncode == 2
    assert "is not a run's JSON" in proc.stderr and "Traceback" not in proc.stderr
    proc = report(str(tmp_path / "missing.json"), "--html", str(tmp_path / "x.html"))
    assert proc.returncode == 2 and "No such file" in proc.stderr


@pytest.mark.skipif(CHROMIUM is None,
                    reason="headless Chromium not installed (Debian: apt-get install chromium; "
                           "or set CHROMIUM to its path)")
def test_html_in_headless_chromium(service_run, tmp_path):
    """The page in a real browser: one timeline per process in the DOM with
    a bar per collection, and a row of bars drawn for each process."""
    path, _ = service_run
    proc = subprocess.run([sys.executable, SCRIPT, "--run-report", str(path), "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("OK")
    assert "3 rows of bars" in proc.stdout
