"""Cron and interval schedules, and the loop that fires them.

A schedule lives in the backend with its next tick. Any number of schedulers
(every worker runs one, plus `conveyor scheduler`) may look at it; firing is a
compare-and-set on that tick in the same atomic call as the enqueue, so each
tick produces exactly one job however many schedulers race for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from croniter import croniter

from .errors import ConfigurationError, ConveyorError, UnknownJobType
from .job import JobOptions

if TYPE_CHECKING:
    from .app import Conveyor

log = logging.getLogger("conveyor.scheduler")


class MissedPolicy(enum.StrEnum):
    """What to do with ticks that passed while no scheduler ran."""

    SKIP = "skip"  # forget them; fire at the next tick
    RUN_ONCE = "run_once"  # fire once now for all of them, then resume at the next tick


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    job_type: str
    cron: str | None = None
    every: float | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    priority: int | None = None
    queue: str | None = None
    tenant: str | None = None
    user_id: str | None = None
    jitter: float = 0.0
    missed: MissedPolicy = MissedPolicy.SKIP
    next_run_at: float = 0.0
    last_run_at: float | None = None
    last_job_id: str | None = None

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise ConfigurationError(f"schedule {self.name!r} needs exactly one of cron= or every=")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ConfigurationError(f"schedule {self.name!r}: {self.cron!r} is not a valid cron expression")
        if self.every is not None and not (math.isfinite(self.every) and self.every >= 1):
            raise ConfigurationError(f"schedule {self.name!r}: every= must be at least 1 second")
        if self.jitter < 0:
            raise ConfigurationError(f"schedule {self.name!r}: jitter must be >= 0")
        MissedPolicy(self.missed)

    @property
    def offset(self) -> float:
        """A fixed, name-derived shift within `jitter`, spreading many schedules over a period."""
        if not self.jitter:
            return 0.0
        return (zlib.crc32(self.name.encode()) % 1_000_000) / 1_000_000 * self.jitter

    def next_after(self, when: float) -> float:
        """The first tick strictly after `when`."""
        shifted = when - self.offset
        if self.every is not None:
            tick = (math.floor(shifted / self.every) + 1) * self.every
        else:
            assert self.cron is not None
            start = datetime.fromtimestamp(shifted, UTC)
            tick = float(croniter(self.cron, start).get_next(float))
        return tick + self.offset

    def same_timing(self, other: Schedule) -> bool:
        return (self.cron, self.every, self.jitter) == (other.cron, other.every, other.jitter)

    def options(self) -> JobOptions:
        return JobOptions(priority=self.priority, queue=self.queue, tenant=self.tenant, user_id=self.user_id)


class Scheduler:
    """Fires due schedules of one app; safe to run in many processes at once."""

    def __init__(self, app: Conveyor, *, poll: float = 1.0) -> None:
        self.app = app
        self.poll = poll
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        await self.app.sync_schedules()
        while not self._stop.is_set():
            try:
                await self.tick()
            except ConveyorError as exc:
                log.warning("scheduler pass failed, will retry: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll * random.uniform(0.8, 1.2)):
                    await self._stop.wait()

    async def tick(self) -> int:
        """Fire every schedule that is due now; returns how many jobs this call enqueued."""
        backend = await self.app.backend()
        now = self.app.clock.now()
        fired = 0
        for schedule in await backend.schedules():
            if schedule.next_run_at > now:
                continue
            fired += await self._fire(schedule, now)
        return fired

    async def _fire(self, schedule: Schedule, now: float) -> int:
        tick = schedule.next_run_at
        following = schedule.next_after(tick)
        missed = following <= now
        if missed:
            following = schedule.next_after(now)
        job = None
        if not missed or schedule.missed is MissedPolicy.RUN_ONCE:
            try:
                job = self.app.scheduled_job(schedule, tick)
            except UnknownJobType:
                return 0  # another process that knows this job type will fire it
        backend = await self.app.backend()
        if not await backend.claim_tick(schedule.name, tick, following, job):
            return 0
        if missed:
            log.info("schedule %s: ticks missed while no scheduler ran (%s)", schedule.name, schedule.missed)
        return 1 if job is not None else 0
