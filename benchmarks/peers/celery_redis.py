"""Celery under the shared peer workloads (see _harness.py).

    python benchmarks/peers/celery_redis.py --url redis://127.0.0.1:PORT/0 --workload noop

Celery's defaults (Redis broker, no result backend, prefetch multiplier 4,
mingle and gossip on), with one worker process: `--pool solo`, since the
default prefork pool runs one child process per CPU beside the consumer.
The io workload runs `--pool threads --concurrency 50`.
"""

from __future__ import annotations

import sys
import time
from importlib import metadata

import _harness
from celery import Celery

app = Celery("bench")


@app.task(name="noop")
def noop(number: int) -> None:
    _harness.record(number, time.time())


@app.task(name="io")
def io(number: int) -> None:
    start = time.time()
    time.sleep(_harness.IO_SLEEP)
    _harness.record(number, start)


TASKS = {"noop": noop, "io": io}


class CeleryPeer:
    name = "celery"
    version = metadata.version("celery")

    def __init__(self, url: str) -> None:
        app.conf.broker_url = url
        app.conf.broker_connection_retry_on_startup = True  # the default, stated to silence its warning

    def settings(self, workload: str) -> str:
        if workload == "io":
            return f"`celery worker --pool threads --concurrency {_harness.IO_CONCURRENCY}`"
        return "`celery worker --pool solo`"

    async def enqueue(self, kind: str, number: int) -> None:
        TASKS[kind].delay(number)

    async def close(self) -> None:
        app.close()

    def serve(self, workload: str) -> None:
        pool = ["--pool", "threads", "--concurrency", str(_harness.IO_CONCURRENCY)]
        argv = ["worker", "--loglevel", "WARNING", *(pool if workload == "io" else ["--pool", "solo"])]
        app.worker_main(argv)


if __name__ == "__main__":
    sys.exit(_harness.main(CeleryPeer))
