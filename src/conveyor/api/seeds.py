"""The JSON shapes the seed documents promise their clients, and how engine figures map onto them.

Decisions the seeds leave open, made once here:

- Seed 001 counts a job that waits (pending, scheduled, retrying) as `pending`,
  and one in progress (running, or waiting for its children) as `running`.
  Cancelled jobs are in none of its buckets, so they are left out of `total`:
  total = completed + failed + pending + running, always.
- Seed 001's `success_rate` is completed / total, which is how its example
  gets "94.67%" from 142 of 150; "0.00%" when there are no jobs at all. (The
  CLI and /metrics report completed / (completed + failed) instead.)
- Seed 003 uses BullMQ's state names: pending -> waiting, scheduled ->
  delayed, running -> active, waiting_children -> waiting-children; its
  queue `total` is waiting + active + completed + failed + delayed, with
  waiting-children counted as active and cancelled jobs left out, as in 001.
- Seed 004's records carry the engine's display state and ISO times.
"""

# ruff: noqa: N815 - field names here are the seeds' wire names (camelCase in seed 003)

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..job import Job, JobState
from ..stats import Stats
from .redact import redact, redact_text
from .views import maybe_utc, utc

# -- seed 001: the store owner's status endpoints ------------------------------------------------


class BackgroundJobsState(BaseModel):
    is_running: bool = Field(description="At least one worker is alive.")
    currently_processing: int
    max_concurrent_jobs: int = Field(description="The sum of the live workers' concurrency.")


class BackgroundJobsStatistics(BaseModel):
    total: int = Field(description="completed + failed + pending + running (cancelled jobs are left out).")
    completed: int
    failed: int
    pending: int = Field(description="Waiting to start: pending, scheduled and retrying jobs.")
    running: int = Field(description="In progress: running jobs and parents waiting for their children.")
    success_rate: str = Field(description='completed / total as a percentage, e.g. "94.67%".')


class BackgroundJobsStatus(BaseModel):
    status: BackgroundJobsState
    statistics: BackgroundJobsStatistics


class BackgroundJob(BaseModel):
    id: str
    type: str
    status: str = Field(description="pending, scheduled, retrying, running, waiting_children, completed, ...")
    progress: int = Field(ge=0, le=100, description="Whole percent; a parent's is its tree's progress.")
    progress_message: str | None
    queue: str
    priority: int
    attempts: int
    max_attempts: int
    error: str | None = Field(description="The last error's message, if any.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class BackgroundJobStatus(BaseModel):
    job: BackgroundJob


def _count(stats: Stats, queue: str | None, *states: JobState) -> int:
    return sum(stats.count(state, queue) for state in states)


def background_statistics(stats: Stats) -> BackgroundJobsStatistics:
    completed = _count(stats, None, JobState.COMPLETED)
    failed = _count(stats, None, JobState.FAILED)
    pending = _count(stats, None, JobState.PENDING, JobState.SCHEDULED)
    running = _count(stats, None, JobState.RUNNING, JobState.WAITING_CHILDREN)
    total = completed + failed + pending + running
    rate = 0.0 if total == 0 else 100.0 * completed / total
    return BackgroundJobsStatistics(
        total=total,
        completed=completed,
        failed=failed,
        pending=pending,
        running=running,
        success_rate=f"{rate:.2f}%",
    )


def background_state(stats: Stats) -> BackgroundJobsState:
    return BackgroundJobsState(
        is_running=stats.is_running,
        currently_processing=stats.currently_processing,
        max_concurrent_jobs=stats.max_concurrency,
    )


def whole_percent(job: Job, percent: float) -> int:
    """Rounded down, so a job never shows 100 before it has completed."""
    if job.state is JobState.COMPLETED:
        return 100
    return min(99, max(0, math.floor(percent)))


def background_job(job: Job, percent: float) -> BackgroundJob:
    return BackgroundJob(
        id=job.id,
        type=job.type,
        status=job.display_state,
        progress=whole_percent(job, percent),
        progress_message=None if job.progress.message is None else redact_text(job.progress.message),
        queue=job.queue,
        priority=job.priority,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        error=None if job.error is None else redact_text(job.error.message),
        created_at=utc(job.created_at),
        started_at=maybe_utc(job.started_at),
        finished_at=maybe_utc(job.finished_at),
    )


# -- seed 003: BullMQ-style job status and queue statistics --------------------------------------

QueueJobState = Literal[
    "waiting", "delayed", "active", "waiting-children", "completed", "failed", "cancelled"
]
_BULL_STATES: dict[JobState, QueueJobState] = {
    JobState.PENDING: "waiting",
    JobState.SCHEDULED: "delayed",
    JobState.RUNNING: "active",
    JobState.WAITING_CHILDREN: "waiting-children",
    JobState.COMPLETED: "completed",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
}


class QueueJobProgress(BaseModel):
    step: str | None
    percentage: int = Field(ge=0, le=100)


class QueueJobStatus(BaseModel):
    id: str
    name: str = Field(description="The job type.")
    state: QueueJobState
    progress: QueueJobProgress
    result: Any = None
    error: str | None = Field(description="The last error's message (BullMQ's failedReason).")
    attemptsMade: int
    processedOn: int | None = Field(
        description="Milliseconds since the epoch, when the last attempt started."
    )
    finishedOn: int | None = Field(description="Milliseconds since the epoch.")
    timestamp: int = Field(description="Milliseconds since the epoch, when the job was created.")
    data: dict[str, Any] = Field(description="The payload, secret-looking keys redacted.")


class QueueStats(BaseModel):
    queueName: str
    waiting: int
    active: int
    completed: int
    failed: int
    delayed: int
    total: int


def _ms(at: float | None) -> int | None:
    return None if at is None else round(at * 1000)


def queue_job_status(job: Job) -> QueueJobStatus:
    return QueueJobStatus(
        id=job.id,
        name=job.type,
        state=_BULL_STATES[job.state],
        progress=QueueJobProgress(
            step=job.progress.step, percentage=whole_percent(job, job.progress.percent)
        ),
        result=redact(job.result),
        error=None if job.error is None else redact_text(job.error.message),
        attemptsMade=job.attempts,
        processedOn=_ms(job.started_at),
        finishedOn=_ms(job.finished_at),
        timestamp=round(job.created_at * 1000),
        data=redact(dict(job.payload)),
    )


def queue_stats(stats: Stats, queues: Iterable[str]) -> dict[str, QueueStats]:
    result = {}
    for name in sorted(set(queues)):
        counts = {
            "waiting": _count(stats, name, JobState.PENDING),
            "active": _count(stats, name, JobState.RUNNING, JobState.WAITING_CHILDREN),
            "completed": _count(stats, name, JobState.COMPLETED),
            "failed": _count(stats, name, JobState.FAILED),
            "delayed": _count(stats, name, JobState.SCHEDULED),
        }
        result[name] = QueueStats(queueName=name, total=sum(counts.values()), **counts)
    return result


def known_queues(stats: Stats) -> list[str]:
    return [q.queue for q in stats.queues]


# -- seed 004: job-status records per user --------------------------------------------------------


class JobStatusRecord(BaseModel):
    job_id: str
    user_id: str | None
    type: str
    queue: str
    status: str
    progress: int = Field(ge=0, le=100)
    progress_message: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    duration_seconds: float | None = Field(description="From the last attempt's start to the end.")
    result: Any = None
    error: str | None


class UserJobStatus(BaseModel):
    user_id: str
    status: str | None = Field(description="The newest job's status; null if the user has no jobs.")
    jobs: list[JobStatusRecord] = Field(description="The user's newest jobs first.")


class JobStatusList(BaseModel):
    jobs: list[JobStatusRecord]


def status_record(job: Job) -> JobStatusRecord:
    finished = job.finished_at
    duration = None
    if finished is not None and job.started_at is not None:
        duration = round(max(0.0, finished - job.started_at), 3)
    return JobStatusRecord(
        job_id=job.id,
        user_id=job.user_id,
        type=job.type,
        queue=job.queue,
        status=job.display_state,
        progress=whole_percent(job, job.progress.percent),
        progress_message=None if job.progress.message is None else redact_text(job.progress.message),
        attempts=job.attempts,
        created_at=utc(job.created_at),
        started_at=maybe_utc(job.started_at),
        completed_at=maybe_utc(finished) if job.state is JobState.COMPLETED else None,
        failed_at=maybe_utc(finished) if job.state is JobState.FAILED else None,
        duration_seconds=duration,
        result=redact(job.result),
        error=None if job.error is None else redact_text(job.error.message),
    )


# -- the live view's statistics event --------------------------------------------------------------


class StatsEvent(BaseModel):
    status: BackgroundJobsState
    statistics: BackgroundJobsStatistics
    queues: dict[str, QueueStats]


def stats_event(stats: Stats) -> StatsEvent:
    return StatsEvent(
        status=background_state(stats),
        statistics=background_statistics(stats),
        queues=queue_stats(stats, known_queues(stats)),
    )
