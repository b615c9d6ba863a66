"""Claiming jobs in one transaction: priorities, keys (rate limits, breakers, pauses), groups, fairness."""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass

from ...job import Job
from ...limits import RateLimit
from ..base import FetchParams
from .rows import JOB_COLUMNS, row_to_job

# Keys whose jobs must wait right now; used inside the candidate query so held
# jobs never fill the candidate window ahead of claimable ones.
_HELD_KEYS = (
    "SELECT key FROM conveyor_keys WHERE paused = 1 OR blocked_until > :now"
    " OR (breaker = 'half_open' AND probe_job IS NOT NULL)"
)
_FULL_GROUPS = (
    "SELECT group_key FROM conveyor_jobs WHERE state = 'running' AND group_key IS NOT NULL"
    " GROUP BY group_key HAVING count(*) >= max(group_limit)"
)
_CANDIDATE_FILTER = (
    f"state = 'pending' AND queue = :queue AND (rate_key IS NULL OR rate_key NOT IN ({_HELD_KEYS}))"
    f" AND (group_key IS NULL OR group_key NOT IN ({_FULL_GROUPS}))"
)
_ORDERED = (
    "SELECT seq, id, rate_key, rate_limit, rate_per, group_key, group_limit FROM conveyor_jobs"
    f" WHERE {_CANDIDATE_FILTER} ORDER BY priority, seq LIMIT :window"
)
# Round-robin: each group's first ready job, then each group's second, and so on, per priority.
_FAIR = (
    "SELECT seq, id, rate_key, rate_limit, rate_per, group_key, group_limit FROM ("
    " SELECT *, row_number() OVER (PARTITION BY coalesce(group_key, tenant), priority ORDER BY seq) AS turn"
    f" FROM conveyor_jobs WHERE {_CANDIDATE_FILTER})"
    " ORDER BY priority, turn, seq LIMIT :window"
)


@dataclass
class Bucket:
    """A key's row from conveyor_keys, refilled to `now` and written back if touched."""

    key: str
    capacity: float | None
    per: float | None
    tokens: float
    updated_at: float
    blocked_until: float
    breaker: str
    probe_job: str | None
    dirty: bool = False

    def refill(self, now: float) -> None:
        if self.capacity is None or self.per is None:
            return
        rate = self.capacity / self.per
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.updated_at) * rate)
        self.updated_at = now

    def take(self, now: float, job_id: str) -> bool:
        if self.breaker == "half_open" and self.probe_job is not None:
            return False
        if self.capacity is not None and self.per is not None:
            if self.tokens < 1:
                self.blocked_until = now + (1 - self.tokens) * self.per / self.capacity
                self.dirty = True
                return False
            self.tokens -= 1
        if self.breaker == "open":  # its cool-down is over: this job is the probe
            self.breaker, self.probe_job = "half_open", job_id
        self.dirty = True
        return True


class Buckets:
    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self.conn = conn
        self.now = now
        self.loaded: dict[str, Bucket] = {}

    def get(self, key: str, limit: RateLimit | None) -> Bucket:
        bucket = self.loaded.get(key)
        if bucket is None:
            row = self.conn.execute(
                "SELECT capacity, per, tokens, updated_at, blocked_until, breaker, probe_job"
                " FROM conveyor_keys WHERE key = ?",
                (key,),
            ).fetchone()
            if row is None:
                capacity = float(limit.limit) if limit else None
                bucket = Bucket(
                    key,
                    capacity,
                    limit.per if limit else None,
                    capacity or 0.0,
                    self.now,
                    0.0,
                    "closed",
                    None,
                )
                bucket.dirty = True
            else:
                bucket = Bucket(key, *row)
            if limit is not None and (bucket.capacity, bucket.per) != (limit.limit, limit.per):
                bucket.capacity, bucket.per, bucket.dirty = float(limit.limit), limit.per, True
            bucket.refill(self.now)
            self.loaded[key] = bucket
        return bucket

    def save(self) -> None:
        for b in self.loaded.values():
            if b.dirty:
                self.conn.execute(
                    "INSERT INTO conveyor_keys (key, capacity, per, tokens, updated_at, blocked_until,"
                    " breaker, probe_job) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                    " capacity = excluded.capacity, per = excluded.per, tokens = excluded.tokens,"
                    " updated_at = excluded.updated_at, blocked_until = excluded.blocked_until,"
                    " breaker = excluded.breaker, probe_job = excluded.probe_job",
                    (
                        b.key,
                        b.capacity,
                        b.per,
                        b.tokens,
                        b.updated_at,
                        b.blocked_until,
                        b.breaker,
                        b.probe_job,
                    ),
                )


def fetch(conn: sqlite3.Connection, params: FetchParams) -> list[Job]:
    now = params.now
    conn.execute(
        "UPDATE conveyor_jobs SET state = 'pending' WHERE state = 'scheduled' AND run_at <= ?", (now,)
    )
    paused = {row[0] for row in conn.execute("SELECT queue FROM conveyor_paused")}
    buckets = Buckets(conn, now)
    claimed: list[tuple[object, ...]] = []
    for queue, limit in params.limits.items():
        if limit <= 0 or queue in paused:
            continue
        queue_rate = params.queue_rates.get(queue)
        if queue_rate is not None:
            limit = min(limit, math.floor(buckets.get(f"queue:{queue}", queue_rate).tokens))
            if limit <= 0:
                continue
        ids = _pick(conn, buckets, queue, limit, fair=queue in params.fair_queues)
        if queue_rate is not None and ids:
            bucket = buckets.get(f"queue:{queue}", queue_rate)
            bucket.tokens -= len(ids)
            bucket.dirty = True
        if ids:
            claimed += conn.execute(
                "UPDATE conveyor_jobs SET state = 'running', attempts = attempts + 1, worker_id = ?,"
                " lease_until = ?, started_at = ? WHERE id IN (SELECT value FROM json_each(?))"
                f" RETURNING {JOB_COLUMNS}, seq",
                (params.worker_id, params.lease_until, now, json.dumps(ids)),
            ).fetchall()
    buckets.save()
    claimed.sort(key=lambda r: (r[5], r[-1]))
    return [row_to_job(r) for r in claimed]


def _pick(conn: sqlite3.Connection, buckets: Buckets, queue: str, limit: int, *, fair: bool) -> list[str]:
    """Claim order, skipping jobs whose key or group fills up during this very claim.

    The first look is exactly `limit` jobs deep, which is all it takes when
    nothing is skipped; only if something was skipped does it read deeper,
    carrying on from where it stopped.
    """
    sql = _FAIR if fair else _ORDERED
    args: dict[str, object] = {"queue": queue, "now": buckets.now, "window": limit}
    walk = _Walk(conn, buckets, limit)
    rows = conn.execute(sql, args).fetchall()
    walk.over(rows)
    if len(walk.picked) < limit and len(rows) == limit:
        args["window"] = limit * 8 + 64
        walk.over(conn.execute(sql, args).fetchall())
    return walk.picked


class _Walk:
    def __init__(self, conn: sqlite3.Connection, buckets: Buckets, limit: int) -> None:
        self.conn = conn
        self.buckets = buckets
        self.limit = limit
        self.seen: set[str] = set()
        self.running: dict[str, int] = {}
        self.picked: list[str] = []

    def over(self, rows: list[tuple[object, ...]]) -> None:
        for _seq, job_id, key, rate_limit, rate_per, group, group_limit in rows:
            if len(self.picked) == self.limit:
                return
            if job_id in self.seen:
                continue
            self.seen.add(str(job_id))
            if group is not None and not self._group_has_room(str(group), group_limit):
                continue
            if key is not None:
                spec = RateLimit(int(rate_limit), float(rate_per)) if rate_limit is not None else None  # type: ignore[call-overload, arg-type]
                if not self.buckets.get(str(key), spec).take(self.buckets.now, str(job_id)):
                    continue
            if group is not None:
                self.running[str(group)] += 1
            self.picked.append(str(job_id))

    def _group_has_room(self, group: str, group_limit: object) -> bool:
        if group not in self.running:
            self.running[group] = self.conn.execute(
                "SELECT count(*) FROM conveyor_jobs WHERE state = 'running' AND group_key = ?", (group,)
            ).fetchone()[0]
        return group_limit is None or self.running[group] < int(group_limit)  # type: ignore[call-overload]
