"""why_alive() finds the shortest chain from a root to planted references,
with the right labels, and says so when it stops early; find_cycles()
finds the component through an object."""
import ctypes
import gc
import sys
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
    # b refers to a twice, as .prev and .next: either names the edge (the
    # order of b's attributes is only known from a __dict__, which the
    # query must not create)
    back = {".prev", ".next"}
    first, second = res.shapes()
    assert first in [f"Node.next -> Node{lbl} -> Node" for lbl in back]
    assert second == "Node.data -> list[0] -> Node"
    edges = {(type(s).__name__, lbl, type(d).__name__) for s, lbl, d in res.edges}
    assert ("Node", ".next", "Node") in edges and ("list", "[0]", "Node") in edges
    assert "strongly connected component of 3 objects" in str(res)
    dot = res.to_dot()
    assert dot.startswith("digraph find_cycles {")
    assert any(f'label="{lbl}"' in dot for lbl in back) and 'label=".data"' in dot


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


# ---------------------------------------------------------------------------
# a diagnostic must not change what it observes: on 3.11-3.13 an ordinary
# instance keeps its attributes inline (no dict object) until something asks
# for its __dict__; labelling a reference must not be that something

class Link:
    pass


def _dicts():
    gc.collect()                          # garbage of earlier tests is not the query's
    return sum(1 for o in gc.get_objects() if type(o) is dict)


def _dicts_held_by(objs):
    """Dicts among what the instances refer to: their materialized __dict__
    (3.11/3.12 traverse that instead of the inline values)."""
    return sum(1 for o in objs for r in gc.get_referents(o) if type(r) is dict)


def _warm_up():
    # the first query of a test creates what any query does (frames'
    # f_locals snapshots...): through no instance
    other = _plant_in_module()
    try:
        why_alive(other, timeout=299.0)
        find_cycles(HOLDER)
    finally:
        HOLDER.clear()


def test_why_alive_does_not_materialize_instance_dicts(mode):
    links = [Link() for _ in range(40)]
    for a, b in zip(links, links[1:]):
        a.next = b
    HOLDER["links"] = links[0]
    t = links[-1]
    refs = [[x] for x in links]           # to look at them afterwards, not a chain
    del links, a, b
    try:
        _warm_up()
        HOLDER["links"] = refs[0][0]
        before = _dicts()
        res = why_alive(t, timeout=mode, max_depth=100)
        labels = [lbl for lbl, _ in res.chain.hops()]
        kinds = [c.kind for c in res.chains]
        del res
        assert _dicts() == before
        assert _dicts_held_by(r[0] for r in refs) == 0
        assert kinds == ["module"]
        assert labels == [".HOLDER", "['links']"] + [".next"] * 39
    finally:
        HOLDER.clear()


def test_find_cycles_does_not_materialize_instance_dicts():
    ring = [Link() for _ in range(1000)]
    for x, y in zip(ring, ring[1:] + ring[:1]):
        x.next = y
    _warm_up()
    before = _dicts()
    for _ in range(2):                    # the second query sees the same heap
        res = find_cycles(ring[0])
        assert res.complete and res.size == 1000
        assert {type(o) for o in res.objects} == {Link}
        assert res.shapes() == ["Link.next -> " * 1000 + "Link"]
        assert "component of 1,000 objects (1000 Link)" in str(res)
        assert {lbl for _, lbl, _ in res.edges} == {".next"}
        del res
        assert _dicts() == before
        assert _dicts_held_by(ring) == 0
    for x in ring:
        del x.next


def test_attributes_set_by_methods_and_unknown_code():
    class Request:
        def __init__(self):
            self.callback = self.done

        def done(self):
            pass
    r = Request()
    name = "zq_unnamed_" + str(7)        # a name no code spells out
    setattr(r, name, [r])
    _warm_up()
    before = _dicts()
    res = find_cycles(r)
    shapes = sorted(res.shapes())
    del res
    assert _dicts() == before and _dicts_held_by([r]) == 0
    # the attribute's name is only in the instance's inline values: a
    # neutral label rather than a materialized __dict__
    assert shapes == ["Request.<attribute> -> list[0] -> Request",
                      "Request.callback -> method.__self__ -> Request"]
    r.callback = None


def test_an_existing_instance_dict_keeps_its_labels():
    a, b = Link(), Link()
    a.next, b.next = b, a
    vars(a)                               # the program materialized it
    res = find_cycles(a)
    if sys.version_info < (3, 13):
        # 3.11/3.12 then refer to the attributes through the dict
        assert res.shapes() == ["Link.__dict__ -> dict['next'] -> Link.next -> Link"]
    else:
        assert res.shapes() == ["Link.next -> Link.next -> Link"]
    a.next = b.next = None


def test_labels_create_no_dict_of_functions_exceptions_classes():
    # their __dict__ / __annotations__ getters create an empty dict (an
    # untracked one: invisible to a count of gc.get_objects())
    from cyclegc.insight.analysis import label

    class Failure(Exception):
        pass

    def func():
        pass
    err, mod = Failure(), type(sys)("scratch")
    before = [len(gc.get_referents(o)) for o in (err, func)]
    for src in (err, func, Link, mod):
        assert label(src, object()) == "?"
    assert [len(gc.get_referents(o)) for o in (err, func)] == before
    assert "__annotations__" not in Link.__dict__ and "__annotations__" not in vars(mod)
    err.note = [1]
    assert label(err, err.note) == ".note"     # an existing dict is read
