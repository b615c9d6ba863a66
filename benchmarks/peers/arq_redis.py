"""arq under the shared peer workloads (see _harness.py).

    python benchmarks/peers/arq_redis.py --url redis://127.0.0.1:PORT/0 --workload noop

arq's defaults: one worker, `max_jobs=10`, `poll_delay=0.5` (an idle worker
looks for new jobs every half second, which sets its latency), results kept
for an hour. The io workload sets `max_jobs=50`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import _harness
import arq
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import run_worker


class ArqPeer:
    name = "arq"
    version = arq.__version__

    def __init__(self, url: str) -> None:
        self.redis_settings = RedisSettings.from_dsn(url)
        self.pool: ArqRedis | None = None

    def settings(self, workload: str) -> str:
        return f"one worker, `max_jobs={_max_jobs(workload)}`, `poll_delay=0.5`"

    async def enqueue(self, kind: str, number: int) -> None:
        if self.pool is None:
            self.pool = await create_pool(self.redis_settings)
        await self.pool.enqueue_job(kind, number)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()

    def serve(self, workload: str) -> None:
        settings = {"functions": [noop, io], "redis_settings": self.redis_settings}
        run_worker(type("WorkerSettings", (), settings), max_jobs=_max_jobs(workload))


def _max_jobs(workload: str) -> int:
    return _harness.IO_CONCURRENCY if workload == "io" else 10  # arq's default


async def noop(ctx: dict[str, Any], number: int) -> None:
    _harness.record(number, time.time())


async def io(ctx: dict[str, Any], number: int) -> None:
    start = time.time()
    await asyncio.sleep(_harness.IO_SLEEP)
    _harness.record(number, start)


if __name__ == "__main__":
    sys.exit(_harness.main(ArqPeer))
