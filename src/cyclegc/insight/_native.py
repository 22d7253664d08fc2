"""What insight needs from the interpreter that pure Python cannot reach.

All of it is through :mod:`ctypes`, on the type objects' public layout
(``PyTypeObject`` up to ``tp_del`` is the same on CPython 3.11, 3.12 and
3.13, 64- and 32-bit), and only while insight is on:

* :func:`clear`: call an object's ``tp_clear`` exactly as a collection's
  ``delete_garbage`` step does.  Insight makes a collection keep its garbage
  (``DEBUG_SAVEALL``) so that it can be examined after the collection, then
  breaks the cycles with this, so the garbage is freed as it would have been.
* :func:`has_legacy_finalizer`: ``tp_del`` is set (such objects are the
  uncollectable ones that belong in ``gc.garbage``).
* :func:`raw_traceback`: ``tracemalloc.get_object_traceback`` in its raw
  form, plus a fix for 3.11, which looks for an object with a managed
  ``__dict__`` (every instance of an ordinary class) at the wrong address
  and answers None.

``available()`` is False where ctypes is missing; insight then still counts
garbage but cannot examine it without changing what the collector frees.
"""
import sys
import tracemalloc

try:
    import ctypes
except ImportError:  # pragma: no cover - ctypes is part of every CPython build we support
    ctypes = None

_Py_TPFLAGS_MANAGED_DICT = 1 << 4            # 3.11: dict and values pointers before the GC header
_GC_HEAD_SIZE = 2 * (ctypes.sizeof(ctypes.c_void_p) if ctypes else 8)
_PRE_HEADER_311 = 2 * (ctypes.sizeof(ctypes.c_void_p) if ctypes else 8)

if ctypes is not None:
    _p = ctypes.c_void_p

    class _TypeObject(ctypes.Structure):
        # PyTypeObject from its head to tp_del (identical on 3.11-3.13).
        _fields_ = [
            ("ob_refcnt", ctypes.c_ssize_t), ("ob_type", _p), ("ob_size", ctypes.c_ssize_t),
            ("tp_name", _p), ("tp_basicsize", ctypes.c_ssize_t), ("tp_itemsize", ctypes.c_ssize_t),
            ("tp_dealloc", _p), ("tp_vectorcall_offset", ctypes.c_ssize_t),
            ("tp_getattr", _p), ("tp_setattr", _p), ("tp_as_async", _p), ("tp_repr", _p),
            ("tp_as_number", _p), ("tp_as_sequence", _p), ("tp_as_mapping", _p),
            ("tp_hash", _p), ("tp_call", _p), ("tp_str", _p), ("tp_getattro", _p),
            ("tp_setattro", _p), ("tp_as_buffer", _p), ("tp_flags", ctypes.c_ulong),
            ("tp_doc", _p), ("tp_traverse", _p), ("tp_clear", _p), ("tp_richcompare", _p),
            ("tp_weaklistoffset", ctypes.c_ssize_t), ("tp_iter", _p), ("tp_iternext", _p),
            ("tp_methods", _p), ("tp_members", _p), ("tp_getset", _p), ("tp_base", _p),
            ("tp_dict", _p), ("tp_descr_get", _p), ("tp_descr_set", _p),
            ("tp_dictoffset", ctypes.c_ssize_t), ("tp_init", _p), ("tp_alloc", _p),
            ("tp_new", _p), ("tp_free", _p), ("tp_is_gc", _p), ("tp_bases", _p),
            ("tp_mro", _p), ("tp_cache", _p), ("tp_subclasses", _p), ("tp_weaklist", _p),
            ("tp_del", _p),
        ]

    _INQUIRY = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object)
    _clear_funcs = {}        # tp_clear address -> callable

    try:
        _get_traceback = ctypes.pythonapi._PyTraceMalloc_GetTraceback
        _get_traceback.argtypes = (ctypes.c_uint, ctypes.c_size_t)
        _get_traceback.restype = ctypes.py_object
    except AttributeError:  # pragma: no cover
        _get_traceback = None


def available():
    """Can insight examine garbage and free it itself?"""
    return ctypes is not None


def _slots(tp):
    return _TypeObject.from_address(id(tp))


def clear(op):
    """``tp_clear`` on `op`, as the collector's delete_garbage step calls it.
    Returns False if the type has none (the object is freed when the others
    are cleared).  Errors raised by tp_clear propagate."""
    addr = _slots(type(op)).tp_clear
    if not addr:
        return False
    func = _clear_funcs.get(addr)
    if func is None:
        func = _clear_funcs[addr] = _INQUIRY(addr)
    func(op)
    return True


def has_legacy_finalizer(op):
    """The type of `op` has ``tp_del`` (a legacy finalizer: uncollectable)."""
    return bool(_slots(type(op)).tp_del)


_raw_traceback = getattr(tracemalloc, "_get_object_traceback", None)


def raw_traceback(op):
    """Where `op` was allocated: ((filename, lineno), ...) innermost first,
    or None.  tracemalloc's raw form (no Traceback/Frame objects: this is
    called for every cycle while tracemalloc traces our allocations too)."""
    if _raw_traceback is None:  # pragma: no cover
        tb = tracemalloc.get_object_traceback(op)
        return tuple((f.filename, f.lineno) for f in reversed(tb)) if tb else None
    frames = _raw_traceback(op)
    if frames is None and _FIX_311 and type(op).__flags__ & _Py_TPFLAGS_MANAGED_DICT:
        # 3.11's tracemalloc forgets the managed-dict pre-header.
        frames = _get_traceback(0, id(op) - _GC_HEAD_SIZE - _PRE_HEADER_311)
    return tuple(frames) if frames else None


_FIX_311 = sys.version_info[:2] == (3, 11) and ctypes is not None and _get_traceback is not None
