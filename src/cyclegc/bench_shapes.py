"""Full and young collections on many heap shapes: cyclegc vs the built-in.

    python benchmarks/bench_shapes.py                         # 100k, 1M and 5M objects
    python benchmarks/bench_shapes.py --sizes 1M --shapes random_graph,doc_tree
    python benchmarks/bench_shapes.py --json out.json --markdown out.md
    python -m cyclegc bench --suite quick --workloads shapes  # as part of the suite

Each shape is built with automatic collection ON (the built-in collector runs
while the heap grows, as in a real program, so the generation lists end up in
the order a real program leaves them), then automatic collection is switched
off and, in this one process, `cyclegc.collect()` and the built-in
`gc.collect()` are timed ALTERNATELY, the order swapped on every repeat.  Per
shape and size the table gives:

- the floor: ns per tracked object of a read-only traversal of the heap
  (one tp_traverse per object, each referent's GC header read, nothing
  written; `_core._traverse_probe`) with the objects taken in memory
  (address) order and in a random order.  A collection that follows
  pointers one at a time cannot beat the random-order floor on a heap whose
  references go anywhere; the memory-order floor is what the same reads
  cost when the hardware prefetcher can help;
- ns per tracked object of a full collection, cyclegc and built-in, and the
  median of the paired ratios cyclegc / built-in (< 1: cyclegc is faster)
  with the range over repeats;
- at --ablation-sizes (default 1M), cyclegc with one part switched off,
  the third collector of the alternation (column "off"): with --ablate
  prefetch (the default) its prefetch rings (`_core._set_prefetch(0, 0)`:
  the plain depth-first walk), what the prefetching itself gives; with
  --ablate split the split's walkers (`_core._set_split_walkers(False)`:
  one walk of the generation list after marking); with --ablate marking
  marking itself (`_core._set_marking(False)`: trial deletion over the
  whole heap, which leaves the survivors in the built-in's order);
- young collections (at --young-heap only): collect(0) right after
  --young-new new objects of the shape (linked into the old heap, all
  surviving) and after threshold0 new objects (the default automatic young
  collection), alternated the same way.

Times are wall-clock (time.perf_counter); the CPU time of the collecting
thread (time.thread_time) is recorded too, and its ratios, which leave out
the preemptions of a shared machine, are in the JSON.  The shapes are ours:
a figure holds for these heaps, not for every program.
"""
from __future__ import annotations

import argparse
import ast
import gc as builtin_gc
import json
import os
import platform
import random
import statistics
import sys
import sysconfig
import time

import cyclegc

from .bench import fmt_size, parse_size

try:
    from ._core import _cyclegc as _core
except ImportError:      # pragma: no cover - the package refuses to import then
    _core = None

COLLECTORS = ("cyclegc", "builtin")


# --------------------------------------------------------------------------
# Shapes.  Each builder makes about `n` tracked objects and returns
# (root, count, refs): root keeps them alive; refs is a list of objects of the
# shape that new (young) objects may point to.  Each grower makes about `k`
# more, pointing into `refs`, and returns a list keeping them alive.
# --------------------------------------------------------------------------

class Node:
    def __init__(self, ref=None):
        self.ref = ref


class Element:
    def __init__(self, tag, parent):
        self.tag = tag
        self.parent = parent
        self.children = []
        self.attrib = {"id": tag, "class": "c"}


class Record:
    def __init__(self, i, ref):
        self.id = i
        self.name = "r%d" % (i & 1023)
        self.ref = ref


class Slotted:
    __slots__ = ("id", "name", "ref", "owner")

    def __init__(self, i, ref, owner):
        self.id = i
        self.name = "s"
        self.ref = ref
        self.owner = owner


class Pair:
    def __init__(self):
        self.other = None
        self.value = 1


class Item:
    def __init__(self, i):
        self.i = i
        self.label = "x"


def _rand_graph(n, rng):
    nodes = [Node() for _ in range(n)]
    for nd in nodes:
        nd.ref = nodes[rng.randrange(n)]
    return nodes, n, nodes


def _grow_graph(k, rng, refs):
    return [Node(refs[rng.randrange(len(refs))]) for _ in range(k)]


def _doc_tree(n, rng):
    # document order, as a parser makes it: each element is a child of one
    # of the open elements on the path from the root (2 tracked objects per
    # element: the element and its children list; the attribute dict holds
    # only strings and is not tracked)
    root = Element("root", None)
    path = [root]
    elements = [root]
    for i in range(n // 2):
        while len(path) > 1 and (len(path) > 30 or rng.random() < 0.3):
            path.pop()
        parent = path[-1]
        e = Element("e%d" % (i & 63), parent)
        parent.children.append(e)
        elements.append(e)
        path.append(e)
    return root, 2 * len(elements), elements


def _grow_tree(k, rng, refs):
    out = []
    for i in range(k // 2):
        parent = refs[rng.randrange(len(refs))]
        out.append(Element("y", parent))
    return out


def _dict_records(n, rng):
    records = {}
    keys = []
    for i in range(n):
        r = Record(i, None)
        records["k%d" % i] = r
        keys.append(r)
    for r in keys:
        r.ref = keys[rng.randrange(n)]
    return records, n, keys


def _grow_records(k, rng, refs):
    return [Record(i, refs[rng.randrange(len(refs))]) for i in range(k)]


def _stdlib_files():
    lib = sysconfig.get_paths()["stdlib"]
    out = []
    for dirpath, dirnames, filenames in os.walk(lib):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in ("site-packages", "test", "tests", "idlelib",
                                          "lib2to3", "__pycache__"))
        out.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py"))
    return out


_SOURCES: list = []       # (path, source) of the files that parsed, in order
_FILES: list = []
_NEXT_FILE = [0]


def _parsed(i):
    """The AST of the i-th (cyclically) standard-library file that parses;
    files are read and tried on demand."""
    if not _FILES:
        _FILES.extend(_stdlib_files())
    while len(_SOURCES) <= i and _NEXT_FILE[0] < len(_FILES):
        path = _FILES[_NEXT_FILE[0]]
        _NEXT_FILE[0] += 1
        try:
            with open(path, "rb") as f:
                src = f.read()
            tree = ast.parse(src, path)
        except (SyntaxError, ValueError, OSError):
            continue
        _SOURCES.append((path, src))
        if len(_SOURCES) > i:
            return tree
    path, src = _SOURCES[i % len(_SOURCES)]
    return ast.parse(src, path)


def _ast_count(tree):
    n = 0
    for node in ast.walk(tree):
        n += 1
        for field in node._fields:
            if isinstance(getattr(node, field, None), list):
                n += 1
    return n


def _stdlib_ast(n, rng):
    trees = []
    count = 0
    while count < n:
        tree = _parsed(len(trees))
        trees.append(tree)
        count += _ast_count(tree)
    return trees, count, trees


def _grow_ast(k, rng, refs):
    out = []
    count = 0
    while count < k:
        tree = _parsed(rng.randrange(max(len(_SOURCES), 1)))
        out.append(tree)
        count += _ast_count(tree)
    return out


def _chain(n, rng):
    head = None
    for _ in range(n):
        head = Node(head)
    return [head], n, [head]


def _grow_chain(k, rng, refs):
    head = refs[0]
    for _ in range(k):
        head = Node(head)
    return [head]


def _small_cycles(n, rng):
    out = []
    for _ in range(n // 2):
        a, b = Pair(), Pair()
        a.other, b.other = b, a
        out.append(a)
    return out, 2 * len(out), out


def _grow_cycles(k, rng, refs):
    out = []
    for _ in range(k // 2):
        a, b = Pair(), Pair()
        a.other, b.other = b, a
        a.value = refs[rng.randrange(len(refs))]
        out.append(a)
    return out


def _wide_list(n, rng):
    items = [Item(i) for i in range(n)]
    return items, n, items


def _grow_items(k, rng, refs):
    out = []
    for i in range(k):
        it = Item(i)
        it.label = refs[rng.randrange(len(refs))]
        out.append(it)
    return out


def _big_dict(n, rng):
    d = {"key%d" % i: Item(i) for i in range(n)}
    return d, n, list(d.values())


def _slotted(n, rng):
    recs = []
    owner = None
    for i in range(n):
        if i % 16 == 0:
            owner = recs[rng.randrange(len(recs))] if recs else None
        recs.append(Slotted(i, None, owner))
    for r in recs:
        r.ref = recs[rng.randrange(n)]
    return recs, n, recs


def _grow_slotted(k, rng, refs):
    return [Slotted(i, refs[rng.randrange(len(refs))], None) for i in range(k)]


def _nested(n, rng):
    # records of nested containers, 4 tracked objects each: a dict holding a
    # list holding a tuple holding a list (the tuple and the lists stay
    # tracked because they hold containers or may be mutated)
    out = []
    for i in range(n // 4):
        inner = [i, "v"]
        out.append({"id": i, "vals": [(inner, i), "x"], "n": i})
    return out, 4 * len(out), out


def _grow_nested(k, rng, refs):
    out = []
    for i in range(k // 4):
        inner = [i, refs[rng.randrange(len(refs))]]
        out.append({"id": i, "vals": [(inner, i), "x"], "n": i})
    return out


def _json_doc(n, rng):
    # a parsed JSON payload, as a service caches it: objects of objects and
    # arrays (json.loads makes every dict and list; about 3 tracked per item)
    items = []
    for i in range(max(1, n // 3)):
        items.append({"id": i, "name": "item%d" % i, "tags": ["a", "b"],
                      "owner": {"uid": i & 255, "roles": ["r"]} if i % 2 else None})
    doc = json.loads(json.dumps({"items": items}))
    count = sum(1 + 1 + (2 if it["owner"] else 0) for it in doc["items"])
    return doc, count, doc["items"]


def _grow_json(k, rng, refs):
    items = [{"id": i, "name": "y", "tags": ["a"], "ref": refs[rng.randrange(len(refs))]}
             for i in range(max(1, k // 2))]
    return items


SHAPES = {
    "random_graph": ("objects each holding one reference to a random other object",
                     _rand_graph, _grow_graph),
    "doc_tree": ("document tree: parent pointer, children list, attribute dict",
                 _doc_tree, _grow_tree),
    "dict_records": ("dict of records, each referencing a random other record",
                     _dict_records, _grow_records),
    "stdlib_ast": ("parsed ASTs of the standard library", _stdlib_ast, _grow_ast),
    "linked_chain": ("a linked chain", _chain, _grow_chain),
    "small_cycles": ("many small cycles (pairs) kept alive", _small_cycles, _grow_cycles),
    "wide_list": ("one list of instances", _wide_list, _grow_items),
    "big_dict": ("one dict of instances", _big_dict, _grow_items),
    "slotted_records": ("__slots__ records referencing random others", _slotted, _grow_slotted),
    "nested_containers": ("records of nested dicts, lists and tuples", _nested, _grow_nested),
    "json_document": ("a parsed JSON payload (dicts and lists)", _json_doc, _grow_json),
}


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------

def _set_prefetch(on):
    if _core is not None and hasattr(_core, "_set_prefetch"):
        if on:
            _core._set_prefetch(32, 8)
        else:
            _core._set_prefetch(0, 0)


#: what the third collector ("cyclegc_noprefetch", column "off") switches
#: off: "prefetch", "split" or "marking" (--ablate)
ABLATE = "prefetch"


def _collect(name, gen=2):
    if name == "builtin":
        return builtin_gc.collect(gen)
    if name == "cyclegc_noprefetch" and ABLATE in ("split", "marking"):
        switch = (_core._set_split_walkers if ABLATE == "split"
                  else _core._set_marking)
        previous = switch(False)
        try:
            return cyclegc.collect(gen)
        finally:
            switch(previous)
    _set_prefetch(name != "cyclegc_noprefetch")
    try:
        return cyclegc.collect(gen)
    finally:
        _set_prefetch(True)


def _timed(name, gen):
    w0, c0 = time.perf_counter(), time.thread_time()
    found = _collect(name, gen)
    return time.perf_counter() - w0, time.thread_time() - c0, found


def _stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _ratios(times, name, base="builtin"):
    return [a / b for a, b in zip(times[name], times[base]) if b > 0]


def _row(shape, kind, tracked, names, wall, cpu, found, **extra):
    row = {"shape": shape, "kind": kind, "tracked_objects": tracked, **extra,
           "collectors": {}}
    for n in names:
        row["collectors"][n] = {
            "wall_s": _stats(wall[n]), "cpu_s": _stats(cpu[n]),
            "ns_per_object": statistics.median(wall[n]) * 1e9 / max(tracked, 1),
            "cpu_ns_per_object": statistics.median(cpu[n]) * 1e9 / max(tracked, 1),
            "times_s": wall[n], "cpu_times_s": cpu[n], "found": found[n],
        }
        if n != "builtin":
            r = _ratios(wall, n)
            rc = _ratios(cpu, n)
            row["collectors"][n]["ratio"] = _stats(r)
            row["collectors"][n]["cpu_ratio"] = _stats(rc)
    return row


def _alternate(names, repeat, gen, before=None, after=None):
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    found = {n: [] for n in names}
    order = list(names)
    for i in range(repeat):
        seq = order if i % 2 == 0 else order[::-1]
        for n in seq:
            if before:
                before(i)
            w, c, f = _timed(n, gen)
            wall[n].append(w)
            cpu[n].append(c)
            found[n].append(f)
            if after:
                after()
    return wall, cpu, found


def floor(repeat=3):
    """(memory-order ns/object, random-order ns/object, tracked objects)."""
    if _core is None or not hasattr(_core, "_traverse_probe"):
        return None, None, None
    mem, rnd, n = [], [], 0
    for i in range(repeat):
        n, t, _ = _core._traverse_probe(0)
        mem.append(t)
        n, t, _ = _core._traverse_probe(1, 1 + i)
        rnd.append(t)
    return (statistics.median(mem) * 1e9 / max(n, 1),
            statistics.median(rnd) * 1e9 / max(n, 1), n)


def bench_shape(shape, size, repeat, seed, ablation, young_new=None, young_repeat=None):
    """Build one shape, time full (and, if young_new, young) collections."""
    desc, build, grow = SHAPES[shape]
    rng = random.Random(seed)
    builtin_gc.enable()                 # the heap is built as a program builds it
    t0 = time.perf_counter()
    root, count, refs = build(size, rng)
    build_s = time.perf_counter() - t0
    builtin_gc.disable()
    builtin_gc.collect()
    cyclegc.collect()
    fmem, frnd, tracked = floor()
    if tracked is None:
        tracked = len(builtin_gc.get_objects())
    names = COLLECTORS + (("cyclegc_noprefetch",) if ablation else ())
    wall, cpu, found = _alternate(names, repeat, 2)
    rows = [_row(shape, "full", tracked, names, wall, cpu, found, size=size,
                 shape_objects=count, description=desc, build_s=build_s,
                 floor_memory_ns=fmem, floor_random_ns=frnd)]
    if young_new:
        thr = builtin_gc.get_threshold()[0]
        for label, k, rep in (("young", young_new, young_repeat or repeat),
                              ("young_threshold", thr, (young_repeat or repeat) * 10)):
            holder = []

            def make(i, k=k):
                builtin_gc.collect(1)          # untimed: last round's young freed
                # the same young objects for every collector of a repeat (the
                # AST grower's size depends on the file it picks)
                holder[:] = [grow(k, random.Random(seed * 1000 + i), refs)]

            def drop():
                holder.clear()

            w, c, f = _alternate(COLLECTORS, rep, 0, before=make, after=drop)
            builtin_gc.collect(1)
            rows.append(_row(shape, label, tracked, COLLECTORS, w, c, f, size=size,
                             young_objects=k, description=desc))
    del root, refs
    builtin_gc.collect()
    return rows


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def _cell_ratio(c):
    r = c["ratio"]
    return f"**{r['median']:.2f}** [{r['min']:.2f}-{r['max']:.2f}]"


def markdown(rows, python=None):
    py = python or platform.python_version()
    full = [r for r in rows if r["kind"] == "full"]
    abl = any("cyclegc_noprefetch" in r["collectors"] for r in full)
    out = [f"Full collections, CPython {py} (ns per tracked object, median; ratio = "
           "median of paired cyclegc/built-in ratios [range])", "",
           "| shape | size | tracked | floor mem | floor random | cyclegc | built-in | "
           "cyclegc / built-in |" + (" no prefetch / built-in |" if abl else ""),
           "|---|---|---|---|---|---|---|---|" + ("---|" if abl else "")]
    for r in full:
        c, b = r["collectors"]["cyclegc"], r["collectors"]["builtin"]
        line = (f"| {r['shape']} | {fmt_size(r['size'])} | {r['tracked_objects'] / 1e6:.2f}M | "
                f"{_f(r['floor_memory_ns'])} | {_f(r['floor_random_ns'])} | "
                f"{c['ns_per_object']:.0f} | {b['ns_per_object']:.0f} | {_cell_ratio(c)} |")
        if abl:
            n = r["collectors"].get("cyclegc_noprefetch")
            line += f" {_cell_ratio(n)} |" if n else " |"
        out.append(line)
    by_size = {}
    for r in full:
        by_size.setdefault(r["size"], []).append(r["collectors"]["cyclegc"]["ratio"]["median"])
    out.append("")
    for size, rs in by_size.items():
        g = statistics.geometric_mean(rs)
        out.append(f"geometric mean of the ratios at {fmt_size(size)}: **{g:.2f}** "
                   f"(worst {max(rs):.2f}, {len(rs)} shapes)")
    young = [r for r in rows if r["kind"] != "full"]
    if young:
        out += ["", "Young collections, collect(0) right after N new objects (linked into "
                "the old heap, all surviving)", "",
                "| shape | old heap | new objects | cyclegc | built-in | cyclegc / built-in |",
                "|---|---|---|---|---|---|"]
        for r in young:
            c, b = r["collectors"]["cyclegc"], r["collectors"]["builtin"]
            out.append(f"| {r['shape']} | {fmt_size(r['size'])} | {r['young_objects']:,} | "
                       f"{_t(c['wall_s']['median'])} | {_t(b['wall_s']['median'])} | "
                       f"{_cell_ratio(c)} |")
    return "\n".join(out)


def _f(x):
    return "-" if x is None else f"{x:.0f}"


def _t(s):
    return f"{s * 1e3:.2f} ms" if s >= 1e-3 else f"{s * 1e6:.0f} us"


def print_row(r):
    c = r["collectors"]["cyclegc"]
    b = r["collectors"]["builtin"]
    extra = ""
    if "cyclegc_noprefetch" in r["collectors"]:
        label = "single-walk" if ABLATE == "split" else "no-prefetch"
        extra = f"  {label} {r['collectors']['cyclegc_noprefetch']['ratio']['median']:.2f}"
    if r["kind"] == "full":
        print(f"{r['shape']:18s} {fmt_size(r['size']):>4s} tracked {r['tracked_objects']:>9,} "
              f"floor {_f(r['floor_memory_ns']):>4s}/{_f(r['floor_random_ns']):>4s} ns  "
              f"cyclegc {c['ns_per_object']:6.1f} builtin {b['ns_per_object']:6.1f} ns/obj  "
              f"ratio {c['ratio']['median']:.2f} [{c['ratio']['min']:.2f}-{c['ratio']['max']:.2f}]"
              f" cpu {c['cpu_ratio']['median']:.2f}{extra}", flush=True)
    else:
        print(f"{r['shape']:18s} {fmt_size(r['size']):>4s} {r['kind']:16s} new {r['young_objects']:>7,} "
              f"cyclegc {_t(c['wall_s']['median'])} builtin {_t(b['wall_s']['median'])} "
              f"ratio {c['ratio']['median']:.2f} [{c['ratio']['min']:.2f}-{c['ratio']['max']:.2f}]"
              f" cpu {c['cpu_ratio']['median']:.2f}", flush=True)


def run(sizes, shapes, repeat, seed=1, ablation=(), young_heap=None, young_new=200_000,
        young_repeat=None):
    """Rows for every size and shape; `ablation`: the sizes at which cyclegc
    with prefetching off is timed too."""
    if hasattr(cyclegc, "installed") and cyclegc.installed():
        cyclegc.uninstall()
    rows = []
    for size in sizes:
        for i, shape in enumerate(shapes):
            y = young_new if young_heap is not None and size == young_heap else None
            rows.extend(r for r in bench_shape(shape, size, repeat, seed + i,
                                               size in ablation, y, young_repeat))
            for r in rows[-(3 if y else 1):]:
                print_row(r)
    builtin_gc.enable()
    return rows


def document(rows, argv=None):
    return {
        "benchmark": "shapes",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "argv": argv if argv is not None else sys.argv,
        "results": rows,
    }


def parser():
    ap = argparse.ArgumentParser(prog="bench_shapes.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--sizes", default="100k,1M,5M")
    ap.add_argument("--shapes", default=",".join(SHAPES),
                    help="comma-separated subset of: " + ", ".join(SHAPES))
    ap.add_argument("--repeat", type=int, default=5, help="alternating repeats (>= 5 for figures)")
    ap.add_argument("--young-heap", default="1M", help="heap size of the young rows ('' : none)")
    ap.add_argument("--young-new", type=int, default=200_000)
    ap.add_argument("--young-repeat", type=int, default=None)
    ap.add_argument("--ablation-sizes", default="1M",
                    help="sizes at which cyclegc with prefetching off is timed as a third "
                         "collector ('': none)")
    ap.add_argument("--ablate", choices=("prefetch", "split", "marking"), default="prefetch",
                    help="what the third collector switches off: the prefetch rings, or "
                         "the split's walkers after marking, or marking itself")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--markdown", metavar="FILE")
    return ap


def main(argv=None):
    global ABLATE
    args = parser().parse_args(argv)
    ABLATE = args.ablate
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        raise SystemExit(f"unknown shapes: {', '.join(sorted(unknown))}")
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    yh = parse_size(args.young_heap) if args.young_heap else None
    print(f"cyclegc vs built-in gc on heap shapes, CPython {platform.python_version()}; "
          f"{args.repeat} alternating repeats; load {os.getloadavg()[0]:.1f}", flush=True)
    ablation = {parse_size(s) for s in args.ablation_sizes.split(",") if s.strip()}
    rows = run(sizes, shapes, args.repeat, args.seed, ablation, yh, args.young_new,
               args.young_repeat)
    md = markdown(rows)
    print()
    print(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(document(rows, argv), f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
