"""gunicorn settings of the realworld "gunicorn" program: 4 sync workers
forked from a master that preloaded the application (its catalogue)."""
import os

bind = os.environ.get("REALWORLD_BIND", "127.0.0.1:8765")
workers = 4
worker_class = "sync"
preload_app = True
accesslog = None
loglevel = "warning"
timeout = 120
graceful_timeout = 30


def pre_fork(server, worker):
    """Mode "freeze" (benchmarks/realworld): the built-in collector with the
    documented pre-fork recipe, gc.freeze() in the master before each fork,
    so workers' collections leave the preloaded heap alone.  What remains of
    a worker's private memory then is the program's own copy-on-write
    (refcount writes to what requests read): the floor no collector can go
    below, to read the USS ratios against."""
    if os.environ.get("CYCLEGC_REGRTEST") == "freeze":
        import gc
        gc.freeze()


def when_ready(server):
    """Mode "immortal": cyclegc fork-friendly, and the master makes its
    preloaded heap immortal once, before the first worker is forked
    (cyclegc.immortalize_heap(), 3.12+; on 3.11 it freezes instead).
    Workers then neither collect nor reference-count the shared heap: what
    remains of their private memory is what they allocate themselves."""
    if os.environ.get("CYCLEGC_REGRTEST") == "immortal":
        import cyclegc
        cyclegc.immortalize_heap()
