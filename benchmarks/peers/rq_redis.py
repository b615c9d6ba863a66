"""RQ under the shared peer workloads (see _harness.py).

    python benchmarks/peers/rq_redis.py --url redis://127.0.0.1:PORT/0 --workload noop

RQ's defaults: `rq worker` (the `Worker` class), which forks a work horse
per job and runs one job at a time. RQ has no concurrency inside a worker,
so the io workload runs `rq worker-pool -n 50`, 50 such worker processes.
Logging at WARNING, as for every engine (RQ logs two lines per job at INFO).
"""

from __future__ import annotations

import sys
import time

import _harness
import rq
from redis import Redis
from rq import Queue, Worker
from rq.worker_pool import WorkerPool

QUEUE = "bench"


class RQPeer:
    name = "rq"
    version = rq.__version__

    def __init__(self, url: str) -> None:
        self.connection = Redis.from_url(url)
        self.queue = Queue(QUEUE, connection=self.connection)

    def settings(self, workload: str) -> str:
        if workload == "io":
            n = _harness.IO_CONCURRENCY
            return f"`rq worker-pool -n {n}`: {n} workers, fork per job"
        return "`rq worker`: one job at a time, fork per job"

    async def enqueue(self, kind: str, number: int) -> None:
        self.queue.enqueue(f"rq_redis.{kind}", number)

    async def close(self) -> None:
        self.connection.close()

    def serve(self, workload: str) -> None:
        if workload == "io":
            pool = WorkerPool([QUEUE], connection=self.connection, num_workers=_harness.IO_CONCURRENCY)
            pool.start(logging_level="WARNING")
        else:
            Worker([QUEUE], connection=self.connection).work(logging_level="WARNING")


def noop(number: int) -> None:
    _harness.record(number, time.time())


def io(number: int) -> None:
    start = time.time()
    time.sleep(_harness.IO_SLEEP)
    _harness.record(number, start)


if __name__ == "__main__":
    sys.exit(_harness.main(RQPeer))
