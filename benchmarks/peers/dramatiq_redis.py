"""Dramatiq under the shared peer workloads (see _harness.py).

    python benchmarks/peers/dramatiq_redis.py --url redis://127.0.0.1:PORT/0 --workload noop

Dramatiq's defaults, with one worker process: `dramatiq module --processes 1`
(default threads: 8; default processes: one per CPU), RedisBroker with its
default middleware. An idle consumer backs off up to `dramatiq_worker_timeout`
(1 s) between polls, which sets its latency. The io workload runs `--threads 50`.

The CLI's worker process imports this module by name, so the broker and the
actors are declared at import from BENCH_DRAMATIQ_URL, which `serve` sets.
"""

from __future__ import annotations

import os
import sys
import time
from importlib import metadata
from pathlib import Path

import _harness
import dramatiq
import dramatiq.cli
from dramatiq.brokers.redis import RedisBroker

URL_ENV = "BENCH_DRAMATIQ_URL"


class DramatiqPeer:
    name = "dramatiq"
    version = metadata.version("dramatiq")

    def __init__(self, url: str) -> None:
        self.url = url
        self.broker = RedisBroker(url=url)
        dramatiq.set_broker(self.broker)
        self.actors = {fn.__name__: dramatiq.actor(fn, broker=self.broker) for fn in (noop, io)}

    def settings(self, workload: str) -> str:
        return f"`dramatiq --processes 1 --threads {_threads(workload)}`"

    async def enqueue(self, kind: str, number: int) -> None:
        self.actors[kind].send(number)

    async def close(self) -> None:
        self.broker.close()

    def serve(self, workload: str) -> None:
        os.environ[URL_ENV] = self.url
        argv = [__name__ if __name__ != "__main__" else "dramatiq_redis", "--processes", "1"]
        argv += ["--threads", str(_threads(workload)), "--path", str(Path(__file__).resolve().parent)]
        sys.exit(dramatiq.cli.main(dramatiq.cli.make_argument_parser().parse_args(argv)))


def _threads(workload: str) -> int:
    return _harness.IO_CONCURRENCY if workload == "io" else 8  # Dramatiq's default


def noop(number: int) -> None:
    _harness.record(number, time.time())


def io(number: int) -> None:
    start = time.time()
    time.sleep(_harness.IO_SLEEP)
    _harness.record(number, start)


if __name__ != "__main__" and URL_ENV in os.environ:  # imported by the CLI's worker process
    broker = DramatiqPeer(os.environ[URL_ENV]).broker

if __name__ == "__main__":
    sys.exit(_harness.main(DramatiqPeer))
