"""cyclegc's gc API against the built-in gc module of the same interpreter:
same names, signatures, return types, errors, and the very same state."""
import gc as builtin_gc
import inspect

import pytest

import cyclegc

PUBLIC_NAMES = sorted(n for n in dir(builtin_gc) if not n.startswith("_"))

BAD_CALLS = [
    ("collect", (3,), {}),
    ("collect", (-1,), {}),
    ("collect", ("x",), {}),
    ("collect", (2.0,), {}),
    ("collect", (2 ** 70,), {}),
    ("collect", (1, 2), {}),
    ("collect", (), {"generation": 5}),
    ("collect", (), {"gen": 1}),
    ("set_threshold", (), {}),
    ("set_threshold", (1, 2, 3, 4), {}),
    ("set_threshold", ("a",), {}),
    ("set_threshold", (2 ** 40,), {}),
    ("set_threshold", (), {"threshold0": 5}),
    ("get_objects", (5,), {}),
    ("get_objects", (-2,), {}),
    ("get_objects", ("x",), {}),
    ("get_objects", (2 ** 70,), {}),
    ("get_objects", (1, 2), {}),
    ("get_objects", (), {"gen": 1}),
    ("set_debug", (), {}),
    ("set_debug", ("x",), {}),
    ("set_debug", (1, 2), {}),
    ("set_debug", (2 ** 40,), {}),
    ("set_debug", (1.5,), {}),
    ("is_tracked", (), {}),
    ("is_finalized", (1, 2), {}),
    ("get_referents", (), {"x": 1}),
    ("get_referrers", (), {"x": 1}),
    ("enable", (1,), {}),
    ("disable", (), {"x": 1}),
    ("isenabled", (1,), {}),
    ("get_count", (1,), {}),
    ("get_threshold", (1,), {}),
    ("get_stats", (1,), {}),
    ("get_debug", (1,), {}),
    ("freeze", (1,), {}),
    ("unfreeze", (1,), {}),
    ("get_freeze_count", (1,), {}),
]


def _outcome(func, args, kwargs):
    try:
        func(*args, **kwargs)
    except Exception as exc:  # the comparison is the point
        return type(exc), str(exc)
    return None


def test_every_public_name_exists():
    missing = [n for n in PUBLIC_NAMES if not hasattr(cyclegc, n)]
    assert missing == []


@pytest.mark.parametrize("name", [n for n in PUBLIC_NAMES if callable(getattr(builtin_gc, n))])
def test_signature_matches_builtin(name):
    def sig(f):
        try:
            return str(inspect.signature(f))
        except ValueError:
            return None
    assert sig(getattr(cyclegc, name)) == sig(getattr(builtin_gc, name))


@pytest.mark.parametrize("name,args,kwargs", BAD_CALLS)
def test_bad_arguments_raise_like_builtin(name, args, kwargs):
    saved = builtin_gc.get_threshold(), builtin_gc.get_debug()
    try:
        expected = _outcome(getattr(builtin_gc, name), args, kwargs)
        got = _outcome(getattr(cyclegc, name), args, kwargs)
    finally:
        builtin_gc.set_threshold(*saved[0])
        builtin_gc.set_debug(saved[1])
    assert expected is not None, "the case must be an error for the built-in"
    assert got == expected


def test_constants_match():
    for name in ("DEBUG_STATS", "DEBUG_COLLECTABLE", "DEBUG_UNCOLLECTABLE",
                 "DEBUG_SAVEALL", "DEBUG_LEAK"):
        assert getattr(cyclegc, name) == getattr(builtin_gc, name)


def test_garbage_and_callbacks_are_the_interpreters_lists():
    assert cyclegc.garbage is builtin_gc.garbage
    assert cyclegc.callbacks is builtin_gc.callbacks


def test_state_is_shared_with_builtin():
    thresholds, enabled, debug = builtin_gc.get_threshold(), builtin_gc.isenabled(), builtin_gc.get_debug()
    try:
        cyclegc.set_threshold(1234, 5, 6)
        assert builtin_gc.get_threshold() == (1234, 5, 6)
        cyclegc.set_threshold(999)
        assert builtin_gc.get_threshold() == (999, 5, 6)
        cyclegc.disable()
        assert not builtin_gc.isenabled() and not cyclegc.isenabled()
        cyclegc.enable()
        assert builtin_gc.isenabled() and cyclegc.isenabled() is True
        cyclegc.set_debug(cyclegc.DEBUG_SAVEALL)
        assert builtin_gc.get_debug() == builtin_gc.DEBUG_SAVEALL
    finally:
        builtin_gc.set_threshold(*thresholds)
        builtin_gc.set_debug(debug)
        (builtin_gc.enable if enabled else builtin_gc.disable)()


def test_return_types():
    assert isinstance(cyclegc.collect(), int)
    assert isinstance(cyclegc.get_count(), tuple) and len(cyclegc.get_count()) == 3
    assert isinstance(cyclegc.get_threshold(), tuple)
    stats = cyclegc.get_stats()
    assert [sorted(d) for d in stats] == [sorted(d) for d in builtin_gc.get_stats()]
    assert isinstance(cyclegc.get_objects(), list)
    assert isinstance(cyclegc.get_freeze_count(), int)
    assert cyclegc.isenabled() in (True, False)


def test_get_stats_is_the_interpreters_counters():
    before = builtin_gc.get_stats()[1]["collections"]
    cyclegc.collect(1)
    assert builtin_gc.get_stats()[1]["collections"] == before + 1


def test_collect_generations_reset_counts_like_builtin():
    cyclegc.collect()
    x = []  # noqa: F841
    cyclegc.collect(0)
    assert cyclegc.get_count()[1:] == (1, 0)
    cyclegc.collect(1)
    assert cyclegc.get_count()[1:] == (0, 1)
    cyclegc.collect(2)
    assert cyclegc.get_count()[1:] == (0, 0)


def test_is_tracked_and_finalized():
    class C:
        def __del__(self):
            pass
    assert not cyclegc.is_tracked(1) and not cyclegc.is_tracked("s")
    assert cyclegc.is_tracked([]) and cyclegc.is_tracked(C())
    c = C()
    assert not cyclegc.is_finalized(c)
    c.self = c
    holder = []
    c.holder = holder

    class R:
        def __del__(self):
            holder.append(self.peer)
    r = R()
    r.peer = c
    c.r = r
    del c, r
    cyclegc.collect()
    (c,) = holder
    assert cyclegc.is_finalized(c)


def test_get_objects_by_generation():
    cyclegc.collect()
    x = [[]]
    assert any(o is x for o in cyclegc.get_objects(0))
    cyclegc.collect(0)
    assert any(o is x for o in cyclegc.get_objects(1))
    assert not any(o is x for o in cyclegc.get_objects(0))
    cyclegc.collect(1)
    assert any(o is x for o in cyclegc.get_objects(2))
    everything = cyclegc.get_objects()
    assert any(o is x for o in everything) and not any(o is everything for o in everything)


def test_referrers_and_referents():
    a = []
    b = [a]
    c = {"k": a}
    refs = cyclegc.get_referrers(a)
    assert any(r is b for r in refs) and any(r is c for r in refs)
    assert cyclegc.get_referents(b) == [a]
    assert set(map(id, cyclegc.get_referents(c))) >= {id(a)}
    assert cyclegc.get_referents(1, "x") == []


def test_freeze_and_unfreeze():
    try:
        cyclegc.freeze()
        assert cyclegc.get_freeze_count() > 0
        assert cyclegc.get_objects(2) == [] or all(
            not cyclegc.is_tracked(o) or True for o in cyclegc.get_objects(2))
        assert cyclegc.get_count()[0] == 0
    finally:
        cyclegc.unfreeze()
    assert cyclegc.get_freeze_count() == 0


def test_collection_stats_records_duration_and_candidates():
    cyclegc.collect()
    last = cyclegc.collection_stats()["recent"][-1]
    assert last["generation"] == 2 and last["reason"] == "manual"
    assert last["candidates"] > 0 and last["duration"] > 0.0
    stats = cyclegc.collection_stats()
    totals = stats["generations"][2]
    assert totals["collections"] >= 1 and totals["duration"] >= last["duration"]
    assert totals["max_duration"] >= last["duration"]
    assert sum(stats["pause_histogram"].values()) == sum(
        g["collections"] for g in stats["generations"])


def test_collection_stats_reset():
    from cyclegc import stats
    cyclegc.collect(0)
    stats.reset()
    after = cyclegc.collection_stats()
    assert after["recent"] == [] and after["pause_histogram"] == {}
    assert all(g["collections"] == 0 for g in after["generations"])
