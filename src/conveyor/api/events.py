"""Server-sent events for live views, by polling the backend until the engine has an event stream.

Each poll lists the caller's live jobs and sends a `job` event for every job
that is new or whose state or progress changed; a job that left the live set
is read once more so its final state is sent (or `removed` if it is gone).
A `stats` event is sent whenever the counts change. The first poll therefore
sends a snapshot of every live job and the current counts. A stream never
ends by itself; it stops when the client disconnects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from ..backends.base import JobFilter
from ..errors import BackendError
from ..job import LIVE_STATES, Job
from .auth import Caller
from .seeds import stats_event
from .service import Jobs
from .views import job_out

log = logging.getLogger("conveyor.api.events")

LIVE_LIMIT = 1000  # live jobs followed per stream; beyond that, only counts stay exact
KEEPALIVE = 15.0  # seconds of silence before a comment line keeps proxies from closing the stream


def sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


def _fingerprint(job: Job) -> tuple[object, ...]:
    p = job.progress
    return (
        job.display_state,
        job.attempts,
        p.percent,
        p.message,
        p.step,
        job.cancel_requested,
        job.children_pending,
    )


@dataclass
class EventStream:
    jobs: Jobs
    caller: Caller
    interval: float
    queues: Sequence[str] = ()
    types: Sequence[str] = ()

    async def __aiter__(self) -> AsyncIterator[str]:
        yield f"retry: {max(1000, int(self.interval * 2000))}\n\n"
        seen: dict[str, tuple[object, ...]] = {}
        last_stats = ""
        quiet_since = time.monotonic()
        while True:
            try:
                chunks, seen, last_stats = await self._poll(seen, last_stats)
            except BackendError as exc:
                log.warning("event stream poll failed: %s", exc)
                chunks = [sse("error", json.dumps({"detail": "the job backend is unavailable"}))]
            if chunks:
                quiet_since = time.monotonic()
                yield "".join(chunks)
            elif time.monotonic() - quiet_since >= KEEPALIVE:
                quiet_since = time.monotonic()
                yield ": keepalive\n\n"
            await asyncio.sleep(self.interval)

    async def _poll(
        self, seen: dict[str, tuple[object, ...]], last_stats: str
    ) -> tuple[list[str], dict[str, tuple[object, ...]], str]:
        wanted = JobFilter(states=sorted(LIVE_STATES), queues=self.queues, types=self.types)
        page = await self.jobs.page(self.caller, wanted, limit=LIVE_LIMIT)
        chunks: list[str] = []
        current: dict[str, tuple[object, ...]] = {}
        for job in page.jobs:
            current[job.id] = _fingerprint(job)
            if seen.get(job.id) != current[job.id]:
                chunks.append(sse("job", job_out(job).model_dump_json()))
        backend = await self.jobs.app.backend()
        for job_id in seen.keys() - current.keys():
            ended = await backend.get(job_id)
            if ended is None or not self.caller.sees(ended):
                chunks.append(sse("removed", json.dumps({"id": job_id})))
            else:
                chunks.append(sse("job", job_out(ended).model_dump_json()))
        stats = stats_event(await self.jobs.stats(self.caller)).model_dump_json()
        if stats != last_stats:
            chunks.append(sse("stats", stats))
        return chunks, current, stats
