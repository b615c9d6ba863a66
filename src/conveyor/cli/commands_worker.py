"""`conveyor worker`: process jobs until stopped (or, with --burst, until the queues are empty)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import click

from ..child import stop_when_orphaned
from ..errors import ConfigurationError
from ..worker import Worker, WorkerSummary
from . import params
from .group import EXIT_INTERRUPTED
from .loading import Target, mask_url, run
from .output import configure_logging

log = logging.getLogger("conveyor.cli")


@click.command()
@click.option(
    "--queues",
    "-q",
    metavar="QUEUES",
    callback=params.name_list,
    help="Comma-separated queues to serve. Default: every queue of the app.",
)
@click.option(
    "--concurrency",
    "-c",
    metavar="N|QUEUE=N,...",
    callback=params.concurrency,
    help="Jobs at once per queue: 5 for every queue, or families=3,images=10."
    " Default: the app's settings (CONVEYOR_CONCURRENCY_<QUEUE>).",
)
@click.option("--burst", is_flag=True, help="Exit once no job is ready (handy in CI and cron).")
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Do not fire schedules from this worker (by default every non-burst worker does).",
)
@click.option(
    "--stop-with-parent",
    is_flag=True,
    hidden=True,
    help="Stop gracefully once the process that started this one exits (for launchers).",
)
@click.pass_obj
def worker(
    target: Target,
    queues: list[str] | None,
    concurrency: int | dict[str, int] | None,
    burst: bool,
    no_scheduler: bool,
    stop_with_parent: bool,
) -> None:
    """Run a worker for the app given with --app.

    SIGTERM or Ctrl-C stops it gracefully: no new jobs are fetched and running
    jobs get the grace period (CONVEYOR_GRACE_SECONDS) to finish, after which
    they are handed back to the queue without spending an attempt. A second
    Ctrl-C exits at once; the jobs then run again once their leases expire.
    """
    app = target.app(needs_handlers=True)
    configure_logging()
    try:
        w = app.worker(
            queues=queues, concurrency=concurrency, burst=burst, scheduler=False if no_scheduler else None
        )
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), param_hint="'--concurrency' / '--queues'") from None
    limits = ", ".join(f"{q}={n}" for q, n in w.concurrency.items())
    mode = " (burst)" if burst else ""
    click.echo(f"conveyor worker {w.id}: queues {limits} on {mask_url(app.settings.url)}{mode}")
    parent = os.getppid() if stop_with_parent else None
    summary = run(app, lambda _: _serve(w, parent))
    outcomes = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.outcomes.items())) or "nothing"
    click.echo(f"worker stopped after {summary.processed} attempt(s): {outcomes}")


async def _serve(w: Worker, parent: int | None) -> WorkerSummary:
    """Route SIGTERM and SIGINT (and, if asked, the parent's exit) to the worker while it runs."""
    stopper = _Stopper(w)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopper.stop, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, stopper.interrupt)
    orphaned = None
    if parent is not None:
        orphaned = asyncio.create_task(stop_when_orphaned(lambda: stopper.stop("parent exited"), parent))
    try:
        return await w.run()
    finally:
        if orphaned is not None:
            orphaned.cancel()
        loop.remove_signal_handler(signal.SIGTERM)
        loop.remove_signal_handler(signal.SIGINT)


class _Stopper:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.stopping = False

    def stop(self, reason: str) -> None:
        if not self.stopping:
            grace = self.worker.app.settings.grace_seconds
            log.info("%s: stopping; running jobs get up to %gs (Ctrl-C again to quit now)", reason, grace)
        self.stopping = True
        self.worker.request_stop()

    def interrupt(self) -> None:
        """A second Ctrl-C means 'now': leave at once, the leases hand the jobs to other workers."""
        if self.stopping:
            log.warning("quitting now; unfinished jobs run again when their leases expire")
            logging.shutdown()
            os._exit(EXIT_INTERRUPTED)
        self.stop("interrupted")
