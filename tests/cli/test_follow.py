"""`conveyor job ID --follow` in a real subprocess, woken by the job event stream of a real store."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from conveyor import Conveyor, JobContext, JobState


async def follow(url: str, job_id: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "conveyor", "--url", url, "job", job_id, "--follow", "--json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def test_follow_waits_for_the_job_and_wakes_on_its_last_event(backend_url: str) -> None:
    gate = asyncio.Event()
    async with Conveyor(backend_url) as app:

        @app.job("shopify:import:products")
        async def import_products(ctx: JobContext) -> str:
            ctx.progress(done=234, total=500, message="Importing products: 234/500")
            await gate.wait()
            return "imported"

        job = await import_products.enqueue()
        follower = await follow(backend_url, job.id)
        worker = app.worker(scheduler=False)
        working = asyncio.create_task(worker.run())
        try:
            async with asyncio.timeout(20):
                while (await app.get_job(job.id)).progress.percent == 0:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # the follower has started and is waiting on the stream
            assert follower.returncode is None
            gate.set()
            async with asyncio.timeout(20):
                while not (await app.get_job(job.id)).state.is_finished:
                    await asyncio.sleep(0.01)
            finished = time.monotonic()
            out, err = await asyncio.wait_for(follower.communicate(), 20)
            # Woken by the completion event, not by the periodic refresh (2 s).
            assert time.monotonic() - finished < 1.5, err
        finally:
            gate.set()
            worker.request_stop()
            await asyncio.wait_for(working, 10)
    assert follower.returncode == 0, err.decode()
    shown = json.loads(out)
    assert (shown["id"], shown["state"], shown["result"]) == (job.id, JobState.COMPLETED.value, "imported")
