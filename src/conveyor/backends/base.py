"""The Backend protocol: the only place that knows how jobs are stored.

Every method that changes state is one atomic operation in the backend (one
SQLite transaction, one Redis Lua script). Flows add one guarantee: a child's
outcome reaches its parent's bookkeeping (children left, waking the parent,
failing it under the fail_parent policy) exactly once, so a parent wakes
exactly once, when its last child ends. SQLite does it in the child's own
transaction; Redis, where parent and child may live in different cluster
slots, through an idempotent outbox that `recover` replays after a crash
(see docs/backends.md). Methods take keyword arguments or a
frozen parameter object, so a new field never breaks an existing backend, and
return typed records. Time always comes from the caller (the engine's clock);
a backend never reads a clock of its own, which keeps tests deterministic.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..events import EventBatch
from ..job import (
    AttemptError,
    BagEntry,
    FailurePolicy,
    Job,
    JobState,
    LogLine,
    NewJob,
    NewJobBatch,
    PhaseSpec,
    ThenAction,
)
from ..limits import KeyState, RateLimit
from ..schedules import Schedule

# Stored text back to enum members, for every backend's job hydration: a dict lookup, where
# calling the Enum class costs ten times more, and every claimed or listed job goes through it.
STATES = {state.value: state for state in JobState}
POLICIES = {policy.value: policy for policy in FailurePolicy}
THEN_ACTIONS = {action.value: action for action in ThenAction}


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    id: str
    created: bool  # False: a live job with the same dedup key already existed; `id` is that job


@dataclass(frozen=True, slots=True)
class FetchParams:
    """Claim up to `limits[queue]` ready jobs per queue for `worker_id`.

    Scheduled jobs whose run_at has passed are promoted first; paused queues
    are skipped; each claimed job's attempt counter goes up by one. Jobs whose
    key is paused, rate-limited or behind an open breaker, and jobs whose group
    is at its concurrency, stay pending without blocking the jobs behind them.
    In `fair_queues`, jobs are taken round-robin across groups (or tenants)
    within a priority, so a tenant with 10,000 jobs does not starve one with 10.
    """

    worker_id: str
    limits: Mapping[str, int]
    now: float
    lease_until: float
    queue_rates: Mapping[str, RateLimit] = field(default_factory=dict)
    fair_queues: frozenset[str] = frozenset()


class SettleKind(enum.StrEnum):
    COMPLETE = "complete"  # -> completed, result stored
    RETRY = "retry"  # -> scheduled at run_at, error recorded
    FAIL = "fail"  # -> failed, error recorded
    SNOOZE = "snooze"  # -> scheduled at run_at, attempt refunded (rate limited)
    CANCEL = "cancel"  # -> cancelled
    WAIT = "wait"  # -> waiting_children (stage + 1); `then` applies when the last child ends


@dataclass(frozen=True, slots=True)
class Settlement:
    """How one attempt ended. Applied only if the worker still owns that attempt."""

    kind: SettleKind
    job_id: str
    worker_id: str
    attempt: int
    result_json: str | None = None
    error: AttemptError | None = None
    run_at: float | None = None
    then: ThenAction | None = None


@dataclass(frozen=True, slots=True)
class RenewResult:
    lost: frozenset[str]  # no longer ours (lease expired and recovered, job removed)
    cancel_requested: frozenset[str]


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    job_id: str
    percent: float | None = None
    message: str | None = None
    step: str | None = None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    hostname: str
    pid: int
    concurrency: Mapping[str, int]
    started_at: float
    last_seen: float
    running: int = 0


@dataclass(frozen=True, slots=True)
class JobFilter:
    states: Sequence[JobState] = ()
    queues: Sequence[str] = ()
    types: Sequence[str] = ()
    tenant: str | None = None
    user_id: str | None = None
    created_from: float | None = None
    created_to: float | None = None
    text: str | None = None  # substring of the progress message or last error
    error_type: str | None = None
    key: str | None = None  # the rate-limit key, e.g. one marketplace account's
    parent_id: str | None = None
    roots_only: bool = False
    """Only jobs without a parent: what a person or a schedule started, not the jobs it fanned out into."""
    oldest_first: bool = False


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class QueueCounts:
    queue: str
    counts: Mapping[JobState, int]
    retrying: int = 0  # scheduled jobs that already failed at least once
    paused: bool = False

    def get(self, state: JobState) -> int:
        return self.counts.get(state, 0)


@dataclass(frozen=True, slots=True)
class RetentionParams:
    """Keep at most `keep_last` finished jobs and none finished before now - max_age."""

    now: float
    keep_last: int | None = None
    max_age: float | None = None


@dataclass(frozen=True, slots=True)
class RecoverResult:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


@runtime_checkable
class Backend(Protocol):
    # lifecycle
    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # write
    async def enqueue(self, jobs: Sequence[NewJob]) -> list[EnqueueResult]: ...
    async def enqueue_batch(self, batch: NewJobBatch) -> None: ...  # every job is new: stores them all
    async def cancel(self, job_id: str, *, now: float) -> Job | None: ...
    async def retry(self, job_id: str, *, now: float) -> Job | None: ...
    async def remove(self, job_id: str) -> bool: ...

    # claim and settle
    async def fetch(self, params: FetchParams) -> list[Job]: ...
    async def settle(self, settlements: Sequence[Settlement], *, now: float) -> int: ...

    # leases and workers
    async def renew(
        self, worker: WorkerInfo, job_ids: Sequence[str], *, lease_until: float
    ) -> RenewResult: ...
    async def recover(self, *, now: float) -> RecoverResult: ...
    async def unregister_worker(self, worker_id: str) -> None: ...
    async def workers(self, *, alive_since: float) -> list[WorkerInfo]: ...

    # progress and logs
    async def progress(self, updates: Sequence[ProgressUpdate], *, now: float | None = None) -> None: ...
    async def log(self, lines: Sequence[LogLine]) -> None: ...

    # read
    async def get(self, job_id: str) -> Job | None: ...
    async def list_jobs(
        self, job_filter: JobFilter, *, limit: int = 50, cursor: str | None = None
    ) -> JobPage: ...
    async def counts(self, *, tenant: str | None = None) -> list[QueueCounts]: ...
    async def errors(self, job_id: str) -> list[AttemptError]: ...
    async def logs(self, job_id: str, *, limit: int = 1000) -> list[LogLine]: ...

    # flows and trackers
    async def tree(self, job_id: str) -> list[Job]: ...
    async def set_phases(self, job_id: str, phases: Mapping[str, PhaseSpec]) -> None: ...
    async def add_to_bag(self, entries: Sequence[BagEntry]) -> None: ...
    async def bag(self, job_ids: Sequence[str]) -> list[BagEntry]: ...

    # keys: rate limits, breakers, pauses
    async def keys(self) -> list[KeyState]: ...
    async def pause_key(self, key: str, *, paused: bool) -> None: ...
    async def feed_key(
        self, key: str, *, now: float, remaining: float | None, blocked_until: float
    ) -> None: ...
    async def key_failure(self, key: str, *, now: float, threshold: int, cooldown: float) -> KeyState: ...

    # schedules
    async def upsert_schedule(self, schedule: Schedule) -> None: ...
    async def schedules(self) -> list[Schedule]: ...
    async def remove_schedule(self, name: str) -> bool: ...
    async def claim_tick(self, name: str, tick: float, next_run_at: float, job: NewJob | None) -> bool: ...

    # events for live views: bounded, each written with its change
    async def events(self, after: str | None, *, limit: int = 500, block: float = 0.0) -> EventBatch:
        """Events recorded after cursor `after`, oldest first, at most `limit`.

        `after=None` starts at the end of the stream (only what happens from now
        on); `FROM_OLDEST` at the oldest event kept. With nothing to return,
        waits up to `block` seconds for an event. A cursor is opaque and only
        valid for the backend that returned it.
        """
        ...

    # waiting for work
    async def next_due(self, queues: Sequence[str]) -> float | None: ...
    async def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None: ...

    # admin
    async def pause(self, queue: str) -> None: ...
    async def resume(self, queue: str) -> None: ...
    async def cleanup(self, params: RetentionParams) -> int: ...
