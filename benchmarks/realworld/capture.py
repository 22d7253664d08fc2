"""Capture: running one program once, and what is compared of its output.

Nothing here knows a particular program (programs.py) or formats a table
(report.py).
"""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

# benchmarks/ for prefork_memory's /proc reading (one copy of it)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from prefork_memory import smaps as _smaps  # noqa: E402

#: Environment variables of the hooks (see envs.py).
MODE_VAR, RECORD_VAR, GC_DIR_VAR = "CYCLEGC_REGRTEST", "CYCLEGC_REGRTEST_DIR", "CYCLEGC_REALWORLD_DIR"
MODES = ("builtin", "plain", "pause2", "fork", "immortal", "freeze")

# What legitimately varies between two runs of the same program, and is
# replaced before outputs are compared: durations printed by the programs
# ("in 12.34s (0:00:12)", "0.52 seconds") and the run's own directory.
_DURATIONS = [
    (re.compile(r"\bin \d+(\.\d+)?s( \(\d+:\d\d:\d\d\))?"), "in <T>s"),
    (re.compile(r"\b\d+(\.\d+)? ?(seconds|secs|sec|ms)\b"), "<T> \\2"),
]


def normalise(text, run_dir=None, extra=()):
    """`text` with durations and the run directory replaced (see _DURATIONS);
    `extra`: more (pattern, replacement) pairs."""
    if run_dir:
        text = text.replace(str(run_dir), "<RUN>")
    for pattern, repl in [*_DURATIONS, *extra]:
        text = re.sub(pattern, repl, text)
    return text


def mode_env(mode, run_dir):
    """The environment of a run in `mode`: the regrtest hook installs cyclegc
    by CYCLEGC_REGRTEST and records that it did; the realworld hook times the
    collections.  PYTHONHASHSEED is fixed (the same in every mode), so set
    and dict-of-str orders, which some outputs show, do not vary by run."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    hook_dir, gc_dir = Path(run_dir) / "hook", Path(run_dir) / "gc"
    hook_dir.mkdir(parents=True, exist_ok=True)
    gc_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CYCLEGC_", "PYTHON"))}
    env.update({MODE_VAR: mode, RECORD_VAR: str(hook_dir), GC_DIR_VAR: str(gc_dir),
                "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"})
    return env


def run_command(cmd, env, cwd, run_dir, timeout):
    """Run `cmd` to its end (killed after `timeout` s): wall time, exit
    status, peak RSS of it and its waited-for children (wait4), stdout and
    stderr (as files in run_dir)."""
    out_path, err_path = Path(run_dir) / "stdout", Path(run_dir) / "stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], env=env, cwd=cwd, stdout=out, stderr=err,
                                start_new_session=True)
        timed_out = False
        deadline = t0 + timeout
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": wall, "returncode": proc.returncode, "timed_out": timed_out,
            "maxrss_kb": rusage.ru_maxrss,
            "stdout": out_path.read_text(errors="replace"), "stderr": err_path.read_text(errors="replace")}


def tree_manifest(root, skip=()):
    """{relative path: sha256} of every file under root, but those whose
    relative path starts with one of `skip`."""
    root = Path(root)
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(tuple(skip)):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def gc_records(run_dir):
    """The per-process JSON files the realworld hook wrote, and the
    install records of the regrtest hook."""
    procs = []
    for path in sorted((Path(run_dir) / "gc").glob("*.json")):
        try:
            procs.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            pass
    installs = []
    for path in sorted((Path(run_dir) / "hook").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                installs.append(json.loads(line))
            except ValueError:
                pass
    return procs, installs


def gc_totals(procs):
    """Summed over the processes of a run: collections, time in them;
    longest stop over all of them; overflow collections (bounded mode)."""
    return {
        "processes": len(procs),
        "collections": sum(p["collections"] for p in procs),
        "gc_s": sum(p["gc_seconds"] for p in procs),
        "max_stop_s": max((p["max_stop_s"] for p in procs), default=0.0),
        "max_automatic_stop_s": max((p["max_automatic_stop_s"] for p in procs), default=0.0),
        "overflow": sum(p.get("by_kind", {}).get("overflow", 0) for p in procs),
        # bounded mode: the longest increment as cyclegc's core timed it
        # (incremental_stats; overflow collections are not increments)
        "longest_increment_s": max((p.get("incremental", {}).get("longest_increment", 0.0) for p in procs),
                                   default=0.0),
        "overflow_stats": sum(p.get("incremental", {}).get("overflow_collections", 0) for p in procs),
        "max_proc_rss_kb": max((p["maxrss_kb"] for p in procs), default=0),
        "not_installed": sum(1 for p in procs if p["mode"] not in ("builtin", "freeze") and not p.get("installed_at_exit")),
        # where the time went (issue 13): per generation, and what marking
        # left to trial deletion in cyclegc's complete collections
        "by_generation": [sum(p.get("by_generation", [0, 0, 0])[g] for p in procs) for g in range(3)],
        "seconds_by_generation": [sum(p.get("seconds_by_generation", [0.0, 0.0, 0.0])[g] for p in procs)
                                  for g in range(3)],
        "full_candidates": sum(p.get("full_candidates", 0) for p in procs),
        "full_trial_candidates": sum(p.get("full_trial_candidates", 0) for p in procs),
        # cyclegc's core: seconds per part of the collections, per generation
        "phases": _sum_phases(procs),
    }


def _sum_phases(procs):
    out = {}
    for p in procs:
        for name, secs in (p.get("phases") or {}).items():
            acc = out.setdefault(name, [0.0] * len(secs))
            for i, x in enumerate(secs):
                acc[i] += x
    return out


# ---- memory of other processes (the pre-fork server) ---------------------------

def uss_mb(pid):
    """Private memory (USS) of a process in MB (Private_Clean + Private_Dirty
    of /proc/<pid>/smaps_rollup, what psutil's memory_full_info().uss is):
    benchmarks/prefork_memory.py's reading, shared."""
    return _smaps(pid)[0]


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []
