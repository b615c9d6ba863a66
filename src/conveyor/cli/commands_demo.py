"""`conveyor demo`: a sample catalog workload run by real worker processes, watched live.

Separate processes (not tasks in this one) make the demo honest: the jobs
travel through the database exactly as they would in production.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import click
from rich import box
from rich.console import Console
from rich.table import Table

from ..app import Conveyor
from ..backends.base import JobFilter
from ..job import Job, JobState
from ..stats import Stats
from .demo_view import LiveBoard, PlainLines
from .loading import run, with_url
from .output import console, human_duration, success_rate

POLL_INTERVAL = 0.25
STOP_TIMEOUT = 15.0


class WorkerFleet:
    """`conveyor worker` child processes, each logging to its own file, stopped with SIGTERM on exit."""

    def __init__(self, count: int, url: str, log_dir: Path) -> None:
        self.count = count
        self.url = url
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def __enter__(self) -> WorkerFleet:
        env = {**os.environ, "CONVEYOR_URL": self.url}
        command = [sys.executable, "-m", "conveyor", "--app", "conveyor.demo:app", "worker"]
        for n in range(1, self.count + 1):
            log = (self.log_dir / f"worker-{n}.log").open("wb")
            self._logs.append(log)
            self.procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()

    @property
    def all_exited(self) -> bool:
        return all(p.poll() is not None for p in self.procs)

    def wait(self) -> None:
        for proc in self.procs:
            proc.wait()


@dataclass(frozen=True, slots=True)
class Outcome:
    jobs: list[Job]
    stats: Stats
    elapsed: float


@click.command()
@click.option(
    "--jobs", "size", type=click.IntRange(2, 500), default=12, show_default=True, help="How many jobs to run."
)
@click.option(
    "--workers", type=click.IntRange(1, 16), default=2, show_default=True, help="Worker processes to start."
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".conveyor-demo/demo.db"),
    show_default=True,
    help="The demo's SQLite file; deleted and created afresh on every run.",
)
@click.option("--keep", is_flag=True, help="Leave the workers running after the demo, until Ctrl-C.")
def demo(size: int, workers: int, db: Path, keep: bool) -> None:
    """Run a sample catalog workload and watch it live.

    Imports, exports, translations and image jobs report progress; a feed sync
    fails once and succeeds on retry; a description job runs out of credits.
    The global --app and --url do not apply: the demo brings its own app
    (conveyor.demo:app) and database.
    """
    from .. import demo as workload_module  # registers the demo's job types: only when asked for

    db.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    url = "sqlite:///" + str(db.resolve())
    app = with_url(workload_module.app, url)
    out = console()
    specs = workload_module.workload(size)
    out.print(
        f"demo: {len(specs)} jobs, {workers} worker process(es), database {db}"
        f" (worker logs in {db.parent}{os.sep})",
        highlight=False,
    )
    with WorkerFleet(workers, url, db.parent) as fleet:
        outcome = run(app, lambda a: _drive(a, specs, fleet, out))
        print_summary(out, outcome)
        if keep:
            pids = ", ".join(str(p.pid) for p in fleet.procs)
            out.print(
                f"workers still running (pids {pids}); enqueue more from another shell with\n"
                f"  CONVEYOR_URL=sqlite:///{db} conveyor --app conveyor.demo:app enqueue"
                ' shopify:import:products --data \'{"store": "acme-outdoor"}\'\n'
                "press Ctrl-C to stop them",
                highlight=False,
                soft_wrap=True,
            )
            try:
                fleet.wait()
            except KeyboardInterrupt:
                out.print("stopping the workers")


async def _drive(
    app: Conveyor, specs: Sequence[tuple[str, dict[str, object]]], fleet: WorkerFleet, out: Console
) -> Outcome:
    """Enqueue, then watch until every job has finished (or every worker has died)."""
    started = time.monotonic()
    order = {(await app.enqueue(name, payload)).id: n for n, (name, payload) in enumerate(specs)}
    view = LiveBoard(out) if out.is_terminal else PlainLines(out)
    with view:
        while True:
            page = await app.list_jobs(JobFilter(oldest_first=True), limit=len(order))
            jobs = sorted((j for j in page.jobs if j.id in order), key=lambda j: order[j.id])
            view.update(jobs, time.monotonic() - started)
            if len(jobs) == len(order) and all(j.state.is_finished for j in jobs):
                break
            if fleet.all_exited:
                raise click.ClickException(
                    f"every demo worker exited early; see the logs in {fleet.log_dir}{os.sep}"
                )
            await asyncio.sleep(POLL_INTERVAL)
    return Outcome(jobs, await app.stats(), time.monotonic() - started)


def print_summary(out: Console, outcome: Outcome) -> None:
    """Per job type: how many completed, failed, needed a retry, and how long a run took."""
    table = Table(title="summary", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for name in ("job type", "jobs", "completed", "failed", "retried", "avg time", "error"):
        table.add_column(
            name, justify="right" if name in ("jobs", "completed", "failed", "retried") else "left"
        )
    by_type: dict[str, list[Job]] = {}
    for job in outcome.jobs:
        by_type.setdefault(job.type, []).append(job)
    for job_type, jobs in by_type.items():
        times = [j.finished_at - j.started_at for j in jobs if j.finished_at and j.started_at]
        errors = sorted({j.error.message for j in jobs if j.state is JobState.FAILED and j.error})
        table.add_row(
            job_type,
            str(len(jobs)),
            str(sum(j.state is JobState.COMPLETED for j in jobs)),
            str(sum(j.state is JobState.FAILED for j in jobs)),
            str(sum(j.attempts > 1 for j in jobs)),
            human_duration(sum(times) / len(times)) if times else "-",
            "; ".join(errors),
            style="red" if errors else None,
        )
    out.print(table)
    stats, jobs = outcome.stats, outcome.jobs
    out.print(
        f"{len(jobs)} jobs finished in {outcome.elapsed:.1f}s:"
        f" {stats.count(JobState.COMPLETED)} completed, {stats.count(JobState.FAILED)} failed,"
        f" {sum(j.attempts > 1 for j in jobs)} retried; success rate {success_rate(stats)}",
        highlight=False,
    )
