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
