"""Tests that fail when code leaves reference cycles behind.

    from cyclegc.testing import assert_no_cycles

    def test_handler():
        with assert_no_cycles():
            handle(make_request())

    @assert_no_cycles
    def test_parser():
        parse("...")

If the code inside leaves cyclic garbage (objects that only a cycle
collection can free), :class:`CyclesLeft` (an ``AssertionError``) is raised,
saying for each kind of cycle its shape of types, its size and where its
first object was allocated, with the source line::

    the code left 2 reference cycles as garbage (2 objects, 112 B):
      Request -> Request: 2 cycles of 1 object, allocated at app/handlers.py:42
          req = Request(environ)
          via Request.handler -> method.__self__ -> Request

How: a full collection first (so older garbage does not count), then the
block runs with :mod:`cyclegc.insight` observing every collection (the
automatic ones and any the block runs itself), then a last full collection.
Allocation sites come from tracemalloc, started for the block if it is not
running (and stopped after).  The collector's state is left as it was:
``DEBUG_SAVEALL`` is only set inside each observed collection, its garbage is
freed as without observation, and ``gc.garbage``, the debug flags and
``enabled`` are not changed.

Objects still referenced from the block's local variables are not garbage:
in the ``with`` form, ``del`` them inside the block (or use the decorator).
"""
import functools
import inspect

from .insight.analysis import site_text, source_line
from .insight.capture import Session, collect_observed

__all__ = ["assert_no_cycles", "CyclesLeft"]

#: tracemalloc frames kept per allocation when the block starts tracemalloc.
DEFAULT_FRAMES = 8


def _fmt_bytes(n):
    from .insight.reporters import _fmt_bytes as fmt
    return fmt(n)


class CyclesLeft(AssertionError):
    """Cyclic garbage was left.  ``groups``: the cycles by shape and
    allocation site (:class:`cyclegc.insight.analysis.CycleGroup`)."""

    def __init__(self, message, groups):
        super().__init__(message)
        self.groups = groups

    @property
    def cycles(self):
        return sum(g.cycles for g in self.groups)

    @property
    def objects(self):
        return sum(g.objects for g in self.groups)


def _is_framework_frame(frame):
    """A frame of the test runner (pytest, pluggy), of cyclegc itself or of
    the import machinery: not the user's code, so not in allocation trails."""
    filename = frame[0] if frame else ""
    parts = filename.replace("\\", "/").split("/")
    if filename.startswith("<frozen ") or "_pytest" in parts or "pluggy" in parts:
        return True
    return "cyclegc" in parts and "site-packages" in parts


def _user_trail(traceback):
    """The allocation traceback without framework frames (the site, the
    first frame, always stays)."""
    if not traceback:
        return traceback
    return (traceback[0],) + tuple(f for f in traceback[1:] if not _is_framework_frame(f))


def format_groups(groups, what="the code", frames=3):
    """The failure message for `groups` of cyclic garbage.  Allocation
    trails show the user's code only (pytest's and pluggy's frames are left
    out)."""
    cycles = sum(g.cycles for g in groups)
    objects = sum(g.objects for g in groups)
    nbytes = sum(g.bytes for g in groups)
    lines = [f"{what} left {cycles} reference cycle{'s' if cycles != 1 else ''} as garbage "
             f"({objects} object{'s' if objects != 1 else ''}, {_fmt_bytes(nbytes)}):"]
    for g in sorted(groups, key=lambda g: (g.site is None, -g.objects, g.shape)):
        size = (f"{g.min_size} object{'s' if g.min_size != 1 else ''}" if g.min_size == g.max_size
                else f"{g.min_size}-{g.max_size} objects")
        count = f"{g.cycles} cycle{'s' if g.cycles != 1 else ''} of {size}"
        if g.objects > g.cycles * g.max_size:
            count += f" ({g.objects} objects with what they held)"
        if g.traceback:
            where = " <- ".join(site_text(f) for f in _user_trail(g.traceback)[:frames])
            lines.append(f"  {g.shape}: {count}, allocated at {where}")
            src = source_line(g.site)
            if src:
                lines.append(f"      {src}")
        else:
            lines.append(f"  {g.shape}: {count}, allocated before tracemalloc was tracing")
        if g.path != g.shape:
            lines.append(f"      via {g.path}")
    return "\n".join(lines)


class _NoCycles:
    """The context manager / decorator returned by assert_no_cycles()."""

    def __init__(self, frames=DEFAULT_FRAMES, what="the code"):
        self.frames = frames
        self.what = what
        self._session = None

    # -- as a context manager --------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        __tracebackhide__ = True
        if exc_type is not None:
            self.abandon()
            return False
        self.finish()
        return False

    def start(self):
        if self._session is not None:
            raise RuntimeError("assert_no_cycles() block already entered")
        self._session = Session(frames=self.frames, keep_cycles=True)
        self._session.start(collect_first=True)

    def abandon(self):
        """Stop observing without checking (the block raised)."""
        session, self._session = self._session, None
        if session is not None:
            session.stop()

    def finish(self):
        """Collect, stop observing, raise CyclesLeft if cycles were left."""
        __tracebackhide__ = True
        session, self._session = self._session, None
        try:
            collect_observed(2, "final")
        finally:
            session.stop()
        groups = {}
        for record in session.records:
            for g in record.groups:
                key = (g.site, g.shape)
                if key in groups:
                    groups[key].merge(g)
                else:
                    groups[key] = g
        if groups:
            found = list(groups.values())
            raise CyclesLeft(format_groups(found, self.what), found)

    # -- as a decorator ---------------------------------------------------
    def __call__(self, func):
        frames, what = self.frames, self.what
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args, **kwargs):
                __tracebackhide__ = True
                with _NoCycles(frames, what):
                    return await func(*args, **kwargs)
            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            __tracebackhide__ = True
            with _NoCycles(frames, what):
                return func(*args, **kwargs)
        return wrapper


def assert_no_cycles(func=None, *, frames=DEFAULT_FRAMES):
    """Fail (:class:`CyclesLeft`, an AssertionError) if the code leaves
    cyclic garbage.  A context manager (``with assert_no_cycles():``) and a
    decorator (``@assert_no_cycles`` or ``@assert_no_cycles(frames=4)``).
    `frames`: allocation traceback depth if tracemalloc has to be started.
    """
    if func is not None:
        if not callable(func):
            raise TypeError("assert_no_cycles() takes a function or keyword arguments only")
        return _NoCycles(frames)(func)
    return _NoCycles(frames)
