"""Which interpreters cyclegc runs on, checked before any C code is loaded.

The core reads and writes the interpreter's private collector state, whose
layout is known only for CPython 3.11, 3.12 and 3.13 with the GIL.  Anywhere
else, importing cyclegc must fail cleanly instead of touching memory.

It imports nothing beyond ``sys`` on the way of a successful import: cyclegc
is often installed at start-up in every process (``python -m cyclegc run``,
a sitecustomize), and modules such as ``platform`` (which brings ``re`` and
``enum``) or ``threading`` would be imported into programs that never asked
for them (CPython's test_threading checks that ``threading`` is not).
"""
import sys

SUPPORTED_VERSIONS = ((3, 11), (3, 12), (3, 13))
SUPPORTED_TEXT = "CPython 3.11, 3.12 and 3.13 (GIL builds)"


def unsupported_reason(
    implementation: str | None = None,
    version: tuple[int, int] | None = None,
    free_threaded: bool | None = None,
) -> str | None:
    """Why this interpreter cannot run cyclegc, or None if it can."""
    implementation = implementation or _implementation()
    version = version or tuple(sys.version_info[:2])
    if free_threaded is None:
        free_threaded = _free_threaded()
    running = f"{implementation} {version[0]}.{version[1]}"
    if implementation != "CPython":
        return f"cyclegc supports only {SUPPORTED_TEXT}; this is {running}"
    if version not in SUPPORTED_VERSIONS:
        return f"cyclegc supports only {SUPPORTED_TEXT}; this is {running}"
    if free_threaded:
        return f"cyclegc supports only {SUPPORTED_TEXT}; this is a free-threaded build of {running}"
    return None


def _implementation() -> str:
    name = sys.implementation.name
    return {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalPy"}.get(name, name)


def _free_threaded() -> bool:
    # A free-threaded build's ABI flags carry "t" (3.13+); sysconfig only
    # where there are no ABI flags to read.
    abiflags = getattr(sys, "abiflags", None)
    if abiflags is not None:
        return "t" in abiflags
    import sysconfig
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def unbuilt_reason() -> str | None:
    """Why the C core cannot be imported (this cyclegc is an unbuilt source
    tree), or None if the extension module is there."""
    import importlib.util
    import os

    try:
        if importlib.util.find_spec("cyclegc._core._cyclegc") is not None:
            return None
    except ImportError:  # pragma: no cover - cyclegc._core itself is missing
        pass
    package = os.path.dirname(os.path.abspath(__file__))
    return (f"cyclegc's C core (cyclegc._core._cyclegc) is not built: this cyclegc was "
            f"imported from a source tree ({package}) where nothing compiled it. Install it "
            f"with `pip install .` in the repository (with the interpreter that will use "
            f"it), then import the installed package: run Python from outside the source "
            f"tree, or without its src/ on sys.path / PYTHONPATH.")


def check_supported() -> None:
    reason = unsupported_reason()
    if reason is None:
        try:
            # What cyclegc imports next anyway; absolute, so that a missing
            # extension is a ModuleNotFoundError naming it.
            __import__(__package__ + "._core._cyclegc")
        except ModuleNotFoundError as exc:
            if exc.name != __package__ + "._core._cyclegc":
                raise
            reason = unbuilt_reason()
    if reason is not None:
        raise ImportError(reason)
