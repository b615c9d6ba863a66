"""Finding the app a command works on, and running its async API from a plain command.

Precedence for the backend URL: `--url`, then `CONVEYOR_URL`, then the app's own
URL, then the default. Admin commands need no app: storage alone is enough to
list, retry or cancel jobs, so an operator can work without the producer's code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import click

from ..app import Conveyor

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Target:
    """The group's global options, resolved lazily so `--help` never imports user code."""

    app_ref: str | None
    url: str | None

    def app(self, *, needs_handlers: bool = False) -> Conveyor:
        if self.app_ref:
            app = load_app(self.app_ref)
        elif needs_handlers:
            raise click.UsageError(
                "this command needs the app that registers the job types:"
                " pass --app module:attribute or set CONVEYOR_APP"
            )
        else:
            app = Conveyor(self.url)
        if self.url:
            app = with_url(app, self.url)
        if needs_handlers and not app.job_types:
            raise click.ClickException(f"the app {self.app_ref!r} registers no job types")
        return app


def with_url(app: Conveyor, url: str) -> Conveyor:
    """Point an app at another database; Settings.load lets the environment win, the CLI must not."""
    if app.settings.url != url:
        app.settings = dataclasses.replace(app.settings, url=url)
    return app


def load_app(ref: str) -> Conveyor:
    """Import `package.module:attribute` (attribute defaults to `app`)."""
    module_name, _, attr = ref.partition(":")
    attr = attr or "app"
    if not module_name or not all(p.isidentifier() for p in [*module_name.split("."), *attr.split(".")]):
        raise _bad_app(f"{ref!r} is not of the form package.module:attribute")
    # Console scripts do not put the working directory on sys.path; `python -m` does.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise _bad_app(
                f"module {module_name!r} not found (run from your project folder or set PYTHONPATH)"
            ) from None
        raise click.ClickException(_import_failure(module_name, exc)) from None
    except Exception as exc:  # noqa: BLE001 - any error in user code becomes one readable line
        raise click.ClickException(_import_failure(module_name, exc)) from None
    value: object = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise _bad_app(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(value, Conveyor):
        raise _bad_app(f"{module_name}:{attr} is a {type(value).__name__}, not a Conveyor app")
    return value


def _bad_app(message: str) -> click.BadParameter:
    """--app is a global option, so the help to point at is the top-level one."""
    ctx = click.get_current_context(silent=True)
    return click.BadParameter(message, ctx=ctx.find_root() if ctx else None, param_hint="--app")


def _import_failure(module_name: str, exc: BaseException) -> str:
    """Name the file and line, since the traceback itself is not shown."""
    where, message = "", str(exc)
    if isinstance(exc, SyntaxError):
        where, message = f" at {Path(exc.filename or '?').name}:{exc.lineno}", exc.msg
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}"
    return f"importing {module_name!r} failed: {type(exc).__name__}: {message}{where}"


def mask_url(url: str) -> str:
    """A URL safe to print in banners and logs: the password becomes '***'."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def run(app: Conveyor, action: Callable[[Conveyor], Awaitable[T]]) -> T:
    """One event loop per command; the backend is closed even when the action fails."""

    async def go() -> T:
        try:
            return await action(app)
        finally:
            await app.close()

    return asyncio.run(go())
