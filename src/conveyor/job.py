"""The job record and the options that shape one enqueue.

Records are frozen: a `Job` is a snapshot read from a backend, never a live
handle. Times are POSIX seconds (floats) taken from the app's clock.
"""

from __future__ import annotations

import enum
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError, PayloadError

PRIORITY_URGENT = 1
PRIORITY_HIGH = 2
PRIORITY_NORMAL = 3
PRIORITY_LOW = 10
PRIORITY_RANGE = range(1, 11)


class JobState(enum.StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    WAITING_CHILDREN = "waiting_children"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_STATES


LIVE_STATES = frozenset({JobState.PENDING, JobState.SCHEDULED, JobState.RUNNING, JobState.WAITING_CHILDREN})
FINISHED_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})


@dataclass(frozen=True, slots=True)
class Progress:
    percent: float = 0.0
    message: str | None = None
    step: str | None = None


NO_PROGRESS = Progress()
"""Shared by every job that reported no progress: jobs are made by the thousand (claims, listings)."""


@dataclass(frozen=True, slots=True)
class AttemptError:
    """Why one attempt ended badly, kept for every attempt that did."""

    attempt: int
    at: float
    type: str
    message: str
    traceback: str | None = None


@dataclass(frozen=True, slots=True)
class LogLine:
    job_id: str
    at: float
    line: str


class FailurePolicy(enum.StrEnum):
    """What a child's failure does to its parent."""

    FAIL_PARENT = "fail_parent"  # the parent fails at once; its other unfinished children are cancelled
    CONTINUE = "continue"  # recorded in the parent's error bag; the flow goes on (graceful degradation)


class ThenAction(enum.StrEnum):
    """What a parent does once its last child has ended."""

    COMPLETE = "complete"
    RUN = "run"  # run again: the type's on_children_done step, or the handler of a flow built up front


class DedupMode(enum.StrEnum):
    """How a second enqueue with the same dedup_key (in one queue) is treated."""

    LIVE = "live"  # returns the live job holding the key, if any
    THROTTLE = "throttle"  # returns the job that took the key within dedup_ttl, even if finished
    DEBOUNCE = "debounce"  # replaces the waiting job's payload and restarts its delay


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    """A named part of a job's work; `total` is the expected count when known up front."""

    weight: float = 1.0
    total: float = 0.0


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    type: str
    queue: str
    payload: Mapping[str, Any]
    state: JobState
    priority: int
    attempts: int
    max_attempts: int
    run_at: float
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    lease_until: float | None = None
    worker_id: str | None = None
    progress: Progress = NO_PROGRESS
    result: Any = None
    error: AttemptError | None = None
    dedup_key: str | None = None
    tenant: str | None = None
    user_id: str | None = None
    tags: tuple[str, ...] = ()
    parent_id: str | None = None
    timeout: float | None = None
    cancel_requested: bool = False
    failure_policy: FailurePolicy = FailurePolicy.FAIL_PARENT
    phase: str | None = None
    weight: float = 1.0
    phases: Mapping[str, PhaseSpec] = field(default_factory=dict)
    children_total: int = 0
    children_pending: int = 0
    stage: int = 0
    then: ThenAction = ThenAction.COMPLETE
    key: str | None = None
    group: str | None = None

    @property
    def display_state(self) -> str:
        """The state a person sees: a scheduled job that already failed once is 'retrying'."""
        if self.state is JobState.SCHEDULED and self.attempts > 0:
            return "retrying"
        return self.state.value


MAX_DELAY = 10 * 365.25 * 86_400.0
"""Ten years: the furthest a delay, a dedup window or a run_at may reach (run_at as an absolute time)."""
MAX_RUN_AT = 7_258_118_400.0
"""2200-01-01 UTC: every reader (Python datetimes, JSON, the dashboard's JavaScript) can show it."""
MAX_ATTEMPTS = 1000
MAX_TIMEOUT = 30 * 86_400.0
MAX_WEIGHT = 1e9
MAX_TEXT = 200
"""Characters in a tenant, user id, rate-limit key, group or tag."""
MAX_DEDUP_KEY = 512
MAX_TAGS = 50


def _finite(name: str, value: float, low: float, high: float, *, strict_low: bool = False) -> None:
    """One bound check for every number: a NaN or an infinity stored once breaks every reader after."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PayloadError(f"{name} must be a finite number, got {value!r}")
    if (value <= low if strict_low else value < low) or value > high:
        shown = f"> {low:g}" if strict_low else f">= {low:g}"
        raise PayloadError(f"{name} must be {shown} and <= {high:g}, got {value:g}")


def _text(name: str, value: object, limit: int) -> None:
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise PayloadError(f"{name} must be at most {limit} characters, got {len(value)}")
    if not value.isprintable():
        raise PayloadError(f"{name} must not contain control characters")


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Per-enqueue choices; `None` means 'use the job type's default'."""

    priority: int | None = None
    delay: float | None = None
    run_at: float | None = None
    dedup_key: str | None = None
    tenant: str | None = None
    user_id: str | None = None
    tags: Sequence[str] = ()
    attempts: int | None = None
    timeout: float | None = None
    queue: str | None = None
    on_failure: FailurePolicy | str = FailurePolicy.FAIL_PARENT
    phase: str | None = None
    weight: float = 1.0
    key: str | None = None
    group: str | None = None
    dedup: DedupMode | str = "live"
    dedup_ttl: float | None = None

    def __post_init__(self) -> None:
        try:
            mode = DedupMode(self.dedup)
        except ValueError:
            raise PayloadError(
                f"dedup must be 'live', 'throttle' or 'debounce', got {self.dedup!r}"
            ) from None
        if mode is not DedupMode.LIVE and self.dedup_key is None:
            raise PayloadError(f"dedup={mode.value!r} needs a dedup_key")
        if mode is DedupMode.THROTTLE and not (self.dedup_ttl and self.dedup_ttl > 0):
            raise PayloadError("dedup='throttle' needs dedup_ttl > 0 seconds")
        try:
            policy = FailurePolicy(self.on_failure)
        except ValueError:
            raise PayloadError(
                f"on_failure must be 'fail_parent' or 'continue', got {self.on_failure!r}"
            ) from None
        _finite("weight", self.weight, 0, MAX_WEIGHT, strict_low=True)
        if self.priority is not None:
            check_priority(self.priority)
        if self.delay is not None:
            _finite("delay", self.delay, 0, MAX_DELAY)
        if self.run_at is not None:
            _finite("run_at", self.run_at, 0, MAX_RUN_AT)
        if self.delay is not None and self.run_at is not None:
            raise PayloadError("give either delay or run_at, not both")
        if self.dedup_ttl is not None:
            _finite("dedup_ttl", self.dedup_ttl, 0, MAX_DELAY)
        if self.attempts is not None:
            if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
                raise PayloadError(f"attempts must be an integer, got {self.attempts!r}")
            _finite("attempts", self.attempts, 1, MAX_ATTEMPTS)
        if self.timeout is not None:
            _finite("timeout", self.timeout, 0, MAX_TIMEOUT, strict_low=True)
        for name in ("tenant", "user_id", "key", "group"):
            if (value := getattr(self, name)) is not None:
                _text(name, value, MAX_TEXT)
        if self.dedup_key is not None:
            _text("dedup_key", self.dedup_key, MAX_DEDUP_KEY)
        if isinstance(self.tags, str):
            raise PayloadError("tags must be a list of strings, not one string")
        if len(self.tags) > MAX_TAGS:
            raise PayloadError(f"tags: at most {MAX_TAGS}, got {len(self.tags)}")
        for tag in self.tags:
            _text("tags: each tag", str(tag), MAX_TEXT)
        # Stored normalised, so every enqueue with these options reads them as they are.
        object.__setattr__(self, "tags", tuple(str(t) for t in self.tags))
        object.__setattr__(self, "on_failure", policy)
        object.__setattr__(self, "dedup", mode)


DEFAULT_OPTIONS = JobOptions()


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.:")


def check_name(kind: str, value: str) -> str:
    """Queue, job type and schedule names end up in keys, URLs and env variable names."""
    if not value or len(value) > 200 or not set(value.lower()) <= _NAME_CHARS:
        raise ConfigurationError(
            f"{kind} {value!r} must be 1-200 characters of letters, digits, '-', '_', '.', ':'"
        )
    return value


def check_priority(priority: int) -> int:
    if not isinstance(priority, int) or priority not in PRIORITY_RANGE:
        raise PayloadError(f"priority must be an integer from 1 (urgent) to 10 (low), got {priority!r}")
    return priority


@dataclass(frozen=True, slots=True)
class Submitted:
    """What `Conveyor.submit` did: the job, and whether it is new or the live one holding its dedup key."""

    job: Job
    created: bool


@dataclass(slots=True)
class NewJob:
    """A job as the engine hands it to a backend: validated, serialised, timed.

    Not frozen: a bulk enqueue builds one per job, and a frozen dataclass's
    `__init__` costs twice as much. Nothing changes one after it is built.
    """

    id: str
    type: str
    queue: str
    payload_json: str
    state: JobState
    priority: int
    max_attempts: int
    run_at: float
    created_at: float
    dedup_key: str | None = None
    tenant: str | None = None
    user_id: str | None = None
    tags: tuple[str, ...] = ()
    timeout: float | None = None
    parent_id: str | None = None
    spawn_key: str | None = None
    failure_policy: FailurePolicy = FailurePolicy.FAIL_PARENT
    phase: str | None = None
    weight: float = 1.0
    then: ThenAction = ThenAction.COMPLETE
    key: str | None = None
    rate_limit: int | None = None
    rate_per: float | None = None
    group: str | None = None
    group_limit: int | None = None
    dedup: DedupMode = DedupMode.LIVE
    dedup_until: float | None = None


@dataclass(frozen=True, slots=True)
class NewJobBatch:
    """Jobs alike in everything but id and payload: what `enqueue_many` hands a backend.

    Given the shared fields once, a backend builds one row or record and copies
    it per job, instead of a NewJob being made and read back for each of
    thousands of jobs. A batch never has a dedup key or a parent, so every job
    in it is stored.
    """

    template: NewJob  # the shared fields; its id and payload_json are placeholders
    ids: Sequence[str]
    payloads: Sequence[str]  # validated JSON, one per id

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.payloads):
            raise ValueError(f"{len(self.ids)} ids for {len(self.payloads)} payloads")
        if self.template.dedup_key is not None or self.template.parent_id is not None:
            raise ValueError("a batch's jobs cannot share a dedup key or a parent")


@dataclass(frozen=True, slots=True)
class BagEntry:
    """One item-level error kept in a job's error bag (seed 000's errorsBag)."""

    job_id: str
    kind: str
    message: str
    item: str = ""
    at: float = 0.0


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [high + low for high in _CROCKFORD for low in _CROCKFORD]
"""Every 10-bit value as two Crockford base32 digits: 13 lookups encode an id."""
_STAMP_SHIFTS = (40, 30, 20, 10, 0)  # the first 10 digits: a 50-bit field holding the millisecond time
_RANDOM_SHIFTS = (70, 60, 50, 40, 30, 20, 10, 0)  # the last 16: 80 random bits


def new_job_id() -> str:
    """26 characters: a millisecond timestamp then 80 random bits, in Crockford's base32.

    Unique across processes (`random` is reseeded in every forked child), and
    sorted by creation time when compared as text (fixed width, digits in
    ASCII order). Ids need not be unguessable: access to a job goes through
    authentication, never through knowing its id.
    """
    (job_id,) = new_job_ids(1)
    return job_id


def new_job_ids(count: int) -> list[str]:
    """`count` ids made at one instant, as `new_job_id` makes one.

    A bulk enqueue makes one per job, so the timestamp's digits are encoded
    once and each id costs only its random part, built from a pair table
    rather than `base64.b32encode`.
    """
    ms = time.time_ns() // 1_000_000
    stamp = "".join([_PAIRS[(ms >> shift) & 1023] for shift in _STAMP_SHIFTS])
    bits = random.getrandbits
    return [
        stamp + "".join([_PAIRS[(n >> shift) & 1023] for shift in _RANDOM_SHIFTS])
        for n in [bits(80) for _ in range(count)]
    ]
