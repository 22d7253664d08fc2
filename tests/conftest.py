import gc

import pytest


@pytest.fixture(autouse=True)
def _restore_gc_state():
    """Every test leaves the interpreter's collector state as it found it."""
    state = gc.isenabled(), gc.get_threshold(), gc.get_debug(), list(gc.callbacks)
    yield
    enabled, thresholds, debug, callbacks = state
    (gc.enable if enabled else gc.disable)()
    gc.set_threshold(*thresholds)
    gc.set_debug(debug)
    gc.callbacks[:] = callbacks
    if gc.get_freeze_count():
        gc.unfreeze()
