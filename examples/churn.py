"""An example program for `python -m cyclegc run`: a service-like loop that
keeps a cache of long-lived records and makes cyclic garbage on every
request (each request object points to its parts, which point back).

    python -m cyclegc run examples/churn.py --requests 200000
    python -m cyclegc run --compare examples/churn.py
"""
import argparse
from collections import OrderedDict


class Part:
    __slots__ = ("owner", "value")

    def __init__(self, owner, value):
        self.owner, self.value = owner, value


class Request:
    def __init__(self, i):
        self.id = i
        self.parts = [Part(self, j) for j in range(3)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--cache", type=int, default=20_000)
    args = ap.parse_args()
    table = [{"id": i, "tags": [i]} for i in range(100_000)]   # long-lived data
    cache = OrderedDict()
    for i in range(args.requests):
        req = Request(i)
        if i % 4 == 0:
            cache[i] = req
            if len(cache) > args.cache:
                cache.popitem(last=False)
    print(f"served {args.requests} requests over {len(table)} rows")


if __name__ == "__main__":
    main()
