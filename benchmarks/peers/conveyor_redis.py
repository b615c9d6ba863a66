"""Conveyor's Redis backend under the shared peer workloads (see _harness.py).

    python benchmarks/peers/conveyor_redis.py --url redis://127.0.0.1:PORT/0 --workload noop

Measured exactly like the peers, so the table compares like with like;
benchmarks/throughput.py --backend redis measures more (bulk enqueue, rates
from the job records). Conveyor's defaults: one worker process, concurrency
10 per queue; the io workload sets 50. CONVEYOR_* variables are removed
first, as in throughput.py: they would override these settings.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from importlib import metadata

import _harness

from conveyor import Conveyor

QUEUE = "default"


class ConveyorPeer:
    name = "conveyor"
    version = metadata.version("conveyor-jobs")

    def __init__(self, url: str) -> None:
        self.app = Conveyor(url)
        self.app.job("noop", attempts=1)(noop)
        self.app.job("io", attempts=1)(io)

    def settings(self, workload: str) -> str:
        concurrency = _concurrency(workload) or self.app.settings.default_concurrency
        return f"one worker process, concurrency {concurrency}"

    async def enqueue(self, kind: str, number: int) -> None:
        await self.app.enqueue(kind, {"number": number})

    async def close(self) -> None:
        await self.app.close()

    def serve(self, workload: str) -> None:
        asyncio.run(self._serve(workload))

    async def _serve(self, workload: str) -> None:
        worker = self.app.worker(queues=[QUEUE], concurrency=_concurrency(workload))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.request_stop)
        try:
            await worker.run()
        finally:
            await self.app.close()


def _concurrency(workload: str) -> int | None:
    return _harness.IO_CONCURRENCY if workload == "io" else None  # None: the worker's default


async def noop(number: int) -> None:
    _harness.record(number, time.time())


async def io(number: int) -> None:
    start = time.time()
    await asyncio.sleep(_harness.IO_SLEEP)
    _harness.record(number, start)


if __name__ == "__main__":
    for name in [n for n in os.environ if n.startswith("CONVEYOR_")]:
        del os.environ[name]
    sys.exit(_harness.main(ConveyorPeer))
