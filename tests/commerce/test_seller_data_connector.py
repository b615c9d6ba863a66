"""The SP-API read client against the simulator over HTTP: paging, and one outcome class per failure."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor import FakeClock, RateLimited, Unrecoverable
from conveyor.commerce.connectors.base import TransientError
from conveyor.commerce.connectors.seller_api import SellerApiClient
from conveyor.commerce.secrets import Credentials
from conveyor.sandbox import RunningSandbox, Sandbox
from conveyor.sandbox.faults import FaultConfig, FaultKind
from conveyor.sandbox.seller_api import SellerApiConfig, SellerApiSandbox

Serve = Callable[[Sandbox], RunningSandbox]
US = "ATVPDKIKX0DER"
SELLER = "A1SELLER"


def client_for(
    server: RunningSandbox,
    sandbox: SellerApiSandbox,
    clock: FakeClock,
    *,
    timeout: float = 10.0,
    **fields: str,
) -> SellerApiClient:
    lwa = sandbox.lwa
    secrets = {"client_id": lwa.client_id, "client_secret": lwa.client_secret}
    credentials = Credentials({**secrets, "refresh_token": lwa.authorize(SELLER), **fields}, "env:TEST")

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return SellerApiClient(
        credentials,
        marketplace_id=US,
        base_url=server.base_url,
        token_url=f"{server.base_url}/auth/o2/token",
        timeout=timeout,
        clock=clock,
        sleep=sleep,
    )


async def test_reads_every_page_of_orders_and_inventory(serve: Serve, clock: FakeClock) -> None:
    config = SellerApiConfig(
        orders_per_marketplace=(9, 9), skus_per_marketplace=(5, 5), inventory_page_size=2
    )
    sandbox = SellerApiSandbox(config, clock=clock)
    server = serve(sandbox)
    async with client_for(server, sandbox, clock) as client:
        orders = await client.orders(clock.now() - 90 * 86400, page_size=4)
        items = await client.order_items(orders[0]["AmazonOrderId"])
        inventory = await client.inventory()  # 3 pages, 2 allowed at once: waits 0.5 s in place
    assert [o["AmazonOrderId"] for o in orders] == list(sandbox.served.orders[(SELLER, US)])
    assert len(orders) == 9
    assert sandbox.counters.by_endpoint["GET /orders/v0/orders"] == 3
    assert items == sandbox.served.items[orders[0]["AmazonOrderId"]]
    assert [s["sellerSku"] for s in inventory] == list(sandbox.served.inventory[(SELLER, US)])
    assert len(inventory) == 5
    assert sandbox.counters.rate_limited == 1
    assert sandbox.counters.by_endpoint["GET /fba/inventory/v1/summaries"] == 4


async def test_bad_credentials_are_unrecoverable(serve: Serve, clock: FakeClock) -> None:
    sandbox = SellerApiSandbox(clock=clock)
    server = serve(sandbox)
    async with client_for(server, sandbox, clock, client_secret="wrong") as client:
        with pytest.raises(Unrecoverable, match="Client authentication failed"):
            await client.orders(clock.now() - 86400)
    async with client_for(server, sandbox, clock, refresh_token="Atzr|revoked") as client:
        with pytest.raises(Unrecoverable, match="invalid grant"):
            await client.inventory()


async def test_an_expired_access_token_is_renewed_once(serve: Serve, clock: FakeClock) -> None:
    sandbox = SellerApiSandbox(clock=clock)
    server = serve(sandbox)
    async with client_for(server, sandbox, clock) as client:
        await client.orders(clock.now() - 86400)
        sandbox.lwa.access.clear()  # the token dies before its announced expiry
        await client.orders(clock.now() - 86400)
        sandbox.lwa.revoke(SELLER)
        with pytest.raises(Unrecoverable, match="invalid grant"):
            await client.orders(clock.now() - 86400)
    assert sandbox.counters.by_status[403] == 2


async def test_server_errors_and_timeouts_are_transient(serve: Serve, clock: FakeClock) -> None:
    faults = FaultConfig(timeout_delay=2.0)
    sandbox = SellerApiSandbox(SellerApiConfig(faults=faults), clock=clock)
    server = serve(sandbox)
    async with client_for(server, sandbox, clock, timeout=0.5) as client:
        sandbox.faults.force(FaultKind.ERROR)
        with pytest.raises(TransientError) as error:
            await client.orders(clock.now() - 86400)
        sandbox.faults.force(FaultKind.TIMEOUT)
        with pytest.raises(TransientError, match="timed out"):
            await client.inventory()
    assert error.value.status in (500, 502, 503)


async def test_a_long_throttle_is_raised_with_one_token_of_the_reported_rate(
    serve: Serve, clock: FakeClock
) -> None:
    sandbox = SellerApiSandbox(clock=clock)
    server = serve(sandbox)
    async with client_for(server, sandbox, clock) as client:
        for _ in range(20):  # getOrders: burst 20, then one token a minute
            await client.orders(clock.now() - 86400)
        with pytest.raises(RateLimited) as throttled:
            await client.orders(clock.now() - 86400)
    assert throttled.value.retry_after == pytest.approx(1 / 0.0167)
    assert sandbox.counters.rate_limited == 1
