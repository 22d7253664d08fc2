"""Objects whose tp_traverse visits NULL or foreign objects (issue 7, bad
input), with the C test types of tests/c_types/_cyclegc_testtypes.c,
compiled for the running interpreter when the tests start.

- NullVisitor's tp_traverse calls visit(NULL, arg).  The built-in collector
  crashes on it (its visitors dereference the object: SIGSEGV on 3.11-3.13,
  in every collection, full or young, whether the object is garbage or
  not); cyclegc ignores a NULL visit in every collection path, and its
  get_referents raises what the built-in's raises (SystemError from
  PyList_Append(list, NULL)).  Whatever the built-in does with these objects
  runs in a subprocess, so that a crash fails one test, not the run.
- ForeignVisitor's tp_traverse visits objects that no collection has as
  candidates (non-GC ints and strs, untracked tuples and dicts, static
  types, None, a frozen object); RepeatVisitor holds and visits the same
  object several times.  Both are valid, and cyclegc must do exactly what
  the built-in does with them, compared in this process.

Every collection path of cyclegc runs each case: collect() (full, with and
without marking from the roots; generations 0 and 1), fork-friendly full
collections, and bounded-pause rounds.  After each case a new ordinary
cycle must still be collected.
"""
import gc as builtin_gc
import json
import os
import subprocess
import sys
import textwrap
import weakref

import pytest

import cyclegc
from cyclegc._core import _cyclegc as core

from .c_types import build as c_build
from .test_bad_input import assert_still_collects
from .test_incremental import finish_round

# None, () and range are used by everything: their refcounts only stay put
# where they are immortal (3.12+)
IMMORTAL_SINGLETONS = sys.version_info >= (3, 12)

KEPT = None     # case (b): a survivor held by a module global


@pytest.fixture(scope="session")
def tt(tmp_path_factory):
    try:
        return c_build.build(str(tmp_path_factory.mktemp("c_types")))
    except c_build.NoCompiler as exc:
        pytest.skip(f"the C test types cannot be built: {exc}")


@pytest.fixture(autouse=True)
def _case(tt):
    """No automatic (built-in) collection; NULL visits off except where a test
    turns them on (a NullVisitor kept alive by a failure's traceback must not
    crash a later built-in collection); after the case, cyclegc still
    collects a new cycle."""
    global KEPT
    builtin_gc.disable()
    tt.set_null_visits(False)
    cyclegc.collect()
    yield
    tt.set_null_visits(False)
    KEPT = None
    tt.unhide()
    builtin_gc.garbage.clear()
    if builtin_gc.get_freeze_count():
        builtin_gc.unfreeze()

    assert_still_collects(cyclegc.collect)


# ---- the collection paths ------------------------------------------------------------


class Path:
    """One way cyclegc collects.  `gen` is the generation the built-in twin
    collects; objects made for a case are young, and `age()` moves them
    where the path looks for garbage (the old generation, for rounds)."""

    def __init__(self, name):
        self.name = name
        self.gen = {"gen0": 0, "gen1": 1}.get(name, 2)

    def setup(self):
        if self.name == "full-unmarked":
            self.previous = core._set_marking(False)
        elif self.name == "fork-friendly":
            cyclegc.set_fork_friendly(True)
            self.shared = core._set_heap_shared(True)
        elif self.name == "rounds":
            core._set_max_pause(0.002)

    def teardown(self):
        if self.name == "full-unmarked":
            core._set_marking(self.previous)
        elif self.name == "fork-friendly":
            core._set_heap_shared(self.shared)
            cyclegc.set_fork_friendly("auto")
        elif self.name == "rounds":
            core._set_max_pause(0)

    def age(self):
        if self.name == "rounds":
            cyclegc.collect()       # promotes the objects alive now to generation 2

    def collect(self):
        """Runs the path once; returns what it found (collected + uncollectable)."""
        if self.name == "rounds":
            before = cyclegc.incremental_stats()
            finish_round()
            after = cyclegc.incremental_stats()
            return (after["collected"] - before["collected"]
                    + after["uncollectable"] - before["uncollectable"])
        return cyclegc.collect(self.gen)


PATHS = ["full", "full-unmarked", "gen0", "gen1", "fork-friendly", "rounds"]


@pytest.fixture(params=PATHS)
def path(request):
    p = Path(request.param)
    p.setup()
    try:
        yield p
    finally:
        p.teardown()


class NullVisits:
    """NullVisitor visits NULL inside the block."""

    def __init__(self, tt):
        self.tt = tt

    def __enter__(self):
        self.tt.set_null_visits(True)

    def __exit__(self, *exc):
        self.tt.set_null_visits(False)


def builtin_twin(path, make):
    """What the built-in finds when `make()` builds the case's graph out of
    well-behaved types: the count cyclegc must give for the odd graph."""
    holder = make()
    if path.name == "rounds":
        builtin_gc.collect()           # promoted, as Path.age() does
    holder.clear()
    return builtin_gc.collect(path.gen)


def subclass_with_del(base, log):
    class WithDel(base):
        def __del__(self):
            log.append(type(self).__bases__[0].__name__)
    return WithDel


# ---- (a) a cycle through NULL-visiting objects is collected ----------------------------


def make_cycles(Node, WithDel, called):
    """A 2-cycle of plain instances, and a 2-cycle with a finalizer and a
    weakref callback; returns the holder and the weakrefs."""
    a, b = Node(), Node()
    a.ref, b.ref = b, a
    c, d = Node(), WithDel()
    c.ref, d.ref = d, c
    refs = [weakref.ref(x) for x in (a, b, c)] + [weakref.ref(d, lambda r: called.append(1))]
    return [a, b, c, d], refs


def test_null_visiting_cycle_is_collected(tt, path):
    keep, log, called = [], [], []
    TwinWithDel = subclass_with_del(tt.ForeignVisitor, log)
    WithDel = subclass_with_del(tt.NullVisitor, log)

    def twin():
        holder, refs = make_cycles(tt.ForeignVisitor, TwinWithDel, called)
        keep.append(refs)
        return holder

    expected = builtin_twin(path, twin)
    assert expected >= 4 and log == ["ForeignVisitor"] and called == [1]
    del log[:], called[:]
    with NullVisits(tt):
        holder, refs = make_cycles(tt.NullVisitor, WithDel, called)
        path.age()
        holder.clear()
        assert path.collect() == expected
    assert all(r() is None for r in refs)
    assert log == ["NullVisitor"] and called == [1]


# ---- (b) reachable NULL-visiting objects survive intact ---------------------------------


def make_live(Node):
    """A cycle held by a module global and one held only by C code (the
    caller hide()s it): none of it is garbage."""
    global KEPT
    KEPT, other = Node(), Node()
    KEPT.ref, other.ref = other, KEPT
    hidden, partner = Node(), Node()
    hidden.ref, partner.ref = partner, hidden
    return hidden, [weakref.ref(x) for x in (KEPT, other, hidden, partner)]


def test_reachable_null_visitors_survive_intact(tt, path):
    global KEPT
    twin_hidden, _ = make_live(tt.ForeignVisitor)
    tt.hide(twin_hidden)
    del twin_hidden
    expected = builtin_twin(path, list)
    assert expected == 0
    KEPT = None
    tt.unhide()
    assert builtin_gc.collect() == 4

    with NullVisits(tt):
        hidden, refs = make_live(tt.NullVisitor)
        tt.hide(hidden)
        del hidden
        path.age()
        rc_kept = sys.getrefcount(KEPT)
        assert path.collect() == expected
        assert all(r() is not None for r in refs)
        assert sys.getrefcount(KEPT) == rc_kept
        assert KEPT.ref.ref is KEPT and KEPT.ref is refs[1]()
        hidden = tt.unhide()
        assert hidden is refs[2]() and hidden.ref.ref is hidden
        assert cyclegc.is_tracked(hidden) and cyclegc.is_tracked(KEPT)
        # once dropped, they are garbage (young ones were promoted meanwhile)
        KEPT = None
        del hidden
        assert (path.collect() if path.name == "rounds" else cyclegc.collect()) == 4
    assert all(r() is None for r in refs)


# ---- legacy finalizers: what one reaches is kept, NULL visits included ------------------


def test_null_visitor_reached_from_a_legacy_finalizer(tt, path):
    testcapi = pytest.importorskip("_testcapi", reason="_testcapi.with_tp_del makes tp_del objects")

    @testcapi.with_tp_del
    class Legacy:
        def __tp_del__(self):
            pass

    def make(Node):
        legacy, node = Legacy(), Node()
        legacy.partner, node.ref = node, legacy
        return [legacy, node]

    expected = builtin_twin(path, lambda: make(tt.ForeignVisitor))
    twin_garbage = [type(o).__name__ for o in builtin_gc.garbage]
    for o in builtin_gc.garbage:
        o.partner = None
    builtin_gc.garbage.clear()
    assert expected >= 2 and twin_garbage == ["Legacy"]

    with NullVisits(tt):
        holder = make(tt.NullVisitor)
        node_ref = weakref.ref(holder[1])
        path.age()
        holder.clear()
        assert path.collect() == expected
        assert [type(o).__name__ for o in builtin_gc.garbage] == twin_garbage
        legacy = builtin_gc.garbage[0]
        assert legacy.partner is node_ref() and node_ref().ref is legacy
        legacy.partner = None
        builtin_gc.garbage.clear()
        del legacy
    assert node_ref() is None


# ---- (c) foreign objects ----------------------------------------------------------------


def foreign_objects(tt, frozen):
    """label -> object: held and visited by a ForeignVisitor, never a
    candidate of the collections that traverse it."""
    untracked_tuple = tuple([10**30 + 1, "atoms only"])
    cyclegc.collect(0)                 # untracks it (a tuple of atoms)
    objs = {
        "int": 10**40 + 7,
        "str": "foreign " + str(id(tt)),
        "untracked tuple": untracked_tuple,
        "untracked dict": {},
        "static type (ours)": tt.RepeatVisitor,
        "static type (builtin)": range,
        "None": None,
        "empty tuple": (),
    }
    assert not builtin_gc.is_tracked(untracked_tuple) and not builtin_gc.is_tracked(objs["untracked dict"])
    if frozen:
        objs["frozen list"] = [["frozen"]]
        builtin_gc.freeze()
    return objs


def refcounts(objs):
    return {label: sys.getrefcount(o) for label, o in objs.items()
            if IMMORTAL_SINGLETONS or label not in ("None", "empty tuple", "static type (builtin)")}


def make_foreign_cycle(objs):
    def make(Node):
        a, b = Node(), Node()
        a.ref, b.ref = b, a
        a.foreign = tuple(objs.values())
        b.foreign = (objs["str"], objs["str"])
        return [a, b]
    return make


@pytest.mark.parametrize("frozen", [False, True], ids=["unfrozen", "frozen"])
def test_foreign_objects_visited_by_a_cycle(tt, path, frozen):
    objs = foreign_objects(tt, frozen)
    tracked = {label: builtin_gc.is_tracked(o) for label, o in objs.items()}
    make = make_foreign_cycle(objs)
    # warm both collectors up: first-time allocations must not count
    builtin_twin(path, lambda: make(tt.ForeignVisitor))
    holder = make(tt.ForeignVisitor)
    path.age()
    holder.clear()
    path.collect()

    freeze_count = builtin_gc.get_freeze_count()
    before = refcounts(objs)
    expected = builtin_twin(path, lambda: make(tt.ForeignVisitor))
    assert refcounts(objs) == before
    assert expected >= 2
    holder = make(tt.ForeignVisitor)
    refs = [weakref.ref(o) for o in holder]
    path.age()
    holder.clear()
    assert path.collect() == expected
    assert all(r() is None for r in refs)
    assert refcounts(objs) == before
    assert builtin_gc.get_freeze_count() == freeze_count
    for label, o in objs.items():
        assert builtin_gc.is_tracked(o) == cyclegc.is_tracked(o) == tracked[label], label
    if frozen:
        frozen_list = objs["frozen list"]
        assert frozen_list[0] == ["frozen"]
        assert not any(o is frozen_list for o in cyclegc.get_objects())
        assert not any(o is frozen_list for o in builtin_gc.get_objects())


def test_foreign_objects_introspection_like_builtin(tt):
    objs = foreign_objects(tt, frozen=True)
    a = tt.ForeignVisitor()
    a.ref = a
    a.foreign = tuple(objs.values())
    for module in (builtin_gc, cyclegc):
        assert module.is_tracked(a) and not module.is_finalized(a)
        assert any(o is a for o in module.get_objects())
        assert any(o is a for o in module.get_objects(0))
    assert _ids(cyclegc.get_referents(a)) == _ids(builtin_gc.get_referents(a))
    assert _ids(cyclegc.get_referents(a)) == _ids([a, *objs.values()])
    assert _ids(cyclegc.get_referents(a, a)) == _ids(builtin_gc.get_referents(a, a))
    for label in ("int", "str", "untracked tuple", "untracked dict", "static type (ours)",
                  "frozen list"):
        got = {id(r) for r in cyclegc.get_referrers(objs[label])}
        expected = {id(r) for r in builtin_gc.get_referrers(objs[label])}
        assert got == expected and id(a) in got, label
    for label in ("None", "empty tuple", "static type (builtin)"):   # referenced from everywhere
        assert any(r is a for r in cyclegc.get_referrers(objs[label])), label
    a.foreign = ()
    a.ref = None


# ---- the same object visited several times --------------------------------------------


def test_repeated_visits_balance(tt, path):
    global KEPT

    def make():
        r1, r2 = tt.RepeatVisitor(3), tt.RepeatVisitor(2)
        r1.ref, r2.ref = r2, r1
        return [r1, r2]

    expected = builtin_twin(path, make)
    assert expected == 2
    KEPT = tt.RepeatVisitor(4)
    other = tt.RepeatVisitor(5)
    KEPT.ref, other.ref = other, KEPT
    del other
    holder = make()
    refs = [weakref.ref(o) for o in holder]
    path.age()
    holder.clear()
    rc = sys.getrefcount(KEPT), sys.getrefcount(KEPT.ref)
    assert path.collect() == expected
    assert all(r() is None for r in refs)
    assert (sys.getrefcount(KEPT), sys.getrefcount(KEPT.ref)) == rc
    assert KEPT.ref.ref is KEPT and KEPT.times == 4 and KEPT.ref.times == 5
    assert _ids(cyclegc.get_referents(KEPT)) == _ids(builtin_gc.get_referents(KEPT)) == [id(KEPT.ref)] * 4


def _ids(objs):
    return [id(o) for o in objs]


# ---- NULL visits and the introspection API, against the built-in in a subprocess --------

INTROSPECTION = r'''
import gc, json, sys
sys.path.insert(0, sys.argv[1])
import _cyclegc_testtypes as tt
import cyclegc
gc.disable()

target = ["target"]
nv = tt.NullVisitor(); nv.ref = target
class Sub(tt.NullVisitor):
    pass
sub = Sub(); sub.ref = target
plain = [target]
names = {id(nv): "nv", id(sub): "sub", id(plain): "plain", id(target): "target",
         id(Sub): "Sub", id(globals()): "globals"}

def describe(value):
    if isinstance(value, list):
        return [names.get(id(v), type(v).__name__) for v in value]
    return value

cases = {
    "get_referents(nv)": lambda m: m.get_referents(nv),
    "get_referents(sub)": lambda m: m.get_referents(sub),
    "get_referents(plain, nv)": lambda m: m.get_referents(plain, nv),
    "get_referents(plain, 1)": lambda m: m.get_referents(plain, 1),
    "get_referrers(target)": lambda m: m.get_referrers(target),
    "get_referrers(nv)": lambda m: m.get_referrers(nv),
    "is_tracked(nv)": lambda m: m.is_tracked(nv),
    "is_finalized(nv)": lambda m: m.is_finalized(nv),
    "nv in get_objects()": lambda m: any(o is nv for o in m.get_objects()),
    "nv in get_objects(0)": lambda m: any(o is nv for o in m.get_objects(0)),
    "nv in get_objects(2)": lambda m: any(o is nv for o in m.get_objects(2)),
}
for name, call in cases.items():
    for label, module in (("builtin", gc), ("cyclegc", cyclegc)):
        try:
            result = describe(call(module))
            outcome = ["returned", sorted(result) if "referrers" in name else result]
        except BaseException as exc:
            outcome = ["raised", type(exc).__name__, str(exc)]
        print(json.dumps([name, label, outcome]), flush=True)
tt.set_null_visits(False)    # the built-in's collection at exit would crash
'''


def test_null_visits_in_introspection_like_builtin(tt):
    """The built-in runs its part in a subprocess (a crash there fails this
    test only); cyclegc runs there too, after it, on the same objects."""
    proc = subprocess.run(
        [sys.executable, "-c", INTROSPECTION, os.path.dirname(tt.__file__)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"child died ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    results = {}
    for line in proc.stdout.splitlines():
        name, label, outcome = json.loads(line)
        results.setdefault(name, {})[label] = outcome
    assert len(results) == 11
    for name, outcomes in results.items():
        assert outcomes["cyclegc"] == outcomes["builtin"], name
    raised = results["get_referents(nv)"]["builtin"]
    assert raised[:2] == ["raised", "SystemError"] and raised[2].endswith("bad argument to internal function")
    assert results["get_referents(plain, 1)"]["builtin"] == ["returned", ["target"]]
    assert results["get_referrers(target)"]["builtin"] == ["returned", ["globals", "nv", "plain", "sub"]]

    # and here, in this process, cyclegc raises the same
    with NullVisits(tt):
        nv = tt.NullVisitor()
        nv.ref = nv
        with pytest.raises(SystemError) as info:
            cyclegc.get_referents(nv)
        assert str(info.value) == raised[2]
        assert any(r is nv for r in cyclegc.get_referrers(nv))
        assert cyclegc.is_tracked(nv)
        nv.ref = None


BUILTIN_COLLECTS = r'''
import gc, sys
sys.path.insert(0, sys.argv[1])
import _cyclegc_testtypes as tt
gc.disable()
nv = tt.NullVisitor()
nv.ref = nv
if sys.argv[2] == "garbage":
    del nv
print("collecting", flush=True)
gc.collect(int(sys.argv[3]))
print("survived", flush=True)
tt.set_null_visits(False)    # the built-in's collection at exit would crash
'''


@pytest.mark.parametrize("what", ["garbage", "alive"])
@pytest.mark.parametrize("gen", [0, 2])
def test_null_visits_in_collections_builtin_vs_cyclegc(tt, what, gen):
    """Documents the built-in's behaviour (in a subprocess) next to
    cyclegc's: the built-in's collection dereferences the NULL and the
    process dies; cyclegc's collection goes on."""
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", BUILTIN_COLLECTS,
         os.path.dirname(tt.__file__), what, str(gen)],
        capture_output=True, text=True, timeout=120)
    assert "collecting" in proc.stdout, proc.stderr
    builtin_survived = proc.returncode == 0 and "survived" in proc.stdout
    # today's 3.11-3.13 crash; a later CPython may ignore NULL visits too
    assert builtin_survived or (proc.returncode != 0 and "Segmentation fault" in proc.stderr), \
        (proc.returncode, proc.stderr)

    cyclegc.collect()
    with NullVisits(tt):
        nv = tt.NullVisitor()
        nv.ref = nv
        ref = weakref.ref(nv)
        if what == "garbage":
            del nv
        found = cyclegc.collect(gen)
        assert (ref() is None) == (what == "garbage")
        assert found == (1 if what == "garbage" else 0)
        if what == "alive":
            nv.ref = None
