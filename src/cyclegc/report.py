"""Summaries of a program's collections, for ``python -m cyclegc run``:
computing the figures, printing them as text or side by side, the run's
JSON document (schema ``cyclegc-run/1``) and its HTML page.

The JSON document keeps the whole run's aggregates at the top level
(``collector``, ``collections`` per generation, ``pause_*``, ``collected``
...), and adds:

* ``schema``: ``"cyclegc-run/1"``;
* ``run``: the facts of the run (interpreter, cyclegc version, argv, mode,
  start and end time, exit status);
* ``processes``: one entry per process (the program's, then each forked
  worker) with the same aggregates;
* ``records``: every collection, oldest first: ``pid``, ``t_s`` (start,
  seconds since the run started), ``generation``, ``duration_ms``,
  ``collected``, ``uncollectable``, ``candidates`` (null from the built-in
  collector) and, in bounded mode, ``kind`` (young, slice, truncated slice,
  overflow, full, collect());
* ``bounded`` (bounded mode): overflow collections, truncated slices, and
  the longest stop with its kind;
* ``insight_final`` (with insight): insight's own closing collection, which
  is not the program's and is counted in none of the figures above.
"""
import json
import os
import platform
import sys
import time

SCHEMA = "cyclegc-run/1"


def _percentile(sorted_values, q):
    if not sorted_values:
        return 0.0
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summarize(collector, pauses, wall_seconds):
    """Figures of one run: pauses are (generation, seconds, collected,
    uncollectable) per collection."""
    durations = sorted(p[1] for p in pauses)
    per_gen = [sum(1 for p in pauses if p[0] == g) for g in range(3)]
    total = sum(durations)
    return {
        "collector": collector,
        "collections": per_gen,
        "pause_total_s": total,
        "pause_p50_ms": _percentile(durations, 0.50) * 1e3,
        "pause_p99_ms": _percentile(durations, 0.99) * 1e3,
        "pause_max_ms": (durations[-1] if durations else 0.0) * 1e3,
        "wall_s": wall_seconds,
        "gc_share": total / wall_seconds if wall_seconds > 0 else 0.0,
        "collected": sum(p[2] for p in pauses),
        "uncollectable": sum(p[3] for p in pauses),
    }


def _pauses(records):
    return [(r[1], r[2], r[3], r[4]) for r in records]


def _iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e3):03d}Z"


def run_figures(run, argv=None):
    """The JSON document of a :class:`cyclegc.runner.Run` (see the module
    docstring)."""
    from .runner import KINDS

    recorder = run.recorder
    wall = recorder.wall_seconds()
    processes = recorder.processes()
    everything = [r for p in processes for r in p.records]
    figures = summarize(run.collector, _pauses(everything), wall)
    try:
        from . import __version__ as version
    except ImportError:  # pragma: no cover
        version = None
    figures["schema"] = SCHEMA
    figures["mode"] = run.mode
    figures["exit_status"] = run.status
    figures["run"] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "cyclegc": version,
        "argv": list(argv) if argv is not None else None,
        "program": run.target,
        "program_args": run.args,
        "module": run.module,
        "collector": run.collector,
        "mode": run.mode,
        "fork_friendly": bool(run.fork_friendly),
        "max_pause_ms": run.max_pause_ms,
        "pid": recorder.main_pid,
        "started": _iso(recorder.wall_started),
        "ended": _iso(recorder.wall_started + wall),
        "started_unix": recorder.wall_started,
        "wall_s": wall,
        "exit_status": run.status,
    }
    figures["processes"] = []
    for p in processes:
        entry = summarize(run.collector, _pauses(p.records), max(wall - p.started_s, 0.0))
        entry.update(pid=p.pid, role=p.role, parent_pid=p.parent_pid, started_s=p.started_s)
        del entry["collector"]
        figures["processes"].append(entry)
    records = []
    for p in processes:
        for t, g, d, c, u, n, k in p.records:
            rec = {"pid": p.pid, "t_s": t, "generation": g, "duration_ms": d * 1e3,
                   "collected": c, "uncollectable": u, "candidates": None if n < 0 else n}
            if recorder.bounded:
                rec["kind"] = KINDS[k]
            records.append(rec)
    records.sort(key=lambda r: r["t_s"])
    figures["records"] = records
    if recorder.bounded:
        figures["bounded"] = bounded_figures(records)
        figures["bounded"]["longest_automatic_cause"] = recorder.longest_cause
        last = recorder.last_incremental()
        if last is not None and "stop_waits" in last:
            figures["bounded"]["stop_waits"] = last["stop_waits"]
            figures["bounded"]["stop_wait_max_ms"] = last["stop_wait_max"] * 1e3
    if recorder.insight is not None:
        final = recorder.insight.summary.get("final")
        if final:
            figures["insight_final"] = final
    return figures


def bounded_figures(records):
    """Overflow collections, truncated slices and the longest stop."""
    kinds = {}
    for r in records:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    longest = max(records, key=lambda r: r["duration_ms"], default=None)
    auto = [r for r in records if r["kind"] != "collect()"]
    longest_auto = max(auto, key=lambda r: r["duration_ms"], default=None)
    return {
        "kinds": kinds,
        "overflow_collections": kinds.get("overflow", 0),
        "truncated_slices": kinds.get("truncated slice", 0),
        "longest_stop": longest,
        "longest_automatic_stop": longest_auto,
    }


_KIND_TEXT = {
    "young": "a young collection (increment)",
    "slice": "an increment with a slice of the old generation",
    "truncated slice": "a slice cut short by its cap",
    "overflow": "an overflow stop (a structure too big for a stop, proven in one oversized slice or complete collection)",
    "full": "a complete collection standing for a round (fork-friendly)",
    "collect()": "an explicit collect() (complete, not bounded)",
}


def cause_text(stop):
    """What a stop spent its time on (incremental_stats()'s last_stop or
    longest_stop): its cause, the part that took longest, with its objects,
    then every part."""
    parts = ", ".join(f"{name} {p['seconds'] * 1e3:.2f} ms / {p['objects']:,}"
                      for name, p in sorted(stop["parts"].items(),
                                            key=lambda kv: -kv[1]["seconds"]))
    return (f"{stop['cause']} ({stop['cause_objects']:,} objects); "
            f"core {stop['seconds'] * 1e3:.2f} ms (CPU {stop.get('cpu_seconds', 0) * 1e3:.2f} ms): {parts}")


def _stop_text(rec):
    where = "" if rec.get("pid") is None else f", pid {rec['pid']}"
    return (f"{rec['duration_ms']:.3f} ms: {_KIND_TEXT.get(rec['kind'], rec['kind'])}, "
            f"generation {rec['generation']}, at {rec['t_s']:.2f} s{where}")


ROWS = [
    ("collections (gen 0/1/2)", lambda f: "/".join(map(str, f["collections"]))),
    ("pause total", lambda f: f"{f['pause_total_s'] * 1e3:.1f} ms"),
    ("pause p50", lambda f: f"{f['pause_p50_ms']:.3f} ms"),
    ("pause p99", lambda f: f"{f['pause_p99_ms']:.3f} ms"),
    ("pause max", lambda f: f"{f['pause_max_ms']:.3f} ms"),
    ("time in GC", lambda f: f"{f['gc_share']:.1%} of {f['wall_s']:.2f} s"),
    ("objects collected", lambda f: f"{f['collected']:,}"),
    ("uncollectable", lambda f: f"{f['uncollectable']:,}"),
]

#: Workers listed one by one in the text summary; more are summed up.
MAX_WORKER_ROWS = 16


def header(figures):
    mode = figures.get("mode")
    if mode is None:
        return f"cyclegc run summary ({figures['collector']} collector)"
    if mode == "built-in":
        return "cyclegc run summary: built-in collector"
    return f"cyclegc run summary: cyclegc collector, {mode} mode"


def text(figures, partial=False):
    """The summary as text: the header naming the mode, the whole run's
    figures (every process), the bounded mode's exceptions, and a table per
    process when workers were forked."""
    head = header(figures)
    if partial:
        head += f" (so far, at {figures['wall_s']:.2f} s)"
    processes = figures.get("processes") or []
    workers = [p for p in processes if p["role"] == "worker"]
    lines = [head]
    if workers:
        lines.append(f"  all {len(processes)} processes (the program and "
                     f"{len(workers)} forked worker{'s' if len(workers) != 1 else ''}):")
    lines += [f"  {name:<24} {fmt(figures)}" for name, fmt in ROWS]
    bounded = figures.get("bounded")
    if bounded is not None:
        lines.append(f"  {'overflow collections':<24} {bounded['overflow_collections']:,}"
                     + ("   (oversized slices or complete collections: these stops were not bounded)"
                        if bounded["overflow_collections"] else ""))
        lines.append(f"  {'truncated slices':<24} {bounded['truncated_slices']:,}")
        if bounded["longest_stop"] is not None:
            lines.append(f"  {'longest stop':<24} {_stop_text(bounded['longest_stop'])}")
        la = bounded.get("longest_automatic_stop")
        if la is not None and la is not bounded["longest_stop"] and la != bounded["longest_stop"]:
            lines.append(f"  {'longest automatic stop':<24} {_stop_text(la)}")
        cause = bounded.get("longest_automatic_cause")
        if cause:
            lines.append(f"  {'  spent on':<24} {cause_text(cause)}")
        if bounded.get("stop_waits"):
            lines.append(f"  {'threads waited':<24} {bounded['stop_waits']:,} times for another "
                         f"thread's stop (longest {bounded['stop_wait_max_ms']:.1f} ms)")
    if workers:
        lines.append("  per process:")
        lines.append(f"    {'process':<20} {'collections':>14} {'pause total':>12} "
                     f"{'pause p99':>11} {'pause max':>11} {'collected':>12}")
        shown = processes[:1 + MAX_WORKER_ROWS]
        for p in shown:
            name = f"{'main' if p['role'] == 'main' else 'worker'} {p['pid']}"
            lines.append(_process_row(name, p))
        rest = processes[len(shown):]
        if rest:
            lines.append(_process_row(f"{len(rest)} more workers", _sum_processes(rest)))
        lines.append(_process_row("total", figures))
    exit_status = figures.get("exit_status")
    if exit_status is not None and exit_status < 0:
        lines.append(f"  {'ended by':<24} signal {-exit_status} ({_signal_name(-exit_status)})")
    final = figures.get("insight_final")
    if final:
        lines.append(f"  (not counted: insight's closing collection, {final['pause_ms']:.3f} ms, "
                     f"{final['collected']:,} objects)")
    return "\n".join(lines)


def _signal_name(signum):
    import signal
    try:
        return signal.Signals(signum).name
    except ValueError:  # pragma: no cover
        return "?"


def _process_row(name, p):
    return (f"    {name:<20} {'/'.join(map(str, p['collections'])):>14} "
            f"{p['pause_total_s'] * 1e3:>9.1f} ms {p['pause_p99_ms']:>8.3f} ms "
            f"{p['pause_max_ms']:>8.3f} ms {p['collected']:>12,}")


def _sum_processes(ps):
    return {
        "collections": [sum(p["collections"][g] for p in ps) for g in range(3)],
        "pause_total_s": sum(p["pause_total_s"] for p in ps),
        "pause_p99_ms": max(p["pause_p99_ms"] for p in ps),
        "pause_max_ms": max(p["pause_max_ms"] for p in ps),
        "collected": sum(p["collected"] for p in ps),
    }


def side_by_side(builtin, cyclegc):
    width = 26
    lines = [f"  {'':<24} {'built-in':>{width}} {'cyclegc':>{width}}"]
    lines += [f"  {name:<24} {fmt(builtin):>{width}} {fmt(cyclegc):>{width}}"
              for name, fmt in ROWS]
    return "\n".join(["cyclegc run --compare"] + lines)


#: Figures --compare --repeat summarizes (median and range over the runs).
REPEAT_ROWS = [
    ("pause total", "pause_total_s", 1e3, "ms", ".1f"),
    ("pause p50", "pause_p50_ms", 1, "ms", ".3f"),
    ("pause p99", "pause_p99_ms", 1, "ms", ".3f"),
    ("pause max", "pause_max_ms", 1, "ms", ".3f"),
    ("wall time", "wall_s", 1, "s", ".2f"),
    ("time in GC", "gc_share", 100, "%", ".1f"),
    ("collections", None, 1, "", ".0f"),
    ("objects collected", "collected", 1, "", ",.0f"),
]


def _value(f, key):
    return sum(f["collections"]) if key is None else f[key]


def _median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def repeat_table(runs):
    """--compare --repeat N: {"builtin": [figures...], "cyclegc": [...]}
    -> text with, per figure, the median and the range of each collector."""
    n = min(len(runs["builtin"]), len(runs["cyclegc"]))
    width = 30
    lines = [f"cyclegc run --compare --repeat {n}: median [min - max] over {n} "
             f"run{'s' if n != 1 else ''} each, alternating",
             f"  {'':<20} {'built-in':>{width}} {'cyclegc':>{width}}"]
    for name, key, scale, unit, fmt in REPEAT_ROWS:
        cells = []
        for collector in ("builtin", "cyclegc"):
            values = [_value(f, key) * scale for f in runs[collector]]
            if not values:
                cells.append("-")
                continue
            u = f" {unit}" if unit and unit != "%" else unit
            cells.append(f"{_median(values):{fmt}}{u} [{min(values):{fmt}} - {max(values):{fmt}}]")
        lines.append(f"  {name:<20} {cells[0]:>{width}} {cells[1]:>{width}}")
    return "\n".join(lines)


def repeat_figures(runs):
    """The --compare --repeat JSON: every run's figures and the medians and ranges."""
    out = {"schema": "cyclegc-compare/1", "runs": runs, "summary": {}}
    for collector, figs in runs.items():
        out["summary"][collector] = {
            key or "collections_total": {
                "median": _median([_value(f, key) for f in figs]),
                "min": min(_value(f, key) for f in figs),
                "max": max(_value(f, key) for f in figs),
            } for _, key, *_ in REPEAT_ROWS} if figs else {}
    return out


def write_json(path, figures):
    """Write the JSON whole or not at all: a reader (a plot refreshed on
    --report-signal) never sees half a file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(figures, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --------------------------------------------------------------------------
# python -m cyclegc report RUN.json --html out.html

def load(path):
    with open(path) as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a run's JSON (python -m cyclegc run --json FILE): "
                         f"schema {doc.get('schema') if isinstance(doc, dict) else None!r}, "
                         f"expected {SCHEMA!r}")
    return doc


def to_html(doc, title="cyclegc run"):
    """One HTML page: the run's facts, its summary and the pause timeline of
    each process (the insight report's timeline, one per process)."""
    import html
    from types import SimpleNamespace

    from .insight.reporters import _CSS, _GEN_COLORS, _timeline_svg

    e = html.escape
    run = doc.get("run", {})
    wall = run.get("wall_s") or doc.get("wall_s") or 0.0
    parts = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{e(title)}</h1>",
             f"<p>{e(' '.join(run.get('argv') or [str(run.get('program'))]))}</p>",
             "<h2>Summary</h2>", f"<pre id=\"summary\">{e(text(doc))}</pre>",
             "<h2>Collection pauses per process</h2>",
             '<div class="legend">generation'
             + "".join(f'<span style="background:{c}"></span>{g}'
                       for g, c in enumerate(_GEN_COLORS)) + "</div>"]
    by_pid = {}
    for r in doc.get("records", []):
        by_pid.setdefault(r["pid"], []).append(r)
    for p in doc.get("processes", []):
        recs = by_pid.get(p["pid"], [])
        pts = [{"t_s": r["t_s"], "generation": r["generation"], "pause_ms": r["duration_ms"],
                "collected": r["collected"], "reason": r.get("kind") or ""} for r in recs]
        name = f"{'main process' if p['role'] == 'main' else 'worker'} {p['pid']}"
        parts.append(f'<h3>{e(name)}</h3>')
        parts.append(_timeline_svg(SimpleNamespace(timeline=pts, summary={"wall_s": wall}),
                                   svg_id=f"pause-timeline-{p['pid']}", process=p["pid"],
                                   xlabel="time since the run started", height=160))
        parts.append(f'<p class="note">{len(recs):,} collections, '
                     f'{p["pause_total_s"] * 1e3:.1f} ms in total, the longest '
                     f'{p["pause_max_ms"]:.3f} ms, {p["collected"]:,} objects collected</p>')
    parts.append('<script type="application/json" id="cyclegc-run-data">'
                 + json.dumps(doc).replace("</", "<\\/") + "</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path, doc, title=None):
    with open(path, "w", encoding="utf-8") as f:
        f.write(to_html(doc, title or f"cyclegc run: {os.path.basename(str(doc.get('run', {}).get('program', '')))}"))
