"""What every simulator shares: request counting, the admission gate, fault injection.

A request goes through one pipeline: count it, draw its fault, ask the
simulator's `admit` (auth and rate limits, in the order that API uses), then
either answer with the injected fault or run the handler. Handlers answer
errors by raising `Reply` with an API-shaped response, so the routes stay
readable and every error body comes from one place per simulator.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.routing import Match, Route

from conveyor import Clock, SystemClock

from .faults import Fault, FaultConfig, FaultInjector, FaultKind


@dataclass
class Counters:
    """Request statistics a test (or the demo) reads after the fact."""

    total: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    rate_limited: int = 0
    """Throttle answers sent (429, or Shopify's THROTTLED body), whatever the cause."""
    violations: int = 0
    """Requests that arrived while the real limit was exhausted (injected throttles excluded)."""
    faults: Counter[str] = field(default_factory=Counter)


class Reply(Exception):
    """Raised by a handler to answer with a ready, API-shaped response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class Gate:
    """The admission decision: a denial (auth or limit), and headers for whatever answer follows."""

    denial: Response | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


class Sandbox(ABC):
    """Base of the simulators: owns the FastAPI app, the clock, the counters and the faults."""

    name: ClassVar[str]
    api_root: ClassVar[str] = ""
    """Path prefix a connector's base URL must include (Jumpseller's `/v1`)."""
    exempt: ClassVar[frozenset[str]] = frozenset()
    """Endpoints beside the API proper (token, quota reports): never faulted, so a forced fault hits
    the call a test means."""

    def __init__(self, faults: FaultConfig, clock: Clock | None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.counters = Counters()
        self.faults = FaultInjector(faults)
        self.app = FastAPI(title=f"{self.name} sandbox", docs_url=None, redoc_url=None)
        self.app.state.sandbox = self
        self.routes(self.app)
        self.app.add_exception_handler(Reply, _reply)
        self.app.add_exception_handler(HTTPException, self._http_exception)
        self.app.add_exception_handler(RequestValidationError, self._invalid_request)
        self.app.add_middleware(BaseHTTPMiddleware, dispatch=self._pipeline)

    @abstractmethod
    def routes(self, app: FastAPI) -> None: ...

    @abstractmethod
    def admit(self, request: Request, endpoint: str) -> Gate:
        """Authenticate and apply rate limits, in the order the real API does."""

    @abstractmethod
    def error(self, status: int, message: str) -> Response:
        """An error in this API's body shape (unknown route, injected 5xx, bad query)."""

    @abstractmethod
    def throttled(self, endpoint: str) -> Response:
        """This API's throttle answer; must count itself in `counters.rate_limited`."""

    def decorate(self, response: Response, gate: Gate) -> None:
        """Add the gate's headers; APIs that send limit headers only on some statuses override."""
        for name, value in gate.headers.items():
            response.headers.setdefault(name, value)

    def endpoint_of(self, scope: Mapping[str, Any]) -> str:
        for route in self.app.router.routes:
            if isinstance(route, Route) and route.matches(dict(scope))[0] is Match.FULL:
                return f"{scope['method']} {route.path_format}"
        return f"{scope['method']} <unknown>"

    async def read_json(self, request: Request) -> Any:
        try:
            return json.loads(await request.body() or b"null")
        except ValueError as e:
            raise Reply(self.error(400, "Invalid JSON in request body")) from e

    async def _pipeline(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        endpoint = self.endpoint_of(request.scope)
        self.counters.total += 1
        self.counters.by_endpoint[endpoint] += 1
        fault = Fault(None) if endpoint in self.exempt else self.faults.draw()
        if fault.latency:
            await asyncio.sleep(fault.latency)
        gate = self.admit(request, endpoint)
        response = gate.denial
        if response is None and fault.kind is not None:
            self.counters.faults[fault.kind] += 1
            response = await self._inject(fault, request, endpoint)
        if response is None:
            response = await call_next(request)
        self.decorate(response, gate)
        self.counters.by_status[response.status_code] += 1
        return response

    async def _inject(self, fault: Fault, request: Request, endpoint: str) -> Response | None:
        if fault.kind is FaultKind.ERROR:
            return self.error(fault.status, "Internal Server Error")
        if fault.kind is FaultKind.THROTTLE:
            return self.throttled(endpoint)
        await request.body()  # read now: the client will have hung up when a "late" request is processed
        await asyncio.sleep(self.faults.config.timeout_delay)
        if self.faults.config.timeout_mode == "late":
            return None
        return self.error(504, "Gateway Timeout")

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return self.error(exc.status_code, str(exc.detail))

    async def _invalid_request(self, request: Request, exc: Exception) -> Response:
        return self.error(400, "Invalid request parameters")


async def _reply(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Reply)
    return exc.response
