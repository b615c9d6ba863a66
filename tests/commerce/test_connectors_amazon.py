"""Amazon SP-API Listings Items connector against the Amazon simulator, over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from conveyor import FakeClock, RateLimited, Unrecoverable
from conveyor.commerce.connectors import (
    AmazonConnector,
    Image,
    Listing,
    RateLimitInfo,
    TransientError,
    Variant,
)
from conveyor.commerce.secrets import Credentials
from conveyor.sandbox import AmazonConfig, AmazonSandbox, FaultConfig, FaultKind, RunningSandbox
from conveyor.sandbox.amazon import DEFAULT_RATES

US = "ATVPDKIKX0DER"
HAT = Listing(
    sku="HAT-1",
    name="Winter hat",
    price="79.99",
    description="Warm",
    brand="Acme",
    variants=(
        Variant("HAT-1-GREY", "79.99", 3, {"Color": "Grey"}),
        Variant("HAT-1-BLACK", "69.99", 2, {"Color": "Black"}),
    ),
    images=(Image("https://img.example/hat-1.jpg"), Image("https://img.example/hat-2.jpg")),
)
MUG = Listing(sku="MUG-1", name="Mug", price="9.50", stock=7)
TOKEN = "POST /auth/o2/token"
Run = Callable[..., tuple[AmazonSandbox, RunningSandbox]]


@pytest.fixture
def run(clock: FakeClock, serve: Callable[[Any], RunningSandbox]) -> Run:
    def start_sandbox(**config: object) -> tuple[AmazonSandbox, RunningSandbox]:
        sandbox = AmazonSandbox(AmazonConfig(**config), clock=clock)  # type: ignore[arg-type]
        return sandbox, serve(sandbox)

    return start_sandbox


def connect(
    sandbox: AmazonSandbox,
    server: RunningSandbox,
    clock: FakeClock,
    readings: list[RateLimitInfo] | None = None,
    timeout: float = 5.0,
    **overrides: str,
) -> AmazonConnector:
    c = sandbox.config
    fields = {"client_id": c.client_id, "client_secret": c.client_secret, "refresh_token": c.refresh_token}
    return AmazonConnector(
        Credentials({k: overrides.get(k, v) for k, v in fields.items()}),
        seller_id=overrides.get("seller_id", c.seller_id),
        marketplace_id=overrides.get("marketplace_id", US),
        base_url=server.api_url,
        token_url=f"{server.api_url}/auth/o2/token",
        clock=clock,
        on_rate_limit=readings.append if readings is not None else None,
        timeout=timeout,
    )


async def test_publish_puts_parent_children_and_patches_images(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock) as connector:
        remote = await connector.publish(HAT)
    items = sandbox.store.items
    parent = items["HAT-1"]["attributes"]
    child = items["HAT-1-BLACK"]["attributes"]
    assert sorted(items) == ["HAT-1", "HAT-1-BLACK", "HAT-1-GREY"]
    assert parent["item_name"] == [{"value": "Winter hat", "language_tag": "en_US", "marketplace_id": US}]
    assert parent["parentage_level"] == [{"value": "parent", "marketplace_id": US}]
    assert parent["variation_theme"] == [{"name": "COLOR"}]
    assert parent["main_product_image_locator"] == [
        {"media_location": HAT.images[0].url, "marketplace_id": US}
    ]
    assert parent["other_product_image_locator_1"][0]["media_location"] == HAT.images[1].url
    assert "purchasable_offer" not in parent
    assert child["child_parent_sku_relationship"][0]["parent_sku"] == "HAT-1"
    assert child["purchasable_offer"][0]["our_price"] == [{"schedule": [{"value_with_tax": 69.99}]}]
    assert child["color"][0]["value"] == "Black"
    assert child["fulfillment_availability"][0]["quantity"] == 2
    assert sandbox.store.writes == {"HAT-1": 2, "HAT-1-GREY": 1, "HAT-1-BLACK": 1}
    assert sandbox.counters.by_endpoint[TOKEN] == 1
    assert (remote.product_id, sorted(remote.variant_ids)) == ("HAT-1", ["HAT-1-BLACK", "HAT-1-GREY"])


async def test_images_phase_removes_images_no_longer_listed(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock) as connector:
        remote = await connector.publish(MUG)
        await connector.add_images(replace(MUG, images=(Image("https://img.example/mug.jpg"),)), remote)
        assert "main_product_image_locator" in sandbox.store.items["MUG-1"]["attributes"]
        await connector.add_images(MUG, remote)
    attributes = sandbox.store.items["MUG-1"]["attributes"]
    assert not any(name.endswith("image_locator") for name in attributes)
    assert attributes["purchasable_offer"][0]["our_price"][0]["schedule"][0]["value_with_tax"] == 9.5


async def test_bad_client_credentials_are_unrecoverable(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock, client_secret="wrong") as connector:
        with pytest.raises(Unrecoverable, match=r"^Client authentication failed$"):
            await connector.publish(MUG)
    assert sandbox.store.items == {}


async def test_a_revoked_token_is_replaced_once_then_403_is_unrecoverable(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    async with connect(sandbox, server, clock) as connector:
        await connector.create_or_update_product(MUG, None)
        sandbox.lwa.access.clear()
        await connector.create_or_update_product(MUG, None)
    assert sandbox.counters.by_endpoint[TOKEN] == 2
    async with connect(sandbox, server, clock, seller_id="SOMEONE-ELSE") as connector:
        with pytest.raises(Unrecoverable) as caught:
            await connector.create_or_update_product(MUG, None)
    assert str(caught.value) == (
        "Access to requested resource is denied. (The seller in the request path is not the token's seller.)"
    )
    assert sandbox.store.writes == {"MUG-1": 2}


async def test_expired_token_is_refreshed_before_use(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(token_ttl=600)
    async with connect(sandbox, server, clock) as connector:
        await connector.create_or_update_product(MUG, None)
        clock.advance(590)
        await connector.create_or_update_product(MUG, None)
    assert sandbox.counters.by_endpoint[TOKEN] == 2
    assert sandbox.counters.by_status[403] == 0


async def test_invalid_listing_and_bad_request_are_unrecoverable(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(required_attributes=("item_name", "product_description"))
    async with connect(sandbox, server, clock) as connector:
        with pytest.raises(Unrecoverable, match=r"^'product_description' is required but not supplied\.$"):
            await connector.create_or_update_product(MUG, None)
    async with connect(sandbox, server, clock, marketplace_id="A1PA6795UKMFR9") as connector:
        with pytest.raises(Unrecoverable, match=r"^Invalid marketplaceIds: A1PA6795UKMFR9\.$"):
            await connector.create_or_update_product(MUG, None)
    assert sandbox.store.items == {}


async def test_429_waits_one_token_at_the_last_reported_rate(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(rates={**DEFAULT_RATES, "putListingsItem": (2.0, 1.0)})
    readings: list[RateLimitInfo] = []
    async with connect(sandbox, server, clock, readings) as connector:
        await connector.create_or_update_product(MUG, None)
        with pytest.raises(RateLimited) as caught:
            await connector.create_or_update_product(MUG, None)
    assert caught.value.retry_after == 0.5
    assert readings == [
        RateLimitInfo(limit=2.0, scope="putListingsItem"),
        RateLimitInfo(remaining=0, reset_at=clock.now() + 0.5, retry_after=0.5, scope="putListingsItem"),
    ]
    assert sandbox.counters.violations == 1


async def test_429_before_any_rate_header_uses_the_default_wait(run: Run, clock: FakeClock) -> None:
    sandbox, server = run()
    sandbox.faults.force(FaultKind.THROTTLE)
    async with connect(sandbox, server, clock) as connector:
        with pytest.raises(RateLimited) as caught:
            await connector.create_or_update_product(MUG, None)
    assert caught.value.retry_after == 1.0


async def test_server_errors_and_timeouts_are_transient(run: Run, clock: FakeClock) -> None:
    sandbox, server = run(faults=FaultConfig(error_statuses=(500,), timeout_delay=0.5))
    # An idempotent PUT is tried three times in all before the failure reaches the engine.
    sandbox.faults.force(*[FaultKind.ERROR] * 3, *[FaultKind.TIMEOUT] * 3)
    async with connect(sandbox, server, clock, timeout=0.1) as connector:
        with pytest.raises(TransientError) as error:
            await connector.create_or_update_product(MUG, None)
        with pytest.raises(TransientError, match="timed out"):
            await connector.create_or_update_product(MUG, None)
    assert error.value.status == 500
    assert sandbox.store.items == {}
    assert sandbox.counters.faults == {"error": 3, "timeout": 3}
