"""Reading the SQLite event table: a cursor is the last `seq` read.

Triggers (migration 0005) write the events in the transactions that change
jobs; a reader with nothing new waits on the same commit signal as an idle
worker (`PRAGMA data_version` on the watch connection). However many readers
wait (fifty live views in one API process), one poller asks the pragma every
few milliseconds and wakes them all on a commit: a waiting view costs nothing
of its own, and no table reads.
"""

from __future__ import annotations

import asyncio
import sqlite3

from ...errors import PayloadError
from ...events import FROM_OLDEST, EventBatch, JobEvent, JobEventKind
from ...job import JobState
from .connection import SQLiteConnection

_AFTER = (
    "SELECT seq, kind, job_id, type, queue, tenant, state, percent, message, at"
    " FROM conveyor_events WHERE seq > ? ORDER BY seq LIMIT ?"
)
_LAST = "SELECT max(seq) FROM conveyor_events"


def parse_cursor(cursor: str) -> int:
    if not cursor.isdigit() or len(cursor) > 18:
        raise PayloadError(f"bad event cursor {cursor[:40]!r}: expected a number from this SQLite backend")
    return int(cursor)


def _event(row: tuple[object, ...]) -> JobEvent:
    seq, kind, job_id, type_, queue, tenant, state, percent, message, at = row
    return JobEvent(
        id=str(seq),
        cursor=str(seq),
        kind=JobEventKind(str(kind)),
        job_id=str(job_id),
        type=str(type_),
        queue=str(queue),
        tenant=None if tenant is None else str(tenant),
        state=JobState(str(state)),
        percent=float(percent),  # type: ignore[arg-type]
        message=None if message is None else str(message),
        at=None if at is None else float(at),  # type: ignore[arg-type]
    )


class SQLiteEvents:
    _db: SQLiteConnection
    _watch: sqlite3.Connection | None
    _poll_interval: float
    _commit_waiters: list[asyncio.Future[None]]
    _commit_poller: asyncio.Task[None] | None

    async def events(self, after: str | None, *, limit: int = 500, block: float = 0.0) -> EventBatch:
        if limit < 1:
            raise PayloadError("an event read needs a limit of at least 1")
        if after is None:
            last = await self._db.read(lambda conn: conn.execute(_LAST).fetchone())
            start = int(last[0] or 0)
        else:
            start = parse_cursor(after or FROM_OLDEST)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block
        checked = after is None or start == 0
        while True:
            version = self._data_version()
            rows = await self._db.read(lambda conn: conn.execute(_AFTER, (start, limit)).fetchall())
            if not rows and not checked:
                checked = True
                last = await self._db.read(lambda conn: conn.execute(_LAST).fetchone())
                if start > int(last[0] or 0):
                    raise PayloadError(
                        f"event cursor {start} is beyond the newest event ({int(last[0] or 0)}):"
                        " it comes from another or an emptied store"
                    )
            if rows:
                events = [_event(r) for r in rows]
                # Events are numbered without gaps and trimmed oldest first, so a first
                # event that does not follow the cursor means the ones between were trimmed.
                missed = start > 0 and int(rows[0][0]) > start + 1
                return EventBatch(events, events[-1].cursor, missed)
            if not await self._commit_after(version, deadline - loop.time()):
                return EventBatch([], str(start))

    def _data_version(self) -> int:
        assert self._watch is not None, "the SQLite backend is not open"
        return int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    async def _commit_after(self, version: int, timeout: float) -> bool:
        """Wait until a commit after `version` was read, or `timeout` passes (False)."""
        if self._data_version() != version:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._commit_waiters.append(waiter)
        if self._commit_poller is None or self._commit_poller.done():
            self._commit_poller = asyncio.create_task(self._poll_commits(version))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            if waiter in self._commit_waiters:
                self._commit_waiters.remove(waiter)

    async def _poll_commits(self, version: int) -> None:
        """The one pragma loop, while anyone waits; every waiter is woken by the next commit."""
        while self._commit_waiters:
            await asyncio.sleep(self._poll_interval)
            if self._watch is None:
                return
            now = self._data_version()
            if now != version:
                version = now
                woken, self._commit_waiters[:] = list(self._commit_waiters), []
                for waiter in woken:
                    if not waiter.done():
                        waiter.set_result(None)
