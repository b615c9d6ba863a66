"""`Conveyor`: the job registry, the settings, and the backend for the running loop."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .archive import Archiver, JobArchive
from .backends import backend_from_url
from .backends.base import (
    Backend,
    JobFilter,
    JobPage,
    QueueCounts,
    RetentionParams,
    WorkerInfo,
)
from .backoff import Backoff, as_backoff
from .clock import Clock, SystemClock
from .errors import (
    ConfigurationError,
    InvalidStateTransition,
    JobNotFound,
    PayloadError,
    TenantForbidden,
    UnknownJobType,
)
from .job import (
    DEFAULT_OPTIONS,
    FINISHED_STATES,
    PRIORITY_NORMAL,
    AttemptError,
    Job,
    JobOptions,
    JobState,
    LogLine,
    NewJob,
    NewJobBatch,
    Submitted,
    check_name,
    check_priority,
    new_job_id,
    new_job_ids,
)
from .jobtype import JobType, Registrar
from .limits import Breaker, RateLimit
from .orchestration import Orchestration
from .portal import Portal
from .schedules import Schedule
from .settings import Settings
from .stats import Stats
from .tenancy import TenantGuard, check_tenant, refuse_tenant_of

if TYPE_CHECKING:
    from .worker import Worker


class Conveyor(Orchestration):
    """One application: its job types and where its jobs live.

    No global state: two apps in one process (say, on two databases) never
    share a registry or a connection.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        clock: Clock | None = None,
        backend_factory: Callable[[], Backend] | None = None,
        **settings: Any,
    ) -> None:
        self.settings = Settings.load(url=url, **settings)
        self.clock: Clock = clock or SystemClock()
        self._backend_factory = backend_factory or (lambda: backend_from_url(self.settings.url))
        self._registry: dict[str, JobType[Any, Any]] = {}
        self._backends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Backend] = (
            weakref.WeakKeyDictionary()
        )
        self._opening: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._portal: Portal | None = None
        self._schedules: dict[str, Schedule] = {}
        self._archive: JobArchive | None = None

    def __repr__(self) -> str:
        return f"Conveyor({self.settings.url!r}, {len(self._registry)} job types)"

    # registry ---------------------------------------------------------------------------

    def job(
        self,
        name: str,
        *,
        queue: str = "default",
        priority: int = PRIORITY_NORMAL,
        attempts: int = 4,
        backoff: Backoff | Sequence[float] | None = None,
        timeout: float | None = None,
        rate_limit: RateLimit | None = None,
        group_concurrency: int | None = None,
        breaker: Breaker | None = None,
        tenant_guard: TenantGuard | None = None,
        tenants: bool = True,
    ) -> Registrar:
        """Register a handler. `attempts` counts every try: 4 = the first run and 3 retries.

        `tenant_guard` checks that a tenant's job names only what the tenant owns (see
        `conveyor.tenancy`): at enqueue, and again before every attempt. `tenants=False`
        makes a type the operator's alone (a system job acting on every tenant at once):
        no job with a tenant may be enqueued, and tenants are not shown it.
        """
        check_name("job type", name)
        check_name("queue", queue)
        check_priority(priority)
        if attempts < 1:
            raise ConfigurationError(f"attempts must be >= 1 for {name!r}")
        if timeout is not None and timeout <= 0:
            raise ConfigurationError(f"timeout must be > 0 seconds for {name!r}")
        if group_concurrency is not None and group_concurrency < 1:
            raise ConfigurationError(f"group_concurrency must be >= 1 for {name!r}")
        policy = as_backoff(backoff)

        def register(fn: Callable[..., Any]) -> JobType[Any, Any]:
            if name in self._registry:
                raise ConfigurationError(f"job type {name!r} is already registered")
            job_type: JobType[Any, Any] = JobType(
                self,
                fn,
                name=name,
                queue=queue,
                priority=priority,
                attempts=attempts,
                backoff=policy,
                timeout=timeout,
                rate_limit=rate_limit,
                group_concurrency=group_concurrency,
                breaker=breaker,
                tenant_guard=tenant_guard,
                tenants=tenants,
            )
            self._registry[name] = job_type
            return job_type

        return Registrar(register)

    def job_type(self, name: str) -> JobType[Any, Any]:
        try:
            return self._registry[name]
        except KeyError:
            known = ", ".join(sorted(self._registry)) or "none"
            raise UnknownJobType(f"unknown job type {name!r} (registered: {known})") from None

    @property
    def job_types(self) -> Mapping[str, JobType[Any, Any]]:
        return dict(self._registry)

    @property
    def queues(self) -> list[str]:
        return sorted({t.queue for t in self._registry.values()} | {"default"})

    # backend ----------------------------------------------------------------------------

    async def backend(self) -> Backend:
        """The backend for the running event loop, opened on first use."""
        loop = asyncio.get_running_loop()
        backend = self._backends.get(loop)
        if backend is not None:
            return backend
        lock = self._opening.setdefault(loop, asyncio.Lock())
        async with lock:
            backend = self._backends.get(loop)
            if backend is None:
                backend = self._backend_factory()
                await backend.open()
                self._backends[loop] = backend
        return backend

    async def close(self) -> None:
        backend = self._backends.pop(asyncio.get_running_loop(), None)
        if backend is not None:
            await backend.close()

    def close_sync(self) -> None:
        if self._portal is not None:
            self._portal.call(self.close())
            self._portal.close()
            self._portal = None

    async def __aenter__(self) -> Conveyor:
        await self.backend()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _call_sync(self, coro: Any) -> Any:
        if self._portal is None:
            self._portal = Portal()
        return self._portal.call(coro)

    # producing --------------------------------------------------------------------------

    def _new_job(
        self,
        job_type: JobType[Any, Any],
        payload_json: str,
        options: JobOptions,
        now: float,
        **links: Any,
    ) -> NewJob:
        return NewJob(
            id=new_job_id(), payload_json=payload_json, **self._job_fields(job_type, options, now), **links
        )

    def _job_fields(self, job_type: JobType[Any, Any], options: JobOptions, now: float) -> dict[str, Any]:
        """Every `NewJob` field but the id and payload: the same for all jobs of one bulk enqueue."""
        run_at = options.run_at if options.run_at is not None else now + (options.delay or 0.0)
        key = options.key
        if key is None and (job_type.rate_limit is not None or job_type.breaker is not None):
            key = job_type.name  # a type-wide limit or breaker when no finer key is given
        return dict(
            type=job_type.name,
            queue=check_name("queue", options.queue) if options.queue else job_type.queue,
            state=JobState.SCHEDULED if run_at > now else JobState.PENDING,
            priority=options.priority if options.priority is not None else job_type.priority,
            max_attempts=options.attempts if options.attempts is not None else job_type.attempts,
            run_at=run_at,
            created_at=now,
            dedup_key=options.dedup_key,
            tenant=options.tenant,
            user_id=options.user_id,
            tags=options.tags,
            timeout=options.timeout if options.timeout is not None else job_type.timeout,
            failure_policy=options.on_failure,
            phase=options.phase,
            weight=float(options.weight),
            key=key,
            rate_limit=job_type.rate_limit.limit if job_type.rate_limit else None,
            rate_per=job_type.rate_limit.per if job_type.rate_limit else None,
            group=options.group,
            group_limit=job_type.group_concurrency if options.group else None,
            dedup=options.dedup,
            dedup_until=now + options.dedup_ttl if options.dedup_ttl else None,
        )

    async def enqueue(
        self, name: str, payload: Mapping[str, Any] | None = None, options: JobOptions | None = None
    ) -> Job:
        """Enqueue by type name; with a dedup key, returns the live job that already holds it."""
        return (await self.submit(name, payload, options)).job

    async def submit(
        self, name: str, payload: Mapping[str, Any] | None = None, options: JobOptions | None = None
    ) -> Submitted:
        """`enqueue`, saying whether the job is new or a dedup hit (an HTTP API answers 201 or 200)."""
        job_type = self.job_type(name)
        options = options or DEFAULT_OPTIONS
        payload_json = job_type.signature.dump(payload or {}, limit=self.settings.max_payload_bytes)
        if options.tenant is not None:
            refuse_tenant_of(job_type, options.tenant)
            await check_tenant(job_type.tenant_guard, options.tenant, json.loads(payload_json))
        new = self._new_job(job_type, payload_json, options, self.clock.now())
        backend = await self.backend()
        (result,) = await backend.enqueue([new])
        if result.created:
            return Submitted(_job_from_new(new), created=True)
        existing = await backend.get(result.id)
        if existing is None:  # finished and removed between the two calls
            raise JobNotFound(f"job {result.id} holding dedup key {new.dedup_key!r} vanished")
        return Submitted(existing, created=False)

    def enqueue_sync(
        self, name: str, payload: Mapping[str, Any] | None = None, options: JobOptions | None = None
    ) -> Job:
        job: Job = self._call_sync(self.enqueue(name, payload, options))
        return job

    async def enqueue_many(
        self,
        name: str,
        payloads: Iterable[Mapping[str, Any]],
        options: JobOptions | None = None,
    ) -> list[str]:
        """Bulk enqueue in one backend call; returns the new jobs' ids in order."""
        job_type = self.job_type(name)
        options = options or DEFAULT_OPTIONS
        if options.dedup_key is not None:
            raise PayloadError("one dedup_key cannot apply to many jobs; enqueue them one by one")
        limit = self.settings.max_payload_bytes
        dump = job_type.signature.dump
        texts = []
        for index, payload in enumerate(payloads):
            try:
                texts.append(dump(payload, limit=limit))
            except PayloadError as exc:
                raise PayloadError(f"job #{index}: {exc}") from None
        if not texts:
            return []
        if options.tenant is not None:
            refuse_tenant_of(job_type, options.tenant)
        if job_type.tenant_guard is not None and options.tenant is not None:
            for index, text in enumerate(texts):
                try:
                    await check_tenant(job_type.tenant_guard, options.tenant, json.loads(text))
                except TenantForbidden as exc:
                    raise TenantForbidden(f"job #{index}: {exc}") from None
        template = NewJob(id="", payload_json="", **self._job_fields(job_type, options, self.clock.now()))
        batch = NewJobBatch(template, new_job_ids(len(texts)), texts)
        await (await self.backend()).enqueue_batch(batch)
        return list(batch.ids)

    # reading ----------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job:
        job = await (await self.backend()).get(job_id)
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        return job

    async def list_jobs(
        self, job_filter: JobFilter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        if not 1 <= limit <= 1000:
            raise PayloadError("limit must be between 1 and 1000")
        return await (await self.backend()).list_jobs(job_filter or JobFilter(), limit=limit, cursor=cursor)

    async def job_errors(self, job_id: str) -> list[AttemptError]:
        return await (await self.backend()).errors(job_id)

    async def job_logs(self, job_id: str, *, limit: int = 1000) -> list[LogLine]:
        return await (await self.backend()).logs(job_id, limit=limit)

    async def workers(self) -> list[WorkerInfo]:
        alive_since = self.clock.now() - max(self.settings.lease_seconds, 10.0)
        return await (await self.backend()).workers(alive_since=alive_since)

    async def stats(self, *, tenant: str | None = None) -> Stats:
        """Counts per queue; with an archive, finished counts include jobs retention has trimmed.

        A job is counted once whether it is in the backend, the archive or
        both, as long as the archive has caught up (workers copy every second).
        """
        backend = await self.backend()
        counts = await backend.counts(tenant=tenant)
        archive = self.archive
        if archive is not None:
            counts = _with_archived(counts, await asyncio.to_thread(archive.counts, tenant))
        return Stats(counts, await self.workers())

    # steering ---------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> Job:
        """Pending or scheduled: cancelled now. Running: the handler is told and stops cooperatively."""
        job = await (await self.backend()).cancel(job_id, now=self.clock.now())
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        if job.state in (JobState.COMPLETED, JobState.FAILED):
            raise InvalidStateTransition(f"job {job_id} already {job.state.value}; nothing to cancel")
        return job

    async def retry(self, job_id: str) -> Job:
        """Run a failed or cancelled job again, with a fresh attempt budget."""
        before = await self.get_job(job_id)
        if not before.state.is_finished or before.state is JobState.COMPLETED:
            raise InvalidStateTransition(
                f"job {job_id} is {before.display_state}; only failed or cancelled jobs can be retried"
            )
        job = await (await self.backend()).retry(job_id, now=self.clock.now())
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        if job.state is not JobState.PENDING:
            raise InvalidStateTransition(
                f"job {job_id} is {job.state.value}; only failed or cancelled jobs can be retried"
            )
        return job

    async def remove(self, job_id: str) -> None:
        if not await (await self.backend()).remove(job_id):
            raise JobNotFound(f"no job with id {job_id!r}")

    async def pause(self, queue: str) -> None:
        await (await self.backend()).pause(check_name("queue", queue))

    async def resume(self, queue: str) -> None:
        await (await self.backend()).resume(check_name("queue", queue))

    async def cleanup(self, *, keep_last: int | None = None, max_age: float | None = None) -> int:
        """Delete finished jobs beyond the retention; defaults come from the settings."""
        keep_last = self.settings.retention_keep_last if keep_last is None else keep_last
        max_age = self.settings.retention_max_age if max_age is None else max_age
        if keep_last is None and max_age is None:
            raise ConfigurationError("cleanup needs keep_last and/or max_age (or retention settings)")
        if (keep_last is not None and keep_last < 0) or (max_age is not None and max_age < 0):
            raise ConfigurationError("keep_last and max_age must not be negative")
        params = RetentionParams(now=self.clock.now(), keep_last=keep_last, max_age=max_age)
        await self.archive_finished()  # nothing is trimmed before it is archived
        return await (await self.backend()).cleanup(params)

    # archive ----------------------------------------------------------------------------

    @property
    def archive(self) -> JobArchive | None:
        """The SQL archive of finished jobs (`archive_url`), opened on first use; None without one."""
        if self._archive is None and self.settings.archive_url is not None:
            self._archive = JobArchive(self.settings.archive_url)
        return self._archive

    async def archive_finished(self) -> int:
        """Copy jobs that finished since the last pass into the archive; 0 without an archive."""
        archive = self.archive
        if archive is None:
            return 0
        return await Archiver(archive, await self.backend()).run_once()

    async def history(
        self,
        *,
        states: Sequence[JobState] = (),
        tenant: str | None = None,
        user_id: str | None = None,
        limit: int = 100,
    ) -> list[Job]:
        """The newest jobs: what the backend holds, and with an archive, finished ones trimmed since."""
        wanted = JobFilter(states=states, tenant=tenant, user_id=user_id)
        live = (await self.list_jobs(wanted, limit=limit)).jobs
        archive = self.archive
        finished = [s for s in states or FINISHED_STATES if s in FINISHED_STATES]
        if archive is None or not finished:
            return live
        old = await asyncio.to_thread(
            archive.jobs, states=finished, tenant=tenant, user_id=user_id, limit=limit
        )
        merged = {job.id: job for job in old} | {job.id: job for job in live}
        return sorted(merged.values(), key=lambda job: (job.created_at, job.id), reverse=True)[:limit]

    def worker(self, **options: Any) -> Worker:
        from .worker import Worker

        return Worker(self, **options)


def _with_archived(
    live: Sequence[QueueCounts], archived: Mapping[str, Mapping[JobState, int]]
) -> list[QueueCounts]:
    """Per queue and finished state, the larger count: the archive is a superset once caught up."""
    merged = []
    seen = set()
    for queue in live:
        seen.add(queue.queue)
        old = archived.get(queue.queue, {})
        counts = dict(queue.counts)
        for state in FINISHED_STATES:
            counts[state] = max(counts.get(state, 0), old.get(state, 0))
        merged.append(replace(queue, counts=counts))
    merged += [QueueCounts(queue, dict(old)) for queue, old in archived.items() if queue not in seen]
    return merged


def _job_from_new(new: NewJob) -> Job:
    return Job(
        id=new.id,
        type=new.type,
        queue=new.queue,
        payload=json.loads(new.payload_json),
        state=new.state,
        priority=new.priority,
        attempts=0,
        max_attempts=new.max_attempts,
        run_at=new.run_at,
        created_at=new.created_at,
        dedup_key=new.dedup_key,
        tenant=new.tenant,
        user_id=new.user_id,
        tags=new.tags,
        timeout=new.timeout,
        parent_id=new.parent_id,
    )
