"""Statistics cyclegc keeps beyond what ``gc.get_stats()`` reports.

``gc.get_stats()`` keeps exactly the built-in's keys (the interpreter's own
per-generation counters, which cyclegc updates too).  The core also records,
for every collection it runs, what the built-in throws away: wall duration,
candidates (objects examined), why it ran, and a histogram of durations.
Recording is a few stores in C at the end of a collection (metrics.c): no
allocation, no lock, no Python code.  This module turns a snapshot into
plain Python data.
"""
from ._core import _cyclegc as _core

#: Why a collection ran, as recorded by the core (index = code).
REASONS = ("manual", "auto", "increment", "shutdown")
REASON_CODES = {name: code for code, name in enumerate(REASONS)}


def _reason_name(code):
    return REASONS[code] if 0 <= code < len(REASONS) else str(code)


def collection_stats():
    """cyclegc's own collections: per-generation totals (collections,
    collected, uncollectable, candidates, duration and max_duration in
    seconds), the most recent collections (oldest first; generation,
    reason, collected, uncollectable, candidates, duration) and
    ``pause_histogram``: ``{"<2^i us": count}`` for i = 0..31."""
    totals, recent, histogram = _core.metrics_snapshot()
    keys = ("collections", "collected", "uncollectable", "candidates",
            "duration", "max_duration")
    return {
        "generations": [dict(zip(keys, t)) for t in totals],
        "recent": [
            {"generation": g, "reason": _reason_name(r), "collected": c,
             "uncollectable": u, "candidates": n, "duration": d}
            for g, r, c, u, n, d in recent
        ],
        "pause_histogram": {f"<{1 << i}us": n for i, n in enumerate(histogram) if n},
    }


def reset():
    """Forget cyclegc's own statistics (the interpreter's get_stats() stays)."""
    _core.metrics_reset()
