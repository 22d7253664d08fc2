#!/usr/bin/env python3
"""Threads stress for cyclegc.install() (issue 3).

    python scripts/stress_threads.py [--seconds 120] [--threads 8] [--fork]

With cyclegc installed (it runs every automatic collection), --threads
worker threads run for --seconds, each doing a random mix of:

* allocating cyclic garbage: plain cycles, cycles holding objects with a
  ``__del__`` (finalizers), objects only reachable from a cycle, objects with
  a live weakref whose callback must run, a ring of objects kept a while so
  that they reach generations 1 and 2 before they die;
* ``collect()`` of a random generation, ``freeze()`` and a later
  ``unfreeze()``, ``get_objects(0)``;
* registering a ``gc.callbacks`` callback (which may release the GIL,
  allocate, call collect() or raise) and unregistering it later.

The finalizers release the GIL (``time.sleep(0)``, ``os.write`` to
/dev/null), start threads (which allocate cycles themselves), raise
(an Exception or a KeyboardInterrupt subclass: both must reach
sys.unraisablehook, nothing else), call ``collect()`` (nested: a no-op),
or resurrect the object (it must never be finalized again).

With --fork, the workers also fork children (os.fork and multiprocessing's
fork start method, alternately) that check cyclegc is still installed and
fork-friendly, collect their own cyclic garbage (every finalizer exactly
once, automatic collections happen) and exit; every exit status must be 0
(a child that hangs is killed by SIGALRM, a failure).  One exception, shared
with the built-in collector: a child forked while another thread of the
parent was inside a collection inherits the interpreter's `collecting` flag
set, and no collection can ever run in it; such children check that this is
why (cyclegc's counter of allocations skipped because `collecting` is set;
with --builtin, a collect() that calls no gc.callbacks) and are counted
apart ("during another thread's collection").  A multiprocessing join()
that comes back before the child's exit status is known (CPython's join
race between threads, see join_mp_child and scripts/mp_join_race.py) is
waited out and counted ("multiprocessing join races"), not failed.

Two things keep the heap bounded, with either collector (--builtin runs the
same stress with the built-in one, for reference): finalizers release the
GIL at most RELEASES_PER_COLLECTION times per collection, and workers back
off while generation 0 is large (--max-young).  Without them, a collection
that runs Python code is preempted by the other busy threads, which
meanwhile allocate freely (no collection can start while one runs), so the
next collection is bigger and slower, and the heap grows by gigabytes.

Checked, each a violation that makes the exit status 1:

* every object with a ``__del__`` that became garbage was finalized exactly
  once by the end (a ledger indexed by a serial number per object);
* every weakref callback ran exactly once; gc.garbage is empty;
* sys.unraisablehook saw exactly the exceptions raised on purpose;
* no exception escaped a worker thread;
* a "start"/"stop" callback kept first in gc.callbacks sees the collections
  strictly one after another, and its counts equal both cyclegc's
  ``collection_stats()`` per-generation totals (whose sum equals the pause
  histogram's total) and the interpreter's ``gc.get_stats()`` deltas;
* no thread stalls for --stall seconds (deadlock): tracebacks of all threads
  are printed and the process exits 1 at once; faulthandler also kills the
  process if everything stops, even the monitor.

Progress, RSS and collection counts are printed every --report seconds
(--rss-csv also writes the RSS samples to a file; at the end, the RSS range
and its least-squares slope after the first fifth of the run, the warm-up);
the last line is ``VERDICT: PASS ...`` or ``VERDICT: FAIL ...``.  With
STRESS_HANG_WAIT=<seconds> in the environment, a detected deadlock waits that
long before exiting, for a debugger (gdb -p PID).
"""
import _thread
import argparse
import faulthandler
import itertools
import os
import random
import signal
import sys
import threading
import time
import traceback
import warnings
import weakref

try:
    import cyclegc
except ImportError:  # run from a checkout without PYTHONPATH
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))
    import cyclegc
import gc
from cyclegc.install import trigger_stats

# fork() with threads running is what --fork is about (3.12+ warns).
warnings.filterwarnings("ignore", category=DeprecationWarning)

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- violations -----------------------------------------------------------------

VIOLATIONS = []          # list.append is atomic under the GIL


def violation(msg):
    VIOLATIONS.append(msg)
    if len(VIOLATIONS) <= 20 or "\n" in msg:   # diagnoses are always printed
        print(f"VIOLATION: {msg}", file=sys.stderr, flush=True)


# ---- the finalizer ledger ----------------------------------------------------------
#
# Every object with a __del__ gets a serial number; CHUNKS[serial >> SHIFT] is
# a bytearray counting finalizer runs per serial.  A chunk whose objects were
# all finalized exactly once is replaced by None (memory stays bounded); a
# finalizer that finds None for its chunk ran a second time.

SHIFT = 16
CHUNK = 1 << SHIFT
MASK = CHUNK - 1
CHUNKS = {}
SERIALS = itertools.count()      # next() is atomic under the GIL
DOUBLES = []                     # serials finalized more than once


def new_serial():
    s = next(SERIALS)
    cid = s >> SHIFT
    if cid not in CHUNKS:
        CHUNKS.setdefault(cid, bytearray(CHUNK))
    return s


def record_finalized(s):
    ch = CHUNKS.get(s >> SHIFT)
    if ch is None:
        DOUBLES.append(s)
        return
    i = s & MASK
    v = ch[i]
    if v:
        DOUBLES.append(s)
    ch[i] = min(v + 1, 255)


def compress_chunks(upto):
    """Drop the chunks below serial `upto` whose objects were all finalized
    exactly once; returns how many serials are finalized so far (approx)."""
    for cid in sorted(CHUNKS):
        if (cid + 1) << SHIFT > upto:
            break
        ch = CHUNKS[cid]
        if ch is not None and ch.count(1) == CHUNK:
            CHUNKS[cid] = None
            if ch.count(1) != CHUNK:     # a second run slipped in meanwhile
                DOUBLES.append(cid << SHIFT)


def ledger_verdict(created):
    """(finalized once, never, more than once) over serials [0, created)."""
    once = never = more = 0
    for cid in range((created + CHUNK - 1) >> SHIFT):
        ch = CHUNKS.get(cid)
        n = min(CHUNK, created - (cid << SHIFT))
        if ch is None:
            once += n
            continue
        view = ch[:n]
        c1 = view.count(1)
        c0 = view.count(0)
        once += c1
        never += c0
        more += n - c1 - c0
    return once, never, more


# ---- objects -----------------------------------------------------------------------------

class StressError(Exception):
    """Raised on purpose by finalizers and callbacks."""


class StressInterrupt(KeyboardInterrupt):
    """A KeyboardInterrupt raised on purpose by finalizers."""


RAISED = itertools.count()            # finalizer/callback raises done on purpose
UNRAISABLE_SEEN = itertools.count()   # of those, seen by sys.unraisablehook
RESURRECTED = []                      # objects a finalizer resurrected
SPAWNED = []                          # one entry per finalizer-started thread still running
SPAWN_COUNT = itertools.count()       # threads started by finalizers
SPAWN_LIMIT = 8
DEVNULL = os.open(os.devnull, os.O_WRONLY)
STOP = threading.Event()

K_PLAIN, K_SLEEP, K_IO, K_RAISE, K_INTERRUPT, K_SPAWN, K_RESURRECT, K_COLLECT, K_WORK = range(9)
KIND_WEIGHTS = [800, 20, 20, 30, 10, 5, 30, 20, 50]
# Finalizers that release the GIL (sleep, I/O, starting a thread) do so at
# most RELEASES_PER_COLLECTION times per collection (the rest do nothing).
# Each release waits for the GIL behind every busy thread (~threads x the
# switch interval) while the collection holds the `collecting` flag and the
# other threads allocate freely; without a bound, the next collection has
# more such finalizers, and collections get longer and rarer until the heap
# grows by gigabytes -- with the built-in collector just the same.
RELEASES_PER_COLLECTION = 4
RELEASE_BUDGET = [RELEASES_PER_COLLECTION]   # reset by the Checker at "start"
BUILTIN = False           # --builtin: reference run with the built-in collector
KINDS = list(range(len(KIND_WEIGHTS)))


class Node:
    __slots__ = ("a", "b", "c", "__weakref__")


class Fin:
    __slots__ = ("serial", "kind", "ref", "other", "__weakref__")

    def __init__(self, kind=K_PLAIN):
        self.serial = new_serial()
        self.kind = kind

    def __del__(self):
        record_finalized(self.serial)
        kind = self.kind
        if kind == K_PLAIN:
            return
        if kind in (K_SLEEP, K_IO, K_SPAWN):
            if RELEASE_BUDGET[0] <= 0:
                return
            RELEASE_BUDGET[0] -= 1
        if kind == K_SLEEP:
            time.sleep(0)
        elif kind == K_IO:
            os.write(DEVNULL, b"cyclegc stress finalizer\n")
        elif kind == K_RAISE:
            next(RAISED)
            raise StressError(self.serial)
        elif kind == K_INTERRUPT:
            next(RAISED)
            raise StressInterrupt(self.serial)
        elif kind == K_SPAWN:
            if FORKING or IN_FORKED_CHILD:
                # Not while a fork is under way: in the child, a thread
                # started before threading's own after-fork hook has run
                # (a collection may run inside it) is forgotten by it
                # (KeyError in _bootstrap_inner), with either collector.
                # Nor in a forked child, which checks that its own
                # allocations run automatic collections: a thread started
                # there can hold `collecting` through a sleeping finalizer
                # for all of them (CI, 3.11: exit status 15).
                return
            # _thread.start_new_thread, not Thread.start(): start() waits
            # for the new thread to set its `_started` event, and the new
            # thread first takes threading's internal locks (3.12:
            # `_shutdown_locks_lock` in `_set_tstate_lock`).  A finalizer
            # runs wherever a collection runs, also inside the thread that
            # holds that lock (`_maintain_shutdown_locks`); waiting there
            # deadlocks, with either collector (seen once in CI on 3.12).
            if not STOP.is_set() and len(SPAWNED) < SPAWN_LIMIT:
                SPAWNED.append(1)
                try:
                    _thread.start_new_thread(spawned_thread, ())
                except BaseException:
                    SPAWNED.pop()
                    raise
                next(SPAWN_COUNT)
        elif kind == K_RESURRECT:
            RESURRECTED.append(self)
        elif kind == K_COLLECT:
            gc.collect(self.serial % 3)
        elif kind == K_WORK:
            sum(range(200))


def spawned_thread():
    try:
        spawned_work()
    finally:
        SPAWNED.pop()


def spawned_work():
    try:
        for _ in range(50):
            f = Fin(K_PLAIN if random.random() < 0.8 else K_SLEEP)
            f.other = f
            n = Node()
            n.a = n
            n.b = [n, Fin()]
    except BaseException:
        violation("exception in a finalizer-started thread:\n" + traceback.format_exc())


# Weakrefs that must call back exactly once (their referent is garbage).
WR_PENDING = {}


class WR(weakref.ref):
    __slots__ = ("serial",)


def wr_callback(wr):
    if WR_PENDING.pop(wr.serial, None) is None:
        violation(f"weakref callback for serial {wr.serial} ran twice or unexpectedly")


def unraisable_hook(unraisable):
    exc = unraisable.exc_value
    if isinstance(exc, (StressError, StressInterrupt)):
        next(UNRAISABLE_SEEN)
        return
    violation("unexpected unraisable exception: "
              + "".join(traceback.format_exception(unraisable.exc_type, exc, unraisable.exc_traceback))
              + f" (err_msg={unraisable.err_msg!r}, object={unraisable.object!r})")


def count_of(counter):
    """Current value of an itertools.count without advancing it."""
    return int(repr(counter)[6:-1])


# ---- the stats checker -------------------------------------------------------------------

# True from the first "start" callback of a collection to its last "stop"
# callback.  The Checker stays first in gc.callbacks and `closer` last (workers
# insert their callbacks before it), and no Python code runs between setting
# the interpreter's `collecting` flag and the first callback, nor between the
# last one and clearing the flag: so for Python code in any thread (and for a
# forked child, which copies it) IN_COLLECTION[0] is that flag.
IN_COLLECTION = [False]


def closer(phase, info):
    if phase == "stop":
        IN_COLLECTION[0] = False


class Checker:
    """Kept first in gc.callbacks: sees every collection, which must come
    strictly one after another (start, stop, start, stop ...)."""

    def __init__(self):
        self.active = None
        self.started = 0.0
        self.max_duration = 0.0
        self.stops = [0, 0, 0]
        self.collected = [0, 0, 0]
        self.uncollectable = [0, 0, 0]

    def __call__(self, phase, info):
        g = info["generation"]
        if phase == "start":
            if self.active is not None:
                violation(f"collection of generation {g} started inside one of {self.active}")
            self.active = g
            IN_COLLECTION[0] = True
            self.started = time.monotonic()
            RELEASE_BUDGET[0] = RELEASES_PER_COLLECTION
        elif phase == "stop":
            if self.active != g:
                violation(f"stop of generation {g} without its start (active {self.active})")
            self.active = None
            RELEASE_BUDGET[0] = RELEASES_PER_COLLECTION   # for refcount-freed ones
            self.max_duration = max(self.max_duration, time.monotonic() - self.started)
            self.stops[g] += 1
            self.collected[g] += info["collected"]
            self.uncollectable[g] += info["uncollectable"]
        else:
            violation(f"unknown callback phase {phase!r}")


def stats_snapshot():
    cs = cyclegc.collection_stats()
    return {
        "cg": [(g["collections"], g["collected"], g["uncollectable"]) for g in cs["generations"]],
        "hist": sum(cs["pause_histogram"].values()),
        "gc": [(s["collections"], s["collected"], s["uncollectable"]) for s in gc.get_stats()],
        "auto": 0 if BUILTIN else trigger_stats()["collections"],
    }


def transient_callback(rng):
    """A gc.callbacks callback that does something while a collection runs."""
    mode = rng.choice(["count", "sleep", "alloc", "collect", "raise"])
    calls = [0]

    def cb(phase, info):
        calls[0] += 1
        if mode == "sleep":
            time.sleep(0)
        elif mode == "alloc":
            x = [Node() for _ in range(20)]
            x.append(x)
        elif mode == "collect":
            if gc.collect() != 0:
                violation("collect() inside a gc callback collected (no collection in progress?)")
        elif mode == "raise" and calls[0] % 7 == 0:
            next(RAISED)
            raise StressError("callback")
    return cb


# ---- forked children -----------------------------------------------------------------------

CHILD_OK = 0
CHILD_INHERITED_COLLECTING = 20


def child_check():
    """Runs in a forked child: returns an exit status (0 = fine)."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(30)           # a child that hangs dies of SIGALRM
    violations_before = CHILD_VIOLATIONS_FROM[0] = len(VIOLATIONS)
    if not BUILTIN:
        if not cyclegc.installed():
            return 11
        if gc.collect is not cyclegc.collect:
            return 12
        if not cyclegc.is_fork_friendly():
            return 13
    # Collect what the parent left (fork-friendly in the child, frozen
    # objects included) and a probe.
    probe = Node()
    probe.a = probe
    ref = weakref.ref(probe)
    del probe
    gc.collect()
    if ref() is not None:
        return child_inherited_collecting()
    seen = []

    class ChildFin:
        def __del__(self):
            seen.append(self.n)

    n = 500
    for i in range(n):
        f = ChildFin()
        f.n = i
        f.self = f
    del f
    auto_before = trigger_stats()["collections"]
    CHILD_TRIGGER_BEFORE[0] = None if BUILTIN else trigger_stats()
    before = sum(s["collections"] for s in gc.get_stats())
    for _ in range(20000):        # enough for automatic collections
        x = Node()
        x.a = x
    del x
    if sum(s["collections"] for s in gc.get_stats()) <= before:
        return 15
    if not BUILTIN and trigger_stats()["collections"] <= auto_before:
        return 18
    gc.collect()
    if sorted(seen) != list(range(n)):
        return 14
    if len(VIOLATIONS) != violations_before:
        return 17
    return CHILD_OK


def child_inherited_collecting():
    """collect() did not collect a fresh cycle in this child.  Legitimate only
    if the child was forked while another thread was inside a collection: the
    child then inherits the interpreter's `collecting` flag set, the thread
    that would clear it does not exist here, and no collection ever runs in
    this child -- with the built-in collector just the same (CPython 3.11-3.13
    do not reset the flag after fork).  IN_COLLECTION may say so; it misses
    the moment between the flag being set and the Checker's first bytecode, so
    cyclegc's own counter decides: allocations past the threshold are
    skipped because `collecting` is set."""
    if BUILTIN:
        # The built-in's collect() returns 0 at once, before any gc.callbacks
        # call, when `collecting` is set; a collection that runs calls them.
        phases = []
        probe = lambda phase, info: phases.append(phase)    # noqa: E731
        gc.callbacks.insert(0, probe)
        try:
            found = gc.collect()
        finally:
            gc.callbacks.remove(probe)
        return CHILD_INHERITED_COLLECTING if not phases and found == 0 else 19
    skipped = trigger_stats()["skipped_collecting"]
    for _ in range(5000):
        x = Node()
        x.a = x
    if trigger_stats()["skipped_collecting"] > skipped and gc.collect() == 0:
        return CHILD_INHERITED_COLLECTING
    return 19                  # collect() does not work, and not because of that


def child_check_verbose():
    code = child_check()
    if code not in (CHILD_OK, CHILD_INHERITED_COLLECTING):
        info = (f"child {os.getpid()}: exit {code}, counts {gc.get_count()}, "
                f"in_collection {IN_COLLECTION[0]}, enabled {gc.isenabled()}, "
                f"thresholds {gc.get_threshold()}, "
                f"trigger {None if BUILTIN else trigger_stats()} "
                f"at child start {CHILD_TRIGGER_BEFORE[0]}\n")
        probe = Node()
        probe.a = probe
        ref = weakref.ref(probe)
        del probe
        n = gc.collect()
        info += f"collect() -> {n}, probe collected: {ref() is None}\n"
        new = VIOLATIONS[CHILD_VIOLATIONS_FROM[0]:]
        if new:
            info += "child violations:\n" + "\n".join(new[:5]) + "\n"
        os.write(2, info.encode())
    return code


CHILD_VIOLATIONS_FROM = [0]
CHILD_TRIGGER_BEFORE = [None]


def child_main_os_fork():
    code = 1
    try:
        code = child_check_verbose()
    except BaseException:
        try:
            os.write(2, traceback.format_exc().encode())
        except OSError:
            pass
        code = 16
    finally:
        os._exit(code)


def mp_target():
    sys.exit(child_check_verbose())


FORKS = itertools.count()
FORKING = []               # non-empty while some thread is inside os.fork()
IN_FORKED_CHILD = []       # non-empty in a forked child
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=lambda: FORKING.append(1),
                        after_in_parent=lambda: FORKING.pop(),
                        after_in_child=lambda: (FORKING.clear(), IN_FORKED_CHILD.append(1)))
FORKS_DURING_COLLECTION = itertools.count()
MP_JOIN_RACES = itertools.count()    # join() returned before the exit status was known


def hung_child_stacks(pid, sentinel=None):
    """Where a hung child is stuck, before it is killed: its state, which
    processes still hold the write end of its sentinel pipe (join() waits
    for that pipe, which a process forked by another thread between the
    pipe's creation and the parent closing its copy inherits),
    its C stacks (gdb, if installed) and its Python stack (faulthandler,
    which the child inherited enabled, prints every thread's traceback on
    SIGABRT to the stderr it shares with us)."""
    import shutil
    import subprocess
    text = ""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text += f"\n  child {pid} state: {f.read().split(')')[-1].split()[0]}"
    except OSError as exc:
        text += f"\n  child {pid}: no /proc entry ({exc.strerror})"
    holders = []
    if sentinel is not None:
        try:
            ino = os.fstat(sentinel).st_ino
            for d in os.listdir("/proc"):
                if not d.isdigit() or int(d) == os.getpid():
                    continue
                try:
                    for fd in os.listdir(f"/proc/{d}/fd"):
                        if os.readlink(f"/proc/{d}/fd/{fd}") != f"pipe:[{ino}]":
                            continue
                        with open(f"/proc/{d}/fdinfo/{fd}") as f:   # the write end only:
                            flags = int(f.read().split("flags:")[1].split()[0], 8)
                        if flags & os.O_WRONLY:      # every later child has the read end
                            with open(f"/proc/{d}/stat") as f:
                                fields = f.read().split(")")[-1].split()
                            holders.append(f"{d} (state {fields[0]}, parent {fields[1]})")
                            break
                except OSError:
                    pass
            text += f"\n  sentinel pipe held by: {holders or 'nobody else'}"
        except OSError as exc:
            text += f"\n  sentinel: {exc!r}"
    # A child that exited still blocks join() while another process holds
    # its sentinel: look at the first such process instead.
    if not os.path.exists(f"/proc/{pid}") and sentinel is not None and holders:
        pid = int(holders[0].split()[0])
        text += f"\n  looking at sentinel holder {pid} instead"
    if shutil.which("gdb"):
        try:
            out = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 40"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 timeout=60).stdout
            frames = [line for line in out.splitlines()
                      if line.startswith(("#", "Thread", "ptrace", "Could not"))]
            text += "\n  gdb: " + "\n  gdb: ".join(frames[:80])
        except (OSError, subprocess.SubprocessError) as exc:
            text += f"\n  gdb failed: {exc!r}"
    try:
        os.kill(pid, signal.SIGABRT)
        time.sleep(2)
    except OSError:
        pass
    return text


def join_mp_child(p, timeout):
    """Joins multiprocessing child `p` for up to `timeout` seconds; returns
    True when join() came back before its exit status was known.

    multiprocessing is not thread-safe here (CPython gh-130895, gh-148318,
    gh-92881): another thread's Process.start() polls every child in its
    _cleanup(), and when it reaps ours first, our join() returns at once
    with exitcode None (our waitpid gets ECHILD) until that thread stores
    the status it reaped in the same Popen object.  That is not a hang:
    wait for the status, which is the child's real one."""
    deadline = time.monotonic() + timeout
    p.join(timeout)
    raced = False
    while p.exitcode is None and time.monotonic() < deadline:
        raced = True
        time.sleep(0.01)
        p.join(max(0.0, deadline - time.monotonic()))
    return raced and p.exitcode is not None


def do_fork(use_mp):
    next(FORKS)
    if use_mp:
        import multiprocessing
        p = multiprocessing.get_context("fork").Process(target=mp_target)
        p.start()
        if join_mp_child(p, 120):
            next(MP_JOIN_RACES)
        if p.exitcode is None:
            where = hung_child_stacks(p.pid, p.sentinel)
            p.kill()
            p.join()
            violation("multiprocessing fork child did not finish in 120 s" + where)
        elif p.exitcode == CHILD_INHERITED_COLLECTING:
            next(FORKS_DURING_COLLECTION)
        elif p.exitcode != 0:
            violation(f"multiprocessing fork child exit code {p.exitcode}")
        return
    pid = os.fork()
    if pid == 0:
        child_main_os_fork()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        violation(f"forked child killed by signal {os.WTERMSIG(status)}"
                  + (" (SIGALRM: hung)" if os.WTERMSIG(status) == signal.SIGALRM else ""))
    elif os.WEXITSTATUS(status) == CHILD_INHERITED_COLLECTING:
        next(FORKS_DURING_COLLECTION)
    elif os.WEXITSTATUS(status) != 0:
        violation(f"forked child exit status {os.WEXITSTATUS(status)}")


# ---- workers ------------------------------------------------------------------------------

PROGRESS = []      # per worker: iterations done


def alloc_batch(rng, ring, fin_per_batch):
    for _ in range(20):
        # plain cyclic garbage
        n = Node()
        n.a = n
        lst = [n, {}]
        lst[1]["l"] = lst
    nfin = int(fin_per_batch) + (rng.random() < fin_per_batch % 1)
    for _ in range(nfin):
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        shape = rng.randrange(5)
        f = Fin(kind)
        if shape == 0:            # self cycle
            f.other = f
        elif shape == 1:          # two-object cycle
            n = Node()
            n.a = f
            f.other = n
        elif shape == 2:          # reachable only from a cycle
            n = Node()
            n.a = n
            n.b = f
        elif shape == 3:          # a live weakref that must call back
            f.other = [f]
            wr = WR(f, wr_callback)
            wr.serial = f.serial
            WR_PENDING[f.serial] = wr
        else:                     # kept a while: ages into older generations
            f.other = f
            ring[rng.randrange(len(ring))] = f
    if nfin:
        # no reference cycle: freed by its reference count
        Fin(K_SLEEP if rng.random() < 0.02 else K_PLAIN)


# Actions per second, over all workers together (each worker draws its own
# exponential waits).  freeze() is rare and short: everything frozen,
# garbage included, goes to generation 2 at unfreeze() and waits there for
# the next full collection.
RATES = {"collect": 20.0, "freeze": 0.3, "callback": 4.0, "get_objects": 2.0,
         "unresurrect": 10.0}


def worker(idx, seed, args):
    rng = random.Random(seed)
    ring = [None] * 200
    my_cb = None
    cb_until = 0.0
    frozen_until = None
    now = time.monotonic()
    due = {k: now + rng.expovariate(r / args.threads) for k, r in RATES.items()}
    next_fork = now + rng.uniform(0, args.fork_every)
    it = 0
    try:
        while not STOP.is_set():
            it += 1
            PROGRESS[idx] = it
            alloc_batch(rng, ring, args.fin_per_batch)
            if gc.get_count()[0] > args.max_young:
                # Back-pressure: see --max-young.
                next(BACKOFFS)
                time.sleep(0.001)
            now = time.monotonic()
            for action, when in due.items():
                if now < when:
                    continue
                due[action] = now + rng.expovariate(RATES[action] / args.threads)
                if action == "collect":
                    gc.collect(rng.randrange(3))
                elif action == "freeze" and frozen_until is None:
                    gc.freeze()
                    frozen_until = now + rng.uniform(0.02, 0.3)
                elif action == "callback" and my_cb is None:
                    my_cb = transient_callback(rng)
                    gc.callbacks.insert(-1, my_cb)     # before `closer`
                    cb_until = now + rng.uniform(0.05, 2.0)
                elif action == "get_objects":
                    gc.get_objects(0)
                elif action == "unresurrect" and RESURRECTED:
                    del RESURRECTED[:rng.randrange(len(RESURRECTED) + 1)]
            if frozen_until is not None and now >= frozen_until:
                gc.unfreeze()
                frozen_until = None
            if my_cb is not None and now >= cb_until:
                gc.callbacks.remove(my_cb)
                my_cb = None
            if args.fork and now >= next_fork and not IN_COLLECTION[0]:
                do_fork(use_mp=(next(FORKS_KIND) % 2 == 1))
                next_fork = time.monotonic() + rng.uniform(0.5, 1.5) * args.fork_every
    except BaseException:
        violation(f"exception in worker {idx}:\n" + traceback.format_exc())
    finally:
        if my_cb is not None:
            gc.callbacks.remove(my_cb)
        if frozen_until is not None:
            gc.unfreeze()
        PROGRESS[idx] = -1


FORKS_KIND = itertools.count()
BACKOFFS = itertools.count()


def wait_for_collection(checker, limit):
    """Wait until no collection is running.  An automatic one may still be
    running in another thread (cyclegc's helper thread on 3.11) after every
    worker stopped; collect() meanwhile would return 0 without collecting."""
    deadline = time.monotonic() + limit
    while checker.active is not None:
        if time.monotonic() > deadline:
            dump_and_die(f"a collection of generation {checker.active} started "
                         f"{time.monotonic() - checker.started:.1f} s ago is still running "
                         f"after every worker stopped (stuck?)")
        time.sleep(0.01)


def wait_for_spawned(deadline):
    """Wait until no finalizer-started thread runs; False at the deadline."""
    while SPAWNED:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def dump_and_die(why):
    print(f"VERDICT: FAIL: {why}", file=sys.stderr, flush=True)
    faulthandler.dump_traceback(all_threads=True)
    if os.environ.get("STRESS_HANG_WAIT"):
        print(f"pid {os.getpid()} waiting", file=sys.stderr, flush=True)
        time.sleep(float(os.environ["STRESS_HANG_WAIT"]))
    os._exit(1)


# ---- main --------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--fork", action="store_true", help="workers also fork children")
    p.add_argument("--fork-every", type=float, default=1.0,
                   help="seconds between forks per worker with --fork (default 1)")
    p.add_argument("--fin-per-batch", type=float, default=0.25,
                   help="objects with a finalizer per batch of 60 cyclic objects (default 0.25)")
    p.add_argument("--max-young", type=int, default=10000,
                   help="a worker sleeps 1 ms after a batch while generation 0 holds more "
                        "objects than this (default 10000).  A collection that runs Python "
                        "code (gc.callbacks, finalizers) is preempted by the other busy "
                        "threads, which meanwhile allocate freely (the `collecting` flag "
                        "stops new collections): without back-pressure generation 0 grows "
                        "to millions of objects, with the built-in collector too")
    p.add_argument("--report", type=float, default=5.0, help="seconds between progress lines")
    p.add_argument("--stall", type=float, default=60.0,
                   help="a worker making no progress this long is a deadlock")
    p.add_argument("--switch-interval", type=float, default=0.0005,
                   help="sys.setswitchinterval (smaller: more interleaving)")
    p.add_argument("--rss-csv", metavar="FILE", help="also write the RSS samples (seconds,rss_mb) here")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--builtin", action="store_true",
                   help="reference run: the built-in collector, cyclegc not installed")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)

    # If everything stops, the monitor included, faulthandler's own thread
    # still dumps the stacks and exits.
    faulthandler.enable()
    faulthandler.dump_traceback_later(args.seconds + 3 * args.stall + 60, exit=True)
    sys.setswitchinterval(args.switch_interval)
    sys.unraisablehook = unraisable_hook

    global BUILTIN
    BUILTIN = args.builtin
    if not BUILTIN:
        cyclegc.install()
    gc.enable()
    print(f"stress_threads: python {sys.version.split()[0]}, "
          f"{'BUILT-IN collector' if BUILTIN else 'cyclegc installed'}, {args.threads} threads, "
          f"{args.seconds:g} s, fork={'yes' if args.fork else 'no'}, seed {seed}, "
          f"thresholds {gc.get_threshold()}, pending calls in any thread: "
          f"{bool(trigger_stats()['pending_any_thread'])}", flush=True)

    checker = Checker()
    gc.disable()              # no collection between the baseline and the checker
    gc.callbacks.insert(0, checker)
    gc.callbacks.append(closer)
    base = stats_snapshot()
    gc.enable()

    PROGRESS[:] = [0] * args.threads
    threads = [threading.Thread(target=worker, args=(i, seed + i, args), name=f"worker-{i}")
               for i in range(args.threads)]
    t0 = time.monotonic()
    for t in threads:
        t.start()

    rss_trend = []
    last_progress = list(PROGRESS)
    last_change = [t0] * args.threads
    next_report = t0 + args.report
    while True:
        now = time.monotonic()
        if now - t0 >= args.seconds:
            break
        time.sleep(min(0.2, max(0.0, t0 + args.seconds - now)))
        now = time.monotonic()
        for i, v in enumerate(PROGRESS):
            if v != last_progress[i]:
                last_progress[i] = v
                last_change[i] = now
            elif v >= 0 and now - last_change[i] > args.stall:
                dump_and_die(f"worker {i} made no progress for {args.stall:g} s (deadlock?)")
        if checker.active is not None and now - checker.started > args.stall:
            dump_and_die(f"a collection of generation {checker.active} has been running "
                         f"for more than {args.stall:g} s (deadlock?)")
        if now >= next_report:
            next_report += args.report
            created = count_of(SERIALS)
            compress_chunks(created)
            rss = rss_mb()
            rss_trend.append((now - t0, rss))
            cs = stats_snapshot()
            ncoll = sum(c[0] for c in cs["gc"]) - sum(c[0] for c in base["gc"])
            print(f"[{now - t0:6.1f}s] iterations {sum(max(v, 0) for v in PROGRESS):>8} "
                  f"finalizable objects {created:>9} collections {ncoll:>7} "
                  f"(auto {cs['auto'] - base['auto']}) forks {count_of(FORKS)} "
                  f"counts {gc.get_count()} frozen {gc.get_freeze_count()} rss {rss:7.1f} MB "
                  f"violations {len(VIOLATIONS)}", flush=True)

    # ---- stop, join, final collections -----------------------------------
    STOP.set()
    deadline = time.monotonic() + args.stall
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
        if t.is_alive():
            dump_and_die(f"{t.name} did not stop within {args.stall:g} s (deadlock?)")
    if not wait_for_spawned(deadline):
        dump_and_die("a finalizer-started thread did not finish (deadlock?)")
    elapsed = time.monotonic() - t0
    wait_for_collection(checker, args.stall)
    gc.unfreeze()       # (3.12 keeps immortal objects met in collections there)
    del RESURRECTED[:]
    for _ in range(4):
        gc.collect()
        wait_for_collection(checker, args.stall)
    wait_for_spawned(time.monotonic() + 30)   # the last collections' finalizers may spawn
    for _ in range(2):
        gc.collect()
        wait_for_collection(checker, args.stall)

    gc.disable()
    final = stats_snapshot()
    gc.callbacks.remove(checker)
    gc.callbacks.remove(closer)
    gc.enable()

    # ---- verdict -----------------------------------------------------------
    created = count_of(SERIALS)
    once, never, more = ledger_verdict(created)
    if DOUBLES:
        violation(f"{len(set(DOUBLES))} objects finalized more than once (serials {sorted(set(DOUBLES))[:5]}...)")
    if more:
        violation(f"{more} objects finalized more than once (ledger)")
    if never:
        violation(f"{never} of {created} finalizable objects never finalized")
    if WR_PENDING:
        violation(f"{len(WR_PENDING)} weakref callbacks never ran")
    if gc.garbage:
        violation(f"gc.garbage holds {len(gc.garbage)} objects")
    raised, seen = count_of(RAISED), count_of(UNRAISABLE_SEEN)
    if raised != seen:
        violation(f"{raised} exceptions raised on purpose in finalizers/callbacks, "
                  f"{seen} reached sys.unraisablehook")
    if checker.active is not None:
        violation("a collection's start has no stop")
    for g in range(3):
        cg = [a - b for a, b in zip(final["cg"][g], base["cg"][g])]
        bi = [a - b for a, b in zip(final["gc"][g], base["gc"][g])]
        seen_cb = [checker.stops[g], checker.collected[g], checker.uncollectable[g]]
        if cg != seen_cb and not BUILTIN:
            violation(f"generation {g}: collection_stats() (collections, collected, "
                      f"uncollectable) {cg} != callbacks {seen_cb}")
        if bi != seen_cb:
            violation(f"generation {g}: gc.get_stats() {bi} != callbacks {seen_cb}")
    hist = final["hist"] - base["hist"]
    if hist != sum(checker.stops) and not BUILTIN:
        violation(f"pause histogram total {hist} != collections {sum(checker.stops)}")
    if sum(final["cg"][g][0] for g in range(3)) != final["hist"]:
        violation("collection_stats(): the pause histogram total differs from the "
                  "sum over generations")
    if not BUILTIN and not cyclegc.installed():
        violation("cyclegc is no longer installed")

    rss_trend.append((elapsed, rss_mb()))
    trend = " ".join(f"{t:.0f}s:{r:.0f}" for t, r in rss_trend)
    print(f"RSS MB over time: {trend}")
    if len(rss_trend) >= 3:
        early = rss_trend[min(1, len(rss_trend) - 1)][1]
        print(f"RSS: early {early:.1f} MB, max {max(r for _, r in rss_trend):.1f} MB, "
              f"end {rss_trend[-1][1]:.1f} MB (end/early {rss_trend[-1][1] / early:.2f})")
        # Flat after warm-up?  Least-squares slope over the samples after the
        # first fifth of the run.
        after = [(t, r) for t, r in rss_trend if t >= elapsed / 5]
        if len(after) >= 3:
            mt = sum(t for t, _ in after) / len(after)
            mr = sum(r for _, r in after) / len(after)
            var = sum((t - mt) ** 2 for t, _ in after)
            slope = sum((t - mt) * (r - mr) for t, r in after) / var * 60 if var else 0.0
            print(f"RSS after warm-up (t >= {elapsed / 5:.0f} s): {min(r for _, r in after):.1f}-"
                  f"{max(r for _, r in after):.1f} MB, slope {slope:+.3f} MB/min")
    if args.rss_csv:
        with open(args.rss_csv, "w") as f:
            f.write("seconds,rss_mb\n")
            f.writelines(f"{t:.1f},{r:.1f}\n" for t, r in rss_trend)
    print(f"{elapsed:.1f} s, {created} finalizable objects ({once} finalized exactly once), "
          f"{sum(checker.stops)} collections {checker.stops} (auto {final['auto'] - base['auto']}, "
          f"back-offs {count_of(BACKOFFS)}, "
          f"longest {checker.max_duration * 1e3:.0f} ms), "
          f"{raised} exceptions on purpose, forks {count_of(FORKS)} "
          f"({count_of(FORKS_DURING_COLLECTION)} during another thread's collection, "
          f"{count_of(MP_JOIN_RACES)} multiprocessing join races), "
          f"finalizer threads {count_of(SPAWN_COUNT)}")
    if VIOLATIONS:
        kinds = {}
        for v in VIOLATIONS:
            key = v.splitlines()[0]
            kinds[key] = kinds.get(key, 0) + 1
        for key, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:20]:
            print(f"  {n:6} x {key}")
        print(f"VERDICT: FAIL: {len(VIOLATIONS)} violations (first: {VIOLATIONS[0].splitlines()[0]})",
              flush=True)
        return 1
    print("VERDICT: PASS", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
