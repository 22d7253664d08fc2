"""Build the C core against the running interpreter's own headers.

The core reaches CPython's collector state through its internal headers, so it
is compiled with Py_BUILD_CORE_MODULE for exactly the interpreter that runs the
build; when it loads, it proves those offsets against the running interpreter
(src/cyclegc/_core/layout.c), which may be another patch level (a wheel).

On an interpreter cyclegc does not support (other versions, free-threaded
builds, other implementations) building fails with the reason, so that pip
refuses the install instead of installing something that cannot import.
``requires-python`` already keeps pip away from other versions; this catches
what it cannot express (free-threaded 3.13t, PyPy).  Building the sdist needs
no compiler and works anywhere.
"""
import importlib.util
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def _unsupported_reason():
    # The one definition of what is supported, also used at import time.
    path = os.path.join(HERE, "src", "cyclegc", "_support.py")
    spec = importlib.util.spec_from_file_location("_cyclegc_support", path)
    support = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(support)
    return support.unsupported_reason()


class BuildCore(build_ext):
    def run(self):
        reason = _unsupported_reason()
        if reason is not None:
            raise SystemExit(f"error: cannot build cyclegc here: {reason}")
        super().run()


core = Extension(
    "cyclegc._core._cyclegc",
    sources=[
        "src/cyclegc/_core/module.c",
        "src/cyclegc/_core/collector.c",
        "src/cyclegc/_core/incremental.c",
        "src/cyclegc/_core/immortal.c",
        "src/cyclegc/_core/introspect.c",
        "src/cyclegc/_core/layout.c",
        "src/cyclegc/_core/metrics.c",
        "src/cyclegc/_core/protocol.c",
        "src/cyclegc/_core/readonly.c",
        "src/cyclegc/_core/stackroots.c",
        "src/cyclegc/_core/writewatch.c",
        "src/cyclegc/_core/trigger.c",
    ],
    depends=[
        "src/cyclegc/_core/addrset.h",
        "src/cyclegc/_core/collector.h",
        "src/cyclegc/_core/compat.h",
        "src/cyclegc/_core/gclist.h",
    ],
    define_macros=[("Py_BUILD_CORE_MODULE", "1")],
    extra_compile_args=["-Wall", "-Wno-unused-function"],  # keep the interpreter's -O3
)

setup(ext_modules=[core], cmdclass={"build_ext": BuildCore})
