"""Jumpseller REST API v1 simulator: products, variants, images, options.

Reproduces `../shared/marketplace-apis.md` section 1: `.json` paths under
`/v1`, single-key envelopes, Basic `login:authtoken` or `?login=&authtoken=`,
per-second and per-minute windows with the four `Jumpseller-*RateLimit-*`
headers on every response, 429 when either window is empty, and the optional
ban (`Jumpseller-BannedByRateLimit-Reset`).

Assumptions where the facts say [not found] (all in `JumpsellerConfig`):
- validation errors answer `validation_status` (422; the spec shows the
  `{"errors": [...]}` body on a 400, the skill doc names 422);
- 401, 429 and 5xx bodies are `{"message": "..."}` like the documented 404;
- windows are fixed, aligned to whole seconds / minutes of the clock, and a
  refused request does not use up the window; no `Retry-After` is sent;
- the ban lasts `ban_seconds`; a create answers `create_status` (201).
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response

from conveyor import Clock

from .base import Gate, Reply, Sandbox, iso, json_response
from .faults import FaultConfig
from .limits import FixedWindow

PRODUCT_FIELDS = frozenset(
    {"name", "price", "description", "page_title", "meta_description", "type", "weight", "stock"}
    | {"stock_unlimited", "cost_per_item", "compare_at_price", "sku", "barcode", "featured", "status"}
    | {"categories", "brand", "minimum_quantity", "maximum_quantity", "shipping_required"}
)
VARIANT_FIELDS = frozenset({"price", "sku", "barcode", "stock", "stock_unlimited", "image_id", "options"})
STATUSES = ("available", "unavailable")


@dataclass(frozen=True)
class JumpsellerConfig:
    login: str = "sandbox-store"
    authtoken: str = "0123456789abcdef0123456789abcdef"
    per_second: int = 20
    per_minute: int = 800
    ban_after: int | None = None
    """Rate-limit hits before a temporary ban (2000 on the real API); None disables bans."""
    ban_seconds: float = 600.0
    validation_status: int = 422
    create_status: int = 201
    unauthorized_message: str = "Invalid login or authtoken"
    faults: FaultConfig = field(default_factory=FaultConfig)


@dataclass
class JumpsellerStore:
    """Everything the store holds, readable by tests; ids are dict keys."""

    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    options: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    writes: dict[int, int] = field(default_factory=dict)
    """Successful write requests per product id (product, variant, image, option writes)."""
    created: Counter[str] = field(default_factory=Counter)
    """Products created per SKU: above 1 means the same product was created twice."""
    last_id: int = 1000

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def with_sku(self, sku: str) -> list[dict[str, Any]]:
        return [p for p in self.products.values() if p.get("sku") == sku]


class JumpsellerSandbox(Sandbox):
    name = "jumpseller"
    api_root = "/v1"

    def __init__(self, config: JumpsellerConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or JumpsellerConfig()
        self.store = JumpsellerStore()
        super().__init__(self.config.faults, clock)
        self._second = FixedWindow(self.config.per_second, 1.0, self.clock)
        self._minute = FixedWindow(self.config.per_minute, 60.0, self.clock)
        self._hits = 0
        self._banned_until = 0.0

    @property
    def windows_exhausted(self) -> int:
        """Per-second and per-minute windows that ran out (the moments a limiter's slack can show)."""
        return self._second.exhausted + self._minute.exhausted

    # -- gate -----------------------------------------------------------------------------------

    def admit(self, request: Request, endpoint: str) -> Gate:
        if self._banned_until > self.clock.now():
            self.counters.violations += 1
            return Gate(self.throttled(endpoint), self._limit_headers())
        if self._second.remaining() > 0 and self._minute.remaining() > 0:
            self._second.try_take()
            self._minute.try_take()
        else:
            self.counters.violations += 1
            self._hits += 1
            if self.config.ban_after is not None and self._hits >= self.config.ban_after:
                self._banned_until = self.clock.now() + self.config.ban_seconds
            return Gate(self.throttled(endpoint), self._limit_headers())
        if not self._authenticated(request):
            return Gate(self.error(401, self.config.unauthorized_message), self._limit_headers())
        return Gate(None, self._limit_headers())

    def _limit_headers(self) -> dict[str, str]:
        return {
            "Jumpseller-PerMinuteRateLimit-Limit": str(self.config.per_minute),
            "Jumpseller-PerMinuteRateLimit-Remaining": str(self._minute.remaining()),
            "Jumpseller-PerSecondRateLimit-Limit": str(self.config.per_second),
            "Jumpseller-PerSecondRateLimit-Remaining": str(self._second.remaining()),
        }

    def _authenticated(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header[:6].lower() == "basic ":
            try:
                login, _, token = base64.b64decode(header[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
        else:
            login = request.query_params.get("login", "")
            token = request.query_params.get("authtoken", "")
        return login == self.config.login and token == self.config.authtoken

    def throttled(self, endpoint: str) -> Response:
        self.counters.rate_limited += 1
        headers = {}
        if self._banned_until > self.clock.now():
            headers["Jumpseller-BannedByRateLimit-Reset"] = iso(self._banned_until)
        return json_response(429, {"message": "Rate Limit Exceeded"}, headers)

    def error(self, status: int, message: str) -> Response:
        return json_response(status, {"message": message})

    def _invalid(self, errors: list[str]) -> Reply:
        return Reply(json_response(self.config.validation_status, {"errors": errors}))

    # -- routes ---------------------------------------------------------------------------------

    def routes(self, app: FastAPI) -> None:
        p = "/v1/products"
        app.add_api_route(f"{p}.json", self.list_products, methods=["GET"])
        app.add_api_route(f"{p}.json", self.create_product, methods=["POST"])
        app.add_api_route(f"{p}/count.json", self.count_products, methods=["GET"])
        app.add_api_route(f"{p}/search.json", self.search_products, methods=["GET"])
        one = p + "/{product_id:int}"
        app.add_api_route(f"{one}.json", self.get_product, methods=["GET"])
        app.add_api_route(f"{one}.json", self.update_product, methods=["PUT"])
        app.add_api_route(f"{one}.json", self.delete_product, methods=["DELETE"])
        for kind in ("variants", "images", "options"):
            app.add_api_route(f"{one}/{kind}.json", self.list_children, methods=["GET"])
            app.add_api_route(f"{one}/{kind}/count.json", self.count_children, methods=["GET"])
            child = f"{one}/{kind}/{{child_id:int}}.json"
            app.add_api_route(child, self.get_child, methods=["GET"])
            app.add_api_route(child, self.delete_child, methods=["DELETE"])
        app.add_api_route(f"{one}/variants.json", self.create_variant, methods=["POST"])
        app.add_api_route(f"{one}/variants/{{child_id:int}}.json", self.update_variant, methods=["PUT"])
        app.add_api_route(f"{one}/images.json", self.create_image, methods=["POST"])
        app.add_api_route(f"{one}/options.json", self.create_option, methods=["POST"])
        values = f"{one}/options/{{child_id:int}}/values.json"
        app.add_api_route(values, self.list_values, methods=["GET"])
        app.add_api_route(values, self.create_value, methods=["POST"])

    async def list_products(self, page: int = 1, limit: int = 50) -> Response:
        limit = max(1, min(limit, 100))
        rows = sorted(self.store.products.values(), key=lambda p: p["id"])
        start = (max(page, 1) - 1) * limit
        return json_response(200, [{"product": p} for p in rows[start : start + limit]])

    async def count_products(self) -> Response:
        return json_response(200, {"count": len(self.store.products)})

    async def search_products(self, query: str = "") -> Response:
        q = query.lower()
        found = [p for p in self.store.products.values() if q in f"{p['name']} {p.get('sku', '')}".lower()]
        return json_response(200, [{"product": p} for p in found])

    async def get_product(self, product_id: int) -> Response:
        return json_response(200, {"product": self._product(product_id)})

    async def create_product(self, request: Request) -> Response:
        fields = self._envelope(await self.read_json(request), "product")
        errors = _product_errors(fields, creating=True)
        inline = fields.get("variants") or []
        if not isinstance(inline, list) or not all(isinstance(v, dict) for v in inline):
            errors.append("Variants is invalid")
        if errors:
            raise self._invalid(errors)
        now = iso(self.clock.now())
        pid = self.store.next_id()
        product: dict[str, Any] = {"id": pid, "status": "available", "stock": 0, "description": ""}
        product.update({k: v for k, v in fields.items() if k in PRODUCT_FIELDS})
        product.update(created_at=now, updated_at=now, permalink=f"product-{pid}", images=[], variants=[])
        self.store.products[pid] = product
        self.store.created[str(product.get("sku") or "")] += 1
        self.store.options[pid] = []
        for variant in inline:
            self._save_variant(product, {}, variant)
        self._wrote(pid)
        return json_response(self.config.create_status, {"product": product})

    async def update_product(self, product_id: int, request: Request) -> Response:
        product = self._product(product_id)
        fields = self._envelope(await self.read_json(request), "product")
        if errors := _product_errors(fields, creating=False):
            raise self._invalid(errors)
        product.update({k: v for k, v in fields.items() if k in PRODUCT_FIELDS})
        self._wrote(product_id)
        return json_response(200, {"product": product})

    async def delete_product(self, product_id: int) -> Response:
        self._product(product_id)
        del self.store.products[product_id]
        self._wrote(product_id)
        return json_response(200, {"message": "Product deleted"})

    async def list_children(
        self, product_id: int, request: Request, page: int = 1, limit: int = 50
    ) -> Response:
        kind = _kind(request)
        limit = max(1, min(limit, 100))
        start = (max(page, 1) - 1) * limit
        rows = self._children(product_id, request)[start : start + limit]
        return json_response(200, [{kind: c} for c in rows])

    async def count_children(self, product_id: int, request: Request) -> Response:
        return json_response(200, {"count": len(self._children(product_id, request))})

    async def get_child(self, product_id: int, child_id: int, request: Request) -> Response:
        return json_response(200, {_kind(request): self._child(product_id, child_id, request)})

    async def delete_child(self, product_id: int, child_id: int, request: Request) -> Response:
        child = self._child(product_id, child_id, request)
        self._children(product_id, request).remove(child)
        self._wrote(product_id)
        return json_response(200, {"message": f"{_kind(request).capitalize()} deleted"})

    async def create_variant(self, product_id: int, request: Request) -> Response:
        product = self._product(product_id)
        fields = self._envelope(await self.read_json(request), "variant")
        variant = self._save_variant(product, {}, fields)
        self._wrote(product_id)
        return json_response(self.config.create_status, {"variant": variant})

    async def update_variant(self, product_id: int, child_id: int, request: Request) -> Response:
        product = self._product(product_id)
        variant = self._child(product_id, child_id, request)
        fields = self._envelope(await self.read_json(request), "variant")
        self._save_variant(product, variant, fields)
        self._wrote(product_id)
        return json_response(200, {"variant": variant})

    async def create_image(self, product_id: int, request: Request) -> Response:
        product = self._product(product_id)
        fields = self._envelope(await self.read_json(request), "image")
        url = fields.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise self._invalid(["Url is invalid"])
        position = fields.get("position", len(product["images"]) + 1)
        if not isinstance(position, int) or position < 1:
            raise self._invalid(["Position must be greater than 0"])
        image = {"id": self.store.next_id(), "position": position, "url": url}
        product["images"].append(image)
        self._wrote(product_id)
        return json_response(self.config.create_status, {"image": image})

    async def create_option(self, product_id: int, request: Request) -> Response:
        self._product(product_id)
        fields = self._envelope(await self.read_json(request), "option")
        if not isinstance(fields.get("name"), str) or not fields["name"]:
            raise self._invalid(["Name can't be blank"])
        option = self._option(product_id, fields["name"], fields.get("option_type", "option"))
        self._wrote(product_id)
        return json_response(self.config.create_status, {"option": option})

    async def list_values(self, product_id: int, child_id: int, request: Request) -> Response:
        return json_response(
            200, [{"value": v} for v in self._child(product_id, child_id, request)["values"]]
        )

    async def create_value(self, product_id: int, child_id: int, request: Request) -> Response:
        option = self._child(product_id, child_id, request)
        fields = self._envelope(await self.read_json(request), "value")
        if not isinstance(fields.get("name"), str) or not fields["name"]:
            raise self._invalid(["Name can't be blank"])
        value = self._value(option, fields["name"], fields.get("custom"))
        self._wrote(product_id)
        return json_response(self.config.create_status, {"value": value})

    # -- state helpers --------------------------------------------------------------------------

    def _product(self, product_id: int) -> dict[str, Any]:
        if product_id not in self.store.products:
            raise Reply(self.error(404, "Product not found"))
        return self.store.products[product_id]

    def _children(self, product_id: int, request: Request) -> list[dict[str, Any]]:
        product = self._product(product_id)
        kind = _kind(request)
        if kind == "option":
            return self.store.options[product_id]
        children: list[dict[str, Any]] = product[f"{kind}s"]
        return children

    def _child(self, product_id: int, child_id: int, request: Request) -> dict[str, Any]:
        for child in self._children(product_id, request):
            if child["id"] == child_id:
                return child
        raise Reply(self.error(404, f"{_kind(request).capitalize()} not found"))

    def _envelope(self, body: Any, key: str) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get(key), dict):
            raise self._invalid([f"Missing '{key}' object in request body"])
        return body[key]  # type: ignore[no-any-return]

    def _save_variant(
        self, product: dict[str, Any], variant: dict[str, Any], fields: dict[str, Any]
    ) -> dict[str, Any]:
        errors = _variant_errors(fields)
        if errors:
            raise self._invalid(errors)
        if not variant:
            variant.update(id=self.store.next_id(), price=product["price"], stock=0, options=[], image=None)
            product["variants"].append(variant)
        variant.update({k: v for k, v in fields.items() if k in VARIANT_FIELDS})
        for item in variant["options"]:
            option = self._option(product["id"], item["name"], item.get("option_type", "option"))
            value = self._value(option, item["value"], item.get("custom"))
            item.update(product_option_id=option["id"], product_value_id=value["id"])
        return variant

    def _option(self, product_id: int, name: str, option_type: str) -> dict[str, Any]:
        options = self.store.options[product_id]
        option = _named(options, name)
        if option is None:
            option = {"id": self.store.next_id(), "name": name, "position": len(options) + 1}
            option.update(option_type=option_type, values=[])
            options.append(option)
        return option

    def _value(self, option: dict[str, Any], name: str, custom: Any) -> dict[str, Any]:
        value = _named(option["values"], name)
        if value is None:
            value = {"id": self.store.next_id(), "name": name, "position": len(option["values"]) + 1}
            value["custom"] = custom
            option["values"].append(value)
        return value

    def _wrote(self, product_id: int) -> None:
        self.store.writes[product_id] = self.store.writes.get(product_id, 0) + 1
        if product_id in self.store.products:
            self.store.products[product_id]["updated_at"] = iso(self.clock.now())


def create_app(config: JumpsellerConfig | None = None, *, clock: Clock | None = None) -> FastAPI:
    return JumpsellerSandbox(config, clock=clock).app


def _kind(request: Request) -> str:
    """`variant`, `image` or `option`, from the path segment after the product id."""
    return str(request.url.path.split("/")[4]).removesuffix(".json")[:-1]


def _named(items: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((item for item in items if item["name"] == name), None)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _product_errors(fields: dict[str, Any], *, creating: bool) -> list[str]:
    errors = []
    if (creating or "name" in fields) and not (
        isinstance(fields.get("name"), str) and fields["name"].strip()
    ):
        errors.append("Name can't be blank")
    if creating or "price" in fields:
        price = fields.get("price")
        if price is None:
            errors.append("Price can't be blank")
        elif not _is_number(price):
            errors.append("Price is not a number")
        elif price < 0:
            errors.append("Price must be greater than or equal to 0")
    if "stock" in fields and not (isinstance(fields["stock"], int) and fields["stock"] >= 0):
        errors.append("Stock must be greater than or equal to 0")
    if "status" in fields and fields["status"] not in STATUSES:
        errors.append("Status is not included in the list")
    return errors


def _variant_errors(fields: dict[str, Any]) -> list[str]:
    errors = []
    if "price" in fields and not (_is_number(fields["price"]) and fields["price"] >= 0):
        errors.append("Price must be greater than or equal to 0")
    if "stock" in fields and not (isinstance(fields["stock"], int) and fields["stock"] >= 0):
        errors.append("Stock must be greater than or equal to 0")
    options = fields.get("options", [])
    valid = isinstance(options, list) and all(
        isinstance(o, dict) and isinstance(o.get("name"), str) and isinstance(o.get("value"), str)
        for o in options
    )
    if not valid:
        errors.append("Options is invalid")
    return errors
