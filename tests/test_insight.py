"""cyclegc.insight capture and analysis: each collection's garbage grouped
into cycles with the right shapes, sizes and allocation sites, and freed
exactly as without insight."""
import gc
import random
import sys
import tracemalloc
import weakref

import pytest

import cyclegc
from cyclegc import insight
from cyclegc.insight import analysis
from cyclegc.insight.capture import Session, collect_observed

HERE = __file__


def line_of(marker, path=HERE):
    with open(path) as f:
        for n, text in enumerate(f, 1):
            if text.rstrip().endswith(marker) and "line_of(" not in text:
                return n
    raise LookupError(marker)


class Plain:
    pass


class Slotted:
    __slots__ = ("peer", "__weakref__")


def make_self_lists(n):
    for _ in range(n):
        lst = []; lst.append(lst)                          # SITE-LISTS


def make_plain(n):
    for _ in range(n):
        p = Plain()                                        # SITE-PLAIN
        p.me = p


def make_pairs(n):
    for _ in range(n):
        a = Slotted()                                      # SITE-PAIRS
        b = Slotted()
        a.peer = b
        b.peer = a


def observe(func, *args, frames=4):
    with Session(frames=frames, keep_cycles=True) as session:
        func(*args)
        collect_observed(2, "final")
    return session


def rows(session):
    return {row["line"]: row for row in session.report().sites if row["file"] == HERE}


def test_planted_cycles_are_grouped_by_site_and_shape_with_exact_counts():
    def work():
        make_self_lists(120)
        make_plain(70)
        make_pairs(40)
    report_rows = rows(observe(work))
    lists = report_rows[line_of("# SITE-LISTS")]
    plain = report_rows[line_of("# SITE-PLAIN")]
    pairs = report_rows[line_of("# SITE-PAIRS")]
    assert (lists["cycles"], lists["objects"]) == (120, 120)
    assert lists["shapes"][0]["shape"] == "list -> list"
    assert lists["shapes"][0]["path"] == "list[0] -> list"
    assert (plain["cycles"], plain["objects"]) == (70, 70)     # the __dict__ stays inline
    assert plain["shapes"][0]["shape"] == "Plain -> Plain"
    assert plain["shapes"][0]["path"] == "Plain.me -> Plain"
    assert (pairs["cycles"], pairs["objects"]) == (40, 80)
    assert pairs["shapes"][0]["shape"] == "Slotted -> Slotted -> Slotted"
    assert pairs["shapes"][0]["path"] == "Slotted.peer -> Slotted.peer -> Slotted"
    assert pairs["shapes"][0]["min_size"] == pairs["shapes"][0]["max_size"] == 2
    # ranked by objects
    ranked = [r["line"] for r in cyclegc.insight.reporters.Report.from_session(
        observe(work)).sites if r["file"] == HERE]
    assert ranked == [line_of("# SITE-LISTS"), line_of("# SITE-PAIRS"), line_of("# SITE-PLAIN")]


def test_the_source_line_and_traceback_are_reported():
    row = rows(observe(make_plain, 3))[line_of("# SITE-PLAIN")]
    assert row["source"] == "p = Plain()                                        # SITE-PLAIN"
    assert row["traceback"][0] == f"{HERE}:{line_of('# SITE-PLAIN')}"
    assert len(row["traceback"]) >= 2            # frames=4: the caller too


def test_garbage_is_freed_by_the_same_collection():
    finalized = []

    class Finalized:
        def __del__(self):
            finalized.append(1)

    def work():
        for _ in range(50):
            f = Finalized()
            f.me = f
    weak = []

    def more():
        s = Slotted()
        s.peer = s
        weak.append(weakref.ref(s))

    with Session(frames=1, keep_cycles=True) as session:
        work()
        more()
        before = cyclegc.collect()
        alive = [o for o in gc.get_objects() if type(o) in (Finalized, Slotted)]
    assert before >= 51
    assert alive == []                     # freed before collect() returned
    assert len(finalized) == 50            # finalizers ran once each
    assert weak[0]() is None
    assert sum(g.cycles for r in session.records for g in r.groups) >= 51
    cyclegc.collect()
    assert len(finalized) == 50


def _drop_garbage():
    for o in gc.garbage:
        if hasattr(o, "__dict__"):
            o.__dict__.clear()          # break legacy <-> list, or it comes back
    gc.garbage.clear()


@pytest.fixture
def clean_garbage():
    """Start from an empty gc.garbage: legacy-finalizer objects other tests
    left behind come back to it at every full collection."""
    cyclegc.collect()
    _drop_garbage()
    cyclegc.collect()
    _drop_garbage()


def test_collector_state_is_left_alone(clean_garbage):
    sentinel = object()
    gc.garbage.append(sentinel)
    seen = []

    def user_callback(phase, info):
        seen.append((phase, gc.get_debug(), len(gc.garbage)))
    gc.callbacks.append(user_callback)
    gc.set_debug(gc.DEBUG_UNCOLLECTABLE)
    try:
        with Session(frames=1):
            make_self_lists(30)
            cyclegc.collect()
            assert gc.callbacks[-1] is user_callback
        assert gc.get_debug() == gc.DEBUG_UNCOLLECTABLE
        assert gc.garbage == [sentinel]
        # the user's callback never saw the garbage insight examined
        assert ("stop", gc.DEBUG_UNCOLLECTABLE, 1) in seen
        assert all(n == 1 for _phase, _debug, n in seen)
        assert user_callback in gc.callbacks
        assert not any(isinstance(cb, type(insight.capture._observer)) for cb in gc.callbacks)
    finally:
        gc.set_debug(0)
        gc.callbacks.remove(user_callback)
        gc.garbage.remove(sentinel)


def test_with_the_users_saveall_the_garbage_stays_in_gc_garbage(clean_garbage):
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        with Session(frames=1, keep_cycles=True) as session:
            make_self_lists(10)
            cyclegc.collect()
        saved = [o for o in gc.garbage if type(o) is list and o and o[0] is o]
        assert len(saved) >= 10
        assert sum(g.cycles for r in session.records for g in r.groups
                   if g.shape == "list -> list") >= 10
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def _uncollectable_garbage():
    _testcapi = pytest.importorskip("_testcapi")
    if not hasattr(_testcapi, "with_tp_del"):
        pytest.skip("no _testcapi.with_tp_del")

    class Legacy:
        def __tp_del__(self):
            pass
    Legacy = _testcapi.with_tp_del(Legacy)
    legacy = Legacy()
    held = []
    legacy.held = held
    held.append(legacy)                # legacy <-> list: uncollectable
    other = []
    other.append(other)                # and an ordinary cycle


def test_uncollectable_objects_end_in_gc_garbage_as_without_insight(clean_garbage):
    try:
        cyclegc.collect()
        _uncollectable_garbage()
        cyclegc.collect()
        without = sorted(type(o).__name__ for o in gc.garbage)
        _drop_garbage()
        with Session(frames=1, keep_cycles=True) as session:
            _uncollectable_garbage()
            cyclegc.collect()
        with_insight = sorted(type(o).__name__ for o in gc.garbage)
        assert without == with_insight == ["Legacy"]
        shapes = [g.shape for r in session.records for g in r.groups]
        assert "list -> list" in shapes
        assert session.uncollectable >= 2       # Legacy and all it reaches
    finally:
        _drop_garbage()


def test_the_built_in_collectors_collections_are_seen_too():
    if cyclegc.installed():
        pytest.skip("cyclegc runs the collections")
    builtin_collect = sys.modules["cyclegc.install"]._builtin_gc_module().collect
    assert builtin_collect is not cyclegc.collect
    with Session(frames=1, keep_cycles=True) as session:
        make_self_lists(25)
        builtin_collect()
    cycles = sum(g.cycles for r in session.records for g in r.groups if g.shape == "list -> list")
    assert cycles >= 25
    assert gc.get_debug() == 0 and not gc.garbage


def test_automatic_collections_are_observed():
    installed = cyclegc.install()
    thresholds = gc.get_threshold()
    try:
        gc.set_threshold(100)
        with Session(frames=1, keep_cycles=True) as session:
            make_self_lists(2000)
        young = [r for r in session.records if r.generation == 0]
        assert len(young) >= 5
        assert sum(g.cycles for r in young for g in r.groups) >= 1000
        assert all(r.reason is None for r in session.records)
    finally:
        gc.set_threshold(*thresholds)
        if installed:
            cyclegc.uninstall()


def test_sessions_nest_and_both_see_everything():
    with Session(frames=1, keep_cycles=True) as outer:
        make_self_lists(5)
        with Session(frames=1, keep_cycles=True) as inner:
            make_self_lists(7)
            cyclegc.collect()
        make_self_lists(3)
        cyclegc.collect()
    count = lambda s: sum(g.cycles for r in s.records for g in r.groups if g.shape == "list -> list")
    assert count(inner) == 12
    assert count(outer) == 15


def test_tracemalloc_is_started_on_demand_and_stopped():
    was = tracemalloc.is_tracing()
    if was:
        tracemalloc.stop()
    try:
        with Session(frames=3):
            assert tracemalloc.is_tracing()
            assert tracemalloc.get_traceback_limit() == 3
        assert not tracemalloc.is_tracing()
        tracemalloc.start(2)
        with Session(frames=5):
            assert tracemalloc.get_traceback_limit() == 2
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()
        if was:
            tracemalloc.start()


def test_free_list_objects_allocated_in_a_session_have_sites():
    # Lists reused from the free list (allocated before tracing) would have
    # no site; starting a session empties the free lists.
    keep = [[] for _ in range(200)]
    del keep                               # fill the list free list
    row = rows(observe(make_self_lists, 150))[line_of("# SITE-LISTS")]
    assert row["cycles"] == 150


def test_insight_start_stop_report():
    assert not insight.running()
    insight.start(frames=2)
    try:
        assert insight.running()
        assert insight.start() is insight.start()
        make_pairs(4)
    finally:
        report = insight.stop(collect=True)
    assert not insight.running()
    pairs = [r for r in report.sites if r["file"] == HERE and r["line"] == line_of("# SITE-PAIRS")]
    assert pairs and pairs[0]["cycles"] == 4
    assert insight.report().summary == report.summary
    # the closing collection is counted apart from the program's
    assert report.summary["final"]["collections"] == 1
    assert report.summary["collections"] == len(report.timeline) - 1
    assert report.timeline[-1]["reason"] == "final"


# ---------------------------------------------------------------------------
# analysis

def _brute_sccs(n, succ):
    reach = []
    for v in range(n):
        seen = {v}
        stack = [v]
        while stack:
            for w in succ[stack.pop()]:
                if w not in seen:
                    seen.add(w)
                    stack.append(w)
        reach.append(seen)
    comps = {frozenset(w for w in reach[v] if v in reach[w]) for v in range(n)}
    return comps


@pytest.mark.parametrize("seed", range(25))
def test_tarjan_matches_brute_force(seed):
    rnd = random.Random(seed)
    n = rnd.randint(1, 40)
    succ = [[rnd.randrange(n) for _ in range(rnd.randint(0, 3))] for _ in range(n)]
    comps, comp_of = analysis.tarjan(n, succ)
    assert {frozenset(c) for c in comps} == _brute_sccs(n, succ)
    # reverse topological order: edges go to earlier (or the same) components
    for v in range(n):
        for w in succ[v]:
            assert comp_of[w] <= comp_of[v]


def test_tarjan_is_not_recursive():
    n = 200_000
    succ = [[i + 1] for i in range(n - 1)] + [[0]]
    comps, _ = analysis.tarjan(n, succ)
    assert len(comps) == 1 and len(comps[0]) == n


def test_acyclic_garbage_belongs_to_the_nearest_cycle():
    # cycle A -> x -> cycle B -> y: x is A's, y is B's
    a1, a2, b1, b2 = [], [], [], []
    x, y = {"x": 1}, {"y": 2}
    a1.append(a2); a2.append(a1); a1.append(x)
    x["b"] = b1
    b1.append(b2); b2.append(b1); b2.append(y)
    groups, unattributed = analysis.analyze_garbage([a1, a2, x, b1, b2, y], with_tracebacks=False)
    assert unattributed == 0
    sizes = sorted((g.objects, g.max_size) for g in groups)
    assert sizes == [(6, 2)] or sorted((g.cycles, g.objects) for g in groups) == [(2, 6)]
    # both cycles have the same shape and no site: one group of two
    (group,) = groups
    assert group.cycles == 2 and group.objects == 6 and group.max_size == 2


def test_acyclic_garbage_is_not_taken_from_a_later_cycle():
    class A:
        pass

    class B:
        pass
    a = A(); a.me = a
    d = {}
    a.d = d
    b = B(); b.me = b
    d["b"] = b
    leaf = []
    b.leaf = leaf
    groups, _ = analysis.analyze_garbage([a, d, b, leaf], with_tracebacks=False)
    by_shape = {g.shape: g.objects for g in groups}
    assert by_shape == {"A -> A": 2, "B -> B": 2}


def test_labels():
    class S:
        __slots__ = ("x", "__y")

    class D:
        pass
    target = object()
    s = S()
    s.x = target
    s._S__y = target
    d = D()
    d.attr = target
    assert analysis.label({"k": target}, target) == "['k']"
    assert analysis.label({target: 1}, target) == "<key>"
    assert analysis.label([0, target], target) == "[1]"
    assert analysis.label((target,), target) == "[0]"
    assert analysis.label({target}, target) == "{member}"
    assert analysis.label(s, target) == ".x"
    assert analysis.label(d, target) == ".attr"
    assert analysis.label(d, type(d)) == ".__class__"

    def outer():
        value = target

        def inner():
            return value
        return inner
    fn = outer()
    cell = fn.__closure__[0]
    assert analysis.label(fn, cell) == ".__closure__[0] (value)"
    assert analysis.label(cell, target) == ".cell_contents"
    assert analysis.label(d.__init__, d) == ".__self__"
    frame = sys._getframe()
    assert analysis.label(frame, target) == ".f_locals['target']"
    assert analysis.label(D, D.__dict__["__module__"]) in (".__module__",)
    assert analysis.label([1], target) == "?"


def test_labels_run_no_user_code():
    class Trap(dict):
        def items(self):
            raise AssertionError("user code ran")

        def __eq__(self, other):
            raise AssertionError("user code ran")

        __hash__ = dict.__hash__

    class Prop:
        @property
        def __dict__(self):
            raise AssertionError("user code ran")
    target = object()
    assert analysis.label(Trap(k=target), target) == "['k']"
    assert analysis.label(Prop(), target) == "?"


def test_describe_does_not_call_repr():
    class Loud:
        def __repr__(self):
            raise AssertionError("repr called")
    assert analysis.describe(Loud()).startswith("Loud object at 0x")
    assert analysis.describe([1, 2]) == "list (len 2)"
    assert analysis.describe(sys) == "module sys"
    assert analysis.describe(Loud) == f"class {Loud.__module__}.Loud"


def test_stopping_during_a_collection_leaves_nothing_behind():
    # A finalizer stops the session while the collection is between its
    # "start" and "stop" callbacks (another thread could do the same): the
    # collection must still end with DEBUG_SAVEALL off and gc.garbage clean.
    session = Session(frames=1, keep_cycles=True).start()

    class StopsTheSession:
        def __del__(self):
            session.stop()

    s = StopsTheSession()
    s.me = s
    del s
    cyclegc.collect()
    assert not session.running
    assert gc.get_debug() == 0
    assert gc.garbage == []
    assert not any(type(cb).__name__ == "_Observer" for cb in gc.callbacks)
    assert session.records == []          # stopped before the collection ended
    assert not [o for o in gc.get_objects() if type(o) is StopsTheSession]


def test_the_final_collection_waits_for_another_threads_collection():
    import threading
    import time as _time

    inside, release = threading.Event(), threading.Event()

    class Slow:
        def __del__(self):
            inside.set()
            release.wait(10)            # the GIL is free meanwhile

    def other_thread():
        s = Slow()
        s.me = s
        del s
        cyclegc.collect()

    with Session(frames=1, keep_cycles=True) as session:
        thread = threading.Thread(target=other_thread)
        thread.start()
        assert inside.wait(10)
        threading.Timer(0.2, release.set).start()
        make_self_lists(3)
        start = _time.monotonic()
        collect_observed(2, "final")    # would return 0 at once without waiting
        waited = _time.monotonic() - start
        thread.join()
    assert waited >= 0.1
    reasons = [r.reason for r in session.records]
    assert reasons[-1] == "final" and reasons.count("final") == 1
    final = session.records[-1]
    assert sum(g.cycles for g in final.groups if g.shape == "list -> list") == 3


def test_the_core_garbage_hook_is_used_when_the_core_has_one(monkeypatch):
    # The hook the core may offer (docs/design.md): the observer registers
    # with it, does not turn DEBUG_SAVEALL on for the core's collections,
    # and records what the hook hands over.
    from cyclegc.insight import capture

    calls = []

    class FakeCore:
        def _set_garbage_hook(self, func):
            calls.append(func)
    monkeypatch.setattr(capture, "_core", FakeCore())
    observer = capture._Observer()
    session = Session(tracebacks=False, keep_cycles=True)
    gc.disable()
    observer.subscribe(session)
    try:
        assert calls == [observer.garbage_hook]
        a, b = [], []
        a.append(b)
        b.append(a)
        observer("start", {"generation": 2, "collected": 0, "uncollectable": 0,
                           "duration": 0.0, "candidates": 0})
        assert gc.get_debug() == 0                      # no DEBUG_SAVEALL
        observer.garbage_hook(2, [a, b])
        observer("stop", {"generation": 2, "collected": 2, "uncollectable": 0,
                          "duration": 0.001, "candidates": 10})
        (record,) = session.records
        assert record.duration == 0.001
        assert [(g.shape, g.cycles, g.objects) for g in record.groups] == [("list -> list -> list", 1, 2)]
        # the built-in's collections (no "candidates") still use DEBUG_SAVEALL
        observer("start", {"generation": 0, "collected": 0, "uncollectable": 0})
        assert gc.get_debug() & gc.DEBUG_SAVEALL
        observer("stop", {"generation": 0, "collected": 0, "uncollectable": 0})
        assert gc.get_debug() == 0
    finally:
        observer.unsubscribe(session)
        gc.enable()
    assert calls[-1] is None
    assert observer not in gc.callbacks
