#!/usr/bin/env python3
"""A process forked while a bounded-pause round is in progress (found with
the gunicorn program of run.py, pause2 mode).

    .realworld/venv-3.12/bin/python benchmarks/realworld/fork_mid_round.py [--no-fork]

install(max_pause_ms=2), a 300k-row catalogue built with automatic
collection on, then requests (catalog.respond with its LRU) until a round
of the old generation is running; then fork, and the child serves requests
for --seconds.  Printed: the phase and round count before, and in the child
(fork-friendly on, "auto") how many increments did old-generation work and
whether a round completed.  Seen on 3.12.1 (2026-12-06): the child goes on
with the inherited round (slices, list moves writing to shared pages)
instead of switching to complete read-only collections; in one run it
completed no round in 30 s (758 slices; with --no-fork the same process
completed one), in another the round ended after 63 slices.  In gunicorn's
workers (75 s of load) it completed none: 160-234 slices per worker.  cg_inc_plan (incremental.c) turns rounds into
complete fork-friendly collections only when the phase is IDLE.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps"))

import cyclegc  # noqa: E402

import catalog  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--no-fork", action="store_true")
    args = ap.parse_args()
    cyclegc.install(max_pause_ms=2)
    rows = catalog.build(300_000)
    cache = catalog.LRU(2000)
    i = 0
    while cyclegc.incremental_stats()["phase"] == "idle" and i < 2_000_000:
        catalog.respond(rows, i, cache)
        i += 1
    st = cyclegc.incremental_stats()
    print(f"before fork: phase {st['phase']}, rounds {st['rounds']} ({i} requests to get a round going)")
    pid = 0 if args.no_fork else os.fork()
    if pid == 0:
        s0 = cyclegc.incremental_stats()
        t0, n = time.time(), 0
        while time.time() - t0 < args.seconds:
            catalog.respond(rows, n, cache)
            n += 1
        s = cyclegc.incremental_stats()
        print(f"{'same process' if args.no_fork else 'child'}: fork-friendly {cyclegc.is_fork_friendly()}, "
              f"{n} requests; phase {s['phase']}, rounds {s0['rounds']} -> {s['rounds']}, "
              f"increments {s['increments'] - s0['increments']}, "
              f"with old-generation work {s['old_increments'] - s0['old_increments']}")
        if not args.no_fork:
            os._exit(0)
        return
    os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
