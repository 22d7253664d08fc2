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
and the process's peak RSS; and where the time went (issue 13): per
generation, collections and seconds, and for cyclegc's complete
collections how many objects marking from the roots reached and how many it
left to trial deletion (``_core._last_trial_candidates()``).  A process ended by os._exit or a signal
writes nothing (run.py counts the files it got).
"""
import os

_DIR = os.environ.get("CYCLEGC_REALWORLD_DIR")
_MODE = os.environ.get("CYCLEGC_REGRTEST") or "builtin"


def summarise(records, kinds=None, full=None):
    """Figures of one process from Recorder records (t, gen, duration,
    collected, uncollectable, candidates, kind), and `full`, a list of
    (candidates, trial candidates, seconds, collected) of cyclegc's
    complete collections."""
    durations = [r[2] for r in records]
    by_gen = [0, 0, 0]
    seconds_by_gen = [0.0, 0.0, 0.0]
    for r in records:
        if 0 <= r[1] <= 2:
            by_gen[r[1]] += 1
            seconds_by_gen[r[1]] += r[2]
    by_kind = {}
    if kinds:
        for r in records:
            name = kinds[r[6]] or "-"
            by_kind[name] = by_kind.get(name, 0) + 1
    automatic = [r[2] for r in records if not kinds or kinds[r[6]] != "collect()"]
    return {
        "collections": len(records),
        "by_generation": by_gen,
        "seconds_by_generation": seconds_by_gen,
        # cyclegc's complete collections: objects examined in all, and of
        # them those marking did not reach (left to trial deletion)
        "full_candidates": sum(f[0] for f in full or ()),
        "full_trial_candidates": sum(f[1] for f in full or ()),
        # each of them: (candidates, trial candidates, seconds, collected),
        # the first 500
        "full": [list(f) for f in (full or ())[:500]],
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

    full = []

    def _full_probe(phase, info):
        # After rec: a complete collection by cyclegc's core, which knows
        # how much of it marking left to trial deletion.
        if phase == "stop" and info.get("generation") == 2 and info.get("candidates", -1) >= 0:
            last = rec.records[-1] if rec.records else None
            seconds = last[2] if last is not None and last[1] == 2 else None
            full.append((info["candidates"], trial_candidates(), seconds, info["collected"]))

    trial_candidates = core = None
    if _MODE != "builtin":
        from cyclegc._core import _cyclegc as core
        trial_candidates = getattr(core, "_last_trial_candidates", None)

    def _after_fork_full():
        full.clear()

    os.register_at_fork(after_in_child=_after_fork)
    os.register_at_fork(after_in_child=_after_fork_full)
    gc.callbacks.append(rec)
    if trial_candidates is not None:
        gc.callbacks.append(_full_probe)

    def _at_exit():
        import time
        for cb in (rec, _full_probe):
            if cb in gc.callbacks:
                gc.callbacks.remove(cb)
        out = summarise(rec.records, KINDS if bounded else None, full)
        out.update(pid=os.getpid(), ppid=state["ppid"], mode=_MODE,
                   argv=list(getattr(sys, "orig_argv", sys.argv)),
                   seconds=time.perf_counter() - rec.origin,
                   maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        if _MODE not in ("builtin", "freeze"):
            import cyclegc
            out["installed_at_exit"] = cyclegc.installed()
            inc = cyclegc.incremental_stats()
            out["incremental"] = {k: v for k, v in inc.items() if isinstance(v, (int, float, str))}
            out["longest_stop"] = inc.get("longest_stop")     # its cause and parts
            out["busiest_stop"] = inc.get("busiest_stop")     # the most CPU: not preempted
            out["spread"] = inc.get("spread")     # closures proven across stops
            phases = getattr(core, "_phase_seconds", None)
            if phases is not None:
                # seconds per part of the collections, per generation (a
                # forked worker's include its parent's before the fork)
                out["phases"] = {k: list(v) for k, v in phases().items()}
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
