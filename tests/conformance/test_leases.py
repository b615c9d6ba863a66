"""Leases: claims never overlap, a vanished worker's job comes back with its attempt counted."""

from __future__ import annotations

import asyncio

from conveyor import Conveyor, FakeClock, JobState
from conveyor.backends.base import FetchParams, SettleKind, Settlement, WorkerInfo

from .conftest import AppFactory, Drain


async def claim(app: Conveyor, worker_id: str, n: int, queue: str = "default") -> list[str]:
    """Claim jobs the way a worker does, then 'die' (never renew, never settle)."""
    backend = await app.backend()
    now = app.clock.now()
    lease = now + app.settings.lease_seconds
    return [j.id for j in await backend.fetch(FetchParams(worker_id, {queue: n}, now, lease))]


async def test_expired_lease_returns_job_to_pending_with_attempt_counted(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    @app.job("catalog:work")
    async def work() -> str:
        return "done"

    job = await work.enqueue()
    assert await claim(app, "ghost", 1) == [job.id]
    clock.advance(app.settings.lease_seconds - 1)
    await drain()
    assert (await app.get_job(job.id)).state is JobState.RUNNING  # lease still valid
    clock.advance(2)
    await drain()  # the worker recovers expired leases when it starts
    stored = await app.get_job(job.id)
    assert (stored.state, stored.attempts, stored.result) == (JobState.COMPLETED, 2, "done")
    errors = await app.job_errors(job.id)
    assert [(e.attempt, e.type) for e in errors] == [(1, "WorkerLost")]


async def test_out_of_attempts_after_a_lost_lease_fails(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    @app.job("catalog:work", attempts=1)
    async def work() -> None: ...

    job = await work.enqueue()
    await claim(app, "ghost", 1)
    clock.advance(app.settings.lease_seconds + 1)
    await drain()
    stored = await app.get_job(job.id)
    assert stored.state is JobState.FAILED
    assert stored.error is not None
    assert stored.error.type == "WorkerLost"


async def test_late_outcome_from_a_worker_that_lost_its_lease_is_ignored(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    @app.job("catalog:work")
    async def work() -> str:
        return "from the live worker"

    job = await work.enqueue()
    await claim(app, "ghost", 1)
    clock.advance(app.settings.lease_seconds + 1)
    await drain()
    backend = await app.backend()
    late = Settlement(SettleKind.FAIL, job.id, "ghost", 1)
    assert await backend.settle([late], now=clock.now()) == 0
    assert (await app.get_job(job.id)).result == "from the live worker"


async def test_concurrent_claims_never_share_a_job(make_app: AppFactory, app: Conveyor) -> None:
    @app.job("catalog:work")
    async def work() -> None: ...

    await work.enqueue_many([{}] * 300)
    others = [make_app() for _ in range(3)]
    claims = await asyncio.gather(
        *(claim(a, f"w{i}", 40) for _ in range(3) for i, a in enumerate([app, *others]))
    )
    flat = [job_id for batch in claims for job_id in batch]
    assert len(flat) == 300
    assert len(set(flat)) == 300


async def test_renewal_keeps_a_long_job_alive(app: Conveyor, clock: FakeClock) -> None:
    backend = await app.backend()

    @app.job("catalog:long")
    async def long() -> None: ...

    job = await long.enqueue()
    await claim(app, "alive", 1)
    info = WorkerInfo("alive", "host", 1, {"default": 1}, clock.now(), clock.now())
    for _ in range(5):
        clock.advance(app.settings.lease_seconds * 0.9)
        result = await backend.renew(info, [job.id], lease_until=clock.now() + app.settings.lease_seconds)
        assert result.lost == frozenset()
        assert (await backend.recover(now=clock.now())).requeued == []
    assert (await app.get_job(job.id)).state is JobState.RUNNING
    gone = await backend.renew(info, ["never-claimed"], lease_until=clock.now() + 30)
    assert gone.lost == frozenset({"never-claimed"})


async def test_graceful_stop_hands_unfinished_jobs_back_without_spending_attempts(
    make_app: AppFactory,
) -> None:
    app = make_app(grace_seconds=0.2)
    finished_in_grace = []

    @app.job("catalog:quick")
    async def quick() -> None:
        await asyncio.sleep(0.05)
        finished_in_grace.append(1)

    @app.job("catalog:endless")
    async def endless() -> None:
        await asyncio.sleep(3600)

    short = await quick.enqueue()
    long = await endless.enqueue()
    worker = app.worker()
    run = asyncio.create_task(worker.run())
    while (await app.get_job(long.id)).state is not JobState.RUNNING:
        await asyncio.sleep(0.01)
    worker.request_stop()
    await run
    assert (await app.get_job(short.id)).state is JobState.COMPLETED
    handed_back = await app.get_job(long.id)
    assert (handed_back.state, handed_back.attempts) == (JobState.PENDING, 0)
