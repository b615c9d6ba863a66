"""Amazon SP-API Listings Items (2021-08-01) simulator, with the LWA token endpoint on the same host.

Reproduces `../shared/marketplace-apis.md` sections 3 and 7: `x-amz-access-token`
auth (403 `Unauthorized` ErrorList otherwise), per-operation token buckets
(rate, burst) answering 429 ErrorList with no `Retry-After` and no
`x-amzn-RateLimit-Limit`; that header only on 20x/400/404; `x-amzn-RequestId`
on everything; structural problems (no `marketplaceIds`, no `productType` /
`attributes` / `patches`) as 400 ErrorList; content problems as HTTP 200 with
`status: INVALID` and `issues` (code 90220 for a missing required attribute);
`mode=VALIDATION_PREVIEW` validates without saving.

Assumptions where the facts are silent (in `AmazonConfig` where they vary):
- error `code` strings: `InvalidInput` (400), `NotFound` (404), `QuotaExceeded`
  (429), `InternalFailure` (5xx); 403 carries `x-amzn-ErrorType: AccessDeniedException`;
- the LWA endpoint answers `invalid_client` (401) / `invalid_grant` (400) in
  the OAuth `{"error", "error_description"}` shape;
- `required_attributes` decides what a listing must carry (`item_name`);
- PATCH or DELETE of an unknown SKU answers 404; Feeds are not simulated.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response

from conveyor import Clock

from .base import Gate, Reply, iso, json_response
from .faults import FaultConfig
from .limits import TokenBucket
from .lwa import TOKEN_PATH, LwaAuthority
from .sp_api import SpApiSandbox, error_entry

ITEMS = "/listings/2021-08-01/items"
OPERATIONS = {
    f"PUT {ITEMS}/{{seller_id}}/{{sku}}": "putListingsItem",
    f"PATCH {ITEMS}/{{seller_id}}/{{sku}}": "patchListingsItem",
    f"GET {ITEMS}/{{seller_id}}/{{sku}}": "getListingsItem",
    f"DELETE {ITEMS}/{{seller_id}}/{{sku}}": "deleteListingsItem",
    f"GET {ITEMS}/{{seller_id}}": "searchListingsItems",
}
DEFAULT_RATES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "putListingsItem": (5.0, 10.0),
        "patchListingsItem": (5.0, 5.0),
        "getListingsItem": (5.0, 10.0),
        "deleteListingsItem": (5.0, 5.0),
        "searchListingsItems": (5.0, 5.0),
    }
)
PATCH_OPS = ("add", "replace", "merge", "delete")
MarketplaceIds = Annotated[str, Query(alias="marketplaceIds")]
IncludedData = Annotated[str, Query(alias="includedData")]


@dataclass(frozen=True)
class AmazonConfig:
    client_id: str = "amzn1.application-oa2-client.sandbox"
    client_secret: str = "sandbox-client-secret"
    refresh_token: str = "Atzr|sandbox-refresh-token"
    seller_id: str = "A1SANDBOXSELLER"
    marketplace_ids: frozenset[str] = frozenset({"ATVPDKIKX0DER"})
    token_ttl: float = 3600.0
    rates: Mapping[str, tuple[float, float]] = field(default_factory=lambda: DEFAULT_RATES)
    """operationId -> (rate per second, burst)."""
    required_attributes: tuple[str, ...] = ("item_name",)
    faults: FaultConfig = field(default_factory=FaultConfig)


@dataclass
class AmazonStore:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Listings by SKU: `productType`, `requirements`, `attributes`, `createdDate`, `lastUpdatedDate`."""
    writes: dict[str, int] = field(default_factory=dict)
    """Accepted PUT/PATCH/DELETE submissions per SKU."""


class AmazonSandbox(SpApiSandbox):
    name = "amazon"
    exempt = frozenset({f"POST {TOKEN_PATH}"})

    def __init__(self, config: AmazonConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or AmazonConfig()
        self.store = AmazonStore()
        c = self.config
        self.lwa = LwaAuthority(c.client_id, c.client_secret, c.token_ttl, {c.refresh_token: c.seller_id})
        self._ids = itertools.count(1)
        super().__init__(self.config.faults, clock)
        self.buckets = {
            op: TokenBucket(burst, rate, self.clock) for op, (rate, burst) in self.config.rates.items()
        }

    # -- gate -----------------------------------------------------------------------------------

    def admit(self, request: Request, endpoint: str) -> Gate:
        operation = OPERATIONS.get(endpoint)
        if operation is None:
            return Gate()
        seller, refusal = self.lwa.seller_of(request.headers.get("x-amz-access-token"), self.clock.now())
        if seller is None:
            return Gate(self.denied(refusal))
        if not self.buckets[operation].try_take():
            self.counters.violations += 1
            return Gate(self.throttled(endpoint))
        return Gate(None, {"x-amzn-RateLimit-Limit": f"{self.buckets[operation].rate:.1f}"})

    def _bad(self, *messages: str) -> Reply:
        return Reply(json_response(400, {"errors": [error_entry("InvalidInput", m) for m in messages]}))

    # -- routes ---------------------------------------------------------------------------------

    def routes(self, app: FastAPI) -> None:
        one = ITEMS + "/{seller_id}/{sku}"
        app.add_api_route(TOKEN_PATH, self.token, methods=["POST"])
        app.add_api_route(one, self.put_item, methods=["PUT"])
        app.add_api_route(one, self.patch_item, methods=["PATCH"])
        app.add_api_route(one, self.get_item, methods=["GET"])
        app.add_api_route(one, self.delete_item, methods=["DELETE"])
        app.add_api_route(ITEMS + "/{seller_id}", self.search_items, methods=["GET"])

    async def token(self, request: Request) -> Response:
        return self.lwa.exchange(await request.body(), self.clock.now())

    async def put_item(
        self, seller_id: str, sku: str, request: Request, marketplace_ids: MarketplaceIds = "", mode: str = ""
    ) -> Response:
        self._scope(seller_id, marketplace_ids)
        body = await self.read_json(request)
        if not isinstance(body, dict):
            raise self._bad("Request body must be a JSON object.")
        problems = []
        if not (isinstance(body.get("productType"), str) and body["productType"]):
            problems.append("Missing required field 'productType'.")
        if not isinstance(body.get("attributes"), dict):
            problems.append("Missing required field 'attributes'.")
        if problems:
            raise self._bad(*problems)
        item = {"productType": body["productType"], "requirements": body.get("requirements", "LISTING")}
        return self._submit(sku, {**item, "attributes": body["attributes"]}, mode)

    async def patch_item(
        self, seller_id: str, sku: str, request: Request, marketplace_ids: MarketplaceIds = "", mode: str = ""
    ) -> Response:
        self._scope(seller_id, marketplace_ids)
        body = await self.read_json(request)
        patches = body.get("patches") if isinstance(body, dict) else None
        if not (isinstance(body, dict) and isinstance(body.get("productType"), str)):
            raise self._bad("Missing required field 'productType'.")
        if not (isinstance(patches, list) and patches):
            raise self._bad("'patches' must contain at least one patch.")
        current = self._item(sku)
        attributes = dict(current["attributes"])
        for patch in patches:
            path = patch.get("path", "") if isinstance(patch, dict) else ""
            name = path.removeprefix("/attributes/")
            if not (
                isinstance(patch, dict) and patch.get("op") in PATCH_OPS and path != name and "/" not in name
            ):
                raise self._bad(f"Invalid patch: {patch!r}.")
            if patch["op"] == "delete":
                attributes.pop(name, None)
            else:
                attributes[name] = patch.get("value")
        return self._submit(
            sku, {**current, "productType": body["productType"], "attributes": attributes}, mode
        )

    async def get_item(
        self,
        seller_id: str,
        sku: str,
        marketplace_ids: MarketplaceIds = "",
        included: IncludedData = "summaries",
    ) -> Response:
        self._scope(seller_id, marketplace_ids)
        return json_response(200, self._view(sku, self._item(sku), included.split(",")))

    async def delete_item(self, seller_id: str, sku: str, marketplace_ids: MarketplaceIds = "") -> Response:
        self._scope(seller_id, marketplace_ids)
        self._item(sku)
        del self.store.items[sku]
        self.store.writes[sku] = self.store.writes.get(sku, 0) + 1
        return json_response(200, self._submission(sku, "ACCEPTED", []))

    async def search_items(
        self,
        seller_id: str,
        marketplace_ids: MarketplaceIds = "",
        page_size: Annotated[int, Query(alias="pageSize")] = 10,
        page_token: Annotated[str, Query(alias="pageToken")] = "",
        identifiers: str = "",
    ) -> Response:
        self._scope(seller_id, marketplace_ids)
        if not 1 <= page_size <= 20:
            raise self._bad("pageSize must be between 1 and 20.")
        skus = sorted(self.store.items)
        if identifiers:
            wanted = identifiers.split(",")
            if len(wanted) > 20:
                raise self._bad("identifiers accepts at most 20 values.")
            skus = [s for s in skus if s in wanted]
        start = int(page_token) if page_token.isdigit() else 0
        page = skus[start : start + page_size]
        body: dict[str, Any] = {
            "numberOfResults": len(skus),
            "items": [self._view(s, self.store.items[s], ["summaries"]) for s in page],
        }
        if start + page_size < min(len(skus), 1000):
            body["pagination"] = {"nextToken": str(start + page_size)}
        return json_response(200, body)

    # -- helpers --------------------------------------------------------------------------------

    def _scope(self, seller_id: str, marketplace_ids: str) -> None:
        if seller_id != self.config.seller_id:
            raise Reply(self.denied("The seller in the request path is not the token's seller."))
        markets = [m for m in marketplace_ids.split(",") if m]
        if not markets:
            raise self._bad("Missing required parameter 'marketplaceIds'.")
        unknown = [m for m in markets if m not in self.config.marketplace_ids]
        if unknown:
            raise self._bad(f"Invalid marketplaceIds: {', '.join(unknown)}.")

    def _item(self, sku: str) -> dict[str, Any]:
        if sku not in self.store.items:
            raise Reply(self.error(404, f"SKU '{sku}' not found."))
        return self.store.items[sku]

    def _submit(self, sku: str, item: dict[str, Any], mode: str) -> Response:
        issues = [
            {
                "code": "90220",
                "message": f"'{name}' is required but not supplied.",
                "severity": "ERROR",
                "attributeNames": [name],
                "categories": ["MISSING_ATTRIBUTE"],
            }
            for name in self.config.required_attributes
            if not item["attributes"].get(name)
        ]
        if issues:
            return json_response(200, self._submission(sku, "INVALID", issues))
        if mode == "VALIDATION_PREVIEW":
            return json_response(200, self._submission(sku, "VALID", []))
        now = iso(self.clock.now())
        created = self.store.items.get(sku, {}).get("createdDate", now)
        self.store.items[sku] = {**item, "createdDate": created, "lastUpdatedDate": now}
        self.store.writes[sku] = self.store.writes.get(sku, 0) + 1
        return json_response(200, self._submission(sku, "ACCEPTED", []))

    def _submission(self, sku: str, status: str, issues: list[dict[str, Any]]) -> dict[str, Any]:
        return {"sku": sku, "status": status, "submissionId": f"{next(self._ids):032x}", "issues": issues}

    def _view(self, sku: str, item: dict[str, Any], included: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"sku": sku}
        if "summaries" in included:
            name = item["attributes"].get("item_name") or [{}]
            image = item["attributes"].get("main_product_image_locator") or [{}]
            summary = {
                "marketplaceId": sorted(self.config.marketplace_ids)[0],
                "productType": item["productType"],
                "status": ["BUYABLE", "DISCOVERABLE"],
                "itemName": name[0].get("value"),
                "createdDate": item["createdDate"],
                "lastUpdatedDate": item["lastUpdatedDate"],
            }
            if image[0].get("media_location"):
                summary["mainImage"] = {"link": image[0]["media_location"]}
            out["summaries"] = [summary]
        if "attributes" in included:
            out["attributes"] = item["attributes"]
        if "issues" in included:
            out["issues"] = []
        return out


def create_app(config: AmazonConfig | None = None, *, clock: Clock | None = None) -> FastAPI:
    return AmazonSandbox(config, clock=clock).app
