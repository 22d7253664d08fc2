"""Insight reports: the terminal table (plain and rich), JSON, the single-file
HTML page, and ``python -m cyclegc run --insight`` on a program with cycles
planted at known lines."""
import html.parser
import io
import json
import os
import re
import subprocess
import sys

import pytest

from cyclegc.insight.capture import Session, collect_observed
from cyclegc.insight.reporters import Report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEAKY = os.path.join(REPO, "examples", "leaky_service.py")


def marker_lines(path):
    found = {}
    with open(path) as f:
        for n, text in enumerate(f, 1):
            m = re.search(r"# cycle: (\w+)\s*$", text)
            if m:
                found[m.group(1)] = n
    return found


@pytest.fixture(scope="module")
def leaky():
    sys.path.insert(0, os.path.dirname(LEAKY))
    try:
        import leaky_service
    finally:
        sys.path.pop(0)
    return leaky_service


@pytest.fixture
def report(leaky):
    with Session(frames=2) as session:
        for n in range(40):
            leaky.handle(n)
        collect_observed(2, "final")
    return session.report()


def test_sites_rank_by_objects_with_shapes(report):
    lines = marker_lines(LEAKY)
    ours = [r for r in report.sites if r["file"] == LEAKY]
    assert [r["line"] for r in ours] == [lines["tree"], lines["session"], lines["request"]]
    assert [r["rank"] for r in report.sites[:3]] == [1, 2, 3]
    tree, session, request = ours
    assert (tree["cycles"], tree["objects"]) == (40, 320)      # 5 in the cycle + 3 empty lists
    assert tree["shapes"][0]["shape"] == "Tree -> list -> Tree -> Tree"
    assert tree["shapes"][0]["min_size"] == 5
    assert (request["cycles"], request["objects"]) == (40, 80)
    assert request["shapes"][0]["shape"] == "Request -> method -> Request"
    assert session["cycles"] == 40
    assert session["shapes"][0]["shape"] == "Session -> ValueError -> traceback -> frame -> Session"
    assert session["shapes"][0]["path"] == (
        "Session.error -> ValueError.__traceback__ -> traceback.tb_frame -> "
        "frame.f_locals['self'] -> Session")
    assert all(r["bytes"] > 0 for r in ours)
    s = report.summary
    assert s["cycles"] == sum(r["cycles"] for r in report.sites)
    assert s["cyclic_garbage_objects"] == sum(r["objects"] for r in report.sites)


def test_json_round_trips(report, tmp_path):
    path = tmp_path / "insight.json"
    report.write_json(str(path))
    data = json.loads(path.read_text())
    assert data["schema"] == "cyclegc-insight/1"
    assert data["sites"] == json.loads(json.dumps(report.sites))
    # the closing collection is in the timeline, kept apart from the program's
    assert data["summary"]["collections"] == len(data["timeline"]) - 1
    assert data["summary"]["final"]["collections"] == 1
    point = data["timeline"][-1]
    assert set(point) == {"t_s", "generation", "pause_ms", "collected", "garbage_objects",
                          "cycles", "analysis_ms", "reason"}
    assert point["reason"] == "final" and point["generation"] == 2


def test_plain_table(report):
    text = report.to_text()
    lines = marker_lines(LEAKY)
    first = text.splitlines()[0]
    assert first.startswith("cyclegc insight: ") and "cycles" in first
    tree_at = text.index(f"{LEAKY}:{lines['tree']}")
    session_at = text.index(f"{LEAKY}:{lines['session']}")
    request_at = text.index(f"{LEAKY}:{lines['request']}")
    assert tree_at < session_at < request_at
    assert "root = Tree(value=n)" in text
    assert ("Tree -> list -> Tree -> Tree  (40 cycles of 5 objects, 120 more objects "
            "hanging off them)") in text
    assert "via Request.callback -> method.__self__ -> Request" in text
    out = io.StringIO()
    report.print(file=out, use_rich=False)
    assert out.getvalue().rstrip("\n") == text


def test_rich_table(report):
    pytest.importorskip("rich")
    out = io.StringIO()
    report.print(file=out, use_rich=True)
    text = out.getvalue()
    assert "Tree -> list -> Tree -> Tree" in text
    assert "leaky_service.py" in text and "allocation site" in text


def test_objects_add_up_where_they_are_shown(report):
    """The objects column is the cycles' members plus the acyclic garbage
    hanging off them, and each is shown (table, JSON, HTML)."""
    tree = [r for r in report.sites if r["file"] == LEAKY][0]
    assert (tree["objects"], tree["in_cycles"], tree["hanging_objects"]) == (320, 200, 120)
    for row in report.sites:
        assert row["objects"] == row["in_cycles"] + row["hanging_objects"]
    s = report.summary
    assert s["cyclic_garbage_objects"] == s["objects_in_cycles"] + s["objects_hanging_off"]
    text = report.to_text()
    header = [line for line in text.splitlines() if "allocation site" in line][0]
    assert header.split()[:6] == ["#", "objects", "in", "cycles", "hanging", "off"]
    row = [line for line in text.splitlines() if f"{LEAKY}:" in line][0]
    assert row.split()[1:4] == ["320", "200", "120"]
    assert f"{s['objects_in_cycles']:,} in {s['cycles']:,} cycles, " \
           f"{s['objects_hanging_off']:,} hanging off them" in report.headline()
    page = report.to_html()
    assert '<td class="n">320</td><td class="n">200</td><td class="n">120</td>' in page


def test_rich_table_keeps_numbers_whole_at_100_columns():
    pytest.importorskip("rich")
    site = "/srv/app/" + "very_long_package_name/" * 4 + "handlers.py:1234"
    row = {"rank": 1, "site": site, "file": site, "line": 1234, "source": "x = Node()",
           "traceback": [site], "cycles": 1_234_567, "objects": 98_765_432,
           "in_cycles": 87_654_321, "hanging_objects": 11_111_111, "bytes": 5_000_000_000,
           "shapes": [{"shape": "Node -> Node", "path": "Node.peer -> Node", "cycles": 1_234_567,
                       "objects": 98_765_432, "in_cycles": 87_654_321,
                       "hanging_objects": 11_111_111, "bytes": 5_000_000_000,
                       "min_size": 2, "max_size": 2}]}
    summary = {"wall_s": 1.0, "collections": 3, "cycles": 1_234_567,
               "cyclic_garbage_objects": 98_765_432, "objects_in_cycles": 87_654_321,
               "objects_hanging_off": 11_111_111, "cyclic_garbage_bytes": 5_000_000_000,
               "unattributed_objects": 0, "unobserved_objects": 0, "uncollectable": 0,
               "pause_total_s": 0.0, "analysis_s": 0.0, "python": "3"}
    out = io.StringIO()
    Report(summary, [row], []).print(file=out, use_rich=True, width=100)
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 100
    for number in ("98,765,432", "87,654,321", "11,111,111", "1,234,567", "4.7 GiB",
                   "handlers.py:1234"):
        assert number in text, (number, text)
    # the path breaks after a "/" only, so its lines join back into the site
    cells = [line.split("│")[-2].strip() for line in text.splitlines() if line.count("│") > 2]
    joined = "".join(c for c in cells if c.startswith("/") or "very_long" in c or "handlers" in c)
    assert site in joined


def test_empty_report():
    with Session(frames=1) as session:
        pass
    report = session.report()
    assert report.sites == []
    assert "no cyclic garbage" in report.to_text()
    assert "No cyclic garbage" in report.to_html()


class _Checker(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.external = []
        self.data = None
        self._in_data = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        for key in ("src", "href"):
            if key in attrs:
                self.external.append(attrs[key])
        if tag == "link":
            self.external.append(str(attrs))
        if tag == "script" and attrs.get("id") == "cyclegc-insight-data":
            self._in_data = True

    def handle_endtag(self, tag):
        self._in_data = False

    def handle_data(self, data):
        if self._in_data:
            self.data = (self.data or "") + data


def test_html_is_one_self_contained_file(report, tmp_path):
    path = tmp_path / "insight.html"
    report.write_html(str(path))
    page = path.read_text(encoding="utf-8")
    checker = _Checker()
    checker.feed(page)
    assert checker.external == []
    assert "svg" in checker.tags and "rect" in checker.tags and "table" in checker.tags
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)
    lines = marker_lines(LEAKY)
    order = [page.index(f"{LEAKY}:{lines[k]}") for k in ("tree", "session", "request")]
    assert order == sorted(order)
    assert "Tree -&gt; list -&gt; Tree -&gt; Tree" in page
    data = json.loads(checker.data)
    assert data["sites"][0]["line"] == lines["tree"]
    # one bar per collection (fewer than the plot's width here)
    assert page.count("<rect ") == report.summary["collections"] + 1     # + insight's closing one
    assert "insight&#x27;s closing collection, not the program&#x27;s" in page


def test_html_timeline_has_at_most_one_bar_per_pixel():
    timeline = [{"t_s": i * 0.001, "generation": i % 3, "pause_ms": (i % 7) * 0.1, "collected": 1,
                 "garbage_objects": 1, "cycles": 1, "analysis_ms": 0.0, "reason": None}
                for i in range(20000)]
    summary = {"wall_s": 20.0, "collections": 20000, "cycles": 0, "cyclic_garbage_objects": 0,
               "cyclic_garbage_bytes": 0, "unattributed_objects": 0, "unobserved_objects": 0,
               "uncollectable": 0, "pause_total_s": 0.0, "analysis_s": 0.0, "python": "3"}
    page = Report(summary, [], timeline).to_html()
    assert 0 < page.count("<rect ") <= 960
    assert "longest of" in page


def run(*args):
    return subprocess.run([sys.executable, "-m", "cyclegc", "run", *args],
                          capture_output=True, text=True, timeout=300)


def test_run_insight_names_the_planted_sites_first(tmp_path):
    js, page = tmp_path / "i.json", tmp_path / "i.html"
    proc = run("--insight-json", str(js), "--insight-html", str(page), LEAKY, "300")
    assert proc.returncode == 0, proc.stderr
    lines = marker_lines(LEAKY)
    data = json.loads(js.read_text())
    top = [(r["file"], r["line"]) for r in data["sites"][:3]]
    assert top == [(LEAKY, lines["tree"]), (LEAKY, lines["session"]), (LEAKY, lines["request"])]
    tree, session, request = data["sites"][:3]
    assert (tree["cycles"], tree["objects"]) == (300, 2400)
    assert (request["cycles"], request["objects"]) == (300, 600)
    assert session["cycles"] == 300
    assert (tree["in_cycles"], tree["hanging_objects"]) == (1500, 900)
    # nothing else: the program's own classes are not reported as garbage
    assert len(data["sites"]) == 3
    assert data["summary"]["collections"] >= 2
    assert page.read_text().count(f"{LEAKY}:{lines['tree']}") >= 1
    # the table on stderr, after the pause summary
    err = proc.stderr
    assert err.index("cyclegc run summary") < err.index("cyclegc insight:")
    assert f"{LEAKY}:{lines['tree']}" in err


def test_run_insight_with_a_module_and_an_exit_status(tmp_path):
    (tmp_path / "leaker.py").write_text(
        "import sys\n"
        "def leak():\n"
        "    for _ in range(50):\n"
        "        d = {}; d['self'] = d          # here\n"
        "leak()\n"
        "sys.exit(3)\n")
    js = tmp_path / "i.json"
    proc = subprocess.run([sys.executable, "-m", "cyclegc", "run", "--insight-json", str(js),
                           "--quiet", "-m", "leaker"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr == ""
    data = json.loads(js.read_text())
    row = data["sites"][0]
    assert (os.path.basename(row["file"]), row["line"]) == ("leaker.py", 4)
    assert (row["cycles"], row["objects"]) == (50, 50)
    assert row["shapes"][0]["path"] == "dict['self'] -> dict"


def test_run_summary_and_insight_agree_and_keep_the_closing_collection_apart(tmp_path):
    js, run_js = tmp_path / "i.json", tmp_path / "run.json"
    proc = run("--insight", "--insight-json", str(js), "--json", str(run_js), LEAKY, "300")
    assert proc.returncode == 0, proc.stderr
    insight, figures = json.loads(js.read_text())["summary"], json.loads(run_js.read_text())
    assert insight["collections"] == sum(figures["collections"])
    assert insight["collected"] == figures["collected"]
    assert insight["pause_total_s"] == pytest.approx(figures["pause_total_s"])
    assert insight["pause_max_ms"] == pytest.approx(figures["pause_max_ms"])
    final = insight["final"]
    assert final["collections"] == 1 and figures["insight_final"] == final
    err = " ".join(proc.stderr.split())         # rich may wrap the lines
    assert "not counted: insight's closing collection" in err
    assert "insight's closing collection is not the program's" in err
    assert f"{insight['collections']:,} collections of the program" in err


def test_run_insight_quiet_still_prints_the_table(tmp_path):
    proc = run("--insight", "--quiet", LEAKY, "50")
    assert proc.returncode == 0, proc.stderr
    assert "cyclegc insight:" in proc.stderr and "cyclegc run summary" not in proc.stderr
    assert "leaky_service.py" in proc.stderr


def test_run_insight_cannot_compare():
    proc = run("--insight", "--compare", LEAKY)
    assert proc.returncode == 2
    assert "--insight cannot be combined with --compare" in proc.stderr
