"""What a spread's verdict costs per member on a written page.

A hypothesis about users, modelled on what Sphinx showed (thirteenth and
fourteenth sessions): a garbage structure of tens of thousands of objects
(document-tree nodes: an instance, its children list, an attribute dict
holding small lists) is proven across stops, and the program keeps writing
live objects that share its pages, so at the verdict a third of the members
are on written pages and must be read again, though none of them changed.

Usage: python benchmarks/bench_verdict.py [--nodes 6000] [--touch 0.33] [--runs 5]

Prints, per run, the longest verdict: members, members on written pages,
members read again, the seconds reading them took, and ns per member read.
"""
import argparse
import gc as builtin_gc
import json
import statistics
import subprocess
import sys

import cyclegc
from cyclegc._core import _cyclegc as core


class Node:
    def __init__(self, parent):
        self.parent = parent
        self.children = []
        self.attributes = {"ids": [], "classes": [], "names": [], "dupnames": [], "backrefs": []}
        self.rawsource = ""
        if parent is not None:
            parent.children.append(self)


class Neighbour:
    __slots__ = ("count",)

    def __init__(self):
        self.count = 0


def build(nodes):
    """The tree and a live neighbour allocated after each node, so that the
    neighbours share the tree's pages."""
    neighbours = []
    root = Node(None)
    all_nodes = [root]
    for i in range(1, nodes):
        all_nodes.append(Node(all_nodes[(i - 1) // 4]))
        neighbours.append(Neighbour())
    return root, neighbours


def one_run(nodes, touch):
    root, neighbours = build(nodes)
    step = max(1, round(1 / touch)) if touch > 0 else 0
    cyclegc.collect()                         # all of it in the oldest generation
    del root                                  # garbage, before the round marks
    core.run_increment(0, True)               # a round begins
    for _ in range(100000):
        s = core.incremental_stats()
        if s["phase"] == "idle" and not s["spread"]["active"] and not s["parked_now"]:
            break
        if step:
            for nb in neighbours[::step]:     # the program writes next to the garbage
                nb.count += 1
        core.run_increment(0, False)
    return core.incremental_stats()["spread"]["longest_verdict"]


def child(nodes, touch):
    builtin_gc.disable()
    cyclegc.collect()
    core._set_max_pause(0.002)
    core._set_young_chunk(-1)
    core._set_spread(True)
    v = one_run(nodes, touch)
    print(json.dumps({k: v[k] for k in ("members", "dirty", "reread", "reread_seconds", "seconds")}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=6000)
    ap.add_argument("--touch", type=float, default=0.33, help="share of neighbours written between stops")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not core._write_watch_selftest()["available"]:
        sys.exit("no page write detector here (Linux 6.7+ userfaultfd write-protection)")
    if args.child:
        child(args.nodes, args.touch)
        return
    rows = []
    for _ in range(args.runs):      # a process each: the longest verdict is per process
        out = subprocess.run([sys.executable, __file__, "--child", "--nodes", str(args.nodes),
                              "--touch", str(args.touch)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout))
    got = [r for r in rows if r["reread"] > 0]
    per = [r["reread_seconds"] / r["reread"] * 1e9 for r in got]
    if args.json:
        print(json.dumps({"runs": rows, "ns_per_reread": per}))
        return
    for r in rows:
        print("members %6d  dirty %6d  read again %6d  %.2f ms  %.0f ns each  (verdict %.2f ms)" % (
            r["members"], r["dirty"], r["reread"], r["reread_seconds"] * 1e3,
            r["reread_seconds"] / max(r["reread"], 1) * 1e9, r["seconds"] * 1e3))
    if per:
        print("median ns per member read again: %.0f (%d of %d runs read members again)"
              % (statistics.median(per), len(per), len(rows)))


if __name__ == "__main__":
    main()
