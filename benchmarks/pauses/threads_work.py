"""Four threads making cyclic garbage and keeping a share of it alive in
per-thread caches, while the main thread builds a table; prints totals."""
import sys
import threading

N = int(sys.argv[1]) if len(sys.argv) > 1 else 150_000


class Item:
    def __init__(self, owner, i):
        self.owner = owner
        self.i = i
        self.links = [self]


def worker(k, out):
    cache = {}
    total = 0
    for i in range(N):
        it = Item(k, i)
        d = {"item": it}; d["d"] = d
        if i % 8 == 0:
            cache[i % 5000] = it
        total += it.i % 3
    out[k] = (total, len(cache))


out = {}
threads = [threading.Thread(target=worker, args=(k, out)) for k in range(4)]
for t in threads:
    t.start()
table = [[i, {"i": i}] for i in range(200_000)]
for t in threads:
    t.join()
print(sorted(out.items()), len(table))
