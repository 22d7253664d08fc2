"""python -m cyclegc: the command line.

  run     run a program with cyclegc as its collector, summarize its pauses
  info    what cyclegc sees of this interpreter's collector
  bench   cyclegc timed against the built-in collector
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


def _positive_ms(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive and finite: {text!r}")
    return value


def _cmd_run(args, parser):
    import os
    import subprocess
    import tempfile

    from . import report
    from .runner import run_program

    if args.module is None:
        if not args.target:
            parser.error("run: give a script to run, or -m MODULE")
        target, rest = args.target[0], args.target[1:]
        if not os.path.isfile(target):
            parser.error(f"run: can't open file {target!r}: no such file")
    else:
        target, rest = args.module, args.target

    insight = args.insight or args.insight_json or args.insight_html
    if insight and args.compare:
        parser.error("run: --insight cannot be combined with --compare")

    if args.compare:
        figures = {}
        with tempfile.TemporaryDirectory() as tmp:
            for collector in ("builtin", "cyclegc"):
                out = os.path.join(tmp, collector + ".json")
                cmd = [sys.executable, "-m", "cyclegc", "run", "--collector", collector,
                       "--json", out, "--quiet"]
                if args.fork_friendly:
                    cmd.append("--fork-friendly")
                if args.max_pause_ms is not None:
                    cmd += ["--max-pause-ms", str(args.max_pause_ms)]
                cmd += ["-m", target] if args.module else [target]
                status = subprocess.call(cmd + rest)
                with open(out) as f:
                    figures[collector] = json.load(f)
        print(report.side_by_side(figures["builtin"], figures["cyclegc"]), file=sys.stderr)
        if args.json:
            report.write_json(args.json, figures)
        return status

    status, recorder = run_program(target, rest, module=args.module is not None,
                                   collector=args.collector,
                                   fork_friendly=True if args.fork_friendly else None,
                                   max_pause_ms=args.max_pause_ms,
                                   insight=bool(insight))
    figures = recorder.figures(args.collector)
    figures["exit_status"] = status
    if not args.quiet:
        print(report.text(figures), file=sys.stderr)
        if recorder.insight is not None:
            recorder.insight.print(file=sys.stderr)
    if args.json:
        report.write_json(args.json, figures)
    if args.insight_json:
        recorder.insight.write_json(args.insight_json)
    if args.insight_html:
        recorder.insight.write_html(args.insight_html)
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cyclegc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__
    parser.add_argument("--version", action="version", version=f"cyclegc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a program with cyclegc as its collector",
                       description="Run a Python program as `python script.py ARGS` or "
                                   "`python -m MODULE ARGS` would, with cyclegc running its "
                                   "collections, and print a summary of them at exit.")
    p.add_argument("-m", dest="module", metavar="MODULE",
                   help="run a library module as a script (like python -m)")
    p.add_argument("--json", metavar="FILE", help="also write the summary as JSON")
    p.add_argument("--compare", action="store_true",
                   help="run the program twice, with the built-in collector and with "
                        "cyclegc, and print both summaries side by side")
    p.add_argument("--fork-friendly", action="store_true",
                   help="full collections only read the objects that survive them")
    p.add_argument("--max-pause-ms", type=_positive_ms, metavar="MS",
                   help="bounded pauses: every automatic collection stops the program for "
                        "at most about MS milliseconds (cyclegc.install(max_pause_ms=MS))")
    p.add_argument("--collector", choices=("cyclegc", "builtin"), default="cyclegc",
                   help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true", help="no summary on stderr")
    p.add_argument("--insight", action="store_true",
                   help="group each collection's garbage into cycles and rank the allocation "
                        "sites that made them (tracemalloc; slower)")
    p.add_argument("--insight-json", metavar="FILE", help="write the insight report as JSON "
                   "(implies --insight)")
    p.add_argument("--insight-html", metavar="FILE", help="write the insight report as one "
                   "HTML page (implies --insight)")
    p.add_argument("target", nargs=argparse.REMAINDER, help="script.py [ARGS...]")
    p.set_defaults(func=_cmd_run)

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
    if argv[:1] == ["run"]:
        # Everything from the script (or -m MODULE) on belongs to the program,
        # options like --help included, as with `python script.py --help`.
        options, program = _split_run_argv(argv[1:])
        args = parser.parse_args(["run", *options])
        if program[:1] == ["-m"]:
            if len(program) < 2:
                parser.error("run: -m needs a module name")
            args.module, args.target = program[1], program[2:]
        else:
            args.module, args.target = None, program
        return _cmd_run(args, parser)
    args = parser.parse_args(argv)
    return args.func(args)


_RUN_OPTIONS_WITH_VALUE = {"--json", "--collector", "--insight-json", "--insight-html",
                           "--max-pause-ms"}


def _split_run_argv(argv):
    """(run's own options, the program and its arguments)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-m" or not arg.startswith("-"):
            break
        if arg == "--":
            return argv[:i], argv[i + 1:]
        i += 2 if arg in _RUN_OPTIONS_WITH_VALUE else 1
    return argv[:i], argv[i:]


if __name__ == "__main__":
    sys.exit(main())
