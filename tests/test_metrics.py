"""cyclegc.metrics (the core's counters and pause histogram, read on demand)
and cyclegc.prometheus.CycleGCCollector (built at scrape time)."""
import gc
import math
import re

import pytest

import cyclegc
from cyclegc import metrics


def leak(n):
    for _ in range(n):
        lst = []
        lst.append(lst)


@pytest.fixture(autouse=True)
def _not_installed():
    if cyclegc.installed():   # pragma: no cover - another test left it on
        cyclegc.uninstall()


def bucket_of(seconds):
    us = seconds * 1e6
    i = 0
    while i < 31 and us >= (1 << i):
        i += 1
    return i


def test_snapshot_counts_each_collection():
    before = metrics.snapshot()
    leak(25)
    found = cyclegc.collect()
    cyclegc.collect(0)
    after = metrics.snapshot()
    g2 = after.generations[2]
    b2 = before.generations[2]
    assert g2.collections - b2.collections == 1
    assert g2.collected - b2.collected == found >= 25
    assert g2.examined > b2.examined
    assert after.generations[0].collections - before.generations[0].collections == 1
    assert after.collections - before.collections == 2
    assert after.histogram.count - before.histogram.count == 2
    assert after.histogram.sum == pytest.approx(after.pause_seconds)
    assert g2.max_pause_seconds >= after.recent[-2].pause_seconds
    # the two last collections, oldest first, in the right buckets
    full, young = after.recent[-2:]
    assert (full.generation, full.reason, full.collected) == (2, "manual", found)
    assert (young.generation, young.reason) == (0, "manual")
    added = [a - b for a, b in zip(after.histogram.counts, before.histogram.counts)]
    expected = [0] * 32
    expected[bucket_of(full.pause_seconds)] += 1
    expected[bucket_of(young.pause_seconds)] += 1
    assert added == expected


def test_histogram_helpers():
    h = metrics.PauseHistogram(metrics.BUCKET_BOUNDS, tuple([0] * 3 + [5, 0, 4, 1] + [0] * 25), 1.0)
    assert h.count == 10
    cum = h.cumulative()
    assert len(cum) == 32 and cum[-1] == (math.inf, 10)
    assert [c for _b, c in cum][:8] == [0, 0, 0, 5, 5, 9, 10, 10]
    assert all(x <= y for (_a, x), (_b, y) in zip(cum, cum[1:]))
    assert h.quantile(0.5) == 8e-6
    assert h.quantile(0.9) == 32e-6
    assert h.quantile(1.0) == 64e-6
    assert metrics.PauseHistogram(metrics.BUCKET_BOUNDS, (0,) * 32, 0.0).quantile(0.99) == 0.0
    with pytest.raises(ValueError):
        h.quantile(1.5)
    assert metrics.BUCKET_BOUNDS[0] == 1e-6 and metrics.BUCKET_BOUNDS[30] == (1 << 30) * 1e-6


def test_reset():
    cyclegc.collect()
    metrics.reset()
    snap = metrics.snapshot()
    assert snap.collections == 0 and snap.histogram.count == 0 and snap.recent == ()


def test_reading_metrics_adds_no_callback():
    callbacks = list(gc.callbacks)
    metrics.snapshot()
    metrics.exposition()
    assert gc.callbacks == callbacks


def _parse_exposition(text):
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"# (HELP|TYPE) cyclegc_\w+ ", line), line
            continue
        m = re.match(r'^(cyclegc_\w+)(\{[^}]*\})? (\S+)$', line)
        assert m, line
        labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def test_exposition_text():
    cyclegc.collect()
    snap = metrics.snapshot()
    samples = _parse_exposition(metrics.exposition())
    for g in range(3):
        key = ("cyclegc_collections_total", (("generation", str(g)),))
        assert samples[key] == snap.generations[g].collections
    count = samples[("cyclegc_pause_seconds_count", ())]
    assert count == snap.histogram.count
    assert samples[("cyclegc_pause_seconds_bucket", (("le", "+Inf"),))] == count
    assert samples[("cyclegc_pause_seconds_bucket", (("le", "1e-06"),))] <= count
    assert samples[("cyclegc_installed", ())] == 0
    assert samples[("cyclegc_threshold", (("generation", "0"),))] == gc.get_threshold()[0]
    text = metrics.exposition()
    assert "# TYPE cyclegc_collections_total counter" in text
    assert "# TYPE cyclegc_pause_seconds histogram" in text
    assert text.endswith("\n")


# ---------------------------------------------------------------------------
# prometheus_client

@pytest.fixture
def prometheus():
    return pytest.importorskip("prometheus_client")


def test_collector_builds_families_at_scrape_time(prometheus):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from cyclegc.prometheus import CycleGCCollector

    callbacks = list(gc.callbacks)
    registry = CollectorRegistry()
    CycleGCCollector(registry)
    assert gc.callbacks == callbacks
    value = lambda name, **labels: registry.get_sample_value(name, labels)  # noqa: E731
    before = value("cyclegc_collections_total", generation="2")
    leak(10)
    cyclegc.collect()
    assert value("cyclegc_collections_total", generation="2") == before + 1
    snap = metrics.snapshot()
    assert value("cyclegc_collected_objects_total", generation="2") == snap.generations[2].collected
    assert value("cyclegc_pause_seconds_count") == snap.histogram.count
    assert value("cyclegc_pause_seconds_sum") == pytest.approx(snap.histogram.sum)
    assert value("cyclegc_pause_seconds_bucket", le="+Inf") == snap.histogram.count
    assert value("cyclegc_enabled") == (1.0 if gc.isenabled() else 0.0)
    # the same samples as the dependency-free exposition
    theirs = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            theirs[(s.name, tuple(sorted(s.labels.items())))] = s.value
    ours = {}
    for fam in text_string_to_metric_families(metrics.exposition()):
        for s in fam.samples:
            ours[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert set(theirs) == set(ours)
    timing = {"cyclegc_collection_seconds_total", "cyclegc_max_pause_seconds", "cyclegc_pause_seconds_sum"}
    for key, v in ours.items():
        if key[0] not in timing and not key[0].startswith("cyclegc_allocation_count"):
            assert theirs[key] == v, key


def test_describe_reads_no_metrics(prometheus):
    from cyclegc.prometheus import CycleGCCollector

    collector = CycleGCCollector()
    names = {f.name for f in collector.describe()}
    assert {"cyclegc_collections", "cyclegc_pause_seconds", "cyclegc_installed"} <= names
    assert all(not f.samples for f in collector.describe())


def test_register_into_the_default_registry(prometheus):
    from prometheus_client import REGISTRY

    from cyclegc.prometheus import CycleGCCollector

    collector = CycleGCCollector.register(prefix="cyclegc_test")
    try:
        assert REGISTRY.get_sample_value("cyclegc_test_installed") == 0.0
    finally:
        REGISTRY.unregister(collector)
