"""An asyncio server-like program, in process: thousands of connection tasks
each serving requests from its own queue, a dispatcher feeding them, every
request a small cyclic structure (request <-> response, a callback chain),
a session table and an LRU of recent responses kept alive.  Prints a
checksum of the responses (identical under any collector)."""
import asyncio
import sys
from collections import OrderedDict

TASKS = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
REQUESTS = int(sys.argv[2]) if len(sys.argv) > 2 else 150_000


class Request:
    def __init__(self, conn, i):
        self.conn, self.i = conn, i
        self.headers = {"id": i, "conn": conn.cid, "path": f"/item/{i % 977}"}
        self.response = None


class Response:
    def __init__(self, request):
        self.request = request          # cycle: request <-> response
        request.response = self
        self.body = [request.i, request.headers["path"]]
        self.on_done = lambda: self.request   # closure cycle


class Conn:
    def __init__(self, cid):
        self.cid = cid
        self.queue = asyncio.Queue()
        self.session = {"cid": cid, "seen": []}


async def serve(conn, recent, totals):
    while True:
        i = await conn.queue.get()
        if i is None:
            return
        req = Request(conn, i)
        resp = Response(req)
        conn.session["seen"].append(i % 7)
        if len(conn.session["seen"]) > 20:
            del conn.session["seen"][:10]
        recent[i] = resp
        if len(recent) > 20_000:
            recent.popitem(last=False)
        totals[0] += len(resp.body[1]) + i % 13
        if i % 64 == 0:
            await asyncio.sleep(0)


async def main():
    conns = [Conn(c) for c in range(TASKS)]
    recent, totals = OrderedDict(), [0]
    tasks = [asyncio.ensure_future(serve(c, recent, totals)) for c in conns]
    for i in range(REQUESTS):
        conns[(i * 7919) % TASKS].queue.put_nowait(i)
        if i % 500 == 0:
            await asyncio.sleep(0)
    for c in conns:
        c.queue.put_nowait(None)
    await asyncio.gather(*tasks)
    print(f"served {REQUESTS} requests on {TASKS} tasks, checksum {totals[0]}")


asyncio.run(main())
