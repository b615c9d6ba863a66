"""eBay Sell Inventory connector: inventory items (full replace by SKU), offers, publishing.

A plain product is one inventory item plus one offer; a product with
variants is an inventory item group whose variant SKUs each have an item and
an offer. Inventory items are replaced whole on every PUT, so each PUT
carries the images too, and the images phase is where the listing goes live
(`publish` / `publish_by_inventory_item_group`), because eBay refuses to
publish without a picture. Offers are looked up by SKU before one is
created, since `createOffer` is a POST that would otherwise duplicate on retry.

eBay sends no rate-limit headers: on a 429 the connector asks the Developer
Analytics `user_rate_limit` resource (the one a user token may read) when
the quota resets, falling back to `default_retry_after` when it cannot say.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from conveyor import Clock, RateLimited
from conveyor.commerce.secrets import Credentials

from .base import (
    DEFAULT_RETRY,
    Connector,
    HeaderAuth,
    RateLimitHook,
    RateLimitInfo,
    RetryPolicy,
    TransientError,
    classify,
    json_body,
)
from .models import Listing, RemoteProduct

DEFAULT_BASE_URL = "https://api.ebay.com"
ROOT = "/sell/inventory/v1"
USER_RATE_LIMIT_PATH = "/developer/analytics/v1_beta/user_rate_limit/"


@dataclass(frozen=True)
class EbaySettings:
    """Where and how listings are offered; none of this is secret."""

    marketplace_id: str = "EBAY_US"
    content_language: str = "en-US"
    category_id: str = ""
    merchant_location_key: str = ""
    fulfillment_policy_id: str = ""
    payment_policy_id: str = ""
    return_policy_id: str = ""
    condition: str = "NEW"
    listing_format: str = "FIXED_PRICE"


class EbayConnector(Connector):
    name = "ebay"

    def __init__(
        self,
        credentials: Credentials,
        settings: EbaySettings,
        *,
        base_url: str = DEFAULT_BASE_URL,
        default_retry_after: float = 60.0,
        timeout: float = 30.0,
        on_rate_limit: RateLimitHook | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        credentials.require("access_token")
        super().__init__(
            base_url=base_url,
            timeout=timeout,
            on_rate_limit=on_rate_limit,
            clock=clock,
            auth=HeaderAuth("Authorization", f"Bearer {credentials['access_token']}"),
            headers={"Content-Language": settings.content_language},
            transport=transport,
            retry=retry,
        )
        self.settings = settings
        self._default_retry_after = default_retry_after

    # -- classification ------------------------------------------------------------------------

    def rate_limit_info(self, response: httpx.Response, scope: str) -> RateLimitInfo | None:
        return None

    def failure(self, response: httpx.Response, info: RateLimitInfo | None) -> Exception | None:
        if response.is_success:
            return None
        body = json_body(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        message = f"HTTP {response.status_code}"
        if isinstance(errors, list) and errors:
            message = "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict))
        return classify(response.status_code, message, self._default_retry_after)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await super().request(method, url, **kwargs)
        except RateLimited as limited:
            if kwargs.get("scope") == "quota":
                raise
            raise RateLimited(await self._quota_wait(), str(limited)) from limited

    async def _quota_wait(self) -> float:
        """Seconds until the Inventory API quota resets, per the Analytics API; reported to the hook."""
        try:
            params = {"api_context": "sell", "api_name": "inventory"}
            response = await self.request("GET", USER_RATE_LIMIT_PATH, scope="quota", params=params)
            rate = response.json()["rateLimits"][0]["resources"][0]["rates"][0]
            reset_at = datetime.fromisoformat(rate["reset"].replace("Z", "+00:00")).timestamp()
        except (TransientError, RateLimited, KeyError, IndexError, ValueError, TypeError):
            return self._default_retry_after
        wait = max(0.0, reset_at - self.clock.now())
        await self.report(RateLimitInfo(rate.get("remaining"), reset_at, wait, rate.get("limit"), "daily"))
        return wait

    # -- phases --------------------------------------------------------------------------------

    async def create_or_update_product(self, listing: Listing, remote: RemoteProduct | None) -> RemoteProduct:
        if listing.variants:
            await self._put_group(listing)
        else:
            await self._put_item(listing.sku, self._item(listing, listing.stock, {}))
            await self._ensure_offer(listing.sku, listing, listing.price, listing.stock)
        return remote or RemoteProduct(product_id=listing.sku)

    async def upsert_variants(self, listing: Listing, remote: RemoteProduct) -> RemoteProduct:
        for variant in listing.variants:
            aspects = {name: [value] for name, value in variant.options.items()}
            await self._put_item(variant.sku, self._item(listing, variant.stock, aspects))
            await self._ensure_offer(variant.sku, listing, variant.price, variant.stock)
        return replace(remote, variant_ids={v.sku: v.sku for v in listing.variants})

    async def add_images(self, listing: Listing, remote: RemoteProduct) -> RemoteProduct:
        if listing.variants:
            body = {"inventoryItemGroupKey": listing.sku, "marketplaceId": self.settings.marketplace_id}
            response = await self.request("POST", f"{ROOT}/offer/publish_by_inventory_item_group", json=body)
        else:
            offer = await self._find_offer(listing.sku)
            offer_id = offer["offerId"] if offer else ""
            response = await self.request("POST", f"{ROOT}/offer/{quote(offer_id, safe='')}/publish")
        images = {i.url: i.url for i in listing.images}
        return replace(remote, image_ids=images, listing_id=str(response.json()["listingId"]))

    # -- requests ------------------------------------------------------------------------------

    def _item(self, listing: Listing, stock: int, aspects: dict[str, list[str]]) -> dict[str, Any]:
        product: dict[str, Any] = {
            "title": listing.name,
            "description": listing.description,
            "imageUrls": [i.url for i in listing.images],
        }
        if listing.brand:
            product["brand"] = listing.brand
            aspects = {"Brand": [listing.brand], **aspects}
        if aspects:
            product["aspects"] = aspects
        availability = {"shipToLocationAvailability": {"quantity": stock}}
        return {"product": product, "condition": self.settings.condition, "availability": availability}

    async def _put_item(self, sku: str, body: dict[str, Any]) -> None:
        await self.request("PUT", f"{ROOT}/inventory_item/{quote(sku, safe='')}", json=body)

    async def _put_group(self, listing: Listing) -> None:
        names = listing.option_names()
        body = {
            "title": listing.name,
            "description": listing.description,
            "imageUrls": [i.url for i in listing.images],
            "variantSKUs": [v.sku for v in listing.variants],
            "variesBy": {
                "aspectsImageVariesBy": [],
                "specifications": [{"name": n, "values": listing.option_values(n)} for n in names],
            },
        }
        await self.request("PUT", f"{ROOT}/inventory_item_group/{quote(listing.sku, safe='')}", json=body)

    async def _find_offer(self, sku: str) -> dict[str, Any] | None:
        params = {"sku": sku, "marketplace_id": self.settings.marketplace_id}
        offers = (await self.request("GET", f"{ROOT}/offer", params=params)).json().get("offers", [])
        match = [o for o in offers if o.get("format") == self.settings.listing_format]
        return match[0] if match else None

    async def _ensure_offer(self, sku: str, listing: Listing, price: Any, stock: int) -> None:
        s = self.settings
        body = {
            "sku": sku,
            "marketplaceId": s.marketplace_id,
            "format": s.listing_format,
            "availableQuantity": stock,
            "categoryId": s.category_id,
            "listingDescription": listing.description,
            "merchantLocationKey": s.merchant_location_key,
            "pricingSummary": {"price": {"value": f"{price:.2f}", "currency": listing.currency}},
            "listingPolicies": {
                "fulfillmentPolicyId": s.fulfillment_policy_id,
                "paymentPolicyId": s.payment_policy_id,
                "returnPolicyId": s.return_policy_id,
            },
        }
        offer = await self._find_offer(sku)
        if offer is None:
            await self.request("POST", f"{ROOT}/offer", json=body)
        else:
            await self.request("PUT", f"{ROOT}/offer/{quote(offer['offerId'], safe='')}", json=body)
