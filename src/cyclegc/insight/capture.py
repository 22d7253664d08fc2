"""Capture: the cyclic garbage of every collection, examined before it is freed.

One observer, a callback at the head of ``gc.callbacks``, serves every
:class:`Session` (``insight.start()``, ``assert_no_cycles``, the pytest
plugin, ``run --insight``); sessions can nest and overlap.  For each
collection it finds the garbage, groups it into cycles
(:func:`analysis.analyze_garbage`) and hands the result to the sessions.

How it sees the garbage without changing what gets freed:

1. "start": if ``DEBUG_SAVEALL`` is off, the observer turns it on for this
   one collection, so the collection appends its garbage to ``gc.garbage``
   instead of clearing it.  Everything before that step happens as usual:
   weak references are cleared and their callbacks run, finalizers run,
   resurrected objects survive.
2. "stop": first in the callback list, before any other callback sees
   ``gc.garbage``: it restores the debug flags, takes the objects the
   collection added to ``gc.garbage`` out of it, examines them, then calls
   ``tp_clear`` on each exactly as the collection's ``delete_garbage`` step
   would have (:mod:`._native`), and lets them go.  Uncollectable objects
   (legacy ``tp_del`` finalizers) go back into ``gc.garbage`` as without
   insight.

So the garbage is freed at the end of the same collection, by the same
``tp_clear`` calls; the differences are only when (after the collection's
own clearing step instead of during it) and that the collection's pause
includes the examination.  If the user has ``DEBUG_SAVEALL`` on, insight
examines what lands in ``gc.garbage`` and leaves it there.

If the core offers ``_set_garbage_hook`` (the final unreachable set handed
to Python just before delete_garbage), cyclegc's own collections use that
instead of DEBUG_SAVEALL; the built-in collector's collections (when cyclegc
is not installed) keep using the mechanism above.
"""
import sys
import threading
import time
import tracemalloc

from .. import api as _api
from . import _native
from .analysis import CycleGroup, analyze_garbage

DEBUG_SAVEALL = _api.DEBUG_SAVEALL
_core = _api._core


class CollectionRecord:
    """What insight saw of one collection."""

    __slots__ = ("time", "generation", "duration", "collected", "uncollectable",
                 "groups", "unattributed", "analysis_seconds", "observed", "reason")

    def __init__(self, time_, generation, duration, collected, uncollectable,
                 groups, unattributed, analysis_seconds, observed, reason):
        self.time = time_                        # time.perf_counter() at its start
        self.generation = generation
        self.duration = duration                 # seconds, the collection alone
        self.collected = collected
        self.uncollectable = uncollectable
        self.groups = groups                     # [analysis.CycleGroup]
        self.unattributed = unattributed
        self.analysis_seconds = analysis_seconds  # insight's own cost
        self.observed = observed                 # False: counted, not examined
        self.reason = reason                     # "final" for a session's closing collection

    @property
    def garbage_objects(self):
        return sum(g.objects for g in self.groups) + self.unattributed

    @property
    def cycles(self):
        return sum(g.cycles for g in self.groups)


class _Observer:
    def __init__(self):
        self.lock = threading.RLock()
        self.sessions = []
        self.installed = False
        self.hook_installed = False
        self.started_tracemalloc = False
        # per collection
        self.active = False
        self.armed = False
        self.garbage_len = 0
        self.t_start = 0.0
        self.hook_result = None
        self.reason = None
        self.collecting_thread = None
        self.retire_pending = False
        self.requests = {}      # thread id -> reason of the collection it asked for
        self.runs = {}          # thread id -> collections seen to completion

    # -- sessions ---------------------------------------------------------
    def subscribe(self, session):
        with self.lock:
            if session in self.sessions:
                return
            self.sessions.append(session)
            self.retire_pending = False
            callbacks = _api.callbacks
            if not any(cb is self for cb in callbacks):
                callbacks.insert(0, self)
            elif callbacks[0] is not self:
                # stay first, so no other callback sees gc.garbage with the
                # garbage insight holds for examination
                callbacks[:] = [self] + [cb for cb in callbacks if cb is not self]
            self.installed = True
            if not self.hook_installed and hasattr(_core, "_set_garbage_hook"):
                _core._set_garbage_hook(self.garbage_hook)
                self.hook_installed = True

    def start_tracemalloc(self, frames):
        """Start tracemalloc for the sessions (stopped with the last one).
        Returns True if this call started it."""
        with self.lock:
            if tracemalloc.is_tracing():
                return False
            tracemalloc.start(frames)
            self.started_tracemalloc = True
            return True

    def unsubscribe(self, session):
        with self.lock:
            if session not in self.sessions:
                return
            self.sessions.remove(session)
            if self.sessions:
                return
            if self.active:
                # Another thread's collection is between its "start" and
                # "stop" callbacks (a finalizer let this thread run): without
                # our "stop", DEBUG_SAVEALL would stay on and its garbage in
                # gc.garbage.  Its "stop" retires the observer.
                self.retire_pending = True
                return
            self._retire()

    def _retire(self):
        with self.lock:
            self.retire_pending = False
            _api.callbacks[:] = [cb for cb in _api.callbacks if cb is not self]
            self.installed = False
            if self.hook_installed:
                _core._set_garbage_hook(None)
                self.hook_installed = False
            if self.started_tracemalloc:
                tracemalloc.stop()
                self.started_tracemalloc = False

    @property
    def tracebacks(self):
        return any(s.tracebacks for s in self.sessions)

    # -- the gc callback --------------------------------------------------
    def __call__(self, phase, info):
        if phase == "start":
            self._start(info)
        elif phase == "stop":
            self._stop(info)

    def _start(self, info):
        with self.lock:
            if not self.sessions or self.retire_pending:
                return                         # being removed: no collection of ours
            self.active = True
        self.hook_result = None
        self.t_start = time.perf_counter()
        self.collecting_thread = threading.get_ident()
        self.reason = self.requests.get(self.collecting_thread)
        garbage = _api.garbage
        self.garbage_len = len(garbage)
        debug = _api.get_debug()
        ours = "candidates" in info           # cyclegc's core (protocol.c) adds it
        self.armed = False
        if debug & DEBUG_SAVEALL:
            return                             # the user saves everything: just look
        if ours and self.hook_installed:
            return                             # garbage_hook() will see it
        if not _native.available():
            return
        _api.set_debug(debug | DEBUG_SAVEALL)
        self.armed = True

    def garbage_hook(self, generation, objects):
        """The core's hook (if it has one): the final garbage of one of its
        collections, just before the cycles are broken."""
        t0 = time.perf_counter()
        try:
            groups, unattributed = analyze_garbage(objects, self.tracebacks)
        except Exception:  # pragma: no cover - never let insight break a collection
            groups, unattributed = [], len(objects)
        self.hook_result = (groups, unattributed, time.perf_counter() - t0)

    def _stop(self, info):
        t_stop = time.perf_counter()
        if not self.active:
            return
        self.active = False
        duration = info.get("duration")
        if duration is None:
            duration = t_stop - self.t_start
        armed, self.armed = self.armed, False
        if armed:
            _api.set_debug(_api.get_debug() & ~DEBUG_SAVEALL)
        t0 = time.perf_counter()
        observed = True
        groups, unattributed = [], 0
        if self.hook_result is not None:
            groups, unattributed, spent = self.hook_result
            self.hook_result = None
            t0 -= spent
        else:
            garbage = _api.garbage
            new = garbage[self.garbage_len:]
            if armed:
                del garbage[self.garbage_len:]
            collectable = new
            if new and info.get("uncollectable"):
                collectable = self._put_back_uncollectable(new, garbage if armed else None)
            try:
                groups, unattributed = analyze_garbage(collectable, self.tracebacks)
            except Exception:  # pragma: no cover
                groups, unattributed = [], len(collectable)
            if armed:
                _break_cycles(collectable)
            elif not _native.available() and not (_api.get_debug() & DEBUG_SAVEALL):
                observed = False
                unattributed = info.get("collected", 0)
            del new, collectable
        record = CollectionRecord(
            self.t_start, info.get("generation", -1), duration,
            info.get("collected", 0), info.get("uncollectable", 0),
            groups, unattributed, time.perf_counter() - t0, observed,
            self.reason)
        for session in list(self.sessions):
            try:
                session._add(record)
            except Exception:  # pragma: no cover
                pass
        thread = self.collecting_thread
        self.runs[thread] = self.runs.get(thread, 0) + 1
        if self.retire_pending:
            with self.lock:
                if self.retire_pending and not self.sessions:
                    self._retire()

    @staticmethod
    def _put_back_uncollectable(new, garbage):
        """Under DEBUG_SAVEALL the legacy-finalizer objects and everything
        they reach land in gc.garbage too; without it only the former do,
        and the rest stays alive.  Returns the collectable part of `new`."""
        from ..api import get_referents
        legacy = [o for o in new if _native.has_legacy_finalizer(o)]
        ids = {id(o) for o in new}
        reach = {id(o) for o in legacy}
        stack = list(legacy)
        while stack:
            for r in get_referents(stack.pop()):
                if id(r) in ids and id(r) not in reach:
                    reach.add(id(r))
                    stack.append(r)
        if garbage is not None:
            garbage.extend(legacy)
        return [o for o in new if id(o) not in reach]


def _break_cycles(objects):
    for op in objects:
        try:
            _native.clear(op)
        except Exception:
            hook = sys.unraisablehook
            try:
                exc_type, exc, tb = sys.exc_info()
                hook(_Unraisable(exc_type, exc, tb, "Exception ignored in tp_clear of", op))
            except Exception:  # pragma: no cover
                pass


class _Unraisable:
    __slots__ = ("exc_type", "exc_value", "exc_traceback", "err_msg", "object")

    def __init__(self, exc_type, exc_value, exc_traceback, err_msg, obj):
        self.exc_type = exc_type
        self.exc_value = exc_value
        self.exc_traceback = exc_traceback
        self.err_msg = err_msg
        self.object = type(obj)


_observer = _Observer()


def collect_observed(generation=2, reason=None, wait=30.0):
    """Run a cyclegc collection in this thread, observed by the sessions;
    `reason` tags its record.  If another thread's collection is running
    (collect() would return 0 at once without collecting), wait for it to
    end, up to `wait` seconds, so that this collection really runs."""
    me = threading.get_ident()
    if not _observer.installed:
        return _api.collect(generation)
    deadline = time.monotonic() + wait
    while True:
        before = _observer.runs.get(me, 0)
        _observer.requests[me] = reason
        try:
            found = _api.collect(generation)
        finally:
            _observer.requests.pop(me, None)
        if _observer.runs.get(me, 0) != before or time.monotonic() > deadline:
            return found
        time.sleep(0.001)


class Session:
    """Receives what insight sees of every collection while it is started.

    `frames`: how many frames tracemalloc keeps per allocation when this
    session has to start it (it is started on demand and stopped when the
    last session ends; a tracemalloc the user started is left alone; when
    a session starts it, it also runs one full collection, which empties
    the free lists whose objects would otherwise have no allocation site).
    `tracebacks=False` skips allocation sites.  `keep_cycles` keeps every
    :class:`CollectionRecord` (else only the totals by site and shape).  `max_timeline`: collections kept for the pause timeline.
    ``records``: with `keep_cycles`, every :class:`CollectionRecord`.
    """

    def __init__(self, *, frames=1, tracebacks=True, keep_cycles=False, max_timeline=100_000):
        from collections import deque
        self.frames = max(1, int(frames))
        self.tracebacks = tracebacks
        self.keep_cycles = keep_cycles
        self.records = []
        self.timeline = deque(maxlen=max_timeline)
        self.groups = {}            # (site, shape) -> _Group
        self.collections = 0
        self.collected = 0
        self.uncollectable = 0
        self.unobserved = 0          # objects collected but not examined
        self.unattributed = 0
        self.analysis_seconds = 0.0
        self.pause_seconds = 0.0
        self.started_at = None
        self.stopped_at = None
        self.running = False
        self._lock = threading.Lock()

    def start(self, collect_first=False):
        """Start observing.  With `collect_first`, a full collection runs
        before (not observed by this session), so that what the session
        sees was made garbage after its start."""
        if self.running:
            return self
        if (self.tracebacks and _observer.start_tracemalloc(self.frames)) or collect_first:
            # Objects reused from the interpreter's free lists (lists, dicts,
            # tuples) were allocated before tracing: they would have no
            # allocation site.  A full collection empties the free lists.
            _api.collect()
        self.started_at = time.perf_counter()
        self.wall_started = time.time()
        self.running = True
        _observer.subscribe(self)
        return self

    def stop(self, collect=False):
        """Stop observing; with `collect`, run a last full collection first
        (tagged "final") so garbage not collected yet is seen too."""
        if not self.running:
            return self
        try:
            if collect:
                collect_observed(2, "final")
        finally:
            _observer.unsubscribe(self)
            self.running = False
            self.stopped_at = time.perf_counter()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _add(self, record):
        with self._lock:
            self.collections += 1
            self.collected += record.collected
            self.uncollectable += record.uncollectable
            self.analysis_seconds += record.analysis_seconds
            self.pause_seconds += record.duration
            if not record.observed:
                self.unobserved += record.collected
            self.unattributed += record.unattributed if record.observed else 0
            for group in record.groups:
                key = (group.site, group.shape)
                mine = self.groups.get(key)
                if mine is None:
                    mine = self.groups[key] = _Group(group)
                mine.add(group, record.time)
            if self.keep_cycles:
                self.records.append(record)
            self.timeline.append((record.time, record.generation, record.duration,
                                  record.collected, record.garbage_objects,
                                  record.cycles, record.analysis_seconds, record.reason))

    def report(self):
        """A :class:`cyclegc.insight.reporters.Report` of what was seen so far."""
        from .reporters import Report
        with self._lock:
            return Report.from_session(self)


class _Group(CycleGroup):
    """A session's total for one (site, shape), with when it was seen."""

    __slots__ = ("first", "last")

    def __init__(self, group):
        super().__init__(group.shape, group.path, group.traceback, dict(group.types))
        self.first = None
        self.last = None

    def add(self, group, when):
        self.merge(group)
        if self.first is None:
            self.first = when
        self.last = when
