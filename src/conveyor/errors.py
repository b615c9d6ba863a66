"""One error tree for Conveyor.

Library errors (bad configuration, bad input, storage trouble) derive from
`ConveyorError`. Job outcomes a handler raises on purpose (`Unrecoverable`,
`RateLimited`, `Cancelled`, `JobTimeout`) derive from `JobOutcome`: the worker
turns them into state changes and never logs them as crashes.
"""

from __future__ import annotations


class ConveyorError(Exception):
    """Base of every error Conveyor itself raises."""


class ConfigurationError(ConveyorError):
    """Settings, URLs or registrations that cannot work."""


class PayloadError(ConveyorError):
    """A payload or result that is not valid JSON, too large, or wrong for its handler."""


class UnknownJobType(ConveyorError):
    """A job type name that no handler is registered for."""


class JobNotFound(ConveyorError):
    """A job id that does not exist (or is not visible to the caller)."""


class InvalidStateTransition(ConveyorError):
    """An admin action that makes no sense for the job's current state."""


class TenantForbidden(ConveyorError):
    """A tenant's job names something the tenant does not own (another tenant's store, account...)."""


class BackendError(ConveyorError):
    """The storage refused an operation or holds data Conveyor cannot read."""


class BackendUnavailable(BackendError):
    """The storage cannot be reached (server down, file locked for too long)."""


class JobOutcome(Exception):
    """Raised inside a handler to end the attempt in a specific way."""


class Unrecoverable(JobOutcome):
    """Fail the job now: retrying cannot help (bad credentials, invalid product)."""


class RateLimited(JobOutcome):
    """Try again after `retry_after` seconds without spending an attempt."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        if retry_after < 0:
            raise ValueError("retry_after must be >= 0")
        super().__init__(message)
        self.retry_after = float(retry_after)


class Cancelled(JobOutcome):
    """The job was cancelled while it ran; raised at its next progress call."""


class JobTimeout(JobOutcome):
    """The attempt ran longer than its type's timeout."""


class WorkerLost(JobOutcome):
    """Recorded when a running job's lease expired because its worker vanished."""
