"""Parent side of the differential test: spawn children, compare records.

Used by ``tests/test_differential.py`` and ``scripts/differential_soak.py``.
A *batch* runs the same seeds (or one named case) in two children, one per
collector, concurrently; records are matched by seed/case and compared
exactly.  A child that dies (crash, timeout, harness error) makes every seed
it did not report a mismatch, with its exit status and the tail of stderr.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHILD = "tests.differential.child"


def child_env():
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("PYTHONDEVMODE", None)
    env.pop("PYTHONWARNINGS", None)
    return env


@dataclass
class ChildResult:
    collector: str
    args: list
    records: dict = field(default_factory=dict)  # key -> record
    returncode: int | None = None
    stderr: str = ""
    timed_out: bool = False

    def failure(self):
        """Why the child did not finish cleanly, or None."""
        if self.timed_out:
            return f"{self.collector} child timed out"
        if self.returncode != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-15:])
            return f"{self.collector} child exited with status {self.returncode}\n{tail}"
        return None


def record_key(record):
    return ("case", record["case"]) if "case" in record else ("seed", record["seed"])


def _start(python, collector, args):
    cmd = [python, "-m", CHILD, "--collector", collector, *args]
    return subprocess.Popen(
        cmd,
        cwd=REPO,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc, result, timeout):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        result.timed_out = True
    result.returncode = proc.returncode
    result.stderr = err
    for line in out.splitlines():
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            result.records[record_key(record)] = record
    return result


def run_children(args, collectors, python=None, timeout=300):
    """Run the child with ``args`` once per collector, concurrently."""
    python = python or sys.executable
    procs = [(_start(python, c, args), ChildResult(c, args)) for c in collectors]
    return [_finish(proc, result, timeout) for proc, result in procs]


def probe_cyclegc(python=None):
    """(importable, detail) for cyclegc under ``python``; raises if the probe
    itself fails in any other way than an ImportError."""
    proc = subprocess.run(
        [python or sys.executable, "-m", CHILD, "--probe"],
        cwd=REPO,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cyclegc probe failed ({proc.returncode}):\n{proc.stderr}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return info["importable"], info.get("error", "")


#: Record fields compared but not counted as mismatches unless strict:
#: get_count() right after collect() also counts the allocations of the
#: collector's own Python-level wrapper (callbacks' info dicts, statistics).
ADVISORY = ("c1.count_after", "c2.count_after")

# Fields a tested collector mode cannot match by design, reported as advisory:
# cyclegc-rounds does one "collection" as several stops (a young collection,
# then slices), so callbacks, per-generation stats, counts and debug output
# describe those stops, and collect()'s total counts only what each stop
# found unreachable (garbage hanging off a young cycle dies by refcount once
# the cycle is broken, uncounted).  What died, what survived, finalizers,
# weakref callbacks, gc.garbage and resurrection must still match.
#
# Its reference is the built-in doing the same two steps (a young collection,
# then a full one): finalizers and weakref callbacks run by the young step can
# drop references that a single full collection would still have seen, so
# objects die one collection earlier in both.
REFERENCE = {"cyclegc-rounds": "builtin-youngfirst", "cyclegc-chunks": "builtin-youngfirst",
             "cyclegc-heavy-chunks": "builtin-youngfirst",
             "cyclegc-oversized": "builtin-youngfirst",
             "cyclegc-takewhole": "builtin-youngfirst",
             "cyclegc-spread": "builtin-youngfirst"}

NOT_COMPARABLE = {
    "cyclegc-rounds": ("callbacks", "stats_delta", "count_after", "stderr", "collected"),
    "cyclegc-chunks": ("callbacks", "stats_delta", "count_after", "stderr", "collected"),
    "cyclegc-heavy-chunks": ("callbacks", "stats_delta", "count_after", "stderr", "collected"),
    "cyclegc-overflow": ("callbacks", "stats_delta", "count_after", "stderr", "collected"),
    "cyclegc-oversized": ("callbacks", "stats_delta", "count_after", "stderr", "collected"),
    "cyclegc-takewhole": ("callbacks", "stats_delta", "count_after", "stderr", "collected"),
    "cyclegc-spread": ("callbacks", "stats_delta", "count_after", "stderr", "collected"),
}


def _field(difference):
    """'c1.collected: 3 != 4' -> 'collected' (the field under c1/c2)."""
    path = difference.split(":")[0]
    parts = path.split(".")
    return parts[1].split("[")[0] if len(parts) > 1 else path


def diff(a, b, path=""):
    """Differences between two JSON values as 'path: a != b' strings."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a:
                out.append(f"{sub}: missing != {json.dumps(b[key])}")
            elif key not in b:
                out.append(f"{sub}: {json.dumps(a[key])} != missing")
            else:
                out.extend(diff(a[key], b[key], sub))
        return out
    if a != b:
        if isinstance(a, list) and isinstance(b, list) and all(
            isinstance(x, str) for x in a + b
        ):
            only_a = sorted(set(a) - set(b)) or [x for x in a if a.count(x) != b.count(x)]
            only_b = sorted(set(b) - set(a)) or [x for x in b if a.count(x) != b.count(x)]
            return [f"{path}: only in reference {only_a}, only in tested {only_b}"]
        return [f"{path}: {json.dumps(a)} != {json.dumps(b)}"]
    return []


@dataclass
class Mismatch:
    key: tuple
    differences: list  # counted as mismatches
    reference: dict | None = None
    tested: dict | None = None
    advisory: list = field(default_factory=list)  # see ADVISORY

    def describe(self, limit=12):
        kind, value = self.key
        head = f"{kind} {value}"
        spec = (self.reference or self.tested or {}).get("spec")
        if spec:
            head += f" (spec: {json.dumps(spec, sort_keys=True)})"
        shown = self.differences + [f"(advisory) {d}" for d in self.advisory]
        lines = [head] + [f"    {d}" for d in shown[:limit]]
        if len(shown) > limit:
            lines.append(f"    ... {len(shown) - limit} more")
        return "\n".join(lines)


def compare(reference, tested, keys, strict=False, ignore=()):
    """Differences between two ChildResults over the expected record keys:
    one Mismatch per differing record.  Differences in ADVISORY fields go to
    ``Mismatch.advisory`` (and count as mismatches only if ``strict``); use
    :func:`failing` to keep the records that really mismatch."""
    mismatches = []
    for key in keys:
        ref, got = reference.records.get(key), tested.records.get(key)
        missing = [
            f"no record from the {side} child: {result.failure() or 'record missing'}"
            for side, result, record in (("reference", reference, ref), ("tested", tested, got))
            if record is None
        ]
        if missing:
            mismatches.append(Mismatch(key, missing, ref, got))
            continue
        differences = diff(ref, got)
        advisory = [d for d in differences
                    if (not strict and d.split(":")[0] in ADVISORY) or _field(d) in ignore]
        hard = [d for d in differences if d not in advisory]
        if differences:
            mismatches.append(Mismatch(key, hard, ref, got, advisory))
    return mismatches


def failing(mismatches):
    return [m for m in mismatches if m.differences]


def run_seeds(start, count, tested="cyclegc", reference=None, python=None, timeout=300,
              strict=False):
    """Compare seeds start..start+count-1 in one pair of children (the
    reference defaults to the built-in, or what REFERENCE names)."""
    reference = reference or REFERENCE.get(tested, "builtin")
    ref, got = run_children(
        ["--seed", str(start), "--count", str(count)], (reference, tested), python, timeout
    )
    keys = [("seed", s) for s in range(start, start + count)]
    return compare(ref, got, keys, strict, NOT_COMPARABLE.get(tested, ())), ref, got


def run_case(name, tested="cyclegc", reference="builtin", python=None, timeout=120,
             strict=False):
    ref, got = run_children(["--case", name], (reference, tested), python, timeout)
    return compare(ref, got, [("case", name)], strict), ref, got


def fork_friendly_extra_find(mismatch):
    """True when `mismatch` (cyclegc-ff against the built-in) is the one
    difference fork-friendly mode has by design: its full collections also
    examine the frozen generation, so after a freeze() they may find more
    (frozen garbage), never less: the graph was frozen and the tested
    collection found at least as much.  (Frozen objects are not in the
    records' `alive` lists, so objects a fork-friendly collection found in
    the frozen generation and kept -- resurrected, uncollectable -- show up
    as alive only on the tested side: their survival is not compared.)"""
    ref, got = mismatch.reference, mismatch.tested
    return bool(ref and got and ref.get("spec", {}).get("age_mode") == "freeze"
                and got["c1"]["collected"] >= ref["c1"]["collected"])


def freed_by_count_apart(mismatch):
    """True when `mismatch` (a mode that examines the heap a part at a time
    against the built-in doing young-then-full) is only this difference, by
    design: a weakref's referent was garbage in a part decided apart from
    the garbage referencing it, so it died by its count when that garbage
    was cleared.  CPython's deallocation detaches the weakref's callback
    before calling it (PyObject_ClearWeakRefs), where a collection's weakref
    step calls it still attached and leaves it there; so what only the
    callback held is freed too, one collection before the built-in frees
    it (seed 5204100: n9 referenced by the garbage n6 of a later slice; n5's
    callback held n18, which held n2).  Accepted only when: every difference
    is in `alive`, `log` or `watch_dead`; the tested side keeps nothing the
    reference freed and moves no survivor to another generation; a callback
    ran "by-count" on the tested side only, where the reference ran it
    attached; and every other log entry only on the tested side is an event
    of an object only the tested side freed."""
    ref, got = mismatch.reference, mismatch.tested
    if not (ref and got and mismatch.differences):
        return False
    if any(not re.match(r"c[12]\.(alive\.gen[012]|log|watch_dead):", d) for d in mismatch.differences):
        return False
    by_count_seen = False
    freed_any = set()
    for stage in ("c1", "c2"):
        a, b = ref[stage]["alive"], got[stage]["alive"]
        ref_alive = {x: g for g, xs in a.items() for x in xs}
        got_alive = {x: g for g, xs in b.items() for x in xs}
        if set(got_alive) - set(ref_alive):
            return False                    # kept something the reference freed
        if any(ref_alive[x] != g for x, g in got_alive.items()):
            return False                    # a survivor in another generation
        freed = set(ref_alive) - set(got_alive)
        freed_any |= freed
        ref_log, got_log = Counter(ref[stage].get("log", ())), Counter(got[stage].get("log", ()))
        only_ref, only_got = ref_log - got_log, got_log - ref_log
        by_count = set()
        for entry in only_got:
            parts = entry.split(":")
            if parts[0] == "callback" and len(parts) > 2 and "by-count" in parts[2].split(","):
                by_count.add(parts[1])
        for entry in only_ref:
            parts = entry.split(":")
            if not (parts[0] == "callback" and parts[1] in by_count and "by-count" not in entry):
                return False
        for entry in only_got:
            parts = entry.split(":")
            if parts[0] == "callback" and parts[1] in by_count:
                continue
            if len(parts) < 2 or parts[1] not in freed_any:
                return False
        by_count_seen |= bool(by_count)
    if set(ref["c1"].get("watch_dead", ())) - set(got["c1"].get("watch_dead", ())):
        return False                        # the tested side keeps a watched object alive
    return by_count_seen and bool(freed_any)


def by_design(mismatch):
    """The by-design differences of the modes that examine the heap a part
    at a time (rounds, chunks, take-whole, spreads)."""
    return resurrected_elsewhere(mismatch) or freed_by_count_apart(mismatch)


def resurrected_elsewhere(mismatch):
    """True when `mismatch` (cyclegc-rounds or -chunks against the built-in
    doing young-then-full) is only this difference, by design: an object a
    finalizer resurrected is alive on both sides, in another generation.
    A round or chunk examines the heap a part at a time, so an object may be
    freed by refcount when a neighbouring part's garbage is cleared instead
    of being examined with it; its __del__ then runs from its deallocation,
    which re-tracks the resurrected object in generation 0 (CPython's own
    subtype_dealloc), where the built-in's collection would have moved it to
    the generation it collected into.  (Seed 20995: the cell holding n15 was
    in the slice after n15's.)  Every other field must match."""
    ref, got = mismatch.reference, mismatch.tested
    if not (ref and got and mismatch.differences):
        return False
    if any(not re.match(r"c[12]\.alive\.gen[012]:", d) for d in mismatch.differences):
        return False
    resurrected = set(ref.get("c1", {}).get("resurrected", ())) | set(got.get("c1", {}).get("resurrected", ()))
    # ...and those whose finalizer logged a resurrection in either collection
    # on both sides (c2 records no `resurrected` list; seed 863005 of the
    # oversized mode: n13 resurrected in c2, freed by refcount while the
    # parked garbage was cleared, so re-tracked in generation 0 and moved
    # to 1 by the next young collection, where the built-in left it in 2).
    for stage in ("c1", "c2"):
        logged = [{e.split(":", 1)[1] for e in side.get(stage, {}).get("log", ())
                   if e.startswith("resurrect:")} for side in (ref, got)]
        resurrected |= logged[0] & logged[1]
    for stage in ("c1", "c2"):
        a, b = ref[stage]["alive"], got[stage]["alive"]
        if a == b:
            continue
        if sorted(x for g in a.values() for x in g) != sorted(x for g in b.values() for x in g):
            return False    # not the same objects alive
        moved = {x for g in a for x in set(a[g]) ^ set(b.get(g, ()))}
        if not moved <= resurrected:
            return False
    return True
