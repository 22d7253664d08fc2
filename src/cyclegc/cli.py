"""python -m cyclegc: the command line.

  info    what cyclegc sees of this interpreter's collector
  bench   full collections timed against the built-in (quick)
"""
import argparse
import json
import platform
import sys


def _cmd_info(args):
    import cyclegc
    from ._support import SUPPORTED_TEXT

    counts = cyclegc.get_count()
    info = {
        "cyclegc": cyclegc.__version__,
        "python": platform.python_version(),
        "supported": SUPPORTED_TEXT,
        "enabled": cyclegc.isenabled(),
        "thresholds": cyclegc.get_threshold(),
        "counts": counts,
        "tracked_per_generation": [len(cyclegc.get_objects(g)) for g in range(3)],
        "frozen": cyclegc.get_freeze_count(),
    }
    if args.json:
        print(json.dumps(info))
    else:
        for key, value in info.items():
            print(f"{key:24} {value}")
    return 0


def _cmd_bench(args):
    from .bench import compare_full_collections

    rows = []
    print(f"full collections, Python {platform.python_version()}, "
          f"median of {args.repeat} alternating runs")
    print(f"{'objects':>10} {'cyclegc ms':>22} {'built-in ms':>22} {'ratio':>6}")
    for size in args.sizes:
        r = compare_full_collections(size, repeat=args.repeat, garbage_fraction=args.garbage)
        rows.append(r)
        c, b = r["cyclegc"], r["builtin"]
        print(f"{r['objects']:>10} "
              f"{c['median']*1e3:8.2f} ({c['min']*1e3:.1f}-{c['max']*1e3:.1f}) "
              f"{b['median']*1e3:8.2f} ({b['min']*1e3:.1f}-{b['max']*1e3:.1f}) "
              f"{r['ratio']:6.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": platform.python_version(), "results": rows}, f, indent=2)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cyclegc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="show the interpreter's collector state")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("bench", help="time full collections against the built-in")
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--garbage", type=float, default=0.0,
                   help="fraction of the heap made cyclic garbage before each collection")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.set_defaults(func=_cmd_bench)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
