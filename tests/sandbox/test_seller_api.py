"""SP-API Orders and FBA Inventory simulator over real HTTP: paths, NextToken paging, LWA errors, 429s."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from conveyor import FakeClock
from conveyor.sandbox import RunningSandbox, Sandbox
from conveyor.sandbox.faults import FaultConfig, FaultKind
from conveyor.sandbox.lwa import LwaAuthority
from conveyor.sandbox.seller_api import SellerApiConfig, SellerApiSandbox

Serve = Callable[[Sandbox], RunningSandbox]
US = "ATVPDKIKX0DER"
DE = "A1PA6795UKMFR9"
SINCE = "2023-01-01T00:00:00Z"


def login(server: RunningSandbox, lwa: LwaAuthority, refresh_token: str, **override: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": lwa.client_id}
    form |= {"client_secret": lwa.client_secret, **override}
    return httpx.post(f"{server.base_url}/auth/o2/token", data=form)


def seller_client(server: RunningSandbox, sandbox: SellerApiSandbox, seller: str) -> httpx.Client:
    access = login(server, sandbox.lwa, sandbox.lwa.authorize(seller)).json()["access_token"]
    return httpx.Client(base_url=server.base_url, headers={"x-amz-access-token": access})


def test_orders_page_with_next_token_and_items_match_the_orders(serve: Serve, clock: FakeClock) -> None:
    sandbox = SellerApiSandbox(SellerApiConfig(seed=3, orders_per_marketplace=(7, 7)), clock=clock)
    server = serve(sandbox)
    with seller_client(server, sandbox, "A1SELLER") as http:
        first = http.get(
            "/orders/v0/orders", params={"MarketplaceIds": US, "CreatedAfter": SINCE, "MaxResultsPerPage": 3}
        )
        pages = [first.json()["payload"]]
        while "NextToken" in pages[-1]:
            more = http.get(
                "/orders/v0/orders", params={"MarketplaceIds": US, "NextToken": pages[-1]["NextToken"]}
            )
            assert more.status_code == 200
            pages.append(more.json()["payload"])
        orders = [o for page in pages for o in page["Orders"]]
        items = http.get(f"/orders/v0/orders/{orders[0]['AmazonOrderId']}/orderItems")
        missing = http.get("/orders/v0/orders/111-0000000-0000000/orderItems")
    assert first.status_code == 200
    assert first.headers["x-amzn-RateLimit-Limit"] == "0.0167"
    assert first.headers["x-amzn-RequestId"]
    assert [len(p["Orders"]) for p in pages] == [3, 3, 1]
    assert len({o["AmazonOrderId"] for o in orders}) == 7
    assert all(o["MarketplaceId"] == US for o in orders)
    assert sandbox.served.orders[("A1SELLER", US)] == {o["AmazonOrderId"]: o for o in orders}
    lines = items.json()["payload"]["OrderItems"]
    assert items.json()["payload"]["AmazonOrderId"] == orders[0]["AmazonOrderId"]
    line_total = sum(float(line["ItemPrice"]["Amount"]) for line in lines)
    assert round(line_total, 2) == float(orders[0]["OrderTotal"]["Amount"])
    assert (missing.status_code, missing.json()["errors"][0]["code"]) == (404, "NotFound")
    assert "x-amzn-RateLimit-Limit" in missing.headers


def test_same_seed_serves_the_same_data_and_another_seed_does_not(serve: Serve, clock: FakeClock) -> None:
    served = []
    for seed in (5, 5, 6):
        sandbox = SellerApiSandbox(SellerApiConfig(seed=seed), clock=clock)
        server = serve(sandbox)
        with seller_client(server, sandbox, "A1SELLER") as http:
            body = http.get("/orders/v0/orders", params={"MarketplaceIds": US, "CreatedAfter": SINCE}).json()
        served.append(body["payload"]["Orders"])
    assert served[0] == served[1]
    assert served[0] != served[2]


def test_inventory_summaries_page_by_next_token(serve: Serve, clock: FakeClock) -> None:
    config = SellerApiConfig(region="EU", skus_per_marketplace=(5, 5), inventory_page_size=2)
    sandbox = SellerApiSandbox(config, clock=clock)
    server = serve(sandbox)
    params = {"granularityType": "Marketplace", "granularityId": DE, "marketplaceIds": DE, "details": "true"}
    skus = []
    with seller_client(server, sandbox, "A2SELLER") as http:
        token = ""
        for _ in range(5):
            clock.advance(1)  # the bucket holds 2 and refills 2/s
            body = http.get(
                "/fba/inventory/v1/summaries", params={**params, "nextToken": token} if token else params
            )
            assert body.status_code == 200, body.text
            assert body.json()["payload"]["granularity"] == {
                "granularityType": "Marketplace",
                "granularityId": DE,
            }
            skus += [s["sellerSku"] for s in body.json()["payload"]["inventorySummaries"]]
            token = body.json().get("pagination", {}).get("nextToken", "")
            if not token:
                break
    assert len(skus) == len(set(skus)) == 5
    assert set(sandbox.served.inventory[("A2SELLER", DE)]) == set(skus)


def test_bad_queries_are_400_error_lists(serve: Serve, clock: FakeClock) -> None:
    sandbox = SellerApiSandbox(clock=clock)
    server = serve(sandbox)
    with seller_client(server, sandbox, "A1SELLER") as http:
        answers = [
            http.get("/orders/v0/orders", params={"CreatedAfter": SINCE}),
            http.get("/orders/v0/orders", params={"MarketplaceIds": US}),
            http.get("/orders/v0/orders", params={"MarketplaceIds": DE, "CreatedAfter": SINCE}),
            http.get("/orders/v0/orders", params={"MarketplaceIds": US, "NextToken": "forged"}),
            http.get(
                "/orders/v0/orders",
                params={"MarketplaceIds": US, "CreatedAfter": SINCE, "MaxResultsPerPage": 101},
            ),
        ]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        (error,) = answer.json()["errors"]
        assert error["code"] == "InvalidInput"
        assert error["message"]
        assert "details" in error
        assert answer.headers["x-amzn-RateLimit-Limit"] == "0.0167"


def test_lwa_and_access_token_failures(serve: Serve, clock: FakeClock) -> None:
    sandbox = SellerApiSandbox(clock=clock)
    server = serve(sandbox)
    refresh = sandbox.lwa.authorize("A1SELLER")
    bad_client = login(server, sandbox.lwa, refresh, client_secret="wrong")
    bad_grant = login(server, sandbox.lwa, "Atzr|never-issued")
    access = login(server, sandbox.lwa, refresh).json()["access_token"]
    orders = {"MarketplaceIds": US, "CreatedAfter": SINCE}
    missing = httpx.get(f"{server.base_url}/orders/v0/orders", params=orders)
    forged = httpx.get(
        f"{server.base_url}/orders/v0/orders", params=orders, headers={"x-amz-access-token": "Atza|x"}
    )
    clock.advance(3601)
    expired = httpx.get(
        f"{server.base_url}/orders/v0/orders", params=orders, headers={"x-amz-access-token": access}
    )
    sandbox.lwa.revoke("A1SELLER")
    revoked = login(server, sandbox.lwa, refresh)
    assert (bad_client.status_code, bad_client.json()["error"]) == (401, "invalid_client")
    assert (bad_grant.status_code, bad_grant.json()["error"]) == (400, "invalid_grant")
    assert (revoked.status_code, revoked.json()["error"]) == (400, "invalid_grant")
    for answer, details in ((missing, "missing"), (forged, "invalid"), (expired, "expired")):
        assert answer.status_code == 403
        (error,) = answer.json()["errors"]
        assert error["code"] == "Unauthorized"
        assert details in error["details"]
        assert answer.headers["x-amzn-ErrorType"] == "AccessDeniedException"
        assert "x-amzn-RateLimit-Limit" not in answer.headers


def test_throttling_is_per_seller_and_operation_with_no_rate_header_on_429(
    serve: Serve, clock: FakeClock
) -> None:
    sandbox = SellerApiSandbox(clock=clock)
    server = serve(sandbox)
    params = {"granularityType": "Marketplace", "granularityId": US, "marketplaceIds": US}
    with (
        seller_client(server, sandbox, "A1SELLER") as one,
        seller_client(server, sandbox, "A9OTHER") as other,
    ):
        burst = [one.get("/fba/inventory/v1/summaries", params=params) for _ in range(3)]
        others = other.get("/fba/inventory/v1/summaries", params=params)
        orders_still = one.get("/orders/v0/orders", params={"MarketplaceIds": US, "CreatedAfter": SINCE})
        clock.advance(0.5)
        refilled = one.get("/fba/inventory/v1/summaries", params=params)
    assert [r.status_code for r in burst] == [200, 200, 429]
    throttled = burst[2]
    assert throttled.json()["errors"][0]["code"] == "QuotaExceeded"
    assert "x-amzn-RateLimit-Limit" not in throttled.headers
    assert "Retry-After" not in throttled.headers
    assert throttled.headers["x-amzn-RequestId"]
    assert burst[0].headers["x-amzn-RateLimit-Limit"] == "2"
    assert (others.status_code, orders_still.status_code, refilled.status_code) == (200, 200, 200)
    assert sandbox.counters.rate_limited == 1
    assert sandbox.counters.by_endpoint["GET /fba/inventory/v1/summaries"] == 5


def test_injected_faults_answer_in_the_error_list_shape(serve: Serve, clock: FakeClock) -> None:
    sandbox = SellerApiSandbox(SellerApiConfig(faults=FaultConfig(seed=1)), clock=clock)
    server = serve(sandbox)
    with seller_client(server, sandbox, "A1SELLER") as http:
        sandbox.faults.force(FaultKind.ERROR, FaultKind.THROTTLE)
        failed = http.get("/orders/v0/orders", params={"MarketplaceIds": US, "CreatedAfter": SINCE})
        throttled = http.get("/orders/v0/orders", params={"MarketplaceIds": US, "CreatedAfter": SINCE})
    assert failed.status_code in (500, 502, 503)
    assert failed.json()["errors"][0]["code"] == "InternalFailure"
    assert throttled.status_code == 429
    assert sandbox.counters.faults == {"error": 1, "throttle": 1}
