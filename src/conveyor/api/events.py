"""Server-sent events for live views, read from the backend's job event stream.

A new stream first sends a snapshot (every live job the caller sees, then the
counts) and then follows the event stream from a cursor taken before the
snapshot, so no change falls between the two. Each `job` event carries the
whole job as it is when sent, plus what happened (`event.kind`, `event.at`),
and an SSE id: the backend cursor after it. A client that reconnects with
`Last-Event-ID` resumes there and skips the snapshot, unless the bounded
stream has dropped events it had not read: then the snapshot is sent again,
as it is for any stream that falls that far behind. A `Last-Event-ID` beyond
the newest event (a tab left open while the store was emptied) gets the
snapshot too, as does a stream whose store is emptied under it. Events arriving within
`interval` are coalesced: a job that changed five times is read and sent
once. A stream ends when the client disconnects, or soon after its token is
revoked or its dashboard session ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from ..backends.base import Backend, JobFilter
from ..errors import BackendError, PayloadError
from ..events import JobEvent, JobEventKind
from ..job import LIVE_STATES, Job, JobState
from .auth import Caller
from .seeds import stats_event
from .service import Jobs
from .shared_reads import shared_reads
from .views import Unshowable, flow_progress, job_out

log = logging.getLogger("conveyor.api.events")

LIVE_LIMIT = 1000  # live jobs in the first snapshot; later changes are sent whatever their number
BATCH = 500  # events read per backend call
KEEPALIVE = 15.0  # seconds of silence before a comment line keeps proxies from closing the stream
RECHECK = 2.0  # seconds between checks that the stream's token (or session) is still valid


def sse(event: str, data: str, event_id: str | None = None) -> str:
    head = "" if event_id is None else f"id: {event_id}\n"
    return f"{head}event: {event}\ndata: {data}\n\n"


@dataclass
class EventStream:
    jobs: Jobs
    caller: Caller
    interval: float
    queues: Sequence[str] = ()
    types: Sequence[str] = ()
    resume: str | None = None  # the client's Last-Event-ID
    roll_up: bool = False
    """Also send a flow's root job, with the whole tree's progress, whenever a job inside it changes."""
    still_allowed: Callable[[], Awaitable[bool]] | None = None
    """Asked every `RECHECK` seconds; once it says no (the token was revoked, the session ended),
    the stream sends an `error` event and ends, instead of delivering until the client leaves."""
    _roots: dict[str, str] = field(default_factory=dict, repr=False)
    """Job id -> the id of its flow's root, for jobs already walked up."""

    async def __aiter__(self) -> AsyncIterator[str]:
        yield f"retry: {max(1000, int(self.interval * 2000))}\n\n"
        backend = await self.jobs.app.backend()
        while True:
            try:
                cursor, snapshot = await self._start(backend)
                last_stats = await self._stats()
                break
            except BackendError as exc:
                log.warning("event stream could not start: %s", exc)
                yield sse("error", json.dumps({"detail": "the job backend is unavailable"}))
                await asyncio.sleep(self.interval)
        yield "".join([*snapshot, sse("stats", last_stats)])
        quiet_since = checked_at = time.monotonic()
        block = KEEPALIVE if self.still_allowed is None else RECHECK
        while True:
            if self.still_allowed is not None and time.monotonic() - checked_at >= RECHECK:
                checked_at = time.monotonic()
                if not await self.still_allowed():
                    yield sse("error", json.dumps({"detail": "the token was revoked or the session ended"}))
                    return
            try:
                batch = await shared_reads(self.jobs.app).events(cursor, limit=BATCH, block=block)
                chunks = await self._send(backend, batch.events)
                if batch.missed:  # fell behind the stream's bound: show every live job afresh
                    chunks[:0] = await self._snapshot(cursor)
                stats = await self._stats()
            except PayloadError as exc:  # the store was emptied under this stream: start afresh
                log.info("event stream restarts with a snapshot: %s", exc)
                cursor = (await backend.events(None)).cursor
                yield "".join(await self._snapshot(cursor))
                continue
            except BackendError as exc:
                log.warning("event stream read failed: %s", exc)
                yield sse("error", json.dumps({"detail": "the job backend is unavailable"}))
                await asyncio.sleep(self.interval)
                continue
            cursor = batch.cursor
            if stats != last_stats:
                chunks.append(sse("stats", stats))
                last_stats = stats
            if chunks:
                quiet_since = time.monotonic()
                yield "".join(chunks)
            elif time.monotonic() - quiet_since >= KEEPALIVE:
                quiet_since = time.monotonic()
                yield ": keepalive\n\n"
            if batch.events:
                await asyncio.sleep(self.interval)  # let the next changes gather into one read

    async def _stats(self) -> str:
        return stats_event(await self.jobs.stats(self.caller, max_age=self.interval)).model_dump_json()

    async def _start(self, backend: Backend) -> tuple[str, list[str]]:
        """Where to read from, and the snapshot to send first (none when resuming)."""
        if self.resume:
            try:
                await backend.events(self.resume, limit=1)
                return self.resume, []
            except PayloadError:
                log.info("ignoring a Last-Event-ID this backend cannot resume from")
        cursor = (await backend.events(None)).cursor
        return cursor, await self._snapshot(cursor)

    async def _snapshot(self, cursor: str) -> list[str]:
        wanted = JobFilter(states=sorted(LIVE_STATES), queues=self.queues, types=self.types)
        page = await self.jobs.page(self.caller, wanted, limit=LIVE_LIMIT)
        shown = [await self._shown(job) for job in page.jobs]
        return [sse("job", json.dumps(data), cursor) for data in shown if data is not None]

    async def _shown(self, job: Job) -> dict[str, object] | None:
        """What is sent of `job`; None, logged, for a record that cannot be shown."""
        try:
            return await self._data(job)
        except Unshowable as exc:
            log.warning("job %s is left out of an event stream: %s", job.id, exc)
            return None

    async def _data(self, job: Job) -> dict[str, object]:
        """The job as sent; with roll-up, a flow's root also carries its tree's progress as `flow`."""
        data = job_out(job).model_dump(mode="json")
        if self.roll_up and job.parent_id is None and job.state is JobState.WAITING_CHILDREN:
            data["flow"] = flow_progress(await self.jobs.app.tracker(job.id, visible=self.caller.sees_child))
        return data

    async def _root_of(self, backend: Backend, job: Job) -> str | None:
        """Walk up to the flow's root, remembering every step; None when an ancestor is gone."""
        path, current = [job.id], job
        while current.parent_id is not None:
            known = self._roots.get(current.parent_id)
            if known is not None:
                break
            parent = await backend.get(current.parent_id)
            if parent is None:
                return None
            path.append(parent.id)
            current = parent
        root = self._roots.get(current.parent_id or "", current.id)
        self._roots.update(dict.fromkeys(path, root))
        return root

    def _wanted(self, event: JobEvent) -> bool:
        return (
            (self.caller.tenant is None or event.tenant == self.caller.tenant)
            and (not self.queues or event.queue in self.queues)
            and (not self.types or event.type in self.types)
        )

    async def _send(self, backend: Backend, events: Sequence[JobEvent]) -> list[str]:
        """One SSE event per job that changed, in the order of its last change."""
        latest: dict[str, JobEvent] = {}
        for event in filter(self._wanted, events):
            latest.pop(event.job_id, None)
            latest[event.job_id] = event
        chunks = []
        roots: list[str] = []  # flows with a change inside, in the order of their last change
        for event in latest.values():
            job = (
                None
                if event.kind is JobEventKind.REMOVED
                else await shared_reads(self.jobs.app).job_after(event)
            )
            if job is None or not self.caller.sees(job):
                chunks.append(sse("removed", json.dumps({"id": event.job_id}), event.cursor))
                continue
            data = await self._shown(job)
            if data is None:
                continue
            data["event"] = {"kind": event.kind.value, "at": event.at}
            chunks.append(sse("job", json.dumps(data), event.cursor))
            if self.roll_up and job.parent_id is not None:
                root_id = await self._root_of(backend, job)
                if root_id is not None and root_id not in latest:
                    roots = [r for r in roots if r != root_id] + [root_id]
        last_cursor = next(reversed(latest.values())).cursor if latest else None
        for root_id in roots:  # after every change they sum up, under the batch's last cursor
            root = await backend.get(root_id)
            data = None if root is None or not self.caller.sees(root) else await self._shown(root)
            if data is not None:
                chunks.append(sse("job", json.dumps(data), last_cursor))
        return chunks
