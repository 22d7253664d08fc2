"""The layout check: the core proves its compiled-in struct offsets against
the running interpreter when it loads (src/cyclegc/_core/layout.c), and
refuses to load, changing nothing, when they do not hold.

A mismatch is forced with CYCLEGC_TEST_LAYOUT_SHIFT=<group>, which makes the
check read that group one pointer off, as a patch level with a changed
struct would make it.
"""
import gc
import json
import os
import platform
import statistics
import subprocess
import sys

import pytest

import cyclegc
from cyclegc._core import _cyclegc as core

HOOK = "CYCLEGC_TEST_LAYOUT_SHIFT"


def child(code, **env):
    full = dict(os.environ)
    full.pop(HOOK, None)
    full.update(env)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def observable_state():
    return {"thresholds": gc.get_threshold(), "debug": gc.get_debug(),
            "enabled": gc.isenabled(), "recursion_limit": sys.getrecursionlimit(),
            "older_counts": gc.get_count()[1:], "stats": gc.get_stats(),
            "frozen": gc.get_freeze_count()}


def test_the_core_says_what_it_was_built_for_and_what_it_checked():
    built = core.BUILT_FOR.split(".")
    assert built[:2] == [str(v) for v in sys.version_info[:2]]
    groups = set(core.LAYOUT_GROUPS)
    assert {"runtime", "gc", "lists", "freelists", "frame"} <= groups
    # interp->ceval is only written (hence checked) on 3.11 and 3.12
    assert ("ceval" in groups) == (sys.version_info < (3, 13))
    assert 0 < core.LAYOUT_CHECK_CPU_SECONDS <= core.LAYOUT_CHECK_SECONDS + 1e-4 < 1


def test_the_check_passes_again_and_changes_nothing():
    # Thresholds too high for an automatic collection to change the
    # counts or stats meanwhile; the collector stays enabled.
    gc.set_threshold(100_003, 7, 9)
    gc.set_debug(gc.DEBUG_STATS)
    try:
        before = observable_state()
        seconds, cpu_seconds = core._layout_check()
        assert observable_state() == before
    finally:
        gc.set_debug(0)
    assert 0 < seconds < 1 and 0 < cpu_seconds < 1


def test_the_check_holds_with_gc_disabled():
    gc.disable()
    core._layout_check()
    assert not gc.isenabled()


def test_the_check_holds_while_cyclegc_is_installed():
    # install() patches the gc module's functions and disables the
    # interpreter's own automatic collection: the check asks a fresh
    # instance of the built-in gc module and restores `enabled` as it was.
    cyclegc.install()
    try:
        core._layout_check()
        assert cyclegc.isenabled() and cyclegc.installed()
    finally:
        cyclegc.uninstall()


def test_the_check_ignores_a_patched_or_replaced_gc_module(monkeypatch):
    monkeypatch.setattr(gc, "get_threshold", lambda: (1, 2, 3))
    monkeypatch.setattr(gc, "garbage", [])
    monkeypatch.setitem(sys.modules, "gc", cyclegc)
    core._layout_check()


def test_the_check_sees_frozen_objects():
    gc.freeze()
    try:
        assert gc.get_freeze_count() > 0
        core._layout_check()
    finally:
        gc.unfreeze()


REFUSED = """
import gc, json, os, sys
def state():
    return [gc.get_threshold(), gc.get_debug(), gc.isenabled(), sys.getrecursionlimit(),
            gc.get_count()[1:], gc.get_stats()]
gc.set_threshold(100_001, 11, 13)  # no automatic collection meanwhile
before = state()
try:
    import cyclegc
    message = None
except ImportError as e:
    message = str(e)
after = state()
loaded = [m for m in sys.modules if m.startswith("cyclegc")]
# Without the hook the very same process imports cyclegc and collects.
del os.environ["CYCLEGC_TEST_LAYOUT_SHIFT"]
import cyclegc
class A: pass
a = A(); a.self = a; del a
print(json.dumps({"message": message, "same_state": before == after, "loaded": loaded,
                  "collected": cyclegc.collect()}))
"""


@pytest.mark.parametrize("group", core.LAYOUT_GROUPS)
def test_a_forced_mismatch_is_refused_with_both_patch_levels_named(group):
    out = child(REFUSED, **{HOOK: group})
    message = out["message"]
    assert message is not None, f"import succeeded with {group} shifted"
    assert message.startswith(f"cyclegc's core was built for CPython {core.BUILT_FOR} "
                              f"and this is CPython {platform.python_version()}")
    assert f"({group}: " in message and f"{HOOK}={group}" in message
    assert "Nothing was changed" in message and "pip install --no-binary cyclegc" in message
    assert out["same_state"], "the refused check left the collector state changed"
    # Only the pure-Python parts that ran before the core were imported.
    assert "cyclegc" not in out["loaded"] and "cyclegc.api" not in out["loaded"]
    assert out["collected"] >= 2


def test_an_unknown_group_for_the_hook_is_refused_too():
    out = child(REFUSED, **{HOOK: "no-such-group"})
    assert "names no group of the layout check" in out["message"]


def test_the_check_costs_well_under_a_millisecond_at_import():
    # Wall time includes being preempted on a loaded machine; the thread's
    # CPU time is what the check costs.
    code = ("import json, time\nt = time.perf_counter()\nimport cyclegc\n"
            "from cyclegc._core import _cyclegc as c\n"
            "print(json.dumps([c.LAYOUT_CHECK_SECONDS, c.LAYOUT_CHECK_CPU_SECONDS,\n"
            "                  time.perf_counter() - t]))\n")
    runs = [child(code) for _ in range(7)]
    wall, cpu, imports = (sorted(r[i] for r in runs) for i in range(3))
    print(f"layout check at import: wall min {wall[0] * 1e6:.0f} us, median "
          f"{statistics.median(wall) * 1e6:.0f} us; CPU median {statistics.median(cpu) * 1e6:.0f} "
          f"us, max {cpu[-1] * 1e6:.0f} us; whole import cyclegc: median "
          f"{statistics.median(imports) * 1e3:.1f} ms")
    assert wall[0] < 1e-3
    assert statistics.median(cpu) < 1e-3
