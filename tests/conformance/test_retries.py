"""Retries with back-off, Unrecoverable, RateLimited, timeouts and manual retry."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from conveyor import (
    Conveyor,
    ExponentialBackoff,
    FakeClock,
    InvalidStateTransition,
    JobContext,
    JobState,
    RateLimited,
    Unrecoverable,
)

from .conftest import Drain


async def test_store_default_backoff_is_5s_30s_5min(app: Conveyor, clock: FakeClock, drain: Drain) -> None:
    @app.job("amazon:export:products")
    async def export() -> None:
        raise ConnectionError("marketplace unreachable")

    job = await export.enqueue()
    start = clock.now()
    expected_delays = [5, 30, 300]
    for attempt, delay in enumerate(expected_delays, start=1):
        await drain()
        stored = await app.get_job(job.id)
        assert (stored.state, stored.display_state, stored.attempts) == (
            JobState.SCHEDULED,
            "retrying",
            attempt,
        )
        assert stored.run_at == clock.now() + delay
        clock.advance(delay - 0.001)
        assert (await drain()).processed == 0  # not a moment early
        clock.advance(0.001)
    await drain()
    final = await app.get_job(job.id)
    assert (final.state, final.attempts) == (JobState.FAILED, 4)
    assert final.error is not None
    assert final.error.message == "marketplace unreachable"
    errors = await app.job_errors(job.id)
    assert [e.attempt for e in errors] == [1, 2, 3, 4]
    assert all(e.type == "ConnectionError" and "Traceback" in (e.traceback or "") for e in errors)
    assert clock.now() - start == sum(expected_delays)


async def test_exponential_backoff_with_jitter_stays_in_bounds() -> None:
    policy = ExponentialBackoff(base=2, factor=3, maximum=60)
    for attempt, ceiling in [(1, 2), (2, 6), (3, 18), (4, 54), (5, 60), (9, 60)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(2 <= d <= ceiling for d in delays)
    assert ExponentialBackoff(base=1, factor=2, maximum=10, jitter=False).delay(3) == 4


async def test_unrecoverable_fails_at_once_with_its_message(app: Conveyor, drain: Drain) -> None:
    @app.job("amazon:export:products", attempts=5)
    async def export() -> None:
        raise Unrecoverable("Invalid Credentials")

    job = await export.enqueue()
    await drain()
    stored = await app.get_job(job.id)
    assert (stored.state, stored.attempts) == (JobState.FAILED, 1)
    assert stored.error is not None
    assert (stored.error.type, stored.error.message) == ("Unrecoverable", "Invalid Credentials")


async def test_rate_limited_redelays_without_spending_an_attempt(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    calls: list[int] = []

    @app.job("jumpseller:publish", attempts=1)
    async def publish(ctx: JobContext) -> str:
        calls.append(ctx.attempt)
        if len(calls) <= 3:
            raise RateLimited(retry_after=7)
        return "published"

    job = await publish.enqueue()
    for _ in range(3):
        await drain()
        stored = await app.get_job(job.id)
        assert (stored.state, stored.attempts, stored.run_at) == (JobState.SCHEDULED, 0, clock.now() + 7)
        clock.advance(7)
    await drain()
    stored = await app.get_job(job.id)
    assert (stored.state, stored.result) == (JobState.COMPLETED, "published")
    assert calls == [1, 1, 1, 1]  # every run was attempt 1 of 1
    assert await app.job_errors(job.id) == []


async def test_async_timeout_ends_the_attempt(app: Conveyor, drain: Drain) -> None:
    @app.job("catalog:slow", timeout=0.2, attempts=2, backoff=[0])
    async def slow() -> None:
        await asyncio.sleep(30)

    job = await slow.enqueue()
    started = time.monotonic()
    await drain()
    assert time.monotonic() - started < 5
    stored = await app.get_job(job.id)
    assert (stored.state, stored.attempts) == (JobState.FAILED, 2)
    assert [e.type for e in await app.job_errors(job.id)] == ["JobTimeout", "JobTimeout"]
    assert stored.error is not None
    assert "0.2s timeout" in stored.error.message


async def test_plain_def_overrun_is_timed_out_and_stopped_at_its_next_progress_call(
    app: Conveyor, drain: Drain
) -> None:
    stopped = threading.Event()

    @app.job("catalog:crunch", timeout=0.2, attempts=1)
    def crunch(ctx: JobContext) -> None:
        try:
            for i in range(1000):
                time.sleep(0.01)
                ctx.progress(done=i, total=1000)
        except Exception:
            stopped.set()
            raise

    job = await crunch.enqueue()
    await drain()
    stored = await app.get_job(job.id)
    assert stored.state is JobState.FAILED
    assert stored.error is not None
    assert stored.error.type == "JobTimeout"
    assert await asyncio.to_thread(stopped.wait, 5)


async def test_manual_retry_gives_a_failed_job_a_fresh_budget(app: Conveyor, drain: Drain) -> None:
    fail = True

    @app.job("shopify:import:all", attempts=1)
    async def import_all() -> str:
        if fail:
            raise Unrecoverable("Product Validation Failed: missing SKU")
        return "ok"

    job = await import_all.enqueue()
    await drain()
    assert (await app.get_job(job.id)).state is JobState.FAILED
    fail = False
    retried = await app.retry(job.id)
    assert (retried.state, retried.attempts) == (JobState.PENDING, 0)
    await drain()
    stored = await app.get_job(job.id)
    assert (stored.state, stored.result) == (JobState.COMPLETED, "ok")
    with pytest.raises(InvalidStateTransition, match="only failed or cancelled"):
        await app.retry(job.id)


async def test_result_that_is_not_json_fails_clearly(app: Conveyor, drain: Drain) -> None:
    @app.job("catalog:weird", attempts=1)
    async def weird() -> object:
        return object()

    job = await weird.enqueue()
    await drain()
    stored = await app.get_job(job.id)
    assert stored.state is JobState.FAILED
    assert stored.error is not None
    assert "not JSON-serialisable" in stored.error.message


async def test_retrying_a_live_job_is_refused(app: Conveyor) -> None:
    @app.job("catalog:waiting")
    async def waiting() -> None: ...

    job = await waiting.enqueue()
    with pytest.raises(InvalidStateTransition, match="is pending"):
        await app.retry(job.id)
