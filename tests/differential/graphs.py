"""Seeded object graphs for differential testing of cycle collectors.

Design
------
A graph is first described as plain data: a :class:`GraphSpec` is a list of
:class:`NodeSpec` (a node *kind*, a *variant* and its strong out-edges as node
indices) plus which nodes are roots, which are watched by plain weakrefs and
how the collection is run (generation, debug flags, an "aging" collection in
the middle of construction).  Specs are drawn deterministically from
``random.Random(seed)`` by :func:`random_spec`, or written by hand in
:data:`NAMED_CASES`.  :func:`materialize` turns a spec into real interpreter
objects and returns a :class:`Graph` that holds only the roots: everything
else is reachable only through the graph's own references.

Node kinds: instances with ``__dict__`` (optionally with a ``__del__`` that
logs, resurrects itself, raises, peeks at its referents or takes a weakref to
itself), ``__slots__`` instances (with and without ``__weakref__``), instances
with a legacy ``tp_del`` (``_testcapi.with_tp_del``), lists, dicts (node
objects as values and as keys), sets, frozensets, tuples, closures (edges in
cells), bound methods, suspended generators and coroutines (edges in frame
locals, optionally with a ``finally`` that logs; coroutines may also be left
unstarted), frame objects of finished calls, exceptions whose traceback
frames hold the edges, weakrefs with or without callbacks (a strong edge
held by the callback), and leaves (int subclass with ``__del__``).

Identification never depends on ``id()``, hashing order or weakrefs: every
node owns a small GC-tracked :class:`Tag` (run number + label ``"nK"``) kept
where the node itself references it, and :func:`label_of` reads it back
without side effects (no ``__dict__``/``f_locals`` materialisation).  So after
a collection the survivors can be found by scanning ``gc.get_objects()``, and
:func:`check_intact` walks from the roots using each kind's own accessors to
verify that every reachable node still holds exactly its edges.

Finalizers, weakref callbacks and generator ``finally`` blocks record events
("del:n3", "callback:n7", ...) into :data:`STATE`; they never keep garbage
alive except on purpose (resurrection into ``STATE.resurrected``).

Objects created on behalf of a frame node keep their creator's frame alive
through ``f_back``; the builder therefore keeps no node references in its
locals once :func:`materialize` returns.
"""
from __future__ import annotations

import gc
import random
import sys
import types
import weakref
from dataclasses import dataclass, field

try:  # legacy tp_del finalizers only exist through the test C API
    from _testcapi import with_tp_del as _with_tp_del
except (ImportError, AttributeError):  # pragma: no cover - depends on build
    _with_tp_del = None

HAVE_LEGACY = _with_tp_del is not None
LEGACY_SKIP_REASON = "_testcapi.with_tp_del is not available on this interpreter"

TAG_KEY = "\x00cgc_tag"  # key of a dict node's own Tag
ATOM_KEY = "\x00cgc_atom"  # key of a dict node's atom, see _atom()
LEAF_BASE = 1_000_000  # Leaf value = run * LEAF_BASE + node index
MAX_EDGES = 4


# --------------------------------------------------------------------------
# Event log shared by finalizers and callbacks


class _State:
    """Process-wide recorder; reset between graphs by the child harness."""

    def __init__(self):
        self.run = None
        self.log = []  # event strings
        self.resurrected = []  # objects whose __del__ stored them here
        self.late_refs = []  # weakrefs created inside __del__

    def reset(self, run=None):
        self.run = run
        self.log = []
        self.resurrected = []
        self.late_refs = []


STATE = _State()


class Tag:
    """A node's identity: run number and label.  GC-tracked on purpose, so
    that tuples/dicts holding it stay tracked like real containers."""

    __slots__ = ("run", "label")

    def __init__(self, run, label):
        self.run = run
        self.label = label


def _record(event, tag, extra=""):
    if type(tag) is Tag:
        run, label = tag.run, tag.label
    else:
        run, label = None, "?"
    entry = f"{event}:{label}:{extra}" if extra else f"{event}:{label}"
    if run != STATE.run:
        entry = f"stale:{run}:{entry}"
    STATE.log.append(entry)


class NodeDelError(Exception):
    """Raised by the 'raise' finalizer variant."""


class NodeCallbackError(Exception):
    """Raised by the 'raise' weakref callback variant."""


# --------------------------------------------------------------------------
# Node classes


class Node:
    """Plain instance; edges are attributes e0, e1, ..."""

    def __init__(self, tag):
        self.cgc_tag = tag


class SlotNode:
    __slots__ = ("cgc_tag", "e0", "e1", "e2", "e3", "__weakref__")

    def __init__(self, tag):
        self.cgc_tag = tag


class SlotNodeNoWeak:
    __slots__ = ("cgc_tag", "e0", "e1", "e2", "e3")

    def __init__(self, tag):
        self.cgc_tag = tag


def _instance_edges(obj):
    """An instance's edges e0, e1, ... up to the first one missing."""
    edges = []
    for k in range(MAX_EDGES):
        try:
            edges.append(getattr(obj, f"e{k}"))
        except AttributeError:
            break
    return edges


def _del_log(self):
    _record("del", getattr(self, "cgc_tag", None))


def _del_resurrect(self):
    _record("resurrect", getattr(self, "cgc_tag", None))
    STATE.resurrected.append(self)


def _del_raise(self):
    tag = getattr(self, "cgc_tag", None)
    _record("raise", tag)
    raise NodeDelError(getattr(tag, "label", "?"))


def _del_peek(self):
    """Finalizers run before anything is cleared: referents must be intact."""
    seen = ",".join(_short(label_of(x)) for x in _instance_edges(self))
    _record("peek", getattr(self, "cgc_tag", None), f"[{seen}]")


def _late_callback(tag):
    def late(wr):
        _record("late-callback", tag)

    return late


def _del_weakself(self):
    """A weakref created during finalization: its callback runs when the
    object is really freed (or never, if it is resurrected)."""
    tag = getattr(self, "cgc_tag", None)
    _record("weakself", tag)
    STATE.late_refs.append(weakref.ref(self, _late_callback(tag)))


FINALIZERS = {
    "log": _del_log,
    "resurrect": _del_resurrect,
    "raise": _del_raise,
    "peek": _del_peek,
    "weakself": _del_weakself,
}


def _with_finalizers(base, variants):
    classes = {"": base}
    for name in variants:
        ns = {"__del__": FINALIZERS[name], "__module__": __name__}
        if "__slots__" in base.__dict__:
            ns["__slots__"] = ()
        classes[name] = type(f"{base.__name__}_{name}", (base,), ns)
    return classes


NODE_CLASSES = _with_finalizers(Node, FINALIZERS)
SLOT_CLASSES = _with_finalizers(SlotNode, FINALIZERS)
SLOT_NW_CLASSES = _with_finalizers(SlotNodeNoWeak, ["log"])

if HAVE_LEGACY:

    class LegacyNode(Node):
        """Instance with a legacy tp_del: cycles through it are uncollectable."""

        def __tp_del__(self):
            _record("tp_del", getattr(self, "cgc_tag", None))

    LegacyNode = _with_tp_del(LegacyNode)
else:  # pragma: no cover
    LegacyNode = None


class MethodHolder:
    """The __self__ of a bound-method node; the method's edges live here."""

    def __init__(self, tag, mtag):
        self.cgc_tag = tag
        self.cgc_mtag = mtag

    def method(self):
        return self


class NodeError(Exception):
    """An exception node; its traceback's frames hold its edges."""

    def __init__(self, tag):
        self.cgc_tag = tag


class LabelledRef(weakref.ref):
    """A weakref node: weak edge to its referent, strong edge (if any) held
    by its callback, see :class:`WeakCallback`."""

    __slots__ = ("cgc_tag",)


class Leaf(int):
    """A leaf with a finalizer; its value encodes run and index."""

    __slots__ = ()

    def __del__(self):
        run, index = divmod(int(self), LEAF_BASE)
        _record("leaf-del", Tag(run, f"n{index}"))


# Factories for the nodes whose edges are fixed at creation.  Their frames
# keep the edges in the locals r0..r3.


def _frame_node(cgc_tag, r0, r1, r2, r3):
    return sys._getframe()


def _gen_node(cgc_tag, r0, r1, r2, r3):
    while True:
        yield


def _gen_finally(cgc_tag, r0, r1, r2, r3):
    try:
        while True:
            yield
    finally:
        _record("gen-finally", cgc_tag)


@types.coroutine
def _suspend():
    while True:
        yield


async def _coro_node(cgc_tag, r0, r1, r2, r3):
    await _suspend()


async def _coro_finally(cgc_tag, r0, r1, r2, r3):
    try:
        await _suspend()
    finally:
        _record("coro-finally", cgc_tag)


def _raise_node(cgc_tag, r0, r1, r2, r3):
    raise NodeError(cgc_tag)


def _catch_node(cgc_tag, r0, r1, r2, r3):
    try:
        _raise_node(cgc_tag, r0, r1, r2, r3)
    except NodeError as exc:
        return exc


def _closure_node(cgc_tag):
    c0 = c1 = c2 = c3 = None

    def closure():
        return c0, c1, c2, c3

    closure.cgc_tag = cgc_tag
    return closure


class WeakCallback:
    """A weakref node's callback; it also holds the node's strong edge.

    The edge must not live in the weakref object itself: CPython 3.11/3.12
    crash when a weakref subclass's own slot holds the last reference to its
    referent while another weakref with a callback exists (fixed in 3.13).
    """

    __slots__ = ("tag", "raising", "keep")

    def __init__(self, tag, raising):
        self.tag = tag
        self.raising = raising
        self.keep = None

    def __call__(self, wr):
        # A collection calls the callback with it still attached to the
        # weakref (CPython's handle_weakrefs keeps it there); an object
        # freed by its count detaches it first (PyObject_ClearWeakRefs), so
        # what only the callback held dies with it: "by-count" says which.
        detail = [] if wr() is None else ["referent-alive"]
        if wr.__callback__ is None:
            detail.append("by-count")
        _record("callback", self.tag, ",".join(detail))
        if self.raising:
            raise NodeCallbackError(self.tag.label)


# --------------------------------------------------------------------------
# Specs


@dataclass
class KindInfo:
    mutable: bool  # edges added after creation (else passed at creation)
    weakrefable: bool
    hashable: bool  # may be a set member / dict key
    variants: dict  # variant -> weight for random specs
    weight: int  # weight for random specs
    max_edges: int = MAX_EDGES


_DEL_VARIANTS = {"": 50, "log": 20, "resurrect": 8, "raise": 7, "peek": 10, "weakself": 5}

KINDS = {
    "obj": KindInfo(True, True, True, _DEL_VARIANTS, 14),
    "slots": KindInfo(True, True, True, _DEL_VARIANTS, 7),
    "slots_nw": KindInfo(True, False, True, {"": 2, "log": 1}, 3),
    "legacy": KindInfo(True, True, True, {"": 1}, 1),
    "list": KindInfo(True, False, False, {"": 1}, 10),
    "dict": KindInfo(True, False, False, {"": 1}, 8),
    "set": KindInfo(True, True, False, {"": 1}, 4),
    "closure": KindInfo(True, True, True, {"": 1}, 5),
    "bmethod": KindInfo(True, True, True, {"": 1}, 4),
    "leaf": KindInfo(True, False, True, {"": 1}, 3, max_edges=0),
    "weakref": KindInfo(True, False, False, {"cb": 3, "nocb": 1, "raise": 1}, 6, max_edges=1),
    "tuple": KindInfo(False, False, False, {"": 1}, 6),
    "frozenset": KindInfo(False, True, True, {"": 1}, 3),
    "frame": KindInfo(False, False, True, {"": 1}, 4),
    "gen": KindInfo(False, True, True, {"": 1, "finally": 1}, 5),
    "coro": KindInfo(False, True, True, {"": 2, "finally": 2, "unstarted": 1}, 4),
    "exc": KindInfo(False, True, True, {"": 1}, 4),
}

DEBUG_MODES = ("", "saveall", "collectable", "stats", "leak")


@dataclass
class NodeSpec:
    kind: str
    variant: str = ""
    edges: tuple = ()  # strong out-edges, node indices
    weak: int | None = None  # weakref nodes: index of the referent
    keyed: tuple = ()  # dict nodes: edge positions stored as keys
    atom: bool = False  # list/dict nodes: also hold an untrackable container


@dataclass
class GraphSpec:
    nodes: list
    roots: list = field(default_factory=list)
    watch: list = field(default_factory=list)  # observed through plain weakrefs
    generation: int = 2
    debug: str = ""
    age_split: int | None = None  # age the objects built so far ...
    age_mode: str = "collect"  # ... by a full collection, or by gc.freeze()
    requires_legacy: bool = False

    def summary(self):
        kinds = {}
        for node in self.nodes:
            key = f"{node.kind}:{node.variant}" if node.variant else node.kind
            kinds[key] = kinds.get(key, 0) + 1
        return {
            "nodes": len(self.nodes),
            "edges": sum(len(n.edges) for n in self.nodes),
            "roots": len(self.roots),
            "kinds": dict(sorted(kinds.items())),
            "generation": self.generation,
            "debug": self.debug,
            "age_split": self.age_split,
            "age_mode": self.age_mode,
        }


def creation_order(spec):
    """Mutable nodes first, then fixed-edge nodes, then weakrefs (which need
    their referent to exist); index order within each group."""

    def group(i):
        kind = spec.nodes[i].kind
        if kind == "weakref":
            return 2
        return 0 if KINDS[kind].mutable else 1

    return sorted(range(len(spec.nodes)), key=lambda i: (group(i), i))


def validate(spec):
    """Raise ValueError if a hand-written spec cannot be materialized."""
    rank = {i: r for r, i in enumerate(creation_order(spec))}
    for i, node in enumerate(spec.nodes):
        info = KINDS[node.kind]
        if len(node.edges) > info.max_edges:
            raise ValueError(f"n{i}: too many edges for {node.kind}")
        for j in node.edges:
            target = KINDS[spec.nodes[j].kind]
            if not info.mutable and rank[j] >= rank[i]:
                raise ValueError(f"n{i}: {node.kind} edge to n{j} created later")
            if node.kind in ("set", "frozenset") and not target.hashable:
                raise ValueError(f"n{i}: unhashable member n{j}")
        if node.kind in ("set", "frozenset") and len(set(node.edges)) != len(node.edges):
            raise ValueError(f"n{i}: duplicate set member")
        keys = [node.edges[k] for k in node.keyed]
        if len(set(keys)) != len(keys):
            raise ValueError(f"n{i}: duplicate dict key")
        if not all(KINDS[spec.nodes[j].kind].hashable for j in keys):
            raise ValueError(f"n{i}: unhashable dict key")
        if node.kind == "weakref":
            if node.weak is None or not KINDS[spec.nodes[node.weak].kind].weakrefable:
                raise ValueError(f"n{i}: weakref needs a weakrefable referent")
            if node.variant == "nocb" and node.edges:
                raise ValueError(f"n{i}: a weakref without callback has no strong edge")
        if node.atom and node.kind not in ("list", "dict"):
            raise ValueError(f"n{i}: only lists and dicts hold atoms")
        if node.kind == "legacy" and not spec.requires_legacy:
            raise ValueError("legacy nodes need requires_legacy=True")
    return spec


def random_spec(seed, legacy=HAVE_LEGACY):
    """The graph for ``seed``: depends on nothing but the seed (and whether
    legacy tp_del nodes can be built on this interpreter)."""
    rng = random.Random(seed)
    n = rng.randint(1, 6) if rng.random() < 0.35 else rng.randint(7, 30)
    kinds = [k for k in KINDS if legacy or k != "legacy"]
    weights = [KINDS[k].weight for k in kinds]
    nodes = []
    for _ in range(n):
        kind = rng.choices(kinds, weights)[0]
        variants = KINDS[kind].variants
        variant = rng.choices(list(variants), list(variants.values()))[0]
        nodes.append(NodeSpec(kind, variant))
    weakrefable = [i for i, nd in enumerate(nodes) if KINDS[nd.kind].weakrefable]
    for node in nodes:  # a weakref needs a referent
        if node.kind == "weakref":
            if weakrefable:
                node.weak = rng.choice(weakrefable)
            else:
                node.kind, node.variant = "obj", ""
    spec = GraphSpec(nodes)
    rank = {i: r for r, i in enumerate(creation_order(spec))}
    # Nodes fall into a few clusters, densely linked inside and sparsely
    # across, so that one graph has both live and garbage components.
    clusters = [rng.randrange(rng.randint(1, 4)) for _ in range(n)]
    for i, node in enumerate(nodes):
        info = KINDS[node.kind]
        degree = min(info.max_edges, rng.choices(range(5), (2, 5, 4, 2, 1))[0])
        if node.variant == "nocb":
            degree = 0
        candidates = [
            j
            for j in range(n)
            if (info.mutable or rank[j] < rank[i])
            and (node.kind not in ("set", "frozenset") or KINDS[nodes[j].kind].hashable)
        ]
        edges = []
        for _ in range(degree):
            local = [j for j in candidates if clusters[j] == clusters[i]]
            pool = local if local and rng.random() < 0.85 else candidates
            if not pool:
                break
            j = rng.choice(pool)
            if node.kind in ("set", "frozenset"):
                candidates.remove(j)
            edges.append(j)
        node.edges = tuple(edges)
        if node.kind == "dict":  # some hashable targets become keys (once each)
            keyed = {}
            for k, j in enumerate(edges):
                if j not in keyed and KINDS[nodes[j].kind].hashable and rng.random() < 0.3:
                    keyed[j] = k
            node.keyed = tuple(sorted(keyed.values()))
    p_root = rng.choice((0.0, 0.02, 0.05, 0.1, 0.3))
    rooted = {c for c in set(clusters) if rng.random() < 0.4}
    roots = {rng.choice([i for i in range(n) if clusters[i] == c]) for c in sorted(rooted)}
    roots.update(
        i
        for i, nd in enumerate(nodes)
        if rng.random() < (0.5 if nd.kind == "weakref" else p_root)
    )
    spec.roots = sorted(roots)
    spec.watch = [i for i in weakrefable if nodes[i].kind != "weakref" and rng.random() < 0.4]
    spec.generation = rng.choices((2, 1, 0), (8, 1, 1))[0]
    spec.debug = rng.choices(DEBUG_MODES, (88, 5, 3, 2, 2))[0]
    if n >= 2 and rng.random() < 0.15:
        spec.age_split = rng.randint(1, n - 1)
        spec.age_mode = rng.choices(("collect", "freeze"), (3, 1))[0]
    for node in nodes:
        if node.kind in ("list", "dict"):
            node.atom = rng.random() < 0.3
    spec.requires_legacy = any(nd.kind == "legacy" for nd in nodes)
    return validate(spec)


def _n(kind, variant="", edges=(), weak=None, keyed=(), atom=False):
    return NodeSpec(kind, variant, tuple(edges), weak, tuple(keyed), atom)


# Hand-written graphs: name -> spec.  Each exercises one documented behaviour.
NAMED_CASES = {
    "self_cycle_list": GraphSpec([_n("list", edges=[0])]),
    "two_instances": GraphSpec([_n("obj", edges=[1]), _n("obj", edges=[0])], watch=[0, 1]),
    "del_in_cycle": GraphSpec([_n("obj", "log", [1]), _n("obj", "", [0])]),
    "del_peeks_at_cycle": GraphSpec(
        [_n("obj", "peek", [1, 2]), _n("list", edges=[0]), _n("slots", "peek", [0, 1])]
    ),
    "raising_del": GraphSpec([_n("obj", "raise", [1]), _n("slots", "log", [0])]),
    "resurrection": GraphSpec(
        [_n("obj", "resurrect", [1]), _n("obj", "log", [0, 2]), _n("dict", edges=[1])],
        watch=[0, 1],
    ),
    "resurrection_keeps_referents": GraphSpec(
        [_n("slots", "resurrect", [1]), _n("list", edges=[2]), _n("obj", "log", [0])]
    ),
    "weakref_callback_outside": GraphSpec(
        [_n("obj", edges=[1]), _n("obj", edges=[0]), _n("weakref", "cb", weak=0)],
        roots=[2],
    ),
    "weakref_inside_garbage": GraphSpec(
        [_n("obj", edges=[1, 2]), _n("obj", edges=[0]), _n("weakref", "cb", weak=1)],
    ),
    "weakref_to_resurrected": GraphSpec(
        [_n("obj", "resurrect", [0]), _n("weakref", "cb", weak=0)], roots=[1], watch=[0]
    ),
    "weakref_callback_raises": GraphSpec(
        [_n("set", edges=[1]), _n("obj", edges=[0]), _n("weakref", "raise", weak=0)],
        roots=[2],
    ),
    "weakref_created_in_del": GraphSpec([_n("obj", "weakself", [0])]),
    "reachable_is_intact": GraphSpec(
        [
            _n("list", edges=[1, 2]),
            _n("dict", edges=[0, 3], keyed=[1]),
            _n("closure", edges=[0, 4]),
            _n("obj", "log", [0]),
            _n("tuple", edges=[0, 1]),
        ],
        roots=[0],
    ),
    "generator_cycle": GraphSpec([_n("list", edges=[1]), _n("gen", "finally", [0])]),
    "coroutine_cycle": GraphSpec([_n("dict", edges=[1]), _n("coro", "finally", [0])]),
    "coroutine_never_awaited": GraphSpec([_n("list", edges=[1]), _n("coro", "unstarted", [0])]),
    "frame_cycle": GraphSpec([_n("dict", edges=[1]), _n("frame", edges=[0])]),
    "exception_traceback_cycle": GraphSpec([_n("obj", "log", [1]), _n("exc", edges=[0])]),
    "closure_self_reference": GraphSpec([_n("closure", edges=[0])]),
    "bound_method_cycle": GraphSpec([_n("bmethod", edges=[0])]),
    "set_and_frozenset": GraphSpec(
        [_n("set", edges=[1, 2]), _n("obj", edges=[0]), _n("frozenset", edges=[1, 3]), _n("leaf")]
    ),
    "leaf_finalizer_in_garbage": GraphSpec([_n("list", edges=[0, 1]), _n("leaf")]),
    "young_collection_spares_old": GraphSpec(
        [
            _n("list", edges=[2]),  # old root -> young obj
            _n("list", edges=[1]),  # old garbage: not examined by collect(0)
            _n("obj", "log", [2]),  # young, kept by the old root
            _n("obj", "log", [3]),  # young garbage
        ],
        roots=[0],
        generation=0,
        age_split=2,
    ),
    "debug_saveall": GraphSpec(
        [_n("obj", "log", [1]), _n("list", edges=[0])], debug="saveall"
    ),
    "debug_collectable": GraphSpec([_n("obj", edges=[1]), _n("list", edges=[0])], debug="collectable"),
    "freeze_spares_frozen": GraphSpec(
        [
            _n("list", edges=[0, 2]),  # frozen garbage: never examined
            _n("obj", "log", [1]),  # frozen garbage with a finalizer
            _n("obj", "log", [0]),  # young, kept by frozen garbage
            _n("dict", edges=[3]),  # young garbage
        ],
        age_split=2,
        age_mode="freeze",
    ),
    "untrack_atomic_containers": GraphSpec(
        [_n("list", edges=[1], atom=True), _n("dict", edges=[0], atom=True)], roots=[0]
    ),
    "legacy_tp_del": GraphSpec(
        [_n("legacy", edges=[1]), _n("obj", "log", [0, 2]), _n("list", edges=[1])],
        watch=[0, 1],
        requires_legacy=True,
    ),
}
for _spec in NAMED_CASES.values():
    validate(_spec)
del _spec


# --------------------------------------------------------------------------
# Materialization


class Graph:
    """What the harness keeps of a materialized graph: the roots (in
    ``spec.roots`` order) and plain weakrefs to the watched nodes."""

    __slots__ = ("spec", "run", "roots", "watch")

    def __init__(self, spec, run):
        self.spec = spec
        self.run = run
        self.roots = []
        self.watch = {}


def _atom():
    """A fresh tuple of atoms: tracked now, untracked by the collector's next
    look at it (CPython untracks such tuples while collecting)."""
    return tuple(["\x00atom", 0])


def _hollow_dict():
    """A dict that held a container and now holds atoms only: still tracked,
    until a full collection untracks it (3.11/3.12 untrack_dicts)."""
    d = {"held": []}
    del d["held"]
    d["atom"] = 0
    return d


def is_atom(obj):
    return (type(obj) is tuple and len(obj) == 2 and obj[0] == "\x00atom") or (
        type(obj) is dict and "atom" in obj and len(obj) == 1
    )


def _create(node, index, run, objs):
    """Create node ``index``; its fixed edges must already exist in objs."""
    tag = Tag(run, f"n{index}")
    kind, variant = node.kind, node.variant
    if kind == "obj":
        return NODE_CLASSES[variant](tag)
    if kind == "slots":
        return SLOT_CLASSES[variant](tag)
    if kind == "slots_nw":
        return SLOT_NW_CLASSES[variant](tag)
    if kind == "legacy":
        return LegacyNode(tag)
    if kind == "list":
        return [tag, _atom()] if node.atom else [tag]
    if kind == "dict":
        return {TAG_KEY: tag, ATOM_KEY: _hollow_dict()} if node.atom else {TAG_KEY: tag}
    if kind == "set":
        return {tag}
    if kind == "closure":
        return _closure_node(tag)
    if kind == "bmethod":
        return MethodHolder(Tag(run, f"n{index}.self"), tag).method
    if kind == "leaf":
        return Leaf(run * LEAF_BASE + index)
    if kind == "weakref":
        callback = None if variant == "nocb" else WeakCallback(tag, variant == "raise")
        ref = LabelledRef(objs[node.weak], callback)
        ref.cgc_tag = tag
        return ref
    refs = [objs[j] for j in node.edges]
    if kind == "tuple":
        return (tag, *refs)
    if kind == "frozenset":
        return frozenset((tag, *refs))
    refs += [None] * (MAX_EDGES - len(refs))
    if kind == "frame":
        return _frame_node(tag, *refs)
    if kind == "exc":
        return _catch_node(tag, *refs)
    if kind == "gen":
        gen = (_gen_finally if variant == "finally" else _gen_node)(tag, *refs)
        gen.__name__ = gen.__qualname__ = f"cgc.{run}.n{index}"
        next(gen)
        return gen
    if kind == "coro":
        coro = (_coro_finally if variant == "finally" else _coro_node)(tag, *refs)
        coro.__name__ = coro.__qualname__ = f"cgc.{run}.n{index}"
        if variant != "unstarted":
            coro.send(None)
        return coro
    raise ValueError(f"unknown kind {kind!r}")


def _link(obj, node, objs):
    """Add the edges of a mutable node."""
    kind = node.kind
    for k, j in enumerate(node.edges):
        target = objs[j]
        if kind in ("obj", "slots", "slots_nw", "legacy"):
            setattr(obj, f"e{k}", target)
        elif kind == "list":
            obj.append(target)
        elif kind == "dict":
            if k in node.keyed:
                obj[target] = k
            else:
                obj[f"e{k}"] = target
        elif kind == "set":
            obj.add(target)
        elif kind == "closure":
            obj.__closure__[k].cell_contents = target
        elif kind == "bmethod":
            setattr(obj.__self__, f"e{k}", target)
        elif kind == "weakref":
            obj.__callback__.keep = target
        else:  # pragma: no cover
            raise ValueError(f"{kind} is not mutable")


def materialize(spec, run, age=None):
    """Build the objects of ``spec`` and return a :class:`Graph` holding only
    the roots.  ``age()``, if given, is called after ``spec.age_split``
    creations (to move the objects built so far to an older generation)."""
    graph = Graph(spec, run)
    objs = [None] * len(spec.nodes)
    for rank, index in enumerate(creation_order(spec)):
        if age is not None and rank == spec.age_split:
            age()
        objs[index] = _create(spec.nodes[index], index, run, objs)
    for index, node in enumerate(spec.nodes):
        if node.edges and KINDS[node.kind].mutable:
            _link(objs[index], node, objs)
    graph.roots = [objs[i] for i in spec.roots]
    graph.watch = {f"n{i}": weakref.ref(objs[i]) for i in spec.watch}
    # Frames created above may keep this frame alive: leave nothing in it.
    objs.clear()
    return graph


# --------------------------------------------------------------------------
# Observation (side-effect free)


def _tag_attr(obj):
    return getattr(obj, "cgc_tag", None)


def _closure_tag(obj):
    return getattr(obj, "cgc_tag", None) if obj.__code__ is _CLOSURE_CODE else None


def _first_item(obj):
    return obj[0] if obj else None


def _tag_member(obj):
    for item in obj:
        if type(item) is Tag:
            return item
    return None


def _method_tag(obj):
    return getattr(obj.__self__, "cgc_mtag", None) if type(obj.__self__) is MethodHolder else None


def _gen_label(obj):
    parts = obj.__qualname__.split(".")
    if len(parts) == 3 and parts[0] == "cgc":
        return Tag(int(parts[1]), parts[2])
    return None


def _leaf_label(obj):
    run, index = divmod(int(obj), LEAF_BASE)
    return Tag(run, f"n{index}")


_CLOSURE_CODE = _closure_node(None).__code__
_FRAME_SUFFIX = {
    _frame_node.__code__: "",
    _catch_node.__code__: ".catch",
    _raise_node.__code__: ".raise",
}


def _frame_label(obj):
    suffix = _FRAME_SUFFIX.get(obj.f_code)
    if suffix is None:
        return None
    for ref in gc.get_referents(obj):
        if type(ref) is Tag:
            return Tag(ref.run, ref.label + suffix)
    return None


IDENTIFY = {
    list: _first_item,
    tuple: _first_item,
    dict: lambda obj: obj.get(TAG_KEY),
    set: _tag_member,
    frozenset: _tag_member,
    types.FunctionType: _closure_tag,
    types.MethodType: _method_tag,
    types.GeneratorType: _gen_label,
    types.CoroutineType: _gen_label,
    types.FrameType: _frame_label,
    Leaf: _leaf_label,
    MethodHolder: _tag_attr,
    NodeError: _tag_attr,
    LabelledRef: _tag_attr,
}
for _cls in [*NODE_CLASSES.values(), *SLOT_CLASSES.values(), *SLOT_NW_CLASSES.values()]:
    IDENTIFY[_cls] = _tag_attr
if HAVE_LEGACY:
    IDENTIFY[LegacyNode] = _tag_attr
del _cls



def label_of(obj):
    """``(run, label)`` of a node (or of a labelled helper such as a method's
    holder "nK.self" or an exception's frames "nK.catch"/"nK.raise"), else
    None.  Reads nothing that could allocate state on the object."""
    ident = IDENTIFY.get(type(obj))
    if ident is None:
        return None
    try:
        tag = ident(obj)
    except Exception:
        return None
    if type(tag) is Tag:
        return (tag.run, tag.label)
    return None


def _short(lab):
    return "?" if lab is None else lab[1]


def _labelled_referents(obj, exclude=None):
    return [
        ref
        for ref in gc.get_referents(obj)
        if ref is not exclude and type(ref) is not Tag and label_of(ref) is not None
    ]


MISSING = object()


def out_edges(obj, node):
    """The objects that node ``obj`` (of spec ``node``) references through
    its edges, read with the kind's own accessors (MISSING where cleared)."""
    kind = node.kind
    if kind in ("obj", "slots", "slots_nw", "legacy"):
        return [getattr(obj, f"e{k}", MISSING) for k in range(len(node.edges))]
    if kind == "list":
        return [item for item in obj[1:] if not is_atom(item)]
    if kind == "tuple":
        return list(obj[1:])
    if kind == "dict":
        edges = []
        for key, value in obj.items():
            if type(key) is str:
                if key not in (TAG_KEY, ATOM_KEY):
                    edges.append(value)
            else:
                edges.append(key)
        return edges
    if kind in ("set", "frozenset"):
        return [item for item in obj if type(item) is not Tag]
    if kind == "closure":
        edges = []
        for cell in obj.__closure__[: len(node.edges)]:
            try:
                edges.append(cell.cell_contents)
            except ValueError:
                edges.append(MISSING)
        return edges
    if kind == "bmethod":
        return [getattr(obj.__self__, f"e{k}", MISSING) for k in range(len(node.edges))]
    if kind == "leaf":
        return []
    if kind == "weakref":
        callback = obj.__callback__
        return [] if callback is None or callback.keep is None else [callback.keep]
    if kind == "frame":
        return _labelled_referents(obj, exclude=obj.f_back)
    if kind in ("gen", "coro"):
        return _labelled_referents(obj)
    if kind == "exc":
        frame = obj.__traceback__.tb_next.tb_frame
        return _labelled_referents(frame, exclude=frame.f_back)
    raise ValueError(kind)  # pragma: no cover


def _atom_of(obj, node):
    if node.kind == "list":
        return next((item for item in obj if is_atom(item)), None)
    return obj.get(ATOM_KEY)


def check_intact(graph):
    """Walk from the roots along the spec's edges.  Returns sorted lists:
    ``intact_problems``, every reachable node whose identity or edges differ
    from the spec; ``weakrefs``, the state of every reachable weakref node
    (``"nK->nJ"`` / ``"nK->dead"``); ``atoms_tracked``, whether the atom of
    every reachable list/dict node is still tracked (``"nK:0"``/``"nK:1"``).
    """
    spec, run = graph.spec, graph.run
    problems, weak, atoms = [], [], []
    seen = set()
    stack = list(zip(spec.roots, graph.roots))
    while stack:
        index, obj = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        node = spec.nodes[index]
        if label_of(obj) != (run, f"n{index}"):
            problems.append(f"n{index}: reached {type(obj).__name__} labelled {label_of(obj)}")
            continue
        try:
            edges = out_edges(obj, node)
        except Exception as exc:  # a cleared/mangled object
            problems.append(f"n{index}: cannot read edges ({type(exc).__name__})")
            continue
        got = sorted(_short(label_of(x)) if x is not MISSING else "<missing>" for x in edges)
        want = sorted(f"n{j}" for j in node.edges)
        if node.kind == "weakref" and obj.__callback__ is None:
            want = []  # a weakref drops its callback (and edge) once it was called
        if got != want:
            problems.append(f"n{index}: edges {got} != expected {want}")
            continue
        by_label = {_short(label_of(x)): x for x in edges}
        stack.extend((j, by_label[label]) for label in want for j in [int(label[1:])])
        if node.kind == "weakref":
            target = obj()
            weak.append(f"n{index}->" + ("dead" if target is None else _short(label_of(target))))
            target = None
        if node.atom:
            atom = _atom_of(obj, node)
            atoms.append(f"n{index}:" + ("missing" if atom is None else str(int(gc.is_tracked(atom)))))
            atom = None
    return {
        "intact_problems": sorted(problems),
        "weakrefs": sorted(weak),
        "atoms_tracked": sorted(atoms),
    }
