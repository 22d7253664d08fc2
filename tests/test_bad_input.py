"""Bad input everywhere (issue 7): every public gc function of cyclegc, called
with wrong types, out-of-range and huge values and odd objects, and from
inside collections (finalizers and gc.callbacks re-entering the API), behaves
exactly like the built-in gc of the same interpreter (same result, or the
same exception type and message), and the interpreter goes on collecting.

cyclegc shares the interpreter with the built-in module, so every case runs
in this process twice, once per module, from the same starting state, and
the two observations must be equal.  tests/test_api.py's BAD_CALLS already
covers arity errors and the first bad value of each argument; the value
matrix here skips those cases.

Objects whose tp_traverse visits NULL or foreign objects need C types of
our own: tests/test_odd_traverse.py builds them (tests/c_types/).
"""
import gc
import re
import sys
import weakref
from decimal import Decimal
from fractions import Fraction

import pytest

import cyclegc

from .test_api import BAD_CALLS

COLLECTORS = {"builtin": gc, "cyclegc": cyclegc}
_HEX = re.compile(r"0x[0-9a-fA-F]+")


def _mask(text):
    return _HEX.sub("0x?", text)


def assert_still_collects(collect):
    """After an odd case the process goes on: `collect()` still finds and
    frees a new cycle."""
    class Probe:
        pass
    p = Probe()
    p.self = p
    ref = weakref.ref(p)
    del p
    assert collect() >= 1 and ref() is None, "cyclegc no longer collects after the case"


@pytest.fixture(autouse=True)
def _quiet_and_still_collecting():
    """No automatic collection during a case (the built-in's would run with
    the odd thresholds and flags set on purpose); after it, cyclegc must
    still find and free a new cycle."""
    enabled = gc.isenabled()
    gc.disable()
    yield
    gc.garbage.clear()
    if gc.get_freeze_count():
        gc.unfreeze()
    assert_still_collects(lambda: cyclegc.collect(0))
    if enabled:
        gc.enable()


class Saved:
    """Thresholds and debug flags, restored after every single call."""

    def __enter__(self):
        self.state = gc.get_threshold(), gc.get_debug()
        return self

    def __exit__(self, *exc):
        gc.set_threshold(*self.state[0])
        gc.set_debug(self.state[1])
        gc.garbage.clear()


# ---- argument values ------------------------------------------------------------


class Index:
    def __init__(self, value):
        self.value = value

    def __index__(self):
        return self.value

    def __repr__(self):
        return f"Index({self.value!r})"


class IndexRaises:
    def __index__(self):
        raise ZeroDivisionError("no index today")


class IndexNotInt:
    def __index__(self):
        return "2"


class IntOnly:
    """__int__ without __index__: not an integer for the argument parser."""

    def __int__(self):
        return 1


class IntSub(int):
    pass


VALUES = [
    ("-2**64", -2 ** 64), ("-2**63-1", -2 ** 63 - 1), ("-2**63", -2 ** 63),
    ("-2**31-1", -2 ** 31 - 1), ("-2**31", -2 ** 31), ("-1", -1), ("0", 0), ("1", 1), ("2", 2),
    ("3", 3), ("2**31-1", 2 ** 31 - 1), ("2**31", 2 ** 31), ("2**32", 2 ** 32),
    ("2**63-1", 2 ** 63 - 1), ("2**63", 2 ** 63), ("2**64", 2 ** 64), ("10**100", 10 ** 100),
    ("True", True), ("IntSub(1)", IntSub(1)), ("Index(2)", Index(2)), ("Index(-1)", Index(-1)),
    ("Index(2**70)", Index(2 ** 70)), ("IndexRaises", IndexRaises()), ("IndexNotInt", IndexNotInt()),
    ("IntOnly", IntOnly()), ("1.0", 1.0), ("nan", float("nan")), ("inf", float("inf")),
    ("'1'", "1"), ("b'1'", b"1"), ("None", None), ("[]", []), ("1j", 1j),
    ("Decimal(1)", Decimal(1)), ("Fraction(1)", Fraction(1)), ("object()", object()),
]

V = object()    # where the value goes in a call shape
SHAPES = [
    ("collect", (V,), {}),
    ("collect", (), {"generation": V}),
    ("get_objects", (V,), {}),
    ("get_objects", (), {"generation": V}),
    ("set_debug", (V,), {}),
    ("set_debug", (), {"flags": V}),
    ("set_threshold", (V,), {}),
    ("set_threshold", (700, V), {}),
    ("set_threshold", (700, 10, V), {}),
    ("set_threshold", (V, V, V), {}),
]


def _fill(template, value):
    if isinstance(template, dict):
        return {k: (value if v is V else v) for k, v in template.items()}
    return tuple(value if a is V else a for a in template)


def _already_in_test_api(name, args, kwargs):
    return any(name == n and repr(args) == repr(a) and repr(kwargs) == repr(k)
               for n, a, k in BAD_CALLS)


MATRIX = [
    pytest.param(name, _fill(args, value), _fill(kwargs, value),
                 id=f"{name}({', '.join([*(label if a is V else repr(a) for a in args), *(f'{k}={label}' for k in kwargs)])})")
    for name, args, kwargs in SHAPES
    for label, value in VALUES
    if not _already_in_test_api(name, _fill(args, value), _fill(kwargs, value))
]


def _outcome(module, name, args, kwargs):
    with Saved():
        try:
            result = getattr(module, name)(*args, **kwargs)
        except Exception as exc:  # the comparison is the point
            return ("raises", type(exc), str(exc))
        # Success: what the call returned (type) and the state it left.
        return ("returns", type(result), gc.get_threshold(), gc.get_debug())


@pytest.mark.parametrize("name,args,kwargs", MATRIX)
def test_argument_values_like_builtin(name, args, kwargs):
    expected = _outcome(gc, name, args, kwargs)
    got = _outcome(cyclegc, name, args, kwargs)
    assert got == expected


def test_matrix_has_errors_and_successes():
    """The matrix exercises both sides: most values are errors, the in-range
    ones succeed (so an implementation that raised on everything, or on
    nothing, would fail the matrix above)."""
    kinds = [_outcome(gc, *p.values)[0] for p in MATRIX]
    assert kinds.count("raises") > 100 and kinds.count("returns") > 30


def test_huge_thresholds_then_collect():
    for module in (gc, cyclegc):
        with Saved():
            module.set_threshold(2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1)
            assert gc.get_threshold() == (2 ** 31 - 1,) * 3
            junk = [[] for _ in range(1000)]
            for j in junk:
                j.append(j)
            del junk, j
            assert module.collect(0) >= 1000
            module.set_threshold(0, 0, 0)
            assert gc.get_threshold() == (0, 0, 0) and module.collect() >= 0


# ---- odd objects ------------------------------------------------------------------


class Slotted:
    __slots__ = ("a", "b", "__weakref__")


class LyingClass:
    """An instance that claims to be something else, and compares badly."""

    @property
    def __class__(self):
        return int

    def __eq__(self, other):
        raise RuntimeError("no comparisons")

    __hash__ = object.__hash__


class DictWithBadEq(dict):
    def __eq__(self, other):
        raise RuntimeError("no comparisons")

    __hash__ = object.__hash__


def _generator():
    yield 1


def _odd_objects():
    def closure():
        return holder

    holder = []
    half = object.__new__(Slotted)       # slots never set: NULL in the object
    some = Slotted()
    some.a = holder
    try:
        1 / 0
    except ZeroDivisionError as exc:
        error = exc
    gen = _generator()
    next(gen)
    proxy_target = Slotted()
    return {
        "None": None, "int": 1, "big int": 2 ** 200, "str": "text", "bytes": b"x",
        "tuple of atoms": (1, 2), "tuple of lists": ([], []), "empty tuple": (),
        "list": [holder, 1, "x"], "dict": {"k": holder, 1: [2]}, "set": {1, 2},
        "frozenset": frozenset([3]), "type": Slotted, "builtin type": int, "module": sys,
        "frame": sys._getframe(), "code": closure.__code__, "function": closure,
        "cell": closure.__closure__[0], "bound method": holder.append,
        "generator": gen, "exception with traceback": error,
        "traceback": error.__traceback__, "weakref": weakref.ref(some),
        "proxy": weakref.proxy(proxy_target), "slots unset": half, "slots set": some,
        "lying class": LyingClass(), "dict with bad __eq__": DictWithBadEq(a=holder),
        "builtin function": len, "NotImplemented": NotImplemented, "Ellipsis": ...,
        "gc module": gc, "cyclegc module": cyclegc, "range": range(3), "memoryview": memoryview(b"ab"),
    }


ODD = _odd_objects()


def _ids(result):
    return [id(r) for r in result]


@pytest.mark.parametrize("label", sorted(ODD))
def test_introspection_of_odd_objects_like_builtin(label):
    obj = ODD[label]
    for name in ("is_tracked", "is_finalized"):
        assert getattr(cyclegc, name)(obj) == getattr(gc, name)(obj), name
    # get_referents: the same objects in the same order (both run tp_traverse).
    assert _ids(cyclegc.get_referents(obj)) == _ids(gc.get_referents(obj))
    assert _ids(cyclegc.get_referents(obj, obj, 1)) == _ids(gc.get_referents(obj, obj, 1))


def test_get_referrers_of_odd_objects_like_builtin():
    target = ODD["list"][0]       # `holder`, referenced from several odd objects
    expected = {id(r) for r in gc.get_referrers(target)}
    got = {id(r) for r in cyclegc.get_referrers(target)}
    assert got == expected and len(expected) >= 3
    for label in ("None", "int", "lying class", "dict with bad __eq__", "slots unset"):
        obj = ODD[label]
        if label in ("None", "int"):
            continue   # referenced from everywhere: the scans would see each other's sets
        expected = {id(r) for r in gc.get_referrers(obj)}
        got = {id(r) for r in cyclegc.get_referrers(obj)}
        assert got == expected, label


def test_get_referrers_does_not_see_frozen_objects_like_builtin():
    target = []
    frozen_holder = [target]
    gc.freeze()
    live_holder = [target]
    try:
        for module in (gc, cyclegc):
            refs = module.get_referrers(target)
            assert any(r is live_holder for r in refs)
            assert not any(r is frozen_holder for r in refs)
            del refs
    finally:
        gc.unfreeze()


# ---- re-entrancy and failing user code ------------------------------------------


class Events:
    """sys.unraisablehook reports, kept as masked strings."""

    def __init__(self):
        self.unraisable = []

    def hook(self, u):
        obj = u.object
        where = getattr(obj, "__qualname__", None) or type(obj).__name__
        self.unraisable.append((type(u.exc_value).__name__, _mask(str(u.exc_value)),
                                _mask(u.err_msg or ""), _mask(str(where))))


def _run(scenario, module):
    """Run scenario(module, log) on a clean heap; return what it observed."""
    events = Events()
    saved_hook = sys.unraisablehook
    saved_callbacks = list(gc.callbacks)
    log = []
    sys.unraisablehook = events.hook
    gc.collect()
    try:
        with Saved():
            result = scenario(module, log)
            after = {"threshold": gc.get_threshold(), "debug": gc.get_debug(),
                     "garbage": sorted(type(o).__name__ for o in gc.garbage)}
    finally:
        sys.unraisablehook = saved_hook
        gc.callbacks[:] = saved_callbacks
        gc.garbage.clear()
        frozen = gc.get_freeze_count() > 0
        if frozen:
            gc.unfreeze()
        gc.collect()
    return {"result": result, "log": log, "unraisable": events.unraisable, "after": after,
            "frozen": frozen}


def _pair(cls, log, n=2):
    """n objects of cls in one cycle, each holding a list (also garbage);
    returns a weakref to the first."""
    objs = [cls() for _ in range(n)]
    for a, b in zip(objs, objs[1:] + objs[:1]):
        a.peer = b
        a.items = [a]
    ref = weakref.ref(objs[0])
    return ref


class BaseInterrupt(KeyboardInterrupt):
    pass


def _finalizer_class(action):
    class Fin:
        def __del__(self):
            action(self)
    return Fin


def _scenario_del(action):
    """A cycle of two objects whose __del__ runs action(self) with the
    collector under test bound as `C` through the log list."""
    def scenario(C, log):
        def run_action(obj):
            log.append(("del", action(C, obj)))
        ref = _pair(_finalizer_class(run_action), log)
        collected = C.collect()
        return {"collected": collected, "freed": ref() is None}
    return scenario


def _raise(exc):
    def action(C, obj):
        raise exc
    return action


def _safe(f):
    def action(C, obj):
        try:
            return ("ok", f(C, obj))
        except Exception as exc:
            return ("raises", type(exc).__name__, str(exc))
    return action


DEL_ACTIONS = {
    "raises ValueError": _raise(ValueError("boom")),
    "raises KeyboardInterrupt subclass": _raise(BaseInterrupt("stop")),
    "raises SystemExit": _raise(SystemExit(3)),
    "collect()": _safe(lambda C, o: C.collect()),
    "collect(0)": _safe(lambda C, o: C.collect(0)),
    "collect(5)": _safe(lambda C, o: C.collect(5)),
    "get_objects sees self": _safe(lambda C, o: any(x is o for x in C.get_objects())),
    "get_objects(0) type": _safe(lambda C, o: type(C.get_objects(0)).__name__),
    "get_objects(9)": _safe(lambda C, o: C.get_objects(9)),
    "get_referrers of self": _safe(lambda C, o: any(r is o.items for r in C.get_referrers(o))),
    "get_referents of self": _safe(lambda C, o: any(r is o.items for r in C.get_referents(o.__dict__))),
    "set_threshold(0)": _safe(lambda C, o: C.set_threshold(0)),
    "set_threshold(huge)": _safe(lambda C, o: C.set_threshold(2 ** 31 - 1, 5, 5)),
    "set_threshold(bad)": _safe(lambda C, o: C.set_threshold("x")),
    "freeze()": _safe(lambda C, o: (C.freeze(), C.get_freeze_count() > 0)),
    "freeze() and unfreeze()": _safe(lambda C, o: (C.freeze(), C.unfreeze(), C.get_freeze_count())),
    "set_debug(SAVEALL)": _safe(lambda C, o: C.set_debug(gc.DEBUG_SAVEALL)),
    "disable()": _safe(lambda C, o: (C.disable(), C.isenabled())),
    "get_count type": _safe(lambda C, o: type(C.get_count()).__name__),
    "get_stats keys": _safe(lambda C, o: [sorted(s) for s in C.get_stats()]),
    "is_finalized(self)": _safe(lambda C, o: C.is_finalized(o)),
    "is_tracked(self)": _safe(lambda C, o: C.is_tracked(o)),
}


@pytest.mark.parametrize("action", sorted(DEL_ACTIONS))
def test_finalizer_calling_the_api_or_failing_like_builtin(action):
    scenario = _scenario_del(DEL_ACTIONS[action])
    expected = _run(scenario, gc)
    got = _run(scenario, cyclegc)
    assert got == expected
    assert len(expected["log"]) == 2 or expected["unraisable"], "the finalizers must have run"


def _callback_scenario(callback_factory):
    def scenario(C, log):
        cb = callback_factory(C, log)
        gc.callbacks.append(cb)
        x = []
        x.append(x)
        del x
        collected = C.collect()
        if cb in gc.callbacks:
            gc.callbacks.remove(cb)
        return {"collected": collected}
    return scenario


def _recording(body):
    """A gc.callbacks callback: records the built-in's info keys, then body."""
    def factory(C, log):
        def cb(phase, info):
            log.append((phase, info["generation"], info.get("collected"), info.get("uncollectable")))
            out = body(C, phase, info, log, cb)
            if out is not None:
                log.append((phase, "->", out))
        return cb
    return factory


def _call(f):
    def body(C, phase, info, log, cb):
        try:
            return ("ok", f(C, phase))
        except Exception as exc:
            return ("raises", type(exc).__name__, str(exc))
    return body


def _remove_self_add_other(C, phase, info, log, cb):
    if cb in gc.callbacks:
        gc.callbacks.remove(cb)

        def other(phase, info):
            log.append(("other", phase))
        gc.callbacks.append(other)
    return None


def _raise_in(which):
    def body(C, phase, info, log, cb):
        if phase == which:
            raise RuntimeError(f"callback fails at {phase}")
    return body


CALLBACKS = {
    "collect() nested": _recording(_call(lambda C, p: C.collect())),
    "collect(2) nested": _recording(_call(lambda C, p: C.collect(2))),
    "collect(bad) nested": _recording(_call(lambda C, p: C.collect(-7))),
    "get_objects()": _recording(_call(lambda C, p: type(C.get_objects()).__name__)),
    "get_objects(1)": _recording(_call(lambda C, p: type(C.get_objects(1)).__name__)),
    "set_threshold()": _recording(_call(lambda C, p: C.set_threshold(1, 2, 3))),
    "set_threshold(bad)": _recording(_call(lambda C, p: C.set_threshold(2 ** 80))),
    "freeze()": _recording(_call(lambda C, p: (C.freeze(), C.get_freeze_count() > 0))),
    "freeze() then unfreeze()": _recording(_call(lambda C, p: (C.freeze(), C.unfreeze()))),
    "set_debug(SAVEALL) at start": _recording(_call(
        lambda C, p: C.set_debug(gc.DEBUG_SAVEALL) if p == "start" else None)),
    "get_referrers(info)": _recording(_call(lambda C, p: len(C.get_referrers(object())))),
    "disable() enable()": _recording(_call(lambda C, p: (C.disable(), C.enable(), C.isenabled()))),
    "raises at start": _recording(_raise_in("start")),
    "raises at stop": _recording(_raise_in("stop")),
    "removes itself, adds another": _recording(_remove_self_add_other),
    "not callable": lambda C, log: 42,
    "wrong signature": lambda C, log: (lambda: None),
    "raises KeyboardInterrupt subclass": lambda C, log: (
        lambda phase, info: (_ for _ in ()).throw(BaseInterrupt(phase))),
}


@pytest.mark.parametrize("callback", sorted(CALLBACKS))
def test_gc_callbacks_reentering_or_failing_like_builtin(callback):
    scenario = _callback_scenario(CALLBACKS[callback])
    expected = _run(scenario, gc)
    got = _run(scenario, cyclegc)
    assert got == expected
    assert expected["log"] or expected["unraisable"], "the callback must have run"


def test_weakref_callback_raising_and_collecting_like_builtin():
    def scenario(C, log):
        class Node:
            pass

        def callback(ref):
            log.append(("weakref callback", C.collect()))
            raise LookupError("from a weakref callback")
        keep = []
        for _ in range(3):
            n = Node()
            n.self = n
            keep.append(weakref.ref(n, callback))
        del n
        return {"collected": C.collect(), "dead": [r() is None for r in keep]}
    expected = _run(scenario, gc)
    assert len(expected["unraisable"]) == 3 and len(expected["log"]) == 3
    assert _run(scenario, cyclegc) == expected


def test_saveall_set_by_a_finalizer_mid_collection_like_builtin():
    """The garbage of the very collection whose finalizer turned
    DEBUG_SAVEALL on goes where the built-in puts it."""
    def scenario(C, log):
        def action(obj):
            C.set_debug(gc.DEBUG_SAVEALL)
        _pair(_finalizer_class(action), log, n=3)
        return {"collected": C.collect(), "garbage": len(gc.garbage)}
    expected = _run(scenario, gc)
    assert expected["result"]["garbage"] > 0
    assert _run(scenario, cyclegc) == expected


# ---- installed: automatic collections with odd settings and re-entrant callbacks -----


@pytest.fixture
def installed():
    cyclegc.install()
    try:
        yield
    finally:
        cyclegc.uninstall()


def _churn(n):
    refs = []
    for i in range(n):
        x = [i]
        x.append(x)
        if i % 100 == 0:
            refs.append(weakref.ref(Box(x)))
    return refs


class Box:
    def __init__(self, x):
        self.x = x
        x.append(self)


@pytest.mark.parametrize("thresholds", [(1, 1, 1), (2 ** 31 - 1, 10, 10), (0, 0, 0), (5, 0, 2 ** 31 - 1)])
def test_installed_with_odd_thresholds_goes_on(installed, thresholds):
    cyclegc.enable()
    with Saved():
        gc.set_threshold(*thresholds)
        refs = _churn(5000)
        assert gc.get_threshold() == thresholds
    cyclegc.collect()
    assert all(r() is None for r in refs)


def test_installed_callbacks_reentering_during_automatic_collections(installed):
    cyclegc.enable()
    seen = []
    events = Events()
    saved_hook = sys.unraisablehook
    sys.unraisablehook = events.hook

    def cb(phase, info):
        seen.append(phase)
        if phase == "start":
            assert cyclegc.collect() == 0          # nested: a no-op, as the built-in's
            gc.get_objects(0)
            gc.set_threshold(50, 5, 5)
        else:
            gc.freeze()
            gc.unfreeze()
    gc.callbacks.append(cb)
    try:
        refs = _churn(20000)
    finally:
        gc.callbacks.remove(cb)
        sys.unraisablehook = saved_hook
    cyclegc.collect()
    assert seen.count("start") == seen.count("stop") > 10
    assert events.unraisable == []
    assert all(r() is None for r in refs)
