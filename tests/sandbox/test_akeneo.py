"""Akeneo simulator and connector over real HTTP: tokens, both paginations, limits, error bodies."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest

from conveyor import FakeClock, RateLimited
from conveyor.commerce.connectors import TransientError
from conveyor.commerce.connectors.akeneo import AkeneoConnector, CredentialsRejected
from conveyor.commerce.secrets import Credentials
from conveyor.sandbox import FaultKind, RunningSandbox, Sandbox
from conveyor.sandbox.akeneo import AkeneoConfig, AkeneoSandbox

Serve = Callable[[Sandbox], RunningSandbox]


def seeded(clock: FakeClock, products: int = 23, requests_per_second: int = 100) -> AkeneoSandbox:
    sandbox = AkeneoSandbox(AkeneoConfig(requests_per_second=requests_per_second), clock=clock)
    for n in range(products):
        sandbox.store.add_product(f"sku-{n:03d}", name=f"Chair {n}", price=f"{10 + n}.50")
    sandbox.store.add_category("master", "Master catalog")
    for n in range(4):
        sandbox.store.add_category(f"cat_{n}", f"Category {n}", parent="master")
    return sandbox


def credentials(sandbox: AkeneoSandbox, **overrides: str) -> Credentials:
    c = sandbox.config
    fields = {"client_id": c.client_id, "secret": c.secret, "username": c.username, "password": c.password}
    return Credentials({**fields, **overrides})


def token(http: httpx.Client, sandbox: AkeneoSandbox) -> str:
    c = sandbox.config
    basic = base64.b64encode(f"{c.client_id}:{c.secret}".encode()).decode()
    body = {"grant_type": "password", "username": c.username, "password": c.password}
    answer = http.post("/api/oauth/v1/token", json=body, headers={"Authorization": f"Basic {basic}"})
    assert answer.status_code == 200
    assert (answer.json()["expires_in"], answer.json()["token_type"]) == (3600, "bearer")
    return str(answer.json()["access_token"])


async def test_connector_reads_every_page_with_search_after_and_offsets(
    serve: Serve, clock: FakeClock
) -> None:
    sandbox = seeded(clock)
    server = serve(sandbox)
    pim = AkeneoConnector(credentials(sandbox), base_url=server.api_url, page_size=10, clock=clock)
    async with pim:
        count = await pim.count_products()
        pages = [page async for page in pim.products()]
        categories = [c async for page in pim.categories() for c in page]
    assert count == 23
    assert [len(p) for p in pages] == [10, 10, 3]
    assert [p["identifier"] for page in pages for p in page] == sorted(sandbox.store.products)
    assert pages[0][0]["values"]["price"][0]["data"] == [{"amount": "10.50", "currency": "EUR"}]
    assert [c["code"] for c in categories] == sorted(sandbox.store.categories)
    assert sandbox.counters.by_endpoint["POST /api/oauth/v1/token"] == 1


def test_pagination_links_limits_and_auth_errors(serve: Serve, clock: FakeClock) -> None:
    sandbox = seeded(clock, products=3)
    server = serve(sandbox)
    with httpx.Client(base_url=server.api_url) as http:
        anonymous = http.get("/api/rest/v1/products")
        bearer = {"Authorization": f"Bearer {token(http, sandbox)}"}
        first = http.get("/api/rest/v1/products", params={"limit": 2, "with_count": "true"}, headers=bearer)
        following = http.get(first.json()["_links"]["next"]["href"], headers=bearer)
        too_many = http.get("/api/rest/v1/products", params={"limit": 101}, headers=bearer)
        clock.advance(3601)
        expired = http.get("/api/rest/v1/products", headers=bearer)
    assert (anonymous.status_code, anonymous.json()) == (
        401,
        {"code": 401, "message": "Authentication is required"},
    )
    assert (first.json()["current_page"], first.json()["items_count"]) == (1, 3)
    assert [p["identifier"] for p in following.json()["_embedded"]["items"]] == ["sku-002"]
    assert "next" not in following.json()["_links"]
    assert (too_many.status_code, too_many.json()["message"]) == (
        422,
        "You cannot request more than 100 items.",
    )
    assert expired.status_code == 401


async def test_wrong_credentials_are_rejected_and_the_limit_is_rate_limited(
    serve: Serve, clock: FakeClock
) -> None:
    sandbox = seeded(clock, products=3, requests_per_second=2)
    server = serve(sandbox)
    async with AkeneoConnector(
        credentials(sandbox, password="nope"), base_url=server.api_url, clock=clock
    ) as pim:
        with pytest.raises(CredentialsRejected, match="No user found"):
            await pim.count_products()
    clock.advance(-clock.now() % 1)
    async with AkeneoConnector(credentials(sandbox), base_url=server.api_url, clock=clock) as pim:
        await pim.count_products()
        await pim.count_products()
        with pytest.raises(RateLimited) as limited:
            await pim.count_products()
    assert limited.value.retry_after == sandbox.config.retry_after
    assert sandbox.counters.rate_limited == 1


async def test_server_errors_are_transient_not_unrecoverable(serve: Serve, clock: FakeClock) -> None:
    sandbox = seeded(clock, products=1)
    server = serve(sandbox)
    sandbox.faults.force(FaultKind.ERROR)
    async with AkeneoConnector(credentials(sandbox), base_url=server.api_url, clock=clock) as pim:
        with pytest.raises(TransientError):
            await pim.count_products()
        assert await pim.count_products() == 1
    assert sandbox.counters.faults == {"error": 1}
