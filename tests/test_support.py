"""Which interpreters cyclegc accepts (checked before the C core loads)."""
import subprocess
import sys

from cyclegc._support import unsupported_reason


def test_supported_interpreters_pass():
    for minor in (11, 12, 13):
        assert unsupported_reason("CPython", (3, minor), False) is None


def test_unsupported_interpreters_are_named_clearly():
    for impl, version, ft in [("CPython", (3, 10), False), ("CPython", (3, 14), False),
                              ("CPython", (3, 13), True), ("PyPy", (3, 11), False)]:
        reason = unsupported_reason(impl, version, ft)
        assert reason is not None and "3.11, 3.12 and 3.13" in reason


def test_check_supported_raises_importerror_naming_the_versions():
    # The real interpreter is supported, so pretend to be PyPy in a child.
    code = ("import cyclegc._support as s\n"
            "s._implementation = lambda: 'PyPy'\n"
            "try:\n    s.check_supported()\nexcept ImportError as e:\n    print('ImportError:', e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.startswith("ImportError: cyclegc supports only CPython 3.11, 3.12 and 3.13")


def test_pytest_entry_point_is_inert_where_cyclegc_cannot_import():
    # The pytest11 entry point must not stop pytest from starting on an
    # interpreter where `import cyclegc` raises ImportError.
    code = ("import sys; sys.modules['cyclegc'] = None\n"
            "import cyclegc_pytest\n"
            "print(cyclegc_pytest.pytest_report_header(None))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("cyclegc: plugin inactive")


def test_pytest_entry_point_exposes_the_plugin_hooks():
    import cyclegc_pytest
    assert callable(cyclegc_pytest.pytest_addoption)
    assert callable(cyclegc_pytest.pytest_configure)


def test_importing_an_unbuilt_source_tree_says_to_install_it(tmp_path):
    """`import cyclegc` from a checkout nobody built names the fix, not just
    "cannot import name '_cyclegc'"."""
    import os
    import shutil

    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    shutil.copytree(os.path.join(src, "cyclegc"), tmp_path / "cyclegc",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    proc = subprocess.run([sys.executable, "-c", "import cyclegc"], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: cyclegc's C core")
    assert "pip install ." in last and str(tmp_path / "cyclegc") in last


def test_import_and_install_bring_no_unasked_modules():
    """Installed at start-up in every process, cyclegc must not import
    threading, re, platform or sysconfig into programs that never asked
    (CPython's test_threading.test_import_from_another_thread failed with
    cyclegc installed: threading was already imported)."""
    code = ("import sys; before = set(sys.modules)\n"
            "import cyclegc; cyclegc.install()\n"
            "print(' '.join(sorted(set(sys.modules) - before)))\n")
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    new = set(proc.stdout.split())
    assert not new & {"threading", "re", "platform", "sysconfig", "enum", "importlib.util"}, new
