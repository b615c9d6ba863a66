"""Rate limits, circuit breakers and pauses, all per key (one marketplace account, say).

A key's state lives in the backend, so every worker process sees the same
limits. Jobs held back by their key simply stay pending: they never fail or
spend attempts for it, and jobs of other keys go past them.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from .errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `limit` starts per `per` seconds: a token bucket that holds `limit` tokens."""

    limit: int
    per: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.limit, int) and self.limit >= 1):
            raise ConfigurationError(f"rate limit must be an integer >= 1, got {self.limit!r}")
        if not (math.isfinite(self.per) and self.per > 0):
            raise ConfigurationError(f"rate limit window must be > 0 seconds, got {self.per!r}")


@dataclass(frozen=True, slots=True)
class Breaker:
    """Trip after `threshold` consecutive failures of the kinds in `on`; probe after `cooldown` s."""

    on: tuple[type[BaseException], ...]
    threshold: int = 5
    cooldown: float = 60.0

    def __post_init__(self) -> None:
        if not self.on:
            raise ConfigurationError("a breaker needs the exception types that count as failures (on=...)")
        if self.threshold < 1 or self.cooldown <= 0:
            raise ConfigurationError("breaker threshold must be >= 1 and cooldown > 0")

    def counts(self, exc: BaseException) -> bool:
        return isinstance(exc, self.on)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"  # the key's jobs wait until blocked_until
    HALF_OPEN = "half_open"  # one probe job may run; its outcome closes or reopens the breaker


@dataclass(frozen=True, slots=True)
class KeyState:
    key: str
    capacity: float | None = None
    per: float | None = None
    tokens: float = 0.0
    blocked_until: float = 0.0
    paused: bool = False
    failures: int = 0
    breaker: BreakerState = BreakerState.CLOSED
    probe_job: str | None = None
