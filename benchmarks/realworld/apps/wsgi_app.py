"""A Flask application served by gunicorn (benchmarks/realworld, program
"gunicorn"): the catalogue is built at import, which gunicorn's
preload_app does in the master before it forks the workers."""
import os

from flask import Flask, Response

import catalog as _catalog

CATALOG = _catalog.build(int(os.environ.get("REALWORLD_ROWS", "300000")))
CACHE = _catalog.LRU(2000)
app = Flask(__name__)


@app.route("/item/<int:key>")
def item(key):
    return Response(_catalog.respond(CATALOG, key, CACHE), mimetype="application/json")


@app.route("/health")
def health():
    return Response(b"ok", mimetype="text/plain")
