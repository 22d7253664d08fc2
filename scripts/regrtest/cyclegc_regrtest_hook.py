"""Imported at the start of every Python process of the regrtest_compare
environment (a .pth file): installs cyclegc as CYCLEGC_REGRTEST says and
records that it did.  Does nothing when CYCLEGC_REGRTEST is unset.

Modes: builtin (cyclegc imported, not installed), plain (install()),
pause2 (install(max_pause_ms=2)), fork (install(fork_friendly=True)),
immortal (as fork; benchmarks/realworld's gunicorn master also calls
cyclegc.immortalize_heap() once its application is loaded),
freeze (as builtin; benchmarks/realworld's gunicorn master calls
gc.freeze() before forking its workers).
Each process appends one JSON line to CYCLEGC_REGRTEST_DIR/<pid>.jsonl at
start, and one more at exit: whether cyclegc was installed then.
"""
import os

_MODE = os.environ.get("CYCLEGC_REGRTEST")


def _in_main_interpreter():
    """cyclegc collects for the main interpreter; a subinterpreter's site
    import (test_import, test_interpreters) leaves it alone."""
    for name in ("_interpreters", "_xxsubinterpreters"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        cur, main = mod.get_current(), mod.get_main()
        return (cur[0] if isinstance(cur, tuple) else cur) == (main[0] if isinstance(main, tuple) else main)
    return True


if _MODE and not _in_main_interpreter():
    _MODE = None


def _record(**fields):
    directory = os.environ.get("CYCLEGC_REGRTEST_DIR")
    if not directory:
        return
    # repr(), not json: json imports re into every process of the run, which
    # the tests of a run without the hook would not have.
    try:
        with open(os.path.join(directory, f"{os.getpid()}.jsonl"), "a", encoding="utf-8") as f:
            f.write(repr(fields) + "\n")
    except OSError:
        pass


if _MODE:
    import sys
    import cyclegc
    if _MODE == "plain":
        cyclegc.install()
    elif _MODE == "pause2":
        cyclegc.install(max_pause_ms=2)
    elif _MODE in ("fork", "immortal"):
        cyclegc.install(fork_friendly=True)
    _argv = list(getattr(sys, "orig_argv", sys.argv))
    _worker = any("worker" in a for a in _argv) and any("test" in a for a in _argv)
    _record(pid=os.getpid(), mode=_MODE, argv=_argv, worker=_worker,
            installed_at_start=cyclegc.installed() if _MODE not in ("builtin", "freeze") else False)

    def _at_exit(pid=os.getpid()):
        if os.getpid() == pid:
            learned = []
            if _MODE not in ("builtin", "freeze"):
                from cyclegc.install import trigger_stats
                learned = trigger_stats().get("learned_site_names", [])
            _record(pid=pid, mode=_MODE, argv=_argv, worker=_worker,
                    installed_at_exit=cyclegc.installed() if _MODE not in ("builtin", "freeze") else False,
                    learned_sites=learned)

    import atexit
    # Registered before cyclegc's own atexit uninstall() runs?  atexit runs
    # handlers last-in first-out: cyclegc registered its handler during
    # install() above, so ours (registered later) runs first.
    atexit.register(_at_exit)
