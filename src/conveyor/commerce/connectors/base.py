"""The part every connector shares: one pooled httpx client, rate-limit reporting, failure classes.

A connector turns each HTTP answer into exactly one of: a result, or the
engine's outcome exceptions — `Unrecoverable` (bad credentials, invalid
product: retrying cannot help), `RateLimited(retry_after)` (wait without
spending an attempt) — or `TransientError` (5xx, timeouts, dropped
connections: retry with back-off). The class is decided by HTTP status and
structured body fields, never by reading message text; the API's own message
is carried along for people.
"""

from __future__ import annotations

import asyncio
import inspect
import ssl
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from functools import cache
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

import httpx

from conveyor import Clock, JobContext, RateLimited, SystemClock, Unrecoverable

from .models import Listing, RemoteProduct


class TransientError(Exception):
    """A failure worth retrying with back-off: 5xx, timeouts, connection errors."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CredentialsRejected(Unrecoverable):
    """The API refused the account's credentials or scopes (401/403): no product of it can go through."""


@dataclass(frozen=True)
class RateLimitInfo:
    """What one answer said about the caller's remaining allowance."""

    remaining: float | None = None
    """Calls left now (for Shopify, calls like the last one the cost bucket can still afford)."""
    reset_at: float | None = None
    """POSIX time when a call is allowed again once `remaining` is 0 (upper bound if the API is silent)."""
    retry_after: float | None = None
    """Set when the API refused: seconds to wait before the next call."""
    limit: float | None = None
    """Window or bucket size in calls; for Amazon, the operation's rate in requests per second."""
    scope: str = ""
    """Which limit this is: `per_second`, `per_minute`, `ban`, `cost`, `daily`, or an Amazon operation."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often a connector repeats a request itself before the failure goes to the engine.

    A job that fails restarts its whole batch, so a lone 5xx or 429 is far
    cheaper to absorb here. Only requests that cannot write twice are repeated
    after a 5xx or timeout (GET/PUT/DELETE, or a call marked idempotent); a
    429 means the API refused the call, so any request may be sent again once
    its short wait is over. Longer waits go to the engine as `RateLimited`.
    """

    transient_tries: int = 3
    """Tries in all for an idempotent request that meets 5xx, timeouts or dropped connections."""
    backoff: float = 0.5
    """Seconds before the first repeat; doubled for each further one."""
    rate_limit_tries: int = 1
    """Tries in all for a request the API refused with 429 (1: never repeated here)."""
    rate_backoff: float = 0.05
    """The shortest wait after a refusal, doubled for each further refusal of the same request.

    An API's own wait can be a few milliseconds (Shopify's bucket refills
    one call's cost that fast); requests that all wait exactly that long
    come back together and are refused again.
    """
    max_rate_wait: float = 2.0
    """The longest 429 wait (or pacing wait) spent inside the connector."""

    def rate_wait(self, refusals: int, retry_after: float) -> float:
        """How long to wait after the `refusals`-th refusal of one request that said `retry_after`."""
        return max(retry_after, self.rate_backoff * 2.0 ** (refusals - 1))


DEFAULT_RETRY = RetryPolicy()
ONE_TRY = RetryPolicy(transient_tries=1)
"""Nothing repeated inside the client: every failure goes straight to the job's own retries."""
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class Pacer:
    """Holds back the requests of the connectors sharing it until the API's window has room again.

    The engine's key limiter only decides when jobs start; a running job
    sends many requests, so the connectors of one account in one process
    share a pacer. Once the allowance an answer reports is taken by the
    requests still on the wire, the next request waits for the reset.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.blocked_until = 0.0
        self.in_flight = 0
        """Requests sent through this pacer and not answered yet."""

    def note(self, info: RateLimitInfo) -> None:
        """Close the gate when the allowance left is taken by the requests already on the wire.

        Called while the answered request still counts as in flight, hence the 1.
        """
        if info.remaining is None or info.reset_at is None:
            return
        if info.remaining <= self.in_flight - 1:
            self.blocked_until = max(self.blocked_until, info.reset_at)

    async def wait(self, max_wait: float) -> None:
        """Sleep until the window reopens, or hand a long wait to the engine as `RateLimited`."""
        delay = self.blocked_until - self.clock.now()
        if delay > max_wait:
            raise RateLimited(delay, "the marketplace's rate-limit window is empty")
        if delay > 0:
            await asyncio.sleep(delay)


class RateLimitHook(Protocol):
    """Called with every rate-limit reading; may be a plain function or a coroutine function."""

    def __call__(self, info: RateLimitInfo, /) -> Awaitable[None] | None: ...


def key_limiter_hook(ctx: JobContext) -> RateLimitHook:
    """A hook feeding every reading to the running job's key limiter (`JobContext.feed_limiter`)."""

    async def feed(info: RateLimitInfo) -> None:
        await ctx.feed_limiter(remaining=info.remaining, reset_at=info.reset_at, retry_after=info.retry_after)

    return feed


class HeaderAuth(httpx.Auth):
    """Adds one secret header per request, so the secret is never in the client's default headers."""

    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers[self._name] = self._value
        yield request

    def __repr__(self) -> str:
        return f"HeaderAuth({self._name!r}, ***)"


def classify(status: int, message: str, retry_after: float | None) -> Exception:
    """The exception for a failed answer, from its status alone."""
    if status == 429:
        return RateLimited(retry_after if retry_after is not None else 1.0, message)
    if status >= 500 or status == 408:
        return TransientError(message, status=status)
    if status in (401, 403):
        return CredentialsRejected(message)
    return Unrecoverable(message)


@cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every connector: loading the CA bundle costs ~40 ms per client."""
    return httpx.create_ssl_context()


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class ApiClient(ABC):
    """One API's pooled client: sends requests, reports rate-limit readings, raises outcome classes.

    The marketplace connectors and the clients that only read or ask (catalog
    imports, AI providers) share it; use as `async with` so the pool closes.
    """

    name: ClassVar[str]

    def __init__(
        self,
        *,
        base_url: str,
        timeout: float,
        on_rate_limit: RateLimitHook | None,
        clock: Clock | None,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 10,
        retry: RetryPolicy = DEFAULT_RETRY,
        pacer: Pacer | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self._on_rate_limit = on_rate_limit
        self.retry = retry
        self.pacer = pacer
        self._client = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
            verify=tls_context(),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        scope: str = "",
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one request, repeating it as `retry` allows; raise the outcome class on failure.

        `idempotent` defaults to what the method promises; a read sent as POST
        (a GraphQL query) passes True.
        """
        repeatable = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        transient_left, refusals = self.retry.transient_tries, 0
        while True:
            if self.pacer is not None:
                await self.pacer.wait(self.retry.max_rate_wait)
            try:
                return await self._paced(method, url, scope, json, params, headers, data)
            except TransientError:
                transient_left -= 1
                if not repeatable or transient_left <= 0:
                    raise
                tried = self.retry.transient_tries - transient_left
                await asyncio.sleep(self.retry.backoff * 2 ** (tried - 1))
            except RateLimited as refused:
                refusals += 1
                wait = self.retry.rate_wait(refusals, refused.retry_after)
                if refusals >= self.retry.rate_limit_tries or wait > self.retry.max_rate_wait:
                    if wait == refused.retry_after:
                        raise
                    raise RateLimited(wait, str(refused)) from refused
                await asyncio.sleep(wait)

    async def _paced(
        self,
        method: str,
        url: str,
        scope: str,
        json: Any,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
    ) -> httpx.Response:
        if self.pacer is None:
            return await self._send(method, url, scope, json, params, headers, data)
        self.pacer.in_flight += 1
        try:
            return await self._send(method, url, scope, json, params, headers, data)
        finally:
            self.pacer.in_flight -= 1

    async def _send(
        self,
        method: str,
        url: str,
        scope: str,
        json: Any,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
    ) -> httpx.Response:
        """One request: report its rate-limit reading and raise the outcome class on failure."""
        try:
            response = await self._client.request(
                method, url, json=json, params=params, headers=headers, data=data
            )
        except httpx.TimeoutException as e:
            raise TransientError(f"{self.name}: {method} {url} timed out") from e
        except httpx.TransportError as e:
            raise TransientError(f"{self.name}: {method} {url} failed ({type(e).__name__})") from e
        info = self.rate_limit_info(response, scope)
        if info is not None:
            await self.report(info)
        failure = self.failure(response, info)
        if failure is not None:
            raise failure
        return response

    async def report(self, info: RateLimitInfo) -> None:
        if self.pacer is not None:
            self.pacer.note(info)
        if self._on_rate_limit is not None:
            result = self._on_rate_limit(info)
            if inspect.isawaitable(result):
                await result

    @abstractmethod
    def rate_limit_info(self, response: httpx.Response, scope: str) -> RateLimitInfo | None:
        """What this answer says about the allowance, from the API's own headers or body."""

    @abstractmethod
    def failure(self, response: httpx.Response, info: RateLimitInfo | None) -> Exception | None:
        """The exception this answer means, or None when it is a success."""


class Connector(ApiClient):
    """Base of the marketplace connectors: publishing a listing in three phases."""

    @abstractmethod
    async def create_or_update_product(self, listing: Listing, remote: RemoteProduct | None) -> RemoteProduct:
        """Phase 1 (product data): create the product, or update it when `remote` says it exists."""

    @abstractmethod
    async def upsert_variants(self, listing: Listing, remote: RemoteProduct) -> RemoteProduct:
        """Phase 2: make the marketplace's variants match `listing.variants` (by SKU)."""

    @abstractmethod
    async def add_images(self, listing: Listing, remote: RemoteProduct) -> RemoteProduct:
        """Phase 3: make sure every image of the listing is on the product."""

    async def publish(self, listing: Listing, remote: RemoteProduct | None = None) -> RemoteProduct:
        """All three phases in order; connectors that can do it in one call override this."""
        remote = await self.create_or_update_product(listing, remote)
        remote = await self.upsert_variants(listing, remote)
        return await self.add_images(listing, remote)
