#!/usr/bin/env python3
"""Per-worker USS/PSS of a pre-fork server, by garbage-collection mode.

Starts examples/prefork_server.py once per mode (builtin, freeze, cyclegc),
sends --requests requests to it over loopback (bounded in count and by
--max-seconds), and samples every worker's USS (private memory) and PSS
(proportional share) from /proc/<pid>/smaps_rollup as the load runs:
--samples times, at even request counts or even times, whichever comes
first.  Prints, per mode, the samples over time (mean over workers).  What
the workers leave uncollected is not visible from outside: in "freeze" mode
it shows only as USS growth.

    python benchmarks/prefork_memory.py [--rows 200000] [--workers 4]
        [--requests 40000] [--json FILE]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, os.pardir, "examples", "prefork_server.py")


def smaps(pid):
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1])
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return uss / 1024, fields.get("Pss", 0) / 1024


def request(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(os.urandom(16).hex().encode())
        s.recv(64)


def run_mode(mode, args):
    proc = subprocess.Popen([sys.executable, SERVER, "--gc", mode, "--rows", str(args.rows),
                             "--workers", str(args.workers)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError(f"server did not start in mode {mode}")
        port, pids = int(line[1]), [int(p) for p in line[2:]]
        samples = []
        step = max(1, args.requests // args.samples)
        start = time.monotonic()
        deadline = start + args.max_seconds
        every = args.max_seconds / args.samples   # whichever comes first
        last = None
        for i in range(args.requests + 1):
            now = time.monotonic()
            if i % step == 0 or now - last >= every or i == args.requests or now > deadline:
                figures = [smaps(pid) for pid in pids]
                samples.append({"requests": i, "seconds": round(now - start, 1),
                                "uss_mb": statistics.mean(u for u, _ in figures),
                                "pss_mb": statistics.mean(p for _, p in figures)})
                last = now
            if i < args.requests:
                request(port)
            if now > deadline:
                break
        return {"mode": mode, "workers": len(pids), "samples": samples}
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--requests", type=int, default=40_000)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--modes", default="builtin,freeze,cyclegc")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    results = [run_mode(m, args) for m in args.modes.split(",")]
    print(f"pre-fork server, Python {sys.version.split()[0]}, {args.rows} rows, "
          f"{args.workers} workers; mean per worker, MB")
    for r in results:
        print(f"  {r['mode']}:")
        for s in r["samples"]:
            print(f"    after {s['requests']:>7} requests ({s.get('seconds', 0):5.0f} s)  "
                  f"USS {s['uss_mb']:7.1f}  PSS {s['pss_mb']:7.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "rows": args.rows, "results": results}, f,
                      indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
