#!/usr/bin/env python3
"""Run cyclegc's core tests and the differential fuzzer under valgrind memcheck.

    python scripts/valgrind_check.py --python .venvs/3.12/bin/python
    python scripts/valgrind_check.py --python .venvs/3.11/bin/python \\
        --python .venvs/3.12/bin/python --python .venvs/3.13/bin/python --seeds 300

Each --python must be able to import cyclegc (an installed copy, e.g. the
``.venvs/<minor>`` that ``scripts/test_all.py`` creates, or ``--src`` to put
this checkout's ``src`` on PYTHONPATH) and pytest.  For every interpreter,
with ``PYTHONMALLOC=malloc`` (so that every object is a malloc block that
memcheck tracks, instead of a slice of a pymalloc arena):

1. ``tests``: pytest on a selection of the core suite (--tests, default
   test_collector, test_api, test_marking, test_readonly, test_shutdown)
   under ``valgrind --tool=memcheck --trace-children=yes``: the subprocesses
   the shutdown tests start and the children the fork tests make are checked
   too;
2. ``fuzz``: the differential fuzzer's child (``tests/differential/child.py``)
   collecting --seeds random graphs with each of --collectors (``cyclegc``:
   the ordinary path with marking; ``cyclegc-ff``: every full collection
   fork-friendly, readonly.c; ``cyclegc-nomark``: trial deletion over the
   whole heap), --batch seeds per process, plus every named case with
   ``cyclegc``.  The records printed under valgrind are also compared with
   those of the built-in collector run natively: a difference is reported
   as a mismatch (memcheck can change timing, never what is collected),
   except that fork-friendly collections may find more after a freeze()
   (they examine the frozen generation), as tests/test_differential.py
   allows.

Before that, a positive control: a freed object reached through
``cyclegc.get_referents`` on purpose must be reported and attributed to
cyclegc (it is not counted in the totals).

Every valgrind process writes an XML report (``--xml-file=...%p.xml``,
``--track-origins=yes``).  An error (invalid read/write, use of freed
memory, uninitialised value, bad free, a definitely lost block) is
*attributed to cyclegc* when one of its stacks (where it happened, where the
block was allocated or freed, where the uninitialised value came from),
walked outwards from the innermost frame, reaches a frame in
``_cyclegc.*.so`` before any frame of the eval loop: an error inside Python
code that a finalizer or callback run by cyclegc executes is the
interpreter's, one in cyclegc's C code or in the slots it calls (tp_traverse,
tp_clear...) is cyclegc's.  Everything else is counted as "other", and
"(known)" says how many of those are uninitialised values from a known
harmless origin in the interpreter (KNOWN_ORIGINS: 3.11's zero ints).
``scripts/valgrind-python.supp`` suppresses the noise that is known and
expected (see its comments); suppressed errors are counted apart.

Prints one table per interpreter (errors by phase: total, cyclegc, other,
known, suppressed) and the distinct cyclegc stacks.  Exit status 1 if any error is
attributed to cyclegc, a run failed (pytest failure, crashed child) or a
fuzz record differs; 0 otherwise.  --keep DIR keeps the XML reports.

``--asan`` runs the same phases (control, tests, fuzz) with an
AddressSanitizer build of the extension instead (built from HEAD in a
temporary tree, ``-fsanitize=address -fsanitize-recover=address``; libasan
is preloaded with ``LD_PRELOAD``, ``PYTHONMALLOC=malloc``, leak detection
off).  Only cyclegc's own code is instrumented, which makes it much faster
than memcheck (use more --seeds) and blind to bad accesses made by the
interpreter's code on cyclegc's behalf.

Takes about 2-6 minutes per interpreter on a 2-core machine with the
defaults (valgrind slows Python down 20-50 times).
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.differential import runner  # noqa: E402

DEFAULT_TESTS = [
    "tests/test_collector.py",
    "tests/test_api.py",
    "tests/test_marking.py",
    "tests/test_readonly.py",
    "tests/test_shutdown.py",
]
# Tests that measure the process itself, which both tools change: a forked
# child's private dirty memory includes valgrind's shadow memory, or the
# pages AddressSanitizer's allocator writes (quarantine, metadata).
DESELECT = [
    "tests/test_readonly.py::test_forked_child_collects_without_copying_the_shared_heap",
]
SUPPRESSIONS = ROOT / "scripts" / "valgrind-python.supp"
# The core extension (_cyclegc.cpython-3XY-....so), not the C test types of
# tests/c_types (_cyclegc_testtypes...so), which crash the built-in on purpose.
OURS = "_cyclegc."


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", action="append", help="interpreter to check (repeatable; default: this one)")
    p.add_argument("--src", action="store_true", help="import cyclegc from this checkout's src/")
    p.add_argument("--tests", nargs="*", default=None, help="pytest paths (default: the core selection)")
    p.add_argument("--pytest-args", default="", help="extra pytest arguments, one string")
    p.add_argument("--seeds", type=int, default=300, help="fuzz seeds per collector (default 300)")
    p.add_argument("--start", type=int, default=0, help="first fuzz seed")
    p.add_argument("--batch", type=int, default=100, help="seeds per fuzz process")
    p.add_argument("--collectors", default="cyclegc,cyclegc-ff,cyclegc-nomark",
                   help="fuzz collectors, comma separated")
    p.add_argument("--no-tests", action="store_true")
    p.add_argument("--no-fuzz", action="store_true")
    p.add_argument("--no-cases", action="store_true", help="skip the named differential cases")
    p.add_argument("--no-leaks", action="store_true", help="do not report definitely lost blocks")
    p.add_argument("--suppressions", default=str(SUPPRESSIONS))
    p.add_argument("--keep", help="directory for the XML reports (kept)")
    p.add_argument("--show", type=int, default=10, help="distinct cyclegc stacks shown")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per valgrind process tree")
    p.add_argument("--asan", action="store_true",
                   help="instead of valgrind: build the extension from HEAD with -fsanitize=address "
                        "and run the same phases with libasan preloaded")
    return p.parse_args(argv)


def valgrind_cmd(xml_prefix, args):
    cmd = [
        "valgrind", "--tool=memcheck", "--trace-children=yes", "--error-limit=no",
        "--num-callers=40", "--child-silent-after-fork=no", "--track-origins=yes",
        # Valgrind runs one thread at a time; unfair scheduling let a thread
        # spinning on allocations starve the one that must exit (a 60 s
        # timeout of test_shutdown's daemon-thread case, built-in included).
        "--fair-sched=try",
        "--xml=yes", f"--xml-file={xml_prefix}.%p.xml",
    ]
    if args.no_leaks:
        cmd.append("--leak-check=no")
    else:
        cmd += ["--leak-check=full", "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite"]
    if args.suppressions and os.path.exists(args.suppressions):
        cmd.append(f"--suppressions={args.suppressions}")
    return cmd


def base_env(args):
    env = runner.child_env()          # PYTHONHASHSEED=0, the repository on PYTHONPATH
    env["PYTHONMALLOC"] = "malloc"
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env["PYTHONPATH"]])
    return env


# ---- XML reports ------------------------------------------------------------------


def _load(path):
    text = Path(path).read_text(errors="replace")
    try:
        return ET.fromstring(text)
    except ET.ParseError:
        # A process killed mid-report (timeout, exec of a child) leaves the
        # document open: close it and keep the complete errors.
        cut = text.rfind("</error>")
        if cut < 0:
            return None
        try:
            return ET.fromstring(text[: cut + len("</error>")] + "</valgrindoutput>")
        except ET.ParseError:
            return None


def _frames(stack):
    return [
        (f.findtext("obj") or "?", f.findtext("fn") or "?", f.findtext("file"), f.findtext("line"))
        for f in stack.findall("frame")
    ]


EVAL = ("_PyEval_EvalFrameDefault", "_PyEval_EvalFrame", "_PyEval_Vector")

#: Origins of uninitialised values that are the interpreter's own and known
#: harmless: the function that allocated the block (the first frame after
#: malloc in the origin stack).  3.11's ``_PyLong_New`` leaves ``ob_digit[0]``
#: unwritten for a zero-digit int (0 made by int(), int.from_bytes(), &, |...),
#: whose value the small-int check then computes as ``size * ob_digit[0]``:
#: the product is 0, but memcheck cannot know that, so the small int chosen
#: with it, and every pointer to it (in frames, tuples, slots), is reported
#: as uninitialised wherever it is used, in the built-in collector's
#: traversals as in anyone's.  3.12 writes the digit.
KNOWN_ORIGINS = ("_PyLong_New",)


def nearest_owner(frames):
    """'cyclegc' if, walking out from the innermost frame, a frame of the
    extension comes before any frame of the interpreter's eval loop (the
    error happened in cyclegc's C code or in what it called directly, not in
    Python code a finalizer or callback ran); else 'python'."""
    for obj, fn, *_ in frames:
        if os.path.basename(obj).startswith(OURS):
            return "cyclegc"
        if fn in EVAL:
            return "python"
    return "python"


def known_origin(frames):
    fns = [fn for _, fn, *_ in frames if fn not in ("malloc", "calloc", "realloc")]
    return bool(fns) and fns[0] in KNOWN_ORIGINS


class Tally:
    """Errors of a set of XML reports: unique error records and occurrences.

    An error is cyclegc's when its own stack, or one of its auxiliary stacks
    (where the block was allocated or freed, where an uninitialised value was
    created), reaches cyclegc's C code before any Python code
    (:func:`nearest_owner`).  Uninitialised values created by the interpreter
    at a KNOWN_ORIGINS place are the interpreter's, wherever they are used."""

    def __init__(self):
        self.processes = 0
        self.unparsed = 0
        self.total = 0              # occurrences (valgrind's <count> per record)
        self.ours = 0
        self.known = 0              # of the others: KNOWN_ORIGINS taint
        self.suppressed = 0
        self.kinds = Counter()      # (kind, ours) -> occurrences
        self.our_stacks = Counter()  # description -> occurrences

    def add_file(self, path):
        root = _load(path)
        if root is None:
            self.unparsed += 1
            return
        self.processes += 1
        counts = {}
        for pair in root.findall("errorcounts/pair"):
            unique, count = pair.findtext("unique"), pair.findtext("count")
            if unique is not None and count is not None:
                counts[unique] = int(count)
        for pair in root.findall("suppcounts/pair"):
            self.suppressed += int(pair.findtext("count") or 0)
        for error in root.iter("error"):
            kind = error.findtext("kind") or "?"
            n = 1 if kind.startswith("Leak_") else counts.get(error.findtext("unique"), 1)
            stacks = [_frames(s) for s in error.findall("stack")]
            known = kind.startswith("Uninit") and len(stacks) > 1 and known_origin(stacks[1])
            ours = not known and any(nearest_owner(st) == "cyclegc" for st in stacks)
            self.total += n
            self.known += n if known else 0
            self.kinds[kind, ours] += n
            if ours:
                self.ours += n
                what = error.findtext("what") or error.findtext("xwhat/text") or kind
                lines = [f"{kind}: {what}"]
                auxwhat = [a.text for a in error.findall("auxwhat")]
                for i, st in enumerate(stacks):
                    label = "at" if i == 0 else (auxwhat[i - 1] if i - 1 < len(auxwhat) else "aux")
                    lines.append(f"  {label}")
                    for obj, fn, file, line in st[:12]:
                        where = f"{file}:{line}" if file else os.path.basename(obj)
                        lines.append(f"    {fn} ({where})")
                self.our_stacks["\n".join(lines)] += n

    def add_asan_file(self, path):
        """One process's AddressSanitizer log (log_path=...): every report.
        Only the extension is instrumented, so a report is cyclegc's when its
        first frames are in cyclegc's sources; one caught by an interceptor
        (free, memcpy) called from the interpreter is "other"."""
        text = Path(path).read_text(errors="replace")
        self.processes += 1
        for report in text.split("==ERROR: AddressSanitizer: ")[1:]:
            kind = report.split()[0] if report.split() else "?"
            frames = [ln.strip() for ln in report.splitlines() if ln.strip().startswith("#")]
            first = frames[: next((i for i, f in enumerate(frames) if i and f.startswith("#0 ")), len(frames))]
            ours = any("cyclegc/_core" in f or OURS in f for f in first[:8] if "_PyEval_EvalFrame" not in f)
            self.total += 1
            self.kinds[kind, ours] += 1
            if ours:
                self.ours += 1
                self.our_stacks[f"{kind}\n" + "\n".join("    " + f for f in first[:12])] += 1

    def other(self):
        return self.total - self.ours


def run_valgrind(label, argv, cwd, env, args, workdir, capture=False):
    prefix = workdir / label
    if args.asan:
        cmd = argv
        env = dict(env, ASAN_OPTIONS=f"detect_leaks=0:halt_on_error=0:log_path={prefix}.asan")
    else:
        cmd = valgrind_cmd(prefix, args) + argv
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, text=True,
                              capture_output=True, timeout=args.timeout)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = "timeout", exc.stdout or "", exc.stderr or ""
        if isinstance(out, bytes):
            out, err = out.decode(errors="replace"), (err or b"").decode(errors="replace")
    tally = Tally()
    if args.asan:
        for path in sorted(workdir.glob(f"{label}.asan.*")):
            tally.add_asan_file(path)
        tally.processes = 1        # the run (logs exist only for processes that reported)
        return rc, out, err, tally, time.monotonic() - t0
    for path in sorted(workdir.glob(f"{label}.*.xml")):
        tally.add_file(path)
    return rc, out, err, tally, time.monotonic() - t0


def merge(into, tally):
    into.processes += tally.processes
    into.unparsed += tally.unparsed
    into.total += tally.total
    into.ours += tally.ours
    into.suppressed += tally.suppressed
    into.known += tally.known
    into.kinds.update(tally.kinds)
    into.our_stacks.update(tally.our_stacks)


# ---- the phases ---------------------------------------------------------------------


def phase_tests(python, args, env, workdir, problems):
    paths = args.tests if args.tests else DEFAULT_TESTS
    argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *paths,
            *[f"--deselect={t}" for t in DESELECT], *shlex.split(args.pytest_args)]
    rc, out, err, tally, secs = run_valgrind("tests", argv, ROOT, env, args, workdir)
    summary = [ln for ln in out.splitlines() if " passed" in ln or " failed" in ln or " error" in ln]
    line = summary[-1].strip("= ") if summary else f"no pytest summary (status {rc})"
    if rc != 0:
        problems.append(f"pytest under {'ASan' if args.asan else 'valgrind'}: status {rc}: {line}\n" + "\n".join(out.splitlines()[-30:]))
    return tally, f"{line}; {secs:.0f}s"


def _records(out):
    records = {}
    for ln in out.splitlines():
        if ln.startswith("{"):
            try:
                rec = json.loads(ln)
            except ValueError:
                continue
            records[runner.record_key(rec)] = rec
    return records


def phase_fuzz(python, args, env, workdir, problems):
    total = Tally()
    jobs = []          # (label, child args, keys)
    for collector in [c.strip() for c in args.collectors.split(",") if c.strip()]:
        for start in range(args.start, args.start + args.seeds, args.batch):
            count = min(args.batch, args.start + args.seeds - start)
            keys = [("seed", s) for s in range(start, start + count)]
            jobs.append((f"fuzz-{collector}-{start}", collector,
                         ["--seed", str(start), "--count", str(count)], keys))
    if not args.no_cases:
        sys.path.insert(0, str(ROOT))
        names = subprocess.run(
            [python, "-c", "from tests.differential import graphs; print(*sorted(graphs.NAMED_CASES))"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.split()
        for name in names:
            jobs.append((f"case-{name}", "cyclegc", ["--case", name], [("case", name)]))
    t0 = time.monotonic()
    records_checked = mismatched = expected_ff = 0
    for label, collector, child_args, keys in jobs:
        argv = [python, "-m", runner.CHILD, "--collector", collector, *child_args]
        rc, out, err, tally, _ = run_valgrind(label, argv, ROOT, env, args, workdir)
        merge(total, tally)
        got = runner.ChildResult(collector, child_args, _records(out), rc if rc != "timeout" else -1,
                                 err, rc == "timeout")
        # The reference a collector mode is compared with, and the fields it
        # cannot match by design (runner.REFERENCE / NOT_COMPARABLE), as the
        # soak and test_differential.py compare it.
        reference = runner.REFERENCE.get(collector, "builtin")
        ref_proc = subprocess.run([python, "-m", runner.CHILD, "--collector", reference, *child_args],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        ref = runner.ChildResult(reference, child_args, _records(ref_proc.stdout), ref_proc.returncode,
                                 ref_proc.stderr)
        mismatches = runner.failing(runner.compare(ref, got, keys, ignore=runner.NOT_COMPARABLE.get(
            collector, ())))
        if collector == "cyclegc-ff":
            # Fork-friendly full collections also examine the frozen
            # generation: after a freeze() they may find more (frozen
            # garbage), never less (as tests/test_differential.py allows).
            frozen_more = [m for m in mismatches if runner.fork_friendly_extra_find(m)]
            expected_ff += len(frozen_more)
            mismatches = [m for m in mismatches if m not in frozen_more]
        records_checked += len(keys)
        mismatched += len(mismatches)
        if rc != 0:
            problems.append(f"{label}: the child under valgrind exited with {rc}\n" + err[-2000:])
        for m in mismatches[:3]:
            problems.append(f"{label}: record differs from the built-in's: {m.describe(limit=6)}")
    return total, (f"{records_checked} graphs ({args.seeds} seeds x {args.collectors}"
                   f"{'' if args.no_cases else ' + named cases'}), {mismatched} mismatches "
                   f"(+{expected_ff} expected: fork-friendly collected frozen garbage); "
                   f"{time.monotonic() - t0:.0f}s")


CONTROL = """
import ctypes, os, cyclegc
decref = ctypes.pythonapi.Py_DecRef
decref.argtypes = [ctypes.c_void_p]
holder = [object()]
decref(id(holder[0]))            # the list now holds a freed object
cyclegc.get_referents(holder)    # cyclegc's visit function touches it
os._exit(0)
"""


# Under AddressSanitizer only the extension is instrumented: the freed object
# must be read by cyclegc's own code (is_tracked reads its type).
CONTROL_ASAN = """
import ctypes, os, cyclegc
decref = ctypes.pythonapi.Py_DecRef
decref.argtypes = [ctypes.c_void_p]
holder = [object()]
decref(id(holder[0]))
cyclegc.is_tracked(holder[0])
os._exit(0)
"""


def phase_control(python, args, env, workdir, problems):
    """A use of freed memory made on purpose inside cyclegc's C code: the
    check must attribute it to cyclegc, or it could not see a real one."""
    code = CONTROL_ASAN if args.asan else CONTROL
    rc, out, err, tally, secs = run_valgrind("control", [python, "-c", code], ROOT, env, args, workdir)
    if tally.ours == 0:
        problems.append(f"positive control: the freed object read through cyclegc.get_referents was "
                        f"not attributed to cyclegc (status {rc}, {tally.total} errors)")
    return tally, f"{tally.ours} errors attributed to cyclegc (expected >= 1); {secs:.0f}s"


ASAN_CFLAGS = "-fsanitize=address -fsanitize-recover=address -fno-omit-frame-pointer -g -O1"


def asan_env(python, version, env):
    """Build the extension from HEAD with AddressSanitizer in a temporary
    tree; return the environment that runs it (libasan preloaded, the tree's
    src first on PYTHONPATH), or None."""
    libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                             text=True).stdout.strip()
    if not libasan or not os.path.exists(libasan):
        print("   libasan not found (gcc -print-file-name=libasan.so)")
        return None
    tree = Path(tempfile.mkdtemp(prefix=f"cyclegc-asan-{version}-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "HEAD"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "x", "-C", str(tree)], input=archive, check=True)
    builder = python
    if subprocess.run([python, "-c", "import setuptools"], capture_output=True).returncode != 0:
        venv = tree / "build-venv"     # setuptools for the build only
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "setuptools"],
                       check=True)
        builder = str(venv / "bin" / "python")
    build = subprocess.run([builder, "setup.py", "-q", "build_ext", "--inplace"], cwd=tree,
                           env=dict(os.environ, CFLAGS=ASAN_CFLAGS, LDFLAGS="-fsanitize=address"),
                           capture_output=True, text=True)
    if build.returncode != 0:
        print("   ASan build failed:\n" + build.stderr[-2000:])
        return None
    atexit.register(shutil.rmtree, tree, True)
    env = dict(env, LD_PRELOAD=libasan, ASAN_OPTIONS="detect_leaks=0")
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), env["PYTHONPATH"]])
    print(f"   ASan build of HEAD in {tree}", flush=True)
    return env


def check_interpreter(python, args):
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    env = base_env(args)
    if args.asan:
        env = asan_env(python, version, env)
        if env is None:
            return False, version
    probe = subprocess.run([python, "-c", "import cyclegc, cyclegc._core._cyclegc as c; print(c.__file__)"],
                           cwd=ROOT, env=env, capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"{python}: cannot import cyclegc: {probe.stderr.strip().splitlines()[-1:]}")
        return False, None
    print(f"== Python {version} ({python}); extension {probe.stdout.strip()}", flush=True)
    if args.keep:
        workdir = Path(args.keep) / version
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="cyclegc-valgrind-"))
    problems = []
    rows = []
    grand = Tally()
    try:
        control, detail = phase_control(python, args, env, workdir, problems)
        print(f"   positive control: {detail}", flush=True)
        phases = []
        if not args.no_tests:
            phases.append(("tests", phase_tests))
        if not args.no_fuzz:
            phases.append(("fuzz", phase_fuzz))
        for name, phase in phases:
            tally, detail = phase(python, args, env, workdir, problems)
            merge(grand, tally)
            rows.append((name, tally, detail))
            print(f"   {name}: {detail}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"   {'phase':<6} {'processes':>9} {'errors':>7} {'cyclegc':>8} {'other':>6} {'(known)':>8} "
          f"{'suppressed':>10}")
    for name, t, _ in rows + [("all", grand, "")]:
        print(f"   {name:<6} {t.processes:>9} {t.total:>7} {t.ours:>8} {t.other():>6} {t.known:>8} "
              f"{t.suppressed:>10}"
              + (f"  ({t.unparsed} reports unreadable)" if t.unparsed else ""))
    if grand.kinds:
        print("   by kind: " + ", ".join(f"{k}{' (cyclegc)' if ours else ''} {n}"
                                          for (k, ours), n in sorted(grand.kinds.items())))
    for text, n in grand.our_stacks.most_common(args.show):
        print(f"   -- {n}x\n" + "\n".join("   " + ln for ln in text.splitlines()))
    for p in problems:
        print("   PROBLEM: " + p.replace("\n", "\n      "))
    ok = grand.ours == 0 and not problems and grand.unparsed == 0
    print(f"VERDICT {version}: {'PASS' if ok else 'FAIL'}: {grand.ours} errors attributed to cyclegc, "
          f"{grand.other()} other ({grand.known} of them known taint), {grand.suppressed} suppressed, {len(problems)} problems", flush=True)
    return ok, version


def main(argv=None):
    args = parse_args(argv)
    if not args.asan and not shutil.which("valgrind"):
        print("valgrind is not installed")
        return 2
    ok = True
    for python in args.python or [sys.executable]:
        # Absolute (not resolved: a virtual environment's python is a symlink),
        # the phases run with other working directories.
        python = os.path.abspath(python) if os.sep in python else (shutil.which(python) or python)
        good, _ = check_interpreter(python, args)
        ok = ok and good
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
