"""Analysis of object graphs: the strongly connected components (cycles) of a
set of objects, their shape of types, the labels of references (attribute,
index, key) and where the objects were allocated.

Nothing here keeps a reference to the objects it examines once it returns:
results are plain data (strings and numbers), so garbage can be analyzed
inside a collection's callback and still be freed right after.
"""
import gc as _gc
import linecache
import sys
import types
from collections import deque

from . import _native

_HEAPTYPE = 1 << 9
_get_referents = _gc.get_referents

#: How many characters of a key's repr a label shows.
KEY_REPR_LIMIT = 40


# --------------------------------------------------------------------------
# names

def typename(tp):
    """Short name of a type for shapes and tables: its qualified name, from
    the last ``<locals>`` on (``Request`` for ``handler.<locals>.Request``)."""
    try:
        name = tp.__qualname__
    except Exception:  # pragma: no cover - a broken metaclass
        return getattr(tp, "__name__", "?")
    if not isinstance(name, str):  # pragma: no cover
        return "?"
    return name.rpartition("<locals>.")[2]


def full_typename(tp):
    module = getattr(tp, "__module__", None)
    name = typename(tp)
    if module in (None, "builtins"):
        return name
    return f"{module}.{name}"


def _short_repr(value, limit=KEY_REPR_LIMIT):
    if type(value) in (str, int, float, bool, bytes, type(None)):
        text = repr(value)
    else:
        text = f"<{typename(type(value))} at {id(value):#x}>"
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return text


def describe(obj, limit=60):
    """One-line description of an object that runs no user code: its type and
    a hint of what it is (a function's name, a module's name, a container's
    length), never its repr."""
    tp = type(obj)
    name = typename(tp)
    try:
        if issubclass(tp, types.ModuleType):
            return f"module {obj.__name__}"
        if issubclass(tp, type):
            return f"class {full_typename(obj)}"
        if issubclass(tp, (types.FunctionType, types.BuiltinFunctionType)):
            return f"function {obj.__qualname__}"
        if issubclass(tp, types.MethodType):
            return f"method {obj.__func__.__qualname__}"
        if issubclass(tp, types.FrameType):
            code = obj.f_code
            return f"frame of {code.co_name} ({code.co_filename}:{obj.f_lineno})"
        if issubclass(tp, types.CodeType):
            return f"code {obj.co_name}"
        if tp in (list, tuple, dict, set, frozenset):
            return f"{name} (len {len(obj)})"
        if tp in (str, bytes, int, float, bool):
            return f"{name} {_short_repr(obj, limit)}"
    except Exception:
        pass
    return f"{name} object at {id(obj):#x}"


# --------------------------------------------------------------------------
# labels: how `src` refers to `dst`

_KNOWN_ATTRS = (
    "__self__", "__func__", "__wrapped__", "__traceback__", "__context__",
    "__cause__", "tb_frame", "tb_next", "f_back", "f_globals", "f_builtins",
    "f_code", "gi_frame", "cr_frame", "ag_frame", "gi_code", "__globals__",
    "__defaults__", "__kwdefaults__", "__closure__", "__code__",
    "__module__", "__objclass__", "fget", "fset", "fdel", "__doc__", "__bases__",
    "__mro__", "__base__", "args", "cell_contents",
)
# Not probed: the getters of ``__dict__`` (functions, exceptions) and of
# ``__annotations__`` (functions, classes, modules) create an empty dict
# when there is none.  An existing ``__dict__`` is labelled from the
# object's dict pointer; ``__annotations__`` of a class or a module is an
# item of its dict.


def _slot_names(tp):
    for klass in getattr(tp, "__mro__", ()):
        slots = klass.__dict__.get("__slots__")
        if slots is None:
            continue
        if isinstance(slots, str):
            slots = (slots,)
        for name in slots:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{klass.__name__.lstrip('_')}{name}"
            descr = klass.__dict__.get(name)
            if descr is not None and hasattr(descr, "__get__"):
                yield name, descr


# Instance dicts.  Asking for an object's ``__dict__`` (``vars()``, ``dir()``,
# ``__getstate__``, ...) creates it when it does not exist yet: on 3.11-3.13
# an ordinary instance keeps its attributes inline, without a dict object,
# until something asks (3.11/3.12 then reference the attributes through the
# new dict); a function or an exception creates an empty one.  Labels must
# not change the heap they describe, so a dict is only used when it already
# exists, which is read, not asked: the dict pointer of the object, through
# ctypes (the managed dict pointer three words before the object on 3.11,
# 3.12 -- tagged with 1 when it holds the inline values -- and 3.13; else
# at the type's ``tp_dictoffset``).  Without a dict the attribute names come
# from code (see :class:`Labeller`).

try:
    import ctypes as _ctypes
except ImportError:  # pragma: no cover - part of every CPython build we support
    _ctypes = None

_MANAGED_DICT = 1 << 4                  # Py_TPFLAGS_MANAGED_DICT (3.11+)
_type_dict = type.__dict__["__dict__"].__get__
_type_mro = type.__dict__["__mro__"].__get__
_type_flags = type.__dict__["__flags__"].__get__
_type_dictoffset = type.__dict__["__dictoffset__"].__get__
_type_basicsize = type.__dict__["__basicsize__"].__get__
_type_itemsize = type.__dict__["__itemsize__"].__get__
_type_module = type.__dict__["__module__"].__get__
_module_dict = types.ModuleType.__dict__["__dict__"].__get__

if _ctypes is not None:
    _WORD = _ctypes.sizeof(_ctypes.c_void_p)

    def _peek(address):
        return _ctypes.c_void_p.from_address(address).value or 0

    def _peek_ssize(address):
        return _ctypes.c_ssize_t.from_address(address).value
else:  # pragma: no cover
    _WORD = 8
    _peek = _peek_ssize = None


def _mro_lookup(tp, name):
    """The class attribute `name` of instances of tp (no user code), or
    (None, False)."""
    for klass in _type_mro(tp):
        d = _type_dict(klass)
        if name in d:
            return d[name], True
    return None, False


def _dict_pointer(obj, tp):
    """Address of obj's instance dict, 0 if it has none (yet), None if
    this cannot be read."""
    if _peek is None:
        return None
    if _type_flags(tp) & _MANAGED_DICT:
        p = _peek(id(obj) - 3 * _WORD)
        return 0 if p & 1 else p        # 3.12: tagged pointer to the inline values
    offset = _type_dictoffset(tp)
    if offset == 0:
        return 0
    if offset < 0:                      # after the items of a variable-size object
        size = abs(_peek_ssize(id(obj) + 2 * _WORD))
        total = _type_basicsize(tp) + size * _type_itemsize(tp)
        offset += (total + _WORD - 1) & ~(_WORD - 1)
    return _peek(id(obj) + offset)


def _instance_dict(obj, tp=None):
    """obj's ``__dict__`` if it exists already, else None: never creates
    one, never runs user code."""
    if tp is None:
        tp = type(obj)
    p = _dict_pointer(obj, tp)
    if p == 0:
        return None
    if p is None and _type_flags(tp) & _MANAGED_DICT:
        return None                     # no ctypes: asking could create it
    for r in _get_referents(obj):
        if id(r) == p and isinstance(r, dict):
            return r
    # not traversed (3.13 visits the inline values while they are valid):
    # the C descriptor returns the existing dict
    descr, found = _mro_lookup(tp, "__dict__")
    if not found or _type_flags(type(descr)) & _HEAPTYPE:
        return None
    try:
        d = descr.__get__(obj, tp)
    except Exception:
        return None
    if isinstance(d, dict) and (p is None or id(d) == p):
        return d
    return None


def _has_inline_values(obj, tp):
    """Attributes kept inline, without a dict object (3.11+)."""
    return bool(_type_flags(tp) & _MANAGED_DICT) and not _dict_pointer(obj, tp)


def _code_names(code, out, seen):
    """Attribute names the code (and the code nested in it) loads or
    stores, into the dict `out` (an ordered set)."""
    stack = [code]
    while stack:
        c = stack.pop()
        if id(c) in seen:
            continue
        seen.add(id(c))
        for name in c.co_names:
            out[name] = None
        for k in c.co_consts:
            if type(k) is types.CodeType:
                stack.append(k)


def _codes_of(value):
    """Code objects of a function-like class attribute, without user code."""
    t = type(value)
    if t is types.FunctionType:
        return (value.__code__,)
    if t is staticmethod or t is classmethod:
        f = value.__func__
        return (f.__code__,) if type(f) is types.FunctionType else ()
    if t is property:
        return tuple(f.__code__ for f in (value.fget, value.fset, value.fdel)
                     if type(f) is types.FunctionType)
    return ()


class _TypeNames:
    __slots__ = ("tp", "learned", "own", "safe", "heap_scans", "misses")

    def __init__(self, tp):
        self.tp = tp                # holds it: ids stay valid while cached
        self.learned = {}           # names found on its instances, first found first
        self.own = None             # names from its classes' attributes and code
        self.safe = {}              # name -> (readable without user code, class value)
        self.heap_scans = 0
        self.misses = 0             # searches that named nothing


class Labeller:
    """:func:`label` for many references at once (one query), with what it
    learns cached: which attribute names instances of a class have.

    An instance whose attributes are inline has no dict to read names from,
    and creating one to ask would change the heap.  Its referents are the
    attribute values; their names are found by trying candidate names with
    ``object.__getattribute__(obj, name)`` (which reads the inline values,
    creates nothing and runs no user code: names that the class defines as
    descriptors other than plain functions are not tried).  Candidates, in
    order: names that matched on other instances of the class, then the
    attribute names of the class's own code (``self.x = ...``), of the code
    running on any thread, of its module's functions and classes, and, with
    `scan_heap`, of every function on the heap.  A value no candidate
    names is labelled ``.<attribute>``; after a few such misses on a
    class, its instances are only tried with the names of the first two
    kinds (a search through every name costs about a millisecond)."""

    HEAP_SCANS_PER_TYPE = 3
    MISSES_PER_TYPE = 16

    def __init__(self, scan_heap=False):
        self.scan_heap = scan_heap
        self._types = {}
        self._frames = None
        self._modules = {}
        self._heap = None
        self._seen_codes = set()

    def __call__(self, src, dst):
        try:
            return _label(src, dst, self)
        except Exception:
            return "?"

    # candidate names -------------------------------------------------------

    def _type_names(self, tp):
        info = self._types.get(id(tp))
        if info is None:
            info = self._types[id(tp)] = _TypeNames(tp)
        return info

    def _own(self, info):
        if info.own is None:
            out = {}
            for klass in _type_mro(info.tp):
                if klass is object:
                    continue
                for name, value in _type_dict(klass).items():
                    if isinstance(name, str):
                        out[name] = None
                    for code in _codes_of(value):
                        _code_names(code, out, set())
            info.own = out
        return info.own

    def _frame_names(self):
        if self._frames is None:
            out = {}
            frames = sys._current_frames()
            try:
                for frame in frames.values():
                    while frame is not None:
                        _code_names(frame.f_code, out, self._seen_codes)
                        frame = frame.f_back
            finally:
                frames.clear()
            self._frames = out
        return self._frames

    def _module_names(self, tp):
        out = {}
        for klass in _type_mro(tp):
            if not _type_flags(klass) & _HEAPTYPE:
                continue
            name = _type_module(klass)
            if not isinstance(name, str):
                continue
            names = self._modules.get(name)
            if names is None:
                names = self._modules[name] = {}
                mod = sys.modules.get(name)
                if isinstance(mod, types.ModuleType):
                    seen = set()
                    for value in list(_module_dict(mod).values()):
                        if isinstance(value, type):
                            if _type_module(value) != name:
                                continue
                            for v in list(_type_dict(value).values()):
                                for code in _codes_of(v):
                                    _code_names(code, names, seen)
                        for code in _codes_of(value):
                            _code_names(code, names, seen)
            out.update(names)
        return out

    def _heap_names(self):
        if self._heap is None:
            out = {}
            seen = set()
            function = types.FunctionType
            for o in _gc.get_objects():
                if type(o) is function:
                    _code_names(o.__code__, out, seen)
            del o
            self._heap = out
        return self._heap

    def _candidates(self, info):
        yield info.learned
        yield self._own(info)
        if info.misses >= self.MISSES_PER_TYPE:
            return
        yield self._frame_names()
        yield self._module_names(info.tp)
        if self.scan_heap and info.heap_scans < self.HEAP_SCANS_PER_TYPE:
            info.heap_scans += 1
            yield self._heap_names()

    def _readable(self, info, name):
        """(whether object.__getattribute__ may read `name` without
        running user code, the class's value for it)."""
        known = info.safe.get(name)
        if known is None:
            value, found = _mro_lookup(info.tp, name)
            ok = True
            if found:
                vt = type(value)
                data = _mro_lookup(vt, "__set__")[1] or _mro_lookup(vt, "__delete__")[1]
                if data:
                    ok = False          # a property, a slot, __dict__: not an instance value
                elif _mro_lookup(vt, "__get__")[1]:
                    # C descriptors (functions, builtin methods) make a
                    # bound method; others could run user code
                    ok = not _type_flags(vt) & _HEAPTYPE and vt is not classmethod
            known = info.safe[name] = (ok, value if found else _NOTHING)
        return known

    def attribute(self, src, tp, dst):
        """The name of src's inline attribute whose value is dst, or None."""
        info = self._type_names(tp)
        get = object.__getattribute__
        tried = set()
        for names in self._candidates(info):
            for name in names:
                # exactly str: 3.11/3.12 look any other name up in a dict
                # they create from the inline values
                if type(name) is not str or name in tried:
                    continue
                tried.add(name)
                ok, class_value = self._readable(info, name)
                if not ok:
                    continue
                try:
                    value = get(src, name)
                except Exception:
                    continue
                if value is dst and value is not class_value:
                    info.learned[name] = None
                    return name
        info.misses += 1
        return None


_NOTHING = object()


def label(src, dst):
    """How `src` refers to `dst`: ``.attr``, ``[index]``, ``['key']``,
    ``<key>`` (dst is a dict key), ``{member}``, ``.<attribute>`` (an
    attribute whose name no code reveals), or ``?`` when the reference is
    only visible to the collector (a C field with no Python name).
    Runs no user code (no properties, no __getattr__, no __eq__) and
    creates no instance dict.  For many labels, use one :class:`Labeller`."""
    return Labeller()(src, dst)


def _label(src, dst, labeller):
    tp = type(src)
    if issubclass(tp, dict):
        for k, v in dict.items(src):
            if v is dst:
                return f"[{_short_repr(k)}]"
        for k in dict.keys(src):
            if k is dst:
                return "<key>"
    elif issubclass(tp, (list, tuple)):
        base = list if issubclass(tp, list) else tuple
        for i, v in enumerate(base.__iter__(src)):
            if v is dst:
                return f"[{i}]"
    elif issubclass(tp, (set, frozenset)):
        return "{member}"
    elif issubclass(tp, types.CellType):
        return ".cell_contents"
    if issubclass(tp, types.FunctionType):
        closure = src.__closure__ or ()
        for i, cell in enumerate(closure):
            if cell is dst:
                names = src.__code__.co_freevars
                return f".__closure__[{i}]" + (f" ({names[i]})" if i < len(names) else "")
    if issubclass(tp, types.FrameType):
        if src.f_back is dst:
            return ".f_back"
        try:
            for name, value in src.f_locals.items():
                if value is dst:
                    return f".f_locals[{name!r}]"
        except Exception:
            pass
    if issubclass(tp, (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)):
        # 3.11+: the suspended frame is part of the generator
        attr = {types.GeneratorType: "gi_frame", types.CoroutineType: "cr_frame"}.get(tp, "ag_frame")
        frame = getattr(src, attr)
        if frame is not None:
            for name, value in frame.f_locals.items():
                if value is dst:
                    return f".{attr}.f_locals[{name!r}]"
    if issubclass(tp, type):
        tdict = type.__dict__["__dict__"].__get__(src)
        if isinstance(tdict, types.MappingProxyType):
            for k, v in tdict.items():
                if v is dst:
                    return f".{k}"
            # the real dict behind the mappingproxy
            inner = _get_referents(tdict)
            if inner and inner[0] is dst:
                return ".__dict__"
    d = _instance_dict(src, tp)
    if d is not None:
        if d is dst:
            return ".__dict__"
        for k, v in d.items():
            if v is dst:
                return f".{k}" if isinstance(k, str) else f".__dict__[{_short_repr(k)}]"
    for name, descr in _slot_names(tp):
        try:
            if descr.__get__(src, tp) is dst:
                return f".{name}"
        except Exception:
            continue
    inline = d is None and _has_inline_values(src, tp)
    if inline and tp is not dst:
        name = labeller.attribute(src, tp, dst)
        if name is not None:
            return f".{name}"
    if tp.__flags__ & _HEAPTYPE and tp is dst:
        return ".__class__"
    if not tp.__flags__ & _HEAPTYPE or issubclass(tp, BaseException):
        # builtin objects: their attributes are C getters without user code
        for name in _KNOWN_ATTRS:
            try:
                value = object.__getattribute__(src, name)
            except Exception:
                continue
            if value is dst:
                return f".{name}"
            if isinstance(value, tuple) and name in ("args", "__defaults__", "__bases__", "__mro__"):
                for i, v in enumerate(value):
                    if v is dst:
                        return f".{name}[{i}]"
    if tp is dst:
        return ".__class__"
    if inline and any(r is dst for r in _get_referents(src)):
        return ".<attribute>"
    return "?"


def hop_text(src, lbl):
    """``Type.attr`` / ``Type[0]`` / ``Type['key']``: a reference out of src."""
    name = typename(type(src))
    if lbl == "?":
        return f"{name} -?"
    if lbl.startswith((".", "[")):
        return f"{name}{lbl}"
    return f"{name} {lbl}"


# --------------------------------------------------------------------------
# strongly connected components

def tarjan(n, succ):
    """Strongly connected components of the graph on nodes 0..n-1 with
    successor lists `succ`, iteratively (no recursion limit).  Returns
    (components, comp_of): components in reverse topological order (every
    edge between components goes from a later to an earlier one)."""
    index = [-1] * n
    low = [0] * n
    on_stack = bytearray(n)
    comp_of = [-1] * n
    stack = []
    components = []
    counter = 0
    vstack = []                 # the depth-first path: nodes ...
    istack = []                 # ... and the next edge of each
    for root in range(n):
        if index[root] != -1:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = 1
        vstack.append(root)
        istack.append(0)
        while vstack:
            v = vstack[-1]
            i = istack[-1]
            edges = succ[v]
            if i < len(edges):
                istack[-1] = i + 1
                w = edges[i]
                if index[w] == -1:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = 1
                    vstack.append(w)
                    istack.append(0)
                elif on_stack[w] and index[w] < low[v]:
                    low[v] = index[w]
                continue
            vstack.pop()
            istack.pop()
            if vstack:
                u = vstack[-1]
                if low[v] < low[u]:
                    low[u] = low[v]
            if low[v] == index[v]:
                c = len(components)
                w = stack.pop()
                on_stack[w] = 0
                comp_of[w] = c
                if w == v:
                    components.append((v,))
                    continue
                comp = [w]
                while w != v:
                    w = stack.pop()
                    on_stack[w] = 0
                    comp_of[w] = c
                    comp.append(w)
                components.append(comp)
    return components, comp_of


def shortest_cycle(start, succ, allowed):
    """Shortest cycle through node `start` using only nodes for which
    ``allowed(node)``: the list of nodes [start, ..., last] (last -> start
    closes it), or None."""
    parent = {}
    queue = deque()
    for w in succ[start]:
        if w == start:
            return [start]
        if allowed(w) and w not in parent:
            parent[w] = start
            queue.append(w)
    while queue:
        v = queue.popleft()
        for w in succ[v]:
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                path.reverse()
                return path
            if allowed(w) and w not in parent:
                parent[w] = v
                queue.append(w)
    return None


# --------------------------------------------------------------------------
# allocation sites

def traceback_of(obj):
    """Allocation traceback as ((filename, lineno), ...) innermost first, or
    () if tracemalloc was not tracing when obj was allocated."""
    try:
        return _native.raw_traceback(obj) or ()
    except Exception:
        return ()


def site_text(frame):
    if not frame:
        return "<unknown>"
    return f"{frame[0]}:{frame[1]}"


def source_line(frame):
    if not frame:
        return ""
    return linecache.getline(frame[0], frame[1]).strip()


# --------------------------------------------------------------------------
# garbage analysis

def _type_rank(tp):
    """Which member of a cycle names it: instances of user classes first,
    then classes, functions, frames and the like, then plain containers."""
    if tp.__flags__ & _HEAPTYPE and not issubclass(tp, type):
        return 0
    if tp in (dict, tuple, types.CellType, frozenset):
        return 3
    if tp in (list, set):
        return 2
    return 1


class CycleGroup:
    """Cycles of one shape whose first member was allocated at one site:
    how many, how many objects (the cycles' own plus the acyclic garbage
    only they kept alive; ``in_cycles`` counts the former) and bytes
    (``sys.getsizeof``)."""

    __slots__ = ("shape", "path", "traceback", "types", "cycles", "objects", "bytes",
                 "min_size", "max_size", "in_cycles")

    def __init__(self, shape, path, traceback, types_):
        self.shape = shape            # "Node -> dict -> Node"
        self.path = path              # "Node.__dict__ -> dict['next'] -> Node" (one example)
        self.traceback = traceback    # ((file, line), ...) innermost first; () unknown
        self.types = types_           # {typename: count} in one such cycle
        self.cycles = 0
        self.objects = 0
        self.bytes = 0
        self.min_size = None
        self.max_size = 0
        self.in_cycles = 0            # objects that are members of the cycles

    @property
    def hanging(self):
        """Acyclic garbage only these cycles kept alive (objects - in_cycles)."""
        return self.objects - self.in_cycles

    @property
    def site(self):
        return self.traceback[0] if self.traceback else None

    def add(self, size, objects, nbytes, count=1):
        self.cycles += count
        self.objects += objects
        self.in_cycles += size * count
        self.bytes += nbytes
        if self.min_size is None or size < self.min_size:
            self.min_size = size
        if size > self.max_size:
            self.max_size = size

    def merge(self, other):
        self.cycles += other.cycles
        self.objects += other.objects
        self.in_cycles += other.in_cycles
        self.bytes += other.bytes
        if other.min_size is not None and (self.min_size is None or other.min_size < self.min_size):
            self.min_size = other.min_size
        self.max_size = max(self.max_size, other.max_size)

    def as_dict(self):
        return {
            "shape": self.shape, "path": self.path, "site": site_text(self.site),
            "traceback": [site_text(f) for f in self.traceback], "types": dict(self.types),
            "cycles": self.cycles, "objects": self.objects, "in_cycles": self.in_cycles,
            "hanging_objects": self.hanging, "bytes": self.bytes,
            "min_size": self.min_size, "max_size": self.max_size,
        }

    def __repr__(self):
        return (f"<CycleGroup {self.shape!r} x{self.cycles} at {site_text(self.site)}: "
                f"{self.objects} objects>")


_sizeof = sys.getsizeof

#: Components up to this size share their description with every component
#: of the same member types (computed once per collection).
_SMALL = 8


def _anchor(objects, succ, comp, comp_of, c):
    """The member that names a cycle, chosen by structure so that cycles
    built alike are named alike whatever order the collector found them in:
    instances of user classes first (then classes, functions and frames,
    then plain containers), then the most referenced member inside the
    cycle (a tree's root, not a leaf), then collection order."""
    if len(comp) == 1:
        return comp[0]
    indeg = {}
    for v in comp:
        for w in succ[v]:
            if comp_of[w] == c:
                indeg[w] = indeg.get(w, 0) + 1
    return min(comp, key=lambda v: (_type_rank(type(objects[v])), -indeg.get(v, 0), v))


def _describe_component(objects, succ, anchor, comp, comp_of, c, label=label):
    """(shape, path, types) of one cyclic component, from its anchor."""
    path = shortest_cycle(anchor, succ, lambda w: comp_of[w] == c) or [anchor]
    names = [typename(type(objects[v])) for v in path]
    shape = " -> ".join(names + [names[0]])
    hops = []
    for k, v in enumerate(path):
        nxt = path[(k + 1) % len(path)]
        hops.append(hop_text(objects[v], label(objects[v], objects[nxt])))
    counts = {}
    for v in comp:
        name = typename(type(objects[v]))
        counts[name] = counts.get(name, 0) + 1
    return shape, " -> ".join(hops + [names[0]]), counts


def analyze_garbage(objects, with_tracebacks=True):
    """Group `objects` (the garbage of one collection, in collection order)
    into cycles: strongly connected components, each with the acyclic
    garbage only it kept alive.  Returns (groups, unattributed): groups is a
    list of :class:`CycleGroup` by (allocation site, shape); unattributed
    counts objects outside any cycle and not reachable from one (normally 0).

    Written to allocate little per object: tracemalloc, when tracing,
    traces this code's own allocations too (about 2 us each)."""
    n = len(objects)
    if n == 0:
        return [], 0
    position = dict(zip(map(id, objects), range(n)))
    get = position.get
    succ = []
    append = succ.append
    for o in objects:
        out = [j for j in map(get, map(id, _get_referents(o))) if j is not None]
        append(out)
    components, comp_of = tarjan(n, succ)

    # Acyclic garbage belongs to the nearest cycle that reaches it: cycles
    # are visited sinks first (Tarjan's order) and claim the acyclic objects
    # they reach, never entering another cycle.
    owner = [-1] * n
    cyclic = []
    for c, comp in enumerate(components):
        if len(comp) > 1 or comp[0] in succ[comp[0]]:
            cyclic.append(c)
            for v in comp:
                owner[v] = c
    for c in cyclic:
        stack = list(components[c])
        while stack:
            for w in succ[stack.pop()]:
                if owner[w] == -1:
                    owner[w] = c
                    stack.append(w)
    attached_count = {}
    attached_bytes = {}
    unattributed = 0
    for v in range(n):
        c = owner[v]
        if c == -1:
            unattributed += 1
        elif comp_of[v] != c:
            attached_count[c] = attached_count.get(c, 0) + 1
            attached_bytes[c] = attached_bytes.get(c, 0) + _sizeof(objects[v])

    groups = {}
    labeller = Labeller()     # learns attribute names once for all components
    described = {}       # (signature, anchor type) of a small component -> description
    for c in cyclic:
        comp = components[c]
        size = len(comp)
        anchor = _anchor(objects, succ, comp, comp_of, c)
        if size == 1:
            sig = type(objects[anchor])
        elif size <= _SMALL:
            sig = (tuple(sorted(id(type(objects[v])) for v in comp)), type(objects[anchor]))
        else:
            sig = None
        info = described.get(sig) if sig is not None else None
        if info is None:
            info = _describe_component(objects, succ, anchor, comp, comp_of, c, labeller)
            if sig is not None:
                described[sig] = info
        shape, path, counts = info
        tb = ()
        if with_tracebacks:
            tb = traceback_of(objects[anchor])
            if not tb:
                # allocated before tracing (or by C code): another member's site
                for v in sorted(comp):
                    tb = traceback_of(objects[v])
                    if tb:
                        break
        nbytes = attached_bytes.get(c, 0)
        for v in comp:
            nbytes += _sizeof(objects[v])
        key = (tb, shape)
        group = groups.get(key)
        if group is None:
            group = groups[key] = CycleGroup(shape, path, tb, counts)
        group.add(size, size + attached_count.get(c, 0), nbytes)
    return list(groups.values()), unattributed
