"""Builds large structures (100k to 1M objects: a tree whose nodes point to
their parent and children, with a cross-linked index) and drops each at
once, between phases of ordinary work over a long-lived table: the Sphinx
pattern (an environment of 400k objects dying together).  Prints sizes and
a checksum."""
import sys

SIZES = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "100000,300000,1000000").split(",")]


class Node:
    __slots__ = ("parent", "children", "data", "__weakref__")

    def __init__(self, parent, data):
        self.parent = parent
        self.children = []
        self.data = data
        if parent is not None:
            parent.children.append(self)


def build(n):
    root = Node(None, {"i": 0})
    nodes = [root]
    for i in range(1, n // 3):
        parent = nodes[(i - 1) // 4]
        nodes.append(Node(parent, {"i": i}))
    index = {i: node for i, node in enumerate(nodes)}
    root.data["index"] = index          # the index points back into the tree
    return root


table = [{"k": i, "v": [i, str(i)]} for i in range(200_000)]
check = 0
for n in SIZES:
    tree = build(n)
    check += len(tree.data["index"])
    for rep in range(3):                # ordinary work while the tree is alive
        for i in range(0, len(table), 7):
            a = [table[i]]; a.append(a)
            check += len(a)
    del tree                            # the whole structure dies at once
    for rep in range(3):                # ... and work goes on
        for i in range(0, len(table), 5):
            a = {"t": table[i]}; a["self"] = a
            check += 1
print(f"dropped {SIZES}, checksum {check}")
