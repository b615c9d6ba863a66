"""Engine records to API models: every job the API shows passes through here, redacted."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

from ..app import Conveyor
from ..backends.base import QueueCounts, WorkerInfo
from ..job import AttemptError, BagEntry, Job, JobState, LogLine
from ..schedules import Schedule
from ..tracker import TrackerNode
from .auth import Caller
from .models import (
    AttemptErrorOut,
    BagEntryOut,
    JobOut,
    LastErrorOut,
    LogLineOut,
    PhaseOut,
    ProgressOut,
    QueueOut,
    ScheduleOut,
    TrackerOut,
    WorkerOut,
)
from .redact import redact, redact_text

log = logging.getLogger("conveyor.api")
T = TypeVar("T")

DISPLAY_STATES = (
    "pending",
    "scheduled",
    "retrying",
    "running",
    "waiting_children",
    "completed",
    "failed",
    "cancelled",
)


class Unshowable(ValueError):
    """A stored record no view can show (a time out of every calendar's range), left by an older
    version that stored options unchecked. Listings leave it out; asked for alone, it is a 422."""


def utc(at: float) -> datetime:
    try:
        return datetime.fromtimestamp(at, UTC)
    except (OverflowError, ValueError, OSError):
        raise Unshowable(f"time {at!r} is out of range") from None


def showable(convert: Callable[[Job], T], jobs: Iterable[Job]) -> list[T]:
    """Each job converted, leaving out (and logging) the ones that cannot be shown."""
    shown = []
    for job in jobs:
        try:
            shown.append(convert(job))
        except Unshowable as exc:
            log.warning("job %s is left out of a listing: its record cannot be shown (%s)", job.id, exc)
    return shown


def maybe_utc(at: float | None) -> datetime | None:
    return None if at is None else utc(at)


def epoch(at: datetime) -> float:
    """Seconds since the epoch; a naive time is taken as UTC, never as the server's local time."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()


def _text(value: str | None) -> str | None:
    return None if value is None else redact_text(value)


def startable_types(app: Conveyor, caller: Caller) -> list[str]:
    """The job types this caller may enqueue: all of them, or for a tenant those open to tenants."""
    return sorted(name for name, t in app.job_types.items() if caller.tenant is None or t.tenants)


def job_out(job: Job) -> JobOut:
    error = job.error
    return JobOut(
        id=job.id,
        type=job.type,
        queue=job.queue,
        state=job.state,
        display_state=job.display_state,
        priority=job.priority,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        progress=ProgressOut(
            percent=min(100.0, max(0.0, job.progress.percent)),
            message=_text(job.progress.message),
            step=job.progress.step,
        ),
        payload=redact(dict(job.payload)),
        result=redact(job.result),
        error=None
        if error is None
        else LastErrorOut(
            type=error.type, message=redact_text(error.message), attempt=error.attempt, at=utc(error.at)
        ),
        tenant=job.tenant,
        user_id=job.user_id,
        tags=list(job.tags),
        parent_id=job.parent_id,
        dedup_key=job.dedup_key,
        created_at=utc(job.created_at),
        run_at=utc(job.run_at),
        started_at=maybe_utc(job.started_at),
        finished_at=maybe_utc(job.finished_at),
        cancel_requested=job.cancel_requested,
        children_total=job.children_total,
        children_pending=job.children_pending,
    )


def attempt_error_out(error: AttemptError, caller: Caller) -> AttemptErrorOut:
    """Tracebacks show the server's code and paths: operators need them, a store's token does not."""
    return AttemptErrorOut(
        type=error.type,
        message=redact_text(error.message),
        attempt=error.attempt,
        at=utc(error.at),
        traceback=_text(error.traceback) if caller.tenant is None else None,
    )


def log_line_out(line: LogLine) -> LogLineOut:
    return LogLineOut(at=utc(line.at), line=redact_text(line.line))


def _bag_entry_out(entry: BagEntry) -> BagEntryOut:
    return BagEntryOut(
        job_id=entry.job_id,
        kind=entry.kind,
        message=redact_text(entry.message),
        item=entry.item,
        at=utc(entry.at),
    )


def tracker_out(node: TrackerNode, caller: Caller) -> TrackerOut:
    """The progress tree; a child explicitly owned by another tenant is left out with its subtree."""
    return TrackerOut(
        job_id=node.job.id,
        type=node.job.type,
        state=node.job.display_state,
        percent=round(node.percent, 2),
        phases=[
            PhaseOut(
                name=p.name, weight=p.weight, total=p.total, done=p.done, failed=p.failed, fraction=p.fraction
            )
            for p in node.phases
        ],
        errors=dict(node.errors),
        bag=[_bag_entry_out(entry) for entry in node.bag],
        states=dict(node.states),
        children=[tracker_out(child, caller) for child in node.children if caller.sees_child(child.job)],
    )


def flow_progress(node: TrackerNode) -> dict[str, float | str]:
    """A flow's progress in one bar and one line: its weighted percent and its phases' (or jobs') counts."""
    if node.phases:
        message = " · ".join(f"{p.name} {p.done:g}/{p.total:g}" for p in node.phases if p.total)
    else:
        below = sum((child.states for child in node.children), Counter[str]())
        finished = sum(below[state.value] for state in (JobState.COMPLETED, JobState.FAILED))
        message = f"{finished}/{sum(below.values())} jobs finished"
    return {"percent": round(node.percent, 1), "message": message}


def display_counts(queue: QueueCounts) -> dict[str, int]:
    """Counts per display state; retrying jobs are taken out of 'scheduled' so the values add up."""
    counts = {state.value: queue.get(state) for state in JobState}
    counts["scheduled"] -= queue.retrying
    counts["retrying"] = queue.retrying
    return {name: counts[name] for name in DISPLAY_STATES}


def queue_out(queue: QueueCounts) -> QueueOut:
    counts = display_counts(queue)
    return QueueOut(queue=queue.queue, paused=queue.paused, counts=counts, total=sum(counts.values()))


def worker_out(worker: WorkerInfo) -> WorkerOut:
    return WorkerOut(
        id=worker.id,
        hostname=worker.hostname,
        pid=worker.pid,
        concurrency=dict(worker.concurrency),
        running=worker.running,
        started_at=utc(worker.started_at),
        last_seen=utc(worker.last_seen),
    )


def schedule_out(schedule: Schedule) -> ScheduleOut:
    return ScheduleOut(
        name=schedule.name,
        job_type=schedule.job_type,
        cron=schedule.cron,
        every=schedule.every,
        payload=redact(dict(schedule.payload)),
        priority=schedule.priority,
        queue=schedule.queue,
        tenant=schedule.tenant,
        user_id=schedule.user_id,
        jitter=schedule.jitter,
        missed=schedule.missed.value,
        next_run_at=utc(schedule.next_run_at),
        last_run_at=maybe_utc(schedule.last_run_at),
        last_job_id=schedule.last_job_id,
    )
