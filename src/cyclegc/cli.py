"""python -m cyclegc: the command line.

  run     run a program with cyclegc as its collector, summarize its pauses
  report  a run's JSON (run --json) as text, or as HTML with its pause timelines
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


def _signal_number(text):
    import signal
    name = text.strip().upper()
    try:
        if name.isdigit():
            signum = signal.Signals(int(name))
        else:
            signum = signal.Signals[name if name.startswith("SIG") else "SIG" + name]
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(f"not a signal: {text!r} (e.g. USR1)") from None
    if signum in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM, signal.SIGINT):
        raise argparse.ArgumentTypeError(f"{signum.name} stops the program; use another "
                                         f"signal, e.g. USR1")
    return signum


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _check_output(parser, option, path):
    """The absolute path of an output file, checked before the program runs
    (a bad path would otherwise be found only after it ran)."""
    import os

    if path is None:
        return None
    full = os.path.abspath(path)
    directory = os.path.dirname(full)
    if os.path.isdir(full):
        parser.error(f"run: {option} {path}: is a directory")
    if not os.path.isdir(directory):
        parser.error(f"run: {option} {path}: no such directory: {directory}")
    if not os.access(directory, os.W_OK | os.X_OK) or (
            os.path.exists(full) and not os.access(full, os.W_OK)):
        parser.error(f"run: {option} {path}: not writable")
    return full


def _write_output(option, path, write):
    """Write one output file; a failure is reported and never changes the
    program's exit status."""
    try:
        write(path)
    except OSError as exc:
        print(f"python -m cyclegc run: could not write {option} {path}: "
              f"{exc.strerror or exc}", file=sys.stderr)


def _cmd_run(args, parser, argv=None):
    import os

    from .runner import ProgramNotFound, check_module

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
    if args.repeat is not None and not args.compare:
        parser.error("run: --repeat goes with --compare")
    args.json = _check_output(parser, "--json", args.json)
    args.insight_json = _check_output(parser, "--insight-json", args.insight_json)
    args.insight_html = _check_output(parser, "--insight-html", args.insight_html)
    if args.module is not None:
        try:
            check_module(target)
        except ProgramNotFound as exc:
            # what `python -m no_such_module` prints, and its status
            print(f"{sys.executable}: {exc}", file=sys.stderr)
            return 1

    if args.compare:
        return _compare(args, target, rest)

    from .runner import Run, die_by_signal

    def finish(partial=False):
        figures = run.figures(argv)
        if not args.quiet:
            print(report.text(figures, partial=partial), file=sys.stderr)
        if not partial and run.recorder.insight is not None and (args.insight or not args.quiet):
            # --quiet drops the run summary only: the table is what --insight asks for
            run.recorder.insight.print(file=sys.stderr)
        if args.json:
            _write_output("--json", args.json, lambda p: report.write_json(p, figures))
        if not partial and args.insight_json:
            _write_output("--insight-json", args.insight_json, run.recorder.insight.write_json)
        if not partial and args.insight_html:
            _write_output("--insight-html", args.insight_html, run.recorder.insight.write_html)
        sys.stderr.flush()

    def terminated(signum):
        run.status = -signum
        run.stop()
        _report_safely(finish)
        run.cleanup()

    from . import report
    run = Run(target, rest, module=args.module is not None, collector=args.collector,
              fork_friendly=True if args.fork_friendly else None,
              max_pause_ms=args.max_pause_ms, insight=bool(insight),
              on_terminate=terminated, report_signal=args.report_signal,
              on_report=lambda: _report_safely(finish, True))
    run.start()
    try:
        status = run.execute()
        run.stop()
        if not run.is_worker:
            # (a forked worker that returned or called sys.exit() has its
            # collections in the run's files: the main process reports)
            _report_safely(finish)
    finally:
        run.cleanup()
    if status < 0:
        die_by_signal(-status)     # KeyboardInterrupt: end as Python does, by SIGINT
    return status


def _report_safely(finish, *args):
    """Report; whatever goes wrong there, the program's exit status stays."""
    try:
        finish(*args)
    except Exception:
        import traceback
        traceback.print_exc()
        print("python -m cyclegc run: the report failed (above); the program's exit status "
              "is kept", file=sys.stderr)


def _compare(args, target, rest):
    """--compare [--repeat N]: the program once per collector (N times
    each, alternating), each run's output labelled, then the figures side
    by side (medians and ranges with --repeat)."""
    import os
    import subprocess
    import tempfile

    from . import report

    repeat = args.repeat or 1
    runs = {"builtin": [], "cyclegc": []}
    status = 0
    labels = {"builtin": "built-in collector", "cyclegc": "cyclegc"}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            for collector in ("builtin", "cyclegc"):
                out = os.path.join(tmp, f"{collector}-{i}.json")
                cmd = [sys.executable, "-m", "cyclegc", "run", "--collector", collector,
                       "--json", out, "--quiet"]
                if args.fork_friendly:
                    cmd.append("--fork-friendly")
                if args.max_pause_ms is not None:
                    cmd += ["--max-pause-ms", str(args.max_pause_ms)]
                cmd += ["-m", target] if args.module else [target]
                run_label = f" {i + 1}/{repeat}" if repeat > 1 else ""
                print(f"--- cyclegc run --compare: run{run_label} with the {labels[collector]} ---",
                      flush=True)
                code = subprocess.call(cmd + rest)
                if code and not status:
                    status = code
                try:
                    with open(out) as f:
                        runs[collector].append(json.load(f))
                except (OSError, ValueError):
                    print(f"python -m cyclegc run --compare: the run with the "
                          f"{labels[collector]} left no figures (exit status {code})",
                          file=sys.stderr)
    if not runs["builtin"] or not runs["cyclegc"]:
        return status or 1
    if args.repeat is None:
        print(report.side_by_side(runs["builtin"][0], runs["cyclegc"][0]), file=sys.stderr)
        doc = {"builtin": runs["builtin"][0], "cyclegc": runs["cyclegc"][0]}
    else:
        print(report.repeat_table(runs), file=sys.stderr)
        doc = report.repeat_figures(runs)
    if args.json:
        _write_output("--json", args.json, lambda p: report.write_json(p, doc))
    return status


def _cmd_report(args, parser):
    from . import report
    try:
        doc = report.load(args.run_json)
    except OSError as exc:
        parser.error(f"report: {args.run_json}: {exc.strerror or exc}")
    except ValueError as exc:
        parser.error(f"report: {exc}")
    if args.html:
        path = _check_output(parser, "--html", args.html)
        report.write_html(path, doc)
        print(f"wrote {args.html}", file=sys.stderr)
    else:
        print(report.text(doc))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cyclegc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__
    parser.add_argument("--version", action="version", version=f"cyclegc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a program with cyclegc as its collector",
                       description="Run a Python program as `python script.py ARGS` or "
                                   "`python -m MODULE ARGS` would, with cyclegc running its "
                                   "collections, and print a summary of them at exit, also "
                                   "when it is stopped by SIGTERM or SIGINT (its exit status "
                                   "stays its own). Processes it forks (a pre-fork server's "
                                   "workers) are counted too, each and in total.")
    p.add_argument("-m", dest="module", metavar="MODULE",
                   help="run a library module as a script (like python -m)")
    p.add_argument("--json", metavar="FILE",
                   help="also write the run as JSON: the summary, every collection, the run's "
                        "facts and each process (schema cyclegc-run/1; "
                        "python -m cyclegc report FILE --html PAGE draws it)")
    p.add_argument("--compare", action="store_true",
                   help="run the program twice, with the built-in collector and with "
                        "cyclegc, and print both summaries side by side")
    p.add_argument("--repeat", type=_positive_int, metavar="N",
                   help="with --compare: N runs with each collector, alternating, and the "
                        "median and range of each figure")
    p.add_argument("--report-signal", type=_signal_number, metavar="SIGNAL",
                   help="print the summary so far (and rewrite --json) whenever the program "
                        "gets SIGNAL, e.g. USR1 (kill -USR1 PID)")
    p.add_argument("--fork-friendly", action="store_true",
                   help="full collections only read the objects that survive them")
    p.add_argument("--max-pause-ms", type=_positive_ms, metavar="MS",
                   help="bounded pauses: every automatic collection stops the program for "
                        "at most about MS milliseconds (cyclegc.install(max_pause_ms=MS))")
    p.add_argument("--collector", choices=("cyclegc", "builtin"), default="cyclegc",
                   help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true",
                   help="no run summary on stderr (the table --insight asks for is still "
                        "printed; --insight-json/--insight-html alone print nothing)")
    p.add_argument("--insight", action="store_true",
                   help="group each collection's garbage into cycles and rank the allocation "
                        "sites that made them (tracemalloc; slower)")
    p.add_argument("--insight-json", metavar="FILE", help="write the insight report as JSON "
                   "(implies --insight)")
    p.add_argument("--insight-html", metavar="FILE", help="write the insight report as one "
                   "HTML page (implies --insight)")
    p.add_argument("target", nargs=argparse.REMAINDER, help="script.py [ARGS...]")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("report", help="show a run's JSON (run --json FILE) as text or HTML",
                       description="Show the JSON of a run (python -m cyclegc run --json "
                                   "FILE) as its text summary, or with --html as one HTML "
                                   "page with each process's pause timeline.")
    p.add_argument("run_json", metavar="RUN.json")
    p.add_argument("--html", metavar="FILE", help="write the HTML page to FILE")
    p.set_defaults(func=lambda args: _cmd_report(args, parser))

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
        return _cmd_run(args, parser, [sys.executable, "-m", "cyclegc", *argv])
    args = parser.parse_args(argv)
    return args.func(args)


_RUN_OPTIONS_WITH_VALUE = {"--json", "--collector", "--insight-json", "--insight-html",
                           "--max-pause-ms", "--repeat", "--report-signal"}


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
