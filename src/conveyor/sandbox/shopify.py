"""Shopify Admin API simulator: GraphQL `productSet` (main path) and the legacy REST product endpoints.

Reproduces `../shared/marketplace-apis.md` section 2: `X-Shopify-Access-Token`
auth with the string `errors` 401 body; the REST leaky bucket (40, leaking
2/s) with `X-Shopify-Shop-Api-Call-Limit: used/size` on every REST answer and
429 + `Retry-After: 2.0`; REST 422 `{"errors": {"title": ["can't be blank"]}}`;
cursor pagination through a `link` header with an opaque `page_info`. The
GraphQL face (cost throttling, `productSet`) lives in `shopify_graphql.py`.

Assumptions where the facts are silent (all in `ShopifyConfig`):
- a throttled GraphQL call answers `throttle_status` (200, as third-party
  mocks do; set 429 to try the other reading);
- a missing scope answers REST 403 `{"errors": "[API] This action requires
  merchant approval for <scope> scope."}` and GraphQL `ACCESS_DENIED`;
- the REST 429 body is `{"errors": "Exceeded 2 calls per second for api client. ..."}`;
- any API version string is accepted.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response

from conveyor import Clock

from .base import Gate, Reply, Sandbox, iso, json_response
from .faults import FaultConfig
from .limits import TokenBucket
from .shopify_catalog_read import add_catalog_read_routes
from .shopify_graphql import ShopifyGraphQL
from .shopify_store import MAX_OPTIONS, ShopifyStore, handle_of, is_url, money, rest_view

UNAUTHORIZED = "[API] Invalid API key or access token (unrecognized login or wrong password)"
PRODUCT_SCALARS = ("title", "body_html", "vendor", "product_type", "handle", "tags")


@dataclass(frozen=True)
class ShopifyConfig:
    access_token: str = "shpat_sandbox_0123456789abcdef"
    scopes: frozenset[str] = frozenset({"read_products", "write_products"})
    rest_bucket: int = 40
    rest_leak_rate: float = 2.0
    rest_retry_after: float = 2.0
    graphql_bucket: float = 1000.0
    graphql_restore_rate: float = 50.0
    max_query_cost: int = 1000
    mutation_cost: int = 10
    throttle_status: int = 200
    max_variants: int = 2048
    max_images: int = 250
    faults: FaultConfig = field(default_factory=FaultConfig)


class ShopifySandbox(Sandbox):
    name = "shopify"

    def __init__(self, config: ShopifyConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or ShopifyConfig()
        self.store = ShopifyStore()
        self.graphql = ShopifyGraphQL(self)
        super().__init__(self.config.faults, clock)
        self.rest_bucket = TokenBucket(self.config.rest_bucket, self.config.rest_leak_rate, self.clock)
        self.graphql_bucket = TokenBucket(
            self.config.graphql_bucket, self.config.graphql_restore_rate, self.clock
        )

    # -- gate -----------------------------------------------------------------------------------

    def admit(self, request: Request, endpoint: str) -> Gate:
        if request.headers.get("x-shopify-access-token") != self.config.access_token:
            return Gate(json_response(401, {"errors": UNAUTHORIZED}))
        if endpoint.endswith("/graphql.json"):
            return Gate()
        if not self.rest_bucket.try_take():
            self.counters.violations += 1
            return Gate(self.throttled(endpoint), self._call_limit())
        scope = "read_products" if request.method == "GET" else "write_products"
        if scope not in self.config.scopes:
            message = f"[API] This action requires merchant approval for {scope} scope."
            return Gate(json_response(403, {"errors": message}), self._call_limit())
        return Gate(None, self._call_limit())

    def _call_limit(self) -> dict[str, str]:
        used = math.ceil(self.rest_bucket.used() - 1e-9)
        return {"X-Shopify-Shop-Api-Call-Limit": f"{used}/{self.config.rest_bucket}"}

    def throttled(self, endpoint: str) -> Response:
        if endpoint.endswith("/graphql.json"):
            return json_response(*self.graphql.throttled(self.config.mutation_cost))
        self.counters.rate_limited += 1
        message = (
            f"Exceeded {self.config.rest_leak_rate:g} calls per second for api client. "
            "Reduce request rates to resume uninterrupted service."
        )
        headers = {"Retry-After": f"{self.config.rest_retry_after:.1f}", **self._call_limit()}
        return json_response(429, {"errors": message}, headers)

    def error(self, status: int, message: str) -> Response:
        return json_response(status, {"errors": message})

    def _invalid(self, errors: dict[str, list[str]]) -> Reply:
        return Reply(json_response(422, {"errors": errors}))

    # -- routes ---------------------------------------------------------------------------------

    def routes(self, app: FastAPI) -> None:
        root = "/admin/api/{version}"
        one = root + "/products/{product_id:int}"
        app.add_api_route(f"{root}/graphql.json", self.graphql_endpoint, methods=["POST"])
        app.add_api_route(f"{root}/products.json", self.list_products, methods=["GET"])
        app.add_api_route(f"{root}/products.json", self.create_product, methods=["POST"])
        app.add_api_route(f"{root}/products/count.json", self.count_products, methods=["GET"])
        app.add_api_route(f"{one}.json", self.get_product, methods=["GET"])
        app.add_api_route(f"{one}.json", self.update_product, methods=["PUT"])
        app.add_api_route(f"{one}.json", self.delete_product, methods=["DELETE"])
        app.add_api_route(f"{one}/variants.json", self.list_variants, methods=["GET"])
        app.add_api_route(f"{one}/variants.json", self.create_variant, methods=["POST"])
        app.add_api_route(root + "/variants/{variant_id:int}.json", self.get_variant, methods=["GET"])
        app.add_api_route(root + "/variants/{variant_id:int}.json", self.update_variant, methods=["PUT"])
        app.add_api_route(one + "/variants/{variant_id:int}.json", self.delete_variant, methods=["DELETE"])
        app.add_api_route(f"{one}/images.json", self.list_images, methods=["GET"])
        app.add_api_route(f"{one}/images.json", self.create_image, methods=["POST"])
        app.add_api_route(one + "/images/{image_id:int}.json", self.get_image, methods=["GET"])
        app.add_api_route(one + "/images/{image_id:int}.json", self.delete_image, methods=["DELETE"])
        add_catalog_read_routes(self, app)

    async def graphql_endpoint(self, request: Request) -> Response:
        return json_response(*self.graphql.execute(await self.read_json(request)))

    async def list_products(
        self, request: Request, limit: int = 50, page_info: str = "", ids: str = ""
    ) -> Response:
        limit = max(1, min(limit, 250))
        rows = sorted(self.store.products.values(), key=lambda p: p["id"])
        if ids:
            wanted = {int(i) for i in ids.split(",") if i.strip().isdigit()}
            rows = [p for p in rows if p["id"] in wanted]
        start = _cursor(page_info) if page_info else 0
        page = rows[start : start + limit]
        links = []
        base = str(request.url.replace(query=""))
        if start + limit < len(rows):
            links.append(f'<{base}?limit={limit}&page_info={_page_info(start + limit)}>; rel="next"')
        if start > 0:
            links.append(
                f'<{base}?limit={limit}&page_info={_page_info(max(0, start - limit))}>; rel="previous"'
            )
        headers = {"link": ", ".join(links)} if links else {}
        return json_response(200, {"products": [rest_view(p) for p in page]}, headers)

    async def count_products(self) -> Response:
        return json_response(200, {"count": len(self.store.products)})

    async def get_product(self, product_id: int) -> Response:
        return json_response(200, {"product": rest_view(self._product(product_id))})

    async def create_product(self, request: Request) -> Response:
        fields = self._envelope(await self.read_json(request), "product")
        now = iso(self.clock.now())
        product = self.store.new_product(now)
        self._write(product, fields, creating=True)
        self.store.products[product["id"]] = product
        self.store.wrote(product, now)
        return json_response(201, {"product": rest_view(product)})

    async def update_product(self, product_id: int, request: Request) -> Response:
        product = self._product(product_id)
        self._write(product, self._envelope(await self.read_json(request), "product"), creating=False)
        self.store.wrote(product, iso(self.clock.now()))
        return json_response(200, {"product": rest_view(product)})

    async def delete_product(self, product_id: int) -> Response:
        product = self._product(product_id)
        del self.store.products[product_id]
        self.store.wrote(product, iso(self.clock.now()))
        return json_response(200, {})

    async def list_variants(self, product_id: int) -> Response:
        return json_response(200, {"variants": rest_view(self._product(product_id))["variants"]})

    async def create_variant(self, product_id: int, request: Request) -> Response:
        product = self._product(product_id)
        fields = self._envelope(await self.read_json(request), "variant")
        values = self._variant_values(product, fields, fields)
        self._check_duplicate(product, values, None)
        variant = self.store.variant(product, values, **_variant_fields(fields))
        if product["variants"] and product["variants"][0]["title"] == "Default Title":
            product["variants"] = []
        product["variants"].append(variant)
        self._sync_options(product)
        self.store.wrote(product, iso(self.clock.now()))
        return json_response(201, {"variant": self._variant_view(variant)})

    async def get_variant(self, variant_id: int) -> Response:
        return json_response(200, {"variant": self._variant_view(self._variant(variant_id)[1])})

    async def update_variant(self, variant_id: int, request: Request) -> Response:
        product, variant = self._variant(variant_id)
        fields = self._envelope(await self.read_json(request), "variant")
        values = self._variant_values(product, fields, variant)
        self._check_duplicate(product, values, variant)
        variant.update(_variant_fields(fields), title=" / ".join(values))
        variant.update({f"option{n}": v for n, v in enumerate(values, 1)})
        self._sync_options(product)
        self.store.wrote(product, iso(self.clock.now()))
        return json_response(200, {"variant": self._variant_view(variant)})

    async def delete_variant(self, product_id: int, variant_id: int) -> Response:
        product = self._product(product_id)
        product["variants"] = [v for v in product["variants"] if v["id"] != variant_id]
        self.store.wrote(product, iso(self.clock.now()))
        return json_response(200, {})

    async def list_images(self, product_id: int) -> Response:
        return json_response(200, {"images": rest_view(self._product(product_id))["images"]})

    async def create_image(self, product_id: int, request: Request) -> Response:
        product = self._product(product_id)
        fields = self._envelope(await self.read_json(request), "image")
        if not is_url(fields.get("src")):
            raise self._invalid({"image": ["Image URL is invalid"]})
        if len(product["images"]) >= self.config.max_images:
            raise self._invalid({"images": [f"exceeds the maximum of {self.config.max_images}"]})
        image = self.store.image(product, fields["src"], len(product["images"]) + 1, fields.get("alt"))
        product["images"].append(image)
        self.store.wrote(product, iso(self.clock.now()))
        return json_response(200, {"image": rest_view(product)["images"][-1]})

    async def get_image(self, product_id: int, image_id: int) -> Response:
        images = rest_view(self._product(product_id))["images"]
        image = next((i for i in images if i["id"] == image_id), None)
        if image is None:
            raise Reply(self.error(404, "Not Found"))
        return json_response(200, {"image": image})

    async def delete_image(self, product_id: int, image_id: int) -> Response:
        product = self._product(product_id)
        product["images"] = [i for i in product["images"] if i["id"] != image_id]
        self.store.wrote(product, iso(self.clock.now()))
        return json_response(200, {})

    # -- helpers --------------------------------------------------------------------------------

    def _product(self, product_id: int) -> dict[str, Any]:
        if product_id not in self.store.products:
            raise Reply(self.error(404, "Not Found"))
        return self.store.products[product_id]

    def _variant(self, variant_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
        for product in self.store.products.values():
            for variant in product["variants"]:
                if variant["id"] == variant_id:
                    return product, variant
        raise Reply(self.error(404, "Not Found"))

    def _variant_view(self, variant: dict[str, Any]) -> dict[str, Any]:
        return {**variant, "admin_graphql_api_id": f"gid://shopify/ProductVariant/{variant['id']}"}

    def _envelope(self, body: Any, key: str) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get(key), dict):
            raise Reply(json_response(400, {"errors": {key: "Required parameter missing or invalid"}}))
        return body[key]  # type: ignore[no-any-return]

    def _write(self, product: dict[str, Any], fields: dict[str, Any], *, creating: bool) -> None:
        """Validate then apply a REST product body; lists sent (variants, images) replace the old ones."""
        errors: dict[str, list[str]] = {}
        if (creating or "title" in fields) and not (
            isinstance(fields.get("title"), str) and fields["title"].strip()
        ):
            errors["title"] = ["can't be blank"]
        variants, images = fields.get("variants"), fields.get("images")
        if variants is not None and not (
            isinstance(variants, list)
            and all(isinstance(v, dict) and money(v.get("price", "0")) for v in variants)
        ):
            errors["variants"] = ["price must be greater than or equal to 0"]
        if images is not None and not (
            isinstance(images, list) and all(is_url(i.get("src")) for i in images)
        ):
            errors["image"] = ["Image URL is invalid"]
        if errors:
            raise self._invalid(errors)
        for key in PRODUCT_SCALARS:
            if isinstance(fields.get(key), str):
                product[key] = fields[key]
        if fields.get("status") in ("active", "draft", "archived"):
            product["status"] = fields["status"]
        if creating and not product["handle"]:
            product["handle"] = handle_of(product["title"])
        if isinstance(fields.get("options"), list):
            product["options"] = [
                self.store.option(product, o["name"], n, list(o.get("values", [])))
                for n, o in enumerate(fields["options"][:MAX_OPTIONS], 1)
                if isinstance(o, dict) and isinstance(o.get("name"), str)
            ]
        if variants:
            old = {v["title"]: v["id"] for v in product["variants"]}
            product["variants"] = []
            for item in variants:
                values = self._variant_values(product, item, {})
                vid = item.get("id") or old.get(" / ".join(values))
                product["variants"].append(
                    self.store.variant(product, values, id=vid, **_variant_fields(item))
                )
            self._sync_options(product)
        elif creating:
            self.store.default_variant(product)
        if images is not None:
            product["images"] = [
                self.store.image(product, i["src"], n, i.get("alt")) for n, i in enumerate(images, 1)
            ]

    def _variant_values(
        self, product: dict[str, Any], fields: dict[str, Any], current: dict[str, Any]
    ) -> list[str]:
        count = max(1, len(product["options"]))
        values = [fields.get(f"option{n}", current.get(f"option{n}")) for n in range(1, count + 1)]
        return [str(v) if v is not None else "Default Title" for v in values]

    def _check_duplicate(
        self, product: dict[str, Any], values: list[str], variant: dict[str, Any] | None
    ) -> None:
        title = " / ".join(values)
        if any(v["title"] == title and v is not variant for v in product["variants"]):
            raise self._invalid({"base": [f"The variant '{title}' already exists."]})

    def _sync_options(self, product: dict[str, Any]) -> None:
        """Option value lists follow the variants, as Shopify derives them."""
        names = [o["name"] for o in product["options"]] or ["Title"]
        product["options"] = [
            self.store.option(
                product, name, n, list(dict.fromkeys(v[f"option{n}"] for v in product["variants"]))
            )
            for n, name in enumerate(names, 1)
        ]


def create_app(config: ShopifyConfig | None = None, *, clock: Clock | None = None) -> FastAPI:
    return ShopifySandbox(config, clock=clock).app


def _variant_fields(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "price" in fields:
        price = money(fields["price"])
        if price is None:
            raise Reply(json_response(422, {"errors": {"price": ["must be greater than or equal to 0"]}}))
        out["price"] = price
    for key in ("sku", "barcode"):
        if key in fields:
            out[key] = fields[key]
    return out


def _page_info(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _cursor(page_info: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(page_info + "=" * (-len(page_info) % 4)).decode()
        return max(0, int(raw.removeprefix("offset:")))
    except ValueError as e:
        raise Reply(json_response(400, {"errors": {"page_info": "Invalid value."}})) from e
