"""Reporters: what insight saw, as a terminal table (rich if installed, plain
text otherwise), JSON, and a single-file HTML page (inline SVG timeline of
the pauses and the ranked table; no external assets).

A :class:`Report` is plain data, detached from the session that produced it:
allocation sites ranked by the cyclic garbage they produced (objects, then
bytes), each with the shapes of its cycles, and the timeline of collections.
"""
import html
import json
import platform
import time

from .analysis import site_text, source_line

SCHEMA = "cyclegc-insight/1"


def _fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def _plural(n, word):
    return f"{n:,} {word}" + ("" if n == 1 else "s")


class Report:
    """Ranked cyclic garbage and collection timeline of one session."""

    def __init__(self, summary, sites, timeline):
        self.summary = summary        # dict of totals
        self.sites = sites            # ranked list of site dicts (see as_dict())
        self.timeline = timeline      # list of collection dicts, oldest first

    # -- building ---------------------------------------------------------
    @classmethod
    def from_session(cls, session):
        origin = session.started_at
        end = session.stopped_at if session.stopped_at is not None else time.perf_counter()
        by_site = {}
        for group in session.groups.values():
            row = by_site.get(group.site)
            if row is None:
                row = by_site[group.site] = {
                    "site": site_text(group.site),
                    "file": group.site[0] if group.site else None,
                    "line": group.site[1] if group.site else None,
                    "source": source_line(group.site),
                    "traceback": [site_text(f) for f in group.traceback],
                    "cycles": 0, "objects": 0, "in_cycles": 0, "hanging_objects": 0,
                    "bytes": 0, "shapes": [],
                }
            row["cycles"] += group.cycles
            row["objects"] += group.objects
            row["in_cycles"] += group.in_cycles
            row["hanging_objects"] += group.hanging
            row["bytes"] += group.bytes
            row["shapes"].append({
                "shape": group.shape, "path": group.path, "cycles": group.cycles,
                "objects": group.objects, "in_cycles": group.in_cycles,
                "hanging_objects": group.hanging, "bytes": group.bytes,
                "min_size": group.min_size, "max_size": group.max_size,
                "types": dict(group.types),
                "first_seen_s": group.first - origin, "last_seen_s": group.last - origin,
            })
        sites = sorted(by_site.values(),
                       key=lambda r: (r["site"] == "<unknown>", -r["objects"], -r["bytes"], r["site"]))
        for rank, row in enumerate(sites, 1):
            row["rank"] = rank
            row["shapes"].sort(key=lambda s: (-s["objects"], -s["bytes"], s["shape"]))
        timeline = [
            {"t_s": t - origin, "generation": g, "pause_ms": d * 1e3, "collected": c,
             "garbage_objects": go, "cycles": nc, "analysis_ms": a * 1e3, "reason": reason}
            for t, g, d, c, go, nc, a, reason in session.timeline
        ]
        # A session's closing collection (stop(collect=True)) is insight's,
        # not the program's: kept apart from the program's figures.
        final = [t for t in timeline if t["reason"] == "final"]
        program = [t for t in timeline if t["reason"] != "final"]
        final_pause = sum(t["pause_ms"] for t in final) / 1e3
        summary = {
            "wall_s": end - origin,
            "started": session.wall_started,
            "collections": session.collections - len(final),
            "collected": session.collected - sum(t["collected"] for t in final),
            "uncollectable": session.uncollectable,
            "pause_max_ms": max((t["pause_ms"] for t in program), default=0.0),
            "cycles": sum(r["cycles"] for r in sites),
            "cyclic_garbage_objects": sum(r["objects"] for r in sites),
            "objects_in_cycles": sum(r["in_cycles"] for r in sites),
            "objects_hanging_off": sum(r["hanging_objects"] for r in sites),
            "cyclic_garbage_bytes": sum(r["bytes"] for r in sites),
            "unattributed_objects": session.unattributed,
            "unobserved_objects": session.unobserved,
            "pause_total_s": session.pause_seconds - final_pause,
            "analysis_s": session.analysis_seconds,
            "python": platform.python_version(),
        }
        if final:
            summary["final"] = {
                "collections": len(final),
                "pause_ms": final_pause * 1e3,
                "collected": sum(t["collected"] for t in final),
                "garbage_objects": sum(t["garbage_objects"] for t in final),
                "cycles": sum(t["cycles"] for t in final),
            }
        return cls(summary, sites, timeline)

    # -- JSON -------------------------------------------------------------
    def as_dict(self):
        return {"schema": SCHEMA, "summary": dict(self.summary), "sites": self.sites,
                "timeline": self.timeline}

    def to_json(self, indent=2):
        return json.dumps(self.as_dict(), indent=indent)

    def write_json(self, path):
        with open(path, "w") as f:
            f.write(self.to_json())

    # -- text -------------------------------------------------------------
    def headline(self):
        s = self.summary
        objects = s["cyclic_garbage_objects"]
        in_cycles = s.get("objects_in_cycles", objects)
        text = (f"cyclegc insight: {_plural(objects, 'object')} of cyclic garbage "
                f"({_fmt_bytes(s['cyclic_garbage_bytes'])}): {in_cycles:,} in "
                f"{_plural(s['cycles'], 'cycle')}, {objects - in_cycles:,} hanging off them; "
                f"{_plural(s['collections'], 'collection')} of the program over "
                f"{s['wall_s']:.2f} s")
        final = s.get("final")
        if final:
            text += (f", and insight's closing collection ({final['pause_ms']:.1f} ms, "
                     f"{final['garbage_objects']:,} objects)")
        return text

    def notes(self):
        s = self.summary
        out = []
        if any(r["site"] == "<unknown>" for r in self.sites):
            out.append("<unknown>: allocated before tracemalloc was tracing")
        if s["unobserved_objects"]:
            out.append(f"{s['unobserved_objects']:,} objects collected without being examined")
        if s["unattributed_objects"]:
            out.append(f"{s['unattributed_objects']:,} garbage objects outside any cycle")
        if s["uncollectable"]:
            out.append(f"{s['uncollectable']:,} uncollectable objects (see gc.garbage)")
        out.append("objects: the cycles' own members (in cycles) plus the acyclic garbage "
                   "only they kept alive (hanging off)")
        final = s.get("final")
        if final:
            out.append(f"insight's closing collection is not the program's: its "
                       f"{final['pause_ms']:.1f} ms and {final['collected']:,} objects collected "
                       f"are in none of the program's figures (the cycles it found are in the "
                       f"table)")
        out.append(f"examining the garbage took {s['analysis_s'] * 1e3:.1f} ms "
                   f"(the program's collections: {s['pause_total_s'] * 1e3:.1f} ms)")
        return out

    def to_text(self, limit=20, shapes=3):
        """Plain-text table of the `limit` top sites, `shapes` shapes each."""
        lines = [self.headline()]
        pad = " " * 72
        if not self.sites:
            lines.append("  no cyclic garbage")
        else:
            lines.append(f"  {'#':>3} {'objects':>11} {'in cycles':>11} {'hanging off':>11} "
                         f"{'bytes':>10} {'cycles':>9}   allocation site")
            for row in self.sites[:limit]:
                lines.append(f"  {row['rank']:>3} {row['objects']:>11,} {row['in_cycles']:>11,} "
                             f"{row['hanging_objects']:>11,} {_fmt_bytes(row['bytes']):>10} "
                             f"{row['cycles']:>9,}   {row['site']}")
                if row["source"]:
                    lines.append(f"{pad}  {row['source']}")
                for shape in row["shapes"][:shapes]:
                    lines.append(f"{pad}  {_shape_text(shape)}")
                    lines.append(f"{pad}    via {shape['path']}")
                if len(row["shapes"]) > shapes:
                    lines.append(f"{pad}  ... {len(row['shapes']) - shapes} more shapes")
            if len(self.sites) > limit:
                lines.append(f"  ... {len(self.sites) - limit} more sites")
        lines += [f"  note: {n}" for n in self.notes()]
        return "\n".join(lines)

    def print(self, file=None, limit=20, shapes=3, use_rich=None, width=None):
        """Print the table: with rich if it is installed (and `use_rich` is
        not False), plain text otherwise.  `width`: rich's width in columns
        (default: the terminal's, or wide enough for the sites in a file)."""
        import sys
        file = sys.stderr if file is None else file
        if use_rich is not False:
            try:
                import rich.console  # noqa: F401 - is rich installed?
            except ImportError:
                if use_rich:
                    raise
            else:
                return self._print_rich(file, limit, shapes, width)
        print(self.to_text(limit, shapes), file=file)

    def _print_rich(self, file, limit, shapes, width=None):
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        # On a terminal rich fits the table to the window. Into a log or a pipe,
        # make it wide enough that no site is folded: people grep logs for paths.
        if width is None and not (hasattr(file, "isatty") and file.isatty()):
            longest = max((len(r["site"]) for r in self.sites[:limit]), default=0)
            width = max(100, longest + 75)
        console = Console(file=file, highlight=False, width=width)
        console.print(self.headline())
        table = Table(show_lines=True)
        # numbers never wrap: the site column (folded) gives way instead
        for name in ("#", "objects", "in cycles", "hanging off", "bytes", "cycles"):
            table.add_column(name, justify="right", no_wrap=True)
        table.add_column("allocation site / cycle shapes", overflow="fold", ratio=1,
                         min_width=20)
        rows = self.sites[:limit]
        numbers = [[str(r["rank"]), f"{r['objects']:,}", f"{r['in_cycles']:,}",
                    f"{r['hanging_objects']:,}", _fmt_bytes(r["bytes"]), f"{r['cycles']:,}"]
                   for r in rows]
        headers = ("#", "objects", "in cycles", "hanging off", "bytes", "cycles")
        # what is left for the site column: 7 columns with a border and a
        # space either side
        used = sum(max([len(h)] + [len(n[i]) for n in numbers]) + 3
                   for i, h in enumerate(headers)) + 4
        site_width = max(20, console.width - used)
        for row, nums in zip(rows, numbers):
            # a long path breaks after a "/", never inside "file.py:123"
            cell = Text(_wrap_path(row["site"], site_width), style="bold")
            if row["source"]:
                cell.append("\n" + row["source"], style="dim")
            for shape in row["shapes"][:shapes]:
                cell.append("\n" + _shape_text(shape), style="cyan")
                cell.append("\n  via " + shape["path"], style="dim")
            if len(row["shapes"]) > shapes:
                cell.append(f"\n... {len(row['shapes']) - shapes} more shapes", style="dim")
            table.add_row(*nums, cell)
        if self.sites:
            console.print(table)
        else:
            console.print("  no cyclic garbage")
        if len(self.sites) > limit:
            console.print(f"... {len(self.sites) - limit} more sites")
        for n in self.notes():
            console.print(f"note: {n}", style="dim")

    # -- HTML -------------------------------------------------------------
    def to_html(self, title="cyclegc insight"):
        return _html(self, title)

    def write_html(self, path, title="cyclegc insight"):
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_html(title))


def _wrap_path(path, width):
    """`path` in lines of at most `width` characters, broken after a "/"
    only (a last part longer than `width` stays whole: rich folds it)."""
    if len(path) <= width:
        return path
    parts = path.split("/")
    lines, line = [], parts[0]
    for part in parts[1:]:
        if line and len(line) + 1 + len(part) > width:
            lines.append(line + "/")
            line = part
        else:
            line += "/" + part
    lines.append(line)
    return "\n".join(lines)


def _shape_text(shape):
    size = (_plural(shape["min_size"], "object") if shape["min_size"] == shape["max_size"]
            else f"{shape['min_size']}-{shape['max_size']} objects")
    text = f"{shape['shape']}  ({_plural(shape['cycles'], 'cycle')} of {size}"
    hanging = shape.get("hanging_objects", 0)
    if hanging:
        text += f", {hanging:,} more objects hanging off them"
    return text + ")"


# --------------------------------------------------------------------------
# HTML

_GEN_COLORS = ("#4caf50", "#ff9800", "#e53935")
_FINAL_COLOR = "#9e9e9e"      # insight's closing collection (not the program's)

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.site code{overflow-wrap:anywhere}
code,pre{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.shape{color:#1565c0}.src{color:#555}.note{color:#666}
details summary{cursor:pointer;color:#555}
svg text{font:11px system-ui,sans-serif;fill:#444}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""


def _nice_ticks(peak, n=4):
    """Round tick values from 0 to about `peak` (1, 2 or 5 times a power of 10)."""
    import math
    if peak <= 0:
        return [0.0]
    raw = peak / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(peak / step + 1e-9) + 1)]


def _tick_text(v, unit):
    if v == 0:
        return f"0 {unit}"
    return (f"{v:.3g} {unit}" if v >= 0.01 else f"{v:.1e} {unit}")


def _timeline_svg(report, width=960, height=200, svg_id="pause-timeline", process=None,
                  xlabel="time since insight started"):
    """The pause timeline (inline SVG) of `report` (anything with
    ``.timeline`` points and ``.summary["wall_s"]``): one bar per
    collection.  ``cyclegc report --html`` draws one per process with it."""
    pts = report.timeline
    wall = max(report.summary["wall_s"], max((p["t_s"] for p in pts), default=0.0), 1e-6)
    left, right, bottom, top = 64, 16, 34, 12
    plot_w, plot_h = width - left - right, height - bottom - top
    base = top + plot_h
    # at most one bar per pixel column: the longest pause of each column
    bins = {}
    for p in pts:
        x = min(int(p["t_s"] / wall * plot_w), plot_w - 1)
        cur = bins.get(x)
        if cur is None or p["pause_ms"] > cur[0]["pause_ms"]:
            bins[x] = (p, (cur[1] + 1) if cur else 1)
        else:
            bins[x] = (cur[0], cur[1] + 1)
    # the y axis fits the program's collections; a longer closing collection
    # of insight's (not the program's) is cut at the top and labelled
    program = [p for p in pts if p.get("reason") != "final"] or pts
    peak = max((p["pause_ms"] for p in program), default=0.0) or 1.0
    # the y axis ends on a round value at or above the longest pause
    yticks = _nice_ticks(peak)
    if yticks[-1] < peak:
        yticks.append(yticks[-1] + (yticks[1] - yticks[0] if len(yticks) > 1 else peak))
    ymax = yticks[-1] or peak
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" id="{svg_id}" class="pause-timeline" '
           + (f'data-pid="{process}" ' if process is not None else "") + f'width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" '
           f'role="img" aria-label="collection pauses over time">']
    for v in yticks:
        y = base - v / ymax * plot_h
        if v:
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                       f'stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{_tick_text(v, "ms")}</text>')
    for v in _nice_ticks(wall, 6):
        x = left + v / wall * plot_w
        out.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="#999"/>')
        out.append(f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle">'
                   f'{_tick_text(v, "s")}</text>')
    out.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#999"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="#999"/>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 2}" text-anchor="middle">'
               f'{html.escape(xlabel)}</text>')
    for x, (p, count) in sorted(bins.items()):
        h = min(float(plot_h), max(1.0, p["pause_ms"] / ymax * plot_h))
        if p["pause_ms"] > ymax:
            out.append(f'<text x="{left + x - 4}" y="{top + 10}" text-anchor="end">'
                       f'{p["pause_ms"]:.1f} ms &#8593;</text>')
        final = p.get("reason") == "final"
        color = (_FINAL_COLOR if final else
                 _GEN_COLORS[p["generation"]] if 0 <= p["generation"] < 3 else "#777")
        tip = (f"t={p['t_s']:.3f} s, generation {p['generation']}, pause {p['pause_ms']:.3f} ms, "
               f"collected {p['collected']}")
        if "garbage_objects" in p:
            tip += (f", cyclic garbage {p['garbage_objects']} objects in {p['cycles']} cycles; "
                    f"insight examined it in {p.get('analysis_ms', 0.0):.3f} ms")
        if count > 1:
            tip += f" (longest of {count} collections here)"
        if final:
            tip = "insight's closing collection, not the program's: " + tip
        elif p.get("reason"):
            tip += f" [{p['reason']}]"
        out.append(f'<rect class="pause" x="{left + x}" y="{base - h:.1f}" width="2" '
                   f'height="{h:.1f}" fill="{color}"><title>{html.escape(tip)}</title></rect>')
    out.append("</svg>")
    return "".join(out)


def _timeline_caption(report):
    s = report.summary
    final = [p for p in report.timeline if p.get("reason") == "final"]
    pts = [p for p in report.timeline if p.get("reason") != "final"]
    if not pts and not final:
        return "No collection while insight was running."
    if not pts:
        return ("No collection of the program while insight was running; the grey bar is "
                "insight's closing collection.")
    longest = max(pts, key=lambda p: p["pause_ms"])
    text = (f"One bar per collection (where several fall on one pixel, the longest), "
            f"its height the collector's pause: {_plural(len(pts), 'collection')}, "
            f"{sum(p['pause_ms'] for p in pts):.1f} ms in total, the longest "
            f"{longest['pause_ms']:.2f} ms (generation {longest['generation']}, "
            f"at {longest['t_s']:.2f} s). Insight's own examination of the garbage "
            f"({s['analysis_s'] * 1e3:.1f} ms in total) is not in the bars.")
    if final:
        text += (f" The grey bar at the end is insight's closing collection "
                 f"({final[-1]['pause_ms']:.2f} ms), not the program's: it is in none of "
                 f"these figures.")
    if len(pts) < s.get("collections", len(pts)):
        text += f" The first {s['collections'] - len(pts):,} collections are not shown."
    return text


def _html(report, title):
    e = html.escape
    s = report.summary
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(report.headline())}</p>",
        "<h2>Collection pauses</h2>",
        _timeline_svg(report),
        '<div class="legend">generation'
        + "".join(f'<span style="background:{c}"></span>{g}' for g, c in enumerate(_GEN_COLORS))
        + (f'<span style="background:{_FINAL_COLOR}"></span>insight\'s closing collection'
           if s.get("final") else "")
        + "</div>",
        f'<p class="note">{e(_timeline_caption(report))}</p>',
        "<h2>Allocation sites ranked by cyclic garbage</h2>",
    ]
    if not report.sites:
        parts.append("<p>No cyclic garbage.</p>")
    else:
        parts.append('<table id="sites"><thead><tr><th>#</th><th>objects</th>'
                     '<th title="members of the cycles">in cycles</th>'
                     '<th title="acyclic garbage only the cycles kept alive">hanging off</th>'
                     '<th>bytes</th><th>cycles</th>'
                     '<th>allocation site</th><th>cycle shapes</th></tr></thead><tbody>')
        for row in report.sites:
            shapes = "".join(
                f'<div><code class="shape">{e(sh["shape"])}</code> &times;{sh["cycles"]:,} '
                f'({sh["min_size"]}{"" if sh["min_size"] == sh["max_size"] else "-" + str(sh["max_size"])}'
                f' objects each, {sh["in_cycles"]:,} objects in cycles + {sh["hanging_objects"]:,} '
                f'hanging off them, {e(_fmt_bytes(sh["bytes"]))})'
                f'<br><small>via <code>{e(sh["path"])}</code></small></div>'
                for sh in row["shapes"])
            tb = ""
            if len(row["traceback"]) > 1:
                tb = ("<details><summary>traceback</summary><pre>"
                      + e("\n".join(row["traceback"])) + "</pre></details>")
            src = f'<br><code class="src">{e(row["source"])}</code>' if row["source"] else ""
            parts.append(
                f'<tr><td class="n">{row["rank"]}</td><td class="n">{row["objects"]:,}</td>'
                f'<td class="n">{row["in_cycles"]:,}</td><td class="n">{row["hanging_objects"]:,}</td>'
                f'<td class="n">{e(_fmt_bytes(row["bytes"]))}</td><td class="n">{row["cycles"]:,}</td>'
                f'<td class="site"><code>{e(row["site"])}</code>{src}{tb}</td><td>{shapes}</td></tr>')
        parts.append("</tbody></table>")
    parts.append("<h2>Notes</h2><ul>" + "".join(f'<li class="note">{e(n)}</li>' for n in report.notes())
                 + f'<li class="note">Python {e(s["python"])}</li></ul>')
    parts.append('<script type="application/json" id="cyclegc-insight-data">'
                 + json.dumps(report.as_dict()).replace("</", "<\\/") + "</script>")
    parts.append("</body></html>")
    return "\n".join(parts)
