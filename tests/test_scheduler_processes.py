"""Three scheduler processes on one store: every tick enqueues exactly one job."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor import Conveyor, JobFilter

APP = """
from conveyor import Conveyor

app = Conveyor()


@app.schedule(every=1)
@app.job("system:heartbeat")
async def heartbeat() -> None: ...
"""


@pytest.mark.slow
def test_three_scheduler_processes_fire_each_tick_once(tmp_path: Path) -> None:
    (tmp_path / "tickapp.py").write_text(APP)
    url = f"sqlite:///{tmp_path / 'ticks.db'}"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "CONVEYOR_URL": url}
    command = [sys.executable, "-m", "conveyor", "--app", "tickapp:app", "scheduler", "--poll", "0.1"]
    procs = [
        subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    try:
        runs = asyncio.run(_wait_for_ticks(url, 10, deadline=time.monotonic() + 40))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=10)
    runs = asyncio.run(_runs(url))
    assert len(runs) >= 10
    assert len(set(runs)) == len(runs), "a tick was enqueued twice"
    assert [b - a for a, b in itertools.pairwise(runs)] == [1.0] * (len(runs) - 1), "a tick was skipped"
    assert all(proc.returncode == 0 for proc in procs)


async def _wait_for_ticks(url: str, n: int, deadline: float) -> list[float]:
    while time.monotonic() < deadline:
        runs = await _runs(url)
        if len(runs) >= n:
            return runs
        await asyncio.sleep(0.2)
    raise AssertionError("the schedulers did not fire ten ticks in time")


async def _runs(url: str) -> list[float]:
    app = Conveyor(url)
    try:
        page = await app.list_jobs(JobFilter(types=["system:heartbeat"], oldest_first=True), limit=1000)
        return [job.run_at for job in page.jobs]
    finally:
        await app.close()
