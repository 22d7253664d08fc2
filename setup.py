"""Build the C core against the running interpreter's own headers.

The core reaches CPython's collector state through its internal headers, so it
is compiled with Py_BUILD_CORE_MODULE for exactly the interpreter that runs the
build.  On an interpreter cyclegc does not support the extension is not built
at all: `import cyclegc` then raises a clear ImportError instead of loading code
compiled for a struct layout it does not understand.
"""
import platform
import sys
import sysconfig

from setuptools import Extension, setup

SUPPORTED = {(3, 11), (3, 12), (3, 13)}


def _supported() -> bool:
    return (
        platform.python_implementation() == "CPython"
        and sys.version_info[:2] in SUPPORTED
        and not sysconfig.get_config_var("Py_GIL_DISABLED")
    )


core = Extension(
    "cyclegc._core._cyclegc",
    sources=[
        "src/cyclegc/_core/module.c",
        "src/cyclegc/_core/collector.c",
        "src/cyclegc/_core/incremental.c",
        "src/cyclegc/_core/introspect.c",
        "src/cyclegc/_core/layout.c",
        "src/cyclegc/_core/metrics.c",
        "src/cyclegc/_core/protocol.c",
        "src/cyclegc/_core/readonly.c",
        "src/cyclegc/_core/trigger.c",
    ],
    depends=[
        "src/cyclegc/_core/compat.h",
        "src/cyclegc/_core/gclist.h",
        "src/cyclegc/_core/collector.h",
    ],
    define_macros=[("Py_BUILD_CORE_MODULE", "1")],
    extra_compile_args=["-Wall", "-Wno-unused-function"],  # keep the interpreter's -O3
)

setup(ext_modules=[core] if _supported() else [])
