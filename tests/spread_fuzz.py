"""Attacks on the proof across stops (incremental.c, "a closure proven across
stops"): random graphs of the admitted types, closures forced to spread
over many tiny stops, and between every two stops the program reaches into
what is being proven, as docs/design.md lists the hazards:

- references moved without a count change (list.pop / dict.pop / set.pop
  stored elsewhere), dropped, added from outside;
- garbage reached again through a weakref, gc.get_objects() or
  gc.get_referrers(), and attached to the roots;
- members mutated in place (items replaced, attributes set, containers
  cleared or grown, an instance's class changed);
- new objects, finalizers (__del__) and weakrefs with callbacks;
- wide lists and dicts (traversed a slice per stop) mutated mid-walk.

After every stop each object reachable from the roots must be intact: every
object carries a tag that tp_clear would wipe (a list's first item, a dict's
"tag" key, an instance's tag attribute), and a freed object would crash the
walk.  At the end the roots are dropped, rounds run (up to 30), and then
every weakly referenceable object must be freed by a complete collection;
the objects rounds alone did not free are counted.

    python -m tests.spread_fuzz --seeds 200 --start 0     # one process, seeds in a row

Used by tests/test_spread.py with a few seeds; scripts run it longer.
"""
from __future__ import annotations

import argparse
import collections
import gc as builtin_gc
import random
import sys
import types
import weakref


class Slot:
    __slots__ = ("tag", "a", "b", "__weakref__")

    def hop(self):
        return self


class Plain:
    def hop(self):
        return self


class Tally(collections.Counter):
    """A dict subclass defined in Python."""


Pair = collections.namedtuple("Pair", "tag items")     # a tuple-like class (no __dict__)


class Other:                 # __class__ assignments switch between Plain and Other
    pass


class Final:
    def hop(self):
        return self

    def __del__(self):
        Final.finalized += 1


Final.finalized = 0

KINDS = ("list", "dict", "slot", "plain", "final", "tuple", "ntuple", "set", "wide_list", "wide_dict",
         "tally")


class Broken(AssertionError):
    pass


class Fuzz:
    def __init__(self, seed, gcmod, core, size=400):
        self.rng = random.Random(seed)
        self.seed = seed
        self.gc = gcmod
        self.core = core
        self.size = size
        self.serial = 0
        self.weak = []          # weakrefs to every weakly referenceable object made
        self.roots = []
        self.called_back = 0
        self.parts = {}         # id(root) -> weakrefs into the structure it holds
        self.slow = 0           # dropped objects 30 rounds did not free (collect() did)
        self.dropped = []       # ... of structures whose root was dropped (recent last)

    # -- objects -------------------------------------------------------------
    def tag(self):
        self.serial += 1
        return ("tag", self.serial)

    def new(self, kind=None):
        kind = kind or self.rng.choice(KINDS)
        if kind == "list":
            return [self.tag()]
        if kind == "wide_list":
            return [self.tag()] + [None] * self.rng.randrange(1100, 2600)
        if kind == "dict":
            return {"tag": self.tag()}
        if kind == "tally":
            t = Tally()
            t["tag"] = self.tag()
            return t
        if kind == "wide_dict":
            d = {"tag": self.tag()}
            for i in range(self.rng.randrange(1100, 2600)):
                d[i] = None
            return d
        if kind == "set":
            return {self.tag()}
        if kind == "tuple":
            return (self.tag(), [self.tag()])     # a tuple made once, holding a list
        if kind == "ntuple":
            return Pair(self.tag(), [self.tag()])
        if kind == "slot":
            o = Slot()
            o.tag = self.tag()
            o.a = o.b = None
        elif kind == "final":
            o = Final()
            o.tag = self.tag()
        else:
            o = Plain()
            o.tag = self.tag()
            if self.rng.random() < 0.5:
                o.__dict__            # the attributes in a dict (an admitted layout)
        cb = self._callback if self.rng.random() < 0.2 else None
        self.weak.append(weakref.ref(o, cb))
        return o

    def _callback(self, ref):
        self.called_back += 1

    def link(self, src, dst):
        """Makes src refer to dst (where it can)."""
        if isinstance(src, list):
            if len(src) > 1 and self.rng.random() < 0.5:
                src[self.rng.randrange(1, len(src))] = dst
            else:
                src.append(dst)
        elif isinstance(src, dict):
            src[self.rng.randrange(1 << 30)] = dst
        elif isinstance(src, set):
            try:
                src.add(dst)
            except TypeError:       # unhashable
                pass
        elif isinstance(src, tuple):
            src[1].append(dst)
        elif isinstance(src, Slot):
            if self.rng.random() < 0.5:
                src.a = dst
            else:
                src.b = dst
        else:
            r = self.rng.random()
            if r < 0.15 and hasattr(dst, "hop"):
                dst = dst.hop                   # a bound method holding dst
            elif r < 0.3:
                dst = (lambda d: lambda: d)(dst)    # a function whose cell holds dst
            setattr(src, f"x{self.rng.randrange(4)}", dst)

    @staticmethod
    def unwrap(v):
        if isinstance(v, types.MethodType):
            return v.__self__
        if isinstance(v, types.FunctionType):
            return v.__closure__[0].cell_contents
        return v

    def referents(self, o):
        if isinstance(o, list):
            return [x for x in o[1:] if x is not None]
        if isinstance(o, dict):         # (an instance's __dict__ too: get_referrers finds them)
            return [self.unwrap(v) for k, v in o.items() if k != "tag" and v is not None]
        if isinstance(o, set):
            return [x for x in o if x is not None and not (isinstance(x, tuple) and x and x[0] == "tag")]
        if isinstance(o, tuple):
            return [o[1]]
        if isinstance(o, Slot):
            return [x for x in (o.a, o.b) if x is not None]
        return [self.unwrap(v) for k, v in getattr(o, "__dict__", {}).items() if k != "tag"]

    def ours(self, o):
        """o is one of the fuzzer's objects (not a list of its own frames)."""
        try:
            return self.check(o)
        except Broken:
            return False

    def check(self, o):
        """o is intact: its tag is there."""
        if isinstance(o, list):
            ok = len(o) >= 1 and isinstance(o[0], tuple) and o[0][0] == "tag"
        elif isinstance(o, dict):
            ok = isinstance(o.get("tag"), tuple)
        elif isinstance(o, set):
            ok = any(isinstance(x, tuple) and x and x[0] == "tag" for x in o)
        elif isinstance(o, tuple):
            ok = len(o) == 2 and o[0][0] == "tag" and isinstance(o[1], list) and self.check(o[1])
        else:
            ok = isinstance(getattr(o, "tag", None), tuple)
        if not ok:
            raise Broken(f"a reachable {type(o).__name__} was cleared")
        return True

    def check_all(self):
        for o in self.reachable():
            self.check(o)

    def reachable(self):
        seen, out, todo = set(), [], list(self.roots)
        while todo:
            o = todo.pop()
            if o is None or id(o) in seen:
                continue
            seen.add(id(o))
            out.append(o)
            todo.extend(self.referents(o))
        return out

    # -- the program between stops --------------------------------------------
    def component(self, n):
        first = len(self.weak)
        objs = [self.new() for _ in range(n)]
        for i in range(1, n):                       # connected: a random tree ...
            self.link(objs[self.rng.randrange(i)], objs[i])
        for _ in range(n):                          # ... with cycles through it
            self.link(self.rng.choice(objs), self.rng.choice(objs))
        self.parts[id(objs[0])] = self.weak[first:]
        return objs[0]

    def build(self):
        # separate structures bigger than a stop (spread), each held by one
        # root; dropping a root makes one garbage whole
        self.roots = [self.component(self.rng.randrange(70, self.size)) for _ in range(8)]

    def mutate(self):
        rng = self.rng
        live = self.reachable()
        for _ in range(rng.randrange(0, 4)):
            # dropping roots and new structures often, links across rarely:
            # separate structures die whole, as big garbage does
            op = rng.choice((0, 0, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11, 11))
            if op == 0 and live:                       # move a reference: pop and store elsewhere
                src = rng.choice(live)
                x = None
                if isinstance(src, list) and len(src) > 1:
                    x = src.pop(rng.randrange(1, len(src)))
                elif isinstance(src, dict) and len(src) > 1:
                    k = rng.choice([k for k in src if k != "tag"])
                    x = src.pop(k)
                elif isinstance(src, set) and len(src) > 1:
                    cand = [y for y in src if not (isinstance(y, tuple) and y and y[0] == "tag")]
                    if cand:
                        x = cand[0]
                        src.discard(x)
                if x is not None:                      # (within the same structure)
                    near = [y for y in self.referents(src) if not isinstance(y, tuple)]
                    self.link(rng.choice(near) if near else src, x)
            elif op == 1 and self.roots:               # drop a root: garbage
                gone = self.roots.pop(rng.randrange(len(self.roots)))
                part = self.parts.pop(id(gone), None)
                if part:
                    self.dropped = (self.dropped + [part])[-4:]
                del gone
            elif op == 2:                              # reach garbage again through a weakref:
                pool = rng.choice(self.dropped) if self.dropped and rng.random() < 0.8 else self.weak
                alive = [r() for r in rng.sample(pool, min(5, len(pool)))]   # a dropped structure's,
                alive = [o for o in alive if o is not None]                    # often while it is proven
                if alive:
                    o = rng.choice(alive)
                    self.roots.append(o)
                    inner = self.referents(o)              # and move references inside it
                    if inner:
                        self.link(rng.choice(inner), o)
                        self.link(o, rng.choice(inner))
                    del o, inner
                alive = []
            elif op == 2:
                alive = [r() for r in rng.sample(self.weak, min(5, len(self.weak)))]
                alive = [o for o in alive if o is not None]
                if alive:
                    self.roots.append(rng.choice(alive))
            elif op == 3 and rng.random() < 0.1:       # ... through gc.get_objects()
                mine = [o for o in self.gc.get_objects() if type(o) in (Slot, Plain, Other, Final)]
                if mine:
                    self.roots.append(rng.choice(mine))
                del mine
            elif op == 4 and live and rng.random() < 0.2:   # ... through gc.get_referrers()
                target = rng.choice(live)
                refs = [o for o in self.gc.get_referrers(target) if self.ours(o)]
                if refs:
                    self.roots.append(rng.choice(refs))
                del refs
            elif op == 5 and live:                     # new objects into the graph
                o = self.new()
                a = rng.choice(live)
                self.link(a, o)
                self.link(o, a)
            elif op == 6 and live:                     # replace in place (across, now and then)
                a = rng.choice(live)
                near = self.referents(a)
                self.link(a, rng.choice(near) if near and rng.random() < 0.9 else rng.choice(live))
            elif op == 7 and live:                     # clear a container's contents (tag kept)
                o = rng.choice(live)
                if isinstance(o, list):
                    del o[1:]
                elif isinstance(o, dict):
                    for k in [k for k in o if k != "tag"]:
                        del o[k]
            elif op == 8 and live:                     # grow a container (its storage moves)
                o = rng.choice(live)
                if isinstance(o, list):
                    o.extend([None] * rng.randrange(1, 3000))
                elif isinstance(o, dict):
                    for i in range(rng.randrange(1, 3000)):
                        o[("g", self.serial, i)] = None
            elif op == 9 and live:                     # an instance changes class
                o = rng.choice(live)
                if type(o) is Plain:
                    o.__class__ = Other
                elif type(o) is Other:
                    o.__class__ = Plain
            elif op == 10 and live:                    # a reference held from a new root only
                o = rng.choice(live)
                ref = self.referents(o)
                if ref:
                    self.roots.append(rng.choice(ref))
            elif op == 11 and len(self.roots) < 12:    # a new structure, rooted (it ages)
                self.roots.append(self.component(rng.randrange(70, self.size)))
        del live

    def aim(self):
        """Points the next spread at one of our structures (a dropped one
        mostly, else a live one), so that the attacks above meet it."""
        if self.core.incremental_stats()["spread"]["active"]:
            return
        pool = self.rng.choice(self.dropped) if self.dropped and self.rng.random() < 0.8 else self.weak
        for r in self.rng.sample(pool, min(3, len(pool))):
            o = r()
            if o is not None and self.core._spread_from(o):
                break
        o = None

    def attack(self, rounds=6):
        """The targeted attack: a structure dies, a spread proves it, and
        between its stops the program takes some of it back (weakrefs,
        gc.get_referrers), moves references inside it, drops them again."""
        core, rng = self.core, self.rng
        for _ in range(rounds):
            root = self.component(rng.randrange(80, self.size))
            part = self.parts.pop(id(root))
            for _ in range(3):
                core.run_increment(1)                  # old
            del root
            core.run_increment(0, True)                # a round over it
            taken = []
            for _ in range(5000):
                st = core.incremental_stats()
                if st["phase"] == "idle" and not st["spread"]["active"] and not st["parked_now"]:
                    break
                if not st["spread"]["active"] and st["phase"] == "sweep":
                    for r in rng.sample(part, min(3, len(part))):
                        o = r()
                        if o is not None and core._spread_from(o):
                            break
                    o = None
                if st["spread"]["active"] and rng.random() < 0.3:
                    alive = [r() for r in rng.sample(part, min(4, len(part)))]
                    alive = [o for o in alive if o is not None]
                    if alive:
                        o = rng.choice(alive)
                        how = rng.randrange(4)
                        if how == 0:
                            taken.append(o)
                        elif how == 1:
                            refs = [x for x in self.gc.get_referrers(o) if self.ours(x)]
                            if refs:
                                taken.append(rng.choice(refs))
                        inner = [x for x in self.referents(o) if not isinstance(x, tuple)]
                        if inner:
                            x = rng.choice(inner)
                            self.link(x, o)
                            if isinstance(o, list) and len(o) > 1:
                                self.link(x, o.pop())
                        if how == 2 and taken:
                            taken.pop(rng.randrange(len(taken)))
                    alive = o = inner = x = refs = None
                core.run_increment(0)
                for t in taken:
                    for y in self.reach_from(t):
                        self.check(y)
            self.roots.extend(taken)
            del taken

    def reach_from(self, start):
        saved, self.roots = self.roots, [start]
        try:
            return self.reachable()
        finally:
            self.roots = saved

    # -- the run -----------------------------------------------------------------
    def run(self, stops=400):
        core = self.core
        self.build()
        core._set_max_pause(0.0005)     # rounds of a few dozen stops,
        core._set_young_chunk(-1)
        core._force_oversized(-64)      # closures past 64 objects spread,
        core._set_spread_step_limit(self.rng.choice((3, 10, 40)))   # over many stops
        # verdicts on written pages settle over stops first (reading the
        # members of a few pages again per stop) in half the seeds; drawn
        # apart so that the other draws stay what they were for each seed
        core._set_spread_settle_pages(random.Random(self.seed * 7919 + 1).choice((0, 1, 4, 16)))
        # members shown alive by the walk of the spread's list, or by their
        # `via` chains only, or as many written members call for
        core._set_spread_alive_walk(random.Random(self.seed * 7919 + 2).choice((-1, 0, 1)))
        try:
            self.attack()
            core.run_increment(1, True)
            for _ in range(stops):
                self.mutate()
                self.check_all()
                self.aim()
                core.run_increment(self.rng.randrange(2), self.rng.random() < 0.05)
            self.check_all()
            self.roots = []
            # rounds until everything dropped is found: garbage referencing
            # other garbage a round's earlier slice kept (marked) frees it in
            # the next round, so a chain of k structures takes k rounds
            for _ in range(30):
                if not any(r() is not None for r in self.weak):
                    break
                core.run_increment(1, True)
                for _ in range(100000):
                    st = core.incremental_stats()
                    if st["phase"] == "idle" and not st["parked_now"] and not st["spread"]["active"]:
                        break
                    core.run_increment(0)
        finally:
            core._force_oversized(0)
            core._set_spread_step_limit(0)
            core._set_spread_settle_pages(0)
            core._set_spread_alive_walk(0)
            core._set_max_pause(0)
            core._set_young_chunk(0)
        # what rounds left (garbage that other garbage kept marked, a round
        # at a time) is counted; what a complete collection leaves is a leak
        self.slow = sum(r() is not None for r in self.weak)
        self.gc.collect()
        left = [r for r in self.weak if r() is not None]
        if left:
            raise Broken(f"{len(left)} dropped objects were never freed, not even by collect()")
        return core.incremental_stats()["spread"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--stops", type=int, default=400)
    parser.add_argument("--no-spread", action="store_true",
                        help="the same program with closures taken whole (a baseline)")
    args = parser.parse_args(argv)
    import cyclegc
    from cyclegc._core import _cyclegc as core
    core._set_spread(not args.no_spread)
    builtin_gc.disable()
    failures = slow_seeds = 0
    for seed in range(args.start, args.start + args.seeds):
        fuzz = Fuzz(seed, cyclegc, core, args.size)
        try:
            stats = fuzz.run(args.stops)
        except Broken as e:
            failures += 1
            print(f"seed {seed}: {e}", flush=True)
            continue
        if fuzz.slow:
            slow_seeds += 1
            print(f"seed {seed}: {fuzz.slow} dropped objects outlived 30 rounds (collect() freed them)",
                  flush=True)
        if seed % 10 == 0:
            print(f"seed {seed}: ok, spread {stats['started']} started, {stats['proven_garbage']} garbage, "
                  f"{stats['kept_alive']} kept, {stats['aborted_unsure'] + stats['aborted_unwatchable']} ended, "
                  f"{stats['longest_verdict']['settle_stops']} settling stops so far",
                  flush=True)
    print(f"{args.seeds} seeds, {failures} broken, {slow_seeds} with garbage outliving 30 rounds")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
