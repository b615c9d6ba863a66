"""`create_dashboard`: the web dashboard as its own ASGI app, mounted at /dashboard by `create_api`.

Pages are rendered on the server with Jinja2 (autoescape on for every
template, so job text is always text). The only script is a static file, which
lets the Content-Security-Policy forbid inline scripts outright.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from ..api.auth import AuthConfig, Authenticator
from ..api.tokens import TokenStorage, TokenStore, default_auth_db
from ..app import Conveyor
from ..errors import ConfigurationError, InvalidStateTransition, JobNotFound, PayloadError
from .actions import action_routes
from .auth_routes import auth_routes
from .core import HERE, Dashboard, DashboardConfig, LoginRequired, base
from .pages import page_routes

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def create_dashboard(
    app: Conveyor,
    *,
    auth: Authenticator | AuthConfig | TokenStorage | None = None,
    config: DashboardConfig | None = None,
) -> FastAPI:
    """The dashboard of `app`; mount it anywhere (`host.mount("/dashboard", create_dashboard(app))`).

    Pass the API's `Authenticator` to share its brake on failed logins; otherwise
    tokens are checked as `create_api` would (the default token store).
    """
    config = config or DashboardConfig()
    if not 0 <= config.failure_threshold <= 1:
        raise ConfigurationError("failure_threshold must be between 0 and 1")
    if auth is None:
        auth = TokenStore(default_auth_db(app.settings.url))
    if not isinstance(auth, Authenticator):
        auth = Authenticator(auth if isinstance(auth, AuthConfig) else AuthConfig(tokens=auth))
    dash = Dashboard(app, auth, config)

    web = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    web.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @web.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        if response.media_type == "text/html":
            response.headers["Cache-Control"] = "no-store"
        return response

    @web.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"{base(request)}/login", status_code=303)

    @web.exception_handler(JobNotFound)
    async def not_found(request: Request, exc: JobNotFound) -> Response:
        return dash.render(request, "error.html", 404, title="Not found", message=str(exc))

    @web.exception_handler(PayloadError)
    async def bad_request(request: Request, exc: PayloadError) -> Response:
        """A hand-edited address (a cursor from another page, a broken filter) gets a page, not a 500."""
        return dash.render(request, "error.html", 400, title="Bad request", message=str(exc))

    @web.exception_handler(InvalidStateTransition)
    async def conflict(request: Request, exc: InvalidStateTransition) -> Response:
        return dash.render(request, "error.html", 409, title="Not possible now", message=str(exc))

    web.include_router(auth_routes(dash))
    web.include_router(page_routes(dash))
    web.include_router(action_routes(dash))
    return web
