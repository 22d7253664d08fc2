"""The pytest plugin (pytest11 entry point 'cyclegc'): --cyclegc-no-cycles,
@pytest.mark.no_cycles and @pytest.mark.allow_cycles."""
import importlib.metadata
import os
import re

import pytest

pytest_plugins = ["pytester"]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _entry_point_registered():
    return any(ep.name == "cyclegc" and ep.value == "cyclegc_pytest"
               for ep in importlib.metadata.entry_points(group="pytest11"))


# Installed (as scripts/test_all.py does), pytest loads the plugin through its
# entry point; from a source tree, name it (loading it twice is an error).
PLUGIN_ARGS = [] if _entry_point_registered() else ["-p", "cyclegc.pytest_plugin"]

TESTS = '''
import pytest

class Request:
    def __init__(self):
        self.handler = self.handle
    def handle(self):
        pass

def make_cycle():
    Request()                          # the allocation

def test_clean():
    assert sum([1, 2]) == 3

def test_leaky():
    make_cycle()

@pytest.mark.allow_cycles
def test_allowed():
    make_cycle()

@pytest.mark.no_cycles
def test_marked():
    make_cycle()

@pytest.mark.no_cycles(frames=1)
def test_marked_clean():
    pass

def test_fails_for_another_reason():
    make_cycle()
    assert 1 == 2, "its own failure"
'''


def run(pytester, *args):
    return pytester.runpytest(*PLUGIN_ARGS, "-p", "no:cacheprovider", "-rA", *args)


@pytest.fixture
def suite(pytester):
    pytester.makepyfile(test_suite=TESTS)
    return pytester


def outcomes(result):
    found = {}
    for line in result.outlines:
        m = re.match(r"(PASSED|FAILED|ERROR) test_suite\.py::(\w+)", line)
        if m:
            found[m.group(2)] = m.group(1)
    return found


def test_option_fails_every_test_that_leaves_cycles(suite):
    result = run(suite, "--cyclegc-no-cycles")
    assert outcomes(result) == {
        "test_clean": "PASSED", "test_leaky": "FAILED", "test_allowed": "PASSED",
        "test_marked": "FAILED", "test_marked_clean": "PASSED",
        "test_fails_for_another_reason": "FAILED"}
    text = result.stdout.str()
    path = suite.path / "test_suite.py"
    line = path.read_text().splitlines().index("    Request()                          # the allocation") + 1
    assert "CyclesLeft: test test_leaky left 1 reference cycle as garbage (2 objects" in text
    assert f"Request -> method -> Request: 1 cycle of 2 objects, allocated at {path}:{line}" in text
    assert "via Request.handler -> method.__self__ -> Request" in text
    # a test that fails for its own reason is reported for that reason only
    assert "AssertionError: its own failure" in text
    assert "test test_fails_for_another_reason left" not in text


def test_failure_reads_like_an_assertion_in_the_test(suite):
    """The report points at the test function (not the plugin's hook
    wrapper) and the allocation trail lists the user's code only."""
    result = run(suite, "--cyclegc-no-cycles", "-k", "test_leaky")
    text = result.stdout.str()
    text = text[text.index("= FAILURES ="):]
    lines = (suite.path / "test_suite.py").read_text().splitlines()
    def_line = lines.index("def test_leaky():") + 1
    call_line = lines.index("    make_cycle()") + 1
    alloc_line = lines.index("    Request()                          # the allocation") + 1
    assert f"test_suite.py:{def_line}: CyclesLeft" in text
    assert "E   CyclesLeft: test test_leaky left 1 reference cycle" in text
    path = suite.path / "test_suite.py"
    assert f"allocated at {path}:{alloc_line} <- {path}:{call_line}\n" in text
    # pytest's one-line summary gives the message, not the source line
    assert "FAILED test_suite.py::test_leaky - CyclesLeft: test test_leaky left 1" in text
    for framework in ("pytest_plugin.py", "_pytest", "pluggy", "testing.py"):
        assert framework not in text, framework


def test_without_the_option_only_marked_tests_are_checked(suite):
    result = run(suite)
    assert outcomes(result) == {
        "test_clean": "PASSED", "test_leaky": "PASSED", "test_allowed": "PASSED",
        "test_marked": "FAILED", "test_marked_clean": "PASSED",
        "test_fails_for_another_reason": "FAILED"}
    assert "test test_marked left 1 reference cycle" in result.stdout.str()


def test_ini_option(suite):
    suite.makeini("[pytest]\ncyclegc_no_cycles = true\n")
    result = run(suite)
    assert outcomes(result)["test_leaky"] == "FAILED"
    assert outcomes(result)["test_allowed"] == "PASSED"


def test_markers_are_registered(suite):
    result = run(suite, "--strict-markers", "--cyclegc-no-cycles", "-k", "allowed or marked")
    result.assert_outcomes(passed=2, failed=1)
    result = suite.runpytest(*PLUGIN_ARGS, "--markers")
    text = result.stdout.str()
    assert "@pytest.mark.no_cycles(frames=8)" in text
    assert "@pytest.mark.allow_cycles" in text
    result = suite.runpytest(*PLUGIN_ARGS, "--help")
    assert "--cyclegc-no-cycles" in result.stdout.str()


def test_the_check_covers_the_call_not_fixtures(pytester):
    pytester.makepyfile(test_fixtures='''
import pytest

@pytest.fixture
def leaky_fixture():
    lst = []
    lst.append(lst)
    del lst
    yield
    other = {}
    other["me"] = other

def test_uses_fixture(leaky_fixture):
    pass
''')
    result = run(pytester, "--cyclegc-no-cycles")
    result.assert_outcomes(passed=1)


def test_gc_state_is_restored_between_tests(pytester):
    pytester.makepyfile(test_state='''
import gc
import pytest

def test_one():
    lst = []
    lst.append(lst)

@pytest.mark.allow_cycles          # unchecked: nothing of the plugin's is installed
def test_two():
    assert gc.get_debug() == 0
    assert not [o for o in gc.garbage if type(o) is list]     # test_one's cycle is not kept
    assert gc.isenabled()
    assert [cb for cb in gc.callbacks if type(cb).__name__ == "_Observer"] == []
''')
    result = run(pytester, "--cyclegc-no-cycles")
    result.assert_outcomes(passed=1, failed=1)


def test_entry_point_is_declared():
    try:
        import tomllib
    except ImportError:  # pragma: no cover
        pytest.skip("no tomllib")
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["entry-points"]["pytest11"] == {"cyclegc": "cyclegc_pytest"}
    assert project["dependencies"] == []
    extras = project["optional-dependencies"]
    assert extras["insight"] == ["rich"] and extras["prometheus"] == ["prometheus_client"]


def test_entry_point_loads_when_installed():
    if not _entry_point_registered():
        pytest.skip("cyclegc is not installed (running from the source tree)")
    (ep,) = [ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "cyclegc"]
    module = ep.load()
    assert hasattr(module, "pytest_runtest_call") and hasattr(module, "pytest_addoption")
