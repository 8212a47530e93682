"""Deletes the JetStream streams that earlier test runs left on this machine's NATS server.

Each test makes its own subject prefix `test-<id>.library`, whose stream is
`TEST-<ID>_LIBRARY_EVENTS` (services/platform/src/bus/nats.rs); nothing else on the server
is touched. scripts/test runs this before the suite, as it drops the test databases.
Usage: python3 scripts/sweep-test-streams.py [nats://127.0.0.1:4222]
"""

import asyncio
import json
import sys

import nats


async def stream_names(nc):
    """Every stream name, page by page ($JS.API.STREAM.NAMES answers in pages)."""
    names, offset = [], 0
    while True:
        reply = await nc.request(
            "$JS.API.STREAM.NAMES", json.dumps({"offset": offset}).encode(), timeout=10
        )
        page = json.loads(reply.data)
        found = page.get("streams") or []
        names.extend(found)
        offset += len(found)
        if not found or offset >= page.get("total", 0):
            return names


async def main(url):
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        stale = [n for n in await stream_names(nc) if n.startswith("TEST-")]
        for name in stale:
            await nc.request(f"$JS.API.STREAM.DELETE.{name}", b"", timeout=10)
        print(f"[test] deleted {len(stale)} test stream(s) of earlier runs")
    finally:
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "nats://127.0.0.1:4222"))
