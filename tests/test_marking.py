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
