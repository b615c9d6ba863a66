"""Queues, workers, live events, metrics and health: the operator's side of the API."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST

from ..errors import ConveyorError
from .auth import Caller
from .context import ApiContext, errors
from .events import EventStream
from .metrics import Metrics
from .models import ErrorBody, HealthOut, QueueOut, ScheduleOut, WorkerOut
from .tokens import Scope
from .views import queue_out, schedule_out, worker_out

READY_TIMEOUT = 5.0


def system_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter()
    read = ctx.reader()
    infra_read = ctx.auth.require(Scope.READ, untenanted=True)
    infra_admin = ctx.auth.require(Scope.ADMIN, untenanted=True)
    jobs, app = ctx.jobs, ctx.app
    metrics = Metrics(app)

    @router.get("/api/queues", tags=["queues"], responses=errors())
    async def queues(caller: Annotated[Caller, Depends(read)]) -> list[QueueOut]:
        """Every queue with jobs (or paused): counts per display state and whether it is paused."""
        return [queue_out(q) for q in (await jobs.stats(caller)).queues]

    @router.post("/api/queues/{queue}/pause", tags=["queues"], responses=errors())
    async def pause(queue: str, caller: Annotated[Caller, Depends(infra_admin)]) -> QueueOut:
        """Stop workers from starting jobs on the queue; running jobs finish, enqueueing still works."""
        await app.pause(queue)
        return await _queue(queue, caller)

    @router.post("/api/queues/{queue}/resume", tags=["queues"], responses=errors())
    async def resume(queue: str, caller: Annotated[Caller, Depends(infra_admin)]) -> QueueOut:
        """Let workers start jobs on a paused queue again."""
        await app.resume(queue)
        return await _queue(queue, caller)

    async def _queue(name: str, caller: Caller) -> QueueOut:
        for q in (await jobs.stats(caller)).queues:
            if q.queue == name:
                return queue_out(q)
        return QueueOut(queue=name, paused=False, counts={}, total=0)

    @router.get("/api/schedules", tags=["schedules"], responses=errors())
    async def schedules(caller: Annotated[Caller, Depends(read)]) -> list[ScheduleOut]:
        """Cron and interval schedules with their next and last ticks (a tenant token: its own)."""
        return [
            schedule_out(s)
            for s in await app.schedules()
            if caller.tenant is None or s.tenant == caller.tenant
        ]

    @router.get("/api/workers", tags=["workers"], responses=errors())
    async def workers(caller: Annotated[Caller, Depends(infra_read)]) -> list[WorkerOut]:
        """Live workers (seen within the lease period): their concurrency and running jobs."""
        return [worker_out(w) for w in await app.workers()]

    @router.get(
        "/api/events",
        tags=["events"],
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
                "description": "A stream of `job`, `removed`, `stats` and `error` events (JSON data);"
                " each `job` and `removed` event has an id to resume from with `Last-Event-ID`.",
            },
            **errors(),
        },
    )
    async def events(
        request: Request,
        caller: Annotated[Caller, Depends(read)],
        queue: Annotated[list[str] | None, Query(description="Only jobs of these queues.")] = None,
        type: Annotated[list[str] | None, Query(description="Only jobs of these types.")] = None,
        last_event_id: Annotated[
            str | None, Header(alias="Last-Event-ID", description="Resume after this event; no snapshot.")
        ] = None,
    ) -> StreamingResponse:
        """Live job changes and counts as server-sent events, until the client disconnects."""
        stream = EventStream(
            jobs,
            caller,
            ctx.events_interval,
            queues=queue or (),
            types=type or (),
            resume=last_event_id,
            still_allowed=ctx.auth.still_valid(request),
        )
        return StreamingResponse(
            stream,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **errors()},
    )
    async def prometheus(caller: Annotated[Caller, Depends(infra_read)]) -> Response:
        """Prometheus metrics: jobs per queue and state, success ratio, workers, concurrency."""
        return Response(await metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/healthz", tags=["health"])
    async def healthz() -> HealthOut:
        """The process is up (no authentication, no backend call)."""
        return HealthOut(status="ok")

    async def _probe() -> None:
        await (await app.backend()).get("readyz-probe")

    @router.get("/readyz", tags=["health"], responses={503: {"model": ErrorBody}})
    async def readyz() -> HealthOut:
        """The backend answers (no authentication); one lookup by key is its cheapest round trip."""
        try:
            await asyncio.wait_for(_probe(), READY_TIMEOUT)
        except (ConveyorError, OSError, TimeoutError):
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "the job backend is unavailable"
            ) from None
        return HealthOut(status="ready")

    return router
