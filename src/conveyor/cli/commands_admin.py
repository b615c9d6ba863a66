"""Operating queues: `status`, `retry`, `cancel`, `remove`, `pause`, `resume`, `cleanup`.

None of these runs handlers, so none needs the app's code: `--url` is enough.
"""

from __future__ import annotations

import click
from rich import box
from rich.table import Table

from ..job import Job
from .loading import Target, run
from .output import (
    console,
    emit_json,
    human_duration,
    job_json,
    json_option,
    state_text,
    stats_json,
    stats_line,
    stats_table,
)
from .params import duration


@click.command()
@click.option("--tenant", help="Count only this tenant's jobs.")
@json_option
@click.pass_obj
def status(target: Target, tenant: str | None, as_json: bool) -> None:
    """Queue statistics: jobs per queue and state, success rate, live workers.

    'scheduled' excludes jobs waiting to retry, which are counted under 'retrying'.
    The success rate is completed / (completed + failed).
    """
    app = target.app()
    stats = run(app, lambda a: a.stats(tenant=tenant))
    if as_json:
        emit_json(stats_json(stats))
        return
    out = console()
    if stats.queues:
        out.print(stats_table(stats))
    else:
        out.print("no jobs yet", style="dim")
    out.print(stats_line(stats))
    if stats.workers:
        workers = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for name in ("worker", "host", "pid", "running", "concurrency", "up"):
            workers.add_column(name)
        for w in stats.workers:
            limits = ", ".join(f"{q}={n}" for q, n in w.concurrency.items())
            up = human_duration(w.last_seen - w.started_at)
            workers.add_row(w.id, w.hostname, str(w.pid), str(w.running), limits, up)
        out.print(workers)


def _print_job(job: Job, verb: str, as_json: bool) -> None:
    if as_json:
        emit_json(job_json(job))
        return
    console().print(f"{verb} job {job.id} ({job.type}); now", state_text(job))


@click.command()
@click.argument("job_id")
@json_option
@click.pass_obj
def retry(target: Target, job_id: str, as_json: bool) -> None:
    """Run a failed or cancelled job again, with a fresh attempt budget."""
    _print_job(run(target.app(), lambda a: a.retry(job_id)), "retrying", as_json)


@click.command()
@click.argument("job_id")
@json_option
@click.pass_obj
def cancel(target: Target, job_id: str, as_json: bool) -> None:
    """Cancel a job. A waiting job stops at once; a running one at its next progress report."""
    job = run(target.app(), lambda a: a.cancel(job_id))
    _print_job(job, "cancel requested for" if job.cancel_requested else "cancelled", as_json)


@click.command()
@click.argument("job_id")
@click.pass_obj
def remove(target: Target, job_id: str) -> None:
    """Delete a job with its errors and logs, whatever its state."""
    run(target.app(), lambda a: a.remove(job_id))
    click.echo(f"removed job {job_id}")


@click.command()
@click.argument("queue")
@click.pass_obj
def pause(target: Target, queue: str) -> None:
    """Stop workers from starting jobs on QUEUE; running jobs finish and enqueueing still works."""
    run(target.app(), lambda a: a.pause(queue))
    click.echo(f"paused queue {queue}")


@click.command()
@click.argument("queue")
@click.pass_obj
def resume(target: Target, queue: str) -> None:
    """Let workers start jobs on a paused QUEUE again."""
    run(target.app(), lambda a: a.resume(queue))
    click.echo(f"resumed queue {queue}")


@click.command()
@click.option("--keep-last", type=click.IntRange(min=0), help="Keep only the N most recently finished jobs.")
@click.option(
    "--max-age",
    metavar="DURATION",
    callback=duration,
    help="Delete jobs finished longer ago than this: 3600, 12h, 7d...",
)
@json_option
@click.pass_obj
def cleanup(target: Target, keep_last: int | None, max_age: float | None, as_json: bool) -> None:
    """Delete finished jobs (completed, failed, cancelled) beyond the retention.

    Without options, the app's retention settings apply. Live jobs are never touched.
    """
    app = target.app()
    given = (keep_last, max_age, app.settings.retention_keep_last, app.settings.retention_max_age)
    if all(v is None for v in given):
        raise click.UsageError("give --keep-last and/or --max-age (the app sets no retention)")
    removed = run(app, lambda a: a.cleanup(keep_last=keep_last, max_age=max_age))
    if as_json:
        emit_json({"removed": removed})
    else:
        click.echo(f"removed {removed} finished job(s)")
