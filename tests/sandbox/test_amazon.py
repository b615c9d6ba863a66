"""Amazon Listings Items simulator over real HTTP: LWA tokens, per-operation buckets, headers, ErrorList."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from conveyor import FakeClock
from conveyor.sandbox import AmazonConfig, AmazonSandbox, RunningSandbox, Sandbox
from conveyor.sandbox.amazon import DEFAULT_RATES

Serve = Callable[[Sandbox], RunningSandbox]
US = {"marketplaceIds": "ATVPDKIKX0DER"}
LISTING: dict[str, Any] = {"productType": "HAT", "attributes": {"item_name": [{"value": "Hat"}]}}


def token(server: RunningSandbox, sandbox: AmazonSandbox, **override: str) -> httpx.Response:
    c = sandbox.config
    form = {"grant_type": "refresh_token", "refresh_token": c.refresh_token, "client_id": c.client_id}
    form |= {"client_secret": c.client_secret, **override}
    return httpx.post(f"{server.api_url}/auth/o2/token", data=form)


def client(server: RunningSandbox, sandbox: AmazonSandbox) -> httpx.Client:
    access = token(server, sandbox).json()["access_token"]
    base = f"{server.api_url}/listings/2021-08-01/items/{sandbox.config.seller_id}"
    return httpx.Client(base_url=base, headers={"x-amz-access-token": access}, params=US)


def test_token_endpoint_and_its_oauth_errors(serve: Serve, clock: FakeClock) -> None:
    sandbox = AmazonSandbox(clock=clock)
    server = serve(sandbox)
    good = token(server, sandbox)
    bad_client = token(server, sandbox, client_secret="nope")
    bad_grant = token(server, sandbox, refresh_token="Atzr|other")
    assert good.json()["token_type"] == "bearer"
    assert good.json()["expires_in"] == 3600
    assert sandbox.lwa.access[good.json()["access_token"]] == (sandbox.config.seller_id, clock.now() + 3600)
    assert (bad_client.status_code, bad_client.json()["error"]) == (401, "invalid_client")
    assert (bad_grant.status_code, bad_grant.json()["error"]) == (400, "invalid_grant")


def test_put_get_patch_delete_with_headers(serve: Serve, clock: FakeClock) -> None:
    sandbox = AmazonSandbox(clock=clock)
    server = serve(sandbox)
    with client(server, sandbox) as http:
        put = http.put("/SKU-1", json=LISTING)
        patch = http.patch(
            "/SKU-1",
            json={
                "productType": "HAT",
                "patches": [{"op": "replace", "path": "/attributes/brand", "value": [{"value": "B"}]}],
            },
        )
        got = http.get("/SKU-1", params={**US, "includedData": "summaries,attributes"})
        deleted = http.delete("/SKU-1")
        gone = http.get("/SKU-1")
    assert put.json()["status"] == "ACCEPTED"
    assert len(put.json()["submissionId"]) == 32
    assert put.headers["x-amzn-RateLimit-Limit"] == "5.0"
    assert put.headers["x-amzn-RequestId"]
    assert got.json()["attributes"] == {"item_name": [{"value": "Hat"}], "brand": [{"value": "B"}]}
    assert got.json()["summaries"][0]["itemName"] == "Hat"
    assert patch.json()["status"] == deleted.json()["status"] == "ACCEPTED"
    assert gone.status_code == 404
    assert gone.json()["errors"][0]["code"] == "NotFound"
    assert gone.headers["x-amzn-RateLimit-Limit"] == "5.0"
    assert sandbox.store.writes == {"SKU-1": 3}
    assert sandbox.store.items == {}


def test_per_operation_buckets_and_429_without_rate_header(serve: Serve, clock: FakeClock) -> None:
    rates = {**DEFAULT_RATES, "putListingsItem": (1.0, 2.0)}
    sandbox = AmazonSandbox(AmazonConfig(rates=rates), clock=clock)
    server = serve(sandbox)
    with client(server, sandbox) as http:
        puts = [http.put(f"/S{n}", json=LISTING) for n in range(3)]
        get = http.get("/S0")
        clock.advance(1)
        again = http.put("/S2", json=LISTING)
    assert [r.status_code for r in puts] == [200, 200, 429]
    assert puts[2].json() == {
        "errors": [
            {
                "code": "QuotaExceeded",
                "message": "The frequency of requests was greater than allowed.",
                "details": "",
            }
        ]
    }
    assert "x-amzn-RateLimit-Limit" not in puts[2].headers
    assert "Retry-After" not in puts[2].headers
    assert puts[2].headers["x-amzn-RequestId"]
    assert get.status_code == 200
    assert again.json()["status"] == "ACCEPTED"
    assert sorted(sandbox.store.items) == ["S0", "S1", "S2"]
    assert sandbox.counters.violations == 1


def test_auth_failures_are_403_error_lists(serve: Serve, clock: FakeClock) -> None:
    sandbox = AmazonSandbox(clock=clock)
    server = serve(sandbox)
    with client(server, sandbox) as http:
        ok = http.get("/missing")
        clock.advance(3601)
        expired = http.get("/missing")
        other_seller = http.get(f"{server.api_url}/listings/2021-08-01/items/OTHER/X")
    url = f"{server.api_url}/listings/2021-08-01/items/{sandbox.config.seller_id}/X"
    missing = httpx.get(url, params=US)
    invalid = httpx.get(url, params=US, headers={"x-amz-access-token": "Atza|forged"})
    assert ok.status_code == 404
    for response, details in (
        (expired, "The access token you provided has expired."),
        (missing, "Access token is missing in the request header."),
        (invalid, "The access token you provided is revoked, malformed or invalid."),
    ):
        assert response.status_code == 403
        assert response.json()["errors"] == [
            {"code": "Unauthorized", "message": "Access to requested resource is denied.", "details": details}
        ]
        assert response.headers["x-amzn-ErrorType"] == "AccessDeniedException"
        assert "x-amzn-RateLimit-Limit" not in response.headers
    assert other_seller.status_code == 403


def test_structural_400s_and_content_issues_in_200(serve: Serve) -> None:
    sandbox = AmazonSandbox()
    server = serve(sandbox)
    with client(server, sandbox) as http:
        no_market = httpx.put(str(http.base_url.join("S")), json=LISTING, headers=http.headers)
        no_type = http.put("/S", json={"attributes": {}})
        invalid = http.put("/S", json={"productType": "HAT", "attributes": {"brand": [{"value": "B"}]}})
        preview = http.put("/S", json=LISTING, params={**US, "mode": "VALIDATION_PREVIEW"})
    assert no_market.status_code == 400
    assert no_market.json()["errors"][0]["message"] == "Missing required parameter 'marketplaceIds'."
    assert no_type.json()["errors"] == [
        {"code": "InvalidInput", "message": "Missing required field 'productType'.", "details": ""}
    ]
    assert no_type.headers["x-amzn-RateLimit-Limit"] == "5.0"
    assert invalid.status_code == 200
    assert invalid.json()["status"] == "INVALID"
    assert invalid.json()["issues"][0] == {
        "code": "90220",
        "message": "'item_name' is required but not supplied.",
        "severity": "ERROR",
        "attributeNames": ["item_name"],
        "categories": ["MISSING_ATTRIBUTE"],
    }
    assert preview.json()["status"] == "VALID"
    assert sandbox.store.items == {}


def test_search_pages_with_next_token(serve: Serve) -> None:
    sandbox = AmazonSandbox()
    server = serve(sandbox)
    with client(server, sandbox) as http:
        for n in range(3):
            http.put(f"/S{n}", json=LISTING)
        url = f"{server.api_url}/listings/2021-08-01/items/{sandbox.config.seller_id}"
        first = http.get(url, params={**US, "pageSize": 2})
        second = http.get(
            url, params={**US, "pageSize": 2, "pageToken": first.json()["pagination"]["nextToken"]}
        )
        too_big = http.get(url, params={**US, "pageSize": 21})
    assert [i["sku"] for i in first.json()["items"]] == ["S0", "S1"]
    assert [i["sku"] for i in second.json()["items"]] == ["S2"]
    assert "pagination" not in second.json()
    assert first.json()["numberOfResults"] == 3
    assert too_big.status_code == 400
