"""What every Selling Partner API client needs alike: Login with Amazon tokens and rate readings.

The Listings Items connector and the Orders/Inventory client talk to
different APIs behind one login and one throttling scheme, so both keep
their access token and their per-operation rates here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from conveyor import Clock, Unrecoverable
from conveyor.commerce.secrets import Credentials

from .base import RateLimitInfo

T = TypeVar("T")
TOKEN_MARGIN = 60.0
"""Seconds before its announced expiry that an access token is refreshed anyway."""


class AccessDenied(Unrecoverable):
    """A 403: bad credentials, or an access token that expired early; `LwaTokens.call` tells them apart."""


class LwaTokens:
    """One seller's access token from its refresh token, shared by concurrent calls, renewed when due.

    `post` sends the token request (form fields in, response out) through the
    client's own error handling.
    """

    def __init__(
        self,
        credentials: Credentials,
        post: Callable[[dict[str, str]], Awaitable[httpx.Response]],
        clock: Clock,
    ) -> None:
        credentials.require("client_id", "client_secret", "refresh_token")
        self._credentials = credentials
        self._post = post
        self._clock = clock
        self._token: tuple[str, float] | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        async with self._lock:  # concurrent calls share one refresh
            now = self._clock.now()
            if self._token is None or self._token[1] <= now:
                self._token = await self._fetch(now)
            return self._token[0]

    async def call(self, send: Callable[[], Awaitable[T]]) -> T:
        """`send` once; a 403 on a token fetched earlier (it may have expired early) gets one retry
        with a fresh token, while a 403 on a fresh token is the credentials' own refusal."""
        cached = self._token is not None
        try:
            return await send()
        except AccessDenied:
            if not cached:
                raise
            self._token = None
            return await send()

    async def _fetch(self, now: float) -> tuple[str, float]:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._credentials["refresh_token"],
            "client_id": self._credentials["client_id"],
            "client_secret": self._credentials["client_secret"],
        }
        body = (await self._post(form)).json()
        return body["access_token"], now + float(body.get("expires_in", 3600)) - TOKEN_MARGIN


class RateReadings:
    """Rate-limit readings from SP-API answers.

    A 429 carries no rate header, so its wait is one token at the rate the
    operation last reported in `x-amzn-RateLimit-Limit` (`default_retry_after`
    before any report).
    """

    def __init__(self, clock: Clock, default_retry_after: float) -> None:
        self._clock = clock
        self._default_retry_after = default_retry_after
        self._rates: dict[str, float] = {}

    def read(self, response: httpx.Response, scope: str) -> RateLimitInfo | None:
        rate = response.headers.get("x-amzn-RateLimit-Limit")
        if rate is not None:
            self._rates[scope] = float(rate)
            return RateLimitInfo(limit=float(rate), scope=scope)
        if response.status_code == 429:
            known = self._rates.get(scope)
            wait = 1.0 / known if known else self._default_retry_after
            return RateLimitInfo(
                remaining=0, reset_at=self._clock.now() + wait, retry_after=wait, scope=scope
            )
        return None
