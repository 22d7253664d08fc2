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
