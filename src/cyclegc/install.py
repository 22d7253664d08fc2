"""cyclegc.install(): cyclegc runs the process's automatic collections.

While installed:

* CPython's own automatic collector never runs: the interpreter's
  threshold0 is 0, and cyclegc holds the real one (``get_threshold()`` and
  ``set_threshold()`` use it).  ``enabled`` is one flag for both:
  ``gc.enable()``/``disable()`` and the C API's ``PyGC_Enable()``/
  ``PyGC_Disable()``/``PyGC_IsEnabled()`` switch cyclegc's automatic
  collections.
* cyclegc's core finds the allocation of the GC object that makes
  generation 0's count pass threshold0 and runs the collection where the
  built-in would: inside that allocation on 3.11, at the next eval-breaker
  check on 3.12 and 3.13 -- through the core's collection protocol with
  reason ``"auto"`` (the C function that :func:`cyclegc.api.run_collection`
  calls), so callbacks get the same info (with ``"duration"``) and
  collection_stats() records it.  See trigger.c for the mechanism.
* Every function of the real ``gc`` module is replaced by cyclegc's
  (``setattr`` on the module), so code that imported ``gc`` before
  ``install()`` gets cyclegc too.

With ``max_pause_ms`` (``install(max_pause_ms=2)``), automatic collections
are *increments* bounded by that many milliseconds: the young collection the
built-in would run, then a slice of a round over the old generation, so no
automatic stop is a full collection (design: docs/design.md, the essay at the
top of incremental.c).  ``collect()`` still does a complete collection.
:func:`incremental_stats` reports the rounds.

``uninstall()`` puts the built-in functions back and hands the automatic
collections back to the built-in collector; thresholds, debug flags,
callbacks and garbage were never copied (they are the interpreter's own;
threshold0 is handed back), and ``enabled`` carries over: ``gc.isenabled()``
answers the same before and after.  install() and uninstall() are idempotent.
"""
import atexit
import _thread
import os
import sys

from . import api as _api
from ._core import _cyclegc as _core

#: gc module functions that cyclegc replaces while installed.
FUNCTIONS = (
    "enable", "disable", "isenabled", "collect", "get_debug", "set_debug",
    "get_threshold", "set_threshold", "get_count", "get_objects",
    "get_referrers", "get_referents", "get_stats", "is_tracked",
    "is_finalized", "freeze", "unfreeze", "get_freeze_count",
)

_lock = _thread.RLock()
_saved = None          # (gc module, {name: built-in function}) while installed
_hooks_registered = False


def _builtin_gc_module():
    """The interpreter's own gc module, even if sys.modules['gc'] was replaced
    (``sys.modules['gc'] = cyclegc`` is the documented drop-in use)."""
    mod = sys.modules.get("gc")
    if mod is not None and getattr(mod, "__name__", None) == "gc":
        return mod
    return _BUILTIN_GC


# The real gc module, as imported when cyclegc itself was (before anyone could
# put cyclegc in its place in sys.modules).
_BUILTIN_GC = sys.modules.get("gc") or __import__("gc")
if getattr(_BUILTIN_GC, "__name__", None) != "gc":  # pragma: no cover
    _BUILTIN_GC = None


_forking_from_main = True
# The thread that imported cyclegc: the main thread unless a program imports
# it from another (threading is not imported here: see _support.py).
_IMPORTING_THREAD = _thread.get_ident()


def _before_fork():
    global _forking_from_main
    threading = sys.modules.get("threading")
    if threading is not None:
        # not threading.current_thread(): in a thread started with _thread
        # it creates a _DummyThread that stays in threading._dangling
        # (CPython's test_thread test_forkinthread: "env changed", 3.11/3.12)
        _forking_from_main = _thread.get_ident() == threading.main_thread().ident
    else:
        _forking_from_main = _thread.get_ident() == _IMPORTING_THREAD


def _after_fork_in_child():
    # 3.11 restarts its collection helper thread in the child -- except in a
    # child forked from a thread other than the main one: there the forking
    # thread ends with pthread_exit when its function returns, and a helper
    # thread would keep the child alive forever (CPython's test_threading
    # test_main_thread_after_fork_from_nonmain_thread hung).  Without the
    # helper, only collections due in threads with a tracer of their own
    # wait for that thread's next event.
    if installed():
        _core.trigger_after_fork(_forking_from_main)


def _register_hooks():
    global _hooks_registered
    if _hooks_registered:
        return
    # Shutdown: the built-in collector takes over again before the
    # interpreter starts tearing down modules (after non-daemon threads were
    # joined), so no automatic collection of ours runs Python code then.
    atexit.register(uninstall)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
    _hooks_registered = True


def _pause_seconds(max_pause_ms):
    if max_pause_ms is None:
        return 0.0
    if isinstance(max_pause_ms, bool) or not isinstance(max_pause_ms, (int, float)):
        raise TypeError(f"max_pause_ms must be a number of milliseconds or None, "
                        f"not {type(max_pause_ms).__name__}")
    if not 0 < max_pause_ms < float("inf"):
        raise ValueError(f"max_pause_ms must be positive and finite, got {max_pause_ms!r}")
    return max_pause_ms / 1000.0


def install(fork_friendly=None, max_pause_ms=None):
    """Make cyclegc run the automatic collections.  Returns True if this call
    installed it, False if it was already installed.  `fork_friendly`
    (True, False or "auto"), if given, is passed to
    :func:`cyclegc.set_fork_friendly` first.  `max_pause_ms` (a positive
    number) bounds every automatic stop (see the module docstring); None
    keeps the built-in's generational behaviour.  Calling install() again
    while installed changes only what it is given: a new `max_pause_ms`
    applies, None keeps the current setting (to go back to generational
    collections, uninstall() and install() again)."""
    global _saved
    pause = _pause_seconds(max_pause_ms)
    if fork_friendly is not None:
        _api.set_fork_friendly(fork_friendly)
    with _lock:
        if _saved is not None:
            if max_pause_ms is not None:
                _core._set_max_pause(pause)
            return False
        _register_hooks()
        gcmod = _builtin_gc_module()
        originals = {}
        if gcmod is not None:
            for name in FUNCTIONS:
                if hasattr(gcmod, name):
                    originals[name] = getattr(gcmod, name)
        _core._set_max_pause(pause)
        _core.trigger_install()
        for name in originals:
            setattr(gcmod, name, getattr(_api, name))
        _wrap_debugmallocstats()
        _saved = (gcmod, originals)
        return True


def uninstall():
    """Give the automatic collections back to the built-in collector and put
    the built-in gc functions back.  Returns True if it was installed."""
    global _saved
    with _lock:
        if _saved is None:
            return False
        gcmod, originals = _saved
        _core._set_max_pause(0.0)
        _core.trigger_uninstall()
        for name, func in originals.items():
            setattr(gcmod, name, func)
        _unwrap_debugmallocstats()
        _saved = None
        return True


_debugmallocstats = None   # sys._debugmallocstats while ours is in its place


def _wrap_debugmallocstats():
    """sys._debugmallocstats() prints pymalloc's statistics only when the
    object allocator is pymalloc's own, which our allocator wrapper hides:
    call it with the interpreter's allocator in place (trigger.c)."""
    global _debugmallocstats
    original = getattr(sys, "_debugmallocstats", None)
    if original is None or _debugmallocstats is not None:
        return

    def _debugmallocstats_wrapper():
        return _core.trigger_call_unwrapped(original)

    _debugmallocstats_wrapper.__doc__ = original.__doc__
    _debugmallocstats_wrapper.__name__ = original.__name__
    _debugmallocstats = original
    sys._debugmallocstats = _debugmallocstats_wrapper


def _unwrap_debugmallocstats():
    global _debugmallocstats
    if _debugmallocstats is not None:
        sys._debugmallocstats = _debugmallocstats
        _debugmallocstats = None


def installed():
    """Is cyclegc running the automatic collections?"""
    return _saved is not None


def trigger_stats():
    """Counters of the automatic-collection trigger (for tests and
    benchmarks): pending calls scheduled, helper-thread handoffs, runs,
    collections started, and which mechanisms are in use."""
    return _core.trigger_stats()


def incremental_stats():
    """Figures of the bounded-pause mode: its setting (``max_pause``, in
    seconds, 0 when off), the current ``phase`` of the old-generation round,
    rounds completed, increments (and how many did old work), objects marked
    and swept, what the slices collected, slices cut short by their cap
    (``truncated_slices``), the stops not bounded because of them
    (``overflow_collections``: slices that took a big structure's closure
    whole, ``oversized_slices``, or complete collections when forced),
    slices found to be garbage whole (``whole_garbage_slices``: no member
    referenced from outside, disposed of without a further walk), closures
    too big for the rest of a stop put back to start the next one
    (``deferred_slices``),
    rounds ended early by collect()/freeze()
    (``aborted_rounds``), the largest slice, the longest increment and the
    last round's duration (seconds), the pacer's cost and promotion
    estimates, the scratch memory of the mark set, and three stops with
    what each was spent on: the last (``last_stop``), the longest on the
    clock (``longest_stop``) and the one with the most thread CPU time
    (``busiest_stop``: on a busy machine the longest on the clock is often
    one that was preempted), and how threads waited for another thread's
    stop (``stop_waits``, ``stop_wait_timeouts``: waits given up at the
    limit, ``stop_wait_max`` and ``stop_wait_total`` in seconds)."""
    stats = _core.incremental_stats()
    trigger = _core.trigger_stats()
    for key in ("stop_waits", "stop_wait_timeouts", "stop_wait_max", "stop_wait_total"):
        stats[key] = trigger[key]
    return stats
