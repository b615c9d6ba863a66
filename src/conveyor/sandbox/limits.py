"""Rate-limit primitives the simulators share, all driven by an injectable clock.

Tests move a `FakeClock` instead of sleeping, so a window reset or a bucket
refill costs no wall time.
"""

from __future__ import annotations

import math

from conveyor import Clock


class FixedWindow:
    """Counts requests in windows aligned to multiples of `seconds` on the clock.

    Refused requests are not counted, so `remaining` never goes below zero and
    a client that backs off gets the full next window.
    """

    def __init__(self, limit: int, seconds: float, clock: Clock) -> None:
        if limit < 1 or seconds <= 0:
            raise ValueError("a window needs a positive limit and length")
        self.limit = limit
        self.seconds = seconds
        self._clock = clock
        self._start = -math.inf
        self._used = 0
        self.exhausted = 0
        """Windows that ran out: each is a moment when clients in flight can overshoot the limit."""

    def _roll(self) -> None:
        start = math.floor(self._clock.now() / self.seconds) * self.seconds
        if start != self._start:
            self._start = start
            self._used = 0

    def remaining(self) -> int:
        self._roll()
        return self.limit - self._used

    def reset_at(self) -> float:
        self._roll()
        return self._start + self.seconds

    def try_take(self) -> bool:
        self._roll()
        if self._used >= self.limit:
            return False
        self._used += 1
        if self._used == self.limit:
            self.exhausted += 1
        return True


class TokenBucket:
    """A bucket of `capacity` tokens refilled at `rate` per second, starting full.

    The same shape serves Amazon's rate/burst pairs, Shopify's GraphQL cost
    points, and Shopify's REST leaky bucket (used = capacity - available).
    """

    def __init__(self, capacity: float, rate: float, clock: Clock) -> None:
        if capacity <= 0 or rate <= 0:
            raise ValueError("a bucket needs a positive capacity and rate")
        self.capacity = float(capacity)
        self.rate = float(rate)
        self._clock = clock
        self._available = float(capacity)
        self._at = clock.now()
        self._short = False
        self.ran_short = 0
        """Times the bucket went from affording a take to refusing one."""

    def available(self) -> float:
        now = self._clock.now()
        self._available = min(self.capacity, self._available + (now - self._at) * self.rate)
        self._at = now
        return self._available

    def used(self) -> float:
        return self.capacity - self.available()

    def try_take(self, amount: float = 1.0) -> bool:
        if self.available() < amount:
            if not self._short:
                self.ran_short += 1
            self._short = True
            return False
        self._available -= amount
        self._short = False
        return True

    def refund(self, amount: float) -> None:
        self._available = min(self.capacity, self.available() + amount)
