"""SAQ under the shared peer workloads (see _harness.py).

    python benchmarks/peers/saq_redis.py --url redis://127.0.0.1:PORT/0 --workload noop

SAQ's defaults: one worker, `concurrency=10`, jobs dequeued with a blocking
BLMOVE. The io workload sets `concurrency=50`. The worker is started the way
`saq module.settings` starts it (saq.worker.start).
"""

from __future__ import annotations

import asyncio
import sys
import time
from importlib import metadata
from typing import Any

import _harness
from saq import Queue, Worker

QUEUE = "bench"


class SaqPeer:
    name = "saq"
    version = metadata.version("saq")

    def __init__(self, url: str) -> None:
        self.url = url
        self.queue: Queue | None = None

    def settings(self, workload: str) -> str:
        return f"one worker, `concurrency={_concurrency(workload)}`"

    async def enqueue(self, kind: str, number: int) -> None:
        if self.queue is None:
            self.queue = Queue.from_url(self.url, name=QUEUE)
            await self.queue.connect()
        await self.queue.enqueue(kind, number=number)

    async def close(self) -> None:
        if self.queue is not None:
            await self.queue.disconnect()

    def serve(self, workload: str) -> None:
        asyncio.run(self._serve(workload))

    async def _serve(self, workload: str) -> None:
        queue = Queue.from_url(self.url, name=QUEUE)
        worker = Worker(queue, functions=[noop, io], concurrency=_concurrency(workload))
        try:
            await queue.connect()
            await worker.start()
        finally:
            await queue.disconnect()


def _concurrency(workload: str) -> int:
    return _harness.IO_CONCURRENCY if workload == "io" else 10  # SAQ's default


async def noop(ctx: dict[str, Any], *, number: int) -> None:
    _harness.record(number, time.time())


async def io(ctx: dict[str, Any], *, number: int) -> None:
    start = time.time()
    await asyncio.sleep(_harness.IO_SLEEP)
    _harness.record(number, start)


if __name__ == "__main__":
    sys.exit(_harness.main(SaqPeer))
