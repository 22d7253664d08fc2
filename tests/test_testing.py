"""cyclegc.testing.assert_no_cycles: fails when the code leaves cyclic
garbage, says what and where, and leaves the collector as it was."""
import asyncio
import gc
import tracemalloc

import pytest

import cyclegc
from cyclegc.testing import CyclesLeft, assert_no_cycles

HERE = __file__


def line_of(marker):
    with open(HERE) as f:
        for n, text in enumerate(f, 1):
            if text.rstrip().endswith(marker) and "line_of(" not in text:
                return n
    raise LookupError(marker)


class Request:
    def __init__(self):
        self.handler = self.handle

    def handle(self):
        pass


def leak_requests(n):
    for _ in range(n):
        Request()                                     # LEAK-REQUEST


def leak_list():
    lst = []                                          # LEAK-LIST
    lst.append(lst)


def no_leak():
    data = {"a": [1, 2, 3]}
    return len(data)


def test_passes_without_cycles():
    with assert_no_cycles():
        no_leak()
        x = [1, 2]
        del x


def test_fails_with_shape_size_and_site():
    with pytest.raises(CyclesLeft) as info:
        with assert_no_cycles():
            leak_requests(3)
            leak_list()
    err = info.value
    assert isinstance(err, AssertionError)
    assert err.cycles == 4 and err.objects == 7
    msg = str(err)
    lines = msg.splitlines()
    assert lines[0] == "the code left 4 reference cycles as garbage (7 objects, " + lines[0].split(", ", 1)[1]
    request_line = line_of("# LEAK-REQUEST")
    assert (f"  Request -> method -> Request: 3 cycles of 2 objects, allocated at "
            f"{HERE}:{request_line} <- {HERE}:") in msg
    assert "      Request()                                     # LEAK-REQUEST" in msg
    assert "      via Request.handler -> method.__self__ -> Request" in msg
    assert f"  list -> list: 1 cycle of 1 object, allocated at {HERE}:{line_of('# LEAK-LIST')}" in msg
    # the biggest first
    assert msg.index("Request -> method") < msg.index("list -> list")


def test_decorator_forms():
    @assert_no_cycles
    def bare():
        leak_list()

    @assert_no_cycles(frames=2)
    def with_args(n):
        leak_requests(n)
        return "done"

    @assert_no_cycles
    def clean(a, b=2):
        return a + b

    with pytest.raises(CyclesLeft):
        bare()
    with pytest.raises(CyclesLeft, match="2 cycles of 2 objects"):
        with_args(2)
    assert clean(1, b=3) == 4
    assert clean.__name__ == "clean"


def test_async_function():
    @assert_no_cycles
    async def leaky():
        await asyncio.sleep(0)
        leak_list()

    @assert_no_cycles
    async def clean():
        await asyncio.sleep(0)
        return 7

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(clean()) == 7
        with pytest.raises(CyclesLeft, match="list -> list"):
            loop.run_until_complete(leaky())
    finally:
        loop.close()


def test_cycles_collected_inside_the_block_count_too():
    with pytest.raises(CyclesLeft, match="1 cycle of 1 object"):
        with assert_no_cycles():
            leak_list()
            cyclegc.collect()              # the block's own collection
            gc.collect()


def test_automatic_collections_inside_the_block_count_too():
    installed = cyclegc.install()
    thresholds = gc.get_threshold()
    gc.set_threshold(50)
    try:
        with pytest.raises(CyclesLeft, match="500 cycles"):
            with assert_no_cycles():
                for _ in range(500):
                    leak_list()
    finally:
        gc.set_threshold(*thresholds)
        if installed:
            cyclegc.uninstall()


def test_older_garbage_does_not_count():
    leak_list()                            # before the block
    with assert_no_cycles():
        no_leak()


def test_an_exception_in_the_block_propagates_unchecked():
    with pytest.raises(KeyError):
        with assert_no_cycles():
            leak_list()
            raise KeyError("boom")


def test_variables_still_bound_are_not_garbage():
    with assert_no_cycles():
        lst = []
        lst.append(lst)                    # still referenced at the end of the block
    del lst
    with pytest.raises(CyclesLeft):
        with assert_no_cycles():
            lst = []
            lst.append(lst)
            del lst


@pytest.fixture
def clean_garbage():
    """Start from an empty gc.garbage: legacy-finalizer objects other tests
    left behind come back to it at every full collection."""
    for _ in range(2):
        cyclegc.collect()
        for o in gc.garbage:
            if hasattr(o, "__dict__"):
                o.__dict__.clear()
        gc.garbage.clear()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_state_is_left_alone(enabled, clean_garbage):
    sentinel = ["kept"]
    gc.garbage.append(sentinel)
    (gc.enable if enabled else gc.disable)()
    gc.set_debug(gc.DEBUG_UNCOLLECTABLE)
    callback = lambda phase, info: None    # noqa: E731
    gc.callbacks.append(callback)
    tracing = tracemalloc.is_tracing()
    try:
        with pytest.raises(CyclesLeft):
            with assert_no_cycles():
                leak_list()
        assert gc.isenabled() is enabled
        assert gc.get_debug() == gc.DEBUG_UNCOLLECTABLE
        assert gc.garbage == [sentinel]
        assert gc.callbacks == [callback]
        assert tracemalloc.is_tracing() is tracing
    finally:
        gc.callbacks.remove(callback)
        gc.garbage.remove(sentinel)
        gc.set_debug(0)
        gc.enable()


def test_garbage_found_is_freed():
    class Marker:
        pass

    def leak():
        m = Marker()
        m.me = m
    with pytest.raises(CyclesLeft):
        with assert_no_cycles():
            leak()
    assert not [o for o in gc.get_objects() if type(o) is Marker]


def test_tracemalloc_started_by_the_user_is_kept():
    tracemalloc.start(3)
    try:
        with pytest.raises(CyclesLeft):
            with assert_no_cycles():
                leak_list()
        assert tracemalloc.is_tracing()
        assert tracemalloc.get_traceback_limit() == 3
    finally:
        tracemalloc.stop()


def test_reentering_one_instance_is_an_error():
    check = assert_no_cycles()
    with check:
        with pytest.raises(RuntimeError):
            with check:
                pass


def test_bad_argument():
    with pytest.raises(TypeError):
        assert_no_cycles(42)
