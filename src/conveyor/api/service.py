"""Reads and writes on behalf of one caller: the single place where tenant scoping is applied.

Every route goes through `Jobs` instead of the app, so a tenant-bound token
cannot reach another tenant's job by any path: the lookup, the listings, the
counts and the bulk actions all narrow here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from ..app import Conveyor
from ..backends.base import JobFilter, JobPage
from ..errors import InvalidStateTransition, JobNotFound, PayloadError
from ..job import Job
from ..stats import Stats
from .auth import Caller
from .shared_reads import shared_reads

PAGE = 1000


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    matched: int
    changed: int
    skipped: int


class Jobs:
    def __init__(self, app: Conveyor) -> None:
        self.app = app

    async def get(self, caller: Caller, job_id: str, *, archived: bool = False) -> Job:
        """Another tenant's job is reported exactly like one that does not exist.

        `archived` also looks in the archive, for reads of jobs retention may have trimmed.
        """
        job = await (await self.app.backend()).get(job_id)
        archive = self.app.archive
        if job is None and archived and archive is not None:
            job = await asyncio.to_thread(archive.get, job_id)
        if job is None or not caller.sees(job):
            raise JobNotFound(f"no job with id {job_id!r}")
        return job

    async def page(
        self, caller: Caller, job_filter: JobFilter, *, limit: int, cursor: str | None = None
    ) -> JobPage:
        narrowed = caller.narrow(job_filter)
        if narrowed is None:
            return JobPage([], None)
        try:
            return await self.app.list_jobs(narrowed, limit=limit, cursor=cursor)
        except (ValueError, OverflowError) as exc:  # SQLite parses its cursor with int()
            raise PayloadError(f"not a cursor from this listing: {cursor!r}") from exc

    async def history(self, caller: Caller, job_filter: JobFilter, *, limit: int) -> list[Job]:
        """Newest first, archived jobs included (seed 004's lists survive retention with an archive)."""
        narrowed = caller.narrow(job_filter)
        if narrowed is None:
            return []
        return await self.app.history(
            states=narrowed.states, tenant=narrowed.tenant, user_id=narrowed.user_id, limit=limit
        )

    async def stats(
        self, caller: Caller, tenant: str | None = None, *, max_age: float | None = None
    ) -> Stats:
        """The counts the caller may see; with `max_age`, shared with other streams for that long."""

        async def read(of: str | None) -> Stats:
            if max_age is None:
                return await self.app.stats(tenant=of)
            return await shared_reads(self.app).stats(of, max_age)

        if caller.tenant is None:
            return await read(tenant)
        if tenant not in (None, caller.tenant):
            return _tenant_view(Stats([], await self.app.workers()))
        return _tenant_view(await read(caller.tenant))

    async def matching_ids(self, caller: Caller, job_filter: JobFilter) -> list[str]:
        """Every id first, then act: acting while paging would move jobs under the cursor."""
        ids: list[str] = []
        cursor = None
        while True:
            page = await self.page(caller, job_filter, limit=PAGE, cursor=cursor)
            ids += [job.id for job in page.jobs]
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor

    async def bulk(
        self, caller: Caller, job_filter: JobFilter, action: Callable[[str], Awaitable[object]]
    ) -> BulkOutcome:
        ids = await self.matching_ids(caller, job_filter)
        changed = 0
        for job_id in ids:
            try:
                await action(job_id)
            except (InvalidStateTransition, JobNotFound):
                continue
            changed += 1
        return BulkOutcome(matched=len(ids), changed=changed, skipped=len(ids) - changed)


def _tenant_view(stats: Stats) -> Stats:
    """What a tenant may know of the fleet: how many workers are up, and the concurrency of the
    queues its own jobs are in; not the other queues, nor how busy the workers are with others."""
    mine = {q.queue for q in stats.queues if sum(q.counts.values())}
    workers = [
        replace(w, concurrency={q: n for q, n in w.concurrency.items() if q in mine}, running=0)
        for w in stats.workers
    ]
    return Stats(stats.queues, workers)
