"""eBay Sell Inventory API v1 simulator: inventory items, item groups, offers, publishing, locations.

Reproduces `../shared/marketplace-apis.md` section 4: OAuth bearer tokens
(401 errorId 1001 invalid, 1002 missing), the common `{"errors": [...]}` body
with `errorId` / `domain` / `category` / `message` / `longMessage`,
`PUT /inventory_item/{sku}` answering 201 on create and 204 on replace, SKU
rule errorId 25707, bulk calls capped at 25 (errorId 25727, 207 on mixed
results), page-number `offset` listings with `href`/`next`/`prev`/`size`/`total`,
offers that publish into listings, and the daily call quota answering 429
errorId 2001. eBay sends no rate-limit headers; the quota is readable, as on
eBay, from the Developer Analytics `rate_limit` / `user_rate_limit` resources
(one quota here, so both report it).

Assumptions where the facts are silent (in `EbayConfig` where they vary):
- `daily_quota` 25,000 (the figure the call-limits page shows for other Sell
  APIs) in a window aligned to midnight UTC;
- a missing `Content-Language` on a write with a body is 400 errorId 25709;
- a missing scope is 403 errorId 1100 "Access denied";
- publish problems are 400 errorId 25002 (one per missing field), 25003 for
  a price; a second offer for the same SKU/marketplace/format is 25002
  "Offer entity already exists."; getOffers with no match is an empty page;
- titles are limited to 80 characters and a listing needs an image (`require_image`).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response

from conveyor import Clock

from .base import Gate, Reply, Sandbox, iso, json_response
from .ebay_offers import EbayOffers, ebay_error
from .faults import FaultConfig
from .limits import FixedWindow

ROOT = "/sell/inventory/v1"
RATE_LIMIT_PATH = "/developer/analytics/v1_beta/rate_limit/"
USER_RATE_LIMIT_PATH = "/developer/analytics/v1_beta/user_rate_limit/"
SELL_INVENTORY = "https://api.ebay.com/oauth/api_scope/sell.inventory"
SKU_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,50}")
MAX_BULK = 25


@dataclass(frozen=True)
class EbayConfig:
    access_token: str = "v^1.1#i^1#sandbox-user-token"
    scopes: frozenset[str] = frozenset({SELL_INVENTORY})
    daily_quota: int = 25_000
    quota_window: float = 86_400.0
    require_image: bool = True
    locations: frozenset[str] = frozenset({"default"})
    """Merchant location keys that exist before any `POST /location/{key}`."""
    faults: FaultConfig = field(default_factory=FaultConfig)


@dataclass
class EbayStore:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    offers: dict[str, dict[str, Any]] = field(default_factory=dict)
    listings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Published listings by listingId: `skus`, `offerIds`, `groupKey`, `publishCount`."""
    locations: set[str] = field(default_factory=set)
    writes: dict[str, int] = field(default_factory=dict)
    """Successful writes per SKU or group key (item PUT/DELETE, offer create/update, publish)."""

    def wrote(self, key: str) -> None:
        self.writes[key] = self.writes.get(key, 0) + 1


class EbaySandbox(Sandbox):
    name = "ebay"
    exempt = frozenset({f"GET {RATE_LIMIT_PATH}", f"GET {USER_RATE_LIMIT_PATH}"})

    def __init__(self, config: EbayConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or EbayConfig()
        self.store = EbayStore(locations=set(self.config.locations))
        self.ids = itertools.count(1)
        self.offers = EbayOffers(self)
        super().__init__(self.config.faults, clock)
        self.quota = FixedWindow(self.config.daily_quota, self.config.quota_window, self.clock)

    # -- gate -----------------------------------------------------------------------------------

    def admit(self, request: Request, endpoint: str) -> Gate:
        header = request.headers.get("authorization", "")
        token = header[7:] if header[:7].lower() == "bearer " else ""
        if not token:
            long = "Access token is missing in the Authorization HTTP request header."
            return Gate(
                self.fail(401, ebay_error(1002, "Missing access token", domain="OAuth", longMessage=long))
            )
        if token != self.config.access_token:
            long = "Invalid access token. Check the value of the Authorization HTTP request header."
            return Gate(
                self.fail(401, ebay_error(1001, "Invalid access token", domain="OAuth", longMessage=long))
            )
        if endpoint in self.exempt:
            return Gate()
        if SELL_INVENTORY not in self.config.scopes:
            long = "Insufficient permissions to fulfill the request."
            return Gate(self.fail(403, ebay_error(1100, "Access denied", domain="ACCESS", longMessage=long)))
        if not self.quota.try_take():
            self.counters.violations += 1
            return Gate(self.throttled(endpoint))
        return Gate()

    def throttled(self, endpoint: str) -> Response:
        self.counters.rate_limited += 1
        long = "The request limit has been reached for the resource."
        return self.fail(429, ebay_error(2001, "Too many requests.", domain="ACCESS", longMessage=long))

    def error(self, status: int, message: str) -> Response:
        if status >= 500:
            return self.fail(
                status, ebay_error(25001, "A system error has occurred.", category="APPLICATION")
            )
        if status == 404:
            return self.fail(404, ebay_error(25710, "We didn't find the resource/entity you are requesting."))
        return self.fail(status, ebay_error(25709, f"Invalid value for a field. {message}"))

    def fail(self, status: int, *errors: dict[str, Any]) -> Response:
        return json_response(status, {"errors": list(errors)})

    def invalid(self, *errors: dict[str, Any]) -> Reply:
        return Reply(self.fail(400, *errors))

    def require_language(self, request: Request) -> None:
        if not request.headers.get("content-language"):
            raise self.invalid(ebay_error(25709, "Invalid value for header Content-Language."))

    # -- routes ---------------------------------------------------------------------------------

    def routes(self, app: FastAPI) -> None:
        app.add_api_route(RATE_LIMIT_PATH, self.rate_limit, methods=["GET"])
        app.add_api_route(USER_RATE_LIMIT_PATH, self.rate_limit, methods=["GET"])
        app.add_api_route(f"{ROOT}/inventory_item", self.list_items, methods=["GET"])
        app.add_api_route(ROOT + "/inventory_item/{sku}", self.put_item, methods=["PUT"])
        app.add_api_route(ROOT + "/inventory_item/{sku}", self.get_item, methods=["GET"])
        app.add_api_route(ROOT + "/inventory_item/{sku}", self.delete_item, methods=["DELETE"])
        app.add_api_route(f"{ROOT}/bulk_create_or_replace_inventory_item", self.bulk_put, methods=["POST"])
        app.add_api_route(ROOT + "/inventory_item_group/{key}", self.put_group, methods=["PUT"])
        app.add_api_route(ROOT + "/inventory_item_group/{key}", self.get_group, methods=["GET"])
        app.add_api_route(ROOT + "/location/{key}", self.create_location, methods=["POST"])
        self.offers.routes(app, ROOT)

    async def rate_limit(self) -> Response:
        window = self.quota
        rate = {
            "count": window.limit - window.remaining(),
            "limit": window.limit,
            "remaining": window.remaining(),
            "reset": iso(window.reset_at()),
            "timeWindow": int(window.seconds),
        }
        resource = {"name": "sell.inventory", "rates": [rate]}
        api = {"apiContext": "sell", "apiName": "Inventory", "apiVersion": "v1", "resources": [resource]}
        return json_response(200, {"rateLimits": [api]})

    async def list_items(self, request: Request, limit: int = 25, offset: int = 0) -> Response:
        if not 1 <= limit <= 200 or offset < 0:
            raise self.invalid(ebay_error(25709, "Invalid value for limit or offset."))
        skus = sorted(self.store.items)
        page = skus[offset * limit : (offset + 1) * limit]
        base = str(request.url.replace(query=""))
        body: dict[str, Any] = {
            "href": f"{base}?limit={limit}&offset={offset}",
            "limit": limit,
            "size": len(page),
            "total": len(skus),
            "inventoryItems": [{"sku": s, **self.store.items[s]} for s in page],
        }
        if (offset + 1) * limit < len(skus):
            body["next"] = f"{base}?limit={limit}&offset={offset + 1}"
        if offset > 0:
            body["prev"] = f"{base}?limit={limit}&offset={offset - 1}"
        return json_response(200, body)

    async def put_item(self, sku: str, request: Request) -> Response:
        self.require_language(request)
        body = await self.read_json(request)
        if errors := item_errors(sku, body):
            raise self.invalid(*errors)
        created = sku not in self.store.items
        self._save_item(sku, body, request.headers["content-language"])
        return Response(status_code=201 if created else 204)

    async def get_item(self, sku: str) -> Response:
        return json_response(200, {"sku": sku, **self.item(sku)})

    async def delete_item(self, sku: str) -> Response:
        self.item(sku)
        del self.store.items[sku]
        for offer_id in [o for o, offer in self.store.offers.items() if offer["sku"] == sku]:
            del self.store.offers[offer_id]
        self.store.wrote(sku)
        return Response(status_code=204)

    async def bulk_put(self, request: Request) -> Response:
        self.require_language(request)
        body = await self.read_json(request)
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list):
            raise self.invalid(ebay_error(25709, "Invalid value for requests."))
        if len(requests) > MAX_BULK:
            raise self.invalid(
                ebay_error(25727, f"The number of InventoryItems in the request cannot exceed {MAX_BULK}.")
            )
        responses = []
        for entry in requests:
            sku = entry.get("sku", "") if isinstance(entry, dict) else ""
            errors = item_errors(sku, entry)
            locale = entry.get("locale", "en_US") if isinstance(entry, dict) else "en_US"
            status = 400 if errors else (201 if sku not in self.store.items else 200)
            if not errors:
                self._save_item(sku, {k: v for k, v in entry.items() if k not in ("sku", "locale")}, locale)
            responses.append(
                {"sku": sku, "locale": locale, "statusCode": status, "errors": errors, "warnings": []}
            )
        mixed = any(r["statusCode"] == 400 for r in responses)
        return json_response(207 if mixed else 200, {"responses": responses})

    async def put_group(self, key: str, request: Request) -> Response:
        self.require_language(request)
        body = await self.read_json(request)
        problems = []
        if not isinstance(body, dict):
            raise self.invalid(ebay_error(25709, "Invalid value for the request body."))
        if not (isinstance(body.get("title"), str) and 0 < len(body["title"]) <= 80):
            problems.append(ebay_error(25709, "Invalid value for title. Titles are 1 to 80 characters."))
        skus = body.get("variantSKUs")
        if not (isinstance(skus, list) and skus and all(isinstance(s, str) for s in skus)):
            problems.append(ebay_error(25709, "Invalid value for variantSKUs."))
        if not isinstance((body.get("variesBy") or {}).get("specifications"), list):
            problems.append(ebay_error(25709, "Invalid value for variesBy.specifications."))
        if problems:
            raise self.invalid(*problems)
        created = key not in self.store.groups
        self.store.groups[key] = body
        self.store.wrote(key)
        return Response(status_code=201 if created else 204)

    async def get_group(self, key: str) -> Response:
        if key not in self.store.groups:
            raise Reply(self.error(404, "group"))
        return json_response(200, {"inventoryItemGroupKey": key, **self.store.groups[key]})

    async def create_location(self, key: str) -> Response:
        if key in self.store.locations:
            error = ebay_error(
                25803,
                "merchantLocationKey already exists.",
                parameters=[{"name": "fieldName", "value": "merchantLocationKey"}],
            )
            return self.fail(409, error)
        self.store.locations.add(key)
        return Response(status_code=204)

    # -- helpers --------------------------------------------------------------------------------

    def item(self, sku: str) -> dict[str, Any]:
        if sku not in self.store.items:
            raise Reply(self.error(404, sku))
        return self.store.items[sku]

    def _save_item(self, sku: str, body: dict[str, Any], locale: str) -> None:
        self.store.items[sku] = {**body, "locale": locale}
        self.store.wrote(sku)


def create_app(config: EbayConfig | None = None, *, clock: Clock | None = None) -> FastAPI:
    return EbaySandbox(config, clock=clock).app


def item_errors(sku: str, body: Any) -> list[dict[str, Any]]:
    """Validation of one inventory item, shared by the single and the bulk call."""
    if not SKU_PATTERN.fullmatch(sku):
        message = (
            "This is an invalid value for a SKU. Only alphanumeric characters can be used for SKUs, "
            "and their length must not exceed 50 characters"
        )
        return [ebay_error(25707, message)]
    if not isinstance(body, dict):
        return [ebay_error(25709, "Invalid value for the request body.")]
    errors = []
    quantity = ((body.get("availability") or {}).get("shipToLocationAvailability") or {}).get("quantity", 0)
    if not (isinstance(quantity, int) and quantity >= 0):
        errors.append(ebay_error(25004, "Invalid quantity"))
    product = body.get("product") or {}
    title = product.get("title")
    if title is not None and not (isinstance(title, str) and 0 < len(title) <= 80):
        errors.append(ebay_error(25709, "Invalid value for title. Titles are 1 to 80 characters."))
    images = product.get("imageUrls", [])
    if not (
        isinstance(images, list)
        and all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in images)
    ):
        errors.append(ebay_error(25709, "Invalid value for imageUrls."))
    return errors
