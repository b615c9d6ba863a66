"""Conveyor: durable background jobs for commerce catalog work."""

from .app import Conveyor
from .backends.base import Backend, JobFilter, JobPage, QueueCounts, WorkerInfo
from .backoff import Backoff, ExponentialBackoff, FixedBackoff
from .clock import Clock, FakeClock, SystemClock
from .context import JobContext, chunked
from .errors import (
    BackendError,
    BackendUnavailable,
    Cancelled,
    ConfigurationError,
    ConveyorError,
    InvalidStateTransition,
    JobNotFound,
    JobOutcome,
    JobTimeout,
    PayloadError,
    RateLimited,
    TenantForbidden,
    UnknownJobType,
    Unrecoverable,
    WorkerLost,
)
from .events import FROM_OLDEST, EventBatch, JobEvent, JobEventKind
from .flows import Flow
from .job import (
    PRIORITY_HIGH,
    PRIORITY_LOW,
    PRIORITY_NORMAL,
    PRIORITY_URGENT,
    AttemptError,
    BagEntry,
    DedupMode,
    FailurePolicy,
    Job,
    JobOptions,
    JobState,
    LogLine,
    PhaseSpec,
    Progress,
    Submitted,
    ThenAction,
)
from .jobtype import BoundJob, JobType
from .limits import Breaker, BreakerState, KeyState, RateLimit
from .schedules import MissedPolicy, Schedule, Scheduler
from .settings import Settings
from .stats import Stats
from .tenancy import TenantGuard
from .tracker import PhaseCount, TrackerNode
from .worker import Worker, WorkerSummary

__all__ = [
    "FROM_OLDEST",
    "PRIORITY_HIGH",
    "PRIORITY_LOW",
    "PRIORITY_NORMAL",
    "PRIORITY_URGENT",
    "AttemptError",
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "Backoff",
    "BagEntry",
    "BoundJob",
    "Breaker",
    "BreakerState",
    "Cancelled",
    "Clock",
    "ConfigurationError",
    "Conveyor",
    "ConveyorError",
    "DedupMode",
    "EventBatch",
    "ExponentialBackoff",
    "FailurePolicy",
    "FakeClock",
    "FixedBackoff",
    "Flow",
    "InvalidStateTransition",
    "Job",
    "JobContext",
    "JobEvent",
    "JobEventKind",
    "JobFilter",
    "JobNotFound",
    "JobOptions",
    "JobOutcome",
    "JobPage",
    "JobState",
    "JobTimeout",
    "JobType",
    "KeyState",
    "LogLine",
    "MissedPolicy",
    "PayloadError",
    "PhaseCount",
    "PhaseSpec",
    "Progress",
    "QueueCounts",
    "RateLimit",
    "RateLimited",
    "Schedule",
    "Scheduler",
    "Settings",
    "Stats",
    "Submitted",
    "SystemClock",
    "TenantForbidden",
    "TenantGuard",
    "ThenAction",
    "TrackerNode",
    "UnknownJobType",
    "Unrecoverable",
    "Worker",
    "WorkerInfo",
    "WorkerLost",
    "WorkerSummary",
    "chunked",
]
