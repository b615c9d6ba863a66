"""Amazon SP-API Orders (v0) and FBA Inventory (v1) simulator: one instance per regional endpoint.

Paths, parameters and body shapes follow `amzn/selling-partner-api-models`
(`models/orders-api-model/ordersV0.json`, `models/fba-inventory-api-model/
fbaInventory.json`); auth, errors and rate-limit headers follow
`../shared/marketplace-apis.md` sections 3 and 7:

- `GET /orders/v0/orders` (getOrders, rate 0.0167/s burst 20): `MarketplaceIds`
  required, `CreatedAfter` required unless `NextToken` is given,
  `MaxResultsPerPage` 1-100 (default 100); answer `{"payload": {"Orders",
  "NextToken", "CreatedBefore"}}`.
- `GET /orders/v0/orders/{orderId}/orderItems` (getOrderItems, 0.5/s burst 30):
  `{"payload": {"AmazonOrderId", "OrderItems"}}`; `ItemPrice` is the unit
  price times `QuantityOrdered`, as in the real API.
- `GET /fba/inventory/v1/summaries` (getInventorySummaries, 2/s burst 2):
  `granularityType=Marketplace`, `granularityId`, `marketplaceIds` (one);
  answer `{"pagination": {"nextToken"}, "payload": {"granularity",
  "inventorySummaries"}}`.
- `x-amz-access-token` from the LWA endpoint `POST /auth/o2/token`; a missing,
  unknown or expired token is 403 `Unauthorized`; per seller and operation
  token buckets, 429 `QuotaExceeded` without rate header; the header
  `x-amzn-RateLimit-Limit` on 20x/400/404 only; `x-amzn-RequestId` always.

Assumptions where the facts are silent: a marketplace of another region is
400 `InvalidInput`; an unknown `NextToken` is 400; inventory pages hold 50
summaries; order items are not paginated; one `LwaAuthority` may be shared by
the three regional simulators, the way one LWA host serves every region.

Data is generated per (seller, marketplace) from `SellerApiConfig.seed`, so
the same seed always serves the same orders and stock. What was actually
served is kept in `served`, for tests that recompute figures from it.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request, Response

from conveyor import Clock, SystemClock

from .base import Gate, Reply, iso, json_response
from .faults import FaultConfig
from .limits import TokenBucket
from .lwa import TOKEN_PATH, LwaAuthority
from .sp_api import SpApiSandbox

Region = Literal["NA", "EU", "FE"]
ORDERS = "/orders/v0/orders"
INVENTORY = "/fba/inventory/v1/summaries"
OPERATIONS = {
    f"GET {ORDERS}": "getOrders",
    f"GET {ORDERS}/{{order_id}}/orderItems": "getOrderItems",
    f"GET {INVENTORY}": "getInventorySummaries",
}
DEFAULT_RATES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {"getOrders": (0.0167, 20.0), "getOrderItems": (0.5, 30.0), "getInventorySummaries": (2.0, 2.0)}
)
MARKETPLACES: Mapping[Region, Mapping[str, str]] = MappingProxyType(
    {
        "NA": {"CA": "A2EUQ1WTGCTBG2", "US": "ATVPDKIKX0DER", "MX": "A1AM78C64UM0Y8", "BR": "A2Q3Y263D00KWC"},
        "EU": {
            "ES": "A1RKKUPIHCS9HS",
            "GB": "A1F83G8C2ARO7P",
            "FR": "A13V1IB3VIYZZH",
            "NL": "A1805IZSGTT6HS",
            "DE": "A1PA6795UKMFR9",
            "IT": "APJ6JRA9NG5V4",
            "SE": "A2NODRKZP88ZB9",
            "PL": "A1C3SOZRARQ6R3",
            "TR": "A33AVAJ2PDY3EV",
            "AE": "A2VIGQ35RCS4UG",
            "IN": "A21TJRUUN4KGV",
        },
        "FE": {"SG": "A19VAU5U5O7RUS", "AU": "A39IBJ37TRP1C6", "JP": "A1VC38T7YXB528"},
    }
)
"""Country code -> marketplaceId per region (the developer guide's 2021 table)."""
CURRENCIES = MappingProxyType(
    {"US": "USD", "CA": "CAD", "MX": "MXN", "BR": "BRL", "GB": "GBP", "JP": "JPY", "AU": "AUD", "SG": "SGD"}
    | {"SE": "SEK", "PL": "PLN", "TR": "TRY", "AE": "AED", "IN": "INR"}
)
ORDER_STATUSES = ("Shipped", "Shipped", "Shipped", "Unshipped", "Canceled")
DAY = 86400.0
MarketplaceIdsQuery = Annotated[str, Query(alias="MarketplaceIds")]


def currency_of(marketplace_id: str) -> str:
    for markets in MARKETPLACES.values():
        for country, market in markets.items():
            if market == marketplace_id:
                return CURRENCIES.get(country, "EUR")
    return "USD"


@dataclass(frozen=True)
class SellerApiConfig:
    region: Region = "NA"
    seed: int = 0
    rates: Mapping[str, tuple[float, float]] = field(default_factory=lambda: DEFAULT_RATES)
    """operationId -> (rate per second, burst), per seller."""
    orders_per_marketplace: tuple[int, int] = (4, 10)
    skus_per_marketplace: tuple[int, int] = (3, 6)
    history_days: int = 45
    """Orders are spread over this many days before the simulator started."""
    inventory_page_size: int = 50
    faults: FaultConfig = field(default_factory=FaultConfig)


@dataclass
class Served:
    """Everything the simulator answered with, by seller and marketplace, for tests to recompute from."""

    orders: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    """(seller, marketplace) -> AmazonOrderId -> order, for every order a getOrders page carried."""
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """AmazonOrderId -> the OrderItems getOrderItems returned."""
    inventory: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    """(seller, marketplace) -> sellerSku -> summary, for every summary a page carried."""


@dataclass(frozen=True)
class _Page:
    seller: str
    marketplace: str
    query: str
    """CreatedAfter for orders, `inventory` for inventory pages."""
    offset: int
    size: int


@dataclass(frozen=True)
class _Market:
    orders: list[dict[str, Any]]
    items: dict[str, list[dict[str, Any]]]
    inventory: list[dict[str, Any]]


class SellerApiSandbox(SpApiSandbox):
    name = "seller_api"
    exempt = frozenset({f"POST {TOKEN_PATH}"})

    def __init__(
        self,
        config: SellerApiConfig | None = None,
        *,
        lwa: LwaAuthority | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config or SellerApiConfig()
        self.lwa = lwa or LwaAuthority()
        self.served = Served()
        self._ids = itertools.count(1)
        self._markets: dict[tuple[str, str], _Market] = {}
        self._pages: dict[str, _Page] = {}
        """Issued NextTokens: the query they continue (a token replaces the other criteria)."""
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        clock = clock or SystemClock()
        self.started_at = clock.now()
        super().__init__(self.config.faults, clock)

    @property
    def marketplaces(self) -> Mapping[str, str]:
        """This region's marketplaces, country code -> marketplaceId."""
        return MARKETPLACES[self.config.region]

    # -- gate -----------------------------------------------------------------------------------

    def admit(self, request: Request, endpoint: str) -> Gate:
        operation = OPERATIONS.get(endpoint)
        if operation is None:
            return Gate()
        seller, refusal = self.lwa.seller_of(request.headers.get("x-amz-access-token"), self.clock.now())
        if seller is None:
            return Gate(self.denied(refusal))
        request.state.seller = seller
        bucket = self._bucket(seller, operation)
        if not bucket.try_take():
            self.counters.violations += 1
            return Gate(self.throttled(endpoint))
        return Gate(None, {"x-amzn-RateLimit-Limit": f"{bucket.rate:g}"})

    def _bucket(self, seller: str, operation: str) -> TokenBucket:
        key = (seller, operation)
        if key not in self._buckets:
            rate, burst = self.config.rates[operation]
            self._buckets[key] = TokenBucket(burst, rate, self.clock)
        return self._buckets[key]

    def _bad(self, message: str) -> Reply:
        return Reply(self.error(400, message))

    # -- routes ---------------------------------------------------------------------------------

    def routes(self, app: FastAPI) -> None:
        app.add_api_route(TOKEN_PATH, self.token, methods=["POST"])
        app.add_api_route(ORDERS, self.get_orders, methods=["GET"])
        app.add_api_route(ORDERS + "/{order_id}/orderItems", self.get_order_items, methods=["GET"])
        app.add_api_route(INVENTORY, self.get_inventory_summaries, methods=["GET"])

    async def token(self, request: Request) -> Response:
        label = f"sandbox-{self.config.region}"
        return self.lwa.exchange(await request.body(), self.clock.now(), label=label)

    async def get_orders(
        self,
        request: Request,
        marketplace_ids: MarketplaceIdsQuery = "",
        created_after: Annotated[str, Query(alias="CreatedAfter")] = "",
        max_results: Annotated[int, Query(alias="MaxResultsPerPage")] = 100,
        next_token: Annotated[str, Query(alias="NextToken")] = "",
    ) -> Response:
        seller: str = request.state.seller
        if next_token:
            page = self._page(next_token, seller)
        else:
            markets = self._markets_of(marketplace_ids, at_most=50)
            if not created_after:
                raise self._bad("Either CreatedAfter or LastUpdatedAfter must be specified.")
            if not 1 <= max_results <= 100:
                raise self._bad("MaxResultsPerPage must be between 1 and 100.")
            page = _Page(seller, markets[0], created_after, 0, max_results)
        since = _parse_time(page.query)
        if since is None:
            raise self._bad(f"CreatedAfter {page.query!r} is not an ISO 8601 date.")
        matching = [
            o for o in self._market(seller, page.marketplace).orders if o["PurchaseDate"] >= iso(since)
        ]
        orders = matching[page.offset : page.offset + page.size]
        served = self.served.orders.setdefault((seller, page.marketplace), {})
        served.update({o["AmazonOrderId"]: o for o in orders})
        payload: dict[str, Any] = {"Orders": orders, "CreatedBefore": iso(self.clock.now() - 120)}
        if page.offset + page.size < len(matching):
            payload["NextToken"] = self._issue(page)
        return json_response(200, {"payload": payload})

    async def get_order_items(self, request: Request, order_id: str) -> Response:
        seller: str = request.state.seller
        for (owner, _), market in self._markets.items():
            if owner == seller and order_id in market.items:
                items = market.items[order_id]
                self.served.items[order_id] = items
                return json_response(200, {"payload": {"AmazonOrderId": order_id, "OrderItems": items}})
        raise Reply(self.error(404, f"Order {order_id} was not found."))

    async def get_inventory_summaries(
        self,
        request: Request,
        granularity_type: Annotated[str, Query(alias="granularityType")] = "",
        granularity_id: Annotated[str, Query(alias="granularityId")] = "",
        marketplace_ids: Annotated[str, Query(alias="marketplaceIds")] = "",
        next_token: Annotated[str, Query(alias="nextToken")] = "",
    ) -> Response:
        seller: str = request.state.seller
        if granularity_type != "Marketplace":
            raise self._bad("granularityType must be Marketplace.")
        (market,) = self._markets_of(marketplace_ids, at_most=1)
        if granularity_id != market:
            raise self._bad("granularityId must be the requested marketplaceId.")
        page = _Page(seller, market, "inventory", 0, self.config.inventory_page_size)
        if next_token:
            page = self._page(next_token, seller)
            if (page.marketplace, page.query) != (market, "inventory"):
                raise self._bad("nextToken belongs to another query.")
        summaries = self._market(seller, market).inventory
        chosen = summaries[page.offset : page.offset + page.size]
        self.served.inventory.setdefault((seller, market), {}).update({s["sellerSku"]: s for s in chosen})
        body: dict[str, Any] = {
            "payload": {
                "granularity": {"granularityType": "Marketplace", "granularityId": market},
                "inventorySummaries": chosen,
            }
        }
        if page.offset + page.size < len(summaries):
            body["pagination"] = {"nextToken": self._issue(page)}
        return json_response(200, body)

    # -- paging ---------------------------------------------------------------------------------

    def _issue(self, current: _Page) -> str:
        """An opaque token for the page after `current`."""
        following = replace(current, offset=current.offset + current.size)
        raw = json.dumps([next(self._ids), following.offset]).encode()
        token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        self._pages[token] = following
        return token

    def _page(self, token: str, seller: str) -> _Page:
        page = self._pages.get(token)
        if page is None or page.seller != seller:
            raise self._bad("Invalid NextToken.")
        return page

    def _markets_of(self, value: str, *, at_most: int) -> list[str]:
        markets = [m for m in value.split(",") if m]
        if not markets:
            raise self._bad("Missing required parameter 'MarketplaceIds'.")
        if len(markets) > at_most:
            raise self._bad(f"At most {at_most} marketplaceIds may be given.")
        foreign = [m for m in markets if m not in self.marketplaces.values()]
        if foreign:
            raise self._bad(f"Invalid marketplaceIds for region {self.config.region}: {', '.join(foreign)}.")
        return markets

    # -- data -----------------------------------------------------------------------------------

    def _market(self, seller: str, marketplace: str) -> _Market:
        key = (seller, marketplace)
        if key not in self._markets:
            self._markets[key] = self._generate(seller, marketplace)
        return self._markets[key]

    def _generate(self, seller: str, marketplace: str) -> _Market:
        c = self.config
        rng = random.Random(f"{c.seed}:{seller}:{marketplace}")
        currency = currency_of(marketplace)
        skus = []
        for n in range(rng.randint(*c.skus_per_marketplace)):
            price = Decimal(rng.randrange(500, 9000)) / 100
            skus.append((f"{seller[-4:]}-SKU-{n:03d}", f"B0{rng.randrange(10**8):08d}", price))
        orders: list[dict[str, Any]] = []
        items: dict[str, list[dict[str, Any]]] = {}
        for _ in range(rng.randint(*c.orders_per_marketplace)):
            order_id = f"{rng.randrange(100, 1000)}-{rng.randrange(10**7):07d}-{rng.randrange(10**7):07d}"
            purchased = iso(self.started_at - rng.uniform(0.05, c.history_days) * DAY)
            status = rng.choice(ORDER_STATUSES)
            lines: list[dict[str, Any]] = []
            picked = rng.sample(skus, rng.randint(1, min(3, len(skus))))
            for index, (sku, asin, price) in enumerate(picked):
                quantity = rng.randint(1, 4)
                lines.append(
                    {
                        "OrderItemId": f"{order_id.replace('-', '')}{index:02d}",
                        "SellerSKU": sku,
                        "ASIN": asin,
                        "Title": f"Sandbox product {sku}",
                        "QuantityOrdered": quantity,
                        "QuantityShipped": quantity if status == "Shipped" else 0,
                        "ItemPrice": {"CurrencyCode": currency, "Amount": str(price * quantity)},
                    }
                )
            total = sum((Decimal(line["ItemPrice"]["Amount"]) for line in lines), Decimal(0))
            units = sum(int(line["QuantityOrdered"]) for line in lines)
            orders.append(
                {
                    "AmazonOrderId": order_id,
                    "PurchaseDate": purchased,
                    "LastUpdateDate": purchased,
                    "OrderStatus": status,
                    "FulfillmentChannel": "AFN",
                    "MarketplaceId": marketplace,
                    "OrderTotal": {"CurrencyCode": currency, "Amount": str(total)},
                    "NumberOfItemsShipped": units if status == "Shipped" else 0,
                    "NumberOfItemsUnshipped": units if status == "Unshipped" else 0,
                }
            )
            items[order_id] = lines
        orders.sort(key=lambda o: (o["PurchaseDate"], o["AmazonOrderId"]))
        inventory = [_summary(sku, asin, rng.randint(0, 120), iso(self.started_at)) for sku, asin, _ in skus]
        return _Market(orders, items, inventory)


def _summary(sku: str, asin: str, fulfillable: int, updated: str) -> dict[str, Any]:
    return {
        "asin": asin,
        "fnSku": "X00" + asin[-7:],
        "sellerSku": sku,
        "condition": "NewItem",
        "inventoryDetails": {"fulfillableQuantity": fulfillable, "inboundWorkingQuantity": 0},
        "lastUpdatedTime": updated,
        "productName": f"Sandbox product {sku}",
        "totalQuantity": fulfillable,
    }


def _parse_time(value: str) -> float | None:
    """ISO 8601 to POSIX seconds; a time without an offset is UTC, as Amazon reads it."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
