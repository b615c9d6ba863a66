"""Progress, logs, results, statistics, workers, retention, and unknown job types."""

from __future__ import annotations

import asyncio

import pytest

from conveyor import Conveyor, FakeClock, JobContext, JobFilter, JobState, PayloadError
from conveyor import worker as worker_module

from .conftest import AppFactory, Drain
from .test_cancel_dedup import wait_until


async def test_progress_and_logs_are_readable_while_the_job_runs(app: Conveyor) -> None:
    release = asyncio.Event()

    @app.job("amazon:export:products")
    async def export(ctx: JobContext) -> dict[str, int]:
        ctx.progress(50, "AI optimizing: Blue Widget (15/30)", step="optimizing")
        ctx.log("optimised title for SKU BW-1")
        await release.wait()
        return {"exported": 30}

    job = await export.enqueue()
    worker = app.worker()
    run = asyncio.create_task(worker.run())

    async def reported() -> bool:
        return (await app.get_job(job.id)).progress.percent == 50

    await wait_until(reported)
    live = await app.get_job(job.id)
    assert live.state is JobState.RUNNING
    assert (live.progress.message, live.progress.step) == ("AI optimizing: Blue Widget (15/30)", "optimizing")
    assert [line.line for line in await app.job_logs(job.id)] == ["optimised title for SKU BW-1"]

    release.set()
    worker.request_stop()
    await run
    done = await app.get_job(job.id)
    assert (done.state, done.result, done.progress.percent) == (JobState.COMPLETED, {"exported": 30}, 100)


async def test_done_total_progress_and_bad_percent(app: Conveyor, drain: Drain) -> None:
    problems: list[str] = []

    @app.job("shopify:import:products")
    async def import_products(ctx: JobContext) -> None:
        ctx.progress(done=234, total=500, message="Importing products: 234/500")
        try:
            ctx.progress(float("nan"))
        except ValueError as exc:
            problems.append(str(exc))
        raise RuntimeError("stop here to keep the reported progress")

    job = await import_products.options(attempts=1).enqueue()
    await drain()
    stored = await app.get_job(job.id)
    assert stored.progress.percent == 46.8
    assert stored.progress.message == "Importing products: 234/500"
    assert problems
    assert "must be a number" in problems[0]


async def test_statistics_match_seed_001(app: Conveyor, drain: Drain) -> None:
    @app.job("catalog:ok", queue="marketplace")
    async def ok() -> None: ...

    @app.job("catalog:bad", queue="marketplace", attempts=1)
    async def bad() -> None:
        raise ValueError("boom")

    await ok.enqueue_many([{}] * 142)
    await bad.enqueue_many([{}] * 3)
    await drain()
    await ok.enqueue_many([{}] * 3)
    await ok.options(delay=60).enqueue()
    stats = await app.stats()
    assert stats.count(JobState.COMPLETED) == 142
    assert stats.count(JobState.FAILED) == 3
    assert stats.count(JobState.PENDING, "marketplace") == 3
    assert stats.count(JobState.SCHEDULED) == 1
    assert stats.total == 149
    assert round(stats.success_rate or 0, 4) == round(142 / 145, 4)
    assert not stats.is_running
    assert stats.max_concurrency == 0


async def test_workers_register_with_their_concurrency(app: Conveyor) -> None:
    @app.job("images:upload", queue="images")
    async def upload() -> None: ...

    @app.job("families:sync", queue="families")
    async def sync() -> None: ...

    worker = app.worker(concurrency={"images": 10, "families": 3})
    run = asyncio.create_task(worker.run())

    async def registered() -> bool:
        return (await app.stats()).is_running

    await wait_until(registered)
    stats = await app.stats()
    assert stats.max_concurrency == 13 + worker.concurrency["default"]
    assert [w.id for w in stats.workers] == [worker.id]
    worker.request_stop()
    await run
    assert not (await app.stats()).is_running  # a clean exit unregisters at once


async def test_retention_keeps_last_n_and_drops_old_jobs(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    @app.job("system:cleanup")
    async def noop(ctx: JobContext) -> None:
        ctx.log("line")

    for _ in range(10):
        await noop.enqueue()
        await drain()
        clock.advance(3600)
    live = await noop.enqueue()
    assert await app.cleanup(max_age=3.5 * 3600) == 7  # finished more than 3.5 h ago
    assert await app.cleanup(keep_last=2) == 1
    remaining = (await app.list_jobs(JobFilter())).jobs
    assert len(remaining) == 3
    assert live.id in {j.id for j in remaining}  # retention never touches live jobs


async def test_retention_from_settings_runs_on_cleanup(make_app: AppFactory) -> None:
    app = make_app(retention_keep_last=1)

    @app.job("system:cleanup")
    async def noop() -> None: ...

    await noop.enqueue_many([{}] * 5)
    await app.worker(burst=True).run()
    assert await app.cleanup() == 4


async def test_job_type_unknown_to_the_worker_fails_clearly(make_app: AppFactory, drain: Drain) -> None:
    producer = make_app()
    consumer = make_app()

    @producer.job("akeneo:import:categories")
    async def produce() -> None: ...

    @consumer.job("system:other")
    async def other() -> None: ...

    job = await produce.enqueue()
    await drain(consumer)
    stored = await consumer.get_job(job.id)
    assert stored.state is JobState.FAILED
    assert stored.error is not None
    assert "no handler for job type 'akeneo:import:categories'" in stored.error.message


async def test_list_jobs_filters_and_pages(app: Conveyor, drain: Drain) -> None:
    @app.job("shopify:import:products")
    async def a(n: int) -> None: ...

    @app.job("akeneo:import:products", queue="pim")
    async def b(n: int) -> None: ...

    for n in range(5):
        await a.options(tenant="store-1").enqueue(n=n)
        await b.options(tenant="store-2").enqueue(n=n)
    page = await app.list_jobs(JobFilter(tenant="store-1"), limit=2)
    assert [j.payload["n"] for j in page.jobs] == [4, 3]  # newest first
    rest = await app.list_jobs(JobFilter(tenant="store-1"), limit=10, cursor=page.next_cursor)
    assert [j.payload["n"] for j in rest.jobs] == [2, 1, 0]
    assert rest.next_cursor is None
    assert {j.type for j in (await app.list_jobs(JobFilter(queues=["pim"]))).jobs} == {
        "akeneo:import:products"
    }
    assert (await app.stats(tenant="store-2")).total == 5


async def test_a_forged_cursor_is_refused_clearly(app: Conveyor) -> None:
    with pytest.raises(PayloadError, match="cursor"):
        await app.list_jobs(JobFilter(), cursor="not-a-cursor")


async def test_the_last_progress_and_log_line_land_before_the_job_ends(
    app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job's final report races the worker's periodic report flush; it must still land."""
    monkeypatch.setattr(worker_module, "REPORT_INTERVAL", 0.0)  # the report loop flushes all the time

    @app.job("translation:ui-labels:bulk")
    async def translate(ctx: JobContext, n: int) -> None:
        await asyncio.sleep((n % 10) * 0.03)
        ctx.progress(90, f"Translating UI labels: {n}/{n}")
        ctx.log(f"translated {n} labels")

    ids = await app.enqueue_many("translation:ui-labels:bulk", [{"n": n} for n in range(120)])
    await app.worker(burst=True, concurrency={"default": 40}).run()
    for n, job_id in enumerate(ids):
        job = await app.get_job(job_id)
        assert job.progress.message == f"Translating UI labels: {n}/{n}"
        assert [line.line for line in await app.job_logs(job_id)] == [f"translated {n} labels"]
