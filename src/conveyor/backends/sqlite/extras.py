"""Writes beside the job lifecycle for the SQLite backend: tracker phases, bags, keys, schedules."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ...job import BagEntry, NewJob, PhaseSpec
from ...limits import KeyState
from ...schedules import Schedule
from . import keys
from .connection import SQLiteConnection
from .rows import (
    INSERT_JOB,
    SCHEDULE_COLUMNS,
    new_job_params,
    phases_from_json,
    phases_to_json,
    schedule_from_row,
    schedule_row,
)


class SQLiteKeysAndSchedules:
    _db: SQLiteConnection

    if TYPE_CHECKING:  # provided by SQLiteBackend

        def _changed(self) -> None: ...

    # trackers ---------------------------------------------------------------------------

    async def set_phases(self, job_id: str, phases: Mapping[str, PhaseSpec]) -> None:
        def run(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT phases FROM conveyor_jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return
            merged = {**phases_from_json(row[0]), **phases}
            conn.execute("UPDATE conveyor_jobs SET phases = ? WHERE id = ?", (phases_to_json(merged), job_id))

        await self._db.write(run)

    async def add_to_bag(self, entries: Sequence[BagEntry]) -> None:
        rows = [(e.job_id, e.kind, e.item, e.message, e.at) for e in entries]
        await self._db.execute(
            "INSERT INTO conveyor_bag (job_id, kind, item, message, at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (job_id, kind, item) DO UPDATE SET message = excluded.message",
            rows,
        )

    # keys -------------------------------------------------------------------------------

    async def keys(self) -> list[KeyState]:
        return await self._db.read(keys.read_all)

    async def pause_key(self, key: str, *, paused: bool) -> None:
        await self._db.write(lambda conn: keys.set_paused(conn, key, paused))
        if not paused:
            self._changed()

    async def feed_key(self, key: str, *, now: float, remaining: float | None, blocked_until: float) -> None:
        await self._db.write(lambda conn: keys.feed(conn, key, now, remaining, blocked_until))

    async def key_failure(self, key: str, *, now: float, threshold: int, cooldown: float) -> KeyState:
        return await self._db.write(lambda conn: keys.failure(conn, key, now, threshold, cooldown))

    # schedules --------------------------------------------------------------------------

    async def upsert_schedule(self, schedule: Schedule) -> None:
        """A changed cron/every/jitter restarts the timing; any other change keeps the next tick."""
        row = schedule_row(schedule)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO conveyor_schedules (name, job_type, cron, every, payload, options, jitter,"
                " missed, next_run_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                " job_type = excluded.job_type, payload = excluded.payload, options = excluded.options,"
                " missed = excluded.missed, next_run_at = CASE WHEN cron IS excluded.cron AND every IS"
                " excluded.every AND jitter = excluded.jitter THEN next_run_at ELSE excluded.next_run_at END,"
                " cron = excluded.cron, every = excluded.every, jitter = excluded.jitter",
                row,
            )

        await self._db.write(run)

    async def schedules(self) -> list[Schedule]:
        def run(conn: sqlite3.Connection) -> list[Schedule]:
            rows = conn.execute(f"SELECT {SCHEDULE_COLUMNS} FROM conveyor_schedules ORDER BY name")
            return [schedule_from_row(r) for r in rows]

        return await self._db.read(run)

    async def remove_schedule(self, name: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM conveyor_schedules WHERE name = ?", (name,)).rowcount == 1

        return await self._db.write(run)

    async def claim_tick(self, name: str, tick: float, next_run_at: float, job: NewJob | None) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            claimed = conn.execute(
                "UPDATE conveyor_schedules SET next_run_at = ?, last_run_at = ?, last_job_id ="
                " coalesce(?, last_job_id) WHERE name = ? AND next_run_at = ?",
                (next_run_at, tick, job.id if job else None, name, tick),
            ).rowcount
            if claimed and job is not None:
                conn.execute(INSERT_JOB, new_job_params(job))
            return bool(claimed)

        claimed = await self._db.write(run)
        if claimed and job is not None:
            self._changed()
        return claimed
