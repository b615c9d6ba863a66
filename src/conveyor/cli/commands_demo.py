"""`conveyor demo`: the commerce pipelines end to end against local simulators, watched live.

This command is the one place the CLI reaches into `conveyor.commerce`, and
only when it runs: the demo's job types, simulators and catalog live there.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich import box
from rich.console import Console
from rich.table import Table

from ..api.tokens import Scope, TokenStore
from ..app import Conveyor
from ..backends.base import JobFilter
from ..job import Job, JobState
from ..stats import Stats
from .demo_processes import ApiServer, WorkerFleet
from .demo_view import BoardRow, LiveBoard, PlainLines
from .loading import mask_url, run, with_url
from .output import STATE_STYLES, console, human_duration, success_rate

if TYPE_CHECKING:
    from ..commerce.demo.services import DemoServices
    from ..commerce.demo.world import Launch

APP_REF = "conveyor.commerce.demo.app:app"
POLL_INTERVAL = 0.25
MARKER = ".conveyor-demo"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True, slots=True)
class Outcome:
    rows: list[BoardRow]
    stats: Stats
    elapsed: float


@click.command()
@click.option(
    "--products",
    type=click.IntRange(4, 5000),
    default=60,
    show_default=True,
    help="Products in the demo store's campaign (two of them invalid on purpose).",
)
@click.option(
    "--families",
    type=click.IntRange(1, 2000),
    default=20,
    show_default=True,
    help="Product families in the simulated supplier feed (3 variants and 6 pictures each).",
)
@click.option(
    "--workers", type=click.IntRange(1, 16), default=2, show_default=True, help="Worker processes to start."
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".conveyor-demo"),
    show_default=True,
    help="Where the demo keeps its databases and logs; emptied at the start of every run.",
)
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    help="Keep the jobs on this Redis instead of the embedded SQLite file, under a fresh key prefix"
    " unless the URL names one (?prefix=...).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Port of the API and dashboard (default: a free one).",
)
@click.option(
    "--keep", is_flag=True, help="Keep the workers and the dashboard running afterwards, until Ctrl-C."
)
def demo(
    products: int, families: int, workers: int, directory: Path, redis_url: str | None, port: int, keep: bool
) -> None:
    """Publish a campaign to simulated marketplaces and watch it live.

    Starts the marketplace simulators on loopback, seeds a demo catalog,
    starts worker processes and the API/dashboard, runs the pipelines and
    ends with a summary table. The global --app and --url do not apply: the
    demo brings its own app (conveyor.commerce.demo.app:app) and databases.
    """
    with _stopped_by_signals():
        _demo(products, families, workers, directory, redis_url, port, keep)


def _demo(
    products: int, families: int, workers: int, directory: Path, redis_url: str | None, port: int, keep: bool
) -> None:
    shown = directory
    directory = _fresh(directory)
    jobs_url = _jobs_url(directory, redis_url)
    os.environ["CONVEYOR_URL"] = jobs_url
    from ..commerce.demo.world import DemoWorld  # the commerce layer: only when the demo runs

    out = console()
    auth_db = directory / "auth.db"
    token = TokenStore(auth_db).create(scope=Scope.ADMIN, name="demo")[1]
    with DemoWorld(directory, products=products, families=families) as world:
        env = {"CONVEYOR_URL": jobs_url, "CONVEYOR_AUTH_DB": str(auth_db), **world.env}
        os.environ.update(env)
        from ..commerce.demo import app as demo_app  # registers the pipelines, configured by `env`

        app = with_url(demo_app.app, jobs_url)
        launches = world.launches(demo_app.services)
        jobs = "SQLite (jobs.db)" if redis_url is None else mask_url(jobs_url)
        ports = ", ".join(f"{name} :{url.rsplit(':', 1)[1]}" for name, url in world.urls.items())
        out.print(
            f"demo: jobs on {jobs}; catalog, logs and credentials in {shown}{os.sep}; {workers} worker"
            f" process(es)\nsimulators on 127.0.0.1: {ports}",
            highlight=False,
            soft_wrap=True,
        )
        with (
            ApiServer(APP_REF, env, directory, port or _free_port()) as api,
            WorkerFleet(workers, APP_REF, env, directory) as fleet,
        ):
            out.print(
                f"dashboard: {api.url}/dashboard   login token: {token}", highlight=False, soft_wrap=True
            )
            outcome = run(app, lambda a: _drive(a, demo_app.services, launches, fleet, out))
            print_summary(out, outcome, launches)
            out.print(
                f"dashboard: {api.url}/dashboard   login token: {token}", highlight=False, soft_wrap=True
            )
            if keep:
                out.print("workers and dashboard keep running; press Ctrl-C to stop them", highlight=False)
                try:
                    fleet.wait()
                except Stopped as stop:
                    out.print(f"{stop}: stopping the workers and the dashboard", highlight=False)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGINT: unwinds through every `with` above it, and each one stops its processes."""


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into `Stopped`, then ignore both while the children are stopped.

    Python's default SIGTERM ends the process at once, skipping the cleanup that
    stops the API server and the workers; and a demo started in the background
    inherits an ignored SIGINT. A second signal must not cut that cleanup short.
    """

    def stop(signum: int, _frame: object) -> None:
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        raise Stopped(signal.Signals(signum).name)

    before = {each: signal.signal(each, stop) for each in STOP_SIGNALS}
    try:
        yield
    except Stopped:
        raise click.Abort() from None
    finally:
        for each, handler in before.items():
            signal.signal(each, handler)


def _fresh(directory: Path) -> Path:
    """Empty the demo directory; refuse a non-empty one that an earlier demo did not make."""
    directory = directory.resolve()
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise click.UsageError(f"{directory} is not empty and not a demo directory; choose another --dir")
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("written by `conveyor demo`; emptied on every run\n", "utf-8")
    return directory


def _jobs_url(directory: Path, redis_url: str | None) -> str:
    if redis_url is None:
        return f"sqlite:///{directory / 'jobs.db'}"
    if not redis_url.startswith(("redis://", "rediss://")):
        raise click.BadParameter("expected redis://host:port/db or rediss://...", param_hint="--redis")
    if "prefix=" in redis_url:
        return redis_url
    joiner = "&" if "?" in redis_url else "?"
    return f"{redis_url}{joiner}prefix=conveyor-demo-{secrets.token_hex(3)}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _drive(
    app: Conveyor, services: DemoServices, launches: Sequence[Launch], fleet: WorkerFleet, out: Console
) -> Outcome:
    """Start the launches, then watch until every one has finished (or every worker has died)."""
    started = time.monotonic()
    jobs = [(launch, await launch.start(services)) for launch in launches]
    view = LiveBoard(out) if out.is_terminal else PlainLines(out)
    with view:
        while True:
            rows = [await _row(app, launch, job_id) for launch, job_id in jobs]
            view.update(rows, time.monotonic() - started)
            if all(row.finished for row in rows):
                break
            if fleet.all_exited:
                raise click.ClickException(f"every demo worker exited early; see the logs in {fleet.log_dir}")
            await asyncio.sleep(POLL_INTERVAL)
    return Outcome(rows, await app.stats(), time.monotonic() - started)


async def _row(app: Conveyor, launch: Launch, job_id: str) -> BoardRow:
    job = await app.get_job(job_id)
    flows = (JobState.WAITING_CHILDREN, JobState.COMPLETED)
    tracker = await app.tracker(job_id) if job.state in flows else None
    followed: list[Job] = []
    if launch.follows is not None and job.state is JobState.COMPLETED:
        followed = (await app.list_jobs(JobFilter(types=[launch.follows]), limit=1000)).jobs
    return BoardRow(launch.label, job, tracker, followed)


def print_summary(out: Console, outcome: Outcome, launches: Sequence[Launch]) -> None:
    """One line per pipeline, then every job the pipelines made, counted by ending."""
    table = Table(title="summary", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for name in ("pipeline", "state", "attempts", "time", "outcome"):
        table.add_column(name, justify="right" if name == "attempts" else "left")
    for row, launch in zip(outcome.rows, launches, strict=True):
        job = row.job
        took = job.finished_at - job.created_at if job.finished_at else None
        table.add_row(
            row.label,
            row.state,
            str(job.attempts),
            human_duration(took) if took is not None else "-",
            launch.describe(job, row.tracker, row.followed),
            style=STATE_STYLES.get(row.state) if row.state == "failed" else None,
        )
    out.print(table)
    stats = outcome.stats
    out.print(
        f"{stats.total} jobs ran in {outcome.elapsed:.1f}s across the pipelines:"
        f" {stats.count(JobState.COMPLETED)} completed, {stats.count(JobState.FAILED)} failed,"
        f" {stats.count(JobState.CANCELLED)} cancelled; success rate {success_rate(stats)}",
        highlight=False,
    )
