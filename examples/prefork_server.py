#!/usr/bin/env python3
"""A pre-fork server whose workers share their parent's heap.

The parent loads a large read-only dataset (ROWS: slotted rows with a list
each), listens on a loopback port and forks --workers workers that accept
connections in turn.  Every request builds a small cycle (a Request object,
its dict and a list of slotted parts pointing back at it), as real request
handling often does, keeps it in an LRU cache of --cache requests (so some
objects live long enough to reach the oldest generation, and full
collections happen), and answers one line.  With --touch-rows a request also
reads a random row of the dataset: its reference count changes, which
copies that page whatever the collector does (reference counting's own
copy-on-write, the same in every mode).  How cyclic garbage is collected
is the --gc mode:

  builtin   the built-in collector, automatic (default thresholds)
  freeze    gc.freeze() in the parent before forking (the usual remedy:
            shared pages stay shared, frozen garbage is never collected)
  cyclegc   cyclegc runs the collections: installed as the process's
            collector if this cyclegc has install(), otherwise automatic
            collection is off and each worker runs cyclegc.collect()
            every --collect-every requests; in forked workers full
            collections are fork-friendly (they only read survivors)

    python examples/prefork_server.py --gc cyclegc --port 8765 --workers 4

It prints "ready <port> <pid> <pid> ..." once the workers are up and runs
until it gets SIGTERM.  benchmarks/prefork_memory.py drives it and reports
each worker's USS/PSS over time.
"""
import argparse
import gc
import os
import signal
import socket
import sys
from collections import OrderedDict

ROWS = None


class Row:
    __slots__ = ("id", "name", "tags")

    def __init__(self, i):
        self.id = i
        self.name = f"row-{i % 1000}"
        self.tags = [i, i % 7]


class Part:
    __slots__ = ("owner", "value")

    def __init__(self, owner, value):
        self.owner = owner
        self.value = value


class Request:
    def __init__(self, payload):
        self.payload = payload
        self.parts = [Part(self, i) for i in range(4)]   # a cycle through the parts
        self.meta = {"request": self}                     # and through a dict


CACHE = OrderedDict()


def handle(conn, cache_size, touch_rows):
    data = conn.recv(256)
    request = Request(data)
    CACHE[data] = request
    if len(CACHE) > cache_size:
        CACHE.popitem(last=False)
    row_id = ROWS[hash(data) % len(ROWS)].id if touch_rows else -1
    conn.sendall(b"%d %d\n" % (row_id, len(request.parts)))
    conn.close()


def worker(listener, mode, collect_every, cache_size, touch_rows):
    collect = None
    if mode == "cyclegc":
        import cyclegc
        if hasattr(cyclegc, "install"):
            cyclegc.install()
        else:
            gc.disable()
            collect = cyclegc.collect
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    served = 0
    while True:
        conn, _ = listener.accept()
        handle(conn, cache_size, touch_rows)
        served += 1
        if collect is not None and served % collect_every == 0:
            collect()


def main(argv=None):
    global ROWS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gc", choices=("builtin", "freeze", "cyclegc"), default="builtin")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--cache", type=int, default=5000, help="requests kept in the LRU cache")
    ap.add_argument("--touch-rows", action="store_true",
                    help="each request reads a random row (refcount copy-on-write)")
    ap.add_argument("--collect-every", type=int, default=2000,
                    help="cyclegc mode without install(): requests between collections")
    args = ap.parse_args(argv)

    if args.gc == "cyclegc":
        import cyclegc  # imported before forking, so workers inherit it
    ROWS = [Row(i) for i in range(args.rows)]
    if args.gc == "freeze":
        gc.freeze()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(128)
    pids = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            worker(listener, args.gc, args.collect_every, args.cache, args.touch_rows)
        pids.append(pid)
    print("ready", listener.getsockname()[1], *pids, flush=True)

    def stop(*_):
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        for pid in pids:
            os.waitpid(pid, 0)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
