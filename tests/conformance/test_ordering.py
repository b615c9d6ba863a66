"""Priorities (lower first), FIFO within a priority, delays that never start early, pause."""

from __future__ import annotations

from conveyor import Conveyor, FakeClock, JobState

from .conftest import Drain


async def test_lower_priority_number_runs_first_then_fifo(app: Conveyor, drain: Drain) -> None:
    order: list[str] = []

    @app.job("catalog:step")
    async def step(label: str) -> None:
        order.append(label)

    for label, priority in [("low-1", 10), ("normal-1", 3), ("urgent", 1), ("normal-2", 3), ("high", 2)]:
        await step.options(priority=priority).enqueue(label=label)
    await step.enqueue(label="normal-3")  # the type default is 3 (normal)

    await drain(concurrency=1)
    assert order == ["urgent", "high", "normal-1", "normal-2", "normal-3", "low-1"]


async def test_delayed_job_never_starts_early(app: Conveyor, clock: FakeClock, drain: Drain) -> None:
    ran: list[float] = []

    @app.job("catalog:later")
    async def later() -> None:
        ran.append(clock.now())

    job = await later.options(delay=10).enqueue()
    due = clock.now() + 10
    assert (await drain()).processed == 0
    clock.advance(9.9)
    assert (await drain()).processed == 0
    assert (await app.get_job(job.id)).state is JobState.SCHEDULED
    clock.advance(0.1)
    await drain()
    assert ran == [due]


async def test_run_at_schedules_at_an_absolute_time(app: Conveyor, clock: FakeClock, drain: Drain) -> None:
    @app.job("catalog:at")
    async def at() -> None: ...

    job = await at.options(run_at=clock.now() + 3600).enqueue()
    clock.advance(3599)
    await drain()
    assert (await app.get_job(job.id)).state is JobState.SCHEDULED
    clock.advance(1)
    await drain()
    assert (await app.get_job(job.id)).state is JobState.COMPLETED


async def test_paused_queue_holds_its_jobs_and_others_run(app: Conveyor, drain: Drain) -> None:
    @app.job("images:upload", queue="images")
    async def upload() -> None: ...

    @app.job("families:sync", queue="families")
    async def sync() -> None: ...

    image = await upload.enqueue()
    family = await sync.enqueue()
    await app.pause("images")
    await drain()
    assert (await app.get_job(image.id)).state is JobState.PENDING
    assert (await app.get_job(family.id)).state is JobState.COMPLETED
    stats = await app.stats()
    assert [q.paused for q in stats.queues if q.queue == "images"] == [True]

    await app.resume("images")
    await drain()
    assert (await app.get_job(image.id)).state is JobState.COMPLETED


async def test_worker_serves_only_its_queues(app: Conveyor, drain: Drain) -> None:
    @app.job("images:upload", queue="images")
    async def upload() -> None: ...

    @app.job("families:sync", queue="families")
    async def sync() -> None: ...

    image = await upload.enqueue()
    family = await sync.enqueue()
    await drain(queues=["families"])
    assert (await app.get_job(image.id)).state is JobState.PENDING
    assert (await app.get_job(family.id)).state is JobState.COMPLETED
