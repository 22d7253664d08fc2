"""python -m cyclegc report RUN.json [--html PAGE]: a run's JSON (run --json)
shown again as text, or as one HTML page with each process's pause timeline
(checked in headless Chromium like the insight report, where installed)."""
import html.parser
import json
import re
import signal
import socket
import subprocess
import sys

import pytest

from tests.test_insight_browser import CHROMIUM, SCRIPT
from tests.test_runner import PREFORK, start

REQUESTS = 1000


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


class _Timelines(html.parser.HTMLParser):
    """{pid: collections its bars stand for} (a bar stands for several
    collections where they fall on one pixel: "longest of N" in its title)."""

    def __init__(self):
        super().__init__()
        self.bars = {}
        self._pid = None
        self._title = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and "pause-timeline" in (a.get("class") or ""):
            self._pid = int(a["data-pid"])
            self.bars[self._pid] = 0
        elif tag == "rect" and self._pid is not None:
            self.bars[self._pid] += 1
        elif tag == "title" and self._pid is not None:
            self._title = True

    def handle_data(self, data):
        if self._title:
            m = re.search(r"longest of (\d+) collections", data)
            if m:
                self.bars[self._pid] += int(m.group(1)) - 1

    def handle_endtag(self, tag):
        if tag == "svg":
            self._pid = None
        elif tag == "title":
            self._title = False


def test_html_draws_one_timeline_per_process(service_run, tmp_path):
    path, _ = service_run
    page = tmp_path / "run.html"
    proc = report(str(path), "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(path.read_text())
    parser = _Timelines()
    parser.feed(page.read_text(encoding="utf-8"))
    assert parser.bars == {p["pid"]: sum(p["collections"]) for p in doc["processes"]}
    assert len(parser.bars) == 3


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
