"""Runs one benchmark worker in its own process, as a deployment would.

A worker in the producer's process would share its interpreter and its GIL,
so its rate would say little about a real worker. This runner stops on SIGTERM
or SIGINT, and also when its parent vanishes (a benchmark killed with SIGKILL
must not leave a worker polling a deleted file).

    python benchmarks/_worker.py URL --queues default [--concurrency N] [--burst]
"""

from __future__ import annotations

import argparse
import asyncio

from throughput import make_app

from conveyor.child import run_as_child


async def main(url: str, queues: list[str], concurrency: int | None, burst: bool) -> None:
    app = make_app(url)
    try:
        await run_as_child(app.worker(queues=queues, concurrency=concurrency, burst=burst))
    finally:
        await app.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--queues", required=True, help="comma-separated")
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--burst", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.queues.split(","), args.concurrency, args.burst))
