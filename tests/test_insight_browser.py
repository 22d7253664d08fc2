"""The insight HTML report in a real browser: scripts/html_report_screenshot.py
runs examples/leaky_service.py under ``python -m cyclegc run --insight-html``,
opens the page in headless Chromium, and checks the DOM Chromium built and the
pixels of its screenshot.  Skipped where Chromium is not installed."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "html_report_screenshot.py")


def _load_script():
    spec = importlib.util.spec_from_file_location("html_report_screenshot", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


shot = _load_script()
CHROMIUM = shot.find_chromium()

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (Debian: apt-get install chromium; "
           "or set CHROMIUM to its path)")

REQUESTS = 300


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("insight-html")
    proc = subprocess.run([sys.executable, SCRIPT, "--out", str(out), "--requests", str(REQUESTS)],
                          capture_output=True, text=True, timeout=900)
    return out, proc


def test_script_renders_and_checks_the_report(rendered):
    out, proc = rendered
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("OK")
    png = out / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, _ = shot.read_png(str(png))
    assert (width, height) == (1280, 1100)
    data = json.loads((out / "report.json").read_text())
    lines = shot.marker_lines()
    assert [s["line"] for s in data["sites"][:3]] == [lines["tree"], lines["session"], lines["request"]]


def test_dom_check_fails_without_the_timeline(rendered):
    out, proc = rendered
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    start, end = page.index("<svg"), page.index("</svg>") + len("</svg>")
    broken = out / "no_timeline.html"
    broken.write_text(page[:start] + page[end:], encoding="utf-8")
    data = json.loads((out / "report.json").read_text())
    failures = []
    dom = shot.check_dom(shot.dump_dom(CHROMIUM, str(broken)), data, REQUESTS, failures)
    assert failures == ["DOM: no <svg id=pause-timeline>"]
    assert len(dom.rows) == 3          # the table is still there
    # ... and the intact page passes the same check in the browser
    failures = []
    shot.check_dom(shot.dump_dom(CHROMIUM, str(out / "report.html")), data, REQUESTS, failures)
    assert failures == []


def test_dom_check_fails_on_wrong_sites(rendered):
    out, _ = rendered
    data = json.loads((out / "report.json").read_text())
    failures = []
    # the right page, but checked against another request count
    shot.check_dom(shot.dump_dom(CHROMIUM, str(out / "report.html")), data, REQUESTS + 1, failures)
    assert any("objects, expected" in f for f in failures)
    assert any("cycles, expected" in f for f in failures)


def test_pixel_check_fails_on_a_blank_page(tmp_path):
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>")
    png = shot.screenshot(CHROMIUM, str(page), str(tmp_path / "blank.png"), (400, 300))
    failures = []
    found = shot.check_png(png, failures)
    assert found["inked"] == 0
    assert failures and failures[0].startswith("PNG: blank")


def test_pixel_check_fails_when_the_bars_are_not_drawn(rendered, tmp_path):
    out, _ = rendered
    page = (out / "report.html").read_text(encoding="utf-8")
    # the bars are in the DOM but not painted
    hidden = tmp_path / "hidden_bars.html"
    hidden.write_text(page.replace("</style>", "rect.pause{display:none}</style>", 1),
                      encoding="utf-8")
    png = shot.screenshot(CHROMIUM, str(hidden), str(tmp_path / "hidden.png"))
    failures = []
    shot.check_png(png, failures)
    assert "PNG: no timeline bar drawn" in failures
