"""Jumpseller connector against the Jumpseller simulator, over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from conveyor import FakeClock, RateLimited, Unrecoverable
from conveyor.commerce.connectors import (
    CredentialsRejected,
    Image,
    JumpsellerConnector,
    Listing,
    Pacer,
    RateLimitInfo,
    RetryPolicy,
    TransientError,
    Variant,
)
from conveyor.commerce.secrets import Credentials
from conveyor.sandbox import (
    FaultConfig,
    FaultKind,
    JumpsellerConfig,
    JumpsellerSandbox,
    RunningSandbox,
)

HAT = Listing(
    sku="HAT-1",
    name="Winter hat",
    price="79.99",
    stock=5,
    description="Warm",
    variants=(
        Variant("HAT-1-GREY-M", "79.99", 3, {"Color": "Grey", "Size": "M"}),
        Variant("HAT-1-BLACK-L", "69.99", 2, {"Color": "Black", "Size": "L"}),
    ),
    images=(Image("https://img.example/hat-1.jpg"), Image("https://img.example/hat-2.jpg")),
)
Run = Callable[..., tuple[JumpsellerSandbox, RunningSandbox]]


@pytest.fixture
def run(clock: FakeClock, serve: Callable[[Any], RunningSandbox]) -> Run:
    def start_sandbox(**config: object) -> tuple[JumpsellerSandbox, RunningSandbox]:
        sandbox = JumpsellerSandbox(JumpsellerConfig(**config), clock=clock)  # type: ignore[arg-type]
        return sandbox, serve(sandbox)

    return start_sandbox


def connect(
    sandbox: JumpsellerSandbox,
    server: RunningSandbox,
    clock: FakeClock,
    readings: list[RateLimitInfo] | None = None,
    token: str | None = None,
    timeout: float = 5.0,
) -> JumpsellerConnector:
    credentials = Credentials({"login": sandbox.config.login, "authtoken": token or sandbox.config.authtoken})
    hook = readings.append if readings is not None else None
    return JumpsellerConnector(
        credentials, base_url=server.api_url, clock=clock, on_rate_limit=hook, timeout=timeout
    )


async def test_publish_creates_product_variants_and_images(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock) as connector:
        remote = await connector.publish(HAT)
    (product,) = sandbox.store.products.values()
    assert remote.product_id == str(product["id"])
    assert (product["name"], product["price"], product["sku"], product["stock"]) == (
        "Winter hat",
        79.99,
        "HAT-1",
        5,
    )
    assert [(v["sku"], v["price"], v["stock"]) for v in product["variants"]] == [
        ("HAT-1-GREY-M", 79.99, 3),
        ("HAT-1-BLACK-L", 69.99, 2),
    ]
    assert [(o["name"], o["value"]) for o in product["variants"][1]["options"]] == [
        ("Color", "Black"),
        ("Size", "L"),
    ]
    assert [(i["position"], i["url"]) for i in product["images"]] == [
        (1, HAT.images[0].url),
        (2, HAT.images[1].url),
    ]
    assert [o["name"] for o in sandbox.store.options[product["id"]]] == ["Color", "Size"]
    assert remote.variant_ids == {v["sku"]: str(v["id"]) for v in product["variants"]}
    assert remote.image_ids == {i["url"]: str(i["id"]) for i in product["images"]}
    # One create with the variants inline, then one write per image.
    assert sandbox.store.writes == {product["id"]: 3}
    assert sandbox.counters.by_endpoint["POST /v1/products/{product_id}/variants.json"] == 0


async def test_republishing_updates_in_place_without_duplicates(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock) as connector:
        first = await connector.publish(HAT)
        cheaper = replace(HAT, price="59.00", variants=HAT.variants[:1])
        second = await connector.publish(cheaper, first)
    (product,) = sandbox.store.products.values()
    assert product["price"] == 59.0
    assert len(product["variants"]) == 2
    assert len(product["images"]) == 2
    assert second.variant_ids == {"HAT-1-GREY-M": first.variant_ids["HAT-1-GREY-M"]}
    assert second.image_ids == first.image_ids
    assert sandbox.counters.by_endpoint["POST /v1/products/{product_id}/images.json"] == 2
    # The product is updated; the variant already says the same, so it is not written again.
    assert sandbox.store.writes == {product["id"]: 3 + 1}


async def test_bad_credentials_are_unrecoverable_with_the_api_message(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock, token="f" * 32) as connector:
        with pytest.raises(Unrecoverable, match=r"^Invalid login or authtoken$"):
            await connector.create_or_update_product(HAT, None)
    assert sandbox.store.products == {}


async def test_validation_errors_are_unrecoverable_with_the_api_messages(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    invalid = Listing(sku="BAD", name="", price="-1")
    async with connect(sandbox, server, clock) as connector:
        with pytest.raises(Unrecoverable) as caught:
            await connector.create_or_update_product(invalid, None)
    assert str(caught.value) == "Name can't be blank; Price must be greater than or equal to 0"
    assert sandbox.store.products == {}


@pytest.mark.parametrize(
    ("config", "retry_after", "scope"),
    [({"per_second": 1}, 1.0, "per_second"), ({"per_second": 5, "per_minute": 1}, 60.0, "per_minute")],
)
async def test_429_is_rate_limited_with_the_window_wait(
    run: Run, clock: FakeClock, config: dict[str, int], retry_after: float, scope: str
) -> None:
    sandbox, server = run(**config)
    readings: list[RateLimitInfo] = []
    async with connect(sandbox, server, clock, readings) as connector:
        await connector.create_or_update_product(HAT, None)
        with pytest.raises(RateLimited) as caught:
            await connector.create_or_update_product(HAT, None)
    assert caught.value.retry_after == retry_after
    assert readings[-1] == RateLimitInfo(0, clock.now() + retry_after, retry_after, 1, scope)
    assert len(sandbox.store.products) == 1
    assert sandbox.counters.violations == 1


async def test_ban_waits_until_the_ban_lifts(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(per_second=1, ban_after=1, ban_seconds=600)
    async with connect(sandbox, server, clock) as connector:
        await connector.create_or_update_product(HAT, None)
        with pytest.raises(RateLimited):
            await connector.create_or_update_product(HAT, None)
        clock.advance(100)
        with pytest.raises(RateLimited) as caught:
            await connector.create_or_update_product(HAT, None)
    assert caught.value.retry_after == 500.0


async def test_readings_decrement_and_reset_with_the_clock(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(per_second=3, per_minute=10)
    readings: list[RateLimitInfo] = []
    async with connect(sandbox, server, clock, readings) as connector:
        remote = await connector.create_or_update_product(HAT, None)
        await connector.create_or_update_product(HAT, remote)
        clock.advance(1)
        await connector.create_or_update_product(HAT, remote)
    assert [(r.remaining, r.scope) for r in readings] == [
        (2, "per_second"),
        (1, "per_second"),
        (2, "per_second"),
    ]
    assert readings[-1].reset_at == clock.now() + 1
    assert all(r.retry_after is None for r in readings)


async def test_server_errors_are_transient(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(faults=FaultConfig(error_statuses=(503,)))
    sandbox.faults.force(FaultKind.ERROR)
    async with connect(sandbox, server, clock) as connector:
        with pytest.raises(TransientError) as caught:
            await connector.create_or_update_product(HAT, None)
        remote = await connector.create_or_update_product(HAT, None)
    assert caught.value.status == 503
    assert list(sandbox.store.products) == [int(remote.product_id)]


async def test_timeouts_and_refused_connections_are_transient(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(faults=FaultConfig(timeout_delay=0.5))
    sandbox.faults.force(FaultKind.TIMEOUT)
    async with connect(sandbox, server, clock, timeout=0.1) as connector:
        with pytest.raises(TransientError, match="timed out"):
            await connector.create_or_update_product(HAT, None)
        server.stop()
        with pytest.raises(TransientError, match="ConnectError"):
            await connector.create_or_update_product(HAT, None)
    assert sandbox.store.products == {}


async def test_the_token_never_reaches_logs_or_errors(
    run: Run, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox, server = run()
    caplog.set_level("DEBUG")
    caplog.set_level("DEBUG", logger="httpx")  # `conveyor worker` quiets it; an earlier CLI test may have run
    async with connect(sandbox, server, clock) as connector:
        await connector.publish(HAT)
        with pytest.raises(Unrecoverable) as caught:
            await connector.create_or_update_product(Listing(sku="X", name="", price=1), None)
    assert caplog.records
    assert sandbox.config.authtoken not in caplog.text
    assert sandbox.config.authtoken not in str(caught.value)


async def test_reads_and_updates_are_retried_but_creates_are_not(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(faults=FaultConfig(error_statuses=(502,)))
    async with connect(sandbox, server, clock) as connector:
        remote = await connector.create_or_update_product(HAT, None)
        sandbox.faults.force(FaultKind.ERROR, FaultKind.ERROR)
        await connector.create_or_update_product(HAT, remote)
        sandbox.faults.force(FaultKind.ERROR)
        with pytest.raises(TransientError):
            await connector.create_or_update_product(HAT, None)
    assert sandbox.counters.by_endpoint["PUT /v1/products/{product_id}.json"] == 3
    assert sandbox.counters.by_endpoint["POST /v1/products.json"] == 2
    assert list(sandbox.store.products) == [int(remote.product_id)]


async def test_a_short_429_is_waited_out_when_the_policy_allows(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    credentials = Credentials({"login": sandbox.config.login, "authtoken": sandbox.config.authtoken})
    retry = RetryPolicy(rate_limit_tries=2, max_rate_wait=1.0)
    sandbox.faults.force(FaultKind.THROTTLE)
    async with JumpsellerConnector(
        credentials, base_url=server.api_url, clock=clock, retry=retry
    ) as connector:
        await connector.create_or_update_product(HAT, None)
    assert sandbox.counters.by_status[429] == 1
    assert len(sandbox.store.products) == 1


async def test_a_shared_pacer_holds_requests_until_the_window_reopens(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(per_second=1, per_minute=100)
    credentials = Credentials({"login": sandbox.config.login, "authtoken": sandbox.config.authtoken})
    pacer = Pacer(clock)
    retry = RetryPolicy(max_rate_wait=0.5)  # a longer wait is the engine's: the job is re-delayed
    async with JumpsellerConnector(
        credentials, base_url=server.api_url, clock=clock, pacer=pacer, retry=retry
    ) as connector:
        await connector.create_or_update_product(HAT, None)
        assert pacer.blocked_until == clock.now() + 1
        with pytest.raises(RateLimited) as caught:
            await connector.create_or_update_product(HAT, None)
    assert caught.value.retry_after == 1.0
    assert sandbox.counters.violations == 0


async def test_refused_credentials_are_told_apart_from_refused_products(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock, token="wrong") as connector:
        with pytest.raises(CredentialsRejected, match=r"^Invalid login or authtoken$"):
            await connector.create_or_update_product(HAT, None)
    async with connect(sandbox, server, clock) as connector:
        with pytest.raises(Unrecoverable) as caught:
            await connector.create_or_update_product(replace(HAT, name=""), None)
    assert not isinstance(caught.value, CredentialsRejected)
