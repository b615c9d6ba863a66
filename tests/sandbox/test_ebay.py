"""eBay Sell Inventory simulator over real HTTP: OAuth errors, items, bulk, offers, publishing, quota."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from conveyor import FakeClock
from conveyor.sandbox import EbayConfig, EbaySandbox, RunningSandbox, Sandbox

Serve = Callable[[Sandbox], RunningSandbox]
ITEM: dict[str, Any] = {
    "product": {"title": "Hat", "imageUrls": ["https://img/1.jpg"]},
    "availability": {"shipToLocationAvailability": {"quantity": 3}},
    "condition": "NEW",
}
OFFER: dict[str, Any] = {
    "sku": "HAT-1",
    "marketplaceId": "EBAY_US",
    "format": "FIXED_PRICE",
    "categoryId": "1",
    "merchantLocationKey": "default",
    "pricingSummary": {"price": {"value": "10.00", "currency": "USD"}},
    "listingPolicies": {"fulfillmentPolicyId": "f", "paymentPolicyId": "p", "returnPolicyId": "r"},
}


def client(server: RunningSandbox, sandbox: EbaySandbox, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or sandbox.config.access_token}", "Content-Language": "en-US"}
    return httpx.Client(base_url=f"{server.api_url}/sell/inventory/v1", headers=headers)


def error_ids(response: httpx.Response) -> list[int]:
    return [e["errorId"] for e in response.json()["errors"]]


def test_oauth_and_scope_errors(serve: Serve) -> None:
    sandbox = EbaySandbox(EbayConfig(scopes=frozenset()))
    server = serve(sandbox)
    with client(server, sandbox, token="forged") as http:
        invalid = http.get("/inventory_item")
    missing = httpx.get(f"{server.api_url}/sell/inventory/v1/inventory_item")
    with client(server, sandbox) as http:
        forbidden = http.get("/inventory_item")
    assert invalid.status_code == missing.status_code == 401
    assert invalid.json()["errors"] == [
        {
            "errorId": 1001,
            "domain": "OAuth",
            "category": "REQUEST",
            "message": "Invalid access token",
            "longMessage": "Invalid access token. Check the value of the Authorization HTTP request header.",
        }
    ]
    assert error_ids(missing) == [1002]
    assert (forbidden.status_code, error_ids(forbidden)) == (403, [1100])


def test_inventory_item_create_replace_and_validation(serve: Serve) -> None:
    sandbox = EbaySandbox()
    server = serve(sandbox)
    with client(server, sandbox) as http:
        created = http.put("/inventory_item/HAT-1", json=ITEM)
        replaced = http.put("/inventory_item/HAT-1", json={**ITEM, "condition": "USED_GOOD"})
        bad_sku = http.put(f"/inventory_item/{'X' * 51}", json=ITEM)
        no_language = httpx.put(
            f"{server.api_url}/sell/inventory/v1/inventory_item/HAT-2",
            json=ITEM,
            headers={"Authorization": http.headers["Authorization"]},
        )
        bad_quantity = http.put(
            "/inventory_item/HAT-3",
            json={**ITEM, "availability": {"shipToLocationAvailability": {"quantity": -1}}},
        )
        fetched = http.get("/inventory_item/HAT-1").json()
        unknown = http.get("/inventory_item/NOPE")
    assert (created.status_code, replaced.status_code) == (201, 204)
    assert fetched["condition"] == "USED_GOOD"
    assert fetched["sku"] == "HAT-1"
    assert (bad_sku.status_code, error_ids(bad_sku)) == (400, [25707])
    assert (no_language.status_code, error_ids(no_language)) == (400, [25709])
    assert error_ids(bad_quantity) == [25004]
    assert (unknown.status_code, error_ids(unknown)) == (404, [25710])
    assert sandbox.store.writes == {"HAT-1": 2}


def test_bulk_limits_and_mixed_results(serve: Serve) -> None:
    sandbox = EbaySandbox()
    server = serve(sandbox)
    with client(server, sandbox) as http:
        too_many = http.post(
            "/bulk_create_or_replace_inventory_item",
            json={"requests": [{"sku": f"S{n}", **ITEM} for n in range(26)]},
        )
        mixed = http.post(
            "/bulk_create_or_replace_inventory_item",
            json={"requests": [{"sku": "OK-1", "locale": "en_US", **ITEM}, {"sku": "bad sku!", **ITEM}]},
        )
        page = http.get("/inventory_item", params={"limit": 1, "offset": 0}).json()
    assert (too_many.status_code, error_ids(too_many)) == (400, [25727])
    assert mixed.status_code == 207
    assert [(r["sku"], r["statusCode"]) for r in mixed.json()["responses"]] == [
        ("OK-1", 201),
        ("bad sku!", 400),
    ]
    assert mixed.json()["responses"][1]["errors"][0]["errorId"] == 25707
    assert (page["total"], page["size"], page["inventoryItems"][0]["sku"]) == (1, 1, "OK-1")
    assert "next" not in page
    assert list(sandbox.store.items) == ["OK-1"]


def test_offer_publish_lifecycle(serve: Serve) -> None:
    sandbox = EbaySandbox()
    server = serve(sandbox)
    with client(server, sandbox) as http:
        http.put("/inventory_item/HAT-1", json={**ITEM, "product": {"title": "Hat"}})
        offer_id = http.post("/offer", json=OFFER).json()["offerId"]
        duplicate = http.post("/offer", json=OFFER)
        no_picture = http.post(f"/offer/{offer_id}/publish")
        http.put("/inventory_item/HAT-1", json=ITEM)
        published = http.post(f"/offer/{offer_id}/publish")
        found = http.get("/offer", params={"sku": "HAT-1", "marketplace_id": "EBAY_US"}).json()
        unknown_sku = http.post("/offer", json={**OFFER, "sku": "NOPE"})
    assert error_ids(duplicate) == [25002]
    assert duplicate.json()["errors"][0]["parameters"] == [{"name": "offerId", "value": offer_id}]
    assert no_picture.status_code == 400
    assert (
        no_picture.json()["errors"][0]["message"]
        == "A user error has occurred. At least 1 picture is required."
    )
    listing_id = published.json()["listingId"]
    assert found["offers"][0]["status"] == "PUBLISHED"
    assert sandbox.store.listings[listing_id] == {
        "publishCount": 1,
        "skus": ["HAT-1"],
        "offerIds": [offer_id],
        "groupKey": None,
    }
    assert error_ids(unknown_sku) == [25702]


def test_group_publish_needs_an_offer_per_variant(serve: Serve) -> None:
    sandbox = EbaySandbox()
    server = serve(sandbox)
    group = {
        "title": "Hat",
        "imageUrls": ["https://img/1.jpg"],
        "variantSKUs": ["HAT-R", "HAT-B"],
        "variesBy": {"specifications": [{"name": "Color", "values": ["Red", "Blue"]}]},
    }
    with client(server, sandbox) as http:
        assert http.put("/inventory_item_group/HAT", json=group).status_code == 201
        for sku in ("HAT-R", "HAT-B"):
            http.put(f"/inventory_item/{sku}", json=ITEM)
        http.post("/offer", json={**OFFER, "sku": "HAT-R"})
        body = {"inventoryItemGroupKey": "HAT", "marketplaceId": "EBAY_US"}
        incomplete = http.post("/offer/publish_by_inventory_item_group", json=body)
        http.post("/offer", json={**OFFER, "sku": "HAT-B"})
        published = http.post("/offer/publish_by_inventory_item_group", json=body)
    assert incomplete.json()["errors"][0]["message"].endswith("No offer found for SKU HAT-B in EBAY_US.")
    listing = sandbox.store.listings[published.json()["listingId"]]
    assert (listing["skus"], listing["groupKey"]) == (["HAT-R", "HAT-B"], "HAT")


def test_daily_quota_429_and_analytics_reset(serve: Serve, clock: FakeClock) -> None:
    sandbox = EbaySandbox(EbayConfig(daily_quota=2), clock=clock)
    server = serve(sandbox)
    with client(server, sandbox) as http:
        answers = [http.get("/inventory_item") for _ in range(3)]
        quota = httpx.get(
            f"{server.api_url}/developer/analytics/v1_beta/rate_limit/", headers=http.headers
        ).json()
        clock.advance(86_400)
        next_day = http.get("/inventory_item")
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert answers[2].json()["errors"][0] == {
        "errorId": 2001,
        "domain": "ACCESS",
        "category": "REQUEST",
        "message": "Too many requests.",
        "longMessage": "The request limit has been reached for the resource.",
    }
    rate = quota["rateLimits"][0]["resources"][0]["rates"][0]
    assert (rate["limit"], rate["remaining"], rate["reset"]) == (2, 0, "2023-11-15T00:00:00+00:00")
    assert next_day.status_code == 200
    assert sandbox.counters.violations == 1
