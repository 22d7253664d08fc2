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
where it was allocated (in the project's code: pytest's and pluggy's frames
are left out), and reads like an assertion of the test: its report points at
the test function, not at this plugin's hook.  ``@pytest.mark.no_cycles(frames=N)`` sets the
allocation traceback depth.
"""
import os

import pytest

from .testing import DEFAULT_FRAMES, CyclesLeft, _NoCycles

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
        _finish(check)
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
            _finish(check)
        except AssertionError as exc:
            if hasattr(outcome, "force_exception"):
                outcome.force_exception(exc)
            else:
                raise


def _finish(check):
    __tracebackhide__ = True
    try:
        check.finish()
    except CyclesLeft as exc:
        exc._cyclegc_plugin = True
        raise


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A CyclesLeft from the plugin's own check is reported at the test
    function, as a failed assertion in it would be: its location and the
    message, without the hook wrapper's frames."""
    outcome = yield
    excinfo = call.excinfo
    if call.when != "call" or excinfo is None or not getattr(excinfo.value, "_cyclegc_plugin", False):
        return
    rep = outcome.get_result()
    rep.longrepr = _test_failure_text(item, excinfo.value)


def _test_failure_text(item, exc):
    path, lineno, _ = item.reportinfo()
    path = os.fspath(path)
    try:
        shown = os.path.relpath(path, str(item.config.rootpath))
    except ValueError:  # pragma: no cover - another drive
        shown = path
    lineno = (lineno or 0) + 1            # reportinfo() counts from 0
    lines = []
    try:
        import linecache
        source = linecache.getline(path, lineno).rstrip()
        if source:
            lines.append(f"    {source.strip()}")
    except Exception:  # pragma: no cover
        pass
    message = f"{type(exc).__name__}: {exc}".splitlines()
    lines += [f"E   {line}" for line in message]
    lines.append("")
    lines.append(f"{shown}:{lineno}: {type(exc).__name__}")
    return _Failure("\n".join(lines), path, lineno, message[0])


class _Failure:
    """A report's longrepr: the text, and the "crash" line pytest's short
    summary shows (the message, as for a failed assertion)."""

    class _Crash:
        def __init__(self, path, lineno, message):
            self.path, self.lineno, self.message = path, lineno, message

    def __init__(self, text, path, lineno, message):
        self.text = text
        self.reprcrash = self._Crash(path, lineno, message)

    def toterminal(self, tw):
        for line in self.text.splitlines():
            tw.line(line, red=line.startswith("E "), bold=line.startswith("E "))

    def __str__(self):
        return self.text
