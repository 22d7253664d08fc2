"""Interpreter exit, and errors in finalizers, with cyclegc installed (issue 3).

Each case runs in a subprocess twice -- with the built-in collector and with
cyclegc.install() -- and the two must behave the same:

* uncollectable garbage left at exit is reported at shutdown as the
  built-in reports it (CPython's test_gc.test_garbage_at_shutdown is the
  model: "ResourceWarning: gc: N uncollectable objects at shutdown", the
  list itself with DEBUG_UNCOLLECTABLE, nothing with DEBUG_SAVEALL), whether
  the garbage was found at shutdown, by an explicit collect() or by an
  automatic collection of cyclegc's;
* exceptions raised by finalizers (KeyboardInterrupt, SystemExit, others)
  and gc.callbacks during an automatic collection reach sys.unraisablehook
  exactly as with the built-in, and the collection finishes: the rest of its
  garbage and later garbage are still collected;
* exiting with cyclegc installed never crashes nor hangs, in the situations
  below (garbage with finalizers, threads still allocating, install() again
  from an atexit handler, failing callbacks, frozen objects, an uncaught
  exception).
"""
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

import cyclegc

PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(cyclegc.__file__)))

try:
    import _testcapi
except ImportError:  # pragma: no cover
    _testcapi = None

PREAMBLE = """\
import sys
MODE = sys.argv[1]
if MODE == "cyclegc":
    import cyclegc
    cyclegc.install()
import gc
"""


def run(code, mode, *args, timeout=60, flags=()):
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONWARNINGS", None)
    try:
        return subprocess.run(
            [sys.executable, *flags, "-c", PREAMBLE + textwrap.dedent(code), mode, *args],
            env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{mode}: did not exit within {timeout} s\n{exc.stdout!r}\n{exc.stderr!r}")


def normalized(text):
    """Addresses differ from run to run."""
    return re.sub(r"0x[0-9a-f]+", "0x...", text)


def both(code, *args, **kw):
    """(built-in result, cyclegc result)"""
    return run(code, "builtin", *args, **kw), run(code, "cyclegc", *args, **kw)


# ---- uncollectable garbage at shutdown ---------------------------------------------

GARBAGE_AT_SHUTDOWN = """
import _testcapi

@_testcapi.with_tp_del
class X:
    def __init__(self, name):
        self.name = name
    def __repr__(self):
        return "<X %r>" % self.name
    def __tp_del__(self):
        pass

# The debug flags first: an automatic collection may find the garbage
# before the step that is meant to (the two processes allocate differently:
# one imported cyclegc), and must report it the same way.
gc.set_debug(eval(sys.argv[2]))
x = X('first')
x.x = x
x.y = X('second')
del x
if sys.argv[3] == "collect":          # found by an explicit collection
    gc.collect()
elif sys.argv[3] == "auto":           # found by an automatic collection
    class C:
        pass
    for _ in range(50000):
        c = C()
        c.c = c
    assert gc.garbage, "no automatic collection found the garbage"
    if MODE == "cyclegc":
        recent = cyclegc.collection_stats()["recent"]
        assert any(r["reason"] == "auto" and r["uncollectable"] for r in recent), recent
"""


@pytest.mark.skipif(_testcapi is None, reason="needs _testcapi")
@pytest.mark.parametrize("found", ["at_shutdown", "collect", "auto"])
@pytest.mark.parametrize("debug", ["0", "gc.DEBUG_UNCOLLECTABLE", "gc.DEBUG_SAVEALL"])
def test_garbage_at_shutdown_reported_like_builtin(debug, found):
    ref, got = both(GARBAGE_AT_SHUTDOWN, debug, found, flags=("-Wd",))
    for res in (ref, got):
        assert res.returncode == 0, res.stderr
        assert res.stdout == ""
    assert normalized(got.stderr) == normalized(ref.stderr)
    # What test_gc.test_garbage_at_shutdown checks of the built-in:
    if debug == "gc.DEBUG_SAVEALL":
        assert "uncollectable objects at shutdown" not in got.stderr
    else:
        assert "ResourceWarning: gc: 2 uncollectable objects at shutdown" in got.stderr
        listed = ("[<X 'first'>, <X 'second'>]" in got.stderr
                  or "[<X 'second'>, <X 'first'>]" in got.stderr)
        assert listed == (debug == "gc.DEBUG_UNCOLLECTABLE"), got.stderr


# ---- exceptions in finalizers and callbacks during automatic collections ------------

FINALIZER_ERRORS = """
import json, weakref
records = []

def hook(u):
    obj = u.object
    records.append([u.exc_type.__name__, str(u.exc_value), u.err_msg,
                    getattr(obj, "__qualname__", type(obj).__name__)])

if sys.argv[2] == "record":
    sys.unraisablehook = hook

class Cell:
    pass

def churn(n):
    for _ in range(n):
        c = Cell()
        c.self = c

class Bad:
    def __init__(self, exc):
        self.exc = exc
    def __del__(self):
        raise self.exc("boom")

def bad_callback(phase, info):
    if phase == "stop" and info["collected"] >= 5:
        raise ValueError("callback boom")

gc.set_threshold(700, 10, 10)
gc.collect()
if MODE == "cyclegc":
    import cyclegc.stats
    cyclegc.stats.reset()            # only what follows: automatic collections
gc.callbacks.append(bad_callback)
results = {}
for exc in (KeyboardInterrupt, SystemExit, ValueError):
    refs = []
    for i in range(5):
        b = Bad(exc)
        b.self = b
        refs.append(weakref.ref(b))
    p = Cell()
    p.self = p
    same_batch = weakref.ref(p)
    del b, p
    churn(3000)                      # automatic collections only
    later = Cell()
    later.self = later
    later_ref = weakref.ref(later)
    del later
    churn(3000)
    results[exc.__name__] = [sum(r() is None for r in refs), same_batch() is None,
                             later_ref() is None]
gc.callbacks.remove(bad_callback)
reasons = None
if MODE == "cyclegc":
    reasons = sorted({r["reason"] for r in cyclegc.collection_stats()["recent"]})
print(json.dumps({"records": records, "results": results, "reasons": reasons}))
"""


def test_finalizer_and_callback_errors_in_automatic_collections_like_builtin():
    ref, got = both(FINALIZER_ERRORS, "record")
    for res in (ref, got):
        assert res.returncode == 0, res.stderr
    ref, got = json.loads(ref.stdout), json.loads(got.stdout)
    # Every collection of cyclegc's here was automatic, and nothing escaped
    # into the code that happened to be running.
    assert got["reasons"] == ["auto"]
    assert got["results"] == ref["results"] == {
        name: [5, True, True] for name in ("KeyboardInterrupt", "SystemExit", "ValueError")}
    assert sorted(got["records"]) == sorted(ref["records"])
    kinds = {tuple(r[:2]) for r in got["records"]}
    assert ("KeyboardInterrupt", "boom") in kinds and ("SystemExit", "boom") in kinds
    assert ("ValueError", "callback boom") in kinds


def test_finalizer_errors_printed_like_builtin():
    """The default sys.unraisablehook output (stderr) is the built-in's."""
    ref, got = both(FINALIZER_ERRORS, "default")
    for res in (ref, got):
        assert res.returncode == 0, res.stderr
    assert "KeyboardInterrupt: boom" in got.stderr
    assert normalized(got.stderr) == normalized(ref.stderr)


# ---- exiting with cyclegc installed --------------------------------------------------

EXIT_CASES = {
    # Cycles with finalizers still alive at exit, some of them printing.
    "finalizers_at_exit": """
        class F:
            def __init__(self, n):
                self.n = n
                self.self = self
            def __del__(self):
                print("del", self.n, flush=True)
        keep = [F(i) for i in range(3)]
        for i in range(3, 6):
            F(i)
        gc.collect()
        print("exit")
    """,
    # A daemon thread allocating cyclic garbage (finalizers included) while
    # the interpreter exits.
    "daemon_thread_allocating": """
        import threading, time
        class F:
            def __del__(self):
                pass
        def churn():
            while True:
                f = F()
                f.self = f
        for _ in range(2):
            threading.Thread(target=churn, daemon=True).start()
        time.sleep(0.2)
        print("exit")
    """,
    # A non-daemon thread still allocating at exit: joined before atexit.
    "thread_allocating_at_exit": """
        import threading, time
        class C:
            pass
        def churn():
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                c = C()
                c.self = c
            sys.stdout.write("thread done\n")   # one write: print() writes the
            sys.stdout.flush()                    # newline apart, and lines interleaved
        threading.Thread(target=churn).start()
        sys.stdout.write("exit\n")
    """,
    # install() again from an atexit handler that runs after cyclegc's own
    # uninstall(): cyclegc stays installed through finalization.
    "install_from_atexit": """
        import atexit
        def late():
            import cyclegc
            cyclegc.install()
            class C:
                pass
            for _ in range(20000):
                c = C()
                c.self = c
            print("late", cyclegc.installed(), flush=True)
        atexit.register(late)
        if MODE == "cyclegc":
            # install()'s own atexit uninstall() must run before late().
            atexit.unregister(cyclegc.uninstall)
            atexit.register(cyclegc.uninstall)
        print("exit")
    """,
    # gc.callbacks that raise, and frozen objects, at exit.
    "failing_callbacks_and_frozen": """
        def cb(phase, info):
            raise RuntimeError("callback at exit")
        class C:
            pass
        frozen = []
        for i in range(100):
            c = C()
            c.self = c
            frozen.append(c)
        gc.freeze()
        gc.callbacks.append(cb)
        print("exit")
    """,
    # An uncaught exception in the main module.
    "uncaught_exception": """
        class C:
            pass
        for _ in range(10000):
            c = C()
            c.self = c
        raise RuntimeError("uncaught")
    """,
}


@pytest.mark.parametrize("case", sorted(EXIT_CASES))
def test_exit_with_cyclegc_installed(case):
    ref, got = both(EXIT_CASES[case], timeout=60)
    assert got.returncode == ref.returncode, (got.stderr, ref.stderr)
    for text in (got.stderr, ref.stderr):
        assert "Fatal Python error" not in text and "Segmentation fault" not in text, text
    assert sorted(got.stdout.splitlines()) == sorted(ref.stdout.splitlines())
    # Tracebacks and unraisable reports read the same.
    assert normalized(got.stderr) == normalized(ref.stderr)
