"""The dashboard's pages (GET) and its live event stream; every read is scoped to the caller."""

from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import StreamingResponse

from ..api.events import EventStream
from ..api.views import display_counts, flow_progress, startable_types
from ..backends.base import JobFilter
from ..job import FINISHED_STATES, LIVE_STATES, Job, JobState
from .charts import trend
from .core import Dashboard, Viewer
from .session import COOKIE

PAGE = 25
TREND_JOBS = 5000  # finished jobs read for the metrics page (created in the last two days)


def page_routes(dash: Dashboard) -> APIRouter:
    router = APIRouter()
    app, jobs = dash.app, dash.jobs
    SignedIn = Annotated[Viewer, Depends(dash.viewer)]  # noqa: N806 (a type alias)

    @router.get("/")
    async def hub(request: Request, viewer: SignedIn) -> Response:
        caller = viewer.caller
        active = await jobs.page(caller, JobFilter(states=sorted(LIVE_STATES), roots_only=True), limit=100)
        recent = await jobs.page(caller, JobFilter(states=sorted(FINISHED_STATES), roots_only=True), limit=5)
        flows = {
            job.id: flow_progress(await app.tracker(job.id, visible=caller.sees_child))
            for job in active.jobs
            if job.state is JobState.WAITING_CHILDREN
        }
        stats = await jobs.stats(caller)
        return await dash.page(
            request,
            viewer,
            "hub.html",
            active=active.jobs,
            flows=flows,
            recent=recent.jobs,
            stats=stats,
            live=True,
        )

    @router.get("/jobs")
    async def job_list(
        request: Request,
        viewer: SignedIn,
        type: str = "",
        state: str = "",
        tenant: str = "",
        created_from: str = "",
        created_to: str = "",
        cursor: str | None = None,
    ) -> Response:
        filters = {
            "type": type,
            "state": state,
            "tenant": tenant,
            "created_from": created_from,
            "created_to": created_to,
        }
        job_filter = JobFilter(
            types=[type] if type else (),
            states=[JobState(state)] if state in set(JobState) else (),
            tenant=tenant or None,
            created_from=_day(created_from),
            created_to=_day(created_to, end=True),
        )
        page = await jobs.page(viewer.caller, job_filter, limit=PAGE, cursor=cursor or None)
        return await dash.page(
            request,
            viewer,
            "jobs.html",
            jobs=page.jobs,
            next_cursor=page.next_cursor,
            filters=filters,
            types=startable_types(app, viewer.caller),
            states=[s.value for s in JobState],
        )

    @router.get("/jobs/{job_id}")
    async def job_detail(request: Request, job_id: str, viewer: SignedIn) -> Response:
        caller = viewer.caller
        job = await jobs.get(caller, job_id)
        tracker = await app.tracker(job.id, visible=caller.sees_child)
        return await dash.page(
            request,
            viewer,
            "job.html",
            job=job,
            tracker=tracker,
            logs=await app.job_logs(job.id, limit=500),
            errors=await app.job_errors(job.id),
            tracebacks=caller.tenant is None,
            retryable=job.state in (JobState.FAILED, JobState.CANCELLED),
            cancellable=job.state in LIVE_STATES,
            live=True,
        )

    @router.get("/queues")
    async def queues(request: Request, viewer: SignedIn) -> Response:
        stats = await jobs.stats(viewer.caller)
        rows = [(q, display_counts(q)) for q in stats.queues]
        return await dash.page(request, viewer, "queues.html", rows=rows)

    @router.get("/metrics")
    async def metrics(request: Request, viewer: SignedIn) -> Response:
        now = app.clock.now()
        day = JobFilter(states=[JobState.COMPLETED, JobState.FAILED], created_from=now - 2 * 86400)
        finished: list[Job] = []
        cursor = None
        while len(finished) < TREND_JOBS:  # the backends hand out at most 1000 jobs a page
            page = await jobs.page(viewer.caller, day, limit=1000, cursor=cursor)
            finished += page.jobs
            if (cursor := page.next_cursor) is None:
                break
        stats = await jobs.stats(viewer.caller)
        rows = [(q, display_counts(q)) for q in stats.queues]
        deepest = max([c["pending"] + c["scheduled"] + c["retrying"] for _, c in rows] + [1])
        chart = trend(finished, now)
        return await dash.page(
            request, viewer, "metrics.html", chart=chart, stats=stats, rows=rows, deepest=deepest
        )

    @router.get("/workers")
    async def workers(request: Request, viewer: SignedIn) -> Response:
        shown = await app.workers() if viewer.caller.tenant is None else []
        running: dict[str, list[Job]] = {}
        if shown:
            page = await app.list_jobs(JobFilter(states=[JobState.RUNNING]), limit=1000)
            for job in page.jobs:
                running.setdefault(job.worker_id or "", []).append(job)
        return await dash.page(
            request, viewer, "workers.html", workers=shown, running=running, now=app.clock.now()
        )

    @router.get("/schedules")
    async def schedules(request: Request, viewer: SignedIn) -> Response:
        tenant = viewer.caller.tenant
        shown = [s for s in await app.schedules() if tenant is None or s.tenant == tenant]
        return await dash.page(request, viewer, "schedules.html", schedules=shown)

    @router.get("/events")
    async def events(
        request: Request,
        viewer: SignedIn,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> StreamingResponse:
        """The API's event stream, authenticated by the session cookie instead of a bearer token.

        The browser's EventSource sends Last-Event-ID when it reconnects, so a
        dropped connection resumes where it stopped instead of re-sending every live job.
        """
        session = request.cookies.get(COOKIE)

        async def signed_in() -> bool:
            return await dash.sessions.caller(session) is not None

        stream = EventStream(
            jobs,
            viewer.caller,
            dash.config.events_interval,
            resume=last_event_id,
            roll_up=True,
            still_allowed=signed_in,
        )
        return StreamingResponse(
            stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    return router


def _day(value: str, *, end: bool = False) -> float | None:
    """A YYYY-MM-DD form field as the epoch at the start of that UTC day (or of the next one)."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    start = datetime.combine(day, time(), UTC).timestamp()
    return start + 86400 if end else start
