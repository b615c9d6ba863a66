"""Amazon SP-API reads for one seller account: orders (v0), their items, and FBA inventory summaries.

This is a read client (an `ApiClient`, not a publishing `Connector`), and it
answers failures the way the publishing connectors do: bad credentials (LWA
`invalid_client` / `invalid_grant`, a 403 that a fresh token does not cure)
are `Unrecoverable`; 5xx, timeouts and dropped connections are
`TransientError`; a 429 is `RateLimited`, waiting one token at the rate the
operation last reported in `x-amzn-RateLimit-Limit`, since Amazon sends no
`Retry-After` (`default_retry_after` until a rate was seen).

A throttled page whose wait is short (inventory at 2/s, order items at 0.5/s)
is waited out in place, up to `throttle_retries` times, so a long paged read
does not start over; a long wait (getOrders refills one token a minute) is
raised for the engine to re-delay the job without spending an attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from conveyor import Clock, RateLimited
from conveyor.commerce.secrets import Credentials

from .base import ONE_TRY, ApiClient, RateLimitHook, RateLimitInfo, TransientError, classify, json_body
from .sp_api import AccessDenied, LwaTokens, RateReadings

DEFAULT_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
REGION_ENDPOINTS: Mapping[str, str] = {
    "NA": "https://sellingpartnerapi-na.amazon.com",
    "EU": "https://sellingpartnerapi-eu.amazon.com",
    "FE": "https://sellingpartnerapi-fe.amazon.com",
}
ORDERS = "/orders/v0/orders"
INVENTORY = "/fba/inventory/v1/summaries"
MAX_PAGES = 1000
"""A guard against an API that keeps handing out NextTokens."""


class SellerApiClient(ApiClient):
    """Orders and inventory of one seller in one marketplace; use as `async with`.

    Nothing is repeated by the shared request path (`ONE_TRY`): a short
    throttle is waited out page by page in `_get`, with its own limits.
    """

    name = "amazon-seller"

    def __init__(
        self,
        credentials: Credentials,
        *,
        marketplace_id: str,
        base_url: str,
        token_url: str = DEFAULT_TOKEN_URL,
        default_retry_after: float = 1.0,
        max_inline_wait: float = 5.0,
        throttle_retries: int = 3,
        timeout: float = 30.0,
        on_rate_limit: RateLimitHook | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            timeout=timeout,
            on_rate_limit=on_rate_limit,
            clock=clock,
            transport=transport,
            retry=ONE_TRY,
        )
        self.marketplace_id = marketplace_id
        self._max_inline_wait = max_inline_wait
        self._throttle_retries = throttle_retries
        self._sleep = sleep
        self._lwa = LwaTokens(
            credentials, lambda form: self._call("POST", token_url, "token", data=form), self.clock
        )
        self._readings = RateReadings(self.clock, default_retry_after)

    # -- reads ---------------------------------------------------------------------------------

    async def orders(self, created_after: float, *, page_size: int = 100) -> list[dict[str, Any]]:
        """Every order created at or after `created_after` (POSIX seconds), following NextToken."""
        params: dict[str, Any] = {
            "MarketplaceIds": self.marketplace_id,
            "CreatedAfter": datetime.fromtimestamp(created_after, UTC).isoformat(timespec="seconds"),
            "MaxResultsPerPage": page_size,
        }
        orders: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            payload = (await self._get(ORDERS, "getOrders", params))["payload"]
            orders.extend(payload.get("Orders", []))
            token = payload.get("NextToken")
            if not token:
                return orders
            params = {"MarketplaceIds": self.marketplace_id, "NextToken": token}
        raise TransientError(f"{self.name}: getOrders still paging after {MAX_PAGES} pages")

    async def order_items(self, order_id: str) -> list[dict[str, Any]]:
        path = f"{ORDERS}/{quote(order_id, safe='')}/orderItems"
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {}
        for _ in range(MAX_PAGES):
            payload = (await self._get(path, "getOrderItems", params))["payload"]
            items.extend(payload.get("OrderItems", []))
            token = payload.get("NextToken")
            if not token:
                return items
            params = {"NextToken": token}
        raise TransientError(f"{self.name}: getOrderItems still paging after {MAX_PAGES} pages")

    async def inventory(self) -> list[dict[str, Any]]:
        """Every FBA inventory summary of the marketplace, with details."""
        base = {
            "details": "true",
            "granularityType": "Marketplace",
            "granularityId": self.marketplace_id,
            "marketplaceIds": self.marketplace_id,
        }
        params: dict[str, Any] = dict(base)
        summaries: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            body = await self._get(INVENTORY, "getInventorySummaries", params)
            summaries.extend(body["payload"].get("inventorySummaries", []))
            token = (body.get("pagination") or {}).get("nextToken")
            if not token:
                return summaries
            params = {**base, "nextToken": token}
        raise TransientError(f"{self.name}: getInventorySummaries still paging after {MAX_PAGES} pages")

    # -- requests ------------------------------------------------------------------------------

    async def _get(self, path: str, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One page; a short throttle is waited out here, so a paged read keeps its place."""
        for _ in range(self._throttle_retries):
            try:
                return await self._get_once(path, operation, params)
            except RateLimited as e:
                if e.retry_after > self._max_inline_wait:
                    raise
                await self._sleep(e.retry_after)
        return await self._get_once(path, operation, params)

    async def _get_once(self, path: str, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        response = await self._lwa.call(
            lambda: self._call("GET", path, operation, params=params, authorized=True)
        )
        body = json_body(response)
        if not isinstance(body, dict) or not isinstance(body.get("payload"), dict):
            raise TransientError(f"{self.name}: {operation} answered without a payload object")
        return body

    async def _call(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        authorized: bool = False,
    ) -> httpx.Response:
        headers = {"x-amz-access-token": await self._lwa.get()} if authorized else {}
        return await self.request(method, url, scope=operation, params=params, data=data, headers=headers)

    def rate_limit_info(self, response: httpx.Response, scope: str) -> RateLimitInfo | None:
        return self._readings.read(response, scope)

    def failure(self, response: httpx.Response, info: RateLimitInfo | None) -> Exception | None:
        if response.is_success:
            return None
        body = json_body(response)
        message = f"HTTP {response.status_code}"
        if isinstance(body, dict) and isinstance(body.get("errors"), list):
            message = "; ".join(
                f"{e.get('code')}: {e.get('message')}" for e in body["errors"] if isinstance(e, dict)
            )
        elif isinstance(body, dict) and "error" in body:  # the LWA token endpoint's OAuth shape
            message = str(body.get("error_description") or body["error"])
        if response.status_code == 403:
            return AccessDenied(f"{self.name}: {message}")
        return classify(response.status_code, f"{self.name}: {message}", info.retry_after if info else None)
