"""Jobs: list and filter, detail, enqueue, retry, cancel, delete, and bulk actions."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from ..backends.base import JobFilter
from ..errors import PayloadError, UnknownJobType
from ..job import LIVE_STATES, JobOptions, JobState
from .auth import Caller
from .context import ApiContext, errors
from .models import BulkFilterIn, BulkResultOut, EnqueueIn, JobDetailOut, JobOut, JobPageOut
from .views import attempt_error_out, epoch, job_out, log_line_out, showable, startable_types, tracker_out

_RETRYABLE = (JobState.FAILED, JobState.CANCELLED)


def job_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/jobs", tags=["jobs"])
    read, write, admin = ctx.reader(), ctx.writer(), ctx.admin()
    jobs, app = ctx.jobs, ctx.app

    @router.get("", responses=errors())
    async def list_jobs(
        caller: Annotated[Caller, Depends(read)],
        type: Annotated[list[str] | None, Query(description="Job type; repeat for several.")] = None,
        state: Annotated[list[JobState] | None, Query(description="State; repeat for several.")] = None,
        queue: Annotated[list[str] | None, Query(description="Queue; repeat for several.")] = None,
        tenant: str | None = None,
        user: Annotated[str | None, Query(description="The user who asked for the job.")] = None,
        created_from: Annotated[
            datetime | None, Query(description="Created at or after (UTC if naive).")
        ] = None,
        created_to: Annotated[datetime | None, Query(description="Created before (UTC if naive).")] = None,
        q: Annotated[str | None, Query(description="Text in the progress message or last error.")] = None,
        error_type: Annotated[str | None, Query(description="Exception class of the last error.")] = None,
        key: Annotated[str | None, Query(description="Rate-limit key: one marketplace account's.")] = None,
        parent: Annotated[str | None, Query(description="Only the children of this job.")] = None,
        oldest_first: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    ) -> JobPageOut:
        """Jobs matching every given filter, newest first, one page at a time."""
        job_filter = JobFilter(
            states=state or (),
            queues=queue or (),
            types=type or (),
            tenant=tenant,
            user_id=user,
            created_from=None if created_from is None else epoch(created_from),
            created_to=None if created_to is None else epoch(created_to),
            text=q or None,
            error_type=error_type,
            key=key,
            parent_id=parent,
            oldest_first=oldest_first,
        )
        page = await jobs.page(caller, job_filter, limit=limit, cursor=cursor)
        return JobPageOut(jobs=showable(job_out, page.jobs), next_cursor=page.next_cursor)

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        responses={
            **errors(409),
            200: {"model": JobOut, "description": "A live job already holds the dedup key: that job."},
        },
    )
    async def enqueue(
        body: EnqueueIn, caller: Annotated[Caller, Depends(write)], response: Response
    ) -> JobOut:
        """Enqueue a job; the payload is checked against the type's handler (422 if it does not fit).

        201 with the new job; 200 with the live job already holding the dedup
        key. A tenant's dedup keys are its own: they never meet another tenant's.
        A tenant token knows only the types it may start: the others are unknown to it.
        """
        if caller.tenant is not None:
            startable = startable_types(app, caller)
            if body.type not in startable:
                raise UnknownJobType(
                    f"unknown job type {body.type!r} (you may start: {', '.join(startable)})"
                )
        given = body.options
        dedup_key = given.dedup_key
        if dedup_key is not None and caller.tenant is not None:
            # The tenant's length first: `acme` + `eu:x` and `acme:eu` + `x` must not meet.
            dedup_key = f"tenant:{len(caller.tenant)}:{caller.tenant}:{dedup_key}"
        options = JobOptions(
            priority=given.priority,
            delay=given.delay,
            run_at=None if given.run_at is None else epoch(given.run_at),
            dedup_key=dedup_key,
            tenant=caller.tenant or given.tenant,
            user_id=given.user_id,
            tags=given.tags,
            attempts=given.attempts,
            timeout=given.timeout,
            queue=given.queue,
        )
        submitted = await app.submit(body.type, body.payload, options)
        if not caller.sees(submitted.job):  # an admin's key held by a tenant's job must not show it
            raise HTTPException(status.HTTP_409_CONFLICT, "dedup_key is already in use")
        if not submitted.created:
            response.status_code = status.HTTP_200_OK
        return job_out(submitted.job)

    # before /{job_id}/..., which would otherwise take 'bulk' for a job id
    @router.post("/bulk/retry", responses=errors())
    async def bulk_retry(body: BulkFilterIn, caller: Annotated[Caller, Depends(admin)]) -> BulkResultOut:
        """Retry every failed (or, with state=cancelled, cancelled) job matching the filter."""
        if body.state is not None and body.state not in _RETRYABLE:
            raise PayloadError("bulk retry applies to failed or cancelled jobs")
        outcome = await jobs.bulk(caller, _bulk_filter(body, [body.state or JobState.FAILED]), app.retry)
        return BulkResultOut(matched=outcome.matched, changed=outcome.changed, skipped=outcome.skipped)

    @router.post("/bulk/cancel", responses=errors())
    async def bulk_cancel(body: BulkFilterIn, caller: Annotated[Caller, Depends(admin)]) -> BulkResultOut:
        """Cancel every live job (pending, scheduled, running, waiting for children) matching the filter."""
        if body.state is not None and body.state not in LIVE_STATES:
            raise PayloadError(
                "bulk cancel applies to live jobs (pending, scheduled, running, waiting_children)"
            )
        states = [body.state] if body.state is not None else sorted(LIVE_STATES)
        outcome = await jobs.bulk(caller, _bulk_filter(body, states), app.cancel)
        return BulkResultOut(matched=outcome.matched, changed=outcome.changed, skipped=outcome.skipped)

    @router.get("/{job_id}", responses=errors(404))
    async def job_detail(
        job_id: str,
        caller: Annotated[Caller, Depends(read)],
        logs: Annotated[int, Query(ge=0, le=10_000, description="At most this many log lines.")] = 1000,
    ) -> JobDetailOut:
        """A job with its logs, every failed attempt's error, and its progress tree."""
        job = await jobs.get(caller, job_id)
        lines = await app.job_logs(job.id, limit=logs) if logs else []
        return JobDetailOut(
            job=job_out(job),
            logs=[log_line_out(line) for line in lines],
            errors=[attempt_error_out(e, caller) for e in await app.job_errors(job.id)],
            tracker=tracker_out(await app.tracker(job.id, visible=caller.sees_child), caller),
        )

    @router.post("/{job_id}/retry", responses=errors(404, 409))
    async def retry(job_id: str, caller: Annotated[Caller, Depends(write)]) -> JobOut:
        """Run a failed or cancelled job again, with a fresh attempt budget."""
        job = await jobs.get(caller, job_id)
        return job_out(await app.retry(job.id))

    @router.post("/{job_id}/cancel", responses=errors(404, 409))
    async def cancel(job_id: str, caller: Annotated[Caller, Depends(write)]) -> JobOut:
        """Cancel a job: a waiting one at once, a running one at its next progress report."""
        job = await jobs.get(caller, job_id)
        return job_out(await app.cancel(job.id))

    @router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
    async def delete(job_id: str, caller: Annotated[Caller, Depends(write)]) -> Response:
        """Delete a job with its errors and logs, whatever its state."""
        job = await jobs.get(caller, job_id)
        await app.remove(job.id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router


def _bulk_filter(body: BulkFilterIn, states: list[JobState]) -> JobFilter:
    return JobFilter(
        states=states,
        types=[body.type] if body.type else (),
        queues=[body.queue] if body.queue else (),
        tenant=body.tenant,
        user_id=body.user_id,
        error_type=body.error_type,
        key=body.key,
        text=body.text or None,
        oldest_first=True,
    )
