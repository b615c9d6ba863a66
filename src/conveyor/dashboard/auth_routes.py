"""Login and logout: an API token in a form becomes a session cookie.

No `from __future__ import annotations` here: FastAPI evaluates string
annotations in the module's globals, where `dash` (a closure variable in
`Depends(dash.viewer)`) does not exist, and would take `viewer` for a query
parameter.
"""

import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from .core import Dashboard, Viewer, base
from .session import COOKIE, LOGIN_CSRF_COOKIE, same_token


def auth_routes(dash: Dashboard) -> APIRouter:
    router = APIRouter()

    def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=base(request) or "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def login_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
        """The form carries a fresh CSRF token, echoed by a cookie, so nobody can log you in as them."""
        csrf = secrets.token_urlsafe(32)
        response = dash.render(request, "login.html", status_code, csrf=csrf, error=error)
        set_cookie(request, response, LOGIN_CSRF_COOKIE, csrf, 3600)
        return response

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        return login_page(request)

    @router.post("/login")
    async def login(
        request: Request, token: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = ""
    ) -> Response:
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not same_token(expected, csrf):
            return login_page(request, "The form expired; please sign in again.", 403)
        address = request.client.host if request.client else "unknown"
        session_id = await dash.sessions.login(token, address)
        if not isinstance(session_id, str):
            if session_id == 0:
                return login_page(request, "That token is not valid.", 401)
            message = f"Too many failed sign-ins; try again in {math.ceil(session_id)} s."
            response = login_page(request, message, 429)
            response.headers["Retry-After"] = str(math.ceil(session_id))
            return response
        response = RedirectResponse(f"{base(request)}/", status_code=303)
        set_cookie(request, response, COOKIE, session_id, int(dash.config.session_lifetime))
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=base(request) or "/")
        return response

    @router.post("/logout")
    async def logout(
        request: Request, viewer: Annotated[Viewer, Depends(dash.viewer)], csrf: Annotated[str, Form()] = ""
    ) -> Response:
        if not same_token(viewer.session.csrf, csrf):
            return dash.render(request, "error.html", 403, title="Forbidden", message="Missing CSRF token.")
        dash.sessions.logout(request.cookies.get(COOKIE))
        response = RedirectResponse(f"{base(request)}/login", status_code=303)
        response.delete_cookie(COOKIE, path=base(request) or "/")
        return response

    return router
