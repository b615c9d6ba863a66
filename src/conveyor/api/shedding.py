"""Past a bound of requests in flight, answer 503 with Retry-After at once instead of queueing.

A server that takes every request when it cannot keep up makes every caller
wait longer and longer (minutes, measured before this existed), and a client
that gives up has still cost the work. Refusing the excess at once keeps the
latency of the requests it does take bounded and tells well-behaved clients
(and load balancers) to come back. Event streams are long-lived by design and
are not counted; neither are health checks, which must answer under load.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

DEFAULT_MAX_IN_FLIGHT = 64
RETRY_AFTER = 1
_NOT_COUNTED = ("/healthz", "/readyz")


class LoadShedder:
    def __init__(self, app: ASGIApp, *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _counted(scope):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            await _BUSY(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def _counted(scope: Scope) -> bool:
    path: str = scope["path"]
    accept = dict(scope.get("headers") or []).get(b"accept", b"")
    return not (path.endswith(_NOT_COUNTED) or path.endswith("/events") or b"text/event-stream" in accept)


_BUSY = JSONResponse(
    {"detail": "the server is busy; try again shortly"},
    status_code=503,
    headers={"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"},
)
