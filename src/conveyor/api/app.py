"""`create_api`: one FastAPI app per Conveyor app, mountable inside any ASGI app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ..app import Conveyor
from ..errors import (
    BackendError,
    BackendUnavailable,
    ConfigurationError,
    InvalidStateTransition,
    JobNotFound,
    PayloadError,
    TenantForbidden,
    UnknownJobType,
)
from .auth import AuthConfig, Authenticator
from .body_guard import ENVELOPE_BYTES, BodyGuard
from .context import ApiContext
from .routes_jobs import job_routes
from .routes_seeds import seed_routes
from .routes_system import system_routes
from .service import Jobs
from .shedding import DEFAULT_MAX_IN_FLIGHT, LoadShedder
from .tokens import Scope, TokenStorage, TokenStore, default_auth_db
from .views import Unshowable

log = logging.getLogger("conveyor.api")

UNPROCESSABLE = 422  # named _ENTITY or _CONTENT depending on the Starlette version
Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]

_STATUS: list[tuple[type[Exception], int]] = [
    (JobNotFound, status.HTTP_404_NOT_FOUND),
    (InvalidStateTransition, status.HTTP_409_CONFLICT),
    (UnknownJobType, UNPROCESSABLE),
    (PayloadError, UNPROCESSABLE),
    (TenantForbidden, status.HTTP_403_FORBIDDEN),
    (Unshowable, UNPROCESSABLE),
    (ConfigurationError, UNPROCESSABLE),
]


def create_api(
    app: Conveyor,
    *,
    auth: AuthConfig | TokenStorage | None = None,
    events_interval: float = 0.5,
    title: str = "Conveyor",
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
) -> FastAPI:
    """The HTTP API of `app`.

    `auth` is where tokens are checked: an `AuthConfig`, a token storage, or
    None for a `TokenStore` at the default place (`CONVEYOR_AUTH_DB`, else
    beside the SQLite jobs file, else the working directory).
    `max_in_flight` requests at once are served (event streams and health checks
    aside); past it, 503 with Retry-After at once rather than an ever longer queue.
    `events_interval` (seconds) is how long an `/api/events` stream gathers job
    events into one send after a change: a job that changes often is read once per interval.
    """
    if events_interval <= 0:
        raise ConfigurationError("events_interval must be > 0 seconds")
    if auth is None:
        auth = TokenStore(default_auth_db(app.settings.url))
    config = auth if isinstance(auth, AuthConfig) else AuthConfig(tokens=auth)
    ctx = ApiContext(app=app, auth=Authenticator(config), jobs=Jobs(app), events_interval=events_interval)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await app.close()  # the backend of this loop; only runs when this app is the top-level one

    api = FastAPI(
        title=title,
        version=_version(),
        description="Watch and steer Conveyor jobs. Every endpoint but /healthz and /readyz needs"
        " `Authorization: Bearer <token>` (see `conveyor tokens create`).",
        lifespan=lifespan,
        # Swagger UI and ReDoc would load scripts from a CDN on the dashboard's origin; the
        # document itself is served below, to tokens only, for any local OpenAPI viewer.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    read_token = ctx.auth.require(Scope.READ)

    @api.get("/openapi.json", include_in_schema=False, dependencies=[Depends(read_token)])
    async def openapi_document() -> JSONResponse:
        return JSONResponse(api.openapi())

    @api.middleware("http")
    async def no_sniffing_no_caching(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Job data is private and changes every second: never guessed at as HTML, never cached."""
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    api.add_middleware(BodyGuard, auth=ctx.auth, max_bytes=app.settings.max_payload_bytes + ENVELOPE_BYTES)
    api.add_middleware(LoadShedder, max_in_flight=max_in_flight)  # outermost: sheds before any work
    for error, code in _STATUS:
        api.add_exception_handler(error, _reply(code))
    api.add_exception_handler(RequestValidationError, _invalid_request)
    api.add_exception_handler(BackendUnavailable, _backend_failed(status.HTTP_503_SERVICE_UNAVAILABLE))
    api.add_exception_handler(BackendError, _backend_failed(status.HTTP_500_INTERNAL_SERVER_ERROR))
    api.include_router(seed_routes(ctx))
    api.include_router(job_routes(ctx))
    api.include_router(system_routes(ctx))
    # The web dashboard (conveyor.dashboard) shares this app's tokens and failed-login brake.
    from ..dashboard import DashboardConfig, create_dashboard

    dashboard_config = DashboardConfig(events_interval=events_interval)
    api.mount("/dashboard", create_dashboard(app, auth=ctx.auth, config=dashboard_config))
    return api


def _reply(code: int) -> Handler:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc) or type(exc).__name__}, status_code=code)

    return handler


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 without the offending input: it echoes bodies of any size, and a value such as
    `Infinity` (which the JSON parser accepts) cannot be written back as JSON at all."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=UNPROCESSABLE)


def _backend_failed(code: int) -> Handler:
    """Storage errors are logged in full but answered vaguely: they can name files and hosts."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s: %s", request.method, request.url.path, exc)
        detail = "the job backend is unavailable" if code == 503 else "the job backend failed"
        return JSONResponse({"detail": detail}, status_code=code)

    return handler


def _version() -> str:
    try:
        return version("conveyor-jobs")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"
