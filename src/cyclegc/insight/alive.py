"""Why is an object alive, and which cycles is it part of?

:func:`why_alive` searches backwards from the object, breadth first, for
the shortest chain of references from a root:

* a module's globals (the ``__dict__`` of a module in ``sys.modules``),
* a class (its attributes),
* a local variable of a frame running on any thread,
* "held by C code or an untracked object": an object whose reference count
  is higher than the references the search found to it.

Referrers come from the collector's own traversal.  While the search front
is small, each step is one ``gc.get_referrers`` scan of the heap (C speed,
~30-60 ms per million objects); once the scans would cost more than
indexing, a reverse index of the whole heap is built in one pass of
``gc.get_referents`` over ``gc.get_objects()`` and the rest of the search
uses it.  A depth limit and a time limit end the search with a partial
answer that says so.

:func:`find_cycles` finds the strongly connected component through an
object: the objects it reaches that also reach it, with labelled edges, and
the shortest cycles through it.

Neither runs user code: labels come from the objects' storage (dict items,
list indexes, ``__dict__``, slots), never from properties or ``__eq__``.
Neither changes the heap it looks at: an instance whose attributes are kept
inline (no ``__dict__`` object yet, 3.11+) is not asked for its ``__dict__``,
which would create one; its attribute names come from code instead (see
:class:`~.analysis.Labeller`).
"""
import dis
import gc as _gc
import sys
import threading
import time
import types
from collections import deque

from .analysis import Labeller, describe, typename

_HERE = __file__
_IMMORTAL = 1 << 30             # 3.12+: immortal objects' refcount is larger
# 3.12 starts with immortal objects in the permanent generation: only more
# than these means someone called gc.freeze().
_FROZEN_AT_IMPORT = _gc.get_freeze_count()


# --------------------------------------------------------------------------
# results

class Chain:
    """One chain of references from a root to the object.

    ``objects[0]`` is the root object (a module's globals dict, a class, a
    frame's local variable, or the object whose extra references were not
    found); ``objects[-1]`` is the object asked about; ``labels[i]`` is how
    ``objects[i]`` refers to ``objects[i + 1]``."""

    __slots__ = ("kind", "root", "objects", "labels")

    def __init__(self, kind, root, objects, labels):
        self.kind = kind            # "module", "class", "frame", "external", "caller"
        self.root = root            # what the root is, in words
        self.objects = objects
        self.labels = labels

    @property
    def depth(self):
        return len(self.labels)

    def hops(self):
        """[(label, object)]: each reference after the root, as printed."""
        out = []
        labels = list(self.labels)
        objs = list(self.objects)
        i = 0
        if self.kind == "class" and len(objs) > 2 and labels[0] == ".__dict__":
            # class -> its __dict__ -> value: one hop, ".attr"
            key = labels[1]
            labels = [_key_as_attr(key)] + labels[2:]
            objs = [objs[0]] + objs[2:]
        elif self.kind == "module" and labels:
            labels = [_key_as_attr(labels[0])] + labels[1:]
        for i, lbl in enumerate(labels):
            out.append((lbl, objs[i + 1]))
        return out

    def lines(self):
        out = [self.root]
        for lbl, obj in self.hops():
            out.append(f"  {lbl:<28} -> {describe(obj)}")
        return out

    def __repr__(self):
        return f"<Chain {self.kind} depth={self.depth}: {self.root}>"


def _key_as_attr(lbl):
    if lbl.startswith("['") and lbl.endswith("']") and lbl[2:-2].isidentifier():
        return "." + lbl[2:-2]
    return lbl


class WhyAlive:
    """The answer of :func:`why_alive`: ``chains`` (shortest first; the
    first is ``chain``), and how the search went.  ``str()`` prints it one
    hop per line; :meth:`to_dot` draws it for Graphviz."""

    def __init__(self, target, chains, *, complete, reason, unreachable, examined,
                 elapsed, depth, indexed, frozen):
        self.target = target
        self.chains = chains
        self.complete = complete          # False: stopped by a limit
        self.reason = reason              # why it stopped early, or ""
        self.unreachable = unreachable    # no root at all: it is garbage
        self.examined = examined          # objects visited by the search
        self.elapsed = elapsed            # seconds
        self.depth = depth                # deepest level searched
        self.indexed = indexed            # a reverse index of the heap was built
        self.frozen = frozen              # gc.freeze()d objects were invisible

    @property
    def chain(self):
        return self.chains[0] if self.chains else None

    def __bool__(self):
        return bool(self.chains)

    def lines(self):
        what = describe(self.target)
        stats = (f"{self.examined:,} objects examined in {self.elapsed:.3f} s"
                 + (", heap indexed" if self.indexed else ""))
        if self.chains:
            n = len(self.chains)
            head = (f"{what} is alive: {'1 chain' if n == 1 else f'{n} chains'} "
                    f"of references from a root ({stats})")
        elif self.unreachable:
            head = (f"{what} is not reachable from any root: it is cyclic garbage the next "
                    f"collection of its generation will free ({stats}; see find_cycles())")
        else:
            head = f"{what}: no root found ({stats})"
        out = [head]
        for k, chain in enumerate(self.chains, 1):
            prefix = f"{k}. " if len(self.chains) > 1 else ""
            lines = chain.lines()
            out.append(f"  {prefix}{lines[0]}")
            out += [f"  {'   ' if prefix else ''}{ln}" for ln in lines[1:]]
        if not self.complete:
            out.append(f"  partial answer: {self.reason}")
        if self.frozen and any(c.kind == "external" for c in self.chains):
            out.append("  note: objects frozen with gc.freeze() are invisible to the search; "
                       "their references count as not found")
        return out

    def __str__(self):
        return "\n".join(self.lines())

    def __repr__(self):
        return f"<WhyAlive {describe(self.target)}: {len(self.chains)} chains, complete={self.complete}>"

    def to_dot(self):
        """Graphviz source of the chains (root boxes at the top)."""
        g = _Dot("why_alive")
        target = g.node(self.target, bold=True)
        for chain in self.chains:
            first = chain.objects[0]
            root = g.root(chain.root)
            prev = g.node(first)
            g.edge(root, prev, "")
            for lbl, obj in chain.hops():
                cur = g.node(obj)
                g.edge(prev, cur, lbl)
                prev = cur
        if not self.chains:
            g.lines.append(f'  {target} [xlabel="no root found"];')
        return g.source()


class Cycles:
    """The answer of :func:`find_cycles`: the strongly connected component
    through the object (``objects``, ``edges`` as (source, label, target)),
    and ``cycles``: the shortest cycles through it, each a list of
    (object, label of its reference to the next), the last one referring
    back to the object."""

    def __init__(self, target, objects, edges, cycles, *, complete, reason, examined, elapsed):
        self.target = target
        self.objects = objects
        self.edges = edges
        self.cycles = cycles
        self.complete = complete
        self.reason = reason
        self.examined = examined
        self.elapsed = elapsed

    def __bool__(self):
        return bool(self.cycles)

    def __len__(self):
        return len(self.cycles)

    @property
    def size(self):
        return len(self.objects)

    def shapes(self):
        """Each cycle as ``Type.attr -> Type[0] -> Type``."""
        out = []
        for cyc in self.cycles:
            parts = [f"{typename(type(o))}{lbl if lbl.startswith(('.', '[')) else ' ' + lbl}"
                     for o, lbl in cyc]
            out.append(" -> ".join(parts + [typename(type(cyc[0][0]))]))
        return out

    def lines(self):
        what = describe(self.target)
        stats = f"{self.examined:,} objects examined in {self.elapsed:.3f} s"
        if not self.cycles:
            out = [f"{what} is in no reference cycle ({stats})"]
        else:
            counts = {}
            for o in self.objects:
                counts[typename(type(o))] = counts.get(typename(type(o)), 0) + 1
            kinds = ", ".join(f"{n} {t}" for t, n in sorted(counts.items(), key=lambda kv: -kv[1])[:6])
            out = [f"{what} is in a strongly connected component of {len(self.objects):,} "
                   f"objects ({kinds}); shortest cycles through it ({stats}):"]
            out += [f"  {s}" for s in self.shapes()]
        if not self.complete:
            out.append(f"  partial answer: {self.reason}")
        return out

    def __str__(self):
        return "\n".join(self.lines())

    def __repr__(self):
        return f"<Cycles {describe(self.target)}: {len(self.cycles)} cycles, component of {self.size}>"

    def to_dot(self, max_edges=2000):
        g = _Dot("find_cycles")
        g.node(self.target, bold=True)
        for src, lbl, dst in self.edges[:max_edges]:
            g.edge(g.node(src), g.node(dst), lbl)
        if len(self.edges) > max_edges:
            g.lines.append(f'  // {len(self.edges) - max_edges} more edges left out')
        return g.source()


class _Dot:
    def __init__(self, name):
        self.name = name
        self.ids = {}
        self.lines = []
        self.roots = 0

    @staticmethod
    def quote(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    def node(self, obj, bold=False):
        key = id(obj)
        name = self.ids.get(key)
        if name is None:
            name = self.ids[key] = f"n{len(self.ids)}"
            style = ', style="bold"' if bold else ""
            self.lines.append(f"  {name} [label={self.quote(describe(obj))}{style}];")
        return name

    def root(self, text):
        self.roots += 1
        name = f"root{self.roots}"
        self.lines.append(f'  {name} [label={self.quote(text)}, shape=box, style="rounded,filled", '
                          f'fillcolor="#eeeeee"];')
        return name

    def edge(self, a, b, lbl):
        attr = f" [label={self.quote(lbl)}]" if lbl else ""
        self.lines.append(f"  {a} -> {b}{attr};")

    def source(self):
        return "\n".join([f"digraph {self.name} {{", "  node [shape=ellipse, fontsize=10];",
                          "  edge [fontsize=9];", *self.lines, "}"]) + "\n"


# --------------------------------------------------------------------------
# roots

def _frame_text(frame, thread_names, tid):
    code = frame.f_code
    where = f"{code.co_name}() at {code.co_filename}:{frame.f_lineno}"
    name = thread_names.get(tid)
    return where + (f" (thread {name})" if name else "")


def _our_frame(frame):
    return frame.f_code.co_filename == _HERE


class _Roots:
    """Module globals, classes, and the locals of running frames."""

    def __init__(self, caller):
        self.modules = {}       # id(globals dict) -> module name
        for name, mod in list(sys.modules.items()):
            if isinstance(mod, types.ModuleType):
                try:
                    d = types.ModuleType.__dict__["__dict__"].__get__(mod)
                except Exception:
                    continue
                self.modules.setdefault(id(d), name)
        self.frame_values = {}  # id(value) -> [(description, variable name)]
        self.caller_values = {}  # id(value) -> (references from caller's fast locals, names)
        self.snapshots = set()   # ids of frames' f_locals dicts (3.11/3.12 snapshots)
        thread_names = {t.ident: t.name for t in threading.enumerate()}
        frames = sys._current_frames()
        try:
            for tid, frame in frames.items():
                while frame is not None:
                    if not _our_frame(frame):
                        self._add_frame(frame, frame is caller, thread_names, tid)
                    frame = frame.f_back
        finally:
            frames.clear()

    def _add_frame(self, frame, is_caller, thread_names, tid):
        try:
            f_locals = frame.f_locals
        except Exception:  # pragma: no cover
            return
        if type(f_locals) is dict and f_locals is not frame.f_globals:
            self.snapshots.add(id(f_locals))
        if f_locals is frame.f_globals:
            return                     # module level: the module's globals are the root
        code = frame.f_code
        cells = set(code.co_cellvars) | set(code.co_freevars)
        text = None
        for name, value in f_locals.items():
            key = id(value)
            if is_caller:
                n, names = self.caller_values.get(key, (0, []))
                self.caller_values[key] = (n + (0 if name in cells else 1), names + [name])
            else:
                if text is None:
                    text = _frame_text(frame, thread_names, tid)
                self.frame_values.setdefault(key, []).append((text, name))

    def named(self, obj):
        """(kind, text) if obj is a root, else None."""
        key = id(obj)
        name = self.modules.get(key)
        if name is not None:
            return "module", f"module {name} (global variables)"
        if issubclass(type(obj), type):
            mod = getattr(obj, "__module__", None)
            qual = typename(obj)
            return "class", f"class {mod + '.' if isinstance(mod, str) and mod != 'builtins' else ''}{qual}"
        where = self.frame_values.get(key)
        if where:
            text, var = where[0]
            return "frame", f"local variable {var!r} of {text}"
        return None


# --------------------------------------------------------------------------
# referrers: scanning, then an index

class _Referrers:
    """References to objects, from gc.get_referrers scans while they are
    cheap, from a one-pass reverse index of the heap after that."""

    BATCH = 8

    def __init__(self, deadline, ignore):
        self.deadline = deadline
        self.ignore = ignore            # ids of our own containers
        self.scan_time = None           # seconds per scan of the heap
        self.scanned = 0.0
        self.index = None               # id(referent) -> [positions in objs]
        self.objs = None

    def expand(self, batch):
        """{position in batch: [(referrer, references)]} for the objects of
        `batch`, or None if the deadline passed."""
        if self.index is None and self.scan_time is not None:
            # Scans cost ~0.1 us per heap object, the index ~2.5 us once:
            # index as soon as the scans done and due would pass half of it.
            projected = -(-len(batch) // self.BATCH) * self.scan_time * 1.8
            if self.scanned + projected > self._index_cost() / 2:
                if not self._build_index():
                    return None
        if self.index is not None:
            return self._from_index(batch)
        return self._scan(batch)

    def _index_cost(self):
        # One pass of get_referents over the heap costs about 25 scans.
        return 25 * self.scan_time

    def _scan(self, batch):
        result = {}
        for start in range(0, len(batch), self.BATCH):
            if time.perf_counter() > self.deadline:
                return None
            # An exact tuple: the one the call sees (on 3.13 a list would be
            # copied into a tuple the scan then finds as a referrer).
            part = tuple(batch[start:start + self.BATCH])
            self.ignore.add(id(part))
            t0 = time.perf_counter()
            found = _gc.get_referrers(*part)
            spent = time.perf_counter() - t0
            self.scanned += spent
            if self.scan_time is None:
                self.scan_time = spent
            ids = {id(o): k for k, o in enumerate(part)}
            for r in found:
                if id(r) in self.ignore:
                    continue
                counts = {}
                for x in _gc.get_referents(r):
                    k = ids.get(id(x))
                    if k is not None:
                        counts[k] = counts.get(k, 0) + 1
                for k, n in counts.items():
                    result.setdefault(start + k, []).append((r, n))
            self.ignore.discard(id(part))
            del found, part
        return result

    def _build_index(self):
        """One pass of get_referents over the heap: referent id -> position
        (in objs) of its referrer, or a list of them when there are several
        (most objects have one, so most entries allocate nothing).
        Automatic collection is paused (why_alive() pauses it too)."""
        from .. import api
        ignore = self.ignore
        was_enabled = api.isenabled()
        api.disable()
        try:
            # without our own containers: kept in objs they would hold their
            # items (the search front) after the search dropped them
            objs = [o for o in _gc.get_objects() if id(o) not in ignore]
            index = {}
            o = None
            get = _gc.get_referents
            lookup = index.get
            deadline = self.deadline
            for i, o in enumerate(objs):
                if not i & 0x3FFF and time.perf_counter() > deadline:
                    return False
                for k in map(id, get(o)):
                    v = lookup(k)
                    if v is None:
                        index[k] = i
                    elif v.__class__ is int:
                        index[k] = [v, i]
                    else:
                        v.append(i)
            del o
        finally:
            if was_enabled:
                api.enable()
        self.ignore.add(id(objs))
        self.objs = objs
        self.positions = None
        self.index = index
        return True

    def _from_index(self, batch):
        result = {}
        objs = self.objs
        ignore = self.ignore
        for k, o in enumerate(batch):
            found = self.index.get(id(o))
            if found is None:
                continue
            if found.__class__ is int:
                found = (found,)
            counts = {}
            for p in found:
                counts[p] = counts.get(p, 0) + 1
            refs = []
            for p, n in counts.items():
                r = objs[p]
                if id(r) not in ignore:
                    refs.append((r, n))
            if refs:
                result[k] = refs
        return result

    def indexed_holds(self, obj):
        """References our index structures hold to obj (the objects list)."""
        if self.objs is None:
            return 0
        if self.positions is None:
            self.positions = {id(o) for o in self.objs}
        return 1 if id(obj) in self.positions else 0


def _refcount(obj):
    return sys.getrefcount(obj) - 2     # the argument of getrefcount and ours


# --------------------------------------------------------------------------
# why_alive

def why_alive(obj, *, max_depth=64, timeout=10.0, max_chains=3, ignore_caller=True):
    """Why is `obj` still alive?  Returns a :class:`WhyAlive`: the shortest
    chains of references from roots (module globals, classes, local
    variables of running frames, or references that only C code or an
    untracked object can hold) to `obj`; ``print()`` it for one hop per
    line, ``.to_dot()`` for Graphviz.

    The search goes backwards from `obj` breadth first, at most `max_depth`
    references deep and for at most `timeout` seconds; it stops at the first
    depth where it meets a named root (module, class, frame) and keeps up
    to `max_chains` chains.  With `ignore_caller` (the default) the local
    variables of the function that calls why_alive() do not count as roots
    (that is where you hold `obj` to ask); they are reported only if
    nothing else holds it.

    Automatic collection is paused during the search (at most `timeout`).
    On a heap of about a million objects a short chain takes tens of
    milliseconds (a few get_referrers scans); a search that must index
    the heap takes one to two seconds.
    """
    t0 = time.perf_counter()
    caller = sys._getframe(1)
    nodes = [obj]
    del obj
    roots = _Roots(caller if ignore_caller else None)
    roots.call_refs = _call_refs(caller)
    del caller
    ignore = {id(nodes)}
    refs = _Referrers(t0 + timeout, ignore)
    # Automatic collection is paused during the search (bounded by
    # `timeout`): the index and the search allocate a lot, and collections
    # over a heap they have doubled would cost more than the search.
    from .. import api
    was_enabled = api.isenabled()
    api.disable()
    try:
        return _search(nodes, roots, refs, max_depth, max_chains, t0)
    finally:
        nodes.clear()
        if was_enabled:
            api.enable()


def _search(nodes, roots, refs, max_depth, max_chains, t0):
    index = {id(nodes[0]): 0}
    parent = [-1]             # parent[i]: the node i refers to (one step nearer the target)
    level = [0]
    depth = 0
    chains = []               # (depth, order, kind, text, position)
    weak = []                 # caller-held and external roots, used if nothing better
    complete, reason = True, ""
    frozen = _gc.get_freeze_count() > _FROZEN_AT_IMPORT
    explained = [0]
    found_named = False
    while level:
        # named roots at this depth
        for i in level:
            hit = roots.named(nodes[i])
            if hit is not None:
                chains.append((depth, 0, hit[0], hit[1], i))
                found_named = True
        if found_named:
            break
        if depth >= max_depth:
            complete, reason = False, f"depth limit ({max_depth} references) reached"
            break
        batch = [nodes[i] for i in level]
        refs.ignore.add(id(batch))
        expansion = refs.expand(batch)
        refs.ignore.discard(id(batch))
        del batch
        if expansion is None:
            complete, reason = False, f"time limit reached at depth {depth}"
            break
        next_level = _grow(nodes, index, parent, explained, level, expansion, roots.snapshots)
        del expansion
        # references the search did not find: C code, untracked objects
        for i in level:
            extra = _unexplained(nodes, i, explained[i], roots, refs)
            if extra is None:
                continue
            n_caller, names = roots.caller_values.get(id(nodes[i]), (0, []))
            if n_caller and names:
                weak.append((depth, 2, "caller", f"local variable {names[0]!r} of the caller "
                             f"of why_alive()", i))
            if extra > 0 and depth == 1 and explained[i] == 0 and _is_call_args(nodes, i):
                weak.append((depth, 2, "caller", "the arguments of this call to why_alive()", i))
            elif extra > 0:
                frozen_note = " or a frozen object" if frozen else ""
                weak.append((depth, 1, "external",
                             f"held by C code or an untracked object{frozen_note} "
                             f"({extra} reference{'s' if extra != 1 else ''} not found) at", i))
        level = next_level
        depth += 1
    unreachable = not chains and not weak and complete
    externals = [w for w in weak if w[2] == "external"]
    if chains:
        picked = externals + chains
    else:
        picked = externals or [w for w in weak if w[2] == "caller"]
    picked.sort(key=lambda c: (c[0], c[1]))
    result = []
    # labels only for the chains kept, with one Labeller: labelling reads
    # attribute names without creating instance dicts (see analysis.Labeller)
    label = Labeller(scan_heap=True)
    for d, _order, kind, text, i in picked[:max_chains]:
        path = [i]
        while parent[path[-1]] != -1:
            path.append(parent[path[-1]])
        objs = [nodes[p] for p in path]
        labels = [label(objs[j], objs[j + 1]) for j in range(len(objs) - 1)]
        if kind == "external":
            text = f"{text} {describe(objs[0])}"
        result.append(Chain(kind, text, objs, labels))
    return WhyAlive(nodes[0], result, complete=complete, reason=reason, unreachable=unreachable,
                    examined=len(nodes), elapsed=time.perf_counter() - t0, depth=depth,
                    indexed=refs.index is not None, frozen=frozen)


def _grow(nodes, index, parent, explained, level, expansion, skip):
    """Adds the referrers found for `level` as the next level (in its own
    frame, so no loop variable of ours holds an object afterwards)."""
    next_level = []
    for k, found in expansion.items():
        i = level[k]
        for r, n in found:
            explained[i] += n
            key = id(r)
            if key in skip:
                continue
            if key not in index:
                index[key] = len(nodes)
                nodes.append(r)
                parent.append(i)
                explained.append(0)
                next_level.append(index[key])
    return next_level


_CALL_FUNCTION_EX = dis.opmap.get("CALL_FUNCTION_EX")


def _call_refs(caller):
    """References to the object held by the call to why_alive() itself:
    3.11 copies the arguments of ``f(x, **kwargs)`` into a C array for the
    duration of the call (3.12+ moves them into the new frame)."""
    if sys.version_info >= (3, 12) or _CALL_FUNCTION_EX is None:
        return 0
    try:
        code, at = caller.f_code.co_code, caller.f_lasti
        return 1 if code[at] == _CALL_FUNCTION_EX and code[at + 1] & 1 else 0
    except (IndexError, AttributeError):  # pragma: no cover
        return 0


def _is_call_args(nodes, i):
    """The argument tuple of why_alive(obj, **kwargs) itself (3.11 keeps it
    on the caller's stack during the call): (obj,) and nothing else."""
    node = nodes[i]
    return type(node) is tuple and len(node) == 1 and node[0] is nodes[0]


def _unexplained(nodes, i, explained, roots, refs):
    obj = nodes[i]
    rc = sys.getrefcount(obj)
    if rc >= _IMMORTAL:
        return None
    # getrefcount's argument, `obj` here, nodes[] and the caller's fast locals
    holds = 2 + 1 + refs.indexed_holds(obj) + roots.caller_values.get(id(obj), (0, []))[0]
    extra = rc - holds - explained
    if i == 0 and extra > 0:
        extra = max(0, extra - roots.call_refs)
    return extra


# --------------------------------------------------------------------------
# find_cycles

def find_cycles(obj, *, max_cycles=10, max_objects=2_000_000, timeout=5.0,
                include_type_edges=False):
    """The cycles `obj` belongs to.  Returns a :class:`Cycles` with the
    strongly connected component through `obj` (every object it reaches
    that also reaches it back), its edges labelled with the attribute,
    index or key of each reference, and up to `max_cycles` shortest
    cycles through `obj`.

    Found by exploring what `obj` reaches (at most `max_objects` objects,
    `timeout` seconds: beyond that the answer is partial and says so), then
    which of those reach `obj` again.  The reference every instance holds to
    its class is left out unless `include_type_edges` (otherwise every
    instance would be "in a cycle" with its class and module).
    """
    t0 = time.perf_counter()
    deadline = t0 + timeout
    nodes = [obj]
    del obj
    index = {id(nodes[0]): 0}
    succ = []
    complete, reason = True, ""
    is_tracked = _gc.is_tracked
    get = _gc.get_referents
    k = 0
    if is_tracked(nodes[0]):
        while k < len(nodes):
            if not k & 0xFFF and time.perf_counter() > deadline:
                complete, reason = False, f"time limit reached after {len(nodes):,} objects"
                break
            o = nodes[k]
            tp = type(o)
            out = []
            for r in get(o):
                if r is tp and not include_type_edges:
                    continue
                j = index.get(id(r))
                if j is None:
                    if not is_tracked(r):
                        continue
                    if len(nodes) >= max_objects:
                        complete, reason = False, f"object limit ({max_objects:,}) reached"
                        continue
                    j = index[id(r)] = len(nodes)
                    nodes.append(r)
                out.append(j)
            succ.append(out)
            k += 1
        del o
    explored = len(succ)
    # which explored objects reach obj again: backwards from it
    pred = [[] for _ in range(explored)]
    for v in range(explored):
        for w in succ[v]:
            if w < explored:
                pred[w].append(v)
    in_scc = {0} if explored else set()
    queue = deque(in_scc)
    while queue:
        v = queue.popleft()
        for u in pred[v]:
            if u not in in_scc:
                in_scc.add(u)
                queue.append(u)
    members = sorted(in_scc)
    edges = []
    cycles = []
    if explored and (len(members) > 1 or 0 in succ[0]):
        label = Labeller(scan_heap=True)
        for v in members:
            for w in dict.fromkeys(succ[v]):
                if w in in_scc:
                    edges.append((nodes[v], label(nodes[v], nodes[w]), nodes[w]))
        cycles = _cycles_through(nodes, succ, in_scc, max_cycles, label)
    else:
        members = [] if not (explored and 0 in succ[0]) else [0]
    result = Cycles(nodes[0], [nodes[v] for v in members], edges, cycles,
                    complete=complete, reason=reason, examined=len(nodes),
                    elapsed=time.perf_counter() - t0)
    nodes.clear()
    return result


def _cycles_through(nodes, succ, in_scc, limit, label):
    """Shortest cycles through node 0, one per distinct first step."""
    found = []
    seen = set()
    for first in dict.fromkeys(succ[0]):
        if first not in in_scc:
            continue
        if first == 0:
            path = [0]
        else:
            # shortest path first -> ... -> 0 inside the component
            path = _path_to(first, 0, succ, in_scc)
            if path is None:
                continue
            path = [0] + path[:-1]
        key = tuple(path)
        if key in seen:
            continue
        seen.add(key)
        found.append(path)
    found.sort(key=len)
    out = []
    for path in found[:limit]:
        cyc = []
        for j, v in enumerate(path):
            w = path[(j + 1) % len(path)]
            cyc.append((nodes[v], label(nodes[v], nodes[w])))
        out.append(cyc)
    return out


def _path_to(src, dst, succ, allowed):
    parent = {src: None}
    queue = deque([src])
    while queue:
        v = queue.popleft()
        if v == dst:
            path = [v]
            while parent[path[-1]] is not None:
                path.append(parent[path[-1]])
            path.reverse()
            return path
        for w in succ[v]:
            if w in allowed and w not in parent:
                parent[w] = v
                queue.append(w)
    return None
