"""Who is calling: bearer tokens, scopes, tenant binding, and a brake on guessing tokens.

A tenant-bound caller must not learn that other tenants exist: their jobs
answer 404 exactly like ids that were never issued, and listings and counts
are narrowed to the caller's tenant before they reach the backend.
"""

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..backends.base import JobFilter
from ..clock import Clock, SystemClock
from ..job import Job
from .tokens import Scope, TokenInfo, TokenStorage, token_id_of


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Where tokens live and how hard repeated failures are braked.

    Failed attempts are counted per client address and per token id (the
    public part of `cvy_<id>_<secret>`). After `max_failures` of either within
    `window` seconds, further failed attempts from that address, or against
    that token id, are answered 429 for `lockout` seconds, doubling with every
    further failure up to `max_lockout`. A valid token is never refused: a
    shared address (an office behind one NAT) with one guesser on it does not
    lock out everyone else, nor does someone guessing at a token's id lock out
    its holder.
    """

    tokens: TokenStorage
    clock: Clock = field(default_factory=SystemClock)
    max_failures: int = 5
    window: float = 60.0
    lockout: float = 2.0
    max_lockout: float = 900.0
    max_tracked_clients: int = 10_000


@dataclass
class _Client:
    failures: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0


class FailureThrottle:
    """Memory of failed authentications per address and per token id, bounded in size."""

    def __init__(self, config: AuthConfig) -> None:
        self._config = config
        self._clients: dict[str, _Client] = {}

    def blocked_for(self, *keys: str) -> float:
        """Seconds the longest-braked of `keys` must still wait (0 when none is braked)."""
        now = self._config.clock.now()
        waits = [c.blocked_until - now for k in keys if (c := self._clients.get(k)) is not None]
        return max([0.0, *waits])

    def record_failure(self, *keys: str) -> None:
        config = self._config
        now = config.clock.now()
        for key in keys:
            client = self._clients.setdefault(key, _Client())
            client.failures.append(now)
            while client.failures and client.failures[0] <= now - config.window:
                client.failures.popleft()
            excess = len(client.failures) - config.max_failures
            if excess >= 0:
                client.blocked_until = now + min(config.max_lockout, config.lockout * 2**excess)
        self._forget_old(now)

    def _forget_old(self, now: float) -> None:
        if len(self._clients) <= self._config.max_tracked_clients:
            return
        horizon = now - self._config.window
        for key, client in list(self._clients.items()):
            if client.blocked_until <= now and (not client.failures or client.failures[-1] <= horizon):
                del self._clients[key]
        while len(self._clients) > self._config.max_tracked_clients:
            del self._clients[next(iter(self._clients))]


def brake_keys(address: str, token: str | None) -> tuple[str, ...]:
    """What one failed attempt counts against: its address, and the token id it named, if any."""
    token_id = token_id_of(token) if token else None
    return (f"address:{address}",) if token_id is None else (f"address:{address}", f"token:{token_id}")


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request's token, and what it may see."""

    token: TokenInfo

    @property
    def tenant(self) -> str | None:
        return self.token.tenant

    def sees(self, job: Job) -> bool:
        return self.tenant is None or job.tenant == self.tenant

    def sees_child(self, job: Job) -> bool:
        """Inside a flow the caller may see: the tenant's own children and those of no tenant."""
        return job.tenant is None or self.sees(job)

    def narrow(self, job_filter: JobFilter) -> JobFilter | None:
        """The filter limited to the caller's tenant; None if it asks for another tenant's jobs."""
        if self.tenant is None:
            return job_filter
        if job_filter.tenant not in (None, self.tenant):
            return None
        return replace(job_filter, tenant=self.tenant)


Dependency = Callable[..., Awaitable[Caller]]


VOUCHED = "conveyor_token"
"""Where the body guard leaves the token it checked, so the route does not check it twice."""
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    detail: str
    headers: dict[str, str]


class Authenticator:
    """Builds the FastAPI dependencies that guard each endpoint."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self.throttle = FailureThrottle(config)
        self._bearer = HTTPBearer(
            auto_error=False,
            scheme_name="token",
            description="A token from `conveyor tokens create`, sent as `Authorization: Bearer <token>`.",
        )

    def require(self, scope: Scope, *, untenanted: bool = False) -> Dependency:
        """A dependency admitting tokens of `scope` or above (and only unbound ones if `untenanted`)."""
        bearer = self._bearer

        async def caller(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> Caller:
            token = await self._authenticate(request, credentials)
            if not token.scope.allows(scope):
                raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs a token with scope {scope}")
            if untenanted and token.tenant is not None:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, "this covers every tenant; use a token not bound to a tenant"
                )
            return Caller(token)

        return caller

    def still_valid(self, request: Request) -> Callable[[], Awaitable[bool]]:
        """For a response that outlives its request (an event stream): is its token still valid?"""
        token = request.headers.get("authorization", "").partition(" ")[2].strip()

        async def check() -> bool:
            return await asyncio.to_thread(self.config.tokens.verify, token) is not None

        return check

    async def _authenticate(
        self, request: Request, credentials: HTTPAuthorizationCredentials | None
    ) -> TokenInfo:
        vouched = getattr(request.state, VOUCHED, None)  # already checked before the body was read
        if isinstance(vouched, TokenInfo):
            return vouched
        address = request.client.host if request.client else "unknown"
        found = await self.identify(address, None if credentials is None else credentials.credentials)
        if isinstance(found, Refusal):
            raise HTTPException(found.status, found.detail, headers=found.headers)
        return found

    async def identify(self, address: str, token: str | None) -> TokenInfo | Refusal:
        """The token's record, or why the request is refused (a wrong token counts as a failure).

        A valid token is let in whatever the brake says; a failure while its address or the
        token id it names is braked is answered 429 rather than 401, so that a guesser
        learns to wait.
        """
        if not token:  # not a guess: nothing to count, but a braked address still waits
            wait = self.throttle.blocked_for(*brake_keys(address, None))
            return self._refusal(wait, "missing bearer token")
        info = await asyncio.to_thread(self.config.tokens.verify, token)
        if info is not None:
            return info
        keys = brake_keys(address, token)
        self.throttle.record_failure(*keys)
        return self._refusal(self.throttle.blocked_for(*keys), "invalid or revoked token")

    @staticmethod
    def _refusal(wait: float, detail: str) -> Refusal:
        if wait > 0:
            return Refusal(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "too many failed authentications; try again later",
                {"Retry-After": str(math.ceil(wait))},
            )
        return Refusal(status.HTTP_401_UNAUTHORIZED, detail, _CHALLENGE)
