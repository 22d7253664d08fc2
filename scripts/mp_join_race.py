"""Shows multiprocessing's join race without any collector involved.

    python scripts/mp_join_race.py [seconds]     # default 20

Eight threads start and join fork-context multiprocessing children in a
loop, nothing else.  When one thread's Process.start() reaps another
thread's child in multiprocessing's _cleanup(), that thread's join()
returns at once with exitcode None, although the child has exited (CPython
gh-130895, gh-148318).  The script counts such joins and checks that the
status turns up shortly after (the reaping thread stores it).  This is what
scripts/stress_threads.py --fork used to report as a hung child; see
docs/hardening.md, Stress.
"""
import multiprocessing
import sys
import threading
import time
import warnings

warnings.simplefilter("ignore", DeprecationWarning)    # fork with threads (3.12+)


def main(seconds):
    ctx = multiprocessing.get_context("fork")
    lock = threading.Lock()
    counts = {"joins": 0, "exitcode None after join": 0, "status never came": 0}
    stop = time.monotonic() + seconds

    def worker():
        while time.monotonic() < stop:
            p = ctx.Process(target=int)
            p.start()
            p.join(120)
            early = p.exitcode is None
            deadline = time.monotonic() + 5
            while p.exitcode is None and time.monotonic() < deadline:
                time.sleep(0.001)
            with lock:
                counts["joins"] += 1
                counts["exitcode None after join"] += early
                counts["status never came"] += p.exitcode is None

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(sys.version.split()[0], ", ".join(f"{k}: {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 20)
