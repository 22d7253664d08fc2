"""Short runs of scripts/stress_threads.py (issue 3): 8 threads allocating
cycles with finalizers that release the GIL, raise or start threads,
collect(), freeze()/unfreeze(), gc.callbacks coming and going -- and a
variant whose threads also fork children that collect and exit.

Each run is a subprocess with a timeout, so a deadlock fails the test
instead of hanging it; the script itself exits 1 on any violation
(finalizer run twice or never, weakref callback lost, unexpected
unraisable exception, statistics that disagree, a stalled thread, a child
that failed).  About 10 s per interpreter in all.
"""
import os
import subprocess
import sys

import pytest

import cyclegc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "stress_threads.py")


def run_stress(*args, timeout=180):
    env = dict(os.environ)
    # The cyclegc this test process imported (installed, or the checkout's).
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(cyclegc.__file__)))
    env["PYTHONPATH"] = pkg_parent + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, SCRIPT, "--report", "2", "--stall", "30", *args]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"stress run did not finish in {timeout} s (deadlock?)\n"
                    f"{(exc.stdout or b'')[-3000:]!r}\n{(exc.stderr or b'')[-3000:]!r}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "VERDICT: PASS" in proc.stdout, out[-6000:]
    return proc.stdout


def test_threads_stress_short():
    out = run_stress("--seconds", "5")
    assert "finalized exactly once" in out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_threads_fork_stress_short():
    out = run_stress("--seconds", "4", "--fork", "--fork-every", "0.5")
    assert "forks 0 " not in out, out
