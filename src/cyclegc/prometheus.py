"""cyclegc metrics for prometheus_client (the ``prometheus`` extra).

    from prometheus_client import start_http_server
    from cyclegc.prometheus import CycleGCCollector

    CycleGCCollector.register()        # into prometheus_client's default REGISTRY
    start_http_server(8000)

:class:`CycleGCCollector` is a custom collector: at each scrape its
``collect()`` reads the core's counters and pause histogram once
(:func:`cyclegc.metrics.snapshot`) and yields metric families built from
them.  Nothing runs between scrapes: no ``gc.callbacks`` entry, no thread.

Families (``cyclegc_`` prefix by default): ``collections_total``,
``collected_objects_total``, ``uncollectable_objects_total``,
``examined_objects_total``, ``collection_seconds_total``,
``max_pause_seconds`` (per ``generation``), the ``pause_seconds``
histogram (buckets at powers of two microseconds), and the gauges
``installed``, ``enabled``, ``allocation_count`` and ``threshold`` (per
generation) and ``frozen_objects``.  prometheus_client's own ``python_gc_*``
metrics (from ``gc.get_stats()``) can stay registered alongside.
"""
from prometheus_client.core import (
    REGISTRY,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from . import metrics as _metrics

__all__ = ["CycleGCCollector"]


class CycleGCCollector:
    """A prometheus_client collector of cyclegc's metrics.  With
    `registry`, registers itself there."""

    def __init__(self, registry=None, prefix="cyclegc"):
        self.prefix = prefix
        if registry is not None:
            registry.register(self)

    @classmethod
    def register(cls, registry=REGISTRY, prefix="cyclegc"):
        """Create a collector and register it (default: the global REGISTRY)."""
        return cls(registry, prefix)

    def describe(self):
        """The families without samples: lets a registry check names
        without reading the metrics."""
        return list(self._families(None))

    def collect(self):
        return self._families(_metrics.snapshot())

    def _families(self, snap):
        described = _metrics.families(snap or _metrics.snapshot(), prefix=self.prefix)
        for name, kind, doc, samples in described:
            if kind == "histogram":
                fam = HistogramMetricFamily(name, doc, labels=())
                if snap is not None:
                    buckets = [(labels["le"], value) for suffix, labels, value in samples
                               if suffix == "_bucket"]
                    total = next(v for s, _l, v in samples if s == "_sum")
                    fam.add_metric([], buckets, total)
                yield fam
                continue
            label_names = sorted({k for _s, labels, _v in samples for k in labels})
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            fam = cls(name, doc, labels=label_names)
            if snap is not None:
                for _suffix, labels, value in samples:
                    fam.add_metric([labels[k] for k in label_names], value)
            yield fam
