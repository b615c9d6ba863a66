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
from types import TracebackType
from typing import Any, Self

import httpx

from conveyor import Clock, SystemClock, Unrecoverable
from conveyor.commerce.secrets import Credentials

from .base import RateLimitHook, RateLimitInfo, TransientError, classify, json_body

TOKEN_PATH = "/api/oauth/v1/token"
PRODUCTS = "/api/rest/v1/products"
CATEGORIES = "/api/rest/v1/categories"
MAX_PAGE = 100
TOKEN_MARGIN = 60.0


class CredentialsRejected(Unrecoverable):
    """The token endpoint refused the client or user credentials (Akeneo answers 4xx, not 401)."""


class AkeneoConnector:
    """Reads an Akeneo PIM; use as `async with` so the connection pool closes."""

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
        self.page_size = page_size
        self.clock: Clock = clock or SystemClock()
        self._credentials = credentials
        self._on_rate_limit = on_rate_limit
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
        )
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()

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
        response = await self._send("GET", url, params=params, headers=await self._bearer())
        if response.status_code == 401 and cached:
            self._token = None
            response = await self._send("GET", url, params=params, headers=await self._bearer())
        self._raise_for(response)
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
        response = await self._send(
            "POST", TOKEN_PATH, json=grant, headers={"Authorization": f"Basic {basic}"}
        )
        if 400 <= response.status_code < 500 and response.status_code != 429:
            body = json_body(response)
            message = body.get("message") if isinstance(body, dict) else None
            raise CredentialsRejected(f"{self.name}: {message or f'HTTP {response.status_code}'}")
        self._raise_for(response)
        answer = response.json()
        return answer["access_token"], now + float(answer.get("expires_in", 3600)) - TOKEN_MARGIN

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, url, **kwargs)
        except httpx.TimeoutException as e:
            raise TransientError(f"{self.name}: {method} {url} timed out") from e
        except httpx.TransportError as e:
            raise TransientError(f"{self.name}: {method} {url} failed ({type(e).__name__})") from e
        if response.status_code == 429:
            wait = _retry_after(response)
            info = RateLimitInfo(
                remaining=0, reset_at=self.clock.now() + wait, retry_after=wait, scope="per_second"
            )
            if self._on_rate_limit is not None:
                result = self._on_rate_limit(info)
                if result is not None:
                    await result
        return response

    def _raise_for(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        body = json_body(response)
        message = str(body.get("message")) if isinstance(body, dict) and body.get("message") else ""
        wait = _retry_after(response) if response.status_code == 429 else None
        raise classify(
            response.status_code, f"{self.name}: {message or f'HTTP {response.status_code}'}", wait
        )


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
