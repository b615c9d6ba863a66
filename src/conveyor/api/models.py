"""The JSON the API speaks, as pydantic models, so that the OpenAPI document is exact.

Times are ISO 8601 in UTC. Payloads and results are shown with secret-looking
keys redacted (see `redact.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ..job import MAX_ATTEMPTS, MAX_DEDUP_KEY, MAX_DELAY, MAX_TAGS, MAX_TEXT, MAX_TIMEOUT, JobState


class ErrorBody(BaseModel):
    detail: str = Field(description="Why the request was refused.")


class ValidationErrorBody(BaseModel):
    detail: str | list[dict[str, Any]] = Field(
        description="The engine's message (bad payload, unknown type, bad cursor), or FastAPI's list of"
        " invalid fields."
    )


class ProgressOut(BaseModel):
    percent: float = Field(ge=0, le=100)
    message: str | None = None
    step: str | None = None


class LastErrorOut(BaseModel):
    type: str = Field(description="The exception class, e.g. ValueError or JobTimeout.")
    message: str
    attempt: int
    at: datetime


class AttemptErrorOut(LastErrorOut):
    traceback: str | None = None


class JobOut(BaseModel):
    id: str
    type: str
    queue: str
    state: JobState
    display_state: str = Field(description="The state a person sees: 'retrying' for a scheduled retry.")
    priority: int = Field(description="1 urgent, 2 high, 3 normal, 10 low; lower runs first.")
    attempts: int
    max_attempts: int
    progress: ProgressOut
    payload: dict[str, Any] = Field(description="The job's arguments, secret-looking keys redacted.")
    result: Any = Field(default=None, description="The handler's return value once completed (redacted).")
    error: LastErrorOut | None = None
    tenant: str | None = None
    user_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    parent_id: str | None = None
    dedup_key: str | None = None
    created_at: datetime
    run_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested: bool = False
    children_total: int = 0
    children_pending: int = 0


class JobPageOut(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class LogLineOut(BaseModel):
    at: datetime
    line: str


class PhaseOut(BaseModel):
    name: str
    weight: float
    total: float
    done: float
    failed: float
    fraction: float


class BagEntryOut(BaseModel):
    job_id: str
    kind: str
    message: str
    item: str
    at: datetime


class TrackerOut(BaseModel):
    job_id: str
    type: str
    state: str = Field(description="Display state of this node's job.")
    percent: float
    phases: list[PhaseOut]
    errors: dict[str, int] = Field(description="Failed jobs and bagged item errors of the subtree, per kind.")
    bag: list[BagEntryOut]
    states: dict[str, int] = Field(description="States of the whole subtree, this job included.")
    children: list[TrackerOut]


class JobDetailOut(BaseModel):
    job: JobOut
    logs: list[LogLineOut]
    errors: list[AttemptErrorOut] = Field(description="One entry per attempt that ended badly, oldest first.")
    tracker: TrackerOut


class EnqueueOptionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: int | None = Field(default=None, ge=1, le=10)
    delay: float | None = Field(
        default=None,
        ge=0,
        le=MAX_DELAY,
        allow_inf_nan=False,
        description="Seconds from now; not with run_at.",
    )
    run_at: datetime | None = Field(default=None, description="When to run; naive times are UTC.")
    dedup_key: str | None = Field(default=None, min_length=1, max_length=MAX_DEDUP_KEY)
    tenant: str | None = Field(
        default=None, min_length=1, max_length=MAX_TEXT, description="Forced to the token's own tenant."
    )
    user_id: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    tags: list[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]] = Field(
        default_factory=list, max_length=MAX_TAGS
    )
    attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS)
    timeout: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)
    queue: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)


class EnqueueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="A registered job type, e.g. amazon:export:products.")
    payload: dict[str, Any] = Field(
        default_factory=dict, description="The handler's arguments, checked against its signature."
    )
    options: EnqueueOptionsIn = Field(default_factory=EnqueueOptionsIn)


class BulkFilterIn(BaseModel):
    """Which jobs a bulk action applies to; every given field must match."""

    model_config = ConfigDict(extra="forbid")

    type: str | None = None
    state: JobState | None = Field(
        default=None,
        description="Retry: failed (default) or cancelled. Cancel: any live state (default all).",
    )
    queue: str | None = None
    tenant: str | None = None
    user_id: str | None = None
    error_type: str | None = Field(default=None, description="The exception class of the last error.")
    key: str | None = Field(default=None, description="Rate-limit key, e.g. one marketplace account's.")
    text: str | None = Field(
        default=None, max_length=MAX_TEXT, description="Text in the progress message or last error."
    )


class BulkResultOut(BaseModel):
    matched: int = Field(description="Jobs that matched the filter.")
    changed: int = Field(description="Jobs retried or cancelled.")
    skipped: int = Field(description="Jobs whose state changed (or that vanished) before they were acted on.")


class QueueOut(BaseModel):
    queue: str
    paused: bool
    counts: dict[str, int] = Field(
        description="Jobs per display state; 'scheduled' excludes 'retrying', so the counts add up to total."
    )
    total: int


class WorkerOut(BaseModel):
    id: str
    hostname: str
    pid: int
    concurrency: dict[str, int]
    running: int
    started_at: datetime
    last_seen: datetime


class HealthOut(BaseModel):
    status: str


class ScheduleOut(BaseModel):
    name: str
    job_type: str
    cron: str | None = None
    every: float | None = Field(default=None, description="Seconds between ticks, for interval schedules.")
    payload: dict[str, Any] = Field(description="The payload of each job it enqueues (redacted).")
    priority: int | None = None
    queue: str | None = None
    tenant: str | None = None
    user_id: str | None = None
    jitter: float
    missed: str = Field(description="skip or run_once: what happens to ticks missed while no scheduler ran.")
    next_run_at: datetime
    last_run_at: datetime | None = None
    last_job_id: str | None = None
