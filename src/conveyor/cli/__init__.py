"""The `conveyor` command line: run workers, enqueue and inspect jobs, administer queues.

Global options pick the app and the database; every subcommand lives in a
small module of its own (jobs, admin, worker, demo).
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from .commands_admin import cancel, cleanup, pause, remove, resume, retry, status
from .commands_demo import demo
from .commands_jobs import enqueue, job, jobs
from .commands_sandbox import sandbox
from .commands_schedules import scheduler, schedules
from .commands_serve import serve
from .commands_tokens import tokens
from .commands_worker import worker
from .group import ConveyorGroup
from .loading import Target


@click.group(
    "conveyor", cls=ConveyorGroup, invoke_without_command=True, context_settings={"max_content_width": 100}
)
@click.option(
    "--app",
    "app_ref",
    envvar="CONVEYOR_APP",
    metavar="MODULE:ATTR",
    help="The app that registers your job types, e.g. shop.jobs:app (env CONVEYOR_APP)."
    " Needed by `worker` and `enqueue`; other commands can work from --url alone.",
)
@click.option(
    "--url",
    envvar="CONVEYOR_URL",
    metavar="URL",
    help="Backend URL, e.g. sqlite:///conveyor.db (env CONVEYOR_URL); overrides the app's own URL."
    " Default: the app's URL, else sqlite:///conveyor.db.",
)
@click.version_option(package_name="conveyor-jobs", prog_name="conveyor")
@click.pass_context
def cli(ctx: click.Context, app_ref: str | None, url: str | None) -> None:
    """Conveyor: durable background jobs for catalog work.

    \b
    Quick start:
      conveyor demo                                 every commerce pipeline against the simulators
      conveyor sandbox jumpseller shopify           the simulators alone, until Ctrl-C
      conveyor --app shop.jobs:app worker           process jobs
      conveyor --app shop.jobs:app enqueue shopify:import:products --data '{"store": "acme"}'
      conveyor jobs --state failed                  what went wrong
      conveyor status                               queue statistics
    """
    ctx.obj = Target(app_ref or None, url or None)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for command in (
    worker,
    enqueue,
    jobs,
    job,
    status,
    retry,
    cancel,
    remove,
    pause,
    resume,
    cleanup,
    demo,
    schedules,
    scheduler,
    serve,
    tokens,
    sandbox,
):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=argv, prog_name="conveyor")
