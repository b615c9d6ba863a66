"""The app of the SQLite crash test (test_crash_sqlite.py), and its worker process.

    python tests/crash_app.py URL RECORD_DIR

Each attempt appends `<job_id> <attempt>` to a file of its process's own, so
that the test can count every run of every job, including runs whose worker
was killed before it could record an outcome. One os.write on an O_APPEND
descriptor is one syscall: a SIGKILL lands before it or after it, never inside
it, and the line is then in the page cache, which outlives the process (no
fsync needed: the test kills processes, not the machine).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from conveyor import Conveyor, JobContext
from conveyor.child import run_as_child

LEASE_SECONDS = 2
CONCURRENCY = 2
HANDLER_SECONDS = 0.04  # long enough that a kill lands mid-job, short enough for a quick test


def record_path(record_dir: Path, pid: int) -> Path:
    return record_dir / f"record-{pid}.log"


def make_app(url: str, record_dir: Path) -> Conveyor:
    app = Conveyor(url, lease_seconds=LEASE_SECONDS)

    @app.job("record", attempts=4)
    async def record(ctx: JobContext) -> None:
        fd = os.open(record_path(record_dir, os.getpid()), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{ctx.job.id} {ctx.attempt}\n".encode())
        finally:
            os.close(fd)
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
