"""Key state: manual pauses, limiter feeding from API headers, and circuit-breaker transitions."""

from __future__ import annotations

import sqlite3

from ...limits import BreakerState, KeyState

_COLUMNS = "key, capacity, per, tokens, blocked_until, paused, failures, breaker, probe_job"


def _ensure(conn: sqlite3.Connection, key: str, now: float) -> None:
    conn.execute(
        "INSERT INTO conveyor_keys (key, updated_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, now)
    )


def _state(row: tuple[object, ...]) -> KeyState:
    key, capacity, per, tokens, blocked_until, paused, failures, breaker, probe_job = row
    return KeyState(
        key=str(key),
        capacity=capacity,  # type: ignore[arg-type]
        per=per,  # type: ignore[arg-type]
        tokens=float(tokens),  # type: ignore[arg-type]
        blocked_until=float(blocked_until),  # type: ignore[arg-type]
        paused=bool(paused),
        failures=int(failures),  # type: ignore[call-overload]
        breaker=BreakerState(str(breaker)),
        probe_job=probe_job,  # type: ignore[arg-type]
    )


def read_all(conn: sqlite3.Connection) -> list[KeyState]:
    return [_state(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM conveyor_keys ORDER BY key")]


def set_paused(conn: sqlite3.Connection, key: str, paused: bool) -> None:
    _ensure(conn, key, 0.0)
    conn.execute("UPDATE conveyor_keys SET paused = ? WHERE key = ?", (int(paused), key))


def feed(
    conn: sqlite3.Connection, key: str, now: float, remaining: float | None, blocked_until: float
) -> None:
    """What the remote API just told us: tokens left, and when the key may be used again."""
    _ensure(conn, key, now)
    if remaining is not None:  # refill to now first, so the cap applies to the tokens there are now
        conn.execute(
            "UPDATE conveyor_keys SET updated_at = ?,"
            " tokens = min(capacity, tokens + max(0, ? - updated_at) * capacity / per)"
            " WHERE key = ? AND capacity IS NOT NULL AND per IS NOT NULL",
            (now, now, key),
        )
    conn.execute(
        "UPDATE conveyor_keys SET blocked_until = max(blocked_until, ?),"
        " tokens = CASE WHEN ? IS NULL THEN tokens ELSE min(tokens, ?) END,"
        " updated_at = CASE WHEN ? IS NULL THEN updated_at ELSE ? END WHERE key = ?",
        (blocked_until, remaining, remaining, remaining, now, key),
    )


def failure(conn: sqlite3.Connection, key: str, now: float, threshold: int, cooldown: float) -> KeyState:
    """Count a breaker failure; open the breaker at the threshold, or again after a failed probe."""
    _ensure(conn, key, now)
    conn.execute(
        "UPDATE conveyor_keys SET failures = failures + 1, probe_job = NULL,"
        " breaker = CASE WHEN failures + 1 >= ? OR breaker = 'half_open' THEN 'open' ELSE breaker END,"
        " blocked_until = CASE WHEN failures + 1 >= ? OR breaker = 'half_open' THEN ? ELSE blocked_until END"
        " WHERE key = ?",
        (threshold, threshold, now + cooldown, key),
    )
    row = conn.execute(f"SELECT {_COLUMNS} FROM conveyor_keys WHERE key = ?", (key,)).fetchone()
    return _state(row)


def settled(conn: sqlite3.Connection, job_id: str, *, success: bool) -> None:
    """A job of the key ended: a success closes the breaker; any end frees the probe slot."""
    if success:
        conn.execute(
            "UPDATE conveyor_keys SET failures = 0, breaker = 'closed', probe_job = NULL"
            " WHERE key = (SELECT rate_key FROM conveyor_jobs WHERE id = ?)"
            " AND (failures > 0 OR breaker != 'closed')",
            (job_id,),
        )
    else:
        conn.execute("UPDATE conveyor_keys SET probe_job = NULL WHERE probe_job = ?", (job_id,))
