"""Schedules: one job per tick across racing schedulers, cron, missed ticks, jitter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from conveyor import ConfigurationError, Conveyor, FakeClock, JobFilter, PayloadError, Scheduler

from .conftest import AppFactory


def define(app: Conveyor) -> None:
    @app.job("seller:fetch-all")
    async def fetch_all(region: str = "EU") -> None: ...


async def scheduled_runs(app: Conveyor) -> list[float]:
    page = await app.list_jobs(JobFilter(types=["seller:fetch-all"], oldest_first=True), limit=1000)
    return [job.run_at for job in page.jobs]


async def test_three_racing_schedulers_enqueue_exactly_one_job_per_tick(
    make_app: AppFactory, clock: FakeClock
) -> None:
    apps = [make_app() for _ in range(3)]
    for app in apps:
        define(app)
    await apps[0].add_schedule("hourly-fetch", "seller:fetch-all", every=3600, payload={"region": "NA"})
    schedulers = [Scheduler(app) for app in apps]
    first = (await apps[0].schedules())[0].next_run_at
    for _ in range(10):
        clock.set((await apps[0].schedules())[0].next_run_at)
        fired = await asyncio.gather(*(s.tick() for s in schedulers))
        assert sum(fired) == 1
        await asyncio.gather(*(s.tick() for s in schedulers))  # a second pass at the same time fires nothing
    runs = await scheduled_runs(apps[0])
    assert runs == [first + 3600 * n for n in range(10)]
    page = await apps[0].list_jobs(JobFilter(types=["seller:fetch-all"]))
    assert {job.payload["region"] for job in page.jobs} == {"NA"}


async def test_cron_schedule_fires_on_its_expression(app: Conveyor, clock: FakeClock) -> None:
    define(app)
    clock.set(datetime(2026, 11, 23, 10, 15, tzinfo=UTC).timestamp())
    schedule = await app.add_schedule("top-of-hour", "seller:fetch-all", cron="0 * * * *")
    assert schedule.next_run_at == datetime(2026, 11, 23, 11, 0, tzinfo=UTC).timestamp()
    scheduler = Scheduler(app)
    clock.advance(44 * 60 + 59)
    assert await scheduler.tick() == 0
    clock.advance(1)
    assert await scheduler.tick() == 1
    assert (await app.schedules())[0].next_run_at == datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("policy", "expected"), [("skip", 0), ("run_once", 1)])
async def test_missed_ticks_follow_the_policy(
    app: Conveyor, clock: FakeClock, policy: str, expected: int
) -> None:
    define(app)
    schedule = await app.add_schedule("every-minute", "seller:fetch-all", every=60, missed=policy)
    clock.set(schedule.next_run_at + 5 * 60 + 30)  # five and a half periods with no scheduler
    assert await Scheduler(app).tick() == expected
    stored = (await app.schedules())[0]
    assert stored.next_run_at == schedule.next_run_at + 6 * 60  # resumes at the next future tick
    assert len(await scheduled_runs(app)) == expected


async def test_per_entity_schedules_spread_over_the_period(app: Conveyor) -> None:
    define(app)
    for user in range(100):
        await app.add_schedule(f"user-{user}", "seller:fetch-all", every=3600, jitter=3600)
    offsets = sorted(s.next_run_at % 3600 for s in await app.schedules())
    assert len(set(offsets)) == 100
    assert offsets[0] < 600
    assert offsets[-1] > 3000  # not all at the top of the hour
    again = await app.add_schedule("user-7", "seller:fetch-all", every=3600, jitter=3600)
    stored = {s.name: s for s in await app.schedules()}
    assert stored["user-7"].next_run_at == again.next_run_at  # the offset is stable per name


async def test_schedules_declared_in_code_keep_their_tick_unless_timing_changes(
    make_app: AppFactory, clock: FakeClock
) -> None:
    app = make_app()

    @app.schedule(every=600, payload={"region": "FE"})
    @app.job("seller:fetch-all")
    async def fetch_all(region: str) -> None: ...

    await app.sync_schedules()
    first = (await app.schedules())[0]
    assert (first.name, first.every, dict(first.payload)) == ("seller:fetch-all", 600, {"region": "FE"})
    clock.advance(100)
    await app.sync_schedules()
    assert (await app.schedules())[0].next_run_at == first.next_run_at

    later = make_app()

    @later.schedule(every=900, payload={"region": "FE"})
    @later.job("seller:fetch-all")
    async def fetch_all_again(region: str) -> None: ...

    await later.sync_schedules()
    assert (await later.schedules())[0].next_run_at != first.next_run_at


async def test_bad_schedules_are_refused(app: Conveyor) -> None:
    define(app)
    with pytest.raises(ConfigurationError, match="not a valid cron expression"):
        await app.add_schedule("bad", "seller:fetch-all", cron="every hour")
    with pytest.raises(ConfigurationError, match="exactly one of cron= or every="):
        await app.add_schedule("bad", "seller:fetch-all")
    with pytest.raises(PayloadError, match="region"):
        await app.add_schedule("bad", "seller:fetch-all", every=60, payload={"region": 5})
    assert await app.schedules() == []
    await app.add_schedule("ok", "seller:fetch-all", every=60)
    await app.remove_schedule("ok")
    assert await app.schedules() == []
