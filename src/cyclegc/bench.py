"""Side-by-side timing of full collections: cyclegc against the built-in.

Both collectors run alternately in one process on the same live heap, so
drift of a noisy machine hits them alike; figures are medians with min-max.
Used by ``python -m cyclegc bench`` and by the scripts in ``benchmarks/``.
"""
import gc as builtin_gc
import statistics
import time

from . import api


class WithDict:
    def __init__(self, i):
        self.i = i
        self.items = [i]


class Slotted:
    __slots__ = ("a", "b", "c")


def build_heap(n_objects, garbage_fraction=0.0):
    """About `n_objects` tracked objects of mixed shapes: instances with a
    __dict__ and with __slots__, lists, dicts, tuples of containers, sets.
    Returns (live, n_garbage): a fraction of the groups is dropped as cycles."""
    live = []
    n_garbage = 0
    groups = max(1, n_objects // 6)
    for i in range(groups):
        s = Slotted()
        d = WithDict(i)          # instance + its list
        s.a = d
        s.b = {"d": d, "t": (d, d.items)}   # dict + tuple of containers
        s.c = {frozenset((i,)), i}          # set
        if garbage_fraction and (i % 1000) < garbage_fraction * 1000:
            d.back = s               # a cycle, then dropped
            n_garbage += 6
        else:
            live.append(s)
    return live, n_garbage


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def compare_full_collections(n_objects, repeat=7, garbage_fraction=0.0):
    """Median seconds of cyclegc.collect() and gc.collect() on the same heap."""
    was_enabled = builtin_gc.isenabled()
    builtin_gc.disable()
    try:
        times = {"cyclegc": [], "builtin": []}
        live = None
        if not garbage_fraction:
            live, _ = build_heap(n_objects)
            builtin_gc.collect()
        for r in range(repeat):
            order = ("cyclegc", "builtin") if r % 2 == 0 else ("builtin", "cyclegc")
            for name in order:
                if garbage_fraction:
                    live = None
                    builtin_gc.collect()
                    live, _ = build_heap(n_objects, garbage_fraction)
                fn = api.collect if name == "cyclegc" else builtin_gc.collect
                times[name].append(_time(fn))
        tracked = len(builtin_gc.get_objects())
        del live
    finally:
        if was_enabled:
            builtin_gc.enable()
    result = {"objects": tracked}
    for name, ts in times.items():
        result[name] = {"median": statistics.median(ts), "min": min(ts), "max": max(ts)}
    result["ratio"] = result["cyclegc"]["median"] / result["builtin"]["median"]
    return result
