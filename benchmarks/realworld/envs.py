"""Virtual environments and sources of the realworld benchmark.

One venv per interpreter, ``<workdir>/venv-<minor>``, with the pinned
programs (requirements.txt, constrained by constraints.txt: the full set as
resolved on 3.12.1), cyclegc built from this checkout (``pip install
<repo>``), and a .pth that imports, in every Python process of the venv,
scripts/regrtest/cyclegc_regrtest_hook.py (installs cyclegc by mode, the
hook regrtest_compare.py uses) and then cyclegc_realworld_hook.py (times the
collections).  Sources the programs work on (pinned sdists) are downloaded
once into ``<workdir>/src``.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REGRTEST_HOOK = ROOT / "scripts" / "regrtest" / "cyclegc_regrtest_hook.py"
REALWORLD_HOOK = HERE / "cyclegc_realworld_hook.py"
REQUIREMENTS = HERE / "requirements.txt"
CONSTRAINTS = HERE / "constraints.txt"
PTH_NAME = "cyclegc_realworld.pth"

PYENV = {"3.11": "3.11.7", "3.12": "3.12.1", "3.13": "3.13.0"}


def find_python(spec):
    """'3.12' / '3.12.1' / a path -> an interpreter path."""
    if os.sep in spec:
        return spec
    full = PYENV.get(spec, spec)
    path = Path.home() / ".pyenv" / "versions" / full / "bin" / "python"
    if path.exists():
        return str(path)
    out = subprocess.run(["pyenv", "which", "python"], env={**os.environ, "PYENV_VERSION": full},
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def version_of(python):
    return subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def _pip(py, *args, cwd=None):
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                   check=True, cwd=cwd or "/tmp")


def site_packages(py):
    return Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())


def install_hooks(py):
    """Copy both hooks next to the venv's packages and the .pth importing them."""
    site = site_packages(py)
    shutil.copy(REGRTEST_HOOK, site / REGRTEST_HOOK.name)
    shutil.copy(REALWORLD_HOOK, site / REALWORLD_HOOK.name)
    (site / PTH_NAME).write_text("import cyclegc_regrtest_hook, cyclegc_realworld_hook\n")


def requirements_hash():
    h = hashlib.sha256(REQUIREMENTS.read_bytes())
    if CONSTRAINTS.exists():
        h.update(CONSTRAINTS.read_bytes())
    return h.hexdigest()[:16]


def make_venv(python, workdir, reuse=False, log=print):
    """The venv for `python`; with `reuse`, an existing one is taken as it is
    (the hooks are still copied: they are this checkout's)."""
    minor = ".".join(version_of(python).split(".")[:2])
    venv = Path(workdir) / f"venv-{minor}"
    py = venv / "bin" / "python"
    marker = venv / "realworld-installed"
    if reuse and py.exists() and marker.exists():
        log(f"  reusing {venv}")
        install_hooks(py)
        return py
    if not py.exists():
        log(f"  creating {venv}")
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    log("  installing the pinned programs")
    cons = ["-c", str(CONSTRAINTS)] if CONSTRAINTS.exists() else []
    _pip(py, "-r", str(REQUIREMENTS), *cons)
    log("  installing cyclegc from this checkout")
    _pip(py, "--force-reinstall", "--no-deps", str(ROOT))
    install_hooks(py)
    marker.write_text(requirements_hash() + "\n")
    return py


def freeze(py):
    return subprocess.run([str(py), "-m", "pip", "freeze", "--disable-pip-version-check"],
                          capture_output=True, text=True).stdout.split()


def fetch_sdist(py, requirement, workdir, log=print):
    """Download (once) and unpack a pinned sdist; returns its directory."""
    name, version = requirement.split("==")
    src = Path(workdir) / "src"
    src.mkdir(parents=True, exist_ok=True)
    for cand in (f"{name}-{version}", f"{name.replace('-', '_')}-{version}"):
        if (src / cand).is_dir():
            return src / cand
    sdists = Path(workdir) / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    log(f"  downloading {requirement} (sdist)")
    subprocess.run([str(py), "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-binary", ":all:", "-d", str(sdists), requirement], check=True, cwd="/tmp")
    for archive in sorted(sdists.iterdir()):
        base = archive.name
        if base.lower().startswith((f"{name}-{version}".lower(), f"{name.replace('-', '_')}-{version}".lower())) \
                and base.endswith(".tar.gz"):
            with tarfile.open(archive) as tar:
                if sys.version_info >= (3, 12):
                    tar.extractall(src, filter="data")
                else:
                    tar.extractall(src)
            return src / base[:-len(".tar.gz")]
    raise RuntimeError(f"no sdist of {requirement} in {sdists}")
