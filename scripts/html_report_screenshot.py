#!/usr/bin/env python3
"""Open the insight HTML report in headless Chromium, save a screenshot, and
check what the browser rendered.

    python scripts/html_report_screenshot.py [--out DIR] [--requests 1000]
        [--chromium PATH] [--window 1280x1100]

1. Runs ``python -m cyclegc run --insight-html DIR/report.html --insight-json
   DIR/report.json examples/leaky_service.py N`` with this interpreter (it must
   import cyclegc: a venv with cyclegc installed, or PYTHONPATH=src with the
   extension built in place).
2. Opens the page in headless Chromium (Debian's ``chromium`` package; as root
   it runs with --no-sandbox, always with a fresh profile):
   ``--dump-dom`` for the DOM the browser built, ``--screenshot`` for
   DIR/report.png.
3. Checks, and exits 1 if one fails:
   * DOM: the pause timeline ``<svg id="pause-timeline">`` with one bar
     (``rect.pause``) per collection of the JSON report (fewer only where the
     report merged collections that fall on one pixel); the ranked table
     ``#sites`` whose first three rows name the planted ``# cycle:`` lines of
     examples/leaky_service.py in the order tree, session, request, with
     8N, 2N objects for tree and request and N cycles each;
   * pixels: the screenshot is not blank; the bars are drawn (thin shapes in
     the generation colours, standing on one baseline, generation 0 among
     them), the legend's three squares below them, and the table's cycle
     shapes (their blue) below the legend.

Without --out, the files go to a temporary directory that is kept and
printed, so the PNG can be looked at.  PNGs are not committed.

    python scripts/html_report_screenshot.py --run-report RUN.json [--out DIR]

does the same for a run's page (``python -m cyclegc report RUN.json --html``,
RUN.json from ``python -m cyclegc run --json``): DOM, one timeline
``svg.pause-timeline`` per process of the run with one bar per collection of
that process (fewer only where collections share a pixel); pixels, one row
of bars per process with collections, each row on its own baseline.
"""
import argparse
import html.parser
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEAKY = os.path.join(REPO, "examples", "leaky_service.py")

# The report's colours (src/cyclegc/insight/reporters.py, _GEN_COLORS, .shape)
GEN_COLORS = ((0x4C, 0xAF, 0x50), (0xFF, 0x98, 0x00), (0xE5, 0x39, 0x35))
SHAPE_BLUE = (0x15, 0x65, 0xC0)

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def find_chromium(explicit=None):
    for cand in (explicit, os.environ.get("CHROMIUM"), shutil.which("chromium"),
                 shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if cand and os.path.exists(cand):
            return cand
    return None


def marker_lines(path=LEAKY):
    found = {}
    with open(path) as f:
        for n, text in enumerate(f, 1):
            m = re.search(r"# cycle: (\w+)\s*$", text)
            if m:
                found[m.group(1)] = n
    return found


# -- 1. the report ---------------------------------------------------------

def make_report(outdir, requests, python=sys.executable):
    page = os.path.join(outdir, "report.html")
    data = os.path.join(outdir, "report.json")
    cmd = [python, "-m", "cyclegc", "run", "--quiet", "--insight-html", page,
           "--insight-json", data, os.path.relpath(LEAKY, REPO), str(requests)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    with open(data) as f:
        return page, json.load(f)


# -- 2. the browser --------------------------------------------------------

def chromium(binary, *args, timeout=180):
    """Run headless Chromium with a fresh profile; returns its stdout."""
    with tempfile.TemporaryDirectory(prefix="cyclegc-chromium-") as profile:
        cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium failed ({proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace')[-2000:]}")
    return proc.stdout.decode("utf-8", errors="replace")


def file_url(path):
    return "file://" + os.path.abspath(path)


def dump_dom(binary, page):
    return chromium(binary, "--dump-dom", file_url(page))


def screenshot(binary, page, png, window=(1280, 1100)):
    if os.path.exists(png):
        os.unlink(png)
    chromium(binary, f"--screenshot={png}", f"--window-size={window[0]},{window[1]}",
             file_url(page))
    if not os.path.exists(png):
        raise RuntimeError("chromium wrote no screenshot")
    return png


# -- 3a. the DOM -----------------------------------------------------------

class _Dom(html.parser.HTMLParser):
    """What the checks need from the serialized DOM: the timeline's bars and
    the text of each cell of the #sites table."""

    def __init__(self):
        super().__init__()
        self.svg = None            # attributes of svg#pause-timeline
        self.bars = []             # (attributes, title text) of its rect.pause
        self.rows = []             # [[cell text, ...], ...] of table#sites tbody
        self._stack = []
        self._in_svg = self._in_sites = self._in_tbody = False
        self._cell = None
        self._title = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and a.get("id") == "pause-timeline":
            self.svg, self._in_svg = a, True
        elif self._in_svg and tag == "rect" and "pause" in (a.get("class") or "").split():
            self.bars.append([a, ""])
        elif self._in_svg and tag == "title" and self.bars:
            self._title = self.bars[-1]
        elif tag == "table" and a.get("id") == "sites":
            self._in_sites = True
        elif self._in_sites and tag == "tbody":
            self._in_tbody = True
        elif self._in_tbody and tag == "tr":
            self.rows.append([])
        elif self._in_tbody and tag == "td" and self.rows:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if tag == "svg":
            self._in_svg = False
        elif tag == "title":
            self._title = None
        elif tag == "table":
            self._in_sites = self._in_tbody = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._title is not None:
            self._title[1] += data
        if self._cell is not None:
            self._cell.append(data)


def check_dom(dom_text, data, requests, failures):
    dom = _Dom()
    dom.feed(dom_text)
    collections = len(data["timeline"])
    if dom.svg is None:
        failures.append("DOM: no <svg id=pause-timeline>")
    elif not dom.bars:
        failures.append("DOM: the timeline has no bars (rect.pause)")
    else:
        merged = sum(1 for _, title in dom.bars if "longest of" in title)
        if len(dom.bars) > collections or (not merged and len(dom.bars) != collections):
            failures.append(f"DOM: {len(dom.bars)} bars for {collections} collections "
                            f"({merged} merged)")
        heights = [float(a.get("height", 0)) for a, _ in dom.bars]
        if max(heights) <= 1.0:
            failures.append(f"DOM: no bar is taller than 1 px: {heights[:10]}")
    lines = marker_lines()
    want = [("tree", 8 * requests), ("session", None), ("request", 2 * requests)]
    if len(dom.rows) < 3:
        failures.append(f"DOM: the sites table has {len(dom.rows)} rows, expected 3")
        return dom
    for row, (name, objects) in zip(dom.rows, want):
        if len(row) < 8:
            failures.append(f"DOM: a sites row with {len(row)} cells: {row}")
            continue
        rank, obj_text, in_cycles, hanging, _bytes, cycles, site, _shapes = row[:8]
        try:
            parts = [int(t.replace(",", "")) for t in (obj_text, in_cycles, hanging)]
        except ValueError:
            failures.append(f"DOM: row {rank} has objects that are not numbers: {row[:4]}")
        else:
            if parts[0] != parts[1] + parts[2]:
                failures.append(f"DOM: row {rank}: {obj_text} objects are not {in_cycles} "
                                f"in cycles + {hanging} hanging off")
        site_ref = f"leaky_service.py:{lines[name]}"
        if site_ref not in site:
            failures.append(f"DOM: row {rank} should name {site_ref} ({name}), has {site!r}")
        if objects is not None and obj_text != f"{objects:,}":
            failures.append(f"DOM: row {rank} ({name}) has {obj_text} objects, expected {objects:,}")
        if cycles != f"{requests:,}":
            failures.append(f"DOM: row {rank} ({name}) has {cycles} cycles, expected {requests:,}")
    return dom


# -- 3b. the pixels --------------------------------------------------------

def read_png(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA,
    non-interlaced PNG (what Chromium writes), without any imaging library."""
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(blob):
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        chunk = blob[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, colour type {ctype}, "
                         f"interlace {interlace})")
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        base = y * (stride + 1)
        kind, line = raw[base], bytearray(raw[base + 1:base + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        elif kind != 0:
            raise ValueError(f"bad PNG filter {kind}")
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return width, height, rows


def _near(px, color, tol):
    return all(abs(a - b) <= tol for a, b in zip(px, color))


def _components(points):
    """Connected components (8-neighbour) of a set of (x, y) -> list of
    bounding boxes (x0, y0, x1, y1, count)."""
    points = set(points)
    boxes = []
    while points:
        stack = [points.pop()]
        x0 = x1 = stack[0][0]
        y0 = y1 = stack[0][1]
        count = 0
        while stack:
            x, y = stack.pop()
            count += 1
            x0, x1, y0, y1 = min(x0, x), max(x1, x), min(y0, y), max(y1, y)
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    q = (x + dx, y + dy)
                    if q in points:
                        points.remove(q)
                        stack.append(q)
        boxes.append((x0, y0, x1, y1, count))
    return boxes


def check_png(path, failures, generations=(0,)):
    """Pixel checks on the screenshot; returns what it found (for printing)."""
    width, height, rows = read_png(path)
    counts = {}
    for row in rows:
        for px in row:
            counts[px] = counts.get(px, 0) + 1
    background, bg_count = max(counts.items(), key=lambda kv: kv[1])
    inked = 1 - bg_count / (width * height)
    found = {"size": (width, height), "inked": inked}
    if inked < 0.01:
        failures.append(f"PNG: blank ({inked:.2%} of the pixels differ from the background)")
        return found
    bars, legend = [], []
    for gen, color in enumerate(GEN_COLORS):
        pts = [(x, y) for y, row in enumerate(rows) for x, px in enumerate(row)
               if _near(px, color, 12)]
        for box in _components(pts):
            x0, y0, x1, y1, _ = box
            w, h = x1 - x0 + 1, y1 - y0 + 1
            if 8 <= w <= 14 and 8 <= h <= 14:
                legend.append((gen, box))
            else:
                bars.append((gen, box))
    found["bars"], found["legend"] = len(bars), len(legend)
    if len(legend) != 3:
        failures.append(f"PNG: {len(legend)} legend squares, expected 3")
    if not bars:
        failures.append("PNG: no timeline bar drawn")
        return found
    for gen in generations:
        if not any(g == gen for g, _ in bars):
            failures.append(f"PNG: no bar of generation {gen} drawn")
    baselines = {box[3] for _, box in bars}
    if max(baselines) - min(baselines) > 1:
        failures.append(f"PNG: the bars do not stand on one baseline (bottoms {sorted(baselines)})")
    tallest = max(box[3] - box[1] + 1 for _, box in bars)
    found["tallest_bar_px"] = tallest
    if tallest < 50:
        failures.append(f"PNG: the tallest bar is {tallest} px high")
    bars_bottom = max(box[3] for _, box in bars)
    if legend and min(box[1] for _, box in legend) <= bars_bottom:
        failures.append("PNG: the legend is not below the bars")
    blue = [y for y, row in enumerate(rows) for px in row if _near(px, SHAPE_BLUE, 40)]
    found["shape_text_px"] = len(blue)
    if len(blue) < 50:
        failures.append(f"PNG: the table's cycle shapes are not drawn ({len(blue)} blue pixels)")
    elif legend and min(blue) <= max(box[3] for _, box in legend):
        failures.append("PNG: the table's cycle shapes are not below the timeline")
    return found


# -- a run's page (python -m cyclegc report RUN.json --html) ----------------

class _RunDom(html.parser.HTMLParser):
    """The per-process timelines of a run's page: {pid: [bar titles]}."""

    def __init__(self):
        super().__init__()
        self.timelines = {}
        self._pid = None
        self._title = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and "pause-timeline" in (a.get("class") or "").split():
            self._pid = int(a.get("data-pid", -1))
            self.timelines[self._pid] = []
        elif self._pid is not None and tag == "rect" and "pause" in (a.get("class") or "").split():
            self.timelines[self._pid].append("")
            self._title = True
        elif tag == "title" and self._title:
            self._title = "open"

    def handle_endtag(self, tag):
        if tag == "svg":
            self._pid = None
        elif tag == "title":
            self._title = None

    def handle_data(self, data):
        if self._title == "open" and self._pid is not None:
            self.timelines[self._pid][-1] += data


def make_run_report(doc_path, outdir, python=sys.executable):
    page = os.path.join(outdir, "run.html")
    cmd = [python, "-m", "cyclegc", "report", doc_path, "--html", page]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    with open(doc_path) as f:
        return page, json.load(f)


def check_run_dom(dom_text, doc, failures):
    dom = _RunDom()
    dom.feed(dom_text)
    pids = [p["pid"] for p in doc["processes"]]
    if sorted(dom.timelines) != sorted(pids):
        failures.append(f"DOM: timelines for processes {sorted(dom.timelines)}, "
                        f"expected {sorted(pids)}")
    for p in doc["processes"]:
        bars = dom.timelines.get(p["pid"], [])
        n = sum(p["collections"])
        merged = sum(1 for t in bars if "longest of" in t)
        if len(bars) > n or (not merged and len(bars) != n) or (n and not bars):
            failures.append(f"DOM: process {p['pid']}: {len(bars)} bars for {n} collections "
                            f"({merged} merged)")
    return dom


def check_run_png(path, doc, failures):
    """Each process with collections has its own row of bars (in the
    generation colours), one baseline per row, rows top to bottom."""
    width, height, rows = read_png(path)
    pts = [(x, y) for y, row in enumerate(rows) for x, px in enumerate(row)
           if any(_near(px, c, 12) for c in GEN_COLORS)]
    boxes = [b for b in _components(pts)
             if not (8 <= b[2] - b[0] + 1 <= 14 and 8 <= b[3] - b[1] + 1 <= 14)]  # not legend
    baselines = sorted({b[3] for b in boxes})
    rows_found = []
    for y in baselines:                          # bars within 1 px stand on one baseline
        if rows_found and y - rows_found[-1] <= 1:
            continue
        rows_found.append(y)
    expected = sum(1 for p in doc["processes"] if sum(p["collections"]))
    found = {"size": (width, height), "bar_rows": len(rows_found), "bars": len(boxes)}
    if len(rows_found) < expected:
        failures.append(f"PNG: {len(rows_found)} rows of bars drawn, expected one for each of "
                        f"{expected} processes with collections")
    return found


def main_run_report(args, binary):
    outdir = args.out or tempfile.mkdtemp(prefix="cyclegc-run-html-")
    os.makedirs(outdir, exist_ok=True)
    window = tuple(int(v) for v in (args.window or "1280x2400").lower().split("x"))
    page, doc = make_run_report(args.run_report, outdir)
    failures = []
    dom = check_run_dom(dump_dom(binary, page), doc, failures)
    png = screenshot(binary, page, os.path.join(outdir, "run.png"), window)
    found = check_run_png(png, doc, failures)
    print(f"report:     {page} ({len(doc['processes'])} processes, "
          f"{len(doc['records'])} collections)")
    print(f"DOM:        " + ", ".join(f"{pid}: {len(b)} bars" for pid, b in dom.timelines.items()))
    print(f"screenshot: {png} ({found['size'][0]}x{found['size'][1]}, "
          f"{found['bar_rows']} rows of bars, {found['bars']} bars)")
    for f in failures:
        print(f"FAIL {f}")
    print("OK" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


# -- main ------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="directory for report.html, report.json, report.png "
                   "(default: a new temporary directory, kept)")
    p.add_argument("--requests", type=int, default=1000,
                   help="requests for examples/leaky_service.py (default 1000)")
    p.add_argument("--chromium", help="Chromium binary (default: $CHROMIUM, chromium on PATH)")
    p.add_argument("--window", default=None,
                   help="window size WxH (default 1280x1100; 1280x2400 with --run-report: "
                        "tall enough for a run of three processes whose command line wraps, "
                        "as in a CI checkout's long paths)")
    p.add_argument("--run-report", metavar="RUN.json",
                   help="check the page of a run (python -m cyclegc report RUN.json --html) "
                        "instead of the insight report")
    args = p.parse_args(argv)
    binary = find_chromium(args.chromium)
    if binary is None:
        print("no Chromium found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    if args.run_report:
        return main_run_report(args, binary)
    outdir = args.out or tempfile.mkdtemp(prefix="cyclegc-insight-html-")
    os.makedirs(outdir, exist_ok=True)
    window = tuple(int(v) for v in (args.window or "1280x1100").lower().split("x"))

    page, data = make_report(outdir, args.requests)
    failures = []
    dom = check_dom(dump_dom(binary, page), data, args.requests, failures)
    png = screenshot(binary, page, os.path.join(outdir, "report.png"), window)
    gens = sorted({t["generation"] for t in data["timeline"]
                   if 0 <= t["generation"] < 3 and t.get("reason") != "final"})
    found = check_png(png, failures, generations=gens)

    print(f"report:     {page} ({len(data['timeline'])} collections, "
          f"{len(data['sites'])} sites)")
    print(f"DOM:        {len(dom.bars)} timeline bars, {len(dom.rows)} table rows; top sites: "
          + ", ".join(r[6].split()[0] for r in dom.rows[:3] if len(r) > 6))
    print(f"screenshot: {png} ({found['size'][0]}x{found['size'][1]}, "
          f"{found['inked']:.1%} inked, {found.get('bars', 0)} bars drawn, tallest "
          f"{found.get('tallest_bar_px', 0)} px, {found.get('legend', 0)} legend squares)")
    for f in failures:
        print(f"FAIL {f}")
    print("OK" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
