"""One side of a differential run: build graphs, collect once, report.

Run from the repository root::

    python -m tests.differential.child --collector {builtin,cyclegc} --seed N [--count K]
    python -m tests.differential.child --collector cyclegc --case resurrection

For every graph (seed or named case) the child

1. starts from a clean heap (automatic collection disabled in both the
   built-in ``gc`` and, if used, ``cyclegc``; a full built-in collection),
2. materializes the graph (``graphs.materialize``), keeping only its roots,
3. runs *one* collection with the collector under test (``collect(gen)``,
   with the spec's debug flags and a recorder in ``callbacks``), observes,
   then releases the resurrected objects and runs a second full collection,
4. prints one JSON line of everything observable: collect()'s return
   values, gc.callbacks info, get_stats()/get_count(), the sorted logs of
   finalizers / weakref callbacks / generator ``finally`` blocks, unraisable
   hook reports and warnings, debug output on stderr (addresses and timings
   masked), gc.garbage as labels/type names, resurrected objects and
   ``is_finalized``, surviving labelled objects (a ``gc.get_objects()`` scan),
   which watched weakrefs died, and an intact-check of everything reachable
   from the roots,
5. cleans up with the *built-in* collector (breaking legacy-finalizer
   cycles), so seeds in one process do not interfere.

Everything reported is sorted or counted, never ordered by address or hash,
and ``PYTHONHASHSEED`` is forced to 0 (the child re-executes itself if
needed), so two runs of the same collector produce identical output.
``--collector builtin2`` is the built-in collector with a perturbed heap
(random-sized untracked allocations): comparing it with ``builtin`` checks
that determinism.
"""
from __future__ import annotations

import argparse
import gc
import io
import json
import os
import re
import sys
import traceback
import warnings
from collections import Counter
from pathlib import Path

from . import graphs
from .graphs import STATE

REPO = Path(__file__).resolve().parents[2]
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_RUN = re.compile(r"cgc\.\d+\.")


def _mask(text):
    return _RUN.sub("", _HEX.sub("0x?", text))


def import_cyclegc():
    """Import cyclegc: the installed package, or if none is installed the
    source tree's (``python setup.py build_ext --inplace``)."""
    try:
        import cyclegc
    except ModuleNotFoundError as exc:
        src = str(REPO / "src")
        if exc.name != "cyclegc" or src in sys.path:
            raise
        sys.path.insert(0, src)
        import cyclegc
    return cyclegc


# --------------------------------------------------------------------------
# Hooks: reports go into lists of strings only (never keep the objects).

EVENTS = {"unraisable": [], "warnings": []}


def _describe_object(obj):
    if obj is None:
        return "None"
    name = getattr(obj, "__qualname__", None)
    if isinstance(name, str):
        return _mask(name)
    return type(obj).__name__


def _unraisable_hook(report):
    EVENTS["unraisable"].append(
        " | ".join(
            [
                getattr(report.exc_type, "__name__", str(report.exc_type)),
                _mask(str(report.exc_value)),
                _mask(report.err_msg or ""),
                _describe_object(report.object),
            ]
        )
    )


def _showwarning(message, category, filename, lineno, file=None, line=None):
    EVENTS["warnings"].append(f"{category.__name__}: {_mask(str(message))}")


def _take_events():
    out = {
        "log": sorted(STATE.log),
        "unraisable": sorted(EVENTS["unraisable"]),
        "warnings": sorted(EVENTS["warnings"]),
    }
    STATE.log.clear()
    EVENTS["unraisable"].clear()
    EVENTS["warnings"].clear()
    return out


# --------------------------------------------------------------------------
# Observation


def describe(obj, run):
    lab = graphs.label_of(obj)
    if lab is None:
        return f"<{type(obj).__name__}>"
    return lab[1] if lab[0] == run else f"stale:{lab[0]}:{lab[1]}"


def scan_alive(run, C):
    """Labelled objects in each generation of the interpreter's collector, as
    ``{"gen0": [...], ...}`` of sorted ``label`` / ``label*count`` strings;
    labelled objects of other runs are returned separately (stale)."""
    identify = graphs.IDENTIFY.get
    Tag = graphs.Tag
    # gc.garbage may start with a list node's Tag and pass for that node.
    garbage_lists = (gc.garbage, C.garbage)
    alive, stale = {}, Counter()
    for generation in range(3):
        here = Counter()
        objects = gc.get_objects(generation)
        for obj in objects:
            ident = identify(type(obj))
            if ident is None or obj is garbage_lists[0] or obj is garbage_lists[1]:
                continue
            try:
                tag = ident(obj)
            except Exception:
                continue
            if type(tag) is Tag:
                if tag.run == run:
                    here[tag.label] += 1
                else:
                    stale[f"{tag.run}:{tag.label}"] += 1
        objects.clear()
        obj = objects = tag = None
        alive[f"gen{generation}"] = _counted(here)
    return alive, _counted(stale)


def _counted(counter):
    return sorted(k if v == 1 else f"{k}*{v}" for k, v in counter.items())


def _debug_flags(C, mode):
    return {
        "": 0,
        "saveall": C.DEBUG_SAVEALL,
        "collectable": C.DEBUG_COLLECTABLE | C.DEBUG_UNCOLLECTABLE,
        "stats": C.DEBUG_STATS,
        "leak": C.DEBUG_LEAK,
    }[mode]


CALLBACK_KEYS = ("generation", "collected", "uncollectable")
_ELAPSED = re.compile(r"\d+\.\d+s elapsed")
_GEN_SIZES = re.compile(r"^(gc: objects in [a-z ]+generation[s]?:)[\d ]+$")


def _mask_debug_output(text):
    lines = []
    for line in text.splitlines():
        line = _ELAPSED.sub("#s elapsed", _mask(line))
        line = _GEN_SIZES.sub(r"\1 #", line)  # heap sizes differ between processes
        lines.append(line)
    return sorted(lines)


def measured_collect(C, generation, debug):
    """Run one collection with the collector under test and record it."""
    calls = []

    def callback(phase, info):
        # The built-in's keys only: cyclegc documents extra ones (duration...).
        calls.append([phase, sorted((k, v) for k, v in info.items() if k in CALLBACK_KEYS)])

    stats_before = C.get_stats()
    garbage_before = len(C.garbage)
    captured = io.StringIO()
    saved_stderr = sys.stderr
    C.set_debug(_debug_flags(C, debug))
    C.callbacks.append(callback)
    sys.stderr = captured
    try:
        collected = C.collect(generation)
        count = C.get_count()
    finally:
        sys.stderr = saved_stderr
        C.callbacks.remove(callback)
        C.set_debug(0)
    stats_after = C.get_stats()
    record = {
        "collected": collected,
        "count_after": list(count),
        "callbacks": calls,
        "stats_delta": [
            {key: after[key] - before.get(key, 0) for key in sorted(after)}
            for before, after in zip(stats_before, stats_after)
        ],
        "stderr": _mask_debug_output(captured.getvalue()),
        **_take_events(),
    }
    record["garbage"] = sorted(describe(o, STATE.run) for o in C.garbage[garbage_before:])
    return record


def observe(C, graph):
    run = graph.run
    alive, stale = scan_alive(run, C)
    return {
        "alive": alive,
        "stale": stale,
        "resurrected": sorted(describe(o, run) for o in STATE.resurrected),
        "finalized": sorted(describe(o, run) for o in STATE.resurrected if C.is_finalized(o)),
        "watch_dead": sorted(label for label, ref in graph.watch.items() if ref() is None),
        **graphs.check_intact(graph),
    }


# --------------------------------------------------------------------------
# One graph


def run_graph(C, spec, run):
    """Build ``spec``, collect, observe; returns the record (minus ids)."""
    STATE.reset(run)
    _take_events()
    aging = []

    def age():  # move everything built so far out of the young generation
        aging.append(C.collect() if spec.age_mode == "collect" else C.freeze())

    graph = graphs.materialize(spec, run, age if spec.age_split is not None else None)
    record = {"spec": spec.summary(), "age_collected": aging, "pre": _take_events()}
    record["c1"] = measured_collect(C, spec.generation, spec.debug)
    record["c1"].update(observe(C, graph))
    # Resurrection follow-up: release what __del__ resurrected, collect again.
    STATE.resurrected.clear()
    record["pre2"] = _take_events()
    record["c2"] = measured_collect(C, 2, spec.debug)
    alive, stale = scan_alive(run, C)
    record["c2"].update(alive=alive, stale=stale)
    return record


def cleanup(C):
    """Free everything the graph left behind, with the built-in collector."""
    for module in {id(gc): gc, id(C): C}.values():
        module.set_debug(0)
        module.unfreeze()
    for _ in range(20):
        held = list(gc.garbage)
        gc.garbage.clear()
        if C.garbage is not gc.garbage:
            held += C.garbage
            C.garbage.clear()
        for obj in held:
            if graphs.HAVE_LEGACY and type(obj) is graphs.LegacyNode:
                obj.__dict__.clear()  # break the uncollectable cycle
        # Finalizers that only run now may resurrect objects again.
        pending = bool(held or STATE.resurrected or STATE.late_refs)
        STATE.resurrected.clear()
        STATE.late_refs.clear()
        held.clear()
        obj = held = None
        found = gc.collect()  # may orphan more cycles (freed legacy objects)
        if not (found or pending or gc.garbage or C.garbage or STATE.resurrected):
            break
    STATE.reset()
    _take_events()


def _perturb_heap():
    """builtin2: shift object addresses with untracked allocations."""
    import random

    rng = random.Random(os.urandom(8))
    return tuple(b"x" * rng.randrange(1, 600) for _ in range(rng.randrange(0, 3000)))


def select_collector(name):
    if name in ("builtin", "builtin2"):
        return gc
    if name == "cyclegc":
        return import_cyclegc()
    if name == "cyclegc-ff":          # every full collection fork-friendly
        cyclegc = import_cyclegc()
        cyclegc.set_fork_friendly(True)
        cyclegc._core._cyclegc._set_heap_shared(True)    # as in a forked worker
        return cyclegc
    if name == "cyclegc-nomark":      # full collections without marking from roots
        cyclegc = import_cyclegc()
        from cyclegc._core import _cyclegc
        _cyclegc._set_marking(False)
        return cyclegc
    if name == "cyclegc-ring":        # trial deletion's prefetch ring on every candidate set,
        cyclegc = import_cyclegc()    # young ones after the probe of their first candidates
        from cyclegc._core import _cyclegc
        _cyclegc._set_ring_min_candidates(0)
        _cyclegc._set_ring_probe_older(0)
        return cyclegc
    if name == "cyclegc-heavy":       # young collections set aside every node, list, dict and tuple
        cyclegc = import_cyclegc()    # (up to 16 each): the heavy-object path on every graph
        from cyclegc._core import _cyclegc
        for tp in (graphs.Node, graphs.SlotNode, graphs.SlotNodeNoWeak, list, dict, tuple):
            _cyclegc._add_heavy_type(tp)
        return cyclegc
    if name == "builtin-youngfirst":  # the built-in, a young collection before each full one
        return YoungFirstCollector(gc)
    if name == "cyclegc-rounds":      # full collections as bounded-pause rounds
        return RoundsCollector(import_cyclegc())
    if name == "cyclegc-chunks":      # ... after the young generations in tiny chunks
        return RoundsCollector(import_cyclegc(), young_chunk=3)
    if name == "cyclegc-heavy-chunks":  # ... whose chunks set heavy objects aside as young
        cyclegc = import_cyclegc()      # collections do (every node, list, dict, tuple)
        from cyclegc._core import _cyclegc
        for tp in (graphs.Node, graphs.SlotNode, graphs.SlotNodeNoWeak, list, dict, tuple):
            _cyclegc._add_heavy_type(tp)
        return RoundsCollector(cyclegc, young_chunk=3)
    if name == "cyclegc-oversized":   # rounds whose slices over 4 objects are oversized: parked garbage
        return RoundsCollector(import_cyclegc(), oversized=4)
    if name == "cyclegc-takewhole":   # capped rounds, closures over 4 objects put back, then
        return RoundsCollector(import_cyclegc(), oversized=-4)   # taken whole by the next stop
                                                                 # (or proven across stops)
    if name == "cyclegc-spread":      # the same, each closure proven across stops, one member
        return RoundsCollector(import_cyclegc(), oversized=-4, spread_step=1,  # per stop, and
                               settle_pages=0)     # (settling: test_spread, spread_fuzz)
    if name == "cyclegc-overflow":    # full collections as overflow collections: parked garbage
        return OverflowCollector(import_cyclegc())
    raise SystemExit(f"unknown collector {name!r}")


class YoungFirstCollector:
    """The built-in collector whose full collect() first collects
    generations 0-1 by themselves, as a bounded-pause increment does: what
    the young collection's finalizers and callbacks change is then seen by
    the full one.  The reference for cyclegc-rounds."""

    def __init__(self, gcmod):
        self._gc = gcmod

    def __getattr__(self, name):
        return getattr(self._gc, name)

    def collect(self, generation=2):
        if generation != 2:
            return self._gc.collect(generation)
        return self._gc.collect(1) + self._gc.collect(2)


class RoundsCollector:
    """cyclegc whose full collect() is done the bounded-pause way: a young
    collection of generations 0-1 (survivors join the old generation), then
    one round over the old generation in small slices (a 0.2 ms budget), so
    the same garbage goes through marking, slicing and per-slice trial
    deletion.  Returns the total collected.  Callbacks, stats and counts
    describe several stops instead of one: the test compares the rest."""

    def __init__(self, cyclegc, young_chunk=0, oversized=0, spread_step=0, settle_pages=0):
        self._cyclegc = cyclegc
        from cyclegc._core import _cyclegc as core
        self._core = core
        self._young_chunk = young_chunk
        self._oversized = oversized
        self._spread_step = spread_step
        self._settle_pages = settle_pages

    def __getattr__(self, name):
        return getattr(self._cyclegc, name)

    def collect(self, generation=2):
        if generation != 2:
            return self._cyclegc.collect(generation)
        core = self._core
        core._set_max_pause(0.0002)
        # cyclegc-rounds: young generations whole, as the built-in collects
        # them (at a 0.2 ms budget they would be chunked: cyclegc-chunks)
        core._set_young_chunk(-1)
        total = 0
        try:
            if self._young_chunk:
                # cyclegc-chunks: generations 0-1 examined a few objects per
                # stop (what a program with a huge threshold0 gets), until an
                # increment collects what is left whole; then the round.
                young = sum(len(self._cyclegc.get_objects(g)) for g in (0, 1))
                core._set_young_chunk(self._young_chunk)
                try:
                    for _ in range(young // self._young_chunk + 2):
                        total += core.run_increment(1)
                finally:
                    core._set_young_chunk(0)
                for _ in range(1000):       # the rest whole (or in budget-sized chunks)
                    total += core.run_increment(1)
                    if not core.incremental_stats()["last_young_chunked"]:
                        break
            if self._oversized:
                core._force_oversized(self._oversized)
            core._set_spread_step_limit(self._spread_step)
            core._set_spread_settle_pages(self._settle_pages)
            spread_before = core._set_spread(bool(self._spread_step))   # other modes: the one-stop proof
            total += core.run_increment(1, True)
            # the round, then the garbage its oversized slices parked
            while (core.incremental_stats()["phase"] != "idle"
                   or core.incremental_stats()["parked_now"]):
                total += core.run_increment(0)
        finally:
            if self._spread_step:
                core._set_spread(spread_before)
            core._set_spread_step_limit(0)
            core._set_spread_settle_pages(0)
            if self._oversized:
                core._force_oversized(0)
            core._set_max_pause(0)
            core._set_young_chunk(0)
        return total


class OverflowCollector:
    """cyclegc whose full collect() is an overflow collection of the
    bounded-pause mode: the complete collection proves the garbage (weakrefs,
    finalizers, resurrection) and parks it; increments then clear it a slice
    at a time (0.2 ms budget) until none is left.  Reference: the built-in's
    one full collection."""

    def __init__(self, cyclegc):
        self._cyclegc = cyclegc
        from cyclegc._core import _cyclegc as core
        self._core = core

    def __getattr__(self, name):
        return getattr(self._cyclegc, name)

    def collect(self, generation=2):
        if generation != 2:
            return self._cyclegc.collect(generation)
        core = self._core
        core._set_max_pause(0.0002)
        core._set_young_chunk(-1)
        try:
            core._force_overflow()
            total = core.run_increment(1)
            for _ in range(100000):
                if not core.incremental_stats()["parked_now"]:
                    break
                total += core.run_increment(0)
        finally:
            core._set_max_pause(0)
            core._set_young_chunk(0)
        return total


def _ensure_hash_seed():
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        args = [sys.executable, "-m", "tests.differential.child", *sys.argv[1:]]
        os.execve(sys.executable, args, env)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collector", choices=("builtin", "cyclegc", "cyclegc-ff", "cyclegc-nomark", "cyclegc-ring", "cyclegc-heavy",
                                                "cyclegc-rounds", "cyclegc-chunks", "cyclegc-heavy-chunks", "cyclegc-overflow", "cyclegc-oversized", "cyclegc-takewhole",
                                                "cyclegc-spread", "builtin-youngfirst", "builtin2"),
                        default="builtin")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--seed", type=int)
    group.add_argument("--case", choices=sorted(graphs.NAMED_CASES))
    group.add_argument("--probe", action="store_true", help="report whether cyclegc imports")
    parser.add_argument("--count", type=int, default=1, help="seeds N..N+K-1")
    return parser.parse_args(argv)


def probe():
    try:
        import_cyclegc()
    except ImportError as exc:
        print(json.dumps({"importable": False, "error": f"{type(exc).__name__}: {exc}"}))
    else:
        print(json.dumps({"importable": True}))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.probe:
        return probe()
    _ensure_hash_seed()
    padding = _perturb_heap() if args.collector == "builtin2" else ()
    C = select_collector(args.collector)
    gc.disable()
    C.disable()
    sys.unraisablehook = _unraisable_hook
    warnings.simplefilter("always")
    warnings.showwarning = _showwarning

    if args.case is not None:
        spec = graphs.NAMED_CASES[args.case]
        jobs = [({"case": args.case}, lambda: spec, 0)]
    else:
        jobs = [
            ({"seed": seed}, (lambda s=seed: graphs.random_spec(s)), seed)
            for seed in range(args.seed, args.seed + args.count)
        ]
    gc.collect()
    for ident, make_spec, run in jobs:
        record = dict(ident)
        spec = make_spec()
        if spec.requires_legacy and not graphs.HAVE_LEGACY:
            record["skip"] = graphs.LEGACY_SKIP_REASON
        else:
            try:
                record.update(run_graph(C, spec, run))
            except Exception as exc:
                record["error"] = _mask(f"{type(exc).__name__}: {exc}")
                record["traceback"] = _mask(traceback.format_exc())
        del spec
        cleanup(C)
        print(json.dumps(record, sort_keys=True), flush=True)
    del padding


if __name__ == "__main__":
    main()
