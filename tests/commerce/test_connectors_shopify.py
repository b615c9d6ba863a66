"""Shopify connector (GraphQL productSet) against the Shopify simulator, over real HTTP on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from conveyor import FakeClock, RateLimited, Unrecoverable
from conveyor.commerce.connectors import (
    Image,
    Listing,
    RateLimitInfo,
    RetryPolicy,
    ShopifyConnector,
    TransientError,
    Variant,
)
from conveyor.commerce.secrets import Credentials
from conveyor.sandbox import FaultConfig, FaultKind, RunningSandbox, ShopifyConfig, ShopifySandbox

HAT = Listing(
    sku="HAT-1",
    name="Winter hat",
    price="79.99",
    description="<p>Warm</p>",
    brand="Acme",
    variants=(
        Variant("HAT-1-GREY", "79.99", 3, {"Color": "Grey"}),
        Variant("HAT-1-BLACK", "69.99", 2, {"Color": "Black"}),
    ),
    images=(Image("https://img.example/hat-1.jpg", "front"), Image("https://img.example/hat-2.jpg")),
)
GRAPHQL = "POST /admin/api/{version}/graphql.json"
Run = Callable[..., tuple[ShopifySandbox, RunningSandbox]]


@pytest.fixture
def run(clock: FakeClock, serve: Callable[[Any], RunningSandbox]) -> Run:
    def start_sandbox(**config: object) -> tuple[ShopifySandbox, RunningSandbox]:
        sandbox = ShopifySandbox(ShopifyConfig(**config), clock=clock)  # type: ignore[arg-type]
        return sandbox, serve(sandbox)

    return start_sandbox


def connect(
    sandbox: ShopifySandbox,
    server: RunningSandbox,
    clock: FakeClock,
    readings: list[RateLimitInfo] | None = None,
    token: str | None = None,
    timeout: float = 5.0,
    retry: RetryPolicy | None = None,
) -> ShopifyConnector:
    credentials = Credentials({"access_token": token or sandbox.config.access_token})
    hook = readings.append if readings is not None else None
    return ShopifyConnector(
        credentials,
        shop_url=server.api_url,
        clock=clock,
        on_rate_limit=hook,
        timeout=timeout,
        retry=retry or RetryPolicy(transient_tries=1),
    )


def snapshot(sandbox: ShopifySandbox) -> tuple[object, ...]:
    (product,) = sandbox.store.products.values()
    return (
        product["title"],
        product["body_html"],
        product["vendor"],
        [(o["name"], o["values"]) for o in product["options"]],
        [(v["sku"], v["price"], v["option1"]) for v in product["variants"]],
        [(i["src"], i["alt"]) for i in product["images"]],
    )


EXPECTED = (
    "Winter hat",
    "<p>Warm</p>",
    "Acme",
    [("Color", ["Grey", "Black"])],
    [("HAT-1-GREY", "79.99", "Grey"), ("HAT-1-BLACK", "69.99", "Black")],
    [("https://img.example/hat-1.jpg", "front"), ("https://img.example/hat-2.jpg", "")],
)


async def test_publish_is_one_product_set(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock) as connector:
        remote = await connector.publish(HAT)
    (product,) = sandbox.store.products.values()
    assert snapshot(sandbox) == EXPECTED
    assert sandbox.counters.total == sandbox.counters.by_endpoint[GRAPHQL] == 1
    assert remote.product_id == f"gid://shopify/Product/{product['id']}"
    assert remote.variant_ids == {
        v["sku"]: f"gid://shopify/ProductVariant/{v['id']}" for v in product["variants"]
    }
    assert list(remote.image_ids) == [i.url for i in HAT.images]
    assert sandbox.store.writes == {product["id"]: 1}


async def test_phases_reach_the_same_state_and_republishing_keeps_ids(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock) as connector:
        remote = await connector.create_or_update_product(HAT, None)
        remote = await connector.upsert_variants(HAT, remote)
        remote = await connector.add_images(HAT, remote)
        assert snapshot(sandbox) == EXPECTED
        again = await connector.publish(replace(HAT, name="Winter hat II"), remote)
    (product,) = sandbox.store.products.values()
    assert product["title"] == "Winter hat II"
    assert again.variant_ids == remote.variant_ids
    assert again.image_ids == remote.image_ids
    assert sandbox.store.writes == {product["id"]: 4}


async def test_a_plain_product_gets_its_price_and_sku_on_the_default_variant(
    run: Run, clock: FakeClock
) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock) as connector:
        remote = await connector.publish(Listing(sku="MUG-1", name="Mug", price="9.5"))
    (product,) = sandbox.store.products.values()
    assert [(v["title"], v["sku"], v["price"]) for v in product["variants"]] == [
        ("Default Title", "MUG-1", "9.50")
    ]
    assert list(remote.variant_ids) == ["MUG-1"]


async def test_bad_token_is_unrecoverable_with_the_api_message(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock, token="shpat_wrong") as connector:
        with pytest.raises(Unrecoverable) as caught:
            await connector.publish(HAT)
    assert str(caught.value) == "[API] Invalid API key or access token (unrecognized login or wrong password)"


async def test_missing_scope_is_unrecoverable(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(scopes=frozenset({"read_products"}))
    async with connect(sandbox, server, clock) as connector:
        with pytest.raises(Unrecoverable, match="Access denied for productSet field"):
            await connector.publish(HAT)
    assert sandbox.store.products == {}


async def test_user_errors_are_unrecoverable_with_their_messages(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock) as connector:
        with pytest.raises(Unrecoverable) as caught:
            await connector.publish(replace(HAT, name=" ", variants=(replace(HAT.variants[0], price="-5"),)))
    assert str(caught.value) == "Title can't be blank; Price must be greater than or equal to 0"
    assert sandbox.store.products == {}


@pytest.mark.parametrize("status", [200, 429])
async def test_throttled_is_rate_limited_until_the_bucket_affords_the_call(
    run: Run, clock: FakeClock, status: int
) -> None:
    sandbox, server = run(graphql_bucket=15, graphql_restore_rate=5, mutation_cost=10, throttle_status=status)
    readings: list[RateLimitInfo] = []
    started = clock.now()
    async with connect(sandbox, server, clock, readings) as connector:
        await connector.publish(HAT)
        with pytest.raises(RateLimited) as caught:
            await connector.publish(HAT)
        clock.advance(caught.value.retry_after)
        await connector.publish(HAT)
    assert caught.value.retry_after == 1.0
    assert readings[0] == RateLimitInfo(
        remaining=0, reset_at=started + 1.0, retry_after=None, limit=1, scope="cost"
    )
    assert readings[1].retry_after == 1.0
    assert len(sandbox.store.products) == 2
    assert (sandbox.counters.violations, sandbox.counters.rate_limited) == (1, 1)


async def test_readings_count_calls_the_bucket_affords(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(graphql_bucket=1000, graphql_restore_rate=50, mutation_cost=10)
    readings: list[RateLimitInfo] = []
    async with connect(sandbox, server, clock, readings) as connector:
        await connector.publish(HAT)
        await connector.publish(HAT)
    assert [(r.remaining, r.limit, r.retry_after) for r in readings] == [(99, 100, None), (98, 100, None)]


async def test_server_errors_and_timeouts_are_transient(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(faults=FaultConfig(error_statuses=(502,), timeout_delay=0.5))
    sandbox.faults.force(FaultKind.ERROR, FaultKind.TIMEOUT)
    async with connect(sandbox, server, clock, timeout=0.1) as connector:
        with pytest.raises(TransientError) as error:
            await connector.publish(HAT)
        with pytest.raises(TransientError, match="timed out"):
            await connector.publish(HAT)
    assert error.value.status == 502
    assert sandbox.store.products == {}


async def test_a_5xx_is_repeated_for_a_product_set_naming_its_product_but_not_for_a_create(
    run: Run, clock: FakeClock
) -> None:
    sandbox, server = run(faults=FaultConfig(error_statuses=(503,)))
    retry = RetryPolicy(transient_tries=3, backoff=0.01)
    async with connect(sandbox, server, clock, retry=retry) as connector:
        remote = await connector.create_or_update_product(HAT, None)
        sandbox.faults.force(FaultKind.ERROR, FaultKind.ERROR)
        await connector.add_images(HAT, remote)
        sandbox.faults.force(FaultKind.ERROR)
        with pytest.raises(TransientError):
            await connector.create_or_update_product(HAT, None)
    assert sandbox.counters.by_endpoint[GRAPHQL] == 1 + 3 + 1
    assert len(sandbox.store.products) == 1
    (product,) = sandbox.store.products.values()
    assert sorted(i["src"] for i in product["images"]) == sorted(i.url for i in HAT.images)


async def test_repeated_refusals_wait_longer_each_time_than_the_bucket_asks(
    run: Run, clock: FakeClock
) -> None:
    """An injected THROTTLED answers while the bucket is full: Shopify's own wait is 0."""
    sandbox, server = run()
    retry = RetryPolicy(rate_limit_tries=3, rate_backoff=0.02)
    readings: list[RateLimitInfo] = []
    sandbox.faults.force(FaultKind.THROTTLE, FaultKind.THROTTLE, FaultKind.THROTTLE)
    async with connect(sandbox, server, clock, readings, retry=retry) as connector:
        started = time.monotonic()
        with pytest.raises(RateLimited) as caught:
            await connector.publish(HAT)
        waited = time.monotonic() - started
    assert [r.retry_after for r in readings] == [0.0, 0.0, 0.0]
    assert caught.value.retry_after == 0.08
    assert waited >= 0.02 + 0.04
    assert sandbox.counters.rate_limited == 3
    assert sandbox.store.products == {}
