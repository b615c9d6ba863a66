"""The orchestration half of `Conveyor`: keys, schedules and flows.

Kept apart from the core (registry, enqueue, reads, steering) so that each
module stays small; `Conveyor` inherits these methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .backends.base import JobFilter
from .errors import ConfigurationError, JobNotFound, PayloadError
from .flows import Flow
from .job import Job, JobState, NewJob, ThenAction, check_name
from .jobtype import BoundJob, JobType
from .limits import KeyState
from .schedules import MissedPolicy, Schedule
from .tracker import TrackerNode, build_tracker

if TYPE_CHECKING:
    from .backends.base import Backend, JobPage
    from .clock import Clock
    from .job import JobOptions
    from .settings import Settings


class Orchestration:
    settings: Settings
    clock: Clock
    _schedules: dict[str, Schedule]

    if TYPE_CHECKING:  # provided by Conveyor

        async def backend(self) -> Backend: ...
        def job_type(self, name: str) -> JobType[Any, Any]: ...
        def _new_job(
            self,
            job_type: JobType[Any, Any],
            payload_json: str,
            options: JobOptions,
            now: float,
            **links: Any,
        ) -> NewJob: ...
        async def get_job(self, job_id: str) -> Job: ...
        async def list_jobs(
            self, job_filter: JobFilter | None = None, *, limit: int = 50, cursor: str | None = None
        ) -> JobPage: ...
    # keys -------------------------------------------------------------------------------

    async def pause_key(self, key: str) -> None:
        """Hold every job of one key (an account whose token expired, say) until resumed."""
        await (await self.backend()).pause_key(key, paused=True)

    async def resume_key(self, key: str) -> None:
        await (await self.backend()).pause_key(key, paused=False)

    async def keys(self) -> list[KeyState]:
        return await (await self.backend()).keys()

    async def feed_limiter(
        self,
        key: str,
        *,
        remaining: float | None = None,
        reset_at: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Tell a key's limiter what the remote API said, so later jobs wait instead of hitting 429s.

        `remaining` caps the tokens left; with none left (or a `retry_after`),
        the key's jobs wait until `reset_at` (or now + retry_after).
        """
        now = self.clock.now()
        blocked_until = 0.0
        if retry_after is not None:
            blocked_until = now + max(0.0, retry_after)
        elif remaining is not None and remaining < 1 and reset_at is not None:
            blocked_until = reset_at
        await (await self.backend()).feed_key(key, now=now, remaining=remaining, blocked_until=blocked_until)

    # schedules --------------------------------------------------------------------------

    def schedule(
        self,
        *,
        cron: str | None = None,
        every: float | None = None,
        name: str | None = None,
        payload: Mapping[str, Any] | None = None,
        jitter: float = 0.0,
        missed: MissedPolicy | str = MissedPolicy.SKIP,
        **options: Any,
    ) -> Callable[[JobType[Any, Any]], JobType[Any, Any]]:
        """Declare a schedule in code, above `@app.job(...)`; workers store it when they start."""

        def register(job_type: JobType[Any, Any]) -> JobType[Any, Any]:
            if not isinstance(job_type, JobType):
                raise ConfigurationError("@app.schedule goes above @app.job(...)")
            spec = self._schedule_spec(
                name or job_type.name, job_type.name, cron, every, payload, jitter, missed, options
            )
            if spec.name in self._schedules:
                raise ConfigurationError(f"schedule {spec.name!r} is declared twice")
            self._schedules[spec.name] = spec
            return job_type

        return register

    def _schedule_spec(
        self,
        name: str,
        job_type: str,
        cron: str | None,
        every: float | None,
        payload: Mapping[str, Any] | None,
        jitter: float,
        missed: MissedPolicy | str,
        options: Mapping[str, Any],
    ) -> Schedule:
        check_name("schedule", name)
        spec = Schedule(
            name=name,
            job_type=job_type,
            cron=cron,
            every=every,
            payload=dict(payload or {}),
            jitter=jitter,
            missed=MissedPolicy(missed),
            **options,
        )
        known = self.job_type(job_type)
        known.signature.dump(spec.payload, limit=self.settings.max_payload_bytes)
        spec.options()  # validates priority and names
        return replace(spec, next_run_at=spec.next_after(self.clock.now()))

    async def sync_schedules(self) -> None:
        """Store the schedules declared in code (keeping their next tick if their timing is unchanged)."""
        backend = await self.backend()
        for spec in self._schedules.values():
            await backend.upsert_schedule(replace(spec, next_run_at=spec.next_after(self.clock.now())))

    async def add_schedule(
        self,
        name: str,
        job_type: str,
        *,
        cron: str | None = None,
        every: float | None = None,
        payload: Mapping[str, Any] | None = None,
        jitter: float = 0.0,
        missed: MissedPolicy | str = MissedPolicy.SKIP,
        **options: Any,
    ) -> Schedule:
        """Add or change a schedule at run time (one per seller account, say)."""
        spec = self._schedule_spec(name, job_type, cron, every, payload, jitter, missed, options)
        await (await self.backend()).upsert_schedule(spec)
        return spec

    async def remove_schedule(self, name: str) -> None:
        if not await (await self.backend()).remove_schedule(name):
            raise JobNotFound(f"no schedule named {name!r}")

    async def schedules(self) -> list[Schedule]:
        return await (await self.backend()).schedules()

    def scheduled_job(self, schedule: Schedule, tick: float) -> NewJob:
        """The job one tick of a schedule enqueues; due at the tick itself."""
        job_type = self.job_type(schedule.job_type)
        payload_json = job_type.signature.dump(schedule.payload, limit=self.settings.max_payload_bytes)
        options = replace(schedule.options(), run_at=tick)
        return self._new_job(job_type, payload_json, options, self.clock.now())

    # flows ------------------------------------------------------------------------------

    async def spawn_children(
        self,
        parent: Job,
        bound: BoundJob[Any, Any],
        payloads: Sequence[Mapping[str, Any]],
        *,
        keys: Sequence[str],
        delays: Sequence[float] | None = None,
        weights: Sequence[float] | None = None,
    ) -> list[str]:
        """Add children of a running job in one atomic call (see `JobContext.spawn_many`)."""
        job_type, options = bound.job_type, bound.job_options
        # A child belongs to whoever its parent belongs to, unless told otherwise.
        options = replace(
            options,
            tenant=options.tenant if options.tenant is not None else parent.tenant,
            user_id=options.user_id if options.user_id is not None else parent.user_id,
        )
        now = self.clock.now()
        jobs = []
        for index, payload in enumerate(payloads):
            payload_json = job_type.signature.dump(payload, limit=self.settings.max_payload_bytes)
            per_child = options
            if delays is not None and delays[index]:
                per_child = replace(per_child, delay=(options.delay or 0.0) + delays[index], run_at=None)
            if weights is not None:
                per_child = replace(per_child, weight=weights[index])
            jobs.append(
                self._new_job(
                    job_type, payload_json, per_child, now, parent_id=parent.id, spawn_key=keys[index]
                )
            )
        if not jobs:
            return []
        return [r.id for r in await (await self.backend()).enqueue(jobs)]

    async def enqueue_flow(self, flow: Flow) -> Job:
        """Add a whole tree at once; leaves run first, each parent once its children have ended.

        All or nothing, so no node may carry a dedup key: a node that gave way to
        another live job would leave its subtree without a parent.
        """
        now = self.clock.now()
        ids: dict[int, str] = {}
        jobs = []
        for node, parent in flow.walk():
            bound = node.bound
            if bound.job_options.dedup_key is not None:
                raise PayloadError(
                    f"flow node {bound.job_type.name!r} has a dedup_key; flows built up front are"
                    " added whole, so dedupe the flow before building it"
                )
            payload_json = bound.job_type.signature.dump(node.payload, limit=self.settings.max_payload_bytes)
            links: dict[str, Any] = {}
            if parent is not None:
                links["parent_id"] = ids[id(parent)]
            new = self._new_job(bound.job_type, payload_json, bound.job_options, now, **links)
            if node.children:
                new = replace(new, state=JobState.WAITING_CHILDREN, then=ThenAction.RUN)
            ids[id(node)] = new.id
            jobs.append(new)
        await (await self.backend()).enqueue(jobs)
        return await self.get_job(jobs[0].id)

    async def children(self, job_id: str) -> list[Job]:
        found: list[Job] = []
        cursor = None
        while True:
            page = await self.list_jobs(
                JobFilter(parent_id=job_id, oldest_first=True), limit=1000, cursor=cursor
            )
            found += page.jobs
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    async def tracker(self, job_id: str, *, visible: Callable[[Job], bool] | None = None) -> TrackerNode:
        """The job's progress tree: weighted phases, children, and error bags, as of now.

        With `visible`, the tree is built from the jobs it admits only (a child it refuses
        leaves with its whole subtree), so no count, phase or bag entry tells of the others.
        """
        backend = await self.backend()
        jobs = await backend.tree(job_id)
        if not jobs:
            raise JobNotFound(f"no job with id {job_id!r}")
        if visible is not None:
            jobs = _reachable(job_id, [job for job in jobs if job.id == job_id or visible(job)])
        bag = await backend.bag([job.id for job in jobs])
        node = build_tracker(jobs, bag)
        assert node is not None
        return node


def _reachable(root_id: str, jobs: Sequence[Job]) -> list[Job]:
    """The jobs still joined to the root through kept parents: a refused child takes its subtree."""
    children: dict[str, list[Job]] = {}
    for job in jobs:
        if job.parent_id is not None:
            children.setdefault(job.parent_id, []).append(job)
    kept = [job for job in jobs if job.id == root_id]
    for job in kept:  # grows while it is walked: breadth first from the root
        kept += children.get(job.id, [])
    return kept
