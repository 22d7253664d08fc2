"""The realworld "aiohttp" program: an aiohttp web server and an asyncio
client (aiohttp's ClientSession) in one event loop, on loopback.  The
server holds the catalogue (catalog.py) and answers /item/<key> with JSON,
making cyclic garbage per request; the client sends --requests requests,
--concurrency at a time, and prints what it received: per-status counts
and one checksum over all bodies in request order.  Bounded: by count, and
by --max-seconds (then it prints "TIMED OUT" and exits 3).

    python aio_app.py [--rows 200000] [--requests 20000] [--concurrency 32]
"""
import argparse
import asyncio
import hashlib
import sys

from aiohttp import ClientSession, TCPConnector, web

import catalog as _catalog


def make_app(rows):
    data = _catalog.build(rows)
    cache = _catalog.LRU(2000)

    async def item(request):
        key = int(request.match_info["key"])
        if key % 500 == 499:               # some requests wait a little, so tasks interleave
            await asyncio.sleep(0.001)
        return web.Response(body=_catalog.respond(data, key, cache), content_type="application/json")

    app = web.Application()
    app.router.add_get("/item/{key}", item)
    return app


async def main(args):
    runner = web.AppRunner(make_app(args.rows), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    bodies = [None] * args.requests
    statuses = {}
    queue = asyncio.Queue()
    for i in range(args.requests):
        queue.put_nowait(i)

    async def client(session):
        while not queue.empty():
            i = queue.get_nowait()
            async with session.get(f"http://127.0.0.1:{port}/item/{i * 7}") as resp:
                bodies[i] = await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

    try:
        async with ClientSession(connector=TCPConnector(limit=args.concurrency)) as session:
            await asyncio.wait_for(asyncio.gather(*(client(session) for _ in range(args.concurrency))),
                                   args.max_seconds)
    except asyncio.TimeoutError:
        print("TIMED OUT")
        return 3
    finally:
        await runner.cleanup()
    h = hashlib.sha256()
    for b in bodies:
        h.update(b or b"<missing>")
    print(f"requests {args.requests} concurrency {args.concurrency} rows {args.rows}")
    print("statuses " + " ".join(f"{k}:{v}" for k, v in sorted(statuses.items())))
    print(f"bytes {sum(len(b or b'') for b in bodies)}")
    print(f"sha256 {h.hexdigest()}")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--max-seconds", type=float, default=300)
    sys.exit(asyncio.run(main(ap.parse_args())))
