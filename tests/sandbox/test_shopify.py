"""Shopify simulator over real HTTP: REST leaky bucket and bodies, GraphQL cost throttling and productSet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from conveyor import FakeClock
from conveyor.sandbox import RunningSandbox, Sandbox, ShopifyConfig, ShopifySandbox

Serve = Callable[[Sandbox], RunningSandbox]
PRODUCT_SET = """
mutation Set($input: ProductSetInput!) {
  productSet(input: $input) {
    product { id title options { name values } variants(first: 10) { nodes { id sku price } } }
    userErrors { field message code }
  }
}"""
HAT: dict[str, Any] = {
    "title": "Winter hat",
    "productOptions": [{"name": "Color", "position": 1, "values": [{"name": "Grey"}, {"name": "Black"}]}],
    "variants": [
        {"optionValues": [{"optionName": "Color", "name": "Grey"}], "price": 79.99, "sku": "H-G"},
        {"optionValues": [{"optionName": "Color", "name": "Black"}], "price": "69.99", "sku": "H-B"},
    ],
}


def client(server: RunningSandbox, sandbox: ShopifySandbox, token: str | None = None) -> httpx.Client:
    headers = {"X-Shopify-Access-Token": token or sandbox.config.access_token}
    return httpx.Client(base_url=f"{server.api_url}/admin/api/2026-04", headers=headers)


def graphql(http: httpx.Client, query: str, **variables: Any) -> httpx.Response:
    return http.post("/graphql.json", json={"query": query, "variables": variables})


def test_rest_bucket_header_429_retry_after_and_leak(serve: Serve, clock: FakeClock) -> None:
    sandbox = ShopifySandbox(ShopifyConfig(rest_bucket=3, rest_leak_rate=2.0), clock=clock)
    server = serve(sandbox)
    with client(server, sandbox) as http:
        answers = [http.get("/products/count.json") for _ in range(4)]
        clock.advance(1)
        after = http.get("/products/count.json")
    limits = [r.headers["X-Shopify-Shop-Api-Call-Limit"] for r in answers]
    assert limits == ["1/3", "2/3", "3/3", "3/3"]
    assert answers[3].status_code == 429
    assert answers[3].headers["Retry-After"] == "2.0"
    assert answers[3].json()["errors"].startswith("Exceeded 2 calls per second")
    assert after.headers["X-Shopify-Shop-Api-Call-Limit"] == "2/3"
    assert (sandbox.counters.violations, sandbox.counters.rate_limited) == (1, 1)


def test_rest_auth_scope_and_validation_bodies(serve: Serve) -> None:
    sandbox = ShopifySandbox(ShopifyConfig(scopes=frozenset({"read_products"})))
    server = serve(sandbox)
    with client(server, sandbox, token="wrong") as http:
        unauthorized = http.get("/products.json")
    with client(server, sandbox) as http:
        forbidden = http.post("/products.json", json={"product": {"title": "Hat"}})
    sandbox.config = ShopifyConfig()
    with client(server, sandbox) as http:
        invalid = http.post("/products.json", json={"product": {"body_html": "<p>x</p>"}})
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }
    assert forbidden.status_code == 403
    assert "write_products" in forbidden.json()["errors"]
    assert (invalid.status_code, invalid.json()) == (422, {"errors": {"title": ["can't be blank"]}})
    assert sandbox.store.products == {}


def test_rest_create_gives_default_variant_and_pages_through_link_header(serve: Serve) -> None:
    sandbox = ShopifySandbox()
    server = serve(sandbox)
    with client(server, sandbox) as http:
        created = http.post(
            "/products.json", json={"product": {"title": "Hat", "images": [{"src": "https://i/1.png"}]}}
        )
        for n in range(4):
            http.post("/products.json", json={"product": {"title": f"P{n}"}})
        first = http.get("/products.json", params={"limit": 2})
        second = httpx.get(first.links["next"]["url"], headers=http.headers)
        last = httpx.get(
            httpx.get(second.links["next"]["url"], headers=http.headers).url, headers=http.headers
        )
    product = created.json()["product"]
    assert created.status_code == 201
    assert product["admin_graphql_api_id"] == f"gid://shopify/Product/{product['id']}"
    assert [v["title"] for v in product["variants"]] == ["Default Title"]
    assert product["images"][0]["src"] == "https://i/1.png"
    assert [p["title"] for p in first.json()["products"]] == ["Hat", "P0"]
    assert [p["title"] for p in second.json()["products"]] == ["P1", "P2"]
    assert "previous" in second.links
    assert [p["title"] for p in last.json()["products"]] == ["P3"]
    assert "next" not in last.links


def test_product_set_creates_then_replaces_lists(serve: Serve, clock: FakeClock) -> None:
    sandbox = ShopifySandbox(clock=clock)
    server = serve(sandbox)
    with client(server, sandbox) as http:
        created = graphql(http, PRODUCT_SET, input=HAT).json()
        product = created["data"]["productSet"]["product"]
        grey = {"optionValues": [{"optionName": "Color", "name": "Grey"}], "price": "75.00", "sku": "H-G"}
        options = [{"name": "Color", "values": [{"name": "Grey"}]}]
        update = {"id": product["id"], "productOptions": options, "variants": [grey]}
        updated = graphql(http, PRODUCT_SET, input=update).json()["data"]["productSet"]["product"]
        title_only = graphql(http, PRODUCT_SET, input={"id": product["id"], "title": "Hat"}).json()
    assert created["data"]["productSet"]["userErrors"] == []
    assert [(v["sku"], v["price"]) for v in product["variants"]["nodes"]] == [
        ("H-G", "79.99"),
        ("H-B", "69.99"),
    ]
    assert updated["variants"]["nodes"] == [{**product["variants"]["nodes"][0], "price": "75.00"}]
    assert updated["options"] == [{"name": "Color", "values": ["Grey"]}]
    assert title_only["data"]["productSet"]["product"]["variants"]["nodes"] == updated["variants"]["nodes"]
    assert title_only["data"]["productSet"]["product"]["title"] == "Hat"
    assert list(sandbox.store.writes.values()) == [3]
    assert sandbox.store.with_sku("H-B") == []


def test_product_set_user_errors_come_back_with_http_200(serve: Serve) -> None:
    sandbox = ShopifySandbox(ShopifyConfig(max_variants=1))
    server = serve(sandbox)
    with client(server, sandbox) as http:
        blank = graphql(http, PRODUCT_SET, input={"title": " "})
        too_many = graphql(http, PRODUCT_SET, input=HAT)
        missing = graphql(http, PRODUCT_SET, input={"id": "gid://shopify/Product/1", "title": "x"})
    assert blank.status_code == 200
    assert blank.json()["data"]["productSet"] == {
        "product": None,
        "userErrors": [{"field": ["input", "title"], "message": "Title can't be blank", "code": "BLANK"}],
    }
    assert too_many.json()["data"]["productSet"]["userErrors"][0]["code"] == "VARIANTS_OVER_LIMIT"
    assert missing.json()["data"]["productSet"]["userErrors"][0]["code"] == "PRODUCT_DOES_NOT_EXIST"
    assert sandbox.store.products == {}


def test_graphql_cost_throttle_and_restore(serve: Serve, clock: FakeClock) -> None:
    config = ShopifyConfig(graphql_bucket=25, graphql_restore_rate=5, mutation_cost=10)
    sandbox = ShopifySandbox(config, clock=clock)
    server = serve(sandbox)
    with client(server, sandbox) as http:
        costs = [graphql(http, PRODUCT_SET, input={"title": f"P{n}"}).json() for n in range(3)]
        clock.advance(1)
        restored = graphql(http, PRODUCT_SET, input={"title": "P3"}).json()
    assert [c["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] for c in costs[:2]] == [15.0, 5.0]
    throttled = costs[2]
    assert "data" not in throttled
    assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert throttled["extensions"]["cost"]["actualQueryCost"] is None
    assert throttled["extensions"]["cost"]["requestedQueryCost"] == 10
    assert restored["extensions"]["cost"]["throttleStatus"] == {
        "maximumAvailable": 25.0,
        "currentlyAvailable": 0.0,
        "restoreRate": 5.0,
    }
    assert len(sandbox.store.products) == 3
    assert (sandbox.counters.violations, sandbox.counters.rate_limited) == (1, 1)


def test_graphql_throttle_status_option_max_cost_scope_and_unknown_field(serve: Serve) -> None:
    config = ShopifyConfig(graphql_bucket=5, throttle_status=429, scopes=frozenset({"write_products"}))
    sandbox = ShopifySandbox(config)
    server = serve(sandbox)
    with client(server, sandbox) as http:
        throttled = graphql(http, PRODUCT_SET, input={"title": "x"})
        huge = graphql(http, "{ products(first: 250) { nodes { variants(first: 250) { nodes { id } } } } }")
        denied = graphql(http, '{ product(id: "gid://shopify/Product/1") { id } }')
        unknown = graphql(http, "{ shop { name } }")
    assert throttled.status_code == 429
    assert throttled.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert huge.json()["errors"][0]["extensions"] == {
        "code": "MAX_COST_EXCEEDED",
        "cost": 63252,
        "maxCost": 1000,
    }
    assert denied.json()["data"] == {"product": None}
    assert denied.json()["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    assert unknown.json()["errors"][0]["extensions"]["code"] == "undefinedField"


FIND = """
query find($search: String!, $first: Int!) {
  productVariants(first: $first, query: $search) { nodes { sku product { id title } } }
}"""


def test_product_variants_search_matches_exact_skus_and_counts_creates(serve: Serve) -> None:
    sandbox = ShopifySandbox()
    server = serve(sandbox)
    with client(server, sandbox) as http:
        product = graphql(http, PRODUCT_SET, input=HAT).json()["data"]["productSet"]["product"]
        graphql(http, PRODUCT_SET, input={"id": product["id"], "title": "Hat"})
        found = graphql(http, FIND, search='sku:"H-B" OR sku:H-X', first=5).json()
        partial = graphql(http, FIND, search="sku:H", first=5).json()
        other = graphql(http, FIND, search="title:Hat", first=5).json()
    assert found["data"]["productVariants"]["nodes"] == [
        {"sku": "H-B", "product": {"id": product["id"], "title": "Hat"}}
    ]
    assert found["extensions"]["cost"]["requestedQueryCost"] == 2 + 5 * 2
    assert partial["data"]["productVariants"]["nodes"] == []
    assert "searches variants by sku only" in other["errors"][0]["message"]
    # Created once (the second productSet updated it), counted under each of its SKUs.
    assert sandbox.store.created == {"H-G": 1, "H-B": 1}
