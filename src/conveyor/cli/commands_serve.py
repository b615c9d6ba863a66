"""`conveyor serve`: the HTTP API under uvicorn."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import click

from ..api.shedding import DEFAULT_MAX_IN_FLIGHT
from ..child import stop_when_orphaned
from .commands_tokens import token_store
from .loading import Target, mask_url

if TYPE_CHECKING:
    import uvicorn

SHUTDOWN_GRACE_SECONDS = 5
"""On SIGTERM, open event streams get this long to end before uvicorn closes them."""


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port.")
@click.option(
    "--events-interval",
    default=0.5,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="Seconds each /api/events stream gathers job events into one send.",
)
@click.option(
    "--max-in-flight",
    default=DEFAULT_MAX_IN_FLIGHT,
    show_default=True,
    type=click.IntRange(min=1),
    help="Requests served at once (event streams aside); more are answered 503 with Retry-After.",
)
@click.option(
    "--forwarded-allow-ips",
    metavar="ADDRESSES",
    default=None,
    help="Comma-separated proxy addresses (or '*') whose X-Forwarded-For and X-Forwarded-Proto"
    " are believed. Default: none; every client is the address that connected, so nobody can"
    " forge an address in the access log or dodge the failed-login brake with a header.",
)
@click.option(
    "--stop-with-parent",
    is_flag=True,
    hidden=True,
    help="Shut down once the process that started this one exits (for launchers).",
)
@click.pass_obj
def serve(
    target: Target,
    host: str,
    port: int,
    events_interval: float,
    max_in_flight: int,
    forwarded_allow_ips: str | None,
    stop_with_parent: bool,
) -> None:
    """Serve the HTTP API: the seed status endpoints, jobs, queues, events, /metrics.

    Every endpoint but /healthz and /readyz needs a token from `conveyor tokens
    create`. With --app, jobs can also be enqueued over HTTP; without it the API
    reads and steers jobs from --url alone. The OpenAPI document is at
    /openapi.json (any token).
    """
    import uvicorn

    from ..api import create_api

    app = target.app()
    store = token_store(app.settings.url)
    if not store.list():
        click.echo(
            "warning: no API tokens yet; create one with `conveyor tokens create --scope read`", err=True
        )
    api = create_api(app, auth=store, events_interval=events_interval, max_in_flight=max_in_flight)
    click.echo(f"conveyor API on http://{host}:{port} for {mask_url(app.settings.url)}")
    config = uvicorn.Config(
        api,
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        # uvicorn believes forwarded headers from 127.0.0.1 unless told otherwise.
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips or "",
    )
    asyncio.run(_serve(uvicorn.Server(config), os.getppid() if stop_with_parent else None))


async def _serve(server: uvicorn.Server, parent: int | None) -> None:
    """uvicorn's own loop and signal handling, plus a watch on the parent when asked for."""

    def stop() -> None:
        server.should_exit = True

    orphaned = None if parent is None else asyncio.create_task(stop_when_orphaned(stop, parent))
    try:
        await server.serve()
    finally:
        if orphaned is not None:
            orphaned.cancel()
