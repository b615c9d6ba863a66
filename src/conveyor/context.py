"""What a running handler sees: its job, progress, logs, cancellation, and its children."""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .backends.base import ProgressUpdate
from .errors import Cancelled, JobOutcome
from .job import BagEntry, Job, LogLine, PhaseSpec

if TYPE_CHECKING:
    from .app import Conveyor
    from .jobtype import BoundJob, JobType

MAX_LOG_LINE = 4000
MAX_MESSAGE = 1000


@dataclass
class Report:
    progress: list[ProgressUpdate] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    bag: list[BagEntry] = field(default_factory=list)
    phases: dict[str, dict[str, PhaseSpec]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.progress or self.logs or self.bag or self.phases)


class Reporter:
    """Collects what handlers report (from any thread) until the worker writes it in a batch.

    Reporting therefore costs a dict write, so handlers may report once per item.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._progress: dict[str, ProgressUpdate] = {}
        self._pending = Report()

    def progress(self, update: ProgressUpdate) -> None:
        with self._lock:
            old = self._progress.get(update.job_id)
            if old is not None:
                update = ProgressUpdate(
                    update.job_id,
                    update.percent if update.percent is not None else old.percent,
                    update.message if update.message is not None else old.message,
                    update.step if update.step is not None else old.step,
                )
            self._progress[update.job_id] = update

    def log(self, line: LogLine) -> None:
        with self._lock:
            self._pending.logs.append(line)

    def bag(self, entry: BagEntry) -> None:
        with self._lock:
            self._pending.bag.append(entry)

    def phases(self, job_id: str, phases: Mapping[str, PhaseSpec]) -> None:
        with self._lock:
            self._pending.phases.setdefault(job_id, {}).update(phases)

    def take(self) -> Report:
        with self._lock:
            report, self._pending = self._pending, Report()
            report.progress, self._progress = list(self._progress.values()), {}
        return report

    def __bool__(self) -> bool:
        return bool(self._progress or self._pending)


class JobContext:
    """Passed to handlers whose first parameter is annotated `JobContext` (or named `ctx`)."""

    def __init__(self, job: Job, app: Conveyor, reporter: Reporter, now: Callable[[], float]) -> None:
        self.job = job
        self.app = app
        self.spawned = 0
        self._reporter = reporter
        self._now = now
        self._stop: JobOutcome | None = None

    @property
    def attempt(self) -> int:
        return self.job.attempts

    @property
    def stage(self) -> int:
        """0 on the first run; n after the job's n-th round of children has ended."""
        return self.job.stage

    @property
    def cancel_requested(self) -> bool:
        return isinstance(self._stop, Cancelled)

    def stop(self, reason: JobOutcome) -> None:
        """Called by the worker: the next progress call or `check()` raises `reason`."""
        if self._stop is None:
            self._stop = reason

    def check(self) -> None:
        """Raise if the job was cancelled, timed out or lost; cheap, call it in long loops."""
        if self._stop is not None:
            raise copy.copy(self._stop)

    def progress(
        self,
        percent: float | None = None,
        message: str | None = None,
        *,
        step: str | None = None,
        done: int | None = None,
        total: int | None = None,
    ) -> None:
        """Report progress; `done`/`total` compute the percent ("Importing products: 234/500")."""
        self.check()
        if done is not None and total:
            percent = 100.0 * done / total
        if percent is not None:
            if isinstance(percent, bool) or not math.isfinite(percent):
                raise ValueError(f"progress percent must be a number, got {percent!r}")
            percent = min(100.0, max(0.0, float(percent)))
        if message is not None:
            message = str(message)[:MAX_MESSAGE]
        self._reporter.progress(ProgressUpdate(self.job.id, percent, message, step))

    def log(self, line: Any) -> None:
        self._reporter.log(LogLine(self.job.id, self._now(), str(line)[:MAX_LOG_LINE]))

    # trackers ---------------------------------------------------------------------------

    def set_phases(self, phases: Mapping[str, float | PhaseSpec], *, job_id: str | None = None) -> None:
        """Declare weighted phases (e.g. product_data, variants, images) on this job or an ancestor.

        A phase's counts come from the descendants labelled with it
        (`options(phase=...)`); `PhaseSpec(total=...)` fixes the expected total
        up front so the percent does not jump while children are still being added.
        """
        specs = {
            name: spec if isinstance(spec, PhaseSpec) else PhaseSpec(weight=float(spec))
            for name, spec in phases.items()
        }
        if any(spec.weight <= 0 or spec.total < 0 for spec in specs.values()):
            raise ValueError("phase weights must be > 0 and totals >= 0")
        self._reporter.phases(job_id or self.job.id, specs)

    def bag_error(self, kind: str, message: str, *, item: str = "") -> None:
        """Record an item-level error (e.g. one invalid product) without failing the job."""
        entry = BagEntry(self.job.id, str(kind), str(message)[:MAX_MESSAGE], str(item), self._now())
        self._reporter.bag(entry)

    # keys -------------------------------------------------------------------------------

    async def feed_limiter(
        self,
        *,
        remaining: float | None = None,
        reset_at: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Pass on what the remote API said about this job's key (its rate-limit headers).

        Later jobs of the key then wait for the reset instead of collecting 429s.
        A job without a key has nothing to feed.
        """
        if self.job.key is not None:
            await self.app.feed_limiter(
                self.job.key, remaining=remaining, reset_at=reset_at, retry_after=retry_after
            )

    # children ---------------------------------------------------------------------------

    async def spawn(
        self, target: JobType[Any, Any] | BoundJob[Any, Any], /, *args: Any, **kwargs: Any
    ) -> str:
        """Add one child; the parent waits for it after this handler returns."""
        bound = _bound(target)
        payload = bound.job_type.signature.bind(args, kwargs)
        (job_id,) = await self.spawn_many(bound, [payload])
        return job_id

    async def spawn_many(
        self,
        target: JobType[Any, Any] | BoundJob[Any, Any],
        payloads: Iterable[Mapping[str, Any]],
        *,
        delays: Sequence[float] | None = None,
        weights: Sequence[float] | None = None,
    ) -> list[str]:
        """Add children in one atomic call; a retried attempt that adds them again gets the same ids."""
        bound = _bound(target)
        first = self.spawned
        payload_list = list(payloads)
        ids = await self.app.spawn_children(
            self.job,
            bound,
            payload_list,
            keys=[f"{self.stage}:{first + i}" for i in range(len(payload_list))],
            delays=delays,
            weights=weights,
        )
        self.spawned += len(ids)
        return ids

    async def spawn_chunks(
        self,
        target: JobType[Any, Any] | BoundJob[Any, Any],
        items: Sequence[Any],
        *,
        size: int,
        field: str = "items",
        stagger: float = 0.0,
        extra: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """One child per chunk of `size` items, the n-th starting n * stagger seconds later.

        Each child weighs as many items as it carries, so trackers count items, not chunks.
        """
        chunks = chunked(items, size)
        payloads = [{**(extra or {}), field: chunk} for chunk in chunks]
        return await self.spawn_many(
            target,
            payloads,
            delays=[i * stagger for i in range(len(chunks))],
            weights=[float(len(chunk)) for chunk in chunks],
        )

    async def children(self) -> list[Job]:
        """This job's children with their states and results (oldest first)."""
        return await self.app.children(self.job.id)


def chunked(items: Sequence[Any], size: int) -> list[list[Any]]:
    if size < 1:
        raise ValueError("chunk size must be >= 1")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _bound(target: JobType[Any, Any] | BoundJob[Any, Any]) -> BoundJob[Any, Any]:
    from .jobtype import BoundJob, JobType

    if isinstance(target, JobType):
        return target.options()
    if isinstance(target, BoundJob):
        return target
    raise TypeError(f"spawn needs a job type (the object @app.job returned), got {target!r}")
