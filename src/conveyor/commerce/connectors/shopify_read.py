"""Shopify Admin REST reads for catalog imports: products and custom collections, page by page.

The publishing connector (`shopify.py`) writes through GraphQL; an import
only lists, and the REST lists page with an opaque `page_info` cursor in the
`link` header (`rel="next"`), which is reused verbatim. Every answer's
`X-Shopify-Shop-Api-Call-Limit: used/size` is reported to the rate-limit hook,
and a 429 is `RateLimited` for its `Retry-After` seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from conveyor import Clock
from conveyor.commerce.secrets import Credentials

from .base import ONE_TRY, ApiClient, HeaderAuth, RateLimitHook, RateLimitInfo, classify, json_body

API_VERSION = "2026-04"
MAX_PAGE = 250


class ShopifyCatalogReader(ApiClient):
    """Lists a shop's catalog; `shop_url` is `https://{shop}.myshopify.com` (or a simulator's URL)."""

    name = "shopify"

    def __init__(
        self,
        credentials: Credentials,
        *,
        shop_url: str,
        api_version: str = API_VERSION,
        page_size: int = MAX_PAGE,
        timeout: float = 30.0,
        on_rate_limit: RateLimitHook | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        credentials.require("access_token")
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"Shopify pages hold 1 to {MAX_PAGE} items, not {page_size}")
        super().__init__(
            base_url=f"{shop_url.rstrip('/')}/admin/api/{api_version}",
            timeout=timeout,
            on_rate_limit=on_rate_limit,
            clock=clock,
            auth=HeaderAuth("X-Shopify-Access-Token", credentials["access_token"]),
            transport=transport,
            retry=ONE_TRY,
        )
        self.page_size = page_size

    async def count_products(self) -> int:
        return int((await self.request("GET", "/products/count.json")).json()["count"])

    def products(self) -> AsyncIterator[list[dict[str, Any]]]:
        return self._pages("/products.json", "products")

    def custom_collections(self) -> AsyncIterator[list[dict[str, Any]]]:
        return self._pages("/custom_collections.json", "custom_collections")

    async def _pages(self, path: str, key: str) -> AsyncIterator[list[dict[str, Any]]]:
        params: dict[str, Any] = {"limit": self.page_size}
        while True:
            response = await self.request("GET", path, params=params)
            yield list(response.json()[key])
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            params = {
                "limit": self.page_size,
                "page_info": parse_qs(urlsplit(following).query)["page_info"][0],
            }

    def failure(self, response: httpx.Response, info: RateLimitInfo | None) -> Exception | None:
        if response.is_success:
            return None
        body = json_body(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        message = f"{self.name}: {errors or f'HTTP {response.status_code}'}"
        return classify(response.status_code, message, info.retry_after if info else None)

    def rate_limit_info(self, response: httpx.Response, scope: str) -> RateLimitInfo | None:
        used, _, size = response.headers.get("X-Shopify-Shop-Api-Call-Limit", "").partition("/")
        retry_after = None
        if response.status_code == 429:
            try:
                retry_after = float(response.headers.get("Retry-After", "2.0"))
            except ValueError:
                retry_after = 2.0
        if not size and retry_after is None:
            return None
        remaining = float(size) - float(used) if size else 0.0
        # A full bucket frees a call within a second at every plan's leak rate (Shopify suggests 1 s).
        wait = retry_after if retry_after is not None else 1.0
        return RateLimitInfo(
            remaining=remaining,
            reset_at=self.clock.now() + wait if remaining <= 0 else None,
            retry_after=retry_after,
            limit=float(size) if size else None,
            scope="bucket",
        )
