"""Full collections first mark what is alive from the roots (modules and the
frames executing on every thread), then run trial deletion on the rest.
Marking may only ever keep alive what is alive: these tests compare it with
plain trial deletion and push it through its edge cases."""
import gc as builtin_gc
import threading
import weakref

import pytest

import cyclegc
from cyclegc._core import _cyclegc as core


@pytest.fixture(autouse=True)
def _quiet():
    builtin_gc.disable()
    previous = core._set_marking(True)
    cyclegc.collect()
    yield
    core._set_marking(previous)


class Node:
    pass


def make_cycles(n):
    refs = []
    for i in range(n):
        a, b = Node(), Node()
        a.peer, b.peer, a.data = b, a, [i, (a,)]
        refs.append(weakref.ref(a))
    return refs


def builtin_count(n):
    make_cycles(n)
    return builtin_gc.collect()


@pytest.mark.parametrize("marking", [True, False])
def test_same_garbage_found_with_and_without_marking(marking):
    core._set_marking(marking)
    expected = builtin_count(500)
    live = [Node() for _ in range(1000)]
    for i, node in enumerate(live):
        node.next = live[(i + 1) % len(live)]
        node.tup = (node, {"i": i})
    refs = make_cycles(500)
    assert cyclegc.collect() == expected > 0
    assert all(r() is None for r in refs)
    assert all(live[i].next is live[(i + 1) % 1000] for i in range(1000))
    assert all(n.tup[1]["i"] == i for i, n in enumerate(live))


def test_object_held_only_by_another_threads_frame_survives():
    ready, done = threading.Event(), threading.Event()
    seen = []

    def worker():
        mine = Node()
        mine.self = mine
        mine.payload = [1, 2, 3]
        ready.set()
        done.wait(10)
        seen.append(mine.payload)

    t = threading.Thread(target=worker)
    t.start()
    assert ready.wait(10)
    cyclegc.collect()
    done.set()
    t.join()
    assert seen == [[1, 2, 3]]


def test_running_generator_frame_is_a_root():
    def gen():
        local = Node()
        local.self = local
        local.items = ["x"]
        cyclegc.collect()
        yield local.items
    assert next(gen()) == ["x"]


def test_user_frozen_objects_disable_marking_but_not_collection():
    frozen = Node()
    frozen.child = Node()
    cyclegc.freeze()
    try:
        expected = builtin_count(10)
        refs = make_cycles(10)
        assert cyclegc.collect() == expected > 0
        assert all(r() is None for r in refs)
        assert frozen.child is not None
    finally:
        cyclegc.unfreeze()


def test_wide_heap_beyond_the_mark_stack_is_still_correct():
    expected = builtin_count(100)
    wide = [[i] for i in range(1_100_000)]  # more than the mark stack holds
    refs = make_cycles(100)
    assert cyclegc.collect() == expected > 0
    assert all(r() is None for r in refs)
    assert wide[-1] == [1_099_999] and len(wide) == 1_100_000


def test_atom_containers_are_untracked_by_the_marking_pass():
    holder = {"t": tuple([1, "a", 2.0]), "d": dict(a=1, b="x")}
    holder["d"]["tmp"] = []  # a dict starts tracked only once it held a container
    del holder["d"]["tmp"]
    assert cyclegc.is_tracked(holder["t"]) and cyclegc.is_tracked(holder["d"])
    cyclegc.collect()
    assert not cyclegc.is_tracked(holder["t"])
    assert not cyclegc.is_tracked(holder["d"])
    assert cyclegc.is_tracked(holder)


@pytest.fixture(params=[True, False], ids=["split-walkers", "split-one-walk"])
def split_walkers(request):
    previous = core._set_split_walkers(request.param)
    yield request.param
    core._set_split_walkers(previous)


def test_split_after_marking_keeps_unmarked_live_objects_and_frees_garbage(split_walkers):
    """Marked, unmarked-but-alive and garbage objects interleaved in list
    order: runs of unmarked objects at the head, in the middle and at the
    tail of the list.  The weakrefs of a class's tp_subclasses are alive
    but marking does not reach them (type_traverse does not visit
    tp_subclasses), so they are the unmarked live objects here."""
    expected = builtin_count(500)
    refs = make_cycles(100)            # at the head of the young objects
    live, classes = [], []
    for i in range(300):
        base = type(f"Base{i}", (), {})
        classes.append((base, type(f"Sub{i}", (base,), {})))
        refs += make_cycles(1)
        node = Node()
        node.i, node.d = i, {"i": i}   # dict of atoms: marked, then untracked
        live.append(node)
    refs += make_cycles(100)           # at the tail: 500 cycles in all
    total, marked, unmarked = core._unmarked_sample(10 ** 6)
    ids = {id(o) for o in unmarked}
    assert id(live[0]) not in ids
    assert sum(1 for r in refs if id(r()) in ids) == len(refs)
    del unmarked, ids
    assert cyclegc.collect() == expected > 0
    assert all(r() is None for r in refs)
    assert core._last_trial_candidates() < total - marked + 10_000
    for i, (base, sub) in enumerate(classes):
        assert base.__subclasses__() == [sub]
    assert all(n.i == i and n.d == {"i": i} for i, n in enumerate(live))
    assert not cyclegc.is_tracked(live[5].d) and cyclegc.is_tracked(live[5])
    objs = cyclegc.get_objects()           # the lists are well formed
    assert any(o is live[-1] for o in objs)
    assert cyclegc.collect() == 0


def test_split_untracks_atom_containers(split_walkers):
    holder = {"t": tuple([1, "a", 2.0]), "d": dict(a=1, b="x"), "l": [(1, 2)]}
    holder["d"]["tmp"] = []
    del holder["d"]["tmp"]
    assert cyclegc.is_tracked(holder["t"]) and cyclegc.is_tracked(holder["d"])
    cyclegc.collect()
    assert not cyclegc.is_tracked(holder["t"]) and not cyclegc.is_tracked(holder["d"])
    assert not cyclegc.is_tracked(holder["l"][0])
    assert cyclegc.is_tracked(holder) and cyclegc.is_tracked(holder["l"])


def test_unmarked_sample_names_what_marking_misses():
    a, b = Node(), Node()
    a.peer, b.peer = b, a
    garbage = weakref.ref(a)
    del a, b
    live = Node()
    total, marked, sample = core._unmarked_sample(10 ** 6)
    assert 0 < marked < total
    assert any(o is garbage() for o in sample)
    assert not any(o is live for o in sample)
    del sample
    cyclegc.collect()
    assert garbage() is None
    cyclegc.freeze()
    try:
        assert core._unmarked_sample(10) is None    # frozen objects: no marking
    finally:
        cyclegc.unfreeze()


def test_phase_seconds_grow_with_the_parts_that_ran():
    before = core._phase_seconds()
    junk = [[i] for i in range(50_000)]
    cyclegc.collect()
    del junk
    cyclegc.collect(0)
    after = core._phase_seconds()
    assert set(after) == {"mark", "split", "trial", "untrack", "dispose", "other"}
    assert after["mark"][2] > before["mark"][2] and after["split"][2] > before["split"][2]
    assert after["trial"][0] > before["trial"][0]
    assert after["mark"][0] == before["mark"][0] == 0.0
