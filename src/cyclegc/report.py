"""Summaries of a program's collections, for ``python -m cyclegc run``:
computing the figures, and printing them as text or side by side."""
import json


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


ROWS = [
    ("collections (gen 0/1/2)", lambda f: "/".join(map(str, f["collections"]))),
    ("pause total", lambda f: f"{f['pause_total_s'] * 1e3:.1f} ms"),
    ("pause p50", lambda f: f"{f['pause_p50_ms']:.3f} ms"),
    ("pause p99", lambda f: f"{f['pause_p99_ms']:.3f} ms"),
    ("pause max", lambda f: f"{f['pause_max_ms']:.3f} ms"),
    ("time in GC", lambda f: f"{f['gc_share']:.1%} of {f['wall_s']:.2f} s"),
    ("objects collected", lambda f: str(f["collected"])),
    ("uncollectable", lambda f: str(f["uncollectable"])),
]


def text(figures):
    lines = [f"cyclegc run summary ({figures['collector']} collector)"]
    lines += [f"  {name:<24} {fmt(figures)}" for name, fmt in ROWS]
    return "\n".join(lines)


def side_by_side(builtin, cyclegc):
    width = 26
    lines = [f"  {'':<24} {'built-in':>{width}} {'cyclegc':>{width}}"]
    lines += [f"  {name:<24} {fmt(builtin):>{width}} {fmt(cyclegc):>{width}}"
              for name, fmt in ROWS]
    return "\n".join(["cyclegc run --compare"] + lines)


def write_json(path, figures):
    with open(path, "w") as f:
        json.dump(figures, f, indent=2)
