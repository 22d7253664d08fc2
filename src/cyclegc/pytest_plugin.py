"""pytest plugin: fail tests that leave reference cycles behind.

Registered through the ``pytest11`` entry point, so it is active wherever
cyclegc is installed; it does nothing unless asked:

* ``pytest --cyclegc-no-cycles`` (or ``cyclegc_no_cycles = true`` in the
  ini file): every test that leaves cyclic garbage fails;
* ``@pytest.mark.no_cycles``: this test fails if it leaves cyclic garbage;
* ``@pytest.mark.allow_cycles``: this test is exempt.

The check covers the test function's call (not fixture setup/teardown), as
:func:`cyclegc.testing.assert_no_cycles` does; a test that fails for another
reason is not checked (its traceback keeps frames alive and makes cycles).
The failure message shows each kind of cycle's shape of types, its size and
where it was allocated.  ``@pytest.mark.no_cycles(frames=N)`` sets the
allocation traceback depth.
"""
import pytest

from .testing import DEFAULT_FRAMES, _NoCycles

_OPTION = "--cyclegc-no-cycles"
_INI = "cyclegc_no_cycles"


def pytest_addoption(parser):
    group = parser.getgroup("cyclegc", "reference cycles (cyclegc)")
    group.addoption(_OPTION, action="store_true", default=False, dest="cyclegc_no_cycles",
                    help="fail every test that leaves cyclic garbage "
                         "(exempt one with @pytest.mark.allow_cycles)")
    parser.addini(_INI, type="bool", default=False,
                  help="fail every test that leaves cyclic garbage (like --cyclegc-no-cycles)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "no_cycles(frames=8): fail this test if it leaves cyclic garbage (cyclegc)")
    config.addinivalue_line(
        "markers", "allow_cycles: exempt this test from --cyclegc-no-cycles (cyclegc)")


def _checker(item):
    """The check for this test, or None."""
    if item.get_closest_marker("allow_cycles") is not None:
        return None
    marker = item.get_closest_marker("no_cycles")
    if marker is None:
        config = item.config
        if not (config.getoption("cyclegc_no_cycles") or config.getini(_INI)):
            return None
        frames = DEFAULT_FRAMES
    else:
        frames = marker.kwargs.get("frames", DEFAULT_FRAMES)
    return _NoCycles(frames, what=f"test {item.name}")


try:
    _NEW_STYLE = tuple(int(x) for x in pytest.__version__.split(".")[:2]) >= (8, 0)
except ValueError:  # pragma: no cover - a development version string
    _NEW_STYLE = True

if _NEW_STYLE:
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(item):
        check = _checker(item)
        if check is None:
            return (yield)
        check.start()
        try:
            result = yield
        except BaseException:
            check.abandon()
            raise
        check.finish()
        return result
else:  # pragma: no cover - pytest 7
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(item):
        check = _checker(item)
        if check is None:
            yield
            return
        check.start()
        outcome = yield
        if outcome.excinfo is not None:
            check.abandon()
            return
        try:
            check.finish()
        except AssertionError as exc:
            if hasattr(outcome, "force_exception"):
                outcome.force_exception(exc)
            else:
                raise
