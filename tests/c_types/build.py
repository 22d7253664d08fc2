"""Compiles _cyclegc_testtypes.c for the running interpreter, at test time.

The C compiler is called directly (the one the interpreter was built with,
``sysconfig.get_config_var("CC")``, or ``$CC``), so the tests need neither
setuptools nor a build step of their own; it takes about 0.1 s.
``build(directory)`` returns the imported module, or raises ``NoCompiler``
when there is no compiler or no Python.h (the caller skips, saying why); a
compiler that is there but fails is a test failure (``BuildError``).
"""
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_cyclegc_testtypes.c")
NAME = "_cyclegc_testtypes"


class NoCompiler(Exception):
    pass


class BuildError(Exception):
    pass


def compiler():
    """The compiler command as a list, or raises NoCompiler saying why."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC")
    if not cc:
        raise NoCompiler("sysconfig has no CC for this interpreter and $CC is not set")
    argv = shlex.split(cc)
    if shutil.which(argv[0]) is None:
        raise NoCompiler(f"C compiler {argv[0]!r} (from {'$CC' if os.environ.get('CC') else 'sysconfig CC'}) not found")
    return argv


def build(directory):
    """Compiles the test types into `directory` and imports them."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    out = os.path.join(directory, NAME + suffix)
    include = sysconfig.get_paths()["include"]
    if not os.path.exists(os.path.join(include, "Python.h")):
        raise NoCompiler(f"no Python.h in {include} (the interpreter's headers are not installed)")
    cmd = compiler() + [
        "-shared", "-fPIC", "-O1", "-w",
        "-I", include,
        SOURCE, "-o", out,
    ]
    if sys.platform == "darwin":
        cmd[1:1] = ["-undefined", "dynamic_lookup"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise BuildError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n"
                         f"{proc.stdout}{proc.stderr}")
    spec = importlib.util.spec_from_file_location(NAME, out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[NAME] = module
    return module
