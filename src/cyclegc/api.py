"""The gc module's API, backed by cyclegc's core.

The entry points are C functions of the core created with the same calling
conventions as the built-in ``gc`` of the running version, so that argument
errors read exactly like the built-in's.  State is the interpreter's own:
``enabled``, thresholds, counts, ``garbage`` and ``callbacks`` are the very
fields and lists the built-in module uses, so the two never disagree.

What surrounds a collection (the ``collecting`` handshake, ``gc.callbacks``,
metrics) is the core's protocol.c, so that a young collection costs no
Python-level overhead; *when* to collect and which generation is decided in
Python (:mod:`cyclegc.install`).
"""
import os

from ._core import _cyclegc as _core
from .stats import REASON_CODES as _REASON_CODES

_API = _core.API

enable = _API["enable"]
disable = _API["disable"]
isenabled = _API["isenabled"]
collect = _API["collect"]
get_debug = _API["get_debug"]
set_debug = _API["set_debug"]
get_threshold = _API["get_threshold"]
set_threshold = _API["set_threshold"]
get_count = _API["get_count"]
get_objects = _API["get_objects"]
get_referrers = _API["get_referrers"]
get_referents = _API["get_referents"]
get_stats = _API["get_stats"]
is_tracked = _API["is_tracked"]
is_finalized = _API["is_finalized"]
freeze = _API["freeze"]
unfreeze = _API["unfreeze"]
get_freeze_count = _API["get_freeze_count"]

DEBUG_STATS = _core.DEBUG_STATS
DEBUG_COLLECTABLE = _core.DEBUG_COLLECTABLE
DEBUG_UNCOLLECTABLE = _core.DEBUG_UNCOLLECTABLE
DEBUG_SAVEALL = _core.DEBUG_SAVEALL
DEBUG_LEAK = _core.DEBUG_LEAK

#: The interpreter's own lists, shared with the built-in gc module.
garbage, callbacks = _core.interp_lists()


def run_collection(generation, reason="manual"):
    """Collect `generation` with cyclegc's core; the one path every collection
    takes (``collect()`` enters it from C).  Returns collected +
    uncollectable, or 0 if a collection is already running (nested in a
    finalizer or callback, or in another thread).  `reason` is one of
    :data:`cyclegc.stats.REASONS`."""
    return _core.run_collection(generation, _REASON_CODES[reason])


_fork_friendly_mode = "auto"


def set_fork_friendly(mode=True):
    """Choose how full collections treat the objects that survive them.

    ``True``: fork-friendly.  A full collection keeps all its per-object
    scratch state in private memory: survivors are only read, never written,
    so a pre-fork worker that collects does not copy the heap it shares with
    its parent; only the garbage is written (it is freed).  The permanent
    generation (``freeze()``) is examined too, so frozen garbage is collected
    instead of leaking forever; frozen survivors stay frozen.  Containers of
    atoms are not untracked in this mode (that would write to them).  The
    mode applies once memory can be shared: after this process forked or
    was forked, or while ``freeze()`` holds objects.  Before that no page is
    shared, and full collections use the ordinary marking, which is faster
    (a pre-fork master building its heap: ~3x the built-in's time read-only,
    about the built-in's with header marks) and finds the same garbage.

    ``False``: the ordinary collection, which marks survivors in their
    headers (faster when no memory is shared: about 0.5x the built-in's time
    against 0.65x for fork-friendly, on a 1M-object heap).

    ``"auto"`` (the default): ordinary in the process that imported cyclegc,
    fork-friendly in every process forked from it, where it is both the
    cheaper and the faster choice (page faults on shared pages dominate).
    """
    global _fork_friendly_mode
    if mode not in (True, False, "auto"):
        raise ValueError("set_fork_friendly() takes True, False or 'auto'")
    _fork_friendly_mode = mode
    _core._set_fork_friendly(mode is True)


def immortalize_heap():
    """Make every object alive now immortal, for a pre-fork server's master
    to call once its application is loaded, before it forks its workers.

    Immortal objects (PEP 683, CPython 3.12+) are left alone by reference
    counting: a worker that reads them does not write their pages, so it
    keeps sharing them with the master and its other workers instead of
    copying what its requests touched.  They are also outside every
    collection, as CPython's own immortal objects are: not collected, not
    walked, not listed by ``get_objects()``, ``get_referrers()`` or
    ``get_freeze_count()``.

    What becomes immortal: the tracked objects of every generation and of
    the permanent one, what they reference, and the constants and names of
    their code.  Objects that run code when they die (``__del__``, files,
    sockets, generators) stay mortal, so files are still flushed and closed.
    The price: an object alive now is never freed, even if the program
    drops it later, and its weakref callbacks never run.  Call it once
    (gunicorn: the ``when_ready`` hook), not before every fork.

    Returns how many objects it made immortal.  On CPython 3.11, which has
    no immortal objects, it freezes them instead (``freeze()``: collections
    leave them alone, reference counting still writes them) and returns 0.
    """
    if not _core.CAN_IMMORTALIZE:
        freeze()
        return 0
    return _core._immortalize_heap()


def is_fork_friendly():
    """Whether full collections in this process are fork-friendly now."""
    previous = _core._set_fork_friendly(False)
    _core._set_fork_friendly(previous)
    return previous


def _after_fork_in_parent():
    _core._set_heap_shared(True)


def _after_fork_in_child():
    _core._set_heap_shared(True)
    if _fork_friendly_mode == "auto":
        _core._set_fork_friendly(True)


os.register_at_fork(after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
