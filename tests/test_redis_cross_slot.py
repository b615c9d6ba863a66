"""Redis only: what spans cluster slots (schedules and keys live apart from their queues' jobs).

The conformance suite checks the behaviour; these tests check the recovery
paths that only exist because one script cannot reach two slots.
"""

from __future__ import annotations

import json

from conveyor import Conveyor, FakeClock, JobFilter, JobOptions, JobState
from conveyor.backends.base import FetchParams
from conveyor.backends.redis import RedisBackend
from conveyor.backends.redis.records import new_job_record, num
from conveyor.backends.redis.schedules import LEDGER_GRACE
from conveyor.backends.redis.store import Script
from conveyor.limits import RateLimit


def define(app: Conveyor) -> None:
    @app.job("report:daily", queue="reports")
    async def daily() -> None: ...


async def redis_backend(app: Conveyor) -> RedisBackend:
    backend = await app.backend()
    assert isinstance(backend, RedisBackend)
    return backend


async def test_a_tick_won_by_a_scheduler_that_died_is_stored_once_by_recover(redis_url: str) -> None:
    clock = FakeClock()
    app = Conveyor(redis_url, clock=clock)
    define(app)
    schedule = await app.add_schedule("daily", "report:daily", every=86_400)
    clock.set(schedule.next_run_at)
    tick = schedule.next_run_at
    job = app.scheduled_job(schedule, tick)
    backend = await redis_backend(app)
    # Step 1 of claim_tick only: the winner records the job, then dies before storing it.
    entry = json.dumps({"queue": job.queue, "at": job.created_at, "record": new_job_record(job)})
    args = ("daily", num(tick), num(schedule.next_after(tick)), job.id, job.queue, entry)
    (won,) = await backend._store.run([Script("schedule_tick", backend._store.keys.base, args)])
    assert won == 1
    assert not await backend.claim_tick("daily", tick, schedule.next_after(tick), job)  # the tick is taken

    await backend.recover(now=clock.now())
    assert await backend.get(job.id) is None  # within the grace period the winner may still store it
    clock.advance(LEDGER_GRACE + 1)
    await backend.recover(now=clock.now())
    await backend.recover(now=clock.now())
    page = await app.list_jobs(JobFilter(types=["report:daily"]))
    assert [j.id for j in page.jobs] == [job.id]
    assert (await app.schedules())[0].last_job_id == job.id
    await app.close()


async def test_a_fired_job_removed_before_recover_is_not_brought_back(redis_url: str) -> None:
    clock = FakeClock()
    app = Conveyor(redis_url, clock=clock)
    define(app)
    schedule = await app.add_schedule("daily", "report:daily", every=86_400)
    clock.set(schedule.next_run_at)
    job = app.scheduled_job(schedule, schedule.next_run_at)
    backend = await redis_backend(app)
    assert await backend.claim_tick("daily", schedule.next_run_at, schedule.next_after(clock.now()), job)
    assert await backend.remove(job.id)
    # As if the winner's ledger deletion had been lost after its job was stored.
    ledger = backend._store.keys.base + ":schedules:fired"
    entry = json.dumps({"queue": job.queue, "at": job.created_at, "record": new_job_record(job)})
    await backend._store.run([("HSET", ledger, job.id, entry)])
    clock.advance(LEDGER_GRACE + 1)
    await backend.recover(now=clock.now())
    assert await backend.get(job.id) is None
    assert await backend._store.hgetall(ledger) == {}
    await app.close()


# keys -------------------------------------------------------------------------------------


async def test_a_key_paused_before_its_queue_existed_holds_the_queues_jobs(redis_url: str) -> None:
    clock = FakeClock()
    producer, worker_app = Conveyor(redis_url, clock=clock), Conveyor(redis_url, clock=clock)
    for app in (producer, worker_app):

        @app.job("amazon:export", queue="exports")
        async def export() -> None: ...

    await producer.pause_key("amazon-eu")  # no queue is known yet: only the global record has it
    held = await producer.enqueue("amazon:export", options=JobOptions(key="amazon-eu"))
    await worker_app.worker(burst=True).run()  # its first fetch copies the records into "exports"
    assert (await producer.get_job(held.id)).state is JobState.PENDING
    await producer.resume_key("amazon-eu")
    await worker_app.worker(burst=True).run()
    assert (await producer.get_job(held.id)).state is JobState.COMPLETED
    await producer.close()
    await worker_app.close()


async def test_a_key_paused_after_a_worker_synced_reaches_its_queue(redis_url: str) -> None:
    clock = FakeClock()
    app = Conveyor(redis_url, clock=clock)

    @app.job("amazon:export", queue="exports")
    async def export() -> None: ...

    await app.worker(burst=True).run()  # the queue is known and synced, still empty
    other = Conveyor(redis_url, clock=clock)
    await other.pause_key("amazon-eu")  # spread to every known queue
    held = await app.enqueue("amazon:export", options=JobOptions(key="amazon-eu"))
    await app.worker(burst=True).run()
    assert (await app.get_job(held.id)).state is JobState.PENDING
    assert [k.paused for k in await app.keys()] == [True]
    await app.close()
    await other.close()


async def test_a_key_used_by_two_queues_has_a_bucket_in_each(redis_url: str) -> None:
    clock = FakeClock()
    app = Conveyor(redis_url, clock=clock)
    for queue in ("a", "b"):

        @app.job(f"publish:{queue}", queue=queue, rate_limit=RateLimit(2, per=60))
        async def publish(n: int) -> None: ...

        await app.enqueue_many(f"publish:{queue}", [{"n": n} for n in range(5)], JobOptions(key="shop-1"))
    await app.worker(burst=True).run()
    assert (await app.stats()).count(JobState.COMPLETED) == 4  # 2 per queue, not 2 in all
    await app.close()


async def test_a_parked_job_cancelled_meanwhile_is_never_claimed(redis_url: str) -> None:
    clock = FakeClock()
    app = Conveyor(redis_url, clock=clock)

    @app.job("shop:sync", rate_limit=RateLimit(1, per=10))
    async def sync(n: int) -> None: ...

    ids = await app.enqueue_many("shop:sync", [{"n": n} for n in range(3)], JobOptions(key="shop-1"))
    await app.worker(burst=True).run()  # the first runs, the others are parked
    await app.cancel(ids[1])
    clock.advance(10)
    await app.worker(burst=True).run()
    states = [(await app.get_job(i)).state for i in ids]
    assert states == [JobState.COMPLETED, JobState.CANCELLED, JobState.COMPLETED]
    await app.close()


async def test_a_group_slot_held_by_a_lost_worker_is_freed_when_its_job_is_recovered(redis_url: str) -> None:
    clock = FakeClock()
    app = Conveyor(redis_url, clock=clock)

    @app.job("supplier:sync", group_concurrency=1)
    async def sync(n: int) -> None: ...

    ids = await app.enqueue_many("supplier:sync", [{"n": n} for n in range(2)], JobOptions(group="s-1"))
    backend = await redis_backend(app)
    now = clock.now()
    (claimed,) = await backend.fetch(FetchParams("lost", {"default": 10}, now, now + 30))
    assert claimed.id == ids[0]
    assert await backend.fetch(FetchParams("w", {"default": 10}, now, now + 30)) == []
    clock.advance(31)
    assert (await backend.recover(now=clock.now())).requeued == [ids[0]]
    again = await backend.fetch(FetchParams("w", {"default": 10}, clock.now(), clock.now() + 30))
    assert [j.id for j in again] == [ids[0]]
    await app.close()
