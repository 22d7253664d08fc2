"""Frames' value stacks as marking roots (stackroots.c).

The live depth of an executing frame comes from its bytecode; a depth too
big would hand marking a stale slot (freed memory).  These tests check the
analysis against what the compiler says (never above co_stacksize, defined
for every code object of the standard library) and the roots against what a
frame really holds: the list a comprehension is building, a call's
receiver, a suspended caller's and a generator's stack, in every shape of
control flow the analysis follows (loops, try/except, with, match, async).
"""
import asyncio
import glob
import os
import subprocess
import sys
import textwrap
import types

import pytest

import cyclegc
from cyclegc._core import _cyclegc as core


@pytest.fixture(scope="module", autouse=True)
def tables():
    core._stack_safe_depths(ids.__code__)     # loads the opcode tables


def ids(objs):
    return {id(o) for o in objs}


def roots():
    return core._stack_roots(True)


def test_depths_within_stacksize_for_the_stdlib():
    lib = os.path.dirname(os.__file__)
    codes = []

    def walk(co):
        codes.append(co)
        for c in co.co_consts:
            if isinstance(c, types.CodeType):
                walk(c)

    for path in sorted(glob.glob(os.path.join(lib, "*.py")))[:120]:
        with open(path, encoding="utf-8") as f:
            walk(compile(f.read(), path, "exec"))
    assert len(codes) > 2000
    for co in codes:
        d = core._stack_safe_depths(co)
        assert d is not None, co
        assert len(d) == len(co._co_code_adaptive) // 2
        assert max(d, default=0) <= co.co_stacksize, co


def test_comprehension_list_is_a_root():
    seen = []
    probe_at = 500

    def probe(i):
        if i == probe_at:
            seen.append(ids(roots()))
        return i

    built = [probe(i) for i in range(1000)]
    # The list being built was on the stack of the frame that builds it (the
    # comprehension's own frame on 3.11, this frame on 3.12+), a caller of
    # probe(): suspended (stacktop kept) or the top frame's caller.
    assert id(built) in seen[0]


def test_top_frame_call_inputs_and_below():
    marker = object()
    got = [x for x in [marker] if (r := ids(roots()))]
    assert got == [marker]
    # the receiver list under construction and the iterator are below the
    # call's inputs: roots of the top frame at its safe point
    assert id(got) in r


def test_top_frame_not_at_safe_point_gives_only_what_unwinding_keeps():
    # Not at a safe point, an executing frame gets the depth no exception
    # unwinding pops below: on 3.12+ the inlined comprehension's cleanup
    # handler keeps the list it builds; on 3.11 the comprehension is its own
    # frame, with no handler, so nothing.  Switched off: nothing.
    core._set_executing_roots(False)
    try:
        built = [ids(core._stack_roots(False)) for _ in range(1)]
        assert id(built) not in built[0]
    finally:
        core._set_executing_roots(True)
    built = [ids(core._stack_roots(False)) for _ in range(1)]
    assert (id(built) in built[0]) == (sys.version_info >= (3, 12))


def _handler_levels(co):
    """{code unit: (level, lasti)} from the exception table, read here
    independently of stackroots.c."""
    table = co.co_exceptiontable
    pos = 0

    def varint():
        nonlocal pos
        b = table[pos]
        pos += 1
        val = b & 63
        while b & 64:
            b = table[pos]
            pos += 1
            val = (val << 6) | (b & 63)
        return val

    cover = {}
    while pos < len(table):
        start, length, _target, dl = varint(), varint(), varint(), varint()
        for k in range(start, start + length):
            cover[k] = (dl >> 1, dl & 1)
    return cover


def test_any_depth_never_above_safe_nor_the_unwinding_level():
    import dis
    lib = os.path.dirname(os.__file__)
    codes = []

    def walk(co):
        codes.append(co)
        for c in co.co_consts:
            if isinstance(c, types.CodeType):
                walk(c)

    for path in sorted(glob.glob(os.path.join(lib, "*.py")))[:80]:
        with open(path, encoding="utf-8") as f:
            walk(compile(f.read(), path, "exec"))
    reraise = dis.opmap["RERAISE"]
    for co in codes:
        safe, anyd = core._stack_safe_depths(co), core._stack_any_depths(co)
        assert anyd is not None and len(anyd) == len(safe), co
        cover = _handler_levels(co)
        units = co.co_code[::2]
        args = co.co_code[1::2]
        rmin = min((cover.get(i, (0, 0))[0] for i, op in enumerate(units)
                    if op == reraise and args[i]), default=None)
        for i, (s, a) in enumerate(zip(safe, anyd)):
            assert (s < 0) == (a < 0) and a <= s, (co, i)
            if a < 0:
                continue
            level, lasti = cover.get(i, (0, 0))
            assert a <= level, (co, i)          # unwinding from here pops to it
            if lasti and rmin is not None:
                assert a <= rmin, (co, i)       # a RERAISE may restore this lasti


def _blocked_thread(target):
    import threading
    started, release = threading.Event(), threading.Lock()
    release.acquire()
    box = {}
    t = threading.Thread(target=target, args=(started, release, box))
    t.start()
    assert started.wait(30)
    import time
    time.sleep(0.05)            # into the blocking C call, GIL released
    return t, release, box


def _rounds_while_blocked():
    # pause2: a round's marking visits every thread's frames
    core._set_max_pause(0.002)
    try:
        for _ in range(200):
            core.run_increment(0, True)
            if core.incremental_stats()["phase"] == "idle":
                break
    finally:
        core._set_max_pause(0)


def test_thread_blocked_in_a_c_call_mid_comprehension():
    # Another thread's top frame, executing (stacktop -1), inside a CALL to
    # C that released the GIL, with the list it builds on its value stack.
    def target(started, release, box):
        n = 50_000

        def step(i):
            return i

        box["result"] = [
            (started.set(), release.acquire())[0] if i == n else step(i) for i in range(n + 10)
        ]

    t, release, box = _blocked_thread(target)
    try:
        found = [o for o in core._stack_roots(False) if type(o) is list and len(o) == 50_000]
        _rounds_while_blocked()
    finally:
        release.release()
        t.join()
    assert len(box["result"]) == 50_010
    if sys.version_info >= (3, 12):
        assert found, "the list a blocked thread builds is a root"


def test_thread_blocked_in_a_finalizer_during_unwinding():
    # Another thread unwinds an exception: the eval loop pops and frees its
    # value stack down to the handler's level, and a finalizer run by one of
    # those pops blocks.  The object being finalized (popped, refcount 0)
    # must not be a root; what the handler keeps (3.12+: the comprehension's
    # list) is.
    dying = {}

    class Blocker:
        def __init__(self, started, release):
            self.started, self.release = started, release

        def __del__(self):
            if self.started.is_set():
                return          # the others, freed after the handler ran
            dying["id"] = id(self)
            self.started.set()
            self.release.acquire()

    def use(*args):
        return args

    def target(started, release, box):
        try:
            box["result"] = [use(Blocker(started, release), 1 / (i - 20_000)) for i in range(30_000)]
        except ZeroDivisionError:
            box["caught"] = True

    t, release, box = _blocked_thread(target)
    try:
        got = core._stack_roots(False)
        leaked = [o for o in got if id(o) == dying["id"]]
        partial = [o for o in got if type(o) is list and len(o) == 20_000]
        del got
        _rounds_while_blocked()
    finally:
        release.release()
        t.join()
    assert box.get("caught")
    assert not leaked, "an object being freed by the unwinding was read as a root"
    if sys.version_info >= (3, 12):
        assert partial, "the comprehension's list, kept by its handler, is a root"


def test_generator_and_nested_calls():
    out = []

    def gen(seq):
        acc = []
        for x in seq:
            acc.append(x)
            yield [y for y in acc if y is not None and (out.append(ids(roots())) or True)]

    data = [object() for _ in range(3)]
    results = list(gen(data))
    assert len(results) == 3
    assert out


def test_try_with_match_and_async_shapes_run_clean():
    class CM:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            roots()
            return False

    def shapes(v):
        total = []
        for i in range(3):
            try:
                with CM():
                    match v:
                        case [a, *rest]:
                            total.append([a, *rest, len(roots())])
                        case {"k": k}:
                            total.append((k, len(roots())))
                        case _:
                            raise ValueError(i)
            except ValueError:
                total.append(len(roots()))
            finally:
                total.append(sum(1 for _ in roots()))
        return total

    for v in ([1, 2, 3], {"k": 1}, None):
        assert len(shapes(v)) == 6

    async def agen():
        for i in range(3):
            yield [i, len(roots())]

    async def main():
        return [x async for x in agen()] + [await asyncio.sleep(0, len(roots()))]

    assert len(asyncio.run(main())) == 4


def test_every_root_is_a_live_object_in_a_busy_program():
    # Many shapes of code, each probing its own roots from inside calls and
    # comprehensions; every object handed back must be a real object (a
    # stale slot would show as a crash or a type that is not a type).
    def f(n):
        acc = {i: [j for j in range(i) if (check() or True)] for i in range(n)}
        return sorted(acc, key=lambda k: (check(), -k)[1])

    def check():
        for o in roots():
            assert isinstance(type(o), type)
        return None

    for n in range(1, 12):
        assert f(n) == list(range(n - 1, -1, -1))


def test_bounded_mode_keeps_comprehension_structures_out_of_overflow():
    # A program whose big live list exists only on a value stack while it
    # is built, under install(max_pause_ms=2): no overflow collection.
    code = textwrap.dedent("""
        import cyclegc
        cyclegc.install(max_pause_ms=2)
        def main():
            table = [{"id": i, "tags": [i]} for i in range(150_000)]
            junk = []
            for i in range(100_000):
                a = []; b = [a]; a.append(b)
            return len(table)
        main()
        s = cyclegc.incremental_stats()
        print(s["overflow_collections"], s["rounds"])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    overflow, rounds = map(int, out.stdout.split())
    assert rounds >= 1
    # 3.12+: the round's roots are visited at an eval-breaker check; 3.11
    # collects inside allocations and adds the top frame's stack from a
    # pending call before marking ends
    assert overflow == 0


@pytest.mark.parametrize("fork_friendly", [False, True])
def test_full_collection_marks_what_a_comprehension_builds(fork_friendly):
    # A full collection run while a comprehension builds a big list (here
    # from a call the comprehension makes: its frame is suspended, its
    # stack kept by the interpreter) marks the list and its items from the
    # value stack; trial deletion then examines only what marking missed.
    # Without the stack roots all 60,000 rows and the list are candidates.
    code = textwrap.dedent(f"""
        import cyclegc
        from cyclegc._core import _cyclegc as core
        cyclegc.set_fork_friendly({fork_friendly})
        seen = []
        def row(i):
            if i == 59_999:
                cyclegc.collect()
                seen.append(core._last_trial_candidates())
            return [i, {{"i": i}}]
        def main():
            return len([row(i) for i in range(60_000)])
        main()
        print(seen[0])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) < 20_000


def test_automatic_full_collections_load_the_tables_once_opcode_is_imported():
    # A plain install() imports nothing for the tables; the first full
    # collection after the program imported `opcode` has them loaded, not
    # inside itself (an import inside a collection runs the program's import
    # hooks in the middle of whatever C code allocated: pytest's rewriter
    # broke an interrupted compile() on 3.11), but at the next safe point.
    code = textwrap.dedent("""
        import sys, cyclegc
        from cyclegc._core import _cyclegc as core
        inside = []
        cyclegc.callbacks.append(
            lambda phase, info: inside.append("cyclegc._opcodes" in sys.modules))
        cyclegc.install()
        cyclegc.collect()
        print("opcode" in sys.modules, "dis" in sys.modules)
        import opcode
        cyclegc.collect()
        print("cyclegc._opcodes" in sys.modules, any(inside))
    """)
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "True", "False"]


def test_an_analysis_is_freed_with_its_code_object():
    # The analysis lives in the code object's co_extra slot and on the list
    # of analyses that exit frees; free_depths takes it off that list.
    code = compile("x = [i for i in range(3)]", "<analysed>", "exec")
    before = core._live_depths()
    assert core._stack_safe_depths(code) is not None
    assert core._live_depths() == before + 1
    core._stack_any_depths(code)                # kept, not made again
    assert core._live_depths() == before + 1
    del code
    assert core._live_depths() == before


def test_analyses_left_at_exit_are_freed_once():
    # Analyses of code objects that outlive the interpreter (deep-frozen
    # runpy and importlib code on 3.11/3.12, module code kept to the end)
    # are freed by the Py_AtExit function, after the last collection; the
    # debug allocator (PYTHONMALLOC=debug) aborts on a block freed twice or
    # written after it was freed.
    code = textwrap.dedent("""
        import runpy, importlib._bootstrap as boot, opcode
        import cyclegc
        from cyclegc._core import _cyclegc as core
        cyclegc.install()
        def main():
            junk = [[] for _ in range(1000)]
            for j in junk:
                j.append(j)
            return [cyclegc.collect() for _ in range(2)]
        for c in (runpy._run_module_as_main.__code__, runpy._run_code.__code__,
                  boot._find_and_load.__code__, main.__code__):
            core._stack_safe_depths(c)
        main()
        assert core._live_depths() >= 4, core._live_depths()
        print("ok")
    """)
    env = dict(os.environ, PYTHONMALLOC="debug")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok"]
    assert out.stderr == ""


def test_a_code_object_with_another_extensions_extra_only_is_freed_cleanly():
    """CPython calls every registered co_extra free function on every slot
    of a code object's co_extra array, also on slots that hold nothing:
    when another extension stores an extra in a later slot (as test_capi's
    code-extra tests do), cyclegc's free function gets NULL.  It crashed
    there once (CPython's own test_capi on 3.13, at exit); a subprocess
    reproduces the situation with ctypes and must exit cleanly."""
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent("""
        import ctypes, sys, cyclegc
        cyclegc.install()
        import opcode                         # cyclegc's tables load at a full collection
        cyclegc.collect()                     # its co_extra index is taken now
        api = ctypes.pythonapi
        if sys.version_info >= (3, 12):
            request, set_extra = api.PyUnstable_Eval_RequestCodeExtraIndex, api.PyUnstable_Code_SetExtra
        else:
            request, set_extra = api._PyEval_RequestCodeExtraIndex, api._PyCode_SetExtra
        request.restype = ctypes.c_ssize_t
        request.argtypes = [ctypes.c_void_p]
        set_extra.restype = ctypes.c_int
        set_extra.argtypes = [ctypes.py_object, ctypes.c_ssize_t, ctypes.c_void_p]
        index = request(None)                 # a later index, no free function
        co = compile("x = 1", "<other>", "exec")
        assert set_extra(co, index, ctypes.c_void_p(1)) == 0
        del co                                # cyclegc's slot is NULL here
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", (out.returncode, out.stderr[-2000:])


def test_analyses_never_make_cpython_call_another_extensions_co_extra_free_function():
    """code_dealloc calls the free function of every co_extra slot below a
    code object's size, with NULL for unset ones, and the first store sizes
    the array for every slot registered so far.  Once another extension has
    a slot, an analysis stored in a fresh code object would make its death
    call that extension's free function, which the built-in never does
    (CPython's test_code: its ctypes callback, destroyed before the last
    collection, was called at exit and crashed).  Analyses are then not
    stored; the other extension's function is never called."""
    code = textwrap.dedent("""
        import ctypes, sys, cyclegc
        cyclegc.install()
        import opcode                       # the tables load at the next full collection
        cyclegc.collect()
        calls = []
        FREEFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
        @FREEFUNC
        def other_free(p):
            calls.append(p)
        name = ("PyUnstable_Eval_RequestCodeExtraIndex" if sys.version_info >= (3, 12)
                else "_PyEval_RequestCodeExtraIndex")
        request = getattr(ctypes.pythonapi, name)
        request.restype = ctypes.c_ssize_t
        request.argtypes = [FREEFUNC]
        index = request(other_free)
        ns = {"cyclegc": cyclegc}
        exec("def f():\\n    x = [1]\\n    return len([cyclegc.collect() for _ in x])\\n", ns)
        ns["f"]()                           # its frame is marked while it runs
        del ns                              # f's code object dies
        cyclegc.collect()
        print(index, len(calls))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    index, calls = map(int, out.stdout.split())
    assert index >= 1           # cyclegc took its slot first
    assert calls == 0
