"""Running a program under a collector and recording its pauses.

``python -m cyclegc run`` captures here (this module) and reports in
:mod:`cyclegc.report`, the way memray splits capture and reporters.  The
program runs in this process, as ``python script.py`` or ``python -m
module`` would run it (``sys.argv``, ``__main__``, ``sys.path[0]``), with
cyclegc installed (or, for comparison, with the built-in collector), and a
``gc.callbacks`` recorder times every collection from "start" to "stop".
The same recorder serves both collectors, so their figures compare.
"""
import gc as _gc
import os
import runpy
import signal
import sys
import time
import traceback


class Recorder:
    """Times every collection through gc.callbacks (start -> stop).  With
    `core_durations`, the duration cyclegc's core measured itself is used
    when the callback info carries it (under insight, whose examination of
    the garbage runs inside the callbacks)."""

    def __init__(self, core_durations=False):
        self.pauses = []          # (generation, seconds, collected, uncollectable)
        self._start = None
        self.started = time.perf_counter()
        self.ended = None
        self.core_durations = core_durations
        self.insight = None       # the insight Report, with run_program(insight=True)

    def __call__(self, phase, info):
        now = time.perf_counter()
        if phase == "start":
            self._start = now
        elif self._start is not None:
            duration = now - self._start
            if self.core_durations and "duration" in info:
                duration = info["duration"]
            self.pauses.append((info["generation"], duration,
                                info["collected"], info["uncollectable"]))
            self._start = None

    def finish(self):
        self.ended = time.perf_counter()

    def figures(self, collector):
        from .report import summarize
        return summarize(collector, self.pauses, (self.ended or time.perf_counter()) - self.started)


def run_program(target, args, *, module=False, collector="cyclegc", fork_friendly=None,
                max_pause_ms=None, insight=False, insight_frames=1):
    """Run `target` (a script path, or a module name if `module`) with
    `args` as sys.argv[1:].  Returns (exit status, Recorder).  With
    `insight`, cyclegc.insight observes every collection, a last full
    collection runs at the end, and ``recorder.insight`` is its Report."""
    if collector == "cyclegc":
        import cyclegc
        cyclegc.install(fork_friendly=fork_friendly, max_pause_ms=max_pause_ms)
    session = None
    if insight:
        from .insight import Session
        session = Session(frames=insight_frames).start()
    recorder = Recorder(core_durations=insight)
    _gc.callbacks.append(recorder)
    status = 0
    # The program's globals, kept (as `python script.py` keeps them until
    # shutdown) so insight's last collection does not report them.
    program_globals = None
    try:
        if module:
            sys.argv = [target, *args]
            program_globals = runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            sys.argv = [target, *args]
            sys.path[0] = os.path.dirname(os.path.abspath(target))
            program_globals = runpy.run_path(target, run_name="__main__")
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        status = 128 + signal.SIGINT
    except BaseException:
        traceback.print_exc()
        status = 1
    finally:
        recorder.finish()
        if recorder in _gc.callbacks:
            _gc.callbacks.remove(recorder)
        if session is not None:
            session.stop(collect=True)
            recorder.insight = session.report()
        del program_globals
    return status, recorder


def _exit_status(code):
    """The exit status Python gives SystemExit(code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
