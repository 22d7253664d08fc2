"""Reporters: from the list of runs (run.py's JSON) to medians, spreads,
ratios against the built-in collector, and markdown tables."""
import statistics

MODE_ORDER = ("builtin", "plain", "pause2", "fork", "immortal", "freeze")
#: the parts of a cyclegc collection its core times (collector.h, CG_PHASE_*)
PHASES = ("mark", "split", "trial", "untrack", "dispose", "other")


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    """(max - min) / median, as a fraction: how far the runs of one cell scatter."""
    xs = [x for x in xs if x is not None]
    if len(xs) < 2 or not statistics.median(xs):
        return None
    return (max(xs) - min(xs)) / statistics.median(xs)


def ratio(a, b):
    if a is None or not b:
        return None
    return a / b


def _longest_increment(r):
    if "longest_increment_s" in r["gc"]:
        return r["gc"]["longest_increment_s"]
    return max((p.get("incremental", {}).get("longest_increment", 0.0) for p in r.get("gc_processes", [])),
               default=0.0)


def aggregate(runs):
    """{(python, program): {mode: cell}} of medians over the runs of each
    mode, with ratios to the built-in's medians."""
    groups = {}
    for r in runs:
        groups.setdefault((r["python"], r["program"]), {}).setdefault(r["mode"], []).append(r)
    table = {}
    for key, by_mode in groups.items():
        cells = {}
        for mode, rs in by_mode.items():
            walls = [r["wall_s"] for r in rs]
            cells[mode] = {
                "runs": len(rs),
                "wall_s": median(walls), "wall_spread": spread(walls),
                "gc_s": median([r["gc"]["gc_s"] for r in rs]),
                "gc_spread": spread([r["gc"]["gc_s"] for r in rs]),
                "gc_share": median([r["gc"]["gc_s"] / r["wall_s"] if r["wall_s"] else None for r in rs]),
                "collections": median([r["gc"]["collections"] for r in rs]),
                "max_stop_ms": median([r["gc"]["max_automatic_stop_s"] * 1000 for r in rs]),
                "max_stop_ms_worst": max(r["gc"]["max_automatic_stop_s"] * 1000 for r in rs),
                "overflow": sum(r["gc"]["overflow"] for r in rs),
                "longest_increment_ms": max((_longest_increment(r) * 1000 for r in rs), default=None),
                "rss_mb": median([r["maxrss_kb"] / 1024 for r in rs]),
                "identical": all(r["identical"] for r in rs),
                "differences": sorted({d for r in rs for d in r.get("differences", [])}),
                "ok": all(r["returncode_ok"] for r in rs),
                "processes": median([r["gc"]["processes"] for r in rs]),
                "not_installed": sum(r["gc"]["not_installed"] for r in rs),
                "rps": median([(r.get("load") or {}).get("rps") for r in rs]),
                "rps_spread": spread([(r.get("load") or {}).get("rps") for r in rs]),
                "uss_mb": median([r.get("uss_after_mb") for r in rs]),
                "uss_spread": spread([r.get("uss_after_mb") for r in rs]),
            }
        base = cells.get("builtin")
        for mode, c in cells.items():
            for k in ("wall_s", "gc_s", "rss_mb", "rps", "uss_mb"):
                c[k + "_ratio"] = ratio(c[k], base[k]) if base else None
        table[key] = cells
    return table


def _f(x, fmt="{:.2f}", none="-"):
    return none if x is None else fmt.format(x)


def _pct(x):
    return "-" if x is None else f"±{100 * x / 2:.0f} %"


def markdown(table, python=None):
    """One row per program and mode: the figures of issue 15 part 3."""
    head = ("| program | mode | runs | wall s (spread) | wall ratio | GC s (share of wall) | GC ratio "
            "| collections | longest stop ms (worst) | overflow (longest increment ms) | peak RSS MB (ratio) | output identical |")
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for (py, program), cells in sorted(table.items()):
        if python and py != python:
            continue
        for mode in MODE_ORDER:
            c = cells.get(mode)
            if not c:
                continue
            wall = (f"{c['wall_s']:.1f} ({_pct(c['wall_spread'])})" if program != "gunicorn"
                    else f"{c['wall_s']:.0f} (fixed load)")
            lines.append(
                f"| {program} | {mode} | {c['runs']} | {wall} | "
                f"{_f(c['wall_s_ratio']) if program != 'gunicorn' else '-'} | "
                f"{_f(c['gc_s'], '{:.2f}')} ({_f(c['gc_share'] and 100 * c['gc_share'], '{:.1f} %')}) | "
                f"{_f(c['gc_s_ratio'])} | {_f(c['collections'], '{:.0f}')} | "
                f"{_f(c['max_stop_ms'], '{:.1f}')} ({_f(c['max_stop_ms_worst'], '{:.1f}')}) | "
                f"{str(c['overflow']) + ' (' + _f(c['longest_increment_ms'], '{:.1f}') + ')' if mode == 'pause2' else '-'} | "
                f"{_f(c['rss_mb'], '{:.0f}')} ({_f(c['rss_mb_ratio'])}) | "
                f"{'yes' if c['identical'] else 'NO: ' + ', '.join(c['differences'])}"
                f"{'' if c['ok'] else ' (exit status differs)'} |")
    return "\n".join(lines)


def breakdown(runs):
    """{(python, program): {mode: cell}}: where the time in collections went,
    medians over the runs: per generation, collections and seconds; for
    cyclegc's complete collections the share of their objects that marking
    from the roots left to trial deletion.  Runs recorded before the hook
    measured this have no per-generation figures and are left out."""
    groups = {}
    for r in runs:
        if "seconds_by_generation" not in r["gc"]:
            continue
        groups.setdefault((r["python"], r["program"]), {}).setdefault(r["mode"], []).append(r)
    table = {}
    for key, by_mode in groups.items():
        cells = {}
        for mode, rs in by_mode.items():
            cells[mode] = {
                "runs": len(rs),
                "count": [median([r["gc"]["by_generation"][g] for r in rs]) for g in range(3)],
                "seconds": [median([r["gc"]["seconds_by_generation"][g] for r in rs]) for g in range(3)],
                "trial_share": median([r["gc"]["full_trial_candidates"] / r["gc"]["full_candidates"]
                                       if r["gc"].get("full_candidates") else None for r in rs]),
                "phases": {name: [median([(r["gc"].get("phases") or {}).get(name, [None] * 3)[g] for r in rs])
                                  for g in range(3)] for name in PHASES},
                "full_objects": median([r["gc"]["full_candidates"] / r["gc"]["by_generation"][2]
                                        if r["gc"].get("full_candidates") and r["gc"]["by_generation"][2]
                                        else None for r in rs]),
            }
        base = cells.get("builtin")
        for c in cells.values():
            c["ratio"] = [ratio(c["seconds"][g], base["seconds"][g]) if base else None for g in range(3)]
        table[key] = cells
    return table


def markdown_breakdown(table, python=None):
    """Per program and mode: collections and seconds per generation (ratio
    to the built-in's), and for cyclegc's complete collections the mean
    objects per collection and the share left to trial deletion."""
    head = ("| program | mode | runs | gen 0: n, s (ratio) | gen 1: n, s (ratio) | gen 2: n, s (ratio) "
            "| full: objects each | full: left to trial deletion |")
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for (py, program), cells in sorted(table.items()):
        if python and py != python:
            continue
        for mode in MODE_ORDER:
            c = cells.get(mode)
            if not c:
                continue
            gens = " | ".join(f"{_f(c['count'][g], '{:.0f}')}, {_f(c['seconds'][g])} ({_f(c['ratio'][g])})"
                              for g in range(3))
            lines.append(f"| {program} | {mode} | {c['runs']} | {gens} | "
                         f"{_f(c['full_objects'], '{:,.0f}')} | "
                         f"{_f(None if c['trial_share'] is None else 100 * c['trial_share'], '{:.1f} %')} |")
    return "\n".join(lines)


def markdown_phases(table, python=None):
    """cyclegc's collections, per program, mode and generation: seconds in
    each part (marking, split, trial deletion, untracking, disposing of the
    garbage, the rest), as its core timed them."""
    head = "| program | mode | gen | " + " | ".join(PHASES) + " |"
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for (py, program), cells in sorted(table.items()):
        if python and py != python:
            continue
        for mode in MODE_ORDER[1:]:
            c = cells.get(mode)
            if not c or all(c["phases"][n][g] is None for n in PHASES for g in range(3)):
                continue
            for g in range(3):
                lines.append(f"| {program} | {mode} | {g} | "
                             + " | ".join(_f(c["phases"][n][g], "{:.3f}") for n in PHASES) + " |")
    return "\n".join(lines)


def markdown_server(table, python=None):
    """The pre-fork server: throughput and per-worker private memory."""
    head = ("| python | mode | runs | requests/s (spread) | ratio | USS per worker after load, MB (spread) "
            "| USS ratio | GC s (all processes) | longest stop ms | identical |")
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for (py, program), cells in sorted(table.items()):
        if program != "gunicorn" or (python and py != python):
            continue
        for mode in MODE_ORDER:
            c = cells.get(mode)
            if not c:
                continue
            lines.append(
                f"| {py} | {mode} | {c['runs']} | {_f(c['rps'], '{:.0f}')} ({_pct(c['rps_spread'])}) | "
                f"{_f(c['rps_ratio'])} | {_f(c['uss_mb'], '{:.1f}')} ({_pct(c['uss_spread'])}) | "
                f"{_f(c['uss_mb_ratio'])} | {_f(c['gc_s'])} | {_f(c['max_stop_ms'], '{:.1f}')} | "
                f"{'yes' if c['identical'] else 'NO'} |")
    return "\n".join(lines)


def summary_line(table, python):
    """The README's short form: per program, cyclegc plain / pause2 / fork
    wall (or throughput) ratio and whether outputs matched."""
    out = []
    for (py, program), cells in sorted(table.items()):
        if py != python:
            continue
        parts = []
        for mode in MODE_ORDER[1:]:
            c = cells.get(mode)
            if not c:
                continue
            r = c["rps_ratio"] if program == "gunicorn" else c["wall_s_ratio"]
            parts.append(f"{mode} {_f(r)}")
        out.append((program, parts, all(c["identical"] for c in cells.values())))
    return out
