"""Statistics cyclegc keeps beyond what ``gc.get_stats()`` reports.

``gc.get_stats()`` keeps exactly the built-in's keys (the interpreter's own
per-generation counters, which cyclegc updates too).  Here we add what the
built-in throws away: wall duration and candidates (objects examined) per
collection, totals per generation, and a ring of the most recent collections.
Recording is O(1) and happens after the core returns, never inside a
collection.
"""
from collections import deque
import threading

RECENT = 256

_lock = threading.Lock()
_totals = [
    {"collections": 0, "collected": 0, "uncollectable": 0,
     "candidates": 0, "duration": 0.0, "max_duration": 0.0}
    for _ in range(3)
]
_recent = deque(maxlen=RECENT)


def record(generation, collected, uncollectable, candidates, duration, reason):
    with _lock:
        t = _totals[generation]
        t["collections"] += 1
        t["collected"] += collected
        t["uncollectable"] += uncollectable
        t["candidates"] += candidates
        t["duration"] += duration
        if duration > t["max_duration"]:
            t["max_duration"] = duration
        _recent.append((generation, collected, uncollectable, candidates, duration, reason))


def collection_stats():
    """Per-generation totals of cyclegc's own collections, with durations
    (seconds) and candidates, and the last collections' figures (oldest
    first), each a dict with generation, collected, uncollectable,
    candidates, duration and reason."""
    with _lock:
        generations = [dict(t) for t in _totals]
        recent = [
            {"generation": g, "collected": c, "uncollectable": u,
             "candidates": n, "duration": d, "reason": r}
            for g, c, u, n, d, r in _recent
        ]
    return {"generations": generations, "recent": recent}


def reset():
    """Forget cyclegc's own statistics (the interpreter's get_stats() stays)."""
    with _lock:
        for t in _totals:
            for k in t:
                t[k] = 0.0 if isinstance(t[k], float) else 0
        _recent.clear()
