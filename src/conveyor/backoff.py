"""How long to wait before attempt N+1, given that attempt N failed."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .errors import ConfigurationError


class Backoff(Protocol):
    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ...


@dataclass(frozen=True, slots=True)
class FixedBackoff:
    """A list of delays; the last one repeats if there are more attempts than entries."""

    delays: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.delays or any(d < 0 for d in self.delays):
            raise ConfigurationError("backoff needs at least one delay, none negative")

    def delay(self, attempt: int) -> float:
        return self.delays[min(max(attempt, 1), len(self.delays)) - 1]


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """base * factor**(attempt-1), capped, with 'full jitter' so retries do not stampede."""

    base: float = 1.0
    factor: float = 2.0
    maximum: float = 300.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.base <= 0 or self.factor < 1 or self.maximum < self.base:
            raise ConfigurationError("exponential backoff needs base > 0, factor >= 1, max >= base")

    def delay(self, attempt: int) -> float:
        ceiling = min(self.maximum, self.base * self.factor ** max(attempt - 1, 0))
        return random.uniform(self.base, ceiling) if self.jitter else ceiling


STORE_DEFAULT = FixedBackoff((5.0, 30.0, 300.0))


def as_backoff(value: Backoff | Sequence[float] | None) -> Backoff:
    if value is None:
        return STORE_DEFAULT
    if isinstance(value, (list, tuple)):
        return FixedBackoff(tuple(float(v) for v in value))
    if hasattr(value, "delay"):
        return value
    raise ConfigurationError(f"backoff must be a list of seconds or a Backoff, got {value!r}")
