"""Jumpseller REST v1 connector: one product per call, variants and images as sub-resources.

Auth is HTTP Basic `login:authtoken` (never the query-string form, which
would put the token in URLs and logs). Jumpseller sends no reset time for its
windows, so a reading reports the tighter window with an upper-bound reset
(1 s or 60 s ahead); a 429 waits 60 s when the minute window is empty (the
wait Jumpseller's own guide gives), 1 s otherwise, and until the ban lifts
when `Jumpseller-BannedByRateLimit-Reset` is present.

A new product is created with its variants inline (one call instead of one
per variant, as the API allows); the variants phase then only checks them.
Variants and images are reconciled against what the store already holds
(matched by SKU and by URL), so a retried phase never duplicates them, and a
variant that already matches is not written again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx

from conveyor import Clock
from conveyor.commerce.secrets import Credentials

from .base import (
    DEFAULT_RETRY,
    Connector,
    Pacer,
    RateLimitHook,
    RateLimitInfo,
    RetryPolicy,
    classify,
    json_body,
)
from .models import Listing, RemoteProduct, Variant

DEFAULT_BASE_URL = "https://api.jumpseller.com/v1"
PAGE_SIZE = 100


class JumpsellerConnector(Connector):
    name = "jumpseller"

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        on_rate_limit: RateLimitHook | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        pacer: Pacer | None = None,
    ) -> None:
        credentials.require("login", "authtoken")
        super().__init__(
            base_url=base_url,
            timeout=timeout,
            on_rate_limit=on_rate_limit,
            clock=clock,
            auth=httpx.BasicAuth(credentials["login"], credentials["authtoken"]),
            transport=transport,
            retry=retry,
            pacer=pacer,
        )

    # -- classification ------------------------------------------------------------------------

    def rate_limit_info(self, response: httpx.Response, scope: str) -> RateLimitInfo | None:
        now = self.clock.now()
        refused = response.status_code == 429
        banned = response.headers.get("Jumpseller-BannedByRateLimit-Reset")
        if banned:
            reset = datetime.fromisoformat(banned).timestamp()
            return RateLimitInfo(remaining=0, reset_at=reset, retry_after=max(0.0, reset - now), scope="ban")
        windows = []
        for window, seconds, scope in (("PerSecond", 1.0, "per_second"), ("PerMinute", 60.0, "per_minute")):
            remaining = _number(response.headers.get(f"Jumpseller-{window}RateLimit-Remaining"))
            limit = _number(response.headers.get(f"Jumpseller-{window}RateLimit-Limit"))
            if remaining is not None:
                windows.append((remaining, seconds, limit, scope))
        if not windows:
            return None
        # The binding window: fewest requests left; on a tie the longer wait.
        remaining, seconds, limit, scope = min(windows, key=lambda w: (w[0], -w[1]))
        retry_after = (seconds if remaining == 0 else 1.0) if refused else None
        return RateLimitInfo(remaining, now + seconds, retry_after, limit, scope)

    def failure(self, response: httpx.Response, info: RateLimitInfo | None) -> Exception | None:
        if response.is_success:
            return None
        body = json_body(response)
        message = f"HTTP {response.status_code}"
        if isinstance(body, dict) and isinstance(body.get("errors"), list):
            message = "; ".join(str(e) for e in body["errors"])
        elif isinstance(body, dict) and isinstance(body.get("message"), str):
            message = body["message"]
        return classify(response.status_code, message, info.retry_after if info else None)

    # -- phases --------------------------------------------------------------------------------

    async def create_or_update_product(self, listing: Listing, remote: RemoteProduct | None) -> RemoteProduct:
        body = {
            "product": {
                "name": listing.name,
                "price": float(listing.price),
                "sku": listing.sku,
                "stock": listing.stock,
                "description": listing.description,
                "brand": listing.brand,
                "status": "available" if listing.active else "unavailable",
            }
        }
        if remote is None:
            body["product"]["variants"] = [_variant_fields(v) for v in listing.variants]
            response = await self.request("POST", "/products.json", json=body)
            return RemoteProduct(product_id=str(response.json()["product"]["id"]))
        await self.request("PUT", f"/products/{remote.product_id}.json", json=body)
        return remote

    async def upsert_variants(self, listing: Listing, remote: RemoteProduct) -> RemoteProduct:
        if not listing.variants:
            return remote
        path = f"/products/{remote.product_id}/variants"
        existing = {v["sku"]: v for v in await self._all(path, "variant") if v.get("sku")}
        ids = {}
        for variant in listing.variants:
            body = {"variant": _variant_fields(variant)}
            held = existing.get(variant.sku)
            if held is not None:
                ids[variant.sku] = str(held["id"])
                if not _same_variant(held, body["variant"]):
                    await self.request("PUT", f"{path}/{held['id']}.json", json=body)
            else:
                response = await self.request("POST", f"{path}.json", json=body)
                ids[variant.sku] = str(response.json()["variant"]["id"])
        return replace(remote, variant_ids=ids)

    async def add_images(self, listing: Listing, remote: RemoteProduct) -> RemoteProduct:
        path = f"/products/{remote.product_id}/images"
        ids = {i["url"]: str(i["id"]) for i in await self._all(path, "image")}
        for position, image in enumerate(listing.images, start=1):
            if image.url not in ids:
                body = {"image": {"url": image.url, "position": position}}
                response = await self.request("POST", f"{path}.json", json=body)
                ids[image.url] = str(response.json()["image"]["id"])
        wanted = {image.url for image in listing.images}
        return replace(remote, image_ids={url: i for url, i in ids.items() if url in wanted})

    async def _all(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every page of a list endpoint: Jumpseller pages by number until a short page."""
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"page": page, "limit": PAGE_SIZE}
            batch = (await self.request("GET", f"{path}.json", params=params)).json()
            rows += [entry[key] for entry in batch]
            if len(batch) < PAGE_SIZE:
                return rows
            page += 1


def _variant_fields(variant: Variant) -> dict[str, Any]:
    options = [{"name": name, "value": value} for name, value in variant.options.items()]
    return {"sku": variant.sku, "price": float(variant.price), "stock": variant.stock, "options": options}


def _same_variant(held: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether the store's variant already says what the listing says: then it is not written again."""
    held_options = [{"name": o.get("name"), "value": o.get("value")} for o in held.get("options") or []]
    scalars = ("sku", "price", "stock")
    return all(held.get(k) == wanted[k] for k in scalars) and held_options == wanted["options"]


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
