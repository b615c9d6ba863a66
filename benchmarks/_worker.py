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
import os
import signal

from throughput import make_app

from conveyor import Worker

PARENT_CHECK_INTERVAL = 0.5


async def _watch_parent(worker: Worker, parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        await asyncio.sleep(PARENT_CHECK_INTERVAL)
    worker.request_stop()


async def main(url: str, queues: list[str], concurrency: int | None, burst: bool) -> None:
    app = make_app(url)
    worker = app.worker(queues=queues, concurrency=concurrency, burst=burst)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.request_stop)
    watcher = asyncio.create_task(_watch_parent(worker, os.getppid()))
    try:
        await worker.run()
    finally:
        watcher.cancel()
        await app.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--queues", required=True, help="comma-separated")
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--burst", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.queues.split(","), args.concurrency, args.burst))
