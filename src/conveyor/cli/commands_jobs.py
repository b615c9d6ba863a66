"""Producing and reading jobs: `enqueue`, `jobs`, `job`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import IO, Any

import click
from rich.live import Live

from ..app import Conveyor
from ..backends.base import Backend, JobFilter
from ..errors import PayloadError
from ..job import JobOptions, JobState
from ..payload import parse_json_object
from .detail import JobDetail
from .loading import Target, run
from .output import console, emit_json, job_json, jobs_table, json_option
from .params import duration, json_object

LOG_REFRESH = 2.0  # seconds between refreshes of a followed job that sends no events
FOLLOW_BATCH = 500  # events read per call while following


@click.command()
@click.argument("name")
@click.option("--data", metavar="JSON", callback=json_object, help="The payload, a JSON object. Default: {}.")
@click.option(
    "--file",
    "jobs_file",
    type=click.File("r", encoding="utf-8"),
    help="Enqueue many jobs of this type at once: one JSON payload per line ('-' reads stdin).",
)
@click.option("--priority", type=click.IntRange(1, 10), help="1 (urgent) to 10 (low); default: the type's.")
@click.option(
    "--delay", metavar="DURATION", callback=duration, help="Run no earlier than this from now: 90, 30m, 2h..."
)
@click.option("--dedup-key", help="Skip the enqueue if a live job already holds this key.")
@click.option("--tenant", help="The tenant (store, account) the job works for.")
@click.option("--user", "user_id", help="The user who asked for the job.")
@click.option("--tag", "tags", multiple=True, help="A label to find the job by; repeatable.")
@json_option
@click.pass_obj
def enqueue(
    target: Target,
    name: str,
    data: dict[str, Any] | None,
    jobs_file: IO[str] | None,
    priority: int | None,
    delay: float | None,
    dedup_key: str | None,
    tenant: str | None,
    user_id: str | None,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add a job of type NAME; prints its id.

    The payload is checked against the handler's signature now, so a typo is
    refused here rather than failing in a worker later. With --file every
    line is checked before anything is enqueued.
    """
    if data is not None and jobs_file is not None:
        raise click.UsageError("give either --data or --file, not both")
    if jobs_file is not None and dedup_key is not None:
        raise click.UsageError("--dedup-key applies to one job; it cannot be combined with --file")
    app = target.app(needs_handlers=True)
    job_type = app.job_type(name)
    options = JobOptions(
        priority=priority, delay=delay, dedup_key=dedup_key, tenant=tenant, user_id=user_id, tags=tags
    )
    if jobs_file is None:
        job = run(app, lambda a: a.enqueue(name, data or {}, options))
        if as_json:
            emit_json(job_json(job))
        else:
            click.echo(job.id)
        return
    payloads = list(_read_payloads(jobs_file))
    for line_no, payload in payloads:
        try:
            job_type.signature.dump(payload, limit=app.settings.max_payload_bytes)
        except PayloadError as exc:
            raise PayloadError(f"{jobs_file.name} line {line_no}: {exc}") from None
    ids = run(app, lambda a: a.enqueue_many(name, [p for _, p in payloads], options))
    if as_json:
        emit_json(ids)
    else:
        click.echo(f"enqueued {len(ids)} {name} job(s)")


def _read_payloads(source: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = source.read()
    except UnicodeDecodeError as exc:
        raise PayloadError(f"{source.name} is not UTF-8 text ({exc.reason})") from None
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, parse_json_object(line, what="payload")
        except PayloadError as exc:
            raise PayloadError(f"{source.name} line {line_no}: {exc}") from None


@click.command()
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in JobState], case_sensitive=False),
    help="Only jobs in this state; repeatable.",
)
@click.option("--queue", "queues", multiple=True, help="Only jobs on this queue; repeatable.")
@click.option("--type", "types", multiple=True, help="Only jobs of this type; repeatable.")
@click.option("--tenant", help="Only this tenant's jobs.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="At most this many."
)
@json_option
@click.pass_obj
def jobs(
    target: Target,
    states: tuple[str, ...],
    queues: tuple[str, ...],
    types: tuple[str, ...],
    tenant: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List jobs, newest first.

    A scheduled job that already failed once shows as 'retrying'.
    """
    job_filter = JobFilter(
        states=[JobState(s.lower()) for s in states], queues=queues, types=types, tenant=tenant
    )
    page = run(target.app(), lambda a: a.list_jobs(job_filter, limit=limit))
    if as_json:
        emit_json([job_json(j) for j in page.jobs])
        return
    out = console()
    if not page.jobs:
        out.print("no jobs match", style="dim")
        return
    out.print(jobs_table(page.jobs))
    if page.next_cursor is not None:
        out.print(f"showing the newest {limit}; raise --limit or narrow the filter for more", style="dim")


@click.command()
@click.argument("job_id")
@click.option("--follow", "-f", is_flag=True, help="Keep the view live until the job finishes.")
@json_option
@click.pass_obj
def job(target: Target, job_id: str, follow: bool, as_json: bool) -> None:
    """Show one job: fields, progress, payload, result, errors with tracebacks, logs.

    With --json and --follow, waits for the job to finish and prints it once.
    """
    app = target.app()
    if not follow:
        detail = run(app, lambda a: JobDetail.read(a, job_id))
    elif as_json:
        detail = run(app, lambda a: _wait(a, job_id, None))
    else:
        out = console()
        with Live(console=out, auto_refresh=False) as live:
            detail = run(app, lambda a: _wait(a, job_id, live))
    if as_json:
        emit_json(detail.as_json())
    elif not follow:
        console().print(detail.render())


async def _wait(app: Conveyor, job_id: str, live: Live | None) -> JobDetail:
    """Re-read the job whenever the event stream says it changed, until it finishes.

    The cursor is taken before the first read, so a change between that read
    and the first wait is not missed. Log lines are not events: the view also
    refreshes every LOG_REFRESH seconds to show new ones.
    """
    backend = await app.backend()
    cursor = (await backend.events(None)).cursor
    while True:
        detail = await JobDetail.read(app, job_id)
        if live is not None:
            live.update(detail.render(), refresh=True)
        if detail.job.state.is_finished:
            return detail
        cursor = await _next_change(backend, job_id, cursor)


async def _next_change(backend: Backend, job_id: str, cursor: str) -> str:
    """Wait until an event of `job_id` arrives (or LOG_REFRESH passes); return the new cursor."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOG_REFRESH
    while (left := deadline - loop.time()) > 0:
        batch = await backend.events(cursor, limit=FOLLOW_BATCH, block=left)
        cursor = batch.cursor
        if any(event.job_id == job_id for event in batch.events):
            break
    return cursor
