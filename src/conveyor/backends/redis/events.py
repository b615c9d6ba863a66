"""Reading the job event streams: one Redis Stream per queue, `{p:q}:events`.

A queue's scripts append to its own stream in the script that makes the
change, which keeps every write in one cluster slot. A reader therefore
follows several streams: its cursor holds, per queue, the last stream entry
it has read (URL-encoded, `imports=1732400000000-0&slow=...`), and a queue
missing from a cursor is read from its oldest entry, so a queue created
after the cursor was taken loses nothing. Entries of several queues are
merged by entry id (the server's millisecond clock, then a sequence), which
orders events of different queues as the server recorded them, to the
millisecond.

One XREAD names every queue's stream. Blocking reads are cut into slices of
at most `QUEUE_REFRESH` seconds, so a reader notices a new queue within that
time. (A Redis Cluster client would send one XREAD per node; the backend
connects with a plain client today, see docs/backends.md.)
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ...errors import PayloadError
from ...events import FROM_OLDEST, EventBatch, JobEvent, JobEventKind
from ...job import JobState
from .keys import KeyLayout
from .store import Store, translate_errors

QUEUE_REFRESH = 1.0  # seconds a blocking read waits before looking for new queues
_ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")
Position = dict[str, str]  # queue -> id of the last entry read


def parse_cursor(cursor: str) -> Position:
    if cursor == FROM_OLDEST:
        return {}
    try:
        pairs = parse_qsl(cursor, keep_blank_values=True, strict_parsing=bool(cursor))
    except ValueError:
        pairs = [("", "")]
    if not all(_ENTRY_ID.fullmatch(entry) for _, entry in pairs):
        raise PayloadError(f"bad event cursor {cursor[:40]!r}: not a cursor of this Redis backend")
    return dict(pairs)


def format_cursor(position: Position) -> str:
    return urlencode(sorted(position.items()))


def _order(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def _event(queue: str, entry_id: str, fields: dict[str, str], cursor: str) -> JobEvent:
    at = fields.get("at")
    return JobEvent(
        id=f"{entry_id}@{queue}",
        cursor=cursor,
        kind=JobEventKind(fields["kind"]),
        job_id=fields["job"],
        type=fields["type"],
        queue=queue,
        tenant=fields.get("tenant"),
        state=JobState(fields["state"]),
        percent=float(fields["percent"]),
        message=fields.get("message"),
        at=None if at is None else float(at),
    )


class RedisEvents:
    _store: Store
    layout: KeyLayout
    where: str

    @translate_errors
    async def events(self, after: str | None, *, limit: int = 500, block: float = 0.0) -> EventBatch:
        if limit < 1:
            raise PayloadError("an event read needs a limit of at least 1")
        position = await self._tail() if after is None else parse_cursor(after)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block
        checked = after is None
        while True:
            queues = sorted(set(await self._store.all_queues()) | position.keys())
            wait_ms = int(min(deadline - loop.time(), QUEUE_REFRESH) * 1000)
            if queues:
                streams = {self.layout.events(q): position.get(q, "0-0") for q in queues}
                reply = await self._store.client.xread(
                    streams,  # type: ignore[arg-type]
                    count=limit,
                    block=wait_ms if wait_ms > 0 else None,
                )
                if reply:
                    batch = self._merge(reply, queues, position, limit)
                    return replace(batch, missed=await self._trimmed_past(position, batch.events))
            if not checked:
                checked = True
                await self._check_not_beyond(position)
            elif wait_ms > 0:
                await asyncio.sleep(wait_ms / 1000)
            if loop.time() >= deadline:
                return EventBatch([], format_cursor(position))

    def _merge(self, reply: Any, queues: list[str], position: Position, limit: int) -> EventBatch:
        queue_of = {self.layout.events(q): q for q in queues}
        entries = [
            (_order(entry_id), queue_of[stream], entry_id, fields)
            for stream, stream_entries in reply
            for entry_id, fields in stream_entries
        ]
        entries.sort(key=lambda e: (e[0], e[1]))
        position = dict(position)
        events = []
        for _, queue, entry_id, fields in entries[:limit]:
            position[queue] = entry_id
            events.append(_event(queue, entry_id, fields, format_cursor(position)))
        return EventBatch(events, format_cursor(position))

    async def _trimmed_past(self, position: Position, events: list[JobEvent]) -> bool:
        """Whether a queue's stream may have lost entries after the position read from.

        Trimming drops the oldest entries and always keeps the newest, so only a
        queue that returned entries can have lost some in between, and then the
        entry at its position is gone too: the oldest entry kept is newer. (When
        only that entry went, nothing was lost, but stream ids cannot tell.)
        """
        queues = sorted({e.queue for e in events if e.queue in position})
        if not queues:
            return False
        pipe = self._store.client.pipeline(transaction=False)
        for queue in queues:
            pipe.xinfo_stream(self.layout.events(queue))
        infos = await pipe.execute()
        return any(
            info["first-entry"] is not None and _order(info["first-entry"][0]) > _order(position[queue])
            for queue, info in zip(queues, infos, strict=True)
        )

    async def _check_not_beyond(self, position: Position) -> None:
        """A cursor past a queue's newest entry (the store was emptied, or it is another store's)
        would wait for events that come only once the stream grows past it: refuse it instead."""
        tail = await self._tail()
        for queue, entry in position.items():
            if entry != "0-0" and (queue not in tail or _order(entry) > _order(tail[queue])):
                raise PayloadError(
                    f"event cursor is beyond the newest event of queue {queue!r}:"
                    " it comes from another or an emptied store"
                )

    async def _tail(self) -> Position:
        """Where every queue's stream ends now: a cursor that reads only what comes next."""
        queues = await self._store.all_queues()
        pipe = self._store.client.pipeline(transaction=False)
        for queue in queues:
            pipe.xrevrange(self.layout.events(queue), count=1)
        lasts = await pipe.execute()
        return {q: last[0][0] for q, last in zip(queues, lasts, strict=True) if last}
