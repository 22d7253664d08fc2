"""cyclegc: a cycle garbage collector for CPython 3.11-3.13.

``import cyclegc as gc`` is a drop-in for the standard ``gc`` module: the
same functions, signatures, errors and shared state, but every collection
it runs is done by cyclegc's own C core on the interpreter's real objects.

(PYTEST_DONT_REWRITE: ``python -m cyclegc run -m pytest`` imports this
package before pytest starts; pytest, which loads cyclegc's plugin entry
point, would otherwise warn that it cannot rewrite it, and projects running
with ``filterwarnings = error`` would stop at startup.)
"""
from ._support import check_supported as _check_supported

_check_supported()

from .api import (  # noqa: E402
    DEBUG_COLLECTABLE,
    DEBUG_LEAK,
    DEBUG_SAVEALL,
    DEBUG_STATS,
    DEBUG_UNCOLLECTABLE,
    callbacks,
    collect,
    disable,
    enable,
    freeze,
    garbage,
    get_count,
    get_debug,
    get_freeze_count,
    get_objects,
    get_referents,
    get_referrers,
    get_stats,
    get_threshold,
    immortalize_heap,
    is_finalized,
    is_fork_friendly,
    is_tracked,
    isenabled,
    set_debug,
    set_fork_friendly,
    set_threshold,
    unfreeze,
)
from .stats import collection_stats  # noqa: E402
from .install import incremental_stats, install, installed, uninstall  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "DEBUG_COLLECTABLE", "DEBUG_LEAK", "DEBUG_SAVEALL", "DEBUG_STATS",
    "DEBUG_UNCOLLECTABLE", "callbacks", "collect", "collection_stats", "disable",
    "enable", "find_cycles", "freeze", "garbage", "get_count", "get_debug", "get_freeze_count",
    "get_objects", "get_referents", "get_referrers", "get_stats", "get_threshold", "immortalize_heap",
    "incremental_stats", "install", "installed", "is_finalized", "is_fork_friendly", "is_tracked", "isenabled", "set_debug",
    "set_fork_friendly", "set_threshold", "unfreeze", "uninstall", "why_alive",
]


def __getattr__(name):
    # find_cycles and why_alive live in cyclegc.insight, imported on first
    # use: `import cyclegc` does not load ctypes, tracemalloc or the reports.
    if name in ("find_cycles", "why_alive"):
        from .insight import alive
        value = globals()[name] = getattr(alive, name)
        return value
    raise AttributeError(f"module 'cyclegc' has no attribute {name!r}")
