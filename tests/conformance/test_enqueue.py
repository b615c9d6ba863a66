"""Declaring job types and enqueuing: defaults, options, validation, bulk, sync producers."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pydantic
import pytest

from conveyor import (
    Conveyor,
    FakeClock,
    JobContext,
    JobFilter,
    JobOptions,
    JobState,
    PayloadError,
    UnknownJobType,
)

from .conftest import AppFactory, Drain


class Product(pydantic.BaseModel):
    sku: str
    price: float


async def test_enqueue_applies_type_defaults(app: Conveyor, clock: FakeClock) -> None:
    @app.job("amazon:export:products", queue="marketplace", priority=2, attempts=3, timeout=600)
    async def export(store_id: int) -> None: ...

    job = await export.enqueue(store_id=1)
    stored = await app.get_job(job.id)
    assert stored.state is JobState.PENDING
    assert (stored.type, stored.queue, stored.priority) == ("amazon:export:products", "marketplace", 2)
    assert (stored.max_attempts, stored.timeout, stored.attempts) == (3, 600, 0)
    assert stored.payload == {"store_id": 1}
    assert stored.created_at == clock.now()


async def test_options_override_defaults_per_call(app: Conveyor, clock: FakeClock) -> None:
    @app.job("shopify:import:products")
    async def import_products(store_id: int) -> None: ...

    job = await import_products.options(
        priority=1, delay=30, tenant="store-1", user_id="u-7", tags=["nightly"], attempts=2
    ).enqueue(store_id=1)
    stored = await app.get_job(job.id)
    assert stored.state is JobState.SCHEDULED
    assert stored.run_at == clock.now() + 30
    assert (stored.priority, stored.tenant, stored.user_id, stored.tags) == (
        1,
        "store-1",
        "u-7",
        ("nightly",),
    )
    assert stored.max_attempts == 2


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "store_id: Field required"),
        ({"store_id": "not-a-number"}, "store_id: Input should be a valid integer"),
        ({"store_id": 1, "surprise": True}, "surprise: Extra inputs are not permitted"),
    ],
)
async def test_payload_is_checked_against_the_signature(
    app: Conveyor, payload: dict[str, Any], message: str
) -> None:
    @app.job("akeneo:import:products")
    async def handler(store_id: int) -> None: ...

    with pytest.raises(PayloadError, match=message):
        await app.enqueue("akeneo:import:products", payload)
    assert (await app.stats()).total == 0


async def test_pydantic_arguments_round_trip_as_json(app: Conveyor, drain: Drain) -> None:
    seen: list[Product] = []

    @app.job("catalog:price")
    async def price(product: Product) -> float:
        seen.append(product)
        return product.price * 2

    job = await price.enqueue(product=Product(sku="A-1", price=9.5))
    assert (await app.get_job(job.id)).payload == {"product": {"sku": "A-1", "price": 9.5}}
    await drain()
    assert seen == [Product(sku="A-1", price=9.5)]
    assert (await app.get_job(job.id)).result == 19.0


async def test_not_json_serialisable_payload_is_refused(app: Conveyor) -> None:
    @app.job("catalog:anything")
    async def handler(value: Any) -> None: ...

    with pytest.raises(PayloadError, match="not JSON-serialisable"):
        await handler.enqueue(value=object())


async def test_oversized_payload_is_refused_with_its_size(make_app: AppFactory) -> None:
    app = make_app(max_payload_bytes=2048)

    @app.job("catalog:big")
    async def handler(text: str) -> None: ...

    await handler.enqueue(text="x" * 1000)
    with pytest.raises(PayloadError, match=r"over the 2,048-byte limit"):
        await handler.enqueue(text="x" * 5000)


async def test_unknown_type_and_bad_options_are_refused(app: Conveyor) -> None:
    with pytest.raises(UnknownJobType, match="nope"):
        await app.enqueue("nope", {})
    with pytest.raises(PayloadError, match="priority must be an integer from 1"):
        JobOptions(priority=0)
    with pytest.raises(PayloadError, match="delay must be >= 0"):
        JobOptions(delay=-1)


async def test_bulk_enqueue_of_ten_thousand_in_one_call(app: Conveyor) -> None:
    @app.job("catalog:touch", queue="bulk")
    async def touch(n: int) -> None: ...

    ids = await touch.enqueue_many({"n": i} for i in range(10_000))
    assert len(set(ids)) == 10_000
    stats = await app.stats()
    assert stats.count(JobState.PENDING, "bulk") == 10_000
    page = await app.list_jobs(JobFilter(oldest_first=True), limit=3)
    assert [j.payload["n"] for j in page.jobs] == [0, 1, 2]


async def test_bulk_jobs_share_the_options_and_keep_their_own_payloads(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    seen: list[int] = []

    @app.job("catalog:touch", queue="bulk", attempts=4)
    async def touch(n: int) -> None:
        seen.append(n)

    nightly = touch.options(priority=2, tenant="store-1", tags=["nightly"])
    ids = await nightly.enqueue_many({"n": i} for i in range(1_100))  # more than one chunk of a batch
    for i in (0, 499, 500, 1_099):
        job = await app.get_job(ids[i])
        assert (job.id, job.payload, job.state) == (ids[i], {"n": i}, JobState.PENDING)
        assert (job.priority, job.tenant, job.tags, job.max_attempts) == (2, "store-1", ("nightly",), 4)
        assert job.created_at == clock.now()
    (later,) = await touch.options(delay=60).enqueue_many([{"n": -1}])
    assert (await app.get_job(later)).state is JobState.SCHEDULED

    await drain(concurrency=1)
    assert seen == list(range(1_100))


async def test_bulk_enqueue_names_the_bad_payload(app: Conveyor) -> None:
    @app.job("catalog:touch")
    async def touch(n: int) -> None: ...

    with pytest.raises(PayloadError, match="job #2"):
        await touch.enqueue_many([{"n": 1}, {"n": 2}, {"n": "three"}])
    assert (await app.stats()).total == 0


async def test_sync_producers_enqueue_from_plain_threads(app: Conveyor, drain: Drain) -> None:
    @app.job("translation:ui-labels:bulk")
    def translate(language: str) -> str:
        return language.upper()

    def view() -> str:  # what a Flask or Django view would do
        return translate.enqueue_sync(language="es").id

    job_id = await asyncio.to_thread(view)
    try:
        await drain()
        assert (await app.get_job(job_id)).result == "ES"
    finally:
        await asyncio.to_thread(app.close_sync)


async def test_context_parameter_is_not_part_of_the_payload(app: Conveyor, drain: Drain) -> None:
    @app.job("catalog:ctx")
    async def handler(ctx: JobContext, n: int) -> int:
        return ctx.attempt + n

    job = await handler.enqueue(n=10)
    assert job.payload == {"n": 10}
    await drain()
    assert (await app.get_job(job.id)).result == 11


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delay": float("inf")}, "delay must be a finite number"),
        ({"delay": float("nan")}, "delay must be a finite number"),
        ({"delay": 1e20}, "delay must be >= 0 and <= 3.15576e"),
        ({"delay": -1}, "delay must be >= 0"),
        ({"run_at": 1e308}, "run_at must be >= 0 and <= 7.25812e"),
        ({"attempts": 10**12}, "attempts must be >= 1 and <= 1000"),
        ({"attempts": 2.5}, "attempts must be an integer"),
        ({"timeout": float("inf")}, "timeout must be a finite number"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"weight": float("nan")}, "weight must be a finite number"),
        ({"dedup_key": "k" * 600}, "dedup_key must be at most 512 characters"),
        ({"user_id": "a\x00b"}, "user_id must not contain control characters"),
        ({"tenant": "t" * 201}, "tenant must be at most 200 characters"),
        ({"tags": ["t"] * 51}, "tags: at most 50"),
        ({"tags": ["\x1b[31m"]}, "each tag must not contain control characters"),
    ],
)
async def test_options_that_no_reader_could_show_are_refused_before_anything_is_stored(
    app: Conveyor, options: dict[str, Any], message: str
) -> None:
    @app.job("catalog:noop")
    async def noop() -> None:
        return None

    with pytest.raises(PayloadError, match=re.escape(message)):
        await noop.options(**options).enqueue()
    assert (await app.list_jobs()).jobs == []
