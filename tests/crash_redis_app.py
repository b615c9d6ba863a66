"""The app of the Redis crash tests (test_crash_redis.py), and its worker process.

    python tests/crash_redis_app.py URL RECORD_DIR

Two side records per worker process, one line `<job_id> <attempt>` each:

- `runs-<pid>.log`: written by the handler as an attempt starts, as in
  tests/crash_app.py: the ground truth for how often each job really ran.
- `claims-<pid>.log`: written by the backend when a fetch returns, before any
  of its jobs starts: every claim a worker received. Redis counts an attempt
  when it runs the fetch script, so a fetch whose reply was lost when Redis
  died counts an attempt that no worker received and no handler ran. This
  record tells those attempts apart from interrupted runs.

One os.write on an O_APPEND descriptor is one syscall: a SIGKILL lands before
it or after it, never inside it, and the line is then in the page cache, which
outlives the process.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from conveyor import Conveyor, JobContext
from conveyor.backends.base import FetchParams
from conveyor.backends.redis import RedisBackend, split_prefix
from conveyor.child import run_as_child
from conveyor.job import Job

LEASE_SECONDS = 2
CONCURRENCY = 2
HANDLER_SECONDS = 0.02  # long enough that a kill lands mid-job, short enough for a quick test
ATTEMPTS = 10  # a job interrupted this often would fail; with a few kills it never is


def runs_path(record_dir: Path, pid: int) -> Path:
    return record_dir / f"runs-{pid}.log"


def claims_path(record_dir: Path, pid: int) -> Path:
    return record_dir / f"claims-{pid}.log"


def _append(path: Path, lines: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, lines.encode())
    finally:
        os.close(fd)


class ClaimRecordingBackend(RedisBackend):
    """The Redis backend, noting each claim this process received before handing it on."""

    def __init__(self, url: str, record_dir: Path) -> None:
        plain, prefix = split_prefix(url)
        super().__init__(plain, prefix=prefix or "conveyor")
        self._record_dir = record_dir

    async def fetch(self, params: FetchParams) -> list[Job]:
        jobs = await super().fetch(params)
        if jobs:
            lines = "".join(f"{job.id} {job.attempts}\n" for job in jobs)
            _append(claims_path(self._record_dir, os.getpid()), lines)
        return jobs


def make_app(url: str, record_dir: Path) -> Conveyor:
    app = Conveyor(
        url,
        lease_seconds=LEASE_SECONDS,
        backend_factory=lambda: ClaimRecordingBackend(url, record_dir),
    )

    @app.job("record", attempts=ATTEMPTS)
    async def record(ctx: JobContext) -> None:
        _append(runs_path(record_dir, os.getpid()), f"{ctx.job.id} {ctx.attempt}\n")
        await asyncio.sleep(HANDLER_SECONDS)

    return app


async def run_worker(url: str, record_dir: Path) -> None:
    app = make_app(url, record_dir)
    try:
        await run_as_child(app.worker(concurrency=CONCURRENCY))  # also stops if the test run is killed
    finally:
        await app.close()


if __name__ == "__main__":
    asyncio.run(run_worker(sys.argv[1], Path(sys.argv[2])))
