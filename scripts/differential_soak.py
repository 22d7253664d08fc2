#!/usr/bin/env python3
"""Soak cyclegc against the built-in collector over thousands of seeds.

    python scripts/differential_soak.py --seeds 10000 --start 0 --python PATH

Runs the differential harness of ``tests/differential`` (see its graphs.py
and child.py): every seed's random object graph is collected once by the
built-in collector and once by cyclegc, each in its own child process
(``--batch`` seeds per pair of children), and the JSON records of everything
observable must be identical.  A child that crashes or times out makes its
current seed a mismatch; the batch then resumes after that seed.

Prints one summary line ``N seeds, M mismatches`` (plus how many seeds
differed only in advisory fields, see ``runner.ADVISORY``; ``--strict``
counts those too; with ``--tested cyclegc-ff`` it also counts apart the
seeds where fork-friendly mode found frozen garbage the built-in leaves,
by design, see ``runner.fork_friendly_extra_find``), then the details of
the first ``--show`` mismatches with the command that reproduces each one.  Exit status: 0 all equal, 1 on any
mismatch, 2 if cyclegc cannot be imported by the given interpreter.

``--tested builtin2`` compares the built-in collector with itself on a
perturbed heap: a check of the harness's own determinism.  A failing seed
is also run again, reference against reference: one on which the reference
disagrees with itself is listed apart as unstable, not counted.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.differential import runner  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10000, help="number of seeds")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--python", default=sys.executable, help="interpreter to test")
    parser.add_argument("--batch", type=int, default=250, help="seeds per pair of children")
    parser.add_argument("--jobs", type=int, default=1, help="batches run at once (2 processes each)")
    parser.add_argument("--tested", default="cyclegc",
                        choices=("cyclegc", "cyclegc-ring", "cyclegc-heavy", "cyclegc-rounds", "cyclegc-chunks", "cyclegc-heavy-chunks", "cyclegc-overflow", "cyclegc-oversized", "cyclegc-takewhole", "cyclegc-spread",
                                 "cyclegc-ff",
                                 "cyclegc-nomark", "builtin2"))
    parser.add_argument("--strict", action="store_true", help="advisory differences count too")
    parser.add_argument("--show", type=int, default=5, help="mismatches shown in detail")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per batch")
    return parser.parse_args(argv)


def run_range(args, start, count):
    """All mismatches of seeds start..start+count-1, resuming after a crash."""
    found = []
    end = start + count
    while start < end:
        mismatches, ref, got = runner.run_seeds(
            start, end - start, args.tested, None, args.python, args.timeout, args.strict
        )
        reported = [s for s in range(start, end) if ("seed", s) in ref.records and ("seed", s) in got.records]
        missing = sorted(set(range(start, end)) - set(reported))
        if not missing:
            return found + mismatches
        # The first seed without both records is where a child died: keep
        # what came before it, count it, and go on after it.
        crash = missing[0]
        found += [m for m in mismatches if m.key[1] <= crash]
        start = crash + 1
    return found


def expected_apart(args, failing):
    """(unexpected, by design): cyclegc-ff's full collections also examine
    the frozen generation and may find more after a freeze(), never less
    (runner.fork_friendly_extra_find); rounds and chunks may leave a
    resurrected object in another generation (runner.resurrected_elsewhere),
    or free early what only a callback of a weakref held, its referent
    freed by its count (runner.freed_by_count_apart);
    with --strict those count too."""
    rule = {"cyclegc-ff": runner.fork_friendly_extra_find,
            "cyclegc-rounds": runner.by_design,
            "cyclegc-chunks": runner.by_design,
            "cyclegc-heavy-chunks": runner.by_design,
            "cyclegc-oversized": runner.by_design,
            "cyclegc-takewhole": runner.by_design,
            "cyclegc-spread": runner.by_design}.get(args.tested)
    if rule is None or args.strict:
        return failing, []
    by_design = [m for m in failing if rule(m)]
    return [m for m in failing if m not in by_design], by_design


def split_unstable(args, failing, tries=12, limit=20):
    """(mismatches, unstable): a failing seed (the first `limit`) is run
    `tries` more times with the reference collector on both sides; if the
    reference ever disagrees with itself, the seed's record depends on
    something else than the collector (the fuzzer's graphs put objects that
    hash by address in sets: which member a set's deallocation frees first,
    and so whether a weakref dies before its referent, changes with the
    heap's layout) and it is listed apart, with its differences, instead of
    counted.  A seed that is stable under the reference stays a mismatch."""
    reference = runner.REFERENCE.get(args.tested, "builtin")
    unstable = []
    for mismatch in failing[:limit]:
        seed = mismatch.key[1]
        for _ in range(tries):
            again, _, _ = runner.run_seeds(seed, 1, tested=reference, reference=reference,
                                           python=args.python, timeout=args.timeout)
            if runner.failing(again):
                unstable.append(mismatch)
                break
    return [m for m in failing if m not in unstable], unstable


def interpreter_version(python):
    out = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def main(argv=None):
    args = parse_args(argv)
    version = interpreter_version(args.python)
    if args.tested.startswith("cyclegc"):
        importable, detail = runner.probe_cyclegc(args.python)
        if not importable:
            print(f"cyclegc is not importable by {args.python}: {detail}")
            return 2
    print(f"Python {version} ({args.python}): seeds {args.start}..{args.start + args.seeds - 1}, "
          f"{args.tested} against {runner.REFERENCE.get(args.tested, 'builtin')}", flush=True)

    batches = [
        (start, min(args.batch, args.start + args.seeds - start))
        for start in range(args.start, args.start + args.seeds, args.batch)
    ]
    t0 = time.monotonic()
    results = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_range, args, start, count) for start, count in batches]
        for (start, count), future in zip(batches, futures):
            mismatches = future.result()
            results += mismatches
            bad = len(expected_apart(args, runner.failing(mismatches))[0])
            print(f"  seeds {start}..{start + count - 1}: {bad} mismatches "
                  f"({time.monotonic() - t0:.0f}s)", flush=True)

    failing, by_design = expected_apart(args, sorted(runner.failing(results), key=lambda m: m.key[1]))
    failing, unstable = split_unstable(args, failing)
    advisory_only = [m for m in results if not m.differences]
    elapsed = time.monotonic() - t0
    extra = (f", {len(by_design)} fork-friendly finds of frozen garbage (by design)"
             if args.tested == "cyclegc-ff" else
             f", {len(by_design)} by design (a resurrected object in another generation, "
             f"or what only a weakref callback held freed early: runner.by_design)"
             if by_design else "")
    if unstable:
        extra += (f", {len(unstable)} seeds on which the reference disagrees with itself"
                  f" (not counted; listed below)")
    print(f"{args.seeds} seeds, {len(failing)} mismatches "
          f"({len(advisory_only)} with advisory differences only{extra}) in {elapsed:.1f}s "
          f"on Python {version}")
    for mismatch in unstable:
        print("unstable " + mismatch.describe(limit=4))
    for mismatch in failing[: args.show]:
        print(mismatch.describe())
        print(f"    reproduce: cd {ROOT} && PYTHONHASHSEED=0 {args.python} -m {runner.CHILD} "
              f"--collector {args.tested} --seed {mismatch.key[1]}")
    if advisory_only and not failing:
        print("first advisory difference: " + advisory_only[0].describe(limit=4))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
