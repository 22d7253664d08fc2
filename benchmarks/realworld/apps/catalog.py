"""The shared heap of the two web programs: a catalogue of slotted rows,
each with a list of tags and a dict of attributes (3 tracked objects a row),
built deterministically, plus what a request makes of it: a small cyclic
object graph (a request context, its parts pointing back at it, a dict),
dropped after the response, i.e. cyclic garbage for every request."""
import hashlib
import json


class Row:
    __slots__ = ("id", "name", "tags", "attrs")

    def __init__(self, i):
        self.id = i
        self.name = f"item-{i:07d}"
        self.tags = [f"t{i % 97}", f"t{i % 89}", i % 7]
        self.attrs = {"price": (i * 7919) % 10007 / 100, "stock": i % 113, "group": i % 1000}


def build(rows):
    return [Row(i) for i in range(rows)]


class Context:
    def __init__(self, path, rows):
        self.path = path
        self.parts = [Part(self, r) for r in rows]
        self.meta = {"ctx": self, "n": len(rows)}


class Part:
    __slots__ = ("ctx", "row", "__weakref__")

    def __init__(self, ctx, row):
        self.ctx = ctx
        self.row = row


class LRU:
    """The last `size` requests' contexts and parsed bodies (a response
    cache, as applications keep): what survives a request, so objects reach
    the oldest generation and full collections happen in a worker; an
    evicted entry is cyclic garbage in the old generation."""

    def __init__(self, size):
        from collections import OrderedDict
        self.size, self.entries = size, OrderedDict()

    def put(self, key, value):
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


def respond(catalog, key, cache=None):
    """The response body for item `key`: the row and its 7 neighbours of the
    same group, as JSON, with a checksum; builds a cycle, which is dropped
    (garbage at once) or kept in `cache` (an LRU) until evicted."""
    n = len(catalog)
    i = key % n
    rows = [catalog[(i + 1000 * k) % n] for k in range(8)]
    ctx = Context(f"/item/{key}", rows)
    body = {"key": key, "items": [{"id": p.row.id, "name": p.row.name, "tags": p.row.tags,
                                   "attrs": p.row.attrs} for p in ctx.parts]}
    text = json.dumps(body, sort_keys=True)
    if cache is not None:
        cache.put(key, (ctx, json.loads(text)))
    return json.dumps({"sha": hashlib.sha256(text.encode()).hexdigest()[:16], **body},
                      sort_keys=True).encode()
