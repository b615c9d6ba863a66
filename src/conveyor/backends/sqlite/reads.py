"""Reads for the SQLite backend: jobs, lists, counts, history, trees and bags, workers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from ...errors import PayloadError
from ...job import AttemptError, BagEntry, Job, JobState, LogLine
from ..base import JobFilter, JobPage, QueueCounts, WorkerInfo
from .connection import SQLiteConnection
from .rows import JOB_COLUMNS, row_to_job


class SQLiteReads:
    _db: SQLiteConnection

    async def workers(self, *, alive_since: float) -> list[WorkerInfo]:
        def run(conn: sqlite3.Connection) -> list[WorkerInfo]:
            rows = conn.execute(
                "SELECT info FROM conveyor_workers WHERE last_seen >= ? ORDER BY id", (alive_since,)
            ).fetchall()
            return [WorkerInfo(**json.loads(r[0])) for r in rows]

        return await self._db.read(run)

    # read -------------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job | None:
        return await self._db.read(lambda conn: get_row(conn, job_id))

    async def list_jobs(
        self, job_filter: JobFilter, *, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        where, args = filter_sql(job_filter)
        if cursor is not None:
            where.append("seq > ?" if job_filter.oldest_first else "seq < ?")
            if not cursor.isdigit() or len(cursor) > 18:
                raise PayloadError(
                    f"bad cursor {cursor[:40]!r}: pass back a next_cursor from a previous page"
                )
            args.append(int(cursor))
        order = "ASC" if job_filter.oldest_first else "DESC"
        sql = f"SELECT {JOB_COLUMNS}, seq FROM conveyor_jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY seq {order} LIMIT ?"
        args.append(limit + 1)

        def run(conn: sqlite3.Connection) -> JobPage:
            rows = conn.execute(sql, args).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            return JobPage([row_to_job(r) for r in rows], str(rows[-1][-1]) if more else None)

        return await self._db.read(run)

    async def counts(self, *, tenant: str | None = None) -> list[QueueCounts]:
        sql = "SELECT queue, state, count(*), sum(state = 'scheduled' AND attempts > 0) FROM conveyor_jobs"
        args: tuple[object, ...] = ()
        if tenant is not None:
            sql += " WHERE tenant = ?"
            args = (tenant,)
        sql += " GROUP BY queue, state"

        def run(conn: sqlite3.Connection) -> list[QueueCounts]:
            per_queue: dict[str, dict[JobState, int]] = {}
            retrying: dict[str, int] = {}
            for queue, state, n, retry_n in conn.execute(sql, args):
                per_queue.setdefault(queue, {})[JobState(state)] = n
                retrying[queue] = retrying.get(queue, 0) + (retry_n or 0)
            paused = {r[0] for r in conn.execute("SELECT queue FROM conveyor_paused")}
            if tenant is None:
                for queue in paused:
                    per_queue.setdefault(queue, {})
            return [QueueCounts(q, c, retrying.get(q, 0), q in paused) for q, c in sorted(per_queue.items())]

        return await self._db.read(run)

    async def errors(self, job_id: str) -> list[AttemptError]:
        def run(conn: sqlite3.Connection) -> list[AttemptError]:
            rows = conn.execute(
                "SELECT attempt, at, type, message, traceback FROM conveyor_job_errors"
                " WHERE job_id = ? ORDER BY id",
                (job_id,),
            ).fetchall()
            return [AttemptError(*r) for r in rows]

        return await self._db.read(run)

    async def logs(self, job_id: str, *, limit: int = 1000) -> list[LogLine]:
        def run(conn: sqlite3.Connection) -> list[LogLine]:
            rows = conn.execute(
                "SELECT at, line FROM (SELECT id, at, line FROM conveyor_logs WHERE job_id = ?"
                " ORDER BY id DESC LIMIT ?) ORDER BY id",
                (job_id, limit),
            ).fetchall()
            return [LogLine(job_id, at, line) for at, line in rows]

        return await self._db.read(run)

    # trees and bags -----------------------------------------------------------------

    async def tree(self, job_id: str) -> list[Job]:
        def run(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                "WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL"
                " SELECT j.id FROM conveyor_jobs j JOIN tree t ON j.parent_id = t.id)"
                f" SELECT {JOB_COLUMNS} FROM conveyor_jobs WHERE id IN (SELECT id FROM tree) ORDER BY seq",
                (job_id,),
            ).fetchall()
            return [row_to_job(r) for r in rows]

        return await self._db.read(run)

    async def bag(self, job_ids: Sequence[str]) -> list[BagEntry]:
        def run(conn: sqlite3.Connection) -> list[BagEntry]:
            rows = conn.execute(
                "SELECT job_id, kind, message, item, at FROM conveyor_bag"
                " WHERE job_id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (json.dumps(list(job_ids)),),
            ).fetchall()
            return [BagEntry(*r) for r in rows]

        return await self._db.read(run)


def get_row(conn: sqlite3.Connection, job_id: str) -> Job | None:
    row = conn.execute(f"SELECT {JOB_COLUMNS} FROM conveyor_jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else row_to_job(row)


def filter_sql(f: JobFilter) -> tuple[list[str], list[object]]:
    where: list[str] = []
    args: list[object] = []

    def any_of(column: str, values: Sequence[str]) -> None:
        where.append(f"{column} IN ({', '.join('?' * len(values))})")
        args.extend(values)

    if f.states:
        any_of("state", [JobState(s).value for s in f.states])
    if f.queues:
        any_of("queue", list(f.queues))
    if f.types:
        any_of("type", list(f.types))
    columns = (("tenant", f.tenant), ("user_id", f.user_id), ("parent_id", f.parent_id), ("rate_key", f.key))
    for column, value in columns:
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if f.roots_only:
        where.append("parent_id IS NULL")
    if f.created_from is not None:
        where.append("created_at >= ?")
        args.append(f.created_from)
    if f.created_to is not None:
        where.append("created_at < ?")
        args.append(f.created_to)
    if f.text:
        pattern = "%" + f.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            "(progress_message LIKE ? ESCAPE '\\' OR json_extract(error, '$.message') LIKE ? ESCAPE '\\')"
        )
        args += [pattern, pattern]
    if f.error_type:
        where.append("json_extract(error, '$.type') = ?")
        args.append(f.error_type)
    return where, args
