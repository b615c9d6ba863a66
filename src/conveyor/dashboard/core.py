"""What every dashboard route shares: settings, the signed-in viewer, templates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from ..api.auth import Authenticator, Caller
from ..api.redact import redact, redact_text
from ..api.service import Jobs
from ..app import Conveyor
from ..backends.base import JobFilter
from ..job import JobState
from .session import COOKIE, Session, Sessions

HERE = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    """`failure_threshold`: the alert banner shows when more than this share of the
    last `alert_window` finished jobs failed. `session_lifetime` is in seconds."""

    failure_threshold: float = 0.20
    alert_window: int = 50
    session_lifetime: float = 8 * 3600
    events_interval: float = 0.5


class LoginRequired(Exception):
    """Raised by the page guard; answered with a redirect to the login page."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in caller of one request, with what every page template needs."""

    caller: Caller
    session: Session


class Dashboard:
    """What the routes share: the app, the caller-scoped job service, sessions and templates."""

    def __init__(self, app: Conveyor, auth: Authenticator, config: DashboardConfig) -> None:
        self.app = app
        self.jobs = Jobs(app)
        self.config = config
        self.sessions = Sessions(auth, lifetime=config.session_lifetime)
        # Every string a template prints passes the API's redaction rules: messages, errors,
        # logs and tracebacks as well as payloads (which `pretty` already redacts by key).
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=True,
            finalize=_redacted,
        )
        self.env.filters["when"] = when
        self.env.filters["pretty"] = pretty

    async def viewer(self, request: Request) -> Viewer:
        found = await self.sessions.caller(request.cookies.get(COOKIE))
        if found is None:
            raise LoginRequired
        return Viewer(*found)

    def render(self, request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(base=base(request), **context)
        return HTMLResponse(html, status_code=status_code)

    async def page(self, request: Request, viewer: Viewer, name: str, **context: Any) -> HTMLResponse:
        """A signed-in page: the caller, its CSRF token and the failure-rate alert come with it."""
        return self.render(
            request,
            name,
            viewer=viewer.caller,
            csrf=viewer.session.csrf,
            alert=await self.failure_alert(viewer.caller),
            **context,
        )

    async def failure_alert(self, caller: Caller) -> str | None:
        """A warning when too many of the most recent finished jobs failed, else None."""
        recent = JobFilter(states=[JobState.COMPLETED, JobState.FAILED])
        page = await self.jobs.page(caller, recent, limit=self.config.alert_window)
        if not page.jobs:
            return None
        failed = sum(job.state is JobState.FAILED for job in page.jobs)
        rate = failed / len(page.jobs)
        if rate <= self.config.failure_threshold:
            return None
        return (
            f"{failed} of the last {len(page.jobs)} finished jobs failed ({rate:.0%}, "
            f"alert above {self.config.failure_threshold:.0%})."
        )


def _redacted(value: Any) -> Any:
    """Plain strings only: markup a template marked safe is the dashboard's own."""
    return redact_text(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def when(at: float | None) -> str:
    if at is None:
        return ""
    try:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError, OSError):  # a record stored before options were bounded
        return "(invalid time)"


def pretty(value: Any) -> str:
    """JSON for people, with secrets redacted as the API does."""
    return json.dumps(redact(value), indent=2, sort_keys=True, default=str)


def base(request: Request) -> str:
    """The dashboard's own prefix, whatever it is mounted under."""
    return str(request.scope.get("root_path", "")).rstrip("/")
