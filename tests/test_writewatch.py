"""The page write detector (writewatch.c): userfaultfd write-protection
resolved by the kernel (UFFD_FEATURE_WP_ASYNC) and PAGEMAP_SCAN, on pages
the core maps for the purpose."""
import pytest

from cyclegc._core import _cyclegc as core

SELF = core._write_watch_selftest()
needs_watch = pytest.mark.skipif(
    not SELF["available"],
    reason="this kernel or sandbox gives no userfaultfd write-protection with PAGEMAP_SCAN "
           "(Linux 6.7+, and no seccomp filter against userfaultfd)")


@needs_watch
def test_protected_pages_are_clean_until_written():
    assert SELF["protected"]
    assert SELF["dirty_after_protect"] == 0


@needs_watch
def test_a_write_marks_its_page_only():
    assert SELF["write_seen_on_its_page"]


@needs_watch
def test_a_write_by_the_kernel_succeeds_and_is_seen():
    # read(2) into a protected page: the kernel resolves its own fault
    assert SELF["kernel_write_seen"]


@needs_watch
def test_an_unmapped_page_is_never_called_clean():
    assert SELF["unmapped_answer"] == -1


def test_stats_say_whether_the_detector_works():
    stats = core.incremental_stats()["spread"]
    assert stats["write_watch"]["available"] is SELF["available"]
    # spreading is on by default, enabled exactly where the detector works
    assert stats["enabled"] is SELF["available"]
    previous = core._set_spread(False)
    try:
        assert core.incremental_stats()["spread"]["enabled"] is False
    finally:
        core._set_spread(previous)


@needs_watch
def test_the_detectors_descriptors_stay_out_of_the_programs_numbers():
    """The detector opens two descriptors the first time it is used, at
    whatever point of the program that is.  At the lowest free numbers they
    can break a run of consecutive descriptors the program makes later
    (CPython's test_os test_closerange wants one); they are kept high,
    below the soft limit."""
    import json
    import subprocess
    import sys
    code = (
        "import json, os, resource\n"
        "from cyclegc._core import _cyclegc as core\n"
        "before = set(os.listdir('/proc/self/fd'))\n"
        "core._write_watch_selftest()\n"
        "after = set(os.listdir('/proc/self/fd'))\n"
        "print(json.dumps({'new': sorted(int(f) for f in after - before),\n"
        "                  'soft': resource.getrlimit(resource.RLIMIT_NOFILE)[0]}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    if doc["soft"] != -1 and doc["soft"] < 256:
        pytest.skip("a soft descriptor limit under 256 leaves no room above the program's")
    assert len(doc["new"]) == 2, doc
    assert all(fd >= 128 for fd in doc["new"]), doc
