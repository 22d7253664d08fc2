"""cyclegc.metrics: the counters and pause histogram the core keeps.

The core records every collection it runs (explicit ``collect()`` calls and,
once :func:`cyclegc.install` is on, the automatic ones) in C, at the end of
the collection, without allocating or locking (metrics.c).  This module reads
them on demand: nothing here runs at collection time and no ``gc.callbacks``
entry is added, so reading metrics costs nothing until something reads them.

    >>> import cyclegc.metrics as m
    >>> snap = m.snapshot()
    >>> snap.generations[2].collections, snap.histogram.quantile(0.99)
    >>> print(m.exposition())          # Prometheus text format, no dependency

:mod:`cyclegc.prometheus` exposes the same families to ``prometheus_client``.
Collections run by the built-in collector (before ``install()``, or after
``uninstall()``) are not in these figures; ``gc.get_stats()`` counts both.
"""
import math
from typing import NamedTuple

from . import api as _api
from ._core import _cyclegc as _core
from .stats import REASONS, reset

__all__ = ["snapshot", "families", "exposition", "reset", "Snapshot",
           "GenerationCounters", "PauseHistogram", "Collection", "BUCKET_BOUNDS"]

#: Upper bounds (seconds) of the core's pause histogram: bucket i counts the
#: pauses shorter than 2**i microseconds (and not shorter than 2**(i-1)); the
#: last bucket takes everything longer.
BUCKET_BOUNDS = tuple((1 << i) * 1e-6 for i in range(31)) + (math.inf,)


class GenerationCounters(NamedTuple):
    collections: int
    collected: int           # objects freed
    uncollectable: int       # objects put in gc.garbage
    examined: int            # objects examined (the core's "candidates")
    pause_seconds: float     # total duration of the collections
    max_pause_seconds: float


class Collection(NamedTuple):
    generation: int
    reason: str              # "manual", "auto", "increment", "shutdown"
    collected: int
    uncollectable: int
    examined: int
    pause_seconds: float


class PauseHistogram(NamedTuple):
    bounds: tuple            # upper bounds in seconds (BUCKET_BOUNDS)
    counts: tuple            # collections per bucket (not cumulative)
    sum: float               # total seconds of all collections

    @property
    def count(self):
        return sum(self.counts)

    def cumulative(self):
        """[(upper bound, collections at most that long)], Prometheus style."""
        out, total = [], 0
        for bound, n in zip(self.bounds, self.counts):
            total += n
            out.append((bound, total))
        return out

    def quantile(self, q):
        """Upper bound (seconds) of the bucket holding the q-quantile pause,
        or 0.0 with no collection yet."""
        if not 0 <= q <= 1:
            raise ValueError("q must be between 0 and 1")
        total = self.count
        if total == 0:
            return 0.0
        rank = q * total
        for bound, cum in self.cumulative():
            if cum >= rank and cum > 0:
                return bound
        return self.bounds[-1]  # pragma: no cover


class Snapshot(NamedTuple):
    generations: tuple       # GenerationCounters per generation
    histogram: PauseHistogram
    recent: tuple            # the last collections (up to 256), oldest first

    @property
    def collections(self):
        return sum(g.collections for g in self.generations)

    @property
    def collected(self):
        return sum(g.collected for g in self.generations)

    @property
    def pause_seconds(self):
        return sum(g.pause_seconds for g in self.generations)


def snapshot():
    """All of the core's figures, read at once (consistent with each other)."""
    totals, recent, histogram = _core.metrics_snapshot()
    gens = tuple(GenerationCounters(*t) for t in totals)
    hist = PauseHistogram(BUCKET_BOUNDS, tuple(histogram), sum(g.pause_seconds for g in gens))
    rec = tuple(Collection(g, REASONS[r] if 0 <= r < len(REASONS) else str(r), c, u, n, d)
                for g, r, c, u, n, d in recent)
    return Snapshot(gens, hist, rec)


# --------------------------------------------------------------------------
# metric families, shared by exposition() and cyclegc.prometheus

def families(snap=None, prefix="cyclegc"):
    """The metric families: [(name, type, help, samples)], samples being
    (sample name, labels dict, value).  Counter names carry no ``_total``
    (their samples do), as in prometheus_client."""
    if snap is None:
        snap = snapshot()
    gens = [str(g) for g in range(len(snap.generations))]

    def per_gen(attr):
        return [("", {"generation": g}, getattr(c, attr)) for g, c in zip(gens, snap.generations)]

    out = [
        (f"{prefix}_collections", "counter", "Collections run by cyclegc.", per_gen("collections")),
        (f"{prefix}_collected_objects", "counter", "Objects freed by cyclegc's collections.",
         per_gen("collected")),
        (f"{prefix}_uncollectable_objects", "counter",
         "Objects cyclegc's collections found uncollectable (gc.garbage).", per_gen("uncollectable")),
        (f"{prefix}_examined_objects", "counter", "Objects examined by cyclegc's collections.",
         per_gen("examined")),
        (f"{prefix}_collection_seconds", "counter", "Time spent in cyclegc's collections.",
         per_gen("pause_seconds")),
        (f"{prefix}_max_pause_seconds", "gauge", "Longest collection pause.", per_gen("max_pause_seconds")),
    ]
    hist = snap.histogram
    samples = []
    for bound, cum in hist.cumulative():
        samples.append(("_bucket", {"le": _le(bound)}, cum))
    samples.append(("_count", {}, hist.count))
    samples.append(("_sum", {}, hist.sum))
    out.append((f"{prefix}_pause_seconds", "histogram", "Pauses of cyclegc's collections.", samples))
    counts = _api.get_count()
    thresholds = _api.get_threshold()
    out += [
        (f"{prefix}_installed", "gauge", "1 if cyclegc runs the automatic collections.",
         [("", {}, 1 if _installed() else 0)]),
        (f"{prefix}_enabled", "gauge", "1 if automatic collection is enabled.",
         [("", {}, 1 if _api.isenabled() else 0)]),
        (f"{prefix}_allocation_count", "gauge",
         "Allocation count of each generation (gc.get_count()).",
         [("", {"generation": str(g)}, v) for g, v in enumerate(counts)]),
        (f"{prefix}_threshold", "gauge", "Collection threshold of each generation.",
         [("", {"generation": str(g)}, v) for g, v in enumerate(thresholds)]),
        (f"{prefix}_frozen_objects", "gauge", "Objects in the permanent generation (gc.freeze()).",
         [("", {}, _api.get_freeze_count())]),
    ]
    return out


def _installed():
    from .install import installed
    return installed()


def _le(bound):
    return "+Inf" if bound == math.inf else repr(float(bound))


def _fmt_value(v):
    if isinstance(v, float):
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        return repr(v)
    return str(v)


def exposition(prefix="cyclegc"):
    """The metrics in the Prometheus text exposition format (0.0.4), for
    serving without prometheus_client."""
    lines = []
    for name, kind, doc, samples in families(prefix=prefix):
        if kind == "counter":
            name += "_total"        # as prometheus_client writes counters
        lines.append(f"# HELP {name} {doc}")
        lines.append(f"# TYPE {name} {kind}")
        for suffix, labels, value in samples:
            sample = name + suffix
            if labels:
                inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
                sample += "{" + inner + "}"
            lines.append(f"{sample} {_fmt_value(value)}")
    return "\n".join(lines) + "\n"
