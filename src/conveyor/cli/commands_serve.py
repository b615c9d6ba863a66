"""`conveyor serve`: the HTTP API under uvicorn."""

from __future__ import annotations

import click

from .commands_tokens import token_store
from .loading import Target, mask_url


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
@click.pass_obj
def serve(target: Target, host: str, port: int, events_interval: float) -> None:
    """Serve the HTTP API: the seed status endpoints, jobs, queues, events, /metrics.

    Every endpoint but /healthz and /readyz needs a token from `conveyor tokens
    create`. With --app, jobs can also be enqueued over HTTP; without it the API
    reads and steers jobs from --url alone. The OpenAPI document is at /docs.
    """
    import uvicorn

    from ..api import create_api

    app = target.app()
    store = token_store(app.settings.url)
    if not store.list():
        click.echo(
            "warning: no API tokens yet; create one with `conveyor tokens create --scope read`", err=True
        )
    api = create_api(app, auth=store, events_interval=events_interval)
    click.echo(f"conveyor API on http://{host}:{port} for {mask_url(app.settings.url)}")
    uvicorn.run(api, host=host, port=port, log_level="info")
