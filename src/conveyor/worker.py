"""The async worker: claims jobs, runs handlers, keeps leases alive, settles outcomes.

Four loops share one event loop: fetching (bounded by per-queue concurrency),
heartbeat (lease renewal, cancellations, recovery of dead workers' jobs),
reporting (batched progress and logs) and settling (batched outcomes). Batching
never loses a job: an outcome not yet written leaves its lease to expire, and
the job runs again (delivery is at least once).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
import secrets
import socket
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from .backends.base import Backend, FetchParams, SettleKind, Settlement, WorkerInfo
from .context import JobContext, Reporter
from .errors import (
    BackendError,
    Cancelled,
    ConfigurationError,
    JobOutcome,
    JobTimeout,
    PayloadError,
    RateLimited,
    TenantForbidden,
    Unrecoverable,
    WorkerLost,
)
from .job import AttemptError, Job, ThenAction
from .payload import to_json_text
from .schedules import Scheduler
from .tenancy import check_tenant, refuse_tenant_of
from .threads import DaemonThreadPool

if TYPE_CHECKING:
    from .app import Conveyor

log = logging.getLogger("conveyor.worker")

MAX_TRACEBACK = 20_000
IDLE_WAIT = 1.0
REPORT_INTERVAL = 0.25
RETENTION_INTERVAL = 60.0
ARCHIVE_INTERVAL = 1.0
# Jobs claimed together start together and, if they run alike, end together, and
# then all wait for the same round trip before their slots are busy again: a convoy
# that idles every slot once per run. When jobs run much longer than a fetch takes
# (SPREAD_RATIO times), a fetch claims only 1/SPREAD_SHARE of a queue's slots, so
# starts, and then ends, spread out. Short jobs gain nothing from spreading and
# would pay a round trip per small batch, so they are claimed as many as are free.
SPREAD_RATIO = 5.0
SPREAD_SHARE = 16
AVERAGING = 0.1  # weight of the newest sample in the moving averages of run and fetch times


@dataclass
class WorkerSummary:
    """What one `run()` did, by outcome; handy for burst runs and tests."""

    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def processed(self) -> int:
        return sum(self.outcomes.values())


@dataclass
class _Running:
    job: Job
    ctx: JobContext
    task: asyncio.Task[None] | None = None


class Worker:
    def __init__(
        self,
        app: Conveyor,
        *,
        queues: Sequence[str] | None = None,
        concurrency: Mapping[str, int] | int | None = None,
        burst: bool = False,
        scheduler: bool | None = None,
        name: str | None = None,
    ) -> None:
        self.app = app
        self.queues = list(queues) if queues else app.queues
        if isinstance(concurrency, int):
            concurrency = dict.fromkeys(self.queues, concurrency)
        given = dict(concurrency or {})
        unknown = set(given) - set(self.queues)
        if unknown:
            raise ConfigurationError(
                f"concurrency given for queue(s) this worker does not serve: {', '.join(sorted(unknown))}"
            )
        self.concurrency = {q: given.get(q) or app.settings.concurrency_for(q) for q in self.queues}
        if any(n < 1 for n in self.concurrency.values()):
            raise ConfigurationError("concurrency must be >= 1 for every queue")
        self.burst = burst
        self.scheduler = Scheduler(app) if (not burst if scheduler is None else scheduler) else None
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.summary = WorkerSummary()
        self._settings = app.settings
        self._clock = app.clock
        self._reporter = Reporter()
        self._pool = DaemonThreadPool(sum(self.concurrency.values()) + 4)
        self._active: Counter[str] = Counter()
        self._running: dict[str, _Running] = {}
        self._unsettled: set[str] = set()
        self._settlements: list[Settlement] = []
        self._settle_wanted = asyncio.Event()
        self._report_lock = asyncio.Lock()
        self._slot_freed = asyncio.Event()
        self._stop = asyncio.Event()
        self._handing_back = False
        self._started_at = self._clock.now()
        self._backend: Backend | None = None
        # Moving averages (seconds, real time even under a fake clock) for `_claim_limits`.
        self._run_seconds = 0.0
        self._fetch_seconds = 0.0

    # lifecycle --------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop fetching; running jobs get the grace period to finish (SIGTERM, SIGINT)."""
        self._stop.set()
        self._slot_freed.set()  # a fetch loop waiting for a free slot looks at the stop flag

    async def run(self) -> WorkerSummary:
        self._backend = backend = await self.app.backend()
        await backend.recover(now=self._clock.now())
        await self._heartbeat_once()
        helpers = [
            asyncio.create_task(self._heartbeat_loop(), name="conveyor-heartbeat"),
            asyncio.create_task(self._report_loop(), name="conveyor-report"),
            asyncio.create_task(self._settle_loop(), name="conveyor-settle"),
        ]
        if self.scheduler is not None:
            helpers.append(asyncio.create_task(self.scheduler.run(), name="conveyor-scheduler"))
        if self.app.archive is not None:
            helpers.append(asyncio.create_task(self._archive_loop(), name="conveyor-archive"))
        try:
            await self._fetch_loop()
            await self._drain()
            if self.burst:
                await self._flush_all()
                await self._archive_once()  # a burst run leaves the archive up to date
        finally:
            for task in helpers:
                task.cancel()
            _, stuck = await asyncio.wait(helpers, timeout=5)
            for task in stuck:
                log.error("%s did not stop; abandoning it", task.get_name())
            await self._flush_all()
            try:
                await backend.unregister_worker(self.id)
            except BackendError as exc:
                log.warning("could not unregister worker %s: %s", self.id, exc)
            self._pool.shutdown()
        return self.summary

    async def _drain(self) -> None:
        """Give running jobs the grace period, then hand the rest back without spending attempts."""
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if not tasks:
            return
        log.info("waiting up to %gs for %d running job(s)", self._settings.grace_seconds, len(tasks))
        _, still_running = await asyncio.wait(tasks, timeout=self._settings.grace_seconds)
        if still_running:
            self._handing_back = True
            for running in list(self._running.values()):
                running.ctx.stop(Cancelled("worker shutting down"))
                if running.task is not None:
                    running.task.cancel()
            await asyncio.gather(*still_running, return_exceptions=True)

    # fetching ---------------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        backend = self._backend
        assert backend is not None
        lease = self._settings.lease_seconds
        while not self._stop.is_set():
            limits = self._claim_limits()
            if not limits:
                await self._slot_freed_or_stop()
                continue
            now = self._clock.now()
            try:
                params = FetchParams(
                    self.id,
                    limits,
                    now,
                    now + lease,
                    queue_rates=self._settings.queue_rate_limits,
                    fair_queues=self._settings.fair_queue_set,
                )
                began = time.monotonic()
                jobs = await backend.fetch(params)
                self._fetch_seconds += AVERAGING * (time.monotonic() - began - self._fetch_seconds)
            except BackendError as exc:
                log.warning("fetch failed, retrying: %s", exc)
                await self._wait_for(asyncio.sleep(random.uniform(0.5, 1.5)), None)
                continue
            for job in jobs:
                self._start(job)
            if jobs:
                await asyncio.sleep(0)
                continue
            if self.burst:
                if self._running:
                    await self._slot_freed_or_stop()
                elif self._settlements:
                    await self._flush_settlements()  # a retry due now must run in this burst
                elif self._unsettled:
                    await asyncio.sleep(0.001)
                else:
                    return
                continue
            timeout = IDLE_WAIT
            try:
                due = await backend.next_due(list(limits))  # only queues with a free slot can start it
            except BackendError as exc:  # the store is away; keep the running jobs and look again
                log.warning("checking for scheduled jobs failed, retrying: %s", exc)
                due = None
            if due is not None:
                timeout = max(0.0, min(timeout, due - self._clock.now()))
            await self._wait_for(backend.wait_for_jobs(list(limits), timeout), timeout)

    def _claim_limits(self) -> dict[str, int]:
        """How many jobs the next fetch may claim per queue: the free slots, or a share of them."""
        free = {q: n - self._active[q] for q, n in self.concurrency.items() if n > self._active[q]}
        if self._run_seconds > SPREAD_RATIO * self._fetch_seconds:
            return {q: min(k, max(1, self.concurrency[q] // SPREAD_SHARE)) for q, k in free.items()}
        return free

    async def _slot_freed_or_stop(self) -> None:
        """Wait on the event directly, not through `_wait_for`'s extra tasks: a fetch for
        freed slots is then sent before the settle loop's batch, so new jobs start without
        waiting behind Redis's work on the old ones' outcomes."""
        self._slot_freed.clear()
        if not self._stop.is_set():
            await self._slot_freed.wait()

    async def _wait_for(self, awaitable: Any, timeout: float | None) -> None:
        """Await something, but return early when a stop is requested."""
        waiter = asyncio.ensure_future(awaitable)
        stopper = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({waiter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for fut in (waiter, stopper):
            if not fut.done():
                fut.cancel()
        if waiter.done() and not waiter.cancelled() and waiter.exception() is not None:
            log.warning("waiting for jobs failed: %s", waiter.exception())

    def _start(self, job: Job) -> None:
        ctx = JobContext(job, self.app, self._reporter, self._clock.now)
        running = _Running(job, ctx)
        self._running[job.id] = running
        self._unsettled.add(job.id)
        self._active[job.queue] += 1
        running.task = asyncio.create_task(self._execute(running), name=f"conveyor-job-{job.id}")

    # running one job --------------------------------------------------------------------

    async def _execute(self, running: _Running) -> None:
        job, ctx = running.job, running.ctx
        began = time.monotonic()
        try:
            settlement = await self._attempt(job, ctx)
            self._run_seconds += AVERAGING * (time.monotonic() - began - self._run_seconds)
        finally:
            del self._running[job.id]
            self._active[job.queue] -= 1
            self._slot_freed.set()
        self.summary.outcomes[settlement.kind.value] += 1
        self._settlements.append(settlement)
        self._settle_wanted.set()

    async def _attempt(self, job: Job, ctx: JobContext) -> Settlement:
        now = self._clock.now
        try:
            result = await self._invoke(job, ctx)
            result_json = to_json_text(result, what=f"result of job {job.id}")
            if ctx.spawned:
                job_type = self.app.job_types[job.type]
                then = ThenAction.RUN if job_type.continuation is not None else ThenAction.COMPLETE
                return self._settlement(SettleKind.WAIT, job, result_json=result_json, then=then)
            return self._settlement(SettleKind.COMPLETE, job, result_json=result_json)
        except asyncio.CancelledError:
            if self._handing_back:
                return self._settlement(SettleKind.SNOOZE, job, run_at=now())
            if ctx.cancel_requested:
                return self._settlement(SettleKind.CANCEL, job)
            raise
        except Cancelled as exc:
            if self._handing_back and not ctx.cancel_requested:
                return self._settlement(SettleKind.SNOOZE, job, run_at=now())
            return self._settlement(SettleKind.CANCEL, job, error=self._error(job, exc))
        except RateLimited as exc:
            ctx.log(f"rate limited; trying again in {exc.retry_after:g}s")
            if job.key is not None:
                try:
                    await self.app.feed_limiter(job.key, retry_after=exc.retry_after)
                except BackendError as backend_exc:  # this job still waits; only its key's others may not
                    log.warning("could not hold key %s after a rate limit: %s", job.key, backend_exc)
            return self._settlement(SettleKind.SNOOZE, job, run_at=now() + exc.retry_after)
        except Exception as exc:  # noqa: BLE001 - any handler failure becomes a hold, retry or failure
            held = await self._breaker_holds(job, exc)
            if held is not None:
                return held
            return self._failure(job, exc)

    async def _breaker_holds(self, job: Job, exc: Exception) -> Settlement | None:
        """A failure the job type's breaker counts holds the job, unspent, until its key recovers."""
        job_type = self.app.job_types.get(job.type)
        breaker = job_type.breaker if job_type else None
        if breaker is None or job.key is None or not breaker.counts(exc) or self._backend is None:
            return None
        now = self._clock.now()
        try:
            state = await self._backend.key_failure(
                job.key, now=now, threshold=breaker.threshold, cooldown=breaker.cooldown
            )
        except BackendError as backend_exc:
            log.warning("could not count a breaker failure for key %s: %s", job.key, backend_exc)
            return None
        log.warning(
            "key %s: %s counted by its breaker (%s, %d failures)", job.key, exc, state.breaker, state.failures
        )
        run_at = max(state.blocked_until, now + min(breaker.cooldown, 2.0**state.failures))
        error = self._error(job, exc)
        return self._settlement(SettleKind.SNOOZE, job, run_at=run_at, error=error)

    def _failure(self, job: Job, exc: Exception) -> Settlement:
        error = self._error(job, exc)
        if isinstance(exc, (Unrecoverable, PayloadError, TenantForbidden, WorkerLost)):
            return self._settlement(SettleKind.FAIL, job, error=error)
        if job.attempts >= job.max_attempts:
            log.warning(
                "job %s (%s) failed for good after %d attempt(s): %r", job.id, job.type, job.attempts, exc
            )
            return self._settlement(SettleKind.FAIL, job, error=error)
        known = self.app.job_types.get(job.type)
        delay = known.backoff.delay(job.attempts) if known else 0.0
        log.warning(
            "job %s (%s) attempt %d failed, retrying in %gs: %r",
            *(job.id, job.type, job.attempts, delay, exc),
        )
        return self._settlement(SettleKind.RETRY, job, error=error, run_at=self._clock.now() + delay)

    async def _invoke(self, job: Job, ctx: JobContext) -> Any:
        job_type = self.app.job_types.get(job.type)
        if job_type is None:
            known = ", ".join(sorted(self.app.job_types)) or "none"
            raise Unrecoverable(
                f"no handler for job type {job.type!r} in worker {self.id} (it knows: {known})"
            )
        if job.tenant is not None:  # re-checked: ids can change owner while the job waits
            refuse_tenant_of(job_type, job.tenant)
            await check_tenant(job_type.tenant_guard, job.tenant, job.payload)
        fn, signature = job_type.fn, job_type.signature
        if job.stage > 0 and job_type.continuation is not None:
            assert job_type.continuation_signature is not None
            fn, signature = job_type.continuation, job_type.continuation_signature
        kwargs = signature.load(job.payload)
        args = (ctx,) if signature.wants_context else ()
        timeout = job.timeout
        call: Awaitable[Any]
        if inspect.iscoroutinefunction(fn):
            call = fn(*args, **kwargs)
        else:
            call = asyncio.wrap_future(self._pool.submit(fn, *args, **kwargs))
        if timeout is None:
            return await call
        try:
            async with asyncio.timeout(timeout):
                return await call
        except TimeoutError as exc:
            # A plain-def handler keeps running in its thread; its next progress call raises.
            ctx.stop(JobTimeout(f"attempt exceeded the {timeout:g}s timeout"))
            raise JobTimeout(f"attempt exceeded the {timeout:g}s timeout") from exc

    def _settlement(self, kind: SettleKind, job: Job, **fields: Any) -> Settlement:
        return Settlement(kind, job.id, self.id, job.attempts, **fields)

    def _error(self, job: Job, exc: BaseException) -> AttemptError:
        trace = None
        if not isinstance(exc, JobOutcome):
            trace = "".join(traceback.format_exception(exc))[-MAX_TRACEBACK:]
        return AttemptError(
            attempt=job.attempts,
            at=self._clock.now(),
            type=type(exc).__name__,
            message=str(exc) or type(exc).__name__,
            traceback=trace,
        )

    # background loops -------------------------------------------------------------------

    async def _settle_loop(self) -> None:
        while True:
            await self._settle_wanted.wait()
            self._settle_wanted.clear()
            await self._flush_settlements()

    async def _flush_settlements(self) -> None:
        if not self._settlements:
            return
        batch, self._settlements = self._settlements, []
        assert self._backend is not None
        try:
            await self._flush_reports()
            await self._backend.settle(batch, now=self._clock.now())
        except asyncio.CancelledError:
            # Settling is idempotent (guarded by worker and attempt), so a batch
            # interrupted mid-write is simply written again by the final flush.
            self._settlements[:0] = batch
            raise
        except BackendError as exc:
            log.warning("settling %d job(s) failed, will retry: %s", len(batch), exc)
            self._settlements[:0] = batch
            await asyncio.sleep(random.uniform(0.2, 1.0))
            self._settle_wanted.set()
            return
        for s in batch:
            self._unsettled.discard(s.job_id)

    async def _flush_reports(self) -> None:
        """Write what handlers reported; one flush at a time.

        Settling flushes first, so a job's last progress and log lines land
        before it ends; the lock makes it also wait for a flush the report
        loop has already taken them into, which would otherwise land after
        the job ended (and progress on an ended job is dropped).
        """
        async with self._report_lock:
            if not self._reporter:
                return
            assert self._backend is not None
            report = self._reporter.take()
            if report.progress:
                await self._backend.progress(report.progress, now=self._clock.now())
            if report.logs:
                await self._backend.log(report.logs)
            if report.bag:
                await self._backend.add_to_bag(report.bag)
            for job_id, phases in report.phases.items():
                await self._backend.set_phases(job_id, phases)

    async def _flush_all(self) -> None:
        try:
            await self._flush_settlements()
            await self._flush_reports()
        except BackendError as exc:
            log.error("could not write final outcomes (their leases will expire and they rerun): %s", exc)

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(REPORT_INTERVAL)
            try:
                await self._flush_reports()
            except BackendError as exc:
                log.warning("writing progress failed: %s", exc)

    async def _heartbeat_loop(self) -> None:
        interval = self._settings.heartbeat_seconds
        recover_every = max(1, int(self._settings.lease_seconds / 2 / interval))
        retention_every = max(1, int(RETENTION_INTERVAL / interval))
        beat = 0
        while True:
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))
            beat += 1
            try:
                await self._heartbeat_once()
                if beat % recover_every == 0:
                    await self._recover()
                if beat % retention_every == 0:
                    await self._apply_retention()
            except BackendError as exc:
                log.warning("heartbeat failed, will retry: %s", exc)

    async def _heartbeat_once(self) -> None:
        assert self._backend is not None
        now = self._clock.now()
        info = WorkerInfo(
            id=self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            concurrency=self.concurrency,
            started_at=self._started_at,
            last_seen=now,
            running=len(self._running),
        )
        held = sorted(self._running.keys() | self._unsettled)
        result = await self._backend.renew(info, held, lease_until=now + self._settings.lease_seconds)
        for job_id in result.cancel_requested:
            running = self._running.get(job_id)
            if running is not None and not running.ctx.cancel_requested:
                running.ctx.stop(Cancelled("cancelled on request"))
                job_type = self.app.job_types.get(running.job.type)
                if running.task is not None and job_type is not None and job_type.is_async:
                    running.task.cancel()
        for job_id in result.lost:
            running = self._running.get(job_id)
            if running is not None:
                log.warning("lost the lease on job %s; its outcome will be ignored", job_id)
                running.ctx.stop(WorkerLost("this worker lost the job's lease"))

    async def _recover(self) -> None:
        assert self._backend is not None
        result = await self._backend.recover(now=self._clock.now())
        if result.requeued or result.failed:
            log.warning(
                "recovered jobs of vanished workers: %d requeued, %d failed (out of attempts)",
                len(result.requeued),
                len(result.failed),
            )

    async def _archive_loop(self) -> None:
        while True:
            await asyncio.sleep(ARCHIVE_INTERVAL)
            await self._archive_once()

    async def _archive_once(self) -> None:
        try:
            copied = await self.app.archive_finished()
        except (BackendError, SQLAlchemyError) as exc:
            log.warning("archiving finished jobs failed, will retry: %s", exc)
            return
        if copied:
            log.debug("archived %d finished job(s)", copied)

    async def _apply_retention(self) -> None:
        settings = self._settings
        if settings.retention_keep_last is None and settings.retention_max_age is None:
            return
        removed = await self.app.cleanup()
        if removed:
            log.info("retention removed %d finished job(s)", removed)
