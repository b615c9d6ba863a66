"""Request bodies are bounded, and an API body is read only for a caller allowed to send one.

FastAPI reads and parses a body before the route's dependencies run, so an
anonymous client could make the server hold and parse any number of large
bodies, each answered 401 only afterwards, and a read token learnt whether
its body was valid before being told it may not write. This ASGI middleware
sits in front: a body over the limit is refused with 413 (by its
Content-Length, or as soon as the streamed bytes pass it), and a request with
a body under `/api/` must first present a valid token of write scope or
above (every API route that takes a body needs at least that); the token it
checked is handed to the route, which then checks the route's exact scope.
"""

from __future__ import annotations

import contextlib

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as Scope_

from .auth import VOUCHED, Authenticator, Refusal
from .tokens import Scope

ENVELOPE_BYTES = 64 * 1024
"""Room for a body's options and JSON syntax around the largest payload the app accepts."""
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLarge(Exception):
    pass


class BodyGuard:
    def __init__(
        self, app: ASGIApp, *, auth: Authenticator, max_bytes: int, api_prefix: str = "/api/"
    ) -> None:
        self.app = app
        self.auth = auth
        self.max_bytes = max_bytes
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        if _relative_path(scope).startswith(self.api_prefix):
            refusal = await self._vouch(scope, headers)
            if refusal is not None:
                await _answer(refusal.status, refusal.detail, refusal.headers)(scope, receive, send)
                return
        await self._bounded(scope, receive, send)

    async def _too_large(self, scope: Scope_, receive: Receive, send: Send) -> None:
        await _answer(413, f"the request body is over the {self.max_bytes:,}-byte limit")(
            scope, receive, send
        )

    async def _vouch(self, scope: Scope_, headers: dict[str, str]) -> Refusal | None:
        client = scope.get("client")
        address = client[0] if client else "unknown"
        kind, _, token = headers.get("authorization", "").partition(" ")
        found = await self.auth.identify(address, token.strip() if kind.lower() == "bearer" else None)
        if isinstance(found, Refusal):
            return found
        if not found.scope.allows(Scope.WRITE):
            return Refusal(403, f"this needs a token with scope {Scope.WRITE}", {})
        scope.setdefault("state", {})[VOUCHED] = found
        return None

    async def _bounded(self, scope: Scope_, receive: Receive, send: Send) -> None:
        """Pass the request on, counting its body as it streams in; too much is answered 413.

        Whatever the app makes of the cut-off body (FastAPI answers 400) is dropped unsent.
        """
        seen = 0
        too_large = False

        async def counted() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    raise BodyTooLarge
            return message

        async def unless_too_large(message: Message) -> None:
            if not too_large:
                await send(message)

        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, counted, unless_too_large)
        if too_large:
            await self._too_large(scope, receive, send)


def _relative_path(scope: Scope_) -> str:
    """The path inside this app, whether or not a host app mounted it under a prefix."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _answer(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    safe = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    return JSONResponse({"detail": detail}, status_code=status, headers={**(headers or {}), **safe})
