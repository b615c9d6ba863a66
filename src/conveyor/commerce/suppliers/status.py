"""Seed 003's reply shapes (BullMQ's vocabulary, camelCase on the wire) built from the engine's records.

The HTTP API renders the same shapes for any job; this small copy keeps the
commerce layer free of the HTTP layer. The mapping is the engine's states to
BullMQ's: pending → waiting, scheduled → delayed, running → active, parents
waiting for their children count as active in the queue figures, and
cancelled jobs are left out of `total`.
"""

# ruff: noqa: N815 - field names are the seed's wire names

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from conveyor import Job, JobState, Stats

QueueState = Literal["waiting", "delayed", "active", "waiting-children", "completed", "failed", "cancelled"]
_STATES: dict[JobState, QueueState] = {
    JobState.PENDING: "waiting",
    JobState.SCHEDULED: "delayed",
    JobState.RUNNING: "active",
    JobState.WAITING_CHILDREN: "waiting-children",
    JobState.COMPLETED: "completed",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
}


class JobProgress(BaseModel):
    step: str | None
    percentage: int = Field(ge=0, le=100)


class JobStatus(BaseModel):
    found: bool
    jobId: str
    queueName: str
    state: QueueState | None = None
    progress: JobProgress | None = None
    result: Any = None
    error: str | None = None
    attemptsMade: int = 0
    processedOn: int | None = Field(default=None, description="Milliseconds since the epoch.")
    finishedOn: int | None = Field(default=None, description="Milliseconds since the epoch.")
    timestamp: int | None = Field(default=None, description="Creation, milliseconds since the epoch.")


class QueueStats(BaseModel):
    queueName: str
    waiting: int
    active: int
    completed: int
    failed: int
    delayed: int
    total: int


class QueuedJob(BaseModel):
    supplier: str
    jobId: str
    queueName: str
    status: QueueState = Field(description="The job's state: a supplier already syncing keeps its live job.")


class SyncQueued(BaseModel):
    success: bool = True
    mode: Literal["queued"] = "queued"
    suppliersEnqueued: int
    jobs: list[QueuedJob]


class SupplierResult(BaseModel):
    supplier: str
    productsProcessed: int = Field(description="Families written to the catalog with all their pictures.")
    errors: int = Field(description="Unreadable files plus families that failed.")
    skipped: int = Field(description="Families unchanged since the last sync.")
    duration: str = Field(description='Seconds, e.g. "45.23s".')


class SyncDone(BaseModel):
    success: bool
    mode: Literal["direct"] = "direct"
    suppliersProcessed: int
    results: list[SupplierResult]


def _ms(at: float | None) -> int | None:
    return None if at is None else round(at * 1000)


def _percent(job: Job) -> int:
    """Whole percent, rounded down, so a job shows 100 only once it has completed."""
    if job.state is JobState.COMPLETED:
        return 100
    return min(99, max(0, math.floor(job.progress.percent)))


def job_status(job: Job) -> JobStatus:
    return JobStatus(
        found=True,
        jobId=job.id,
        queueName=job.queue,
        state=_STATES[job.state],
        progress=JobProgress(step=job.progress.step, percentage=_percent(job)),
        result=job.result,
        error=None if job.error is None else job.error.message,
        attemptsMade=job.attempts,
        processedOn=_ms(job.started_at),
        finishedOn=_ms(job.finished_at),
        timestamp=_ms(job.created_at),
    )


def queue_state(job: Job) -> QueueState:
    return _STATES[job.state]


def queue_stats(stats: Stats, queue: str) -> QueueStats:
    counts = {
        "waiting": stats.count(JobState.PENDING, queue),
        "active": stats.count(JobState.RUNNING, queue) + stats.count(JobState.WAITING_CHILDREN, queue),
        "completed": stats.count(JobState.COMPLETED, queue),
        "failed": stats.count(JobState.FAILED, queue),
        "delayed": stats.count(JobState.SCHEDULED, queue),
    }
    return QueueStats(queueName=queue, total=sum(counts.values()), **counts)
