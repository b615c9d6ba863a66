"""Queue statistics: the figures behind a "how is my queue doing" view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .backends.base import QueueCounts, WorkerInfo
from .job import JobState


@dataclass(frozen=True, slots=True)
class Stats:
    queues: Sequence[QueueCounts]
    workers: Sequence[WorkerInfo]

    def count(self, state: JobState, queue: str | None = None) -> int:
        return sum(q.get(state) for q in self.queues if queue is None or q.queue == queue)

    @property
    def total(self) -> int:
        return sum(sum(q.counts.values()) for q in self.queues)

    @property
    def retrying(self) -> int:
        return sum(q.retrying for q in self.queues)

    @property
    def success_rate(self) -> float | None:
        """completed / (completed + failed), or None before anything has finished."""
        done = self.count(JobState.COMPLETED)
        finished = done + self.count(JobState.FAILED)
        return None if finished == 0 else done / finished

    @property
    def is_running(self) -> bool:
        return bool(self.workers)

    @property
    def currently_processing(self) -> int:
        return self.count(JobState.RUNNING)

    @property
    def max_concurrency(self) -> int:
        return sum(sum(w.concurrency.values()) for w in self.workers)
