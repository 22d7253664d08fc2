"""why_alive() finds the shortest chain from a root to planted references,
with the right labels, and says so when it stops early; find_cycles()
finds the component through an object."""
import ctypes
import gc
import threading
import time

import pytest

import cyclegc
from cyclegc.insight import alive
from cyclegc.insight.alive import find_cycles, why_alive

MODULE = __name__


class Target:
    pass


class Registry:
    items = []


HOLDER = {}


@pytest.fixture(params=["scan", "index"])
def mode(request, monkeypatch):
    """The time limit for a search that scans the heap with get_referrers,
    or that indexes the heap at once (both generous: a busy machine).
    Tests pass it as a keyword, not as **kwargs: on 3.11 f(x, **kwargs)
    holds an extra reference to x during the call."""
    if request.param == "index":
        monkeypatch.setattr(alive._Referrers, "_index_cost", lambda self: 0.0)
        return 300.0
    return 299.0


@pytest.fixture
def scan():
    return 299.0


def _plant_in_module():
    t = Target()
    HOLDER["pending"] = [0, t]
    return t


def test_module_global_chain(mode):
    t = _plant_in_module()
    try:
        res = why_alive(t, timeout=mode)
        assert res.complete and not res.unreachable
        assert res.indexed == (mode == 300.0)
        assert [c.kind for c in res.chains] == ["module"]
        chain = res.chain
        assert chain.root == f"module {MODULE} (global variables)"
        assert chain.objects[-1] is t
        assert [lbl for lbl, _ in chain.hops()] == [".HOLDER", "['pending']", "[1]"]
        assert chain.depth == 3
        text = str(res)
        assert f"module {MODULE} (global variables)" in text
        assert ".HOLDER" in text and "['pending']" in text and "[1]" in text
        assert len(text.splitlines()) == 5          # headline, root, three hops
    finally:
        HOLDER.clear()


def test_class_attribute_chain(mode):
    t = Target()
    Registry.items.append({"req": t})
    try:
        res = why_alive(t, timeout=mode)
        assert res.chain.kind == "class"
        assert res.chain.root == f"class {MODULE}.Registry"
        assert [lbl for lbl, _ in res.chain.hops()] == [".items", "[0]", "['req']"]
    finally:
        Registry.items.clear()


def test_local_variable_of_another_thread(scan):
    ready, done = threading.Event(), threading.Event()
    box = []

    def worker():
        secret = Target()
        box.append(id(secret))
        ready.set()
        done.wait(10)

    thread = threading.Thread(target=worker, name="holder-thread")
    thread.start()
    try:
        ready.wait(10)
        (t,) = [o for o in gc.get_objects() if type(o) is Target and id(o) == box[0]]
        res = why_alive(t)
        assert res.chain.kind == "frame"
        assert res.chain.depth == 0
        assert "local variable 'secret' of worker()" in res.chain.root
        assert "(thread holder-thread)" in res.chain.root
    finally:
        done.set()
        thread.join()


def test_suspended_generator(scan):
    def gen():
        kept = Target()
        yield kept
    g = gen()
    t = next(g)
    HOLDER["gen"] = g
    del g
    try:
        res = why_alive(t)
        assert res.chain.kind == "module"
        assert [lbl for lbl, _ in res.chain.hops()] == [".HOLDER", "['gen']", ".gi_frame.f_locals['kept']"]
    finally:
        HOLDER.clear()


def test_only_the_callers_variable(scan):
    t = Target()
    res = why_alive(t)
    assert [c.kind for c in res.chains] == ["caller"]
    assert res.chain.root == "local variable 't' of the caller of why_alive()"
    res = why_alive(t, ignore_caller=False)
    assert res.chain.kind == "frame" and "local variable 't' of" in res.chain.root


def test_references_held_by_c_code(mode):
    t = Target()
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(t))
    try:
        res = why_alive(t, timeout=mode)
        assert res.chain.kind == "external"
        assert "held by C code or an untracked object (1 reference not found)" in res.chain.root
    finally:
        ctypes.pythonapi.Py_DecRef(ctypes.py_object(t))
    assert why_alive(t, timeout=mode).chain.kind == "caller"


def test_no_phantom_holders_along_a_chain(mode):
    head = HOLDER["chain"] = []
    cur = head
    for _ in range(30):
        nxt = []
        cur.append(nxt)
        cur = nxt
    t = Target()
    cur.append(t)
    del cur, nxt, head
    try:
        res = why_alive(t, timeout=mode)
        assert [c.kind for c in res.chains] == ["module"]
        assert res.chain.depth == 33
    finally:
        HOLDER.clear()


def test_cyclic_garbage_is_unreachable(scan):
    t = Target()
    t.me = t
    ref = [t]
    del t
    gc.disable()
    try:
        res = why_alive(ref.pop())       # no variable of ours holds it
        assert res.chains == [] and res.unreachable and res.complete
        assert "not reachable from any root: it is cyclic garbage" in str(res)
    finally:
        gc.enable()


def test_depth_limit_gives_a_partial_answer(mode):
    head = HOLDER["deep"] = []
    cur = head
    for _ in range(50):
        nxt = []
        cur.append(nxt)
        cur = nxt
    t = Target()
    cur.append(t)
    del cur, nxt, head
    try:
        res = why_alive(t, max_depth=10, timeout=mode)
        assert not res.complete
        assert res.reason == "depth limit (10 references) reached"
        assert "partial answer: depth limit" in str(res)
        assert res.chain.kind == "caller"
    finally:
        HOLDER.clear()


def test_time_limit_gives_a_partial_answer_quickly():
    t = _plant_in_module()
    try:
        start = time.perf_counter()
        res = why_alive(t, timeout=0.0)
        assert time.perf_counter() - start < 1.0
        assert not res.complete
        assert res.reason.startswith("time limit reached at depth 0")
    finally:
        HOLDER.clear()


def test_search_runs_no_user_code(scan):
    class Hostile:
        def __eq__(self, other):
            raise AssertionError("__eq__ ran")

        def __hash__(self):
            return 1

        def __repr__(self):
            raise AssertionError("__repr__ ran")

        @property
        def attr(self):
            raise AssertionError("property ran")
    t = Hostile()
    HOLDER[Hostile()] = {"x": [t]}
    try:
        res = why_alive(t)
        assert res.chain.kind == "module"
        assert "Hostile object at" in str(res)
    finally:
        HOLDER.clear()


def test_to_dot(scan):
    t = _plant_in_module()
    try:
        dot = why_alive(t).to_dot()
    finally:
        HOLDER.clear()
    assert dot.startswith("digraph why_alive {") and dot.rstrip().endswith("}")
    assert f'label="module {MODULE} (global variables)"' in dot
    assert 'label=".HOLDER"' in dot and "label=\"['pending']\"" in dot and 'label="[1]"' in dot
    assert 'style="bold"' in dot
    assert dot.count("->") == 4


def test_call_with_keyword_arguments_unpacked():
    # 3.11 copies the arguments of f(x, **kwargs) into a C array for the
    # call: that reference is the call's, not an unknown holder
    t = Target()
    options = {"timeout": 299.0}
    res = why_alive(t, **options)
    # the variable, and on 3.11 the call's argument tuple
    assert {c.kind for c in res.chains} == {"caller"}
    assert res.chain.root == "local variable 't' of the caller of why_alive()"


def test_exported_from_the_package():
    assert cyclegc.why_alive is why_alive
    assert cyclegc.find_cycles is find_cycles


# ---------------------------------------------------------------------------
# find_cycles

class Node:
    pass


def test_find_cycles_ring_and_back_reference():
    a, b = Node(), Node()
    a.next, b.prev, b.next = b, a, a
    a.data = [a, 1]
    res = find_cycles(a)
    assert res and res.complete
    assert res.size == 3
    assert {id(o) for o in res.objects} == {id(a), id(b), id(a.data)}
    assert res.shapes() == ["Node.next -> Node.prev -> Node", "Node.data -> list[0] -> Node"]
    edges = {(type(s).__name__, lbl, type(d).__name__) for s, lbl, d in res.edges}
    assert ("Node", ".next", "Node") in edges and ("list", "[0]", "Node") in edges
    assert "strongly connected component of 3 objects" in str(res)
    dot = res.to_dot()
    assert dot.startswith("digraph find_cycles {") and 'label=".prev"' in dot


def test_find_cycles_self_loop_and_none():
    lst = []
    lst.append(lst)
    res = find_cycles(lst)
    assert res.shapes() == ["list[0] -> list"]
    lone = Node()
    lone.x = [1, 2]
    res = find_cycles(lone)
    assert not res and res.cycles == [] and "in no reference cycle" in str(res)
    assert not find_cycles(12345)


def test_find_cycles_leaves_out_the_class_reference():
    n = Node()
    n.handler = print
    assert not find_cycles(n)
    HOLDER["n"] = n
    try:
        # through its class, its module's functions and globals, it is in a
        # cycle; only when asked for
        res = find_cycles(n, include_type_edges=True)
        assert res and res.size > 10
    finally:
        HOLDER.clear()


def test_find_cycles_limits():
    ring = [Node() for _ in range(2000)]
    for x, y in zip(ring, ring[1:] + ring[:1]):
        x.next = y
    res = find_cycles(ring[0], max_objects=100)
    assert not res.complete and res.reason == "object limit (100) reached"
    assert not res
    full = find_cycles(ring[0])
    assert full.complete and full.size == 2000 and len(full.cycles) == 1
    for x in ring:
        del x.next


@pytest.mark.parametrize("enabled", [True, False])
def test_automatic_collection_is_paused_only_during_the_search(enabled, monkeypatch):
    monkeypatch.setattr(alive._Referrers, "_index_cost", lambda self: 0.0)
    seen = []
    real = alive._search

    def spy(*args):
        seen.append(cyclegc.isenabled())
        return real(*args)
    monkeypatch.setattr(alive, "_search", spy)
    (gc.enable if enabled else gc.disable)()
    try:
        t = _plant_in_module()
        why_alive(t, timeout=300.0)
        assert seen == [False]
        assert gc.isenabled() is enabled
    finally:
        HOLDER.clear()
        gc.enable()
