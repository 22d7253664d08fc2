"""Running a program under a collector and recording its pauses.

``python -m cyclegc run`` captures here (this module) and reports in
:mod:`cyclegc.report`, the way memray splits capture and reporters.  The
program runs in this process, as ``python script.py`` or ``python -m
module`` would run it (``sys.argv``, ``__main__``, ``sys.path[0]``, an
absolute ``__file__``, tracebacks that start at the program's own code),
with cyclegc installed (or, for comparison, with the built-in collector),
and a ``gc.callbacks`` recorder times every collection from "start" to
"stop".  The same recorder serves both collectors, so their figures compare.

Services.  Every process forked from the program (the workers of a pre-fork
server, multiprocessing's fork workers) keeps recording: a worker appends
each of its collections to a file of its own, as it happens (a few dozen
bytes, one ``write``), so a worker that ends with ``os._exit`` or a signal
is still counted, and the parent reads them all when it reports.  A SIGTERM
the program does not handle itself prints the summary and then ends the
process by SIGTERM, as it would have ended; SIGINT raises KeyboardInterrupt
as usual, and after the summary the process ends by SIGINT as Python does.
"""
import gc as _gc
import os
import runpy
import signal
import struct
import sys
import time

#: What each collection was, in bounded-pause mode (index = code; "" when
#: the mode is off).  young: an increment that collected the young
#: generation only; slice: one that also did a slice of the old-generation
#: round; truncated slice: a slice its cap cut short; overflow: the stop
#: that proves a structure too big for a stop, after rounds kept being
#: truncated (an oversized slice, or a complete collection when forced; the
#: one stop not bounded); full: a complete collection standing for a round (fork-friendly
#: mode); collect(): an explicit collection (gc.collect(), not an increment).
KINDS = ("", "young", "slice", "truncated slice", "overflow", "full", "collect()")
YOUNG, SLICE, TRUNCATED, OVERFLOW, FULL, EXPLICIT = range(1, 7)

# One collection: start (s since the run started), generation, duration (s),
# collected, uncollectable, candidates (-1: not reported), kind.
_RECORD = struct.Struct("<dbdqqqb")
# A worker's file starts with: pid, parent pid, fork time (s since the run started).
_HEADER = struct.Struct("<qqd")


class Process:
    """The collections of one process of the run."""

    def __init__(self, pid, parent_pid, started_s, records, role):
        self.pid = pid
        self.parent_pid = parent_pid     # None for the main process
        self.started_s = started_s       # fork time, s since the run started
        self.records = records           # [(t_s, gen, duration, collected, uncollectable, candidates, kind)]
        self.role = role                 # "main" or "worker"


class Recorder:
    """Times every collection through gc.callbacks (start -> stop).  With
    `core_durations`, the duration cyclegc's core measured itself is used
    when the callback info carries it (under insight, whose examination of
    the garbage runs inside the callbacks).  With `bounded`, each record
    says what kind of stop it was (KINDS).  With `worker_dir`, processes
    forked from this one record into a file each in that directory."""

    def __init__(self, core_durations=False, bounded=False, worker_dir=None):
        self.records = []
        self._start = None
        self.origin = time.perf_counter()
        self.wall_started = time.time()
        self.ended = None
        self.core_durations = core_durations
        self.bounded = bounded
        self.insight = None       # the insight Report, with insight=True
        self.pid = self.main_pid = os.getpid()
        self.parent_pid = None
        self.forked_at = 0.0
        self.worker_dir = worker_dir
        self.active = False
        self._fd = None
        self._inc = self._incremental() if bounded else None
        # The longest automatic stop of this process, with what the core
        # says it spent it on (incremental_stats()["last_stop"]).
        self.longest_cause = None
        if worker_dir is not None and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    @staticmethod
    def _incremental():
        from .install import incremental_stats
        return incremental_stats()

    def last_incremental(self):
        """incremental_stats() now (bounded mode), else None."""
        return self._incremental() if self.bounded else None

    @property
    def is_worker(self):
        return self.pid != self.main_pid

    def __call__(self, phase, info):
        now = time.perf_counter()
        if phase == "start":
            self._start = now
            return
        if self._start is None:
            return
        duration = now - self._start
        if self.core_durations and "duration" in info:
            duration = info["duration"]
        kind = self._kind(info["generation"]) if self._inc is not None else 0
        if kind not in (0, EXPLICIT) and (self.longest_cause is None
                                          or duration > self.longest_cause["duration_s"]):
            self.longest_cause = dict(self._inc["last_stop"], duration_s=duration)
        record = (self._start - self.origin, info["generation"], duration, info["collected"],
                  info["uncollectable"], info.get("candidates", -1), kind)
        self._start = None
        if self.is_worker:
            self._write(record)
        else:
            self.records.append(record)

    def _kind(self, generation):
        new = self._incremental()
        old, self._inc = self._inc, new
        if new["increments"] == old["increments"]:
            return EXPLICIT
        if new["overflow_collections"] != old["overflow_collections"]:
            return OVERFLOW
        if new["old_increments"] != old["old_increments"]:
            return TRUNCATED if new["truncated_slices"] != old["truncated_slices"] else SLICE
        return FULL if generation == 2 else YOUNG

    # -- forked workers ---------------------------------------------------
    def _after_fork(self):
        if not self.active or self.worker_dir is None:
            return
        self.parent_pid, self.pid = self.pid, os.getpid()
        self.forked_at = time.perf_counter() - self.origin
        self.records = []
        self._start = None
        self._fd = None           # opened at the first collection: an exec'd child writes nothing
        if self.bounded:
            self._inc = self._incremental()
            self.longest_cause = None

    def _write(self, record):
        if self.worker_dir is None:
            return
        try:
            if self._fd is None:
                # pid and fork time: a reused pid gets a file of its own
                path = os.path.join(self.worker_dir, f"{self.pid}-{time.monotonic_ns()}.rec")
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(self._fd, _HEADER.pack(self.pid, self.parent_pid, self.forked_at))
            os.write(self._fd, _RECORD.pack(*record))
        except OSError:           # the run is over (its directory is gone): stop recording
            self.worker_dir = None

    def workers(self):
        """The processes forked from the program, as recorded so far."""
        out = []
        directory = self.worker_dir
        if directory is None or self.is_worker or not os.path.isdir(directory):
            return out
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".rec"):
                continue
            try:
                with open(os.path.join(directory, name), "rb") as f:
                    blob = f.read()
            except OSError:  # pragma: no cover
                continue
            if len(blob) < _HEADER.size:
                continue
            pid, ppid, forked_at = _HEADER.unpack_from(blob)
            n = (len(blob) - _HEADER.size) // _RECORD.size
            records = [_RECORD.unpack_from(blob, _HEADER.size + i * _RECORD.size)
                       for i in range(n)]
            out.append(Process(pid, ppid, forked_at, records, "worker"))
        out.sort(key=lambda p: (p.started_s, p.pid))
        return out

    def processes(self):
        return [Process(self.main_pid, None, 0.0, list(self.records), "main"), *self.workers()]

    def finish(self):
        if self.ended is None:
            self.ended = time.perf_counter()

    def wall_seconds(self):
        return (self.ended or time.perf_counter()) - self.origin


def mode_name(collector, fork_friendly=None, max_pause_ms=None):
    """The collector mode a run is in, as the summary's header names it."""
    if collector == "builtin":
        return "built-in"
    parts = []
    if max_pause_ms is not None:
        parts.append(f"bounded (max-pause-ms {max_pause_ms:g})")
    if fork_friendly:
        parts.append("fork-friendly")
    return ", ".join(parts) or "plain"


class ProgramNotFound(Exception):
    """`run -m MODULE` for a module Python would not run (the message is
    Python's own)."""


def check_module(name):
    """Raise ProgramNotFound with Python's message if `python -m name`
    would not find a module to run (before anything runs)."""
    try:
        runpy._get_module_details(name)
    except ImportError as exc:
        raise ProgramNotFound(str(exc)) from None
    except Exception as exc:   # an error importing a parent package: the program's own
        raise ProgramNotFound(f"Error while finding module specification for {name!r} "
                              f"({type(exc).__name__}: {exc})") from None


class Run:
    """One run of a program under a collector.

        run = Run(target, args, ...); status = run.execute(); run.stop()

    `on_terminate(signum)`, if given, is called from the SIGTERM handler
    this run installs (when the program has none of its own), in the main
    process, before the process ends by that signal.  `report_signal`: a
    signal number whose handler calls `on_report()` (a live summary)."""

    def __init__(self, target, args, *, module=False, collector="cyclegc", fork_friendly=None,
                 max_pause_ms=None, insight=False, insight_frames=1, workers=True,
                 on_terminate=None, report_signal=None, on_report=None):
        self.target, self.args, self.module = target, list(args), module
        self.collector = collector
        self.fork_friendly = fork_friendly
        self.max_pause_ms = max_pause_ms
        self.insight = insight
        self.insight_frames = insight_frames
        self.want_workers = workers
        self.on_terminate = on_terminate
        self.report_signal = report_signal
        self.on_report = on_report
        self.mode = mode_name(collector, fork_friendly, max_pause_ms)
        self.recorder = None
        self.session = None
        self.status = None
        self.stopped = False
        self._dir = None
        self._saved_handlers = {}

    # -- around the program ----------------------------------------------
    def start(self):
        if self.collector == "cyclegc":
            import cyclegc
            cyclegc.install(fork_friendly=self.fork_friendly, max_pause_ms=self.max_pause_ms)
        if self.want_workers and hasattr(os, "fork"):
            import tempfile
            self._dir = tempfile.mkdtemp(prefix="cyclegc-run-")
        self.recorder = Recorder(core_durations=self.insight,
                                 bounded=self.max_pause_ms is not None and self.collector == "cyclegc",
                                 worker_dir=self._dir)
        if self.insight:
            # Started last before the recorder, with nothing allocated between
            # the two: both see the same collections.
            from .insight import Session
            self.session = Session(frames=self.insight_frames).start()
        self.recorder.active = True
        if self.recorder.bounded:
            self.recorder._inc = self.recorder._incremental()   # the baseline, as late as can be
        _gc.callbacks.append(self.recorder)
        self._install_handlers()
        return self

    def _install_handlers(self):
        if self.on_terminate is not None and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            self._saved_handlers[signal.SIGTERM] = signal.SIG_DFL
            signal.signal(signal.SIGTERM, self._terminated)
        if self.report_signal is not None and self.on_report is not None:
            self._saved_handlers[self.report_signal] = signal.getsignal(self.report_signal)
            signal.signal(self.report_signal, self._report)

    def _terminated(self, signum, frame):
        if self.recorder is not None and not self.recorder.is_worker and not self.stopped:
            self.on_terminate(signum)
        die_by_signal(signum)

    def _report(self, signum, frame):
        if self.is_worker:
            die_by_signal(signum)       # what the signal does to a worker without cyclegc
        if self.recorder is not None and not self.stopped:
            self.on_report()

    @property
    def is_worker(self):
        """True in a process forked from the program: it records, and
        neither reports nor cleans up (the main process does)."""
        return self.recorder is not None and self.recorder.is_worker

    def execute(self):
        """Run the program to its end; returns its exit status, negative
        (-signal) if it ended by a signal it did not handle (KeyboardInterrupt)."""
        if self.recorder is None:
            self.start()
        status = 0
        # The program's globals, kept (as `python script.py` keeps them until
        # shutdown) so insight's last collection does not report them.
        program_globals = None
        try:
            if self.module:
                sys.argv = [self.target, *self.args]
                program_globals = runpy.run_module(self.target, run_name="__main__",
                                                   alter_sys=True)
            else:
                sys.argv = [self.target, *self.args]
                path = os.path.abspath(self.target)
                sys.path[0] = os.path.dirname(path)
                program_globals = runpy.run_path(path, run_name="__main__")
        except SystemExit as exc:
            status = _exit_status(exc.code)
        except KeyboardInterrupt as exc:
            _print_uncaught(exc)
            status = -signal.SIGINT
        except BaseException as exc:
            _print_uncaught(exc)
            status = 1
        finally:
            self._program_globals = program_globals
            del program_globals
        self.status = status
        return status

    def stop(self):
        """Stop recording (idempotent): the figures are final after it."""
        if self.stopped or self.recorder is None:
            return
        self.stopped = True
        recorder = self.recorder
        if self.is_worker:
            # a forked worker that returned or called sys.exit(): its records
            # are in its file already
            if recorder in _gc.callbacks:
                _gc.callbacks.remove(recorder)
            return
        recorder.finish()
        recorder.active = False
        if recorder in _gc.callbacks:
            _gc.callbacks.remove(recorder)
        for signum, handler in self._saved_handlers.items():
            if signal.getsignal(signum) in (self._terminated, self._report):
                signal.signal(signum, handler)
        if self.session is not None:
            self.session.stop(collect=True)
            recorder.insight = self.session.report()
        self._program_globals = None

    def cleanup(self):
        if self._dir is not None and not self.is_worker:
            import shutil
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
            if self.recorder is not None:
                self.recorder.worker_dir = None

    # -- results ----------------------------------------------------------
    def figures(self, argv=None):
        """The run's figures (see cyclegc.report.run_figures)."""
        from .report import run_figures
        return run_figures(self, argv=argv)


def run_program(target, args, *, module=False, collector="cyclegc", fork_friendly=None,
                max_pause_ms=None, insight=False, insight_frames=1):
    """Run `target` (a script path, or a module name if `module`) with
    `args` as sys.argv[1:].  Returns (exit status, Recorder).  With
    `insight`, cyclegc.insight observes every collection, a last full
    collection runs at the end, and ``recorder.insight`` is its Report."""
    run = Run(target, args, module=module, collector=collector, fork_friendly=fork_friendly,
              max_pause_ms=max_pause_ms, insight=insight, insight_frames=insight_frames,
              workers=False)
    status = run.execute()
    run.stop()
    return status, run.recorder


def die_by_signal(signum):
    """End this process by `signum` with its default action, as the program
    would have ended without cyclegc (a shell sees 128 + signum)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # pragma: no cover
        pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    time.sleep(1)                  # pragma: no cover - the signal is on its way
    os._exit(128 + signum)         # pragma: no cover


_HIDDEN = (os.path.abspath(__file__), "<frozen runpy>", getattr(runpy, "__file__", None))


def _program_traceback(tb):
    """The traceback from the program's first frame: without this module's
    and runpy's frames, as `python script.py` shows it."""
    while tb is not None and tb.tb_frame.f_code.co_filename in _HIDDEN:
        tb = tb.tb_next
    return tb


def _print_uncaught(exc):
    tb = _program_traceback(exc.__traceback__)
    exc.__traceback__ = tb
    try:
        sys.excepthook(type(exc), exc, tb)
    except Exception:  # pragma: no cover - a broken excepthook: Python falls back too
        import traceback
        traceback.print_exception(type(exc), exc, tb)


def _exit_status(code):
    """The exit status Python gives SystemExit(code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
