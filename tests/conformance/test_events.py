"""Job events: every transition is recorded with its change, in order, in a bounded stream."""

from __future__ import annotations

import asyncio
import time

import pytest

from conveyor import (
    ConfigurationError,
    Conveyor,
    FakeClock,
    JobContext,
    JobOptions,
    JobState,
    PayloadError,
    Unrecoverable,
)
from conveyor.backends import backend_from_url
from conveyor.backends.base import Backend
from conveyor.events import FROM_OLDEST, JobEvent, JobEventKind

from .conftest import Drain

K = JobEventKind


async def everything(backend: Backend, after: str = FROM_OLDEST) -> list[JobEvent]:
    """Every event after `after`, read in small batches to exercise the cursor."""
    seen: list[JobEvent] = []
    while True:
        batch = await backend.events(after, limit=7)
        if not batch.events:
            return seen
        seen += batch.events
        after = batch.cursor


def kinds_of(events: list[JobEvent], job_id: str) -> list[JobEventKind]:
    return [e.kind for e in events if e.job_id == job_id]


async def test_a_job_that_reports_progress_and_completes(
    app: Conveyor, drain: Drain, clock: FakeClock
) -> None:
    @app.job("shopify:import:products", queue="imports")
    async def import_products(ctx: JobContext) -> None:
        ctx.progress(done=234, total=500, message="Importing products: 234/500")

    job = await import_products.options(tenant="store-1").enqueue()
    clock.advance(5)
    await drain()
    events = [e for e in await everything(await app.backend()) if e.job_id == job.id]
    assert [e.kind for e in events] == [K.ADDED, K.STARTED, K.PROGRESS, K.COMPLETED]
    assert [e.state for e in events] == [
        JobState.PENDING,
        JobState.RUNNING,
        JobState.RUNNING,
        JobState.COMPLETED,
    ]
    assert {(e.type, e.queue, e.tenant) for e in events} == {
        ("shopify:import:products", "imports", "store-1")
    }
    progress = events[2]
    assert (progress.percent, progress.message) == (46.8, "Importing products: 234/500")
    assert events[3].percent == 100
    assert events[0].at == job.created_at
    assert events[1].at == events[2].at == events[3].at == job.created_at + 5
    assert len({e.id for e in events}) == 4


async def test_retrying_failing_and_a_retry_by_hand(app: Conveyor, drain: Drain, clock: FakeClock) -> None:
    @app.job("ebay:sync:listings", attempts=2, backoff=[30])
    def sync() -> None:
        raise ConnectionError("eBay timed out")

    job = await sync.enqueue()
    await drain()
    clock.advance(31)
    await drain()
    await app.retry(job.id)
    events = await everything(await app.backend())
    assert kinds_of(events, job.id) == [K.ADDED, K.STARTED, K.RETRYING, K.STARTED, K.FAILED, K.REQUEUED]
    retrying = next(e for e in events if e.kind is K.RETRYING)
    assert retrying.state is JobState.SCHEDULED


async def test_cancel_remove_and_a_parent_waiting_for_children(app: Conveyor, drain: Drain) -> None:
    @app.job("images:upload", queue="images")
    async def upload(n: int) -> int:
        return n

    @app.job("families:sync", queue="families")
    async def family(ctx: JobContext) -> None:
        await ctx.spawn(upload, n=1)

    @app.job("catalog:never")
    def never() -> None:
        raise Unrecoverable("not run")

    parent = await family.enqueue()
    await drain()
    doomed = await never.options(delay=3600).enqueue()
    await app.cancel(doomed.id)
    await app.remove(doomed.id)
    events = await everything(await app.backend())
    assert kinds_of(events, parent.id) == [K.ADDED, K.STARTED, K.WAITING, K.COMPLETED]
    (child,) = {e.job_id for e in events if e.queue == "images"}
    assert kinds_of(events, child) == [K.ADDED, K.STARTED, K.COMPLETED]
    # Order is exact within a queue; across queues (Redis: across streams) only to the millisecond.
    assert {e.queue for e in events if e.job_id == parent.id} == {"families"}
    assert kinds_of(events, doomed.id) == [K.ADDED, K.CANCELLED, K.REMOVED]
    assert events[-1].at is None  # a removal carries no time


def per_queue(events: list[JobEvent]) -> dict[str, list[str]]:
    """Job ids by queue, in event order: the order a backend guarantees (across queues,
    Redis merges its per-queue streams by entry time, exact only to the millisecond)."""
    found: dict[str, list[str]] = {}
    for event in events:
        found.setdefault(event.queue, []).append(event.job_id)
    return found


async def test_a_reader_resuming_from_a_cursor_sees_exactly_what_came_after(app: Conveyor) -> None:
    @app.job("catalog:touch", queue="a")
    async def touch_a(n: int) -> None: ...

    @app.job("catalog:touch-b", queue="b")
    async def touch_b(n: int) -> None: ...

    backend = await app.backend()
    a0, b1 = (await touch_a.enqueue(n=0)).id, (await touch_b.enqueue(n=1)).id
    middle = await backend.events(None, limit=10)  # from now: nothing yet, a cursor at the end
    assert middle.events == []
    b2 = (await touch_b.enqueue(n=2)).id
    a3 = (await touch_a.enqueue(n=3)).id
    b4 = (await touch_b.enqueue(n=4)).id
    every = await everything(backend)
    assert per_queue(every) == {"a": [a0, a3], "b": [b1, b2, b4]}
    assert per_queue(await everything(backend, middle.cursor)) == {"a": [a3], "b": [b2, b4]}
    for split in range(len(every)):  # resuming after any event yields exactly the events after it
        rest = await everything(backend, every[split].cursor)
        assert [e.id for e in rest] == [e.id for e in every[split + 1 :]]
    head = await backend.events(FROM_OLDEST, limit=3)
    assert [e.id for e in head.events] == [e.id for e in every[:3]]
    assert head.cursor == head.events[-1].cursor
    assert (await backend.events(every[-1].cursor, limit=100)).events == []


async def test_a_blocking_read_wakes_when_an_event_arrives(app: Conveyor) -> None:
    @app.job("catalog:touch")
    async def touch() -> None: ...

    backend = await app.backend()
    start = (await backend.events(None)).cursor
    began = time.monotonic()
    empty = await backend.events(start, block=0.2)
    assert empty.events == []
    assert time.monotonic() - began >= 0.2

    async def later() -> str:
        await asyncio.sleep(0.3)
        return (await touch.enqueue()).id

    adding = asyncio.create_task(later())
    began = time.monotonic()
    batch = await backend.events(start, block=10)
    assert [e.job_id for e in batch.events] == [await adding]
    assert time.monotonic() - began < 3


async def test_the_stream_stays_bounded(backend_url: str, clock: FakeClock) -> None:
    keep = 100
    joined = "&" if "?" in backend_url else "?"
    async with Conveyor(f"{backend_url}{joined}events_max={keep}", clock=clock) as app:

        @app.job("catalog:touch")
        async def touch(n: int) -> None: ...

        backend = await app.backend()
        await touch.enqueue(n=-1)
        behind = (await backend.events(FROM_OLDEST)).cursor  # a reader about to fall behind
        ids = await touch.enqueue_many([{"n": n} for n in range(1200)])
        events = await everything(backend)
        late = await backend.events(behind, limit=10)
        caught_up = await backend.events(late.cursor, limit=10)
        kept_up = await backend.events(events[-20].cursor, limit=10)
    assert late.missed  # the events between its cursor and the oldest kept one are gone
    assert [e.id for e in late.events] == [e.id for e in events[:10]]
    assert not caught_up.missed
    assert not kept_up.missed
    # SQLite trims every 64th event; Redis trims whole stream nodes (100 entries each) with MAXLEN ~.
    assert keep <= len(events) <= keep + 100
    assert [e.job_id for e in events] == ids[-len(events) :]


async def test_events_carry_the_tenant_for_filtering(app: Conveyor) -> None:
    @app.job("catalog:touch")
    async def touch() -> None: ...

    own = await touch.options(tenant="store-a").enqueue()
    await touch.options(tenant="store-b").enqueue()
    await app.enqueue("catalog:touch", {}, JobOptions(tenant=None))
    events = await everything(await app.backend())
    assert [e.job_id for e in events if e.tenant == "store-a"] == [own.id]
    assert sorted(str(e.tenant) for e in events) == ["None", "store-a", "store-b"]


async def test_a_foreign_cursor_and_a_bad_bound_are_refused(app: Conveyor, backend_url: str) -> None:
    backend = await app.backend()
    for foreign in ["a=b", "not a cursor", "12-x"]:
        with pytest.raises(PayloadError, match="bad event cursor"):
            await backend.events(foreign)
    with pytest.raises(PayloadError, match="limit"):
        await backend.events(FROM_OLDEST, limit=0)
    joined = "&" if "?" in backend_url else "?"
    with pytest.raises(ConfigurationError, match="events_max"):
        backend_from_url(f"{backend_url}{joined}events_max=0")
