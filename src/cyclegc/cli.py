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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cyclegc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="show the interpreter's collector state")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_info)

    sub.add_parser("bench", add_help=False,
                   help="time full collections against the built-in "
                        "(python -m cyclegc bench --help for its options)")

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        # The benchmark owns its options (shared with benchmarks/).
        from . import bench
        return bench.main(argv[1:])
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
