"""`run_as_child`: a worker process stops on SIGTERM after its running job, and when its parent dies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conveyor import Conveyor, JobState

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from conveyor import Conveyor
    from conveyor.child import run_as_child

    app = Conveyor(sys.argv[1])

    @app.job("slow")
    async def slow() -> None:
        Path(sys.argv[2], "started").touch()
        await asyncio.sleep(1.0)

    async def main() -> None:
        try:
            await run_as_child(app.worker())
        finally:
            await app.close()

    asyncio.run(main())
    """
)

# Starts the worker, says its pid, then waits to be killed.
PARENT = (
    "import subprocess, sys, time; w = subprocess.Popen(sys.argv[1:]);"
    " print(w.pid, flush=True); time.sleep(600)"
)


def _alive(pid: int) -> bool:
    """Running or sleeping: an exited orphan may linger as a zombie if nothing reaps it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


async def _wait_for(path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(path.exists):
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        await asyncio.sleep(0.05)


async def test_sigterm_lets_the_running_job_finish_then_exits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    app = Conveyor(url)

    @app.job("slow")
    async def slow() -> None: ...

    job = await slow.enqueue()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    proc = await asyncio.create_subprocess_exec(sys.executable, str(script), url, str(tmp_path))
    try:
        await _wait_for(tmp_path / "started")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert (await app.get_job(job.id)).state is JobState.COMPLETED
    await app.close()


def test_a_worker_whose_parent_is_killed_stops_by_itself(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, sys.executable, str(script), url, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    worker_pid = int(parent.stdout.readline())
    try:
        time.sleep(1.0)  # the worker is up and idle
        assert _alive(worker_pid)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(worker_pid):
            assert time.monotonic() < deadline, "the orphaned worker kept running"
            time.sleep(0.1)
    finally:
        if _alive(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
