"""Reads that every open event stream makes at the same moment, made once for all of them.

Each stream follows the backend's event log and, for every job an event
names, sends the job as it is now, then the counts. With fifty streams open,
one change used to cost fifty reads of the same job and fifty count queries,
and the API spent itself on streams instead of answering requests. Here the
job behind one event is read once, by whichever stream asks first, and the
others await that same read: it was made after the event was written, so it
is at least as new as the event, exactly what each stream would have read
itself. Counts are shared for one events interval per tenant, and streams
that have caught up share one read of the event log itself.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Awaitable
from typing import TypeVar

from ..app import Conveyor
from ..events import EventBatch, JobEvent
from ..job import Job
from ..stats import Stats

T = TypeVar("T")
KEEP_EVENTS = 20_000
"""Reads kept by event id: far more than streams lag behind one another, and bounded."""


class SharedReads:
    def __init__(self, app: Conveyor) -> None:
        self.app = app
        self._jobs: OrderedDict[str, asyncio.Future[Job | None]] = OrderedDict()
        self._stats: dict[str | None, tuple[float, asyncio.Future[Stats]]] = {}
        self._events: dict[tuple[str, int], asyncio.Future[EventBatch]] = {}

    async def events(self, cursor: str, *, limit: int, block: float) -> EventBatch:
        """The events after `cursor`, waiting up to `block` for some.

        Streams that are level with one another (all of them, once they have caught up)
        ask for the same cursor at the same moment; the one read in flight answers them
        all. Only reads in flight are shared: a later ask reads afresh.
        """
        key = (cursor, limit)
        found = self._events.get(key)
        if found is None or _unusable(found):
            backend = await self.app.backend()
            found = self._start(backend.events(cursor, limit=limit, block=block))
            self._events[key] = found
            found.add_done_callback(
                lambda done: self._events.pop(key, None) if self._events.get(key) is done else None
            )
        return await asyncio.shield(found)

    async def job_after(self, event: JobEvent) -> Job | None:
        """The job `event` names, read after the event (None once it is gone)."""
        event_id = f"{event.id}:{event.job_id}"
        found = self._jobs.get(event_id)
        if found is None or _unusable(found):
            found = self._start(self._read_job(event.job_id))
            self._jobs[event_id] = found
            while len(self._jobs) > KEEP_EVENTS:
                self._jobs.popitem(last=False)
        return await asyncio.shield(found)

    async def stats(self, tenant: str | None, max_age: float) -> Stats:
        """The counts for `tenant` (None: every tenant), at most `max_age` seconds old."""
        now = asyncio.get_running_loop().time()
        cached = self._stats.get(tenant)
        if cached is None or now - cached[0] > max_age or _unusable(cached[1]):
            cached = (now, self._start(self.app.stats(tenant=tenant)))
            self._stats[tenant] = cached
        return await asyncio.shield(cached[1])

    async def _read_job(self, job_id: str) -> Job | None:
        return await (await self.app.backend()).get(job_id)

    def _start(self, read: Awaitable[T]) -> asyncio.Future[T]:
        future = asyncio.ensure_future(read)
        future.add_done_callback(_retrieve)
        return future


def _unusable(future: asyncio.Future[T]) -> bool:
    """Of another event loop (a test's earlier one), or failed: read again rather than share it."""
    if future.get_loop() is not asyncio.get_running_loop():
        return True
    return future.done() and (future.cancelled() or future.exception() is not None)


def _retrieve(future: asyncio.Future[T]) -> None:
    """A failed shared read is re-raised to every awaiting stream; nobody else must log it."""
    if not future.cancelled():
        future.exception()


_BY_APP: weakref.WeakKeyDictionary[Conveyor, SharedReads] = weakref.WeakKeyDictionary()


def shared_reads(app: Conveyor) -> SharedReads:
    """The one `SharedReads` of `app`, whichever of its APIs and dashboards asks."""
    reads = _BY_APP.get(app)
    if reads is None:
        reads = _BY_APP[app] = SharedReads(app)
    return reads


__all__ = ["SharedReads", "shared_reads"]
