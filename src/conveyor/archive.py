"""Finished jobs copied into a SQL database, so history outlives retention and Redis memory.

The backend keeps jobs while they matter to the engine; retention then trims
them. With `archive_url` set (`CONVEYOR_ARCHIVE_URL`, any SQLAlchemy URL:
a SQLite file or PostgreSQL), every finished job is copied here first:
workers follow the backend's event stream and copy each job that completed,
failed or was cancelled, and `Conveyor.cleanup` copies what is left before
it trims anything. Copies are upserts keyed by job id, so a pass repeated
after a crash, or run by several workers at once, changes nothing.

The archive's reading position (the event-stream cursor) is stored with the
copies in the same transaction. A reader that fell behind the stream's bound,
or starts with an empty archive, copies every finished job the backend still
holds instead, so no finished job is skipped while it is still there to copy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .backends.base import Backend, JobFilter
from .errors import ConfigurationError
from .job import AttemptError, Job, JobState, Progress

FINISHED = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)

metadata = sa.MetaData()
jobs_table = sa.Table(
    "conveyor_archived_jobs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("type", sa.String(200), nullable=False),
    sa.Column("queue", sa.String(200), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("tenant", sa.String(200)),
    sa.Column("user_id", sa.String(200)),
    sa.Column("parent_id", sa.String(40)),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("result", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("progress_percent", sa.Float, nullable=False),
    sa.Column("progress_message", sa.Text),
    sa.Index("conveyor_archived_jobs_created", "created_at"),
    sa.Index("conveyor_archived_jobs_tenant_state", "tenant", "state"),
    sa.Index("conveyor_archived_jobs_user", "user_id", "created_at"),
)
cursor_table = sa.Table(
    "conveyor_archive_cursor",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("cursor", sa.Text, nullable=False),
)
_CURSOR = "events"


class JobArchive:
    """The archive database; every method is a blocking call the caller runs off the event loop."""

    def __init__(self, url: str) -> None:
        try:
            self.engine = sa.create_engine(url)
        except sa.exc.ArgumentError:  # its message repeats the URL, password included
            raise ConfigurationError("archive_url is not a database URL like sqlite:///archive.db") from None
        except ImportError as exc:
            raise ConfigurationError(f"archive_url needs a database driver that is missing: {exc}") from None
        dialect = self.engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise ConfigurationError(f"the archive supports SQLite and PostgreSQL, not {dialect}")
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def cursor(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(cursor_table.c.cursor).where(cursor_table.c.name == _CURSOR)).first()
        return None if row is None else str(row[0])

    def save(self, jobs: Iterable[Job], cursor: str | None) -> int:
        """Upsert finished jobs and, in the same transaction, the position they were read up to."""
        rows = [_row(job) for job in jobs if job.state in FINISHED]
        with self.engine.begin() as conn:
            if rows:
                insert = self._insert(jobs_table).values(rows)
                updated = {c.name: insert.excluded[c.name] for c in jobs_table.columns if c.name != "id"}
                conn.execute(insert.on_conflict_do_update(index_elements=["id"], set_=updated))
            if cursor is not None:
                insert = self._insert(cursor_table).values(name=_CURSOR, cursor=cursor)
                conn.execute(insert.on_conflict_do_update(index_elements=["name"], set_={"cursor": cursor}))
        return len(rows)

    def counts(self, tenant: str | None = None) -> dict[str, dict[JobState, int]]:
        """Archived jobs per queue and state."""
        c = jobs_table.c
        query = sa.select(c.queue, c.state, sa.func.count()).group_by(c.queue, c.state)
        if tenant is not None:
            query = query.where(c.tenant == tenant)
        counts: dict[str, dict[JobState, int]] = {}
        with self.engine.connect() as conn:
            for queue, state, n in conn.execute(query):
                counts.setdefault(queue, {})[JobState(state)] = int(n)
        return counts

    def jobs(
        self,
        *,
        states: Sequence[JobState] = FINISHED,
        tenant: str | None = None,
        user_id: str | None = None,
        limit: int = 100,
    ) -> list[Job]:
        """Finished jobs, newest first (by creation, as the backends list them)."""
        query = (
            sa.select(jobs_table)
            .where(jobs_table.c.state.in_([s.value for s in states]))
            .order_by(jobs_table.c.created_at.desc(), jobs_table.c.id.desc())
            .limit(limit)
        )
        if tenant is not None:
            query = query.where(jobs_table.c.tenant == tenant)
        if user_id is not None:
            query = query.where(jobs_table.c.user_id == user_id)
        with self.engine.connect() as conn:
            return [_job(row._mapping) for row in conn.execute(query)]

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).first()
        return None if row is None else _job(row._mapping)

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert(table)


class Archiver:
    """Copies finished jobs from a backend into the archive, following the backend's event stream."""

    def __init__(self, archive: JobArchive, backend: Backend) -> None:
        self.archive = archive
        self.backend = backend

    async def run_once(self, *, batch: int = 1000) -> int:
        """Copy what finished since the last pass; returns how many jobs were copied."""
        cursor = await asyncio.to_thread(self.archive.cursor)
        if cursor is None:
            return await self._copy_everything()
        copied = 0
        while True:
            events = await self.backend.events(cursor, limit=batch)
            if events.missed:
                return copied + await self._copy_everything()
            finished = list(dict.fromkeys(e.job_id for e in events.events if e.kind.value in _FINISHED_KINDS))
            jobs = [job for job in [await self.backend.get(job_id) for job_id in finished] if job is not None]
            copied += await asyncio.to_thread(self.archive.save, jobs, events.cursor)
            cursor = events.cursor
            if len(events.events) < batch:
                return copied

    async def _copy_everything(self) -> int:
        """Every finished job the backend holds, then the stream's position from before the scan."""
        start = (await self.backend.events(None)).cursor
        copied, page_cursor = 0, None
        while True:
            page = await self.backend.list_jobs(JobFilter(states=FINISHED), limit=1000, cursor=page_cursor)
            copied += await asyncio.to_thread(self.archive.save, page.jobs, None)
            page_cursor = page.next_cursor
            if page_cursor is None:
                break
        await asyncio.to_thread(self.archive.save, [], start)
        return copied


_FINISHED_KINDS = frozenset(state.value for state in FINISHED)


def _row(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "type": job.type,
        "queue": job.queue,
        "state": job.state.value,
        "tenant": job.tenant,
        "user_id": job.user_id,
        "parent_id": job.parent_id,
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at if job.finished_at is not None else job.created_at,
        "payload": json.dumps(job.payload),
        "result": None if job.result is None else json.dumps(job.result),
        "error": None if job.error is None else json.dumps(asdict(job.error)),
        "progress_percent": job.progress.percent,
        "progress_message": job.progress.message,
    }


def _job(row: Any) -> Job:
    return Job(
        id=row["id"],
        type=row["type"],
        queue=row["queue"],
        payload=json.loads(row["payload"]),
        state=JobState(row["state"]),
        priority=row["priority"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        run_at=row["created_at"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        progress=Progress(row["progress_percent"], row["progress_message"]),
        result=None if row["result"] is None else json.loads(row["result"]),
        error=None if row["error"] is None else AttemptError(**json.loads(row["error"])),
        tenant=row["tenant"],
        user_id=row["user_id"],
        parent_id=row["parent_id"],
    )
