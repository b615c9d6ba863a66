"""Cancellation (pending at once, running cooperatively), dedup keys, and removal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from conveyor import Conveyor, InvalidStateTransition, JobContext, JobNotFound, JobState

from .conftest import Drain


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_cancel_pending_job_is_immediate_and_it_never_runs(app: Conveyor, drain: Drain) -> None:
    ran = []

    @app.job("ebay:export:products")
    async def export() -> None:
        ran.append(1)

    job = await export.options(delay=0).enqueue()
    cancelled = await app.cancel(job.id)
    assert cancelled.state is JobState.CANCELLED
    await drain()
    assert ran == []
    assert (await app.get_job(job.id)).state is JobState.CANCELLED


async def test_cancel_running_async_job_interrupts_its_next_await(app: Conveyor) -> None:
    interrupted = asyncio.Event()

    @app.job("shopify:import:products")
    async def import_products(ctx: JobContext) -> None:
        try:
            for i in range(10_000):
                ctx.progress(done=i, total=10_000, message=f"Importing products: {i}/10000")
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            interrupted.set()
            raise

    job = await import_products.enqueue()
    worker = app.worker()
    run = asyncio.create_task(worker.run())

    async def running() -> bool:
        return (await app.get_job(job.id)).state is JobState.RUNNING

    await wait_until(running)
    flagged = await app.cancel(job.id)
    assert flagged.cancel_requested
    assert flagged.state is JobState.RUNNING

    async def cancelled() -> bool:
        return (await app.get_job(job.id)).state is JobState.CANCELLED

    await wait_until(cancelled)
    assert interrupted.is_set()
    worker.request_stop()
    summary = await run
    assert summary.outcomes["cancel"] == 1


async def test_cancel_running_plain_def_job_at_its_next_progress_call(app: Conveyor) -> None:
    @app.job("translation:ui-labels:bulk")
    def translate(ctx: JobContext) -> None:
        for i in range(100_000):
            ctx.progress(done=i, total=100_000)
            time.sleep(0.005)

    job = await translate.enqueue()
    worker = app.worker()
    run = asyncio.create_task(worker.run())

    async def running() -> bool:
        return (await app.get_job(job.id)).progress.percent > 0

    await wait_until(running)
    await app.cancel(job.id)

    async def cancelled() -> bool:
        return (await app.get_job(job.id)).state is JobState.CANCELLED

    await wait_until(cancelled)
    worker.request_stop()
    await run


async def test_cancelling_a_finished_job_is_refused(app: Conveyor, drain: Drain) -> None:
    @app.job("catalog:done")
    async def done() -> None: ...

    job = await done.enqueue()
    await drain()
    with pytest.raises(InvalidStateTransition, match="already completed"):
        await app.cancel(job.id)
    with pytest.raises(JobNotFound):
        await app.cancel("no-such-job")


async def test_dedup_key_returns_the_live_job(app: Conveyor, drain: Drain) -> None:
    runs = []

    @app.job("seller:fetch")
    async def fetch(user_id: str) -> None:
        runs.append(user_id)

    first = await fetch.options(dedup_key="user:42").enqueue(user_id="42")
    second = await fetch.options(dedup_key="user:42").enqueue(user_id="42")
    other = await fetch.options(dedup_key="user:43").enqueue(user_id="43")
    assert second.id == first.id
    assert other.id != first.id
    assert (await app.stats()).total == 2

    await drain()
    assert sorted(runs) == ["42", "43"]
    third = await fetch.options(dedup_key="user:42").enqueue(user_id="42")
    assert third.id != first.id  # the key is free again once its job finished


async def test_dedup_holds_while_the_job_runs(app: Conveyor) -> None:
    release = asyncio.Event()

    @app.job("seller:fetch")
    async def fetch() -> None:
        await release.wait()

    first = await fetch.options(dedup_key="k").enqueue()
    worker = app.worker()
    run = asyncio.create_task(worker.run())

    async def running() -> bool:
        return (await app.get_job(first.id)).state is JobState.RUNNING

    await wait_until(running)
    again = await fetch.options(dedup_key="k").enqueue()
    assert again.id == first.id
    assert again.state is JobState.RUNNING
    release.set()
    worker.request_stop()
    await run
    assert (await app.get_job(first.id)).state is JobState.COMPLETED


async def test_remove_deletes_job_with_its_history(app: Conveyor, drain: Drain) -> None:
    @app.job("catalog:noisy", attempts=1)
    async def noisy(ctx: JobContext) -> None:
        ctx.log("about to fail")
        raise ValueError("nope")

    job = await noisy.enqueue()
    await drain()
    assert await app.job_logs(job.id)
    assert await app.job_errors(job.id)
    await app.remove(job.id)
    with pytest.raises(JobNotFound):
        await app.get_job(job.id)
    assert await app.job_logs(job.id) == []
    assert await app.job_errors(job.id) == []
    with pytest.raises(JobNotFound):
        await app.remove(job.id)


async def test_dedup_keys_are_scoped_to_their_queue(app: Conveyor) -> None:
    @app.job("seller:fetch", queue="sellers")
    async def fetch() -> None: ...

    a = await fetch.options(dedup_key="user:1").enqueue()
    b = await fetch.options(dedup_key="user:1", queue="sellers-eu").enqueue()
    assert a.id != b.id
    assert (await fetch.options(dedup_key="user:1", queue="sellers-eu").enqueue()).id == b.id
