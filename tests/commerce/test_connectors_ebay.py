"""eBay Sell Inventory connector against the eBay simulator, over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from conveyor import FakeClock, RateLimited, Unrecoverable
from conveyor.commerce.connectors import (
    EbayConnector,
    EbaySettings,
    Image,
    Listing,
    RateLimitInfo,
    TransientError,
    Variant,
)
from conveyor.commerce.secrets import Credentials
from conveyor.sandbox import EbayConfig, EbaySandbox, FaultConfig, FaultKind, RunningSandbox

SETTINGS = EbaySettings(
    category_id="52365",
    merchant_location_key="default",
    fulfillment_policy_id="F1",
    payment_policy_id="P1",
    return_policy_id="R1",
)
MUG = Listing(
    sku="MUG-1",
    name="Mug",
    price="9.5",
    stock=7,
    brand="Acme",
    images=(Image("https://img.example/mug.jpg"),),
)
HAT = Listing(
    sku="HAT-1",
    name="Winter hat",
    price="79.99",
    description="Warm",
    variants=(
        Variant("HAT-1-GREY", "79.99", 3, {"Color": "Grey"}),
        Variant("HAT-1-BLACK", "69.99", 2, {"Color": "Black"}),
    ),
    images=(Image("https://img.example/hat-1.jpg"),),
)
Run = Callable[..., tuple[EbaySandbox, RunningSandbox]]


@pytest.fixture
def run(clock: FakeClock, serve: Callable[[Any], RunningSandbox]) -> Run:
    def start_sandbox(**config: object) -> tuple[EbaySandbox, RunningSandbox]:
        sandbox = EbaySandbox(EbayConfig(**config), clock=clock)  # type: ignore[arg-type]
        return sandbox, serve(sandbox)

    return start_sandbox


def connect(
    sandbox: EbaySandbox,
    server: RunningSandbox,
    clock: FakeClock,
    readings: list[RateLimitInfo] | None = None,
    token: str | None = None,
    settings: EbaySettings = SETTINGS,
    timeout: float = 5.0,
) -> EbayConnector:
    return EbayConnector(
        Credentials({"access_token": token or sandbox.config.access_token}),
        settings,
        base_url=server.api_url,
        clock=clock,
        on_rate_limit=readings.append if readings is not None else None,
        timeout=timeout,
    )


async def test_publish_a_plain_product_as_item_offer_and_listing(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock) as connector:
        remote = await connector.publish(MUG)
    item = sandbox.store.items["MUG-1"]
    (offer,) = sandbox.store.offers.values()
    assert item["product"] == {
        "title": "Mug",
        "description": "",
        "imageUrls": ["https://img.example/mug.jpg"],
        "brand": "Acme",
        "aspects": {"Brand": ["Acme"]},
    }
    assert item["availability"] == {"shipToLocationAvailability": {"quantity": 7}}
    assert (item["locale"], item["condition"]) == ("en-US", "NEW")
    assert offer["pricingSummary"] == {"price": {"value": "9.50", "currency": "USD"}}
    assert offer["status"] == "PUBLISHED"
    assert sandbox.store.listings[remote.listing_id or ""]["skus"] == ["MUG-1"]
    assert sandbox.store.writes == {"MUG-1": 3}


async def test_publish_variants_as_a_group_and_republish_without_duplicate_offers(
    run: Run, clock: FakeClock
) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock) as connector:
        remote = await connector.publish(HAT)
        again = await connector.publish(replace(HAT, description="Warmer"), remote)
    group = sandbox.store.groups["HAT-1"]
    assert group["variantSKUs"] == ["HAT-1-GREY", "HAT-1-BLACK"]
    assert group["variesBy"]["specifications"] == [{"name": "Color", "values": ["Grey", "Black"]}]
    assert group["description"] == "Warmer"
    assert sandbox.store.items["HAT-1-BLACK"]["product"]["aspects"] == {"Color": ["Black"]}
    assert sorted(o["sku"] for o in sandbox.store.offers.values()) == ["HAT-1-BLACK", "HAT-1-GREY"]
    listing = sandbox.store.listings[remote.listing_id or ""]
    assert (listing["groupKey"], listing["publishCount"]) == ("HAT-1", 2)
    assert again.listing_id == remote.listing_id
    assert remote.variant_ids == {"HAT-1-GREY": "HAT-1-GREY", "HAT-1-BLACK": "HAT-1-BLACK"}


async def test_bad_token_and_missing_scope_are_unrecoverable(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock, token="v^1.1#forged") as connector:
        with pytest.raises(Unrecoverable, match=r"^Invalid access token$"):
            await connector.publish(MUG)
    scoped, scoped_server = run(scopes=frozenset())
    async with connect(scoped, scoped_server, clock) as connector:
        with pytest.raises(Unrecoverable, match=r"^Access denied$"):
            await connector.publish(MUG)
    assert sandbox.store.items == scoped.store.items == {}


async def test_validation_errors_are_unrecoverable_with_the_api_messages(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock, settings=replace(SETTINGS, category_id="")) as connector:
        remote = await connector.create_or_update_product(MUG, None)
        with pytest.raises(Unrecoverable, match=r"^A user error has occurred\. categoryId is missing\.$"):
            await connector.add_images(MUG, remote)
        with pytest.raises(Unrecoverable, match=r"^This is an invalid value for a SKU"):
            await connector.create_or_update_product(replace(MUG, sku="MUG 1 with spaces"), None)
    assert sandbox.store.listings == {}


async def test_quota_429_waits_until_the_analytics_reset(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(daily_quota=1)
    readings: list[RateLimitInfo] = []
    async with connect(sandbox, server, clock, readings) as connector:
        with pytest.raises(RateLimited) as caught:
            await connector.create_or_update_product(MUG, None)
    midnight = 1_700_006_400.0
    assert caught.value.retry_after == midnight - clock.now() == 6400.0
    assert readings == [RateLimitInfo(0, midnight, 6400.0, 1, "daily")]
    assert sandbox.counters.violations == 1


async def test_server_errors_and_timeouts_are_transient(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(faults=FaultConfig(error_statuses=(503,), timeout_delay=0.5))
    # An idempotent PUT is tried three times in all before the failure reaches the engine.
    sandbox.faults.force(*[FaultKind.ERROR] * 3, *[FaultKind.TIMEOUT] * 3)
    async with connect(sandbox, server, clock, timeout=0.1) as connector:
        with pytest.raises(TransientError) as error:
            await connector.create_or_update_product(MUG, None)
        with pytest.raises(TransientError, match="timed out"):
            await connector.create_or_update_product(MUG, None)
    assert error.value.status == 503
    assert sandbox.store.items == {}
    assert sandbox.counters.faults == {"error": 3, "timeout": 3}
