"""Shopify Admin GraphQL connector: every write is one `productSet` mutation.

`productSet` replaces the list fields it is given and leaves the others
alone, so each phase sends only its part (scalars; options + variants;
files) and `publish` sends the whole product in one call. A `productSet`
naming its product sets the same state however often it is sent, so the
connector repeats it after a 5xx; a create is never repeated. Throttling is read
from `extensions.cost.throttleStatus` on every answer and detected by the
`THROTTLED` error code whatever the HTTP status; the wait is the time the
bucket needs to refill to the requested cost at its restore rate. Readings
count calls, not points: `remaining` is how many calls like the last one the
bucket can still afford.

Stock is not sent: Shopify sets inventory per location, which needs a
location id this connector does not manage yet.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx

from conveyor import Clock, RateLimited, Unrecoverable
from conveyor.commerce.secrets import Credentials

from .base import (
    DEFAULT_RETRY,
    Connector,
    HeaderAuth,
    Pacer,
    RateLimitHook,
    RateLimitInfo,
    RetryPolicy,
    TransientError,
    classify,
    json_body,
)
from .models import Listing, RemoteProduct

DEFAULT_API_VERSION = "2026-04"
PRODUCT_SET = """
mutation conveyorProductSet($input: ProductSetInput!, $synchronous: Boolean!) {
  productSet(synchronous: $synchronous, input: $input) {
    product {
      id
      variants(first: 250) { nodes { id sku } }
      media(first: 250) { nodes { id preview { image { url } } } }
    }
    userErrors { field message code }
  }
}
"""
_TRANSIENT_CODES = frozenset({"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"})


class ShopifyConnector(Connector):
    name = "shopify"

    def __init__(
        self,
        credentials: Credentials,
        *,
        shop_url: str,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 30.0,
        on_rate_limit: RateLimitHook | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        pacer: Pacer | None = None,
    ) -> None:
        """`shop_url` is `https://{shop}.myshopify.com` (or a sandbox's URL)."""
        credentials.require("access_token")
        super().__init__(
            base_url=f"{shop_url.rstrip('/')}/admin/api/{api_version}",
            timeout=timeout,
            on_rate_limit=on_rate_limit,
            clock=clock,
            auth=HeaderAuth("X-Shopify-Access-Token", credentials["access_token"]),
            transport=transport,
            retry=retry,
            pacer=pacer,
        )

    # -- classification ------------------------------------------------------------------------

    def rate_limit_info(self, response: httpx.Response, scope: str) -> RateLimitInfo | None:
        body = json_body(response)
        cost = body.get("extensions", {}).get("cost") if isinstance(body, dict) else None
        if not isinstance(cost, dict) or not isinstance(cost.get("throttleStatus"), dict):
            return None
        status = cost["throttleStatus"]
        available = float(status["currentlyAvailable"])
        maximum = float(status["maximumAvailable"])
        rate = float(status["restoreRate"])
        cost_per_call = max(float(cost.get("requestedQueryCost") or 1), 1.0)
        wait = max(0.0, (cost_per_call - available) / rate)
        throttled = "THROTTLED" in _codes(body) or response.status_code == 429
        remaining = available // cost_per_call
        # While calls are left, "reset" is when the bucket has refilled one more call's cost.
        reset_in = wait if remaining <= 0 else cost_per_call / rate
        return RateLimitInfo(
            remaining=remaining,
            reset_at=self.clock.now() + reset_in,
            retry_after=wait if throttled else None,
            limit=maximum // cost_per_call,
            scope="cost",
        )

    def failure(self, response: httpx.Response, info: RateLimitInfo | None) -> Exception | None:
        body = json_body(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        codes = _codes(body)
        retry_after = info.retry_after if info else None
        if response.status_code == 429 and retry_after is None:
            retry_after = _float(response.headers.get("Retry-After"))
        if "THROTTLED" in codes:
            return RateLimited(retry_after if retry_after is not None else 1.0, _message(errors, "Throttled"))
        if response.is_success and not errors:
            return None
        message = _message(errors, f"HTTP {response.status_code}")
        if not response.is_success:
            return classify(response.status_code, message, retry_after)
        if codes & _TRANSIENT_CODES:
            return TransientError(message, status=response.status_code)
        return Unrecoverable(message)

    # -- phases --------------------------------------------------------------------------------

    async def create_or_update_product(self, listing: Listing, remote: RemoteProduct | None) -> RemoteProduct:
        data = _scalars(listing)
        if remote is None:
            data.update(_variants(listing))
        else:
            data["id"] = remote.product_id
        return await self._product_set(data, remote)

    async def upsert_variants(self, listing: Listing, remote: RemoteProduct) -> RemoteProduct:
        return await self._product_set({"id": remote.product_id, **_variants(listing)}, remote)

    async def add_images(self, listing: Listing, remote: RemoteProduct) -> RemoteProduct:
        return await self._product_set({"id": remote.product_id, "files": _files(listing)}, remote)

    async def publish(self, listing: Listing, remote: RemoteProduct | None = None) -> RemoteProduct:
        data = {**_scalars(listing), **_variants(listing), "files": _files(listing)}
        if remote is not None:
            data["id"] = remote.product_id
        return await self._product_set(data, remote)

    async def _product_set(self, data: dict[str, Any], remote: RemoteProduct | None) -> RemoteProduct:
        variables = {"input": data, "synchronous": True}
        response = await self.request(
            "POST",
            "/graphql.json",
            json={"query": PRODUCT_SET, "variables": variables},
            idempotent="id" in data,
        )
        payload = response.json()["data"]["productSet"]
        if payload["userErrors"]:
            raise Unrecoverable("; ".join(e["message"] for e in payload["userErrors"]))
        product = payload["product"]
        variants = {v["sku"]: v["id"] for v in product["variants"]["nodes"] if v.get("sku")}
        media = {m["preview"]["image"]["url"]: m["id"] for m in product["media"]["nodes"] if m.get("preview")}
        base = remote or RemoteProduct(product_id=product["id"])
        return replace(base, product_id=product["id"], variant_ids=variants, image_ids=media)


def _scalars(listing: Listing) -> dict[str, Any]:
    return {
        "title": listing.name,
        "descriptionHtml": listing.description,
        "vendor": listing.brand,
        "status": "ACTIVE" if listing.active else "DRAFT",
    }


def _variants(listing: Listing) -> dict[str, Any]:
    """Options and variants together (productSet needs both); a plain product gets `Default Title`."""
    if not listing.variants:
        default = [{"optionName": "Title", "name": "Default Title"}]
        return {
            "productOptions": [{"name": "Title", "position": 1, "values": [{"name": "Default Title"}]}],
            "variants": [
                {"optionValues": default, "price": str(listing.price), "inventoryItem": {"sku": listing.sku}}
            ],
        }
    names = listing.option_names()
    options = [
        {"name": name, "position": n, "values": [{"name": v} for v in listing.option_values(name)]}
        for n, name in enumerate(names, start=1)
    ]
    variants = [
        {
            "optionValues": [{"optionName": name, "name": v.options[name]} for name in names],
            "price": str(v.price),
            "inventoryItem": {"sku": v.sku},
        }
        for v in listing.variants
    ]
    return {"productOptions": options, "variants": variants}


def _files(listing: Listing) -> list[dict[str, str]]:
    return [{"originalSource": i.url, "alt": i.alt, "contentType": "IMAGE"} for i in listing.images]


def _codes(body: Any) -> set[str]:
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return set()
    return {str(e.get("extensions", {}).get("code")) for e in errors if isinstance(e, dict)}


def _message(errors: Any, default: str) -> str:
    """Shopify's message: REST puts a string (or field map) in `errors`, GraphQL a list of objects."""
    if isinstance(errors, str):
        return errors
    if isinstance(errors, list):
        return (
            "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors) or default
        )
    if isinstance(errors, dict):
        return "; ".join(f"{field} {_joined(msgs)}" for field, msgs in errors.items())
    return default


def _joined(messages: Any) -> str:
    return ", ".join(map(str, messages)) if isinstance(messages, list) else str(messages)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
