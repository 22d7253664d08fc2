"""Imported at the start of every Python process of a realworld venv (a
.pth file, after scripts/regrtest/cyclegc_regrtest_hook.py, which installs
cyclegc as CYCLEGC_REGRTEST says: builtin, plain, pause2 or fork).

This module only measures.  When CYCLEGC_REALWORLD_DIR is set it times
every collection of the process with cyclegc.runner.Recorder (the
gc.callbacks start -> stop recorder of ``python -m cyclegc run``; same
recorder for both collectors) and, when the process exits normally (also a
forked gunicorn worker, which ends with sys.exit), writes one JSON file
``<dir>/<pid>.json``: collections, summed and longest stop, collections by
kind in bounded mode (overflow ones included), cyclegc's incremental_stats
and the process's peak RSS.  A process ended by os._exit or a signal
writes nothing (run.py counts the files it got).
"""
import os

_DIR = os.environ.get("CYCLEGC_REALWORLD_DIR")
_MODE = os.environ.get("CYCLEGC_REGRTEST") or "builtin"


def summarise(records, kinds=None):
    """Figures of one process from Recorder records (t, gen, duration,
    collected, uncollectable, candidates, kind)."""
    durations = [r[2] for r in records]
    by_gen = [0, 0, 0]
    for r in records:
        if 0 <= r[1] <= 2:
            by_gen[r[1]] += 1
    by_kind = {}
    if kinds:
        for r in records:
            name = kinds[r[6]] or "-"
            by_kind[name] = by_kind.get(name, 0) + 1
    automatic = [r[2] for r in records if not kinds or kinds[r[6]] != "collect()"]
    return {
        "collections": len(records),
        "by_generation": by_gen,
        "by_kind": by_kind,
        "gc_seconds": sum(durations),
        "max_stop_s": max(durations, default=0.0),
        "max_automatic_stop_s": max(automatic, default=0.0),
        "collected": sum(r[3] for r in records),
    }


def _start():
    import atexit
    import gc
    import json
    import resource
    import sys
    from cyclegc.runner import KINDS, Recorder

    bounded = _MODE == "pause2"
    rec = Recorder(bounded=bounded)
    state = {"ppid": None, "started": rec.origin}

    def _after_fork():
        # A forked worker reports its own collections only.
        rec.records = []
        rec._start = None
        state["ppid"] = os.getppid()
        if bounded:
            rec._inc = rec._incremental()

    os.register_at_fork(after_in_child=_after_fork)
    gc.callbacks.append(rec)

    def _at_exit():
        import time
        if rec in gc.callbacks:
            gc.callbacks.remove(rec)
        out = summarise(rec.records, KINDS if bounded else None)
        out.update(pid=os.getpid(), ppid=state["ppid"], mode=_MODE,
                   argv=list(getattr(sys, "orig_argv", sys.argv)),
                   seconds=time.perf_counter() - rec.origin,
                   maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        if _MODE not in ("builtin", "freeze"):
            import cyclegc
            out["installed_at_exit"] = cyclegc.installed()
            inc = cyclegc.incremental_stats()
            out["incremental"] = {k: v for k, v in inc.items() if isinstance(v, (int, float, str))}
        try:
            with open(os.path.join(_DIR, f"{os.getpid()}.json"), "w", encoding="utf-8") as f:
                json.dump(out, f)
        except OSError:
            pass

    # Registered after cyclegc's own atexit uninstall() (install() ran in the
    # regrtest hook first): atexit is last-in first-out, so this runs first.
    atexit.register(_at_exit)


if _DIR:
    _start()
