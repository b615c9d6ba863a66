"""Akeneo PIM REST connector: OAuth password-grant tokens and paged reads of products and categories.

Products are read with `search_after` pagination (stable while the catalogue
changes, and what Akeneo recommends for big catalogues); categories only
offer offset pages. Either way the next page is the `_links.next.href` the
API returned, never a URL built by hand. A 401 with a cached token fetches a
new token once (tokens expire after an hour) before it counts as bad
credentials; a refused token request is `CredentialsRejected`; a 429 is
`RateLimited` for the `Retry-After` seconds.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx

from conveyor import Clock, Unrecoverable
from conveyor.commerce.secrets import Credentials

from . import base
from .base import ONE_TRY, ApiClient, RateLimitHook, RateLimitInfo, classify, json_body

TOKEN_PATH = "/api/oauth/v1/token"
PRODUCTS = "/api/rest/v1/products"
CATEGORIES = "/api/rest/v1/categories"
MAX_PAGE = 100
TOKEN_MARGIN = 60.0


class CredentialsRejected(Unrecoverable):
    """The token endpoint refused the client or user credentials (Akeneo answers 4xx, not 401)."""


class TokenExpired(base.CredentialsRejected):
    """A read answered 401: the token may have expired early, so a cached one is replaced once."""


class AkeneoConnector(ApiClient):
    """Reads an Akeneo PIM; use as `async with` so the connection pool closes.

    Nothing is repeated by the shared request path (`ONE_TRY`); a failed page
    fails the import job, whose own retries start it again.
    """

    name = "akeneo"

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str,
        page_size: int = MAX_PAGE,
        timeout: float = 30.0,
        on_rate_limit: RateLimitHook | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        credentials.require("client_id", "secret", "username", "password")
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"Akeneo pages hold 1 to {MAX_PAGE} items, not {page_size}")
        super().__init__(
            base_url=base_url,
            timeout=timeout,
            on_rate_limit=on_rate_limit,
            clock=clock,
            transport=transport,
            retry=ONE_TRY,
        )
        self.page_size = page_size
        self._credentials = credentials
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()

    async def count_products(self) -> int:
        """The catalogue's product count (`with_count` on a one-item offset page)."""
        page = await self._get(PRODUCTS, {"limit": 1, "with_count": "true"})
        return int(page.get("items_count", 0))

    def products(self) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of products in the standard format, by `search_after`."""
        return self._pages(PRODUCTS, {"pagination_type": "search_after", "limit": self.page_size})

    def categories(self) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of categories (`code`, `parent`, `labels`)."""
        return self._pages(CATEGORIES, {"limit": self.page_size})

    async def _pages(self, path: str, params: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
        url: str | None = path
        query: dict[str, Any] | None = params
        while url is not None:
            page = await self._get(url, query)
            yield list(page.get("_embedded", {}).get("items", []))
            url = page.get("_links", {}).get("next", {}).get("href")
            query = None  # the next link carries its own query, cursor included

    async def _get(self, url: str, params: dict[str, Any] | None) -> dict[str, Any]:
        cached = self._token is not None
        try:
            response = await self.request("GET", url, params=params, headers=await self._bearer())
        except TokenExpired:
            if not cached:
                raise
            self._token = None
            response = await self.request("GET", url, params=params, headers=await self._bearer())
        body: dict[str, Any] = response.json()
        return body

    async def _bearer(self) -> dict[str, str]:
        async with self._token_lock:
            now = self.clock.now()
            if self._token is None or self._token[1] <= now:
                self._token = await self._fetch_token(now)
            return {"Authorization": f"Bearer {self._token[0]}"}

    async def _fetch_token(self, now: float) -> tuple[str, float]:
        c = self._credentials
        basic = base64.b64encode(f"{c['client_id']}:{c['secret']}".encode()).decode()
        grant = {"grant_type": "password", "username": c["username"], "password": c["password"]}
        response = await self.request(
            "POST", TOKEN_PATH, json=grant, headers={"Authorization": f"Basic {basic}"}
        )
        answer = response.json()
        return answer["access_token"], now + float(answer.get("expires_in", 3600)) - TOKEN_MARGIN

    def rate_limit_info(self, response: httpx.Response, scope: str) -> RateLimitInfo | None:
        if response.status_code != 429:
            return None
        wait = _retry_after(response)
        return RateLimitInfo(
            remaining=0, reset_at=self.clock.now() + wait, retry_after=wait, scope="per_second"
        )

    def failure(self, response: httpx.Response, info: RateLimitInfo | None) -> Exception | None:
        if response.is_success:
            return None
        body = json_body(response)
        message = str(body.get("message")) if isinstance(body, dict) and body.get("message") else ""
        message = f"{self.name}: {message or f'HTTP {response.status_code}'}"
        status = response.status_code
        if response.request.url.path.endswith(TOKEN_PATH) and 400 <= status < 500 and status != 429:
            return CredentialsRejected(message)
        if status == 401:
            return TokenExpired(message)
        return classify(status, message, info.retry_after if info else None)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
