"""Jumpseller simulator over real HTTP: auth forms, envelopes, both rate windows, ban mode, errors."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from conveyor import FakeClock
from conveyor.sandbox import (
    FaultConfig,
    FaultKind,
    JumpsellerConfig,
    JumpsellerSandbox,
    RunningSandbox,
    Sandbox,
)

Serve = Callable[[Sandbox], RunningSandbox]
PRODUCT = {"product": {"name": "Hat", "price": 10.5, "sku": "HAT-1", "stock": 3}}


def client(server: RunningSandbox, sandbox: JumpsellerSandbox) -> httpx.Client:
    return httpx.Client(base_url=server.api_url, auth=(sandbox.config.login, sandbox.config.authtoken))


def remaining(response: httpx.Response) -> tuple[int, int]:
    h = response.headers
    return int(h["Jumpseller-PerSecondRateLimit-Remaining"]), int(
        h["Jumpseller-PerMinuteRateLimit-Remaining"]
    )


def test_create_product_with_inline_variant_then_read_it_back(serve: Serve, clock: FakeClock) -> None:
    sandbox = JumpsellerSandbox(clock=clock)
    server = serve(sandbox)
    with client(server, sandbox) as http:
        body = {
            "product": {
                **PRODUCT["product"],
                "variants": [{"sku": "HAT-R", "options": [{"name": "Color", "value": "Red"}]}],
            }
        }
        created = http.post("/products.json", json=body)
        assert created.status_code == 201
        product = created.json()["product"]
        assert product["variants"][0]["options"][0]["value"] == "Red"
        listed = http.get("/products.json").json()
        options = http.get(f"/products/{product['id']}/options.json").json()
    assert listed == [{"product": product}]
    assert options[0]["option"]["name"] == "Color"
    assert [v["name"] for v in options[0]["option"]["values"]] == ["Red"]
    assert sandbox.store.with_sku("HAT-1") == [product]
    assert sandbox.store.writes == {product["id"]: 1}


def test_query_string_auth_works_and_anything_else_is_401(serve: Serve) -> None:
    sandbox = JumpsellerSandbox()
    server = serve(sandbox)
    params = {"login": sandbox.config.login, "authtoken": sandbox.config.authtoken}
    assert httpx.get(f"{server.api_url}/products/count.json", params=params).json() == {"count": 0}
    wrong = httpx.get(f"{server.api_url}/products.json", auth=(sandbox.config.login, "x" * 32))
    missing = httpx.get(f"{server.api_url}/products.json")
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert wrong.json() == {"message": sandbox.config.unauthorized_message}
    assert "Jumpseller-PerMinuteRateLimit-Remaining" in wrong.headers


def test_validation_and_not_found_bodies(serve: Serve) -> None:
    sandbox = JumpsellerSandbox(JumpsellerConfig(validation_status=400))
    server = serve(sandbox)
    with client(server, sandbox) as http:
        invalid = http.post("/products.json", json={"product": {"price": -1, "status": "gone"}})
        missing = http.get("/products/999.json")
        no_envelope = http.post("/products.json", json={"name": "Hat"})
    assert invalid.status_code == 400
    assert invalid.json() == {
        "errors": [
            "Name can't be blank",
            "Price must be greater than or equal to 0",
            "Status is not included in the list",
        ]
    }
    assert (missing.status_code, missing.json()) == (404, {"message": "Product not found"})
    assert no_envelope.json() == {"errors": ["Missing 'product' object in request body"]}
    assert sandbox.store.products == {}


def test_both_windows_decrement_and_reset_with_the_clock(serve: Serve, clock: FakeClock) -> None:
    sandbox = JumpsellerSandbox(JumpsellerConfig(per_second=2, per_minute=3), clock=clock)
    server = serve(sandbox)
    with client(server, sandbox) as http:
        first, second, third = (http.get("/products/count.json") for _ in range(3))
        assert [remaining(r) for r in (first, second)] == [(1, 2), (0, 1)]
        assert third.status_code == 429
        assert third.json() == {"message": "Rate Limit Exceeded"}
        assert remaining(third) == (0, 1)
        assert "Retry-After" not in third.headers
        clock.advance(1)
        fourth, fifth = http.get("/products/count.json"), http.get("/products/count.json")
        assert fourth.status_code == 200
        assert remaining(fourth) == (1, 0)
        assert fifth.status_code == 429
        clock.advance(60)
        assert remaining(http.get("/products/count.json")) == (1, 2)
    assert sandbox.counters.violations == 2
    assert sandbox.counters.rate_limited == 2
    assert sandbox.counters.by_endpoint["GET /v1/products/count.json"] == 6


def test_ban_mode_after_repeated_429s(serve: Serve, clock: FakeClock) -> None:
    sandbox = JumpsellerSandbox(
        JumpsellerConfig(per_second=1, per_minute=100, ban_after=2, ban_seconds=300), clock=clock
    )
    server = serve(sandbox)
    with client(server, sandbox) as http:
        assert http.get("/products.json").status_code == 200
        assert "Jumpseller-BannedByRateLimit-Reset" not in http.get("/products.json").headers
        banned = http.get("/products.json")
        clock.advance(5)
        still = http.get("/products.json")
        clock.advance(300)
        after = http.get("/products.json")
    assert banned.status_code == still.status_code == 429
    assert banned.headers["Jumpseller-BannedByRateLimit-Reset"] == "2023-11-14T22:18:20+00:00"
    assert (
        still.headers["Jumpseller-BannedByRateLimit-Reset"]
        == banned.headers["Jumpseller-BannedByRateLimit-Reset"]
    )
    assert after.status_code == 200
    assert sandbox.counters.violations == 3


def test_variants_images_and_limit_clamp(serve: Serve) -> None:
    sandbox = JumpsellerSandbox()
    server = serve(sandbox)
    with client(server, sandbox) as http:
        pid = http.post("/products.json", json=PRODUCT).json()["product"]["id"]
        variant = http.post(
            f"/products/{pid}/variants.json",
            json={"variant": {"sku": "V1", "price": 12, "options": [{"name": "Size", "value": "M"}]}},
        ).json()["variant"]
        updated = http.put(f"/products/{pid}/variants/{variant['id']}.json", json={"variant": {"stock": 9}})
        option_id = variant["options"][0]["product_option_id"]
        value = http.post(f"/products/{pid}/options/{option_id}/values.json", json={"value": {"name": "L"}})
        values = http.get(f"/products/{pid}/options/{option_id}/values.json").json()
        bad_image = http.post(f"/products/{pid}/images.json", json={"image": {"url": "ftp://x"}})
        image = http.post(f"/products/{pid}/images.json", json={"image": {"url": "https://img/1.jpg"}})
        for n in range(120):
            sandbox.store.products[10_000 + n] = {"id": 10_000 + n, "name": f"p{n}", "sku": f"S{n}"}
        page = http.get("/products.json", params={"limit": 500, "page": 2}).json()
    assert updated.json()["variant"]["stock"] == 9
    assert value.status_code == 201
    assert [v["value"]["name"] for v in values] == ["M", "L"]
    assert (bad_image.status_code, bad_image.json()) == (422, {"errors": ["Url is invalid"]})
    assert image.json()["image"] == {
        "id": image.json()["image"]["id"],
        "position": 1,
        "url": "https://img/1.jpg",
    }
    assert len(page) == 21
    assert sandbox.store.writes[pid] == 5


@pytest.mark.parametrize(("kind", "status"), [(FaultKind.ERROR, 503), (FaultKind.THROTTLE, 429)])
def test_forced_faults_answer_in_jumpseller_shape_without_writing(
    serve: Serve, kind: FaultKind, status: int
) -> None:
    sandbox = JumpsellerSandbox(JumpsellerConfig(faults=FaultConfig(error_statuses=(503,))))
    server = serve(sandbox)
    sandbox.faults.force(kind)
    with client(server, sandbox) as http:
        response = http.post("/products.json", json=PRODUCT)
    assert response.status_code == status
    assert "message" in response.json()
    assert sandbox.store.products == {}
    assert sandbox.counters.faults[kind] == 1
    assert sandbox.counters.violations == 0
