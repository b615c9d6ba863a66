"""Parent/child bookkeeping, run inside the transaction of the state change that causes it.

When a job ends, its parent learns of it in the same transaction: one child
fewer to wait for, and (if that was the last) the parent wakes. A failure under
the fail_parent policy fails the parent at once and cancels its other
unfinished descendants. Ending a parent can end its own parent, so this walks
up the tree.
"""

from __future__ import annotations

import sqlite3

from ...errors import InvalidStateTransition
from ...job import AttemptError, FailurePolicy, ThenAction
from .rows import error_from_json, error_to_json

_LIVE_PARENT = "('pending', 'scheduled', 'running', 'waiting_children')"
_INSERT_ERROR = (
    "INSERT INTO conveyor_job_errors (job_id, attempt, at, type, message, traceback)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


def count_children(conn: sqlite3.Connection, counts: dict[str, int]) -> None:
    """Add newly inserted children to their parents' counters; a parent must still be live."""
    for parent_id, n in counts.items():
        row = conn.execute(
            "UPDATE conveyor_jobs SET children_total = children_total + ?,"
            " children_pending = children_pending + ?"
            f" WHERE id = ? AND state IN {_LIVE_PARENT} AND cancel_requested = 0 RETURNING id",
            (n, n, parent_id),
        ).fetchone()
        if row is None:
            raise InvalidStateTransition(f"parent job {parent_id} is missing, finished or cancelled")


CHILD_OF_ANOTHER_TENANT = "a child job of another tenant failed"
"""A parent's error when the child that failed it is another tenant's: whoever sees the parent may
not see that child, so neither its id nor its error is copied into the parent's."""


def job_ended(conn: sqlite3.Connection, job_id: str, state: str, now: float) -> None:
    """`job_id` just became completed, failed or cancelled: tell its parent, and so on upwards."""
    row = conn.execute(
        "SELECT parent_id, failure_policy, error, tenant FROM conveyor_jobs WHERE id = ?", (job_id,)
    ).fetchone()
    if row is None or row[0] is None:
        return
    parent_id, policy = row[0], FailurePolicy(row[1])
    parent = conn.execute(
        "UPDATE conveyor_jobs SET children_pending = max(children_pending - 1, 0)"
        " WHERE id = ? RETURNING state, children_pending, then_action, attempts, tenant",
        (parent_id,),
    ).fetchone()
    if parent is None:
        return
    parent_state, pending, then, attempts, parent_tenant = parent
    if parent_state not in ("pending", "scheduled", "running", "waiting_children"):
        return
    if state == "failed" and policy is FailurePolicy.FAIL_PARENT:
        error = AttemptError(
            attempt=attempts,
            at=now,
            type="ChildFailed",
            message=CHILD_OF_ANOTHER_TENANT
            if row[3] is not None and row[3] != parent_tenant
            else f"child job {job_id} failed" + _child_reason(row[2]),
        )
        fail_tree(conn, parent_id, error, now)
        return
    if parent_state == "waiting_children" and pending == 0:
        wake(conn, parent_id, ThenAction(then), now)


def wake(conn: sqlite3.Connection, job_id: str, then: ThenAction, now: float) -> None:
    """The last child ended: complete the parent, or queue it to run its next step."""
    if then is ThenAction.COMPLETE:
        conn.execute(
            "UPDATE conveyor_jobs SET state = 'completed', finished_at = ?, progress_percent = 100"
            " WHERE id = ?",
            (now, job_id),
        )
        job_ended(conn, job_id, "completed", now)
    else:
        conn.execute(
            "UPDATE conveyor_jobs SET state = 'pending', run_at = ?, attempts = 0 WHERE id = ?",
            (now, job_id),
        )


def settle_wait(conn: sqlite3.Connection, job_id: str, now: float) -> None:
    """A parent that just started waiting may have nothing left to wait for."""
    row = conn.execute(
        "SELECT children_pending, then_action FROM conveyor_jobs WHERE id = ?", (job_id,)
    ).fetchone()
    if row is not None and row[0] == 0:
        wake(conn, job_id, ThenAction(row[1]), now)


def fail_tree(conn: sqlite3.Connection, job_id: str, error: AttemptError, now: float) -> None:
    """Fail a live job because a child failed, cancel its unfinished descendants, tell its parent."""
    conn.execute(
        "UPDATE conveyor_jobs SET state = 'failed', finished_at = ?, lease_until = NULL, error = ?,"
        " cancel_requested = CASE WHEN state = 'running' THEN 1 ELSE cancel_requested END"
        " WHERE id = ?",
        (now, error_to_json(error), job_id),
    )
    conn.execute(_INSERT_ERROR, (job_id, error.attempt, now, error.type, error.message, None))
    cancel_descendants(conn, job_id, now)
    job_ended(conn, job_id, "failed", now)


def cancel_descendants(conn: sqlite3.Connection, job_id: str, now: float) -> None:
    """Cancel every unfinished job below `job_id`; running ones are asked to stop."""
    rows = conn.execute(
        "WITH RECURSIVE below(id) AS ("
        " SELECT id FROM conveyor_jobs WHERE parent_id = ?"
        " UNION ALL SELECT j.id FROM conveyor_jobs j JOIN below b ON j.parent_id = b.id)"
        " SELECT j.id, j.state FROM conveyor_jobs j JOIN below b ON j.id = b.id",
        (job_id,),
    ).fetchall()
    for child_id, state in rows:
        if state in ("pending", "scheduled", "waiting_children"):
            conn.execute(
                "UPDATE conveyor_jobs SET state = 'cancelled', finished_at = ? WHERE id = ?",
                (now, child_id),
            )
            conn.execute(
                "UPDATE conveyor_jobs SET children_pending = max(children_pending - 1, 0)"
                " WHERE id = (SELECT parent_id FROM conveyor_jobs WHERE id = ?)",
                (child_id,),
            )
        elif state == "running":
            conn.execute("UPDATE conveyor_jobs SET cancel_requested = 1 WHERE id = ?", (child_id,))


def _child_reason(error_json: str | None) -> str:
    error = error_from_json(error_json)
    return "" if error is None else f": {error.type}: {error.message}"
