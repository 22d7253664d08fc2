"""cyclegc insight: which code makes garbage cycles, and why objects are alive.

* :func:`start` / :func:`stop` / :func:`report`: while started, the garbage
  of every collection (cyclegc's or the built-in's) is grouped into cycles,
  each described by its shape of types, size and allocation site
  (tracemalloc, started on demand); the report ranks allocation sites by the
  cyclic garbage they produced.  ``python -m cyclegc run --insight`` does the
  same for a whole program.
* :func:`find_cycles`: the cycles an object belongs to.
* :func:`why_alive`: the shortest chain of references from a root to an object.

Modules: ``capture`` (seeing each collection's garbage), ``analysis``
(cycles, shapes, labels, sites), ``reporters`` (table, JSON, HTML), ``alive``
(find_cycles, why_alive).
"""
import threading

from .alive import Chain, Cycles, WhyAlive, find_cycles, why_alive
from .capture import Session
from .reporters import Report

__all__ = ["start", "stop", "report", "running", "Session", "Report",
           "find_cycles", "why_alive", "Cycles", "WhyAlive", "Chain"]

_lock = threading.Lock()
_session = None


def start(frames=1, tracebacks=True):
    """Start recording the cyclic garbage of every collection.  `frames`:
    tracemalloc frames per allocation if insight has to start tracemalloc
    (more frames cost more per allocation).  Returns the session; calling
    start() again while started returns the same one."""
    global _session
    with _lock:
        if _session is not None and _session.running:
            return _session
        _session = Session(frames=frames, tracebacks=tracebacks).start()
        return _session


def stop(collect=False):
    """Stop recording and return the :class:`Report` (None if insight was
    never started).  With `collect`, a last full collection first, so the
    garbage not collected yet is in the report too."""
    with _lock:
        session = _session
        if session is None:
            return None
        session.stop(collect=collect)
        return session.report()


def report():
    """The report of the current (or last) session, or None."""
    session = _session
    return None if session is None else session.report()


def running():
    return _session is not None and _session.running
