"""The real programs of the realworld benchmark: what each runs and what of
its output is compared.

Each program has a name, whether it forks (then modes "fork", "immortal" and "freeze" apply too),
`prepare(ctx)` (sources, once per interpreter) and `run(ctx, mode, run_dir)`
returning the capture.run_command figures plus ``compare``: {what: text or
digest}, compared byte for byte between runs (after capture.normalise).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

from capture import children, mode_env, normalise, run_command, tree_manifest, uss_mb

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"


class Context:
    """What the programs of one interpreter share: the venv's python, the
    work directory, the command-line options."""

    def __init__(self, py, workdir, opts, log=print):
        self.py, self.workdir, self.opts, self.log = Path(py), Path(workdir), opts, log
        self.bin = self.py.parent
        self.sources = {}

    def site_packages(self):
        return Path(subprocess.run([str(self.py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())


class Program:
    name = ""
    forks = False
    what = ""

    def prepare(self, ctx):
        pass

    def modes(self, modes):
        return [m for m in modes if m not in ("fork", "immortal", "freeze") or self.forks]

    def renormalise(self, compare):
        """What else varies legitimately in this program's output (applied on
        top of capture.normalise, also to runs recorded before it existed)."""
        return compare


# ---- 1. a documentation build ---------------------------------------------------

SPHINX_SDIST = "sphinx==8.1.3"
# Appended to the sdist's doc/conf.py: no network (intersphinx would fetch
# inventories), and the two largest parts (the changelog, the extension API)
# left out so that a build takes ~30 s here.
SPHINX_CONF_TAIL = """
# --- benchmarks/realworld: no network, bounded size ---
intersphinx_mapping = {}
exclude_patterns = [*exclude_patterns, "changes/**", "extdev/**"]
"""


class Sphinx(Program):
    name = "sphinx"
    what = "Sphinx 8.1.3 builds its own documentation (HTML, from its sdist; changelog and extdev/ left out)"

    def prepare(self, ctx):
        from envs import fetch_sdist
        src = fetch_sdist(ctx.py, SPHINX_SDIST, ctx.workdir, ctx.log)
        conf = src / "doc" / "conf.py"
        text = conf.read_text()
        if "benchmarks/realworld" not in text:
            conf.write_text(text + SPHINX_CONF_TAIL)
        ctx.sources["sphinx"] = src

    def run(self, ctx, mode, run_dir):
        doc = ctx.sources["sphinx"] / "doc"
        out = run_dir / "html"
        res = run_command([ctx.bin / "sphinx-build", "-q", "-b", "html", "-d", run_dir / "doctrees", doc, out],
                          mode_env(mode, run_dir), run_dir, run_dir, ctx.opts.timeout)
        manifest = tree_manifest(out) if out.is_dir() else {}
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(run_dir / "doctrees", ignore_errors=True)
        res["compare"] = {"stdout": normalise(res["stdout"], run_dir),
                          "stderr": normalise(res["stderr"], run_dir),
                          "returncode": str(res["returncode"]),
                          "html": json.dumps(manifest, indent=0, sort_keys=True)}
        res["summary"] = f"{len(manifest)} files, {res['stderr'].count('WARNING')} warnings"
        return res


# ---- 2. a linter on a real code base ---------------------------------------------

class Pylint(Program):
    name = "pylint"
    what = "pylint 3.3.1 on the source of requests 2.32.3 (its sdist's src/requests), default checks, -j 1"

    def prepare(self, ctx):
        from envs import fetch_sdist
        ctx.sources["requests"] = fetch_sdist(ctx.py, "requests==2.32.3", ctx.workdir, ctx.log)

    def run(self, ctx, mode, run_dir):
        target = ctx.sources["requests"] / "src" / "requests"
        res = run_command([ctx.py, "-m", "pylint", "--persistent=n", "-j", "1", "--rcfile=/dev/null", target],
                          mode_env(mode, run_dir), run_dir, run_dir, ctx.opts.timeout)
        res["compare"] = {"stdout": normalise(res["stdout"], run_dir), "stderr": normalise(res["stderr"], run_dir),
                          "returncode": str(res["returncode"])}
        lines = res["stdout"].strip().splitlines()
        res["summary"] = lines[-1].strip() if lines else ""
        return res

    def renormalise(self, compare):
        return {**compare, "stdout": normalise_duplicate_code(compare.get("stdout", ""))}


_DUPLICATE_BLOCK = re.compile(r"(^==[^\n]*:\[\d+:\d+\]\n)((?!==)[^\n]*\n)*?([^\n]*)\(duplicate-code\)", re.M)


def normalise_duplicate_code(text):
    """pylint's duplicate-code message (R0801) quotes the duplicated lines of
    one of the files it names: the last one met iterating over a set of
    (LineSet, start, end) tuples, and LineSet hashes by id() (pylint 3.3.1,
    checkers/symilar.py, SimilarChecker.close).  Which file that is depends
    on object addresses, i.e. on where the allocator put things, which any
    change in when garbage is freed changes.  The quoted lines are replaced;
    the files and line ranges named stay compared."""
    return _DUPLICATE_BLOCK.sub(lambda m: m.group(1) + "<quoted lines of one of the files above> (duplicate-code)",
                                text)


# ---- 3. a large project's test suite --------------------------------------------

NX_PATHS = ["classes", "algorithms/isomorphism", "algorithms/shortest_paths",
            "algorithms/centrality"]


class NetworkxTests(Program):
    name = "pytest"
    what = ("networkx 3.4.2's own test suite (shipped in the package), pytest 8.3.3: "
            + ", ".join(NX_PATHS) + " (~1,900 tests)")

    def run(self, ctx, mode, run_dir):
        nx = ctx.site_packages() / "networkx"
        junit = run_dir / "junit.xml"
        res = run_command([ctx.py, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                           *[nx / p for p in NX_PATHS]],
                          mode_env(mode, run_dir), run_dir, run_dir, ctx.opts.timeout)
        outcomes = junit_outcomes(junit) if junit.exists() else []
        res["compare"] = {"stdout": normalise(res["stdout"], run_dir), "stderr": normalise(res["stderr"], run_dir),
                          "returncode": str(res["returncode"]),
                          "outcomes": "\n".join(" ".join(o) for o in outcomes)}
        lines = res["stdout"].strip().splitlines()
        res["summary"] = normalise(lines[-1], run_dir) if lines else ""
        return res


def junit_outcomes(path):
    """[(classname::name, outcome)] of a JUnit XML file, in file order."""
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
                break
        out.append((f"{case.get('classname')}::{case.get('name')}", outcome))
    return out


# ---- 4. a pre-fork server under HTTP load ------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.read() == b"ok":
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def parse_wrk(text):
    """Requests, requests/s, errors and latency percentiles from wrk's output."""
    out = {"requests": None, "rps": None, "non2xx": 0, "socket_errors": 0, "latency": {}}
    for line in text.splitlines():
        parts = line.split()
        if "requests in" in line and parts and parts[0].isdigit():
            out["requests"] = int(parts[0])
        elif line.startswith("Requests/sec:"):
            out["rps"] = float(parts[1])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            out["non2xx"] = int(parts[-1])
        elif line.strip().startswith("Socket errors:"):
            out["socket_errors"] = sum(int(p.strip(",")) for p in parts if p.strip(",").isdigit())
        elif len(parts) == 2 and parts[0].endswith("%") and parts[0][:-1].replace(".", "").isdigit():
            out["latency"][parts[0]] = parts[1]
    return out


CHECK_KEYS = [0, 1, 7, 499, 999, 4242, 31337, 49999, 123456, 499999]


class Gunicorn(Program):
    name = "gunicorn"
    forks = True
    what = ("gunicorn 23.0.0, 4 sync workers, preload_app, serving a Flask 3.0.3 application "
            "with a 300k-row catalogue (0.9M tracked objects) built before fork; load from wrk on loopback")

    def run(self, ctx, mode, run_dir):
        o = ctx.opts
        port = free_port()
        env = mode_env(mode, run_dir)
        env.update(REALWORLD_BIND=f"127.0.0.1:{port}", REALWORLD_ROWS=str(o.rows), PYTHONPATH=str(APPS))
        err = open(run_dir / "stderr", "wb")
        t0 = time.perf_counter()
        master = subprocess.Popen([ctx.bin / "gunicorn", "-c", APPS / "gunicorn_conf.py", "wsgi_app:app"],
                                  env=env, cwd=APPS, stdout=err, stderr=err, start_new_session=True)
        res = {"returncode": None, "timed_out": False}
        try:
            if not wait_port(port, 120):
                raise RuntimeError(f"gunicorn did not answer in mode {mode}")
            startup = time.perf_counter() - t0
            time.sleep(1.0)
            workers = sorted(children(master.pid))
            samples = [{"t_s": 0.0, "uss_mb": [uss_mb(p) for p in workers]}]
            wrk = subprocess.Popen(["wrk", "-t", "2", "-c", str(o.connections), "-d", f"{int(o.load_seconds)}s",
                                    "--timeout", "10s", "--latency", "-s", APPS / "load.lua",
                                    f"http://127.0.0.1:{port}"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            t_load = time.perf_counter()
            while wrk.poll() is None:
                time.sleep(min(o.sample_every, 1.0))
                now = time.perf_counter() - t_load
                if now - samples[-1]["t_s"] >= o.sample_every:
                    samples.append({"t_s": round(now, 1), "uss_mb": [uss_mb(p) for p in workers if _alive(p)]})
                if now > o.load_seconds + 60:
                    wrk.kill()
            wrk_out = wrk.communicate(timeout=30)[0]
            load = parse_wrk(wrk_out)
            after = [uss_mb(p) for p in workers if _alive(p)]
            samples.append({"t_s": round(time.perf_counter() - t_load, 1), "uss_mb": after})
            # The output compared: the responses to fixed requests after the load.
            bodies = {}
            for key in CHECK_KEYS:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/item/{key}", timeout=10) as r:
                    bodies[str(key)] = r.read().decode()
            same_workers = sorted(children(master.pid)) == workers
        finally:
            if master.poll() is None:
                master.send_signal(signal.SIGTERM)
            try:
                _, status, rusage = os.wait4(master.pid, 0) if _wait(master, 60) else (0, 0, None)
            except ChildProcessError:
                status, rusage = 0, None
            err.close()
        res.update(wall_s=time.perf_counter() - t0, startup_s=startup, returncode=os.waitstatus_to_exitcode(status),
                   maxrss_kb=rusage.ru_maxrss if rusage else 0, workers=workers, same_workers=same_workers,
                   load=load, wrk=wrk_out, uss_samples=samples,
                   uss_after_mb=sum(after) / len(after) if after else None,
                   uss_after_max_mb=max(after, default=None),
                   stdout="", stderr=(run_dir / "stderr").read_text(errors="replace"))
        res["compare"] = {"responses": json.dumps(bodies, sort_keys=True, indent=0),
                          "load_errors": f"non2xx={load['non2xx']} socket_errors={load['socket_errors']}",
                          "stderr": normalise(_strip_gunicorn_log(res["stderr"]), run_dir)}
        res["summary"] = (f"{load['requests']} requests, {load['rps']} req/s, "
                          f"USS after {res['uss_after_mb']:.1f} MB/worker")
        return res


def _alive(pid):
    return os.path.exists(f"/proc/{pid}")


def _wait(proc, timeout):
    """Wait for proc without reaping it (wait4 reaps it after); kill it after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return False
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    return True


def _strip_gunicorn_log(text):
    """gunicorn's log lines carry a timestamp and a pid: keep their message."""
    import re
    return re.sub(r"^\[[^\]]*\] \[\d+\] ", "", text, flags=re.M)


# ---- 5. an asyncio application ------------------------------------------------------

class Aiohttp(Program):
    name = "aiohttp"
    what = ("aiohttp 3.10.10 server and asyncio client (ClientSession) in one event loop on loopback: "
            "20,000 requests, 32 at a time, a 200k-row catalogue")

    def run(self, ctx, mode, run_dir):
        o = ctx.opts
        env = mode_env(mode, run_dir)
        res = run_command([ctx.py, APPS / "aio_app.py", "--requests", str(o.aio_requests), "--rows", "200000",
                           "--max-seconds", str(min(o.timeout, 600))],
                          env, APPS, run_dir, o.timeout)
        res["compare"] = {"stdout": normalise(res["stdout"], run_dir), "stderr": normalise(res["stderr"], run_dir),
                          "returncode": str(res["returncode"])}
        res["summary"] = res["stdout"].strip().splitlines()[-1] if res["stdout"].strip() else ""
        return res


PROGRAMS = {p.name: p for p in (Sphinx(), Pylint(), NetworkxTests(), Gunicorn(), Aiohttp())}
