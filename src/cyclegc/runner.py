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
    """Times every collection through gc.callbacks (start -> stop)."""

    def __init__(self):
        self.pauses = []          # (generation, seconds, collected, uncollectable)
        self._start = None
        self.started = time.perf_counter()
        self.ended = None

    def __call__(self, phase, info):
        now = time.perf_counter()
        if phase == "start":
            self._start = now
        elif self._start is not None:
            self.pauses.append((info["generation"], now - self._start,
                                info["collected"], info["uncollectable"]))
            self._start = None

    def finish(self):
        self.ended = time.perf_counter()

    def figures(self, collector):
        from .report import summarize
        return summarize(collector, self.pauses, (self.ended or time.perf_counter()) - self.started)


def run_program(target, args, *, module=False, collector="cyclegc", fork_friendly=None):
    """Run `target` (a script path, or a module name if `module`) with
    `args` as sys.argv[1:].  Returns (exit status, Recorder)."""
    if collector == "cyclegc":
        import cyclegc
        cyclegc.install(fork_friendly=fork_friendly)
    recorder = Recorder()
    _gc.callbacks.append(recorder)
    status = 0
    try:
        if module:
            sys.argv = [target, *args]
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            sys.argv = [target, *args]
            sys.path[0] = os.path.dirname(os.path.abspath(target))
            runpy.run_path(target, run_name="__main__")
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
    return status, recorder


def _exit_status(code):
    """The exit status Python gives SystemExit(code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
