"""Amazon SP-API Listings Items connector: one SKU per call, LWA access tokens.

A product becomes a listing keyed by its SKU (PUT = full replace, so every
PUT carries the whole state, images included); variants become child SKUs
linked to the parent by `child_parent_sku_relationship`; images are the
`main_product_image_locator` / `other_product_image_locator_N` attributes,
re-asserted with a PATCH in the images phase.

Content problems come back as HTTP 200 with `status: INVALID` and `issues`;
they are `Unrecoverable` with the issues' messages. A 429 carries no
`Retry-After` and no rate header, so the wait is one token at the rate the
operation last reported in `x-amzn-RateLimit-Limit` (`default_retry_after`
until one was seen). A 403 with a cached token fetches a new token once
before it counts as bad credentials, since an expired token answers 403 too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx

from conveyor import Clock, Unrecoverable
from conveyor.commerce.secrets import Credentials

from .base import DEFAULT_RETRY, Connector, RateLimitHook, RateLimitInfo, RetryPolicy, classify, json_body
from .models import Listing, RemoteProduct, Variant
from .sp_api import AccessDenied, LwaTokens, RateReadings

DEFAULT_BASE_URL = "https://sellingpartnerapi-na.amazon.com"
DEFAULT_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
ITEMS = "/listings/2021-08-01/items"
OPERATIONS = {"PUT": "putListingsItem", "PATCH": "patchListingsItem", "GET": "getListingsItem"}
MAX_OTHER_IMAGES = 8


class AmazonConnector(Connector):
    name = "amazon"

    def __init__(
        self,
        credentials: Credentials,
        *,
        seller_id: str,
        marketplace_id: str,
        product_type: str = "PRODUCT",
        language_tag: str = "en_US",
        base_url: str = DEFAULT_BASE_URL,
        token_url: str = DEFAULT_TOKEN_URL,
        default_retry_after: float = 1.0,
        timeout: float = 30.0,
        on_rate_limit: RateLimitHook | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        super().__init__(
            base_url=base_url,
            timeout=timeout,
            on_rate_limit=on_rate_limit,
            clock=clock,
            transport=transport,
            retry=retry,
        )
        self.seller_id = seller_id
        self.marketplace_id = marketplace_id
        self.product_type = product_type
        self.language_tag = language_tag
        self._lwa = LwaTokens(
            credentials, lambda form: self.request("POST", token_url, scope="token", data=form), self.clock
        )
        self._readings = RateReadings(self.clock, default_retry_after)

    # -- classification ------------------------------------------------------------------------

    def rate_limit_info(self, response: httpx.Response, scope: str) -> RateLimitInfo | None:
        return self._readings.read(response, scope)

    def failure(self, response: httpx.Response, info: RateLimitInfo | None) -> Exception | None:
        if response.is_success:
            return None
        body = json_body(response)
        message = f"HTTP {response.status_code}"
        if isinstance(body, dict) and isinstance(body.get("errors"), list):
            message = "; ".join(_error_text(e) for e in body["errors"] if isinstance(e, dict))
        elif isinstance(body, dict) and "error" in body:  # the LWA token endpoint's OAuth shape
            message = str(body.get("error_description") or body["error"])
        if response.status_code == 403:
            return AccessDenied(message)
        return classify(response.status_code, message, info.retry_after if info else None)

    # -- phases --------------------------------------------------------------------------------

    async def create_or_update_product(self, listing: Listing, remote: RemoteProduct | None) -> RemoteProduct:
        attributes = {**self._common(listing.name, listing), **self._images(listing)}
        if listing.variants:
            theme = "/".join(name.upper() for name in listing.option_names())
            attributes["parentage_level"] = [{"value": "parent", "marketplace_id": self.marketplace_id}]
            attributes["variation_theme"] = [{"name": theme}]
        else:
            attributes.update(self._offer(listing.price, listing.stock, listing.currency))
        await self._put(listing.sku, attributes)
        return remote or RemoteProduct(product_id=listing.sku)

    async def upsert_variants(self, listing: Listing, remote: RemoteProduct) -> RemoteProduct:
        for variant in listing.variants:
            await self._put(variant.sku, self._child(listing, variant))
        return replace(remote, variant_ids={v.sku: v.sku for v in listing.variants})

    async def add_images(self, listing: Listing, remote: RemoteProduct) -> RemoteProduct:
        images = self._images(listing)
        names = ["main_product_image_locator"] + [
            f"other_product_image_locator_{n}" for n in range(1, MAX_OTHER_IMAGES + 1)
        ]
        patches = [
            {"op": "replace", "path": f"/attributes/{name}", "value": images[name]}
            if name in images
            else {"op": "delete", "path": f"/attributes/{name}"}
            for name in names
        ]
        body = {"productType": self.product_type, "patches": patches}
        await self._submit("PATCH", listing.sku, body)
        return replace(remote, image_ids={i.url: i.url for i in listing.images})

    # -- requests ------------------------------------------------------------------------------

    async def _put(self, sku: str, attributes: dict[str, Any]) -> None:
        body = {"productType": self.product_type, "requirements": "LISTING", "attributes": attributes}
        await self._submit("PUT", sku, body)

    async def _submit(self, method: str, sku: str, body: dict[str, Any]) -> None:
        path = f"{ITEMS}/{quote(self.seller_id, safe='')}/{quote(sku, safe='')}"
        params = {"marketplaceIds": self.marketplace_id}
        response = await self._lwa.call(lambda: self._call(method, path, body, params))
        result = response.json()
        if result.get("status") == "INVALID":
            issues = [i for i in result.get("issues", []) if i.get("severity") == "ERROR"]
            raise Unrecoverable("; ".join(i["message"] for i in issues) or "listing is INVALID")

    async def _call(self, method: str, path: str, body: Any, params: dict[str, str]) -> httpx.Response:
        headers = {"x-amz-access-token": await self._lwa.get()}
        return await self.request(
            method, path, scope=OPERATIONS[method], json=body, params=params, headers=headers
        )

    # -- attributes ----------------------------------------------------------------------------

    def _text(self, value: str) -> list[dict[str, str]]:
        return [{"value": value, "language_tag": self.language_tag, "marketplace_id": self.marketplace_id}]

    def _common(self, name: str, listing: Listing) -> dict[str, Any]:
        attributes: dict[str, Any] = {"item_name": self._text(name)}
        if listing.description:
            attributes["product_description"] = self._text(listing.description)
        if listing.brand:
            attributes["brand"] = self._text(listing.brand)
        return attributes

    def _offer(self, price: Any, stock: int, currency: str) -> dict[str, Any]:
        schedule = [{"schedule": [{"value_with_tax": float(price)}]}]
        offer = {"marketplace_id": self.marketplace_id, "currency": currency, "our_price": schedule}
        availability = {
            "fulfillment_channel_code": "DEFAULT",
            "quantity": stock,
            "marketplace_id": self.marketplace_id,
        }
        return {"purchasable_offer": [offer], "fulfillment_availability": [availability]}

    def _images(self, listing: Listing) -> dict[str, Any]:
        images: dict[str, Any] = {}
        for n, image in enumerate(listing.images[: MAX_OTHER_IMAGES + 1]):
            name = "main_product_image_locator" if n == 0 else f"other_product_image_locator_{n}"
            images[name] = [{"media_location": image.url, "marketplace_id": self.marketplace_id}]
        return images

    def _child(self, listing: Listing, variant: Variant) -> dict[str, Any]:
        label = ", ".join(variant.options.values())
        attributes = self._common(f"{listing.name} ({label})" if label else listing.name, listing)
        attributes.update(self._offer(variant.price, variant.stock, listing.currency))
        attributes["parentage_level"] = [{"value": "child", "marketplace_id": self.marketplace_id}]
        relation = {"child_relationship_type": "variation", "parent_sku": listing.sku}
        attributes["child_parent_sku_relationship"] = [{**relation, "marketplace_id": self.marketplace_id}]
        for name, value in variant.options.items():
            attributes[name.lower()] = self._text(value)
        return attributes


def _error_text(error: dict[str, Any]) -> str:
    message = str(error.get("message", ""))
    details = error.get("details")
    return f"{message} ({details})" if details else message
