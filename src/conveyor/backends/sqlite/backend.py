"""The embedded default backend: one SQLite file, shared by many processes (WAL)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict

from ...errors import ConfigurationError, InvalidStateTransition
from ...events import DEFAULT_EVENTS_MAX
from ...job import (
    FINISHED_STATES,
    LIVE_STATES,
    AttemptError,
    Job,
    LogLine,
    NewJob,
    NewJobBatch,
    ThenAction,
)
from ..base import (
    EnqueueResult,
    FetchParams,
    ProgressUpdate,
    RecoverResult,
    RenewResult,
    RetentionParams,
    SettleKind,
    Settlement,
    WorkerInfo,
)
from . import claim, dedup, keys
from .connection import SQLiteConnection
from .events import SQLiteEvents
from .extras import SQLiteKeysAndSchedules
from .flows import cancel_descendants, count_children, job_ended, settle_wait
from .reads import SQLiteReads, get_row
from .rows import (
    INSERT_JOB,
    error_to_json,
    new_job_params,
)

_LIVE = "(" + ", ".join(sorted(f"'{s.value}'" for s in LIVE_STATES)) + ")"
_FINISHED = "(" + ", ".join(sorted(f"'{s.value}'" for s in FINISHED_STATES)) + ")"
_OWNED = "id = ? AND state = 'running' AND worker_id = ? AND attempts = ?"
# Writes of up to this many jobs may run on the event loop itself (see SQLiteConnection.write).
QUICK_ROWS = 64
_ENDINGS = {
    SettleKind.COMPLETE: "completed",
    SettleKind.FAIL: "failed",
    SettleKind.CANCEL: "cancelled",
}
_INSERT_ERROR = (
    "INSERT INTO conveyor_job_errors (job_id, attempt, at, type, message, traceback)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


_REMOVED_EVENT = (
    "INSERT INTO conveyor_events (kind, job_id, type, queue, tenant, state, percent, message, at)"
    " SELECT 'removed', id, type, queue, tenant, state, progress_percent, progress_message, NULL"
    " FROM conveyor_jobs WHERE id = ?"
)


def _error_row(job_id: str, error: AttemptError) -> tuple[object, ...]:
    return (job_id, error.attempt, error.at, error.type, error.message, error.traceback)


class SQLiteBackend(SQLiteReads, SQLiteKeysAndSchedules, SQLiteEvents):
    """Each public method is one transaction; `wait_for_jobs` watches the file for commits.

    `events_max` bounds the event table: each write trims what is more than
    `events_max` events old, so the processes sharing a file should agree on it.
    """

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 10.0,
        poll_interval: float = 0.005,
        events_max: int = DEFAULT_EVENTS_MAX,
    ) -> None:
        if events_max < 1:
            raise ConfigurationError(f"events_max must be at least 1, got {events_max}")
        self.path = path
        self.events_max = events_max
        self._db = SQLiteConnection(
            path, synchronous=synchronous, busy_timeout=busy_timeout, events_max=events_max
        )
        self._poll_interval = poll_interval
        self._commit_waiters: list[asyncio.Future[None]] = []
        self._commit_poller: asyncio.Task[None] | None = None
        self._watch: sqlite3.Connection | None = None
        self._local_change: asyncio.Event | None = None
        self._seen_version = -1

    def __repr__(self) -> str:
        return f"SQLiteBackend({self.path!r})"

    async def open(self) -> None:
        await self._db.open()
        # A second connection, used only from the event loop, to see other processes' commits.
        self._watch = self._db.connect_raw()
        self._local_change = asyncio.Event()

    async def close(self) -> None:
        if self._commit_poller is not None:
            self._commit_poller.cancel()
            self._commit_poller = None
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        await self._db.close()

    def _changed(self) -> None:
        if self._local_change is not None:
            self._local_change.set()

    # write ------------------------------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[EnqueueResult]:
        def is_plain(job: NewJob) -> bool:
            return job.dedup_key is None and job.parent_id is None

        def run(conn: sqlite3.Connection) -> list[EnqueueResult]:
            plain = [new_job_params(j) for j in jobs if is_plain(j)]
            if plain:
                conn.executemany(INSERT_JOB, plain)
            results = []
            children: Counter[str] = Counter()
            for job in jobs:
                if is_plain(job):
                    results.append(EnqueueResult(job.id, True))
                    continue
                throttled = dedup.throttled(conn, job)
                if throttled is not None:
                    results.append(EnqueueResult(throttled, False))
                    continue
                cur = conn.execute(INSERT_JOB + " ON CONFLICT DO NOTHING", new_job_params(job))
                if cur.rowcount == 1:
                    results.append(EnqueueResult(job.id, True))
                    dedup.record(conn, job)
                    if job.parent_id is not None:
                        children[job.parent_id] += 1
                    continue
                existing = _existing(conn, job)
                dedup.debounce(conn, job, existing)
                results.append(EnqueueResult(existing, False))
            count_children(conn, children)
            return results

        results = await self._db.write(run, quick=len(jobs) <= QUICK_ROWS)
        self._changed()
        return results

    async def enqueue_batch(self, batch: NewJobBatch) -> None:
        _, type_, queue, _, *shared = new_job_params(batch.template)
        rows = [
            (job_id, type_, queue, payload, *shared)
            for job_id, payload in zip(batch.ids, batch.payloads, strict=True)
        ]
        await self._db.write(lambda conn: conn.executemany(INSERT_JOB, rows), quick=len(rows) <= QUICK_ROWS)
        self._changed()

    async def cancel(self, job_id: str, *, now: float) -> Job | None:
        def run(conn: sqlite3.Connection) -> Job | None:
            stopped = conn.execute(
                "UPDATE conveyor_jobs SET state = 'cancelled', finished_at = ?"
                " WHERE id = ? AND state IN ('pending', 'scheduled', 'waiting_children')",
                (now, job_id),
            ).rowcount
            flagged = conn.execute(
                "UPDATE conveyor_jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'",
                (job_id,),
            ).rowcount
            if stopped or flagged:
                cancel_descendants(conn, job_id, now)
            if stopped:
                job_ended(conn, job_id, "cancelled", now)
            return get_row(conn, job_id)

        return await self._db.write(run, now=now)

    async def retry(self, job_id: str, *, now: float) -> Job | None:
        def run(conn: sqlite3.Connection) -> Job | None:
            try:
                conn.execute(
                    "UPDATE conveyor_jobs SET state = 'pending', attempts = 0, run_at = ?,"
                    " finished_at = NULL, lease_until = NULL, cancel_requested = 0,"
                    " progress_percent = 0 WHERE id = ? AND state IN ('failed', 'cancelled')",
                    (now, job_id),
                )
            except sqlite3.IntegrityError as exc:
                raise InvalidStateTransition(
                    f"job {job_id} cannot be retried: another live job has its dedup key"
                ) from exc
            conn.execute(
                "UPDATE conveyor_jobs SET children_pending = children_pending + 1 WHERE state ="
                " 'waiting_children' AND id = (SELECT parent_id FROM conveyor_jobs WHERE id = ?)",
                (job_id,),
            )
            return get_row(conn, job_id)

        job = await self._db.write(run, now=now)
        self._changed()
        return job

    async def remove(self, job_id: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            # Retention deletes many jobs silently; only a removal by hand is an event.
            conn.execute(_REMOVED_EVENT, (job_id,))
            return conn.execute("DELETE FROM conveyor_jobs WHERE id = ?", (job_id,)).rowcount == 1

        return await self._db.write(run)

    # claim and settle -------------------------------------------------------------------

    async def fetch(self, params: FetchParams) -> list[Job]:
        self._mark_seen()
        return await self._db.write(lambda conn: claim.fetch(conn, params), quick=True, now=params.now)

    def _mark_seen(self) -> None:
        """Before a fetch looks, note what it will have seen; a commit after this wakes the next wait."""
        if self._watch is not None and self._local_change is not None:
            self._seen_version = self._watch.execute("PRAGMA data_version").fetchone()[0]
            self._local_change.clear()

    async def settle(self, settlements: Sequence[Settlement], *, now: float) -> int:
        def run(conn: sqlite3.Connection) -> int:
            applied = 0
            for s in settlements:
                owner = (s.job_id, s.worker_id, s.attempt)
                if s.kind is SettleKind.COMPLETE:
                    sql = (
                        "UPDATE conveyor_jobs SET state = 'completed', result = ?, finished_at = ?,"
                        f" lease_until = NULL, progress_percent = 100 WHERE {_OWNED}"
                    )
                    args: tuple[object, ...] = (s.result_json, now, *owner)
                elif s.kind is SettleKind.WAIT:
                    sql = (
                        "UPDATE conveyor_jobs SET state = 'waiting_children', result = ?,"
                        f" lease_until = NULL, stage = stage + 1, then_action = ? WHERE {_OWNED}"
                    )
                    then = (s.then or ThenAction.COMPLETE).value
                    args = (s.result_json, then, *owner)
                elif s.kind in (SettleKind.RETRY, SettleKind.SNOOZE):
                    due = s.run_at if s.run_at is not None else now
                    refund = 1 if s.kind is SettleKind.SNOOZE else 0
                    sql = (
                        "UPDATE conveyor_jobs SET state = ?, run_at = ?, lease_until = NULL,"
                        " attempts = attempts - ?, error = coalesce(?, error)"
                        f" WHERE {_OWNED}"
                    )
                    state = "pending" if due <= now else "scheduled"
                    args = (state, due, refund, error_to_json(s.error), *owner)
                else:
                    state = "failed" if s.kind is SettleKind.FAIL else "cancelled"
                    sql = (
                        "UPDATE conveyor_jobs SET state = ?, finished_at = ?, lease_until = NULL,"
                        f" error = coalesce(?, error) WHERE {_OWNED}"
                    )
                    args = (state, now, error_to_json(s.error), *owner)
                if conn.execute(sql, args).rowcount != 1:
                    continue
                applied += 1
                keys.settled(conn, s.job_id, success=s.kind is SettleKind.COMPLETE)
                if s.error is not None and s.kind is not SettleKind.SNOOZE:
                    conn.execute(_INSERT_ERROR, _error_row(s.job_id, s.error))
                if s.kind in _ENDINGS:
                    job_ended(conn, s.job_id, _ENDINGS[s.kind], now)
                elif s.kind is SettleKind.WAIT:
                    settle_wait(conn, s.job_id, now)
            return applied

        applied = await self._db.write(run, quick=len(settlements) <= QUICK_ROWS, now=now)
        if any(s.kind in (SettleKind.RETRY, SettleKind.SNOOZE) for s in settlements):
            self._changed()
        return applied

    # leases and workers -----------------------------------------------------------------

    async def renew(self, worker: WorkerInfo, job_ids: Sequence[str], *, lease_until: float) -> RenewResult:
        info = json.dumps(asdict(worker))

        def run(conn: sqlite3.Connection) -> RenewResult:
            conn.execute(
                "INSERT INTO conveyor_workers (id, info, last_seen) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET info = excluded.info, last_seen = excluded.last_seen",
                (worker.id, info, worker.last_seen),
            )
            if not job_ids:
                return RenewResult(frozenset(), frozenset())
            rows = conn.execute(
                "UPDATE conveyor_jobs SET lease_until = ? WHERE state = 'running' AND worker_id = ?"
                " AND id IN (SELECT value FROM json_each(?)) RETURNING id, cancel_requested",
                (lease_until, worker.id, json.dumps(list(job_ids))),
            ).fetchall()
            kept = {r[0] for r in rows}
            return RenewResult(
                lost=frozenset(set(job_ids) - kept),
                cancel_requested=frozenset(r[0] for r in rows if r[1]),
            )

        return await self._db.write(run)

    async def recover(self, *, now: float) -> RecoverResult:
        def run(conn: sqlite3.Connection) -> RecoverResult:
            result = RecoverResult()
            expired = conn.execute(
                "SELECT id, attempts, max_attempts, cancel_requested FROM conveyor_jobs"
                " WHERE state = 'running' AND lease_until < ?",
                (now,),
            ).fetchall()
            for job_id, attempts, max_attempts, cancel_requested in expired:
                keys.settled(conn, job_id, success=False)  # a probe that died frees its key's probe slot
                if cancel_requested:
                    conn.execute(
                        "UPDATE conveyor_jobs SET state = 'cancelled', finished_at = ?,"
                        " lease_until = NULL WHERE id = ?",
                        (now, job_id),
                    )
                    result.cancelled.append(job_id)
                    job_ended(conn, job_id, "cancelled", now)
                    continue
                error = AttemptError(
                    attempts, now, "WorkerLost", "the worker running this attempt stopped renewing its lease"
                )
                if attempts >= max_attempts:
                    conn.execute(
                        "UPDATE conveyor_jobs SET state = 'failed', finished_at = ?,"
                        " lease_until = NULL, error = ? WHERE id = ?",
                        (now, error_to_json(error), job_id),
                    )
                    result.failed.append(job_id)
                    conn.execute(_INSERT_ERROR, _error_row(job_id, error))
                    job_ended(conn, job_id, "failed", now)
                    continue
                else:
                    conn.execute(
                        "UPDATE conveyor_jobs SET state = 'pending', run_at = ?, lease_until = NULL,"
                        " error = ? WHERE id = ?",
                        (now, error_to_json(error), job_id),
                    )
                    result.requeued.append(job_id)
                conn.execute(_INSERT_ERROR, _error_row(job_id, error))
            return result

        result = await self._db.write(run, now=now)
        if result.requeued:
            self._changed()
        return result

    async def unregister_worker(self, worker_id: str) -> None:
        await self._db.execute("DELETE FROM conveyor_workers WHERE id = ?", [(worker_id,)])

    # progress and logs ------------------------------------------------------------------

    async def progress(self, updates: Sequence[ProgressUpdate], *, now: float | None = None) -> None:
        rows = [(u.percent, u.message, u.step, u.job_id) for u in updates]
        await self._db.execute(
            "UPDATE conveyor_jobs SET progress_percent = coalesce(?, progress_percent),"
            " progress_message = coalesce(?, progress_message),"
            " progress_step = coalesce(?, progress_step) WHERE id = ? AND state = 'running'",
            rows,
            now=now,
        )

    async def log(self, lines: Sequence[LogLine]) -> None:
        rows = [(line.job_id, line.at, line.line) for line in lines]
        await self._db.execute("INSERT INTO conveyor_logs (job_id, at, line) VALUES (?, ?, ?)", rows)

    # waiting for work -------------------------------------------------------------------

    async def next_due(self, queues: Sequence[str]) -> float | None:
        def run(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(
                "SELECT min(run_at) FROM conveyor_jobs WHERE state = 'scheduled'"
                " AND queue IN (SELECT value FROM json_each(?))",
                (json.dumps(list(queues)),),
            ).fetchone()
            return None if row[0] is None else float(row[0])

        return await self._db.read(run)

    async def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        """Return when a commit happened since the last fetch looked, or on timeout.

        `PRAGMA data_version` changes whenever another connection commits to the
        file, so polling it costs microseconds and needs no table reads. The
        reference point is taken when the fetch starts, so a job committed
        between that fetch and this wait is never missed.
        """
        assert self._watch is not None
        assert self._local_change is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        start = self._seen_version
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._local_change.wait(), min(self._poll_interval, remaining))
                return
            except TimeoutError:
                pass
            if self._watch.execute("PRAGMA data_version").fetchone()[0] != start:
                return

    # admin ------------------------------------------------------------------------------

    async def pause(self, queue: str) -> None:
        await self._db.execute(
            "INSERT INTO conveyor_paused (queue) VALUES (?) ON CONFLICT DO NOTHING", [(queue,)]
        )

    async def resume(self, queue: str) -> None:
        await self._db.execute("DELETE FROM conveyor_paused WHERE queue = ?", [(queue,)])
        self._changed()

    async def cleanup(self, params: RetentionParams) -> int:
        def run(conn: sqlite3.Connection) -> int:
            removed = 0
            if params.max_age is not None:
                removed += conn.execute(
                    f"DELETE FROM conveyor_jobs WHERE state IN {_FINISHED} AND finished_at < ?",
                    (params.now - params.max_age,),
                ).rowcount
            if params.keep_last is not None:
                removed += conn.execute(
                    "DELETE FROM conveyor_jobs WHERE seq IN (SELECT seq FROM conveyor_jobs"
                    f" WHERE state IN {_FINISHED} ORDER BY finished_at DESC, seq DESC"
                    " LIMIT -1 OFFSET ?)",
                    (params.keep_last,),
                ).rowcount
            return removed

        return await self._db.write(run)


def _existing(conn: sqlite3.Connection, job: NewJob) -> str:
    """The job that a refused insert collided with: same spawn key under the parent, or dedup key."""
    if job.parent_id is not None and job.spawn_key is not None:
        row = conn.execute(
            "SELECT id FROM conveyor_jobs WHERE parent_id = ? AND spawn_key = ?",
            (job.parent_id, job.spawn_key),
        ).fetchone()
        if row is not None:
            return str(row[0])
    row = conn.execute(
        f"SELECT id FROM conveyor_jobs WHERE queue = ? AND dedup_key = ? AND state IN {_LIVE}",
        (job.queue, job.dedup_key),
    ).fetchone()
    return str(row[0])
