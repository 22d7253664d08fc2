"""cyclegc.immortalize_heap() (immortal.c): what becomes immortal, what stays
mortal, that garbage hanging from immortal objects is still collected, and
that a forked child reading the heap keeps sharing it.  Immortalizing cannot
be undone, so every check runs in a child interpreter of its own."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

HAS_IMMORTAL = sys.version_info >= (3, 12)
needs_immortal = pytest.mark.skipif(not HAS_IMMORTAL, reason="immortal objects need CPython 3.12+")

PRELUDE = """
import gc, json, os, sys, weakref
import cyclegc
IMMORTAL = 2 ** 31
def immortal(o):
    return sys.getrefcount(o) >= IMMORTAL

class Row:
    pass
"""


def run(body, timeout=120):
    code = PRELUDE + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs_immortal
def test_what_is_alive_becomes_immortal_and_leaves_the_collections():
    out = run("""
        def lookup(row):
            return row.name + "-a constant string of this function's code"
        rows = [Row() for _ in range(2000)]
        for i, r in enumerate(rows):
            r.name = "row-%d" % i
            r.tags = ("t%d" % i, i * 1000003)         # a tuple of atoms: untracked
        table = {"key-%d" % i: i * 7919 for i in range(500)}
        gc.collect()
        before = len(cyclegc.get_objects())
        made = cyclegc.immortalize_heap()
        const = [c for c in lookup.__code__.co_consts if isinstance(c, str)][0]
        print(json.dumps({
            "made": made, "before": before, "after": len(cyclegc.get_objects()),
            "rows": all(immortal(r) for r in rows), "names": all(immortal(r.name) for r in rows),
            "untracked_tuple": immortal(rows[7].tags) and immortal(rows[7].tags[1]),
            "dict_keys": all(immortal(k) for k in table), "dict_values": all(immortal(v) for v in table.values()),
            "code_constant": immortal(const), "tracked": cyclegc.is_tracked(rows[3]),
            "collect": cyclegc.collect(), "lookup": lookup(rows[1]),
        }))
    """)
    assert out["made"] > 6000
    assert out["rows"] and out["names"] and out["untracked_tuple"]
    assert out["dict_keys"] and out["dict_values"] and out["code_constant"]
    # out of the generations, still tracked, as the interpreter's own
    assert out["tracked"] and out["after"] < out["before"] - 2000
    assert out["collect"] == 0
    assert out["lookup"] == "row-1-a constant string of this function's code"


@needs_immortal
def test_objects_that_run_code_when_they_die_stay_mortal_and_still_die():
    out = run("""
        import tempfile
        log = []
        class Finalized:
            def __del__(self):
                log.append("del")
        fd, path = tempfile.mkstemp()
        os.close(fd)
        holder = {"fin": Finalized(), "file": open(path, "w")}
        holder["file"].write("buffered, flushed only when the file is closed")
        cyclegc.immortalize_heap()
        mortal = not immortal(holder["fin"]) and not immortal(holder["file"])
        del holder["fin"], holder["file"]              # the dict is immortal; they are not
        with open(path) as f:
            flushed = f.read()
        os.unlink(path)
        print(json.dumps({"mortal": mortal, "holder": immortal(holder), "log": log, "flushed": flushed}))
    """)
    assert out["mortal"] and out["holder"]
    assert out["log"] == ["del"]
    assert out["flushed"] == "buffered, flushed only when the file is closed"


@needs_immortal
def test_garbage_hanging_from_immortal_objects_is_kept_while_held_and_then_collected():
    out = run("""
        keep = []
        cyclegc.immortalize_heap()
        a, b = Row(), Row()
        a.peer, b.peer = b, a
        keep.append(a)                # the immortal list holds the mortal cycle
        ref = weakref.ref(a)
        del a, b
        first = cyclegc.collect()
        held = ref() is not None and ref().peer.peer is ref()
        keep.pop()
        second = cyclegc.collect()
        print(json.dumps({"first": first, "held": held, "second": second, "freed": ref() is None}))
    """)
    assert out["first"] == 0 and out["held"]
    assert out["second"] >= 2 and out["freed"]


@needs_immortal
def test_refused_while_a_collection_runs():
    out = run("""
        seen = []
        class Asks:
            def __del__(self):
                try:
                    cyclegc.immortalize_heap()
                except RuntimeError as e:
                    seen.append(str(e))
        a = Asks(); a.self = a
        del a
        cyclegc.collect()
        print(json.dumps(seen))
    """)
    assert out == ["immortalize_heap() cannot run during a collection"]


@pytest.mark.skipif(HAS_IMMORTAL, reason="3.11 only: there immortalize_heap() freezes instead")
def test_without_immortal_objects_it_freezes():
    out = run("""
        rows = [Row() for _ in range(1000)]
        made = cyclegc.immortalize_heap()
        print(json.dumps({"made": made, "frozen": cyclegc.get_freeze_count(), "mortal": not immortal(rows[0])}))
    """)
    assert out["made"] == 0 and out["frozen"] > 1000 and out["mortal"]


FORK_READER = """
import gc
def private_dirty_kb():
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1])
rows = []
for i in range(150_000):
    r = Row()
    r.name, r.price, r.tags = "item-%d" % i, i * 0.5, ["t%d" % (i % 97)]
    rows.append(r)
gc.collect()
if sys.argv[1] == "immortal":
    cyclegc.immortalize_heap()
gc.disable()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    before = private_dirty_kb()
    total = 0
    for row in rows:                    # a worker reading its catalogue
        total += len(row.name) + len(row.tags[0]) + int(row.price)
    os.write(w, str(private_dirty_kb() - before).encode())
    os._exit(0)
os.close(w)
dirty = int(os.read(r, 64))
os.waitpid(pid, 0)
print(json.dumps({"dirty_kb": dirty}))
"""


@needs_immortal
@pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"),
                    reason="needs Linux /proc/self/smaps_rollup to read private dirty memory")
def test_a_forked_child_reading_the_heap_keeps_sharing_it():
    def dirty(mode):
        code = PRELUDE + FORK_READER
        proc = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)["dirty_kb"]
    mortal, immortal = dirty("mortal"), dirty("immortal")
    # Reading 150k rows writes every refcount it touches: ~20 MB copied.
    assert mortal > 8000
    assert immortal < 0.1 * mortal


@needs_immortal
def test_after_it_forked_children_collect_the_ordinary_way():
    # Read-only collection protects shared pages; once the shared heap is
    # immortal and out of the lists, the lists hold a worker's own objects
    # and the ordinary collection (marking, then trial deletion) is faster.
    out = run("""
        from cyclegc._core import _cyclegc as core
        cyclegc.set_fork_friendly(True)
        core._set_heap_shared(True)                 # as in a forked worker
        def marked_seconds():
            cyclegc.collect()
            return core._phase_seconds()["mark"][2]
        before = marked_seconds()
        readonly = marked_seconds() == before
        cyclegc.immortalize_heap()
        own = [Row() for _ in range(1000)]          # a worker's own objects
        before = marked_seconds()
        print(json.dumps({"readonly_before": readonly, "ordinary_after": marked_seconds() > before}))
    """)
    assert out == {"readonly_before": True, "ordinary_after": True}
