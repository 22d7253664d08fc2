"""python -m cyclegc run: the program runs as under `python`, with cyclegc
running its collections, and a summary of them comes out at exit."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import cyclegc
from cyclegc import report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHURN = os.path.join(REPO, "examples", "churn.py")
PREFORK = os.path.join(REPO, "examples", "prefork_server.py")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cyclegc", "run", *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def run_bounded(tmp_path, max_pause_ms, source):
    """`cyclegc run --max-pause-ms P --json` on a program whose last line
    prints JSON: (the process, what it printed, the run's JSON document)."""
    prog = tmp_path / "bounded.py"
    prog.write_text(source)
    out = tmp_path / "run.json"
    proc = run("--max-pause-ms", max_pause_ms, "--json", str(out), str(prog))
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(proc.stdout), json.loads(out.read_text())


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text(
        "import gc, sys, cyclegc\n"
        "print(__name__, sys.argv[1:], cyclegc.installed(), gc.collect is cyclegc.collect)\n"
        "for i in range(20000):\n"
        "    a = []; a.append(a)\n"
        "sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)\n")
    return str(path)


def test_program_runs_as_main_with_its_args_and_exit_status(script, tmp_path):
    out = tmp_path / "summary.json"
    proc = run("--json", str(out), script, "7", "--help")
    assert proc.returncode == 7
    assert proc.stdout.split() == ["__main__", "['7',", "'--help']", "True", "True"]
    figures = json.loads(out.read_text())
    assert figures["collector"] == "cyclegc" and figures["exit_status"] == 7
    # most of the 20,000 self-cycles (the last ones may still be young at exit)
    assert sum(figures["collections"]) > 0 and figures["collected"] >= 15000
    assert "pause p99" in proc.stderr and "time in GC" in proc.stderr


def test_uncaught_exception_exits_1_with_traceback(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("raise ValueError('boom')\n")
    proc = run("--quiet", str(bad))
    assert proc.returncode == 1 and "ValueError: boom" in proc.stderr


def test_module_mode_like_python_dash_m():
    proc = run("--quiet", "-m", "json.tool", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m json.tool")


@pytest.mark.parametrize("args", [["/no/such/script.py"], ["--no-such-option", "x.py"], [], ["-m"]])
def test_bad_invocations_exit_2(args):
    proc = run(*args)
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_compare_prints_both_collectors():
    proc = run("--compare", CHURN, "--requests", "20000")
    assert proc.returncode == 0, proc.stderr
    assert "built-in" in proc.stderr and "cyclegc" in proc.stderr
    assert proc.stdout.count("served 20000 requests") == 2


def test_summarize_figures():
    pauses = [(0, 0.001, 10, 0), (0, 0.003, 0, 0), (2, 0.010, 5, 1)]
    f = report.summarize("cyclegc", pauses, 1.0)
    assert f["collections"] == [2, 0, 1]
    assert f["pause_max_ms"] == pytest.approx(10.0)
    assert f["pause_p50_ms"] == pytest.approx(3.0)
    assert f["gc_share"] == pytest.approx(0.014)
    assert (f["collected"], f["uncollectable"]) == (15, 1)
    assert "1/0/0" not in report.text(f) and "2/0/1" in report.text(f)


def test_run_pytest_in_a_project_that_turns_warnings_into_errors(tmp_path):
    """`cyclegc run -m pytest` imports cyclegc before pytest loads cyclegc's
    plugin entry point; pytest must not warn that it cannot rewrite the
    package (under `filterwarnings = error` that stopped toolz's suite)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    (tmp_path / "test_x.py").write_text("def test_x():\n    assert 1\n")
    proc = run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout


# ---- services: signals, forked workers, a live look -------------------------

WAITER = (
    "import gc, sys, time\n"
    "for i in range(5000):\n"
    "    a = []; a.append(a)\n"
    "del a\n"
    "gc.collect()\n"
    "print('ready', flush=True)\n"
    "for _ in range(300):\n"
    "    time.sleep(0.1)\n"
    "    if len(sys.argv) > 1:\n"
    "        break\n"
    "sys.exit(3)\n")


def _default_sigint():
    # A shell without job control starts background commands with SIGINT
    # ignored, and Python then leaves it ignored (as it should): give the
    # service the ^C a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args, cwd=None):
    proc = subprocess.Popen([sys.executable, "-m", "cyclegc", "run", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            preexec_fn=_default_sigint)
    line = proc.stdout.readline()
    assert line.startswith("ready"), (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, line


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopping_signal_prints_the_summary_and_keeps_the_status(tmp_path, signum):
    """A service is stopped by SIGTERM (or ^C): the summary comes out, the
    JSON is written, and the process still ends by that signal, as the
    program would have under `python`."""
    prog = tmp_path / "service.py"
    prog.write_text(WAITER)
    out = tmp_path / "run.json"
    proc, _ = start("--json", str(out), str(prog))
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signum, stderr
    assert "cyclegc run summary" in stderr and "objects collected" in stderr
    assert f"signal {int(signum)} ({signal.Signals(signum).name})" in stderr
    figures = json.loads(out.read_text())
    assert figures["exit_status"] == -signum and figures["collected"] >= 5000
    if signum == signal.SIGINT:
        assert "KeyboardInterrupt" in stderr
    assert "runner.py" not in stderr


def test_forked_workers_are_summarized_each_and_in_total(tmp_path):
    """The pre-fork example under `run --fork-friendly`: each worker's
    collections are counted, per worker and in the total."""
    out = tmp_path / "run.json"
    proc, line = start("--fork-friendly", "--json", str(out), PREFORK, "--gc", "cyclegc",
                       "--rows", "20000", "--workers", "2", "--cache", "20")
    port, pids = int(line.split()[1]), [int(p) for p in line.split()[2:]]
    for i in range(1500):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"request-%d" % i)
            s.recv(64)
    proc.send_signal(signal.SIGTERM)           # the server's own handler: it exits 0
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    figures = json.loads(out.read_text())
    by_pid = {p["pid"]: p for p in figures["processes"]}
    assert set(pids) <= set(by_pid) and by_pid[proc.pid]["role"] == "main"
    workers = [by_pid[p] for p in pids]
    # 1,500 requests, each leaving a cycle of 7 objects once out of the cache
    # 1500 requests make ~7500 garbage objects, split between the workers;
    # what each worker's young generation still holds at SIGTERM is not
    # collected (3.13's threshold0 is 2000: 6,902 seen).  Above 5000, both
    # workers' counts are in the sum (one alone is about half).
    assert sum(w["collected"] for w in workers) >= 5 * 1000
    assert all(sum(w["collections"]) > 0 for w in workers)
    for g in range(3):
        assert figures["collections"][g] == sum(p["collections"][g] for p in figures["processes"])
    assert figures["collected"] == sum(p["collected"] for p in figures["processes"])
    assert len(figures["records"]) == sum(map(sum, (p["collections"] for p in figures["processes"])))
    assert "all 3 processes (the program and 2 forked workers)" in stderr
    for pid in pids:
        assert f"worker {pid}" in stderr
    assert "    total " in stderr


def test_a_forked_child_that_calls_sys_exit_is_counted_and_prints_nothing(tmp_path):
    """os.fork() then sys.exit() in the child: the child's collections are
    in the parent's summary, which is the only one printed."""
    prog = tmp_path / "forker.py"
    prog.write_text(
        "import gc, os, sys\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    for i in range(3000):\n"
        "        a = []; a.append(a)\n"
        "    del a\n"
        "    gc.collect()\n"
        "    sys.exit(0)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print('child status', status)\n")
    out = tmp_path / "run.json"
    proc = run("--json", str(out), str(prog))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "child status 0\n"
    assert proc.stderr.count("cyclegc run summary") == 1
    doc = json.loads(out.read_text())
    (child,) = [p for p in doc["processes"] if p["role"] == "worker"]
    assert child["collected"] >= 3000 and child["parent_pid"] == doc["run"]["pid"]


def test_report_signal_prints_the_summary_so_far(tmp_path):
    prog = tmp_path / "service.py"
    prog.write_text(WAITER.replace("len(sys.argv) > 1", "open(sys.argv[1]).read()"))
    flag = tmp_path / "flag"
    flag.write_text("")
    out = tmp_path / "run.json"
    proc, _ = start("--report-signal", "USR1", "--json", str(out), str(prog), str(flag))
    proc.send_signal(signal.SIGUSR1)
    for _ in range(300):
        if out.exists():
            break
        time.sleep(0.1)
    live = json.loads(out.read_text())       # whole: written aside, then renamed
    assert live["exit_status"] is None and live["collected"] >= 5000
    flag.write_text("stop")
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert stderr.count("cyclegc run summary") == 2 and "(so far, at " in stderr
    assert json.loads(out.read_text())["exit_status"] == 3


@pytest.mark.parametrize("name", ["NOPE", "TERM", "KILL"])
def test_report_signal_must_be_one_that_does_not_stop_the_program(script, name):
    proc = run("--report-signal", name, script)
    assert proc.returncode == 2 and "--report-signal" in proc.stderr
    assert proc.stdout == ""


def test_json_carries_every_collection_and_the_runs_facts(script, tmp_path):
    out = tmp_path / "run.json"
    proc = run("--json", str(out), script, "5")
    assert proc.returncode == 5
    doc = json.loads(out.read_text())
    assert doc["schema"] == "cyclegc-run/1"
    facts = doc["run"]
    assert facts["python"] == ".".join(map(str, sys.version_info[:3]))
    assert facts["cyclegc"] == cyclegc.__version__
    assert facts["argv"] == [sys.executable, "-m", "cyclegc", "run", "--json", str(out), script, "5"]
    assert facts["mode"] == "plain" and facts["exit_status"] == 5
    assert facts["started"] <= facts["ended"] and facts["started"].endswith("Z")
    records = doc["records"]
    assert len(records) == sum(doc["collections"])
    assert [r["t_s"] for r in records] == sorted(r["t_s"] for r in records)
    for g in range(3):
        assert sum(1 for r in records if r["generation"] == g) == doc["collections"][g]
    assert sum(r["collected"] for r in records) == doc["collected"]
    assert max(r["duration_ms"] for r in records) == pytest.approx(doc["pause_max_ms"])
    assert all(r["candidates"] >= r["collected"] for r in records)
    assert {r["pid"] for r in records} == {facts["pid"]}


def test_bounded_mode_names_overflows_truncations_and_the_longest_stop(tmp_path):
    """The summary's overflow collections and truncated slices are the
    core's own counts, and the header names the mode."""
    proc, (overflows, truncated, increments), doc = run_bounded(
        tmp_path, "0.5",
        "import json, cyclegc\n"
        "keep = [[{'i': i}] for i in range(100_000)]\n"
        "for i in range(150_000):\n"
        "    a = [keep[i % 1000]]; a.append(a)\n"
        "    if i % 7 == 0: keep.append([a])\n"
        "s = cyclegc.incremental_stats()\n"
        "print(json.dumps([s['overflow_collections'], s['truncated_slices'], s['increments']]))\n")
    assert doc["mode"] == "bounded (max-pause-ms 0.5)"
    assert "cyclegc collector, bounded (max-pause-ms 0.5) mode" in proc.stderr
    b = doc["bounded"]
    assert (b["overflow_collections"], b["truncated_slices"]) == (overflows, truncated)
    kinds = [r["kind"] for r in doc["records"]]
    # (an increment may run between install() and the recorder's start)
    assert increments - 2 <= sum(1 for k in kinds if k != "collect()") <= increments
    assert f"overflow collections     {overflows:,}" in proc.stderr
    assert f"truncated slices         {truncated:,}" in proc.stderr
    longest = max(doc["records"], key=lambda r: r["duration_ms"])
    assert b["longest_stop"] == longest
    assert f"longest stop             {longest['duration_ms']:.3f} ms: " in proc.stderr
    # ... and what the longest automatic stop was spent on
    cause = b["longest_automatic_cause"]
    auto = max((r for r in doc["records"] if r["kind"] != "collect()"),
               key=lambda r: r["duration_ms"])
    assert cause["duration_s"] * 1e3 == pytest.approx(auto["duration_ms"])
    assert cause["seconds"] <= cause["duration_s"] + 1e-6
    assert cause["cause"] in {"young collection", "mark", "sweep slice", "complete collection",
                              "garbage disposal (weakrefs, finalizers, tp_clear)",
                              "overflow collection"}
    assert f"  spent on               {cause['cause']} ({cause['cause_objects']:,} objects)" \
        in proc.stderr


def test_plain_and_fork_friendly_modes_are_named(script):
    assert "cyclegc collector, plain mode" in run(script).stderr
    assert "cyclegc collector, fork-friendly mode" in run("--fork-friendly", script).stderr


def test_compare_repeat_alternates_and_shows_medians_and_ranges(tmp_path):
    out = tmp_path / "compare.json"
    proc = run("--compare", "--repeat", "2", "--json", str(out), CHURN, "--requests", "5000")
    assert proc.returncode == 0, proc.stderr
    labels = [line for line in proc.stdout.splitlines() if line.startswith("--- ")]
    assert labels == [f"--- cyclegc run --compare: run {i}/2 with the {c} ---"
                      for i in (1, 2) for c in ("built-in collector", "cyclegc")]
    assert proc.stdout.count("served 5000 requests") == 4
    assert "median [min - max] over 2 runs each, alternating" in proc.stderr
    doc = json.loads(out.read_text())
    assert [len(doc["runs"][c]) for c in ("builtin", "cyclegc")] == [2, 2]
    totals = [f["pause_total_s"] for f in doc["runs"]["cyclegc"]]
    assert doc["summary"]["cyclegc"]["pause_total_s"]["min"] == min(totals)
    assert doc["summary"]["cyclegc"]["pause_total_s"]["max"] == max(totals)


# ---- errors ------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--json", "--insight-html", "--insight-json"])
def test_bad_output_path_is_a_usage_error_before_the_program_runs(script, option):
    proc = run(option, "/nonexistent/dir/out.json", script, "3")
    assert proc.returncode == 2
    assert proc.stdout == ""                    # the program never ran
    assert f"{option} /nonexistent/dir/out.json: no such directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_failed_write_never_replaces_the_programs_status(tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    prog = tmp_path / "prog.py"
    prog.write_text(f"import shutil, sys\nshutil.rmtree({str(outdir)!r})\nsys.exit(3)\n")
    proc = run("--json", str(outdir / "run.json"), str(prog))
    assert proc.returncode == 3
    assert f"could not write --json {outdir / 'run.json'}" in proc.stderr
    assert "Traceback" not in proc.stderr and "cyclegc run summary" in proc.stderr


def test_missing_module_fails_as_python_does():
    proc = run("-m", "no_such_module_cyclegc")
    ref = subprocess.run([sys.executable, "-m", "no_such_module_cyclegc"],
                         capture_output=True, text=True, timeout=60)
    assert proc.returncode == ref.returncode == 1
    assert proc.stderr == ref.stderr           # "...python: No module named ..."
    assert "run summary" not in proc.stderr


def test_program_traceback_and_file_look_as_under_python(tmp_path):
    (tmp_path / "bad.py").write_text(
        "print(__file__)\n"
        "def f():\n"
        "    raise ValueError('boom')\n"
        "f()\n")
    ref = subprocess.run([sys.executable, "bad.py"], capture_output=True, text=True,
                         timeout=60, cwd=str(tmp_path))
    proc = run("--quiet", "bad.py", cwd=str(tmp_path))
    assert proc.returncode == ref.returncode == 1
    assert proc.stdout == ref.stdout == str(tmp_path / "bad.py") + "\n"
    assert proc.stderr == ref.stderr
    assert "runner.py" not in proc.stderr and "runpy" not in proc.stderr


def test_module_traceback_starts_at_the_module(tmp_path):
    (tmp_path / "badmod.py").write_text("raise KeyError('x')\n")
    ref = subprocess.run([sys.executable, "-m", "badmod"], capture_output=True, text=True,
                         timeout=60, cwd=str(tmp_path))
    proc = run("--quiet", "-m", "badmod", cwd=str(tmp_path))
    assert proc.returncode == ref.returncode == 1
    assert "runner.py" not in proc.stderr and "<frozen runpy>" not in proc.stderr
    assert proc.stderr.splitlines()[1:] == [
        line for line in ref.stderr.splitlines()[1:] if "runpy" not in line]


def test_bounded_mode_says_how_often_threads_waited_for_a_stop(tmp_path):
    """Threads that need a collection while another thread's stop runs the
    recorder's callback wait for it; the summary counts those waits, from
    incremental_stats()."""
    proc, waits, doc = run_bounded(
        tmp_path, "2",
        "import json, threading, cyclegc\n"
        "def work():\n"
        "    for i in range(150_000):\n"
        "        a = [i]; a.append(a)\n"
        "ts = [threading.Thread(target=work) for _ in range(4)]\n"
        "for t in ts: t.start()\n"
        "for t in ts: t.join()\n"
        "print(json.dumps(cyclegc.incremental_stats()['stop_waits']))\n")
    b = doc["bounded"]
    assert waits > 0 and b["stop_waits"] >= waits
    assert f"threads waited           {b['stop_waits']:,} times" in proc.stderr
