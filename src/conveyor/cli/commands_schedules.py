"""`conveyor schedules` and `conveyor scheduler`: see and fire cron/interval schedules."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import asdict
from typing import Any

import click
from rich.table import Table

from ..app import Conveyor
from ..schedules import Schedule, Scheduler
from .loading import Target, mask_url, run
from .output import configure_logging, console, emit_json, json_option, timestamp


@click.command()
@json_option
@click.pass_obj
def schedules(target: Target, as_json: bool) -> None:
    """List the stored schedules with their next run.

    Schedules declared in code are stored when a worker or `conveyor scheduler`
    starts; `--app` also stores them now, so a fresh deploy lists them at once.
    """
    app = target.app()

    async def read(app: Conveyor) -> list[Schedule]:
        await app.sync_schedules()
        return await app.schedules()

    found = run(app, read)
    if as_json:
        emit_json([_schedule_json(s) for s in found])
        return
    table = Table("name", "job type", "timing", "next run", "last run", "missed ticks")
    for s in found:
        timing = s.cron if s.cron is not None else f"every {s.every:g}s"
        if s.jitter:
            timing += f" (+{s.offset:.0f}s of {s.jitter:g}s jitter)"
        table.add_row(
            s.name, s.job_type, timing, timestamp(s.next_run_at), timestamp(s.last_run_at), s.missed.value
        )
    console().print(table if found else "no schedules")


@click.command()
@click.option(
    "--poll", type=click.FloatRange(min=0.1), default=1.0, show_default=True, help="Seconds between passes."
)
@click.pass_obj
def scheduler(target: Target, poll: float) -> None:
    """Fire due schedules until stopped, without processing jobs.

    Every `conveyor worker` already runs a scheduler (unless --no-scheduler);
    run this where no worker of the app runs. Any number may run at once: each
    tick enqueues exactly one job.
    """
    app = target.app(needs_handlers=True)
    configure_logging()
    click.echo(f"conveyor scheduler on {mask_url(app.settings.url)}")
    run(app, lambda app: _serve(Scheduler(app, poll=poll)))


async def _serve(s: Scheduler) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, s.request_stop)
    await s.run()


def _schedule_json(s: Schedule) -> dict[str, Any]:
    data = asdict(s)
    data["missed"] = s.missed.value
    data["offset"] = s.offset
    return data
