"""The endpoints the seed documents name, with exactly their JSON shapes (see `seeds.py`)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ..backends.base import JobFilter
from ..errors import JobNotFound
from ..job import JobState
from .auth import Caller
from .context import ApiContext, errors
from .seeds import (
    BackgroundJobsStatus,
    BackgroundJobStatus,
    JobStatusList,
    JobStatusRecord,
    QueueJobStatus,
    QueueStats,
    UserJobStatus,
    background_job,
    background_state,
    background_statistics,
    known_queues,
    queue_job_status,
    queue_stats,
    status_record,
)
from .views import showable

TenantQuery = Annotated[
    str | None, Query(description="Count only this tenant's jobs (a tenant token always sees only its own).")
]


def seed_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["seed endpoints"])
    read = ctx.reader()
    jobs = ctx.jobs

    # seed 001 ------------------------------------------------------------------------------------

    @router.get("/api/background-jobs/status", responses=errors())
    async def background_jobs_status(
        caller: Annotated[Caller, Depends(read)], tenant: TenantQuery = None
    ) -> BackgroundJobsStatus:
        """Overall queue status and statistics (seed 001)."""
        stats = await jobs.stats(caller, tenant)
        return BackgroundJobsStatus(status=background_state(stats), statistics=background_statistics(stats))

    @router.get("/api/background-jobs/{job_id}/status", responses=errors(404))
    async def background_job_status(
        job_id: str, caller: Annotated[Caller, Depends(read)]
    ) -> BackgroundJobStatus:
        """One job's status and progress (seed 001); a parent's progress covers its whole tree."""
        job = await jobs.get(caller, job_id)
        percent = job.progress.percent
        if job.children_total:
            percent = (await ctx.app.tracker(job.id, visible=caller.sees_child)).percent
        return BackgroundJobStatus(job=background_job(job, percent))

    # seed 003 ------------------------------------------------------------------------------------

    @router.get("/api/queues/stats", responses=errors())
    async def queues_stats(
        caller: Annotated[Caller, Depends(read)],
        queue: Annotated[str | None, Query(description="Only this queue (zeros if it has no jobs).")] = None,
        tenant: TenantQuery = None,
    ) -> dict[str, QueueStats]:
        """Counts per queue in BullMQ's terms (seed 003's getQueueStats)."""
        stats = await jobs.stats(caller, tenant)
        return queue_stats(stats, [queue] if queue is not None else known_queues(stats))

    @router.get("/api/queues/{queue}/jobs/{job_id}", responses=errors(404))
    async def queue_job(queue: str, job_id: str, caller: Annotated[Caller, Depends(read)]) -> QueueJobStatus:
        """One job in BullMQ's terms (seed 003's getJobStatus); 404 if it is not on that queue."""
        job = await jobs.get(caller, job_id)
        if job.queue != queue:
            raise JobNotFound(f"no job with id {job_id!r} on queue {queue!r}")
        return queue_job_status(job)

    # seed 004 ------------------------------------------------------------------------------------

    limit_query = Query(ge=1, le=1000, description="At most this many jobs, newest first.")

    @router.get("/app/job-status/status/user/{user_id}", responses=errors())
    async def user_status(
        user_id: str, caller: Annotated[Caller, Depends(read)], limit: Annotated[int, limit_query] = 20
    ) -> UserJobStatus:
        """A user's newest jobs, and the newest one's status (seed 004)."""
        found = await jobs.history(caller, JobFilter(user_id=user_id), limit=limit)
        records = showable(status_record, found)
        return UserJobStatus(user_id=user_id, status=records[0].status if records else None, jobs=records)

    @router.get("/app/job-status/status/job/{job_id}", responses=errors(404))
    async def job_status(job_id: str, caller: Annotated[Caller, Depends(read)]) -> JobStatusRecord:
        """One job's status record (seed 004), from the archive once retention trimmed it."""
        return status_record(await jobs.get(caller, job_id, archived=True))

    @router.get("/app/job-status/recent", responses=errors())
    async def recent(
        caller: Annotated[Caller, Depends(read)], limit: Annotated[int, limit_query] = 20
    ) -> JobStatusList:
        """The newest jobs, whatever their state (seed 004)."""
        found = await jobs.history(caller, JobFilter(), limit=limit)
        return JobStatusList(jobs=showable(status_record, found))

    @router.get("/app/job-status/queue/stats", responses=errors())
    async def job_status_queue_stats(
        caller: Annotated[Caller, Depends(read)], tenant: TenantQuery = None
    ) -> dict[str, QueueStats]:
        """Counts per queue (seed 004); the same shape as seed 003's queue statistics."""
        stats = await jobs.stats(caller, tenant)
        return queue_stats(stats, known_queues(stats))

    @router.get("/app/job-status/failed", responses=errors())
    async def failed(
        caller: Annotated[Caller, Depends(read)], limit: Annotated[int, limit_query] = 100
    ) -> JobStatusList:
        """Failed jobs, newest first (seed 004)."""
        found = await jobs.history(caller, JobFilter(states=[JobState.FAILED]), limit=limit)
        return JobStatusList(jobs=showable(status_record, found))

    return router
