"""Records where every automatic collection runs, for tests/test_trigger.py.

    python collection_points.py builtin|cyclegc PROGRAM [N]

Imports cyclegc in both modes (so both processes allocate the same), installs
it only in mode ``cyclegc``, runs PROGRAM (a function below) with a
gc.callbacks entry that records, at each collection's start, the generation,
the code location of the frame that was running (function, line, last
instruction offset), the thread's name and gc.get_count(); prints one JSON
line per collection.  Nothing here calls gc.collect() after the recording
starts, so every recorded collection is an automatic one.
"""
import gc
import itertools
import json
import sys
import threading
import time

import cyclegc

MODE, PROGRAM = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
if MODE == "cyclegc":
    cyclegc.install()

log = []


def record(phase, info):
    if phase == "start":
        f = sys._getframe(1)
        log.append([info["generation"], f.f_code.co_name, f.f_lineno, f.f_lasti,
                    threading.current_thread().name, list(gc.get_count())])


class Circular:
    def __init__(self):
        self.me = self


class Slotted:
    __slots__ = ("a", "b")

    def __new__(cls, a):
        self = super().__new__(cls)
        self.a, self.b = a, [self]
        return self


def instances(n):
    """Instances with a Python __init__ (PyType_GenericAlloc) next to ints."""
    gen = itertools.count()
    out = []
    for _ in range(n):
        o = Circular()
        out.append(next(gen))
        del o
        if len(out) > 100:
            out.clear()


def containers(n):
    """Dicts, lists, tuples, sets (gc_alloc), and a comprehension."""
    res = []
    for i in range(n):
        res.append({"a": [i, (i, str(i))], "b": {i}})
        if len(res) > 50:
            res = [x for x in res if x["a"][0] % 3]
    return res


def _gen():
    i = 0
    while True:
        yield [i, {i: i}]
        i += 1


def generators(n):
    """Objects made in a suspended generator's frame, kept a while."""
    it = _gen()
    kept = []
    for _ in range(n):
        kept.append(next(it))
        if len(kept) > 1000:
            del kept[:500]
    return len(kept)


def from_c(n):
    """Objects allocated by C code in one call (map, list, zip) and objects
    of non-GC types (object(), complex) made through tp_alloc."""
    kept = []
    for i in range(n // 20):
        rows = list(map(list, zip(range(20), range(20))))
        rows.append(rows)   # a cycle: only a collection frees it
        kept.append(rows)
        kept.append([object() for _ in range(5)] + [complex(i, 1)])
        if len(kept) > 100:
            del kept[:50]
    return len(kept)


def python_new(n):
    """A Python __new__ around object.__new__, making a cycle each time."""
    return sum(Slotted(i).a for i in range(n))


def exceptions(n):
    """Allocations while an exception propagates and in handlers."""
    kept = []
    for i in range(n):
        try:
            raise KeyError([i, {i}])
        except KeyError as e:
            e.me = e   # a cycle: only a collection frees it
            kept.append(e)
        if len(kept) > 100:
            kept = []
    return len(kept)


def thread(n):
    """The same work in another thread (3.11 collects in the allocating
    thread).  The worker starts its work once the main thread is blocked in
    join() (0.2 s), so the two threads' allocations do not interleave by
    chance."""
    def work():
        time.sleep(0.2)
        instances(n)
        containers(n)
    t = threading.Thread(target=work, name="worker")
    t.start()
    t.join()


PROGRAMS = {f.__name__: f for f in (instances, containers, generators, from_c,
                                     python_new, exceptions, thread)}

gc.collect()
gc.callbacks.append(record)
PROGRAMS[PROGRAM](N)
gc.callbacks.remove(record)
for entry in log:
    print(json.dumps(entry))
