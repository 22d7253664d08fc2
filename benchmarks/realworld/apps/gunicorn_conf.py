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
