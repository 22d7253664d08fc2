"""The gc module's API, backed by cyclegc's core.

The entry points are C functions of the core created with the same calling
conventions as the built-in ``gc`` of the running version, so that argument
errors read exactly like the built-in's.  State is the interpreter's own:
``enabled``, thresholds, counts, ``garbage`` and ``callbacks`` are the very
fields and lists the built-in module uses, so the two never disagree.

What happens around a collection is decided here, in Python: the
``collecting`` handshake (a nested or concurrent collect returns 0), the
``gc.callbacks`` protocol, and the statistics kept by :mod:`cyclegc.stats`.
"""
from ._core import _cyclegc as _core
from . import stats as _stats

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


def _invoke_callbacks(phase, info):
    # Index the live list, as the built-in does: a callback may add or
    # remove callbacks while they run.
    i = 0
    while i < len(callbacks):
        cb = callbacks[i]
        try:
            cb(phase, info)
        except BaseException as exc:  # reported, never raised, like the built-in
            _core.write_unraisable(exc, cb)
        i += 1


def run_collection(generation, reason="manual"):
    """Collect `generation` with cyclegc's core; the one path every collection
    takes.  Returns collected + uncollectable, or 0 if a collection is
    already running (nested in a finalizer or callback, or in another thread).
    """
    if not _core.try_begin():
        return 0
    try:
        if callbacks:
            _invoke_callbacks("start", {
                "generation": generation, "collected": 0, "uncollectable": 0,
                "duration": 0.0, "candidates": 0,
            })
        collected, uncollectable, candidates, duration = _core.collect_generation(generation)
        _stats.record(generation, collected, uncollectable, candidates, duration, reason)
        if callbacks:
            _invoke_callbacks("stop", {
                "generation": generation, "collected": collected,
                "uncollectable": uncollectable, "duration": duration,
                "candidates": candidates,
            })
    finally:
        _core.end()
    return collected + uncollectable


def _collect_entry(generation):
    return run_collection(generation, "manual")


_core._set_collect_hook(_collect_entry)
