"""What the crash tests share: waiting for a condition, finding a worker process's id, reading every job."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable

import pytest

from conveyor import Conveyor, Job


async def wait_until(what: str, check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)


async def worker_id(app: Conveyor, proc: subprocess.Popen[bytes]) -> str:
    found: list[str] = []

    async def registered() -> bool:
        found[:] = [w.id for w in await app.workers() if w.pid == proc.pid]
        return bool(found)

    await wait_until(f"worker {proc.pid} to register", registered, 30)
    return found[0]


async def all_jobs(app: Conveyor) -> list[Job]:
    jobs: list[Job] = []
    cursor = None
    while True:
        page = await app.list_jobs(limit=1000, cursor=cursor)
        jobs += page.jobs
        if page.next_cursor is None:
            return jobs
        cursor = page.next_cursor
