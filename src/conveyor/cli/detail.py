"""The `conveyor job ID` view: everything known about one job, as one rich renderable."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.padding import Padding
from rich.progress_bar import ProgressBar
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from ..app import Conveyor
from ..job import AttemptError, Job, JobState, LogLine
from .output import STATE_STYLES, human_duration, job_json, plain, state_text, timestamp


@dataclass(frozen=True, slots=True)
class JobDetail:
    job: Job
    errors: Sequence[AttemptError]
    logs: Sequence[LogLine]

    @classmethod
    async def read(cls, app: Conveyor, job_id: str) -> JobDetail:
        job = await app.get_job(job_id)
        return cls(job, await app.job_errors(job_id), await app.job_logs(job_id))

    def as_json(self) -> dict[str, Any]:
        return {
            **job_json(self.job),
            "attempt_errors": [
                {
                    "attempt": e.attempt,
                    "at": e.at,
                    "type": e.type,
                    "message": e.message,
                    "traceback": e.traceback,
                }
                for e in self.errors
            ],
            "logs": [{"at": line.at, "line": line.line} for line in self.logs],
        }

    def render(self) -> RenderableType:
        parts: list[RenderableType] = [self._fields(), self._progress()]
        parts += _section("payload", _json(self.job.payload))
        if self.job.result is not None:
            parts += _section("result", _json(self.job.result))
        if self.errors:
            parts += _section(f"attempt errors ({len(self.errors)})", *map(_attempt_error, self.errors))
        if self.logs:
            parts += _section(f"logs ({len(self.logs)})", self._logs())
        return Group(*parts)

    def _fields(self) -> Table:
        job, now = self.job, time.time()
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        rows: list[tuple[str, Any]] = [
            ("id", job.id),
            ("type", plain(job.type)),
            ("queue", plain(job.queue)),
            ("state", state_text(job)),
            ("attempts", f"{job.attempts} of {job.max_attempts}"),
            ("priority", str(job.priority)),
            ("created", timestamp(job.created_at, now)),
        ]
        if job.state in (JobState.PENDING, JobState.SCHEDULED):
            rows.append(("runs", timestamp(job.run_at, now)))
        if job.started_at is not None:
            rows.append(("started", timestamp(job.started_at, now)))
        if job.finished_at is not None:
            rows.append(("finished", timestamp(job.finished_at, now)))
            if job.started_at is not None:
                rows.append(("took", human_duration(job.finished_at - job.started_at)))
        optional = {
            "worker": job.worker_id if job.state is JobState.RUNNING else None,
            "tenant": job.tenant,
            "user": job.user_id,
            "tags": ", ".join(job.tags) or None,
            "dedup key": job.dedup_key,
            "parent": job.parent_id,
            "timeout": f"{job.timeout:g}s" if job.timeout else None,
            "cancel requested": "yes" if job.cancel_requested else None,
        }
        rows += [(k, plain(v)) for k, v in optional.items() if v is not None]
        if job.error is not None:
            rows.append(("last error", plain(f"{job.error.type}: {job.error.message}", style="red")))
        for key, value in rows:
            grid.add_row(key, value)
        return grid

    def _progress(self) -> RenderableType:
        job = self.job
        percent = 100.0 if job.state is JobState.COMPLETED else job.progress.percent
        style = STATE_STYLES.get(job.display_state, "")
        line = Table.grid(padding=(0, 1))
        line.add_row(
            ProgressBar(total=100, completed=percent, width=40, complete_style=style, finished_style=style),
            f"{percent:.0f}%",
            plain(job.progress.message, style="italic"),
        )
        return Padding(line, (1, 0, 0, 0))

    def _logs(self) -> Table:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        for line in self.logs:
            grid.add_row(time.strftime("%H:%M:%S", time.localtime(line.at)), plain(line.line))
        return grid


def _section(title: str, *body: RenderableType) -> list[RenderableType]:
    return [Rule(title, align="left", style="dim"), *body]


def _json(value: Any) -> RenderableType:
    return JSON(json.dumps(value, default=str))


def _attempt_error(error: AttemptError) -> RenderableType:
    head = Text.assemble(
        (f"attempt {error.attempt}", "bold"),
        f" at {time.strftime('%H:%M:%S', time.localtime(error.at))}: ",
        plain(f"{error.type}: {error.message}", style="red"),
    )
    if not error.traceback:
        return head
    return Group(head, Padding(plain(error.traceback.rstrip(), style="dim"), (0, 0, 0, 2)))
