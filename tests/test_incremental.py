"""The bounded-pause mode (incremental.c): rounds over the old generation,
driven one increment at a time with the core's run_increment().

What must hold whatever the program does between increments: a reachable
object is never freed; old cyclic garbage is found within a round or two;
finalizers, weakref callbacks and resurrection behave as in a complete
collection; the gc API (get_objects, get_referrers, freeze, collect) sees
the objects a round holds on its own lists.
"""
import gc as builtin_gc
import sys
import weakref

import pytest
from hypothesis import given, settings, strategies as st

import cyclegc
from cyclegc._core import _cyclegc as core

MAX_STEPS = 20000


class Node:
    def __init__(self, name=None):
        self.name = name
        self.refs = []


@pytest.fixture
def bounded():
    """The mode on (without install(): increments are run by hand)."""
    enabled = builtin_gc.isenabled()
    builtin_gc.disable()
    cyclegc.collect()
    core._set_max_pause(0.002)
    try:
        yield
    finally:
        core._set_max_pause(0)
        cyclegc.collect()
        if enabled:
            builtin_gc.enable()


def finish_round(start=True):
    """Runs increments until a round ends, complete or aborted (start=False:
    until the running round, if any, ends); returns the increments run."""
    def ended():
        s = cyclegc.incremental_stats()
        return s["rounds"] + s["aborted_rounds"]

    before = ended()
    if not start and cyclegc.incremental_stats()["phase"] == "idle":
        return 0
    for i in range(MAX_STEPS):
        core.run_increment(0, start and i == 0)
        if ended() > before:
            return i + 1
    raise AssertionError(f"no round completed in {MAX_STEPS} increments: "
                         f"{cyclegc.incremental_stats()}")


def make_old_cycles(n, holder):
    """n two-node cycles, promoted to the oldest generation while `holder`
    keeps them alive; returns weakrefs to every node."""
    refs = []
    for i in range(n):
        a, b = Node(i), Node(i)
        a.refs.append(b)
        b.refs.append(a)
        holder.append(a)
        refs += [weakref.ref(a), weakref.ref(b)]
    cyclegc.collect()          # survivors move to generation 2
    return refs


# -- configuration -------------------------------------------------------------

@pytest.mark.parametrize("bad, exc", [
    ("2", TypeError), (True, TypeError), ([], TypeError),
    (0, ValueError), (-1, ValueError), (float("inf"), ValueError), (float("nan"), ValueError),
])
def test_install_rejects_a_bad_max_pause(bad, exc):
    with pytest.raises(exc, match="max_pause_ms"):
        cyclegc.install(max_pause_ms=bad)
    assert not cyclegc.installed()


def test_install_sets_and_uninstall_clears_the_mode():
    assert cyclegc.install(max_pause_ms=3)
    try:
        assert cyclegc.incremental_stats()["max_pause"] == pytest.approx(0.003)
        assert not cyclegc.install(max_pause_ms=1.5)      # already installed: re-configures
        assert cyclegc.incremental_stats()["max_pause"] == pytest.approx(0.0015)
    finally:
        cyclegc.uninstall()
    assert cyclegc.incremental_stats()["max_pause"] == 0
    assert cyclegc.incremental_stats()["phase"] == "idle"


def test_run_increment_needs_the_mode():
    core._set_max_pause(0)
    with pytest.raises(RuntimeError, match="bounded-pause mode is off"):
        core.run_increment(0)


# -- finding garbage -------------------------------------------------------------

def test_a_round_collects_old_cycles_and_keeps_live_ones(bounded):
    dead_holder, live_holder = [], []
    dead = make_old_cycles(300, dead_holder)
    live = make_old_cycles(300, live_holder)
    del dead_holder[:]
    before = cyclegc.incremental_stats()
    finish_round()
    after = cyclegc.incremental_stats()
    assert all(r() is None for r in dead)
    assert all(r() is not None for r in live)
    assert after["collected"] - before["collected"] >= 600
    assert all(n.refs[0].refs[0] is n for n in live_holder)


def test_garbage_that_dies_during_marking_is_found_by_the_next_round(bounded):
    holder = []
    refs = make_old_cycles(200, holder)
    core.run_increment(0, True)            # the round starts; marking begins
    del holder[:]                          # the cycles die mid-round
    finish_round(start=False)
    finish_round()
    assert all(r() is None for r in refs)


def test_objects_moved_between_increments_are_never_freed(bounded):
    """The mutator hides an unmarked object behind an already marked one
    (the case a write barrier exists for): trial deletion must keep it."""
    marked_early = Node("early")
    pool = [Node(i) for i in range(5000)]
    hidden_refs = [weakref.ref(n) for n in pool]
    holder = [marked_early, pool]
    cyclegc.collect()
    core.run_increment(0, True)
    for i in range(200):
        # move a slice of the pool behind `marked_early` and drop the rest of
        # the path to it
        if pool:
            marked_early.refs.extend(pool[-25:])
            del pool[-25:]
        core.run_increment(0)
    finish_round(start=False)
    finish_round()
    assert all(r() is not None for r in hidden_refs)
    assert len(marked_early.refs) == 5000
    assert holder[0] is marked_early


def test_finalizers_run_once_and_resurrection_is_kept(bounded):
    log = []
    saved = []

    class Fin:
        def __init__(self):
            self.me = self

        def __del__(self):
            log.append(id(self))

    class Phoenix:
        def __init__(self):
            self.me = self

        def __del__(self):
            saved.append(self)

    holder = [Fin() for _ in range(50)] + [Phoenix() for _ in range(5)]
    cyclegc.collect()
    del holder[:]
    finish_round()
    finish_round()
    assert len(log) == 50 and len(set(log)) == 50
    assert len(saved) == 5
    assert all(cyclegc.is_finalized(p) for p in saved)
    for p in saved:
        p.me = None
    saved.clear()
    finish_round()
    assert len(log) == 50                   # never finalized twice


def test_weakref_callbacks_run_for_live_weakrefs_only(bounded):
    called = []
    holder = []
    refs = make_old_cycles(100, holder)
    keep = [weakref.ref(n, lambda r: called.append(1)) for n in holder]
    del holder[:]
    finish_round()
    assert len(called) == 100
    assert all(r() is None for r in refs + keep)


def test_callbacks_see_each_increment_with_its_duration(bounded):
    seen = []

    def cb(phase, info):
        seen.append((phase, info["generation"], info.get("duration")))

    holder = []
    make_old_cycles(50, holder)
    cyclegc.callbacks.append(cb)
    try:
        finish_round()
    finally:
        cyclegc.callbacks.remove(cb)
    starts = [s for s in seen if s[0] == "start"]
    stops = [s for s in seen if s[0] == "stop"]
    assert len(starts) == len(stops) >= 1
    assert all(g == 2 for _, g, _ in stops)
    assert all(d is not None and d >= 0 for _, _, d in stops)


# -- the gc API during a round -------------------------------------------------

def run_until_phase(phase):
    for _ in range(MAX_STEPS):
        if cyclegc.incremental_stats()["phase"] == phase:
            return
        core.run_increment(0)
    raise AssertionError(f"phase {phase} never reached")


def big_old_heap():
    heap = [[Node(i)] for i in range(60000)]
    cyclegc.collect()
    return heap


def test_get_objects_and_referrers_see_the_rounds_lists(bounded):
    heap = big_old_heap()
    target = heap[123][0]
    core._set_max_pause(0.0001)             # tiny increments: the round lasts
    core.run_increment(0, True)
    run_until_phase("mark")
    assert cyclegc.incremental_stats()["phase"] == "mark"
    objs = cyclegc.get_objects()
    assert any(o is target for o in objs)
    assert any(o is target for o in cyclegc.get_objects(2))
    assert heap[123] in cyclegc.get_referrers(target)


def test_collect_and_freeze_end_a_round_cleanly(bounded):
    heap = big_old_heap()
    core._set_max_pause(0.0001)
    core.run_increment(0, True)
    run_until_phase("mark")
    aborted = cyclegc.incremental_stats()["aborted_rounds"]
    n_before = len(cyclegc.get_objects())
    cyclegc.collect()
    assert cyclegc.incremental_stats()["phase"] == "idle"
    assert cyclegc.incremental_stats()["aborted_rounds"] == aborted + 1
    assert abs(len(cyclegc.get_objects()) - n_before) < 1000

    core.run_increment(0, True)
    run_until_phase("mark")
    cyclegc.freeze()
    try:
        assert cyclegc.incremental_stats()["phase"] == "idle"
        assert cyclegc.get_freeze_count() >= len(heap)
    finally:
        cyclegc.unfreeze()
    assert cyclegc.get_freeze_count() == 0 or builtin_gc.get_freeze_count() > 0
    assert heap[5][0].name == 5


def test_frozen_objects_are_never_examined_by_a_round(bounded):
    holder = []
    refs = make_old_cycles(100, holder)
    cyclegc.freeze()
    try:
        del holder[:]                         # frozen garbage stays, as with the built-in
        finish_round()
        finish_round()
        assert all(r() is not None for r in refs)
    finally:
        cyclegc.unfreeze()
    cyclegc.collect()
    assert all(r() is None for r in refs)


def test_a_wide_list_freed_while_parked(bounded):
    wide = [Node(i) for i in range(50000)]
    holder = [wide]
    cyclegc.collect()
    core._set_max_pause(0.00005)
    core.run_increment(0, True)
    for _ in range(5):
        core.run_increment(0)
    del holder[:]
    del wide                                  # freed while being walked
    finish_round(start=False)
    assert cyclegc.incremental_stats()["phase"] == "idle"


def test_a_structure_a_frame_takes_up_after_marking_is_marked_not_swept(bounded):
    """A live structure marking could not reach (here held only by C code, a
    reference ctypes keeps) that a frame takes up once the round sweeps is
    found by the roots visited again at each sweep stop and marked: no slice
    has to examine all of it to learn that it is alive (before, such a
    structure was cut at the slice cap in every round, then examined whole
    by an oversized slice)."""
    import ctypes
    holder = []
    make_old_cycles(40000, holder)          # sweep work ahead of the structure, once garbage
    root = Node("root")
    parent = root
    for i in range(30000):                  # a deep tree with parent pointers: one component
        child = Node(i)
        child.refs.append(parent)
        parent.refs.append(child)
        if i % 10 == 0:
            parent = child
    cyclegc.collect()                       # old, behind the filler in the oldest generation
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(root))   # held by "C code" only
    address = id(root)
    alive = weakref.ref(root)
    del root, parent, child, holder[:]
    before = cyclegc.incremental_stats()
    core.run_increment(0, True)
    run_until_phase("sweep")                # marked what it could: not the structure
    taken = ctypes.cast(address, ctypes.py_object).value   # a frame's local now
    ctypes.pythonapi.Py_DecRef(ctypes.py_object(taken))
    finish_round(start=False)
    after = cyclegc.incremental_stats()
    assert alive() is taken and len(taken.refs) == 1
    assert after["truncated_slices"] == before["truncated_slices"]
    assert after["largest_slice"] < 30000
    assert after["collected"] - before["collected"] >= 80000     # the filler
    del taken


# -- random programs -------------------------------------------------------------

OPS = st.lists(st.tuples(st.sampled_from(["link", "unlink", "drop_root", "new_root", "step", "move"]),
                         st.integers(0, 10 ** 6), st.integers(0, 10 ** 6)),
               min_size=20, max_size=200)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(10, 300), ops=OPS)
def test_random_mutation_between_increments_never_frees_live_objects(n, ops):
    """Random edits of a graph between tiny increments.  Only the roots list
    holds nodes from outside the graph (the test keeps weakrefs), so trial
    deletion has nothing but the graph to go on.  Every node reachable from
    the roots keeps its identity and contents; after a few rounds exactly
    the reachable nodes are alive (the rest was found by the rounds)."""
    builtin_gc.disable()
    core._set_max_pause(0.00005)
    try:
        nodes = [Node(i) for i in range(n)]
        for i, node in enumerate(nodes):
            node.refs.append(nodes[(i * 7 + 3) % n])
        roots = nodes[: max(1, n // 10)]
        refs = [weakref.ref(x) for x in nodes]
        cyclegc.collect()
        del nodes, node
        core.run_increment(0, True)
        for op, a, b in ops:
            if op == "step":
                core.run_increment(a % 2)
                continue
            reach = reachable(roots)
            x, y = reach[a % len(reach)], reach[b % len(reach)]
            if op == "link":
                x.refs.append(y)
            elif op == "unlink" and x.refs:
                x.refs.pop(b % len(x.refs))
            elif op == "drop_root" and len(roots) > 1:
                roots.pop(a % len(roots))
            elif op == "new_root":
                roots.append(x)
            elif op == "move" and x.refs:
                y.refs.append(x.refs.pop())
            del reach, x, y
        for _ in range(4):
            finish_round()
        reach = reachable(roots)
        assert all(isinstance(x.name, int) and 0 <= x.name < n for x in reach)
        assert len({x.name for x in reach}) == len(reach)
        assert {id(r()) for r in refs if r() is not None} == {id(x) for x in reach}
    finally:
        core._set_max_pause(0)
        builtin_gc.enable()


def reachable(roots):
    seen, stack, out = set(), list(roots), []
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        out.append(x)
        stack.extend(x.refs)
    return out


def test_freeze_count_does_not_count_the_rounds_marker(bounded):
    holder = [[Node(i)] for i in range(20000)]
    cyclegc.freeze()
    try:
        frozen = cyclegc.get_freeze_count()
        core._set_max_pause(0.00002)
        core.run_increment(0, True)
        assert cyclegc.incremental_stats()["phase"] == "mark_frozen"
        assert cyclegc.get_freeze_count() == frozen
        finish_round(start=False)
        assert cyclegc.get_freeze_count() == frozen
    finally:
        cyclegc.unfreeze()
    assert holder[7][0].name == 7


def test_a_finalizer_that_freezes_ends_the_round_safely(bounded):
    calls = []

    class Freezer:
        def __init__(self):
            self.me = self

        def __del__(self):
            calls.append(1)
            cyclegc.freeze()

    holder = [Freezer()] + [[Node(i)] for i in range(1000)]
    cyclegc.collect()
    del holder[0]
    try:
        finish_round()
        assert calls == [1]
        assert cyclegc.incremental_stats()["phase"] == "idle"
        assert holder[3][0].name == 3
    finally:
        cyclegc.unfreeze()
    finish_round()
    assert cyclegc.get_freeze_count() == 0 or builtin_gc.get_freeze_count() > 0


def test_fork_friendly_mode_runs_complete_collections_instead_of_rounds(bounded):
    holder = []
    refs = make_old_cycles(100, holder)
    del holder[:]
    previous = cyclegc.is_fork_friendly()
    cyclegc.set_fork_friendly(True)
    shared = core._set_heap_shared(True)        # as after a fork
    try:
        rounds = cyclegc.incremental_stats()["rounds"]
        core.run_increment(0, True)
        assert cyclegc.incremental_stats()["phase"] == "idle"
        assert cyclegc.incremental_stats()["rounds"] == rounds
        assert all(r() is None for r in refs)
    finally:
        core._set_heap_shared(shared)
        cyclegc.set_fork_friendly(previous)


def test_fork_friendly_mode_keeps_bounded_rounds_until_pages_can_be_shared(bounded):
    # No fork yet (and nothing frozen): no page is shared, so the mode has
    # nothing to spare and a round starts as without it; a fork ends it.
    holder = []
    refs = make_old_cycles(100, holder)
    del holder[:]
    previous = cyclegc.is_fork_friendly()
    cyclegc.set_fork_friendly(True)
    shared = core._set_heap_shared(False)
    try:
        rounds = cyclegc.incremental_stats()["rounds"]
        core.run_increment(0, True)
        assert cyclegc.incremental_stats()["phase"] != "idle"
        aborted = cyclegc.incremental_stats()["aborted_rounds"]
        core._set_heap_shared(True)
        assert cyclegc.incremental_stats()["phase"] == "idle"
        assert cyclegc.incremental_stats()["aborted_rounds"] == aborted + 1
        assert cyclegc.incremental_stats()["rounds"] >= rounds
    finally:
        core._set_heap_shared(shared)
        cyclegc.set_fork_friendly(previous)
    cyclegc.collect()
    assert all(r() is None for r in refs)


def test_switching_fork_friendly_on_ends_a_round_in_progress(bounded):
    """A pre-fork worker inherits its parent's round; "auto" switches the
    mode on in the child, which must not go on moving survivors between
    lists (benchmarks/realworld's gunicorn workers did, for minutes)."""
    heap = big_old_heap()
    core._set_max_pause(0.0001)
    core.run_increment(0, True)
    run_until_phase("mark")
    aborted = cyclegc.incremental_stats()["aborted_rounds"]
    n_before = len(cyclegc.get_objects())
    previous = cyclegc.is_fork_friendly()
    cyclegc.set_fork_friendly(True)
    try:
        assert cyclegc.incremental_stats()["phase"] == "idle"
        assert cyclegc.incremental_stats()["aborted_rounds"] == aborted + 1
        assert abs(len(cyclegc.get_objects()) - n_before) < 1000
        assert heap[123][0].name == 123
        cyclegc.set_fork_friendly(True)              # already on: nothing to end
        assert cyclegc.incremental_stats()["aborted_rounds"] == aborted + 1
    finally:
        cyclegc.set_fork_friendly(previous)


THREADED = r'''
import sys, threading, time, weakref
import cyclegc
cyclegc.install(max_pause_ms=1)
cyclegc.set_threshold(300, 5, 3)
finalized = []
lock = threading.Lock()

class Node:
    def __init__(self, peer=None):
        self.peer = peer
        self.payload = [self]

class Fin(Node):
    def __del__(self):
        time.sleep(0)                       # releases the GIL mid-collection
        with lock:
            finalized.append(id(self))

keep = [[Node() for _ in range(50)] for _ in range(400)]   # an old heap to mark
stop = time.monotonic() + float(sys.argv[1])
errors = []

def worker(k):
    try:
        made = 0
        while time.monotonic() < stop:
            a = Fin() if made % 200 == 0 else Node()
            b = Node(a)
            a.peer = b
            made += 1
            if made % 5000 == 0:
                keep[made // 5000 % len(keep)] = [Node() for _ in range(50)]
            if k == 0 and made % 20000 == 0:
                cyclegc.collect()
            if k == 1 and made % 30000 == 0:
                cyclegc.freeze(); cyclegc.unfreeze()
        with lock:
            finalized.append(("made", made))
    except BaseException as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
made = sum(x[1] for x in finalized if isinstance(x, tuple))
ids = [x for x in finalized if not isinstance(x, tuple)]
stats = cyclegc.incremental_stats()
cyclegc.uninstall()
assert not errors, errors
assert all(len(group) == 50 for group in keep)
print("made", made, "finalized", len(ids), "rounds", stats["rounds"], "increments", stats["old_increments"])
assert stats["rounds"] >= 1, stats
'''


def test_threads_allocating_collecting_and_freezing_under_bounded_pauses(tmp_path):
    """4 threads churn cycles (some with finalizers that release the GIL),
    one calls collect(), one freezes and unfreezes, with rounds running:
    no crash, no deadlock, no error, rounds complete."""
    import subprocess
    import sys as _sys
    script = tmp_path / "threaded.py"
    script.write_text(THREADED)
    proc = subprocess.run([_sys.executable, str(script), "2"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rounds" in proc.stdout


def test_stats_name_each_stop_and_its_cause(bounded):
    keep = [Node(i) for i in range(5000)]
    for n in keep:
        n.refs.append(n)
    finish_round()
    s = cyclegc.incremental_stats()
    for key in ("last_stop", "longest_stop", "busiest_stop"):
        stop = s[key]
        assert set(stop) >= {"seconds", "cpu_seconds", "cause", "cause_objects", "parts", "slices"}
        assert stop["seconds"] >= 0 and stop["cpu_seconds"] >= 0
        assert stop["cause"] in ("none", "young collection", "mark", "sweep slice",
                                 "garbage disposal (weakrefs, finalizers, tp_clear)",
                                 "complete collection", "overflow collection")
        for part in stop["parts"].values():
            assert part["seconds"] >= 0 and part["objects"] >= 0
    longest = s["longest_stop"]
    assert longest["seconds"] == pytest.approx(s["longest_increment"])
    assert s["busiest_stop"]["cpu_seconds"] >= longest["cpu_seconds"]
    assert s["busiest_stop"]["cpu_seconds"] >= s["last_stop"]["cpu_seconds"]
    assert "young collection" in s["last_stop"]["parts"]     # every increment starts with one
    del keep


def child_json(code):
    """Runs `code` in a child interpreter (its heap and mode its own) and
    returns the JSON its last line prints."""
    import json
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_young_generation_larger_than_a_stop_is_collected_in_chunks():
    """A program that raises threshold0 (mypy sets hundreds of thousands):
    generation 0 is examined a chunk per stop, never whole; its garbage is
    still found, and what is alive survives."""
    import textwrap
    code = textwrap.dedent("""
        import gc, json, weakref, cyclegc
        cyclegc.install(max_pause_ms=2)
        gc.set_threshold(200_000, 10, 10)
        class C: pass
        keep = []
        probes = []
        for i in range(600_000):
            a = [i]; b = {"a": a}; a.append(b)
            if i % 10 == 0:
                c = C(); c.self = c; c.i = i
                keep.append(c)
            if i % 50_000 == 1:
                d = C(); d.self = d
                probes.append(weakref.ref(d)); del d
        s = cyclegc.incremental_stats()
        alive = all(k.self is k and k.i == 10 * n for n, k in enumerate(keep))
        print(json.dumps({"chunks": s["young_chunks"], "longest": s["longest_stop"],
                          "alive": alive, "dead_probes": sum(p() is None for p in probes),
                          "probes": len(probes)}))
    """)
    doc = child_json(code)
    assert doc["alive"]
    assert doc["chunks"] > 0
    # no stop examined a whole 200k-object generation 0
    assert doc["longest"]["parts"].get("young collection", {"objects": 0})["objects"] < 100_000
    # the garbage of the early part of the run was found
    assert doc["dead_probes"] >= doc["probes"] - 3


def test_a_young_generation_bigger_than_its_count_says_is_still_chunked():
    """Every GC object freed lowers generation 0's count, wherever it lived:
    a program dropping old structures while it builds new ones (pylint drops
    its ASTs) leaves generation 0 far bigger than its count.  The stop must
    look at the generation, not the count: a generation-1 collection of
    21,946 objects took 5.6 ms on 3.13 where the counts said it fit."""
    import textwrap
    code = textwrap.dedent("""
        import gc, json, cyclegc
        from cyclegc._core import _cyclegc as core
        cyclegc.install(max_pause_ms=2)
        old = [[i] for i in range(200_000)]
        cyclegc.collect()                      # old: in generation 2
        core._set_young_chunk(5000)            # what a stop may examine, fixed for the test
        young = []
        for i in range(60_000):
            young.append([i])                  # a young object kept ...
            old.pop()                          # ... and an old one freed: count0 stays put
        before = cyclegc.incremental_stats()["young_chunks"]
        largest = 0
        def watch(phase, info):
            global largest
            if phase == "stop":
                last = cyclegc.incremental_stats()["last_stop"]["parts"]
                largest = max(largest, last.get("young collection", {"objects": 0})["objects"])
        gc.callbacks.append(watch)
        junk = [[i] for i in range(3 * gc.get_threshold()[0])]   # now a young collection is due
        gc.callbacks.remove(watch)
        s = cyclegc.incremental_stats()
        print(json.dumps({"chunks": s["young_chunks"] - before, "young": largest,
                          "intact": all(y == [n] for n, y in enumerate(young))}))
    """)
    doc = child_json(code)
    assert doc["intact"]
    assert doc["chunks"] > 0
    assert 0 < doc["young"] <= 5000


def test_chunks_keep_up_when_callbacks_let_other_threads_allocate():
    """Threads allocating while a gc callback (Python code) lets them run
    inside each stop, when no collection can start: stops come far apart,
    and chunks of the time budget alone fell behind (generation 0 grew to
    1.46-1.49M of the 2.4M objects allocated; the built-in's peak is
    0.26-0.33M).  Each chunk now also covers what was allocated since the
    last one (young_catchup_chunks).  Threads now wait for a stop instead
    (the test above), up to a limit (10 ms at max_pause_ms=2): this callback
    sleeps longer, so they give up, allocate, and catch-up is what bounds
    generation 0."""
    import sys
    import textwrap
    code = textwrap.dedent("""
        import gc, json, threading, time, cyclegc
        cyclegc.install(max_pause_ms=2)
        gc.set_threshold(100_000, 10, 10)
        def cb(phase, info):
            if phase == "start":
                time.sleep(0.015)
        gc.callbacks.append(cb)
        peak = [0]
        done = [False]
        def work(n):
            for i in range(n):
                a = [i]; b = {"a": a}; a.append(b)
        def probe():
            while not done[0]:
                peak[0] = max(peak[0], len(gc.get_objects(0)) + len(gc.get_objects(1)))
                time.sleep(0.02)
        ts = [threading.Thread(target=work, args=(400_000,)) for _ in range(3)]
        p = threading.Thread(target=probe)
        p.start()
        for t in ts: t.start()
        for t in ts: t.join()
        done[0] = True; p.join()
        gc.callbacks.remove(cb)
        s = cyclegc.incremental_stats()
        print(json.dumps({"catchup": s["young_catchup_chunks"], "peak": peak[0],
                          "gave_up": s["stop_wait_timeouts"]}))
    """)
    doc = child_json(code)
    assert doc["gave_up"] > 0, doc
    assert doc["catchup"] > 0, doc
    # Without catch-up chunks the peak was 1.46-1.49M.  With them it depends
    # on scheduling: 0.21-0.47M (9 runs, 3.11-3.13, load ~2), 1.15M once on 3.11 while a
    # regression-suite run shared the two cores (CI, fourth session); the
    # bound separates the two regimes rather than timing them.
    assert doc["peak"] < 1_300_000, doc


EXTRA_STOPS_PROGRAM = """
import gc, json, sys, cyclegc
from cyclegc._core import _cyclegc as core
if len(sys.argv) > 2:
    gc.set_threshold(int(sys.argv[2]), 10, 10)
cyclegc.install(max_pause_ms=2)
core._set_extra_stops(sys.argv[1] == "on")
threshold0 = gc.get_threshold()[0]
stops = []
def cb(phase, info):
    if phase == "start":
        stops.append([info["generation"], gc.get_count()[0], len(gc.get_objects(0))])
    else:
        stops[-1].append(len(gc.get_objects(0)))
class C: pass
heap = [[C() for _ in range(10)] for _ in range(100_000)]
cyclegc.collect()
before = cyclegc.incremental_stats()["extra_stops"]
core.run_increment(0, True)      # a round over the 1.1M-object heap begins
gc.callbacks.append(cb)
kept = []
for i in range(200_000):         # every object survives: promotions come fast
    c = C(); c.self = c; c.i = i
    kept.append(c)
    del c
gc.callbacks.remove(cb)
s = cyclegc.incremental_stats()
extra = [st for st in stops if st[1] <= threshold0]
alive = all(k.self is k and k.i == n for n, k in enumerate(kept))
print(json.dumps({"extra": s["extra_stops"] - before, "total_extra": s["extra_stops"],
                  "trigger_extra": core.trigger_stats()["extra_stops"],
                  "rounds": s["rounds"], "between": extra, "alive": alive}))
"""


@pytest.mark.parametrize("on", [True, False])
def test_a_round_behind_its_pacer_gets_extra_stops_between_young_ones(on):
    """Stops come with young collections, one per threshold0 allocations;
    a round over a big heap while the program promotes fast falls behind
    its pacer (Sphinx on 3.13 carried 2-3x the built-in's old garbage).
    Then an extra stop, old work only, runs halfway to the next young
    collection: it leaves generation 0 alone (its objects are still
    there when it ends) and reports generation 2."""
    import json
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", EXTRA_STOPS_PROGRAM, "on" if on else "off"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["alive"] and doc["rounds"] >= 1
    if not on:
        assert doc["extra"] == 0 and doc["between"] == []
        return
    assert doc["extra"] > 0 and doc["trigger_extra"] == doc["total_extra"]
    assert len(doc["between"]) == doc["extra"]
    for gen, count0, young_before, young_after in doc["between"]:
        assert gen == 2
        assert young_before > 0 and young_after >= young_before * 0.9


def test_a_round_behind_gets_a_stop_every_350_allocations_under_a_high_threshold0():
    """3.13's threshold0 of 2000 gave a round behind its pacer one extra
    stop per young period, a third of 3.12's rate of stops per allocation
    (threshold0 700), and Sphinx on 3.13 carried more floating garbage
    (peak RSS 1.11-1.34x).  Under threshold0 2100 a young period now holds
    several extra stops (at 350, 700, ... allocations); each one still
    leaves the young generation alone."""
    import json
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", EXTRA_STOPS_PROGRAM, "on", "2100"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["alive"] and doc["extra"] > 0, doc
    # before: every extra stop at the halfway mark (count0 ~1050)
    points = {round(count0 / 350) for _, count0, _, _ in doc["between"]}
    assert len(points) >= 2, doc["between"]
    for gen, count0, young_before, young_after in doc["between"]:
        assert gen == 2 and count0 <= 2100
        assert young_before > 0 and young_after >= young_before * 0.9


def test_overflow_garbage_is_parked_then_cleared_a_slice_per_stop():
    """A structure bigger than a stop truncates a slice; the slice is put
    back and the next stop, in the same round, takes its closure whole in
    one oversized slice (until the seventh session, only the round after
    two truncated ones did: large garbage waited three rounds), which proves
    it garbage in its stop (weakrefs cleared and called back, finalizers
    run) and parks it; later stops tp_clear it a slice at a time.
    Meanwhile nothing reaches it: a weakref a finalizer made to it is dead,
    get_objects does not list it; collect() clears what is left."""
    import textwrap
    code = textwrap.dedent("""
        import gc, json, weakref, cyclegc
        from cyclegc._core import _cyclegc as core
        core._set_spread(False)          # the one-stop proof (test_spread.py: across stops)
        cyclegc.install(max_pause_ms=0.2)
        gc.disable()                     # increments are run by hand below
        class N:
            __slots__ = ("nxt", "prev", "__weakref__")
        late = []
        log = []
        class Fin:
            def __init__(self, target):
                self.target = target
            def __del__(self):
                log.append("del")
                # a weakref made while it dies: dead before the program runs
                # again; its callback runs, as the built-in's would when it
                # frees the target
                late.append(weakref.ref(self.target, lambda r: log.append("late callback")))
        class Outside:
            def __del__(self):
                log.append("outside freed")
        def build(n):
            first = prev = N()
            for _ in range(n):
                x = N(); x.prev = prev; prev.nxt = x; prev = x
            prev.nxt = first; first.prev = prev
            return first
        ring = build(60_000)
        holder = [ring, Fin(ring.nxt), Outside()]
        holder.append(holder)
        called = []
        wr = weakref.ref(ring.nxt.nxt, lambda r: called.append(1))
        cyclegc.collect()                # alive: into the old generation, which rounds sweep
        del ring, holder
        for i in range(4000):
            core.run_increment(0, cyclegc.incremental_stats()["phase"] == "idle")
            s = cyclegc.incremental_stats()
            if s["parked_total"]:
                break
        parked_at = s["parked_total"]
        rounds_at_proof = s["rounds"]
        after_proof = {"late_dead": all(w() is None for w in late), "called": len(called),
                       "wr_dead": wr() is None, "log": list(log),
                       "listed": sum(isinstance(o, N) for o in gc.get_objects())}
        for i in range(2000):
            if not cyclegc.incremental_stats()["parked_now"]:
                break
            core.run_increment(0)
        s = cyclegc.incremental_stats()
        print(json.dumps({"parked": parked_at, "overflow": s["overflow_collections"],
                          "rounds_at_proof": rounds_at_proof,
                          "oversized": s["oversized_slices"],
                          "after_proof": after_proof, "left": s["parked_now"],
                          "cleared": s["parked_cleared"], "log": log}))
    """)
    doc = child_json(code)
    assert doc["parked"] >= 60_000 and doc["oversized"] == doc["overflow"] >= 1, doc
    # proven in the first round after the one that met it: there the
    # closure of the ring (taken whole) was referenced from `holder`, other
    # garbage its closure does not reach, swept after it
    assert doc["rounds_at_proof"] <= 1, doc
    a = doc["after_proof"]
    assert a["late_dead"] and a["wr_dead"] and a["called"] == 1
    # all finalizers ran in the proving stop, and the late weakref's callback
    assert sorted(a["log"]) == ["del", "late callback", "outside freed"]
    assert a["listed"] == 0               # parked objects are in no generation
    assert doc["left"] == 0 and doc["cleared"] > 0
    assert sorted(doc["log"]) == ["del", "late callback", "outside freed"]


def test_a_slice_that_is_garbage_whole_skips_the_unreachable_walk(bounded):
    """A structure dropped whole is found garbage by the counts build_slice
    keeps (no member referenced from outside); its finalizers and weakref
    callbacks still run, and nothing alive next to it is touched."""
    log = []

    class Fin:
        def __init__(self, peer=None):
            self.peer = peer

        def __del__(self):
            log.append("del")

    keep = [Node(i) for i in range(50)]
    ring = [Node(i) for i in range(3000)]
    for a, b in zip(ring, ring[1:] + ring[:1]):
        a.refs.append(b)
    ring[7].refs.append(Fin())
    watched = weakref.ref(ring[5], lambda w: log.append("callback"))
    holder = [ring]
    cyclegc.collect()                       # old
    before = cyclegc.incremental_stats()["whole_garbage_slices"]
    del ring, a, b
    holder.clear()
    finish_round()
    assert cyclegc.incremental_stats()["whole_garbage_slices"] > before
    assert watched() is None
    assert sorted(log) == ["callback", "del"]
    assert all(n.name == i for i, n in enumerate(keep))


def test_an_oversized_slice_is_the_first_slice_of_its_stop(bounded):
    """In an uncapped round a closure past the hard cap met after other
    slices of the stop is put back (deferred_slices) and taken whole by the
    next stop's first slice: the stop holds the oversized slice and little
    else.  A pessimistic cost estimate leaves room for several slices per
    stop; wherever the ring falls among small cycles, it is collected, and
    every stop with an oversized slice ran no slice before it."""
    deferred = 0
    for k in range(0, 2001, 250):
        holder = []
        make_old_cycles(k, holder)
        ring = [Node(i) for i in range(600)]
        for a, b in zip(ring, ring[1:] + ring[:1]):
            a.refs.append(b)
        watched = weakref.ref(ring[3])
        make_old_cycles(200, holder)
        cyclegc.collect()                   # all of it old, in that order
        del ring, a, b
        before = cyclegc.incremental_stats()
        core._force_oversized(100)
        core._set_sweep_cost(1000)
        try:
            core.run_increment(0, True)
            for _ in range(MAX_STEPS):
                s = cyclegc.incremental_stats()
                if s["rounds"] > before["rounds"]:
                    break
                over = s["oversized_slices"]
                core.run_increment(0)
                s = cyclegc.incremental_stats()
                if s["oversized_slices"] > over:
                    # the oversized slice ran first; a live one lets the stop go on
                    assert s["last_stop"]["oversized_slice_at"] == 0, (k, s["last_stop"])
        finally:
            core._force_oversized(0)
        s = cyclegc.incremental_stats()
        assert watched() is None, k
        deferred += s["deferred_slices"] - before["deferred_slices"]
        holder.clear()
        cyclegc.collect()
    assert deferred > 0


def test_set_sweep_cost_rejects_what_is_not_a_positive_number():
    with pytest.raises(TypeError):
        core._set_sweep_cost("1")
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            core._set_sweep_cost(bad)


@pytest.mark.parametrize("spread", [
    pytest.param(True, marks=[
        pytest.mark.skipif(
            not core._write_watch_selftest()["available"],
            reason="no page write detector here (Linux 6.7+ userfaultfd write-protection)"),
        pytest.mark.xfail(
            strict=False,
            reason="load-sensitive (eleventh session): on a loaded machine 3-5 oversized stops in "
                   "12 rounds, 1 run in 5 with the tenth session's build, 2-3 in 5 with this one; "
                   "the proof across stops is off by default")]),
    False])
def test_a_live_structure_marking_cannot_reach_is_not_taken_whole_every_round(spread):
    """A structure held only by C code (here atexit's callback table) is
    never marked: every round's sweep meets it, its closure is too big for
    a stop.  Where page writes can be watched it is proven alive across
    stops, hardly ever in an oversized stop.  Without, taking it whole costs an
    oversized stop; after two in a row that find it alive, truncations
    wait for the rule of two truncated rounds again for two rounds: about
    two oversized stops in four rounds, not one per round."""
    import textwrap
    code = textwrap.dedent(f"""
        import atexit, gc, json, cyclegc
        from cyclegc._core import _cyclegc as core
        core._set_spread({spread})
        cyclegc.install(max_pause_ms=0.2)
        gc.disable()
        class N:
            __slots__ = ("nxt", "i")
        first = prev = N(); first.i = 0
        for i in range(1, 60_000):
            x = N(); x.i = i; prev.nxt = x; prev = x
        prev.nxt = first
        atexit.register(len, [first])   # held by C only
        del first, prev, x
        cyclegc.collect()
        for _ in range(12):
            core.run_increment(0, True)
            for i in range(20000):
                if cyclegc.incremental_stats()["phase"] == "idle":
                    break
                core.run_increment(0)
        s = cyclegc.incremental_stats()
        print(json.dumps({{"rounds": s["rounds"], "oversized": s["oversized_slices"],
                          "parked": s["parked_total"], "kept": s["spread"]["kept_alive"],
                          "objects": sum(isinstance(o, N) for o in gc.get_objects())}}))
    """)
    doc = child_json(code)
    assert doc["rounds"] >= 12 and doc["parked"] == 0 and doc["objects"] == 60_000, doc
    if spread:
        # kept alive across stops; an oversized stop only after two spreads
        # in a row the program's writes left unsure (rare)
        assert doc["oversized"] <= 2 and doc["kept"] >= 6, doc
    else:
        # two oversized stops, two rounds without: 6 or 7 in 12 rounds, not 12
        assert 1 <= doc["oversized"] <= 8, doc


def test_an_extra_stop_asked_for_before_a_collect_is_dropped():
    """A young collection asks for an extra stop at the halfway mark; if a
    collect() ends the round first, the mark must not make every later
    allocation queue a collection that finds nothing to do."""
    import textwrap
    code = textwrap.dedent("""
        import gc, json, cyclegc
        from cyclegc._core import _cyclegc as core
        cyclegc.install(max_pause_ms=2)
        class C: pass
        heap = [[C() for _ in range(10)] for _ in range(100_000)]
        cyclegc.collect()
        core.run_increment(0, True)
        kept = []
        for i in range(400_000):
            kept.append(C())
            if core.trigger_stats()["extra_stop_at"] > 0:
                break
        asked = core.trigger_stats()["extra_stop_at"]
        cyclegc.collect()                  # ends the round
        wrong = core.trigger_stats()["wrong_guesses"]
        junk = [C() for _ in range(5 * gc.get_threshold()[0])]
        print(json.dumps({"asked": asked, "wrong": core.trigger_stats()["wrong_guesses"] - wrong,
                          "mark": core.trigger_stats()["extra_stop_at"]}))
    """)
    doc = child_json(code)
    assert doc["asked"] > 0, doc
    assert doc["wrong"] <= 2, doc


def test_comprehension_list_is_a_root_with_a_python_gc_callback():
    """A list a comprehension is building lives on the comprehension's value
    stack.  Marking must see it there also when a gc callback (Python code,
    as every monitoring tool and `cyclegc run` install) runs in each stop:
    otherwise the list and everything appended to it end in oversized
    slices found alive.  aiohttp's start-up on 3.11 under the realworld
    benchmark's recorder showed it (stops of 6-21 ms): 3.11 visits a
    round's roots inside an allocation and adds the top frame's stack at
    the next safe point, which was the RESUME of the class's __init__, the
    comprehension below it (trigger.c, pending_late_roots).  Before the fix,
    4 oversized slices in every run on 3.11."""
    import subprocess
    import textwrap
    from pathlib import Path
    apps = Path(__file__).resolve().parent.parent / "benchmarks" / "realworld" / "apps"
    code = textwrap.dedent("""
        import json, sys, cyclegc
        cyclegc.install(max_pause_ms=2)
        cyclegc.callbacks.append(lambda phase, info: None)
        sys.path.insert(0, sys.argv[1])
        import catalog                      # the realworld programs' rows
        data = catalog.build(200_000)
        s = cyclegc.incremental_stats()
        print(json.dumps({"oversized": s["oversized_slices"], "rows": len(data)}))
    """)
    out = subprocess.run([sys.executable, "-c", code, str(apps)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    import json
    doc = json.loads(out.stdout)
    assert doc["rows"] == 200_000
    assert doc["oversized"] == 0


def test_threads_wait_for_a_stop_whose_python_callback_lets_them_run():
    """A Python gc callback hands the GIL to other threads while the stop
    holds the collecting flag; before the threads waited for such a stop
    they allocated unchecked meanwhile, and the young chunk that had to
    catch up took 25-45 ms (benchmarks/pauses/threads_work.py, run here
    with fewer iterations: 3-16 catch-up chunks per run on the previous
    build, 2 runs per interpreter, and 2 oversized slices once on 3.11).
    Now a thread that needs a collection waits for the stop to end: no
    catch-up chunk, and the threads did wait.  On 3.11 the main thread's
    comprehension list, seen only when it is parked or via late roots, must
    also not end in an oversized slice."""
    import json
    import subprocess
    import textwrap
    from pathlib import Path
    program = Path(__file__).resolve().parent.parent / "benchmarks" / "pauses" / "threads_work.py"
    code = textwrap.dedent("""
        import json, runpy, sys, cyclegc
        cyclegc.install(max_pause_ms=2)
        cyclegc.callbacks.append(lambda phase, info: [phase] * 4)
        sys.argv = [sys.argv[1], "100000"]
        runpy.run_path(sys.argv[0], run_name="__main__")
        s = cyclegc.incremental_stats()
        print(json.dumps({"catchup": s["young_catchup_chunks"], "waits": s["stop_waits"],
                          "oversized": s["oversized_slices"]}))
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(program)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed, stats = proc.stdout.strip().splitlines()
    assert printed.endswith("200000"), printed        # the program ran to its end
    doc = json.loads(stats)
    assert doc["waits"] > 0, doc
    assert doc["catchup"] == 0, doc
    assert doc["oversized"] == 0, doc
