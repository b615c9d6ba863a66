"""Dedup modes beyond 'return the live job': throttle (a time window) and debounce (replace and delay)."""

from __future__ import annotations

import sqlite3

from ...job import DedupMode, NewJob


def throttled(conn: sqlite3.Connection, job: NewJob) -> str | None:
    """The job that took this key less than its TTL ago, finished or not."""
    if job.dedup is not DedupMode.THROTTLE or job.dedup_key is None:
        return None
    row = conn.execute(
        "SELECT job_id FROM conveyor_throttle WHERE queue = ? AND dedup_key = ? AND expires_at > ?",
        (job.queue, job.dedup_key, job.created_at),
    ).fetchone()
    return None if row is None else str(row[0])


def record(conn: sqlite3.Connection, job: NewJob) -> None:
    if job.dedup is DedupMode.THROTTLE and job.dedup_key is not None and job.dedup_until is not None:
        conn.execute(
            "INSERT INTO conveyor_throttle (queue, dedup_key, job_id, expires_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (queue, dedup_key) DO UPDATE SET job_id = excluded.job_id,"
            " expires_at = excluded.expires_at",
            (job.queue, job.dedup_key, job.id, job.dedup_until),
        )


def debounce(conn: sqlite3.Connection, job: NewJob, existing_id: str) -> None:
    """A waiting job takes the newer payload and starts its delay again; a running one is left alone."""
    if job.dedup is not DedupMode.DEBOUNCE:
        return
    state = "scheduled" if job.run_at > job.created_at else "pending"
    conn.execute(
        "UPDATE conveyor_jobs SET payload = ?, run_at = ?, state = ?"
        " WHERE id = ? AND state IN ('pending', 'scheduled')",
        (job.payload_json, job.run_at, state, existing_id),
    )
