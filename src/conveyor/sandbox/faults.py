"""Seeded fault injection: the same seed gives the same faults in the same order.

Faults are decided before a request reaches its handler, so an injected 5xx,
429 or timeout never changes state: a retry is always safe against the
simulator. `timeout_mode="late"` is the exception on purpose: the request is
processed after the delay, like a real API that wrote the product but answered
after the client gave up (the case that makes blind create-retries duplicate).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class FaultKind(StrEnum):
    ERROR = "error"
    THROTTLE = "throttle"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class FaultConfig:
    seed: int = 0
    latency: tuple[float, float] = (0.0, 0.0)
    """Uniform extra delay (seconds) added to every request."""
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503)
    throttle_rate: float = 0.0
    """Share of requests answered 429 while the limiter still has room."""
    timeout_rate: float = 0.0
    timeout_delay: float = 30.0
    """How long a timed-out request is held: set it above the client's timeout."""
    timeout_mode: Literal["drop", "late"] = "drop"


@dataclass(frozen=True)
class Fault:
    kind: FaultKind | None
    latency: float = 0.0
    status: int = 0


class FaultInjector:
    def __init__(self, config: FaultConfig) -> None:
        for rate in (config.error_rate, config.throttle_rate, config.timeout_rate):
            if not 0.0 <= rate <= 1.0:
                raise ValueError("fault rates are shares between 0 and 1")
        self.config = config
        self._rng = random.Random(config.seed)
        self._forced: deque[FaultKind] = deque()

    def force(self, *kinds: FaultKind) -> None:
        """Make the next requests fail with these faults, in order, whatever the rates say."""
        self._forced.extend(kinds)

    def draw(self) -> Fault:
        low, high = self.config.latency
        latency = self._rng.uniform(low, high) if high > 0 else 0.0
        roll = self._rng.random()
        status = self._rng.choice(self.config.error_statuses)
        if self._forced:
            return Fault(self._forced.popleft(), latency, status)
        c = self.config
        if roll < c.error_rate:
            return Fault(FaultKind.ERROR, latency, status)
        if roll < c.error_rate + c.throttle_rate:
            return Fault(FaultKind.THROTTLE, latency, status)
        if roll < c.error_rate + c.throttle_rate + c.timeout_rate:
            return Fault(FaultKind.TIMEOUT, latency, status)
        return Fault(None, latency, status)
