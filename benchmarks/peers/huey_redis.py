"""Huey's RedisHuey under the shared peer workloads (see _harness.py).

    python benchmarks/peers/huey_redis.py --url redis://127.0.0.1:PORT/0 --workload noop

Huey's defaults: RedisHuey (blocking BRPOP dequeue, results kept), a consumer
with one thread worker. The io workload runs 50 thread workers, Huey's way to
run 50 jobs at once. Huey has no bulk enqueue; a task call sends one job.
"""

from __future__ import annotations

import sys
import time

import _harness
import huey
from huey import RedisHuey

NAME = "conveyor-bench"  # Huey's keys are named after it; close() deletes them


class HueyPeer:
    name = "huey"
    version = huey.__version__

    def __init__(self, url: str) -> None:
        self.huey = RedisHuey(NAME, url=url)
        self.tasks = {
            "noop": self.huey.task(name="noop")(noop),
            "io": self.huey.task(name="io")(io),
        }

    def settings(self, workload: str) -> str:
        workers = _harness.IO_CONCURRENCY if workload == "io" else 1
        return f"consumer, {workers} thread worker{'s' if workers > 1 else ''}"

    async def enqueue(self, kind: str, number: int) -> None:
        self.tasks[kind](number)

    async def close(self) -> None:
        self.huey.flush()

    def serve(self, workload: str) -> None:
        workers = _harness.IO_CONCURRENCY if workload == "io" else 1
        self.huey.create_consumer(workers=workers, worker_type="thread").run()


def noop(number: int) -> None:
    _harness.record(number, time.time())


def io(number: int) -> None:
    start = time.time()
    time.sleep(_harness.IO_SLEEP)
    _harness.record(number, start)


if __name__ == "__main__":
    sys.exit(_harness.main(HueyPeer))
