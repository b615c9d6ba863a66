"""Rendering for people (rich) and for scripts (JSON on stdout, nothing else)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..backends.base import WorkerInfo
from ..job import Job, JobState
from ..stats import Stats

STATE_STYLES = {
    "pending": "grey58",
    "scheduled": "yellow",
    "retrying": "yellow",
    "running": "blue",
    "waiting_children": "cyan",
    "completed": "green",
    "failed": "red",
    "cancelled": "dim",
}
PIPE_WIDTH = 120

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON only.")


def console() -> Console:
    """Rich wraps piped output at 80 columns, which would break job ids apart; pipes get more room."""
    probe = Console()
    if probe.is_terminal or "COLUMNS" in os.environ:
        return probe
    return Console(width=PIPE_WIDTH)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def job_json(job: Job) -> dict[str, Any]:
    data = dataclasses.asdict(job)
    data["state"] = job.state.value
    data["display_state"] = job.display_state
    return data


def plain(value: object, style: str = "") -> Text:
    """Job text as text: never read as Rich markup, and no control character reaches the terminal.

    A job's message, error or log line comes from handlers and outside APIs; `[red]`
    would be styled and an escape sequence (colours, OSC-8 links, window titles)
    obeyed. Newlines and tabs stay; every other control character is shown as `\\xNN`.
    """
    text = "" if value is None else str(value)
    if not text.isprintable():
        text = "".join(c if c.isprintable() or c in "\n\t" else f"\\x{ord(c):02x}" for c in text)
    return Text(text, style=style)


def state_text(job: Job) -> Text:
    state = job.display_state
    return Text(state, style=STATE_STYLES.get(state, ""))


def job_message(job: Job) -> Text:
    """What a person wants next to a job: why it failed, else what it is doing."""
    if job.error is not None and job.display_state in ("failed", "retrying"):
        return plain(f"{job.error.type}: {job.error.message}")
    return plain(job.progress.message)


def human_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def timestamp(at: float | None, now: float | None = None) -> str:
    if at is None:
        return "-"
    now = time.time() if now is None else now
    delta = now - at
    relative = f"{human_duration(delta)} ago" if delta >= 0 else f"in {human_duration(-delta)}"
    return f"{datetime.fromtimestamp(at):%Y-%m-%d %H:%M:%S} ({relative})"


def success_rate(stats: Stats) -> str:
    rate = stats.success_rate
    return "n/a" if rate is None else f"{rate * 100:.2f}%"


def jobs_table(jobs: Sequence[Job]) -> Table:
    now = time.time()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("id", no_wrap=True, min_width=26)
    table.add_column("type", overflow="fold")
    table.add_column("queue")
    table.add_column("state", no_wrap=True)
    table.add_column("progress", justify="right", no_wrap=True)
    table.add_column("message", overflow="ellipsis", max_width=60)
    table.add_column("age", justify="right", no_wrap=True)
    for job in jobs:
        table.add_row(
            job.id,
            plain(job.type),
            plain(job.queue),
            state_text(job),
            f"{job.progress.percent:.0f}%",
            job_message(job),
            human_duration(now - job.created_at),
        )
    return table


_COUNT_COLUMNS = ("pending", "scheduled", "retrying", "running", "completed", "failed", "cancelled")


def _queue_row(stats: Stats, queue: str | None) -> list[int]:
    """Scheduled excludes retrying jobs here, so that a row's columns add up to its total."""
    retrying = sum(q.retrying for q in stats.queues if queue is None or q.queue == queue)
    return [
        stats.count(JobState.PENDING, queue),
        stats.count(JobState.SCHEDULED, queue) - retrying,
        retrying,
        stats.count(JobState.RUNNING, queue) + stats.count(JobState.WAITING_CHILDREN, queue),
        stats.count(JobState.COMPLETED, queue),
        stats.count(JobState.FAILED, queue),
        stats.count(JobState.CANCELLED, queue),
    ]


def stats_json(stats: Stats) -> dict[str, Any]:
    queues = [
        {
            "queue": q.queue,
            **dict(zip(_COUNT_COLUMNS, _queue_row(stats, q.queue), strict=True)),
            "paused": q.paused,
        }
        for q in stats.queues
    ]
    return {
        "queues": queues,
        "totals": dict(zip(_COUNT_COLUMNS, _queue_row(stats, None), strict=True)),
        "total": stats.total,
        "success_rate": stats.success_rate,
        "is_running": stats.is_running,
        "currently_processing": stats.currently_processing,
        "max_concurrency": stats.max_concurrency,
        "workers": [worker_json(w) for w in stats.workers],
    }


def worker_json(worker: WorkerInfo) -> dict[str, Any]:
    return {**dataclasses.asdict(worker), "concurrency": dict(worker.concurrency)}


def stats_table(stats: Stats) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_footer=len(stats.queues) > 1)
    table.add_column("queue", footer="total")
    totals = _queue_row(stats, None)
    for name, total in zip(_COUNT_COLUMNS, totals, strict=True):
        table.add_column(name, justify="right", footer=str(total), style=STATE_STYLES[name])
    table.add_column("paused")
    for q in stats.queues:
        counts = [str(n) for n in _queue_row(stats, q.queue)]
        table.add_row(q.queue, *counts, Text("paused", style="bold red") if q.paused else "")
    return table


def stats_line(stats: Stats) -> str:
    return (
        f"success rate {success_rate(stats)} · running: {'yes' if stats.is_running else 'no'}"
        f" · processing {stats.currently_processing} · max concurrency {stats.max_concurrency}"
        f" · live workers {len(stats.workers)}"
    )


QUIET_LOGGERS = ("httpx", "httpcore")
"""Libraries that log every HTTP request at INFO: URLs can carry access keys (a supplier feed's
profile URL is its only credential), and a worker would log thousands of lines a minute."""


def configure_logging() -> None:
    """INFO lines with time and source for long-running commands; HTTP clients only when they warn."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
