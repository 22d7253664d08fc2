"""The automatic-collection trigger (src/cyclegc/_core/trigger.c): with
cyclegc installed, automatic collections run exactly where the built-in's
run -- the same allocation makes them due, the same point runs them.

Each program of tests/programs/collection_points.py runs twice in a fresh
interpreter, once with the built-in collector and once with cyclegc
installed; a gc.callbacks entry records, at each collection, the generation,
the running frame's function, line and instruction offset, the thread and
gc.get_count().  The two sequences must be identical, entry by entry.  Then
CPython's own tests that noticed the difference, from the running
interpreter's standard library, unmodified.
"""
import gc
import json
import os
import platform
import subprocess
import sys

import pytest

import cyclegc
from cyclegc.install import trigger_stats

HERE = os.path.dirname(os.path.abspath(__file__))
POINTS = os.path.join(HERE, "programs", "collection_points.py")
PROGRAMS = ["instances", "containers", "generators", "from_c", "python_new",
            "exceptions", "thread"]


def record(mode, program):
    out = subprocess.run([sys.executable, POINTS, mode, program], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("program", PROGRAMS)
def test_collections_run_where_the_builtin_runs_them(program):
    builtin = record("builtin", program)
    ours = record("cyclegc", program)
    assert len(builtin) > 0, "the program must make the built-in collect"
    for i, (b, o) in enumerate(zip(builtin, ours)):
        assert o == b, (f"collection {i}: built-in ran it at {b}, cyclegc at {o}")
    assert len(ours) == len(builtin)


def run_python(code, *args, timeout=120):
    """`code` in a fresh interpreter; it must succeed."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def run_cpython_test(test_id):
    """One test of the interpreter's own Lib/test with cyclegc installed."""
    code = ("import sys, unittest, cyclegc\n"
            "cyclegc.install()\n"
            f"r = unittest.main(module=None, argv=['x', {test_id!r}], exit=False).result\n"
            "assert cyclegc.installed()\n"
            "sys.exit(0 if r.wasSuccessful() and r.testsRun >= 1 else 1)\n")
    run_python(code, timeout=300)


def test_cpython_queue_reentrancy():
    """A finalizer in a cycle calls q.put(next(gen)) while the loop does the
    same: a collection between the loop's next(gen) and its put() reorders
    the results.  The built-in never collects there."""
    run_cpython_test("test.test_queue.CSimpleQueueTest.test_reentrancy")


def test_cpython_incomplete_frames():
    """3.11 collects inside the allocation of a frame object; a gc callback
    that asks for the same frame must get the one being made
    (test_sneaky_frame_object, named *_teardown on 3.13 and joined by others)."""
    run_cpython_test("test.test_frame.TestIncompleteFrameAreInvisible")


@pytest.fixture
def installed():
    cyclegc.uninstall()
    cyclegc.install()
    yield
    cyclegc.uninstall()


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64", "aarch64"),
                    reason="the type slot of PyType_GenericAlloc is only located where "
                           "compat.h knows how to spill callee-saved registers")
def test_calibration_finds_the_allocation_sites():
    """In a fresh interpreter: the sites calibration must find, and a run of
    CPython's own test_weakref and test_copy (GC objects of every kind, from
    C and Python) allocating nothing at a site calibration missed."""
    code = ("import sys, unittest, cyclegc\n"
            "cyclegc.install()\n"
            "from cyclegc.install import trigger_stats\n"
            "unittest.main(module=None, argv=['x', 'test.test_weakref', 'test.test_copy'],\n"
            "              exit=False, verbosity=0)\n"
            "import json; print(json.dumps(trigger_stats()))\n")
    out = run_python(code, timeout=600)
    s = json.loads(out.stdout.splitlines()[-1])
    assert s["gc_sites"] >= 2            # _PyObject_GC_New, _PyObject_GC_NewVar
    assert s["generic_sites"] == 2       # PyType_GenericAlloc, the modules' tp_alloc helper
    assert s["type_slot_found"] is True
    assert s["learned_site_names"] == []  # nothing slipped past calibration
    assert s["collects_in_allocation"] == (sys.version_info < (3, 12))


def test_non_gc_allocations_at_the_threshold_schedule_nothing(installed):
    """count0 at (or next to) threshold0 while a loop allocates only ints:
    the built-in schedules nothing until a GC object is allocated; neither
    may we -- at most the one guess each setup's own allocations make, not a
    pending call per iteration."""
    offsets = range(-2, 4)
    scheduled = 0
    for k in offsets:
        gc.collect()
        keep = [[] for _ in range(50)]
        gc.set_threshold(gc.get_count()[0] + k)
        before = trigger_stats()
        x = 0
        for i in range(20000):
            x += i * 12345678901234567
        after = trigger_stats()
        scheduled += sum(after[key] - before[key]
                         for key in ("scheduled", "in_allocation", "deferred"))
        assert keep and x
    assert scheduled <= 2 * len(offsets)


UNKNOWN_SITE = """if 1:
    import gc, sys, tracemalloc, cyclegc
    if sys.argv[1] == "cyclegc":
        cyclegc.install()
    tracemalloc.start()
    gc.collect()
    n0, top = sum(s["collections"] for s in gc.get_stats()), 0
    for _ in range(20000):
        l = []
        l.append(l)
        top = max(top, gc.get_count()[0])
    n = sum(s["collections"] for s in gc.get_stats()) - n0
    from cyclegc.install import trigger_stats
    learned = trigger_stats()["learned_sites"] if sys.argv[1] == "cyclegc" else 0
    print(n, top - gc.get_threshold()[0], learned)
"""


def test_unknown_allocation_site_is_learned():
    """tracemalloc wrapping our wrapper hides every call site: collections
    still run as often as the built-in's, at most one allocation late."""
    def run(mode):
        return list(map(int, run_python(UNKNOWN_SITE, mode).stdout.split()))
    builtin, ours = run("builtin"), run("cyclegc")
    assert builtin[0] >= 5
    assert abs(ours[0] - builtin[0]) <= 1, (ours, builtin)
    assert ours[1] <= builtin[1] + 1
    assert ours[2] >= 1


def test_debugmallocstats_still_shows_pymalloc():
    """Our allocator wrapper hid pymalloc from sys._debugmallocstats(), which
    then printed no arena figures (CPython's test_sys.test_debugmallocstats
    failed with cyclegc installed)."""
    code = ("import sys, cyclegc\n"
            "cyclegc.install()\n"
            "sys._debugmallocstats()\n"
            "assert cyclegc.installed()\n")
    assert "Small block threshold" in run_python(code, timeout=60).stderr
